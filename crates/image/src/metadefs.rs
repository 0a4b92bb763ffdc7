//! Metadata definitions (Glance's metadefs catalogue): namespaces holding
//! objects, properties, tags and resource-type associations that tell
//! clients which image (flavor, volume...) properties mean something.
//!
//! Glance's default policy: only admins write; everyone reads public
//! namespaces, a private one only its owner project (anyone else gets a
//! 404, as for any resource of another project). A protected namespace and
//! its content cannot be deleted (403). Bodies are checked against the same
//! constraints Glance's JSON schemas state ([`schema`] serves them).

use crate::view::glance_ts;
use crate::{ImageError, ImageService};
use serde_json::{Map, Value, json};
use stratus_auth::AuthContext;
use stratus_db::{DbError, MetadefItemRow, MetadefNamespaceRow};

/// Item kind of an object definition.
pub const OBJECT: &str = "object";
/// Item kind of a property definition.
pub const PROPERTY: &str = "property";
/// Item kind of a tag.
pub const TAG: &str = "tag";
/// Item kind of a resource-type association.
pub const RESOURCE_TYPE: &str = "resource_type";

/// Glance's namespace listing default page size.
const DEFAULT_LIMIT: usize = 20;
/// The JSON-schema types a property may declare (Glance's enum).
const PROPERTY_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
/// Attributes of a response that only Stratus sets: a request naming one is refused (403).
const READ_ONLY: &[&str] = &["created_at", "updated_at", "self", "schema"];

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

fn missing(what: String) -> ImageError {
    ImageError::Missing(what)
}

/// A database error with its "not found" spelled for the item asked for.
fn db(e: DbError, what: impl FnOnce() -> String) -> ImageError {
    match e {
        DbError::NotFound { .. } => missing(what()),
        DbError::Conflict { detail, .. } => ImageError::Conflict(detail),
        e => e.into(),
    }
}

/// Glance's metadef write policy (`add_metadef_namespace` and the rest): admin only.
pub fn check_admin(ctx: &AuthContext) -> Result<(), ImageError> {
    if ctx.is_admin() { Ok(()) } else { Err(ImageError::Forbidden("Access was denied to this resource.".into())) }
}

/// May the caller see this namespace? Admins all, everyone public ones,
/// the owner project its private ones.
pub fn namespace_visible(ctx: &AuthContext, ns: &MetadefNamespaceRow) -> bool {
    ctx.is_admin() || ns.visibility == "public" || ns.owner == ctx.project_id
}

fn object_of(body: &str) -> Map<String, Value> {
    match serde_json::from_str(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Glance refuses a read-only attribute in a request (403) and any key its
/// schema does not name (400).
fn check_keys(what: &str, req: &Map<String, Value>, allowed: &[&str]) -> Result<(), ImageError> {
    if let Some(k) = req.keys().find(|k| READ_ONLY.contains(&k.as_str())) {
        return Err(ImageError::ReadOnly { attr: k.clone() });
    }
    match req.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("Additional property '{k}' is not allowed in a {what}."))),
        None => Ok(()),
    }
}

/// A required (or, with `required` false, optional) string of 1..=`max` characters.
fn v_str(req: &Map<String, Value>, key: &str, max: usize, required: bool) -> Result<Option<String>, ImageError> {
    match req.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) if !required && s.is_empty() => Ok(Some(String::new())),
        _ => Err(bad(format!("Invalid value for '{key}': a string of 1 to {max} characters is required."))),
    }
}

/// The name of an item, also when it comes from a URL.
fn v_name(name: &str, max: usize) -> Result<String, ImageError> {
    v_str(&Map::from_iter([("name".to_string(), Value::String(name.to_string()))]), "name", max, true)
        .map(Option::unwrap_or_default)
}

/// An optional JSON type, by check.
fn v_typed(req: &Map<String, Value>, key: &str, ok: fn(&Value) -> bool, what: &str) -> Result<(), ImageError> {
    match req.get(key) {
        Some(v) if !v.is_null() && !ok(v) => Err(bad(format!("Invalid value for '{key}': {what} is required."))),
        _ => Ok(()),
    }
}

