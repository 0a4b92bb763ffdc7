//! `POST /servers/{id}/action`: one serde-tagged enum, one variant per
//! action key. Body-less actions accept `null` and `{}` (as Nova does); the
//! others check their argument with Nova's messages. An unknown key is told
//! apart from a bad argument so the handler can answer "no such action" only
//! after checking that the server exists.

use super::requests::only_keys;
use super::{RequestError, ref_id, validate_name};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use stratus_types::VmState;

/// `os-resetState` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetStateTarget {
    /// `active`.
    Active,
    /// `error`.
    Error,
}

/// A server action as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum ServerAction {
    /// `os-stop`.
    #[serde(rename = "os-stop", deserialize_with = "no_body::os_stop")]
    Stop,
    /// `os-start`.
    #[serde(rename = "os-start", deserialize_with = "no_body::os_start")]
    Start,
    /// `pause`.
    #[serde(rename = "pause", deserialize_with = "no_body::pause")]
    Pause,
    /// `unpause`.
    #[serde(rename = "unpause", deserialize_with = "no_body::unpause")]
    Unpause,
    /// `suspend`.
    #[serde(rename = "suspend", deserialize_with = "no_body::suspend")]
    Suspend,
    /// `resume`.
    #[serde(rename = "resume", deserialize_with = "no_body::resume")]
    Resume,
    /// `shelve`.
    #[serde(rename = "shelve", deserialize_with = "no_body::shelve")]
    Shelve,
    /// `shelveOffload`.
    #[serde(rename = "shelveOffload", deserialize_with = "no_body::shelve_offload")]
    ShelveOffload,
    /// `unshelve`, to an `availability_zone` (2.77; null unpins, 2.91) or
    /// a `host` (2.91, admins); checked against the microversion by
    /// [`ServerAction::check_at`].
    #[serde(rename = "unshelve", deserialize_with = "unshelve")]
    Unshelve {
        /// `Some(Some(az))`: that zone; `Some(None)`: unpinned; `None`: unchanged.
        availability_zone: Option<Option<String>>,
        /// The host to unshelve on.
        host: Option<String>,
    },
    /// `migrate` (cold, admin): `null`, `{}`, or from 2.56 `{host}`.
    #[serde(rename = "migrate", deserialize_with = "migrate")]
    Migrate {
        /// The destination the admin chose (2.56); `None`: the scheduler's pick.
        host: Option<String>,
    },
    /// `confirmResize` (answered 204).
    #[serde(rename = "confirmResize", deserialize_with = "no_body::confirm_resize")]
    ConfirmResize,
    /// `revertResize`.
    #[serde(rename = "revertResize", deserialize_with = "no_body::revert_resize")]
    RevertResize,
    /// `restore` a soft-deleted server.
    #[serde(rename = "restore", deserialize_with = "no_body::restore")]
    Restore,
    /// `forceDelete`.
    #[serde(rename = "forceDelete", deserialize_with = "no_body::force_delete")]
    ForceDelete,
    /// `unlock`.
    #[serde(rename = "unlock", deserialize_with = "no_body::unlock")]
    Unlock,
    /// `lock`, with a `locked_reason` from 2.73 (checked by [`ServerAction::check_at`]).
    #[serde(rename = "lock", deserialize_with = "lock")]
    Lock {
        /// Why (2.73+).
        reason: Option<String>,
    },
    /// `reboot {type}`.
    #[serde(rename = "reboot", deserialize_with = "reboot")]
    Reboot {
        /// HARD rather than SOFT.
        hard: bool,
    },
    /// `resize {flavorRef}`.
    #[serde(rename = "resize", deserialize_with = "resize")]
    Resize {
        /// `flavorRef` as given.
        flavor_ref: String,
    },
    /// `evacuate {host?, adminPass?, onSharedStorage (before 2.14), force
    /// (2.29-2.67)}`: which keys a microversion takes is
    /// [`ServerAction::check_at`]'s to say.
    #[serde(rename = "evacuate", deserialize_with = "evacuate")]
    Evacuate(Evacuate),
    /// `createImage {name, metadata?}`.
    #[serde(rename = "createImage", deserialize_with = "create_image")]
    CreateImage {
        /// Snapshot name.
        name: String,
        /// Snapshot properties.
        metadata: BTreeMap<String, String>,
    },
    /// `createBackup {name, backup_type, rotation, metadata?}`: a snapshot
    /// kept with the `rotation` newest of the server's backups of its type.
    #[serde(rename = "createBackup", deserialize_with = "create_backup")]
    CreateBackup(Backup),
    /// `rebuild {imageRef, name?, metadata?, adminPass?, preserve_ephemeral?, ...}`.
    #[serde(rename = "rebuild", deserialize_with = "rebuild")]
    Rebuild(Box<Rebuild>),
    /// `os-resetState {state}` (admin).
    #[serde(rename = "os-resetState", deserialize_with = "reset_state")]
    ResetState {
        /// The vm_state to set.
        state: ResetStateTarget,
    },
    /// `addSecurityGroup {name}`.
    #[serde(rename = "addSecurityGroup", deserialize_with = "add_security_group")]
    AddSecurityGroup {
        /// The group's name.
        name: String,
    },
    /// `removeSecurityGroup {name}`.
    #[serde(rename = "removeSecurityGroup", deserialize_with = "remove_security_group")]
    RemoveSecurityGroup {
        /// The group's name.
        name: String,
    },
    /// `os-getConsoleOutput {length?}` (answered 200 with the text).
    #[serde(rename = "os-getConsoleOutput", deserialize_with = "console_output")]
    GetConsoleOutput {
        /// Only the last this many lines; `None` (absent, null or -1): all.
        length: Option<usize>,
    },
}

