//! Command-line configuration, one typed group of flags per concern, each
//! role flattening only the groups it uses (so `stratus compute --help` shows
//! no quota and `stratus api --help` no fake-driver flag).
//!
//! Defaults live in the library configs (`ControllerConfig::default()`,
//! `AgentConfig::fake`, `FakeDriverConfig::default()`, `VolumeConfig::default()`)
//! and clap shows them from there: one place per default. Durations are typed
//! ([`Secs`]: seconds, with an optional `ms`/`s`/`m`/`h` suffix); enum-like
//! flags are `ValueEnum`s, so a typo is an error at start, never a silent
//! fallback. Every flag also reads a `STRATUS_*` variable (`--help` names it).

use anyhow::Context;
use clap::{Args, ValueEnum};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use stratus_blockstore::BlockBackend;
use stratus_compute::{AgentConfig, ReapAction};
use stratus_controller::ControllerConfig;
use stratus_db::QuotaLimits;
use stratus_driver::FakeDriverConfig;
use stratus_volume::VolumeConfig;

/// A duration given on the command line: `10` or `10s` (seconds, fractions
/// allowed), `500ms`, `2m`, `1h`. Shown back as seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl FromStr for Secs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 60.0)
        } else if let Some(n) = t.strip_suffix('h') {
            (n, 3600.0)
        } else {
            (t, 1.0)
        };
        let v: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a duration (e.g. 10, 2.5s, 500ms, 1m)"))?;
        Duration::try_from_secs_f64(v * scale)
            .map(Secs)
            .map_err(|_| format!("{s:?} must be a non-negative, finite duration"))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// `--shelved-offload-time`: a duration, or `-1` for never (Nova's spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadTime(pub Option<Duration>);

impl FromStr for OffloadTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "-1" { Ok(Self(None)) } else { s.parse::<Secs>().map(|d| Self(Some(d.0))) }
    }
}

impl fmt::Display for OffloadTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-1"),
            Some(d) => Secs(d).fmt(f),
        }
    }
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`,
    /// the event's fields, and the fields of its spans (`span`, `spans`:
    /// e.g. the API request's `request_id`), for log shippers.
    Json,
}

/// The metrics listener of the roles without an HTTP API (`controller`, `compute`).
#[derive(Args, Clone, Debug, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at `http://ADDR/metrics` (anonymous; bind it
    /// to an address only the scraper reaches). Off when not given: several
    /// agents or controllers on one machine would fight over a default port.
    #[arg(long, env = "STRATUS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Where a role keeps its files and finds the shared database.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Data dir: the SQLite database, images, fake VMs, clouds.yaml, generated passwords.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./stratus-data")]
    pub data_dir: PathBuf,
}

/// The database of the control plane, for the roles that keep state.
#[derive(Args, Clone, Debug, Default)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` (default: the SQLite
    /// file `stratus.db` in the data dir). Several API and controller
    /// processes need PostgreSQL: SQLite is one machine's file.
    #[arg(long, env = "STRATUS_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The database to open: the URL given, else the data dir's SQLite file.
    pub fn url(&self, data_dir: &std::path::Path) -> anyhow::Result<stratus_db::DatabaseUrl> {
        match &self.database_url {
            Some(u) => Ok(u.parse()?),
            None => Ok(stratus_db::DatabaseUrl::Sqlite(data_dir.join("stratus.db"))),
        }
    }
}

