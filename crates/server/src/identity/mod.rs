//! Keystone Identity v3 over HTTP, as much of it as the stock OpenStack
//! clients (python-openstackclient, keystoneauth, openstacksdk) need.
//!
//! Handlers only translate: they parse the request into the typed requests
//! of `stratus_api::identity`, call one method of the identity service
//! (`stratus_auth::Identity`, which owns the identity tables and the policy)
//! and render its answer with the pure views of `stratus_api::identity`.
//! Domains, regions, services and endpoints are fixed (one domain, one
//! region, a catalog derived from the public URL), so their handlers only
//! apply the policy and render.
//!
//! Handlers that read a body check the policy before parsing it, so that a
//! caller without the right gets 403 before any 400 about its body.

use crate::AppState;
use crate::error::{ApiError, IdentityError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stratus_api::identity::{self as ks, TokenInfo};
use stratus_auth::policy::{Action, enforce};
use stratus_auth::{AuthContext, AuthError, ResourceKind};

/// Header carrying the token being issued, validated or revoked.
const SUBJECT_TOKEN: &str = "x-subject-token";

type IdResult<T> = Result<T, IdentityError>;

/// The Identity API's OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus Identity API",
        version = "3.14",
        description = "OpenStack Identity API v3 as served by Stratus: tokens, projects, users, role assignments and the fixed domain, region and catalog"
    ),
    paths(
        versions,
        version,
        crate::openapi::identity_openapi,
        issue_token,
        validate_token,
        revoke_token,
        auth_catalog,
        auth_projects,
        list_projects,
        create_project,
        get_project,
        update_project,
        delete_project,
        list_grants,
        check_grant,
        put_grant,
        delete_grant,
        list_users,
        create_user,
        get_user,
        update_user,
        delete_user,
        user_projects,
        list_app_creds,
        create_app_cred,
        get_app_cred,
        delete_app_cred,
        list_project_tags,
        replace_project_tags,
        clear_project_tags,
        check_project_tag,
        add_project_tag,
        delete_project_tag,
        list_system_grants,
        check_system_grant,
        put_system_grant,
        delete_system_grant,
        list_roles,
        create_role,
        get_role,
        delete_role,
        list_role_assignments,
        list_domains,
        get_domain,
        list_services,
        get_service,
        list_endpoints,
        get_endpoint,
        list_regions,
        get_region
    )
)]
pub struct IdentityDoc;

/// Routes of the Identity v3 API, under `/identity`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/identity", get(versions))
        .route("/identity/", get(versions))
        .route("/identity/v3", get(version))
        .route("/identity/v3/", get(version))
        .route("/identity/openapi.json", get(crate::openapi::identity_openapi))
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
        .route("/identity/v3/users/{user_id}/application_credentials", get(list_app_creds).post(create_app_cred))
        .route(
            "/identity/v3/users/{user_id}/application_credentials/{app_cred_id}",
            get(get_app_cred).delete(delete_app_cred),
        )
        .route(
            "/identity/v3/projects/{project_id}/tags",
            get(list_project_tags).put(replace_project_tags).delete(clear_project_tags),
        )
        .route(
            "/identity/v3/projects/{project_id}/tags/{tag}",
            get(check_project_tag).put(add_project_tag).delete(delete_project_tag),
        )
        .route("/identity/v3/system/users/{user_id}/roles", get(list_system_grants))
        .route(
            "/identity/v3/system/users/{user_id}/roles/{role_id}",
            get(check_system_grant).put(put_system_grant).delete(delete_system_grant),
        )
        .route("/identity/v3/roles", get(list_roles).post(create_role))
        .route("/identity/v3/roles/{role_id}", get(get_role).delete(delete_role))
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
struct Params(ks::Query);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<ks::Query>::from_request_parts(parts, state).await.map_err(ApiError::from)?;
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

/// The `/identity` paths when an external Keystone is the identity service
/// (`--keystone-url`): every one answers 404 with a Keystone fault naming
/// that Keystone. Not a redirect: tokens and catalogs never point clients
/// here, and a redirect would silently forward passwords to another origin
/// (and clients turn a redirected `POST /auth/tokens` into a `GET`), while a
/// 404 makes a misconfigured client fail at once with the address to use.
pub fn elsewhere(keystone_url: &str) -> Router {
    let message = format!(
        "This cloud's identity service is the Keystone at {keystone_url}: authenticate there (auth_url {keystone_url}/v3)."
    );
    let answer = move || {
        let message = message.clone();
        async move { IdentityError(ApiError::NotFound(message)) }
    };
    Router::new()
        .route("/identity", axum::routing::any(answer.clone()))
        .route("/identity/{*rest}", axum::routing::any(answer))
}

