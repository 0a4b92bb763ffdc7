//! Group snapshots (`/group_snapshots`, 3.14+; `reset_status` 3.19+).
//! Handlers only translate: bodies and views are
//! [`stratus_api::volume::group_snapshots`]'s, the rules
//! [`stratus_volume::VolumeService`]'s. Below 3.14 each path is Cinder's 404.

use super::{Params, Q, VolumeMv, param, require_mv, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume::group_snapshots::{
    self as wire, CreateGroupSnapshot, MV_GROUP_SNAPSHOT_RESET, MV_GROUP_SNAPSHOTS,
};

type Json = axum::Json<Value>;

async fn list(
    state: &AppState,
    ctx: &stratus_auth::AuthContext,
    mv: VolumeMv,
    q: &std::collections::HashMap<String, String>,
    detail: bool,
) -> Result<Json, ApiError> {
    require_mv(mv, MV_GROUP_SNAPSHOTS)?;
    let all = q.get("all_tenants").is_some_and(|v| stratus_api::volume::truthy(v));
    let rows = state.volume.group_snapshot_list(ctx, all).await?;
    let out: Vec<Value> = rows
        .iter()
        .map(|g| {
            if detail { wire::group_snapshot_detail(g, mv.0, ctx.is_admin()) } else { wire::group_snapshot_summary(g) }
        })
        .collect();
    Ok(axum::Json(json!({ "group_snapshots": out })))
}

/// `GET /group_snapshots`: the caller's project's group snapshots (`all_tenants`: admins, all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_snapshots", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Group snapshots (short)", body = s::GroupSnapshotList), (status = 404, description = "Below microversion 3.14")))]
pub(super) async fn list_group_snapshots(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, &q, false).await
}

/// `GET /group_snapshots/detail`: as the list, in full.
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_snapshots/detail", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Group snapshots in full", body = s::GroupSnapshotList), (status = 404, description = "Below microversion 3.14")))]
pub(super) async fn list_group_snapshots_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, &q, true).await
}

/// `POST /group_snapshots` → 202: a snapshot of every volume of the group.
#[utoipa::path(post, path = "/volume/v3/{project_id}/group_snapshots", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::GroupSnapshotBody, responses((status = 202, description = "Created", body = s::GroupSnapshotBody), (status = 400, description = "Invalid body, or the group or a volume in a wrong status"), (status = 404, description = "Unknown group, or below microversion 3.14"), (status = 413, description = "Over the snapshot quotas")))]
pub(super) async fn create_group_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<(StatusCode, Json), ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_SNAPSHOTS)?;
    stratus_volume::check_write(&ctx, "group:create_group_snapshot")?;
    let c = CreateGroupSnapshot::parse(&parse_json(&body)?)?;
    let g = state.volume.group_snapshot_create(&ctx, &c.group_id, c.name, c.description).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "group_snapshot": wire::group_snapshot_created(&g) }))))
}

/// `GET /group_snapshots/{id}`: another project's group snapshot is 404.
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_snapshot_id" = String, Path, description = "Group snapshot id")), responses((status = 200, description = "The group snapshot", body = s::GroupSnapshotBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn show_group_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_SNAPSHOTS)?;
    let g = state.volume.group_snapshot_get(&ctx, param(&p, "group_snapshot_id")?).await?;
    Ok(axum::Json(json!({ "group_snapshot": wire::group_snapshot_detail(&g, mv.0, ctx.is_admin()) })))
}

/// `DELETE /group_snapshots/{id}` → 202: the group snapshot and its member snapshots.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_snapshot_id" = String, Path, description = "Group snapshot id")), responses((status = 202, description = "Deleted"), (status = 400, description = "Not available or error, or a group is being built from it"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn delete_group_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_SNAPSHOTS)?;
    state.volume.group_snapshot_delete(&ctx, param(&p, "group_snapshot_id")?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /group_snapshots/{id}/action`: `reset_status` (admins, 3.19) → 202.
#[utoipa::path(post, path = "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}/action", tag = "group-snapshots", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_snapshot_id" = String, Path, description = "Group snapshot id")), responses((status = 202, description = "Done"), (status = 400, description = "Invalid body or status"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or another project's, or below microversion 3.19")))]
pub(super) async fn group_snapshot_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_SNAPSHOT_RESET)?;
    let id = param(&p, "group_snapshot_id")?;
    state.volume.group_snapshot_get(&ctx, id).await?;
    stratus_volume::check_type_admin(&ctx, "group:reset_group_snapshot_status")?;
    let status = wire::parse_group_snapshot_action(&parse_json(&body)?)?;
    state.volume.group_snapshot_reset_status(&ctx, id, &status).await?;
    Ok(StatusCode::ACCEPTED)
}
