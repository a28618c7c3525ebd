'use strict';

/**
 * Backend events as a backend sends them (docs/logout-events-revocation.md, "Backend events"): a JSON body signed with
 * HMAC-SHA256 over `<unix seconds>.<body>`, in `X-Custom-Backend-Signature: t=…,v1=…`.
 *
 *   const { body, signature } = signEvent(secret, { id, type, time, userId });
 *   await request(app).post(EVENTS_PATH).set(SIGNATURE_HEADER, signature).set('Content-Type', 'application/json').send(body);
 */

const crypto = require('crypto');

const EVENTS_PATH = '/api/auth/custom-backend/events';
const SIGNATURE_HEADER = 'X-Custom-Backend-Signature';
const EVENTS_SECRET = 'events-secret-0123456789abcdef0123456789';

let counter = 0;

/** A fresh event of `type` for backend user `userId`, happening now. */
function backendEvent(type, userId, extra = {}) {
  counter += 1;
  return { id: `evt-${process.pid}-${Date.now()}-${counter}`, type, time: Date.now() / 1000, userId, ...extra };
}

/** The body (a string: signed as sent) and its signature header value. */
function signEvent(secret, event, { t = Math.floor(Date.now() / 1000) } = {}) {
  const body = typeof event === 'string' ? event : JSON.stringify(event);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return { body, signature: `t=${t},v1=${v1}` };
}

/** Posts a signed event to an app (supertest `request`): the supertest response. */
function postEvent(request, app, event, { secret = EVENTS_SECRET, t, signature } = {}) {
  const signed = signEvent(secret, event, { t });
  return request(app)
    .post(EVENTS_PATH)
    .set('Content-Type', 'application/json')
    .set(SIGNATURE_HEADER, signature ?? signed.signature)
    .send(signed.body);
}

module.exports = { EVENTS_PATH, SIGNATURE_HEADER, EVENTS_SECRET, backendEvent, signEvent, postEvent };
