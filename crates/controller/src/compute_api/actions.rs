//! Server actions (`POST /servers/{id}/action`): Nova's allowed states per
//! action, the task state each sets, and the operation that carries it out;
//! plus the actions done at once (lock, resetState) and rename.

use super::{ComputeApi, ComputeError, ServerWithResources};
use std::collections::BTreeMap;
use stratus_auth::AuthContext;
use stratus_db::{DbError, FlavorRow, NewOperation, OpStart, ServerRow, Transition};
use stratus_types::{LockedBy, OpKind, TaskState, VmState, invalid_state_message};

impl ComputeApi {
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
        // An unknown flavor is a 400 before anything else is checked.
        let resize_to = match &action {
            Action::Resize { flavor_ref, flavor_id } => {
                Some(self.flavor_for_request(ctx, flavor_ref, flavor_id).await?)
            }
            _ => None,
        };
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden("Policy doesn't allow this action to be performed.".into()));
        }
        let r = rule(&action);
        if let Some(policy) = r.admin_only
            && !ctx.is_admin()
        {
            return Err(ComputeError::Forbidden(format!("Policy doesn't allow {policy} to be performed.")));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Locked { id: id.to_string() });
        }
        let vm = s.vm_state;
        let task = s.task_state;
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
            Action::Resize { .. } => {
                if let Some(flavor) = &resize_to {
                    if flavor.id == s.flavor_id {
                        return Err(ComputeError::BadRequest("When resizing, instances must change flavor!".into()));
                    }
                    self.check_resize_quota(&s, flavor).await?;
                    params["flavor_id"] = flavor.id.clone().into();
                }
            }
            Action::CreateImage { name, metadata, image_id, backup } => {
                if backup.is_some() && s.image_id.is_none() {
                    // Nova refuses a backup of a volume-backed server.
                    return Err(ComputeError::BadRequest(
                        "Backup is not supported for volume-backed instances.".into(),
                    ));
                }
                params["name"] = name.clone().into();
                params["metadata"] = serde_json::to_value(metadata).unwrap_or_default();
                params["image_id"] = image_id.to_string().into();
                if let Some(b) = backup {
                    params["backup"] = serde_json::json!({"backup_type": b.backup_type, "rotation": b.rotation});
                }
            }
            Action::Rebuild { image_ref, key_name, reimage_boot_volume, .. } => {
                if let Some(Some(key)) = key_name {
                    // Nova: a key pair the rebuilding user does not have is a 400.
                    match self.ds.keypair_get(&ctx.user_id, key).await {
                        Err(DbError::NotFound { .. }) => {
                            return Err(ComputeError::BadRequest("Invalid key_name provided.".into()));
                        }
                        other => drop(other?),
                    }
                }
                let volume_backed = s.image_id.is_none();
                let flavor = FlavorRow {
                    id: s.flavor_id.clone(),
                    name: s.flavor_name.clone(),
                    vcpus: s.vcpus,
                    ram_mb: s.ram_mb,
                    disk_gb: s.disk_gb,
                    ephemeral_gb: s.ephemeral_gb,
                    swap_mb: s.swap_mb,
                    rxtx_factor: 1.0,
                    is_public: true,
                    disabled: false,
                    description: None,
                };
                let image = self.check_image(ctx, image_ref, &flavor).await?;
                if volume_backed {
                    // Nova: the root volume's image is the server's; another
                    // one needs the root volume re-imaged (2.93+).
                    let root = self.root_volume_image(&s.id).await?;
                    if !reimage_boot_volume && root.as_deref() != Some(image.id.to_string().as_str()) {
                        return Err(ComputeError::BadRequest(
                            "Unable to rebuild with a different image for a volume-backed server.".into(),
                        ));
                    }
                    params["reimage"] = (*reimage_boot_volume).into();
                }
                params["image_id"] = image.id.to_string().into();
                params["stopped"] = (vm == VmState::Stopped).into();
            }
            Action::Unshelve { availability_zone, host } => {
                self.check_unshelve_destination(ctx, &s, availability_zone, host.as_deref()).await?;
                if let Some(h) = host {
                    params["host"] = h.clone().into();
                }
            }
            Action::Evacuate { host: target, stop } => {
                let host = s.host.clone().unwrap_or_default();
                if let Some(t) = target {
                    // Nova: an unknown host is 404, the server's own host 400.
                    match self.ds.service_get_by_host(t).await {
                        Ok(_) => {}
                        Err(DbError::NotFound { .. }) => return Err(ComputeError::ComputeHostNotFound(t.clone())),
                        Err(e) => return Err(e.into()),
                    }
                    if *t == host {
                        return Err(ComputeError::BadRequest("The target host can't be the same one.".into()));
                    }
                    params["host"] = t.clone().into();
                }
                if self.host_is_up(&host).await {
                    return Err(ComputeError::BadRequest(format!("Compute service of {host} is still in use.")));
                }
                params["stopped"] = (*stop || vm == VmState::Stopped).into();
            }
            Action::Migrate { host: Some(t) } => {
                // Nova answers both of these 400 on a cold migration.
                match self.ds.service_get_by_host(t).await {
                    Ok(_) => {}
                    Err(DbError::NotFound { .. }) => {
                        return Err(ComputeError::BadRequest(format!("Compute host {t} could not be found.")));
                    }
                    Err(e) => return Err(e.into()),
                }
                if s.host.as_deref() == Some(t.as_str()) {
                    return Err(ComputeError::BadRequest("Cannot migrate to the host where the server exists.".into()));
                }
                params["host"] = t.clone().into();
            }
            Action::Restore => {
                // Nova re-checks quota on restore (limits may have been lowered meanwhile).
                let limits = self.quota_limits(&s.project_id).await?;
                let u = self.ds.quota_usage(&s.project_id).await?;
                if stratus_db::exceeds(u.instances, 0, limits.instances) {
                    return Err(ComputeError::QuotaExceeded(format!(
                        "Quota exceeded for instances: Requested 1, but already used {} of {} instances",
                        u.instances.saturating_sub(1),
                        limits.instances
                    )));
                }
            }
            _ => {}
        }
        let t =
            Transition { from_vm: vec![vm], from_task: Some(task), task: Some(Some(r.new_task)), ..Default::default() };
        let o = NewOperation {
            id: stratus_types::OperationId::new(),
            kind: r.kind,
            server_id: s.id,
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: params.to_string(),
        };
        match self.ds.op_start(&o, r.action, Some(&t)).await {
            Ok(OpStart::Created(op)) | Ok(OpStart::Existing(op)) => {
                if let Action::Rebuild {
                    name, metadata, description, key_name, user_data, hostname, access_ips, ..
                } = &action
                {
                    self.ds.server_set_access_ips(&s.id, access_ips.v4.as_deref(), access_ips.v6.as_deref()).await?;
                    if let Some(h) = hostname {
                        self.ds.server_set_hostname(&s.id, h).await?;
                    }
                    // Nova changes the name, metadata, description, key and
                    // user data with the rebuild's start.
                    if let Some(n) = name {
                        self.ds.server_rename(&s.id, n).await?;
                    }
                    if let Some(d) = description {
                        self.ds.server_set_description(&s.id, d.as_deref()).await?;
                    }
                    if let Some(k) = key_name {
                        self.ds.server_set_key_name(&s.id, k.as_deref()).await?;
                    }
                    if let Some(u) = user_data {
                        self.ds.server_set_user_data(&s.id, u.as_deref()).await?;
                    }
                    if let Some(m) = metadata {
                        let new = serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
                        let cur = self.ds.server_get(&s.id).await?;
                        self.ds.server_metadata_swap(&s.id, &cur.metadata, &new).await?;
                    }
                }
                if let Action::Unshelve { availability_zone: Some(az), .. } = &action {
                    // The zone the server is pinned to, which the unshelve's scheduling reads.
                    self.ds.server_set_availability_zone(&s.id, az.as_deref()).await?;
                }
                self.wake(&op.id).await
            }
            Err(DbError::Conflict { .. }) => {
                // Lost a race with another change: report the state we lost to.
                let cur = self.get_visible(ctx, id).await?;
                let t = cur.task_state.map_or("None", |t| t.as_str());
                return Err(ComputeError::Conflict(invalid_state_message("task_state", t, r.method, &id)));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
    /// Nova's checks of an unshelve's destination (2.77, 2.91): only a
    /// shelved-offloaded server may be sent to a zone or a host (409); a
    /// host needs an admin (`os-shelve:unshelve_to_host`, 403) and must
    /// exist (400), in the zone asked for if any (400); a zone must have an
    /// enabled compute host (400).
    async fn check_unshelve_destination(
        &self,
        ctx: &AuthContext,
        s: &ServerRow,
        az: &Option<Option<String>>,
        host: Option<&str>,
    ) -> Result<(), ComputeError> {
        if az.is_none() && host.is_none() {
            return Ok(());
        }
        if host.is_some() && !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host to be performed.".into(),
            ));
        }
        if s.vm_state != VmState::ShelvedOffloaded {
            return Err(ComputeError::Conflict(format!(
                "The unshelve action with an availability zone or a host is only allowed for shelved offloaded servers; instance {} is in vm_state {}",
                s.id,
                s.vm_state.as_str()
            )));
        }
        if let Some(Some(zone)) = az
            && zone != stratus_db::DEFAULT_ZONE
            && !self.ds.service_zone_available(zone).await?
        {
            return Err(ComputeError::BadRequest(format!("The requested availability zone is not available: {zone}")));
        }
        if let Some(h) = host {
            let svc = match self.ds.service_get_by_host(h).await {
                Ok(svc) => svc,
                Err(DbError::NotFound { .. }) => {
                    return Err(ComputeError::BadRequest(format!("Compute host {h} could not be found.")));
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(Some(zone)) = az
                && *zone != svc.zone
            {
                return Err(ComputeError::BadRequest(format!("Host {h} is not in the availability zone {zone}.")));
            }
        }
        Ok(())
    }

    /// Nova's rules for pinning a server to a zone (2.104): null unpins; a
    /// pinned server cannot be pinned to another zone directly (409); an
    /// unpinned one only to the zone it is in (409).
    async fn check_pin(&self, s: &ServerRow, requested: Option<&str>) -> Result<(), ComputeError> {
        let Some(requested) = requested else { return Ok(()) };
        if let Some(current) = &s.availability_zone {
            if current != requested {
                return Err(ComputeError::Conflict(
                    "Cannot change pinned availability zone directly. Unpin first by setting pinned_availability_zone to null.".into(),
                ));
            }
            return Ok(());
        }
        let actual = match &s.host {
            Some(h) => match self.ds.service_get_by_host(h).await {
                Ok(svc) => svc.zone,
                Err(DbError::NotFound { .. }) => stratus_db::DEFAULT_ZONE.to_string(),
                Err(e) => return Err(e.into()),
            },
            None => stratus_db::DEFAULT_ZONE.to_string(),
        };
        if actual != requested {
            return Err(ComputeError::Conflict(format!(
                "Server can only be pinned to its current availability zone '{actual}', but '{requested}' was requested."
            )));
        }
        Ok(())
    }

    async fn check_resize_quota(&self, s: &ServerRow, new: &FlavorRow) -> Result<(), ComputeError> {
        let limits = self.quota_limits(&s.project_id).await?;
        let u = self.ds.quota_usage(&s.project_id).await?;
        for (name, used, delta, lim) in [
            ("cores", u.cores, new.vcpus.saturating_sub(s.vcpus), limits.cores),
            ("ram", u.ram, new.ram_mb.saturating_sub(s.ram_mb), limits.ram),
        ] {
            if delta > 0 && stratus_db::exceeds(used, delta, lim) {
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
        if !lock && s.locked && s.locked_by == Some(LockedBy::Admin) && !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.".into(),
            ));
        }
        let by = if ctx.is_admin() && ctx.project_id != s.project_id { LockedBy::Admin } else { LockedBy::Owner };
        let t = Transition {
            from_task: Some(s.task_state),
            lock: Some(if lock { (true, Some(by), reason) } else { (false, None, None) }),
            ..Default::default()
        };
        let t = Transition {
            from_task: if s.task_state == Some(TaskState::Deleting) {
                Some(Some(TaskState::Deleting))
            } else {
                t.from_task
            },
            ..t
        };
        self.ds.server_transition(&s.id, &t).await?;
        self.ds
            .action_create(&s.id, request_id, if lock { "lock" } else { "unlock" }, &ctx.user_id, &ctx.project_id)
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
        let deleting = s.task_state == Some(TaskState::Deleting);
        let t = if deleting {
            Transition { from_task: Some(Some(TaskState::Deleting)), vm: Some(state), ..Default::default() }
        } else {
            Transition { from_task: Some(s.task_state), vm: Some(state), task: Some(None), ..Default::default() }
        };
        self.ds.server_transition(&s.id, &t).await?;
        self.ds.action_create(&s.id, request_id, "resetState", &ctx.user_id, &ctx.project_id).await?;
        // Open operations of the server other than delete lose their purpose.
        if !deleting {
            for op in self.ds.op_list_open_for_server(&s.id).await? {
                self.wake(&op.id).await;
            }
        }
        Ok(())
    }

    /// `PUT /servers/{id}`: rename (the only change this cloud stores) and
    /// return the server as it now is. `name` is the new name (if any) or the
    /// message of why the body was refused: existence and policy are checked
    /// first, as Nova does.
    pub async fn update_server(
        &self,
        ctx: &AuthContext,
        id: &str,
        update: Result<stratus_api::compute::ServerUpdate, String>,
    ) -> Result<ServerWithResources, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:update to be performed.".into(),
            ));
        }
        let update = update.map_err(ComputeError::BadRequest)?;
        if let Some(pin) = &update.pinned_availability_zone {
            self.check_pin(&s, pin.as_deref()).await?;
        }
        if let Some(name) = update.name {
            self.ds.server_rename(&s.id, &name).await?;
        }
        if let Some(description) = update.description {
            self.ds.server_set_description(&s.id, description.as_deref()).await?;
        }
        if let Some(hostname) = update.hostname {
            self.ds.server_set_hostname(&s.id, &hostname).await?;
        }
        if let Some(pin) = update.pinned_availability_zone {
            self.ds.server_set_availability_zone(&s.id, pin.as_deref()).await?;
        }
        let ips = &update.access_ips;
        self.ds.server_set_access_ips(&s.id, ips.v4.as_deref(), ips.v6.as_deref()).await?;
        self.server_show(ctx, id).await
    }
}

