//! Every setting the package reads, one row each: name, kind (type and bounds, and whether it is a
//! secret), default, section and description. The parsing in `config/mod.rs` takes defaults and
//! bounds from here, `doctor` shows every row (`doctor/env.rs`), and the tables of
//! docs/configuration.md are rendered from it (`markdown`, checked by a unit test below).

/// The groups of docs/configuration.md, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Basics,
    Events,
    Request,
    Sessions,
    Breaker,
    Roles,
    Tenants,
    Sso,
    Mfa,
    StartUp,
    Mapping,
}

// The docs' headings: rendered by the unit test that writes docs/configuration.md.
#[cfg(test)]
impl Section {
    pub const ALL: [Section; 11] = [
        Section::Basics,
        Section::Events,
        Section::Request,
        Section::Sessions,
        Section::Breaker,
        Section::Roles,
        Section::Tenants,
        Section::Sso,
        Section::Mfa,
        Section::StartUp,
        Section::Mapping,
    ];

    /// The heading line of its table (markdown), with the pages that explain it.
    fn heading(self) -> &'static str {
        match self {
            Section::Basics => "**Required, and the basics**",
            Section::Events => "**Revocation and backend events** ([Backend events](logout-events-revocation.md#backend-events-push), [Revocation](logout-events-revocation.md#revocation-how-it-reaches-every-server-and-its-bounds))",
            Section::Request => "**Every request** ([Every request](sessions-and-tokens.md#every-request-customjwtstrategy))",
            Section::Sessions => "**Sessions** ([Refresh](sessions-and-tokens.md#refresh-customrefreshcontroller), [Logout](logout-events-revocation.md))",
            Section::Breaker => "**Backend circuit breaker** ([Backend circuit breaker](sessions-and-tokens.md#backend-circuit-breaker))",
            Section::Roles => "**Roles and access** ([Mapping, roles and account linking](mapping.md))",
            Section::Tenants => "**Tenants** ([Tenants](tenants.md))",
            Section::Sso => "**Single sign-on**, each source off until set ([Single sign-on](single-sign-on.md))",
            Section::Mfa => "**The backend's second factor**, off until `BACKEND_MFA_VERIFY_URL` is set ([Second factor](second-factor.md))",
            Section::StartUp => "**Start-up and TLS**",
            Section::Mapping => "**Mapping the backend's answers.** Each of these variables is a comma-separated list of alternative
paths; the first one that holds a non-empty value wins. A path is dot-separated keys
(`profile.mail` is `{\"profile\":{\"mail\":…}}`); `null` counts as absent. Token paths start at the top
of the login or refresh answer. User paths start at the user object: the `user` of the login or
refresh answer, the user-info answer's `user` (or the whole user-info answer when it has no usable
`user` object), or, with `BACKEND_BEARER_TOKENS=jwks`, the token's claims (with `introspection`,
the introspection answer).",
        }
    }

    /// A note under its table, if any.
    fn note(self) -> Option<&'static str> {
        match self {
            Section::Roles => Some("Roles match exactly (case-sensitive)."),
            Section::Mapping => Some(
                "Id, email, user name, name and avatar longer than 1024 characters are not used (an id or email that
long is a 502).",
            ),
            _ => None,
        }
    }
}

/// What a whole number counts, for its bounds and default in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Millis,
}

/// A setting's type, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An absolute `http://` or `https://` URL with a host and without user or password.
    Url,
    /// Text, used as given.
    Text,
    /// Secret text: never logged, echoed or shown (doctor shows its length).
    Secret,
    /// 32 random bytes as hex or base64; a secret.
    Key,
    /// A MongoDB connection string; shown without its password.
    MongoUri,
    /// A comma-separated list (field paths, roles, domains).
    List,
    /// The package's own flag: `true` or `false`, any case; anything else is refused.
    Flag,
    /// One of these words, any case.
    Choice(&'static [&'static str]),
    /// A whole number from `min` to `max`.
    Whole { min: u64, max: u64, unit: Unit },
    /// A positive number of milliseconds up to `max`; `+ - * /` and parentheses allowed.
    Millis { max: u64 },
    /// A whole number, negative allowed.
    Integer,
    /// The path of a file read at start-up.
    File,
    /// LibreChat's own variable, read as LibreChat reads it and never refused.
    LibreChat,
}

impl Kind {
    /// Shown only as whether it is set and its length.
    pub fn is_secret(self) -> bool {
        matches!(self, Kind::Secret | Kind::Key)
    }
}

