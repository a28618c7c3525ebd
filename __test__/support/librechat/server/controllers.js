'use strict';

/**
 * LibreChat's own auth controllers, as stand-ins answering 418 so that a test sees the stock path ran
 * (switch off), and `getUserController` (GET /api/user) as v0.8.8-rc1 writes it: an allowlist of
 * public fields (the S3 avatar refresh runs only with fileStrategy s3; there is none here).
 */

const stock = (name) => (req, res) => res.status(418).json({ message: `LibreChat ${name}` });

const PUBLIC_USER_FIELDS = [
  '_id', 'id', 'name', 'username', 'email', 'emailVerified', 'avatar', 'provider', 'role',
  'plugins', 'twoFactorEnabled', 'termsAccepted', 'personalization', 'favorites', 'skillStates',
  'createdAt', 'updatedAt', 'tenantId',
];

function getUserController(req, res) {
  const source = typeof req.user?.toObject === 'function' ? req.user.toObject() : req.user ?? {};
  const userData = {};
  for (const field of PUBLIC_USER_FIELDS) {
    if (source[field] !== undefined) userData[field] = source[field];
  }
  res.status(200).send(userData);
}

module.exports = {
  loginController: stock('loginController'),
  refreshController: stock('refreshController'),
  logoutController: stock('logoutController'),
  registrationController: stock('registrationController'),
  verify2FAWithTempToken: stock('verify2FAWithTempToken'),
  resetPasswordRequestController: stock('resetPasswordRequestController'),
  resetPasswordController: stock('resetPasswordController'),
  getUserController,
};
