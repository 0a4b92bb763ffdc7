//! Wire side of the Image API v2 (Glance): the typed list query, version
//! discovery, the JSON schemas, paging links and the patch media types. The
//! image view itself is built by `stratus_image::view` (it must undo how the
//! service stores tags and `os_hidden`).

use serde_json::{Value, json};
use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, MemberStatus, Visibility};

/// A malformed image-list query; always a 400 with this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ImageQueryError(pub String);

/// Default page size of the image list (Glance's `limit_param_default`).
const DEFAULT_LIMIT: usize = 25;
/// Largest page size (Glance's `api_limit_max`).
const MAX_LIMIT: usize = 1000;

/// Query parameters that are not property filters and are handled (or
/// deliberately ignored) by name.
const LIST_PARAMS: &[&str] = &[
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "member_status",
    "created_at",
    "updated_at",
    "name",
    "visibility",
    "status",
    "owner",
    "disk_format",
    "container_format",
    "id",
    "tag",
    "protected",
    "os_hidden",
    "size_min",
    "size_max",
];

/// Core attributes a list may filter on, by exact value or `in:a,b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterField {
    /// `name`.
    Name,
    /// `status`.
    Status,
    /// `owner`.
    Owner,
    /// `disk_format`.
    DiskFormat,
    /// `container_format`.
    ContainerFormat,
    /// `id`.
    Id,
}

impl FilterField {
    /// Every filterable attribute with its query parameter name.
    const ALL: [(&'static str, Self); 6] = [
        ("name", Self::Name),
        ("status", Self::Status),
        ("owner", Self::Owner),
        ("disk_format", Self::DiskFormat),
        ("container_format", Self::ContainerFormat),
        ("id", Self::Id),
    ];
}

/// Keys the image list may be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// `name`.
    Name,
    /// `status`.
    Status,
    /// `visibility`.
    Visibility,
    /// `owner`.
    Owner,
    /// `disk_format`.
    DiskFormat,
    /// `container_format`.
    ContainerFormat,
    /// `size`.
    Size,
    /// `min_disk`.
    MinDisk,
    /// `min_ram`.
    MinRam,
    /// `created_at` (the default).
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `id` (always the last tie-breaker).
    Id,
}

impl SortKey {
    /// The key named in a query, if it is one we sort by.
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "status" => Self::Status,
            "visibility" => Self::Visibility,
            "owner" => Self::Owner,
            "disk_format" => Self::DiskFormat,
            "container_format" => Self::ContainerFormat,
            "size" => Self::Size,
            "min_disk" => Self::MinDisk,
            "min_ram" => Self::MinRam,
            "created_at" => Self::CreatedAt,
            "updated_at" => Self::UpdatedAt,
            "id" => Self::Id,
            _ => return None,
        })
    }
}

/// Which visibilities a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Glance's default: other projects' community images are left out.
    Default,
    /// `visibility=all`.
    All,
    /// One visibility.
    Only(Visibility),
}

/// A parsed `GET /v2/images` query (Glance's filters, sort and paging).
#[derive(Clone, Debug)]
pub struct ListImagesQuery {
    /// Page size.
    pub limit: usize,
    /// Start after this image id.
    pub marker: Option<String>,
    /// `(key, descending)` pairs, always ending with `id`.
    pub order: Vec<(SortKey, bool)>,
    /// Visibility filter.
    pub visibility: VisibilityFilter,
    /// Show hidden (`os_hidden`) images instead of visible ones.
    pub hidden: bool,
    /// Only (un)protected images.
    pub protected: Option<bool>,
    /// Smallest size.
    pub size_min: Option<i64>,
    /// Largest size.
    pub size_max: Option<i64>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Filters on core attributes (exact or `in:a,b`).
    pub fields: Vec<(FilterField, String)>,
    /// `(property, value)` on custom properties.
    pub props: Vec<(String, String)>,
    /// Which shared images of other projects the caller's memberships
    /// select: `member_status=` one status (Glance's default `accepted`),
    /// or `None` for `all`.
    pub member_status: Option<MemberStatus>,
}

