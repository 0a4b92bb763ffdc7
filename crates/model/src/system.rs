//! The modelled system: messages, channels, the controller's position, the
//! transition labels and the whole state.

use super::plan::first_step;
use super::*;
use std::fmt;

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
pub struct Channel(pub(crate) [Option<Msg>; CHANNEL_CAP]);

impl Channel {
    /// The messages in flight.
    pub fn iter(&self) -> impl Iterator<Item = Msg> + '_ {
        self.0.iter().flatten().copied()
    }

    pub(crate) fn push(&mut self, m: Msg) {
        if let Some(slot) = self.0.iter_mut().find(|x| x.is_none()) {
            *slot = Some(m);
        }
    }

    pub(crate) fn remove(&mut self, i: usize) {
        self.0[i] = None;
    }

    pub(crate) fn retain(&mut self, keep: impl Fn(&Msg) -> bool) {
        for slot in &mut self.0 {
            if slot.is_some_and(|m| !keep(&m)) {
                *slot = None;
            }
        }
    }

    pub(crate) fn map(&mut self, f: impl Fn(Msg) -> Msg) {
        for m in self.0.iter_mut().flatten() {
            *m = f(*m);
        }
    }

    pub(crate) fn canon(&mut self) {
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
    /// The VM process dies on its own (a crash, the host watchdog), and its
    /// storage client process lives on.
    VmDies,
    /// The agent's sweep ends a storage client that outlived its VM.
    EndClient(u8),
    /// The controller's reconciler lifts a client's fence.
    Unfence(u8),
    /// The controller running the delete stalls past its claim; the second
    /// controller adopts the operation and starts it over.
    Adopt,
    /// The stalled controller resumes and takes its next step.
    StaleStep,
}

impl Action {
    /// May this step happen in a fair run (no controller crash, no message
    /// loss, the agent keeps its mode)? Periodic reconciles and VM writes
    /// never help a delete, so they are left out of fair runs too.
    pub(crate) fn is_fair(&self) -> bool {
        !matches!(
            self,
            Action::ControllerCrash
                | Action::Adopt
                | Action::StaleStep
                | Action::Drop(_)
                | Action::AgentBecomes(_)
                | Action::AgentReconcile
                | Action::VmWrite
                | Action::Reattach
                | Action::EndClient(_)
                | Action::VmDies
                | Action::LeaseExpires { renewals_lost: true }
        )
    }
}

/// The whole system: durable rows, volatile controller position, agent,
/// VM, storage and network. Small domains keep the search exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// How many storage clients (volumes) the VM has (fixed per run).
    pub clients: u8,
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
    /// Storage's current generation, per volume (volume `i` is client `i`'s).
    pub storage_gen: [u8; CLIENTS],
    /// Generation held by each of the VM's storage clients.
    pub client_gen: [u8; CLIENTS],
    /// The volumes are detached and available to others.
    pub volume_released: bool,
    /// Each attachment is marked fenced (durable): the fence step skips it
    /// when it runs again, even after the fence was lifted.
    pub fenced_mark: [bool; CLIENTS],
    /// Storage accepted a write from the VM after the volume was released.
    pub stray_write: bool,
    /// Each of the VM's storage client processes runs (it outlives the VM
    /// until ended). A client beyond [`Config::clients`] never runs.
    pub client_running: [bool; CLIENTS],
    /// A fence lift is queued, per client (durable: the cleanup row).
    pub unfence_pending: [bool; CLIENTS],
    /// The host's latest clients report (made by a joined agent) lists the
    /// client as gone (durable).
    pub client_gone_reported: [bool; CLIENTS],
    /// The controller that lost the claim (stalled, then adopted from) and
    /// its position, until it stops.
    pub stale: Option<Pc>,
    /// The operation was adopted once (the model allows one adoption).
    pub adopted: bool,
    /// A step of the stalled controller took effect after the adoption.
    pub stale_acted: bool,
    /// `instance.delete.end` notifications emitted (saturating at 2).
    pub ends: u8,
    /// Messages to the agent.
    pub to_agent: Channel,
    /// Messages to the controller.
    pub to_ctrl: Channel,
}

impl State {
    /// One server running on a healthy host with its volumes attached, one
    /// storage client per volume (`clients` of them).
    pub fn initial(clients: usize) -> Self {
        Self {
            clients: clients.min(CLIENTS) as u8,
            deletes: 0,
            pc: Pc::Idle,
            deleted: false,
            zombie: false,
            lease_valid: true,
            agent: AgentMode::Up,
            joined: true,
            task: false,
            vm_running: true,
            storage_gen: [0; CLIENTS],
            client_gen: [0; CLIENTS],
            volume_released: false,
            fenced_mark: [false; CLIENTS],
            stray_write: false,
            client_running: std::array::from_fn(|i| i < clients),
            unfence_pending: [false; CLIENTS],
            client_gone_reported: [false; CLIENTS],
            stale: None,
            adopted: false,
            stale_acted: false,
            ends: 0,
            to_agent: Channel::default(),
            to_ctrl: Channel::default(),
        }
    }

