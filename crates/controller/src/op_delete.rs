//! The delete operation: the decision tree of the delete contract
//! (`docs/architecture.md`), run as the plan `stratus_types::plan::delete_plan`
//! gives for the path taken (the same function `stratus-model` checks).
//!
//! - never scheduled or shelved-offloaded (no host): nothing runs anywhere;
//!   the fenced local sequence runs without a zombie;
//! - host lease valid: terminate on the host as an acknowledged command with
//!   deadlines (`terminate_ack_timeout`, then `min(terminate_timeout,
//!   lease_ttl)`: a host that acknowledges but cannot finish within one lease
//!   is as good as down, which bounds the delete even when it is falsely up);
//! - host down or forced down, no responder, or a missed deadline: local
//!   delete by the controller (zombie, fence, volumes, release).
//!
//! Every step is idempotent and the operation only rolls forward; a resumed
//! attempt continues after the last step the cursor records as completed
//! (and keeps the path that step committed to). Each path is recorded as an
//! instance-action event saying why it was taken.

use crate::controller::{CmdFailure, Deadlines, Shared, image_failure};
use crate::notify;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Arc;
use stratus_db::{EventFinish, MigrationRow, NewNotification, OperationRow, ServerRow, ServiceRow, StepWrites};
use stratus_image::SnapshotRemoval;
use stratus_ops::{Handler, OpError, Outcome, RetryReason, StepCx};
use stratus_types::agent::CommandKind;
use stratus_types::plan::{DeleteFacts, DeletePath, DeleteStep, committed_path, delete_plan, remaining};
use stratus_types::{MigrationStatus, VmState};
use tracing::{error, info, warn};

pub(crate) struct DeleteServer(pub Arc<Shared>);

const EV_TERMINATE: &str = "compute_terminate_instance";
const EV_LOCAL: &str = "controller_local_delete";
const EV_FENCE: &str = "controller_fence_storage";
const EV_VOLUMES: &str = "controller_release_volumes";

/// Longest pause between two attempts to fence a deleted server's storage.
pub(crate) const FENCE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// The pause before the next fence attempt after `attempts` claims of the
/// operation: 2 s, doubling, at most [`FENCE_RETRY_MAX`].
fn fence_retry_delay(attempts: i64) -> std::time::Duration {
    let shift = u32::try_from(attempts.clamp(1, 5) - 1).unwrap_or(0);
    std::time::Duration::from_secs(2u64 << shift).min(FENCE_RETRY_MAX)
}

/// The path a delete takes and why, as decided from the host's lease.
struct Decision {
    path: DeletePath,
    why: String,
    /// The same reason as counted in `stratus_deletes_total`; `None` on a
    /// resumed attempt, whose path an earlier attempt committed and counted.
    counted: Option<Counted>,
    /// The host's service row, on the remote path.
    svc: Option<ServiceRow>,
}

/// A delete path as the metrics count it (the reason, not only local or remote).
type Counted = stratus_metrics::DeletePath;

/// The counted path of a terminate the host did not complete.
fn escalation(f: &CmdFailure) -> Counted {
    match f {
        CmdFailure::NoResponders => Counted::NoResponder,
        CmdFailure::AckTimeout(_) | CmdFailure::ResultTimeout(_) => Counted::Deadline,
        CmdFailure::Refused(_) => Counted::Refused,
        CmdFailure::Failed(_) => Counted::HostFailed,
        CmdFailure::Bus(_) => Counted::BusDown,
    }
}

/// What one attempt carries from step to step.
struct Run<'a> {
    op: &'a OperationRow,
    cx: &'a StepCx,
    server: &'a ServerRow,
    start: NewNotification,
    events: Vec<EventFinish>,
}

