//! Compute API v2.1 (`/compute`): versions, flavors, servers, server
//! actions, instance actions, services and limits.
//!
//! Response bodies follow the api-ref for the negotiated microversion
//! exactly: keys introduced by a later microversion are not emitted below it
//! (strict clients validate with schemas that forbid extra keys).

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv, RequestId, compute_microversion};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use stratus_api::compute::{CreateServerRequest, UpdateServiceRequest};
use stratus_api::{MAX_COMPUTE, MIN_COMPUTE, Microversion};
use stratus_auth::AuthContext;
use stratus_controller::compute_api::{Action, ServerSpec, VolumeBdm};
use stratus_db::{DbError, FlavorRow, PortRow, ServerFilter, ServerRow, ServiceRow, parse_ts};
use stratus_types::{PowerState, VmState, api_status, vm_states_for_status};

/// The Compute API's OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus Compute API",
        version = "2.1",
        description = "OpenStack Compute API v2.1 as served by Stratus (microversions 2.1 to 2.11)"
    ),
    paths(
        volume_attachment_list,
        volume_attachment_show,
        volume_attach,
        volume_detach,
        versions,
        version_v21,
        flavor_list,
        flavor_detail,
        flavor_show,
        server_list,
        server_detail,
        server_show,
        server_create,
        server_update,
        server_delete,
        server_action,
        instance_action_list,
        instance_action_show,
        service_list,
        service_update,
        limits
    ),
    components(schemas(CreateServerRequest, stratus_api::compute::CreateServer, UpdateServiceRequest))
)]
pub struct ComputeDoc;

/// Routes of the Compute API.
pub fn routes(state: AppState) -> Router {
    let v21 = Router::new()
        .route("/compute/v2.1", get(version_v21))
        .route("/compute/v2.1/", get(version_v21))
        .route("/compute/v2.1/flavors", get(flavor_list))
        .route("/compute/v2.1/flavors/detail", get(flavor_detail))
        .route("/compute/v2.1/flavors/{id}", get(flavor_show))
        .route("/compute/v2.1/servers", get(server_list).post(server_create))
        .route("/compute/v2.1/servers/detail", get(server_detail))
        .route("/compute/v2.1/servers/{id}", get(server_show).delete(server_delete).put(server_update))
        .route("/compute/v2.1/servers/{id}/action", axum::routing::post(server_action))
        .route("/compute/v2.1/servers/{id}/os-instance-actions", get(instance_action_list))
        .route("/compute/v2.1/servers/{id}/os-instance-actions/{req}", get(instance_action_show))
        .route("/compute/v2.1/servers/{id}/os-volume_attachments", get(volume_attachment_list).post(volume_attach))
        .route(
            "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
            get(volume_attachment_show).delete(volume_detach),
        )
        .route("/compute/v2.1/os-services", get(service_list))
        .route("/compute/v2.1/os-services/{action}", put(service_update))
        .route("/compute/v2.1/limits", get(limits))
        .route("/compute/v2.1/os-availability-zone", get(availability_zones))
        .layer(axum::middleware::from_fn(compute_microversion))
        .with_state(state.clone());
    Router::new()
        .route("/compute", get(versions))
        .route("/compute/", get(versions))
        .route("/compute/openapi.json", get(crate::openapi::compute_openapi))
        .with_state(state)
        .merge(v21)
}

fn version_object(public: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_COMPUTE.to_string(),
        "min_version": MIN_COMPUTE.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{public}/compute/v2.1/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

#[utoipa::path(get, path = "/compute", tag = "versions", responses((status = 200, description = "Version list")))]
async fn versions(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"versions": [version_object(&st.public_url)]}))
}

#[utoipa::path(get, path = "/compute/v2.1", tag = "versions", responses((status = 200, description = "The v2.1 version document with min/max microversions")))]
async fn version_v21(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"version": version_object(&st.public_url)}))
}

fn link(public: &str, path: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{public}/compute/v2.1/{path}")},
        {"rel": "bookmark", "href": format!("{public}/compute/{path}")},
    ])
}

fn iso(s: &str) -> String {
    parse_ts(s).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|_| s.to_string())
}

fn iso_micro(s: &str) -> String {
    parse_ts(s).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()).unwrap_or_else(|_| s.to_string())
}

// ---------------------------------------------------------------- flavors

fn flavor_view(public: &str, f: &FlavorRow, detail: bool) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": link(public, &format!("flavors/{}", f.id))});
    if detail {
        let m = v.as_object_mut();
        if let Some(m) = m {
            m.insert("ram".into(), json!(f.ram_mb));
            m.insert("disk".into(), json!(f.disk_gb));
            m.insert("vcpus".into(), json!(f.vcpus));
            m.insert("swap".into(), if f.swap_mb == 0 { json!("") } else { json!(f.swap_mb) });
            m.insert("rxtx_factor".into(), json!(f.rxtx_factor));
            m.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral_gb));
            m.insert("OS-FLV-DISABLED:disabled".into(), json!(f.disabled));
            m.insert("os-flavor-access:is_public".into(), json!(f.is_public));
        }
    }
    v
}

