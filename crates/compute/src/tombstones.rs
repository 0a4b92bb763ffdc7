//! The terminates an agent has seen, so that a command issued before a
//! server's delete (a spawn, a volume attach) never runs after it on this
//! host, while a later legitimate spawn (unshelve, resize) still can.
//!
//! A terminate is remembered for [`KEEP`], not for the life of the process:
//! the map holds the deletes of the last hour instead of one entry for every
//! server the host ever ran.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use stratus_types::ServerId;

/// How long a terminate is remembered. A command reaches the agent within
/// the controller's acknowledgement timeout of being sent (seconds), so the
/// guard only has to outlive the commands in flight; an hour is hundreds of
/// times that. A command held back longer still (a controller paused
/// between reading an operation and sending it) meets the periodic
/// reconcile, which ends a VM the controller does not expect on this host.
pub(crate) const KEEP: Duration = Duration::from_secs(3600);

/// Server id → the highest generation of a terminate seen for it, and when
/// the last terminate came.
#[derive(Default)]
pub(crate) struct Tombstones {
    by_server: HashMap<ServerId, (i64, Instant)>,
}

impl Tombstones {
    /// Remember a terminate of `server` at `generation`, seen at `now`.
    pub(crate) fn record(&mut self, server: ServerId, generation: i64, now: Instant) {
        let seen = self.by_server.entry(server).or_insert((generation, now));
        seen.0 = seen.0.max(generation);
        seen.1 = now;
    }

    /// Was `server` terminated at or after `generation` (so a command of
    /// that generation comes from before the delete and must not run)?
    pub(crate) fn covers(&self, server: &ServerId, generation: i64) -> bool {
        self.by_server.get(server).is_some_and(|(g, _)| generation <= *g)
    }

    /// Forget the terminates seen more than `keep` before `now`; how many.
    pub(crate) fn prune(&mut self, now: Instant, keep: Duration) -> usize {
        let before = self.by_server.len();
        self.by_server.retain(|_, (_, at)| now.saturating_duration_since(*at) < keep);
        before - self.by_server.len()
    }

    /// Terminates remembered.
    pub(crate) fn len(&self) -> usize {
        self.by_server.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spawn or attach issued before the terminate (same or lower
    /// generation) is covered; a later one (unshelve, resize) is not, and a
    /// terminate arriving out of order never lowers the mark (the guard of
    /// Nova's `_delete` racing a build: the instance must not come back).
    #[test]
    fn a_terminate_covers_commands_up_to_its_generation() {
        let (s, other) = (ServerId::new(), ServerId::new());
        let t0 = Instant::now();
        let mut t = Tombstones::default();
        t.record(s, 5, t0);
        assert!(t.covers(&s, 4) && t.covers(&s, 5));
        assert!(!t.covers(&s, 6), "a later generation runs");
        assert!(!t.covers(&other, 0), "another server is untouched");
        t.record(s, 3, t0);
        assert!(t.covers(&s, 5), "an older terminate does not lower the mark");
    }

    /// Terminates older than the retention are forgotten, younger ones kept;
    /// a repeated terminate restarts its server's retention.
    #[test]
    fn terminates_are_forgotten_after_the_retention_only() {
        let keep = Duration::from_secs(60);
        let t0 = Instant::now();
        let (old, young, repeated) = (ServerId::new(), ServerId::new(), ServerId::new());
        let mut t = Tombstones::default();
        t.record(old, 1, t0);
        t.record(repeated, 1, t0);
        t.record(young, 1, t0 + Duration::from_secs(30));
        t.record(repeated, 1, t0 + Duration::from_secs(40));
        assert_eq!(t.prune(t0 + Duration::from_secs(59), keep), 0);
        assert_eq!(t.prune(t0 + Duration::from_secs(60), keep), 1);
        assert!(!t.covers(&old, 1) && t.covers(&young, 1) && t.covers(&repeated, 1));
        assert_eq!(t.prune(t0 + Duration::from_secs(100), keep), 2);
        assert_eq!(t.len(), 0);
    }
}
