//! Volume clones (Cinder's `POST /volumes` with `source_volid`): a new
//! volume holding a point-in-time copy of another volume of the same
//! project. The source must be `available` or `in-use` and no larger than
//! the clone; the clone gets the source's size and type unless asked,
//! counts in the quotas like any volume, and is built `creating` →
//! `available` through the backend's snapshot copy path
//! ([`stratus_blockstore::BlockBackend::create_from_volume`]): a full copy
//! with no parent, so either volume may be deleted first. The source
//! cannot be deleted while a clone of it is still being built.

use crate::{Missing, NewVolume, VolumeError, VolumeService, VolumeStatus};
use stratus_auth::AuthContext;
use stratus_blockstore::BlockError;
use stratus_db::{DbError, VolumeRow};

/// Statuses a volume may be cloned from (Cinder's).
const CLONEABLE: &[VolumeStatus] = &[VolumeStatus::Available, VolumeStatus::InUse];

/// The scratch snapshot a clone's copy goes through, fixed per clone so a
/// retried build finds (and removes) what an interrupted one left.
fn scratch_name(clone: &VolumeRow) -> String {
    format!("clone-{}", clone.id)
}

/// Cinder's 400s for a clone's source: its status, and a clone smaller
/// than it.
pub(crate) fn check_source(source: &VolumeRow, size: i64) -> Result<(), VolumeError> {
    if !CLONEABLE.contains(&source.status) {
        return Err(VolumeError::BadRequest(format!(
            "Invalid volume: Volume {} status must be available or in-use to be cloned, but current status is: {}.",
            source.id, source.status
        )));
    }
    if size < source.size_gb {
        return Err(VolumeError::BadRequest(format!(
            "Invalid input received: Volume size '{size}'GB cannot be smaller than original volume size {}GB. They must be >= original volume size.",
            source.size_gb
        )));
    }
    Ok(())
}

impl VolumeService {
    /// The source of a clone request (404 when the caller cannot see it, as
    /// Cinder; another project's volume, even for an admin, is refused:
    /// a clone stays in its source's project), and the request with
    /// Cinder's defaults: the source's size when none is given, its type
    /// when none is asked for.
    pub(crate) async fn clone_defaults(
        &self,
        ctx: &AuthContext,
        req: NewVolume,
    ) -> Result<(NewVolume, Option<VolumeRow>), VolumeError> {
        let Some(src) = req.source_volid.as_deref() else {
            return Ok((req, None));
        };
        let source = self.get_visible(ctx, src).await?;
        if source.project_id != ctx.project_id {
            return Err(VolumeError::not_found(Missing::Volume, src));
        }
        let size = if req.size == 0 { source.size_gb } else { req.size };
        let volume_type = match (&req.volume_type, &source.volume_type_id) {
            (None, Some(t)) => Some(t.clone()),
            (t, _) => t.clone(),
        };
        Ok((NewVolume { size, volume_type, ..req }, Some(source)))
    }

    /// A clone carries its source's image metadata (Cinder copies the
    /// volume's Glance metadata).
    pub(crate) async fn clone_image_metadata(&self, source: &VolumeRow, clone: &VolumeRow) -> Result<(), VolumeError> {
        if let Some(m) = self.ds.volume_image_metadata(&source.id).await? {
            self.ds.volume_image_metadata_set(&clone.id, &m).await?;
        }
        Ok(())
    }

    /// Build a clone's storage from its source's current bytes.
    pub(crate) async fn clone_storage(&self, clone: &VolumeRow, size: u64, source_id: &str) -> Result<(), BlockError> {
        let source = match stratus_types::VolumeId::parse_canonical(source_id) {
            Some(id) => match self.ds.volume_get(&id).await {
                Ok(v) => v,
                Err(DbError::NotFound { .. }) => return Err(BlockError::NotFound(format!("volume {source_id}"))),
                Err(e) => return Err(BlockError::Backend(format!("reading volume {source_id}: {e}"))),
            },
            None => return Err(BlockError::NotFound(format!("volume {source_id}"))),
        };
        self.backend.create_from_volume(&clone.backend_name, size, &source.backend_name, &scratch_name(clone)).await
    }

    /// A volume is not deleted while a clone of it is still being built
    /// (its copy reads the source; Cinder refuses the same way for a
    /// snapshot with a volume being created from it).
    pub(crate) async fn check_no_clone_building(&self, v: &VolumeRow) -> Result<(), VolumeError> {
        let me = v.id.to_string();
        let building = self
            .ds
            .volume_list(Some(&v.project_id))
            .await?
            .into_iter()
            .any(|c| c.source_volid.as_deref() == Some(me.as_str()) && c.status == VolumeStatus::Creating);
        if building {
            return Err(VolumeError::BadRequest(format!(
                "Invalid volume: Volume {me} has a clone being created from it; delete it once the clone is built."
            )));
        }
        Ok(())
    }
}
