//! Identity request bodies and query filters, typed.
//!
//! Bodies are decoded in two steps so that every message stays Keystone's:
//! serde reads the raw shape (`AuthRequest`, the `{"project": {...}}`
//! wrappers), then a `TryFrom`/`from_body` step checks what serde cannot
//! (which method, which scope, non-empty ids) and gives the typed request the
//! identity service takes.

use super::{DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Project, RequestError, User};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// `POST /auth/tokens` body, as sent.
#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    /// The `auth` object.
    pub auth: AuthBody,
}

/// The `auth` object: who, and for which scope.
#[derive(Debug, Deserialize)]
pub struct AuthBody {
    /// Methods and their credentials.
    pub identity: IdentityBody,
    /// Project scope (or none); read by [`TokenRequest::try_from`].
    #[serde(default)]
    pub scope: Option<Value>,
}

/// The `identity` object.
#[derive(Debug, Deserialize)]
pub struct IdentityBody {
    /// `password` and/or `token`.
    pub methods: Vec<String>,
    /// Password credentials.
    #[serde(default)]
    pub password: Option<PasswordMethod>,
    /// Token credentials.
    #[serde(default)]
    pub token: Option<TokenMethod>,
    /// Application credential credentials.
    #[serde(default)]
    pub application_credential: Option<AppCredMethod>,
}

/// The `application_credential` method: by id, or by name and its user.
#[derive(Debug, Deserialize)]
pub struct AppCredMethod {
    /// Credential id.
    #[serde(default)]
    pub id: Option<String>,
    /// Credential name (needs `user`).
    #[serde(default)]
    pub name: Option<String>,
    /// The owner, by id or by name (and domain), when named.
    #[serde(default)]
    pub user: Option<Value>,
    /// The secret.
    pub secret: String,
}

/// The `password` method.
#[derive(Debug, Deserialize)]
pub struct PasswordMethod {
    /// The user and its password.
    pub user: PasswordUser,
}

/// A user named by id, or by name (and domain).
#[derive(Debug, Deserialize)]
pub struct PasswordUser {
    /// User id.
    #[serde(default)]
    pub id: Option<String>,
    /// User name.
    #[serde(default)]
    pub name: Option<String>,
    /// Domain of the name (`{"id"}` or `{"name"}`).
    #[serde(default)]
    pub domain: Option<Value>,
    /// The password.
    pub password: String,
}

/// The `token` method.
#[derive(Debug, Deserialize)]
pub struct TokenMethod {
    /// The token to re-issue or re-scope.
    pub id: String,
}

/// How a token is asked for, once the body has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// User id or name, and password.
    Password {
        /// Id or name (ids win when both match).
        user: String,
        /// The password.
        password: String,
    },
    /// An existing token, re-issued (and re-scoped when a scope is given).
    Token {
        /// The token.
        id: String,
    },
    /// An application credential: by id, or by name and its owner (id or name).
    AppCred {
        /// Which credential.
        cred: AppCredName,
        /// The secret.
        secret: String,
    },
}

/// How an application credential is named at authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppCredName {
    /// By id.
    Id(String),
    /// By name, with its owner's id or name.
    Name {
        /// Credential name.
        name: String,
        /// Owner id or name.
        user: String,
    },
}

impl AuthMethod {
    /// The method's name, as the token body lists it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Password { .. } => "password",
            Self::Token { .. } => "token",
            Self::AppCred { .. } => "application_credential",
        }
    }
}

/// The project a token is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeRequest {
    /// No scope: the user's default project (or the current one, for the token method).
    Default,
    /// By id.
    ProjectId(String),
    /// By name (in the default domain).
    ProjectName(String),
    /// The system (`{"system": {"all": true}}`).
    System,
}

/// A checked `POST /auth/tokens` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// Credentials.
    pub method: AuthMethod,
    /// Scope.
    pub scope: ScopeRequest,
}

impl TryFrom<AuthRequest> for TokenRequest {
    type Error = RequestError;

