//! Volume snapshots (`/snapshots`): request bodies with Cinder's 400
//! messages, and the views Cinder renders at each microversion (Tempest's
//! `api_schema/response/volume/snapshots.py` for the base version).

use super::VolumeRequestError::{self, BadRequest};
use super::{body_object, bool_value, cinder_ts, metadata_field, opt_str};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stratus_db::SnapshotRow;

/// `group_snapshot_id` in views (`GROUP_SNAPSHOTS`).
pub const MV_SNAPSHOT_GROUP: u32 = 14;
/// `user_id` in views (`SNAPSHOT_LIST_USER_ID`).
pub const MV_SNAPSHOT_USER_ID: u32 = 41;
/// `consumes_quota` in views (`SNAPSHOT_VOLUME_QUOTA`... Cinder's 3.65).
pub const MV_CONSUMES_QUOTA: u32 = 65;
/// Snapshots of in-use volumes without `force` (`SNAPSHOT_IN_USE`).
pub const MV_SNAPSHOT_IN_USE: u32 = 66;

/// `POST /snapshots` body (`{"snapshot": {...}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateSnapshot {
    /// The volume to copy.
    pub volume_id: String,
    /// `name` (or legacy `display_name`).
    pub name: Option<String>,
    /// `description` (or legacy `display_description`).
    pub description: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// `force` (implied from 3.66, where `false` is refused).
    pub force: bool,
}

impl CreateSnapshot {
    /// Parse a create body at minor version `minor`.
    pub fn parse(v: &Value, minor: u32) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "snapshot")?;
        // Cinder looks a missing (or null) volume up and answers 404.
        let volume_id = opt_str(o, &["volume_id"])?
            .ok_or_else(|| super::VolumeRequestError::NotFound("Volume None could not be found.".into()))?;
        let force = match o.get("force") {
            None | Some(Value::Null) => None,
            Some(f) => Some(bool_value("force", f).map_err(|_| BadRequest(format!("Invalid value '{f}' for force.")))?),
        };
        let force = if minor >= MV_SNAPSHOT_IN_USE {
            if force == Some(false) {
                return Err(BadRequest(
                    "Invalid input received: Since microversion 3.66, creating a snapshot of an in-use volume does not need 'force'; 'force' may not be false."
                        .into(),
                ));
            }
            true
        } else {
            force.unwrap_or(false)
        };
        Ok(Self {
            volume_id,
            name: opt_str(o, &["name", "display_name"])?,
            description: opt_str(o, &["description", "display_description"])?,
            metadata: metadata_field(o)?.unwrap_or_default(),
            force,
        })
    }
}

/// `PUT /snapshots/{id}` body: (name, description), absent ones left alone.
pub fn parse_update(v: &Value) -> Result<(Option<String>, Option<String>), VolumeRequestError> {
    let o = body_object(v, "snapshot")?;
    Ok((opt_str(o, &["name", "display_name"])?, opt_str(o, &["description", "display_description"])?))
}

/// An action on a snapshot (`POST /snapshots/{id}/action`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotAction {
    /// `os-reset_status` (admins).
    ResetStatus(String),
    /// `os-force_delete` (admins).
    ForceDelete,
    /// `os-update_snapshot_status`: status and optional progress.
    UpdateStatus(String, Option<String>),
    /// `os-update_progress` (admins).
    UpdateProgress(String),
}

