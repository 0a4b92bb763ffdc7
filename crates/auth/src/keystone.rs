//! An external Keystone as the identity service (`--keystone-url`).
//!
//! Operators who keep their own Keystone want Stratus to accept the tokens
//! it issues: every request's token is validated with Keystone's
//! `GET /v3/auth/tokens` (the token in `X-Subject-Token`), authenticated by
//! Stratus's own service token, obtained with the service credentials and
//! renewed before it expires. Answers are cached in memory by token hash for
//! a short TTL, never beyond the token's expiry, so a revoked token (one
//! Keystone answers 404 for) is refused at most one TTL after revocation.
//! When Keystone cannot be reached, or refuses the service user, validation
//! fails with [`AuthError::IdentityUnavailable`] (a 503): a token is never
//! accepted unvalidated.
//!
//! [`Keystone::publish_endpoints`] makes Keystone's catalog list Stratus's
//! services at its public URL (create or update, never duplicate).

use crate::{AuthContext, AuthError, token_hash};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use stratus_api::identity::SERVICES;
use tracing::{info, warn};

/// Most validated tokens kept in memory; past it the cache starts over.
const CACHE_MAX: usize = 10_000;
/// A service token this close to expiry is renewed before use.
const RENEW_MARGIN_SECS: i64 = 120;

/// How to reach the Keystone and who Stratus is there.
#[derive(Clone, Debug)]
pub struct KeystoneConfig {
    /// Keystone's base URL (`http://keystone:5000`, with or without `/v3`).
    pub url: String,
    /// The service user's name.
    pub user: String,
    /// The service user's password.
    pub password: String,
    /// The project the service token is scoped to.
    pub project: String,
    /// The domain (name) of the service user and its project.
    pub domain: String,
    /// How long a validation is trusted before Keystone is asked again
    /// (the bound on how late a revocation takes effect).
    pub cache_ttl: std::time::Duration,
    /// The region endpoints are published in.
    pub region: String,
    /// Timeout of each call to Keystone.
    pub timeout: std::time::Duration,
}

/// Stratus's own token at Keystone.
#[derive(Clone, Debug)]
struct ServiceToken {
    token: String,
    expires_at: DateTime<Utc>,
    project_id: String,
}

/// The client of the external Keystone: token validation with its cache,
/// the service token, and endpoint publishing. Shared by every request.
pub struct Keystone {
    cfg: KeystoneConfig,
    /// `<url>/v3`, without a trailing slash.
    v3: String,
    http: reqwest::Client,
    service: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: Mutex<HashMap<String, (AuthContext, DateTime<Utc>)>>,
}

impl std::fmt::Debug for Keystone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystone").field("url", &self.cfg.url).field("user", &self.cfg.user).finish()
    }
}

/// Keystone could not be used; `what` says which call, `why` what happened.
fn unavailable(what: &str, why: impl std::fmt::Display) -> AuthError {
    warn!(%what, %why, "keystone unavailable");
    AuthError::IdentityUnavailable
}

