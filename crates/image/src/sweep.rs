//! Holds whose process died: an upload (`saving`), a stage (`uploading`)
//! or an import (`importing`) holds its image while it runs and refreshes
//! it every [`crate::HOLD_REFRESH`]; an import task refreshes its task row
//! the same way. When the API process that held one dies (a crash, a
//! restart mid-upload), nothing releases it: without this sweep the image
//! would stay `saving` for ever and its task `processing`. The sweep gives
//! such an image back as `queued` (what Glance does with a failed upload,
//! its partial bytes dropped) and ends such a task as `failure`, so the
//! client can upload again.

use crate::{HOLD_STALE_AFTER, ImageError, ImageService};
use stratus_types::image::ImageStatus;
use tracing::warn;

/// What one sweep released.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Images given back as `queued`.
    pub images: usize,
    /// Tasks ended as `failure`.
    pub tasks: usize,
}

/// The message a swept task ends with (shown to the task's owner).
pub const INTERRUPTED: &str = "The task was interrupted: the image service running it stopped. Start it again.";

impl ImageService {
    /// Release every hold and task not refreshed for
    /// [`HOLD_STALE_AFTER`] (by the datastore's clock). Safe with several
    /// API processes: a live holder refreshes well within that time, and
    /// each release is a compare-and-swap on the status it found.
    pub async fn sweep_interrupted(&self) -> Result<Swept, ImageError> {
        let stale = chrono::Duration::from_std(HOLD_STALE_AFTER).unwrap_or_else(|_| chrono::Duration::seconds(60));
        let cutoff = self.ds.clock().now() - stale;
        let mut swept = Swept::default();
        let held = [ImageStatus::Saving, ImageStatus::Uploading, ImageStatus::Importing];
        for row in self.ds.image_list_stale_holds(&held, cutoff).await? {
            if self.ds.image_set_status(&row.id, &[row.status], ImageStatus::Queued).await? != stratus_db::Cas::Updated
            {
                continue; // its holder moved it on meanwhile
            }
            if row.status == ImageStatus::Saving {
                let partial = crate::store::data_path(self.image_dir(), &row.id);
                if let Err(e) = tokio::fs::remove_file(&partial).await
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    warn!(image = %row.id, error = %e, "could not remove an interrupted upload's bytes");
                }
            } else {
                self.remove_staged(&row).await;
            }
            warn!(image = %row.id, held = %row.status, since = %row.updated_at, "released the hold of a process that stopped: image queued again");
            swept.images += 1;
        }
        for t in self.ds.image_task_list_stale(cutoff).await? {
            self.task_set(&t.id, "failure", None, serde_json::Value::Null, INTERRUPTED).await?;
            warn!(task = %t.id, since = %t.updated_at, "ended a task whose process stopped");
            swept.tasks += 1;
        }
        Ok(swept)
    }

    /// Keep task `id`'s row fresh while its runner works (see the module).
    pub(crate) fn task_heartbeat(&self, id: &str) -> crate::Heartbeat {
        let (ds, id) = (self.ds.clone(), id.to_string());
        crate::Heartbeat::start(move || {
            let (ds, id) = (ds.clone(), id.clone());
            async move {
                if let Err(e) = ds.image_task_touch(&id).await {
                    warn!(task = %id, error = %e, "could not refresh a running task");
                }
            }
        })
    }
}
