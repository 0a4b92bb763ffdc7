//! Roles and grants: direct user-on-project and user-on-system role
//! assignments (no groups, no domain scope, no inheritance).

use crate::policy::{Action, enforce};
use crate::secret::new_id;
use crate::service::{role_of, valid_name};
use crate::{AuthContext, AuthError, Identity, ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER, ResourceKind};
use std::collections::HashMap;
use stratus_api::identity::{AssignmentFilter, Role, RoleAssignment, RoleCreate, RoleFilter, SystemAssignment};
use stratus_db::{DbError, ProjectRow, RoleRow, UserRow};
use tracing::info;

/// Longest role name accepted (Keystone's).
const MAX_ROLE_NAME: usize = 255;

impl Identity {
    /// `GET /roles` (admin).
    pub async fn list_roles(&self, caller: &AuthContext, filter: &RoleFilter) -> Result<Vec<Role>, AuthError> {
        enforce(caller, Action::ListRoles)?;
        Ok(self
            .ds
            .role_list()
            .await?
            .into_iter()
            .filter(|r| filter.name.as_ref().is_none_or(|n| *n == r.name))
            .map(role_of)
            .collect())
    }

    /// `GET /roles/{id}` (admin).
    pub async fn get_role(&self, caller: &AuthContext, id: &str) -> Result<Role, AuthError> {
        enforce(caller, Action::GetRole)?;
        Ok(role_of(self.role_row(id).await?))
    }

    /// `POST /roles` (admin): a global role (no domain-specific roles here).
    pub async fn create_role(&self, caller: &AuthContext, req: RoleCreate) -> Result<Role, AuthError> {
        enforce(caller, Action::CreateRole)?;
        let name = valid_name(req.name, ResourceKind::Role, MAX_ROLE_NAME)?;
        if req.domain_id.is_some() {
            return Err(AuthError::bad("Domain-specific roles are not supported: domain_id must be null."));
        }
        let id = new_id();
        self.ds.role_create(&id, &name).await.map_err(AuthError::conflict_as(ResourceKind::Role, &name))?;
        info!(role = %id, %name, by = %caller.user_id, "role created");
        Ok(Role { id, name })
    }

    /// `DELETE /roles/{id}` (admin): the role goes with every assignment of
    /// it. The standard roles stay: Stratus's policy is built on them.
    pub async fn delete_role(&self, caller: &AuthContext, id: &str) -> Result<(), AuthError> {
        enforce(caller, Action::DeleteRole)?;
        let r = self.role_row(id).await?;
        if [ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER].contains(&r.name.as_str()) {
            return Err(AuthError::bad(format!(
                "The role {} cannot be deleted: Stratus's policy is built on admin, manager, member and reader.",
                r.name
            )));
        }
        self.ds.role_delete(&r.id).await.map_err(AuthError::not_found_as(ResourceKind::Role, id))?;
        self.flush_cache();
        info!(role = %r.id, name = %r.name, by = %caller.user_id, "role deleted with its assignments");
        Ok(())
    }

    /// Resolve the three ids of a grant, `NotFound` naming the first unknown one.
    async fn grant_parts(&self, p: &str, u: &str, r: &str) -> Result<(ProjectRow, UserRow, RoleRow), AuthError> {
        let p = self.project_row(p).await?;
        let u = self.user_row(u).await?;
        let r = self.role_row(r).await?;
        Ok((p, u, r))
    }

