//! The hosts' leases, held in the leader controller's memory.
//!
//! A lease renewal is the most frequent message of the cloud (every host,
//! every `lease_renew_interval`); writing each one to the database costs a
//! durable commit per host per interval, which caps the hosts one controller
//! can serve. So the renewals go to the leader alone, which keeps each host's
//! lease in a table here, and the database is written only on transitions: a
//! join (new epoch, by any controller) and a conviction (`down`, by the
//! leader, once the lease it holds lapsed). Readers in every process take the
//! verdict from the database's `state`.
//!
//! Why this stays safe:
//! - **The one who convicts is the one who grants.** Only the leader answers
//!   renewals and only the leader marks hosts down, so no host is convicted
//!   while holding a lease someone granted it. An agent counts its lease from
//!   when it *sent* the renewal, the leader from when it *received* it, so the
//!   agent's view (and its watchdog) always ends first.
//! - **Takeover is conservative.** A new leader does not know the renewals
//!   its predecessor received, so it grants every live host a fresh lease of
//!   `lease_ttl` from the takeover. It takes over only after the old leader's
//!   lease ran out, and the old leader stops answering before that, so every
//!   lease the old leader granted ends before the new one's first conviction.
//! - **Silence on the leader's side is not the hosts' fault.** While the
//!   leader is disconnected from the bus it convicts nobody, and when it is
//!   back every live host gets a fresh lease from the reconnection.
//! - A lapsed lease is never renewed: the agent must rejoin (new epoch) and
//!   reconcile first, as before.

use crate::controller::Shared;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_bus::{Message, reply};
use stratus_types::agent::{LeaseReply, LeaseRequest, SUBJECT_LEASE};
use tokio::sync::watch;
use tracing::{info, warn};

/// One host's lease as the leader holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    epoch: i64,
    expires: DateTime<Utc>,
}

/// What a renewal gets from the table alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Extended.
    Renewed,
    /// Stale epoch or lapsed lease: the agent rejoins.
    MustRejoin,
    /// An epoch the table does not know yet (a join it has not seen): the
    /// database says whether it is current.
    Unknown,
}

/// The leases of every live host, as the leader holds them. Plain data
/// behind a mutex: each operation is a hash lookup, so renewals never wait
/// on the database.
#[derive(Default)]
pub(crate) struct LeaseTable {
    hosts: Mutex<HashMap<String, Held>>,
}

impl LeaseTable {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Held>) -> R) -> R {
        // A poisoned table is still a table: every operation leaves it consistent.
        let mut g = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Grant each of `hosts` (host, epoch) a lease until `until`, keeping a
    /// later one it already has (takeover, or the bus link restored).
    pub(crate) fn grant_all(&self, hosts: impl IntoIterator<Item = (String, i64)>, until: DateTime<Utc>) {
        self.with(|t| {
            for (host, epoch) in hosts {
                let e = t.entry(host).or_insert(Held { epoch, expires: until });
                if e.epoch < epoch {
                    *e = Held { epoch, expires: until };
                } else if e.epoch == epoch && e.expires < until {
                    e.expires = until;
                }
            }
        });
    }

    /// Extend every lease held to at least `until`.
    pub(crate) fn extend_all(&self, until: DateTime<Utc>) {
        self.with(|t| t.values_mut().for_each(|h| h.expires = h.expires.max(until)));
    }

    /// A renewal of `host` at `epoch` received at `now`.
    pub(crate) fn renew(&self, host: &str, epoch: i64, now: DateTime<Utc>, ttl: chrono::Duration) -> Verdict {
        self.with(|t| match t.get_mut(host) {
            Some(h) if h.epoch == epoch && h.expires >= now => {
                h.expires = now + ttl;
                Verdict::Renewed
            }
            Some(h) if h.epoch >= epoch => Verdict::MustRejoin,
            _ => Verdict::Unknown,
        })
    }