/// What holds when a setting is not set (or blank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnset {
    Required,
    /// Required in the mode named (`jwks`, `introspection`), not read otherwise.
    RequiredWith(&'static str),
    /// This value (what the parsing uses).
    Default(&'static str),
    /// Nothing; the text says what being unset means (may be empty).
    Means(&'static str),
}

/// `section`, `meaning` and `example` are read only where docs/configuration.md is rendered (a
/// unit test); the parsing and doctor read the rest.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct Setting {
    pub name: &'static str,
    pub section: Section,
    pub kind: Kind,
    pub default: WhenUnset,
    /// What it does (markdown; the docs' table cell). The kind's bounds are not repeated here.
    pub meaning: &'static str,
    pub example: &'static str,
}

const DAY_SECS: u64 = 24 * 60 * 60;
const DAY_MS: u64 = DAY_SECS * 1000;
/// `SESSION_EXPIRY` and `REFRESH_TOKEN_EXPIRY`.
const YEAR_MS: u64 = 365 * DAY_MS;
/// The backend's and the database's timeouts.
const TEN_MIN_MS: u64 = 10 * 60 * 1000;
/// The bounds of the duration variables are far above any sane setting and far below what could
/// overflow a clock (`Instant + Duration`) or a date.
const fn whole(min: u64, max: u64, unit: Unit) -> Kind {
    Kind::Whole { min, max, unit }
}

use Section::*;
use Unit::{Count, Millis as Ms, Seconds};
use WhenUnset::{Default, Means, Required, RequiredWith};

/// Every setting, in the order of docs/configuration.md.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "USE_CUSTOM_BACKEND_AUTH",
        section: Basics,
        kind: Kind::LibreChat,
        default: Means("LibreChat's own login"),
        meaning: "The switch of [the wiring](install.md#wiring), read by the wiring with LibreChat's `isEnabled` or `isCustomBackendAuthEnabled()`. On only for `true` (any case).",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_LOGIN_USES_USERNAME",
        section: Basics,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true`: LibreChat's login page asks for a user name (labelled \"Username\", no email check) instead of an email address ([Wiring](install.md#wiring), `routes/config.js`).",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_AUTH_URL",
        section: Basics,
        kind: Kind::Url,
        default: Required,
        meaning: "Backend login endpoint.",
        example: "`https://id.example.com/api/auth/login`",
    },
    Setting {
        name: "BACKEND_USER_INFO_URL",
        section: Basics,
        kind: Kind::Url,
        default: Required,
        meaning: "Backend user-info endpoint.",
        example: "`https://id.example.com/api/auth/userinfo`",
    },
    Setting {
        name: "BACKEND_REFRESH_URL",
        section: Basics,
        kind: Kind::Url,
        default: Required,
        meaning: "Backend refresh endpoint.",
        example: "`https://id.example.com/api/auth/refresh`",
    },
    Setting {
        name: "JWT_SECRET",
        section: Basics,
        kind: Kind::Secret,
        default: Required,
        meaning: "LibreChat's own secret for access tokens (HS256).",
        example: "already in LibreChat's `.env`",
    },
    Setting {
        name: "JWT_REFRESH_SECRET",
        section: Basics,
        kind: Kind::Secret,
        default: Required,
        meaning: "LibreChat's own secret for refresh tokens. Must differ from `JWT_SECRET`.",
        example: "already in LibreChat's `.env`",
    },
    Setting {
        name: "MONGO_URI",
        section: Basics,
        kind: Kind::MongoUri,
        default: Required,
        meaning: "LibreChat's database. Never echoed (it may hold a password).",
        example: "`mongodb://mongodb:27017/LibreChat`",
    },
    Setting {
        name: "MONGO_AUTO_INDEX",
        section: Basics,
        kind: Kind::LibreChat,
        default: Means("LibreChat creates its models' indexes"),
        meaning: "LibreChat's own: unset or `true` makes LibreChat create its models' indexes at start-up; any other value, the empty one of its `.env.example` included, turns that off. Not read by the package; `doctor` names it when LibreChat's indexes are missing ([`doctor`](operations.md#doctor)).",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_TOKEN_ENCRYPTION_KEY",
        section: Basics,
        kind: Kind::Key,
        default: Required,
        meaning: "Encrypts the backend tokens stored in session documents. Rotating it ends existing sessions at their next refresh (their stored tokens no longer decrypt; users log in again).",
        example: "output of `openssl rand -hex 32`",
    },
    Setting {
        name: "SESSION_EXPIRY",
        section: Basics,
        kind: Kind::Millis { max: YEAR_MS },
        default: Default("900000"),
        meaning: "Lifetime of LibreChat access tokens, in ms.",
        example: "`1000 * 60 * 15`",
    },
    Setting {
        name: "REFRESH_TOKEN_EXPIRY",
        section: Basics,
        kind: Kind::Millis { max: YEAR_MS },
        default: Default("604800000"),
        meaning: "Lifetime of a session (refresh token, cookies, session document), in ms. Refreshes do not extend it.",
        example: "`(1000 * 60 * 60 * 24) * 7`",
    },
    Setting {
        name: "BACKEND_TIMEOUT_MS",
        section: Basics,
        kind: Kind::Millis { max: TEN_MIN_MS },
        default: Default("10000"),
        meaning: "Longest wait for one backend call, in ms, its wait for a place (`BACKEND_MAX_PENDING`) included (connecting: at most 5 s of it). Then `BACKEND_TIMEOUT` ([Errors and statuses](errors-and-statuses.md): a login 500, an API request 503).",
        example: "`5000`",
    },
    Setting {
        name: "MONGO_TIMEOUT_MS",
        section: Basics,
        kind: Kind::Millis { max: TEN_MIN_MS },
        default: Default("5000"),
        meaning: "Longest wait for the database to be reachable (server selection, connect), in ms. Then `DB_UNAVAILABLE` (503). An API request that loads its user waits at most twice this, also on a database that stops answering on open connections.",
        example: "`3000`",
    },
    Setting {
        name: "CHECK_BALANCE",
        section: Basics,
        kind: Kind::LibreChat,
        default: Default("false"),
        meaning: "LibreChat's flag (LibreChat's `isEnabled` rules: on only for `true`, any case): with `START_BALANCE`, a user without a balance document gets one at login ([What is stored](security.md#what-is-stored)).",
        example: "`true`",
    },
    Setting {
        name: "START_BALANCE",
        section: Basics,
        kind: Kind::Integer,
        default: Default("0"),
        meaning: "Token credits of a new user when `CHECK_BALANCE=true`.",
        example: "`20000`",
    },
    Setting {
        name: "BACKEND_EVENTS_SECRET",
        section: Events,
        kind: Kind::Secret,
        default: Means("backend events off (the handler answers 404)"),
        meaning: "Shared secret of the backend's signed events (HMAC-SHA256). At least 32 characters.",
        example: "output of `openssl rand -hex 32`",
    },
    Setting {
        name: "BACKEND_EVENTS_TOLERANCE_SECONDS",
        section: Events,
        kind: whole(1, 3_600, Seconds),
        default: Default("300"),
        meaning: "How far an event's signed timestamp may be from this server's clock.",
        example: "`120`",
    },
    Setting {
        name: "REVOCATION_POLL_MS",
        section: Events,
        kind: whole(0, 60_000, Ms),
        default: Default("1000"),
        meaning: "How often each server reads the revocations the other servers wrote (one indexed query). `0`: never (one server only).",
        example: "`500`",
    },
    Setting {
        name: "USER_CACHE_TTL",
        section: Request,
        kind: whole(0, DAY_SECS, Seconds),
        default: Default("5"),
        meaning: "Seconds a user document is served from the per-process cache without a database read. `0` turns the cache off.",
        example: "`30`",
    },
    Setting {
        name: "JWT_FAST_PATH",
        section: Request,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true`: a request whose token is answered from memory (a LibreChat token or a cached backend token, its user cached by `USER_CACHE_TTL`) skips passport's strategy machinery under LibreChat's `requireJwtAuth`, with the same `req.user`, status and answer as through passport; every other request goes through passport. It replaces `passport.authenticate` of LibreChat's passport for the `jwt` strategy in the whole process, and saves about 1 % of a cached request's server time ([Performance](operations.md#performance)); metric `librechat_custom_backend_jwt_fast_path_answers_total`.",
        example: "`true`",
    },
    Setting {
        name: "AUTH_CACHE_MAX_ENTRIES",
        section: Request,
        kind: whole(1, 1_000_000, Count),
        default: Default("10000"),
        meaning: "Size bound of each in-process cache (users, backend id → user, accepted and refused backend tokens). When one is full, expired entries go first, then the tenth closest to expiry. A cached user takes about 3 to 5 KiB, so the bound keeps a typo from promising gigabytes.",
        example: "`50000`",
    },
    Setting {
        name: "AUTH_LOG_REPEAT_SECONDS",
        section: Request,
        kind: whole(0, 3_600, Seconds),
        default: Default("60"),
        meaning: "Refusals caused by callers (a wrong password, a bad or forged token or event, a backend not called to protect it) are logged at `warn`, the first of each kind in full, then at most one line per kind per this many seconds with how many more there were, so that a flood cannot buy log lines; the audit lines of such refusals likewise. Failures of the backend or the database are logged one by one at `error`. `0`: one line per refusal.",
        example: "`300`",
    },
    Setting {
        name: "BACKEND_BEARER_TOKENS",
        section: Request,
        kind: Kind::Choice(&["userinfo", "jwks", "introspection", "off"]),
        default: Default("userinfo"),
        meaning: "How a backend token sent as `Authorization: Bearer` is checked: `userinfo` (ask `BACKEND_USER_INFO_URL`), `jwks` (verify locally against `BACKEND_JWKS_URL`), `introspection` (RFC 7662 call to `BACKEND_INTROSPECTION_URL`), `off` (refuse every backend token). Not `off` with `BACKEND_SESSION_MODE=backend`.",
        example: "`jwks`",
    },
    Setting {
        name: "BACKEND_TOKEN_CACHE_TTL",
        section: Request,
        kind: whole(0, DAY_SECS, Seconds),
        default: Default("60"),
        meaning: "Seconds an accepted backend token is remembered (never past the token's own `exp`). `0` turns it off. A refused token is remembered 5 s (fixed).",
        example: "`30`",
    },
    Setting {
        name: "BACKEND_USERINFO_MAX_CONCURRENT",
        section: Request,
        kind: whole(1, 100_000, Count),
        default: Default("32"),
        meaning: "With `userinfo` or `introspection`: most user-info (introspection) calls in flight at once for tokens the caches do not know. Beyond it, such a request answers 503 at once without a backend call.",
        example: "`64`",
    },
    Setting {
        name: "BACKEND_USERINFO_RATE",
        section: Request,
        kind: whole(1, 1_000_000, Count),
        default: Default("50"),
        meaning: "With `userinfo` or `introspection`: user-info (introspection) calls per second for tokens the caches do not know, on average (a token bucket). Beyond it: 503 at once, no backend call.",
        example: "`200`",
    },
    Setting {
        name: "BACKEND_USERINFO_BURST",
        section: Request,
        kind: whole(1, 1_000_000, Count),
        default: Default("100"),
        meaning: "With `userinfo` or `introspection`: the bucket's size, the calls allowed at once after a quiet time.",
        example: "`500`",
    },
    Setting {
        name: "BACKEND_PROVISION_ON_BEARER",
        section: Request,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true`: a valid backend token of a backend user who never logged in creates the LibreChat account, as a login would. `false`: 401.",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_JWKS_URL",
        section: Request,
        kind: Kind::Url,
        default: RequiredWith("jwks"),
        meaning: "The backend's JWK set. Read only with `BACKEND_BEARER_TOKENS=jwks`, like the next six.",
        example: "`https://id.example.com/.well-known/jwks.json`",
    },
    Setting {
        name: "BACKEND_JWT_ISSUER",
        section: Request,
        kind: Kind::Text,
        default: RequiredWith("jwks"),
        meaning: "The exact `iss` backend tokens must carry.",
        example: "`https://id.example.com`",
    },
    Setting {
        name: "BACKEND_JWT_AUDIENCE",
        section: Request,
        kind: Kind::Text,
        default: Means("audience not checked"),
        meaning: "The `aud` backend tokens must carry.",
        example: "`librechat`",
    },
    Setting {
        name: "BACKEND_JWT_ID_CLAIM",
        section: Request,
        kind: Kind::Text,
        default: Default("sub"),
        meaning: "Claim holding the backend user id (matched against `idOnTheSource`).",
        example: "`uid`",
    },
    Setting {
        name: "BACKEND_JWKS_CACHE_TTL",
        section: Request,
        kind: whole(1, DAY_SECS, Seconds),
        default: Default("600"),
        meaning: "Seconds before the key set is fetched again.",
        example: "`3600`",
    },
    Setting {
        name: "BACKEND_JWKS_REFETCH_COOLDOWN_MS",
        section: Request,
        kind: whole(0, DAY_MS, Ms),
        default: Default("30000"),
        meaning: "Least time between two fetches caused by an unknown `kid`, in ms. `0`: no cooldown.",
        example: "`60000`",
    },
    Setting {
        name: "BACKEND_JWKS_MAX_STALE",
        section: Request,
        kind: whole(0, 7 * DAY_SECS, Seconds),
        default: Default("86400"),
        meaning: "Seconds past `BACKEND_JWKS_CACHE_TTL` that the last key set fetched successfully still verifies tokens whose `kid` it holds while fetching it again fails ([Every request](sessions-and-tokens.md#every-request-customjwtstrategy)). `0`: not at all.",
        example: "`3600`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_URL",
        section: Request,
        kind: Kind::Url,
        default: RequiredWith("introspection"),
        meaning: "The backend's RFC 7662 introspection endpoint. Read only with `BACKEND_BEARER_TOKENS=introspection`, like the next seven.",
        example: "`https://id.example.com/oauth/introspect`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_CLIENT_ID",
        section: Request,
        kind: Kind::Text,
        default: RequiredWith("introspection"),
        meaning: "The client id LibreChat authenticates with at that endpoint (HTTP Basic).",
        example: "`librechat`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_CLIENT_SECRET",
        section: Request,
        kind: Kind::Secret,
        default: RequiredWith("introspection"),
        meaning: "Its secret.",
        example: "from the identity provider",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_AUDIENCE",
        section: Request,
        kind: Kind::Text,
        default: Means("audience not checked"),
        meaning: "The answer's `aud` (a string, or an array holding it) must be this.",
        example: "`librechat`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_ISSUER",
        section: Request,
        kind: Kind::Text,
        default: Means("issuer not checked"),
        meaning: "The answer's `iss` must be exactly this.",
        example: "`https://id.example.com`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_SCOPE",
        section: Request,
        kind: Kind::Text,
        default: Means("no scope required"),
        meaning: "Scopes the token must have, all of them (separated by spaces or commas), checked against the answer's space-separated `scope`.",
        example: "`librechat`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_TOKEN_TYPE",
        section: Request,
        kind: Kind::Text,
        default: Means("any token_type, or none, unless it marks another kind of token"),
        meaning: "The answer's `token_type` must be this (any case); an answer without one is refused. For servers that leave `token_type` out of the answer for refresh tokens (Spring Authorization Server answers `Bearer` for access tokens only). Markings of refresh, ID and other non-access tokens are refused in any case ([Every request](sessions-and-tokens.md#every-request-customjwtstrategy)).",
        example: "`Bearer`",
    },
    Setting {
        name: "BACKEND_INTROSPECTION_ID_CLAIM",
        section: Request,
        kind: Kind::Text,
        default: Default("sub"),
        meaning: "Field of the answer holding the backend user id (matched against `idOnTheSource`).",
        example: "`uid`",
    },
    Setting {
        name: "BACKEND_SESSION_MODE",
        section: Sessions,
        kind: Kind::Choice(&["librechat", "backend"]),
        default: Default("librechat"),
        meaning: "What the browser receives as `token`: `librechat` (a LibreChat access token; the backend's tokens stay server-side) or `backend` (the backend's access token, checked on every request as a backend token).",
        example: "`backend`",
    },
    Setting {
        name: "BACKEND_LOGOUT_URL",
        section: Sessions,
        kind: Kind::Url,
        default: Means("the backend is not told"),
        meaning: "Backend logout endpoint, called at each logout, and for a login that fails after the backend issued its tokens ([Login errors and statuses](errors-and-statuses.md)).",
        example: "`https://id.example.com/api/auth/logout`",
    },
    Setting {
        name: "BACKEND_SESSION_ID_FIELD",
        section: Sessions,
        kind: Kind::List,
        default: Default("session_id,sid,sessionId"),
        meaning: "Where a login (or refresh) answer carries the backend's own session id, kept hashed with the session so that a `session.revoked` event can name it ([Backend events](logout-events-revocation.md#backend-events-push)). Paths as the other fields.",
        example: "`data.sid`",
    },
    Setting {
        name: "REFRESH_GRACE_MS",
        section: Sessions,
        kind: whole(0, DAY_MS, Ms),
        default: Default("10000"),
        meaning: "After a refresh, how long a superseded refresh token still gets the session's current one (other tabs, other servers), in ms. Later use of it is reuse (the session is ended), unless no newer token was ever used ([Refresh](sessions-and-tokens.md#refresh-customrefreshcontroller)).",
        example: "`30000`",
    },
    Setting {
        name: "BACKEND_BREAKER_FAILURES",
        section: Breaker,
        kind: whole(0, 1_000, Count),
        default: Default("5"),
        meaning: "Failures in a row (timeouts, connection errors, 5xx) in one lane of a backend host, with no answer from the host in between, that open that lane; a host that cannot be reached counts in every lane ([Backend circuit breaker](sessions-and-tokens.md#backend-circuit-breaker)). `0` turns the breaker off (`BACKEND_MAX_PENDING` still applies).",
        example: "`10`",
    },
    Setting {
        name: "BACKEND_BREAKER_COOLDOWN_MS",
        section: Breaker,
        kind: whole(1, DAY_MS, Ms),
        default: Default("30000"),
        meaning: "How long an open lane answers at once, in ms, before it lets probe calls through (a returning user's login probes the login lane sooner).",
        example: "`10000`",
    },
    Setting {
        name: "BACKEND_BREAKER_PROBES",
        section: Breaker,
        kind: whole(1, 1_000, Count),
        default: Default("1"),
        meaning: "Calls let through at once as probes of a lane: while it is half-open, and returning users' logins while the login lane is open ([Backend circuit breaker](sessions-and-tokens.md#backend-circuit-breaker)); others are answered at once.",
        example: "`2`",
    },
    Setting {
        name: "BACKEND_MAX_PENDING",
        section: Breaker,
        kind: whole(1, 100_000, Count),
        default: Default("256"),
        meaning: "Most calls in flight to one backend host per lane (login, token, session, keys; [Backend circuit breaker](sessions-and-tokens.md#backend-circuit-breaker)); beyond it a call waits for a place, up to `BACKEND_TIMEOUT_MS`, and is then answered (a login 500, \"please try again\"); the wait counts against the call's `BACKEND_TIMEOUT_MS`; when 4 times as many already wait, at once. It also caps `BACKEND_USERINFO_MAX_CONCURRENT` (`doctor` says when that is set higher).",
        example: "`128`",
    },
    Setting {
        name: "BACKEND_ROLES_FIELD",
        section: Roles,
        kind: Kind::List,
        default: Means("no roles read"),
        meaning: "Path(s) of the user's roles in the backend's user object (or JWT claims): a string (split at commas and spaces) or an array of strings. Required when one of the next two is set.",
        example: "`roles,groups`",
    },
    Setting {
        name: "BACKEND_ADMIN_ROLES",
        section: Roles,
        kind: Kind::List,
        default: Means("the first user is the admin, as in LibreChat"),
        meaning: "Backend roles that make a LibreChat `ADMIN`; anyone else is `USER`. Applied at every login and refresh. Replaces the first-user rule.",
        example: "`librechat-admin`",
    },
    Setting {
        name: "BACKEND_REQUIRED_ROLES",
        section: Roles,
        kind: Kind::List,
        default: Means("no role required"),
        meaning: "A user needs at least one of them (otherwise `ACCESS_DENIED`: 404 at login, [Login errors and statuses](errors-and-statuses.md); 403 on API requests).",
        example: "`staff,contractor`",
    },
    Setting {
        name: "BACKEND_ALLOWED_EMAIL_DOMAINS",
        section: Roles,
        kind: Kind::List,
        default: Means("every domain"),
        meaning: "Email domains allowed to log in (a leading `@` is ignored; exact domain of the stored address, ASCII letters in any case, every other character exactly; subdomains are not included).",
        example: "`example.com,@corp.example`",
    },
    Setting {
        name: "BACKEND_LINK_EXISTING",
        section: Roles,
        kind: Kind::Choice(&["never", "email"]),
        default: Default("never"),
        meaning: "`email`: the first login of a backend user takes over an existing account of another provider (local, LDAP, social) with the same email, when that email is verified (`emailVerified`); an unverified one stays a 409. Read the risk in [Mapping, roles and account linking](mapping.md) first.",
        example: "`email`",
    },
    Setting {
        name: "BACKEND_LINK_KEEP_LOCAL_SECRETS",
        section: Roles,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true`: an account linked by `BACKEND_LINK_EXISTING=email` keeps its local password and LibreChat 2FA (secret, backup codes). By default both are removed when it is linked, so that nothing its first owner set up survives the takeover ([Mapping, roles and account linking](mapping.md)).",
        example: "`true`",
    },
    Setting {
        name: "TRUST_TENANT_HEADER",
        section: Tenants,
        kind: Kind::LibreChat,
        default: Means("no tenant from requests"),
        meaning: "LibreChat's own (v0.8.5+): `true` (any case) makes a request's `X-Tenant-Id` header its tenant, where LibreChat's `preAuthTenant` has not already set one: at login, refresh, and on every request (a token of another tenant's user is refused). Only behind a proxy that sets the header and strips the client's.",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_TENANT_FIELD",
        section: Tenants,
        kind: Kind::List,
        default: Means("the tenant is the request's"),
        meaning: "Path(s) of the user's LibreChat tenant in the backend's user object (or JWT claims). When the request has a tenant too, the two must be the same (otherwise `TENANT_MISMATCH`); alone, it places the user.",
        example: "`tenant,org.id`",
    },
    Setting {
        name: "BACKEND_SSO_COOKIE",
        section: Sso,
        kind: Kind::Text,
        default: Means("off"),
        meaning: "Name of the portal's session cookie (LibreChat on the same site as the portal). A page load without a LibreChat session but with this cookie starts one, as a login does, when the backend accepts the cookie.",
        example: "`portal_session`",
    },
    Setting {
        name: "BACKEND_SSO_COOKIE_URL",
        section: Sso,
        kind: Kind::Url,
        default: Means("the cookie's value is a bearer token, checked as `BACKEND_BEARER_TOKENS` says"),
        meaning: "The portal's validation endpoint: `GET` with the cookie forwarded (`Cookie: <name>=<value>`), answering the user in the user-info shape (401/403: not signed in).",
        example: "`https://portal.example.com/api/session`",
    },
    Setting {
        name: "BACKEND_SSO_PROXIES",
        section: Sso,
        kind: Kind::List,
        default: Means("off"),
        meaning: "Addresses or ranges (CIDR) of the authenticating proxies whose identity headers are believed: only when the TCP peer is one of them, never on the word of `X-Forwarded-For`. From anyone else the headers are ignored and counted.",
        example: "`10.0.0.5,fd00::/8`",
    },
    Setting {
        name: "BACKEND_SSO_USER_HEADER",
        section: Sso,
        kind: Kind::List,
        default: Default("remote-user,x-forwarded-user"),
        meaning: "Header(s) naming the user (the first present wins; any case).",
        example: "`x-authentik-username`",
    },
    Setting {
        name: "BACKEND_SSO_EMAIL_HEADER",
        section: Sso,
        kind: Kind::List,
        default: Default("remote-email,x-forwarded-email"),
        meaning: "Header(s) with the user's email (required with `BACKEND_SSO_PROXY_USERS=headers`).",
        example: "`x-authentik-email`",
    },
    Setting {
        name: "BACKEND_SSO_NAME_HEADER",
        section: Sso,
        kind: Kind::List,
        default: Default("remote-name"),
        meaning: "Header(s) with the user's display name.",
        example: "`x-authentik-name`",
    },
    Setting {
        name: "BACKEND_SSO_GROUPS_HEADER",
        section: Sso,
        kind: Kind::List,
        default: Default("remote-groups,x-forwarded-groups"),
        meaning: "Header(s) with the user's groups (comma-separated), the roles of the role mapping with `BACKEND_SSO_PROXY_USERS=headers`.",
        example: "`x-authentik-groups`",
    },
    Setting {
        name: "BACKEND_SSO_PROXY_USERS",
        section: Sso,
        kind: Kind::Choice(&["backend", "headers"]),
        default: Default("backend"),
        meaning: "`backend`: the user the proxy names must exist at the backend (`BACKEND_SSO_LOOKUP_URL`), which describes them; `headers`: the user is taken from the headers alone (the proxy is the identity system).",
        example: "`headers`",
    },
    Setting {
        name: "BACKEND_SSO_LOOKUP_URL",
        section: Sso,
        kind: Kind::Url,
        default: Means("required with `BACKEND_SSO_PROXIES` unless `BACKEND_SSO_PROXY_USERS=headers`"),
        meaning: "The backend's user lookup by name: `GET ?username=<name>`, answering the user in the user-info shape (404, 401 or 403: no such user).",
        example: "`https://id.example.com/api/users/lookup`",
    },
    Setting {
        name: "BACKEND_SSO_LOGOUT_URL",
        section: Sso,
        kind: Kind::Url,
        default: Means("the login page after a logout"),
        meaning: "The portal's logout page: after a LibreChat logout the web client is sent there (LibreChat's `redirect` in the logout answer).",
        example: "`https://portal.example.com/logout`",
    },
    Setting {
        name: "BACKEND_MFA_VERIFY_URL",
        section: Mfa,
        kind: Kind::Url,
        default: Means("a login answer asking for a second factor is a bad answer (502)"),
        meaning: "The backend's code check: `POST` JSON with the challenge id and the code typed into LibreChat's 2FA screen; its success answer has the login answer's shape (401/403: a wrong code, 404/410: the challenge is used up or expired).",
        example: "`https://id.example.com/api/auth/mfa/verify`",
    },
    Setting {
        name: "BACKEND_MFA_FIELD",
        section: Mfa,
        kind: Kind::List,
        default: Default("mfaRequired,mfa_required"),
        meaning: "Path(s) of the login answer's flag (true) that a second factor is required.",
        example: "`data.mfa.required`",
    },
    Setting {
        name: "BACKEND_MFA_CHALLENGE_FIELD",
        section: Mfa,
        kind: Kind::List,
        default: Default("challengeId,mfa_token,mfaToken"),
        meaning: "Path(s) of the challenge id in that answer (required there; kept sealed on the server, never sent to the browser).",
        example: "`data.mfa.challenge`",
    },
    Setting {
        name: "BACKEND_MFA_STATUS",
        section: Mfa,
        kind: Kind::Text,
        default: Means("only a 2xx login answer asks for a second factor"),
        meaning: "A 4xx status whose login answer is read for the challenge too (some backends answer 401 or 403 with `mfa_required`); without the flag it stays a refusal.",
        example: "`403`",
    },
    Setting {
        name: "BACKEND_MFA_CHALLENGE_KEY",
        section: Mfa,
        kind: Kind::Text,
        default: Default("challengeId"),
        meaning: "Key of the challenge id in the verify request.",
        example: "`mfa_token`",
    },
    Setting {
        name: "BACKEND_MFA_CODE_KEY",
        section: Mfa,
        kind: Kind::Text,
        default: Default("code"),
        meaning: "Key of the code in the verify request.",
        example: "`otp`",
    },
    Setting {
        name: "BACKEND_MFA_BACKUP_CODES",
        section: Mfa,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true`: a code from LibreChat's backup-code form goes to the backend marked `\"backup\": true`; otherwise it is refused without asking the backend.",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_MFA_TTL",
        section: Mfa,
        kind: whole(1, 900, Seconds),
        default: Default("300"),
        meaning: "How long a challenge waits for its code, in seconds, at most (sooner when the backend's answer says so with `expiresIn`).",
        example: "`120`",
    },
    Setting {
        name: "BACKEND_MFA_MAX_ATTEMPTS",
        section: Mfa,
        kind: whole(1, 20, Count),
        default: Default("5"),
        meaning: "Codes tried per challenge at most; after that the challenge is void and the user logs in again.",
        example: "`3`",
    },
    Setting {
        name: "NODE_ENV",
        section: StartUp,
        kind: Kind::LibreChat,
        default: Means("cookies without Secure unless SESSION_COOKIE_SECURE=true"),
        meaning: "`production` requires `https://` in every backend URL, and makes the cookies `Secure` unless the next two say otherwise.",
        example: "`production`",
    },
    Setting {
        name: "SESSION_COOKIE_SECURE",
        section: StartUp,
        kind: Kind::LibreChat,
        default: Means("Secure decided by NODE_ENV and DOMAIN_SERVER"),
        meaning: "LibreChat's own (v0.8.6+): `true` or `false` (trimmed, any case) sets the cookies' `Secure` flag outright, whatever `NODE_ENV` and `DOMAIN_SERVER` say; any other value is ignored, as LibreChat ignores it. `false` for a site served over plain HTTP (the browser would drop a `Secure` refresh cookie there). [What is stored](security.md#what-is-stored).",
        example: "`false`",
    },
    Setting {
        name: "DOMAIN_SERVER",
        section: StartUp,
        kind: Kind::LibreChat,
        default: Means("in production: Secure cookies"),
        meaning: "LibreChat's own: the server's public URL. With `NODE_ENV=production` and no `SESSION_COOKIE_SECURE`, a host of `localhost`, `127.0.0.1`, `::1` or `*.localhost` leaves the cookies without `Secure`, as LibreChat v0.8.3+ does. [What is stored](security.md#what-is-stored).",
        example: "`https://chat.example.com`",
    },
    Setting {
        name: "BACKEND_ALLOW_INSECURE_HTTP",
        section: StartUp,
        kind: Kind::Flag,
        default: Default("false"),
        meaning: "`true` accepts `http://` backend URLs with `NODE_ENV=production` (a backend on a private network). Only read in production.",
        example: "`true`",
    },
    Setting {
        name: "BACKEND_CA_CERT_PATH",
        section: StartUp,
        kind: Kind::File,
        default: Means("system trusted roots only"),
        meaning: "PEM file of extra trusted root certificates for the backend's TLS (an internal CA), added to the system's. Read at start-up. TLS is always verified.",
        example: "`/etc/ssl/private-ca.pem`",
    },
    Setting {
        name: "BACKEND_LOGIN_USERNAME_FIELD",
        section: Mapping,
        kind: Kind::Text,
        default: Default("username"),
        meaning: "Key of the login request body that carries what the user typed (one key, not a path).",
        example: "`email`",
    },
    Setting {
        name: "BACKEND_ACCESS_TOKEN_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("token,access_token"),
        meaning: "Backend access token. Required in a login answer (else 502).",
        example: "`data.accessToken`",
    },
    Setting {
        name: "BACKEND_REFRESH_TOKEN_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("refreshToken,refresh_token"),
        meaning: "Backend refresh token. A refresh answer without one keeps the previous one.",
        example: "`data.refreshToken`",
    },
    Setting {
        name: "BACKEND_EXPIRES_IN_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("expiresIn,expires_in"),
        meaning: "Access-token lifetime in seconds (number or numeric string); optional.",
        example: "`data.ttl`",
    },
    Setting {
        name: "BACKEND_USER_ID_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("id"),
        meaning: "Stable backend user id (string or number), stored as `idOnTheSource` exactly as sent: ids are opaque and never trimmed. A string id that is empty, starts or ends with whitespace or holds a control character is not used (at login: 502). Required. (For JWT claims: `BACKEND_JWT_ID_CLAIM`, same rule.)",
        example: "`sub,userId`",
    },
    Setting {
        name: "BACKEND_USER_EMAIL_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("email"),
        meaning: "Email address (must look like `a@b.c`). Required.",
        example: "`mail,profile.email`",
    },
    Setting {
        name: "BACKEND_USER_USERNAME_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("username"),
        meaning: "User name; when absent, the part of the email before `@`. With JWKS, `preferred_username` is tried last; with introspection, `username`.",
        example: "`login`",
    },
    Setting {
        name: "BACKEND_USER_NAME_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("name"),
        meaning: "Display name; when absent, the user name.",
        example: "`displayName`",
    },
    Setting {
        name: "BACKEND_USER_AVATAR_FIELD",
        section: Mapping,
        kind: Kind::List,
        default: Default("avatar"),
        meaning: "Avatar URL, used only when it is an absolute `http://` or `https://` URL with a host; when absent or anything else (`javascript:`, `data:`, a relative path), none is written (a stored one is kept).",
        example: "`picture`",
    },
];

