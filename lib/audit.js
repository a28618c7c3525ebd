'use strict';

// Audit events (docs/security.md, "Audit events"): one structured event per security-relevant action, to the
// service's logger at `info` under AUDIT_PREFIX and to the operator's optional `onAuditEvent`.
// Identifiers only: never a token, password, refresh token or token hash.

/** The stable event names. Nothing else is emitted. */
const { UNPRINTABLE } = require('./http');
const { callerCaused } = require('./errors');

const AUDIT_EVENTS = Object.freeze({
  LOGIN_SUCCESS: 'login.success',
  LOGIN_FAILURE: 'login.failure',
  LOGIN_2FA_PENDING: 'login.2fa_pending',
  REFRESH_SUCCESS: 'refresh.success',
  REFRESH_OUTAGE: 'refresh.outage',
  REFRESH_REFUSED: 'refresh.refused',
  REFRESH_FAILURE: 'refresh.failure',
  REFRESH_REUSE_DETECTED: 'refresh.reuse_detected',
  LOGOUT: 'logout',
  LOGOUT_ALL: 'logout.all',
  BACKEND_EVENT_RECEIVED: 'backend_event.received',
  BACKEND_EVENT_APPLIED: 'backend_event.applied',
  BACKEND_SESSION_ENDED: 'backend_session.ended',
  ACCESS_DENIED: 'access.denied',
  SECOND_FACTOR_CHALLENGED: 'second_factor.challenged',
  SECOND_FACTOR_PASSED: 'second_factor.passed',
  SECOND_FACTOR_FAILED: 'second_factor.failed',
  SECOND_FACTOR_EXHAUSTED: 'second_factor.exhausted',
  BREAKER_OPENED: 'breaker.opened',
  BREAKER_CLOSED: 'breaker.closed',
});

const KNOWN = new Set(Object.values(AUDIT_EVENTS));

/** Every log line of an event starts with this, then the event as JSON. */
const AUDIT_PREFIX = '[customBackendAuth:audit]';

/** Request ids longer than this are cut (LibreChat's own bound, packages/api auth.ts, v0.8.8-rc1). */
const MAX_REQUEST_ID_CHARS = 128;
const MAX_FIELD_CHARS = 256;
const HEX_ID = /^[0-9a-f]{24}$/;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** How a user came in (login events' `via`, single sign-on only). */
const VIAS = new Set(['sso-cookie', 'sso-proxy']);
/** The circuit breaker's lanes (breaker events' `lane`). */
const BREAKER_LANES = new Set(['login', 'token', 'session', 'keys']);

/** A compact JWS/JWE: a token put into a request-id header is not logged. */
const COMPACT_JWT = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}$|^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){4}$/;

/** A printable, bounded string, or null. */
function clean(value, max) {
  if (typeof value !== 'string') return null;
  const s = value.replace(UNPRINTABLE, '').trim().slice(0, max);
  return s === '' ? null : s;
}

const hexId = (v) => {
  const s = typeof v === 'string' ? v : v?.toString?.();
  return typeof s === 'string' && HEX_ID.test(s) ? s : null;
};

/**
 * The request's id: LibreChat's own `req.requestId` (set by its requestContextMiddleware,
 * api/server/index.js, v0.8.8-rc1), else `req.id`, else the `X-Request-Id` or `X-Correlation-Id`
 * header. Control characters stripped, at most 128 characters; a value shaped like a JWT is
 * skipped. Null when there is none.
 */
function requestIdOf(req) {
  const header = (name) => {
    const v = req?.headers?.[name];
    return Array.isArray(v) ? v[0] : v;
  };
  for (const candidate of [req?.requestId, req?.id, header('x-request-id'), header('x-correlation-id')]) {
    const id = clean(typeof candidate === 'number' ? String(candidate) : candidate, MAX_REQUEST_ID_CHARS);
    if (id && !COMPACT_JWT.test(id)) return id;
  }
  return null;
}

/** The client's address as Express sees it: `req.ip` follows the application's `trust proxy`. */
function ipOf(req) {
  return clean(req?.ip ?? req?.socket?.remoteAddress, 64);
}

/**
 * Builds one event from what the caller knows. `fields`: `outcome` ('ok' or an error code),
 * `userId`, `backendId`, `session`, `host`, `lane`, `via`, `time` (ms or Date; default now), and `req` (for `ip`
 * and `requestId`). Anything not an identifier of the expected shape becomes null.
 */
