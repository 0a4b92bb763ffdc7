//! Block Storage API v3 (Cinder-compatible), mounted at `/volume`.
//!
//! Version discovery, absolute limits (usage counted from the database),
//! volumes (create, list, detail, show, update, delete, `os-extend`,
//! `os-reset_status`, `os-set_bootable`) and the attachments API (3.27+) the
//! way Nova drives it: create → update (connector) → `os-complete` (3.44) →
//! delete. Every path exists both under `/volume/v3/{project_id}` (the path
//! project must be the caller's unless admin: 403) and without the project
//! (Cinder 3.67+). Requests under `/volume/v3` negotiate the `volume`
//! microversion. The logic lives in [`stratus_volume::VolumeService`]; this
//! module parses bodies and renders Cinder's JSON.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use stratus_auth::AuthContext;
use stratus_db::{AttachmentRow, VolumeRow, parse_ts};
use stratus_volume::{ListFilter, NewVolume, VolumeUpdate};

/// Highest `volume` microversion claimed (Cinder 2023.2).
const MAX_MINOR: u32 = 70;
/// The attachments API (`NEW_ATTACH`).
const MV_ATTACHMENTS: u32 = 27;
/// `os-complete` on an attachment (`NEW_ATTACH_COMPLETION`).
const MV_ATTACH_COMPLETE: u32 = 44;

/// The negotiated `volume` minor version (3.x), set by the microversion
/// middleware for handlers that gate on it.
#[derive(Clone, Copy, Debug)]
pub struct VolumeMv(pub u32);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for VolumeMv {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<VolumeMv>().copied().unwrap_or(VolumeMv(0)))
    }
}

/// Path parameters (`project_id` is absent on project-less URLs).
type Params = Path<HashMap<String, String>>;
/// Query parameters.
type Q = Query<HashMap<String, String>>;

/// Routes of Block Storage v3: version discovery, limits, volumes, attachments.
pub fn routes(state: AppState) -> Router {
    let mut v3 = Router::new();
    // Project-less URLs (Cinder 3.67+) share the handlers.
    for prefix in ["/volume/v3/{project_id}", "/volume/v3"] {
        v3 = v3
            .route(&format!("{prefix}/limits"), get(limits))
            .route(&format!("{prefix}/volumes"), get(list_volumes).post(create_volume))
            .route(&format!("{prefix}/volumes/detail"), get(list_volumes_detail))
            .route(
                &format!("{prefix}/volumes/{{volume_id}}"),
                get(show_volume).put(update_volume).delete(delete_volume),
            )
            .route(&format!("{prefix}/volumes/{{volume_id}}/action"), post(volume_action))
            .route(
                &format!("{prefix}/volumes/{{volume_id}}/metadata"),
                get(show_metadata).post(merge_metadata).put(replace_metadata),
            )
            .route(
                &format!("{prefix}/volumes/{{volume_id}}/metadata/{{key}}"),
                get(show_metadata_key).put(set_metadata_key).delete(delete_metadata_key),
            )
            .route(&format!("{prefix}/attachments"), get(list_attachments).post(create_attachment))
            .route(&format!("{prefix}/attachments/detail"), get(list_attachments_detail))
            .route(
                &format!("{prefix}/attachments/{{attachment_id}}"),
                get(show_attachment).put(update_attachment).delete(delete_attachment),
            )
            .route(&format!("{prefix}/attachments/{{attachment_id}}/action"), post(attachment_action));
    }
    let v3 = v3.route_layer(axum::middleware::from_fn(volume_microversion));
    Router::new()
        .route("/volume", get(versions_multiple))
        .route("/volume/", get(versions_multiple))
        .route("/volume/v3", get(versions_ok))
        .route("/volume/v3/", get(versions_ok))
        .merge(v3)
        .with_state(state)
}

/// The version list with the v3 entry; `self` points at `<public>/volume/v3/`.
fn versions_doc(public_url: &str) -> Value {
    json!({
        "versions": [{
            "id": "v3.0",
            "status": "CURRENT",
            "version": format!("3.{MAX_MINOR}"),
            "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "self", "href": format!("{public_url}/volume/v3/")}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
        }]
    })
}

async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(versions_doc(&state.public_url))).into_response()
}

async fn versions_ok(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(versions_doc(&state.public_url))).into_response()
}

/// The requested `volume` minor version from `OpenStack-API-Version`
/// (e.g. `volume 3.59`, `volume latest`; other services' entries are
/// ignored); 3.0 when absent.
fn requested_minor(header_value: Option<&str>) -> Result<u32, ApiError> {
    let Some(h) = header_value else { return Ok(0) };
    for item in h.split(',') {
        let mut parts = item.split_whitespace();
        let (Some(service), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !service.eq_ignore_ascii_case("volume") {
            continue;
        }
        if version.eq_ignore_ascii_case("latest") {
            return Ok(MAX_MINOR);
        }
        let malformed = || ApiError::BadRequest(format!("Invalid API version request string: volume {version}"));
        let (major, minor) = version.split_once('.').ok_or_else(malformed)?;
        let major: u32 = major.parse().map_err(|_| malformed())?;
        let minor: u32 = minor.parse().map_err(|_| malformed())?;
        if major != 3 || minor > MAX_MINOR {
            return Err(ApiError::NotAcceptable(format!(
                "Version {version} is not supported by the API. Minimum is 3.0 and maximum is 3.{MAX_MINOR}."
            )));
        }
        return Ok(minor);
    }
    Ok(0)
}

/// Negotiate the `volume` microversion and echo it (`OpenStack-API-Version`),
/// refusing malformed (400) and unsupported (406) requests like Cinder.
async fn volume_microversion(mut req: Request, next: Next) -> Response {
    let requested = req.headers().get("openstack-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let minor = match requested_minor(requested.as_deref()) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(VolumeMv(minor));
    let mut resp = next.run(req).await;
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume 3.{minor}")) {
        hs.insert(HeaderName::from_static("openstack-api-version"), v);
    }
    hs.insert(header::VARY, HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// The project in the URL must be the caller's own, unless admin.
fn check_project(ctx: &AuthContext, project_id: &str) -> Result<(), ApiError> {
    if ctx.can_see(project_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Policy doesn't allow access to project {project_id} with a token scoped to project {}.",
            ctx.project_id
        )))
    }
}

