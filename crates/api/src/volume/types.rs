//! Volume types (`/types`): request bodies checked against Cinder's JSON
//! schemas (with its 400 messages), and the views Cinder renders.

use super::VolumeRequestError::{self, BadRequest};
use super::body_object;
use serde_json::{Map, Value, json};
use stratus_db::{ExtraSpecs, VolumeTypeRow};

/// Longest name, description, spec key or value Cinder's schemas accept.
const MAX_LEN: usize = 255;

/// Extra spec keys non-admins are shown (Cinder's `USER_VISIBLE_EXTRA_SPECS`):
/// the rest may reveal how the deployment is built.
pub const USER_VISIBLE_EXTRA_SPECS: &[&str] = &["RESKEY:availability_zones", "multiattach", "replication_enabled"];

/// `POST /types` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateVolumeType {
    /// Unique name (1..=255 characters, not only blanks).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Initial extra specs.
    pub extra_specs: ExtraSpecs,
    /// `os-volume-type-access:is_public` (default true).
    pub is_public: bool,
}

/// `PUT /types/{id}` body: absent fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateVolumeType {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub is_public: Option<bool>,
}

/// `POST /types/{id}/action`: type access changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeTypeAction {
    /// `addProjectAccess` (admins, 202).
    AddProjectAccess(String),
    /// `removeProjectAccess` (admins, 202).
    RemoveProjectAccess(String),
}

/// Cinder's schema failure text for `field`.
fn invalid(field: &str, value: &Value, why: &str) -> VolumeRequestError {
    BadRequest(format!("Invalid input for field/attribute {field}. Value: {value}. {why}"))
}

fn only_keys(o: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), VolumeRequestError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(BadRequest(format!(
            "Invalid input for field/attribute {field}. Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// A string of at most [`MAX_LEN`] characters (`null` allowed when `nullable`).
fn text(o: &Map<String, Value>, field: &str, min: usize, nullable: bool) -> Result<Option<String>, VolumeRequestError> {
    match o.get(field) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(None),
        Some(v @ Value::String(s)) => {
            let n = s.chars().count();
            if n < min {
                Err(invalid(field, v, &format!("{v} is too short")))
            } else if n > MAX_LEN {
                Err(invalid(field, v, &format!("{v} is too long")))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(v) => Err(invalid(field, v, &format!("{v} is not of type 'string'"))),
    }
}

/// Cinder's `boolean` parameter type: a JSON boolean or one of its words.
fn boolean(field: &str, v: &Value) -> Result<bool, VolumeRequestError> {
    const TRUE: &[&str] = &["True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"];
    const FALSE: &[&str] = &["False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"];
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if TRUE.contains(&s.as_str()) => Ok(true),
        Value::String(s) if FALSE.contains(&s.as_str()) => Ok(false),
        v => Err(invalid(field, v, &format!("{v} is not one of the accepted boolean values"))),
    }
}

/// Extra specs: keys matching Cinder's pattern (with or without blanks and
/// slashes), values strings of at most 255 characters or `null`.
fn extra_specs(field: &str, v: &Value, allow_blanks: bool) -> Result<ExtraSpecs, VolumeRequestError> {
    let Value::Object(m) = v else {
        return Err(invalid(field, v, &format!("{v} is not of type 'object'")));
    };
    let key_ok = |k: &str| {
        (1..=MAX_LEN).contains(&k.chars().count())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c) || (allow_blanks && (c == ' ' || c == '/')))
    };
    let mut out = ExtraSpecs::new();
    for (k, val) in m {
        if !key_ok(k) {
            return Err(invalid(field, v, &format!("Additional properties are not allowed ('{k}' was unexpected)")));
        }
        match val {
            Value::Null => {
                out.insert(k.clone(), None);
            }
            Value::String(s) if s.chars().count() <= MAX_LEN => {
                out.insert(k.clone(), Some(s.clone()));
            }
            Value::String(_) => return Err(invalid(k, val, &format!("{val} is too long"))),
            other => return Err(invalid(k, other, &format!("{other} is not of type 'string', 'null'"))),
        }
    }
    Ok(out)
}

impl CreateVolumeType {
    /// Parse a create body (Cinder's `volume_types.create` schema and its
    /// `name` format: not empty once blanks are trimmed).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "volume_type")?;
        only_keys(o, "volume_type", &["name", "description", "extra_specs", "os-volume-type-access:is_public"])?;
        let name = text(o, "name", 1, false)?
            .ok_or_else(|| invalid("volume_type", &Value::Object(o.clone()), "'name' is a required property"))?;
        if name.trim().is_empty() {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute name. Value: {name}. The 'name' can not be empty."
            )));
        }
        let extra_specs = match o.get("extra_specs") {
            None | Some(Value::Null) => ExtraSpecs::new(),
            Some(s) => extra_specs("extra_specs", s, true)?,
        };
        let is_public = match o.get("os-volume-type-access:is_public") {
            None => true,
            Some(b) => boolean("os-volume-type-access:is_public", b)?,
        };
        Ok(Self { name, description: text(o, "description", 0, true)?, extra_specs, is_public })
    }
}

