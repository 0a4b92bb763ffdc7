//! The image proxy of the compute API (`/images`, up to 2.35): Glance
//! images in Nova's shape (status in capitals, properties as `metadata`,
//! the snapshot's server), with Nova's filters and metadata calls mapped
//! onto the image service.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use stratus_api::compute::{parse_meta_item, parse_metadata_body, parse_query, query_value, ref_id, views};
use stratus_auth::AuthContext;
use stratus_db::ImageRow;
use stratus_types::image::ImageStatus;

/// Nova's image status for a Glance status.
fn nova_status(s: ImageStatus) -> (&'static str, i64) {
    match s {
        ImageStatus::Active => ("ACTIVE", 100),
        ImageStatus::Queued | ImageStatus::Uploading => ("SAVING", 25),
        ImageStatus::Saving | ImageStatus::Importing => ("SAVING", 50),
        ImageStatus::Deleted | ImageStatus::PendingDelete => ("DELETED", 0),
        ImageStatus::Killed => ("ERROR", 0),
        ImageStatus::Deactivated => ("UNKNOWN", 0),
    }
}

/// The image's custom properties (Nova's `metadata`).
fn properties(i: &ImageRow) -> Map<String, Value> {
    serde_json::from_str(&i.properties).unwrap_or_default()
}

fn links(public: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{public}/compute/v2.1/images/{id}")},
        {"rel": "bookmark", "href": format!("{public}/compute/images/{id}")},
        {"rel": "alternate", "type": "application/vnd.openstack.image", "href": format!("{public}/image/v2/images/{id}")},
    ])
}

/// The brief (`detail == false`) or full Nova view of an image.
fn view(public: &str, i: &ImageRow, detail: bool) -> Value {
    let id = i.id.to_string();
    let mut v = json!({"id": id, "name": i.name, "links": links(public, &id)});
    if !detail {
        return v;
    }
    let (status, progress) = nova_status(i.status);
    let props = properties(i);
    let extra = json!({
        "status": status,
        "progress": progress,
        "minDisk": i.min_disk,
        "minRam": i.min_ram,
        "created": views::iso(i.created_at),
        "updated": views::iso(i.updated_at),
        "metadata": props,
        "OS-EXT-IMG-SIZE:size": i.size,
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
        if let Some(Value::String(server)) = props.get("instance_uuid") {
            let server_links = views::link(public, &format!("servers/{server}"));
            o.insert("server".into(), json!({"id": server, "links": server_links}));
        }
    }
    v
}

/// Every image the caller sees, filtered as Nova's proxy filters.
async fn listed(st: &AppState, ctx: &AuthContext, q: Option<&str>) -> Result<Vec<ImageRow>, ApiError> {
    let q = parse_query(q);
    let all = [("limit".to_string(), "1000".to_string())];
    let query = stratus_api::image::ListImagesQuery::parse(&all).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut rows = st.images.list(ctx, &query).await?.images;
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        query_value(&q, k)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("Invalid {k} filter [{v}]"))))
            .transpose()
    };
    let (min_ram, min_disk) = (int("minRam")?, int("minDisk")?);
    let since = match query_value(&q, "changes-since") {
        Some(t) => Some(stratus_controller::compute_api::usage_time(Some(t), chrono::Utc::now())?),
        None => None,
    };
    rows.retain(|i| {
        let props = properties(i);
        let prop = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        query_value(&q, "name").is_none_or(|n| i.name.as_deref() == Some(n))
            && query_value(&q, "status").is_none_or(|s| nova_status(i.status).0.eq_ignore_ascii_case(s))
            && query_value(&q, "server").is_none_or(|s| prop("instance_uuid").as_deref() == Some(ref_id(s)))
            && query_value(&q, "type").is_none_or(|t| match t {
                "snapshot" => prop("image_type").as_deref() == Some("snapshot"),
                _ => prop("image_type").as_deref() != Some("snapshot"),
            })
            && min_ram.is_none_or(|m| i.min_ram >= m)
            && min_disk.is_none_or(|m| i.min_disk >= m)
            && since.is_none_or(|t| i.updated_at >= t)
    });
    if let Some(m) = query_value(&q, "marker") {
        let Some(at) = rows.iter().position(|i| i.id.to_string() == m) else {
            return Err(ApiError::BadRequest(format!("marker [{m}] not found")));
        };
        rows.drain(..=at);
    }
    if let Some(l) = int("limit")? {
        rows.truncate(usize::try_from(l.max(0)).unwrap_or(0));
    }
    Ok(rows)
}

