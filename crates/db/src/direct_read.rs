//! The delete path's hot reads on SQLite, run on the calling thread on a
//! read-only rusqlite connection instead of sqlx's reader pool.
//!
//! Why: a sqlx SQLite read hands its statement to the connection's own
//! thread and the row back, a thread wake-up each way, plus sqlx's row
//! decoding; a delete reads its server twice (the API's visibility check,
//! the operation's view) and its host's service once. A point read by
//! primary key from SQLite's page cache takes tens of microseconds, less
//! than the two wake-ups it replaces, so running it inline on the tokio
//! worker costs the runtime less than handing it off. A WAL reader never
//! waits for the writer, so the inline read does not block on writes; the
//! busy timeout only covers a log being recovered.
//!
//! Each read returns, like every datastore call, only after what it saw is
//! flushed (the caller waits on `durability`).

use crate::servers::ServerRow;
use crate::services::ServiceRow;
use crate::{DbError, parse_ts};
use rusqlite::{Connection, OpenFlags, Row, ToSql};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept open between reads (as many as threads may read at
/// once: the tokio workers; a burst beyond opens one more for a while).
const KEEP_IDLE: usize = 4;

/// Read-only connections to one SQLite database, handed to a read and back.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path` (connections open on first use).
    pub(crate) fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    /// Run `read` on an idle connection (or a new one) on this thread.
    pub(crate) fn run<T>(&self, read: impl FnOnce(&Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let out = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
        out
    }

    fn open(&self) -> Result<Connection, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let c = Connection::open_with_flags(&self.path, flags)?;
        c.busy_timeout(Duration::from_secs(1))?;
        c.set_prepared_statement_cache_capacity(8);
        Ok(c)
    }
}

/// Run a statement and map its first row, if any.
pub(crate) fn one<T>(
    c: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    let mut st = c.prepare_cached(sql)?;
    crate::direct::bind(&mut st, args)?;
    let mut rows = st.raw_query();
    match rows.next()? {
        Some(r) => map(r).map(Some),
        None => Ok(None),
    }
}

/// Column `i` as text, borrowed from the row: the typed columns (ids,
/// states, times) are parsed from it without an owned copy each.
pub(crate) fn text_ref<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r str, DbError> {
    r.get_ref(i)?.as_str().map_err(|e| DbError::Corrupt(format!("column {i}: {e}")))
}

/// As [`text_ref`], for a nullable column.
fn opt_text_ref<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, DbError> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| DbError::Corrupt(format!("column {i}: {e}")))
}

/// Column `i` parsed from its text (ids and states are stored as text).
pub(crate) fn parsed<T: FromStr>(r: &Row<'_>, i: usize, what: &str) -> Result<T, DbError> {
    let s = text_ref(r, i)?;
    s.parse().map_err(|_| DbError::Corrupt(format!("{what} {s:?}")))
}

/// As [`parsed`], for a nullable column.
fn opt_parsed<T: FromStr>(r: &Row<'_>, i: usize, what: &str) -> Result<Option<T>, DbError> {
    opt_text_ref(r, i)?.map(|s| s.parse().map_err(|_| DbError::Corrupt(format!("{what} {s:?}")))).transpose()
}

/// A nullable timestamp column.
pub(crate) fn opt_ts(r: &Row<'_>, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbError> {
    opt_text_ref(r, i)?.map(parse_ts).transpose()
}

/// A server from the columns `crate::servers::SERVER_COLS` names, in its order.
pub(crate) fn server_row(r: &Row<'_>) -> Result<ServerRow, DbError> {
    let power: i64 = r.get(14)?;
    Ok(ServerRow {
        id: parsed(r, 0, "server id")?,
        name: r.get(1)?,
        project_id: r.get(2)?,
        user_id: r.get(3)?,
        image_id: opt_parsed(r, 4, "image id")?,
        flavor_id: r.get(5)?,
        flavor_name: r.get(6)?,
        vcpus: r.get(7)?,
        ram_mb: r.get(8)?,
        disk_gb: r.get(9)?,
        ephemeral_gb: r.get(10)?,
        swap_mb: r.get(11)?,
        vm_state: parsed(r, 12, "vm state")?,
        task_state: opt_parsed(r, 13, "task state")?,
        power_state: power.try_into().map_err(|_| DbError::Corrupt(format!("power state {power}")))?,
        host: r.get(15)?,
        metadata: r.get(16)?,
        key_name: r.get(17)?,
        locked: r.get(18)?,
        locked_by: opt_parsed(r, 19, "locked by")?,
        locked_reason: r.get(20)?,
        availability_zone: r.get(21)?,
        reservation_id: r.get(22)?,
        hostname: r.get(23)?,
        fault: r.get(24)?,
        progress: r.get(25)?,
        generation: r.get(26)?,
        launched_at: opt_ts(r, 27)?,
        terminated_at: opt_ts(r, 28)?,
        created_at: parse_ts(text_ref(r, 29)?)?,
        updated_at: parse_ts(text_ref(r, 30)?)?,
        deleted_at: opt_ts(r, 31)?,
        deleted: r.get(32)?,
        shelved_image_id: opt_parsed(r, 33, "shelved image id")?,
        description: r.get(34)?,
        user_data: r.get(35)?,
        scheduler_hints: r.get(36)?,
        access_ip_v4: r.get(37)?,
        access_ip_v6: r.get(38)?,
    })
}

