//! A server's migrations (`/servers/{id}/migrations`, 2.23): Nova lists
//! only its in-progress live migrations there, and Stratus offers no live
//! migration, so the list is always empty and every migration id a 404.
//! Also a server's NUMA topology (`/servers/{id}/topology`, 2.78): Stratus
//! places no server on NUMA nodes, which Nova shows as no nodes.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/migrations", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's in-progress live migrations (admin, 2.23; always none: live migration is not offered)", body = s::ServerMigrationList), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not an admin"), (status = 404, description = "No such server, or below 2.23")))]
pub(super) async fn server_migration_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.compute.live_migrations(&ctx, &id).await?;
    Ok(Json(json!({"migrations": []})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/migrations/{migration_id}", tag = "servers", params(("id" = String, Path, description = "Server id"), ("migration_id" = String, Path, description = "Migration id")), responses((status = 200, description = "One in-progress live migration (never, here)", body = s::ServerMigrationList), (status = 403, description = "Not an admin"), (status = 404, description = "No such server or in-progress live migration, or below 2.23")))]
pub(super) async fn server_migration_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, migration_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    st.compute.live_migrations(&ctx, &id).await?;
    Err(ApiError::NotFound(format!("Migration {migration_id} not found for instance {id}")))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/topology", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's NUMA topology (2.78; none: Stratus does not pin servers to NUMA nodes)", body = s::ServerTopology), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not allowed"), (status = 404, description = "No such server, or below 2.78")))]
pub(super) async fn server_topology(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.compute.get_visible(&ctx, &id).await?;
    Ok(Json(json!({"nodes": [], "pagesize_kb": null})))
}
