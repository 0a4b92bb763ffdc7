//! `stratus`: one binary, one subcommand per role. `stratus up` runs every
//! role in one process on the embedded defaults (SQLite file, in-process bus,
//! fake hypervisor), which is also what the end-to-end tests start.

mod audit;
mod bootstrap;
mod config;
mod hosts;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::*;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;
use stratus_blockstore::BlockBackend;
use stratus_bus::{Bus, InProcessBus, NatsBus};
use stratus_compute::{Agent, AgentFaults};
use stratus_controller::Controller;
use stratus_controller::compute_api::ComputeApi;
use stratus_db::Datastore;
use stratus_image::ImageService;
use stratus_types::faults::{FaultMode, Faults};
use stratus_volume::VolumeService;
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
    /// Fault points (comma-separated) at which the process aborts, for crash tests.
    #[arg(long, env = "STRATUS_FAULTS", global = true, hide = true)]
    faults: Option<String>,
    /// Log lines as text or as JSON objects (one per line); the level filter is `STRATUS_LOG`.
    #[arg(long, env = "STRATUS_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::default())]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the whole cloud in one process (API, controller, fake compute hosts).
    Up(Box<UpArgs>),
    /// Run only the API role (HTTP), sharing the database with controllers and joined over NATS.
    Api(Box<ApiArgs>),
    /// Run only the controller role (operations, scheduler, liveness); several may run.
    Controller(ControllerArgs),
    /// Run one compute host agent as its own process, joined over NATS.
    Compute(ComputeArgs),
    /// The host watchdog of a qemu compute host (started by `stratus
    /// compute`): kills the host's VMs when the agent stops renewing its lease.
    #[command(hide = true)]
    Watchdog(WatchdogArgs),
    /// Compare servers, zombies, ports, operations, notifications and the
    /// hosts' actual VMs; print every disagreement; exit 1 if there is any.
    Audit(AuditArgs),
}

/// Settings of every process that serves the HTTP APIs (`up` and `api`).
#[derive(Args)]
struct ApiCommon {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    database: config::DatabaseArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    #[command(flatten)]
    quota: ComputeQuotaArgs,
    #[command(flatten)]
    tokens: TokenArgs,
    #[command(flatten)]
    keystone: KeystoneArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    volume_quota: VolumeQuotaArgs,
    #[command(flatten)]
    image_quota: config::ImageQuotaArgs,
    #[command(flatten)]
    web_download: config::WebDownloadArgs,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    api: ApiCommon,
    /// Use this NATS server as the bus (so `stratus compute` agents can join)
    /// instead of in-process channels.
    #[arg(long, env = "STRATUS_NATS_URL")]
    nats_url: Option<String>,
    /// Number of fake compute hosts (compute-1 ...).
    #[arg(long, env = "STRATUS_FAKE_HOSTS", default_value_t = 2)]
    fake_hosts: u32,
    #[command(flatten)]
    leases: LeaseArgs,
    #[command(flatten)]
    deletes: DeleteArgs,
    #[command(flatten)]
    operations: OperationArgs,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    driver: DriverArgs,
    #[command(flatten)]
    guest: GuestArgs,
}

#[derive(Args)]
struct ApiArgs {
    #[command(flatten)]
    api: ApiCommon,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Args)]
struct ControllerArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    database: config::DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    leases: LeaseArgs,
    #[command(flatten)]
    deletes: DeleteArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    #[command(flatten)]
    operations: OperationArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    volume_quota: VolumeQuotaArgs,
}

#[derive(Args)]
struct ComputeArgs {
    /// Host name (unique in the cloud).
    #[arg(long)]
    host: String,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    /// Where the fake driver keeps its VMs (they outlive this process, like real VMs).
    #[arg(long)]
    state_dir: PathBuf,
    /// Data dir whose `volumes/` the `local` backend shares with the control plane.
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    driver: DriverArgs,
}

