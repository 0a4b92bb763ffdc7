//! Tokens: password and token authentication, validation (cached), and
//! revocation, including the subject-token rules of `/auth/tokens`.

use crate::policy::{Action, enforce};
use crate::secret::{hash_password, random_secret, token_hash, verify_password};
use crate::{AuthContext, AuthError, Identity};
use chrono::{DateTime, Duration, Utc};
use stratus_api::identity::{AuthMethod, ScopeRequest, TokenRequest};
use stratus_db::{DbError, ProjectRow, RowKind, TokenGuard, TokenRow, UserRow};
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
}

impl From<ScopeRequest> for ProjectScope {
    fn from(s: ScopeRequest) -> Self {
        match s {
            ScopeRequest::Default => Self::Default,
            ScopeRequest::ProjectId(id) => Self::Id(id),
            ScopeRequest::ProjectName(n) => Self::Name(n),
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
            AuthMethod::Token { id } => {
                let mut ctx = self.validate(&id).await?;
                let target = match req.scope {
                    ScopeRequest::Default => None,
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
            ProjectScope::Id(id) => self.ds.project_get(&id).await,
            ProjectScope::Name(n) => self.ds.project_find(&n).await,
            ProjectScope::Default => self.default_project(&u).await,
        }
        .map_err(|e| match e {
            DbError::NotFound { .. } => AuthError::InvalidCredentials,
            e => AuthError::Db(e),
        })?;
        if !project.enabled {
            return Err(AuthError::InvalidCredentials);
        }
        let expires_at = self.ds.clock().now() + self.token_ttl;
        let guard = TokenGuard::Password { password_hash: &u.password_hash };
        self.issue(&u, &project, expires_at, guard).await.map_err(|e| match e {
            // The password changed (or the user was disabled) while it was checked.
            AuthError::InvalidToken => AuthError::InvalidCredentials,
            e => e,
        })
    }

    /// Issue a token for an already-validated context (token re-scoping by
    /// `token` method) derived from `parent`: it keeps the parent's expiry,
    /// as Keystone does, so re-scoping never extends a token's life; and it
    /// is refused if the parent is revoked before the new token is stored.
    pub async fn reissue(&self, ctx: &AuthContext, parent: &str) -> Result<IssuedToken, AuthError> {
        let u = self.ds.user_find(&ctx.user_id).await?;
        let p = self.ds.project_get(&ctx.project_id).await?;
        let parent_hash = token_hash(parent);
        self.issue(&u, &p, ctx.expires_at, TokenGuard::Parent { token_hash: &parent_hash }).await
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

    /// Store and return a new token of `u` on `p` expiring at `expires_at`,
    /// if `guard` still holds when it is stored (else `InvalidToken`); then
    /// purge a bounded batch of expired tokens.
    async fn issue(
        &self,
        u: &UserRow,
        p: &ProjectRow,
        expires_at: DateTime<Utc>,
        guard: TokenGuard<'_>,
    ) -> Result<IssuedToken, AuthError> {
        let assignments = self.ds.assignment_list(Some(&u.id), Some(&p.id)).await?;
        if assignments.is_empty() {
            debug!(user = %u.id, project = %p.id, "token refused: no role on the project");
            return Err(AuthError::NoRoleOnProject { user: u.id.clone(), project: p.id.clone() });
        }
        let now = self.ds.clock().now();
        let token = random_secret();
        let audit_id = uuid::Uuid::new_v4().simple().to_string()[..22].to_string();
        let row = TokenRow {
            token_hash: token_hash(&token),
            user_id: u.id.clone(),
            project_id: p.id.clone(),
            audit_id: audit_id.clone(),
            issued_at: now,
            expires_at,
            revoked: false,
        };
        if !self.ds.token_insert_guarded(&row, &guard).await? {
            debug!(user = %u.id, "token refused: revoked while it was being issued");
            return Err(AuthError::InvalidToken);
        }
        self.purge_expired(now).await;
        let context = AuthContext {
            user_id: u.id.clone(),
            user_name: u.name.clone(),
            project_id: p.id.clone(),
            project_name: p.name.clone(),
            roles: assignments.iter().map(|a| a.role_name.clone()).collect(),
            role_ids: assignments.iter().map(|a| a.role_id.clone()).collect(),
            audit_id,
            issued_at: now,
            expires_at,
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
        let p = self.ds.project_get(&row.project_id).await.map_err(|_| AuthError::InvalidToken)?;
        if !u.enabled || !p.enabled {
            return Err(AuthError::InvalidToken);
        }
        let assignments = self.ds.assignment_list(Some(&u.id), Some(&p.id)).await?;
        if assignments.is_empty() {
            return Err(AuthError::InvalidToken);
        }
        let ctx = AuthContext {
            user_id: u.id,
            user_name: u.name,
            project_id: p.id,
            project_name: p.name,
            roles: assignments.iter().map(|a| a.role_name.clone()).collect(),
            role_ids: assignments.iter().map(|a| a.role_id.clone()).collect(),
            audit_id: row.audit_id,
            issued_at: row.issued_at,
            expires_at,
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
