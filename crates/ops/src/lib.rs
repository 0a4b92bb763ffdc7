//! The durable operation engine.
//!
//! An operation is a database row created together with the intent (see
//! `stratus-db`). A [`Runner`] finds open operations nobody holds, claims one
//! with an expiring claim, keeps the claim renewed while the [`Handler`] its
//! [`Registry`] gives for the operation's kind drives it, and closes it. If
//! the process dies, the claim lapses and any runner adopts the operation.
//!
//! Each operation declares its steps as an enum ([`steps!`], [`Step`]), in
//! running order. [`StepCx::step`] marks a step's start (checking the claim),
//! [`StepCx::stepped`] records its completion as the row's cursor; a resumed
//! attempt reads the cursor ([`StepCx::completed`], [`StepCx::done`]) and
//! continues after the last completed step. Steps are idempotent anyway: a
//! crash between a step's effect and its completion re-runs it.
//!
//! Fault points (`before:<step>`, `after:<step>`) are asked of the injected
//! [`Faults`] handle: the binary aborts the process there for real-process
//! crash tests, an in-process test stops the attempt ([`OpError::Fault`]) and
//! resumes it with a fresh runner ([`Runner::drive_once`]). Bus hints only
//! make this faster: the runner also polls, so a lost hint costs latency,
//! never the operation.

use async_trait::async_trait;
use chrono::Duration as ChronoDuration;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_bus::Bus;
use stratus_db::{Datastore, DbError, OperationRow};
use stratus_metrics::OpOutcome;
use stratus_types::agent::SUBJECT_OPS_WAKE;
use stratus_types::faults::{FaultHit, Faults};
use stratus_types::{OpKind, OperationId};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tracing::{debug, info, warn};

/// How an operation attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// Finished; close the operation as done.
    Done,
    /// Finished, and the handler already closed the operation in its last
    /// transaction (nothing more to write).
    Closed,
    /// Finished unsuccessfully for good (the server records the fault); close as failed.
    Failed(Failure),
    /// Could not finish now; keep it open and retry after the delay.
    Retry(RetryReason, Duration),
}

/// Why an operation failed for good. Its text is what the operation row's
/// `last_error` and the log say (the handler has already recorded it on the
/// server and its instance action).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The stored parameters do not decode (the text says which and why).
    #[error("{0}")]
    BadParams(String),
    /// The registry handed a handler a kind it does not run (a bug).
    #[error("{kind} is not a {handler} operation")]
    WrongKind {
        /// The operation's kind.
        kind: OpKind,
        /// The family of kinds the handler runs (`power`, `lifecycle`).
        handler: &'static str,
    },
    /// The server or the deployment lacks what the operation needs.
    #[error("{0}")]
    Unsupported(Unsupported),
    /// A step failed, on the host or in a service; the text is the one the
    /// instance action records.
    #[error("{0}")]
    Step(String),
}

/// What an operation needed and did not find, for [`Failure::Unsupported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// The server is on no host (nothing to send the command to).
    #[error("server has no host")]
    NoHost,
    /// The deployment has no block storage service.
    #[error("no block storage service is configured")]
    NoBlockStorage,
}

/// Why an attempt stopped short and will be retried; its text is the row's
/// `last_error` until then.
#[derive(Debug, thiserror::Error)]
pub enum RetryReason {
    /// The bus could not carry a command to the host.
    #[error("bus: {0}")]
    Bus(String),
    /// The server's storage clients could not be fenced yet (its volumes stay attached).
    #[error("fence: {0}")]
    Fence(String),
}

/// Errors a handler may return; all are retried after a short delay.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The datastore failed.
    #[error(transparent)]
    Db(DbError),
    /// The claim was lost to another runner: stop touching this operation.
    #[error("claim lost")]
    ClaimLost,
    /// An injected fault point stopped the attempt (in-process crash tests):
    /// the runner leaves the operation exactly as a dead process would.
    #[error(transparent)]
    Fault(#[from] FaultHit),
    /// A service a step calls failed with its own typed error (boxed, so
    /// the engine does not depend on every service crate; callers can
    /// downcast it).
    #[error(transparent)]
    Service(Box<dyn std::error::Error + Send + Sync>),
}

impl From<DbError> for OpError {
    /// A write refused because the attempt's claim is gone is the attempt's
    /// end, not a failure to retry.
    fn from(e: DbError) -> Self {
        match e {
            DbError::ClaimLost { .. } => Self::ClaimLost,
            e => Self::Db(e),
        }
    }
}