fn is_str_list(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

/// A property definition (the keys of Glance's property schema); returns
/// its name (when `named`) and the definition without it.
fn v_property(req: &Map<String, Value>, named: bool) -> Result<(Option<String>, Map<String, Value>), ImageError> {
    const KEYS: &[&str] = &[
        "name",
        "title",
        "description",
        "type",
        "default",
        "enum",
        "items",
        "operators",
        "readonly",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "uniqueItems",
        "minItems",
        "maxItems",
        "additionalItems",
    ];
    check_keys("property", req, KEYS)?;
    let name = if named { v_str(req, "name", 80, true)? } else { None };
    v_str(req, "title", 255, true)?;
    match req.get("type").and_then(Value::as_str) {
        Some(t) if PROPERTY_TYPES.contains(&t) => {}
        _ => return Err(bad(format!("Invalid value for 'type': one of {} is required.", PROPERTY_TYPES.join(", ")))),
    }
    v_typed(req, "description", Value::is_string, "a string")?;
    v_typed(req, "enum", Value::is_array, "an array")?;
    v_typed(req, "operators", is_str_list, "an array of strings")?;
    v_typed(req, "items", Value::is_object, "an object")?;
    v_typed(req, "pattern", Value::is_string, "a string")?;
    for k in ["readonly", "uniqueItems", "additionalItems"] {
        v_typed(req, k, Value::is_boolean, "a boolean")?;
    }
    for k in ["minimum", "maximum"] {
        v_typed(req, k, Value::is_number, "a number")?;
    }
    for k in ["minLength", "maxLength", "minItems", "maxItems"] {
        v_typed(req, k, |v| v.as_u64().is_some(), "a non-negative integer")?;
    }
    let mut def = req.clone();
    for k in READ_ONLY.iter().chain(["name"].iter()) {
        def.remove(*k);
    }
    Ok((name, def))
}

/// A definition's name and its body (the JSON object stored without the name).
type Named = (String, Map<String, Value>);

/// The properties object of a namespace or object: name -> definition.
fn v_properties(v: Option<&Value>) -> Result<Vec<Named>, ImageError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let props = v.as_object().ok_or_else(|| bad("Invalid value for 'properties': an object is required."))?;
    props
        .iter()
        .map(|(name, def)| {
            let name = v_name(name, 80)?;
            let def = def.as_object().ok_or_else(|| bad(format!("Property '{name}' must be an object.")))?;
            Ok((name, v_property(def, false)?.1))
        })
        .collect()
}

/// An object definition: its name and its stored body.
fn v_object(req: &Map<String, Value>) -> Result<Named, ImageError> {
    check_keys("object", req, &["name", "description", "required", "properties"])?;
    let name = v_str(req, "name", 80, true)?.unwrap_or_default();
    v_typed(req, "description", Value::is_string, "a string")?;
    v_typed(req, "required", is_str_list, "an array of strings")?;
    let props: Map<String, Value> =
        v_properties(req.get("properties"))?.into_iter().map(|(k, v)| (k, Value::Object(v))).collect();
    let mut body = Map::new();
    for k in ["description", "required"] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            body.insert(k.into(), v.clone());
        }
    }
    if !props.is_empty() {
        body.insert("properties".into(), Value::Object(props));
    }
    Ok((name, body))
}

/// A resource-type association: its name and stored body (`prefix`, `properties_target`).
fn v_association(req: &Map<String, Value>) -> Result<Named, ImageError> {
    check_keys("resource type association", req, &["name", "prefix", "properties_target"])?;
    let name = v_str(req, "name", 80, true)?.unwrap_or_default();
    let mut body = Map::new();
    for k in ["prefix", "properties_target"] {
        if let Some(v) = v_str(req, k, 80, false)? {
            body.insert(k.into(), Value::String(v));
        }
    }
    Ok((name, body))
}

