//! Fresh databases for tests, on the backend the environment picks.
//!
//! `STRATUS_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432`)
//! set: every test gets its own new PostgreSQL database on that server,
//! dropped when the guard goes. Unset: a SQLite file in a new temp dir. CI
//! runs the datastore suite both ways, so one suite proves both backends.

use crate::{Datastore, DbError};
use std::path::PathBuf;
use std::sync::Arc;
use stratus_types::Clock;

/// The environment variable that switches tests to PostgreSQL.
pub const POSTGRES_ENV: &str = "STRATUS_TEST_POSTGRES_URL";

/// Keeps a test database alive; removes it (temp dir, or PostgreSQL
/// database) when dropped.
pub struct TestDb {
    /// A scratch directory the test may use (also holds the SQLite file).
    pub dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// The scratch directory.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((server, name)) = self.postgres.take() {
            // Drop may run inside a runtime: use a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&format!("{server}/postgres")).await {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                                .execute(&pool)
                                .await;
                            pool.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A fresh, migrated database with `clock` and its guard. Panics when the
/// database cannot be made: a test that needs one fails loudly.
pub async fn fresh(clock: Arc<dyn Clock>) -> (Datastore, TestDb) {
    try_fresh(clock).await.unwrap_or_else(|e| panic!("cannot make a test database: {e}"))
}

async fn try_fresh(clock: Arc<dyn Clock>) -> Result<(Datastore, TestDb), DbError> {
    let dir = std::env::temp_dir().join(format!("stratus-db-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| DbError::Config(format!("temp dir: {e}")))?;
    match std::env::var(POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => {
            let server = server.trim_end_matches('/').to_string();
            let name = format!("stratus_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await?;
            sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&admin).await?;
            admin.close().await;
            let guard = TestDb { dir, postgres: Some((server.clone(), name.clone())) };
            let ds = Datastore::open_postgres_with_clock(&format!("{server}/{name}"), clock).await?;
            Ok((ds, guard))
        }
        _ => {
            let ds = Datastore::open_sqlite_with_clock(&dir.join("t.db"), clock).await?;
            Ok((ds, TestDb { dir, postgres: None }))
        }
    }
}
