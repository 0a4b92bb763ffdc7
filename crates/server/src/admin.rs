//! Stratus's own admin endpoints (not OpenStack APIs): what a dead or
//! returning host still holds, and the storage cleanups waiting to be done,
//! so an operator sees them without reading the database.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The OpenAPI document of Stratus's admin endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus admin API",
        version = "1",
        description = "Stratus's own admin endpoints (not an OpenStack API)"
    ),
    paths(zombies, cleanups, crate::openapi::stratus_openapi)
)]
pub struct AdminDoc;

/// Routes under `/stratus/v1`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/stratus/v1/zombies", get(zombies))
        .route("/stratus/v1/storage-cleanups", get(cleanups))
        .route("/stratus/openapi.json", get(crate::openapi::stratus_openapi))
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .with_state(state)
}

fn admin_only(ctx: &stratus_auth::AuthContext) -> Result<(), ApiError> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("Only admins may read Stratus's admin endpoints.".into()))
    }
}

/// `GET /stratus/v1/zombies`: servers deleted while their VM may still run
/// on a host, holding that host's capacity until it reports the VM gone.
#[utoipa::path(get, path = "/stratus/v1/zombies", tag = "admin", responses((status = 200, description = "Zombies", body = crate::openapi::schemas::ZombieList), (status = 403, description = "Admins only")))]
async fn zombies(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    admin_only(&ctx)?;
    let list: Vec<Value> = st
        .compute
        .zombie_list()
        .await?
        .into_iter()
        .map(|z| json!({"server_id": z.server_id, "host": z.host, "vcpus": z.vcpus, "ram_mb": z.ram_mb, "disk_gb": z.disk_gb, "reason": z.reason, "created_at": stratus_db::ts(z.created_at)}))
        .collect();
    Ok(Json(json!({"zombies": list})))
}

/// `GET /stratus/v1/storage-cleanups`: volume deletes and fence lifts that
/// could not be done yet, with their attempts and last error.
#[utoipa::path(get, path = "/stratus/v1/storage-cleanups", tag = "admin", responses((status = 200, description = "Pending storage cleanups", body = crate::openapi::schemas::StorageCleanupList), (status = 403, description = "Admins only")))]
async fn cleanups(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    admin_only(&ctx)?;
    let list: Vec<Value> = st.volume.pending_cleanups().await?.iter().map(stratus_api::volume::cleanup_view).collect();
    Ok(Json(json!({"storage_cleanups": list})))
}
