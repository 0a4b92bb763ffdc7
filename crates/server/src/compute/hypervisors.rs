//! Hypervisors (`/os-hypervisors`, integer ids before 2.53) and the legacy
//! hosts API (`/os-hosts`, up to 2.42): admin views of each compute host.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::paging::{next_link, only_params_from};
use stratus_api::compute::{Page, parse_query, query_value};
use stratus_controller::compute_api::{HostUpdate, Hypervisor};

/// A hypervisor's id at `mv`: the service's integer id, its UUID from 2.53
/// (Stratus has one compute service per hypervisor: they share ids).
fn hypervisor_id(h: &Hypervisor, mv: Microversion) -> Value {
    if mv.at_least(53) { json!(h.service.uuid) } else { json!(h.service.id) }
}

/// [`hypervisor_id`] as text (a paging marker).
fn id_text(h: &Hypervisor, mv: Microversion) -> String {
    if mv.at_least(53) { h.service.uuid.clone() } else { h.service.id.to_string() }
}

/// The short form (list, search): id, host name, state, status.
fn brief(h: &Hypervisor, mv: Microversion) -> Value {
    json!({
        "id": hypervisor_id(h, mv),
        "hypervisor_hostname": h.service.host,
        "state": if h.up { "up" } else { "down" },
        "status": if h.service.disabled { "disabled" } else { "enabled" },
    })
}

/// The detail form at `mv`: `cpu_info` a JSON string before 2.28 and an
/// object from it; the capacity and usage fields gone from 2.88, which adds
/// `uptime` (Nova moved those figures to placement).
fn detail(h: &Hypervisor, mv: Microversion) -> Value {
    let s = &h.service;
    let mut v = brief(h, mv);
    let service_id = if mv.at_least(53) { json!(s.uuid) } else { json!(s.id) };
    let mut extra = json!({
        "host_ip": "0.0.0.0",
        "hypervisor_type": "stratus",
        "hypervisor_version": 1,
        "service": {"host": s.host, "id": service_id, "disabled_reason": s.disabled_reason},
    });
    if mv.at_least(88) {
        extra["uptime"] = if h.up { json!(uptime(h)) } else { Value::Null };
    } else {
        let free_disk = s.disk_gb - h.local_gb_used;
        let usage = json!({
            "cpu_info": if mv.at_least(28) { json!({}) } else { json!("{}") },
            "current_workload": h.current_workload,
            "disk_available_least": free_disk,
            "free_disk_gb": free_disk,
            "free_ram_mb": s.memory_mb - h.memory_mb_used,
            "local_gb": s.disk_gb,
            "local_gb_used": h.local_gb_used,
            "memory_mb": s.memory_mb,
            "memory_mb_used": h.memory_mb_used,
            "running_vms": h.running_vms,
            "vcpus": s.vcpus,
            "vcpus_used": h.vcpus_used,
        });
        if let (Some(e), Value::Object(u)) = (extra.as_object_mut(), usage) {
            e.extend(u);
        }
    }
    if let (Some(v), Value::Object(e)) = (v.as_object_mut(), extra) {
        v.extend(e);
    }
    v
}

/// `with_servers` from 2.53: a strict boolean (anything else is 400, as
/// Nova's `bool_from_string(strict=True)`).
fn with_servers(q: &[(String, String)]) -> Result<bool, ApiError> {
    match query_value(q, "with_servers") {
        None => Ok(false),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(ApiError::BadRequest(format!(
                "Invalid input for query parameters with_servers. Value: {v}. '{v}' is not a boolean"
            ))),
        },
    }
}

/// Add the hosted servers to a hypervisor view: when there are some, or
/// (from 2.75) always once asked for.
async fn add_servers(st: &AppState, h: &Hypervisor, v: &mut Value, mv: Microversion) -> Result<(), ApiError> {
    let servers = st.compute.servers_on_host(&h.service.host).await?;
    if !servers.is_empty() || mv.at_least(75) {
        v["servers"] = servers.iter().map(|s| json!({"uuid": s.id, "name": s.name})).collect::<Vec<_>>().into();
    }
    Ok(())
}