async fn method_not_allowed() -> IdentityError {
    ApiError::MethodNotAllowed("The method is not allowed for the requested URL.".into()).into()
}

// ---------------------------------------------------------------------------
// Rendering helpers.

/// A list body with its `links`, `self` at `<v3>/<path>`.
fn list(st: &AppState, key: &str, path: &str, items: Vec<Value>) -> Json<Value> {
    Json(ks::list_view(&st.public_url, key, path, items))
}

/// The token view of a context.
fn token_body(st: &AppState, ctx: &AuthContext, method: &str, with_catalog: bool) -> Value {
    let method = if ctx.app_cred.is_some() { "application_credential" } else { method };
    let methods = [method];
    let info = TokenInfo {
        methods: &methods,
        user_id: &ctx.user_id,
        user_name: &ctx.user_name,
        project_id: &ctx.project_id,
        project_name: &ctx.project_name,
        roles: ctx.role_ids.iter().zip(&ctx.roles).map(|(id, name)| (id.as_str(), name.as_str())).collect(),
        audit_id: &ctx.audit_id,
        issued_at: ctx.issued_at,
        expires_at: ctx.expires_at,
        system: ctx.system_scope,
        app_cred: ctx.app_cred.as_ref().map(|a| (a.id.as_str(), a.name.as_str(), a.restricted)),
    };
    ks::token_view(&st.public_url, &info, with_catalog)
}

fn with_subject(status: StatusCode, token: &str, body: Value) -> IdResult<Response> {
    let v = HeaderValue::from_str(token)
        .map_err(|e| ApiError::Internal(format!("token is not a valid header value: {e}")))?;
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(SUBJECT_TOKEN, v);
    Ok(resp)
}

/// The `X-Subject-Token` of a validate or revoke.
fn subject_header(headers: &HeaderMap) -> IdResult<&str> {
    Ok(ks::subject_token(headers.get(SUBJECT_TOKEN).and_then(|v| v.to_str().ok()))?)
}

// ---------------------------------------------------------------------------
// Version discovery.

/// `GET /identity`: the version list (300 Multiple Choices, as Keystone).
#[utoipa::path(get, path = "/identity", tag = "versions", responses((status = 300, description = "The version list (Multiple Choices, as Keystone)", body = s::IdentityVersions)))]
async fn versions(State(st): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({ "versions": { "values": [ks::version_view(&st.public_url)] } })))
        .into_response()
}

/// `GET /identity/v3`: this version.
#[utoipa::path(get, path = "/identity/v3", tag = "versions", responses((status = 200, description = "This version", body = s::VersionDoc)))]
async fn version(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "version": ks::version_view(&st.public_url) }))
}

// ---------------------------------------------------------------------------
// Tokens.

/// `POST /auth/tokens`: password or token authentication, project scoped.
#[utoipa::path(post, path = "/identity/v3/auth/tokens", tag = "tokens", params(("nocatalog" = Option<String>, Query, description = "Present: no catalog in the token")), request_body = s::AuthRequest, responses((status = 201, description = "Issued; the token is in X-Subject-Token", body = s::Token, headers(("X-Subject-Token" = String, description = "The new token"))), (status = 400, description = "Malformed body"), (status = 401, description = "Wrong credentials, locked account, or no role on the project"), (status = 429, description = "Too many failed logins from this address")))]
async fn issue_token(
    State(st): State<AppState>,
    Params(q): Params,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Bytes,
) -> IdResult<Response> {
    let req: ks::AuthRequest = parse_json(&body)?;
    let req = ks::TokenRequest::try_from(req)?;
    let method = req.method.name();
    // The socket's peer, never a client-supplied header: failed logins count per address.
    let source = peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a.ip());
    let issued = st.identity.issue_token_from(req, source).await?;
    let body = token_body(&st, &issued.context, method, ks::wants_catalog(&q));
    with_subject(StatusCode::CREATED, &issued.token, body)
}

/// `GET`/`HEAD /auth/tokens`: validate the subject token.
#[utoipa::path(get, path = "/identity/v3/auth/tokens", tag = "tokens", params(("X-Subject-Token" = String, Header, description = "The token to validate"), ("nocatalog" = Option<String>, Query, description = "Present: no catalog")), responses((status = 200, description = "The subject token", body = s::Token), (status = 400, description = "No X-Subject-Token"), (status = 403, description = "Another user's token, not admin"), (status = 404, description = "Unknown, expired or revoked")))]
async fn validate_token(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
    headers: HeaderMap,
) -> IdResult<Response> {
    let token = subject_header(&headers)?;
    let ctx = st.identity.subject_token(&caller, token).await?;
    let body = token_body(&st, &ctx, "password", ks::wants_catalog(&q));
    with_subject(StatusCode::OK, token, body)
}

