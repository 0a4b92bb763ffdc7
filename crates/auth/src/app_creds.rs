//! Application credentials (Keystone's `/users/{id}/application_credentials`):
//! a named secret a user creates for a job (Terraform, CI) that yields
//! tokens on one project with a subset of the user's roles there, without
//! the user's password. The secret is shown once and stored only as an
//! argon2id hash, like passwords. A restricted credential's tokens may not
//! create or delete application credentials (nor trusts, which Stratus has not).

use crate::policy::{Action, enforce};
use crate::secret::{hash_password_blocking, new_id, random_secret};
use crate::service::valid_name;
use crate::{AppCredRef, AuthContext, AuthError, Identity, ResourceKind};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use stratus_api::identity::{AppCredCreate, AppCredential, Role};
use stratus_db::{AppCredRow, DbError};
use tracing::info;

/// Longest application credential name accepted (Keystone's).
const MAX_APP_CRED_NAME: usize = 255;

/// The role ids a stored credential carries (none if the column is unreadable,
/// which makes the credential unusable rather than over-privileged).
pub(crate) fn role_ids_of(a: &AppCredRow) -> Vec<String> {
    serde_json::from_str(&a.role_ids).unwrap_or_default()
}

/// The reference a token context keeps to its credential.
pub(crate) fn app_cred_ref(a: &AppCredRow) -> AppCredRef {
    AppCredRef { id: a.id.clone(), name: a.name.clone(), restricted: !a.unrestricted }
}

/// An `expires_at` as clients send it: ISO 8601 with or without a zone
/// (a naive time is UTC, as Keystone reads it).
fn parse_expiry(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f).ok())
        .map(|t| t.and_utc())
}

