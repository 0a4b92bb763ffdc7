//! Limits with counted usage, and the one availability zone.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};
use stratus_api::compute::{parse_query, query_value, views};

#[utoipa::path(get, path = "/compute/v2.1/limits", tag = "limits", params(("tenant_id" = Option<String>, Query, description = "Another project (admins)")), responses((status = 200, description = "Absolute limits and counted usage", body = s::ComputeLimits), (status = 403, description = "Another project's limits without admin")))]
pub(super) async fn limits(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(q.as_deref());
    let l = st.compute.limits(&ctx, query_value(&q, "tenant_id")).await?;
    Ok(Json(views::limits(&l.limits, &l.usage)))
}

#[utoipa::path(get, path = "/compute/v2.1/os-availability-zone", tag = "availability zones", responses((status = 200, description = "The one zone", body = s::AvailabilityZones)))]
pub(super) async fn availability_zones(_a: Auth) -> Json<Value> {
    Json(json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}]}))
}
