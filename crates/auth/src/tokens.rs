//! Tokens: password and token authentication, validation (cached), and
//! revocation, including the subject-token rules of `/auth/tokens`.

use crate::app_creds::app_cred_ref;
use crate::policy::{Action, enforce};
use crate::secret::{hash_password, random_secret, token_hash, verify_password};
use crate::{AuthContext, AuthError, Identity};
use chrono::{DateTime, Duration, Utc};
use stratus_api::identity::{AppCredName, AuthMethod, ScopeRequest, TokenRequest};
use stratus_db::{AppCredRow, DbError, ProjectRow, RowKind, TokenGuard, TokenRow, UserRow};
use tracing::{debug, info, warn};

/// How long a validated token is trusted without re-reading the database
/// (bounds how late a revocation seen by another API process takes effect).
const CACHE_TTL_SECS: i64 = 10;

/// Most expired tokens one issue deletes: every issue adds one token and
/// removes up to this many expired ones, so the table stays bounded by the
/// live tokens while no single login pays for a large backlog.
pub(crate) const PURGE_BATCH: usize = 100;

/// A freshly issued token: the secret goes to the client, the context to the body.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    /// The secret (`X-Subject-Token`).
    pub token: String,
    /// What the token stands for.
    pub context: AuthContext,
}

/// How the client named its project scope.
#[derive(Clone, Debug)]
pub enum ProjectScope {
    /// By id.
    Id(String),
    /// By name (domain is always `default` here).
    Name(String),
    /// No scope given: the user's default project, else its first assignment.
    Default,
    /// The system (`{"system": {"all": true}}`).
    System,
}

impl From<ScopeRequest> for ProjectScope {
    fn from(s: ScopeRequest) -> Self {
        match s {
            ScopeRequest::Default => Self::Default,
            ScopeRequest::ProjectId(id) => Self::Id(id),
            ScopeRequest::ProjectName(n) => Self::Name(n),
            ScopeRequest::System => Self::System,
        }
    }
}

impl Identity {
    /// `POST /auth/tokens`: a token by password, or a re-issued (and
    /// possibly re-scoped) token by token, which expires when the token it
    /// came from does (Keystone). Every refusal is a 401.
    pub async fn issue_token(&self, req: TokenRequest) -> Result<IssuedToken, AuthError> {
        self.issue_token_from(req, None).await
    }

    /// [`Identity::issue_token`] for a client at `source` (its failed
    /// password logins count against that address too).
    pub async fn issue_token_from(
        &self,
        req: TokenRequest,
        source: Option<std::net::IpAddr>,
    ) -> Result<IssuedToken, AuthError> {
        match req.method {
            AuthMethod::Password { user, password } => {
                self.authenticate_from(&user, &password, req.scope.into(), source).await
            }
            AuthMethod::AppCred { cred, secret } => self.authenticate_app_cred(cred, secret, req.scope, source).await,
            AuthMethod::Token { id } => {
                let mut ctx = self.validate(&id).await?;
                // A token from an application credential keeps its scope (Keystone refuses re-scoping it).
                if ctx.app_cred.is_some() && !same_scope(&ctx, &req.scope) {
                    return Err(AuthError::InvalidCredentials);
                }
                let target = match req.scope {
                    ScopeRequest::Default => None,
                    ScopeRequest::System => {
                        ctx.system_scope = true;
                        ctx.project_id.clear();
                        ctx.project_name.clear();
                        None
                    }
                    ScopeRequest::ProjectId(id) => Some(self.ds.project_get(&id).await),
                    ScopeRequest::ProjectName(n) => Some(self.ds.project_find(&n).await),
                };
                if let Some(target) = target {
                    let p = match target {
                        Ok(p) => p,
                        Err(DbError::NotFound { .. }) => return Err(AuthError::InvalidCredentials),
                        Err(e) => return Err(e.into()),
                    };
                    if !p.enabled {
                        return Err(AuthError::InvalidCredentials);
                    }
                    ctx.system_scope = false;
                    ctx.project_id = p.id;
                    ctx.project_name = p.name;
                }
                // A user or project that vanished meanwhile is bad credentials, not a 404.
                self.reissue(&ctx, &id).await.map_err(|e| match e {
                    AuthError::Db(DbError::NotFound { .. }) => AuthError::InvalidCredentials,
                    e => e,
                })
            }
        }
    }

