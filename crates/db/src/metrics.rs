//! Counts the metrics endpoint reads at scrape time: cheap aggregate
//! queries, so a scrape never lists the rows themselves.

use crate::{Datastore, DbError};

/// Cluster-wide counts an operator watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    /// Zombie records: deleted servers whose VM a host has not confirmed gone.
    pub zombies: i64,
    /// Storage cleanups (volume deletes, fence lifts) not done yet.
    pub cleanup_pending: i64,
}

impl Datastore {
    /// The zombie and pending-cleanup counts, in one round trip.
    pub async fn cluster_counts(&self) -> Result<ClusterCounts, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (zombies, cleanup_pending): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM zombies), (SELECT COUNT(*) FROM storage_cleanup WHERE done = FALSE)",
            )
            .fetch_one(rp)
            .await?;
            Ok(ClusterCounts { zombies, cleanup_pending })
        })
    }
}
