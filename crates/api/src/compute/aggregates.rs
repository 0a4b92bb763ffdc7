//! Host aggregate bodies (`/os-aggregates`), checked the way Nova's schemas
//! check them from 2.1, with Nova's messages. Whether the aggregate, the
//! host or the zone allows the change is the compute service's to check.

use super::RequestError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn bad(m: String) -> RequestError {
    RequestError::BadRequest(m)
}

/// A JSON value as Nova's messages show it (strings unquoted).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The one object under `key` of a body that may hold nothing else.
fn wrapped<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    if let Some(extra) = body.keys().find(|k| *k != key) {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    match body.get(key) {
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute {key}. Value: {}. {other} is not of type 'object'",
            shown(other)
        ))),
        None => Err(bad(format!("'{key}' is a required property"))),
    }
}

fn only(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), RequestError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("Additional properties are not allowed ('{k}' was unexpected)"))),
        None => Ok(()),
    }
}

/// A string of 1 to 255 characters.
fn string_1_255<'a>(field: &str, v: &'a Value) -> Result<&'a str, RequestError> {
    let invalid = |why: String| bad(format!("Invalid input for field/attribute {field}. Value: {}. {why}", shown(v)));
    let Value::String(s) = v else {
        return Err(invalid(format!("{v} is not of type 'string'")));
    };
    let n = s.chars().count();
    if n == 0 {
        return Err(invalid("'' is too short".into()));
    }
    if n > 255 {
        return Err(invalid(format!("'{s}' is too long")));
    }
    Ok(s)
}

/// Nova's `name` format: printable, no blank at either end.
fn strict_name(v: &Value) -> Result<String, RequestError> {
    let s = string_1_255("name", v)?;
    if s.trim() != s || s.chars().any(char::is_control) {
        return Err(bad("An invalid 'name' value was provided. The name must be: printable characters. \
                        Can not start or end with whitespace."
            .into()));
    }
    Ok(s.to_string())
}

/// Nova's `name_with_leading_trailing_spaces` format (printable, at least
/// one non-blank), then trimmed as Nova's `normalize_name` does.
fn loose_name(v: &Value) -> Result<String, RequestError> {
    let s = string_1_255("name", v)?;
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        return Err(bad("An invalid 'name' value was provided. The name must be: printable characters with at \
                        least one non space character"
            .into()));
    }
    Ok(s.trim().to_string())
}

/// Nova's availability zone: null, or a name as [`strict_name`] without `:`.
fn zone(v: &Value) -> Result<Option<String>, RequestError> {
    if v.is_null() {
        return Ok(None);
    }
    let s = string_1_255("availability_zone", v)?;
    if s.trim() != s || s.contains(':') || s.chars().any(char::is_control) {
        // Nova's text, its missing blank included.
        return Err(bad("An invalid 'name' value was provided. The name must be: printable characters except :.\
                        Can not start or end with whitespace."
            .into()));
    }
    Ok(Some(s.to_string()))
}

/// A checked `POST /os-aggregates` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateCreate {
    /// Name.
    pub name: String,
    /// Availability zone, if the aggregate is to be one.
    pub availability_zone: Option<String>,
}

/// Parse `{"aggregate": {"name", "availability_zone"?}}` (Nova's 2.1 schema).
pub fn parse_aggregate_create(v: &Value) -> Result<AggregateCreate, RequestError> {
    let a = wrapped(v, "aggregate")?;
    only(a, &["name", "availability_zone"])?;
    let name = strict_name(a.get("name").ok_or_else(|| bad("'name' is a required property".into()))?)?;
    let availability_zone = a.get("availability_zone").map(zone).transpose()?.flatten();
    Ok(AggregateCreate { name, availability_zone })
}

/// A checked `PUT /os-aggregates/{id}` body: a new name, a new zone, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateUpdate {
    /// New name (trimmed).
    pub name: Option<String>,
    /// New zone: `Some(None)` is an explicit null (which Nova refuses later).
    pub availability_zone: Option<Option<String>>,
}

/// Parse `{"aggregate": {"name"?, "availability_zone"?}}` with at least one key.
pub fn parse_aggregate_update(v: &Value) -> Result<AggregateUpdate, RequestError> {
    let a = wrapped(v, "aggregate")?;
    only(a, &["name", "availability_zone"])?;
    if a.is_empty() {
        return Err(bad(format!(
            "Invalid input for field/attribute aggregate. Value: {}. {} is not valid under any of the given schemas",
            Value::Object(a.clone()),
            Value::Object(a.clone())
        )));
    }
    Ok(AggregateUpdate {
        name: a.get("name").map(loose_name).transpose()?,
        availability_zone: a.get("availability_zone").map(zone).transpose()?,
    })
}

/// One `POST /os-aggregates/{id}/action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AggregateAction {
    /// `add_host`.
    AddHost(String),
    /// `remove_host`.
    RemoveHost(String),
    /// `set_metadata`: keys to set (`Some`) or delete (`None`).
    SetMetadata(BTreeMap<String, Option<String>>),
}

/// Nova's `fqdn` host name: 1 to 255 of letters, digits, `-`, `.`, `_`.
fn host_arg(action: &str, arg: &Value) -> Result<String, RequestError> {
    let Value::Object(o) = arg else {
        return Err(bad(format!(
            "Invalid input for field/attribute {action}. Value: {}. {arg} is not of type 'object'",
            shown(arg)
        )));
    };
    only(o, &["host"])?;
    let v = o.get("host").ok_or_else(|| bad("'host' is a required property".into()))?;
    let host = string_1_255("host", v)?;
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(bad(format!(
            "Invalid input for field/attribute host. Value: {host}. '{host}' does not match '^[a-zA-Z0-9-._]*$'"
        )));
    }
    Ok(host.to_string())
}