impl UpdateVolumeType {
    /// Parse an update body (Cinder's `volume_types.update` schema, then its
    /// controller's rules: a blank name, or nothing to change, is refused).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "volume_type")?;
        only_keys(o, "volume_type", &["name", "description", "is_public"])?;
        let name = text(o, "name", 1, true)?;
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(BadRequest("Volume type name can not be empty.".into()));
        }
        let is_public = match o.get("is_public") {
            None | Some(Value::Null) => None,
            Some(b) => Some(boolean("is_public", b)?),
        };
        let u = Self { name, description: text(o, "description", 0, true)?, is_public };
        if u.name.is_none() && u.description.is_none() && u.is_public.is_none() {
            return Err(BadRequest(
                "Specify volume type name, description, is_public or a combination thereof.".into(),
            ));
        }
        Ok(u)
    }
}

/// `POST /types/{id}/extra_specs` body: `{"extra_specs": {...}}` (keys
/// without blanks).
pub fn parse_extra_specs_create(v: &Value) -> Result<ExtraSpecs, VolumeRequestError> {
    let Some(o) = v.as_object() else {
        return Err(BadRequest(format!(
            "Invalid input for field/attribute body. Value: {v}. {v} is not of type 'object'"
        )));
    };
    only_keys(o, "body", &["extra_specs"])?;
    let specs = o.get("extra_specs").ok_or_else(|| invalid("body", v, "'extra_specs' is a required property"))?;
    extra_specs("extra_specs", specs, false)
}

/// `PUT /types/{id}/extra_specs/{key}` body: exactly one spec, the URL's.
pub fn parse_extra_spec_update(v: &Value, key: &str) -> Result<(String, Option<String>), VolumeRequestError> {
    let specs = extra_specs("body", v, false)?;
    if specs.len() != 1 {
        return Err(invalid("body", v, "must hold exactly one extra spec"));
    }
    match specs.into_iter().next() {
        Some((k, val)) if k == key => Ok((k, val)),
        _ => Err(BadRequest("Request body and URI mismatch".into())),
    }
}

impl VolumeTypeAction {
    /// Parse an action body: exactly one known action with `{"project": id}`.
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
            return Err(BadRequest("The action body must be an object with exactly one action key.".into()));
        };
        if action != "addProjectAccess" && action != "removeProjectAccess" {
            return Err(BadRequest(format!("There is no such action: {action}")));
        }
        let Value::Object(o) = arg else {
            return Err(invalid(action, arg, &format!("{arg} is not of type 'object'")));
        };
        only_keys(o, action, &["project"])?;
        let project =
            text(o, "project", 1, false)?.ok_or_else(|| invalid(action, arg, "'project' is a required property"))?;
        Ok(if action == "addProjectAccess" {
            Self::AddProjectAccess(project)
        } else {
            Self::RemoveProjectAccess(project)
        })
    }
}

