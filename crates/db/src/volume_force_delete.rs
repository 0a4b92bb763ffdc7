//! The compare-and-swap of an admin's forced volume delete (Block Storage
//! 3.23): like [`Datastore::volume_begin_delete`], and only while the
//! volume has no live attachment, checked in the same statement, so an
//! attachment made meanwhile (a host about to open the volume) wins.

use crate::{Cas, Datastore, DbError};
use stratus_types::{VolumeId, VolumeStatus};

impl Datastore {
    /// `from` to `deleting` if the volume has neither a live snapshot nor a
    /// live attachment; `None` when it has snapshots.
    pub async fn volume_begin_force_delete(
        &self,
        id: &VolumeId,
        from: &[VolumeStatus],
    ) -> Result<Option<Cas>, DbError> {
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
            q.push(" WHERE id = ").push_bind(*id).push(" AND deleted = FALSE");
            q.push(" AND NOT EXISTS (SELECT 1 FROM volume_attachments a WHERE a.volume_id = ")
                .push_bind(*id)
                .push(" AND a.deleted = FALSE) AND status IN (");
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
