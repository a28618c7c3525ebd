'use strict';

/**
 * The load generator: autocannon (programmatic API) in its own process, so that it shares its event
 * loop neither with the server under test nor with the mock backend. bench/run.js starts it pinned
 * to the other core and sends it runs over IPC:
 *
 *   { type: 'run', id, url, headers, connections, duration }  ->  { type: 'result', id, result }
 *
 * With `tokens` instead of `headers`, each request carries the next token of the list, round-robin.
 *
 * `result` is a summary of autocannon's result object (req/s, latency percentiles, status counts).
 */

const autocannon = require('autocannon');

function roundRobin(tokens, tokenIn) {
  let next = 0;
  return [{
    setupRequest(req) {
      const token = tokens[next];
      next = (next + 1) % tokens.length;
      // A cookie the request already has (the portal's, refreshSSO) stays beside the refresh token.
      const cookie = [req.headers?.cookie, `refreshToken=${token}`].filter(Boolean).join('; ');
      const header = tokenIn === 'cookie' ? { cookie } : { authorization: `Bearer ${token}` };
      return { ...req, headers: { ...req.headers, ...header } };
    },
  }];
}

/**
 * One run. `method`/`body` for POSTs (the login and refresh rows); `tokenIn: 'cookie'` sends each
 * token as the refreshToken cookie; `amount` stops after that many requests instead of `duration`
 * (the refresh rows: each refresh token is good for one rotation).
 */
function runOnce({ url, headers, tokens, tokenIn, connections, duration, amount, method, body }) {
  return new Promise((resolve, reject) => {
    const requests = tokens ? roundRobin(tokens, tokenIn) : undefined;
    // 30 s per request: 50 of LibreChat's bcrypt logins at once take about 3.5 s here (autocannon's default: 10).
    const opts = { url, headers, requests, connections, pipelining: 1, method: method ?? 'GET', body, timeout: 30 };
    if (amount) opts.amount = amount;
    else opts.duration = duration;
    autocannon(opts, (err, result) => {
      if (err) return reject(err);
      resolve({
        duration: result.duration, // seconds (measured by autocannon)
        amount: amount ?? null,
        total: result.requests.total,
        rps: result.requests.average,
        rpsStddev: result.requests.stddev,
        latency: {
          avg: result.latency.average,
          p50: result.latency.p50,
          p90: result.latency.p90,
          p99: result.latency.p99,
          max: result.latency.max,
        },
        ok2xx: result['2xx'],
        non2xx: result.non2xx,
        statusCodes: result.statusCodeStats,
        errors: result.errors,
        timeouts: result.timeouts,
        resets: result.resets,
      });
    });
  });
}

process.on('message', async (msg) => {
  if (msg?.type === 'run') {
    try {
      const cpu0 = process.cpuUsage();
      const result = await runOnce(msg);
      const cpu = process.cpuUsage(cpu0);
      result.loadGeneratorCpuUs = cpu.user + cpu.system;
      process.send({ type: 'result', id: msg.id, result });
    } catch (err) {
      process.send({ type: 'result', id: msg.id, error: err?.message ?? String(err) });
    }
  } else if (msg?.type === 'stop') {
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' });
