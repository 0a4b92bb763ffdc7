//! Keystone Identity v3, as much of it as the stock OpenStack clients
//! (python-openstackclient, keystoneauth, openstacksdk) need.
//!
//! Stratus has one domain (`default`), flat projects, users, three roles
//! (`admin`, `member`, `reader`) and direct user-on-project role
//! assignments; no groups, no domain or system scope, no hierarchy. The
//! service catalog is fixed: it is derived from the public URL, so endpoint
//! ids are stable across restarts and processes.
//!
//! Policy: anyone may ask for a token; every other call needs a valid
//! `X-Auth-Token`. Admins (the `admin` role on their scoped project) may do
//! everything; other callers may read their own token, user, scoped project,
//! the projects they have roles on, the domain and the regions, and revoke
//! their own tokens. Nobody else changes anything.

use crate::AppState;
use crate::error::{ApiError, IdentityError, parse_json};
use crate::middleware::Auth;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use stratus_auth::{AuthContext, AuthError, IssuedToken, ProjectScope};
use stratus_db::{DbError, ProjectRow, RoleRow, UserRow};

/// The only domain.
const DEFAULT_DOMAIN_ID: &str = "default";
/// Its name.
const DEFAULT_DOMAIN_NAME: &str = "Default";
/// The only region.
const REGION: &str = "RegionOne";
/// The Identity API version advertised (the one clients negotiate against).
const API_VERSION: &str = "v3.14";
/// When that version was last updated, as Keystone reports it.
const API_UPDATED: &str = "2020-04-07T00:00:00Z";
/// Endpoint interfaces listed for every service.
const INTERFACES: [&str; 3] = ["public", "internal", "admin"];
/// Header carrying the token being issued, validated or revoked.
const SUBJECT_TOKEN: &str = "x-subject-token";

type IdResult<T> = Result<T, IdentityError>;

/// One service of the fixed catalog.
struct ServiceDef {
    /// Service type (`compute`, ...).
    kind: &'static str,
    /// Service name (`nova`, ...).
    name: &'static str,
    /// Path below the public URL.
    path: &'static str,
    /// Whether the URL ends in the project id (Cinder's v3 endpoints do).
    per_project: bool,
}

/// The catalog every token carries.
const SERVICES: [ServiceDef; 5] = [
    ServiceDef { kind: "identity", name: "keystone", path: "/identity", per_project: false },
    ServiceDef { kind: "compute", name: "nova", path: "/compute/v2.1", per_project: false },
    ServiceDef { kind: "image", name: "glance", path: "/image", per_project: false },
    ServiceDef { kind: "volumev3", name: "cinderv3", path: "/volume/v3", per_project: true },
    ServiceDef { kind: "block-storage", name: "cinder", path: "/volume/v3", per_project: true },
];

/// Routes of the Identity v3 API, under `/identity`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/identity", get(versions))
        .route("/identity/", get(versions))
        .route("/identity/v3", get(version))
        .route("/identity/v3/", get(version))
        .route("/identity/v3/auth/tokens", get(validate_token).post(issue_token).delete(revoke_token))
        .route("/identity/v3/auth/projects", get(auth_projects))
        .route("/identity/v3/auth/catalog", get(auth_catalog))
        .route("/identity/v3/projects", get(list_projects).post(create_project))
        .route("/identity/v3/projects/{project_id}", get(get_project).patch(update_project).delete(delete_project))
        .route("/identity/v3/projects/{project_id}/users/{user_id}/roles", get(list_grants))
        .route(
            "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
            get(check_grant).put(put_grant).delete(delete_grant),
        )
        .route("/identity/v3/users", get(list_users).post(create_user))
        .route("/identity/v3/users/{user_id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/identity/v3/users/{user_id}/projects", get(user_projects))
        .route("/identity/v3/roles", get(list_roles))
        .route("/identity/v3/roles/{role_id}", get(get_role))
        .route("/identity/v3/role_assignments", get(list_role_assignments))
        .route("/identity/v3/domains", get(list_domains))
        .route("/identity/v3/domains/{domain_id}", get(get_domain))
        .route("/identity/v3/services", get(list_services))
        .route("/identity/v3/services/{service_id}", get(get_service))
        .route("/identity/v3/endpoints", get(list_endpoints))
        .route("/identity/v3/endpoints/{endpoint_id}", get(get_endpoint))
        .route("/identity/v3/regions", get(list_regions))
        .route("/identity/v3/regions/{region_id}", get(get_region))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Extractors with Keystone-style rejections.

/// The authenticated caller; like [`Auth`] but rejects with a Keystone body.
struct Caller(AuthContext);

impl FromRequestParts<AppState> for Caller {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Auth(ctx) = Auth::from_request_parts(parts, state).await?;
        Ok(Self(ctx))
    }
}

/// Query parameters as a map (`?nocatalog` gives `nocatalog => ""`).
struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) =
            Query::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(ApiError::from)?;
        Ok(Self(q))
    }
}

/// Path parameters, rejected with a Keystone body.
struct Ids<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(t) = Path::<T>::from_request_parts(parts, state).await.map_err(ApiError::from)?;
        Ok(Self(t))
    }
}

async fn method_not_allowed() -> IdentityError {
    ApiError::MethodNotAllowed("The method is not allowed for the requested URL.".into()).into()
}

// ---------------------------------------------------------------------------
// Small helpers.

fn bad(msg: impl Into<String>) -> IdentityError {
    ApiError::BadRequest(msg.into()).into()
}

fn unauthorized() -> IdentityError {
    ApiError::Unauthorized.into()
}

fn not_found(kind: &str, id: &str) -> IdentityError {
    ApiError::NotFound(format!("Could not find {kind}: {id}.")).into()
}

fn forbidden(action: &str) -> IdentityError {
    ApiError::Forbidden(format!("You are not authorized to perform the requested action: identity:{action}.")).into()
}

fn require_admin(ctx: &AuthContext, action: &str) -> IdResult<()> {
    if ctx.is_admin() { Ok(()) } else { Err(forbidden(action)) }
}

/// Keystone's timestamp form: UTC, microseconds, `Z`.
fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Keystone's reading of a boolean query parameter: anything but `0`/`false` is true.
fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// `<public>/identity/v3`, the base of every link.
fn v3(st: &AppState) -> String {
    format!("{}/identity/v3", st.public_url)
}

fn list_links(url: String) -> Value {
    json!({ "self": url, "previous": null, "next": null })
}

fn default_domain_ref() -> Value {
    json!({ "id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME })
}

/// Set `key` on a JSON object (no-op on anything else).
fn put(v: &mut Value, key: &str, val: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.into(), val);
    }
}

/// The `{"<key>": {...}}` wrapper of create and update bodies.
fn wrapped(body: &[u8], key: &str) -> IdResult<Map<String, Value>> {
    let v: Value = parse_json(body)?;
    match v.get(key) {
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(bad(format!("Invalid input for field '{key}': expected an object."))),
        None => Err(bad(format!("Expecting to find {key} in request body."))),
    }
}

/// Decode the wrapped object into a typed request.
fn typed<T: DeserializeOwned>(obj: Map<String, Value>, key: &str) -> IdResult<T> {
    serde_json::from_value(Value::Object(obj)).map_err(|e| bad(format!("Invalid input for {key}: {e}")))
}

/// A non-empty trimmed name of at most `max` characters.
fn valid_name(name: Option<String>, kind: &str, max: usize) -> IdResult<String> {
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err(bad(format!("Expecting to find name in {kind}.")));
    }
    if name.chars().count() > max {
        return Err(bad(format!("Invalid input for field 'name': the {kind} name is longer than {max} characters.")));
    }
    Ok(name)
}

/// Only the default domain exists; anything else is a client error.
fn check_domain_id(domain_id: Option<&str>) -> IdResult<()> {
    match domain_id {
        None | Some(DEFAULT_DOMAIN_ID) => Ok(()),
        Some(other) => Err(bad(format!("Could not find domain: {other}. Only the 'default' domain exists."))),
    }
}

