//! The organisation's backend as the package sees it: the HTTP client and the mapping of its
//! answers (client), the circuit breaker in front of it (breaker), and its tokens used as bearer
//! tokens, checked through JWKS, user info or introspection and cached (bearer, introspection), and
//! single sign-on's checks at the portal (portal).
//!
//! May use: shared, identity, config, tokens.

pub mod bearer;
pub mod breaker;
pub mod claims;
pub mod client;
pub mod introspection;
pub mod portal;
