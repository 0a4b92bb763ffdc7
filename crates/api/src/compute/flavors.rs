//! Flavor requests (`/flavors`, `os-flavor-access`, `os-extra_specs`):
//! the list query and the bodies, checked the way Nova's schemas check them,
//! with Nova's messages. Who may do what is the compute service's to check.

use super::RequestError;
use super::query::parse_query;
use crate::Microversion;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use stratus_db::FlavorSortKey;

/// Largest page of a flavor list (Nova's `api.max_limit`).
pub const MAX_FLAVOR_PAGE: i64 = 1000;

/// Nova's `sort_key` values for flavors, as its messages list them.
const SORT_KEYS: &str = "['created_at', 'description', 'disabled', 'ephemeral_gb', 'flavorid', 'id', 'is_public', \
                         'memory_mb', 'name', 'root_gb', 'rxtx_factor', 'swap', 'updated_at', 'vcpu_weight', 'vcpus']";

/// Largest value of an integer flavor attribute (Nova's `MAX_INT`, a 32-bit column).
const MAX_INT: i64 = 0x7FFF_FFFF;

/// Largest `rxtx_factor` (Nova's single-precision float column).
const MAX_RXTX: f64 = 3.40282e38;

fn bad(m: String) -> RequestError {
    RequestError::BadRequest(m)
}

/// `GET /flavors` and `/flavors/detail` parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlavorListQuery {
    /// `minRam`.
    pub min_ram: Option<i64>,
    /// `minDisk`.
    pub min_disk: Option<i64>,
    /// `is_public` as given: Nova reads it from admins only (see [`parse_is_public`]).
    pub is_public: Option<String>,
    /// `limit`, capped at [`MAX_FLAVOR_PAGE`].
    pub limit: Option<i64>,
    /// `marker`.
    pub marker: Option<String>,
    /// `sort_key` (default `flavorid`).
    pub sort_key: FlavorSortKey,
    /// `sort_dir=desc`.
    pub descending: bool,
    /// Every parameter as given, for the next-page link.
    pub params: Vec<(String, String)>,
    /// `name` (2.102): a regular expression the name must match (text
    /// that is not one is matched literally, as server names are).
    pub name: Option<String>,
}

/// Does a flavor `name` match the 2.102 `name` filter `pattern` (a regular
/// expression searched anywhere in the name, as Nova's database regexp)?
pub fn flavor_name_matches(pattern: &str, name: &str) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(name),
        Err(_) => name.contains(pattern),
    }
}

