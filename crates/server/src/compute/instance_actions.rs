//! Instance actions of a server (`os-instance-actions`).

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use stratus_api::compute::views;

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions", tag = "instance actions", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "Actions, newest first", body = s::InstanceActionList), (status = 404, description = "Not found")))]
pub(super) async fn instance_action_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actions = st.compute.instance_actions(&ctx, &id).await?;
    Ok(Json(json!({"instanceActions": actions.iter().map(views::instance_action).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions/{req}", tag = "instance actions", params(("id" = String, Path, description = "Server id"), ("req" = String, Path, description = "Request id")), responses((status = 200, description = "Action with events (admins)", body = s::InstanceActionBody), (status = 404, description = "Not found")))]
pub(super) async fn instance_action_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (a, events) = st.compute.instance_action(&ctx, &id, &req).await?;
    Ok(Json(json!({"instanceAction": views::instance_action_with_events(&a, &events, ctx.is_admin())})))
}
