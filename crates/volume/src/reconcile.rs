//! The storage reconciler: one pass finishes interrupted creates, extends
//! and deletes, retries the durable cleanup queue and lifts fences. Exactly
//! one role runs it (the controller, through [`VolumeService::tick`]).

use crate::{Build, CleanupKind, VolumeError, VolumeService, VolumeStatus};
use std::sync::Arc;
use stratus_blockstore::BlockError;
use stratus_db::{Cas, CleanupRow, DbError, ts};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// What one reconciler pass did; the last one is kept for admins
/// ([`VolumeService::last_report`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Interrupted creates retried.
    pub creates_retried: usize,
    /// Of those, now `available`.
    pub creates_finished: usize,
    /// Interrupted extends marked `error_extending` (and re-images marked `error`).
    pub extends_failed: usize,
    /// `deleting` volumes without a queued cleanup that got one.
    pub deletes_requeued: usize,
    /// Queued volume deletes that succeeded (volume marked deleted).
    pub deletes_finished: usize,
    /// Queued volume deletes still refused (busy or backend error).
    pub deletes_pending: usize,
    /// Queued deletes dropped because the volume is no longer being deleted
    /// (an admin reset its status): its data is kept.
    pub deletes_cancelled: usize,
    /// Fences lifted (their host rejoined and confirmed the VM gone).
    pub fences_lifted: usize,
    /// Interrupted snapshot creates and deletes (and volume reverts) finished.
    pub snapshots_finished: usize,
    /// Interrupted snapshot steps still failing (retried next pass).
    pub snapshots_pending: usize,
    /// Items that failed with a database error (retried next pass).
    pub errors: usize,
}

impl ReconcileReport {
    /// Did the pass change anything worth an info log?
    pub fn is_quiet(&self) -> bool {
        self.creates_retried == 0
            && self.extends_failed == 0
            && self.deletes_requeued == 0
            && self.deletes_finished == 0
            && self.deletes_cancelled == 0
            && self.fences_lifted == 0
            && self.snapshots_finished == 0
            && self.snapshots_pending == 0
            && self.errors == 0
    }
}

