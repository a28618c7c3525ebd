#!/usr/bin/env node
'use strict';

/**
 * A real MongoDB-wire-compatible server for tests (secantusdb, from PyPI).
 *
 *   const { startTestDb, stopTestDb } = require('./scripts/test-db');
 *   const db = await startTestDb();      // { uri, port, pid, stop, logFile }
 *   ...                                  // db.uri === 'mongodb://127.0.0.1:PORT'
 *   await db.stop();                     // or: await stopTestDb(db) / stopTestDb(db.pid)
 *
 * CLI:
 *   node scripts/test-db.js start        prints {"uri":...,"pid":...}, runs until SIGINT/SIGTERM
 *   node scripts/test-db.js install      only creates the venv (e.g. in CI before jest)
 *   node scripts/test-db.js stop PID     stops a server started elsewhere, waits until it is gone
 *
 * The first use creates a venv in the build cache (scripts/cache.sh: venv-testdb-<key>, keyed by
 * the pip spec and the python; shared by every checkout) and pip-installs secantusdb into it; a lock
 * directory keeps concurrent callers from installing at the same time. Server logs go to
 * <repo>/.testdb/. Environment overrides: TESTDB_PYTHON (python used to create the venv),
 * TESTDB_PIP_SPEC (what pip installs), TESTDB_START_TIMEOUT_MS (default 60000), LCBA_CACHE_DIR.
 */

const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const REPO = path.resolve(__dirname, '..');
const PIP_SPEC = process.env.TESTDB_PIP_SPEC || 'secantusdb==0.7.0b3';
const PYTHON = process.env.TESTDB_PYTHON || 'python3';
// The same folder as scripts/cache.sh's LCBA_CACHE_DIR.
const CACHE_DIR = process.env.LCBA_CACHE_DIR
  || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'librechat-custom-backend-auth');
const VENV = path.join(CACHE_DIR, `venv-testdb-${venvKey()}`);
const SERVER_BIN = path.join(VENV, 'bin', 'secantusd-py');
const LOCK_DIR = `${VENV}.lock`;
const STATE_DIR = path.join(REPO, '.testdb');
const INSTALL_LOG = path.join(STATE_DIR, 'install.log');
const RUN_DIR = path.join(STATE_DIR, 'run');
const START_TIMEOUT_MS = Number(process.env.TESTDB_START_TIMEOUT_MS) || 60_000;
const STOP_KILL_AFTER_MS = 15_000;
const LOCK_STALE_MS = 15 * 60_000;
const KEEP_LOGS = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What the venv is made of: another spec or python gets a venv of its own. */
function venvKey() {
  let python = PYTHON;
  try {
    python += execFileSync(PYTHON, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    /* no python: installing will say so */
  }
  return crypto.createHash('sha256').update(`${PIP_SPEC}\n${python}`).digest('hex').slice(0, 16);
}

// Servers this process started, by pid: a bare pid given to stopTestDb must still be waited for
// until Node has reaped it, or kill(pid, 0) keeps answering for the zombie.
const OWN_SERVERS = new Map();

function note(log, msg) {
  if (log === false) return;
  (typeof log === 'function' ? log : (m) => process.stderr.write(`[test-db] ${m}\n`))(msg);
}

function tail(file, lines = 30) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n').trim();
  } catch {
    return '(no log)';
  }
}

function run(cmd, args, logFd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], cwd: REPO });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}`)));
  });
}

/* ------------------------------------------------------------------ install */

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  // A zombie answers kill(0) but is gone for our purposes.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    /* no /proc: trust kill(0) */
  }
  return true;
}

function lockIsStale() {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(LOCK_DIR, 'owner.json'), 'utf8'));
    if (!pidAlive(owner.pid)) return true;
    return Date.now() - owner.at > LOCK_STALE_MS;
  } catch {
    // Lock dir without owner file: it is being created right now, or its creator died at once.
    try {
      return Date.now() - fs.statSync(LOCK_DIR).mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
}

async function withInstallLock(fn) {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      if (lockIsStale()) {
        fs.rmSync(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`test-db: timed out waiting for install lock ${LOCK_DIR}`);
      await sleep(500);
    }
  }
  try {
    fs.writeFileSync(path.join(LOCK_DIR, 'owner.json'), JSON.stringify({ pid: process.pid, at: Date.now() }));
    return await fn();
  } finally {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

/** Makes sure the venv's bin/secantusd-py exists; returns its path. */
async function ensureInstalled({ log } = {}) {
  if (fs.existsSync(SERVER_BIN)) return SERVER_BIN;
  return withInstallLock(async () => {
    if (fs.existsSync(SERVER_BIN)) return SERVER_BIN; // someone else installed while we waited
    const started = Date.now();
    note(log, `installing ${PIP_SPEC} into ${VENV} (first run only, about a minute)...`);
    const fd = fs.openSync(INSTALL_LOG, 'w');
    try {
      if (!fs.existsSync(path.join(VENV, 'bin', 'python'))) {
        fs.rmSync(VENV, { recursive: true, force: true });
        await run(PYTHON, ['-m', 'venv', VENV], fd);
      }
      await run(path.join(VENV, 'bin', 'python'),
        ['-m', 'pip', 'install', '--pre', '--disable-pip-version-check', '--no-input', PIP_SPEC], fd);
    } catch (e) {
      throw new Error(`test-db: installing ${PIP_SPEC} failed: ${e.message}\n--- ${INSTALL_LOG} (tail) ---\n${tail(INSTALL_LOG)}`);
    } finally {
      fs.closeSync(fd);
    }
    if (!fs.existsSync(SERVER_BIN)) {
      throw new Error(`test-db: pip finished but ${SERVER_BIN} is missing\n${tail(INSTALL_LOG)}`);
    }
    note(log, `installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return SERVER_BIN;
  });
}

