//! Cinder's quota sets and quota classes (`/os-quota-sets`,
//! `/os-quota-class-sets`). Handlers only translate: the layering and the
//! checks are [`stratus_volume::VolumeService`]'s, bodies and views
//! [`stratus_api::volume`]'s.

use super::{Params, Q, param, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume as wire;
use stratus_volume::VolumeLimits;

fn limits_view(id: Option<&str>, l: &VolumeLimits) -> Value {
    let rows: Vec<(&str, i64, Option<i64>)> = l.iter().map(|(r, v)| (r.as_str(), *v, None)).collect();
    wire::quota_view(id, &rows)
}

/// `GET /os-quota-sets/{project}`: its limits (`usage=true`: with usage).
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-quota-sets/{tenant_id}", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project whose quotas to show"), ("usage" = Option<String>, Query, description = "Truthy: each limit with its usage")), responses((status = 200, description = "The quota set", body = s::VolumeQuotaSetBody), (status = 403, description = "Another project's, not an admin")))]
pub(super) async fn show(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let target = param(&p, "tenant_id")?;
    let quota = state.volume.quota_show(&ctx, target).await?;
    let usage = q.get("usage").is_some_and(|u| wire::truthy(u));
    let rows: Vec<(&str, i64, Option<i64>)> =
        quota.iter().map(|u| (u.resource.as_str(), u.limit, usage.then_some(u.in_use))).collect();
    Ok(axum::Json(json!({ "quota_set": wire::quota_view(Some(target), &rows) })))
}

/// `GET /os-quota-sets/{project}/defaults`: what a project without its own
/// limits gets.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-quota-sets/{tenant_id}/defaults", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project")), responses((status = 200, description = "The default quota set", body = s::VolumeQuotaSetBody), (status = 403, description = "Another project's, not an admin")))]
pub(super) async fn defaults(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let target = param(&p, "tenant_id")?;
    let l = state.volume.quota_defaults(&ctx, target).await?;
    Ok(axum::Json(json!({ "quota_set": limits_view(Some(target), &l) })))
}

/// `PUT /os-quota-sets/{project}` (admins) → 200 with the limits in force.
#[utoipa::path(put, path = "/volume/v3/{project_id}/os-quota-sets/{tenant_id}", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project")), request_body = s::VolumeQuotaSetBody, responses((status = 200, description = "Updated", body = s::VolumeQuotaSetBody), (status = 400, description = "Unknown resource, not an integer, below -1 or below the usage"), (status = 403, description = "Not an admin")))]
pub(super) async fn update(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let target = param(&p, "tenant_id")?.to_string();
    stratus_volume::check_type_admin(&ctx, "volume_extension:quotas:update")?;
    let updates = wire::quota_updates(&parse_json(&body)?, "quota_set")?;
    let l = state.volume.quota_update(&ctx, &target, &updates).await?;
    Ok(axum::Json(json!({ "quota_set": limits_view(None, &l) })))
}

/// `DELETE /os-quota-sets/{project}` (admins) → 200: back to the defaults.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/os-quota-sets/{tenant_id}", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project")), responses((status = 200, description = "Reset to the defaults"), (status = 403, description = "Not an admin")))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::http::StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.quota_delete(&ctx, param(&p, "tenant_id")?).await?;
    // Cinder answers 200 with no body.
    Ok(axum::http::StatusCode::OK)
}

/// `GET /os-quota-class-sets/{class}` (admins).
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-quota-class-sets/{id}", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("id" = String, Path, description = "Quota class (`default`: every project's defaults)")), responses((status = 200, description = "The quota class", body = s::VolumeQuotaClassBody), (status = 403, description = "Not an admin")))]
pub(super) async fn class_show(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let class = param(&p, "id")?;
    let l = state.volume.quota_class_show(&ctx, class).await?;
    Ok(axum::Json(json!({ "quota_class_set": limits_view(Some(class), &l) })))
}

/// `PUT /os-quota-class-sets/{class}` (admins) → 200 with its limits.
#[utoipa::path(put, path = "/volume/v3/{project_id}/os-quota-class-sets/{id}", tag = "quotas", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("id" = String, Path, description = "Quota class")), request_body = s::VolumeQuotaClassBody, responses((status = 200, description = "Updated", body = s::VolumeQuotaClassBody), (status = 400, description = "Unknown resource, not an integer or below -1"), (status = 403, description = "Not an admin")))]
pub(super) async fn class_update(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let class = param(&p, "id")?.to_string();
    stratus_volume::check_type_admin(&ctx, "volume_extension:quota_classes:update")?;
    let updates = wire::quota_updates(&parse_json(&body)?, "quota_class_set")?;
    let l = state.volume.quota_class_update(&ctx, &class, &updates).await?;
    Ok(axum::Json(json!({ "quota_class_set": limits_view(None, &l) })))
}
