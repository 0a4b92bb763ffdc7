//! Pure view builders: rows rendered as the api-ref shows them at the
//! negotiated microversion. Keys introduced by a later microversion are not
//! emitted below it (strict clients validate with schemas that forbid extra
//! keys). `public` is the cloud's externally visible base URL.

use crate::{MAX_COMPUTE, MIN_COMPUTE, Microversion};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stratus_db::{
    ActionRow, AttachmentRow, EventRow, FlavorRow, KeypairRow, PortRow, QuotaLimits, QuotaUsage, ServerRow, ServiceRow,
    parse_ts,
};
use stratus_types::{ServerId, ServiceState, VolumeId, api_status};

/// The v2.1 version object (`GET /compute`, `GET /compute/v2.1`).
pub fn version_object(public: &str) -> Value {
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

/// The legacy v2.0 entry Nova still lists first (clients pick the newest
/// version they know; its document is served at `/compute/v2/`).
pub fn version_v20_object(public: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{public}/compute/v2/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}],
    })
}

/// `self` and `bookmark` links of a resource at `path`.
pub fn link(public: &str, path: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{public}/compute/v2.1/{path}")},
        {"rel": "bookmark", "href": format!("{public}/compute/{path}")},
    ])
}

/// A timestamp as Nova shows it (seconds, `Z`).
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A timestamp as Nova shows it (microseconds, no zone).
pub fn iso_micro(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A flavor, in the index (`detail == false`) or detailed form, at `mv`:
/// `description` from 2.55 (both forms); the detailed form with
/// `extra_specs` when given (2.61, callers who may read them), `swap` 0
/// rather than "" when none from 2.75, without `rxtx_factor` and
/// `OS-FLV-DISABLED:disabled` from 2.102.
pub fn flavor(
    public: &str,
    f: &FlavorRow,
    detail: bool,
    mv: Microversion,
    extra_specs: Option<&BTreeMap<String, String>>,
) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": link(public, &format!("flavors/{}", f.id))});
    let Some(m) = v.as_object_mut() else { return v };
    if mv.at_least(55) {
        m.insert("description".into(), json!(f.description));
    }
    if detail {
        m.insert("ram".into(), json!(f.ram_mb));
        m.insert("disk".into(), json!(f.disk_gb));
        m.insert("vcpus".into(), json!(f.vcpus));
        let no_swap = if mv.at_least(75) { json!(0) } else { json!("") };
        m.insert("swap".into(), if f.swap_mb == 0 { no_swap } else { json!(f.swap_mb) });
        m.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral_gb));
        m.insert("os-flavor-access:is_public".into(), json!(f.is_public));
        if !mv.at_least(102) {
            m.insert("rxtx_factor".into(), json!(f.rxtx_factor));
            m.insert("OS-FLV-DISABLED:disabled".into(), json!(f.disabled));
        }
        if let Some(specs) = extra_specs {
            m.insert("extra_specs".into(), json!(specs));
        }
    }
    v
}

/// The `flavors_links` of a full page (Nova: as many flavors as the
/// `limit` asked for, or as the largest page when none was): the request's
/// parameters, sorted, with `marker` set to the page's last flavor.
pub fn flavors_links(
    public: &str,
    detail: bool,
    params: &[(String, String)],
    last: Option<&str>,
    n: usize,
    limit: i64,
) -> Option<Value> {
    let last = last?;
    if i64::try_from(n).ok()? != limit {
        return None;
    }
    let mut q: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    q.insert("marker", last);
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
    let path = if detail { "flavors/detail" } else { "flavors" };
    Some(json!([{"rel": "next", "href": format!("{public}/compute/v2.1/{path}?{}", query.join("&"))}]))
}

/// `application/x-www-form-urlencoded` text of a query key or value.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `{"flavor_access": [...]}`: the projects a private flavor is shared with.
pub fn flavor_access(flavor_id: &str, projects: &[String]) -> Value {
    let list: Vec<Value> = projects.iter().map(|p| json!({"flavor_id": flavor_id, "tenant_id": p})).collect();
    json!({ "flavor_access": list })
}

/// A server in the index form (id, name, links), as a JSON tree: what
/// [`ServerIndex`] writes for each server, kept as the plain statement of
/// that form its test compares against.
pub fn server_brief(public: &str, id: &ServerId, name: &str) -> Value {
    json!({"id": id, "name": name, "links": link(public, &format!("servers/{id}"))})
}

