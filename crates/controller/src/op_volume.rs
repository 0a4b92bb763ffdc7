//! Volume attach and detach operations on a server's host: the host opens
//! (or closes) its storage client for the attachment and reports the
//! client's identity, which is recorded on the attachment because it is what
//! fencing targets later.

use crate::controller::{Deadlines, Shared};
use async_trait::async_trait;
use std::sync::Arc;
use stratus_db::{AttachmentRow, OpenRecord, OperationRow, Release, ServerRow};
use stratus_ops::{Failure, Handler, OpError, Outcome, StepCx, Unsupported};
use stratus_types::AttachStatus;
use stratus_types::agent::CommandKind;
use tracing::{info, warn};

pub(crate) struct VolumeOps(pub Arc<Shared>);

stratus_ops::steps!(
    /// The steps of attach and detach: one command on the server's host each.
    pub(crate) enum VolumeStep {
        /// Open the volume on the host and record its client.
        Attach => "attach",
        /// Close the volume on the host and drop the attachment.
        Detach => "detach",
        /// Show the VM its volume's new size.
        Extend => "extend",
    }
);

/// Where an open on a host ended.
pub(crate) enum Opened {
    /// Recorded: the volume is attached there, by this storage client.
    Here(String),
    /// The server left the host or started moving its volumes meanwhile,
    /// or the attachment was opened elsewhere or dropped: the open was
    /// closed again (or its client fenced) and nothing was recorded.
    Stray,
}

/// Open `att` on the server's host and record the client (shared by attach and boot from volume).
pub(crate) async fn open_on_host(
    s: &Shared,
    op_id: &stratus_types::OperationId,
    server: &ServerRow,
    att: &AttachmentRow,
) -> Result<Opened, String> {
    let host = server.host.clone().ok_or("server has no host")?;
    open_on(s, op_id, &server.id, &host, att).await
}

/// Open `att` on `host` and record the client and host on the attachment,
/// unless the volume no longer belongs there by the time the host answers
/// (see [`Opened::Stray`]): a stray open is closed on `host`, or its client
/// fenced when the host does not confirm the close, so no client the
/// database does not know about can write to the volume.
pub(crate) async fn open_on(
    s: &Shared,
    op_id: &stratus_types::OperationId,
    server_id: &stratus_types::ServerId,
    host: &str,
    att: &AttachmentRow,
) -> Result<Opened, String> {
    let volumes = s.volume.as_ref().ok_or("no block storage service is configured")?;
    let vol = volumes.volume(&att.volume_id).await.map_err(|e| e.to_string())?;
    let d = Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout };
    let kind = CommandKind::AttachVolume { attachment_id: att.id, volume: vol.backend_name.clone() };
    let t = s.host_command(op_id, server_id, host, kind, d).await?;
    let client = t.result.client_id.clone().ok_or("the host reported no storage client")?;
    if volumes.host_attached(att, host, &client).await.map_err(|e| e.to_string())? == OpenRecord::Recorded {
        info!(server = %server_id, volume = %att.volume_id, host, client = %client, "volume attached");
        return Ok(Opened::Here(client));
    }
    let kind = CommandKind::DetachVolume { attachment_id: att.id, volume: vol.backend_name.clone() };
    match s.host_command(op_id, server_id, host, kind, d).await {
        Ok(_) => info!(server = %server_id, volume = %att.volume_id, host, client = %client, "stray open closed again"),
        Err(e) => {
            warn!(server = %server_id, volume = %att.volume_id, host, client = %client, error = %e,
                "stray open not confirmed closed: fencing its client");
            volumes.fence_stray(server_id, host, &att.volume_id, &client).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(Opened::Stray)
}

/// Move every volume of a server that changes hosts (resize, migration,
/// revert, unshelve, evacuation): close it on `from` (a live source host
/// whose VM is powered off: its storage connection must go before another
/// host opens the volume), then open it on `to`, recording the new client.
/// Returns a line per volume for the instance action.
pub(crate) async fn move_volumes(
    s: &Shared,
    op_id: &stratus_types::OperationId,
    server_id: &stratus_types::ServerId,
    from: Option<&str>,
    to: &str,
) -> Result<Vec<String>, String> {
    let Some(volumes) = s.volume.as_ref() else { return Ok(Vec::new()) };
    let atts = volumes.attachments_of_server(server_id).await.map_err(|e| e.to_string())?;
    let d = Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout };
    let mut lines = Vec::new();
    for att in atts {
        if let Some(from) = from.filter(|f| *f != to) {
            let vol = volumes.volume(&att.volume_id).await.map_err(|e| e.to_string())?;
            let kind = CommandKind::DetachVolume { attachment_id: att.id, volume: vol.backend_name };
            s.host_command(op_id, server_id, from, kind, d).await.map_err(|e| format!("closing on {from}: {e}"))?;
        }
        let vol = volumes.volume(&att.volume_id).await.map_err(|e| e.to_string())?;
        let kind = CommandKind::AttachVolume { attachment_id: att.id, volume: vol.backend_name };
        let t = s.host_command(op_id, server_id, to, kind, d).await.map_err(|e| format!("opening on {to}: {e}"))?;
        let client = t.result.client_id.clone().ok_or("the host reported no storage client")?;
        if let Err(e) = volumes.host_moved(&att, to, &client).await {
            if volumes.attachment(&att.id).await.map_err(|e| e.to_string())?.is_some() {
                return Err(e.to_string());
            }
            // Detached meanwhile (an admin's force-detach through the volume
            // API): the volume is `available`, so it must not stay open here.
            let vol = volumes.volume(&att.volume_id).await.map_err(|e| e.to_string())?;
            let kind = CommandKind::DetachVolume { attachment_id: att.id, volume: vol.backend_name };
            s.host_command(op_id, server_id, to, kind, d).await.map_err(|e| format!("closing on {to}: {e}"))?;
            lines.push(format!("volume {} was detached meanwhile: closed again on {to}", att.volume_id));
            continue;
        }
        lines.push(format!("volume {} opened on {to} by client {client}", att.volume_id));
    }
    Ok(lines)
}

