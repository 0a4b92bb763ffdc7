//! Real network partitions and restarts (issue 9). Every compute host is a
//! `stratus compute` process in a network namespace of its own, on a private
//! bridge (see `common::netns`); the API and the controllers run in this
//! namespace (a controller also in a namespace when it is the one cut off),
//! on a private PostgreSQL and a private nats-server, both listening on the
//! bridge. The cases: a host cut from NATS only; a host cut from everything;
//! a controller cut from PostgreSQL; the leader controller killed mid-delete;
//! PostgreSQL restarted (`pg_ctl stop -m immediate` + start); nats-server
//! restarted (SIGKILL + start on the same port).
//!
//! Each case asserts: every delete finishes within its bound; no split brain
//! (a host that comes back after being fenced stays fenced until it rejoined
//! with a new epoch and reaped its zombies, and its storage fences are lifted
//! only then; a controller that lost the database stops leading before its
//! lease can run out); one `instance.delete.start`/`.end` each; nothing leaks
//! (quota, zombies, storage cleanups, VMs on the hosts, `stratus audit`). The
//! figures (time to 404, time to fence, time to recover) are printed as
//! `MEASURE` lines.
//!
//! Nova's reference behaviour: a compute host whose `service_down_time`
//! lapsed is `down`, and `compute/api.py` `_delete` then deletes locally
//! (its VM is left to `running_deleted_instance_action` when the host
//! returns); its conductors share one database and one message bus, and a
//! database or RabbitMQ restart is survived by reconnecting (oslo.db /
//! oslo.messaging retries).

mod common;

use chrono::{DateTime, Utc};
use common::netns::{Net, NsHost, PrivatePg};
use common::*;
use reqwest::{Method, StatusCode};
use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::time::{Duration, Instant};
use stratus_db::Datastore;
use stratus_types::ServiceState;
use stratus_types::volume::CleanupKind;

/// Agents' lease (`--lease-ttl`), short so that the cases run quickly.
const LEASE_TTL: Duration = Duration::from_secs(3);
/// `--terminate-timeout` (no shorter than the lease: the bound stays `min(...)`).
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(3);
/// `--op-claim-ttl`.
const CLAIM_TTL: Duration = Duration::from_secs(2);
/// `--leader-ttl`.
const LEADER_TTL: Duration = Duration::from_secs(2);
/// The delete bound of `tests/chaos.rs`, `min(terminate_timeout, lease_ttl) + 5 s`,
/// with this file's settings.
const DELETE_BOUND: Duration = Duration::from_secs(
    if TERMINATE_TIMEOUT.as_secs() < LEASE_TTL.as_secs() { TERMINATE_TIMEOUT.as_secs() } else { LEASE_TTL.as_secs() }
        + 5,
);
/// How long a host stays cut off: long enough that the TCP connections it
/// had are deep in retransmission backoff when it is healed (a client that
/// waits for them to resume comes back tens of seconds after the heal).
const PARTITION: Duration = Duration::from_secs(30);
/// A healed host rejoins within this: its NATS client noticed the dead
/// connection during the cut and is retrying a fresh one (at most a second
/// apart, each giving up after two), then joins and reconciles.
const REJOIN_BOUND: Duration = Duration::from_secs(5);
/// A rejoined host takes a new build within this (a build refused in the
/// instant between its service row turning up and its agent holding the
/// new epoch is rescheduled elsewhere).
const TAKES_WORK_BOUND: Duration = Duration::from_secs(5);
/// Generous timeout of waits that are not measured against a bound.
const T: Duration = Duration::from_secs(30);

