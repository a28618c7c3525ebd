'use strict';

// The package's own metrics (docs/operations.md, "Metrics"): counted natively (atomics, no lock on the hot
// path), read as a snapshot, and offered to Prometheus through the application's prom-client.

const { hostModule } = require('./host');
const { sharedAuthService } = require('./service');

/** Every metric's name starts with this. */
const PREFIX = 'librechat_custom_backend_';

/** The outcome counters: one family per flow, label `code` (`ok` or an error code). */
const FLOW_FAMILIES = [
  ['login', 'logins_total', 'Logins (POST /api/auth/login) by outcome: ok or the error code'],
  ['refresh', 'refreshes_total', 'Session refreshes (POST /api/auth/refresh) by outcome: ok or the error code'],
  ['logout', 'logouts_total', 'Logouts (POST /api/auth/logout) by outcome: ok or the error code'],
  ['bearer', 'bearer_checks_total', 'Bearer token checks of API requests (customJwtStrategy) by outcome: ok or the error code'],
];

/** The service to read: the one given, else the shared one if it was built (never built here: a
 * scrape must not fail, nor start a service, when the feature is off or misconfigured). */
function serviceToRead(opts) {
  return opts?.service ?? sharedAuthService();
}

/**
 * The metric families as prom-client registries take them (`name`, `help`, `type`, `get()`,
 * `reset()`): each `get()` reads the snapshot of the moment. Plain objects rather than prom-client
 * classes, so that they fit whichever prom-client copy the application has.
 */
function metricFamilies(read) {
  const family = (name, help, type, values) => ({
    name: PREFIX + name,
    help,
    type,
    aggregator: 'sum',
    async get() {
      let snapshot = null;
      try {
        snapshot = read();
      } catch {
        // A scrape never fails because of us: the family goes out without samples.
      }
      return { name: this.name, help, type, aggregator: 'sum', values: snapshot ? values(snapshot) : [] };
    },
    reset() {}, // counted natively since the service was built; prom-client's resetMetrics() cannot reset it
  });
  const byLabel = (label, entries) => entries.map(([k, value]) => ({ labels: { [label]: k }, value }));
  return [
    ...FLOW_FAMILIES.map(([flow, name, help]) =>
      family(name, help, 'counter', (s) => byLabel('code', Object.entries(s.outcomes[flow]))),
    ),
    family(
      'backend_call_duration_seconds',
      'Calls to the identity backend: latency in seconds by endpoint (login, refresh, userinfo, jwks, logout, introspection, sso_cookie, sso_lookup) and outcome (ok, refused, timeout, unavailable, rate_limited, bad_response)',
      'histogram',
      (s) => {
        const name = `${PREFIX}backend_call_duration_seconds`;
        const values = [];
        for (const c of s.backendCalls) {
          const labels = { endpoint: c.endpoint, outcome: c.outcome };
          for (const b of c.buckets) values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: b.le }, value: b.count });
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: c.count });
          values.push({ metricName: `${name}_sum`, labels, value: c.sumSeconds });
          values.push({ metricName: `${name}_count`, labels, value: c.count });
        }
        return values;
      },
    ),
    family('backend_calls_in_flight', 'Calls to the identity backend in flight now', 'gauge', (s) => [
      { labels: {}, value: s.backendCallsInFlight },
    ]),
    family(
      'backend_breaker_state',
      'Circuit breaker of each backend host (scheme://host:port of the configured URLs) and lane (login, token, session, keys): 0 closed, 1 half-open, 2 open',
      'gauge',
      (s) => s.backendBreakers.map((b) => ({ labels: { host: b.host, lane: b.lane }, value: b.state })),
    ),
    family(
      'backend_breaker_openings_total',
      'Times the circuit breaker of each backend host and lane opened (failures in a row, or a failed probe)',
      'counter',
      (s) => s.backendBreakers.map((b) => ({ labels: { host: b.host, lane: b.lane }, value: b.openings })),
    ),
    family('cache_hits_total', 'Per-request cache lookups answered from the cache, by cache (user, backend_token)', 'counter', (s) =>
      byLabel('cache', Object.entries(s.cache).map(([k, c]) => [k, c.hits])),
    ),
    family('cache_misses_total', 'Per-request cache lookups the cache could not answer, by cache (user, backend_token)', 'counter', (s) =>
      byLabel('cache', Object.entries(s.cache).map(([k, c]) => [k, c.misses])),
    ),
    family(
      'single_flight_joins_total',
      'Callers that shared a backend call or user lookup already in flight instead of making their own, by flight (backend_token, backend_user, jwks)',
      'counter',
      (s) => byLabel('flight', Object.entries(s.singleFlightJoins)),
    ),
    family('refresh_lease_waits_total', 'Refreshes that waited for another request\'s refresh of the same session', 'counter', (s) => [
      { labels: {}, value: s.refreshLeaseWaits },
    ]),
    family('jwt_fast_path_answers_total', "API requests JWT_FAST_PATH answered from memory without passport's strategy", 'counter', (s) => [
      { labels: {}, value: s.jwtFastPathAnswers },
    ]),
    family('sso_untrusted_headers_total', 'Single sign-on identity headers from a peer that is not a trusted proxy (ignored)', 'counter', (s) => [
      { labels: {}, value: s.ssoUntrustedHeaders },
    ]),
  ];
}

