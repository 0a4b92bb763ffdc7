//! Group snapshots (Cinder's `/group_snapshots`, 3.14): one record per
//! snapshot of a whole generic volume group. The storage is held by its
//! member snapshots (ordinary `volume_snapshots` rows naming it in
//! `group_snapshot_id`), each counted in the snapshot quotas as usual; the
//! group snapshot row only ties them together and carries the status.

use crate::{Cas, Datastore, DbError, RowKind, SnapshotRow};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// A group snapshot row.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct GroupSnapshotRow {
    /// Id (UUID).
    pub id: String,
    /// The group it copies.
    pub group_id: String,
    /// Owning project (the group's).
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Cinder's group snapshot status (`creating`, `available`, `deleting`,
    /// `error`, `error_deleting`, ...).
    pub status: String,
    /// The group's type when taken.
    pub group_type_id: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

const GSCOLS: &str = "id, group_id, project_id, user_id, name, description, status, group_type_id, created_at";

/// Columns of `volume_snapshots` as [`SnapshotRow`] reads them.
const SCOLS: &str = "id, volume_id, project_id, user_id, name, description, size_gb, status, progress, volume_type_id, metadata, backend_name, created_at, updated_at, group_snapshot_id";

impl Datastore {
    /// Record a group snapshot.
    pub async fn group_snapshot_create(&self, g: &GroupSnapshotRow) -> Result<GroupSnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "INSERT INTO volume_group_snapshots ({GSCOLS}, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9,FALSE) RETURNING {GSCOLS}"
            ))
            .bind(&g.id)
            .bind(&g.group_id)
            .bind(&g.project_id)
            .bind(&g.user_id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(&g.status)
            .bind(&g.group_type_id)
            .bind(self.now())
            .fetch_one(wp)
            .await?)
        })
    }

    /// A live group snapshot.
    pub async fn group_snapshot_get(&self, id: &str) -> Result<GroupSnapshotRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {GSCOLS} FROM volume_group_snapshots WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::GroupSnapshot, id))
        })
    }

    /// Live group snapshots of a project (or of all), newest first.
    pub async fn group_snapshot_list(&self, project_id: Option<&str>) -> Result<Vec<GroupSnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {GSCOLS} FROM volume_group_snapshots WHERE deleted = FALSE AND ($1 IS NULL OR project_id = $1) ORDER BY created_at DESC, id"
            ))
            .bind(project_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// How many live group snapshots a group has (it cannot be deleted
    /// while it has any).
    pub async fn group_snapshot_count_for_group(&self, group_id: &str) -> Result<i64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM volume_group_snapshots WHERE group_id = $1 AND deleted = FALSE")
                    .bind(group_id)
                    .fetch_one(rp)
                    .await?;
            Ok(n)
        })
    }

    /// Compare-and-swap the status: from any of `from` (empty: any) to `to`.
    pub async fn group_snapshot_set_status(&self, id: &str, from: &[&str], to: &str) -> Result<Cas, DbError> {
        let cur = self.group_snapshot_get(id).await?;
        if !from.is_empty() && !from.contains(&cur.status.as_str()) {
            return Ok(if cur.status == to { Cas::AlreadySo } else { Cas::Conflict });
        }
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query(
                "UPDATE volume_group_snapshots SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(id)
            .bind(to)
            .bind(self.now())
            .bind(&cur.status)
            .execute(wp)
            .await?;
            Ok(if r.rows_affected() == 1 { Cas::Updated } else { Cas::Conflict })
        })
    }

    /// Mark a group snapshot deleted (its member snapshots are gone).
    /// Idempotent.
    pub async fn group_snapshot_mark_deleted(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("UPDATE volume_group_snapshots SET status = 'deleted', deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .bind(self.now())
                .execute(wp)
                .await?;
            Ok(())
        })
    }

    /// Live group snapshots in `status` not updated since `updated_before`:
    /// what the reconciler finishes after a crash.
    pub async fn group_snapshot_list_stale(
        &self,
        status: &str,
        updated_before: DateTime<Utc>,
    ) -> Result<Vec<GroupSnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {GSCOLS} FROM volume_group_snapshots WHERE deleted = FALSE AND status = $1 AND updated_at < $2 ORDER BY created_at, id"
            ))
            .bind(status)
            .bind(crate::ts(updated_before))
            .fetch_all(rp)
            .await?)
        })
    }

    /// The live member snapshots of a group snapshot, oldest first.
    pub async fn group_snapshot_members(&self, id: &str) -> Result<Vec<SnapshotRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {SCOLS} FROM volume_snapshots WHERE group_snapshot_id = $1 AND deleted = FALSE ORDER BY created_at, id"
            ))
            .bind(id)
            .fetch_all(rp)
            .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    fn gs(id: &str, group: &str, project: &str) -> GroupSnapshotRow {
        GroupSnapshotRow {
            id: id.into(),
            group_id: group.into(),
            project_id: project.into(),
            user_id: "u".into(),
            name: Some("n".into()),
            description: None,
            status: "creating".into(),
            group_type_id: "gt".into(),
            created_at: crate::SET_ON_INSERT,
        }
    }

    // Cinder: a group snapshot is listed per project, counted per group
    // (a group with snapshots is not deletable), and gone once deleted.
    #[tokio::test]
    async fn group_snapshot_rows_round_trip() {
        let (ds, _dir) = store().await;
        ds.group_snapshot_create(&gs("gs1", "g1", "p1")).await.expect("create");
        ds.group_snapshot_create(&gs("gs2", "g2", "p2")).await.expect("create");
        assert_eq!(ds.group_snapshot_list(Some("p1")).await.expect("list").len(), 1);
        assert_eq!(ds.group_snapshot_list(None).await.expect("list").len(), 2);
        assert_eq!(ds.group_snapshot_count_for_group("g1").await.expect("count"), 1);
        assert_eq!(ds.group_snapshot_set_status("gs1", &["creating"], "available").await.expect("cas"), Cas::Updated);
        assert_eq!(ds.group_snapshot_set_status("gs1", &["creating"], "error").await.expect("cas"), Cas::Conflict);
        assert_eq!(ds.group_snapshot_get("gs1").await.expect("get").status, "available");
        ds.group_snapshot_mark_deleted("gs1").await.expect("delete");
        assert!(matches!(ds.group_snapshot_get("gs1").await, Err(DbError::NotFound { .. })));
        assert_eq!(ds.group_snapshot_count_for_group("g1").await.expect("count"), 0);
        assert!(ds.group_snapshot_members("gs1").await.expect("members").is_empty());
    }
}