    /// The scope is read first, then the methods: a bad scope wins over bad credentials fields.
    fn try_from(req: AuthRequest) -> Result<Self, RequestError> {
        let scope = parse_scope(req.auth.scope.as_ref())?;
        let ident = req.auth.identity;
        let has = |m: &str| ident.methods.iter().any(|x| x == m);
        let method = if has("password") {
            let user = ident.password.ok_or_else(|| RequestError::bad("Expecting to find password in identity."))?.user;
            let login = match (user.id.filter(|s| !s.is_empty()), user.name.filter(|s| !s.is_empty())) {
                (Some(id), _) => id,
                (None, Some(name)) => {
                    if let Some(d) = &user.domain
                        && !domain_is_default(d)?
                    {
                        return Err(RequestError::Unauthenticated);
                    }
                    name
                }
                (None, None) => return Err(RequestError::bad("Expecting to find id or name in user.")),
            };
            AuthMethod::Password { user: login, password: user.password }
        } else if has("token") {
            let t = ident.token.ok_or_else(|| RequestError::bad("Expecting to find token in identity."))?;
            AuthMethod::Token { id: t.id }
        } else if has("application_credential") {
            let a = ident
                .application_credential
                .ok_or_else(|| RequestError::bad("Expecting to find application_credential in identity."))?;
            let cred = match (a.id.filter(|s| !s.is_empty()), a.name.filter(|s| !s.is_empty())) {
                (Some(id), _) => AppCredName::Id(id),
                (None, Some(name)) => {
                    let u = a.user.as_ref().and_then(Value::as_object).ok_or_else(|| {
                        RequestError::bad("Expecting to find user in application_credential when it is named.")
                    })?;
                    let user = match (u.get("id").and_then(Value::as_str), u.get("name").and_then(Value::as_str)) {
                        (Some(id), _) if !id.is_empty() => id.to_string(),
                        (_, Some(n)) if !n.is_empty() => {
                            if let Some(d) = u.get("domain")
                                && !domain_is_default(d)?
                            {
                                return Err(RequestError::Unauthenticated);
                            }
                            n.to_string()
                        }
                        _ => return Err(RequestError::bad("Expecting to find id or name in user.")),
                    };
                    AppCredName::Name { name, user }
                }
                (None, None) => {
                    return Err(RequestError::bad("Expecting to find id or name in application_credential."));
                }
            };
            AuthMethod::AppCred { cred, secret: a.secret }
        } else if ident.methods.is_empty() {
            return Err(RequestError::bad("Expecting to find methods in identity."));
        } else {
            return Err(RequestError::Unauthenticated);
        };
        Ok(Self { method, scope })
    }
}

/// Read the `scope` of an auth request. Domain, system and trust scopes do
/// not exist here and fail like a scope the user has no role on (401).
fn parse_scope(scope: Option<&Value>) -> Result<ScopeRequest, RequestError> {
    let m = match scope {
        None | Some(Value::Null) => return Ok(ScopeRequest::Default),
        Some(Value::String(s)) if s == "unscoped" => return Ok(ScopeRequest::Default),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(RequestError::bad("Invalid input for field 'scope': expected an object.")),
    };
    if let Some(p) = m.get("project") {
        let p = p
            .as_object()
            .ok_or_else(|| RequestError::bad("Invalid input for field 'scope.project': expected an object."))?;
        if let Some(id) = p.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Ok(ScopeRequest::ProjectId(id.into()));
        }
        if let Some(name) = p.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if let Some(d) = p.get("domain")
                && !domain_is_default(d)?
            {
                return Err(RequestError::Unauthenticated);
            }
            return Ok(ScopeRequest::ProjectName(name.into()));
        }
        return Err(RequestError::bad("Expecting to find id or name in project."));
    }
    if let Some(sys) = m.get("system") {
        if sys.get("all").and_then(Value::as_bool) == Some(true) {
            return Ok(ScopeRequest::System);
        }
        return Err(RequestError::Unauthenticated);
    }
    if m.contains_key("domain") || m.contains_key("OS-TRUST:trust") {
        return Err(RequestError::Unauthenticated);
    }
    if m.is_empty() {
        return Ok(ScopeRequest::Default);
    }
    Err(RequestError::bad("Invalid input for field 'scope': only project scope is supported."))
}

/// Is a `{"id": ..}` / `{"name": ..}` domain reference the default domain?
fn domain_is_default(d: &Value) -> Result<bool, RequestError> {
    let o = d.as_object().ok_or_else(|| RequestError::bad("Invalid input for field 'domain': expected an object."))?;
    if let Some(id) = o.get("id").filter(|v| !v.is_null()) {
        return Ok(id.as_str() == Some(DEFAULT_DOMAIN_ID));
    }
    if let Some(name) = o.get("name").filter(|v| !v.is_null()) {
        return Ok(name.as_str().is_some_and(|n| n.eq_ignore_ascii_case(DEFAULT_DOMAIN_NAME)));
    }
    Err(RequestError::bad("Expecting to find id or name in domain."))
}

