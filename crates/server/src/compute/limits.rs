//! Limits with counted usage, the availability zones (and, for admins,
//! their hosts), and the frozen legacy extension list clients still probe.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use stratus_api::compute::paging::only_params_from;
use stratus_api::compute::{parse_query, query_value, views};

#[utoipa::path(get, path = "/compute/v2.1/limits", tag = "limits", params(("tenant_id" = Option<String>, Query, description = "Another project (admins)")), responses((status = 200, description = "Absolute limits and counted usage", body = s::ComputeLimits), (status = 403, description = "Another project's limits without admin")))]
pub(super) async fn limits(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["tenant_id"])?;
    let q = parse_query(q.as_deref());
    let l = st.compute.limits(&ctx, query_value(&q, "tenant_id")).await?;
    Ok(Json(views::limits(&l.limits, &l.usage, mv)))
}

#[utoipa::path(get, path = "/compute/v2.1/os-availability-zone", tag = "availability zones", responses((status = 200, description = "The zones of the compute hosts: their aggregates' zones, and the default zone for hosts in none", body = s::AvailabilityZones)))]
pub(super) async fn availability_zones(State(st): State<AppState>, Auth(ctx): Auth) -> Result<Json<Value>, ApiError> {
    let zones = st.compute.availability_zones(&ctx, false).await?;
    let info: Vec<Value> = zones
        .iter()
        .map(|z| json!({"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": null}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": info})))
}

#[utoipa::path(get, path = "/compute/v2.1/os-availability-zone/detail", tag = "availability zones", responses((status = 200, description = "The zones with their hosts and services (admin)", body = s::AvailabilityZones), (status = 403, description = "Not an admin")))]
pub(super) async fn availability_zones_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> Result<Json<Value>, ApiError> {
    let zones = st.compute.availability_zones(&ctx, true).await?;
    let mut info = Vec::new();
    for z in &zones {
        let mut hosts = serde_json::Map::new();
        for s in &z.hosts {
            let svc = json!({"available": s.up, "active": !s.service.disabled, "updated_at": views::iso_micro(s.service.updated_at)});
            hosts.insert(s.service.host.clone(), json!({ s.service.binary.clone(): svc }));
        }
        let hosts = if hosts.is_empty() { Value::Null } else { Value::Object(hosts) };
        info.push(json!({"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": hosts}));
    }
    Ok(Json(json!({"availabilityZoneInfo": info})))
}

/// Nova's frozen v2 extension list (the API that lists them is deprecated
/// and no longer changes): (alias, name, what it adds).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("os-admin-actions", "AdminActions", "Enable admin-only server actions."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-availability-zone", "AvailabilityZone", "Availability zone listing and selection."),
    ("os-consoles", "Consoles", "Interactive consoles."),
    ("os-console-output", "ConsoleOutput", "Console log output support."),
    ("os-deferred-delete", "DeferredDelete", "Instance deferred delete (restore, forceDelete)."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Availability zone in server views."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended server attributes for admins."),
    ("OS-EXT-STS", "ExtendedStatus", "vm_state, task_state and power_state in server views."),
    ("os-extended-volumes", "ExtendedVolumes", "Attached volumes in server views."),
    ("OS-FLV-DISABLED", "FlavorDisabled", "Disabled flag of flavors."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "Ephemeral disk size of flavors."),
    ("os-flavor-access", "FlavorAccess", "Flavor access for private flavors."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavor extra specs."),
    ("os-flavor-manage", "FlavorManage", "Flavor create and delete."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    ("os-instance-actions", "InstanceActions", "Actions performed on an instance."),
    ("os-keypairs", "Keypairs", "Key pair support."),
    ("os-lock-server", "LockServer", "Lock and unlock servers."),
    ("os-migrate-server", "MigrateServer", "Cold migration of servers."),
    ("os-pause-server", "PauseServer", "Pause and unpause servers."),
    ("os-quota-sets", "Quotas", "Quota management."),
    ("os-server-diagnostics", "ServerDiagnostics", "Server diagnostics."),
    ("os-services", "Services", "Compute service administration."),
    ("os-shelve", "Shelve", "Shelve, shelve offload and unshelve."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage."),
    ("os-suspend-server", "SuspendServer", "Suspend and resume servers."),
    ("os-volumes", "Volumes", "Volume attachments."),
    ("servers", "Servers", "Servers."),
];

fn extension(alias: &str, name: &str, description: &str) -> Value {
    json!({
        "alias": alias,
        "name": name,
        "description": description,
        "namespace": format!("http://docs.openstack.org/compute/ext/fake_xml"),
        "updated": "2014-12-03T00:00:00Z",
        "links": [],
    })
}

#[utoipa::path(get, path = "/compute/v2.1/extensions", tag = "extensions", responses((status = 200, description = "The legacy extension list (frozen, deprecated)", body = s::ExtensionList)))]
pub(super) async fn extension_list(_a: Auth) -> Json<Value> {
    Json(json!({"extensions": EXTENSIONS.iter().map(|(a, n, d)| extension(a, n, d)).collect::<Vec<_>>()}))
}

#[utoipa::path(get, path = "/compute/v2.1/extensions/{alias}", tag = "extensions", params(("alias" = String, Path, description = "Extension alias")), responses((status = 200, description = "One legacy extension", body = s::ExtensionBody), (status = 404, description = "Unknown alias")))]
pub(super) async fn extension_show(_a: Auth, Path(alias): Path<String>) -> Result<Json<Value>, ApiError> {
    EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .map(|(a, n, d)| Json(json!({"extension": extension(a, n, d)})))
        .ok_or_else(|| ApiError::NotFound(format!("Extension {alias} could not be found.")))
}
