//! Multi-step lifecycle operations: shelve / shelve offload / unshelve,
//! resize and cold migration with confirm and revert, evacuate, and
//! snapshots. Each step is idempotent and every state write is a
//! compare-and-swap that a delete always wins; a delete that arrives mid-way
//! cleans every host the server may have a VM on (see `op_delete`).

use crate::controller::{Deadlines, Shared, image_failure};
use crate::{notify, scheduler};
use async_trait::async_trait;
use std::sync::Arc;
use stratus_db::{Cas, FlavorRow, MigrationRow, OperationRow, ServerRow, Transition, fault_json};
use stratus_image::{SnapshotRecord, SnapshotSpec};
use stratus_ops::{Failure, Handler, OpError, Outcome, StepCx};
use stratus_types::agent::CommandKind;
use stratus_types::{ImageId, MigrationKind, MigrationStatus, OpKind, PowerState, TaskState, VmState};
use tracing::{info, warn};

pub(crate) struct Lifecycle(pub Arc<Shared>);

stratus_ops::steps!(
    /// Shelve (and shelve offload, which runs only the last step).
    pub(crate) enum ShelveStep {
        /// Take the shelve snapshot (its id is the operation id, so a retry finds it).
        Snapshot => "snapshot",
        /// Power the VM off and mark the server shelved.
        PowerOff => "power_off",
        /// Destroy the VM on its host and drop the host.
        Offload => "offload",
    }
);

stratus_ops::steps!(
    /// Unshelve: power on where it is, or schedule and spawn from the snapshot.
    pub(crate) enum UnshelveStep {
        /// Shelved, not offloaded: power the VM on again.
        PowerOn => "power_on",
        /// Offloaded: pick a host.
        Schedule => "schedule",
        /// Offloaded: spawn from the shelve snapshot.
        Spawn => "spawn",
    }
);

stratus_ops::steps!(
    /// Resize and cold migration.
    pub(crate) enum ResizeStep {
        /// Pick a destination and record the migration.
        Schedule => "schedule",
        /// Power off the source, spawn on the destination, mark resized.
        Migrate => "migrate",
    }
);

stratus_ops::steps!(
    /// Confirm or revert a resize: one step each.
    pub(crate) enum ResizeFinishStep {
        /// Destroy the source copy.
        Confirm => "confirm",
        /// Destroy the destination copy and go back to the source.
        Revert => "revert",
    }
);

stratus_ops::steps!(
    /// Evacuation from a down host.
    pub(crate) enum EvacuateStep {
        /// Pick a destination, record the migration and the source's zombie.
        Schedule => "schedule",
        /// Spawn on the destination.
        Rebuild => "rebuild",
    }
);

stratus_ops::steps!(
    /// Rebuild in place: the VM made again from the new image on its host.
    pub(crate) enum RebuildStep {
        /// Destroy the VM on its host (its volumes stay attached).
        Destroy => "destroy",
        /// A volume-backed server (2.93): close its root volume on the
        /// host and write the new image into it.
        Reimage => "reimage",
        /// Spawn it from the new image, reopen its volumes, power it off
        /// again if it was stopped.
        Spawn => "spawn",
    }
);

stratus_ops::steps!(
    /// Snapshot a server into an image.
    pub(crate) enum ImageStep {
        /// Record the image.
        Snapshot => "snapshot",
    }
);

/// A migration of `server` from `source` to `dest` in progress, keeping the
/// source's allocation (old flavor sizes) until it is confirmed or reverted.
/// The server's own copy of its flavor's sizes, as a flavor row.
fn flavor_of(server: &ServerRow) -> FlavorRow {
    FlavorRow {
        id: server.flavor_id.clone(),
        name: server.flavor_name.clone(),
        vcpus: server.vcpus,
        ram_mb: server.ram_mb,
        disk_gb: server.disk_gb,
        ephemeral_gb: server.ephemeral_gb,
        swap_mb: server.swap_mb,
        rxtx_factor: 1.0,
        is_public: true,
        disabled: false,
        description: None,
    }
}

fn moving(server: &ServerRow, kind: MigrationKind, source: &str, dest: &str, new_flavor_id: &str) -> MigrationRow {
    MigrationRow {
        id: 0,
        server_id: server.id,
        kind,
        source_host: source.into(),
        dest_host: Some(dest.into()),
        old_flavor_id: server.flavor_id.clone(),
        new_flavor_id: new_flavor_id.into(),
        old_vcpus: server.vcpus,
        old_ram_mb: server.ram_mb,
        old_disk_gb: server.disk_gb + server.ephemeral_gb,
        old_vm_state: server.vm_state,
        status: MigrationStatus::Migrating,
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        uuid: String::new(),
        project_id: server.project_id.clone(),
        user_id: server.user_id.clone(),
        old_flavor: stratus_db::OldFlavor {
            old_flavor_name: Some(server.flavor_name.clone()),
            old_root_gb: Some(server.disk_gb),
            old_ephemeral_gb: Some(server.ephemeral_gb),
            old_swap_mb: Some(server.swap_mb),
        },
    }
}

impl Lifecycle {
    fn d(&self) -> Deadlines {
        Deadlines { ack: self.0.cfg.command_ack_timeout, result: self.0.cfg.power_timeout }
    }

    fn build_deadlines(&self) -> Deadlines {
        Deadlines { ack: self.0.cfg.command_ack_timeout, result: self.0.cfg.build_timeout }
    }