fn v_tag(req: &Map<String, Value>) -> Result<String, ImageError> {
    check_keys("tag", req, &["name"])?;
    Ok(v_str(req, "name", 255, true)?.unwrap_or_default())
}

/// A list of request objects under `key`.
fn v_list<'a>(req: &'a Map<String, Value>, key: &str) -> Result<Vec<&'a Map<String, Value>>, ImageError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_object().ok_or_else(|| bad(format!("Invalid value for '{key}': objects are required."))))
            .collect(),
        Some(_) => Err(bad(format!("Invalid value for '{key}': an array is required."))),
    }
}

fn v_visibility(req: &Map<String, Value>) -> Result<Option<String>, ImageError> {
    match req.get("visibility") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if v == "public" || v == "private" => Ok(Some(v.clone())),
        Some(v) => Err(bad(format!("Invalid value {v} for 'visibility'; expected one of: public, private."))),
    }
}

fn v_protected(req: &Map<String, Value>) -> Result<Option<bool>, ImageError> {
    match req.get("protected") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad("Invalid value for 'protected': a boolean is required.")),
    }
}

/// The namespace attributes kept in its JSON body.
fn ns_body(req: &Map<String, Value>) -> Result<Map<String, Value>, ImageError> {
    let mut body = Map::new();
    if let Some(d) = v_str(req, "display_name", 80, false)? {
        body.insert("display_name".into(), Value::String(d));
    }
    match req.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if d.chars().count() <= 500 => {
            body.insert("description".into(), Value::String(d.clone()));
        }
        Some(_) => return Err(bad("Invalid value for 'description': a string of at most 500 characters is required.")),
    }
    Ok(body)
}

const NS_KEYS: &[&str] = &[
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "properties",
    "objects",
    "tags",
];

// ------------------------------------------------------------ views

fn ns_path(ns: &str) -> String {
    format!("/v2/metadefs/namespaces/{ns}")
}

fn stamped(mut m: Map<String, Value>, row: &MetadefItemRow) -> Value {
    m.insert("created_at".into(), Value::String(glance_ts(row.created_at)));
    m.insert("updated_at".into(), Value::String(glance_ts(row.updated_at)));
    Value::Object(m)
}

/// An object as Glance shows it (with its `self` and `schema`).
pub fn object_view(row: &MetadefItemRow) -> Value {
    let mut m = object_of(&row.body);
    m.insert("name".into(), Value::String(row.name.clone()));
    m.insert("schema".into(), json!("/v2/schemas/metadefs/object"));
    m.insert("self".into(), Value::String(format!("{}/objects/{}", ns_path(&row.namespace), row.name)));
    m.entry("required").or_insert_with(|| json!([]));
    m.entry("properties").or_insert_with(|| json!({}));
    stamped(m, row)
}

/// A property definition with its name.
pub fn property_view(row: &MetadefItemRow) -> Value {
    let mut m = object_of(&row.body);
    m.insert("name".into(), Value::String(row.name.clone()));
    Value::Object(m)
}

/// A tag.
pub fn tag_view(row: &MetadefItemRow) -> Value {
    stamped(Map::from_iter([("name".to_string(), Value::String(row.name.clone()))]), row)
}

/// A resource-type association.
pub fn association_view(row: &MetadefItemRow) -> Value {
    let mut m = object_of(&row.body);
    m.insert("name".into(), Value::String(row.name.clone()));
    stamped(m, row)
}

