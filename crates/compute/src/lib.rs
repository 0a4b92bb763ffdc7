//! The compute agent of one host.
//!
//! One loop both renews the host's lease and takes commands off the bus, so
//! an agent whose loop is wedged stops renewing and is seen as down (Nova's
//! separate heartbeat timer keeps a wedged host looking alive). Commands run
//! in per-server tasks serialised by a per-server lock; `terminate` preempts a
//! spawn in flight. After (re)joining with a new epoch, the agent reconciles
//! before serving commands: VMs of servers that are not supposed to be on this
//! host are handled by `running_deleted_instance_action`.
//!
//! Storage clients the agent opens for a VM (the fake driver's VMs do not
//! open their volumes themselves) belong to that VM: those that are
//! processes of their own are recorded on disk (see [`records`]), so that
//! destroying or reaping the VM ends them, also after the agent restarted.

pub mod records;
mod tombstones;

use bytes::Bytes;
use records::{ClientRecords, Held};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stratus_blockstore::{BlockBackend, OpenClient};
use stratus_bus::{Bus, BusError, Message, reply};
use stratus_driver::{Driver, DriverError, VmSpec};
use stratus_metrics::{CommandOutcome, LeaseRenewal};
use stratus_types::agent::VolumeConnection;
use stratus_types::agent::*;
use stratus_types::{AttachmentId, PowerState, ServerId};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

/// What to do with a VM whose server is deleted or placed elsewhere
/// (Nova's `running_deleted_instance_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapAction {
    /// Destroy the VM.
    Reap,
    /// Power it off, keep it.
    Shutdown,
    /// Only log it.
    Log,
    /// Ignore it.
    Noop,
}

impl std::str::FromStr for ReapAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reap" => Ok(Self::Reap),
            "shutdown" => Ok(Self::Shutdown),
            "log" => Ok(Self::Log),
            "noop" => Ok(Self::Noop),
            o => Err(format!("unknown running_deleted_instance_action {o:?} (reap|shutdown|log|noop)")),
        }
    }
}

/// Agent settings.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Host name (unique).
    pub host: String,
    /// vCPUs offered.
    pub vcpus: i64,
    /// RAM MiB offered.
    pub memory_mb: i64,
    /// Disk GiB offered.
    pub disk_gb: i64,
    /// What to do with VMs that should not run here.
    pub reap_action: ReapAction,
    /// How often to look for such VMs.
    pub reap_interval: Duration,
    /// Timeout of requests to the controller.
    pub rpc_timeout: Duration,
    /// The host watchdog's feed file (qemu hosts): after each renewal the
    /// agent writes until when the host may run VMs, the lease's end minus
    /// `watchdog_margin`; the watchdog kills the VMs once that passes.
    pub watchdog_feed: Option<std::path::PathBuf>,
    /// How long before the lease's end the watchdog fires.
    pub watchdog_margin: Duration,
    /// The host's state directory: where the agent records the storage
    /// client processes it opened for each VM, so that an agent that
    /// restarted still ends them with the VM. None: in memory only.
    pub state_dir: Option<std::path::PathBuf>,
    /// Hosts whose VMs do not open volumes themselves (the fake driver): how
    /// often each VM's storage client writes a sequence-numbered block to
    /// each of its volumes, as a guest would (`None`: never). Fault tests
    /// turn it on to read volumes back: a volume released after a fence
    /// must never change again, whatever the old host still does.
    pub guest_writes: Option<Duration>,
}

impl AgentConfig {
    /// Defaults for a fake host named `host`.
    pub fn fake(host: &str) -> Self {
        Self {
            host: host.to_string(),
            vcpus: 64,
            memory_mb: 262_144,
            disk_gb: 4096,
            reap_action: ReapAction::Reap,
            reap_interval: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(2),
            watchdog_feed: None,
            watchdog_margin: Duration::from_secs(2),
            state_dir: None,
            guest_writes: None,
        }
    }
}

/// Test and chaos switches inside the agent.
#[derive(Clone, Default)]
pub struct AgentFaults {
    wedged: Arc<std::sync::atomic::AtomicBool>,
    cut_off: Arc<std::sync::atomic::AtomicBool>,
}

