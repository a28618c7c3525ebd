// Types of the hand-written shim (index.js). The native class is described in binding.d.ts.

import type { ObjectId } from 'bson';

/** Options: environment-variable names (see docs/configuration.md) overriding `process.env`, plus a logger and
 * an audit callback. */
export interface CustomBackendAuthOptions {
  [variable: string]: string | number | boolean | undefined | Logger | AuditCallback;
  logger?: Logger;
  /** Receives every audit event (a copy), after the request's work; never awaited, its errors
   * (thrown or rejected) are ignored (the first one is logged). */
  onAuditEvent?: AuditCallback;
}

/** The audit event names (docs/security.md, "Audit events"), frozen. */
export const AUDIT_EVENTS: Readonly<{
  LOGIN_SUCCESS: 'login.success';
  LOGIN_FAILURE: 'login.failure';
  LOGIN_2FA_PENDING: 'login.2fa_pending';
  REFRESH_SUCCESS: 'refresh.success';
  REFRESH_OUTAGE: 'refresh.outage';
  REFRESH_REFUSED: 'refresh.refused';
  REFRESH_FAILURE: 'refresh.failure';
  REFRESH_REUSE_DETECTED: 'refresh.reuse_detected';
  LOGOUT: 'logout';
  LOGOUT_ALL: 'logout.all';
  BACKEND_EVENT_RECEIVED: 'backend_event.received';
  BACKEND_EVENT_APPLIED: 'backend_event.applied';
  BACKEND_SESSION_ENDED: 'backend_session.ended';
  ACCESS_DENIED: 'access.denied';
  BREAKER_OPENED: 'breaker.opened';
  BREAKER_CLOSED: 'breaker.closed';
}>;
export type AuditEventName = (typeof AUDIT_EVENTS)[keyof typeof AUDIT_EVENTS];
/** The prefix of every audit log line (`info`), followed by the event as JSON. */
export const AUDIT_PREFIX: '[customBackendAuth:audit]';

/** One audit event. Identifiers only: never a token, password, refresh token or token hash. */
export interface AuditEvent {
  /** ISO 8601, UTC. */
  time: string;
  event: AuditEventName;
  /** `ok` or the error code. */
  outcome: 'ok' | ErrorCode;
  /** LibreChat user `_id` hex, when known. */
  userId: string | null;
  /** The backend's user id (`idOnTheSource`), when known. */
  backendId: string | null;
  /** The session document's `_id` hex (not the token), when known. */
  session: string | null;
  /** `req.ip` (the application's `trust proxy` applies); null without a request. */
  ip: string | null;
  /** LibreChat's `req.requestId`, `req.id`, or `X-Request-Id` / `X-Correlation-Id` (≤ 128 chars). */
  requestId?: string;
  /** The backend host (breaker events). */
  host?: string;
  /** The breaker lane (breaker events): whose calls it carries. */
  lane?: 'login' | 'token' | 'session' | 'keys';
  /** How the user came in (login events of single sign-on). */
  via?: 'sso-cookie' | 'sso-proxy';
}
export type AuditCallback = (event: AuditEvent) => unknown;

/** What a caller knows of an audited action (`service.audit`). */
export interface AuditFields {
  outcome?: 'ok' | ErrorCode;
  userId?: string | { toString(): string } | null;
  backendId?: string | null;
  session?: string | { toString(): string } | null;
  host?: string | null;
  /** The Express request: `ip` and `requestId` are taken from it. */
  req?: unknown;
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info?(message: string): void;
  debug?(message: string): void;
}

/** A LibreChat user as its jwt strategy yields it (lean document without secret fields, plus `id`). */
export interface LibreChatUser {
  _id: ObjectId;
  id: string;
  email: string;
  username: string;
  name?: string;
  avatar?: string;
  provider: string;
  role: string;
  idOnTheSource?: string | null;
  emailVerified: boolean;
  twoFactorEnabled?: boolean;
  createdAt: Date;
  updatedAt: Date;
  [field: string]: unknown;
}

export type LoginResult =
  | { user: LibreChatUser; token: string; refreshToken: string; refreshExpiresAt: number; sessionId: string }
  | { user: LibreChatUser; twoFAPending: true; tempToken: string; pendingId: string };

export interface RefreshResult {
  user: LibreChatUser;
  token: string;
  refreshToken: string;
  refreshExpiresAt: number;
  /** `token_provider` cookie value: `custom-backend`, or `librechat` for a local account. */
  provider: string;
  /** Answered during a backend outage without a backend refresh (docs/sessions-and-tokens.md, "Refresh"): `refreshToken`
   * is the one presented, unchanged, and `token` expires no later than the one issued with it. */
  outage: boolean;
  /** The backend failure an outage answer stood in for. */
  outageCode?: ErrorCode;
  /** The session document's `_id` hex (an audit reference). */
  sessionId: string;
  /** Single sign-on ended the presented session (another person's) and started this one for the
   * portal's user: how they came in. */
  switchedVia?: 'sso-cookie' | 'sso-proxy';
}