impl Identity {
    /// `POST /users/{user_id}/application_credentials`: only the user
    /// itself, with a project-scoped token that is not from a restricted
    /// credential. The roles must be among the caller's roles on its
    /// project (default: all of them).
    pub async fn create_app_cred(
        &self,
        caller: &AuthContext,
        user_id: &str,
        req: AppCredCreate,
    ) -> Result<AppCredential, AuthError> {
        enforce(caller, Action::CreateAppCred { user_id })?;
        if caller.app_cred.as_ref().is_some_and(|a| a.restricted) {
            return Err(AuthError::Forbidden { action: Action::CreateAppCred { user_id }.name() });
        }
        if caller.system_scope {
            return Err(AuthError::bad("Application credentials need a project-scoped token."));
        }
        let name = valid_name(req.name, ResourceKind::AppCred, MAX_APP_CRED_NAME)?;
        if req.access_rules.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(AuthError::bad("Access rules are not supported by Stratus."));
        }
        let now = self.ds.clock().now();
        let expires_at = match req.expires_at.as_deref() {
            None => None,
            Some(s) => {
                let t = parse_expiry(s).ok_or_else(|| {
                    AuthError::bad(format!("Invalid input for field 'expires_at': '{s}' is not an ISO 8601 time."))
                })?;
                if t <= now {
                    return Err(AuthError::bad("Invalid input for field 'expires_at': it is in the past."));
                }
                Some(t)
            }
        };
        let held: Vec<Role> = caller
            .role_ids
            .iter()
            .zip(&caller.roles)
            .map(|(id, name)| Role { id: id.clone(), name: name.clone() })
            .collect();
        // No roles, or an empty list (what python-openstackclient sends): all of them.
        let roles = match req.roles.filter(|r| !r.is_empty()) {
            None => held,
            Some(asked) => {
                let mut roles: Vec<Role> = Vec::new();
                for r in asked {
                    let id = r.get("id").and_then(Value::as_str);
                    let name = r.get("name").and_then(Value::as_str);
                    if id.is_none() && name.is_none() {
                        return Err(AuthError::bad("Expecting to find id or name in role."));
                    }
                    let found =
                        held.iter().find(|h| id.is_some_and(|i| i == h.id) || name.is_some_and(|n| n == h.name));
                    match found {
                        Some(h) if !roles.contains(h) => roles.push(h.clone()),
                        Some(_) => {}
                        None => {
                            return Err(AuthError::AssignmentNotFound {
                                role: id.or(name).unwrap_or_default().to_string(),
                                user: caller.user_id.clone(),
                                project: caller.project_id.clone(),
                            });
                        }
                    }
                }
                roles
            }
        };
        if roles.is_empty() {
            return Err(AuthError::bad("An application credential needs at least one role."));
        }
        let secret = match req.secret {
            Some(s) if s.is_empty() => {
                return Err(AuthError::bad("Invalid input for field 'secret': it must not be empty."));
            }
            Some(s) => s,
            None => random_secret(),
        };
        let role_ids: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
        let row = AppCredRow {
            id: new_id(),
            user_id: caller.user_id.clone(),
            project_id: caller.project_id.clone(),
            name,
            description: req.description,
            secret_hash: hash_password_blocking(secret.clone()).await?,
            role_ids: serde_json::to_string(&role_ids).map_err(|e| AuthError::Hash(e.to_string()))?,
            expires_at,
            unrestricted: req.unrestricted.unwrap_or(false),
        };
        self.ds.app_cred_create(&row).await.map_err(AuthError::conflict_as(ResourceKind::AppCred, &row.name))?;
        info!(app_cred = %row.id, user = %row.user_id, project = %row.project_id, "application credential created");
        Ok(AppCredential {
            id: row.id,
            name: row.name,
            description: row.description,
            user_id: row.user_id,
            project_id: row.project_id,
            roles,
            expires_at: row.expires_at,
            unrestricted: row.unrestricted,
            secret: Some(secret),
        })
    }

    /// `GET /users/{user_id}/application_credentials` (the user, admins,
    /// system readers), optionally only the one named `name`.
    pub async fn list_app_creds(
        &self,
        caller: &AuthContext,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<AppCredential>, AuthError> {
        enforce(caller, Action::ListAppCreds { user_id })?;
        let u = self.user_row(user_id).await?;
        let roles = self.role_names().await?;
        Ok(self
            .ds
            .app_cred_list(&u.id)
            .await?
            .into_iter()
            .filter(|a| name.is_none_or(|n| n == a.name))
            .map(|a| app_cred_of(a, &roles))
            .collect())
    }

    /// `GET /users/{user_id}/application_credentials/{id}`: never the secret.
    pub async fn get_app_cred(
        &self,
        caller: &AuthContext,
        user_id: &str,
        id: &str,
    ) -> Result<AppCredential, AuthError> {
        enforce(caller, Action::GetAppCred { user_id })?;
        let a = self.app_cred_row(user_id, id).await?;
        Ok(app_cred_of(a, &self.role_names().await?))
    }

    /// `DELETE /users/{user_id}/application_credentials/{id}` (the user or
    /// admins; not with a restricted credential's token): its tokens stop
    /// working at once.
    pub async fn delete_app_cred(&self, caller: &AuthContext, user_id: &str, id: &str) -> Result<(), AuthError> {
        enforce(caller, Action::DeleteAppCred { user_id })?;
        if caller.app_cred.as_ref().is_some_and(|a| a.restricted) {
            return Err(AuthError::Forbidden { action: Action::DeleteAppCred { user_id }.name() });
        }
        let a = self.app_cred_row(user_id, id).await?;
        self.ds.app_cred_delete(&a.id).await.map_err(AuthError::not_found_as(ResourceKind::AppCred, id))?;
        self.flush_cache();
        info!(app_cred = %a.id, user = %a.user_id, by = %caller.user_id, "application credential deleted; its tokens are revoked");
        Ok(())
    }

    /// A credential of `user_id` by id (another user's is a 404).
    async fn app_cred_row(&self, user_id: &str, id: &str) -> Result<AppCredRow, AuthError> {
        let u = self.user_row(user_id).await?;
        match self.ds.app_cred_get(id).await {
            Ok(a) if a.user_id == u.id => Ok(a),
            Ok(_) | Err(DbError::NotFound { .. }) => {
                Err(AuthError::NotFound { kind: ResourceKind::AppCred, id: id.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Role names by id.
    async fn role_names(&self) -> Result<HashMap<String, String>, AuthError> {
        Ok(self.ds.role_list().await?.into_iter().map(|r| (r.id, r.name)).collect())
    }
}

/// A stored credential as the API shows it (roles named, no secret).
fn app_cred_of(a: AppCredRow, names: &HashMap<String, String>) -> AppCredential {
    let roles =
        role_ids_of(&a).into_iter().map(|id| Role { name: names.get(&id).cloned().unwrap_or_default(), id }).collect();
    AppCredential {
        id: a.id,
        name: a.name,
        description: a.description,
        user_id: a.user_id,
        project_id: a.project_id,
        roles,
        expires_at: a.expires_at,
        unrestricted: a.unrestricted,
        secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn expiry_reads_naive_and_zoned_iso_times() {
        // Tempest sends oslo's naive `%Y-%m-%dT%H:%M:%S.%f`; Keystone reads it as UTC.
        let naive = parse_expiry("2030-01-02T03:04:05.123456").expect("naive");
        assert_eq!(naive, parse_expiry("2030-01-02T03:04:05.123456Z").expect("zoned"));
        assert_eq!(naive, parse_expiry("2030-01-02T04:04:05.123456+01:00").expect("offset"));
        assert!(parse_expiry("tomorrow").is_none());
    }
}