/// The subject of `GET`/`HEAD`/`DELETE /auth/tokens`: the `X-Subject-Token` header, required.
pub fn subject_token(header: Option<&str>) -> Result<&str, RequestError> {
    header
        .filter(|s| !s.is_empty())
        .ok_or_else(|| RequestError::bad("Expecting to find X-Subject-Token in request headers."))
}

/// The `{"<key>": {...}}` wrapper of create and update bodies.
fn wrapped(body: Value, key: &str) -> Result<Map<String, Value>, RequestError> {
    match body {
        Value::Object(mut o) => match o.remove(key) {
            Some(Value::Object(inner)) => Ok(inner),
            Some(_) => Err(RequestError::bad(format!("Invalid input for field '{key}': expected an object."))),
            None => Err(RequestError::bad(format!("Expecting to find {key} in request body."))),
        },
        _ => Err(RequestError::bad(format!("Expecting to find {key} in request body."))),
    }
}

/// Decode the wrapped object into a typed request.
fn typed<T: DeserializeOwned>(obj: Map<String, Value>, key: &str) -> Result<T, RequestError> {
    serde_json::from_value(Value::Object(obj)).map_err(|e| RequestError::bad(format!("Invalid input for {key}: {e}")))
}

/// `POST /projects` body (inside `{"project": ...}`); the service checks the values.
#[derive(Debug, Default, Deserialize)]
pub struct ProjectCreate {
    /// Required, 1..64 characters once trimmed.
    #[serde(default)]
    pub name: Option<String>,
    /// Only `default`.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Only the domain (flat projects).
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Only false.
    #[serde(default)]
    pub is_domain: Option<bool>,
    /// Tags (Keystone's limits apply).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl ProjectCreate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        typed(wrapped(body, "project")?, "project")
    }
}

/// `POST /users` body (inside `{"user": ...}`); the service checks the values.
#[derive(Debug, Default, Deserialize)]
pub struct UserCreate {
    /// Required, 1..255 characters once trimmed.
    #[serde(default)]
    pub name: Option<String>,
    /// Absent: a random one nobody knows.
    #[serde(default)]
    pub password: Option<String>,
    /// Must exist when given.
    #[serde(default)]
    pub default_project_id: Option<String>,
    /// Only `default`.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Optional e-mail.
    #[serde(default)]
    pub email: Option<String>,
}

impl UserCreate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        typed(wrapped(body, "user")?, "user")
    }
}

/// Does a stored value (`current`, `None` when not shown) already equal the requested one?
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

/// The keys of `requested` (in the order of `keys`) whose value differs from the shown one.
fn changed(requested: &Map<String, Value>, shown: &Map<String, Value>, keys: &[&'static str]) -> Vec<&'static str> {
    keys.iter().copied().filter(|k| requested.get(*k).is_some_and(|v| !unchanged(shown.get(*k), v))).collect()
}

/// `PATCH /projects/{id}` body, as sent. Stratus cannot change a project, so
/// the service only accepts attributes that already have the requested value
/// (clients often resend them).
#[derive(Debug, Default)]
pub struct ProjectUpdate {
    /// The attributes of the `project` object.
    pub attributes: Map<String, Value>,
}

impl ProjectUpdate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        Ok(Self { attributes: wrapped(body, "project")? })
    }

    /// The requested `tags` (replacing the project's), if any; 400 unless a list of strings.
    pub fn tags(&self) -> Option<Result<Vec<String>, RequestError>> {
        self.attributes.get("tags").map(|t| {
            serde_json::from_value(t.clone())
                .map_err(|_| RequestError::bad("Invalid input for field 'tags': expected a list of strings."))
        })
    }

    /// Attributes that would change `current`, in Keystone's order.
    pub fn changed(&self, current: &Project) -> Vec<&'static str> {
        let keys = ["name", "description", "enabled", "domain_id", "parent_id", "is_domain", "tags", "options"];
        changed(&self.attributes, &current.attributes(), &keys)
    }
}

/// `PATCH /users/{id}` body, as sent. Only the password and `enabled` can
/// change; other attributes are accepted when they already have the
/// requested value.
#[derive(Debug, Default)]
pub struct UserUpdate {
    /// The attributes of the `user` object, password included.
    pub attributes: Map<String, Value>,
}

