//! How an image row is rendered on the wire (Glance v2): custom properties
//! flattened at top level, Stratus' reserved keys hidden. It lives with the
//! rules because it must undo exactly what they store in the properties.

use crate::rules::{RESERVED_PREFIX, hidden_of, props_of, tags_of};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use stratus_db::{ImageMemberRow, ImageRow};

/// Glance's timestamp format (`2026-11-27T12:00:00Z`): whole seconds, `Z`.
pub fn glance_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An image as Glance renders it, custom properties flattened at top level.
pub fn image_view(row: &ImageRow) -> Value {
    let props = props_of(row);
    let mut m = Map::new();
    for (k, v) in &props {
        if !k.starts_with(RESERVED_PREFIX) {
            m.insert(k.clone(), v.clone());
        }
    }
    let hashed = row.os_hash_value.is_some();
    let core = json!({
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "visibility": row.visibility,
        "protected": row.protected,
        "os_hidden": hidden_of(&props),
        "checksum": row.checksum,
        "os_hash_algo": if hashed { Some("sha512") } else { None },
        "os_hash_value": row.os_hash_value,
        "owner": row.owner,
        "size": row.size,
        "virtual_size": Value::Null,
        "min_ram": row.min_ram,
        "min_disk": row.min_disk,
        "disk_format": row.disk_format,
        "container_format": row.container_format,
        "created_at": glance_ts(row.created_at),
        "updated_at": glance_ts(row.updated_at),
        "tags": tags_of(&props),
        "self": format!("/v2/images/{}", row.id),
        "file": format!("/v2/images/{}/file", row.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        m.extend(core);
    }
    Value::Object(m)
}

/// An image member as Glance renders it.
pub fn member_view(m: &ImageMemberRow) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status,
        "created_at": glance_ts(m.created_at),
        "updated_at": glance_ts(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}
