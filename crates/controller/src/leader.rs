//! The controllers' leader lease: several controllers run operations side
//! by side (each claims its own), but the duties that must happen once —
//! marking hosts down, reconciling storage (fence lifts, queued deletes),
//! relaying notifications, reclaiming soft-deleted servers — run only on the
//! holder of the `controller` lease in the database.
//!
//! The holder renews every third of the TTL. Leadership is given up locally
//! as soon as a renewal cannot be proven in time (the database is
//! unreachable, or does not answer at all behind a partition): the process
//! then stops acting *before* its lease can expire, and whatever it still
//! writes carries its fencing token, which the database refuses once another
//! controller took over.

use chrono::Duration as ChronoDuration;
use std::time::{Duration, Instant};
use stratus_db::{Datastore, LeaderFence};
use tokio::sync::watch;
use tracing::{info, warn};

/// The name of the controllers' lease.
pub(crate) const LEASE: &str = "controller";

/// Hold (or wait for) the lease until `shutdown`, publishing the current
/// fence (`None`: not the leader) on `tx`, and on `reachable` whether the
/// last attempt reached the database (every controller tries the lease
/// every third of the TTL, leader or not, so this is its database probe).
///
/// While leading, the holder steps down by `ttl - every / 2` after the start
/// of its last successful renewal whatever the database does: a database
/// that refuses connections fails fast, but one cut off by a partition
/// (packets dropped) does not answer at all, so every attempt is bounded
/// and no wait runs past that moment.
pub(crate) async fn hold(
    ds: Datastore,
    holder: String,
    ttl: Duration,
    tx: watch::Sender<Option<LeaderFence>>,
    reachable: watch::Sender<bool>,
    metrics: stratus_metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    metrics.set_leader(&holder, false);
    let every = (ttl / 3).max(Duration::from_millis(50));
    let chrono_ttl = ChronoDuration::from_std(ttl).unwrap_or(ChronoDuration::seconds(10));
    // The start of the last renewal the database confirmed: the lease it
    // wrote runs until at least then plus the TTL.
    let mut last_proof: Option<Instant> = None;
    // Stepped down for want of a renewal: the next answer says whether
    // another controller took over meanwhile.
    let mut stepped_down = false;
    let step_down_at = |proof: Option<Instant>| proof.map(|t| t + ttl.saturating_sub(every / 2));
    loop {
        let leading = tx.borrow().is_some();
        let deadline = step_down_at(last_proof).filter(|_| leading);
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            warn!(holder = %holder, "cannot renew the leader lease in time: stepping down");
            tx.send_replace(None);
            metrics.set_leader(&holder, false);
            last_proof = None;
            stepped_down = true;
            continue;
        }
        let started = Instant::now();
        let limit = deadline.map_or(every, |d| every.min(d.saturating_duration_since(started)));
        match tokio::time::timeout(limit, ds.leader_acquire(LEASE, &holder, chrono_ttl)).await {
            Ok(Ok(answer)) => {
                if reachable.send_if_modified(|r| !std::mem::replace(r, true)) {
                    info!(holder = %holder, "database reachable again");
                }
                match answer {
                    Some(token) => {
                        stepped_down = false;
                        let fence = LeaderFence { name: LEASE.into(), holder: holder.clone(), token };
                        if tx.borrow().as_ref() != Some(&fence) {
                            info!(holder = %holder, token, "this controller is now the leader");
                        }
                        tx.send_replace(Some(fence));
                        metrics.set_leader(&holder, true);
                        last_proof = Some(started);
                    }
                    None => {
                        if tx.borrow().is_some() || std::mem::take(&mut stepped_down) {
                            warn!(holder = %holder, "leadership lost to another controller");
                        }
                        tx.send_replace(None);
                        metrics.set_leader(&holder, false);
                        last_proof = None;
                    }
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("the database did not answer within {} ms", limit.as_millis()),
                };
                reachable.send_if_modified(|r| std::mem::replace(r, false));
                warn!(holder = %holder, error = %why, "leader lease renewal failed; retrying");
            }
        }
        let deadline = step_down_at(last_proof).filter(|_| tx.borrow().is_some());
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            // Wake up in time to step down (checked at the top of the loop).
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d.into()).await, None => std::future::pending().await } } => {}
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
