//! `stratus`: one binary, one subcommand per role. `stratus up` runs every
//! role in one process on the embedded defaults (SQLite file, in-process bus,
//! fake hypervisor), which is also what the end-to-end tests start.

mod audit;
mod bootstrap;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stratus_blockstore::BlockBackend;
use stratus_bus::{Bus, InProcessBus, NatsBus};
use stratus_compute::{Agent, AgentConfig, AgentFaults, ReapAction};
use stratus_controller::compute_api::ComputeApi;
use stratus_controller::{Controller, ControllerConfig};
use stratus_db::{Datastore, QuotaLimits};
use stratus_driver::{FakeDriver, FakeDriverConfig};
use stratus_volume::{VolumeConfig, VolumeService};
use tokio::sync::watch;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "stratus",
    version,
    about = "Stratus: an OpenStack-compatible compute control plane whose deletes always finish"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the whole cloud in one process (API, controller, fake compute hosts).
    Up(UpArgs),
    /// Run only the API role (HTTP), sharing the database with controllers and joined over NATS.
    Api(UpArgs),
    /// Run only the controller role (operations, scheduler, liveness); several may run.
    Controller(ControllerArgs),
    /// Run one compute host agent as its own process, joined over NATS.
    Compute(ComputeArgs),
    /// Compare servers, zombies, ports, operations, notifications and the
    /// hosts' actual VMs; print every disagreement; exit 1 if there is any.
    Audit(AuditArgs),
}

#[derive(Args)]
struct ComputeArgs {
    /// Host name (unique in the cloud).
    #[arg(long)]
    host: String,
    /// NATS server of the control plane.
    #[arg(long, env = "STRATUS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Where the fake driver keeps its VMs (they outlive this process, like real VMs).
    #[arg(long)]
    state_dir: PathBuf,
    /// Data dir whose `volumes/` the `local` backend shares with the control plane.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./stratus-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    tunables: Tunables,
    #[command(flatten)]
    volumes: VolumeArgs,
}

#[derive(Args)]
struct ControllerArgs {
    /// Data dir holding the shared database.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./stratus-data")]
    data_dir: PathBuf,
    /// NATS server of the control plane.
    #[arg(long, env = "STRATUS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[command(flatten)]
    tunables: Tunables,
    #[command(flatten)]
    volumes: VolumeArgs,
}

#[derive(Args)]
struct AuditArgs {
    /// Data dir of the cloud to audit.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./stratus-data")]
    data_dir: PathBuf,
    /// Fix what is safe to fix (release orphan ports, reap VMs of deleted servers on fake hosts).
    #[arg(long)]
    repair: bool,
}

