//! Group types (3.11), generic volume groups (3.13) and user messages
//! (3.3): request bodies with Cinder's 400 messages and the views Cinder
//! renders at each microversion.

use super::VolumeRequestError::{self, BadRequest};
use super::{bool_value, cinder_ts, links};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stratus_db::{GroupTypeRow, VolumeGroupRow, VolumeMessageRow};

/// The messages API (`MESSAGES`).
pub const MV_MESSAGES: u32 = 3;
/// Group types (`GROUP_TYPE`).
pub const MV_GROUP_TYPES: u32 = 11;
/// Generic volume groups and `group_id` in volume views (`GROUP_VOLUME`).
pub const MV_GROUPS: u32 = 13;
/// Group from a source group, `source_group_id`/`group_snapshot_id` in views (`GROUP_SNAPSHOTS`).
pub const MV_GROUP_FROM_SRC: u32 = 14;
/// Group `reset_status` (`GROUP_VOLUME_RESET_STATUS`).
pub const MV_GROUP_RESET: u32 = 20;
/// `volumes` in the group view with `list_volume` (`GROUP_VOLUME_LIST`).
pub const MV_GROUP_VOLUME_LIST: u32 = 25;
/// `replication_status` in the group view (`GROUP_REPLICATION`).
pub const MV_GROUP_REPLICATION: u32 = 38;
/// `project_id` in the group view for admins (`GROUP_GROUPSNAPSHOT_PROJECT_ID`).
pub const MV_GROUP_PROJECT_ID: u32 = 58;

fn object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, VolumeRequestError> {
    match v.get(key) {
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type 'object'"
        ))),
        None => Err(BadRequest(format!("Missing required element '{key}' in request body."))),
    }
}

fn text(o: &Map<String, Value>, field: &str) -> Result<Option<String>, VolumeRequestError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(Value::String(s)) => {
            Err(BadRequest(format!("Invalid input for field/attribute {field}. Value: {s}. '{s}' is too long")))
        }
        Some(other) => Err(BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

fn only_keys(o: &Map<String, Value>, what: &str, keys: &[&str]) -> Result<(), VolumeRequestError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(BadRequest(format!(
            "Invalid input for field/attribute {what}. Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// A group-specs object: string keys (1–255 characters) to string values.
fn specs(field: &str, v: &Value) -> Result<BTreeMap<String, String>, VolumeRequestError> {
    let Value::Object(o) = v else {
        return Err(BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'object'"
        )));
    };
    let mut out = BTreeMap::new();
    for (k, val) in o {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {v}. Invalid key '{k}'"
            )));
        }
        match val {
            Value::String(s) if s.chars().count() <= 255 => out.insert(k.clone(), s.clone()),
            other => {
                return Err(BadRequest(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string'"
                )));
            }
        };
    }
    Ok(out)
}

/// `POST /group_types` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateGroupType {
    /// Name (required, 1–255 characters).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Public (default true).
    pub is_public: bool,
    /// Group specs.
    pub group_specs: BTreeMap<String, String>,
}

impl CreateGroupType {
    /// Parse a create body (Cinder's `group_type` schema).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = object(v, "group_type")?;
        only_keys(o, "group_type", &["name", "description", "is_public", "group_specs"])?;
        let name = match text(o, "name")? {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => {
                return Err(BadRequest("Invalid input for field/attribute name. 'name' is a required property".into()));
            }
        };
        let is_public = match o.get("is_public") {
            None | Some(Value::Null) => true,
            Some(b) => bool_value("is_public", b)?,
        };
        let group_specs = match o.get("group_specs") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(s) => specs("group_specs", s)?,
        };
        Ok(Self { name, description: text(o, "description")?, is_public, group_specs })
    }
}

/// `PUT /group_types/{id}` body: name, description, is_public (at least one).
pub fn parse_group_type_update(v: &Value) -> Result<stratus_db::GroupTypeChange, VolumeRequestError> {
    let o = object(v, "group_type")?;
    only_keys(o, "group_type", &["name", "description", "is_public"])?;
    let name = match text(o, "name")? {
        Some(n) if n.trim().is_empty() => {
            return Err(BadRequest("Invalid input received: Group type name can not be empty.".into()));
        }
        n => n.map(|n| n.trim().to_string()),
    };
    let description = if o.contains_key("description") { Some(text(o, "description")?) } else { None };
    let is_public = match o.get("is_public") {
        None | Some(Value::Null) => None,
        Some(b) => Some(bool_value("is_public", b)?),
    };
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(BadRequest("Specify group type name, description or a combination thereof.".into()));
    }
    Ok(stratus_db::GroupTypeChange { name, description, is_public })
}

