//! Block Storage API v3 (Cinder) wire types: the `volume` microversion
//! negotiation, typed request bodies parsed with Cinder's own 400 messages
//! (Cinder accepts loosely typed bodies, e.g. sizes as strings, so they are
//! read from JSON by hand rather than derived), and pure view builders that
//! render rows as Cinder's JSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stratus_db::{AttachmentRow, CleanupRow, VolumeRow, ts};
use stratus_types::{AttachMode, AttachStatus};

/// Highest `volume` microversion claimed (Cinder 2023.2).
pub const MAX_MINOR: u32 = 71;
/// The attachments API (`NEW_ATTACH`).
pub const MV_ATTACHMENTS: u32 = 27;
/// `os-complete` on an attachment (`NEW_ATTACH_COMPLETION`).
pub const MV_ATTACH_COMPLETE: u32 = 44;
/// `GET /volumes/summary` (`VOLUME_SUMMARY`).
pub const MV_VOLUME_SUMMARY: u32 = 12;
/// `metadata` in the volume summary (`VOLUME_SUMMARY_METADATA`).
pub const MV_SUMMARY_METADATA: u32 = 36;

/// A Block Storage request the API refuses before any service call, with
/// Cinder's message; the HTTP layer maps each variant to its status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeRequestError {
    /// 400: malformed or invalid body (or `OpenStack-API-Version`).
    #[error("{0}")]
    BadRequest(String),
    /// 404: names a resource this cloud does not have (snapshots, backups),
    /// or a method below its microversion (as Cinder answers).
    #[error("{0}")]
    NotFound(String),
    /// 406: a `volume` microversion outside 3.0..=3.[`MAX_MINOR`].
    #[error("{0}")]
    NotAcceptable(String),
}

use VolumeRequestError::{BadRequest, NotFound};

pub mod default_types;
pub mod group_snapshots;
pub mod groups;
pub mod qos;
pub mod snapshots;
pub mod transfers;
pub mod types;

/// The requested `volume` minor version from `OpenStack-API-Version`
/// (e.g. `volume 3.59`, `volume latest`; other services' entries are
/// ignored); 3.0 when absent.
pub fn requested_minor(header_value: Option<&str>) -> Result<u32, VolumeRequestError> {
    let Some(h) = header_value else { return Ok(0) };
    for item in h.split(',') {
        let mut parts = item.split_whitespace();
        let (Some(service), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !service.eq_ignore_ascii_case("volume") {
            continue;
        }
        if version.eq_ignore_ascii_case("latest") {
            return Ok(MAX_MINOR);
        }
        let malformed = || BadRequest(format!("Invalid API version request string: volume {version}"));
        let (major, minor) = version.split_once('.').ok_or_else(malformed)?;
        let major: u32 = major.parse().map_err(|_| malformed())?;
        let minor: u32 = minor.parse().map_err(|_| malformed())?;
        if major != 3 || minor > MAX_MINOR {
            return Err(VolumeRequestError::NotAcceptable(format!(
                "Version {version} is not supported by the API. Minimum is 3.0 and maximum is 3.{MAX_MINOR}."
            )));
        }
        return Ok(minor);
    }
    Ok(0)
}

/// A version-gated method below its microversion: Cinder answers 404.
pub fn require_mv(minor: u32, min: u32) -> Result<(), VolumeRequestError> {
    if minor >= min {
        Ok(())
    } else {
        Err(NotFound(format!("API version 3.{minor} is not supported on this method (needs 3.{min}).")))
    }
}

/// Cinder's truthy query values (`all_tenants=1`, `=true`, ...).
pub fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes" | "y" | "on")
}

// ---------------------------------------------------------------- requests

/// `POST /volumes` body (`{"volume": {...}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateVolume {
    /// Size in GiB (validated by the service: ≥ 1).
    pub size: i64,
    /// `name` (or legacy `display_name`).
    pub name: Option<String>,
    /// `description` (or legacy `display_description`).
    pub description: Option<String>,
    /// Metadata (string values only).
    pub metadata: BTreeMap<String, String>,
    /// `imageRef` (or `image_id`): id or name.
    pub image_ref: Option<String>,
    /// Volume type.
    pub volume_type: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// `source_volid`: a clone, refused by the service once the source is
    /// found (an unknown source is 404, as Cinder answers).
    pub source_volid: Option<String>,
    /// `group_id` (3.13): the generic volume group to join; the HTTP
    /// layer drops it below 3.13, as Cinder ignores it there.
    pub group_id: Option<String>,
    /// `snapshot_id`: build the volume from a snapshot (`size` may then be
    /// left out: 0 here, the snapshot's size).
    pub snapshot_id: Option<String>,
}

impl CreateVolume {
    /// Parse a create body: backups do not exist here (404), clones,
    /// groups, replicas and multiattach are refused (400).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "volume")?;
        let snapshot_id = opt_str(o, &["snapshot_id"])?;
        if let Some(id) = opt_str(o, &["backup_id"])? {
            return Err(NotFound(format!("Backup {id} could not be found.")));
        }
        for unsupported in ["consistencygroup_id", "source_replica"] {
            if opt_str(o, &[unsupported])?.is_some() {
                return Err(BadRequest(format!(
                    "Invalid input received: {unsupported} is not supported by this cloud."
                )));
            }
        }
        if o.get("multiattach").and_then(Value::as_bool).unwrap_or(false) {
            return Err(BadRequest("Invalid input received: multiattach volumes are not supported.".into()));
        }
        let size = match int_field(o, "size")? {
            Some(s) => s,
            // Cinder takes the snapshot's size.
            None if snapshot_id.is_some() => 0,
            None => {
                return Err(BadRequest("Invalid input received: Volume size must be specified as an integer.".into()));
            }
        };
        Ok(Self {
            size,
            name: opt_str(o, &["name", "display_name"])?,
            description: opt_str(o, &["description", "display_description"])?,
            metadata: metadata_field(o)?.unwrap_or_default(),
            image_ref: opt_str(o, &["imageRef", "image_id"])?,
            volume_type: opt_str(o, &["volume_type"])?,
            availability_zone: opt_str(o, &["availability_zone"])?,
            source_volid: opt_str(o, &["source_volid"])?,
            group_id: opt_str(o, &["group_id"])?,
            snapshot_id,
        })
    }
}

