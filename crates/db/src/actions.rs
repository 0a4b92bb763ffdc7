//! Instance actions and their events: the user-visible log of what happened
//! to a server, each step with its timing, result and reason.

use crate::sql::lit;
use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::EventResult;
use stratus_types::ServerId;

/// An instance action.
#[derive(Clone, Debug, FromRow)]
pub struct ActionRow {
    /// Internal id.
    pub id: i64,
    /// Server.
    pub server_id: ServerId,
    /// Request id (`req-...`).
    pub request_id: String,
    /// `create`, `delete`, `stop`, ...
    pub action: String,
    /// Requesting user.
    pub user_id: String,
    /// Requesting project.
    pub project_id: String,
    /// Start time.
    #[sqlx(try_from = "crate::TsText")]
    pub start_time: DateTime<Utc>,
    /// Last update.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// `Error` when the action failed.
    pub message: Option<String>,
}

/// An event within an action.
#[derive(Clone, Debug, FromRow)]
pub struct EventRow {
    /// Event name, e.g. `compute_terminate_instance`.
    pub event: String,
    /// Start time.
    #[sqlx(try_from = "crate::TsText")]
    pub start_time: DateTime<Utc>,
    /// Finish time.
    #[sqlx(try_from = "crate::OptTsText")]
    pub finish_time: Option<DateTime<Utc>>,
    /// `Success` or `Error`.
    pub result: Option<stratus_types::EventResult>,
    /// Host it ran on.
    pub host: Option<String>,
    /// Why and how (path chosen, timings).
    pub details: Option<String>,
}

