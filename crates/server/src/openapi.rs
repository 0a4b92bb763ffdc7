//! Serves the OpenAPI documents of the four APIs (and of Stratus's admin
//! endpoints), generated from the code: the handlers' `#[utoipa::path]`
//! annotations give the routes, parameters and statuses; [`schemas`] gives
//! the bodies written by hand. Schemathesis (`scripts/fuzz`) and client
//! authors read what the server actually does, so every schema here must be
//! true: a response that breaks its document is a bug of one or the other.
//!
//! The utoipa output is finished here in one pass over its JSON, for what
//! is the same on every route and would be noise on each annotation: the
//! OpenStack fault body of every error status, the 401 of every
//! authenticated route, the microversion header of the compute and volume
//! routes, the trailing-slash and project-less copies of a path.

pub mod schemas;

use axum::Json;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// One OpenAPI document, by the URL prefix it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Identity v3, `/identity`.
    Identity,
    /// Compute v2.1, `/compute`.
    Compute,
    /// Image v2, `/image`.
    Image,
    /// Block Storage v3, `/volume`.
    Volume,
    /// Stratus's own admin endpoints, `/stratus`.
    Stratus,
}

impl Api {
    /// Every document.
    pub const ALL: [Api; 5] = [Api::Identity, Api::Compute, Api::Image, Api::Volume, Api::Stratus];

    /// The URL prefix of the API (`/identity`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            Api::Identity => "/identity",
            Api::Compute => "/compute",
            Api::Image => "/image",
            Api::Volume => "/volume",
            Api::Stratus => "/stratus",
        }
    }

    /// The API whose document covers `path`.
    pub fn of_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| path == a.prefix() || path.starts_with(&format!("{}/", a.prefix())))
    }

    /// Routes answered without a token, as OpenStack serves them: version
    /// discovery, token issue, Glance's schemas, the OpenAPI documents.
    fn is_public(method: &str, path: &str) -> bool {
        const GETS: &[&str] = &[
            "/identity",
            "/identity/",
            "/identity/v3",
            "/identity/v3/",
            "/compute",
            "/compute/",
            "/compute/v2",
            "/compute/v2/",
            "/compute/v2.1",
            "/compute/v2.1/",
            "/image",
            "/image/",
            "/image/versions",
            "/image/v2",
            "/image/v2/",
            "/image/v2/schemas/image",
            "/image/v2/schemas/images",
            "/image/v2/schemas/member",
            "/image/v2/schemas/members",
            "/image/v2/schemas/metadefs/{name}",
            "/volume",
            "/volume/",
            "/volume/v3",
            "/volume/v3/",
        ];
        (method == "get" && (GETS.contains(&path) || path.ends_with("/openapi.json")))
            || (method == "post" && path == "/identity/v3/auth/tokens")
    }

    /// The generated document, before [`finish`].
    fn generated(self) -> utoipa::openapi::OpenApi {
        match self {
            Api::Identity => crate::identity::IdentityDoc::openapi(),
            Api::Compute => crate::compute::ComputeDoc::openapi(),
            Api::Image => {
                let mut doc = crate::image::ImageDoc::openapi();
                doc.merge(crate::image::metadefs::MetadefsDoc::openapi());
                doc
            }
            Api::Volume => crate::volume::VolumeDoc::openapi(),
            Api::Stratus => crate::admin::AdminDoc::openapi(),
        }
    }

    /// The finished document, as served.
    pub fn document(self) -> Value {
        let mut doc = serde_json::to_value(self.generated()).unwrap_or_else(|_| json!({}));
        finish(self, &mut doc);
        doc
    }
}

/// `GET /compute/openapi.json`.
#[utoipa::path(get, path = "/compute/openapi.json", tag = "openapi", responses((status = 200, description = "This document", body = schemas::OpenApiDocument)))]
pub async fn compute_openapi() -> Json<Value> {
    Json(Api::Compute.document())
}

/// `GET /identity/openapi.json`.
#[utoipa::path(get, path = "/identity/openapi.json", tag = "openapi", responses((status = 200, description = "This document", body = schemas::OpenApiDocument)))]
pub async fn identity_openapi() -> Json<Value> {
    Json(Api::Identity.document())
}

/// `GET /image/openapi.json`.
#[utoipa::path(get, path = "/image/openapi.json", tag = "openapi", responses((status = 200, description = "This document", body = schemas::OpenApiDocument)))]
pub async fn image_openapi() -> Json<Value> {
    Json(Api::Image.document())
}

/// `GET /volume/openapi.json`.
#[utoipa::path(get, path = "/volume/openapi.json", tag = "openapi", responses((status = 200, description = "This document", body = schemas::OpenApiDocument)))]
pub async fn volume_openapi() -> Json<Value> {
    Json(Api::Volume.document())
}

/// `GET /stratus/openapi.json`.
#[utoipa::path(get, path = "/stratus/openapi.json", tag = "openapi", responses((status = 200, description = "This document", body = schemas::OpenApiDocument)))]
pub async fn stratus_openapi() -> Json<Value> {
    Json(Api::Stratus.document())
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every operation of a document: (path, method, operation).
fn operations(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, op) in item.iter_mut() {
                    if let (true, Some(op)) = (METHODS.contains(&method.as_str()), op.as_object_mut()) {
                        out.push((path.clone(), method.clone(), op));
                    }
                }
            }
        }
    }
    out
}