    /// The database confirmed `epoch` as `host`'s current one: hold its
    /// lease until `until`, unless a newer epoch is held already.
    pub(crate) fn admit(&self, host: &str, epoch: i64, until: DateTime<Utc>) -> bool {
        self.with(|t| match t.get(host) {
            Some(h) if h.epoch >= epoch => false,
            _ => {
                t.insert(host.to_string(), Held { epoch, expires: until });
                true
            }
        })
    }

    /// Forget `host`'s lease if it is at `epoch` or older (it was convicted,
    /// forced down, or rejoined and its row says so).
    pub(crate) fn forget(&self, host: &str, epoch: i64) {
        self.with(|t| {
            if t.get(host).is_some_and(|h| h.epoch <= epoch) {
                t.remove(host);
            }
        });
    }

    /// The leases that ran out before `now`: (host, epoch).
    pub(crate) fn lapsed(&self, now: DateTime<Utc>) -> Vec<(String, i64)> {
        self.with(|t| t.iter().filter(|(_, h)| h.expires < now).map(|(k, h)| (k.clone(), h.epoch)).collect())
    }

    /// How many leases are held.
    pub(crate) fn len(&self) -> usize {
        self.with(|t| t.len())
    }
}

/// How often the leader looks for lapsed leases and for changes other
/// controllers wrote: a quarter of the renewal interval, between 50 and
/// 250 ms, so a lapse is seen well within a second of it.
fn tick(renew_interval: Duration) -> Duration {
    (renew_interval / 4).clamp(Duration::from_millis(50), Duration::from_millis(250))
}

/// How far back each look at the services' changes reaches before the
/// previous one: covers a join committed a little after its `updated_at`
/// and the clock skew between controllers.
const CHANGES_OVERLAP: chrono::Duration = chrono::Duration::seconds(2);

/// Database lookups of renewals at an epoch the table does not know, at
/// most in flight (the rest wait for the agent's next renewal).
const UNKNOWN_LOOKUPS: usize = 8;