/// Is a `{"id": ..}` / `{"name": ..}` domain reference the default domain?
fn domain_is_default(d: &Value) -> IdResult<bool> {
    let o = d.as_object().ok_or_else(|| bad("Invalid input for field 'domain': expected an object."))?;
    if let Some(id) = o.get("id").filter(|v| !v.is_null()) {
        return Ok(id.as_str() == Some(DEFAULT_DOMAIN_ID));
    }
    if let Some(name) = o.get("name").filter(|v| !v.is_null()) {
        return Ok(name.as_str().is_some_and(|n| n.eq_ignore_ascii_case(DEFAULT_DOMAIN_NAME)));
    }
    Err(bad("Expecting to find id or name in domain."))
}

/// Does a stored value (`current`, `None` when not stored) already equal the requested one?
/// Null, `""`, `[]` and `{}` all count as "nothing".
fn unchanged(current: Option<&Value>, new: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    match current {
        Some(c) => c == new || (empty(c) && empty(new)),
        None => empty(new),
    }
}

/// Hash a password off the async threads (argon2 is deliberately slow).
async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || stratus_auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task failed: {e}")))?
        .map_err(ApiError::from)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn find_project(st: &AppState, id: &str) -> IdResult<ProjectRow> {
    match st.ds.project_get(id).await {
        Ok(p) => Ok(p),
        Err(DbError::NotFound(_)) => Err(not_found("project", id)),
        Err(e) => Err(e.into()),
    }
}

/// A user by exact id (the datastore also matches names; the API must not).
async fn find_user(st: &AppState, id: &str) -> IdResult<UserRow> {
    match st.ds.user_find(id).await {
        Ok(u) if u.id == id => Ok(u),
        Ok(_) | Err(DbError::NotFound(_)) => Err(not_found("user", id)),
        Err(e) => Err(e.into()),
    }
}

/// A role by exact id.
async fn find_role(st: &AppState, id: &str) -> IdResult<RoleRow> {
    match st.ds.role_find(id).await {
        Ok(r) if r.id == id => Ok(r),
        Ok(_) | Err(DbError::NotFound(_)) => Err(not_found("role", id)),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// JSON representations.

fn version_object(public_url: &str) -> Value {
    json!({
        "id": API_VERSION,
        "status": "stable",
        "updated": API_UPDATED,
        "links": [{ "rel": "self", "href": format!("{public_url}/identity/v3/") }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    })
}

fn domain_json(st: &AppState) -> Value {
    json!({
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "",
        "enabled": true,
        "tags": [],
        "options": {},
        "links": { "self": format!("{}/domains/{DEFAULT_DOMAIN_ID}", v3(st)) },
    })
}

fn project_json(st: &AppState, p: &ProjectRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "is_domain": false,
        "parent_id": p.domain_id,
        "tags": [],
        "options": {},
        "links": { "self": format!("{}/projects/{}", v3(st), p.id) },
    })
}

fn user_json(st: &AppState, u: &UserRow) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": null,
        "options": {},
        "links": { "self": format!("{}/users/{}", v3(st), u.id) },
    });
    if let Some(e) = &u.email {
        put(&mut v, "email", json!(e));
    }
    if let Some(p) = &u.default_project_id {
        put(&mut v, "default_project_id", json!(p));
    }
    v
}

fn role_json(st: &AppState, id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "domain_id": null,
        "description": null,
        "options": {},
        "links": { "self": format!("{}/roles/{id}", v3(st)) },
    })
}

/// Deterministic 32-hex-digit id from labels (catalog ids must not change between processes).
fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(32);
    s
}

fn service_id(kind: &str) -> String {
    stable_id(&["stratus-service", kind])
}

fn endpoint_id(kind: &str, interface: &str) -> String {
    stable_id(&["stratus-endpoint", kind, interface])
}

fn service_url(public_url: &str, s: &ServiceDef, project_id: &str) -> String {
    if s.per_project { format!("{public_url}{}/{project_id}", s.path) } else { format!("{public_url}{}", s.path) }
}

/// The service catalog of a token scoped to `project_id`: Identity, Compute,
/// Image and Block Storage (as both `volumev3` and `block-storage`), each with
/// public, internal and admin endpoints at the public URL. Ids are derived
/// from service type and interface, so they are the same in every token.
pub fn catalog(public_url: &str, project_id: &str) -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            let url = service_url(public_url, s, project_id);
            let endpoints: Vec<Value> = INTERFACES
                .iter()
                .map(|i| {
                    json!({
                        "id": endpoint_id(s.kind, i),
                        "interface": i,
                        "region": REGION,
                        "region_id": REGION,
                        "url": url,
                    })
                })
                .collect();
            json!({ "id": service_id(s.kind), "type": s.kind, "name": s.name, "endpoints": endpoints })
        })
        .collect();
    Value::Array(services)
}

fn token_json(st: &AppState, ctx: &AuthContext, methods: &[&str], with_catalog: bool) -> Value {
    let roles: Vec<Value> =
        ctx.role_ids.iter().zip(&ctx.roles).map(|(id, name)| json!({ "id": id, "name": name })).collect();
    let mut token = json!({
        "methods": methods,
        "user": {
            "domain": default_domain_ref(),
            "id": ctx.user_id,
            "name": ctx.user_name,
            "password_expires_at": null,
        },
        "audit_ids": [ctx.audit_id],
        "expires_at": iso(ctx.expires_at),
        "issued_at": iso(ctx.issued_at),
        "project": { "domain": default_domain_ref(), "id": ctx.project_id, "name": ctx.project_name },
        "is_domain": false,
        "roles": roles,
    });
    if with_catalog {
        put(&mut token, "catalog", catalog(&st.public_url, &ctx.project_id));
    }
    json!({ "token": token })
}

fn with_subject(status: StatusCode, token: &str, body: Value) -> IdResult<Response> {
    let v = HeaderValue::from_str(token)
        .map_err(|e| ApiError::Internal(format!("token is not a valid header value: {e}")))?;
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(SUBJECT_TOKEN, v);
    Ok(resp)
}

// ---------------------------------------------------------------------------
// Version discovery.

/// `GET /identity`: the version list (300 Multiple Choices, as Keystone).
async fn versions(State(st): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({ "versions": { "values": [version_object(&st.public_url)] } })))
        .into_response()
}

/// `GET /identity/v3`: this version.
async fn version(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "version": version_object(&st.public_url) }))
}

// ---------------------------------------------------------------------------
// Tokens.

#[derive(Deserialize)]
struct AuthRequest {
    auth: AuthBody,
}

#[derive(Deserialize)]
struct AuthBody {
    identity: IdentityBody,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct IdentityBody {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
}

#[derive(Deserialize)]
struct PasswordMethod {
    user: PasswordUser,
}

#[derive(Deserialize)]
struct PasswordUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<Value>,
    password: String,
}

#[derive(Deserialize)]
struct TokenMethod {
    id: String,
}

/// Read the `scope` of an auth request. Domain, system and trust scopes do
/// not exist here and fail like a scope the user has no role on (401).
fn parse_scope(scope: Option<&Value>) -> IdResult<ProjectScope> {
    let m = match scope {
        None | Some(Value::Null) => return Ok(ProjectScope::Default),
        Some(Value::String(s)) if s == "unscoped" => return Ok(ProjectScope::Default),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("Invalid input for field 'scope': expected an object.")),
    };
    if let Some(p) = m.get("project") {
        let p = p.as_object().ok_or_else(|| bad("Invalid input for field 'scope.project': expected an object."))?;
        if let Some(id) = p.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Ok(ProjectScope::Id(id.into()));
        }
        if let Some(name) = p.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if let Some(d) = p.get("domain")
                && !domain_is_default(d)?
            {
                return Err(unauthorized());
            }
            return Ok(ProjectScope::Name(name.into()));
        }
        return Err(bad("Expecting to find id or name in project."));
    }
    if m.contains_key("domain") || m.contains_key("system") || m.contains_key("OS-TRUST:trust") {
        return Err(unauthorized());
    }
    if m.is_empty() {
        return Ok(ProjectScope::Default);
    }
    Err(bad("Invalid input for field 'scope': only project scope is supported."))
}

