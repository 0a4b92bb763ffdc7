//! Group commit for SQLite: every commit is on disk before the code that
//! made it (or a reader that saw it) goes on, with one `fdatasync` shared by
//! all the commits that arrived while the previous one ran.
//!
//! Why not `synchronous=FULL`: in WAL mode it syncs the log inside every
//! commit, on the one writer connection, so the writer idles for one disk
//! flush per transaction and a burst of deletes is bound by flushes, not by
//! work. Here the connection runs with `synchronous=NORMAL` (commits append
//! to the WAL with `write(2)` and do not flush; SQLite stays consistent after
//! a power cut and may only lose the last commits) and this module restores
//! FULL's guarantee outside the writer: when a database call returns, the
//! commits it made or observed are flushed first ([`WalSync::wait`]). A
//! flush of the WAL file covers every frame written to it before the flush
//! began, so one flush acknowledges a whole batch; the writer keeps
//! committing while it runs.
//!
//! Which commits a flush covers: a commit hook on the writer connection
//! counts commits. A flush first takes the writer connection from its pool
//! (so no commit is half-written), reads the count, gives the connection
//! back, then flushes: every commit counted is complete and in the file.
//!
//! A failed flush is fatal (the process aborts): after an `fsync` error the
//! kernel may have dropped the dirty pages, and a later flush that succeeds
//! would acknowledge data that is gone (PostgreSQL does the same, for the
//! same reason).

use crate::DbError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;
use tracing::{error, warn};

/// The commit counter and flush state of one SQLite database.
#[derive(Debug)]
pub(crate) struct WalSync {
    /// The WAL file (`<db>-wal`).
    wal: PathBuf,
    /// The directory holding it (flushed when the WAL file is new).
    dir: PathBuf,
    /// Commits made on the writer connection (the commit hook counts them).
    commits: Arc<AtomicU64>,
    /// Every commit up to this count is on disk.
    synced: AtomicU64,
    /// One flush at a time; holds the inode of the WAL file whose directory
    /// entry is known to be on disk.
    leader: Mutex<Option<u64>>,
    /// Flushes done (for the tests and the metrics).
    flushes: AtomicU64,
}

