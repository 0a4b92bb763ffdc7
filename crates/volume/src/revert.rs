//! Revert a volume to its latest snapshot (Cinder's `revert`, Block
//! Storage 3.40): the volume must be `available`, the snapshot its latest,
//! `available` and of the volume's size. The volume is `reverting` and the
//! snapshot `restoring` while the backend puts the snapshot's bytes back;
//! both are `available` afterwards, or the volume `error` when the backend
//! failed (Cinder's manager). A backend that finds the volume still held
//! by a storage client changes nothing: both go back to `available`.
//!
//! Crash safety: a backend revert is idempotent, so the reconciler reruns
//! one whose volume stayed `reverting` (its `restoring` snapshot says which
//! one), and releases a `restoring` snapshot whose volume is no longer
//! reverting.

use crate::snapshots::SNAP_AVAILABLE;
use crate::{VolumeError, VolumeService, VolumeStatus, check_write};
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_blockstore::BlockError;
use stratus_db::{Cas, SnapshotRow, VolumeRow};
use tracing::{info, warn};

/// `restoring`: the snapshot a volume is being reverted to.
pub const SNAP_RESTORING: &str = "restoring";

impl VolumeService {
    /// `revert` (3.40): Cinder's checks (403 by policy `volume:revert_to_snapshot`;
    /// 400 without snapshots, for another snapshot than the latest or a
    /// size change; 409 for a volume or snapshot not `available`), then
    /// the backend revert, waited for at most `create_answer_within`.
    pub async fn revert_to_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        snapshot_id: Option<&str>,
    ) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        // Policy before the request's checks, as everywhere in Stratus (the
        // answer to a caller without the right never depends on the body).
        check_write(ctx, "revert_to_snapshot")?;
        let Some(latest) = self.latest_snapshot(&v).await? else {
            return Err(VolumeError::BadRequest(format!("Volume {} doesn't have any snapshots.", v.id)));
        };
        if snapshot_id != Some(latest.id.as_str()) {
            return Err(VolumeError::BadRequest(format!(
                "Specified snapshot {} is None or not the latest one of volume {}.",
                snapshot_id.unwrap_or("None"),
                v.id
            )));
        }
        if v.size_gb != latest.size_gb {
            return Err(VolumeError::BadRequest(format!(
                "Can't revert volume {} to its latest snapshot {}. The volume size must be equal to the snapshot size.",
                v.id, latest.id
            )));
        }
        if self.ds.volume_set_status(&v.id, &[VolumeStatus::Available], VolumeStatus::Reverting).await? != Cas::Updated
        {
            return Err(VolumeError::Conflict(format!(
                "Invalid volume: Can't revert volume {} to its latest snapshot {}. Volume's status must be 'available'.",
                v.id, latest.id
            )));
        }
        if self.ds.snapshot_set_status(&latest.id, &[SNAP_AVAILABLE], SNAP_RESTORING, None).await? != Cas::Updated {
            self.ds.volume_set_status(&v.id, &[VolumeStatus::Reverting], VolumeStatus::Available).await?;
            return Err(VolumeError::Conflict(format!(
                "Invalid snapshot: Can't revert volume {} to its latest snapshot {}. Snapshot's status must be 'available'.",
                v.id, latest.id
            )));
        }
        info!(volume = %v.id, snapshot = %latest.id, by = %ctx.user_id, "volume revert recorded");
        let me = self.clone();
        let run = tokio::spawn(async move { me.revert_run(&v, &latest).await });
        match tokio::time::timeout(self.cfg.create_answer_within, run).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }

    /// The volume's latest snapshot (Cinder: the newest by creation time,
    /// whatever its status).
    async fn latest_snapshot(&self, v: &VolumeRow) -> Result<Option<SnapshotRow>, VolumeError> {
        Ok(self.ds.snapshot_list_for_volume(&v.id).await?.into_iter().max_by_key(|s| s.created_at))
    }

    /// The backend revert of a `reverting` volume to its `restoring`
    /// snapshot, then the statuses. Skipped while another revert of the
    /// volume runs in this process.
    async fn revert_run(&self, v: &VolumeRow, s: &SnapshotRow) -> Result<(), VolumeError> {
        let Some(_claim) = self.claim(&v.id) else {
            return Ok(());
        };
        let r = self.backend.snapshot_revert(&v.backend_name, &s.backend_name).await;
        let to = match &r {
            Ok(()) => VolumeStatus::Available,
            Err(BlockError::Busy { watchers, .. }) => {
                warn!(volume = %v.id, ?watchers, "revert refused: a storage client still holds the volume");
                VolumeStatus::Available
            }
            Err(e) => {
                warn!(volume = %v.id, snapshot = %s.id, error = %e, "volume revert failed");
                VolumeStatus::Error
            }
        };
        if self.ds.volume_set_status(&v.id, &[VolumeStatus::Reverting], to).await? != Cas::Updated {
            warn!(volume = %v.id, to = %to, "volume left `reverting` during its revert; status kept");
        }
        self.ds.snapshot_set_status(&s.id, &[SNAP_RESTORING], SNAP_AVAILABLE, None).await?;
        match r {
            Ok(()) => {
                info!(volume = %v.id, snapshot = %s.id, "volume reverted to its snapshot");
                Ok(())
            }
            Err(BlockError::Busy { .. }) => Err(VolumeError::Conflict(format!(
                "Invalid volume: Can't revert volume {} to its latest snapshot {}: the volume is still open by a storage client.",
                v.id, s.id
            ))),
            Err(e) => Err(VolumeError::Backend(e)),
        }
    }

    /// The reconciler's revert step: a stale `reverting` volume has its
    /// revert rerun (to its `restoring` snapshot; none left: `error`), and
    /// a stale `restoring` snapshot whose volume is not reverting is made
    /// `available` again. Returns (finished, failed).
    pub(crate) async fn reconcile_reverts(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<(usize, usize), VolumeError> {
        let (mut done, mut failed) = (0, 0);
        for v in self.ds.volume_list_stale(&[VolumeStatus::Reverting], cutoff).await? {
            if self.is_inflight(&v.id) {
                continue;
            }
            let snap = self.ds.snapshot_list_for_volume(&v.id).await?.into_iter().find(|s| s.status == SNAP_RESTORING);
            match snap {
                Some(s) => {
                    warn!(volume = %v.id, snapshot = %s.id, "rerunning an interrupted volume revert");
                    match self.revert_run(&v, &s).await {
                        Ok(()) => done += 1,
                        Err(_) => failed += 1,
                    }
                }
                None => {
                    warn!(volume = %v.id, "interrupted revert without its snapshot: volume set to error");
                    self.ds.volume_set_status(&v.id, &[VolumeStatus::Reverting], VolumeStatus::Error).await?;
                    failed += 1;
                }
            }
        }
        for s in self.ds.snapshot_list_stale(&[SNAP_RESTORING], cutoff).await? {
            let reverting = match self.ds.volume_get(&s.volume_id).await {
                Ok(v) => v.status == VolumeStatus::Reverting,
                Err(stratus_db::DbError::NotFound { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            if !reverting
                && self.ds.snapshot_set_status(&s.id, &[SNAP_RESTORING], SNAP_AVAILABLE, None).await? == Cas::Updated
            {
                warn!(snapshot = %s.id, "snapshot left `restoring` without a revert: available again");
                done += 1;
            }
        }
        Ok((done, failed))
    }
}
