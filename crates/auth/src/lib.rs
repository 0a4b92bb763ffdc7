//! Identity and policy.
//!
//! Tokens are 256 random bits, handed to the client once and stored only as
//! their SHA-256, so a database dump cannot be replayed. Passwords are
//! argon2id hashes. Every API request resolves its token into an
//! [`AuthContext`]; policy helpers on it decide reads, writes and admin.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stratus_db::{Datastore, DbError, ProjectRow, TokenRow, UserRow, parse_ts, ts};

/// The roles Stratus knows, as Keystone names them.
pub const ROLE_ADMIN: &str = "admin";
/// May read and change its project's resources.
pub const ROLE_MEMBER: &str = "member";
/// May only read its project's resources.
pub const ROLE_READER: &str = "reader";

/// Errors of authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user, password, or scope; the message never says which.
    #[error("The request you have made requires authentication.")]
    InvalidCredentials,
    /// The token is unknown, revoked or expired.
    #[error("The request you have made requires authentication.")]
    InvalidToken,
    /// The user has no role on the requested project.
    #[error("User {user} has no access to project {project}")]
    NoRoleOnProject {
        /// User id.
        user: String,
        /// Project id.
        project: String,
    },
    /// The datastore failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Who is calling, with what roles on which project.
#[derive(Clone, Debug)]
pub struct AuthContext {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: String,
    /// Scoped project id.
    pub project_id: String,
    /// Scoped project name.
    pub project_name: String,
    /// Role names on that project.
    pub roles: Vec<String>,
    /// Role ids, same order as `roles`.
    pub role_ids: Vec<String>,
    /// Audit id of the token.
    pub audit_id: String,
    /// Token issue time.
    pub issued_at: DateTime<Utc>,
    /// Token expiry.
    pub expires_at: DateTime<Utc>,
}

impl AuthContext {
    /// Cloud admin (Stratus has no domain or system scope: admin on any project is admin).
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    /// May change resources of its project (member or admin; not reader-only).
    pub fn can_write(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN || r == ROLE_MEMBER)
    }

    /// May this caller see a resource owned by `project_id`? Admins see all.
    pub fn can_see(&self, project_id: &str) -> bool {
        self.is_admin() || self.project_id == project_id
    }
}

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

/// Hash a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Check a password against a stored hash (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// SHA-256 of a token, hex; the only form that is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random secret of 32 bytes, hex encoded (passwords, tokens).
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Issues and validates tokens. Validated tokens are cached briefly in
/// memory so that each API request costs no database reads for identity.
#[derive(Clone)]
pub struct Identity {
    ds: Datastore,
    token_ttl: Duration,
    cache: TokenCache,
}

/// Validated contexts by token hash, with the time they were cached.
type TokenCache = Arc<Mutex<HashMap<String, (AuthContext, DateTime<Utc>)>>>;

/// How long a validated token is trusted without re-reading the database
/// (bounds how late a revocation seen by another API process takes effect).
const CACHE_TTL_SECS: i64 = 10;

impl Identity {
    /// A token service over the datastore with tokens lasting `token_ttl`.
    pub fn new(ds: Datastore, token_ttl: Duration) -> Self {
        Self { ds, token_ttl, cache: Arc::default() }
    }

    /// The datastore (identity admin routes use it directly).
    pub fn store(&self) -> &Datastore {
        &self.ds
    }

