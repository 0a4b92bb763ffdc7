//! Attachments as Nova drives them through the Cinder API: reserve
//! (`attachment_create`), record the host's connector, complete, delete,
//! and the connection info a host needs to open the volume.

use crate::{AttachMode, AttachStatus, ListFilter, Missing, VolumeError, VolumeService, VolumeStatus, check_write};
use serde_json::{Value, json};
use stratus_auth::AuthContext;
use stratus_db::{AttachmentRow, DbError, VolumeRow};
use stratus_types::{AttachmentId, ServerId, VolumeId};
use tracing::info;

impl VolumeService {
    /// An attachment the caller may see (through its volume), with that volume.
    pub async fn attachment_get_visible(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(AttachmentRow, VolumeRow), VolumeError> {
        let not_found = || VolumeError::not_found(Missing::Attachment, id);
        // Not an attachment id in our spelling: never a row, Cinder's 404.
        let Some(aid) = AttachmentId::parse_canonical(id) else {
            return Err(not_found());
        };
        let a = match self.ds.attachment_get(&aid).await {
            Ok(a) => a,
            Err(DbError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let v = match self.ds.volume_get(&a.volume_id).await {
            Ok(v) => v,
            Err(DbError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&v.project_id) {
            return Err(not_found());
        }
        Ok((a, v))
    }

    /// An attachment the caller may see (else 404) and change (else 403
    /// naming `volume:{action}`): what the HTTP layer checks before it reads
    /// a request body, so neither answer hides behind a 400 about the body.
    pub async fn attachment_get_writable(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: &str,
    ) -> Result<(AttachmentRow, VolumeRow), VolumeError> {
        let found = self.attachment_get_visible(ctx, id).await?;
        check_write(ctx, action)?;
        Ok(found)
    }

    /// Attachments of the volumes the caller may list.
    pub async fn attachment_list(
        &self,
        ctx: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<(AttachmentRow, VolumeRow)>, VolumeError> {
        let vols = self.list(ctx, &ListFilter { all_projects, ..Default::default() }).await?;
        let mut out = Vec::new();
        for v in vols {
            for a in self.ds.attachment_list_for_volume(&v.id).await? {
                out.push((a, v.clone()));
            }
        }
        Ok(out)
    }

    /// Reserve an `available` volume for a server (Nova's
    /// `attachment_create`): the volume becomes `reserved`, or `attaching`
    /// when the host's connector is given too. Both the volume and the
    /// server must be visible to the caller.
    pub async fn attachment_create(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        instance_uuid: &str,
        connector: Option<&Value>,
    ) -> Result<AttachmentRow, VolumeError> {
        let v = self.get_visible(ctx, volume_id).await?;
        let vid: VolumeId = v.id;
        check_write(ctx, "attachment_create")?;
        // Cinder tests the connector for truth: `{}` is no connector.
        let connector = connector.filter(|c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty()));
        let Ok(server_id) = instance_uuid.parse::<ServerId>() else {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input for field/attribute instance_uuid. Value: {instance_uuid}. '{instance_uuid}' is not a 'uuid'"
            )));
        };
        // The server must be one the caller may see (Nova checks the
        // instance on its side; here the attachments API is called
        // directly): another project's server, or none, is a 404, so a
        // member can neither attach to nor probe other projects' servers.
        let instance_missing = || VolumeError::not_found(Missing::Instance, instance_uuid);
        match self.ds.server_get(&server_id).await {
            Ok(s) if ctx.can_see(&s.project_id) => {}
            Ok(_) | Err(DbError::NotFound { .. }) => return Err(instance_missing()),
            Err(e) => return Err(e.into()),
        }
        let not_available = |status: &str| {
            VolumeError::BadRequest(format!(
                "Invalid volume: Volume {volume_id} status must be available or downloading to reserve, but the current status is {status}."
            ))
        };
        if v.status != VolumeStatus::Available {
            return Err(not_available(v.status.as_str()));
        }
        if let Some(c) = connector
            && !c.is_object()
        {
            return Err(VolumeError::BadRequest("Invalid input for field/attribute connector.".into()));
        }
        let row = AttachmentRow {
            id: AttachmentId::new(),
            volume_id: vid,
            server_id,
            host: None,
            connector: None,
            client_id: None,
            mountpoint: None,
            status: AttachStatus::Reserved,
            delete_on_termination: false,
            boot_index: None,
            created_at: stratus_db::SET_ON_INSERT,
        };
        let a = match self.ds.attachment_create(&row).await {
            Ok(a) => a,
            Err(DbError::Conflict { .. }) => {
                let cur = self.ds.volume_get(&vid).await?;
                return Err(not_available(cur.status.as_str()));
            }
            Err(e) => return Err(e.into()),
        };
        info!(volume = volume_id, attachment = %a.id, server = instance_uuid, "volume reserved");
        match connector {
            Some(c) => self.apply_connector(&a.id, c).await,
            None => Ok(a),
        }
    }

    async fn apply_connector(&self, id: &AttachmentId, c: &Value) -> Result<AttachmentRow, VolumeError> {
        let host = c.get("host").and_then(Value::as_str);
        let mountpoint = c.get("mountpoint").and_then(Value::as_str);
        match self.ds.attachment_update(id, host, Some(&c.to_string()), None, mountpoint).await {
            Ok(a) => Ok(a),
            Err(DbError::Conflict { detail, .. }) => Err(VolumeError::BadRequest(format!("Invalid volume: {detail}."))),
            Err(e) => Err(e.into()),
        }
    }

    /// Record the host's connector (Nova's `attachment_update`): the
    /// attachment and the volume go `attaching`; the answer carries the
    /// connection info the host needs.
    pub async fn attachment_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        connector: &Value,
    ) -> Result<AttachmentRow, VolumeError> {
        let aid = self.attachment_get_visible(ctx, id).await?.0.id;
        check_write(ctx, "attachment_update")?;
        if !connector.is_object() {
            return Err(VolumeError::BadRequest("Invalid input for field/attribute connector.".into()));
        }
        let a = self.apply_connector(&aid, connector).await?;
        info!(attachment = id, host = ?a.host, "attachment connector recorded");
        Ok(a)
    }