/// Check the URL's project (when present) and return it, else the caller's.
fn scope(ctx: &AuthContext, p: &HashMap<String, String>) -> Result<String, ApiError> {
    match p.get("project_id") {
        Some(pid) => {
            check_project(ctx, pid)?;
            Ok(pid.clone())
        }
        None => Ok(ctx.project_id.clone()),
    }
}

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> Result<&'a str, ApiError> {
    p.get(key).map(String::as_str).ok_or_else(|| ApiError::BadRequest(format!("missing path parameter {key}")))
}

/// A version-gated method below its microversion: Cinder answers 404.
fn require_mv(mv: VolumeMv, min: u32) -> Result<(), ApiError> {
    if mv.0 >= min {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("API version 3.{} is not supported on this method (needs 3.{min}).", mv.0)))
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes" | "y" | "on")
}

/// Cinder's timestamp format (`2018-11-29T06:50:07.770785`, UTC, no zone).
fn cinder_ts(s: &str) -> Value {
    match parse_ts(s) {
        Ok(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        Err(_) => Value::String(s.to_string()),
    }
}

fn links(state: &AppState, project_id: &str, kind: &str, id: &str) -> Value {
    let base = &state.public_url;
    json!([
        {"rel": "self", "href": format!("{base}/volume/v3/{project_id}/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/volume/{project_id}/{kind}/{id}")},
    ])
}

/// Absolute limits: Cinder's keys, the configured volume quotas and usage
/// counted from the database (snapshots and backups do not exist: zero).
async fn limits(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    let project = scope(&ctx, &p)?;
    let usage = state.volume.usage(&project).await?;
    let cfg = state.volume.config();
    Ok(axum::Json(json!({
        "limits": {
            "rate": [],
            "absolute": {
                "totalSnapshotsUsed": 0,
                "maxTotalBackups": 10,
                "maxTotalVolumeGigabytes": cfg.quota_gigabytes,
                "maxTotalSnapshots": 10,
                "maxTotalBackupGigabytes": 1000,
                "totalBackupGigabytesUsed": 0,
                "maxTotalVolumes": cfg.quota_volumes,
                "totalVolumesUsed": usage.volumes,
                "totalBackupsUsed": 0,
                "totalGigabytesUsed": usage.gigabytes
            }
        }
    })))
}

/// A volume's `attachments` entries (Cinder lists attached ones only; a
/// fenced attachment still ties the volume to its server until detached).
fn volume_attachments(v: &VolumeRow, atts: &[AttachmentRow]) -> Value {
    Value::Array(
        atts.iter()
            .filter(|a| matches!(a.status.as_str(), "attached" | "detaching" | "fenced"))
            .map(|a| {
                json!({
                    "server_id": a.server_id,
                    "attachment_id": a.id,
                    "attached_at": cinder_ts(&a.created_at),
                    "host_name": a.host,
                    "volume_id": v.id,
                    "device": a.mountpoint,
                    "id": v.id,
                })
            })
            .collect(),
    )
}

/// The full volume view of the api-ref (`GET /volumes/{id}`).
fn volume_detail(state: &AppState, ctx: &AuthContext, v: &VolumeRow, atts: &[AttachmentRow]) -> Value {
    let metadata: Value = serde_json::from_str(&v.metadata).unwrap_or_else(|_| json!({}));
    let mut o = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size_gb,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "bootable": if v.bootable { "true" } else { "false" },
        "volume_type": v.volume_type,
        "attachments": volume_attachments(v, atts),
        "created_at": cinder_ts(&v.created_at),
        "updated_at": cinder_ts(&v.updated_at),
        "metadata": metadata,
        "links": links(state, &v.project_id, "volumes", &v.id),
        "user_id": v.user_id,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "encrypted": false,
        "multiattach": false,
        "snapshot_id": null,
        "source_volid": null,
        "consistencygroup_id": null,
        "group_id": null,
        "replication_status": null,
        "migration_status": null,
        "consumes_quota": true,
    });
    if let Some(m) = o.as_object_mut() {
        if let Some(image) = &v.image_id {
            m.insert("volume_image_metadata".into(), json!({ "image_id": image }));
        }
        if ctx.is_admin() {
            m.insert("os-vol-host-attr:host".into(), json!(state.volume.host_attr()));
            m.insert("os-vol-mig-status-attr:migstat".into(), Value::Null);
            m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
        }
    }
    o
}

async fn detail_of(state: &AppState, ctx: &AuthContext, v: &VolumeRow) -> Result<Value, ApiError> {
    let atts = state.volume.attachments_of(&v.id).await?;
    Ok(volume_detail(state, ctx, v, &atts))
}

/// `GET /volumes[/detail]`: filters `all_tenants` (admins), `project_id`,
/// `name`, `status`; pagination with `limit` and `marker`.
async fn list(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
    detail: bool,
) -> Result<Value, ApiError> {
    let project = scope(ctx, p)?;
    let f = ListFilter {
        all_projects: q.get("all_tenants").or_else(|| q.get("all_projects")).is_some_and(|v| truthy(v)),
        project_id: q.get("project_id").cloned(),
        name: q.get("name").cloned(),
        status: q.get("status").cloned(),
    };
    let mut rows = state.volume.list(ctx, &f).await?;
    if let Some(marker) = q.get("marker") {
        let Some(i) = rows.iter().position(|v| &v.id == marker) else {
            return Err(ApiError::BadRequest(format!("Marker {marker} could not be found.")));
        };
        rows.drain(..=i);
    }
    let limit = match q.get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::BadRequest(format!("Invalid input received: limit {l} must be an integer.")))?,
        ),
        None => None,
    };
    let mut next = None;
    if let Some(l) = limit
        && rows.len() > l
    {
        rows.truncate(l);
        next = rows.last().map(|v| v.id.clone());
    }
    let mut out = Vec::with_capacity(rows.len());
    for v in &rows {
        out.push(if detail {
            detail_of(state, ctx, v).await?
        } else {
            json!({"id": v.id, "name": v.name, "links": links(state, &v.project_id, "volumes", &v.id)})
        });
    }
    let mut body = json!({ "volumes": out });
    if let (Some(marker), Some(l)) = (next, limit) {
        let path = if detail { "volumes/detail" } else { "volumes" };
        body["volumes_links"] = json!([{
            "rel": "next",
            "href": format!("{}/volume/v3/{project}/{path}?limit={l}&marker={marker}", state.public_url),
        }]);
    }
    Ok(body)
}

