//! The create operation: schedule, spawn on the chosen host, go ACTIVE.
//!
//! Every state write is a compare-and-swap that never applies to a server
//! being deleted, so a delete that arrives mid-build always wins: this
//! operation then simply stops (the delete's terminate preempts the spawn).

use crate::compute_api::VolumeBdm;
use crate::controller::{CmdFailure, Deadlines, Shared};
use crate::{notify, scheduler};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use stratus_db::{Cas, ServerRow, Transition, fault_json};
use stratus_ops::{Failure, Handler, OpError, Outcome, RetryReason, StepCx};
use stratus_types::agent::CommandKind;
use stratus_types::{PowerState, TaskState, VmState};

/// Picks in a row that may find their host filled by another controller
/// before a build gives up with "no valid host".
const PLACEMENT_RACES: usize = 8;
use tracing::{info, warn};

pub(crate) struct CreateServer(pub Arc<Shared>);

stratus_ops::steps!(
    /// The steps of a build, in order (schedule and spawn repeat when a host
    /// does not take the build).
    pub(crate) enum CreateStep {
        /// Create the volumes a boot-from-volume server boots from.
        PrepareVolumes => "prepare_volumes",
        /// Pick a host and record it (a compare-and-swap from `scheduling`).
        Schedule => "schedule",
        /// Spawn on the host, attach the volumes, go ACTIVE.
        Spawn => "spawn",
    }
);

const EV_SCHEDULE: &str = "conductor_schedule_and_build_instances";
const EV_BUILD: &str = "compute__do_build_and_run_instance";
const NO_VALID_HOST: &str = "No valid host was found. There are not enough hosts available.";

fn being_deleted(s: &ServerRow) -> bool {
    s.deleted || s.task_state == Some(TaskState::Deleting)
}