/// The body of `GET /servers` (the index form: id, name and links of each
/// server, then `servers_links` when a page is full), written straight to
/// the response. Pollers of the list (dashboards, `--wait` loops, the
/// benchmark's watcher) read it many times a second; building it as a
/// [`Value`] cost about 20 allocations per server (keys, maps, formatted
/// links, and `json!` copying nested values): half the CPU of a call
/// listing 1,000 servers. The keys and their order are those of
/// [`server_brief`] (serde_json maps are sorted).
pub struct ServerIndex {
    /// The cloud's externally visible base URL.
    pub public: String,
    /// The page of servers.
    pub servers: Vec<stratus_db::ServerBrief>,
    /// `servers_links` ([`servers_links`]), when the page is full.
    pub next: Option<Value>,
}

impl serde::Serialize for ServerIndex {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(1 + usize::from(self.next.is_some())))?;
        let servers: Vec<BriefEntry<'_>> =
            self.servers.iter().map(|s| BriefEntry { public: &self.public, s }).collect();
        m.serialize_entry("servers", &servers)?;
        if let Some(next) = &self.next {
            m.serialize_entry("servers_links", next)?;
        }
        m.end()
    }
}

/// One server of [`ServerIndex`].
struct BriefEntry<'a> {
    public: &'a str,
    s: &'a stratus_db::ServerBrief,
}

impl serde::Serialize for BriefEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let id = &self.s.id;
        let links = [
            LinkEntry { rel: "self", public: self.public, mid: "/compute/v2.1/servers/", id },
            LinkEntry { rel: "bookmark", public: self.public, mid: "/compute/servers/", id },
        ];
        let mut m = ser.serialize_map(Some(3))?;
        m.serialize_entry("id", id)?;
        m.serialize_entry("links", &links)?;
        m.serialize_entry("name", &self.s.name)?;
        m.end()
    }
}

/// A `{"href", "rel"}` link to a server, the href written without an
/// intermediate string.
struct LinkEntry<'a> {
    rel: &'static str,
    public: &'a str,
    mid: &'static str,
    id: &'a ServerId,
}

impl serde::Serialize for LinkEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("href", &format_args!("{}{}{}", self.public, self.mid, self.id))?;
        m.serialize_entry("rel", self.rel)?;
        m.end()
    }
}

/// What a server view shows besides the row, its ports and volumes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerExtras<'a> {
    /// `host_status` (2.16+), given only when the caller's policy allows
    /// it (Nova's `servers:show:host_status`, admins).
    pub host_status: Option<&'a str>,
    /// The server's tags (2.26+).
    pub tags: &'a [String],
    /// The flavor's extra specs for the embedded flavor (2.47+), given
    /// only when the caller may see them.
    pub extra_specs: Option<&'a BTreeMap<String, String>>,
    /// The boot image's properties (the image's `properties` JSON), for
    /// the embedded image properties of 2.98+.
    pub image_properties: Option<&'a str>,
}

/// The image properties a server view embeds (2.98): Nova shows the boot
/// image's standard properties (`hw_*`, `img_*`, `os_*` and the like, not
/// Glance's own `os_glance_*`, `os_hash_*` nor `os_hidden`), as strings.
pub fn image_properties(properties_json: Option<&str>) -> Value {
    let props: Map<String, Value> = properties_json.and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let standard = |k: &str| {
        (k.starts_with("hw_") || k.starts_with("img_") || k.starts_with("os_") || k.starts_with("trait:"))
            && !k.starts_with("os_glance_")
            && !k.starts_with("os_hash_")
            && k != "os_hidden"
    };
    let shown: Map<String, Value> = props
        .into_iter()
        .filter(|(k, _)| standard(k) && k.chars().count() <= 255)
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Null => return None,
                other => other.to_string(),
            };
            (text.chars().count() <= 255).then_some((k, Value::String(text)))
        })
        .collect();
    Value::Object(shown)
}

/// Nova's `host_status` of a server's host: `""` without a host (or an
/// unknown one), `DOWN` when forced down, `MAINTENANCE` when disabled,
/// else `UP` or `UNKNOWN` by the service's liveness.
pub fn host_status(service: Option<&ServiceRow>, up: bool) -> &'static str {
    match service {
        None => "",
        Some(s) if s.forced_down => "DOWN",
        Some(s) if s.disabled => "MAINTENANCE",
        Some(_) if up => "UP",
        Some(_) => "UNKNOWN",
    }
}