/// The NATS server of the control plane, for the roles that cannot run without it.
#[derive(Args, Clone, Debug)]
pub struct NatsArgs {
    /// NATS server of the control plane.
    #[arg(long, env = "STRATUS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

/// Host leases: how fast a dead host is seen down (the controller grants and watches them).
#[derive(Args, Clone, Debug)]
pub struct LeaseArgs {
    /// Lease length granted to compute agents (alias: service_down_time).
    #[arg(long, env = "STRATUS_LEASE_TTL", alias = "service-down-time", default_value_t = Secs(ControllerConfig::default().lease_ttl))]
    pub lease_ttl: Secs,
    /// How often agents renew their lease.
    #[arg(long, env = "STRATUS_LEASE_RENEW_INTERVAL", default_value_t = Secs(ControllerConfig::default().lease_renew_interval))]
    pub lease_renew_interval: Secs,
}

/// Deadlines of a delete on a live host (the bound of the delete contract).
#[derive(Args, Clone, Debug)]
pub struct DeleteArgs {
    /// An agent must acknowledge a terminate within this.
    #[arg(long, env = "STRATUS_TERMINATE_ACK_TIMEOUT", default_value_t = Secs(ControllerConfig::default().terminate_ack_timeout))]
    pub terminate_ack_timeout: Secs,
    /// An agent must finish a terminate within this.
    #[arg(long, env = "STRATUS_TERMINATE_TIMEOUT", default_value_t = Secs(ControllerConfig::default().terminate_timeout))]
    pub terminate_timeout: Secs,
    /// A host must finish a spawn within this, or the build fails (Nova's
    /// `instance_build_timeout`): a host that acknowledged it and went
    /// silent does not hold the create for ever.
    #[arg(long, env = "STRATUS_BUILD_TIMEOUT", default_value_t = Secs(ControllerConfig::default().build_timeout))]
    pub build_timeout: Secs,
}

/// Soft delete and shelve offload: read by the API (which path a delete or shelve
/// takes) and by the controller (the reclaim and offload reconcilers).
#[derive(Args, Clone, Debug)]
pub struct RetentionArgs {
    /// Soft delete: deleted servers stay restorable this long (0: off).
    #[arg(long, env = "STRATUS_RECLAIM_INSTANCE_INTERVAL", default_value_t = Secs(ControllerConfig::default().reclaim_instance_interval))]
    pub reclaim_instance_interval: Secs,
    /// Offload shelved servers after this long (0: at once, -1: never).
    #[arg(long, env = "STRATUS_SHELVED_OFFLOAD_TIME", default_value_t = OffloadTime(ControllerConfig::default().shelved_offload_time), allow_negative_numbers = true)]
    pub shelved_offload_time: OffloadTime,
}

/// The durable operation engine of a controller.
#[derive(Args, Clone, Debug)]
pub struct OperationArgs {
    /// Operation claim length: another controller adopts an operation whose
    /// controller stopped renewing it for this long.
    #[arg(long, env = "STRATUS_OP_CLAIM_TTL", default_value_t = Secs(ControllerConfig::default().op_claim_ttl))]
    pub op_claim_ttl: Secs,
    /// Leader lease: how long the controllers' singleton duties (liveness
    /// monitor, storage reconciler, notification relay, reclaim) wait for a
    /// dead leader before another controller takes them over.
    #[arg(long, env = "STRATUS_LEADER_TTL", default_value_t = Secs(ControllerConfig::default().leader_ttl))]
    pub leader_ttl: Secs,
    /// Stable identity of this controller (a restarted one re-claims its operations at once);
    /// default `controller@<hostname>`.
    #[arg(long, env = "STRATUS_CONTROLLER_ID")]
    pub controller_id: Option<String>,
}

/// Default compute quota of a project (-1: unlimited); usage is counted.
#[derive(Args, Clone, Debug)]
pub struct ComputeQuotaArgs {
    /// Default quota: servers per project.
    #[arg(long, env = "STRATUS_QUOTA_INSTANCES", default_value_t = ControllerConfig::default().default_quota.instances, allow_negative_numbers = true)]
    pub quota_instances: i64,
    /// Default quota: vCPUs per project.
    #[arg(long, env = "STRATUS_QUOTA_CORES", default_value_t = ControllerConfig::default().default_quota.cores, allow_negative_numbers = true)]
    pub quota_cores: i64,
    /// Default quota: RAM MiB per project.
    #[arg(long, env = "STRATUS_QUOTA_RAM", default_value_t = ControllerConfig::default().default_quota.ram, allow_negative_numbers = true)]
    pub quota_ram: i64,
}

/// An external Keystone as the identity service (issue 10): every API
/// request's token is validated there, and Stratus's endpoints are
/// published in its catalog. Unset: the built-in identity serves `/identity`.
#[derive(Args, Clone, Debug)]
pub struct KeystoneArgs {
    /// Keystone's URL (`http://keystone:5000`, with or without `/v3`): tokens
    /// are validated there and the built-in Identity API is not served.
    #[arg(long, env = "STRATUS_KEYSTONE_URL")]
    pub keystone_url: Option<String>,
    /// Stratus's service user in Keystone (needs the admin role on its
    /// project to validate others' tokens and publish the endpoints).
    #[arg(long, env = "STRATUS_KEYSTONE_USER", default_value = "stratus")]
    pub keystone_user: String,
    /// The service user's password.
    #[arg(long, env = "STRATUS_KEYSTONE_PASSWORD", hide_env_values = true)]
    pub keystone_password: Option<String>,
    /// The project the service token is scoped to.
    #[arg(long, env = "STRATUS_KEYSTONE_PROJECT", default_value = "service")]
    pub keystone_project: String,
    /// Domain (name) of the service user and its project.
    #[arg(long, env = "STRATUS_KEYSTONE_DOMAIN", default_value = "Default")]
    pub keystone_domain: String,
    /// How long a validated token is trusted before Keystone is asked again:
    /// a revoked token is refused at most this long after its revocation.
    #[arg(long, env = "STRATUS_KEYSTONE_CACHE_TTL", default_value_t = Secs(Duration::from_secs(30)))]
    pub keystone_cache_ttl: Secs,
    /// Region of the endpoints published in Keystone.
    #[arg(long, env = "STRATUS_KEYSTONE_REGION", default_value = "RegionOne")]
    pub keystone_region: String,
}

impl KeystoneArgs {
    /// The Keystone client's settings, when `--keystone-url` is given.
    pub fn config(&self) -> anyhow::Result<Option<stratus_auth::KeystoneConfig>> {
        let Some(url) = &self.keystone_url else { return Ok(None) };
        let password = self.keystone_password.clone().filter(|p| !p.is_empty()).context(
            "--keystone-url needs the service user's password (--keystone-password or STRATUS_KEYSTONE_PASSWORD)",
        )?;
        Ok(Some(stratus_auth::KeystoneConfig {
            url: url.clone(),
            user: self.keystone_user.clone(),
            password,
            project: self.keystone_project.clone(),
            domain: self.keystone_domain.clone(),
            cache_ttl: self.keystone_cache_ttl.0,
            region: self.keystone_region.clone(),
            timeout: Duration::from_secs(10),
        }))
    }
}

/// Tokens issued by the identity API.
#[derive(Args, Clone, Debug)]
pub struct TokenArgs {
    /// Token lifetime.
    #[arg(long, env = "STRATUS_TOKEN_TTL", default_value_t = Secs(Duration::from_secs(3600)))]
    pub token_ttl: Secs,
    /// Failed passwords that lock a user (Keystone's `lockout_failure_attempts`; 0: never).
    #[arg(long, env = "STRATUS_LOCKOUT_FAILURE_ATTEMPTS", default_value_t = stratus_auth::LoginLimits::default().lockout_failure_attempts)]
    pub lockout_failure_attempts: u32,
    /// How long a locked user stays locked (Keystone's `lockout_duration`).
    #[arg(long, env = "STRATUS_LOCKOUT_DURATION", default_value_t = Secs(Duration::from_secs(1800)))]
    pub lockout_duration: Secs,
}

impl TokenArgs {
    /// The password-login limits of the identity API.
    pub fn login_limits(&self) -> anyhow::Result<stratus_auth::LoginLimits> {
        Ok(stratus_auth::LoginLimits {
            lockout_failure_attempts: self.lockout_failure_attempts,
            lockout_duration: chrono::Duration::from_std(self.lockout_duration.0)
                .map_err(|_| anyhow::anyhow!("lockout_duration is too long"))?,
            ..stratus_auth::LoginLimits::default()
        })
    }
}

/// `running_deleted_instance_action`: what agents do with VMs of deleted servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReapActionArg {
    /// Destroy the VM.
    Reap,
    /// Power it off, keep it.
    Shutdown,
    /// Only log it.
    Log,
    /// Ignore it.
    Noop,
}

