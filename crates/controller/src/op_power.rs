//! Operations that are one command on the server's host followed by a final
//! state (stop, start, reboot, pause, unpause, suspend, resume, soft delete,
//! restore). The final state is a compare-and-swap that never applies over a
//! delete; on failure the server keeps its previous state and the action
//! shows the error.

use crate::controller::{Deadlines, Shared};
use crate::notify;
use async_trait::async_trait;
use std::sync::Arc;
use stratus_db::{OperationRow, Transition};
use stratus_ops::{Failure, Handler, OpError, Outcome, StepCx, Unsupported};
use stratus_types::agent::CommandKind;
use stratus_types::{OpKind, PowerState, TaskState, VmState};

pub(crate) struct Power(pub Arc<Shared>);

stratus_ops::steps!(
    /// The one step of a power-like operation: the command on the host and
    /// the final state (re-running it is harmless: the command is idempotent
    /// on the agent and the state write a compare-and-swap).
    pub(crate) enum PowerStep {
        /// Run the command on the server's host, then set the final state.
        HostCommand => "host_command",
    }
);

/// What one power-like operation does.
struct Spec {
    command: CommandKind,
    event: &'static str,
    notification: &'static str,
    task: TaskState,
    vm: VmState,
    power: PowerState,
    soft_deleted: Option<bool>,
}

fn spec(kind: OpKind, hard: bool) -> Option<Spec> {
    use CommandKind as C;
    use PowerState as P;
    use TaskState as T;
    use VmState as V;
    let s = |command, event, notification, task, vm, power| Spec {
        command,
        event,
        notification,
        task,
        vm,
        power,
        soft_deleted: None,
    };
    Some(match kind {
        OpKind::Stop => {
            s(C::PowerOff, "compute_stop_instance", "instance.power_off", T::PoweringOff, V::Stopped, P::Shutdown)
        }
        OpKind::Start => {
            s(C::PowerOn, "compute_start_instance", "instance.power_on", T::PoweringOn, V::Active, P::Running)
        }
        OpKind::Reboot => s(
            C::Reboot { hard },
            "compute_reboot_instance",
            "instance.reboot",
            if hard { T::RebootingHard } else { T::Rebooting },
            V::Active,
            P::Running,
        ),
        OpKind::Pause => s(C::Pause, "compute_pause_instance", "instance.pause", T::Pausing, V::Paused, P::Paused),
        OpKind::Unpause => {
            s(C::Unpause, "compute_unpause_instance", "instance.unpause", T::Unpausing, V::Active, P::Running)
        }
        OpKind::Suspend => {
            s(C::Suspend, "compute_suspend_instance", "instance.suspend", T::Suspending, V::Suspended, P::Suspended)
        }
        OpKind::Resume => {
            s(C::Resume, "compute_resume_instance", "instance.resume", T::Resuming, V::Active, P::Running)
        }
        OpKind::SoftDelete => Spec {
            soft_deleted: Some(true),
            ..s(
                C::PowerOff,
                "compute_soft_delete_instance",
                "instance.soft_delete",
                T::SoftDeleting,
                V::SoftDeleted,
                P::Shutdown,
            )
        },
        OpKind::Restore => Spec {
            soft_deleted: Some(false),
            ..s(C::PowerOn, "compute_restore_instance", "instance.restore", T::Restoring, V::Active, P::Running)
        },
        _ => return None,
    })
}

#[async_trait]
impl Handler for Power {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let server = ds.server_get_any(&op.server_id).await?;
        let hard = match crate::params::decode::<crate::params::PowerParams>(op) {
            Ok(p) => p.hard,
            Err(e) => return s.bad_params(op, e).await,
        };
        let Some(sp) = spec(op.kind, hard) else {
            return Ok(Outcome::Failed(Failure::WrongKind { kind: op.kind, handler: "power" }));
        };
        if server.deleted || server.task_state != Some(sp.task) {
            return Ok(Outcome::Done); // superseded (e.g. by a delete or a reset)
        }
        let Some(host) = server.host.clone() else {
            let tr = Transition { from_task: Some(Some(sp.task)), task: Some(None), ..Default::default() };
            ds.server_transition(&server.id, &tr).await?;
            return Ok(Outcome::Failed(Failure::Unsupported(Unsupported::NoHost)));
        };
        cx.step(PowerStep::HostCommand).await?;
        notify::record(ds, &server, &op.id, &format!("{}.start", sp.notification), &format!("nova-compute:{host}"))
            .await?;
        ds.event_start(&server.id, &op.request_id, sp.event, Some(&host)).await?;
        let d = Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout };
        let r = s.host_command(&op.id, &server.id, &host, sp.command, d).await;
        match r {
            Ok(t) => {
                let tr = Transition {
                    from_task: Some(Some(sp.task)),
                    vm: Some(sp.vm),
                    task: Some(None),
                    power: Some(sp.power.code()),
                    soft_deleted: sp.soft_deleted,
                    ..Default::default()
                };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(
                    &server.id,
                    &op.request_id,
                    sp.event,
                    true,
                    &format!("done on {host} in {} ms", t.total_ms),
                )
                .await?;
                let cur = ds.server_get_any(&server.id).await?;
                notify::record(ds, &cur, &op.id, &format!("{}.end", sp.notification), &format!("nova-compute:{host}"))
                    .await?;
                cx.stepped(PowerStep::HostCommand).await?;
                Ok(Outcome::Done)
            }
            Err(e) => {
                let tr = Transition { from_task: Some(Some(sp.task)), task: Some(None), ..Default::default() };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(&server.id, &op.request_id, sp.event, false, &e).await?;
                Ok(Outcome::Failed(Failure::Step(e)))
            }
        }
    }
}