impl SnapshotAction {
    /// Parse an action body (one key).
    pub fn parse(v: &Value) -> Result<Self, VolumeRequestError> {
        let Some((name, args)) = v.as_object().and_then(|o| o.iter().next()) else {
            return Err(BadRequest("Malformed request body".into()));
        };
        let empty = Map::new();
        let args = args.as_object().unwrap_or(&empty);
        let status =
            || opt_str(args, &["status"])?.ok_or_else(|| BadRequest("Must specify 'status' for update.".into()));
        match name.as_str() {
            "os-reset_status" => Ok(Self::ResetStatus(status()?)),
            "os-force_delete" => Ok(Self::ForceDelete),
            "os-update_snapshot_status" => Ok(Self::UpdateStatus(status()?, opt_str(args, &["progress"])?)),
            "os-update_progress" => match v.get(name) {
                Some(Value::String(p)) => Ok(Self::UpdateProgress(p.clone())),
                Some(Value::Number(n)) => Ok(Self::UpdateProgress(n.to_string())),
                _ => opt_str(args, &["progress"])?
                    .map(Self::UpdateProgress)
                    .ok_or_else(|| BadRequest("Must specify 'progress' for update.".into())),
            },
            other => Err(BadRequest(format!("There is no such action: {other}"))),
        }
    }
}

/// The view of create, update and the short list; `detail` adds the
/// extended attributes (show and `/snapshots/detail`).
pub fn snapshot_view(s: &SnapshotRow, minor: u32, detail: bool) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(s.id));
    o.insert("created_at".into(), cinder_ts(s.created_at));
    o.insert("updated_at".into(), cinder_ts(s.updated_at));
    o.insert("name".into(), json!(s.name));
    o.insert("description".into(), json!(s.description));
    o.insert("volume_id".into(), json!(s.volume_id.to_string()));
    o.insert("status".into(), json!(s.status));
    o.insert("size".into(), json!(s.size_gb));
    let metadata: BTreeMap<String, String> = serde_json::from_str(&s.metadata).unwrap_or_default();
    o.insert("metadata".into(), json!(metadata));
    if minor >= MV_SNAPSHOT_GROUP {
        o.insert("group_snapshot_id".into(), json!(s.group_snapshot_id));
    }
    if minor >= MV_SNAPSHOT_USER_ID {
        o.insert("user_id".into(), json!(s.user_id));
    }
    if minor >= MV_CONSUMES_QUOTA {
        o.insert("consumes_quota".into(), json!(true));
    }
    if detail {
        o.insert("os-extended-snapshot-attributes:progress".into(), json!(s.progress));
        o.insert("os-extended-snapshot-attributes:project_id".into(), json!(s.project_id));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cinder 3.66: `force` is implied, and `force=false` is refused.
    #[test]
    fn force_is_read_as_cinder_does() {
        let b = |f: Value| json!({"snapshot": {"volume_id": "v", "force": f}});
        assert!(!CreateSnapshot::parse(&json!({"snapshot": {"volume_id": "v"}}), 0).expect("ok").force);
        assert!(CreateSnapshot::parse(&b(json!("True")), 0).expect("ok").force);
        assert!(CreateSnapshot::parse(&b(json!("maybe")), 0).is_err());
        assert!(CreateSnapshot::parse(&json!({"snapshot": {"volume_id": "v"}}), 66).expect("ok").force);
        assert!(CreateSnapshot::parse(&b(json!(false)), 66).is_err());
        assert!(matches!(
            CreateSnapshot::parse(&json!({"snapshot": {"volume_id": null}}), 0),
            Err(VolumeRequestError::NotFound(_))
        ));
    }

    /// Tempest's snapshot actions: reset, force delete, status update.
    #[test]
    fn actions() {
        assert_eq!(
            SnapshotAction::parse(&json!({"os-reset_status": {"status": "error"}})),
            Ok(SnapshotAction::ResetStatus("error".into()))
        );
        assert_eq!(SnapshotAction::parse(&json!({"os-force_delete": {}})), Ok(SnapshotAction::ForceDelete));
        assert_eq!(
            SnapshotAction::parse(&json!({"os-update_snapshot_status": {"status": "error", "progress": "80%"}})),
            Ok(SnapshotAction::UpdateStatus("error".into(), Some("80%".into())))
        );
        assert!(SnapshotAction::parse(&json!({"os-nope": {}})).is_err());
    }
}
