//! Projects: flat, in the default domain. The datastore cannot change a
//! project, so an update only accepts attributes that already have the
//! requested value.

use crate::policy::{Action, enforce};
use crate::secret::new_id;
use crate::service::{check_domain_id, project_of, valid_name};
use crate::{AuthContext, AuthError, Identity, ResourceKind};
use std::collections::HashSet;
use stratus_api::identity::{DEFAULT_DOMAIN_ID, Project, ProjectCreate, ProjectFilter, ProjectUpdate};
use stratus_db::{DbError, ProjectRow};
use tracing::info;

/// Longest project name accepted.
const MAX_PROJECT_NAME: usize = 64;

impl Identity {
    /// `GET /projects` (admin).
    pub async fn list_projects(&self, caller: &AuthContext, filter: &ProjectFilter) -> Result<Vec<Project>, AuthError> {
        enforce(caller, Action::ListProjects)?;
        if filter.matches_nothing {
            return Ok(Vec::new());
        }
        Ok(self.ds.project_list().await?.into_iter().map(project_of).filter(|p| filter.matches(p)).collect())
    }

    /// `POST /projects` (admin). Flat projects in the default domain only; tags are not stored.
    pub async fn create_project(&self, caller: &AuthContext, req: ProjectCreate) -> Result<Project, AuthError> {
        enforce(caller, Action::CreateProject)?;
        let name = valid_name(req.name, ResourceKind::Project, MAX_PROJECT_NAME)?;
        check_domain_id(req.domain_id.as_deref())?;
        if req.is_domain == Some(true) {
            return Err(AuthError::bad("Projects acting as domains are not supported."));
        }
        if req.parent_id.as_deref().is_some_and(|p| p != DEFAULT_DOMAIN_ID) {
            return Err(AuthError::bad("Hierarchical projects are not supported: parent_id must be the domain."));
        }
        if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(AuthError::bad("Project tags are not supported."));
        }
        let p = ProjectRow {
            id: new_id(),
            name,
            domain_id: DEFAULT_DOMAIN_ID.into(),
            description: req.description.unwrap_or_default(),
            enabled: req.enabled.unwrap_or(true),
        };
        self.ds.project_create(&p).await.map_err(AuthError::conflict_as(ResourceKind::Project, &p.name))?;
        info!(project = %p.id, name = %p.name, by = %caller.user_id, "project created");
        Ok(project_of(p))
    }

    /// `GET /projects/{id}`: admins, or a caller whose token is scoped to it.
    pub async fn get_project(&self, caller: &AuthContext, id: &str) -> Result<Project, AuthError> {
        enforce(caller, Action::GetProject { project_id: id })?;
        Ok(project_of(self.project_row(id).await?))
    }

    /// `PATCH /projects/{id}` (admin): accepted only when nothing would
    /// change (clients often resend current values); 400 naming the
    /// attributes that would.
    pub async fn update_project(
        &self,
        caller: &AuthContext,
        id: &str,
        req: &ProjectUpdate,
    ) -> Result<Project, AuthError> {
        enforce(caller, Action::UpdateProject)?;
        let p = project_of(self.project_row(id).await?);
        let changed = req.changed(&p);
        if !changed.is_empty() {
            return Err(AuthError::bad(format!(
                "Updating project attribute(s) {} is not supported by Stratus.",
                changed.join(", ")
            )));
        }
        Ok(p)
    }

    /// `DELETE /projects/{id}` (admin); its role assignments go with it.
    pub async fn delete_project(&self, caller: &AuthContext, id: &str) -> Result<(), AuthError> {
        enforce(caller, Action::DeleteProject)?;
        self.ds.project_delete(id).await.map_err(AuthError::not_found_as(ResourceKind::Project, id))?;
        // Tokens scoped to it must stop working now, not when their cache entry ages out.
        self.flush_cache();
        info!(project = %id, by = %caller.user_id, "project deleted with its role assignments");
        Ok(())
    }

    /// `GET /auth/projects`: the projects the caller may scope to.
    pub async fn scopable_projects(&self, caller: &AuthContext) -> Result<Vec<Project>, AuthError> {
        Ok(self.projects_of(&caller.user_id).await?)
    }

    /// `GET /users/{id}/projects`: the user itself, or admins.
    pub async fn user_projects(&self, caller: &AuthContext, user_id: &str) -> Result<Vec<Project>, AuthError> {
        enforce(caller, Action::ListUserProjects { user_id })?;
        let u = self.user_row(user_id).await?;
        Ok(self.projects_of(&u.id).await?)
    }

    /// Projects on which `user_id` has any role, by name.
    async fn projects_of(&self, user_id: &str) -> Result<Vec<Project>, DbError> {
        let ids: HashSet<String> =
            self.ds.assignment_list(Some(user_id), None).await?.into_iter().map(|a| a.project_id).collect();
        Ok(self.ds.project_list().await?.into_iter().filter(|p| ids.contains(&p.id)).map(project_of).collect())
    }
}
