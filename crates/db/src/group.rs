//! Group transactions on SQLite: the hot writes of the delete path (a
//! delete's start, a delete's last step) from many callers run together in
//! one transaction, driven by a thread of their own.
//!
//! Why: SQLite has one writer connection, and a transaction holds it across
//! one hand-off per statement to sqlx's connection thread. Driven from a
//! request's own task, each hand-off waits for a tokio worker, behind every
//! other request in flight, while the writer idles; a burst of deletes was
//! bound by that waiting, not by work (1.1 of 2 cores busy). Here one task
//! on a dedicated thread (its own single-threaded runtime, so nothing else
//! queues in front of it) takes every job waiting, runs them one after the
//! other in one transaction and commits once: one `BEGIN`/`COMMIT` and one
//! append of the touched pages to the log for the whole group.
//!
//! Each job is its own unit of work inside the group: it reads what the
//! jobs before it wrote, and it may decide to write nothing (a delete of a
//! server that is gone). A database error in any job rolls the group back;
//! every job of that group then runs again alone, in its own transaction,
//! so that one failing job never fails the others. Jobs are therefore
//! written to be run more than once (they keep their inputs, not moves).
//!
//! The group's statements run as synchronous code (`direct`) on a SQLite
//! connection of the group writer's own, not through sqlx: each statement
//! handed to sqlx's connection thread costs a thread switch each way, and
//! those switches were most of a burst's CPU. The two writer connections
//! never contend: the group writer holds sqlx's one writer connection
//! (taken from its pool, unused) while it writes, so writes stay one at a
//! time, in order, exactly as with one connection.
//!
//! Durability is unchanged: a committed group counts as a commit for
//! `durability` before sqlx's writer connection is given back, and the
//! caller waits for the flush after its job's reply, as every datastore
//! call does. The group writer flushes the log itself right after each
//! commit, before answering (`WalSync::flush_here`), so that wait usually
//! finds nothing left to do; jobs arriving meanwhile queue for the next group.

use crate::DbError;
use crate::durability::WalSync;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// The most jobs in one transaction: bounds how long the first caller of
/// a group waits for the others' statements.
const MAX_GROUP: usize = 64;

/// The work of one job on its inputs, inside the group's transaction.
pub(crate) type JobFn<S, T> = fn(&S, &Connection) -> Result<T, DbError>;

/// One caller's unit of work, typed away so that one queue carries all kinds.
trait Job: Send {
    /// Run inside the group's transaction (again alone after a rollback);
    /// an error is a database error: the transaction is not committed.
    fn run(&mut self, conn: &Connection) -> Result<(), DbError>;

    /// Tell the caller: the job's own outcome once committed, or the error.
    fn reply(self: Box<Self>, outcome: Result<(), DbError>);
}

/// A job with inputs `S` and outcome `T`.
struct Typed<S, T> {
    inputs: S,
    work: JobFn<S, T>,
    outcome: Option<T>,
    caller: oneshot::Sender<Result<T, DbError>>,
}

impl<S: Send + Sync, T: Send> Job for Typed<S, T> {
    fn run(&mut self, conn: &Connection) -> Result<(), DbError> {
        self.outcome = Some((self.work)(&self.inputs, conn)?);
        Ok(())
    }

    fn reply(self: Box<Self>, outcome: Result<(), DbError>) {
        let answer = match (outcome, self.outcome) {
            (Ok(()), Some(out)) => Ok(out),
            (Ok(()), None) => Err(DbError::Writer("a grouped write committed without its outcome".into())),
            (Err(e), _) => Err(e),
        };
        // A caller that gave up (its request was dropped) needs no answer.
        let _ = self.caller.send(answer);
    }
}

/// The queue of the group writer (one per SQLite database).
#[derive(Debug)]
pub(crate) struct Group {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Group {
    /// Start the group writer's thread for the database at `path`, whose
    /// sqlx writer pool is `write` and whose commits `commits` counts. The
    /// thread ends when the last handle on the queue is dropped.
    pub(crate) fn start(path: &Path, write: sqlx::SqlitePool, sync: Arc<WalSync>) -> Result<Self, DbError> {
        let own = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // As sqlx's writer: the log flushed by `durability`, not per commit;
        // foreign keys enforced; a lock held by another process waited for.
        own.pragma_update(None, "synchronous", "NORMAL")?;
        own.pragma_update(None, "foreign_keys", "ON")?;
        own.busy_timeout(Duration::from_secs(10))?;
        own.set_prepared_statement_cache_capacity(32);
        let writer = Writer { own, write, sync };
        let (queue, jobs) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Writer(format!("group writer runtime: {e}")))?;
        std::thread::Builder::new()
            .name("db-group-writer".into())
            .spawn(move || rt.block_on(drive(writer, jobs)))
            .map_err(|e| DbError::Writer(format!("group writer thread: {e}")))?;
        Ok(Self { queue })
    }

    /// Run `work` on `inputs` in the next group transaction and return its
    /// outcome once that transaction is committed (not yet flushed: the
    /// caller waits for the flush).
    pub(crate) async fn run<S, T>(&self, inputs: S, work: JobFn<S, T>) -> Result<T, DbError>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (caller, answer) = oneshot::channel();
        let job = Box::new(Typed { inputs, work, outcome: None, caller });
        self.queue.send(job).map_err(|_| DbError::Writer("the group writer has stopped".into()))?;
        answer.await.map_err(|_| DbError::Writer("the group writer dropped a job".into()))?
    }
}

/// The group writer's connections.
struct Writer {
    /// Its own connection, which the jobs write on.
    own: Connection,
    /// sqlx's writer pool: its one connection is held while `own` writes.
    write: sqlx::SqlitePool,
    /// Counts its commits and flushes them (`durability`).
    sync: Arc<WalSync>,
}

/// The group writer: take every job waiting, run them in one transaction,
/// commit, answer; on a database error run each alone.
async fn drive(write: Writer, mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = jobs.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        match together(&write, &mut group).await {
            Ok(covered) => {
                // Flushed before the answers: the callers' wait finds it done.
                write.sync.flush_here(covered).await;
                group.drain(..).for_each(|j| j.reply(Ok(())))
            }
            Err(e) if group.len() == 1 => {
                if let Some(j) = group.pop() {
                    j.reply(Err(e));
                }
            }
            Err(e) => {
                warn!(error = %e, jobs = group.len(), "a grouped write failed: running each of its group alone");
                for mut j in group.drain(..) {
                    let alone = together(&write, std::slice::from_mut(&mut j)).await;
                    if let Ok(covered) = alone {
                        write.sync.flush_here(covered).await;
                    }
                    j.reply(alone.map(|_| ()));
                }
            }
        }
    }
}

/// Run `group` in one transaction; nothing is committed on an error. The
/// commit count that covers it.
async fn together(w: &Writer, group: &mut [Box<dyn Job>]) -> Result<u64, DbError> {
    // No other write runs while this is held (sqlx has one writer connection).
    let held = w.write.acquire().await?;
    // Counted before the writer is given back: a flush that then takes
    // it (`durability`) covers this commit.
    let done = in_transaction(&w.own, group).map(|()| w.sync.count_commit());
    drop(held);
    done
}

/// `BEGIN`, every job, `COMMIT`; `ROLLBACK` on the first error.
fn in_transaction(c: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), DbError> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    let done = group.iter_mut().try_for_each(|j| j.run(c)).and_then(|()| Ok(c.execute_batch("COMMIT")?));
    if done.is_err() && !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    done
}
