'use strict';

/**
 * A second LibreChat server sharing the test's database and backend: the LibreChat-shaped app in
 * its own Node process, as a deployment runs several behind a load balancer.
 *
 *   const b = await startInstance(h.vars);          // the same variables as the harness's app
 *   await fetch(`${b.url}/api/user`, { headers: { Authorization: `Bearer ${token}` } });
 *   await b.close();
 *
 * Run directly (by startInstance), it reads the variables from INSTANCE_VARS (JSON), listens on a
 * free port and prints `{"port": N}`; it logs its lines as `{"log": "..."}` so the test can check them
 * for secrets.
 */

const { fork } = require('child_process');

async function main() {
  const vars = JSON.parse(process.env.INSTANCE_VARS);
  Object.assign(process.env, vars);
  require('./librechat/alias');
  const pkg = require('librechat-custom-backend-auth');
  const send = (m) => process.send && process.send(m);
  const line = (level) => (...args) => send({ log: `${level} ${args.join(' ')}` });
  const logger = { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug') };
  pkg.configureCustomBackendAuth({ ...vars, logger });
  const { createLibreChatApp } = require('./librechat/server');
  const lc = await createLibreChatApp({ mongoUri: vars.MONGO_URI, logger });
  const server = lc.app.listen(0, '127.0.0.1', () => send({ port: server.address().port }));
  process.on('message', async (m) => {
    if (m !== 'close') return;
    server.close();
    await pkg.getAuthService().close();
    await lc.close();
    process.exit(0);
  });
}

/** Starts one: resolves `{url, logs, close()}` once it listens. */
function startInstance(vars) {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], {
      env: { ...process.env, INSTANCE_VARS: JSON.stringify(vars) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const logs = [];
    child.on('message', (m) => {
      if (m && m.log) logs.push(m.log);
      if (m && m.port) {
        resolve({
          url: `http://127.0.0.1:${m.port}`,
          logs,
          close: () =>
            new Promise((done) => {
              child.once('exit', done);
              child.send('close');
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`instance exited early (${code})`)));
    child.once('error', reject);
  });
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`instance failed: ${err.message}\n`);
    process.exit(1);
  });
}

module.exports = { startInstance };