function auditEvent(event, fields = {}) {
  const { req } = fields;
  const time = fields.time === undefined ? new Date() : new Date(fields.time);
  const out = {
    time: Number.isFinite(time.getTime()) ? time.toISOString() : new Date().toISOString(),
    event,
    outcome: fields.outcome === 'ok' || CODE.test(fields.outcome ?? '') ? fields.outcome : 'ok',
    userId: hexId(fields.userId),
    backendId: clean(fields.backendId, MAX_FIELD_CHARS),
    session: hexId(fields.session),
    ip: req ? ipOf(req) : null,
  };
  const requestId = req ? requestIdOf(req) : null;
  if (requestId) out.requestId = requestId;
  const host = clean(fields.host, MAX_FIELD_CHARS);
  if (host) out.host = host;
  if (BREAKER_LANES.has(fields.lane)) out.lane = fields.lane;
  if (VIAS.has(fields.via)) out.via = fields.via;
  return out;
}

/**
 * The audit of one service: `emit(event, fields)` logs the event and hands it to `onAuditEvent`.
 * Never throws and never waits: the callback runs after the current request's work, its errors
 * (thrown or rejected) are logged once per kind and otherwise ignored.
 */
class Auditor {
  #logger;
  #onAuditEvent;
  #repeated;
  #callbackFailed = false;

  /** `repeated`: a RepeatedLines; the lines of refusals callers cause are counted there. */
  constructor(logger, onAuditEvent, repeated = null) {
    if (onAuditEvent !== undefined && onAuditEvent !== null && typeof onAuditEvent !== 'function') {
      throw new TypeError('onAuditEvent must be a function');
    }
    this.#logger = logger;
    this.#onAuditEvent = onAuditEvent ?? null;
    this.#repeated = repeated;
  }

  emit(event, fields) {
    try {
      if (!KNOWN.has(event)) {
        this.#logger.error(`${AUDIT_PREFIX} unknown event name ${JSON.stringify(String(event)).slice(0, 80)} dropped`);
        return;
      }
      this.deliver(auditEvent(event, fields));
    } catch {
      // An audit failure never fails the request it describes.
    }
  }

  /**
   * Logs and hands out an event already built (the native events are built by `fromNative`). The
   * log line of a refusal its caller caused is counted per event and outcome (the first one logged,
   * then one line per interval: the last such event with `repeated`, how many more there were);
   * `onAuditEvent` gets every event. A reused refresh token is always a line of its own.
   */
  deliver(record) {
    try {
      const line = `${AUDIT_PREFIX} ${JSON.stringify(record)}`;
      const level = typeof this.#logger.info === 'function' ? 'info' : 'warn';
      if (this.#repeated && record.outcome !== 'ok' && callerCaused(record.outcome) && record.event !== AUDIT_EVENTS.REFRESH_REUSE_DETECTED) {
        const summary = (repeated, seconds) => `${AUDIT_PREFIX} ${JSON.stringify({ ...record, repeated, seconds })}`;
        this.#repeated.log(`audit ${record.event} ${record.outcome}`, level, line, summary);
      } else this.#logger[level](line);
    } catch {
      // a broken logger is not ours to fix here
    }
    const callback = this.#onAuditEvent;
    if (!callback) return;
    // Never awaited, never in the request's path: run once the current work is done.
    setImmediate(() => {
      try {
        const r = callback({ ...record });
        if (r && typeof r.then === 'function') r.then(undefined, (err) => this.#callbackError(err));
      } catch (err) {
        this.#callbackError(err);
      }
    });
  }

  /** An event from the native listener (a JSON string without a request): checked, then delivered. */
  fromNative(json) {
    try {
      const e = JSON.parse(json);
      if (!KNOWN.has(e?.event)) return;
      this.deliver(auditEvent(e.event, { ...e, time: e.timeMs }));
    } catch {
      // malformed: never from our addon
    }
  }

  #callbackError(err) {
    if (this.#callbackFailed) return;
    this.#callbackFailed = true;
    try {
      this.#logger.error(`${AUDIT_PREFIX} onAuditEvent failed (reported once): ${err?.name ?? 'Error'}`);
    } catch {
      // ignore
    }
  }
}

module.exports = { AUDIT_EVENTS, AUDIT_PREFIX, Auditor, auditEvent, ipOf, requestIdOf };