async fn list_volumes(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, false).await?))
}

async fn list_volumes_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, true).await?))
}

/// The object under `key` (`{"volume": {...}}`), Cinder's 400 otherwise.
fn body_object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::BadRequest(format!("Missing required element '{key}' in request body.")))
}

/// An optional string field (null is absent).
fn opt_str(o: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, ApiError> {
    for k in keys {
        match o.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string'"
                )));
            }
        }
    }
    Ok(None)
}

/// An integer given as a number or a numeric string (Cinder accepts both).
fn int_field(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    let bad = |v: &Value| {
        ApiError::BadRequest(format!(
            "Invalid input received: {key} '{}' must be an integer and greater than 0",
            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
        ))
    };
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(&Value::Number(n.clone()))),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad(&Value::String(s.clone()))),
        Some(v) => Err(bad(v)),
    }
}

fn metadata_field(o: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match o.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let Some(s) = v.as_str() else {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid input for field/attribute metadata. Value: {v}. {v} is not of type 'string'"
                    )));
                };
                out.insert(k.clone(), s.to_string());
            }
            Ok(Some(out))
        }
        Some(v) => Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute metadata. Value: {v}. {v} is not of type 'object'"
        ))),
    }
}

/// `POST /volumes` → 202 with the volume (built inline: `available` or `error`).
async fn create_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    let v: Value = parse_json(&body)?;
    let o = body_object(&v, "volume")?;
    if let Some(id) = opt_str(o, &["snapshot_id"])? {
        return Err(ApiError::NotFound(format!("Snapshot {id} could not be found.")));
    }
    if let Some(id) = opt_str(o, &["backup_id"])? {
        return Err(ApiError::NotFound(format!("Backup {id} could not be found.")));
    }
    for unsupported in ["source_volid", "consistencygroup_id", "group_id", "source_replica"] {
        if opt_str(o, &[unsupported])?.is_some() {
            return Err(ApiError::BadRequest(format!(
                "Invalid input received: {unsupported} is not supported by this cloud."
            )));
        }
    }
    if o.get("multiattach").and_then(Value::as_bool).unwrap_or(false) {
        return Err(ApiError::BadRequest("Invalid input received: multiattach volumes are not supported.".into()));
    }
    let size = int_field(o, "size")?.ok_or_else(|| {
        ApiError::BadRequest("Invalid input received: Volume size must be specified as an integer.".into())
    })?;
    let req = NewVolume {
        size,
        name: opt_str(o, &["name", "display_name"])?,
        description: opt_str(o, &["description", "display_description"])?,
        metadata: metadata_field(o)?.unwrap_or_default(),
        image_ref: opt_str(o, &["imageRef", "image_id"])?,
        volume_type: opt_str(o, &["volume_type"])?,
        availability_zone: opt_str(o, &["availability_zone"])?,
    };
    let row = state.volume.create(&ctx, req).await?;
    let body = json!({ "volume": detail_of(&state, &ctx, &row).await? });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn show_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let v = state.volume.get_visible(&ctx, param(&p, "volume_id")?).await?;
    Ok(axum::Json(json!({ "volume": detail_of(&state, &ctx, &v).await? })))
}

/// `PUT /volumes/{id}`: name, description, metadata (legacy `display_*` too).
async fn update_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "volume_id")?;
    let v: Value = parse_json(&body)?;
    let o = body_object(&v, "volume")?;
    const KEYS: &[&str] = &["name", "description", "display_name", "display_description", "metadata"];
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute volume. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let u = VolumeUpdate {
        name: opt_str(o, &["name", "display_name"])?,
        description: opt_str(o, &["description", "display_description"])?,
        metadata: metadata_field(o)?,
    };
    let row = state.volume.update(&ctx, id, u).await?;
    Ok(axum::Json(json!({ "volume": detail_of(&state, &ctx, &row).await? })))
}

/// `DELETE /volumes/{id}` → 202; the storage may be deleted later (queued
/// while busy), the volume shows `deleting` until then.
async fn delete_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.delete(&ctx, param(&p, "volume_id")?).await?;
    Ok(StatusCode::ACCEPTED)
}

fn bool_value(name: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(ApiError::BadRequest(format!("Invalid input received: '{s}' is not a valid value for {name}."))),
        },
        other => {
            Err(ApiError::BadRequest(format!("Invalid input received: '{other}' is not a valid value for {name}.")))
        }
    }
}

/// `POST /volumes/{id}/action`: `os-extend` (202), `os-reset_status`
/// (admins, 202), `os-set_bootable` (200).
async fn volume_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "volume_id")?;
    let v: Value = parse_json(&body)?;
    let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(ApiError::BadRequest("The action body must be an object with exactly one action key.".into()));
    };
    let empty = Map::new();
    let args = arg.as_object().unwrap_or(&empty);
    let svc = &state.volume;
    match action.as_str() {
        "os-extend" => {
            let new_size = int_field(args, "new_size")?
                .ok_or_else(|| ApiError::BadRequest("Invalid input received: new_size is required.".into()))?;
            svc.extend(&ctx, id, new_size).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-reset_status" => {
            let status = opt_str(args, &["status"])?;
            let attach_status = opt_str(args, &["attach_status"])?;
            svc.reset_status(&ctx, id, status.as_deref(), attach_status.as_deref()).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-set_bootable" => {
            let b =
                args.get("bootable").ok_or_else(|| ApiError::BadRequest("Must specify bootable in request.".into()))?;
            svc.set_bootable(&ctx, id, bool_value("bootable", b)?).await?;
            Ok(StatusCode::OK.into_response())
        }
        other => Err(ApiError::BadRequest(format!("There is no such action: {other}"))),
    }
}

