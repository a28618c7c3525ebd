'use strict';

// The application's own copy of a module (LibreChat's passport, its prom-client), resolved from the
// application first, so that a linked or nested install of this package does not pick up a second
// copy: a passport that knows no strategies, a prom-client other than the one that serves metrics.

const resolved = new Map();

/** `name` as the application resolves it, else as this package does (which may throw). */
function hostModule(name) {
  if (!resolved.has(name)) {
    const from = [require.main?.path, process.cwd()].filter(Boolean);
    let mod;
    try {
      mod = require(require.resolve(name, { paths: from }));
    } catch {
      mod = require(name);
    }
    resolved.set(name, mod);
  }
  return resolved.get(name);
}

module.exports = { hostModule };