#[async_trait]
impl Handler for VolumeOps {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let att_id = match crate::params::decode::<crate::params::VolumeParams>(op) {
            Ok(p) => p.attachment_id,
            Err(e) => return s.bad_params(op, e).await,
        };
        let server = ds.server_get_any(&op.server_id).await?;
        let Some(volumes) = s.volume.as_ref() else {
            return Ok(Outcome::Failed(Failure::Unsupported(Unsupported::NoBlockStorage)));
        };
        let Some(att) = volumes.attachment(&att_id).await.map_err(crate::storage::op_error)? else {
            return Ok(Outcome::Done); // already detached (or never made)
        };
        if server.deleted || server.task_state == Some(stratus_types::TaskState::Deleting) {
            return Ok(Outcome::Done); // the delete releases the volumes
        }
        let host = server.host.clone().unwrap_or_default();
        if op.kind == stratus_types::OpKind::ExtendVolume {
            return extend(s, op, cx, &server, &att).await;
        }
        if op.kind == stratus_types::OpKind::AttachVolume {
            let event = "compute_attach_volume";
            cx.step(VolumeStep::Attach).await?;
            ds.event_start(&server.id, &op.request_id, event, Some(&host)).await?;
            if let Some(client) =
                att.client_id.as_deref().filter(|_| att.status == stratus_types::AttachStatus::Attached)
            {
                // An earlier attempt opened it and died before closing the operation.
                let detail = format!("volume {} opened on {host} by client {client}", att.volume_id);
                ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
                cx.stepped(VolumeStep::Attach).await?;
                return Ok(Outcome::Done);
            }
            attach(s, op, cx, server, att).await
        } else {
            detach(s, op, cx, server, att).await
        }
    }
}