/// A server as the api-ref shows it at `mv`; `admin` adds the admin-only
/// attributes and fault details.
pub fn server(
    public: &str,
    s: &ServerRow,
    ports: &[&PortRow],
    volumes: &[VolumeId],
    admin: bool,
    mv: Microversion,
    extras: &ServerExtras<'_>,
) -> Value {
    let status = api_status(s.vm_state, s.task_state);
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
        Some(i) => {
            let mut img =
                json!({"id": i, "links": [{"rel": "bookmark", "href": format!("{public}/compute/images/{i}")}]});
            if mv.at_least(98) {
                img["properties"] = image_properties(extras.image_properties);
            }
            img
        }
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
        "created": iso(s.created_at),
        "updated": iso(s.updated_at),
        "addresses": addresses,
        "accessIPv4": s.access_ip_v4.clone().unwrap_or_default(),
        "accessIPv6": s.access_ip_v6.clone().unwrap_or_default(),
        "links": link(public, &format!("servers/{}", s.id)),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": s.availability_zone.clone().unwrap_or_else(|| "nova".into()),
        "config_drive": "",
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": s.launched_at.map(iso_micro),
        "OS-SRV-USG:terminated_at": s.terminated_at.map(iso_micro),
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": s.power_state.code(),
        "os-extended-volumes:volumes_attached": volumes.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
    });
    let Some(m) = v.as_object_mut() else { return v };
    if matches!(status, "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING") {
        m.insert("progress".into(), json!(s.progress));
    }
    // Nova lists the groups of the server's ports, and the key only when
    // there is one (no port, or every group removed: no key).
    let mut groups: Vec<String> = ports.iter().flat_map(|p| p.security_groups()).collect();
    groups.sort();
    groups.dedup();
    if !groups.is_empty() {
        m.insert("security_groups".into(), groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>().into());
    }
    if admin {
        m.insert("OS-EXT-SRV-ATTR:host".into(), json!(s.host));
        m.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(s.host));
        m.insert("OS-EXT-SRV-ATTR:instance_name".into(), json!(format!("instance-{}", &s.id.to_string()[..8])));
        if mv.at_least(3) {
            m.insert("OS-EXT-SRV-ATTR:reservation_id".into(), json!(s.reservation_id));
            m.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(0));
            m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(s.hostname));
            m.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            m.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(s.user_data));
        }
    }
    if mv.at_least(9) {
        m.insert("locked".into(), json!(s.locked));
    }
    if mv.at_least(90) {
        // 2.90 shows the guest's host name to every user.
        m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(s.hostname));
    }
    if mv.at_least(16)
        && let Some(h) = extras.host_status
    {
        m.insert("host_status".into(), json!(h));
    }
    if mv.at_least(19) {
        m.insert("description".into(), json!(s.description));
    }
    if mv.at_least(26) {
        m.insert("tags".into(), json!(extras.tags));
    }
    if mv.at_least(47) {
        let mut flavor = json!({
            "vcpus": s.vcpus, "ram": s.ram_mb, "disk": s.disk_gb, "ephemeral": s.ephemeral_gb,
            "swap": s.swap_mb, "original_name": s.flavor_name,
        });
        if let Some(specs) = extras.extra_specs {
            flavor["extra_specs"] = json!(specs);
        }
        m.insert("flavor".into(), flavor);
    }
    if mv.at_least(63) {
        // No image certificates are ever stored: signature checking is not offered.
        m.insert("trusted_image_certificates".into(), Value::Null);
    }
    if mv.at_least(73) {
        m.insert("locked_reason".into(), json!(s.locked_reason));
    }
    if mv.at_least(96) {
        // The zone the server was asked into (or pinned to by an unshelve).
        m.insert("pinned_availability_zone".into(), json!(s.availability_zone));
    }
    if mv.at_least(100) {
        let hints = s.scheduler_hints.as_deref().and_then(|h| serde_json::from_str::<Value>(h).ok());
        m.insert("scheduler_hints".into(), hints.unwrap_or_else(|| json!({})));
    }
    if matches!(status, "ERROR" | "DELETED")
        && let Some(f) = s.fault.as_deref().and_then(|f| serde_json::from_str::<Value>(f).ok())
    {
        // The fault's time is text inside its JSON, not a column: shown as
        // Nova does when it parses, as stored otherwise.
        let created =
            f["created"].as_str().map(|c| parse_ts(c).map(iso).unwrap_or_else(|_| c.to_string())).unwrap_or_default();
        let mut fault = json!({"code": f["code"], "message": f["message"], "created": created});
        if admin {
            fault["details"] = json!(f["message"]);
        }
        m.insert("fault".into(), fault);
    }
    v
}

