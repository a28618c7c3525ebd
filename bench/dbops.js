'use strict';

/**
 * The database operations of one login and one refresh, ours and LibreChat's (issue 28, items 3
 * and 4): `bench/run.js`'s one-shot row `dbops`. Each flow's server (`server.js`, stacks L and Llc,
 * the same code as the login and refresh rows) talks to the database through a counting proxy
 * that reads the commands on the wire (OP_MSG: the first key of the body is the command, its value
 * (`__test__/support/commandCounter.js`); the commands seen while one request is answered, and
 * shortly after, are that request's.
 */

const { startCountingProxy, summarise } = require('../__test__/support/commandCounter');

const cookieOf = (res, name) => {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return null;
};

/**
 * One login, then two refreshes (the first after a login, the second of a session in its steady
 * state), through a server of each kind started by `startServer(stack, mongoUri)`. `ours` and `lc`:
 * `{email, password}`.
 */
async function countFlows({ mongoUri, startServer, ours, lc }) {
  const proxy = await startCountingProxy(mongoUri);
  const out = {};
  try {
    for (const [key, stack, creds] of [['ours', 'L', ours], ['librechat', 'Llc', lc]]) {
      const server = await startServer(stack, proxy.uri);
      try {
        const counted = async (path, init) => {
          // Over a second apart: LibreChat's refresh token is a JWT with `iat` in seconds, so a
          // refresh within the login's second mints the same token and writes nothing.
          await new Promise((r) => setTimeout(r, 1100));
          const mark = proxy.mark();
          const res = await fetch(`${server.url}${path}`, { method: 'POST', ...init });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${key} ${path}: ${res.status}`);
          // A write the server does after answering still belongs to this request.
          await new Promise((r) => setTimeout(r, 300));
          return { res, ...summarise(proxy, mark) };
        };
        const login = await counted('/api/auth/login', {
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: creds.email, password: creds.password }),
        });
        const first = await counted('/api/auth/refresh', { headers: { cookie: `refreshToken=${cookieOf(login.res, 'refreshToken')}` } });
        const second = await counted('/api/auth/refresh', { headers: { cookie: `refreshToken=${cookieOf(first.res, 'refreshToken')}` } });
        const strip = ({ res, ...rest }) => rest; // eslint-disable-line no-unused-vars
        out[key] = { login: strip(login), refresh: strip(first), refreshSteady: strip(second) };
      } finally {
        await server.stop();
      }
    }
  } finally {
    await proxy.close();
  }
  return out;
}

module.exports = { countFlows };