/// Settings shared by roles; each may also come from a `STRATUS_*` variable.
#[derive(Args, Clone, Debug)]
struct Tunables {
    /// Lease length granted to compute agents, seconds (alias: service_down_time).
    #[arg(long, env = "STRATUS_LEASE_TTL", alias = "service-down-time", default_value_t = 10.0)]
    lease_ttl: f64,
    /// How often agents renew their lease, seconds.
    #[arg(long, env = "STRATUS_LEASE_RENEW_INTERVAL", default_value_t = 2.0)]
    lease_renew_interval: f64,
    /// An agent must acknowledge a terminate within this many seconds.
    #[arg(long, env = "STRATUS_TERMINATE_ACK_TIMEOUT", default_value_t = 5.0)]
    terminate_ack_timeout: f64,
    /// An agent must finish a terminate within this many seconds.
    #[arg(long, env = "STRATUS_TERMINATE_TIMEOUT", default_value_t = 30.0)]
    terminate_timeout: f64,
    /// What agents do with VMs of deleted servers: reap | shutdown | log | noop.
    #[arg(long, env = "STRATUS_RUNNING_DELETED_INSTANCE_ACTION", default_value = "reap")]
    running_deleted_instance_action: String,
    /// How often agents look for VMs of deleted servers, seconds.
    #[arg(long, env = "STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", default_value_t = 10.0)]
    running_deleted_instance_poll_interval: f64,
    /// Default quota: servers per project (-1 = unlimited).
    #[arg(long, env = "STRATUS_QUOTA_INSTANCES", default_value_t = 10)]
    quota_instances: i64,
    /// Default quota: vCPUs per project.
    #[arg(long, env = "STRATUS_QUOTA_CORES", default_value_t = 20)]
    quota_cores: i64,
    /// Default quota: RAM MiB per project.
    #[arg(long, env = "STRATUS_QUOTA_RAM", default_value_t = 51200)]
    quota_ram: i64,
    /// Soft delete: deleted servers stay restorable this many seconds (0: off).
    #[arg(long, env = "STRATUS_RECLAIM_INSTANCE_INTERVAL", default_value_t = 0.0)]
    reclaim_instance_interval: f64,
    /// Offload shelved servers after this many seconds (0: at once, -1: never).
    #[arg(long, env = "STRATUS_SHELVED_OFFLOAD_TIME", default_value_t = 0.0, allow_negative_numbers = true)]
    shelved_offload_time: f64,
    /// Operation claim length, seconds: another controller adopts an
    /// operation whose controller stopped renewing it for this long.
    #[arg(long, env = "STRATUS_OP_CLAIM_TTL", default_value_t = 15.0)]
    op_claim_ttl: f64,
    /// Token lifetime, seconds.
    #[arg(long, env = "STRATUS_TOKEN_TTL", default_value_t = 3600)]
    token_ttl: i64,
    /// Fake driver: seconds to spawn a VM.
    #[arg(long, env = "STRATUS_FAKE_SPAWN_DELAY", default_value_t = 0.05)]
    fake_spawn_delay: f64,
    /// Fake hosts: vCPUs each offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_VCPUS", default_value_t = 64)]
    fake_host_vcpus: i64,
    /// Fake hosts: RAM MiB each offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_RAM_MB", default_value_t = 262_144)]
    fake_host_ram_mb: i64,
    /// Fake hosts: disk GiB each offers.
    #[arg(long, env = "STRATUS_FAKE_HOST_DISK_GB", default_value_t = 4096)]
    fake_host_disk_gb: i64,
    /// Fake driver: seconds to destroy a VM.
    #[arg(long, env = "STRATUS_FAKE_DESTROY_DELAY", default_value_t = 0.01)]
    fake_destroy_delay: f64,
}

impl Tunables {
    fn controller(&self) -> anyhow::Result<ControllerConfig> {
        let secs = |name: &str, v: f64| -> anyhow::Result<Duration> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow::anyhow!("{name} must be a non-negative number of seconds, got {v}"))
        };
        let cfg = ControllerConfig {
            lease_ttl: secs("lease_ttl", self.lease_ttl)?,
            lease_renew_interval: secs("lease_renew_interval", self.lease_renew_interval)?,
            terminate_ack_timeout: secs("terminate_ack_timeout", self.terminate_ack_timeout)?,
            terminate_timeout: secs("terminate_timeout", self.terminate_timeout)?,
            default_quota: QuotaLimits {
                instances: self.quota_instances,
                cores: self.quota_cores,
                ram: self.quota_ram,
            },
            reclaim_instance_interval: secs("reclaim_instance_interval", self.reclaim_instance_interval)?,
            op_claim_ttl: secs("op_claim_ttl", self.op_claim_ttl)?,
            shelved_offload_time: if self.shelved_offload_time < 0.0 {
                None
            } else {
                Some(secs("shelved_offload_time", self.shelved_offload_time)?)
            },
            ..ControllerConfig::default()
        };
        anyhow::ensure!(
            cfg.lease_renew_interval < cfg.lease_ttl,
            "lease_renew_interval ({:?}) must be shorter than lease_ttl ({:?})",
            cfg.lease_renew_interval,
            cfg.lease_ttl
        );
        Ok(cfg)
    }

    fn agent(&self, host: &str) -> anyhow::Result<AgentConfig> {
        let action: ReapAction =
            self.running_deleted_instance_action.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        Ok(AgentConfig {
            vcpus: self.fake_host_vcpus,
            memory_mb: self.fake_host_ram_mb,
            disk_gb: self.fake_host_disk_gb,
            reap_action: action,
            reap_interval: Duration::try_from_secs_f64(self.running_deleted_instance_poll_interval.max(0.1))
                .context("running_deleted_instance_poll_interval")?,
            ..AgentConfig::fake(host)
        })
    }

    fn fake_driver(&self, state_dir: Option<PathBuf>) -> FakeDriverConfig {
        FakeDriverConfig {
            spawn_delay: Duration::from_secs_f64(self.fake_spawn_delay.max(0.0)),
            destroy_delay: Duration::from_secs_f64(self.fake_destroy_delay.max(0.0)),
            state_dir,
            ..FakeDriverConfig::default()
        }
    }
}