/// The argument of an `evacuate` action, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evacuate {
    /// Destination host; `None`: the scheduler picks one.
    pub host: Option<String>,
    /// Admin password (returned before 2.14; generated when absent).
    pub admin_pass: Option<String>,
    /// `onSharedStorage` (required before 2.14, refused from it).
    pub on_shared_storage: Option<bool>,
    /// `force` (2.29 to 2.67): skip the scheduler's checks of `host`.
    pub force: Option<bool>,
}

/// Server actions Nova removed at 2.44 with the nova-network proxies (a
/// request for one from then on is a 404, not an unknown action).
const REMOVED_AT_2_44: [&str; 4] = ["addFixedIp", "removeFixedIp", "addFloatingIp", "removeFloatingIp"];

/// Is `name` an action Nova no longer has at `mv` (answered 404)?
pub fn action_removed(name: &str, mv: crate::Microversion) -> bool {
    mv.at_least(44) && REMOVED_AT_2_44.contains(&name)
}

/// Every action key this cloud knows.
pub const ACTION_NAMES: &[&str] = &[
    "os-stop",
    "os-start",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "shelve",
    "shelveOffload",
    "unshelve",
    "migrate",
    "confirmResize",
    "revertResize",
    "restore",
    "forceDelete",
    "unlock",
    "lock",
    "reboot",
    "resize",
    "evacuate",
    "createImage",
    "createBackup",
    "rebuild",
    "os-resetState",
    "os-getConsoleOutput",
    "addSecurityGroup",
    "removeSecurityGroup",
];

/// Why an action body was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// Not one object with exactly one key, or a bad argument: 400 at once.
    Invalid(RequestError),
    /// A well-formed body naming an action this cloud does not know.
    Unknown(String),
}

impl ServerAction {
    /// Parse an action body.
    pub fn parse(v: &Value) -> Result<Self, ActionError> {
        let Some(obj) = v.as_object().filter(|o| o.len() == 1) else {
            return Err(ActionError::Invalid(RequestError::BadRequest(
                "The action body must be an object with exactly one action key".into(),
            )));
        };
        let Some(key) = obj.keys().next() else {
            return Err(ActionError::Invalid(RequestError::BadRequest("Missing action".into())));
        };
        if !ACTION_NAMES.contains(&key.as_str()) {
            return Err(ActionError::Unknown(key.clone()));
        }
        Self::deserialize(v).map_err(|e| ActionError::Invalid(RequestError::BadRequest(e.to_string())))
    }

