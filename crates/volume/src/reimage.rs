//! Re-image a volume (Cinder's `os-reimage`, Block Storage 3.68): its
//! storage is rebuilt from an image, as the compute 2.93 rebuild does for a
//! root volume ([`VolumeService::reimage`]). Cinder's rules: policy
//! `volume:reimage` (members); not with more than one attachment (409);
//! the volume `available` or `error`, also `reserved` with
//! `reimage_reserved` (400 otherwise); the image active and fitting the
//! volume (400). The volume is `downloading` meanwhile, then back to its
//! status, or `error` if the rebuild fails. Stratus also refuses a volume
//! with snapshots (the storage is replaced; rbd cannot remove an image that
//! has snapshots), and a volume a storage client still holds is left as it
//! was (409). An interrupted re-image is set `error` by the reconciler (its
//! old contents may be gone).

use crate::{VolumeError, VolumeService, VolumeStatus, check_write};
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_blockstore::BlockError;
use stratus_db::Cas;
use stratus_image::ImageStatus;
use stratus_types::VolumeId;
use tracing::{info, warn};

impl VolumeService {
    /// `os-reimage` (3.68); see the module documentation.
    pub async fn reimage_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        image_id: &str,
        reimage_reserved: bool,
    ) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        check_write(ctx, if v.status == VolumeStatus::Reserved { "reimage_reserved" } else { "reimage" })?;
        if uuid::Uuid::parse_str(image_id).is_err() {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input for field/attribute image_id. Value: {image_id}. '{image_id}' is not a 'uuid'"
            )));
        }
        if self.ds.attachment_list_for_volume(&v.id).await?.len() > 1 {
            return Err(VolumeError::Conflict(
                "Cannot re-image a volume which is attached to more than one server.".into(),
            ));
        }
        let image = self.resolve_image(ctx, image_id).await?;
        if image.status != ImageStatus::Active {
            return Err(VolumeError::BadRequest(format!("Invalid input received: Image {} is not active.", image.id)));
        }
        const GIB: i64 = 1 << 30;
        let need = image.size.map_or(0, |b| b / GIB + i64::from(b % GIB > 0)).max(image.min_disk);
        if need > v.size_gb {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Size of specified image {need}GB is larger than volume size {}GB.",
                v.size_gb
            )));
        }
        if !self.ds.snapshot_list_for_volume(&v.id).await?.is_empty() {
            return Err(VolumeError::BadRequest(format!(
                "Invalid volume: Volume {} has snapshots; re-imaging replaces its storage, delete them first.",
                v.id
            )));
        }
        let allowed: &[VolumeStatus] = if reimage_reserved {
            &[VolumeStatus::Available, VolumeStatus::Error, VolumeStatus::Reserved]
        } else {
            &[VolumeStatus::Available, VolumeStatus::Error]
        };
        let refused = |status: &str| {
            let statuses = if reimage_reserved { "available, error or reserved" } else { "available or error" };
            VolumeError::BadRequest(format!(
                "Invalid volume: Volume {} status must be {statuses}, but current status is {status}.",
                v.id
            ))
        };
        if !allowed.contains(&v.status) {
            return Err(refused(v.status.as_str()));
        }
        if self.ds.volume_set_status(&v.id, &[v.status], VolumeStatus::Downloading).await? != Cas::Updated {
            let cur = self.ds.volume_get(&v.id).await?;
            return Err(refused(cur.status.as_str()));
        }
        info!(volume = %v.id, image = image_id, by = %ctx.user_id, "volume re-image recorded");
        let (me, vid, previous, image) = (self.clone(), v.id, v.status, image.id.to_string());
        let run = tokio::spawn(async move { me.reimage_run(vid, previous, &image).await });
        match tokio::time::timeout(self.cfg.create_answer_within, run).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }

    /// Rebuild a `downloading` volume from the image, then its previous
    /// status (`error` if the rebuild failed; untouched if a storage client
    /// still holds the volume).
    async fn reimage_run(&self, vid: VolumeId, previous: VolumeStatus, image_id: &str) -> Result<(), VolumeError> {
        let Some(_claim) = self.claim(&vid) else {
            return Ok(());
        };
        let r = self.reimage(&vid, image_id).await;
        let to = match &r {
            Ok(()) => previous,
            Err(VolumeError::Backend(BlockError::Busy { .. })) => previous,
            Err(e) => {
                warn!(volume = %vid, error = %e, "volume re-image failed");
                VolumeStatus::Error
            }
        };
        if self.ds.volume_set_status(&vid, &[VolumeStatus::Downloading], to).await? != Cas::Updated {
            warn!(volume = %vid, to = %to, "volume left `downloading` during its re-image; status kept");
        }
        match r {
            Err(VolumeError::Backend(BlockError::Busy { .. })) => Err(VolumeError::Conflict(format!(
                "Invalid volume: Volume {vid} is still open by a storage client; it was not re-imaged."
            ))),
            other => other,
        }
    }

    /// The reconciler's step: a stale `downloading` volume whose re-image
    /// no longer runs becomes `error`. Returns how many.
    pub(crate) async fn reconcile_reimages(&self, cutoff: chrono::DateTime<chrono::Utc>) -> Result<usize, VolumeError> {
        let mut n = 0;
        for v in self.ds.volume_list_stale(&[VolumeStatus::Downloading], cutoff).await? {
            if self.is_inflight(&v.id) {
                continue;
            }
            if self.ds.volume_set_status(&v.id, &[VolumeStatus::Downloading], VolumeStatus::Error).await?
                == Cas::Updated
            {
                warn!(volume = %v.id, "interrupted re-image: volume set to error");
                n += 1;
            }
        }
        Ok(n)
    }
}