impl VolumeService {
    /// One pass: finish interrupted creates, extends and deletes, and retry
    /// the queued volume deletes. Idempotent; an item that fails is counted
    /// and retried next pass, it never stops the others.
    pub async fn reconcile(&self) -> Result<ReconcileReport, VolumeError> {
        let mut r = ReconcileReport::default();
        let stale = chrono::Duration::from_std(self.cfg.stale_after).unwrap_or_else(|_| chrono::Duration::seconds(60));
        let cutoff = self.ds.clock().now() - stale;

        for v in self.ds.volume_list_stale(&[VolumeStatus::Creating], cutoff).await? {
            if self.is_inflight(&v.id) {
                continue;
            }
            r.creates_retried += 1;
            // A volume reserved while `creating` is a server's boot volume.
            let boot = !self.ds.attachment_list_for_volume(&v.id).await?.is_empty();
            info!(volume = %v.id, since = %ts(v.updated_at), boot, "retrying an interrupted volume create");
            let how = if boot { Build::Boot { retry: true } } else { Build::Retry };
            match self.build(&v, how).await {
                Ok(row) if matches!(row.status, VolumeStatus::Available | VolumeStatus::Reserved) => {
                    r.creates_finished += 1
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(volume = %v.id, error = %e, "retrying a volume create failed");
                    r.errors += 1;
                }
            }
        }

        for v in self.ds.volume_list_stale(&[VolumeStatus::Extending], cutoff).await? {
            if self.ds.volume_set_status(&v.id, &[VolumeStatus::Extending], VolumeStatus::ErrorExtending).await?
                == Cas::Updated
            {
                warn!(volume = %v.id, "interrupted extend: volume set to error_extending");
                r.extends_failed += 1;
            }
        }

        let pending = self.ds.cleanup_pending().await?;
        for v in self.ds.volume_list_stale(&[VolumeStatus::Deleting], cutoff).await? {
            let queued = pending.iter().any(|c| c.kind == CleanupKind::VolumeDelete && c.volume_id == Some(v.id));
            if !queued {
                warn!(volume = %v.id, "interrupted delete: queued for retry");
                self.ds
                    .cleanup_enqueue(
                        CleanupKind::VolumeDelete,
                        Some(&v.id),
                        Some(&v.backend_name),
                        None,
                        None,
                        "delete interrupted",
                    )
                    .await?;
                r.deletes_requeued += 1;
            }
        }

        match self.reconcile_snapshots(cutoff).await {
            Ok((done, pending)) => {
                r.snapshots_finished = done;
                r.snapshots_pending = pending;
            }
            Err(e) => {
                warn!(error = %e, "finishing interrupted snapshots failed; the next pass retries");
                r.errors += 1;
            }
        }
        match self.reconcile_group_snapshots(cutoff).await {
            Ok((done, pending)) => {
                r.snapshots_finished += done;
                r.snapshots_pending += pending;
            }
            Err(e) => {
                warn!(error = %e, "finishing interrupted group snapshots failed; the next pass retries");
                r.errors += 1;
            }
        }
        match self.reconcile_reimages(cutoff).await {
            Ok(n) => r.extends_failed += n,
            Err(e) => {
                warn!(error = %e, "ending interrupted re-images failed; the next pass retries");
                r.errors += 1;
            }
        }
        match self.reconcile_reverts(cutoff).await {
            Ok((done, pending)) => {
                r.snapshots_finished += done;
                r.snapshots_pending += pending;
            }
            Err(e) => {
                warn!(error = %e, "finishing interrupted reverts failed; the next pass retries");
                r.errors += 1;
            }
        }

        // Purging the trash costs a CLI call: at most every 30 s.
        let now = chrono::Utc::now().timestamp();
        let due = now - self.last_purge.load(std::sync::atomic::Ordering::Relaxed) >= 30;
        if due {
            self.last_purge.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        match if due { self.backend.purge_deferred().await } else { Ok(0) } {
            Ok(0) => {}
            Ok(n) => warn!(remaining = n, "backend trash not empty yet; the next pass purges again"),
            Err(e) => warn!(error = %e, "purging the backend's trash failed; the next pass retries"),
        }
        for c in self.ds.cleanup_pending().await? {
            if c.kind != CleanupKind::VolumeDelete {
                continue;
            }
            if let Err(e) = self.retry_delete(&c, &mut r).await {
                warn!(cleanup = c.id, error = %e, "retrying a queued volume delete failed");
                r.errors += 1;
            }
        }
        match self.lift_fences().await {
            Ok(n) => r.fences_lifted = n,
            Err(e) => {
                warn!(error = %e, "lifting fences failed; the next pass retries");
                r.errors += 1;
            }
        }
        Ok(r)
    }

    /// One pass, logged and kept as [`VolumeService::last_report`].
    async fn reconcile_logged(&self) {
        match self.reconcile().await {
            Ok(r) => {
                if r.is_quiet() {
                    debug!(report = ?r, "volume reconciler pass");
                } else {
                    info!(report = ?r, "volume reconciler pass");
                }
                *self.last_report.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            Err(e) => warn!(error = %e, "volume reconciler pass failed; the next pass retries"),
        }
    }

    /// For a caller that owns a periodic loop (the controller role, the one
    /// role that reconciles storage): run a pass when `reconcile_interval`
    /// has elapsed since the last one, else do nothing. Never fails: a failed
    /// pass is logged and the next one retries.
    pub async fn tick(&self) {
        let now = std::time::Instant::now();
        {
            let mut last = self.last_pass.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.duration_since(t) < self.cfg.reconcile_interval) {
                return;
            }
            *last = Some(now);
        }
        self.reconcile_logged().await;
    }

    async fn retry_delete(&self, c: &CleanupRow, r: &mut ReconcileReport) -> Result<(), VolumeError> {
        let vol = match &c.volume_id {
            Some(id) => match self.ds.volume_get(id).await {
                Ok(v) => Some(v),
                Err(DbError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if let Some(v) = &vol
            && self.is_removing(&v.id)
        {
            // The delete that queued this still runs here: wait for it.
            return Ok(());
        }
        if let Some(v) = &vol
            && !matches!(v.status, VolumeStatus::Deleting | VolumeStatus::ErrorDeleting)
        {
            warn!(volume = %v.id, status = %v.status, "queued delete cancelled: the volume is no longer being deleted; data kept");
            self.ds.cleanup_failed(c.id, &format!("cancelled: volume status is {}", v.status)).await?;
            self.ds.cleanup_done(c.id).await?;
            r.deletes_cancelled += 1;
            return Ok(());
        }
        let name = c
            .backend_name
            .clone()
            .or_else(|| vol.as_ref().map(|v| v.backend_name.clone()))
            .or_else(|| c.volume_id.as_ref().map(|id| format!("volume-{id}")));
        let outcome = match &name {
            Some(n) => self.backend.delete(n).await,
            None => Ok(()),
        };
        match outcome {
            Ok(()) | Err(BlockError::NotFound(_)) => {
                if let Some(id) = &c.volume_id {
                    self.ds.volume_mark_deleted(id).await?;
                }
                self.ds.cleanup_done(c.id).await?;
                info!(volume = ?c.volume_id, attempts = c.attempts + 1, "queued volume delete finished");
                r.deletes_finished += 1;
            }
            Err(e) => {
                let attempts = c.attempts + 1;
                // Every pass retries; log the 1st, 2nd, 4th, 8th ... refusal.
                if (attempts & (attempts - 1)) == 0 {
                    warn!(volume = ?c.volume_id, attempts, error = %e, "queued volume delete still refused");
                } else {
                    debug!(volume = ?c.volume_id, attempts, error = %e, "queued volume delete still refused");
                }
                self.ds.cleanup_failed(c.id, &e.to_string()).await?;
                r.deletes_pending += 1;
            }
        }
        Ok(())
    }

    /// Run [`VolumeService::reconcile`] every `reconcile_interval` until
    /// `shutdown` turns true; logs what each pass did, never panics (a failed
    /// pass is logged and the next one retries). For a process that has no
    /// periodic loop of its own to call [`VolumeService::tick`] from (tests);
    /// in Stratus the controller drives the passes.
    pub async fn run_reconciler(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        info!(interval_ms = self.cfg.reconcile_interval.as_millis() as u64, "volume reconciler started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.reconcile_logged().await;
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.reconcile_interval) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        info!("volume reconciler stopped");
    }
}
