//! The controller role: wires the operation runner, the agent-facing
//! services, the liveness monitor and the notification relay.

use crate::{ControllerConfig, liveness, notify, op_create, op_delete, op_lifecycle, op_power, op_volume, reclaim};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stratus_bus::{Bus, BusDown, BusError};
use stratus_db::{Datastore, ServiceRow};
use stratus_db::{OperationRow, Transition, fault_json};
use stratus_image::{ImageError, ImageService};
use stratus_ops::{Failure, Handler, OpError, Outcome, Registry};
use stratus_ops::{Runner, RunnerConfig};
use stratus_types::agent::*;
use stratus_types::faults::Faults;
use stratus_types::{OpKind, OperationId, ServerId};
use tokio::sync::{Notify, mpsc, watch};
use tracing::warn;

/// State shared by the controller's tasks and operation handlers.
pub(crate) struct Shared {
    pub ds: Datastore,
    /// The block storage service, when volumes exist: it owns every volume
    /// step of a server's operations (boot volumes, attach bookkeeping,
    /// fencing, release on delete) and the storage reconciler, which this
    /// role alone drives.
    pub volume: Option<Arc<stratus_volume::VolumeService>>,
    /// The image service: it owns every image write, including the shelve
    /// and `createImage` snapshots the lifecycle and delete operations make
    /// and remove.
    pub images: Arc<ImageService>,
    pub bus: Arc<dyn Bus>,
    pub cfg: ControllerConfig,
    pub waiters: Mutex<HashMap<OperationId, mpsc::UnboundedSender<CommandResult>>>,
    pub sched_lock: tokio::sync::Mutex<()>,
    /// The leader fence while this controller holds the leader lease (see
    /// [`crate::leader`]): the singleton duties run only while it is set.
    pub leader: watch::Receiver<Option<stratus_db::LeaderFence>>,
    /// Its sender, handed to the lease task when the services start.
    pub leader_tx: watch::Sender<Option<stratus_db::LeaderFence>>,
    /// Where this controller's events are counted (delete paths, joins,
    /// lease expirations, self-fences, leadership, operation durations).
    pub metrics: stratus_metrics::Metrics,
    /// Whether this controller reaches the database (the lease task's last
    /// attempt answered): it serves the agents' queue group only while it
    /// does, so that a controller cut off from the database does not take
    /// renewals and joins it cannot record (see [`crate::liveness`]).
    pub db_reachable: watch::Receiver<bool>,
    /// Its sender, handed to the lease task.
    pub db_reachable_tx: watch::Sender<bool>,
    /// The hosts' leases while this controller leads (see
    /// [`crate::leases`]): a join served here is admitted at once, so the
    /// host's first renewal needs no database read.
    pub leases: Mutex<Option<Arc<crate::leases::LeaseTable>>>,
}

impl Shared {
    /// The current leader fence, if this controller leads.
    pub(crate) fn leader_fence(&self) -> Option<stratus_db::LeaderFence> {
        self.leader.borrow().clone()
    }

    /// The hosts' leases, if this controller holds them now.
    pub(crate) fn lease_table(&self) -> Option<Arc<crate::leases::LeaseTable>> {
        self.leases.lock().ok().and_then(|t| t.clone())
    }

    /// Hold (or stop holding) the hosts' leases.
    pub(crate) fn set_lease_table(&self, table: Option<Arc<crate::leases::LeaseTable>>) {
        if let Ok(mut t) = self.leases.lock() {
            *t = table;
        }
    }
}

/// Why a command to a host did not succeed.
#[derive(Debug)]
pub(crate) enum CmdFailure {
    /// Nobody serves the host's subject: the agent process is gone.
    NoResponders,
    /// No acknowledgement within the ack timeout.
    AckTimeout(Duration),
    /// The agent refused (e.g. stale epoch).
    Refused(Refusal),
    /// Acknowledged but not finished within the deadline.
    ResultTimeout(Duration),
    /// The host ran it and it failed.
    Failed(String),
    /// The bus itself is unavailable.
    Bus(BusFailure),
}