    /// Password authentication with a project scope.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
        scope: ProjectScope,
    ) -> Result<IssuedToken, AuthError> {
        let u = match self.ds.user_find(user).await {
            Ok(u) => u,
            Err(DbError::NotFound(_)) => {
                // Spend the same time as a real check so user names cannot be probed by timing.
                let _ = hash_password(password);
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        if !u.enabled || !verify_password(password, &u.password_hash) {
            return Err(AuthError::InvalidCredentials);
        }
        let project = match scope {
            ProjectScope::Id(id) => self.ds.project_get(&id).await,
            ProjectScope::Name(n) => self.ds.project_find(&n).await,
            ProjectScope::Default => self.default_project(&u).await,
        }
        .map_err(|e| match e {
            DbError::NotFound(_) => AuthError::InvalidCredentials,
            e => AuthError::Db(e),
        })?;
        if !project.enabled {
            return Err(AuthError::InvalidCredentials);
        }
        self.issue(&u, &project).await
    }

    /// Issue a token for an already-validated context (token re-scoping by `token` method).
    pub async fn reissue(&self, ctx: &AuthContext) -> Result<IssuedToken, AuthError> {
        let u = self.ds.user_find(&ctx.user_id).await?;
        let p = self.ds.project_get(&ctx.project_id).await?;
        self.issue(&u, &p).await
    }

    async fn default_project(&self, u: &UserRow) -> Result<ProjectRow, DbError> {
        if let Some(p) = &u.default_project_id {
            return self.ds.project_get(p).await;
        }
        let a = self.ds.assignment_list(Some(&u.id), None).await?;
        match a.first() {
            Some(a) => self.ds.project_get(&a.project_id).await,
            None => Err(DbError::NotFound("project")),
        }
    }

    async fn issue(&self, u: &UserRow, p: &ProjectRow) -> Result<IssuedToken, AuthError> {
        let assignments = self.ds.assignment_list(Some(&u.id), Some(&p.id)).await?;
        if assignments.is_empty() {
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
            issued_at: ts(now),
            expires_at: ts(now + self.token_ttl),
            revoked: false,
        };
        self.ds.token_insert(&row).await?;
        let context = AuthContext {
            user_id: u.id.clone(),
            user_name: u.name.clone(),
            project_id: p.id.clone(),
            project_name: p.name.clone(),
            roles: assignments.iter().map(|a| a.role_name.clone()).collect(),
            role_ids: assignments.iter().map(|a| a.role_id.clone()).collect(),
            audit_id,
            issued_at: now,
            expires_at: now + self.token_ttl,
        };
        Ok(IssuedToken { token, context })
    }

    /// Resolve a token into its context; expired, revoked or unknown tokens fail.
    pub async fn validate(&self, token: &str) -> Result<AuthContext, AuthError> {
        let hash = token_hash(token);
        let now = self.ds.clock().now();
        if let Ok(cache) = self.cache.lock()
            && let Some((ctx, cached_at)) = cache.get(&hash)
            && now - *cached_at < Duration::seconds(CACHE_TTL_SECS)
            && ctx.expires_at > now
        {
            return Ok(ctx.clone());
        }
        let row = match self.ds.token_get(&hash).await {
            Ok(r) => r,
            Err(DbError::NotFound(_)) => return Err(AuthError::InvalidToken),
            Err(e) => return Err(e.into()),
        };
        let expires_at = parse_ts(&row.expires_at)?;
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
            issued_at: parse_ts(&row.issued_at)?,
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

    /// Revoke a token (`DELETE /auth/tokens`).
    pub async fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let hash = token_hash(token);
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&hash);
        }
        self.ds.token_revoke(&hash).await.map_err(|e| match e {
            DbError::NotFound(_) => AuthError::InvalidToken,
            e => e.into(),
        })
    }

    /// Forget cached contexts (after role or user changes).
    pub fn flush_cache(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

/// Create the standard roles and a user with a role on a (possibly new)
/// project. Idempotent: existing rows are kept, and an existing user's
/// password is left alone unless `reset_password`.
pub async fn bootstrap_user(
    ds: &Datastore,
    user: &str,
    password: &str,
    project: &str,
    role: &str,
    reset_password: bool,
) -> Result<(), AuthError> {
    for r in [ROLE_ADMIN, ROLE_MEMBER, ROLE_READER] {
        ds.role_ensure(&uuid::Uuid::new_v4().simple().to_string(), r).await?;
    }
    let p = match ds.project_find(project).await {
        Ok(p) => p,
        Err(DbError::NotFound(_)) => {
            let p = ProjectRow {
                id: uuid::Uuid::new_v4().simple().to_string(),
                name: project.into(),
                domain_id: "default".into(),
                description: String::new(),
                enabled: true,
            };
            ds.project_create(&p).await?;
            p
        }
        Err(e) => return Err(e.into()),
    };
    let u = match ds.user_find(user).await {
        Ok(u) => {
            if reset_password && !verify_password(password, &u.password_hash) {
                ds.user_set_password(&u.id, &hash_password(password)?).await?;
            }
            u
        }
        Err(DbError::NotFound(_)) => {
            let u = UserRow {
                id: uuid::Uuid::new_v4().simple().to_string(),
                name: user.into(),
                domain_id: "default".into(),
                password_hash: hash_password(password)?,
                email: None,
                default_project_id: Some(p.id.clone()),
                enabled: true,
            };
            ds.user_create(&u).await?;
            u
        }
        Err(e) => return Err(e.into()),
    };
    let role = ds.role_find(role).await?;
    ds.assignment_put(&u.id, &p.id, &role.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[tokio::test]
    async fn tokens_expire_and_revoke() {
        let dir = std::env::temp_dir().join(format!("stratus-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let clock = stratus_types::ManualClock::new(Utc::now());
        let ds = Datastore::open_sqlite_with_clock(&dir.join("a.db"), Arc::new(clock.clone())).await.expect("open");
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
