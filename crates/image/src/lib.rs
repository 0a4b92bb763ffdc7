//! The image service (Glance v2 semantics), owner of image records and bytes.
//!
//! Records live in the datastore; bytes live in `<image_dir>/<id>` (see
//! [`store`]). Tags and `os_hidden` have no columns of their own and are kept
//! in the properties object under reserved `stratus:` keys that are never
//! shown to clients (see [`rules`] and [`view`]). The HTTP layer only parses
//! requests, calls one [`ImageService`] method and renders the result; the
//! volume and compute APIs use [`visible_to`] / [`ImageService::get_visible`]
//! so the visibility rule exists once. Compute's snapshots (shelve,
//! `createImage`) are written through [`ImageService::create_snapshot_record`]
//! and [`ImageService::delete_snapshot`], never by the controller itself.

mod error;
mod import;
pub mod list;
pub mod metadefs;
pub mod rules;
mod snapshot;
pub mod store;
pub mod sweep;
pub mod tasks;
pub mod view;

pub use error::ImageError;
pub use import::IMPORT_METHODS;
pub use list::ImagePage;
pub use rules::{check_write, visible_as_member, visible_to};
pub use snapshot::{SnapshotRecord, SnapshotRemoval, SnapshotSpec};
pub use stratus_api::image::ListImagesQuery;
pub use stratus_db::ImageMemberRow;
pub use stratus_types::image::MemberStatus;
pub use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, Visibility};
pub use stratus_webfetch as webfetch;
pub use tasks::{Job, TASK_TTL, image_task_view, task_view};
pub use view::{image_view, member_view};

use futures::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use store::{DataWriter, Stored, data_path};
use stratus_auth::AuthContext;
use stratus_db::{Datastore, DbError, ImageRow};
use stratus_types::ImageId;

/// Glance's members per image (`image_member_quota`): an owner cannot
/// offer one image to unboundedly many projects.
pub const MEMBERS_PER_IMAGE: i64 = 128;

