//! The SQL of the delete path's hot writes, written once: the sqlx helpers
//! (both backends) and the group writer's direct SQLite code
//! (`direct`) run the same text. `$N` parameters; SQLite reads `$1` as a
//! named parameter, so the direct code binds each by its name.

use crate::sql::{list, lit};
use std::sync::LazyLock;
use stratus_types::plan::DeleteStep;
use stratus_types::{EventResult, INITIAL_STEP, OpKind, OpState, PowerState, TaskState, VmState};

/// An operation row's columns, in [`crate::OperationRow`]'s order.
pub(crate) const OP_COLS: &str = "id, kind, server_id, state, step, request_id, user_id, project_id, params, claimed_by, claim_expires_at, attempts, last_error, created_at";

/// Claim the open operations among the ids of the JSON array $4 that
/// nobody holds, or that $1 holds, until $2 ($3 now); SQLite only (the
/// group writer's form of `Datastore::op_claim_many`).
pub(crate) static CLAIM_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE operations SET state = {op_running}, claimed_by = $1, claim_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE state IN ({op_open}) AND (claim_expires_at IS NULL OR claim_expires_at < $3 OR claimed_by = $1) \
         AND id IN (SELECT value FROM json_each($4)) RETURNING {OP_COLS}",
        op_running = lit(OpState::Running),
        op_open = list(&OpState::OPEN)
    )
});

/// Mark a live server `deleting` ($1 server, $2 now).
pub(crate) static MARK_DELETING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE servers SET task_state = {deleting}, progress = 0, generation = generation + 1, updated_at = $2 WHERE id = $1 AND deleted = FALSE",
        deleting = lit(TaskState::Deleting)
    )
});

/// The open delete operation of a server ($1 server).
pub(crate) static OPEN_DELETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {OP_COLS} FROM operations WHERE server_id = $1 AND kind = {delete} AND state IN ({op_open})",
        delete = lit(OpKind::Delete),
        op_open = list(&OpState::OPEN)
    )
});

/// Record an instance action ($1 server, $2 request, $3 action, $4 user,
/// $5 project, $6 now); a repeat of the same request is no change.
pub(crate) const ACTION_CREATE: &str = "INSERT INTO instance_actions (server_id, request_id, action, user_id, project_id, start_time, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$6) ON CONFLICT (server_id, request_id) DO NOTHING";

/// Insert an operation ($1 id, $2 kind, $3 server, $4 request, $5 user,
/// $6 project, $7 params, $8 now), returning its row.
pub(crate) static OP_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO operations (id, kind, server_id, state, step, request_id, user_id, project_id, params, attempts, created_at, updated_at) VALUES ($1,$2,$3,{op_pending},{initial_step},$4,$5,$6,$7,0,$8,$8) RETURNING {OP_COLS}",
        op_pending = lit(OpState::Pending),
        initial_step = lit(INITIAL_STEP)
    )
});

/// Start an event of an instance action ($1 server, $2 request, $3 event,
/// $4 now, $5 host); a started event is no change.
pub(crate) const EVENT_START: &str = "INSERT INTO instance_action_events (action_id, event, start_time, host)
                 SELECT id, $3, $4, $5 FROM instance_actions WHERE server_id = $1 AND request_id = $2
                 ON CONFLICT (action_id, event) DO NOTHING";

/// Finish an event ($1 server, $2 request, $3 event, $4 now, $5 result,
/// $6 details).
pub(crate) const EVENT_FINISH: &str = "UPDATE instance_action_events SET finish_time = $4, result = $5, details = $6
                 WHERE event = $3 AND action_id = (SELECT id FROM instance_actions WHERE server_id = $1 AND request_id = $2)";

/// Touch the action of a finished event, marking it failed when the event
/// did ($1 server, $2 request, $3 now, $4 the event succeeded).
pub(crate) static ACTION_AFTER_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE instance_actions SET updated_at = $3, message = CASE WHEN $4 THEN message ELSE {error} END WHERE server_id = $1 AND request_id = $2",
        error = lit(EventResult::Error)
    )
});

/// Mark notifications published ($1 now, $2 their ids as a JSON array: one
/// statement text for any number of them).
pub(crate) const NOTIFICATIONS_PUBLISHED: &str =
    "UPDATE notifications SET published_at = $1 WHERE id IN (SELECT value FROM json_each($2))";

/// Record a notification once ($1 dedup key, $2 event type, $3 publisher,
/// $4 payload, $5 now).
pub(crate) const NOTIFICATION_INSERT: &str = "INSERT INTO notifications (dedup_key, event_type, publisher_id, payload, created_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (dedup_key) DO NOTHING";

/// Record a step of a running operation under its claim ($1 id, $2
/// worker, $3 now, $4 the completed step or NULL, $5 claim token or NULL).
pub(crate) static STEP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE operations SET updated_at = $3, step = COALESCE($4, step) WHERE id = $1 AND claimed_by = $2 AND state = {op_running} AND attempts = COALESCE($5, attempts)",
        op_running = lit(OpState::Running)
    )
});

/// Close a delete operation under its claim ($1 id, $2 worker, $3 now,
/// $4 claim token or NULL).
pub(crate) static FINISH_DELETE_OP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE operations SET state = {op_done}, step = {release}, claim_expires_at = NULL, updated_at = $3 WHERE id = $1 AND claimed_by = $2 AND state = {op_running} AND attempts = COALESCE($4, attempts)",
        op_done = lit(OpState::Done),
        release = lit(DeleteStep::Release.as_str()),
        op_running = lit(OpState::Running)
    )
});

/// Release a server's ports ($1 server).
pub(crate) const DELETE_PORTS: &str = "DELETE FROM ports WHERE server_id = $1";

/// Mark a server deleted ($1 server, $2 now); its quota usage drops with it.
pub(crate) static MARK_DELETED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE servers SET vm_state = {vm_deleted}, task_state = NULL, power_state = {no_state}, deleted = TRUE, deleted_at = $2, terminated_at = COALESCE(terminated_at, $2), updated_at = $2, generation = generation + 1 WHERE id = $1 AND deleted = FALSE",
        vm_deleted = lit(VmState::Deleted),
        no_state = PowerState::NoState.code()
    )
});