impl UserUpdate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        Ok(Self { attributes: wrapped(body, "user")? })
    }

    /// Attributes other than the password and `enabled` that would change
    /// `current` (those Stratus cannot change).
    pub fn changed(&self, current: &User) -> Vec<&'static str> {
        let keys = ["name", "email", "default_project_id", "domain_id", "description"];
        changed(&self.attributes, &current.attributes(), &keys)
    }

    /// The requested `enabled`, as sent (the service checks it is a boolean).
    pub fn enabled(&self) -> Option<&Value> {
        self.attributes.get("enabled")
    }

    /// The requested password, as sent (the service checks it is a non-empty string).
    pub fn password(&self) -> Option<&Value> {
        self.attributes.get("password")
    }
}

/// Keystone's reading of a boolean query parameter: anything but `0`/`false` is true.
pub fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Query parameters as axum hands them over.
pub type Query = HashMap<String, String>;

/// Should a token body carry the catalog (`?nocatalog` says no)?
pub fn wants_catalog(q: &Query) -> bool {
    !q.contains_key("nocatalog")
}

/// `GET /projects` filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectFilter {
    /// Exact name.
    pub name: Option<String>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// `tags`: every one of these.
    pub tags: Vec<String>,
    /// `tags-any`: at least one of these.
    pub tags_any: Vec<String>,
    /// `not-tags`: not all of these.
    pub not_tags: Vec<String>,
    /// `not-tags-any`: none of these.
    pub not_tags_any: Vec<String>,
    /// A domain, parent or `is_domain` filter no project here can match.
    pub matches_nothing: bool,
}

impl ProjectFilter {
    /// Read `name`, `enabled`, `domain_id`, `parent_id`, `is_domain`.
    pub fn from_query(q: &Query) -> Self {
        Self {
            name: q.get("name").cloned(),
            enabled: q.get("enabled").map(|e| query_bool(e)),
            tags: comma_list(q.get("tags")),
            tags_any: comma_list(q.get("tags-any")),
            not_tags: comma_list(q.get("not-tags")),
            not_tags_any: comma_list(q.get("not-tags-any")),
            matches_nothing: q.get("domain_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID)
                || q.get("parent_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID)
                || q.get("is_domain").is_some_and(|v| query_bool(v)),
        }
    }

    /// Does `p` pass the filter? Tag filters combine as Keystone's:
    /// `tags` all present, `tags-any` one present, `not-tags` not all
    /// present, `not-tags-any` none present.
    pub fn matches(&self, p: &Project) -> bool {
        let has = |t: &String| p.tags.contains(t);
        !self.matches_nothing
            && self.name.as_ref().is_none_or(|n| *n == p.name)
            && self.enabled.is_none_or(|e| e == p.enabled)
            && self.tags.iter().all(has)
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && !self.not_tags_any.iter().any(has)
    }
}

/// A comma-separated query value as its non-empty items.
fn comma_list(v: Option<&String>) -> Vec<String> {
    v.map(|v| v.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// `POST /users/{id}/application_credentials` body (inside
/// `{"application_credential": ...}`); the service checks the values.
#[derive(Debug, Default, Deserialize)]
pub struct AppCredCreate {
    /// Required; unique per user.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Absent: one is generated.
    #[serde(default)]
    pub secret: Option<String>,
    /// ISO 8601 time, or null for never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `[{"id": ..}]` or `[{"name": ..}]`; absent or empty: all of the caller's roles on the project.
    #[serde(default)]
    pub roles: Option<Vec<Value>>,
    /// May create application credentials and trusts (default false).
    #[serde(default)]
    pub unrestricted: Option<bool>,
    /// Access rules (not supported: only absent or empty).
    #[serde(default)]
    pub access_rules: Option<Vec<Value>>,
}

impl AppCredCreate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        typed(wrapped(body, "application_credential")?, "application_credential")
    }
}

/// `POST /roles` body (inside `{"role": ...}`); the service checks the values.
#[derive(Debug, Default, Deserialize)]
pub struct RoleCreate {
    /// Required; unique.
    #[serde(default)]
    pub name: Option<String>,
    /// Only null (global roles).
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Accepted, not stored.
    #[serde(default)]
    pub description: Option<String>,
}

impl RoleCreate {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        typed(wrapped(body, "role")?, "role")
    }
}

/// `PUT /projects/{id}/tags` body: `{"tags": [...]}`.
#[derive(Debug, Default, Deserialize)]
pub struct TagsReplace {
    /// The new tags (the service checks them).
    pub tags: Vec<String>,
}

impl TagsReplace {
    /// Read a parsed JSON body.
    pub fn from_body(body: Value) -> Result<Self, RequestError> {
        serde_json::from_value(body).map_err(|e| RequestError::bad(format!("Invalid input for field 'tags': {e}")))
    }
}

/// `GET /users` filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Exact name.
    pub name: Option<String>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// A domain filter no user here can match.
    pub matches_nothing: bool,
}