#[derive(Args)]
struct UpArgs {
    /// Where the SQLite database, image files, fake VMs and clouds.yaml live.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./stratus-data")]
    data_dir: PathBuf,
    /// Number of fake compute hosts (compute-1 ...).
    #[arg(long, env = "STRATUS_FAKE_HOSTS", default_value_t = 2)]
    fake_hosts: u32,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "STRATUS_LISTEN", default_value = "127.0.0.1:8774")]
    listen: SocketAddr,
    /// Base URL clients use (defaults to http://<listen address>).
    #[arg(long, env = "STRATUS_PUBLIC_URL")]
    public_url: Option<String>,
    /// Use this NATS server as the bus (so `stratus compute` agents can join)
    /// instead of in-process channels.
    #[arg(long, env = "STRATUS_NATS_URL")]
    nats_url: Option<String>,
    #[command(flatten)]
    tunables: Tunables,
    #[command(flatten)]
    volumes: VolumeArgs,
}

/// Block storage settings of the roles that serve volumes.
#[derive(Args, Clone, Debug)]
struct VolumeArgs {
    /// Block storage backend: `local` (image files under <data-dir>/volumes) or `rbd` (Ceph).
    #[arg(long, env = "STRATUS_VOLUME_BACKEND", default_value = "local", value_parser = ["local", "rbd"])]
    volume_backend: String,
    /// Ceph configuration file (`rbd` backend).
    #[arg(long, env = "STRATUS_CEPH_CONF")]
    ceph_conf: Option<PathBuf>,
    /// Ceph pool holding the volumes (`rbd` backend).
    #[arg(long, env = "STRATUS_CEPH_POOL", default_value = "rbd")]
    ceph_pool: String,
    /// Default quota: volumes per project (-1 = unlimited).
    #[arg(long, env = "STRATUS_QUOTA_VOLUMES", default_value_t = 10, allow_negative_numbers = true)]
    quota_volumes: i64,
    /// Default quota: volume GiB per project (-1 = unlimited).
    #[arg(long, env = "STRATUS_QUOTA_GIGABYTES", default_value_t = 1000, allow_negative_numbers = true)]
    quota_gigabytes: i64,
}

