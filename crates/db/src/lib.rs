//! The datastore: the single source of truth of Stratus.
//!
//! Methods are named `<resource>_<verb>`. Every state change is a conditional
//! update that tells "updated" from "already so" from "conflict" ([`Cas`]), so
//! races (build vs delete, two deletes) resolve deterministically.
//!
//! Two backends run the same migrations and the same typed queries: SQLite
//! (the embedded default: all writes go through one connection, which
//! avoids `SQLITE_BUSY` and makes check-then-insert quota transactions
//! serialisable, while reads use a pool in WAL mode) and PostgreSQL (several
//! API and controller processes on one database; write transactions
//! serialised by one advisory lock, as SQLite's single writer serialises
//! them). See [`backend`].

mod actions;
mod aggregates;
pub(crate) mod backend;
mod checkpoint;
pub mod claim;
mod direct;
mod direct_read;
mod durability;
mod flavors;
mod group;
mod hot_sql;
mod identity;
mod identity_extras;
mod image_members;
mod image_tasks;
mod images;
mod keypairs;
mod leader;
mod metadefs;
mod metrics;
mod migrations;
mod notifications;
mod operations;
mod qos_specs;
mod quotas;
mod servers;
mod services;
mod sql;
mod volume_default_types;
mod volume_force_delete;
mod volume_group_snapshots;
mod volume_groups;
mod volume_messages;
mod volume_snapshots;
mod volume_transfers;
mod volume_types;
mod volumes;
mod zombies;

pub use actions::*;
pub use aggregates::*;
pub use flavors::*;
pub use identity::*;
pub use identity_extras::*;
pub use image_members::*;
pub use image_tasks::*;
pub use images::*;
pub use keypairs::*;
pub use leader::*;
pub use metadefs::*;
pub use metrics::*;
pub use migrations::*;
pub use notifications::*;
pub use operations::*;
pub use qos_specs::*;
pub use quotas::*;
pub use servers::*;
pub use services::*;
pub use volume_default_types::*;
pub use volume_group_snapshots::*;
pub use volume_groups::*;
pub use volume_messages::*;
pub use volume_snapshots::*;
pub use volume_transfers::*;
pub use volume_types::*;
pub use volumes::*;
pub use zombies::*;

use backend::Pools;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use stratus_types::{Clock, SystemClock};

/// Which kind of row an error is about, so callers can tell a missing
/// server from a missing flavor by matching, not by reading a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// `servers`.
    Server,
    /// `ports` (fixed IPs).
    Port,
    /// `volumes`.
    Volume,
    /// `volume_attachments`.
    Attachment,
    /// `images`.
    Image,
    /// `image_members` (a shared image offered to a project).
    ImageMember,
    /// `flavors`.
    Flavor,
    /// `services` (compute hosts).
    Service,
    /// `operations`.
    Operation,
    /// `instance_actions`.
    InstanceAction,
    /// `projects`.
    Project,
    /// `users`.
    User,
    /// `roles`.
    Role,
    /// `role_assignments`.
    RoleAssignment,
    /// `tokens`.
    Token,
    /// `key_pairs`.
    Keypair,
    /// `flavor_projects` (a private flavor shared with a project).
    FlavorAccess,
    /// `flavor_extra_specs`.
    FlavorExtraSpec,
    /// `volume_types`.
    VolumeType,
    /// `volume_type_projects` (a private volume type shared with a project).
    VolumeTypeAccess,
    /// `volume_type_extra_specs`.
    VolumeTypeExtraSpec,
    /// `volume_transfers`.
    VolumeTransfer,
    /// `qos_specs`.
    QosSpec,
    /// `volume_type_encryption`.
    Encryption,
    /// `group_types`.
    GroupType,
    /// `volume_groups`.
    VolumeGroup,
    /// `volume_messages`.
    VolumeMessage,
    /// `metadef_namespaces`.
    MetadefNamespace,
    /// `metadef_items` (objects, properties, tags, resource-type associations).
    MetadefItem,
    /// `image_tasks` (Glance's tasks: imports).
    ImageTask,
    /// `project_tags`.
    ProjectTag,
    /// `application_credentials`.
    AppCred,
    /// `volume_snapshots`.
    Snapshot,
    /// `volume_group_snapshots`.
    GroupSnapshot,
}

