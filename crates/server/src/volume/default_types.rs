//! Per-project default volume types (`/default-types`, 3.62; 404 below).
//! Handlers only translate: the rules are
//! [`stratus_volume::VolumeService`]'s, bodies and views
//! [`stratus_api::volume::default_types`]'s.

use super::{Params, VolumeMv, param, require_mv, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume::default_types::{self as wire, MV_DEFAULT_TYPES};

/// `PUT /default-types/{project}` (admins): set or replace, 200.
#[utoipa::path(put, path = "/volume/v3/{project_id}/default-types/{tenant_id}", tag = "default-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project whose default type to set")), request_body = s::VolumeDefaultTypeSet, responses((status = 200, description = "Set", body = s::VolumeDefaultTypeBody), (status = 400, description = "Invalid body or unknown volume type"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown project, or below microversion 3.62")))]
pub(super) async fn set_default_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_DEFAULT_TYPES)?;
    let target = param(&p, "tenant_id")?;
    // Policy before the body (Stratus's rule: a 403 never hides behind a 400).
    stratus_volume::check_type_admin(&ctx, "volume_extension:default_set_or_update")?;
    let volume_type = wire::parse_set(&parse_json(&body)?)?;
    let d = state.volume.default_type_set(&ctx, target, &volume_type).await?;
    Ok(axum::Json(json!({ "default_type": wire::default_type_view(&d) })))
}

/// `GET /default-types/{project}` (admins; 404 when none is set).
#[utoipa::path(get, path = "/volume/v3/{project_id}/default-types/{tenant_id}", tag = "default-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project")), responses((status = 200, description = "Its default type", body = s::VolumeDefaultTypeBody), (status = 403, description = "Not an admin"), (status = 404, description = "None set, unknown project, or below microversion 3.62")))]
pub(super) async fn show_default_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_DEFAULT_TYPES)?;
    let d = state.volume.default_type_get(&ctx, param(&p, "tenant_id")?).await?;
    Ok(axum::Json(json!({ "default_type": wire::default_type_view(&d) })))
}

/// `GET /default-types` (admins): every project's.
#[utoipa::path(get, path = "/volume/v3/{project_id}/default-types", tag = "default-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Every project's default type", body = s::VolumeDefaultTypeList), (status = 403, description = "Not an admin"), (status = 404, description = "Below microversion 3.62")))]
pub(super) async fn list_default_types(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_DEFAULT_TYPES)?;
    let all = state.volume.default_type_list(&ctx).await?;
    Ok(axum::Json(json!({ "default_types": all.iter().map(wire::default_type_view).collect::<Vec<_>>() })))
}

/// `DELETE /default-types/{project}` (admins): 204, also when none is set.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/default-types/{tenant_id}", tag = "default-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("tenant_id" = String, Path, description = "The project")), responses((status = 204, description = "Unset"), (status = 403, description = "Not an admin"), (status = 404, description = "Below microversion 3.62")))]
pub(super) async fn delete_default_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_DEFAULT_TYPES)?;
    state.volume.default_type_unset(&ctx, param(&p, "tenant_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
