//! Server metadata: the whole object (`/servers/{id}/metadata`) and one item
//! (`/servers/{id}/metadata/{key}`), as Nova's `server_metadata` controller.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{parse_meta_item, parse_metadata_body};
use stratus_controller::compute_api::MetadataChange;

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/metadata", tag = "server metadata", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "All metadata", body = s::ServerMetadata), (status = 400, description = "A query parameter (2.102)"), (status = 404, description = "Unknown server")))]
pub(super) async fn metadata_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = st.compute.server_metadata(&ctx, &id).await?;
    Ok(Json(json!({"metadata": m})))
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}/metadata", tag = "server metadata", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "Metadata replaced", body = s::ServerMetadata), (status = 400, description = "Invalid body"), (status = 403, description = "Over the metadata_items quota"), (status = 404, description = "Unknown server"), (status = 409, description = "Locked or busy")))]
pub(super) async fn metadata_replace(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change(st, ctx, id, body, MetadataChange::Replace).await
}

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/metadata", tag = "server metadata", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "Entries added or overwritten; all metadata", body = s::ServerMetadata), (status = 400, description = "Invalid body"), (status = 403, description = "Over the metadata_items quota"), (status = 404, description = "Unknown server"), (status = 409, description = "Locked or busy")))]
pub(super) async fn metadata_merge(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change(st, ctx, id, body, MetadataChange::Merge).await
}

/// Parse the body and apply it (the service checks the caller and the
/// server before the body's verdict).
async fn change(
    st: AppState,
    ctx: stratus_auth::AuthContext,
    id: String,
    body: Bytes,
    how: fn(std::collections::BTreeMap<String, String>) -> MetadataChange,
) -> Result<Json<Value>, ApiError> {
    let change = parse_json::<Value>(&body).and_then(|v| Ok(how(parse_metadata_body(&v)?))).map_err(|e| e.to_string());
    let m = st.compute.change_server_metadata(&ctx, &id, change).await?;
    Ok(Json(json!({"metadata": m})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/metadata/{key}", tag = "server metadata", params(("id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "One entry", body = s::ServerMetaItem), (status = 400, description = "A query parameter (2.102)"), (status = 404, description = "Unknown server or key")))]
pub(super) async fn metadata_item_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = st.compute.server_metadata_item(&ctx, &id, &key).await?;
    Ok(Json(json!({"meta": {key: v}})))
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}/metadata/{key}", tag = "server metadata", params(("id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "The entry as set", body = s::ServerMetaItem), (status = 400, description = "Invalid body, or its key is not the URL's"), (status = 403, description = "Over the metadata_items quota"), (status = 404, description = "Unknown server"), (status = 409, description = "Locked or busy")))]
pub(super) async fn metadata_item_set(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_json::<Value>(&body).and_then(|v| Ok(parse_meta_item(&v, &key)?)).map_err(|e| e.to_string());
    let set = value.clone().map(|v| MetadataChange::Set(key.clone(), v));
    st.compute.change_server_metadata(&ctx, &id, set).await?;
    Ok(Json(json!({"meta": {key: value.unwrap_or_default()}})))
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}/metadata/{key}", tag = "server metadata", params(("id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Metadata key")), responses((status = 204, description = "Removed"), (status = 404, description = "Unknown server or key"), (status = 409, description = "Locked or busy")))]
pub(super) async fn metadata_item_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.compute.change_server_metadata(&ctx, &id, Ok(MetadataChange::Remove(key))).await?;
    Ok(StatusCode::NO_CONTENT)
}