impl RowKind {
    /// The lower-case name used in error texts (`server`, `role assignment`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Port => "port",
            Self::Volume => "volume",
            Self::Attachment => "attachment",
            Self::Image => "image",
            Self::ImageMember => "image member",
            Self::GroupType => "group type",
            Self::VolumeGroup => "group",
            Self::VolumeMessage => "message",
            Self::MetadefNamespace => "metadata definition namespace",
            Self::MetadefItem => "metadata definition",
            Self::ImageTask => "task",
            Self::Flavor => "flavor",
            Self::Service => "service",
            Self::Operation => "operation",
            Self::InstanceAction => "instance action",
            Self::Project => "project",
            Self::User => "user",
            Self::Role => "role",
            Self::RoleAssignment => "role assignment",
            Self::Token => "token",
            Self::Keypair => "key pair",
            Self::FlavorAccess => "flavor access",
            Self::FlavorExtraSpec => "flavor extra spec",
            Self::VolumeType => "volume type",
            Self::VolumeTypeAccess => "volume type access",
            Self::VolumeTypeExtraSpec => "volume type extra spec",
            Self::VolumeTransfer => "volume transfer",
            Self::QosSpec => "qos specs",
            Self::Encryption => "volume type encryption",
            Self::ProjectTag => "project tag",
            Self::AppCred => "application credential",
            Self::Snapshot => "snapshot",
            Self::GroupSnapshot => "group snapshot",
        }
    }
}

impl std::fmt::Display for RowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the datastore.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row does not exist (or is deleted).
    #[error("{kind} not found")]
    NotFound {
        /// The table the row was looked up in.
        kind: RowKind,
        /// The id (or name, or key) that was looked up.
        id: String,
    },
    /// A uniqueness or state constraint refused the write.
    #[error("conflict: {detail}")]
    Conflict {
        /// The table whose constraint refused.
        kind: RowKind,
        /// What was refused, in words clients see (e.g. `image X already exists`).
        detail: String,
    },
    /// The project would exceed a quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// A stored value could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was named wrongly (an unsupported URL, a missing path).
    #[error("database configuration: {0}")]
    Config(String),
    /// The commits of a call could not be flushed to disk (the log could not
    /// be opened), so its result must not be acknowledged.
    #[error("database log not flushed: {0}")]
    NotFlushed(String),
    /// The group writer of SQLite (see `group`) could not take or answer a
    /// write (its thread could not start, or stopped); nothing is known to
    /// be written.
    #[error("database writer: {0}")]
    Writer(String),
    /// The group writer's own SQLite connection failed (see `group`).
    #[error("database error: {0}")]
    Direct(#[from] rusqlite::Error),
    /// A write on behalf of an operation was refused: the attempt no longer
    /// holds the claim it started with (another controller adopted the
    /// operation); nothing was written (see [`claim`]).
    #[error("the claim on operation {op} was lost; nothing written")]
    ClaimLost {
        /// The operation.
        op: String,
    },
}

impl DbError {
    /// A [`DbError::NotFound`] for the row `id` of `kind`.
    pub fn not_found(kind: RowKind, id: impl std::fmt::Display) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }

    /// A [`DbError::Conflict`] on `kind` described by `detail`.
    pub fn conflict(kind: RowKind, detail: impl Into<String>) -> Self {
        Self::Conflict { kind, detail: detail.into() }
    }
}

/// Outcome of a compare-and-swap state write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cas {
    /// The row was in the expected state and now has the new one.
    Updated,
    /// The row already had the target state (an idempotent repeat).
    AlreadySo,
    /// The row was in some other state; nothing changed.
    Conflict,
}

