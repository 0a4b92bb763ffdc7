//! What the HTTP layer calls to change servers. Each call validates against
//! the current state exactly as Nova does, then records intent (server state
//! and a durable operation in one transaction) and wakes the runner.

use crate::ControllerConfig;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_bus::Bus;
use stratus_db::{Datastore, DbError, FlavorRow, NewOperation, NewServer, OpStart, ServerRow, Transition};
use stratus_types::agent::SUBJECT_OPS_WAKE;
use stratus_types::{PowerState, TaskState, VmState, invalid_state_message};
use tracing::info;

/// Errors of compute calls; the HTTP layer maps each to a status and fault.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 403 with Nova's quota message.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 500 (logged, not shown).
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for ComputeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::QuotaExceeded(q) => Self::QuotaExceeded(q.to_string()),
            e => Self::Db(e),
        }
    }
}

/// A validated create request.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Name (or name template base for several).
    pub name: String,
    /// Image id (resolved, visible to the caller).
    pub image_id: Option<String>,
    /// Flavor.
    pub flavor: FlavorRow,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Allocate a fixed IP.
    pub allocate_network: bool,
    /// How many servers to create.
    pub count: u32,
}

/// A created server and the admin password to return once.
#[derive(Clone, Debug)]
pub struct Created {
    /// The row as recorded.
    pub server: ServerRow,
    /// Generated admin password.
    pub admin_pass: String,
}

/// Power actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// `os-stop`.
    Stop,
    /// `os-start`.
    Start,
    /// `reboot` SOFT or HARD.
    Reboot {
        /// HARD.
        hard: bool,
    },
}

/// The compute calls, bound to a datastore and a bus.
#[derive(Clone)]
pub struct ComputeApi {
    ds: Datastore,
    bus: Arc<dyn Bus>,
    cfg: ControllerConfig,
}

impl ComputeApi {
    /// Bind to a datastore and bus.
    pub fn new(ds: Datastore, bus: Arc<dyn Bus>, cfg: ControllerConfig) -> Self {
        Self { ds, bus, cfg }
    }

    /// Limits that apply to `project_id`.
    pub async fn quota_limits(&self, project_id: &str) -> Result<stratus_db::QuotaLimits, ComputeError> {
        Ok(self.ds.quota_limits(project_id, self.cfg.default_quota).await?)
    }

