//! Instance actions of a server (`os-instance-actions`): deleted servers'
//! too from 2.21; paging and `changes-since` from 2.58, `changes-before`
//! from 2.66.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use stratus_api::compute::paging::{ChangesQuery, next_link};
use stratus_api::compute::{parse_query, views};

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions", tag = "instance actions", params(("id" = String, Path, description = "Server id (a deleted one from 2.21)"), ("limit" = Option<u32>, Query, description = "Page size (2.58)"), ("marker" = Option<String>, Query, description = "Last request id of the previous page (2.58)"), ("changes-since" = Option<String>, Query, description = "Updated at or after (2.58)"), ("changes-before" = Option<String>, Query, description = "Updated at or before (2.66)")), responses((status = 200, description = "Actions, newest first", body = s::InstanceActionList), (status = 400, description = "Bad limit, marker, time or parameter (2.58)"), (status = 404, description = "Not found")))]
pub(super) async fn instance_action_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = ChangesQuery::parse_actions(q.as_deref(), mv)?;
    let actions = st.compute.instance_actions(&ctx, &id, mv.at_least(21)).await?;
    let mut body = json!({});
    if mv.at_least(58) {
        let window: Vec<_> = actions.into_iter().filter(|a| query.admits(a.updated_at)).collect();
        let page = query.page.apply(window, |a| a.request_id.clone())?;
        body["instanceActions"] = page.iter().map(|a| views::instance_action(a, mv)).collect::<Vec<_>>().into();
        if query.page.is_full(page.len())
            && let Some(last) = page.last()
        {
            let path = format!("servers/{id}/os-instance-actions");
            body["links"] = next_link(&st.public_url, &path, &parse_query(q.as_deref()), &last.request_id);
        }
    } else {
        body["instanceActions"] = actions.iter().map(|a| views::instance_action(a, mv)).collect::<Vec<_>>().into();
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions/{req}", tag = "instance actions", params(("id" = String, Path, description = "Server id (a deleted one from 2.21)"), ("req" = String, Path, description = "Request id")), responses((status = 200, description = "Action with events (admins; everyone from 2.51)", body = s::InstanceActionBody), (status = 404, description = "Not found")))]
pub(super) async fn instance_action_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (a, events) = st.compute.instance_action(&ctx, &id, &req, mv.at_least(21)).await?;
    Ok(Json(json!({"instanceAction": views::instance_action_with_events(&a, &events, ctx.is_admin(), mv)})))
}