/// Format a time the way every timestamp column stores it: fixed-width UTC,
/// so lexicographic order is time order on every backend.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// What a caller puts in a row's timestamp columns when it builds a row to
/// insert: the datastore stamps them itself from its clock (the single
/// authority on time), so the value given is never stored.
pub const SET_ON_INSERT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// Parse a stored timestamp.
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// A timestamp column as stored (fixed-width RFC 3339 text), decoded on
/// every backend through its text type: PostgreSQL's driver decodes
/// `DateTime` only from `timestamptz`, and the columns stay text so that the
/// same queries compare them on both backends.
#[derive(Debug)]
pub struct TsText(String);

impl<DB: sqlx::Database> sqlx::Type<DB> for TsText
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for TsText
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self(<String as sqlx::Decode<'r, DB>>::decode(value)?))
    }
}

impl TryFrom<TsText> for DateTime<Utc> {
    type Error = DbError;
    fn try_from(t: TsText) -> Result<Self, DbError> {
        parse_ts(&t.0)
    }
}

/// A nullable timestamp column; see [`TsText`].
#[derive(Debug)]
pub struct OptTsText(Option<String>);

impl<DB: sqlx::Database> sqlx::Type<DB> for OptTsText
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for OptTsText
where
    Option<String>: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self(<Option<String> as sqlx::Decode<'r, DB>>::decode(value)?))
    }
}

impl TryFrom<OptTsText> for Option<DateTime<Utc>> {
    type Error = DbError;
    fn try_from(t: OptTsText) -> Result<Self, DbError> {
        t.0.as_deref().map(parse_ts).transpose()
    }
}

/// Which database a `--database-url` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (or a bare path): the embedded default.
    Sqlite(std::path::PathBuf),
    /// `postgres://…` / `postgresql://…`.
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, DbError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_string()))
        } else if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::Config("sqlite:// needs a file path".into()));
            }
            Ok(Self::Sqlite(path.into()))
        } else if s.contains("://") {
            Err(DbError::Config(format!(
                "unsupported database URL scheme in {:?} (sqlite:// or postgres://)",
                redact_url(s)
            )))
        } else {
            Ok(Self::Sqlite(s.into()))
        }
    }
}

/// A database URL fit for logs: the password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Datastore {
    pools: Pools,
    clock: Arc<dyn Clock>,
}

impl Datastore {
    /// Open the database a URL names (migrating it).
    pub async fn open(url: &DatabaseUrl) -> Result<Self, DbError> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// As [`Datastore::open`], with an injected clock (tests).
    pub async fn open_with_clock(url: &DatabaseUrl, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        match url {
            DatabaseUrl::Sqlite(path) => Self::open_sqlite_with_clock(path, clock).await,
            DatabaseUrl::Postgres(url) => Self::open_postgres_with_clock(url, clock).await,
        }
    }

