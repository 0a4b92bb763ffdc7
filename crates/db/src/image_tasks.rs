//! Image tasks (Glance's `/v2/tasks` and an image's import tasks). Rows
//! keep the task's view as JSON; `stratus-image` decides what a task holds
//! and who sees it, this module only stores, lists and purges rows.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// One task.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct ImageTaskRow {
    /// Task id (a UUID).
    pub id: String,
    /// Owning project.
    pub owner: String,
    /// Glance's task type (`import`, `api_image_import`).
    pub task_type: String,
    /// `pending`, `processing`, `success` or `failure`.
    pub status: String,
    /// The image the task made or imported into, once known.
    pub image_id: Option<String>,
    /// The rest of the view (`input`, `result`, `message`, ...) as a JSON object.
    pub body: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// When the task is purged (set when it ends).
    #[sqlx(try_from = "crate::OptTsText")]
    pub expires_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, owner, task_type, status, image_id, body, created_at, updated_at, expires_at";

impl Datastore {
    /// Record a new task (its timestamps come from the datastore's clock).
    pub async fn image_task_create(&self, t: &ImageTaskRow) -> Result<ImageTaskRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            Ok(sqlx::query_as(&format!(
                "INSERT INTO image_tasks ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$7,NULL) RETURNING {COLS}"
            ))
            .bind(&t.id)
            .bind(&t.owner)
            .bind(&t.task_type)
            .bind(&t.status)
            .bind(&t.image_id)
            .bind(&t.body)
            .bind(&now)
            .fetch_one(wp)
            .await?)
        })
    }

    /// Change a task's status, image and body; `ttl` (when the task ends)
    /// sets its expiry that far from now. `NotFound` once it was purged.
    pub async fn image_task_update(
        &self,
        id: &str,
        status: &str,
        image_id: Option<&str>,
        body: &str,
        ttl: Option<chrono::Duration>,
    ) -> Result<ImageTaskRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.clock.now();
            let expires = ttl.map(|d| crate::ts(now + d));
            sqlx::query_as(&format!(
                "UPDATE image_tasks SET status = $2, image_id = COALESCE($3, image_id), body = $4, updated_at = $5, expires_at = COALESCE($6, expires_at) WHERE id = $1 RETURNING {COLS}"
            ))
            .bind(id)
            .bind(status)
            .bind(image_id)
            .bind(body)
            .bind(crate::ts(now))
            .bind(expires)
            .fetch_optional(wp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::ImageTask, id))
        })
    }

    /// One task; `NotFound` when there is none (or it was purged).
    pub async fn image_task_get(&self, id: &str) -> Result<ImageTaskRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {COLS} FROM image_tasks WHERE id = $1"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::ImageTask, id))
        })
    }

    /// Every task of `owner` (every task when `None`), newest first: tasks
    /// live 48 hours, so callers filter, sort and page in memory.
    pub async fn image_task_list(&self, owner: Option<&str>) -> Result<Vec<ImageTaskRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM image_tasks WHERE ($1 IS NULL OR owner = $1) ORDER BY created_at DESC, id DESC"
            ))
            .bind(owner)
            .fetch_all(rp)
            .await?)
        })
    }

    /// The tasks of one image, newest first.
    pub async fn image_task_list_for_image(&self, image_id: &str) -> Result<Vec<ImageTaskRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM image_tasks WHERE image_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(image_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Delete the tasks whose expiry has passed; how many went.
    /// Tasks still `pending` or `processing` that their runner has not
    /// refreshed since `updated_before`: the process running them is gone.
    pub async fn image_task_list_stale(&self, updated_before: DateTime<Utc>) -> Result<Vec<ImageTaskRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM image_tasks WHERE status IN ('pending', 'processing') AND updated_at < $1 ORDER BY updated_at, id"
            ))
            .bind(crate::ts(updated_before))
            .fetch_all(rp)
            .await?)
        })
    }

    /// Refresh a running task's `updated_at` (its runner's heartbeat).
    pub async fn image_task_touch(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE image_tasks SET updated_at = $2 WHERE id = $1 AND status IN ('pending', 'processing')",
                )
                .bind(id)
                .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }

    pub async fn image_task_purge_expired(&self) -> Result<u64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM image_tasks WHERE expires_at IS NOT NULL AND expires_at <= $1")
                    .bind(self.now()),
            )
            .await?;
            Ok(r.rows_affected())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    fn task(id: &str, owner: &str) -> ImageTaskRow {
        ImageTaskRow {
            id: id.into(),
            owner: owner.into(),
            task_type: "import".into(),
            status: "pending".into(),
            image_id: None,
            body: "{}".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
            expires_at: None,
        }
    }

    // Glance: a task ends with an expires_at (task_time_to_live) and is purged after it.
    #[tokio::test]
    async fn tasks_update_list_and_purge_after_expiry() {
        let (ds, _d) = store().await;
        ds.image_task_create(&task("t1", "p1")).await.expect("test value");
        ds.image_task_create(&task("t2", "p2")).await.expect("test value");
        assert_eq!(ds.image_task_list(None).await.expect("test value").len(), 2);
        assert_eq!(ds.image_task_list(Some("p1")).await.expect("test value").len(), 1);
        let done = ds
            .image_task_update("t1", "success", Some("img"), "{\"a\":1}", Some(chrono::Duration::hours(48)))
            .await
            .expect("test value");
        assert_eq!(done.image_id.as_deref(), Some("img"));
        assert!(done.expires_at.is_some());
        assert_eq!(ds.image_task_list_for_image("img").await.expect("test value").len(), 1);
        assert_eq!(ds.image_task_purge_expired().await.expect("test value"), 0);
        ds.image_task_update("t2", "failure", None, "{}", Some(chrono::Duration::seconds(-1)))
            .await
            .expect("test value");
        assert_eq!(ds.image_task_purge_expired().await.expect("test value"), 1);
        assert!(matches!(ds.image_task_get("t2").await, Err(DbError::NotFound { .. })));
        assert!(matches!(ds.image_task_update("t2", "failure", None, "{}", None).await, Err(DbError::NotFound { .. })));
    }
}
