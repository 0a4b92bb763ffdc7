//! Wire types of the OpenStack APIs, kept free of datastore access so they can be read
//! against the api-ref: request bodies (with `deny_unknown_fields` where Nova's
//! schemas forbid extra keys), action enums, microversion negotiation, pure
//! view builders and fault bodies.

pub mod compute;
pub mod fault;
pub mod identity;
pub mod image;
pub mod microversion;
pub mod volume;

pub use fault::*;
pub use microversion::*;
