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
    /// Volumes to boot from or attach at boot (`block_device_mapping_v2`).
    pub volumes: Vec<VolumeBdm>,
}

/// A volume in a server's block device mapping.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VolumeBdm {
    /// Create the volume from this image (`source_type: image`).
    pub image_id: Option<String>,
    /// Use this existing volume (`source_type: volume`).
    pub volume_id: Option<String>,
    /// Size of a volume created from an image, GiB.
    pub size_gb: i64,
    /// 0 for the root volume.
    pub boot_index: Option<i64>,
    /// Delete the volume with the server.
    pub delete_on_termination: bool,
}

/// A created server and the admin password to return once.
#[derive(Clone, Debug)]
pub struct Created {
    /// The row as recorded.
    pub server: ServerRow,
    /// Generated admin password.
    pub admin_pass: String,
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
                shelved_image_id: None,
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
                    params: serde_json::json!({ "volumes": spec.volumes }).to_string(),
                },
            };
            // Existing volumes are reserved now, so a busy one is a 400 at once.
            for b in &spec.volumes {
                if let Some(vid) = &b.volume_id {
                    let v = self.ds.volume_get(vid).await.map_err(|_| {
                        ComputeError::BadRequest(format!(
                            "Block Device Mapping is Invalid: failed to get volume {vid}."
                        ))
                    })?;
                    if !ctx.can_see(&v.project_id) {
                        return Err(ComputeError::BadRequest(format!(
                            "Block Device Mapping is Invalid: failed to get volume {vid}."
                        )));
                    }
                    if v.status != stratus_types::VolumeStatus::Available {
                        return Err(ComputeError::BadRequest(format!(
                            "Invalid volume: volume {vid} status must be available, but is {}",
                            v.status
                        )));
                    }
                }
            }
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
            for (i, b) in spec.volumes.iter().enumerate() {
                if let Some(vid) = &b.volume_id {
                    let att = stratus_db::AttachmentRow {
                        id: uuid::Uuid::new_v4().to_string(),
                        volume_id: vid.clone(),
                        server_id: server.id.clone(),
                        host: None,
                        connector: None,
                        client_id: None,
                        mountpoint: Some(device_name(i)),
                        status: stratus_types::AttachStatus::Reserved,
                        delete_on_termination: b.delete_on_termination,
                        boot_index: b.boot_index,
                        created_at: String::new(),
                    };
                    if let Err(e) = self.ds.attachment_create(&att).await {
                        let _ = self.delete_server(ctx, &server.id, request_id).await;
                        return Err(ComputeError::BadRequest(format!("Invalid volume: {e}")));
                    }
                }
            }
            info!(server = %server.id, request = request_id, "server create recorded");
            self.wake(&op.id).await;
            out.push(Created { server, admin_pass: stratus_auth::random_secret()[..12].to_string() });
        }
        Ok(out)
    }

    /// `DELETE /servers/{id}`: record the intent (or re-drive the open delete) and return.
    pub async fn delete_server(&self, ctx: &AuthContext, id: &str, request_id: &str) -> Result<(), ComputeError> {
        self.delete_or_force(ctx, id, request_id, false).await
    }

    /// `forceDelete`: a hard delete in any state, soft-deleted included.
    pub async fn force_delete(&self, ctx: &AuthContext, id: &str, request_id: &str) -> Result<(), ComputeError> {
        self.delete_or_force(ctx, id, request_id, true).await
    }

    async fn delete_or_force(
        &self,
        ctx: &AuthContext,
        id: &str,
        request_id: &str,
        force: bool,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:delete to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        if !force && !self.cfg.reclaim_instance_interval.is_zero() && s.task_state.as_deref() != Some("deleting") {
            if s.vm_state == VmState::SoftDeleted.as_str() {
                return Ok(()); // already soft-deleted: forceDelete or reclaim finishes it
            }
            // Nova soft-deletes launched servers on a live host; never-launched
            // ones, and servers on a down host, are deleted for real.
            let host_up = match &s.host {
                Some(h) => {
                    self.ds.service_get_by_host(h).await.map(|svc| svc.is_up(self.ds.clock().now())).unwrap_or(false)
                }
                None => false,
            };
            if s.launched_at.is_some() && host_up && s.task_state.is_none() {
                let t = Transition {
                    from_task: Some(None),
                    task: Some(Some(TaskState::SoftDeleting)),
                    ..Default::default()
                };
                let o = NewOperation {
                    id: uuid::Uuid::new_v4().to_string(),
                    kind: "soft_delete".into(),
                    server_id: id.to_string(),
                    request_id: request_id.to_string(),
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id.clone(),
                    params: "{}".into(),
                };
                match self.ds.op_start(&o, "delete", Some(&t)).await {
                    Ok(OpStart::Created(op)) | Ok(OpStart::Existing(op)) => {
                        self.wake(&op.id).await;
                        return Ok(());
                    }
                    Err(DbError::Conflict(_)) => {} // raced with another change: hard delete
                    Err(e) => return Err(e.into()),
                }
            }
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

    /// A server action (`POST /servers/{id}/action`) that is carried out by
    /// an operation: checks policy, lock and Nova's allowed states, then sets
    /// the task state and records the operation in one transaction.
    pub async fn action(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: Action,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden("Policy doesn't allow this action to be performed.".into()));
        }
        let r = rule(&action);
        if r.admin_only && !ctx.is_admin() {
            return Err(ComputeError::Forbidden(format!(
                "Policy doesn't allow os_compute_api:os-{} to be performed.",
                r.method
            )));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        let vm = s.vm()?;
        let task = s.task()?;
        if !r.from_vm.contains(&vm) {
            return Err(ComputeError::Conflict(invalid_state_message("vm_state", vm.as_str(), r.method, &id)));
        }
        if !r.tasks.contains(&task) {
            let t = task.map(|t| t.as_str()).unwrap_or("None");
            return Err(ComputeError::Conflict(invalid_state_message("task_state", t, r.method, &id)));
        }
        let mut params = serde_json::json!({});
        match &action {
            Action::Reboot { hard } => params["hard"] = (*hard).into(),
            Action::Resize { flavor } => {
                if flavor.id == s.flavor_id {
                    return Err(ComputeError::BadRequest("When resizing, instances must change flavor!".into()));
                }
                self.check_resize_quota(&s, flavor).await?;
                params["flavor_id"] = flavor.id.clone().into();
            }
            Action::CreateImage { name, metadata, image_id } => {
                params["name"] = name.clone().into();
                params["metadata"] = serde_json::to_value(metadata).unwrap_or_default();
                params["image_id"] = image_id.clone().into();
            }
            Action::Evacuate => {
                let host = s.host.clone().unwrap_or_default();
                let up = match self.ds.service_get_by_host(&host).await {
                    Ok(svc) => svc.is_up(self.ds.clock().now()),
                    Err(_) => false,
                };
                if up {
                    return Err(ComputeError::BadRequest(format!("Compute service of {host} is still in use.")));
                }
            }
            Action::Restore => {
                // Nova re-checks quota on restore (limits may have been lowered meanwhile).
                let limits = self.quota_limits(&s.project_id).await?;
                let u = self.ds.quota_usage(&s.project_id).await?;
                if limits.instances >= 0 && u.instances > limits.instances {
                    return Err(ComputeError::QuotaExceeded(format!(
                        "Quota exceeded for instances: Requested 1, but already used {} of {} instances",
                        u.instances - 1,
                        limits.instances
                    )));
                }
            }
            _ => {}
        }
        let t =
            Transition { from_vm: vec![vm], from_task: Some(task), task: Some(Some(r.new_task)), ..Default::default() };
        let o = NewOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: r.kind.into(),
            server_id: id.to_string(),
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: params.to_string(),
        };
        match self.ds.op_start(&o, r.action, Some(&t)).await {
            Ok(OpStart::Created(op)) | Ok(OpStart::Existing(op)) => self.wake(&op.id).await,
            Err(DbError::Conflict(_)) => {
                // Lost a race with another change: report the state we lost to.
                let cur = self.get_visible(ctx, id).await?;
                let t = cur.task_state.unwrap_or_else(|| "None".into());
                return Err(ComputeError::Conflict(invalid_state_message("task_state", &t, r.method, &id)));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// `POST /servers/{id}/os-volume_attachments`: reserve the volume and
    /// have the host open it. Allowed states follow Nova (below 2.20: not shelved).
    pub async fn attach_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        request_id: &str,
    ) -> Result<stratus_db::AttachmentRow, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-volumes-attachments:create to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        let vm = s.vm()?;
        if !matches!(vm, VmState::Active | VmState::Paused | VmState::Stopped | VmState::Suspended) {
            return Err(ComputeError::Conflict(invalid_state_message("vm_state", vm.as_str(), "attach_volume", &id)));
        }
        if let Some(t) = s.task()? {
            return Err(ComputeError::Conflict(invalid_state_message("task_state", t.as_str(), "attach_volume", &id)));
        }
        let v = match self.ds.volume_get(volume_id).await {
            Ok(v) if ctx.can_see(&v.project_id) => v,
            Ok(_) | Err(DbError::NotFound(_)) => {
                return Err(ComputeError::NotFound(format!("Volume {volume_id} could not be found.")));
            }
            Err(e) => return Err(e.into()),
        };
        if v.status != stratus_types::VolumeStatus::Available {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: volume {volume_id} status must be available, but is {}",
                v.status
            )));
        }
        let n = self.ds.attachment_list_for_server(id).await?.len();
        let att = stratus_db::AttachmentRow {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: volume_id.to_string(),
            server_id: id.to_string(),
            host: None,
            connector: None,
            client_id: None,
            mountpoint: Some(device_name(n + 1)),
            status: stratus_types::AttachStatus::Reserved,
            delete_on_termination: false,
            boot_index: None,
            created_at: String::new(),
        };
        let att = self.ds.attachment_create(&att).await.map_err(|e| match e {
            DbError::Conflict(m) => ComputeError::BadRequest(format!("Invalid volume: {m}")),
            e => e.into(),
        })?;
        let o = NewOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: "attach_volume".into(),
            server_id: id.to_string(),
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: serde_json::json!({"attachment_id": att.id}).to_string(),
        };
        match self.ds.op_start(&o, "attach_volume", None).await {
            Ok(OpStart::Created(op)) => self.wake(&op.id).await,
            Ok(OpStart::Existing(_)) => {
                self.ds.attachment_delete(&att.id).await?;
                return Err(ComputeError::Conflict(format!(
                    "Another volume attachment for instance {id} is in progress; retry."
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(att)
    }

    /// `DELETE /servers/{id}/os-volume_attachments/{volume}`: 409 while the
    /// host is down (Nova), 400 for the root volume.
    pub async fn detach_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-volumes-attachments:delete to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
        }
        let att = self.ds.attachment_list_for_server(id).await?.into_iter().find(|a| a.volume_id == volume_id);
        let Some(att) = att else {
            return Err(ComputeError::NotFound(format!("volume_id not found: {volume_id}")));
        };
        if att.boot_index == Some(0) {
            return Err(ComputeError::BadRequest("Can't detach root device volume".into()));
        }
        let host = s.host.clone().unwrap_or_default();
        let up = self.ds.service_get_by_host(&host).await.map(|svc| svc.is_up(self.ds.clock().now())).unwrap_or(false);
        if !up {
            return Err(ComputeError::Conflict(format!(
                "Compute host {host} is down; a volume cannot be detached safely from a server whose host may still write to it."
            )));
        }
        let o = NewOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: "detach_volume".into(),
            server_id: id.to_string(),
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: serde_json::json!({"attachment_id": att.id}).to_string(),
        };
        match self.ds.op_start(&o, "detach_volume", None).await? {
            OpStart::Created(op) => self.wake(&op.id).await,
            OpStart::Existing(_) => {
                return Err(ComputeError::Conflict(format!(
                    "Another volume detach for instance {id} is in progress; retry."
                )));
            }
        }
        Ok(())
    }

    async fn check_resize_quota(&self, s: &ServerRow, new: &FlavorRow) -> Result<(), ComputeError> {
        let limits = self.quota_limits(&s.project_id).await?;
        let u = self.ds.quota_usage(&s.project_id).await?;
        for (name, used, delta, lim) in
            [("cores", u.cores, new.vcpus - s.vcpus, limits.cores), ("ram", u.ram, new.ram_mb - s.ram_mb, limits.ram)]
        {
            if delta > 0 && lim >= 0 && used + delta > lim {
                return Err(ComputeError::QuotaExceeded(format!(
                    "Quota exceeded for {name}: Requested {delta}, but already used {used} of {lim} {name}"
                )));
            }
        }
        Ok(())
    }

    /// `lock` (with an optional reason) and `unlock`. An owner cannot unlock
    /// a lock an admin set (Nova's `unlock_override` policy).
    pub async fn set_lock(
        &self,
        ctx: &AuthContext,
        id: &str,
        lock: bool,
        reason: Option<String>,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden("Policy doesn't allow this action to be performed.".into()));
        }
        if !lock && s.locked && s.locked_by.as_deref() == Some("admin") && !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.".into(),
            ));
        }
        let by = if ctx.is_admin() && ctx.project_id != s.project_id { "admin" } else { "owner" };
        let t = Transition {
            from_task: Some(s.task()?),
            lock: Some(if lock { (true, Some(by.into()), reason) } else { (false, None, None) }),
            ..Default::default()
        };
        let t = Transition {
            from_task: if s.task_state.as_deref() == Some("deleting") {
                Some(Some(TaskState::Deleting))
            } else {
                t.from_task
            },
            ..t
        };
        self.ds.server_transition(id, &t).await?;
        self.ds
            .action_create(id, request_id, if lock { "lock" } else { "unlock" }, &ctx.user_id, &ctx.project_id)
            .await?;
        Ok(())
    }

    /// `os-resetState` (admin): set vm_state to `active` or `error` and clear
    /// the task state, except that a delete in progress is never cleared (the
    /// delete flag is monotonic; the open delete operation still finishes).
    pub async fn reset_state(
        &self,
        ctx: &AuthContext,
        id: &str,
        state: VmState,
        request_id: &str,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.".into(),
            ));
        }
        let deleting = s.task_state.as_deref() == Some("deleting");
        let t = if deleting {
            Transition { from_task: Some(Some(TaskState::Deleting)), vm: Some(state), ..Default::default() }
        } else {
            Transition { from_task: Some(s.task()?), vm: Some(state), task: Some(None), ..Default::default() }
        };
        self.ds.server_transition(id, &t).await?;
        self.ds.action_create(id, request_id, "resetState", &ctx.user_id, &ctx.project_id).await?;
        // Open operations of the server other than delete lose their purpose.
        if !deleting {
            for op in self.ds.op_list_open_for_server(id).await? {
                self.wake(&op.id).await;
            }
        }
        Ok(())
    }
}