/// `POST /group_types/{id}/group_specs` body: `{"group_specs": {...}}`.
pub fn parse_group_specs(v: &Value) -> Result<BTreeMap<String, String>, VolumeRequestError> {
    match v.get("group_specs") {
        Some(s) => specs("group_specs", s),
        None => Err(BadRequest("Missing required element 'group_specs' in request body.".into())),
    }
}

/// `PUT /group_types/{id}/group_specs/{key}` body: exactly the URL's key.
pub fn parse_group_spec_item(v: &Value, key: &str) -> Result<(String, String), VolumeRequestError> {
    let s = specs("body", v)?;
    if s.len() > 1 {
        return Err(BadRequest("Request body contains too many items.".into()));
    }
    match s.into_iter().next() {
        Some((k, val)) if k == key => Ok((k, val)),
        _ => Err(BadRequest("Request body and URI mismatch".into())),
    }
}

/// The group type view.
pub fn group_type_view(t: &GroupTypeRow, admin: bool) -> Value {
    let mut o = json!({"id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public});
    if admin {
        o["group_specs"] = json!(t.spec_map());
    }
    o
}

/// `POST /groups` body (`group_type` and `volume_types` required).
/// A `POST /groups` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateGroup {
    /// Group type, by id or name.
    pub group_type: String,
    /// Volume types, by id or name.
    pub volume_types: Vec<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
}

/// A `PUT /groups/{id}` request (`None`/empty: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateGroup {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Volume ids to add.
    pub add_volumes: Vec<String>,
    /// Volume ids to remove.
    pub remove_volumes: Vec<String>,
}

/// `POST /groups` body.
pub fn parse_group_create(v: &Value) -> Result<CreateGroup, VolumeRequestError> {
    let o = object(v, "group")?;
    only_keys(o, "group", &["group_type", "volume_types", "name", "description", "availability_zone"])?;
    let group_type = text(o, "group_type")?.ok_or_else(|| {
        BadRequest("Invalid input for field/attribute group. 'group_type' is a required property".into())
    })?;
    let volume_types = match o.get("volume_types") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|t| match t {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(BadRequest(format!(
                    "Invalid input for field/attribute volume_types. Value: {other}. {other} is not of type 'string'"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute volume_types. Value: {other}. {other} is not of type 'array' or is too short"
            )));
        }
        None => {
            return Err(BadRequest(
                "Invalid input for field/attribute group. 'volume_types' is a required property".into(),
            ));
        }
    };
    Ok(CreateGroup {
        group_type,
        volume_types,
        name: text(o, "name")?,
        description: text(o, "description")?,
        availability_zone: text(o, "availability_zone")?,
    })
}

/// `PUT /groups/{id}` body: `add_volumes`/`remove_volumes` are
/// comma-separated volume ids, as Cinder takes them.
pub fn parse_group_update(v: &Value) -> Result<UpdateGroup, VolumeRequestError> {
    let o = object(v, "group")?;
    only_keys(o, "group", &["name", "description", "add_volumes", "remove_volumes"])?;
    let ids = |f: &str| -> Result<Vec<String>, VolumeRequestError> {
        Ok(text(o, f)?
            .map(|s| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect())
            .unwrap_or_default())
    };
    Ok(UpdateGroup {
        name: text(o, "name")?,
        description: text(o, "description")?,
        add_volumes: ids("add_volumes")?,
        remove_volumes: ids("remove_volumes")?,
    })
}

/// `POST /groups/{id}/action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupAction {
    /// `delete` (`delete-volumes`: also the group's volumes).
    Delete {
        /// Delete the group's volumes with it.
        delete_volumes: bool,
    },
    /// `reset_status` (admins, 3.20).
    ResetStatus(String),
}

impl GroupAction {
    /// Parse an action body (exactly one action key).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
            return Err(BadRequest("The action body must be an object with exactly one action key.".into()));
        };
        match action.as_str() {
            "delete" => {
                let delete_volumes = match arg.get("delete-volumes") {
                    None | Some(Value::Null) => false,
                    Some(b) => bool_value("delete-volumes", b)?,
                };
                Ok(Self::Delete { delete_volumes })
            }
            "reset_status" => match arg.get("status") {
                Some(Value::String(s)) if !s.is_empty() => Ok(Self::ResetStatus(s.to_lowercase())),
                _ => Err(BadRequest("Must specify 'status'".into())),
            },
            other => Err(BadRequest(format!("There is no such action: {other}"))),
        }
    }
}

/// `POST /groups/action` `create-from-src` (3.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateFromSource {
    /// The source group.
    pub source_group_id: Option<String>,
    /// The source group snapshot.
    pub group_snapshot_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
}

