//! Volume transfers (`/os-volume-transfer`, and from 3.55
//! `/volume-transfers`): request bodies with Cinder's 400 messages, and the
//! views Cinder renders at each microversion.

use super::VolumeRequestError::{self, BadRequest};
use super::{body_object, cinder_ts, links};
use serde_json::{Map, Value, json};
use stratus_db::VolumeTransferRow;

/// `/volume-transfers` and the `no_snapshots` flag (`TRANSFER_WITH_SNAPSHOTS`).
pub const MV_TRANSFERS: u32 = 55;
/// `source_project_id`, `destination_project_id`, `accepted` in views
/// (`TRANSFER_WITH_HISTORY`).
pub const MV_TRANSFER_HISTORY: u32 = 57;

/// `POST /os-volume-transfer` body (`{"transfer": {...}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTransfer {
    /// The volume to offer.
    pub volume_id: String,
    /// Display name.
    pub name: Option<String>,
    /// 3.55: leave the volume's snapshots behind.
    pub no_snapshots: bool,
}

impl CreateTransfer {
    /// Parse a create body; `no_snapshots` is read from 3.55 on (`minor`).
    pub fn parse(v: &Value, minor: u32) -> Result<Self, VolumeRequestError> {
        let o = body_object(v, "transfer")?;
        let volume_id = match o.get("volume_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(other) => {
                return Err(BadRequest(format!(
                    "Invalid input for field/attribute volume_id. Value: {other}. {other} is not a 'uuid'"
                )));
            }
            None => {
                return Err(BadRequest(
                    "Invalid input for field/attribute transfer. 'volume_id' is a required property".into(),
                ));
            }
        };
        let name = match o.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => {
                return Err(BadRequest(format!(
                    "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string', 'null'"
                )));
            }
        };
        let no_snapshots = match o.get("no_snapshots") {
            Some(v) if minor >= MV_TRANSFERS => super::bool_value("no_snapshots", v)?,
            _ => false,
        };
        Ok(Self { volume_id, name, no_snapshots })
    }
}

/// The `auth_key` of an accept body (`{"accept": {"auth_key": "..."}}`).
pub fn parse_accept(v: &Value) -> Result<String, VolumeRequestError> {
    let o = body_object(v, "accept")?;
    match o.get("auth_key") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(BadRequest(format!(
            "Invalid input for field/attribute auth_key. Value: {other}. {other} is not a valid auth key"
        ))),
        None => Err(BadRequest("Invalid input for field/attribute accept. 'auth_key' is a required property".into())),
    }
}

/// `self`/`bookmark` links of a transfer (under the path it was asked by).
fn transfer_links(public_url: &str, t: &VolumeTransferRow, path: &str) -> Value {
    links(public_url, &t.source_project_id, path, &t.id)
}

/// The short view (`GET .../os-volume-transfer`, and the accept answer).
pub fn transfer_summary(public_url: &str, t: &VolumeTransferRow, path: &str) -> Value {
    json!({"id": t.id, "name": t.name, "volume_id": t.volume_id, "links": transfer_links(public_url, t, path)})
}

/// The full view (show, detail list, and with `auth_key` the create answer).
pub fn transfer_detail(public_url: &str, t: &VolumeTransferRow, path: &str, minor: u32) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(t.id));
    o.insert("created_at".into(), cinder_ts(t.created_at));
    o.insert("name".into(), json!(t.name));
    o.insert("volume_id".into(), json!(t.volume_id));
    o.insert("links".into(), transfer_links(public_url, t, path));
    if minor >= MV_TRANSFERS {
        o.insert("no_snapshots".into(), json!(t.no_snapshots));
    }
    if minor >= MV_TRANSFER_HISTORY {
        o.insert("destination_project_id".into(), json!(t.destination_project_id));
        o.insert("source_project_id".into(), json!(t.source_project_id));
        o.insert("accepted".into(), json!(t.accepted));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_needs_a_volume_id_and_reads_no_snapshots_from_3_55() {
        assert!(CreateTransfer::parse(&json!({"transfer": {}}), 0).is_err());
        assert!(CreateTransfer::parse(&json!({"transfer": {"volume_id": 1}}), 0).is_err());
        let b = json!({"transfer": {"volume_id": "v", "name": " n ", "no_snapshots": true}});
        assert_eq!(
            CreateTransfer::parse(&b, 0),
            Ok(CreateTransfer { volume_id: "v".into(), name: Some("n".into()), no_snapshots: false })
        );
        assert!(CreateTransfer::parse(&b, 55).expect("parsed").no_snapshots);
        assert_eq!(parse_accept(&json!({"accept": {"auth_key": "k"}})), Ok("k".into()));
        assert!(parse_accept(&json!({"accept": {}})).is_err());
    }
}