#[utoipa::path(get, path = "/compute/v2.1/flavors", tag = "flavors", responses((status = 200, description = "Flavors"), (status = 401, description = "No valid token")))]
async fn flavor_list(State(st): State<AppState>, _a: Auth) -> Result<Json<Value>, ApiError> {
    let fl = st.ds.flavor_list().await?;
    Ok(Json(json!({"flavors": fl.iter().map(|f| flavor_view(&st.public_url, f, false)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/detail", tag = "flavors", responses((status = 200, description = "Flavors with details")))]
async fn flavor_detail(State(st): State<AppState>, _a: Auth) -> Result<Json<Value>, ApiError> {
    let fl = st.ds.flavor_list().await?;
    Ok(Json(json!({"flavors": fl.iter().map(|f| flavor_view(&st.public_url, f, true)).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/flavors/{id}", tag = "flavors", params(("id" = String, Path, description = "Flavor id")), responses((status = 200, description = "A flavor"), (status = 404, description = "Unknown flavor")))]
async fn flavor_show(State(st): State<AppState>, _a: Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let f = match st.ds.flavor_find(&id).await {
        Ok(f) if f.id == id => f,
        Ok(_) | Err(DbError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("Flavor {id} could not be found.")));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(json!({"flavor": flavor_view(&st.public_url, &f, true)})))
}

// ---------------------------------------------------------------- servers

/// Render a server as the api-ref shows it at `mv` for this caller.
fn server_view(
    public: &str,
    s: &ServerRow,
    ports: &[&PortRow],
    volumes: &[String],
    ctx: &AuthContext,
    mv: Microversion,
) -> Value {
    let vm: VmState = s.vm().unwrap_or(VmState::Error);
    let task = s.task().ok().flatten();
    let status = api_status(vm, task);
    let mut addresses = Map::new();
    for p in ports {
        let entry = addresses.entry(p.network.clone()).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"version": 4, "addr": p.ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.mac}));
        }
    }
    let host_id = s.host.as_ref().map(|h| {
        use sha2::{Digest, Sha224};
        hex::encode(Sha224::digest(format!("{}{}", s.project_id, h).as_bytes()))
    });
    let metadata: Value = serde_json::from_str(&s.metadata).unwrap_or_else(|_| json!({}));
    let image = match &s.image_id {
        Some(i) => json!({"id": i, "links": [{"rel": "bookmark", "href": format!("{public}/compute/images/{i}")}]}),
        None => json!(""),
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": status,
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": metadata,
        "hostId": host_id.unwrap_or_default(),
        "image": image,
        "flavor": {"id": s.flavor_id, "links": [{"rel": "bookmark", "href": format!("{public}/compute/flavors/{}", s.flavor_id)}]},
        "created": iso(&s.created_at),
        "updated": iso(&s.updated_at),
        "addresses": addresses,
        "accessIPv4": "",
        "accessIPv6": "",
        "links": link(public, &format!("servers/{}", s.id)),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": s.availability_zone.clone().unwrap_or_else(|| "nova".into()),
        "config_drive": "",
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": s.launched_at.as_deref().map(iso_micro),
        "OS-SRV-USG:terminated_at": s.terminated_at.as_deref().map(iso_micro),
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": PowerState::from_code(s.power_state).code(),
        "os-extended-volumes:volumes_attached": volumes.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
    });
    let Some(m) = v.as_object_mut() else { return v };
    if matches!(status, "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING") {
        m.insert("progress".into(), json!(s.progress));
    }
    if !ports.is_empty() {
        m.insert("security_groups".into(), json!([{"name": "default"}]));
    }
    if ctx.is_admin() {
        m.insert("OS-EXT-SRV-ATTR:host".into(), json!(s.host));
        m.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(s.host));
        m.insert("OS-EXT-SRV-ATTR:instance_name".into(), json!(format!("instance-{}", &s.id[..8])));
        if mv.at_least(3) {
            m.insert("OS-EXT-SRV-ATTR:reservation_id".into(), json!(s.reservation_id));
            m.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(0));
            m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(s.hostname));
            m.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            m.insert("OS-EXT-SRV-ATTR:user_data".into(), Value::Null);
        }
    }
    if mv.at_least(9) {
        m.insert("locked".into(), json!(s.locked));
    }
    if matches!(status, "ERROR" | "DELETED")
        && let Some(f) = s.fault.as_deref().and_then(|f| serde_json::from_str::<Value>(f).ok())
    {
        {
            let created = f["created"].as_str().map(iso).unwrap_or_default();
            let mut fault = json!({"code": f["code"], "message": f["message"], "created": created});
            if ctx.is_admin() {
                fault["details"] = json!(f["message"]);
            }
            m.insert("fault".into(), fault);
        }
    }
    v
}

fn parse_query(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    })
    .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "" | "1" | "true" | "t" | "yes" | "y" | "on")
}

