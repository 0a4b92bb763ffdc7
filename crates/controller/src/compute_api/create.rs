//! Server create: the block device mappings, the image and the flavor are
//! checked here (not in the HTTP handler), then the servers are recorded with
//! their create operations, all or none.

use super::{ComputeApi, ComputeError, Created, ServerSpec, VolumeBdm, device_name, sanitize_hostname};
use stratus_api::compute::{BlockDeviceMappingV2, ServerCreate};
use stratus_auth::AuthContext;
use stratus_db::{DbError, FlavorRow, ImageRow, NewOperation, NewServer, ServerRow};
use stratus_types::{AttachmentId, ImageId, PowerState, ServerId, TaskState, VmState, VolumeId};
use tracing::info;

impl ComputeApi {
    /// `POST /servers`: check the mappings, flavor and image against the
    /// datastore and the caller, then create the servers.
    pub async fn create(
        &self,
        ctx: &AuthContext,
        req: ServerCreate,
        request_id: &str,
    ) -> Result<Vec<Created>, ComputeError> {
        self.authorize_create(ctx)?;
        let requested_host = self.check_requested_host(ctx, &req).await?;
        let (bdm_image, mut volumes) = self.check_bdms(ctx, &req.block_devices).await?;
        let boot_from_volume = volumes.iter().any(|v| v.boot_index == Some(0));
        let flavor = self.flavor_for_request(ctx, &req.flavor_ref, &req.flavor_id).await?;
        let image_ref = req.image_ref.clone().or(bdm_image);
        let mut image = match image_ref.as_deref() {
            Some("") => None,
            Some(r) => Some(self.check_image(ctx, r, &flavor).await?),
            None if boot_from_volume => None,
            None => return Err(ComputeError::BadRequest("Missing imageRef attribute".into())),
        };
        if let Some(i) = &image {
            // A volume-backed server's snapshot: boot from volumes made
            // from its snapshots; the server is volume-backed.
            let mapped = self.image_mappings(ctx, i, &volumes).await?;
            if mapped.iter().any(|m| m.boot_index == Some(0)) || (boot_from_volume && !mapped.is_empty()) {
                info!(image = %i.id, volumes = mapped.len(), "image maps volume snapshots: booting from volumes");
                volumes.extend(mapped);
                image = None;
            }
        }
        if let Some(key) = &req.key_name {
            // Nova: a key pair the creating user does not have is a 400.
            match self.ds.keypair_get(&ctx.user_id, key).await {
                Err(stratus_db::DbError::NotFound { .. }) => {
                    return Err(ComputeError::BadRequest("Invalid key_name provided.".into()));
                }
                other => drop(other?),
            }
        }
        if let Some(az) = &req.availability_zone {
            // Nova: only a zone with an enabled compute host may be asked
            // for (the default zone is always accepted here: a cloud's first
            // servers ask for it before any host has joined).
            if az != stratus_db::DEFAULT_ZONE && !self.ds.service_zone_available(az).await? {
                return Err(ComputeError::BadRequest(format!(
                    "The requested availability zone is not available: {az}"
                )));
            }
        }
        let spec = ServerSpec {
            volumes,
            name: req.name,
            image_id: image.as_ref().map(|i| i.id),
            flavor,
            metadata: req.metadata,
            key_name: req.key_name,
            availability_zone: req.availability_zone,
            allocate_network: req.networks.allocates(),
            count: req.count,
            description: req.description,
            tags: req.tags,
            user_data: req.user_data,
            requested_host,
            hostname: req.hostname,
            scheduler_hints: req.scheduler_hints,
            access_ips: req.access_ips,
        };
        self.create_servers(ctx, &spec, request_id).await
    }

