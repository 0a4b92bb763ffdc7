//! Volume attachments of a server: list and show (reads), attach and
//! detach (intents carried out by operations).

use super::{ComputeApi, ComputeError, Resource, device_name};
use stratus_auth::AuthContext;
use stratus_db::{AttachmentRow, DbError, NewOperation, OpStart, ServerRow};
use stratus_types::invalid_state_message;
use stratus_types::{AttachmentId, VmState, VolumeId};

/// What later microversions add to a volume attach.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachOptions<'a> {
    /// From 2.20: a shelved-offloaded server takes the attachment (only
    /// recorded; its unshelve opens it on the new host).
    pub offloaded_allowed: bool,
    /// The device tag (2.49, shown from 2.70).
    pub tag: Option<&'a str>,
    /// Delete the volume with the server (2.79).
    pub delete_on_termination: bool,
}

impl ComputeApi {
    /// `GET /servers/{id}/os-volume_attachments`: the server's attachments.
    pub async fn attachment_list(&self, ctx: &AuthContext, id: &str) -> Result<Vec<AttachmentRow>, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        Ok(self.ds.attachment_list_for_server(&s.id).await?)
    }

    /// `GET /servers/{id}/os-volume_attachments/{volume}`: one attachment.
    pub async fn attachment_get(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
    ) -> Result<AttachmentRow, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        // A volume path segment that is not a volume id names no attachment.
        let a = match VolumeId::parse_canonical(volume_id) {
            Some(vid) => self.ds.attachment_list_for_server(&s.id).await?.into_iter().find(|a| a.volume_id == vid),
            None => None,
        };
        a.ok_or_else(|| ComputeError::AttachmentNotFound { server: id.to_string(), volume: volume_id.to_string() })
    }

    /// The server `id` if the caller may attach volumes to it: it sees the
    /// server (else 404) and Nova's `os-volumes-attachments:create` is
    /// PROJECT_MEMBER_OR_ADMIN (else 403). The handler asks before it reads
    /// the body, so neither answer hides behind a 400 about the body.
    pub async fn authorize_attach(&self, ctx: &AuthContext, id: &str) -> Result<ServerRow, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-volumes-attachments:create to be performed.".into(),
            ));
        }
        Ok(s)
    }

    /// `POST /servers/{id}/os-volume_attachments`: reserve the volume and
    /// have the host open it. Allowed states follow Nova (from 2.20 also a
    /// shelved-offloaded server, whose attachment is only recorded: its
    /// unshelve opens it on the new host).
    pub async fn attach_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        request_id: &str,
        offloaded_allowed: bool,
    ) -> Result<AttachmentRow, ComputeError> {
        self.attach_volume_with(
            ctx,
            id,
            volume_id,
            request_id,
            AttachOptions { offloaded_allowed, ..Default::default() },
        )
        .await
    }

    /// [`ComputeApi::attach_volume`] with the options of later microversions.
    pub async fn attach_volume_with(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        request_id: &str,
        opts: AttachOptions<'_>,
    ) -> Result<AttachmentRow, ComputeError> {
        let AttachOptions { offloaded_allowed, tag, delete_on_termination } = opts;
        let s = self.authorize_attach(ctx, id).await?;
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Locked { id: id.to_string() });
        }
        let vm = s.vm_state;
        let offloaded = offloaded_allowed && vm == VmState::ShelvedOffloaded;
        if !offloaded && !matches!(vm, VmState::Active | VmState::Paused | VmState::Stopped | VmState::Suspended) {
            return Err(ComputeError::Conflict(invalid_state_message("vm_state", vm.as_str(), "attach_volume", &id)));
        }
        if let Some(t) = s.task_state {
            return Err(ComputeError::Conflict(invalid_state_message("task_state", t.as_str(), "attach_volume", &id)));
        }
        let not_found = || ComputeError::NotFound { kind: Resource::Volume, id: volume_id.to_string() };
        // Not a volume id in our spelling: no volume has it, Nova's 404.
        let vid = VolumeId::parse_canonical(volume_id).ok_or_else(not_found)?;
        let v = match self.ds.volume_get(&vid).await {
            Ok(v) if ctx.can_see(&v.project_id) => v,
            Ok(_) | Err(DbError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if v.status != stratus_types::VolumeStatus::Available {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: volume {volume_id} status must be available, but is {}",
                v.status
            )));
        }
        let n = self.ds.attachment_list_for_server(&s.id).await?.len();
        if offloaded {
            let att = AttachmentRow {
                id: AttachmentId::new(),
                volume_id: v.id,
                server_id: s.id,
                host: None,
                connector: None,
                client_id: None,
                mountpoint: Some(device_name(n + 1)),
                status: stratus_types::AttachStatus::Attached,
                delete_on_termination,
                boot_index: None,
                created_at: stratus_db::SET_ON_INSERT,
            };
            let att = self.ds.attachment_create_offloaded(&att).await.map_err(|e| match e {
                DbError::Conflict { kind: stratus_db::RowKind::Volume, detail } => {
                    ComputeError::BadRequest(format!("Invalid volume: {detail}"))
                }
                DbError::Conflict { .. } => ComputeError::Conflict(format!(
                    "Cannot 'attach_volume' instance {id}: it changed state meanwhile; retry."
                )),
                e => e.into(),
            })?;
            if tag.is_some() {
                self.ds.attachment_set_tag(&att.id, tag).await?;
            }
            self.ds.action_create(&s.id, request_id, "attach_volume", &ctx.user_id, &ctx.project_id).await?;
            return Ok(att);
        }
        let att = AttachmentRow {
            id: AttachmentId::new(),
            volume_id: v.id,
            server_id: s.id,
            host: None,
            connector: None,
            client_id: None,
            mountpoint: Some(device_name(n + 1)),
            status: stratus_types::AttachStatus::Reserved,
            delete_on_termination,
            boot_index: None,
            created_at: stratus_db::SET_ON_INSERT,
        };
        let att = self.ds.attachment_create(&att).await.map_err(|e| match e {
            DbError::Conflict { detail, .. } => ComputeError::BadRequest(format!("Invalid volume: {detail}")),
            e => e.into(),
        })?;
        if tag.is_some() {
            self.ds.attachment_set_tag(&att.id, tag).await?;
        }
        let o = NewOperation {
            id: stratus_types::OperationId::new(),
            kind: stratus_types::OpKind::AttachVolume,
            server_id: s.id,
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: crate::params::encode(&crate::params::VolumeParams { attachment_id: att.id }),
        };
        match self.ds.op_start(&o, "attach_volume", None).await {
            Ok(OpStart::Created(op)) => self.wake(&op.id).await,
            Ok(OpStart::Existing(_)) => {
                self.ds.attachment_delete(&att.id).await?;
                return Err(ComputeError::Conflict(format!(
                    "Another volume attachment for instance {id} is in progress; retry."
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(att)
    }

    /// The device tag an attachment was made with (shown from 2.70).
    pub async fn attachment_tag(&self, a: &AttachmentRow) -> Result<Option<String>, ComputeError> {
        Ok(self.ds.attachment_tag(&a.id).await?)
    }

    /// `PUT /servers/{id}/os-volume_attachments/{volume}` (2.85): change
    /// `delete_on_termination` (member or admin, not on a locked server).
    /// Naming another volume asks for a swap, which is not offered (400).
    pub async fn update_attachment(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        change: Result<(String, Option<bool>), String>,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-volumes-attachments:update to be performed.".into(),
            ));
        }
        let (new_volume, delete) = change.map_err(ComputeError::BadRequest)?;
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Locked { id: id.to_string() });
        }
        let a = self.attachment_get(ctx, id, volume_id).await?;
        if new_volume != volume_id {
            return Err(ComputeError::BadRequest("Swapping a server's volume for another is not offered.".into()));
        }
        if let Some(d) = delete {
            self.ds.attachment_set_delete_on_termination(&a.id, d).await?;
        }
        Ok(())
    }

    /// `DELETE /servers/{id}/os-volume_attachments/{volume}`: 409 while the
    /// host is down (Nova), 400 for the root volume.
    pub async fn detach_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        request_id: &str,
        offloaded_allowed: bool,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-volumes-attachments:delete to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Locked { id: id.to_string() });
        }
        let att = match VolumeId::parse_canonical(volume_id) {
            Some(vid) => self.ds.attachment_list_for_server(&s.id).await?.into_iter().find(|a| a.volume_id == vid),
            None => None,
        };
        let Some(att) = att else {
            return Err(ComputeError::DetachNotFound { volume_id: volume_id.to_string() });
        };
        if att.boot_index == Some(0) {
            return Err(ComputeError::BadRequest("Can't detach root device volume".into()));
        }
        // Nova's `check_instance_state`: no task in progress. A move (an
        // evacuation, a resize) changes where the volume is open while it
        // runs; a detach then would close it on the wrong host and release a
        // volume the move is about to open elsewhere.
        if let Some(t) = s.task_state {
            return Err(ComputeError::Conflict(invalid_state_message("task_state", t.as_str(), "detach_volume", &id)));
        }
        if offloaded_allowed && s.vm_state == VmState::ShelvedOffloaded {
            return self.detach_offloaded(ctx, &s, &att, request_id).await;
        }
        let host = s.host.clone().unwrap_or_default();
        if !self.host_is_up(&host).await {
            return Err(ComputeError::Conflict(format!(
                "Compute host {host} is down; a volume cannot be detached safely from a server whose host may still write to it."
            )));
        }
        let o = NewOperation {
            id: stratus_types::OperationId::new(),
            kind: stratus_types::OpKind::DetachVolume,
            server_id: s.id,
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: crate::params::encode(&crate::params::VolumeParams { attachment_id: att.id }),
        };
        // The same check, in the transaction that records the operation: a
        // task started since the read above refuses the detach too.
        let idle = stratus_db::Transition { from_task: Some(None), ..Default::default() };
        let started = self.ds.op_start(&o, "detach_volume", Some(&idle)).await.map_err(|e| match e {
            DbError::Conflict { .. } => ComputeError::Conflict(format!(
                "Cannot 'detach_volume' instance {id}: a task started meanwhile; retry."
            )),
            e => e.into(),
        })?;
        match started {
            OpStart::Created(op) => self.wake(&op.id).await,
            OpStart::Existing(_) => {
                return Err(ComputeError::Conflict(format!(
                    "Another volume detach for instance {id} is in progress; retry."
                )));
            }
        }
        Ok(())
    }

    /// Detach from a shelved-offloaded server (2.20): its VM was destroyed
    /// by the offload, so no host has the volume open and the attachment is
    /// released without a host command. Refused (409) while the offload
    /// left a VM unconfirmed gone (a zombie may still write), for an
    /// attachment not plainly `attached` (a fenced one waits for its fence
    /// to be lifted), and when an unshelve started meanwhile (the release
    /// is a compare-and-swap on the server being idle and the attachment
    /// unmoved).
    async fn detach_offloaded(
        &self,
        ctx: &AuthContext,
        s: &ServerRow,
        att: &AttachmentRow,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let id = s.id;
        if self.ds.zombie_list(None).await?.iter().any(|z| z.server_id == id) {
            return Err(ComputeError::Conflict(format!(
                "The VM of instance {id} is not yet confirmed gone from its last host; a volume cannot be detached safely."
            )));
        }
        if att.status != stratus_types::AttachStatus::Attached {
            return Err(ComputeError::Conflict(format!(
                "Volume {} of instance {id} is {}; it cannot be detached now.",
                att.volume_id, att.status
            )));
        }
        match self.ds.attachment_release(&att.id, &id, att.host.as_deref(), att.client_id.as_deref()).await? {
            stratus_db::Release::Released => {
                self.ds.action_create(&id, request_id, "detach_volume", &ctx.user_id, &ctx.project_id).await?;
                Ok(())
            }
            stratus_db::Release::Moved => Err(ComputeError::Conflict(format!(
                "Cannot 'detach_volume' instance {id}: a task started meanwhile; retry."
            ))),
        }
    }
}

