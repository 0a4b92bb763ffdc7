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
    /// Last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// Nova's migration uuid (2.59): the marker of the list's pages.
    /// Given at insert (what the caller sets is ignored).
    pub uuid: String,
    /// The server's project when it moved ('' for a row older than the
    /// column whose server was purged).
    pub project_id: String,
    /// The server's user when it moved.
    pub user_id: String,
    /// The server's own copy of its old flavor, what a revert restores
    /// (`None` in rows older than the columns).
    #[sqlx(flatten)]
    pub old_flavor: OldFlavor,
}

/// The parts of a server's old flavor that the allocation columns do not
/// hold (Nova's `instance.old_flavor`): all `Some` or all `None`.
#[derive(Clone, Debug, Default, FromRow)]
pub struct OldFlavor {
    /// Its name.
    pub old_flavor_name: Option<String>,
    /// Root disk GiB.
    pub old_root_gb: Option<i64>,
    /// Ephemeral disk GiB.
    pub old_ephemeral_gb: Option<i64>,
    /// Swap MiB.
    pub old_swap_mb: Option<i64>,
}

impl MigrationRow {
    /// The server's old flavor as it was when it moved, if this row holds it.
    pub fn old_flavor_row(&self) -> Option<crate::FlavorRow> {
        let f = &self.old_flavor;
        Some(crate::FlavorRow {
            id: self.old_flavor_id.clone(),
            name: f.old_flavor_name.clone()?,
            vcpus: self.old_vcpus,
            ram_mb: self.old_ram_mb,
            disk_gb: f.old_root_gb?,
            ephemeral_gb: f.old_ephemeral_gb?,
            swap_mb: f.old_swap_mb?,
            rxtx_factor: 1.0,
            is_public: true,
            disabled: false,
            description: None,
        })
    }
}

const COLS: &str = "id, server_id, kind, source_host, dest_host, old_flavor_id, new_flavor_id, old_vcpus, old_ram_mb, old_disk_gb, old_vm_state, status, created_at, updated_at, COALESCE(uuid, '') AS uuid, COALESCE(project_id, '') AS project_id, COALESCE(user_id, '') AS user_id, old_flavor_name, old_root_gb, old_ephemeral_gb, old_swap_mb";

/// What `GET /os-migrations` filters by (Nova's `migration_get_all_by_filters`):
/// each `Some` must match.
#[derive(Clone, Debug, Default)]
pub struct MigrationFilter {
    /// Any of these statuses.
    pub status: Option<String>,
    /// Moved from or to this host.
    pub host: Option<String>,
    /// Moved from this host (ignored when `host` is given, as Nova).
    pub source_compute: Option<String>,
    /// Of this kind (`resize`, `migration`, `evacuation`, `live-migration`).
    pub migration_type: Option<String>,
    /// Of this server.
    pub instance_uuid: Option<String>,
    /// Of servers of this project.
    pub project_id: Option<String>,
    /// Of servers of this user.
    pub user_id: Option<String>,
    /// Changed at or after.
    pub changes_since: Option<DateTime<Utc>>,
    /// Changed at or before.
    pub changes_before: Option<DateTime<Utc>>,
}

impl Datastore {
    /// Record a migration.
    pub async fn migration_create(&self, m: &MigrationRow) -> Result<MigrationRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("INSERT INTO migrations (server_id, kind, source_host, dest_host, old_flavor_id, new_flavor_id, old_vcpus, old_ram_mb, old_disk_gb, old_vm_state, status, created_at, updated_at, uuid, project_id, user_id, old_flavor_name, old_root_gb, old_ephemeral_gb, old_swap_mb) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12,$13,$14,$15,$16,$17,$18,$19) RETURNING {COLS}"))
            .bind(m.server_id).bind(m.kind.as_str()).bind(&m.source_host).bind(&m.dest_host).bind(&m.old_flavor_id).bind(&m.new_flavor_id)
            .bind(m.old_vcpus).bind(m.old_ram_mb).bind(m.old_disk_gb).bind(m.old_vm_state).bind(m.status.as_str()).bind(self.now())
            .bind(uuid::Uuid::new_v4().to_string()).bind(&m.project_id).bind(&m.user_id)
            .bind(&m.old_flavor.old_flavor_name).bind(m.old_flavor.old_root_gb).bind(m.old_flavor.old_ephemeral_gb).bind(m.old_flavor.old_swap_mb)
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

    /// Every migration matching `f`, newest first (Nova's default order,
    /// `created_at` then `id` descending): what `GET /os-migrations` pages.
    pub async fn migration_list(&self, f: &MigrationFilter) -> Result<Vec<MigrationRow>, DbError> {
        let since = f.changes_since.map(crate::ts);
        let before = f.changes_before.map(crate::ts);
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM migrations WHERE ($1 IS NULL OR status = $1) \
                 AND ($2 IS NULL OR source_host = $2 OR dest_host = $2) \
                 AND ($2 IS NOT NULL OR $3 IS NULL OR source_host = $3) \
                 AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR server_id = $5) \
                 AND ($6 IS NULL OR project_id = $6) AND ($7 IS NULL OR user_id = $7) \
                 AND ($8 IS NULL OR updated_at >= $8) AND ($9 IS NULL OR updated_at <= $9) \
                 ORDER BY created_at DESC, id DESC"
            ))
            .bind(&f.status)
            .bind(&f.host)
            .bind(&f.source_compute)
            .bind(&f.migration_type)
            .bind(&f.instance_uuid)
            .bind(&f.project_id)
            .bind(&f.user_id)
            .bind(&since)
            .bind(&before)
            .fetch_all(rp)
            .await?)
        })
    }
}