/// Server actions carried out by operations.
#[derive(Clone, Debug)]
pub enum Action {
    /// `os-stop`.
    Stop,
    /// `os-start`.
    Start,
    /// `reboot`.
    Reboot {
        /// HARD rather than SOFT.
        hard: bool,
    },
    /// `pause`.
    Pause,
    /// `unpause`.
    Unpause,
    /// `suspend`.
    Suspend,
    /// `resume`.
    Resume,
    /// `shelve`.
    Shelve,
    /// `shelveOffload`.
    ShelveOffload,
    /// `unshelve`.
    Unshelve,
    /// `resize` to another flavor.
    Resize {
        /// Target flavor.
        flavor: FlavorRow,
    },
    /// `migrate` (cold, admin).
    Migrate,
    /// `confirmResize`.
    ConfirmResize,
    /// `revertResize`.
    RevertResize,
    /// `evacuate` (admin, source host down).
    Evacuate,
    /// `createImage`.
    CreateImage {
        /// Snapshot name.
        name: String,
        /// Snapshot properties.
        metadata: BTreeMap<String, String>,
        /// Id the snapshot image gets (chosen by the caller, returned in `Location`).
        image_id: String,
    },
    /// `restore` a soft-deleted server.
    Restore,
}

struct Rule {
    method: &'static str,
    action: &'static str,
    kind: &'static str,
    from_vm: Vec<VmState>,
    tasks: Vec<Option<TaskState>>,
    new_task: TaskState,
    admin_only: bool,
}

