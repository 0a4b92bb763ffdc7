//! An executable model of server delete, host leases and storage fencing
//! (DESIGN.md, "The delete contract" and "Liveness"), checked exhaustively.
//!
//! [`check`] enumerates every state reachable from one running server (one
//! VM, one volume, one host) by breadth-first search with a visited set, and
//! checks on each state the safety properties below; it then checks bounded
//! progress from every reachable state. The search is deterministic and
//! depends only on `stratus-types` (no I/O), so it runs in `cargo test` in a
//! few seconds.
//!
//! # The plan is the code's
//! The order of the delete's steps is not written here: it is
//! `stratus_types::plan::delete_plan`, the function the controller's
//! `op_delete.rs` runs. The model takes that plan for its server (one volume,
//! no move, no shelve snapshot), and each real step is refined into model
//! steps (`local_delete` records the zombie, `fence` bumps the generation,
//! `volumes` detaches, `release` marks deleted then finishes; the model lets a
//! crash fall between those two, which the code's single transaction does
//! not, so the model has strictly more behaviours). The deliberately broken
//! [`Config`] variants (no fence, release before fence, no zombie) are
//! transformations of that same plan, so a change to the real plan that
//! breaks a property fails `cargo test -p stratus-model`.
//!
//! # What is modelled, and where it lives in the real code
//! - **API**: `DELETE` (at most twice). The first creates the durable
//!   operation (`task_state=deleting` in the same transaction); a repeat wakes
//!   it, and a controller waiting for the result re-sends `Terminate`
//!   (`Shared::run_command`'s `wake`).
//! - **Controller** (`op_delete.rs`, plan in `stratus_types::plan`): reads the server row, then the host's
//!   lease by its own clock; lease valid and a responder: `Terminate` with an
//!   acknowledgement deadline and a result deadline; lease expired, no
//!   responder, refusal (stale epoch), failure or a missed deadline: the
//!   *fenced local path*: record the zombie, fence the storage client, detach
//!   the volume, mark the server deleted, then finish (`instance.delete.end`).
//!   The remote path, once the result says the VM is destroyed, only detaches
//!   and marks deleted. Deadlines are a nondeterministic step, enabled once
//!   the command was sent ([`Config::slow_agent`] says whether a healthy
//!   agent can miss them). The controller may crash at any point: waits,
//!   reply inboxes and its position are lost; like `DeleteServer::run`, the
//!   restarted handler re-reads the server row (deleted: done) and the lease
//!   and decides again. The durable facts each step leaves behind (zombie
//!   row, storage generation, attachment, `deleted`) play the step log.
//! - **Agent** (`compute/src/lib.rs`): up, crashed (no responders; accepted
//!   work lost), hung (nothing moves), cut off (traffic lost both ways) or
//!   falsely up (renews its lease, acknowledges, never executes). Commands
//!   carry the epoch read with the lease; after the lease lapses, or after a
//!   restart, the agent rejoins with a new epoch (older commands are refused)
//!   and reconciles: reports its VMs (clearing zombies whose VM is gone), reaps
//!   VMs of deleted servers and reports again.
//! - **VM and storage**: a running VM writes to its volume; storage refuses
//!   writes from a client generation older than the current one (fencing bumps
//!   it). A released volume belongs to someone else.
//! - **Network**: bounded channels (two messages per direction, a full
//!   channel drops), delivered in any order, optionally lossy.
//!
//! # What is abstracted away
//! Real time (only "a deadline passed" and "the lease lapsed" remain, both by
//! the controller's clock; `forced_down` is a lapsed lease), ports, quota
//! numbers (a zombie stands for reserved capacity), notifications and events,
//! several servers, hosts or controllers, claim leases between controllers,
//! spawn and moves (the VM exists at the start, on one host: `clean_moves` is
//! not modelled), the per-server lock and spawn preemption in the agent.
//! Generations are kept relative to the VM's client (normalised so the
//! client's is 0), so the state space stays finite when fences repeat.
//!
//! Read a counterexample with `eprintln!("{violation}")`: one line per step,
//! the action then the whole state after it.
//!
//! # Properties
//! Safety, on every reachable state: [`P1_RELEASED_WHILE_UNFENCED`],
//! [`P2_DELETED_WHILE_UNFENCED`], [`P3_CAPACITY_FREED_EARLY`]. Bounded
//! progress: see [`Report::liveness_ok`] and [`Report::convergence_ok`].
//! Deliberately broken [`Config`]s show that each property can fail.

use std::collections::{HashMap, HashSet};
use std::fmt;
use stratus_types::plan::{DeleteFacts, DeletePath, DeleteStep as CodeStep, delete_plan, remaining};

/// Property 1: a volume is never handed to another attacher while a VM that
/// can still write to it (running, client generation current) holds it.
pub const P1_RELEASED_WHILE_UNFENCED: &str = "P1: volume released while an unfenced writer holds it";
/// Property 2: a server is never both deleted and running unfenced: a user
/// who saw the delete succeed must not have a VM still writing their data.
pub const P2_DELETED_WHILE_UNFENCED: &str = "P2: server marked deleted while its VM runs unfenced";
/// Property 3: capacity is freed (server deleted, no zombie) only once the
/// VM is really gone, or the scheduler double-books the host.
pub const P3_CAPACITY_FREED_EARLY: &str = "P3: capacity released while the VM still runs";
/// Bounded progress failed: some fair run never deletes the server, or
/// needs more controller steps than [`Config::liveness_bound`].
pub const LIVENESS: &str = "liveness: delete does not complete within the bound under fair scheduling";
/// Convergence failed: once the host is back for good, something leaks.
pub const CONVERGENCE: &str = "convergence: VM, zombie or volume leaks after the host is back";

