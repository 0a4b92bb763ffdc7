//! Usage reports: simple tenant usage (`/os-simple-tenant-usage`), the
//! instance usage audit log (`/os-instance_usage_audit_log`, admin) and
//! server diagnostics (`/servers/{id}/diagnostics`, admin).

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::paging::{next_link, only_params_from};
use stratus_api::compute::{Page, parse_query, query_value, views};
use stratus_controller::compute_api::{TenantUsage, page_usage, usage_time};

/// `start`, `end` and `detailed=1` of a usage request.
fn period(q: Option<&str>) -> Result<(DateTime<Utc>, DateTime<Utc>, bool), ApiError> {
    let q = parse_query(q);
    let now = Utc::now();
    let start = usage_time(query_value(&q, "start"), now)?;
    let end = usage_time(query_value(&q, "end"), now)?;
    Ok((start, end, query_value(&q, "detailed") == Some("1")))
}

/// Nova's tenant usage object; `server_usages` when `detailed`.
fn tenant_usage(t: &TenantUsage, start: DateTime<Utc>, end: DateTime<Utc>, detailed: bool) -> Value {
    let mut v = json!({
        "tenant_id": t.project_id,
        "start": views::iso_micro(start),
        "stop": views::iso_micro(end),
        "total_hours": t.total_hours(),
        "total_local_gb_usage": t.total_of(|s| s.disk_gb + s.ephemeral_gb),
        "total_memory_mb_usage": t.total_of(|s| s.ram_mb),
        "total_vcpus_usage": t.total_of(|s| s.vcpus),
    });
    if detailed {
        v["server_usages"] = t
            .servers
            .iter()
            .map(|u| {
                let s = &u.server;
                json!({
                    "instance_id": s.id,
                    "name": s.name,
                    "tenant_id": s.project_id,
                    "flavor": s.flavor_name,
                    "hours": u.hours,
                    "vcpus": s.vcpus,
                    "memory_mb": s.ram_mb,
                    "local_gb": s.disk_gb + s.ephemeral_gb,
                    "started_at": s.launched_at.map(views::iso_micro),
                    "ended_at": s.terminated_at.map(views::iso_micro),
                    "state": if s.deleted { "terminated" } else { s.vm_state.as_str() },
                    "uptime": u.uptime,
                })
            })
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// From 2.40 the servers a report counts are paged (`limit`, `marker` a
/// server id); before, every one is counted.
fn usage_page(q: &[(String, String)], mv: Microversion) -> Result<Option<Page>, ApiError> {
    Ok(if mv.at_least(40) { Some(Page::parse(q)?) } else { None })
}

#[utoipa::path(get, path = "/compute/v2.1/os-simple-tenant-usage", tag = "usage", params(("start" = Option<String>, Query, description = "Period start (default now)"), ("end" = Option<String>, Query, description = "Period end (default now)"), ("detailed" = Option<String>, Query, description = "1: per server"), ("limit" = Option<u32>, Query, description = "Servers per page (2.40)"), ("marker" = Option<String>, Query, description = "Last server of the previous page (2.40)")), responses((status = 200, description = "Every project's usage (admin)", body = s::TenantUsageList), (status = 400, description = "Bad times, limit or marker"), (status = 403, description = "Not an admin")))]
pub(super) async fn usage_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["start", "end", "detailed", "limit", "marker"])?;
    let (start, end, detailed) = period(q.as_deref())?;
    let params = parse_query(q.as_deref());
    let page = usage_page(&params, mv)?;
    let all = st.compute.tenant_usage(&ctx, None, start, end).await?;
    let (all, next) = match &page {
        Some(p) => page_usage(all, p)?,
        None => (all, None),
    };
    let mut body =
        json!({"tenant_usages": all.iter().map(|t| tenant_usage(t, start, end, detailed)).collect::<Vec<_>>()});
    if let Some(last) = next {
        body["tenant_usages_links"] = next_link(&st.public_url, "os-simple-tenant-usage", &params, &last);
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/os-simple-tenant-usage/{tenant_id}", tag = "usage", params(("tenant_id" = String, Path, description = "Project"), ("start" = Option<String>, Query, description = "Period start (default now)"), ("end" = Option<String>, Query, description = "Period end (default now)"), ("limit" = Option<u32>, Query, description = "Servers per page (2.40)"), ("marker" = Option<String>, Query, description = "Last server of the previous page (2.40)")), responses((status = 200, description = "The project's usage per server (empty object if none ran)", body = s::TenantUsageBody), (status = 400, description = "Bad times, limit or marker"), (status = 403, description = "Another project's")))]
pub(super) async fn usage_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["start", "end", "limit", "marker"])?;
    let (start, end, _) = period(q.as_deref())?;
    let params = parse_query(q.as_deref());
    let page = usage_page(&params, mv)?;
    let one = st.compute.tenant_usage(&ctx, Some(&tenant_id), start, end).await?;
    let (one, next) = match &page {
        Some(p) => page_usage(one, p)?,
        None => (one, None),
    };
    let body = one.first().map(|t| tenant_usage(t, start, end, true)).unwrap_or_else(|| json!({}));
    let mut body = json!({"tenant_usage": body});
    if let Some(last) = next {
        let path = format!("os-simple-tenant-usage/{tenant_id}");
        body["tenant_usage_links"] = next_link(&st.public_url, &path, &params, &last);
    }
    Ok(Json(body))
}

