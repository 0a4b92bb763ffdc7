//! Power operations (stop, start, reboot): one command to the host, then the
//! final state by compare-and-swap (never over a delete).

use crate::controller::{Deadlines, Shared};
use crate::notify;
use async_trait::async_trait;
use std::sync::Arc;
use stratus_db::{OperationRow, Transition};
use stratus_ops::{Handler, OpError, Outcome, StepCx};
use stratus_types::agent::CommandKind;
use stratus_types::{PowerState, TaskState, VmState};

pub(crate) struct Power(pub Arc<Shared>);

#[async_trait]
impl Handler for Power {
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError> {
        let s = &self.0;
        let ds = &s.ds;
        let server = ds.server_get_any(&op.server_id).await?;
        let hard = serde_json::from_str::<serde_json::Value>(&op.params)
            .ok()
            .and_then(|v| v["hard"].as_bool())
            .unwrap_or(false);
        let (kind, event, notif, task, vm, power) = match op.kind.as_str() {
            "stop" => (
                CommandKind::PowerOff,
                "compute_stop_instance",
                "instance.power_off",
                TaskState::PoweringOff,
                VmState::Stopped,
                PowerState::Shutdown,
            ),
            "start" => (
                CommandKind::PowerOn,
                "compute_start_instance",
                "instance.power_on",
                TaskState::PoweringOn,
                VmState::Active,
                PowerState::Running,
            ),
            _ => (
                CommandKind::Reboot { hard },
                "compute_reboot_instance",
                "instance.reboot",
                if hard { TaskState::RebootingHard } else { TaskState::Rebooting },
                VmState::Active,
                PowerState::Running,
            ),
        };
        if server.deleted || server.task_state.as_deref() != Some(task.as_str()) {
            return Ok(Outcome::Done); // superseded (e.g. by a delete)
        }
        let Some(host) = server.host.clone() else {
            return Ok(Outcome::Failed("server has no host".into()));
        };
        cx.step(event).await?;
        notify::record(ds, &server, &op.id, &format!("{notif}.start"), &format!("nova-compute:{host}")).await?;
        ds.event_start(&server.id, &op.request_id, event, Some(&host)).await?;
        let svc = ds.service_get_by_host(&host).await?;
        let r = if svc.is_up(ds.clock().now()) {
            s.run_command(
                &svc,
                &op.id,
                &server.id,
                kind,
                Deadlines { ack: s.cfg.command_ack_timeout, result: s.cfg.power_timeout },
                None,
            )
            .await
            .map_err(|e| e.to_string())
        } else {
            Err(format!("host {host} is down"))
        };
        match r {
            Ok(t) => {
                let tr = Transition {
                    from_task: Some(Some(task)),
                    vm: Some(vm),
                    task: Some(None),
                    power: Some(power.code()),
                    ..Default::default()
                };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(
                    &server.id,
                    &op.request_id,
                    event,
                    true,
                    &format!("done on {host} in {} ms", t.total_ms),
                )
                .await?;
                let cur = ds.server_get_any(&server.id).await?;
                notify::record(ds, &cur, &op.id, &format!("{notif}.end"), &format!("nova-compute:{host}")).await?;
                cx.stepped(event);
                Ok(Outcome::Done)
            }
            Err(e) => {
                // Give the server back in its previous state; the action shows the error.
                let tr = Transition { from_task: Some(Some(task)), task: Some(None), ..Default::default() };
                ds.server_transition(&server.id, &tr).await?;
                ds.event_finish(&server.id, &op.request_id, event, false, &e).await?;
                Ok(Outcome::Failed(e))
            }
        }
    }
}
