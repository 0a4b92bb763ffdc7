//! Per-project default volume types (`/default-types`, Block Storage
//! 3.62): the set body with Cinder's schema and the views Cinder renders.

use super::VolumeRequestError::{self, BadRequest};
use super::body_object;
use serde_json::{Value, json};
use stratus_db::ProjectDefaultTypeRow;

/// `/default-types` (`DEFAULT_TYPE_OVERRIDES`).
pub const MV_DEFAULT_TYPES: u32 = 62;

/// `PUT /default-types/{project_id}` body: `{"default_type":
/// {"volume_type": <name or id>}}`, Cinder's schema (a name of 1 to 255
/// characters without surrounding blanks, no other key).
pub fn parse_set(v: &Value) -> Result<String, VolumeRequestError> {
    let o = body_object(v, "default_type")?;
    if let Some(k) = o.keys().find(|k| k.as_str() != "volume_type") {
        return Err(BadRequest(format!(
            "Invalid input for field/attribute default_type. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    match o.get("volume_type") {
        Some(Value::String(s)) if s.is_empty() || s.chars().count() > 255 || s.trim() != s => Err(BadRequest(format!(
            "Invalid input for field/attribute volume_type. Value: {s}. The name must be 1 to 255 characters without leading or trailing whitespace."
        ))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(BadRequest(format!(
            "Invalid input for field/attribute volume_type. Value: {other}. {other} is not of type 'string'"
        ))),
        None => Err(BadRequest(
            "Invalid input for field/attribute default_type. 'volume_type' is a required property".into(),
        )),
    }
}

/// One default type as Cinder shows it.
pub fn default_type_view(d: &ProjectDefaultTypeRow) -> Value {
    json!({"project_id": d.project_id, "volume_type_id": d.volume_type_id})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cinder's `default_types.create_or_update` schema.
    #[test]
    fn set_body_follows_cinders_schema() {
        assert_eq!(parse_set(&json!({"default_type": {"volume_type": "fast"}})), Ok("fast".to_string()));
        for bad in [
            json!({"default_type": {}}),
            json!({"default_type": {"volume_type": ""}}),
            json!({"default_type": {"volume_type": " fast"}}),
            json!({"default_type": {"volume_type": 3}}),
            json!({"default_type": {"volume_type": "fast", "x": 1}}),
            json!({"default_type": "fast"}),
            json!({}),
        ] {
            assert!(parse_set(&bad).is_err(), "{bad}");
        }
    }
}