/// The declared steps of one kind of operation: an enum whose variants are
/// in the order the steps run, so the stored cursor says which are done.
pub trait Step: Copy + Ord + Send + Sync + 'static {
    /// The name stored as the cursor and used by fault points (`before:<name>`, `after:<name>`).
    fn as_str(self) -> &'static str;
    /// The step of this operation named `s`.
    fn parse(s: &str) -> Option<Self>;
}

/// Declare the step enum of an operation: variants in running order, each
/// with the name stored as the cursor and used by fault points.
#[macro_export]
macro_rules! steps {
    ($(#[$doc:meta])* $vis:vis enum $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $crate::Step for $name {
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
            fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

impl Step for stratus_types::plan::DeleteStep {
    fn as_str(self) -> &'static str {
        stratus_types::plan::DeleteStep::as_str(self)
    }
    fn parse(s: &str) -> Option<Self> {
        stratus_types::plan::DeleteStep::parse(s)
    }
}

/// Runs one kind of operation.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Drive `op` as far as possible. `cx` records steps and exposes the wake signal.
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError>;
}

/// The one table from operation kind to handler (an exhaustive `match` in
/// the controller, so a new kind cannot be left without a handler).
pub type Registry = Arc<dyn Fn(OpKind) -> Arc<dyn Handler> + Send + Sync>;

/// Per-attempt context handed to a handler.
pub struct StepCx {
    ds: Datastore,
    worker: String,
    op_id: OperationId,
    faults: Faults,
    /// The cursor read when the operation was claimed: the last completed step.
    cursor: Option<String>,
    /// A step completed in this attempt whose name is not written yet: it
    /// rides on the next step's write (one transaction fewer per step on the
    /// hot path). Losing it in a crash only re-runs that idempotent step.
    pending_cursor: std::sync::Mutex<Option<&'static str>>,
    /// Fires when someone asks for this operation to be re-driven now
    /// (e.g. a repeated DELETE): handlers waiting on a host stop waiting and
    /// re-issue their command.
    pub wake: Arc<Notify>,
}

impl StepCx {
    /// Record that `step` starts. Fails with `ClaimLost` if another runner
    /// took the operation (this attempt must stop at once).
    pub async fn step<S: Step>(&self, step: S) -> Result<(), OpError> {
        self.step_with(step, &stratus_db::StepWrites::default()).await
    }

    /// As [`StepCx::step`], writing the step's event start and notification
    /// in the same transaction (fewer writes on the hot path).
    pub async fn step_with<S: Step>(&self, step: S, w: &stratus_db::StepWrites) -> Result<(), OpError> {
        self.faults.check(&format!("before:{}", step.as_str()))?;
        let completed = self.pending_cursor.lock().ok().and_then(|mut p| p.take());
        if !self.ds.op_step_with(&self.op_id, &self.worker, completed, w).await? {
            return Err(OpError::ClaimLost);
        }
        debug!(op = %self.op_id, step = step.as_str(), "step");
        Ok(())
    }

    /// Record that `step` completed: the cursor a resumed attempt continues
    /// after. The `after:<step>` fault point comes first, so a crash there
    /// re-runs the step on resume (steps are idempotent). The cursor is
    /// written with the next step's start, in the same transaction (an
    /// operation that closes right after needs no cursor), so recording a
    /// completion costs no write of its own on the hot path.
    pub async fn stepped<S: Step>(&self, step: S) -> Result<(), OpError> {
        self.after(step)?;
        if let Ok(mut p) = self.pending_cursor.lock() {
            *p = Some(step.as_str());
        }
        Ok(())
    }

    /// The `before:<step>` fault point alone, for a step whose start needs no
    /// write (e.g. the delete's release, one transaction that checks the claim itself).
    pub fn before<S: Step>(&self, step: S) -> Result<(), OpError> {
        Ok(self.faults.check(&format!("before:{}", step.as_str()))?)
    }

    /// The `after:<step>` fault point alone, for a step whose completion is
    /// written by its own transaction (e.g. the delete's release, which closes the operation).
    pub fn after<S: Step>(&self, step: S) -> Result<(), OpError> {
        Ok(self.faults.check(&format!("after:{}", step.as_str()))?)
    }

    /// The last step an earlier attempt completed, if it is one of `S`.
    pub fn completed<S: Step>(&self) -> Option<S> {
        self.cursor.as_deref().and_then(S::parse)
    }

    /// Did an earlier attempt complete `step` (or a later one)? Such a step is skipped on resume.
    pub fn done<S: Step>(&self, step: S) -> bool {
        self.completed::<S>().is_some_and(|c| c >= step)
    }

    /// The fault points of this runner, for code a step calls that has its own points.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The operation id.
    pub fn op_id(&self) -> &OperationId {
        &self.op_id
    }

    /// This runner's identity.
    pub fn worker(&self) -> &str {
        &self.worker
    }
}

/// Settings of a runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Identity of this runner (host:pid:uuid).
    pub worker: String,
    /// Claim length; another runner adopts the operation after it lapses.
    pub claim_ttl: Duration,
    /// How often to look for claimable operations without a hint.
    pub poll_interval: Duration,
    /// Operations driven at once.
    pub concurrency: usize,
    /// Fault points (none in production; injected by the binary or a test).
    pub faults: Faults,
    /// Where finished operations' durations are recorded.
    pub metrics: stratus_metrics::Metrics,
}