    /// The volumes of a block device mapping, and the image of an
    /// image -> local mapping (the CLI sends one for "boot from this image").
    async fn check_bdms(
        &self,
        ctx: &AuthContext,
        bdms: &[BlockDeviceMappingV2],
    ) -> Result<(Option<String>, Vec<VolumeBdm>), ComputeError> {
        let mut bdm_image: Option<String> = None;
        let mut volumes: Vec<VolumeBdm> = Vec::new();
        for b in bdms {
            let (src, dst) = (b.source_type.as_str(), b.destination_type.as_str());
            match (src, dst) {
                ("image", "local") => bdm_image = b.uuid.clone(),
                ("blank", "local") => {}
                ("image", "volume") | ("volume", "volume") | ("snapshot", "volume") => {
                    let Some(id) = b.uuid.clone().filter(|u| uuid::Uuid::parse_str(u).is_ok()) else {
                        return Err(ComputeError::BadRequest(
                            "Block Device Mapping is Invalid: a volume mapping needs a valid 'uuid'.".into(),
                        ));
                    };
                    if let Some(sz) = b.volume_size
                        && sz < 1
                    {
                        return Err(ComputeError::BadRequest(format!(
                            "Block Device Mapping is Invalid: volume_size {sz} must be at least 1."
                        )));
                    }
                    // Nova's schema maximum (db.MAX_INT), before any quota sum.
                    if let Some(sz) = b.volume_size
                        && sz > stratus_volume::MAX_VOLUME_SIZE_GB
                    {
                        return Err(ComputeError::BadRequest(format!(
                            "Invalid input for field/attribute volume_size. Value: {sz}. {sz} is greater than the maximum of {}",
                            stratus_volume::MAX_VOLUME_SIZE_GB
                        )));
                    }
                    if src == "image" {
                        // An id not in our spelling never named an image: the same "not found".
                        let found = match ImageId::parse_canonical(&id) {
                            Some(image_id) => self.ds.image_get(&image_id).await.ok(),
                            None => None,
                        };
                        let visible = match &found {
                            Some(i) => self.image_visible_to(ctx, i).await?,
                            None => false,
                        };
                        if !visible {
                            return Err(ComputeError::BadRequest(format!("Image {id} could not be found.")));
                        }
                    }
                    let mut size_gb = b.volume_size.unwrap_or(1);
                    if src == "snapshot" {
                        // Nova reads the snapshot (its InvalidBDMSnapshot
                        // otherwise) and sizes the volume after it.
                        let snap = self.bdm_snapshot(ctx, &id).await?;
                        size_gb = b.volume_size.unwrap_or(snap.size_gb);
                        if size_gb < snap.size_gb {
                            return Err(ComputeError::BadRequest(format!(
                                "Block Device Mapping is Invalid: volume_size {size_gb} is smaller than snapshot {id} ({} GiB).",
                                snap.size_gb
                            )));
                        }
                    }
                    let volume_type_id = match &b.volume_type {
                        Some(t) => Some(self.volume_type_for_request(ctx, t).await?),
                        None => None,
                    };
                    volumes.push(VolumeBdm {
                        image_id: (src == "image").then(|| id.clone()),
                        volume_id: (src == "volume").then(|| id.clone()),
                        snapshot_id: (src == "snapshot").then(|| id.clone()),
                        size_gb,
                        boot_index: b.boot_index,
                        delete_on_termination: b.delete_on_termination,
                        volume_type_id,
                    });
                }
                _ => {
                    return Err(ComputeError::BadRequest(format!(
                        "Block device mapping {src} -> {dst} is not supported by this cloud."
                    )));
                }
            }
        }
        Ok((bdm_image, volumes))
    }