/// Copy the path item at `from` to `to`, with distinct operation ids
/// (`<id>_<suffix>`) and without the path parameters `drop`.
fn copy_path(doc: &mut Value, from: &str, to: &str, suffix: &str, drop: &[&str]) {
    let Some(mut item) = doc.pointer(&format!("/paths/{}", from.replace('~', "~0").replace('/', "~1"))).cloned() else {
        return;
    };
    if let Some(item) = item.as_object_mut() {
        for (_, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            if let Some(Value::String(id)) = op.get_mut("operationId") {
                id.push('_');
                id.push_str(suffix);
            }
            if let Some(Value::Array(params)) = op.get_mut("parameters") {
                params.retain(|p| !(p["in"] == "path" && drop.iter().any(|d| p["name"] == *d)));
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.insert(to.to_string(), item);
    }
}

/// The JSON body of an error status: Keystone's `{"error": {...}}` on
/// Identity, a Nova/Cinder fault elsewhere, each with the exact key, code
/// and title the server writes for that status.
fn fault_schema(api: Api, status: u16) -> Value {
    let detail = |mut props: Map<String, Value>| {
        props.insert("code".into(), json!({"type": "integer", "const": status}));
        props.insert("message".into(), json!({"type": "string"}));
        let required: Vec<&String> = props.keys().collect();
        json!({"type": "object", "required": required, "properties": props})
    };
    if api == Api::Identity {
        let mut props = Map::new();
        props.insert("title".into(), json!({"type": "string", "const": stratus_api::keystone_title(status)}));
        json!({"type": "object", "required": ["error"], "properties": {"error": detail(props)}})
    } else {
        let key = stratus_api::nova_fault_name(status);
        json!({"type": "object", "required": [key], "additionalProperties": false, "properties": {key: detail(Map::new())}})
    }
}

/// The `OpenStack-API-Version` values a document lists for the routes that
/// negotiate a microversion (the compute v2.1 routes, the Block Storage
/// routes under `/volume/v3/` other than its version document).
fn microversions(api: Api, path: &str) -> Option<Vec<String>> {
    match api {
        Api::Compute if path.starts_with("/compute/v2.1") => {
            let mut v: Vec<String> = (1..=stratus_api::MAX_COMPUTE.minor).map(|m| format!("compute 2.{m}")).collect();
            v.push("compute latest".into());
            Some(v)
        }
        Api::Volume if path.starts_with("/volume/v3/") && path != "/volume/v3/" => {
            use stratus_api::volume::{MAX_MINOR, MV_ATTACH_COMPLETE, MV_ATTACHMENTS};
            let mut v: Vec<String> =
                [0, MV_ATTACHMENTS, MV_ATTACH_COMPLETE, MAX_MINOR].iter().map(|m| format!("volume 3.{m}")).collect();
            v.push("volume latest".into());
            Some(v)
        }
        _ => None,
    }
}

/// Add a response for `status` unless the operation declares one.
fn ensure_response(op: &mut Map<String, Value>, status: u16, description: &str) {
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    if let Some(r) = responses.as_object_mut() {
        r.entry(status.to_string()).or_insert_with(|| json!({"description": description}));
    }
}

/// Add what every route has in common to the generated document; see the
/// module doc.
fn finish(api: Api, doc: &mut Value) {
    let paths: Vec<String> =
        doc.get("paths").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for p in &paths {
        // Version documents answer with and without the trailing slash.
        let bare = [
            "/identity",
            "/identity/v3",
            "/compute",
            "/compute/v2",
            "/compute/v2.1",
            "/image",
            "/image/v2",
            "/volume",
            "/volume/v3",
        ];
        if bare.contains(&p.as_str()) {
            copy_path(doc, p, &format!("{p}/"), "slash", &[]);
        }
        if p == "/image/v2" {
            copy_path(doc, p, "/image/versions", "versions", &[]);
        }
        // Every Block Storage route exists without the project too (Cinder 3.67+).
        if let Some(rest) = p.strip_prefix("/volume/v3/{project_id}/") {
            copy_path(doc, p, &format!("/volume/v3/{rest}"), "no_project", &["project_id"]);
        }
    }
    for (path, method, op) in operations(doc) {
        if let Some(values) = microversions(api, &path) {
            let header = json!({
                "name": "OpenStack-API-Version",
                "in": "header",
                "required": false,
                "description": "Microversion; absent is the minimum. Malformed: 400; out of range: 406.",
                "schema": {"type": "string", "enum": values},
            });
            if let Value::Array(params) = op.entry("parameters").or_insert_with(|| json!([])) {
                params.push(header);
            }
            ensure_response(op, 400, "Malformed microversion or request");
            ensure_response(op, 406, "Unsupported microversion");
        }
        if !Api::is_public(&method, &path) {
            ensure_response(op, 401, "No valid token");
        }
        // Another project in a Block Storage URL is refused (admins excepted).
        if path.contains("{project_id}") {
            ensure_response(op, 403, "Another project in the URL, not admin");
        }
        // Every error status has its fault body.
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for (status, resp) in responses.iter_mut() {
                let Ok(code) = status.parse::<u16>() else { continue };
                if (400..600).contains(&code)
                    && let Some(r) = resp.as_object_mut()
                {
                    r.insert("content".into(), json!({"application/json": {"schema": fault_schema(api, code)}}));
                }
            }
        }
    }
    schemas::resolve(doc);
}

#[cfg(test)]
mod tests;