    /// Can client `i` still write to its volume?
    pub(crate) fn writes(&self, i: usize) -> bool {
        self.client_running[i] && self.client_gen[i] == self.storage_gen[i]
    }

    /// Can any of the VM's clients still write to its volume?
    pub(crate) fn unfenced_writer(&self) -> bool {
        (0..CLIENTS).any(|i| self.writes(i))
    }

    /// The first of the VM's attachments not marked fenced yet.
    pub(crate) fn unmarked_client(&self) -> Option<usize> {
        (0..usize::from(self.clients)).find(|&i| !self.fenced_mark[i])
    }

    /// Does any storage client still run?
    pub(crate) fn any_client_running(&self) -> bool {
        self.client_running.iter().any(|r| *r)
    }

    /// Which safety properties this state violates.
    pub(crate) fn violations(&self) -> Vec<&'static str> {
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
        if self.stale_acted {
            v.push(P4_STALE_CONTROLLER_ACTED);
        }
        if self.ends > 1 {
            v.push(P5_DELETE_END_TWICE);
        }
        v
    }

    /// Nothing leaks: deleted, VM and its client gone, zombie cleared,
    /// volume released, no fence left in place.
    pub(crate) fn converged(&self) -> bool {
        self.deleted
            && !self.vm_running
            && !self.any_client_running()
            && !self.zombie
            && self.volume_released
            && !self.unfence_pending.iter().any(|p| *p)
    }

    /// The agent destroys the VM: it ends the VM's storage clients and
    /// waits until they are gone, then the VM (`Agent::destroy_vm`).
    pub(crate) fn destroy_vm(&mut self) {
        self.vm_running = false;
        self.client_running = [false; CLIENTS];
    }

    /// Canonical form: channels sorted (they are multisets), generations
    /// relative to the client's.
    pub(crate) fn canon(mut self) -> Self {
        self.to_agent.canon();
        self.to_ctrl.canon();
        for i in 0..CLIENTS {
            self.storage_gen[i] -= self.client_gen[i];
            self.client_gen[i] = 0;
        }
        self
    }

    /// Run one step of the delete (the durable fact it leaves behind).
    pub(crate) fn apply(&mut self, step: DeleteStep) {
        match step {
            DeleteStep::RecordZombie => self.zombie = true,
            DeleteStep::Fence => {
                // The next attachment not marked fenced (the code fences one
                // after another; a crash may fall between).
                if let Some(i) = self.unmarked_client() {
                    if self.storage_gen[i] == self.client_gen[i] {
                        // The lift's intent is recorded (a checked write) before the fence.
                        self.unfence_pending[i] = true;
                        self.storage_gen[i] += 1;
                    }
                    self.fenced_mark[i] = true;
                }
            }
            DeleteStep::Detach => self.volume_released = true,
            DeleteStep::MarkDeleted => self.deleted = true,
            DeleteStep::Finish => self.ends = (self.ends + 1).min(2),
        }
    }

    /// The controller sends `Terminate` (first time or re-send on a wake).
    pub(crate) fn send_terminate(&mut self, cfg: &Config) {
        if self.agent == AgentMode::Crashed {
            self.pc = first_step(cfg, Path::Local);
        } else {
            self.to_agent.push(Msg::Terminate { stale: false, orphan: false });
            self.pc = Pc::AwaitAck;
        }
    }

    /// Agent reconcile: report VMs and open storage clients (the controller
    /// clears zombies of absent VMs and records the clients), reap the VM if
    /// its server is deleted, report again.
    pub(crate) fn reconcile(&mut self) {
        if !self.vm_running {
            self.zombie = false;
        }
        for i in 0..CLIENTS {
            self.client_gone_reported[i] = !self.client_running[i];
        }
        if self.deleted && self.vm_running {
            self.destroy_vm();
            self.to_ctrl.push(Msg::InventoryWithoutVm);
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pc={:?} deletes={} deleted={} zombie={} lease={} agent={:?}{}{} vm={} gen={:?}/{:?} volumes={}{} {}{} to_agent={:?} to_ctrl={:?}",
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
            (0..CLIENTS)
                .map(|i| match (self.client_running[i], self.client_gone_reported[i]) {
                    (true, _) => format!("client{i} running"),
                    (false, true) => format!("client{i} gone (reported)"),
                    (false, false) => format!("client{i} gone"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            (0..CLIENTS)
                .filter(|&i| self.unfence_pending[i])
                .map(|i| format!(" unfence{i} pending"))
                .collect::<String>(),
            self.to_agent,
            self.to_ctrl,
        )?;
        if let Some(pc) = self.stale {
            write!(f, " stale controller at {pc:?}")?;
        }
        if self.stale_acted {
            write!(f, " (stale controller acted!)")?;
        }
        if self.ends > 0 {
            write!(f, " ends={}", self.ends)?;
        }
        Ok(())
    }
}