    /// The volume snapshot a `snapshot -> volume` mapping names: the
    /// caller's (any for admins) and `available`, else Nova's
    /// `InvalidBDMSnapshot` 400.
    async fn bdm_snapshot(&self, ctx: &AuthContext, id: &str) -> Result<stratus_db::SnapshotRow, ComputeError> {
        let invalid =
            || ComputeError::BadRequest(format!("Block Device Mapping is Invalid: failed to get snapshot {id}."));
        let snap = match self.ds.snapshot_get(id).await {
            Ok(s) if ctx.is_admin() || s.project_id == ctx.project_id => s,
            Ok(_) | Err(DbError::NotFound { .. }) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if snap.status != "available" {
            return Err(ComputeError::BadRequest(format!(
                "Block Device Mapping is Invalid: snapshot {id} is {}, not available.",
                snap.status
            )));
        }
        Ok(snap)
    }

    /// The volumes an image of a volume-backed server's snapshot maps
    /// (`bdm_v2` and `block_device_mapping` properties, as Nova writes
    /// them): booting from it makes each volume again from its snapshot.
    /// Mappings the request gives itself win (same boot index); an image
    /// without such properties maps nothing.
    async fn image_mappings(
        &self,
        ctx: &AuthContext,
        image: &ImageRow,
        requested: &[VolumeBdm],
    ) -> Result<Vec<VolumeBdm>, ComputeError> {
        let props: serde_json::Value = serde_json::from_str(&image.properties).unwrap_or_default();
        let Some(raw) = props.get("block_device_mapping") else { return Ok(Vec::new()) };
        let list: Vec<serde_json::Value> = match raw {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
            serde_json::Value::Array(a) => a.clone(),
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for m in list {
            let boot_index = m.get("boot_index").and_then(|b| b.as_i64().or_else(|| b.as_str()?.parse().ok()));
            if requested.iter().any(|r| r.boot_index.is_some() && r.boot_index == boot_index) {
                continue;
            }
            let (Some("snapshot"), Some(id)) =
                (m.get("source_type").and_then(|v| v.as_str()), m.get("snapshot_id").and_then(|v| v.as_str()))
            else {
                continue;
            };
            let snap = self.bdm_snapshot(ctx, id).await?;
            out.push(VolumeBdm {
                image_id: None,
                volume_id: None,
                snapshot_id: Some(id.to_string()),
                size_gb: m.get("volume_size").and_then(|v| v.as_i64()).unwrap_or(snap.size_gb).max(snap.size_gb),
                boot_index,
                delete_on_termination: m.get("delete_on_termination").and_then(|v| v.as_bool()).unwrap_or(false),
                volume_type_id: None,
            });
        }
        Ok(out)
    }

    /// The host a create asks for with `host` and/or `hypervisor_hostname`
    /// (2.74): admins only (Nova's `servers:create:requested_destination`),
    /// and a compute host that exists (a node is named as its host here).
    async fn check_requested_host(
        &self,
        ctx: &AuthContext,
        req: &ServerCreate,
    ) -> Result<Option<String>, ComputeError> {
        let (host, node) = (req.host.as_deref(), req.hypervisor_hostname.as_deref());
        let Some(wanted) = host.or(node) else { return Ok(None) };
        if !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow compute:servers:create:requested_destination to be performed.".into(),
            ));
        }
        if let (Some(h), Some(n)) = (host, node)
            && h != n
        {
            return Err(ComputeError::BadRequest(format!("Compute host {n} could not be found.")));
        }
        match self.ds.service_get_by_host(wanted).await {
            Ok(_) => Ok(Some(wanted.to_string())),
            Err(DbError::NotFound { .. }) => {
                Err(ComputeError::BadRequest(format!("Compute host {wanted} could not be found.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The id of the volume type a block device mapping names by id or by
    /// name (Nova, 2.67): one the caller cannot see, or none, is a 400.
    async fn volume_type_for_request(&self, ctx: &AuthContext, id_or_name: &str) -> Result<String, ComputeError> {
        let visible_to = (!ctx.is_admin()).then_some(ctx.project_id.as_str());
        match self.ds.volume_type_get(id_or_name, visible_to).await {
            Ok(t) => return Ok(t.id),
            Err(DbError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        match self.ds.volume_type_get_by_name(id_or_name, visible_to).await {
            Ok(t) => Ok(t.id),
            Err(DbError::NotFound { .. }) => {
                Err(ComputeError::BadRequest(format!("Volume type {id_or_name} could not be found.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The flavor a request names (create, resize); an unknown one, or
    /// another project's private one, is a 400.
    pub(super) async fn flavor_for_request(
        &self,
        ctx: &AuthContext,
        flavor_ref: &str,
        flavor_id: &str,
    ) -> Result<FlavorRow, ComputeError> {
        match self.ds.flavor_get(flavor_id, (!ctx.is_admin()).then_some(ctx.project_id.as_str())).await {
            Ok(f) => Ok(f),
            Err(DbError::NotFound { .. }) => {
                Err(ComputeError::BadRequest(format!("Flavor {flavor_ref} could not be found.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A bootable image the caller may use with this flavor, or a 400 saying why not.
    pub(super) async fn check_image(
        &self,
        ctx: &AuthContext,
        image_ref: &str,
        flavor: &FlavorRow,
    ) -> Result<ImageRow, ComputeError> {
        if uuid::Uuid::parse_str(image_ref).is_err() {
            return Err(ComputeError::BadRequest(format!(
                "Invalid image identifier or unable to access requested image: {image_ref} is not a UUID"
            )));
        }
        // A UUID in another spelling never named an image: the same "not found".
        let Some(image_id) = ImageId::parse_canonical(image_ref) else {
            return Err(ComputeError::BadRequest(format!("Image {image_ref} could not be found.")));
        };
        let image = match self.ds.image_get(&image_id).await {
            Ok(i) if self.image_visible_to(ctx, &i).await? => i,
            Ok(_) | Err(DbError::NotFound { .. }) => {
                return Err(ComputeError::BadRequest(format!("Image {image_ref} could not be found.")));
            }
            Err(e) => return Err(e.into()),
        };
        if image.status != stratus_types::image::ImageStatus::Active {
            return Err(ComputeError::BadRequest(format!("Image {} is not active.", image.id)));
        }
        if flavor.ram_mb < image.min_ram {
            return Err(ComputeError::BadRequest("Flavor's memory is too small for requested image.".into()));
        }
        if flavor.disk_gb > 0 && flavor.disk_gb < image.min_disk {
            return Err(ComputeError::BadRequest("Flavor's disk is too small for requested image.".into()));
        }
        Ok(image)
    }

    /// May the caller create servers? Nova's `os_compute_api:servers:create`
    /// is PROJECT_MEMBER_OR_ADMIN. The handler asks before it reads the body,
    /// so a reader gets 403 rather than a 400 about the body.
    pub fn authorize_create(&self, ctx: &AuthContext) -> Result<(), ComputeError> {
        if ctx.can_write() {
            Ok(())
        } else {
            Err(ComputeError::Forbidden("Policy doesn't allow os_compute_api:servers:create to be performed.".into()))
        }
    }

    /// Create `spec.count` servers (all or none, within quota).
    pub async fn create_servers(
        &self,
        ctx: &AuthContext,
        spec: &ServerSpec,
        request_id: &str,
    ) -> Result<Vec<Created>, ComputeError> {
        self.authorize_create(ctx)?;
        if spec.count > 1 && spec.volumes.iter().any(|b| b.volume_id.is_some()) {
            return Err(ComputeError::BadRequest("Cannot attach one or more volumes to multiple instances".into()));
        }
        let limits = self.quota_limits(&ctx.project_id).await?;
        let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut out: Vec<Created> = Vec::new();
        let mut ops = Vec::new();
        for i in 0..spec.count {
            match self.create_one(ctx, spec, request_id, limits, &reservation_id, i).await {
                Ok((created, op)) => {
                    out.push(created);
                    ops.push(op);
                }
                Err(e) => {
                    // Nova creates all of a multi-create or none: undo what was made
                    // (nothing has been woken yet, so no build started).
                    for c in &out {
                        if let Err(u) = self.delete_or_force(ctx, &c.server.id, request_id, false).await {
                            tracing::warn!(server = %c.server.id, error = %u, "undoing a failed multi-create");
                        }
                    }
                    return Err(e);
                }
            }
        }
        for op in &ops {
            self.wake(op).await;
        }
        Ok(out)
    }

    /// One server of [`ComputeApi::create_servers`]: its row, operation,
    /// port and volume reservations; not yet woken.
    async fn create_one(
        &self,
        ctx: &AuthContext,
        spec: &ServerSpec,
        request_id: &str,
        limits: stratus_db::QuotaLimits,
        reservation_id: &str,
        i: u32,
    ) -> Result<(Created, stratus_types::OperationId), ComputeError> {
        let reservation_id = reservation_id.to_string();
        {
            let name = if spec.count > 1 { format!("{}-{}", spec.name, i + 1) } else { spec.name.clone() };
            let id = ServerId::new();
            let row = ServerRow {
                id,
                hostname: spec.hostname.clone().unwrap_or_else(|| sanitize_hostname(&name)),
                name,
                project_id: ctx.project_id.clone(),
                user_id: ctx.user_id.clone(),
                image_id: spec.image_id,
                flavor_id: spec.flavor.id.clone(),
                flavor_name: spec.flavor.name.clone(),
                vcpus: spec.flavor.vcpus,
                ram_mb: spec.flavor.ram_mb,
                disk_gb: spec.flavor.disk_gb,
                ephemeral_gb: spec.flavor.ephemeral_gb,
                swap_mb: spec.flavor.swap_mb,
                vm_state: VmState::Building,
                task_state: Some(TaskState::Scheduling),
                power_state: PowerState::NoState,
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
                created_at: stratus_db::SET_ON_INSERT,
                updated_at: stratus_db::SET_ON_INSERT,
                deleted_at: None,
                deleted: false,
                shelved_image_id: None,
                description: spec.description.clone(),
                user_data: spec.user_data.clone(),
                scheduler_hints: spec.scheduler_hints.as_ref().map(|h| h.to_string()),
                access_ip_v4: spec.access_ips.v4.clone(),
                access_ip_v6: spec.access_ips.v6.clone(),
            };
            let new = NewServer {
                row,
                allocate_port: spec.allocate_network,
                tags: spec.tags.clone(),
                operation: NewOperation {
                    id: stratus_types::OperationId::new(),
                    kind: stratus_types::OpKind::Create,
                    server_id: id,
                    request_id: request_id.to_string(),
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id.clone(),
                    params: crate::params::encode(&crate::params::CreateParams {
                        volumes: spec.volumes.clone(),
                        requested_host: spec.requested_host.clone(),
                    }),
                },
            };
            // Existing volumes are reserved now, so a busy one is a 400 at once.
            // Their ids are parsed here, once: text that is not a volume id
            // fails like a missing volume.
            let mut existing: Vec<Option<VolumeId>> = Vec::with_capacity(spec.volumes.len());
            for b in &spec.volumes {
                existing.push(None);
                if let Some(vid) = &b.volume_id {
                    let bad = || {
                        ComputeError::BadRequest(format!(
                            "Block Device Mapping is Invalid: failed to get volume {vid}."
                        ))
                    };
                    let id = VolumeId::parse_canonical(vid).ok_or_else(bad)?;
                    let v = self.ds.volume_get(&id).await.map_err(|_| bad())?;
                    if let Some(slot) = existing.last_mut() {
                        *slot = Some(id);
                    }
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
            let (server, op) = self.ds.server_create(&new, limits).await?;
            for (i, (b, vid)) in spec.volumes.iter().zip(&existing).enumerate() {
                if let Some(vid) = vid {
                    let att = stratus_db::AttachmentRow {
                        id: AttachmentId::new(),
                        volume_id: *vid,
                        server_id: server.id,
                        host: None,
                        connector: None,
                        client_id: None,
                        mountpoint: Some(device_name(i)),
                        status: stratus_types::AttachStatus::Reserved,
                        delete_on_termination: b.delete_on_termination,
                        boot_index: b.boot_index,
                        created_at: stratus_db::SET_ON_INSERT,
                    };
                    if let Err(e) = self.ds.attachment_create(&att).await {
                        let _ = self.delete_or_force(ctx, &server.id, request_id, false).await;
                        return Err(ComputeError::BadRequest(format!("Invalid volume: {e}")));
                    }
                }
            }
            info!(server = %server.id, request = request_id, "server create recorded");
            Ok((Created { server, admin_pass: stratus_auth::random_secret()[..12].to_string() }, op.id))
        }
    }
}

impl ComputeApi {
    /// May the caller use this image? The image service's one visibility
    /// rule, a shared image's members included (Nova boots whatever Glance
    /// shows the caller).
    async fn image_visible_to(&self, ctx: &AuthContext, image: &ImageRow) -> Result<bool, ComputeError> {
        Ok(stratus_image::visible_with_members(&self.ds, ctx, image).await?)
    }
}