/// The extra specs a viewer may see: all for admins, else only
/// [`USER_VISIBLE_EXTRA_SPECS`].
pub fn visible_specs(specs: &ExtraSpecs, admin: bool) -> ExtraSpecs {
    specs
        .iter()
        .filter(|(k, _)| admin || USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Who is looking at a volume type, for the fields Cinder's policies gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeViewer {
    /// Admins see every extra spec and `qos_specs_id`.
    pub admin: bool,
    /// Project members (and admins) see `os-volume-type-access:is_public`.
    pub member: bool,
}

/// The show/list view (`GET /types[/{id}]`): `specs` are filtered here.
pub fn volume_type_view(t: &VolumeTypeRow, specs: &ExtraSpecs, viewer: TypeViewer) -> Value {
    let mut o = json!({
        "id": t.id,
        "name": t.name,
        "is_public": t.is_public,
        "description": t.description,
        "extra_specs": visible_specs(specs, viewer.admin),
    });
    if viewer.admin {
        // No QoS specs exist here.
        o["qos_specs_id"] = Value::Null;
    }
    if viewer.member || viewer.admin {
        o["os-volume-type-access:is_public"] = json!(t.is_public);
    }
    o
}

/// The create/update view (Cinder's older type view: every extra spec, no
/// QoS id); create adds `os-volume-type-access:is_public`.
pub fn volume_type_written_view(t: &VolumeTypeRow, specs: &ExtraSpecs, created: bool) -> Value {
    let mut o = json!({
        "id": t.id,
        "name": t.name,
        "is_public": t.is_public,
        "description": t.description,
        "extra_specs": specs,
    });
    if created {
        o["os-volume-type-access:is_public"] = json!(t.is_public);
    }
    o
}

/// `GET /types/{id}/os-volume-type-access`.
pub fn type_access_view(type_id: &str, projects: &[String]) -> Value {
    let list: Vec<Value> = projects.iter().map(|p| json!({"volume_type_id": type_id, "project_id": p})).collect();
    json!({ "volume_type_access": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cinder's create schema: name required and not blank, no extra keys,
    /// boolean words for is_public, spec keys by pattern.
    #[test]
    fn create_body() {
        let c = CreateVolumeType::parse(&json!({"volume_type": {"name": "gold", "extra_specs": {"a b/c": "1", "n": null}, "os-volume-type-access:is_public": "False"}})).expect("parse");
        assert_eq!((c.name.as_str(), c.is_public, c.extra_specs.len()), ("gold", false, 2));
        for bad in [
            json!({"volume_type": {"name": ""}}),
            json!({"volume_type": {"name": "  "}}),
            json!({"volume_type": {"name": "x".repeat(256)}}),
            json!({"volume_type": {}}),
            json!({"volume_type": {"name": "a", "x": 1}}),
            json!({"volume_type": {"name": "a", "extra_specs": {"k": 1}}}),
            json!({"volume_type": {"name": "a", "os-volume-type-access:is_public": "maybe"}}),
            json!({"nope": {}}),
        ] {
            assert!(matches!(CreateVolumeType::parse(&bad), Err(BadRequest(_))), "{bad}");
        }
    }

    /// Cinder's update rules: something to change, a name not blank.
    #[test]
    fn update_body() {
        let u = UpdateVolumeType::parse(&json!({"volume_type": {"is_public": true}})).expect("parse");
        assert_eq!(u.is_public, Some(true));
        assert_eq!(
            UpdateVolumeType::parse(&json!({"volume_type": {}})),
            Err(BadRequest("Specify volume type name, description, is_public or a combination thereof.".into()))
        );
        assert_eq!(
            UpdateVolumeType::parse(&json!({"volume_type": {"name": " "}})),
            Err(BadRequest("Volume type name can not be empty.".into()))
        );
    }

    /// Extra spec bodies: a `null` or non-object body is 400; an update
    /// holds exactly the URL's key (else Cinder's "Request body and URI mismatch").
    #[test]
    fn extra_spec_bodies() {
        assert_eq!(parse_extra_specs_create(&json!({"extra_specs": {"k": "v"}})).expect("ok").len(), 1);
        assert!(parse_extra_specs_create(&json!({"extra_specs": null})).is_err());
        assert!(parse_extra_specs_create(&json!({"extra_specs": ["invalid"]})).is_err());
        assert!(parse_extra_specs_create(&json!({"extra_specs": {"a b": "v"}})).is_err(), "no blanks in keys");
        assert_eq!(parse_extra_spec_update(&json!({"k": "v"}), "k"), Ok(("k".into(), Some("v".into()))));
        assert_eq!(
            parse_extra_spec_update(&json!({"k": "v"}), "None"),
            Err(BadRequest("Request body and URI mismatch".into()))
        );
        assert!(parse_extra_spec_update(&json!({"k": "v", "j": "w"}), "k").is_err());
        assert!(parse_extra_spec_update(&Value::Null, "k").is_err());
    }

    #[test]
    fn access_actions_and_views() {
        assert_eq!(
            VolumeTypeAction::parse(&json!({"addProjectAccess": {"project": "p"}})),
            Ok(VolumeTypeAction::AddProjectAccess("p".into()))
        );
        assert!(VolumeTypeAction::parse(&json!({"addProjectAccess": {}})).is_err());
        assert!(VolumeTypeAction::parse(&json!({"nope": {"project": "p"}})).is_err());
        let t = VolumeTypeRow { id: "i".into(), name: "n".into(), description: None, is_public: true };
        let specs =
            ExtraSpecs::from([("multiattach".into(), Some("<is> True".into())), ("secret".into(), Some("x".into()))]);
        let member = volume_type_view(&t, &specs, TypeViewer { admin: false, member: true });
        assert_eq!(member["extra_specs"], json!({"multiattach": "<is> True"}), "only user-visible keys");
        assert!(member.get("qos_specs_id").is_none());
        let admin = volume_type_view(&t, &specs, TypeViewer { admin: true, member: true });
        assert_eq!(admin["extra_specs"].as_object().map(Map::len), Some(2));
        assert_eq!(admin["qos_specs_id"], Value::Null);
    }
}
