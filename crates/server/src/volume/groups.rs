//! Group types (`/group_types`, 3.11+), generic volume groups (`/groups`,
//! 3.13+) and user messages (`/messages`, 3.3+). Handlers only translate:
//! bodies and views are [`stratus_api::volume::groups`]'s, the rules
//! [`stratus_volume::VolumeService`]'s. Below its microversion each path
//! is Cinder's 404.

use super::{Params, Q, VolumeMv, param, require_mv, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume::groups::{
    self as wire, CreateFromSource, CreateGroupType, GroupAction, MV_GROUP_FROM_SRC, MV_GROUP_RESET, MV_GROUP_TYPES,
    MV_GROUPS, MV_MESSAGES,
};
use stratus_volume::check_type_admin;

type Json = axum::Json<Value>;
type Accepted = (StatusCode, Json);

/// `GET /group_types`: public types (admins: private too; `is_public` filters).
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_types", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("is_public" = Option<String>, Query, description = "Admins: true, false or None (both)"), ("sort" = Option<String>, Query, description = "name:asc or name:desc")), responses((status = 200, description = "Group types", body = s::GroupTypeList), (status = 404, description = "Below microversion 3.11")))]
pub(super) async fn list_group_types(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    // Cinder: `is_public` absent means public only, `None` both.
    let is_public = match q.get("is_public").map(|v| v.to_ascii_lowercase()) {
        None => Some(true),
        Some(v) if v == "none" => None,
        Some(v) => Some(stratus_api::volume::truthy(&v)),
    };
    let mut rows = state.volume.group_type_list(&ctx, is_public).await?;
    if q.get("sort").or_else(|| q.get("sort_dir")).is_some_and(|s| s.ends_with("desc")) {
        rows.reverse();
    }
    let out: Vec<Value> = rows.iter().map(|t| wire::group_type_view(t, ctx.is_admin())).collect();
    Ok(axum::Json(json!({ "group_types": out })))
}

/// `POST /group_types` (admins) → 202.
#[utoipa::path(post, path = "/volume/v3/{project_id}/group_types", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::GroupTypeBody, responses((status = 202, description = "Created", body = s::GroupTypeBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Below microversion 3.11"), (status = 409, description = "Name taken")))]
pub(super) async fn create_group_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Accepted, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types:create")?;
    let c = CreateGroupType::parse(&parse_json(&body)?)?;
    let t = state.volume.group_type_create(&ctx, &c.name, c.description, c.is_public, c.group_specs).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "group_type": wire::group_type_view(&t, true) }))))
}

/// `GET /group_types/{id}` (`default`: the default group type, none here: 404).
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_types/{group_type_id}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id, or `default`")), responses((status = 200, description = "The group type", body = s::GroupTypeBody), (status = 404, description = "Unknown (or private, for non-admins)")))]
pub(super) async fn show_group_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    let id = param(&p, "group_type_id")?;
    if id == "default" {
        // Cinder's `default_group_type` is unset by default.
        return Err(ApiError::NotFound("Default group type could not be found.".into()));
    }
    let t = state.volume.group_type_get(&ctx, id).await?;
    Ok(axum::Json(json!({ "group_type": wire::group_type_view(&t, ctx.is_admin()) })))
}

/// `PUT /group_types/{id}` (admins): name, description, is_public.
#[utoipa::path(put, path = "/volume/v3/{project_id}/group_types/{group_type_id}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id")), request_body = s::GroupTypeBody, responses((status = 200, description = "Updated", body = s::GroupTypeBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown"), (status = 409, description = "Name taken")))]
pub(super) async fn update_group_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types:update")?;
    let id = param(&p, "group_type_id")?;
    state.volume.group_type_get(&ctx, id).await?;
    let change = wire::parse_group_type_update(&parse_json(&body)?)?;
    let t = state.volume.group_type_update(&ctx, id, change).await?;
    Ok(axum::Json(json!({ "group_type": wire::group_type_view(&t, true) })))
}

