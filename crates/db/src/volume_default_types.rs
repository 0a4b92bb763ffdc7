//! Per-project default volume types (Cinder's `/default-types`, 3.62): at
//! most one per project, set, read and unset by admins; a volume create
//! that names no type uses it before the global default.

use crate::{Datastore, DbError};
use sqlx::FromRow;

/// One project's default type.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct ProjectDefaultTypeRow {
    /// The project.
    pub project_id: String,
    /// Its default volume type (id).
    pub volume_type_id: String,
}

impl Datastore {
    /// Set (or replace) a project's default type.
    pub async fn project_default_type_set(
        &self,
        project_id: &str,
        volume_type_id: &str,
    ) -> Result<ProjectDefaultTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
                "INSERT INTO project_default_volume_types (project_id, volume_type_id) VALUES ($1, $2) \
                 ON CONFLICT (project_id) DO UPDATE SET volume_type_id = excluded.volume_type_id \
                 RETURNING project_id, volume_type_id",
            )
            .bind(project_id)
            .bind(volume_type_id)
            .fetch_one(wp)
            .await?)
        })
    }

    /// A project's default type, if one is set.
    pub async fn project_default_type_get(&self, project_id: &str) -> Result<Option<ProjectDefaultTypeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
                "SELECT project_id, volume_type_id FROM project_default_volume_types WHERE project_id = $1",
            )
            .bind(project_id)
            .fetch_optional(rp)
            .await?)
        })
    }

    /// Every project's default type, by project.
    pub async fn project_default_type_list(&self) -> Result<Vec<ProjectDefaultTypeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
                "SELECT project_id, volume_type_id FROM project_default_volume_types ORDER BY project_id",
            )
            .fetch_all(rp)
            .await?)
        })
    }

    /// The projects whose default is this type.
    pub async fn project_default_type_users(&self, volume_type_id: &str) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT project_id FROM project_default_volume_types WHERE volume_type_id = $1 ORDER BY project_id",
            )
            .bind(volume_type_id)
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Unset a project's default type (absent is success).
    pub async fn project_default_type_unset(&self, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("DELETE FROM project_default_volume_types WHERE project_id = $1").bind(project_id),
            )
            .await?;
            Ok(())
        })
    }
}