/// Servers matching the query; ports only for the detailed view (the
/// index view shows ids and names, and clients poll it).
async fn list_servers(
    st: &AppState,
    ctx: &AuthContext,
    raw: Option<String>,
    with_ports: bool,
) -> Result<(Vec<ServerRow>, HashMap<String, Vec<PortRow>>, Option<i64>), ApiError> {
    let q = parse_query(raw);
    let mut f = ServerFilter { project_id: Some(ctx.project_id.clone()), ..Default::default() };
    let mut all_tenants = false;
    let mut project_filter = None;
    for (k, v) in &q {
        match k.as_str() {
            "all_tenants" => all_tenants = truthy(v),
            "name" => f.name = Some(v.clone()),
            "status" => {
                let states = vm_states_for_status(v)
                    .ok_or_else(|| ApiError::BadRequest(format!("Invalid status value: {v}")))?;
                f.vm_states.get_or_insert_with(Vec::new).extend(states);
            }
            "host" => f.host = Some(v.clone()),
            "project_id" | "tenant_id" => project_filter = Some(v.clone()),
            "limit" => {
                let l: i64 =
                    v.parse().map_err(|_| ApiError::BadRequest(format!("limit param must be an integer: {v}")))?;
                if l < 0 {
                    return Err(ApiError::BadRequest("limit param must be positive".into()));
                }
                f.limit = Some(l.min(1000));
            }
            "marker" => {
                if !st.ds.server_exists(v).await? {
                    return Err(ApiError::BadRequest(format!("marker [{v}] not found")));
                }
                f.marker = Some(v.clone());
            }
            _ => {} // Nova ignores unknown query parameters on server lists.
        }
    }
    if all_tenants {
        if !ctx.is_admin() {
            return Err(ApiError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed.".into(),
            ));
        }
        f.project_id = project_filter;
    } else if f.host.is_some() && !ctx.is_admin() {
        f.host = None;
    }
    let limit = f.limit;
    let rows = st.ds.server_list(&f).await?;
    let mut ports: HashMap<String, Vec<PortRow>> = HashMap::new();
    if with_ports {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        for p in st.ds.port_list_for_servers(&ids).await? {
            ports.entry(p.server_id.clone()).or_default().push(p);
        }
    }
    Ok((rows, ports, limit))
}

fn servers_links(public: &str, rows: &[ServerRow], limit: Option<i64>, detail: bool) -> Option<Value> {
    let l = limit?;
    let last = rows.last()?;
    if rows.len() as i64 != l {
        return None;
    }
    let path = if detail { "servers/detail" } else { "servers" };
    Some(json!([{"rel": "next", "href": format!("{public}/compute/v2.1/{path}?limit={l}&marker={}", last.id)}]))
}

#[utoipa::path(get, path = "/compute/v2.1/servers", tag = "servers", params(("name" = Option<String>, Query, description = "Substring of the name"), ("status" = Option<String>, Query, description = "API status"), ("all_tenants" = Option<bool>, Query, description = "All projects (admin)"), ("limit" = Option<i64>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last id of the previous page")), responses((status = 200, description = "Servers (id, name, links)"), (status = 400, description = "Bad filter"), (status = 403, description = "all_tenants without admin")))]
async fn server_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (rows, _, limit) = list_servers(&st, &ctx, q, false).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "links": link(&st.public_url, &format!("servers/{}", s.id))}))
        .collect();
    let mut body = json!({"servers": list});
    if let Some(l) = servers_links(&st.public_url, &rows, limit, false) {
        body["servers_links"] = l;
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/detail", tag = "servers", responses((status = 200, description = "Servers in full")))]
async fn server_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (rows, ports, limit) = list_servers(&st, &ctx, q, true).await?;
    let mut volumes: HashMap<String, Vec<String>> = HashMap::new();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    for a in st.ds.attachment_list_for_servers(&ids).await? {
        volumes.entry(a.server_id).or_default().push(a.volume_id);
    }
    let list: Vec<Value> = rows
        .iter()
        .map(|s| {
            let p: Vec<&PortRow> = ports.get(&s.id).map(|v| v.iter().collect()).unwrap_or_default();
            let vols: Vec<String> = volumes.get(&s.id).cloned().unwrap_or_default();
            server_view(&st.public_url, s, &p, &vols, &ctx, mv)
        })
        .collect();
    let mut body = json!({"servers": list});
    if let Some(l) = servers_links(&st.public_url, &rows, limit, true) {
        body["servers_links"] = l;
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "A server"), (status = 404, description = "Unknown, deleted, or another project's server")))]
async fn server_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.get_visible(&ctx, &id).await?;
    let ports = st.ds.port_list_for_server(&s.id).await?;
    let p: Vec<&PortRow> = ports.iter().collect();
    let vols: Vec<String> = st.ds.attachment_list_for_server(&s.id).await?.into_iter().map(|a| a.volume_id).collect();
    Ok(Json(json!({"server": server_view(&st.public_url, &s, &p, &vols, &ctx, mv)})))
}

/// Last path segment of an id-or-URL reference (`imageRef`, `flavorRef`).
fn ref_id(r: &str) -> &str {
    r.trim_end_matches('/').rsplit('/').next().unwrap_or(r)
}

fn count_param(v: &Option<Value>, name: &str) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => {
            n.as_u64().filter(|n| *n >= 1 && *n <= 1000).map(|n| Some(n as u32)).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid input for field/attribute {name}. Value: {n}. It must be an integer between 1 and 1000"
                ))
            })
        }
        Some(Value::String(s)) => s.parse::<u32>().ok().filter(|n| *n >= 1 && *n <= 1000).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Invalid input for field/attribute {name}. Value: {s}. It must be an integer between 1 and 1000"
            ))
        }),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {name}. Value: {other}. It is not an integer"
        ))),
    }
}

fn validate_name(name: &str, field: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > 255 {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {name}. It must be 1 to 255 characters long"
        )));
    }
    if name.trim() != name {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {name}. It must not have leading or trailing whitespace"
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {field}. It must not contain control characters"
        )));
    }
    Ok(())
}

