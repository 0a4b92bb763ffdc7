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
//! Jobs come in two lanes. A job that a request is waiting on (the DELETE's
//! own start) goes ahead of the background work of operations already
//! accepted (claims, steps, last steps, the relay's marks): in a burst the
//! background queue holds hundreds of jobs, and a DELETE queued behind them
//! waited for several groups to commit before its answer. A group takes the
//! request lane first, but always leaves `BACKGROUND_SHARE` of its places to
//! background jobs that are waiting, so a flood of requests slows the work
//! already accepted without ever stopping it.
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

/// Places of each group kept for background jobs when any are waiting: the
/// request lane cannot starve the operations it has already accepted.
const BACKGROUND_SHARE: usize = 16;

/// Which queue a job waits in (see the module's note on lanes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A request's answer waits on this job: it goes ahead.
    Request,
    /// Work of an operation already accepted.
    Background,
}

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

/// Where a job's caller gets its outcome.
type Answer<T> = oneshot::Receiver<Result<T, DbError>>;

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
    /// Jobs a request's answer waits on.
    requests: mpsc::UnboundedSender<Box<dyn Job>>,
    /// Everything else.
    background: mpsc::UnboundedSender<Box<dyn Job>>,
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
        // Its commits leave the checkpoints to `checkpoint`'s thread.
        own.pragma_update(None, "wal_autocheckpoint", crate::checkpoint::SAFETY_NET_PAGES)?;
        let writer = Writer { own, write, sync };
        let (requests, request_jobs) = mpsc::unbounded_channel();
        let (background, background_jobs) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Writer(format!("group writer runtime: {e}")))?;
        std::thread::Builder::new()
            .name("db-group-writer".into())
            .spawn(move || rt.block_on(drive(writer, Lanes { requests: request_jobs, background: background_jobs })))
            .map_err(|e| DbError::Writer(format!("group writer thread: {e}")))?;
        Ok(Self { requests, background })
    }

    /// Run `work` on `inputs` in a coming group transaction (`lane` says
    /// which queue it waits in) and return its outcome once that
    /// transaction is committed (not yet flushed: the caller waits for the
    /// flush).
    pub(crate) async fn run<S, T>(&self, lane: Lane, inputs: S, work: JobFn<S, T>) -> Result<T, DbError>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        let answer = self.submit(lane, inputs, work)?;
        answer.await.map_err(|_| DbError::Writer("the group writer dropped a job".into()))?
    }

    /// Queue the job at once (its place in the lane is taken before any
    /// await); the receiver gets its outcome.
    fn submit<S, T>(&self, lane: Lane, inputs: S, work: JobFn<S, T>) -> Result<Answer<T>, DbError>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (caller, answer) = oneshot::channel();
        let job = Box::new(Typed { inputs, work, outcome: None, caller });
        let queue = match lane {
            Lane::Request => &self.requests,
            Lane::Background => &self.background,
        };
        queue.send(job).map_err(|_| DbError::Writer("the group writer has stopped".into()))?;
        Ok(answer)
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

/// The group writer's two queues.
struct Lanes {
    requests: mpsc::UnboundedReceiver<Box<dyn Job>>,
    background: mpsc::UnboundedReceiver<Box<dyn Job>>,
}

impl Lanes {
    /// Wait for a job, from the request lane if both have one; `None` once
    /// both queues are closed and empty.
    async fn first(&mut self) -> Option<Box<dyn Job>> {
        tokio::select! {
            biased;
            Some(j) = self.requests.recv() => Some(j),
            Some(j) = self.background.recv() => Some(j),
            else => None,
        }
    }

    /// Fill `group` (up to `MAX_GROUP`) with the jobs waiting now: requests
    /// first, but no further than leaves `BACKGROUND_SHARE` places to
    /// background jobs; then background jobs; then requests again if
    /// places are left.
    fn fill(&mut self, group: &mut Vec<Box<dyn Job>>) {
        take(&mut self.requests, group, MAX_GROUP - BACKGROUND_SHARE);
        take(&mut self.background, group, MAX_GROUP);
        take(&mut self.requests, group, MAX_GROUP);
    }
}

/// Move jobs waiting in `queue` to `group` until it holds `up_to`.
fn take(queue: &mut mpsc::UnboundedReceiver<Box<dyn Job>>, group: &mut Vec<Box<dyn Job>>, up_to: usize) {
    while group.len() < up_to {
        match queue.try_recv() {
            Ok(j) => group.push(j),
            Err(_) => break,
        }
    }
}