/// Python's `int()` of a query value: surrounding blanks and a sign allowed.
fn python_int(v: &str) -> Option<i64> {
    let t = v.trim();
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

impl FlavorListQuery {
    /// Parse a raw query; unknown parameters are ignored (Nova before 2.75).
    pub fn parse(raw: Option<&str>) -> Result<Self, RequestError> {
        let params = parse_query(raw);
        let mut out = Self { params: params.clone(), ..Self::default() };
        for (k, v) in params {
            match k.as_str() {
                "minRam" => {
                    out.min_ram = Some(python_int(&v).ok_or_else(|| bad(format!("Invalid minRam filter [{v}]")))?);
                }
                "minDisk" => {
                    out.min_disk = Some(python_int(&v).ok_or_else(|| bad(format!("Invalid minDisk filter [{v}]")))?);
                }
                "is_public" => out.is_public = Some(v),
                "limit" => {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad(format!(
                            "Invalid input for query parameters limit. Value: {v}. '{v}' does not match '^[0-9]*$'"
                        )));
                    }
                    out.limit = Some(v.parse::<i64>().unwrap_or(i64::MAX).min(MAX_FLAVOR_PAGE));
                }
                "marker" => out.marker = Some(v),
                "name" => out.name = Some(v),
                "sort_key" if v.is_empty() => out.sort_key = FlavorSortKey::default(),
                "sort_key" => {
                    out.sort_key = FlavorSortKey::from_nova(&v).ok_or_else(|| {
                        bad(format!(
                            "Invalid input for query parameters sort_key. Value: {v}. '{v}' is not one of {SORT_KEYS}"
                        ))
                    })?;
                }
                "sort_dir" => {
                    out.descending = match v.as_str() {
                        "" | "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(bad(format!(
                                "Invalid input for query parameters sort_dir. Value: {v}. '{v}' is not one of ['asc', 'desc']"
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Nova's reading of an admin's `is_public` filter: absent means public
/// only, `none` means all, else a strict boolean.
pub fn parse_is_public(v: Option<&str>) -> Result<Option<bool>, RequestError> {
    let Some(v) = v else { return Ok(Some(true)) };
    let t = v.trim().to_ascii_lowercase();
    match t.as_str() {
        "none" => Ok(None),
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(Some(true)),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(Some(false)),
        _ => Err(bad(format!("Invalid is_public filter [{v}]"))),
    }
}

/// A checked `POST /flavors` body.
#[derive(Clone, Debug, PartialEq)]
pub struct FlavorCreate {
    /// Name.
    pub name: String,
    /// Id; `None` (absent or null) asks for a generated UUID.
    pub id: Option<String>,
    /// `ram`, MiB.
    pub ram_mb: i64,
    /// `vcpus`.
    pub vcpus: i64,
    /// `disk`, GiB.
    pub disk_gb: i64,
    /// `OS-FLV-EXT-DATA:ephemeral`, GiB.
    pub ephemeral_gb: i64,
    /// `swap`, MiB.
    pub swap_mb: i64,
    /// `rxtx_factor`.
    pub rxtx_factor: f64,
    /// `os-flavor-access:is_public`.
    pub is_public: bool,
    /// `description` (2.55; refused below by [`parse_flavor_create`]'s caller).
    pub description: Option<String>,
}

/// The keys of `flavor` Nova's schema allows (2.1 to 2.54).
const CREATE_KEYS: [&str; 10] = [
    "description",
    "name",
    "id",
    "ram",
    "vcpus",
    "disk",
    "OS-FLV-EXT-DATA:ephemeral",
    "swap",
    "rxtx_factor",
    "os-flavor-access:is_public",
];

/// A JSON value as Nova's messages show it (strings unquoted).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An integer attribute: an integer or a string of digits, within `min..=MAX_INT`.
fn int_attr(f: &Map<String, Value>, field: &str, min: i64) -> Result<Option<i64>, RequestError> {
    let Some(v) = f.get(field) else { return Ok(None) };
    let invalid = |why: String| bad(format!("Invalid input for field/attribute {field}. Value: {}. {why}", shown(v)));
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| invalid(format!("{n} is not of type 'integer', 'string'")))?,
        Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!("'{s}' does not match '^[0-9]+$'")));
            }
            s.parse().unwrap_or(i64::MAX)
        }
        other => return Err(invalid(format!("{other} is not of type 'integer', 'string'"))),
    };
    if n < min {
        return Err(invalid(format!("{n} is less than the minimum of {min}")));
    }
    if n > MAX_INT {
        return Err(invalid(format!("{n} is greater than the maximum of {MAX_INT}")));
    }
    Ok(Some(n))
}

/// Nova's name format: printable characters, no leading or trailing blank.
fn check_flavor_name(v: &Value) -> Result<String, RequestError> {
    let invalid = |why: String| bad(format!("Invalid input for field/attribute name. Value: {}. {why}", shown(v)));
    let Value::String(name) = v else {
        return Err(invalid(format!("{v} is not of type 'string'")));
    };
    let n = name.chars().count();
    if n == 0 {
        return Err(invalid("'' is too short".into()));
    }
    if n > 255 {
        return Err(invalid(format!("'{name}' is too long")));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(bad("An invalid 'name' value was provided. The name must be: printable characters. \
                        Can not start or end with whitespace."
            .into()));
    }
    Ok(name.clone())
}

/// The flavor id: a string of letters, digits, `.`, `_`, `-` and inner
/// spaces, 1 to 255 long, or a number (its text), or null (generate one).
fn check_flavor_id(v: &Value) -> Result<Option<String>, RequestError> {
    let pattern = "^(?! )[a-zA-Z0-9. _-]+(?<! )$";
    let invalid = |why: String| bad(format!("Invalid input for field/attribute id. Value: {}. {why}", shown(v)));
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) => {
            let n = s.chars().count();
            if n == 0 {
                return Err(invalid("'' is too short".into()));
            }
            if n > 255 {
                return Err(invalid(format!("'{s}' is too long")));
            }
            let allowed = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-'));
            if !allowed || s.starts_with(' ') || s.ends_with(' ') {
                return Err(invalid(format!("'{s}' does not match '{pattern}'")));
            }
            Ok(Some(s.clone()))
        }
        other => Err(invalid(format!("{other} is not of type 'string', 'number', 'null'"))),
    }
}