/// Map errors of re-issuing to 401: a vanished user or project is bad credentials, not a 404.
fn reissue_error(e: AuthError) -> IdentityError {
    match e {
        AuthError::Db(DbError::NotFound(_)) => unauthorized(),
        e => e.into(),
    }
}

/// `POST /auth/tokens`: password or token authentication, project scoped.
async fn issue_token(State(st): State<AppState>, Params(q): Params, body: Bytes) -> IdResult<Response> {
    let req: AuthRequest = parse_json(&body)?;
    let scope = parse_scope(req.auth.scope.as_ref())?;
    let ident = req.auth.identity;
    let has = |m: &str| ident.methods.iter().any(|x| x == m);
    let (issued, method): (IssuedToken, &str) = if has("password") {
        let user = ident.password.ok_or_else(|| bad("Expecting to find password in identity."))?.user;
        let login = match (user.id.filter(|s| !s.is_empty()), user.name.filter(|s| !s.is_empty())) {
            (Some(id), _) => id,
            (None, Some(name)) => {
                if let Some(d) = &user.domain
                    && !domain_is_default(d)?
                {
                    return Err(unauthorized());
                }
                name
            }
            (None, None) => return Err(bad("Expecting to find id or name in user.")),
        };
        (st.identity.authenticate(&login, &user.password, scope).await?, "password")
    } else if has("token") {
        let t = ident.token.ok_or_else(|| bad("Expecting to find token in identity."))?;
        let mut ctx = st.identity.validate(&t.id).await?;
        let target = match scope {
            ProjectScope::Default => None,
            ProjectScope::Id(id) => Some(st.ds.project_get(&id).await),
            ProjectScope::Name(n) => Some(st.ds.project_find(&n).await),
        };
        if let Some(target) = target {
            let p = match target {
                Ok(p) => p,
                Err(DbError::NotFound(_)) => return Err(unauthorized()),
                Err(e) => return Err(e.into()),
            };
            if !p.enabled {
                return Err(unauthorized());
            }
            ctx.project_id = p.id;
            ctx.project_name = p.name;
        }
        (st.identity.reissue(&ctx).await.map_err(reissue_error)?, "token")
    } else if ident.methods.is_empty() {
        return Err(bad("Expecting to find methods in identity."));
    } else {
        return Err(unauthorized());
    };
    let body = token_json(&st, &issued.context, &[method], !q.contains_key("nocatalog"));
    with_subject(StatusCode::CREATED, &issued.token, body)
}

/// Resolve `X-Subject-Token`: 404 when invalid, 403 when it belongs to
/// another user and the caller is not an admin.
async fn subject(st: &AppState, caller: &AuthContext, headers: &HeaderMap) -> IdResult<(String, AuthContext)> {
    let token = headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("Expecting to find X-Subject-Token in request headers."))?;
    let ctx = match st.identity.validate(token).await {
        Ok(ctx) => ctx,
        Err(AuthError::InvalidToken) => {
            return Err(ApiError::NotFound("Failed to validate token".into()).into());
        }
        Err(e) => return Err(e.into()),
    };
    if !caller.is_admin() && ctx.user_id != caller.user_id {
        return Err(forbidden("validate_token"));
    }
    Ok((token.to_string(), ctx))
}

/// `GET`/`HEAD /auth/tokens`: validate the subject token.
async fn validate_token(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
    headers: HeaderMap,
) -> IdResult<Response> {
    let (token, ctx) = subject(&st, &caller, &headers).await?;
    let body = token_json(&st, &ctx, &["password"], !q.contains_key("nocatalog"));
    with_subject(StatusCode::OK, &token, body)
}