    /// Refuse what Nova's action schemas at `mv` do not know: `evacuate`
    /// needs `onSharedStorage` before 2.14 and refuses it from 2.14, takes
    /// `force` only from 2.29 to 2.67 (and `force` needs a `host`); `migrate`
    /// takes a `host` only from 2.56; a lock's `locked_reason` only from
    /// 2.73; `unshelve` a zone from 2.77 and a host (or null zone) from 2.91.
    pub fn check_at(&self, mv: crate::Microversion) -> Result<(), RequestError> {
        let unexpected =
            |k: &str| RequestError::BadRequest(format!("Additional properties are not allowed ('{k}' was unexpected)"));
        match self {
            Self::Evacuate(e) => {
                match (mv.at_least(14), e.on_shared_storage.is_some()) {
                    (false, false) => {
                        return Err(RequestError::BadRequest(
                            "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property"
                                .into(),
                        ));
                    }
                    (true, true) => return Err(unexpected("onSharedStorage")),
                    _ => {}
                }
                let force_served = mv.at_least(29) && !mv.at_least(68);
                if e.force.is_some() && !force_served {
                    return Err(unexpected("force"));
                }
                if e.force == Some(true) && e.host.is_none() {
                    return Err(RequestError::BadRequest("Can't force to a non-provided destination".into()));
                }
                Ok(())
            }
            Self::Migrate { host: Some(_) } if !mv.at_least(56) => Err(unexpected("host")),
            Self::Lock { reason: Some(_) } if !mv.at_least(73) => Err(RequestError::BadRequest(
                "Invalid input for field/attribute lock. Additional properties are not allowed ('locked_reason' was unexpected)".into(),
            )),
            Self::Rebuild(r) => r.check_at(mv),
            Self::Unshelve { availability_zone, host } => {
                let needs = match (availability_zone, host) {
                    (_, Some(_)) | (Some(None), _) => 91,
                    (Some(Some(_)), None) => 77,
                    (None, None) => 1,
                };
                if mv.at_least(needs) {
                    Ok(())
                } else {
                    Err(RequestError::BadRequest(
                        "Invalid input for field/attribute unshelve. Value: must be null at this microversion".into(),
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// The resize target's flavor id (last segment of a `flavorRef` URL).
    pub fn flavor_id(flavor_ref: &str) -> &str {
        ref_id(flavor_ref)
    }
}

/// Body-less actions: `null` or `{}`; anything else is Nova's "not of type 'null'".
mod no_body {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error as _};
    use serde_json::Value;

    fn check<'de, D: Deserializer<'de>>(d: D, name: &str) -> Result<(), D::Error> {
        let arg = Value::deserialize(d)?;
        match &arg {
            Value::Null => Ok(()),
            Value::Object(o) if o.is_empty() => Ok(()),
            _ => Err(D::Error::custom(format!(
                "Invalid input for field/attribute {name}. Value: {arg}. {arg} is not of type 'null'"
            ))),
        }
    }

    macro_rules! no_body {
        ($($f:ident => $name:literal),* $(,)?) => {$(
            pub(super) fn $f<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
                check(d, $name)
            }
        )*};
    }

    no_body! {
        os_stop => "os-stop", os_start => "os-start", pause => "pause", unpause => "unpause",
        suspend => "suspend", resume => "resume", shelve => "shelve", shelve_offload => "shelveOffload",
        confirm_resize => "confirmResize",
        revert_resize => "revertResize", restore => "restore", force_delete => "forceDelete", unlock => "unlock",
    }
}

fn bad<E: serde::de::Error>(m: impl std::fmt::Display) -> E {
    E::custom(m)
}

fn object<'a, E: serde::de::Error>(arg: &'a Value, name: &str) -> Result<&'a serde_json::Map<String, Value>, E> {
    arg.as_object().ok_or_else(|| bad(format!("Invalid input for field/attribute {name}: it must be an object")))
}

fn keys<E: serde::de::Error>(o: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), E> {
    only_keys(o, allowed).map_err(bad)
}

fn lock<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let arg = Value::deserialize(d)?;
    let Value::Object(o) = &arg else {
        return match arg {
            Value::Null => Ok(None),
            _ => Err(bad(format!(
                "Invalid input for field/attribute lock. Value: {arg}. {arg} is not of type 'object', 'null'"
            ))),
        };
    };
    keys(o, &["locked_reason"])?;
    match o.get("locked_reason") {
        None => Ok(None),
        Some(Value::String(r)) if r.chars().count() <= 255 => Ok(Some(r.clone())),
        Some(v) => Err(bad(format!(
            "Invalid input for field/attribute locked_reason. Value: {v}. It must be a string of at most 255 characters"
        ))),
    }
}

type UnshelveArgs = (Option<Option<String>>, Option<String>);

fn unshelve<'de, D: Deserializer<'de>>(d: D) -> Result<UnshelveArgs, D::Error> {
    let arg = Value::deserialize(d)?;
    let Value::Object(o) = &arg else {
        return match arg {
            Value::Null => Ok((None, None)),
            _ => Err(bad(format!(
                "Invalid input for field/attribute unshelve. Value: {arg}. {arg} is not of type 'object', 'null'"
            ))),
        };
    };
    keys(o, &["availability_zone", "host"])?;
    let name = |key: &str, v: &Value| match v {
        Value::String(s) if (1..=255).contains(&s.chars().count()) => Ok(s.clone()),
        other => Err(bad(format!(
            "Invalid input for field/attribute {key}. Value: {other}. It must be a string of 1 to 255 characters"
        ))),
    };
    let az = match o.get("availability_zone") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(name("availability_zone", v)?)),
    };
    let host = match o.get("host") {
        None => None,
        Some(v) => Some(name("host", v)?),
    };
    Ok((az, host))
}

