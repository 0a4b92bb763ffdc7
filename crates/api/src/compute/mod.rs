//! Compute API v2.1 wire types: typed request bodies (checked the way Nova's
//! JSON schemas check them, with Nova's messages), the `POST
//! /servers/{id}/action` enum, the list query, and pure view builders that
//! render rows at a microversion. No datastore access here: handlers parse
//! with these, call the compute service, and render with these.

pub mod actions;
pub mod aggregates;
pub mod extra_specs;
pub mod flavors;
pub mod paging;
pub mod query;
pub mod requests;
pub mod views;

#[cfg(test)]
mod tests;

pub use actions::{ActionError, Backup, Evacuate, Rebuild, ResetStateTarget, ServerAction};
pub use aggregates::{
    AggregateAction, AggregateCreate, AggregateUpdate, parse_aggregate_action, parse_aggregate_create,
    parse_aggregate_update,
};
pub use flavors::{
    FlavorAccessChange, FlavorCreate, FlavorListQuery, MAX_FLAVOR_PAGE, parse_extra_spec_item, parse_extra_specs_body,
    parse_flavor_action, parse_flavor_create, parse_flavor_update, parse_is_public,
};
pub use paging::Page;
pub use query::{ServerListQuery, parse_query, query_value, truthy};
pub use requests::*;

/// Why a request body or query was refused before reaching the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// 400 with Nova's message.
    #[error("{0}")]
    BadRequest(String),
    /// 403: more metadata items than the quota allows (Nova answers 403).
    #[error("{0}")]
    MetadataQuota(String),
}

/// Last path segment of an id-or-URL reference (`imageRef`, `flavorRef`).
pub fn ref_id(r: &str) -> &str {
    r.trim_end_matches('/').rsplit('/').next().unwrap_or(r)
}

/// Nova's name check (server names, snapshot names).
pub fn validate_name(name: &str, field: &str) -> Result<(), RequestError> {
    let n = name.chars().count();
    if n == 0 || n > 255 {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {name}. It must be 1 to 255 characters long"
        )));
    }
    if name.trim() != name {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {name}. It must not have leading or trailing whitespace"
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. It must not contain control characters"
        )));
    }
    Ok(())
}

/// Most tags a server may hold (Nova's `MAX_TAG_COUNT`).
pub const MAX_TAGS: usize = 50;

/// Nova's check of one server tag (2.26): 1 to 60 characters, neither `,`
/// nor `/` (those separate tags in filters and URLs).
pub fn validate_tag(tag: &str, field: &str) -> Result<(), RequestError> {
    let n = tag.chars().count();
    if n == 0 || n > 60 {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {tag}. A tag must be 1 to 60 characters long"
        )));
    }
    if tag.contains(',') || tag.contains('/') {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {tag}. '{tag}' does not match '^[^,/]*$'"
        )));
    }
    Ok(())
}

/// A list of tags (create at 2.52, `PUT /servers/{id}/tags`): strings,
/// each a valid tag, at most [`MAX_TAGS`]; duplicates collapse.
pub fn parse_tags(v: &serde_json::Value, field: &str) -> Result<Vec<String>, RequestError> {
    let Some(list) = v.as_array() else {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'array'"
        )));
    };
    if list.len() > MAX_TAGS {
        return Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. The number of tags exceeded the per-server limit {MAX_TAGS}"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let Some(t) = t.as_str() else {
            return Err(RequestError::BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {t}. {t} is not of type 'string'"
            )));
        };
        validate_tag(t, field)?;
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Nova's `accessIPv4` / `accessIPv6` as given at create, update or
/// rebuild: each checked as an address of its family and normalised (an
/// IPv6 address in its compressed form, as Nova stores it); `None` when
/// the key was not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessIps {
    /// `accessIPv4`.
    pub v4: Option<String>,
    /// `accessIPv6`.
    pub v6: Option<String>,
}

impl AccessIps {
    /// Check the two keys' values (either may be absent).
    pub fn parse(v4: Option<&serde_json::Value>, v6: Option<&serde_json::Value>) -> Result<Self, RequestError> {
        Ok(Self {
            v4: v4.map(|v| access_ip(v, "accessIPv4", false)).transpose()?,
            v6: v6.map(|v| access_ip(v, "accessIPv6", true)).transpose()?,
        })
    }
}