fn bad(msg: String) -> ImageQueryError {
    ImageQueryError(msg)
}

fn parse_size(attr: &str, v: &str) -> Result<i64, ImageQueryError> {
    v.parse().map_err(|_| bad(format!("Invalid value '{v}' for {attr}: an integer is required.")))
}

fn parse_flag(attr: &str, v: &str) -> Result<bool, ImageQueryError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(bad(format!("Invalid value '{v}' for {attr}: a boolean is required."))),
    }
}

impl ListImagesQuery {
    /// Parse the query string pairs (repeated keys allowed).
    pub fn parse(params: &[(String, String)]) -> Result<Self, ImageQueryError> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let limit = match get("limit") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| bad(format!("Invalid limit '{l}': a non-negative integer is required.")))?
                .min(MAX_LIMIT),
            None => DEFAULT_LIMIT,
        };
        let order = sort_order(params)?;
        let visibility = match get("visibility") {
            None => VisibilityFilter::Default,
            Some("all") => VisibilityFilter::All,
            Some(v) => VisibilityFilter::Only(v.parse().map_err(|_| bad(format!("Invalid visibility value: {v}")))?),
        };
        let hidden = get("os_hidden").map(|v| parse_flag("os_hidden", v)).transpose()?.unwrap_or(false);
        let protected = get("protected").map(|v| parse_flag("protected", v)).transpose()?;
        let size_min = get("size_min").map(|v| parse_size("size_min", v)).transpose()?;
        let size_max = get("size_max").map(|v| parse_size("size_max", v)).transpose()?;
        let tags = params.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.clone()).collect();
        let fields = FilterField::ALL.iter().filter_map(|(name, f)| get(name).map(|v| (*f, v.to_string()))).collect();
        let props = params.iter().filter(|(k, _)| !LIST_PARAMS.contains(&k.as_str())).cloned().collect();
        let member_status = match get("member_status") {
            None => Some(MemberStatus::Accepted),
            Some("all") => None,
            Some(v) => Some(v.parse().map_err(|_| bad(format!("Invalid status value: {v}")))?),
        };
        Ok(Self {
            limit,
            marker: get("marker").map(str::to_string),
            order,
            visibility,
            hidden,
            protected,
            size_min,
            size_max,
            tags,
            fields,
            props,
            member_status,
        })
    }
}

/// The `(key, descending)` sort order from `sort`, or `sort_key`/`sort_dir`.
fn sort_order(params: &[(String, String)]) -> Result<Vec<(SortKey, bool)>, ImageQueryError> {
    let key_of = |k: &str| SortKey::parse(k).ok_or_else(|| bad(format!("Unsupported sort key '{k}'.")));
    let dir_desc = |d: &str| match d {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad(format!("Unsupported sort direction '{other}'; use asc or desc."))),
    };
    let mut order = Vec::new();
    let sort: Vec<&str> = params.iter().filter(|(k, _)| k == "sort").map(|(_, v)| v.as_str()).collect();
    let keys: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.as_str()).collect();
    let dirs: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.as_str()).collect();
    if !sort.is_empty() {
        if !keys.is_empty() || !dirs.is_empty() {
            return Err(bad("The 'sort' parameter cannot be combined with sort_key or sort_dir.".into()));
        }
        for item in sort.iter().flat_map(|s| s.split(',')) {
            let mut parts = item.trim().splitn(2, ':');
            let key = parts.next().unwrap_or("").trim();
            let desc = match parts.next() {
                Some(d) => dir_desc(d.trim())?,
                None => true,
            };
            order.push((key_of(key)?, desc));
        }
    } else {
        if dirs.len() > keys.len().max(1) {
            return Err(bad("More sort directions than sort keys were given.".into()));
        }
        let default_desc = match dirs.first() {
            Some(d) if dirs.len() == 1 => dir_desc(d)?,
            _ => true,
        };
        for (i, key) in keys.iter().enumerate() {
            let key = key_of(key)?;
            let desc = if dirs.len() > 1 {
                match dirs.get(i) {
                    Some(d) => dir_desc(d)?,
                    None => default_desc,
                }
            } else {
                default_desc
            };
            order.push((key, desc));
        }
        if order.is_empty() {
            order.push((SortKey::CreatedAt, default_desc));
        }
    }
    if !order.iter().any(|(k, _)| *k == SortKey::Id) {
        let desc = order.last().map(|(_, d)| *d).unwrap_or(true);
        order.push((SortKey::Id, desc));
    }
    Ok(order)
}

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

