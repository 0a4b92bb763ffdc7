//! Volumes, attachments and the durable storage-cleanup queue.
//!
//! Status machine (Cinder's): `creating → available → reserved → attaching →
//! in-use → detaching → available`, plus `deleting`, `error`,
//! `error_deleting`, `extending`. Every status change is a compare-and-swap.

use crate::{Cas, Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::{AttachStatus, CleanupKind, TaskState, VolumeStatus};
use stratus_types::{AttachmentId, ServerId, VolumeId};

/// A volume row.
#[derive(Clone, Debug, FromRow)]
pub struct VolumeRow {
    /// Volume id (UUID).
    pub id: VolumeId,
    /// Display name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Size GiB.
    pub size_gb: i64,
    /// Status (see the module doc).
    #[sqlx(try_from = "String")]
    pub status: VolumeStatus,
    /// The volume's type (`None` only for a deleted volume whose type was
    /// deleted after it).
    pub volume_type_id: Option<String>,
    /// The type's current name, read through the join (views show it).
    pub volume_type: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Created from an image.
    pub bootable: bool,
    /// Source image.
    pub image_id: Option<String>,
    /// Name in the backend (`volume-<id>`).
    pub backend_name: String,
    /// Metadata JSON.
    pub metadata: String,
    /// The generic volume group it belongs to (Cinder 3.13).
    pub group_id: Option<String>,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Updated.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// Deleted at.
    #[sqlx(try_from = "crate::OptTsText")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Deleted.
    pub deleted: bool,
    /// The snapshot the volume was built from (Cinder's `snapshot_id`).
    pub snapshot_id: Option<String>,
    /// The volume it was cloned from (Cinder's `source_volid`).
    pub source_volid: Option<String>,
}

/// An attachment row.
#[derive(Clone, Debug, FromRow)]
pub struct AttachmentRow {
    /// Attachment id.
    pub id: AttachmentId,
    /// Volume.
    pub volume_id: VolumeId,
    /// Server (instance uuid).
    pub server_id: ServerId,
    /// Host the volume is opened on.
    pub host: Option<String>,
    /// Connector JSON from the host.
    pub connector: Option<String>,
    /// Storage client identity recorded when the host opened the volume:
    /// what fencing targets.
    pub client_id: Option<String>,
    /// Device path (`/dev/vdb`).
    pub mountpoint: Option<String>,
    /// Where opening the volume on the host stands, or `fenced`.
    #[sqlx(try_from = "String")]
    pub status: AttachStatus,
    /// Delete the volume when the server is deleted.
    pub delete_on_termination: bool,
    /// Boot index (0 for a root volume).
    pub boot_index: Option<i64>,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

/// A storage cleanup that could not be done yet.
#[derive(Clone, Debug, FromRow)]
pub struct CleanupRow {
    /// Id.
    pub id: i64,
    /// What the cleanup does.
    #[sqlx(try_from = "String")]
    pub kind: CleanupKind,
    /// Volume.
    pub volume_id: Option<VolumeId>,
    /// Backend name of the volume.
    pub backend_name: Option<String>,
    /// Client to unfence.
    pub client_id: Option<String>,
    /// Host whose rejoin allows an unfence.
    pub host: Option<String>,
    /// Why it was queued.
    pub reason: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// Queued at.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Server whose client was fenced (unfence waits for its host).
    pub server_id: Option<ServerId>,
    /// The host's epoch when the client was fenced.
    pub epoch: Option<i64>,
    /// The number the host's clients reports had reached when the client was
    /// fenced (see [`crate::HostClients::seq`]); `None` in rows queued before
    /// it was kept.
    pub clients_seq: Option<i64>,
}

/// Volume usage of a project, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeUsage {
    /// Volumes.
    pub volumes: i64,
    /// GiB.
    pub gigabytes: i64,
}

/// The columns a volume is read with: its type's name comes from the join.
const VCOLS: &str = "id, name, description, project_id, user_id, size_gb, status, volume_type_id, (SELECT t.name FROM volume_types t WHERE t.id = volumes.volume_type_id) AS volume_type, availability_zone, bootable, image_id, backend_name, metadata, group_id, created_at, updated_at, deleted_at, deleted, snapshot_id, source_volid";
/// The columns a volume is written with.
const VINSERT: &str = "id, name, description, project_id, user_id, size_gb, status, volume_type_id, availability_zone, bootable, image_id, backend_name, metadata, group_id, created_at, updated_at, deleted_at, deleted, snapshot_id, source_volid";
const ACOLS: &str = "id, volume_id, server_id, host, connector, client_id, mountpoint, status, delete_on_termination, boot_index, created_at";
const CCOLS: &str = "id, kind, volume_id, backend_name, client_id, host, reason, attempts, last_error, created_at, server_id, epoch, clients_seq";

crate::per_backend! {
/// A volume whose last live attachment went becomes `available` (unless it
/// is being deleted, still being built, or in `error`: a boot volume whose
/// build failed has no storage to offer).
pub(crate) async fn volume_free_if_unattached(conn: &mut dbk::Conn, vol: &VolumeId, now: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status NOT IN ($4,$5,$6,$7)
             AND NOT EXISTS (SELECT 1 FROM volume_attachments WHERE volume_id = $1 AND deleted = FALSE)")
        .bind(vol).bind(now).bind(VolumeStatus::Available.as_str())
        .bind(VolumeStatus::Deleting.as_str()).bind(VolumeStatus::ErrorDeleting.as_str())
        .bind(VolumeStatus::Creating.as_str()).bind(VolumeStatus::Error.as_str())
        .execute(&mut *conn).await?;
    Ok(())
}
}

/// What [`Datastore::attachment_release`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The attachment is gone (now, or already).
    Released,
    /// The volume moved (another host or client holds it now), or its server
    /// is moving: nothing was released.
    Moved,
}

/// What [`Datastore::attachment_record_open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenRecord {
    /// Recorded: the attachment is attached on that host, by that client.
    Recorded,
    /// Not recorded: the server left that host or started another task
    /// (a move or a delete), or the attachment was opened elsewhere or is
    /// gone. The host's open is stray and must be closed (or fenced).
    Stale,
}

