//! The rules of the image service: who sees an image, who changes it, which
//! values are valid, and what a JSON-patch operation does. Pure functions,
//! so the HTTP layer, the volume service and compute all apply the same ones.

use crate::ImageError;
use serde_json::{Map, Value};
use std::fmt::Display;
use std::str::FromStr;
use stratus_auth::AuthContext;
use stratus_db::ImageRow;
use stratus_types::ImageId;
use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, MemberStatus, Visibility};

/// Attributes clients may never set.
pub const READ_ONLY: &[&str] = &[
    "status",
    "checksum",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "self",
    "file",
    "schema",
    "os_hash_algo",
    "os_hash_value",
    "direct_url",
    "locations",
];
/// Properties key holding the JSON-encoded tag list.
const TAGS_KEY: &str = "stratus:tags";
/// Properties key holding `os_hidden` (`"true"` when set).
const HIDDEN_KEY: &str = "stratus:os_hidden";
/// Prefix of properties reserved for Stratus' own bookkeeping.
pub const RESERVED_PREFIX: &str = "stratus:";
/// Glance's reserved namespace: properties only the service itself sets
/// (`os_glance_import_task` and the like); clients naming one get a 403.
pub const GLANCE_RESERVED_PREFIX: &str = "os_glance";

/// May the caller see this image without a membership? Own, public and
/// community images; admins see all. A `shared` image is also visible to
/// its members: [`visible_as_member`] adds that, and
/// [`crate::visible_with_members`] looks the membership up. The one copy of
/// this rule: image, volume and compute APIs use it.
pub fn visible_to(ctx: &AuthContext, row: &ImageRow) -> bool {
    ctx.is_admin() || row.owner == ctx.project_id || row.visibility.is_open()
}

/// Glance's visibility rule with the caller's membership of the image (if
/// any): a member of a `shared` image sees it (and may boot it) whatever its
/// answer; the answer only decides whether the image is in its default list.
pub fn visible_as_member(ctx: &AuthContext, row: &ImageRow, membership: Option<MemberStatus>) -> bool {
    visible_to(ctx, row) || (row.visibility == Visibility::Shared && membership.is_some())
}

/// Is the caller the image's owner (or an admin), who manages its members?
pub fn owns(ctx: &AuthContext, row: &ImageRow) -> bool {
    ctx.is_admin() || row.owner == ctx.project_id
}

/// Only members/admins of the owning project (or cloud admins) change an image.
pub fn check_modify(ctx: &AuthContext, row: &ImageRow) -> Result<(), ImageError> {
    check_write(ctx)?;
    if !ctx.is_admin() && row.owner != ctx.project_id {
        return Err(ImageError::NotOwner { id: row.id.to_string() });
    }
    Ok(())
}

/// Readers change nothing.
pub fn check_write(ctx: &AuthContext) -> Result<(), ImageError> {
    if ctx.can_write() { Ok(()) } else { Err(ImageError::NotAuthorized) }
}

/// Readers see an image's record but not its bytes: Glance's
/// `download_image` default is ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE, a
/// member role on a project that may see the image. A deactivated image's
/// bytes are withheld from everyone but admins (Glance: 403).
pub fn check_download(ctx: &AuthContext, row: &ImageRow) -> Result<(), ImageError> {
    check_write(ctx)?;
    if row.status == ImageStatus::Deactivated && !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "The requested image has been deactivated. Image data download is forbidden.".into(),
        ));
    }
    Ok(())
}

/// Is `id` a hyphenated UUID (the only ids Stratus stores, and so the only
/// names that ever reach the file system)?
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

// ------------------------------------------------------------ properties

/// The properties object of a row (an unreadable one counts as empty).
pub fn props_of(row: &ImageRow) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&row.properties) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Tags kept in the properties.
pub fn tags_of(props: &Map<String, Value>) -> Vec<String> {
    props.get(TAGS_KEY).and_then(Value::as_str).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
}

/// `os_hidden` kept in the properties.
pub fn hidden_of(props: &Map<String, Value>) -> bool {
    props.get(HIDDEN_KEY).and_then(Value::as_str) == Some("true")
}

