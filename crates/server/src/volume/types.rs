//! Volume types (`/types`): list and show (with `default`), create, update
//! and delete, extra specs, and the access list of private types
//! (`addProjectAccess` / `removeProjectAccess`). Handlers only translate:
//! bodies and views are in [`stratus_api::volume::types`], the rules in
//! [`stratus_volume::VolumeService`]. Writes ask the service for policy and
//! existence before they read the body.

use super::{Params, Q, VolumeMv, param, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume::types::{self as wire, CreateVolumeType, TypeViewer, UpdateVolumeType, VolumeTypeAction};
use stratus_auth::AuthContext;
use stratus_volume::check_type_admin;

fn viewer(ctx: &AuthContext) -> TypeViewer {
    TypeViewer { admin: ctx.is_admin(), member: ctx.can_write() }
}

/// `GET /types`: public types and those shared with the caller's project;
/// admins filter with `is_public` (`none`: all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/types", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("is_public" = Option<String>, Query, description = "Admins: true (default), false, or none for all")), responses((status = 200, description = "Volume types", body = s::VolumeTypeList), (status = 400, description = "Bad is_public")))]
pub(super) async fn list_types(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let admin = ctx.is_admin();
    // Cinder's 3.52 general filtering: a non-admin may use `is_public` and
    // `extra_specs` (others 400); before 3.52 a non-admin's `extra_specs`
    // is dropped, an admin's honoured.
    const NOT_FILTERS: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir"];
    if mv.0 >= 52 && !admin {
        stratus_api::volume::reject_invalid_filters(
            "volume_type",
            q.keys().map(String::as_str).filter(|k| !NOT_FILTERS.contains(k)),
        )?;
    }
    let want = match q.get("extra_specs").filter(|_| admin || mv.0 >= 52) {
        Some(f) => Some(stratus_api::volume::dict_filter("extra_specs", f)?),
        None => None,
    };
    // A non-admin filtering on a spec they may not see finds nothing
    // (Cinder: removing the filter would give inaccurate results).
    if let Some(w) = &want
        && !admin
        && w.keys().any(|k| !wire::USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
    {
        return Ok(axum::Json(json!({ "volume_types": [] })));
    }
    let mut types = state.volume.type_list(&ctx, q.get("is_public").map(String::as_str)).await?;
    if let Some(w) = &want {
        types.retain(|(_, specs)| w.iter().all(|(k, v)| specs.get(k).is_some_and(|have| have.as_deref() == Some(v))));
    }
    let v = viewer(&ctx);
    let out: Vec<Value> = types.iter().map(|(t, specs)| wire::volume_type_view(t, specs, v)).collect();
    Ok(axum::Json(json!({ "volume_types": out })))
}

/// `GET /types/{id}` (also `default`): 404 for a private type not shared
/// with the caller's project.
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id, or `default`")), responses((status = 200, description = "The type", body = s::VolumeTypeBody), (status = 404, description = "Unknown or not visible")))]
pub(super) async fn show_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (t, specs) = state.volume.type_show(&ctx, param(&p, "type_id")?).await?;
    Ok(axum::Json(json!({ "volume_type": wire::volume_type_view(&t, &specs, viewer(&ctx)) })))
}

/// `POST /types` (admins) → 200 with the type.
#[utoipa::path(post, path = "/volume/v3/{project_id}/types", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::VolumeTypeCreate, responses((status = 200, description = "Created", body = s::VolumeTypeBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 409, description = "Name taken")))]
pub(super) async fn create_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:type_create")?;
    let c = CreateVolumeType::parse(&parse_json(&body)?)?;
    let (t, specs) = state.volume.type_create(&ctx, c).await?;
    Ok(axum::Json(json!({ "volume_type": wire::volume_type_written_view(&t, &specs, true) })))
}

/// `PUT /types/{id}` (admins): name, description, is_public.
#[utoipa::path(put, path = "/volume/v3/{project_id}/types/{type_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), request_body = s::VolumeTypeUpdate, responses((status = 200, description = "The updated type", body = s::VolumeTypeBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown"), (status = 409, description = "Name taken")))]
pub(super) async fn update_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    check_type_admin(&ctx, "volume_extension:type_update")?;
    state.volume.type_get(&ctx, id).await?;
    let u = UpdateVolumeType::parse(&parse_json(&body)?)?;
    let (t, specs) = state.volume.type_update(&ctx, id, u).await?;
    Ok(axum::Json(json!({ "volume_type": wire::volume_type_written_view(&t, &specs, false) })))
}