/// The group writer: take the jobs waiting (requests first), run them in
/// one transaction, commit, answer; on a database error run each alone.
async fn drive(write: Writer, mut lanes: Lanes) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = lanes.first().await {
        group.push(first);
        lanes.fill(&mut group);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;

    /// The order in which the writer ran the jobs, by label.
    type Log = Arc<Mutex<Vec<String>>>;

    fn note((log, label): &(Log, String), _: &Connection) -> Result<(), DbError> {
        log.lock().expect("log").push(label.clone());
        Ok(())
    }

    /// A job that holds the writer until released: what is queued meanwhile
    /// is what the next groups are made of.
    struct Gate {
        log: Log,
        entered: std_mpsc::Sender<()>,
        release: Mutex<std_mpsc::Receiver<()>>,
    }

    fn hold(g: &Gate, _: &Connection) -> Result<(), DbError> {
        g.log.lock().expect("log").push("gate".into());
        let _ = g.entered.send(());
        let _ = g.release.lock().expect("gate").recv();
        Ok(())
    }

    /// Runs `queue` (lane, label) behind a held writer and returns the order
    /// the writer ran them in.
    async fn run_behind_a_held_writer(queue: &[(Lane, String)]) -> Vec<String> {
        let dir = std::env::temp_dir().join(format!("stratus-group-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ds = crate::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        let crate::backend::Pools::Sqlite { group, .. } = &ds.pools else { panic!("sqlite") };
        let log: Log = Arc::default();
        let (entered, inside) = std_mpsc::channel();
        let (release, wait) = std_mpsc::channel();
        let gate = Gate { log: log.clone(), entered, release: Mutex::new(wait) };
        let held = group.submit(Lane::Background, gate, hold).expect("gate");
        inside.recv_timeout(Duration::from_secs(10)).expect("the writer runs the gate");
        let answers: Vec<_> = queue
            .iter()
            .map(|(lane, label)| group.submit(*lane, (log.clone(), label.clone()), note).expect("queued"))
            .collect();
        release.send(()).expect("release");
        held.await.expect("answered").expect("gate committed");
        for a in answers {
            a.await.expect("answered").expect("committed");
        }
        let order = log.lock().expect("log").clone();
        ds.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        order
    }

    fn labels(prefix: &str, n: std::ops::Range<usize>) -> Vec<String> {
        n.map(|i| format!("{prefix}{i}")).collect()
    }

    /// Nova has no such writer; the property is ours: a DELETE's start
    /// queued behind a burst's background work goes in the next group.
    #[tokio::test]
    async fn a_request_queued_behind_background_work_runs_in_the_next_group() {
        let mut queue: Vec<(Lane, String)> = labels("b", 0..100).into_iter().map(|l| (Lane::Background, l)).collect();
        queue.push((Lane::Request, "r0".into()));
        let order = run_behind_a_held_writer(&queue).await;
        assert_eq!(order[..2], ["gate".to_string(), "r0".to_string()], "the request went first: {order:?}");
        assert_eq!(order[2..], labels("b", 0..100)[..], "background jobs keep their order");
    }

    /// A flood of requests leaves `BACKGROUND_SHARE` places of every group
    /// to waiting background work: accepted operations keep moving.
    #[tokio::test]
    async fn a_flood_of_requests_leaves_room_for_background_work_in_every_group() {
        let mut queue: Vec<(Lane, String)> = labels("b", 0..70).into_iter().map(|l| (Lane::Background, l)).collect();
        queue.extend(labels("r", 0..100).into_iter().map(|l| (Lane::Request, l)));
        let order = run_behind_a_held_writer(&queue).await;
        let requests_first = MAX_GROUP - BACKGROUND_SHARE;
        let mut expected = vec!["gate".to_string()];
        // Group 2: 48 requests, then 16 background jobs.
        expected.extend(labels("r", 0..requests_first));
        expected.extend(labels("b", 0..BACKGROUND_SHARE));
        // Group 3: the next 48 requests and 16 more background jobs.
        expected.extend(labels("r", requests_first..2 * requests_first));
        expected.extend(labels("b", BACKGROUND_SHARE..2 * BACKGROUND_SHARE));
        // Group 4: the last 4 requests, then background jobs.
        expected.extend(labels("r", 2 * requests_first..100));
        expected.extend(labels("b", 2 * BACKGROUND_SHARE..70));
        assert_eq!(order, expected);
    }
}
