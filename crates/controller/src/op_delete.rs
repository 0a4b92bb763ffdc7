//! The delete operation: the decision tree of DESIGN.md, "The delete contract".
//!
//! - never scheduled (no host): the record is destroyed directly;
//! - host lease valid: terminate on the host as an acknowledged command with
//!   deadlines (`terminate_ack_timeout`, then `min(terminate_timeout,
//!   lease_ttl)`: a host that acknowledges but cannot finish within one lease
//!   is as good as down, which bounds the delete even when it is falsely up);
//! - host down or forced down, no responder, or a missed deadline: local
//!   delete by the controller.
//!
//! Every step is idempotent; the operation only rolls forward. Each path is
//! recorded as an instance-action event saying why it was taken.

use crate::controller::{Deadlines, Shared};
use crate::notify;
use async_trait::async_trait;
use std::sync::Arc;
use stratus_db::{EventFinish, NewNotification, OperationRow, ServerRow, StepWrites};
use stratus_ops::{Handler, OpError, Outcome, StepCx};
use stratus_types::agent::CommandKind;
use tracing::{info, warn};

pub(crate) struct DeleteServer(pub Arc<Shared>);

const EV_TERMINATE: &str = "compute_terminate_instance";
const EV_LOCAL: &str = "controller_local_delete";
const EV_FENCE: &str = "controller_fence_storage";
const EV_VOLUMES: &str = "controller_release_volumes";