#[async_trait]
impl Handler for CreateServer {
    async fn run(&self, op: &stratus_db::OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let mut server = ds.server_get_any(&op.server_id).await?;
        if being_deleted(&server) {
            return Ok(Outcome::Done);
        }
        notify::record(ds, &server, &op.id, "instance.create.start", "nova-api").await?;
        let (bdms, requested_host): (Vec<VolumeBdm>, Option<String>) =
            match crate::params::decode::<crate::params::CreateParams>(op) {
                Ok(p) => (p.volumes, p.requested_host),
                Err(e) => return self.fail(op, &server, &e, EV_SCHEDULE).await,
            };
        if bdms.iter().any(|b| b.image_id.is_some() || b.snapshot_id.is_some()) && !cx.done(CreateStep::PrepareVolumes)
        {
            cx.step(CreateStep::PrepareVolumes).await?;
            if let Err(e) = self.prepare_volumes(&server, &bdms).await {
                return self
                    .fail(
                        op,
                        &server,
                        &format!("Build of instance {} aborted: volume preparation failed: {e}", server.id),
                        EV_SCHEDULE,
                    )
                    .await;
            }
            cx.stepped(CreateStep::PrepareVolumes).await?;
        }
        let mut excluded: Vec<String> = Vec::new();
        for attempt in 1..=s.cfg.max_schedule_attempts {
            if server.task_state == Some(TaskState::Scheduling) || server.host.is_none() {
                cx.step(CreateStep::Schedule).await?;
                ds.event_start(&server.id, &op.request_id, EV_SCHEDULE, None).await?;
                // Pick, then place with the host's room counted again in the
                // placing transaction: another controller may have taken the
                // slot since the pick (the in-process lock only orders this
                // controller's own builds). A host found full is picked again.
                let guard = s.sched_lock.lock().await;
                let mut placed = None;
                for _ in 0..PLACEMENT_RACES {
                    let Some(svc) = scheduler::pick(s, &server, &excluded, requested_host.as_deref()).await? else {
                        break;
                    };
                    let t = Transition {
                        from_task: Some(Some(TaskState::Scheduling)),
                        host: Some(Some(svc.host.clone())),
                        task: Some(Some(TaskState::Spawning)),
                        ..Default::default()
                    };
                    let cap =
                        stratus_db::HostCapacity { vcpus: svc.vcpus, memory_mb: svc.memory_mb, disk_gb: svc.disk_gb };
                    let need = (server.vcpus, server.ram_mb, server.disk_gb + server.ephemeral_gb);
                    if let Some(cas) = ds.server_place(&server.id, &t, &svc.host, cap, need).await? {
                        placed = Some((svc, cas));
                        break;
                    }
                    tracing::info!(server = %server.id, host = %svc.host, "host filled up since it was picked; picking again");
                }
                drop(guard);
                let Some((svc, cas)) = placed else {
                    return self.fail(op, &server, NO_VALID_HOST, EV_SCHEDULE).await;
                };
                let placed_on = match cas {
                    Cas::Updated | Cas::AlreadySo => svc.host.clone(),
                    Cas::Conflict => {
                        let cur = ds.server_get_any(&op.server_id).await?;
                        match (&cur.host, cur.task_state) {
                            _ if being_deleted(&cur) => return Ok(Outcome::Done),
                            // An earlier attempt of this same operation (one
                            // whose claim lapsed while it still ran) placed
                            // it first, on another host: build there. Found
                            // by 1,000 builds on PostgreSQL with two
                            // controllers: this attempt used to finish the
                            // operation as if the server had been deleted,
                            // leaving it `spawning` for ever.
                            (Some(host), Some(TaskState::Spawning)) => host.clone(),
                            _ => return Err(OpError::ClaimLost),
                        }
                    }
                };
                ds.event_finish(
                    &server.id,
                    &op.request_id,
                    EV_SCHEDULE,
                    true,
                    &format!("host={placed_on} attempt={attempt}"),
                )
                .await?;
                cx.stepped(CreateStep::Schedule).await?;
                server = ds.server_get_any(&op.server_id).await?;
            }
            let Some(host) = server.host.clone() else { continue };
            cx.step(CreateStep::Spawn).await?;
            ds.event_start(&server.id, &op.request_id, EV_BUILD, Some(&host)).await?;
            let svc = ds.service_get_by_host(&host).await?;
            let boot = crate::boot::boot_spec(ds, &server, server.image_id, server.disk_gb).await?;
            let kind = CommandKind::Spawn {
                vcpus: server.vcpus,
                ram_mb: server.ram_mb,
                image_id: server.image_id,
                boot: Some(boot),
            };
            match s
                .run_command(
                    &svc,
                    &op.id,
                    &server.id,
                    kind,
                    Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.build_timeout },
                    None,
                )
                .await
            {
                Ok(timing) => {
                    for att in ds.attachment_list_for_server(&server.id).await? {
                        if att.status == stratus_types::AttachStatus::Attached {
                            continue;
                        }
                        let opened = match crate::op_volume::open_on_host(s, &op.id, &server, &att).await {
                            Ok(crate::op_volume::Opened::Here(_)) => Ok(()),
                            Ok(crate::op_volume::Opened::Stray) => {
                                Err("the server or its volume changed while the host opened it".to_string())
                            }
                            Err(e) => Err(e),
                        };
                        if let Err(e) = opened {
                            let cur = ds.server_get_any(&op.server_id).await?;
                            return self
                                .fail(
                                    op,
                                    &cur,
                                    &format!(
                                        "Build of instance {} aborted: attaching volume {} failed: {e}",
                                        server.id, att.volume_id
                                    ),
                                    EV_BUILD,
                                )
                                .await;
                        }
                    }
                    let t = Transition {
                        from_task: Some(Some(TaskState::Spawning)),
                        vm: Some(VmState::Active),
                        task: Some(None),
                        power: Some(PowerState::Running.code()),
                        launched: true,
                        ..Default::default()
                    };
                    match ds.server_transition(&server.id, &t).await? {
                        Cas::Updated | Cas::AlreadySo => {
                            ds.event_finish(
                                &server.id,
                                &op.request_id,
                                EV_BUILD,
                                true,
                                &format!("spawned on {host} in {} ms", timing.total_ms),
                            )
                            .await?;
                            let server = ds.server_get_any(&op.server_id).await?;
                            notify::record(ds, &server, &op.id, "instance.create.end", &format!("nova-compute:{host}"))
                                .await?;
                            info!(server = %server.id, host = %host, "server active");
                            cx.stepped(CreateStep::Spawn).await?;
                            return Ok(Outcome::Done);
                        }
                        Cas::Conflict => {
                            ds.event_finish(&server.id, &op.request_id, EV_BUILD, false, "server deleted during build")
                                .await?;
                            return Ok(Outcome::Done);
                        }
                    }
                }
                Err(f @ (CmdFailure::NoResponders | CmdFailure::AckTimeout(_) | CmdFailure::Refused(_))) => {
                    // The host never started the build: try another one.
                    warn!(server = %server.id, host = %host, reason = %f, "host did not take the build; rescheduling");
                    ds.event_finish(
                        &server.id,
                        &op.request_id,
                        EV_BUILD,
                        false,
                        &format!("host {host}: {f}; rescheduling"),
                    )
                    .await?;
                    excluded.push(host);
                    let t = Transition {
                        from_task: Some(Some(TaskState::Spawning)),
                        host: Some(None),
                        task: Some(Some(TaskState::Scheduling)),
                        ..Default::default()
                    };
                    if ds.server_transition(&server.id, &t).await? == Cas::Conflict {
                        return Ok(Outcome::Done);
                    }
                    server = ds.server_get_any(&op.server_id).await?;
                }
                Err(CmdFailure::Bus(e)) => {
                    return Ok(Outcome::Retry(RetryReason::Bus(e.to_string()), Duration::from_secs(1)));
                }
                Err(f) => {
                    let cur = ds.server_get_any(&op.server_id).await?;
                    if being_deleted(&cur) {
                        ds.event_finish(
                            &server.id,
                            &op.request_id,
                            EV_BUILD,
                            false,
                            "build stopped: server is being deleted",
                        )
                        .await?;
                        return Ok(Outcome::Done);
                    }
                    return self
                        .fail(op, &cur, &format!("Build of instance {} aborted: {f}", server.id), EV_BUILD)
                        .await;
                }
            }
        }
        let cur = ds.server_get_any(&op.server_id).await?;
        self.fail(
            op,
            &cur,
            &format!(
                "{NO_VALID_HOST} Exceeded max scheduling attempts {} for instance {}.",
                s.cfg.max_schedule_attempts, cur.id
            ),
            EV_SCHEDULE,
        )
        .await
    }
}

