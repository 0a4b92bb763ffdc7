//! Volume snapshots (Cinder's `/snapshots`): a point-in-time copy of one
//! volume. The row is recorded `creating` (quota counted in the same
//! transaction) before the backend copies anything, and marked deleted only
//! after the backend removed the copy, so a crash in between leaves a row in
//! `creating` or `deleting` that the volume reconciler finishes.
//!
//! Quota as Cinder counts it: `snapshots` (and `snapshots_<type>`) count
//! live snapshots; their sizes count in `gigabytes` (and
//! `gigabytes_<type>`) next to the volumes'.

use crate::{Cas, Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::{VolumeId, VolumeStatus};

/// A snapshot row.
#[derive(Clone, Debug, FromRow)]
pub struct SnapshotRow {
    /// Snapshot id (UUID).
    pub id: String,
    /// The volume it copies.
    pub volume_id: VolumeId,
    /// Owning project (the volume's).
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Size GiB (the volume's when taken).
    pub size_gb: i64,
    /// Cinder's snapshot status (`creating`, `available`, `deleting`,
    /// `error`, `error_deleting`, ...).
    pub status: String,
    /// `os-extended-snapshot-attributes:progress` (`0%` .. `100%`).
    pub progress: String,
    /// The volume's type when taken (per-type quota).
    pub volume_type_id: Option<String>,
    /// Metadata JSON.
    pub metadata: String,
    /// Name of the copy in the backend (`snapshot-<id>`).
    pub backend_name: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Updated.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// The group snapshot it was taken as part of (3.14 `group_snapshot_id`).
    pub group_snapshot_id: Option<String>,
}

/// The limits a snapshot create is checked against (-1: unlimited).
#[derive(Clone, Copy, Debug)]
pub struct SnapshotLimits {
    /// `snapshots`.
    pub snapshots: i64,
    /// `gigabytes` (volumes and snapshots together).
    pub gigabytes: i64,
    /// `snapshots_<type>` of the volume's type.
    pub type_snapshots: i64,
    /// `gigabytes_<type>` of the volume's type.
    pub type_gigabytes: i64,
}

const SCOLS: &str = "id, volume_id, project_id, user_id, name, description, size_gb, status, progress, volume_type_id, metadata, backend_name, created_at, updated_at, group_snapshot_id";

crate::per_backend! {
/// GiB of a project's live snapshots (of one volume type when given): what
/// they add to the `gigabytes` quota usage.
pub(crate) async fn snapshot_gigabytes(conn: &mut dbk::Conn, project_id: &str, type_id: Option<&str>) -> Result<i64, DbError> {
    let (gb,): (f64,) = sqlx::query_as(&format!(
        "SELECT {} FROM volume_snapshots WHERE project_id = $1 AND deleted = FALSE AND ($2 IS NULL OR volume_type_id = $2)",
        dbk::total("size_gb")
    ))
    .bind(project_id)
    .bind(type_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(crate::servers::saturating_total(gb))
}
}

impl Datastore {
    /// Record a snapshot `creating` of a volume in one of `volume_statuses`,
    /// within the project's limits, in one transaction: `Conflict` (volume)
    /// when the volume is not in such a status any more, `QuotaExceeded`
    /// (`snapshots`, `gigabytes`, `snapshots_type`, `gigabytes_type`) when
    /// over a limit.
    pub async fn snapshot_create(
        &self,
        s: &SnapshotRow,
        volume_statuses: &[VolumeStatus],
        limits: SnapshotLimits,
    ) -> Result<SnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let status: Option<(String,)> =
                sqlx::query_as("SELECT status FROM volumes WHERE id = $1 AND deleted = FALSE")
                    .bind(s.volume_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((status,)) = status else {
                return Err(DbError::not_found(RowKind::Volume, s.volume_id));
            };
            if !volume_statuses.iter().any(|v| v.as_str() == status) {
                return Err(DbError::conflict(RowKind::Volume, status));
            }
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM volume_snapshots WHERE project_id = $1 AND deleted = FALSE")
                    .bind(&s.project_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let (vgb,): (f64,) = sqlx::query_as(&format!(
                "SELECT {} FROM volumes WHERE project_id = $1 AND deleted = FALSE",
                dbk::total("size_gb")
            ))
            .bind(&s.project_id)
            .fetch_one(&mut *tx)
            .await?;
            let gb = crate::servers::saturating_total(vgb)
                .saturating_add(dbk::snapshot_gigabytes(&mut tx, &s.project_id, None).await?);
            let (tn, tgb) = match &s.volume_type_id {
                Some(t) if limits.type_snapshots >= 0 || limits.type_gigabytes >= 0 => {
                    let (tn,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM volume_snapshots WHERE project_id = $1 AND deleted = FALSE AND volume_type_id = $2",
                    )
                    .bind(&s.project_id)
                    .bind(t)
                    .fetch_one(&mut *tx)
                    .await?;
                    let (tv,): (f64,) = sqlx::query_as(&format!(
                        "SELECT {} FROM volumes WHERE project_id = $1 AND deleted = FALSE AND volume_type_id = $2",
                        dbk::total("size_gb")
                    ))
                    .bind(&s.project_id)
                    .bind(t)
                    .fetch_one(&mut *tx)
                    .await?;
                    let tgb = crate::servers::saturating_total(tv)
                        .saturating_add(dbk::snapshot_gigabytes(&mut tx, &s.project_id, Some(t)).await?);
                    (tn, tgb)
                }
                _ => (0, 0),
            };
            let mut ex = crate::QuotaExceeded { overs: vec![], requested: vec![], used: vec![], allowed: vec![] };
            for (name, req, used, lim) in [
                ("gigabytes", s.size_gb, gb, limits.gigabytes),
                ("snapshots", 1, n, limits.snapshots),
                ("gigabytes_type", s.size_gb, tgb, limits.type_gigabytes),
                ("snapshots_type", 1, tn, limits.type_snapshots),
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
            let row: SnapshotRow = sqlx::query_as(&format!(
                "INSERT INTO volume_snapshots ({SCOLS}, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13,$14,FALSE) RETURNING {SCOLS}"
            ))
            .bind(&s.id).bind(s.volume_id).bind(&s.project_id).bind(&s.user_id).bind(&s.name).bind(&s.description)
            .bind(s.size_gb).bind(&s.status).bind(&s.progress).bind(&s.volume_type_id).bind(&s.metadata)
            .bind(&s.backend_name).bind(&now).bind(&s.group_snapshot_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A live snapshot.
    pub async fn snapshot_get(&self, id: &str) -> Result<SnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {SCOLS} FROM volume_snapshots WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Snapshot, id))
        })
    }

    /// Live snapshots of a project (or all), newest first.
    pub async fn snapshot_list(&self, project_id: Option<&str>) -> Result<Vec<SnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {SCOLS} FROM volume_snapshots WHERE deleted = FALSE AND ($1 IS NULL OR project_id = $1) ORDER BY created_at DESC, id"
            ))
            .bind(project_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Live snapshots of one volume, oldest first.
    pub async fn snapshot_list_for_volume(&self, volume_id: &VolumeId) -> Result<Vec<SnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {SCOLS} FROM volume_snapshots WHERE deleted = FALSE AND volume_id = $1 ORDER BY created_at, id"
            ))
            .bind(volume_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Every live snapshot's backend name (what `stratus audit` compares
    /// with the backend's snapshots).
    pub async fn snapshot_backend_names(&self) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT backend_name FROM volume_snapshots WHERE deleted = FALSE ORDER BY backend_name")
                    .fetch_all(rp)
                    .await?;
            Ok(rows.into_iter().map(|(n,)| n).collect())
        })
    }

    /// Compare-and-swap the status: from any of `from` (empty: any) to `to`;
    /// `progress` is set with it when given.
    pub async fn snapshot_set_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        progress: Option<&str>,
    ) -> Result<Cas, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new("UPDATE volume_snapshots SET status = ");
            q.push_bind(to.to_string()).push(", progress = COALESCE(");
            q.push_bind(progress.map(str::to_string)).push(", progress), updated_at = ");
            q.push_bind(self.now()).push(" WHERE id = ").push_bind(id.to_string()).push(" AND deleted = FALSE");
            if !from.is_empty() {
                q.push(" AND status IN (");
                let mut sep = q.separated(", ");
                for f in from {
                    sep.push_bind(f.to_string());
                }
                q.push(")");
            }
            let r = dbk::exec(wp, q.build()).await?;
            if r.rows_affected() == 1 {
                return Ok(Cas::Updated);
            }
            match self.snapshot_get(id).await {
                Ok(s) if s.status == to => Ok(Cas::AlreadySo),
                Ok(_) | Err(DbError::NotFound { .. }) => Ok(Cas::Conflict),
                Err(e) => Err(e),
            }
        })
    }

    /// Set the progress text only (`os-update_progress`).
    pub async fn snapshot_set_progress(&self, id: &str, progress: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE volume_snapshots SET progress = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE",
                )
                .bind(id)
                .bind(progress)
                .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }

    /// Update name and/or description (absent: left alone).
    pub async fn snapshot_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<SnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(wp, sqlx::query_as(&format!(
                "UPDATE volume_snapshots SET name = COALESCE($2, name), description = COALESCE($3, description), updated_at = $4 WHERE id = $1 AND deleted = FALSE RETURNING {SCOLS}"
            ))
            .bind(id).bind(name).bind(description).bind(self.now()))
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::Snapshot, id))
        })
    }

    /// Replace a snapshot's metadata (a JSON object).
    pub async fn snapshot_set_metadata(&self, id: &str, metadata: &str) -> Result<SnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(wp, sqlx::query_as(&format!(
                "UPDATE volume_snapshots SET metadata = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE RETURNING {SCOLS}"
            ))
            .bind(id).bind(metadata).bind(self.now()))
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::Snapshot, id))
        })
    }

    /// Mark a snapshot deleted (its copy is gone): its quota is released.
    /// Idempotent.
    pub async fn snapshot_mark_deleted(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::exec(
                wp,
                sqlx::query("UPDATE volume_snapshots SET status = 'deleted', deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                    .bind(id)
                    .bind(&now),
            )
            .await?;
            Ok(())
        })
    }

    /// Live snapshots in one of `statuses` not updated since
    /// `updated_before`: what the reconciler finishes after a crash.
    pub async fn snapshot_list_stale(
        &self,
        statuses: &[&str],
        updated_before: DateTime<Utc>,
    ) -> Result<Vec<SnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            if statuses.is_empty() {
                return Ok(Vec::new());
            }
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new(format!(
                "SELECT {SCOLS} FROM volume_snapshots WHERE deleted = FALSE AND updated_at < "
            ));
            q.push_bind(crate::ts(updated_before)).push(" AND status IN (");
            let mut sep = q.separated(", ");
            for s in statuses {
                sep.push_bind(s.to_string());
            }
            q.push(") ORDER BY updated_at, id");
            Ok(q.build_query_as().fetch_all(rp).await?)
        })
    }

    /// Start a volume's delete: compare-and-swap its status from any of
    /// `from` to `deleting`, only if it has no live snapshot (checked in the
    /// same transaction, so a snapshot taken meanwhile is never orphaned).
    /// `Ok(false)` when it has snapshots.
    pub async fn volume_begin_delete(&self, id: &VolumeId, from: &[VolumeStatus]) -> Result<Option<Cas>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM volume_snapshots WHERE volume_id = $1 AND deleted = FALSE")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if n > 0 {
                return Ok(None);
            }
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new("UPDATE volumes SET status = ");
            q.push_bind(VolumeStatus::Deleting.as_str()).push(", updated_at = ").push_bind(self.now());
            q.push(" WHERE id = ").push_bind(*id).push(" AND deleted = FALSE AND status IN (");
            let mut sep = q.separated(", ");
            for f in from {
                sep.push_bind(f.as_str());
            }
            q.push(")");
            let r = q.build().execute(&mut *tx).await?;
            tx.commit().await?;
            if r.rows_affected() == 1 {
                return Ok(Some(Cas::Updated));
            }
            match self.volume_get(id).await {
                Ok(v) if v.status == VolumeStatus::Deleting => Ok(Some(Cas::AlreadySo)),
                Ok(_) | Err(DbError::NotFound { .. }) => Ok(Some(Cas::Conflict)),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    fn snap(id: &str, volume: VolumeId, size: i64) -> SnapshotRow {
        SnapshotRow {
            id: id.into(),
            volume_id: volume,
            project_id: "p".into(),
            user_id: "u".into(),
            name: None,
            description: None,
            size_gb: size,
            status: "creating".into(),
            progress: "0%".into(),
            volume_type_id: None,
            metadata: "{}".into(),
            backend_name: format!("snapshot-{id}"),
            group_snapshot_id: None,
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
        }
    }

    const UNLIMITED: SnapshotLimits =
        SnapshotLimits { snapshots: -1, gigabytes: -1, type_snapshots: -1, type_gigabytes: -1 };

    /// Cinder counts snapshot sizes in the `gigabytes` quota, and a volume
    /// with snapshots cannot be deleted (its delete is refused).
    #[tokio::test]
    async fn snapshots_count_in_gigabytes_and_block_the_volume_delete() {
        let (ds, _db) = store().await;
        let v = VolumeId::new();
        let row = crate::VolumeRow {
            id: v,
            name: None,
            description: None,
            project_id: "p".into(),
            user_id: "u".into(),
            size_gb: 2,
            status: VolumeStatus::Available,
            volume_type_id: Some(crate::DEFAULT_VOLUME_TYPE_ID.into()),
            volume_type: None,
            availability_zone: "nova".into(),
            bootable: false,
            image_id: None,
            backend_name: format!("volume-{v}"),
            metadata: "{}".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
            deleted_at: None,
            deleted: false,
            snapshot_id: None,
            source_volid: None,
            group_id: None,
        };
        ds.volume_create(&row, -1, -1).await.expect("volume");
        let avail = [VolumeStatus::Available];
        ds.snapshot_create(&snap("s1", v, 2), &avail, UNLIMITED).await.expect("created");
        assert_eq!(ds.volume_usage("p").await.expect("usage").gigabytes, 4);
        let over = ds.snapshot_create(&snap("s2", v, 2), &avail, SnapshotLimits { gigabytes: 5, ..UNLIMITED }).await;
        assert!(matches!(over, Err(DbError::QuotaExceeded(q)) if q.overs == vec!["gigabytes"]));
        let over = ds.snapshot_create(&snap("s2", v, 2), &avail, SnapshotLimits { snapshots: 1, ..UNLIMITED }).await;
        assert!(matches!(over, Err(DbError::QuotaExceeded(q)) if q.overs == vec!["snapshots"]));
        assert_eq!(ds.volume_begin_delete(&v, &avail).await.expect("checked"), None);
        ds.snapshot_mark_deleted("s1").await.expect("deleted");
        assert_eq!(ds.volume_usage("p").await.expect("usage").gigabytes, 2);
        assert_eq!(ds.volume_begin_delete(&v, &avail).await.expect("checked"), Some(Cas::Updated));
        // A deleting volume takes no snapshot.
        let late = ds.snapshot_create(&snap("s3", v, 2), &avail, UNLIMITED).await;
        assert!(matches!(late, Err(DbError::Conflict { .. })));
    }
}