    /// Password authentication with a project scope.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
        scope: ProjectScope,
    ) -> Result<IssuedToken, AuthError> {
        self.authenticate_from(user, password, scope, None).await
    }

    /// Password authentication by a client at `source`: refused early when
    /// the account is locked or the address is over its failure limit; the
    /// argon2 check runs on the bounded blocking pool (see `crate::login`).
    pub async fn authenticate_from(
        &self,
        user: &str,
        password: &str,
        scope: ProjectScope,
        source: Option<std::net::IpAddr>,
    ) -> Result<IssuedToken, AuthError> {
        let now = self.ds.clock().now();
        self.logins.admit(source, now)?;
        let found = match self.ds.user_find(user).await {
            Ok(u) => Some(u),
            Err(DbError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(u) = &found {
            let (count, last) = self.ds.user_login_failures(&u.id).await?;
            if self.logins.locked(count, last, now) {
                return Err(AuthError::AccountLocked { user: user.to_lowercase() });
            }
        }
        let password = password.to_string();
        let ok = match &found {
            Some(u) => {
                let hash = u.password_hash.clone();
                self.logins.check(move || verify_password(&password, &hash)).await?
            }
            None => {
                // Spend the same time as a real check so user names cannot be probed by timing.
                self.logins.check(move || hash_password(&password).map(|_| false).unwrap_or(false)).await?
            }
        };
        let u = match found {
            Some(u) if ok && u.enabled => u,
            other => {
                self.logins.failed(source, now);
                if let Some(u) = &other {
                    self.ds.user_login_failed(&u.id, self.logins.limits().lockout_duration).await?;
                }
                match other {
                    Some(u) => {
                        debug!(user = %u.id, enabled = u.enabled, "login refused: disabled user or wrong password")
                    }
                    None => debug!(%user, "login refused: unknown user"),
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.ds.user_login_succeeded(&u.id).await?;
        let project = match scope {
            ProjectScope::System => None,
            ProjectScope::Id(id) => Some(self.ds.project_get(&id).await),
            ProjectScope::Name(n) => Some(self.ds.project_find(&n).await),
            ProjectScope::Default => Some(self.default_project(&u).await),
        };
        let project = match project {
            None => None,
            Some(Ok(p)) if p.enabled => Some(p),
            Some(Ok(_)) | Some(Err(DbError::NotFound { .. })) => return Err(AuthError::InvalidCredentials),
            Some(Err(e)) => return Err(e.into()),
        };
        let expires_at = self.ds.clock().now() + self.token_ttl;
        let guard = TokenGuard::Password { password_hash: &u.password_hash };
        self.issue(&u, project.as_ref(), expires_at, guard, None).await.map_err(|e| match e {
            // The password changed (or the user was disabled) while it was checked.
            AuthError::InvalidToken => AuthError::InvalidCredentials,
            e => e,
        })
    }

    /// Application credential authentication (Keystone's
    /// `application_credential` method): the secret is checked against its
    /// argon2id hash like a password (same bounded pool, same per-address
    /// failure count); the token is scoped to the credential's project with
    /// the credential's roles, and never outlives the credential.
    async fn authenticate_app_cred(
        &self,
        cred: AppCredName,
        secret: String,
        scope: ScopeRequest,
        source: Option<std::net::IpAddr>,
    ) -> Result<IssuedToken, AuthError> {
        let now = self.ds.clock().now();
        self.logins.admit(source, now)?;
        let row = match cred {
            AppCredName::Id(id) => self.ds.app_cred_get(&id).await,
            AppCredName::Name { name, user } => match self.ds.user_find(&user).await {
                Ok(u) => self.ds.app_cred_by_name(&u.id, &name).await,
                Err(e) => Err(e),
            },
        };
        let row = match row {
            Ok(r) => Some(r),
            Err(DbError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = match &row {
            Some(r) => {
                let hash = r.secret_hash.clone();
                self.logins.check(move || verify_password(&secret, &hash)).await?
            }
            None => self.logins.check(move || hash_password(&secret).map(|_| false).unwrap_or(false)).await?,
        };
        let row = match row {
            Some(r) if ok && r.expires_at.is_none_or(|e| e > now) => r,
            _ => {
                self.logins.failed(source, now);
                debug!("application credential refused: unknown, expired or wrong secret");
                return Err(AuthError::InvalidCredentials);
            }
        };
        // Keystone: an application credential cannot ask for another scope than its own.
        match &scope {
            ScopeRequest::Default => {}
            ScopeRequest::ProjectId(id) if *id == row.project_id => {}
            _ => return Err(AuthError::InvalidCredentials),
        }
        let invalid = |e: DbError| match e {
            DbError::NotFound { .. } => AuthError::InvalidCredentials,
            e => e.into(),
        };
        let u = self.ds.user_find(&row.user_id).await.map_err(invalid)?;
        let p = self.ds.project_get(&row.project_id).await.map_err(invalid)?;
        if !u.enabled || !p.enabled {
            return Err(AuthError::InvalidCredentials);
        }
        let ttl_end = now + self.token_ttl;
        let expires_at = row.expires_at.map_or(ttl_end, |e| e.min(ttl_end));
        let guard = TokenGuard::AppCred { id: &row.id };
        self.issue(&u, Some(&p), expires_at, guard, Some(&row)).await.map_err(|e| match e {
            AuthError::InvalidToken | AuthError::NoRoleOnProject { .. } => AuthError::InvalidCredentials,
            e => e,
        })
    }

    /// Issue a token for an already-validated context (token re-scoping by
    /// `token` method) derived from `parent`: it keeps the parent's expiry,
    /// as Keystone does, so re-scoping never extends a token's life; and it
    /// is refused if the parent is revoked before the new token is stored.
    pub async fn reissue(&self, ctx: &AuthContext, parent: &str) -> Result<IssuedToken, AuthError> {
        let u = self.ds.user_find(&ctx.user_id).await?;
        let p = if ctx.system_scope { None } else { Some(self.ds.project_get(&ctx.project_id).await?) };
        let app = match &ctx.app_cred {
            Some(a) => Some(self.ds.app_cred_get(&a.id).await?),
            None => None,
        };
        let parent_hash = token_hash(parent);
        self.issue(&u, p.as_ref(), ctx.expires_at, TokenGuard::Parent { token_hash: &parent_hash }, app.as_ref()).await
    }

    async fn default_project(&self, u: &UserRow) -> Result<ProjectRow, DbError> {
        if let Some(p) = &u.default_project_id {
            return self.ds.project_get(p).await;
        }
        let a = self.ds.assignment_list(Some(&u.id), None).await?;
        match a.first() {
            Some(a) => self.ds.project_get(&a.project_id).await,
            None => Err(DbError::not_found(RowKind::Project, format!("default project of user {}", u.id))),
        }
    }

    /// The `(id, name)` roles a token of `user_id` carries: its roles on
    /// `project` (on the system when `None`), narrowed to an application
    /// credential's roles. Empty when the user lacks any role the
    /// credential names (it no longer stands for what it was created with).
    pub(crate) async fn scope_roles(
        &self,
        user_id: &str,
        project: Option<&str>,
        app: Option<&AppCredRow>,
    ) -> Result<Vec<(String, String)>, AuthError> {
        let held: Vec<(String, String)> = match project {
            Some(p) => self
                .ds
                .assignment_list(Some(user_id), Some(p))
                .await?
                .into_iter()
                .map(|a| (a.role_id, a.role_name))
                .collect(),
            None => {
                self.ds.system_grant_list(Some(user_id)).await?.into_iter().map(|a| (a.role_id, a.role_name)).collect()
            }
        };
        let Some(app) = app else { return Ok(held) };
        let wanted = crate::app_creds::role_ids_of(app);
        if wanted.is_empty() || !wanted.iter().all(|w| held.iter().any(|(id, _)| id == w)) {
            return Ok(Vec::new());
        }
        Ok(held.into_iter().filter(|(id, _)| wanted.contains(id)).collect())
    }

    /// Store and return a new token of `u` on `p` (the system when `None`)
    /// expiring at `expires_at`, from application credential `app` if any,
    /// if `guard` still holds when it is stored (else `InvalidToken`); then
    /// purge a bounded batch of expired tokens.
    async fn issue(
        &self,
        u: &UserRow,
        p: Option<&ProjectRow>,
        expires_at: DateTime<Utc>,
        guard: TokenGuard<'_>,
        app: Option<&AppCredRow>,
    ) -> Result<IssuedToken, AuthError> {
        let roles = self.scope_roles(&u.id, p.map(|p| p.id.as_str()), app).await?;
        if roles.is_empty() {
            let scope = p.map_or("system", |p| p.id.as_str());
            debug!(user = %u.id, %scope, "token refused: no role on the scope");
            return Err(match p {
                Some(p) => AuthError::NoRoleOnProject { user: u.id.clone(), project: p.id.clone() },
                None => AuthError::InvalidCredentials,
            });
        }
        let now = self.ds.clock().now();
        let token = random_secret();
        let audit_id = uuid::Uuid::new_v4().simple().to_string()[..22].to_string();
        let row = TokenRow {
            token_hash: token_hash(&token),
            user_id: u.id.clone(),
            project_id: p.map(|p| p.id.clone()).unwrap_or_default(),
            audit_id: audit_id.clone(),
            issued_at: now,
            expires_at,
            revoked: false,
            app_cred_id: app.map(|a| a.id.clone()),
            system_scope: p.is_none(),
        };
        if !self.ds.token_insert_guarded(&row, &guard).await? {
            debug!(user = %u.id, "token refused: revoked while it was being issued");
            return Err(AuthError::InvalidToken);
        }
        self.purge_expired(now).await;
        let context = AuthContext {
            user_id: u.id.clone(),
            user_name: u.name.clone(),
            project_id: row.project_id,
            project_name: p.map(|p| p.name.clone()).unwrap_or_default(),
            roles: roles.iter().map(|r| r.1.clone()).collect(),
            role_ids: roles.iter().map(|r| r.0.clone()).collect(),
            audit_id,
            issued_at: now,
            expires_at,
            system_scope: row.system_scope,
            app_cred: app.map(app_cred_ref),
        };
        Ok(IssuedToken { token, context })
    }

    /// Delete up to [`PURGE_BATCH`] expired tokens (Keystone's
    /// `token_flush`, run a little at every issue). A failure only delays
    /// the purge: it never fails the login.
    async fn purge_expired(&self, now: DateTime<Utc>) {
        let limit = i64::try_from(PURGE_BATCH).unwrap_or(i64::MAX);
        match self.ds.token_purge_expired(now, limit).await {
            Ok(0) => {}
            Ok(n) => debug!(purged = n, "expired tokens purged"),
            Err(e) => warn!(error = %e, "purging expired tokens failed; retried at the next issue"),
        }
    }

    /// Resolve a token into its context; expired, revoked or unknown tokens fail.
    pub async fn validate(&self, token: &str) -> Result<AuthContext, AuthError> {
        let hash = token_hash(token);
        let now = self.ds.clock().now();
        if let Some(ctx) = self.cached(&hash, now) {
            return Ok(ctx);
        }
        let row = match self.ds.token_get(&hash).await {
            Ok(r) => r,
            Err(DbError::NotFound { .. }) => return Err(AuthError::InvalidToken),
            Err(e) => return Err(e.into()),
        };
        let expires_at = row.expires_at;
        if row.revoked || expires_at <= now {
            return Err(AuthError::InvalidToken);
        }
        let u = self.ds.user_find(&row.user_id).await.map_err(|_| AuthError::InvalidToken)?;
        if !u.enabled {
            return Err(AuthError::InvalidToken);
        }
        let (project_id, project_name) = if row.system_scope {
            (String::new(), String::new())
        } else {
            let p = self.ds.project_get(&row.project_id).await.map_err(|_| AuthError::InvalidToken)?;
            if !p.enabled {
                return Err(AuthError::InvalidToken);
            }
            (p.id, p.name)
        };
        let app = match &row.app_cred_id {
            Some(id) => {
                let a = self.ds.app_cred_get(id).await.map_err(|_| AuthError::InvalidToken)?;
                if a.expires_at.is_some_and(|e| e <= now) {
                    return Err(AuthError::InvalidToken);
                }
                Some(a)
            }
            None => None,
        };
        let roles = self.scope_roles(&u.id, (!row.system_scope).then_some(project_id.as_str()), app.as_ref()).await?;
        if roles.is_empty() {
            return Err(AuthError::InvalidToken);
        }
        let ctx = AuthContext {
            user_id: u.id,
            user_name: u.name,
            project_id,
            project_name,
            roles: roles.iter().map(|r| r.1.clone()).collect(),
            role_ids: roles.iter().map(|r| r.0.clone()).collect(),
            audit_id: row.audit_id,
            issued_at: row.issued_at,
            expires_at,
            system_scope: row.system_scope,
            app_cred: app.as_ref().map(app_cred_ref),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (ctx.clone(), now));
        }
        Ok(ctx)
    }

    /// A context cached recently enough, for a token not yet expired.
    fn cached(&self, hash: &str, now: DateTime<Utc>) -> Option<AuthContext> {
        let cache = self.cache.lock().ok()?;
        let (ctx, cached_at) = cache.get(hash)?;
        (now - *cached_at < Duration::seconds(CACHE_TTL_SECS) && ctx.expires_at > now).then(|| ctx.clone())
    }

    /// Revoke a token (`DELETE /auth/tokens`).
    pub async fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let hash = token_hash(token);
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&hash);
        }
        self.ds.token_revoke(&hash).await.map_err(|e| match e {
            DbError::NotFound { .. } => AuthError::InvalidToken,
            e => e.into(),
        })
    }

    /// `GET`/`HEAD /auth/tokens`: resolve the subject token for `caller`:
    /// unknown when invalid, forbidden when it belongs to another user and the
    /// caller is not an admin.
    pub async fn subject_token(&self, caller: &AuthContext, token: &str) -> Result<AuthContext, AuthError> {
        let ctx = match self.validate(token).await {
            Ok(ctx) => ctx,
            Err(AuthError::InvalidToken) => return Err(AuthError::SubjectTokenNotFound),
            Err(e) => return Err(e),
        };
        enforce(caller, Action::ValidateToken { owner: &ctx.user_id })?;
        Ok(ctx)
    }

    /// `DELETE /auth/tokens`: revoke the subject token (one's own, or any for admins).
    pub async fn revoke_subject_token(&self, caller: &AuthContext, token: &str) -> Result<(), AuthError> {
        let subject = self.subject_token(caller, token).await?;
        match self.revoke(token).await {
            Err(AuthError::InvalidToken) => Err(AuthError::SubjectTokenNotFound),
            Err(e) => Err(e),
            Ok(()) => {
                info!(user = %subject.user_id, audit_id = %subject.audit_id, by = %caller.user_id, "token revoked");
                Ok(())
            }
        }
    }
}

/// Does `scope` ask for what `ctx` is already scoped to (or for nothing)?
fn same_scope(ctx: &AuthContext, scope: &ScopeRequest) -> bool {
    match scope {
        ScopeRequest::Default => true,
        ScopeRequest::System => ctx.system_scope,
        ScopeRequest::ProjectId(id) => !ctx.system_scope && *id == ctx.project_id,
        ScopeRequest::ProjectName(n) => !ctx.system_scope && *n == ctx.project_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ROLE_MEMBER, bootstrap_user};
    use std::sync::Arc;

    #[tokio::test]
    async fn tokens_expire_and_revoke() {
        let dir = std::env::temp_dir().join(format!("stratus-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let clock = stratus_types::ManualClock::new(Utc::now());
        let (ds, _db) = stratus_db::testing::fresh(Arc::new(clock.clone())).await;
        bootstrap_user(&ds, "demo", "pw", "demo", ROLE_MEMBER, false).await.expect("bootstrap");
        let id = Identity::new(ds, Duration::hours(1));
        assert!(matches!(
            id.authenticate("demo", "bad", ProjectScope::Name("demo".into())).await,
            Err(AuthError::InvalidCredentials)
        ));
        let t = id.authenticate("demo", "pw", ProjectScope::Name("demo".into())).await.expect("auth");
        let ctx = id.validate(&t.token).await.expect("valid");
        assert!(ctx.can_write() && !ctx.is_admin());
        clock.advance(Duration::hours(2));
        assert!(
            matches!(id.validate(&t.token).await, Err(AuthError::InvalidToken)),
            "expired token must fail even if cached"
        );
        let t2 = id.authenticate("demo", "pw", ProjectScope::Default).await.expect("auth default scope");
        id.revoke(&t2.token).await.expect("revoke");
        assert!(matches!(id.validate(&t2.token).await, Err(AuthError::InvalidToken)));
        let _ = std::fs::remove_dir_all(dir);
    }
}