impl CreateServer {
    /// Create the volumes a boot-from-volume server boots from (idempotent:
    /// a mapping that already has its attachment is resumed, not made again).
    async fn prepare_volumes(&self, server: &ServerRow, bdms: &[VolumeBdm]) -> Result<(), String> {
        let s = &self.0;
        let volume = s.volume.as_ref().ok_or("no block storage backend is configured")?;
        // Faults are shown to the tenant: details of a failure go to the log.
        let public = |e: stratus_volume::VolumeError| {
            tracing::warn!(server = %server.id, error = %e, "volume preparation failed");
            e.tenant_message()
        };
        let existing = volume.attachments_of_server(&server.id).await.map_err(public)?;
        for (i, b) in bdms.iter().enumerate() {
            if b.image_id.is_none() && b.snapshot_id.is_none() {
                continue;
            }
            let device = crate::compute_api::device_name(i);
            if let Some(att) = existing.iter().find(|a| a.mountpoint.as_deref() == Some(device.as_str())) {
                // An earlier attempt recorded it: make sure its build finished.
                volume.finish_boot_volume(att).await.map_err(public)?;
                continue;
            }
            let boot = stratus_volume::BootVolume {
                server_id: server.id,
                project_id: server.project_id.clone(),
                user_id: server.user_id.clone(),
                size_gb: b.size_gb,
                image_id: b.image_id.clone(),
                snapshot_id: b.snapshot_id.clone(),
                mountpoint: device,
                delete_on_termination: b.delete_on_termination,
                boot_index: b.boot_index,
                volume_type_id: b.volume_type_id.clone(),
            };
            volume.create_boot_volume(&boot).await.map_err(public)?;
        }
        Ok(())
    }

    async fn fail(
        &self,
        op: &stratus_db::OperationRow,
        server: &ServerRow,
        message: &str,
        event: &str,
    ) -> Result<Outcome, OpError> {
        let ds = &self.0.ds;
        let t = Transition {
            vm: Some(VmState::Error),
            task: Some(None),
            fault: Some(fault_json(500, message, ds.clock().now())),
            ..Default::default()
        };
        if ds.server_transition(&server.id, &t).await? == Cas::Conflict {
            return Ok(Outcome::Done); // being deleted: nothing to report
        }
        ds.event_finish(&server.id, &op.request_id, event, false, message).await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.create.error", "nova-conductor").await?;
        Ok(Outcome::Failed(Failure::Step(message.to_string())))
    }
}
