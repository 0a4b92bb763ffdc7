//! The migrations list (`/os-migrations`): every resize, cold migration and
//! evacuation Stratus recorded, with Nova's policy defaults: a project
//! manager lists its own project's (asking with `project_id` = its project),
//! only an admin lists every project's or sees the hosts.

use super::{ComputeApi, ComputeError};
use stratus_auth::AuthContext;
use stratus_db::{MigrationFilter, MigrationRow};

/// What the caller may see of the migrations it listed.
#[derive(Clone, Debug)]
pub struct MigrationList {
    /// The migrations, newest first.
    pub migrations: Vec<MigrationRow>,
    /// Nova's `os-migrations:index:host` (admin): without it the source and
    /// destination hosts and nodes are shown as null.
    pub show_hosts: bool,
}

impl ComputeApi {
    /// The migrations matching `filter` (Nova's `os-migrations:index`,
    /// PROJECT_MANAGER_OR_ADMIN; listing all projects, or another one, needs
    /// `index:all_projects`, ADMIN; 403 otherwise, as Nova's `_index`).
    pub async fn migrations(&self, ctx: &AuthContext, filter: MigrationFilter) -> Result<MigrationList, ComputeError> {
        if !ctx.is_manager() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-migrations:index to be performed.".into(),
            ));
        }
        if filter.project_id.as_deref() != Some(ctx.project_id.as_str()) {
            Self::require_admin(ctx, "os_compute_api:os-migrations:index:all_projects")?;
        }
        let migrations = self.ds.migration_list(&filter).await?;
        Ok(MigrationList { migrations, show_hosts: ctx.is_admin() })
    }
}
