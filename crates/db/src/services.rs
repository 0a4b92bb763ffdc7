//! Compute services (hosts): registration with an epoch, lease renewal, and
//! the up/down transitions the liveness monitor writes.

use crate::sql::lit;
use crate::{Datastore, DbError, RowKind, ts};
use chrono::Duration;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::ServiceState;

/// A compute service row.
#[derive(Clone, Debug, FromRow)]
pub struct ServiceRow {
    /// Integer id (API below 2.53).
    pub id: i64,
    /// UUID (API from 2.53).
    pub uuid: String,
    /// Host name, e.g. `compute-1`.
    pub host: String,
    /// `nova-compute` (kept for client compatibility).
    pub binary: String,
    /// Availability zone.
    pub zone: String,
    /// Disabled hosts get no new servers.
    pub disabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Forced down by an operator: down at once, whatever the lease says.
    pub forced_down: bool,
    /// Up or down, as last written by the monitor.
    pub state: ServiceState,
    /// Incremented each time the agent (re)joins; commands carry it.
    pub epoch: i64,
    /// When the current lease runs out.
    #[sqlx(try_from = "crate::OptTsText")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Capacity: vCPUs.
    pub vcpus: i64,
    /// Capacity: RAM MiB.
    pub memory_mb: i64,
    /// Capacity: disk GiB.
    pub disk_gb: i64,
    /// Row creation.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last change (API `updated_at`).
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

impl ServiceRow {
    /// Is the host usable right now by the lease and the operator's flags?
    /// (`now` comes from the caller's clock, the single authority.)
    pub fn is_up(&self, now: DateTime<Utc>) -> bool {
        if self.forced_down || self.state != ServiceState::Up {
            return false;
        }
        self.lease_expires_at.is_some_and(|exp| exp >= now)
    }
}

/// Host capacity an agent announces when it joins.
#[derive(Clone, Copy, Debug)]
pub struct HostCapacity {
    /// vCPUs.
    pub vcpus: i64,
    /// RAM MiB.
    pub memory_mb: i64,
    /// Disk GiB.
    pub disk_gb: i64,
}

/// Result of a lease renewal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Lease extended.
    Renewed,
    /// The epoch is stale or the lease already expired: the agent must rejoin
    /// (get a new epoch) and reconcile before taking work.
    MustRejoin,
}

const COLS: &str = "id, uuid, host, \"binary\", zone, disabled, disabled_reason, forced_down, state, epoch, lease_expires_at, vcpus, memory_mb, disk_gb, created_at, updated_at";

impl Datastore {
    /// An agent joins (or rejoins): create the row if needed, bump the epoch,
    /// grant a lease of `ttl`. Returns the new row.
    pub async fn service_join(&self, host: &str, cap: HostCapacity, ttl: Duration) -> Result<ServiceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.clock.now();
            let exp = ts(now + ttl);
            let sql = format!("INSERT INTO services (uuid, host, \"binary\", state, epoch, lease_expires_at, vcpus, memory_mb, disk_gb, created_at, updated_at)
             VALUES ($1, $2, 'nova-compute', {up}, 1, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (host, \"binary\") DO UPDATE SET state = {up}, epoch = services.epoch + 1, lease_expires_at = $3,
               vcpus = $4, memory_mb = $5, disk_gb = $6, updated_at = $7
             RETURNING {COLS}", up = lit(ServiceState::Up));
            Ok(sqlx::query_as(&sql)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(host)
                .bind(exp)
                .bind(cap.vcpus)
                .bind(cap.memory_mb)
                .bind(cap.disk_gb)
                .bind(ts(now))
                .fetch_one(wp)
                .await?)
        })
    }

    /// Extend the lease of `host` if `epoch` is current, the lease has not
    /// lapsed and the host is not forced down (a forced-down host is out of
    /// the cluster: when it is let back it rejoins with a new epoch and
    /// reconciles first).
    pub async fn service_renew(&self, host: &str, epoch: i64, ttl: Duration) -> Result<Renewal, DbError> {
        crate::with_db!(
            self,
            urgent | wp,
            rp | {
                let now = self.clock.now();
                let r = sqlx::query(&format!("UPDATE services SET lease_expires_at = $3 WHERE host = $1 AND epoch = $2 AND state = {up} AND forced_down = FALSE AND lease_expires_at >= $4", up = lit(ServiceState::Up)))
            .bind(host).bind(epoch).bind(ts(now + ttl)).bind(ts(now))
            .execute(wp).await?;
                Ok(if r.rows_affected() == 1 { Renewal::Renewed } else { Renewal::MustRejoin })
            }
        )
    }