/// Why an agent did not accept a command, for [`CmdFailure::Refused`].
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The agent said no, with its reason (e.g. a stale epoch).
    Agent(String),
    /// Its acknowledgement does not decode.
    BadAck(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Agent(r) => f.write_str(r),
            Self::BadAck(e) => write!(f, "bad ack: {e}"),
        }
    }
}

/// Why a command could not travel, for [`CmdFailure::Bus`].
#[derive(Debug)]
pub(crate) enum BusFailure {
    /// The command does not encode (a bug).
    Encode(String),
    /// The bus cannot carry messages.
    Down(BusDown),
    /// The channel results arrive on closed: the controller is stopping.
    ResultChannelClosed,
}

impl std::fmt::Display for BusFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => f.write_str(e),
            Self::Down(d) => write!(f, "{d}"),
            Self::ResultChannelClosed => f.write_str("result channel closed"),
        }
    }
}

impl std::fmt::Display for CmdFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoResponders => write!(f, "no responder on the host's command subject (agent gone)"),
            Self::AckTimeout(d) => write!(f, "no acknowledgement within {} ms", d.as_millis()),
            Self::Refused(r) => write!(f, "refused by the agent: {r}"),
            Self::ResultTimeout(d) => write!(f, "acknowledged but not finished within {} ms", d.as_millis()),
            Self::Failed(e) => write!(f, "failed on the host: {e}"),
            Self::Bus(e) => write!(f, "bus unavailable: {e}"),
        }
    }
}

/// An image service failure inside an operation step: a datastore error
/// stays one (the runner retries it as such), anything else is reported as is.
pub(crate) fn image_failure(e: ImageError) -> OpError {
    match e {
        ImageError::Db(e) => e.into(),
        e => OpError::Service(Box::new(e)),
    }
}

/// How long a command may take: to be acknowledged, and to finish.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    pub ack: Duration,
    pub result: Duration,
}

/// Timing of a successful command, for instance-action details.
pub(crate) struct CmdTiming {
    pub ack_ms: u128,
    pub total_ms: u128,
    pub result: CommandResult,
}

impl Shared {
    /// Send `kind` to `svc`'s agent, wait for the acknowledgement and then the
    /// result. A wake (repeated request) re-sends the command and keeps the
    /// same overall deadline; every command is idempotent on the agent.
    pub async fn run_command(
        &self,
        svc: &ServiceRow,
        op_id: &OperationId,
        server_id: &ServerId,
        kind: CommandKind,
        deadlines: Deadlines,
        wake: Option<&Notify>,
    ) -> Result<CmdTiming, CmdFailure> {
        let generation = self.ds.server_get_any(server_id).await.map(|s| s.generation).unwrap_or(0);
        self.run_command_at(svc, op_id, (server_id, generation), kind, deadlines, wake).await
    }