/// `DELETE /auth/tokens`: revoke the subject token (one's own, or any for admins).
#[utoipa::path(delete, path = "/identity/v3/auth/tokens", tag = "tokens", params(("X-Subject-Token" = String, Header, description = "The token to revoke")), responses((status = 204, description = "Revoked"), (status = 400, description = "No X-Subject-Token"), (status = 403, description = "Another user's token, not admin"), (status = 404, description = "Unknown, expired or revoked")))]
async fn revoke_token(State(st): State<AppState>, Caller(caller): Caller, headers: HeaderMap) -> IdResult<StatusCode> {
    st.identity.revoke_subject_token(&caller, subject_header(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /auth/catalog`: the caller's catalog.
#[utoipa::path(get, path = "/identity/v3/auth/catalog", tag = "tokens", responses((status = 200, description = "The caller's catalog", body = s::Catalog)))]
async fn auth_catalog(State(st): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    Json(json!({
        "catalog": ks::catalog(&st.public_url, &caller.project_id),
        "links": ks::list_links(format!("{}/auth/catalog", ks::v3_url(&st.public_url))),
    }))
}

/// `GET /auth/projects`: the projects the caller may scope to.
#[utoipa::path(get, path = "/identity/v3/auth/projects", tag = "tokens", responses((status = 200, description = "Projects the caller may scope to", body = s::ProjectList)))]
async fn auth_projects(State(st): State<AppState>, Caller(caller): Caller) -> IdResult<Json<Value>> {
    let projects = st.identity.scopable_projects(&caller).await?;
    let views = projects.iter().map(|p| ks::project_view(&st.public_url, p)).collect();
    Ok(list(&st, "projects", "auth/projects", views))
}

// ---------------------------------------------------------------------------
// Projects.

/// `GET /projects` (admin), filters `name`, `domain_id`, `enabled`, `parent_id`, `is_domain`.
#[utoipa::path(get, path = "/identity/v3/projects", tag = "projects", params(("name" = Option<String>, Query, description = "Exact name"), ("domain_id" = Option<String>, Query, description = "Domain"), ("enabled" = Option<bool>, Query, description = "Enabled or not"), ("parent_id" = Option<String>, Query, description = "Parent"), ("is_domain" = Option<bool>, Query, description = "Domains only")), responses((status = 200, description = "Projects", body = s::ProjectList), (status = 403, description = "Admins only")))]
async fn list_projects(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    let projects = st.identity.list_projects(&caller, &ks::ProjectFilter::from_query(&q)).await?;
    let views = projects.iter().map(|p| ks::project_view(&st.public_url, p)).collect();
    Ok(list(&st, "projects", "projects", views))
}

/// `POST /projects` (admin).
#[utoipa::path(post, path = "/identity/v3/projects", tag = "projects", request_body = s::ProjectCreate, responses((status = 201, description = "Created", body = s::ProjectBody), (status = 400, description = "Invalid body"), (status = 403, description = "Admins only"), (status = 409, description = "Name taken")))]
async fn create_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    enforce(&caller, Action::CreateProject)?;
    let req = ks::ProjectCreate::from_body(parse_json(&body)?)?;
    let p = st.identity.create_project(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "project": ks::project_view(&st.public_url, &p) }))))
}

/// `GET /projects/{id}`: admins, or a caller whose token is scoped to it.
#[utoipa::path(get, path = "/identity/v3/projects/{project_id}", tag = "projects", params(("project_id" = String, Path, description = "Project id")), responses((status = 200, description = "The project", body = s::ProjectBody), (status = 403, description = "Not admin and not scoped to it"), (status = 404, description = "Unknown project")))]
async fn get_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    let p = st.identity.get_project(&caller, &id).await?;
    Ok(Json(json!({ "project": ks::project_view(&st.public_url, &p) })))
}

/// `PATCH /projects/{id}` (admin): only no-op updates are accepted.
#[utoipa::path(patch, path = "/identity/v3/projects/{project_id}", tag = "projects", params(("project_id" = String, Path, description = "Project id")), request_body = s::ProjectUpdate, responses((status = 200, description = "Unchanged project", body = s::ProjectBody), (status = 400, description = "Invalid body or a change Stratus cannot make"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project")))]
async fn update_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
    body: Bytes,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::UpdateProject)?;
    let req = ks::ProjectUpdate::from_body(parse_json(&body)?)?;
    let p = st.identity.update_project(&caller, &id, &req).await?;
    Ok(Json(json!({ "project": ks::project_view(&st.public_url, &p) })))
}

/// `DELETE /projects/{id}` (admin); its role assignments go with it.
#[utoipa::path(delete, path = "/identity/v3/projects/{project_id}", tag = "projects", params(("project_id" = String, Path, description = "Project id")), responses((status = 204, description = "Deleted with its assignments"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project"), (status = 409, description = "Still in use")))]
async fn delete_project(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<StatusCode> {
    st.identity.delete_project(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Users.

/// `GET /users` (admin), filters `name`, `domain_id`, `enabled`.
#[utoipa::path(get, path = "/identity/v3/users", tag = "users", params(("name" = Option<String>, Query, description = "Exact name"), ("domain_id" = Option<String>, Query, description = "Domain"), ("enabled" = Option<bool>, Query, description = "Enabled or not")), responses((status = 200, description = "Users", body = s::UserList), (status = 403, description = "Admins only")))]
async fn list_users(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    let users = st.identity.list_users(&caller, &ks::UserFilter::from_query(&q)).await?;
    let views = users.iter().map(|u| ks::user_view(&st.public_url, u)).collect();
    Ok(list(&st, "users", "users", views))
}

/// `POST /users` (admin).
#[utoipa::path(post, path = "/identity/v3/users", tag = "users", request_body = s::UserCreate, responses((status = 201, description = "Created", body = s::UserBody), (status = 400, description = "Invalid body"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown default project"), (status = 409, description = "Name taken")))]
async fn create_user(
    State(st): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    enforce(&caller, Action::CreateUser)?;
    let req = ks::UserCreate::from_body(parse_json(&body)?)?;
    let u = st.identity.create_user(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": ks::user_view(&st.public_url, &u) }))))
}

/// `GET /users/{id}`: admins, or the user itself.
#[utoipa::path(get, path = "/identity/v3/users/{user_id}", tag = "users", params(("user_id" = String, Path, description = "User id")), responses((status = 200, description = "The user", body = s::UserBody), (status = 403, description = "Not admin and not the user"), (status = 404, description = "Unknown user")))]
async fn get_user(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    let u = st.identity.get_user(&caller, &id).await?;
    Ok(Json(json!({ "user": ks::user_view(&st.public_url, &u) })))
}

/// `PATCH /users/{id}` (admin): the password only.
#[utoipa::path(patch, path = "/identity/v3/users/{user_id}", tag = "users", params(("user_id" = String, Path, description = "User id")), request_body = s::UserUpdate, responses((status = 200, description = "Updated", body = s::UserBody), (status = 400, description = "Invalid body or a change Stratus cannot make"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown user")))]
async fn update_user(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
    body: Bytes,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::UpdateUser)?;
    let req = ks::UserUpdate::from_body(parse_json(&body)?)?;
    let u = st.identity.update_user(&caller, &id, &req).await?;
    Ok(Json(json!({ "user": ks::user_view(&st.public_url, &u) })))
}

/// `DELETE /users/{id}` (admin); its assignments and tokens go with it.
#[utoipa::path(delete, path = "/identity/v3/users/{user_id}", tag = "users", params(("user_id" = String, Path, description = "User id")), responses((status = 204, description = "Deleted with its assignments and tokens"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown user"), (status = 409, description = "Cannot be deleted")))]
async fn delete_user(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<StatusCode> {
    st.identity.delete_user(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{id}/projects`: the user itself, or admins.
#[utoipa::path(get, path = "/identity/v3/users/{user_id}/projects", tag = "users", params(("user_id" = String, Path, description = "User id")), responses((status = 200, description = "The user's projects", body = s::ProjectList), (status = 403, description = "Not admin and not the user"), (status = 404, description = "Unknown user")))]
async fn user_projects(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    let projects = st.identity.user_projects(&caller, &id).await?;
    let views = projects.iter().map(|p| ks::project_view(&st.public_url, p)).collect();
    Ok(list(&st, "projects", &format!("users/{id}/projects"), views))
}

// ---------------------------------------------------------------------------
// Roles and assignments.

/// `GET /roles` (admin), filter `name`.
#[utoipa::path(get, path = "/identity/v3/roles", tag = "roles", params(("name" = Option<String>, Query, description = "Exact name")), responses((status = 200, description = "Roles", body = s::RoleList), (status = 403, description = "Admins only")))]
async fn list_roles(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    let roles = st.identity.list_roles(&caller, &ks::RoleFilter::from_query(&q)).await?;
    let views = roles.iter().map(|r| ks::role_view(&st.public_url, r)).collect();
    Ok(list(&st, "roles", "roles", views))
}

/// `GET /roles/{id}` (admin).
#[utoipa::path(get, path = "/identity/v3/roles/{role_id}", tag = "roles", params(("role_id" = String, Path, description = "Role id")), responses((status = 200, description = "The role", body = s::RoleBody), (status = 403, description = "Admins only"), (status = 404, description = "Unknown role")))]
async fn get_role(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    let r = st.identity.get_role(&caller, &id).await?;
    Ok(Json(json!({ "role": ks::role_view(&st.public_url, &r) })))
}

/// `POST /roles` (admin): a global role.
#[utoipa::path(post, path = "/identity/v3/roles", tag = "roles", request_body = s::RoleCreate, responses((status = 201, description = "Created", body = s::RoleBody), (status = 400, description = "Invalid body, or a domain-specific role"), (status = 403, description = "Admins only"), (status = 409, description = "Name taken")))]
async fn create_role(
    State(st): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    enforce(&caller, Action::CreateRole)?;
    let req = ks::RoleCreate::from_body(parse_json(&body)?)?;
    let r = st.identity.create_role(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "role": ks::role_view(&st.public_url, &r) }))))
}