/// `PUT /volumes/{id}` body: absent fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateVolume {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New metadata (replaces the old).
    pub metadata: Option<BTreeMap<String, String>>,
}

impl UpdateVolume {
    /// Parse an update body; unknown keys are refused as Cinder's schema does.
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "volume")?;
        const KEYS: &[&str] = &["name", "description", "display_name", "display_description", "metadata"];
        if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute volume. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        Ok(Self {
            name: opt_str(o, &["name", "display_name"])?,
            description: opt_str(o, &["description", "display_description"])?,
            metadata: metadata_field(o)?,
        })
    }
}

/// `POST /volumes/{id}/action`: the actions Stratus serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeAction {
    /// `os-extend` (202).
    Extend {
        /// New size GiB.
        new_size: i64,
    },
    /// `os-reset_status` (admins, 202); validated by the service.
    ResetStatus {
        /// New status.
        status: Option<String>,
        /// New attach status (`attached` / `detached`).
        attach_status: Option<String>,
    },
    /// `os-set_bootable` (200).
    SetBootable(bool),
    /// `os-retype` (202): the new type, by name or id.
    Retype {
        /// Name or id of the new type.
        new_type: String,
    },
    /// The status steps of Cinder's older attach flow (202): `os-reserve`,
    /// `os-unreserve`, `os-begin_detaching`, `os-roll_detaching`.
    Step(StatusStep),
    /// `os-attach` / `os-detach` of the older flow (named for the refusal).
    OldAttach(&'static str),
    /// `os-set_image_metadata` (200): keys to merge.
    SetImageMetadata(BTreeMap<String, String>),
    /// `os-unset_image_metadata` (200): the key to remove.
    UnsetImageMetadata(String),
    /// `os-show_image_metadata` (200).
    ShowImageMetadata,
    /// `revert` (3.40, 202): back to the volume's latest snapshot, which
    /// `snapshot_id` must name (`None` is refused by the service with
    /// Cinder's message).
    Revert {
        /// The snapshot asked for.
        snapshot_id: Option<String>,
    },
    /// `os-reimage` (3.68, 202): rebuild the volume from an image. The
    /// image id's form is checked by the service, after the policy.
    Reimage {
        /// The image.
        image_id: String,
        /// Also a `reserved` volume.
        reimage_reserved: bool,
    },
    /// `os-extend_volume_completion` (3.71, 202, admins and the compute
    /// service): Nova reporting that it finished (or failed) an in-use
    /// extend that Cinder held open.
    ExtendCompletion {
        /// Nova could not extend the attached volume.
        error: bool,
    },
}

/// Block Storage 3.71: the `os-extend_volume_completion` volume action
/// (`EXTEND_VOLUME_COMPLETION`).
pub const MV_EXTEND_COMPLETION: u32 = 71;

/// Block Storage 3.68: the `os-reimage` volume action (`SUPPORT_REIMAGE_VOLUME`).
pub const MV_REIMAGE: u32 = 68;

/// Block Storage 3.40: the `revert` volume action (`VOLUME_REVERT`).
pub const MV_VOLUME_REVERT: u32 = 40;

/// A status step of Cinder's older attach flow: bookkeeping only, nothing
/// is opened or closed on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusStep {
    /// `available` → `attaching` (400 from any other status).
    Reserve,
    /// `attaching` → `available` (no change from any other status).
    Unreserve,
    /// `in-use` → `detaching` (400 from any other status).
    BeginDetaching,
    /// `detaching` → `in-use` (no change from any other status).
    RollDetaching,
}