/// `DELETE /group_types/{id}` (admins) → 202; 400 while a group uses it.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/group_types/{group_type_id}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id")), responses((status = 202, description = "Deleted"), (status = 400, description = "In use by a group"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn delete_group_type(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    state.volume.group_type_delete(&ctx, param(&p, "group_type_id")?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /group_types/{id}/group_specs` (admins).
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id")), responses((status = 200, description = "The specs", body = s::GroupSpecs), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn list_group_specs(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types_specs")?;
    let t = state.volume.group_type_get(&ctx, param(&p, "group_type_id")?).await?;
    Ok(axum::Json(json!({ "group_specs": t.spec_map() })))
}

/// `POST /group_types/{id}/group_specs` (admins) → 202: merged in; answers what was sent.
#[utoipa::path(post, path = "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id")), request_body = s::GroupSpecs, responses((status = 202, description = "The specs sent", body = s::GroupSpecs), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn create_group_specs(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Accepted, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types_specs")?;
    let id = param(&p, "group_type_id")?;
    state.volume.group_type_get(&ctx, id).await?;
    let specs = wire::parse_group_specs(&parse_json(&body)?)?;
    state.volume.group_specs_merge(&ctx, id, specs.clone()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "group_specs": specs }))))
}

/// `GET /group_types/{id}/group_specs/{key}` (admins): `{key: value}`.
#[utoipa::path(get, path = "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id"), ("key" = String, Path, description = "Spec key")), responses((status = 200, description = "The spec"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or key")))]
pub(super) async fn show_group_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types_specs")?;
    let id = param(&p, "group_type_id")?;
    let key = param(&p, "key")?;
    let t = state.volume.group_type_get(&ctx, id).await?;
    match t.spec_map().get(key) {
        Some(v) => Ok(axum::Json(json!({ key: v }))),
        None => Err(stratus_volume::VolumeError::not_found(
            stratus_volume::Missing::GroupTypeSpec { group_type: id.to_string() },
            key,
        )
        .into()),
    }
}

/// `PUT /group_types/{id}/group_specs/{key}` (admins): the body is `{key: value}`.
#[utoipa::path(put, path = "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id"), ("key" = String, Path, description = "Spec key")), responses((status = 200, description = "The spec"), (status = 400, description = "Body and URL disagree"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type")))]
pub(super) async fn update_group_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    check_type_admin(&ctx, "group:group_types_specs")?;
    let id = param(&p, "group_type_id")?;
    state.volume.group_type_get(&ctx, id).await?;
    let (k, v) = wire::parse_group_spec_item(&parse_json(&body)?, param(&p, "key")?)?;
    state.volume.group_specs_merge(&ctx, id, [(k.clone(), v.clone())].into()).await?;
    Ok(axum::Json(json!({ k: v })))
}

/// `DELETE /group_types/{id}/group_specs/{key}` (admins) → 202.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}", tag = "group-types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_type_id" = String, Path, description = "Group type id"), ("key" = String, Path, description = "Spec key")), responses((status = 202, description = "Deleted"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or key")))]
pub(super) async fn delete_group_spec(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_TYPES)?;
    state.volume.group_spec_delete(&ctx, param(&p, "group_type_id")?, param(&p, "key")?).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn list(
    state: &AppState,
    ctx: &stratus_auth::AuthContext,
    mv: VolumeMv,
    q: &std::collections::HashMap<String, String>,
    detail: bool,
) -> Result<Json, ApiError> {
    require_mv(mv, MV_GROUPS)?;
    let all = q.get("all_tenants").is_some_and(|v| stratus_api::volume::truthy(v));
    let rows = state.volume.group_list(ctx, all).await?;
    let list_volume = q.get("list_volume").is_some_and(|v| stratus_api::volume::truthy(v));
    let mut out = Vec::with_capacity(rows.len());
    for g in &rows {
        out.push(if detail {
            let vols = if list_volume { Some(state.volume.group_volume_ids(&g.id).await?) } else { None };
            wire::group_detail(g, mv.0, vols.as_deref(), ctx.is_admin())
        } else {
            wire::group_summary(g)
        });
    }
    Ok(axum::Json(json!({ "groups": out })))
}

