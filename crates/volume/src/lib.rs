//! Block storage service logic (what Cinder's API and volume manager do):
//! volumes, attachments as Nova uses them, quota by counting, and the
//! reconciler that makes the inline backend work crash-safe.
//!
//! This crate is the one owner of the volume lifecycle. The HTTP layer
//! (`stratus-server`'s `volume` module) calls [`VolumeService`] for the
//! Cinder API; the controller calls it for the volume steps of a server's
//! operations (boot from volume, attach/detach bookkeeping, fencing and
//! releasing a deleted server's volumes: see the `servers` module).
//!
//! Every call validates against the current state the way
//! Cinder does, writes the database with a compare-and-swap, and then does
//! the backend work inline. Because a process may die between the database
//! write and the backend call, [`VolumeService::reconcile`] finishes what
//! was interrupted. Exactly one role runs it: the controller (the
//! background role), whose periodic loop calls [`VolumeService::tick`]
//! (a pass every [`VolumeConfig::reconcile_interval`]); `stratus api` alone
//! serves the API and never reconciles, so two processes never retry the
//! same queue. A pass:
//!
//! - a volume left `creating` for longer than [`VolumeConfig::stale_after`]
//!   is built again (backend create is idempotent);
//! - a volume left `extending` becomes `error_extending` (the target size was
//!   not recorded; an admin resets it);
//! - a volume left `deleting` with no queued cleanup gets one;
//! - every queued `volume_delete` cleanup is retried until the backend
//!   delete succeeds, and only then is the volume marked deleted;
//! - every queued `unfence` is lifted once the fenced client's host rejoined
//!   with a newer epoch and confirmed the server's VM gone.
//!
//! [`BlockError::Busy`] is never swallowed: a volume whose storage is still
//! watched stays `deleting` and its delete stays in the durable queue
//! (`storage_cleanup`), visible to admins, until it goes.

mod attachments;
mod clones;
mod default_types;
mod error;
mod force_delete;
mod group_snapshots;
mod groups;
mod messages;
mod nova_image;
mod qos;
mod quotas;
mod reconcile;
mod reimage;
mod revert;
mod servers;
mod snapshots;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod transfers;
mod types;

pub use error::{Missing, VolumeError, quota_message};
pub use force_delete::FORCE_DELETABLE;
pub use group_snapshots::GROUP_SNAPSHOT_STATUSES;
pub use groups::{GROUP_STATUSES, GroupUpdate, NewGroup};
pub use messages::{MessageAction, MessageDetail, user_message};
pub use qos::{CONTROL_LOCATIONS, EncryptionChange, QOS_CONSUMERS};
pub use quotas::{QuotaUse, VOLUME_QUOTA_RESOURCES, VolumeLimits};
pub use reconcile::ReconcileReport;
pub use servers::BootVolume;
pub use snapshots::{NewSnapshot, SNAPSHOT_RESET_STATUSES, SnapshotFilter};
pub use stratus_types::{AttachMode, AttachStatus, CleanupKind, MAX_VOLUME_SIZE_GB, VolumeStatus};
pub use transfers::NewTransfer;
pub use types::{DEFAULT_TYPE_ALIAS, RETYPE_REFUSED, check_type_admin};

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_auth::AuthContext;
use stratus_blockstore::{BlockBackend, BlockError};
use stratus_db::{AttachmentRow, Cas, CleanupRow, Datastore, DbError, ImageRow, VolumeRow};
use stratus_image::{DiskFormat, ImageError, ImageService, ImageStatus};
use stratus_types::VolumeId;
use tracing::{info, warn};

/// Cinder's refusal to delete a volume that is in use (attached, reserved,
/// attaching, ...), word for word, because clients and operators match on it.
pub const DELETE_REFUSED: &str = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.";

/// Statuses from which a volume may be deleted (Cinder's list, plus
/// `error_deleting` so a failed delete can be retried by the user).
const DELETABLE: &[VolumeStatus] = &[
    VolumeStatus::Available,
    VolumeStatus::Error,
    VolumeStatus::ErrorRestoring,
    VolumeStatus::ErrorExtending,
    VolumeStatus::ErrorManaging,
    VolumeStatus::ErrorDeleting,
];

/// Statuses an admin may set with `os-reset_status`. `creating` and
/// `deleting` are left out on purpose: the reconciler acts on them (it would
/// rebuild or delete the volume's storage), which a status reset must never
/// trigger.
pub const RESET_STATUSES: &[VolumeStatus] = &[
    VolumeStatus::Available,
    VolumeStatus::Error,
    VolumeStatus::ErrorDeleting,
    VolumeStatus::ErrorExtending,
    VolumeStatus::ErrorRestoring,
    VolumeStatus::ErrorManaging,
    VolumeStatus::Extending,
    VolumeStatus::InUse,
    VolumeStatus::Attaching,
    VolumeStatus::Detaching,
    VolumeStatus::Reserved,
    VolumeStatus::Maintenance,
];

/// The name of Cinder's default type, which volumes get when none is asked
/// for (its id is [`stratus_db::DEFAULT_VOLUME_TYPE_ID`]).
pub const DEFAULT_VOLUME_TYPE: &str = "__DEFAULT__";

/// How [`VolumeService::build`] treats a volume's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Build {
    /// The first build, from the API.
    First,
    /// The reconciler retries an interrupted build: start from scratch.
    Retry,
    /// A boot volume reserved for a server: blank when its image has no file
    /// (the controller's rule) and `reserved` once built. `retry` when an
    /// earlier attempt may have left partial storage behind.
    Boot {
        /// Start from scratch.
        retry: bool,
    },
}

/// What happened to a volume's storage when its delete ran inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeleteOutcome {
    /// The storage is gone; the volume is marked deleted.
    Deleted,
    /// Moved to the backend's trash (purged by the reconciler); marked deleted.
    Trashed,
    /// Refused (busy, or a backend error): the volume stays `deleting` and
    /// its delete is in the durable queue, with this reason.
    Queued(String),
}

/// Cinder's refusal of a size above [`MAX_VOLUME_SIZE_GB`] (its schema's
/// maximum), checked before any quota arithmetic.
pub(crate) fn check_max_size(field: &str, size: i64) -> Result<(), VolumeError> {
    if size > MAX_VOLUME_SIZE_GB {
        return Err(VolumeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {size}. {size} is greater than the maximum of {MAX_VOLUME_SIZE_GB}"
        )));
    }
    Ok(())
}