async fn show_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let v = state.volume.get_visible(&ctx, param(&p, "volume_id")?).await?;
    Ok(axum::Json(json!({ "metadata": stratus_volume::VolumeService::metadata_of(&v) })))
}

async fn write_metadata(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    body: &[u8],
    replace: bool,
) -> Result<axum::Json<Value>, ApiError> {
    scope(ctx, p)?;
    let v: Value = parse_json(body)?;
    let m = v
        .as_object()
        .and_then(|o| metadata_field(o).transpose())
        .transpose()?
        .ok_or_else(|| ApiError::BadRequest("Missing required element 'metadata' in request body.".into()))?;
    let out = state.volume.set_metadata(ctx, param(p, "volume_id")?, m, replace).await?;
    Ok(axum::Json(json!({ "metadata": out })))
}

/// `POST /volumes/{id}/metadata`: merge (`openstack volume set --property`).
async fn merge_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    write_metadata(&state, &ctx, &p, &body, false).await
}

/// `PUT /volumes/{id}/metadata`: replace all.
async fn replace_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    write_metadata(&state, &ctx, &p, &body, true).await
}

fn metadata_key_not_found(id: &str, key: &str) -> ApiError {
    ApiError::NotFound(format!("Volume {id} has no metadata with key {key}."))
}

async fn show_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "volume_id")?, param(&p, "key")?);
    let v = state.volume.get_visible(&ctx, id).await?;
    let m = stratus_volume::VolumeService::metadata_of(&v);
    let value = m.get(key).ok_or_else(|| metadata_key_not_found(id, key))?;
    Ok(axum::Json(json!({ "meta": { key: value } })))
}

/// `PUT /volumes/{id}/metadata/{key}` with `{"meta": {key: value}}`.
async fn set_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "volume_id")?, param(&p, "key")?);
    let v: Value = parse_json(&body)?;
    let meta = body_object(&v, "meta")?;
    let value = match (meta.len(), meta.get(key)) {
        (1, Some(Value::String(s))) => s.clone(),
        _ => return Err(ApiError::BadRequest("Request body and URI mismatch".into())),
    };
    state.volume.set_metadata(&ctx, id, BTreeMap::from([(key.to_string(), value.clone())]), false).await?;
    Ok(axum::Json(json!({ "meta": { key: value } })))
}

/// `DELETE /volumes/{id}/metadata/{key}` (`openstack volume unset --property`).
async fn delete_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.delete_metadata_key(&ctx, param(&p, "volume_id")?, param(&p, "key")?).await?;
    Ok(StatusCode::OK)
}

fn attachment_summary(a: &AttachmentRow) -> Value {
    json!({"id": a.id, "status": a.status, "instance": a.server_id, "volume_id": a.volume_id})
}

/// Cinder's attachment detail view, with the connection info once the
/// host's connector is known.
fn attachment_detail(state: &AppState, a: &AttachmentRow, v: &VolumeRow) -> Value {
    let mut o = attachment_summary(a);
    o["attached_at"] = if a.status == "attached" { cinder_ts(&a.created_at) } else { Value::Null };
    o["detached_at"] = Value::Null;
    o["attach_mode"] = json!("rw");
    o["connection_info"] = state.volume.connection_info(a, v);
    o
}

/// `POST /attachments` (3.27+): reserve a volume for a server, as Nova does
/// before attaching; with a connector the attachment is `attaching` at once.
async fn create_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let v: Value = parse_json(&body)?;
    let o = body_object(&v, "attachment")?;
    let volume_id = opt_str(o, &["volume_uuid"])?
        .ok_or_else(|| ApiError::BadRequest("Invalid input received: volume_uuid is required.".into()))?;
    let instance = opt_str(o, &["instance_uuid"])?
        .ok_or_else(|| ApiError::BadRequest("Invalid input received: instance_uuid is required.".into()))?;
    if let Some(mode) = opt_str(o, &["mode"])?
        && mode != "rw"
    {
        return Err(ApiError::BadRequest(format!("Invalid input received: attach mode {mode} is not supported.")));
    }
    let connector = o.get("connector").filter(|c| !c.is_null());
    let a = state.volume.attachment_create(&ctx, &volume_id, &instance, connector).await?;
    let (a, vol) = state.volume.attachment_get_visible(&ctx, &a.id).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &vol) })))
}

/// `PUT /attachments/{id}` (3.27+): the host's connector; answers with the
/// connection info.
async fn update_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let id = param(&p, "attachment_id")?;
    let v: Value = parse_json(&body)?;
    let o = body_object(&v, "attachment")?;
    let connector = o
        .get("connector")
        .filter(|c| c.is_object())
        .ok_or_else(|| ApiError::BadRequest("Invalid input received: connector is required.".into()))?;
    state.volume.attachment_update(&ctx, id, connector).await?;
    let (a, vol) = state.volume.attachment_get_visible(&ctx, id).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &vol) })))
}

/// `POST /attachments/{id}/action` with `{"os-complete": null}` (3.44+) → 204.
async fn attachment_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let id = param(&p, "attachment_id")?;
    let v: Value = parse_json(&body)?;
    let Some(action) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.keys().next()) else {
        return Err(ApiError::BadRequest("The action body must be an object with exactly one action key.".into()));
    };
    match action.as_str() {
        "os-complete" => {
            require_mv(mv, MV_ATTACH_COMPLETE)?;
            state.volume.attachment_complete(&ctx, id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        other => Err(ApiError::BadRequest(format!("There is no such action: {other}"))),
    }
}

/// `DELETE /attachments/{id}` (3.27+) → 200 with the attachments still
/// sharing the connection (none: no multiattach).
async fn delete_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    state.volume.attachment_delete(&ctx, param(&p, "attachment_id")?).await?;
    Ok(axum::Json(json!({ "attachments": [] })))
}

async fn attachments(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
    detail: bool,
) -> Result<Value, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(ctx, p)?;
    let all = q.get("all_tenants").is_some_and(|v| truthy(v));
    let rows = state.volume.attachment_list(ctx, all).await?;
    let filter = |a: &AttachmentRow| {
        q.get("volume_id").is_none_or(|v| v == &a.volume_id) && q.get("instance_id").is_none_or(|s| s == &a.server_id)
    };
    let out: Vec<Value> = rows
        .iter()
        .filter(|(a, _)| filter(a))
        .map(|(a, v)| if detail { attachment_detail(state, a, v) } else { attachment_summary(a) })
        .collect();
    Ok(json!({ "attachments": out }))
}

