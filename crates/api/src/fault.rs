//! Fault bodies, in the two shapes OpenStack clients parse.

use serde_json::{Value, json};

/// Nova's fault key for an HTTP status (`{"itemNotFound": {...}}`).
pub fn nova_fault_name(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// A Nova / Cinder style fault body.
pub fn nova_fault(status: u16, message: &str) -> Value {
    json!({ nova_fault_name(status): { "code": status, "message": message } })
}

/// Keystone's reason phrase for a status, used as `title`.
pub fn keystone_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// A Keystone style error body.
pub fn keystone_fault(status: u16, message: &str) -> Value {
    json!({ "error": { "code": status, "title": keystone_title(status), "message": message } })
}
