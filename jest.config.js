'use strict';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__test__'],
  testMatch: ['**/*.spec.js'],
  // Starts a local MongoDB-wire-compatible server unless MONGO_URI is set; tests read the URI
  // with require('./support/mongoUri').mongoUri('dbName').
  globalSetup: '<rootDir>/__test__/setup/globalSetup.js',
  globalTeardown: '<rootDir>/__test__/setup/globalTeardown.js',
  // The LibreChat-shaped test app's requires, as LibreChat resolves them (module-alias for `~/`; the
  // package by name); __test__/support/librechat/alias.js does the same outside jest.
  moduleNameMapper: {
    '^~/(.*)$': '<rootDir>/__test__/support/librechat/$1',
    '^librechat-custom-backend-auth$': '<rootDir>/index.js',
  },
  testTimeout: 30000,
  maxWorkers: 2,
};
