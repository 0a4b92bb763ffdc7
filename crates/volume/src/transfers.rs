//! Volume transfers as Cinder does them: the owner of an `available`
//! volume offers it (the volume is `awaiting-transfer`) and receives an
//! auth key once; anyone in another project who presents the transfer id
//! and the key takes the volume, and with it the volume's quota usage
//! (usage is counted, so it moves with the owner). Only a salted hash of
//! the key is stored.

use crate::{Missing, VolumeError, VolumeService, check_text, check_write};
use stratus_auth::AuthContext;
use stratus_db::{DbError, RowKind, TransferLimits, VolumeQuotaLayer, VolumeTransferRow};
use stratus_types::VolumeStatus;
use tracing::info;

/// Length of the auth key handed out (Cinder's `volume_transfer_key_length`).
const AUTH_KEY_LEN: usize = 16;

/// A new transfer as the caller sees it once: the row and the auth key.
#[derive(Clone, Debug)]
pub struct NewTransfer {
    /// The recorded transfer.
    pub transfer: VolumeTransferRow,
    /// The auth key (not stored; shown only in the create answer).
    pub auth_key: String,
}

fn key_hash(salt: &str, key: &str) -> String {
    stratus_auth::token_hash(&format!("{salt}{key}"))
}

fn transfer_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::Transfer, id)
}

impl VolumeService {
    /// `POST /os-volume-transfer`: offer one of the caller's `available`
    /// volumes (Cinder's 400 otherwise).
    pub async fn transfer_create(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: Option<String>,
        no_snapshots: bool,
    ) -> Result<NewTransfer, VolumeError> {
        let v = self.get_visible(ctx, volume_id).await?;
        check_write(ctx, "create_transfer")?;
        check_text("name", name.as_deref())?;
        let refused = || VolumeError::BadRequest("Invalid volume: status must be available".into());
        if v.status != VolumeStatus::Available {
            return Err(refused());
        }
        let auth_key: String = stratus_auth::random_secret().chars().take(AUTH_KEY_LEN).collect();
        let salt: String = stratus_auth::random_secret().chars().take(AUTH_KEY_LEN).collect();
        let row = VolumeTransferRow {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: v.id,
            name,
            crypt_hash: key_hash(&salt, &auth_key),
            salt,
            source_project_id: v.project_id.clone(),
            destination_project_id: None,
            accepted: false,
            no_snapshots,
            created_at: stratus_db::SET_ON_INSERT,
        };
        let transfer = match self.ds.volume_transfer_create(&row).await {
            Ok(t) => t,
            Err(DbError::Conflict { kind: RowKind::Volume, .. }) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        info!(transfer = %transfer.id, volume = %v.id, project = %v.project_id, "volume transfer created");
        Ok(NewTransfer { transfer, auth_key })
    }

    /// A live transfer the caller may see: its source project's (any for
    /// admins); another project's is 404, like a missing one.
    pub async fn transfer_get(&self, ctx: &AuthContext, id: &str) -> Result<VolumeTransferRow, VolumeError> {
        let t = match self.ds.volume_transfer_get(id).await {
            Ok(t) => t,
            Err(DbError::NotFound { .. }) => return Err(transfer_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&t.source_project_id) {
            return Err(transfer_missing(id));
        }
        Ok(t)
    }

    /// Live transfers of the caller's project (`all_projects`: every
    /// project's, for admins; ignored for others, as Cinder does).
    pub async fn transfer_list(
        &self,
        ctx: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<VolumeTransferRow>, VolumeError> {
        let project = if ctx.is_admin() && all_projects { None } else { Some(ctx.project_id.as_str()) };
        Ok(self.ds.volume_transfer_list(project).await?)
    }

    /// `DELETE /os-volume-transfer/{id}`: withdraw the offer; the volume is
    /// `available` again.
    pub async fn transfer_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        let t = self.transfer_get(ctx, id).await?;
        check_write(ctx, "delete_transfer")?;
        match self.ds.volume_transfer_delete(&t.id).await {
            Ok(()) => {}
            Err(DbError::NotFound { .. }) => return Err(transfer_missing(id)),
            Err(e) => return Err(e.into()),
        }
        info!(transfer = id, volume = %t.volume_id, "volume transfer withdrawn");
        Ok(())
    }

    /// `POST /os-volume-transfer/{id}/accept`: with the right auth key the
    /// volume becomes the caller's (Cinder's 400 for a wrong key, 413 when
    /// the caller's project has no room for it).
    pub async fn transfer_accept(
        &self,
        ctx: &AuthContext,
        id: &str,
        auth_key: &str,
    ) -> Result<VolumeTransferRow, VolumeError> {
        check_write(ctx, "accept_transfer")?;
        // Any project may accept: the transfer id and key are the credential.
        let t = match self.ds.volume_transfer_get(id).await {
            Ok(t) => t,
            Err(DbError::NotFound { .. }) => return Err(transfer_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if key_hash(&t.salt, auth_key) != t.crypt_hash {
            return Err(VolumeError::BadRequest(format!(
                "Invalid auth key: Attempt to transfer {id} with invalid auth key."
            )));
        }
        let vol = self.ds.volume_get(&t.volume_id).await?;
        let limits = self.volume_limits(VolumeQuotaLayer::Project(&ctx.project_id)).await?;
        let type_name = vol.volume_type.clone().unwrap_or_default();
        let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
        let typed = self.type_limits(&ctx.project_id, &type_name).await?;
        let l = TransferLimits {
            volumes: limit("volumes"),
            gigabytes: limit("gigabytes"),
            type_volumes: typed.0,
            type_gigabytes: typed.1,
        };
        self.check_per_volume(&ctx.project_id, vol.size_gb).await?;
        let row = match self.ds.volume_transfer_accept(id, &ctx.project_id, &ctx.user_id, &l).await {
            Ok(r) => r,
            Err(DbError::NotFound { .. }) => return Err(transfer_missing(id)),
            Err(DbError::Conflict { kind: RowKind::Volume, .. }) => {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid volume: Volume {} status must be awaiting-transfer.",
                    t.volume_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        info!(transfer = id, volume = %t.volume_id, from = %t.source_project_id, to = %ctx.project_id, "volume transfer accepted");
        Ok(row)
    }
}