/// `rxtx_factor`: a number or a decimal string, above 0.
fn check_rxtx(v: &Value) -> Result<f64, RequestError> {
    let invalid =
        |why: String| bad(format!("Invalid input for field/attribute rxtx_factor. Value: {}. {why}", shown(v)));
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            if !digits(int) || !digits(frac) {
                return Err(invalid(format!("'{s}' does not match '^[0-9]+(\\.[0-9]+)?$'")));
            }
            s.parse().unwrap_or(f64::NAN)
        }
        other => return Err(invalid(format!("{other} is not of type 'number', 'string'"))),
    };
    if x.is_nan() || x <= 0.0 {
        return Err(invalid(format!("{} is less than or equal to the minimum of 0", shown(v))));
    }
    if x > MAX_RXTX {
        return Err(invalid(format!("{} is greater than the maximum of {MAX_RXTX}", shown(v))));
    }
    Ok(x)
}

/// Nova's boolean parameter: a JSON boolean or one of its boolean words.
fn check_bool(field: &str, v: &Value) -> Result<bool, RequestError> {
    match v {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => match s.as_str() {
            "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" | "y" | "t" => return Ok(true),
            "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" | "n" | "f" => {
                return Ok(false);
            }
            _ => {}
        },
        _ => {}
    }
    Err(bad(format!("Invalid input for field/attribute {field}. Value: {}. {v} is not a boolean", shown(v))))
}

/// Parse `{"flavor": {"name", "ram", "vcpus", "disk", "id"?,
/// "OS-FLV-EXT-DATA:ephemeral"?, "swap"?, "rxtx_factor"?,
/// "os-flavor-access:is_public"?}}` with Nova's schema (2.1 to 2.54).
pub fn parse_flavor_create(v: &Value) -> Result<FlavorCreate, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    if let Some(extra) = body.keys().find(|k| *k != "flavor") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let f = match body.get("flavor") {
        Some(Value::Object(f)) => f,
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute flavor. Value: {other}. {other} is not of type 'object'"
            )));
        }
        None => return Err(bad("'flavor' is a required property".into())),
    };
    if let Some(extra) = f.keys().find(|k| !CREATE_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    for required in ["name", "ram", "vcpus", "disk"] {
        if !f.contains_key(required) {
            return Err(bad(format!("'{required}' is a required property")));
        }
    }
    let name = f.get("name").map(check_flavor_name).transpose()?.unwrap_or_default();
    let id = f.get("id").map(check_flavor_id).transpose()?.flatten();
    let required = |field: &str, min: i64| int_attr(f, field, min).map(|n| n.unwrap_or_default());
    Ok(FlavorCreate {
        name,
        id,
        ram_mb: required("ram", 1)?,
        vcpus: required("vcpus", 1)?,
        disk_gb: required("disk", 0)?,
        ephemeral_gb: required("OS-FLV-EXT-DATA:ephemeral", 0)?,
        swap_mb: required("swap", 0)?,
        rxtx_factor: f.get("rxtx_factor").map(check_rxtx).transpose()?.unwrap_or(1.0),
        is_public: f
            .get("os-flavor-access:is_public")
            .map(|v| check_bool("os-flavor-access:is_public", v))
            .transpose()?
            .unwrap_or(true),
        description: f.get("description").map(check_description).transpose()?.flatten(),
    })
}

/// A flavor `description` as Nova's schema takes it (2.55): a string of at
/// most 65535 characters without control characters, or null.
pub fn check_description(v: &Value) -> Result<Option<String>, RequestError> {
    match v {
        Value::Null => Ok(None),
        Value::String(d) if d.chars().count() <= 65535 && !d.chars().any(char::is_control) => Ok(Some(d.clone())),
        Value::String(_) => Err(bad(
            "Invalid input for field/attribute description: at most 65535 characters, none of them control characters"
                .into(),
        )),
        other => Err(bad(format!(
            "Invalid input for field/attribute description. Value: {other}. {other} is not of type 'string', 'null'"
        ))),
    }
}

/// `PUT /flavors/{id}` (2.55): `{"flavor": {"description": ...}}`, nothing
/// else; the new description (`None`: cleared).
pub fn parse_flavor_update(v: &Value) -> Result<Option<String>, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    if let Some(extra) = body.keys().find(|k| *k != "flavor") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let f =
        body.get("flavor").and_then(Value::as_object).ok_or_else(|| bad("'flavor' is a required property".into()))?;
    if let Some(extra) = f.keys().find(|k| *k != "description") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let d = f.get("description").ok_or_else(|| bad("'description' is a required property".into()))?;
    check_description(d)
}

/// One change to a private flavor's access list (`POST /flavors/{id}/action`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlavorAccessChange {
    /// `addTenantAccess`.
    Add(String),
    /// `removeTenantAccess`.
    Remove(String),
}