fn reboot<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let arg = Value::deserialize(d)?;
    let ty = arg
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| bad("Invalid input for field/attribute reboot. 'type' is a required property"))?;
    match ty.to_ascii_uppercase().as_str() {
        "SOFT" => Ok(false),
        "HARD" => Ok(true),
        _ => Err(bad(format!(
            "Invalid input for field/attribute type. Value: {ty}. '{ty}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
        ))),
    }
}

fn resize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "resize")?;
    keys(o, &["flavorRef", "OS-DCF:diskConfig"])?;
    match o.get("flavorRef") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(bad("Invalid input for field/attribute resize. 'flavorRef' is a required property")),
    }
}

/// A `rebuild` body whose shape is valid (the image is the service's to check).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuild {
    /// `imageRef` as given.
    pub image_ref: String,
    /// New name.
    pub name: Option<String>,
    /// New metadata (replaces the old).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Admin password to return (generated when absent).
    pub admin_pass: Option<String>,
    /// New description, `Some(None)` clears it (2.19+).
    pub description: Option<Option<String>>,
    /// New key pair name, `Some(None)` unsets it (2.54+).
    pub key_name: Option<Option<String>>,
    /// New user data, `Some(None)` clears it (2.57+).
    pub user_data: Option<Option<String>>,
    /// New guest host name (2.90+; the raw value, checked by [`Rebuild::check_at`]).
    pub hostname: Option<Value>,
    /// The keys the body carried (checked against the microversion by [`Rebuild::check_at`]).
    pub keys: Vec<String>,
    /// New `accessIPv4` / `accessIPv6`.
    pub access_ips: crate::compute::AccessIps,
}