/// `DELETE /roles/{id}` (admin): with every assignment of it; not the standard roles.
#[utoipa::path(delete, path = "/identity/v3/roles/{role_id}", tag = "roles", params(("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Deleted with its assignments"), (status = 400, description = "A standard role (admin, manager, member, reader)"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown role")))]
async fn delete_role(State(st): State<AppState>, Caller(caller): Caller, Ids(id): Ids<String>) -> IdResult<StatusCode> {
    st.identity.delete_role(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET`/`HEAD /projects/{p}/users/{u}/roles/{r}` (admin): 204 if granted, else 404.
#[utoipa::path(get, path = "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "roles", params(("project_id" = String, Path, description = "Project id"), ("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Granted"), (status = 403, description = "Admins only"), (status = 404, description = "Not granted, or unknown project, user or role")))]
async fn check_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    st.identity.check_grant(&caller, &p, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /projects/{p}/users/{u}/roles/{r}` (admin): grant (idempotent).
#[utoipa::path(put, path = "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "roles", params(("project_id" = String, Path, description = "Project id"), ("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Granted (idempotent)"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project, user or role")))]
async fn put_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    st.identity.put_grant(&caller, &p, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /projects/{p}/users/{u}/roles/{r}` (admin): revoke; 404 if not granted.
#[utoipa::path(delete, path = "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "roles", params(("project_id" = String, Path, description = "Project id"), ("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Revoked"), (status = 403, description = "Admins only"), (status = 404, description = "Not granted, or unknown project, user or role")))]
async fn delete_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u, r)): Ids<(String, String, String)>,
) -> IdResult<StatusCode> {
    st.identity.delete_grant(&caller, &p, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /projects/{p}/users/{u}/roles` (admin).
#[utoipa::path(get, path = "/identity/v3/projects/{project_id}/users/{user_id}/roles", tag = "roles", params(("project_id" = String, Path, description = "Project id"), ("user_id" = String, Path, description = "User id")), responses((status = 200, description = "The user's roles on the project", body = s::RoleList), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project or user")))]
async fn list_grants(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((p, u)): Ids<(String, String)>,
) -> IdResult<Json<Value>> {
    let roles = st.identity.list_grants(&caller, &p, &u).await?;
    let views = roles.iter().map(|r| ks::role_view(&st.public_url, r)).collect();
    Ok(list(&st, "roles", &format!("projects/{p}/users/{u}/roles"), views))
}

/// `GET /role_assignments` (admin), filters `user.id`, `scope.project.id`,
/// `role.id`, and `include_names`.
#[utoipa::path(get, path = "/identity/v3/role_assignments", tag = "roles", params(("user.id" = Option<String>, Query, description = "User"), ("scope.project.id" = Option<String>, Query, description = "Project"), ("role.id" = Option<String>, Query, description = "Role"), ("include_names" = Option<String>, Query, description = "Present: names too")), responses((status = 200, description = "Assignments", body = s::RoleAssignmentList), (status = 403, description = "Admins only")))]
async fn list_role_assignments(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
) -> IdResult<Json<Value>> {
    let filter = ks::AssignmentFilter::from_query(&q);
    let rows = st.identity.list_role_assignments(&caller, &filter).await?;
    let system = st.identity.list_system_role_assignments(&caller, &filter).await?;
    let views = rows
        .iter()
        .map(|a| ks::assignment_view(&st.public_url, a, filter.include_names))
        .chain(system.iter().map(|a| ks::system_assignment_view(&st.public_url, a, filter.include_names)))
        .collect();
    Ok(list(&st, "role_assignments", "role_assignments", views))
}

// ---------------------------------------------------------------------------
// Application credentials.

/// `GET /users/{id}/application_credentials` (the user, admins, system readers), filter `name`.
#[utoipa::path(get, path = "/identity/v3/users/{user_id}/application_credentials", tag = "application credentials", params(("user_id" = String, Path, description = "User id"), ("name" = Option<String>, Query, description = "Exact name")), responses((status = 200, description = "The user's application credentials (no secrets)", body = s::AppCredList), (status = 403, description = "Not the user, not admin"), (status = 404, description = "Unknown user")))]
async fn list_app_creds(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(user): Ids<String>,
    Params(q): Params,
) -> IdResult<Json<Value>> {
    let creds = st.identity.list_app_creds(&caller, &user, q.get("name").map(String::as_str)).await?;
    let views = creds.iter().map(|a| ks::app_cred_view(&st.public_url, a)).collect();
    Ok(list(&st, "application_credentials", &format!("users/{user}/application_credentials"), views))
}

/// `POST /users/{id}/application_credentials`: the user itself, on its token's project.
#[utoipa::path(post, path = "/identity/v3/users/{user_id}/application_credentials", tag = "application credentials", params(("user_id" = String, Path, description = "User id (the caller)")), request_body = s::AppCredCreate, responses((status = 201, description = "Created; the secret is shown only here", body = s::AppCredBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not the user, or a restricted application credential's token"), (status = 404, description = "A role the caller does not have on the project"), (status = 409, description = "Name taken")))]
async fn create_app_cred(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(user): Ids<String>,
    body: Bytes,
) -> IdResult<(StatusCode, Json<Value>)> {
    enforce(&caller, Action::CreateAppCred { user_id: &user })?;
    let req = ks::AppCredCreate::from_body(parse_json(&body)?)?;
    let a = st.identity.create_app_cred(&caller, &user, req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "application_credential": ks::app_cred_view(&st.public_url, &a) }))))
}