/// Store tags into the properties (dropping the key when empty).
pub fn set_tags(props: &mut Map<String, Value>, tags: &[String]) -> Result<(), ImageError> {
    if tags.is_empty() {
        props.remove(TAGS_KEY);
    } else {
        let s = serde_json::to_string(tags).map_err(|e| ImageError::Internal(e.to_string()))?;
        props.insert(TAGS_KEY.into(), Value::String(s));
    }
    Ok(())
}

/// Store `os_hidden` into the properties.
pub fn set_hidden(props: &mut Map<String, Value>, hidden: bool) {
    if hidden {
        props.insert(HIDDEN_KEY.into(), Value::String("true".into()));
    } else {
        props.remove(HIDDEN_KEY);
    }
}

// ------------------------------------------------------------ validation

fn read_only(attr: &str) -> ImageError {
    ImageError::ReadOnly { attr: attr.to_string() }
}

/// A name: null or at most 255 characters.
pub fn v_name(v: &Value) -> Result<Option<String>, ImageError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        _ => Err(ImageError::BadRequest(
            "Invalid value for 'name': a string of at most 255 characters is required.".into(),
        )),
    }
}

/// One of an enum's strings (or null when `nullable`).
fn v_enum<T: FromStr + Display>(attr: &str, v: &Value, all: &[T], nullable: bool) -> Result<Option<T>, ImageError> {
    let parsed = match v {
        Value::Null if nullable => return Ok(None),
        Value::String(s) => s.parse::<T>().ok(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        let allowed: Vec<String> = all.iter().map(ToString::to_string).collect();
        ImageError::BadRequest(format!("Invalid value {v} for '{attr}'; expected one of: {}.", allowed.join(", ")))
    })
}

/// A disk format or null.
pub fn v_disk_format(v: &Value) -> Result<Option<DiskFormat>, ImageError> {
    v_enum("disk_format", v, &DiskFormat::ALL, true)
}

/// A container format or null.
pub fn v_container_format(v: &Value) -> Result<Option<ContainerFormat>, ImageError> {
    v_enum("container_format", v, &ContainerFormat::ALL, true)
}

/// A non-negative integer that fits the column.
pub fn v_count(attr: &str, v: &Value) -> Result<i64, ImageError> {
    v.as_u64().and_then(|n| i64::try_from(n).ok()).ok_or_else(|| {
        ImageError::BadRequest(format!("Invalid value {v} for '{attr}': a non-negative integer is required."))
    })
}

/// A JSON boolean.
pub fn v_bool(attr: &str, v: &Value) -> Result<bool, ImageError> {
    v.as_bool().ok_or_else(|| ImageError::BadRequest(format!("Invalid value {v} for '{attr}': a boolean is required.")))
}

/// One tag: 1 to 255 characters.
pub fn v_tag(v: &Value) -> Result<String, ImageError> {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 255 => Ok(s.clone()),
        other => {
            Err(ImageError::BadRequest(format!("Invalid tag {other}: a string of 1 to 255 characters is required.")))
        }
    }
}

/// A tag list, duplicates dropped (first one wins).
pub fn v_tags(v: &Value) -> Result<Vec<String>, ImageError> {
    let arr = v
        .as_array()
        .ok_or_else(|| ImageError::BadRequest("Invalid value for 'tags': a list of strings is required.".into()))?;
    let mut tags: Vec<String> = Vec::with_capacity(arr.len());
    for t in arr {
        let t = v_tag(t)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

/// Check a visibility value and who may set it (only admins publish).
pub fn v_visibility(ctx: &AuthContext, v: &Value) -> Result<Visibility, ImageError> {
    let vis = v_enum("visibility", v, &Visibility::ALL, false)?
        .ok_or_else(|| ImageError::BadRequest("Invalid value for 'visibility'.".into()))?;
    if vis == Visibility::Public && !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "You are not authorized to publicize images (policy: publicize_image).".into(),
        ));
    }
    Ok(vis)
}

/// A custom property: a string value under a non-reserved name.
pub fn v_property(key: &str, v: &Value) -> Result<Value, ImageError> {
    if key.is_empty() || key.chars().count() > 255 {
        return Err(ImageError::BadRequest("Property names must be 1 to 255 characters long.".into()));
    }
    if key.starts_with(RESERVED_PREFIX) || key.starts_with(GLANCE_RESERVED_PREFIX) {
        return Err(ImageError::Forbidden(format!("Attribute '{key}' is reserved.")));
    }
    match v {
        Value::String(s) if s.chars().count() <= 65535 => Ok(v.clone()),
        other => {
            Err(ImageError::BadRequest(format!("Invalid value {other} for property '{key}': a string is required.")))
        }
    }
}

