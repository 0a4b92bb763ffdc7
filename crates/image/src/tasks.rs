//! Glance's tasks: `/v2/tasks` (type `import`: make an image from a URL the
//! server fetches) and the import tasks of an image (`/v2/images/{id}/tasks`,
//! type `api_image_import`), one table for both. Fetching goes through
//! `stratus-webfetch`'s guard; the fetched bytes go through the same format
//! inspection as an upload. Tasks expire `TASK_TTL` after they end and are
//! purged then (Glance's `task_time_to_live`).

use crate::view::glance_ts;
use crate::{ImageError, ImageService};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use stratus_auth::AuthContext;
use stratus_db::{DbError, ImageTaskRow};

/// Work an API call started that outlives its answer (a download, an
/// import): the HTTP layer spawns it, tests await it.
pub type Job = BoxFuture<'static, ()>;

/// How long an ended task is kept (Glance's `task_time_to_live`, 48 h).
pub const TASK_TTL: chrono::Duration = chrono::Duration::hours(48);

/// Glance's task statuses (list filter values).
const STATUSES: &[&str] = &["pending", "processing", "success", "failure"];
/// The keys a task list sorts on.
const SORT_KEYS: &[&str] = &["id", "type", "status", "created_at", "updated_at"];
/// Glance's `limit_param_default` and `api_limit_max`.
const LIMIT_DEFAULT: usize = 25;
const LIMIT_MAX: usize = 1000;

