//! The volume proxy of the compute API (`/os-volumes`, up to 2.35): block
//! storage volumes in Nova's camel-case shape, created, listed (with
//! `limit` and `offset`), shown and deleted through the volume service.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{parse_query, query_value, views};
use stratus_api::volume::CreateVolume;
use stratus_auth::AuthContext;
use stratus_db::{AttachmentRow, VolumeRow};

/// Nova's view of a volume; a volume attached nowhere shows `[{}]`, as Nova does.
fn view(v: &VolumeRow, atts: &[AttachmentRow]) -> Value {
    let mut attachments: Vec<Value> = atts
        .iter()
        .map(|a| json!({"id": a.id, "volumeId": v.id, "serverId": a.server_id, "device": a.mountpoint.clone().unwrap_or_default()}))
        .collect();
    if attachments.is_empty() {
        attachments.push(json!({}));
    }
    json!({
        "id": v.id,
        "status": v.status.as_str(),
        "size": v.size_gb,
        "availabilityZone": v.availability_zone,
        "createdAt": views::iso_micro(v.created_at),
        "displayName": v.name,
        "displayDescription": v.description,
        "volumeType": v.volume_type,
        "snapshotId": v.snapshot_id,
        "metadata": serde_json::from_str::<Value>(&v.metadata).unwrap_or_else(|_| json!({})),
        "attachments": attachments,
    })
}

async fn view_of(st: &AppState, v: &VolumeRow) -> Result<Value, ApiError> {
    Ok(view(v, &st.volume.attachments_of(&v.id).await?))
}

/// The caller's volumes, paged by `offset` and `limit`.
async fn listed(st: &AppState, ctx: &AuthContext, q: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let q = parse_query(q);
    let num = |k: &str| -> Result<Option<usize>, ApiError> {
        query_value(&q, k)
            .map(|v| v.parse::<usize>().map_err(|_| ApiError::BadRequest(format!("{k} param must be an integer"))))
            .transpose()
    };
    let (offset, limit) = (num("offset")?.unwrap_or(0), num("limit")?);
    let rows = st.volume.list(ctx, &stratus_volume::ListFilter::default()).await?;
    let mut out = Vec::new();
    for v in rows.iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
        out.push(view_of(st, v).await?);
    }
    Ok(out)
}

#[utoipa::path(get, path = "/compute/v2.1/os-volumes", tag = "volumes", params(("limit" = Option<u32>, Query, description = "Page size"), ("offset" = Option<u32>, Query, description = "Skip this many")), responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "The project's volumes", body = s::ComputeVolumeList)))]
pub(super) async fn volume_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"volumes": listed(&st, &ctx, q.as_deref()).await?})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-volumes/detail", tag = "volumes", params(("limit" = Option<u32>, Query, description = "Page size"), ("offset" = Option<u32>, Query, description = "Skip this many")), responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "The project's volumes", body = s::ComputeVolumeList)))]
pub(super) async fn volume_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"volumes": listed(&st, &ctx, q.as_deref()).await?})))
}

#[utoipa::path(post, path = "/compute/v2.1/os-volumes", tag = "volumes", responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "Created", body = s::ComputeVolumeBody), (status = 400, description = "Invalid body"), (status = 403, description = "Reader, or over quota")))]
pub(super) async fn volume_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // The policy before the body: a reader gets 403, not a 400 about it.
    stratus_volume::check_write(&ctx, "create")?;
    let c = CreateVolume::parse(&parse_json::<Value>(&body)?)?;
    let row = st.volume.create_answering_promptly(&ctx, c).await?;
    Ok(Json(json!({"volume": view_of(&st, &row).await?})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-volumes/{id}", tag = "volumes", params(("id" = String, Path, description = "Volume id")), responses((status = 200, description = "A volume", body = s::ComputeVolumeBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn volume_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = st.volume.get_visible(&ctx, &id).await?;
    Ok(Json(json!({"volume": view_of(&st, &v).await?})))
}

#[utoipa::path(delete, path = "/compute/v2.1/os-volumes/{id}", tag = "volumes", params(("id" = String, Path, description = "Volume id")), responses((status = 202, description = "Deletion started"), (status = 400, description = "Attached"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn volume_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.volume.delete(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Nova's view of a volume snapshot (`/os-snapshots`).
fn snapshot_view(s: &stratus_db::SnapshotRow) -> Value {
    json!({
        "id": s.id,
        "volumeId": s.volume_id,
        "status": s.status,
        "size": s.size_gb,
        "createdAt": views::iso_micro(s.created_at),
        "displayName": s.name,
        "displayDescription": s.description,
    })
}

async fn snapshots_listed(st: &AppState, ctx: &AuthContext, q: Option<&str>) -> Result<Value, ApiError> {
    let q = parse_query(q);
    let num = |k: &str| -> Result<Option<usize>, ApiError> {
        query_value(&q, k)
            .map(|v| v.parse::<usize>().map_err(|_| ApiError::BadRequest(format!("{k} param must be an integer"))))
            .transpose()
    };
    let (offset, limit) = (num("offset")?.unwrap_or(0), num("limit")?);
    let rows = st.volume.snapshot_list(ctx, &stratus_volume::SnapshotFilter::default()).await?;
    let out: Vec<Value> = rows.iter().skip(offset).take(limit.unwrap_or(usize::MAX)).map(snapshot_view).collect();
    Ok(json!({ "snapshots": out }))
}

#[utoipa::path(get, path = "/compute/v2.1/os-snapshots", tag = "volumes", params(("limit" = Option<u32>, Query, description = "Page size"), ("offset" = Option<u32>, Query, description = "Skip this many")), responses((status = 404, description = "Gone at this microversion (2.36)"), (status = 200, description = "The project's volume snapshots", body = s::VolumeSnapshotList)))]
pub(super) async fn snapshot_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(snapshots_listed(&st, &ctx, q.as_deref()).await?))
}

