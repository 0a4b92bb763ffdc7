//! Flavors, as Nova's `flavors`, `flavor_manage`, `flavor_access` and
//! `flavors_extraspecs` controllers: list (index and detail, filtered and
//! paged) and show; create and delete (admin); a private flavor's access
//! list and its `addTenantAccess` / `removeTenantAccess` actions (admin);
//! extra specs (read by whoever sees the flavor, written by admins).

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stratus_api::Microversion;
use stratus_api::compute::{
    FlavorListQuery, parse_extra_spec_item, parse_extra_specs_body, parse_flavor_action, parse_flavor_create,
    parse_flavor_update, views,
};
use stratus_db::FlavorRow;

/// The extra specs a detailed flavor view carries from 2.61: only for a
/// caller Nova's `os-flavor-extra-specs:index` lets read them (anyone who
/// sees the flavor).
async fn specs_for(
    st: &AppState,
    ctx: &stratus_auth::AuthContext,
    f: &FlavorRow,
    mv: Microversion,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    if !mv.at_least(61) {
        return Ok(None);
    }
    match st.compute.flavor_extra_specs(ctx, &f.id).await {
        Ok(specs) => Ok(Some(specs)),
        Err(stratus_controller::compute_api::ComputeError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One flavor in full at `mv`.
async fn full(
    st: &AppState,
    ctx: &stratus_auth::AuthContext,
    f: &FlavorRow,
    mv: Microversion,
) -> Result<Value, ApiError> {
    let specs = specs_for(st, ctx, f, mv).await?;
    Ok(views::flavor(&st.public_url, f, true, mv, specs.as_ref()))
}

/// A list body: the page and, when it is full, `flavors_links`.
async fn list(
    st: AppState,
    ctx: stratus_auth::AuthContext,
    q: Option<String>,
    detail: bool,
    mv: Microversion,
) -> Result<Value, ApiError> {
    // Nova's flavor list query schema is strict from 2.75.
    let mut allowed = vec!["is_public", "minRam", "minDisk", "sort_key", "sort_dir", "limit", "marker"];
    if mv.at_least(102) {
        allowed.push("name");
    }
    stratus_api::compute::paging::only_params_from(q.as_deref(), mv, 75, &allowed)?;
    let mut q = FlavorListQuery::parse(q.as_deref())?;
    // The name filter is Nova's from 2.102.
    if !mv.at_least(102) {
        q.name = None;
    }
    let params = q.params.clone();
    let page = st.compute.flavor_list(&ctx, q).await?;
    let mut list: Vec<Value> = Vec::with_capacity(page.flavors.len());
    for f in &page.flavors {
        list.push(if detail {
            full(&st, &ctx, f, mv).await?
        } else {
            views::flavor(&st.public_url, f, false, mv, None)
        });
    }
    let mut body = json!({"flavors": list});
    let last = page.flavors.last().map(|f| f.id.as_str());
    if let Some(l) = views::flavors_links(&st.public_url, detail, &params, last, page.flavors.len(), page.limit) {
        body["flavors_links"] = l;
    }
    Ok(body)
}

#[utoipa::path(get, path = "/compute/v2.1/flavors", tag = "flavors", params(("minRam" = Option<i64>, Query, description = "At least this much RAM (MiB)"), ("minDisk" = Option<i64>, Query, description = "At least this much root disk (GiB)"), ("is_public" = Option<String>, Query, description = "Admins: true (default), false or none (all)"), ("sort_key" = Option<String>, Query, description = "Nova's flavor column, default flavorid"), ("sort_dir" = Option<String>, Query, description = "asc or desc"), ("limit" = Option<i64>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last flavor id of the previous page")), responses((status = 200, description = "Flavors (id, name, links)", body = s::FlavorList), (status = 400, description = "Bad filter or unknown marker")))]
pub(super) async fn flavor_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(list(st, ctx, q, false, mv).await?))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/detail", tag = "flavors", params(("minRam" = Option<i64>, Query, description = "At least this much RAM (MiB)"), ("minDisk" = Option<i64>, Query, description = "At least this much root disk (GiB)"), ("is_public" = Option<String>, Query, description = "Admins: true (default), false or none (all)"), ("sort_key" = Option<String>, Query, description = "Nova's flavor column, default flavorid"), ("sort_dir" = Option<String>, Query, description = "asc or desc"), ("limit" = Option<i64>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last flavor id of the previous page")), responses((status = 200, description = "Flavors with details", body = s::FlavorList), (status = 400, description = "Bad filter or unknown marker")))]
pub(super) async fn flavor_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(list(st, ctx, q, true, mv).await?))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 200, description = "A flavor", body = s::FlavorBody), (status = 404, description = "Unknown flavor, or another project's private one")))]
pub(super) async fn flavor_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let f = st.compute.flavor_get(&ctx, &id).await?;
    Ok(Json(json!({"flavor": full(&st, &ctx, &f, mv).await?})))
}

