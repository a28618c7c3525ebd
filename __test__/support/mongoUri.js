'use strict';

/**
 * The MongoDB URI for tests, with `dbName` as its database.
 * The server comes from process.env.MONGO_URI: either set by the caller (then nothing is started)
 * or by __test__/setup/globalSetup.js, which starts a local server; jest workers inherit it.
 *
 *   const { mongoUri } = require('./support/mongoUri');
 *   await mongoose.connect(mongoUri('auth-login'));
 *
 * Any database already in MONGO_URI is replaced; its query string (options) is kept.
 * @param {string} [dbName] omitted: the URI without a database
 * @returns {string}
 */
function mongoUri(dbName) {
  const base = process.env.MONGO_URI;
  if (!base) {
    throw new Error('MONGO_URI is not set: run the tests through jest (jest.config.js globalSetup starts ' +
      'a local server) or set MONGO_URI=mongodb://host:port');
  }
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/([^?]*))?(\?.*)?$/.exec(base);
  if (!m) throw new Error(`MONGO_URI does not look like a MongoDB URI: ${base}`);
  const [, hosts, , query = ''] = m;
  if (dbName === undefined || dbName === '') return `${hosts}/${query}`.replace(/\/$/, '');
  if (/[/\\. "$*<>:|?]/.test(dbName)) throw new Error(`mongoUri: bad database name ${JSON.stringify(dbName)}`);
  return `${hosts}/${dbName}${query}`;
}

module.exports = { mongoUri };