impl VolumeAction {
    /// Parse an action body: exactly one key, a known action.
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
            return Err(BadRequest("The action body must be an object with exactly one action key.".into()));
        };
        let empty = Map::new();
        let args = arg.as_object().unwrap_or(&empty);
        match action.as_str() {
            "os-extend" => {
                let new_size = int_field(args, "new_size")?
                    .ok_or_else(|| BadRequest("Invalid input received: new_size is required.".into()))?;
                Ok(Self::Extend { new_size })
            }
            "os-reset_status" => Ok(Self::ResetStatus {
                status: opt_str(args, &["status"])?,
                attach_status: opt_str(args, &["attach_status"])?,
            }),
            "os-set_bootable" => {
                let b = args.get("bootable").ok_or_else(|| BadRequest("Must specify bootable in request.".into()))?;
                Ok(Self::SetBootable(bool_value("bootable", b)?))
            }
            "os-retype" => {
                let new_type = opt_str(args, &["new_type"])?
                    .ok_or_else(|| BadRequest("Invalid input received: new_type is required.".into()))?;
                match opt_str(args, &["migration_policy"])?.as_deref() {
                    None | Some("never" | "on-demand") => Ok(Self::Retype { new_type }),
                    Some(p) => Err(BadRequest(format!(
                        "Invalid input for field/attribute migration_policy. Value: {p}. '{p}' is not one of ['on-demand', 'never']"
                    ))),
                }
            }
            "os-reserve" => Ok(Self::Step(StatusStep::Reserve)),
            "os-unreserve" => Ok(Self::Step(StatusStep::Unreserve)),
            "os-begin_detaching" => Ok(Self::Step(StatusStep::BeginDetaching)),
            "os-roll_detaching" => Ok(Self::Step(StatusStep::RollDetaching)),
            "os-attach" => Ok(Self::OldAttach("os-attach")),
            "os-detach" => Ok(Self::OldAttach("os-detach")),
            "os-set_image_metadata" => metadata_field(args)?
                .map(Self::SetImageMetadata)
                .ok_or_else(|| BadRequest("Malformed request body: metadata is required.".into())),
            "os-unset_image_metadata" => opt_str(args, &["key"])?
                .map(Self::UnsetImageMetadata)
                .ok_or_else(|| BadRequest("Malformed request body: key is required.".into())),
            "os-show_image_metadata" => Ok(Self::ShowImageMetadata),
            // Cinder's schema: `image_id` required, `reimage_reserved` a boolean, nothing else.
            "os-reimage" => {
                let Value::Object(_) = arg else {
                    return Err(BadRequest(format!(
                        "Invalid input for field/attribute os-reimage. Value: {arg}. {arg} is not of type 'object'"
                    )));
                };
                if let Some(k) = args.keys().find(|k| !["image_id", "reimage_reserved"].contains(&k.as_str())) {
                    return Err(BadRequest(format!(
                        "Invalid input for field/attribute os-reimage. Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                let image_id = opt_str(args, &["image_id"])?.ok_or_else(|| {
                    BadRequest("Invalid input for field/attribute os-reimage. 'image_id' is a required property".into())
                })?;
                let reimage_reserved = match args.get("reimage_reserved") {
                    None => false,
                    Some(b) => bool_value("reimage_reserved", b)?,
                };
                Ok(Self::Reimage { image_id, reimage_reserved })
            }
            // Cinder's schema: an object with an optional boolean `error`, nothing else.
            "os-extend_volume_completion" => {
                let Value::Object(_) = arg else {
                    return Err(BadRequest(format!(
                        "Invalid input for field/attribute os-extend_volume_completion. Value: {arg}. {arg} is not of type 'object'"
                    )));
                };
                if let Some(k) = args.keys().find(|k| k.as_str() != "error") {
                    return Err(BadRequest(format!(
                        "Invalid input for field/attribute os-extend_volume_completion. Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                let error = match args.get("error") {
                    None => false,
                    Some(b) => bool_value("error", b)?,
                };
                Ok(Self::ExtendCompletion { error })
            }
            // Cinder's schema: an object whose `snapshot_id` is a string or null.
            "revert" => match arg {
                Value::Object(_) => Ok(Self::Revert { snapshot_id: opt_str(args, &["snapshot_id"])? }),
                other => Err(BadRequest(format!(
                    "Invalid input for field/attribute revert. Value: {other}. {other} is not of type 'object'"
                ))),
            },
            other => Err(BadRequest(format!("There is no such action: {other}"))),
        }
    }
}

/// `POST`/`PUT /volumes/{id}/metadata` body: `{"metadata": {...}}`.
pub fn parse_metadata(v: &Value) -> Result<BTreeMap<String, String>, VolumeRequestError> {
    v.as_object()
        .and_then(|o| metadata_field(o).transpose())
        .transpose()?
        .ok_or_else(|| BadRequest("Missing required element 'metadata' in request body.".into()))
}

/// `PUT /volumes/{id}/metadata/{key}` body: `{"meta": {key: value}}`, the
/// one key matching the URL's.
pub fn parse_meta_key(v: &Value, key: &str) -> Result<String, VolumeRequestError> {
    let meta = body_object(v, "meta")?;
    match (meta.len(), meta.get(key)) {
        (1, Some(Value::String(s))) => Ok(s.clone()),
        _ => Err(BadRequest("Request body and URI mismatch".into())),
    }
}

/// `POST /attachments` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateAttachment {
    /// The volume to reserve.
    pub volume_id: String,
    /// The server it is reserved for.
    pub instance_uuid: String,
    /// The host's connector, when given at once (`null` is absent).
    pub connector: Option<Value>,
}

impl CreateAttachment {
    /// Parse a create body; only the `rw` mode exists.
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "attachment")?;
        let volume_id = opt_str(o, &["volume_uuid"])?
            .ok_or_else(|| BadRequest("Invalid input received: volume_uuid is required.".into()))?;
        let instance_uuid = opt_str(o, &["instance_uuid"])?
            .ok_or_else(|| BadRequest("Invalid input received: instance_uuid is required.".into()))?;
        if let Some(mode) = opt_str(o, &["mode"])?
            && mode.parse::<AttachMode>() != Ok(AttachMode::ReadWrite)
        {
            return Err(BadRequest(format!("Invalid input received: attach mode {mode} is not supported.")));
        }
        let connector = o.get("connector").filter(|c| !c.is_null()).cloned();
        Ok(Self { volume_id, instance_uuid, connector })
    }
}

/// `PUT /attachments/{id}` body: the host's connector (an object).
pub fn parse_attachment_connector(v: &Value) -> Result<Value, VolumeRequestError> {
    let o = body_object(v, "attachment")?;
    o.get("connector")
        .filter(|c| c.is_object())
        .cloned()
        .ok_or_else(|| BadRequest("Invalid input received: connector is required.".into()))
}

/// `POST /attachments/{id}/action`: the actions Stratus serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentAction {
    /// `os-complete` (3.44+, 204).
    Complete,
}

impl AttachmentAction {
    /// Parse an action body: exactly one key, a known action.
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let Some(action) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.keys().next()) else {
            return Err(BadRequest("The action body must be an object with exactly one action key.".into()));
        };
        match action.as_str() {
            "os-complete" => Ok(Self::Complete),
            other => Err(BadRequest(format!("There is no such action: {other}"))),
        }
    }
}

