//! An admin's forced volume delete (`DELETE /volumes/{id}?force=true`,
//! Block Storage 3.23). Cinder's force skips the status check (but not
//! "attached", snapshots or groups). Stratus honours it only where its
//! delete contract still holds: no attachment record (a host may have the
//! volume open; those go through a detach, whose fence cuts a zombie off)
//! and no storage operation of Stratus's own in flight that would write the
//! storage back after its removal (`creating` builds it, `reverting`
//! renames a copy over it, `extending` resizes it) nor a pending transfer
//! (`awaiting-transfer`: delete the transfer first). The removal itself is
//! the ordinary one: a volume a storage client still watches is never
//! removed, its delete is queued until the client is fenced or gone.

use crate::{DELETABLE, DELETE_REFUSED, VolumeError, VolumeService, VolumeStatus};
use stratus_auth::AuthContext;
use stratus_db::Cas;
use tracing::info;

/// The statuses a forced delete accepts: the ordinary ones, plus those
/// that are bookkeeping only once no attachment record is left
/// (`maintenance`, and `in-use`/`reserved`/`attaching`/`detaching` as an
/// admin's status reset or the older attach flow's steps leave them).
pub const FORCE_DELETABLE: &[VolumeStatus] = &[
    VolumeStatus::Available,
    VolumeStatus::Error,
    VolumeStatus::ErrorRestoring,
    VolumeStatus::ErrorExtending,
    VolumeStatus::ErrorManaging,
    VolumeStatus::ErrorDeleting,
    VolumeStatus::Maintenance,
    VolumeStatus::InUse,
    VolumeStatus::Reserved,
    VolumeStatus::Attaching,
    VolumeStatus::Detaching,
];

impl VolumeService {
    /// `DELETE /volumes/{id}?force=true` (3.23): admins only (Cinder's
    /// `volume:force_delete`, 403 otherwise); see the module documentation
    /// for what it accepts. The statuses check and the "no attachment"
    /// check are one compare-and-swap.
    pub async fn delete_forced(&self, ctx: &AuthContext, id: &str, cascade: bool) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        if !ctx.is_admin() {
            return Err(VolumeError::Forbidden { action: "volume:force_delete".into() });
        }
        if v.status == VolumeStatus::Deleting {
            return Ok(());
        }
        // Cinder: a volume in a group goes only with its group, forced or not.
        if v.group_id.is_some() || !FORCE_DELETABLE.contains(&v.status) {
            return Err(VolumeError::BadRequest(DELETE_REFUSED.into()));
        }
        if cascade {
            self.delete_snapshots_of(ctx, &v).await?;
        }
        match self.ds.volume_begin_force_delete(&v.id, FORCE_DELETABLE).await? {
            Some(Cas::Updated) => {}
            Some(Cas::AlreadySo) => return Ok(()),
            Some(Cas::Conflict) | None => return Err(VolumeError::BadRequest(DELETE_REFUSED.into())),
        }
        let ordinary = DELETABLE.contains(&v.status);
        info!(volume = %v.id, from = %v.status, ordinary, by = %ctx.user_id, "forced volume delete recorded");
        self.delete_storage(&v).await.map(|_| ())
    }
}