/// A namespace; with `items`, its content inline as Glance's show does
/// (each kind only when there is some).
fn namespace_view(ns: &MetadefNamespaceRow, items: &[MetadefItemRow], full: bool) -> Value {
    let mut m = object_of(&ns.body);
    m.insert("namespace".into(), Value::String(ns.namespace.clone()));
    m.insert("visibility".into(), Value::String(ns.visibility.clone()));
    m.insert("protected".into(), Value::Bool(ns.protected));
    m.insert("owner".into(), Value::String(ns.owner.clone()));
    m.insert("created_at".into(), Value::String(glance_ts(ns.created_at)));
    m.insert("updated_at".into(), Value::String(glance_ts(ns.updated_at)));
    m.insert("schema".into(), json!("/v2/schemas/metadefs/namespace"));
    m.insert("self".into(), Value::String(ns_path(&ns.namespace)));
    let of = |kind: &'static str| items.iter().filter(move |i| i.kind == kind);
    let assoc: Vec<Value> = of(RESOURCE_TYPE).map(association_view).collect();
    if !assoc.is_empty() {
        m.insert("resource_type_associations".into(), Value::Array(assoc));
    }
    if full {
        let props: Map<String, Value> =
            of(PROPERTY).map(|p| (p.name.clone(), Value::Object(object_of(&p.body)))).collect();
        if !props.is_empty() {
            m.insert("properties".into(), Value::Object(props));
        }
        let objects: Vec<Value> = of(OBJECT).map(object_view).collect();
        if !objects.is_empty() {
            m.insert("objects".into(), Value::Array(objects));
        }
        let tags: Vec<Value> = of(TAG).map(|t| json!({"name": t.name})).collect();
        if !tags.is_empty() {
            m.insert("tags".into(), Value::Array(tags));
        }
    }
    Value::Object(m)
}

// ------------------------------------------------------------ service

impl ImageService {
    /// A namespace the caller may see; anything else is a 404.
    async fn md_visible(&self, ctx: &AuthContext, ns: &str) -> Result<MetadefNamespaceRow, ImageError> {
        let not_found = || format!("Metadata definition namespace={ns} was not found.");
        let row = self.ds.metadef_namespace_get(ns).await.map_err(|e| db(e, not_found))?;
        if !namespace_visible(ctx, &row) {
            return Err(missing(not_found()));
        }
        Ok(row)
    }

    /// A namespace the caller may see (404) and change (admin, else 403).
    pub async fn md_writable(&self, ctx: &AuthContext, ns: &str) -> Result<MetadefNamespaceRow, ImageError> {
        let row = self.md_visible(ctx, ns).await?;
        check_admin(ctx)?;
        Ok(row)
    }

    /// Like [`Self::md_writable`], for deleting content: a protected namespace refuses (403).
    async fn md_deletable(&self, ctx: &AuthContext, ns: &str, what: &str) -> Result<MetadefNamespaceRow, ImageError> {
        let row = self.md_writable(ctx, ns).await?;
        if row.protected {
            return Err(ImageError::Forbidden(format!("Namespace {ns} is protected: its {what} cannot be deleted.")));
        }
        Ok(row)
    }

    /// `POST /v2/metadefs/namespaces` (admin): a namespace with any
    /// objects, properties, tags and resource-type associations it names.
    pub async fn md_create_namespace(&self, ctx: &AuthContext, req: &Map<String, Value>) -> Result<Value, ImageError> {
        check_admin(ctx)?;
        check_keys("namespace", req, NS_KEYS)?;
        let name = v_str(req, "namespace", 80, true)?.unwrap_or_default();
        let mut items: Vec<(String, String, String)> = Vec::new();
        for a in v_list(req, "resource_type_associations")? {
            let (n, body) = v_association(a)?;
            self.ds.metadef_resource_type_ensure(&n).await?;
            items.push((RESOURCE_TYPE.into(), n, Value::Object(body).to_string()));
        }
        for (n, def) in v_properties(req.get("properties"))? {
            items.push((PROPERTY.into(), n, Value::Object(def).to_string()));
        }
        for o in v_list(req, "objects")? {
            let (n, body) = v_object(o)?;
            items.push((OBJECT.into(), n, Value::Object(body).to_string()));
        }
        for t in v_list(req, "tags")? {
            items.push((TAG.into(), v_tag(t)?, "{}".into()));
        }
        let row = MetadefNamespaceRow {
            namespace: name,
            owner: v_str(req, "owner", 255, false)?.filter(|o| !o.is_empty()).unwrap_or_else(|| ctx.project_id.clone()),
            visibility: v_visibility(req)?.unwrap_or_else(|| "private".into()),
            protected: v_protected(req)?.unwrap_or(false),
            body: Value::Object(ns_body(req)?).to_string(),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
        };
        let created = self.ds.metadef_namespace_create(&row, &items).await.map_err(|e| db(e, String::new))?;
        let items = self.ds.metadef_item_list(&created.namespace, None).await?;
        Ok(namespace_view(&created, &items, true))
    }