/// Show the server's VM the new size of an attached volume (Nova's
/// `extend_volume` on Cinder's `volume-extended` event): the
/// `compute_extend_volume` event records the result. A server with no
/// host, or whose volume is not open on one (shelved, being moved), has
/// nothing to tell: its host opens the volume at its new size later. The
/// size sent is read when the command goes out, and sent again if the
/// volume grew meanwhile (a second extend while this one ran).
async fn extend(
    s: &Shared,
    op: &OperationRow,
    cx: &StepCx,
    server: &ServerRow,
    att: &AttachmentRow,
) -> Result<Outcome, OpError> {
    let ds = &s.ds;
    let event = "compute_extend_volume";
    let Some(volumes) = s.volume.as_ref() else {
        return Ok(Outcome::Failed(Failure::Unsupported(Unsupported::NoBlockStorage)));
    };
    cx.step(VolumeStep::Extend).await?;
    ds.event_start(&server.id, &op.request_id, event, server.host.as_deref()).await?;
    let open_on = att.host.clone().filter(|h| att.status == AttachStatus::Attached && server.host.as_ref() == Some(h));
    let Some(host) = open_on else {
        let detail = format!("volume {} is not open on a host: it is opened at its new size later", att.volume_id);
        ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
        cx.stepped(VolumeStep::Extend).await?;
        return Ok(Outcome::Done);
    };
    let d = Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout };
    let mut told = 0u64;
    loop {
        let vol = volumes.volume(&att.volume_id).await.map_err(crate::storage::op_error)?;
        let size_bytes = u64::try_from(vol.size_gb).unwrap_or(0).saturating_mul(1 << 30);
        if size_bytes <= told {
            break;
        }
        let kind = CommandKind::ExtendVolume { attachment_id: att.id, size_bytes };
        if let Err(e) = s.host_command(&op.id, &server.id, &host, kind, d).await {
            warn!(server = %server.id, volume = %att.volume_id, host, error = %e, "the VM was not told its volume grew");
            ds.event_finish(&server.id, &op.request_id, event, false, &format!("resizing the disk on {host}: {e}"))
                .await?;
            return Ok(Outcome::Failed(Failure::Step(e.to_string())));
        }
        told = size_bytes;
    }
    info!(server = %server.id, volume = %att.volume_id, host, bytes = told, "VM told its volume grew");
    ds.event_finish(&server.id, &op.request_id, event, true, &format!("volume {} is {told} bytes", att.volume_id))
        .await?;
    cx.stepped(VolumeStep::Extend).await?;
    Ok(Outcome::Done)
}

/// How many times an attach follows a server that moved while its host
/// opened the volume before giving up (each time needs a whole move).
const ATTACH_FOLLOWS: usize = 3;

/// Open the volume on the server's host and record it. The server may move
/// (or start moving) while the host opens it: the open is then stray and
/// closed again ([`open_on`]), and the attach looks at where things stand:
/// a move that opened the volume where the server lands finished the
/// attach; a move still under way is waited for; a server that moved
/// without it is followed to its new host.
async fn attach(
    s: &Shared,
    op: &OperationRow,
    cx: &StepCx,
    mut server: ServerRow,
    mut att: AttachmentRow,
) -> Result<Outcome, OpError> {
    let ds = &s.ds;
    let Some(volumes) = s.volume.as_ref() else {
        return Ok(Outcome::Failed(Failure::Unsupported(Unsupported::NoBlockStorage)));
    };
    let event = "compute_attach_volume";
    for _ in 0..ATTACH_FOLLOWS {
        let host = server.host.clone().unwrap_or_default();
        match open_on_host(s, &op.id, &server, &att).await {
            Ok(Opened::Here(client)) => {
                let detail = format!("volume {} opened on {host} by client {client}", att.volume_id);
                ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
                cx.stepped(VolumeStep::Attach).await?;
                return Ok(Outcome::Done);
            }
            Ok(Opened::Stray) => {}
            Err(e) => {
                volumes.host_attach_failed(&att.id).await.map_err(crate::storage::op_error)?;
                ds.event_finish(&server.id, &op.request_id, event, false, &e).await?;
                return Ok(Outcome::Failed(Failure::Step(e)));
            }
        }
        // Where things stand now; a move under way is waited for (bounded).
        let until = tokio::time::Instant::now() + s.cfg.power_timeout;
        let now = loop {
            server = ds.server_get_any(&server.id).await?;
            let found = volumes.attachment(&att.id).await.map_err(crate::storage::op_error)?;
            let moving = server.task_state.filter(|t| !t.volumes_stay());
            let done = match &found {
                None => Some("the volume was detached meanwhile".to_string()),
                Some(_) if server.deleted || moving == Some(stratus_types::TaskState::Deleting) => {
                    Some("the server is being deleted: its delete releases the volume".to_string())
                }
                Some(a) if !matches!(a.status, AttachStatus::Reserved | AttachStatus::Attaching) => Some(format!(
                    "volume {} opened on {} by a move of the server",
                    att.volume_id,
                    a.host.as_deref().unwrap_or("its host")
                )),
                Some(_) => None,
            };
            match (done, found) {
                (Some(detail), _) => {
                    ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
                    cx.stepped(VolumeStep::Attach).await?;
                    return Ok(Outcome::Done);
                }
                (None, Some(a)) if moving.is_none() || tokio::time::Instant::now() >= until => break a,
                (None, _) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            }
        };
        info!(server = %server.id, volume = %att.volume_id, opened_on = host, now_on = ?server.host,
            "the server moved while its host opened the volume: following it");
        att = now;
    }
    let why = format!("server {} kept moving while volume {} was being attached", server.id, att.volume_id);
    volumes.host_attach_failed(&att.id).await.map_err(crate::storage::op_error)?;
    ds.event_finish(&server.id, &op.request_id, event, false, &why).await?;
    Ok(Outcome::Failed(Failure::Step(why)))
}