/// Capacity of each network direction: enough for a command and a re-send,
/// or an acknowledgement and a result; a send into a full channel is lost.
const CHANNEL_CAP: usize = 2;
/// How many `DELETE` requests the API issues (the first and one repeat).
const MAX_DELETES: u8 = 2;
/// Safety net against an accidentally unbounded model.
const MAX_STATES: usize = 2_000_000;

/// What the host agent process is doing. Every mode but `Up` is a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentMode {
    /// Renews its lease, executes commands, reconciles.
    Up,
    /// Process gone: requests fail at once with "no responders"; accepted
    /// work and its epoch are lost; the VM keeps running (separate process).
    Crashed,
    /// Paused (SIGSTOP): messages queue, nothing happens, the lease lapses.
    Hung,
    /// Partitioned: messages are lost both ways, the lease lapses, VMs run.
    CutOff,
    /// Executor wedged while the lease loop lives: acknowledges, never executes.
    FalselyUp,
}

/// Every agent fault, for [`Config::agent_faults`].
pub const ALL_AGENT_FAULTS: &[AgentMode] =
    &[AgentMode::Crashed, AgentMode::Hung, AgentMode::CutOff, AgentMode::FalselyUp];

/// Which behaviours the environment may show and which protocol variant the
/// controller runs. [`Config::correct`] is the real protocol under every
/// fault; the other flags break it on purpose, to show the checker has teeth.
#[derive(Clone, Debug)]
pub struct Config {
    /// Faults the agent may enter (and recover from).
    pub agent_faults: &'static [AgentMode],
    /// The controller may crash and restart at any step.
    pub controller_crashes: bool,
    /// Any message (and lease renewals) may be lost.
    pub lossy_network: bool,
    /// A healthy agent may be slower than the deadlines (no synchrony
    /// assumption). When false, deadlines pass only if no answer is coming.
    pub slow_agent: bool,
    /// The controller has ack/result deadlines (without them a falsely-up
    /// host blocks the delete forever, as in Nova).
    pub deadlines: bool,
    /// The local path fences the storage client.
    pub fence: bool,
    /// Broken variant: the local path detaches the volume before fencing.
    pub release_before_fence: bool,
    /// The local path records a zombie (reserved capacity).
    pub record_zombie: bool,
    /// Broken variant: the agent may (re)attach the VM's storage client at the
    /// current generation while the delete is in progress (a late spawn, a
    /// refresh after rejoin), which un-fences it.
    pub reattach_while_deleting: bool,
    /// Most controller steps a fair run may need to delete the server.
    pub liveness_bound: u32,
}

impl Config {
    /// The real protocol under every fault the model knows.
    pub fn correct() -> Self {
        Self {
            agent_faults: ALL_AGENT_FAULTS,
            controller_crashes: true,
            lossy_network: true,
            slow_agent: true,
            deadlines: true,
            fence: true,
            release_before_fence: false,
            record_zombie: true,
            reattach_while_deleting: false,
            liveness_bound: 12,
        }
    }
}

/// A message in flight. Channels are multisets: delivery order is arbitrary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Controller to agent. `stale`: its epoch predates the agent's rejoin.
    /// `orphan`: the controller that sent it restarted, so the reply inbox is gone.
    Terminate {
        /// Epoch older than the agent's.
        stale: bool,
        /// Nobody waits for the acknowledgement.
        orphan: bool,
    },
    /// Agent to controller: reply to `Terminate` (refused on a stale epoch).
    Ack {
        /// The agent took the command.
        accepted: bool,
    },
    /// Agent to controller: outcome of an executed `Terminate`.
    Result {
        /// The VM is destroyed.
        ok: bool,
    },
    /// Agent to controller: its VM list after reaping the VM, which is no
    /// longer in it, so the zombie is cleared. (The report made before a reap
    /// is a synchronous request, folded into the reconcile step.)
    InventoryWithoutVm,
}

/// A bounded multiset of messages in flight in one direction (kept sorted,
/// present messages first, so equal multisets are equal states). A send into
/// a full channel is lost.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Channel([Option<Msg>; CHANNEL_CAP]);

impl Channel {
    /// The messages in flight.
    pub fn iter(&self) -> impl Iterator<Item = Msg> + '_ {
        self.0.iter().flatten().copied()
    }

    fn push(&mut self, m: Msg) {
        if let Some(slot) = self.0.iter_mut().find(|x| x.is_none()) {
            *slot = Some(m);
        }
    }

    fn remove(&mut self, i: usize) {
        self.0[i] = None;
    }

    fn retain(&mut self, keep: impl Fn(&Msg) -> bool) {
        for slot in &mut self.0 {
            if slot.is_some_and(|m| !keep(&m)) {
                *slot = None;
            }
        }
    }

    fn map(&mut self, f: impl Fn(Msg) -> Msg) {
        for m in self.0.iter_mut().flatten() {
            *m = f(*m);
        }
    }

    fn canon(&mut self) {
        self.0.sort_by_key(|m| (m.is_none(), *m));
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Which way the delete goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    /// The agent destroyed the VM; the controller finishes the bookkeeping.
    Remote,
    /// The controller deletes on its own, fencing the VM first.
    Local,
}