    /// `GET /v2/metadefs/namespaces`: the visible namespaces, filtered by
    /// `visibility` and `resource_types`, sorted and paged as Glance does.
    pub async fn md_list_namespaces(
        &self,
        ctx: &AuthContext,
        params: &[(String, String)],
    ) -> Result<Value, ImageError> {
        let mut limit = DEFAULT_LIMIT;
        let (mut marker, mut visibility, mut types) = (None, None, None);
        let (mut sort_key, mut sort_dir) = ("created_at".to_string(), "desc".to_string());
        for (k, v) in params {
            match k.as_str() {
                "limit" => {
                    limit = v.parse().map_err(|_| bad("limit param must be a non-negative integer"))?;
                }
                "marker" => marker = Some(v.clone()),
                "visibility" if v == "public" || v == "private" => visibility = Some(v.clone()),
                "visibility" => return Err(bad(format!("Invalid visibility value: {v}"))),
                "resource_types" => types = Some(v.split(',').map(str::to_string).collect::<Vec<_>>()),
                "sort_key" if ["namespace", "created_at", "updated_at"].contains(&v.as_str()) => sort_key = v.clone(),
                "sort_key" => return Err(bad(format!("Invalid sort key: {v}"))),
                "sort_dir" if v == "asc" || v == "desc" => sort_dir = v.clone(),
                "sort_dir" => return Err(bad(format!("Invalid sort direction: {v}"))),
                _ => {}
            }
        }
        let mut rows = Vec::new();
        for ns in self.ds.metadef_namespace_list().await? {
            if !namespace_visible(ctx, &ns) || visibility.as_ref().is_some_and(|v| *v != ns.visibility) {
                continue;
            }
            let items = self.ds.metadef_item_list(&ns.namespace, Some(RESOURCE_TYPE)).await?;
            if let Some(t) = &types
                && !items.iter().any(|i| t.contains(&i.name))
            {
                continue;
            }
            rows.push((ns, items));
        }
        rows.sort_by(|(a, _), (b, _)| {
            let ord = match sort_key.as_str() {
                "namespace" => a.namespace.cmp(&b.namespace),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                _ => a.created_at.cmp(&b.created_at),
            }
            .then_with(|| a.namespace.cmp(&b.namespace));
            if sort_dir == "desc" { ord.reverse() } else { ord }
        });
        let start = match &marker {
            None => 0,
            Some(m) => rows
                .iter()
                .position(|(ns, _)| &ns.namespace == m)
                .map(|i| i + 1)
                .ok_or_else(|| missing(format!("Metadata definition namespace={m} was not found.")))?,
        };
        let page: Vec<_> = rows.iter().skip(start).take(limit).collect();
        let mut doc = json!({
            "namespaces": page.iter().map(|(ns, items)| namespace_view(ns, items, false)).collect::<Vec<_>>(),
            "first": "/v2/metadefs/namespaces",
            "schema": "/v2/schemas/metadefs/namespaces",
        });
        if start + page.len() < rows.len()
            && let Some((last, _)) = page.last()
        {
            doc["next"] = Value::String(format!("/v2/metadefs/namespaces?marker={}&limit={limit}", last.namespace));
        }
        Ok(doc)
    }

    /// `GET /v2/metadefs/namespaces/{ns}`: with its content inline.
    pub async fn md_show_namespace(&self, ctx: &AuthContext, ns: &str) -> Result<Value, ImageError> {
        let row = self.md_visible(ctx, ns).await?;
        let items = self.ds.metadef_item_list(&row.namespace, None).await?;
        Ok(namespace_view(&row, &items, true))
    }