crate::per_backend! {
pub(crate) async fn action_create_tx(
    conn: &mut dbk::Conn,
    server_id: &ServerId,
    request_id: &str,
    action: &str,
    user_id: &str,
    project_id: &str,
    now: &str,
) -> Result<(), DbError> {
    sqlx::query(crate::hot_sql::ACTION_CREATE)
        .bind(server_id).bind(request_id).bind(action).bind(user_id).bind(project_id).bind(now)
        .execute(&mut *conn).await?;
    Ok(())
}

pub(crate) async fn event_start_tx(
    conn: &mut dbk::Conn,
    server_id: &ServerId,
    request_id: &str,
    event: &str,
    host: Option<&str>,
    now: &str,
) -> Result<(), DbError> {
    sqlx::query(crate::hot_sql::EVENT_START)
    .bind(server_id)
    .bind(request_id)
    .bind(event)
    .bind(now)
    .bind(host)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn event_finish_tx(
    conn: &mut dbk::Conn,
    server_id: &ServerId,
    request_id: &str,
    event: &str,
    ok: bool,
    details: &str,
    now: &str,
) -> Result<(), DbError> {
    dbk::event_start_tx(conn, server_id, request_id, event, None, now).await?;
    sqlx::query(crate::hot_sql::EVENT_FINISH)
        .bind(server_id).bind(request_id).bind(event).bind(now).bind(EventResult::of(ok).as_str()).bind(details)
        .execute(&mut *conn).await?;
    sqlx::query(&crate::hot_sql::ACTION_AFTER_EVENT)
        .bind(server_id).bind(request_id).bind(now).bind(ok).execute(&mut *conn).await?;
    Ok(())
}
}

impl Datastore {
    /// Record an action (idempotent per server and request id).
    pub async fn action_create(
        &self,
        server_id: &ServerId,
        request_id: &str,
        action: &str,
        user_id: &str,
        project_id: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut conn = wp.acquire().await?;
            dbk::action_create_tx(&mut conn, server_id, request_id, action, user_id, project_id, &now).await
        })
    }

    /// Start an event (idempotent: restarting keeps the first start time).
    pub async fn event_start(
        &self,
        server_id: &ServerId,
        request_id: &str,
        event: &str,
        host: Option<&str>,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::exec(
                wp,
                sqlx::query(
                    "INSERT INTO instance_action_events (action_id, event, start_time, host)
                     SELECT id, $3, $4, $5 FROM instance_actions WHERE server_id = $1 AND request_id = $2
                     ON CONFLICT (action_id, event) DO NOTHING",
                )
                .bind(server_id)
                .bind(request_id)
                .bind(event)
                .bind(&now)
                .bind(host),
            )
            .await?;
            Ok(())
        })
    }

    /// Finish an event with its result and details; an `Error` result marks the action.
    pub async fn event_finish(
        &self,
        server_id: &ServerId,
        request_id: &str,
        event: &str,
        ok: bool,
        details: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            sqlx::query(
                "INSERT INTO instance_action_events (action_id, event, start_time, host)
                     SELECT id, $3, $4, NULL FROM instance_actions WHERE server_id = $1 AND request_id = $2
                     ON CONFLICT (action_id, event) DO NOTHING",
            )
            .bind(server_id)
            .bind(request_id)
            .bind(event)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE instance_action_events SET finish_time = $4, result = $5, details = $6
                     WHERE event = $3 AND action_id = (SELECT id FROM instance_actions WHERE server_id = $1 AND request_id = $2)")
            .bind(server_id).bind(request_id).bind(event).bind(&now).bind(EventResult::of(ok).as_str()).bind(details)
            .execute(&mut *tx).await?;
            sqlx::query(&format!("UPDATE instance_actions SET updated_at = $3, message = CASE WHEN $4 THEN message ELSE {error} END WHERE server_id = $1 AND request_id = $2", error = lit(EventResult::Error)))
            .bind(server_id).bind(request_id).bind(&now).bind(ok).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Start an event if needed and set the details it shows while it is
    /// still open (a step that waits, saying why); finishing it later
    /// replaces them.
    pub async fn event_note(
        &self,
        server_id: &ServerId,
        request_id: &str,
        event: &str,
        details: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            dbk::event_start_tx(&mut tx, server_id, request_id, event, None, &now).await?;
            sqlx::query("UPDATE instance_action_events SET details = $4
                     WHERE event = $3 AND finish_time IS NULL AND action_id = (SELECT id FROM instance_actions WHERE server_id = $1 AND request_id = $2)")
            .bind(server_id).bind(request_id).bind(event).bind(details)
            .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Finish every event of an action still open (an attempt that crashed
    /// mid-step), so the action never shows a step running forever.
    pub async fn event_finish_open(
        &self,
        server_id: &ServerId,
        request_id: &str,
        details: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query(&format!("UPDATE instance_action_events SET finish_time = $3, result = {success}, details = COALESCE(details, '') || $4
                     WHERE finish_time IS NULL AND action_id = (SELECT id FROM instance_actions WHERE server_id = $1 AND request_id = $2)", success = lit(EventResult::Success)))
            .bind(server_id).bind(request_id).bind(self.now()).bind(details)
            ).await?;
            Ok(())
        })
    }

    /// Actions of a server, newest first (so `delete` comes first, as in Nova).
    pub async fn action_list(&self, server_id: &ServerId) -> Result<Vec<ActionRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT id, server_id, request_id, action, user_id, project_id, start_time, updated_at, message FROM instance_actions WHERE server_id = $1 ORDER BY id DESC")
            .bind(server_id).fetch_all(rp).await?)
        })
    }

    /// One action with its events in order.
    pub async fn action_get(
        &self,
        server_id: &ServerId,
        request_id: &str,
    ) -> Result<(ActionRow, Vec<EventRow>), DbError> {
        crate::with_db!(self, |wp, rp| {
            let a: ActionRow = sqlx::query_as("SELECT id, server_id, request_id, action, user_id, project_id, start_time, updated_at, message FROM instance_actions WHERE server_id = $1 AND request_id = $2")
            .bind(server_id).bind(request_id).fetch_optional(rp).await?.ok_or_else(|| DbError::not_found(RowKind::InstanceAction, request_id))?;
            let ev = sqlx::query_as("SELECT event, start_time, finish_time, result, host, details FROM instance_action_events WHERE action_id = $1 ORDER BY id")
            .bind(a.id).fetch_all(rp).await?;
            Ok((a, ev))
        })
    }
}
