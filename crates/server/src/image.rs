//! Image API v2 (Glance-compatible), mounted at `/image`.
//!
//! Image records live in the datastore; their bytes live in
//! `AppState::image_dir/<id>`, written by streaming the upload to a
//! temporary file while computing MD5 (`checksum`) and SHA-512
//! (`os_hash_value`), then renamed into place. Tags and `os_hidden` have no
//! columns of their own and are kept in the properties object under
//! reserved `stratus:` keys that are never shown to clients.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};
use std::cmp::Ordering;
use std::path::{Path as FsPath, PathBuf};
use stratus_auth::AuthContext;
use stratus_db::{DbError, ImageRow};
use tokio::io::AsyncWriteExt;

/// Disk formats Glance accepts by default.
const DISK_FORMATS: &[&str] = &["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
/// Container formats Glance accepts by default.
const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
/// Image visibilities.
const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];
/// Attributes clients may never set.
const READ_ONLY: &[&str] = &[
    "status",
    "checksum",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "self",
    "file",
    "schema",
    "os_hash_algo",
    "os_hash_value",
    "direct_url",
    "locations",
];
/// Largest accepted upload (Glance's default `image_size_cap` is 1 TiB).
const MAX_IMAGE_SIZE: u64 = 1 << 40;
/// Properties key holding the JSON-encoded tag list.
const TAGS_KEY: &str = "stratus:tags";
/// Properties key holding `os_hidden` (`"true"` when set).
const HIDDEN_KEY: &str = "stratus:os_hidden";
/// Prefix of properties reserved for Stratus' own bookkeeping.
const RESERVED_PREFIX: &str = "stratus:";
/// Default page size of the image list (Glance's `limit_param_default`).
const DEFAULT_LIMIT: usize = 25;
/// Largest page size (Glance's `api_limit_max`).
const MAX_LIMIT: usize = 1000;
/// Newest minor version of Image API v2 we claim.
const CURRENT_MINOR: u32 = 16;
/// Content types accepted by `PATCH` (JSON patch flavours of Glance).
const PATCH_TYPES: &[&str] =
    &["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"];

/// Routes of the Image API: version discovery, images, image data, tags, schemas.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/image", get(versions_multiple))
        .route("/image/", get(versions_multiple))
        .route("/image/versions", get(versions_ok))
        .route("/image/v2", get(versions_ok))
        .route("/image/v2/", get(versions_ok))
        .route("/image/v2/images", get(list_images).post(create_image))
        .route("/image/v2/images/{id}", get(show_image).patch(patch_image).delete(delete_image))
        .route("/image/v2/images/{id}/file", put(upload_file).get(download_file).layer(DefaultBodyLimit::disable()))
        .route("/image/v2/images/{id}/tags/{tag}", put(add_tag).delete(remove_tag))
        .route("/image/v2/schemas/image", get(schema_image))
        .route("/image/v2/schemas/images", get(schema_images))
        .with_state(state)
}

// ---------------------------------------------------------------- versions

/// The version list; `self` links point at `<public>/image/v2/`.
fn versions_doc(public_url: &str) -> Value {
    let href = format!("{public_url}/image/v2/");
    let versions: Vec<Value> = (0..=CURRENT_MINOR)
        .rev()
        .map(|minor| {
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == CURRENT_MINOR { "CURRENT" } else { "SUPPORTED" },
                "links": [{"rel": "self", "href": href}],
            })
        })
        .collect();
    json!({ "versions": versions })
}

async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(versions_doc(&state.public_url))).into_response()
}

async fn versions_ok(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(versions_doc(&state.public_url))).into_response()
}

// ------------------------------------------------------------- rendering

/// Glance's timestamp format (`2026-11-27T12:00:00Z`) from a stored RFC 3339 one.
fn glance_ts(stored: &str) -> String {
    stratus_db::parse_ts(stored)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| stored.to_string())
}

/// The properties object of a row (an unreadable one counts as empty).
fn props_of(row: &ImageRow) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&row.properties) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Tags kept in the properties.
fn tags_of(props: &Map<String, Value>) -> Vec<String> {
    props.get(TAGS_KEY).and_then(Value::as_str).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
}

/// `os_hidden` kept in the properties.
fn hidden_of(props: &Map<String, Value>) -> bool {
    props.get(HIDDEN_KEY).and_then(Value::as_str) == Some("true")
}

/// Store tags into the properties (dropping the key when empty).
fn set_tags(props: &mut Map<String, Value>, tags: &[String]) -> Result<(), ApiError> {
    if tags.is_empty() {
        props.remove(TAGS_KEY);
    } else {
        let s = serde_json::to_string(tags).map_err(|e| ApiError::Internal(e.to_string()))?;
        props.insert(TAGS_KEY.into(), Value::String(s));
    }
    Ok(())
}

/// Store `os_hidden` into the properties.
fn set_hidden(props: &mut Map<String, Value>, hidden: bool) {
    if hidden {
        props.insert(HIDDEN_KEY.into(), Value::String("true".into()));
    } else {
        props.remove(HIDDEN_KEY);
    }
}

/// An image as Glance renders it, custom properties flattened at top level.
fn image_view(row: &ImageRow) -> Value {
    let props = props_of(row);
    let mut m = Map::new();
    for (k, v) in &props {
        if !k.starts_with(RESERVED_PREFIX) {
            m.insert(k.clone(), v.clone());
        }
    }
    let hashed = row.os_hash_value.is_some();
    let core = json!({
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "visibility": row.visibility,
        "protected": row.protected,
        "os_hidden": hidden_of(&props),
        "checksum": row.checksum,
        "os_hash_algo": if hashed { Some("sha512") } else { None },
        "os_hash_value": row.os_hash_value,
        "owner": row.owner,
        "size": row.size,
        "virtual_size": Value::Null,
        "min_ram": row.min_ram,
        "min_disk": row.min_disk,
        "disk_format": row.disk_format,
        "container_format": row.container_format,
        "created_at": glance_ts(&row.created_at),
        "updated_at": glance_ts(&row.updated_at),
        "tags": tags_of(&props),
        "self": format!("/v2/images/{}", row.id),
        "file": format!("/v2/images/{}/file", row.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        m.extend(core);
    }
    Value::Object(m)
}

// ---------------------------------------------------------------- policy

/// May the caller see this image? Own, public and community images; admins see all.
fn visible(ctx: &AuthContext, row: &ImageRow) -> bool {
    ctx.is_admin() || row.owner == ctx.project_id || matches!(row.visibility.as_str(), "public" | "community")
}

fn image_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("No image found with ID {id}"))
}