/// The object under `key` (`{"volume": {...}}`), Cinder's 400 otherwise.
pub(crate) fn body_object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, VolumeRequestError> {
    v.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| BadRequest(format!("Missing required element '{key}' in request body.")))
}

/// An optional string field (null is absent).
pub(crate) fn opt_str(o: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, VolumeRequestError> {
    for k in keys {
        match o.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => {
                return Err(BadRequest(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string'"
                )));
            }
        }
    }
    Ok(None)
}

/// An integer given as a number or a numeric string (Cinder accepts both).
fn int_field(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, VolumeRequestError> {
    let bad = |v: &Value| {
        BadRequest(format!(
            "Invalid input received: {key} '{}' must be an integer and greater than 0",
            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
        ))
    };
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(&Value::Number(n.clone()))),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad(&Value::String(s.clone()))),
        Some(v) => Err(bad(v)),
    }
}

pub(crate) fn metadata_field(o: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, VolumeRequestError> {
    match o.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let Some(s) = v.as_str() else {
                    return Err(BadRequest(format!(
                        "Invalid input for field/attribute metadata. Value: {v}. {v} is not of type 'string'"
                    )));
                };
                out.insert(k.clone(), s.to_string());
            }
            Ok(Some(out))
        }
        Some(v) => Err(BadRequest(format!(
            "Invalid input for field/attribute metadata. Value: {v}. {v} is not of type 'object'"
        ))),
    }
}

pub(crate) fn bool_value(name: &str, v: &Value) -> Result<bool, VolumeRequestError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(BadRequest(format!("Invalid input received: '{s}' is not a valid value for {name}."))),
        },
        other => Err(BadRequest(format!("Invalid input received: '{other}' is not a valid value for {name}."))),
    }
}

/// A boolean query parameter as Cinder's `get_bool_param` reads it (oslo's
/// strict words; anything else is 400).
pub fn bool_param(name: &str, v: &str) -> Result<bool, VolumeRequestError> {
    bool_value(name, &Value::String(v.into()))
        .map_err(|_| BadRequest(format!("Value '{v}' for '{name}' is not a boolean.")))
}

// ------------------------------------------------------------------- views

/// The version list with the v3 entry; `self` points at `<public>/volume/v3/`.
pub fn versions_doc(public_url: &str) -> Value {
    json!({
        "versions": [{
            "id": "v3.0",
            "status": "CURRENT",
            "version": format!("3.{MAX_MINOR}"),
            "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "self", "href": format!("{public_url}/volume/v3/")}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
        }]
    })
}

/// Cinder's timestamp format (`2018-11-29T06:50:07.770785`, UTC, no zone).
pub fn cinder_ts(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
}

/// `self` and `bookmark` links of a resource.
pub fn links(public_url: &str, project_id: &str, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{public_url}/volume/v3/{project_id}/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{public_url}/volume/{project_id}/{kind}/{id}")},
    ])
}

/// Absolute limits: Cinder's keys, the volume quotas (`limit(resource)`)
/// and the counted usage (backups do not exist: zero; the caller sets
/// `totalSnapshotsUsed`).
pub fn limits_view(limit: impl Fn(&str) -> i64, volumes_used: i64, gigabytes_used: i64) -> Value {
    json!({
        "limits": {
            "rate": [],
            "absolute": {
                "totalSnapshotsUsed": 0,
                "maxTotalBackups": limit("backups"),
                "maxTotalVolumeGigabytes": limit("gigabytes"),
                "maxTotalSnapshots": limit("snapshots"),
                "maxTotalBackupGigabytes": limit("backup_gigabytes"),
                "totalBackupGigabytesUsed": 0,
                "maxTotalVolumes": limit("volumes"),
                "totalVolumesUsed": volumes_used,
                "totalBackupsUsed": 0,
                "totalGigabytesUsed": gigabytes_used
            }
        }
    })
}

/// The body of a quota set or quota class update (`root`: `quota_set` or
/// `quota_class_set`): resource → integer limit (Cinder also takes integer
/// strings). Which resources exist is the service's check.
pub fn quota_updates(v: &Value, root: &str) -> Result<Vec<(String, i64)>, VolumeRequestError> {
    let o = body_object(v, root)?;
    let mut out = Vec::new();
    for (k, val) in o {
        if matches!(k.as_str(), "id" | "tenant_id" | "class_name") {
            continue;
        }
        let n = match val {
            Value::Number(n) => n.as_i64(),
            Value::String(t) => t.trim().parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| BadRequest(format!("Invalid input received: Quota limit for {k} must be an integer.")))?;
        out.push((k.clone(), n));
    }
    Ok(out)
}

/// A quota set or quota class view: `id` first when given, then each
/// limit; with usage, each resource is `{limit, in_use, reserved}`.
pub fn quota_view(id: Option<&str>, rows: &[(&str, i64, Option<i64>)]) -> Value {
    let mut o = Map::new();
    if let Some(id) = id {
        o.insert("id".into(), json!(id));
    }
    for (r, limit, in_use) in rows {
        let v = match in_use {
            Some(u) => json!({"limit": limit, "in_use": u, "reserved": 0}),
            None => json!(limit),
        };
        o.insert((*r).to_string(), v);
    }
    Value::Object(o)
}