/** What a request carries for single sign-on (lib/sso.js `ssoRequest`; docs/single-sign-on.md). */
export interface SsoRequest {
  cookie?: string;
  /** The TCP peer's address (`req.socket.remoteAddress`). */
  peer?: string;
  /** The proxy's identity headers, lower-case names. */
  headers?: Record<string, string>;
  /** The pause mark a logout left in this browser. */
  paused?: string;
}

export type SsoLoginResult =
  | { outcome: 'none' | 'untrusted' }
  | {
      outcome: 'session';
      via: 'sso-cookie' | 'sso-proxy';
      user: LibreChatUser;
      token: string;
      refreshToken: string;
      refreshExpiresAt: number;
      sessionId: string;
    };

export interface BearerCheck {
  kind: 'user' | 'load' | 'backend' | 'invalid';
  id?: string;
  version?: number;
  reason?: string;
  /** `load`: the token's `iat`, passed back to `loadUser`. */
  issuedAt?: number;
}

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'BAD_REQUEST'
  | 'INVALID_CREDENTIALS'
  | 'ACCESS_DENIED'
  | 'ACCOUNT_CONFLICT'
  | 'TENANT_MISMATCH'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_CIRCUIT_OPEN'
  | 'BACKEND_BAD_RESPONSE'
  | 'BACKEND_RATE_LIMITED'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TWO_FACTOR_REQUIRED'
  | 'SESSION_INVALID'
  | 'USER_NOT_FOUND'
  | 'DB_UNAVAILABLE'
  | 'DB_ERROR'
  | 'SIGNATURE_INVALID'
  | 'INTERNAL';

export class CustomBackendAuthError extends Error {
  readonly code: ErrorCode;
  /** The HTTP status this error answers with. */
  readonly status: number;
  /** Sets it apart from others of its code: `reuse` (a reused refresh token ended the session). */
  readonly reason?: 'reuse';
  /** The backend id of the user it is about, where known (`ACCESS_DENIED`): for the audit. */
  readonly backendId?: string;
}

export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>>;