/// `GET /users/{id}/application_credentials/{id}`: never the secret.
#[utoipa::path(get, path = "/identity/v3/users/{user_id}/application_credentials/{app_cred_id}", tag = "application credentials", params(("user_id" = String, Path, description = "User id"), ("app_cred_id" = String, Path, description = "Application credential id")), responses((status = 200, description = "The application credential", body = s::AppCredBody), (status = 403, description = "Not the user, not admin"), (status = 404, description = "Unknown user or credential")))]
async fn get_app_cred(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((user, id)): Ids<(String, String)>,
) -> IdResult<Json<Value>> {
    let a = st.identity.get_app_cred(&caller, &user, &id).await?;
    Ok(Json(json!({ "application_credential": ks::app_cred_view(&st.public_url, &a) })))
}

/// `DELETE /users/{id}/application_credentials/{id}`: its tokens stop working.
#[utoipa::path(delete, path = "/identity/v3/users/{user_id}/application_credentials/{app_cred_id}", tag = "application credentials", params(("user_id" = String, Path, description = "User id"), ("app_cred_id" = String, Path, description = "Application credential id")), responses((status = 204, description = "Deleted; its tokens are revoked"), (status = 403, description = "Not the user, not admin, or a restricted application credential's token"), (status = 404, description = "Unknown user or credential")))]
async fn delete_app_cred(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((user, id)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.delete_app_cred(&caller, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Project tags.

/// `GET /projects/{id}/tags`: admins, system readers, or a caller scoped to it.
#[utoipa::path(get, path = "/identity/v3/projects/{project_id}/tags", tag = "projects", params(("project_id" = String, Path, description = "Project id")), responses((status = 200, description = "The project's tags", body = s::TagList), (status = 403, description = "Not admin and not scoped to it"), (status = 404, description = "Unknown project")))]
async fn list_project_tags(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    Ok(Json(json!({ "tags": st.identity.project_tags(&caller, &id).await? })))
}

/// `PUT /projects/{id}/tags` (admin): replace every tag.
#[utoipa::path(put, path = "/identity/v3/projects/{project_id}/tags", tag = "projects", params(("project_id" = String, Path, description = "Project id")), request_body = s::TagList, responses((status = 200, description = "The new tags", body = s::TagList), (status = 400, description = "A tag over 60 characters, with '/' or ',', repeated, or more than 80"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project")))]
async fn replace_project_tags(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
    body: Bytes,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::UpdateProjectTags)?;
    let req = ks::TagsReplace::from_body(parse_json(&body)?)?;
    Ok(Json(json!({ "tags": st.identity.replace_project_tags(&caller, &id, req.tags).await? })))
}

/// `DELETE /projects/{id}/tags` (admin): remove every tag.
#[utoipa::path(delete, path = "/identity/v3/projects/{project_id}/tags", tag = "projects", params(("project_id" = String, Path, description = "Project id")), responses((status = 204, description = "No tags left"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project")))]
async fn clear_project_tags(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<StatusCode> {
    st.identity.clear_project_tags(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET`/`HEAD /projects/{id}/tags/{tag}`: 204 if the project has it, else 404.
#[utoipa::path(get, path = "/identity/v3/projects/{project_id}/tags/{tag}", tag = "projects", params(("project_id" = String, Path, description = "Project id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "The project has it"), (status = 403, description = "Not admin and not scoped to it"), (status = 404, description = "Unknown project, or no such tag")))]
async fn check_project_tag(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((id, tag)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.check_project_tag(&caller, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /projects/{id}/tags/{tag}` (admin): add one tag (idempotent).
#[utoipa::path(put, path = "/identity/v3/projects/{project_id}/tags/{tag}", tag = "projects", params(("project_id" = String, Path, description = "Project id"), ("tag" = String, Path, description = "Tag")), responses((status = 201, description = "The project has it"), (status = 400, description = "A tag over 60 characters, with '/' or ',', or an 81st tag"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project")))]
async fn add_project_tag(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((id, tag)): Ids<(String, String)>,
) -> IdResult<Response> {
    st.identity.add_project_tag(&caller, &id, &tag).await?;
    let location = format!("{}/projects/{id}/tags/{tag}", ks::v3_url(&st.public_url));
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

/// `DELETE /projects/{id}/tags/{tag}` (admin): 404 if the project lacks it.
#[utoipa::path(delete, path = "/identity/v3/projects/{project_id}/tags/{tag}", tag = "projects", params(("project_id" = String, Path, description = "Project id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "Removed"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown project, or no such tag")))]
async fn delete_project_tag(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((id, tag)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.delete_project_tag(&caller, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Role assignments on the system.

/// `GET /system/users/{u}/roles` (admins, system readers).
#[utoipa::path(get, path = "/identity/v3/system/users/{user_id}/roles", tag = "roles", params(("user_id" = String, Path, description = "User id")), responses((status = 200, description = "The user's roles on the system", body = s::RoleList), (status = 403, description = "Admins and system readers only"), (status = 404, description = "Unknown user")))]
async fn list_system_grants(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(u): Ids<String>,
) -> IdResult<Json<Value>> {
    let roles = st.identity.list_system_grants(&caller, &u).await?;
    let views = roles.iter().map(|r| ks::role_view(&st.public_url, r)).collect();
    Ok(list(&st, "roles", &format!("system/users/{u}/roles"), views))
}

/// `GET`/`HEAD /system/users/{u}/roles/{r}` (admins, system readers): 204 if granted, else 404.
#[utoipa::path(get, path = "/identity/v3/system/users/{user_id}/roles/{role_id}", tag = "roles", params(("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Granted"), (status = 403, description = "Admins and system readers only"), (status = 404, description = "Not granted, or unknown user or role")))]
async fn check_system_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((u, r)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.check_system_grant(&caller, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /system/users/{u}/roles/{r}` (admin): grant on the system (idempotent).
#[utoipa::path(put, path = "/identity/v3/system/users/{user_id}/roles/{role_id}", tag = "roles", params(("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Granted (idempotent)"), (status = 403, description = "Admins only"), (status = 404, description = "Unknown user or role")))]
async fn put_system_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((u, r)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.put_system_grant(&caller, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /system/users/{u}/roles/{r}` (admin): revoke; 404 if not granted.
#[utoipa::path(delete, path = "/identity/v3/system/users/{user_id}/roles/{role_id}", tag = "roles", params(("user_id" = String, Path, description = "User id"), ("role_id" = String, Path, description = "Role id")), responses((status = 204, description = "Revoked"), (status = 403, description = "Admins only"), (status = 404, description = "Not granted, or unknown user or role")))]
async fn delete_system_grant(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids((u, r)): Ids<(String, String)>,
) -> IdResult<StatusCode> {
    st.identity.delete_system_grant(&caller, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Domains, services, endpoints, regions (read-only, fixed).

/// `GET /domains`: the single `default` domain (any authenticated caller,
/// since clients resolve `--domain` and their defaults through it).
#[utoipa::path(get, path = "/identity/v3/domains", tag = "domains", params(("name" = Option<String>, Query, description = "Exact name")), responses((status = 200, description = "The default domain (if it matches)", body = s::DomainList)))]
async fn list_domains(State(st): State<AppState>, Caller(_): Caller, Params(q): Params) -> Json<Value> {
    let domains = if ks::default_domain_matches(&q) { vec![ks::domain_view(&st.public_url)] } else { Vec::new() };
    list(&st, "domains", "domains", domains)
}

/// `GET /domains/{id}`: only `default` exists.
#[utoipa::path(get, path = "/identity/v3/domains/{domain_id}", tag = "domains", params(("domain_id" = String, Path, description = "Domain id (only default exists)")), responses((status = 200, description = "The domain", body = s::DomainBody), (status = 404, description = "Unknown domain")))]
async fn get_domain(State(st): State<AppState>, Caller(_): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    if id != ks::DEFAULT_DOMAIN_ID {
        return Err(AuthError::NotFound { kind: ResourceKind::Domain, id }.into());
    }
    Ok(Json(json!({ "domain": ks::domain_view(&st.public_url) })))
}

/// `GET /services` (admin), filter `type`.
#[utoipa::path(get, path = "/identity/v3/services", tag = "catalog", params(("type" = Option<String>, Query, description = "Service type")), responses((status = 200, description = "Services", body = s::ServiceList), (status = 403, description = "Admins only")))]
async fn list_services(State(st): State<AppState>, Caller(caller): Caller, Params(q): Params) -> IdResult<Json<Value>> {
    enforce(&caller, Action::ListServices)?;
    let services = ks::SERVICES
        .iter()
        .filter(|s| q.get("type").is_none_or(|t| t == s.kind))
        .map(|s| ks::service_view(&st.public_url, s))
        .collect();
    Ok(list(&st, "services", "services", services))
}

/// `GET /services/{id}` (admin).
#[utoipa::path(get, path = "/identity/v3/services/{service_id}", tag = "catalog", params(("service_id" = String, Path, description = "Service id")), responses((status = 200, description = "The service", body = s::ServiceBody), (status = 403, description = "Admins only"), (status = 404, description = "Unknown service")))]
async fn get_service(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::GetService)?;
    let s = ks::find_service(&id).ok_or(AuthError::NotFound { kind: ResourceKind::Service, id })?;
    Ok(Json(json!({ "service": ks::service_view(&st.public_url, s) })))
}

/// `GET /endpoints` (admin), filters `service_id`, `interface`, `region_id`.
#[utoipa::path(get, path = "/identity/v3/endpoints", tag = "catalog", params(("service_id" = Option<String>, Query, description = "Service"), ("interface" = Option<String>, Query, description = "public, internal or admin"), ("region_id" = Option<String>, Query, description = "Region")), responses((status = 200, description = "Endpoints", body = s::EndpointList), (status = 403, description = "Admins only")))]
async fn list_endpoints(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Params(q): Params,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::ListEndpoints)?;
    let keep =
        |e: &Value, key: &str| q.get(key).is_none_or(|want| e.get(key).and_then(Value::as_str) == Some(want.as_str()));
    let endpoints = ks::endpoint_views(&st.public_url)
        .into_iter()
        .filter(|e| keep(e, "service_id") && keep(e, "interface") && keep(e, "region_id"))
        .collect();
    Ok(list(&st, "endpoints", "endpoints", endpoints))
}

/// `GET /endpoints/{id}` (admin).
#[utoipa::path(get, path = "/identity/v3/endpoints/{endpoint_id}", tag = "catalog", params(("endpoint_id" = String, Path, description = "Endpoint id")), responses((status = 200, description = "The endpoint", body = s::EndpointBody), (status = 403, description = "Admins only"), (status = 404, description = "Unknown endpoint")))]
async fn get_endpoint(
    State(st): State<AppState>,
    Caller(caller): Caller,
    Ids(id): Ids<String>,
) -> IdResult<Json<Value>> {
    enforce(&caller, Action::GetEndpoint)?;
    let e = ks::endpoint_views(&st.public_url)
        .into_iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .ok_or(AuthError::NotFound { kind: ResourceKind::Endpoint, id })?;
    Ok(Json(json!({ "endpoint": e })))
}

/// `GET /regions`: the single region (any authenticated caller).
#[utoipa::path(get, path = "/identity/v3/regions", tag = "catalog", responses((status = 200, description = "The region", body = s::RegionList)))]
async fn list_regions(State(st): State<AppState>, Caller(_): Caller) -> Json<Value> {
    list(&st, "regions", "regions", vec![ks::region_view(&st.public_url)])
}

/// `GET /regions/{id}`.
#[utoipa::path(get, path = "/identity/v3/regions/{region_id}", tag = "catalog", params(("region_id" = String, Path, description = "Region id")), responses((status = 200, description = "The region", body = s::RegionBody), (status = 404, description = "Unknown region")))]
async fn get_region(State(st): State<AppState>, Caller(_): Caller, Ids(id): Ids<String>) -> IdResult<Json<Value>> {
    if id != ks::REGION {
        return Err(AuthError::NotFound { kind: ResourceKind::Region, id }.into());
    }
    Ok(Json(json!({ "region": ks::region_view(&st.public_url) })))
}

#[cfg(test)]
mod tests;