    /// [`Shared::run_command`] for a caller that holds the server row read
    /// after the operation was recorded: its generation is the one to send
    /// (a terminate tombstones every spawn of a lower or equal generation),
    /// and reading it again would cost a query per delete.
    pub async fn run_command_at(
        &self,
        svc: &ServiceRow,
        op_id: &OperationId,
        (server_id, generation): (&ServerId, i64),
        kind: CommandKind,
        deadlines: Deadlines,
        wake: Option<&Notify>,
    ) -> Result<CmdTiming, CmdFailure> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(*op_id, tx);
        }
        let r = self.command_inner(svc, op_id, (server_id, generation), kind, deadlines, wake, &mut rx).await;
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(op_id);
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn command_inner(
        &self,
        svc: &ServiceRow,
        op_id: &OperationId,
        (server_id, generation): (&ServerId, i64),
        kind: CommandKind,
        deadlines: Deadlines,
        wake: Option<&Notify>,
        rx: &mut mpsc::UnboundedReceiver<CommandResult>,
    ) -> Result<CmdTiming, CmdFailure> {
        let (ack_timeout, result_timeout) = (deadlines.ack, deadlines.result);
        let started = Instant::now();
        let name = kind.name();
        let cmd = Command { op_id: *op_id, server_id: *server_id, epoch: svc.epoch, generation, kind };
        let body =
            Bytes::from(serde_json::to_vec(&cmd).map_err(|e| CmdFailure::Bus(BusFailure::Encode(e.to_string())))?);
        let subject = agent_subject(&svc.host);
        let send = || async {
            match self.bus.request(&subject, body.clone(), ack_timeout).await {
                Ok(reply) => {
                    let ack: Ack = serde_json::from_slice(&reply)
                        .map_err(|e| CmdFailure::Refused(Refusal::BadAck(e.to_string())))?;
                    if ack.accepted {
                        Ok(())
                    } else {
                        Err(CmdFailure::Refused(Refusal::Agent(ack.reason.unwrap_or_default())))
                    }
                }
                Err(BusError::NoResponders(_)) => Err(CmdFailure::NoResponders),
                Err(BusError::Timeout(..)) => Err(CmdFailure::AckTimeout(ack_timeout)),
                Err(BusError::Unavailable(e)) => Err(CmdFailure::Bus(BusFailure::Down(e))),
                Err(BusError::BadReply { reason, .. }) => Err(CmdFailure::Refused(Refusal::BadAck(reason))),
            }
        };
        send().await?;
        let ack_ms = started.elapsed().as_millis();
        let deadline = tokio::time::Instant::now() + result_timeout;
        loop {
            let woken = async {
                match wake {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rx.recv() => match r {
                    Some(res) if res.server_id == *server_id && res.command == name => {
                        let total_ms = started.elapsed().as_millis();
                        return if res.ok { Ok(CmdTiming { ack_ms, total_ms, result: res }) } else { Err(CmdFailure::Failed(res.error.unwrap_or_default())) };
                    }
                    Some(_) => continue,
                    None => return Err(CmdFailure::Bus(BusFailure::ResultChannelClosed)),
                },
                _ = tokio::time::sleep_until(deadline) => return Err(CmdFailure::ResultTimeout(result_timeout)),
                _ = woken => {
                    tracing::info!(op = %op_id, command = name, "re-driven: re-sending the command");
                    send().await?;
                }
            }
        }
    }
}

impl Shared {
    /// An operation whose parameters do not decode: fail it loudly (logged,
    /// recorded as the server's fault and on its action) instead of running
    /// it with defaults.
    pub async fn bad_params(&self, op: &OperationRow, message: String) -> Result<Outcome, OpError> {
        warn!(op = %op.id, kind = %op.kind, server = %op.server_id, error = %message, "operation has invalid parameters");
        let t = Transition {
            task: Some(None),
            fault: Some(fault_json(500, &message, self.ds.clock().now())),
            ..Default::default()
        };
        self.ds.server_transition(&op.server_id, &t).await?;
        self.ds.event_finish(&op.server_id, &op.request_id, op.kind.as_str(), false, &message).await?;
        Ok(Outcome::Failed(Failure::BadParams(message)))
    }

