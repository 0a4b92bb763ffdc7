//! The group writer's jobs (see `group`) as synchronous SQLite code on the
//! writer connection's own handle: a group runs all its statements on its
//! thread, with no hand-off to sqlx's connection thread per statement (a
//! thread switch each way, what the profile of a burst of deletes was
//! mostly made of). The SQL is `hot_sql`'s, the same text the sqlx helpers
//! run on PostgreSQL, so both backends write the same rows.

use crate::hot_sql as q;
use crate::operations::{DeleteFinish, NewOperation, OpStart, OperationRow, StepRecord, op_exists};
use crate::{DbError, parse_ts};
use rusqlite::{Connection, ToSql};
use stratus_types::EventResult;

/// Run one statement; the number of rows it changed.
fn exec(c: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<usize, DbError> {
    let mut st = c.prepare_cached(sql)?;
    bind(&mut st, args)?;
    Ok(st.raw_execute()?)
}

/// The names `$1`, `$2`, ... spelled once: formatting the name at every
/// bind was one allocation per parameter, a tenth of a delete's.
const PARAM_NAMES: [&str; 12] = ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12"];

/// Bind `args[i]` to the parameter named `$i+1` (SQLite numbers named
/// parameters by first appearance, not by their digits).
pub(crate) fn bind(st: &mut rusqlite::Statement<'_>, args: &[&dyn ToSql]) -> Result<(), DbError> {
    for (i, a) in args.iter().enumerate() {
        let at = match PARAM_NAMES.get(i) {
            Some(name) => st.parameter_index(name)?,
            None => st.parameter_index(&format!("${}", i + 1))?,
        };
        if let Some(at) = at {
            st.raw_bind_parameter(at, a)?;
        }
    }
    Ok(())
}

/// Run a statement returning at most one operation row.
fn op_row(c: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Option<OperationRow>, DbError> {
    crate::direct_read::one(c, sql, args, op_from)
}

/// An operation row from the columns of `hot_sql::OP_COLS`, in its order.
fn op_from(r: &rusqlite::Row<'_>) -> Result<OperationRow, DbError> {
    use crate::direct_read::{opt_ts, parsed, text_ref};
    let text = |i: usize| -> Result<String, DbError> { Ok(r.get::<_, String>(i)?) };
    Ok(OperationRow {
        id: parsed(r, 0, "operation id")?,
        kind: parsed(r, 1, "operation kind")?,
        server_id: parsed(r, 2, "operation server")?,
        state: parsed(r, 3, "operation state")?,
        step: text(4)?,
        request_id: text(5)?,
        user_id: text(6)?,
        project_id: text(7)?,
        params: text(8)?,
        claimed_by: r.get(9)?,
        claim_expires_at: opt_ts(r, 10)?,
        attempts: r.get(11)?,
        last_error: r.get(12)?,
        created_at: parse_ts(text_ref(r, 13)?)?,
    })
}

/// The inputs of [`crate::Datastore::op_claim_many`]'s write.
pub(crate) struct ClaimMany {
    /// The operations' ids as a JSON array of strings (one statement text
    /// for any number of them, so its prepared form is cached).
    pub(crate) ids_json: String,
    /// The claiming worker.
    pub(crate) worker: String,
    /// When the claim lapses.
    pub(crate) expires: String,
    /// Now.
    pub(crate) now: String,
}

/// [`crate::Datastore::op_claim_many`]'s write: the rows claimed.
pub(crate) fn claim_many(m: &ClaimMany, c: &Connection) -> Result<Vec<OperationRow>, DbError> {
    let mut st = c.prepare_cached(&q::CLAIM_MANY)?;
    bind(&mut st, &[&m.worker, &m.expires, &m.now, &m.ids_json])?;
    let mut rows = st.raw_query();
    let mut claimed = Vec::new();
    while let Some(r) = rows.next()? {
        claimed.push(op_from(r)?);
    }
    Ok(claimed)
}

/// The inputs of [`crate::Datastore::notification_mark_published`]'s write.
pub(crate) struct Published {
    /// Now.
    pub(crate) now: String,
    /// The notifications' ids as a JSON array.
    pub(crate) ids_json: String,
}

/// [`crate::Datastore::notification_mark_published`]'s write.
pub(crate) fn mark_published(p: &Published, c: &Connection) -> Result<(), DbError> {
    exec(c, q::NOTIFICATIONS_PUBLISHED, &[&p.now, &p.ids_json]).map(|_| ())
}

/// [`crate::Datastore::server_begin_delete`]'s writes; `None` (nothing
/// written) when the server is gone.
pub(crate) fn begin_delete(c: &Connection, o: &NewOperation, now: &str) -> Result<Option<OpStart>, DbError> {
    let server = o.server_id.to_string();
    if exec(c, &q::MARK_DELETING, &[&server, &now])? == 0 {
        return Ok(None);
    }
    if let Some(open) = op_row(c, &q::OPEN_DELETE, &[&server])? {
        return Ok(Some(OpStart::Existing(open)));
    }
    exec(c, q::ACTION_CREATE, &[&server, &o.request_id, &"delete", &o.user_id, &o.project_id, &now])?;
    let id = o.id.to_string();
    let args: [&dyn ToSql; 8] =
        [&id, &o.kind.as_str(), &server, &o.request_id, &o.user_id, &o.project_id, &o.params, &now];
    match op_row(c, &q::OP_INSERT, &args) {
        Ok(Some(op)) => Ok(Some(OpStart::Created(op))),
        Ok(None) => Err(DbError::Corrupt("an operation insert returned no row".into())),
        Err(DbError::Direct(rusqlite::Error::SqliteFailure(e, _)))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(op_exists(o))
        }
        Err(e) => Err(e),
    }
}

/// Start an instance-action event.
fn event_start(
    c: &Connection,
    server: &str,
    request: &str,
    event: &str,
    host: Option<&str>,
    now: &str,
) -> Result<(), DbError> {
    exec(c, q::EVENT_START, &[&server, &request, &event, &now, &host])?;
    Ok(())
}

/// [`crate::Datastore::op_step_with`]'s writes; `false` (nothing written)
/// if the claim was lost.
pub(crate) fn step(r: &StepRecord, c: &Connection) -> Result<bool, DbError> {
    let id = r.op_id.to_string();
    if exec(c, &q::STEP, &[&id, &r.worker, &r.now, &r.completed, &r.token])? != 1 {
        return Ok(false);
    }
    if let Some((server, request, event, host)) = &r.writes.event_start {
        event_start(c, &server.to_string(), request, event, host.as_deref(), &r.now)?;
    }
    if let Some(n) = &r.writes.notification {
        notification(c, n, &r.now)?;
    }
    Ok(true)
}

/// Record a notification once.
fn notification(c: &Connection, n: &crate::NewNotification, now: &str) -> Result<(), DbError> {
    exec(c, q::NOTIFICATION_INSERT, &[&n.dedup_key, &n.event_type, &n.publisher_id, &n.payload, &now])?;
    Ok(())
}

/// [`crate::Datastore::server_delete_finish`]'s writes; `false` (nothing
/// written) if the claim was lost.
pub(crate) fn delete_finish(f: &DeleteFinish, c: &Connection) -> Result<bool, DbError> {
    let (id, server) = (f.op_id.to_string(), f.server_id.to_string());
    if exec(c, &q::FINISH_DELETE_OP, &[&id, &f.worker, &f.now, &f.token])? != 1 {
        return Ok(false);
    }
    for (event, ok, details) in &f.events {
        event_start(c, &server, &f.request_id, event, None, &f.now)?;
        let result = EventResult::of(*ok).as_str();
        exec(c, q::EVENT_FINISH, &[&server, &f.request_id, event, &f.now, &result, details])?;
        exec(c, &q::ACTION_AFTER_EVENT, &[&server, &f.request_id, &f.now, ok])?;
    }
    exec(c, q::DELETE_PORTS, &[&server])?;
    exec(c, &q::MARK_DELETED, &[&server, &f.now])?;
    notification(c, &f.notification, &f.now)?;
    Ok(true)
}