    /// `PUT /v2/metadefs/namespaces/{ns}` (admin): new attributes (a new
    /// `namespace` renames it); content is changed through its own URLs.
    pub async fn md_update_namespace(
        &self,
        ctx: &AuthContext,
        ns: &str,
        req: &Map<String, Value>,
    ) -> Result<Value, ImageError> {
        let old = self.md_writable(ctx, ns).await?;
        check_keys("namespace", req, NS_KEYS)?;
        let row = MetadefNamespaceRow {
            namespace: v_str(req, "namespace", 80, true)?.unwrap_or_default(),
            owner: v_str(req, "owner", 255, false)?.filter(|o| !o.is_empty()).unwrap_or(old.owner),
            visibility: v_visibility(req)?.unwrap_or(old.visibility),
            protected: v_protected(req)?.unwrap_or(old.protected),
            body: Value::Object(ns_body(req)?).to_string(),
            ..old
        };
        self.ds.metadef_namespace_update(ns, &row).await.map_err(|e| db(e, String::new))?;
        self.md_show_namespace(ctx, &row.namespace).await
    }

    /// `DELETE /v2/metadefs/namespaces/{ns}` (admin): with its content;
    /// a protected namespace is a 403.
    pub async fn md_delete_namespace(&self, ctx: &AuthContext, ns: &str) -> Result<(), ImageError> {
        let row = self.md_writable(ctx, ns).await?;
        if row.protected {
            return Err(ImageError::Forbidden(format!("Namespace {ns} is protected and cannot be deleted.")));
        }
        self.ds.metadef_namespace_delete(ns).await.map_err(|e| db(e, || format!("Namespace {ns} was not found.")))
    }

    /// The items of one kind in a visible namespace.
    pub async fn md_items(&self, ctx: &AuthContext, ns: &str, kind: &str) -> Result<Vec<MetadefItemRow>, ImageError> {
        let row = self.md_visible(ctx, ns).await?;
        Ok(self.ds.metadef_item_list(&row.namespace, Some(kind)).await?)
    }

    /// One item of a visible namespace.
    pub async fn md_item(
        &self,
        ctx: &AuthContext,
        ns: &str,
        kind: &str,
        name: &str,
    ) -> Result<MetadefItemRow, ImageError> {
        let row = self.md_visible(ctx, ns).await?;
        self.ds.metadef_item_get(&row.namespace, kind, name).await.map_err(|e| db(e, || item_missing(ns, kind, name)))
    }

    /// Create one item from a request body (admin).
    pub async fn md_create_item(
        &self,
        ctx: &AuthContext,
        ns: &str,
        kind: &str,
        req: &Map<String, Value>,
    ) -> Result<MetadefItemRow, ImageError> {
        let row = self.md_writable(ctx, ns).await?;
        let (name, body) = parse_item(kind, req)?;
        if kind == RESOURCE_TYPE {
            self.ds.metadef_resource_type_ensure(&name).await?;
        }
        let item = (name, Value::Object(body).to_string());
        let mut out = self
            .ds
            .metadef_items_add(&row.namespace, kind, std::slice::from_ref(&item), false)
            .await
            .map_err(|e| db(e, String::new))?;
        out.pop().ok_or_else(|| ImageError::Internal("no item created".into()))
    }