impl Keystone {
    /// A client for this Keystone: an `http://` or `https://` URL (TLS
    /// checked against the system's trusted certificates).
    pub fn new(cfg: KeystoneConfig) -> Result<Self, AuthError> {
        let base = cfg.url.trim_end_matches('/');
        let base = base.strip_suffix("/v3").unwrap_or(base).to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(AuthError::BadRequest(format!(
                "--keystone-url must be an http:// or https:// URL: {}",
                cfg.url
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| AuthError::BadRequest(format!("cannot build the Keystone client: {e}")))?;
        Ok(Self {
            v3: format!("{base}/v3"),
            cfg,
            http,
            service: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Keystone's base URL (without `/v3`), as clients should be told.
    pub fn url(&self) -> &str {
        self.v3.strip_suffix("/v3").unwrap_or(&self.v3)
    }

    /// The id of the project the service token is scoped to (owner of the
    /// seeded images). Fetches the service token if there is none yet.
    pub async fn service_project_id(&self) -> Result<String, AuthError> {
        Ok(self.service_token().await?.project_id)
    }

    /// Resolve a client's token into its caller, from the cache when the
    /// last validation is younger than the TTL and the token not expired.
    pub async fn validate(&self, token: &str) -> Result<AuthContext, AuthError> {
        let hash = token_hash(token);
        let now = Utc::now();
        if let Some(ctx) = self.cached(&hash, now) {
            return Ok(ctx);
        }
        let ctx = match self.fetch_context(token).await {
            Ok(ctx) => ctx,
            Err(e) => {
                if matches!(e, AuthError::InvalidToken)
                    && let Ok(mut cache) = self.cache.lock()
                {
                    cache.remove(&hash);
                }
                return Err(e);
            }
        };
        let ttl = Duration::from_std(self.cfg.cache_ttl).unwrap_or(Duration::seconds(30));
        let until = (now + ttl).min(ctx.expires_at);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (_, until)| *until > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(hash, (ctx.clone(), until));
        }
        Ok(ctx)
    }

    fn cached(&self, hash: &str, now: DateTime<Utc>) -> Option<AuthContext> {
        let cache = self.cache.lock().ok()?;
        let (ctx, until) = cache.get(hash)?;
        (*until > now && ctx.expires_at > now).then(|| ctx.clone())
    }

    /// Ask Keystone about `token`; a 401 on the service token renews it once.
    async fn fetch_context(&self, token: &str) -> Result<AuthContext, AuthError> {
        for attempt in 0..2 {
            let service = self.service_token().await?;
            let resp = self
                .http
                .get(format!("{}/auth/tokens", self.v3))
                .header("X-Auth-Token", &service.token)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(|e| unavailable("validate a token", e))?;
            match resp.status() {
                s if s.is_success() => {
                    let body: Value = resp.json().await.map_err(|e| unavailable("validate a token", e))?;
                    return context_of(&body);
                }
                StatusCode::NOT_FOUND => return Err(AuthError::InvalidToken),
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    // The service token was revoked or expired early: get a new one.
                    *self.service.lock().await = None;
                }
                s => return Err(unavailable("validate a token", format!("Keystone answered {s}"))),
            }
        }
        Err(unavailable("validate a token", "the service token is refused"))
    }

    /// The service token, fetched or renewed when missing or about to expire.
    async fn service_token(&self) -> Result<ServiceToken, AuthError> {
        let mut slot = self.service.lock().await;
        if let Some(t) = slot.as_ref()
            && t.expires_at - Duration::seconds(RENEW_MARGIN_SECS) > Utc::now()
        {
            return Ok(t.clone());
        }
        let domain = json!({ "name": self.cfg.domain });
        let body = json!({ "auth": {
            "identity": { "methods": ["password"], "password": { "user": {
                "name": self.cfg.user, "domain": domain, "password": self.cfg.password } } },
            "scope": { "project": { "name": self.cfg.project, "domain": domain } },
        }});
        let resp = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.v3))
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable("get the service token", e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(unavailable(
                "get the service token",
                format!("Keystone answered {status} for user {} in project {}", self.cfg.user, self.cfg.project),
            ));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| unavailable("get the service token", "no X-Subject-Token in the answer"))?;
        let body: Value = resp.json().await.map_err(|e| unavailable("get the service token", e))?;
        let t = &body["token"];
        let expires_at = time_of(&t["expires_at"])
            .ok_or_else(|| unavailable("get the service token", "no expires_at in the answer"))?;
        let project_id = t["project"]["id"]
            .as_str()
            .ok_or_else(|| unavailable("get the service token", "the token is not project-scoped"))?
            .to_string();
        let fresh = ServiceToken { token, expires_at, project_id };
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Does Keystone know the project `id`? `None` when it cannot say now
    /// (unreachable, or refusing the service user): callers then accept the
    /// id, as Nova does when Keystone does not answer its project check.
    pub async fn project_exists(&self, id: &str) -> Option<bool> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Some(false);
        }
        match self.call(Method::GET, &format!("/projects/{id}"), None).await {
            Ok((s, _)) if s.is_success() => Some(true),
            Ok((StatusCode::NOT_FOUND, _)) => Some(false),
            _ => None,
        }
    }

    /// One call to Keystone's API with the service token; the JSON answer
    /// (`Null` for an empty one) or the status it failed with.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), AuthError> {
        let service = self.service_token().await?;
        let mut req = self.http.request(method, format!("{}{path}", self.v3)).header("X-Auth-Token", service.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| unavailable(path, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| unavailable(path, e))?;
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Ok((status, value))
    }