#[utoipa::path(get, path = "/compute/v2.1/images", tag = "images", responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "Images (id, name, links)", body = s::ComputeImageList)))]
pub(super) async fn image_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let rows = listed(&st, &ctx, q.as_deref()).await?;
    Ok(Json(json!({"images": rows.iter().map(|i| view(&st.public_url, i, false)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/images/detail", tag = "images", responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "Images in full", body = s::ComputeImageList)))]
pub(super) async fn image_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let rows = listed(&st, &ctx, q.as_deref()).await?;
    Ok(Json(json!({"images": rows.iter().map(|i| view(&st.public_url, i, true)).collect::<Vec<_>>()})))
}

/// An image the caller sees, as Nova's 404 otherwise.
async fn visible(st: &AppState, ctx: &AuthContext, id: &str) -> Result<ImageRow, ApiError> {
    st.images.get_visible(ctx, id).await.map_err(|_| ApiError::NotFound("Image not found.".into()))
}

#[utoipa::path(get, path = "/compute/v2.1/images/{id}", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "An image", body = s::ComputeImageBody), (status = 404, description = "Unknown or not visible")))]
pub(super) async fn image_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let i = visible(&st, &ctx, &id).await?;
    Ok(Json(json!({"image": view(&st.public_url, &i, true)})))
}

#[utoipa::path(delete, path = "/compute/v2.1/images/{id}", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 204, description = "Deleted"), (status = 403, description = "Not the owner, or protected"), (status = 404, description = "Unknown or not visible")))]
pub(super) async fn image_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    visible(&st, &ctx, &id).await?;
    st.images.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The image's properties as Nova's metadata (string values).
fn metadata_of(i: &ImageRow) -> Map<String, Value> {
    properties(i).into_iter().filter(|(_, v)| v.is_string()).collect()
}

/// A JSON-pointer path naming a custom property.
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// `PUT` (`replace`) or `POST` of an image's metadata: existence and the
/// right to change it before the body, then the properties written through
/// the image service's JSON-patch (its rules: owner, reserved keys).
async fn change_metadata(
    st: &AppState,
    ctx: &AuthContext,
    id: &str,
    body: &[u8],
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let i = visible(st, ctx, id).await?;
    st.images.get_modifiable(ctx, id).await?;
    let new = parse_metadata_body(&parse_json::<Value>(body)?)?;
    let mut ops: Vec<Value> = Vec::new();
    if replace {
        for k in metadata_of(&i).keys().filter(|k| !new.contains_key(*k)) {
            ops.push(json!({"op": "remove", "path": pointer(k)}));
        }
    }
    for (k, v) in &new {
        ops.push(json!({"op": "add", "path": pointer(k), "value": v}));
    }
    let i = st.images.patch(ctx, id, &ops).await?;
    Ok(Json(json!({"metadata": metadata_of(&i)})))
}

#[utoipa::path(get, path = "/compute/v2.1/images/{id}/metadata", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "The image's properties", body = s::ServerMetadata), (status = 404, description = "Unknown image")))]
pub(super) async fn image_metadata(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"metadata": metadata_of(&visible(&st, &ctx, &id).await?)})))
}

#[utoipa::path(put, path = "/compute/v2.1/images/{id}/metadata", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "Properties replaced", body = s::ServerMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown image")))]
pub(super) async fn image_metadata_replace(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change_metadata(&st, &ctx, &id, &body, true).await
}