    /// `POST .../tags` (admin): the tags of `req["tags"]`, replacing the
    /// existing ones unless `append` (Glance's `X-Openstack-Append`).
    pub async fn md_create_tags(
        &self,
        ctx: &AuthContext,
        ns: &str,
        req: &Map<String, Value>,
        append: bool,
    ) -> Result<Vec<MetadefItemRow>, ImageError> {
        let row = self.md_writable(ctx, ns).await?;
        check_keys("tag list", req, &["tags"])?;
        // Without a list there is nothing to replace the tags with (not "delete them all").
        if !req.get("tags").is_some_and(Value::is_array) {
            return Err(bad("Invalid value for 'tags': an array of tags is required."));
        }
        let tags = v_list(req, "tags")?
            .into_iter()
            .map(|t| v_tag(t).map(|n| (n, "{}".to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        self.ds.metadef_items_add(&row.namespace, TAG, &tags, !append).await.map_err(|e| db(e, String::new))
    }

    /// Replace one item's definition (and maybe its name) (admin).
    pub async fn md_update_item(
        &self,
        ctx: &AuthContext,
        ns: &str,
        kind: &str,
        name: &str,
        req: &Map<String, Value>,
    ) -> Result<MetadefItemRow, ImageError> {
        let row = self.md_writable(ctx, ns).await?;
        let (new, body) = parse_item(kind, req)?;
        self.ds
            .metadef_item_update(&row.namespace, kind, name, &new, &Value::Object(body).to_string())
            .await
            .map_err(|e| db(e, || item_missing(ns, kind, name)))
    }

    /// Delete one item (`Some(name)`) or all of a kind (admin; not in a protected namespace).
    pub async fn md_delete_items(
        &self,
        ctx: &AuthContext,
        ns: &str,
        kind: &str,
        name: Option<&str>,
    ) -> Result<(), ImageError> {
        let row = self.md_deletable(ctx, ns, &format!("{kind}s")).await?;
        self.ds
            .metadef_item_delete(&row.namespace, kind, name)
            .await
            .map_err(|e| db(e, || item_missing(ns, kind, name.unwrap_or_default())))
    }

    /// `GET /v2/metadefs/resource_types`: every resource type.
    pub async fn md_resource_types(&self) -> Result<Value, ImageError> {
        let types: Vec<Value> = self
            .ds
            .metadef_resource_type_list()
            .await?
            .iter()
            .map(|t| json!({"name": t.name, "created_at": glance_ts(t.created_at), "updated_at": glance_ts(t.updated_at)}))
            .collect();
        Ok(json!({"resource_types": types}))
    }
}

fn item_missing(ns: &str, kind: &str, name: &str) -> String {
    let what = match kind {
        RESOURCE_TYPE => "resource type association",
        k => k,
    };
    format!("Metadata definition {what}={name} was not found in namespace={ns}.")
}

/// A request body as an item of `kind`: its name and stored body.
fn parse_item(kind: &str, req: &Map<String, Value>) -> Result<Named, ImageError> {
    match kind {
        OBJECT => v_object(req),
        PROPERTY => v_property(req, true).map(|(n, d)| (n.unwrap_or_default(), d)),
        RESOURCE_TYPE => v_association(req),
        _ => Ok((v_tag(req)?, Map::new())),
    }
}

/// A tag's name from its URL (Glance: at most 255 characters).
pub fn tag_name(name: &str) -> Result<Map<String, Value>, ImageError> {
    Ok(Map::from_iter([("name".to_string(), Value::String(v_name(name, 255)?))]))
}

// ------------------------------------------------------------ schemas

/// The keys of a property definition, as Glance's schemas describe them.
fn property_schema_props() -> Value {
    json!({
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object", "string", null]},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object", "string", null]},
                "enum": {"type": "array"}
            }
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": false},
        "additionalItems": {"type": "boolean"}
    })
}

fn definitions() -> Value {
    json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
        "property": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "type"],
                "properties": property_schema_props()
            }
        }
    })
}