/// Parse `{"addTenantAccess": {"tenant": "<project>"}}` or the same with
/// `removeTenantAccess`: one action key, Nova's schema for its argument.
pub fn parse_flavor_action(v: &Value) -> Result<FlavorAccessChange, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    let (name, arg) = match body.iter().next() {
        Some(kv) if body.len() == 1 => kv,
        _ => return Err(bad("Malformed request body: exactly one action is expected".into())),
    };
    if name != "addTenantAccess" && name != "removeTenantAccess" {
        return Err(bad(format!("There is no such action: {name}")));
    }
    let arg = match arg {
        Value::Object(a) => a,
        other => {
            return Err(bad(format!(
                "Invalid input for field/attribute {name}. Value: {other}. {other} is not of type 'object'"
            )));
        }
    };
    if let Some(extra) = arg.keys().find(|k| *k != "tenant") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    let tenant = match arg.get("tenant") {
        Some(Value::String(t)) if (1..=255).contains(&t.chars().count()) => t.clone(),
        Some(Value::String(t)) if t.is_empty() => {
            return Err(bad("Invalid input for field/attribute tenant. Value: . '' is too short".into()));
        }
        Some(Value::String(t)) => {
            return Err(bad(format!("Invalid input for field/attribute tenant. Value: {t}. '{t}' is too long")));
        }
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute tenant. Value: {other}. {other} is not of type 'string'"
            )));
        }
        None => return Err(bad("'tenant' is a required property".into())),
    };
    Ok(if name == "addTenantAccess" { FlavorAccessChange::Add(tenant) } else { FlavorAccessChange::Remove(tenant) })
}

/// Nova's extra spec key pattern: 1 to 255 of letters, digits, `-_:. `.
fn extra_spec_key_ok(k: &str) -> bool {
    (1..=255).contains(&k.chars().count())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '))
}

/// The entries of an extra specs object: keys by Nova's pattern, values
/// strings of at most 255 characters or numbers (kept as their text).
fn extra_spec_entries(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, RequestError> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if !extra_spec_key_ok(k) {
            return Err(bad(format!("Additional properties are not allowed ('{k}' was unexpected)")));
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(bad(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string', 'number'"
                )));
            }
        };
        if value.chars().count() > 255 {
            return Err(bad(format!("Invalid input for field/attribute {k}. Value: {value}. '{value}' is too long")));
        }
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// From 2.86 each entry is checked against Nova's registry of known extra
/// specs ([`super::extra_specs`]), after the schema. Entries go in key order
/// (Nova goes in the body's): with several bad specs, the one named may differ.
fn check_known_specs(entries: &BTreeMap<String, String>, mv: Microversion) -> Result<(), RequestError> {
    if !mv.at_least(86) {
        return Ok(());
    }
    for (k, v) in entries {
        super::extra_specs::check_extra_spec(k, v)?;
    }
    Ok(())
}

/// Parse `POST /flavors/{id}/os-extra_specs`: `{"extra_specs": {...}}` and
/// nothing else; from 2.86 the specs are validated as Nova does.
pub fn parse_extra_specs_body(v: &Value, mv: Microversion) -> Result<BTreeMap<String, String>, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    if let Some(extra) = body.keys().find(|k| *k != "extra_specs") {
        return Err(bad(format!("Additional properties are not allowed ('{extra}' was unexpected)")));
    }
    match body.get("extra_specs") {
        Some(Value::Object(m)) => {
            let entries = extra_spec_entries(m)?;
            check_known_specs(&entries, mv)?;
            Ok(entries)
        }
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute extra_specs. Value: {other}. {other} is not of type 'object'"
        ))),
        None => Err(bad("'extra_specs' is a required property".into())),
    }
}

/// Parse `PUT /flavors/{id}/os-extra_specs/{key}`: `{key: value}`, exactly
/// one entry, with the URL's key; returns the value. From 2.86 the entry is
/// validated as Nova does, before the key is compared with the URL's.
pub fn parse_extra_spec_item(v: &Value, url_key: &str, mv: Microversion) -> Result<String, RequestError> {
    let body = v.as_object().ok_or_else(|| bad("Malformed request body: an object is expected".into()))?;
    match body.len() {
        0 => return Err(bad("{} does not have enough properties".into())),
        1 => {}
        _ => return Err(bad(format!("{v} has too many properties"))),
    }
    let mut entries = extra_spec_entries(body)?;
    check_known_specs(&entries, mv)?;
    entries.remove(url_key).ok_or_else(|| bad("Request body and URI mismatch".into()))
}
