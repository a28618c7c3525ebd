'use strict';

/**
 * `~/models`: LibreChat's model methods (`createMethods` of @librechat/data-schemas). LibreChat binds
 * them once to its mongoose connection; here the app that is running binds its own (one app per
 * process at a time: see server/index.js).
 */

const models = {
  /** Binds the running app's methods; returns a function that unbinds them. */
  bind(methods) {
    if (models.current) throw new Error('another LibreChat-shaped app is still open in this process');
    models.current = methods;
    return () => {
      models.current = null;
    };
  },
  current: null,
};

/** The running app's methods (throws when no app is open). */
function methods() {
  if (!models.current) throw new Error('no LibreChat-shaped app is open');
  return models.current;
}

module.exports = { bind: models.bind, methods };
