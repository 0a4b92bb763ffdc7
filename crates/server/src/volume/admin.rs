//! What Cinder tells about itself: availability zones and extensions (any
//! user), and for admins its services, hosts, pools and backend
//! capabilities. Stratus's block storage service runs inside the Stratus
//! process (one scheduler and one volume backend), so these documents
//! describe that one backend; they are read-only: the volume service cannot
//! be disabled, frozen or failed over on its own.

use super::{Params, Q, VolumeMv, param, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::collections::HashMap;
use stratus_api::volume::cinder_ts;
use stratus_volume::{ListFilter, check_type_admin};

/// The host the services run on, as Cinder names a service host.
const SERVICE_HOST: &str = "stratus";

/// `host@backend`, the volume service's host (`host@backend#pool` without the pool).
fn backend_host(state: &AppState) -> String {
    let attr = state.volume.host_attr();
    attr.split_once('#').map_or(attr.clone(), |(h, _)| h.to_string())
}

/// The pool name Cinder shows (`host@backend#pool`).
fn pool_name(state: &AppState) -> String {
    state.volume.host_attr()
}

/// `(binary, host)` of each service, scheduler first.
fn services(state: &AppState) -> [(&'static str, String); 2] {
    [("cinder-scheduler", SERVICE_HOST.to_string()), ("cinder-volume", backend_host(state))]
}

/// `GET /os-availability-zone`: the one zone volumes are created in.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-availability-zone", tag = "availability zones", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Availability zones", body = s::VolumeAzList), (status = 403, description = "Another project in the URL")))]
pub(super) async fn availability_zones(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let zone = &state.volume.config().availability_zone;
    Ok(axum::Json(json!({"availabilityZoneInfo": [{"zoneName": zone, "zoneState": {"available": true}}]})))
}

/// The extensions served, as Cinder names them (`alias`, `name`).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("os-availability-zone", "AvailabilityZones", "Describe availability zones."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-services", "Services", "Services support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
    ("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
    ("capabilities", "Capabilities", "Capabilities support."),
];

/// `GET /extensions`: the optional parts of Cinder's API this cloud serves.
#[utoipa::path(get, path = "/volume/v3/{project_id}/extensions", tag = "extensions", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Extensions", body = s::VolumeExtensionList), (status = 403, description = "Another project in the URL")))]
pub(super) async fn extensions(Auth(ctx): Auth, Path(p): Params) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let out: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, description)| {
            json!({"alias": alias, "name": name, "description": description,
                   "updated": "2023-08-31T00:00:00+00:00", "links": []})
        })
        .collect();
    Ok(axum::Json(json!({ "extensions": out })))
}

/// `GET /os-services` (admins): the scheduler and the volume backend,
/// filtered by `host` (with or without `@backend`) and `binary`.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-services", tag = "services", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("host" = Option<String>, Query, description = "Host (`host` or `host@backend`)"), ("binary" = Option<String>, Query, description = "Binary")), responses((status = 200, description = "Services", body = s::VolumeServiceList), (status = 403, description = "Not an admin")))]
pub(super) async fn list_services(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:services:index")?;
    let now = cinder_ts(chrono::Utc::now());
    let zone = &state.volume.config().availability_zone;
    let out: Vec<Value> = services(&state)
        .into_iter()
        .filter(|(binary, host)| {
            let host_ok = q.get("host").is_none_or(|h| h == host || host.split('@').next() == Some(h.as_str()));
            host_ok && q.get("binary").is_none_or(|b| b == binary)
        })
        .map(|(binary, host)| {
            let mut v = json!({"binary": binary, "host": host, "zone": zone, "status": "enabled",
                               "state": "up", "updated_at": now, "disabled_reason": null});
            if binary == "cinder-volume" {
                v["frozen"] = json!(false);
                v["replication_status"] = json!("disabled");
                v["active_backend_id"] = Value::Null;
                // Cinder's 3.49: the backend's state as its pool reports it
                // (`up` unless the driver says otherwise); the backend runs
                // inside this process, up whenever it answers.
                if mv.0 >= 49 {
                    v["backend_state"] = json!("up");
                }
            }
            v
        })
        .collect();
    Ok(axum::Json(json!({ "services": out })))
}