/// Settings of the API and every controller.
fn control_env(db_url: &str) -> Vec<(String, String)> {
    [
        ("STRATUS_DATABASE_URL", db_url),
        ("STRATUS_LEASE_TTL", "3"),
        ("STRATUS_LEASE_RENEW_INTERVAL", "0.5"),
        // Longer than an agent's requests to the controllers may take (2 s),
        // as with the defaults (5 s): an agent waiting for a renewal answer
        // takes its commands after it.
        ("STRATUS_TERMINATE_ACK_TIMEOUT", "2.5"),
        ("STRATUS_TERMINATE_TIMEOUT", "3"),
        ("STRATUS_OP_CLAIM_TTL", "2"),
        ("STRATUS_LEADER_TTL", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A `stratus controller` process, killed on drop.
struct Ctl {
    id: String,
    netns: Option<String>,
    child: Option<Child>,
}

impl Ctl {
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a case runs on. Fields drop in order: processes first, then the
/// services they use, then the namespaces.
struct Rig {
    agents: Vec<AgentProc>,
    ctls: Vec<Ctl>,
    api: Cloud,
    db: Datastore,
    nats: Nats,
    pg: PrivatePg,
    /// `hosts[i]` is the namespace of `agents[i]`.
    hosts: Vec<NsHost>,
    /// The namespace of each controller that runs in one, by controller id.
    ctl_hosts: HashMap<String, NsHost>,
    _net: Net,
    admin: String,
    demo: String,
    env: Vec<(String, String)>,
}

/// Which controllers run, and which of them in a namespace of its own.
struct Layout {
    hosts: usize,
    controllers: &'static [(&'static str, bool)],
    /// Extra environment of the agents (e.g. a slow fake destroy).
    agent_env: &'static [(&'static str, &'static str)],
    /// Extra environment of the controllers started with the rig (e.g. a fault point).
    ctl_env: &'static [(&'static str, &'static str)],
}

impl Rig {
    async fn start(layout: Layout) -> Self {
        let net = Net::create();
        let pg = PrivatePg::start(&net.gateway, &net.cidr());
        let nats = Nats::start_at(&net.gateway);
        let env = control_env(&pg.url);
        let api = Cloud::start_api(&["--nats-url", &nats.url], &refs(&env)).await;
        let db = api.db().await;
        let mut ctls = Vec::new();
        let mut ctl_hosts = HashMap::new();
        for (i, (id, own_ns)) in layout.controllers.iter().enumerate() {
            let netns = own_ns.then(|| {
                let h = net.add_host();
                let ns = h.ns.clone();
                ctl_hosts.insert(id.to_string(), h);
                ns
            });
            let mut e = refs(&env);
            e.push(("STRATUS_CONTROLLER_ID", id));
            e.extend_from_slice(layout.ctl_env);
            let child = api.start_controller_in(netns.as_deref(), &nats, &e);
            ctls.push(Ctl { id: id.to_string(), netns, child: Some(child) });
            if i == 0 {
                // The first one leads: the cases know who the leader is.
                wait_log(&api, &format!("this controller is now the leader holder={id}"), T).await;
            }
        }
        let data_dir = api.data_dir.to_string_lossy().to_string();
        let mut agent_env: Vec<(&str, &str)> =
            vec![("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1"), ("STRATUS_DATA_DIR", &data_dir)];
        agent_env.extend_from_slice(layout.agent_env);
        let mut hosts = Vec::new();
        let mut agents = Vec::new();
        for i in 1..=layout.hosts {
            let h = net.add_host();
            let name = format!("compute-{i}");
            agents.push(AgentProc::start_in(
                Some(&h.ns),
                &name,
                &nats,
                api.data_dir.join("hosts").join(&name),
                &agent_env,
            ));
            hosts.push(h);
        }
        let admin = api.admin().await;
        let demo = api.demo().await;
        let names: Vec<String> = agents.iter().map(|a| a.host.clone()).collect();
        wait_hosts_up(&db, &names, T).await;
        Rig { agents, ctls, api, db, nats, pg, hosts, ctl_hosts, _net: net, admin, demo, env }
    }

    fn ctl(&mut self, id: &str) -> &mut Ctl {
        self.ctls.iter_mut().find(|c| c.id == id).expect("controller")
    }

    /// Start controller `id` again (after it was killed), in its namespace.
    fn restart_ctl(&mut self, id: &str) {
        let mut e = refs(&self.env);
        e.push(("STRATUS_CONTROLLER_ID", id));
        let netns = self.ctls.iter().find(|c| c.id == id).and_then(|c| c.netns.clone());
        let child = self.api.start_controller_in(netns.as_deref(), &self.nats, &e);
        self.ctl(id).child = Some(child);
    }

    /// Start one more controller, `id`, in this namespace.
    fn add_ctl(&mut self, id: &str) {
        let mut e = refs(&self.env);
        e.push(("STRATUS_CONTROLLER_ID", id));
        let child = self.api.start_controller_in(None, &self.nats, &e);
        self.ctls.push(Ctl { id: id.to_string(), netns: None, child: Some(child) });
    }

    /// Boot `n` servers one after the other (each ACTIVE before the next,
    /// so placement by free RAM alternates between the hosts); their ids.
    async fn boot(&self, n: usize, name: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let id = self.api.create_server(&self.demo, &format!("{name}-{i}")).await;
            self.api.wait_status(&self.demo, &id, "ACTIVE", T).await;
            ids.push(id);
        }
        ids
    }

    /// The host a server runs on (admin view).
    async fn host_of(&self, id: &str) -> String {
        let (s, v) = self.api.call(&self.admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["server"]["OS-EXT-SRV-ATTR:host"].as_str().expect("host").to_string()
    }

    /// DELETE a server (204); when it was sent.
    async fn delete(&self, id: &str) -> Instant {
        let at = Instant::now();
        let (s, v) = self.api.call(&self.demo, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        at
    }

    /// Wait until every server of `sent` is 404; the time to 404 of each,
    /// measured from its DELETE, each asserted within `bound`.
    async fn wait_gone_within(&self, sent: &[(String, Instant)], bound: Duration, case: &str) -> Vec<Duration> {
        let mut left: HashMap<String, Instant> = sent.iter().cloned().collect();
        let mut took = HashMap::new();
        let deadline = Instant::now() + bound + T;
        while !left.is_empty() {
            for (id, at) in left.clone() {
                let (s, _) = self.api.call(&self.demo, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
                if s == StatusCode::NOT_FOUND {
                    took.insert(id.clone(), at.elapsed());
                    left.remove(&id);
                }
            }
            assert!(Instant::now() < deadline, "{case}: servers never deleted: {:?}", left.keys());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took: Vec<Duration> = sent.iter().map(|(id, _)| took[id]).collect();
        for ((id, _), t) in sent.iter().zip(&took) {
            assert!(*t <= bound, "{case}: {id} 404 after {t:?}, bound {bound:?}");
        }
        took
    }

    /// The path the delete of `id` took: `true` when local, and the reasons.
    async fn delete_path(&self, id: &str) -> (bool, Vec<String>) {
        let actions = self.db.action_list(&sid(id)).await.expect("actions");
        let delete = actions.iter().find(|a| a.action == "delete").expect("delete action");
        let (_, events) = self.db.action_get(&sid(id), &delete.request_id).await.expect("events");
        for e in &events {
            assert!(e.finish_time.is_some() && e.result.is_some(), "{id}: every step finished: {e:?}");
        }
        let local = events.iter().any(|e| e.event == "controller_local_delete");
        (local, events.iter().filter_map(|e| e.details.clone()).collect())
    }

    /// Print how many of `ids` were deleted remotely and locally, and
    /// whether the hosts kept their first epoch (never lost their lease).
    async fn report_paths(&self, case: &str, ids: &[String]) {
        let mut local = 0;
        for id in ids {
            let (is_local, why) = self.delete_path(id).await;
            if is_local {
                local += 1;
                eprintln!("{case}: {id} deleted locally: {why:?}");
            }
        }
        let mut epochs = Vec::new();
        for a in &self.agents {
            epochs.push(format!("{} epoch {}", a.host, self.db.service_get_by_host(&a.host).await.expect("svc").epoch));
        }
        eprintln!("MEASURE {case}: {} deletes remote, {local} local; hosts: {}", ids.len() - local, epochs.join(", "));
    }

    /// One `instance.delete.start` and one `.end` for each server.
    async fn assert_deleted_once(&self, ids: &[String]) {
        for id in ids {
            let n: Vec<String> = self
                .db
                .notification_list_for_server(&sid(id))
                .await
                .expect("notifications")
                .into_iter()
                .map(|n| n.event_type)
                .collect();
            assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{id}: {n:?}");
            assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{id}: {n:?}");
        }
    }

    /// Nothing leaks: no server left, quota usage zero, no zombie, no
    /// storage cleanup waiting, no VM on any host, the audit clean.
    async fn assert_clean(&self, case: &str) {
        let deadline = Instant::now() + T;
        loop {
            let (_, v) = self.api.call(&self.demo, Method::GET, "/compute/v2.1/servers", None).await;
            let servers = v["servers"].as_array().map_or(0, Vec::len);
            let zombies = self.db.zombie_list(None).await.expect("zombies");
            let cleanups = self.db.cleanup_pending().await.expect("cleanups");
            let vms: Vec<String> = self.agents.iter().flat_map(|a| a.vms()).collect();
            if servers == 0 && zombies.is_empty() && cleanups.is_empty() && vms.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: left over: {servers} servers, zombies {zombies:?}, cleanups {cleanups:?}, VMs {vms:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, lim) = self.api.call(&self.demo, Method::GET, "/compute/v2.1/limits", None).await;
        assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 0, "{case}: {lim}");
        assert_eq!(lim["limits"]["absolute"]["totalCoresUsed"], 0, "{case}: {lim}");
        let (clean, report) = self.api.audit();
        assert!(clean, "{case}: audit found leaks: {report}");
    }
}

/// Wait until every host of `hosts` is up (joined, not marked down).
async fn wait_hosts_up(db: &Datastore, hosts: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut up = 0;
        for h in hosts {
            if db.service_get_by_host(h).await.is_ok_and(|s| s.is_up() && s.state == ServiceState::Up) {
                up += 1;
            }
        }
        if up == hosts.len() {
            return;
        }
        assert!(Instant::now() < deadline, "hosts {hosts:?} never all up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The controllers' log without terminal colours.
fn controllers_log(cloud: &Cloud) -> String {
    let raw = std::fs::read_to_string(cloud.data_dir.join("controllers.log")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Wait until the controllers' log has `what` `n` times; when the `n`th
/// was logged (the line's own timestamp).
async fn wait_log_n(cloud: &Cloud, what: &str, n: usize, timeout: Duration) -> DateTime<Utc> {
    let started = Instant::now();
    loop {
        let log = controllers_log(cloud);
        if let Some(line) = log.lines().filter(|l| l.contains(what)).nth(n - 1) {
            let ts = line.split_whitespace().next().unwrap_or_default();
            return ts.parse().unwrap_or_else(|e| panic!("no timestamp in {line:?}: {e}"));
        }
        assert!(started.elapsed() < timeout, "never logged {n} times: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_log(cloud: &Cloud, what: &str, timeout: Duration) -> DateTime<Utc> {
    wait_log_n(cloud, what, 1, timeout).await
}

/// `later - earlier` as a std duration (zero if negative).
fn since(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cut {
    /// Only the host's traffic to and from the NATS port is dropped.
    NatsOnly,
    /// The bridge side of the host's veth is down.
    Everything,
}

/// A host is cut off while it runs a volume-backed server and plain ones:
/// deletes sent while it still looks up and once it is down finish within
/// the bound by the local path (zombies, the volume fenced before it is
/// released), the other host's deletes stay remote, new servers go to the
/// other host; after the heal it rejoins with a new epoch, reaps its
/// zombies, and only then are the zombies cleared and its fences lifted.
async fn host_cut(cut: Cut) {
    let r = Rig::start(Layout { hosts: 2, controllers: &[("ctl-a", false)], agent_env: &[], ctl_env: &[] }).await;
    let case = format!("host cut ({cut:?})");
    let image = r.api.cirros(&r.demo).await;
    let (s, v) = r.api.post_bfv_server(&r.demo, "bfv", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let bfv = v["server"]["id"].as_str().expect("id").to_string();
    r.api.wait_status(&r.demo, &bfv, "ACTIVE", T).await;
    let plain = r.boot(5, "plain").await;
    let victim_name = r.host_of(&bfv).await;
    let v_idx = r.agents.iter().position(|a| a.host == victim_name).expect("victim");
    let s_idx = 1 - v_idx;
    let survivor_name = r.agents[s_idx].host.clone();
    let mut on_victim = Vec::new();
    let mut on_survivor = Vec::new();
    for id in &plain {
        if r.host_of(id).await == victim_name { on_victim.push(id.clone()) } else { on_survivor.push(id.clone()) }
    }
    assert!(on_victim.len() >= 2 && !on_survivor.is_empty(), "placement: {on_victim:?} {on_survivor:?}");
    let epoch_before = r.db.service_get_by_host(&victim_name).await.expect("svc").epoch;

    // Cut.
    let (t_cut, cut_at) = (Instant::now(), Utc::now());
    match cut {
        Cut::NatsOnly => r.hosts[v_idx].cut_port(r.nats.port()),
        Cut::Everything => r.hosts[v_idx].link_down(),
    }
    // Deletes sent at once, while the host still looks up: the terminate is
    // never acknowledged, so the controller deletes locally.
    let early = vec![(bfv.clone(), r.delete(&bfv).await), (on_victim[0].clone(), r.delete(&on_victim[0]).await)];
    let took = r.wait_gone_within(&early, DELETE_BOUND, &case).await;
    eprintln!(
        "MEASURE {case}: time to 404 of deletes sent while the host still looked up: {} ms (volume-backed), {} ms",
        took[0].as_millis(),
        took[1].as_millis()
    );
    // The host is fenced out: its lease lapses and the monitor marks it down.
    let deadline = Instant::now() + T;
    while r.db.service_get_by_host(&victim_name).await.expect("svc").state != ServiceState::Down {
        assert!(Instant::now() < deadline, "{case}: the host was never marked down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_fence = t_cut.elapsed();
    eprintln!("MEASURE {case}: time to fence (host marked down) {} ms after the cut", to_fence.as_millis());
    assert!(to_fence <= LEASE_TTL + Duration::from_secs(2), "{case}: marked down after {to_fence:?}");
    // A delete once it is down: local at once.
    let late = vec![(on_victim[1].clone(), r.delete(&on_victim[1]).await)];
    let took = r.wait_gone_within(&late, DELETE_BOUND, &case).await;
    eprintln!("MEASURE {case}: time to 404 with the host down: {} ms", took[0].as_millis());
    // The other host is untouched: remote delete.
    let other = vec![(on_survivor[0].clone(), r.delete(&on_survivor[0]).await)];
    let took = r.wait_gone_within(&other, DELETE_BOUND, &case).await;
    eprintln!("MEASURE {case}: time to 404 on the other host: {} ms", took[0].as_millis());
    for id in [&bfv, &on_victim[0], &on_victim[1]] {
        let (local, why) = r.delete_path(id).await;
        assert!(local, "{case}: {id} deleted locally: {why:?}");
    }
    let (local, why) = r.delete_path(&on_survivor[0]).await;
    assert!(!local, "{case}: the other host's delete stays remote: {why:?}");
    let (_, why) = r.delete_path(&bfv).await;
    assert!(why.iter().any(|w| w.contains("fenced client")), "{case}: the root volume's client was fenced: {why:?}");
    let action = r.db.action_list(&sid(&bfv)).await.expect("actions").into_iter().find(|a| a.action == "delete");
    let (_, events) = r.db.action_get(&sid(&bfv), &action.expect("delete").request_id).await.expect("events");
    let fenced = events.iter().find(|e| e.event == "controller_fence_storage").and_then(|e| e.finish_time);
    eprintln!(
        "MEASURE {case}: time to fence the volume-backed server's storage client: {} ms after the cut",
        since(cut_at, fenced.expect("fence event finished")).as_millis()
    );

    // No split brain while cut off: its VMs still run there (zombies hold
    // their capacity), its fence waits, and new work goes elsewhere.
    let zombies: HashSet<String> =
        r.db.zombie_list(None).await.expect("zombies").into_iter().map(|z| z.server_id.to_string()).collect();
    let expected: HashSet<String> = [&bfv, &on_victim[0], &on_victim[1]].into_iter().cloned().collect();
    assert_eq!(zombies, expected, "{case}: zombies of the cut host");
    let vms: HashSet<String> = r.agents[v_idx].vms().into_iter().collect();
    assert!(expected.is_subset(&vms), "{case}: the cut host's VMs still run: {vms:?}");
    let unfences = |c: &[stratus_db::CleanupRow]| c.iter().filter(|c| c.kind == CleanupKind::Unfence).count();
    assert!(unfences(&r.db.cleanup_pending().await.expect("q")) >= 1, "{case}: the fence is kept");
    let fresh = r.boot(1, "during-cut").await;
    assert_eq!(r.host_of(&fresh[0]).await, survivor_name, "{case}: no new work for the cut host");

    // The partition lasts.
    tokio::time::sleep(PARTITION.saturating_sub(t_cut.elapsed())).await;
    // Heal; the host must rejoin (new epoch) and reap before anything of it is released.
    let t_heal = Instant::now();
    match cut {
        Cut::NatsOnly => r.hosts[v_idx].heal_ports(),
        Cut::Everything => r.hosts[v_idx].link_up(),
    }
    let (mut rejoined, mut reaped) = (None, None);
    let deadline = Instant::now() + T;
    loop {
        // Read in this order: a lifted fence implies a cleared zombie, and a
        // cleared zombie implies a VM gone (none of them comes back).
        let pending = unfences(&r.db.cleanup_pending().await.expect("q"));
        let zombies: HashSet<String> =
            r.db.zombie_list(None).await.expect("zombies").into_iter().map(|z| z.server_id.to_string()).collect();
        let vms: HashSet<String> = r.agents[v_idx].vms().into_iter().collect();
        let svc = r.db.service_get_by_host(&victim_name).await.expect("svc");
        if pending == 0 {
            assert!(!zombies.contains(&bfv), "{case}: fence lifted while the zombie may still run");
        }
        for id in &expected {
            if !zombies.contains(id) {
                assert!(!vms.contains(id), "{case}: zombie {id} cleared while its VM is still on the host");
            }
        }
        if svc.state == ServiceState::Up {
            assert!(svc.epoch > epoch_before, "{case}: host up again on its old epoch {}", svc.epoch);
            rejoined.get_or_insert(t_heal.elapsed());
        }
        if zombies.is_empty() && pending == 0 && vms.is_disjoint(&expected) {
            reaped.get_or_insert(t_heal.elapsed());
        }
        if rejoined.is_some() && reaped.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{case}: not recovered: zombies {zombies:?} fences {pending} vms {vms:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "MEASURE {case}: time to recover after the heal of a {} s partition: rejoined with a new epoch in {} ms, zombies reaped and fences lifted in {} ms",
        PARTITION.as_secs(),
        rejoined.unwrap_or_default().as_millis(),
        reaped.unwrap_or_default().as_millis()
    );
    let rejoined = rejoined.unwrap_or_default();
    assert!(rejoined <= REJOIN_BOUND, "{case}: rejoined {rejoined:?} after a heal of a {PARTITION:?} partition");
    // It takes work again: it has the most free RAM now. Its service row
    // shows it up on its new epoch a moment before the agent holds the
    // join's answer; a build sent in that moment is refused ("rejoining
    // before taking work") or unanswered, and rescheduled to the other host, as Nova
    // reschedules a build its host refuses (CI saw `attempt=2` on the
    // other host once). So boot until one lands on it, within
    // TAKES_WORK_BOUND of the rejoin.
    let took_by = Instant::now() + TAKES_WORK_BOUND;
    let mut back = Vec::new();
    loop {
        let id = r.boot(1, &format!("after-heal-{}", back.len())).await.remove(0);
        let placed = r.host_of(&id).await;
        back.push(id.clone());
        if placed == victim_name {
            eprintln!("MEASURE {case}: builds until the healed host took one: {}", back.len());
            break;
        }
        if Instant::now() >= took_by {
            // Why: the last build's scheduling events (each pick and each refusal).
            let id = sid(&id);
            let mut why = Vec::new();
            for a in r.db.action_list(&id).await.expect("actions") {
                let (_, events) = r.db.action_get(&id, &a.request_id).await.expect("events");
                why.extend(events.into_iter().map(|e| (e.event, e.host, e.details)));
            }
            let services: Vec<_> =
                r.db.service_list().await.expect("services").into_iter().map(|s| (s.host, s.state, s.epoch)).collect();
            panic!(
                "{case}: the healed host {victim_name} took no new work within {TAKES_WORK_BOUND:?} ({} builds, the last placed on {placed}): events {why:?}, services {services:?}",
                back.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut rest: Vec<String> = on_victim[2..].to_vec();
    rest.extend(on_survivor[1..].iter().cloned());
    rest.extend(fresh);
    rest.extend(back);
    let mut sent = Vec::new();
    for id in &rest {
        sent.push((id.clone(), r.delete(id).await));
    }
    r.wait_gone_within(&sent, DELETE_BOUND, &case).await;
    let mut all = vec![bfv, on_victim[0].clone(), on_victim[1].clone(), on_survivor[0].clone()];
    all.extend(rest);
    r.assert_deleted_once(&all).await;
    r.assert_clean(&case).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_cut_from_nats_only_is_fenced_and_rejoins_after_the_heal() {
    host_cut(Cut::NatsOnly).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_cut_from_everything_is_fenced_and_rejoins_after_the_heal() {
    host_cut(Cut::Everything).await;
}

/// The leader controller runs in a namespace and loses PostgreSQL (its
/// packets to the database are dropped): it stops leading before its lease
/// can run out, the other controller takes the lead and every delete, and
/// the hosts stay up (their renewals are recorded by the controller that
/// reaches the database). After the heal it serves again.
#[tokio::test(flavor = "multi_thread")]
async fn a_controller_cut_from_postgres_steps_down_and_the_other_finishes_every_delete() {
    let mut r = Rig::start(Layout {
        hosts: 2,
        controllers: &[("ctl-a", true), ("ctl-b", false)],
        agent_env: &[],
        ctl_env: &[],
    })
    .await;
    let case = "controller cut from PostgreSQL";
    let ids = r.boot(4, "s").await;
    let epochs: Vec<i64> = {
        let mut e = Vec::new();
        for a in &r.agents {
            e.push(r.db.service_get_by_host(&a.host).await.expect("svc").epoch);
        }
        e
    };
    let (t_cut, cut_at) = (Instant::now(), Utc::now());
    r.ctl_hosts["ctl-a"].cut_port(r.pg.port);
    let sent = vec![(ids[0].clone(), r.delete(&ids[0]).await), (ids[1].clone(), r.delete(&ids[1]).await)];
    // A delete ctl-a claimed just before the cut is adopted once its claim lapses.
    let took = r.wait_gone_within(&sent, CLAIM_TTL + DELETE_BOUND, case).await;
    eprintln!(
        "MEASURE {case}: time to 404 of deletes sent at the cut: {} ms, {} ms",
        took[0].as_millis(),
        took[1].as_millis()
    );
    let stepped_down = since(cut_at, wait_log(&r.api, "stepping down holder=ctl-a", T).await);
    let b_leads = since(cut_at, wait_log(&r.api, "this controller is now the leader holder=ctl-b", T).await);
    eprintln!(
        "MEASURE {case}: time to fence: the cut-off leader stepped down {} ms after the cut (its lease: {} ms), ctl-b leads {} ms after the cut",
        stepped_down.as_millis(),
        LEADER_TTL.as_millis(),
        b_leads.as_millis()
    );
    assert!(stepped_down < LEADER_TTL, "{case}: the cut-off leader still led after its lease could have expired");
    // Deletes after the lead moved: remote, on hosts that never went down.
    let sent = vec![(ids[2].clone(), r.delete(&ids[2]).await)];
    let took = r.wait_gone_within(&sent, DELETE_BOUND, case).await;
    eprintln!("MEASURE {case}: time to 404 after the lead moved: {} ms", took[0].as_millis());
    for id in &ids[..3] {
        let (local, why) = r.delete_path(id).await;
        assert!(!local, "{case}: {id}: the hosts are up, the delete stays remote: {why:?}");
    }
    assert!(r.db.zombie_list(None).await.expect("zombies").is_empty(), "{case}: no zombie");
    // The hosts stay up for as long as the cut lasts (three of their leases):
    // ctl-a takes no agent traffic it cannot record.
    while t_cut.elapsed() < LEASE_TTL * 3 {
        for (a, e) in r.agents.iter().zip(&epochs) {
            let svc = r.db.service_get_by_host(&a.host).await.expect("svc");
            assert!(
                svc.is_up() && svc.state == ServiceState::Up && svc.epoch == *e,
                "{case}: {} lost its lease during the controller's partition: {svc:?}",
                a.host
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Heal: ctl-a reaches the database again and takes work.
    let heal_at = Utc::now();
    r.ctl_hosts["ctl-a"].heal_ports();
    let back = since(heal_at, wait_log(&r.api, "database reachable again holder=ctl-a", T).await);
    eprintln!("MEASURE {case}: time to recover: ctl-a reaches the database {} ms after the heal", back.as_millis());
    // ctl-b dies: ctl-a (healed) takes the lead and the last delete.
    r.ctl("ctl-b").kill9();
    let kill_at = Utc::now();
    let leads = since(kill_at, wait_log_n(&r.api, "this controller is now the leader holder=ctl-a", 2, T).await);
    eprintln!("MEASURE {case}: the healed ctl-a leads again {} ms after ctl-b died", leads.as_millis());
    let sent = vec![(ids[3].clone(), r.delete(&ids[3]).await)];
    r.wait_gone_within(&sent, CLAIM_TTL + DELETE_BOUND, case).await;
    r.assert_deleted_once(&ids).await;
    r.assert_clean(case).await;
}

/// The leader controller is SIGKILLed while it drives deletes (terminates
/// take 1.5 s on the hosts): the other controller takes the lead and adopts
/// them once their claims lapse; each finishes once.
#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_controller_mid_delete() {
    let mut r = Rig::start(Layout {
        hosts: 2,
        controllers: &[("ctl-a", false), ("ctl-b", false)],
        agent_env: &[("STRATUS_FAKE_DESTROY_DELAY", "1.5")],
        ctl_env: &[],
    })
    .await;
    let case = "leader killed mid-delete";
    let ids = r.boot(6, "s").await;
    // Both controllers race for every delete; ctl-b, stopped while they
    // are sent, leaves them to ctl-a (CI once saw ctl-b take all six).
    let b_pid = r.ctl("ctl-b").child.as_ref().expect("ctl-b runs").id();
    signal(b_pid, "STOP");
    let mut sent = Vec::new();
    for id in &ids {
        sent.push((id.clone(), r.delete(id).await));
    }
    // Kill it once it holds at least one of them.
    let deadline = Instant::now() + T;
    while r.db.op_list_held_by("ctl-a").await.expect("held").is_empty() {
        if Instant::now() >= deadline {
            signal(b_pid, "CONT");
            panic!("{case}: ctl-a never claimed a delete");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(b_pid, "CONT");
    let held = r.db.op_list_held_by("ctl-a").await.expect("held").len();
    r.ctl("ctl-a").kill9();
    let (t_kill, kill_at) = (Instant::now(), Utc::now());
    let took = r.wait_gone_within(&sent, CLAIM_TTL + DELETE_BOUND, case).await;
    let done = t_kill.elapsed();
    let to_lead = since(kill_at, wait_log(&r.api, "this controller is now the leader holder=ctl-b", T).await);
    eprintln!(
        "MEASURE {case}: ctl-a held {held} deletes when killed; slowest time to 404 {} ms (bound: claim TTL + delete bound = {} ms); all done {} ms after the kill",
        took.iter().max().copied().unwrap_or_default().as_millis(),
        (CLAIM_TTL + DELETE_BOUND).as_millis(),
        done.as_millis()
    );
    eprintln!("MEASURE {case}: time to fence: ctl-b leads {} ms after the kill", to_lead.as_millis());
    assert!(to_lead <= LEADER_TTL + Duration::from_secs(1), "{case}: the lead moved after {to_lead:?}");
    assert!(controllers_log(&r.api).contains("adopting operation"), "{case}: ctl-b adopted ctl-a's deletes");
    for id in &ids {
        let (local, why) = r.delete_path(id).await;
        assert!(!local, "{case}: {id}: the hosts are up, the delete stays remote: {why:?}");
    }
    r.assert_deleted_once(&ids).await;
    // Restarted with its id, it serves again.
    r.restart_ctl("ctl-a");
    let again = r.boot(1, "after").await;
    let sent = vec![(again[0].clone(), r.delete(&again[0]).await)];
    r.wait_gone_within(&sent, DELETE_BOUND, case).await;
    r.assert_clean(case).await;
}

/// PostgreSQL is stopped (`-m immediate`) while deletes are in flight and
/// started again: API calls fail cleanly meanwhile (nothing half-written),
/// every delete finishes once after it is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_mid_delete() {
    let r = Rig::start(Layout {
        hosts: 2,
        controllers: &[("ctl-a", false), ("ctl-b", false)],
        agent_env: &[("STRATUS_FAKE_DESTROY_DELAY", "1")],
        ctl_env: &[],
    })
    .await;
    let case = "PostgreSQL restart";
    let ids = r.boot(4, "s").await;
    let mut sent = vec![(ids[0].clone(), r.delete(&ids[0]).await), (ids[1].clone(), r.delete(&ids[1]).await)];
    let t_stop = Instant::now();
    r.pg.stop_immediate();
    // A DELETE while it is down: it waits for a connection, and is either
    // served once the database is back or answered with a fault (never
    // half-written).
    let during = {
        let (url, tok, id) = (r.api.url.clone(), r.demo.clone(), ids[2].clone());
        tokio::spawn(async move {
            let asked = Instant::now();
            let resp = reqwest::Client::new()
                .delete(format!("{url}/compute/v2.1/servers/{id}"))
                .header("X-Auth-Token", tok)
                .send()
                .await
                .expect("request");
            (asked, resp.status(), resp.text().await.unwrap_or_default(), asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.pg.start_again();
    let t_start = Instant::now();
    let outage = t_start - t_stop;
    let (asked, status, body, waited) = during.await.expect("delete during the outage");
    eprintln!("MEASURE {case}: DELETE sent while the database was down: {status} after {} ms", waited.as_millis());
    match status {
        StatusCode::NO_CONTENT => sent.push((ids[2].clone(), asked)),
        s if s.is_server_error() => {
            assert!(body.contains("computeFault"), "{case}: an OpenStack fault: {body}");
            sent.push((ids[2].clone(), r.delete(&ids[2]).await));
        }
        s => panic!("{case}: DELETE during the outage: {s} {body}"),
    }
    // The API answers again.
    let deadline = Instant::now() + T;
    loop {
        let (s, _) = r.api.call(&r.demo, Method::GET, "/compute/v2.1/servers", None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "{case}: the API never answered again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "MEASURE {case}: database down {} ms; time to recover: the API answers {} ms after the start",
        outage.as_millis(),
        t_start.elapsed().as_millis()
    );
    sent.push((ids[3].clone(), r.delete(&ids[3]).await));
    let took = r.wait_gone_within(&sent, outage + DELETE_BOUND, case).await;
    eprintln!(
        "MEASURE {case}: time to 404 of the deletes in flight at the stop: {} ms, {} ms (bound: outage + delete bound)",
        took[0].as_millis(),
        took[1].as_millis()
    );
    r.report_paths(case, &ids).await;
    r.assert_deleted_once(&ids).await;
    r.assert_clean(case).await;
}

/// nats-server is killed while deletes are in flight and started again on
/// the same port: every process reconnects, every delete finishes once, and
/// new servers boot.
#[tokio::test(flavor = "multi_thread")]
async fn a_nats_restart_mid_delete() {
    let mut r = Rig::start(Layout {
        hosts: 2,
        controllers: &[("ctl-a", false), ("ctl-b", false)],
        agent_env: &[("STRATUS_FAKE_DESTROY_DELAY", "1")],
        ctl_env: &[],
    })
    .await;
    let case = "NATS restart";
    let ids = r.boot(4, "s").await;
    let mut sent = vec![(ids[0].clone(), r.delete(&ids[0]).await), (ids[1].clone(), r.delete(&ids[1]).await)];
    let t_kill = Instant::now();
    r.nats.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.nats.start_again();
    let t_start = Instant::now();
    let outage = t_start - t_kill;
    sent.push((ids[2].clone(), r.delete(&ids[2]).await));
    sent.push((ids[3].clone(), r.delete(&ids[3]).await));
    let took = r.wait_gone_within(&sent, outage + DELETE_BOUND, case).await;
    eprintln!(
        "MEASURE {case}: NATS down {} ms; time to 404: in flight at the kill {} ms, {} ms; sent after the start {} ms, {} ms",
        outage.as_millis(),
        took[0].as_millis(),
        took[1].as_millis(),
        took[2].as_millis(),
        took[3].as_millis()
    );
    let again = r.boot(1, "after").await;
    eprintln!(
        "MEASURE {case}: time to recover: a new server ACTIVE {} ms after the start",
        t_start.elapsed().as_millis()
    );
    r.report_paths(case, &ids).await;
    let sent = vec![(again[0].clone(), r.delete(&again[0]).await)];
    r.wait_gone_within(&sent, DELETE_BOUND, case).await;
    let mut all = ids.clone();
    all.extend(again);
    r.assert_deleted_once(&all).await;
    r.assert_clean(case).await;
}

/// The state letter of process `pid` (`T` when stopped), from `/proc`.
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).unwrap_or('?')
}

/// Send `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "kill -{signal} {pid}");
}

/// Issue 13, stale controller: the controller driving a local delete stops
/// (a real SIGSTOP, at the fence of the root volume's storage client) past
/// its claim; another controller adopts the delete and finishes it, the host
/// comes back, reaps its VM and has its fence lifted. Continued after all
/// that, the stalled controller must have no effect: its claim's token is
/// gone, so it neither fences the client again nor queues a fence lift that
/// no rejoin would ever satisfy (before the fencing tokens it did both, and
/// the lift stayed pending for ever). Nova's conductors hold no claims on
/// their work; its counterpart is a second `_delete` racing the first, which
/// Nova settles only by the instance's `task_state` compare-and-swap.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_controller_continued_after_its_delete_was_adopted_has_no_effect() {
    let mut r = Rig::start(Layout {
        hosts: 1,
        controllers: &[("ctl-a", false)],
        agent_env: &[],
        ctl_env: &[("STRATUS_FAULTS", "stop@fence:client")],
    })
    .await;
    let case = "stalled controller";
    let image = r.api.cirros(&r.demo).await;
    let (s, v) = r.api.post_bfv_server(&r.demo, "bfv", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let bfv = v["server"]["id"].as_str().expect("id").to_string();
    r.api.wait_status(&r.demo, &bfv, "ACTIVE", T).await;
    let host = r.agents[0].host.clone();
    let epoch_before = r.db.service_get_by_host(&host).await.expect("svc").epoch;

    // The host is cut off; the delete goes local and ctl-a stops at the fence.
    r.hosts[0].link_down();
    let sent = vec![(bfv.clone(), r.delete(&bfv).await)];
    let a_pid = r.ctl("ctl-a").child.as_ref().expect("ctl-a runs").id();
    let deadline = Instant::now() + T;
    while proc_state(a_pid) != 'T' {
        assert!(Instant::now() < deadline, "{case}: ctl-a never reached the fence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stalled = Instant::now();
    // Another controller takes the lead, adopts the delete once ctl-a's claim lapsed, and finishes it.
    r.add_ctl("ctl-b");
    let took = r.wait_gone_within(&sent, T, case).await;
    assert_eq!(proc_state(a_pid), 'T', "{case}: ctl-a stayed stopped while ctl-b finished the delete");
    eprintln!(
        "MEASURE {case}: adopted and finished by ctl-b {} ms after ctl-a stalled ({} ms after the DELETE; claim TTL {} ms)",
        stalled.elapsed().as_millis(),
        took[0].as_millis(),
        CLAIM_TTL.as_millis()
    );
    let (local, why) = r.delete_path(&bfv).await;
    assert!(local && why.iter().any(|w| w.contains("fenced client")), "{case}: fenced, then released: {why:?}");

    // The host comes back: it rejoins, reaps the VM, and its fence is lifted.
    r.hosts[0].link_up();
    let unfences = |c: &[stratus_db::CleanupRow]| c.iter().filter(|c| c.kind == CleanupKind::Unfence).count();
    let deadline = Instant::now() + T;
    loop {
        let svc = r.db.service_get_by_host(&host).await.expect("svc");
        let zombies = r.db.zombie_list(None).await.expect("zombies");
        let pending = unfences(&r.db.cleanup_pending().await.expect("q"));
        if svc.state == ServiceState::Up && svc.epoch > epoch_before && zombies.is_empty() && pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{case}: not recovered: {svc:?} zombies {zombies:?} fences {pending}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lifted = controllers_log(&r.api).matches("fence lifted").count();
    assert!(lifted >= 1, "{case}: ctl-b lifted the fence");
    let fenced = controllers_log(&r.api).matches("storage client fenced").count();
    assert!(fenced >= 1, "{case}: ctl-b fenced the client");

    // Continue ctl-a: it finds its claim gone at its next write and stops.
    signal(a_pid, "CONT");
    wait_log(&r.api, "claim lost to another runner", T).await;
    // Give anything it might still do time to happen (a lease, and a reconciler pass).
    tokio::time::sleep(LEASE_TTL).await;
    let pending = r.db.cleanup_pending().await.expect("q");
    assert!(
        pending.is_empty(),
        "{case}: the stalled controller queued storage work after it was continued: {pending:?}"
    );
    assert_eq!(
        controllers_log(&r.api).matches("storage client fenced").count(),
        fenced,
        "{case}: the stalled controller fenced again after it was continued"
    );
    r.assert_deleted_once(std::slice::from_ref(&bfv)).await;
    r.assert_clean(case).await;
}