/// A bootable image the caller may use with this flavor, or a 400 saying why not.
async fn check_image(
    st: &AppState,
    ctx: &AuthContext,
    image_ref: &str,
    flavor: &FlavorRow,
) -> Result<stratus_db::ImageRow, ApiError> {
    if uuid::Uuid::parse_str(image_ref).is_err() {
        return Err(ApiError::BadRequest(format!(
            "Invalid image identifier or unable to access requested image: {image_ref} is not a UUID"
        )));
    }
    let image = match st.images.get_visible(ctx, image_ref).await {
        Ok(i) => i,
        Err(stratus_image::ImageError::NotFound { .. }) => {
            return Err(ApiError::BadRequest(format!("Image {image_ref} could not be found.")));
        }
        Err(e) => return Err(e.into()),
    };
    if image.status != stratus_image::ImageStatus::Active {
        return Err(ApiError::BadRequest(format!("Image {} is not active.", image.id)));
    }
    if flavor.ram_mb < image.min_ram {
        return Err(ApiError::BadRequest("Flavor's memory is too small for requested image.".into()));
    }
    if flavor.disk_gb > 0 && flavor.disk_gb < image.min_disk {
        return Err(ApiError::BadRequest("Flavor's disk is too small for requested image.".into()));
    }
    Ok(image)
}

