'use strict';

/**
 * Resolves `~/…` to this folder (LibreChat's api/ resolves it with module-alias) and
 * `librechat-custom-backend-auth` to the repository, for code run by plain Node (the demo, the
 * benchmark). Under jest, `moduleNameMapper` in jest.config.js does the same.
 */

const path = require('path');
const Module = require('module');

const REPO = path.resolve(__dirname, '..', '..', '..');
const ALIASES = [
  [/^~\//, `${__dirname}/`],
  [/^librechat-custom-backend-auth$/, REPO],
];

const resolve = Module._resolveFilename;
if (!resolve.customBackendAlias) {
  const patched = function (request, ...rest) {
    for (const [pattern, target] of ALIASES) {
      if (pattern.test(request)) return resolve.call(this, request.replace(pattern, target), ...rest);
    }
    return resolve.call(this, request, ...rest);
  };
  patched.customBackendAlias = true;
  Module._resolveFilename = patched;
}
