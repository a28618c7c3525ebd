'use strict';

const { stopTestDb } = require('../../scripts/test-db');

/** Jest globalTeardown: stops the server that globalSetup started (if any) and waits for its pid. */
module.exports = async function globalTeardown() {
  const db = globalThis.__TESTDB__;
  if (!db) return;
  globalThis.__TESTDB__ = null;
  await stopTestDb(db);
  if (process.env.MONGO_URI === db.uri) delete process.env.MONGO_URI;
  delete process.env.TESTDB_PID;
};