    /// `HEAD /projects/{p}/users/{u}/roles/{r}` (admin): `Ok` if granted.
    pub async fn check_grant(&self, caller: &AuthContext, p: &str, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::CheckGrant)?;
        let (p, u, r) = self.grant_parts(p, u, r).await?;
        let granted = self.ds.assignment_list(Some(&u.id), Some(&p.id)).await?.iter().any(|a| a.role_id == r.id);
        if granted { Ok(()) } else { Err(AuthError::AssignmentNotFound { role: r.id, user: u.id, project: p.id }) }
    }

    /// `PUT /projects/{p}/users/{u}/roles/{r}` (admin): grant (idempotent).
    pub async fn put_grant(&self, caller: &AuthContext, p: &str, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::CreateGrant)?;
        let (p, u, r) = self.grant_parts(p, u, r).await?;
        self.ds.assignment_put(&u.id, &p.id, &r.id).await?;
        self.flush_cache();
        info!(user = %u.id, project = %p.id, role = %r.name, by = %caller.user_id, "role granted");
        Ok(())
    }

    /// `DELETE /projects/{p}/users/{u}/roles/{r}` (admin): revoke; `AssignmentNotFound` if not granted.
    pub async fn delete_grant(&self, caller: &AuthContext, p: &str, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::RevokeGrant)?;
        let (p, u, r) = self.grant_parts(p, u, r).await?;
        match self.ds.assignment_delete(&u.id, &p.id, &r.id).await {
            Ok(()) => {}
            Err(DbError::NotFound { .. }) => {
                return Err(AuthError::AssignmentNotFound { role: r.id, user: u.id, project: p.id });
            }
            Err(e) => return Err(e.into()),
        }
        // Keystone deletes the user's application credentials on the
        // project when one of its roles there goes (they could carry it).
        let creds = self.ds.app_cred_delete_on_project(&u.id, &p.id).await?;
        // Tokens carry their roles: cached contexts must be re-read to lose this one.
        self.flush_cache();
        info!(user = %u.id, project = %p.id, role = %r.name, app_creds_deleted = creds, by = %caller.user_id, "role revoked");
        Ok(())
    }

    /// `GET /system/users/{u}/roles` (admins, system readers).
    pub async fn list_system_grants(&self, caller: &AuthContext, u: &str) -> Result<Vec<Role>, AuthError> {
        enforce(caller, Action::ListSystemGrants)?;
        let u = self.user_row(u).await?;
        Ok(self
            .ds
            .system_grant_list(Some(&u.id))
            .await?
            .into_iter()
            .map(|a| Role { id: a.role_id, name: a.role_name })
            .collect())
    }

    /// `HEAD /system/users/{u}/roles/{r}` (admins, system readers): `Ok` if granted.
    pub async fn check_system_grant(&self, caller: &AuthContext, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::CheckSystemGrant)?;
        let u = self.user_row(u).await?;
        let r = self.role_row(r).await?;
        let granted = self.ds.system_grant_list(Some(&u.id)).await?.iter().any(|a| a.role_id == r.id);
        if granted { Ok(()) } else { Err(AuthError::SystemAssignmentNotFound { role: r.id, user: u.id }) }
    }

    /// `PUT /system/users/{u}/roles/{r}` (admin): grant on the system (idempotent).
    pub async fn put_system_grant(&self, caller: &AuthContext, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::CreateSystemGrant)?;
        let u = self.user_row(u).await?;
        let r = self.role_row(r).await?;
        self.ds.system_grant_put(&u.id, &r.id).await?;
        self.flush_cache();
        info!(user = %u.id, role = %r.name, by = %caller.user_id, "role granted on the system");
        Ok(())
    }

    /// `DELETE /system/users/{u}/roles/{r}` (admin): revoke; 404 if not granted.
    /// System-scoped tokens lose the role at once.
    pub async fn delete_system_grant(&self, caller: &AuthContext, u: &str, r: &str) -> Result<(), AuthError> {
        enforce(caller, Action::RevokeSystemGrant)?;
        let u = self.user_row(u).await?;
        let r = self.role_row(r).await?;
        match self.ds.system_grant_delete(&u.id, &r.id).await {
            Ok(()) => {}
            Err(DbError::NotFound { .. }) => {
                return Err(AuthError::SystemAssignmentNotFound { role: r.id, user: u.id });
            }
            Err(e) => return Err(e.into()),
        }
        self.flush_cache();
        info!(user = %u.id, role = %r.name, by = %caller.user_id, "role revoked on the system");
        Ok(())
    }

    /// The system half of `GET /role_assignments`: assignments on the
    /// system matching `filter` (none when it names a project).
    pub async fn list_system_role_assignments(
        &self,
        caller: &AuthContext,
        filter: &AssignmentFilter,
    ) -> Result<Vec<SystemAssignment>, AuthError> {
        enforce(caller, Action::ListRoleAssignments)?;
        if filter.matches_nothing || filter.project_id.is_some() {
            return Ok(Vec::new());
        }
        Ok(self
            .ds
            .system_grant_list(filter.user_id.as_deref())
            .await?
            .into_iter()
            .filter(|a| filter.role_id.as_ref().is_none_or(|r| *r == a.role_id))
            .map(|a| SystemAssignment { user_id: a.user_id, role: Role { id: a.role_id, name: a.role_name } })
            .collect())
    }

    /// `GET /projects/{p}/users/{u}/roles` (admin).
    pub async fn list_grants(&self, caller: &AuthContext, p: &str, u: &str) -> Result<Vec<Role>, AuthError> {
        enforce(caller, Action::ListGrants)?;
        let p = self.project_row(p).await?;
        let u = self.user_row(u).await?;
        Ok(self
            .ds
            .assignment_list(Some(&u.id), Some(&p.id))
            .await?
            .into_iter()
            .map(|a| Role { id: a.role_id, name: a.role_name })
            .collect())
    }

    /// `GET /role_assignments` (admin). Filters on groups, domains, system or
    /// inheritance match nothing (none exist here).
    pub async fn list_role_assignments(
        &self,
        caller: &AuthContext,
        filter: &AssignmentFilter,
    ) -> Result<Vec<RoleAssignment>, AuthError> {
        enforce(caller, Action::ListRoleAssignments)?;
        if filter.matches_nothing || filter.system {
            return Ok(Vec::new());
        }
        let rows = self.ds.assignment_list(filter.user_id.as_deref(), filter.project_id.as_deref()).await?;
        let (users, projects): (HashMap<String, String>, HashMap<String, String>) = if filter.include_names {
            (
                self.ds.user_list().await?.into_iter().map(|u| (u.id, u.name)).collect(),
                self.ds.project_list().await?.into_iter().map(|p| (p.id, p.name)).collect(),
            )
        } else {
            (HashMap::new(), HashMap::new())
        };
        Ok(rows
            .into_iter()
            .filter(|a| filter.role_id.as_ref().is_none_or(|r| *r == a.role_id))
            .map(|a| RoleAssignment {
                user_name: users.get(&a.user_id).cloned(),
                project_name: projects.get(&a.project_id).cloned(),
                user_id: a.user_id,
                project_id: a.project_id,
                role_id: a.role_id,
                role_name: a.role_name,
            })
            .collect())
    }
}