/// How many times a detach follows a volume that moved while its host
/// closed it before giving up (each time needs a whole move in between).
const DETACH_FOLLOWS: usize = 3;

/// Close the volume on the server's host and drop the attachment. The
/// server may move while the host closes it (a detach accepted just before
/// the host was declared down and the server evacuated): the release then
/// finds the volume held elsewhere and the detach follows it, re-reading
/// where it is open now, so a volume shown `available` is open nowhere.
async fn detach(
    s: &Shared,
    op: &OperationRow,
    cx: &StepCx,
    mut server: ServerRow,
    mut att: AttachmentRow,
) -> Result<Outcome, OpError> {
    let ds = &s.ds;
    let Some(volumes) = s.volume.as_ref() else {
        return Ok(Outcome::Failed(Failure::Unsupported(Unsupported::NoBlockStorage)));
    };
    let event = "compute_detach_volume";
    cx.step(VolumeStep::Detach).await?;
    ds.event_start(&server.id, &op.request_id, event, server.host.as_deref()).await?;
    for _ in 0..DETACH_FOLLOWS {
        if let Some(t) = server.task_state {
            // A move started after the API accepted the detach: where the
            // volume is open is changing; keep it attached (it moves with
            // the server) rather than close it on the wrong host.
            let why = format!("the server is {t}: detach refused, the volume stays attached");
            ds.event_finish(&server.id, &op.request_id, event, false, &why).await?;
            return Ok(Outcome::Failed(Failure::Step(why)));
        }
        // Where the volume is open: the attachment's host (an attach that
        // raced a move may have opened it on the server's former host).
        let host = att.host.clone().or_else(|| server.host.clone()).unwrap_or_default();
        let d = Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout };
        let vol = volumes.volume(&att.volume_id).await.map_err(crate::storage::op_error)?;
        let kind = CommandKind::DetachVolume { attachment_id: att.id, volume: vol.backend_name };
        if let Err(e) = s.host_command(&op.id, &server.id, &host, kind, d).await {
            // The volume stays attached: releasing it while the host may still write is unsafe.
            volumes.host_detach_failed(&att.id).await.map_err(crate::storage::op_error)?;
            ds.event_finish(&server.id, &op.request_id, event, false, &e).await?;
            return Ok(Outcome::Failed(Failure::Step(e)));
        }
        if volumes.host_detached(&att).await.map_err(crate::storage::op_error)? == Release::Released {
            let detail = format!("volume {} closed on {host}", att.volume_id);
            ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
            cx.stepped(VolumeStep::Detach).await?;
            return Ok(Outcome::Done);
        }
        server = ds.server_get_any(&server.id).await?;
        match volumes.attachment(&att.id).await.map_err(crate::storage::op_error)? {
            Some(moved) if !server.deleted && server.task_state != Some(stratus_types::TaskState::Deleting) => {
                info!(server = %server.id, volume = %att.volume_id, closed_on = host, now_on = ?moved.host,
                    "the volume moved while its host closed it: following it");
                att = moved;
            }
            gone => {
                let detail = if gone.is_none() {
                    "the volume was detached meanwhile"
                } else {
                    "the server is being deleted: its delete releases the volume"
                };
                ds.event_finish(&server.id, &op.request_id, event, true, detail).await?;
                cx.stepped(VolumeStep::Detach).await?;
                return Ok(Outcome::Done);
            }
        }
    }
    let why = format!("volume {} kept moving while it was being closed; it stays attached", att.volume_id);
    ds.event_finish(&server.id, &op.request_id, event, false, &why).await?;
    Ok(Outcome::Failed(Failure::Step(why)))
}
