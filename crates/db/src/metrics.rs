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

#[cfg(test)]
mod tests {
    use crate::{SET_ON_INSERT, ZombieRow};
    use std::sync::Arc;
    use stratus_types::{CleanupKind, ServerId, VolumeId};

    #[tokio::test]
    async fn counts_zombies_and_only_the_cleanups_not_done() {
        let (ds, _db) = crate::testing::fresh(Arc::new(stratus_types::SystemClock)).await;
        assert_eq!(ds.cluster_counts().await.expect("counts"), super::ClusterCounts::default());
        for host in ["h1", "h2"] {
            let z = ZombieRow {
                server_id: ServerId::new(),
                host: host.into(),
                vcpus: 1,
                ram_mb: 512,
                disk_gb: 1,
                reason: "host down".into(),
                created_at: SET_ON_INSERT,
            };
            ds.zombie_record(&z).await.expect("zombie");
        }
        for name in ["volume-a", "volume-b"] {
            let v = VolumeId::new();
            ds.cleanup_enqueue(CleanupKind::VolumeDelete, Some(&v), Some(name), None, None, "busy").await.expect("q");
        }
        let first = ds.cleanup_pending().await.expect("pending")[0].id;
        ds.cleanup_done(first).await.expect("done");
        let c = ds.cluster_counts().await.expect("counts");
        assert_eq!((c.zombies, c.cleanup_pending), (2, 1));
    }
}