impl From<ReapActionArg> for ReapAction {
    fn from(a: ReapActionArg) -> Self {
        match a {
            ReapActionArg::Reap => Self::Reap,
            ReapActionArg::Shutdown => Self::Shutdown,
            ReapActionArg::Log => Self::Log,
            ReapActionArg::Noop => Self::Noop,
        }
    }
}

impl From<ReapAction> for ReapActionArg {
    fn from(a: ReapAction) -> Self {
        match a {
            ReapAction::Reap => Self::Reap,
            ReapAction::Shutdown => Self::Shutdown,
            ReapAction::Log => Self::Log,
            ReapAction::Noop => Self::Noop,
        }
    }
}

/// A compute agent: the host it offers and how it treats VMs that must not run.
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    /// What agents do with VMs of deleted servers.
    #[arg(long, env = "STRATUS_RUNNING_DELETED_INSTANCE_ACTION", value_enum, default_value_t = ReapActionArg::from(AgentConfig::fake("").reap_action))]
    pub running_deleted_instance_action: ReapActionArg,
    /// How often agents look for VMs of deleted servers.
    #[arg(long, env = "STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", default_value_t = Secs(AgentConfig::fake("").reap_interval))]
    pub running_deleted_instance_poll_interval: Secs,
    /// vCPUs each fake host offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_VCPUS", default_value_t = AgentConfig::fake("").vcpus)]
    pub fake_host_vcpus: i64,
    /// RAM MiB each fake host offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_RAM_MB", default_value_t = AgentConfig::fake("").memory_mb)]
    pub fake_host_ram_mb: i64,
    /// Disk GiB each fake host offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_DISK_GB", default_value_t = AgentConfig::fake("").disk_gb)]
    pub fake_host_disk_gb: i64,
    /// Fake driver: time to spawn a VM.
    #[arg(long, env = "STRATUS_FAKE_SPAWN_DELAY", default_value_t = Secs(FakeDriverConfig::default().spawn_delay))]
    pub fake_spawn_delay: Secs,
    /// Fake driver: time to destroy a VM.
    #[arg(long, env = "STRATUS_FAKE_DESTROY_DELAY", default_value_t = Secs(FakeDriverConfig::default().destroy_delay))]
    pub fake_destroy_delay: Secs,
    /// Fake hosts: each VM writes a sequence-numbered block to each of its
    /// volumes this often, as a guest would (0: never). For fault tests
    /// that read volumes back after a fence.
    #[arg(long, env = "STRATUS_FAKE_GUEST_WRITE_INTERVAL", default_value_t = Secs(Duration::ZERO))]
    pub fake_guest_write_interval: Secs,
}