/// `{"server": ...}` of show, update and rebuild: the view, and from 2.71
/// the server's groups (server groups are not served, so none).
pub fn server_show(
    public: &str,
    s: &ServerRow,
    ports: &[&PortRow],
    volumes: &[VolumeId],
    admin: bool,
    mv: Microversion,
    extras: &ServerExtras<'_>,
) -> Value {
    let mut body = json!({"server": server(public, s, ports, volumes, admin, mv, extras)});
    if mv.at_least(71) {
        body["server"]["server_groups"] = json!([]);
    }
    body
}

/// Before 2.75 Nova's update and rebuild answers leave out the extended
/// attributes a GET shows (status, availability zone, usage times, volumes,
/// security groups, host status, the address types; `key_name` unless
/// `keep_key_name`, as rebuild has it from 2.54); from 2.75 they are the
/// full view.
pub fn trim_before_2_75(body: &mut Value, mv: Microversion, keep_key_name: bool) {
    if mv.at_least(75) {
        return;
    }
    let hidden = |key: &str| {
        key.starts_with("OS-EXT-")
            || key.starts_with("OS-SRV-USG:")
            || (key == "key_name" && !keep_key_name)
            || matches!(
                key,
                "config_drive" | "os-extended-volumes:volumes_attached" | "security_groups" | "host_status"
            )
    };
    let Some(server) = body["server"].as_object_mut() else { return };
    server.retain(|k, _| !hidden(k));
    if let Some(Value::Object(nets)) = server.get_mut("addresses") {
        for ips in nets.values_mut().filter_map(Value::as_array_mut) {
            for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
                ip.retain(|k, _| !hidden(k));
            }
        }
    }
}

/// A rebuild's answer from the show body: trimmed before 2.75 (keeping
/// `key_name` from 2.54), from 2.57 the user data as it now is under its own
/// key (not the extended attribute), and the admin password.
pub fn rebuild_answer(body: &mut Value, mv: Microversion, user_data: Option<&str>, admin_pass: &str) {
    trim_before_2_75(body, mv, mv.at_least(54));
    let Some(server) = body["server"].as_object_mut() else { return };
    if mv.at_least(57) {
        server.remove("OS-EXT-SRV-ATTR:user_data");
        server.insert("user_data".into(), json!(user_data));
    }
    server.insert("adminPass".into(), json!(admin_pass));
}

/// The `servers_links` of a full page (`limit` rows returned), or none.
pub fn servers_links(
    public: &str,
    last: Option<&ServerId>,
    n: usize,
    limit: Option<i64>,
    detail: bool,
) -> Option<Value> {
    let l = limit?;
    let last = last?;
    if n as i64 != l {
        return None;
    }
    let path = if detail { "servers/detail" } else { "servers" };
    Some(json!([{"rel": "next", "href": format!("{public}/compute/v2.1/{path}?limit={l}&marker={last}")}]))
}

/// The `202` answer of `createImage`: below 2.45 no body and a Location
/// naming the image; from 2.45 `{"image_id": ...}` and no Location (Nova).
pub fn create_image_answer(public: &str, image_id: &str, mv: Microversion) -> (Option<Value>, Option<String>) {
    if mv.at_least(45) {
        (Some(json!({"image_id": image_id})), None)
    } else {
        (None, Some(format!("{public}/image/v2/images/{image_id}")))
    }
}

/// The `202` body of a server create.
pub fn server_created(public: &str, id: &str, admin_pass: &str, with_network: bool) -> Value {
    let mut body = json!({"server": {
        "id": id,
        "links": link(public, &format!("servers/{id}")),
        "OS-DCF:diskConfig": "MANUAL",
        "adminPass": admin_pass,
    }});
    if with_network {
        body["server"]["security_groups"] = json!([{"name": "default"}]);
    }
    body
}