/// Load an image the caller may see; anything else is a 404.
async fn load_visible(state: &AppState, ctx: &AuthContext, id: &str) -> Result<ImageRow, ApiError> {
    let row = state.ds.image_get(id).await.map_err(|e| match e {
        DbError::NotFound(_) => image_not_found(id),
        e => e.into(),
    })?;
    if !visible(ctx, &row) {
        return Err(image_not_found(id));
    }
    Ok(row)
}

/// Only members/admins of the owning project (or cloud admins) change an image.
fn check_modify(ctx: &AuthContext, row: &ImageRow) -> Result<(), ApiError> {
    if !ctx.can_write() {
        return Err(ApiError::Forbidden("You are not authorized to complete this action.".into()));
    }
    if !ctx.is_admin() && row.owner != ctx.project_id {
        return Err(ApiError::Forbidden(format!("You are not permitted to modify image {}.", row.id)));
    }
    Ok(())
}

/// The media type of a request (without parameters), lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

// ------------------------------------------------------------ validation

fn read_only(attr: &str) -> ApiError {
    ApiError::Forbidden(format!("Attribute '{attr}' is read-only."))
}

fn v_name(v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        _ => Err(ApiError::BadRequest(
            "Invalid value for 'name': a string of at most 255 characters is required.".into(),
        )),
    }
}

fn v_enum(attr: &str, v: &Value, allowed: &[&str], nullable: bool) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null if nullable => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        other => Err(ApiError::BadRequest(format!(
            "Invalid value {other} for '{attr}'; expected one of: {}.",
            allowed.join(", ")
        ))),
    }
}

fn v_count(attr: &str, v: &Value) -> Result<i64, ApiError> {
    v.as_u64().and_then(|n| i64::try_from(n).ok()).ok_or_else(|| {
        ApiError::BadRequest(format!("Invalid value {v} for '{attr}': a non-negative integer is required."))
    })
}

fn v_bool(attr: &str, v: &Value) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| ApiError::BadRequest(format!("Invalid value {v} for '{attr}': a boolean is required.")))
}

fn v_tag(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 255 => Ok(s.clone()),
        other => {
            Err(ApiError::BadRequest(format!("Invalid tag {other}: a string of 1 to 255 characters is required.")))
        }
    }
}

fn v_tags(v: &Value) -> Result<Vec<String>, ApiError> {
    let arr = v
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("Invalid value for 'tags': a list of strings is required.".into()))?;
    let mut tags: Vec<String> = Vec::with_capacity(arr.len());
    for t in arr {
        let t = v_tag(t)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

/// Check a visibility value and who may set it (only admins publish).
fn v_visibility(ctx: &AuthContext, v: &Value) -> Result<String, ApiError> {
    let vis = v_enum("visibility", v, VISIBILITIES, false)?.unwrap_or_default();
    if vis == "public" && !ctx.is_admin() {
        return Err(ApiError::Forbidden(
            "You are not authorized to publicize images (policy: publicize_image).".into(),
        ));
    }
    Ok(vis)
}

fn v_property(key: &str, v: &Value) -> Result<Value, ApiError> {
    if key.is_empty() || key.chars().count() > 255 {
        return Err(ApiError::BadRequest("Property names must be 1 to 255 characters long.".into()));
    }
    if key.starts_with(RESERVED_PREFIX) {
        return Err(ApiError::Forbidden(format!("Attribute '{key}' is reserved.")));
    }
    match v {
        Value::String(s) if s.chars().count() <= 65535 => Ok(v.clone()),
        other => {
            Err(ApiError::BadRequest(format!("Invalid value {other} for property '{key}': a string is required.")))
        }
    }
}

/// Is `id` a hyphenated UUID (the only ids Stratus stores, and so the only
/// names that ever reach the file system)?
fn is_uuid(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

// ---------------------------------------------------------------- list

/// A filter value, either exact or `in:a,b,c`.
fn matches_filter(filter: &str, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    match filter.strip_prefix("in:") {
        Some(list) => list.split(',').any(|f| f.trim().trim_matches('"') == value),
        None => filter == value,
    }
}

/// Query parameters that are not property filters and are handled (or
/// deliberately ignored) by name.
const LIST_PARAMS: &[&str] = &[
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "member_status",
    "created_at",
    "updated_at",
    "name",
    "visibility",
    "status",
    "owner",
    "disk_format",
    "container_format",
    "id",
    "tag",
    "protected",
    "os_hidden",
    "size_min",
    "size_max",
];

fn parse_size(attr: &str, v: &str) -> Result<i64, ApiError> {
    v.parse().map_err(|_| ApiError::BadRequest(format!("Invalid value '{v}' for {attr}: an integer is required.")))
}

fn parse_flag(attr: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ApiError::BadRequest(format!("Invalid value '{v}' for {attr}: a boolean is required."))),
    }
}

/// Compare two images by one sort key.
fn compare_by(key: &str, a: &ImageRow, b: &ImageRow) -> Ordering {
    match key {
        "name" => a.name.cmp(&b.name),
        "status" => a.status.cmp(&b.status),
        "visibility" => a.visibility.cmp(&b.visibility),
        "owner" => a.owner.cmp(&b.owner),
        "disk_format" => a.disk_format.cmp(&b.disk_format),
        "container_format" => a.container_format.cmp(&b.container_format),
        "size" => a.size.cmp(&b.size),
        "min_disk" => a.min_disk.cmp(&b.min_disk),
        "min_ram" => a.min_ram.cmp(&b.min_ram),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "id" => a.id.cmp(&b.id),
        _ => a.created_at.cmp(&b.created_at),
    }
}

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "visibility",
    "owner",
    "disk_format",
    "container_format",
    "size",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
    "id",
];

/// The `(key, descending)` sort order from `sort`, or `sort_key`/`sort_dir`.
fn sort_order(params: &[(String, String)]) -> Result<Vec<(String, bool)>, ApiError> {
    let bad_key = |k: &str| ApiError::BadRequest(format!("Unsupported sort key '{k}'."));
    let bad_dir = |d: &str| ApiError::BadRequest(format!("Unsupported sort direction '{d}'; use asc or desc."));
    let dir_desc = |d: &str| match d {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad_dir(other)),
    };
    let mut order = Vec::new();
    let sort: Vec<&str> = params.iter().filter(|(k, _)| k == "sort").map(|(_, v)| v.as_str()).collect();
    let keys: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.as_str()).collect();
    let dirs: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.as_str()).collect();
    if !sort.is_empty() {
        if !keys.is_empty() || !dirs.is_empty() {
            return Err(ApiError::BadRequest(
                "The 'sort' parameter cannot be combined with sort_key or sort_dir.".into(),
            ));
        }
        for item in sort.iter().flat_map(|s| s.split(',')) {
            let mut parts = item.trim().splitn(2, ':');
            let key = parts.next().unwrap_or("").trim();
            let desc = match parts.next() {
                Some(d) => dir_desc(d.trim())?,
                None => true,
            };
            if !SORT_KEYS.contains(&key) {
                return Err(bad_key(key));
            }
            order.push((key.to_string(), desc));
        }
    } else {
        if dirs.len() > keys.len().max(1) {
            return Err(ApiError::BadRequest("More sort directions than sort keys were given.".into()));
        }
        let default_desc = match dirs.first() {
            Some(d) if dirs.len() == 1 => dir_desc(d)?,
            _ => true,
        };
        for (i, key) in keys.iter().enumerate() {
            if !SORT_KEYS.contains(key) {
                return Err(bad_key(key));
            }
            let desc = if dirs.len() > 1 {
                match dirs.get(i) {
                    Some(d) => dir_desc(d)?,
                    None => default_desc,
                }
            } else {
                default_desc
            };
            order.push((key.to_string(), desc));
        }
        if order.is_empty() {
            order.push(("created_at".into(), default_desc));
        }
    }
    if !order.iter().any(|(k, _)| k == "id") {
        let desc = order.last().map(|(_, d)| *d).unwrap_or(true);
        order.push(("id".into(), desc));
    }
    Ok(order)
}

