//! The controllers' leader lease: several controllers run operations side
//! by side (each claims its own), but the duties that must happen once —
//! marking hosts down, reconciling storage (fence lifts, queued deletes),
//! relaying notifications, reclaiming soft-deleted servers — run only on the
//! holder of the `controller` lease in the database.
//!
//! The holder renews every third of the TTL. Leadership is given up locally
//! as soon as a renewal cannot be proven in time (the database is
//! unreachable): the process then stops acting *before* its lease can
//! expire, and whatever it still writes carries its fencing token, which the
//! database refuses once another controller took over.

use chrono::Duration as ChronoDuration;
use std::time::{Duration, Instant};
use stratus_db::{Datastore, LeaderFence};
use tokio::sync::watch;
use tracing::{info, warn};

/// The name of the controllers' lease.
pub(crate) const LEASE: &str = "controller";

/// Hold (or wait for) the lease until `shutdown`, publishing the current
/// fence (`None`: not the leader) on `tx`.
pub(crate) async fn hold(
    ds: Datastore,
    holder: String,
    ttl: Duration,
    tx: watch::Sender<Option<LeaderFence>>,
    metrics: stratus_metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    metrics.set_leader(&holder, false);
    let every = (ttl / 3).max(Duration::from_millis(50));
    let chrono_ttl = ChronoDuration::from_std(ttl).unwrap_or(ChronoDuration::seconds(10));
    let mut last_proof: Option<Instant> = None;
    loop {
        let started = Instant::now();
        match ds.leader_acquire(LEASE, &holder, chrono_ttl).await {
            Ok(Some(token)) => {
                let fence = LeaderFence { name: LEASE.into(), holder: holder.clone(), token };
                if tx.borrow().as_ref() != Some(&fence) {
                    info!(holder = %holder, token, "this controller is now the leader");
                }
                tx.send_replace(Some(fence));
                metrics.set_leader(&holder, true);
                last_proof = Some(started);
            }
            Ok(None) => {
                if tx.borrow().is_some() {
                    warn!(holder = %holder, "leadership lost to another controller");
                }
                tx.send_replace(None);
                metrics.set_leader(&holder, false);
                last_proof = None;
            }
            Err(e) => {
                // Keep acting only while the last proof is surely still valid.
                let valid = last_proof.is_some_and(|t| t.elapsed() + every < ttl);
                if !valid && tx.borrow().is_some() {
                    warn!(holder = %holder, error = %e, "cannot renew the leader lease: stepping down");
                    tx.send_replace(None);
                    metrics.set_leader(&holder, false);
                } else {
                    warn!(holder = %holder, error = %e, "leader lease renewal failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {
                let fence = tx.borrow().clone();
                tx.send_replace(None);
                metrics.set_leader(&holder, false);
                if let Some(f) = fence {
                    // Hand over at once instead of after the TTL.
                    let _ = ds.leader_release(&f).await;
                    info!(holder = %holder, "leader lease released");
                }
                return;
            }
        }
    }
}