/// The image member schema (Glance's `/v2/schemas/member`).
pub fn member_schema() -> Value {
    let statuses: Vec<&str> = MemberStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "description": "The status of this image member", "enum": statuses},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true}
        }
    })
}

/// The image member list schema (Glance's `/v2/schemas/members`).
pub fn members_schema() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"}
        },
        "links": [{"rel": "describedby", "href": "{schema}"}]
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

/// A task's properties in Glance's task schema; `full` keeps the details
/// (`input`, `result`, `message`) the list's partial schema leaves out.
fn task_properties(full: bool) -> Value {
    let uuid = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";
    let mut p = json!({
        "id": {"type": "string", "description": "An identifier for the task", "pattern": uuid},
        "type": {"type": "string", "description": "The type of task represented by this content", "enum": ["import", "api_image_import"]},
        "status": {"type": "string", "description": "The current status of this task", "enum": ["pending", "processing", "success", "failure"]},
        "owner": {"type": "string", "description": "An identifier for the owner of this task"},
        "image_id": {"type": ["null", "string"], "description": "Image associated with the task"},
        "request_id": {"type": ["null", "string"], "description": "Request ID of the operation that created the task"},
        "user_id": {"type": ["null", "string"], "description": "User associated with the task"},
        "expires_at": {"type": ["null", "string"], "description": "Datetime when this resource would be subject to removal"},
        "created_at": {"type": "string", "description": "Datetime when this resource was created"},
        "updated_at": {"type": "string", "description": "Datetime when this resource was updated"},
        "self": {"type": "string", "readOnly": true},
        "schema": {"type": "string", "readOnly": true}
    });
    if full && let Some(m) = p.as_object_mut() {
        m.insert(
            "input".into(),
            json!({"type": "object", "description": "The parameters required by task, JSON blob"}),
        );
        m.insert(
            "result".into(),
            json!({"type": ["null", "object"], "description": "The result of current task, JSON blob"}),
        );
        m.insert("message".into(), json!({"type": "string", "description": "Human-readable informative message only included when appropriate (usually on failure)"}));
    }
    p
}

/// The task schema (Glance's `/v2/schemas/task`): what `/v2/tasks/{id}` shows.
pub fn task_schema() -> Value {
    json!({
        "name": "task",
        "properties": task_properties(true),
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}]
    })
}

/// The task list schema (Glance's `/v2/schemas/tasks`): list entries omit
/// the task's details.
pub fn tasks_schema() -> Value {
    json!({
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": {"name": "task", "properties": task_properties(false), "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}]}},
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_rejects_bad_parameters() {
        let p = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
        };
        let q = ListImagesQuery::parse(&p(&[("sort", "name:asc,size"), ("visibility", "community")])).expect("valid");
        assert_eq!(q.order, vec![(SortKey::Name, false), (SortKey::Size, true), (SortKey::Id, true)]);
        assert_eq!(q.visibility, VisibilityFilter::Only(Visibility::Community));
        for bad in [
            &[("limit", "-1")][..],
            &[("sort_key", "bogus")],
            &[("sort_dir", "up")],
            &[("sort", "name"), ("sort_key", "name")],
            &[("visibility", "x")],
            &[("os_hidden", "maybe")],
            &[("size_min", "big")],
        ] {
            assert!(ListImagesQuery::parse(&p(bad)).is_err(), "{bad:?}");
        }
    }
}
