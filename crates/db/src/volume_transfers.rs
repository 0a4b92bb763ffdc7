//! Volume transfers (Cinder's `/os-volume-transfer`, `/volume-transfers`):
//! an offer of one volume to another project. Creating one moves the volume
//! `available → awaiting-transfer`; withdrawing it moves it back; accepting
//! it gives the volume (and so its counted quota usage) to the accepting
//! project in one transaction, within that project's limits.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::{VolumeId, VolumeStatus};

/// A transfer row (the auth key itself is never stored: only a salted hash).
#[derive(Clone, Debug, FromRow)]
pub struct VolumeTransferRow {
    /// Transfer id (UUID).
    pub id: String,
    /// The volume offered.
    pub volume_id: VolumeId,
    /// Display name.
    pub name: Option<String>,
    /// Salt of `crypt_hash`.
    pub salt: String,
    /// Hash of the salt and the auth key.
    pub crypt_hash: String,
    /// The project that offered the volume.
    pub source_project_id: String,
    /// The project that accepted it (once accepted).
    pub destination_project_id: Option<String>,
    /// Accepted (the row is then deleted too).
    pub accepted: bool,
    /// Cinder 3.55's flag: transfer without the volume's snapshots.
    pub no_snapshots: bool,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

const XCOLS: &str = "id, volume_id, name, salt, crypt_hash, source_project_id, destination_project_id, accepted, no_snapshots, created_at";

/// The limits a transfer's acceptance is checked against, for the
/// accepting project (-1: unlimited).
#[derive(Clone, Debug)]
pub struct TransferLimits {
    /// `volumes`.
    pub volumes: i64,
    /// `gigabytes`.
    pub gigabytes: i64,
    /// `volumes_<type>` of the volume's type.
    pub type_volumes: i64,
    /// `gigabytes_<type>` of the volume's type.
    pub type_gigabytes: i64,
}

impl Datastore {
    /// Record a transfer of an `available` volume and move the volume to
    /// `awaiting-transfer`, atomically: `Conflict` (volume) when the volume
    /// is not `available` any more.
    pub async fn volume_transfer_create(&self, t: &VolumeTransferRow) -> Result<VolumeTransferRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query(
                "UPDATE volumes SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(t.volume_id)
            .bind(VolumeStatus::AwaitingTransfer.as_str())
            .bind(&now)
            .bind(VolumeStatus::Available.as_str())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::conflict(RowKind::Volume, format!("volume {} is not available", t.volume_id)));
            }
            let row: VolumeTransferRow = sqlx::query_as(&format!("INSERT INTO volume_transfers ({XCOLS}, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,NULL,FALSE,$7,$8,$8,FALSE) RETURNING {XCOLS}"))
                .bind(&t.id).bind(t.volume_id).bind(&t.name).bind(&t.salt).bind(&t.crypt_hash)
                .bind(&t.source_project_id).bind(t.no_snapshots).bind(&now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A live (not accepted, not withdrawn) transfer.
    pub async fn volume_transfer_get(&self, id: &str) -> Result<VolumeTransferRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {XCOLS} FROM volume_transfers WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::VolumeTransfer, id))
        })
    }

    /// Live transfers offered by a project (or by all), newest first.
    pub async fn volume_transfer_list(&self, project_id: Option<&str>) -> Result<Vec<VolumeTransferRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {XCOLS} FROM volume_transfers WHERE deleted = FALSE AND ($1 IS NULL OR source_project_id = $1) ORDER BY created_at DESC, id"))
                .bind(project_id)
                .fetch_all(rp)
                .await?)
        })
    }

    /// Withdraw a transfer: the row goes and its volume is `available`
    /// again (if it still awaits the transfer). `NotFound` if already gone.
    pub async fn volume_transfer_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let vol: Option<(VolumeId,)> = sqlx::query_as(
                "UPDATE volume_transfers SET deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted = FALSE RETURNING volume_id",
            )
            .bind(id)
            .bind(&now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((vol,)) = vol else {
                return Err(DbError::not_found(RowKind::VolumeTransfer, id));
            };
            sqlx::query(
                "UPDATE volumes SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(vol)
            .bind(VolumeStatus::Available.as_str())
            .bind(&now)
            .bind(VolumeStatus::AwaitingTransfer.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Accept a transfer for `project_id`/`user_id`: within the accepting
    /// project's limits (counted in the same transaction; `QuotaExceeded`
    /// otherwise), the volume changes owner and is `available`, and the
    /// transfer is marked accepted. `NotFound` if the transfer is gone,
    /// `Conflict` (volume) if its volume no longer awaits it.
    pub async fn volume_transfer_accept(
        &self,
        id: &str,
        project_id: &str,
        user_id: &str,
        limits: &TransferLimits,
    ) -> Result<VolumeTransferRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let t: VolumeTransferRow =
                sqlx::query_as(&format!("SELECT {XCOLS} FROM volume_transfers WHERE id = $1 AND deleted = FALSE"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| DbError::not_found(RowKind::VolumeTransfer, id))?;
            let vol: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT size_gb, volume_type_id FROM volumes WHERE id = $1 AND deleted = FALSE AND status = $2",
            )
            .bind(t.volume_id)
            .bind(VolumeStatus::AwaitingTransfer.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((size, type_id)) = vol else {
                return Err(DbError::conflict(
                    RowKind::Volume,
                    format!("volume {} is not awaiting a transfer", t.volume_id),
                ));
            };
            let (n, gb): (i64, f64) = sqlx::query_as(&format!(
                "SELECT COUNT(*), {} FROM volumes WHERE project_id = $1 AND deleted = FALSE",
                dbk::total("size_gb")
            ))
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?;
            let (tn, tgb): (i64, f64) = sqlx::query_as(&format!(
                "SELECT COUNT(*), {} FROM volumes WHERE project_id = $1 AND deleted = FALSE AND volume_type_id = $2",
                dbk::total("size_gb")
            ))
            .bind(project_id)
            .bind(&type_id)
            .fetch_one(&mut *tx)
            .await?;
            let (gb, tgb) = (crate::servers::saturating_total(gb), crate::servers::saturating_total(tgb));
            let mut ex = crate::QuotaExceeded { overs: vec![], requested: vec![], used: vec![], allowed: vec![] };
            for (name, req, used, lim) in [
                ("volumes", 1, n, limits.volumes),
                ("gigabytes", size, gb, limits.gigabytes),
                ("volumes", 1, tn, limits.type_volumes),
                ("gigabytes", size, tgb, limits.type_gigabytes),
            ] {
                if crate::exceeds(used, req, lim) && !ex.overs.contains(&name) {
                    ex.overs.push(name);
                    ex.requested.push(req);
                    ex.used.push(used);
                    ex.allowed.push(lim);
                }
            }
            if !ex.overs.is_empty() {
                return Err(DbError::QuotaExceeded(ex));
            }
            sqlx::query("UPDATE volumes SET project_id = $2, user_id = $3, status = $4, updated_at = $5 WHERE id = $1 AND deleted = FALSE")
                .bind(t.volume_id)
                .bind(project_id)
                .bind(user_id)
                .bind(VolumeStatus::Available.as_str())
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            let row: VolumeTransferRow = sqlx::query_as(&format!("UPDATE volume_transfers SET deleted = TRUE, deleted_at = $2, updated_at = $2, accepted = TRUE, destination_project_id = $3 WHERE id = $1 RETURNING {XCOLS}"))
                .bind(id)
                .bind(&now)
                .bind(project_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Withdraw every live transfer of a volume (the volume is being
    /// deleted by an admin or reset): no offer outlives its volume.
    pub async fn volume_transfer_drop_for_volume(&self, volume_id: &VolumeId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("UPDATE volume_transfers SET deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE volume_id = $1 AND deleted = FALSE")
                    .bind(volume_id)
                    .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }
}
