//! Zombies: locally deleted servers whose VM may still run on a host that
//! has not confirmed its destruction. They keep capacity reserved and are
//! what an agent must reap when it rejoins.

use crate::{Datastore, DbError};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::ServerId;

/// A zombie record.
#[derive(Clone, Debug, FromRow)]
pub struct ZombieRow {
    /// The deleted server.
    pub server_id: ServerId,
    /// The host its VM may still run on.
    pub host: String,
    /// Reserved vCPUs.
    pub vcpus: i64,
    /// Reserved RAM MiB.
    pub ram_mb: i64,
    /// Reserved disk GiB.
    pub disk_gb: i64,
    /// Why the delete went local.
    pub reason: String,
    /// When.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

impl Datastore {
    /// Record a zombie (idempotent).
    pub async fn zombie_record(&self, z: &ZombieRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query("INSERT INTO zombies (server_id, host, vcpus, ram_mb, disk_gb, reason, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (server_id, host) DO NOTHING")
            .bind(z.server_id).bind(&z.host).bind(z.vcpus).bind(z.ram_mb).bind(z.disk_gb).bind(&z.reason).bind(self.now())
            ).await?;
            Ok(())
        })
    }

    /// Zombies of one host, or of all hosts.
    pub async fn zombie_list(&self, host: Option<&str>) -> Result<Vec<ZombieRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT server_id, host, vcpus, ram_mb, disk_gb, reason, created_at FROM zombies WHERE ($1 IS NULL OR host = $1) ORDER BY created_at")
            .bind(host).fetch_all(rp).await?)
        })
    }

    /// The host reported its VMs: every zombie of that host whose VM is not
    /// among them is gone, so its capacity is released. Returns the cleared ids.
    pub async fn zombie_clear_absent(&self, host: &str, present_vms: &[ServerId]) -> Result<Vec<ServerId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let zs = self.zombie_list(Some(host)).await?;
            let mut cleared = Vec::new();
            for z in zs {
                if !present_vms.contains(&z.server_id) {
                    dbk::exec(
                        wp,
                        sqlx::query("DELETE FROM zombies WHERE server_id = $1 AND host = $2")
                            .bind(z.server_id)
                            .bind(host),
                    )
                    .await?;
                    cleared.push(z.server_id);
                }
            }
            Ok(cleared)
        })
    }
}

/// The storage clients a host last reported still open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostClients {
    /// The host's epoch when it reported (a report from before a fence's
    /// rejoin says nothing about what the rejoined host still runs).
    pub epoch: i64,
    /// Client ids (as the storage backend names them) still open there.
    pub clients: Vec<String>,
    /// How many reports of the host were recorded, this one included.
    pub seq: i64,
}

impl Datastore {
    /// Record the storage clients `host` reports still open at `epoch`
    /// (replacing its previous report). A report from an older epoch than
    /// the one stored is ignored (it was overtaken by a rejoin).
    pub async fn host_clients_report(&self, host: &str, epoch: i64, clients: &[String]) -> Result<(), DbError> {
        let mut sorted = clients.to_vec();
        sorted.sort();
        sorted.dedup();
        let text = serde_json::to_string(&sorted).map_err(|e| DbError::Corrupt(e.to_string()))?;
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query(
                    "INSERT INTO host_storage_clients (host, epoch, clients, reported_at, seq) VALUES ($1, $2, $3, $4, 1)
                     ON CONFLICT (host) DO UPDATE SET epoch = excluded.epoch, clients = excluded.clients, reported_at = excluded.reported_at,
                       seq = host_storage_clients.seq + 1
                     WHERE host_storage_clients.epoch <= excluded.epoch",
                )
                .bind(host)
                .bind(epoch)
                .bind(&text)
                .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }

    /// What `host` last reported, if it ever did.
    pub async fn host_clients(&self, host: &str) -> Result<Option<HostClients>, DbError> {
        let row: Option<(i64, String, i64)> = crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT epoch, clients, seq FROM host_storage_clients WHERE host = $1")
                .bind(host)
                .fetch_optional(rp)
                .await?)
        })?;
        row.map(|(epoch, text, seq)| {
            let clients = serde_json::from_str(&text).map_err(|e| DbError::Corrupt(format!("host clients: {e}")))?;
            Ok(HostClients { epoch, clients, seq })
        })
        .transpose()
    }
}