#[utoipa::path(get, path = "/compute/v2.1/os-snapshots/detail", tag = "volumes", params(("limit" = Option<u32>, Query, description = "Page size"), ("offset" = Option<u32>, Query, description = "Skip this many")), responses((status = 404, description = "Gone at this microversion (2.36)"), (status = 200, description = "The project's volume snapshots", body = s::VolumeSnapshotList)))]
pub(super) async fn snapshot_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(snapshots_listed(&st, &ctx, q.as_deref()).await?))
}

/// `POST /os-snapshots`: `{"snapshot": {"volume_id", "force", "display_name", "display_description"}}`.
#[utoipa::path(post, path = "/compute/v2.1/os-snapshots", tag = "volumes", request_body = s::VolumeSnapshotCreate, responses((status = 404, description = "Gone at this microversion (2.36), or unknown volume"), (status = 200, description = "Created", body = s::VolumeSnapshotBody), (status = 400, description = "Invalid body or volume status"), (status = 403, description = "Reader, or over quota")))]
pub(super) async fn snapshot_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    stratus_volume::check_write(&ctx, "create_snapshot")?;
    let c = stratus_api::volume::snapshots::CreateSnapshot::parse(&parse_json::<Value>(&body)?, 0)?;
    let req = stratus_volume::NewSnapshot {
        volume_id: c.volume_id,
        name: c.name,
        description: c.description,
        metadata: c.metadata,
        force: c.force,
    };
    let row = st.volume.snapshot_create(&ctx, req).await?;
    Ok(Json(json!({ "snapshot": snapshot_view(&row) })))
}

#[utoipa::path(get, path = "/compute/v2.1/os-snapshots/{id}", tag = "volumes", params(("id" = String, Path, description = "Snapshot id")), responses((status = 200, description = "A snapshot", body = s::VolumeSnapshotBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn snapshot_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = st.volume.snapshot_visible(&ctx, &id).await?;
    Ok(Json(json!({ "snapshot": snapshot_view(&s) })))
}

#[utoipa::path(delete, path = "/compute/v2.1/os-snapshots/{id}", tag = "volumes", params(("id" = String, Path, description = "Snapshot id")), responses((status = 202, description = "Deletion started"), (status = 400, description = "Not available or error"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn snapshot_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.volume.snapshot_delete(&ctx, &id, false).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nova's os-volumes view: camel case, and `[{}]` for a volume attached nowhere.
    #[test]
    fn volumes_show_in_novas_shape() {
        let now = chrono::Utc::now();
        let v = VolumeRow {
            group_id: None,
            id: stratus_types::VolumeId::new(),
            name: Some("v".into()),
            description: None,
            project_id: "p".into(),
            user_id: "u".into(),
            size_gb: 1,
            status: stratus_types::VolumeStatus::Available,
            volume_type_id: None,
            volume_type: Some("__DEFAULT__".into()),
            availability_zone: "nova".into(),
            bootable: false,
            image_id: None,
            backend_name: "b".into(),
            metadata: r#"{"k": "v"}"#.into(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted: false,
            snapshot_id: None,
            source_volid: None,
        };
        let shown = view(&v, &[]);
        assert_eq!(shown["attachments"], json!([{}]));
        assert_eq!((shown["displayName"].as_str(), shown["availabilityZone"].as_str()), (Some("v"), Some("nova")));
        assert_eq!(shown["metadata"]["k"], "v");
    }
}
