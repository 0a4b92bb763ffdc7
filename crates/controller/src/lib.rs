//! Compute logic of Stratus.
//!
//! - [`compute_api`]: what the HTTP layer calls to change servers. It only
//!   writes intent (state + a durable operation, in one transaction) and
//!   wakes the runner; it never talks to a host.
//! - [`Controller`]: the background role. It serves agents (join, lease,
//!   inventory), monitors liveness, runs operations (create, delete, power)
//!   and relays notifications from the outbox to the bus.

mod boot;
pub mod compute_api;
pub mod config;
mod controller;
mod leader;
mod leases;
mod liveness;
mod metrics;
mod notify;
mod op_create;
mod op_delete;
mod op_lifecycle;
mod op_power;
mod op_volume;
mod params;
mod reclaim;
mod scheduler;
mod storage;

pub use config::ControllerConfig;
pub use controller::Controller;
pub use metrics::ClusterGauges;