/// Longest name or description Cinder accepts.
const MAX_TEXT: usize = 255;

/// Settings of the block storage service, from `stratus up` flags.
#[derive(Clone, Debug)]
pub struct VolumeConfig {
    /// Where image files live (`<image_dir>/<image id>`), for `imageRef`.
    pub image_dir: PathBuf,
    /// Default quota: volumes per project (-1 = unlimited).
    pub quota_volumes: i64,
    /// Default quota: GiB per project (-1 = unlimited).
    pub quota_gigabytes: i64,
    /// A `creating`/`extending`/`deleting` volume not updated for this long
    /// was interrupted by a crash and is finished by the reconciler.
    pub stale_after: Duration,
    /// How long a delete waits inline for the backend to remove a volume's
    /// storage before it queues the removal for the reconciler: a server's
    /// delete (its 404) must not wait on a slow backend (an `rbd rm` behind
    /// a dead client's watch takes Ceph's 30 s watch timeout).
    pub inline_delete_timeout: Duration,
    /// How long `POST /volumes` waits for the storage before it answers
    /// `creating` (as Cinder always does) and lets the build finish in the
    /// background: an answer must not wait on a stalled backend (a paused
    /// OSD), or the client times out without learning the volume's id.
    pub create_answer_within: Duration,
    /// Pause between reconciler passes.
    pub reconcile_interval: Duration,
    /// The only availability zone.
    pub availability_zone: String,
    /// Ceph pool of the `rbd` backend, named in `connection_info` as Nova
    /// expects (`pool/volume-<id>`); `None` for other backends.
    pub rbd_pool: Option<String>,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            image_dir: PathBuf::from("images"),
            quota_volumes: 10,
            quota_gigabytes: 1000,
            stale_after: Duration::from_secs(60),
            inline_delete_timeout: Duration::from_secs(3),
            create_answer_within: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(2),
            availability_zone: "nova".into(),
            rbd_pool: None,
        }
    }
}

/// A create request: the Cinder wire type, already parsed from the API body.
pub use stratus_api::volume::CreateVolume as NewVolume;
/// A `PUT /volumes/{id}` request (absent fields are left alone): the Cinder wire type.
pub use stratus_api::volume::UpdateVolume as VolumeUpdate;

/// Filters of `GET /volumes`.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// `all_tenants`: every project (admins only; ignored for others, as Cinder does).
    pub all_projects: bool,
    /// With `all_projects`: only this project.
    pub project_id: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Only the volumes of this group (Cinder 3.10).
    pub group_id: Option<String>,
}

/// The block storage service: volumes and attachments over a datastore and
/// a [`BlockBackend`]. Shared as `Arc<VolumeService>` by the API and the
/// reconciler task.
pub struct VolumeService {
    ds: Datastore,
    backend: Arc<dyn BlockBackend>,
    cfg: VolumeConfig,
    /// Volumes this process is building right now: the reconciler leaves
    /// them alone even when the build takes longer than `stale_after`.
    inflight: Mutex<HashSet<VolumeId>>,
    /// Storage deletes this process still runs after their inline wait
    /// ended: the queued retry leaves them alone until they finish, so one
    /// volume is never removed by two calls at once.
    removing: Arc<Mutex<HashSet<VolumeId>>>,
    last_report: Mutex<Option<ReconcileReport>>,
    /// When the backend's trash was last purged (Unix seconds; a purge costs a CLI call).
    last_purge: std::sync::atomic::AtomicI64,
    /// When [`VolumeService::tick`] last ran a pass.
    last_pass: Mutex<Option<std::time::Instant>>,
    /// Where storage fences are counted.
    metrics: stratus_metrics::Metrics,
    /// Who hears about attached volumes' changes (the compute API), set
    /// once both exist.
    server_events: std::sync::OnceLock<Arc<dyn ServerEvents>>,
}

/// What the compute side must hear about an attached volume, as Cinder
/// tells Nova through `os-server-external-events`.
#[async_trait::async_trait]
pub trait ServerEvents: Send + Sync {
    /// `volume-extended`: the volume of `attachment` grew; its server's VM
    /// must be shown the new size. `request_id` names the instance action.
    async fn volume_extended(&self, attachment: &AttachmentRow, request_id: &str);
}

/// Removes a volume from the in-flight set when the build ends (or panics).
struct Inflight<'a> {
    set: &'a Mutex<HashSet<VolumeId>>,
    id: VolumeId,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// Cinder's default for every change (`volume:create`, `volume:update`,
/// `volume:attachment_create`, ...) is SYSTEM_ADMIN_OR_PROJECT_MEMBER:
/// readers change nothing. Public so the HTTP layer can check it before it
/// reads a request body (a reader gets 403, not a 400 about the body).
pub fn check_write(ctx: &AuthContext, action: &str) -> Result<(), VolumeError> {
    if ctx.can_write() { Ok(()) } else { Err(VolumeError::Forbidden { action: format!("volume:{action}") }) }
}

