//! Durable operations: a row per multi-step mutation, claimed by one
//! controller at a time with an expiring claim, advanced step by step.

use crate::group::Lane;
use crate::sql::{list, lit};
use crate::{Datastore, DbError, RowKind, ts};
use chrono::Duration;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::{OpKind, OpState};
use stratus_types::{OperationId, ServerId};

/// An operation row.
#[derive(Clone, Debug, FromRow)]
pub struct OperationRow {
    /// Operation id.
    pub id: OperationId,
    /// What it does (picks its handler).
    #[sqlx(try_from = "String")]
    pub kind: OpKind,
    /// The server it acts on.
    pub server_id: ServerId,
    /// Where the row is in its life.
    #[sqlx(try_from = "String")]
    pub state: OpState,
    /// The step cursor: the last step recorded as completed (`start` when
    /// none is); a resumed operation continues after it.
    pub step: String,
    /// Request that created it (instance action key).
    pub request_id: String,
    /// Requesting user.
    pub user_id: String,
    /// Requesting project.
    pub project_id: String,
    /// Kind-specific parameters, JSON.
    pub params: String,
    /// Controller holding the claim.
    pub claimed_by: Option<String>,
    /// When the claim lapses and another controller may adopt it.
    #[sqlx(try_from = "crate::OptTsText")]
    pub claim_expires_at: Option<DateTime<Utc>>,
    /// How many times it was claimed.
    pub attempts: i64,
    /// Last error text.
    pub last_error: Option<String>,
    /// Creation time.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

/// A new operation to insert.
#[derive(Clone, Debug)]
pub struct NewOperation {
    /// Operation id.
    pub id: OperationId,
    /// Kind.
    pub kind: OpKind,
    /// Server.
    pub server_id: ServerId,
    /// Request id.
    pub request_id: String,
    /// User.
    pub user_id: String,
    /// Project.
    pub project_id: String,
    /// Parameters JSON.
    pub params: String,
}

const COLS: &str = crate::hot_sql::OP_COLS;

crate::per_backend! {
/// The writes of [`Datastore::op_step_with`] on `conn`, inside a
/// transaction the caller commits; `false` (nothing written) if the claim
/// was lost.
pub(crate) async fn step_tx(conn: &mut dbk::Conn, r: &StepRecord) -> Result<bool, DbError> {
    // The claim is checked by this update itself (one statement fewer).
    let done = sqlx::query(&crate::hot_sql::STEP)
    .bind(r.op_id)
    .bind(&r.worker)
    .bind(&r.now)
    .bind(&r.completed)
    .bind(r.token)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some((server, request, event, host)) = &r.writes.event_start {
        dbk::event_start_tx(conn, server, request, event, host.as_deref(), &r.now).await?;
    }
    if let Some(n) = &r.writes.notification {
        dbk::notification_insert_tx(conn, n, &r.now).await?;
    }
    Ok(true)
}

/// The writes of [`Datastore::server_begin_delete`] on `conn`, inside a
/// transaction the caller commits; `None` when the server is gone
/// (nothing is written then).
pub(crate) async fn begin_delete_tx(
    conn: &mut dbk::Conn,
    o: &NewOperation,
    now: &str,
) -> Result<Option<OpStart>, DbError> {
    let r = sqlx::query(&crate::hot_sql::MARK_DELETING)
        .bind(o.server_id).bind(now).execute(&mut *conn).await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let existing: Option<OperationRow> = sqlx::query_as(&crate::hot_sql::OPEN_DELETE)
    .bind(o.server_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(e) = existing {
        return Ok(Some(OpStart::Existing(e)));
    }
    dbk::action_create_tx(conn, &o.server_id, &o.request_id, "delete", &o.user_id, &o.project_id, now).await?;
    let op = dbk::op_insert_tx(conn, o, now).await?;
    Ok(Some(OpStart::Created(op)))
}

/// The writes of [`Datastore::server_delete_finish`] on `conn`, inside a
/// transaction the caller commits; `false` (nothing written) if the claim
/// was lost.
pub(crate) async fn delete_finish_tx(conn: &mut dbk::Conn, f: &DeleteFinish) -> Result<bool, DbError> {
    // The claim is checked by this update itself (one statement fewer).
    let r = sqlx::query(&crate::hot_sql::FINISH_DELETE_OP)
        .bind(f.op_id).bind(&f.worker).bind(&f.now).bind(f.token).execute(&mut *conn).await?;
    if r.rows_affected() != 1 {
        return Ok(false);
    }
    for (event, ok, details) in &f.events {
        dbk::event_finish_tx(conn, &f.server_id, &f.request_id, event, *ok, details, &f.now).await?;
    }
    sqlx::query(crate::hot_sql::DELETE_PORTS).bind(f.server_id).execute(&mut *conn).await?;
    sqlx::query(&crate::hot_sql::MARK_DELETED)
        .bind(f.server_id).bind(&f.now).execute(&mut *conn).await?;
    dbk::notification_insert_tx(conn, &f.notification, &f.now).await?;
    Ok(true)
}

pub(crate) async fn op_insert_tx(
    conn: &mut dbk::Conn,
    o: &NewOperation,
    now: &str,
) -> Result<OperationRow, DbError> {
    sqlx::query_as(&crate::hot_sql::OP_INSERT)
        .bind(o.id).bind(o.kind.as_str()).bind(o.server_id).bind(&o.request_id).bind(&o.user_id).bind(&o.project_id).bind(&o.params).bind(now)
        .fetch_one(&mut *conn).await
        .map_err(|e| if crate::is_unique_violation(&e) { op_exists(o) } else { e.into() })
}
}

/// The outcome of asking to start an operation on a server.
#[derive(Clone, Debug)]
pub enum OpStart {
    /// A new operation was recorded.
    Created(OperationRow),
    /// One of this kind was already open; it is returned to be re-driven.
    Existing(OperationRow),
}

/// Writes that go with recording a step, in the same transaction.
#[derive(Clone, Debug, Default)]
pub struct StepWrites {
    /// Start this instance-action event: (server, request id, event, host).
    pub event_start: Option<(ServerId, String, String, Option<String>)>,
    /// Record this notification.
    pub notification: Option<crate::NewNotification>,
}

/// The conflict of an operation insert refused by a uniqueness constraint.
pub(crate) fn op_exists(o: &NewOperation) -> DbError {
    DbError::conflict(RowKind::Operation, format!("an open {} operation exists for server {}", o.kind, o.server_id))
}

/// An instance-action event to finish: (event, success, details).
pub type EventFinish = (String, bool, String);

/// The inputs of [`Datastore::op_step_with`], owned so that the group
/// writer can run it.
#[derive(Debug)]
pub(crate) struct StepRecord {
    pub(crate) op_id: OperationId,
    pub(crate) worker: String,
    /// The attempt's claim token, if the caller runs under one.
    pub(crate) token: Option<i64>,
    /// The step completed before this one (the resume cursor), if any.
    pub(crate) completed: Option<String>,
    pub(crate) writes: StepWrites,
    /// The time every row written is stamped with.
    pub(crate) now: String,
}

/// The inputs of a delete's last step, owned so that the group writer can
/// run it (again, alone, after a group's rollback).
#[derive(Debug)]
pub(crate) struct DeleteFinish {
    pub(crate) op_id: OperationId,
    pub(crate) worker: String,
    /// The attempt's claim token, if the caller runs under one.
    pub(crate) token: Option<i64>,
    pub(crate) server_id: ServerId,
    pub(crate) request_id: String,
    pub(crate) events: Vec<EventFinish>,
    pub(crate) notification: crate::NewNotification,
    /// The time every row written is stamped with.
    pub(crate) now: String,
}

impl Datastore {
    /// Ids of open operations `worker` holds (a restarted runner adopts them at once).
    pub async fn op_list_held_by(&self, worker: &str) -> Result<Vec<OperationId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(OperationId,)> = sqlx::query_as(&format!(
                "SELECT id FROM operations WHERE state IN ({op_open}) AND claimed_by = $1",
                op_open = list(&OpState::OPEN)
            ))
            .bind(worker)
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Record that a step starts (the claim is still held), with its event
    /// and notification and, when given, the step completed before it (the
    /// cursor), in one transaction; `false` if the claim was lost.
    pub async fn op_step_with(
        &self,
        id: &OperationId,
        worker: &str,
        completed: Option<&str>,
        w: &StepWrites,
    ) -> Result<bool, DbError> {
        let step = StepRecord {
            op_id: *id,
            worker: worker.to_string(),
            token: crate::claim::current().map(|c| c.token),
            completed: completed.map(str::to_string),
            writes: w.clone(),
            now: self.now(),
        };
        if let crate::backend::Pools::Sqlite { write, sync, group, .. } = &self.pools {
            let done = group.run(Lane::Background, step, crate::direct::step).await;
            return sync.wait(write).await.and(done);
        }
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin_unchecked(wp).await?;
            let done = dbk::step_tx(&mut tx, &step).await?;
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The last step of a delete, in one transaction: finish the events,
    /// release the ports, mark the server deleted (quota usage drops with
    /// it), record `instance.delete.end` and close the operation. `false`
    /// if the claim was lost (nothing is written then). On SQLite it runs
    /// in the group writer's next transaction (see `group`).
    pub async fn server_delete_finish(
        &self,
        op_id: &OperationId,
        worker: &str,
        server_id: &ServerId,
        request_id: &str,
        events: &[EventFinish],
        notification: &crate::NewNotification,
    ) -> Result<bool, DbError> {
        let finish = DeleteFinish {
            op_id: *op_id,
            worker: worker.to_string(),
            // The attempt's claim, checked by the update itself.
            token: crate::claim::current().map(|c| c.token),
            server_id: *server_id,
            request_id: request_id.to_string(),
            events: events.to_vec(),
            notification: notification.clone(),
            now: self.now(),
        };
        if let crate::backend::Pools::Sqlite { write, sync, group, .. } = &self.pools {
            let done = group.run(Lane::Background, finish, crate::direct::delete_finish).await;
            return sync.wait(write).await.and(done);
        }
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin_unchecked(wp).await?;
            let done = dbk::delete_finish_tx(&mut tx, &finish).await?;
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Record an operation (with its instance action) unless one of the same
    /// kind is open for the server, in one transaction together with the
    /// server's state change (`transition`, a compare-and-swap: `Conflict`
    /// when the server is not in the expected state).
    pub async fn op_start(
        &self,
        o: &NewOperation,
        action: &str,
        transition: Option<&crate::Transition>,
    ) -> Result<OpStart, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            if let Some(t) = transition {
                let r = dbk::transition_query(&o.server_id, t, now.clone()).build().execute(&mut *tx).await?;
                if r.rows_affected() == 0 {
                    return Err(DbError::conflict(
                        RowKind::Server,
                        format!("server {} is not in a state that allows {action}", o.server_id),
                    ));
                }
            }
            let existing: Option<OperationRow> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM operations WHERE server_id = $1 AND kind = $2 AND state IN ({op_open})",
                op_open = list(&OpState::OPEN)
            ))
            .bind(o.server_id)
            .bind(o.kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(e) = existing {
                return Ok(OpStart::Existing(e));
            }
            dbk::action_create_tx(&mut tx, &o.server_id, &o.request_id, action, &o.user_id, &o.project_id, &now)
                .await?;
            let op = dbk::op_insert_tx(&mut tx, o, &now).await?;
            tx.commit().await?;
            Ok(OpStart::Created(op))
        })
    }

