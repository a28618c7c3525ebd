'use strict';

/**
 * One LibreChat server of the soak: the LibreChat-shaped app of __test__/support/librechat in its
 * own Node process (as __test__/support/instance.js), started with `clockOffset` under libfaketime
 * (LD_PRELOAD) so that the addon's Rust code reads the shifted clock too (a `Date.now` patch would
 * not reach it). Every line it logs (its logger, and anything on stdout/stderr) comes back to the
 * soak, which searches them for secrets. It exits when the soak goes away (IPC disconnect).
 */

const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');

const FAKETIME_LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];

function faketimeLib() {
  return FAKETIME_LIBS.find((f) => fs.existsSync(f)) || null;
}

async function main() {
  const vars = JSON.parse(process.env.INSTANCE_VARS);
  Object.assign(process.env, vars);
  require('../__test__/support/librechat/alias');
  const pkg = require('librechat-custom-backend-auth');
  const send = (m) => {
    if (process.connected) process.send(m);
  };
  const fmt = (a) => (typeof a === 'string' ? a : a instanceof Error ? `${a.name}: ${a.message}` : JSON.stringify(a));
  const line = (level) => (...args) => send({ log: `${level} ${args.map(fmt).join(' ')}` });
  const logger = { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug') };
  pkg.configureCustomBackendAuth({ ...vars, logger });
  const { createLibreChatApp } = require('../__test__/support/librechat/server');
  const lc = await createLibreChatApp({ mongoUri: vars.MONGO_URI, logger });
  const server = lc.app.listen(0, '127.0.0.1', () => send({ port: server.address().port, now: Date.now() }));
  server.keepAliveTimeout = 30_000;
  const bye = async () => {
    server.close();
    if (server.closeAllConnections) server.closeAllConnections();
    await Promise.race([
      Promise.all([pkg.getAuthService().close(), lc.close()]).catch(() => {}),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
    process.exit(0);
  };
  process.on('message', (m) => {
    if (m === 'close') bye();
    if (m === 'now') send({ now: Date.now() });
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * Starts one: resolves { name, url, pid, logs, clockOffsetMs, close(), kill() } once it listens.
 * @param {object} vars the environment of the package and the app
 * @param {{name: string, clockOffsetSec?: number, onLog?: (name, line) => void}} opts
 */
function startInstance(vars, { name, clockOffsetSec = 0, onLog = () => {} }) {
  const env = { ...process.env, INSTANCE_VARS: JSON.stringify(vars) };
  if (clockOffsetSec) {
    const lib = faketimeLib();
    if (!lib) throw new Error('libfaketime is not installed (apt-get install faketime): cannot offset an instance\'s clock');
    env.LD_PRELOAD = lib;
    env.FAKETIME = `${clockOffsetSec >= 0 ? '+' : ''}${clockOffsetSec}s`;
    // Timers and the monotonic clock stay true; only the wall clock moves.
    env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
    env.FAKETIME_NO_CACHE = '1';
  }
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const logs = [];
    const keep = (l) => {
      logs.push(l);
      onLog(name, l, Date.now());
    };
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        const parts = (rest + d).split('\n');
        rest = parts.pop();
        for (const p of parts) if (p) keep(`stdio ${p}`);
      });
    }
    let started = false;
    const sentAt = Date.now();
    child.on('message', (m) => {
      if (m && m.log) keep(m.log);
      if (m && m.port && !started) {
        started = true;
        const inst = {
          name,
          url: `http://127.0.0.1:${m.port}`,
          port: m.port,
          pid: child.pid,
          child,
          logs,
          // Its wall clock against ours, measured once (JS Date.now under the same LD_PRELOAD).
          clockOffsetMs: Math.round(m.now - (sentAt + Date.now()) / 2),
          exited: false,
          close: () => new Promise((done) => {
            if (inst.exited) return done();
            const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
            child.once('exit', () => { clearTimeout(t); done(); });
            try { child.send('close'); } catch { child.kill('SIGKILL'); }
          }),
        };
        child.once('exit', () => { inst.exited = true; });
        resolve(inst);
      }
    });
    child.once('exit', (code, sig) => {
      if (!started) reject(new Error(`instance ${name} exited before listening (${code ?? sig}): ${logs.slice(-5).join(' | ')}`));
    });
    child.once('error', reject);
  });
}

/** Resident set size of a process in bytes (Linux /proc), or null. */
function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`instance failed: ${err.stack || err.message}\n`);
    process.exit(1);
  });
}

module.exports = { startInstance, rssOf, faketimeLib, INSTANCE_SCRIPT: path.resolve(__filename) };
