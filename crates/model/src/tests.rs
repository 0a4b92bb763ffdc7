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
    Config {
        agent_faults: &[],
        controller_crashes: false,
        lossy_network: false,
        second_controller: false,
        ..Config::correct()
    }
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
        Action::VmDies,
        Action::EndClient(0),
        Action::EndClient(1),
        Action::Unfence(0),
        Action::Unfence(1),
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

#[test]
fn model_finds_a_fence_lifted_while_its_client_outlives_the_vm() {
    // The lift waits for the zombie only: a client that outlived its VM is
    // un-fenced while it can still write to the volume someone else now has.
    let r = run("unfence once the VM record is gone", &Config { unfence_when_vm_gone: true, ..calm() });
    let v = found(&r, P1_RELEASED_WHILE_UNFENCED);
    let lifted = v
        .trace
        .iter()
        .position(|s| matches!(s.action, Action::Unfence(_)))
        .expect("the counterexample lifts the fence");
    let Action::Unfence(i) = v.trace[lifted].action else { unreachable!() };
    assert!(v.trace[lifted].state.client_running[usize::from(i)], "lifted while the client still runs");
    // The same environment with the real lift condition is safe.
    let r = run("unfence once the client is reported gone", &calm());
    assert!(r.violations.is_empty() && r.liveness_ok && r.convergence_ok);
}

#[test]
fn model_of_two_controllers_is_safe_and_live() {
    // Every agent fault, slow agents, and a controller that stalls past its
    // claim while a second one adopts the delete (one storage client, no
    // message loss and no crash besides: with them the space passes the cap).
    let cfg = Config {
        controller_crashes: false,
        lossy_network: false,
        second_controller: true,
        clients: 1,
        ..Config::correct()
    };
    let r = run("two controllers, all agent faults", &cfg);
    assert!(r.violations.is_empty(), "{:#?}", r.violations.first().map(ToString::to_string));
    assert!(r.liveness_ok && r.convergence_ok, "{:?}", r.progress_failures.first().map(ToString::to_string));
    for a in [Action::Adopt, Action::StaleStep, Action::Unfence(0), Action::Deadline] {
        assert!(r.actions.contains(&a), "{a:?} never happens");
    }
}

#[test]
fn model_finds_a_stalled_controller_acting_without_fencing_tokens() {
    // A controller stalls past its claim; the second adopts and finishes
    // the delete; the first resumes and, unfenced, runs its remaining steps:
    // among them a second `instance.delete.end`.
    let cfg = Config { second_controller: true, fencing_tokens: false, ..calm() };
    let r = run("stalled controller without fencing tokens", &cfg);
    let v = found(&r, P4_STALE_CONTROLLER_ACTED);
    assert!(v.trace.iter().any(|s| s.action == Action::Adopt));
    let v = found(&r, P5_DELETE_END_TWICE);
    let adopted = v.trace.iter().position(|s| s.action == Action::Adopt).expect("adopted");
    assert!(v.trace[adopted..].iter().any(|s| s.action == Action::StaleStep));
    // The same environment with fencing tokens: every property holds.
    let r = run("stalled controller with fencing tokens", &Config { fencing_tokens: true, ..cfg });
    assert!(
        r.violations.is_empty() && r.liveness_ok && r.convergence_ok,
        "{:?}",
        r.violations.first().map(ToString::to_string)
    );
}

#[test]
fn model_finds_a_second_volume_released_unfenced() {
    // Two volumes, one storage client each: fencing only the first releases
    // the second volume to its still-writing client.
    let r = run("fence the first client only", &Config { fence_first_client_only: true, ..calm() });
    let v = found(&r, P1_RELEASED_WHILE_UNFENCED);
    let last = &v.trace[v.trace.len() - 1].state;
    assert!(last.writes(1) || last.stray_write, "the second client writes: {last}");
    assert!(!last.writes(0), "the first client is fenced: {last}");
}