impl UserFilter {
    /// Read `name`, `enabled`, `domain_id`.
    pub fn from_query(q: &Query) -> Self {
        Self {
            name: q.get("name").cloned(),
            enabled: q.get("enabled").map(|e| query_bool(e)),
            matches_nothing: q.get("domain_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID),
        }
    }

    /// Does `u` pass the filter?
    pub fn matches(&self, u: &User) -> bool {
        !self.matches_nothing
            && self.name.as_ref().is_none_or(|n| *n == u.name)
            && self.enabled.is_none_or(|e| e == u.enabled)
    }
}

/// `GET /roles` filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleFilter {
    /// Exact name.
    pub name: Option<String>,
}

impl RoleFilter {
    /// Read `name`.
    pub fn from_query(q: &Query) -> Self {
        Self { name: q.get("name").cloned() }
    }
}

/// `GET /role_assignments` filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    /// `user.id`.
    pub user_id: Option<String>,
    /// `scope.project.id`.
    pub project_id: Option<String>,
    /// `role.id`.
    pub role_id: Option<String>,
    /// `include_names`: add user, project and role names.
    pub include_names: bool,
    /// `scope.system`: only assignments on the system.
    pub system: bool,
    /// Group, domain or inherited filters: nothing of the kind exists here.
    pub matches_nothing: bool,
}

impl AssignmentFilter {
    /// Read the filters; `effective` changes nothing (there are no groups or inheritance).
    pub fn from_query(q: &Query) -> Self {
        Self {
            user_id: q.get("user.id").cloned(),
            project_id: q.get("scope.project.id").cloned(),
            role_id: q.get("role.id").cloned(),
            include_names: q.get("include_names").is_some_and(|v| query_bool(v)),
            system: q.contains_key("scope.system"),
            matches_nothing: ["group.id", "scope.domain.id", "scope.OS-INHERIT:inherited_to"]
                .iter()
                .any(|k| q.contains_key(*k)),
        }
    }
}

/// `GET /domains` filters, against the single default domain.
pub fn default_domain_matches(q: &Query) -> bool {
    q.get("name").is_none_or(|n| n == DEFAULT_DOMAIN_NAME)
        && q.get("id").is_none_or(|n| n == DEFAULT_DOMAIN_ID)
        && q.get("enabled").is_none_or(|e| query_bool(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn auth(v: Value) -> Result<TokenRequest, RequestError> {
        TokenRequest::try_from(serde_json::from_value::<AuthRequest>(v).map_err(|e| RequestError::bad(e.to_string()))?)
    }

    #[test]
    fn scope_and_user_domain_outside_default_are_unauthenticated() {
        let r = auth(
            json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "a", "domain": { "id": "x" }, "password": "p" } } } } }),
        );
        assert_eq!(r, Err(RequestError::Unauthenticated));
        let r = auth(
            json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": "t" } }, "scope": { "domain": { "id": "default" } } } }),
        );
        assert_eq!(r, Err(RequestError::Unauthenticated));
        let r = auth(
            json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "a", "domain": { "name": "default" }, "password": "p" } } }, "scope": { "project": { "name": "demo" } } } }),
        );
        assert_eq!(
            r,
            Ok(TokenRequest {
                method: AuthMethod::Password { user: "a".into(), password: "p".into() },
                scope: ScopeRequest::ProjectName("demo".into()),
            })
        );
    }

    #[test]
    fn updates_list_only_attributes_that_would_change() {
        let p = Project {
            id: "p".into(),
            name: "web".into(),
            domain_id: "default".into(),
            description: String::new(),
            enabled: true,
            tags: Vec::new(),
        };
        let u = ProjectUpdate::from_body(
            json!({ "project": { "name": "web", "description": null, "tags": [], "enabled": false, "options": {"a": 1} } }),
        )
        .expect("body");
        assert_eq!(u.changed(&p), vec!["enabled", "options"]);
        assert!(ProjectUpdate::from_body(json!({ "project": "x" })).is_err());
        assert!(ProjectUpdate::from_body(json!([])).is_err());
    }
}