/// `GET /groups`: the caller's project's groups (`all_tenants`: admins, all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/groups", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Groups (short)", body = s::GroupList), (status = 404, description = "Below microversion 3.13")))]
pub(super) async fn list_groups(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, &q, false).await
}

/// `GET /groups/detail`: as the list, in full.
#[utoipa::path(get, path = "/volume/v3/{project_id}/groups/detail", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("list_volume" = Option<String>, Query, description = "3.25+: with the volume ids")), responses((status = 200, description = "Groups in full", body = s::GroupList), (status = 404, description = "Below microversion 3.13")))]
pub(super) async fn list_groups_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, &q, true).await
}

/// `POST /groups` → 202: a group of the caller's project (`groups` quota: 413).
#[utoipa::path(post, path = "/volume/v3/{project_id}/groups", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::GroupBody, responses((status = 202, description = "Created", body = s::GroupBody), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown group or volume type, or below microversion 3.13"), (status = 413, description = "Over the groups quota")))]
pub(super) async fn create_group(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Accepted, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUPS)?;
    stratus_volume::check_write(&ctx, "group:create")?;
    let c = wire::parse_group_create(&parse_json(&body)?)?;
    let g = state.volume.group_create(&ctx, c).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "group": wire::group_summary(&g) }))))
}

/// `POST /groups/action` (3.14) `create-from-src` → 202.
#[utoipa::path(post, path = "/volume/v3/{project_id}/groups/action", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 202, description = "Created", body = s::GroupBody), (status = 400, description = "Invalid body, or the source has volumes (no cloning)"), (status = 404, description = "Unknown source, or below microversion 3.14")))]
pub(super) async fn groups_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<Accepted, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUP_FROM_SRC)?;
    stratus_volume::check_write(&ctx, "group:create")?;
    let c = CreateFromSource::parse(&parse_json(&body)?)?;
    let Some(src) = c.source_group_id else {
        let id = c.group_snapshot_id.unwrap_or_default();
        return Err(ApiError::NotFound(format!("GroupSnapshot {id} could not be found.")));
    };
    let g = state.volume.group_create_from_src(&ctx, &src, c.name, c.description).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "group": wire::group_summary(&g) }))))
}

/// `GET /groups/{id}`: another project's group is 404.
#[utoipa::path(get, path = "/volume/v3/{project_id}/groups/{group_id}", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_id" = String, Path, description = "Group id"), ("list_volume" = Option<String>, Query, description = "3.25+: with the volume ids")), responses((status = 200, description = "The group", body = s::GroupBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn show_group(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUPS)?;
    let g = state.volume.group_get(&ctx, param(&p, "group_id")?).await?;
    let vols = if q.get("list_volume").is_some_and(|v| stratus_api::volume::truthy(v)) {
        Some(state.volume.group_volume_ids(&g.id).await?)
    } else {
        None
    };
    Ok(axum::Json(json!({ "group": wire::group_detail(&g, mv.0, vols.as_deref(), ctx.is_admin()) })))
}

