//! Leader leases: one holder at a time for the controllers' singleton
//! duties, with a fencing token that every guarded write checks.
//!
//! A holder renews well before `expires_at`; another controller may take the
//! lease only once it has expired, and taking it increments `token`. A write
//! made on behalf of a duty carries the holder's [`LeaderFence`] and only
//! applies if that holder still holds that token and its lease has not run
//! out, in the same statement: a controller that was paused (SIGSTOP, a long
//! GC-like stall, a partition from the database) and resumes after another
//! took over cannot write a single row.

use crate::{Datastore, DbError, ts};
use chrono::Duration;

/// Proof of leadership a guarded write carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderFence {
    /// The lease (`controller`).
    pub name: String,
    /// Who holds it (the controller's worker id).
    pub holder: String,
    /// The token the holder got when it took the lease.
    pub token: i64,
}

/// The SQL condition "this fence is still valid at `$now`": to be AND-ed into
/// a guarded write, with the fence bound at `$n`, `$n+1`, `$n+2` and the
/// current time at `$now`.
pub(crate) fn fence_sql(first: usize, now: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM leader_leases WHERE name = ${} AND holder = ${} AND token = ${} AND expires_at >= ${now})",
        first,
        first + 1,
        first + 2
    )
}

impl Datastore {
    /// Take or renew the lease `name` for `holder` for `ttl`: the token when
    /// `holder` holds it now, `None` when another holder's lease still runs.
    pub async fn leader_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<i64>, DbError> {
        crate::with_db!(
            self,
            urgent | wp,
            rp | {
                let now = self.clock.now();
                let row: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO leader_leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (name) DO UPDATE SET
                   token = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.token ELSE leader_leases.token + 1 END,
                   holder = excluded.holder,
                   expires_at = excluded.expires_at
                 WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at < $4
                 RETURNING token",
            )
            .bind(name)
            .bind(holder)
            .bind(ts(now + ttl))
            .bind(ts(now))
            .fetch_optional(wp)
            .await?;
                Ok(row.map(|r| r.0))
            }
        )
    }

    /// Give the lease up at once (a controller shutting down), so another
    /// takes over without waiting for it to expire.
    pub async fn leader_release(&self, fence: &LeaderFence) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("UPDATE leader_leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND token = $3")
                .bind(&fence.name)
                .bind(&fence.holder)
                .bind(fence.token)
                .bind(ts(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH))
                .execute(wp)
                .await?;
            Ok(())
        })
    }

    /// Is `fence` still valid (for duties whose effects are outside the
    /// database and can only check before acting)?
    pub async fn leader_valid(&self, fence: &LeaderFence) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!("SELECT {}", fence_sql(1, 4));
            let (ok,): (bool,) = sqlx::query_as(&sql)
                .bind(&fence.name)
                .bind(&fence.holder)
                .bind(fence.token)
                .bind(self.now())
                .fetch_one(rp)
                .await?;
            Ok(ok)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stratus_types::ManualClock;

    fn fence(holder: &str, token: i64) -> LeaderFence {
        LeaderFence { name: "controller".into(), holder: holder.into(), token }
    }

    /// One holder at a time; a takeover only after expiry, with a new
    /// token; the deposed holder's guarded writes are refused.
    #[tokio::test]
    async fn one_holder_at_a_time_and_the_deposed_one_cannot_write() {
        let clock = ManualClock::new(chrono::Utc::now());
        let (ds, _d) = crate::testing::fresh(Arc::new(clock.clone())).await;
        let ttl = Duration::seconds(10);
        assert_eq!(ds.leader_acquire("controller", "a", ttl).await.expect("a"), Some(1));
        assert_eq!(ds.leader_acquire("controller", "b", ttl).await.expect("b"), None, "a's lease runs");
        clock.advance(Duration::seconds(5));
        assert_eq!(ds.leader_acquire("controller", "a", ttl).await.expect("renew"), Some(1), "renewal keeps the token");
        assert!(ds.leader_valid(&fence("a", 1)).await.expect("valid"));
        clock.advance(Duration::seconds(11));
        assert!(!ds.leader_valid(&fence("a", 1)).await.expect("expired"), "an expired lease is no proof");
        assert_eq!(ds.leader_acquire("controller", "b", ttl).await.expect("takeover"), Some(2));
        assert!(!ds.leader_valid(&fence("a", 1)).await.expect("deposed"));
        assert_eq!(ds.leader_acquire("controller", "a", ttl).await.expect("late a"), None, "a cannot take it back");
        // A guarded write of the deposed holder changes nothing.
        let cap = crate::HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
        ds.service_join("h1", cap, Duration::seconds(1)).await.expect("join");
        clock.advance(Duration::seconds(2));
        let lapsed = vec![("h1".to_string(), 1)];
        assert!(ds.service_mark_down(&lapsed, &fence("a", 1)).await.expect("a writes").is_empty(), "refused");
        assert_eq!(ds.service_get_by_host("h1").await.expect("h1").state, stratus_types::ServiceState::Up);
        assert_eq!(ds.service_mark_down(&lapsed, &fence("b", 2)).await.expect("b writes"), vec!["h1".to_string()]);
        // Release hands over at once.
        ds.leader_release(&fence("b", 2)).await.expect("release");
        assert_eq!(ds.leader_acquire("controller", "a", ttl).await.expect("a again"), Some(3));
    }
}
