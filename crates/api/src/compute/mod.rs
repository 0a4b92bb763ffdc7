//! Compute API v2.1 wire types: typed request bodies (checked the way Nova's
//! JSON schemas check them, with Nova's messages), the `POST
//! /servers/{id}/action` enum, the list query, and pure view builders that
//! render rows at a microversion. No datastore access here: handlers parse
//! with these, call the compute service, and render with these.

pub mod actions;
pub mod aggregates;
pub mod flavors;
pub mod paging;
pub mod query;
pub mod requests;
pub mod views;

#[cfg(test)]
mod tests;

pub use actions::{ActionError, Evacuate, Rebuild, ResetStateTarget, ServerAction};
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
