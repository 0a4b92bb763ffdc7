//! Projects: flat, in the default domain. The datastore cannot change a
//! project, so an update only accepts attributes that already have the
//! requested value.

use crate::policy::{Action, enforce};
use crate::secret::new_id;
use crate::service::{check_domain_id, project_of, valid_name};
use crate::{AuthContext, AuthError, Identity, ResourceKind};
use std::collections::{HashMap, HashSet};
use stratus_api::identity::{DEFAULT_DOMAIN_ID, Project, ProjectCreate, ProjectFilter, ProjectUpdate};
use stratus_db::{DbError, ProjectRow, ProjectTagAdded};
use tracing::info;

/// Longest project name accepted.
const MAX_PROJECT_NAME: usize = 64;

/// Most tags a project may have (Keystone's limit).
const MAX_TAGS: usize = 80;

/// Longest tag accepted (Keystone's limit).
const MAX_TAG_LEN: usize = 60;

/// One tag, as Keystone accepts it: 1 to 60 characters, no `/` or `,`
/// (they would be ambiguous in URLs and in the comma-separated filters).
fn valid_tag(tag: &str) -> Result<(), AuthError> {
    if tag.is_empty() {
        return Err(AuthError::bad("Invalid input for field 'tags': a tag must not be empty."));
    }
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(AuthError::bad(format!(
            "Invalid input for field 'tags': '{tag}' is longer than {MAX_TAG_LEN} characters."
        )));
    }
    if tag.contains('/') || tag.contains(',') {
        return Err(AuthError::bad(format!("Invalid input for field 'tags': '{tag}' contains '/' or ','.")));
    }
    Ok(())
}

/// A whole tag list: each tag valid, no duplicates, at most 80.
fn valid_tags(tags: &[String]) -> Result<(), AuthError> {
    if tags.len() > MAX_TAGS {
        return Err(AuthError::bad(format!("Invalid input for field 'tags': a project has at most {MAX_TAGS} tags.")));
    }
    let mut seen = HashSet::new();
    for t in tags {
        valid_tag(t)?;
        if !seen.insert(t) {
            return Err(AuthError::bad(format!("Invalid input for field 'tags': '{t}' is given twice.")));
        }
    }
    Ok(())
}

impl Identity {
    /// `GET /projects` (admin).
    pub async fn list_projects(&self, caller: &AuthContext, filter: &ProjectFilter) -> Result<Vec<Project>, AuthError> {
        enforce(caller, Action::ListProjects)?;
        if filter.matches_nothing {
            return Ok(Vec::new());
        }
        Ok(self.with_tags(self.ds.project_list().await?).await?.into_iter().filter(|p| filter.matches(p)).collect())
    }

