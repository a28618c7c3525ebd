//! Small parts every layer uses: the one error type with its stable codes, the bounded TTL cache
//! with single-flight, JSON from outside read strictly, the package's metrics, and audit events
//! without a request, address ranges.
//!
//! May use: nothing.

pub mod audit;
pub mod cache;
pub mod error;
pub mod json;
pub mod metrics;
pub mod net;