/// May the caller see `row`, counting its membership of a shared image?
/// For callers holding a row they read themselves (compute's boot checks),
/// so a member boots a shared image as Nova lets it through Glance.
pub async fn visible_with_members(ds: &Datastore, ctx: &AuthContext, row: &ImageRow) -> Result<bool, DbError> {
    if visible_to(ctx, row) {
        return Ok(true);
    }
    if row.visibility != Visibility::Shared {
        return Ok(false);
    }
    match ds.image_member_get(&row.id, &ctx.project_id).await {
        Ok(m) => Ok(visible_as_member(ctx, row, Some(m.status))),
        Err(DbError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a download returns.
#[derive(Debug)]
pub enum Download {
    /// No data yet (queued image): Glance answers 204.
    Empty,
    /// The image's bytes, to be streamed from the open file (never read
    /// whole: an image may be far larger than the API's memory), and their
    /// MD5 (for `Content-MD5`).
    Data {
        /// The data file, opened before the answer starts.
        file: tokio::fs::File,
        /// Its length in bytes.
        len: u64,
        /// MD5 hex, when known.
        checksum: Option<String>,
    },
}

impl Download {
    /// Read the whole data (tests and small images only).
    pub async fn into_bytes(self) -> Result<Vec<u8>, ImageError> {
        use tokio::io::AsyncReadExt as _;
        match self {
            Self::Empty => Ok(Vec::new()),
            Self::Data { mut file, len, .. } => {
                let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                file.read_to_end(&mut out).await.map_err(|e| ImageError::io("reading image data", e))?;
                Ok(out)
            }
        }
    }
}

/// An image `stratus up` seeds: what it must look like, whatever an earlier
/// start left behind (see [`ImageService::seed_image`]).
#[derive(Clone, Debug)]
pub struct SeedImage<'a> {
    /// Image name (unique among the owner's public images).
    pub name: &'a str,
    /// Disk format (`aki`/`ari` for a kernel/ramdisk, `raw` for a disk).
    pub disk_format: DiskFormat,
    /// Container format.
    pub container_format: ContainerFormat,
    /// Glance properties to set (e.g. `kernel_id`, `ramdisk_id`, `os_command_line`).
    pub properties: Map<String, Value>,
    /// The image's bytes.
    pub data: &'a [u8],
}

/// How often a running upload, stage, import or task refreshes its row's
/// `updated_at`, so that another process can tell a live hold from one
/// whose process died ([`ImageService::sweep_interrupted`]).
pub const HOLD_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// A hold not refreshed for this long belongs to a process that is gone
/// (six missed refreshes: a busy process is late, not dead).
pub const HOLD_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// A task that refreshes a row every [`HOLD_REFRESH`] for as long as it
/// lives; dropping it stops the refresh.
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    /// Refresh with `touch` every [`HOLD_REFRESH`], starting one period
    /// from now.
    pub(crate) fn start<F, Fut>(touch: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HOLD_REFRESH).await;
                touch().await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An upload's hold on a `saving` image: released (back to `queued`) when
/// the upload fails, also when its future is dropped (client gone).
/// The same hold for a stage (`uploading`) or an import (`importing`).
/// While it is armed, it refreshes the image's `updated_at`; a hold whose
/// process died stops refreshing and is released by the sweep.
struct SavingClaim {
    ds: Datastore,
    id: ImageId,
    armed: bool,
    /// The status the claim holds the image in.
    held: ImageStatus,
    _beat: Heartbeat,
}

impl SavingClaim {
    /// Hold `id` (already moved to `held`) for this process.
    fn new(ds: &Datastore, id: ImageId, held: ImageStatus) -> Self {
        let beat_ds = ds.clone();
        let _beat = Heartbeat::start(move || {
            let ds = beat_ds.clone();
            async move {
                // Same status: only `updated_at` moves; a hold already
                // released or taken over is left alone.
                if let Err(e) = ds.image_set_status(&id, &[held], held).await {
                    tracing::warn!(image = %id, error = %e, "could not refresh an image hold");
                }
            }
        });
        SavingClaim { ds: ds.clone(), id, armed: true, held, _beat }
    }

    /// Give the image back as `queued` now.
    async fn release(&mut self) {
        if std::mem::take(&mut self.armed)
            && let Err(e) = self.ds.image_set_status(&self.id, &[self.held], ImageStatus::Queued).await
        {
            tracing::warn!(image = %self.id, error = %e, "could not return a failed upload's image to queued");
        }
    }
}

impl Drop for SavingClaim {
    fn drop(&mut self) {
        if std::mem::take(&mut self.armed)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (ds, id, held) = (self.ds.clone(), self.id, self.held);
            rt.spawn(async move {
                let _ = ds.image_set_status(&id, &[held], ImageStatus::Queued).await;
            });
        }
    }
}

/// The image service: the datastore for records, a directory for bytes.
#[derive(Clone)]
pub struct ImageService {
    ds: Datastore,
    image_dir: PathBuf,
    quota: ImageQuota,
    /// The guard web downloads go through; `None`: `web-download` and
    /// import tasks are not offered.
    web: Option<std::sync::Arc<stratus_webfetch::Guard>>,
}

/// Per-project image quotas (Glance's unified-limit names); -1 is unlimited.
/// Without them one member could fill the image store or hold every upload
/// slot. Glance answers an exceeded quota with 413.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageQuota {
    /// `image_count_total`: images a project may own.
    pub count_total: i64,
    /// `image_size_total`: bytes a project's images may hold.
    pub size_total_bytes: i64,
    /// `image_count_uploading`: uploads a project may have in progress.
    pub count_uploading: i64,
}

impl Default for ImageQuota {
    fn default() -> Self {
        Self { count_total: 100, size_total_bytes: 100 << 30, count_uploading: 10 }
    }
}

impl ImageService {
    /// Bind the service to a datastore and the directory image bytes live in.
    pub fn new(ds: Datastore, image_dir: PathBuf) -> Self {
        Self { ds, image_dir, quota: ImageQuota::default(), web: None }
    }

    /// Use these per-project image quotas instead of the defaults.
    pub fn with_quota(mut self, quota: ImageQuota) -> Self {
        self.quota = quota;
        self
    }

    /// Offer `web-download` and import tasks, fetching through `guard`.
    pub fn with_web_download(mut self, guard: stratus_webfetch::Guard) -> Self {
        self.web = Some(std::sync::Arc::new(guard));
        self
    }

