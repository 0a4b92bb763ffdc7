//! Interoperable image import, `glance-direct` only: the owner stages bytes
//! (`PUT /v2/images/{id}/stage`, status `uploading`), then asks for the
//! import (`POST /v2/images/{id}/import`, `importing` then `active`).
//! Staged bytes are hostile until inspected: the import runs them through
//! the same format inspection as an upload, and an image that fails it goes
//! back to `queued` with its task saying why. `web-download` is not offered:
//! fetching client-named URLs from the server is an SSRF risk.
//!
//! The import's task (Glance's `/v2/images/{id}/tasks`) is kept in the
//! image's properties under a reserved key, never shown as a property.

use crate::rules::{RESERVED_PREFIX, props_of};
use crate::store::data_path;
use crate::view::glance_ts;
use crate::{ImageError, ImageService, SavingClaim};
use futures::Stream;
use serde_json::{Map, Value, json};
use std::fmt::Display;
use std::path::PathBuf;
use stratus_auth::AuthContext;
use stratus_db::{DbError, ImageRow};
use stratus_types::image::ImageStatus;

/// The import methods this cloud offers (`GET /v2/info/import`).
pub const IMPORT_METHODS: &[&str] = &["glance-direct"];

/// Properties key holding the last import task (JSON).
const TASK_KEY: &str = "stratus:import_task";

/// An image's import task, as Glance's tasks API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportTask(pub Value);

impl ImageService {
    /// Where staged bytes wait for their import.
    fn staging_dir(&self) -> PathBuf {
        self.image_dir.join("staging")
    }