    /// Give the server back without a task, recording why the action failed.
    async fn abandon(
        &self,
        op: &OperationRow,
        server: &ServerRow,
        task: TaskState,
        event: &str,
        why: &str,
    ) -> Result<Outcome, OpError> {
        let ds = &self.0.ds;
        let tr = Transition {
            from_task: Some(Some(task)),
            task: Some(None),
            fault: Some(fault_json(500, why, ds.clock().now())),
            ..Default::default()
        };
        ds.server_transition(&server.id, &tr).await?;
        ds.event_finish(&server.id, &op.request_id, event, false, why).await?;
        warn!(server = %server.id, op = %op.kind, reason = why, "action failed");
        Ok(Outcome::Failed(Failure::Step(why.to_string())))
    }

    /// Record a snapshot of `server` through the image service (idempotent:
    /// a retried step finds the record its earlier attempt made).
    async fn snapshot(
        &self,
        server: &ServerRow,
        image_id: &ImageId,
        name: &str,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), OpError> {
        let spec = SnapshotSpec {
            id: *image_id,
            name: name.to_string(),
            owner_project_id: server.project_id.clone(),
            server_id: server.id,
            base_image_ref: server.image_id,
            min_disk: server.disk_gb,
            metadata,
        };
        if self.0.images.create_snapshot_record(&spec).await.map_err(image_failure)? == SnapshotRecord::AlreadyExists {
            info!(server = %server.id, image = %image_id, "snapshot already recorded by an earlier attempt");
        }
        Ok(())
    }

    /// Drop the shelve snapshot `image_id` on a path that no longer needs
    /// it (a failed or superseded shelve, a finished unshelve). Best effort:
    /// a leftover is reported by `stratus audit` and removed by `--repair`.
    async fn drop_snapshot(&self, server: &ServerRow, image_id: &ImageId) {
        if let Err(e) = self.0.images.delete_snapshot(&image_id.to_string()).await {
            warn!(server = %server.id, image = %image_id, error = %e, "could not delete the shelve snapshot");
        }
    }

