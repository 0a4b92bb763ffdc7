//! Fencing tokens for operation claims: a controller's writes on behalf of
//! an operation take effect only while it still holds the claim it started
//! the attempt with.
//!
//! Why: a controller that stalls (SIGSTOP, a long GC-like pause, a VM
//! migration of the controller itself) past its claim's expiry loses the
//! operation to another controller, which adopts it and may finish it. When
//! the stalled one resumes it does not know that, and every write it was
//! about to make (record a zombie, enqueue a fence lift, mark a volume
//! `deleting`) would act on a world that has moved on. Each claim therefore
//! carries a token, the operation's `attempts` counter after the claim (it
//! grows with every claim, so an older attempt of the same controller is
//! fenced too), and the runner runs the handler inside [`scope`]: every
//! write transaction the datastore opens in that task first checks, in the
//! same transaction, that the operation is still `running` under this
//! worker and token ([`DbError::ClaimLost`] otherwise), and single-statement
//! writes run in such a transaction too. On PostgreSQL the check reads the
//! operation row `FOR SHARE`, so an adopter's claim waits for the checked
//! write to commit and never interleaves with it; on SQLite the one writer
//! serialises them.
//!
//! Effects outside the database (storage fences and deletes, commands to
//! hosts) cannot check the token themselves; callers ask
//! [`crate::Datastore::claim_held`] right before each, so a resumed
//! controller stops at its next effect, and they record their intent in a
//! checked write before the effect where the order allows it.

use crate::DbError;
use stratus_types::OperationId;

/// The claim an attempt runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The operation.
    pub op: OperationId,
    /// The controller holding it.
    pub worker: String,
    /// The operation's `attempts` after this claim: the fencing token.
    pub token: i64,
}

tokio::task_local! {
    static CLAIM: Claim;
}

/// Run `fut` with every datastore write it makes fenced by `claim`.
pub async fn scope<F: std::future::Future>(claim: Claim, fut: F) -> F::Output {
    CLAIM.scope(claim, fut).await
}

/// The claim the current task runs under, if any.
pub fn current() -> Option<Claim> {
    CLAIM.try_with(Clone::clone).ok()
}

/// The statement that finds the claimed operation; `$1` op, `$2` worker, `$3` token.
pub(crate) fn check_sql(lock: &str) -> String {
    format!(
        "SELECT 1 FROM operations WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND state = {running}{lock}",
        running = crate::sql::lit(stratus_types::OpState::Running)
    )
}

crate::per_backend! {
/// Check, inside the transaction `conn` runs, that the current task's claim
/// (if it runs under one) still holds; [`DbError::ClaimLost`] if not.
pub(crate) async fn claim_check_tx(conn: &mut dbk::Conn) -> Result<(), DbError> {
    let Some(c) = crate::claim::current() else { return Ok(()) };
    let found: Option<(i32,)> = sqlx::query_as(&crate::claim::check_sql(dbk::FOR_SHARE))
        .bind(c.op)
        .bind(&c.worker)
        .bind(c.token)
        .fetch_optional(&mut *conn)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(DbError::ClaimLost { op: c.op.to_string() }),
    }
}

/// A transaction whose claim is checked, when the current task runs under
/// one; `None` outside any attempt (the statement then runs on its own).
/// No writer lock on PostgreSQL: the check's row lock orders it against an
/// adopter's claim, and a single statement needs no more.
async fn begin_claimed(pool: &dbk::Pool) -> Result<Option<sqlx::Transaction<'static, dbk::Db>>, DbError> {
    if crate::claim::current().is_none() {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    claim_check_tx(&mut tx).await?;
    Ok(Some(tx))
}

/// Run one write statement: directly, or, inside an operation's attempt, in
/// a transaction that first checks the attempt's claim.
pub(crate) async fn exec<'q>(
    pool: &dbk::Pool,
    q: sqlx::query::Query<'q, dbk::Db, <dbk::Db as sqlx::Database>::Arguments<'q>>,
) -> Result<<dbk::Db as sqlx::Database>::QueryResult, DbError> {
    let Some(mut tx) = begin_claimed(pool).await? else { return Ok(q.execute(pool).await?) };
    let r = q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(r)
}

/// [`exec`] for a statement that returns at most one row (`RETURNING`).
pub(crate) async fn fetch_optional<'q, T>(
    pool: &dbk::Pool,
    q: sqlx::query::QueryAs<'q, dbk::Db, T, <dbk::Db as sqlx::Database>::Arguments<'q>>,
) -> Result<Option<T>, DbError>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, dbk::Row>,
{
    let Some(mut tx) = begin_claimed(pool).await? else { return Ok(q.fetch_optional(pool).await?) };
    let r = q.fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    Ok(r)
}
}

impl crate::Datastore {
    /// `Ok` when the current task runs under no claim or still holds its
    /// claim; [`DbError::ClaimLost`] otherwise. Asked right before an
    /// effect outside the database (a storage fence, a command to a host),
    /// which cannot check the token itself.
    pub async fn claim_held(&self) -> Result<(), DbError> {
        let Some(c) = current() else { return Ok(()) };
        crate::with_db!(self, |wp, rp| {
            let found: Option<(i32,)> =
                sqlx::query_as(&check_sql("")).bind(c.op).bind(&c.worker).bind(c.token).fetch_optional(rp).await?;
            found.map(|_| ()).ok_or_else(|| DbError::ClaimLost { op: c.op.to_string() })
        })
    }
}
