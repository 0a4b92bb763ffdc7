//! (being written)

use crate::AppState;
use axum::Router;

/// Routes of this API.
pub fn routes(_state: AppState) -> Router {
    Router::new()
}