/// Cinder's `volume-extended` event (Nova's `os-server-external-events`,
/// which the block storage service here calls directly): an
/// `extend_volume` instance action and the operation that shows the VM
/// its volume's new size.
#[async_trait::async_trait]
impl stratus_volume::ServerEvents for ComputeApi {
    async fn volume_extended(&self, att: &AttachmentRow, request_id: &str) {
        let server = match self.ds.server_get_any(&att.server_id).await {
            Ok(s) if !s.deleted => s,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(server = %att.server_id, volume = %att.volume_id, error = %e, "volume-extended event not recorded");
                return;
            }
        };
        let o = NewOperation {
            id: stratus_types::OperationId::new(),
            kind: stratus_types::OpKind::ExtendVolume,
            server_id: server.id,
            request_id: request_id.to_string(),
            user_id: server.user_id.clone(),
            project_id: server.project_id.clone(),
            params: crate::params::encode(&crate::params::VolumeParams { attachment_id: att.id }),
        };
        match self.ds.op_start(&o, "extend_volume", None).await {
            Ok(OpStart::Created(op)) => self.wake(&op.id).await,
            // The open one reads the volume's size when it tells the host.
            Ok(OpStart::Existing(op)) => {
                tracing::info!(server = %server.id, volume = %att.volume_id, op = %op.id, "volume-extended: an extend is already under way for this server");
            }
            Err(e) => {
                tracing::warn!(server = %server.id, volume = %att.volume_id, error = %e, "volume-extended event not recorded")
            }
        }
    }
}