/// The audit log as Nova shows it when its periodic usage audit has not
/// run: Stratus runs no such task (usage is computed on request from the
/// servers' launch and termination times), so no host has done it.
async fn audit_log(st: &AppState, ctx: &stratus_auth::AuthContext, before: DateTime<Utc>) -> Result<Value, ApiError> {
    let hosts: Vec<String> = st.compute.hypervisors(ctx).await?.into_iter().map(|h| h.service.host).collect();
    let n = hosts.len();
    let period_ending = before.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(before);
    let period_beginning = period_ending - chrono::Duration::days(1);
    Ok(json!({
        "hosts_not_run": hosts,
        "log": {},
        "num_hosts": n,
        "num_hosts_done": 0,
        "num_hosts_not_run": n,
        "num_hosts_running": 0,
        "overall_status": format!("0 of {n} hosts done. 0 errors."),
        "period_beginning": views::iso_micro(period_beginning),
        "period_ending": views::iso_micro(period_ending),
        "total_errors": 0,
        "total_instances": 0,
    }))
}

#[utoipa::path(get, path = "/compute/v2.1/os-instance_usage_audit_log", tag = "usage", responses((status = 200, description = "The usage audit of the last period (admin; Stratus runs no audit task, so no host has done it)", body = s::AuditLogList), (status = 403, description = "Not an admin")))]
pub(super) async fn audit_log_list(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"instance_usage_audit_logs": audit_log(&st, &ctx, Utc::now()).await?})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-instance_usage_audit_log/{before}", tag = "usage", params(("before" = String, Path, description = "A time in the period")), responses((status = 200, description = "The usage audit of the period before that time (admin)", body = s::AuditLogBody), (status = 400, description = "Bad time"), (status = 403, description = "Not an admin")))]
pub(super) async fn audit_log_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(before): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = usage_time(Some(&before), Utc::now())?;
    Ok(Json(json!({"instance_usage_audit_log": audit_log(&st, &ctx, t).await?})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/diagnostics", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "What the control plane knows of the VM (admin; a free-form dictionary before 2.48, Nova's standard form from it)", body = s::Diagnostics), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown server")))]
pub(super) async fn diagnostics(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let shown = st.compute.server_show(&ctx, &id).await?;
    if !ctx.is_admin() {
        return Err(ApiError::Forbidden(
            "Policy doesn't allow os_compute_api:os-server-diagnostics to be performed.".into(),
        ));
    }
    let s = &shown.server;
    let uptime = s.launched_at.map(|l| (Utc::now() - l).num_seconds().max(0));
    if mv.at_least(48) {
        let macs: Vec<&str> = shown.ports.iter().map(|p| p.mac.as_str()).collect();
        let disks = usize::from(s.image_id.is_some()) + shown.volumes.len();
        return Ok(Json(views::diagnostics_v248(s, &macs, disks, uptime)));
    }
    Ok(Json(json!({
        "state": s.vm_state.as_str(),
        "power_state": s.power_state.code(),
        "host": s.host,
        "num_cpus": s.vcpus,
        "memory_mb": s.ram_mb,
        "disk_gb": s.disk_gb + s.ephemeral_gb,
        "uptime": uptime,
    })))
}
