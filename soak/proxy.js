'use strict';

/**
 * The load balancer's hop in front of one LibreChat server: a TCP proxy that, while `dropRate` is
 * above 0, cuts a share of the server's answers in the middle (half of the chunk is forwarded, then
 * both sides are closed), as a flaky network or a restarting proxy does. The client then has sent
 * its request, the server has done the work, and the answer (a rotated refresh cookie, a logout's
 * confirmation) is lost.
 */

const net = require('net');

async function startEdgeProxy(targetPort, { random = Math.random } = {}) {
  const sockets = new Set();
  const state = { dropRate: 0, dropped: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.on('data', (chunk) => {
      if (state.dropRate > 0 && chunk.length > 1 && random() < state.dropRate) {
        state.dropped += 1;
        client.write(chunk.subarray(0, Math.floor(chunk.length / 2)));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    setDropRate(r) {
      state.dropRate = r;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { startEdgeProxy };
