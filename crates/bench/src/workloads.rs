//! The measured phases: boot, delete everything at once, delete one at a time.

use crate::api::{Api, Show};
use crate::stats::{CpuMark, ms, summary};
use anyhow::bail;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Which list the "gone" poller reads.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ListKind {
    /// `GET /servers/detail` (also sees ERROR).
    Detail,
    /// `GET /servers` (ids and names only: cheaper for the server).
    Index,
}

/// What every phase needs to know about the process under test.
#[derive(Clone, Copy)]
pub struct Probe {
    pub pid: u32,
    pub tck: u64,
}

/// Aborts a spawned task when dropped (a failing phase stops its poller).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn per_second(n: usize, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { (n as f64 / d.as_secs_f64() * 100.0).round() / 100.0 }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn status_counts<'a>(it: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in it {
        *m.entry(s.to_string()).or_insert(0) += 1;
    }
    m
}

/// What [`boot`] boots: `n` servers named `<prefix>-<i>` from `image`.
pub struct BootSpec<'a> {
    pub image: &'a str,
    pub prefix: &'a str,
    pub n: usize,
    /// POSTs in flight at most.
    pub concurrency: usize,
    /// Interval of the `GET /servers/detail` poller.
    pub poll: Duration,
    /// Give up when not all are ACTIVE after this.
    pub timeout: Duration,
}

/// Servers booted by [`boot`], and the boot figures.
pub struct Booted {
    pub ids: Vec<String>,
    pub report: Value,
}