#[async_trait]
impl Handler for DeleteServer {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let (server, moving, attached) = ds.server_delete_view(&op.server_id).await?;
        if server.deleted {
            // Resumed after the release step: make sure the end notification exists (idempotent).
            let publisher =
                server.host.as_deref().map(|h| format!("nova-compute:{h}")).unwrap_or_else(|| "nova-api".into());
            notify::record(ds, &server, &op.id, "instance.delete.end", &publisher).await?;
            ds.event_finish_open(&server.id, &op.request_id, "completed after the controller resumed the operation")
                .await?;
            return Ok(Outcome::Done);
        }
        if let Err(e) = crate::params::decode::<crate::params::NoParams>(op) {
            return s.bad_params(op, e).await; // the task is cleared: a new DELETE starts afresh
        }
        let completed: Option<DeleteStep> = cx.completed();
        let start = notify::build(ds, &server, &op.id, "instance.delete.start", "nova-api");
        let mut moves: VecDeque<MigrationRow> =
            if moving { ds.migration_open_for_server(&server.id).await?.into() } else { VecDeque::new() };
        let snapshot = server.shelved_image_id.is_some() && !cx.done(DeleteStep::DeleteShelveSnapshot);
        if snapshot || !moves.is_empty() {
            ds.notification_record(&start.dedup_key, &start.event_type, &start.publisher_id, &start.payload).await?;
        }
        let facts = DeleteFacts { open_migrations: moves.len(), shelve_snapshot: snapshot, volumes: attached };
        let mut decision = match committed_path(completed) {
            Some(path) => {
                let why = format!("the operation resumed after its {} step", completed.map_or("", |c| c.as_str()));
                Decision { path, why, counted: None, svc: None }
            }
            None => self.decide(&server).await?,
        };
        let mut run = Run { op, cx, server: &server, start, events: Vec::new() };
        if decision.path == DeletePath::Remote && completed == Some(DeleteStep::Terminate) {
            let host = server.host.clone().unwrap_or_default();
            let detail = format!("path=remote: VM destroyed on {host} before {}", decision.why);
            run.events.push((EV_TERMINATE.into(), true, detail));
        }
        let mut plan: VecDeque<DeleteStep> = remaining(&delete_plan(decision.path, facts), completed).into();
        while let Some(step) = plan.pop_front() {
            match step {
                DeleteStep::CleanMigration => {
                    if let Some(m) = moves.pop_front() {
                        self.clean_move(&run, m).await?;
                    }
                }
                DeleteStep::DeleteShelveSnapshot => self.delete_snapshot(&run).await?,
                DeleteStep::Terminate => {
                    let Some(svc) = decision.svc.clone() else { continue };
                    if let Err((why, counted)) = self.terminate(&mut run, &svc).await? {
                        // Escalate: the local path's steps replace the rest of the plan.
                        plan = remaining(&delete_plan(DeletePath::Local, facts), Some(DeleteStep::Terminate)).into();
                        decision = Decision { path: DeletePath::Local, why, counted: Some(counted), svc: None };
                    }
                }
                DeleteStep::LocalDelete => self.local_delete(&run, &decision).await?,
                DeleteStep::Fence => {
                    if let Some(retry) = self.fence(&mut run, None).await? {
                        return Ok(retry);
                    }
                }
                DeleteStep::Volumes => {
                    if decision.path == DeletePath::Remote {
                        let hosts = crate::storage::hosts_to_fence(&self.0, &server, server.host.as_deref()).await?;
                        if !hosts.is_empty()
                            && let Some(retry) = self.fence(&mut run, Some(&hosts)).await?
                        {
                            return Ok(retry);
                        }
                    }
                    self.volumes(&mut run).await?
                }
                DeleteStep::Release => {
                    if decision.path != DeletePath::Remote {
                        run.events.push((EV_LOCAL.into(), true, format!("path=local: {}", decision.why)));
                    }
                    return self.release(run).await;
                }
            }
        }
        Ok(Outcome::Done) // unreachable: every plan ends with the release
    }
}