#[derive(Args)]
struct WatchdogArgs {
    /// The qemu driver's VM directory of the host.
    #[arg(long)]
    vm_dir: PathBuf,
    /// The file the agent feeds.
    #[arg(long)]
    feed_file: PathBuf,
}

#[derive(Args)]
struct AuditArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    database: config::DatabaseArgs,
    /// The storage backend to compare with the volume records.
    #[command(flatten)]
    backend: config::AuditBackendArgs,
    /// Fix what is safe to fix (release orphan ports, reap VMs of deleted servers on fake hosts).
    #[arg(long)]
    repair: bool,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sqlx::postgres::notice=error"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_target(false).init(),
        // The message beside the event's fields (not nested under `fields`),
        // so a shipper indexes `message` and `request_id` alike.
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(true).with_span_list(true).init(),
    }
}

/// Serve `/metrics` of this process on `addr`, for the roles without an HTTP API.
async fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = stratus_server::metrics::routes(stratus_metrics::Metrics::process());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    println!("Stratus metrics at http://{bound}/metrics");
    info!(listen = %bound, "metrics listener");
    Ok(())
}

/// glibc's malloc settings `stratus` chooses unless the operator set them
/// (environment variable, value), and why:
///
/// - `MALLOC_ARENA_MAX=2` (one arena per core here). Left alone, glibc gives
///   threads that allocate at the same time arenas of their own (up to 8 per
///   core), and what a burst frees stays spread over them: peak RSS of a
///   burst of 1,000 deletes was 153 MiB with the default, 90-104 MiB with 2
///   arenas, at a cost within the runs' noise (README, Performance).
/// - `MALLOC_MMAP_THRESHOLD_=1048576` (1 MiB, fixed). Each Argon2 password
///   hash (bootstrap users at every start, password logins) takes a 19 MiB
///   block. glibc serves the first from `mmap`, then, seeing it freed,
///   raises its threshold so the next comes from the heap, where it stays
///   resident after it is freed: a fresh `stratus up` idled at 40 MiB RSS,
///   20 of it that one freed block (found with `heaptrack`). A fixed
///   threshold keeps every block of 1 MiB or more on `mmap`, returned to the
///   system when freed: 26 MiB idle.
const MALLOC_TUNING: [(&str, &str); 2] = [("MALLOC_ARENA_MAX", "2"), ("MALLOC_MMAP_THRESHOLD_", "1048576")];

/// Apply [`MALLOC_TUNING`]. glibc reads these only when a process starts, so
/// the process executes itself again once, same pid and arguments, with the
/// missing ones set.
fn tune_malloc() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let missing: Vec<(&str, &str)> =
        MALLOC_TUNING.into_iter().filter(|(var, _)| std::env::var_os(var).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // Only returns if the exec failed: carry on with glibc's defaults.
    let err = cmd.args(args).envs(missing.iter().copied()).exec();
    eprintln!("stratus: could not re-execute with {missing:?} ({err}); glibc's default malloc settings are used");
}