impl WalSync {
    /// The state for the database at `db`, with the counter the writer's
    /// commit hook increments.
    pub(crate) fn new(db: &Path, commits: Arc<AtomicU64>) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let start = commits.load(Ordering::SeqCst);
        Self {
            wal: wal.into(),
            dir,
            commits,
            synced: AtomicU64::new(start),
            leader: Mutex::new(None),
            flushes: AtomicU64::new(0),
        }
    }

    /// Commits counted so far and commits known to be on disk.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (self.commits.load(Ordering::SeqCst), self.synced.load(Ordering::SeqCst), self.flushes.load(Ordering::SeqCst))
    }

    /// Return once every commit made so far is on disk. Cheap when there is
    /// nothing to flush (one atomic load and a compare). An error (the log
    /// or its directory cannot be opened) means the commits are not known to
    /// be on disk: the caller must not acknowledge them.
    pub(crate) async fn wait(&self, writer: &sqlx::SqlitePool) -> Result<(), DbError> {
        let target = self.commits.load(Ordering::SeqCst);
        if self.synced.load(Ordering::SeqCst) >= target {
            return Ok(());
        }
        // One flush at a time; whoever gets the turn flushes unless a flush
        // that ran meanwhile already covered `target` (so a burst of
        // callers shares one flush per turn).
        let mut dir_synced = self.leader.lock().await;
        if self.synced.load(Ordering::SeqCst) < target {
            self.flush(writer, &mut dir_synced).await?;
        }
        Ok(())
    }

    /// Count one commit made on a connection without the commit hook (the
    /// group writer's own), while the writer is held; the count that covers it.
    pub(crate) fn count_commit(&self) -> u64 {
        self.commits.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Flush now, on the calling thread, unless every commit up to `covered`
    /// is on disk already. For the group writer's own thread, right after
    /// a commit it counted: its callers then find their commit flushed and
    /// skip [`WalSync::wait`]'s hand-offs (taking the writer from its pool,
    /// a blocking-pool thread), a few of which each cost more than the
    /// `fdatasync` itself on the one-at-a-time path. Blocking here is fine:
    /// nothing else runs on that thread. An error is only logged: the
    /// callers' own [`WalSync::wait`] finds the commit unflushed and
    /// reports (or aborts) as usual.
    pub(crate) async fn flush_here(&self, covered: u64) {
        let mut dir_synced = self.leader.lock().await;
        if self.synced.load(Ordering::SeqCst) >= covered {
            return;
        }
        let done = sync_wal(&self.wal, &self.dir, *dir_synced);
        if let Err(e) = self.settle(done, covered, &mut dir_synced) {
            warn!(error = %e, "the flush after a group commit did not happen; its callers flush");
        }
    }

    /// Record a flush's result: on success the commits up to `covered` are
    /// on disk; a log that could not be opened fails the caller; a failed
    /// `fsync` aborts the process (see the module's doc).
    fn settle(
        &self,
        done: Result<Option<u64>, SyncError>,
        covered: u64,
        dir_synced: &mut Option<u64>,
    ) -> Result<(), DbError> {
        match done {
            Ok(inode) => {
                *dir_synced = inode.or(*dir_synced);
                self.flushes.fetch_add(1, Ordering::SeqCst);
                self.synced.fetch_max(covered, Ordering::SeqCst);
                Ok(())
            }
            Err(SyncError::Open(e)) => {
                error!(wal = %self.wal.display(), error = %e, "cannot open the database log to flush it; the call fails");
                Err(DbError::NotFlushed(e.to_string()))
            }
            Err(SyncError::Flush(e)) => {
                error!(wal = %self.wal.display(), error = %e, "cannot flush the database log to disk; stopping (an unflushed commit must not be acknowledged)");
                std::process::abort();
            }
        }
    }

    /// One flush: read the count with the writer quiescent, then sync the WAL.
    async fn flush(&self, writer: &sqlx::SqlitePool, dir_synced: &mut Option<u64>) -> Result<(), DbError> {
        let covered = loop {
            match writer.acquire().await {
                Ok(conn) => {
                    let n = self.commits.load(Ordering::SeqCst);
                    drop(conn);
                    break n;
                }
                // A closed pool (shutdown): nothing more can be committed;
                // flush what is there.
                Err(_) if writer.is_closed() => break self.commits.load(Ordering::SeqCst),
                // The writer is held longer than the pool's acquire timeout:
                // a commit may be half-written, so the count cannot be
                // trusted yet; wait for the connection again.
                Err(e) => warn!(error = %e, "waiting for the database writer before a flush"),
            }
        };
        let (wal, dir, known) = (self.wal.clone(), self.dir.clone(), *dir_synced);
        match tokio::task::spawn_blocking(move || sync_wal(&wal, &dir, known)).await {
            Ok(done) => self.settle(done, covered, dir_synced),
            // The runtime is shutting down (or the task panicked): whether the
            // flush ran is unknown, so nothing is acknowledged.
            Err(e) => Err(DbError::NotFlushed(format!("the flush did not complete: {e}"))),
        }
    }
}

/// Why a flush did not happen.
enum SyncError {
    /// The log or its directory could not be opened (removed, permissions):
    /// nothing was flushed, and nothing is lost by saying so.
    Open(std::io::Error),
    /// `fsync` itself failed: the kernel may have dropped the data.
    Flush(std::io::Error),
}

/// `fdatasync` the WAL file, and its directory when the file is new (its
/// inode differs from `known`). A missing WAL file means everything is in
/// the database file already (a checkpoint flushed it before removing the
/// log). Returns the WAL's inode.
fn sync_wal(wal: &Path, dir: &Path, known: Option<u64>) -> Result<Option<u64>, SyncError> {
    use std::os::unix::fs::MetadataExt;
    let f = match std::fs::File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SyncError::Open(e)),
    };
    f.sync_data().map_err(SyncError::Flush)?;
    let inode = f.metadata().map_err(SyncError::Open)?.ino();
    if known != Some(inode) {
        std::fs::File::open(dir).map_err(SyncError::Open)?.sync_all().map_err(SyncError::Flush)?;
    }
    Ok(Some(inode))
}

#[cfg(test)]
mod tests {
    use crate::Datastore;