impl AgentFaults {
    /// Cut the agent off from the control plane (or restore it): lease
    /// renewals stop and commands are dropped unanswered, as in a network
    /// partition, while VMs keep running.
    pub fn set_cut_off(&self, on: bool) {
        self.cut_off.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Is the agent cut off?
    pub fn cut_off(&self) -> bool {
        self.cut_off.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Is the executor wedged?
    pub fn wedged(&self) -> bool {
        self.executor_wedged()
    }

    /// Wedge (or unwedge) the command executor: commands are acknowledged but
    /// never executed, while the lease keeps being renewed ("falsely up").
    pub fn set_executor_wedged(&self, on: bool) {
        self.wedged.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn executor_wedged(&self) -> bool {
        self.wedged.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Tracking {
    locks: HashMap<ServerId, Arc<tokio::sync::Mutex<()>>>,
    cancels: HashMap<ServerId, Arc<Notify>>,
    /// The terminates seen lately (a spawn or attach from before one must not run).
    tombstones: tombstones::Tombstones,
}

/// The storage clients a host holds open for its VMs: attachment id →
/// (server id, client).
type Clients = Arc<tokio::sync::Mutex<HashMap<AttachmentId, (ServerId, Box<dyn OpenClient>)>>>;

/// How long a storage client process may take to disappear after SIGKILL.
const CLIENT_END_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause before retrying a failed renewal: a quarter of the renewal
/// interval (at least 100 ms), so a host reaches a new leader soon after it
/// takes over, without every host of a large cloud retrying in a tight loop.
fn retry_after(renew_every: Duration) -> Duration {
    (renew_every / 4).max(Duration::from_millis(100))
}

/// Size of the block a guest write puts at the start of a volume.
pub const GUEST_BLOCK: usize = 512;

/// The block of guest write `seq` by `client` at `at_ms` (Unix ms): a text
/// line, zero-padded to [`GUEST_BLOCK`] bytes, so a reader of the volume
/// can tell which write it holds.
pub fn guest_block(seq: u64, at_ms: u64, client: &str) -> Vec<u8> {
    let mut b = format!("stratus-guest-write seq={seq} at_ms={at_ms} client={client}\n").into_bytes();
    b.resize(GUEST_BLOCK.max(b.len()), 0);
    b
}

/// The guest of each fake VM: every `every`, each storage client the agent
/// holds writes its next sequence-numbered block at offset 0. A fenced
/// client's write fails, as a zombie's would; it keeps trying.
async fn guest_writes(clients: Clients, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut held = clients.lock().await;
        for (_, client) in held.values_mut() {
            seq += 1;
            let block = guest_block(seq, at_ms, &client.id().0);
            if let Err(e) = client.write(0, &block).await {
                debug!(client = %client.id().0, error = %e, "guest write refused");
            }
        }
    }
}

/// A running agent.
pub struct Agent {
    bus: Arc<dyn Bus>,
    driver: Arc<dyn Driver>,
    cfg: AgentConfig,
    faults: AgentFaults,
    /// Crash-test fault points (`agent:before:<command>`, `agent:after:<command>`), injected by the binary.
    points: stratus_types::faults::Faults,
    tracking: Arc<Mutex<Tracking>>,
    storage: Option<Arc<dyn BlockBackend>>,
    clients: Clients,
    /// The storage client processes of each VM, on disk.
    records: Arc<ClientRecords>,
    /// Where lease renewals, commands and reaped VMs are counted.
    metrics: stratus_metrics::Metrics,
    /// The epoch of the last join (0 before the first), stamped on inventories.
    epoch: Arc<AtomicI64>,
    /// Held while an inventory is in flight: reports go one at a time, so a
    /// report is made only after the previous one was answered (a storage
    /// fence is lifted on the second report handled after it; see
    /// `VolumeService::lift_fences`).
    inventory_turn: Arc<tokio::sync::Mutex<()>>,
}

impl Agent {
    /// An agent for `cfg.host` driving `driver`.
    pub fn new(bus: Arc<dyn Bus>, driver: Arc<dyn Driver>, cfg: AgentConfig, faults: AgentFaults) -> Self {
        let records = Arc::new(ClientRecords::new(cfg.state_dir.as_ref().map(|d| d.join("storage-clients"))));
        Self {
            bus,
            driver,
            cfg,
            faults,
            points: stratus_types::faults::Faults::none(),
            tracking: Arc::default(),
            storage: None,
            clients: Arc::default(),
            records,
            metrics: stratus_metrics::Metrics::process(),
            epoch: Arc::default(),
            inventory_turn: Arc::default(),
        }
    }

    /// Count into `metrics` instead of the process's.
    pub fn with_metrics(mut self, metrics: stratus_metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Use the fault points `points` (crash tests; none by default).
    pub fn with_fault_points(mut self, points: stratus_types::faults::Faults) -> Self {
        self.points = points;
        self
    }

    /// Give the host access to block storage, so its VMs can open volumes.
    pub fn with_storage(mut self, backend: Arc<dyn BlockBackend>) -> Self {
        self.storage = Some(backend);
        self
    }

    /// End the recorded storage client processes of `server_id` whose
    /// attachment `which` selects (SIGKILL, only while the process still
    /// carries its marker, then wait until it is gone), dropping each record
    /// once its process is gone. Those this agent process still holds in
    /// memory are closed by their owner instead, before this runs.
    async fn end_recorded(&self, server_id: &ServerId, which: impl Fn(&AttachmentId) -> bool) -> Result<(), String> {
        let held = self.records.load(server_id).map_err(|e| e.to_string())?;
        for h in held.into_iter().filter(|h| which(&h.attachment_id)) {
            if h.process.is_running() {
                info!(host = %self.cfg.host, server = %server_id, attachment = %h.attachment_id, volume = %h.volume,
                      pid = h.process.pid, "ending a storage client process of the VM");
            }
            h.process.end(CLIENT_END_TIMEOUT).await.map_err(|e| e.to_string())?;
            self.records.remove(server_id, &h).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// End the storage clients of servers that have no VM here and are not
    /// placed here: those this process holds (an attach that ran after its
    /// server's VM was destroyed) and the processes an earlier agent process
    /// recorded (a crash between opening a client and its VM existing).
    /// Nothing else would, and each keeps its volume busy and its fence up.
    async fn end_orphan_clients(&self, vms: &HashSet<ServerId>, expected: &HashSet<ServerId>) {
        let held: HashSet<ServerId> = self.clients.lock().await.values().map(|(s, _)| *s).collect();
        for server_id in held.into_iter().filter(|s| !vms.contains(s) && !expected.contains(s)) {
            let lock = self.server_lock(&server_id);
            let _g = lock.lock().await;
            // The lists above are a moment old: a server placed since then
            // has its VM by now if it has clients (they open after the spawn).
            let spawning = self.tracking.lock().unwrap_or_else(|p| p.into_inner()).cancels.contains_key(&server_id);
            let has_vm = self.driver.list().await.map(|l| l.iter().any(|v| v.server_id == server_id)).unwrap_or(true);
            if spawning || has_vm {
                continue;
            }
            info!(host = %self.cfg.host, server = %server_id, "closing the storage clients of a server that has no VM here");
            self.close_clients_of(&server_id).await;
        }
        let servers = match self.records.servers() {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot list storage client records");
                return;
            }
        };
        for server_id in servers.into_iter().filter(|s| !vms.contains(s) && !expected.contains(s)) {
            let lock = self.server_lock(&server_id);
            let _g = lock.lock().await;
            // Clients this process holds are live; only earlier ones can be orphans.
            let mine: HashSet<AttachmentId> =
                self.clients.lock().await.iter().filter(|(_, (s, _))| *s == server_id).map(|(a, _)| *a).collect();
            if let Err(e) = self.end_recorded(&server_id, |a| !mine.contains(a)).await {
                warn!(server = %server_id, error = %e, "ending orphan storage client processes failed");
            }
        }
    }

    /// Close every storage client of `server_id` (its VM is gone).
    async fn close_clients_of(&self, server_id: &ServerId) {
        let mine: Vec<AttachmentId> =
            self.clients.lock().await.iter().filter(|(_, (s, _))| s == server_id).map(|(a, _)| *a).collect();
        for a in mine {
            let c = self.clients.lock().await.remove(&a);
            if let Some((_, c)) = c
                && let Err(e) = c.close().await
            {
                warn!(attachment = %a, error = %e, "closing a storage client failed");
            }
        }
    }

    /// Run until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        if let Some(every) = me.cfg.guest_writes.filter(|_| !me.driver.opens_volumes()) {
            tokio::spawn(guest_writes(me.clients.clone(), every, shutdown.clone()));
        }
        let subject = agent_subject(&me.cfg.host);
        let mut sub = loop {
            match me.bus.subscribe(&subject).await {
                Ok(s) => break s,
                Err(e) => {
                    warn!(host = %me.cfg.host, error = %e, "cannot subscribe to commands; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let console_subject = agent_console_subject(&me.cfg.host);
        let mut console = loop {
            match me.bus.subscribe(&console_subject).await {
                Ok(s) => break s,
                Err(e) => {
                    warn!(host = %me.cfg.host, error = %e, "cannot subscribe to console reads; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let mut epoch: Option<i64> = None;
        // The agent's own view of its lease, by its monotonic clock, measured
        // conservatively from when each request was sent. Once it lapses the
        // agent refuses commands until it has rejoined and reconciled, even
        // if the controller's verdict has not reached it (e.g. after SIGCONT).
        let mut lease_until = tokio::time::Instant::now();
        let mut lease_ttl = Duration::from_secs(10);
        let mut renew_every = Duration::from_secs(2);
        let mut next_renew = tokio::time::Instant::now();
        let mut reap_tick = tokio::time::interval(me.cfg.reap_interval);
        reap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                info!(host = %me.cfg.host, "agent stopping");
                return;
            }
            if epoch.is_none() && !me.faults.cut_off() {
                let sent = tokio::time::Instant::now();
                let sent_mono = stratus_driver::qemu::watchdog::monotonic_ms();
                match me.join().await {
                    Ok(j) => {
                        lease_ttl = Duration::from_millis(j.lease_ttl_ms);
                        lease_until = sent + lease_ttl;
                        me.feed_watchdog(sent_mono, lease_ttl);
                        info!(host = %me.cfg.host, epoch = j.epoch, "joined; reconciling before taking work");
                        me.epoch.store(j.epoch, Ordering::SeqCst);
                        renew_every = Duration::from_millis(j.renew_interval_ms.max(100));
                        next_renew = tokio::time::Instant::now() + renew_every;
                        me.reconcile().await;
                        epoch = Some(j.epoch);
                    }
                    Err(e) => {
                        debug!(host = %me.cfg.host, error = %e, "join failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.changed() => {}
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_renew) => {
                    next_renew = tokio::time::Instant::now() + renew_every;
                    if me.faults.cut_off() {
                        continue;
                    }
                    if epoch.is_some() && tokio::time::Instant::now() >= lease_until {
                        // A lapsed lease is never renewed, whoever would
                        // answer (a new leader grants every host a fresh
                        // lease at takeover): rejoin and reconcile first.
                        warn!(host = %me.cfg.host, "own lease lapsed; rejoining with a new epoch");
                        epoch = None;
                        continue;
                    }
                    if let Some(e) = epoch {
                        let sent = tokio::time::Instant::now();
                        let sent_mono = stratus_driver::qemu::watchdog::monotonic_ms();
                        match me.renew(e).await {
                            Ok(LeaseReply::Renewed) => {
                                me.metrics.agent_lease_renewal(LeaseRenewal::Renewed);
                                lease_until = sent + lease_ttl;
                                me.feed_watchdog(sent_mono, lease_ttl);
                            }
                            Ok(LeaseReply::MustRejoin) => {
                                me.metrics.agent_lease_renewal(LeaseRenewal::MustRejoin);
                                warn!(host = %me.cfg.host, epoch = e, "lease lapsed; rejoining with a new epoch");
                                epoch = None;
                            }
                            Err(err) => {
                                me.metrics.agent_lease_renewal(LeaseRenewal::Failed);
                                warn!(host = %me.cfg.host, error = %err, "lease renewal failed");
                                // Try again soon: renewals go to the leader
                                // controller, and a new one answers within
                                // `--leader-ttl` of the old one's loss.
                                next_renew = tokio::time::Instant::now() + retry_after(renew_every);
                            }
                        }
                    }
                }
                msg = sub.next() => {
                    let Some(msg) = msg else { warn!("command subscription closed"); return; };
                    if me.faults.cut_off() {
                        continue; // partitioned: the command never arrives
                    }
                    let valid = if tokio::time::Instant::now() < lease_until { epoch } else { None };
                    me.clone().on_command(msg, valid).await;
                }
                msg = console.next() => {
                    let Some(msg) = msg else { warn!("console subscription closed"); return; };
                    if me.faults.cut_off() {
                        continue; // partitioned: the request never arrives
                    }
                    // A read: answered whatever the lease says, off the loop.
                    let me2 = me.clone();
                    tokio::spawn(async move { me2.on_console(msg).await });
                }
                _ = reap_tick.tick() => {
                    me.forget_old_terminates();
                    if epoch.is_some() && !me.faults.cut_off() {
                        let me2 = me.clone();
                        tokio::spawn(async move { me2.reconcile().await });
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Tell the host watchdog the VMs may run until the lease (measured
    /// from when its request was sent) ends, minus the margin.
    fn feed_watchdog(&self, sent_mono_ms: u64, lease_ttl: Duration) {
        let Some(file) = &self.cfg.watchdog_feed else { return };
        let ttl = lease_ttl.saturating_sub(self.cfg.watchdog_margin).as_millis() as u64;
        if let Err(e) = stratus_driver::qemu::watchdog::feed(file, sent_mono_ms + ttl) {
            warn!(file = %file.display(), error = %e, "cannot feed the watchdog; it will self-fence the VMs");
        }
    }

    async fn join(&self) -> Result<JoinReply, String> {
        let req = JoinRequest {
            host: self.cfg.host.clone(),
            vcpus: self.cfg.vcpus,
            memory_mb: self.cfg.memory_mb,
            disk_gb: self.cfg.disk_gb,
        };
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        let r = self.bus.request(SUBJECT_JOIN, body.into(), self.cfg.rpc_timeout).await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&r).map_err(|e| e.to_string())
    }

    async fn renew(&self, epoch: i64) -> Result<LeaseReply, String> {
        let body =
            serde_json::to_vec(&LeaseRequest { host: self.cfg.host.clone(), epoch }).map_err(|e| e.to_string())?;
        let r = self.bus.request(SUBJECT_LEASE, body.into(), self.cfg.rpc_timeout).await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&r).map_err(|e| e.to_string())
    }

    /// Handle VMs that should not be here. The VM list is read *before* the
    /// inventory, so a VM spawned meanwhile is never mistaken for a leftover
    /// (its server row named this host before the spawn command was sent).
    /// The VM list goes with the request, so the controller releases the
    /// capacity of zombies whose VM is gone; after reaping, the new list is
    /// reported at once.
    pub async fn reconcile(&self) {
        let vms = match self.driver.list().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "cannot list VMs");
                return;
            }
        };
        // A spawn in flight counts as present: its VM may appear any moment,
        // so the controller must not release a zombie's capacity yet.
        let mut present: Vec<ServerId> = vms.iter().map(|v| v.server_id).collect();
        present.extend(self.tracking.lock().unwrap_or_else(|p| p.into_inner()).cancels.keys().cloned());
        let inv: InventoryReply = match self.inventory(present).await {
            Ok(i) => i,
            Err(e) => {
                debug!(error = %e, "no inventory; not reaping");
                return;
            }
        };
        let expected: HashSet<ServerId> = inv.servers.into_iter().collect();
        if self.cfg.reap_action == ReapAction::Reap {
            let with_vm: HashSet<ServerId> = vms.iter().map(|v| v.server_id).collect();
            self.end_orphan_clients(&with_vm, &expected).await;
        }
        let mut destroyed = false;
        for vm in vms {
            if expected.contains(&vm.server_id) {
                continue;
            }
            let lock = self.server_lock(&vm.server_id);
            let _g = lock.lock().await;
            match self.cfg.reap_action {
                ReapAction::Reap => match self.destroy_vm(&vm.server_id).await {
                    Ok(()) => {
                        destroyed = true;
                        self.metrics.agent_reaped();
                        info!(host = %self.cfg.host, server = %vm.server_id, "reaped VM of a server that is deleted or not placed here");
                    }
                    Err(e) => warn!(server = %vm.server_id, error = %e, "reap failed"),
                },
                ReapAction::Shutdown => {
                    if vm.power_state == PowerState::Running.code() {
                        let _ = self.driver.power_off(&vm.server_id).await;
                        info!(server = %vm.server_id, "powered off VM of a deleted server");
                    }
                }
                ReapAction::Log => warn!(server = %vm.server_id, "VM of a deleted server is still on this host"),
                ReapAction::Noop => {}
            }
        }
        if destroyed && let Ok(vms) = self.driver.list().await {
            let mut present: Vec<ServerId> = vms.into_iter().map(|v| v.server_id).collect();
            present.extend(self.tracking.lock().unwrap_or_else(|p| p.into_inner()).cancels.keys().cloned());
            let _ = self.inventory(present).await;
        }
    }

    /// Report the VMs and open storage clients; one report at a time (see
    /// `inventory_turn`).
    async fn inventory(&self, vms: Vec<ServerId>) -> Result<InventoryReply, BusError> {
        let _turn = self.inventory_turn.lock().await;
        let self_fenced = self
            .driver
            .self_fenced()
            .await
            .into_iter()
            .map(|(server_id, at_unix_ms)| SelfFence { server_id, at_unix_ms })
            .collect();
        let epoch = Some(self.epoch.load(Ordering::SeqCst)).filter(|e| *e > 0);
        let clients = self.open_clients().await;
        let req = InventoryRequest { host: self.cfg.host.clone(), vms, self_fenced, epoch, clients };
        let body = serde_json::to_vec(&req).unwrap_or_default();
        let r = self.bus.request(SUBJECT_INVENTORY, body.into(), self.cfg.rpc_timeout).await?;
        serde_json::from_slice(&r)
            .map_err(|e| BusError::BadReply { subject: SUBJECT_INVENTORY.to_string(), reason: e.to_string() })
    }

    /// The ids of the storage clients still open on this host: those this
    /// process holds and every recorded client process still running
    /// (also one an earlier agent process started). `None` when that cannot
    /// be told (records unreadable, or a running process recorded without
    /// its id): the controller then lifts no fence of this host.
    async fn open_clients(&self) -> Option<Vec<String>> {
        let mut ids: Vec<String> = self.clients.lock().await.values().map(|(_, c)| c.id().0).collect();
        let servers = match self.records.servers() {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot list storage client records; reporting the open clients as unknown");
                return None;
            }
        };
        for server in servers {
            let held = match self.records.load(&server) {
                Ok(h) => h,
                Err(e) => {
                    warn!(server = %server, error = %e, "cannot read storage client records; reporting the open clients as unknown");
                    return None;
                }
            };
            for h in held.into_iter().filter(|h| h.process.is_running()) {
                if h.client.is_empty() {
                    return None;
                }
                ids.push(h.client);
            }
        }
        ids.sort();
        ids.dedup();
        Some(ids)
    }

    /// Drop the terminates older than [`tombstones::KEEP`], so the map
    /// holds the last hour's deletes, not every server the host ever ran.
    fn forget_old_terminates(&self) {
        let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
        let forgotten = t.tombstones.prune(Instant::now(), tombstones::KEEP);
        if forgotten > 0 {
            debug!(host = %self.cfg.host, forgotten, kept = t.tombstones.len(), "forgot terminates past their retention");
        }
    }

    fn server_lock(&self, server_id: &ServerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
        if t.locks.len() > 50_000 {
            t.locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        t.locks.entry(*server_id).or_default().clone()
    }

    async fn on_command(self: Arc<Self>, msg: Message, epoch: Option<i64>) {
        let cmd: Command = match serde_json::from_slice(&msg.payload) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.ack(&msg, false, Some(format!("malformed command: {e}"))).await;
                return;
            }
        };
        if epoch != Some(cmd.epoch) {
            let why = match epoch {
                Some(e) => format!("stale epoch {} (host has {e})", cmd.epoch),
                None => "host lease lapsed; rejoining before taking work".to_string(),
            };
            self.metrics.agent_command(&cmd.kind, CommandOutcome::Refused);
            let _ = self.ack(&msg, false, Some(why)).await;
            return;
        }
        if let CommandKind::Terminate = cmd.kind {
            let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
            t.tombstones.record(cmd.server_id, cmd.generation, Instant::now());
            if let Some(n) = t.cancels.get(&cmd.server_id) {
                n.notify_one();
            }
        }
        let _ = self.ack(&msg, true, None).await;
        if self.faults.executor_wedged() {
            warn!(op = %cmd.op_id, "executor wedged (fault switch): command acknowledged, not executed");
            return;
        }
        tokio::spawn(async move { self.execute(cmd).await });
    }

    /// Answer a console read (`os-getConsoleOutput`) from the driver.
    async fn on_console(&self, msg: Message) {
        let answer = match serde_json::from_slice::<ConsoleRequest>(&msg.payload) {
            Err(e) => ConsoleReply::Failed { message: format!("malformed console request: {e}") },
            Ok(req) => match self.driver.console_output(&req.server_id, req.max_lines).await {
                Ok(output) => ConsoleReply::Output { output },
                Err(DriverError::NotFound(_)) => ConsoleReply::NoVm,
                Err(e) => ConsoleReply::Failed { message: e.to_string() },
            },
        };
        let body = serde_json::to_vec(&answer).unwrap_or_default();
        if let Err(e) = reply(self.bus.as_ref(), &msg, Bytes::from(body)).await {
            debug!(host = %self.cfg.host, error = %e, "console reply not sent");
        }
    }

    async fn ack(&self, msg: &Message, accepted: bool, reason: Option<String>) -> Result<(), BusError> {
        let body = serde_json::to_vec(&Ack { accepted, reason }).unwrap_or_default();
        reply(self.bus.as_ref(), msg, Bytes::from(body)).await
    }

    async fn execute(&self, cmd: Command) {
        let started = Instant::now();
        if self.points.check(&format!("agent:before:{}", cmd.kind.name())).is_err() {
            return; // as if the process died before executing it
        }
        let lock = self.server_lock(&cmd.server_id);
        let result = match &cmd.kind {
            CommandKind::Spawn { vcpus, ram_mb, image_id, boot } => {
                let cancel = Arc::new(Notify::new());
                let terminated = {
                    let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
                    let terminated = t.tombstones.covers(&cmd.server_id, cmd.generation);
                    if !terminated {
                        t.cancels.insert(cmd.server_id, cancel.clone());
                    }
                    terminated
                };
                if terminated {
                    self.publish(&cmd, Err("server was terminated on this host".into()), started).await;
                    return;
                }
                let _g = lock.lock().await;
                let spec = VmSpec {
                    server_id: cmd.server_id,
                    vcpus: *vcpus,
                    ram_mb: *ram_mb,
                    image_id: *image_id,
                    boot: boot.clone().unwrap_or_default(),
                };
                let r = tokio::select! {
                    r = self.driver.spawn(&spec) => r.map_err(|e| e.to_string()),
                    _ = cancel.notified() => Err("spawn cancelled by terminate".to_string()),
                };
                self.tracking.lock().unwrap_or_else(|p| p.into_inner()).cancels.remove(&cmd.server_id);
                r
            }
            CommandKind::Terminate => {
                let _g = lock.lock().await;
                self.destroy_vm(&cmd.server_id).await
            }
            CommandKind::AttachVolume { attachment_id, volume } => {
                let _g = lock.lock().await;
                // An attach sent before the server's terminate, run after it:
                // the VM is gone for good, and a client opened now would be
                // held by nothing (and keep the volume busy).
                let terminated = {
                    let t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
                    t.tombstones.covers(&cmd.server_id, cmd.generation)
                };
                let opened = if terminated {
                    Err("server was terminated on this host".to_string())
                } else {
                    self.attach(&cmd.server_id, attachment_id, volume).await
                };
                if self.points.check(&format!("agent:after:{}", cmd.kind.name())).is_err() {
                    return; // executed, never reported
                }
                self.publish_with(&cmd, opened.map(Some), started).await;
                return;
            }
            CommandKind::DetachVolume { attachment_id, .. } => {
                let _g = lock.lock().await;
                if self.driver.opens_volumes() {
                    self.detach_from_vm(&cmd.server_id, attachment_id).await
                } else {
                    let c = self.clients.lock().await.remove(attachment_id);
                    let closed = match c {
                        Some((_, c)) => c.close().await.map_err(|e| e.to_string()),
                        None => Ok(()),
                    };
                    // Also a client an earlier agent process opened for it.
                    let ended = self.end_recorded(&cmd.server_id, |a| a == attachment_id).await;
                    closed.and(ended)
                }
            }
            CommandKind::ExtendVolume { attachment_id, size_bytes } => {
                let _g = lock.lock().await;
                self.driver.extend_volume(&cmd.server_id, attachment_id, *size_bytes).await.map_err(|e| e.to_string())
            }
            CommandKind::PowerOff => {
                let _g = lock.lock().await;
                self.driver.power_off(&cmd.server_id).await.map_err(|e| e.to_string())
            }
            CommandKind::CaptureDisk { image_id } => {
                let _g = lock.lock().await;
                self.driver.capture_root_disk(&cmd.server_id, image_id).await.map(|_| ()).map_err(|e| e.to_string())
            }
            CommandKind::PowerOn => {
                let _g = lock.lock().await;
                self.driver.power_on(&cmd.server_id).await.map_err(|e| e.to_string())
            }
            CommandKind::Pause | CommandKind::Unpause | CommandKind::Suspend | CommandKind::Resume => {
                let _g = lock.lock().await;
                let id = &cmd.server_id;
                match cmd.kind {
                    CommandKind::Pause => self.driver.pause(id).await,
                    CommandKind::Unpause => self.driver.unpause(id).await,
                    CommandKind::Suspend => self.driver.suspend(id).await,
                    _ => self.driver.resume(id).await,
                }
                .map_err(|e| e.to_string())
            }
            CommandKind::Reboot { hard } => {
                let _g = lock.lock().await;
                self.driver.reboot(&cmd.server_id, *hard).await.map_err(|e: DriverError| e.to_string())
            }
        };
        if self.points.check(&format!("agent:after:{}", cmd.kind.name())).is_err() {
            return; // executed, never reported
        }
        self.publish(&cmd, result, started).await;
    }

    /// Destroy a VM and release what it held on the storage side. A VM that
    /// opens its volumes itself is halted first, then each storage
    /// connection is torn down, then the VM is forgotten: a crash anywhere
    /// in between leaves the record, so the re-sent terminate (or the
    /// reaper) finishes the job. Errors keep the VM reported as present.
    /// For a VM whose storage clients the agent opened, those end first:
    /// the ones this process holds close, and every recorded client
    /// process (also one an earlier agent process started) is killed and
    /// confirmed gone before the VM is forgotten.
    async fn destroy_vm(&self, server_id: &ServerId) -> Result<(), String> {
        if self.driver.opens_volumes() {
            let vols = self.driver.volumes(server_id).await.map_err(|e| e.to_string())?;
            if !vols.is_empty() {
                self.driver.halt(server_id).await.map_err(|e| e.to_string())?;
                let storage = self.storage.as_ref().ok_or("this host has no block storage configured")?;
                for v in vols {
                    storage.disconnect(&v.volume, &v.conn).await.map_err(|e| e.to_string())?;
                    self.driver.detach_volume(server_id, &v.attachment_id).await.map_err(|e| e.to_string())?;
                    debug!(server = %server_id, volume = %v.volume, "storage connection closed");
                }
            }
        } else {
            self.close_clients_of(server_id).await;
            self.end_recorded(server_id, |_| true).await?;
        }
        self.driver.destroy(server_id).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Hand a volume to a VM that opens it itself (qemu): the storage side
    /// makes a fresh connection, the VM plugs it, and the storage client the
    /// VM became is what the controller records for fencing: for NBD the
    /// export's client, for rbd the watcher that appeared on the image.
    async fn attach_to_vm(
        &self,
        server_id: &ServerId,
        attachment_id: &AttachmentId,
        volume: &str,
    ) -> Result<String, String> {
        let storage = self.storage.as_ref().ok_or("this host has no block storage configured")?;
        let known = storage.watchers(volume).await.map_err(|e| e.to_string())?;
        let existing = self.driver.volumes(server_id).await.map_err(|e| e.to_string())?;
        let conn = match existing.into_iter().find(|v| &v.attachment_id == attachment_id) {
            Some(v) => v.conn, // already plugged: idempotent
            None => {
                let conn = storage.connect(volume, &attachment_id.to_string()).await.map_err(|e| e.to_string())?;
                if let Err(e) = self.driver.attach_volume(server_id, attachment_id, volume, &conn).await {
                    if let Err(d) = storage.disconnect(volume, &conn).await {
                        warn!(volume, error = %d, "undoing a storage connection failed");
                    }
                    return Err(e.to_string());
                }
                conn
            }
        };
        let client = match &conn {
            VolumeConnection::Nbd { client, .. } => client.clone(),
            VolumeConnection::Rbd { .. } => {
                let running = matches!(
                    self.driver.power_state(server_id).await.map_err(|e| e.to_string())?,
                    PowerState::Running | PowerState::Paused
                );
                if running {
                    stratus_blockstore::wait_for_new_watcher(storage.as_ref(), volume, &known, Duration::from_secs(20))
                        .await
                        .map_err(|e| e.to_string())?
                        .0
                } else {
                    // It opens at the next start; a fence also targets the
                    // image's current watchers, so nothing escapes.
                    String::new()
                }
            }
        };
        info!(host = %self.cfg.host, server = %server_id, attachment = %attachment_id, client = %client, "volume plugged into the VM");
        Ok(client)
    }

    /// Unplug a volume from a VM that opened it itself, then tear down the
    /// storage side's connection (the VM no longer uses it).
    async fn detach_from_vm(&self, server_id: &ServerId, attachment_id: &AttachmentId) -> Result<(), String> {
        let vols = self.driver.volumes(server_id).await.map_err(|e| e.to_string())?;
        let Some(v) = vols.into_iter().find(|v| &v.attachment_id == attachment_id) else {
            return Ok(());
        };
        self.driver.detach_volume(server_id, attachment_id).await.map_err(|e| e.to_string())?;
        let storage = self.storage.as_ref().ok_or("this host has no block storage configured")?;
        storage.disconnect(&v.volume, &v.conn).await.map_err(|e| e.to_string())
    }

    async fn attach(&self, server_id: &ServerId, attachment_id: &AttachmentId, volume: &str) -> Result<String, String> {
        if self.driver.opens_volumes() {
            return self.attach_to_vm(server_id, attachment_id, volume).await;
        }
        if let Some((_, c)) = self.clients.lock().await.get(attachment_id) {
            return Ok(c.id().0); // already open: idempotent
        }
        let Some(storage) = &self.storage else {
            return Err("this host has no block storage configured".into());
        };
        // A client an earlier agent process opened for this attachment is
        // superseded by the one opened now.
        self.end_recorded(server_id, |a| a == attachment_id).await?;
        let client = storage.open(volume).await.map_err(|e| e.to_string())?;
        if let Some(process) = client.process() {
            let held =
                Held { attachment_id: *attachment_id, volume: volume.to_owned(), process, client: client.id().0 };
            if let Err(e) = self.records.add(server_id, held) {
                // Unrecorded, it could outlive a restart with nobody to end it.
                if let Err(c) = client.close().await {
                    warn!(volume, error = %c, "closing an unrecorded storage client failed");
                }
                return Err(format!("cannot record the storage client of {volume}: {e}"));
            }
        }
        let id = client.id().0;
        info!(host = %self.cfg.host, server = %server_id, attachment = %attachment_id, client = %id, "volume opened");
        self.clients.lock().await.insert(*attachment_id, (*server_id, client));
        Ok(id)
    }

    async fn publish(&self, cmd: &Command, result: Result<(), String>, started: Instant) {
        self.publish_with(cmd, result.map(|()| None), started).await
    }

    async fn publish_with(&self, cmd: &Command, result: Result<Option<String>, String>, started: Instant) {
        let client_id = result.as_ref().ok().cloned().flatten();
        let result = result.map(|_| ());
        let outcome = if result.is_ok() { CommandOutcome::Ok } else { CommandOutcome::Failed };
        self.metrics.agent_command(&cmd.kind, outcome);
        let power_state = self.driver.power_state(&cmd.server_id).await.map(|p| p.code()).unwrap_or(0);
        let res = CommandResult {
            op_id: cmd.op_id,
            server_id: cmd.server_id,
            host: self.cfg.host.clone(),
            command: cmd.kind.name().to_string(),
            ok: result.is_ok(),
            error: result.err(),
            power_state,
            elapsed_ms: started.elapsed().as_millis() as u64,
            client_id,
        };
        debug!(op = %res.op_id, command = %res.command, ok = res.ok, "command finished");
        if let Ok(body) = serde_json::to_vec(&res)
            && let Err(e) = self.bus.publish(SUBJECT_RESULT, body.into()).await
        {
            warn!(error = %e, "cannot publish command result; the controller will re-send");
        }
    }
}
