//! The two database backends, behind one set of typed queries.
//!
//! Every query is written once and compiled for SQLite and for PostgreSQL
//! (the [`crate::with_db!`] macro expands a method's body once per backend,
//! each with the backend's own sqlx driver, so rows and parameters keep
//! their native types; sqlx's `Any` driver cannot decode SQLite booleans).
//! Helpers that take a connection are written once inside
//! [`crate::per_backend!`], which emits a `sqlite` and a `postgres` copy; the
//! backend modules here re-export both sets, and a query body reaches them
//! as `dbk::…`.
//!
//! Isolation: SQLite has one writer connection, so every write transaction
//! is serialisable by construction, and every single statement is atomic.
//! PostgreSQL gives the same guarantee the same way: every multi-statement
//! write transaction (the check-then-write ones: quota, placement, address
//! allocation, operation start) first takes one transaction-level advisory
//! lock, so they run one at a time across every process, and each of their
//! statements (READ COMMITTED) sees what the previous holder committed;
//! single-statement writes (the compare-and-swaps) and reads run
//! concurrently. `SERIALIZABLE` with retries was tried first: with 32
//! creates at once in one project nearly every transaction lost the race
//! (each reads the quota count and the free addresses the others write) and
//! some ran out of retries. A body that still fails with a serialisation
//! error or a deadlock (SQLSTATE 40001/40P01) is run again, a bounded number
//! of times.

use crate::DbError;
use std::future::Future;

/// The connection pools of the backend in use.
#[derive(Clone, Debug)]
pub(crate) enum Pools {
    /// One writer connection and a pool of readers (WAL).
    Sqlite {
        /// The one connection every write goes through.
        write: sqlx::SqlitePool,
        /// Read-only connections.
        read: sqlx::SqlitePool,
        /// Group commit: every call waits until what it wrote or read is on
        /// disk (see `durability`).
        sync: std::sync::Arc<crate::durability::WalSync>,
        /// The group writer for the hot writes of the delete path (see
        /// `group`).
        group: std::sync::Arc<crate::group::Group>,
        /// Read-only connections for the delete path's hot reads, run on
        /// the caller's thread (see `direct_read`).
        direct: std::sync::Arc<crate::direct_read::Readers>,
    },
    /// One pool for reads and writes, and a small one for renewals.
    Postgres {
        /// Connections (READ COMMITTED; write transactions serialised by
        /// [`postgres::WRITER_LOCK`]).
        pool: sqlx::PgPool,
        /// Connections for lease and claim renewals only (host leases, the
        /// leader lease, operation claims): under load every connection of
        /// `pool` may be waiting for the writer lock, and a renewal stuck
        /// behind them would let a healthy host's lease or a live
        /// controller's claim lapse.
        urgent: sqlx::PgPool,
    },
}

/// How often a PostgreSQL body that lost a serialisation race is retried.
/// Hot spots (many creates in one project check one quota; every create
/// takes the lowest free address) make many racers; with full-jitter
/// backoff capped at [`BACKOFF_CAP_MS`] a loser waits at most a few
/// seconds in all before the error reaches the caller.
pub(crate) const MAX_RETRIES: u32 = 60;

/// Longest pause between two attempts.
const BACKOFF_CAP_MS: u64 = 100;

/// Give an async block a known output type, so that `?` inside it converts
/// into [`DbError`] (the compiler takes the block's output from this bound).
pub(crate) async fn once<T, F: Future<Output = Result<T, DbError>>>(f: F) -> Result<T, DbError> {
    f.await
}

/// Did PostgreSQL refuse this transaction only because a concurrent one
/// won (serialisation failure or deadlock), so that running it again is
/// right?
pub(crate) fn retryable(e: &DbError) -> bool {
    match e {
        DbError::Sqlx(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("40001") | Some("40P01")),
        _ => false,
    }
}

/// A pause before the next attempt: "full jitter" (a random time up to a
/// bound that doubles per attempt, capped), so that the racers spread out
/// instead of colliding again in step.
pub(crate) async fn backoff(attempt: u32) {
    let bound_ms = (1u64 << attempt.min(10)).min(BACKOFF_CAP_MS);
    let r = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let micros = r % (bound_ms * 1000 + 1);
    tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
}

/// Run `$body` (an expression of type `Result<T, DbError>`) on the backend
/// of `$ds`, with `$w` bound to the pool writes go to, `$r` to the pool
/// reads go to and `dbk` to the backend's module of helpers. On PostgreSQL
/// a body that lost a serialisation race runs again. `urgent` before the
/// closure: on PostgreSQL the body gets the small pool reserved for lease
/// and claim renewals (see [`Pools`]); on SQLite nothing changes.
#[macro_export]
#[doc(hidden)]
macro_rules! with_db {
    ($ds:expr, |$w:ident, $r:ident| $body:block) => {
        $crate::with_db!(@on $ds, pool, |$w, $r| $body)
    };
    ($ds:expr, urgent |$w:ident, $r:ident| $body:block) => {
        $crate::with_db!(@on $ds, urgent, |$w, $r| $body)
    };
    (@on $ds:expr, $pg:ident, |$w:ident, $r:ident| $body:block) => {
        match &$ds.pools {
            $crate::backend::Pools::Sqlite { write, read, sync, .. } => {
                #[allow(unused_imports)]
                use $crate::backend::sqlite as dbk;
                let ($w, $r) = (write, read);
                let _ = (&$w, &$r);
                let out = $crate::backend::once(async { $body }).await;
                // Nothing this call wrote or saw is acknowledged before it is on disk.
                sync.wait(write).await.and(out)
            }
            $crate::backend::Pools::Postgres { $pg: chosen, .. } => {
                #[allow(unused_imports)]
                use $crate::backend::postgres as dbk;
                let ($w, $r) = (chosen, chosen);
                let _ = (&$w, &$r);
                let mut attempt = 0u32;
                loop {
                    match $crate::backend::once(async { $body }).await {
                        Err(e) if attempt < $crate::backend::MAX_RETRIES && $crate::backend::retryable(&e) => {
                            attempt += 1;
                            $crate::backend::backoff(attempt).await;
                        }
                        other => break other,
                    }
                }
            }
        }
    };
}