    /// Open (creating if needed) the SQLite database at `path` and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        Self::open_sqlite_with_clock(path, Arc::new(SystemClock)).await
    }

    /// As [`Datastore::open_sqlite`], with an injected clock (tests).
    pub async fn open_sqlite_with_clock(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        Self::open_sqlite_checkpointing(path, clock, checkpoint::CHECK_EVERY).await
    }

    /// As [`Datastore::open_sqlite_with_clock`], the log checkpointed at
    /// most every `checkpoint_every` (tests).
    pub(crate) async fn open_sqlite_checkpointing(
        path: &Path,
        clock: Arc<dyn Clock>,
        checkpoint_every: Duration,
    ) -> Result<Self, DbError> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL: commits do not flush inside the writer; `durability`
            // flushes them in groups before any call returns (FULL's guarantee).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Nova's server name filter is a regular expression (REGEXP).
            .with_regexp()
            .busy_timeout(Duration::from_secs(10))
            // The log is checkpointed by a thread of its own (`checkpoint`);
            // a commit checkpoints only if that thread fell far behind.
            .pragma("wal_autocheckpoint", checkpoint::SAFETY_NET_PAGES.to_string());
        // Commits are counted on the writer connection (every connection
        // the pool opens for it) for the group commit of `durability`.
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = commits.clone();
        // No ping before each acquire (sqlx's default): a SQLite connection
        // is a file handle that cannot go stale, and each ping is a round
        // trip to the connection's thread; the group writer and the flush
        // acquire the writer once per group.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let counter = counter.clone();
                Box::pin(async move {
                    conn.lock_handle().await?.set_commit_hook(move || {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        true
                    });
                    Ok(())
                })
            })
            .connect_with(opts.clone())
            .await?;
        let sync = Arc::new(durability::WalSync::new(path, commits));
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(opts.read_only(true))
            .await?;
        let group = Arc::new(group::Group::start(path, write.clone(), sync.clone())?);
        checkpoint::start(path, Arc::downgrade(&sync), checkpoint_every)?;
        let direct = Arc::new(direct_read::Readers::new(path));
        let pools = Pools::Sqlite { write, read, sync, group, direct };
        let ds = Self { pools, clock };
        ds.durable().await?;
        Ok(ds)
    }

    /// Connect to PostgreSQL at `url` and migrate the database (several
    /// processes may start at once: sqlx's migrator holds an advisory lock).
    pub async fn open_postgres(url: &str) -> Result<Self, DbError> {
        Self::open_postgres_with_clock(url, Arc::new(SystemClock)).await
    }

    /// As [`Datastore::open_postgres`], with an injected clock (tests).
    pub async fn open_postgres_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let opts = PgConnectOptions::from_str(url)?
            // An acknowledged commit is on disk (the server's default, made
            // explicit). Isolation: see `backend`.
            .options([("default_transaction_isolation", "read\\ committed"), ("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        let urgent =
            PgPoolOptions::new().max_connections(3).acquire_timeout(Duration::from_secs(10)).connect_with(opts).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pools: Pools::Postgres { pool, urgent }, clock })
    }

    /// `sqlite` or `postgres`: for logs and for the few places that differ.
    pub fn backend_name(&self) -> &'static str {
        match self.pools {
            Pools::Sqlite { .. } => "sqlite",
            Pools::Postgres { .. } => "postgres",
        }
    }

    /// Close every connection (a process that is about to exit, or a test
    /// that drops its database).
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read, sync, .. } => {
                // Closing: a caller that needed the flush already waited for it.
                let _ = sync.wait(write).await;
                write.close().await;
                read.close().await;
            }
            Pools::Postgres { pool, urgent } => {
                pool.close().await;
                urgent.close().await;
            }
        }
    }

    /// Return once every commit made so far is on disk (on SQLite a shared
    /// flush of the log, see `durability`; on PostgreSQL every commit already
    /// is: `synchronous_commit=on`). Every datastore call does this before it
    /// returns; a caller needs it only after writing through other means.
    pub async fn durable(&self) -> Result<(), DbError> {
        match &self.pools {
            Pools::Sqlite { write, sync, .. } => sync.wait(write).await,
            Pools::Postgres { .. } => Ok(()),
        }
    }

    /// SQLite's group commit so far: (commits, commits on disk, flushes);
    /// `None` on PostgreSQL.
    pub fn durability_counts(&self) -> Option<(u64, u64, u64)> {
        match &self.pools {
            Pools::Sqlite { sync, .. } => Some(sync.counts()),
            Pools::Postgres { .. } => None,
        }
    }

    /// The clock every timestamp written here comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn now(&self) -> String {
        ts(self.clock.now())
    }
}

/// Is this sqlx error a uniqueness violation? (Portable across backends.)
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation(),
        _ => false,
    }
}

pub mod testing;

#[cfg(test)]
pub(crate) mod testutil {
    use crate::Datastore;
    pub use crate::testing::{TestDb as TempDir, fresh};

    /// A fresh database (see [`crate::testing`]), kept alive by the guard.
    pub async fn store() -> (Datastore, TempDir) {
        fresh(std::sync::Arc::new(stratus_types::SystemClock)).await
    }
}