    async fn sqlite() -> (Datastore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("stratus-durability-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ds = Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        (ds, dir)
    }

    async fn write(ds: &Datastore, i: usize) {
        crate::with_db!(ds, |wp, rp| {
            sqlx::query("INSERT INTO roles (id, name) VALUES ($1, $2)")
                .bind(format!("r{i}"))
                .bind(format!("role-{i}"))
                .execute(wp)
                .await?;
            Ok(())
        })
        .expect("write");
    }

    /// The guarantee of `synchronous=FULL`: when a write returns, its commit
    /// (and every earlier one) has been flushed.
    #[tokio::test]
    async fn a_write_returns_only_after_its_commit_is_flushed() {
        let (ds, dir) = sqlite().await;
        for i in 0..20 {
            write(&ds, i).await;
            let (commits, synced, _) = ds.durability_counts().expect("sqlite");
            assert!(commits > 0);
            assert_eq!(synced, commits, "write {i} returned before its commit was flushed");
        }
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Group commit: concurrent writers share flushes (fewer flushes than
    /// commits), and every one of them is flushed when all have returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_flushes() {
        let (ds, dir) = sqlite().await;
        let (c0, _, f0) = ds.durability_counts().expect("sqlite");
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let ds = ds.clone();
                tokio::spawn(async move { write(&ds, i).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let (commits, synced, flushes) = ds.durability_counts().expect("sqlite");
        assert_eq!(synced, commits);
        assert!(commits - c0 >= 200, "{} commits", commits - c0);
        assert!(flushes - f0 < 200, "{} flushes for {} commits: no sharing", flushes - f0, commits - c0);
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A read that may have seen an unflushed commit waits for the flush too
    /// (a reader must not report what a power cut could undo).
    #[tokio::test]
    async fn a_read_waits_for_the_commits_it_may_have_seen() {
        let (ds, dir) = sqlite().await;
        // A commit made behind the datastore's back (no call waited for it).
        let crate::backend::Pools::Sqlite { write, .. } = &ds.pools else { panic!("sqlite") };
        sqlx::query("INSERT INTO roles (id, name) VALUES ('r1', 'role-1')").execute(write).await.expect("insert");
        let (c, s, f) = ds.durability_counts().expect("sqlite");
        assert!(c > s, "the raw commit is not flushed yet ({c} commits, {s} flushed)");
        let n: i64 = crate::with_db!(ds, |wp, rp| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM roles WHERE id = 'r1'").fetch_one(rp).await?)
        })
        .expect("read");
        assert_eq!(n, 1);
        let (c2, s2, f2) = ds.durability_counts().expect("sqlite");
        assert_eq!((c2, s2), (c, c), "the read returned before the commit it saw was flushed");
        assert_eq!(f2, f + 1);
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A log that cannot be opened for the flush fails the calls waiting for
    /// it (nothing is acknowledged) without stopping the process; the next
    /// call, once the log is back, flushes and succeeds.
    #[tokio::test]
    async fn an_unopenable_log_fails_the_call_instead_of_acknowledging_it() {
        let (ds, dir) = sqlite().await;
        write(&ds, 1).await;
        let wal = dir.join("t.db-wal");
        let aside = dir.join("aside");
        std::fs::rename(&wal, &aside).expect("move the log aside");
        std::os::unix::fs::symlink("t.db-wal", &wal).expect("a symlink loop in its place");
        let crate::backend::Pools::Sqlite { write, .. } = &ds.pools else { panic!("sqlite") };
        sqlx::query("INSERT INTO roles (id, name) VALUES ('r2', 'role-2')").execute(write).await.expect("insert");
        let r = crate::with_db!(ds, |wp, rp| {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM roles").fetch_one(rp).await?)
        });
        assert!(matches!(r, Err(crate::DbError::NotFlushed(_))), "{r:?}");
        std::fs::remove_file(&wal).expect("remove the loop");
        std::fs::rename(&aside, &wal).expect("the log back");
        let (c, s, _) = ds.durability_counts().expect("sqlite");
        assert!(s < c);
        ds.durable().await.expect("flushed once the log is back");
        let (c, s, _) = ds.durability_counts().expect("sqlite");
        assert_eq!(s, c);
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
