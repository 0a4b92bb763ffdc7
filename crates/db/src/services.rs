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
    /// When the lease granted at the last join ran out (renewals extend the
    /// lease in the leader's memory, not here: no write per renewal).
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
    /// Is the host usable by the liveness record and the operator's flags?
    /// `state` is written by the leader controller on transitions only: it
    /// turns `down` once the lease the leader holds in memory for the host
    /// has lapsed (see the controller's `leases` module), so readers in any
    /// process take the same verdict from the database.
    pub fn is_up(&self) -> bool {
        !self.forced_down && self.state == ServiceState::Up
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

pub(crate) const COLS: &str = "id, uuid, host, \"binary\", zone, disabled, disabled_reason, forced_down, state, epoch, lease_expires_at, vcpus, memory_mb, disk_gb, created_at, updated_at";

/// One service by host name ($1); the SQL both backends run, built once.
static BY_HOST: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLS} FROM services WHERE host = $1"));

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

    /// Mark the given hosts down, each only if it is still up at the epoch
    /// whose lease lapsed (a host that rejoined meanwhile keeps its new
    /// epoch), all in one transaction; returns the hosts that changed (only
    /// transitions are written). Guarded by `fence`: only the current holder
    /// of the controllers' leader lease, which holds the leases, convicts.
    pub async fn service_mark_down(
        &self,
        lapsed: &[(String, i64)],
        fence: &crate::LeaderFence,
    ) -> Result<Vec<String>, DbError> {
        if lapsed.is_empty() {
            return Ok(Vec::new());
        }
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let sql = format!(
                "UPDATE services SET state = {down}, updated_at = $1 WHERE host = $5 AND epoch = $6 AND state = {up} AND {fenced} RETURNING host",
                down = lit(ServiceState::Down),
                up = lit(ServiceState::Up),
                fenced = crate::leader::fence_sql(2, 1)
            );
            let mut tx = dbk::begin(wp).await?;
            let mut changed = Vec::new();
            for (host, epoch) in lapsed {
                let row: Option<(String,)> = sqlx::query_as(&sql)
                    .bind(&now)
                    .bind(&fence.name)
                    .bind(&fence.holder)
                    .bind(fence.token)
                    .bind(host)
                    .bind(epoch)
                    .fetch_optional(&mut *tx)
                    .await?;
                changed.extend(row.map(|r| r.0));
            }
            tx.commit().await?;
            Ok(changed)
        })
    }

    /// Hosts that are up and not forced down, with their epochs: what a new
    /// leader grants a fresh lease to when it takes over.
    pub async fn service_live(&self) -> Result<Vec<(String, i64)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "SELECT host, epoch FROM services WHERE state = {up} AND forced_down = FALSE",
                up = lit(ServiceState::Up)
            );
            Ok(sqlx::query_as(&sql).fetch_all(rp).await?)
        })
    }

    /// Services changed at or after `since` (joins, transitions, operator
    /// changes): how the leader learns of joins served by other controllers
    /// and of hosts forced down, without reading every row.
    pub async fn service_changed_since(&self, since: DateTime<Utc>) -> Result<Vec<ServiceRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            // No ORDER BY id: SQLite would walk the table in id order to
            // avoid a sort instead of using the index on updated_at.
            let sql = format!("SELECT {COLS} FROM services WHERE updated_at >= $1");
            Ok(sqlx::query_as(&sql).bind(ts(since)).fetch_all(rp).await?)
        })
    }

    /// The up, enabled host with the most free RAM that has room for
    /// (`vcpus`, `ram_mb`, `disk_gb`), in availability zone `zone` if one
    /// is asked for, not in `exclude`; ties go to the oldest host. Computed in one query, so placing a server costs the
    /// same whether the cloud has ten hosts or a hundred thousand (reading
    /// every service row into the scheduler did not).
    pub async fn service_pick(
        &self,
        vcpus: i64,
        ram_mb: i64,
        disk_gb: i64,
        zone: Option<&str>,
        exclude: &[String],
    ) -> Result<Option<ServiceRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let cols: Vec<String> = COLS.split(", ").map(|c| format!("s.{c}")).collect();
            let sql = format!(
                "SELECT {cols} FROM services s LEFT JOIN (
                   SELECT host, SUM(c) AS c, SUM(r) AS r, SUM(d) AS d FROM (
                     SELECT host, vcpus AS c, ram_mb AS r, disk_gb + ephemeral_gb AS d FROM servers WHERE deleted = FALSE AND host IS NOT NULL
                     UNION ALL SELECT host, vcpus, ram_mb, disk_gb FROM zombies
                     UNION ALL SELECT source_host, old_vcpus, old_ram_mb, old_disk_gb FROM migrations WHERE status = {finished}) AS used
                   GROUP BY host) u ON u.host = s.host
                 WHERE s.state = {up} AND s.forced_down = FALSE AND s.disabled = FALSE AND s.zone = COALESCE($5, s.zone)
                   AND s.vcpus - COALESCE(u.c, 0) >= $1 AND s.memory_mb - COALESCE(u.r, 0) >= $2 AND s.disk_gb - COALESCE(u.d, 0) >= $3
                 ORDER BY s.memory_mb - COALESCE(u.r, 0) DESC, s.id LIMIT $4",
                cols = cols.join(", "),
                up = lit(ServiceState::Up),
                finished = lit(stratus_types::MigrationStatus::Finished)
            );
            let limit = i64::try_from(exclude.len()).unwrap_or(i64::MAX - 1) + 1;
            let rows: Vec<ServiceRow> = sqlx::query_as(&sql)
                .bind(vcpus)
                .bind(ram_mb)
                .bind(disk_gb)
                .bind(limit)
                .bind(zone)
                .fetch_all(rp)
                .await?;
            Ok(rows.into_iter().find(|r| !exclude.contains(&r.host)))
        })
    }

    /// Does availability zone `zone` have an enabled compute host (Nova's
    /// "available" zones, the ones a server may be created in)?
    pub async fn service_zone_available(&self, zone: &str) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM services WHERE zone = $1 AND disabled = FALSE LIMIT 1")
                    .bind(zone)
                    .fetch_optional(rp)
                    .await?;
            Ok(row.is_some())
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
        if let crate::backend::Pools::Sqlite { write, sync, direct, .. } = &self.pools {
            let row = direct.run(|c| crate::direct_read::one(c, &BY_HOST, &[&host], crate::direct_read::service_row));
            let row = sync.wait(write).await.and(row)?;
            return row.ok_or_else(|| DbError::not_found(RowKind::Service, host));
        }
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&BY_HOST)
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

    /// Conviction writes a transition once, only for the epoch that lapsed,
    /// and a rejoin bumps the epoch. (Nova: `service_is_up` is a reader's
    /// verdict; here it is the leader's, written on transitions.)
    #[tokio::test]
    async fn mark_down_writes_transitions_of_the_lapsed_epoch_only() {
        let clock = ManualClock::new(chrono::Utc::now());
        let (ds, _d) = crate::testing::fresh(Arc::new(clock.clone())).await;
        let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
        let ttl = Duration::seconds(10);
        let leader = ds.leader_acquire("controller", "c1", Duration::days(1)).await.expect("lease").expect("leader");
        let fence = crate::LeaderFence { name: "controller".into(), holder: "c1".into(), token: leader };
        let s = ds.service_join("h1", cap, ttl).await.expect("join");
        assert_eq!(s.epoch, 1);
        assert!(s.is_up());
        ds.service_join("h2", cap, ttl).await.expect("join h2");
        let h2 = ds.service_join("h2", cap, ttl).await.expect("h2 rejoins");
        assert_eq!(h2.epoch, 2);
        assert_eq!(ds.service_live().await.expect("live").len(), 2);
        let lapsed = vec![("h1".to_string(), 1), ("h2".to_string(), 1)];
        assert_eq!(ds.service_mark_down(&lapsed, &fence).await.expect("down"), vec!["h1".to_string()], "h2 rejoined");
        assert!(ds.service_mark_down(&lapsed, &fence).await.expect("again").is_empty(), "only transitions are written");
        assert!(!ds.service_get_by_host("h1").await.expect("h1").is_up());
        assert_eq!(ds.service_live().await.expect("live"), vec![("h2".to_string(), 2)]);
        let s = ds.service_join("h1", cap, ttl).await.expect("rejoin");
        assert_eq!(s.epoch, 2);
        assert!(s.is_up());
    }

    /// Joins and operator changes show in `service_changed_since`; rows not
    /// touched since do not.
    #[tokio::test]
    async fn changes_since_list_joins_and_operator_changes() {
        let clock = ManualClock::new(chrono::Utc::now());
        let (ds, _d) = crate::testing::fresh(Arc::new(clock.clone())).await;
        let cap = HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
        let h1 = ds.service_join("h1", cap, Duration::seconds(10)).await.expect("join");
        clock.advance(Duration::seconds(5));
        let mark = stratus_types::Clock::now(&clock);
        assert!(ds.service_changed_since(mark).await.expect("none").is_empty());
        ds.service_join("h2", cap, Duration::seconds(10)).await.expect("join");
        ds.service_update(&h1.uuid, None, None, Some(true)).await.expect("force down");
        let mut changed: Vec<_> =
            ds.service_changed_since(mark).await.expect("changes").into_iter().map(|r| r.host).collect();
        changed.sort();
        assert_eq!(changed, vec!["h1".to_string(), "h2".to_string()]);
    }

    /// Down when forced or marked down, whatever the lease said.
    #[tokio::test]
    async fn is_up_follows_state_and_operator_flags() {
        let (ds, _d) = crate::testutil::store().await;
        let cap = HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
        let row = ds.service_join("h1", cap, Duration::seconds(10)).await.expect("join");
        assert!(row.is_up());
        assert!(!ServiceRow { forced_down: true, ..row.clone() }.is_up());
        assert!(!ServiceRow { state: ServiceState::Down, ..row }.is_up());
    }
}