/// `PUT /os-services/{action}` (admins): Cinder's enable, disable,
/// disable-log-reason, freeze and thaw. The body is checked as Cinder does
/// (an unknown host or binary is 404 for enable/disable, 400 for
/// freeze/thaw; a disable without a reason is 400). The services are always
/// enabled and never frozen: enable and thaw succeed without a change,
/// disable and freeze are refused (the volume service runs inside Stratus
/// and has no replication to freeze).
#[utoipa::path(put, path = "/volume/v3/{project_id}/os-services/{action}", tag = "services", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("action" = String, Path, description = "enable, disable, disable-log-reason, freeze or thaw")), request_body = s::VolumeServiceChange, responses((status = 200, description = "enable or thaw: nothing to change (always enabled, never frozen)", body = s::VolumeServiceChange), (status = 400, description = "Invalid body, unknown host for freeze/thaw, or the service cannot change"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown action, host or binary")))]
pub(super) async fn service_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:services:update")?;
    let action = param(&p, "action")?.to_string();
    let body: Value = parse_json(&body)?;
    let host = body.get("host").and_then(Value::as_str);
    let known_host = |h: &str| services(&state).iter().any(|(_, sh)| sh == h || sh.split('@').next() == Some(h));
    match action.as_str() {
        "enable" | "disable" | "disable-log-reason" => {
            let binary = body.get("binary").or_else(|| body.get("service")).and_then(Value::as_str);
            let (Some(host), Some(binary)) = (host, binary) else {
                return Err(ApiError::BadRequest("Invalid input received: host and binary are required.".into()));
            };
            if action == "disable-log-reason"
                && body.get("disabled_reason").and_then(Value::as_str).is_none_or(|r| r.trim().is_empty())
            {
                return Err(ApiError::BadRequest("Invalid input received: disabled_reason is required.".into()));
            }
            if !services(&state).iter().any(|(b, h)| *b == binary && (h == host || h.split('@').next() == Some(host))) {
                return Err(ApiError::NotFound(format!("Service {binary} on host {host} could not be found.")));
            }
            if action == "enable" {
                // Always enabled: enabling it again changes nothing, as in Cinder.
                return Ok(axum::Json(json!({"host": host, "binary": binary, "service": binary,
                    "status": "enabled", "disabled": false, "disabled_reason": null})));
            }
            Err(ApiError::BadRequest(format!(
                "Invalid input received: the {binary} service runs inside Stratus and cannot be disabled on its own."
            )))
        }
        "thaw" => match host {
            // Never frozen: thawing changes nothing, as in Cinder.
            Some(h) if known_host(h) => Ok(axum::Json(json!({}))),
            Some(h) => Err(ApiError::BadRequest(format!("Invalid input received: Host {h} could not be found."))),
            None => Err(ApiError::BadRequest("Invalid input received: host is required.".into())),
        },
        "freeze" => match host {
            Some(h) if known_host(h) => {
                Err(ApiError::BadRequest(format!("Invalid input received: host {h} has no replication to freeze.")))
            }
            Some(h) => Err(ApiError::BadRequest(format!("Invalid input received: Host {h} could not be found."))),
            None => Err(ApiError::BadRequest("Invalid input received: host is required.".into())),
        },
        other => Err(ApiError::NotFound(format!("Unknown action {other}"))),
    }
}

/// `GET /os-hosts` (admins): one entry per service.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-hosts", tag = "hosts", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Hosts", body = s::VolumeHostList), (status = 403, description = "Not an admin")))]
pub(super) async fn list_hosts(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:hosts")?;
    let now = cinder_ts(chrono::Utc::now());
    let zone = &state.volume.config().availability_zone;
    let out: Vec<Value> = services(&state)
        .into_iter()
        .map(|(binary, host)| {
            json!({"host_name": host, "service": binary, "zone": zone, "service-status": "available",
                   "service-state": "enabled", "last-update": now})
        })
        .collect();
    Ok(axum::Json(json!({ "hosts": out })))
}

