//! Host aggregates (`/os-aggregates`, admin only): integer ids, and
//! `uuid` from 2.41, naive timestamps, `deleted` and `deleted_at` as Nova
//! shows them; every answer is 200, as Nova's.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{parse_aggregate_action, parse_aggregate_create, parse_aggregate_update, views};

/// A body parsed with `parse`, or why not (handed to the service, which
/// checks the policy first).
fn body<T>(
    raw: &Bytes,
    parse: impl FnOnce(&Value) -> Result<T, stratus_api::compute::RequestError>,
) -> Result<T, String> {
    parse_json::<Value>(raw).and_then(|v| Ok(parse(&v)?)).map_err(|e| e.to_string())
}

#[utoipa::path(get, path = "/compute/v2.1/os-aggregates", tag = "aggregates", responses((status = 200, description = "Every aggregate with its hosts and metadata (admin)", body = s::AggregateList), (status = 403, description = "Not an admin")))]
pub(super) async fn aggregate_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
) -> Result<Json<Value>, ApiError> {
    let all = st.compute.aggregates(&ctx).await?;
    Ok(Json(json!({"aggregates": all.iter().map(|a| views::aggregate(a, true, mv)).collect::<Vec<_>>()})))
}

#[utoipa::path(post, path = "/compute/v2.1/os-aggregates", tag = "aggregates", request_body(content = s::AggregateCreateBody, description = "Name and optional availability zone"), responses((status = 200, description = "The new aggregate (no hosts or metadata keys, as Nova)", body = s::AggregateBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 409, description = "The name is taken")))]
pub(super) async fn aggregate_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.create_aggregate(&ctx, body(&raw, parse_aggregate_create)).await?;
    Ok(Json(json!({"aggregate": views::aggregate(&a, false, mv)})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-aggregates/{id}", tag = "aggregates", params(("id" = String, Path, description = "Aggregate id (an integer)")), responses((status = 200, description = "The aggregate with its hosts and metadata", body = s::AggregateBody), (status = 400, description = "The id is not an integer"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown aggregate")))]
pub(super) async fn aggregate_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.aggregate(&ctx, &id).await?;
    Ok(Json(json!({"aggregate": views::aggregate(&a, true, mv)})))
}

#[utoipa::path(put, path = "/compute/v2.1/os-aggregates/{id}", tag = "aggregates", params(("id" = String, Path, description = "Aggregate id (an integer)")), request_body(content = s::AggregateUpdateBody, description = "New name and/or availability zone"), responses((status = 200, description = "The aggregate as it now is", body = s::AggregateBody), (status = 400, description = "Invalid body, or a zone change Nova refuses"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown aggregate"), (status = 409, description = "The name is taken")))]
pub(super) async fn aggregate_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.update_aggregate(&ctx, &id, body(&raw, parse_aggregate_update)).await?;
    Ok(Json(json!({"aggregate": views::aggregate(&a, true, mv)})))
}

#[utoipa::path(delete, path = "/compute/v2.1/os-aggregates/{id}", tag = "aggregates", params(("id" = String, Path, description = "Aggregate id (an integer)")), responses((status = 200, description = "Deleted (200 with no body, as Nova)"), (status = 400, description = "It still has hosts"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown aggregate")))]
pub(super) async fn aggregate_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<(), ApiError> {
    st.compute.delete_aggregate(&ctx, &id).await?;
    Ok(())
}

#[utoipa::path(post, path = "/compute/v2.1/os-aggregates/{id}/action", tag = "aggregates", params(("id" = String, Path, description = "Aggregate id (an integer)")), request_body(content = s::AggregateAction, description = "add_host, remove_host or set_metadata"), responses((status = 200, description = "The aggregate as it now is", body = s::AggregateBody), (status = 400, description = "Invalid body, or a zone change Nova refuses"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown aggregate or host, or a host not in it"), (status = 409, description = "The host is already in it, or in another zone")))]
pub(super) async fn aggregate_action(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.aggregate_action(&ctx, &id, body(&raw, parse_aggregate_action)).await?;
    Ok(Json(json!({"aggregate": views::aggregate(&a, true, mv)})))
}
