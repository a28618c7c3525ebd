'use strict';

/**
 * LibreChat's stock `jwt` strategy (api/strategies/jwtStrategy.js, v0.8.8-rc1), written from reading
 * it: passport-jwt with the string JWT_SECRET, the user loaded on every request. `methods` and
 * `secretOrKey` are arguments only so that the benchmark can pass its own; LibreChat's takes none.
 */

const { SystemRoles } = require('librechat-data-provider');
const models = require('../models');

function jwtLogin(methods = models.methods(), secretOrKey = process.env.JWT_SECRET) {
  const { Strategy: JwtStrategy, ExtractJwt } = require('passport-jwt');
  return new JwtStrategy(
    { jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey },
    async (payload, done) => {
      try {
        const user = await methods.getUserById(payload?.id, '-password -__v -totpSecret -backupCodes');
        if (!user) return done(null, false);
        user.id = user._id.toString();
        // null tells LibreChat's principal lookup "no external id"
        user.idOnTheSource ??= null;
        if (!user.role) {
          user.role = SystemRoles.USER;
          await methods.updateUser(user.id, { role: user.role });
        }
        return done(null, user);
      } catch (err) {
        return done(err, false);
      }
    },
  );
}

module.exports = jwtLogin;
