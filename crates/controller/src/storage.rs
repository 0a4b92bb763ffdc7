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
    closed_by: Option<&str>,
) -> Result<Result<Vec<String>, FenceFailure>, stratus_ops::OpError> {
    match &s.volume {
        Some(v) => match v.fence_server_except(&server.id, closed_by).await {
            Ok(lines) => Ok(Ok(lines)),
            Err(VolumeError::Db(DbError::ClaimLost { .. })) => Err(stratus_ops::OpError::ClaimLost),
            Err(e) => Ok(Err(FenceFailure { detail: e.to_string(), public: e.tenant_message() })),
        },
        None => {
            let atts = s.ds.attachment_list_for_server(&server.id).await?;
            match atts.iter().find(|a| a.client_id.is_some() && (closed_by.is_none() || a.host.as_deref() != closed_by))
            {
                Some(a) => {
                    let why = format!("attachment {} has a storage client but no backend is configured", a.id);
                    Ok(Err(FenceFailure { detail: why.clone(), public: why }))
                }
                None => Ok(Ok(Vec::new())),
            }
        }
    }
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