    /// Like [`Self::call`], but anything other than a 2xx is an error naming `what`.
    async fn call_ok(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value, AuthError> {
        let (status, value) = self.call(method, path, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(AuthError::Publish(format!(
                "{what}: Keystone answered {status} ({}); the service user needs the admin role",
                value["error"]["message"].as_str().unwrap_or("no message")
            )))
        }
    }

    /// Make Keystone's catalog list Stratus's compute, image and block
    /// storage services with one public endpoint each at `public_url` in the
    /// configured region: created when missing, updated when their URL
    /// differs, never duplicated. Needs the admin role for the service user.
    pub async fn publish_endpoints(&self, public_url: &str) -> Result<(), AuthError> {
        let region = self.cfg.region.clone();
        let (status, _) = self.call(Method::GET, &format!("/regions/{region}"), None).await?;
        if status == StatusCode::NOT_FOUND {
            self.call_ok(Method::POST, "/regions", Some(json!({ "region": { "id": region } })), "create the region")
                .await?;
        }
        for s in SERVICES.iter().filter(|s| s.kind != "identity") {
            let listed =
                self.call_ok(Method::GET, &format!("/services?type={}", s.kind), None, "list services").await?;
            let services = listed["services"].as_array().cloned().unwrap_or_default();
            let existing = services
                .iter()
                .find(|v| v["name"] == s.name)
                .or_else(|| services.first())
                .and_then(|v| v["id"].as_str())
                .map(str::to_string);
            let service_id = match existing {
                Some(id) => id,
                None => {
                    let body = json!({ "service": { "type": s.kind, "name": s.name, "enabled": true } });
                    let made = self.call_ok(Method::POST, "/services", Some(body), "create a service").await?;
                    made["service"]["id"]
                        .as_str()
                        .ok_or_else(|| AuthError::Publish("Keystone created a service without an id".into()))?
                        .to_string()
                }
            };
            let url = if s.per_project {
                format!("{public_url}{}/%(project_id)s", s.path)
            } else {
                format!("{public_url}{}", s.path)
            };
            let path = format!("/endpoints?service_id={service_id}&interface=public&region_id={region}");
            let listed = self.call_ok(Method::GET, &path, None, "list endpoints").await?;
            let endpoint = listed["endpoints"].as_array().and_then(|e| e.first()).cloned();
            match endpoint {
                Some(e) if e["url"] == url.as_str() => {}
                Some(e) => {
                    let id = e["id"].as_str().unwrap_or_default();
                    let body = json!({ "endpoint": { "url": url } });
                    self.call_ok(Method::PATCH, &format!("/endpoints/{id}"), Some(body), "update an endpoint").await?;
                    info!(service = s.kind, %url, "keystone endpoint updated");
                }
                None => {
                    let body = json!({ "endpoint": {
                        "service_id": service_id, "interface": "public", "region_id": region, "url": url } });
                    self.call_ok(Method::POST, "/endpoints", Some(body), "create an endpoint").await?;
                    info!(service = s.kind, %url, "keystone endpoint created");
                }
            }
        }
        Ok(())
    }
}

/// A Keystone timestamp (`2026-01-01T00:00:00.000000Z`).
fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|t| t.with_timezone(&Utc))
}

/// The caller a token-validation answer describes. Only project- and
/// system-scoped tokens name a caller Stratus can authorise: others are
/// refused (401).
fn context_of(body: &Value) -> Result<AuthContext, AuthError> {
    let t = &body["token"];
    let s = |v: &Value| v.as_str().map(str::to_string);
    // A system-scoped token (`"system": {"all": true}`) names no project.
    let system_scope = t["system"]["all"].as_bool() == Some(true);
    let project_id = if system_scope { Some(String::new()) } else { s(&t["project"]["id"]) };
    let (Some(user_id), Some(project_id), Some(expires_at)) =
        (s(&t["user"]["id"]), project_id, time_of(&t["expires_at"]))
    else {
        return Err(AuthError::InvalidToken);
    };
    if expires_at <= Utc::now() {
        return Err(AuthError::InvalidToken);
    }
    let roles = t["roles"].as_array().cloned().unwrap_or_default();
    Ok(AuthContext {
        user_id,
        user_name: s(&t["user"]["name"]).unwrap_or_default(),
        project_id,
        project_name: s(&t["project"]["name"]).unwrap_or_default(),
        roles: roles.iter().filter_map(|r| s(&r["name"])).collect(),
        role_ids: roles.iter().filter_map(|r| s(&r["id"])).collect(),
        audit_id: t["audit_ids"].as_array().and_then(|a| a.first()).and_then(s).unwrap_or_default(),
        issued_at: time_of(&t["issued_at"]).unwrap_or_else(Utc::now),
        expires_at,
        system_scope,
        app_cred: s(&t["application_credential"]["id"]).map(|id| crate::AppCredRef {
            id,
            name: s(&t["application_credential"]["name"]).unwrap_or_default(),
            restricted: t["application_credential"]["restricted"].as_bool() != Some(false),
        }),
    })
}

/// Where API tokens are validated: the built-in identity service, or an
/// external Keystone. The middleware asks this, whichever it is.
#[derive(Clone)]
pub enum TokenValidator {
    /// Tokens issued by Stratus's own Identity API.
    Builtin(crate::Identity),
    /// Tokens issued by an operator's Keystone.
    Keystone(std::sync::Arc<Keystone>),
}