/// Allowed states per action, from `nova/compute/api.py`'s `check_instance_state` decorators.
fn rule(a: &Action) -> Rule {
    use TaskState as T;
    use VmState as V;
    let r = |method, kind, from_vm: Vec<VmState>, new_task| Rule {
        method,
        action: method,
        kind,
        from_vm,
        tasks: vec![None],
        new_task,
        admin_only: false,
    };
    match a {
        Action::Stop => r("stop", "stop", vec![V::Active, V::Error], T::PoweringOff),
        Action::Start => r("start", "start", vec![V::Stopped], T::PoweringOn),
        Action::Reboot { hard: false } => {
            Rule { tasks: vec![None, Some(T::Rebooting)], ..r("reboot", "reboot", vec![V::Active], T::Rebooting) }
        }
        Action::Reboot { hard: true } => Rule {
            tasks: vec![None, Some(T::Rebooting), Some(T::RebootingHard)],
            ..r("reboot", "reboot", vec![V::Active, V::Stopped, V::Paused, V::Suspended, V::Error], T::RebootingHard)
        },
        Action::Pause => r("pause", "pause", vec![V::Active], T::Pausing),
        Action::Unpause => r("unpause", "unpause", vec![V::Paused], T::Unpausing),
        Action::Suspend => r("suspend", "suspend", vec![V::Active], T::Suspending),
        Action::Resume => r("resume", "resume", vec![V::Suspended], T::Resuming),
        Action::Shelve => r("shelve", "shelve", vec![V::Active, V::Stopped, V::Paused, V::Suspended], T::Shelving),
        Action::ShelveOffload => r("shelveOffload", "shelve_offload", vec![V::Shelved], T::ShelvingOffloading),
        Action::Unshelve => r("unshelve", "unshelve", vec![V::Shelved, V::ShelvedOffloaded], T::Unshelving),
        Action::Resize { .. } => r("resize", "resize", vec![V::Active, V::Stopped], T::ResizePrep),
        Action::Migrate => {
            Rule { admin_only: true, ..r("migrate", "resize", vec![V::Active, V::Stopped], T::ResizePrep) }
        }
        Action::ConfirmResize => r("confirmResize", "confirm_resize", vec![V::Resized], T::ResizeConfirming),
        Action::RevertResize => r("revertResize", "revert_resize", vec![V::Resized], T::ResizeReverting),
        Action::Evacuate => {
            Rule { admin_only: true, ..r("evacuate", "evacuate", vec![V::Active, V::Stopped, V::Error], T::Rebuilding) }
        }
        Action::CreateImage { .. } => {
            r("createImage", "create_image", vec![V::Active, V::Stopped, V::Paused, V::Suspended], T::ImageSnapshot)
        }
        Action::Restore => r("restore", "restore", vec![V::SoftDeleted], T::Restoring),
    }
}

/// The device name of the `i`-th volume of a server (`/dev/vda`, `/dev/vdb`, ...).
pub fn device_name(i: usize) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    format!("/dev/vd{letter}")
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
