//! Wire types of the OpenStack APIs, kept free of logic so they can be read
//! against the api-ref: request bodies (with `deny_unknown_fields` where Nova's
//! schemas forbid extra keys), microversion negotiation and fault bodies.

pub mod compute;
pub mod fault;
pub mod microversion;
pub mod volume;

pub use fault::*;
pub use microversion::*;