/// Percent-encode a query component (RFC 3986 unreserved characters stay).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/v2/images` with the given query parameters.
fn images_link(params: &[(String, String)]) -> String {
    if params.is_empty() {
        return "/v2/images".into();
    }
    let q: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
    format!("/v2/images?{}", q.join("&"))
}

async fn list_images(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(params) = query?;
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

    let limit = match get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("Invalid limit '{l}': a non-negative integer is required.")))?
            .min(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let order = sort_order(&params)?;
    let visibility = get("visibility");
    if let Some(v) = visibility
        && v != "all"
        && !VISIBILITIES.contains(&v)
    {
        return Err(ApiError::BadRequest(format!("Invalid visibility value: {v}")));
    }
    let hidden = get("os_hidden").map(|v| parse_flag("os_hidden", v)).transpose()?.unwrap_or(false);
    let protected = get("protected").map(|v| parse_flag("protected", v)).transpose()?;
    let size_min = get("size_min").map(|v| parse_size("size_min", v)).transpose()?;
    let size_max = get("size_max").map(|v| parse_size("size_max", v)).transpose()?;
    let tags: Vec<&str> = params.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    let prop_filters: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !LIST_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    let scope = if ctx.is_admin() { None } else { Some(ctx.project_id.as_str()) };
    let mut rows: Vec<ImageRow> = state
        .ds
        .image_list(scope)
        .await?
        .into_iter()
        .filter(|r| visible(&ctx, r))
        .filter(|r| match visibility {
            // Glance leaves other projects' community images out unless asked.
            None => r.visibility != "community" || r.owner == ctx.project_id,
            Some("all") => true,
            Some(v) => r.visibility == v,
        })
        .filter(|r| {
            let props = props_of(r);
            let fields = [
                ("name", r.name.as_deref()),
                ("status", Some(r.status.as_str())),
                ("owner", Some(r.owner.as_str())),
                ("disk_format", r.disk_format.as_deref()),
                ("container_format", r.container_format.as_deref()),
                ("id", Some(r.id.as_str())),
            ];
            fields.iter().all(|(name, value)| get(name).is_none_or(|f| matches_filter(f, *value)))
                && hidden_of(&props) == hidden
                && protected.is_none_or(|p| r.protected == p)
                && size_min.is_none_or(|m| r.size.is_some_and(|s| s >= m))
                && size_max.is_none_or(|m| r.size.is_some_and(|s| s <= m))
                && {
                    let have = tags_of(&props);
                    tags.iter().all(|t| have.iter().any(|h| h == t))
                }
                && prop_filters.iter().all(|(k, v)| props.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .collect();
    rows.sort_by(|a, b| {
        order.iter().fold(Ordering::Equal, |acc, (key, desc)| {
            acc.then_with(|| {
                let o = compare_by(key, a, b);
                if *desc { o.reverse() } else { o }
            })
        })
    });

    let start = match get("marker") {
        Some(m) => match rows.iter().position(|r| r.id == m) {
            Some(i) => i + 1,
            None => {
                return Err(ApiError::BadRequest(format!("Invalid marker. Image {m} could not be found.")));
            }
        },
        None => 0,
    };
    let page: Vec<&ImageRow> = rows.iter().skip(start).take(limit).collect();
    let more = start + page.len() < rows.len();

    let base: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "marker").cloned().collect();
    let mut doc = json!({
        "images": page.iter().map(|r| image_view(r)).collect::<Vec<_>>(),
        "first": images_link(&base),
        "schema": "/v2/schemas/images",
    });
    if let Some(last) = page.last().filter(|_| more) {
        let mut next = base;
        next.push(("marker".into(), last.id.clone()));
        doc["next"] = Value::String(images_link(&next));
    }
    Ok(axum::Json(doc))
}

// ------------------------------------------------------------- one image

async fn show_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let row = load_visible(&state, &ctx, &id).await?;
    Ok(axum::Json(image_view(&row)))
}

async fn create_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !ctx.can_write() {
        return Err(ApiError::Forbidden("You are not authorized to complete this action.".into()));
    }
    if let Some(mt) = media_type(&headers)
        && mt != "application/json"
    {
        return Err(ApiError::UnsupportedMediaType(format!("Unsupported Content-Type '{mt}'; use application/json.")));
    }
    let req: Map<String, Value> = parse_json(&body)?;
    let mut row = ImageRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: None,
        owner: ctx.project_id.clone(),
        status: "queued".into(),
        visibility: "shared".into(),
        disk_format: None,
        container_format: None,
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        properties: String::new(),
        created_at: String::new(),
        updated_at: String::new(),
    };
    let mut props = Map::new();
    for (k, v) in &req {
        match k.as_str() {
            "id" => {
                let id = v.as_str().filter(|s| is_uuid(s)).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Invalid value {v} for 'id': a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) is required."
                    ))
                })?;
                row.id = id.to_string();
            }
            "name" => row.name = v_name(v)?,
            "visibility" => row.visibility = v_visibility(&ctx, v)?,
            "disk_format" => row.disk_format = v_enum(k, v, DISK_FORMATS, true)?,
            "container_format" => row.container_format = v_enum(k, v, CONTAINER_FORMATS, true)?,
            "min_disk" => row.min_disk = v_count(k, v)?,
            "min_ram" => row.min_ram = v_count(k, v)?,
            "protected" => row.protected = v_bool(k, v)?,
            "os_hidden" => set_hidden(&mut props, v_bool(k, v)?),
            "tags" => set_tags(&mut props, &v_tags(v)?)?,
            "owner" => {
                let owner = v
                    .as_str()
                    .ok_or_else(|| ApiError::BadRequest("Invalid value for 'owner': a string is required.".into()))?;
                if owner != ctx.project_id && !ctx.is_admin() {
                    return Err(ApiError::Forbidden(
                        "You are not permitted to create images owned by another project.".into(),
                    ));
                }
                row.owner = owner.to_string();
            }
            attr if READ_ONLY.contains(&attr) => return Err(read_only(attr)),
            key => {
                props.insert(key.to_string(), v_property(key, v)?);
            }
        }
    }
    row.properties = Value::Object(props).to_string();
    state.ds.image_create(&row).await?;
    let row = state.ds.image_get(&row.id).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(image_view(&row))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/image/v2/images/{}", state.public_url, row.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// The JSON-pointer path of a patch operation, as one attribute name.