/// Hold the hosts' leases whenever this controller leads, until `shutdown`.
pub(crate) async fn run(s: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut leader = s.leader.clone();
    loop {
        let fence = leader.borrow_and_update().clone();
        if let Some(fence) = fence {
            lead(&s, fence, &mut leader, &mut shutdown).await;
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            r = leader.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// Lead the leases while `fence` is this controller's: take over, serve
/// renewals, convict lapsed hosts; return when the lead is lost.
async fn lead(
    s: &Arc<Shared>,
    fence: stratus_db::LeaderFence,
    leader: &mut watch::Receiver<Option<stratus_db::LeaderFence>>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let still_leading =
        |leader: &watch::Receiver<Option<stratus_db::LeaderFence>>| leader.borrow().as_ref() == Some(&fence);
    let ttl = chrono::Duration::from_std(s.cfg.lease_ttl).unwrap_or(chrono::Duration::seconds(10));
    let table = Arc::new(LeaseTable::default());
    // Take over: every live host gets a fresh lease from now.
    let started = s.ds.clock().now();
    let live = loop {
        match s.ds.service_live().await {
            Ok(live) => break live,
            Err(e) => warn!(error = %e, "taking over the leases: cannot list the live hosts; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = leader.changed() => if !still_leading(leader) { return },
            _ = shutdown.changed() => return,
        }
    };
    let takeover_until = s.ds.clock().now() + ttl;
    let hosts = live.len();
    table.grant_all(live, takeover_until);
    let mut renewals = loop {
        match s.bus.subscribe(SUBJECT_LEASE).await {
            Ok(sub) => break sub,
            Err(e) => warn!(error = %e, "cannot subscribe to lease renewals; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = leader.changed() => if !still_leading(leader) { return },
            _ = shutdown.changed() => return,
        }
    };
    s.set_lease_table(Some(table.clone()));
    info!(hosts, until = %stratus_db::ts(takeover_until), "holding the hosts' leases: every live host has a fresh lease from the takeover");
    let watch_task = tokio::spawn(watch_leases(s.clone(), table.clone(), fence.clone(), started, takeover_until));
    let renewed = Bytes::from(serde_json::to_vec(&LeaseReply::Renewed).unwrap_or_default());
    let rejoin = Bytes::from(serde_json::to_vec(&LeaseReply::MustRejoin).unwrap_or_default());
    let lookups = Arc::new(tokio::sync::Semaphore::new(UNKNOWN_LOOKUPS));
    loop {
        tokio::select! {
            m = renewals.next() => {
                let Some(m) = m else {
                    warn!("lease renewal subscription closed");
                    break;
                };
                serve_renewal(s, &table, m, ttl, &renewed, &rejoin, &lookups).await;
            }
            r = leader.changed() => if r.is_err() || !still_leading(leader) { break },
            _ = shutdown.changed() => break,
        }
    }
    watch_task.abort();
    s.set_lease_table(None);
    // Dropping the subscription stops the renewals here: the next leader
    // answers them.
    drop(renewals);
    info!(hosts = table.len(), "no longer leading: the hosts' leases pass to the next leader");
}

/// Answer one renewal from the table; an epoch it does not know is looked
/// up in the database off the serving loop.
async fn serve_renewal(
    s: &Arc<Shared>,
    table: &Arc<LeaseTable>,
    m: Message,
    ttl: chrono::Duration,
    renewed: &Bytes,
    rejoin: &Bytes,
    lookups: &Arc<tokio::sync::Semaphore>,
) {
    let Ok(req) = serde_json::from_slice::<LeaseRequest>(&m.payload) else { return };
    let now = s.ds.clock().now();
    match table.renew(&req.host, req.epoch, now, ttl) {
        Verdict::Renewed => {
            let _ = reply(s.bus.as_ref(), &m, renewed.clone()).await;
        }
        Verdict::MustRejoin => {
            let _ = reply(s.bus.as_ref(), &m, rejoin.clone()).await;
        }
        Verdict::Unknown => {
            // A few lookups at a time: after a join storm served by another
            // controller, the periodic look at the changes admits the rest
            // and the agents' next renewals find them in the table.
            let Ok(permit) = lookups.clone().try_acquire_owned() else { return };
            let (s, table, renewed, rejoin) = (s.clone(), table.clone(), renewed.clone(), rejoin.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let answer = match s.ds.service_get_by_host(&req.host).await {
                    Ok(row) if row.epoch == req.epoch && row.is_up() => {
                        table.admit(&req.host, req.epoch, s.ds.clock().now() + ttl);
                        // Admitted now or by a concurrent renewal: either way
                        // the lease at this epoch is held from here on.
                        renewed
                    }
                    Ok(_) | Err(stratus_db::DbError::NotFound { .. }) => rejoin,
                    Err(e) => {
                        warn!(host = %req.host, error = %e, "cannot check a renewal's epoch; the agent retries");
                        return;
                    }
                };
                let _ = reply(s.bus.as_ref(), &m, answer).await;
            });
        }
    }
}

/// The leader's periodic duty: learn of joins and operator changes written
/// by any controller, and convict the hosts whose lease lapsed (one
/// transaction per pass, transitions only). Paused while the bus link is
/// down; when it is back every lease is extended from the reconnection.
async fn watch_leases(
    s: Arc<Shared>,
    table: Arc<LeaseTable>,
    fence: stratus_db::LeaderFence,
    mut since: DateTime<Utc>,
    takeover_until: DateTime<Utc>,
) {
    // No lease learnt from now on ends before this: the takeover's fresh
    // leases, then a full lease from each reconnection of the bus (a host
    // that joined while this leader could not hear it may have renewed since).
    let mut floor = takeover_until;
    let ttl = chrono::Duration::from_std(s.cfg.lease_ttl).unwrap_or(chrono::Duration::seconds(10));
    let mut link = s.bus.link();
    let mut every = tokio::time::interval(tick(s.cfg.lease_renew_interval));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_linked = *link.borrow_and_update();
    // A bus without a connection to lose (in-process) drops its sender.
    let mut link_open = true;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            r = link.changed(), if link_open => if r.is_err() { link_open = false },
        }
        let linked = *link.borrow_and_update();
        if !linked {
            if was_linked {
                warn!("bus link lost: no host is convicted until it is back");
            }
            was_linked = false;
            continue;
        }
        if !was_linked {
            let until = s.ds.clock().now() + ttl;
            floor = floor.max(until);
            table.extend_all(until);
            info!(until = %stratus_db::ts(until), "bus link back: every lease extended from the reconnection");
            was_linked = true;
        }
        // Joins, forced downs and rejoins written since the last look.
        let look = s.ds.clock().now();
        let mut lapsed = Vec::new();
        match s.ds.service_changed_since(since - CHANGES_OVERLAP).await {
            Ok(rows) => {
                since = look;
                for row in rows {
                    if row.is_up() {
                        let until = row.lease_expires_at.unwrap_or(look).max(floor);
                        table.grant_all([(row.host.clone(), row.epoch)], until);
                    } else {
                        table.forget(&row.host, row.epoch);
                        if row.forced_down && row.state == stratus_types::ServiceState::Up {
                            // Forced down revokes the lease: down once the
                            // operator lets it back, until it rejoins.
                            lapsed.push((row.host, row.epoch));
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read the services' changes; retrying"),
        }
        lapsed.extend(table.lapsed(s.ds.clock().now()));
        if lapsed.is_empty() {
            continue;
        }
        match s.ds.service_mark_down(&lapsed, &fence).await {
            Ok(changed) => {
                for (host, epoch) in &lapsed {
                    table.forget(host, *epoch);
                }
                s.metrics.hosts_marked_down(changed.len() as u64);
                for h in changed {
                    warn!(host = %h, "lease expired: host is down");
                }
            }
            Err(e) => warn!(error = %e, hosts = lapsed.len(), "cannot mark lapsed hosts down; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as D;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    /// Renewal at the current epoch extends; a lapsed lease is never
    /// renewed; a stale epoch must rejoin; an unknown one is checked.
    #[test]
    fn renewals_follow_epoch_and_expiry() {
        let t = LeaseTable::default();
        let ttl = D::seconds(10);
        t.grant_all([("h1".to_string(), 2)], t0() + ttl);
        assert_eq!(t.renew("h1", 2, t0() + D::seconds(9), ttl), Verdict::Renewed);
        assert_eq!(t.lapsed(t0() + D::seconds(18)), vec![], "renewed at 9 s: runs until 19 s");
        assert_eq!(t.lapsed(t0() + D::seconds(20)), vec![("h1".to_string(), 2)]);
        assert_eq!(t.renew("h1", 2, t0() + D::seconds(20), ttl), Verdict::MustRejoin, "lapsed: rejoin");
        assert_eq!(t.renew("h1", 1, t0() + D::seconds(1), ttl), Verdict::MustRejoin, "stale epoch");
        assert_eq!(t.renew("h1", 3, t0() + D::seconds(1), ttl), Verdict::Unknown, "a join not seen yet");
        assert_eq!(t.renew("h9", 1, t0(), ttl), Verdict::Unknown);
    }

    /// Admission never replaces a newer epoch; forgetting an older epoch
    /// leaves the newer one; a takeover keeps the later of two leases.
    #[test]
    fn admission_and_forgetting_respect_epochs() {
        let t = LeaseTable::default();
        assert!(t.admit("h1", 3, t0()));
        assert!(!t.admit("h1", 2, t0() + D::seconds(60)), "older epoch");
        t.forget("h1", 2);
        assert_eq!(t.len(), 1, "a conviction of epoch 2 leaves epoch 3");
        t.grant_all([("h1".to_string(), 3)], t0() + D::seconds(5));
        t.grant_all([("h1".to_string(), 3)], t0() + D::seconds(1));
        assert_eq!(t.lapsed(t0() + D::seconds(4)), vec![], "the later grant holds");
        t.extend_all(t0() + D::seconds(30));
        assert_eq!(t.lapsed(t0() + D::seconds(29)), vec![]);
        t.forget("h1", 3);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn lapses_are_looked_for_often() {
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(250));
        assert_eq!(tick(Duration::from_millis(500)), Duration::from_millis(125));
        assert_eq!(tick(Duration::from_millis(100)), Duration::from_millis(50));
    }
}
