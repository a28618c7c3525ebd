'use strict';

/**
 * A MongoDB wire-protocol server that is a primary in the middle of a failover: it answers the
 * handshake and heartbeats (`hello`/`isMaster`, `ping`, `endSessions`) as a standalone server, and
 * every other command with the error a stepped-down primary sends (default `NotWritablePrimary`,
 * 10107). For tests of how the addon maps such answers; it holds no data and is no database.
 *
 *   const fm = await startFailoverMongo({ code: 189, codeName: 'PrimarySteppedDown' });
 *   fm.uri  // mongodb://127.0.0.1:PORT/db
 *   fm.commands  // names of the commands refused so far
 *   await fm.close();
 */

const net = require('net');
const { BSON } = require('bson');

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

function hello() {
  return {
    ismaster: true,
    isWritablePrimary: true,
    helloOk: true,
    maxBsonObjectSize: 16 * 1024 * 1024,
    maxMessageSizeBytes: 48000000,
    maxWriteBatchSize: 100000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: 1,
    minWireVersion: 0,
    maxWireVersion: 17,
    readOnly: false,
    ok: 1,
  };
}

async function startFailoverMongo({ code = 10107, codeName = 'NotWritablePrimary', errorLabels } = {}) {
  const sockets = new Set();
  const commands = [];
  let nextId = 1;

  const answer = (cmd) => {
    const name = Object.keys(cmd)[0] ?? '';
    const lower = name.toLowerCase();
    if (lower === 'hello' || lower === 'ismaster') return hello();
    if (lower === 'ping' || lower === 'endsessions' || lower === 'buildinfo') return { ok: 1 };
    commands.push(name);
    return { ok: 0, errmsg: `${codeName} (failover test server)`, code, codeName, ...(errorLabels ? { errorLabels } : {}) };
  };

  const header = (length, responseTo, opCode) => {
    const b = Buffer.alloc(16);
    b.writeInt32LE(length, 0);
    b.writeInt32LE(nextId++, 4);
    b.writeInt32LE(responseTo, 8);
    b.writeInt32LE(opCode, 12);
    return b;
  };

  function reply(socket, requestId, opCode, body) {
    const doc = Buffer.from(BSON.serialize(body));
    if (opCode === OP_QUERY) {
      const fixed = Buffer.alloc(20); // responseFlags, cursorID (8), startingFrom, numberReturned
      fixed.writeInt32LE(1, 16);
      socket.write(Buffer.concat([header(16 + 20 + doc.length, requestId, OP_REPLY), fixed, doc]));
    } else {
      const flags = Buffer.alloc(5); // flagBits, section kind 0
      socket.write(Buffer.concat([header(16 + 5 + doc.length, requestId, OP_MSG), flags, doc]));
    }
  }

  function handle(socket, msg) {
    const requestId = msg.readInt32LE(4);
    const opCode = msg.readInt32LE(12);
    if (opCode === OP_QUERY) {
      let at = 20; // header + flags
      while (msg[at] !== 0) at++; // fullCollectionName
      at += 1 + 8; // NUL, numberToSkip, numberToReturn
      const size = msg.readInt32LE(at);
      return reply(socket, requestId, OP_QUERY, answer(BSON.deserialize(msg.subarray(at, at + size))));
    }
    if (opCode === OP_MSG) {
      let at = 20; // header + flagBits
      const end = msg.readInt32LE(16) & 1 ? msg.length - 4 : msg.length;
      while (at < end) {
        const kind = msg[at];
        at += 1;
        const size = msg.readInt32LE(at);
        if (kind === 0) return reply(socket, requestId, OP_MSG, answer(BSON.deserialize(msg.subarray(at, at + size))));
        at += size;
      }
    }
    return socket.destroy();
  }

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
        const len = buf.readInt32LE(0);
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        try {
          handle(socket, msg);
        } catch {
          socket.destroy();
        }
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    uri: `mongodb://127.0.0.1:${port}/failover?directConnection=true`,
    commands,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

module.exports = { startFailoverMongo };