impl AgentArgs {
    /// The agent's settings for `host`.
    pub fn agent(&self, host: &str) -> AgentConfig {
        AgentConfig {
            vcpus: self.fake_host_vcpus,
            memory_mb: self.fake_host_ram_mb,
            disk_gb: self.fake_host_disk_gb,
            reap_action: self.running_deleted_instance_action.into(),
            // A zero interval would spin the reaper.
            reap_interval: self.running_deleted_instance_poll_interval.0.max(Duration::from_millis(100)),
            guest_writes: Some(self.fake_guest_write_interval.0).filter(|d| !d.is_zero()),
            ..AgentConfig::fake(host)
        }
    }

    /// The fake driver's settings, keeping its VMs under `state_dir`.
    pub fn fake_driver(&self, state_dir: Option<PathBuf>) -> FakeDriverConfig {
        FakeDriverConfig {
            spawn_delay: self.fake_spawn_delay.0,
            destroy_delay: self.fake_destroy_delay.0,
            state_dir,
            ..FakeDriverConfig::default()
        }
    }
}

/// Which hypervisor driver runs a compute host's servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DriverKind {
    /// A file per VM and no guest: fast, so the default for tests and the benchmark.
    #[default]
    Fake,
    /// A real `qemu-system-x86_64` per server, booting the seeded kernel and ramdisk.
    Qemu,
}

/// The hypervisor driver, for the roles that run compute hosts (`up`, `compute`).
#[derive(Args, Clone, Debug)]
pub struct DriverArgs {
    /// Hypervisor driver of the compute hosts.
    #[arg(long, env = "STRATUS_DRIVER", value_enum, default_value_t = DriverKind::default())]
    pub driver: DriverKind,
    /// qemu driver: the emulator binary.
    #[arg(long, env = "STRATUS_QEMU_BINARY", default_value = "qemu-system-x86_64")]
    pub qemu_binary: PathBuf,
    /// qemu driver: vCPUs offered per host CPU (Nova's `cpu_allocation_ratio`).
    #[arg(long, env = "STRATUS_CPU_ALLOCATION_RATIO", default_value_t = 16.0)]
    pub cpu_allocation_ratio: f64,
    /// qemu driver: RAM offered per MiB of host RAM (Nova's `ram_allocation_ratio`).
    #[arg(long, env = "STRATUS_RAM_ALLOCATION_RATIO", default_value_t = 1.5)]
    pub ram_allocation_ratio: f64,
    /// qemu driver: disk offered per free GiB (Nova's `disk_allocation_ratio`).
    #[arg(long, env = "STRATUS_DISK_ALLOCATION_RATIO", default_value_t = 1.0)]
    pub disk_allocation_ratio: f64,
    /// qemu driver: host RAM MiB kept for the host itself (Nova's `reserved_host_memory_mb`).
    #[arg(long, env = "STRATUS_RESERVED_HOST_MEMORY_MB", default_value_t = 512)]
    pub reserved_host_memory_mb: u64,
    /// qemu driver: the host watchdog kills the VMs this long before the
    /// host's lease would expire if the agent stops renewing it.
    #[arg(long, env = "STRATUS_WATCHDOG_MARGIN", default_value_t = Secs(Duration::from_secs(2)))]
    pub watchdog_margin: Secs,
    /// qemu driver: run the host watchdog (self-fencing). Turn it off only
    /// where every VM disk is on storage the controller can fence.
    #[arg(long, env = "STRATUS_WATCHDOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub watchdog: bool,
}

/// The script that builds the tiny guest, named in every error about a missing one.
pub const GUEST_BUILD_SCRIPT: &str = "scripts/guest/build-tiny-guest.sh";