#[utoipa::path(post, path = "/compute/v2.1/servers", tag = "servers", request_body = CreateServerRequest, responses((status = 202, description = "Accepted: id, links, adminPass"), (status = 400, description = "Invalid request"), (status = 403, description = "Over quota or not allowed")))]
async fn server_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateServerRequest = parse_json(&body)?;
    let s = req.server;
    validate_name(&s.name, "name")?;
    // An image -> local mapping is just "boot from this image" (the CLI sends
    // one); volume mappings need the block storage service.
    let mut bdm_image: Option<String> = None;
    let mut volumes: Vec<VolumeBdm> = Vec::new();
    if let Some(bdms) = &s.block_device_mapping_v2 {
        let Some(list) = bdms.as_array() else {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute block_device_mapping_v2: it must be a list".into(),
            ));
        };
        for b in list {
            let src = b.get("source_type").and_then(|v| v.as_str()).unwrap_or("");
            let dst = b.get("destination_type").and_then(|v| v.as_str()).unwrap_or("local");
            let uuid = b.get("uuid").and_then(|v| v.as_str()).map(str::to_string);
            let boot_index = match b.get("boot_index") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(x)) => x.parse().ok(),
                _ => None,
            };
            let dot = match b.get("delete_on_termination") {
                Some(Value::Bool(v)) => *v,
                Some(Value::String(x)) => truthy(x),
                _ => false,
            };
            let size = match b.get("volume_size") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(x)) => x.parse().ok(),
                _ => None,
            };
            match (src, dst) {
                ("image", "local") => bdm_image = uuid,
                ("blank", "local") => {}
                ("image", "volume") | ("volume", "volume") => {
                    let Some(id) = uuid.filter(|u| uuid::Uuid::parse_str(u).is_ok()) else {
                        return Err(ApiError::BadRequest(
                            "Block Device Mapping is Invalid: a volume mapping needs a valid 'uuid'.".into(),
                        ));
                    };
                    if let Some(sz) = size
                        && sz < 1
                    {
                        return Err(ApiError::BadRequest(format!(
                            "Block Device Mapping is Invalid: volume_size {sz} must be at least 1."
                        )));
                    }
                    if src == "image" && st.images.get_visible(&ctx, &id).await.is_err() {
                        return Err(ApiError::BadRequest(format!("Image {id} could not be found.")));
                    }
                    volumes.push(VolumeBdm {
                        image_id: (src == "image").then(|| id.clone()),
                        volume_id: (src == "volume").then(|| id.clone()),
                        size_gb: size.unwrap_or(1),
                        boot_index,
                        delete_on_termination: dot,
                    });
                }
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "Block device mapping {src} -> {dst} is not supported by this cloud."
                    )));
                }
            }
        }
    }
    let boot_from_volume = volumes.iter().any(|v| v.boot_index == Some(0));
    if s.block_device_mapping.is_some() {
        return Err(ApiError::BadRequest(
            "Legacy block_device_mapping is not supported; use block_device_mapping_v2.".into(),
        ));
    }
    let flavor_ref = match &s.flavor_ref {
        Value::String(x) => x.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute flavorRef. Value: {other}. It must be a string or an integer"
            )));
        }
    };
    let flavor = match st.ds.flavor_find(ref_id(&flavor_ref)).await {
        Ok(f) if f.id == ref_id(&flavor_ref) => f,
        Ok(_) | Err(DbError::NotFound(_)) => {
            return Err(ApiError::BadRequest(format!("Flavor {flavor_ref} could not be found.")));
        }
        Err(e) => return Err(e.into()),
    };
    let image_ref = s.image_ref.as_deref().map(ref_id).filter(|r| !r.is_empty()).or(bdm_image.as_deref());
    let image_ref = match image_ref {
        Some(r) => r,
        None if boot_from_volume => "",
        None => return Err(ApiError::BadRequest("Missing imageRef attribute".into())),
    };
    let image = if image_ref.is_empty() { None } else { Some(check_image(&st, &ctx, image_ref, &flavor).await?) };
    let mut metadata = BTreeMap::new();
    for (k, v) in s.metadata.unwrap_or_default() {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute metadata. Metadata keys must be 1 to 255 characters long".into(),
            ));
        }
        let Value::String(v) = v else {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute metadata. Value of {k} is not a string"
            )));
        };
        if v.chars().count() > 255 {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute metadata. Value of {k} is longer than 255 characters"
            )));
        }
        metadata.insert(k, v);
    }
    if metadata.len() > 128 {
        return Err(ApiError::Forbidden("Quota exceeded for metadata_items: Requested more than 128 items".into()));
    }
    let allocate_network = match &s.networks {
        None => true,
        Some(Value::String(x)) if x == "auto" => true,
        Some(Value::String(x)) if x == "none" => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute networks. Value: {other}. It must be 'auto', 'none' or a list"
            )));
        }
    };
    let min = count_param(&s.min_count, "min_count")?.unwrap_or(1);
    let max = count_param(&s.max_count, "max_count")?.unwrap_or(min);
    if min > max {
        return Err(ApiError::BadRequest("min_count must be <= max_count".into()));
    }
    if let Some(az) = &s.availability_zone
        && az != "nova"
    {
        return Err(ApiError::BadRequest(format!("The requested availability zone is not available: {az}")));
    }
    let spec = ServerSpec {
        volumes,
        name: s.name.clone(),
        image_id: image.as_ref().map(|i| i.id.clone()),
        flavor,
        metadata,
        key_name: s.key_name.clone(),
        availability_zone: s.availability_zone.clone(),
        allocate_network,
        count: max,
    };
    let created = st.compute.create_servers(&ctx, &spec, &rid.0).await?;
    let Some(first) = created.first() else {
        return Err(ApiError::Internal("no server created".into()));
    };
    let return_resv = matches!(s.return_reservation_id, Some(Value::Bool(true)))
        || matches!(&s.return_reservation_id, Some(Value::String(x)) if truthy(x));
    if return_resv {
        return Ok((StatusCode::ACCEPTED, Json(json!({"reservation_id": first.server.reservation_id}))).into_response());
    }
    let mut body = json!({"server": {
        "id": first.server.id,
        "links": link(&st.public_url, &format!("servers/{}", first.server.id)),
        "OS-DCF:diskConfig": "MANUAL",
        "adminPass": s.admin_pass.clone().unwrap_or_else(|| first.admin_pass.clone()),
    }});
    if allocate_network {
        body["server"]["security_groups"] = json!([{"name": "default"}]);
    }
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/compute/v2.1/servers/{}", st.public_url, first.server.id)) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "Updated server"), (status = 400, description = "Invalid request"), (status = 404, description = "Not found")))]
async fn server_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v: Value = parse_json(&body)?;
    let s = st.compute.get_visible(&ctx, &id).await?;
    if !ctx.can_write() {
        return Err(ApiError::Forbidden("Policy doesn't allow os_compute_api:servers:update to be performed.".into()));
    }
    let Some(obj) = v.get("server").and_then(|s| s.as_object()) else {
        return Err(ApiError::BadRequest("Invalid input: a 'server' object is required".into()));
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "name" | "accessIPv4" | "accessIPv6" | "OS-DCF:diskConfig") {
            return Err(ApiError::BadRequest(format!("Additional properties are not allowed ('{k}' was unexpected)")));
        }
    }
    if let Some(name) = obj.get("name") {
        let Some(name) = name.as_str() else {
            return Err(ApiError::BadRequest("Invalid input for field/attribute name: it must be a string".into()));
        };
        validate_name(name, "name")?;
        st.ds.server_rename(&s.id, name).await?;
    }
    let s = st.compute.get_visible(&ctx, &id).await?;
    let ports = st.ds.port_list_for_server(&s.id).await?;
    let p: Vec<&PortRow> = ports.iter().collect();
    let vols: Vec<String> = st.ds.attachment_list_for_server(&s.id).await?.into_iter().map(|a| a.volume_id).collect();
    Ok(Json(json!({"server": server_view(&st.public_url, &s, &p, &vols, &ctx, mv)})))
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 204, description = "Delete recorded (or the open delete re-driven)"), (status = 404, description = "Not found"), (status = 409, description = "Locked")))]
async fn server_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.compute.delete_server(&ctx, &id, &rid.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/action", tag = "servers", params(("id" = String, Path, description = "Server id")),
    request_body(content = Object, description = "One action key: os-stop, os-start, reboot {type}, pause, unpause, suspend, resume, shelve, shelveOffload, unshelve, resize {flavorRef}, migrate, confirmResize, revertResize, evacuate {host?, adminPass?, onSharedStorage}, createImage {name, metadata?}, restore, forceDelete, lock, unlock, os-resetState {state}"),
    responses((status = 202, description = "Accepted"), (status = 204, description = "confirmResize done"), (status = 200, description = "evacuate: adminPass"), (status = 400, description = "Unknown action or bad body"), (status = 403, description = "Not allowed or over quota"), (status = 404, description = "Not found"), (status = 409, description = "Invalid state or locked")))]
