'use strict';

/**
 * `getAppConfig` (api/server/services/Config): the app config LibreChat builds from librechat.yaml.
 * Here the running app's `appConfig` option, else a balance section from CHECK_BALANCE and
 * START_BALANCE. LibreChat's model methods for it are the running app's (`~/models`).
 */

const { isEnabled } = require('./api');
const models = require('./models');

let current = null;

function setAppConfig(config) {
  current = config;
}

async function getAppConfig() {
  if (current) return current;
  const startBalance = process.env.START_BALANCE;
  return { balance: { enabled: isEnabled(process.env.CHECK_BALANCE), startBalance: startBalance ? Number(startBalance) : undefined } };
}

/** The options LibreChat passes to `createSetBalanceConfig`. */
const balanceOptions = {
  getAppConfig,
  findBalanceByUser: (userId) => models.methods().findBalanceByUser(userId),
  upsertBalanceFields: (userId, fields) => models.methods().upsertBalanceFields(userId, fields),
};

module.exports = { setAppConfig, getAppConfig, balanceOptions };