impl Rebuild {
    /// Refuse the keys Nova's rebuild schema at `mv` does not know:
    /// `description` before 2.19, `key_name` before 2.54, `user_data`
    /// before 2.57, and `personality` from 2.57 on.
    pub fn check_at(&self, mv: crate::Microversion) -> Result<(), RequestError> {
        for k in &self.keys {
            let ok = match k.as_str() {
                "description" => mv.at_least(19),
                "key_name" => mv.at_least(54),
                "user_data" => mv.at_least(57),
                "personality" => !mv.at_least(57),
                "trusted_image_certificates" => mv.at_least(63),
                "hostname" => mv.at_least(90),
                _ => true,
            };
            if !ok {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute rebuild. Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        if let Some(h) = &self.hostname {
            crate::compute::validate_hostname(h, mv)?;
        }
        Ok(())
    }

    /// The checked host name (call after [`Rebuild::check_at`]).
    pub fn hostname_at(&self, mv: crate::Microversion) -> Result<Option<String>, RequestError> {
        self.hostname.as_ref().map(|h| crate::compute::validate_hostname(h, mv)).transpose()
    }
}

fn rebuild<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Rebuild>, D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "rebuild")?;
    keys(
        o,
        &[
            "imageRef",
            "name",
            "metadata",
            "adminPass",
            "preserve_ephemeral",
            "accessIPv4",
            "accessIPv6",
            "OS-DCF:diskConfig",
            "personality",
            "description",
            "key_name",
            "user_data",
            "trusted_image_certificates",
            "hostname",
        ],
    )?;
    if let Some(c) = o.get("trusted_image_certificates") {
        crate::compute::check_trusted_certs(c).map_err(bad)?;
    }
    let image_ref = match o.get("imageRef") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(bad("Invalid input for field/attribute rebuild. 'imageRef' is a required property")),
    };
    let name = match o.get("name") {
        None => None,
        Some(Value::String(n)) => {
            crate::compute::validate_name(n, "name").map_err(bad)?;
            Some(n.clone())
        }
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string'"
            )));
        }
    };
    let metadata = match o.get("metadata") {
        None => None,
        Some(Value::Object(m)) => Some(crate::compute::requests::metadata_for_action(m).map_err(bad)?),
        Some(_) => return Err(bad("Invalid input for field/attribute metadata. Value: must be an object")),
    };
    let admin_pass = match o.get("adminPass") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute adminPass: it must be a string")),
    };
    if o.get("preserve_ephemeral").is_some_and(|v| !v.is_boolean()) {
        return Err(bad("Invalid input for field/attribute preserve_ephemeral: it must be a boolean"));
    }
    let description = match o.get("description") {
        None => None,
        Some(d) => Some(crate::compute::validate_description(d).map_err(bad)?),
    };
    let key_name = match o.get("key_name") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(k)) if (1..=255).contains(&k.chars().count()) => Some(Some(k.clone())),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute key_name. Value: {other}. It must be null or 1 to 255 characters"
            )));
        }
    };
    let user_data = match o.get("user_data") {
        None => None,
        Some(u) => Some(crate::compute::validate_user_data(u).map_err(bad)?),
    };
    let keys = o.keys().cloned().collect();
    let hostname = o.get("hostname").cloned();
    let access_ips = crate::compute::AccessIps::parse(o.get("accessIPv4"), o.get("accessIPv6")).map_err(bad)?;
    Ok(Box::new(Rebuild {
        image_ref,
        name,
        metadata,
        admin_pass,
        description,
        key_name,
        user_data,
        hostname,
        keys,
        access_ips,
    }))
}

/// A host name as Nova's `fqdn` parameter type takes it: 1-255 characters
/// of letters, digits, `-`, `_`, `.`.
fn host_name<E: serde::de::Error>(v: &Value, field: &str) -> Result<String, E> {
    let h = v.as_str().ok_or_else(|| {
        bad(format!("Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'string'"))
    })?;
    let ok =
        (1..=255).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(bad(format!(
            "Invalid input for field/attribute {field}. Value: {h}. '{h}' is not a valid host name"
        )));
    }
    Ok(h.to_string())
}