#[async_trait]
impl Handler for DeleteServer {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let server = ds.server_get_any(&op.server_id).await?;
        if server.deleted {
            // Resumed after the release step: make sure the end notification exists (idempotent).
            let publisher =
                server.host.as_deref().map(|h| format!("nova-compute:{h}")).unwrap_or_else(|| "nova-api".into());
            notify::record(ds, &server, &op.id, "instance.delete.end", &publisher).await?;
            ds.event_finish_open(&server.id, &op.request_id, "completed after the controller resumed the operation")
                .await?;
            return Ok(Outcome::Done);
        }
        let start = notify::build(ds, &server, &op.id, "instance.delete.start", "nova-api");
        let moves = ds.migration_open_for_server(&server.id).await?;
        if server.shelved_image_id.is_some() || !moves.is_empty() {
            ds.notification_record(&start.dedup_key, &start.event_type, &start.publisher_id, &start.payload).await?;
        }
        self.clean_moves(op, cx, &server, moves).await?;
        if let Some(img) = &server.shelved_image_id {
            // Nova deletes the shelve snapshot first; a missing one is only a warning.
            let detail = match ds.image_delete(img).await {
                Ok(()) => format!("shelve snapshot {img} deleted"),
                Err(stratus_db::DbError::NotFound(_)) => format!("warning: shelve snapshot {img} was already gone"),
                Err(e) => return Err(e.into()),
            };
            ds.event_start(&server.id, &op.request_id, "delete_shelve_snapshot", None).await?;
            ds.event_finish(&server.id, &op.request_id, "delete_shelve_snapshot", true, &detail).await?;
        }
        let Some(host) = server.host.clone() else {
            let why = if server.vm_state == stratus_types::VmState::ShelvedOffloaded.as_str() {
                "server is shelved offloaded; no VM runs anywhere"
            } else {
                "server was never scheduled to a host; nothing runs anywhere"
            };
            return self.local(op, cx, &server, why, &start, vec![]).await;
        };
        let svc = match ds.service_get_by_host(&host).await {
            Ok(svc) => svc,
            Err(stratus_db::DbError::NotFound(_)) => {
                return self
                    .local(op, cx, &server, &format!("host {host} has no service record"), &start, vec![])
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let now = ds.clock().now();
        if !svc.is_up(now) {
            let why = if svc.forced_down {
                format!("host {host} is forced down")
            } else {
                format!("host {host} is down (lease expired at {})", svc.lease_expires_at.as_deref().unwrap_or("never"))
            };
            return self.local(op, cx, &server, &why, &start, vec![]).await;
        }
        let w = StepWrites {
            event_start: Some((server.id.clone(), op.request_id.clone(), EV_TERMINATE.into(), Some(host.clone()))),
            notification: Some(start.clone()),
        };
        cx.step_with("terminate", &w).await?;
        let r = s
            .run_command(
                &svc,
                &op.id,
                &server.id,
                CommandKind::Terminate,
                Deadlines { ack: s.cfg.terminate_ack_timeout, result: s.cfg.terminate_timeout.min(s.cfg.lease_ttl) },
                Some(&cx.wake),
            )
            .await;
        // An agent that has just rejoined refuses the epoch we read: re-read
        // its service row and try once more before treating it as gone.
        let r = match r {
            Err(crate::controller::CmdFailure::Refused(why)) => match ds.service_get_by_host(&host).await {
                Ok(fresh) if fresh.epoch != svc.epoch && fresh.is_up(ds.clock().now()) => {
                    info!(server = %server.id, host = %host, reason = %why, "agent rejoined meanwhile; re-sending terminate with its new epoch");
                    let d = Deadlines {
                        ack: s.cfg.terminate_ack_timeout,
                        result: s.cfg.terminate_timeout.min(s.cfg.lease_ttl),
                    };
                    s.run_command(&fresh, &op.id, &server.id, CommandKind::Terminate, d, Some(&cx.wake)).await
                }
                _ => Err(crate::controller::CmdFailure::Refused(why)),
            },
            r => r,
        };
        match r {
            Ok(t) => {
                let details = format!(
                    "path=remote: lease of {host} valid until {}; acknowledged in {} ms, VM destroyed in {} ms (host reported {} ms)",
                    svc.lease_expires_at.as_deref().unwrap_or("?"),
                    t.ack_ms,
                    t.total_ms,
                    t.result.elapsed_ms
                );
                cx.stepped("terminate");
                let mut events = vec![(EV_TERMINATE.into(), true, details)];
                self.volumes(op, cx, &server, &mut events).await?;
                self.release(op, cx, &server, &host, events).await
            }
            Err(f) => {
                warn!(server = %server.id, host = %host, reason = %f, "terminate did not complete on the host; escalating to local delete");
                let why = format!("terminate on {host}: {f}");
                self.local(op, cx, &server, &why, &start, vec![(EV_TERMINATE.into(), false, why.clone())]).await
            }
        }
    }
}

impl DeleteServer {
    /// A resize awaiting confirmation is confirmed first (the source copy is
    /// destroyed), and a move in progress has its other host cleaned, so no
    /// copy of the server is left on any host.
    async fn clean_moves(
        &self,
        op: &OperationRow,
        cx: &StepCx,
        server: &ServerRow,
        moves: Vec<stratus_db::MigrationRow>,
    ) -> Result<(), OpError> {
        let s = &self.0;
        let ds = &s.ds;
        for m in moves {
            cx.step("clean_migration").await?;
            let event = if m.status == "finished" { "compute_confirm_resize" } else { "controller_abort_migration" };
            ds.event_start(&server.id, &op.request_id, event, None).await?;
            let mut details = Vec::new();
            for h in [Some(m.source_host.clone()), m.dest_host.clone()].into_iter().flatten() {
                if Some(&h) == server.host.as_ref() {
                    continue;
                }
                let d = Deadlines {
                    ack: s.cfg.terminate_ack_timeout,
                    result: s.cfg.terminate_timeout.min(s.cfg.lease_ttl),
                };
                match s.host_command(&op.id, &server.id, &h, CommandKind::Terminate, d).await {
                    Ok(_) => details.push(format!("copy on {h} destroyed")),
                    Err(e) => {
                        s.record_zombie_sized(
                            &server.id,
                            &h,
                            m.old_vcpus,
                            m.old_ram_mb,
                            m.old_disk_gb,
                            &format!("delete during {}: {e}", m.kind),
                        )
                        .await?;
                        details.push(format!("copy on {h} not confirmed destroyed ({e}); zombie recorded"));
                    }
                }
            }
            ds.migration_set(m.id, if m.status == "finished" { "confirmed" } else { "error" }, None).await?;
            ds.event_finish(&server.id, &op.request_id, event, true, &details.join("; ")).await?;
            cx.stepped("clean_migration");
        }
        Ok(())
    }