/// A volume's `attachments` entries (Cinder lists attached ones only; a
/// fenced attachment still ties the volume to its server until detached).
fn volume_attachments(v: &VolumeRow, atts: &[AttachmentRow]) -> Value {
    Value::Array(
        atts.iter()
            .filter(|a| matches!(a.status, AttachStatus::Attached | AttachStatus::Detaching | AttachStatus::Fenced))
            .map(|a| {
                json!({
                    "server_id": a.server_id,
                    "attachment_id": a.id,
                    "attached_at": cinder_ts(a.created_at),
                    "host_name": a.host,
                    "volume_id": v.id,
                    "device": a.mountpoint,
                    "id": v.id,
                })
            })
            .collect(),
    )
}

/// Who is looking at a volume, for the fields only admins see.
#[derive(Clone, Copy, Debug)]
pub enum Viewer<'a> {
    /// A project member: no host attributes.
    Member,
    /// An admin, shown Cinder's `host@backend#pool`.
    Admin {
        /// `os-vol-host-attr:host`.
        host_attr: &'a str,
    },
}

/// Which form of the full view a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeForm {
    /// The negotiated `3.x` minor version (`volume_type_id` from 3.63,
    /// `consumes_quota` from 3.65).
    pub minor: u32,
    /// Show and list answers carry Cinder's extension attributes (tenant,
    /// image metadata, and for admins host and migration); create and
    /// update answers do not.
    pub extended: bool,
}

/// The full volume view of the api-ref (`GET /volumes/{id}`).
pub fn volume_detail(
    public_url: &str,
    viewer: Viewer<'_>,
    v: &VolumeRow,
    atts: &[AttachmentRow],
    form: VolumeForm,
) -> Value {
    let metadata: Value = serde_json::from_str(&v.metadata).unwrap_or_else(|_| json!({}));
    let mut o = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size_gb,
        "status": v.status.as_str(),
        "availability_zone": v.availability_zone,
        "bootable": if v.bootable { "true" } else { "false" },
        "volume_type": v.volume_type,
        "attachments": volume_attachments(v, atts),
        "created_at": cinder_ts(v.created_at),
        "updated_at": cinder_ts(v.updated_at),
        "metadata": metadata,
        "links": links(public_url, &v.project_id, "volumes", &v.id.to_string()),
        "user_id": v.user_id,
        "encrypted": false,
        "multiattach": false,
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "consistencygroup_id": null,
        "replication_status": null,
        "migration_status": null,
    });
    if let Some(m) = o.as_object_mut() {
        if form.minor >= groups::MV_GROUPS {
            m.insert("group_id".into(), json!(v.group_id));
        }
        let admin = matches!(viewer, Viewer::Admin { .. });
        // Cinder's 3.21: the backend's own id for the volume, admins only;
        // Stratus's backends address volumes by the Stratus id (LVM's null).
        if form.minor >= 21 && admin {
            m.insert("provider_id".into(), Value::Null);
        }
        // Cinder's 3.48: no backend shares iSCSI targets between volumes
        // (per-volume exports, RBD), so no host-side locking is needed and
        // there is no volume-service uuid to lock on (3.69 allows null;
        // false is valid in both).
        if form.minor >= 48 {
            m.insert("shared_targets".into(), json!(false));
            m.insert("service_uuid".into(), Value::Null);
        }
        // Cinder's 3.61: the admin view's cluster (none: no clusters).
        if form.minor >= 61 && admin {
            m.insert("cluster_name".into(), Value::Null);
        }
        if form.minor >= 63 {
            m.insert("volume_type_id".into(), json!(v.volume_type_id));
        }
        // 3.64 `encryption_key_id`: Cinder omits it for an unencrypted
        // volume, and encrypted volumes are refused at create.
        if form.minor >= 65 {
            m.insert("consumes_quota".into(), json!(true));
        }
        if !form.extended {
            return o;
        }
        m.insert("os-vol-tenant-attr:tenant_id".into(), json!(v.project_id));
        if let Some(image) = &v.image_id {
            m.insert("volume_image_metadata".into(), json!({ "image_id": image }));
        }
        if let Viewer::Admin { host_attr } = viewer {
            m.insert("os-vol-host-attr:host".into(), json!(host_attr));
            m.insert("os-vol-mig-status-attr:migstat".into(), Value::Null);
            m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
        }
    }
    o
}

/// The volume summary: count and total size, and from 3.36 each metadata
/// key with the distinct values the volumes give it.
pub fn volume_summary_view(rows: &[VolumeRow], minor: u32) -> Value {
    let total: i64 = rows.iter().map(|v| v.size_gb).fold(0, i64::saturating_add);
    let mut o = json!({"total_size": total, "total_count": rows.len()});
    if minor >= MV_SUMMARY_METADATA {
        let mut meta: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in rows {
            let m: BTreeMap<String, String> = serde_json::from_str(&v.metadata).unwrap_or_default();
            for (k, val) in m {
                let vals = meta.entry(k).or_default();
                if !vals.contains(&val) {
                    vals.push(val);
                }
            }
        }
        o["metadata"] = json!(meta);
    }
    o
}

/// The short volume view of `GET /volumes`.
pub fn volume_summary(public_url: &str, v: &VolumeRow) -> Value {
    json!({"id": v.id, "name": v.name, "links": links(public_url, &v.project_id, "volumes", &v.id.to_string())})
}

/// The `volumes_links` `next` entry of a paged list.
pub fn volumes_next_link(
    public_url: &str,
    project: &str,
    detail: bool,
    query: &[(String, String)],
    limit: usize,
    marker: &str,
) -> Value {
    let path = if detail { "volumes/detail" } else { "volumes" };
    collection_next_link(public_url, project, path, query, limit, marker)
}