/// One durable, idempotent step of the delete after the path is chosen, at
/// the model's grain: each step of the real plan maps to one or two of
/// these (see `refine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeleteStep {
    /// Keep the host's capacity reserved until the VM is confirmed gone.
    RecordZombie,
    /// Bump the storage generation past the VM's client ("already" is fine).
    Fence,
    /// Detach the volume: it becomes available to others.
    Detach,
    /// Mark the server deleted (quota drops, API shows it gone).
    MarkDeleted,
    /// Emit `instance.delete.end` and close the operation; a crash just
    /// before it re-runs the handler, which finds the row deleted.
    Finish,
}

/// The controller's volatile position in the delete operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pc {
    /// No operation yet (no `DELETE` so far).
    Idle,
    /// (Re)start: read the server row and the lease, choose the path.
    Decide,
    /// `Terminate` sent; waiting for the acknowledgement.
    AwaitAck,
    /// Acknowledged; waiting for the result.
    AwaitResult,
    /// Running `step` of `path`.
    Run {
        /// The path chosen.
        path: Path,
        /// The next step to run.
        step: DeleteStep,
    },
    /// The operation finished.
    Done,
}

/// What the controller saw when it chose the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    /// The server row is already deleted: the operation is done.
    AlreadyDeleted,
    /// The lease lapsed by the controller's clock: local path.
    LeaseExpired,
    /// Nobody serves the host's subject: local path.
    NoResponders,
    /// Lease valid: `Terminate` sent.
    SentTerminate,
}

/// A transition label, so that traces read as a story.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The initial state.
    Init,
    /// The API handles a `DELETE` (creates the operation, or wakes it).
    ApiDelete,
    /// The controller chooses the path.
    Decide(Decision),
    /// An ack or result deadline passed: local path.
    Deadline,
    /// The controller runs a step of a path.
    Run(Path, DeleteStep),
    /// The controller crashes and restarts.
    ControllerCrash,
    /// A message arrives (or, to a crashed or cut-off agent, vanishes).
    Deliver(Msg),
    /// The network loses a message.
    Drop(Msg),
    /// The agent changes mode (fault or recovery).
    AgentBecomes(AgentMode),
    /// The agent rejoins with a new epoch and reconciles.
    AgentRejoin,
    /// The agent's periodic reconcile (reap, report).
    AgentReconcile,
    /// The agent executes an accepted `Terminate` (`ok`: the VM is destroyed).
    AgentExecute {
        /// Destroy succeeded.
        ok: bool,
    },
    /// The lease lapses by the controller's clock.
    LeaseExpires {
        /// The agent was renewing but the network lost the renewals.
        renewals_lost: bool,
    },
    /// The VM writes to its released volume and storage accepts it.
    VmWrite,
    /// The agent re-attaches the VM's client at the current generation.
    Reattach,
}

impl Action {
    /// May this step happen in a fair run (no controller crash, no message
    /// loss, the agent keeps its mode)? Periodic reconciles and VM writes
    /// never help a delete, so they are left out of fair runs too.
    fn is_fair(&self) -> bool {
        !matches!(
            self,
            Action::ControllerCrash
                | Action::Drop(_)
                | Action::AgentBecomes(_)
                | Action::AgentReconcile
                | Action::VmWrite
                | Action::Reattach
                | Action::LeaseExpires { renewals_lost: true }
        )
    }
}

/// The whole system: durable rows, volatile controller position, agent,
/// VM, storage and network. Small domains keep the search exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// `DELETE` requests handled so far.
    pub deletes: u8,
    /// Where the controller is (volatile).
    pub pc: Pc,
    /// Server row: deleted (durable).
    pub deleted: bool,
    /// Zombie row: the host's capacity stays reserved (durable).
    pub zombie: bool,
    /// Host lease valid by the controller's clock (durable).
    pub lease_valid: bool,
    /// Agent process mode.
    pub agent: AgentMode,
    /// The agent holds an epoch (false after a restart, until it rejoins).
    pub joined: bool,
    /// The agent accepted a `Terminate` it has not executed yet.
    pub task: bool,
    /// The VM process runs.
    pub vm_running: bool,
    /// Storage's current generation for the volume.
    pub storage_gen: u8,
    /// Generation held by the VM's storage client.
    pub client_gen: u8,
    /// The volume is detached and available to others.
    pub volume_released: bool,
    /// Storage accepted a write from the VM after the volume was released.
    pub stray_write: bool,
    /// Messages to the agent.
    pub to_agent: Channel,
    /// Messages to the controller.
    pub to_ctrl: Channel,
}

impl State {
    /// One server running on a healthy host with its volume attached.
    pub fn initial() -> Self {
        Self {
            deletes: 0,
            pc: Pc::Idle,
            deleted: false,
            zombie: false,
            lease_valid: true,
            agent: AgentMode::Up,
            joined: true,
            task: false,
            vm_running: true,
            storage_gen: 0,
            client_gen: 0,
            volume_released: false,
            stray_write: false,
            to_agent: Channel::default(),
            to_ctrl: Channel::default(),
        }
    }

    /// Can the VM still write to the volume?
    fn unfenced_writer(&self) -> bool {
        self.vm_running && self.client_gen == self.storage_gen
    }

    /// Which safety properties this state violates.
    fn violations(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if (self.volume_released && self.unfenced_writer()) || self.stray_write {
            v.push(P1_RELEASED_WHILE_UNFENCED);
        }
        if self.deleted && self.unfenced_writer() {
            v.push(P2_DELETED_WHILE_UNFENCED);
        }
        if self.deleted && !self.zombie && self.vm_running {
            v.push(P3_CAPACITY_FREED_EARLY);
        }
        v
    }

