//! The identity service's handle and what its modules share: exact-id
//! lookups with typed `NotFound`s, row conversions, and the naming rules.

use crate::{AuthContext, AuthError, ResourceKind};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stratus_api::identity::{DEFAULT_DOMAIN_ID, Project, Role, User};
use stratus_db::{Datastore, DbError, ProjectRow, RoleRow, UserRow};

/// The identity service: tokens, projects, users, roles and grants, and the
/// policy over them. It is the only owner of the identity tables; the HTTP
/// layer calls one method per request. Validated tokens are cached briefly
/// in memory so that each API request costs no database reads for identity.
#[derive(Clone)]
pub struct Identity {
    pub(crate) ds: Datastore,
    pub(crate) token_ttl: Duration,
    pub(crate) cache: TokenCache,
    pub(crate) logins: crate::login::LoginGuard,
}

/// Validated contexts by token hash, with the time they were cached.
pub(crate) type TokenCache = Arc<Mutex<HashMap<String, (AuthContext, DateTime<Utc>)>>>;

impl Identity {
    /// The identity service over the datastore, with tokens lasting `token_ttl`.
    pub fn new(ds: Datastore, token_ttl: Duration) -> Self {
        Self { ds, token_ttl, cache: Arc::default(), logins: crate::login::LoginGuard::new(Default::default()) }
    }

    /// Use these password-login limits (concurrency, lockout) instead of the defaults.
    pub fn with_login_limits(mut self, limits: crate::LoginLimits) -> Self {
        self.logins = crate::login::LoginGuard::new(limits);
        self
    }

    /// Forget cached contexts (after role, user or project changes).
    pub fn flush_cache(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// A project by exact id.
    pub(crate) async fn project_row(&self, id: &str) -> Result<ProjectRow, AuthError> {
        self.ds.project_get(id).await.map_err(AuthError::not_found_as(ResourceKind::Project, id))
    }

    /// A user by exact id (the datastore also matches names; the API must not).
    pub(crate) async fn user_row(&self, id: &str) -> Result<UserRow, AuthError> {
        match self.ds.user_find(id).await {
            Ok(u) if u.id == id => Ok(u),
            Ok(_) | Err(DbError::NotFound { .. }) => {
                Err(AuthError::NotFound { kind: ResourceKind::User, id: id.into() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A role by exact id.
    pub(crate) async fn role_row(&self, id: &str) -> Result<RoleRow, AuthError> {
        match self.ds.role_find(id).await {
            Ok(r) if r.id == id => Ok(r),
            Ok(_) | Err(DbError::NotFound { .. }) => {
                Err(AuthError::NotFound { kind: ResourceKind::Role, id: id.into() })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A project row as the API shows it.
pub(crate) fn project_of(p: ProjectRow) -> Project {
    Project {
        id: p.id,
        name: p.name,
        domain_id: p.domain_id,
        description: p.description,
        enabled: p.enabled,
        tags: Vec::new(),
    }
}

/// A user row as the API shows it: without the password hash.
pub(crate) fn user_of(u: UserRow) -> User {
    User {
        id: u.id,
        name: u.name,
        domain_id: u.domain_id,
        email: u.email,
        default_project_id: u.default_project_id,
        enabled: u.enabled,
    }
}

/// A role row as the API shows it.
pub(crate) fn role_of(r: RoleRow) -> Role {
    Role { id: r.id, name: r.name }
}

/// A non-empty trimmed name of at most `max` characters.
pub(crate) fn valid_name(name: Option<String>, kind: ResourceKind, max: usize) -> Result<String, AuthError> {
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err(AuthError::bad(format!("Expecting to find name in {kind}.")));
    }
    if name.chars().count() > max {
        return Err(AuthError::bad(format!(
            "Invalid input for field 'name': the {kind} name is longer than {max} characters."
        )));
    }
    Ok(name)
}

/// Only the default domain exists; anything else is a client error.
pub(crate) fn check_domain_id(domain_id: Option<&str>) -> Result<(), AuthError> {
    match domain_id {
        None | Some(DEFAULT_DOMAIN_ID) => Ok(()),
        Some(other) => {
            Err(AuthError::bad(format!("Could not find domain: {other}. Only the 'default' domain exists.")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_required_and_bounded() {
        assert_eq!(valid_name(Some(" web ".into()), ResourceKind::Project, 64).expect("ok"), "web");
        let e = valid_name(Some("  ".into()), ResourceKind::Project, 64).expect_err("empty");
        assert_eq!(e.to_string(), "Expecting to find name in project.");
        let e = valid_name(Some("x".repeat(256)), ResourceKind::User, 255).expect_err("long");
        assert_eq!(e.to_string(), "Invalid input for field 'name': the user name is longer than 255 characters.");
        assert!(check_domain_id(Some("default")).is_ok());
        let e = check_domain_id(Some("other")).expect_err("other domain");
        assert_eq!(e.to_string(), "Could not find domain: other. Only the 'default' domain exists.");
    }
}
