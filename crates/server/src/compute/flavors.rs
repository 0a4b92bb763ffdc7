//! Flavors: list (index and detail) and show.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use stratus_api::compute::views;

#[utoipa::path(get, path = "/compute/v2.1/flavors", tag = "flavors", responses((status = 200, description = "Flavors", body = s::FlavorList)))]
pub(super) async fn flavor_list(State(st): State<AppState>, _a: Auth) -> Result<Json<Value>, ApiError> {
    let fl = st.compute.flavor_list().await?;
    Ok(Json(json!({"flavors": fl.iter().map(|f| views::flavor(&st.public_url, f, false)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/detail", tag = "flavors", responses((status = 200, description = "Flavors with details", body = s::FlavorList)))]
pub(super) async fn flavor_detail(State(st): State<AppState>, _a: Auth) -> Result<Json<Value>, ApiError> {
    let fl = st.compute.flavor_list().await?;
    Ok(Json(json!({"flavors": fl.iter().map(|f| views::flavor(&st.public_url, f, true)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 200, description = "A flavor", body = s::FlavorBody), (status = 404, description = "Unknown flavor")))]
pub(super) async fn flavor_show(
    State(st): State<AppState>,
    _a: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let f = st.compute.flavor_get(&id).await?;
    Ok(Json(json!({"flavor": views::flavor(&st.public_url, &f, true)})))
}