/// An owner: a project id of at most 255 characters; only admins name a
/// project other than their own (Glance refuses giving an image away).
pub fn v_owner(ctx: &AuthContext, v: &Value) -> Result<String, ImageError> {
    let owner = v.as_str().filter(|s| !s.is_empty() && s.chars().count() <= 255).ok_or_else(|| {
        ImageError::BadRequest("Invalid value for 'owner': a string of 1 to 255 characters is required.".into())
    })?;
    if owner != ctx.project_id && !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "You are not permitted to set the owner of an image to another project.".into(),
        ));
    }
    Ok(owner.to_string())
}

/// Rewrite Glance's draft-4 patch form (`application/openstack-images-v2.0-json-patch`,
/// `{"replace": "/name", "value": ...}`: the operation is the key, its value
/// the path) into the draft-10 form (`{"op", "path", "value"}`) the rules apply.
pub fn legacy_patch_ops(ops: &[Value]) -> Result<Vec<Value>, ImageError> {
    ops.iter()
        .map(|op| {
            let obj = op
                .as_object()
                .ok_or_else(|| ImageError::BadRequest("Each patch operation must be a JSON object.".into()))?;
            let named: Vec<&str> = ["add", "remove", "replace"].into_iter().filter(|k| obj.contains_key(*k)).collect();
            let [kind] = named[..] else {
                return Err(ImageError::BadRequest(
                    "A patch operation must name exactly one of add, remove or replace.".into(),
                ));
            };
            let path = obj
                .get(kind)
                .and_then(Value::as_str)
                .ok_or_else(|| ImageError::BadRequest(format!("Operation '{kind}' needs a path string.")))?;
            let mut out = Map::new();
            out.insert("op".into(), Value::String(kind.into()));
            out.insert("path".into(), Value::String(path.into()));
            if let Some(v) = obj.get("value") {
                out.insert("value".into(), v.clone());
            }
            Ok(Value::Object(out))
        })
        .collect()
}

// ---------------------------------------------------------------- create