    /// The import methods offered (`GET /v2/info/import`).
    pub fn import_methods(&self) -> Vec<&'static str> {
        IMPORT_METHODS.iter().copied().filter(|m| *m != "web-download" || self.web.is_some()).collect()
    }

    /// Where image bytes are stored.
    pub fn image_dir(&self) -> &Path {
        &self.image_dir
    }

    /// An image the caller may see; anything else is [`ImageError::NotFound`].
    /// `id` is the path text: one that is not an image id in our spelling
    /// never named a record, so it is the same "not found".
    pub async fn get_visible(&self, ctx: &AuthContext, id: &str) -> Result<ImageRow, ImageError> {
        let image_id = ImageId::parse_canonical(id).ok_or_else(|| ImageError::not_found(id))?;
        let row = self.ds.image_get(&image_id).await.map_err(|e| match e {
            DbError::NotFound { .. } => ImageError::not_found(id),
            e => e.into(),
        })?;
        if !visible_with_members(&self.ds, ctx, &row).await? {
            return Err(ImageError::not_found(id));
        }
        Ok(row)
    }

    /// An image the caller may see, by id or else by the first visible one of
    /// that name: how other services (volume `imageRef`) resolve a reference.
    pub async fn find_visible(&self, ctx: &AuthContext, id_or_name: &str) -> Result<ImageRow, ImageError> {
        let by_id = match ImageId::parse_canonical(id_or_name) {
            None => None,
            Some(id) => match self.ds.image_get(&id).await {
                Ok(i) => Some(i),
                Err(DbError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
        };
        let image = match by_id {
            Some(i) => i,
            None => {
                let project = (!ctx.is_admin()).then_some(ctx.project_id.as_str());
                match self.ds.image_find_by_name(id_or_name, project).await {
                    Ok(i) => i,
                    Err(DbError::NotFound { .. }) => return Err(ImageError::not_found(id_or_name)),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if image.status == ImageStatus::Deleted || !visible_with_members(&self.ds, ctx, &image).await? {
            return Err(ImageError::not_found(id_or_name));
        }
        Ok(image)
    }

    /// An image the caller may see (else 404) and change (else 403). The
    /// HTTP layer asks before it reads a request body, so neither answer
    /// hides behind a 400 about the body.
    pub async fn get_modifiable(&self, ctx: &AuthContext, id: &str) -> Result<ImageRow, ImageError> {
        let row = self.get_visible(ctx, id).await?;
        rules::check_modify(ctx, &row)?;
        Ok(row)
    }

    /// One page of the images the caller may see, filtered and sorted by `query`.
    pub async fn list(&self, ctx: &AuthContext, query: &ListImagesQuery) -> Result<ImagePage, ImageError> {
        let scope = if ctx.is_admin() { None } else { Some(ctx.project_id.as_str()) };
        let rows = self.ds.image_list(scope).await?;
        let members: HashMap<ImageId, MemberStatus> = if ctx.is_admin() {
            HashMap::new()
        } else {
            self.ds.image_memberships(&ctx.project_id).await?.into_iter().map(|m| (m.image_id, m.status)).collect()
        };
        list::select(query, ctx, rows, &members)
    }

    /// A shared image the caller may see (else 404); any other visibility
    /// has no members (Glance: 403).
    async fn get_shared(&self, ctx: &AuthContext, id: &str) -> Result<ImageRow, ImageError> {
        let row = self.get_visible(ctx, id).await?;
        if row.visibility != Visibility::Shared {
            return Err(ImageError::Forbidden("Only shared images have members.".into()));
        }
        Ok(row)
    }

    /// A membership the caller may see: the owner (or an admin) sees every
    /// member, a member only its own (any other is "not found").
    fn member_missing(row: &ImageRow, member: &str) -> ImageError {
        ImageError::MemberNotFound { id: row.id.to_string(), member: member.to_string() }
    }

    /// `GET /v2/images/{id}/members`: all members for the owner, the
    /// caller's own membership for a member.
    pub async fn members(&self, ctx: &AuthContext, id: &str) -> Result<Vec<ImageMemberRow>, ImageError> {
        let row = self.get_shared(ctx, id).await?;
        let all = self.ds.image_member_list(&row.id).await?;
        Ok(if rules::owns(ctx, &row) {
            all
        } else {
            all.into_iter().filter(|m| m.member_id == ctx.project_id).collect()
        })
    }

    /// One membership (the owner asks for any, a member for its own).
    pub async fn member(&self, ctx: &AuthContext, id: &str, member: &str) -> Result<ImageMemberRow, ImageError> {
        let row = self.get_shared(ctx, id).await?;
        if !rules::owns(ctx, &row) && member != ctx.project_id {
            return Err(Self::member_missing(&row, member));
        }
        self.ds.image_member_get(&row.id, member).await.map_err(|e| match e {
            DbError::NotFound { .. } => Self::member_missing(&row, member),
            e => e.into(),
        })
    }

    /// Offer a shared image to a project (owner or admin; `pending`).
    pub async fn add_member(&self, ctx: &AuthContext, id: &str, member: &Value) -> Result<ImageMemberRow, ImageError> {
        let row = self.get_modifiable(ctx, id).await?;
        if row.visibility != Visibility::Shared {
            return Err(ImageError::Forbidden("Only shared images have members.".into()));
        }
        let member = member.as_str().filter(|m| !m.is_empty() && m.chars().count() <= 255).ok_or_else(|| {
            ImageError::BadRequest(
                "Invalid value for 'member': a project id of 1 to 255 characters is required.".into(),
            )
        })?;
        if member == row.owner {
            return Err(ImageError::BadRequest("The owner of an image cannot be one of its members.".into()));
        }
        self.ds.image_member_create(&row.id, member, MEMBERS_PER_IMAGE).await.map_err(|e| match e {
            DbError::QuotaExceeded(_) => ImageError::QuotaExceeded(format!(
                "Attempt to add a member exceeds the image_member_quota of {MEMBERS_PER_IMAGE}."
            )),
            DbError::Conflict { .. } => {
                ImageError::Conflict(format!("{member} is already a member of image {}.", row.id))
            }
            e => e.into(),
        })
    }

    /// A member's answer (`accepted`, `rejected` or back to `pending`):
    /// only the member itself (or an admin) gives it; the owner gets a 403.
    pub async fn set_member_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        member: &str,
        status: &Value,
    ) -> Result<ImageMemberRow, ImageError> {
        let row = self.get_shared(ctx, id).await?;
        check_write(ctx)?;
        let existing = self.member(ctx, id, member).await?;
        if existing.member_id != ctx.project_id && !ctx.is_admin() {
            return Err(ImageError::Forbidden("Only the member itself may change its status.".into()));
        }
        let status = status.as_str().and_then(|s| s.parse::<MemberStatus>().ok()).ok_or_else(|| {
            let allowed: Vec<&str> = MemberStatus::ALL.iter().map(|s| s.as_str()).collect();
            ImageError::BadRequest(format!("Invalid status {status}; expected one of: {}.", allowed.join(", ")))
        })?;
        self.ds.image_member_set_status(&row.id, member, status).await.map_err(|e| match e {
            DbError::NotFound { .. } => Self::member_missing(&row, member),
            e => e.into(),
        })
    }

    /// Withdraw a shared image from a project (owner or admin).
    pub async fn remove_member(&self, ctx: &AuthContext, id: &str, member: &str) -> Result<(), ImageError> {
        let row = self.get_shared(ctx, id).await?;
        rules::check_modify(ctx, &row)?;
        self.ds.image_member_delete(&row.id, member).await.map_err(|e| match e {
            DbError::NotFound { .. } => Self::member_missing(&row, member),
            e => e.into(),
        })
    }

    /// Create an image record (queued, no data) from a create request body.
    pub async fn create(&self, ctx: &AuthContext, req: &Map<String, Value>) -> Result<ImageRow, ImageError> {
        let row = rules::new_image(ctx, req)?;
        let usage = self.ds.image_usage(&row.owner).await?;
        if self.quota.count_total >= 0 && usage.count >= self.quota.count_total {
            return Err(ImageError::QuotaExceeded(format!(
                "Attempt to create image exceeds the image_count_total quota of {} (in use: {}).",
                self.quota.count_total, usage.count
            )));
        }
        self.ds.image_create(&row).await?;
        Ok(self.ds.image_get(&row.id).await?)
    }

    /// Apply JSON-patch operations, all or nothing.
    pub async fn patch(&self, ctx: &AuthContext, id: &str, ops: &[Value]) -> Result<ImageRow, ImageError> {
        let mut row = self.get_modifiable(ctx, id).await?;
        rules::apply_patch(ctx, &mut row, ops)?;
        self.ds.image_update(&row).await?;
        Ok(self.ds.image_get(&row.id).await?)
    }

    /// Delete an unprotected image and its bytes.
    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<(), ImageError> {
        let row = self.get_modifiable(ctx, id).await?;
        if row.protected {
            return Err(ImageError::Protected { id: id.to_string() });
        }
        self.ds.image_delete(&row.id).await?;
        self.remove_staged(&row).await;
        if let Err(e) = self.remove_data(&row.id).await {
            tracing::warn!(image = %id, error = %e, "could not remove image data");
        }
        Ok(())
    }

    /// Glance's `deactivate` action (owner's members or admins): an active
    /// image's data is withheld from non-admins until it is reactivated.
    /// Idempotent; any other status is a 403, as Glance.
    pub async fn deactivate(&self, ctx: &AuthContext, id: &str) -> Result<(), ImageError> {
        self.set_active(ctx, id, ImageStatus::Active, ImageStatus::Deactivated, "deactivate").await
    }

    /// Glance's `reactivate` action: a deactivated image is active again.
    pub async fn reactivate(&self, ctx: &AuthContext, id: &str) -> Result<(), ImageError> {
        self.set_active(ctx, id, ImageStatus::Deactivated, ImageStatus::Active, "reactivate").await
    }

    /// Move an image `from` -> `to` for an action (already `to` is a no-op).
    async fn set_active(
        &self,
        ctx: &AuthContext,
        id: &str,
        from: ImageStatus,
        to: ImageStatus,
        action: &str,
    ) -> Result<(), ImageError> {
        let row = self.get_modifiable(ctx, id).await?;
        let refused =
            |status: ImageStatus| ImageError::Forbidden(format!("Not allowed to {action} image in status '{status}'."));
        if row.status != from && row.status != to {
            return Err(refused(row.status));
        }
        match self.ds.image_set_status(&row.id, &[from], to).await {
            Ok(stratus_db::Cas::Updated | stratus_db::Cas::AlreadySo) => Ok(()),
            Ok(stratus_db::Cas::Conflict) => Err(refused(self.ds.image_get(&row.id).await?.status)),
            Err(DbError::NotFound { .. }) => Err(ImageError::not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Add a tag (idempotent).
    pub async fn add_tag(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<(), ImageError> {
        let mut row = self.get_modifiable(ctx, id).await?;
        let tag = rules::v_tag(&Value::String(tag.to_string()))?;
        let mut props = rules::props_of(&row);
        let mut tags = rules::tags_of(&props);
        if !tags.contains(&tag) {
            tags.push(tag);
            rules::set_tags(&mut props, &tags)?;
            row.properties = Value::Object(props).to_string();
            self.ds.image_update(&row).await?;
        }
        Ok(())
    }

    /// Remove a tag; [`ImageError::TagNotFound`] when it is not there.
    pub async fn remove_tag(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<(), ImageError> {
        let mut row = self.get_modifiable(ctx, id).await?;
        let mut props = rules::props_of(&row);
        let mut tags = rules::tags_of(&props);
        let before = tags.len();
        tags.retain(|t| t != tag);
        if tags.len() == before {
            return Err(ImageError::TagNotFound { id: id.to_string(), tag: tag.to_string() });
        }
        rules::set_tags(&mut props, &tags)?;
        row.properties = Value::Object(props).to_string();
        self.ds.image_update(&row).await?;
        Ok(())
    }

    /// Store a queued image's data, streamed chunk by chunk; the image becomes active.
    pub async fn upload<S, B, E>(&self, ctx: &AuthContext, id: &str, body: S) -> Result<(), ImageError>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: Display,
    {
        let row = self.get_modifiable(ctx, id).await?;
        if row.status != ImageStatus::Queued {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to saving is not allowed",
                row.status
            )));
        }
        if row.disk_format.is_none() || row.container_format.is_none() {
            return Err(ImageError::BadRequest(
                "Properties disk_format, container_format must be set prior to saving data.".into(),
            ));
        }
        // Claim the image: one upload at a time, and never over an active
        // image (Glance's `saving`). Whatever ends the upload early gives the
        // image back as `queued` (Glance restores it), see [`SavingClaim`].
        if self.ds.image_set_status(&row.id, &[ImageStatus::Queued], ImageStatus::Saving).await?
            != stratus_db::Cas::Updated
        {
            let cur = self.ds.image_get(&row.id).await?;
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to saving is not allowed",
                cur.status
            )));
        }
        let mut claim = SavingClaim::new(&self.ds, row.id, ImageStatus::Saving);
        let result = async {
            // Quotas counted with this upload already `saving`: the uploads
            // in progress, and the bytes the project may still store.
            let usage = self.ds.image_usage(&row.owner).await?;
            if self.quota.count_uploading >= 0 && usage.uploading > self.quota.count_uploading {
                return Err(ImageError::QuotaExceeded(format!(
                    "Attempt to upload image exceeds the image_count_uploading quota of {}.",
                    self.quota.count_uploading
                )));
            }
            // Glance inspects the finished upload: bytes that are not a safe
            // image of the declared disk_format are refused (400) and dropped.
            let stored = self.receive(&row, usage.bytes, &self.image_dir, row.disk_format, body).await?;
            if let Err(e) = self.ds.image_finish_upload(&row.id, stored.size, &stored.md5, &stored.sha512).await {
                let _ = tokio::fs::remove_file(data_path(&self.image_dir, &row.id)).await;
                return Err(match e {
                    DbError::NotFound { .. } => ImageError::not_found(id),
                    e => e.into(),
                });
            }
            Ok(())
        }
        .await;
        if result.is_ok() {
            claim.armed = false;
        } else {
            claim.release().await;
        }
        result
    }

    /// Stream `body` into `<dir>/<id>` within the project's byte quota
    /// (`used` bytes already stored), inspected as `inspect` when set.
    pub(crate) async fn receive<S, B, E>(
        &self,
        row: &ImageRow,
        used: i64,
        dir: &Path,
        inspect: Option<DiskFormat>,
        body: S,
    ) -> Result<Stored, ImageError>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: Display,
    {
        let room = if self.quota.size_total_bytes >= 0 {
            Some(u64::try_from(self.quota.size_total_bytes.saturating_sub(used)).unwrap_or(0))
        } else {
            None
        };
        let mut writer = DataWriter::create(dir, &row.id).await?;
        let mut body = std::pin::pin!(body);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ImageError::BadRequest(format!("Reading the image data failed: {e}")))?;
            written = written.saturating_add(chunk.as_ref().len() as u64);
            if room.is_some_and(|r| written > r) {
                return Err(ImageError::QuotaExceeded(format!(
                    "Denying attempt to upload image because it exceeds the image_size_total quota of {} bytes.",
                    self.quota.size_total_bytes
                )));
            }
            writer.write(chunk.as_ref()).await?;
        }
        writer.finish(inspect).await
    }

    /// An image's bytes, or [`Download::Empty`] while it has none.
    pub async fn download(&self, ctx: &AuthContext, id: &str) -> Result<Download, ImageError> {
        let row = self.get_visible(ctx, id).await?;
        rules::check_download(ctx, &row)?;
        // A deactivated image keeps its bytes (only admins get this far).
        if !matches!(row.status, ImageStatus::Active | ImageStatus::Deactivated) || row.size.is_none() {
            return Ok(Download::Empty);
        }
        let path = data_path(&self.image_dir, &row.id);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(image = %id, "image is active but its data file is missing");
                return Err(ImageError::DataNotFound { id: id.to_string() });
            }
            Err(e) => return Err(ImageError::io("reading image data", e)),
        };
        let len = file.metadata().await.map_err(|e| ImageError::io("reading image data", e))?.len();
        Ok(Download::Data { file, len, checksum: row.checksum })
    }

    /// Make sure a public, active qcow2/bare image called `name` exists (used by
    /// `stratus up` to seed `cirros` for the fake driver); idempotent, returns the image id.
    pub async fn seed(&self, name: &str, owner_project_id: &str, data: &[u8]) -> Result<ImageId, ImageError> {
        let spec = SeedImage {
            name,
            disk_format: DiskFormat::Qcow2,
            container_format: ContainerFormat::Bare,
            properties: Map::new(),
            data,
        };
        self.seed_image(owner_project_id, &spec).await
    }

    /// Make sure a public, active image matching `spec` exists, owned by
    /// `owner_project_id`, and return its id. Idempotent, and it converges: an
    /// existing seed image of that name (say from a run with another driver, or
    /// an older guest build) gets the spec's formats, the spec's properties
    /// (other properties stay) and the spec's bytes, keeping its id so the images
    /// that point at it by id stay valid. A seed interrupted between create and
    /// upload is finished, not duplicated.
    pub async fn seed_image(&self, owner_project_id: &str, spec: &SeedImage<'_>) -> Result<ImageId, ImageError> {
        let candidates: Vec<ImageRow> = self
            .ds
            .image_list(Some(owner_project_id))
            .await?
            .into_iter()
            .filter(|r| r.name.as_deref() == Some(spec.name) && r.visibility == Visibility::Public)
            .collect();
        let ours = |r: &&ImageRow| r.owner == owner_project_id;
        let existing = candidates
            .iter()
            .filter(ours)
            .find(|r| r.status == ImageStatus::Active)
            .or_else(|| candidates.iter().filter(ours).find(|r| r.status == ImageStatus::Queued));
        let Some(row) = existing else {
            if let Some(r) = candidates.iter().find(|r| r.status == ImageStatus::Active) {
                // Another project's public image of that name: seeding never touches it.
                return Ok(r.id);
            }
            let row = ImageRow {
                id: ImageId::new(),
                name: Some(spec.name.to_string()),
                owner: owner_project_id.to_string(),
                status: ImageStatus::Queued,
                visibility: Visibility::Public,
                disk_format: Some(spec.disk_format),
                container_format: Some(spec.container_format),
                size: None,
                checksum: None,
                os_hash_value: None,
                min_disk: 0,
                min_ram: 0,
                protected: false,
                properties: Value::Object(spec.properties.clone()).to_string(),
                created_at: stratus_db::SET_ON_INSERT,
                updated_at: stratus_db::SET_ON_INSERT,
            };
            self.ds.image_create(&row).await?;
            return self.seed_data(&row.id, spec.data).await.map(|()| row.id);
        };
        let mut props = rules::props_of(row);
        let props_match = spec.properties.iter().all(|(k, v)| props.get(k) == Some(v));
        if !props_match
            || row.disk_format != Some(spec.disk_format)
            || row.container_format != Some(spec.container_format)
        {
            for (k, v) in &spec.properties {
                props.insert(k.clone(), v.clone());
            }
            let updated = ImageRow {
                disk_format: Some(spec.disk_format),
                container_format: Some(spec.container_format),
                properties: Value::Object(props).to_string(),
                ..row.clone()
            };
            self.ds.image_update(&updated).await?;
        }
        let data_match = row.status == ImageStatus::Active
            && row.size == i64::try_from(spec.data.len()).ok()
            && row.os_hash_value.as_deref() == Some(store::sha512_hex(spec.data).as_str())
            && tokio::fs::try_exists(data_path(&self.image_dir, &row.id)).await.unwrap_or(false);
        if !data_match {
            self.seed_data(&row.id, spec.data).await?;
        }
        Ok(row.id)
    }

    /// Store a seed image's bytes and mark it active.
    async fn seed_data(&self, id: &ImageId, data: &[u8]) -> Result<(), ImageError> {
        let mut writer = DataWriter::create(&self.image_dir, id).await?;
        for chunk in data.chunks(1 << 20) {
            writer.write(chunk).await?;
        }
        // Seed bytes are the operator's (a stand-in cirros is no real qcow2):
        // not inspected here; every use of an image inspects it again.
        let stored = writer.finish(None).await?;
        self.record_data(id, &stored).await
    }

    /// Record stored data; if the image vanished meanwhile, drop the file again.
    async fn record_data(&self, id: &ImageId, stored: &Stored) -> Result<(), ImageError> {
        if let Err(e) = self.ds.image_set_data(id, stored.size, &stored.md5, &stored.sha512).await {
            let _ = tokio::fs::remove_file(data_path(&self.image_dir, id)).await;
            return Err(match e {
                DbError::NotFound { .. } => ImageError::not_found(id),
                e => e.into(),
            });
        }
        Ok(())
    }

    /// Remove an image's data file if there is one (idempotent).
    async fn remove_data(&self, id: &ImageId) -> Result<(), ImageError> {
        let path = data_path(&self.image_dir, id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("removing image data", e)),
        }
    }
}

#[cfg(test)]
mod tests;
