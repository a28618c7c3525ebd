'use strict';

/**
 * Network helpers for tests. `closedPort()`: a TCP port with nothing listening.
 *
 * `startTcpProxy(uri)`: a TCP proxy in front of the test database, for tests that need the database to go away after a
 * service has warmed up through it (`cut()` drops every connection and refuses new ones), or to answer late (`hold()`
 * keeps the database's replies until `release()`: requests that must overlap in flight then do, whatever the machine's
 * load), or to be unreachable (`refuse()` drops every connection and stops listening: new ones are refused by the
 * operating system, as for a host that is down). `port` is the proxy's port (for a URL of another scheme).
 *
 *   const proxy = await startTcpProxy(mongoUri('db'));
 *   proxy.uri   // the same URI through the proxy
 *   proxy.hold(); ...; proxy.release();
 *   proxy.cut();
 *   await proxy.close();
 */

const net = require('net');

async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function startTcpProxy(uri) {
  const target = new URL(uri);
  const sockets = new Set();
  let open = true;
  let held = null; // [socket, chunk] replies kept while held
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.on('data', (chunk) => (held ? held.push([client, chunk]) : client.write(chunk)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(uri);
  proxied.host = `127.0.0.1:${server.address().port}`;
  // Else the driver may follow the server's own address (replica-set discovery) around the proxy.
  proxied.searchParams.set('directConnection', 'true');
  return {
    uri: proxied.toString(),
    hold() {
      held = held || [];
    },
    release() {
      const kept = held || [];
      held = null;
      for (const [socket, chunk] of kept) if (!socket.destroyed) socket.write(chunk);
    },
    port: server.address().port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    refuse() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
    close() {
      if (!server.listening) return Promise.resolve(this.cut());
      return this.refuse();
    },
  };
}

module.exports = { startTcpProxy, closedPort };