/// `DELETE /types/{id}` (admins) → 202; not the default type nor one in use (400).
#[utoipa::path(delete, path = "/volume/v3/{project_id}/types/{type_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), responses((status = 202, description = "Deleted"), (status = 400, description = "The default type, or in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn delete_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.type_delete(&ctx, param(&p, "type_id")?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /types/{id}/extra_specs` (non-admins: the user-visible keys only).
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}/extra_specs", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), responses((status = 200, description = "The extra specs", body = s::VolumeTypeExtraSpecs), (status = 404, description = "Unknown or not visible")))]
pub(super) async fn list_extra_specs(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let specs = state.volume.type_extra_specs(&ctx, param(&p, "type_id")?).await?;
    Ok(axum::Json(json!({ "extra_specs": specs })))
}

/// `POST /types/{id}/extra_specs` (admins): add or overwrite; echoes the body.
#[utoipa::path(post, path = "/volume/v3/{project_id}/types/{type_id}/extra_specs", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), request_body = s::VolumeTypeExtraSpecs, responses((status = 200, description = "The specs set", body = s::VolumeTypeExtraSpecs), (status = 400, description = "Invalid body, or the type is in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn create_extra_specs(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    state.volume.type_for_spec_change(&ctx, id, "volume_extension:types_extra_specs:create").await?;
    let specs = wire::parse_extra_specs_create(&parse_json(&body)?)?;
    state.volume.type_extra_specs_set(&ctx, id, &specs).await?;
    Ok(axum::Json(json!({ "extra_specs": specs })))
}

/// `GET /types/{id}/extra_specs/{key}` → `{key: value}`.
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id"), ("key" = String, Path, description = "Extra spec key")), responses((status = 200, description = "The spec", body = s::VolumeTypeExtraSpecItem), (status = 404, description = "Unknown type or key")))]
pub(super) async fn show_extra_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let key = param(&p, "key")?;
    let value = state.volume.type_extra_spec(&ctx, param(&p, "type_id")?, key).await?;
    Ok(axum::Json(json!({ key: value })))
}

/// `PUT /types/{id}/extra_specs/{key}` with `{key: value}` (admins).
#[utoipa::path(put, path = "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id"), ("key" = String, Path, description = "Extra spec key")), request_body = s::VolumeTypeExtraSpecItem, responses((status = 200, description = "The spec", body = s::VolumeTypeExtraSpecItem), (status = 400, description = "Invalid body, body and URL disagree, or the type is in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type")))]
pub(super) async fn update_extra_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "type_id")?, param(&p, "key")?);
    state.volume.type_for_spec_change(&ctx, id, "volume_extension:types_extra_specs:update").await?;
    let (k, v) = wire::parse_extra_spec_update(&parse_json(&body)?, key)?;
    state.volume.type_extra_specs_set(&ctx, id, &[(k.clone(), v.clone())].into()).await?;
    Ok(axum::Json(json!({ k: v })))
}

/// `DELETE /types/{id}/extra_specs/{key}` (admins) → 202.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id"), ("key" = String, Path, description = "Extra spec key")), responses((status = 202, description = "Removed"), (status = 400, description = "The type is in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or key")))]
pub(super) async fn delete_extra_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.type_extra_spec_delete(&ctx, param(&p, "type_id")?, param(&p, "key")?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /types/{id}/os-volume-type-access` (admins): the projects a
/// private type is shared with (a public type: 404).
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}/os-volume-type-access", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), responses((status = 200, description = "The access list", body = s::VolumeTypeAccessList), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown, or a public type")))]
pub(super) async fn list_type_access(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    let projects = state.volume.type_access_list(&ctx, id).await?;
    Ok(axum::Json(wire::type_access_view(id, &projects)))
}

/// `POST /types/{id}/action`: `addProjectAccess` / `removeProjectAccess`
/// (admins, private types) → 202.
#[utoipa::path(post, path = "/volume/v3/{project_id}/types/{type_id}/action", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Type id")), request_body = s::VolumeTypeAction, responses((status = 202, description = "Access added or removed"), (status = 400, description = "Unknown action, invalid body, or a public type"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type, or no such access"), (status = 409, description = "Already shared")))]
pub(super) async fn type_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    check_type_admin(&ctx, "volume_extension:volume_type_access:addProjectAccess")?;
    state.volume.type_get(&ctx, id).await?;
    match VolumeTypeAction::parse(&parse_json(&body)?)? {
        VolumeTypeAction::AddProjectAccess(project) => state.volume.type_access_add(&ctx, id, &project).await?,
        VolumeTypeAction::RemoveProjectAccess(project) => state.volume.type_access_remove(&ctx, id, &project).await?,
    }
    Ok(StatusCode::ACCEPTED)
}
