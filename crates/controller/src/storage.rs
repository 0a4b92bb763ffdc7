//! The storage side of a delete, as the controller's operations call it: a
//! thin adapter over [`stratus_volume::VolumeService`], which owns every
//! volume step (fence the server's storage clients, detach its volumes and
//! delete the `delete_on_termination` ones, a busy one to the durable
//! cleanup queue, never swallowed; lift fences once the host confirmed the
//! VM gone). This module only turns the service's errors into what the
//! delete operation records.

use crate::controller::Shared;
use stratus_db::{DbError, RowKind, ServerRow};
use stratus_volume::VolumeError;

/// A volume error as an operation error (the runner retries the attempt):
/// database errors as such, the service's own errors kept typed.
pub(crate) fn op_error(e: VolumeError) -> stratus_ops::OpError {
    match e {
        VolumeError::Db(e) => e.into(),
        e => stratus_ops::OpError::Service(Box::new(e)),
    }
}

/// Fence every storage client the server's attachments recorded. Returns a
/// line per client for the instance action. Must run before any volume of
/// the server is released.
/// Why a fence could not be applied.
pub(crate) struct FenceFailure {
    /// The whole story, for the log and the operation's `last_error` (operators).
    pub detail: String,
    /// What the server's instance action may show (no backend stderr, paths or command lines).
    pub public: String,
}

/// The inner error says why fencing failed (the delete retries); the outer
/// one ends the attempt (its claim was lost).
pub(crate) async fn fence_server(
    s: &Shared,
    server: &ServerRow,
    hosts: Option<&[String]>,
) -> Result<Result<Vec<String>, FenceFailure>, stratus_ops::OpError> {
    match &s.volume {
        Some(v) => match v.fence_server_on(&server.id, hosts).await {
            Ok(lines) => Ok(Ok(lines)),
            Err(VolumeError::Db(DbError::ClaimLost { .. })) => Err(stratus_ops::OpError::ClaimLost),
            Err(e) => Ok(Err(FenceFailure { detail: e.to_string(), public: e.tenant_message() })),
        },
        None => {
            let atts = s.ds.attachment_list_for_server(&server.id).await?;
            let fenced =
                |a: &&stratus_db::AttachmentRow| hosts.is_none_or(|hs| a.host.as_ref().is_some_and(|h| hs.contains(h)));
            match atts.iter().filter(fenced).find(|a| a.client_id.is_some()) {
                Some(a) => {
                    let why = format!("attachment {} has a storage client but no backend is configured", a.id);
                    Ok(Err(FenceFailure { detail: why.clone(), public: why }))
                }
                None => Ok(Ok(Vec::new())),
            }
        }
    }
}

/// The hosts other than `served_by` that hold one of the server's volumes
/// open and where a copy of its VM may still run: down, or with a zombie of
/// the server recorded. A live host whose copy was confirmed destroyed
/// closed its clients itself (and a fence there would never be lifted: a
/// lift waits for the host to rejoin).
pub(crate) async fn hosts_to_fence(
    s: &Shared,
    server: &ServerRow,
    served_by: Option<&str>,
) -> Result<Vec<String>, DbError> {
    let mut out: Vec<String> = Vec::new();
    let zombies = s.ds.zombie_list(None).await?;
    for a in s.ds.attachment_list_for_server(&server.id).await? {
        let Some(h) = a.host.filter(|h| Some(h.as_str()) != served_by && !out.contains(h)) else { continue };
        let up = s.ds.service_get_by_host(&h).await.map(|svc| svc.is_up()).unwrap_or(false);
        let zombie = zombies.iter().any(|z| z.server_id == server.id && z.host == h);
        if !up || zombie {
            out.push(h);
        }
    }
    Ok(out)
}

/// Detach every volume of the server and delete the `delete_on_termination`
/// ones. Returns a line per volume for the instance action.
pub(crate) async fn release_volumes(s: &Shared, server: &ServerRow) -> Result<Vec<String>, stratus_ops::OpError> {
    match &s.volume {
        Some(v) => v.release_server_volumes(&server.id).await.map_err(op_error),
        None => {
            let atts = s.ds.attachment_list_for_server(&server.id).await?;
            if atts.is_empty() {
                Ok(Vec::new())
            } else {
                Err(DbError::conflict(
                    RowKind::Attachment,
                    format!(
                        "server {} has {} volume attachment(s) but no block storage service is configured",
                        server.id,
                        atts.len()
                    ),
                )
                .into())
            }
        }
    }
}

/// One tick of the storage reconciler (a pass every reconcile interval:
/// interrupted volume creates and deletes, the cleanup queue, fence lifts).
/// The controller is the one role that calls it.
pub(crate) async fn reconcile(s: &Shared) -> Result<(), DbError> {
    if let Some(v) = &s.volume {
        v.tick().await;
    }
    Ok(())
}