    /// Run a command on `host` if its lease is valid; errors as text for
    /// instance-action details.
    pub async fn host_command(
        &self,
        op_id: &OperationId,
        server_id: &ServerId,
        host: &str,
        kind: CommandKind,
        d: Deadlines,
    ) -> Result<CmdTiming, String> {
        let svc = self.ds.service_get_by_host(host).await.map_err(|e| format!("host {host}: {e}"))?;
        if !svc.is_up() {
            return Err(format!("host {host} is down"));
        }
        match self.run_command(&svc, op_id, server_id, kind.clone(), d, None).await {
            Err(f @ (CmdFailure::Refused(_) | CmdFailure::NoResponders)) => {
                // The agent is restarting: gone from the bus for a moment, or
                // rejoined with an epoch we had not read yet. While the
                // host's lease holds, wait for it to rejoin and re-send once
                // (Nova's queued RPC would be served by the restarted
                // compute service); a host whose lease lapses is down.
                let why = f.to_string();
                let until = tokio::time::Instant::now() + self.cfg.lease_ttl;
                loop {
                    if tokio::time::Instant::now() >= until {
                        return Err(why);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    let fresh = self.ds.service_get_by_host(host).await.map_err(|e| format!("host {host}: {e}"))?;
                    if !fresh.is_up() {
                        return Err(format!("{why}; host {host} is down"));
                    }
                    if fresh.epoch != svc.epoch {
                        tracing::info!(server = %server_id, host, reason = %why, "agent rejoined; re-sending with its new epoch");
                        return self
                            .run_command(&fresh, op_id, server_id, kind, d, None)
                            .await
                            .map_err(|e| e.to_string());
                    }
                }
            }
            r => r.map_err(|e| e.to_string()),
        }
    }

    /// Keep `server`'s capacity on `host` reserved until the host reports its VM gone.
    pub async fn record_zombie(
        &self,
        server: &stratus_db::ServerRow,
        host: &str,
        reason: &str,
    ) -> Result<(), stratus_db::DbError> {
        self.record_zombie_sized(
            &server.id,
            host,
            server.vcpus,
            server.ram_mb,
            server.disk_gb + server.ephemeral_gb,
            reason,
        )
        .await
    }

    /// As [`Shared::record_zombie`] with explicit sizes (a resize's source).
    pub async fn record_zombie_sized(
        &self,
        server_id: &ServerId,
        host: &str,
        vcpus: i64,
        ram_mb: i64,
        disk_gb: i64,
        reason: &str,
    ) -> Result<(), stratus_db::DbError> {
        let z = stratus_db::ZombieRow {
            server_id: *server_id,
            host: host.to_string(),
            vcpus,
            ram_mb,
            disk_gb,
            reason: reason.to_string(),
            created_at: stratus_db::SET_ON_INSERT,
        };
        tracing::warn!(
            server = %server_id,
            host,
            reason,
            "zombie recorded: capacity stays reserved until the host reports the VM gone"
        );
        self.ds.zombie_record(&z).await
    }
}

/// The one registration table: the handler of each operation kind. An
/// exhaustive `match`, so a new kind cannot be left without a handler.
pub(crate) fn handler_for(s: &Arc<Shared>, kind: OpKind) -> Arc<dyn Handler> {
    use OpKind as K;
    match kind {
        K::Create => Arc::new(op_create::CreateServer(s.clone())),
        K::Delete => Arc::new(op_delete::DeleteServer(s.clone())),
        K::Stop
        | K::Start
        | K::Reboot
        | K::Pause
        | K::Unpause
        | K::Suspend
        | K::Resume
        | K::SoftDelete
        | K::Restore => Arc::new(op_power::Power(s.clone())),
        K::Shelve
        | K::ShelveOffload
        | K::Unshelve
        | K::Resize
        | K::ConfirmResize
        | K::RevertResize
        | K::Evacuate
        | K::Rebuild
        | K::CreateImage => Arc::new(op_lifecycle::Lifecycle(s.clone())),
        K::AttachVolume | K::DetachVolume | K::ExtendVolume => Arc::new(op_volume::VolumeOps(s.clone())),
    }
}

/// The controller role.
pub struct Controller {
    shared: Arc<Shared>,
    worker: String,
    faults: Faults,
    /// The leader-lease task, awaited at shutdown so the lease is handed
    /// over before the process exits.
    leader_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Controller {
    /// A controller over a datastore and a bus, writing images (snapshots)
    /// through `images`.
    pub fn new(ds: Datastore, bus: Arc<dyn Bus>, cfg: ControllerConfig, images: Arc<ImageService>) -> Self {
        // A stable identity: a restarted controller re-claims its own
        // operations at once instead of waiting for their claims to lapse.
        let worker = cfg.controller_id.clone().unwrap_or_else(|| format!("controller@{}", hostname()));
        let (leader_tx, leader) = watch::channel(None);
        let (db_reachable_tx, db_reachable) = watch::channel(true);
        Self {
            shared: Arc::new(Shared {
                volume: None,
                images,
                ds,
                bus,
                cfg,
                waiters: Mutex::default(),
                sched_lock: tokio::sync::Mutex::new(()),
                leader,
                leader_tx,
                metrics: stratus_metrics::Metrics::process(),
                db_reachable,
                db_reachable_tx,
                leases: Mutex::default(),
            }),
            worker,
            faults: Faults::none(),
            leader_task: Mutex::new(None),
        }
    }

    /// After `shutdown` turned true: wait (at most `grace`) until the leader
    /// lease is released, so another controller takes the singleton duties
    /// over at once instead of after `--leader-ttl`.
    pub async fn stopped(&self, grace: Duration) {
        let task = self.leader_task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = tokio::time::timeout(grace, t).await;
        }
    }

