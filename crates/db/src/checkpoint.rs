//! Checkpoints of the SQLite log, off the writers' path.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` of whichever
//! connection pushed the log past 1,000 pages: it copies the log into the
//! database file and flushes both before that `COMMIT` returns. On the group
//! writer this meant that every few groups one group's commit also carried a
//! checkpoint, and every job of that group, and every request queued behind
//! it, waited for the copy and two flushes (a profile of a 5,000-server
//! burst put 21% of the writer thread's time in those checkpoints).
//!
//! Here a thread of its own runs a `PASSIVE` checkpoint (it never waits for
//! or blocks a writer or a reader) every [`CHECK_EVERY`]; one that finds the
//! log already copied does nothing (no write, no flush). The writers keep SQLite's automatic
//! checkpoint only as a safety net at [`SAFETY_NET_PAGES`], which a log
//! reaches only if this thread falls that far behind.

use crate::DbError;
use crate::durability::WalSync;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;
use tracing::{debug, error, warn};

/// How often the checkpointer copies what was committed since its last
/// look. A burst writes a few thousand log pages a second, so a look copies
/// about as much as SQLite's own 1,000-page trigger did.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(200);

/// The writers' automatic checkpoint threshold (pages of the log): only
/// reached if the checkpointer cannot keep up (about 40 MiB of log).
pub(crate) const SAFETY_NET_PAGES: i64 = 10_000;

/// Start the checkpointer of the database at `path`, looking every `every`
/// ([`CHECK_EVERY`] but in tests). It ends once `sync` (held by the
/// datastore's handles) is dropped.
pub(crate) fn start(path: &Path, sync: Weak<WalSync>, every: Duration) -> Result<(), DbError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A checkpoint flushes the log before copying it and the database file
    // after (NORMAL and FULL both do): the log may be reused only once what
    // it held is on disk in the database file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    std::thread::Builder::new()
        .name("db-checkpointer".into())
        .spawn(move || run(&conn, &sync, every))
        .map_err(|e| DbError::Writer(format!("checkpointer thread: {e}")))?;
    Ok(())
}

/// Checkpoint every `every` while the datastore is open. Every look runs
/// the checkpoint rather than first asking whether commits were counted
/// since the last: the commit counter moves when a commit begins, so a look
/// between that and the commit's end would copy nothing yet and, trusting
/// the counter, never come back for it.
fn run(conn: &Connection, sync: &Weak<WalSync>, every: Duration) {
    let mut last = (0, 0);
    loop {
        std::thread::sleep(every);
        if sync.strong_count() == 0 {
            return;
        }
        match passive(conn) {
            Ok(now) => {
                if now != last {
                    debug!(log = now.0, copied = now.1, "checkpoint");
                }
                last = now;
            }
            // As for the log's own flush (`durability`): after a failed
            // `fsync` the kernel may have dropped the copied pages, and a
            // later checkpoint that succeeds would let the log be reused
            // over data that is not in the database file.
            Err(e) if is_failed_flush(&e) => {
                error!(error = %e, "cannot flush the database file after a checkpoint; stopping");
                std::process::abort();
            }
            // Nothing was marked copied: the log keeps it, the next look retries.
            Err(e) => warn!(error = %e, "checkpoint failed; the next look retries"),
        }
    }
}

/// Did a flush (`fsync` of a file or its directory) fail?
fn is_failed_flush(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_IOERR_DIR_FSYNC, SQLITE_IOERR_FSYNC};
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == SQLITE_IOERR_FSYNC || f.extended_code == SQLITE_IOERR_DIR_FSYNC)
}

/// One `PASSIVE` checkpoint: (pages in the log, pages copied).
fn passive(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))
}

#[cfg(test)]
mod tests {
    use crate::Datastore;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A datastore in a temp dir whose checkpointer looks every `every`.
    async fn open(every: Duration) -> (Datastore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("stratus-checkpoint-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let clock = Arc::new(stratus_types::SystemClock);
        let ds = Datastore::open_sqlite_checkpointing(&dir.join("t.db"), clock, every).await.expect("open");
        (ds, dir)
    }

    /// One commit of ~1,300 log pages (5 MB), past SQLite's default
    /// automatic checkpoint (1,000 pages).
    async fn big_commit(ds: &Datastore) {
        crate::with_db!(ds, |wp, rp| {
            sqlx::query("INSERT INTO roles (id, name) VALUES ('big', zeroblob(5000000))").execute(wp).await?;
            Ok(())
        })
        .expect("write");
    }

    fn db_bytes(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("t.db")).expect("db file").len()
    }

    /// A commit that takes the log past 1,000 pages returns without copying
    /// the log into the database file: that copy (and its two flushes) is
    /// not paid inside a writer's commit, where every job of a group and
    /// every request queued behind it would wait for it.
    #[tokio::test]
    async fn a_commit_never_waits_for_a_checkpoint() {
        let (ds, dir) = open(Duration::from_secs(3600)).await;
        let before = db_bytes(&dir);
        big_commit(&ds).await;
        assert!(db_bytes(&dir) < before + 1_000_000, "the commit checkpointed: {} -> {} bytes", before, db_bytes(&dir));
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A failed `fsync` is told apart from the errors a later look may
    /// retry (a full disk, a busy file): only the former stops the process.
    #[test]
    fn only_a_failed_flush_is_fatal() {
        use rusqlite::ffi;
        let err = |code| rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
        assert!(super::is_failed_flush(&err(ffi::SQLITE_IOERR_FSYNC)));
        assert!(super::is_failed_flush(&err(ffi::SQLITE_IOERR_DIR_FSYNC)));
        assert!(!super::is_failed_flush(&err(ffi::SQLITE_FULL)));
        assert!(!super::is_failed_flush(&err(ffi::SQLITE_IOERR_WRITE)));
        assert!(!super::is_failed_flush(&err(ffi::SQLITE_BUSY)));
    }

    /// The checkpointer copies committed pages into the database file on
    /// its own, without any further commit.
    #[tokio::test]
    async fn the_checkpointer_copies_the_log_without_a_commit() {
        let (ds, dir) = open(Duration::from_millis(10)).await;
        big_commit(&ds).await;
        let until = Instant::now() + Duration::from_secs(30);
        while db_bytes(&dir) < 5_000_000 {
            assert!(Instant::now() < until, "not checkpointed: the database file holds {} bytes", db_bytes(&dir));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