fn stamps() -> [(&'static str, Value); 2] {
    [
        (
            "created_at",
            json!({"type": "string", "readOnly": true, "description": "Date and time of creation", "format": "date-time"}),
        ),
        (
            "updated_at",
            json!({"type": "string", "readOnly": true, "description": "Date and time of the last modification", "format": "date-time"}),
        ),
    ]
}

fn with_stamps(props: Value) -> Value {
    let mut m = props.as_object().cloned().unwrap_or_default();
    m.extend(stamps().into_iter().map(|(k, v)| (k.to_string(), v)));
    Value::Object(m)
}

fn association_schema() -> Value {
    json!({
        "name": "resource_type_association",
        "properties": with_stamps(json!({
            "name": {"type": "string", "maxLength": 80, "description": "Resource type names should be aligned with Heat resource types whenever possible."},
            "prefix": {"type": "string", "maxLength": 80, "description": "Prefix the properties of the namespace take when applied to this resource type."},
            "properties_target": {"type": "string", "maxLength": 80, "description": "Which part of the resource the properties apply to, when it has several."}
        })),
        "required": ["name"],
        "additionalProperties": false
    })
}

fn object_schema() -> Value {
    json!({
        "name": "object",
        "properties": with_stamps(json!({
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": {"type": "string", "readOnly": true},
            "self": {"type": "string", "readOnly": true}
        })),
        "required": ["name"],
        "additionalProperties": false,
        "definitions": definitions()
    })
}

fn property_schema() -> Value {
    json!({
        "name": "property",
        "properties": property_schema_props(),
        "required": ["name", "title", "type"],
        "additionalProperties": false,
        "definitions": definitions()
    })
}

fn tag_schema() -> Value {
    json!({
        "name": "tag",
        "properties": with_stamps(json!({"name": {"type": "string", "maxLength": 255}})),
        "required": ["name"],
        "additionalProperties": false
    })
}

fn namespace_schema() -> Value {
    json!({
        "name": "namespace",
        "properties": with_stamps(json!({
            "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
            "display_name": {"type": "string", "maxLength": 80, "description": "The user friendly name for the namespace."},
            "description": {"type": "string", "maxLength": 500, "description": "Provides a user friendly description of the namespace."},
            "visibility": {"type": "string", "enum": ["public", "private"], "description": "Scope of namespace accessibility."},
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
            "schema": {"type": "string", "readOnly": true},
            "self": {"type": "string", "readOnly": true},
            "resource_type_associations": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "prefix": {"type": "string"}, "properties_target": {"type": "string"}
            }}},
            "properties": {"$ref": "#/definitions/property"},
            "objects": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "description": {"type": "string"},
                "required": {"$ref": "#/definitions/stringArray"}, "properties": {"$ref": "#/definitions/property"}
            }}},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
        })),
        "required": ["namespace"],
        "additionalProperties": false,
        "definitions": definitions()
    })
}

/// A collection schema: `items` of `member` under key `plural`, Glance's links.
fn collection(plural: &str, member: Value, extra: &[(&str, Value)]) -> Value {
    let mut props = Map::new();
    props.insert(plural.into(), json!({"type": "array", "items": member}));
    props.insert("schema".into(), json!({"type": "string"}));
    props.insert("first".into(), json!({"type": "string"}));
    props.insert("next".into(), json!({"type": "string"}));
    for (k, v) in extra {
        props.insert((*k).into(), v.clone());
    }
    json!({
        "name": plural,
        "properties": props,
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// `GET /v2/schemas/metadefs/{name}`: Glance's JSON schema of a metadefs
/// document (`namespace`, `namespaces`, `object`, `objects`, `property`,
/// `properties`, `tag`, `tags`, `resource_type`, `resource_types`).
pub fn schema(name: &str) -> Option<Value> {
    Some(match name {
        "namespace" => namespace_schema(),
        "namespaces" => collection("namespaces", namespace_schema(), &[]),
        "object" => object_schema(),
        "objects" => collection("objects", object_schema(), &[]),
        "property" => property_schema(),
        "properties" => {
            let mut s = collection("properties", property_schema(), &[]);
            s["properties"]["properties"] = definitions()["property"].clone();
            s["definitions"] = definitions();
            s
        }
        "tag" => tag_schema(),
        "tags" => collection("tags", tag_schema(), &[]),
        "resource_type" => association_schema(),
        "resource_types" => collection("resource_type_associations", association_schema(), &[]),
        _ => return None,
    })
}