/** LibreChat's prom-client (throws when there is none: the caller says so). */
const promClientOf = () => hostModule('prom-client');

/**
 * Registers the package's metric families with a prom-client registry (default: the application's
 * prom-client default registry). Registering again replaces them. Returns the registry.
 * `opts.service`: the service to read (default: the shared one, once built).
 */
function registerCustomBackendMetrics(register, opts = {}) {
  const registry = register ?? promClientOf().register;
  const read = () => {
    const service = serviceToRead(opts);
    return service ? service.metrics() : null;
  };
  for (const metric of metricFamilies(read)) {
    if (registry.getSingleMetric(metric.name)) registry.removeSingleMetric(metric.name);
    registry.registerMetric(metric);
  }
  return registry;
}

/**
 * Express middleware for the path of an existing metrics endpoint whose registry is out of reach
 * (LibreChat's `createMetrics()` keeps its own): mounted before it, it appends the package's
 * metrics to that endpoint's answer when (and only when) the endpoint answered 200 with the
 * Prometheus text format, so its access check (LibreChat: `METRICS_SECRET`) stays the only one.
 */
function appendCustomBackendMetrics(opts = {}) {
  let registry = null;
  let unavailable = false;
  const ours = () => {
    if (!registry) {
      const { Registry } = promClientOf();
      registry = registerCustomBackendMetrics(new Registry(), opts);
    }
    return registry.metrics();
  };
  return function customBackendMetrics(req, res, next) {
    if (req.method !== 'GET' || unavailable || !serviceToRead(opts)) return next();
    const end = res.end;
    res.end = function appendOnEnd(chunk, encoding, cb) {
      res.end = end;
      if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
      const type = String(res.getHeader('content-type') ?? '');
      if (res.statusCode !== 200 || chunk == null || res.headersSent || !type.startsWith('text/plain')) {
        return end.call(this, chunk, encoding, cb);
      }
      const text = Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      let more;
      try {
        more = ours();
      } catch (err) {
        unavailable = true; // no prom-client in the application: say it once, then stay out of the way
        (serviceToRead(opts)?.logger ?? console).warn(`[customBackendAuth] metrics not appended: ${err.message}`);
        return end.call(this, chunk, encoding, cb);
      }
      Promise.resolve(more)
        .then((extra) => `${text}${text.endsWith('\n') || !text ? '' : '\n'}${extra}`, () => text)
        .then((body) => {
          // Set for the original body (e.g. by res.send): the new body's length, and no ETag.
          res.setHeader('Content-Length', Buffer.byteLength(body));
          res.removeHeader('ETag');
          end.call(res, body, 'utf8', cb);
        });
      return res;
    };
    return next();
  };
}

module.exports = {
  METRICS_PREFIX: PREFIX,
  registerCustomBackendMetrics,
  appendCustomBackendMetrics,
};