async fn server_action(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v: Value = parse_json(&body)?;
    let Some(obj) = v.as_object().filter(|o| o.len() == 1) else {
        return Err(ApiError::BadRequest("The action body must be an object with exactly one action key".into()));
    };
    let Some((action, arg)) = obj.iter().next() else {
        return Err(ApiError::BadRequest("Missing action".into()));
    };
    let null_only = |name: &str| -> Result<(), ApiError> {
        if arg.is_null() {
            Ok(())
        } else {
            Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute {name}. Value: {arg}. {arg} is not of type 'null'"
            )))
        }
    };
    let accepted = || Ok(StatusCode::ACCEPTED.into_response());
    let c = &st.compute;
    match action.as_str() {
        "os-stop" | "os-start" | "pause" | "unpause" | "suspend" | "resume" | "shelve" | "shelveOffload"
        | "unshelve" | "migrate" | "revertResize" | "restore" => {
            null_only(action)?;
            let a = match action.as_str() {
                "os-stop" => Action::Stop,
                "os-start" => Action::Start,
                "pause" => Action::Pause,
                "unpause" => Action::Unpause,
                "suspend" => Action::Suspend,
                "resume" => Action::Resume,
                "shelve" => Action::Shelve,
                "shelveOffload" => Action::ShelveOffload,
                "unshelve" => Action::Unshelve,
                "migrate" => Action::Migrate,
                "revertResize" => Action::RevertResize,
                _ => Action::Restore,
            };
            c.action(&ctx, &id, a, &rid.0).await?;
            accepted()
        }
        "confirmResize" => {
            null_only(action)?;
            c.action(&ctx, &id, Action::ConfirmResize, &rid.0).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "reboot" => {
            let ty = arg.get("type").and_then(|t| t.as_str()).ok_or_else(|| {
                ApiError::BadRequest("Invalid input for field/attribute reboot. 'type' is a required property".into())
            })?;
            let hard = match ty.to_ascii_uppercase().as_str() {
                "SOFT" => false,
                "HARD" => true,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid input for field/attribute type. Value: {ty}. '{ty}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
                    )));
                }
            };
            c.action(&ctx, &id, Action::Reboot { hard }, &rid.0).await?;
            accepted()
        }
        "resize" => {
            let Some(o) = arg.as_object() else {
                return Err(ApiError::BadRequest(
                    "Invalid input for field/attribute resize: it must be an object".into(),
                ));
            };
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "flavorRef" | "OS-DCF:diskConfig")) {
                return Err(ApiError::BadRequest(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            let fref = match o.get("flavorRef") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(ApiError::BadRequest(
                        "Invalid input for field/attribute resize. 'flavorRef' is a required property".into(),
                    ));
                }
            };
            let flavor = match st.ds.flavor_find(ref_id(&fref)).await {
                Ok(f) if f.id == ref_id(&fref) => f,
                Ok(_) | Err(DbError::NotFound(_)) => {
                    return Err(ApiError::BadRequest(format!("Flavor {fref} could not be found.")));
                }
                Err(e) => return Err(e.into()),
            };
            c.action(&ctx, &id, Action::Resize { flavor }, &rid.0).await?;
            accepted()
        }
        "evacuate" => {
            let Some(o) = arg.as_object() else {
                return Err(ApiError::BadRequest(
                    "Invalid input for field/attribute evacuate: it must be an object".into(),
                ));
            };
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "host" | "adminPass" | "onSharedStorage")) {
                return Err(ApiError::BadRequest(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            if !o.get("onSharedStorage").is_some_and(|v| v.is_boolean()) {
                return Err(ApiError::BadRequest(
                    "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property".into(),
                ));
            }
            if o.get("host").is_some() {
                return Err(ApiError::BadRequest(
                    "Choosing the destination host is not supported; the scheduler picks it.".into(),
                ));
            }
            c.action(&ctx, &id, Action::Evacuate, &rid.0).await?;
            let pass = o
                .get("adminPass")
                .and_then(|p| p.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| stratus_auth::random_secret()[..12].to_string());
            Ok((StatusCode::OK, Json(json!({"adminPass": pass}))).into_response())
        }
        "createImage" => {
            let Some(o) = arg.as_object() else {
                return Err(ApiError::BadRequest(
                    "Invalid input for field/attribute createImage: it must be an object".into(),
                ));
            };
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "name" | "metadata")) {
                return Err(ApiError::BadRequest(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            let name = o.get("name").and_then(|n| n.as_str()).ok_or_else(|| {
                ApiError::BadRequest(
                    "Invalid input for field/attribute createImage. 'name' is a required property".into(),
                )
            })?;
            validate_name(name, "name")?;
            let mut metadata = BTreeMap::new();
            if let Some(m) = o.get("metadata") {
                let Some(m) = m.as_object() else {
                    return Err(ApiError::BadRequest(
                        "Invalid input for field/attribute metadata: it must be an object".into(),
                    ));
                };
                for (k, v) in m {
                    let Some(v) = v.as_str() else {
                        return Err(ApiError::BadRequest(format!(
                            "Invalid input for field/attribute metadata. Value of {k} is not a string"
                        )));
                    };
                    metadata.insert(k.clone(), v.to_string());
                }
            }
            let image_id = uuid::Uuid::new_v4().to_string();
            c.action(
                &ctx,
                &id,
                Action::CreateImage { name: name.to_string(), metadata, image_id: image_id.clone() },
                &rid.0,
            )
            .await?;
            let mut resp = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{}/image/v2/images/{image_id}", st.public_url)) {
                resp.headers_mut().insert(axum::http::header::LOCATION, v);
            }
            Ok(resp)
        }
        "forceDelete" => {
            null_only(action)?;
            c.force_delete(&ctx, &id, &rid.0).await?;
            accepted()
        }
        "lock" => {
            // locked_reason arrives with 2.73, above what this cloud serves.
            if !arg.is_null() {
                return Err(ApiError::BadRequest(format!(
                    "Invalid input for field/attribute lock. Value: {arg}. {arg} is not of type 'null' (locked_reason needs microversion 2.73; this cloud serves up to {})",
                    stratus_api::MAX_COMPUTE
                )));
            }
            c.set_lock(&ctx, &id, true, None, &rid.0).await?;
            accepted()
        }
        "unlock" => {
            null_only(action)?;
            c.set_lock(&ctx, &id, false, None, &rid.0).await?;
            accepted()
        }
        "os-resetState" => {
            let state = arg.get("state").and_then(|s| s.as_str()).ok_or_else(|| {
                ApiError::BadRequest(
                    "Invalid input for field/attribute os-resetState. 'state' is a required property".into(),
                )
            })?;
            let vm = match state {
                "active" => VmState::Active,
                "error" => VmState::Error,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid input for field/attribute state. Value: {state}. '{state}' is not one of ['active', 'error']"
                    )));
                }
            };
            c.reset_state(&ctx, &id, vm, &rid.0).await?;
            accepted()
        }
        other => {
            // Make sure the server exists for this caller before saying the action is unknown.
            c.get_visible(&ctx, &id).await?;
            Err(ApiError::BadRequest(format!("There is no such action: {other}")))
        }
    }
}