/// The list and detail routes: paged from 2.33 (`limit`, `marker`, and
/// `hypervisors_links` on a full page), with `hypervisor_hostname_pattern`
/// and `with_servers` from 2.53 (a pattern cannot be paged: 400).
async fn hypervisor_listing(
    st: &AppState,
    ctx: &stratus_auth::AuthContext,
    mv: Microversion,
    raw: Option<&str>,
    full: bool,
) -> Result<Value, ApiError> {
    only_params_from(raw, mv, 53, &["limit", "marker", "hypervisor_hostname_pattern", "with_servers"])?;
    let q = parse_query(raw);
    let page = if mv.at_least(33) { Page::parse(&q)? } else { Page::default() };
    let (pattern, servers) = if mv.at_least(53) {
        (query_value(&q, "hypervisor_hostname_pattern"), with_servers(&q)?)
    } else {
        (None, false)
    };
    let render = |h: &Hypervisor| if full { detail(h, mv) } else { brief(h, mv) };
    let (found, paged) = match pattern {
        Some(p) => {
            if page.limit.is_some() || page.marker.is_some() {
                return Err(ApiError::BadRequest(
                    "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."
                        .into(),
                ));
            }
            (st.compute.hypervisors_matching(ctx, p).await?, false)
        }
        None => {
            let all = st.compute.hypervisors(ctx).await?;
            (page.apply(all, |h| id_text(h, mv))?, mv.at_least(33))
        }
    };
    let mut out = Vec::with_capacity(found.len());
    for h in &found {
        let mut v = render(h);
        if servers {
            add_servers(st, h, &mut v, mv).await?;
        }
        out.push(v);
    }
    let mut body = json!({"hypervisors": out});
    if paged
        && page.is_full(found.len())
        && let Some(last) = found.last()
    {
        let path = if full { "os-hypervisors/detail" } else { "os-hypervisors" };
        let last = id_text(last, mv);
        body["hypervisors_links"] = next_link(&st.public_url, path, &q, &last);
    }
    Ok(body)
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors", tag = "hypervisors", params(("limit" = Option<u32>, Query, description = "Page size (2.33)"), ("marker" = Option<String>, Query, description = "Last id of the previous page (2.33)"), ("hypervisor_hostname_pattern" = Option<String>, Query, description = "Part of a host name (2.53)"), ("with_servers" = Option<bool>, Query, description = "Include the hosted servers (2.53)")), responses((status = 200, description = "Every compute host (admin)", body = s::HypervisorList), (status = 400, description = "Bad limit, marker or with_servers, or a pattern with paging"), (status = 404, description = "No host matches the pattern"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(hypervisor_listing(&st, &ctx, mv, q.as_deref(), false).await?))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/detail", tag = "hypervisors", params(("limit" = Option<u32>, Query, description = "Page size (2.33)"), ("marker" = Option<String>, Query, description = "Last id of the previous page (2.33)"), ("hypervisor_hostname_pattern" = Option<String>, Query, description = "Part of a host name (2.53)"), ("with_servers" = Option<bool>, Query, description = "Include the hosted servers (2.53)")), responses((status = 200, description = "Every compute host in full (admin)", body = s::HypervisorList), (status = 400, description = "Bad limit, marker or with_servers, or a pattern with paging"), (status = 404, description = "No host matches the pattern"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(hypervisor_listing(&st, &ctx, mv, q.as_deref(), true).await?))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/statistics", tag = "hypervisors", responses((status = 200, description = "Totals over every compute host (admin)", body = s::HypervisorStatistics), (status = 403, description = "Not an admin"), (status = 404, description = "Gone at this microversion (2.88)")))]
pub(super) async fn hypervisor_statistics(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> Result<Json<Value>, ApiError> {
    let t = st.compute.hypervisor_totals(&ctx).await?;
    let free_disk = t.local_gb - t.local_gb_used;
    Ok(Json(json!({"hypervisor_statistics": {
        "count": t.count,
        "current_workload": t.current_workload,
        "disk_available_least": free_disk,
        "free_disk_gb": free_disk,
        "free_ram_mb": t.memory_mb - t.memory_mb_used,
        "local_gb": t.local_gb,
        "local_gb_used": t.local_gb_used,
        "memory_mb": t.memory_mb,
        "memory_mb_used": t.memory_mb_used,
        "running_vms": t.running_vms,
        "vcpus": t.vcpus,
        "vcpus_used": t.vcpus_used,
    }})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}", tag = "hypervisors", params(("id" = String, Path, description = "Hypervisor id (a UUID from 2.53)"), ("with_servers" = Option<bool>, Query, description = "Include the hosted servers (2.53)")), responses((status = 200, description = "One compute host in full (admin)", body = s::HypervisorBody), (status = 400, description = "Not a UUID (2.53), or bad with_servers"), (status = 404, description = "No such hypervisor"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 53, &["with_servers"])?;
    let h = st.compute.hypervisor(&ctx, &id, mv.at_least(53)).await?;
    let mut v = detail(&h, mv);
    if mv.at_least(53) && with_servers(&parse_query(q.as_deref()))? {
        add_servers(&st, &h, &mut v, mv).await?;
    }
    Ok(Json(json!({"hypervisor": v})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}/uptime", tag = "hypervisors", params(("id" = String, Path, description = "Hypervisor id")), responses((status = 200, description = "How long the host's agent has been joined (admin)", body = s::HypervisorBody), (status = 404, description = "No such hypervisor, or gone at this microversion (2.88)"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_uptime(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let h = st.compute.hypervisor(&ctx, &id, mv.at_least(53)).await?;
    let mut v = brief(&h, mv);
    v["uptime"] = uptime(&h).into();
    Ok(Json(json!({"hypervisor": v})))
}

/// In the shape of `uptime(1)`: the time now and how long the host's agent
/// has been joined (since its last state change), or that it is down.
fn uptime(h: &Hypervisor) -> String {
    let now = chrono::Utc::now();
    if !h.up {
        return format!(" {} down", now.format("%H:%M:%S"));
    }
    let up = (now - h.service.updated_at).num_seconds().max(0);
    let (days, hours, mins) = (up / 86_400, up % 86_400 / 3600, up % 3600 / 60);
    format!(" {} up {days} days, {hours:2}:{mins:02}", now.format("%H:%M:%S"))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}/search", tag = "hypervisors", params(("id" = String, Path, description = "Part of a host name")), responses((status = 200, description = "Hosts whose name contains the pattern (admin)", body = s::HypervisorList), (status = 404, description = "None matches"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_search(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = st.compute.hypervisors_matching(&ctx, &pattern).await?;
    Ok(Json(json!({"hypervisors": found.iter().map(|h| brief(h, mv)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}/servers", tag = "hypervisors", params(("id" = String, Path, description = "Part of a host name")), responses((status = 200, description = "Matching hosts with their servers (admin)", body = s::HypervisorList), (status = 404, description = "None matches"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_servers(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for h in st.compute.hypervisors_matching(&ctx, &pattern).await? {
        let servers = st.compute.servers_on_host(&h.service.host).await?;
        let mut v = brief(&h, mv);
        v["servers"] = servers.iter().map(|s| json!({"uuid": s.id, "name": s.name})).collect::<Vec<_>>().into();
        out.push(v);
    }
    Ok(Json(json!({"hypervisors": out})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hosts", tag = "hosts", params(("zone" = Option<String>, Query, description = "Only this availability zone")), responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "Compute hosts (admin)", body = s::HostList), (status = 403, description = "Not an admin")))]
pub(super) async fn host_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(q.as_deref());
    let zone = query_value(&q, "zone").filter(|z| !z.is_empty());
    let hosts: Vec<Value> = st
        .compute
        .hypervisors(&ctx)
        .await?
        .iter()
        .filter(|h| zone.is_none_or(|z| z == h.service.zone))
        .map(|h| json!({"host_name": h.service.host, "service": "compute", "zone": h.service.zone}))
        .collect();
    Ok(Json(json!({"hosts": hosts})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hosts/{host}", tag = "hosts", params(("host" = String, Path, description = "Host name")), responses((status = 200, description = "Capacity, use now, and use per project (admin)", body = s::HostShow), (status = 404, description = "No such host"), (status = 403, description = "Not an admin")))]
pub(super) async fn host_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(host): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = st.compute.host_resources(&ctx, &host).await?;
    let (h, svc) = (&r.hypervisor, &r.hypervisor.service);
    let row = |project: &str, cpu: i64, mem: i64, disk: i64| json!({"resource": {"host": svc.host, "project": project, "cpu": cpu, "memory_mb": mem, "disk_gb": disk}});
    let mut rows = vec![
        row("(total)", svc.vcpus, svc.memory_mb, svc.disk_gb),
        row("(used_now)", h.vcpus_used, h.memory_mb_used, h.local_gb_used),
        row("(used_max)", h.vcpus_used, h.memory_mb_used, h.local_gb_used),
    ];
    rows.extend(r.projects.iter().map(|(p, c, m, d)| row(p, *c, *m, *d)));
    Ok(Json(json!({"host": rows})))
}

#[utoipa::path(put, path = "/compute/v2.1/os-hosts/{host}", tag = "hosts", params(("host" = String, Path, description = "Host name")), responses((status = 200, description = "Status changed (admin)", body = s::HostUpdated), (status = 400, description = "Invalid body"), (status = 404, description = "No such host"), (status = 501, description = "Maintenance mode is not offered"), (status = 403, description = "Not an admin")))]
pub(super) async fn host_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let change = parse_json::<Value>(&body).map_err(|e| e.to_string()).and_then(|v| host_change(&v));
    let enabled = st.compute.update_host(&ctx, &host, change).await?;
    Ok(Json(json!({"host": host, "status": if enabled { "enabled" } else { "disabled" }})))
}

/// Nova's `os-hosts` update body: `status` and/or `maintenance_mode`, each
/// `enable` or `disable`, nothing else.
fn host_change(v: &Value) -> Result<HostUpdate, String> {
    let o = v.as_object().ok_or("Malformed request body: an object is expected")?;
    if let Some(k) = o.keys().find(|k| *k != "status" && *k != "maintenance_mode") {
        return Err(format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let pick = |k: &str| match o.get(k) {
        None => Ok(None),
        Some(Value::String(s)) if s == "enable" || s == "disable" => Ok(Some(s == "enable")),
        Some(other) => {
            Err(format!("Invalid input for field/attribute {k}. Value: {other}. 'enable' or 'disable' expected"))
        }
    };
    match (pick("status")?, pick("maintenance_mode")?) {
        (_, Some(_)) => Ok(HostUpdate::Maintenance),
        (Some(enable), None) => Ok(HostUpdate::Status(enable)),
        (None, None) => Err("'status' or 'maintenance_mode' needed for host update".into()),
    }
}

#[utoipa::path(get, path = "/compute/v2.1/os-hosts/{host}/{power}", tag = "hosts", params(("host" = String, Path, description = "Host name"), ("power" = String, Path, description = "startup, shutdown or reboot")), responses((status = 200, description = "The action taken (never, here: an existing host answers 501)", body = s::HostUpdated), (status = 404, description = "No such host"), (status = 501, description = "Host power actions are not offered")))]
pub(super) async fn host_power(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((host, power)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !matches!(power.as_str(), "startup" | "shutdown" | "reboot") {
        return Err(ApiError::NotFound(format!("The resource could not be found: os-hosts/{host}/{power}")));
    }
    st.compute.host_power_action(&ctx, &host).await?;
    Ok(Json(json!({"host": host, "power_action": power})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hypervisor() -> Hypervisor {
        let now = chrono::Utc::now();
        let service = stratus_db::ServiceRow {
            id: 4,
            uuid: "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11".into(),
            host: "h1".into(),
            binary: "nova-compute".into(),
            zone: "nova".into(),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            state: stratus_types::ServiceState::Up,
            epoch: 1,
            lease_expires_at: None,
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
            created_at: now,
            updated_at: now,
        };
        Hypervisor {
            service,
            up: true,
            vcpus_used: 1,
            memory_mb_used: 512,
            local_gb_used: 1,
            running_vms: 1,
            current_workload: 0,
        }
    }

    fn mv(minor: u32) -> Microversion {
        Microversion::new(2, minor)
    }

    /// Nova's hypervisor views: `cpu_info` a string before 2.28 and an
    /// object from it; UUIDs for the hypervisor and its service from 2.53;
    /// from 2.88 no capacity or usage fields, and `uptime`.
    #[test]
    fn hypervisor_views_follow_novas_microversions() {
        let h = hypervisor();
        assert_eq!(detail(&h, mv(27))["cpu_info"], "{}");
        assert_eq!(detail(&h, mv(28))["cpu_info"], json!({}));
        assert_eq!(
            (detail(&h, mv(52))["id"].clone(), detail(&h, mv(52))["service"]["id"].clone()),
            (json!(4), json!(4))
        );
        let v53 = detail(&h, mv(53));
        assert_eq!(v53["id"], "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
        assert_eq!(v53["service"]["id"], "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
        assert!(v53.get("uptime").is_none() && v53["vcpus"] == 8);
        let v88 = detail(&h, mv(88));
        for gone in
            ["cpu_info", "vcpus", "memory_mb", "local_gb", "running_vms", "free_disk_gb", "disk_available_least"]
        {
            assert!(v88.get(gone).is_none(), "{gone} at 2.88");
        }
        assert!(v88["uptime"].as_str().is_some_and(|u| u.contains(" up ")));
        assert_eq!(brief(&h, mv(53))["id"], "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
        assert_eq!(id_text(&h, mv(33)), "4");
    }

    /// Nova reads `with_servers` as a strict boolean (2.53).
    #[test]
    fn with_servers_is_a_strict_boolean() {
        let q = |s: &str| parse_query(Some(s));
        assert!(matches!(with_servers(&q("with_servers=true")), Ok(true)));
        assert!(matches!(with_servers(&q("with_servers=0")), Ok(false)));
        assert!(matches!(with_servers(&q("")), Ok(false)));
        assert!(with_servers(&q("with_servers=maybe")).is_err());
    }
}