#[utoipa::path(post, path = "/compute/v2.1/flavors", tag = "flavors", request_body = s::FlavorCreateBody, responses((status = 200, description = "Created; the flavor in detail", body = s::FlavorBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 409, description = "A flavor with this id or name exists")))]
pub(super) async fn flavor_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req = parse_json::<Value>(&body)
        .and_then(|v| Ok(parse_flavor_create(&v)?))
        .map_err(|e| e.to_string())
        .and_then(|r| {
            // A description is Nova's from 2.55 on.
            if r.description.is_some() && !mv.at_least(55) {
                return Err("Additional properties are not allowed ('description' was unexpected)".to_string());
            }
            Ok(r)
        });
    let f = st.compute.flavor_create(&ctx, req).await?;
    Ok(Json(json!({"flavor": full(&st, &ctx, &f, mv).await?})))
}

#[utoipa::path(put, path = "/compute/v2.1/flavors/{id}", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), request_body = s::FlavorUpdateBody, responses((status = 200, description = "The flavor with its new description (2.55)", body = s::FlavorBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor, or below 2.55")))]
pub(super) async fn flavor_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let d = parse_json::<Value>(&body).and_then(|v| Ok(parse_flavor_update(&v)?)).map_err(|e| e.to_string());
    let f = st.compute.flavor_update(&ctx, &id, d).await?;
    Ok(Json(json!({"flavor": full(&st, &ctx, &f, mv).await?})))
}

#[utoipa::path(delete, path = "/compute/v2.1/flavors/{id}", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 202, description = "Deleted (servers keep their copy of its sizes)"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor")))]
pub(super) async fn flavor_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.compute.flavor_delete(&ctx, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}/os-flavor-access", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 200, description = "The projects the private flavor is shared with", body = s::FlavorAccessList), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor, or a public one")))]
pub(super) async fn flavor_access_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let projects = st.compute.flavor_access_list(&ctx, &id).await?;
    Ok(Json(views::flavor_access(&id, &projects)))
}

#[utoipa::path(post, path = "/compute/v2.1/flavors/{id}/action", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), request_body(content = s::FlavorAction, description = "addTenantAccess or removeTenantAccess"), responses((status = 200, description = "The access list as it now is", body = s::FlavorAccessList), (status = 400, description = "Invalid body or unknown project"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor, or no such access to remove"), (status = 409, description = "Already shared, or a public flavor (2.7+)")))]
pub(super) async fn flavor_action(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let change = parse_json::<Value>(&body).and_then(|v| Ok(parse_flavor_action(&v)?)).map_err(|e| e.to_string());
    let projects = st.compute.flavor_access_change(&ctx, &id, change, mv).await?;
    Ok(Json(views::flavor_access(&id, &projects)))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}/os-extra_specs", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 200, description = "All extra specs", body = s::FlavorExtraSpecs), (status = 404, description = "Unknown flavor, or another project's private one")))]
pub(super) async fn extra_specs_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let specs = st.compute.flavor_extra_specs(&ctx, &id).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

#[utoipa::path(post, path = "/compute/v2.1/flavors/{id}/os-extra_specs", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), request_body = s::FlavorExtraSpecs, responses((status = 200, description = "The extra specs set (others kept)", body = s::FlavorExtraSpecs), (status = 400, description = "Invalid body, or (2.86) an extra spec Nova's registry refuses"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor")))]
pub(super) async fn extra_specs_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let specs = parse_json::<Value>(&body).and_then(|v| Ok(parse_extra_specs_body(&v, mv)?)).map_err(|e| e.to_string());
    let set = st.compute.flavor_extra_specs_create(&ctx, &id, specs).await?;
    Ok(Json(json!({"extra_specs": set})))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", tag = "flavors", params(("id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Extra spec key")), responses((status = 200, description = "One extra spec", body = s::FlavorExtraSpecItem), (status = 404, description = "Unknown flavor or key")))]
pub(super) async fn extra_spec_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = st.compute.flavor_extra_spec(&ctx, &id, &key).await?;
    Ok(Json(json!({ key: v })))
}

#[utoipa::path(put, path = "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", tag = "flavors", params(("id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Extra spec key")), request_body = s::FlavorExtraSpecItem, responses((status = 200, description = "The extra spec as set", body = s::FlavorExtraSpecItem), (status = 400, description = "Invalid body, its key is not the URL's, or (2.86) an extra spec Nova's registry refuses"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor")))]
pub(super) async fn extra_spec_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value =
        parse_json::<Value>(&body).and_then(|v| Ok(parse_extra_spec_item(&v, &key, mv)?)).map_err(|e| e.to_string());
    let v = st.compute.flavor_extra_spec_update(&ctx, &id, &key, value).await?;
    Ok(Json(json!({ key: v })))
}

#[utoipa::path(delete, path = "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", tag = "flavors", params(("id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Extra spec key")), responses((status = 200, description = "Removed (Nova answers 200 with no body)"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown flavor or key")))]
pub(super) async fn extra_spec_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.compute.flavor_extra_spec_delete(&ctx, &id, &key).await?;
    Ok(StatusCode::OK)
}
