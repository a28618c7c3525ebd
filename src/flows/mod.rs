//! The flows, over one `Service` per configuration (service: its parts, the database connection,
//! the user cache and the revocations it applies): login, every request, refresh and logout,
//! ending sessions on demand (control), backend events, the login policy, and single sign-on.
//!
//! May use: shared, identity, config, tokens, backend, store.

pub mod control;
pub mod events;
pub mod login;
pub mod mfa;
pub mod policy;
pub mod refresh;
pub mod request;
pub mod service;
pub mod sso;