/// A JSON boolean or one of the strings Nova's boolean parameter takes.
fn boolean<E: serde::de::Error>(v: &Value, field: &str) -> Result<bool, E> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "on" | "yes" | "y" | "t") => {
            Ok(true)
        }
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "false" | "0" | "off" | "no" | "n" | "f") => {
            Ok(false)
        }
        other => Err(bad(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'boolean'"
        ))),
    }
}

fn evacuate<'de, D: Deserializer<'de>>(d: D) -> Result<Evacuate, D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "evacuate")?;
    keys(o, &["host", "adminPass", "onSharedStorage", "force"])?;
    let host = o.get("host").map(|h| host_name(h, "host")).transpose()?;
    let admin_pass = match o.get("adminPass") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute adminPass: it must be a string")),
    };
    let on_shared_storage = o.get("onSharedStorage").map(|v| boolean(v, "onSharedStorage")).transpose()?;
    let force = o.get("force").map(|v| boolean(v, "force")).transpose()?;
    Ok(Evacuate { host, admin_pass, on_shared_storage, force })
}

/// `migrate`: `null`, or an object with at most `host` (a name or null).
fn migrate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let arg = Value::deserialize(d)?;
    if arg.is_null() {
        return Ok(None);
    }
    let o = object(&arg, "migrate")?;
    keys(o, &["host"])?;
    match o.get("host") {
        None | Some(Value::Null) => Ok(None),
        Some(h) => host_name(h, "host").map(Some),
    }
}

fn create_image<'de, D: Deserializer<'de>>(d: D) -> Result<(String, BTreeMap<String, String>), D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "createImage")?;
    keys(o, &["name", "metadata"])?;
    let name = o
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("Invalid input for field/attribute createImage. 'name' is a required property"))?;
    validate_name(name, "name").map_err(bad)?;
    let mut metadata = BTreeMap::new();
    if let Some(m) = o.get("metadata") {
        let m = m.as_object().ok_or_else(|| bad("Invalid input for field/attribute metadata: it must be an object"))?;
        for (k, v) in m {
            let v = v.as_str().ok_or_else(|| {
                bad(format!("Invalid input for field/attribute metadata. Value of {k} is not a string"))
            })?;
            check_image_metadata_item(k, v).map_err(bad)?;
            metadata.insert(k.clone(), v.to_string());
        }
    }
    Ok((name.to_string(), metadata))
}

/// A `createBackup` body, checked as Nova's schema does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// Backup image name.
    pub name: String,
    /// Free-form type (`daily`, `weekly`, ...): backups rotate per type.
    pub backup_type: String,
    /// How many backups of this type to keep (0 keeps none).
    pub rotation: u32,
    /// Extra image properties.
    pub metadata: BTreeMap<String, String>,
}

