// Types of the hand-written shim (index.js). The native class is described in binding.d.ts.

import type { ObjectId } from 'bson';

/** Options: environment-variable names (see README) overriding `process.env`, plus a logger. */
export interface CustomBackendAuthOptions {
  [variable: string]: string | number | boolean | undefined | Logger;
  logger?: Logger;
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
  | { user: LibreChatUser; token: string; refreshToken: string; refreshExpiresAt: number }
  | { user: LibreChatUser; twoFAPending: true; tempToken: string };

export interface RefreshResult {
  user: LibreChatUser;
  token: string;
  refreshToken: string;
  refreshExpiresAt: number;
  /** `token_provider` cookie value: `custom-backend`, or `librechat` for a local account. */
  provider: string;  /** Answered during a backend outage without a backend refresh (README section 7): `refreshToken`
   * is the one presented, unchanged, and `token` expires no later than the one issued with it. */
  outage: boolean;
}

export interface BearerCheck {
  kind: 'user' | 'load' | 'backend' | 'invalid';
  id?: string;
  version?: number;
  reason?: string;
}

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'BAD_REQUEST'
  | 'INVALID_CREDENTIALS'
  | 'ACCESS_DENIED'
  | 'ACCOUNT_CONFLICT'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_BAD_RESPONSE'
  | 'BACKEND_RATE_LIMITED'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TWO_FACTOR_REQUIRED'
  | 'SESSION_INVALID'
  | 'USER_NOT_FOUND'
  | 'DB_UNAVAILABLE'
  | 'DB_ERROR'
  | 'INTERNAL';

export class CustomBackendAuthError extends Error {
  readonly code: ErrorCode;
  /** The HTTP status this error answers with. */
  readonly status: number;
}

export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>>;

export class CustomBackendAuthService {
  /** Throws `CustomBackendAuthError` with code `CONFIG_INVALID` naming the variable. */
  constructor(options?: CustomBackendAuthOptions);
  readonly logger: Logger;
  readonly secureCookies: boolean;
  /**
   * Rejects with `BAD_REQUEST` before any native call when the user name (`email`, else `username`)
   * or `password` is missing, not a string, or longer than 256 / 1024 characters.
   */
  login(credentials: { email?: unknown; username?: unknown; password?: unknown }): Promise<LoginResult>;
  checkBearer(token: string): BearerCheck;
  verifyAccessToken(token: string): string | null;
  cachedUser(id: string, version: number): LibreChatUser | null;
  loadUser(id: string): Promise<LibreChatUser | null>;
  authenticateBackendToken(token: string): Promise<LibreChatUser>;
  refresh(refreshToken: string): Promise<RefreshResult>;
  /** Resolves true when the backend logout call failed (the logout happened anyway). Rejects
   * (503 for the database) when the session could not be ended: nothing was ended, retry. */
  logout(refreshToken: string | null, userId: string | null): Promise<boolean>;
  evictUser(id: string): void;
  close(): Promise<void>;
}

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