impl Datastore {
    /// Insert a volume unless the project would exceed `max_volumes` /
    /// `max_gigabytes` (-1 unlimited); usage is counted in the same transaction.
    pub async fn volume_create(
        &self,
        v: &VolumeRow,
        max_volumes: i64,
        max_gigabytes: i64,
    ) -> Result<VolumeRow, DbError> {
        Ok(self.volume_create_with(v, None, max_volumes, max_gigabytes, (-1, -1)).await?.0)
    }

    /// [`Self::volume_create`] also within the project's limits for the
    /// volume's type (`type_limits`: its `volumes_<type>` and
    /// `gigabytes_<type>`, reported as `volumes_type` / `gigabytes_type`).
    pub async fn volume_create_typed(
        &self,
        v: &VolumeRow,
        max_volumes: i64,
        max_gigabytes: i64,
        type_limits: (i64, i64),
    ) -> Result<VolumeRow, DbError> {
        Ok(self.volume_create_with(v, None, max_volumes, max_gigabytes, type_limits).await?.0)
    }

    /// Insert a volume (normally `creating`) together with the attachment
    /// that reserves it for `att.server_id`, in one transaction, unless the
    /// server is gone or being deleted (a conflict) or the quota is exceeded.
    /// A boot volume recorded apart from its attachment is a volume no
    /// server owns if the build stops in between: a server delete would
    /// never release it and its quota would leak.
    pub async fn volume_create_reserved(
        &self,
        v: &VolumeRow,
        att: &AttachmentRow,
        max_volumes: i64,
        max_gigabytes: i64,
    ) -> Result<(VolumeRow, AttachmentRow), DbError> {
        let (vol, att) = self.volume_create_with(v, Some(att), max_volumes, max_gigabytes, (-1, -1)).await?;
        let att = att.ok_or_else(|| DbError::conflict(RowKind::Attachment, "attachment not recorded"))?;
        Ok((vol, att))
    }