    /// The host finished attaching (Nova's `attachment_complete`): the
    /// attachment is `attached`, the volume `in-use`.
    pub async fn attachment_complete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        let aid = self.attachment_get_visible(ctx, id).await?.0.id;
        check_write(ctx, "attachment_complete")?;
        match self.ds.attachment_complete(&aid).await {
            Ok(()) => {
                info!(attachment = id, "attachment complete");
                Ok(())
            }
            Err(DbError::Conflict { detail, .. }) => Err(VolumeError::BadRequest(format!("Invalid volume: {detail}."))),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove an attachment (Nova's `attachment_delete`, after the host
    /// disconnected): the volume is `available` once it has no other.
    pub async fn attachment_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        let aid = self.attachment_get_visible(ctx, id).await?.0.id;
        check_write(ctx, "attachment_delete")?;
        self.ds.attachment_delete(&aid).await?;
        info!(attachment = id, "attachment deleted");
        Ok(())
    }

    /// Cinder's `connection_info` of an attachment: `null` until the host's
    /// connector is known, then what the host needs to open the volume.
    pub fn connection_info(&self, a: &AttachmentRow, v: &VolumeRow) -> Value {
        if a.connector.is_none() {
            return Value::Null;
        }
        let kind = self.backend.kind();
        let name = match (kind, &self.cfg.rbd_pool) {
            ("rbd", Some(pool)) => format!("{pool}/{}", v.backend_name),
            _ => v.backend_name.clone(),
        };
        json!({
            "driver_volume_type": kind,
            "data": {
                "name": name,
                "volume_id": v.id,
                "attachment_id": a.id,
                "access_mode": AttachMode::ReadWrite.as_str(),
                "encrypted": false,
                "discard": true,
            }
        })
    }
}