    /// Nothing leaks: deleted, VM gone, zombie cleared, volume released.
    fn converged(&self) -> bool {
        self.deleted && !self.vm_running && !self.zombie && self.volume_released
    }

    /// Canonical form: channels sorted (they are multisets), generations
    /// relative to the client's.
    fn canon(mut self) -> Self {
        self.to_agent.canon();
        self.to_ctrl.canon();
        self.storage_gen -= self.client_gen;
        self.client_gen = 0;
        self
    }

    /// The controller sends `Terminate` (first time or re-send on a wake).
    fn send_terminate(&mut self, cfg: &Config) {
        if self.agent == AgentMode::Crashed {
            self.pc = first_step(cfg, Path::Local);
        } else {
            self.to_agent.push(Msg::Terminate { stale: false, orphan: false });
            self.pc = Pc::AwaitAck;
        }
    }

    /// Agent reconcile: report VMs (the controller clears zombies of absent
    /// VMs), reap the VM if its server is deleted, report again.
    fn reconcile(&mut self) {
        if !self.vm_running {
            self.zombie = false;
        }
        if self.deleted && self.vm_running {
            self.vm_running = false;
            self.to_ctrl.push(Msg::InventoryWithoutVm);
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pc={:?} deletes={} deleted={} zombie={} lease={} agent={:?}{}{} vm={} gen={}/{} volume={}{} to_agent={:?} to_ctrl={:?}",
            self.pc,
            self.deletes,
            self.deleted,
            self.zombie,
            if self.lease_valid { "valid" } else { "expired" },
            self.agent,
            if self.joined { "" } else { "(no epoch)" },
            if self.task { "(task)" } else { "" },
            if self.vm_running { "running" } else { "gone" },
            self.storage_gen,
            self.client_gen,
            if self.volume_released { "released" } else { "attached" },
            if self.stray_write { "(stray write!)" } else { "" },
            self.to_agent,
            self.to_ctrl,
        )
    }
}

/// The real delete plan (`stratus_types::plan::delete_plan`, the function
/// the controller runs) for the modelled server: one volume attached, no
/// move in progress, no shelve snapshot. On the remote path the model's
/// message exchange stands for the `terminate` step, so the plan starts after it.
fn code_plan(path: Path) -> Vec<CodeStep> {
    let facts = DeleteFacts { open_migrations: 0, shelve_snapshot: false, volumes: true };
    let real = match path {
        Path::Remote => DeletePath::Remote,
        Path::Local => DeletePath::Local,
    };
    remaining(&delete_plan(real, facts), Some(CodeStep::Terminate))
}

/// The deliberately broken [`Config`]s, as transformations of the real plan.
fn broken(cfg: &Config, mut plan: Vec<CodeStep>) -> Vec<CodeStep> {
    if !cfg.record_zombie {
        plan.retain(|s| *s != CodeStep::LocalDelete);
    }
    if !cfg.fence {
        plan.retain(|s| *s != CodeStep::Fence);
    }
    if cfg.release_before_fence
        && let (Some(f), Some(v)) =
            (plan.iter().position(|s| *s == CodeStep::Fence), plan.iter().position(|s| *s == CodeStep::Volumes))
    {
        let volumes = plan.remove(v);
        plan.insert(f.min(v), volumes);
    }
    plan
}

/// What each step of the real plan does in the model. `release` is one
/// transaction in the code; the model splits it in two so that a crash may
/// fall between marking the server deleted and finishing (more behaviours
/// than the code has, so safety here implies safety there).
fn refine(step: CodeStep) -> &'static [DeleteStep] {
    use DeleteStep::*;
    match step {
        CodeStep::LocalDelete => &[RecordZombie],
        CodeStep::Fence => &[Fence],
        CodeStep::Volumes => &[Detach],
        CodeStep::Release => &[MarkDeleted, Finish],
        // Not part of the modelled server's plan (see `code_plan`).
        CodeStep::CleanMigration | CodeStep::DeleteShelveSnapshot | CodeStep::Terminate => &[],
    }
}

/// The order of steps on `path` for this protocol variant: the real plan,
/// transformed by the broken variants, refined into model steps.
fn plan(cfg: &Config, path: Path) -> Vec<DeleteStep> {
    broken(cfg, code_plan(path)).into_iter().flat_map(|s| refine(s).iter().copied()).collect()
}

fn first_step(cfg: &Config, path: Path) -> Pc {
    plan(cfg, path).first().map_or(Pc::Done, |&step| Pc::Run { path, step })
}

fn step_after(cfg: &Config, path: Path, step: DeleteStep) -> Pc {
    let p = plan(cfg, path);
    let next = p.iter().position(|&s| s == step).and_then(|i| p.get(i + 1));
    next.map_or(Pc::Done, |&step| Pc::Run { path, step })
}

/// May a deadline pass now? Always after the send if agents may be slow;
/// otherwise only when no answer from a healthy agent is on its way.
fn deadline_may_pass(cfg: &Config, s: &State) -> bool {
    if !cfg.deadlines {
        return false;
    }
    if cfg.slow_agent || s.agent != AgentMode::Up {
        return true;
    }
    let coming = s.task
        || s.to_agent.iter().any(|m| matches!(m, Msg::Terminate { orphan: false, .. }))
        || s.to_ctrl.iter().any(|m| matches!(m, Msg::Ack { .. } | Msg::Result { .. }));
    !coming
}