    async fn volume_create_with(
        &self,
        v: &VolumeRow,
        reserve: Option<&AttachmentRow>,
        max_volumes: i64,
        max_gigabytes: i64,
        (type_volumes, type_gigabytes): (i64, i64),
    ) -> Result<(VolumeRow, Option<AttachmentRow>), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            if let Some(a) = reserve {
                // A write, not a read: on PostgreSQL it locks the server row,
                // so a delete that starts meanwhile waits for this commit and
                // then finds the attachment (or this one sees `deleting`).
                let r = sqlx::query(&format!(
                    "UPDATE servers SET updated_at = updated_at WHERE id = $1 AND deleted = FALSE AND (task_state IS NULL OR task_state <> {deleting})",
                    deleting = crate::sql::lit(stratus_types::TaskState::Deleting)
                ))
                .bind(a.server_id)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    return Err(DbError::conflict(RowKind::Server, format!("server {} is being deleted", a.server_id)));
                }
            }
            let (n, gb): (i64, f64) = sqlx::query_as(&format!(
                "SELECT COUNT(*), {} FROM volumes WHERE project_id = $1 AND deleted = FALSE",
                dbk::total("size_gb")
            ))
            .bind(&v.project_id)
            .fetch_one(&mut *tx)
            .await?;
            let gb = crate::servers::saturating_total(gb)
                .saturating_add(dbk::snapshot_gigabytes(&mut tx, &v.project_id, None).await?);
            let (tn, tgb): (i64, f64) = if type_volumes >= 0 || type_gigabytes >= 0 {
                sqlx::query_as(&format!(
                    "SELECT COUNT(*), {} FROM volumes WHERE project_id = $1 AND deleted = FALSE AND volume_type_id = $2",
                    dbk::total("size_gb")
                ))
                .bind(&v.project_id)
                .bind(&v.volume_type_id)
                .fetch_one(&mut *tx)
                .await?
            } else {
                (0, 0.0)
            };
            let tgb = if type_gigabytes >= 0 {
                crate::servers::saturating_total(tgb)
                    .saturating_add(dbk::snapshot_gigabytes(&mut tx, &v.project_id, v.volume_type_id.as_deref()).await?)
            } else {
                crate::servers::saturating_total(tgb)
            };
            let mut ex = crate::QuotaExceeded { overs: vec![], requested: vec![], used: vec![], allowed: vec![] };
            for (name, req, used, lim) in [
                ("volumes", 1, n, max_volumes),
                ("gigabytes", v.size_gb, gb, max_gigabytes),
                ("volumes_type", 1, tn, type_volumes),
                ("gigabytes_type", v.size_gb, tgb, type_gigabytes),
            ] {
                if crate::exceeds(used, req, lim) {
                    ex.overs.push(name);
                    ex.requested.push(req);
                    ex.used.push(used);
                    ex.allowed.push(lim);
                }
            }
            if !ex.overs.is_empty() {
                return Err(DbError::QuotaExceeded(ex));
            }
            // Writers run one at a time: a type deleted before this point is
            // gone, and one deleted after it sees this volume (in use).
            if let Some(t) = &v.volume_type_id {
                let found: Option<(String,)> = sqlx::query_as("SELECT id FROM volume_types WHERE id = $1")
                    .bind(t)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(DbError::not_found(RowKind::VolumeType, t));
                }
            }
            let row: VolumeRow = sqlx::query_as(&format!("INSERT INTO volumes ({VINSERT}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$15,$14,$14,NULL,FALSE,$16,$17) RETURNING {VCOLS}"))
            .bind(v.id).bind(&v.name).bind(&v.description).bind(&v.project_id).bind(&v.user_id).bind(v.size_gb).bind(v.status.as_str())
            .bind(&v.volume_type_id).bind(&v.availability_zone).bind(v.bootable).bind(&v.image_id).bind(&v.backend_name).bind(&v.metadata).bind(&now).bind(&v.group_id).bind(&v.snapshot_id).bind(&v.source_volid)
            .fetch_one(&mut *tx).await?;
            let att = match reserve {
                None => None,
                Some(a) => Some(sqlx::query_as::<_, AttachmentRow>(&format!("INSERT INTO volume_attachments ({ACOLS}, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$11,$8,$9,$10,$10,FALSE) RETURNING {ACOLS}"))
                    .bind(a.id).bind(row.id).bind(a.server_id).bind(&a.host).bind(&a.connector).bind(&a.client_id).bind(&a.mountpoint)
                    .bind(a.delete_on_termination).bind(a.boot_index).bind(&now).bind(AttachStatus::Reserved.as_str())
                    .fetch_one(&mut *tx).await?),
            };
            tx.commit().await?;
            Ok((row, att))
        })
    }

    /// A live volume.
    pub async fn volume_get(&self, id: &VolumeId) -> Result<VolumeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {VCOLS} FROM volumes WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Volume, id))
        })
    }

    /// Live volumes of a project (or all), newest first.
    pub async fn volume_list(&self, project_id: Option<&str>) -> Result<Vec<VolumeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {VCOLS} FROM volumes WHERE deleted = FALSE AND ($1 IS NULL OR project_id = $1) ORDER BY created_at DESC, id"))
            .bind(project_id).fetch_all(rp).await?)
        })
    }

    /// Counted volume usage of a project (`TOTAL()`: no sum is an SQL
    /// overflow error; saturated at `i64::MAX`).
    pub async fn volume_usage(&self, project_id: &str) -> Result<VolumeUsage, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (volumes, gigabytes): (i64, f64) = sqlx::query_as(&format!(
                "SELECT COUNT(*), {} FROM volumes WHERE project_id = $1 AND deleted = FALSE",
                dbk::total("size_gb")
            ))
            .bind(project_id)
            .fetch_one(rp)
            .await?;
            let mut conn = rp.acquire().await?;
            let snaps = dbk::snapshot_gigabytes(&mut conn, project_id, None).await?;
            Ok(VolumeUsage { volumes, gigabytes: crate::servers::saturating_total(gigabytes).saturating_add(snaps) })
        })
    }

    /// Counted usage of a project per volume type: (type name, volumes, GiB).
    pub async fn volume_usage_by_type(&self, project_id: &str) -> Result<Vec<(String, i64, i64)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, i64, f64)> = sqlx::query_as(&format!(
                "SELECT t.name, COUNT(*), {} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id WHERE v.project_id = $1 AND v.deleted = FALSE GROUP BY t.name",
                dbk::total("v.size_gb")
            ))
            .bind(project_id)
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|(t, n, gb)| (t, n, crate::servers::saturating_total(gb))).collect())
        })
    }

    /// A volume's stored image metadata (a JSON object), if ever set.
    pub async fn volume_image_metadata(&self, id: &VolumeId) -> Result<Option<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r: Option<(String,)> =
                sqlx::query_as("SELECT metadata FROM volume_image_metadata WHERE volume_id = $1")
                    .bind(id)
                    .fetch_optional(rp)
                    .await?;
            Ok(r.map(|(m,)| m))
        })
    }

    /// Store a volume's image metadata (a JSON object), replacing it.
    pub async fn volume_image_metadata_set(&self, id: &VolumeId, metadata: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("INSERT INTO volume_image_metadata (volume_id, metadata) VALUES ($1, $2) ON CONFLICT (volume_id) DO UPDATE SET metadata = excluded.metadata")
                    .bind(id)
                    .bind(metadata),
            )
            .await?;
            Ok(())
        })
    }

    /// Compare-and-swap the status: from any of `from` (empty: any) to `to`.
    pub async fn volume_set_status(
        &self,
        id: &VolumeId,
        from: &[VolumeStatus],
        to: VolumeStatus,
    ) -> Result<Cas, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new("UPDATE volumes SET status = ");
            q.push_bind(to.as_str())
                .push(", updated_at = ")
                .push_bind(self.now())
                .push(" WHERE id = ")
                .push_bind(*id)
                .push(" AND deleted = FALSE");
            if !from.is_empty() {
                q.push(" AND status IN (");
                let mut sep = q.separated(", ");
                for f in from {
                    sep.push_bind(f.as_str());
                }
                q.push(")");
            }
            let r = dbk::exec(wp, q.build()).await?;
            if r.rows_affected() == 1 {
                return Ok(Cas::Updated);
            }
            match self.volume_get(id).await {
                Ok(v) if v.status == to => Ok(Cas::AlreadySo),
                Ok(_) | Err(DbError::NotFound { .. }) => Ok(Cas::Conflict),
                Err(e) => Err(e),
            }
        })
    }

    /// The volume now holds `image_id`'s contents (a re-image: Nova 2.93's
    /// rebuild of a volume-backed server); it is bootable from it.
    pub async fn volume_set_image(&self, id: &VolumeId, image_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("UPDATE volumes SET image_id = $2, bootable = TRUE, updated_at = $3 WHERE id = $1 AND deleted = FALSE")
                    .bind(id)
                    .bind(image_id)
                    .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Volume, id));
            }
            Ok(())
        })
    }

    /// Update name, description, size or bootable flag.
    pub async fn volume_update(
        &self,
        id: &VolumeId,
        name: Option<&str>,
        description: Option<&str>,
        size_gb: Option<i64>,
        bootable: Option<bool>,
    ) -> Result<VolumeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(wp, sqlx::query_as(&format!("UPDATE volumes SET name = COALESCE($2, name), description = COALESCE($3, description), size_gb = COALESCE($4, size_gb), bootable = COALESCE($5, bootable), updated_at = $6 WHERE id = $1 AND deleted = FALSE RETURNING {VCOLS}"))
            .bind(id).bind(name).bind(description).bind(size_gb).bind(bootable).bind(self.now())
            ).await?.ok_or_else(|| DbError::not_found(RowKind::Volume, id))
        })
    }

    /// Give an `available` or `in-use` volume another type, if the type
    /// exists and differs from its own; `false` when refused.
    pub async fn volume_retype(&self, id: &VolumeId, type_id: &str) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query("UPDATE volumes SET volume_type_id = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND status IN ($4, $5)
                     AND (volume_type_id IS NULL OR volume_type_id <> $2) AND EXISTS (SELECT 1 FROM volume_types WHERE id = $2)")
                .bind(id).bind(type_id).bind(self.now()).bind(VolumeStatus::Available.as_str()).bind(VolumeStatus::InUse.as_str())).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Mark a volume deleted (its storage is gone). Idempotent.
    pub async fn volume_mark_deleted(&self, id: &VolumeId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::exec(wp, sqlx::query("UPDATE volumes SET status = $3, deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
            .bind(id).bind(&now).bind(VolumeStatus::Deleted.as_str())).await?;
            Ok(())
        })
    }

    /// Reserve a volume for a server: the volume must be `available`
    /// (it becomes `reserved`); returns the new attachment.
    pub async fn attachment_create(&self, a: &AttachmentRow) -> Result<AttachmentRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query(
                "UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(a.volume_id)
            .bind(&now)
            .bind(VolumeStatus::Reserved.as_str())
            .bind(VolumeStatus::Available.as_str())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::conflict(RowKind::Volume, format!("volume {} is not available", a.volume_id)));
            }
            let row: AttachmentRow = sqlx::query_as(&format!("INSERT INTO volume_attachments ({ACOLS}, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$11,$8,$9,$10,$10,FALSE) RETURNING {ACOLS}"))
            .bind(a.id).bind(a.volume_id).bind(a.server_id).bind(&a.host).bind(&a.connector).bind(&a.client_id).bind(&a.mountpoint)
            .bind(a.delete_on_termination).bind(a.boot_index).bind(&now).bind(AttachStatus::Reserved.as_str())
            .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Attach a volume to a shelved-offloaded server (2.20): no host has
    /// the server, so nothing is opened; the attachment is `attached` at
    /// once (with no host nor client) and the volume `in-use`. In one
    /// transaction that first locks the server row while it is offloaded
    /// with no task: an unshelve (which opens every attachment on its new
    /// host) either started before (a conflict here) or sees this one.
    pub async fn attachment_create_offloaded(&self, a: &AttachmentRow) -> Result<AttachmentRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let idle = sqlx::query(&format!(
                "UPDATE servers SET updated_at = updated_at WHERE id = $1 AND deleted = FALSE AND vm_state = {offloaded} AND task_state IS NULL",
                offloaded = crate::sql::lit(stratus_types::VmState::ShelvedOffloaded)
            ))
            .bind(a.server_id)
            .execute(&mut *tx)
            .await?;
            if idle.rows_affected() != 1 {
                return Err(DbError::conflict(
                    RowKind::Server,
                    format!("server {} is no longer shelved offloaded and idle", a.server_id),
                ));
            }
            let r = sqlx::query(
                "UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(a.volume_id)
            .bind(&now)
            .bind(VolumeStatus::InUse.as_str())
            .bind(VolumeStatus::Available.as_str())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::conflict(RowKind::Volume, format!("volume {} is not available", a.volume_id)));
            }
            let row: AttachmentRow = sqlx::query_as(&format!("INSERT INTO volume_attachments ({ACOLS}, updated_at, deleted) VALUES ($1,$2,$3,NULL,NULL,NULL,$4,$8,$5,$6,$7,$7,FALSE) RETURNING {ACOLS}"))
            .bind(a.id).bind(a.volume_id).bind(a.server_id).bind(&a.mountpoint)
            .bind(a.delete_on_termination).bind(a.boot_index).bind(&now).bind(AttachStatus::Attached.as_str())
            .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A live attachment.
    pub async fn attachment_get(&self, id: &AttachmentId) -> Result<AttachmentRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {ACOLS} FROM volume_attachments WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Attachment, id))
        })
    }

    /// The device tag an attachment was made with (compute 2.49), if any.
    pub async fn attachment_tag(&self, id: &AttachmentId) -> Result<Option<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let row: Option<(Option<String>,)> =
                sqlx::query_as("SELECT tag FROM volume_attachments WHERE id = $1").bind(id).fetch_optional(rp).await?;
            Ok(row.and_then(|(t,)| t))
        })
    }

    /// Record an attachment's device tag.
    pub async fn attachment_set_tag(&self, id: &AttachmentId, tag: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query("UPDATE volume_attachments SET tag = $2 WHERE id = $1").bind(id).bind(tag))
                .await?;
            Ok(())
        })
    }

    /// Change whether a live attachment's volume goes with its server
    /// (compute 2.85); `NotFound` if the attachment is gone.
    pub async fn attachment_set_delete_on_termination(&self, id: &AttachmentId, delete: bool) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let q = sqlx::query("UPDATE volume_attachments SET delete_on_termination = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .bind(delete)
                .bind(self.now());
            if dbk::exec(wp, q).await?.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Attachment, id));
            }
            Ok(())
        })
    }

    /// Live attachments of a server (boot volume first).
    pub async fn attachment_list_for_server(&self, server_id: &ServerId) -> Result<Vec<AttachmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {ACOLS} FROM volume_attachments WHERE server_id = $1 AND deleted = FALSE ORDER BY COALESCE(boot_index, 999), created_at"))
            .bind(server_id).fetch_all(rp).await?)
        })
    }

    /// Live attachments of a volume.
    pub async fn attachment_list_for_volume(&self, volume_id: &VolumeId) -> Result<Vec<AttachmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {ACOLS} FROM volume_attachments WHERE volume_id = $1 AND deleted = FALSE ORDER BY created_at"
            ))
            .bind(volume_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Live attachments of these servers (list views).
    pub async fn attachment_list_for_servers(&self, ids: &[ServerId]) -> Result<Vec<AttachmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new(format!(
                "SELECT {ACOLS} FROM volume_attachments WHERE deleted = FALSE AND server_id IN ("
            ));
            let mut sep = q.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            q.push(") ORDER BY COALESCE(boot_index, 999), created_at");
            Ok(q.build_query_as().fetch_all(rp).await?)
        })
    }

    /// All live attachments (audit).
    pub async fn attachment_list_all(&self) -> Result<Vec<AttachmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {ACOLS} FROM volume_attachments WHERE deleted = FALSE ORDER BY created_at"
            ))
            .fetch_all(rp)
            .await?)
        })
    }

    /// Record the host's connector and opened client: the attachment goes
    /// `attaching` (volume `attaching`).
    pub async fn attachment_update(
        &self,
        id: &AttachmentId,
        host: Option<&str>,
        connector: Option<&str>,
        client_id: Option<&str>,
        mountpoint: Option<&str>,
    ) -> Result<AttachmentRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let row: AttachmentRow = sqlx::query_as(&format!("UPDATE volume_attachments SET host = COALESCE($2, host), connector = COALESCE($3, connector), client_id = COALESCE($4, client_id), mountpoint = COALESCE($5, mountpoint), status = $8, updated_at = $6 WHERE id = $1 AND deleted = FALSE AND status IN ($7,$8) RETURNING {ACOLS}"))
            .bind(id).bind(host).bind(connector).bind(client_id).bind(mountpoint).bind(&now)
            .bind(AttachStatus::Reserved.as_str()).bind(AttachStatus::Attaching.as_str())
            .fetch_optional(&mut *tx).await?.ok_or_else(|| DbError::conflict(RowKind::Attachment, format!("attachment {id} cannot be updated in its state")))?;
            sqlx::query("UPDATE volumes SET status = $4, updated_at = $2 WHERE id = $1 AND status IN ($3,$4)")
                .bind(row.volume_id)
                .bind(&now)
                .bind(VolumeStatus::Reserved.as_str())
                .bind(VolumeStatus::Attaching.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Record that an attachment's server moved to `host`, where client
    /// `client_id` now holds the volume (resize, migration, unshelve,
    /// evacuation). Allowed while attached or fenced (an evacuated server's
    /// old client was fenced first), and while an attach is still pending
    /// (its operation then finds the volume opened here and closes its own
    /// open); the attachment is attached again, the volume `in-use`.
    pub async fn attachment_rehome(
        &self,
        id: &AttachmentId,
        host: &str,
        connector: &str,
        client_id: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET host = $2, connector = $3, client_id = $4, status = $5, updated_at = $6 WHERE id = $1 AND deleted = FALSE AND status IN ($5,$7,$8,$9) RETURNING volume_id")
            .bind(id).bind(host).bind(connector).bind(client_id)
            .bind(AttachStatus::Attached.as_str()).bind(&now).bind(AttachStatus::Fenced.as_str())
            .bind(AttachStatus::Reserved.as_str()).bind(AttachStatus::Attaching.as_str())
            .fetch_optional(&mut *tx).await?;
            let Some((vol,)) = row else {
                return Err(DbError::conflict(
                    RowKind::Attachment,
                    format!("attachment {id} cannot move in its state"),
                ));
            };
            // An attach still pending when the move began is now open here.
            sqlx::query("UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status IN ($4,$5)")
                .bind(vol)
                .bind(&now)
                .bind(VolumeStatus::InUse.as_str())
                .bind(VolumeStatus::Reserved.as_str())
                .bind(VolumeStatus::Attaching.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Record that `host` opened the volume of attachment `id` as storage
    /// client `client_id` (attach, or boot from volume), but only if that
    /// is still where it belongs: the attachment is still pending (not
    /// opened elsewhere by a move, not gone) and its server is still on
    /// `host` with no task that moves volumes ([`TaskState::VOLUMES_STAY`]). One
    /// transaction that writes the server row, so a move or delete starting
    /// at the same time either waits for this commit (and then moves the
    /// attachment it finds attached) or makes this one [`OpenRecord::Stale`].
    /// On success the attachment is `attached` and the volume `in-use`.
    pub async fn attachment_record_open(
        &self,
        id: &AttachmentId,
        server_id: &ServerId,
        host: &str,
        connector: &str,
        client_id: &str,
    ) -> Result<OpenRecord, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let quiet = crate::sql::list(TaskState::VOLUMES_STAY);
            let here = sqlx::query(&format!("UPDATE servers SET updated_at = updated_at WHERE id = $1 AND host = $2 AND deleted = FALSE AND (task_state IS NULL OR task_state IN ({quiet}))"))
                .bind(server_id)
                .bind(host)
                .execute(&mut *tx)
                .await?;
            if here.rows_affected() == 0 {
                return Ok(OpenRecord::Stale);
            }
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET host = $2, connector = $3, client_id = $4, status = $5, updated_at = $6 WHERE id = $1 AND server_id = $9 AND deleted = FALSE AND status IN ($7,$8) RETURNING volume_id")
                .bind(id).bind(host).bind(connector).bind(client_id)
                .bind(AttachStatus::Attached.as_str()).bind(&now)
                .bind(AttachStatus::Reserved.as_str()).bind(AttachStatus::Attaching.as_str())
                .bind(server_id)
                .fetch_optional(&mut *tx).await?;
            let Some((vol,)) = row else {
                return Ok(OpenRecord::Stale);
            };
            sqlx::query("UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                .bind(vol)
                .bind(&now)
                .bind(VolumeStatus::InUse.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(OpenRecord::Recorded)
        })
    }

    /// Drop an attachment whose attach failed, unless a move opened it
    /// meanwhile (then it is the server's, attached where the server is).
    /// The volume becomes `available` once it has no other attachment.
    pub async fn attachment_delete_unopened(&self, id: &AttachmentId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET deleted = TRUE, status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status IN ($4,$5) RETURNING volume_id")
            .bind(id).bind(&now).bind(AttachStatus::Detached.as_str())
            .bind(AttachStatus::Reserved.as_str()).bind(AttachStatus::Attaching.as_str())
            .fetch_optional(&mut *tx).await?;
            if let Some((vol,)) = row {
                dbk::volume_free_if_unattached(&mut tx, &vol, &now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The host finished attaching: attachment `attached`, volume `in-use`.
    pub async fn attachment_complete(&self, id: &AttachmentId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET status = $5, updated_at = $2 WHERE id = $1 AND deleted = FALSE AND status IN ($3,$4,$5) RETURNING volume_id")
            .bind(id).bind(&now).bind(AttachStatus::Reserved.as_str()).bind(AttachStatus::Attaching.as_str()).bind(AttachStatus::Attached.as_str()).fetch_optional(&mut *tx).await?;
            let Some((vol,)) = row else {
                return Err(DbError::conflict(
                    RowKind::Attachment,
                    format!("attachment {id} cannot be completed in its state"),
                ));
            };
            sqlx::query("UPDATE volumes SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                .bind(vol)
                .bind(&now)
                .bind(VolumeStatus::InUse.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Mark an attachment's client fenced (its storage client can no longer write).
    pub async fn attachment_mark_fenced(&self, id: &AttachmentId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE volume_attachments SET status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE",
                )
                .bind(id)
                .bind(self.now())
                .bind(AttachStatus::Fenced.as_str()),
            )
            .await?;
            Ok(())
        })
    }

    /// Remove an attachment; the volume becomes `available` once it has no
    /// other live attachment (unless it is being deleted, still being
    /// built, or in `error`). Idempotent.
    pub async fn attachment_delete(&self, id: &AttachmentId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET deleted = TRUE, status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE RETURNING volume_id")
            .bind(id).bind(&now).bind(AttachStatus::Detached.as_str()).fetch_optional(&mut *tx).await?;
            if let Some((vol,)) = row {
                dbk::volume_free_if_unattached(&mut tx, &vol, &now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Remove an attachment after its host closed the volume, but only if
    /// the volume is still where that close happened: on `host`, held by
    /// `client`, and its server is not moving (no task in progress). A move
    /// (evacuation, resize, unshelve) that started meanwhile opens the volume
    /// elsewhere; releasing it then would show `available` a volume another
    /// host still writes to. Checked in one transaction that writes the
    /// server row, so on PostgreSQL a move starting meanwhile waits for this
    /// commit (and then no longer finds the attachment) or this one sees its
    /// task. An attachment already gone counts as released.
    pub async fn attachment_release(
        &self,
        id: &AttachmentId,
        server_id: &ServerId,
        host: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Release, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let idle = sqlx::query("UPDATE servers SET updated_at = updated_at WHERE id = $1 AND task_state IS NULL")
                .bind(server_id)
                .execute(&mut *tx)
                .await?;
            let exists: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT status, host, client_id FROM volume_attachments WHERE id = $1 AND deleted = FALSE",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((_, at_host, at_client)) = exists else {
                return Ok(Release::Released);
            };
            if idle.rows_affected() == 0 || at_host.as_deref() != host || at_client.as_deref() != client_id {
                return Ok(Release::Moved);
            }
            let row: Option<(VolumeId,)> = sqlx::query_as("UPDATE volume_attachments SET deleted = TRUE, status = $3, updated_at = $2 WHERE id = $1 AND deleted = FALSE RETURNING volume_id")
                .bind(id).bind(&now).bind(AttachStatus::Detached.as_str()).fetch_optional(&mut *tx).await?;
            if let Some((vol,)) = row {
                dbk::volume_free_if_unattached(&mut tx, &vol, &now).await?;
            }
            tx.commit().await?;
            Ok(Release::Released)
        })
    }

    /// Queue a storage cleanup (idempotent per kind, volume and client).
    pub async fn cleanup_enqueue(
        &self,
        kind: CleanupKind,
        volume_id: Option<&VolumeId>,
        backend_name: Option<&str>,
        client_id: Option<&str>,
        host: Option<&str>,
        reason: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::exec(wp, sqlx::query("INSERT INTO storage_cleanup (kind, volume_id, backend_name, client_id, host, reason, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7) ON CONFLICT DO NOTHING")
            .bind(kind.as_str()).bind(volume_id).bind(backend_name).bind(client_id).bind(host).bind(reason).bind(&now)
            ).await?;
            Ok(())
        })
    }

    /// Queue the lifting of a fence once `host` has confirmed `server_id`'s VM gone.
    pub async fn cleanup_enqueue_unfence(
        &self,
        server_id: &ServerId,
        host: &str,
        epoch: i64,
        volume_id: &VolumeId,
        backend_name: &str,
        client_id: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::exec(wp, sqlx::query("INSERT INTO storage_cleanup (kind, volume_id, backend_name, client_id, host, server_id, epoch, clients_seq, reason, created_at, updated_at) VALUES ($8,$1,$2,$3,$4,$5,$6,COALESCE((SELECT seq FROM host_storage_clients WHERE host = $4), 0),'fenced during a local delete',$7,$7) ON CONFLICT DO NOTHING")
            .bind(volume_id).bind(backend_name).bind(client_id).bind(host).bind(server_id).bind(epoch).bind(&now).bind(CleanupKind::Unfence.as_str())
            ).await?;
            Ok(())
        })
    }

    /// Storage clients whose fence lift is done and none is pending: what
    /// must no longer be fenced (the audit checks the backend agrees).
    pub async fn cleanup_lifted_clients(&self) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let unfence = crate::sql::lit(CleanupKind::Unfence.as_str());
            let rows: Vec<(String,)> = sqlx::query_as(&format!(
                "SELECT DISTINCT client_id FROM storage_cleanup WHERE kind = {unfence} AND done = TRUE AND client_id IS NOT NULL
                 AND client_id NOT IN (SELECT client_id FROM storage_cleanup WHERE kind = {unfence} AND done = FALSE AND client_id IS NOT NULL)"
            ))
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|(c,)| c).collect())
        })
    }

    /// Pending cleanups, oldest first.
    pub async fn cleanup_pending(&self) -> Result<Vec<CleanupRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {CCOLS} FROM storage_cleanup WHERE done = FALSE ORDER BY id"))
                .fetch_all(rp)
                .await?)
        })
    }

    /// Close a cleanup.
    pub async fn cleanup_done(&self, id: i64) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("UPDATE storage_cleanup SET done = TRUE, updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }

    /// Record a failed attempt (the next pass retries).
    pub async fn cleanup_failed(&self, id: i64, error: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query(
                "UPDATE storage_cleanup SET attempts = attempts + 1, last_error = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(self.now())
            )
            .await?;
            Ok(())
        })
    }
}

