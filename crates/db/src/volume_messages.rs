//! User messages (Cinder's `/messages`, 3.3): a record, for the project
//! that asked, of why an asynchronous volume operation failed. Each has
//! Cinder's action and detail ids and expires after a retention time.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// A message row.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct VolumeMessageRow {
    /// Id (UUID).
    pub id: String,
    /// The project it is for.
    pub project_id: String,
    /// The request that failed (`req-<uuid>`).
    pub request_id: String,
    /// `VOLUME`, ...
    pub resource_type: Option<String>,
    /// The resource concerned.
    pub resource_uuid: Option<String>,
    /// `VOLUME_<resource>_<action>_<detail>`.
    pub event_id: String,
    /// Cinder's action id (`001`: schedule allocate volume, ...).
    pub action_id: String,
    /// Cinder's detail id (`003`: no backend available, ...).
    pub detail_id: String,
    /// `ERROR`, ...
    pub message_level: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Kept at least until (Cinder's `guaranteed_until`).
    #[sqlx(try_from = "crate::TsText")]
    pub expires_at: DateTime<Utc>,
}

const MCOLS: &str = "id, project_id, request_id, resource_type, resource_uuid, event_id, action_id, detail_id, message_level, created_at, expires_at";

impl Datastore {
    /// Record a message kept for `ttl` from now.
    pub async fn volume_message_create(
        &self,
        m: &VolumeMessageRow,
        ttl: chrono::Duration,
    ) -> Result<VolumeMessageRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let expires = crate::ts(self.clock.now() + ttl);
            Ok(sqlx::query_as(&format!(
                "INSERT INTO volume_messages ({MCOLS}, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,FALSE) RETURNING {MCOLS}"
            ))
            .bind(&m.id)
            .bind(&m.project_id)
            .bind(&m.request_id)
            .bind(&m.resource_type)
            .bind(&m.resource_uuid)
            .bind(&m.event_id)
            .bind(&m.action_id)
            .bind(&m.detail_id)
            .bind(&m.message_level)
            .bind(&now)
            .bind(&expires)
            .fetch_one(wp)
            .await?)
        })
    }

    /// A live, unexpired message.
    pub async fn volume_message_get(&self, id: &str) -> Result<VolumeMessageRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "SELECT {MCOLS} FROM volume_messages WHERE id = $1 AND deleted = FALSE AND expires_at > $2"
            ))
            .bind(id)
            .bind(self.now())
            .fetch_optional(rp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::VolumeMessage, id))
        })
    }

    /// Live, unexpired messages of a project (or of all), oldest first.
    pub async fn volume_message_list(&self, project_id: Option<&str>) -> Result<Vec<VolumeMessageRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {MCOLS} FROM volume_messages WHERE deleted = FALSE AND expires_at > $2 AND ($1 IS NULL OR project_id = $1) ORDER BY created_at, id"
            ))
            .bind(project_id)
            .bind(self.now())
            .fetch_all(rp)
            .await?)
        })
    }

    /// Delete a message (`NotFound` if already gone).
    pub async fn volume_message_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("UPDATE volume_messages SET deleted = TRUE WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .execute(wp)
                .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::not_found(RowKind::VolumeMessage, id));
            }
            Ok(())
        })
    }
}