impl DeleteServer {
    /// Choose the path from the server row and its host's lease.
    async fn decide(&self, server: &ServerRow) -> Result<Decision, OpError> {
        let ds = &self.0.ds;
        let local = |path, why: String, counted| Ok(Decision { path, why, counted: Some(counted), svc: None });
        let Some(host) = server.host.clone() else {
            return if server.vm_state == VmState::ShelvedOffloaded {
                let why = "server is shelved offloaded; no VM runs anywhere";
                local(DeletePath::Unplaced, why.into(), Counted::ShelvedOffloaded)
            } else {
                let why = "server was never scheduled to a host; nothing runs anywhere";
                local(DeletePath::Unplaced, why.into(), Counted::NeverScheduled)
            };
        };
        let svc = match ds.service_get_by_host(&host).await {
            Ok(svc) => svc,
            Err(stratus_db::DbError::NotFound { .. }) => {
                return local(DeletePath::Local, format!("host {host} has no service record"), Counted::UnknownHost);
            }
            Err(e) => return Err(e.into()),
        };
        if !svc.is_up() {
            return if svc.forced_down {
                local(DeletePath::Local, format!("host {host} is forced down"), Counted::ForcedDown)
            } else {
                let why = format!(
                    "host {host} is down (its lease lapsed; marked down at {})",
                    stratus_db::ts(svc.updated_at)
                );
                local(DeletePath::Local, why, Counted::Down)
            };
        }
        Ok(Decision { path: DeletePath::Remote, why: String::new(), counted: Some(Counted::Remote), svc: Some(svc) })
    }

    /// Nova deletes the shelve snapshot first; a missing one is only a warning.
    async fn delete_snapshot(&self, run: &Run<'_>) -> Result<(), OpError> {
        let (ds, op, server) = (&self.0.ds, run.op, run.server);
        let Some(img) = &server.shelved_image_id else { return Ok(()) };
        run.cx.step(DeleteStep::DeleteShelveSnapshot).await?;
        let detail = match self.0.images.delete_snapshot(&img.to_string()).await.map_err(image_failure)? {
            SnapshotRemoval::Deleted => format!("shelve snapshot {img} deleted"),
            SnapshotRemoval::AlreadyGone => format!("warning: shelve snapshot {img} was already gone"),
        };
        ds.event_start(&server.id, &op.request_id, "delete_shelve_snapshot", None).await?;
        ds.event_finish(&server.id, &op.request_id, "delete_shelve_snapshot", true, &detail).await?;
        run.cx.stepped(DeleteStep::DeleteShelveSnapshot).await
    }

    /// Remote path: terminate on the host. `Ok(Err((why, counted)))` when
    /// the host did not complete it (the delete escalates to the local path).
    async fn terminate(&self, run: &mut Run<'_>, svc: &ServiceRow) -> Result<Result<(), (String, Counted)>, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let (op, cx, server) = (run.op, run.cx, run.server);
        let host = svc.host.clone();
        let w = StepWrites {
            event_start: Some((server.id, op.request_id.clone(), EV_TERMINATE.into(), Some(host.clone()))),
            notification: Some(run.start.clone()),
        };
        cx.step_with(DeleteStep::Terminate, &w).await?;
        let d = Deadlines { ack: s.cfg.terminate_ack_timeout, result: s.cfg.terminate_timeout.min(s.cfg.lease_ttl) };
        let r = s
            .run_command_at(svc, &op.id, (&server.id, server.generation), CommandKind::Terminate, d, Some(&cx.wake))
            .await;
        // An agent that has just rejoined refuses the epoch we read: re-read
        // its service row and try once more before treating it as gone.
        let r = match r {
            Err(crate::controller::CmdFailure::Refused(why)) => match ds.service_get_by_host(&host).await {
                Ok(fresh) if fresh.epoch != svc.epoch && fresh.is_up() => {
                    info!(server = %server.id, host = %host, reason = %why, "agent rejoined meanwhile; re-sending terminate with its new epoch");
                    s.run_command_at(
                        &fresh,
                        &op.id,
                        (&server.id, server.generation),
                        CommandKind::Terminate,
                        d,
                        Some(&cx.wake),
                    )
                    .await
                }
                _ => Err(crate::controller::CmdFailure::Refused(why)),
            },
            r => r,
        };
        match r {
            Ok(t) => {
                let details = format!(
                    "path=remote: {host} up at epoch {}; acknowledged in {} ms, VM destroyed in {} ms (host reported {} ms)",
                    svc.epoch, t.ack_ms, t.total_ms, t.result.elapsed_ms
                );
                cx.stepped(DeleteStep::Terminate).await?;
                s.metrics.deleted(Counted::Remote);
                run.events.push((EV_TERMINATE.into(), true, details));
                Ok(Ok(()))
            }
            Err(f) => {
                warn!(server = %server.id, host = %host, reason = %f, "terminate did not complete on the host; escalating to local delete");
                let why = format!("terminate on {host}: {f}");
                run.events.push((EV_TERMINATE.into(), false, why.clone()));
                Ok(Err((why, escalation(&f))))
            }
        }
    }

