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
//! Durability is unchanged: the caller waits for the group flush of
//! `durability` after its job's reply, as every datastore call does.

use crate::DbError;
use sqlx::SqliteConnection;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// The most jobs in one transaction: bounds how long the first caller of
/// a group waits for the others' statements.
const MAX_GROUP: usize = 64;

/// A boxed future borrowing the job and the connection.
pub(crate) type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, DbError>> + Send + 'c>>;

/// The work of one job: its inputs and the shared transaction's connection.
pub(crate) type JobFn<S, T> = for<'c> fn(&'c S, &'c mut SqliteConnection) -> JobFuture<'c, T>;

/// One caller's unit of work, typed away so that one queue carries all kinds.
trait Job: Send {
    /// Run inside the group's transaction (again alone after a rollback);
    /// an error is a database error: the transaction is not committed.
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> JobFuture<'c, ()>;

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
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> JobFuture<'c, ()> {
        Box::pin(async move {
            let out = (self.work)(&self.inputs, conn).await?;
            self.outcome = Some(out);
            Ok(())
        })
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
    /// Start the group writer's thread on the writer pool `write`. The
    /// thread ends when the last handle on the queue is dropped.
    pub(crate) fn start(write: sqlx::SqlitePool) -> Result<Self, DbError> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Writer(format!("group writer runtime: {e}")))?;
        std::thread::Builder::new()
            .name("db-group-writer".into())
            .spawn(move || rt.block_on(drive(write, jobs)))
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

/// The group writer: take every job waiting, run them in one transaction,
/// commit, answer; on a database error run each alone.
async fn drive(write: sqlx::SqlitePool, mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>) {
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
            Ok(()) => group.drain(..).for_each(|j| j.reply(Ok(()))),
            Err(e) if group.len() == 1 => {
                if let Some(j) = group.pop() {
                    j.reply(Err(e));
                }
            }
            Err(e) => {
                warn!(error = %e, jobs = group.len(), "a grouped write failed: running each of its group alone");
                for mut j in group.drain(..) {
                    let alone = together(&write, std::slice::from_mut(&mut j)).await;
                    j.reply(alone);
                }
            }
        }
    }
}

/// Run `group` in one transaction; nothing is committed on an error.
async fn together(write: &sqlx::SqlitePool, group: &mut [Box<dyn Job>]) -> Result<(), DbError> {
    let mut tx = write.begin().await?;
    for j in group.iter_mut() {
        j.run(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