    /// Start a delete: in one transaction set `task_state=deleting` on the live
    /// server and record the delete operation and instance action, or return
    /// the open delete operation if there is one. On SQLite, outside an
    /// operation's claim, it runs in the group writer's next transaction
    /// (see `group`).
    pub async fn server_begin_delete(&self, o: &NewOperation) -> Result<OpStart, DbError> {
        let gone = || DbError::not_found(RowKind::Server, o.server_id);
        if let crate::backend::Pools::Sqlite { write, sync, group, .. } = &self.pools
            && crate::claim::current().is_none()
        {
            // The DELETE's answer waits on this: ahead of accepted work.
            let started = group
                .run(Lane::Request, (o.clone(), self.now()), |(o, now), c| crate::direct::begin_delete(c, o, now))
                .await;
            return sync.wait(write).await.and(started)?.ok_or_else(gone);
        }
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let Some(started) = dbk::begin_delete_tx(&mut tx, o, &now).await? else {
                return Err(gone());
            };
            tx.commit().await?;
            Ok(started)
        })
    }

    /// Claim one specific open operation for `worker` if unclaimed or its claim lapsed.
    pub async fn op_claim(
        &self,
        id: &OperationId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<OperationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.clock.now();
            Ok(sqlx::query_as(&format!("UPDATE operations SET state = {op_running}, claimed_by = $2, claim_expires_at = $3, attempts = attempts + 1, updated_at = $4
              WHERE id = $1 AND state IN ({op_open}) AND (claim_expires_at IS NULL OR claim_expires_at < $4 OR claimed_by = $2) RETURNING {COLS}", op_running = lit(OpState::Running), op_open = list(&OpState::OPEN)))
            .bind(id).bind(worker).bind(ts(now + lease)).bind(ts(now))
            .fetch_optional(wp).await?)
        })
    }

    /// [`Datastore::op_claim`] for several operations in one statement (a
    /// burst of deletes is claimed in one write instead of one each);
    /// returns the rows claimed, in no particular order.
    pub async fn op_claim_many(
        &self,
        ids: &[OperationId],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<OperationRow>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // On SQLite in the group writer's next transaction: a burst's claims
        // share its commit, and no other connection's commit drops the
        // group writer's page cache.
        if let crate::backend::Pools::Sqlite { write, sync, group, .. } = &self.pools {
            let now = self.clock.now();
            let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
            let m = crate::direct::ClaimMany {
                ids_json: serde_json::to_string(&ids).map_err(|e| DbError::Corrupt(format!("claim ids: {e}")))?,
                worker: worker.to_string(),
                expires: ts(now + lease),
                now: ts(now),
            };
            let claimed = group.run(Lane::Background, m, crate::direct::claim_many).await;
            return sync.wait(write).await.and(claimed);
        }
        crate::with_db!(self, |wp, rp| {
            let now = self.clock.now();
            let mut q: sqlx::QueryBuilder<dbk::Db> = sqlx::QueryBuilder::new(format!(
                "UPDATE operations SET state = {op_running}, claimed_by = ",
                op_running = lit(OpState::Running)
            ));
            q.push_bind(worker.to_string()).push(", claim_expires_at = ").push_bind(ts(now + lease));
            q.push(", attempts = attempts + 1, updated_at = ").push_bind(ts(now));
            q.push(format!(
                " WHERE state IN ({op_open}) AND (claim_expires_at IS NULL OR claim_expires_at < ",
                op_open = list(&OpState::OPEN)
            ));
            q.push_bind(ts(now)).push(" OR claimed_by = ").push_bind(worker.to_string()).push(") AND id IN (");
            let mut sep = q.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            q.push(format!(") RETURNING {COLS}"));
            Ok(q.build_query_as().fetch_all(wp).await?)
        })
    }

    /// Ids of open operations nobody holds (new, or whose claim lapsed).
    pub async fn op_list_claimable(&self, limit: i64) -> Result<Vec<OperationId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(OperationId,)> = sqlx::query_as(&format!("SELECT id FROM operations WHERE state IN ({op_open}) AND (claim_expires_at IS NULL OR claim_expires_at < $1) ORDER BY created_at LIMIT $2", op_open = list(&OpState::OPEN)))
            .bind(self.now()).bind(limit).fetch_all(rp).await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Extend a held claim; `false` if another worker took it.
    pub async fn op_renew_claim(&self, id: &OperationId, worker: &str, lease: Duration) -> Result<bool, DbError> {
        crate::with_db!(
            self,
            urgent | wp,
            rp | {
                let now = self.clock.now();
                let r = sqlx::query(&format!(
            "UPDATE operations SET claim_expires_at = $3 WHERE id = $1 AND claimed_by = $2 AND state = {op_running}",
            op_running = lit(OpState::Running)
        ))
        .bind(id)
        .bind(worker)
        .bind(ts(now + lease))
        .execute(wp)
        .await?;
                Ok(r.rows_affected() == 1)
            }
        )
    }

    /// Close an operation as `done` or `failed`.
    pub async fn op_finish(
        &self,
        id: &OperationId,
        worker: &str,
        ok: bool,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query(&format!("UPDATE operations SET state = $3, last_error = $4, claim_expires_at = NULL, updated_at = $5 WHERE id = $1 AND claimed_by = $2 AND state = {op_running}", op_running = lit(OpState::Running)))
            .bind(id).bind(worker).bind(if ok { OpState::Done } else { OpState::Failed }.as_str()).bind(error).bind(self.now())
            .execute(wp).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Record an error without closing (the next attempt retries).
    pub async fn op_note_error(&self, id: &OperationId, error: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("UPDATE operations SET last_error = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(error)
                .bind(self.now())
                .execute(wp)
                .await?;
            Ok(())
        })
    }

    /// Give up a claim so any controller may pick the operation up at once.
    pub async fn op_release(&self, id: &OperationId, worker: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(&format!("UPDATE operations SET claim_expires_at = NULL, claimed_by = NULL WHERE id = $1 AND claimed_by = $2 AND state = {op_running}", op_running = lit(OpState::Running)))
            .bind(id).bind(worker).execute(wp).await?;
            Ok(())
        })
    }

    /// One operation.
    pub async fn op_get(&self, id: &OperationId) -> Result<OperationRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {COLS} FROM operations WHERE id = $1"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Operation, id))
        })
    }

    /// Open operations of a server.
    pub async fn op_list_open_for_server(&self, server_id: &ServerId) -> Result<Vec<OperationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM operations WHERE server_id = $1 AND state IN ({op_open}) ORDER BY created_at",
                op_open = list(&OpState::OPEN)
            ))
            .bind(server_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// All open operations (audit, admin views).
    pub async fn op_list_open(&self) -> Result<Vec<OperationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM operations WHERE state IN ({op_open}) ORDER BY created_at",
                op_open = list(&OpState::OPEN)
            ))
            .fetch_all(rp)
            .await?)
        })
    }
}
