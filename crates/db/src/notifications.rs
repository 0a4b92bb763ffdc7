//! The notification outbox: versioned notifications are written once (the
//! dedup key is unique) and published on the bus by a relay afterwards.

use crate::group::Lane;
use crate::{Datastore, DbError};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::ServerId;

/// The relay's read. The partial index `notifications_unpublished`
/// (migration 0076) answers it, so it costs what is waiting, not the whole
/// history: without the index every call walked every published row, each
/// relay poll, five times a second when idle.
const PENDING_SQL: &str = "SELECT id, dedup_key, event_type, publisher_id, payload, created_at FROM notifications WHERE published_at IS NULL ORDER BY id LIMIT $1";

/// A notification waiting in (or published from) the outbox.
#[derive(Clone, Debug, FromRow)]
pub struct NotificationRow {
    /// Sequence number.
    pub id: i64,
    /// Unique key, e.g. `<server>:<op>:instance.delete.end`.
    pub dedup_key: String,
    /// `instance.delete.start`, ...
    pub event_type: String,
    /// `nova-compute:compute-1`, `nova-api:...`.
    pub publisher_id: String,
    /// Versioned payload JSON.
    pub payload: String,
    /// When recorded.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

/// A notification to record (in the same transaction as the change it reports).
#[derive(Clone, Debug)]
pub struct NewNotification {
    /// Unique key: recording twice is a no-op.
    pub dedup_key: String,
    /// `instance.delete.end`, ...
    pub event_type: String,
    /// Publisher.
    pub publisher_id: String,
    /// Versioned payload JSON.
    pub payload: String,
}

crate::per_backend! {
pub(crate) async fn notification_insert_tx(
    conn: &mut dbk::Conn,
    n: &NewNotification,
    now: &str,
) -> Result<(), DbError> {
    sqlx::query(crate::hot_sql::NOTIFICATION_INSERT)
        .bind(&n.dedup_key).bind(&n.event_type).bind(&n.publisher_id).bind(&n.payload).bind(now)
        .execute(&mut *conn).await?;
    Ok(())
}
}

impl Datastore {
    /// Record a notification once; returns `false` if this key was already recorded.
    pub async fn notification_record(
        &self,
        dedup_key: &str,
        event_type: &str,
        publisher_id: &str,
        payload: &str,
    ) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query("INSERT INTO notifications (dedup_key, event_type, publisher_id, payload, created_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (dedup_key) DO NOTHING")
            .bind(dedup_key).bind(event_type).bind(publisher_id).bind(payload).bind(self.now())
            ).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Unpublished notifications, oldest first.
    pub async fn notification_pending(&self, limit: i64) -> Result<Vec<NotificationRow>, DbError> {
        crate::with_db!(self, |wp, rp| { Ok(sqlx::query_as(PENDING_SQL).bind(limit).fetch_all(rp).await?) })
    }

    /// Mark notifications published.
    pub async fn notification_mark_published(&self, ids: &[i64]) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        // On SQLite in the group writer's next transaction, as the claims:
        // a commit by another connection would drop the group writer's
        // page cache, and the relay marks a batch every few milliseconds
        // during a burst.
        if let crate::backend::Pools::Sqlite { write, sync, group, .. } = &self.pools {
            let p = crate::direct::Published {
                now: self.now(),
                ids_json: serde_json::to_string(ids).map_err(|e| DbError::Corrupt(format!("notification ids: {e}")))?,
            };
            let marked = group.run(Lane::Background, p, crate::direct::mark_published).await;
            return sync.wait(write).await.and(marked);
        }
        crate::with_db!(self, |wp, rp| {
            let mut q: sqlx::QueryBuilder<dbk::Db> =
                sqlx::QueryBuilder::new("UPDATE notifications SET published_at = ");
            q.push_bind(self.now()).push(" WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            q.push(")");
            dbk::exec(wp, q.build()).await?;
            Ok(())
        })
    }

    /// Notifications about one server (tests, audit), oldest first.
    pub async fn notification_list_for_server(&self, server_id: &ServerId) -> Result<Vec<NotificationRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT id, dedup_key, event_type, publisher_id, payload, created_at FROM notifications WHERE dedup_key LIKE $1 ORDER BY id")
            .bind(format!("{server_id}:%")).fetch_all(rp).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Datastore;
    use crate::testutil::store;

    /// The outbox hands out unpublished rows oldest first, up to the limit;
    /// once marked they are not handed out again, and marking twice (a
    /// relay retrying after a lost answer) changes nothing.
    #[tokio::test]
    async fn published_notifications_leave_the_pending_list() {
        let (ds, _d) = store().await;
        for k in ["a", "b", "c"] {
            assert!(ds.notification_record(k, "instance.delete.end", "nova-api", "{}").await.expect("record"));
        }
        let keys = |rows: &[super::NotificationRow]| rows.iter().map(|r| r.dedup_key.clone()).collect::<Vec<_>>();
        let pending = ds.notification_pending(500).await.expect("pending");
        assert_eq!(keys(&pending), ["a", "b", "c"]);
        assert_eq!(keys(&ds.notification_pending(2).await.expect("pending")), ["a", "b"]);
        let first_two: Vec<i64> = pending.iter().take(2).map(|r| r.id).collect();
        ds.notification_mark_published(&first_two).await.expect("mark");
        assert_eq!(keys(&ds.notification_pending(500).await.expect("pending")), ["c"]);
        ds.notification_mark_published(&first_two).await.expect("mark again");
        ds.notification_mark_published(&[]).await.expect("mark none");
        assert_eq!(keys(&ds.notification_pending(500).await.expect("pending")), ["c"]);
    }

    /// SQLite's plan of `sql` (one `EXPLAIN QUERY PLAN` detail per line).
    async fn plan(ds: &Datastore, sql: &str) -> Vec<String> {
        let crate::backend::Pools::Sqlite { read, .. } = &ds.pools else { panic!("sqlite") };
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}")).bind(500_i64).fetch_all(read).await.expect("plan");
        rows.into_iter().map(|r| r.3).collect()
    }

    /// The relay's read of the outbox goes through the partial index of
    /// unpublished rows, never a scan of the published history (which grew
    /// by four rows per server lifecycle and was walked on every poll).
    #[tokio::test]
    async fn the_relay_reads_the_unpublished_rows_without_walking_the_history() {
        let dir = std::env::temp_dir().join(format!("stratus-outbox-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ds = Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        let p = plan(&ds, super::PENDING_SQL).await;
        assert!(p.iter().any(|d| d.contains("notifications_unpublished")), "{p:?}");
        assert!(!p.iter().any(|d| d.starts_with("SCAN notifications") && !d.contains("INDEX")), "{p:?}");
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