fn patch_attr(path: &str) -> Result<String, ApiError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'")))?;
    if rest.is_empty() || rest.contains('/') {
        let top = rest.split('/').next().unwrap_or("");
        if READ_ONLY.contains(&top) {
            return Err(read_only(top));
        }
        return Err(ApiError::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'")));
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Apply one JSON-patch operation to `row` / `props`.
fn apply_patch_op(
    ctx: &AuthContext,
    row: &mut ImageRow,
    props: &mut Map<String, Value>,
    op: &Value,
) -> Result<(), ApiError> {
    let obj =
        op.as_object().ok_or_else(|| ApiError::BadRequest("Each patch operation must be a JSON object.".into()))?;
    let kind = obj
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("A patch operation needs an 'op'.".into()))?;
    let path = obj
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("A patch operation needs a 'path'.".into()))?;
    let attr = patch_attr(path)?;
    let value = match kind {
        "add" | "replace" => Some(
            obj.get("value")
                .ok_or_else(|| ApiError::BadRequest(format!("Operation '{kind}' on '{path}' needs a 'value'.")))?,
        ),
        "remove" => None,
        other => {
            return Err(ApiError::BadRequest(format!(
                "Unsupported patch operation '{other}'; use add, replace or remove."
            )));
        }
    };
    let core = matches!(
        attr.as_str(),
        "name"
            | "visibility"
            | "protected"
            | "min_disk"
            | "min_ram"
            | "disk_format"
            | "container_format"
            | "tags"
            | "os_hidden"
    );
    if core {
        let Some(v) = value else {
            return Err(ApiError::Forbidden(format!("Attribute '{attr}' cannot be removed.")));
        };
        match attr.as_str() {
            "name" => row.name = v_name(v)?,
            "visibility" => row.visibility = v_visibility(ctx, v)?,
            "protected" => row.protected = v_bool(&attr, v)?,
            "min_disk" => row.min_disk = v_count(&attr, v)?,
            "min_ram" => row.min_ram = v_count(&attr, v)?,
            "disk_format" | "container_format" => {
                if row.status != "queued" {
                    return Err(ApiError::Forbidden(format!(
                        "Attribute '{attr}' can be only replaced for a queued image."
                    )));
                }
                if attr == "disk_format" {
                    row.disk_format = v_enum(&attr, v, DISK_FORMATS, true)?;
                } else {
                    row.container_format = v_enum(&attr, v, CONTAINER_FORMATS, true)?;
                }
            }
            "tags" => set_tags(props, &v_tags(v)?)?,
            _ => set_hidden(props, v_bool(&attr, v)?),
        }
        return Ok(());
    }
    if READ_ONLY.contains(&attr.as_str()) || matches!(attr.as_str(), "id" | "owner") {
        return Err(read_only(&attr));
    }
    let exists = props.contains_key(&attr);
    match (kind, value) {
        ("add", Some(v)) => {
            props.insert(attr.clone(), v_property(&attr, v)?);
        }
        ("replace", Some(v)) => {
            if !exists {
                return Err(ApiError::Conflict(format!("Property {attr} does not exist.")));
            }
            props.insert(attr.clone(), v_property(&attr, v)?);
        }
        _ => {
            if !exists || attr.starts_with(RESERVED_PREFIX) {
                return Err(ApiError::Conflict(format!("Property {attr} does not exist.")));
            }
            props.remove(&attr);
        }
    }
    Ok(())
}

async fn patch_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let mt = media_type(&headers).unwrap_or_default();
    if !PATCH_TYPES.contains(&mt.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{mt}'; use application/openstack-images-v2.1-json-patch."
        )));
    }
    let mut row = load_visible(&state, &ctx, &id).await?;
    check_modify(&ctx, &row)?;
    let ops: Vec<Value> = parse_json(&body)?;
    let mut props = props_of(&row);
    for op in &ops {
        apply_patch_op(&ctx, &mut row, &mut props, op)?;
    }
    row.properties = Value::Object(props).to_string();
    state.ds.image_update(&row).await?;
    let row = state.ds.image_get(&id).await?;
    Ok(axum::Json(image_view(&row)))
}

