//! Per-project default volume types (Cinder's `/default-types`, Block
//! Storage 3.62): admins set, show, list and unset them (Cinder's
//! `RULE_ADMIN_API` defaults); a volume create that names no type, and
//! `GET /types/default`, use the caller's project default before the global
//! `__DEFAULT__`. A type that is a project's default cannot be deleted.

use crate::types::check_type_admin;
use crate::{Missing, VolumeError, VolumeService};
use stratus_auth::AuthContext;
use stratus_db::{DEFAULT_VOLUME_TYPE_ID, DbError, ProjectDefaultTypeRow};
use tracing::info;

/// Cinder's 404 for a project without a default type.
fn no_default(project_id: &str) -> VolumeError {
    VolumeError::not_found(Missing::ProjectDefaultType, project_id)
}

impl VolumeService {
    /// Cinder's `validate_project_and_authorize`: policy first (403), then
    /// the project must exist (404).
    async fn default_type_project(&self, ctx: &AuthContext, project_id: &str, policy: &str) -> Result<(), VolumeError> {
        check_type_admin(ctx, policy)?;
        match self.ds.project_get(project_id).await {
            Ok(_) => Ok(()),
            Err(DbError::NotFound { .. }) => Err(VolumeError::not_found(Missing::Project, project_id)),
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /default-types/{project_id}`: the type by name or id (any
    /// type, as Cinder's admin lookup; unknown is 400).
    pub async fn default_type_set(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        volume_type: &str,
    ) -> Result<ProjectDefaultTypeRow, VolumeError> {
        self.default_type_project(ctx, project_id, "volume_extension:default_set_or_update").await?;
        let t = match self.type_find(volume_type, None).await {
            Ok(t) => t,
            Err(VolumeError::NotFound { .. }) => {
                return Err(VolumeError::BadRequest(format!("Volume type {volume_type} could not be found.")));
            }
            Err(e) => return Err(e),
        };
        let row = self.ds.project_default_type_set(project_id, &t.id).await?;
        info!(project = project_id, volume_type = %t.id, by = %ctx.user_id, "project default volume type set");
        Ok(row)
    }

    /// `GET /default-types/{project_id}` (404 when none is set).
    pub async fn default_type_get(
        &self,
        ctx: &AuthContext,
        project_id: &str,
    ) -> Result<ProjectDefaultTypeRow, VolumeError> {
        self.default_type_project(ctx, project_id, "volume_extension:default_get").await?;
        self.ds.project_default_type_get(project_id).await?.ok_or_else(|| no_default(project_id))
    }

    /// `GET /default-types`: every project's.
    pub async fn default_type_list(&self, ctx: &AuthContext) -> Result<Vec<ProjectDefaultTypeRow>, VolumeError> {
        check_type_admin(ctx, "volume_extension:default_get_all")?;
        Ok(self.ds.project_default_type_list().await?)
    }

    /// `DELETE /default-types/{project_id}`: also for a project that no
    /// longer exists (Cinder unsets it anyway); none set is success.
    pub async fn default_type_unset(&self, ctx: &AuthContext, project_id: &str) -> Result<(), VolumeError> {
        check_type_admin(ctx, "volume_extension:default_unset")?;
        self.ds.project_default_type_unset(project_id).await?;
        info!(project = project_id, by = %ctx.user_id, "project default volume type unset");
        Ok(())
    }

    /// The type a project's volumes get when none is named: its default
    /// type if set (and still there), else the global default.
    pub(crate) async fn default_type_for(&self, project_id: &str) -> Result<String, VolumeError> {
        match self.ds.project_default_type_get(project_id).await? {
            Some(d) => match self.ds.volume_type_get(&d.volume_type_id, None).await {
                Ok(t) => Ok(t.id),
                Err(DbError::NotFound { .. }) => Ok(DEFAULT_VOLUME_TYPE_ID.to_string()),
                Err(e) => Err(e.into()),
            },
            None => Ok(DEFAULT_VOLUME_TYPE_ID.to_string()),
        }
    }
}
