//! QoS specs (`/qos-specs`) and encryption types (`/types/{id}/encryption`):
//! request bodies with Cinder's 400 messages, and Cinder's views.

use super::VolumeRequestError::{self, BadRequest};
use super::{body_object, cinder_ts};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stratus_db::{EncryptionRow, QosSpecRow};

/// `POST /qos-specs` body: `name`, optional `consumer`, every other key a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateQos {
    /// Unique name.
    pub name: String,
    /// Consumer (validated by the service).
    pub consumer: Option<String>,
    /// The specs.
    pub specs: BTreeMap<String, String>,
}

fn string_value(field: &str, v: &Value) -> Result<String, VolumeRequestError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// Parse a create body.
pub fn parse_qos_create(v: &Value) -> Result<CreateQos, VolumeRequestError> {
    let o = body_object(v, "qos_specs")?;
    let name = match o.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string'"
            )));
        }
        None => return Err(BadRequest("Please specify a name for QoS specs.".into())),
    };
    let consumer = match o.get("consumer") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string_value("consumer", v)?),
    };
    let mut specs = BTreeMap::new();
    for (k, v) in o {
        if k != "name" && k != "consumer" {
            specs.insert(k.clone(), string_value(k, v)?);
        }
    }
    Ok(CreateQos { name, consumer, specs })
}

/// Parse `PUT /qos-specs/{id}`: `{"qos_specs": {key: value, ...}}`, at least one.
pub fn parse_qos_set(v: &Value) -> Result<BTreeMap<String, String>, VolumeRequestError> {
    let o = body_object(v, "qos_specs")?;
    if o.is_empty() {
        return Err(BadRequest("Invalid input received: qos_specs must have at least one key.".into()));
    }
    o.iter().map(|(k, v)| Ok((k.clone(), string_value(k, v)?))).collect()
}

/// Parse `PUT /qos-specs/{id}/delete_keys`: `{"keys": [...]}`.
pub fn parse_qos_keys(v: &Value) -> Result<Vec<String>, VolumeRequestError> {
    let Some(keys) = v.get("keys").and_then(Value::as_array) else {
        return Err(BadRequest("Missing required element 'keys' in request body.".into()));
    };
    keys.iter()
        .map(|k| {
            k.as_str().map(str::to_string).ok_or_else(|| {
                BadRequest(format!("Invalid input for field/attribute keys. Value: {k}. {k} is not of type 'string'"))
            })
        })
        .collect()
}

/// A QoS spec as Cinder shows it.
pub fn qos_view(q: &QosSpecRow) -> Value {
    json!({"id": q.id, "name": q.name, "consumer": q.consumer, "specs": q.spec_map()})
}

/// `self`/`bookmark` links of a QoS spec.
pub fn qos_links(public_url: &str, project_id: &str, id: &str) -> Value {
    super::links(public_url, project_id, "qos-specs", id)
}

/// A QoS spec's associations: each a volume type.
pub fn qos_associations_view(types: &[(String, String)]) -> Value {
    Value::Array(
        types.iter().map(|(id, name)| json!({"association_type": "volume_type", "id": id, "name": name})).collect(),
    )
}

/// An encryption body's fields (`{"encryption": {...}}`); the outer
/// `Option`s say whether each field was given.
pub type EncryptionFields = (Option<String>, Option<Option<String>>, Option<Option<i64>>, Option<String>);

/// Parse an encryption create or update body (unknown keys are 400, as
/// Cinder's schema says).
pub fn parse_encryption(v: &Value) -> Result<EncryptionFields, VolumeRequestError> {
    let o = body_object(v, "encryption")?;
    if let Some(k) = o.keys().find(|k| !["provider", "cipher", "key_size", "control_location"].contains(&k.as_str())) {
        return Err(BadRequest(format!(
            "Invalid input for field/attribute encryption. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let provider = match o.get("provider") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => Some(s.clone()),
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute provider. Value: {other}. {other} is not a valid provider"
            )));
        }
    };
    let cipher = match o.get("cipher") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Some(Some(s.clone())),
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute cipher. Value: {other}. {other} is not of type 'string', 'null'"
            )));
        }
    };
    let key_size = match o.get("key_size") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Number(n)) if n.as_i64().is_some_and(|k| k >= 0) => Some(n.as_i64()),
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute key_size. Value: {other}. {other} is not a non-negative integer"
            )));
        }
    };
    let control_location = match o.get("control_location") {
        None => None,
        Some(Value::String(s)) if s == "front-end" || s == "back-end" => Some(s.clone()),
        Some(other) => {
            return Err(BadRequest(format!(
                "Invalid input for field/attribute control_location. Value: {other}. {other} is not one of ['front-end', 'back-end']"
            )));
        }
    };
    Ok((provider, cipher, key_size, control_location))
}

/// The encryption spec in the create answer.
pub fn encryption_created_view(e: &EncryptionRow) -> Value {
    json!({
        "volume_type_id": e.volume_type_id,
        "encryption_id": e.encryption_id,
        "provider": e.provider,
        "cipher": e.cipher,
        "key_size": e.key_size,
        "control_location": e.control_location,
    })
}

/// `GET /types/{id}/encryption`: the spec with its timestamps, or `{}`.
pub fn encryption_show_view(e: Option<&EncryptionRow>) -> Value {
    let Some(e) = e else { return Value::Object(Map::new()) };
    let mut v = encryption_created_view(e);
    if let Some(o) = v.as_object_mut() {
        o.insert("deleted".into(), json!(false));
        o.insert("created_at".into(), cinder_ts(e.created_at));
        o.insert("updated_at".into(), cinder_ts(e.updated_at));
        o.insert("deleted_at".into(), Value::Null);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_and_encryption_bodies() {
        let c = parse_qos_create(&json!({"qos_specs": {"name": "q", "consumer": "both", "read_iops_sec": "2000"}}))
            .expect("create");
        assert_eq!(c.consumer.as_deref(), Some("both"));
        assert_eq!(c.specs.get("read_iops_sec").map(String::as_str), Some("2000"));
        assert!(parse_qos_create(&json!({"qos_specs": {}})).is_err());
        assert_eq!(parse_qos_keys(&json!({"keys": ["a"]})), Ok(vec!["a".to_string()]));
        assert!(parse_qos_keys(&json!({"keys": [1]})).is_err());
        let e = parse_encryption(&json!({"encryption": {"provider": "luks", "key_size": 256, "cipher": null}}))
            .expect("encryption");
        assert_eq!(e, (Some("luks".into()), Some(None), Some(Some(256)), None));
        assert!(parse_encryption(&json!({"encryption": {"control_location": "middle"}})).is_err());
        assert!(parse_encryption(&json!({"encryption": {"x": 1}})).is_err());
    }
}
