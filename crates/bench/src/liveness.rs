//! `--workload liveness`: many simulated hosts against one controller.
//!
//! Starts a nats-server on a free port and a real `stratus up` on it with no
//! fake hosts of its own, then runs `--hosts` lightweight simulated agents in
//! this process (no VMs): each joins, renews its lease every
//! `lease_renew_interval` (as the controller's join reply says) and answers
//! the commands sent to it (spawn, terminate: acknowledged and reported done
//! at once, as the fake driver with no delay would). They share a few NATS
//! connections (`--sim-connections`) but speak the agents' protocol message
//! for message, one renewal request per host per interval.
//!
//! Phases:
//! 1. `join`: a probe host joins first to learn the renewal interval (it
//!    never renews, and is marked down one lease later, before anything is
//!    measured); then every host joins (`--join-concurrency` requests in
//!    flight) and renews from its join on, in a timer wheel per connection.
//! 2. `steady`: `--steady-secs` of renewals; the controller process's CPU
//!    (utime+stime from /proc), its SQLite commits (`stratus_db_commits` on
//!    /metrics, before and after) and the renewal round trips.
//! 3. `failure`: `--fail-percent` of the hosts stop renewing and stop
//!    answering at the same instant; the checker reads the database (read
//!    only) until each is marked down and records how long after its
//!    failure that happened (`updated_at` of the transition, written by the
//!    controller), and counts hosts marked down that did not fail (false
//!    convictions) until `lease_ttl + 5 s` after the failure.
//! 4. `deletes` (`--servers`, 0 skips it): servers booted through the API
//!    onto the simulated hosts, then deleted all at once, as the `delete`
//!    workload does, while the renewals go on.

use crate::api::Api;
use crate::stats;
use crate::workloads::{self, ListKind, Probe};
use anyhow::Context;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stratus_bus::{Bus, NatsBus, reply};
use stratus_types::agent::*;
use tokio::sync::Semaphore;

/// What the liveness workload is asked to do.
pub struct LivenessSpec<'a> {
    pub bin: &'a std::path::Path,
    pub env: Vec<(String, String)>,
    pub hosts: usize,
    pub connections: usize,
    pub join_concurrency: usize,
    pub steady: Duration,
    pub fail_percent: f64,
    pub servers: usize,
    pub concurrency: usize,
    pub boot_concurrency: usize,
    pub poll: Duration,
    pub timeout: Duration,
    pub startup_timeout: Duration,
    pub demo_pw: &'a str,
    pub log_file: Option<&'a std::path::Path>,
}

/// One simulated host.
struct SimHost {
    name: String,
    epoch: AtomicU64,
    /// Stopped: no renewals, commands dropped unanswered.
    failed: AtomicBool,
}

/// Counters of the renewal loops.
#[derive(Default)]
struct Counts {
    renewed: AtomicU64,
    must_rejoin: AtomicU64,
    failed: AtomicU64,
    rejoined: AtomicU64,
    commands: AtomicU64,
    /// Renewal round trips, microseconds, while `sampling`.
    samples: std::sync::Mutex<Vec<u32>>,
    sampling: AtomicBool,
}

fn host_name(i: usize) -> String {
    format!("sim-{i:06}")
}

async fn join(bus: &NatsBus, host: &str) -> anyhow::Result<JoinReply> {
    let req = JoinRequest { host: host.to_string(), vcpus: 64, memory_mb: 262_144, disk_gb: 4_000 };
    let r = bus.request(SUBJECT_JOIN, Bytes::from(serde_json::to_vec(&req)?), Duration::from_secs(10)).await?;
    Ok(serde_json::from_slice(&r)?)
}

/// The width of a renewal wheel's slot.
const SLOT: Duration = Duration::from_millis(10);

/// The renewals of the hosts on one connection: a timer wheel of one
/// renewal interval, each host in the slot of the moment it joined, and one
/// wildcard subscription for the replies (`_SIM.<conn>.<host index>`). A
/// request future, inbox and timer per renewal cost the simulator more CPU
/// than the controller spends answering it; this keeps the simulator light
/// enough to share two cores with the controller and nats-server.
struct Wheel {
    conn: usize,
    bus: Arc<NatsBus>,
    slots: std::sync::Mutex<Vec<Vec<usize>>>,
    started: Instant,
    every: Duration,
}

impl Wheel {
    fn slot_of(&self, at: Instant) -> usize {
        let n = (self.every.as_millis() / SLOT.as_millis()).max(1) as usize;
        ((at - self.started).as_millis() / SLOT.as_millis()) as usize % n
    }