/// Every transition out of `s`, in a fixed order (the search is deterministic).
pub fn successors(cfg: &Config, s: &State) -> Vec<(Action, State)> {
    use AgentMode::*;
    let mut out: Vec<(Action, State)> = Vec::new();
    let mut emit = |a: Action, n: State| out.push((a, n.canon()));

    // API.
    if s.deletes < MAX_DELETES {
        let mut n = *s;
        n.deletes += 1;
        if s.pc == Pc::Idle {
            n.pc = Pc::Decide;
        } else if s.pc == Pc::AwaitResult {
            n.send_terminate(cfg); // woken: re-send, same deadline
        }
        emit(Action::ApiDelete, n);
    }

    // Controller: the delete operation.
    let mut n = *s;
    match s.pc {
        Pc::Idle | Pc::Done => {}
        Pc::Decide => {
            let d = if s.deleted {
                n.pc = Pc::Done;
                Decision::AlreadyDeleted
            } else if !s.lease_valid {
                n.pc = first_step(cfg, Path::Local);
                Decision::LeaseExpired
            } else if s.agent == Crashed {
                n.pc = first_step(cfg, Path::Local);
                Decision::NoResponders
            } else {
                n.send_terminate(cfg);
                Decision::SentTerminate
            };
            emit(Action::Decide(d), n);
        }
        Pc::AwaitAck | Pc::AwaitResult => {
            if deadline_may_pass(cfg, s) {
                n.pc = first_step(cfg, Path::Local);
                emit(Action::Deadline, n);
            }
        }
        Pc::Run { path, step } => {
            match step {
                DeleteStep::RecordZombie => n.zombie = true,
                DeleteStep::Fence if n.storage_gen == n.client_gen => n.storage_gen += 1,
                DeleteStep::Fence => {} // already fenced
                DeleteStep::Detach => n.volume_released = true,
                DeleteStep::MarkDeleted => n.deleted = true,
                DeleteStep::Finish => {}
            }
            n.pc = step_after(cfg, path, step);
            emit(Action::Run(path, step), n);
        }
    }
    if cfg.controller_crashes && !matches!(s.pc, Pc::Idle | Pc::Done) {
        let mut n = *s;
        n.pc = Pc::Decide;
        n.to_ctrl.retain(|m| !matches!(m, Msg::Ack { .. })); // replies to dead inboxes
        n.to_agent.map(|m| match m {
            Msg::Terminate { stale, .. } => Msg::Terminate { stale, orphan: true },
            m => m,
        });
        emit(Action::ControllerCrash, n);
    }

    // Deliveries to the controller (and losses).
    for (i, &m) in s.to_ctrl.0.iter().enumerate() {
        let Some(m) = m else { break };
        if i > 0 && s.to_ctrl.0[i - 1] == Some(m) {
            continue; // same message, same successors
        }
        let mut n = *s;
        n.to_ctrl.remove(i);
        if cfg.lossy_network {
            emit(Action::Drop(m), n);
        }
        match (m, s.pc) {
            (Msg::Ack { accepted: true }, Pc::AwaitAck) => n.pc = Pc::AwaitResult,
            (Msg::Ack { accepted: false }, Pc::AwaitAck) => n.pc = first_step(cfg, Path::Local),
            (Msg::Result { .. }, Pc::AwaitAck) => continue, // buffered until acknowledged
            (Msg::Result { ok: true }, Pc::AwaitResult) => n.pc = first_step(cfg, Path::Remote),
            (Msg::Result { ok: false }, Pc::AwaitResult) => n.pc = first_step(cfg, Path::Local),
            (Msg::InventoryWithoutVm, _) => n.zombie = false,
            _ => {} // nobody waits for it: discarded
        }
        emit(Action::Deliver(m), n);
    }

    // Deliveries to the agent (and losses).
    for (i, &m) in s.to_agent.0.iter().enumerate() {
        let Some(m) = m else { break };
        if i > 0 && s.to_agent.0[i - 1] == Some(m) {
            continue;
        }
        let mut n = *s;
        n.to_agent.remove(i);
        if cfg.lossy_network {
            emit(Action::Drop(m), n);
        }
        match s.agent {
            Hung => continue,      // queued
            Crashed | CutOff => {} // vanishes
            Up | FalselyUp => {
                if let Msg::Terminate { stale, orphan } = m {
                    let accepted = !stale && s.joined;
                    if !orphan {
                        n.to_ctrl.push(Msg::Ack { accepted });
                    }
                    n.task |= accepted && s.agent == Up;
                }
            }
        }
        emit(Action::Deliver(m), n);
    }

    // Agent.
    if s.task && matches!(s.agent, Up | CutOff | FalselyUp) {
        let outcomes: &[bool] = if cfg.agent_faults.is_empty() { &[true] } else { &[true, false] };
        for &ok in outcomes {
            let mut n = *s;
            n.task = false;
            n.vm_running &= !ok;
            if s.agent != CutOff {
                n.to_ctrl.push(Msg::Result { ok });
            }
            emit(Action::AgentExecute { ok }, n);
        }
    }
    let alive = matches!(s.agent, Up | FalselyUp);
    if alive && (!s.joined || !s.lease_valid) {
        let mut n = *s;
        n.joined = true;
        n.lease_valid = true;
        n.to_agent.map(|m| match m {
            Msg::Terminate { orphan, .. } => Msg::Terminate { stale: true, orphan },
            m => m,
        });
        n.reconcile();
        emit(Action::AgentRejoin, n);
    }
    if alive && s.joined && ((s.zombie && !s.vm_running) || (s.deleted && s.vm_running)) {
        let mut n = *s;
        n.reconcile();
        emit(Action::AgentReconcile, n);
    }
    if s.lease_valid {
        let renewing = alive && s.joined;
        if !renewing || cfg.lossy_network {
            let mut n = *s;
            n.lease_valid = false;
            emit(Action::LeaseExpires { renewals_lost: renewing }, n);
        }
    }
    for &f in cfg.agent_faults {
        if f != s.agent && (s.agent == Up || f == Crashed) {
            let mut n = *s;
            n.agent = f;
            if f == Crashed {
                n.joined = false;
                n.task = false;
                n.to_agent = Channel::default();
            }
            emit(Action::AgentBecomes(f), n);
        }
    }
    if s.agent != Up {
        let mut n = *s;
        n.agent = Up;
        emit(Action::AgentBecomes(Up), n);
    }

    // VM and storage.
    if s.volume_released && s.unfenced_writer() && !s.stray_write {
        let mut n = *s;
        n.stray_write = true;
        emit(Action::VmWrite, n);
    }
    let unfenced = s.client_gen == s.storage_gen;
    if cfg.reattach_while_deleting && alive && s.joined && s.vm_running && !s.deleted && s.deletes > 0 && !unfenced {
        let mut n = *s;
        n.client_gen = n.storage_gen;
        emit(Action::Reattach, n);
    }
    out
}