fn main() -> anyhow::Result<()> {
    tune_malloc();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // Fault points are read here, once, and handed to every role.
    let faults = cli.faults.as_deref().map(|l| Faults::from_list(l, FaultMode::AbortProcess)).unwrap_or_default();
    stratus_types::faults::install(faults.clone());
    match cli.cmd {
        Cmd::Up(a) => up(*a, faults).await,
        Cmd::Api(a) => api(*a).await,
        Cmd::Controller(a) => controller(a, faults).await,
        Cmd::Compute(a) => compute(a, faults).await,
        Cmd::Watchdog(a) => hosts::run_watchdog(a.vm_dir, a.feed_file, std::time::Duration::from_millis(100)).await,
        Cmd::Audit(a) => {
            let url = a.database.url(&a.data.data_dir)?;
            let backend = a.backend.resolve(&a.data.data_dir)?.backend(&a.data.data_dir)?;
            let clean = audit::run(&a.data.data_dir, &url, backend, a.repair).await?;
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

/// Create the data dir and open the database (by default, in it).
async fn open_data_dir(data: &DataArgs, database: &config::DatabaseArgs) -> anyhow::Result<(PathBuf, Datastore)> {
    std::fs::create_dir_all(&data.data_dir)
        .with_context(|| format!("cannot create data dir {}", data.data_dir.display()))?;
    let data_dir = data.data_dir.canonicalize()?;
    harden_data_dir(&data_dir)?;
    let url = database.url(&data_dir)?;
    let shown = match &url {
        stratus_db::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        stratus_db::DatabaseUrl::Postgres(u) => stratus_db::redact_url(u),
    };
    let ds = Datastore::open(&url).await.with_context(|| format!("cannot open the database {shown}"))?;
    info!(database = %shown, "database open");
    harden_data_dir(&data_dir)?;
    Ok((data_dir, ds))
}

/// Make the data dir private whatever the umask and whatever was there
/// before: the directory and its subdirectories of secrets and tenant data
/// 0700, the files directly in it (database, passwords, clouds.yaml) 0600.
fn harden_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot restrict {}", p.display()))
    };
    set(data_dir, 0o700)?;
    for e in std::fs::read_dir(data_dir)?.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            set(&e.path(), 0o700)?;
        } else if ft.is_file() {
            set(&e.path(), 0o600)?;
        }
    }
    Ok(())
}

/// What `up` and `api` share: the HTTP APIs and the services behind them.
struct ApiRole {
    listener: tokio::net::TcpListener,
    public_url: String,
    state: stratus_server::AppState,
    volume: Arc<VolumeService>,
    storage: Arc<dyn BlockBackend>,
    data_dir: PathBuf,
    /// The bootstrap users' passwords (none with an external Keystone).
    creds: Option<bootstrap::Credentials>,
}

async fn api_role(
    a: &ApiCommon,
    controller: Option<(&LeaseArgs, &DeleteArgs, &OperationArgs)>,
    bus: Arc<dyn Bus>,
    ds: Datastore,
    data_dir: PathBuf,
    seed: &bootstrap::Seed,
) -> anyhow::Result<(ApiRole, stratus_controller::ControllerConfig)> {
    let listener = tokio::net::TcpListener::bind(a.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.http.listen))?;
    let addr = listener.local_addr()?;
    let public_url =
        a.http.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();
    let image_dir = data_dir.join("images");
    std::fs::create_dir_all(&image_dir)?;
    let cfg = ControllerParts {
        leases: controller.map(|c| c.0),
        deletes: controller.map(|c| c.1),
        operations: controller.map(|c| c.2),
        retention: &a.retention,
        quota: Some(&a.quota),
    }
    .build()?;
    let token_ttl = chrono::Duration::from_std(a.tokens.token_ttl.0).context("token_ttl is too long")?;
    let identity = stratus_auth::Identity::new(ds.clone(), token_ttl).with_login_limits(a.tokens.login_limits()?);
    let storage = stratus_effects::backend(a.backend.backend(&data_dir)?, "control");
    a.backend.record(&data_dir)?;
    let volume = Arc::new(VolumeService::new(
        ds.clone(),
        storage.clone(),
        a.volume_quota.volume_config(&a.backend, image_dir.clone()),
    ));
    let mut compute = ComputeApi::new(ds.clone(), bus.clone(), cfg.clone());
    let tokens = match a.keystone.config()? {
        None => stratus_auth::TokenValidator::Builtin(identity.clone()),
        Some(kcfg) => {
            let keystone = Arc::new(stratus_auth::Keystone::new(kcfg)?);
            connect_keystone(&keystone, &public_url).await?;
            compute = compute.with_keystone(keystone.clone());
            stratus_auth::TokenValidator::Keystone(keystone)
        }
    };
    // An in-use volume that grows (Block Storage 3.42) tells its servers.
    volume.set_server_events(Arc::new(compute.clone()));
    let state = stratus_server::AppState {
        tokens,
        identity,
        compute,
        bus: bus.clone(),
        public_url: public_url.clone(),
        volume: volume.clone(),
        images: Arc::new({
            let images = ImageService::new(ds.clone(), image_dir).with_quota(a.image_quota.quota());
            match a.web_download.guard() {
                Some(guard) => images.with_web_download(guard),
                None => images,
            }
        }),
        metrics: stratus_metrics::Metrics::process(),
    };
    let creds = bootstrap::bootstrap(&state, &data_dir, seed).await?;
    Ok((ApiRole { listener, public_url, state, volume, storage, data_dir, creds }, cfg))
}