/// Where the bootable guest `up --driver qemu` seeds as the `cirros` image comes from.
#[derive(Args, Clone, Debug)]
pub struct GuestArgs {
    /// Directory with the tiny guest's `vmlinuz` and `initrd.img` (build it with
    /// scripts/guest/build-tiny-guest.sh DIR); seeded as the `cirros` image's
    /// kernel and ramdisk under `--driver qemu`.
    #[arg(long, env = "STRATUS_GUEST_DIR")]
    pub guest_dir: Option<PathBuf>,
}

/// The files of a built tiny guest, checked to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFiles {
    /// The kernel (`vmlinuz`), seeded as an `aki` image.
    pub kernel: PathBuf,
    /// The initramfs (`initrd.img`), seeded as an `ari` image.
    pub ramdisk: PathBuf,
}

impl GuestArgs {
    /// The guest's kernel and ramdisk; a clear error naming the build script
    /// when the directory is not given or not built.
    pub fn guest_files(&self) -> anyhow::Result<GuestFiles> {
        let dir = self.guest_dir.as_ref().with_context(|| {
            format!(
                "--driver qemu needs --guest-dir DIR (or STRATUS_GUEST_DIR) holding the tiny guest; \
                 build it with {GUEST_BUILD_SCRIPT} DIR"
            )
        })?;
        let files = GuestFiles { kernel: dir.join("vmlinuz"), ramdisk: dir.join("initrd.img") };
        for f in [&files.kernel, &files.ramdisk] {
            anyhow::ensure!(
                f.is_file(),
                "guest dir {}: {} is missing; build the guest with {GUEST_BUILD_SCRIPT} {}",
                dir.display(),
                f.display(),
                dir.display()
            );
        }
        Ok(files)
    }
}

/// The file in the data dir naming the cloud's block storage backend.
const BACKEND_RECORD: &str = "storage-backend.json";

/// The storage backend `stratus audit` compares with: the flags when given,
/// else the one the cloud recorded in its data dir, else `local`.
#[derive(Args, Clone, Debug)]
pub struct AuditBackendArgs {
    /// Block storage backend (default: the one the cloud recorded).
    #[arg(long, env = "STRATUS_VOLUME_BACKEND", value_enum)]
    pub volume_backend: Option<VolumeBackendKind>,
    /// Ceph configuration file (`rbd` backend).
    #[arg(long, env = "STRATUS_CEPH_CONF")]
    pub ceph_conf: Option<PathBuf>,
    /// Ceph pool holding the volumes (`rbd` backend; default `rbd`).
    #[arg(long, env = "STRATUS_CEPH_POOL")]
    pub ceph_pool: Option<String>,
}

impl AuditBackendArgs {
    /// The backend to audit, for the cloud in `data_dir`.
    pub fn resolve(&self, data_dir: &Path) -> anyhow::Result<BackendArgs> {
        if let Some(kind) = self.volume_backend {
            return Ok(BackendArgs {
                volume_backend: kind,
                ceph_conf: self.ceph_conf.clone(),
                ceph_pool: self.ceph_pool.clone().unwrap_or_else(|| "rbd".into()),
            });
        }
        Ok(BackendArgs::recorded(data_dir)?.unwrap_or(BackendArgs {
            volume_backend: VolumeBackendKind::Local,
            ceph_conf: None,
            ceph_pool: "rbd".into(),
        }))
    }
}

/// Which block storage backend serves volumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VolumeBackendKind {
    /// Image files under `<data-dir>/volumes`, generation fencing.
    Local,
    /// Real Ceph through the `rbd`/`ceph` CLIs, blocklist fencing.
    Rbd,
}

/// The block storage backend, for every role that opens, fences or deletes volumes.
#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    /// Block storage backend.
    #[arg(long, env = "STRATUS_VOLUME_BACKEND", value_enum, default_value_t = VolumeBackendKind::Local)]
    pub volume_backend: VolumeBackendKind,
    /// Ceph configuration file (`rbd` backend).
    #[arg(long, env = "STRATUS_CEPH_CONF")]
    pub ceph_conf: Option<PathBuf>,
    /// Ceph pool holding the volumes (`rbd` backend).
    #[arg(long, env = "STRATUS_CEPH_POOL", default_value = "rbd")]
    pub ceph_pool: String,
}

impl BackendArgs {
    /// The selected block storage backend.
    pub fn backend(&self, data_dir: &Path) -> anyhow::Result<Arc<dyn BlockBackend>> {
        Ok(match self.volume_backend {
            VolumeBackendKind::Rbd => {
                let conf = self.ceph_conf.clone().context("--volume-backend rbd needs --ceph-conf PATH")?;
                // A VM's storage client outlives a killed agent, as a real VM does.
                Arc::new(
                    stratus_blockstore::rbd::RbdBackend::new(self.ceph_pool.clone(), conf)
                        .with_holder_linger(Duration::from_secs(3600)),
                )
            }
            VolumeBackendKind::Local => {
                let dir = data_dir.join("volumes");
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
                Arc::new(stratus_blockstore::local::LocalBackend::new(dir))
            }
        })
    }

