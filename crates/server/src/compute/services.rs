//! Compute services (`os-services`): list, and the legacy (below 2.53)
//! enable/disable/force-down, which the compute service validates and logs.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::paging::only_params_from;
use stratus_api::compute::views::{self, ServiceChangeView};
use stratus_api::compute::{UpdateServiceRequest, parse_query, query_value};
use stratus_controller::compute_api::{HostChange, ServiceChange, ServiceUpdate};

#[utoipa::path(get, path = "/compute/v2.1/os-services", tag = "services", params(("host" = Option<String>, Query, description = "Host"), ("binary" = Option<String>, Query, description = "Binary")), responses((status = 200, description = "Compute services with state up/down", body = s::ComputeServiceList), (status = 403, description = "Admins only")))]
pub(super) async fn service_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["host", "binary"])?;
    let q = parse_query(q.as_deref());
    let list = st.compute.service_list(&ctx, query_value(&q, "host"), query_value(&q, "binary")).await?;
    Ok(Json(json!({"services": list.iter().map(|s| views::service(&s.service, s.up, mv)).collect::<Vec<_>>()})))
}

/// Service updates: below 2.53 the legacy actions (`enable`, `disable`,
/// `disable-log-reason`, and from 2.11 `force-down`) naming the service in
/// the body; from 2.53 the service's UUID in the path and the change in the
/// body, answered with the whole service.
#[utoipa::path(put, path = "/compute/v2.1/os-services/{action}", tag = "services", params(("action" = String, Path, description = "Before 2.53: enable | disable | disable-log-reason | force-down (2.11); from 2.53: the service UUID")), request_body = UpdateServiceRequest, responses((status = 200, description = "Updated", body = s::ComputeServiceUpdated), (status = 400, description = "Bad body or (2.53) not a UUID"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown service")))]
pub(super) async fn service_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if mv.at_least(53) {
        let change = parse_json::<UpdateServiceRequest>(&body).map_err(|e| e.to_string()).and_then(service_change);
        let s = st.compute.update_service_by_id(&ctx, &action, change).await?;
        return Ok(Json(json!({"service": views::service(&s.service, s.up, mv)})));
    }
    let update = parse_json::<UpdateServiceRequest>(&body)
        .map(|req| ServiceUpdate {
            host: req.host,
            binary: req.binary,
            disabled_reason: req.disabled_reason,
            forced_down: req.forced_down,
        })
        .map_err(|e| e.to_string());
    let done = st.compute.update_service(&ctx, &action, mv.at_least(11), update).await?;
    let change = match &done.change {
        HostChange::Enable => ServiceChangeView::Enabled,
        HostChange::Disable { reason } => ServiceChangeView::Disabled(reason.as_deref()),
        HostChange::ForceDown(f) => ServiceChangeView::ForcedDown(*f),
    };
    Ok(Json(views::service_updated(&done.host, &done.binary, change)))
}

/// A 2.53 update body as Nova's schema takes it: `status` `enabled` or
/// `disabled`, `disabled_reason` 1-255 characters, `forced_down`; nothing else.
fn service_change(req: UpdateServiceRequest) -> Result<ServiceChange, String> {
    if req.host.is_some() || req.binary.is_some() {
        let k = if req.host.is_some() { "host" } else { "binary" };
        return Err(format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let enabled = match req.status.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(other) => {
            return Err(format!(
                "Invalid input for field/attribute status. Value: {other}. '{other}' is not one of ['enabled', 'disabled']"
            ));
        }
    };
    if let Some(r) = &req.disabled_reason
        && (r.is_empty() || r.chars().count() > 255)
    {
        return Err("Invalid input for field/attribute disabled_reason: it must be 1 to 255 characters".into());
    }
    Ok(ServiceChange { enabled, disabled_reason: req.disabled_reason, forced_down: req.forced_down })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> UpdateServiceRequest {
        serde_json::from_value(v).expect("shape")
    }

    /// Nova's 2.53 service update schema: `status` enabled/disabled,
    /// `disabled_reason` 1-255 characters, `forced_down`; no `host` or `binary`.
    #[test]
    fn the_2_53_update_body_follows_novas_schema() {
        let ok = service_change(req(json!({"status": "disabled", "disabled_reason": "maint", "forced_down": true})));
        assert_eq!(
            ok,
            Ok(ServiceChange { enabled: Some(false), disabled_reason: Some("maint".into()), forced_down: Some(true) })
        );
        assert!(service_change(req(json!({"status": "off"}))).is_err());
        assert!(service_change(req(json!({"status": "enabled", "host": "h1"}))).is_err());
        assert!(service_change(req(json!({"disabled_reason": ""}))).is_err());
        assert_eq!(service_change(req(json!({}))), Ok(ServiceChange::default()));
    }
}
