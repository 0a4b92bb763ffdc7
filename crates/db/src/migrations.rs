//! Migrations: resizes, cold migrations and evacuations, with the source
//! host's old allocation kept (and its VM kept in the host's inventory)
//! until the move is confirmed or reverted.

use crate::sql::list;
use crate::{Datastore, DbError};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::ServerId;
use stratus_types::{MigrationKind, MigrationStatus};

/// A migration row.
#[derive(Clone, Debug, FromRow)]
pub struct MigrationRow {
    /// Id.
    pub id: i64,
    /// Server moved.
    pub server_id: ServerId,
    /// What moves the server.
    #[sqlx(try_from = "String")]
    pub kind: MigrationKind,
    /// Where it was.
    pub source_host: String,
    /// Where it goes.
    pub dest_host: Option<String>,
    /// Flavor before.
    pub old_flavor_id: String,
    /// Flavor after.
    pub new_flavor_id: String,
    /// Source allocation: vCPUs.
    pub old_vcpus: i64,
    /// Source allocation: RAM MiB.
    pub old_ram_mb: i64,
    /// Source allocation: disk GiB.
    pub old_disk_gb: i64,
    /// vm_state to return to on revert or confirm (`active` or `stopped`).
    pub old_vm_state: stratus_types::VmState,
    /// Where the move is (`finished`: a resize awaiting confirm or revert).
    #[sqlx(try_from = "String")]
    pub status: MigrationStatus,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

const COLS: &str = "id, server_id, kind, source_host, dest_host, old_flavor_id, new_flavor_id, old_vcpus, old_ram_mb, old_disk_gb, old_vm_state, status, created_at";

impl Datastore {
    /// Record a migration.
    pub async fn migration_create(&self, m: &MigrationRow) -> Result<MigrationRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("INSERT INTO migrations (server_id, kind, source_host, dest_host, old_flavor_id, new_flavor_id, old_vcpus, old_ram_mb, old_disk_gb, old_vm_state, status, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12) RETURNING {COLS}"))
            .bind(m.server_id).bind(m.kind.as_str()).bind(&m.source_host).bind(&m.dest_host).bind(&m.old_flavor_id).bind(&m.new_flavor_id)
            .bind(m.old_vcpus).bind(m.old_ram_mb).bind(m.old_disk_gb).bind(m.old_vm_state).bind(m.status.as_str()).bind(self.now())
            .fetch_one(wp).await?)
        })
    }

    /// Set a migration's status (and destination).
    pub async fn migration_set(
        &self,
        id: i64,
        status: MigrationStatus,
        dest_host: Option<&str>,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query(
                "UPDATE migrations SET status = $2, dest_host = COALESCE($3, dest_host), updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(dest_host)
            .bind(self.now())
            )
            .await?;
            Ok(())
        })
    }

    /// The migrations of a server still in progress or awaiting confirmation.
    pub async fn migration_open_for_server(&self, server_id: &ServerId) -> Result<Vec<MigrationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM migrations WHERE server_id = $1 AND status IN ({migration_open}) ORDER BY id",
                migration_open = list(&MigrationStatus::OPEN)
            ))
            .bind(server_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// All migrations of a server, newest first.
    pub async fn migration_list_for_server(&self, server_id: &ServerId) -> Result<Vec<MigrationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {COLS} FROM migrations WHERE server_id = $1 ORDER BY id DESC"))
                .bind(server_id)
                .fetch_all(rp)
                .await?)
        })
    }
}