impl ComputeApi {
    /// The image a volume-backed server's root volume was made from
    /// (Cinder's `volume_image_metadata.image_id`), if any.
    async fn root_volume_image(&self, server: &stratus_types::ServerId) -> Result<Option<String>, ComputeError> {
        let atts = self.ds.attachment_list_for_server(server).await?;
        let Some(root) = atts.iter().find(|a| a.boot_index == Some(0)) else {
            return Ok(None);
        };
        match self.ds.volume_get(&root.volume_id).await {
            Ok(v) => Ok(v.image_id),
            Err(DbError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// What `createBackup` adds to a snapshot: after it, only the `rotation`
/// newest backups of `backup_type` of the server are kept.
#[derive(Clone, Debug)]
pub struct BackupRotation {
    /// The backup type (`daily`, `weekly`, ...).
    pub backup_type: String,
    /// How many to keep.
    pub rotation: u32,
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
    /// `unshelve`, to a zone (2.77; `Some(None)` unpins, 2.91) or a host (2.91, admins).
    Unshelve {
        /// `Some(Some(az))`: that zone; `Some(None)`: unpinned; `None`: unchanged.
        availability_zone: Option<Option<String>>,
        /// The host to unshelve on.
        host: Option<String>,
    },
    /// `resize` to another flavor.
    Resize {
        /// `flavorRef` as given (for messages).
        flavor_ref: String,
        /// The flavor id in `flavorRef` (last segment of a URL).
        flavor_id: String,
    },
    /// `migrate` (cold, admin), to `host` when the admin chose one (2.56).
    Migrate {
        /// Destination; `None`: the scheduler picks.
        host: Option<String>,
    },
    /// `confirmResize`.
    ConfirmResize,
    /// `revertResize`.
    RevertResize,
    /// `evacuate` (admin, source host down).
    Evacuate {
        /// Destination (the scheduler still checks it fits); `None`: the scheduler picks.
        host: Option<String>,
        /// End stopped whatever the state before (2.95); otherwise a
        /// stopped server ends stopped and any other active, as Nova.
        stop: bool,
    },
    /// `createImage`.
    CreateImage {
        /// Snapshot name.
        name: String,
        /// Snapshot properties.
        metadata: BTreeMap<String, String>,
        /// Id the snapshot image gets (chosen by the caller, returned in `Location`).
        image_id: stratus_types::ImageId,
        /// `createBackup`: the backups of this type to keep once it is made.
        backup: Option<BackupRotation>,
    },
    /// `restore` a soft-deleted server.
    Restore,
    /// `rebuild` from an image (in place, on the server's host).
    Rebuild {
        /// `imageRef` as given.
        image_ref: String,
        /// New name.
        name: Option<String>,
        /// New metadata (replaces the old).
        metadata: Option<BTreeMap<String, String>>,
        /// New description, `Some(None)` clears it (2.19+).
        description: Option<Option<String>>,
        /// New key pair name, `Some(None)` unsets it (2.54+).
        key_name: Option<Option<String>>,
        /// New user data, `Some(None)` clears it (2.57+).
        user_data: Option<Option<String>>,
        /// New guest host name (2.90+).
        hostname: Option<String>,
        /// Re-image a volume-backed server's root volume (2.93+): the
        /// rebuild may then change its image. Below 2.93 Nova keeps a
        /// volume-backed server's image and refuses another one.
        reimage_boot_volume: bool,
        /// New `accessIPv4` / `accessIPv6`.
        access_ips: stratus_api::compute::AccessIps,
    },
}

struct Rule {
    method: &'static str,
    action: &'static str,
    kind: OpKind,
    from_vm: Vec<VmState>,
    tasks: Vec<Option<TaskState>>,
    new_task: TaskState,
    /// Nova's rule, when its default is ADMIN (no project role suffices).
    admin_only: Option<&'static str>,
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
        admin_only: None,
    };
    match a {
        Action::Stop => r("stop", OpKind::Stop, vec![V::Active, V::Error], T::PoweringOff),
        Action::Start => r("start", OpKind::Start, vec![V::Stopped], T::PoweringOn),
        Action::Reboot { hard: false } => {
            Rule { tasks: vec![None, Some(T::Rebooting)], ..r("reboot", OpKind::Reboot, vec![V::Active], T::Rebooting) }
        }
        Action::Reboot { hard: true } => Rule {
            tasks: vec![None, Some(T::Rebooting), Some(T::RebootingHard)],
            ..r(
                "reboot",
                OpKind::Reboot,
                vec![V::Active, V::Stopped, V::Paused, V::Suspended, V::Error],
                T::RebootingHard,
            )
        },
        Action::Pause => r("pause", OpKind::Pause, vec![V::Active], T::Pausing),
        Action::Unpause => r("unpause", OpKind::Unpause, vec![V::Paused], T::Unpausing),
        Action::Suspend => r("suspend", OpKind::Suspend, vec![V::Active], T::Suspending),
        Action::Resume => r("resume", OpKind::Resume, vec![V::Suspended], T::Resuming),
        Action::Shelve => {
            r("shelve", OpKind::Shelve, vec![V::Active, V::Stopped, V::Paused, V::Suspended], T::Shelving)
        }
        // Nova's default for os-shelve:shelve_offload is ADMIN (shelve and unshelve are the member's).
        Action::ShelveOffload => Rule {
            admin_only: Some("os_compute_api:os-shelve:shelve_offload"),
            ..r("shelveOffload", OpKind::ShelveOffload, vec![V::Shelved], T::ShelvingOffloading)
        },
        Action::Unshelve { .. } => {
            r("unshelve", OpKind::Unshelve, vec![V::Shelved, V::ShelvedOffloaded], T::Unshelving)
        }
        Action::Resize { .. } => r("resize", OpKind::Resize, vec![V::Active, V::Stopped], T::ResizePrep),
        Action::Migrate { .. } => Rule {
            admin_only: Some("os_compute_api:os-migrate-server:migrate"),
            ..r("migrate", OpKind::Resize, vec![V::Active, V::Stopped], T::ResizePrep)
        },
        Action::ConfirmResize => r("confirmResize", OpKind::ConfirmResize, vec![V::Resized], T::ResizeConfirming),
        Action::RevertResize => r("revertResize", OpKind::RevertResize, vec![V::Resized], T::ResizeReverting),
        Action::Evacuate { .. } => Rule {
            admin_only: Some("os_compute_api:os-evacuate"),
            ..r("evacuate", OpKind::Evacuate, vec![V::Active, V::Stopped, V::Error], T::Rebuilding)
        },
        Action::CreateImage { backup: Some(_), .. } => r(
            "createBackup",
            OpKind::CreateImage,
            vec![V::Active, V::Stopped, V::Paused, V::Suspended],
            T::ImageSnapshot,
        ),
        Action::CreateImage { backup: None, .. } => r(
            "createImage",
            OpKind::CreateImage,
            vec![V::Active, V::Stopped, V::Paused, V::Suspended],
            T::ImageSnapshot,
        ),
        Action::Restore => r("restore", OpKind::Restore, vec![V::SoftDeleted], T::Restoring),
        Action::Rebuild { .. } => r("rebuild", OpKind::Rebuild, vec![V::Active, V::Stopped, V::Error], T::Rebuilding),
    }
}