/// A volume attachment of a server at `mv`: `tag` from 2.70,
/// `delete_on_termination` from 2.79, and from 2.89 `attachment_id` and
/// `bdm_uuid` instead of `id` (Stratus keeps one record per attachment:
/// its id is both).
pub fn attachment(a: &AttachmentRow, tag: Option<&str>, mv: Microversion) -> Value {
    let mut v = json!({"device": a.mountpoint, "serverId": a.server_id, "volumeId": a.volume_id});
    if mv.at_least(89) {
        v["attachment_id"] = json!(a.id);
        v["bdm_uuid"] = json!(a.id);
    } else {
        v["id"] = json!(a.volume_id);
    }
    if mv.at_least(70) {
        v["tag"] = json!(tag);
    }
    if mv.at_least(79) {
        v["delete_on_termination"] = json!(a.delete_on_termination);
    }
    v
}

/// An instance action (without events); `updated_at` from 2.58.
pub fn instance_action(a: &ActionRow, mv: Microversion) -> Value {
    let mut v = json!({"action": a.action, "instance_uuid": a.server_id, "message": a.message, "project_id": a.project_id, "request_id": a.request_id, "start_time": iso_micro(a.start_time), "user_id": a.user_id});
    if mv.at_least(58) {
        v["updated_at"] = json!(iso_micro(a.updated_at));
    }
    v
}

/// The `hostId` Nova shows for a host to a project (as in server views): a
/// digest of the project and the host, empty without a host.
pub fn host_id(project_id: &str, host: Option<&str>) -> String {
    use sha2::{Digest, Sha224};
    host.map(|h| hex::encode(Sha224::digest(format!("{project_id}{h}").as_bytes()))).unwrap_or_default()
}

/// An instance action with its events, as Nova's policies and microversions
/// shape them: events for admins, and from 2.51 for everyone who may see
/// the action; `traceback` for admins; from 2.62 `hostId` for everyone and
/// `host` for admins; from 2.84 `details` for admins.
pub fn instance_action_with_events(a: &ActionRow, events: &[EventRow], admin: bool, mv: Microversion) -> Value {
    let mut body = instance_action(a, mv);
    if admin || mv.at_least(51) {
        body["events"] = Value::Array(
            events
                .iter()
                .map(|e| {
                    let mut v = json!({"event": e.event, "start_time": iso_micro(e.start_time), "finish_time": e.finish_time.map(iso_micro), "result": e.result});
                    if admin {
                        v["traceback"] = json!(e.details);
                    }
                    if mv.at_least(62) {
                        v["hostId"] = json!(host_id(&a.project_id, e.host.as_deref()));
                        if admin {
                            v["host"] = json!(e.host);
                        }
                    }
                    if mv.at_least(84) && admin {
                        v["details"] = json!(e.details);
                    }
                    v
                })
                .collect(),
        );
    }
    body
}

/// An aggregate as Nova shows it: `uuid` from 2.41; a create's answer has
/// no `hosts` or `metadata` (`members == false`).
pub fn aggregate(a: &stratus_db::AggregateRow, members: bool, mv: Microversion) -> Value {
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "availability_zone": a.availability_zone(),
        "created_at": iso_micro(a.created_at),
        "updated_at": a.updated_at.map(iso_micro),
        "deleted": false,
        "deleted_at": null,
    });
    if mv.at_least(41) {
        v["uuid"] = json!(a.uuid);
    }
    if members && let Some(o) = v.as_object_mut() {
        o.insert("hosts".into(), json!(a.hosts));
        o.insert("metadata".into(), json!(a.metadata));
    }
    v
}

/// Server diagnostics in Nova's standard form (2.48): the VM's state, its
/// sizes, and one entry per NIC and disk, with the counters the control
/// plane does not collect as null. `driver` names Nova's driver closest to
/// what runs the VM (KVM through QEMU: libvirt's), as the format allows
/// only Nova's drivers there.
pub fn diagnostics_v248(s: &ServerRow, macs: &[&str], disks: usize, uptime: Option<i64>) -> Value {
    let state = s.power_state.nova_name();
    let nic = |mac: &&str| {
        json!({"mac_address": mac, "rx_octets": null, "rx_errors": null, "rx_drop": null, "rx_packets": null,
            "rx_rate": null, "tx_octets": null, "tx_errors": null, "tx_drop": null, "tx_packets": null, "tx_rate": null})
    };
    let disk = json!({"read_bytes": null, "read_requests": null, "write_bytes": null, "write_requests": null, "errors_count": null});
    json!({
        "state": state,
        "driver": "libvirt",
        "hypervisor": "kvm",
        "hypervisor_os": "linux",
        "uptime": uptime,
        "config_drive": false,
        "num_cpus": s.vcpus,
        "num_nics": macs.len(),
        "num_disks": disks,
        "memory_details": {"maximum": s.ram_mb, "used": null},
        "cpu_details": [],
        "nic_details": macs.iter().map(nic).collect::<Vec<_>>(),
        "disk_details": vec![disk; disks],
    })
}