/// One access address: a string holding an address of the family (Nova's
/// `format: ipv4` / `ipv6`), normalised.
fn access_ip(v: &serde_json::Value, field: &str, six: bool) -> Result<String, RequestError> {
    let format = if six { "ipv6" } else { "ipv4" };
    let bad = || {
        RequestError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {v} is not a '{format}'"
        ))
    };
    let serde_json::Value::String(text) = v else { return Err(bad()) };
    let parsed = if six {
        text.parse::<std::net::Ipv6Addr>().map(|a| a.to_string())
    } else {
        text.parse::<std::net::Ipv4Addr>().map(|a| a.to_string())
    };
    parsed.map_err(|_| bad())
}

/// Nova's check of a server description (2.19): null or at most 255
/// printable characters.
pub fn validate_description(v: &serde_json::Value) -> Result<Option<String>, RequestError> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(d) => {
            if d.chars().count() > 255 {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute description. Value: {d}. It is longer than 255 characters"
                )));
            }
            if d.chars().any(|c| c.is_control()) {
                return Err(RequestError::BadRequest(
                    "Invalid input for field/attribute description. It must not contain control characters".into(),
                ));
            }
            Ok(Some(d.clone()))
        }
        other => Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute description. Value: {other}. {other} is not of type 'string', 'null'"
        ))),
    }
}

/// Nova's check of `user_data`: null, or base64 text of at most 65535 characters.
pub fn validate_user_data(v: &serde_json::Value) -> Result<Option<String>, RequestError> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(d) => {
            if d.len() > 65535 {
                return Err(RequestError::BadRequest(
                    "Invalid input for field/attribute user_data. It is longer than 65535 characters".into(),
                ));
            }
            if !is_base64(d) {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute user_data. Value: {d}. '{d}' is not a 'base64'"
                )));
            }
            Ok(Some(d.clone()))
        }
        other => Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute user_data. Value: {other}. {other} is not of type 'string', 'null'"
        ))),
    }
}

/// Is `s` standard base64 (whitespace ignored, padded to a multiple of 4)?
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2 && b[..b.len() - pad].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// `trusted_image_certificates` (create and rebuild, 2.63+): null or an
/// array of 1 to 50 unique non-empty strings, as Nova's schema says. This
/// cloud does not verify image signatures, so a certificate list that
/// asks for it is refused rather than ignored.
pub fn check_trusted_certs(v: &serde_json::Value) -> Result<(), RequestError> {
    match v {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Array(a) => {
            let strings: Vec<&str> = a.iter().filter_map(|x| x.as_str()).filter(|x| !x.is_empty()).collect();
            let unique: std::collections::BTreeSet<&str> = strings.iter().copied().collect();
            if a.is_empty() || a.len() > 50 || strings.len() != a.len() || unique.len() != a.len() {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for field/attribute trusted_image_certificates. Value: {v}. It must be null or 1 to 50 unique non-empty strings"
                )));
            }
            Err(RequestError::BadRequest(
                "Image signature certificate validation is not offered by this cloud: trusted_image_certificates must be null".into(),
            ))
        }
        other => Err(RequestError::BadRequest(format!(
            "Invalid input for field/attribute trusted_image_certificates. Value: {other}. {other} is not of type 'array', 'null'"
        ))),
    }
}

/// Nova's check of a requested `hostname` (2.90+): at 2.90-2.93 a host
/// label (2 to 63 letters, digits and inner dashes); from 2.94 an FQDN
/// (1 to 255 letters, digits, `-`, `.` and `_`).
pub fn validate_hostname(v: &serde_json::Value, mv: crate::Microversion) -> Result<String, RequestError> {
    let bad =
        |why: &str| RequestError::BadRequest(format!("Invalid input for field/attribute hostname. Value: {v}. {why}"));
    let Some(h) = v.as_str() else { return Err(bad("It is not of type 'string'")) };
    let n = h.chars().count();
    if mv.at_least(94) {
        if n == 0 || n > 255 || !h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(bad("It must be 1 to 255 characters among letters, digits, '-', '.' and '_'"));
        }
    } else {
        let inner_ok = h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !(2..=63).contains(&n) || !inner_ok || h.starts_with('-') || h.ends_with('-') {
            return Err(bad("It must be 2 to 63 letters, digits or inner dashes"));
        }
    }
    Ok(h.to_string())
}