/// `DELETE /auth/tokens`: revoke the subject token (one's own, or any for admins).
async fn revoke_token(State(st): State<AppState>, Caller(caller): Caller, headers: HeaderMap) -> IdResult<StatusCode> {
    let (token, _) = subject(&st, &caller, &headers).await?;
    match st.identity.revoke(&token).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(AuthError::InvalidToken) => Err(ApiError::NotFound("Failed to validate token".into()).into()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /auth/catalog`: the caller's catalog.
async fn auth_catalog(State(st): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    Json(json!({
        "catalog": catalog(&st.public_url, &caller.project_id),
        "links": list_links(format!("{}/auth/catalog", v3(&st))),
    }))
}

/// Projects on which `user_id` has any role, by name.
async fn projects_of(st: &AppState, user_id: &str) -> IdResult<Vec<Value>> {
    let ids: HashSet<String> =
        st.ds.assignment_list(Some(user_id), None).await?.into_iter().map(|a| a.project_id).collect();
    Ok(st.ds.project_list().await?.iter().filter(|p| ids.contains(&p.id)).map(|p| project_json(st, p)).collect())
}

/// `GET /auth/projects`: the projects the caller may scope to.
async fn auth_projects(State(st): State<AppState>, Caller(caller): Caller) -> IdResult<Json<Value>> {
    let projects = projects_of(&st, &caller.user_id).await?;
    Ok(Json(json!({ "projects": projects, "links": list_links(format!("{}/auth/projects", v3(&st))) })))
}

// ---------------------------------------------------------------------------
// Projects.

/// `GET /projects` (admin), filters `name`, `domain_id`, `enabled`, `parent_id`, `is_domain`.
async fn list_projects(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_projects")?;
    let none = q.get("domain_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID)
        || q.get("parent_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID)
        || q.get("is_domain").is_some_and(|v| query_bool(v));
    let projects: Vec<Value> = if none {
        Vec::new()
    } else {
        st.ds
            .project_list()
            .await?
            .iter()
            .filter(|p| q.get("name").is_none_or(|n| *n == p.name))
            .filter(|p| q.get("enabled").is_none_or(|e| query_bool(e) == p.enabled))
            .map(|p| project_json(&st, p))
            .collect()
    };
    Ok(Json(json!({ "projects": projects, "links": list_links(format!("{}/projects", v3(&st))) })))
}

#[derive(Deserialize)]
struct ProjectCreate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    is_domain: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `POST /projects` (admin). Flat projects in the default domain only; tags are not stored.
async fn create_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    require_admin(&caller, "create_project")?;
    let req: ProjectCreate = typed(wrapped(&body, "project")?, "project")?;
    let name = valid_name(req.name, "project", 64)?;
    check_domain_id(req.domain_id.as_deref())?;
    if req.is_domain == Some(true) {
        return Err(bad("Projects acting as domains are not supported."));
    }
    if req.parent_id.as_deref().is_some_and(|p| p != DEFAULT_DOMAIN_ID) {
        return Err(bad("Hierarchical projects are not supported: parent_id must be the domain."));
    }
    if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(bad("Project tags are not supported."));
    }
    let p = ProjectRow {
        id: new_id(),
        name,
        domain_id: DEFAULT_DOMAIN_ID.into(),
        description: req.description.unwrap_or_default(),
        enabled: req.enabled.unwrap_or(true),
    };
    st.ds.project_create(&p).await?;
    Ok((StatusCode::CREATED, Json(json!({ "project": project_json(&st, &p) }))))
}

/// `GET /projects/{id}`: admins, or a caller whose token is scoped to it.
async fn get_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    if !caller.is_admin() && caller.project_id != id {
        return Err(forbidden("get_project"));
    }
    let p = find_project(&st, &id).await?;
    Ok(Json(json!({ "project": project_json(&st, &p) })))
}

/// `PATCH /projects/{id}` (admin).
///
/// The datastore has no way to change a project, so this accepts only
/// fields that already have the requested value (clients often resend
/// them) and answers 400 naming the fields that would change.
async fn update_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
    body: Bytes,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "update_project")?;
    let req = wrapped(&body, "project")?;
    let p = find_project(&st, &id).await?;
    let current = project_json(&st, &p);
    let changed: Vec<&str> =
        ["name", "description", "enabled", "domain_id", "parent_id", "is_domain", "tags", "options"]
            .into_iter()
            .filter(|k| req.get(*k).is_some_and(|v| !unchanged(current.get(*k), v)))
            .collect();
    if !changed.is_empty() {
        return Err(bad(format!("Updating project attribute(s) {} is not supported by Stratus.", changed.join(", "))));
    }
    Ok(Json(json!({ "project": current })))
}

/// `DELETE /projects/{id}` (admin); its role assignments go with it.
async fn delete_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<StatusCode> {
    require_admin(&caller, "delete_project")?;
    match st.ds.project_delete(&id).await {
        Ok(()) => {}
        Err(DbError::NotFound(_)) => return Err(not_found("project", &id)),
        Err(e) => return Err(e.into()),
    }
    st.identity.flush_cache();
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Users.

/// `GET /users` (admin), filters `name`, `domain_id`, `enabled`.
async fn list_users(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_users")?;
    let users: Vec<Value> = if q.get("domain_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID) {
        Vec::new()
    } else {
        st.ds
            .user_list()
            .await?
            .iter()
            .filter(|u| q.get("name").is_none_or(|n| *n == u.name))
            .filter(|u| q.get("enabled").is_none_or(|e| query_bool(e) == u.enabled))
            .map(|u| user_json(&st, u))
            .collect()
    };
    Ok(Json(json!({ "users": users, "links": list_links(format!("{}/users", v3(&st))) })))
}

#[derive(Deserialize)]
struct UserCreate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    default_project_id: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    email: Option<String>,
}

/// `POST /users` (admin). A user created without a password gets a random
/// one nobody knows (it cannot log in until an admin sets one). `description`
/// is accepted but not stored: the datastore has no column for it.
async fn create_user(
    State(st): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    require_admin(&caller, "create_user")?;
    let req: UserCreate = typed(wrapped(&body, "user")?, "user")?;
    let name = valid_name(req.name, "user", 255)?;
    check_domain_id(req.domain_id.as_deref())?;
    let default_project_id = match req.default_project_id.filter(|p| !p.is_empty()) {
        Some(p) => match st.ds.project_get(&p).await {
            Ok(p) => Some(p.id),
            Err(DbError::NotFound(_)) => return Err(bad(format!("Could not find project: {p}."))),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let password = match req.password {
        Some(p) if p.is_empty() => {
            return Err(bad("Invalid input for field 'password': it must not be empty."));
        }
        Some(p) => p,
        None => stratus_auth::random_secret(),
    };
    let u = UserRow {
        id: new_id(),
        name,
        domain_id: DEFAULT_DOMAIN_ID.into(),
        password_hash: hash(password).await?,
        email: req.email.filter(|e| !e.is_empty()),
        default_project_id,
        enabled: req.enabled.unwrap_or(true),
    };
    st.ds.user_create(&u).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": user_json(&st, &u) }))))
}

/// `GET /users/{id}`: admins, or the user itself.
async fn get_user(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    if !caller.is_admin() && caller.user_id != id {
        return Err(forbidden("get_user"));
    }
    let u = find_user(&st, &id).await?;
    Ok(Json(json!({ "user": user_json(&st, &u) })))
}

/// `PATCH /users/{id}` (admin).
///
/// Only the password can be changed: the datastore has no way to update
/// name, enabled, email, default project or description. Those fields are
/// accepted when they already have the requested value and refused with
/// 400 otherwise, before anything is written. Existing tokens of the user
/// stay valid after a password change (there is no per-user revocation).
async fn update_user(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
    body: Bytes,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "update_user")?;
    let req = wrapped(&body, "user")?;
    let u = find_user(&st, &id).await?;
    let current = user_json(&st, &u);
    let changed: Vec<&str> = ["name", "enabled", "email", "default_project_id", "domain_id", "description"]
        .into_iter()
        .filter(|k| req.get(*k).is_some_and(|v| !unchanged(current.get(*k), v)))
        .collect();
    if !changed.is_empty() {
        return Err(bad(format!(
            "Updating user attribute(s) {} is not supported by Stratus; only the password can be changed.",
            changed.join(", ")
        )));
    }
    if let Some(pw) = req.get("password") {
        let pw = pw
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("Invalid input for field 'password': expected a non-empty string."))?;
        let h = hash(pw.to_string()).await?;
        st.ds.user_set_password(&u.id, &h).await?;
        st.identity.flush_cache();
    }
    Ok(Json(json!({ "user": current })))
}

/// `DELETE /users/{id}` (admin); its assignments and tokens go with it.
async fn delete_user(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<StatusCode> {
    require_admin(&caller, "delete_user")?;
    let u = find_user(&st, &id).await?;
    match st.ds.user_delete(&u.id).await {
        Ok(()) => {}
        Err(DbError::NotFound(_)) => return Err(not_found("user", &id)),
        Err(e) => return Err(e.into()),
    }
    st.identity.flush_cache();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{id}/projects`: the user itself, or admins.
async fn user_projects(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    if !caller.is_admin() && caller.user_id != id {
        return Err(forbidden("list_user_projects"));
    }
    let u = find_user(&st, &id).await?;
    let projects = projects_of(&st, &u.id).await?;
    Ok(Json(json!({ "projects": projects, "links": list_links(format!("{}/users/{}/projects", v3(&st), u.id)) })))
}

// ---------------------------------------------------------------------------
// Roles and assignments.

/// `GET /roles` (admin), filter `name`.
async fn list_roles(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_roles")?;
    let roles: Vec<Value> = st
        .ds
        .role_list()
        .await?
        .iter()
        .filter(|r| q.get("name").is_none_or(|n| *n == r.name))
        .map(|r| role_json(&st, &r.id, &r.name))
        .collect();
    Ok(Json(json!({ "roles": roles, "links": list_links(format!("{}/roles", v3(&st))) })))
}

/// `GET /roles/{id}` (admin).
async fn get_role(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    require_admin(&caller, "get_role")?;
    let r = find_role(&st, &id).await?;
    Ok(Json(json!({ "role": role_json(&st, &r.id, &r.name) })))
}

/// Resolve the three ids of a grant URL, 404 naming the first unknown one.
async fn grant_parts(st: &AppState, p: &str, u: &str, r: &str) -> IdResult<(ProjectRow, UserRow, RoleRow)> {
    let p = find_project(st, p).await?;
    let u = find_user(st, u).await?;
    let r = find_role(st, r).await?;
    Ok((p, u, r))
}

/// `GET`/`HEAD /projects/{p}/users/{u}/roles/{r}` (admin): 204 if granted, else 404.
async fn check_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    require_admin(&caller, "check_grant")?;
    let (p, u, r) = grant_parts(&st, &p, &u, &r).await?;
    let granted = st.ds.assignment_list(Some(&u.id), Some(&p.id)).await?.iter().any(|a| a.role_id == r.id);
    if granted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "Could not find role assignment with role: {}, user: {}, project: {}.",
            r.id, u.id, p.id
        ))
        .into())
    }
}

