//! The durable operation engine.
//!
//! An operation is a database row created together with the intent (see
//! `stratus-db`). A [`Runner`] finds open operations nobody holds, claims one
//! with an expiring claim, keeps the claim renewed while a [`Handler`] drives
//! it, and closes it. If the process dies, the claim lapses and any runner
//! adopts the operation; handlers make every step idempotent so re-running a
//! step that already happened is harmless. Bus hints only make this faster:
//! the runner also polls, so a lost hint costs latency, never the operation.

use async_trait::async_trait;
use chrono::Duration as ChronoDuration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_bus::Bus;
use stratus_db::{Datastore, DbError, OperationRow};
use stratus_types::agent::SUBJECT_OPS_WAKE;
use tokio::sync::{Notify, Semaphore, watch};
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
    Failed(String),
    /// Could not finish now; keep it open and retry after the delay.
    Retry(String, Duration),
}

/// Errors a handler may return; all are retried after a short delay.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The datastore failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The claim was lost to another runner: stop touching this operation.
    #[error("claim lost")]
    ClaimLost,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Runs one kind of operation.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Drive `op` as far as possible. `cx` records steps and exposes the wake signal.
    async fn run(&self, op: &OperationRow, cx: &StepCx) -> Result<Outcome, OpError>;
}

/// Per-attempt context handed to a handler.
pub struct StepCx {
    ds: Datastore,
    worker: String,
    op_id: String,
    /// Fires when someone asks for this operation to be re-driven now
    /// (e.g. a repeated DELETE): handlers waiting on a host stop waiting and
    /// re-issue their command.
    pub wake: Arc<Notify>,
}

impl StepCx {
    /// Record that `step` starts. Fails with `ClaimLost` if another runner
    /// took the operation (this attempt must stop at once).
    pub async fn step(&self, step: &str) -> Result<(), OpError> {
        fault_point(&format!("before:{step}"));
        if !self.ds.op_set_step(&self.op_id, &self.worker, step).await? {
            return Err(OpError::ClaimLost);
        }
        debug!(op = %self.op_id, step, "step");
        Ok(())
    }

    /// As [`StepCx::step`], writing the step's event start and notification
    /// in the same transaction (fewer writes on the hot path).
    pub async fn step_with(&self, step: &str, w: &stratus_db::StepWrites) -> Result<(), OpError> {
        fault_point(&format!("before:{step}"));
        if !self.ds.op_step_with(&self.op_id, &self.worker, step, w).await? {
            return Err(OpError::ClaimLost);
        }
        debug!(op = %self.op_id, step, "step");
        Ok(())
    }

    /// The operation id.
    pub fn op_id(&self) -> &str {
        &self.op_id
    }

    /// Mark the end of a step (a fault point for crash tests).
    pub fn stepped(&self, step: &str) {
        fault_point(&format!("after:{step}"));
    }

    /// This runner's identity.
    pub fn worker(&self) -> &str {
        &self.worker
    }
}

/// Crash here if `STRATUS_FAULTS` names this point (see [`stratus_types::faults`]).
pub fn fault_point(name: &str) {
    stratus_types::faults::fault_point(name);
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
}

/// Claims and drives operations with the handler registered for their kind.
pub struct Runner {
    ds: Datastore,
    bus: Arc<dyn Bus>,
    cfg: RunnerConfig,
    handlers: HashMap<String, Arc<dyn Handler>>,
    active: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    kick: Arc<Notify>,
}

impl Runner {
    /// A runner with no handlers yet.
    pub fn new(ds: Datastore, bus: Arc<dyn Bus>, cfg: RunnerConfig) -> Self {
        Self { ds, bus, cfg, handlers: HashMap::new(), active: Arc::default(), kick: Arc::new(Notify::new()) }
    }