/// `PUT /groups/{id}` → 202: name, description, add/remove volumes.
#[utoipa::path(put, path = "/volume/v3/{project_id}/groups/{group_id}", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_id" = String, Path, description = "Group id")), request_body = s::GroupBody, responses((status = 202, description = "Updated"), (status = 400, description = "Invalid body or volumes"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn update_group(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUPS)?;
    let id = param(&p, "group_id")?;
    state.volume.group_get(&ctx, id).await?;
    stratus_volume::check_write(&ctx, "group:update")?;
    let u = wire::parse_group_update(&parse_json(&body)?)?;
    state.volume.group_update(&ctx, id, u).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /groups/{id}/action`: `delete` (`delete-volumes`), `reset_status` (admins, 3.20) → 202.
#[utoipa::path(post, path = "/volume/v3/{project_id}/groups/{group_id}/action", tag = "groups", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("group_id" = String, Path, description = "Group id")), responses((status = 202, description = "Done"), (status = 400, description = "Invalid body, or volumes without delete-volumes"), (status = 403, description = "reset_status: not an admin"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn group_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_GROUPS)?;
    let id = param(&p, "group_id")?;
    state.volume.group_get(&ctx, id).await?;
    stratus_volume::check_write(&ctx, "group:delete")?;
    match GroupAction::parse(&parse_json(&body)?)? {
        GroupAction::Delete { delete_volumes } => state.volume.group_delete(&ctx, id, delete_volumes).await?,
        GroupAction::ResetStatus(status) => {
            require_mv(mv, MV_GROUP_RESET)?;
            state.volume.group_reset_status(&ctx, id, &status).await?;
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// `GET /messages`: the caller's project's messages (admins: all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/messages", tag = "messages", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Messages", body = s::MessageList), (status = 404, description = "Below microversion 3.3")))]
pub(super) async fn list_messages(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<Json, ApiError> {
    let project = scope(&ctx, &p)?;
    require_mv(mv, MV_MESSAGES)?;
    let mut rows = state.volume.message_list(&ctx).await?;
    // Newest first at every version (Cinder's default `created_at`, `id`
    // descending); from 3.5 the query may sort, page and filter.
    let no_query = std::collections::HashMap::new();
    let q = if mv.0 >= 5 { &q } else { &no_query };
    const NOT_FILTERS: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir"];
    let filters: Vec<(&String, &String)> = q.iter().filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str())).collect();
    if mv.0 >= 31 && !ctx.is_admin() {
        stratus_api::volume::reject_invalid_filters("message", filters.iter().map(|(k, _)| k.as_str()))?;
    }
    let field = |m: &stratus_db::VolumeMessageRow, k: &str| -> Option<Option<String>> {
        Some(match k {
            "id" => Some(m.id.clone()),
            "created_at" => Some(stratus_api::volume::cinder_ts(m.created_at).to_string()),
            "expires_at" | "guaranteed_until" => Some(stratus_api::volume::cinder_ts(m.expires_at).to_string()),
            "event_id" => Some(m.event_id.clone()),
            "request_id" => Some(m.request_id.clone()),
            "message_level" => Some(m.message_level.clone()),
            "resource_type" => m.resource_type.clone(),
            "resource_uuid" => m.resource_uuid.clone(),
            _ => return None,
        })
    };
    // Filters on a message column match exactly; others are ignored.
    rows.retain(|m| filters.iter().all(|(k, v)| field(m, k).is_none_or(|have| have.as_deref() == Some(v.as_str()))));
    super::paging::sort(&mut rows, q, |m, k| field(m, k).map(Option::unwrap_or_default))?;
    let (rows, next) = super::paging::page(rows, q, |m| m.id.clone())?;
    let out: Vec<Value> = rows
        .iter()
        .map(|m| wire::message_view(&state.public_url, m, &stratus_volume::user_message(&m.action_id, &m.detail_id)))
        .collect();
    let mut body = json!({ "messages": out });
    if let Some((limit, marker)) = next {
        body["messages_links"] = super::paging::next_link(&state.public_url, &project, "messages", q, limit, &marker);
    }
    Ok(axum::Json(body))
}

/// `GET /messages/{id}`: another project's message is 404.
#[utoipa::path(get, path = "/volume/v3/{project_id}/messages/{message_id}", tag = "messages", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("message_id" = String, Path, description = "Message id")), responses((status = 200, description = "The message", body = s::MessageBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn show_message(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<Json, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_MESSAGES)?;
    let m = state.volume.message_get(&ctx, param(&p, "message_id")?).await?;
    let text = stratus_volume::user_message(&m.action_id, &m.detail_id);
    Ok(axum::Json(json!({ "message": wire::message_view(&state.public_url, &m, &text) })))
}

/// `DELETE /messages/{id}` → 204.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/messages/{message_id}", tag = "messages", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("message_id" = String, Path, description = "Message id")), responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn delete_message(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    require_mv(mv, MV_MESSAGES)?;
    state.volume.message_delete(&ctx, param(&p, "message_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
