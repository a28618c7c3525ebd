'use strict';

const { startTestDb } = require('../../scripts/test-db');

/**
 * Jest globalSetup: runs once in the parent process before any test file.
 * - MONGO_URI already set: used as is, nothing is started.
 * - Otherwise a local secantusd server is started (scripts/test-db.js) and its URI is put in
 *   process.env.MONGO_URI, which the test workers inherit (they are spawned after this runs).
 * Tests read it with require('../support/mongoUri').mongoUri('myDb').
 */
module.exports = async function globalSetup() {
  if (process.env.MONGO_URI) {
    globalThis.__TESTDB__ = null;
    return;
  }
  const db = await startTestDb();
  globalThis.__TESTDB__ = db;
  process.env.MONGO_URI = db.uri;
  process.env.TESTDB_PID = String(db.pid);
};
