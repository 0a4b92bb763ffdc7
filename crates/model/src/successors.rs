//! The transition relation: every step the API, the controller, the agent,
//! the VM, storage and the network may take from a state.

use super::plan::{first_step, step_after};
use super::*;

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
            n.apply(step);
            // The fence step goes on until every client is fenced (the
            // broken variant stops after the first).
            let more = step == DeleteStep::Fence && !cfg.fence_first_client_only && n.unmarked_client().is_some();
            n.pc = if more { s.pc } else { step_after(cfg, path, step) };
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
    // A second controller adopts the operation of a stalled one, which keeps
    // its position (and its waits: only their deadlines can end them now).
    if cfg.second_controller && !s.adopted && !matches!(s.pc, Pc::Idle | Pc::Done) {
        let mut n = *s;
        n.adopted = true;
        n.stale = Some(s.pc);
        n.pc = Pc::Decide;
        n.to_ctrl.retain(|m| !matches!(m, Msg::Ack { .. }));
        n.to_agent.map(|m| match m {
            Msg::Terminate { stale, .. } => Msg::Terminate { stale, orphan: true },
            m => m,
        });
        emit(Action::Adopt, n);
    }
    if let Some(pc) = s.stale {
        let mut n = *s;
        // With fencing tokens, whatever it does next (a write, a command, a
        // fence) is refused or checked first: it stops. A wait only ends.
        let acts = !cfg.fencing_tokens;
        n.stale = match pc {
            Pc::Idle | Pc::Done => None,
            Pc::AwaitAck | Pc::AwaitResult => match first_step(cfg, Path::Local) {
                Pc::Run { path, step } => Some(Pc::Run { path, step }),
                _ => None,
            },
            Pc::Decide if !acts || s.deleted => None,
            Pc::Decide => match first_step(cfg, Path::Local) {
                Pc::Run { path, step } => Some(Pc::Run { path, step }),
                _ => None,
            },
            Pc::Run { .. } if !acts => None,
            Pc::Run { path, step } => {
                n.apply(step);
                n.stale_acted = true;
                let more = step == DeleteStep::Fence && n.unmarked_client().is_some();
                match if more { pc } else { step_after(cfg, path, step) } {
                    Pc::Done => None,
                    next => Some(next),
                }
            }
        };
        emit(Action::StaleStep, n);
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
            if ok {
                n.destroy_vm();
            }
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
    let report_due = (0..CLIENTS).any(|i| s.client_gone_reported[i] == s.client_running[i]);
    if alive && s.joined && ((s.zombie && !s.vm_running) || (s.deleted && s.vm_running) || report_due) {
        let mut n = *s;
        n.reconcile();
        emit(Action::AgentReconcile, n);
    }
    if cfg.clients_outlive_vms && s.vm_running && s.any_client_running() {
        let mut n = *s;
        n.vm_running = false;
        emit(Action::VmDies, n);
    }
    for i in 0..CLIENTS {
        if alive && s.joined && s.client_running[i] && !s.vm_running {
            let mut n = *s;
            n.client_running[i] = false;
            emit(Action::EndClient(i as u8), n);
        }
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
    let fenced = (0..usize::from(s.clients)).any(|i| s.client_gen[i] != s.storage_gen[i]);
    if cfg.reattach_while_deleting && alive && s.joined && s.vm_running && !s.deleted && s.deletes > 0 && fenced {
        let mut n = *s;
        for i in 0..usize::from(s.clients) {
            n.client_gen[i] = n.storage_gen[i];
            n.client_running[i] = true;
        }
        emit(Action::Reattach, n);
    }
    // The controller's reconciler lifts the fence once it is safe (or, in
    // the broken variant, once the VM record is gone).
    for i in 0..CLIENTS {
        if s.unfence_pending[i] && !s.zombie && (cfg.unfence_when_vm_gone || s.client_gone_reported[i]) {
            let mut n = *s;
            n.storage_gen[i] = n.client_gen[i];
            n.unfence_pending[i] = false;
            emit(Action::Unfence(i as u8), n);
        }
    }
    out
}
