'use strict';

/**
 * The database commands a client sends, read on the wire: a TCP proxy in front of the test
 * database (OP_MSG: the first key of the body is the command, its value the collection). For the
 * tests and the bench row that count a flow's database operations (issue 28).
 *
 *   const proxy = await startCountingProxy(uri);   // proxy.uri: the same database through it
 *   const mark = proxy.mark();  ...;  summarise(proxy, mark)  // {count, ops: ['find users', …], background}
 *
 * `summarise` leaves out what the request did not cause: the driver's own traffic (handshakes,
 * heartbeats, `endSessions`), Mongoose's index builds after connecting, and our revocation poll
 * (a `find` on customBackendRevocations every few seconds); they are listed under `background`.
 */

const net = require('net');

const OP_MSG = 2013;
const DRIVER = new Set(['hello', 'ismaster', 'isMaster', 'ping', 'endSessions', 'buildInfo', 'saslStart', 'saslContinue', 'killCursors']);
// Mongoose builds its models' indexes in the background after connecting.
const STARTUP = new Set(['createIndexes', 'listIndexes']);
const POLL_COLLECTION = 'customBackendRevocations';

/**
 * The query filters a command carries: `filter` (find, findAndModify's `query`, count) or each
 * statement's `q` (update, delete), from the body or from the document sequences after it.
 */
function filtersOf(BSON, body, msg, offset) {
  const statements = { updates: body.updates ?? [], deletes: body.deletes ?? [] };
  // Section kind 1: size, identifier (cstring), then documents up to the size.
  for (let at = offset; at < msg.length && msg[at] === 1; ) {
    const size = msg.readInt32LE(at + 1);
    const nameEnd = msg.indexOf(0, at + 5);
    const name = msg.toString('utf8', at + 5, nameEnd);
    for (let d = nameEnd + 1; d < at + 1 + size; d += msg.readInt32LE(d)) {
      if (name in statements) statements[name].push(BSON.deserialize(msg.subarray(d, d + msg.readInt32LE(d))));
    }
    at += 1 + size;
  }
  const filters = [body.filter, body.query, ...statements.updates.map((u) => u.q), ...statements.deletes.map((u) => u.q)];
  return filters.filter((f) => f && typeof f === 'object');
}

/** A TCP proxy to `uri` that records `{command, collection, filters}` of every OP_MSG a client sends. */
async function startCountingProxy(uri) {
  const { BSON } = require('bson');
  const target = new URL(uri);
  const seen = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    let pending = Buffer.alloc(0);
    client.on('data', (chunk) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 16) {
        const size = pending.readInt32LE(0);
        if (pending.length < size) break;
        const msg = pending.subarray(0, size);
        pending = pending.subarray(size);
        // Header (16), flag bits (4), then section kind 0: the command document.
        if (msg.readInt32LE(12) !== OP_MSG || msg[20] !== 0) continue;
        try {
          const bodySize = msg.readInt32LE(21);
          const body = BSON.deserialize(msg.subarray(21, 21 + bodySize));
          const command = Object.keys(body)[0];
          const collection = command === 'getMore' ? body.collection : body[command];
          seen.push({ command, collection: typeof collection === 'string' ? collection : undefined, filters: filtersOf(BSON, body, msg, 21 + bodySize) });
        } catch {
          // not a command document we can read: not counted
        }
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(uri);
  proxied.host = `127.0.0.1:${server.address().port}`;
  // Else the driver may follow the server's own address from its handshake, around the proxy.
  proxied.searchParams.set('directConnection', 'true');
  return {
    uri: proxied.toString(),
    mark: () => seen.length,
    since: (mark) => seen.slice(mark),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * `{count, ops: ['find users', …], filters: [[…], …], background: [...]}` of the commands after
 * `mark`; `filters[i]` are the query filters of `ops[i]`.
 */
function summarise(proxy, mark) {
  const ops = [];
  const filters = [];
  const background = [];
  for (const { command, collection, filters: f } of proxy.since(mark)) {
    const name = collection ? `${command} ${collection}` : command;
    if (DRIVER.has(command) || STARTUP.has(command) || collection === POLL_COLLECTION) background.push(name);
    else {
      ops.push(name);
      filters.push(f);
    }
  }
  return { count: ops.length, ops, filters, background };
}

module.exports = { startCountingProxy, summarise };
