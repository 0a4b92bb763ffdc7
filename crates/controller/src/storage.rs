//! The storage side of a delete: fence the server's storage clients (local
//! path), detach its volumes, delete those marked `delete_on_termination`
//! (a busy volume goes to the durable cleanup queue, never swallowed), and
//! lift fences once the host has confirmed the VM gone.

use crate::controller::Shared;
use stratus_blockstore::{BlockError, ClientId};
use stratus_db::{DbError, ServerRow};
use tracing::{info, warn};

/// Fence every storage client the server's attachments recorded. Returns a
/// line per client for the instance action. Must run before any volume of
/// the server is released.
pub(crate) async fn fence_server(s: &Shared, server: &ServerRow) -> Result<Vec<String>, String> {
    let ds = &s.ds;
    let atts = ds.attachment_list_for_server(&server.id).await.map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for a in atts {
        let Some(client) = a.client_id.clone() else { continue };
        if a.status == "fenced" {
            lines.push(format!("client {client} of volume {} already fenced", a.volume_id));
            continue;
        }
        let Some(backend) = &s.storage else {
            return Err(format!("attachment {} has a storage client but no backend is configured", a.id));
        };
        let vol = ds.volume_get(&a.volume_id).await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        backend
            .fence(&vol.backend_name, &ClientId(client.clone()))
            .await
            .map_err(|e| format!("fencing {client}: {e}"))?;
        ds.attachment_mark_fenced(&a.id).await.map_err(|e| e.to_string())?;
        if let Some(host) = &a.host {
            let epoch = ds.service_get_by_host(host).await.map(|svc| svc.epoch).unwrap_or(0);
            ds.cleanup_enqueue_unfence(&server.id, host, epoch, &vol.id, &vol.backend_name, &client)
                .await
                .map_err(|e| e.to_string())?;
        }
        info!(server = %server.id, volume = %vol.id, client = %client, ms = started.elapsed().as_millis() as u64, "storage client fenced");
        lines.push(format!("fenced client {client} of volume {} in {} ms", vol.id, started.elapsed().as_millis()));
    }
    Ok(lines)
}

/// Detach every volume of the server and delete the `delete_on_termination`
/// ones. Returns a line per volume for the instance action.
pub(crate) async fn release_volumes(s: &Shared, server: &ServerRow) -> Result<Vec<String>, DbError> {
    let ds = &s.ds;
    let mut lines = Vec::new();
    for a in ds.attachment_list_for_server(&server.id).await? {
        ds.attachment_delete(&a.id).await?;
        if !a.delete_on_termination {
            lines.push(format!("volume {} detached", a.volume_id));
            continue;
        }
        let vol = match ds.volume_get(&a.volume_id).await {
            Ok(v) => v,
            Err(DbError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        ds.volume_set_status(&vol.id, &[], "deleting").await?;
        let outcome = match &s.storage {
            Some(b) => b.delete(&vol.backend_name).await,
            None => Ok(()),
        };
        match outcome {
            Ok(()) => {
                ds.volume_mark_deleted(&vol.id).await?;
                lines.push(format!("volume {} deleted", vol.id));
            }
            Err(e) => {
                let why = match &e {
                    BlockError::Busy { watchers, .. } => format!("busy: watched by {watchers:?}"),
                    e => e.to_string(),
                };
                warn!(volume = %vol.id, reason = %why, "volume cannot be deleted yet; queued for retry");
                ds.cleanup_enqueue("volume_delete", Some(&vol.id), Some(&vol.backend_name), None, None, &why).await?;
                lines.push(format!("volume {} queued for deletion ({why})", vol.id));
            }
        }
    }
    Ok(lines)
}

/// Lift fences whose host has rejoined and confirmed the fenced server's VM
/// gone (no zombie of it remains there), and retry queued volume deletes.
pub(crate) async fn reconcile(s: &Shared) -> Result<(), DbError> {
    let ds = &s.ds;
    let Some(backend) = &s.storage else { return Ok(()) };
    for c in ds.cleanup_pending().await? {
        match c.kind.as_str() {
            "unfence" => {
                let (Some(host), Some(server), Some(client)) = (&c.host, &c.server_id, &c.client_id) else {
                    ds.cleanup_done(c.id).await?;
                    continue;
                };
                // Lift only once the host rejoined with a newer epoch (it
                // reconciled before taking work) and reported the VM gone.
                let rejoined = ds
                    .service_get_by_host(host)
                    .await
                    .map(|svc| svc.is_up(ds.clock().now()) && svc.epoch > c.epoch.unwrap_or(i64::MAX))
                    .unwrap_or(false);
                let zombie = ds.zombie_list(Some(host)).await?.iter().any(|z| &z.server_id == server);
                if !rejoined || zombie {
                    continue;
                }
                match backend.unfence(&ClientId(client.clone())).await {
                    Ok(()) => {
                        info!(client = %client, host = %host, "fence lifted: the host rejoined and reaped the zombie");
                        ds.cleanup_done(c.id).await?;
                    }
                    Err(e) => ds.cleanup_failed(c.id, &e.to_string()).await?,
                }
            }
            "volume_delete" if s.volume_reconciler_absent => {
                let (Some(vol), Some(name)) = (&c.volume_id, &c.backend_name) else { continue };
                match backend.delete(name).await {
                    Ok(()) => {
                        ds.volume_mark_deleted(vol).await?;
                        ds.cleanup_done(c.id).await?;
                    }
                    Err(e) => ds.cleanup_failed(c.id, &e.to_string()).await?,
                }
            }
            _ => {}
        }
    }
    Ok(())
}