/// The `<collection>_links` `next` entry of any paged Block Storage list:
/// `path` (under the project) with the caller's query and the next marker.
pub fn collection_next_link(
    public_url: &str,
    project: &str,
    path: &str,
    query: &[(String, String)],
    limit: usize,
    marker: &str,
) -> Value {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(k, _)| k != "limit" && k != "marker") {
        q.append_pair(k, v);
    }
    q.append_pair("limit", &limit.to_string()).append_pair("marker", marker);
    json!([{
        "rel": "next",
        "href": format!("{public_url}/volume/v3/{project}/{path}?{}", q.finish()),
    }])
}

/// A key `GET /volumes` may sort by (Cinder's `sort_key`/`sort`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeSortKey {
    /// `id`.
    Id,
    /// `name` (`display_name` too).
    Name,
    /// `status`.
    Status,
    /// `size`.
    Size,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `availability_zone`.
    AvailabilityZone,
    /// `bootable`.
    Bootable,
    /// `project_id`.
    ProjectId,
}

/// One sort criterion: a key and its direction.
pub type VolumeSort = (VolumeSortKey, SortDir);

/// A sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

fn sort_key(k: &str) -> Result<VolumeSortKey, VolumeRequestError> {
    use VolumeSortKey as K;
    Ok(match k {
        "id" => K::Id,
        "name" | "display_name" => K::Name,
        "status" => K::Status,
        "size" => K::Size,
        "created_at" => K::CreatedAt,
        "updated_at" => K::UpdatedAt,
        "availability_zone" => K::AvailabilityZone,
        "bootable" => K::Bootable,
        "project_id" => K::ProjectId,
        other => return Err(BadRequest(format!("Invalid input received: Invalid sort key {other}"))),
    })
}

fn sort_dir(d: &str) -> Result<SortDir, VolumeRequestError> {
    match d.to_ascii_lowercase().as_str() {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        other => {
            Err(BadRequest(format!("Invalid input received: Unknown sort direction, must be 'desc' or 'asc': {other}")))
        }
    }
}

/// The order a volume list asks for, as Cinder reads it: `sort=k1:dir,k2`
/// or the older `sort_key`/`sort_dir` (not both); a key without a direction
/// is descending; default `created_at` then `id`, newest first. `id` is
/// always the last criterion, so pages are stable.
pub fn volume_sort(
    sort: Option<&str>,
    key: Option<&str>,
    dir: Option<&str>,
) -> Result<Vec<VolumeSort>, VolumeRequestError> {
    let mut out = Vec::new();
    match (sort, key.or(dir)) {
        (Some(_), Some(_)) => {
            return Err(BadRequest(
                "Invalid input received: The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.".into(),
            ));
        }
        (Some(s), None) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
                out.push((sort_key(k.trim())?, sort_dir(d.trim())?));
            }
        }
        (None, _) => {
            let d = sort_dir(dir.unwrap_or("desc"))?;
            match key {
                Some(k) => out.push((sort_key(k)?, d)),
                None => out.push((VolumeSortKey::CreatedAt, d)),
            }
        }
    }
    if !out.iter().any(|(k, _)| *k == VolumeSortKey::Id) {
        let last = out.last().map_or(SortDir::Desc, |(_, d)| *d);
        out.push((VolumeSortKey::Id, last));
    }
    Ok(out)
}

/// Compare two volumes by `sort` (see [`volume_sort`]).
pub fn volume_order(a: &VolumeRow, b: &VolumeRow, sort: &[VolumeSort]) -> std::cmp::Ordering {
    use VolumeSortKey as K;
    for (k, d) in sort {
        let o = match k {
            K::Id => a.id.to_string().cmp(&b.id.to_string()),
            K::Name => a.name.cmp(&b.name),
            K::Status => a.status.as_str().cmp(b.status.as_str()),
            K::Size => a.size_gb.cmp(&b.size_gb),
            K::CreatedAt => a.created_at.cmp(&b.created_at),
            K::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            K::AvailabilityZone => a.availability_zone.cmp(&b.availability_zone),
            K::Bootable => a.bootable.cmp(&b.bootable),
            K::ProjectId => a.project_id.cmp(&b.project_id),
        };
        let o = if *d == SortDir::Desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// The `bootable` list filter's value, as Cinder reads it: from 3.2 only
/// oslo's strict boolean words (`1/t/true/on/y/yes`, `0/f/false/off/n/no`,
/// any case) and anything else is 400; before 3.2 only `False`/`false`/
/// `FALSE` is false and any other non-empty value true.
pub fn bootable_filter(value: &str, minor: u32) -> Result<bool, VolumeRequestError> {
    if minor >= 2 {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(BadRequest(format!("Invalid input received: 'bootable = {value}'"))),
        }
    } else {
        Ok(!(matches!(value, "False" | "false" | "FALSE") || value.is_empty()))
    }
}

/// `GET /resource_filters` appears at 3.33.
pub const MV_RESOURCE_FILTERS: u32 = 33;

/// Cinder's default `resource_filters.json`: the query filters a
/// non-admin may use on each resource's list (3.31+; admins may use any,
/// except on pools), published by `GET /resource_filters` (3.33). Only the
/// resources Stratus serves are listed.
pub const RESOURCE_FILTERS: &[(&str, &[&str])] = &[
    (
        "volume",
        &[
            "name",
            "status",
            "metadata",
            "bootable",
            "migration_status",
            "availability_zone",
            "group_id",
            "size",
            "created_at",
            "updated_at",
            "consumes_quota",
        ],
    ),
    ("group", &["name"]),
    ("attachment", &["volume_id", "status", "instance_id", "attach_status"]),
    ("message", &["resource_uuid", "resource_type", "event_id", "request_id", "message_level"]),
    ("pool", &["name", "volume_type"]),
    ("volume_type", &["is_public", "extra_specs"]),
];

/// The configured filters of one resource (empty if none).
pub fn resource_filters(resource: &str) -> &'static [&'static str] {
    RESOURCE_FILTERS.iter().find(|(r, _)| *r == resource).map_or(&[], |(_, f)| f)
}

