//! First users: the standard roles and a user with a role on a project,
//! created at start-up (and by tests) without going through the API.

use crate::secret::{hash_password, new_id, verify_password};
use crate::{AuthError, Identity, ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER};
use stratus_api::identity::DEFAULT_DOMAIN_ID;
use stratus_db::{Datastore, DbError, ProjectRow, UserRow};

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
) -> Result<String, AuthError> {
    for r in [ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER] {
        ds.role_ensure(&new_id(), r).await?;
    }
    let p = match ds.project_find(project).await {
        Ok(p) => p,
        Err(DbError::NotFound { .. }) => {
            let p = ProjectRow {
                id: new_id(),
                name: project.into(),
                domain_id: DEFAULT_DOMAIN_ID.into(),
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
        Err(DbError::NotFound { .. }) => {
            let u = UserRow {
                id: new_id(),
                name: user.into(),
                domain_id: DEFAULT_DOMAIN_ID.into(),
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
    Ok(p.id)
}

impl Identity {
    /// [`bootstrap_user`] through the service (callers that hold no datastore);
    /// returns the project's id.
    pub async fn bootstrap_user(
        &self,
        user: &str,
        password: &str,
        project: &str,
        role: &str,
        reset_password: bool,
    ) -> Result<String, AuthError> {
        let project_id = bootstrap_user(&self.ds, user, password, project, role, reset_password).await?;
        self.flush_cache();
        Ok(project_id)
    }
}