/// `GET /os-hosts/{host}` (admins): volume usage on a volume host, the
/// total first, then per project; 404 for any other host (Cinder's rule:
/// only hosts running an enabled cinder-volume).
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-hosts/{host}", tag = "hosts", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("host" = String, Path, description = "A cinder-volume host (`host@backend`)")), responses((status = 200, description = "Usage on the host", body = s::VolumeHostBody), (status = 403, description = "Not an admin"), (status = 404, description = "Not a volume host")))]
pub(super) async fn show_host(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:hosts")?;
    let host = param(&p, "host")?;
    if host != backend_host(&state) {
        return Err(ApiError::NotFound(format!("Host {host} could not be found.")));
    }
    let all = ListFilter { all_projects: true, ..ListFilter::default() };
    let mut per_project: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for v in state.volume.list(&ctx, &all).await? {
        let e = per_project.entry(v.project_id.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(v.size_gb);
    }
    let total = per_project.values().fold((0i64, 0i64), |t, (n, gb)| (t.0 + n, t.1.saturating_add(*gb)));
    let entry = |project: &str, (n, gb): (i64, i64)| {
        json!({"resource": {"host": host, "project": project, "volume_count": n.to_string(),
                            "total_volume_gb": gb.to_string(), "snapshot_count": "0", "total_snapshot_gb": "0"}})
    };
    let mut out = vec![entry("(total)", total)];
    out.extend(per_project.into_iter().map(|(project, usage)| entry(&project, usage)));
    Ok(axum::Json(json!({ "host": out })))
}

/// `GET /scheduler-stats/get_pools` (admins): the backend's one pool;
/// `detail=true` adds its capabilities (capacity not measured: `unknown`,
/// which Cinder allows).
#[utoipa::path(get, path = "/volume/v3/{project_id}/scheduler-stats/get_pools", tag = "scheduler stats", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("detail" = Option<String>, Query, description = "Truthy: with capabilities")), responses((status = 200, description = "Pools", body = s::VolumePoolList), (status = 403, description = "Not an admin")))]
pub(super) async fn pools(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "scheduler_extension:scheduler_stats:get_pools")?;
    let name = pool_name(&state);
    if !pool_passes(&state, &q, &name, mv.0).await? {
        return Ok(axum::Json(json!({ "pools": [] })));
    }
    let mut pool = json!({"name": name});
    if q.get("detail").is_some_and(|d| stratus_api::volume::truthy(d)) {
        let now = cinder_ts(chrono::Utc::now());
        pool["capabilities"] = json!({
            "volume_backend_name": state.volume.backend_kind(),
            "vendor_name": "Stratus",
            "driver_version": env!("CARGO_PKG_VERSION"),
            "storage_protocol": protocol(&state),
            "total_capacity_gb": "unknown",
            "free_capacity_gb": "unknown",
            "reserved_percentage": 0,
            "QoS_support": false,
            "timestamp": now,
        });
    }
    Ok(axum::Json(json!({ "pools": [pool] })))
}

/// Does the one pool pass the query's filters, as Cinder's `get_pools`
/// reads them: none before 3.28; from 3.28 `name` (exact) and any
/// capability (compared as strings); from 3.31 only Cinder's configured
/// pool filters, `name` and `volume_type`, others are 400; `volume_type`
/// (3.35, name or id, unknown is 404) keeps the pool if the type's extra
/// specs fit the backend.
async fn pool_passes(state: &AppState, q: &HashMap<String, String>, name: &str, minor: u32) -> Result<bool, ApiError> {
    if minor < 28 {
        return Ok(true);
    }
    let filters: Vec<(&String, &String)> =
        q.iter().filter(|(k, _)| k.as_str() != "detail" && (minor >= 35 || k.as_str() != "volume_type")).collect();
    if minor >= 31 {
        let mut bad: Vec<&str> =
            filters.iter().map(|(k, _)| k.as_str()).filter(|k| !matches!(*k, "name" | "volume_type")).collect();
        if !bad.is_empty() {
            bad.sort_unstable();
            return Err(ApiError::BadRequest(format!("Invalid filters {} are found in query options.", bad.join(","))));
        }
    }
    let caps = state.volume.capabilities();
    for (k, v) in filters {
        let ok = match k.as_str() {
            "name" => v == name,
            "volume_type" => state.volume.pool_takes_type(v).await?,
            other => caps.iter().find(|(c, _)| *c == other).is_some_and(|(_, have)| have == v),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn protocol(state: &AppState) -> &'static str {
    if state.volume.backend_kind() == "rbd" { "ceph" } else { "local" }
}

/// `GET /capabilities/{host}` (admins): what the volume backend offers.
#[utoipa::path(get, path = "/volume/v3/{project_id}/capabilities/{host}", tag = "capabilities", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("host" = String, Path, description = "The volume host (`host@backend`)")), responses((status = 200, description = "Capabilities", body = s::VolumeCapabilities), (status = 403, description = "Not an admin"), (status = 404, description = "Not a volume host")))]
pub(super) async fn capabilities(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:capabilities")?;
    let host = param(&p, "host")?;
    if host != backend_host(&state) && host != pool_name(&state) {
        return Err(ApiError::NotFound(format!("Host {host} could not be found.")));
    }
    Ok(axum::Json(json!({
        "namespace": format!("OS::Storage::Capabilities::{}", backend_host(&state)),
        "volume_backend_name": state.volume.backend_kind(),
        "pool_name": null,
        "driver_version": env!("CARGO_PKG_VERSION"),
        "storage_protocol": protocol(&state),
        "display_name": null,
        "description": null,
        "visibility": null,
        "vendor_name": "Stratus",
        "replication_targets": [],
        "properties": {},
    })))
}
