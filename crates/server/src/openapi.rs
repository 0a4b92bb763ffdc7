//! Serves the OpenAPI document of the Compute API, generated from the code
//! (handler annotations and request types), so schemathesis and client
//! authors read what the server actually does.

use axum::Json;
use utoipa::OpenApi;

/// `GET /compute/openapi.json`.
pub async fn compute_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::compute::ComputeDoc::openapi())
}