/// A service from the columns `crate::services::COLS` names, in its order.
pub(crate) fn service_row(r: &Row<'_>) -> Result<ServiceRow, DbError> {
    Ok(ServiceRow {
        id: r.get(0)?,
        uuid: r.get(1)?,
        host: r.get(2)?,
        binary: r.get(3)?,
        zone: r.get(4)?,
        disabled: r.get(5)?,
        disabled_reason: r.get(6)?,
        forced_down: r.get(7)?,
        state: parsed(r, 8, "service state")?,
        epoch: r.get(9)?,
        lease_expires_at: opt_ts(r, 10)?,
        vcpus: r.get(11)?,
        memory_mb: r.get(12)?,
        disk_gb: r.get(13)?,
        created_at: parse_ts(text_ref(r, 14)?)?,
        updated_at: parse_ts(text_ref(r, 15)?)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::testutil::store;
    use crate::{Datastore, HostCapacity};
    use stratus_types::ServerId;

    /// Insert a server row as SQL text, every column given.
    async fn insert(ds: &Datastore, id: &ServerId, values: &str) {
        let sql = format!("INSERT INTO servers ({}) VALUES ($1, {values})", crate::servers::SERVER_COLS);
        crate::with_db!(ds, |wp, rp| { dbk::exec(wp, sqlx::query(&sql).bind(id)).await.map(|_| ()) }).expect("insert");
    }

    /// The inline reader decodes every column as sqlx's `FromRow` does: a
    /// row with every nullable column set, and one with every one null.
    #[tokio::test]
    async fn inline_reads_decode_rows_as_the_sqlx_reads_do() {
        let (ds, _d) = store().await;
        let full = ServerId::new();
        let image = uuid::Uuid::new_v4();
        insert(
            &ds,
            &full,
            &format!(
                "'name', 'proj', 'user', '{image}', '7', 'm1.small', 2, 2048, 20, 5, 512, 'resized', 'deleting', 4, \
                 'host-a', '{{\"k\":\"v\"}}', 'key', TRUE, 'admin', 'why', 'az1', 'r-1', 'hostname', 'fault text', 42, 9, \
                 '2026-11-28T23:41:22.000001Z', '2026-11-28T23:41:23.000002Z', '2026-11-28T23:41:24.000003Z', \
                 '2026-11-28T23:41:25.000004Z', '2026-11-28T23:41:26.000005Z', FALSE, '{image}', 'desc', 'dXNlcg==', \
                 '{{}}', '10.0.0.1', '::1'"
            ),
        )
        .await;
        let bare = ServerId::new();
        insert(
            &ds,
            &bare,
            "'n', 'p', 'u', NULL, '1', 'm1', 1, 512, 1, 0, 0, 'building', NULL, 0, NULL, '{}', NULL, FALSE, NULL, \
             NULL, NULL, 'r', 'h', NULL, 0, 0, NULL, NULL, '2026-11-28T23:41:22.000000Z', \
             '2026-11-28T23:41:22.000000Z', NULL, FALSE, NULL, NULL, NULL, NULL, NULL, NULL",
        )
        .await;
        for id in [full, bare] {
            let by_sqlx = format!("{:?}", ds.server_get_any(&id).await.expect("sqlx read"));
            assert_eq!(format!("{:?}", ds.server_get(&id).await.expect("inline read")), by_sqlx);
            let (row, moving, attached) = ds.server_delete_view(&id).await.expect("delete view");
            assert_eq!(format!("{row:?}"), by_sqlx);
            assert!(!moving && !attached);
        }
        // A missing server is the same not-found as before.
        assert!(matches!(ds.server_get(&ServerId::new()).await, Err(crate::DbError::NotFound { .. })));
        assert!(matches!(ds.server_delete_view(&ServerId::new()).await, Err(crate::DbError::NotFound { .. })));

        let cap = HostCapacity { vcpus: 8, memory_mb: 4096, disk_gb: 100 };
        ds.service_join("host-a", cap, chrono::Duration::seconds(10)).await.expect("join");
        let listed = ds.service_list().await.expect("list");
        let by_sqlx = listed.iter().find(|s| s.host == "host-a").expect("listed");
        let inline = ds.service_get_by_host("host-a").await.expect("inline read");
        assert_eq!(format!("{inline:?}"), format!("{by_sqlx:?}"));
        assert!(matches!(ds.service_get_by_host("host-b").await, Err(crate::DbError::NotFound { .. })));
    }
}
