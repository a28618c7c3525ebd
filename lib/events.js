'use strict';

// Backend events (push): the Express handler the backend posts signed events to (docs/logout-events-revocation.md,
// "Backend events"). The signature covers the raw body, so this handler reads the body itself and
// must be mounted before LibreChat's `express.json()`.

const { CustomBackendAuthError, toAuthError } = require('./errors');
const { isCustomBackendAuthEnabled } = require('./switches');
const { getAuthService } = require('./service');
const { RETRY_AFTER_SECONDS, logFailure, printable, sendError } = require('./http');
const { AUDIT_EVENTS } = require('./audit');

/** The request header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
const SIGNATURE_HEADER = 'x-custom-backend-signature';
/** The largest event body accepted (the native check has the same bound). */
const MAX_EVENT_BYTES = 64 * 1024;

/** The raw body: a Buffer left by `express.raw()`, else read from the stream, at most `max` bytes. */
function rawBody(req, max) {
  if (Buffer.isBuffer(req.body)) {
    if (req.body.length > max) return Promise.reject(tooLarge());
    return Promise.resolve(req.body);
  }
  if (req._body || req.readableEnded || (req.body !== undefined && req.body !== null)) {
    // A body parser took the body first: its bytes, which the signature covers, are gone. (body-parser
    // 1 marks `_body`; 2, Express 5's, only leaves the stream read to its end and `req.body` set.)
    return Promise.reject(
      new CustomBackendAuthError('INTERNAL', 'The backend events handler must be mounted before express.json().'),
    );
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume(); // drain what remains without keeping it
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => reject(new CustomBackendAuthError('BAD_REQUEST', 'The event body could not be read.')));
  });
}

function tooLarge() {
  const err = new CustomBackendAuthError('BAD_REQUEST', `The event body is larger than ${MAX_EVENT_BYTES} bytes.`);
  err.status = 413;
  return err;
}

/**
 * Handler for `POST /api/auth/custom-backend/events`: checks the signature, applies the event and
 * answers 200 `{status, id, type, sessionsEnded}` (`status`: applied, duplicate, stale or
 * no_account); 401 for a bad signature (nothing done), 400 for a malformed event, 413 for a body over
 * 64 KiB, 503 when the database is down (the backend should retry: events are idempotent), 404 when
 * events are off (`BACKEND_EVENTS_SECRET` unset, or the switch off).
 */
async function customBackendEventsHandler(req, res) {
  if (!isCustomBackendAuthEnabled()) return res.status(404).json({ message: 'Not found' });
  let service;
  try {
    service = getAuthService();
  } catch (err) {
    return sendError(res, toAuthError(err)); // a configuration error: 500, named at start-up already
  }
  if (!service.eventsEnabled) return res.status(404).json({ message: 'Not found' });
  try {
    const body = await rawBody(req, MAX_EVENT_BYTES);
    const signature = req.headers[SIGNATURE_HEADER];
    const r = await service.handleBackendEvent(body, typeof signature === 'string' ? signature : '');
    const who = { userId: r.userId, backendId: r.backendId, req };
    service.audit(AUDIT_EVENTS.BACKEND_EVENT_RECEIVED, { outcome: 'ok', ...who });
    // One per account it changed: one per tenant with an account of the backend user.
    if (r.status === 'applied') {
      for (const userId of r.userIds) service.audit(AUDIT_EVENTS.BACKEND_EVENT_APPLIED, { outcome: 'ok', ...who, userId });
    }
    service.logger.info(
      printable(
        `[customBackendAuth] backend event ${r.id} (${r.type}) for backend user ${r.backendId}: ${r.status}` +
          (r.status === 'applied' ? `, ${r.sessionsEnded} session(s) ended` : ''),
      ),
    );
    return res.status(200).json({ status: r.status, id: r.id, type: r.type, sessionsEnded: r.sessionsEnded });
  } catch (err) {
    const failure = toAuthError(err);
    // Refused (signature, malformed, too large) or not applied (database): received, with its code.
    service.audit(AUDIT_EVENTS.BACKEND_EVENT_RECEIVED, { outcome: failure.code, req });
    logFailure(service, 'backend event', failure);
    if (failure.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
    return sendError(res, failure);
  }
}

module.exports = { customBackendEventsHandler, SIGNATURE_HEADER, MAX_EVENT_BYTES };