/// POST `n` servers with at most `concurrency` in flight while a poller of
/// `GET /servers/detail` notes when each turns ACTIVE.
pub async fn boot(api: &Api, probe: Probe, spec: BootSpec<'_>) -> anyhow::Result<Booted> {
    let BootSpec { image, prefix, n, concurrency, poll, timeout } = spec;
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let posts_done = Arc::new(AtomicBool::new(false));
    let cpu = CpuMark::take(probe.pid)?;
    let t0 = Instant::now();
    let deadline = t0 + timeout;

    let mut poller = {
        let (api, posted, posts_done) = (api.clone(), posted.clone(), posts_done.clone());
        AbortOnDrop(tokio::spawn(async move {
            // First time each id was seen ACTIVE (any ACTIVE server of the fresh project is ours).
            let mut active: HashMap<String, Instant> = HashMap::new();
            let mut polls = 0usize;
            loop {
                let started = Instant::now();
                let list = api.list_servers(true).await?;
                let seen = Instant::now();
                polls += 1;
                for s in &list {
                    match s.status.as_deref() {
                        Some("ACTIVE") => {
                            active.entry(s.id.clone()).or_insert(seen);
                        }
                        Some("ERROR") => {
                            bail!(
                                "server {} went ERROR while booting; fault: {}",
                                s.id,
                                s.fault.clone().unwrap_or_default()
                            )
                        }
                        _ => {}
                    }
                }
                if posts_done.load(Ordering::SeqCst) {
                    let posted = lock(&posted);
                    if posted.keys().all(|id| active.contains_key(id)) {
                        return Ok((active, polls));
                    }
                }
                if seen > deadline {
                    let counts = status_counts(list.iter().map(|s| s.status.as_deref().unwrap_or("?")));
                    bail!(
                        "boot: after {timeout:?}, {} of {n} servers are ACTIVE (statuses now: {counts:?})",
                        active.len()
                    );
                }
                tokio::time::sleep_until((started + poll).into()).await;
            }
        }))
    };

    let post_latencies: Vec<Duration> = stream::iter(0..n)
        .map(|i| {
            let (api, posted) = (api.clone(), posted.clone());
            let name = format!("{prefix}-{i}");
            async move {
                let start = Instant::now();
                let id = api.create_server(&name, image).await?;
                let latency = start.elapsed();
                lock(&posted).insert(id, start);
                anyhow::Ok(latency)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let posts_wall = t0.elapsed();
    posts_done.store(true, Ordering::SeqCst);
    let (active, polls) = (&mut poller.0).await??;
    let spent = cpu.since(probe.pid, probe.tck)?;
    let (server_ms, client_ms) = (spent.server_ms, spent.client_ms);

    let posted = std::mem::take(&mut *lock(&posted));
    let mut to_active = Vec::with_capacity(n);
    let mut last_active = t0;
    for (id, start) in &posted {
        if let Some(a) = active.get(id) {
            to_active.push(a.saturating_duration_since(*start));
            last_active = last_active.max(*a);
        }
    }
    let wall = last_active.saturating_duration_since(t0);
    let report = json!({
        "count": n,
        "concurrency": concurrency,
        "post_latency_ms": summary(&post_latencies),
        "post_to_active_ms": summary(&to_active),
        "posts_wall_s": round2(posts_wall.as_secs_f64()),
        "wall_s": round2(wall.as_secs_f64()),
        "boots_per_second": per_second(n, wall),
        "cpu_ms_per_boot": round2(server_ms / n.max(1) as f64),
        "client_cpu_ms_per_boot": round2(client_ms / n.max(1) as f64),
        "server_cpu_ms_by_thread": spent.server_by_thread_ms.iter().map(|(k, v)| (k.clone(), json!(round2(*v)))).collect::<serde_json::Map<String, Value>>(),
        "list_polls": polls,
    });
    Ok(Booted { ids: posted.into_keys().collect(), report })
}

/// DELETE every server with at most `concurrency` in flight; a poller of the
/// server list notes when each id disappears (= when `GET /servers/{id}`
/// would answer 404: both read `deleted = FALSE` rows).
pub async fn delete_all_at_once(
    api: &Api,
    probe: Probe,
    ids: Vec<String>,
    concurrency: usize,
    list: ListKind,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let n = ids.len();
    let cpu = CpuMark::take(probe.pid)?;
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let mut poller = {
        let api = api.clone();
        let mut pending: HashSet<String> = ids.iter().cloned().collect();
        AbortOnDrop(tokio::spawn(async move {
            let mut gone: HashMap<String, Instant> = HashMap::with_capacity(pending.len());
            let mut poll_latency = Vec::new();
            loop {
                let started = Instant::now();
                let listed = api.list_servers(matches!(list, ListKind::Detail)).await?;
                let seen = Instant::now();
                poll_latency.push(seen - started);
                let present: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
                for s in &listed {
                    if s.status.as_deref() == Some("ERROR") && pending.contains(&s.id) {
                        bail!(
                            "server {} went ERROR while being deleted; fault: {}",
                            s.id,
                            s.fault.clone().unwrap_or_default()
                        );
                    }
                }
                pending.retain(|id| {
                    let still = present.contains(id.as_str());
                    if !still {
                        gone.insert(id.clone(), seen);
                    }
                    still
                });
                if pending.is_empty() {
                    return Ok((gone, poll_latency));
                }
                if seen > deadline {
                    let counts = status_counts(
                        listed.iter().filter(|s| pending.contains(&s.id)).map(|s| s.status.as_deref().unwrap_or("?")),
                    );
                    bail!(
                        "delete_all_at_once: after {timeout:?}, {} of {n} servers still listed (statuses: {counts:?})",
                        pending.len()
                    );
                }
                tokio::time::sleep_until((started + poll).into()).await;
            }
        }))
    };

    let deletes: Vec<(String, Instant, Duration)> = stream::iter(ids)
        .map(|id| {
            let api = api.clone();
            async move {
                let start = Instant::now();
                api.delete_server(&id).await?;
                anyhow::Ok((id, start, start.elapsed()))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let requests_wall = t0.elapsed();
    let (gone, poll_latency) = (&mut poller.0).await??;
    let spent = cpu.since(probe.pid, probe.tck)?;
    let (server_ms, client_ms) = (spent.server_ms, spent.client_ms);

    let first = deletes.iter().map(|d| d.1).min().unwrap_or(t0);
    let last_gone = gone.values().copied().max().unwrap_or(first);
    let wall = last_gone.saturating_duration_since(first);
    let latencies: Vec<Duration> = deletes.iter().map(|d| d.2).collect();
    let to_404: Vec<Duration> =
        deletes.iter().filter_map(|(id, start, _)| gone.get(id).map(|g| g.saturating_duration_since(*start))).collect();
    Ok(json!({
        "count": n,
        "concurrency": concurrency,
        "delete_latency_ms": summary(&latencies),
        "time_to_404_ms": summary(&to_404),
        "delete_requests_wall_s": round2(requests_wall.as_secs_f64()),
        "wall_s": round2(wall.as_secs_f64()),
        "deletes_per_second": per_second(n, wall),
        "cpu_ms_per_delete": round2(server_ms / n.max(1) as f64),
        "client_cpu_ms_per_delete": round2(client_ms / n.max(1) as f64),
        "server_cpu_ms_by_thread": spent.server_by_thread_ms.iter().map(|(k, v)| (k.clone(), json!(round2(*v)))).collect::<serde_json::Map<String, Value>>(),
        "gone_poller": {
            "endpoint": match list { ListKind::Detail => "GET /compute/v2.1/servers/detail", ListKind::Index => "GET /compute/v2.1/servers" },
            "interval_ms": ms(poll),
            "polls": poll_latency.len(),
            "poll_latency_ms": summary(&poll_latency),
        },
    }))
}

/// DELETE one server, poll `GET /servers/{id}` until 404, then the next.
pub async fn delete_one_at_a_time(
    api: &Api,
    probe: Probe,
    ids: Vec<String>,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let n = ids.len();
    let cpu = CpuMark::take(probe.pid)?;
    let t0 = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut to_404 = Vec::with_capacity(n);
    let mut gets = 0usize;
    for id in &ids {
        let start = Instant::now();
        api.delete_server(id).await?;
        latencies.push(start.elapsed());
        loop {
            let polled = Instant::now();
            gets += 1;
            match api.show_server(id).await? {
                Show::Gone => {
                    to_404.push(start.elapsed());
                    break;
                }
                Show::Present { status, fault } => {
                    if status == "ERROR" {
                        bail!("server {id} went ERROR while being deleted; fault: {}", fault.unwrap_or_default());
                    }
                    if start.elapsed() > timeout {
                        bail!("delete_one_at_a_time: server {id} still there ({status}) {timeout:?} after its DELETE");
                    }
                }
            }
            tokio::time::sleep_until((polled + poll).into()).await;
        }
    }
    let wall = t0.elapsed();
    let spent = cpu.since(probe.pid, probe.tck)?;
    let (server_ms, client_ms) = (spent.server_ms, spent.client_ms);
    Ok(json!({
        "count": n,
        "concurrency": 1,
        "delete_latency_ms": summary(&latencies),
        "time_to_404_ms": summary(&to_404),
        "wall_s": round2(wall.as_secs_f64()),
        "deletes_per_second": per_second(n, wall),
        "cpu_ms_per_delete": round2(server_ms / n.max(1) as f64),
        "client_cpu_ms_per_delete": round2(client_ms / n.max(1) as f64),
        "server_cpu_ms_by_thread": spent.server_by_thread_ms.iter().map(|(k, v)| (k.clone(), json!(round2(*v)))).collect::<serde_json::Map<String, Value>>(),
        "gone_poller": {"endpoint": "GET /compute/v2.1/servers/{id}", "interval_ms": ms(poll), "requests": gets},
    }))
}

/// Cost of listing `listed` servers: `calls` sequential list requests of each
/// kind on an otherwise idle cloud (what one poll of the "gone" poller costs).
pub async fn list_probe(api: &Api, probe: Probe, listed: usize, calls: usize) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    out.insert("servers_listed".into(), json!(listed));
    for (name, detail) in [("detail", true), ("index", false)] {
        let cpu = CpuMark::take(probe.pid)?;
        let mut latencies = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let got = api.list_servers(detail).await?.len();
            latencies.push(t.elapsed());
            if got != listed {
                bail!("list probe: listed {got} servers, expected {listed}");
            }
        }
        let spent = cpu.since(probe.pid, probe.tck)?;
        out.insert(
            name.into(),
            json!({
                "calls": calls,
                "latency_ms": summary(&latencies),
                "server_cpu_ms_per_call": round2(spent.server_ms / calls.max(1) as f64),
                "server_cpu_ms_by_thread": spent.server_by_thread_ms.iter().map(|(k, v)| (k.clone(), json!(round2(*v / calls.max(1) as f64)))).collect::<serde_json::Map<String, Value>>(),
            }),
        );
    }
    Ok(Value::Object(out))
}
