//! An executable model of server delete, host leases and storage fencing
//! (DESIGN.md, "The delete contract" and "Liveness"), checked exhaustively.
//!
//! [`check`] enumerates every state reachable from one running server (one
//! VM with [`Config::clients`] volumes, one host) by breadth-first search with a visited set, and
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
//! - **VM and storage**: a running VM writes to each of its volumes (two in
//!   [`Config::correct`]) through a storage client of its own per volume, a
//!   process of its own: the agent ends them before it destroys the VM, but
//!   a VM that dies on its own leaves them running
//!   ([`Config::clients_outlive_vms`]) until the agent's sweep ends each;
//!   storage refuses writes from a client generation older than its volume's
//!   current one. The fence step fences one attachment after another (a
//!   crash may fall between; each attachment is marked fenced, so a re-run
//!   skips it even once its fence was lifted), queueing each fence's lift. A
//!   released volume belongs to someone else.
//! - **Fence lift** (`VolumeService::lift_fences`, run by the controller's
//!   reconciler): the fence is lifted (the old generation writes again) only
//!   once the zombie is cleared *and* the host, in a report made by a joined
//!   agent, listed the client as gone; the broken variant
//!   [`Config::unfence_when_vm_gone`] drops the second half.
//! - **Two controllers** ([`Config::second_controller`]): the controller
//!   running the delete may stall past its claim's expiry; a second one then
//!   adopts the operation (the claim's token grows) and runs it from the
//!   start, while the stalled one keeps its position and may resume at any
//!   time. With fencing tokens (`stratus_db::claim`) its next write, or its
//!   next external effect (checked with `claim_held` right before), is
//!   refused and it stops; the broken variant [`Config::fencing_tokens`]
//!   `= false` lets it carry on.
//! - **Network**: bounded channels (two messages per direction, a full
//!   channel drops), delivered in any order, optionally lossy.
//!
//! # What is abstracted away
//! Real time (only "a deadline passed" and "the lease lapsed" remain, both by
//! the controller's clock; `forced_down` is a lapsed lease), ports, quota
//! numbers (a zombie stands for reserved capacity), events, several servers
//! or hosts, more than one adoption per delete, the window between a
//! `claim_held` check and the external call it guards (one idempotent call;
//! the check and the effect are one step here), epochs of the
//! clients report (a client gone stays gone, so only "a joined agent
//! reported it" matters), more than two clients per VM, multi-attach,
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
//! [`P2_DELETED_WHILE_UNFENCED`], [`P3_CAPACITY_FREED_EARLY`],
//! [`P4_STALE_CONTROLLER_ACTED`], [`P5_DELETE_END_TWICE`]. Bounded
//! progress: see [`Report::liveness_ok`] and [`Report::convergence_ok`].
//! Deliberately broken [`Config`]s show that each property can fail.

mod check;
mod plan;
mod successors;
mod system;

pub use check::*;
pub use successors::successors;
pub use system::*;

/// Property 1: a volume is never handed to another attacher while a VM that
/// can still write to it (running, client generation current) holds it.
pub const P1_RELEASED_WHILE_UNFENCED: &str = "P1: volume released while an unfenced writer holds it";
/// Property 2: a server is never both deleted and running unfenced: a user
/// who saw the delete succeed must not have a VM still writing their data.
pub const P2_DELETED_WHILE_UNFENCED: &str = "P2: server marked deleted while its VM runs unfenced";
/// Property 3: capacity is freed (server deleted, no zombie) only once the
/// VM is really gone, or the scheduler double-books the host.
pub const P3_CAPACITY_FREED_EARLY: &str = "P3: capacity released while the VM still runs";
/// Property 4: a controller that lost the operation's claim (it stalled and
/// another adopted the operation) changes nothing any more: no row, no
/// fence, no command.
pub const P4_STALE_CONTROLLER_ACTED: &str = "P4: a controller that lost its claim still acted for the operation";
/// Property 5: `instance.delete.end` is emitted at most once per delete
/// (billing and audit systems count it).
pub const P5_DELETE_END_TWICE: &str = "P5: instance.delete.end emitted twice";
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
/// Most storage clients (volumes) the modelled VM may have.
pub const CLIENTS: usize = 2;

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
    /// The environment: a VM's storage client is a process of its own, and
    /// the VM may die on its own (a crash, the host watchdog) leaving it
    /// running until the agent's sweep ends it. (When the agent destroys a
    /// VM it ends the clients first and waits until they are gone.)
    pub clients_outlive_vms: bool,
    /// Storage clients of the VM, one per volume (1 or 2): each is fenced,
    /// ended and un-fenced on its own.
    pub clients: usize,
    /// Broken variant: the local path fences the VM's first client only.
    pub fence_first_client_only: bool,
    /// Broken variant: a fence is lifted once the host reported the VM gone
    /// (the zombie cleared), without the client itself being reported gone.
    pub unfence_when_vm_gone: bool,
    /// The environment: the controller running the delete may stall past
    /// its claim, and a second controller adopts the operation. Off in
    /// [`Config::correct`] (with message loss and controller crashes the
    /// space passes [`MAX_STATES`]); checked on its own under every agent
    /// fault (`model_of_two_controllers_is_safe_and_live`).
    pub second_controller: bool,
    /// Writes and effects of an attempt are checked against its claim's
    /// token (`false`: the broken variant, a stalled controller carries on).
    pub fencing_tokens: bool,
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
            clients_outlive_vms: true,
            unfence_when_vm_gone: false,
            clients: 2,
            fence_first_client_only: false,
            second_controller: false,
            fencing_tokens: true,
            liveness_bound: 12,
        }
    }
}

#[cfg(test)]
mod tests;