/// Get the service token and publish the endpoints. The token is retried
/// for up to 60 s (Keystone may be starting beside Stratus); then, or when
/// publishing fails (the service user has no admin role), startup fails.
async fn connect_keystone(keystone: &stratus_auth::Keystone, public_url: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match keystone.service_project_id().await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(keystone = keystone.url(), error = %e, "waiting for Keystone");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => {
                anyhow::bail!("cannot get a service token from the Keystone at {}: {e} (see the log)", keystone.url())
            }
        }
    }
    keystone.publish_endpoints(public_url).await.with_context(|| format!("Keystone at {}", keystone.url()))?;
    info!(keystone = keystone.url(), "tokens are validated by Keystone; endpoints published");
    Ok(())
}

/// Serve the APIs until SIGTERM or Ctrl-C, then stop the background tasks.
async fn serve(role: ApiRole, hosts: u32, stop_tx: watch::Sender<bool>) -> anyhow::Result<()> {
    let keystone = role.state.tokens.keystone().map(|k| k.url().to_string());
    let clouds = match &role.creds {
        Some(creds) => Some(bootstrap::write_clouds_yaml(&role.data_dir, &role.public_url, creds)?),
        None => None,
    };
    harden_data_dir(&role.data_dir)?;
    let addr = role.listener.local_addr()?;
    sweep_image_holds(role.state.images.clone(), stop_tx.subscribe());
    let app = stratus_server::router(role.state);
    println!("Stratus is listening on {}", role.public_url);
    if let Some(clouds) = clouds {
        println!("clouds.yaml written to {}", clouds.display());
        println!("try: OS_CLIENT_CONFIG_FILE={} openstack --os-cloud stratus server list", clouds.display());
    }
    if let Some(url) = keystone {
        println!("identity: the Keystone at {url} (auth_url {url}/v3)");
    }
    info!(listen = %addr, hosts, data_dir = %role.data_dir.display(), "stratus up");
    // The peer address reaches handlers (failed logins are counted per address).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(role.listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    info!("stopped");
    Ok(())
}

/// Release image uploads, stages, imports and tasks whose API process died
/// (see `stratus_image::sweep`): at start, then every 30 s, in every API
/// process (each release is a compare-and-swap, so several APIs may sweep).
fn sweep_image_holds(images: Arc<ImageService>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            match images.sweep_interrupted().await {
                Ok(s) if s.images + s.tasks > 0 => {
                    info!(images = s.images, tasks = s.tasks, "released the image holds of stopped processes")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "image hold sweep failed; retrying later"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                _ = stop.changed() => break,
            }
        }
    });
}

