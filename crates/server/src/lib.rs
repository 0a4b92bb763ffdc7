//! The HTTP face of Stratus: one axum router serving Identity v3
//! (`/identity`), Compute v2.1 (`/compute`), Image v2 (`/image`) and Block
//! Storage v3 (`/volume`), with the middleware every request goes through:
//! request id, token validation, microversion negotiation, and errors mapped
//! to OpenStack fault bodies in one place ([`error`]).

pub mod admin;
pub mod compute;
pub mod error;
pub mod identity;
pub mod image;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod volume;

#[cfg(test)]
mod auth_matrix_tests;
#[cfg(test)]
mod fuzz_regressions;
#[cfg(test)]
mod policy_matrix_tests;

use axum::Router;
use std::sync::Arc;
use stratus_auth::{Identity, TokenValidator};
use stratus_bus::Bus;
use stratus_controller::compute_api::ComputeApi;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The built-in identity service (Identity API, bootstrap users).
    pub identity: Identity,
    /// Where every API request's token is validated: the built-in identity,
    /// or the operator's Keystone (`--keystone-url`).
    pub tokens: TokenValidator,
    /// Compute intents.
    pub compute: ComputeApi,
    /// The bus (wake hints).
    pub bus: Arc<dyn Bus>,
    /// Externally visible base URL, e.g. `http://127.0.0.1:8774` (catalog, links).
    pub public_url: String,
    /// Block storage: volumes and attachments (Block Storage v3).
    pub volume: Arc<stratus_volume::VolumeService>,
    /// Images: records, bytes, visibility (Image v2).
    pub images: Arc<stratus_image::ImageService>,
    /// The metrics `/metrics` serves and the request middleware counts into.
    pub metrics: stratus_metrics::Metrics,
}

/// The whole API router, with the default [`limits::RequestLimits`].
pub fn router(state: AppState) -> Router {
    router_with_limits(state, limits::RequestLimits::default())
}

/// The whole API router with these request bounds.
pub fn router_with_limits(state: AppState, bounds: limits::RequestLimits) -> Router {
    // With an external Keystone the built-in Identity API is not served:
    // its paths answer 404 naming the Keystone (see `identity::elsewhere`).
    let identity = match state.tokens.keystone() {
        None => identity::routes(state.clone()),
        Some(k) => identity::elsewhere(k.url()),
    };
    let routed = Router::new()
        .merge(admin::routes(state.clone()))
        .merge(identity)
        .merge(compute::routes(state.clone()))
        .merge(image::routes(state.clone()))
        .merge(volume::routes(state.clone()))
        .merge(metrics::routes(state.metrics.clone()))
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn(limits::enforce(bounds)))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::record));
    // Outside the router: compute URLs with a project id are rewritten before routing.
    let rewritten = tower::Layer::layer(&axum::middleware::from_fn(middleware::compute_project_prefix), routed);
    Router::new().fallback_service(rewritten)
}
