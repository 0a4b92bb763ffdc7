//! The metrics of a Stratus process: one Prometheus registry and the typed
//! metric families every crate records through.
//!
//! Crates never name a metric or a label as a string: they call a typed
//! method of [`Metrics`] (`deleted(DeletePath::Down)`,
//! `operation_finished(kind, outcome, took)`), so a family's name, help,
//! labels and buckets live here, once, next to what an operator reads from
//! them. Every series of a closed label set (delete paths, fence kinds, host
//! states) exists from the start at zero, so `rate()` and alerts work before
//! the first event.
//!
//! A [`Metrics`] is a cheap handle. The binary records into the
//! process-wide one ([`Metrics::process`], the default of every component)
//! and serves it at `/metrics`; a test gives the components it checks a
//! fresh one ([`Metrics::new`]), so tests running side by side do not see
//! each other's counts. Gauges that are cheap to read from the datastore
//! are refreshed by [`ScrapeHook`]s just before each scrape instead of being
//! kept in step by every writer.

pub mod text;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use stratus_types::OpKind;
use stratus_types::agent::CommandKind;

/// A closed set of label values, each with its fixed spelling.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value (their series are created at zero up front).
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The label value as scraped.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
                std::fmt::Write::write_str(e, self.as_str())
            }
        }
    };
}

label_values!(
    /// The path a server delete took, and why (the delete contract's
    /// decision tree): whether the host's agent destroyed the VM or the
    /// controller deleted on its own, fenced, leaving a zombie.
    DeletePath {
        /// The host's lease was valid and its agent destroyed the VM.
        Remote => "remote",
        /// Nobody answered on the host's command subject (agent process gone).
        NoResponder => "no_responder",
        /// The agent did not acknowledge, or not finish, within its deadline.
        Deadline => "deadline",
        /// The agent refused the command (a stale epoch it did not rejoin from).
        Refused => "refused",
        /// The host ran the terminate and it failed.
        HostFailed => "host_failed",
        /// The bus could not carry the command.
        BusDown => "bus_down",
        /// The host's lease had lapsed.
        Down => "down",
        /// An operator had forced the host down.
        ForcedDown => "forced_down",
        /// The server's host has no service record.
        UnknownHost => "unknown_host",
        /// The server was never scheduled: no VM anywhere.
        NeverScheduled => "never_scheduled",
        /// The server was shelved and offloaded: no VM anywhere.
        ShelvedOffloaded => "shelved_offloaded",
    }
);

label_values!(
    /// How an operation ended.
    OpOutcome {
        /// It finished (a delete: the server is gone).
        Done => "done",
        /// It failed for good (the server records the fault).
        Failed => "failed",
    }
);

label_values!(
    /// A compute host's state as the scheduler and the delete path see it.
    HostState {
        /// Lease valid: gets new servers, deletes go to its agent.
        Up => "up",
        /// Lease lapsed: deletes on it go local (zombies, fences).
        Down => "down",
        /// Forced down by an operator: down whatever its lease says.
        ForcedDown => "forced_down",
    }
);

label_values!(
    /// Who fenced a VM off its storage.
    FenceKind {
        /// The controller fenced a storage client (blocklist or generation
        /// bump) during a local delete or an evacuation.
        Storage => "storage",
        /// A host watchdog paused and killed a VM whose lease it could not
        /// prove (reported by the host; counted once per server action).
        SelfFence => "self",
    }
);

label_values!(
    /// Which API a request went to (its path's first segment).
    Api {
        /// `/identity`.
        Identity => "identity",
        /// `/compute`.
        Compute => "compute",
        /// `/image`.
        Image => "image",
        /// `/volume`.
        Volume => "volume",
        /// `/stratus` (Stratus's admin endpoints).
        Admin => "stratus",
        /// `/metrics`.
        Metrics => "metrics",
        /// Anything else (answered 404).
        Other => "other",
    }
);

impl Api {
    /// The API of a request path.
    pub fn of_path(path: &str) -> Self {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        match first {
            "identity" => Self::Identity,
            "compute" => Self::Compute,
            "image" => Self::Image,
            "volume" => Self::Volume,
            "stratus" => Self::Admin,
            "metrics" => Self::Metrics,
            _ => Self::Other,
        }
    }
}