impl Datastore {
    /// Replace a volume's metadata (`PUT /volumes/{id}` with `metadata`);
    /// `volume_update` leaves metadata alone.
    pub async fn volume_set_metadata(&self, id: &VolumeId, metadata: &str) -> Result<VolumeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(wp, sqlx::query_as(&format!(
                "UPDATE volumes SET metadata = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE RETURNING {VCOLS}"
            ))
            .bind(id)
            .bind(metadata)
            .bind(self.now())
            )
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::Volume, id))
        })
    }

    /// Live volumes in one of `statuses` not updated since `updated_before`:
    /// what the volume reconciler retries
    /// (a `creating` or `deleting` left behind by a crash), without scanning
    /// every volume of the cloud each pass.
    pub async fn volume_list_stale(
        &self,
        statuses: &[VolumeStatus],
        updated_before: DateTime<Utc>,
    ) -> Result<Vec<VolumeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            if statuses.is_empty() {
                return Ok(Vec::new());
            }
            let mut q: sqlx::QueryBuilder<dbk::Db> =
                sqlx::QueryBuilder::new(format!("SELECT {VCOLS} FROM volumes WHERE deleted = FALSE AND updated_at < "));
            q.push_bind(crate::ts(updated_before)).push(" AND status IN (");
            let mut sep = q.separated(", ");
            for s in statuses {
                sep.push_bind(s.as_str());
            }
            q.push(") ORDER BY updated_at, id");
            Ok(q.build_query_as().fetch_all(rp).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    /// A fixed volume id per letter, so the test reads as before.
    fn vid(name: &str) -> VolumeId {
        VolumeId(uuid::Uuid::from_u128(u128::from(name.bytes().next().unwrap_or(0))))
    }

    /// A fixed attachment id per number.
    fn aid(n: u128) -> AttachmentId {
        AttachmentId(uuid::Uuid::from_u128(n))
    }

    fn vol(name: &str, size: i64) -> VolumeRow {
        let id = vid(name);
        VolumeRow {
            group_id: None,
            id,
            name: Some(name.into()),
            description: None,
            project_id: "p".into(),
            user_id: "u".into(),
            size_gb: size,
            status: VolumeStatus::Available,
            volume_type_id: Some(crate::DEFAULT_VOLUME_TYPE_ID.into()),
            volume_type: None,
            availability_zone: "nova".into(),
            bootable: false,
            image_id: None,
            backend_name: format!("volume-{id}"),
            metadata: "{}".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
            deleted_at: None,
            deleted: false,
            snapshot_id: None,
            source_volid: None,
        }
    }

    /// Quota sums never overflow: a size that would wrap `used + requested`
    /// is over quota, and usage of a project holding rows whose sizes sum
    /// past `i64::MAX` (written before sizes were bounded) is saturated,
    /// not an SQL error (every create and limits call answered 500).
    #[tokio::test]
    async fn quota_arithmetic_never_overflows() {
        let (ds, _d) = store().await;
        ds.volume_create(&vol("a", 1), 10, 1000).await.expect("a");
        assert!(
            matches!(ds.volume_create(&vol("b", i64::MAX), 10, 1000).await, Err(DbError::QuotaExceeded(_))),
            "1 + i64::MAX must not wrap below the quota"
        );
        ds.volume_create(&vol("c", i64::MAX), -1, -1).await.expect("unlimited, as rows from before the bound");
        assert_eq!(ds.volume_usage("p").await.expect("usage"), VolumeUsage { volumes: 2, gigabytes: i64::MAX });
        assert!(matches!(ds.volume_create(&vol("d", 1), 10, 1000).await, Err(DbError::QuotaExceeded(_))));
        ds.volume_create(&vol("e", 1), -1, -1).await.expect("unlimited quota still creates");
    }

    /// A volume names its type by id and shows the type's current name; a
    /// type a live volume uses cannot be deleted (Cinder's VolumeTypeInUse),
    /// and a volume cannot be recorded with a type that is gone.
    #[tokio::test]
    async fn volume_type_by_id_name_by_join() {
        let (ds, _d) = store().await;
        let t = crate::VolumeTypeRow {
            id: "33333333-3333-4333-8333-333333333333".into(),
            name: "gold".into(),
            description: None,
            is_public: true,
        };
        ds.volume_type_create(&t, &crate::ExtraSpecs::new()).await.expect("type");
        let v = ds
            .volume_create(&VolumeRow { volume_type_id: Some(t.id.clone()), ..vol("a", 1) }, -1, -1)
            .await
            .expect("a");
        assert_eq!((v.volume_type_id.as_deref(), v.volume_type.as_deref()), (Some(t.id.as_str()), Some("gold")));
        ds.volume_type_update(&t.id, Some("silver"), None, None).await.expect("rename");
        assert_eq!(ds.volume_get(&vid("a")).await.expect("a").volume_type.as_deref(), Some("silver"));
        assert!(ds.volume_type_in_use(&t.id).await.expect("in use"));
        assert!(matches!(ds.volume_type_delete(&t.id).await, Err(DbError::Conflict { .. })));
        ds.volume_mark_deleted(&vid("a")).await.expect("delete volume");
        ds.volume_type_delete(&t.id).await.expect("no live volume uses it");
        assert!(matches!(
            ds.volume_create(&VolumeRow { volume_type_id: Some(t.id.clone()), ..vol("b", 1) }, -1, -1).await,
            Err(DbError::NotFound { kind: RowKind::VolumeType, .. })
        ));
        let d = ds.volume_create(&vol("c", 1), -1, -1).await.expect("default type");
        assert_eq!(d.volume_type.as_deref(), Some("__DEFAULT__"));
        assert!(!ds.volume_retype(&d.id, crate::DEFAULT_VOLUME_TYPE_ID).await.expect("same type"), "must differ");
        assert!(!ds.volume_retype(&d.id, &t.id).await.expect("gone type"), "type must exist");
    }

    /// A transfer holds its volume `awaiting-transfer`; withdrawing frees
    /// it; accepting moves it within the accepting project's quota, once.
    #[tokio::test]
    async fn volume_transfer_offer_withdraw_accept() {
        let (ds, _d) = store().await;
        ds.volume_create(&vol("a", 3), -1, -1).await.expect("a");
        let t = crate::VolumeTransferRow {
            id: "t1".into(),
            volume_id: vid("a"),
            name: None,
            salt: "s".into(),
            crypt_hash: "h".into(),
            source_project_id: "p".into(),
            destination_project_id: None,
            accepted: false,
            no_snapshots: false,
            created_at: crate::SET_ON_INSERT,
        };
        ds.volume_transfer_create(&t).await.expect("offer");
        assert_eq!(ds.volume_get(&vid("a")).await.expect("a").status, VolumeStatus::AwaitingTransfer);
        assert!(matches!(
            ds.volume_transfer_create(&crate::VolumeTransferRow { id: "t2".into(), ..t.clone() }).await,
            Err(DbError::Conflict { .. })
        ));
        assert_eq!(ds.volume_transfer_list(Some("p")).await.expect("list").len(), 1);
        ds.volume_transfer_delete("t1").await.expect("withdraw");
        assert!(matches!(ds.volume_transfer_delete("t1").await, Err(DbError::NotFound { .. })));
        assert_eq!(ds.volume_get(&vid("a")).await.expect("a").status, VolumeStatus::Available);
        ds.volume_transfer_create(&crate::VolumeTransferRow { id: "t3".into(), ..t.clone() }).await.expect("offer");
        let tight = crate::TransferLimits { volumes: -1, gigabytes: 2, type_volumes: -1, type_gigabytes: -1 };
        assert!(matches!(ds.volume_transfer_accept("t3", "q", "u2", &tight).await, Err(DbError::QuotaExceeded(_))));
        let open = crate::TransferLimits { volumes: -1, gigabytes: -1, type_volumes: -1, type_gigabytes: -1 };
        let done = ds.volume_transfer_accept("t3", "q", "u2", &open).await.expect("accept");
        assert!(done.accepted);
        assert_eq!(done.destination_project_id.as_deref(), Some("q"));
        let v = ds.volume_get(&vid("a")).await.expect("a");
        assert_eq!((v.project_id.as_str(), v.user_id.as_str(), v.status), ("q", "u2", VolumeStatus::Available));
        assert_eq!(ds.volume_usage("q").await.expect("usage"), VolumeUsage { volumes: 1, gigabytes: 3 });
        assert_eq!(ds.volume_usage_by_type("q").await.expect("by type"), vec![("__DEFAULT__".to_string(), 1, 3)]);
        let typed = ds.volume_create_typed(&VolumeRow { project_id: "q".into(), ..vol("b", 1) }, -1, -1, (1, -1)).await;
        assert!(matches!(typed, Err(DbError::QuotaExceeded(ref q)) if q.overs == ["volumes_type"]), "{typed:?}");
        assert!(matches!(ds.volume_transfer_accept("t3", "q", "u2", &open).await, Err(DbError::NotFound { .. })));
    }

    #[tokio::test]
    async fn quota_status_machine_and_attachments() {
        let (ds, _d) = store().await;
        ds.volume_create(&vol("a", 5), 2, 8).await.expect("a");
        assert!(
            matches!(ds.volume_create(&vol("b", 5), 2, 8).await, Err(DbError::QuotaExceeded(_))),
            "gigabytes quota"
        );
        ds.volume_create(&vol("b", 3), 2, 8).await.expect("b");
        assert_eq!(ds.volume_usage("p").await.expect("usage"), VolumeUsage { volumes: 2, gigabytes: 8 });
        let att = AttachmentRow {
            id: aid(1),
            volume_id: vid("a"),
            server_id: ServerId::new(),
            host: None,
            connector: None,
            client_id: None,
            mountpoint: None,
            status: AttachStatus::Reserved,
            delete_on_termination: false,
            boot_index: None,
            created_at: crate::SET_ON_INSERT,
        };
        ds.attachment_create(&att).await.expect("reserve");
        assert!(
            matches!(
                ds.attachment_create(&AttachmentRow { id: aid(2), ..att.clone() }).await,
                Err(DbError::Conflict { .. })
            ),
            "not available twice"
        );
        ds.attachment_update(&aid(1), Some("h1"), Some("{}"), Some("local:a:1:x"), Some("/dev/vdb"))
            .await
            .expect("update");
        ds.attachment_complete(&aid(1)).await.expect("complete");
        assert_eq!(ds.volume_get(&vid("a")).await.expect("a").status.as_str(), "in-use");
        assert_eq!(
            ds.volume_set_status(&vid("a"), &[VolumeStatus::Available], VolumeStatus::Deleting).await.expect("cas"),
            Cas::Conflict,
            "in-use cannot be deleted"
        );
        ds.attachment_delete(&aid(1)).await.expect("detach");
        ds.attachment_delete(&aid(1)).await.expect("detach twice");
        assert_eq!(ds.volume_get(&vid("a")).await.expect("a").status.as_str(), "available");
        ds.cleanup_enqueue(CleanupKind::VolumeDelete, Some(&vid("a")), Some("volume-a"), None, None, "busy")
            .await
            .expect("q");
        ds.cleanup_enqueue(CleanupKind::VolumeDelete, Some(&vid("a")), Some("volume-a"), None, None, "busy")
            .await
            .expect("q again");
        let q = ds.cleanup_pending().await.expect("pending");
        assert_eq!(q.len(), 1);
        ds.cleanup_done(q[0].id).await.expect("done");
        assert!(ds.cleanup_pending().await.expect("pending").is_empty());
    }
}