    async fn shelve(&self, op: &OperationRow, cx: &StepCx, server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let event = "compute_shelve_instance";
        let Some(host) = server.host.clone() else {
            return self.abandon(op, &server, TaskState::Shelving, event, "server has no host").await;
        };
        // The operation id doubles as the snapshot id, so a retry finds its own snapshot.
        let snap_id = ImageId(op.id.0);
        if !cx.done(ShelveStep::Snapshot) {
            cx.step(ShelveStep::Snapshot).await?;
            notify::record(ds, &server, &op.id, "instance.shelve.start", &format!("nova-compute:{host}")).await?;
            ds.event_start(&server.id, &op.request_id, event, Some(&host)).await?;
            self.snapshot(&server, &snap_id, &format!("{}-shelved", server.name), serde_json::Map::new()).await?;
            cx.stepped(ShelveStep::Snapshot).await?;
        }
        cx.step(ShelveStep::PowerOff).await?;
        if let Err(e) = s.host_command(&op.id, &server.id, &host, CommandKind::PowerOff, self.d()).await {
            self.drop_snapshot(&server, &snap_id).await;
            return self.abandon(op, &server, TaskState::Shelving, event, &format!("power off on {host}: {e}")).await;
        }
        // The snapshot's bytes: the powered-off VM's root disk, copied by the
        // host into the image store (nothing for a fake VM or a volume-backed one).
        let capture = CommandKind::CaptureDisk { image_id: snap_id };
        if let Err(e) = s.host_command(&op.id, &server.id, &host, capture, self.build_deadlines()).await {
            self.drop_snapshot(&server, &snap_id).await;
            return self
                .abandon(op, &server, TaskState::Shelving, event, &format!("disk capture on {host}: {e}"))
                .await;
        }
        let captured = s.images.adopt_snapshot_bytes(&snap_id).await.map_err(image_failure)?;
        let offload_now = s.cfg.shelved_offload_time.is_some_and(|t| t.is_zero());
        let tr = Transition {
            from_task: Some(Some(TaskState::Shelving)),
            vm: Some(VmState::Shelved),
            power: Some(PowerState::Shutdown.code()),
            task: Some(if offload_now { Some(TaskState::ShelvingOffloading) } else { None }),
            shelved_image: Some(Some(snap_id)),
            ..Default::default()
        };
        if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
            self.drop_snapshot(&server, &snap_id).await;
            return Ok(Outcome::Done); // deleted meanwhile
        }
        ds.event_finish(
            &server.id,
            &op.request_id,
            event,
            true,
            &format!(
                "snapshot {} taken{}, VM powered off on {host}",
                op.id,
                if captured { " with the root disk's bytes" } else { "" }
            ),
        )
        .await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.shelve.end", &format!("nova-compute:{host}")).await?;
        cx.stepped(ShelveStep::PowerOff).await?;
        if offload_now { self.offload(op, cx, cur).await } else { Ok(Outcome::Done) }
    }

    async fn offload(&self, op: &OperationRow, cx: &StepCx, server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let event = "compute_shelve_offload_instance";
        let host = server.host.clone().unwrap_or_default();
        cx.step(ShelveStep::Offload).await?;
        notify::record(ds, &server, &op.id, "instance.shelve_offload.start", &format!("nova-compute:{host}")).await?;
        ds.event_start(&server.id, &op.request_id, event, Some(&host)).await?;
        let detail = match s.host_command(&op.id, &server.id, &host, CommandKind::Terminate, self.d()).await {
            Ok(_) => format!("VM destroyed on {host}"),
            Err(e) => {
                s.record_zombie(&server, &host, &format!("shelve offload: {e}")).await?;
                format!("VM on {host} not confirmed destroyed ({e}); kept as a zombie until the host reports it gone")
            }
        };
        let tr = Transition {
            from_task: Some(Some(TaskState::ShelvingOffloading)),
            vm: Some(VmState::ShelvedOffloaded),
            host: Some(None),
            power: Some(PowerState::NoState.code()),
            task: Some(None),
            ..Default::default()
        };
        if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
            return Ok(Outcome::Done);
        }
        ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.shelve_offload.end", &format!("nova-compute:{host}")).await?;
        cx.stepped(ShelveStep::Offload).await?;
        Ok(Outcome::Done)
    }

    async fn unshelve(&self, op: &OperationRow, cx: &StepCx, mut server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let event = "compute_unshelve_instance";
        notify::record(ds, &server, &op.id, "instance.unshelve.start", "nova-conductor").await?;
        ds.event_start(&server.id, &op.request_id, event, server.host.as_deref()).await?;
        let detail;
        if server.vm_state == VmState::Shelved {
            let host = server.host.clone().unwrap_or_default();
            cx.step(UnshelveStep::PowerOn).await?;
            if let Err(e) = s.host_command(&op.id, &server.id, &host, CommandKind::PowerOn, self.d()).await {
                return self
                    .abandon(op, &server, TaskState::Unshelving, event, &format!("power on on {host}: {e}"))
                    .await;
            }
            cx.stepped(UnshelveStep::PowerOn).await?;
            detail = format!("powered on again on {host}");
        } else {
            cx.step(UnshelveStep::Schedule).await?;
            if server.host.is_none() {
                let guard = s.sched_lock.lock().await;
                // An admin's unshelve to a host (2.91) considers only that host.
                let only: Option<String> = serde_json::from_str::<serde_json::Value>(&op.params)
                    .ok()
                    .and_then(|p| p["host"].as_str().map(str::to_string));
                let Some(svc) = scheduler::pick(s, &server, &[], only.as_deref()).await? else {
                    drop(guard);
                    return self
                        .abandon(
                            op,
                            &server,
                            TaskState::Unshelving,
                            event,
                            "No valid host was found. There are not enough hosts available.",
                        )
                        .await;
                };
                let tr = Transition {
                    from_task: Some(Some(TaskState::Unshelving)),
                    host: Some(Some(svc.host.clone())),
                    ..Default::default()
                };
                if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
                    return Ok(Outcome::Done);
                }
                drop(guard);
                server = ds.server_get_any(&server.id).await?;
            }
            cx.stepped(UnshelveStep::Schedule).await?;
            let host = server.host.clone().unwrap_or_default();
            if !cx.done(UnshelveStep::Spawn) {
                cx.step(UnshelveStep::Spawn).await?;
                let image = server.shelved_image_id.or(server.image_id);
                let boot = crate::boot::boot_spec(ds, &server, image, server.disk_gb).await?;
                let kind = CommandKind::Spawn {
                    vcpus: server.vcpus,
                    ram_mb: server.ram_mb,
                    image_id: image,
                    boot: Some(boot),
                };
                if let Err(e) = s.host_command(&op.id, &server.id, &host, kind, self.build_deadlines()).await {
                    let back = Transition {
                        from_task: Some(Some(TaskState::Unshelving)),
                        host: Some(None),
                        ..Default::default()
                    };
                    ds.server_transition(&server.id, &back).await?;
                    return self
                        .abandon(op, &server, TaskState::Unshelving, event, &format!("spawn on {host}: {e}"))
                        .await;
                }
                if let Err(e) = crate::op_volume::move_volumes(s, &op.id, &server.id, None, &host).await {
                    return self.abandon(op, &server, TaskState::Unshelving, event, &format!("volumes: {e}")).await;
                }
                cx.stepped(UnshelveStep::Spawn).await?;
            }
            detail = format!("spawned from the shelve snapshot on {host}");
        }
        let tr = Transition {
            from_task: Some(Some(TaskState::Unshelving)),
            vm: Some(VmState::Active),
            power: Some(PowerState::Running.code()),
            task: Some(None),
            shelved_image: Some(None),
            ..Default::default()
        };
        if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
            return Ok(Outcome::Done);
        }
        if let Some(img) = &server.shelved_image_id {
            self.drop_snapshot(&server, img).await;
        }
        ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.unshelve.end", "nova-conductor").await?;
        Ok(Outcome::Done)
    }

    async fn resize(&self, op: &OperationRow, cx: &StepCx, server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let p: crate::params::ResizeParams = match crate::params::decode(op) {
            Ok(p) => p,
            Err(e) => return s.bad_params(op, e).await,
        };
        let migrate = p.flavor_id.is_none();
        let event = if migrate { "compute_prep_migration" } else { "compute_prep_resize" };
        let new_flavor = match &p.flavor_id {
            Some(f) => ds.flavor_find(f).await?,
            // A cold migration keeps the server's own copy of its flavor
            // (which may have been deleted since the server was built).
            None => flavor_of(&server),
        };
        let Some(source) = server.host.clone() else {
            return self.abandon(op, &server, TaskState::ResizePrep, event, "server has no host").await;
        };
        ds.event_start(&server.id, &op.request_id, event, Some(&source)).await?;
        notify::record(ds, &server, &op.id, "instance.resize.start", &format!("nova-compute:{source}")).await?;
        // Resume: a migration this operation already started.
        let existing = ds.migration_open_for_server(&server.id).await?.into_iter().next();
        let migration = match existing {
            Some(m) => m,
            None => {
                cx.step(ResizeStep::Schedule).await?;
                let mut sized = server.clone();
                sized.vcpus = new_flavor.vcpus;
                sized.ram_mb = new_flavor.ram_mb;
                sized.disk_gb = new_flavor.disk_gb;
                let guard = s.sched_lock.lock().await;
                let Some(dest) = scheduler::pick(s, &sized, std::slice::from_ref(&source), p.host.as_deref()).await?
                else {
                    drop(guard);
                    return self
                        .abandon(
                            op,
                            &server,
                            TaskState::ResizePrep,
                            event,
                            "No valid host was found. No other host can take the server.",
                        )
                        .await;
                };
                let m = ds
                    .migration_create(&moving(
                        &server,
                        if migrate { MigrationKind::Migration } else { MigrationKind::Resize },
                        &source,
                        &dest.host,
                        &new_flavor.id,
                    ))
                    .await?;
                drop(guard);
                let tr = Transition {
                    from_task: Some(Some(TaskState::ResizePrep)),
                    task: Some(Some(TaskState::ResizeMigrating)),
                    ..Default::default()
                };
                if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
                    return Ok(Outcome::Done); // deleted meanwhile: the delete cleans both hosts
                }
                cx.stepped(ResizeStep::Schedule).await?;
                m
            }
        };
        let dest = migration.dest_host.clone().unwrap_or_default();
        cx.step(ResizeStep::Migrate).await?;
        let _ = s.host_command(&op.id, &server.id, &source, CommandKind::PowerOff, self.d()).await;
        // The destination boots the same disk: the source host copies the
        // powered-off VM's root disk into the image store under a transient
        // name, the destination builds its root disk from that copy, and the
        // copy goes once the spawn returned. A VM with no local root disk (a
        // volume-backed or fake one) copies nothing and boots as before.
        let carried = ImageId(op.id.0);
        let capture = CommandKind::CaptureDisk { image_id: carried };
        let disk_from = match s.host_command(&op.id, &server.id, &source, capture, self.build_deadlines()).await {
            Ok(_) if s.images.has_carried_disk(&carried) => Some(carried),
            Ok(_) => server.image_id,
            Err(e) => {
                warn!(server = %server.id, host = %source, error = %e, "root disk not captured; the destination boots from the image");
                server.image_id
            }
        };
        let boot = crate::boot::boot_spec(ds, &server, server.image_id, new_flavor.disk_gb).await?;
        let spawn = CommandKind::Spawn {
            vcpus: new_flavor.vcpus,
            ram_mb: new_flavor.ram_mb,
            image_id: disk_from,
            boot: Some(boot),
        };
        let spawned = s.host_command(&op.id, &server.id, &dest, spawn, self.build_deadlines()).await;
        if let Err(e) = s.images.remove_carried_disk(&carried).await {
            warn!(server = %server.id, error = %e, "could not remove the carried root disk copy");
        }
        let spawned = match spawned {
            Ok(_) if migration.old_vm_state == VmState::Stopped => {
                s.host_command(&op.id, &server.id, &dest, CommandKind::PowerOff, self.d()).await.map(|_| ())
            }
            r => r.map(|_| ()),
        };
        // The volumes follow the VM: closed on the (powered-off) source,
        // opened on the destination.
        let spawned = match spawned {
            Ok(()) => crate::op_volume::move_volumes(s, &op.id, &server.id, Some(&source), &dest).await.map(|_| ()),
            e => e,
        };
        if let Err(e) = spawned {
            let _ = s.host_command(&op.id, &server.id, &dest, CommandKind::Terminate, self.d()).await;
            if let Err(e) = crate::op_volume::move_volumes(s, &op.id, &server.id, None, &source).await {
                warn!(server = %server.id, host = %source, error = %e, "could not reopen the volumes on the source");
            }
            if migration.old_vm_state == VmState::Active {
                let _ = s.host_command(&op.id, &server.id, &source, CommandKind::PowerOn, self.d()).await;
            }
            ds.migration_set(migration.id, MigrationStatus::Error, None).await?;
            let back = Transition {
                from_task: Some(Some(TaskState::ResizeMigrating)),
                task: Some(Some(TaskState::ResizePrep)),
                ..Default::default()
            };
            ds.server_transition(&server.id, &back).await?;
            return self.abandon(op, &server, TaskState::ResizePrep, event, &format!("spawn on {dest}: {e}")).await;
        }
        let power = if migration.old_vm_state == VmState::Stopped { PowerState::Shutdown } else { PowerState::Running };
        let tr = Transition {
            from_task: Some(Some(TaskState::ResizeMigrating)),
            vm: Some(VmState::Resized),
            task: Some(None),
            host: Some(Some(dest.clone())),
            flavor: Some(new_flavor),
            power: Some(power.code()),
            ..Default::default()
        };
        if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
            return Ok(Outcome::Done);
        }
        ds.migration_set(migration.id, MigrationStatus::Finished, None).await?;
        ds.event_finish(
            &server.id,
            &op.request_id,
            event,
            true,
            &format!("moved from {source} to {dest}; awaiting confirm or revert"),
        )
        .await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.resize.end", &format!("nova-compute:{dest}")).await?;
        cx.stepped(ResizeStep::Migrate).await?;
        Ok(Outcome::Done)
    }

    async fn confirm_or_revert(
        &self,
        op: &OperationRow,
        cx: &StepCx,
        server: ServerRow,
        confirm: bool,
    ) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let (task, event, step) = if confirm {
            (TaskState::ResizeConfirming, "compute_confirm_resize", ResizeFinishStep::Confirm)
        } else {
            (TaskState::ResizeReverting, "compute_revert_resize", ResizeFinishStep::Revert)
        };
        let Some(m) =
            ds.migration_open_for_server(&server.id).await?.into_iter().find(|m| m.status == MigrationStatus::Finished)
        else {
            return self.abandon(op, &server, task, event, "no resize awaiting confirmation").await;
        };
        let dest = m.dest_host.clone().unwrap_or_default();
        ds.event_start(&server.id, &op.request_id, event, Some(&dest)).await?;
        cx.step(step).await?;
        let old_vm: VmState = m.old_vm_state;
        let tr = if confirm {
            let detail =
                match s.host_command(&op.id, &server.id, &m.source_host, CommandKind::Terminate, self.d()).await {
                    Ok(_) => format!("source VM destroyed on {}", m.source_host),
                    Err(e) => {
                        s.record_zombie_sized(
                            &server.id,
                            &m.source_host,
                            m.old_vcpus,
                            m.old_ram_mb,
                            m.old_disk_gb,
                            &format!("resize confirm: {e}"),
                        )
                        .await?;
                        format!("source VM on {} not confirmed destroyed ({e}); kept as a zombie", m.source_host)
                    }
                };
            ds.migration_set(m.id, MigrationStatus::Confirmed, None).await?;
            ds.event_finish(&server.id, &op.request_id, event, true, &detail).await?;
            Transition { from_task: Some(Some(task)), vm: Some(old_vm), task: Some(None), ..Default::default() }
        } else {
            if let Err(e) = s.host_command(&op.id, &server.id, &dest, CommandKind::Terminate, self.d()).await {
                s.record_zombie(&server, &dest, &format!("resize revert: {e}")).await?;
            }
            if let Err(e) = crate::op_volume::move_volumes(s, &op.id, &server.id, None, &m.source_host).await {
                return self.abandon(op, &server, task, event, &format!("volumes on {}: {e}", m.source_host)).await;
            }
            if old_vm == VmState::Active
                && let Err(e) = s.host_command(&op.id, &server.id, &m.source_host, CommandKind::PowerOn, self.d()).await
            {
                return self.abandon(op, &server, task, event, &format!("power on on {}: {e}", m.source_host)).await;
            }
            // The server's own copy of its old flavor (the flavor itself
            // may be gone); rows older than that copy read the flavor.
            let old_flavor = match m.old_flavor_row() {
                Some(f) => f,
                None => ds.flavor_find(&m.old_flavor_id).await?,
            };
            ds.migration_set(m.id, MigrationStatus::Reverted, None).await?;
            ds.event_finish(&server.id, &op.request_id, event, true, &format!("back on {}", m.source_host)).await?;
            let power = if old_vm == VmState::Active { PowerState::Running } else { PowerState::Shutdown };
            Transition {
                from_task: Some(Some(task)),
                vm: Some(old_vm),
                task: Some(None),
                host: Some(Some(m.source_host.clone())),
                flavor: Some(old_flavor),
                power: Some(power.code()),
                ..Default::default()
            }
        };
        ds.server_transition(&server.id, &tr).await?;
        cx.stepped(step).await?;
        Ok(Outcome::Done)
    }

    async fn evacuate(&self, op: &OperationRow, cx: &StepCx, mut server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let p: crate::params::EvacuateParams = match crate::params::decode(op) {
            Ok(p) => p,
            Err(e) => return s.bad_params(op, e).await,
        };
        let event = "compute_rebuild_instance";
        let source = server.host.clone().unwrap_or_default();
        ds.event_start(&server.id, &op.request_id, event, None).await?;
        let existing =
            ds.migration_open_for_server(&server.id).await?.into_iter().find(|m| m.kind == MigrationKind::Evacuation);
        let m = match existing {
            Some(m) => m,
            None => {
                cx.step(EvacuateStep::Schedule).await?;
                let guard = s.sched_lock.lock().await;
                let Some(dest) = scheduler::pick(s, &server, std::slice::from_ref(&source), p.host.as_deref()).await?
                else {
                    drop(guard);
                    return self
                        .abandon(
                            op,
                            &server,
                            TaskState::Rebuilding,
                            event,
                            "No valid host was found for the evacuation.",
                        )
                        .await;
                };
                let m = ds
                    .migration_create(&moving(
                        &server,
                        MigrationKind::Evacuation,
                        &source,
                        &dest.host,
                        &server.flavor_id,
                    ))
                    .await?;
                // The source may still run the VM: keep its capacity until it reports it gone.
                s.record_zombie(&server, &source, "evacuated from a down host").await?;
                let tr = Transition {
                    from_task: Some(Some(TaskState::Rebuilding)),
                    host: Some(Some(dest.host.clone())),
                    ..Default::default()
                };
                let cas = ds.server_transition(&server.id, &tr).await?;
                drop(guard);
                if cas == Cas::Conflict {
                    return Ok(Outcome::Done);
                }
                cx.stepped(EvacuateStep::Schedule).await?;
                server = ds.server_get_any(&server.id).await?;
                m
            }
        };
        let dest = m.dest_host.clone().unwrap_or_default();
        cx.step(EvacuateStep::Rebuild).await?;
        // The copy on the down host may still run and write: fence its
        // storage clients before any other host opens the volumes (the
        // fences are lifted once that host rejoins and reaps it).
        let mut fenced = Vec::new();
        if let Some(volumes) = s.volume.as_ref() {
            match volumes.fence_server(&server.id).await {
                Ok(lines) => fenced = lines,
                Err(e) => {
                    ds.event_finish(&server.id, &op.request_id, event, false, &format!("fencing the source: {e}"))
                        .await?;
                    return Err(crate::storage::op_error(e));
                }
            }
        }
        let boot = crate::boot::boot_spec(ds, &server, server.image_id, server.disk_gb).await?;
        let spawn = CommandKind::Spawn {
            vcpus: server.vcpus,
            ram_mb: server.ram_mb,
            image_id: server.image_id,
            boot: Some(boot),
        };
        if let Err(e) = s.host_command(&op.id, &server.id, &dest, spawn, self.build_deadlines()).await {
            ds.migration_set(m.id, MigrationStatus::Error, None).await?;
            let tr = Transition {
                from_task: Some(Some(TaskState::Rebuilding)),
                vm: Some(VmState::Error),
                task: Some(None),
                fault: Some(fault_json(500, &format!("evacuation to {dest} failed: {e}"), ds.clock().now())),
                ..Default::default()
            };
            ds.server_transition(&server.id, &tr).await?;
            ds.event_finish(&server.id, &op.request_id, event, false, &format!("spawn on {dest}: {e}")).await?;
            return Ok(Outcome::Failed(Failure::Step(e)));
        }
        let opened = match crate::op_volume::move_volumes(s, &op.id, &server.id, None, &dest).await {
            Ok(lines) => lines,
            Err(e) => {
                ds.event_finish(&server.id, &op.request_id, event, false, &format!("volumes on {dest}: {e}")).await?;
                return Ok(Outcome::Failed(Failure::Step(e)));
            }
        };
        fenced.extend(opened);
        // A stopped server (or any, from 2.95) ends stopped at the destination;
        // if the power-off fails, the state says what runs: active.
        let stopped = p.stopped
            && match s.host_command(&op.id, &server.id, &dest, CommandKind::PowerOff, self.d()).await {
                Ok(_) => true,
                Err(e) => {
                    warn!(server = %server.id, host = %dest, error = %e, "evacuated VM not powered off");
                    false
                }
            };
        let (vm, power) =
            if stopped { (VmState::Stopped, PowerState::Shutdown) } else { (VmState::Active, PowerState::Running) };
        let tr = Transition {
            from_task: Some(Some(TaskState::Rebuilding)),
            vm: Some(vm),
            task: Some(None),
            power: Some(power.code()),
            ..Default::default()
        };
        ds.server_transition(&server.id, &tr).await?;
        ds.migration_set(m.id, MigrationStatus::Done, None).await?;
        ds.event_finish(
            &server.id,
            &op.request_id,
            event,
            true,
            &format!(
                "rebuilt on {dest}; {source} reaps its copy when it rejoins{}{}",
                if fenced.is_empty() { "" } else { "; " },
                fenced.join("; ")
            ),
        )
        .await?;
        cx.stepped(EvacuateStep::Rebuild).await?;
        info!(server = %server.id, from = %source, to = %dest, "evacuated");
        Ok(Outcome::Done)
    }

    async fn rebuild(&self, op: &OperationRow, cx: &StepCx, server: ServerRow) -> Result<Outcome, OpError> {
        let (s, ds) = (&self.0, &self.0.ds);
        let p: crate::params::RebuildParams = match crate::params::decode(op) {
            Ok(p) => p,
            Err(e) => return s.bad_params(op, e).await,
        };
        let event = "compute_rebuild_instance";
        let Some(host) = server.host.clone() else {
            return self.abandon(op, &server, TaskState::Rebuilding, event, "the server has no host").await;
        };
        ds.event_start(&server.id, &op.request_id, event, Some(&host)).await?;
        notify::record(ds, &server, &op.id, "instance.rebuild.start", "nova-compute").await?;
        if !cx.done(RebuildStep::Destroy) {
            cx.step(RebuildStep::Destroy).await?;
            if let Err(e) = s.host_command(&op.id, &server.id, &host, CommandKind::Terminate, self.d()).await {
                return self
                    .abandon(op, &server, TaskState::Rebuilding, event, &format!("destroy on {host}: {e}"))
                    .await;
            }
            // The host tombstones the server's spawns up to the terminate's
            // generation: move past it before the new spawn (a delete from
            // here on carries a newer one and still wins over the spawn).
            let next = Transition { from_task: Some(Some(TaskState::Rebuilding)), ..Default::default() };
            if ds.server_transition(&server.id, &next).await? == Cas::Conflict {
                return Ok(Outcome::Done); // a delete won
            }
            cx.stepped(RebuildStep::Destroy).await?;
        }
        let volume_backed = server.image_id.is_none();
        if p.reimage && volume_backed && !cx.done(RebuildStep::Reimage) {
            cx.step(RebuildStep::Reimage).await?;
            if let Err(e) = self.reimage_root(op, &server, &host, &p.image_id).await {
                let tr = Transition {
                    from_task: Some(Some(TaskState::Rebuilding)),
                    vm: Some(VmState::Error),
                    task: Some(None),
                    fault: Some(fault_json(500, &format!("re-imaging the root volume failed: {e}"), ds.clock().now())),
                    ..Default::default()
                };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(&server.id, &op.request_id, event, false, &format!("reimage: {e}")).await?;
                return Ok(Outcome::Failed(Failure::Step(e)));
            }
            cx.stepped(RebuildStep::Reimage).await?;
        }
        // A volume-backed server boots from its root volume and keeps no image of its own.
        let image = (!volume_backed).then_some(p.image_id);
        if !cx.done(RebuildStep::Spawn) {
            cx.step(RebuildStep::Spawn).await?;
            let boot = crate::boot::boot_spec(ds, &server, image, server.disk_gb).await?;
            let spawn =
                CommandKind::Spawn { vcpus: server.vcpus, ram_mb: server.ram_mb, image_id: image, boot: Some(boot) };
            let mut failed = s.host_command(&op.id, &server.id, &host, spawn, self.build_deadlines()).await.err();
            if failed.is_none()
                && let Err(e) = crate::op_volume::move_volumes(s, &op.id, &server.id, None, &host).await
            {
                failed = Some(e);
            }
            if failed.is_none()
                && p.stopped
                && let Err(e) = s.host_command(&op.id, &server.id, &host, CommandKind::PowerOff, self.d()).await
            {
                failed = Some(e);
            }
            if let Some(e) = failed {
                // The old VM is gone: the server is in error (Nova's rebuild failure).
                let tr = Transition {
                    from_task: Some(Some(TaskState::Rebuilding)),
                    vm: Some(VmState::Error),
                    task: Some(None),
                    fault: Some(fault_json(500, &format!("rebuild on {host} failed: {e}"), ds.clock().now())),
                    ..Default::default()
                };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(&server.id, &op.request_id, event, false, &format!("spawn on {host}: {e}")).await?;
                return Ok(Outcome::Failed(Failure::Step(e)));
            }
            cx.stepped(RebuildStep::Spawn).await?;
        }
        let (vm, power) =
            if p.stopped { (VmState::Stopped, PowerState::Shutdown) } else { (VmState::Active, PowerState::Running) };
        let tr = Transition {
            from_task: Some(Some(TaskState::Rebuilding)),
            vm: Some(vm),
            power: Some(power.code()),
            task: Some(None),
            image,
            ..Default::default()
        };
        if ds.server_transition(&server.id, &tr).await? == Cas::Conflict {
            return Ok(Outcome::Done); // a delete won
        }
        ds.event_finish(&server.id, &op.request_id, event, true, &format!("rebuilt on {host} from {}", p.image_id))
            .await?;
        let cur = ds.server_get_any(&server.id).await?;
        notify::record(ds, &cur, &op.id, "instance.rebuild.end", "nova-compute").await?;
        info!(server = %server.id, host = %host, image = %p.image_id, "rebuilt");
        Ok(Outcome::Done)
    }

    /// Close the root volume of a volume-backed server on `host` (its VM
    /// is destroyed; with a driver whose VM opens volumes itself the client
    /// went with it) and write `image` into it.
    async fn reimage_root(
        &self,
        op: &OperationRow,
        server: &ServerRow,
        host: &str,
        image: &stratus_types::ImageId,
    ) -> Result<(), String> {
        let s = &self.0;
        let volumes = s.volume.as_ref().ok_or("no block storage service is configured")?;
        let atts = volumes.attachments_of_server(&server.id).await.map_err(|e| e.to_string())?;
        let root = atts.into_iter().find(|a| a.boot_index == Some(0)).ok_or("the server has no root volume")?;
        let vol = volumes.volume(&root.volume_id).await.map_err(|e| e.to_string())?;
        let kind = CommandKind::DetachVolume { attachment_id: root.id, volume: vol.backend_name };
        s.host_command(&op.id, &server.id, host, kind, self.d())
            .await
            .map_err(|e| format!("closing on {host}: {e}"))?;
        volumes.reimage(&root.volume_id, &image.to_string()).await.map_err(|e| e.to_string())?;
        info!(server = %server.id, volume = %root.volume_id, image = %image, "root volume re-imaged");
        Ok(())
    }

    /// Snapshot every volume of volume-backed `server` (forced: they are
    /// in use) and record the mappings on its snapshot image, as Nova's
    /// `snapshot_volume_backed` does. Each snapshot's id derives from the
    /// operation and the volume, so a retried step finds the snapshots its
    /// earlier attempt made instead of making more. The inner error is what
    /// the server's fault may show.
    async fn snapshot_volumes(
        &self,
        op: &OperationRow,
        server: &ServerRow,
        image_id: &ImageId,
        image_name: &str,
    ) -> Result<Result<(), String>, OpError> {
        let s = &self.0;
        let Some(volumes) = s.volume.as_ref() else {
            return Ok(Err("no block storage service is configured".into()));
        };
        let public = |e: stratus_volume::VolumeError| {
            warn!(server = %server.id, error = %e, "volume snapshot for a server image failed");
            e.tenant_message()
        };
        let mut atts = match volumes.attachments_of_server(&server.id).await {
            Ok(a) => a,
            Err(e) => return Ok(Err(public(e))),
        };
        atts.sort_by_key(|a| (a.boot_index.is_none(), a.boot_index, a.mountpoint.clone()));
        let mut mappings = Vec::new();
        for att in &atts {
            // Operation id XOR volume id, stamped as a v4 UUID: stable across
            // retries, distinct per volume, no new dependency for a hash.
            let mixed = (op.id.0.as_u128() ^ att.volume_id.0.as_u128()).to_be_bytes();
            let snap_id = uuid::Builder::from_random_bytes(mixed).into_uuid().to_string();
            let name = format!("snapshot for {image_name}");
            let snap = match volumes
                .snapshot_for_server_image(
                    &server.user_id,
                    &att.volume_id,
                    &name,
                    &snap_id,
                    self.build_deadlines().result,
                )
                .await
            {
                Ok(snap) => snap,
                Err(e) => return Ok(Err(public(e))),
            };
            mappings.push(serde_json::json!({
                "source_type": "snapshot",
                "destination_type": "volume",
                "snapshot_id": snap.id,
                "volume_id": null,
                "image_id": null,
                "volume_size": snap.size_gb,
                "boot_index": att.boot_index,
                "device_name": att.mountpoint,
                "delete_on_termination": att.delete_on_termination,
                "device_type": "disk",
                "disk_bus": null,
                "guest_format": null,
                "no_device": null,
                "tag": null,
                "volume_type": null,
            }));
        }
        let root = atts.iter().find(|a| a.boot_index == Some(0)).and_then(|a| a.mountpoint.clone());
        s.images
            .set_volume_mappings(image_id, &mappings, root.as_deref().unwrap_or("/dev/vda"))
            .await
            .map_err(image_failure)?;
        info!(server = %server.id, image = %image_id, volumes = mappings.len(), "volume-backed snapshot mapped");
        Ok(Ok(()))
    }

    async fn create_image(&self, op: &OperationRow, cx: &StepCx, server: ServerRow) -> Result<Outcome, OpError> {
        let ds = &self.0.ds;
        let p: crate::params::CreateImageParams = match crate::params::decode(op) {
            Ok(p) => p,
            Err(e) => return self.0.bad_params(op, e).await,
        };
        let event = "compute_snapshot_instance";
        let host = server.host.clone();
        cx.step(ImageStep::Snapshot).await?;
        ds.event_start(&server.id, &op.request_id, event, host.as_deref()).await?;
        notify::record(ds, &server, &op.id, "instance.snapshot.start", "nova-compute").await?;
        let image_id = p.image_id.unwrap_or(ImageId(op.id.0));
        let name = p.name.unwrap_or_else(|| "snapshot".into());
        let metadata = match p.metadata {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        self.snapshot(&server, &image_id, &name, metadata).await?;
        if server.image_id.is_none() {
            // Volume-backed (Nova's `snapshot_volume_backed`): a Cinder
            // snapshot of each volume, mapped by the image.
            if let Err(why) = self.snapshot_volumes(op, &server, &image_id, &name).await? {
                self.drop_snapshot(&server, &image_id).await;
                return self.abandon(op, &server, TaskState::ImageSnapshot, event, &why).await;
            }
        }
        if let Some(b) = &p.backup {
            let gone = self
                .0
                .images
                .rotate_backups(&server.project_id, &server.id, &b.backup_type, b.rotation)
                .await
                .map_err(image_failure)?;
            if !gone.is_empty() {
                info!(server = %server.id, kept = b.rotation, deleted = ?gone, "backups rotated");
            }
        }
        let tr = Transition { from_task: Some(Some(TaskState::ImageSnapshot)), task: Some(None), ..Default::default() };
        ds.server_transition(&server.id, &tr).await?;
        ds.event_finish(&server.id, &op.request_id, event, true, &format!("image {image_id} created")).await?;
        notify::record(ds, &server, &op.id, "instance.snapshot.end", "nova-compute").await?;
        cx.stepped(ImageStep::Snapshot).await?;
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Handler for Lifecycle {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let server = self.0.ds.server_get_any(&op.server_id).await?;
        use OpKind as K;
        let expected = match op.kind {
            K::Shelve => vec![TaskState::Shelving, TaskState::ShelvingOffloading],
            K::ShelveOffload => vec![TaskState::ShelvingOffloading],
            K::Unshelve => vec![TaskState::Unshelving],
            K::Resize => vec![TaskState::ResizePrep, TaskState::ResizeMigrating],
            K::ConfirmResize => vec![TaskState::ResizeConfirming],
            K::RevertResize => vec![TaskState::ResizeReverting],
            K::Evacuate | K::Rebuild => vec![TaskState::Rebuilding],
            K::CreateImage => vec![TaskState::ImageSnapshot],
            other => return Ok(Outcome::Failed(Failure::WrongKind { kind: other, handler: "lifecycle" })),
        };
        if !matches!(op.kind, K::Resize | K::CreateImage | K::Rebuild | K::Evacuate)
            && let Err(e) = crate::params::decode::<crate::params::NoParams>(op)
        {
            return self.0.bad_params(op, e).await;
        }
        let task = server.task_state;
        if server.deleted || !task.is_some_and(|t| expected.contains(&t)) {
            return Ok(Outcome::Done); // superseded by a delete or a reset
        }
        match op.kind {
            K::Shelve if task == Some(TaskState::ShelvingOffloading) => self.offload(op, cx, server).await,
            K::Shelve => self.shelve(op, cx, server).await,
            K::ShelveOffload => self.offload(op, cx, server).await,
            K::Unshelve => self.unshelve(op, cx, server).await,
            K::Resize => self.resize(op, cx, server).await,
            K::ConfirmResize => self.confirm_or_revert(op, cx, server, true).await,
            K::RevertResize => self.confirm_or_revert(op, cx, server, false).await,
            K::Evacuate => self.evacuate(op, cx, server).await,
            K::Rebuild => self.rebuild(op, cx, server).await,
            _ => self.create_image(op, cx, server).await,
        }
    }
}