pub(crate) fn check_text(field: &str, v: Option<&str>) -> Result<(), VolumeError> {
    match v {
        Some(s) if s.chars().count() > MAX_TEXT => Err(VolumeError::BadRequest(format!(
            "Invalid input received: {field} has more than {MAX_TEXT} characters."
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn check_metadata(m: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > MAX_TEXT || v.chars().count() > MAX_TEXT {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: metadata key and value must be 1 to {MAX_TEXT} characters (key {k:?})."
            )));
        }
    }
    Ok(())
}

impl VolumeService {
    /// Bind the service to a datastore, a backend and its settings.
    pub fn new(ds: Datastore, backend: Arc<dyn BlockBackend>, cfg: VolumeConfig) -> Self {
        Self {
            ds,
            backend,
            cfg,
            inflight: Mutex::new(HashSet::new()),
            removing: Arc::new(Mutex::new(HashSet::new())),
            last_report: Mutex::new(None),
            last_purge: std::sync::atomic::AtomicI64::new(0),
            last_pass: Mutex::new(None),
            metrics: stratus_metrics::Metrics::process(),
            server_events: std::sync::OnceLock::new(),
        }
    }

    /// Tell `events` about attached volumes' changes from now on (once;
    /// later calls are ignored).
    pub fn set_server_events(&self, events: Arc<dyn ServerEvents>) {
        let _ = self.server_events.set(events);
    }

    /// Count storage fences into `metrics` instead of the process's.
    pub fn with_metrics(mut self, metrics: stratus_metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The settings (quota defaults for the limits document).
    pub fn config(&self) -> &VolumeConfig {
        &self.cfg
    }

    /// The backend's kind (`local`, `rbd`), shown in connection info.
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Cinder's `host@backend#pool` for `os-vol-host-attr:host` (admins).
    pub fn host_attr(&self) -> String {
        let kind = self.backend.kind();
        format!("stratus@{kind}#{}", self.cfg.rbd_pool.as_deref().unwrap_or(kind))
    }

    /// Counted usage of a project (limits document).
    pub async fn usage(&self, project_id: &str) -> Result<stratus_db::VolumeUsage, VolumeError> {
        Ok(self.ds.volume_usage(project_id).await?)
    }

    /// The storage cleanups waiting to be done (volume deletes and fence
    /// lifts), oldest first, for admins.
    pub async fn pending_cleanups(&self) -> Result<Vec<CleanupRow>, VolumeError> {
        Ok(self.ds.cleanup_pending().await?)
    }

    /// The last reconciler pass's report (`None` before the first pass).
    pub fn last_report(&self) -> Option<ReconcileReport> {
        self.last_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A volume the caller may see; another project's volume is 404, like a
    /// missing one (no existence leak).
    pub async fn get_visible(&self, ctx: &AuthContext, id: &str) -> Result<VolumeRow, VolumeError> {
        let not_found = || VolumeError::not_found(Missing::Volume, id);
        // A path segment that is not a volume id in our spelling never named
        // a row: Cinder's 404, as when the lookup finds nothing.
        let Some(vid) = VolumeId::parse_canonical(id) else {
            return Err(not_found());
        };
        let v = match self.ds.volume_get(&vid).await {
            Ok(v) => v,
            Err(DbError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&v.project_id) {
            return Err(not_found());
        }
        Ok(v)
    }

    /// Live attachments of a volume (for the volume's `attachments` list).
    pub async fn attachments_of(&self, volume_id: &VolumeId) -> Result<Vec<AttachmentRow>, VolumeError> {
        Ok(self.ds.attachment_list_for_volume(volume_id).await?)
    }

    /// Volumes the caller may list, newest first.
    pub async fn list(&self, ctx: &AuthContext, f: &ListFilter) -> Result<Vec<VolumeRow>, VolumeError> {
        let project =
            if ctx.is_admin() && f.all_projects { f.project_id.clone() } else { Some(ctx.project_id.clone()) };
        let rows = self.ds.volume_list(project.as_deref()).await?;
        Ok(rows
            .into_iter()
            .filter(|v| f.name.as_ref().is_none_or(|n| v.name.as_ref() == Some(n)))
            .filter(|v| f.group_id.as_ref().is_none_or(|g| v.group_id.as_ref() == Some(g)))
            // A status no volume can have matches nothing (Cinder answers an empty list).
            .filter(|v| f.status.as_ref().is_none_or(|s| s.parse::<VolumeStatus>().is_ok_and(|s| s == v.status)))
            .collect())
    }

    async fn resolve_image(&self, ctx: &AuthContext, image_ref: &str) -> Result<ImageRow, VolumeError> {
        // The image service owns image rows and the visibility rule.
        let images = ImageService::new(self.ds.clone(), self.cfg.image_dir.clone());
        match images.find_visible(ctx, image_ref).await {
            Ok(image) => Ok(image),
            Err(ImageError::Db(e)) => Err(e.into()),
            Err(_) => Err(VolumeError::not_found(Missing::Image, image_ref)),
        }
    }

    /// Create a volume: validate, count quota and record it `creating` in one
    /// transaction, then build its storage inline (`available` or `error`).
    /// A crash before the build finishes leaves `creating`, which
    /// [`VolumeService::reconcile`] retries.
    pub async fn create(&self, ctx: &AuthContext, req: NewVolume) -> Result<VolumeRow, VolumeError> {
        let row = self.record_create(ctx, req).await?;
        self.build(&row, Build::First).await
    }

    /// Create a volume as the API does: record it, then wait for its build
    /// at most [`VolumeConfig::create_answer_within`]; a build still running
    /// then goes on in the background and the volume is returned `creating`
    /// (clients poll, as they do with Cinder). The reconciler finishes a
    /// build whose process died.
    pub async fn create_answering_promptly(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewVolume,
    ) -> Result<VolumeRow, VolumeError> {
        let row = self.record_create(ctx, req).await?;
        let (me, recorded) = (self.clone(), row.clone());
        let build = tokio::spawn(async move {
            let built = me.build(&recorded, Build::First).await;
            if let Err(e) = &built {
                warn!(volume = %recorded.id, error = %e, "volume build failed; the reconciler retries it");
            }
            built
        });
        match tokio::time::timeout(self.cfg.create_answer_within, build).await {
            Ok(Ok(built)) => built,
            // The build task panicked: the row stays `creating` for the reconciler.
            Ok(Err(_)) => Ok(row),
            Err(_) => {
                info!(volume = %row.id, within_ms = self.cfg.create_answer_within.as_millis() as u64, "storage slow: answering `creating`, the build goes on in the background");
                Ok(row)
            }
        }
    }

    /// Validate a create request and record the volume `creating` (quota
    /// counted in the same transaction).
    async fn record_create(&self, ctx: &AuthContext, req: NewVolume) -> Result<VolumeRow, VolumeError> {
        check_write(ctx, "create")?;
        let req = match req.snapshot_id.as_deref() {
            Some(sid) if req.size == 0 => {
                let size = self.snapshot_visible(ctx, sid).await?.size_gb;
                NewVolume { size, ..req }
            }
            _ => req,
        };
        // A clone: the source's size and type unless asked (Cinder's defaults).
        let (req, source) = self.clone_defaults(ctx, req).await?;
        if req.size < 1 {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Volume size '{}' must be an integer and greater than 0",
                req.size
            )));
        }
        check_max_size("size", req.size)?;
        check_text("name", req.name.as_deref())?;
        let snapshot = match req.snapshot_id.as_deref() {
            Some(sid) => Some(self.source_snapshot(ctx, sid, req.size).await?),
            None => None,
        };
        // The snapshot's volume type when none is asked for (Cinder's rule).
        let req = match &snapshot {
            Some(s) if req.volume_type.is_none() => {
                let t = match &s.volume_type_id {
                    Some(t) => self.ds.volume_type_get(t, None).await.ok().map(|t| t.id),
                    None => None,
                };
                NewVolume { volume_type: t, ..req }
            }
            _ => req,
        };
        check_text("description", req.description.as_deref())?;
        check_metadata(&req.metadata)?;
        if let Some(src) = &source {
            clones::check_source(src, req.size)?;
        }
        let volume_type_id = self.type_for_create(ctx, req.volume_type.as_deref()).await?;
        self.refuse_encrypted(&volume_type_id, req.volume_type.as_deref().unwrap_or(DEFAULT_VOLUME_TYPE)).await?;
        let az = self.check_az(req.availability_zone.as_deref())?;
        let group_id = match req.group_id.as_deref() {
            Some(g) => Some(self.group_for_create(ctx, g, &volume_type_id).await?),
            None => None,
        };
        let image = match req.image_ref.as_deref() {
            Some(r) if !r.is_empty() => Some(self.resolve_image(ctx, r).await?),
            _ => None,
        };
        if let Some(img) = &image {
            if img.status != ImageStatus::Active {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid input received: Image {} is not active.",
                    img.id
                )));
            }
            if img.min_disk > req.size {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid input received: Volume size {}GB cannot be smaller than the image minDisk size {}GB.",
                    req.size, img.min_disk
                )));
            }
            const GIB: i64 = 1 << 30;
            if let Some(bytes) = img.size {
                let need = bytes / GIB + i64::from(bytes % GIB > 0);
                if need > req.size {
                    return Err(VolumeError::BadRequest(format!(
                        "Invalid input received: Size of specified image {need}GB is larger than volume size {}GB.",
                        req.size
                    )));
                }
            }
        }
        let id = VolumeId::new();
        let row = VolumeRow {
            backend_name: format!("volume-{id}"),
            id,
            name: req.name,
            description: req.description,
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            size_gb: req.size,
            status: VolumeStatus::Creating,
            volume_type_id: Some(volume_type_id),
            volume_type: None,
            availability_zone: az,
            // A clone is bootable, and from an image, as its source (Cinder copies both).
            bootable: image.is_some() || source.as_ref().is_some_and(|s| s.bootable),
            image_id: image.map(|i| i.id.to_string()).or_else(|| source.as_ref().and_then(|s| s.image_id.clone())),
            metadata: serde_json::to_string(&req.metadata).unwrap_or_else(|_| "{}".into()),
            group_id,
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
            deleted_at: None,
            deleted: false,
            snapshot_id: snapshot.map(|s| s.id),
            source_volid: source.as_ref().map(|v| v.id.to_string()),
        };
        let limits = self.volume_limits(stratus_db::VolumeQuotaLayer::Project(&row.project_id)).await?;
        let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
        self.check_per_volume(&row.project_id, row.size_gb).await?;
        let type_name = match &row.volume_type_id {
            Some(t) => self.ds.volume_type_get(t, None).await.map(|t| t.name).unwrap_or_default(),
            None => String::new(),
        };
        let typed = (limit(&format!("volumes_{type_name}")), limit(&format!("gigabytes_{type_name}")));
        let row = match self.ds.volume_create_typed(&row, limit("volumes"), limit("gigabytes"), typed).await {
            Ok(row) => row,
            Err(DbError::QuotaExceeded(q)) if q.overs.iter().any(|o| o.ends_with("_type")) => {
                return Err(VolumeError::QuotaExceeded(error::typed_quota_message(&q, &type_name)));
            }
            // The type was deleted since it was looked up.
            Err(DbError::NotFound { kind: stratus_db::RowKind::VolumeType, id }) => {
                return Err(VolumeError::not_found(Missing::VolumeType, id));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(src) = &source {
            self.clone_image_metadata(src, &row).await?;
        }
        info!(volume = %row.id, project = %row.project_id, size = row.size_gb, image = ?row.image_id, "volume create recorded");
        Ok(row)
    }

    /// The availability zone a new volume or group goes to: this cloud's
    /// one (Cinder's 400 for any other).
    pub(crate) fn check_az(&self, requested: Option<&str>) -> Result<String, VolumeError> {
        match requested {
            None | Some("") => Ok(self.cfg.availability_zone.clone()),
            Some(a) if a == self.cfg.availability_zone => Ok(a.to_string()),
            Some(a) => Err(VolumeError::BadRequest(format!("Availability zone '{a}' is invalid."))),
        }
    }

    fn claim(&self, id: &VolumeId) -> Option<Inflight<'_>> {
        let mut set = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(*id).then(|| Inflight { set: &self.inflight, id: *id })
    }

    /// Is a storage delete of this volume still running in this process?
    pub(crate) fn is_removing(&self, id: &VolumeId) -> bool {
        self.removing.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    fn is_inflight(&self, id: &VolumeId) -> bool {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// Build a `creating` volume's storage and move it to `available` (or
    /// `error`). On [`Build::Retry`] a previous attempt may have left a
    /// partial copy of an image behind, so an image volume is re-created
    /// from scratch.
    pub(crate) async fn build(&self, row: &VolumeRow, how: Build) -> Result<VolumeRow, VolumeError> {
        let retry = matches!(how, Build::Retry | Build::Boot { retry: true });
        let boot = matches!(how, Build::Boot { .. });
        let Some(_claim) = self.claim(&row.id) else {
            return Ok(self.ds.volume_get(&row.id).await?);
        };
        let size = u64::try_from(row.size_gb).unwrap_or(1);
        // Cinder's scheduler: no backend satisfies the type → `error`, and
        // the project is told why (a user message).
        if !boot
            && let Some(t) = &row.volume_type_id
            && !self.type_fits_backend(t).await?
        {
            warn!(volume = %row.id, volume_type = %t, "no backend satisfies the volume type");
            if self.ds.volume_set_status(&row.id, &[VolumeStatus::Creating], VolumeStatus::Error).await? == Cas::Updated
            {
                let (a, d) = (MessageAction::ScheduleAllocateVolume, MessageDetail::NoBackendAvailable);
                self.record_message(&row.project_id, &row.id.to_string(), a, d).await;
            }
            return Ok(self.ds.volume_get(&row.id).await?);
        }
        let work = async {
            // A `creating` volume was never attached: what an interrupted
            // attempt left is a partial copy, never data.
            if retry && self.backend.exists(&row.backend_name).await? {
                self.backend.delete(&row.backend_name).await?;
            }
            if let Some(src) = &row.source_volid {
                return self.clone_storage(row, size, src).await;
            }
            if let Some(sid) = &row.snapshot_id {
                let (volume, snapshot) = self.snapshot_source_names(sid).await?;
                return self.backend.create_from_snapshot(&row.backend_name, size, &volume, &snapshot).await;
            }
            match &row.image_id {
                Some(image) => {
                    let path = self.cfg.image_dir.join(image);
                    if boot && !path.exists() {
                        return self.backend.create(&row.backend_name, size).await;
                    }
                    // The image's declared format: the backend inspects the
                    // bytes against it before anything reads them as an image.
                    let disk_format = self.image_disk_format(image).await?;
                    self.backend.create_from_image(&row.backend_name, size, &path, disk_format).await
                }
                None => self.backend.create(&row.backend_name, size).await,
            }
        };
        tokio::pin!(work);
        // The in-flight set is per process, and the reconciler may run in
        // another one (the controller, while the API builds): keep the row
        // fresh during a long copy so it is never taken for a crashed build.
        let beat = (self.cfg.stale_after / 3).max(std::time::Duration::from_millis(100));
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(beat) => {
                    let alive = [VolumeStatus::Creating];
                    if let Err(e) = self.ds.volume_set_status(&row.id, &alive, VolumeStatus::Creating).await {
                        warn!(volume = %row.id, error = %e, "could not refresh a volume being built");
                    }
                }
            }
        };
        let to = match &result {
            Ok(()) if boot => VolumeStatus::Reserved,
            Ok(()) => VolumeStatus::Available,
            Err(e) => {
                warn!(volume = %row.id, error = %e, "volume storage could not be created");
                VolumeStatus::Error
            }
        };
        let cas = self.ds.volume_set_status(&row.id, &[VolumeStatus::Creating], to).await?;
        if cas == Cas::Updated && to == VolumeStatus::Error && !boot {
            // Cinder's volume manager records why the backend failed.
            let (a, d) = match &row.image_id {
                Some(_) => (MessageAction::CopyImageToVolume, MessageDetail::UnknownError),
                None => (MessageAction::CreateVolumeFromBackend, MessageDetail::DriverFailedCreate),
            };
            self.record_message(&row.project_id, &row.id.to_string(), a, d).await;
        }
        if cas == Cas::Conflict {
            let now = match self.ds.volume_get(&row.id).await {
                Ok(v) => Some(v),
                Err(DbError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let status = now.as_ref().map(|v| v.status);
            if matches!(status, None | Some(VolumeStatus::Deleting | VolumeStatus::ErrorDeleting)) {
                // Deleted while it was built (its server was deleted, say):
                // the delete may have looked before this storage existed.
                self.discard_built(row).await?;
            } else {
                warn!(volume = %row.id, to = %to, "volume left `creating` during its build (status reset?); status kept");
            }
        } else if result.is_ok() {
            info!(volume = %row.id, backend = self.backend.kind(), status = %to, "volume built");
        }
        Ok(self.ds.volume_get(&row.id).await?)
    }

    /// Remove the storage a build made for a volume deleted meanwhile:
    /// within the inline bound, or queued for the reconciler.
    async fn discard_built(&self, row: &VolumeRow) -> Result<(), VolumeError> {
        let limit = self.cfg.inline_delete_timeout;
        match tokio::time::timeout(limit, self.backend.delete(&row.backend_name)).await {
            Ok(Ok(()) | Err(BlockError::NotFound(_))) => {
                info!(volume = %row.id, "volume deleted during its build: the storage the build made is removed");
                Ok(())
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("the storage did not answer within {limit:?}"),
                };
                warn!(volume = %row.id, reason = %why, "volume deleted during its build: removing its storage is queued");
                self.ds
                    .cleanup_enqueue(
                        CleanupKind::VolumeDelete,
                        Some(&row.id),
                        Some(&row.backend_name),
                        None,
                        None,
                        &why,
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// The `disk_format` of the image a volume is built from (an image with
    /// none, or no record, is refused: its bytes were never checked).
    async fn image_disk_format(&self, image: &str) -> Result<DiskFormat, BlockError> {
        let refused = || BlockError::ImageRefused("Image has no disk format; it cannot back a volume.".into());
        let id = stratus_types::ImageId::parse_canonical(image).ok_or_else(refused)?;
        match self.ds.image_get(&id).await {
            Ok(row) => row.disk_format.ok_or_else(refused),
            Err(DbError::NotFound { .. }) => Err(refused()),
            Err(e) => Err(BlockError::Backend(format!("reading image {image}: {e}"))),
        }
    }

    /// Change name, description and/or metadata.
    pub async fn update(&self, ctx: &AuthContext, id: &str, u: VolumeUpdate) -> Result<VolumeRow, VolumeError> {
        let vid = self.get_visible(ctx, id).await?.id;
        check_write(ctx, "update")?;
        check_text("name", u.name.as_deref())?;
        check_text("description", u.description.as_deref())?;
        let mut row = self.ds.volume_update(&vid, u.name.as_deref(), u.description.as_deref(), None, None).await?;
        if let Some(m) = &u.metadata {
            check_metadata(m)?;
            let json = serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
            row = self.ds.volume_set_metadata(&vid, &json).await?;
        }
        Ok(row)
    }

    /// A volume the caller may see (else 404) and change (else 403 naming
    /// `volume:{action}`): what the HTTP layer checks before it reads a
    /// request body, so neither answer hides behind a 400 about the body.
    pub async fn get_writable(&self, ctx: &AuthContext, id: &str, action: &str) -> Result<VolumeRow, VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        check_write(ctx, action)?;
        Ok(v)
    }

    /// A volume's metadata as a map (stored as a JSON object).
    pub fn metadata_of(v: &VolumeRow) -> BTreeMap<String, String> {
        serde_json::from_str(&v.metadata).unwrap_or_default()
    }

    /// Metadata calls (`/volumes/{id}/metadata`): merge `m` into the
    /// volume's metadata (`POST`, `PUT .../{key}`), or replace it (`PUT`).
    pub async fn set_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        m: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>, VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        let vid = v.id;
        check_write(ctx, "update_volume_metadata")?;
        check_metadata(&m)?;
        let merged = if replace {
            m
        } else {
            let mut cur = Self::metadata_of(&v);
            cur.extend(m);
            cur
        };
        let row =
            self.ds.volume_set_metadata(&vid, &serde_json::to_string(&merged).unwrap_or_else(|_| "{}".into())).await?;
        Ok(Self::metadata_of(&row))
    }

    /// One metadata value of a volume the caller may see (404, Cinder's
    /// message, when the key is absent).
    pub async fn metadata_value(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<String, VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        Self::metadata_of(&v)
            .remove(key)
            .ok_or_else(|| VolumeError::not_found(Missing::MetadataKey { volume: id.to_string() }, key))
    }

    /// Remove one metadata key (404, Cinder's message, when absent).
    pub async fn delete_metadata_key(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        let vid = v.id;
        check_write(ctx, "delete_volume_metadata")?;
        let mut cur = Self::metadata_of(&v);
        if cur.remove(key).is_none() {
            return Err(VolumeError::not_found(Missing::MetadataKey { volume: id.to_string() }, key));
        }
        self.ds.volume_set_metadata(&vid, &serde_json::to_string(&cur).unwrap_or_else(|_| "{}".into())).await?;
        Ok(())
    }

    /// A volume's image metadata as shown (Cinder's `volume_image_metadata`):
    /// what was set, else `{image_id}` for a volume from an image, else none.
    pub async fn image_metadata_of(&self, v: &VolumeRow) -> Result<Option<BTreeMap<String, String>>, VolumeError> {
        if let Some(m) = self.ds.volume_image_metadata(&v.id).await? {
            return Ok(Some(serde_json::from_str(&m).unwrap_or_default()));
        }
        Ok(v.image_id.as_ref().map(|i| BTreeMap::from([("image_id".to_string(), i.clone())])))
    }

    /// `os-show_image_metadata`: a visible volume's image metadata (`{}` when none).
    pub async fn image_metadata(&self, ctx: &AuthContext, id: &str) -> Result<BTreeMap<String, String>, VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        Ok(self.image_metadata_of(&v).await?.unwrap_or_default())
    }

    /// `os-set_image_metadata`: merge keys into a volume's image metadata;
    /// answers the whole of it.
    pub async fn set_image_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        m: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, VolumeError> {
        let v = self.get_writable(ctx, id, "set_image_metadata").await?;
        check_metadata(&m)?;
        let mut cur = self.image_metadata_of(&v).await?.unwrap_or_default();
        cur.extend(m);
        self.ds.volume_image_metadata_set(&v.id, &serde_json::to_string(&cur).unwrap_or_else(|_| "{}".into())).await?;
        Ok(cur)
    }

    /// `os-unset_image_metadata`: remove one key (404 when absent).
    pub async fn unset_image_metadata(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), VolumeError> {
        let v = self.get_writable(ctx, id, "remove_image_metadata").await?;
        let mut cur = self.image_metadata_of(&v).await?.unwrap_or_default();
        if cur.remove(key).is_none() {
            return Err(VolumeError::not_found(Missing::ImageMetadataKey { volume: id.to_string() }, key));
        }
        self.ds.volume_image_metadata_set(&v.id, &serde_json::to_string(&cur).unwrap_or_else(|_| "{}".into())).await?;
        Ok(())
    }

    /// Set or clear the bootable flag (`os-set_bootable`).
    pub async fn set_bootable(&self, ctx: &AuthContext, id: &str, bootable: bool) -> Result<VolumeRow, VolumeError> {
        let vid = self.get_visible(ctx, id).await?.id;
        check_write(ctx, "update_volume_bootable")?;
        Ok(self.ds.volume_update(&vid, None, None, None, Some(bootable)).await?)
    }

    /// Delete a volume: refused (400, Cinder's message) while in use or
    /// attached; the status goes `deleting` by compare-and-swap, then the
    /// storage is deleted inline. When the backend refuses (busy: a client
    /// still watches it) the volume stays `deleting` and the delete goes to
    /// the durable cleanup queue, retried by the reconciler until it
    /// succeeds. A repeated delete of a `deleting` volume is accepted and
    /// changes nothing.
    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        self.delete_cascading(ctx, id, false).await
    }

    /// [`VolumeService::delete`]; a volume with snapshots is refused
    /// (Cinder's 400) unless `cascade`, which deletes its snapshots first.
    pub async fn delete_cascading(&self, ctx: &AuthContext, id: &str, cascade: bool) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        check_write(ctx, "delete")?;
        // Cinder: a volume in a group goes only with its group.
        if v.group_id.is_some() && v.status != VolumeStatus::Deleting {
            return Err(VolumeError::BadRequest(DELETE_REFUSED.into()));
        }
        self.delete_in_group(ctx, &v, cascade).await
    }

    /// The delete of [`VolumeService::delete_cascading`] without the group
    /// rule: a group's delete (`delete-volumes`) removes its volumes this
    /// way, without `cascade` (a volume with snapshots stops it, as Cinder).
    pub(crate) async fn delete_in_group(
        &self,
        ctx: &AuthContext,
        v: &VolumeRow,
        cascade: bool,
    ) -> Result<(), VolumeError> {
        let id = v.id.to_string();
        let id = id.as_str();
        let vid = v.id;
        if v.status == VolumeStatus::Deleting {
            info!(volume = id, "repeated delete: already deleting");
            return Ok(());
        }
        if !DELETABLE.contains(&v.status) || !self.ds.attachment_list_for_volume(&vid).await?.is_empty() {
            return Err(VolumeError::BadRequest(DELETE_REFUSED.into()));
        }
        self.check_no_clone_building(v).await?;
        if cascade {
            self.delete_snapshots_of(ctx, v).await?;
        }
        match self.ds.volume_begin_delete(&vid, DELETABLE).await? {
            Some(Cas::Updated) => {}
            Some(Cas::AlreadySo) => return Ok(()),
            Some(Cas::Conflict) | None => return Err(VolumeError::BadRequest(DELETE_REFUSED.into())),
        }
        info!(volume = id, "volume delete recorded");
        self.delete_storage(v).await.map(|_| ())
    }

    /// Delete a `deleting` volume's storage now, or queue the delete
    /// durably when the backend refuses (never swallowed).
    pub(crate) async fn delete_storage(&self, v: &VolumeRow) -> Result<DeleteOutcome, VolumeError> {
        // Inside an operation: not if the attempt lost its claim meanwhile.
        self.ds.claim_held().await?;
        let limit = self.cfg.inline_delete_timeout;
        // Its own task: the timeout stops the waiting, not the removal. A
        // removal cut off part-way (an `rbd rm` killed behind a paused OSD)
        // leaves an image half removed; this one finishes in the background
        // and the queued retry then finds the volume gone.
        let (backend, name) = (self.backend.clone(), v.backend_name.clone());
        let (removing, id) = (self.removing.clone(), v.id);
        removing.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        // Bounded by `stale_after`: a removal that never answers is then
        // given up (its CLI killed) and the queued retry takes over.
        let give_up = self.cfg.stale_after.max(limit);
        let removal = tokio::spawn(async move {
            let r = match tokio::time::timeout(give_up, backend.delete(&name)).await {
                Ok(r) => r,
                Err(_) => Err(BlockError::Backend(format!("no answer within {give_up:?}; given up for the retry"))),
            };
            removing.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            r
        });
        let attempt = match tokio::time::timeout(limit, removal).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(BlockError::Backend(format!("the storage delete task failed: {join}"))),
            Err(_) => {
                let why = format!("the storage did not answer within {limit:?}; retried in the background");
                warn!(volume = %v.id, reason = %why, "volume storage delete queued");
                self.ds
                    .cleanup_enqueue(CleanupKind::VolumeDelete, Some(&v.id), Some(&v.backend_name), None, None, &why)
                    .await?;
                return Ok(DeleteOutcome::Queued(why));
            }
        };
        match attempt {
            Ok(()) | Err(BlockError::NotFound(_)) => {
                self.ds.volume_mark_deleted(&v.id).await?;
                info!(volume = %v.id, "volume deleted");
                Ok(DeleteOutcome::Deleted)
            }
            Err(e) => {
                // Not watched but refused anyway: move it to the backend's
                // trash (rbd), purged by the reconciler, if the backend has one.
                if !matches!(e, BlockError::Busy { .. }) && self.backend.delete_deferred(&v.backend_name).await.is_ok()
                {
                    self.ds.volume_mark_deleted(&v.id).await?;
                    warn!(volume = %v.id, error = %e, "volume storage moved to the backend's trash; the reconciler purges it");
                    return Ok(DeleteOutcome::Trashed);
                }
                let why = match &e {
                    BlockError::Busy { watchers, .. } => format!("busy: watched by {watchers:?}"),
                    e => e.to_string(),
                };
                warn!(volume = %v.id, reason = %why, "volume storage cannot be deleted yet; queued for retry");
                self.ds
                    .cleanup_enqueue(CleanupKind::VolumeDelete, Some(&v.id), Some(&v.backend_name), None, None, &why)
                    .await?;
                Ok(DeleteOutcome::Queued(why))
            }
        }
    }

    /// A status step of Cinder's older attach flow (`os-reserve`,
    /// `os-unreserve`, `os-begin_detaching`, `os-roll_detaching`): a
    /// compare-and-set of the volume's status, nothing else. Reserve and
    /// begin-detaching refuse any other status with Cinder's 400; the two
    /// undo steps leave any other status alone, as Cinder does.
    pub async fn status_step(
        &self,
        ctx: &AuthContext,
        id: &str,
        step: stratus_api::volume::StatusStep,
    ) -> Result<VolumeRow, VolumeError> {
        use stratus_api::volume::StatusStep as S;
        let v = self.get_visible(ctx, id).await?;
        check_write(ctx, "attach")?;
        let (from, to) = match step {
            S::Reserve => (VolumeStatus::Available, VolumeStatus::Attaching),
            S::Unreserve => (VolumeStatus::Attaching, VolumeStatus::Available),
            S::BeginDetaching => (VolumeStatus::InUse, VolumeStatus::Detaching),
            S::RollDetaching => (VolumeStatus::Detaching, VolumeStatus::InUse),
        };
        if self.ds.volume_set_status(&v.id, &[from], to).await? != Cas::Updated {
            let cur = self.ds.volume_get(&v.id).await?;
            match step {
                S::Reserve => {
                    return Err(VolumeError::BadRequest(format!(
                        "Invalid volume: Volume status must be available to reserve, but the status is {}.",
                        cur.status
                    )));
                }
                S::BeginDetaching => {
                    return Err(VolumeError::BadRequest(
                        "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.".into(),
                    ));
                }
                S::Unreserve | S::RollDetaching => return Ok(cur),
            }
        }
        info!(volume = %v.id, ?step, from = %from, to = %to, by = %ctx.user_id, "volume status step");
        Ok(self.ds.volume_get(&v.id).await?)
    }

    /// Grow an `available` volume (`os-extend`), within the gigabytes quota;
    /// with `in_use` (Block Storage 3.42) also an `in-use` one, whose
    /// servers are then told (Cinder's `volume-extended` event to Nova).
    /// A backend failure leaves `error_extending`, as Cinder does.
    pub async fn extend(
        &self,
        ctx: &AuthContext,
        id: &str,
        new_size: i64,
        in_use: bool,
    ) -> Result<VolumeRow, VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        let vid = v.id;
        check_write(ctx, "extend")?;
        let wrong_status = |status: &str| {
            VolumeError::BadRequest(if in_use {
                format!(
                    "Invalid volume: Volume {id} status must be in ('available', 'in-use') to extend, but current status is: {status}."
                )
            } else {
                format!(
                    "Invalid volume: Volume {id} status must be available to extend, but current status is: {status}."
                )
            })
        };
        let allowed: &[VolumeStatus] =
            if in_use { &[VolumeStatus::Available, VolumeStatus::InUse] } else { &[VolumeStatus::Available] };
        if !allowed.contains(&v.status) {
            return Err(wrong_status(v.status.as_str()));
        }
        let back_to = v.status;
        check_max_size("new_size", new_size)?;
        if new_size <= v.size_gb {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
                v.size_gb
            )));
        }
        self.check_per_volume(&v.project_id, new_size).await?;
        let limit = self.volume_limit(&v.project_id, "gigabytes").await?;
        if limit >= 0 {
            let used = self.ds.volume_usage(&v.project_id).await?.gigabytes;
            // Both sizes are within 1..=MAX_VOLUME_SIZE_GB here: no overflow.
            let delta = new_size - v.size_gb;
            if stratus_db::exceeds(used, delta, limit) {
                return Err(VolumeError::QuotaExceeded(error::gigabytes_message(delta, limit, used)));
            }
        }
        if let Some(type_name) = &v.volume_type {
            let (_, typed) = self.type_limits(&v.project_id, type_name).await?;
            if typed >= 0 {
                let used = self
                    .ds
                    .volume_usage_by_type(&v.project_id)
                    .await?
                    .into_iter()
                    .find(|(t, _, _)| t == type_name)
                    .map_or(0, |(_, _, gb)| gb);
                let delta = new_size - v.size_gb;
                if stratus_db::exceeds(used, delta, typed) {
                    return Err(VolumeError::QuotaExceeded(error::gigabytes_message(delta, typed, used)));
                }
            }
        }
        if self.ds.volume_set_status(&vid, &[back_to], VolumeStatus::Extending).await? != Cas::Updated {
            let cur = self.ds.volume_get(&vid).await?;
            return Err(wrong_status(cur.status.as_str()));
        }
        match self.backend.extend(&v.backend_name, u64::try_from(new_size).unwrap_or(0)).await {
            Ok(()) => {
                self.ds.volume_update(&vid, None, None, Some(new_size), None).await?;
                self.ds.volume_set_status(&vid, &[VolumeStatus::Extending], back_to).await?;
                info!(volume = id, from = v.size_gb, to = new_size, "volume extended");
                if back_to == VolumeStatus::InUse {
                    self.tell_servers_extended(&vid).await?;
                }
            }
            Err(e) => {
                warn!(volume = id, error = %e, "volume extend failed");
                self.ds.volume_set_status(&vid, &[VolumeStatus::Extending], VolumeStatus::ErrorExtending).await?;
            }
        }
        Ok(self.ds.volume_get(&vid).await?)
    }

    /// Tell the compute side about each server `vid` is attached to.
    async fn tell_servers_extended(&self, vid: &VolumeId) -> Result<(), VolumeError> {
        let Some(events) = self.server_events.get() else {
            warn!(volume = %vid, "an in-use volume grew but no compute service listens: its servers see the size when they open it again");
            return Ok(());
        };
        for att in self.ds.attachment_list_for_volume(vid).await? {
            let request_id = format!("req-{}", uuid::Uuid::new_v4());
            events.volume_extended(&att, &request_id).await;
        }
        Ok(())
    }

    /// `os-extend_volume_completion` (Block Storage 3.71): Nova's report
    /// that it finished an in-use extend which Cinder held in `extending`
    /// until then. Stratus never holds one open: `extend` tells the compute
    /// service in-process and ends the extend itself. So, like Cinder for a
    /// volume with no extend awaiting completion, the answer is always 400
    /// (`InvalidVolume`) once the caller may use the action (admins and the
    /// `service` role, Cinder's default policy) and sees the volume.
    pub async fn extend_completion(&self, ctx: &AuthContext, id: &str, error: bool) -> Result<(), VolumeError> {
        let v = self.get_visible(ctx, id).await?;
        if !(ctx.is_admin() || ctx.roles.iter().any(|r| r == "service")) {
            return Err(VolumeError::Forbidden {
                action: "volume_extension:volume_admin_actions:extend_volume_completion".into(),
            });
        }
        info!(volume = id, error, status = %v.status, by = %ctx.user_id, "extend completion refused: no extend awaits one");
        if v.status != VolumeStatus::Extending {
            return Err(VolumeError::BadRequest(format!(
                "Invalid volume: Volume {id} status must be 'extending' to complete an extend, but current status is: {}.",
                v.status.as_str()
            )));
        }
        Err(VolumeError::BadRequest(format!(
            "Invalid volume: Volume {id} has no extend awaiting completion: this cloud completes every extend itself."
        )))
    }

    /// Admin `os-reset_status`: force the status and/or the attach status
    /// (`detached` removes every attachment record; the storage is not
    /// touched).
    pub async fn reset_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: Option<&str>,
        attach_status: Option<&str>,
    ) -> Result<VolumeRow, VolumeError> {
        // Looked up first, as Cinder does: another project's volume is a 404 to everyone but admins.
        let vid = self.get_visible(ctx, id).await?.id;
        if !ctx.is_admin() {
            return Err(VolumeError::Forbidden { action: "volume_extension:volume_admin_actions:reset_status".into() });
        }
        if status.is_none() && attach_status.is_none() {
            return Err(VolumeError::BadRequest(
                "Must specify 'status', 'attach_status' or 'migration_status' for update.".into(),
            ));
        }
        let new_status = match status {
            None => None,
            Some(s) => match s.parse::<VolumeStatus>() {
                Ok(v) if RESET_STATUSES.contains(&v) => Some(v),
                _ => {
                    let allowed: Vec<&str> = RESET_STATUSES.iter().map(|v| v.as_str()).collect();
                    return Err(VolumeError::BadRequest(format!(
                        "Invalid input for field/attribute status. Value: {s}. '{s}' is not one of {allowed:?}"
                    )));
                }
            },
        };
        match attach_status.map(str::parse::<AttachStatus>) {
            None | Some(Ok(AttachStatus::Attached)) => {}
            Some(Ok(AttachStatus::Detached)) => {
                for a in self.ds.attachment_list_for_volume(&vid).await? {
                    self.ds.attachment_delete(&a.id).await?;
                }
            }
            Some(_) => {
                let a = attach_status.unwrap_or_default();
                let (at, de) = (AttachStatus::Attached, AttachStatus::Detached);
                return Err(VolumeError::BadRequest(format!(
                    "Invalid input for field/attribute attach_status. Value: {a}. '{a}' is not one of ['{at}', '{de}']"
                )));
            }
        }
        if let Some(s) = new_status {
            self.ds.volume_set_status(&vid, &[], s).await?;
        }
        info!(volume = id, status = ?status, attach_status = ?attach_status, by = %ctx.user_id, "volume status reset");
        Ok(self.ds.volume_get(&vid).await?)
    }
}

#[cfg(test)]
mod tests;