/// `PUT /projects/{p}/users/{u}/roles/{r}` (admin): grant (idempotent).
async fn put_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    require_admin(&caller, "create_grant")?;
    let (p, u, r) = grant_parts(&st, &p, &u, &r).await?;
    st.ds.assignment_put(&u.id, &p.id, &r.id).await?;
    st.identity.flush_cache();
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /projects/{p}/users/{u}/roles/{r}` (admin): revoke; 404 if not granted.
async fn delete_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    require_admin(&caller, "revoke_grant")?;
    let (p, u, r) = grant_parts(&st, &p, &u, &r).await?;
    match st.ds.assignment_delete(&u.id, &p.id, &r.id).await {
        Ok(()) => {}
        Err(DbError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!(
                "Could not find role assignment with role: {}, user: {}, project: {}.",
                r.id, u.id, p.id
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    st.identity.flush_cache();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /projects/{p}/users/{u}/roles` (admin).
async fn list_grants(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u)): Ids<(String, String)>,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_grants")?;
    let p = find_project(&st, &p).await?;
    let u = find_user(&st, &u).await?;
    let roles: Vec<Value> = st
        .ds
        .assignment_list(Some(&u.id), Some(&p.id))
        .await?
        .iter()
        .map(|a| role_json(&st, &a.role_id, &a.role_name))
        .collect();
    Ok(Json(
        json!({ "roles": roles, "links": list_links(format!("{}/projects/{}/users/{}/roles", v3(&st), p.id, u.id)) }),
    ))
}

/// `GET /role_assignments` (admin), filters `user.id`, `scope.project.id`,
/// `role.id`, and `include_names`. There are no groups, domain, system or
/// inherited assignments, so filtering on those yields nothing, and
/// `effective` changes nothing.
async fn list_role_assignments(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_role_assignments")?;
    let links = list_links(format!("{}/role_assignments", v3(&st)));
    let impossible = ["group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to"]
        .iter()
        .any(|k| q.contains_key(*k));
    if impossible {
        return Ok(Json(json!({ "role_assignments": [], "links": links })));
    }
    let names = q.get("include_names").is_some_and(|v| query_bool(v));
    let rows = st
        .ds
        .assignment_list(q.get("user.id").map(String::as_str), q.get("scope.project.id").map(String::as_str))
        .await?;
    let (users, projects): (HashMap<String, String>, HashMap<String, String>) = if names {
        (
            st.ds.user_list().await?.into_iter().map(|u| (u.id, u.name)).collect(),
            st.ds.project_list().await?.into_iter().map(|p| (p.id, p.name)).collect(),
        )
    } else {
        (HashMap::new(), HashMap::new())
    };
    let base = v3(&st);
    let out: Vec<Value> = rows
        .iter()
        .filter(|a| q.get("role.id").is_none_or(|r| *r == a.role_id))
        .map(|a| {
            let mut role = json!({ "id": a.role_id });
            let mut user = json!({ "id": a.user_id });
            let mut project = json!({ "id": a.project_id });
            if names {
                put(&mut role, "name", json!(a.role_name));
                put(&mut user, "name", json!(users.get(&a.user_id)));
                put(&mut user, "domain", default_domain_ref());
                put(&mut project, "name", json!(projects.get(&a.project_id)));
                put(&mut project, "domain", default_domain_ref());
            }
            json!({
                "role": role,
                "user": user,
                "scope": { "project": project },
                "links": { "assignment": format!("{base}/projects/{}/users/{}/roles/{}", a.project_id, a.user_id, a.role_id) },
            })
        })
        .collect();
    Ok(Json(json!({ "role_assignments": out, "links": links })))
}

// ---------------------------------------------------------------------------
// Domains, services, endpoints, regions (read-only, fixed).

/// `GET /domains`: the single `default` domain (any authenticated caller,
/// since clients resolve `--domain` and their defaults through it).
async fn list_domains(State(st): State<AppState>, Caller(_): Caller, Params(q): Params) -> Json<Value> {
    let matches = q.get("name").is_none_or(|n| n == DEFAULT_DOMAIN_NAME)
        && q.get("id").is_none_or(|n| n == DEFAULT_DOMAIN_ID)
        && q.get("enabled").is_none_or(|e| query_bool(e));
    let domains = if matches { vec![domain_json(&st)] } else { Vec::new() };
    Json(json!({ "domains": domains, "links": list_links(format!("{}/domains", v3(&st))) }))
}

/// `GET /domains/{id}`: only `default` exists.
async fn get_domain(State(st): State<AppState>, Caller(_): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    if id != DEFAULT_DOMAIN_ID {
        return Err(not_found("domain", &id));
    }
    Ok(Json(json!({ "domain": domain_json(&st) })))
}

fn service_json(st: &AppState, s: &ServiceDef) -> Value {
    let id = service_id(s.kind);
    json!({
        "id": id,
        "type": s.kind,
        "name": s.name,
        "description": "",
        "enabled": true,
        "links": { "self": format!("{}/services/{id}", v3(st)) },
    })
}

/// Endpoints of the fixed catalog; per-project URLs carry Keystone's `%(project_id)s` template.
fn endpoints_json(st: &AppState) -> Vec<Value> {
    SERVICES
        .iter()
        .flat_map(|s| {
            INTERFACES.iter().map(move |i| {
                let id = endpoint_id(s.kind, i);
                json!({
                    "id": id,
                    "interface": i,
                    "region": REGION,
                    "region_id": REGION,
                    "service_id": service_id(s.kind),
                    "url": service_url(&st.public_url, s, "%(project_id)s"),
                    "enabled": true,
                    "links": { "self": format!("{}/endpoints/{id}", v3(st)) },
                })
            })
        })
        .collect()
}

/// `GET /services` (admin), filter `type`.
async fn list_services(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_services")?;
    let services: Vec<Value> =
        SERVICES.iter().filter(|s| q.get("type").is_none_or(|t| t == s.kind)).map(|s| service_json(&st, s)).collect();
    Ok(Json(json!({ "services": services, "links": list_links(format!("{}/services", v3(&st))) })))
}

/// `GET /services/{id}` (admin).
async fn get_service(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "get_service")?;
    let s = SERVICES.iter().find(|s| service_id(s.kind) == id).ok_or_else(|| not_found("service", &id))?;
    Ok(Json(json!({ "service": service_json(&st, s) })))
}

/// `GET /endpoints` (admin), filters `service_id`, `interface`, `region_id`.
async fn list_endpoints(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "list_endpoints")?;
    let keep =
        |e: &Value, key: &str| q.get(key).is_none_or(|want| e.get(key).and_then(Value::as_str) == Some(want.as_str()));
    let endpoints: Vec<Value> = endpoints_json(&st)
        .into_iter()
        .filter(|e| keep(e, "service_id") && keep(e, "interface") && keep(e, "region_id"))
        .collect();
    Ok(Json(json!({ "endpoints": endpoints, "links": list_links(format!("{}/endpoints", v3(&st))) })))
}

/// `GET /endpoints/{id}` (admin).
async fn get_endpoint(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    require_admin(&caller, "get_endpoint")?;
    let e = endpoints_json(&st)
        .into_iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .ok_or_else(|| not_found("endpoint", &id))?;
    Ok(Json(json!({ "endpoint": e })))
}

fn region_json(st: &AppState) -> Value {
    json!({
        "id": REGION,
        "description": "",
        "parent_region_id": null,
        "links": { "self": format!("{}/regions/{REGION}", v3(st)) },
    })
}

/// `GET /regions`: the single region (any authenticated caller).
async fn list_regions(State(st): State<AppState>, Caller(_): Caller) -> Json<Value> {
    Json(json!({ "regions": [region_json(&st)], "links": list_links(format!("{}/regions", v3(&st))) }))
}