/// Nova's `metadata_with_null`: keys of 1 to 255 letters, digits and
/// `-_:. `; values strings of at most 255 characters, or null.
fn metadata_arg(arg: &Value) -> Result<BTreeMap<String, Option<String>>, RequestError> {
    let Value::Object(o) = arg else {
        return Err(bad(format!(
            "Invalid input for field/attribute set_metadata. Value: {}. {arg} is not of type 'object'",
            shown(arg)
        )));
    };
    only(o, &["metadata"])?;
    let m = match o.get("metadata") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute metadata. Value: {}. {other} is not of type 'object'",
                shown(other)
            )));
        }
        None => return Err(bad("'metadata' is a required property".into())),
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let key_ok = (1..=255).contains(&k.chars().count())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '));
        if !key_ok {
            return Err(bad(format!("Additional properties are not allowed ('{k}' was unexpected)")));
        }
        let value = match v {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            Value::String(s) => {
                return Err(bad(format!("Invalid input for field/attribute {k}. Value: {s}. '{s}' is too long")));
            }
            other => {
                return Err(bad(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string', 'null'"
                )));
            }
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// Parse an aggregate action: one of `add_host`, `remove_host`,
/// `set_metadata` with Nova's schema for its argument.
pub fn parse_aggregate_action(v: &Value) -> Result<AggregateAction, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    let (name, arg) = match body.iter().next() {
        Some(kv) if body.len() == 1 => kv,
        _ => return Err(bad("Malformed request body: exactly one action is expected".into())),
    };
    match name.as_str() {
        "add_host" => Ok(AggregateAction::AddHost(host_arg(name, arg)?)),
        "remove_host" => Ok(AggregateAction::RemoveHost(host_arg(name, arg)?)),
        "set_metadata" => Ok(AggregateAction::SetMetadata(metadata_arg(arg)?)),
        _ => Err(bad(format!("There is no such action: {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Create takes a strict name and an optional zone without `:` (Nova's `create` schema).
    #[test]
    fn create_bodies_follow_novas_schema() {
        assert_eq!(
            parse_aggregate_create(&json!({"aggregate": {"name": "a", "availability_zone": "z1"}})),
            Ok(AggregateCreate { name: "a".into(), availability_zone: Some("z1".into()) })
        );
        assert_eq!(
            parse_aggregate_create(&json!({"aggregate": {"name": "a", "availability_zone": null}})),
            Ok(AggregateCreate { name: "a".into(), availability_zone: None })
        );
        let refused = [
            json!({"aggregate": {"name": ""}}),
            json!({"aggregate": {"name": "a".repeat(256)}}),
            json!({"aggregate": {"name": " a"}}),
            json!({"aggregate": {}}),
            json!({"aggregate": {"name": "a", "availability_zone": "x:y"}}),
            json!({"aggregate": {"name": "a", "availability_zone": ""}}),
            json!({"aggregate": {"name": "a", "extra": 1}}),
            json!({"aggregate": {"name": "a"}, "x": 1}),
        ];
        for body in refused {
            assert!(parse_aggregate_create(&body).is_err(), "{body}");
        }
        assert_eq!(
            parse_aggregate_create(&json!({"aggregate": {"name": ""}})),
            Err(RequestError::BadRequest("Invalid input for field/attribute name. Value: . '' is too short".into()))
        );
    }

    /// Update needs a name or a zone; a name is trimmed (Nova's `update` schema and `normalize_name`).
    #[test]
    fn update_bodies_need_a_name_or_a_zone() {
        assert_eq!(
            parse_aggregate_update(&json!({"aggregate": {"name": " b "}})),
            Ok(AggregateUpdate { name: Some("b".into()), availability_zone: None })
        );
        assert_eq!(
            parse_aggregate_update(&json!({"aggregate": {"availability_zone": null}})),
            Ok(AggregateUpdate { name: None, availability_zone: Some(None) })
        );
        assert!(parse_aggregate_update(&json!({"aggregate": {}})).is_err());
        assert!(parse_aggregate_update(&json!({"aggregate": {"name": "  "}})).is_err());
    }

    /// The three actions and their arguments (Nova's `add_host`, `remove_host`, `set_metadata` schemas).
    #[test]
    fn actions_follow_novas_schemas() {
        assert_eq!(
            parse_aggregate_action(&json!({"add_host": {"host": "compute-1"}})),
            Ok(AggregateAction::AddHost("compute-1".into()))
        );
        assert_eq!(
            parse_aggregate_action(&json!({"remove_host": {"host": "h"}})),
            Ok(AggregateAction::RemoveHost("h".into()))
        );
        assert_eq!(
            parse_aggregate_action(&json!({"set_metadata": {"metadata": {"k": "v", "gone": null}}})),
            Ok(AggregateAction::SetMetadata(BTreeMap::from([
                ("gone".to_string(), None),
                ("k".to_string(), Some("v".to_string()))
            ])))
        );
        assert_eq!(
            parse_aggregate_action(&json!({"frob": {}})),
            Err(RequestError::BadRequest("There is no such action: frob".into()))
        );
        for body in [
            json!({"add_host": {}}),
            json!({"add_host": {"host": "a b"}}),
            json!({"add_host": {"host": "h", "x": 1}}),
            json!({"set_metadata": {}}),
            json!({"set_metadata": {"metadata": {"k/": "v"}}}),
            json!({"set_metadata": {"metadata": {"k": 1}}}),
            json!({"set_metadata": {"metadata": {"k": "v".repeat(256)}}}),
        ] {
            assert!(parse_aggregate_action(&body).is_err(), "{body}");
        }
    }
}
