//! Fault points for crash-safety tests, injected by whoever builds the
//! process (library code never reads the environment).
//!
//! Code that can be interrupted names its points (`before:<step>`,
//! `after:<step>`, `agent:before:<command>`, ...) and asks a [`Faults`]
//! handle at each. The binary builds the handle from `STRATUS_FAULTS` (a
//! comma-separated list) in [`FaultMode::AbortProcess`] mode: the process
//! aborts at once there, as if killed, and real-process tests restart it. An
//! in-process test builds one in [`FaultMode::FailAttempt`] mode instead: the
//! point returns [`FaultHit`] and the caller abandons its attempt as a crash
//! would, leaving its durable state behind for a fresh runner to resume.
//! The default handle has no points and costs one branch per point. A
//! point listed as `stop@<point>` stops the process (SIGSTOP) the first time
//! it is reached instead: a real stall at a known place, for tests of what a
//! stalled process does when it is continued.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// What reaching a listed point does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// Abort the process (real-process crash tests).
    AbortProcess,
    /// Return [`FaultHit`]: the attempt stops as if the process died (in-process tests).
    FailAttempt,
}

/// A listed fault point was reached in [`FaultMode::FailAttempt`] mode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fault point {0} hit")]
pub struct FaultHit(pub String);

struct Inner {
    mode: FaultMode,
    points: Mutex<HashSet<String>>,
    /// Every point passed, in order (for tests that enumerate the steps of a run).
    seen: Mutex<Vec<String>>,
}

/// A handle on the fault points of one process (or one test runner). Cheap to clone.
#[derive(Clone, Default)]
pub struct Faults(Option<Arc<Inner>>);

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Faults(none)"),
            Some(i) => write!(f, "Faults({:?}, {:?})", i.mode, i.points.lock().map(|p| p.len()).unwrap_or(0)),
        }
    }
}

impl Faults {
    /// No fault points (production).
    pub fn none() -> Self {
        Self(None)
    }

    /// Points named in `list` (comma-separated, as in `STRATUS_FAULTS`) act in `mode`.
    pub fn from_list(list: &str, mode: FaultMode) -> Self {
        let points: HashSet<String> =
            list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
        Self::with_points(points, mode)
    }

    /// A handle in `mode` listing `points`; with no points it still records the points passed.
    pub fn with_points(points: impl IntoIterator<Item = String>, mode: FaultMode) -> Self {
        Self(Some(Arc::new(Inner { mode, points: Mutex::new(points.into_iter().collect()), seen: Mutex::default() })))
    }

    /// Reach point `name`: abort the process or return [`FaultHit`] if it is listed.
    pub fn check(&self, name: &str) -> Result<(), FaultHit> {
        let Some(inner) = &self.0 else { return Ok(()) };
        if let Ok(mut seen) = inner.seen.lock() {
            seen.push(name.to_string());
        }
        let stop = format!("stop@{name}");
        // `stop@<point>`: the first time the point is reached the process
        // stops itself (SIGSTOP) where it stands, as a stalled controller
        // would, and goes on when a test sends SIGCONT.
        if inner.points.lock().map(|mut p| p.remove(&stop)).unwrap_or(false) {
            stop_self(name);
            return Ok(());
        }
        let listed = inner.points.lock().map(|p| p.contains(name)).unwrap_or(false);
        if !listed {
            return Ok(());
        }
        match inner.mode {
            FaultMode::AbortProcess => {
                eprintln!("fault point {name} hit: aborting the process");
                std::process::abort();
            }
            FaultMode::FailAttempt => Err(FaultHit(name.to_string())),
        }
    }

    /// Stop listing any point (a test's "restart without faults").
    pub fn clear(&self) {
        if let Some(inner) = &self.0
            && let Ok(mut p) = inner.points.lock()
        {
            p.clear();
        }
    }

    /// The points passed so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.0.as_ref().and_then(|i| i.seen.lock().ok().map(|s| s.clone())).unwrap_or_default()
    }
}

/// Stop this process with SIGSTOP (through the shell's `kill`, so no
/// unsafe code): the call returns once someone sends SIGCONT.
fn stop_self(point: &str) {
    eprintln!("fault point {point} hit: stopping the process (SIGSTOP) until it is continued");
    let pid = std::process::id();
    if let Err(e) = std::process::Command::new("sh").args(["-c", &format!("kill -STOP {pid}")]).status() {
        eprintln!("fault point {point}: cannot stop the process: {e}");
    }
}

static PROCESS: OnceLock<Faults> = OnceLock::new();

/// Install the process-wide handle used by [`fault_point`] (the binary does
/// this once at start; later calls are ignored).
pub fn install(faults: Faults) {
    let _ = PROCESS.set(faults);
}

/// Reach point `name` on the process-wide handle (for code that has no
/// handle of its own, such as the API's delete intent). Without an installed
/// handle this does nothing.
pub fn fault_point(name: &str) {
    if let Some(f) = PROCESS.get() {
        let _ = f.check(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_points_fail_the_attempt_and_every_point_is_recorded() {
        let f = Faults::from_list("before:a, after:b", FaultMode::FailAttempt);
        assert_eq!(f.check("before:x"), Ok(()));
        assert_eq!(f.check("after:b"), Err(FaultHit("after:b".into())));
        f.clear();
        assert_eq!(f.check("after:b"), Ok(()));
        assert_eq!(f.seen(), vec!["before:x", "after:b", "after:b"]);
        assert_eq!(Faults::none().check("before:a"), Ok(()));
    }
}