    /// Register the handler of operations of `kind`.
    pub fn handle(mut self, kind: &str, h: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind.to_string(), h);
        self
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
                        let id = String::from_utf8_lossy(&m.payload).to_string();
                        let held = me2.active.lock().ok().and_then(|a| a.get(&id).cloned());
                        match held {
                            Some(n) => n.notify_one(),
                            None if id.is_empty() => me2.kick.notify_one(),
                            // Claim the named operation directly: no re-listing per hint.
                            None => {
                                let me3 = me2.clone();
                                let sem = sem2.clone();
                                tokio::spawn(async move {
                                    if let Ok(permit) = sem.acquire_owned().await {
                                        me3.attempt(&id).await;
                                        drop(permit);
                                    }
                                });
                            }
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
            match me.ds.op_list_claimable(me.cfg.concurrency as i64).await {
                Ok(ids) => {
                    for id in ids {
                        if me.active.lock().map(|a| a.contains_key(&id)).unwrap_or(true) {
                            continue;
                        }
                        let Ok(permit) = sem.clone().acquire_owned().await else { return };
                        let me2 = me.clone();
                        tokio::spawn(async move {
                            me2.attempt(&id).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => warn!(error = %e, "cannot list operations"),
            }
            tokio::select! {
                _ = tokio::time::sleep(me.cfg.poll_interval) => {}
                _ = me.kick.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn attempt(self: &Arc<Self>, id: &str) {
        let wake = Arc::new(Notify::new());
        {
            let Ok(mut a) = self.active.lock() else { return };
            if a.contains_key(id) {
                return;
            }
            a.insert(id.to_string(), wake.clone());
        }
        let ttl = ChronoDuration::from_std(self.cfg.claim_ttl).unwrap_or(ChronoDuration::seconds(15));
        let res = self.ds.op_claim(id, &self.cfg.worker, ttl).await;
        let op = match res {
            Ok(Some(op)) => op,
            Ok(None) => {
                self.forget(id);
                return;
            }
            Err(e) => {
                warn!(op = id, error = %e, "claim failed");
                self.forget(id);
                return;
            }
        };
        if op.attempts > 1 {
            info!(op = %op.id, kind = %op.kind, server = %op.server_id, step = %op.step, attempts = op.attempts, "adopting operation");
        }
        let Some(handler) = self.handlers.get(&op.kind).cloned() else {
            warn!(op = %op.id, kind = %op.kind, "no handler for operation kind");
            let _ = self.ds.op_finish(&op.id, &self.cfg.worker, false, Some("no handler")).await;
            self.forget(id);
            return;
        };
        // Keep the claim alive while the handler works.
        let renew = {
            let ds = self.ds.clone();
            let worker = self.cfg.worker.clone();
            let op_id = op.id.clone();
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
        let cx = StepCx { ds: self.ds.clone(), worker: self.cfg.worker.clone(), op_id: op.id.clone(), wake };
        let outcome = handler.run(&op, &cx).await;
        renew.abort();
        match outcome {
            Ok(Outcome::Done) => {
                let _ = self.ds.op_finish(&op.id, &self.cfg.worker, true, None).await;
            }
            Ok(Outcome::Closed) => {}
            Ok(Outcome::Failed(msg)) => {
                warn!(op = %op.id, kind = %op.kind, error = %msg, "operation failed");
                let _ = self.ds.op_finish(&op.id, &self.cfg.worker, false, Some(&msg)).await;
            }
            Ok(Outcome::Retry(msg, after)) => {
                debug!(op = %op.id, reason = %msg, "operation will be retried");
                let _ = self.ds.op_note_error(&op.id, &msg).await;
                self.retry_later(&op.id, after);
            }
            Err(OpError::ClaimLost) => {
                info!(op = %op.id, "claim lost to another runner; stopping this attempt");
            }
            Err(e) => {
                warn!(op = %op.id, error = %e, "operation attempt failed; will retry");
                let _ = self.ds.op_note_error(&op.id, &e.to_string()).await;
                self.retry_later(&op.id, Duration::from_millis(500));
            }
        }
        self.forget(id);
    }

    fn retry_later(self: &Arc<Self>, id: &str, after: Duration) {
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = me.ds.op_release(&id, &me.cfg.worker).await;
            me.kick.notify_one();
        });
    }

    fn forget(&self, id: &str) {
        if let Ok(mut a) = self.active.lock() {
            a.remove(id);
        }
    }
}
