//! Quota sets (`/os-quota-sets/{project_id}`, `/defaults`, `/detail`) and
//! quota classes (`/os-quota-class-sets/{id}`), as Nova's controllers.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use stratus_api::compute::paging::only_params_from;
use stratus_api::compute::{QuotaBody, QuotaUpdate, parse_query, parse_quota_body, views};

/// The `user_id` query parameter (a user's limits inside the project).
fn user_id(q: Option<&str>) -> Option<String> {
    let q = parse_query(q);
    stratus_api::compute::query_value(&q, "user_id").map(str::to_string)
}

/// The body parsed, or why not, for the service to answer after its policy check.
fn quota_body(body: &Bytes, kind: QuotaBody, mv: stratus_api::Microversion) -> Result<QuotaUpdate, String> {
    parse_json::<Value>(body).and_then(|v| Ok(parse_quota_body(&v, kind, mv)?)).map_err(|e| e.to_string())
}

#[utoipa::path(get, path = "/compute/v2.1/os-quota-sets/{project_id}", tag = "quota sets", params(("project_id" = String, Path, description = "Project id"), ("user_id" = Option<String>, Query, description = "A user's limits in the project")), responses((status = 200, description = "The limits that apply", body = s::QuotaSet), (status = 403, description = "Another project's set without admin")))]
pub(super) async fn quota_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    let user = user_id(q.as_deref());
    let l = st.compute.quota_set_show(&ctx, &project_id, user.as_deref()).await?;
    Ok(Json(views::quota_set(Some(&project_id), &l, mv)))
}

#[utoipa::path(get, path = "/compute/v2.1/os-quota-sets/{project_id}/detail", tag = "quota sets", params(("project_id" = String, Path, description = "Project id"), ("user_id" = Option<String>, Query, description = "A user's limits and usage in the project")), responses((status = 200, description = "Limits with usage", body = s::QuotaSetDetail), (status = 403, description = "Another project's set without admin")))]
pub(super) async fn quota_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    let user = user_id(q.as_deref());
    let d = st.compute.quota_set_detail(&ctx, &project_id, user.as_deref()).await?;
    Ok(Json(views::quota_set_detail(&project_id, &d.limits, &d.in_use, mv)))
}

#[utoipa::path(get, path = "/compute/v2.1/os-quota-sets/{project_id}/defaults", tag = "quota sets", params(("project_id" = String, Path, description = "Project id (echoed as id)")), responses((status = 200, description = "The default limits", body = s::QuotaSet)))]
pub(super) async fn quota_defaults(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let l = st.compute.quota_set_defaults(&ctx).await?;
    Ok(Json(views::quota_set(Some(&project_id), &l, mv)))
}

#[utoipa::path(put, path = "/compute/v2.1/os-quota-sets/{project_id}", tag = "quota sets", params(("project_id" = String, Path, description = "Project id"), ("user_id" = Option<String>, Query, description = "Set a user's limits in the project")), responses((status = 200, description = "The limits now applying (no id)", body = s::QuotaSetUpdated), (status = 400, description = "Invalid body, or a limit below usage without force"), (status = 403, description = "Not an admin")))]
pub(super) async fn quota_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    let user = user_id(q.as_deref());
    let update = quota_body(&body, QuotaBody::Set, mv);
    let l = st.compute.quota_set_update(&ctx, &project_id, user.as_deref(), update).await?;
    Ok(Json(views::quota_set(None, &l, mv)))
}

#[utoipa::path(delete, path = "/compute/v2.1/os-quota-sets/{project_id}", tag = "quota sets", params(("project_id" = String, Path, description = "Project id"), ("user_id" = Option<String>, Query, description = "Revert only this user's limits")), responses((status = 202, description = "Back to the defaults"), (status = 403, description = "Not an admin")))]
pub(super) async fn quota_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    let user = user_id(q.as_deref());
    st.compute.quota_set_delete(&ctx, &project_id, user.as_deref()).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/compute/v2.1/os-quota-class-sets/{id}", tag = "quota class sets", params(("id" = String, Path, description = "Quota class (`default`: every project's defaults)")), responses((status = 200, description = "The class's limits", body = s::QuotaClassSet), (status = 403, description = "Not an admin")))]
pub(super) async fn quota_class_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let l = st.compute.quota_class_show(&ctx, &id).await?;
    Ok(Json(views::quota_class_set(Some(&id), &l, mv)))
}

#[utoipa::path(put, path = "/compute/v2.1/os-quota-class-sets/{id}", tag = "quota class sets", params(("id" = String, Path, description = "Quota class (`default`: every project's defaults)")), responses((status = 200, description = "The class's limits (no id)", body = s::QuotaClassSetUpdated), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin")))]
pub(super) async fn quota_class_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let update = quota_body(&body, QuotaBody::ClassSet, mv);
    let l = st.compute.quota_class_update(&ctx, &id, update).await?;
    Ok(Json(views::quota_class_set(None, &l, mv)))
}