    /// Local delete: the controller releases everything itself. The VM may
    /// still run on its host, so a zombie keeps the host's capacity reserved
    /// until the host's agent reports the VM gone (it reaps it when it
    /// rejoins: its inventory no longer lists the server). Fencing of the
    /// server's storage clients belongs here, before anything is released,
    /// once servers have volumes.
    async fn local(
        &self,
        op: &OperationRow,
        cx: &StepCx,
        server: &ServerRow,
        why: &str,
        start: &NewNotification,
        mut events: Vec<EventFinish>,
    ) -> Result<Outcome, OpError> {
        let w = StepWrites {
            event_start: Some((server.id.clone(), op.request_id.clone(), EV_LOCAL.into(), None)),
            notification: Some(start.clone()),
        };
        cx.step_with("local_delete", &w).await?;
        info!(server = %server.id, reason = why, "local delete");
        let host = server.host.clone().unwrap_or_default();
        if !host.is_empty() {
            // The VM may still run there: record the zombie before anything
            // else, so its capacity stays reserved and no fence is lifted
            // until the host reports the VM gone.
            self.0.record_zombie(server, &host, why).await?;
        }
        // Fence first: no volume is released while a client that may still
        // run (a zombie VM) could write to it.
        cx.step("fence").await?;
        match crate::storage::fence_server(&self.0, server).await {
            Ok(lines) if !lines.is_empty() => events.push((EV_FENCE.into(), true, lines.join("; "))),
            Ok(_) => {}
            Err(e) => {
                warn!(server = %server.id, error = %e, "cannot fence the server's storage clients; retrying (volumes stay attached)");
                return Ok(Outcome::Retry(format!("fence: {e}"), std::time::Duration::from_secs(2)));
            }
        }
        cx.stepped("fence");
        self.volumes(op, cx, server, &mut events).await?;
        events.push((EV_LOCAL.into(), true, format!("path=local: {why}")));
        self.release(op, cx, server, &host, events).await
    }

    /// Detach the server's volumes and delete the `delete_on_termination` ones.
    async fn volumes(
        &self,
        _op: &OperationRow,
        cx: &StepCx,
        server: &ServerRow,
        events: &mut Vec<EventFinish>,
    ) -> Result<(), OpError> {
        if self.0.ds.attachment_list_for_server(&server.id).await?.is_empty() {
            return Ok(());
        }
        cx.step("volumes").await?;
        let lines = crate::storage::release_volumes(&self.0, server).await?;
        events.push((EV_VOLUMES.into(), true, lines.join("; ")));
        cx.stepped("volumes");
        Ok(())
    }

    /// Release ports, mark the server deleted (quota usage drops with it),
    /// finish the events and emit `instance.delete.end`, in one transaction.
    async fn release(
        &self,
        op: &OperationRow,
        cx: &StepCx,
        server: &ServerRow,
        host: &str,
        events: Vec<EventFinish>,
    ) -> Result<Outcome, OpError> {
        let ds = &self.0.ds;
        stratus_ops::fault_point("before:release");
        let publisher = if host.is_empty() { "nova-api".to_string() } else { format!("nova-compute:{host}") };
        let mut gone = server.clone();
        gone.deleted_at = Some(stratus_db::ts(ds.clock().now()));
        let end = notify::build(ds, &gone, &op.id, "instance.delete.end", &publisher);
        if !ds.server_delete_finish(&op.id, cx.worker(), &server.id, &op.request_id, &events, &end).await? {
            return Err(OpError::ClaimLost);
        }
        cx.stepped("release");
        info!(server = %server.id, "server deleted");
        Ok(Outcome::Closed)
    }
}