#[cfg(test)]
mod ts_tests {
    use super::*;
    use crate::testutil::store;
    use chrono::TimeZone;

    /// Timestamp columns are decoded into `DateTime<Utc>` through [`TsText`]; the text
    /// written by [`ts`] must come back as the same instant, and formatting
    /// the decoded value again must give the stored text byte for byte (SQL
    /// compares the text with `<`, so the format must never drift).
    #[tokio::test]
    async fn stored_text_round_trips_through_datetime() {
        let (ds, _d) = store().await;
        let micros = Utc.with_ymd_and_hms(2026, 11, 28, 23, 41, 22).single().expect("t")
            + chrono::Duration::microseconds(123_456);
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("t");
        let token = |hash: &str, issued, expires| TokenRow {
            token_hash: hash.into(),
            user_id: "u".into(),
            project_id: "p".into(),
            audit_id: "a".into(),
            issued_at: issued,
            expires_at: expires,
            revoked: false,
            app_cred_id: None,
            system_scope: false,
        };
        ds.token_insert(&token("h1", micros, whole)).await.expect("insert");
        let (issued, expires): (String, String) = crate::with_db!(ds, |wp, rp| {
            Ok(sqlx::query_as("SELECT issued_at, expires_at FROM tokens WHERE token_hash = 'h1'").fetch_one(rp).await?)
        })
        .expect("raw");
        assert_eq!(issued, "2026-11-28T23:41:22.123456Z");
        assert_eq!(expires, "2026-01-02T03:04:05.000000Z");
        let row = ds.token_get("h1").await.expect("get");
        assert_eq!(row.issued_at, micros);
        assert_eq!(row.expires_at, whole);
        assert_eq!(ts(row.issued_at), issued);
        assert_eq!(ts(row.expires_at), expires);
    }

    /// Sub-microsecond precision is dropped when stored, never rounded up
    /// past the text order.
    #[tokio::test]
    async fn nanoseconds_are_truncated_to_the_stored_micros() {
        let (ds, _d) = store().await;
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 23, 41, 22).single().expect("t")
            + chrono::Duration::nanoseconds(999_999_999);
        let back: TsText =
            crate::with_db!(ds, |wp, rp| { Ok(sqlx::query_scalar("SELECT $1").bind(ts(t)).fetch_one(rp).await?) })
                .expect("decode");
        let back = DateTime::<Utc>::try_from(back).expect("a timestamp");
        assert_eq!(ts(back), "2026-11-28T23:41:22.999999Z");
        assert_eq!(back, t - chrono::Duration::nanoseconds(999));
    }

    /// The decoder refuses text that is not a timestamp instead of
    /// defaulting it.
    #[tokio::test]
    async fn garbage_is_a_decode_error() {
        let (ds, _d) = store().await;
        let r: TsText = crate::with_db!(ds, |wp, rp| { Ok(sqlx::query_scalar("SELECT 'soon'").fetch_one(rp).await?) })
            .expect("text");
        let r = DateTime::<Utc>::try_from(r);
        assert!(r.is_err(), "{r:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::store;
    use super::*;

    #[tokio::test]
    async fn not_found_names_the_table_and_the_row() {
        let (ds, _d) = store().await;
        let nope = stratus_types::ServerId::new();
        match ds.server_get(&nope).await {
            Err(DbError::NotFound { kind: RowKind::Server, id }) => assert_eq!(id, nope.to_string()),
            other => panic!("expected a missing server, got {other:?}"),
        }
        match ds.flavor_find("m1.nope").await {
            Err(e @ DbError::NotFound { kind: RowKind::Flavor, .. }) => assert_eq!(e.to_string(), "flavor not found"),
            other => panic!("expected a missing flavor, got {other:?}"),
        }
        assert_eq!(DbError::not_found(RowKind::RoleAssignment, "u/p/r").to_string(), "role assignment not found");
        assert_eq!(
            DbError::conflict(RowKind::Image, "image i already exists").to_string(),
            "conflict: image i already exists"
        );
    }
}
