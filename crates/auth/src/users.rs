//! Users. Only the password and `enabled` of an existing user can change:
//! the datastore has no way to update the other attributes, so those are
//! accepted when they already have the requested value and refused otherwise.

use crate::policy::{Action, enforce};
use crate::secret::{hash_password_blocking, new_id, random_secret};
use crate::service::{check_domain_id, user_of, valid_name};
use crate::{AuthContext, AuthError, Identity, ResourceKind};
use stratus_api::identity::{DEFAULT_DOMAIN_ID, User, UserCreate, UserFilter, UserUpdate};
use stratus_db::{DbError, UserRow};
use tracing::info;

/// Longest user name accepted.
const MAX_USER_NAME: usize = 255;

impl Identity {
    /// `GET /users` (admin).
    pub async fn list_users(&self, caller: &AuthContext, filter: &UserFilter) -> Result<Vec<User>, AuthError> {
        enforce(caller, Action::ListUsers)?;
        if filter.matches_nothing {
            return Ok(Vec::new());
        }
        Ok(self.ds.user_list().await?.into_iter().map(user_of).filter(|u| filter.matches(u)).collect())
    }

    /// `POST /users` (admin). A user created without a password gets a
    /// random one nobody knows (it cannot log in until an admin sets one).
    /// `description` is accepted but not stored: the datastore has no column for it.
    pub async fn create_user(&self, caller: &AuthContext, req: UserCreate) -> Result<User, AuthError> {
        enforce(caller, Action::CreateUser)?;
        let name = valid_name(req.name, ResourceKind::User, MAX_USER_NAME)?;
        check_domain_id(req.domain_id.as_deref())?;
        let default_project_id = match req.default_project_id.filter(|p| !p.is_empty()) {
            Some(p) => match self.ds.project_get(&p).await {
                Ok(p) => Some(p.id),
                Err(DbError::NotFound { .. }) => return Err(AuthError::bad(format!("Could not find project: {p}."))),
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let password = match req.password {
            Some(p) if p.is_empty() => {
                return Err(AuthError::bad("Invalid input for field 'password': it must not be empty."));
            }
            Some(p) => p,
            None => random_secret(),
        };
        let u = UserRow {
            id: new_id(),
            name,
            domain_id: DEFAULT_DOMAIN_ID.into(),
            password_hash: hash_password_blocking(password).await?,
            email: req.email.filter(|e| !e.is_empty()),
            default_project_id,
            enabled: req.enabled.unwrap_or(true),
        };
        self.ds.user_create(&u).await.map_err(AuthError::conflict_as(ResourceKind::User, &u.name))?;
        info!(user = %u.id, name = %u.name, by = %caller.user_id, "user created");
        Ok(user_of(u))
    }

    /// `GET /users/{id}`: admins, or the user itself.
    pub async fn get_user(&self, caller: &AuthContext, id: &str) -> Result<User, AuthError> {
        enforce(caller, Action::GetUser { user_id: id })?;
        Ok(user_of(self.user_row(id).await?))
    }

    /// `PATCH /users/{id}` (admin): change the password and/or `enabled`,
    /// refusing (before anything is written) any other attribute that would
    /// change. A password change or a disable revokes every existing token
    /// of the user, as Keystone does.
    pub async fn update_user(&self, caller: &AuthContext, id: &str, req: &UserUpdate) -> Result<User, AuthError> {
        enforce(caller, Action::UpdateUser)?;
        let mut u = user_of(self.user_row(id).await?);
        let changed = req.changed(&u);
        if !changed.is_empty() {
            return Err(AuthError::bad(format!(
                "Updating user attribute(s) {} is not supported by Stratus; only the password and enabled can be changed.",
                changed.join(", ")
            )));
        }
        let enabled = match req.enabled() {
            None => None,
            Some(v) => Some(
                v.as_bool().ok_or_else(|| AuthError::bad("Invalid input for field 'enabled': expected a boolean."))?,
            ),
        };
        let password =
            match req.password() {
                None => None,
                Some(pw) => Some(pw.as_str().filter(|p| !p.is_empty()).ok_or_else(|| {
                    AuthError::bad("Invalid input for field 'password': expected a non-empty string.")
                })?),
            };
        if let Some(pw) = password {
            let h = hash_password_blocking(pw.to_string()).await?;
            self.ds.user_set_password(&u.id, &h).await?;
            // The datastore also lifted a login lockout (as Keystone's reset does).
            self.flush_cache();
            info!(user = %u.id, by = %caller.user_id, "password changed; the user's tokens are revoked");
        }
        if let Some(on) = enabled
            && on != u.enabled
        {
            self.ds.user_set_enabled(&u.id, on).await?;
            self.flush_cache();
            u.enabled = on;
            if on {
                info!(user = %u.id, by = %caller.user_id, "user enabled");
            } else {
                info!(user = %u.id, by = %caller.user_id, "user disabled; its tokens are revoked");
            }
        }
        Ok(u)
    }

    /// `DELETE /users/{id}` (admin); its assignments and tokens go with it.
    pub async fn delete_user(&self, caller: &AuthContext, id: &str) -> Result<(), AuthError> {
        enforce(caller, Action::DeleteUser)?;
        let u = self.user_row(id).await?;
        self.ds.user_delete(&u.id).await.map_err(AuthError::not_found_as(ResourceKind::User, id))?;
        self.flush_cache();
        info!(user = %u.id, by = %caller.user_id, "user deleted with its assignments and tokens");
        Ok(())
    }
}
