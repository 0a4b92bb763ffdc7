//! Hypervisors (`/os-hypervisors`, integer ids before 2.53) and the legacy
//! hosts API (`/os-hosts`, up to 2.42): admin views of each compute host.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{parse_query, query_value};
use stratus_controller::compute_api::{HostUpdate, Hypervisor};

/// The short form (list, search): id, host name, state, status.
fn brief(h: &Hypervisor) -> Value {
    json!({
        "id": h.service.id,
        "hypervisor_hostname": h.service.host,
        "state": if h.up { "up" } else { "down" },
        "status": if h.service.disabled { "disabled" } else { "enabled" },
    })
}

/// The detail form Nova gives before 2.28 (`cpu_info` a JSON string).
fn detail(h: &Hypervisor) -> Value {
    let s = &h.service;
    let mut v = brief(h);
    let free_disk = s.disk_gb - h.local_gb_used;
    let extra = json!({
        "cpu_info": "{}",
        "current_workload": h.current_workload,
        "disk_available_least": free_disk,
        "host_ip": "0.0.0.0",
        "free_disk_gb": free_disk,
        "free_ram_mb": s.memory_mb - h.memory_mb_used,
        "hypervisor_type": "stratus",
        "hypervisor_version": 1,
        "local_gb": s.disk_gb,
        "local_gb_used": h.local_gb_used,
        "memory_mb": s.memory_mb,
        "memory_mb_used": h.memory_mb_used,
        "running_vms": h.running_vms,
        "service": {"host": s.host, "id": s.id, "disabled_reason": s.disabled_reason},
        "vcpus": s.vcpus,
        "vcpus_used": h.vcpus_used,
    });
    if let (Some(v), Value::Object(e)) = (v.as_object_mut(), extra) {
        v.extend(e);
    }
    v
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors", tag = "hypervisors", responses((status = 200, description = "Every compute host (admin)", body = s::HypervisorList), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_list(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    let all = st.compute.hypervisors(&ctx).await?;
    Ok(Json(json!({"hypervisors": all.iter().map(brief).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/detail", tag = "hypervisors", responses((status = 200, description = "Every compute host in full (admin)", body = s::HypervisorList), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_detail(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    let all = st.compute.hypervisors(&ctx).await?;
    Ok(Json(json!({"hypervisors": all.iter().map(detail).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/statistics", tag = "hypervisors", responses((status = 200, description = "Totals over every compute host (admin)", body = s::HypervisorStatistics), (status = 403, description = "Not an admin")))]
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

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}", tag = "hypervisors", params(("id" = String, Path, description = "Hypervisor id")), responses((status = 200, description = "One compute host in full (admin)", body = s::HypervisorBody), (status = 404, description = "No such hypervisor"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let h = st.compute.hypervisor(&ctx, &id).await?;
    Ok(Json(json!({"hypervisor": detail(&h)})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}/uptime", tag = "hypervisors", params(("id" = String, Path, description = "Hypervisor id")), responses((status = 200, description = "How long the host's agent has been joined (admin)", body = s::HypervisorBody), (status = 404, description = "No such hypervisor"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_uptime(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let h = st.compute.hypervisor(&ctx, &id).await?;
    let mut v = brief(&h);
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
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = st.compute.hypervisors_matching(&ctx, &pattern).await?;
    Ok(Json(json!({"hypervisors": found.iter().map(brief).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hypervisors/{id}/servers", tag = "hypervisors", params(("id" = String, Path, description = "Part of a host name")), responses((status = 200, description = "Matching hosts with their servers (admin)", body = s::HypervisorList), (status = 404, description = "None matches"), (status = 403, description = "Not an admin")))]
pub(super) async fn hypervisor_servers(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for h in st.compute.hypervisors_matching(&ctx, &pattern).await? {
        let servers = st.compute.servers_on_host(&h.service.host).await?;
        let mut v = brief(&h);
        v["servers"] = servers.iter().map(|s| json!({"uuid": s.id, "name": s.name})).collect::<Vec<_>>().into();
        out.push(v);
    }
    Ok(Json(json!({"hypervisors": out})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-hosts", tag = "hosts", params(("zone" = Option<String>, Query, description = "Only this availability zone")), responses((status = 200, description = "Compute hosts (admin)", body = s::HostList), (status = 403, description = "Not an admin")))]
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