    /// Use `volume` for the volume steps of server operations and run its
    /// storage reconciler (interrupted creates and deletes, the cleanup
    /// queue, fence lifts) from this role's periodic loop: the controller is
    /// the one role that reconciles storage.
    pub fn with_volumes(mut self, volume: Arc<stratus_volume::VolumeService>) -> Self {
        if let Some(sh) = Arc::get_mut(&mut self.shared) {
            sh.volume = Some(volume);
        }
        self
    }

    /// Count into `metrics` instead of the process's (tests read their own).
    pub fn with_metrics(mut self, metrics: stratus_metrics::Metrics) -> Self {
        if let Some(sh) = Arc::get_mut(&mut self.shared) {
            sh.metrics = metrics;
        }
        self
    }

    /// Fault points of the operation runner (crash tests; none by default).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Start every task; they stop when `shutdown` turns true.
    pub async fn start(&self, shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        self.start_services(shutdown.clone()).await?;
        let runner = self.runner(&self.worker, self.faults.clone());
        tokio::spawn(runner.run(shutdown));
        Ok(())
    }

    /// Start everything but the operation runner: the agent-facing services,
    /// liveness, the notification relay, command-result routing and reclaim.
    /// In-process tests drive operations themselves with [`Controller::runner`].
    pub async fn start_services(&self, shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        let s = self.shared.clone();
        let c = &s.cfg;
        let takeover = c.leader_ttl * 4 / 3 + c.lease_renew_interval;
        if takeover + Duration::from_secs(2) >= c.lease_ttl {
            warn!(
                leader_ttl_ms = c.leader_ttl.as_millis() as u64,
                lease_ttl_ms = c.lease_ttl.as_millis() as u64,
                "a leader takeover may take {} ms, too close to the hosts' lease: hosts renew with the leader only, and one whose lease lapses during a takeover rejoins (qemu hosts' watchdogs stop their VMs 2 s before); lower --leader-ttl",
                takeover.as_millis()
            );
        }
        // The holder is the controller id, like operation claims: a
        // restarted controller takes its own lease back at once. Ids must be
        // unique per process (`--controller-id`; the README says so).
        let task = tokio::spawn(crate::leader::hold(
            s.ds.clone(),
            self.worker.clone(),
            s.cfg.leader_ttl,
            s.leader_tx.clone(),
            s.db_reachable_tx.clone(),
            s.metrics.clone(),
            shutdown.clone(),
        ));
        if let Ok(mut t) = self.leader_task.lock() {
            *t = Some(task);
        }
        liveness::serve_agents(s.clone(), shutdown.clone()).await?;
        tokio::spawn(crate::leases::run(s.clone(), shutdown.clone()));
        tokio::spawn(notify::relay(s.clone(), shutdown.clone()));
        // Route command results to the operations waiting for them.
        let mut results = s.bus.subscribe(SUBJECT_RESULT).await?;
        let s2 = s.clone();
        tokio::spawn(async move {
            while let Some(m) = results.next().await {
                let Ok(r) = serde_json::from_slice::<CommandResult>(&m.payload) else {
                    warn!("malformed command result");
                    continue;
                };
                let tx = s2.waiters.lock().ok().and_then(|w| w.get(&r.op_id).cloned());
                if let Some(tx) = tx {
                    let _ = tx.send(r);
                }
            }
        });
        tokio::spawn(reclaim::run(s.clone(), shutdown));
        Ok(())
    }

    /// An operation runner named `worker` with this controller's handlers
    /// and the fault points `faults`.
    pub fn runner(&self, worker: &str, faults: Faults) -> Runner {
        let s = self.shared.clone();
        let cfg = RunnerConfig {
            worker: worker.to_string(),
            claim_ttl: s.cfg.op_claim_ttl,
            poll_interval: s.cfg.op_poll_interval,
            concurrency: s.cfg.op_concurrency,
            faults,
            metrics: s.metrics.clone(),
        };
        let registry: Registry = Arc::new(move |kind| handler_for(&s, kind));
        Runner::new(self.shared.ds.clone(), self.shared.bus.clone(), cfg, registry)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
