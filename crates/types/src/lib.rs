//! Shared vocabulary of Stratus: typed identifiers, server states and the rules
//! that say which transitions are legal. This crate does no I/O so every other
//! crate (and the protocol model) can depend on it.

pub mod agent;
pub mod clock;
pub mod faults;
pub mod ids;
pub mod image;
pub mod op;
pub mod plan;
pub mod state;
pub mod status;
pub mod volume;

pub use clock::*;
pub use ids::*;
pub use op::*;
pub use state::*;
pub use status::*;
pub use volume::*;
