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
//! is serialisable by construction. PostgreSQL runs every transaction at
//! `SERIALIZABLE` (set per connection), and a body that loses a
//! serialisation race (SQLSTATE 40001, or a deadlock, 40P01) is run again
//! from the start, a bounded number of times: the same guarantee the single
//! SQLite writer gives, with concurrent writers.

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
    },
    /// One pool for reads and writes.
    Postgres {
        /// Connections, each at `SERIALIZABLE`.
        pool: sqlx::PgPool,
    },
}

/// How often a PostgreSQL body that lost a serialisation race is retried.
pub(crate) const MAX_RETRIES: u32 = 20;

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

/// A short, growing pause before the next attempt, with jitter so that the
/// racers do not collide again in step.
pub(crate) async fn backoff(attempt: u32) {
    let base = 1u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// Run `$body` (an expression of type `Result<T, DbError>`) on the backend
/// of `$ds`, with `$w` bound to the pool writes go to, `$r` to the pool
/// reads go to and `dbk` to the backend's module of helpers. On PostgreSQL
/// a body that lost a serialisation race runs again.
#[macro_export]
#[doc(hidden)]
macro_rules! with_db {
    ($ds:expr, |$w:ident, $r:ident| $body:block) => {
        match &$ds.pools {
            $crate::backend::Pools::Sqlite { write, read } => {
                #[allow(unused_imports)]
                use $crate::backend::sqlite as dbk;
                let ($w, $r) = (write, read);
                let _ = (&$w, &$r);
                $crate::backend::once(async { $body }).await
            }
            $crate::backend::Pools::Postgres { pool } => {
                #[allow(unused_imports)]
                use $crate::backend::postgres as dbk;
                let ($w, $r) = (pool, pool);
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
    pub(crate) use crate::identity::sqlite::*;
    #[allow(unused_imports)]
    pub(crate) use crate::images::sqlite::*;
    pub(crate) use crate::notifications::sqlite::*;
    pub(crate) use crate::operations::sqlite::*;
    pub(crate) use crate::servers::sqlite::*;

    /// The database.
    pub(crate) type Db = sqlx::Sqlite;
    /// One connection.
    pub(crate) type Conn = sqlx::SqliteConnection;
    /// One row.
    pub(crate) type Row = sqlx::sqlite::SqliteRow;

    /// `instr` (SQLite) / `strpos` (PostgreSQL): 1-based position of a substring, 0 if absent.
    pub(crate) const STRPOS: &str = "instr";

    /// The sum of an integer column as a float that never overflows (SQLite's `TOTAL`).
    pub(crate) fn total(col: &str) -> String {
        format!("TOTAL({col})")
    }

    /// Begin a write transaction (the single writer serialises it).
    pub(crate) async fn begin(pool: &sqlx::SqlitePool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        pool.begin().await
    }
}

/// PostgreSQL: its types, its SQL dialect, and every helper's PostgreSQL copy.
pub(crate) mod postgres {
    pub(crate) use crate::actions::postgres::*;
    pub(crate) use crate::identity::postgres::*;
    #[allow(unused_imports)]
    pub(crate) use crate::images::postgres::*;
    pub(crate) use crate::notifications::postgres::*;
    pub(crate) use crate::operations::postgres::*;
    pub(crate) use crate::servers::postgres::*;

    /// The database.
    pub(crate) type Db = sqlx::Postgres;
    /// One connection.
    pub(crate) type Conn = sqlx::PgConnection;
    /// One row.
    pub(crate) type Row = sqlx::postgres::PgRow;

    /// See the SQLite twin.
    pub(crate) const STRPOS: &str = "strpos";

    /// See the SQLite twin: a float sum is never an overflow error.
    pub(crate) fn total(col: &str) -> String {
        format!("COALESCE(SUM({col}::float8), 0::float8)")
    }

    /// Begin a transaction (every connection is `SERIALIZABLE`).
    pub(crate) async fn begin(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        pool.begin().await
    }
}