impl CreateFromSource {
    /// Parse the body; exactly one source (Cinder's 400 otherwise).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = object(v, "create-from-src")?;
        only_keys(o, "create-from-src", &["source_group_id", "group_snapshot_id", "name", "description"])?;
        let c = Self {
            source_group_id: text(o, "source_group_id")?,
            group_snapshot_id: text(o, "group_snapshot_id")?,
            name: text(o, "name")?,
            description: text(o, "description")?,
        };
        if c.source_group_id.is_some() == c.group_snapshot_id.is_some() {
            return Err(BadRequest(
                "Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be provided to create group, but not both.".into(),
            ));
        }
        Ok(c)
    }
}

/// The short group view (lists, create answers).
pub fn group_summary(g: &VolumeGroupRow) -> Value {
    json!({"id": g.id, "name": g.name.clone().unwrap_or_default()})
}

/// The full group view at `minor`; `volumes` (3.25, when `list_volume`
/// was asked) are the group's volume ids; admins see `project_id` (3.58).
pub fn group_detail(g: &VolumeGroupRow, minor: u32, volumes: Option<&[String]>, admin: bool) -> Value {
    let mut o = json!({
        "id": g.id,
        "status": g.status,
        "availability_zone": g.availability_zone,
        "created_at": cinder_ts(g.created_at),
        "name": g.name.clone().unwrap_or_default(),
        "description": g.description,
        "group_type": g.group_type_id,
        "volume_types": g.volume_types(),
    });
    if minor >= MV_GROUP_FROM_SRC {
        o["group_snapshot_id"] = json!(g.group_snapshot_id);
        o["source_group_id"] = json!(g.source_group_id);
    }
    if minor >= MV_GROUP_VOLUME_LIST
        && let Some(v) = volumes
    {
        o["volumes"] = json!(v);
    }
    if minor >= MV_GROUP_REPLICATION {
        o["replication_status"] = json!("disabled");
    }
    if minor >= MV_GROUP_PROJECT_ID && admin {
        o["project_id"] = json!(g.project_id);
    }
    o
}

/// The message view (`user_message` rendered from the ids by the caller).
pub fn message_view(public_url: &str, m: &VolumeMessageRow, user_message: &str) -> Value {
    let mut o = json!({
        "id": m.id,
        "event_id": m.event_id,
        "user_message": user_message,
        "message_level": m.message_level,
        "created_at": cinder_ts(m.created_at),
        "guaranteed_until": cinder_ts(m.expires_at),
        "request_id": m.request_id,
        "links": links(public_url, &m.project_id, "messages", &m.id),
    });
    if let Some(t) = &m.resource_type {
        o["resource_type"] = json!(t);
    }
    if let Some(r) = &m.resource_uuid {
        o["resource_uuid"] = json!(r);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> VolumeGroupRow {
        VolumeGroupRow {
            id: "g".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: None,
            description: None,
            status: "available".into(),
            group_type_id: "gt".into(),
            volume_type_ids: r#"["t1"]"#.into(),
            availability_zone: "nova".into(),
            source_group_id: None,
            group_snapshot_id: None,
            created_at: stratus_db::SET_ON_INSERT,
        }
    }

    // Cinder's group view: source_group_id/group_snapshot_id from 3.14,
    // volumes from 3.25 with list_volume, replication_status from 3.38,
    // project_id from 3.58 for admins only.
    #[test]
    fn group_view_keys_follow_the_microversion() {
        let g = group();
        let v = group_detail(&g, 13, None, true);
        assert!(v.get("source_group_id").is_none() && v.get("replication_status").is_none());
        assert_eq!(v["volume_types"], json!(["t1"]));
        assert_eq!(v["name"], json!(""));
        let v = group_detail(&g, 14, Some(&["v1".to_string()]), false);
        assert!(v.get("source_group_id").is_some() && v.get("volumes").is_none());
        let v = group_detail(&g, 70, Some(&["v1".to_string()]), false);
        assert_eq!(v["volumes"], json!(["v1"]));
        assert!(v.get("project_id").is_none());
        assert_eq!(group_detail(&g, 58, None, true)["project_id"], json!("p"));
    }

    // Cinder's group update takes comma-separated volume ids; its action
    // body names exactly one action.
    #[test]
    fn group_update_and_action_bodies() {
        let u = parse_group_update(&json!({"group": {"add_volumes": "a, b,", "name": "n"}})).expect("update");
        assert_eq!(u.add_volumes, vec!["a".to_string(), "b".to_string()]);
        assert!(parse_group_update(&json!({"group": {"bogus": 1}})).is_err());
        assert_eq!(
            GroupAction::parse(&json!({"delete": {"delete-volumes": true}})).expect("delete"),
            GroupAction::Delete { delete_volumes: true }
        );
        assert_eq!(
            GroupAction::parse(&json!({"reset_status": {"status": "error"}})).expect("reset"),
            GroupAction::ResetStatus("error".into())
        );
        assert!(GroupAction::parse(&json!({"enable_replication": {}})).is_err());
        assert!(CreateFromSource::parse(&json!({"create-from-src": {}})).is_err());
    }
}