    /// Record the backend in the data dir, so that `stratus audit` run
    /// later without backend flags compares the volume records with the
    /// storage the cloud really uses.
    pub fn record(&self, data_dir: &Path) -> anyhow::Result<()> {
        let kind = match self.volume_backend {
            VolumeBackendKind::Local => "local",
            VolumeBackendKind::Rbd => "rbd",
        };
        let doc = serde_json::json!({"volume_backend": kind, "ceph_conf": self.ceph_conf, "ceph_pool": self.ceph_pool});
        let path = data_dir.join(BACKEND_RECORD);
        std::fs::write(&path, doc.to_string()).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The backend a cloud recorded in its data dir ([`BackendArgs::record`]).
    pub fn recorded(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = data_dir.join(BACKEND_RECORD);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let doc: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        let volume_backend = match doc["volume_backend"].as_str() {
            Some("rbd") => VolumeBackendKind::Rbd,
            Some("local") => VolumeBackendKind::Local,
            other => anyhow::bail!("{}: unknown volume_backend {other:?}", path.display()),
        };
        Ok(Some(Self {
            volume_backend,
            ceph_conf: doc["ceph_conf"].as_str().map(PathBuf::from),
            ceph_pool: doc["ceph_pool"].as_str().unwrap_or("rbd").to_string(),
        }))
    }

    /// The Ceph pool, when volumes live in Ceph.
    pub fn rbd_pool(&self) -> Option<String> {
        (self.volume_backend == VolumeBackendKind::Rbd).then(|| self.ceph_pool.clone())
    }
}

/// Settings of the volume service (default quota of a project, -1: unlimited; the reconciler's patience), for the roles that create volumes.
#[derive(Args, Clone, Debug)]
pub struct VolumeQuotaArgs {
    /// Default quota: volumes per project.
    #[arg(long, env = "STRATUS_QUOTA_VOLUMES", default_value_t = VolumeConfig::default().quota_volumes, allow_negative_numbers = true)]
    pub quota_volumes: i64,
    /// Default quota: volume GiB per project.
    #[arg(long, env = "STRATUS_QUOTA_GIGABYTES", default_value_t = VolumeConfig::default().quota_gigabytes, allow_negative_numbers = true)]
    pub quota_gigabytes: i64,
    /// How long a volume may stay `creating` or `deleting` before the
    /// reconciler takes it for interrupted and builds or deletes it again.
    #[arg(long, env = "STRATUS_VOLUME_STALE_AFTER", default_value_t = Secs(VolumeConfig::default().stale_after))]
    pub volume_stale_after: Secs,
}

impl VolumeQuotaArgs {
    /// Settings of the volume service, with image files under `image_dir`.
    pub fn volume_config(&self, backend: &BackendArgs, image_dir: PathBuf) -> VolumeConfig {
        VolumeConfig {
            image_dir,
            quota_volumes: self.quota_volumes,
            quota_gigabytes: self.quota_gigabytes,
            rbd_pool: backend.rbd_pool(),
            stale_after: self.volume_stale_after.0,
            ..VolumeConfig::default()
        }
    }
}

/// HTTP: where the APIs listen and the URL clients are given.
#[derive(Args, Clone, Debug)]
pub struct HttpArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "STRATUS_LISTEN", default_value = "127.0.0.1:8774")]
    pub listen: SocketAddr,
    /// Base URL clients use (defaults to http://<listen address>).
    #[arg(long, env = "STRATUS_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The compute settings shared by the API (the compute service it calls) and the
/// controller: one `ControllerConfig`, built from the groups a role has.
pub struct ControllerParts<'a> {
    /// Leases (controller only; the API keeps the defaults, which it never reads).
    pub leases: Option<&'a LeaseArgs>,
    /// Delete deadlines (controller only).
    pub deletes: Option<&'a DeleteArgs>,
    /// Operation engine (controller only).
    pub operations: Option<&'a OperationArgs>,
    /// Soft delete and shelve offload.
    pub retention: &'a RetentionArgs,
    /// Compute quota (API only).
    pub quota: Option<&'a ComputeQuotaArgs>,
}