/// Cinder's `reject_invalid_filters` (3.31+) for a non-admin: every filter
/// key must be configured for the resource (from 3.34 `key~` is allowed
/// where `key~` is configured, which the defaults never are);
/// `all_tenants` is ignored rather than refused. Admins may use any
/// filter, except on pools.
pub fn reject_invalid_filters<'a>(
    resource: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), VolumeRequestError> {
    let allowed = resource_filters(resource);
    let mut bad: Vec<&str> = keys.into_iter().filter(|k| *k != "all_tenants" && !allowed.contains(k)).collect();
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort_unstable();
    Err(BadRequest(format!("Invalid filters {} are found in query options.", bad.join(","))))
}

/// A dict-valued filter (`metadata`, `glance_metadata`) as Cinder reads it
/// with `literal_eval`: a JSON or Python-literal object of strings.
pub fn dict_filter(name: &str, value: &str) -> Result<BTreeMap<String, String>, VolumeRequestError> {
    let parse = |s: &str| serde_json::from_str::<BTreeMap<String, Value>>(s).ok();
    let map = parse(value)
        .or_else(|| parse(&value.replace('\'', "\"")))
        .ok_or_else(|| BadRequest(format!("Invalid input received: Invalid {name} filter {value}")))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// A comparison of Cinder's 3.60 time filters (`created_at=gt:<iso time>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOp {
    /// `gt`: after.
    Gt,
    /// `gte`: at or after.
    Gte,
    /// `eq`: at.
    Eq,
    /// `neq`: not at.
    Neq,
    /// `lt`: before.
    Lt,
    /// `lte`: at or before.
    Lte,
}

/// Parse a 3.60 time filter value: comma-separated `op:time` units, all of
/// which must hold; an unknown operator or a bad time is 400 with Cinder's
/// messages. Times without a zone are UTC, as Cinder stores them.
pub fn time_filter(field: &str, value: &str) -> Result<Vec<(TimeOp, DateTime<Utc>)>, VolumeRequestError> {
    let mut out = Vec::new();
    for unit in value.split(',') {
        let Some((op, time)) = unit.split_once(':') else {
            return Err(BadRequest(format!("Invalid {field} value")));
        };
        let op = match op {
            "gt" => TimeOp::Gt,
            "gte" => TimeOp::Gte,
            "eq" => TimeOp::Eq,
            "neq" => TimeOp::Neq,
            "lt" => TimeOp::Lt,
            "lte" => TimeOp::Lte,
            other => return Err(BadRequest(format!("Invalid {other} operator"))),
        };
        let t = DateTime::parse_from_rfc3339(time)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
            .map_err(|_| BadRequest(format!("Invalid {time} value")))?;
        out.push((op, t));
    }
    Ok(out)
}

/// Whether `t` passes every comparison of a [`time_filter`].
pub fn time_matches(t: DateTime<Utc>, filter: &[(TimeOp, DateTime<Utc>)]) -> bool {
    filter.iter().all(|(op, x)| match op {
        TimeOp::Gt => t > *x,
        TimeOp::Gte => t >= *x,
        TimeOp::Eq => t == *x,
        TimeOp::Neq => t != *x,
        TimeOp::Lt => t < *x,
        TimeOp::Lte => t <= *x,
    })
}

/// The short attachment view of `GET /attachments`.
pub fn attachment_summary(a: &AttachmentRow) -> Value {
    json!({"id": a.id, "status": a.status.as_str(), "instance": a.server_id, "volume_id": a.volume_id})
}

/// Cinder's attachment detail view, with the connection info (`null` until
/// the host's connector is known).
pub fn attachment_detail(a: &AttachmentRow, connection_info: Value) -> Value {
    let mut o = attachment_summary(a);
    o["attached_at"] = if a.status == AttachStatus::Attached { cinder_ts(a.created_at) } else { Value::Null };
    o["detached_at"] = Value::Null;
    o["attach_mode"] = json!(AttachMode::ReadWrite.as_str());
    o["connection_info"] = connection_info;
    o
}