    /// A server the caller may see; another project's server is 404, like a missing one.
    pub async fn get_visible(&self, ctx: &AuthContext, id: &str) -> Result<ServerRow, ComputeError> {
        let not_found = || ComputeError::NotFound(format!("Instance {id} could not be found."));
        let s = match self.ds.server_get(id).await {
            Ok(s) => s,
            Err(DbError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&s.project_id) {
            return Err(not_found());
        }
        Ok(s)
    }

    async fn wake(&self, op_id: &str) {
        let _ = self.bus.publish(SUBJECT_OPS_WAKE, Bytes::from(op_id.to_string())).await;
    }

    /// Create `spec.count` servers (all or none, within quota).
    pub async fn create_servers(
        &self,
        ctx: &AuthContext,
        spec: &ServerSpec,
        request_id: &str,
    ) -> Result<Vec<Created>, ComputeError> {
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:create to be performed.".into(),
            ));
        }
        let limits = self.quota_limits(&ctx.project_id).await?;
        let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut out = Vec::new();
        for i in 0..spec.count {
            let name = if spec.count > 1 { format!("{}-{}", spec.name, i + 1) } else { spec.name.clone() };
            let id = uuid::Uuid::new_v4().to_string();
            let row = ServerRow {
                id: id.clone(),
                hostname: sanitize_hostname(&name),
                name,
                project_id: ctx.project_id.clone(),
                user_id: ctx.user_id.clone(),
                image_id: spec.image_id.clone(),
                flavor_id: spec.flavor.id.clone(),
                flavor_name: spec.flavor.name.clone(),
                vcpus: spec.flavor.vcpus,
                ram_mb: spec.flavor.ram_mb,
                disk_gb: spec.flavor.disk_gb,
                ephemeral_gb: spec.flavor.ephemeral_gb,
                swap_mb: spec.flavor.swap_mb,
                vm_state: VmState::Building.as_str().into(),
                task_state: Some(TaskState::Scheduling.as_str().into()),
                power_state: PowerState::NoState.code(),
                host: None,
                metadata: serde_json::to_string(&spec.metadata).unwrap_or_else(|_| "{}".into()),
                key_name: spec.key_name.clone(),
                locked: false,
                locked_by: None,
                locked_reason: None,
                availability_zone: spec.availability_zone.clone(),
                reservation_id: reservation_id.clone(),
                fault: None,
                progress: 0,
                generation: 1,
                launched_at: None,
                terminated_at: None,
                created_at: String::new(),
                updated_at: String::new(),
                deleted_at: None,
                deleted: false,
            };
            let new = NewServer {
                row,
                allocate_port: spec.allocate_network,
                operation: NewOperation {
                    id: uuid::Uuid::new_v4().to_string(),
                    kind: "create".into(),
                    server_id: id.clone(),
                    request_id: request_id.to_string(),
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id.clone(),
                    params: "{}".into(),
                },
            };
            let (server, op) = match self.ds.server_create(&new, limits).await {
                Ok(x) => x,
                Err(e) if !out.is_empty() => {
                    // Nova creates all or none of a multi-create; undo what was made.
                    for c in &out {
                        let c: &Created = c;
                        let _ = self.delete_server(ctx, &c.server.id, request_id).await;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            info!(server = %server.id, request = request_id, "server create recorded");
            self.wake(&op.id).await;
            out.push(Created { server, admin_pass: stratus_auth::random_secret()[..12].to_string() });
        }
        Ok(out)
    }

    /// `DELETE /servers/{id}`: record the intent (or re-drive the open delete) and return.
    pub async fn delete_server(&self, ctx: &AuthContext, id: &str, request_id: &str) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:delete to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        let o = NewOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: "delete".into(),
            server_id: id.to_string(),
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: "{}".into(),
        };
        stratus_types::faults::fault_point("api:before:delete");
        let started = self.ds.server_begin_delete(&o).await;
        stratus_types::faults::fault_point("api:after:delete");
        match started {
            Ok(OpStart::Created(op)) => {
                info!(server = id, op = %op.id, request = request_id, "delete recorded");
                self.wake(&op.id).await;
            }
            Ok(OpStart::Existing(op)) => {
                info!(server = id, op = %op.id, request = request_id, "repeated delete: re-driving the open operation");
                self.wake(&op.id).await;
            }
            Err(DbError::NotFound(_)) => {
                return Err(ComputeError::NotFound(format!("Instance {id} could not be found.")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// `os-stop`, `os-start`, `reboot`.
    pub async fn power_action(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: PowerAction,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden("Policy doesn't allow this action to be performed.".into()));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        // Allowed states, from nova/compute/api.py (stop, start, reboot).
        let (method, kind, from_vm, allowed_tasks, new_task): (
            &str,
            &str,
            Vec<VmState>,
            Vec<Option<TaskState>>,
            TaskState,
        ) = match action {
            PowerAction::Stop => {
                ("stop", "stop", vec![VmState::Active, VmState::Error], vec![None], TaskState::PoweringOff)
            }
            PowerAction::Start => ("start", "start", vec![VmState::Stopped], vec![None], TaskState::PoweringOn),
            PowerAction::Reboot { hard: false } => (
                "reboot",
                "reboot",
                vec![VmState::Active],
                vec![None, Some(TaskState::Rebooting)],
                TaskState::Rebooting,
            ),
            PowerAction::Reboot { hard: true } => (
                "reboot",
                "reboot",
                vec![VmState::Active, VmState::Stopped, VmState::Paused, VmState::Suspended, VmState::Error],
                vec![None, Some(TaskState::Rebooting), Some(TaskState::RebootingHard)],
                TaskState::RebootingHard,
            ),
        };
        let vm = s.vm()?;
        let task = s.task()?;
        if !from_vm.contains(&vm) {
            return Err(ComputeError::Conflict(invalid_state_message("vm_state", vm.as_str(), method, &id)));
        }
        if !allowed_tasks.contains(&task) {
            let t = task.map(|t| t.as_str()).unwrap_or("None");
            return Err(ComputeError::Conflict(invalid_state_message("task_state", t, method, &id)));
        }
        let t =
            Transition { from_vm: vec![vm], from_task: Some(task), task: Some(Some(new_task)), ..Default::default() };
        let params = serde_json::json!({ "hard": matches!(action, PowerAction::Reboot { hard: true }) }).to_string();
        let o = NewOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.into(),
            server_id: id.to_string(),
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params,
        };
        match self.ds.op_start(&o, method, Some(&t)).await {
            Ok(OpStart::Created(op)) | Ok(OpStart::Existing(op)) => self.wake(&op.id).await,
            Err(DbError::Conflict(_)) => {
                // Lost a race with another change: report the state we lost to.
                let cur = self.get_visible(ctx, id).await?;
                let t = cur.task_state.unwrap_or_else(|| "None".into());
                return Err(ComputeError::Conflict(invalid_state_message("task_state", &t, method, &id)));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

/// Nova's hostname sanitisation: lowercase, `[a-z0-9-]`, no leading/trailing dashes, 63 chars.
pub fn sanitize_hostname(name: &str) -> String {
    let mut h: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else if c == ' ' || c == '_' || c == '.' {
                '-'
            } else {
                '\0'
            }
        })
        .filter(|c| *c != '\0')
        .collect();
    h = h.trim_matches('-').chars().take(63).collect();
    if h.is_empty() { "server".into() } else { h }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_sanitized() {
        assert_eq!(sanitize_hostname("My VM_1.test"), "my-vm-1-test");
        assert_eq!(sanitize_hostname("--x--"), "x");
        assert_eq!(sanitize_hostname("!!!"), "server");
    }
}
