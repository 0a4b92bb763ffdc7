//! Interoperable image import. `glance-direct`: the owner stages bytes
//! (`PUT /v2/images/{id}/stage`, status `uploading`), then asks for the
//! import (`POST /v2/images/{id}/import`, `importing` then `active`).
//! `web-download` (when the operator enables it): the import names a URL
//! the server fetches through `stratus-webfetch`'s guard into the staging
//! area, then imports like `glance-direct`. Staged or downloaded bytes are
//! hostile until inspected: the import runs them through the same format
//! inspection as an upload, and an image that fails it goes back to `queued`
//! with its task saying why.
//!
//! The import's task (Glance's `/v2/images/{id}/tasks`) is a row of the
//! tasks table (see [`crate::tasks`]).

use crate::store::data_path;
use crate::tasks::Job;
use crate::{ImageError, ImageService, SavingClaim};
use futures::Stream;
use serde_json::{Map, Value, json};
use std::fmt::Display;
use std::path::PathBuf;
use stratus_auth::AuthContext;
use stratus_db::{DbError, ImageRow};
use stratus_types::image::ImageStatus;

/// The import methods this cloud can offer (`web-download` only when
/// enabled: see [`ImageService::import_methods`]).
pub const IMPORT_METHODS: &[&str] = &["glance-direct", "web-download"];

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
        let mut claim = SavingClaim::new(&self.ds, row.id, ImageStatus::Uploading);
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

    /// `POST /v2/images/{id}/import`. `glance-direct`: inspect the staged
    /// bytes as the image's `disk_format` and store them (the image becomes
    /// `active`), or put the image back to `queued`; done before answering.
    /// `web-download`: the URL is checked now (a refused or unresolvable one
    /// is a 400), the download and import run in the returned job. Either
    /// way the task records the outcome; the request itself only fails when
    /// the import cannot start (bad method, image not staged or not queued).
    pub async fn import(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: &Map<String, Value>,
        request_id: &str,
    ) -> Result<Option<Job>, ImageError> {
        let row = self.get_modifiable(ctx, id).await?;
        let method_obj = req
            .get("method")
            .and_then(Value::as_object)
            .ok_or_else(|| ImageError::BadRequest("An import needs 'method': {'name': ...}.".into()))?;
        let method = method_obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ImageError::BadRequest("An import needs 'method': {'name': ...}.".into()))?;
        let offered = self.import_methods();
        if !offered.contains(&method) {
            return Err(ImageError::BadRequest(format!(
                "Import method {method} is not supported; available: {}.",
                offered.join(", ")
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
        let web = if method == "web-download" {
            let uri = method_obj
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| ImageError::BadRequest("Import request requires a 'uri' field.".into()))?;
            let guard =
                self.web.clone().ok_or_else(|| ImageError::BadRequest("web-download is not enabled.".into()))?;
            guard.check(uri).await.map_err(|e| ImageError::BadRequest(e.to_string()))?;
            Some((guard, uri.to_string()))
        } else {
            None
        };
        let needed = if web.is_some() { ImageStatus::Queued } else { ImageStatus::Uploading };
        if row.status != needed {
            return Err(ImageError::Conflict(if web.is_some() {
                format!("Image needs to be in queued state to use '{method}' method (status: {}).", row.status)
            } else {
                format!("Image needs to be staged before '{method}' method can be used (status: {}).", row.status)
            }));
        }
        if row.disk_format.is_none() || row.container_format.is_none() {
            return Err(ImageError::Conflict(
                "Properties disk_format, container_format must be set prior to import.".into(),
            ));
        }
        if self.ds.image_set_status(&row.id, &[needed], ImageStatus::Importing).await? != stratus_db::Cas::Updated {
            let cur = self.ds.image_get(&row.id).await?;
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to importing is not allowed",
                cur.status
            )));
        }
        let mut claim = SavingClaim::new(&self.ds, row.id, ImageStatus::Importing);
        let mut import_req = json!({"method": {"name": method}});
        if let Some((_, uri)) = &web {
            import_req["method"]["uri"] = json!(uri);
        }
        let input = json!({"image_id": row.id, "import_req": import_req, "backend": null});
        let task = match self
            .task_insert(ctx, "api_image_import", "processing", Some(row.id.to_string()), input, request_id)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                claim.release().await;
                return Err(e);
            }
        };
        if let Some((guard, uri)) = web {
            let svc = self.clone();
            let job: Job = Box::pin(async move {
                // The claim travels with the job: a job dropped unrun still
                // gives the image back as `queued`.
                let mut claim = claim;
                let _beat = svc.task_heartbeat(&task.id);
                let outcome = async {
                    let body =
                        guard.fetch(&uri, svc.size_cap()).await.map_err(|e| ImageError::BadRequest(e.to_string()))?;
                    let usage = svc.ds.image_usage(&row.owner).await?;
                    svc.receive(&row, usage.bytes, &svc.staging_dir(), None, body.into_stream()).await?;
                    svc.import_staged(&row).await
                }
                .await;
                if outcome.is_ok() {
                    claim.armed = false;
                } else {
                    claim.release().await;
                }
                svc.remove_staged(&row).await;
                svc.task_end(&task.id, Some(&row.id.to_string()), &outcome).await;
            });
            return Ok(Some(job));
        }
        let _beat = self.task_heartbeat(&task.id);
        let outcome = self.import_staged(&row).await;
        if outcome.is_ok() {
            claim.armed = false;
        } else {
            claim.release().await;
        }
        self.remove_staged(&row).await;
        self.task_end(&task.id, Some(&row.id.to_string()), &outcome).await;
        Ok(None)
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
}