    /// A resize awaiting confirmation is confirmed first (the source copy is
    /// destroyed), and a move in progress has its other host cleaned, so no
    /// copy of the server is left on any host.
    async fn clean_move(&self, run: &Run<'_>, m: MigrationRow) -> Result<(), OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let (op, cx, server) = (run.op, run.cx, run.server);
        cx.step(DeleteStep::CleanMigration).await?;
        let finished = m.status == MigrationStatus::Finished;
        let event = if finished { "compute_confirm_resize" } else { "controller_abort_migration" };
        ds.event_start(&server.id, &op.request_id, event, None).await?;
        let mut details = Vec::new();
        for h in [Some(m.source_host.clone()), m.dest_host.clone()].into_iter().flatten() {
            if Some(&h) == server.host.as_ref() {
                continue;
            }
            let d =
                Deadlines { ack: s.cfg.terminate_ack_timeout, result: s.cfg.terminate_timeout.min(s.cfg.lease_ttl) };
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
        let status = if finished { MigrationStatus::Confirmed } else { MigrationStatus::Error };
        ds.migration_set(m.id, status, None).await?;
        ds.event_finish(&server.id, &op.request_id, event, true, &details.join("; ")).await?;
        cx.stepped(DeleteStep::CleanMigration).await
    }

    /// Local delete: the controller releases everything itself. The VM may
    /// still run on its host, so a zombie keeps the host's capacity reserved
    /// until the host's agent reports the VM gone (it reaps it when it
    /// rejoins: its inventory no longer lists the server).
    async fn local_delete(&self, run: &Run<'_>, decision: &Decision) -> Result<(), OpError> {
        let (op, cx, server) = (run.op, run.cx, run.server);
        let why = decision.why.as_str();
        let w = StepWrites {
            event_start: Some((server.id, op.request_id.clone(), EV_LOCAL.into(), None)),
            notification: Some(run.start.clone()),
        };
        cx.step_with(DeleteStep::LocalDelete, &w).await?;
        info!(server = %server.id, reason = why, "local delete");
        if let Some(host) = server.host.as_deref().filter(|h| !h.is_empty()) {
            // The VM may still run there: record the zombie before anything
            // else, so its capacity stays reserved and no fence is lifted
            // until the host reports the VM gone.
            self.0.record_zombie(server, host, why).await?;
        }
        cx.stepped(DeleteStep::LocalDelete).await?;
        // The path is committed (a resumed attempt keeps it): count it once.
        if let Some(c) = decision.counted {
            self.0.metrics.deleted(c);
        }
        Ok(())
    }

    /// Fence first: no volume is released while a client that may still run
    /// (a zombie VM) could write to it. `Some(retry)` if fencing failed.
    ///
    /// When the fence cannot be applied (the storage backend unreachable or
    /// refusing), the delete waits: safety over promptness. The volumes stay
    /// attached, the server stays `deleting` (not 404: a user who saw the
    /// delete succeed must not have a VM still writing their data), and the
    /// operator is told three ways: an error in the log, the
    /// `stratus_fence_failures_total` counter, and the open
    /// `controller_fence_storage` event of the server's delete action, whose
    /// details say since when and why (the backend's own words stay in the
    /// log and the operation's `last_error`). The fence is retried with
    /// backoff (2 s doubling to [`FENCE_RETRY_MAX`]), so the delete finishes
    /// on its own within that much of the storage coming back.
    async fn fence(&self, run: &mut Run<'_>, hosts: Option<&[String]>) -> Result<Option<Outcome>, OpError> {
        let (cx, server, op) = (run.cx, run.server, run.op);
        // On the remote path the fence belongs to the volumes step (the
        // plan's own fence step is the local path's).
        let local = hosts.is_none();
        if local {
            cx.step(DeleteStep::Fence).await?;
        }
        match crate::storage::fence_server(&self.0, server, hosts).await? {
            Ok(lines) if !lines.is_empty() => run.events.push((EV_FENCE.into(), true, lines.join("; "))),
            Ok(_) => {}
            Err(f) => {
                let after = fence_retry_delay(op.attempts);
                self.0.metrics.fence_failed();
                error!(server = %server.id, attempt = op.attempts, retry_in_s = after.as_secs(), error = %f.detail,
                       "cannot fence the server's storage clients: the delete waits with the volumes attached; restore the storage backend");
                let note = format!(
                    "storage fence failed at {} (attempt {}): {}; the volumes stay attached and the delete retries in {} s",
                    stratus_db::ts(self.0.ds.clock().now()),
                    op.attempts,
                    f.public,
                    after.as_secs()
                );
                self.0.ds.event_note(&server.id, &op.request_id, EV_FENCE, &note).await?;
                return Ok(Some(Outcome::Retry(RetryReason::Fence(f.detail), after)));
            }
        }
        if local {
            cx.stepped(DeleteStep::Fence).await?;
        }
        Ok(None)
    }

    /// Detach the server's volumes and delete the `delete_on_termination` ones.
    async fn volumes(&self, run: &mut Run<'_>) -> Result<(), OpError> {
        let (cx, server) = (run.cx, run.server);
        cx.step(DeleteStep::Volumes).await?;
        let lines = crate::storage::release_volumes(&self.0, server).await?;
        run.events.push((EV_VOLUMES.into(), true, lines.join("; ")));
        cx.stepped(DeleteStep::Volumes).await
    }

    /// Release ports, mark the server deleted (quota usage drops with it),
    /// finish the events, emit `instance.delete.end` and close the operation,
    /// in one transaction.
    async fn release(&self, run: Run<'_>) -> Result<Outcome, OpError> {
        let ds = &self.0.ds;
        let (op, cx, server) = (run.op, run.cx, run.server);
        // No step write of its own: the release transaction checks the claim
        // itself (one write transaction fewer per delete).
        cx.before(DeleteStep::Release)?;
        if cx.completed::<DeleteStep>().is_some() {
            // Events an earlier attempt started on a path this one did not retrace.
            ds.event_finish_open(&server.id, &op.request_id, "completed after the controller resumed the operation")
                .await?;
        }
        let host = server.host.clone().unwrap_or_default();
        let publisher = if host.is_empty() { "nova-api".to_string() } else { format!("nova-compute:{host}") };
        let mut gone = server.clone();
        gone.deleted_at = Some(ds.clock().now());
        let end = notify::build(ds, &gone, &op.id, "instance.delete.end", &publisher);
        if !ds.server_delete_finish(&op.id, cx.worker(), &server.id, &op.request_id, &run.events, &end).await? {
            return Err(OpError::ClaimLost);
        }
        cx.after(DeleteStep::Release)?;
        info!(server = %server.id, "server deleted");
        Ok(Outcome::Closed)
    }
}