export class CustomBackendAuthService {
  /** Throws `CustomBackendAuthError` with code `CONFIG_INVALID` naming the variable. */
  constructor(options?: CustomBackendAuthOptions);
  readonly logger: Logger;
  /** The log lines callers can repeat, counted per kind (`AUTH_LOG_REPEAT_SECONDS`; lib/repeatedLines.js). */
  readonly repeatedLines: {
    log(kind: string, level: 'info' | 'warn' | 'error', line: string, summary: (count: number, seconds: number) => string): void;
  };
  readonly secureCookies: boolean;
  /** `BACKEND_LOGIN_USES_USERNAME`: LibreChat's login page asks for a user name. */
  readonly loginUsesUsername: boolean;
  /** LibreChat's `TRUST_TENANT_HEADER`: a request's `X-Tenant-Id` names its tenant. */
  readonly trustTenantHeader: boolean;
  /**
   * Rejects with `BAD_REQUEST` before any native call when the user name (`email`, else `username`)
   * or `password` is missing, not a string, or longer than 256 / 1024 characters.
   */
  /** `tenant`: the request's LibreChat tenant (docs/tenants.md). */
  login(credentials: { email?: unknown; username?: unknown; password?: unknown }, tenant?: string | null): Promise<LoginResult>;
  /** Ends what a login result started (its session, or its pending 2FA login, at the backend too)
   * when the application did not hand it to the user; `requireCustomBackendAuth` does this itself. */
  abandonLogin(result: LoginResult): Promise<boolean>;
  checkBearer(token: string, tenant?: string | null): BearerCheck;
  verifyAccessToken(token: string): string | null;
  cachedUser(id: string, version: number): LibreChatUser | null;
  loadUser(id: string, issuedAt?: number | null, tenant?: string | null): Promise<LibreChatUser | null>;
  /** `from`: the client's address (`req.ip`); tokens from an address a valid backend token came
   * from keep their half of the user-info budget while never-seen tokens spend the other half. */
  authenticateBackendToken(token: string, from?: string | null, tenant?: string | null): Promise<LibreChatUser>;
  refresh(refreshToken: string, tenant?: string | null, sso?: SsoRequest | null): Promise<RefreshResult>;
  /** Single sign-on on a page load without a session (docs/single-sign-on.md). */
  ssoLogin(sso: SsoRequest, tenant?: string | null): Promise<SsoLoginResult>;
  /** The pause mark a logout leaves for the request's single sign-on credential, or null. */
  ssoPauseMark(sso: SsoRequest | null): string | null;
  /** Single sign-on's settings, null when it is off. */
  readonly ssoSettings: { cookie: string | null; headers: string[]; logoutUrl: string | null } | null;
  /** Resolves true when the backend logout call failed (the logout happened anyway). Rejects
   * (503 for the database) when the session could not be ended: nothing was ended, retry. */
  logout(refreshToken: string | null, userId: string | null): Promise<boolean>;
  evictUser(id: string): void;
  /** Whether backend events are accepted (`BACKEND_EVENTS_SECRET` is set). */
  readonly eventsEnabled: boolean;
  /** Checks a signed backend event (raw body, `X-Custom-Backend-Signature`) and applies it. */
  handleBackendEvent(body: Buffer, signature: string): Promise<BackendEventResult>;
  /** Log out everywhere: every session of the user (`_id` hex), on every server. */
  logoutAll(userId: string, opts?: { req?: unknown; backendId?: string | null }): Promise<SessionsEnded>;
  /** Ends one session of the user (`sessions` is 0 when it is not theirs or gone). */
  endSession(userId: string, sessionId: string, opts?: { req?: unknown; backendId?: string | null }): Promise<SessionsEnded>;
  /** The user's live sessions, newest first. Nothing secret. */
  listSessions(userId: string): Promise<SessionInfo[]>;
  /** The session id a (verified) refresh token of `userId` names, else null. */
  sessionIdOf(refreshToken: string | null | undefined, userId: string): string | null;
  /** The user and session a genuine refresh token names (expired or not), else null. */
  refreshSubject(refreshToken: string | null | undefined): { userId: string; sessionId: string } | null;
  /** Emits an audit event to the logger and `onAuditEvent`; never throws, never waits. Unknown
   * names are dropped (logged as an error). */
  audit(event: AuditEventName, fields?: AuditFields): void;
  /** Audit events from the addon (no request) dropped so far. */
  readonly auditEventsDropped: number;
  /** The package's own metrics since the service was built (docs/operations.md, "Metrics"). */
  metrics(): CustomBackendMetrics;
  close(): Promise<void>;
}

export interface SessionInfo {
  /** The session document's id (not a token). */
  id: string;
  createdAt: Date;
  /** null before the first refresh. */
  lastRefreshedAt: Date | null;
  expiresAt: Date;
  /** Whether backend tokens are held for it. */
  backendTokens: boolean;
}

export interface SessionsEnded {
  sessions: number;
  /** Backend logout calls that failed (the sessions ended all the same). */
  backendFailures: number;
}

export interface BackendEventResult {
  status: 'applied' | 'duplicate' | 'stale' | 'no_account';
  id: string;
  type: 'user.disabled' | 'user.deleted' | 'user.changed' | 'session.revoked';
  backendId: string;
  /** The LibreChat user (`_id` hex) when the event was applied to one: the first of `userIds`. */
  userId: string | null;
  /** Every account it was applied to: one per tenant (or only the tenant the event names). */
  userIds: string[];
  sessionsEnded: number;
}

/** `ok` or an error code: the `code` label of the outcome counters. */
export type OutcomeCode = 'ok' | ErrorCode;

/** A snapshot of the package's own metrics. Counts only grow; zero counts other than `ok` are absent. */
export interface CustomBackendMetrics {
  /** Outcomes by code, per flow (`bearer`: every API request's token check). */
  outcomes: Record<'login' | 'refresh' | 'logout' | 'bearer', Partial<Record<OutcomeCode, number>>>;
  /** Latency of backend calls per endpoint and outcome, for every pair seen at least once. */
  backendCalls: Array<{
    endpoint: 'login' | 'refresh' | 'userinfo' | 'jwks' | 'logout' | 'introspection';
    outcome: 'ok' | 'refused' | 'timeout' | 'unavailable' | 'rate_limited' | 'bad_response';
    count: number;
    sumSeconds: number;
    /** Cumulative counts per upper bound (seconds); `count` is the `+Inf` bucket. */
    buckets: Array<{ le: number; count: number }>;
  }>;
  /** The fixed histogram bounds, in seconds. */
  bucketBoundsSeconds: number[];
  cache: Record<'user' | 'backend_token', { hits: number; misses: number }>;
  singleFlightJoins: Record<'backend_token' | 'backend_user' | 'jwks', number>;
  refreshLeaseWaits: number;
  /** API requests `JWT_FAST_PATH` answered from memory, without passport's strategy. */
  jwtFastPathAnswers: number;
  /** Single sign-on identity headers from a peer that is not a trusted proxy (ignored). */
  ssoUntrustedHeaders: number;
  backendCallsInFlight: number;
  /** The circuit breaker of each backend host (`scheme://host:port` of the configured URLs), lane by lane. */
  backendBreakers: Array<{ host: string; lane: 'login' | 'token' | 'session' | 'keys'; state: 0 | 1 | 2; openings: number }>;
}

