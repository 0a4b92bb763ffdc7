//! Compute API v2.1 request bodies. Unknown keys are refused where Nova's
//! JSON schemas set `additionalProperties: false`, so typos give a 400
//! instead of being silently ignored. Each body has a checked form
//! ([`ServerCreate`], [`ServerUpdate`], [`VolumeAttach`]) built with Nova's
//! messages; what needs the datastore is checked by the compute service.

use super::{RequestError, ref_id, truthy, validate_name};
use crate::Microversion;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /servers` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServerRequest {
    /// The server to create.
    pub server: CreateServer,
    /// Scheduler hints (accepted, ignored: one cell, no affinity groups).
    #[serde(rename = "OS-SCH-HNT:scheduler_hints", default)]
    #[schema(value_type = Object)]
    pub scheduler_hints: Option<Value>,
    /// Scheduler hints under the key newer clients send (accepted, ignored).
    #[serde(rename = "os:scheduler_hints", default)]
    #[schema(value_type = Object)]
    pub os_scheduler_hints: Option<Value>,
}

/// The `server` object of a create request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    /// Display name, 1..255 characters.
    pub name: String,
    /// Image id (or an image URL whose last segment is the id).
    #[serde(rename = "imageRef", default)]
    pub image_ref: Option<String>,
    /// Flavor id (or a flavor URL).
    #[serde(rename = "flavorRef")]
    #[schema(value_type = String)]
    pub flavor_ref: Value,
    /// `auto`, `none`, or a list of `{uuid|port|fixed_ip}`.
    #[serde(default)]
    #[schema(schema_with = networks_schema)]
    pub networks: Option<Value>,
    /// String to string metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Number of servers to create at least.
    #[serde(default)]
    pub min_count: Option<Value>,
    /// Number of servers to create at most.
    #[serde(default)]
    pub max_count: Option<Value>,
    /// Return only the reservation id.
    #[serde(default)]
    pub return_reservation_id: Option<Value>,
    /// Admin password (generated when absent).
    #[serde(rename = "adminPass", default)]
    pub admin_pass: Option<String>,
    /// Key pair name.
    #[serde(default)]
    pub key_name: Option<String>,
    /// Availability zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Base64 user data.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Security groups by name (accepted; one implicit group).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub security_groups: Option<Value>,
    /// Config drive flag.
    #[serde(default)]
    #[schema(value_type = bool)]
    pub config_drive: Option<Value>,
    /// Disk config (`AUTO`/`MANUAL`).
    #[serde(rename = "OS-DCF:diskConfig", default)]
    pub disk_config: Option<String>,
    /// Access IPv4 address.
    #[serde(rename = "accessIPv4", default)]
    #[schema(value_type = Option<String>)]
    pub access_ipv4: Option<Value>,
    /// Access IPv6 address.
    #[serde(rename = "accessIPv6", default)]
    #[schema(value_type = Option<String>)]
    pub access_ipv6: Option<Value>,
    /// Files to inject (legacy, accepted and ignored below 2.57).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub personality: Option<Value>,
    /// Block device mappings (volumes arrive with the volumes work).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub block_device_mapping_v2: Option<Value>,
    /// Legacy block device mapping.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub block_device_mapping: Option<Value>,
    /// Free-text description (2.19+), at most 255 characters or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Value>,
    /// Tags of the new server (2.52+).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Value>,
    /// Image signature certificates (2.63+): only null is accepted here.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub trusted_image_certificates: Option<Value>,
    /// The compute host to build on (2.74+, admins).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub host: Option<Value>,
    /// The hypervisor (node) to build on (2.74+, admins; a node is named as its host here).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub hypervisor_hostname: Option<Value>,
    /// The guest's host name (2.90+; an FQDN from 2.94).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub hostname: Option<Value>,
}

/// A key that is present (even as `null`) is `Some`: a microversion check
/// must see a `null` the client sent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The OpenAPI schema of `networks`: `auto`, `none`, or a list of objects.
fn networks_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["auto", "none"])))
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object)))
        .build();
    utoipa::openapi::RefOr::T(Schema::OneOf(one_of))
}

/// `PUT /os-services/{id}` body (2.53+) or the legacy enable/disable bodies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceRequest {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Force the service down (2.11+).
    #[serde(default)]
    pub forced_down: Option<bool>,
    /// Host (legacy body).
    #[serde(default)]
    pub host: Option<String>,
    /// Binary (legacy body).
    #[serde(default)]
    pub binary: Option<String>,
}

/// `networks` of a create request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Networks {
    /// `auto` (or absent): one fixed IP on the default network.
    Auto,
    /// `none`: no network.
    None,
    /// A list of `{uuid|port|fixed_ip}` (an empty list means no network).
    List(Vec<Value>),
}

impl Networks {
    /// Parse `networks` as Nova's schema allows it.
    pub fn parse(v: Option<&Value>) -> Result<Self, RequestError> {
        match v {
            None => Ok(Self::Auto),
            Some(Value::String(x)) if x == "auto" => Ok(Self::Auto),
            Some(Value::String(x)) if x == "none" => Ok(Self::None),
            Some(Value::Array(a)) => Ok(Self::List(a.clone())),
            Some(other) => Err(RequestError::BadRequest(format!(
                "Invalid input for field/attribute networks. Value: {other}. It must be 'auto', 'none' or a list"
            ))),
        }
    }

    /// Does the server get a port?
    pub fn allocates(&self) -> bool {
        match self {
            Self::Auto => true,
            Self::None => false,
            Self::List(l) => !l.is_empty(),
        }
    }
}

/// One `block_device_mapping_v2` entry. Read leniently, as Nova's schema
/// does for these keys (numbers may arrive as strings; unknown keys ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockDeviceMappingV2 {
    /// `source_type` (empty when absent).
    pub source_type: String,
    /// `destination_type` (`local` when absent).
    pub destination_type: String,
    /// `uuid` of the image or volume.
    pub uuid: Option<String>,
    /// `boot_index`.
    pub boot_index: Option<i64>,
    /// `delete_on_termination`.
    pub delete_on_termination: bool,
    /// `volume_size` GiB.
    pub volume_size: Option<i64>,
    /// Device `tag` (2.32 and 2.42+; kept for the guest's metadata).
    pub tag: Option<String>,
    /// `volume_type` id or name of a volume made for the server (2.67+).
    pub volume_type: Option<String>,
}

fn int_or_string(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(x)) => x.parse().ok(),
        _ => None,
    }
}

impl BlockDeviceMappingV2 {
    /// Read one entry.
    pub fn from_value(b: &Value) -> Self {
        Self {
            source_type: b.get("source_type").and_then(|v| v.as_str()).unwrap_or("").to_string(),
            destination_type: b.get("destination_type").and_then(|v| v.as_str()).unwrap_or("local").to_string(),
            uuid: b.get("uuid").and_then(|v| v.as_str()).map(str::to_string),
            boot_index: int_or_string(b.get("boot_index")),
            delete_on_termination: match b.get("delete_on_termination") {
                Some(Value::Bool(v)) => *v,
                Some(Value::String(x)) => truthy(x),
                _ => false,
            },
            volume_size: int_or_string(b.get("volume_size")),
            tag: b.get("tag").and_then(|v| v.as_str()).map(str::to_string),
            volume_type: b.get("volume_type").and_then(|v| v.as_str()).map(str::to_string),
        }
    }
}

/// A create request whose shape is valid; what needs the datastore (image,
/// flavor, volumes) is the compute service's to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCreate {
    /// Name.
    pub name: String,
    /// Image id from `imageRef` (last URL segment), if not empty.
    pub image_ref: Option<String>,
    /// `flavorRef` as given.
    pub flavor_ref: String,
    /// Flavor id from `flavorRef` (last URL segment).
    pub flavor_id: String,
    /// `block_device_mapping_v2`.
    pub block_devices: Vec<BlockDeviceMappingV2>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Availability zone (`nova` or absent).
    pub availability_zone: Option<String>,
    /// Networks.
    pub networks: Networks,
    /// How many servers (`max_count`, at least `min_count`).
    pub count: u32,
    /// Admin password given by the client.
    pub admin_pass: Option<String>,
    /// Answer with the reservation id only.
    pub return_reservation_id: bool,
    /// Description (2.19+).
    pub description: Option<String>,
    /// Tags (2.52+), checked and without duplicates.
    pub tags: Vec<String>,
    /// User data (base64) as sent.
    pub user_data: Option<String>,
    /// `host` asked for (2.74+).
    pub host: Option<String>,
    /// `hypervisor_hostname` asked for (2.74+).
    pub hypervisor_hostname: Option<String>,
    /// The guest's host name (2.90+).
    pub hostname: Option<String>,
    /// Scheduler hints as given (an object), kept to be shown from 2.100.
    pub scheduler_hints: Option<Value>,
    /// `accessIPv4` / `accessIPv6`, checked and normalised.
    pub access_ips: super::AccessIps,
}

fn count_param(v: &Option<Value>, name: &str) -> Result<Option<u32>, RequestError> {
    let bad = |what: String| RequestError::BadRequest(format!("Invalid input for field/attribute {name}. {what}"));
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n >= 1 && *n <= 1000)
            .map(|n| Some(n as u32))
            .ok_or_else(|| bad(format!("Value: {n}. It must be an integer between 1 and 1000"))),
        Some(Value::String(s)) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1 && *n <= 1000)
            .map(Some)
            .ok_or_else(|| bad(format!("Value: {s}. It must be an integer between 1 and 1000"))),
        Some(other) => Err(bad(format!("Value: {other}. It is not an integer"))),
    }
}

fn check_metadata(m: Option<BTreeMap<String, Value>>) -> Result<BTreeMap<String, String>, RequestError> {
    let metadata = metadata_entries(m.unwrap_or_default())?;
    if metadata.len() > 128 {
        return Err(RequestError::MetadataQuota(
            "Quota exceeded for metadata_items: Requested more than 128 items".into(),
        ));
    }
    Ok(metadata)
}

/// Nova's checks of metadata entries: keys of 1 to 255 characters, values
/// strings of at most 255 (how many a server may hold is the quota's, checked
/// where the project's limit is known).
fn metadata_entries(m: impl IntoIterator<Item = (String, Value)>) -> Result<BTreeMap<String, String>, RequestError> {
    let mut metadata = BTreeMap::new();
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(RequestError::BadRequest(
                "Invalid input for field/attribute metadata. Metadata keys must be 1 to 255 characters long".into(),
            ));
        }
        let Value::String(v) = v else {
            return Err(RequestError::BadRequest(format!(
                "Invalid input for field/attribute metadata. Value of {k} is not a string"
            )));
        };
        if v.chars().count() > 255 {
            return Err(RequestError::BadRequest(format!(
                "Invalid input for field/attribute metadata. Value of {k} is longer than 255 characters"
            )));
        }
        metadata.insert(k, v);
    }
    Ok(metadata)
}

/// Metadata given with an action (rebuild), with Nova's entry checks.
pub(crate) fn metadata_for_action(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, RequestError> {
    metadata_entries(m.clone())
}

/// The body of `PUT` and `POST /servers/{id}/metadata`: `{"metadata": {...}}`
/// and nothing else (Nova's schema: `metadata` required, no other key).
pub fn parse_metadata_body(v: &Value) -> Result<BTreeMap<String, String>, RequestError> {
    let Some(body) = v.as_object() else {
        return Err(RequestError::BadRequest("Malformed request body: an object is expected".into()));
    };
    if let Some(extra) = body.keys().find(|k| *k != "metadata") {
        return Err(RequestError::BadRequest(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    match body.get("metadata") {
        Some(Value::Object(m)) => metadata_entries(m.clone()),
        Some(_) => {
            Err(RequestError::BadRequest("Invalid input for field/attribute metadata. Value: must be an object".into()))
        }
        None => Err(RequestError::BadRequest("'metadata' is a required property".into())),
    }
}

/// The body of `PUT /servers/{id}/metadata/{key}`: `{"meta": {key: value}}`
/// with exactly the key the URL names; returns the value.
pub fn parse_meta_item(v: &Value, url_key: &str) -> Result<String, RequestError> {
    let meta = match v.as_object().map(|b| (b.get("meta"), b.len())) {
        Some((Some(Value::Object(m)), 1)) => m,
        Some((Some(_), 1)) => {
            return Err(RequestError::BadRequest(
                "Invalid input for field/attribute meta. Value: must be an object".into(),
            ));
        }
        Some((Some(_), _)) => {
            return Err(RequestError::BadRequest("Additional properties are not allowed in the body".into()));
        }
        _ => return Err(RequestError::BadRequest("'meta' is a required property".into())),
    };
    if meta.len() > 1 {
        return Err(RequestError::BadRequest("Request body contains too many items".into()));
    }
    let mut entries = metadata_entries(meta.clone())?;
    match entries.remove(url_key) {
        Some(value) => Ok(value),
        None if entries.is_empty() => Err(RequestError::BadRequest(
            "Invalid input for field/attribute meta. Value: {}. {} does not have enough properties".into(),
        )),
        None => Err(RequestError::BadRequest("Request body and URI mismatch".into())),
    }
}

/// A key of the create body that Nova's schema at `mv` does not know: 400.
fn not_at(key: &str) -> RequestError {
    RequestError::BadRequest(format!(
        "Invalid input for field/attribute server. Additional properties are not allowed ('{key}' was unexpected)"
    ))
}

/// Is a device `tag` accepted at `mv` on a block device mapping? (Nova
/// took it at 2.32 only, by a slip, then again from 2.42.)
fn bdm_tag_allowed(mv: Microversion) -> bool {
    mv == Microversion::new(2, 32) || mv.at_least(42)
}

/// Is a device `tag` accepted at `mv` on a `networks` entry? (2.32 to
/// 2.36, then again from 2.42.)
fn network_tag_allowed(mv: Microversion) -> bool {
    (mv.at_least(32) && !mv.at_least(37)) || mv.at_least(42)
}

/// Check one `networks` entry as Nova's schema does at `mv`.
fn check_network_entry(e: &Value, mv: Microversion) -> Result<(), RequestError> {
    let Some(o) = e.as_object() else {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute networks. Value: {e}. {e} is not of type 'object'"
        )));
    };
    let mut allowed = vec!["uuid", "port", "fixed_ip"];
    if network_tag_allowed(mv) {
        allowed.push("tag");
    }
    only_keys(o, &allowed)?;
    if let Some(t) = o.get("tag") {
        let Some(t) = t.as_str() else {
            return Err(RequestError::BadRequest("Invalid input for field/attribute tag. It must be a string".into()));
        };
        super::validate_tag(t, "tag")?;
    }
    if mv.at_least(37)
        && let Some(u) = o.get("uuid")
        && u.as_str().is_none_or(|u| uuid::Uuid::parse_str(u).is_err())
    {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute uuid. Value: {u}. {u} is not a 'uuid'"
        )));
    }
    Ok(())
}

/// The one security group each project has: Stratus has no Neutron and
/// filters no traffic, and every port starts in this group (README
/// "Security").
pub const DEFAULT_SECURITY_GROUP: &str = "default";

/// A create's `security_groups`: Nova's schema (a list of `{name}`), and
/// each a group the project has (Nova answers an unknown one with 400).
fn check_security_groups(v: Option<&Value>) -> Result<(), RequestError> {
    let Some(v) = v else { return Ok(()) };
    let Some(list) = v.as_array() else {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute security_groups. Value: {v}. {v} is not of type 'array'"
        )));
    };
    for g in list {
        let name = g.as_object().filter(|o| o.keys().all(|k| k == "name")).and_then(|o| o.get("name"));
        match name.and_then(Value::as_str) {
            Some(DEFAULT_SECURITY_GROUP) => {}
            Some(n) => return Err(RequestError::BadRequest(format!("Security group {n} not found."))),
            None => {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute security_groups. Value: {g}. It must be an object with a string 'name' only"
                )));
            }
        }
    }
    Ok(())
}

impl CreateServerRequest {
    /// Check the body's shape at the base microversion.
    pub fn check(self) -> Result<ServerCreate, RequestError> {
        self.check_at(crate::MIN_COMPUTE)
    }

    /// Check the body's shape with Nova's schema and messages at `mv`.
    pub fn check_at(self, mv: Microversion) -> Result<ServerCreate, RequestError> {
        let scheduler_hints = match self.os_scheduler_hints.or(self.scheduler_hints) {
            None | Some(Value::Null) => None,
            Some(h @ Value::Object(_)) => Some(h),
            Some(other) => {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute os:scheduler_hints. Value: {other}. {other} is not of type 'object'"
                )));
            }
        };
        let s = self.server;
        validate_name(&s.name, "name")?;
        let access_ips = super::AccessIps::parse(s.access_ipv4.as_ref(), s.access_ipv6.as_ref())?;
        if s.description.is_some() && !mv.at_least(19) {
            return Err(not_at("description"));
        }
        if s.tags.is_some() && !mv.at_least(52) {
            return Err(not_at("tags"));
        }
        if s.personality.is_some() && mv.at_least(57) {
            return Err(not_at("personality"));
        }
        if let Some(c) = &s.trusted_image_certificates {
            if !mv.at_least(63) {
                return Err(not_at("trusted_image_certificates"));
            }
            super::check_trusted_certs(c)?;
        }
        let destination = |key: &str, v: &Option<Value>| -> Result<Option<String>, RequestError> {
            match v {
                None => Ok(None),
                Some(_) if !mv.at_least(74) => Err(not_at(key)),
                Some(Value::String(h)) if (1..=255).contains(&h.chars().count()) => Ok(Some(h.clone())),
                Some(other) => Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute {key}. Value: {other}. It must be a string of 1 to 255 characters"
                ))),
            }
        };
        check_security_groups(s.security_groups.as_ref())?;
        let host = destination("host", &s.host)?;
        let hypervisor_hostname = destination("hypervisor_hostname", &s.hypervisor_hostname)?;
        let hostname = match &s.hostname {
            None => None,
            Some(_) if !mv.at_least(90) => return Err(not_at("hostname")),
            Some(h) => Some(super::validate_hostname(h, mv)?),
        };
        let description = match &s.description {
            Some(d) => super::validate_description(d)?,
            None => None,
        };
        let tags = match &s.tags {
            Some(t) => super::parse_tags(t, "tags")?,
            None => Vec::new(),
        };
        let user_data = match &s.user_data {
            Some(u) => super::validate_user_data(&Value::String(u.clone()))?,
            None => None,
        };
        let mut block_devices = Vec::new();
        if let Some(bdms) = &s.block_device_mapping_v2 {
            let Some(list) = bdms.as_array() else {
                return Err(RequestError::BadRequest(
                    "Invalid input for field/attribute block_device_mapping_v2: it must be a list".into(),
                ));
            };
            for b in list {
                if let Some(t) = b.get("volume_type") {
                    if !mv.at_least(67) {
                        return Err(RequestError::BadRequest(
                            "Invalid input for field/attribute block_device_mapping_v2. Additional properties are not allowed ('volume_type' was unexpected)".into(),
                        ));
                    }
                    if !(t.is_null() || t.as_str().is_some_and(|t| t.chars().count() <= 255)) {
                        return Err(RequestError::BadRequest(format!(
                            "Invalid input for field/attribute volume_type. Value: {t}. It must be null or a string of at most 255 characters"
                        )));
                    }
                }
                if let Some(t) = b.get("tag") {
                    if !bdm_tag_allowed(mv) {
                        return Err(RequestError::BadRequest(
                            "Invalid input for field/attribute block_device_mapping_v2. Additional properties are not allowed ('tag' was unexpected)".into(),
                        ));
                    }
                    let Some(t) = t.as_str() else {
                        return Err(RequestError::BadRequest(
                            "Invalid input for field/attribute tag. It must be a string".into(),
                        ));
                    };
                    super::validate_tag(t, "tag")?;
                }
            }
            block_devices = list.iter().map(BlockDeviceMappingV2::from_value).collect();
        }
        match &s.networks {
            None if mv.at_least(37) => {
                return Err(RequestError::BadRequest(
                    "Invalid input for field/attribute server. 'networks' is a required property".into(),
                ));
            }
            Some(Value::String(x)) if !mv.at_least(37) => {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute networks. Value: {x}. '{x}' is not of type 'array'"
                )));
            }
            Some(Value::Array(list)) => {
                for e in list {
                    check_network_entry(e, mv)?;
                }
            }
            _ => {}
        }
        if s.block_device_mapping.is_some() {
            return Err(RequestError::BadRequest(
                "Legacy block_device_mapping is not supported; use block_device_mapping_v2.".into(),
            ));
        }
        let flavor_ref = match &s.flavor_ref {
            Value::String(x) => x.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute flavorRef. Value: {other}. It must be a string or an integer"
                )));
            }
        };
        let metadata = check_metadata(s.metadata)?;
        let networks = Networks::parse(s.networks.as_ref())?;
        let min = count_param(&s.min_count, "min_count")?.unwrap_or(1);
        let max = count_param(&s.max_count, "max_count")?.unwrap_or(min);
        if min > max {
            return Err(RequestError::BadRequest("min_count must be <= max_count".into()));
        }
        if hostname.is_some() && max > 1 {
            return Err(RequestError::BadRequest(
                "Unable to allocate the requested hostname to multiple instances.".into(),
            ));
        }
        let return_reservation_id = matches!(s.return_reservation_id, Some(Value::Bool(true)))
            || matches!(&s.return_reservation_id, Some(Value::String(x)) if truthy(x));
        Ok(ServerCreate {
            name: s.name,
            image_ref: s.image_ref.as_deref().map(ref_id).filter(|r| !r.is_empty()).map(str::to_string),
            flavor_id: ref_id(&flavor_ref).to_string(),
            flavor_ref,
            block_devices,
            metadata,
            key_name: s.key_name,
            availability_zone: s.availability_zone,
            networks,
            count: max,
            admin_pass: s.admin_pass,
            return_reservation_id,
            description,
            tags,
            user_data,
            host,
            hypervisor_hostname,
            hostname,
            scheduler_hints,
            access_ips,
        })
    }
}

/// `PUT /servers/{id}` body: `name` and (2.19+) `description` are
/// stored; the other keys Nova's schema allows are accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description: `Some(None)` clears it (2.19+).
    pub description: Option<Option<String>>,
    /// New guest host name (2.90+).
    pub hostname: Option<String>,
    /// Pin to a zone, or unpin with `Some(None)` (2.104+).
    pub pinned_availability_zone: Option<Option<String>>,
    /// New `accessIPv4` / `accessIPv6`.
    pub access_ips: super::AccessIps,
}

impl ServerUpdate {
    /// Parse `{"server": {...}}` at the base microversion.
    pub fn parse(v: &Value) -> Result<Self, RequestError> {
        Self::parse_at(v, crate::MIN_COMPUTE)
    }

    /// Parse `{"server": {...}}` with Nova's schema and messages at `mv`.
    pub fn parse_at(v: &Value, mv: Microversion) -> Result<Self, RequestError> {
        let Some(obj) = v.get("server").and_then(|s| s.as_object()) else {
            return Err(RequestError::BadRequest("Invalid input: a 'server' object is required".into()));
        };
        for k in obj.keys() {
            let known = matches!(k.as_str(), "name" | "accessIPv4" | "accessIPv6" | "OS-DCF:diskConfig")
                || (k == "description" && mv.at_least(19))
                || (k == "hostname" && mv.at_least(90))
                || (k == "pinned_availability_zone" && mv.at_least(104));
            if !known {
                return Err(RequestError::BadRequest(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        let name = match obj.get("name") {
            None => None,
            Some(name) => {
                let Some(name) = name.as_str() else {
                    return Err(RequestError::BadRequest(
                        "Invalid input for field/attribute name: it must be a string".into(),
                    ));
                };
                validate_name(name, "name")?;
                Some(name.to_string())
            }
        };
        let description = match obj.get("description") {
            None => None,
            Some(d) => Some(super::validate_description(d)?),
        };
        let hostname = match obj.get("hostname") {
            None => None,
            Some(h) => Some(super::validate_hostname(h, mv)?),
        };
        let pinned_availability_zone = match obj.get("pinned_availability_zone") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(z)) if (1..=255).contains(&z.chars().count()) => Some(Some(z.clone())),
            Some(other) => {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute pinned_availability_zone. Value: {other}. It must be null or a string of 1 to 255 characters"
                )));
            }
        };
        let access_ips = super::AccessIps::parse(obj.get("accessIPv4"), obj.get("accessIPv6"))?;
        Ok(Self { name, description, hostname, pinned_availability_zone, access_ips })
    }
}

/// `POST /servers/{id}/os-volume_attachments` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeAttach {
    /// The volume (a UUID).
    pub volume_id: String,
    /// Requested device (accepted; the next free one is used).
    pub device: Option<String>,
    /// Device tag (2.49).
    pub tag: Option<String>,
    /// Delete the volume with the server (2.79).
    pub delete_on_termination: bool,
}

impl VolumeAttach {
    /// Parse `{"volumeAttachment": {"volumeId", "device"?}}` with Nova's
    /// messages, plus `tag` from 2.49 (at most 60 characters, no `/` or
    /// `,`) and `delete_on_termination` from 2.79.
    pub fn parse_at(v: &Value, mv: crate::Microversion) -> Result<Self, RequestError> {
        let mut a = Self::parse(v)?;
        let o = v.get("volumeAttachment").and_then(|x| x.as_object());
        let get = |k: &str| o.and_then(|o| o.get(k));
        let unexpected =
            |k: &str| RequestError::BadRequest(format!("Additional properties are not allowed ('{k}' was unexpected)"));
        if let Some(t) = get("tag") {
            if !mv.at_least(49) {
                return Err(unexpected("tag"));
            }
            let t = t.as_str().filter(|t| (1..=60).contains(&t.chars().count()) && !t.contains(['/', ',']));
            let t = t.ok_or_else(|| {
                RequestError::BadRequest(
                    "Invalid input for field/attribute tag: 1 to 60 characters, without '/' or ','".into(),
                )
            })?;
            a.tag = Some(t.to_string());
        }
        if let Some(d) = get("delete_on_termination") {
            if !mv.at_least(79) {
                return Err(unexpected("delete_on_termination"));
            }
            a.delete_on_termination = d.as_bool().ok_or_else(|| {
                RequestError::BadRequest(format!(
                    "Invalid input for field/attribute delete_on_termination. Value: {d}. {d} is not of type 'boolean'"
                ))
            })?;
        }
        Ok(a)
    }

    /// Parse `{"volumeAttachment": {"volumeId", "device"?}}` with Nova's
    /// messages (the 2.1 body; the later keys are read by [`Self::parse_at`]).
    pub fn parse(v: &Value) -> Result<Self, RequestError> {
        let Some(o) = v.get("volumeAttachment").and_then(|x| x.as_object()) else {
            return Err(RequestError::BadRequest("Invalid input: 'volumeAttachment' is a required property".into()));
        };
        only_keys(o, &["volumeId", "device", "tag", "delete_on_termination"])?;
        let Some(vol) = o.get("volumeId").and_then(|x| x.as_str()).filter(|x| uuid::Uuid::parse_str(x).is_ok()) else {
            return Err(RequestError::BadRequest(
                "Invalid input for field/attribute volumeId: a volume UUID is required".into(),
            ));
        };
        Ok(Self {
            volume_id: vol.to_string(),
            device: o.get("device").and_then(|d| d.as_str()).map(str::to_string),
            tag: None,
            delete_on_termination: false,
        })
    }
}

/// Refuse keys outside `allowed` (Nova's `additionalProperties: false`).
pub(crate) fn only_keys(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), RequestError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            Err(RequestError::BadRequest(format!("Additional properties are not allowed ('{k}' was unexpected)")))
        }
        None => Ok(()),
    }
}

/// A `POST /os-keypairs` body whose shape is valid for its microversion
/// (the name and the key itself are the compute service's to check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeypairRequest {
    /// Name.
    pub name: String,
    /// Public key to import, if given.
    pub public_key: Option<String>,
    /// `ssh` (default) or `x509` (2.2+).
    pub key_type: String,
    /// Owner (admins, 2.10+).
    pub user_id: Option<String>,
}

/// Parse `{"keypair": {"name", "public_key"?, "type"? (2.2+), "user_id"? (2.10+)}}`
/// with Nova's schema per microversion (other keys refused).
pub fn parse_keypair_create(v: &Value, mv: crate::Microversion) -> Result<KeypairRequest, RequestError> {
    let bad = |m: String| RequestError::BadRequest(m);
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    if let Some(extra) = body.keys().find(|k| *k != "keypair") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let kp = match body.get("keypair") {
        Some(Value::Object(kp)) => kp,
        Some(_) => return Err(bad("Invalid input for field/attribute keypair. Value: must be an object".into())),
        None => return Err(bad("'keypair' is a required property".into())),
    };
    let mut allowed = vec!["name", "public_key"];
    if mv >= crate::Microversion::new(2, 2) {
        allowed.push("type");
    }
    if mv >= crate::Microversion::new(2, 10) {
        allowed.push("user_id");
    }
    if let Some(extra) = kp.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let string = |field: &str| -> Result<Option<String>, RequestError> {
        match kp.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!(
                "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
            ))),
        }
    };
    let name = string("name")?.ok_or_else(|| bad("'name' is a required property".into()))?;
    let key_type = string("type")?.unwrap_or_else(|| "ssh".into());
    if key_type != "ssh" && key_type != "x509" {
        return Err(bad(format!(
            "Invalid input for field/attribute type. Value: {key_type}. '{key_type}' is not one of ['ssh', 'x509']"
        )));
    }
    let public_key = string("public_key")?;
    // From 2.92 Nova generates no key pair: the public key is required.
    if public_key.is_none() && mv.at_least(92) {
        return Err(bad("'public_key' is a required property".into()));
    }
    Ok(KeypairRequest { name, public_key, key_type, user_id: string("user_id")? })
}

/// Which body a quota update parses: `PUT /os-quota-sets/{project_id}` or
/// `PUT /os-quota-class-sets/{id}` (the latter has no `force`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaBody {
    /// `{"quota_set": {...}}`, may carry `force`.
    Set,
    /// `{"quota_class_set": {...}}`.
    ClassSet,
}

impl QuotaBody {
    fn wrapper(self) -> &'static str {
        match self {
            Self::Set => "quota_set",
            Self::ClassSet => "quota_class_set",
        }
    }
}

/// A checked quota update: the limits to store and whether usage may exceed them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaUpdate {
    /// Resources (names of `QuotaLimits::RESOURCES`) and their new limits.
    pub limits: Vec<(&'static str, i64)>,
    /// `force`: store a limit even below what is already used.
    pub force: bool,
}

/// The largest limit Nova's schema accepts (its database's `INT`).
const MAX_QUOTA: i64 = 0x7FFF_FFFF;

/// Parse a quota update the way Nova's schema checks it: the wrapper object
/// and nothing else, known resource names only, each limit an integer (or a
/// string of one) from -1 to 2^31-1, and `force` a boolean (quota sets only).
/// Resources the API no longer shows at `mv` are unknown names too.
pub fn parse_quota_body(v: &Value, kind: QuotaBody, mv: crate::Microversion) -> Result<QuotaUpdate, RequestError> {
    let hidden = crate::compute::views::quota_hidden(mv, kind == QuotaBody::ClassSet);
    let wrapper = kind.wrapper();
    let Some(body) = v.as_object() else {
        return Err(RequestError::BadRequest("Malformed request body: an object is expected".into()));
    };
    only_keys(body, &[wrapper])?;
    let Some(set) = body.get(wrapper) else {
        return Err(RequestError::BadRequest(format!("Invalid input: '{wrapper}' is a required property")));
    };
    let Some(set) = set.as_object() else {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {wrapper}. Value: {set}. {set} is not of type 'object'"
        )));
    };
    let mut out = QuotaUpdate::default();
    for (key, value) in set {
        if kind == QuotaBody::Set && key == "force" {
            out.force = parse_force(value)?;
            continue;
        }
        let known = stratus_db::QuotaLimits::RESOURCES.iter().find(|r| **r == key.as_str() && !hidden.contains(*r));
        let Some(resource) = known else {
            return Err(RequestError::BadRequest(format!(
                "Additional properties are not allowed ('{key}' was unexpected)"
            )));
        };
        out.limits.push((resource, parse_limit(key, value)?));
    }
    Ok(out)
}

/// One limit: an integer or a string of digits (Nova's `^-?[0-9]+$`), -1 or more.
fn parse_limit(key: &str, value: &Value) -> Result<i64, RequestError> {
    let bad = |why: String| {
        RequestError::BadRequest(format!("Invalid input for field/attribute {key}. Value: {value}. {why}"))
    };
    let n = match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| bad(format!("{value} is not of type 'integer', 'string'")))?,
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("'{s}' does not match '^-?[0-9]+$'")));
            }
            // All digits: the only failure left is a number too big for i64.
            s.parse::<i64>().map_err(|_| bad(format!("{s} is greater than the maximum of {MAX_QUOTA}")))?
        }
        _ => return Err(bad(format!("{value} is not of type 'integer', 'string'"))),
    };
    if n < -1 {
        return Err(bad(format!("{n} is less than the minimum of -1")));
    }
    if n > MAX_QUOTA {
        return Err(bad(format!("{n} is greater than the maximum of {MAX_QUOTA}")));
    }
    Ok(n)
}

/// `force`: a JSON boolean or one of the strings Nova's boolean parameter takes.
fn parse_force(value: &Value) -> Result<bool, RequestError> {
    const TRUE: [&str; 4] = ["true", "1", "on", "yes"];
    const FALSE: [&str; 4] = ["false", "0", "off", "no"];
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if TRUE.contains(&s.to_ascii_lowercase().as_str()) => Ok(true),
        Value::String(s) if FALSE.contains(&s.to_ascii_lowercase().as_str()) => Ok(false),
        _ => Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute force. Value: {value}. {value} is not a boolean"
        ))),
    }
}

/// `PUT /servers/{id}/os-volume_attachments/{volume}` (2.85):
/// `{"volumeAttachment": {"volumeId", "delete_on_termination"?, ...}}`;
/// the volume named and the new `delete_on_termination`, if given.
pub fn parse_attachment_update(v: &Value) -> Result<(String, Option<bool>), RequestError> {
    let Some(o) = v.get("volumeAttachment").and_then(|x| x.as_object()) else {
        return Err(RequestError::BadRequest("Invalid input: 'volumeAttachment' is a required property".into()));
    };
    only_keys(o, &["volumeId", "device", "tag", "delete_on_termination", "serverId", "id"])?;
    let vol = o.get("volumeId").and_then(Value::as_str).ok_or_else(|| {
        RequestError::BadRequest("Invalid input for field/attribute volumeId: a volume UUID is required".into())
    })?;
    let delete = match o.get("delete_on_termination") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(d) => {
            return Err(RequestError::BadRequest(format!(
                "Invalid input for field/attribute delete_on_termination. Value: {d}. {d} is not of type 'boolean'"
            )));
        }
    };
    Ok((vol.to_string(), delete))
}
