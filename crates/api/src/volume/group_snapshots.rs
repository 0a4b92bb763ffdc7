//! Group snapshots (Cinder's `/group_snapshots`, 3.14; `reset_status` at
//! 3.19): request bodies with Cinder's 400 messages and the views Tempest's
//! `group_snapshots` response schemas pin down.

use super::VolumeRequestError::{self, BadRequest};
use super::cinder_ts;
use serde_json::{Map, Value, json};
use stratus_db::GroupSnapshotRow;

/// Group snapshots (`GROUP_SNAPSHOTS`).
pub const MV_GROUP_SNAPSHOTS: u32 = 14;
/// Group snapshot `reset_status` (`GROUP_SNAPSHOT_RESET_STATUS`).
pub const MV_GROUP_SNAPSHOT_RESET: u32 = 19;
/// `project_id` in the group snapshot view for admins (`GROUP_GROUPSNAPSHOT_PROJECT_ID`).
pub const MV_GROUP_SNAPSHOT_PROJECT_ID: u32 = 58;

/// A `POST /group_snapshots` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateGroupSnapshot {
    /// The group to snapshot (required).
    pub group_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
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

impl CreateGroupSnapshot {
    /// Parse Cinder's `group_snapshot` create schema (`group_id` required,
    /// no other keys than `name` and `description`).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let o = match v.get("group_snapshot") {
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(BadRequest(format!(
                    "Invalid input for field/attribute group_snapshot. Value: {other}. {other} is not of type 'object'"
                )));
            }
            None => return Err(BadRequest("Missing required element 'group_snapshot' in request body.".into())),
        };
        if let Some(k) = o.keys().find(|k| !["group_id", "name", "description"].contains(&k.as_str())) {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute group_snapshot. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let group_id = match text(o, "group_id")? {
            Some(g) if !g.is_empty() => g,
            _ => {
                return Err(BadRequest(
                    "Invalid input for field/attribute group_snapshot. 'group_id' is a required property".into(),
                ));
            }
        };
        Ok(Self { group_id, name: text(o, "name")?, description: text(o, "description")? })
    }
}

/// `POST /group_snapshots/{id}/action`: Cinder knows only `reset_status`
/// (`{"reset_status": {"status": ...}}`); answers the status asked for.
pub fn parse_group_snapshot_action(v: &Value) -> Result<String, VolumeRequestError> {
    let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(BadRequest("The action body must be an object with exactly one action key.".into()));
    };
    if action != "reset_status" {
        return Err(BadRequest(format!("There is no such action: {action}")));
    }
    match arg.get("status") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.to_lowercase()),
        _ => Err(BadRequest("Must specify 'status'".into())),
    }
}

/// The short view (lists without detail).
pub fn group_snapshot_summary(g: &GroupSnapshotRow) -> Value {
    json!({"id": g.id, "name": g.name.clone().unwrap_or_default()})
}

/// The create answer: the short view and the group type.
pub fn group_snapshot_created(g: &GroupSnapshotRow) -> Value {
    json!({"id": g.id, "name": g.name.clone().unwrap_or_default(), "group_type_id": g.group_type_id})
}

/// The full view at `minor` (show, `/group_snapshots/detail`); admins see
/// `project_id` from 3.58.
pub fn group_snapshot_detail(g: &GroupSnapshotRow, minor: u32, admin: bool) -> Value {
    let mut o = json!({
        "id": g.id,
        "group_id": g.group_id,
        "group_type_id": g.group_type_id,
        "status": g.status,
        "created_at": cinder_ts(g.created_at),
        "name": g.name.clone().unwrap_or_default(),
        "description": g.description,
    });
    if minor >= MV_GROUP_SNAPSHOT_PROJECT_ID && admin {
        o["project_id"] = json!(g.project_id);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gs() -> GroupSnapshotRow {
        GroupSnapshotRow {
            id: "gs".into(),
            group_id: "g".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: None,
            description: None,
            status: "available".into(),
            group_type_id: "gt".into(),
            created_at: stratus_db::SET_ON_INSERT,
        }
    }

    // Tempest's group_snapshots schemas: the list is {id, name}, create adds
    // group_type_id, show has exactly seven keys (name a string); Cinder
    // adds project_id for admins from 3.58.
    #[test]
    fn views_follow_tempest_schemas() {
        let g = gs();
        assert_eq!(group_snapshot_summary(&g), json!({"id": "gs", "name": ""}));
        assert_eq!(group_snapshot_created(&g)["group_type_id"], json!("gt"));
        let d = group_snapshot_detail(&g, 14, true);
        assert_eq!(d.as_object().map(|o| o.len()), Some(7));
        assert!(group_snapshot_detail(&g, 58, false).get("project_id").is_none());
        assert_eq!(group_snapshot_detail(&g, 58, true)["project_id"], json!("p"));
    }

    // Cinder's create schema: group_id required, no unknown keys; the
    // action body names reset_status with a status.
    #[test]
    fn bodies() {
        let c = CreateGroupSnapshot::parse(&json!({"group_snapshot": {"group_id": "g", "name": "n"}})).expect("ok");
        assert_eq!(c.group_id, "g");
        assert!(CreateGroupSnapshot::parse(&json!({"group_snapshot": {"name": "n"}})).is_err());
        assert!(CreateGroupSnapshot::parse(&json!({"group_snapshot": {"group_id": "g", "x": 1}})).is_err());
        assert!(CreateGroupSnapshot::parse(&json!({"group_snapshot": []})).is_err());
        assert_eq!(parse_group_snapshot_action(&json!({"reset_status": {"status": "Error"}})).expect("ok"), "error");
        assert!(parse_group_snapshot_action(&json!({"reset_status": {}})).is_err());
        assert!(parse_group_snapshot_action(&json!({"delete": {}})).is_err());
    }
}
