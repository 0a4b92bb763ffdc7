//! The compute service: what the HTTP layer calls to read and change
//! servers, flavors and compute hosts. Each change validates against the
//! current state exactly as Nova does, then records intent (server state and a
//! durable operation in one transaction) and wakes the runner. Handlers never
//! read the datastore themselves: the queries live here too ([`queries`]).
//!
//! - [`create`]: server create (block device mappings, image and flavor checks).
//! - [`delete`]: delete and forceDelete (soft or hard delete path).
//! - [`actions`]: `POST /servers/{id}/action` intents, lock, resetState, rename.
//! - [`volumes`]: volume attachments of a server.
//! - [`hosts`]: compute services: list, enable/disable, force-down.
//! - [`aggregates`]: host aggregates and the availability zones they make.
//! - [`quotas`]: quota sets and quota classes (limits, defaults, usage).
//! - [`queries`]: reads for the views (servers with ports and volumes, flavors,
//!   instance actions, limits and usage, zombies).

mod actions;
mod aggregates;
mod console;
mod create;
mod delete;
mod error;
mod flavors;
mod hosts;
mod hypervisors;
mod keypairs;
mod metadata;
mod migrations;
mod queries;
mod quotas;
mod security_groups;
mod tags;
mod usage;
mod volumes;

pub use actions::{Action, BackupRotation};
pub use aggregates::{AggregateVerb, Zone};

pub use error::{ComputeError, Resource};
pub use flavors::FlavorPage;
pub use hosts::{HostChange, ServiceChange, ServiceState, ServiceUpdate, ServiceUpdated};
pub use hypervisors::{HostResources, HostUpdate, Hypervisor, HypervisorTotals};
pub use keypairs::{KeypairCreate, KeypairCreated, check_keypair_name};
pub use metadata::MetadataChange;
pub use migrations::MigrationList;
pub use queries::{Limits, ServerList, ServerQuery, ServerWithResources};
pub use quotas::QuotaDetail;
pub use tags::TagSet;
pub use usage::{ServerUsage, TenantUsage, page_usage, usage_time};
pub use volumes::AttachOptions;

use crate::ControllerConfig;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_bus::Bus;
use stratus_db::{Datastore, DbError, FlavorRow, ServerRow};
use stratus_types::ServerId;
use stratus_types::agent::SUBJECT_OPS_WAKE;

/// A validated create request.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Name (or name template base for several).
    pub name: String,
    /// Image id (resolved, visible to the caller).
    pub image_id: Option<stratus_types::ImageId>,
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
    /// Description (2.19+).
    pub description: Option<String>,
    /// Tags (2.52+).
    pub tags: Vec<String>,
    /// User data (base64) as sent.
    pub user_data: Option<String>,
    /// The host an admin asked for (2.74), already checked to exist.
    pub requested_host: Option<String>,
    /// The guest host name asked for (2.90; else derived from the name).
    pub hostname: Option<String>,
    /// Scheduler hints as given (shown from 2.100; the scheduler uses none).
    pub scheduler_hints: Option<serde_json::Value>,
    /// `accessIPv4` / `accessIPv6` to record (Nova stores them as given).
    pub access_ips: stratus_api::compute::AccessIps,
}

/// A volume in a server's block device mapping.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VolumeBdm {
    /// Create the volume from this image (`source_type: image`).
    pub image_id: Option<String>,
    /// Use this existing volume (`source_type: volume`).
    pub volume_id: Option<String>,
    /// Create the volume from this volume snapshot (`source_type:
    /// snapshot`, also what a volume-backed server's snapshot image maps).
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// Size of a volume created from an image, GiB.
    pub size_gb: i64,
    /// 0 for the root volume.
    pub boot_index: Option<i64>,
    /// Delete the volume with the server.
    pub delete_on_termination: bool,
    /// Volume type id of a volume made for the server (2.67; default type when none).
    #[serde(default)]
    pub volume_type_id: Option<String>,
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
    /// The external Keystone, when projects live there (`--keystone-url`).
    keystone: Option<Arc<stratus_auth::Keystone>>,
}

impl ComputeApi {
    /// Bind to a datastore and bus.
    pub fn new(ds: Datastore, bus: Arc<dyn Bus>, cfg: ControllerConfig) -> Self {
        Self { ds, bus, cfg, keystone: None }
    }

    /// Projects named in requests (flavor access) are checked in this
    /// Keystone instead of the built-in identity's tables.
    pub fn with_keystone(mut self, keystone: Arc<stratus_auth::Keystone>) -> Self {
        self.keystone = Some(keystone);
        self
    }

    /// Is `project` a project of this cloud? With an external Keystone,
    /// an id it cannot vouch for now is accepted (as Nova does).
    pub(crate) async fn project_known(&self, project: &str) -> Result<bool, ComputeError> {
        if let Some(k) = &self.keystone {
            return Ok(k.project_exists(project).await != Some(false));
        }
        match self.ds.project_get(project).await {
            Err(stratus_db::DbError::NotFound { .. }) => Ok(false),
            other => other.map(|_| true).map_err(Into::into),
        }
    }

    /// Limits that apply to `project_id`: its overrides over the `default`
    /// quota class over the configured defaults (every quota check uses these).
    pub async fn quota_limits(&self, project_id: &str) -> Result<stratus_db::QuotaLimits, ComputeError> {
        Ok(self.ds.quota_limits(project_id, self.cfg.default_quota).await?)
    }

    /// A server the caller may see; another project's server is 404, like a missing one.
    /// The id arrives as the request's path text: text that is not a server
    /// id in our spelling names no server, so it is the same 404.
    pub async fn get_visible(&self, ctx: &AuthContext, id: &str) -> Result<ServerRow, ComputeError> {
        self.visible(ctx, &ComputeError::parse_server_id(id)?).await
    }

    /// [`ComputeApi::get_visible`] for an id the service already holds typed
    /// (e.g. undoing a multi-create).
    async fn visible(&self, ctx: &AuthContext, id: &ServerId) -> Result<ServerRow, ComputeError> {
        let not_found = || ComputeError::instance_not_found(&id.to_string());
        let s = match self.ds.server_get(id).await {
            Ok(s) => s,
            Err(DbError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&s.project_id) {
            return Err(not_found());
        }
        Ok(s)
    }

    async fn wake(&self, op_id: &stratus_types::OperationId) {
        let _ = self.bus.publish(SUBJECT_OPS_WAKE, Bytes::from(op_id.to_string())).await;
    }

    /// Is the compute service of `host` up now? (Decides soft vs hard delete,
    /// whether a detach is safe and whether evacuate may start.)
    async fn host_is_up(&self, host: &str) -> bool {
        self.ds.service_get_by_host(host).await.map(|svc| svc.is_up()).unwrap_or(false)
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
mod tests;