    /// Remove an image's staged bytes, if any.
    pub(crate) async fn remove_staged(&self, row: &ImageRow) {
        let path = data_path(&self.staging_dir(), &row.id);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(image = %row.id, error = %e, "could not remove staged image data");
        }
    }

    /// `PUT /v2/images/{id}/stage`: keep a queued image's bytes aside (not
    /// yet inspected, never served) and mark it `uploading`. A failed stage
    /// gives the image back as `queued`.
    pub async fn stage<S, B, E>(&self, ctx: &AuthContext, id: &str, body: S) -> Result<(), ImageError>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: Display,
    {
        let row = self.get_modifiable(ctx, id).await?;
        let transition = |s: ImageStatus| {
            ImageError::Conflict(format!("Image status transition from {s} to uploading is not allowed"))
        };
        if row.status != ImageStatus::Queued {
            return Err(transition(row.status));
        }
        if self.ds.image_set_status(&row.id, &[ImageStatus::Queued], ImageStatus::Uploading).await?
            != stratus_db::Cas::Updated
        {
            return Err(transition(self.ds.image_get(&row.id).await?.status));
        }
        let mut claim = SavingClaim { ds: self.ds.clone(), id: row.id, armed: true, held: ImageStatus::Uploading };
        let result = async {
            let usage = self.ds.image_usage(&row.owner).await?;
            self.receive(&row, usage.bytes, &self.staging_dir(), None, body).await.map(|_| ())
        }
        .await;
        if result.is_ok() {
            claim.armed = false;
        } else {
            claim.release().await;
        }
        result
    }

    /// `POST /v2/images/{id}/import` with `glance-direct`: inspect the staged
    /// bytes as the image's `disk_format` and store them (the image becomes
    /// `active`), or put the image back to `queued`. Either way the task
    /// records the outcome; the request itself only fails when the import
    /// cannot start (bad method, image not staged).
    pub async fn import(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: &Map<String, Value>,
        request_id: &str,
    ) -> Result<(), ImageError> {
        let row = self.get_modifiable(ctx, id).await?;
        let method = req
            .get("method")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| ImageError::BadRequest("An import needs 'method': {'name': ...}.".into()))?;
        if !IMPORT_METHODS.contains(&method) {
            return Err(ImageError::BadRequest(format!(
                "Import method {method} is not supported; available: {}.",
                IMPORT_METHODS.join(", ")
            )));
        }
        if req.get("stores").is_some_and(|s| !s.is_null()) {
            return Err(ImageError::BadRequest("This cloud has a single store: 'stores' cannot be chosen.".into()));
        }
        for flag in ["all_stores", "all_stores_must_succeed"] {
            if req.get(flag).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
                return Err(ImageError::BadRequest(format!("Invalid value for '{flag}': a boolean is required.")));
            }
        }
        if row.status != ImageStatus::Uploading {
            return Err(ImageError::Conflict(format!(
                "Image needs to be staged before '{method}' method can be used (status: {}).",
                row.status
            )));
        }
        if row.disk_format.is_none() || row.container_format.is_none() {
            return Err(ImageError::Conflict(
                "Properties disk_format, container_format must be set prior to import.".into(),
            ));
        }
        if self.ds.image_set_status(&row.id, &[ImageStatus::Uploading], ImageStatus::Importing).await?
            != stratus_db::Cas::Updated
        {
            let cur = self.ds.image_get(&row.id).await?;
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to importing is not allowed",
                cur.status
            )));
        }
        let created = glance_ts(chrono::Utc::now());
        let mut claim = SavingClaim { ds: self.ds.clone(), id: row.id, armed: true, held: ImageStatus::Importing };
        let outcome = self.import_staged(&row).await;
        if outcome.is_ok() {
            claim.armed = false;
        } else {
            claim.release().await;
        }
        self.remove_staged(&row).await;
        let (status, message) = match &outcome {
            Ok(()) => ("success", String::new()),
            Err(e @ (ImageError::InvalidData(_) | ImageError::QuotaExceeded(_) | ImageError::TooLarge(_))) => {
                ("failure", e.to_string())
            }
            Err(e) => {
                tracing::warn!(image = %row.id, error = %e, "image import failed");
                ("failure", "The import failed.".to_string())
            }
        };
        let task = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "type": "api_image_import",
            "status": status,
            "owner": row.owner,
            "input": {"image_id": row.id, "import_req": {"method": {"name": method}}, "backend": null},
            "result": if status == "success" { json!({"image_id": row.id}) } else { Value::Null },
            "message": message,
            "image_id": row.id,
            "request_id": request_id,
            "user_id": ctx.user_id,
            "expires_at": null,
            "created_at": created,
            "updated_at": glance_ts(chrono::Utc::now()),
        });
        self.record_task(&row, task).await
    }

    /// Inspect and store the staged bytes of `row` (held `importing`).
    async fn import_staged(&self, row: &ImageRow) -> Result<(), ImageError> {
        let staged = data_path(&self.staging_dir(), &row.id);
        let file = tokio::fs::File::open(&staged).await.map_err(|e| ImageError::io("opening staged image data", e))?;
        let chunks = futures::stream::unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt as _;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(buf), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let usage = self.ds.image_usage(&row.owner).await?;
        let stored = self.receive(row, usage.bytes, &self.image_dir, row.disk_format, chunks).await?;
        if let Err(e) =
            self.ds.image_finish_data(&row.id, ImageStatus::Importing, stored.size, &stored.md5, &stored.sha512).await
        {
            let _ = tokio::fs::remove_file(data_path(&self.image_dir, &row.id)).await;
            return Err(match e {
                DbError::NotFound { .. } => ImageError::not_found(row.id),
                e => e.into(),
            });
        }
        Ok(())
    }

    /// Keep `task` as the image's import task.
    async fn record_task(&self, row: &ImageRow, task: Value) -> Result<(), ImageError> {
        let mut cur = match self.ds.image_get(&row.id).await {
            Ok(r) => r,
            // Deleted meanwhile: nothing to record on.
            Err(DbError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut props = props_of(&cur);
        props.insert(TASK_KEY.into(), Value::String(task.to_string()));
        cur.properties = Value::Object(props).to_string();
        self.ds.image_update(&cur).await?;
        Ok(())
    }

    /// `GET /v2/images/{id}/tasks`: the image's import task, if it had one.
    pub async fn import_tasks(&self, ctx: &AuthContext, id: &str) -> Result<Vec<ImportTask>, ImageError> {
        let row = self.get_visible(ctx, id).await?;
        debug_assert!(TASK_KEY.starts_with(RESERVED_PREFIX));
        Ok(props_of(&row)
            .get(TASK_KEY)
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .map(ImportTask)
            .into_iter()
            .collect())
    }
}