/// One step of a trace: the action taken and the state it led to.
#[derive(Clone, Debug)]
pub struct Step {
    /// What happened.
    pub action: Action,
    /// The state afterwards.
    pub state: State,
}

/// A property that fails, with the shortest trace (from the initial state)
/// that shows it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which property (one of the `P*`, [`LIVENESS`], [`CONVERGENCE`] constants).
    pub property: &'static str,
    /// From [`State::initial`] to the failing state (or lasso, for progress).
    pub trace: Vec<Step>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({} steps):", self.property, self.trace.len().saturating_sub(1))?;
        for (i, st) in self.trace.iter().enumerate() {
            writeln!(f, "  {i:>2}. {:?}\n      {}", st.action, st.state)?;
        }
        Ok(())
    }
}

/// The outcome of [`check`].
#[derive(Clone, Debug)]
pub struct Report {
    /// Distinct reachable states.
    pub states: usize,
    /// Transitions explored.
    pub transitions: usize,
    /// The whole state space was explored (not cut at the safety limit).
    pub complete: bool,
    /// First (shortest) counterexample per violated safety property.
    pub violations: Vec<Violation>,
    /// From every reachable state, every fair run (no controller crash, no
    /// message loss, agent mode frozen) marks the server deleted within
    /// [`Config::liveness_bound`] controller steps.
    pub liveness_ok: bool,
    /// From every reachable state, once the agent is up for good, every fair
    /// run ends with nothing leaked (VM gone, zombie cleared, volume released).
    pub convergence_ok: bool,
    /// Why liveness or convergence failed, with a trace.
    pub progress_failures: Vec<Violation>,
    /// Longest fair run (all steps) to a deleted server, over all states.
    pub max_steps_to_delete: u32,
    /// Most controller steps a fair run needs to delete the server.
    pub max_controller_steps_to_delete: u32,
    /// Every distinct action taken somewhere, sorted: shows no path is dead
    /// code (a property that holds because a step never runs proves nothing).
    pub actions: Vec<Action>,
}

/// FNV-1a: the std SipHash dominates the search time in debug builds, and
/// the keys are not attacker-controlled.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An edge of the explored graph.
#[derive(Clone, Copy)]
struct Edge {
    to: u32,
    action: Action,
    /// The transition moves the delete operation (its `pc` changes): this is
    /// what the liveness bound counts.
    controller: bool,
}

/// The explored graph: states in BFS order, their BFS parents, and every
/// state's out-edges (`edges[start[i]..start[i + 1]]`).
struct Graph {
    states: Vec<State>,
    parent: Vec<Option<(u32, Action)>>,
    start: Vec<usize>,
    edges: Vec<Edge>,
}

impl Graph {
    fn out(&self, i: usize) -> &[Edge] {
        &self.edges[self.start[i]..self.start[i + 1]]
    }

    fn trace_to(&self, mut i: usize) -> Vec<Step> {
        let mut rev = Vec::new();
        loop {
            let (action, next) = match self.parent[i] {
                Some((p, a)) => (a, Some(p as usize)),
                None => (Action::Init, None),
            };
            rev.push(Step { action, state: self.states[i] });
            match next {
                Some(p) => i = p,
                None => break,
            }
        }
        rev.reverse();
        rev
    }
}

