//! Storage: the documents the package keeps in LibreChat's MongoDB (users and balances in
//! LibreChat's shape, sessions with their sealed backend tokens, revocations, backend events, the
//! backend's second-factor challenges) and
//! the rules a session's rotation must keep, plus the collections whose indexes the package makes.
//!
//! May use: shared, identity, config, tokens.

pub mod challenges;
pub mod collection;
pub mod events;
pub mod refresh_rules;
pub mod revocation;
pub mod sessions;
pub mod unsaved;
pub mod users;