/// A compute service; `forced_down` from 2.11, its UUID as `id` from 2.53.
pub fn service(s: &ServiceRow, up: bool, mv: Microversion) -> Value {
    let mut v = json!({
        "id": if mv.at_least(53) { json!(s.uuid) } else { json!(s.id) },
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if up { ServiceState::Up } else { ServiceState::Down },
        "updated_at": iso_micro(s.updated_at),
        "disabled_reason": s.disabled_reason,
    });
    if mv.at_least(11) {
        v["forced_down"] = json!(s.forced_down);
    }
    v
}

/// What a legacy `os-services` update changed, as the response shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceChangeView<'a> {
    /// `enable`.
    Enabled,
    /// `disable` / `disable-log-reason`.
    Disabled(Option<&'a str>),
    /// `force-down`.
    ForcedDown(bool),
}

/// The body of a legacy `PUT /os-services/{action}`.
pub fn service_updated(host: &str, binary: &str, change: ServiceChangeView<'_>) -> Value {
    match change {
        ServiceChangeView::Enabled => json!({"service": {"host": host, "binary": binary, "status": "enabled"}}),
        ServiceChangeView::Disabled(None) => {
            json!({"service": {"host": host, "binary": binary, "status": "disabled"}})
        }
        ServiceChangeView::Disabled(Some(reason)) => {
            json!({"service": {"host": host, "binary": binary, "status": "disabled", "disabled_reason": reason}})
        }
        ServiceChangeView::ForcedDown(forced) => {
            json!({"service": {"host": host, "binary": binary, "forced_down": forced}})
        }
    }
}

/// Absolute limits with counted usage (`GET /limits`) at `mv`: the network
/// keys leave at 2.36 (Nova stopped proxying Neutron), `maxImageMeta` at 2.39
/// (no image-metadata proxy), the personality keys at 2.57.
pub fn limits(l: &QuotaLimits, u: &QuotaUsage, mv: Microversion) -> Value {
    let mut abs = json!({
        "maxServerMeta": l.metadata_items, "maxPersonality": l.injected_files,
        "maxPersonalitySize": l.injected_file_content_bytes, "maxImageMeta": l.metadata_items,
        "maxTotalKeypairs": l.key_pairs, "maxSecurityGroups": l.security_groups,
        "maxSecurityGroupRules": l.security_group_rules, "maxServerGroups": l.server_groups,
        "maxServerGroupMembers": l.server_group_members, "maxTotalFloatingIps": l.floating_ips,
        "maxTotalInstances": l.instances, "maxTotalCores": l.cores, "maxTotalRAMSize": l.ram,
        "totalInstancesUsed": u.instances, "totalCoresUsed": u.cores, "totalRAMUsed": u.ram,
        "totalSecurityGroupsUsed": 0, "totalFloatingIpsUsed": 0, "totalServerGroupsUsed": 0,
    });
    let mut gone: Vec<&str> = Vec::new();
    if mv.at_least(36) {
        gone.extend([
            "maxSecurityGroups",
            "maxSecurityGroupRules",
            "maxTotalFloatingIps",
            "totalSecurityGroupsUsed",
            "totalFloatingIpsUsed",
        ]);
    }
    if mv.at_least(39) {
        gone.push("maxImageMeta");
    }
    if mv.at_least(57) {
        gone.extend(["maxPersonality", "maxPersonalitySize"]);
    }
    if let Some(m) = abs.as_object_mut() {
        m.retain(|k, _| !gone.contains(&k.as_str()));
    }
    json!({"limits": {"rate": [], "absolute": abs}})
}