fn body_of(row: &ImageTaskRow) -> Map<String, Value> {
    match serde_json::from_str(&row.body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A task as `/v2/tasks` shows it: `full` adds `input`, `result` and
/// `message` (Glance's show; its list leaves them out).
pub fn task_view(row: &ImageTaskRow, full: bool) -> Value {
    let body = body_of(row);
    let mut v = Map::new();
    v.insert("id".into(), json!(row.id));
    v.insert("type".into(), json!(row.task_type));
    v.insert("status".into(), json!(row.status));
    v.insert("owner".into(), json!(row.owner));
    v.insert("image_id".into(), json!(row.image_id));
    for k in ["request_id", "user_id"] {
        v.insert(k.into(), body.get(k).cloned().unwrap_or(Value::Null));
    }
    if full {
        for k in ["input", "result", "message"] {
            v.insert(k.into(), body.get(k).cloned().unwrap_or(Value::Null));
        }
    }
    if let Some(t) = row.expires_at {
        v.insert("expires_at".into(), json!(glance_ts(t)));
    }
    v.insert("created_at".into(), json!(glance_ts(row.created_at)));
    v.insert("updated_at".into(), json!(glance_ts(row.updated_at)));
    v.insert("self".into(), json!(format!("/v2/tasks/{}", row.id)));
    v.insert("schema".into(), json!("/v2/schemas/task"));
    Value::Object(v)
}

/// An image's task as `/v2/images/{id}/tasks` shows it (Glance: every
/// attribute, `expires_at` null while running, no links).
pub fn image_task_view(row: &ImageTaskRow) -> Value {
    let mut v = match task_view(row, true) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    v.remove("self");
    v.remove("schema");
    v.entry("expires_at").or_insert(Value::Null);
    Value::Object(v)
}

/// What a failed task says: the client's own errors in full, anything
/// internal as a generic line (the detail is logged).
pub(crate) fn failure_message(task: &str, e: &ImageError) -> String {
    match e {
        ImageError::InvalidData(_)
        | ImageError::QuotaExceeded(_)
        | ImageError::TooLarge(_)
        | ImageError::BadRequest(_)
        | ImageError::Conflict(_) => e.to_string(),
        e => {
            tracing::warn!(task, error = %e, "image task failed");
            "The import failed.".to_string()
        }
    }
}

impl ImageService {
    /// Record a new task.
    pub(crate) async fn task_insert(
        &self,
        ctx: &AuthContext,
        task_type: &str,
        status: &str,
        image_id: Option<String>,
        input: Value,
        request_id: &str,
    ) -> Result<ImageTaskRow, ImageError> {
        let body =
            json!({"input": input, "result": null, "message": "", "request_id": request_id, "user_id": ctx.user_id});
        Ok(self
            .ds
            .image_task_create(&ImageTaskRow {
                id: uuid::Uuid::new_v4().to_string(),
                owner: ctx.project_id.clone(),
                task_type: task_type.into(),
                status: status.into(),
                image_id,
                body: body.to_string(),
                created_at: stratus_db::SET_ON_INSERT,
                updated_at: stratus_db::SET_ON_INSERT,
                expires_at: None,
            })
            .await?)
    }

    /// Move a task on; an ended one (`success`/`failure`) gets its expiry.
    pub(crate) async fn task_set(
        &self,
        id: &str,
        status: &str,
        image_id: Option<&str>,
        result: Value,
        message: &str,
    ) -> Result<(), ImageError> {
        let cur = match self.ds.image_task_get(id).await {
            Ok(r) => r,
            Err(DbError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut body = body_of(&cur);
        body.insert("result".into(), result);
        body.insert("message".into(), json!(message));
        let ended = matches!(status, "success" | "failure");
        match self
            .ds
            .image_task_update(id, status, image_id, &Value::Object(body).to_string(), ended.then_some(TASK_TTL))
            .await
        {
            Ok(_) | Err(DbError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Log-and-forget form of [`Self::task_set`] for background jobs.
    pub(crate) async fn task_end(&self, id: &str, image_id: Option<&str>, outcome: &Result<(), ImageError>) {
        let r = match outcome {
            Ok(()) => self.task_set(id, "success", image_id, json!({"image_id": image_id}), "").await,
            Err(e) => self.task_set(id, "failure", image_id, Value::Null, &failure_message(id, e)).await,
        };
        if let Err(e) = r {
            tracing::warn!(task = id, error = %e, "could not record the end of an image task");
        }
    }

    /// Tasks may be used by admins only (Glance's default `tasks_api_access`).
    fn tasks_allowed(ctx: &AuthContext) -> Result<(), ImageError> {
        if ctx.is_admin() {
            Ok(())
        } else {
            Err(ImageError::Forbidden("You are not authorized to complete tasks_api_access action.".into()))
        }
    }

    /// `POST /v2/tasks`: an `import` task (a new image from `import_from`).
    /// Everything checkable is checked here (the URL through the guard,
    /// including its resolution: Glance answers 400 for a URL it will not
    /// fetch); the download and inspection run in the returned job.
    pub async fn task_create(
        &self,
        ctx: &AuthContext,
        req: &Map<String, Value>,
        request_id: &str,
    ) -> Result<(Value, Job), ImageError> {
        Self::tasks_allowed(ctx)?;
        for key in ["type", "input"] {
            if !req.contains_key(key) {
                return Err(ImageError::BadRequest(format!("Task '{key}' is required")));
            }
        }
        if let Some(k) = req.keys().find(|k| !matches!(k.as_str(), "type" | "input")) {
            return Err(ImageError::BadRequest(format!("Attribute '{k}' is read-only.")));
        }
        match req.get("type").and_then(Value::as_str) {
            Some("import") => {}
            Some(t) => return Err(ImageError::BadRequest(format!("Invalid type value: {t}"))),
            None => return Err(ImageError::BadRequest("Invalid type value: a string is required.".into())),
        }
        let input = req
            .get("input")
            .and_then(Value::as_object)
            .ok_or_else(|| ImageError::BadRequest("Task 'input' must be an object.".into()))?;
        for key in ["import_from", "import_from_format", "image_properties"] {
            if !input.contains_key(key) {
                return Err(ImageError::BadRequest(format!("Input does not contain '{key}' field")));
            }
        }
        let url = input
            .get("import_from")
            .and_then(Value::as_str)
            .ok_or_else(|| ImageError::BadRequest("Invalid value for 'import_from': a URL is required.".into()))?;
        if !input.get("import_from_format").is_some_and(Value::is_string) {
            return Err(ImageError::BadRequest("Invalid value for 'import_from_format': a string is required.".into()));
        }
        let props = input
            .get("image_properties")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                ImageError::BadRequest("Invalid value for 'image_properties': an object is required.".into())
            })?
            .clone();
        let guard = self.web.clone().ok_or_else(|| {
            ImageError::BadRequest(
                "Import tasks fetch a URL, which this cloud does not do (web-download is not enabled).".into(),
            )
        })?;
        guard.check(url).await.map_err(|e| ImageError::BadRequest(e.to_string()))?;
        // The image's properties are judged now, as an image create would.
        crate::rules::new_image(ctx, &props)?;
        let row = self.task_insert(ctx, "import", "pending", None, Value::Object(input.clone()), request_id).await?;
        let view = task_view(&row, true);
        let (svc, ctx, url, id) = (self.clone(), ctx.clone(), url.to_string(), row.id.clone());
        let job: Job = Box::pin(async move { svc.run_import_task(&ctx, &id, &guard, &url, &props).await });
        Ok((view, job))
    }

    /// The body of an `import` task: create the image, fetch, inspect, store.
    async fn run_import_task(
        &self,
        ctx: &AuthContext,
        task_id: &str,
        guard: &stratus_webfetch::Guard,
        url: &str,
        props: &Map<String, Value>,
    ) {
        if let Err(e) = self.task_set(task_id, "processing", None, Value::Null, "").await {
            tracing::warn!(task = task_id, error = %e, "could not start an image task");
            return;
        }
        let _beat = self.task_heartbeat(task_id);
        let image = match self.create(ctx, props).await {
            Ok(i) => i,
            Err(e) => return self.task_end(task_id, None, &Err(e)).await,
        };
        let image_id = image.id.to_string();
        let outcome = async {
            let body = guard.fetch(url, self.size_cap()).await.map_err(|e| ImageError::BadRequest(e.to_string()))?;
            self.upload(ctx, &image_id, body.into_stream()).await
        }
        .await;
        if outcome.is_err()
            && let Err(e) = self.delete(ctx, &image_id).await
        {
            tracing::warn!(task = task_id, image = %image_id, error = %e, "could not remove a failed task's image");
        }
        self.task_end(task_id, Some(&image_id), &outcome).await;
    }

    /// The most bytes one download may bring (the project size quota; the
    /// exact room left is enforced while storing).
    pub(crate) fn size_cap(&self) -> u64 {
        u64::try_from(self.quota.size_total_bytes).unwrap_or(u64::MAX)
    }

    /// `GET /v2/tasks/{id}`: one task of the caller's project (an admin's:
    /// any); expired tasks are gone.
    pub async fn task_show(&self, ctx: &AuthContext, id: &str) -> Result<Value, ImageError> {
        Self::tasks_allowed(ctx)?;
        self.ds.image_task_purge_expired().await?;
        let missing = || ImageError::Missing(format!("Task with the given ID {id} could not be found"));
        let row = match self.ds.image_task_get(id).await {
            Ok(r) => r,
            Err(DbError::NotFound { .. }) => return Err(missing()),
            Err(e) => return Err(e.into()),
        };
        if !ctx.is_admin() && row.owner != ctx.project_id {
            return Err(missing());
        }
        Ok(task_view(&row, true))
    }

    /// `GET /v2/tasks`: Glance's list (filters `type`, `status`; `sort_key`,
    /// `sort_dir`, `limit`, `marker`; a `next` link when the page is full).
    pub async fn task_list(&self, ctx: &AuthContext, query: &[(String, String)]) -> Result<Value, ImageError> {
        Self::tasks_allowed(ctx)?;
        let params: HashMap<&str, &str> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let sort_dir = params.get("sort_dir").copied().unwrap_or("desc");
        if !matches!(sort_dir, "asc" | "desc") {
            return Err(ImageError::BadRequest(format!("Invalid sort direction: {sort_dir}")));
        }
        let sort_key = params.get("sort_key").copied().unwrap_or("created_at");
        if !SORT_KEYS.contains(&sort_key) {
            return Err(ImageError::BadRequest(format!("Invalid sort key: {sort_key}")));
        }
        if let Some(s) = params.get("status").filter(|s| !s.is_empty())
            && !STATUSES.contains(s)
        {
            return Err(ImageError::BadRequest(format!("Invalid status value: {s}")));
        }
        if let Some(t) = params.get("type").filter(|t| !t.is_empty())
            && *t != "import"
            && *t != "api_image_import"
        {
            return Err(ImageError::BadRequest(format!("Invalid type value: {t}")));
        }
        let limit = match params.get("limit") {
            None => LIMIT_DEFAULT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n < 0 => return Err(ImageError::BadRequest("limit param must be positive".into())),
                Ok(n) => usize::try_from(n).unwrap_or(LIMIT_MAX).min(LIMIT_MAX),
                Err(_) => return Err(ImageError::BadRequest("limit param must be an integer".into())),
            },
        };
        let marker = params.get("marker").copied();
        if marker.is_some_and(|m| uuid::Uuid::parse_str(m).is_err()) {
            return Err(ImageError::BadRequest("Invalid marker format".into()));
        }
        self.ds.image_task_purge_expired().await?;
        let owner = (!ctx.is_admin()).then_some(ctx.project_id.as_str());
        let mut rows: Vec<ImageTaskRow> = self
            .ds
            .image_task_list(owner)
            .await?
            .into_iter()
            .filter(|r| params.get("status").is_none_or(|s| s.is_empty() || r.status == *s))
            .filter(|r| params.get("type").is_none_or(|t| t.is_empty() || r.task_type == *t))
            .collect();
        let key = |r: &ImageTaskRow| -> String {
            match sort_key {
                "id" => r.id.clone(),
                "type" => r.task_type.clone(),
                "status" => r.status.clone(),
                "updated_at" => stratus_db::ts(r.updated_at),
                _ => stratus_db::ts(r.created_at),
            }
        };
        rows.sort_by(|a, b| {
            let o = key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id));
            if sort_dir == "asc" { o } else { o.reverse() }
        });
        let start = match marker {
            None => 0,
            Some(m) => rows
                .iter()
                .position(|r| r.id == m)
                .map(|i| i + 1)
                .ok_or_else(|| ImageError::BadRequest(format!("Task with the given ID {m} could not be found")))?,
        };
        let page: Vec<&ImageTaskRow> = rows.iter().skip(start).take(limit).collect();
        let kept: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "marker").cloned().collect();
        let encode = |q: &[(String, String)]| {
            q.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&")
        };
        let mut body = Map::new();
        body.insert("tasks".into(), Value::Array(page.iter().map(|r| task_view(r, false)).collect()));
        body.insert(
            "first".into(),
            json!(if kept.is_empty() { "/v2/tasks".to_string() } else { format!("/v2/tasks?{}", encode(&kept)) }),
        );
        body.insert("schema".into(), json!("/v2/schemas/tasks"));
        if limit > 0
            && page.len() == limit
            && let Some(last) = page.last()
        {
            let mut next = kept.clone();
            next.push(("marker".into(), last.id.clone()));
            body.insert("next".into(), json!(format!("/v2/tasks?{}", encode(&next))));
        }
        Ok(Value::Object(body))
    }

    /// `GET /v2/images/{id}/tasks`: the image's tasks, newest first.
    pub async fn import_tasks(&self, ctx: &AuthContext, id: &str) -> Result<Vec<Value>, ImageError> {
        let row = self.get_visible(ctx, id).await?;
        self.ds.image_task_purge_expired().await?;
        Ok(self.ds.image_task_list_for_image(&row.id.to_string()).await?.iter().map(image_task_view).collect())
    }
}

/// Percent-encode a query component (links echo the client's parameters).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