async fn delete_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = load_visible(&state, &ctx, &id).await?;
    check_modify(&ctx, &row)?;
    if row.protected {
        return Err(ApiError::Forbidden(format!("Image {id} is protected and cannot be deleted.")));
    }
    state.ds.image_delete(&id).await?;
    if let Some(path) = data_path(&state.image_dir, &id) {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(image = %id, error = %e, "could not remove image data"),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn add_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut row = load_visible(&state, &ctx, &id).await?;
    check_modify(&ctx, &row)?;
    let tag = v_tag(&Value::String(tag))?;
    let mut props = props_of(&row);
    let mut tags = tags_of(&props);
    if !tags.contains(&tag) {
        tags.push(tag);
        set_tags(&mut props, &tags)?;
        row.properties = Value::Object(props).to_string();
        state.ds.image_update(&row).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut row = load_visible(&state, &ctx, &id).await?;
    check_modify(&ctx, &row)?;
    let mut props = props_of(&row);
    let mut tags = tags_of(&props);
    let before = tags.len();
    tags.retain(|t| *t != tag);
    if tags.len() == before {
        return Err(ApiError::NotFound(format!("Tag {tag} not found on image {id}.")));
    }
    set_tags(&mut props, &tags)?;
    row.properties = Value::Object(props).to_string();
    state.ds.image_update(&row).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ image data

/// Where an image's bytes live; `None` for ids that are not plain UUIDs
/// (which never name a file).
fn data_path(dir: &FsPath, id: &str) -> Option<PathBuf> {
    is_uuid(id).then(|| dir.join(id))
}

fn io_error(what: &str, e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

/// Writes image bytes to a temporary file while hashing them; `finish`
/// moves the file into place, dropping it unfinished removes it.
struct DataWriter {
    file: Option<tokio::fs::File>,
    part: PathBuf,
    dest: PathBuf,
    size: u64,
    md5: md5::Md5,
    sha512: Sha512,
}

/// Size and hex digests of stored image data.
struct Stored {
    size: i64,
    md5: String,
    sha512: String,
}

impl DataWriter {
    async fn create(dir: &FsPath, id: &str) -> Result<Self, ApiError> {
        let dest = data_path(dir, id).ok_or_else(|| image_not_found(id))?;
        tokio::fs::create_dir_all(dir).await.map_err(|e| io_error("creating the image directory", e))?;
        let part = dir.join(format!("{id}.part-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&part).await.map_err(|e| io_error("creating image data file", e))?;
        Ok(Self { file: Some(file), part, dest, size: 0, md5: md5::Md5::new(), sha512: Sha512::new() })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.size += chunk.len() as u64;
        if self.size > MAX_IMAGE_SIZE {
            return Err(ApiError::PayloadTooLarge(format!(
                "Image data exceeds the size limit of {MAX_IMAGE_SIZE} bytes."
            )));
        }
        self.md5.update(chunk);
        self.sha512.update(chunk);
        let file = self.file.as_mut().ok_or_else(|| ApiError::Internal("image data file already closed".into()))?;
        file.write_all(chunk).await.map_err(|e| io_error("writing image data", e))
    }

    async fn finish(mut self) -> Result<Stored, ApiError> {
        let file = self.file.as_mut().ok_or_else(|| ApiError::Internal("image data file already closed".into()))?;
        file.flush().await.map_err(|e| io_error("flushing image data", e))?;
        file.sync_all().await.map_err(|e| io_error("syncing image data", e))?;
        tokio::fs::rename(&self.part, &self.dest).await.map_err(|e| io_error("moving image data into place", e))?;
        // In place now: nothing left for `drop` to clean up.
        self.file = None;
        let size =
            i64::try_from(self.size).map_err(|_| ApiError::PayloadTooLarge("Image data is too large.".into()))?;
        Ok(Stored {
            size,
            md5: hex::encode(self.md5.clone().finalize()),
            sha512: hex::encode(self.sha512.clone().finalize()),
        })
    }
}

impl Drop for DataWriter {
    fn drop(&mut self) {
        // Unfinished (error or client gone): the partial file goes.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Stream a request body into the writer, chunk by chunk.
async fn write_body(writer: &mut DataWriter, body: Body) -> Result<(), ApiError> {
    let mut body = body;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("Reading the image data failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            writer.write(&data).await?;
        }
    }
    Ok(())
}

/// Record stored data; if the image vanished meanwhile, drop the file again.
async fn record_data(state: &AppState, id: &str, stored: &Stored) -> Result<(), ApiError> {
    if let Err(e) = state.ds.image_set_data(id, stored.size, &stored.md5, &stored.sha512).await {
        if let Some(path) = data_path(&state.image_dir, id) {
            let _ = tokio::fs::remove_file(path).await;
        }
        return Err(match e {
            DbError::NotFound(_) => image_not_found(id),
            e => e.into(),
        });
    }
    Ok(())
}

async fn upload_file(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    if let Some(mt) = media_type(&headers)
        && mt != "application/octet-stream"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{mt}'; image data must be application/octet-stream."
        )));
    }
    let row = load_visible(&state, &ctx, &id).await?;
    check_modify(&ctx, &row)?;
    if row.status != "queued" {
        return Err(ApiError::Conflict(format!(
            "Image status transition from {} to saving is not allowed",
            row.status
        )));
    }
    if row.disk_format.is_none() || row.container_format.is_none() {
        return Err(ApiError::BadRequest(
            "Properties disk_format, container_format must be set prior to saving data.".into(),
        ));
    }
    let mut writer = DataWriter::create(&state.image_dir, &id).await?;
    write_body(&mut writer, body).await?;
    let stored = writer.finish().await?;
    record_data(&state, &id, &stored).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn download_file(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = load_visible(&state, &ctx, &id).await?;
    if row.status != "active" || row.size.is_none() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let path = data_path(&state.image_dir, &id).ok_or_else(|| image_not_found(&id))?;
    // Without a Stream implementation among this crate's dependencies the
    // file is read whole; uploads are streamed.
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(image = %id, "image is active but its data file is missing");
            return Err(ApiError::NotFound(format!("Image data for {id} could not be found.")));
        }
        Err(e) => return Err(io_error("reading image data", e)),
    };
    let mut resp = (StatusCode::OK, Body::from(data)).into_response();
    let hs = resp.headers_mut();
    hs.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Some(sum) = row.checksum.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        hs.insert("content-md5", sum);
    }
    Ok(resp)
}

// --------------------------------------------------------------- seeding

/// Make sure a public, active qcow2/bare image called `name` exists (used by
/// `stratus up` to seed `cirros`); idempotent, returns the image id.
pub async fn seed_image(state: &AppState, name: &str, owner_project_id: &str, data: &[u8]) -> Result<String, ApiError> {
    let candidates: Vec<ImageRow> = state
        .ds
        .image_list(Some(owner_project_id))
        .await?
        .into_iter()
        .filter(|r| r.name.as_deref() == Some(name))
        .collect();
    if let Some(r) = candidates.iter().find(|r| r.visibility == "public" && r.status == "active") {
        return Ok(r.id.clone());
    }
    // A seed interrupted between create and upload is finished, not duplicated.
    let pending = candidates
        .into_iter()
        .find(|r| r.visibility == "public" && r.status == "queued" && r.owner == owner_project_id);
    let id = match pending {
        Some(r) => r.id,
        None => {
            let row = ImageRow {
                id: uuid::Uuid::new_v4().to_string(),
                name: Some(name.to_string()),
                owner: owner_project_id.to_string(),
                status: "queued".into(),
                visibility: "public".into(),
                disk_format: Some("qcow2".into()),
                container_format: Some("bare".into()),
                size: None,
                checksum: None,
                os_hash_value: None,
                min_disk: 0,
                min_ram: 0,
                protected: false,
                properties: "{}".into(),
                created_at: String::new(),
                updated_at: String::new(),
            };
            state.ds.image_create(&row).await?;
            row.id
        }
    };
    let mut writer = DataWriter::create(&state.image_dir, &id).await?;
    for chunk in data.chunks(1 << 20) {
        writer.write(chunk).await?;
    }
    let stored = writer.finish().await?;
    record_data(state, &id, &stored).await?;
    Ok(id)
}

// --------------------------------------------------------------- schemas

