'use strict';

// Single sign-on (docs/single-sign-on.md): what a request carries for it, handed to the addon as
// it came: the portal cookie (raw, as the browser sent it), the TCP peer's address (the socket's,
// never X-Forwarded-For), the proxy's identity headers, and this browser's pause mark, which a
// logout sets so that the same portal identity does not sign the user straight back in.

const PAUSE_COOKIE = 'lcba_sso_pause';

/** A cookie's value exactly as the browser sent it (no decoding), or undefined. */
function rawCookie(req, name) {
  for (const part of String(req.headers?.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** `{cookie, peer, headers, paused}` for the addon, or null when single sign-on is off or the
 * request carries nothing for it. */
function ssoRequest(req, service) {
  const settings = service.ssoSettings;
  if (!settings) return null;
  const cookie = settings.cookie ? rawCookie(req, settings.cookie) : undefined;
  const headers = {};
  for (const name of settings.headers) {
    const value = req.headers?.[name];
    if (typeof value === 'string' && value.length <= 4096) headers[name] = value;
  }
  if (!cookie && Object.keys(headers).length === 0) return null;
  return { cookie, peer: req.socket?.remoteAddress, headers, paused: rawCookie(req, PAUSE_COOKIE) };
}

/** The pause mark cookie: for the browser session, sent only to this site. */
function setSsoPause(res, service, mark) {
  res.cookie(PAUSE_COOKIE, mark, { httpOnly: true, secure: service.secureCookies, sameSite: 'strict', path: '/' });
}

/** Ends a pause (a login with the password, or a new single sign-on session). */
function clearSsoPause(req, res) {
  if (rawCookie(req, PAUSE_COOKIE) !== undefined) res.clearCookie(PAUSE_COOKIE, { path: '/' });
}

/** How a single sign-on request came in, for the audit of a failure (the addon names it on success). */
const viaOf = (sso) => (sso.cookie ? 'sso-cookie' : 'sso-proxy');

module.exports = { PAUSE_COOKIE, ssoRequest, setSsoPause, clearSsoPause, viaOf };