fn create_backup<'de, D: Deserializer<'de>>(d: D) -> Result<Backup, D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "createBackup")?;
    keys(o, &["name", "backup_type", "rotation", "metadata"])?;
    let required =
        |k: &str| bad(format!("Invalid input for field/attribute createBackup. '{k}' is a required property"));
    let name = match o.get("name") {
        None => return Err(required("name")),
        Some(Value::String(n)) => n.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string'"
            )));
        }
    };
    validate_name(&name, "name").map_err(bad)?;
    let backup_type = match o.get("backup_type") {
        None => return Err(required("backup_type")),
        Some(Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute backup_type. Value: {other}. {other} is not of type 'string'"
            )));
        }
    };
    // Nova's non-negative integer: a number, or a string of digits.
    let rotation = match o.get("rotation") {
        None => return Err(required("rotation")),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(Value::String(t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| {
        bad(format!(
            "Invalid input for field/attribute rotation. Value: {}. It must be a non-negative integer",
            o.get("rotation").map(Value::to_string).unwrap_or_default()
        ))
    })?;
    let mut metadata = BTreeMap::new();
    if let Some(m) = o.get("metadata") {
        let m = m.as_object().ok_or_else(|| bad("Invalid input for field/attribute metadata: it must be an object"))?;
        for (k, v) in m {
            let v = v.as_str().ok_or_else(|| {
                bad(format!("Invalid input for field/attribute metadata. Value of {k} is not a string"))
            })?;
            check_image_metadata_item(k, v).map_err(bad)?;
            metadata.insert(k.clone(), v.to_string());
        }
    }
    Ok(Backup { name, backup_type, rotation, metadata })
}

/// Key prefixes a snapshot's metadata may not set: Stratus keeps tags and
/// `os_hidden` under `stratus:` properties, Glance reserves `os_glance_`.
const RESERVED_IMAGE_KEY_PREFIXES: [&str; 2] = ["stratus:", "os_glance_"];

/// One `createImage` metadata item, as Nova's metadata schema checks it
/// (key 1-255 characters, value at most 255), and no reserved key.
fn check_image_metadata_item(k: &str, v: &str) -> Result<(), String> {
    let len = k.chars().count();
    if !(1..=255).contains(&len) || v.chars().count() > 255 {
        return Err(format!(
            "Invalid input for field/attribute metadata. Key {k:?} or its value does not fit 1-255 characters"
        ));
    }
    let lower = k.to_ascii_lowercase();
    if RESERVED_IMAGE_KEY_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(format!("Invalid input for field/attribute metadata. Key {k:?} is reserved"));
    }
    Ok(())
}

fn reset_state<'de, D: Deserializer<'de>>(d: D) -> Result<ResetStateTarget, D::Error> {
    let arg = Value::deserialize(d)?;
    let state = arg.get("state").and_then(|s| s.as_str()).ok_or_else(|| {
        D::Error::custom("Invalid input for field/attribute os-resetState. 'state' is a required property")
    })?;
    match state.parse::<VmState>() {
        Ok(VmState::Active) => Ok(ResetStateTarget::Active),
        Ok(VmState::Error) => Ok(ResetStateTarget::Error),
        _ => Err(bad(format!(
            "Invalid input for field/attribute state. Value: {state}. '{state}' is not one of ['active', 'error']"
        ))),
    }
}

/// `os-getConsoleOutput {length?}`: `length` an integer or a string of digits,
/// `-1` (or absent, or null) meaning the whole log; other negatives and
/// anything else are refused.
/// `{name}` of Nova's add/removeSecurityGroup schema: a non-empty string,
/// nothing else.
fn security_group_name<E: serde::de::Error>(arg: &Value, action: &str) -> Result<String, E> {
    let o = object(arg, action)?;
    keys(o, &["name"])?;
    match o.get("name") {
        None => {
            Err(bad(format!("Invalid input for field/attribute {action}. Value: {arg}. 'name' is a required property")))
        }
        Some(Value::String(n)) if !n.is_empty() => Ok(n.clone()),
        Some(v) => {
            Err(bad(format!("Invalid input for field/attribute name. Value: {v}. {v} is not a non-empty string")))
        }
    }
}

fn add_security_group<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    security_group_name(&Value::deserialize(d)?, "addSecurityGroup")
}

fn remove_security_group<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    security_group_name(&Value::deserialize(d)?, "removeSecurityGroup")
}

fn console_output<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let arg = Value::deserialize(d)?;
    let o = object(&arg, "os-getConsoleOutput")?;
    keys(o, &["length"])?;
    let invalid = |v: &Value| {
        bad(format!(
            "Invalid input for field/attribute length. Value: {v}. {v} is not an integer of at least -1 (or -1 for all)"
        ))
    };
    let n: i128 = match o.get("length") {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Number(n)) => n.as_i64().map(i128::from).ok_or_else(|| invalid(v))?,
        Some(v @ Value::String(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(v));
            }
            // Longer than any log: the whole log.
            s.parse::<i128>().unwrap_or(i128::MAX)
        }
        Some(v) => return Err(invalid(v)),
    };
    match n {
        -1 => Ok(None),
        n if n < -1 => Err(invalid(&o["length"])),
        n => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}