label_values!(
    /// The class of an HTTP status.
    StatusClass {
        /// 1xx.
        Informational => "1xx",
        /// 2xx.
        Success => "2xx",
        /// 3xx.
        Redirection => "3xx",
        /// 4xx: the caller's fault (including 401, 403, 404).
        ClientError => "4xx",
        /// 5xx: ours.
        ServerError => "5xx",
    }
);

impl StatusClass {
    /// The class of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            0..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }
}

label_values!(
    /// What a compute agent's lease renewal got.
    LeaseRenewal {
        /// Extended.
        Renewed => "renewed",
        /// Refused: the lease had lapsed or the epoch is stale; the agent rejoins.
        MustRejoin => "must_rejoin",
        /// No answer (no controller, or the bus is down).
        Failed => "failed",
    }
);

label_values!(
    /// How a command ended on a compute agent.
    CommandOutcome {
        /// Done.
        Ok => "ok",
        /// The driver failed it.
        Failed => "failed",
        /// Refused before running (stale epoch, lapsed lease, unknown generation).
        Refused => "refused",
    }
);

/// An operation kind as a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Kind(OpKind);

impl EncodeLabelValue for Kind {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        std::fmt::Write::write_str(e, self.0.as_str())
    }
}

/// An agent command's name as a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Command(&'static str);