impl VolumeArgs {
    /// The selected block storage backend.
    fn backend(&self, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn BlockBackend>> {
        Ok(match self.volume_backend.as_str() {
            "rbd" => {
                let conf = self.ceph_conf.clone().context("--volume-backend rbd needs --ceph-conf PATH")?;
                // A VM's storage client outlives a killed agent, as a real VM does.
                Arc::new(
                    stratus_blockstore::rbd::RbdBackend::new(self.ceph_pool.clone(), conf)
                        .with_holder_linger(std::time::Duration::from_secs(3600)),
                )
            }
            _ => {
                let dir = data_dir.join("volumes");
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
                Arc::new(stratus_blockstore::local::LocalBackend::new(dir))
            }
        })
    }

    /// Settings of the volume service.
    fn config(&self, image_dir: PathBuf) -> VolumeConfig {
        VolumeConfig {
            image_dir,
            quota_volumes: self.quota_volumes,
            quota_gigabytes: self.quota_gigabytes,
            rbd_pool: (self.volume_backend == "rbd").then(|| self.ceph_pool.clone()),
            ..VolumeConfig::default()
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Up(a) => up(a, true).await,
        Cmd::Api(mut a) => {
            anyhow::ensure!(
                a.nats_url.is_some(),
                "stratus api needs --nats-url (the controllers and agents join there)"
            );
            a.fake_hosts = 0;
            up(a, false).await
        }
        Cmd::Controller(a) => controller(a).await,
        Cmd::Compute(a) => compute(a).await,
        Cmd::Audit(a) => {
            let clean = audit::run(&a.data_dir, a.repair).await?;
            if !clean {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn up(a: UpArgs, with_controller: bool) -> anyhow::Result<()> {
    let cfg = a.tunables.controller()?;
    std::fs::create_dir_all(&a.data_dir).with_context(|| format!("cannot create data dir {}", a.data_dir.display()))?;
    let data_dir = a.data_dir.canonicalize()?;
    let ds = Datastore::open_sqlite(&data_dir.join("stratus.db")).await.context("cannot open the database")?;
    let listener =
        tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let public_url = a.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();

    let bus: Arc<dyn Bus> = match &a.nats_url {
        Some(url) => Arc::new(NatsBus::connect(url).await?),
        None => Arc::new(InProcessBus::new()),
    };
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::seconds(a.tunables.token_ttl));
    let image_dir = data_dir.join("images");
    std::fs::create_dir_all(&image_dir)?;
    let storage = a.volumes.backend(&data_dir)?;
    let volume = Arc::new(VolumeService::new(ds.clone(), storage.clone(), a.volumes.config(image_dir.clone())));
    let state = stratus_server::AppState {
        ds: ds.clone(),
        identity,
        compute: ComputeApi::new(ds.clone(), bus.clone(), cfg.clone()),
        bus: bus.clone(),
        public_url: public_url.clone(),
        image_dir,
        volume: volume.clone(),
    };
    let creds = bootstrap::bootstrap(&state, &data_dir).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    // The storage reconciler (interrupted volume creates and deletes, the
    // cleanup queue, fence lifts) runs in the controller role only: under
    // `stratus up` that is this process; `stratus api` alone never runs it,
    // so the API and a separate `stratus controller` never retry the same queue.
    if with_controller {
        Controller::new(ds.clone(), bus.clone(), cfg.clone())
            .with_volumes(volume.clone())
            .start(stop_rx.clone())
            .await?;
    }
    for i in 1..=a.fake_hosts {
        let host = format!("compute-{i}");
        let host_dir = data_dir.join("hosts").join(&host);
        std::fs::create_dir_all(&host_dir)?;
        let driver = Arc::new(FakeDriver::new(a.tunables.fake_driver(Some(host_dir.join("vms")))));
        let agent = Agent::new(bus.clone(), driver, a.tunables.agent(&host)?, AgentFaults::default())
            .with_storage(storage.clone());
        tokio::spawn(agent.run(stop_rx.clone()));
    }

    let clouds = bootstrap::write_clouds_yaml(&data_dir, &public_url, &creds)?;
    let app = stratus_server::router(state);
    println!("Stratus is listening on {public_url}");
    println!("clouds.yaml written to {}", clouds.display());
    println!("try: OS_CLIENT_CONFIG_FILE={} openstack --os-cloud stratus server list", clouds.display());
    info!(listen = %addr, hosts = a.fake_hosts, data_dir = %data_dir.display(), "stratus up");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    info!("stopped");
    Ok(())
}

async fn controller(a: ControllerArgs) -> anyhow::Result<()> {
    let cfg = a.tunables.controller()?;
    let ds = Datastore::open_sqlite(&a.data_dir.join("stratus.db")).await.context("cannot open the database")?;
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&a.nats_url).await?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let storage = a.volumes.backend(&a.data_dir)?;
    // The controller owns the volume steps of server operations and is the
    // one role that runs the storage reconciler.
    let volume = Arc::new(VolumeService::new(ds.clone(), storage, a.volumes.config(a.data_dir.join("images"))));
    Controller::new(ds, bus, cfg).with_volumes(volume).start(stop_rx).await?;
    println!("Stratus controller started");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    Ok(())
}

async fn compute(a: ComputeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.state_dir).with_context(|| format!("cannot create {}", a.state_dir.display()))?;
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&a.nats_url).await?);
    let driver = Arc::new(FakeDriver::new(a.tunables.fake_driver(Some(a.state_dir.join("vms")))));
    let faults = AgentFaults::default();
    #[cfg(unix)]
    {
        // Chaos switches for tests: SIGUSR1 wedges/unwedges the command
        // executor ("falsely up"), SIGUSR2 cuts the agent off / reconnects it.
        use tokio::signal::unix::{SignalKind, signal};
        let f = faults.clone();
        let mut usr1 = signal(SignalKind::user_defined1())?;
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                let on = !f.wedged();
                f.set_executor_wedged(on);
                tracing::warn!(wedged = on, "fault switch: command executor");
            }
        });
        let f = faults.clone();
        let mut usr2 = signal(SignalKind::user_defined2())?;
        tokio::spawn(async move {
            while usr2.recv().await.is_some() {
                let on = !f.cut_off();
                f.set_cut_off(on);
                tracing::warn!(cut_off = on, "fault switch: cut off from the control plane");
            }
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let storage = a.volumes.backend(&a.data_dir)?;
    let agent = Agent::new(bus, driver, a.tunables.agent(&a.host)?, faults).with_storage(storage);
    let task = tokio::spawn(agent.run(stop_rx));
    println!("Stratus compute agent {} started", a.host);
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}
