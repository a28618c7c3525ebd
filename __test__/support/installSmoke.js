'use strict';

// Run inside an installed copy of the package (by release.spec.js), under Node 20, Node 24 or Bun on
// musl: loads the package as LibreChat's api/ would, builds a service, checks a bad configuration,
// logs in against the mock backend and verifies the token. Prints one JSON line with what it saw.
// Input: LCBA_SMOKE (JSON {vars, username, password}); cwd: the folder the package is installed for.

const fs = require('fs');

async function main() {
  const { vars, username, password } = JSON.parse(process.env.LCBA_SMOKE);
  const entry = require.resolve('librechat-custom-backend-auth', { paths: [process.cwd()] });
  const pkg = require(entry);
  const out = { entry, runtime: process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}` };

  try {
    new pkg.CustomBackendAuthService({ ...vars, JWT_SECRET: '' });
    out.configInvalid = 'no error';
  } catch (err) {
    out.configInvalid = err.code;
    out.configInvalidIsClass = err instanceof pkg.CustomBackendAuthError;
  }

  // The .node file the loader picked, as the kernel mapped it.
  out.binary = fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
    .map((l) => l.split(/\s+/).slice(5).join(' '))
    .find((p) => p.endsWith('.node') && p.includes('librechat-custom-backend-auth')) || null;

  const service = new pkg.CustomBackendAuthService(vars);
  try {
    const result = await service.login({ email: username, password });
    out.loginEmail = result.user.email;
    out.userId = result.user.id;
    out.verifiedId = service.verifyAccessToken(result.token);
    const parts = result.token.split('.');
    out.forgedVerifies = service.verifyAccessToken(`${parts[0]}.${parts[1]}.${parts[2].slice(0, -4)}AAAA`);
    try {
      await service.login({ email: username, password: `${password}-wrong` });
      out.wrongPassword = 'accepted';
    } catch (err) {
      out.wrongPassword = err.code;
    }
  } finally {
    await service.close();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(`${JSON.stringify({ error: `${err.code || ''} ${err.message}` })}\n`);
    process.exit(1);
  },
);