/// One entry of Stratus's admin `GET /stratus/v1/storage-cleanups`.
pub fn cleanup_view(c: &CleanupRow) -> Value {
    json!({"id": c.id, "kind": c.kind.as_str(), "volume_id": c.volume_id, "backend_name": c.backend_name, "client_id": c.client_id,
           "host": c.host, "server_id": c.server_id, "reason": c.reason, "attempts": c.attempts, "last_error": c.last_error, "created_at": ts(c.created_at)})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cinder's `check_volume_filters`: strict oslo booleans from 3.2
    /// (`VOLUME_LIST_BOOTABLE`), the old lenient reading before.
    #[test]
    fn bootable_filter_reads_cinders_words() {
        for (v, b) in [("yes", true), ("T", true), ("1", true), ("off", false), ("No", false), ("0", false)] {
            assert_eq!(bootable_filter(v, 2), Ok(b), "{v}");
        }
        assert!(
            matches!(bootable_filter("maybe", 2), Err(BadRequest(m)) if m == "Invalid input received: 'bootable = maybe'")
        );
        assert_eq!(bootable_filter("0", 1), Ok(true), "before 3.2 only false words are false");
        assert_eq!(bootable_filter("false", 1), Ok(false));
    }

    /// Cinder's `_handle_time_comparison_filters` (3.60): `op:iso-time`
    /// units, comma-separated, all must hold; bad operator or time is 400.
    #[test]
    fn time_filters_compare_as_cinder() {
        let f = time_filter("created_at", "gt:2026-01-01T00:00:00,lte:2026-02-01T00:00:00Z").expect("parse");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("t").with_timezone(&Utc);
        assert!(time_matches(at("2026-01-15T00:00:00Z"), &f));
        assert!(time_matches(at("2026-02-01T00:00:00Z"), &f));
        assert!(!time_matches(at("2026-01-01T00:00:00Z"), &f), "gt is strict");
        assert!(
            matches!(time_filter("created_at", "after:2026-01-01T00:00:00"), Err(BadRequest(m)) if m == "Invalid after operator")
        );
        assert!(
            matches!(time_filter("created_at", "gt:yesterday"), Err(BadRequest(m)) if m == "Invalid yesterday value")
        );
        assert!(matches!(time_filter("updated_at", "2026"), Err(BadRequest(m)) if m == "Invalid updated_at value"));
    }

    /// Cinder's `reject_invalid_filters` with the default
    /// `resource_filters.json`; `literal_eval`-style dict filters.
    #[test]
    fn filters_are_checked_against_cinders_defaults() {
        assert_eq!(reject_invalid_filters("volume", ["name", "bootable", "all_tenants"]), Ok(()));
        assert!(matches!(reject_invalid_filters("volume", ["name~", "project_id"]),
            Err(BadRequest(m)) if m == "Invalid filters name~,project_id are found in query options."));
        assert_eq!(dict_filter("metadata", "{'k': 'v'}").map(|m| m.len()), Ok(1));
        assert_eq!(
            dict_filter("metadata", r#"{"k": "v", "n": 1}"#).ok().and_then(|m| m.get("n").cloned()),
            Some("1".into())
        );
        assert!(dict_filter("metadata", "k=v").is_err());
    }

    #[test]
    fn microversion_header() {
        assert_eq!(requested_minor(None), Ok(0));
        assert_eq!(requested_minor(Some("compute 2.1, volume 3.44")), Ok(44));
        assert_eq!(requested_minor(Some("volume latest")), Ok(MAX_MINOR));
        assert!(matches!(requested_minor(Some("volume 3.x")), Err(VolumeRequestError::BadRequest(_))));
        assert!(matches!(requested_minor(Some("volume 3.99")), Err(VolumeRequestError::NotAcceptable(_))));
        assert!(matches!(require_mv(26, MV_ATTACHMENTS), Err(VolumeRequestError::NotFound(_))));
    }

    #[test]
    fn create_body_accepts_sizes_as_strings_and_snapshots_without_size() {
        let c = CreateVolume::parse(&json!({"volume": {"size": "2", "display_name": "d"}})).expect("parse");
        assert_eq!((c.size, c.name.as_deref()), (2, Some("d")));
        // Cinder: a volume from a snapshot defaults to the snapshot's size.
        let c = CreateVolume::parse(&json!({"volume": {"snapshot_id": "s"}})).expect("parse");
        assert_eq!((c.size, c.snapshot_id.as_deref()), (0, Some("s")));
        assert!(matches!(CreateVolume::parse(&json!({"volume": {}})), Err(VolumeRequestError::BadRequest(_))));
    }

    #[test]
    fn actions_parse() {
        assert_eq!(
            VolumeAction::parse(&json!({"os-extend": {"new_size": 3}})),
            Ok(VolumeAction::Extend { new_size: 3 })
        );
        assert_eq!(
            VolumeAction::parse(&json!({"os-set_bootable": {"bootable": "yes"}})),
            Ok(VolumeAction::SetBootable(true))
        );
        assert_eq!(AttachmentAction::parse(&json!({"os-complete": null})), Ok(AttachmentAction::Complete));
        // Cinder's `revert` schema: an object, `snapshot_id` a string or null.
        assert_eq!(
            VolumeAction::parse(&json!({"revert": {"snapshot_id": "s"}})),
            Ok(VolumeAction::Revert { snapshot_id: Some("s".into()) })
        );
        assert_eq!(VolumeAction::parse(&json!({"revert": {}})), Ok(VolumeAction::Revert { snapshot_id: None }));
        assert!(VolumeAction::parse(&json!({"revert": "s"})).is_err());
        // Cinder's `os-reimage` schema.
        assert_eq!(
            VolumeAction::parse(&json!({"os-reimage": {"image_id": "i", "reimage_reserved": true}})),
            Ok(VolumeAction::Reimage { image_id: "i".into(), reimage_reserved: true })
        );
        assert!(VolumeAction::parse(&json!({"os-reimage": {}})).is_err());
        assert!(VolumeAction::parse(&json!({"os-reimage": {"image_id": "i", "x": 1}})).is_err());
        assert!(VolumeAction::parse(&json!({"os-reimage": {"image_id": "i", "reimage_reserved": "maybe"}})).is_err());
        // Cinder's `extend_volume_completion` schema: `error` a boolean, nothing else.
        assert_eq!(
            VolumeAction::parse(&json!({"os-extend_volume_completion": {"error": true}})),
            Ok(VolumeAction::ExtendCompletion { error: true })
        );
        assert_eq!(
            VolumeAction::parse(&json!({"os-extend_volume_completion": {}})),
            Ok(VolumeAction::ExtendCompletion { error: false })
        );
        assert!(VolumeAction::parse(&json!({"os-extend_volume_completion": null})).is_err());
        assert!(VolumeAction::parse(&json!({"os-extend_volume_completion": {"error": "x"}})).is_err());
        assert!(VolumeAction::parse(&json!({"os-extend_volume_completion": {"new_size": 2}})).is_err());
        assert!(VolumeAction::parse(&json!({"revert": {"snapshot_id": 1}})).is_err());
        assert!(AttachmentAction::parse(&json!({"os-nope": null})).is_err());
    }
}