// ---------------------------------------------------------------- volume attachments

fn attachment_view(a: &stratus_db::AttachmentRow) -> Value {
    json!({"device": a.mountpoint, "id": a.volume_id, "serverId": a.server_id, "volumeId": a.volume_id})
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's volume attachments"), (status = 404, description = "Not found")))]
async fn volume_attachment_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.get_visible(&ctx, &id).await?;
    let atts = st.ds.attachment_list_for_server(&s.id).await?;
    Ok(Json(json!({"volumeAttachments": atts.iter().map(attachment_view).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), responses((status = 200, description = "One attachment"), (status = 404, description = "Not found")))]
async fn volume_attachment_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.get_visible(&ctx, &id).await?;
    let a = st.ds.attachment_list_for_server(&s.id).await?.into_iter().find(|a| a.volume_id == volume);
    let Some(a) = a else {
        return Err(ApiError::NotFound(format!("Instance {id} is not attached to volume {volume}.")));
    };
    Ok(Json(json!({"volumeAttachment": attachment_view(&a)})))
}

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), request_body(content = Object, description = "volumeAttachment with volumeId and optional device"), responses((status = 200, description = "Attachment reserved; the host opens the volume"), (status = 400, description = "Volume not available"), (status = 404, description = "Server or volume not found"), (status = 409, description = "Server state or lock")))]
async fn volume_attach(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v: Value = parse_json(&body)?;
    let Some(o) = v.get("volumeAttachment").and_then(|x| x.as_object()) else {
        return Err(ApiError::BadRequest("Invalid input: 'volumeAttachment' is a required property".into()));
    };
    if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "volumeId" | "device")) {
        return Err(ApiError::BadRequest(format!("Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let Some(vol) = o.get("volumeId").and_then(|x| x.as_str()).filter(|x| uuid::Uuid::parse_str(x).is_ok()) else {
        return Err(ApiError::BadRequest(
            "Invalid input for field/attribute volumeId: a volume UUID is required".into(),
        ));
    };
    let a = st.compute.attach_volume(&ctx, &id, vol, &rid.0).await?;
    Ok(Json(json!({"volumeAttachment": attachment_view(&a)})))
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), responses((status = 202, description = "Detach started"), (status = 400, description = "Root volume"), (status = 404, description = "Not attached"), (status = 409, description = "Host down or locked")))]
async fn volume_detach(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Path((id, volume)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.compute.detach_volume(&ctx, &id, &volume, &rid.0).await?;
    Ok(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- instance actions

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions", tag = "instance actions", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "Actions, newest first")))]
async fn instance_action_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.get_visible(&ctx, &id).await?;
    let actions = st.ds.action_list(&s.id).await?;
    let list: Vec<Value> = actions
        .iter()
        .map(|a| json!({"action": a.action, "instance_uuid": a.server_id, "message": a.message, "project_id": a.project_id, "request_id": a.request_id, "start_time": iso_micro(&a.start_time), "user_id": a.user_id}))
        .collect();
    Ok(Json(json!({"instanceActions": list})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-instance-actions/{req}", tag = "instance actions", params(("id" = String, Path, description = "Server id"), ("req" = String, Path, description = "Request id")), responses((status = 200, description = "Action with events (admins)"), (status = 404, description = "Not found")))]
async fn instance_action_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.get_visible(&ctx, &id).await?;
    let (a, events) = match st.ds.action_get(&s.id, &req).await {
        Ok(x) => x,
        Err(DbError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("Action for request_id {req} on instance {id} not found")));
        }
        Err(e) => return Err(e.into()),
    };
    let mut body = json!({"action": a.action, "instance_uuid": a.server_id, "message": a.message, "project_id": a.project_id, "request_id": a.request_id, "start_time": iso_micro(&a.start_time), "user_id": a.user_id});
    // Below 2.51 only admins see events (Nova policy os-instance-actions:events).
    if ctx.is_admin() {
        body["events"] = Value::Array(
            events
                .iter()
                .map(|e| json!({"event": e.event, "start_time": iso_micro(&e.start_time), "finish_time": e.finish_time.as_deref().map(iso_micro), "result": e.result, "traceback": e.details}))
                .collect(),
        );
    }
    Ok(Json(json!({"instanceAction": body})))
}

// ---------------------------------------------------------------- services

fn service_view(s: &ServiceRow, now: chrono::DateTime<chrono::Utc>, mv: Microversion) -> Value {
    let mut v = json!({
        "id": s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if s.is_up(now) { "up" } else { "down" },
        "updated_at": iso_micro(&s.updated_at),
        "disabled_reason": s.disabled_reason,
    });
    if mv.at_least(11) {
        v["forced_down"] = json!(s.forced_down);
    }
    v
}

#[utoipa::path(get, path = "/compute/v2.1/os-services", tag = "services", responses((status = 200, description = "Compute services with state up/down"), (status = 403, description = "Admins only")))]
async fn service_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    if !ctx.is_admin() {
        return Err(ApiError::Forbidden(
            "Policy doesn't allow os_compute_api:os-services:list to be performed.".into(),
        ));
    }
    let q = parse_query(q);
    let host = q.iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
    let binary = q.iter().find(|(k, _)| k == "binary").map(|(_, v)| v.clone());
    let now = st.ds.clock().now();
    let list: Vec<Value> = st
        .ds
        .service_list()
        .await?
        .iter()
        .filter(|s| host.as_ref().is_none_or(|h| *h == s.host) && binary.as_ref().is_none_or(|b| *b == s.binary))
        .map(|s| service_view(s, now, mv))
        .collect();
    Ok(Json(json!({"services": list})))
}

/// Legacy (below 2.53) service updates: `enable`, `disable`,
/// `disable-log-reason`, and from 2.11 `force-down`.
#[utoipa::path(put, path = "/compute/v2.1/os-services/{action}", tag = "services", params(("action" = String, Path, description = "enable | disable | disable-log-reason | force-down (2.11)")), request_body = UpdateServiceRequest, responses((status = 200, description = "Updated"), (status = 400, description = "Bad body"), (status = 404, description = "Unknown service")))]
async fn service_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !ctx.is_admin() {
        return Err(ApiError::Forbidden(
            "Policy doesn't allow os_compute_api:os-services:update to be performed.".into(),
        ));
    }
    let req: UpdateServiceRequest = parse_json(&body)?;
    let host =
        req.host.clone().ok_or_else(|| ApiError::BadRequest("Invalid input: 'host' is a required property".into()))?;
    let binary = req
        .binary
        .clone()
        .ok_or_else(|| ApiError::BadRequest("Invalid input: 'binary' is a required property".into()))?;
    let svc = match st.ds.service_get_by_host(&host).await {
        Ok(s) if s.binary == binary => s,
        Ok(_) | Err(DbError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("Service {binary} on host {host} could not be found.")));
        }
        Err(e) => return Err(e.into()),
    };
    let body = match action.as_str() {
        "enable" => {
            st.ds.service_update(&svc.uuid, Some(false), Some(None), None).await?;
            json!({"service": {"host": host, "binary": binary, "status": "enabled"}})
        }
        "disable" => {
            st.ds.service_update(&svc.uuid, Some(true), None, None).await?;
            json!({"service": {"host": host, "binary": binary, "status": "disabled"}})
        }
        "disable-log-reason" => {
            let reason = req.disabled_reason.clone().filter(|r| !r.is_empty() && r.len() <= 255).ok_or_else(|| {
                ApiError::BadRequest("Invalid input: 'disabled_reason' must be 1 to 255 characters".into())
            })?;
            st.ds.service_update(&svc.uuid, Some(true), Some(Some(reason.clone())), None).await?;
            json!({"service": {"host": host, "binary": binary, "status": "disabled", "disabled_reason": reason}})
        }
        "force-down" if mv.at_least(11) => {
            let forced = req
                .forced_down
                .ok_or_else(|| ApiError::BadRequest("Invalid input: 'forced_down' is a required property".into()))?;
            st.ds.service_update(&svc.uuid, None, None, Some(forced)).await?;
            tracing::warn!(host = %host, forced_down = forced, "operator changed forced_down");
            json!({"service": {"host": host, "binary": binary, "forced_down": forced}})
        }
        _ => return Err(ApiError::NotFound(format!("Unknown service action: {action}"))),
    };
    Ok(Json(body))
}

