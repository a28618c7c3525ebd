//! Tokens and keys: LibreChat's own JWTs (access, refresh, 2FA temp) and their classification, and
//! the crypto provider jsonwebtoken verifies with.
//!
//! May use: shared.

pub mod jwt_crypto;
pub mod librechat;