/// The legacy network quotas Nova stops showing (and accepting) at 2.36 in
/// quota sets and at 2.50 in quota classes.
const NETWORK_QUOTAS: [&str; 4] = ["fixed_ips", "floating_ips", "security_groups", "security_group_rules"];

/// The personality quotas gone with personality files at 2.57.
const PERSONALITY_QUOTAS: [&str; 3] = ["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"];

/// Quota resources a quota set (`class == false`) or a quota class
/// (`class == true`) neither shows nor accepts at `mv`, as Nova filters them.
pub fn quota_hidden(mv: Microversion, class: bool) -> Vec<&'static str> {
    let mut hidden = Vec::new();
    if class && !mv.at_least(50) {
        hidden.extend(CLASS_HIDDEN_BEFORE_2_50);
    }
    if mv.at_least(if class { 50 } else { 36 }) {
        hidden.extend(NETWORK_QUOTAS);
    }
    if mv.at_least(57) {
        hidden.extend(PERSONALITY_QUOTAS);
    }
    hidden
}

/// Resources a quota class shows only from microversion 2.50 (Nova hid the
/// server group quotas of classes before).
const CLASS_HIDDEN_BEFORE_2_50: [&str; 2] = ["server_groups", "server_group_members"];

/// The limits of a quota set as a JSON object, with `id` when given (show
/// answers carry it, update answers do not), without the `hide` resources.
fn quota_object(id: Option<&str>, l: &QuotaLimits, hide: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), json!(id));
    }
    for r in QuotaLimits::RESOURCES.iter().filter(|r| !hide.contains(r)) {
        m.insert((*r).into(), json!(l.get(r).unwrap_or(-1)));
    }
    m
}

/// `{"quota_set": {...}}` (`GET /os-quota-sets/{id}`, `.../defaults`, `PUT`).
pub fn quota_set(id: Option<&str>, l: &QuotaLimits, mv: Microversion) -> Value {
    json!({"quota_set": quota_object(id, l, &quota_hidden(mv, false))})
}

/// `{"quota_set": {"id", resource: {"in_use", "limit", "reserved"}}}`
/// (`GET /os-quota-sets/{id}/detail`); `in_use` holds the counted usage
/// per resource (absent: 0). Nothing is ever reserved (Nova counts).
pub fn quota_set_detail(
    id: &str,
    l: &QuotaLimits,
    in_use: &std::collections::BTreeMap<&str, i64>,
    mv: Microversion,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    let hidden = quota_hidden(mv, false);
    for r in QuotaLimits::RESOURCES.into_iter().filter(|r| !hidden.contains(r)) {
        let used = in_use.get(r).copied().unwrap_or(0);
        m.insert(r.into(), json!({"in_use": used, "limit": l.get(r).unwrap_or(-1), "reserved": 0}));
    }
    json!({"quota_set": m})
}

/// `{"quota_class_set": {...}}`, with `id` on show; below 2.50 without the
/// server group quotas, from 2.50 without the network ones.
pub fn quota_class_set(id: Option<&str>, l: &QuotaLimits, mv: Microversion) -> Value {
    json!({"quota_class_set": quota_object(id, l, &quota_hidden(mv, true))})
}

/// A key pair in a list (`{"keypair": {...}}` items; `type` from 2.2).
pub fn keypair_brief(k: &KeypairRow, mv: Microversion) -> Value {
    let mut v = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if mv >= Microversion::new(2, 2) {
        v["type"] = k.key_type.clone().into();
    }
    json!({"keypair": v})
}

/// A key pair as shown on its own (Nova's detail keys; `type` from 2.2).
pub fn keypair(k: &KeypairRow, mv: Microversion) -> Value {
    let mut v = json!({
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "user_id": k.user_id,
        "id": k.id,
        "deleted": false,
        "created_at": iso_micro(k.created_at),
        "updated_at": null,
        "deleted_at": null,
    });
    if mv >= Microversion::new(2, 2) {
        v["type"] = k.key_type.clone().into();
    }
    json!({"keypair": v})
}

/// A key pair just created: the private key when it was generated here.
pub fn keypair_created(k: &KeypairRow, private_key: Option<&str>, mv: Microversion) -> Value {
    let mut v = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint, "user_id": k.user_id});
    if let Some(p) = private_key {
        v["private_key"] = p.into();
    }
    if mv >= Microversion::new(2, 2) {
        v["type"] = k.key_type.clone().into();
    }
    json!({"keypair": v})
}