/// A new image record from a create request (Glance's `POST /v2/images`
/// body: core attributes plus custom string properties).
pub fn new_image(ctx: &AuthContext, req: &Map<String, Value>) -> Result<ImageRow, ImageError> {
    check_write(ctx)?;
    let mut row = ImageRow {
        id: ImageId::new(),
        name: None,
        owner: ctx.project_id.clone(),
        status: ImageStatus::Queued,
        visibility: Visibility::Shared,
        disk_format: None,
        container_format: None,
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        properties: String::new(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    };
    let mut props = Map::new();
    for (k, v) in req {
        match k.as_str() {
            "id" => {
                // Any UUID spelling is accepted, as before; it is stored in our spelling.
                let id =
                    v.as_str().filter(|s| is_uuid(s)).and_then(|s| s.parse::<ImageId>().ok()).ok_or_else(|| {
                        ImageError::BadRequest(format!(
                            "Invalid value {v} for 'id': a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) is required."
                        ))
                    })?;
                row.id = id;
            }
            "name" => row.name = v_name(v)?,
            "visibility" => row.visibility = v_visibility(ctx, v)?,
            "disk_format" => row.disk_format = v_disk_format(v)?,
            "container_format" => row.container_format = v_container_format(v)?,
            "min_disk" => row.min_disk = v_count(k, v)?,
            "min_ram" => row.min_ram = v_count(k, v)?,
            "protected" => row.protected = v_bool(k, v)?,
            "os_hidden" => set_hidden(&mut props, v_bool(k, v)?),
            "tags" => set_tags(&mut props, &v_tags(v)?)?,
            "owner" => row.owner = v_owner(ctx, v)?,
            attr if READ_ONLY.contains(&attr) => return Err(read_only(attr)),
            key => {
                props.insert(key.to_string(), v_property(key, v)?);
            }
        }
    }
    row.properties = Value::Object(props).to_string();
    Ok(row)
}

// ------------------------------------------------------------ JSON patch

/// The JSON-pointer path of a patch operation, as one attribute name.
fn patch_attr(path: &str) -> Result<String, ImageError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ImageError::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'")))?;
    if rest.is_empty() || rest.contains('/') {
        let top = rest.split('/').next().unwrap_or("");
        if READ_ONLY.contains(&top) {
            return Err(read_only(top));
        }
        return Err(ImageError::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'")));
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Apply a list of JSON-patch operations to `row`; all or nothing (the
/// caller stores the row only when every operation succeeded).
pub fn apply_patch(ctx: &AuthContext, row: &mut ImageRow, ops: &[Value]) -> Result<(), ImageError> {
    let mut props = props_of(row);
    for op in ops {
        apply_patch_op(ctx, row, &mut props, op)?;
    }
    row.properties = Value::Object(props).to_string();
    Ok(())
}

/// Apply one JSON-patch operation to `row` / `props`.
fn apply_patch_op(
    ctx: &AuthContext,
    row: &mut ImageRow,
    props: &mut Map<String, Value>,
    op: &Value,
) -> Result<(), ImageError> {
    let obj =
        op.as_object().ok_or_else(|| ImageError::BadRequest("Each patch operation must be a JSON object.".into()))?;
    let kind = obj
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| ImageError::BadRequest("A patch operation needs an 'op'.".into()))?;
    let path = obj
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| ImageError::BadRequest("A patch operation needs a 'path'.".into()))?;
    let attr = patch_attr(path)?;
    let value = match kind {
        "add" | "replace" => Some(
            obj.get("value")
                .ok_or_else(|| ImageError::BadRequest(format!("Operation '{kind}' on '{path}' needs a 'value'.")))?,
        ),
        "remove" => None,
        other => {
            return Err(ImageError::BadRequest(format!(
                "Unsupported patch operation '{other}'; use add, replace or remove."
            )));
        }
    };
    let core = matches!(
        attr.as_str(),
        "name"
            | "visibility"
            | "protected"
            | "min_disk"
            | "min_ram"
            | "disk_format"
            | "container_format"
            | "tags"
            | "os_hidden"
    );
    if core {
        let Some(v) = value else {
            return Err(ImageError::Forbidden(format!("Attribute '{attr}' cannot be removed.")));
        };
        match attr.as_str() {
            "name" => row.name = v_name(v)?,
            "visibility" => row.visibility = v_visibility(ctx, v)?,
            "protected" => row.protected = v_bool(&attr, v)?,
            "min_disk" => row.min_disk = v_count(&attr, v)?,
            "min_ram" => row.min_ram = v_count(&attr, v)?,
            "disk_format" | "container_format" => {
                if row.status != ImageStatus::Queued {
                    return Err(ImageError::Forbidden(format!(
                        "Attribute '{attr}' can be only replaced for a queued image."
                    )));
                }
                if attr == "disk_format" {
                    row.disk_format = v_disk_format(v)?;
                } else {
                    row.container_format = v_container_format(v)?;
                }
            }
            "tags" => set_tags(props, &v_tags(v)?)?,
            _ => set_hidden(props, v_bool(&attr, v)?),
        }
        return Ok(());
    }
    if attr == "owner" {
        let Some(v) = value else {
            return Err(ImageError::Forbidden("Attribute 'owner' cannot be removed.".into()));
        };
        row.owner = v_owner(ctx, v)?;
        return Ok(());
    }
    if READ_ONLY.contains(&attr.as_str()) || attr == "id" {
        return Err(read_only(&attr));
    }
    let exists = props.contains_key(&attr);
    match (kind, value) {
        ("add", Some(v)) => {
            props.insert(attr.clone(), v_property(&attr, v)?);
        }
        ("replace", Some(v)) => {
            if !exists {
                return Err(ImageError::Conflict(format!("Property {attr} does not exist.")));
            }
            props.insert(attr.clone(), v_property(&attr, v)?);
        }
        _ => {
            if !exists || attr.starts_with(RESERVED_PREFIX) {
                return Err(ImageError::Conflict(format!("Property {attr} does not exist.")));
            }
            props.remove(&attr);
        }
    }
    Ok(())
}