    /// Mark every host whose lease lapsed as down; returns the hosts that
    /// changed (only transitions are written). Guarded by `fence`: only the
    /// current holder of the controllers' leader lease marks hosts down.
    pub async fn service_expire_leases(&self, fence: &crate::LeaderFence) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let rows: Vec<(String,)> = sqlx::query_as(&format!("UPDATE services SET state = {down}, updated_at = $1 WHERE state = {up} AND (lease_expires_at IS NULL OR lease_expires_at < $1) AND {fenced} RETURNING host", down = lit(ServiceState::Down), up = lit(ServiceState::Up), fenced = crate::leader::fence_sql(2, 1)))
            .bind(now).bind(&fence.name).bind(&fence.holder).bind(fence.token).fetch_all(wp).await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// All compute services.
    pub async fn service_list(&self) -> Result<Vec<ServiceRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!("SELECT {COLS} FROM services ORDER BY id");
            Ok(sqlx::query_as(&sql).fetch_all(rp).await?)
        })
    }

    /// One service by host name.
    pub async fn service_get_by_host(&self, host: &str) -> Result<ServiceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!("SELECT {COLS} FROM services WHERE host = $1");
            sqlx::query_as(&sql)
                .bind(host)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Service, host))
        })
    }

    /// One service by integer id or UUID.
    pub async fn service_get(&self, id: &str) -> Result<ServiceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!("SELECT {COLS} FROM services WHERE uuid = $1 OR CAST(id AS TEXT) = $1");
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Service, id))
        })
    }

    /// Operator changes: enable/disable with a reason, force down/up.
    pub async fn service_update(
        &self,
        uuid: &str,
        disabled: Option<bool>,
        reason: Option<Option<String>>,
        forced_down: Option<bool>,
    ) -> Result<ServiceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "UPDATE services SET disabled = COALESCE($2, disabled),
                disabled_reason = CASE WHEN $3 THEN $4 ELSE disabled_reason END,
                forced_down = COALESCE($5, forced_down), updated_at = $6
             WHERE uuid = $1 RETURNING {COLS}"
            );
            sqlx::query_as(&sql)
                .bind(uuid)
                .bind(disabled)
                .bind(reason.is_some())
                .bind(reason.clone().flatten())
                .bind(forced_down)
                .bind(self.now())
                .fetch_optional(wp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Service, uuid))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stratus_types::ManualClock;

    #[tokio::test]
    async fn lease_expires_and_rejoin_bumps_epoch() {
        let clock = ManualClock::new(chrono::Utc::now());
        let (ds, _d) = crate::testing::fresh(Arc::new(clock.clone())).await;
        let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
        let ttl = Duration::seconds(10);
        let leader = ds.leader_acquire("controller", "c1", Duration::days(1)).await.expect("lease").expect("leader");
        let fence = crate::LeaderFence { name: "controller".into(), holder: "c1".into(), token: leader };
        let s = ds.service_join("h1", cap, ttl).await.expect("join");
        assert_eq!(s.epoch, 1);
        assert!(s.is_up(clock.now_for_test()));
        clock.advance(Duration::seconds(5));
        assert_eq!(ds.service_renew("h1", 1, ttl).await.expect("renew"), Renewal::Renewed);
        clock.advance(Duration::seconds(11));
        assert_eq!(ds.service_expire_leases(&fence).await.expect("expire"), vec!["h1".to_string()]);
        assert!(ds.service_expire_leases(&fence).await.expect("again").is_empty(), "only transitions are written");
        assert_eq!(ds.service_renew("h1", 1, ttl).await.expect("renew"), Renewal::MustRejoin);
        let s = ds.service_join("h1", cap, ttl).await.expect("rejoin");
        assert_eq!(s.epoch, 2);
        assert_eq!(ds.service_renew("h1", 1, ttl).await.expect("stale"), Renewal::MustRejoin);
    }

    /// The lease is compared as a time: up until and including its expiry,
    /// down without one, and down when forced whatever the lease says.
    #[tokio::test]
    async fn is_up_compares_the_lease_as_a_time() {
        let (ds, _d) = crate::testutil::store().await;
        let cap = HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
        let row = ds.service_join("h1", cap, Duration::seconds(10)).await.expect("join");
        let exp = row.lease_expires_at.expect("a lease");
        assert!(row.is_up(exp));
        assert!(!row.is_up(exp + Duration::microseconds(1)));
        assert!(!ServiceRow { lease_expires_at: None, ..row.clone() }.is_up(exp));
        assert!(!ServiceRow { forced_down: true, ..row }.is_up(exp));
    }

    trait NowForTest {
        fn now_for_test(&self) -> chrono::DateTime<chrono::Utc>;
    }
    impl NowForTest for ManualClock {
        fn now_for_test(&self) -> chrono::DateTime<chrono::Utc> {
            stratus_types::Clock::now(self)
        }
    }
}
