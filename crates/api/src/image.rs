//! Wire documents of the Image API v2 (Glance) that depend on no stored
//! state: version discovery, the JSON schemas, paging links and the patch
//! media types. The image view itself is built by `stratus_image::view`.

use serde_json::{Value, json};
use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, Visibility};

/// Newest minor version of Image API v2 we claim.
pub const CURRENT_MINOR: u32 = 16;

/// Content types accepted by `PATCH` (JSON patch flavours of Glance).
pub const PATCH_TYPES: &[&str] =
    &["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"];

/// The version list; `self` links point at `<public>/image/v2/`.
pub fn versions_doc(public_url: &str) -> Value {
    let href = format!("{public_url}/image/v2/");
    let versions: Vec<Value> = (0..=CURRENT_MINOR)
        .rev()
        .map(|minor| {
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == CURRENT_MINOR { "CURRENT" } else { "SUPPORTED" },
                "links": [{"rel": "self", "href": href}],
            })
        })
        .collect();
    json!({ "versions": versions })
}

/// Percent-encode a query component (RFC 3986 unreserved characters stay).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/v2/images` with the given query parameters.
pub fn images_link(params: &[(String, String)]) -> String {
    if params.is_empty() {
        return "/v2/images".into();
    }
    let q: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
    format!("/v2/images?{}", q.join("&"))
}

/// The list document: a page of rendered images plus `first`/`next` links.
/// `params` are the query parameters of the request; `next_marker` is the
/// last id of the page when more follow.
pub fn images_doc(images: Vec<Value>, params: &[(String, String)], next_marker: Option<&str>) -> Value {
    let base: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "marker").cloned().collect();
    let mut doc = json!({
        "images": images,
        "first": images_link(&base),
        "schema": "/v2/schemas/images",
    });
    if let Some(marker) = next_marker {
        let mut next = base;
        next.push(("marker".into(), marker.to_string()));
        doc["next"] = Value::String(images_link(&next));
    }
    doc
}

/// The image schema (Glance's, reduced to what Stratus stores).
pub fn image_schema() -> Value {
    let nullable_enum = |values: Vec<&str>| {
        let mut e: Vec<Value> = vec![Value::Null];
        e.extend(values.iter().map(|v| Value::String((*v).to_string())));
        json!({"type": ["null", "string"], "enum": e})
    };
    let mut disk = nullable_enum(DiskFormat::ALL.iter().map(|d| d.as_str()).collect());
    disk["description"] = json!("Format of the disk");
    let mut container = nullable_enum(ContainerFormat::ALL.iter().map(|c| c.as_str()).collect());
    container["description"] = json!("Format of the container");
    let statuses: Vec<&str> = ImageStatus::ALL.iter().map(|s| s.as_str()).collect();
    let visibilities: Vec<&str> = Visibility::ALL.iter().map(|v| v.as_str()).collect();
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": statuses},
            "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": visibilities},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": container,
            "disk_format": disk,
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store", "items": {"type": "object", "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}, "required": ["url", "metadata"]}}
        },
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// The schema of the image list document.
pub fn images_schema() -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"}
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}