impl ControllerParts<'_> {
    /// The typed settings, checked for consistency.
    pub fn build(&self) -> anyhow::Result<ControllerConfig> {
        let mut cfg = ControllerConfig::default();
        if let Some(l) = self.leases {
            cfg.lease_ttl = l.lease_ttl.0;
            cfg.lease_renew_interval = l.lease_renew_interval.0;
        }
        if let Some(d) = self.deletes {
            cfg.terminate_ack_timeout = d.terminate_ack_timeout.0;
            cfg.terminate_timeout = d.terminate_timeout.0;
            cfg.build_timeout = d.build_timeout.0;
        }
        if let Some(o) = self.operations {
            cfg.op_claim_ttl = o.op_claim_ttl.0;
            cfg.leader_ttl = o.leader_ttl.0;
            cfg.controller_id = o.controller_id.clone();
        }
        if let Some(q) = self.quota {
            cfg.default_quota = QuotaLimits {
                instances: q.quota_instances,
                cores: q.quota_cores,
                ram: q.quota_ram,
                ..QuotaLimits::NOVA_DEFAULTS
            };
        }
        cfg.reclaim_instance_interval = self.retention.reclaim_instance_interval.0;
        cfg.shelved_offload_time = self.retention.shelved_offload_time.0;
        anyhow::ensure!(
            cfg.lease_renew_interval < cfg.lease_ttl,
            "lease_renew_interval ({:?}) must be shorter than lease_ttl ({:?})",
            cfg.lease_renew_interval,
            cfg.lease_ttl
        );
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!("10".parse::<Secs>(), Ok(Secs(Duration::from_secs(10))));
        assert_eq!("0.05".parse::<Secs>(), Ok(Secs(Duration::from_millis(50))));
        assert_eq!("2.5s".parse::<Secs>(), Ok(Secs(Duration::from_millis(2500))));
        assert_eq!("500ms".parse::<Secs>(), Ok(Secs(Duration::from_millis(500))));
        assert_eq!("2m".parse::<Secs>(), Ok(Secs(Duration::from_secs(120))));
        assert!("-1".parse::<Secs>().is_err());
        assert!("ten".parse::<Secs>().is_err());
        assert_eq!(Secs(Duration::from_millis(50)).to_string(), "0.05");
    }

    #[test]
    fn a_missing_guest_names_the_build_script() {
        let none = GuestArgs { guest_dir: None };
        let e = none.guest_files().expect_err("no dir").to_string();
        assert!(e.contains(GUEST_BUILD_SCRIPT) && e.contains("--guest-dir"), "{e}");
        let dir = std::env::temp_dir().join(format!("stratus-guest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("vmlinuz"), b"k").expect("write");
        let half = GuestArgs { guest_dir: Some(dir.clone()) };
        let e = half.guest_files().expect_err("no initrd").to_string();
        assert!(e.contains("initrd.img") && e.contains(GUEST_BUILD_SCRIPT), "{e}");
        std::fs::write(dir.join("initrd.img"), b"r").expect("write");
        let files = half.guest_files().expect("built");
        assert_eq!(files.kernel, dir.join("vmlinuz"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn offload_time_minus_one_is_never() {
        assert_eq!("-1".parse::<OffloadTime>(), Ok(OffloadTime(None)));
        assert_eq!("0".parse::<OffloadTime>(), Ok(OffloadTime(Some(Duration::ZERO))));
        assert_eq!(OffloadTime(None).to_string(), "-1");
    }
}

/// Per-project image quotas (Glance's unified-limit names; -1: unlimited).
#[derive(Args, Clone, Debug)]
pub struct ImageQuotaArgs {
    /// Images a project may own (`image_count_total`).
    #[arg(long, env = "STRATUS_IMAGE_COUNT_TOTAL", default_value_t = stratus_image::ImageQuota::default().count_total, allow_negative_numbers = true)]
    pub image_count_total: i64,
    /// MiB a project's images may hold (`image_size_total`).
    #[arg(long, env = "STRATUS_IMAGE_SIZE_TOTAL_MB", default_value_t = stratus_image::ImageQuota::default().size_total_bytes >> 20, allow_negative_numbers = true)]
    pub image_size_total_mb: i64,
    /// Uploads a project may have in progress (`image_count_uploading`).
    #[arg(long, env = "STRATUS_IMAGE_COUNT_UPLOADING", default_value_t = stratus_image::ImageQuota::default().count_uploading, allow_negative_numbers = true)]
    pub image_count_uploading: i64,
}

impl ImageQuotaArgs {
    /// The quotas the image service enforces.
    pub fn quota(&self) -> stratus_image::ImageQuota {
        stratus_image::ImageQuota {
            count_total: self.image_count_total,
            size_total_bytes: if self.image_size_total_mb < 0 {
                -1
            } else {
                self.image_size_total_mb.saturating_mul(1 << 20)
            },
            count_uploading: self.image_count_uploading,
        }
    }
}

/// Glance's `web-download` import and `import` tasks: the server fetches a
/// client-named URL, so it is off unless enabled, and every fetch goes
/// through the SSRF guard these flags configure (Glance's
/// `[import_filtering_opts]`, plus the address classes a public cloud must
/// keep clients away from). List flags take comma-separated values; a
/// non-empty allowlist makes its denylist moot, as in Glance.
#[derive(Args, Clone, Debug)]
pub struct WebDownloadArgs {
    /// Offer `web-download` (listed in `/v2/info/import`) and `/v2/tasks` imports.
    #[arg(long, env = "STRATUS_IMAGE_WEB_DOWNLOAD", default_value_t = false)]
    pub image_web_download: bool,
    /// URL schemes allowed (empty: all but the disallowed ones).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_ALLOWED_SCHEMES", value_delimiter = ',', default_value = "http,https")]
    pub image_import_allowed_schemes: Vec<String>,
    /// URL schemes refused (when no scheme is allowlisted).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_DISALLOWED_SCHEMES", value_delimiter = ',')]
    pub image_import_disallowed_schemes: Vec<String>,
    /// Host names allowed (empty: all but the disallowed ones).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS", value_delimiter = ',')]
    pub image_import_allowed_hosts: Vec<String>,
    /// Host names refused (when no host is allowlisted).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_DISALLOWED_HOSTS", value_delimiter = ',')]
    pub image_import_disallowed_hosts: Vec<String>,
    /// Ports allowed (empty: all but the disallowed ones).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_ALLOWED_PORTS", default_value = "80,443")]
    pub image_import_allowed_ports: PortList,
    /// Ports refused (when no port is allowlisted).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_DISALLOWED_PORTS", default_value = "")]
    pub image_import_disallowed_ports: PortList,
    /// Networks (CIDR or address) reachable although internal: loopback,
    /// private, link-local, multicast and unspecified addresses are refused
    /// unless listed here.
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub image_import_allowed_networks: Vec<stratus_image::webfetch::Network>,
    /// Time cap of one download (all redirects and the body).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_TIMEOUT", default_value_t = Secs(Duration::from_secs(600)))]
    pub image_import_timeout: Secs,
    /// Redirects followed, each one checked again (0: none).
    #[arg(long, env = "STRATUS_IMAGE_IMPORT_MAX_REDIRECTS", default_value_t = 5)]
    pub image_import_max_redirects: usize,
}

impl WebDownloadArgs {
    /// The guard to fetch through, when web downloads are enabled.
    pub fn guard(&self) -> Option<stratus_image::webfetch::Guard> {
        let clean = |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        self.image_web_download.then(|| stratus_image::webfetch::Guard {
            allowed_schemes: clean(&self.image_import_allowed_schemes),
            disallowed_schemes: clean(&self.image_import_disallowed_schemes),
            allowed_hosts: clean(&self.image_import_allowed_hosts),
            disallowed_hosts: clean(&self.image_import_disallowed_hosts),
            allowed_ports: self.image_import_allowed_ports.0.clone(),
            disallowed_ports: self.image_import_disallowed_ports.0.clone(),
            allowed_networks: self.image_import_allowed_networks.clone(),
            timeout: self.image_import_timeout.0,
            max_redirects: self.image_import_max_redirects,
            ..stratus_image::webfetch::Guard::default()
        })
    }
}

/// A comma-separated port list; the empty string is the empty list (so an
/// allowlist can be emptied: `--image-import-allowed-ports ''`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

impl FromStr for PortList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u16>().map_err(|_| format!("{p:?} is not a port number")))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports: Vec<String> = self.0.iter().map(u16::to_string).collect();
        f.write_str(&ports.join(","))
    }
}

#[cfg(test)]
mod web_download_tests {
    use super::*;

    // Glance's import_filtering_opts defaults: http/https on 80/443; web-download off here unless enabled.
    #[test]
    fn web_download_flags_build_the_guard() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            w: WebDownloadArgs,
        }
        use clap::Parser as _;
        let off = Cli::try_parse_from(["x"]).expect("defaults").w;
        assert!(off.guard().is_none());
        let on = Cli::try_parse_from([
            "x",
            "--image-web-download",
            "--image-import-allowed-ports",
            "",
            "--image-import-allowed-networks",
            "127.0.0.1/32,fd00::/8",
        ])
        .expect("flags")
        .w
        .guard()
        .expect("enabled");
        assert!(on.allowed_ports.is_empty());
        assert_eq!(on.allowed_schemes, vec!["http", "https"]);
        assert_eq!(on.allowed_networks.len(), 2);
        let defaults = Cli::try_parse_from(["x", "--image-web-download"]).expect("flags").w.guard().expect("on");
        assert_eq!(defaults.allowed_ports, vec![80, 443]);
        assert!(Cli::try_parse_from(["x", "--image-import-allowed-networks", "nope"]).is_err());
    }
}
