//! Fault points for crash-safety tests.
//!
//! `STRATUS_FAULTS` holds a comma-separated list of fault point names; a
//! process that reaches a listed point aborts at once, as if killed there.
//! Tests restart it and check the interrupted work still completes exactly
//! once. Unset in production, where a fault point costs one env lookup.

/// Abort the process if `name` is listed in `STRATUS_FAULTS`.
pub fn fault_point(name: &str) {
    if let Ok(list) = std::env::var("STRATUS_FAULTS")
        && list.split(',').any(|f| f.trim() == name)
    {
        eprintln!("fault point {name} hit: aborting the process");
        std::process::abort();
    }
}