async fn up(a: UpArgs, faults: Faults) -> anyhow::Result<()> {
    // A real guest must exist before anything starts: no half-seeded cloud.
    let seed = match a.driver.driver {
        DriverKind::Fake => bootstrap::Seed::Fake,
        DriverKind::Qemu => bootstrap::Seed::Guest(a.guest.guest_files()?),
    };
    let (data_dir, ds) = open_data_dir(&a.api.data, &a.api.database).await?;
    let bus: Arc<dyn Bus> = match &a.nats_url {
        Some(url) => Arc::new(NatsBus::connect(url).await?),
        None => Arc::new(InProcessBus::new()),
    };
    let (role, cfg) =
        api_role(&a.api, Some((&a.leases, &a.deletes, &a.operations)), bus.clone(), ds.clone(), data_dir, &seed)
            .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // The cluster gauges (hosts, zombies, cleanups) come with the controller role.
    stratus_metrics::Metrics::process().add_scrape_hook(Arc::new(stratus_controller::ClusterGauges::new(ds.clone())));
    // The storage reconciler (interrupted volume creates and deletes, the
    // cleanup queue, fence lifts) runs in the controller role only: under
    // `stratus up` that is this process; `stratus api` alone never runs it,
    // so the API and a separate `stratus controller` never retry the same queue.
    Controller::new(ds.clone(), bus.clone(), cfg, role.state.images.clone())
        .with_volumes(role.volume.clone())
        .with_faults(faults.clone())
        .start(stop_rx.clone())
        .await?;
    for i in 1..=a.fake_hosts {
        let host = format!("compute-{i}");
        let host_dir = role.data_dir.join("hosts").join(&host);
        std::fs::create_dir_all(&host_dir)?;
        let image_dir = role.data_dir.join("images");
        let (driver, agent_cfg) = hosts::host_driver(&a.driver, &a.agent, &host, &host_dir, &image_dir)?;
        let agent = Agent::new(bus.clone(), driver, agent_cfg, AgentFaults::default())
            .with_storage(role.storage.clone())
            .with_fault_points(faults.clone());
        tokio::spawn(agent.run(stop_rx.clone()));
    }
    serve(role, a.fake_hosts, stop_tx).await
}

async fn api(a: ApiArgs) -> anyhow::Result<()> {
    let (data_dir, ds) = open_data_dir(&a.api.data, &a.api.database).await?;
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&a.nats.nats_url).await?);
    let (role, _cfg) = api_role(&a.api, None, bus, ds, data_dir, &bootstrap::Seed::Fake).await?;
    let (stop_tx, _stop_rx) = watch::channel(false);
    serve(role, 0, stop_tx).await
}

async fn controller(a: ControllerArgs, faults: Faults) -> anyhow::Result<()> {
    let (data_dir, ds) = open_data_dir(&a.data, &a.database).await?;
    let cfg = ControllerParts {
        leases: Some(&a.leases),
        deletes: Some(&a.deletes),
        operations: Some(&a.operations),
        retention: &a.retention,
        quota: None,
    }
    .build()?;
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&a.nats.nats_url).await?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let storage = stratus_effects::backend(a.backend.backend(&data_dir)?, "control");
    a.backend.record(&data_dir)?;
    // The controller owns the volume steps of server operations and is the
    // one role that runs the storage reconciler.
    let image_dir = data_dir.join("images");
    let volume =
        Arc::new(VolumeService::new(ds.clone(), storage, a.volume_quota.volume_config(&a.backend, image_dir.clone())));
    // Snapshots (shelve, createImage) are written by the image service, on
    // the same image directory the API role serves.
    let images = Arc::new(ImageService::new(ds.clone(), image_dir));
    stratus_metrics::Metrics::process().add_scrape_hook(Arc::new(stratus_controller::ClusterGauges::new(ds.clone())));
    let controller = Controller::new(ds, bus, cfg, images).with_volumes(volume).with_faults(faults);
    controller.start(stop_rx).await?;
    if let Some(addr) = a.metrics.metrics_listen {
        serve_metrics(addr).await?;
    }
    println!("Stratus controller started");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    controller.stopped(std::time::Duration::from_secs(2)).await;
    Ok(())
}

async fn compute(a: ComputeArgs, fault_points: Faults) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.state_dir).with_context(|| format!("cannot create {}", a.state_dir.display()))?;
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&a.nats.nats_url).await?);
    let image_dir = a.data.data_dir.join("images");
    let (driver, agent_cfg) = hosts::host_driver(&a.driver, &a.agent, &a.host, &a.state_dir, &image_dir)?;
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
    let storage = stratus_effects::backend(a.backend.backend(&a.data.data_dir)?, &a.host);
    let agent = Agent::new(bus, driver, agent_cfg, faults).with_storage(storage).with_fault_points(fault_points);
    let task = tokio::spawn(agent.run(stop_rx));
    if let Some(addr) = a.metrics.metrics_listen {
        serve_metrics(addr).await?;
    }
    println!("Stratus compute agent {} started", a.host);
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}