#[utoipa::path(post, path = "/compute/v2.1/images/{id}/metadata", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "Properties added or overwritten", body = s::ServerMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown image")))]
pub(super) async fn image_metadata_merge(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change_metadata(&st, &ctx, &id, &body, false).await
}

#[utoipa::path(get, path = "/compute/v2.1/images/{id}/metadata/{key}", tag = "images", params(("id" = String, Path, description = "Image id"), ("key" = String, Path, description = "Property")), responses((status = 200, description = "One property", body = s::ServerMetaItem), (status = 404, description = "Unknown image or property")))]
pub(super) async fn image_metadata_item(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let m = metadata_of(&visible(&st, &ctx, &id).await?);
    let v = m.get(&key).ok_or_else(|| ApiError::NotFound("Image not found.".into()))?;
    Ok(Json(json!({"meta": {key: v}})))
}

#[utoipa::path(put, path = "/compute/v2.1/images/{id}/metadata/{key}", tag = "images", params(("id" = String, Path, description = "Image id"), ("key" = String, Path, description = "Property")), responses((status = 200, description = "The property as set", body = s::ServerMetaItem), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown image")))]
pub(super) async fn image_metadata_item_set(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Existence and the right to change it before the body.
    visible(&st, &ctx, &id).await?;
    st.images.get_modifiable(&ctx, &id).await?;
    let value = parse_meta_item(&parse_json::<Value>(&body)?, &key)?;
    let op = json!({"op": "add", "path": pointer(&key), "value": value});
    st.images.patch(&ctx, &id, &[op]).await?;
    Ok(Json(json!({"meta": {key: value}})))
}

#[utoipa::path(delete, path = "/compute/v2.1/images/{id}/metadata/{key}", tag = "images", params(("id" = String, Path, description = "Image id"), ("key" = String, Path, description = "Property")), responses((status = 204, description = "Removed"), (status = 404, description = "Unknown image or property")))]
pub(super) async fn image_metadata_item_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = visible(&st, &ctx, &id).await?;
    st.images.get_modifiable(&ctx, &id).await?;
    if !metadata_of(&i).contains_key(&key) {
        return Err(ApiError::NotFound("Image not found.".into()));
    }
    st.images.patch(&ctx, &id, &[json!({"op": "remove", "path": pointer(&key)})]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nova's image proxy: Glance statuses in Nova's capitals with a progress,
    // properties as metadata, a snapshot's server linked.
    #[test]
    fn images_show_in_novas_shape() {
        assert_eq!(nova_status(ImageStatus::Active), ("ACTIVE", 100));
        assert_eq!(nova_status(ImageStatus::Queued).0, "SAVING");
        assert_eq!(nova_status(ImageStatus::Killed).0, "ERROR");
        assert_eq!(nova_status(ImageStatus::PendingDelete).0, "DELETED");
        let now = chrono::Utc::now();
        let row = ImageRow {
            id: stratus_types::ImageId::new(),
            name: Some("snap".into()),
            owner: "p".into(),
            status: ImageStatus::Active,
            visibility: stratus_types::image::Visibility::Private,
            disk_format: None,
            container_format: None,
            size: Some(10),
            checksum: None,
            os_hash_value: None,
            min_disk: 1,
            min_ram: 64,
            protected: false,
            properties: r#"{"instance_uuid": "s-1", "image_type": "snapshot", "n": 1}"#.into(),
            created_at: now,
            updated_at: now,
        };
        let v = view("http://x", &row, true);
        assert_eq!(
            (v["status"].as_str(), v["progress"].as_i64(), v["minRam"].as_i64()),
            (Some("ACTIVE"), Some(100), Some(64))
        );
        assert_eq!(v["server"]["id"], "s-1");
        assert_eq!(metadata_of(&row).len(), 2, "string properties only");
        assert!(view("http://x", &row, false).get("status").is_none(), "the index is id, name, links");
    }
}