impl TokenValidator {
    /// The caller `token` stands for (401 when invalid, 503 when Keystone is unreachable).
    pub async fn validate(&self, token: &str) -> Result<AuthContext, AuthError> {
        match self {
            Self::Builtin(identity) => identity.validate(token).await,
            Self::Keystone(k) => k.validate(token).await,
        }
    }

    /// The external Keystone, if tokens come from one.
    pub fn keystone(&self) -> Option<&Keystone> {
        match self {
            Self::Builtin(_) => None,
            Self::Keystone(k) => Some(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(expires_at: &str) -> Value {
        json!({ "token": {
            "user": { "id": "u1", "name": "demo" },
            "project": { "id": "p1", "name": "demo" },
            "roles": [ { "id": "r1", "name": "member" }, { "id": "r2", "name": "reader" } ],
            "audit_ids": ["a1"],
            "issued_at": "2026-01-01T00:00:00.000000Z",
            "expires_at": expires_at,
        }})
    }

    /// Keystone's token-validation body (user, project, implied roles, audit ids) maps to the caller.
    #[test]
    fn a_validation_answer_maps_to_the_caller() {
        let ctx = context_of(&answer("2999-01-01T00:00:00.000000Z")).expect("valid");
        assert_eq!((ctx.user_id.as_str(), ctx.project_id.as_str(), ctx.audit_id.as_str()), ("u1", "p1", "a1"));
        assert_eq!(ctx.roles, ["member", "reader"]);
        assert!(ctx.can_write() && !ctx.is_admin());
    }

    /// Expired, unscoped (no project) or malformed answers never yield a caller.
    #[test]
    fn expired_or_unscoped_answers_are_refused() {
        assert!(matches!(context_of(&answer("2000-01-01T00:00:00Z")), Err(AuthError::InvalidToken)));
        let mut unscoped = answer("2999-01-01T00:00:00Z");
        unscoped["token"]["project"] = Value::Null;
        assert!(matches!(context_of(&unscoped), Err(AuthError::InvalidToken)));
        assert!(matches!(context_of(&json!({})), Err(AuthError::InvalidToken)));
    }

    /// Keystone's system-scoped tokens (`"system": {"all": true}`, no project) name a
    /// system caller; an application credential's token names its credential.
    #[test]
    fn system_scoped_and_app_cred_answers_map_to_the_caller() {
        let mut system = answer("2999-01-01T00:00:00Z");
        system["token"]["project"] = Value::Null;
        system["token"]["system"] = json!({ "all": true });
        system["token"]["roles"] = json!([{ "id": "r2", "name": "reader" }]);
        let ctx = context_of(&system).expect("system token");
        assert!(ctx.system_scope && ctx.project_id.is_empty() && ctx.is_system_reader() && !ctx.can_write());
        let mut ac = answer("2999-01-01T00:00:00Z");
        ac["token"]["application_credential"] = json!({ "id": "ac1", "name": "ci", "restricted": true });
        let ctx = context_of(&ac).expect("app cred token");
        assert_eq!(ctx.app_cred, Some(crate::AppCredRef { id: "ac1".into(), name: "ci".into(), restricted: true }));
    }

    /// An unreachable Keystone is a 503-class error, never an accepted token.
    #[tokio::test]
    async fn an_unreachable_keystone_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let k = Keystone::new(KeystoneConfig {
            url: format!("http://127.0.0.1:{port}/v3/"),
            user: "stratus".into(),
            password: "pw".into(),
            project: "service".into(),
            domain: "Default".into(),
            cache_ttl: std::time::Duration::from_secs(30),
            region: "RegionOne".into(),
            timeout: std::time::Duration::from_secs(2),
        })
        .expect("client");
        assert_eq!(k.url(), format!("http://127.0.0.1:{port}"));
        assert!(matches!(k.validate("tok").await, Err(AuthError::IdentityUnavailable)));
    }

    /// Only http(s) URLs are taken; an https Keystone gets a TLS client.
    #[tokio::test]
    async fn only_http_or_https_urls_are_taken() {
        let cfg = |url: &str| KeystoneConfig {
            url: url.into(),
            user: "s".into(),
            password: "p".into(),
            project: "service".into(),
            domain: "Default".into(),
            cache_ttl: std::time::Duration::from_secs(30),
            region: "RegionOne".into(),
            timeout: std::time::Duration::from_secs(2),
        };
        let e = Keystone::new(cfg("keystone:5000")).expect_err("no scheme");
        assert!(e.to_string().contains("https://"), "{e}");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let k = Keystone::new(cfg(&format!("https://127.0.0.1:{port}/v3"))).expect("https client");
        assert!(matches!(k.validate("tok").await, Err(AuthError::IdentityUnavailable)));
    }
}