/// `GET /regions/{id}`.
async fn get_region(State(st): State<AppState>, Caller(_): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    if id != REGION {
        return Err(not_found("region", &id));
    }
    Ok(Json(json!({ "region": region_json(&st) })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppState;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use std::path::PathBuf;
    use std::sync::Arc;
    use tower::ServiceExt;

    const PUBLIC: &str = "http://127.0.0.1:8774";

    /// A temp dir removed on drop.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Env {
        app: Router,
        _dir: TempDir,
    }

    /// Admin `admin/pw` on project `admin`, member `demo/demopw` and
    /// reader `viewer/viewpw` on project `demo`.
    async fn env() -> Env {
        let dir = TempDir(std::env::temp_dir().join(format!("stratus-identity-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(dir.0.join("images")).expect("mkdir");
        let ds = stratus_db::Datastore::open_sqlite(&dir.0.join("t.db")).await.expect("open");
        stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("bootstrap admin");
        stratus_auth::bootstrap_user(&ds, "demo", "demopw", "demo", "member", false).await.expect("bootstrap demo");
        stratus_auth::bootstrap_user(&ds, "viewer", "viewpw", "demo", "reader", false).await.expect("bootstrap viewer");
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let bus: Arc<dyn stratus_bus::Bus> = Arc::new(stratus_bus::InProcessBus::new());
        let compute = stratus_controller::compute_api::ComputeApi::new(
            ds.clone(),
            bus.clone(),
            stratus_controller::ControllerConfig::default(),
        );
        let (volume, _) = crate::volume::test_service(&ds, dir.0.join("images"));
        let images = Arc::new(stratus_image::ImageService::new(ds.clone(), dir.0.join("images")));
        let state = AppState { ds, identity, compute, bus, public_url: PUBLIC.into(), volume, images };
        Env { app: crate::router(state), _dir: dir }
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        raw: Vec<u8>,
        body: Value,
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        token: Option<&str>,
        subject: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(s) = subject {
            req = req.header("x-subject-token", s);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = app.clone().oneshot(req.body(body).expect("request")).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body").to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply { status, headers, raw, body }
    }

    fn password_body(user: &str, password: &str, project: &str) -> Value {
        json!({ "auth": {
            "identity": { "methods": ["password"], "password": { "user": { "name": user, "domain": { "name": "Default" }, "password": password } } },
            "scope": { "project": { "name": project, "domain": { "id": "default" } } },
        } })
    }

    /// Log in by names; returns (token, body).
    async fn login(app: &Router, user: &str, password: &str, project: &str) -> (String, Value) {
        let r = call(
            app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body(user, password, project)),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.body);
        let token =
            r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("X-Subject-Token").to_string();
        (token, r.body)
    }

    fn assert_keystone_error(body: &Value, code: u16) {
        assert_eq!(body["error"]["code"], json!(code), "{body}");
        assert!(body["error"]["title"].is_string(), "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }

    fn endpoint_url(catalog: &Value, kind: &str) -> String {
        let svc =
            catalog.as_array().expect("catalog array").iter().find(|s| s["type"] == kind).expect("service in catalog");
        let ep = svc["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["interface"] == "public")
            .expect("public endpoint");
        ep["url"].as_str().expect("url").to_string()
    }

    #[tokio::test]
    async fn identity_version_documents() {
        let e = env().await;
        for path in ["/identity", "/identity/"] {
            let r = call(&e.app, Method::GET, path, None, None, None).await;
            assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES, "{path}");
            let v = &r.body["versions"]["values"][0];
            assert_eq!(v["id"], "v3.14");
            assert_eq!(v["status"], "stable");
            assert_eq!(v["links"][0]["href"], format!("{PUBLIC}/identity/v3/"));
            assert_eq!(v["media-types"][0]["type"], "application/vnd.openstack.identity-v3+json");
        }
        for path in ["/identity/v3", "/identity/v3/"] {
            let r = call(&e.app, Method::GET, path, None, None, None).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_eq!(r.body["version"]["id"], "v3.14");
            assert_eq!(r.body["version"]["updated"], "2020-04-07T00:00:00Z");
        }
    }

    #[tokio::test]
    async fn identity_password_auth_by_names_gives_token_and_catalog() {
        let e = env().await;
        let (token, body) = login(&e.app, "admin", "pw", "admin").await;
        assert_eq!(token.len(), 64);
        let t = &body["token"];
        assert_eq!(t["methods"], json!(["password"]));
        assert_eq!(t["user"]["name"], "admin");
        assert_eq!(t["user"]["domain"], json!({ "id": "default", "name": "Default" }));
        assert!(t["user"]["password_expires_at"].is_null());
        assert_eq!(t["project"]["name"], "admin");
        assert_eq!(t["is_domain"], false);
        assert_eq!(t["roles"][0]["name"], "admin");
        assert_eq!(t["audit_ids"].as_array().map(Vec::len), Some(1));
        for k in ["expires_at", "issued_at"] {
            let s = t[k].as_str().expect("timestamp");
            assert!(s.ends_with('Z') && s.len() == 27 && s.as_bytes()[19] == b'.', "{k}: {s}");
        }
        let project_id = t["project"]["id"].as_str().expect("project id");
        assert_eq!(endpoint_url(&t["catalog"], "compute"), format!("{PUBLIC}/compute/v2.1"));
        assert_eq!(endpoint_url(&t["catalog"], "image"), format!("{PUBLIC}/image"));
        assert_eq!(endpoint_url(&t["catalog"], "identity"), format!("{PUBLIC}/identity"));
        assert_eq!(endpoint_url(&t["catalog"], "volumev3"), format!("{PUBLIC}/volume/v3/{project_id}"));
        assert_eq!(endpoint_url(&t["catalog"], "block-storage"), format!("{PUBLIC}/volume/v3/{project_id}"));

        // By ids, unscoped (default project), and without a catalog.
        let user_id = t["user"]["id"].as_str().expect("user id");
        let by_id = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "id": user_id, "password": "pw" } } },
            "scope": { "project": { "id": project_id } } } });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens?nocatalog", None, None, Some(by_id)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert!(r.body["token"].get("catalog").is_none());
        let unscoped = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "demo", "domain": { "id": "default" }, "password": "demopw" } } } } });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(unscoped)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["token"]["project"]["name"], "demo");
    }

    #[tokio::test]
    async fn identity_bad_credentials_and_bodies() {
        let e = env().await;
        let r = call(
            &e.app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body("admin", "wrong", "admin")),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_keystone_error(&r.body, 401);
        assert_eq!(r.body["error"]["message"], "The request you have made requires authentication.");
        assert_eq!(r.body["error"]["title"], "Unauthorized");
        assert!(r.headers.contains_key("www-authenticate"));
        let r = call(
            &e.app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body("nobody", "pw", "admin")),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // A project the user has no role on, and a foreign domain.
        let r = call(
            &e.app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body("demo", "demopw", "admin")),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let mut other_domain = password_body("demo", "demopw", "demo");
        other_domain["auth"]["identity"]["password"]["user"]["domain"] = json!({ "id": "elsewhere" });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(other_domain)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        for bad_body in [
            json!({}),
            json!({ "auth": {} }),
            json!({ "auth": { "identity": { "methods": ["password"] } } }),
            json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "admin" } } } } }),
            json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "password": "pw" } } } } }),
            json!({ "auth": { "identity": { "methods": ["token"] } } }),
            json!({ "auth": { "identity": { "methods": "password" } } }),
        ] {
            let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(bad_body.clone())).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad_body} -> {}", r.body);
            assert_keystone_error(&r.body, 400);
        }
        let req = Request::builder()
            .method(Method::POST)
            .uri("/identity/v3/auth/tokens")
            .body(Body::from("{not json"))
            .expect("req");
        let resp = e.app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn identity_token_validate_head_and_revoke() {
        let e = env().await;
        let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
        let (demo, demo_body) = login(&e.app, "demo", "demopw", "demo").await;
        let (viewer, _) = login(&e.app, "viewer", "viewpw", "demo").await;

        // Own token, and an admin validating another user's token.
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["token"]["user"]["name"], "demo");
        assert_eq!(r.body["token"]["audit_ids"], demo_body["token"]["audit_ids"]);
        assert!(r.body["token"]["catalog"].is_array());
        assert_eq!(r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()), Some(demo.as_str()));
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens?nocatalog", Some(&admin), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["token"].get("catalog").is_none());
        let r = call(&e.app, Method::HEAD, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.raw.is_empty());

        // Non-admins cannot look at other users' tokens; bad subjects are 404; no caller is 401.
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_keystone_error(&r.body, 403);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&admin), Some("nonsense"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_keystone_error(&r.body, 404);
        let r = call(&e.app, Method::HEAD, "/identity/v3/auth/tokens", Some(&admin), Some("nonsense"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", None, Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_keystone_error(&r.body, 401);

        // A reader may log itself out; the token is then dead.
        let r = call(&e.app, Method::DELETE, "/identity/v3/auth/tokens", Some(&viewer), Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&viewer), None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_keystone_error(&r.body, 401);

        // Admin revokes demo's token.
        let r = call(&e.app, Method::DELETE, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&demo), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn identity_token_method_reissues_and_rescopes() {
        let e = env().await;
        let (admin, body) = login(&e.app, "admin", "pw", "admin").await;
        let req = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": admin } } } });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(req)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let new = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("token").to_string();
        assert_ne!(new, admin);
        assert_eq!(r.body["token"]["methods"], json!(["token"]));
        assert_eq!(r.body["token"]["project"]["id"], body["token"]["project"]["id"]);

        // Admin gets a role on demo, then rescopes its token there.
        let demo_project = call(&e.app, Method::GET, "/identity/v3/projects?name=demo", Some(&admin), None, None)
            .await
            .body["projects"][0]["id"]
            .as_str()
            .expect("demo id")
            .to_string();
        let user_id = body["token"]["user"]["id"].as_str().expect("uid");
        let role_id = body["token"]["roles"][0]["id"].as_str().expect("rid");
        let rescope = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": new } }, "scope": { "project": { "id": demo_project } } } });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(rescope.clone())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no role on demo yet");
        let r = call(
            &e.app,
            Method::PUT,
            &format!("/identity/v3/projects/{demo_project}/users/{user_id}/roles/{role_id}"),
            Some(&admin),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(rescope)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["token"]["project"]["name"], "demo");
        let bad = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": "bogus" } } } });
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(bad)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn identity_admin_creates_project_user_and_grant_then_user_logs_in() {
        let e = env().await;
        let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
        let api = |m: Method, path: &str, body: Option<Value>| {
            let app = e.app.clone();
            let admin = admin.clone();
            let uri = format!("/identity/v3{path}");
            async move { call(&app, m, &uri, Some(&admin), None, body).await }
        };

        let r = api(Method::POST, "/projects", Some(json!({ "project": { "name": "web", "description": "Web team", "domain_id": "default", "enabled": true } }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let p = &r.body["project"];
        let pid = p["id"].as_str().expect("pid").to_string();
        assert_eq!(p["name"], "web");
        assert_eq!(p["description"], "Web team");
        assert_eq!(p["domain_id"], "default");
        assert_eq!(p["parent_id"], "default");
        assert_eq!(p["is_domain"], false);
        assert_eq!(p["enabled"], true);
        assert_eq!(p["tags"], json!([]));
        assert_eq!(p["links"]["self"], format!("{PUBLIC}/identity/v3/projects/{pid}"));
        let r = api(Method::POST, "/projects", Some(json!({ "project": { "name": "web" } }))).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_keystone_error(&r.body, 409);

        // OSC's lookup: by id (404 for a name), then by ?name=.
        assert_eq!(api(Method::GET, "/projects/web", None).await.status, StatusCode::NOT_FOUND);
        let r = api(Method::GET, "/projects?name=web", None).await;
        assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
        assert!(r.body["links"]["next"].is_null());
        assert_eq!(api(Method::GET, &format!("/projects/{pid}"), None).await.body["project"]["name"], "web");
        let r = api(
            Method::PATCH,
            &format!("/projects/{pid}"),
            Some(json!({ "project": { "name": "web", "description": "Web team" } })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "no-op update");
        let r = api(Method::PATCH, &format!("/projects/{pid}"), Some(json!({ "project": { "enabled": false } }))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        let r = api(
            Method::POST,
            "/users",
            Some(json!({ "user": { "name": "alice", "password": "alicepw", "default_project_id": pid, "domain_id": "default", "enabled": true, "email": "alice@example.com", "description": "Alice" } })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let uid = r.body["user"]["id"].as_str().expect("uid").to_string();
        assert_eq!(r.body["user"]["email"], "alice@example.com");
        assert_eq!(r.body["user"]["default_project_id"], json!(pid));
        assert!(r.body["user"].get("password").is_none());
        assert_eq!(api(Method::GET, "/users/alice", None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(api(Method::GET, "/users?name=alice", None).await.body["users"][0]["id"], json!(uid));

        // No role yet: no token.
        let r = call(
            &e.app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body("alice", "alicepw", "web")),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = api(Method::GET, "/roles?name=member", None).await;
        let rid = r.body["roles"][0]["id"].as_str().expect("member role").to_string();
        assert_eq!(api(Method::GET, &format!("/roles/{rid}"), None).await.body["role"]["name"], "member");
        let grant = format!("/projects/{pid}/users/{uid}/roles/{rid}");
        assert_eq!(api(Method::HEAD, &grant, None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(api(Method::PUT, &grant, None).await.status, StatusCode::NO_CONTENT);
        assert_eq!(api(Method::HEAD, &grant, None).await.status, StatusCode::NO_CONTENT);
        assert_eq!(
            api(Method::PUT, &format!("/projects/{pid}/users/{uid}/roles/nope"), None).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api(Method::PUT, &format!("/projects/nope/users/{uid}/roles/{rid}"), None).await.status,
            StatusCode::NOT_FOUND
        );
        let r = api(Method::GET, &format!("/projects/{pid}/users/{uid}/roles"), None).await;
        assert_eq!(r.body["roles"][0]["name"], "member");

        let r = api(
            Method::GET,
            &format!("/role_assignments?user.id={uid}&scope.project.id={pid}&include_names=True"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let a = &r.body["role_assignments"][0];
        assert_eq!(a["role"], json!({ "id": rid, "name": "member" }));
        assert_eq!(a["user"]["name"], "alice");
        assert_eq!(a["scope"]["project"]["name"], "web");
        assert_eq!(a["links"]["assignment"], format!("{PUBLIC}/identity/v3{grant}"));
        let r = api(Method::GET, &format!("/role_assignments?role.id={rid}"), None).await;
        assert!(
            r.body["role_assignments"]
                .as_array()
                .is_some_and(|v| v.len() == 2 && v.iter().all(|a| a["role"].get("name").is_none()))
        );

        // Alice logs in scoped to the project, sees her projects and herself.
        let (alice, body) = login(&e.app, "alice", "alicepw", "web").await;
        assert_eq!(body["token"]["roles"][0]["name"], "member");
        assert_eq!(body["token"]["project"]["id"], json!(pid));
        let r =
            call(&e.app, Method::GET, &format!("/identity/v3/users/{uid}/projects"), Some(&alice), None, None).await;
        assert_eq!(r.body["projects"][0]["name"], "web");
        let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
        assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
        let r = call(&e.app, Method::GET, &format!("/identity/v3/users/{uid}"), Some(&alice), None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = call(&e.app, Method::GET, &format!("/identity/v3/projects/{pid}"), Some(&alice), None, None).await;
        assert_eq!(r.status, StatusCode::OK);

        // Password change; other attributes are refused.
        let r = api(
            Method::PATCH,
            &format!("/users/{uid}"),
            Some(json!({ "user": { "password": "newpw", "email": "alice@example.com" } })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = call(
            &e.app,
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(password_body("alice", "alicepw", "web")),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        login(&e.app, "alice", "newpw", "web").await;
        let r = api(Method::PATCH, &format!("/users/{uid}"), Some(json!({ "user": { "enabled": false } }))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_keystone_error(&r.body, 400);

        // Revoking the role cuts alice off (the token cache is flushed).
        assert_eq!(api(Method::DELETE, &grant, None).await.status, StatusCode::NO_CONTENT);
        assert_eq!(api(Method::DELETE, &grant, None).await.status, StatusCode::NOT_FOUND);
        let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        assert_eq!(api(Method::DELETE, &format!("/users/{uid}"), None).await.status, StatusCode::NO_CONTENT);
        assert_eq!(api(Method::GET, &format!("/users/{uid}"), None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(api(Method::DELETE, &format!("/projects/{pid}"), None).await.status, StatusCode::NO_CONTENT);
        assert_eq!(api(Method::DELETE, &format!("/projects/{pid}"), None).await.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn identity_non_admins_are_forbidden_to_change_or_list() {
        let e = env().await;
        let (demo, demo_body) = login(&e.app, "demo", "demopw", "demo").await;
        let (viewer, _) = login(&e.app, "viewer", "viewpw", "demo").await;
        let (admin, admin_body) = login(&e.app, "admin", "pw", "admin").await;
        let admin_uid = admin_body["token"]["user"]["id"].as_str().expect("uid");
        let admin_pid = admin_body["token"]["project"]["id"].as_str().expect("pid");
        let demo_uid = demo_body["token"]["user"]["id"].as_str().expect("uid");
        let demo_pid = demo_body["token"]["project"]["id"].as_str().expect("pid");
        let member_rid = demo_body["token"]["roles"][0]["id"].as_str().expect("rid");
        for token in [&demo, &viewer] {
            let forbidden = [
                (Method::POST, "/identity/v3/projects".to_string(), Some(json!({ "project": { "name": "mine" } }))),
                (Method::GET, "/identity/v3/projects".to_string(), None),
                (Method::GET, "/identity/v3/users".to_string(), None),
                (
                    Method::POST,
                    "/identity/v3/users".to_string(),
                    Some(json!({ "user": { "name": "eve", "password": "x" } })),
                ),
                (Method::GET, "/identity/v3/roles".to_string(), None),
                (Method::GET, "/identity/v3/role_assignments".to_string(), None),
                (Method::GET, format!("/identity/v3/projects/{admin_pid}"), None),
                (Method::GET, format!("/identity/v3/users/{admin_uid}"), None),
                (Method::GET, format!("/identity/v3/users/{admin_uid}/projects"), None),
                (Method::PATCH, format!("/identity/v3/users/{demo_uid}"), Some(json!({ "user": { "password": "x" } }))),
                (Method::DELETE, format!("/identity/v3/projects/{demo_pid}"), None),
                (Method::PUT, format!("/identity/v3/projects/{admin_pid}/users/{demo_uid}/roles/{member_rid}"), None),
                (Method::GET, "/identity/v3/endpoints".to_string(), None),
            ];
            for (m, uri, body) in forbidden {
                let r = call(&e.app, m.clone(), &uri, Some(token), None, body).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {uri}: {}", r.body);
                assert_keystone_error(&r.body, 403);
            }
            // What non-admins may read.
            for uri in [
                "/identity/v3/domains/default".to_string(),
                "/identity/v3/domains?name=Default".to_string(),
                "/identity/v3/regions".to_string(),
                "/identity/v3/auth/projects".to_string(),
                "/identity/v3/auth/catalog".to_string(),
                format!("/identity/v3/projects/{demo_pid}"),
            ] {
                let r = call(&e.app, Method::GET, &uri, Some(token), None, None).await;
                assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
            }
        }
        let r = call(&e.app, Method::GET, "/identity/v3/projects", None, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_keystone_error(&r.body, 401);
        let r = call(&e.app, Method::GET, "/identity/v3/domains?name=Default", Some(&admin), None, None).await;
        assert_eq!(r.body["domains"][0]["id"], "default");
        assert_eq!(r.body["domains"][0]["name"], "Default");
        let r = call(&e.app, Method::GET, "/identity/v3/domains/other", Some(&admin), None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn identity_invalid_admin_requests_are_4xx() {
        let e = env().await;
        let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
        let cases = [
            (Method::POST, "/identity/v3/projects", Some(json!({})), StatusCode::BAD_REQUEST),
            (Method::POST, "/identity/v3/projects", Some(json!({ "project": {} })), StatusCode::BAD_REQUEST),
            (
                Method::POST,
                "/identity/v3/projects",
                Some(json!({ "project": { "name": "  " } })),
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                "/identity/v3/projects",
                Some(json!({ "project": { "name": "x", "enabled": "yes" } })),
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                "/identity/v3/projects",
                Some(json!({ "project": { "name": "x", "domain_id": "other" } })),
                StatusCode::BAD_REQUEST,
            ),
            (Method::POST, "/identity/v3/projects", Some(json!({ "project": "x" })), StatusCode::BAD_REQUEST),
            (Method::POST, "/identity/v3/projects", None, StatusCode::BAD_REQUEST),
            (Method::POST, "/identity/v3/users", Some(json!({ "user": {} })), StatusCode::BAD_REQUEST),
            (
                Method::POST,
                "/identity/v3/users",
                Some(json!({ "user": { "name": "bob", "default_project_id": "nope" } })),
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::PATCH,
                "/identity/v3/users/nope",
                Some(json!({ "user": { "password": "x" } })),
                StatusCode::NOT_FOUND,
            ),
            (Method::PATCH, "/identity/v3/projects/nope", Some(json!({ "project": {} })), StatusCode::NOT_FOUND),
            (Method::GET, "/identity/v3/roles/nope", None, StatusCode::NOT_FOUND),
            (Method::PUT, "/identity/v3/projects/a/users/b/roles/c", None, StatusCode::NOT_FOUND),
            (Method::GET, "/identity/v3/projects/a/users/b/roles", None, StatusCode::NOT_FOUND),
            (
                Method::POST,
                "/identity/v3/roles",
                Some(json!({ "role": { "name": "x" } })),
                StatusCode::METHOD_NOT_ALLOWED,
            ),
        ];
        for (m, uri, body, want) in cases {
            let r = call(&e.app, m.clone(), uri, Some(&admin), None, body.clone()).await;
            assert_eq!(r.status, want, "{m} {uri} {body:?}: {}", r.body);
            assert_keystone_error(&r.body, want.as_u16());
        }
    }

    #[tokio::test]
    async fn identity_services_and_endpoints_match_the_catalog() {
        let e = env().await;
        let (admin, body) = login(&e.app, "admin", "pw", "admin").await;
        let r = call(&e.app, Method::GET, "/identity/v3/services?type=compute", Some(&admin), None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let sid = r.body["services"][0]["id"].as_str().expect("sid").to_string();
        assert_eq!(r.body["services"][0]["name"], "nova");
        let r = call(
            &e.app,
            Method::GET,
            &format!("/identity/v3/endpoints?service_id={sid}&interface=public"),
            Some(&admin),
            None,
            None,
        )
        .await;
        let eps = r.body["endpoints"].as_array().expect("endpoints");
        assert_eq!(eps.len(), 1);
        let compute = body["token"]["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .find(|s| s["type"] == "compute")
            .expect("compute")
            .clone();
        assert_eq!(compute["id"], json!(sid));
        assert!(compute["endpoints"].as_array().expect("eps").iter().any(|e| e["id"] == eps[0]["id"]));
        let r = call(&e.app, Method::GET, &format!("/identity/v3/services/{sid}"), Some(&admin), None, None).await;
        assert_eq!(r.body["service"]["type"], "compute");
    }

    #[test]
    fn identity_catalog_is_deterministic_with_unique_ids() {
        let a = catalog(PUBLIC, "p1");
        assert_eq!(a, catalog(PUBLIC, "p1"));
        let b = catalog(PUBLIC, "p2");
        let ids = |c: &Value| -> Vec<String> {
            c.as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| {
                    s["endpoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        let unique: HashSet<String> = ids(&a).into_iter().collect();
        assert_eq!(unique.len(), 15);
        for svc in a.as_array().expect("array") {
            assert_eq!(svc["endpoints"].as_array().map(Vec::len), Some(3));
            for ep in svc["endpoints"].as_array().expect("eps") {
                assert_eq!(ep["region"], "RegionOne");
                assert_eq!(ep["region_id"], "RegionOne");
            }
        }
        assert_eq!(
            iso(chrono::DateTime::from_timestamp(1_795_780_800, 0).expect("time")),
            "2026-11-27T12:00:00.000000Z"
        );
    }
}