/// The row of a setting.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// `n` of `unit` in words when it is a whole number of days, hours or minutes (`900000` ms:
/// `15 minutes`); `None` below a minute or when it is not whole.
fn in_words(n: u64, unit: Unit) -> Option<String> {
    let secs = match unit {
        Unit::Count => return None,
        Unit::Seconds => n,
        Unit::Millis if n.is_multiple_of(1000) => n / 1000,
        Unit::Millis => return None,
    };
    let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    [
        (365 * DAY_SECS, "year"),
        (DAY_SECS, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ]
    .iter()
    .find(|(size, _)| secs >= *size && secs.is_multiple_of(*size))
    .map(|(size, name)| plural(secs / size, name))
}

/// A number with its words: `900000 (15 minutes)`, `30`.
fn with_words(n: u64, unit: Unit, code: bool) -> String {
    let shown = if code {
        format!("`{n}`")
    } else {
        n.to_string()
    };
    match in_words(n, unit) {
        Some(words) => format!("{shown} ({words})"),
        None => shown,
    }
}

impl Setting {
    fn unit(&self) -> Unit {
        match self.kind {
            Kind::Whole { unit, .. } => unit,
            Kind::Millis { .. } => Unit::Millis,
            _ => Unit::Count,
        }
    }

    /// A default in words too when it is in milliseconds (`900000 (15 minutes)`); seconds and
    /// counts read well as they are.
    fn default_number(&self, n: u64, code: bool) -> String {
        match self.unit() {
            Unit::Millis => with_words(n, Unit::Millis, code),
            _ => with_words(n, Unit::Count, code),
        }
    }

    /// The default as doctor shows it (`(default) …` is doctor's), `None` when there is none.
    pub fn default_shown(&self) -> Option<String> {
        match self.default {
            Default(v) => Some(match v.parse::<u64>() {
                Ok(n) => self.default_number(n, false),
                Err(_) => v.to_string(),
            }),
            _ => None,
        }
    }

    /// The default column of docs/configuration.md.
    #[cfg(test)]
    fn default_doc(&self) -> String {
        match self.default {
            Required => "required".into(),
            RequiredWith(mode) => format!("required with `{mode}`"),
            Default(v) => match v.parse::<u64>() {
                Ok(n) => self.default_number(n, true),
                Err(_) => format!("`{v}`"),
            },
            Means("") => "none".into(),
            Means(meaning) => format!("none: {meaning}"),
        }
    }

    /// What values it takes (docs/configuration.md's "allowed" column), from its kind.
    #[cfg(test)]
    fn allowed_doc(&self) -> String {
        let bound = |n: u64| with_words(n, self.unit(), true);
        match self.kind {
            Kind::Url => {
                "absolute `http://` or `https://` URL with a host, no user or password in it".into()
            }
            Kind::Text => "text".into(),
            Kind::Secret => "text; secret: never logged or shown (`doctor`: its length)".into(),
            Kind::Key => "32 random bytes as 64 hex characters or base64; secret".into(),
            Kind::MongoUri => {
                "`mongodb://…` or `mongodb+srv://…`; shown without its password".into()
            }
            Kind::List => "comma-separated".into(),
            Kind::Flag => "`true` or `false`".into(),
            Kind::Choice(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Kind::Whole {
                min, max: u64::MAX, ..
            } => format!("whole number, at least {min}"),
            Kind::Whole { min, max, .. } => format!("whole number, {} to {}", min, bound(max)),
            Kind::Millis { max } => format!("positive ms, at most {}; arithmetic", bound(max)),
            Kind::Integer => "whole number".into(),
            Kind::File => "path of a PEM file".into(),
            Kind::LibreChat => "as LibreChat reads it; never refused".into(),
        }
    }
}

/// The tables of docs/configuration.md, between its markers.
#[cfg(test)]
pub fn markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::new();
    for section in Section::ALL {
        out.push_str(section.heading());
        out.push_str(
            "\n\n| variable | default | allowed | meaning | example |\n|---|---|---|---|---|\n",
        );
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                s.name,
                cell(&s.default_doc()),
                cell(&s.allowed_doc()),
                cell(s.meaning),
                cell(s.example)
            ));
        }
        if let Some(note) = section.note() {
            out.push('\n');
            out.push_str(note);
            out.push('\n');
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- settings: generated from src/config/settings.rs; `npm run docs:config` writes it -->\n";
    const END: &str = "<!-- settings: end -->";

    #[test]
    fn every_name_once_every_default_within_its_kind() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a setting is listed twice");
        for s in SETTINGS {
            match (s.kind, s.default) {
                (Kind::Whole { min, max, .. }, Default(v)) => {
                    let n: u64 = v.parse().unwrap();
                    assert!((min..=max).contains(&n), "{}", s.name);
                }
                (Kind::Millis { max }, Default(v)) => {
                    let n: u64 = v.parse().unwrap();
                    assert!((1..=max).contains(&n), "{}", s.name);
                }
                (Kind::Flag, Default(v)) => assert!(v == "true" || v == "false", "{}", s.name),
                (Kind::Choice(words), Default(v)) => assert!(words.contains(&v), "{}", s.name),
                (Kind::Integer, Default(v)) => assert!(v.parse::<i64>().is_ok(), "{}", s.name),
                (Kind::Whole { .. } | Kind::Millis { .. } | Kind::Flag | Kind::Choice(_), d) => {
                    panic!("{} has no usable default: {d:?}", s.name)
                }
                _ => {}
            }
            assert!(!s.meaning.is_empty() && !s.example.is_empty(), "{}", s.name);
        }
        assert_eq!(
            in_words(900_000, Unit::Millis).as_deref(),
            Some("15 minutes")
        );
        assert_eq!(in_words(86_400, Unit::Seconds).as_deref(), Some("1 day"));
        assert_eq!(in_words(10_000, Unit::Millis), None);
        assert_eq!(in_words(90, Unit::Seconds), None);
    }

    /// docs/configuration.md holds `markdown()` between its markers. `LCBA_WRITE_DOCS=1` writes it
    /// there instead (`npm run docs:config`).
    #[test]
    fn docs_configuration_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let page = std::fs::read_to_string(path).unwrap();
        let start = page.find(BEGIN).expect("the begin marker") + BEGIN.len();
        let end = page.find(END).expect("the end marker");
        let fresh = markdown();
        if std::env::var_os("LCBA_WRITE_DOCS").is_some() {
            std::fs::write(path, format!("{}{fresh}{}", &page[..start], &page[end..])).unwrap();
            return;
        }
        assert!(
            page[start..end] == fresh,
            "docs/configuration.md is stale: run `npm run docs:config`"
        );
    }
}