/// Emit `$items` twice, in a `sqlite` and a `postgres` module of the calling
/// module, each seeing its backend's helpers as `dbk::…` (with `dbk::Conn`
/// and `dbk::Db` its connection and database types).
#[macro_export]
#[doc(hidden)]
macro_rules! per_backend {
    ($($item:item)*) => {
        pub(crate) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::backend::sqlite as dbk;
            $($item)*
        }
        pub(crate) mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::backend::postgres as dbk;
            $($item)*
        }
    };
}

/// SQLite: its types, its SQL dialect, and every helper's SQLite copy.
pub(crate) mod sqlite {
    pub(crate) use crate::actions::sqlite::*;
    pub(crate) use crate::aggregates::sqlite::*;
    pub(crate) use crate::claim::sqlite::*;
    pub(crate) use crate::flavors::sqlite::*;
    pub(crate) use crate::identity::sqlite::*;
    #[allow(unused_imports)]
    pub(crate) use crate::images::sqlite::*;
    pub(crate) use crate::notifications::sqlite::*;
    pub(crate) use crate::operations::sqlite::*;
    pub(crate) use crate::servers::sqlite::*;
    pub(crate) use crate::volume_snapshots::sqlite::*;
    pub(crate) use crate::volume_types::sqlite::*;
    pub(crate) use crate::volumes::sqlite::*;

    /// The database.
    pub(crate) type Db = sqlx::Sqlite;
    /// One connection.
    pub(crate) type Conn = sqlx::SqliteConnection;
    /// One row.
    pub(crate) type Row = sqlx::sqlite::SqliteRow;
    /// A pool of connections.
    pub(crate) type Pool = sqlx::SqlitePool;
    /// Row lock for a claim check: none (the one writer serialises writes).
    pub(crate) const FOR_SHARE: &str = "";
    /// The regular-expression match operator (`name REGEXP pattern`).
    pub(crate) const REGEX_MATCH: &str = "REGEXP";

    /// The sum of an integer column as a float that never overflows (SQLite's `TOTAL`).
    pub(crate) fn total(col: &str) -> String {
        format!("TOTAL({col})")
    }

    /// Begin a write transaction (the single writer serialises it); inside
    /// an operation's attempt it first checks the attempt's claim
    /// (`crate::claim`).
    pub(crate) async fn begin(pool: &sqlx::SqlitePool) -> Result<sqlx::Transaction<'static, Db>, crate::DbError> {
        let mut tx = pool.begin().await?;
        claim_check_tx(&mut tx).await?;
        Ok(tx)
    }

    /// [`begin`] without the claim check, for a transaction that checks the
    /// claim in its own first statement.
    pub(crate) async fn begin_unchecked(
        pool: &sqlx::SqlitePool,
    ) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        pool.begin().await
    }
}

/// PostgreSQL: its types, its SQL dialect, and every helper's PostgreSQL copy.
pub(crate) mod postgres {
    pub(crate) use crate::actions::postgres::*;
    pub(crate) use crate::aggregates::postgres::*;
    pub(crate) use crate::claim::postgres::*;
    pub(crate) use crate::flavors::postgres::*;
    pub(crate) use crate::identity::postgres::*;
    #[allow(unused_imports)]
    pub(crate) use crate::images::postgres::*;
    pub(crate) use crate::notifications::postgres::*;
    pub(crate) use crate::operations::postgres::*;
    pub(crate) use crate::servers::postgres::*;
    pub(crate) use crate::volume_snapshots::postgres::*;
    pub(crate) use crate::volume_types::postgres::*;
    pub(crate) use crate::volumes::postgres::*;

    /// The database.
    pub(crate) type Db = sqlx::Postgres;
    /// One connection.
    pub(crate) type Conn = sqlx::PgConnection;
    /// One row.
    pub(crate) type Row = sqlx::postgres::PgRow;
    /// A pool of connections.
    pub(crate) type Pool = sqlx::PgPool;
    /// Row lock for a claim check: an adopter's claim (an `UPDATE` of the
    /// operation row) waits until the checked transaction ends.
    pub(crate) const FOR_SHARE: &str = " FOR SHARE";
    /// See the SQLite twin.
    pub(crate) const REGEX_MATCH: &str = "~";

    /// See the SQLite twin: a float sum is never an overflow error.
    pub(crate) fn total(col: &str) -> String {
        format!("COALESCE(SUM({col}::float8), 0::float8)")
    }

    /// The advisory lock every write transaction takes: the PostgreSQL
    /// counterpart of SQLite's single writer ("STRATUS" in ASCII).
    pub(crate) const WRITER_LOCK: i64 = 0x0053_5452_4154_5553;

    /// Begin a write transaction: wait for [`WRITER_LOCK`] (released at
    /// commit or rollback), so that it runs alone among write transactions
    /// and its reads see every earlier one.
    pub(crate) async fn begin(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, Db>, crate::DbError> {
        let mut tx = begin_unchecked(pool).await?;
        claim_check_tx(&mut tx).await?;
        Ok(tx)
    }

    /// See the SQLite twin.
    pub(crate) async fn begin_unchecked(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITER_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}
