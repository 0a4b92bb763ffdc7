//! The cluster gauges a controller process exports: read from the datastore
//! just before each scrape (a few aggregate queries), so no writer has to
//! keep them in step and every controller reports the same values.

use stratus_db::Datastore;
use stratus_metrics::{Metrics, ScrapeHook};
use tracing::warn;

/// Refreshes `stratus_hosts`, `stratus_zombies` and
/// `stratus_storage_cleanup_pending` from the datastore at scrape time.
pub struct ClusterGauges {
    ds: Datastore,
}

impl ClusterGauges {
    /// Gauges read from `ds`.
    pub fn new(ds: Datastore) -> Self {
        Self { ds }
    }
}

#[async_trait::async_trait]
impl ScrapeHook for ClusterGauges {
    async fn refresh(&self, m: &Metrics) {
        match self.ds.service_list().await {
            Ok(services) => {
                let (mut up, mut down, mut forced) = (0, 0, 0);
                for s in &services {
                    if s.forced_down {
                        forced += 1;
                    } else if s.is_up() {
                        up += 1;
                    } else {
                        down += 1;
                    }
                }
                m.set_hosts(up, down, forced);
            }
            Err(e) => warn!(error = %e, "metrics: cannot count hosts; keeping the last values"),
        }
        if let Some((commits, _, _)) = self.ds.durability_counts() {
            m.set_db_commits(commits);
        }
        match self.ds.cluster_counts().await {
            Ok(c) => {
                m.set_zombies(c.zombies);
                m.set_cleanup_pending(c.cleanup_pending);
            }
            Err(e) => warn!(error = %e, "metrics: cannot count zombies and cleanups; keeping the last values"),
        }
    }
}