/* ------------------------------------------------------------------ run */

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function isTestDbProcess(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('secantusd');
  } catch (e) {
    return e.code !== 'ENOENT'; // no /proc at all: cannot check, assume yes
  }
}

function pruneOldLogs() {
  try {
    const logs = fs.readdirSync(STATE_DIR)
      .filter((f) => /^secantusd-.*\.log$/.test(f))
      .map((f) => ({ f, t: fs.statSync(path.join(STATE_DIR, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const { f } of logs.slice(KEEP_LOGS)) fs.rmSync(path.join(STATE_DIR, f), { force: true });
  } catch {
    /* best effort */
  }
}

/**
 * The records in `dir` (JSON files named as `pattern` says, each with `owner`: the pid of the
 * process that wrote it) whose owner is gone: `reap(record)` stops and removes what that process
 * left, then the record is deleted (an unreadable one too). Shared with soak/run.js.
 */
function reapRecordsOfGoneOwners(dir, pattern, reap) {
  let files = [];
  try {
    files = fs.readdirSync(dir).filter((f) => pattern.test(f));
  } catch {
    return;
  }
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pidAlive(rec.owner)) continue;
      reap(rec);
    } catch {
      /* unreadable: dropped */
    }
    fs.rmSync(file, { force: true });
  }
}

/** Servers whose starting process died without stopping them (e.g. jest was SIGKILLed). */
function reapOrphans(log) {
  reapRecordsOfGoneOwners(RUN_DIR, /^/, (rec) => {
    if (pidAlive(rec.pid) && isTestDbProcess(rec.pid)) {
      note(log, `stopping orphaned test db pid ${rec.pid} (its starter ${rec.owner} is gone)`);
      try { process.kill(rec.pid, 'SIGTERM'); } catch { /* gone */ } // it deletes its own temp dir
    } else if (rec.tmpDir) {
      fs.rmSync(rec.tmpDir, { recursive: true, force: true });
    }
  });
}

async function ping(uri) {
  // Loaded lazily so `install` works without node_modules.
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * Starts a fresh in-memory server on a free port of 127.0.0.1 and waits until it answers ping.
 * @param {{log?: false|((msg: string) => void)}} [opts] log: false silences the stderr notes.
 * @returns {Promise<{uri: string, port: number, pid: number, logFile: string, stop: () => Promise<void>}>}
 */
async function startTestDb({ log } = {}) {
  const bin = await ensureInstalled({ log });
  fs.mkdirSync(RUN_DIR, { recursive: true });
  reapOrphans(log);
  pruneOldLogs();

  const port = await freePort();
  const uri = `mongodb://127.0.0.1:${port}`;
  const logFile = path.join(STATE_DIR, `secantusd-${port}-${Date.now()}.log`);
  // An explicit (empty) config file turns off secantusd's auto-discovery of ./secantusd.toml,
  // ~/.secantus/secantusd.toml and /etc/secantus/secantusd.toml, so the host cannot change the tests.
  const configFile = path.join(STATE_DIR, 'secantusd.toml');
  if (!fs.existsSync(configFile)) fs.writeFileSync(configFile, '# written by scripts/test-db.js; the command-line flags set everything\n');
  // ':memory:' storage lives in a temp dir that the server deletes on a clean exit; keep it under
  // .testdb/tmp so one left by a killed server is ours to delete.
  const tmpDir = path.join(STATE_DIR, 'tmp', `${port}-${Date.now()}`);
  fs.mkdirSync(tmpDir, { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  const args = ['--config', configFile, '--host', '127.0.0.1', '--port', String(port), '--storage-path', ':memory:'];
  const child = spawn(bin, args, {
    stdio: ['ignore', fd, fd],
    cwd: STATE_DIR,
    env: { ...process.env, PYTHONUNBUFFERED: '1', TMPDIR: tmpDir },
  });
  fs.closeSync(fd);
  child.unref();

  let exited = null;
  let spawnError = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  child.on('error', (e) => { spawnError = e; });
  await new Promise((r) => setImmediate(r));
  if (spawnError) throw new Error(`test-db: cannot run ${bin}: ${spawnError.message}`);
  const { pid } = child;
  const runFile = path.join(RUN_DIR, `${pid}.json`);
  fs.writeFileSync(runFile, JSON.stringify({ pid, owner: process.pid, port, uri, logFile, tmpDir }));

  const handle = { uri, port, pid, logFile, child, runFile, tmpDir };
  handle.stop = () => stopTestDb(handle);
  OWN_SERVERS.set(pid, handle);

  const started = Date.now();
  let lastErr;
  for (;;) {
    if (spawnError || exited) {
      OWN_SERVERS.delete(pid);
      fs.rmSync(runFile, { force: true });
      fs.rmSync(tmpDir, { recursive: true, force: true });
      const why = spawnError ? spawnError.message : `exited with ${exited.code ?? exited.signal}`;
      throw new Error(`test-db: server ${why} before answering ping on ${uri}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
    }
    try {
      await ping(uri);
      break;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() - started > START_TIMEOUT_MS) {
      await stopTestDb(handle).catch(() => {});
      throw new Error(`test-db: server on ${uri} (pid ${pid}) did not answer ping within ${START_TIMEOUT_MS} ms` +
        ` (last error: ${lastErr && lastErr.message})\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
    }
    await sleep(200);
  }
  return handle;
}

/**
 * Stops a server: SIGTERM, wait until the pid is really gone, SIGKILL after 15 s.
 * A bare pid is only signalled when it is a secantusd process (guards against pid reuse).
 * @param {number | {pid: number}} pidOrHandle
 */
async function stopTestDb(pidOrHandle) {
  const given = typeof pidOrHandle === 'object' && pidOrHandle ? pidOrHandle : { pid: Number(pidOrHandle) };
  const { pid } = given;
  if (!Number.isInteger(pid) || pid <= 0) throw new TypeError(`stopTestDb: bad pid ${pid}`);
  const handle = OWN_SERVERS.get(pid) || given;
  const ours = Boolean(handle.child && handle.child.pid === pid);
  // Our own child is gone once Node has reaped it (exitCode/signalCode set); before that it is a
  // zombie that still holds its pid. Anyone else's process is gone when the pid is free or a zombie.
  const gone = () => (ours ? handle.child.exitCode !== null || handle.child.signalCode !== null : !pidAlive(pid));
  const signal = (sig) => {
    try { process.kill(pid, sig); } catch { /* already gone */ }
  };

  if (!gone() && (ours || isTestDbProcess(pid))) {
    signal('SIGTERM');
    const killAt = Date.now() + STOP_KILL_AFTER_MS;
    let killed = false;
    while (!gone()) {
      if (!killed && Date.now() > killAt) {
        signal('SIGKILL');
        killed = true;
      } else if (killed && Date.now() > killAt + 10_000) {
        throw new Error(`test-db: pid ${pid} survived SIGKILL`);
      }
      await sleep(50);
    }
  }
  const runFile = handle.runFile || path.join(RUN_DIR, `${pid}.json`);
  let { tmpDir } = handle;
  if (!tmpDir) {
    try { ({ tmpDir } = JSON.parse(fs.readFileSync(runFile, 'utf8'))); } catch { /* no record */ }
  }
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.rmSync(runFile, { force: true });
  OWN_SERVERS.delete(pid);
}

module.exports = { startTestDb, stopTestDb, ensureInstalled, freePort, reapRecordsOfGoneOwners, paths: { REPO, VENV, SERVER_BIN, STATE_DIR } };

/* ------------------------------------------------------------------ CLI */

async function main(argv) {
  const [cmd, arg] = argv;
  if (cmd === 'install') {
    await ensureInstalled();
    process.stdout.write(`${SERVER_BIN}\n`);
    return;
  }
  if (cmd === 'stop') {
    await stopTestDb(Number(arg));
    return;
  }
  if (cmd !== 'start') {
    process.stderr.write('usage: node scripts/test-db.js start | install | stop PID\n');
    process.exitCode = 2;
    return;
  }
  const db = await startTestDb();
  process.stdout.write(`${JSON.stringify({ uri: db.uri, pid: db.pid })}\n`);
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  const onSignal = async (sig) => {
    if (stopping) return;
    stopping = true;
    const t = Date.now();
    await stopTestDb(db).catch((e) => process.stderr.write(`[test-db] ${e.message}\n`));
    process.stderr.write(`[test-db] ${sig}: server pid ${db.pid} stopped in ${Date.now() - t} ms\n`);
    clearInterval(keepAlive);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  db.child.on('exit', (code, sig) => {
    if (stopping) return;
    process.stderr.write(`[test-db] server exited unexpectedly (${code ?? sig}); see ${db.logFile}\n`);
    clearInterval(keepAlive);
    process.exitCode = 1;
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`${e.stack || e.message}\n`);
    process.exit(1);
  });
}