    /// Renew host `idx` from now on, every interval.
    fn add(&self, idx: usize) {
        let k = self.slot_of(Instant::now());
        if let Ok(mut s) = self.slots.lock() {
            s[k].push(idx);
        }
    }
}

/// Drive `wheel`: send each slot's renewals when its time comes; count the
/// replies (and as failed a renewal still unanswered at the next one).
async fn drive_wheel(wheel: Arc<Wheel>, hosts: Arc<Vec<Arc<SimHost>>>, counts: Arc<Counts>) -> anyhow::Result<()> {
    // Microseconds since `started` at which each host's pending renewal was
    // sent (0: none pending).
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..hosts.len()).map(|_| AtomicU64::new(0)).collect());
    let mut replies = wheel.bus.subscribe(&format!("_SIM.{}.*", wheel.conn)).await?;
    let (w2, h2, c2, s2) = (wheel.clone(), hosts.clone(), counts.clone(), sent.clone());
    tokio::spawn(async move {
        while let Some(m) = replies.next().await {
            let Some(idx) = m.subject.rsplit('.').next().and_then(|i| i.parse::<usize>().ok()) else { continue };
            let Some(h) = h2.get(idx) else { continue };
            let at = s2[idx].swap(0, Ordering::Relaxed);
            match serde_json::from_slice::<LeaseReply>(&m.payload) {
                Ok(LeaseReply::Renewed) => {
                    c2.renewed.fetch_add(1, Ordering::Relaxed);
                    if at > 0
                        && c2.sampling.load(Ordering::Relaxed)
                        && let Ok(mut v) = c2.samples.lock()
                    {
                        let now = w2.started.elapsed().as_micros() as u64;
                        v.push(u32::try_from(now.saturating_sub(at)).unwrap_or(u32::MAX));
                    }
                }
                Ok(LeaseReply::MustRejoin) => {
                    c2.must_rejoin.fetch_add(1, Ordering::Relaxed);
                    if h.failed.load(Ordering::Relaxed) {
                        continue;
                    }
                    let (bus, h, c3) = (w2.bus.clone(), h.clone(), c2.clone());
                    tokio::spawn(async move {
                        if let Ok(j) = join(&bus, &h.name).await {
                            h.epoch.store(j.epoch as u64, Ordering::Relaxed);
                            c3.rejoined.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                Err(_) => {}
            }
        }
    });
    let n = wheel.slots.lock().map(|s| s.len()).unwrap_or(1);
    let mut next_slot = wheel.slot_of(Instant::now());
    let mut tick = tokio::time::interval(SLOT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now_slot = wheel.slot_of(Instant::now());
        while next_slot != now_slot {
            let due: Vec<usize> = wheel.slots.lock().map(|s| s[next_slot].clone()).unwrap_or_default();
            next_slot = (next_slot + 1) % n;
            for idx in due {
                let h = &hosts[idx];
                if h.failed.load(Ordering::Relaxed) {
                    continue;
                }
                let now = wheel.started.elapsed().as_micros().max(1) as u64;
                if sent[idx].swap(now, Ordering::Relaxed) != 0 {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
                let req = LeaseRequest { host: h.name.clone(), epoch: h.epoch.load(Ordering::Relaxed) as i64 };
                let Ok(body) = serde_json::to_vec(&req) else { continue };
                let reply_to = format!("_SIM.{}.{idx}", wheel.conn);
                let _ = wheel.bus.publish_with_reply(SUBJECT_LEASE, &reply_to, Bytes::from(body)).await;
            }
        }
    }
}

/// Answer the commands of every simulated host reachable over `bus`.
async fn serve_commands(
    bus: Arc<NatsBus>,
    hosts: Arc<std::collections::HashMap<String, Arc<SimHost>>>,
    counts: Arc<Counts>,
) -> anyhow::Result<()> {
    let mut sub = bus.queue_subscribe("stratus.agent.*.cmd", "stratus-sim").await?;
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let Some(host) = m.subject.strip_prefix("stratus.agent.").and_then(|s| s.strip_suffix(".cmd")) else {
                continue;
            };
            let Some(h) = hosts.get(host) else { continue };
            if h.failed.load(Ordering::Relaxed) {
                continue; // a dead host answers nothing
            }
            let Ok(cmd) = serde_json::from_slice::<Command>(&m.payload) else { continue };
            let epoch = h.epoch.load(Ordering::Relaxed) as i64;
            if cmd.epoch != epoch {
                let ack = Ack { accepted: false, reason: Some(format!("stale epoch {} (now {epoch})", cmd.epoch)) };
                let _ = reply(bus.as_ref(), &m, Bytes::from(serde_json::to_vec(&ack).unwrap_or_default())).await;
                continue;
            }
            counts.commands.fetch_add(1, Ordering::Relaxed);
            let ack = Ack { accepted: true, reason: None };
            let _ = reply(bus.as_ref(), &m, Bytes::from(serde_json::to_vec(&ack).unwrap_or_default())).await;
            let power_state = match cmd.kind {
                CommandKind::Terminate | CommandKind::PowerOff => 4,
                _ => 1,
            };
            let result = CommandResult {
                op_id: cmd.op_id,
                server_id: cmd.server_id,
                host: host.to_string(),
                command: cmd.kind.name().to_string(),
                ok: true,
                error: None,
                power_state,
                elapsed_ms: 0,
                client_id: None,
            };
            let _ = bus.publish(SUBJECT_RESULT, Bytes::from(serde_json::to_vec(&result).unwrap_or_default())).await;
        }
    });
    Ok(())
}

/// `stratus_db_commits` from the cloud's /metrics.
async fn db_commits(url: &str) -> anyhow::Result<f64> {
    let mut last = None;
    for _ in 0..5 {
        let got = async {
            let text = reqwest::get(format!("{url}/metrics")).await?.error_for_status()?.text().await?;
            text.lines()
                .find_map(|l| l.strip_prefix("stratus_db_commits ").and_then(|v| v.trim().parse::<f64>().ok()))
                .context("no stratus_db_commits on /metrics")
        }
        .await;
        match got {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no answer from /metrics")))
}

fn percentiles_us(mut v: Vec<u32>) -> Value {
    v.sort_unstable();
    let at = |p: f64| -> Value {
        if v.is_empty() {
            return Value::Null;
        }
        let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
        json!(f64::from(v[i.clamp(1, v.len()) - 1]) / 1000.0)
    };
    json!({"count": v.len(), "p50": at(50.0), "p99": at(99.0), "max": at(100.0)})
}

/// Run the workload; returns its report.
pub async fn run(spec: &LivenessSpec<'_>) -> anyhow::Result<Value> {
    let tck = stats::clk_tck();
    let data_dir = std::env::temp_dir().join(format!("stratus-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir)?;
    let nats = crate::qemu::Nats::start(&data_dir)?;
    let mut env = spec.env.clone();
    env.retain(|(k, _)| k != "STRATUS_FAKE_HOSTS");
    env.push(("STRATUS_FAKE_HOSTS".into(), "0".into()));
    env.push(("STRATUS_NATS_URL".into(), nats.url.clone()));
    let mut cloud = crate::cloud::Cloud::start(&crate::cloud::CloudSpec {
        bin: spec.bin,
        env,
        log_file: spec.log_file,
        startup_timeout: spec.startup_timeout,
        data_dir: Some(data_dir.clone()),
    })?;
    eprintln!("stratus-bench: stratus (pid {}) on {}, NATS {}", cloud.pid, cloud.url, nats.url);
    let pid = cloud.pid;
    let r = phases(spec, &cloud, &nats.url, tck).await;
    match r {
        Ok(mut v) => {
            v["peak_rss_mib"] = json!(stats::status_kib(&pid.to_string(), "VmHWM")? as f64 / 1024.0);
            Ok(v)
        }
        Err(e) => {
            let why = match cloud.check_alive() {
                Err(dead) => format!("{dead}"),
                Ok(()) => format!("stratus still running; last lines of its log:\n{}", cloud.log_tail(20)),
            };
            Err(e.context(why))
        }
    }
}

async fn phases(
    spec: &LivenessSpec<'_>,
    cloud: &crate::cloud::Cloud,
    nats_url: &str,
    tck: u64,
) -> anyhow::Result<Value> {
    let pid = cloud.pid;
    let mut buses = Vec::new();
    for _ in 0..spec.connections.max(1) {
        buses.push(Arc::new(NatsBus::connect(nats_url).await?));
    }
    let hosts: Vec<Arc<SimHost>> = (0..spec.hosts)
        .map(|i| Arc::new(SimHost { name: host_name(i), epoch: AtomicU64::new(0), failed: AtomicBool::new(false) }))
        .collect();
    let by_name: Arc<std::collections::HashMap<String, Arc<SimHost>>> =
        Arc::new(hosts.iter().map(|h| (h.name.clone(), h.clone())).collect());
    let counts = Arc::new(Counts::default());
    for b in &buses {
        serve_commands(b.clone(), by_name.clone(), counts.clone()).await?;
    }

    // 1. Join.
    eprintln!("stratus-bench: {} simulated hosts joining", spec.hosts);
    let cpu = stats::CpuMark::take(pid)?;
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(spec.join_concurrency.max(1)));
    let mut joins = tokio::task::JoinSet::new();
    // The renewal interval comes with the join reply; ask once first.
    let probe = join(&buses[0], "sim-probe").await.context("first join")?;
    let every = Duration::from_millis(probe.renew_interval_ms.max(100));
    let slots = (every.as_millis() / SLOT.as_millis()).max(1) as usize;
    let shared_hosts = Arc::new(hosts.clone());
    let mut wheels = Vec::new();
    for (conn, bus) in buses.iter().enumerate() {
        let w = Arc::new(Wheel {
            conn,
            bus: bus.clone(),
            slots: std::sync::Mutex::new(vec![Vec::new(); slots]),
            started: Instant::now(),
            every,
        });
        tokio::spawn(drive_wheel(w.clone(), shared_hosts.clone(), counts.clone()));
        wheels.push(w);
    }
    for (i, h) in hosts.iter().enumerate() {
        let permit = sem.clone().acquire_owned().await?;
        let (bus, h, wheel) = (buses[i % buses.len()].clone(), h.clone(), wheels[i % wheels.len()].clone());
        joins.spawn(async move {
            let _p = permit;
            let mut tries = 0;
            loop {
                match join(&bus, &h.name).await {
                    Ok(j) => {
                        h.epoch.store(j.epoch as u64, Ordering::Relaxed);
                        // Renew from the join on, as an agent does.
                        wheel.add(i);
                        return Ok(j);
                    }
                    Err(e) if tries >= 5 => return Err(e.context(format!("join of {}", h.name))),
                    Err(_) => tries += 1,
                }
            }
        });
    }
    let mut reply0 = None;
    while let Some(r) = joins.join_next().await {
        reply0 = Some(r??);
    }
    let join_secs = started.elapsed().as_secs_f64();
    let join_cpu = cpu.since(pid, tck)?;
    let reply0 = reply0.context("no host joined")?;
    let every = Duration::from_millis(reply0.renew_interval_ms);
    let lease_ttl = Duration::from_millis(reply0.lease_ttl_ms);
    eprintln!(
        "stratus-bench: {} hosts joined in {join_secs:.1} s; renewing every {every:?}, lease {lease_ttl:?}",
        spec.hosts
    );

    // Let the renewals settle after the join storm.
    tokio::time::sleep(every * 2).await;

    // 2. Steady renewals.
    eprintln!("stratus-bench: {} s of steady renewals", spec.steady.as_secs());
    let commits0 = db_commits(&cloud.url).await?;
    let renewed0 = counts.renewed.load(Ordering::Relaxed);
    counts.sampling.store(true, Ordering::Relaxed);
    let cpu = stats::CpuMark::take(pid)?;
    let t = Instant::now();
    tokio::time::sleep(spec.steady).await;
    let spent = cpu.since(pid, tck)?;
    let secs = t.elapsed().as_secs_f64();
    counts.sampling.store(false, Ordering::Relaxed);
    let commits1 = db_commits(&cloud.url).await?;
    let renewed = counts.renewed.load(Ordering::Relaxed) - renewed0;
    let samples = std::mem::take(&mut *counts.samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let steady = json!({
        "seconds": secs,
        "renewals": renewed,
        "renewals_per_second": renewed as f64 / secs,
        "controller_cpu_cores": spent.server_ms / 1000.0 / secs,
        "controller_cpu_us_per_renewal": spent.server_ms * 1000.0 / renewed.max(1) as f64,
        "simulator_cpu_cores": spent.client_ms / 1000.0 / secs,
        // The scrape itself commits nothing; the leader lease renews once a second.
        "db_commits": commits1 - commits0,
        "db_commits_per_second": (commits1 - commits0) / secs,
        "renewal_round_trip_ms": percentiles_us(samples),
        "renewals_failed": counts.failed.load(Ordering::Relaxed),
        "must_rejoin": counts.must_rejoin.load(Ordering::Relaxed),
        "controller_cpu_ms_by_thread": spent.server_by_thread_ms,
    });
    eprintln!("stratus-bench: steady: {steady}");

    // 3. Failure of a share of the hosts at once.
    let db_path = cloud.data_dir().join("stratus.db");
    let db =
        stratus_db::Datastore::open_sqlite(&db_path).await.with_context(|| format!("open {}", db_path.display()))?;
    let n_fail = ((spec.hosts as f64) * spec.fail_percent / 100.0).round() as usize;
    // Every k-th host, so the failed ones are spread over the renewal interval.
    let step = (spec.hosts / n_fail.max(1)).max(1);
    let failing: Vec<Arc<SimHost>> = hosts.iter().step_by(step).take(n_fail).cloned().collect();
    let fail_names: HashSet<String> = failing.iter().map(|h| h.name.clone()).collect();
    let rejoined_before = counts.rejoined.load(Ordering::Relaxed);
    eprintln!("stratus-bench: failing {} hosts at once", failing.len());
    let fail_at = chrono::Utc::now();
    let fail_instant = Instant::now();
    for h in &failing {
        h.failed.store(true, Ordering::Relaxed);
    }
    let mut detected: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    let mut false_convictions: HashSet<String> = HashSet::new();
    let watch_until = fail_instant + lease_ttl + Duration::from_secs(5);
    while Instant::now() < watch_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for row in db.service_changed_since(fail_at - chrono::Duration::seconds(1)).await? {
            if row.state != stratus_types::ServiceState::Down {
                continue;
            }
            if fail_names.contains(&row.host) {
                let after = (row.updated_at - fail_at).num_milliseconds() as f64 / 1000.0;
                detected.entry(row.host).or_insert(after);
            } else {
                false_convictions.insert(row.host);
            }
        }
    }
    let mut det: Vec<f64> = detected.values().copied().collect();
    det.sort_by(f64::total_cmp);
    let pick =
        |p: f64| det.get(((p / 100.0 * det.len() as f64).ceil() as usize).clamp(1, det.len().max(1)) - 1).copied();
    let failure = json!({
        "failed_hosts": failing.len(),
        "detected": det.len(),
        "detection_seconds_after_failure": {"min": det.first(), "p50": pick(50.0), "p99": pick(99.0), "max": det.last()},
        "bound_seconds": lease_ttl.as_secs_f64() + 1.0,
        "within_bound": det.len() == failing.len() && det.last().is_some_and(|m| *m <= lease_ttl.as_secs_f64() + 1.0),
        "false_convictions": false_convictions.len(),
        "healthy_rejoins": counts.rejoined.load(Ordering::Relaxed) - rejoined_before,
    });
    eprintln!("stratus-bench: failure: {failure}");

    // 4. Deletes on simulated hosts while the renewals go on.
    let deletes = if spec.servers > 0 {
        let api = Api::login(&cloud.url, "demo", spec.demo_pw, "demo").await?;
        let image = api.cirros().await?;
        let probe = Probe { pid, tck };
        eprintln!("stratus-bench: booting {} servers onto the simulated hosts", spec.servers);
        let b = workloads::boot(
            &api,
            probe,
            workloads::BootSpec {
                image: &image,
                prefix: "sim",
                n: spec.servers,
                concurrency: spec.boot_concurrency,
                poll: spec.poll,
                timeout: spec.timeout,
            },
        )
        .await
        .context("boot onto simulated hosts")?;
        let hosts_used: HashSet<String> = {
            let mut s = HashSet::new();
            for id in &b.ids {
                let Ok(sid) = id.parse::<stratus_types::ServerId>() else { continue };
                if let Ok(row) = db.server_get(&sid).await
                    && let Some(h) = row.host
                {
                    s.insert(h);
                }
            }
            s
        };
        eprintln!("stratus-bench: deleting {} servers on {} hosts at once", b.ids.len(), hosts_used.len());
        let mut r = workloads::delete_all_at_once(
            &api,
            probe,
            b.ids,
            spec.concurrency,
            ListKind::Index,
            spec.poll,
            spec.timeout,
        )
        .await
        .context("deletes on simulated hosts")?;
        r["boot"] = b.report;
        r["hosts_used"] = json!(hosts_used.len());
        r["commands_answered"] = json!(counts.commands.load(Ordering::Relaxed));
        Some(r)
    } else {
        None
    };
    Ok(json!({
        "hosts": spec.hosts,
        "sim_connections": buses.len(),
        "lease_ttl_ms": reply0.lease_ttl_ms,
        "renew_interval_ms": reply0.renew_interval_ms,
        "join": {
            "seconds": join_secs,
            "joins_per_second": spec.hosts as f64 / join_secs,
            "controller_cpu_ms_per_join": join_cpu.server_ms / spec.hosts.max(1) as f64,
        },
        "steady": steady,
        "failure": failure,
        "deletes": deletes,
    }))
}
