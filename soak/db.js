'use strict';

/**
 * The soak's database: secantusdb (the test database of scripts/test-db.js) with a file storage path,
 * so that it can be killed (SIGKILL) and restarted on the same port with its data, and paused
 * (SIGSTOP/SIGCONT). `--sync-on-commit` makes every acknowledged write durable across a SIGKILL, as a
 * production MongoDB with journaled writes keeps them across a restart (without it secantusdb loses
 * the last few writes of a kill: 190 of 200 inserts survived one). The venv comes from
 * scripts/test-db.js (installed on first use).
 */

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { ensureInstalled, freePort } = require('../scripts/test-db');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ping(uri, timeoutMs = 1000) {
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * @param {{runDir: string, onPid?: (pid: number) => void}} opts
 * @returns {Promise<object>} { uri, port, pid, kill(), start(), pause(), resume(), stop() }
 */
async function startSoakDb({ runDir, onPid = () => {} }) {
  const bin = await ensureInstalled({ log: (m) => process.stderr.write(`[soak db] ${m}\n`) });
  const port = await freePort();
  const storage = path.join(runDir, `db-${port}`);
  fs.mkdirSync(storage, { recursive: true });
  const configFile = path.join(runDir, 'secantusd.toml');
  fs.writeFileSync(configFile, '# written by soak/db.js; the command-line flags set everything\n');
  const logFile = path.join(runDir, `secantusd-${port}.log`);
  const uri = `mongodb://127.0.0.1:${port}`;
  const db = { uri, port, pid: 0, child: null, paused: false, logFile, storage, starts: 0 };

  db.start = async () => {
    const fd = fs.openSync(logFile, 'a');
    const child = spawn(bin, ['--config', configFile, '--host', '127.0.0.1', '--port', String(port),
      '--storage-path', storage, '--sync-on-commit', '--log-level', 'WARNING'], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    fs.closeSync(fd);
    db.child = child;
    db.pid = child.pid;
    db.starts += 1;
    onPid(child.pid, [storage, logFile]);
    let exited = false;
    child.once('exit', () => { exited = true; });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited) throw new Error(`soak db exited at start; see ${logFile}`);
      try {
        await ping(uri);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`soak db did not answer within 60 s: ${e.message}`);
      }
      await sleep(100);
    }
  };

  const gone = () => !db.child || db.child.exitCode !== null || db.child.signalCode !== null;
  const waitGone = async () => {
    while (!gone()) await sleep(20);
  };

  /** SIGKILL, as a crash: nothing flushed beyond what was acknowledged. */
  db.kill = async () => {
    if (gone()) return;
    if (db.paused) db.resume();
    db.child.kill('SIGKILL');
    await waitGone();
  };
  db.pause = () => {
    if (gone() || db.paused) return;
    db.child.kill('SIGSTOP');
    db.paused = true;
  };
  db.resume = () => {
    if (gone() || !db.paused) return;
    db.child.kill('SIGCONT');
    db.paused = false;
  };
  /** At the end (or on failure): killed, its storage removed. */
  db.stop = async () => {
    if (!gone()) {
      try { db.child.kill('SIGCONT'); } catch { /* gone */ }
      db.child.kill('SIGKILL');
      await waitGone();
    }
    fs.rmSync(storage, { recursive: true, force: true });
    fs.rmSync(logFile, { force: true });
  };

  await db.start();
  return db;
}

module.exports = { startSoakDb, ping };