/// Explore every reachable state of `cfg`, check safety on each, then
/// bounded progress from each.
pub fn check(cfg: &Config) -> Report {
    let init = State::initial().canon();
    let mut index: HashMap<State, u32, std::hash::BuildHasherDefault<Fnv>> = HashMap::default();
    index.insert(init, 0);
    let mut g = Graph { states: vec![init], parent: vec![None], start: vec![0], edges: Vec::new() };
    let mut violations: Vec<Violation> = Vec::new();
    let mut seen_props: HashSet<&'static str> = HashSet::new();
    let mut record = |g: &Graph, i: usize, violations: &mut Vec<Violation>| {
        for p in g.states[i].violations() {
            if seen_props.insert(p) {
                violations.push(Violation { property: p, trace: g.trace_to(i) });
            }
        }
    };
    record(&g, 0, &mut violations);
    // States are numbered in discovery order, so scanning them in order is
    // the breadth-first queue (and traces are shortest).
    let mut i = 0;
    while i < g.states.len() {
        if g.states.len() > MAX_STATES {
            break;
        }
        let s = g.states[i];
        for (action, n) in successors(cfg, &s) {
            let next = g.states.len() as u32;
            let to = *index.entry(n).or_insert(next);
            if to == next {
                g.states.push(n);
                g.parent.push(Some((i as u32, action)));
                record(&g, to as usize, &mut violations);
            }
            g.edges.push(Edge { to, action, controller: n.pc != s.pc });
        }
        g.start.push(g.edges.len());
        i += 1;
    }
    let complete = i == g.states.len();
    let actions: std::collections::BTreeSet<Action> = g.edges.iter().map(|e| e.action).collect();
    let actions: Vec<Action> = actions.into_iter().collect();
    if !complete {
        return Report {
            states: g.states.len(),
            transitions: g.edges.len(),
            complete,
            violations,
            liveness_ok: false,
            convergence_ok: false,
            progress_failures: Vec::new(),
            max_steps_to_delete: 0,
            max_controller_steps_to_delete: 0,
            actions,
        };
    }

    let mut progress_failures = Vec::new();
    let (mut max_steps, mut max_ctrl) = (0, 0);
    match bounded_progress(&g, LIVENESS, |a, _| a.is_fair(), |s| s.deleted) {
        Ok((steps, ctrl, worst)) => {
            (max_steps, max_ctrl) = (steps, ctrl);
            if ctrl > cfg.liveness_bound {
                progress_failures.push(Violation { property: LIVENESS, trace: g.trace_to(worst) });
            }
        }
        Err(v) => progress_failures.push(v),
    }
    let liveness_ok = progress_failures.is_empty();
    // Convergence: the agent eventually comes back up (and then stays up),
    // and its periodic reconcile counts; everything else as for liveness.
    let conv = bounded_progress(
        &g,
        CONVERGENCE,
        |a, s| {
            a.is_fair()
                || *a == Action::AgentReconcile
                || (*a == Action::AgentBecomes(AgentMode::Up) && s.agent != AgentMode::Up)
        },
        State::converged,
    );
    let convergence_ok = conv.is_ok();
    if let Err(v) = conv {
        progress_failures.push(v);
    }
    Report {
        states: g.states.len(),
        transitions: g.edges.len(),
        complete,
        violations,
        liveness_ok,
        convergence_ok,
        progress_failures,
        max_steps_to_delete: max_steps,
        max_controller_steps_to_delete: max_ctrl,
        actions,
    }
}

/// A node of the depth-first search of [`bounded_progress`].
struct Frame {
    node: usize,
    via: Action,
    controller: bool,
    next: usize,
    best: (u32, u32),
}

