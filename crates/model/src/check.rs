//! The checker: breadth-first exploration with safety on every state, then
//! bounded progress and convergence.

use super::*;
use std::collections::{HashMap, HashSet};
use std::fmt;

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
    let init = State::initial(cfg.clients).canon();
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
                || matches!(a, Action::EndClient(_))
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