/// Claims and drives operations with the handler registered for their kind.
pub struct Runner {
    ds: Datastore,
    bus: Arc<dyn Bus>,
    cfg: RunnerConfig,
    handlers: Registry,
    active: Arc<Mutex<HashMap<OperationId, Arc<Notify>>>>,
    kick: Arc<Notify>,
    /// A wake hint found every permit taken (its operation waits in the
    /// database for the loop).
    backlog: AtomicBool,
    claims: Arc<ClaimQueue>,
}

/// Most claims made in one statement (one bound parameter each; far below
/// SQLite's and PostgreSQL's limits on parameters).
const MAX_CLAIM_BATCH: usize = 500;

/// Claims asked for at about the same time, made in one write: a burst of
/// requests (1,000 deletes at once) is claimed in a few statements instead
/// of one each on the single writer.
struct ClaimQueue {
    ds: Datastore,
    worker: String,
    ttl: ChronoDuration,
    /// Claims waiting for the next batch.
    pending: Mutex<Vec<(OperationId, oneshot::Sender<Option<OperationRow>>)>>,
    /// A task is draining `pending`.
    draining: AtomicBool,
}

impl ClaimQueue {
    /// Claim `id` (with whatever else is waiting); the row if it was claimable.
    async fn claim(self: &Arc<Self>, id: OperationId) -> Option<OperationRow> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().ok()?.push((id, tx));
        if !self.draining.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            tokio::spawn(async move { me.drain().await });
        }
        rx.await.ok().flatten()
    }

    /// Claim batches until nothing waits.
    async fn drain(&self) {
        loop {
            let batch = match self.pending.lock() {
                Ok(mut p) => {
                    let n = p.len().min(MAX_CLAIM_BATCH);
                    p.drain(..n).collect::<Vec<_>>()
                }
                Err(_) => return,
            };
            if batch.is_empty() {
                self.draining.store(false, Ordering::SeqCst);
                // A claim queued after the take saw `draining` set and
                // started no task: take it on unless another task did.
                let empty = self.pending.lock().map(|p| p.is_empty()).unwrap_or(true);
                if empty || self.draining.swap(true, Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            let ids: Vec<OperationId> = batch.iter().map(|(id, _)| *id).collect();
            let mut rows: HashMap<OperationId, OperationRow> =
                match self.ds.op_claim_many(&ids, &self.worker, self.ttl).await {
                    Ok(rows) => rows.into_iter().map(|r| (r.id, r)).collect(),
                    Err(e) => {
                        warn!(ops = ids.len(), error = %e, "claim failed");
                        HashMap::new()
                    }
                };
            for (id, tx) in batch {
                let _ = tx.send(rows.remove(&id));
            }
        }
    }
}

impl Runner {
    /// A runner driving each operation with the handler `handlers` gives for its kind.
    pub fn new(ds: Datastore, bus: Arc<dyn Bus>, cfg: RunnerConfig, handlers: Registry) -> Self {
        let claims = Arc::new(ClaimQueue {
            ds: ds.clone(),
            worker: cfg.worker.clone(),
            ttl: ChronoDuration::from_std(cfg.claim_ttl).unwrap_or(ChronoDuration::seconds(15)),
            pending: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
        });
        Self {
            ds,
            bus,
            cfg,
            handlers,
            active: Arc::default(),
            kick: Arc::new(Notify::new()),
            backlog: AtomicBool::new(false),
            claims,
        }
    }

    /// Claim operation `id` and drive one attempt of it here, without the
    /// background loop: what in-process tests use to step an operation
    /// deterministically. `None` if it could not be claimed; otherwise the
    /// attempt's result, already applied to the row as [`Runner::run`] would
    /// (except that a retry is not scheduled).
    pub async fn drive_once(&self, id: &OperationId) -> Option<Result<Outcome, OpError>> {
        let op = self.claim(id).await?;
        let cx = self.cx(&op, Arc::new(Notify::new()));
        let handler = self.handlers.as_ref()(op.kind);
        let outcome = stratus_db::claim::scope(self.fencing(&op), handler.run(&op, &cx)).await;
        self.close(&op, &outcome).await;
        Some(outcome)
    }

    async fn claim(&self, id: &OperationId) -> Option<OperationRow> {
        self.claims.claim(*id).await
    }

    /// The claim an attempt on `op` (as just claimed) runs under.
    fn fencing(&self, op: &OperationRow) -> stratus_db::claim::Claim {
        stratus_db::claim::Claim { op: op.id, worker: self.cfg.worker.clone(), token: op.attempts }
    }

    fn cx(&self, op: &OperationRow, wake: Arc<Notify>) -> StepCx {
        StepCx {
            ds: self.ds.clone(),
            worker: self.cfg.worker.clone(),
            op_id: op.id,
            faults: self.cfg.faults.clone(),
            cursor: Some(op.step.clone()).filter(|s| s != stratus_types::INITIAL_STEP),
            pending_cursor: std::sync::Mutex::new(None),
            wake,
        }
    }

    /// Write what an attempt's result means to the operation row; the delay
    /// after which to retry when the operation stays open.
    async fn close(&self, op: &OperationRow, outcome: &Result<Outcome, OpError>) -> Option<Duration> {
        match outcome {
            Ok(Outcome::Done) => {
                let _ = self.ds.op_finish(&op.id, &self.cfg.worker, true, None).await;
                self.finished(op, OpOutcome::Done);
                None
            }
            Ok(Outcome::Closed) => {
                self.finished(op, OpOutcome::Done);
                None
            }
            Ok(Outcome::Failed(failure)) => {
                warn!(op = %op.id, kind = %op.kind, error = %failure, "operation failed");
                let _ = self.ds.op_finish(&op.id, &self.cfg.worker, false, Some(&failure.to_string())).await;
                self.finished(op, OpOutcome::Failed);
                None
            }
            Ok(Outcome::Retry(reason, after)) => {
                debug!(op = %op.id, reason = %reason, "operation will be retried");
                let _ = self.ds.op_note_error(&op.id, &reason.to_string()).await;
                Some(*after)
            }
            Err(OpError::ClaimLost) => {
                info!(op = %op.id, "claim lost to another runner; stopping this attempt");
                None
            }
            Err(OpError::Fault(hit)) => {
                // As if the process died here: write nothing, keep the claim.
                warn!(op = %op.id, fault = %hit, "fault point: attempt abandoned");
                None
            }
            Err(e) => {
                warn!(op = %op.id, error = %e, "operation attempt failed; will retry");
                let _ = self.ds.op_note_error(&op.id, &e.to_string()).await;
                Some(Duration::from_millis(500))
            }
        }
    }

    /// Record how long `op` took from its request (the row's creation, by
    /// the datastore's clock) to its end: what the user waited.
    fn finished(&self, op: &OperationRow, outcome: OpOutcome) {
        let took = (self.ds.clock().now() - op.created_at).to_std().unwrap_or_default();
        self.cfg.metrics.operation_finished(op.kind, outcome, took);
    }

    /// Run until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let sem = Arc::new(Semaphore::new(me.cfg.concurrency));
        // Wake hints: an operation id (re-drive it if we hold it) or empty (look now).
        // A restarted runner adopts the operations it held, at once.
        match me.ds.op_list_held_by(&me.cfg.worker).await {
            Ok(ids) => {
                for id in ids {
                    let me2 = me.clone();
                    tokio::spawn(async move { me2.attempt(&id).await });
                }
            }
            Err(e) => warn!(error = %e, "cannot list this runner's operations"),
        }
        match me.bus.subscribe(SUBJECT_OPS_WAKE).await {
            Ok(mut sub) => {
                let me2 = me.clone();
                let sem2 = sem.clone();
                tokio::spawn(async move {
                    while let Some(m) = sub.next().await {
                        let text = String::from_utf8_lossy(&m.payload);
                        if text.is_empty() {
                            me2.kick.notify_one();
                            continue;
                        }
                        // A hint that is not an operation id names no row: nothing to drive.
                        let Ok(id) = text.parse::<OperationId>() else {
                            debug!(hint = %text, "ignoring a wake hint that is not an operation id");
                            continue;
                        };
                        let held = me2.active.lock().ok().and_then(|a| a.get(&id).cloned());
                        match held {
                            Some(n) => n.notify_one(),
                            // Claim the named operation directly: no re-listing per hint.
                            None => match sem2.clone().try_acquire_owned() {
                                Ok(permit) => me2.spawn_attempt(id, permit),
                                // Every permit is taken: the operation waits in its
                                // row, not as a task per hint (~1 KiB each, 9,000 of
                                // them while 10,000 boots queued); the loop claims it
                                // when an attempt ends.
                                Err(_) => {
                                    me2.backlog.store(true, Ordering::SeqCst);
                                    // An attempt may have ended between the two.
                                    if sem2.available_permits() > 0 {
                                        me2.kick_if_backlogged();
                                    }
                                }
                            },
                        }
                    }
                });
            }
            Err(e) => warn!(error = %e, "no wake hints; relying on polling"),
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let page = me.cfg.concurrency as i64;
            let mut more = false;
            match me.ds.op_list_claimable(page).await {
                Ok(ids) => {
                    // A full page that started work: more may wait (hints
                    // turned away while every permit was taken); look again
                    // at once, throttled by the permits.
                    more = ids.len() as i64 == page;
                    if more {
                        // Until a page comes back short, every attempt that
                        // ends wakes this loop again (the kick that woke it
                        // has been spent).
                        me.backlog.store(true, Ordering::SeqCst);
                    }
                    let mut started = false;
                    for id in ids {
                        if me.active.lock().map(|a| a.contains_key(&id)).unwrap_or(true) {
                            continue;
                        }
                        started = true;
                        let Ok(permit) = sem.clone().acquire_owned().await else { return };
                        me.spawn_attempt(id, permit);
                    }
                    more &= started;
                }
                Err(e) => warn!(error = %e, "cannot list operations"),
            }
            if more {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(me.cfg.poll_interval) => {}
                _ = me.kick.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn attempt(self: &Arc<Self>, id: &OperationId) {
        let wake = Arc::new(Notify::new());
        {
            let Ok(mut a) = self.active.lock() else { return };
            if a.contains_key(id) {
                return;
            }
            a.insert(*id, wake.clone());
        }
        let Some(op) = self.claim(id).await else {
            self.forget(id);
            return;
        };
        if op.attempts > 1 {
            info!(op = %op.id, kind = %op.kind, server = %op.server_id, step = %op.step, attempts = op.attempts, "adopting operation");
        }
        let handler = self.handlers.as_ref()(op.kind);
        let ttl = ChronoDuration::from_std(self.cfg.claim_ttl).unwrap_or(ChronoDuration::seconds(15));
        // Keep the claim alive while the handler works.
        let renew = {
            let ds = self.ds.clone();
            let worker = self.cfg.worker.clone();
            let op_id = op.id;
            let every = self.cfg.claim_ttl / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match ds.op_renew_claim(&op_id, &worker, ttl).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => warn!(op = %op_id, error = %e, "claim renewal failed"),
                    }
                }
            })
        };
        let cx = self.cx(&op, wake);
        // Every write of the attempt is fenced by its claim (a stalled
        // attempt that lost the operation writes nothing when it resumes).
        let outcome = stratus_db::claim::scope(self.fencing(&op), handler.run(&op, &cx)).await;
        renew.abort();
        if let Some(after) = self.close(&op, &outcome).await {
            self.retry_later(&op.id, after);
        }
        self.forget(id);
    }

    fn retry_later(self: &Arc<Self>, id: &OperationId, after: Duration) {
        let me = self.clone();
        let id = *id;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = me.ds.op_release(&id, &me.cfg.worker).await;
            me.kick.notify_one();
        });
    }

    /// Drive one attempt of `id` under `permit`; when it ends, the permit
    /// is freed and a backlog of turned-away hints looked at.
    fn spawn_attempt(self: &Arc<Self>, id: OperationId, permit: tokio::sync::OwnedSemaphorePermit) {
        let me = self.clone();
        tokio::spawn(async move {
            me.attempt(&id).await;
            drop(permit);
            me.kick_if_backlogged();
        });
    }

    /// After an attempt freed its permit: if hints were turned away while
    /// every permit was taken, look for claimable operations now.
    fn kick_if_backlogged(&self) {
        if self.backlog.swap(false, Ordering::SeqCst) {
            self.kick.notify_one();
        }
    }

    fn forget(&self, id: &OperationId) {
        if let Ok(mut a) = self.active.lock() {
            a.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Step;

    crate::steps!(
        /// A test operation.
        enum Demo {
            /// First.
            First => "first",
            /// Second.
            Second => "second",
        }
    );

    #[test]
    fn declared_steps_keep_their_order_and_names() {
        assert!(Demo::First < Demo::Second);
        assert_eq!(Demo::Second.as_str(), "second");
        assert_eq!(Demo::parse("first"), Some(Demo::First));
        assert_eq!(Demo::parse("start"), None);
    }
}