/// Bounded "every fair run reaches `goal`": the graph of `fair` edges out of
/// non-goal states must be acyclic with no dead end. Returns the longest fair
/// run to `goal` (all steps, controller steps) over all reachable states, and
/// the state it starts from. Iterative, memoised depth-first search.
fn bounded_progress(
    g: &Graph,
    property: &'static str,
    fair: impl Fn(&Action, &State) -> bool,
    goal: impl Fn(&State) -> bool,
) -> Result<(u32, u32, usize), Violation> {
    let n = g.states.len();
    let mut memo: Vec<Option<(u32, u32)>> = vec![None; n];
    let mut on_stack = vec![false; n];
    let (fair, goal) = (&fair, &goal);
    let fair_out = |i: usize| g.out(i).iter().filter(move |e| !goal(&g.states[i]) && fair(&e.action, &g.states[i]));
    // The path that the search followed to `stack`'s top, then `last`.
    let lasso = |root: usize, stack: &[Frame], last: Option<(Action, usize)>| {
        let mut trace = g.trace_to(root);
        trace.extend(stack.iter().skip(1).map(|f| Step { action: f.via, state: g.states[f.node] }));
        trace.extend(last.map(|(action, c)| Step { action, state: g.states[c] }));
        Violation { property, trace }
    };
    let (mut worst, mut worst_at) = ((0, 0), 0);
    for root in 0..n {
        if memo[root].is_some() {
            continue;
        }
        let mut stack = vec![Frame { node: root, via: Action::Init, controller: false, next: 0, best: (0, 0) }];
        on_stack[root] = true;
        while let Some(top) = stack.last_mut() {
            let node = top.node;
            if let Some(e) = fair_out(node).nth(top.next) {
                top.next += 1;
                let c = e.to as usize;
                if let Some((t, k)) = memo[c] {
                    top.best = (top.best.0.max(t + 1), top.best.1.max(k + u32::from(e.controller)));
                } else if on_stack[c] {
                    return Err(lasso(root, &stack, Some((e.action, c)))); // a fair run loops forever
                } else {
                    on_stack[c] = true;
                    stack.push(Frame { node: c, via: e.action, controller: e.controller, next: 0, best: (0, 0) });
                }
                continue;
            }
            if top.next == 0 && !goal(&g.states[node]) {
                return Err(lasso(root, &stack, None)); // stuck: no fair step, not there
            }
            let Some(done) = stack.pop() else { break };
            on_stack[node] = false;
            memo[node] = Some(done.best);
            if (done.best.1, done.best.0) > (worst.1, worst.0) {
                (worst, worst_at) = (done.best, node);
            }
            if let Some(parent) = stack.last_mut() {
                let b = (done.best.0 + 1, done.best.1 + u32::from(done.controller));
                parent.best = (parent.best.0.max(b.0), parent.best.1.max(b.1));
            }
        }
    }
    Ok((worst.0, worst.1, worst_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn run(name: &str, cfg: &Config) -> Report {
        let t = Instant::now();
        let r = check(cfg);
        eprintln!(
            "{name}: {} states, {} transitions, complete={}, liveness_ok={}, convergence_ok={}, \
             max fair steps to delete={} (controller steps={}), {:?}",
            r.states,
            r.transitions,
            r.complete,
            r.liveness_ok,
            r.convergence_ok,
            r.max_steps_to_delete,
            r.max_controller_steps_to_delete,
            t.elapsed()
        );
        for v in r.violations.iter().chain(&r.progress_failures) {
            eprintln!("{v}");
        }
        assert!(r.complete, "state space cut at {MAX_STATES}");
        r
    }

    /// No fault but slowness: a healthy agent may still miss the deadlines.
    /// Enough to expose every broken variant, and small.
    fn calm() -> Config {
        Config { agent_faults: &[], controller_crashes: false, lossy_network: false, ..Config::correct() }
    }

    fn found<'a>(r: &'a Report, property: &str) -> &'a Violation {
        let v = r.violations.iter().chain(&r.progress_failures).find(|v| v.property == property);
        let v = v.unwrap_or_else(|| panic!("checker missed {property}"));
        assert!(v.trace.len() > 1);
        assert!(!format!("{:?}", v.trace).is_empty());
        v
    }

    #[test]
    fn model_of_delete_is_safe_and_live() {
        let r = run("correct protocol, all faults", &Config::correct());
        assert!(r.violations.is_empty(), "{:#?}", r.violations.first().map(ToString::to_string));
        assert!(r.liveness_ok && r.convergence_ok);
        assert!(r.max_controller_steps_to_delete <= Config::correct().liveness_bound);
        // Safety holding vacuously (a path never taken) would prove nothing.
        for a in [
            Action::Decide(Decision::AlreadyDeleted),
            Action::Decide(Decision::LeaseExpired),
            Action::Decide(Decision::NoResponders),
            Action::Decide(Decision::SentTerminate),
            Action::Deadline,
            Action::Deliver(Msg::Ack { accepted: false }),
            Action::Deliver(Msg::Result { ok: true }),
            Action::Deliver(Msg::Result { ok: false }),
            Action::Deliver(Msg::InventoryWithoutVm),
            Action::Run(Path::Local, DeleteStep::RecordZombie),
            Action::Run(Path::Local, DeleteStep::Fence),
            Action::Run(Path::Local, DeleteStep::MarkDeleted),
            Action::Run(Path::Remote, DeleteStep::MarkDeleted),
            Action::AgentRejoin,
            Action::AgentReconcile,
            Action::AgentExecute { ok: true },
            Action::ControllerCrash,
        ] {
            assert!(r.actions.contains(&a), "{a:?} never happens");
        }
    }

    #[test]
    fn model_finds_release_before_fence_bug() {
        let r = run("release before fence", &Config { release_before_fence: true, ..calm() });
        let v = found(&r, P1_RELEASED_WHILE_UNFENCED);
        assert!(v.trace.iter().any(|s| s.action == Action::Run(Path::Local, DeleteStep::Detach)));
    }

    #[test]
    fn model_finds_delete_without_fence_when_host_is_falsely_up() {
        // Healthy agents are timely here, so only the falsely-up fault can
        // send the controller down the local path.
        let cfg = Config {
            agent_faults: &[AgentMode::FalselyUp],
            controller_crashes: false,
            lossy_network: false,
            slow_agent: false,
            fence: false,
            ..Config::correct()
        };
        let r = run("no fence, host falsely up", &cfg);
        let v = found(&r, P2_DELETED_WHILE_UNFENCED);
        assert!(v.trace.iter().any(|s| s.state.agent == AgentMode::FalselyUp));
        assert!(v.trace.iter().any(|s| s.action == Action::Deadline));
        found(&r, P1_RELEASED_WHILE_UNFENCED);
        // The same protocol with the fence is safe under the same faults.
        let r = run("fence, host falsely up", &Config { fence: true, ..cfg });
        assert!(r.violations.is_empty() && r.liveness_ok);
    }

    #[test]
    fn model_finds_delete_without_fence_with_a_merely_slow_host() {
        // No fault at all: an agent slower than `terminate_timeout` suffices.
        let r = run("no fence, slow healthy host", &Config { fence: false, ..calm() });
        found(&r, P2_DELETED_WHILE_UNFENCED);
    }

    #[test]
    fn model_finds_capacity_freed_without_zombie() {
        let r = run("no zombie", &Config { record_zombie: false, ..calm() });
        found(&r, P3_CAPACITY_FREED_EARLY);
    }

    #[test]
    fn model_finds_reattach_undoing_the_fence() {
        let r = run("reattach while deleting", &Config { reattach_while_deleting: true, ..calm() });
        let v = found(&r, P1_RELEASED_WHILE_UNFENCED);
        assert!(v.trace.iter().any(|s| s.action == Action::Reattach));
    }

    #[test]
    fn model_finds_stuck_delete_without_deadlines() {
        let cfg = Config { agent_faults: &[AgentMode::FalselyUp], deadlines: false, ..calm() };
        let r = run("no deadlines, host falsely up", &cfg);
        assert!(r.violations.is_empty());
        assert!(!r.liveness_ok);
        found(&r, LIVENESS);
    }
}