async fn list_attachments(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(attachments(&state, &ctx, mv, &p, &q, false).await?))
}

async fn list_attachments_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(attachments(&state, &ctx, mv, &p, &q, true).await?))
}

async fn show_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let (a, v) = state.volume.attachment_get_visible(&ctx, param(&p, "attachment_id")?).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &v) })))
}

/// A volume service over an in-memory backend, for the tests of every
/// module that builds an [`AppState`].
#[cfg(test)]
pub(crate) fn test_service(
    ds: &stratus_db::Datastore,
    image_dir: std::path::PathBuf,
) -> (std::sync::Arc<stratus_volume::VolumeService>, stratus_volume::testing::MemBackend) {
    let backend = stratus_volume::testing::MemBackend::new();
    let cfg = stratus_volume::VolumeConfig { image_dir, ..stratus_volume::VolumeConfig::default() };
    (
        std::sync::Arc::new(stratus_volume::VolumeService::new(ds.clone(), std::sync::Arc::new(backend.clone()), cfg)),
        backend,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::HeaderMap;
    use std::path::PathBuf;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Removes the test's directory when dropped.
    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Env {
        state: AppState,
        backend: stratus_volume::testing::MemBackend,
        admin: String,
        demo: String,
        demo_project: String,
        admin_project: String,
        _dir: TempDir,
    }

    async fn env() -> Env {
        let dir = std::env::temp_dir().join(format!("stratus-volume-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open db");
        stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("admin");
        stratus_auth::bootstrap_user(&ds, "demo", "pw", "demo", "member", false).await.expect("demo");
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let admin = identity
            .authenticate("admin", "pw", stratus_auth::ProjectScope::Name("admin".into()))
            .await
            .expect("admin token");
        let demo = identity
            .authenticate("demo", "pw", stratus_auth::ProjectScope::Name("demo".into()))
            .await
            .expect("demo token");
        let bus: Arc<dyn stratus_bus::Bus> = Arc::new(stratus_bus::InProcessBus::new());
        let compute = stratus_controller::compute_api::ComputeApi::new(
            ds.clone(),
            bus.clone(),
            stratus_controller::ControllerConfig::default(),
        );
        let (volume, backend) = test_service(&ds, dir.join("images"));
        let images = Arc::new(stratus_image::ImageService::new(ds.clone(), dir.join("images")));
        let state = AppState { ds, identity, compute, bus, public_url: "http://127.0.0.1:8774".into(), volume, images };
        Env {
            state,
            backend,
            admin_project: admin.context.project_id,
            admin: admin.token,
            demo_project: demo.context.project_id,
            demo: demo.token,
            _dir: TempDir(dir),
        }
    }

    async fn call(env: &Env, uri: &str, token: Option<&str>, version: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        send(env, "GET", uri, token, version, None).await
    }

    async fn send(
        env: &Env,
        method: &str,
        uri: &str,
        token: Option<&str>,
        version: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(v) = version {
            req = req.header("openstack-api-version", v);
        }
        let resp = crate::router(env.state.clone())
            .oneshot(
                match body {
                    Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
                    None => req.body(Body::empty()),
                }
                .expect("request"),
            )
            .await
            .expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("json") };
        (status, headers, json)
    }

    #[tokio::test]
    async fn volume_version_discovery() {
        let env = env().await;
        for (path, status) in [
            ("/volume", StatusCode::MULTIPLE_CHOICES),
            ("/volume/", StatusCode::MULTIPLE_CHOICES),
            ("/volume/v3", StatusCode::OK),
            ("/volume/v3/", StatusCode::OK),
        ] {
            let (s, _, v) = call(&env, path, None, None).await;
            assert_eq!(s, status, "{path}");
            let ver = &v["versions"][0];
            assert_eq!(ver["id"], "v3.0");
            assert_eq!(ver["status"], "CURRENT");
            assert_eq!(ver["version"], "3.70");
            assert_eq!(ver["min_version"], "3.0");
            assert_eq!(ver["links"][0]["href"], "http://127.0.0.1:8774/volume/v3/");
            assert_eq!(ver["media-types"][0]["type"], "application/vnd.openstack.volume+json;version=3");
        }
    }

    #[tokio::test]
    async fn volume_limits_for_own_project_only() {
        let env = env().await;
        let own = format!("/volume/v3/{}/limits", env.demo_project);
        let (s, h, v) = call(&env, &own, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["limits"]["rate"], json!([]));
        let abs = &v["limits"]["absolute"];
        assert_eq!(abs["maxTotalVolumes"], 10);
        assert_eq!(abs["maxTotalVolumeGigabytes"], 1000);
        assert_eq!(abs["totalVolumesUsed"], 0);
        assert_eq!(abs["totalGigabytesUsed"], 0);
        assert_eq!(abs.as_object().expect("absolute").len(), 10);
        assert_eq!(h.get("openstack-api-version").and_then(|v| v.to_str().ok()), Some("volume 3.0"));

        let other = format!("/volume/v3/{}/limits", env.admin_project);
        let (s, _, v) = call(&env, &other, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["forbidden"]["code"], 403);

        // Admins may look at any project.
        let (s, _, _) = call(&env, &own, Some(&env.admin), None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = call(&env, "/volume/v3/limits", Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);

        let (s, _, _) = call(&env, &own, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn volume_lists_are_empty() {
        let env = env().await;
        for suffix in ["volumes", "volumes/detail"] {
            let (s, _, v) =
                call(&env, &format!("/volume/v3/{}/{suffix}", env.demo_project), Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v, json!({"volumes": []}));
            let (s, _, v) = call(&env, &format!("/volume/v3/{suffix}"), Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v, json!({"volumes": []}));
            let (s, _, _) =
                call(&env, &format!("/volume/v3/{}/{suffix}", env.admin_project), Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        }
    }

    #[tokio::test]
    async fn volume_microversion_negotiation() {
        let env = env().await;
        let uri = format!("/volume/v3/{}/limits", env.demo_project);
        let echoed = |h: &HeaderMap| h.get("openstack-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
        let (s, h, _) = call(&env, &uri, Some(&env.demo), Some("volume 3.59")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(echoed(&h).as_deref(), Some("volume 3.59"));
        let (_, h, _) = call(&env, &uri, Some(&env.demo), Some("compute 2.90, volume latest")).await;
        assert_eq!(echoed(&h).as_deref(), Some("volume 3.70"));
        let (_, h, _) = call(&env, &uri, Some(&env.demo), Some("compute 2.90")).await;
        assert_eq!(echoed(&h).as_deref(), Some("volume 3.0"));
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 3.99")).await;
        assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 2.0")).await;
        assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume three")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    const SERVER: &str = "5f3d2a3e-0c1b-4f7a-9a57-1b2c3d4e5f60";

    /// Create a volume as demo through the API; returns its JSON.
    async fn create(env: &Env, size: i64, name: &str) -> Value {
        let uri = format!("/volume/v3/{}/volumes", env.demo_project);
        let (s, _, v) =
            send(env, "POST", &uri, Some(&env.demo), None, Some(json!({"volume": {"size": size, "name": name}}))).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        v["volume"].clone()
    }

    #[tokio::test]
    async fn volume_create_list_show_update_delete() {
        let env = env().await;
        let base = format!("/volume/v3/{}/volumes", env.demo_project);
        // The body the SDK sends for `openstack volume create --size 1 v1`.
        let body = json!({"volume": {
            "size": 1, "name": "v1", "description": null, "snapshot_id": null, "volume_type": null,
            "availability_zone": null, "metadata": {"k": "v"}, "imageRef": null, "source_volid": null,
            "consistencygroup_id": null, "backup_id": null
        }});
        let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let vol = &v["volume"];
        let id = vol["id"].as_str().expect("id").to_string();
        assert_eq!(vol["status"], "available");
        assert_eq!(vol["size"], 1);
        assert_eq!(vol["name"], "v1");
        assert_eq!(vol["bootable"], "false");
        assert_eq!(vol["encrypted"], false);
        assert_eq!(vol["multiattach"], false);
        assert_eq!(vol["volume_type"], "__DEFAULT__");
        assert_eq!(vol["availability_zone"], "nova");
        assert_eq!(vol["attachments"], json!([]));
        assert_eq!(vol["metadata"], json!({"k": "v"}));
        assert_eq!(vol["os-vol-tenant-attr:tenant_id"], env.demo_project.as_str());
        for k in ["snapshot_id", "source_volid", "consistencygroup_id", "replication_status", "migration_status"] {
            assert!(vol.get(k).is_some_and(Value::is_null), "{k}");
        }
        assert!(vol.get("os-vol-host-attr:host").is_none(), "admins only");
        assert_eq!(
            vol["links"][0]["href"],
            format!("http://127.0.0.1:8774/volume/v3/{}/volumes/{id}", env.demo_project)
        );
        assert!(!vol["created_at"].as_str().expect("ts").ends_with('Z'), "Cinder's naive UTC format");

        let (s, _, v) = call(&env, &base, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["volumes"][0]["id"], id.as_str());
        assert_eq!(v["volumes"][0]["name"], "v1");
        assert!(v["volumes"][0].get("status").is_none(), "summary view");
        for uri in [format!("{base}/detail"), "/volume/v3/volumes/detail".to_string()] {
            let (s, _, v) = call(&env, &uri, Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
            assert_eq!(v["volumes"][0]["status"], "available");
        }
        let (_, _, v) = call(&env, &format!("{base}/detail?name=v1"), Some(&env.demo), None).await;
        assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
        let (_, _, v) = call(&env, &format!("{base}/detail?name=nope"), Some(&env.demo), None).await;
        assert_eq!(v["volumes"], json!([]));

        let one = format!("{base}/{id}");
        let (s, _, v) = call(&env, &one, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["volume"]["id"], id.as_str());
        let (s, _, v) = call(&env, &one, Some(&env.admin), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["volume"]["os-vol-host-attr:host"], "stratus@mem#mem");

        let (s, _, v) =
            send(&env, "PUT", &one, Some(&env.demo), None, Some(json!({"volume": {"name": "v2", "description": "d"}})))
                .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["volume"]["name"], "v2");
        assert_eq!(v["volume"]["description"], "d");
        assert_eq!(v["volume"]["metadata"], json!({"k": "v"}), "kept");

        let (s, _, _) = send(&env, "DELETE", &one, Some(&env.demo), None, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, _, v) = call(&env, &one, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["itemNotFound"]["message"], format!("Volume {id} could not be found."));
        assert!(env.backend.is_empty());
    }

    #[tokio::test]
    async fn volume_create_validation() {
        let env = env().await;
        let base = format!("/volume/v3/{}/volumes", env.demo_project);
        let post = |b: Value| send(&env, "POST", &base, Some(&env.demo), None, Some(b));
        let (s, _, v) = post(json!({"volume": {"size": 0}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["code"], 400);
        let (s, _, _) = post(json!({"size": 1})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, _) = post(json!({"volume": {"size": "x"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, v) = post(json!({"volume": {"size": "2"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "numeric strings are sizes too");
        assert_eq!(v["volume"]["size"], 2);
        let (s, _, _) = post(json!({"volume": {"size": 1, "snapshot_id": SERVER}})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = post(json!({"volume": {"size": 1, "volume_type": "gold"}})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = post(json!({"volume": {"size": 1, "imageRef": SERVER}})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Another project's URL: 403.
        let other = format!("/volume/v3/{}/volumes", env.admin_project);
        let (s, _, _) = send(&env, "POST", &other, Some(&env.demo), None, Some(json!({"volume": {"size": 1}}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn volume_of_another_project_is_404() {
        let env = env().await;
        let id = create(&env, 1, "mine").await["id"].as_str().expect("id").to_string();
        let theirs = format!("/volume/v3/volumes/{id}");
        stratus_auth::bootstrap_user(&env.state.ds, "alt", "pw", "alt", "member", false).await.expect("alt");
        let alt = env
            .state
            .identity
            .authenticate("alt", "pw", stratus_auth::ProjectScope::Name("alt".into()))
            .await
            .expect("alt token")
            .token;
        for (method, body) in [("GET", None), ("PUT", Some(json!({"volume": {"name": "x"}}))), ("DELETE", None)] {
            let (s, _, _) = send(&env, method, &theirs, Some(&alt), None, body).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method}");
        }
        let (s, _, _) = send(
            &env,
            "POST",
            &format!("{theirs}/action"),
            Some(&alt),
            None,
            Some(json!({"os-extend": {"new_size": 2}})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, v) = call(&env, "/volume/v3/volumes", Some(&alt), None).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"volumes": []})));
        // Admins see every project's volumes with all_tenants.
        let (_, _, v) = call(&env, "/volume/v3/volumes/detail?all_tenants=1", Some(&env.admin), None).await;
        assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
        let (_, _, v) = call(&env, "/volume/v3/volumes/detail", Some(&env.admin), None).await;
        assert_eq!(v["volumes"], json!([]), "own project only without all_tenants");
    }

    #[tokio::test]
    async fn attachments_as_nova_drives_them_and_deleting_an_attached_volume_is_400() {
        let env = env().await;
        let vol = create(&env, 1, "data").await;
        let vid = vol["id"].as_str().expect("id").to_string();
        let p = &env.demo_project;
        let t = Some(env.demo.as_str());
        let mv = Some("volume 3.44");

        // Below 3.27 the attachments API does not exist.
        let (s, _, _) = send(&env, "POST", &format!("/volume/v3/{p}/attachments"), t, None, Some(json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Nova: attachment_create without a connector reserves the volume.
        let body = json!({"attachment": {"volume_uuid": vid, "instance_uuid": SERVER}});
        let (s, _, v) = send(&env, "POST", &format!("/volume/v3/{p}/attachments"), t, mv, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let att = v["attachment"]["id"].as_str().expect("attachment id").to_string();
        assert_eq!(v["attachment"]["status"], "reserved");
        assert_eq!(v["attachment"]["instance"], SERVER);
        assert_eq!(v["attachment"]["volume_id"], vid.as_str());
        assert!(v["attachment"]["connection_info"].is_null());
        let vol_uri = format!("/volume/v3/{p}/volumes/{vid}");
        assert_eq!(call(&env, &vol_uri, t, None).await.2["volume"]["status"], "reserved");

        // Deleting a reserved volume: Cinder's 400.
        let (s, _, v) = send(&env, "DELETE", &vol_uri, t, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["message"], stratus_volume::DELETE_REFUSED);

        // attachment_update with the host connector → attaching + connection info.
        let connector = json!({"host": "compute-1", "ip": "10.0.0.2", "initiator": "iqn.x", "mountpoint": "/dev/vdb"});
        let (s, _, v) = send(
            &env,
            "PUT",
            &format!("/volume/v3/{p}/attachments/{att}"),
            t,
            mv,
            Some(json!({"attachment": {"connector": connector}})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["attachment"]["status"], "attaching");
        assert_eq!(v["attachment"]["connection_info"]["driver_volume_type"], "mem");
        assert_eq!(v["attachment"]["connection_info"]["data"]["volume_id"], vid.as_str());
        assert_eq!(call(&env, &vol_uri, t, None).await.2["volume"]["status"], "attaching");

        // os-complete needs 3.44.
        let complete = format!("/volume/v3/{p}/attachments/{att}/action");
        let (s, _, _) = send(&env, "POST", &complete, t, Some("volume 3.27"), Some(json!({"os-complete": null}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, v) = send(&env, "POST", &complete, t, mv, Some(json!({"os-complete": null}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        let (_, _, v) = call(&env, &vol_uri, t, None).await;
        assert_eq!(v["volume"]["status"], "in-use");
        let a = &v["volume"]["attachments"][0];
        assert_eq!(a["server_id"], SERVER);
        assert_eq!(a["attachment_id"], att.as_str());
        assert_eq!(a["volume_id"], vid.as_str());
        assert_eq!(a["id"], vid.as_str());
        assert_eq!(a["device"], "/dev/vdb");
        assert_eq!(a["host_name"], "compute-1");
        assert!(a["attached_at"].is_string());

        let (s, _, v) = send(&env, "DELETE", &vol_uri, t, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["message"], stratus_volume::DELETE_REFUSED);

        let (s, _, v) = call(&env, &format!("/volume/v3/{p}/attachments"), t, mv).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["attachments"][0]["id"], att.as_str());
        let (s, _, v) = call(&env, &format!("/volume/v3/attachments/{att}"), t, mv).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["attachment"]["status"], "attached");
        let (s, _, _) = call(&env, &format!("/volume/v3/attachments/{att}"), Some(&env.admin), mv).await;
        assert_eq!(s, StatusCode::OK, "admins see every attachment");

        // Detach: attachment_delete → available, then the delete goes through.
        let (s, _, v) = send(&env, "DELETE", &format!("/volume/v3/{p}/attachments/{att}"), t, mv, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"attachments": []}));
        let (_, _, v) = call(&env, &vol_uri, t, None).await;
        assert_eq!(v["volume"]["status"], "available");
        assert_eq!(v["volume"]["attachments"], json!([]));
        let (s, _, _) = call(&env, &format!("/volume/v3/attachments/{att}"), t, mv).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // A connector at create time goes straight to attaching.
        let body =
            json!({"attachment": {"volume_uuid": vid, "instance_uuid": SERVER, "connector": {"host": "compute-2"}}});
        let (s, _, v) = send(&env, "POST", "/volume/v3/attachments", t, mv, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["attachment"]["status"], "attaching");
    }

    #[tokio::test]
    async fn volume_busy_delete_stays_deleting_until_the_reconciler_succeeds() {
        let env = env().await;
        let id = create(&env, 1, "busy").await["id"].as_str().expect("id").to_string();
        env.backend.busy_deletes(2);
        let uri = format!("/volume/v3/volumes/{id}");
        let (s, _, _) = send(&env, "DELETE", &uri, Some(&env.demo), None, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (_, _, v) = call(&env, &uri, Some(&env.demo), None).await;
        assert_eq!(v["volume"]["status"], "deleting");
        env.state.volume.reconcile().await.expect("pass 1");
        let (_, _, v) = call(&env, &uri, Some(&env.demo), None).await;
        assert_eq!(v["volume"]["status"], "deleting", "still busy: not swallowed");
        env.state.volume.reconcile().await.expect("pass 2");
        let (s, _, _) = call(&env, &uri, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn volume_extend_set_bootable_and_admin_only_reset_status() {
        let env = env().await;
        let id = create(&env, 1, "x").await["id"].as_str().expect("id").to_string();
        let action = format!("/volume/v3/{}/volumes/{id}/action", env.demo_project);
        let uri = format!("/volume/v3/{}/volumes/{id}", env.demo_project);
        let t = Some(env.demo.as_str());
        let (s, _, v) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 3}}))).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(call(&env, &uri, t, None).await.2["volume"]["size"], 3);
        let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 2}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "shrinking");

        let (s, _, _) =
            send(&env, "POST", &action, t, None, Some(json!({"os-set_bootable": {"bootable": "true"}}))).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(call(&env, &uri, t, None).await.2["volume"]["bootable"], "true");

        let reset = json!({"os-reset_status": {"status": "error"}});
        let (s, _, v) = send(&env, "POST", &action, t, None, Some(reset.clone())).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["forbidden"]["code"], 403);
        let admin_action = format!("/volume/v3/volumes/{id}/action");
        let (s, _, v) = send(&env, "POST", &admin_action, Some(&env.admin), None, Some(reset)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(call(&env, &uri, t, None).await.2["volume"]["status"], "error");
        let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 4}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "extend needs available");
        let (s, _, v) = send(&env, "POST", &action, t, None, Some(json!({"os-frobnicate": {}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["message"], "There is no such action: os-frobnicate");
    }

    #[tokio::test]
    async fn volume_quota_is_413_with_cinders_messages() {
        let env = env().await;
        let base = format!("/volume/v3/{}/volumes", env.demo_project);
        let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"volume": {"size": 1001}}))).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            v["overLimit"]["message"],
            "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1001G, quota is 1000G and 0G has been consumed."
        );
        assert_eq!(v["overLimit"]["code"], 413);
        for i in 0..10 {
            create(&env, 1, &format!("v{i}")).await;
        }
        let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"volume": {"size": 1}}))).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["overLimit"]["message"], "Maximum number of volumes allowed (10) exceeded for quota 'volumes'.");
    }

    #[tokio::test]
    async fn volume_limits_count_usage() {
        let env = env().await;
        create(&env, 1, "a").await;
        create(&env, 3, "b").await;
        for uri in [format!("/volume/v3/{}/limits", env.demo_project), "/volume/v3/limits".to_string()] {
            let (s, _, v) = call(&env, &uri, Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            let abs = &v["limits"]["absolute"];
            assert_eq!(abs["totalVolumesUsed"], 2);
            assert_eq!(abs["totalGigabytesUsed"], 4);
            assert_eq!(abs["maxTotalVolumes"], 10);
            assert_eq!(abs["maxTotalVolumeGigabytes"], 1000);
        }
        // An admin looking at demo's limits sees demo's usage; its own is zero.
        let (_, _, v) = call(&env, &format!("/volume/v3/{}/limits", env.demo_project), Some(&env.admin), None).await;
        assert_eq!(v["limits"]["absolute"]["totalVolumesUsed"], 2);
        let (_, _, v) = call(&env, "/volume/v3/limits", Some(&env.admin), None).await;
        assert_eq!(v["limits"]["absolute"]["totalVolumesUsed"], 0);
    }

    #[tokio::test]
    async fn volume_metadata_set_and_unset() {
        let env = env().await;
        let id = create(&env, 1, "m").await["id"].as_str().expect("id").to_string();
        let uri = format!("/volume/v3/{}/volumes/{id}/metadata", env.demo_project);
        let t = Some(env.demo.as_str());
        let (s, _, v) = send(&env, "POST", &uri, t, None, Some(json!({"metadata": {"a": "1"}}))).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"metadata": {"a": "1"}})));
        let (_, _, v) = send(&env, "POST", &uri, t, None, Some(json!({"metadata": {"b": "2"}}))).await;
        assert_eq!(v, json!({"metadata": {"a": "1", "b": "2"}}), "merged");
        let (s, _, v) = send(&env, "PUT", &format!("{uri}/c"), t, None, Some(json!({"meta": {"c": "3"}}))).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"meta": {"c": "3"}})));
        let (s, _, _) = send(&env, "DELETE", &format!("{uri}/a"), t, None, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = send(&env, "DELETE", &format!("{uri}/a"), t, None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, _, v) = call(&env, &uri, t, None).await;
        assert_eq!(v, json!({"metadata": {"b": "2", "c": "3"}}));
        let (_, _, v) = send(&env, "PUT", &uri, t, None, Some(json!({"metadata": {}}))).await;
        assert_eq!(v, json!({"metadata": {}}), "replaced");
        let (s, _, _) = call(&env, &uri, Some(&env.admin), None).await;
        assert_eq!(s, StatusCode::OK, "admins may use another project's path");
    }

    #[tokio::test]
    async fn volume_list_pagination() {
        let env = env().await;
        for i in 0..3 {
            create(&env, 1, &format!("p{i}")).await;
        }
        let (_, _, v) = call(&env, "/volume/v3/volumes?limit=2", Some(&env.demo), None).await;
        assert_eq!(v["volumes"].as_array().expect("page").len(), 2);
        let next = v["volumes_links"][0]["href"].as_str().expect("next link").to_string();
        let marker = v["volumes"][1]["id"].as_str().expect("id");
        assert!(next.ends_with(&format!("marker={marker}")), "{next}");
        let (_, _, v) = call(&env, &format!("/volume/v3/volumes?limit=2&marker={marker}"), Some(&env.demo), None).await;
        assert_eq!(v["volumes"].as_array().expect("page").len(), 1);
        assert!(v.get("volumes_links").is_none());
    }
}