    /// Projects with their tags.
    async fn with_tags(&self, rows: Vec<ProjectRow>) -> Result<Vec<Project>, DbError> {
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for (p, t) in self.ds.project_tags_all().await? {
            tags.entry(p).or_default().push(t);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let t = tags.remove(&r.id).unwrap_or_default();
                Project { tags: t, ..project_of(r) }
            })
            .collect())
    }

    /// One project with its tags.
    async fn project_with_tags(&self, id: &str) -> Result<Project, AuthError> {
        let p = project_of(self.project_row(id).await?);
        Ok(Project { tags: self.ds.project_tags(&p.id).await?, ..p })
    }

    /// `POST /projects` (admin). Flat projects in the default domain only.
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
        let tags = req.tags.unwrap_or_default();
        valid_tags(&tags)?;
        let p = ProjectRow {
            id: new_id(),
            name,
            domain_id: DEFAULT_DOMAIN_ID.into(),
            description: req.description.unwrap_or_default(),
            enabled: req.enabled.unwrap_or(true),
        };
        self.ds.project_create(&p).await.map_err(AuthError::conflict_as(ResourceKind::Project, &p.name))?;
        if !tags.is_empty() {
            self.ds.project_tags_replace(&p.id, &tags).await?;
        }
        info!(project = %p.id, name = %p.name, by = %caller.user_id, "project created");
        let mut tags = tags;
        tags.sort();
        Ok(Project { tags, ..project_of(p) })
    }

    /// `GET /projects/{id}`: admins, or a caller whose token is scoped to it.
    pub async fn get_project(&self, caller: &AuthContext, id: &str) -> Result<Project, AuthError> {
        enforce(caller, Action::GetProject { project_id: id })?;
        self.project_with_tags(id).await
    }

    /// `PATCH /projects/{id}` (admin): only `tags` can change (replaced
    /// whole, as Keystone does); other attributes are accepted only when
    /// they would not change (clients often resend current values), else
    /// a 400 naming them.
    pub async fn update_project(
        &self,
        caller: &AuthContext,
        id: &str,
        req: &ProjectUpdate,
    ) -> Result<Project, AuthError> {
        enforce(caller, Action::UpdateProject)?;
        let p = self.project_with_tags(id).await?;
        let changed: Vec<&str> = req.changed(&p).into_iter().filter(|k| *k != "tags").collect();
        if !changed.is_empty() {
            return Err(AuthError::bad(format!(
                "Updating project attribute(s) {} is not supported by Stratus.",
                changed.join(", ")
            )));
        }
        match req.tags() {
            None => Ok(p),
            Some(tags) => {
                let tags = tags.map_err(|e| AuthError::bad(e.to_string()))?;
                valid_tags(&tags)?;
                self.ds.project_tags_replace(&p.id, &tags).await?;
                self.project_with_tags(id).await
            }
        }
    }

    /// `GET /projects/{id}/tags`: admins, system readers, or a caller scoped to it.
    pub async fn project_tags(&self, caller: &AuthContext, id: &str) -> Result<Vec<String>, AuthError> {
        enforce(caller, Action::GetProjectTags { project_id: id })?;
        Ok(self.project_with_tags(id).await?.tags)
    }

    /// `GET /projects/{id}/tags/{tag}`: `Ok` when the project has it, else 404.
    pub async fn check_project_tag(&self, caller: &AuthContext, id: &str, tag: &str) -> Result<(), AuthError> {
        if self.project_tags(caller, id).await?.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(AuthError::NotFound { kind: ResourceKind::ProjectTag, id: tag.to_string() })
        }
    }

    /// `PUT /projects/{id}/tags/{tag}` (admin): add one tag (idempotent);
    /// 400 past Keystone's limits.
    pub async fn add_project_tag(&self, caller: &AuthContext, id: &str, tag: &str) -> Result<(), AuthError> {
        enforce(caller, Action::UpdateProjectTags)?;
        valid_tag(tag)?;
        let p = self.project_row(id).await?;
        let limit = i64::try_from(MAX_TAGS).unwrap_or(i64::MAX);
        match self.ds.project_tag_add(&p.id, tag, limit).await? {
            ProjectTagAdded::Added | ProjectTagAdded::Existed => Ok(()),
            ProjectTagAdded::Full => {
                Err(AuthError::bad(format!("Invalid input for field 'tags': a project has at most {MAX_TAGS} tags.")))
            }
        }
    }

    /// `PUT /projects/{id}/tags` (admin): replace every tag; returns the new list.
    pub async fn replace_project_tags(
        &self,
        caller: &AuthContext,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>, AuthError> {
        enforce(caller, Action::UpdateProjectTags)?;
        valid_tags(&tags)?;
        let p = self.project_row(id).await?;
        self.ds.project_tags_replace(&p.id, &tags).await?;
        Ok(self.ds.project_tags(&p.id).await?)
    }

    /// `DELETE /projects/{id}/tags/{tag}` (admin): 404 when the project lacks it.
    pub async fn delete_project_tag(&self, caller: &AuthContext, id: &str, tag: &str) -> Result<(), AuthError> {
        enforce(caller, Action::UpdateProjectTags)?;
        let p = self.project_row(id).await?;
        self.ds.project_tag_delete(&p.id, tag).await.map_err(AuthError::not_found_as(ResourceKind::ProjectTag, tag))
    }

    /// `DELETE /projects/{id}/tags` (admin): remove every tag.
    pub async fn clear_project_tags(&self, caller: &AuthContext, id: &str) -> Result<(), AuthError> {
        enforce(caller, Action::UpdateProjectTags)?;
        let p = self.project_row(id).await?;
        Ok(self.ds.project_tags_replace(&p.id, &[]).await?)
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
        let rows = self.ds.project_list().await?.into_iter().filter(|p| ids.contains(&p.id)).collect();
        self.with_tags(rows).await
    }
}