// ---------------------------------------------------------------- limits, zones

#[utoipa::path(get, path = "/compute/v2.1/limits", tag = "limits", responses((status = 200, description = "Absolute limits and counted usage")))]
async fn limits(State(st): State<AppState>, Auth(ctx): Auth, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let q = parse_query(q);
    let project = match q.iter().find(|(k, _)| k == "tenant_id") {
        Some((_, p)) if ctx.is_admin() => p.clone(),
        _ => ctx.project_id.clone(),
    };
    let l = st.compute.quota_limits(&project).await?;
    let u = st.ds.quota_usage(&project).await?;
    Ok(Json(json!({"limits": {"rate": [], "absolute": {
        "maxServerMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240, "maxImageMeta": 128,
        "maxTotalKeypairs": 100, "maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
        "maxServerGroups": 10, "maxServerGroupMembers": 10, "maxTotalFloatingIps": 10,
        "maxTotalInstances": l.instances, "maxTotalCores": l.cores, "maxTotalRAMSize": l.ram,
        "totalInstancesUsed": u.instances, "totalCoresUsed": u.cores, "totalRAMUsed": u.ram,
        "totalSecurityGroupsUsed": 0, "totalFloatingIpsUsed": 0, "totalServerGroupsUsed": 0,
    }}})))
}

async fn availability_zones(_a: Auth) -> Json<Value> {
    Json(json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}]}))
}