/// The image schema (Glance's, reduced to what Stratus stores).
fn image_schema() -> Value {
    let nullable_enum = |values: &[&str]| {
        let mut e: Vec<Value> = vec![Value::Null];
        e.extend(values.iter().map(|v| Value::String((*v).to_string())));
        json!({"type": ["null", "string"], "enum": e})
    };
    let mut disk = nullable_enum(DISK_FORMATS);
    disk["description"] = json!("Format of the disk");
    let mut container = nullable_enum(CONTAINER_FORMATS);
    container["description"] = json!("Format of the container");
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": VISIBILITIES},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": container,
            "disk_format": disk,
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store", "items": {"type": "object", "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}, "required": ["url", "metadata"]}}
        },
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

async fn schema_image() -> axum::Json<Value> {
    axum::Json(image_schema())
}

async fn schema_images() -> axum::Json<Value> {
    axum::Json(json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"}
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::Request;
    use md5::Md5;
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
        admin: String,
        demo: String,
        alt: String,
        viewer: String,
        _dir: TempDir,
    }

    async fn env() -> Env {
        let dir = std::env::temp_dir().join(format!("stratus-image-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open db");
        stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("admin");
        stratus_auth::bootstrap_user(&ds, "demo", "pw", "demo", "member", false).await.expect("demo");
        stratus_auth::bootstrap_user(&ds, "alt", "pw", "alt", "member", false).await.expect("alt");
        stratus_auth::bootstrap_user(&ds, "viewer", "pw", "demo", "reader", false).await.expect("viewer");
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let token = |user: &'static str, project: &'static str| {
            let identity = identity.clone();
            async move {
                identity
                    .authenticate(user, "pw", stratus_auth::ProjectScope::Name(project.into()))
                    .await
                    .expect("token")
                    .token
            }
        };
        let admin = token("admin", "admin").await;
        let demo = token("demo", "demo").await;
        let alt = token("alt", "alt").await;
        let viewer = token("viewer", "demo").await;
        let bus: Arc<dyn stratus_bus::Bus> = Arc::new(stratus_bus::InProcessBus::new());
        let compute = stratus_controller::compute_api::ComputeApi::new(
            ds.clone(),
            bus.clone(),
            stratus_controller::ControllerConfig::default(),
        );
        let (volume, _) = crate::volume::test_service(&ds, dir.join("images"));
        let state = AppState {
            ds,
            identity,
            compute,
            bus,
            public_url: "http://127.0.0.1:8774".into(),
            image_dir: dir.join("images"),
            volume,
        };
        Env { state, admin, demo, alt, viewer, _dir: TempDir(dir) }
    }

    struct Resp {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Resp {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("json body")
        }
    }

    async fn call(env: &Env, method: &str, uri: &str, token: Option<&str>, ctype: Option<&str>, body: Vec<u8>) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        let resp = crate::router(env.state.clone())
            .oneshot(req.body(Body::from(body)).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        Resp { status, headers, body }
    }

    async fn get(env: &Env, uri: &str, token: &str) -> Resp {
        call(env, "GET", uri, Some(token), None, vec![]).await
    }

    async fn post_json(env: &Env, uri: &str, token: &str, body: Value) -> Resp {
        call(env, "POST", uri, Some(token), Some("application/json"), body.to_string().into_bytes()).await
    }

    async fn patch(env: &Env, id: &str, token: &str, ops: Value) -> Resp {
        let uri = format!("/image/v2/images/{id}");
        call(
            env,
            "PATCH",
            &uri,
            Some(token),
            Some("application/openstack-images-v2.1-json-patch"),
            ops.to_string().into_bytes(),
        )
        .await
    }

    async fn create(env: &Env, token: &str, body: Value) -> String {
        let r = post_json(env, "/image/v2/images", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()["id"].as_str().expect("id").to_string()
    }

    #[tokio::test]
    async fn image_version_discovery() {
        let env = env().await;
        for path in ["/image", "/image/"] {
            let r = call(&env, "GET", path, None, None, vec![]).await;
            assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
            let v = r.json();
            assert_eq!(v["versions"][0]["id"], "v2.16");
            assert_eq!(v["versions"][0]["status"], "CURRENT");
            assert_eq!(v["versions"][0]["links"][0]["href"], "http://127.0.0.1:8774/image/v2/");
            let ids: Vec<&str> =
                v["versions"].as_array().expect("list").iter().filter_map(|x| x["id"].as_str()).collect();
            assert!(ids.contains(&"v2.0") && ids.contains(&"v2.1") && ids.contains(&"v2.9"));
            assert!(v["versions"].as_array().expect("list").iter().skip(1).all(|x| x["status"] == "SUPPORTED"));
        }
        let r = call(&env, "GET", "/image/versions", None, None, vec![]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["versions"][0]["id"], "v2.16");
    }

    #[tokio::test]
    async fn image_lifecycle_create_upload_show_download_delete() {
        let env = env().await;
        let r = post_json(
            &env,
            "/image/v2/images",
            &env.demo,
            json!({"name": "mine", "disk_format": "qcow2", "container_format": "bare", "min_disk": 1, "tags": ["a", "b"], "hw_disk_bus": "virtio"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let img = r.json();
        let id = img["id"].as_str().expect("id").to_string();
        assert_eq!(img["status"], "queued");
        assert_eq!(img["visibility"], "shared");
        assert_eq!(img["os_hash_algo"], Value::Null);
        assert_eq!(img["size"], Value::Null);
        assert_eq!(img["tags"], json!(["a", "b"]));
        assert_eq!(img["hw_disk_bus"], "virtio");
        assert_eq!(img["self"], format!("/v2/images/{id}"));
        assert_eq!(img["file"], format!("/v2/images/{id}/file"));
        assert_eq!(img["schema"], "/v2/schemas/image");
        assert_eq!(img["os_hidden"], false);
        assert!(img.as_object().expect("object").keys().all(|k| !k.starts_with("stratus:")));
        let created = img["created_at"].as_str().expect("created_at");
        assert_eq!(created.len(), 20, "{created}");
        assert!(created.ends_with('Z'));
        assert!(r.headers.get("location").is_some());

        // Queued: no data yet.
        let r = get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        // Over axum's default 2 MB body limit.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let file_uri = format!("/image/v2/images/{id}/file");
        let r = call(&env, "PUT", &file_uri, Some(&env.demo), Some("application/octet-stream"), data.clone()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

        let r = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await;
        assert_eq!(r.status, StatusCode::OK);
        let img = r.json();
        assert_eq!(img["status"], "active");
        assert_eq!(img["size"], data.len());
        assert_eq!(img["checksum"], hex::encode(Md5::digest(&data)));
        assert_eq!(img["os_hash_algo"], "sha512");
        assert_eq!(img["os_hash_value"], hex::encode(Sha512::digest(&data)));

        let r = get(&env, &file_uri, &env.demo).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), data.as_slice());
        assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/octet-stream"));
        assert_eq!(
            r.headers.get("content-md5").and_then(|v| v.to_str().ok()),
            Some(hex::encode(Md5::digest(&data)).as_str())
        );

        // A second upload conflicts with the active image.
        let r = call(&env, "PUT", &file_uri, Some(&env.demo), Some("application/octet-stream"), b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);

        let r = get(&env, "/image/v2/images", &env.demo).await;
        assert!(r.json()["images"].as_array().expect("list").iter().any(|i| i["id"] == id.as_str()));

        let r = call(&env, "DELETE", &format!("/image/v2/images/{id}"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(!env.state.image_dir.join(&id).exists());
        let r = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json()["itemNotFound"]["code"], 404);
        let r = call(&env, "DELETE", &format!("/image/v2/images/{id}"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn image_private_image_of_another_project_is_not_found() {
        let env = env().await;
        let private = create(&env, &env.alt, json!({"name": "alt-private", "visibility": "private"})).await;
        let shared = create(&env, &env.alt, json!({"name": "alt-shared"})).await;
        let community = create(&env, &env.alt, json!({"name": "alt-community", "visibility": "community"})).await;
        let public = create(&env, &env.admin, json!({"name": "pub", "visibility": "public"})).await;
        for id in [&private, &shared] {
            let uri = format!("/image/v2/images/{id}");
            assert_eq!(get(&env, &uri, &env.demo).await.status, StatusCode::NOT_FOUND);
            assert_eq!(call(&env, "DELETE", &uri, Some(&env.demo), None, vec![]).await.status, StatusCode::NOT_FOUND);
            assert_eq!(get(&env, &uri, &env.alt).await.status, StatusCode::OK);
            assert_eq!(get(&env, &uri, &env.admin).await.status, StatusCode::OK);
        }
        assert_eq!(get(&env, &format!("/image/v2/images/{community}"), &env.demo).await.status, StatusCode::OK);
        assert_eq!(get(&env, &format!("/image/v2/images/{public}"), &env.demo).await.status, StatusCode::OK);
        // Visible but not ours: may not be changed.
        let r = call(&env, "DELETE", &format!("/image/v2/images/{public}"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = patch(&env, &public, &env.demo, json!([{"op": "replace", "path": "/name", "value": "x"}])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        let ids = |r: &Resp| -> Vec<String> {
            r.json()["images"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        };
        let listed = ids(&get(&env, "/image/v2/images", &env.demo).await);
        assert!(listed.contains(&public));
        assert!(!listed.contains(&private) && !listed.contains(&shared));
        assert!(!listed.contains(&community), "community images are listed only on request");
        let listed = ids(&get(&env, "/image/v2/images?visibility=community", &env.demo).await);
        assert_eq!(listed, vec![community.clone()]);
        let listed = ids(&get(&env, "/image/v2/images", &env.admin).await);
        assert!(listed.contains(&private) && listed.contains(&shared) && listed.contains(&public));
    }

    #[tokio::test]
    async fn image_requires_token_and_write_role() {
        let env = env().await;
        let r = call(&env, "GET", "/image/v2/images", None, None, vec![]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(&env, "GET", "/image/v2/images", Some("bogus"), None, vec![]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(&env, "POST", "/image/v2/images", None, Some("application/json"), b"{}".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        // A reader sees the project's images but changes nothing.
        let r = post_json(&env, "/image/v2/images", &env.viewer, json!({"name": "nope"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["forbidden"]["code"], 403);
        let id = create(&env, &env.demo, json!({"name": "d", "disk_format": "raw", "container_format": "bare"})).await;
        let uri = format!("/image/v2/images/{id}");
        assert_eq!(get(&env, &uri, &env.viewer).await.status, StatusCode::OK);
        let r = call(
            &env,
            "PUT",
            &format!("{uri}/file"),
            Some(&env.viewer),
            Some("application/octet-stream"),
            b"x".to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = patch(&env, &id, &env.viewer, json!([{"op": "replace", "path": "/name", "value": "x"}])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = call(&env, "DELETE", &uri, Some(&env.viewer), None, vec![]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn image_public_visibility_requires_admin() {
        let env = env().await;
        let r = post_json(&env, "/image/v2/images", &env.demo, json!({"name": "p", "visibility": "public"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let id = create(&env, &env.demo, json!({"name": "p", "visibility": "private"})).await;
        let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r =
            patch(&env, &id, &env.admin, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["visibility"], "public");
        let r = post_json(&env, "/image/v2/images", &env.admin, json!({"name": "p2", "visibility": "public"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.json()["visibility"], "public");
    }

    #[tokio::test]
    async fn image_bad_values_are_rejected() {
        let env = env().await;
        let bad = [
            json!({"disk_format": "floppy"}),
            json!({"container_format": "zip"}),
            json!({"id": "not-a-uuid"}),
            json!({"visibility": "everyone"}),
            json!({"min_disk": -1}),
            json!({"min_ram": "lots"}),
            json!({"protected": "yes"}),
            json!({"tags": "a"}),
            json!({"hw_disk_bus": 5}),
            json!({"name": "x".repeat(256)}),
        ];
        for body in bad {
            let r = post_json(&env, "/image/v2/images", &env.demo, body.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(r.json()["badRequest"]["code"], 400);
        }
        let r =
            call(&env, "POST", "/image/v2/images", Some(&env.demo), Some("application/json"), b"{not json".to_vec())
                .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        for attr in ["status", "size", "checksum", "os_hash_value", "stratus:tags"] {
            let r = post_json(&env, "/image/v2/images", &env.demo, json!({ attr: "x" })).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{attr}");
        }
        let r = post_json(&env, "/image/v2/images", &env.demo, json!({"owner": "someone-else"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        let fixed = "6c1d5f6e-2b43-4c1b-9b8c-1f2e3d4c5b6a";
        let id = create(&env, &env.demo, json!({"id": fixed, "name": "fixed"})).await;
        assert_eq!(id, fixed);
        let r = post_json(&env, "/image/v2/images", &env.demo, json!({"id": fixed})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);

        // Data needs formats first, and must be octet-stream.
        let uri = format!("/image/v2/images/{id}/file");
        let r = call(&env, "PUT", &uri, Some(&env.demo), Some("application/octet-stream"), b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = call(&env, "PUT", &uri, Some(&env.demo), Some("text/plain"), b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn image_patch_updates_attributes_and_properties() {
        let env = env().await;
        let id = create(&env, &env.demo, json!({"name": "before", "os_distro": "cirros"})).await;
        let r = patch(
            &env,
            &id,
            &env.demo,
            json!([
                {"op": "replace", "path": "/name", "value": "after"},
                {"op": "replace", "path": "/min_ram", "value": 64},
                {"op": "add", "path": "/min_disk", "value": 2},
                {"op": "replace", "path": "/disk_format", "value": "raw"},
                {"op": "replace", "path": "/container_format", "value": "bare"},
                {"op": "add", "path": "/hw_qemu_guest_agent", "value": "yes"},
                {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
                {"op": "replace", "path": "/protected", "value": true},
                {"op": "replace", "path": "/tags", "value": ["x"]},
            ]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let img = r.json();
        assert_eq!(img["name"], "after");
        assert_eq!(img["min_ram"], 64);
        assert_eq!(img["min_disk"], 2);
        assert_eq!(img["disk_format"], "raw");
        assert_eq!(img["container_format"], "bare");
        assert_eq!(img["hw_qemu_guest_agent"], "yes");
        assert_eq!(img["os_distro"], "ubuntu");
        assert_eq!(img["protected"], true);
        assert_eq!(img["tags"], json!(["x"]));

        // Protected images cannot be deleted.
        let uri = format!("/image/v2/images/{id}");
        assert_eq!(call(&env, "DELETE", &uri, Some(&env.demo), None, vec![]).await.status, StatusCode::FORBIDDEN);

        let r = patch(
            &env,
            &id,
            &env.demo,
            json!([{"op": "remove", "path": "/os_distro"}, {"op": "replace", "path": "/protected", "value": false}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json().get("os_distro").is_none());

        let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/nonexistent", "value": "v"}])).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = patch(&env, &id, &env.demo, json!([{"op": "remove", "path": "/nonexistent"}])).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/status", "value": "active"}])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = patch(&env, &id, &env.demo, json!([{"op": "remove", "path": "/name"}])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = patch(&env, &id, &env.demo, json!([{"op": "move", "path": "/name"}])).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r =
            patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/disk_format", "value": "floppy"}])).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = call(&env, "PATCH", &uri, Some(&env.demo), Some("application/json"), b"[]".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A failed patch changes nothing.
        let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/name", "value": "zzz"}, {"op": "replace", "path": "/min_ram", "value": -5}])).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(get(&env, &uri, &env.demo).await.json()["name"], "after");

        // Tags by URL.
        let r = call(&env, "PUT", &format!("{uri}/tags/blue"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(get(&env, &uri, &env.demo).await.json()["tags"], json!(["x", "blue"]));
        let r = call(&env, "DELETE", &format!("{uri}/tags/x"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&env, "DELETE", &format!("{uri}/tags/x"), Some(&env.demo), None, vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = get(&env, "/image/v2/images?tag=blue", &env.demo).await;
        assert_eq!(r.json()["images"].as_array().expect("list").len(), 1);
    }

    #[tokio::test]
    async fn image_list_filters_and_pagination() {
        let env = env().await;
        for i in 0..5 {
            let disk = if i % 2 == 0 { "qcow2" } else { "raw" };
            create(&env, &env.demo, json!({"name": format!("img{i}"), "disk_format": disk, "container_format": "bare", "os_type": if i == 3 { "windows" } else { "linux" }})).await;
        }
        let r = get(&env, "/image/v2/images?name=img2", &env.demo).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(v["images"].as_array().expect("list").len(), 1);
        assert_eq!(v["schema"], "/v2/schemas/images");
        assert!(v["first"].as_str().expect("first").starts_with("/v2/images"));
        assert!(v.get("next").is_none());
        let r = get(&env, "/image/v2/images?disk_format=raw", &env.demo).await;
        assert_eq!(r.json()["images"].as_array().expect("list").len(), 2);
        let r = get(&env, "/image/v2/images?os_type=windows", &env.demo).await;
        assert_eq!(r.json()["images"][0]["name"], "img3");
        let r = get(&env, "/image/v2/images?name=in:img1,img4", &env.demo).await;
        assert_eq!(r.json()["images"].as_array().expect("list").len(), 2);
        let r = get(&env, "/image/v2/images?status=active", &env.demo).await;
        assert!(r.json()["images"].as_array().expect("list").is_empty());

        // Pages of two, by name, following `next`.
        let mut names = Vec::new();
        let mut uri = "/image/v2/images?limit=2&sort_key=name&sort_dir=asc".to_string();
        let mut pages = 0;
        loop {
            let v = get(&env, &uri, &env.demo).await.json();
            pages += 1;
            for i in v["images"].as_array().expect("list") {
                names.push(i["name"].as_str().expect("name").to_string());
            }
            match v["next"].as_str() {
                Some(next) => {
                    assert!(next.contains("marker="));
                    uri = format!("/image{next}");
                }
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(names, vec!["img0", "img1", "img2", "img3", "img4"]);
        let r = get(&env, "/image/v2/images?sort=name:desc&limit=1", &env.demo).await;
        assert_eq!(r.json()["images"][0]["name"], "img4");

        for bad in ["limit=-1", "limit=x", "marker=nope", "sort_key=bogus", "sort_dir=up", "visibility=x"] {
            let r = get(&env, &format!("/image/v2/images?{bad}"), &env.demo).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[tokio::test]
    async fn image_seed_is_idempotent() {
        let env = env().await;
        let project = env.state.ds.project_find("admin").await.expect("project").id;
        let data = b"not really a qcow2".to_vec();
        let id = seed_image(&env.state, "cirros", &project, &data).await.expect("seed");
        let again = seed_image(&env.state, "cirros", &project, &data).await.expect("seed again");
        assert_eq!(id, again);
        let r = get(&env, "/image/v2/images?name=cirros", &env.demo).await;
        let images = r.json()["images"].as_array().expect("list").clone();
        assert_eq!(images.len(), 1);
        let img = &images[0];
        assert_eq!(img["id"], id.as_str());
        assert_eq!(img["status"], "active");
        assert_eq!(img["visibility"], "public");
        assert_eq!(img["disk_format"], "qcow2");
        assert_eq!(img["container_format"], "bare");
        assert_eq!(img["size"], data.len());
        assert_eq!(img["checksum"], hex::encode(Md5::digest(&data)));
        let r = get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await;
        assert_eq!(r.body.as_ref(), data.as_slice());

        // A private image of the same name elsewhere does not count as the seed.
        let other = create(&env, &env.demo, json!({"name": "ubuntu", "visibility": "private"})).await;
        let seeded = seed_image(&env.state, "ubuntu", &project, b"u").await.expect("seed ubuntu");
        assert_ne!(seeded, other);
    }

    #[tokio::test]
    async fn image_schemas_are_served() {
        let env = env().await;
        let r = get(&env, "/image/v2/schemas/image", &env.demo).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(v["name"], "image");
        assert_eq!(v["additionalProperties"]["type"], "string");
        assert!(v["properties"]["disk_format"]["enum"].as_array().expect("enum").contains(&json!("qcow2")));
        let r = get(&env, "/image/v2/schemas/images", &env.demo).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["properties"]["images"]["items"]["name"], "image");
    }
}