impl EncodeLabelValue for Command {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        std::fmt::Write::write_str(e, self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: DeletePath,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    kind: Kind,
    outcome: OpOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    state: HostState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FenceLabels {
    kind: FenceKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaderLabels {
    holder: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    api: Api,
    status_class: StatusClass,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: Api,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenewalLabels {
    result: LeaseRenewal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: Command,
    outcome: CommandOutcome,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Operations take from milliseconds (a power action) to minutes (a
/// volume-backed boot, a delete that waits out a deadline): 10 ms .. ~11 min.
fn operation_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

/// API requests: 1 ms .. ~33 s (an image upload can take longer: +Inf).
fn http_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// A family exported only once this process set it: the gauges only some
/// processes own (cluster state on controllers, the NATS link on NATS
/// users). Elsewhere a constant 0 would read as "no host is up" or "NATS
/// is down" to an alert; absent, it reads as "not known here".
#[derive(Debug)]
struct Owned<M> {
    name: &'static str,
    help: &'static str,
    metric: M,
    set: Arc<AtomicBool>,
}

impl<M: EncodeMetric + std::fmt::Debug + Send + Sync + 'static> Collector for Owned<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if !self.set.load(Ordering::Relaxed) {
            return Ok(());
        }
        let e = encoder.encode_descriptor(self.name, self.help, None, self.metric.metric_type())?;
        self.metric.encode(e)
    }
}

/// Refreshes gauges read from elsewhere (the datastore) just before a scrape.
#[async_trait::async_trait]
pub trait ScrapeHook: Send + Sync + 'static {
    /// Set the gauges this hook owns on `metrics`. A failure is the hook's
    /// to log; the scrape goes on with the values last set.
    async fn refresh(&self, metrics: &Metrics);
}

/// What a scrape is encoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for first).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (what `curl` and older scrapers get).
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// it, else the classic text format every scraper reads.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The registry of one process (or one test) and its metric families.
/// Cloning shares them.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    deletes: Family<PathLabels, Counter>,
    operation_duration: Histograms<OpLabels>,
    hosts: Family<HostLabels, Gauge>,
    host_lease_expirations: Counter,
    host_joins: Counter,
    zombies: Gauge,
    cleanup_pending: Gauge,
    db_commits: Gauge,
    fences: Family<FenceLabels, Counter>,
    fence_failures: Counter,
    leader: Family<LeaderLabels, Gauge>,
    nats_reconnects: Counter,
    nats_connected: Gauge,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<ApiLabels>,
    agent_renewals: Family<RenewalLabels, Counter>,
    agent_commands: Family<CommandLabels, Counter>,
    agent_reaped: Counter,
    /// Whether this process set the cluster gauges (hosts, zombies, cleanups).
    cluster_owned: Arc<AtomicBool>,
    /// Whether this process has a NATS connection.
    nats_owned: Arc<AtomicBool>,
    hooks: Mutex<Vec<Arc<dyn ScrapeHook>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every family registered (tests use one each).
    pub fn new() -> Self {
        let mut r = Registry::default();
        let deletes = Family::<PathLabels, Counter>::default();
        r.register(
            "stratus_deletes",
            "Server deletes by the path taken, counted when the path is committed (once per delete): \
             remote is the healthy path; every other path is a local, fenced delete and names why",
            deletes.clone(),
        );
        let operation_duration: Histograms<OpLabels> = Family::new_with_constructor(operation_buckets);
        r.register(
            "stratus_operation_duration_seconds",
            "Time from an operation's request to its end (done or failed), by kind: how long users wait",
            operation_duration.clone(),
        );
        let cluster_owned = Arc::new(AtomicBool::new(false));
        let nats_owned = Arc::new(AtomicBool::new(false));
        let hosts = Family::<HostLabels, Gauge>::default();
        r.register_collector(Box::new(Owned {
            name: "stratus_hosts",
            help: "Compute hosts by state, read from the datastore at scrape time (controller processes).",
            metric: hosts.clone(),
            set: cluster_owned.clone(),
        }));
        let host_lease_expirations = Counter::default();
        r.register(
            "stratus_host_lease_expirations",
            "Hosts this controller marked down because their lease lapsed (the leader's liveness monitor)",
            host_lease_expirations.clone(),
        );
        let host_joins = Counter::default();
        r.register(
            "stratus_host_joins",
            "Agent joins and rejoins this controller served (each starts a new epoch)",
            host_joins.clone(),
        );
        let db_commits = Gauge::default();
        r.register_collector(Box::new(Owned {
            name: "stratus_db_commits",
            help: "Write transactions this process committed to its SQLite datastore since it started \
                   (read at scrape time; shows that lease renewals cost no write)",
            metric: db_commits.clone(),
            set: cluster_owned.clone(),
        }));
        let zombies = Gauge::default();
        r.register_collector(Box::new(Owned {
            name: "stratus_zombies",
            help: "Deleted servers whose VM may still run on a host that has not confirmed it gone \
                   (their capacity stays reserved); read from the datastore at scrape time.",
            metric: zombies.clone(),
            set: cluster_owned.clone(),
        }));
        let cleanup_pending = Gauge::default();
        r.register_collector(Box::new(Owned {
            name: "stratus_storage_cleanup_pending",
            help: "Storage cleanups (volume deletes, fence lifts) queued and not done yet; \
                   read from the datastore at scrape time.",
            metric: cleanup_pending.clone(),
            set: cluster_owned.clone(),
        }));
        let fences = Family::<FenceLabels, Counter>::default();
        r.register(
            "stratus_fences",
            "VMs cut off their storage: storage clients this process fenced, and host self-fences reported to it",
            fences.clone(),
        );
        let fence_failures = Counter::default();
        r.register(
            "stratus_fence_failures",
            "Attempts to fence a deleted server's storage clients that failed (the storage backend unreachable or \
             refusing): each such delete waits with its volumes attached and retries; alert on any increase",
            fence_failures.clone(),
        );
        let leader = Family::<LeaderLabels, Gauge>::default();
        r.register(
            "stratus_leader",
            "1 while this controller holds the leader lease (liveness, storage reconciler, relay), else 0",
            leader.clone(),
        );
        let nats_reconnects = Counter::default();
        r.register(
            "stratus_nats_reconnects",
            "Times this process's NATS connection came back after being lost",
            nats_reconnects.clone(),
        );
        let nats_connected = Gauge::default();
        r.register_collector(Box::new(Owned {
            name: "stratus_nats_connected",
            help: "1 while this process's NATS connection is up (processes that use NATS).",
            metric: nats_connected.clone(),
            set: nats_owned.clone(),
        }));
        let http_requests = Family::<HttpLabels, Counter>::default();
        r.register("stratus_http_requests", "API requests answered, by API and status class", http_requests.clone());
        let http_duration: Histograms<ApiLabels> = Family::new_with_constructor(http_buckets);
        r.register(
            "stratus_http_request_duration_seconds",
            "Time to answer an API request, by API",
            http_duration.clone(),
        );
        let agent_renewals = Family::<RenewalLabels, Counter>::default();
        r.register(
            "stratus_agent_lease_renewals",
            "Lease renewals this compute agent sent, by answer (must_rejoin or failed: the host is or nearly is down)",
            agent_renewals.clone(),
        );
        let agent_commands = Family::<CommandLabels, Counter>::default();
        r.register(
            "stratus_agent_commands",
            "Commands this compute agent received, by command and outcome",
            agent_commands.clone(),
        );
        let agent_reaped = Counter::default();
        r.register(
            "stratus_agent_reaped_vms",
            "VMs of deleted or moved servers this compute agent destroyed on its own (zombies reaped)",
            agent_reaped.clone(),
        );
        for p in DeletePath::ALL {
            drop(deletes.get_or_create(&PathLabels { path: *p }));
        }
        for k in FenceKind::ALL {
            drop(fences.get_or_create(&FenceLabels { kind: *k }));
        }
        Self(Arc::new(Inner {
            registry: r,
            deletes,
            operation_duration,
            hosts,
            host_lease_expirations,
            host_joins,
            zombies,
            cleanup_pending,
            db_commits,
            fences,
            fence_failures,
            leader,
            nats_reconnects,
            nats_connected,
            http_requests,
            http_duration,
            agent_renewals,
            agent_commands,
            agent_reaped,
            cluster_owned,
            nats_owned,
            hooks: Mutex::new(Vec::new()),
        }))
    }

    /// The process-wide metrics: what every component records into unless
    /// given others, and what the binary serves at `/metrics`.
    pub fn process() -> Self {
        static PROCESS: OnceLock<Metrics> = OnceLock::new();
        PROCESS.get_or_init(Metrics::new).clone()
    }

    /// A delete committed to `path`.
    pub fn deleted(&self, path: DeletePath) {
        self.0.deletes.get_or_create(&PathLabels { path }).inc();
    }

    /// An operation of `kind` ended `outcome`, `took` after it was requested.
    pub fn operation_finished(&self, kind: OpKind, outcome: OpOutcome, took: Duration) {
        self.0.operation_duration.get_or_create(&OpLabels { kind: Kind(kind), outcome }).observe(took.as_secs_f64());
    }

    /// How many hosts are in each state now.
    pub fn set_hosts(&self, up: i64, down: i64, forced_down: i64) {
        for (state, n) in [(HostState::Up, up), (HostState::Down, down), (HostState::ForcedDown, forced_down)] {
            self.0.hosts.get_or_create(&HostLabels { state }).set(n);
        }
        self.0.cluster_owned.store(true, Ordering::Relaxed);
    }

    /// The liveness monitor marked `n` hosts down (their leases lapsed).
    pub fn hosts_marked_down(&self, n: u64) {
        self.0.host_lease_expirations.inc_by(n);
    }

    /// An agent joined (or rejoined) through this controller.
    pub fn host_joined(&self) {
        self.0.host_joins.inc();
    }

    /// How many zombies the datastore holds now.
    pub fn set_zombies(&self, n: i64) {
        self.0.zombies.set(n);
        self.0.cluster_owned.store(true, Ordering::Relaxed);
    }

    /// How many write transactions this process's SQLite datastore committed.
    pub fn set_db_commits(&self, n: u64) {
        self.0.db_commits.set(i64::try_from(n).unwrap_or(i64::MAX));
        self.0.cluster_owned.store(true, Ordering::Relaxed);
    }

    /// Cleanups (queued deletes, fence lifts) waiting in the storage queue.
    pub fn set_cleanup_pending(&self, n: i64) {
        self.0.cleanup_pending.set(n);
        self.0.cluster_owned.store(true, Ordering::Relaxed);
    }

    /// `n` VMs were fenced off their storage, by `kind`.
    pub fn fenced(&self, kind: FenceKind, n: u64) {
        self.0.fences.get_or_create(&FenceLabels { kind }).inc_by(n);
    }

    /// A delete could not fence its server's storage clients (it retries).
    pub fn fence_failed(&self) {
        self.0.fence_failures.inc();
    }

    /// Whether the controller `holder` holds the leader lease.
    pub fn set_leader(&self, holder: &str, leading: bool) {
        self.0.leader.get_or_create(&LeaderLabels { holder: holder.to_string() }).set(i64::from(leading));
    }

    /// The NATS connection is up; `again` when it had been lost before.
    pub fn nats_connected(&self, again: bool) {
        if again {
            self.0.nats_reconnects.inc();
        }
        self.0.nats_connected.set(1);
        self.0.nats_owned.store(true, Ordering::Relaxed);
    }

    /// The NATS connection was lost (the client reconnects by itself).
    pub fn nats_disconnected(&self) {
        self.0.nats_connected.set(0);
        self.0.nats_owned.store(true, Ordering::Relaxed);
    }

    /// An API request to `api` was answered `status` after `took`.
    pub fn http_request(&self, api: Api, status: u16, took: Duration) {
        self.0.http_requests.get_or_create(&HttpLabels { api, status_class: StatusClass::of(status) }).inc();
        self.0.http_duration.get_or_create(&ApiLabels { api }).observe(took.as_secs_f64());
    }

    /// A compute agent's lease renewal got `result`.
    pub fn agent_lease_renewal(&self, result: LeaseRenewal) {
        self.0.agent_renewals.get_or_create(&RenewalLabels { result }).inc();
    }

    /// A compute agent ended the command `kind` with `outcome`.
    pub fn agent_command(&self, kind: &CommandKind, outcome: CommandOutcome) {
        self.0.agent_commands.get_or_create(&CommandLabels { command: Command(kind.name()), outcome }).inc();
    }

    /// A compute agent destroyed a VM that should not be on its host.
    pub fn agent_reaped(&self) {
        self.0.agent_reaped.inc();
    }

    /// Run `hook` before every scrape of these metrics.
    pub fn add_scrape_hook(&self, hook: Arc<dyn ScrapeHook>) {
        self.0.hooks.lock().unwrap_or_else(|p| p.into_inner()).push(hook);
    }

    /// Refresh the hooked gauges, then encode every family as `format`.
    pub async fn scrape(&self, format: Format) -> Result<String, std::fmt::Error> {
        let hooks = self.0.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for h in hooks {
            h.refresh(self).await;
        }
        self.encode(format)
    }

    /// Encode every family as `format`, as they stand.
    pub fn encode(&self, format: Format) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &self.0.registry)?,
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry)?,
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(m: &Metrics, series: &str) -> Option<f64> {
        let out = m.encode(Format::Prometheus).expect("encode");
        text::parse(&out).expect("parses").into_iter().find(|s| s.series() == series).map(|s| s.value)
    }

    #[test]
    fn every_delete_path_is_scraped_from_the_start_and_counts_once_per_delete() {
        let m = Metrics::new();
        for p in DeletePath::ALL {
            assert_eq!(value(&m, &format!("stratus_deletes_total{{path=\"{}\"}}", p.as_str())), Some(0.0), "{p:?}");
        }
        m.deleted(DeletePath::Down);
        m.deleted(DeletePath::Down);
        m.deleted(DeletePath::Remote);
        assert_eq!(value(&m, "stratus_deletes_total{path=\"down\"}"), Some(2.0));
        assert_eq!(value(&m, "stratus_deletes_total{path=\"remote\"}"), Some(1.0));
        assert_eq!(value(&m, "stratus_deletes_total{path=\"forced_down\"}"), Some(0.0));
    }

    #[test]
    fn two_registries_do_not_share_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.fenced(FenceKind::Storage, 3);
        assert_eq!(value(&a, "stratus_fences_total{kind=\"storage\"}"), Some(3.0));
        assert_eq!(value(&b, "stratus_fences_total{kind=\"storage\"}"), Some(0.0));
        assert_eq!(value(&a.clone(), "stratus_fences_total{kind=\"storage\"}"), Some(3.0), "a clone shares");
    }

    #[test]
    fn operation_durations_land_in_their_buckets() {
        let m = Metrics::new();
        m.operation_finished(OpKind::Delete, OpOutcome::Done, Duration::from_millis(300));
        m.operation_finished(OpKind::Delete, OpOutcome::Done, Duration::from_secs(20));
        let le = |b: &str| {
            value(
                &m,
                &format!("stratus_operation_duration_seconds_bucket{{kind=\"delete\",outcome=\"done\",le=\"{b}\"}}"),
            )
        };
        assert_eq!(le("0.32"), Some(1.0));
        assert_eq!(le("20.48"), Some(2.0));
        assert_eq!(le("+Inf"), Some(2.0));
        assert_eq!(value(&m, "stratus_operation_duration_seconds_count{kind=\"delete\",outcome=\"done\"}"), Some(2.0));
    }

    #[test]
    fn nats_reconnects_count_only_returns() {
        let m = Metrics::new();
        m.nats_connected(false);
        assert_eq!(value(&m, "stratus_nats_reconnects_total"), Some(0.0));
        m.nats_disconnected();
        assert_eq!(value(&m, "stratus_nats_connected"), Some(0.0));
        m.nats_connected(true);
        assert_eq!(value(&m, "stratus_nats_reconnects_total"), Some(1.0));
        assert_eq!(value(&m, "stratus_nats_connected"), Some(1.0));
    }

    #[test]
    fn http_requests_are_classed_by_api_and_status() {
        assert_eq!(Api::of_path("/compute/v2.1/servers"), Api::Compute);
        assert_eq!(Api::of_path("/stratus/v1/zombies"), Api::Admin);
        assert_eq!(Api::of_path("/nope"), Api::Other);
        let m = Metrics::new();
        m.http_request(Api::Compute, 202, Duration::from_millis(5));
        m.http_request(Api::Compute, 404, Duration::from_millis(5));
        m.http_request(Api::Compute, 409, Duration::from_millis(5));
        assert_eq!(value(&m, "stratus_http_requests_total{api=\"compute\",status_class=\"2xx\"}"), Some(1.0));
        assert_eq!(value(&m, "stratus_http_requests_total{api=\"compute\",status_class=\"4xx\"}"), Some(2.0));
    }

    #[test]
    fn openmetrics_ends_with_eof_and_both_formats_parse() {
        let m = Metrics::new();
        m.set_leader("controller@a", true);
        let om = m.encode(Format::OpenMetrics).expect("encode");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            text::parse(&om)
                .expect("openmetrics parses")
                .iter()
                .any(|s| s.series() == "stratus_leader{holder=\"controller@a\"}" && s.value == 1.0)
        );
        let prom = m.encode(Format::Prometheus).expect("encode");
        assert!(!prom.contains("# EOF"));
        assert!(prom.contains("# TYPE stratus_deletes_total counter"), "{prom}");
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(None).content_type(), "text/plain; version=0.0.4; charset=utf-8");
    }

    #[test]
    fn gauges_a_process_does_not_own_are_absent_not_zero() {
        let m = Metrics::new();
        for series in [
            "stratus_hosts{state=\"up\"}",
            "stratus_zombies",
            "stratus_storage_cleanup_pending",
            "stratus_nats_connected",
        ] {
            assert_eq!(value(&m, series), None, "{series}");
        }
        m.set_hosts(0, 1, 0);
        assert_eq!(value(&m, "stratus_hosts{state=\"up\"}"), Some(0.0));
        assert_eq!(value(&m, "stratus_hosts{state=\"down\"}"), Some(1.0));
        let out = m.encode(Format::OpenMetrics).expect("encode");
        assert!(out.contains("# TYPE stratus_hosts gauge\n"), "{out}");
        assert!(out.contains("# HELP stratus_hosts Compute hosts by state"), "{out}");
    }

    struct SetZombies(i64);

    #[async_trait::async_trait]
    impl ScrapeHook for SetZombies {
        async fn refresh(&self, m: &Metrics) {
            m.set_zombies(self.0);
        }
    }

    #[tokio::test]
    async fn scrape_hooks_refresh_gauges_before_encoding() {
        let m = Metrics::new();
        m.add_scrape_hook(Arc::new(SetZombies(4)));
        let out = m.scrape(Format::Prometheus).await.expect("scrape");
        let s = text::parse(&out).expect("parses");
        assert!(s.iter().any(|s| s.series() == "stratus_zombies" && s.value == 4.0), "{out}");
    }
}