/** The part of a prom-client `Registry` the package uses. */
interface PromRegistry {
  registerMetric(metric: unknown): void;
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
}

/**
 * Registers the package's metrics (`librechat_custom_backend_*`) with a prom-client registry
 * (default: the application's prom-client default registry); each scrape reads a fresh snapshot.
 * `service`: the service to read (default: the shared one, once built). Returns the registry.
 */
export function registerCustomBackendMetrics<R extends PromRegistry>(register?: R, opts?: { service?: CustomBackendAuthService }): R;
/**
 * Express middleware mounted on the path of an existing metrics endpoint (LibreChat: `/metrics`,
 * before `metricsRouter`): appends the package's metrics to its 200 text answer.
 */
export function appendCustomBackendMetrics(opts?: { service?: CustomBackendAuthService }): (req: any, res: any, next: (err?: unknown) => void) => void;

/** The single reading of `USE_CUSTOM_BACKEND_AUTH` (LibreChat's `isEnabled` rules). */
export function isCustomBackendAuthEnabled(env?: Record<string, string | undefined>): boolean;
/** The shared service, built from `process.env` on first use. */
export function getAuthService(): CustomBackendAuthService;
/** Replaces the shared service. */
export function configureCustomBackendAuth(options?: CustomBackendAuthOptions): CustomBackendAuthService;

interface StrategyOptions {
  service?: CustomBackendAuthService;
}
/** A passport strategy object (`name` and `authenticate`). */
interface PassportStrategy {
  name: string;
  authenticate(req: unknown, options?: unknown): void;
}
type Handler = (req: any, res: any, next?: (err?: unknown) => void) => unknown;

/** Passport strategy `custom-backend`: logs in against the backend. */
export function customBackendStrategy(opts?: StrategyOptions): PassportStrategy;
/** Passport strategy `jwt`, in place of LibreChat's `jwtLogin()`. */
export function customJwtStrategy(opts?: StrategyOptions): PassportStrategy;
/** `POST /api/auth/login` middleware, in place of `requireLocalAuth`. */
export const requireCustomBackendAuth: Handler;
/** `POST /api/auth/login` handler, in place of `loginController`. */
export const customBackendLoginController: Handler;
/** `POST /api/auth/refresh` handler, in place of `refreshController`. */
export const customRefreshController: Handler;
/** `POST /api/auth/logout` handler, in place of `logoutController`. */
export const customLogoutController: Handler;
/** `POST /api/auth/logout/all` handler (behind `requireJwtAuth`): log out everywhere. */
export const customLogoutAllController: Handler;
/** `GET /api/auth/sessions` handler (behind `requireJwtAuth`): the user's sessions. */
export const customSessionsController: Handler;
/** `DELETE /api/auth/sessions/:sessionId` handler (behind `requireJwtAuth`): ends one session. */
export const customEndSessionController: Handler;
/** `POST /api/auth/register`, `/requestPasswordReset`, `/resetPassword` while the switch is on: 403, as LibreChat with them turned off. */
export const customLocalAccountsClosed: Handler;
/**
 * `POST /api/auth/2fa/verify-temp`, registered before LibreChat's own: a code for the backend's
 * second factor goes to the backend (docs/second-factor.md); any other temp token goes on to
 * LibreChat's `verify2FAWithTempToken` (`next()`).
 */
export const customTwoFactorController: (req: unknown, res: unknown, next: (err?: unknown) => void) => Promise<void>;
/** `POST /api/auth/custom-backend/events` handler, mounted before `express.json()`. */
export const customBackendEventsHandler: Handler;

/** The parts of LibreChat's pre-login startup config (`GET /api/config`) the login page reads. */
interface StartupConfigPayload {
  ldap?: { enabled: boolean; username?: boolean };
  registrationEnabled?: boolean;
  passwordResetEnabled?: boolean;
  minPasswordLength?: number;
  [field: string]: unknown;
}
/**
 * Adjusts LibreChat's pre-login startup config in place and returns it: `ldap.username` when
 * BACKEND_LOGIN_USES_USERNAME is true, no registration or password reset, `minPasswordLength` 1.
 */
export function customBackendStartupConfig<T extends StartupConfigPayload>(
  payload: T,
  service?: CustomBackendAuthService,
): T;
