//! Distributed mode on PostgreSQL (issue 9): two `stratus api` processes and
//! two `stratus controller`s on one PostgreSQL database, agents joined over
//! NATS only. Many servers are booted and deleted through both APIs while
//! one controller is SIGKILLed and restarted: every delete finishes, once
//! (one `delete.start`/`delete.end` pair each in the outbox, every
//! `delete.end` published), the quota usage returns to zero and nothing
//! leaks. (Nova runs several conductors on one database the same way; its
//! deletes are not operations another conductor can adopt: weakness W5.)

mod common;

use common::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stratus_bus::Bus;

/// Servers booted and deleted (`STRATUS_2X2_SERVERS`; the closing note's run
/// used 1,000).
fn server_count() -> usize {
    std::env::var("STRATUS_2X2_SERVERS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

async fn wait_hosts_up(cloud: &Cloud, admin: &str, hosts: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = cloud.call(admin, Method::GET, "/compute/v2.1/os-services", None).await;
        let up =
            |h: &str| v["services"].as_array().is_some_and(|a| a.iter().any(|s| s["host"] == h && s["state"] == "up"));
        if hosts.iter().all(|h| up(h)) {
            return;
        }
        assert!(Instant::now() < deadline, "hosts never came up: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (id, status) of every server of the caller's project.
async fn statuses(cloud: &Cloud, tok: &str) -> HashMap<String, String> {
    let (s, v) = cloud.call(tok, Method::GET, "/compute/v2.1/servers/detail?limit=1000", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut out = HashMap::new();
    for srv in v["servers"].as_array().into_iter().flatten() {
        out.insert(
            srv["id"].as_str().unwrap_or_default().to_string(),
            srv["status"].as_str().unwrap_or_default().into(),
        );
    }
    out
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

async fn wait_log(cloud: &Cloud, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !controllers_log(cloud).contains(what) {
        assert!(Instant::now() < deadline, "never logged: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_apis_and_two_controllers_on_postgres_delete_every_server_once_while_a_controller_dies() {
    let n = server_count();
    let pg = PgDatabase::create().await;
    let nats = Nats::start();
    let env = [
        ("STRATUS_DATABASE_URL", pg.url.as_str()),
        ("STRATUS_QUOTA_INSTANCES", "-1"),
        ("STRATUS_QUOTA_CORES", "-1"),
        ("STRATUS_QUOTA_RAM", "-1"),
    ];
    let api1 = Cloud::start_api(&["--nats-url", &nats.url], &env).await;
    let api2 = api1.start_another("api", &["--nats-url", &nats.url]).await;
    let ctl_env =
        |id: &'static str| [("STRATUS_CONTROLLER_ID", id), ("STRATUS_OP_CLAIM_TTL", "2"), ("STRATUS_LEADER_TTL", "2")];
    let mut ctl_a = api1.start_controller(&nats, &ctl_env("ctl-a"));
    let mut ctl_b = api1.start_controller(&nats, &ctl_env("ctl-b"));
    let vcpus = (n + 10).to_string();
    let agent_env =
        [("STRATUS_FAKE_HOST_VCPUS", vcpus.as_str()), ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")];
    let agents: Vec<AgentProc> = ["compute-1", "compute-2"]
        .iter()
        .map(|h| AgentProc::start(h, &nats, api1.data_dir.join("hosts").join(h), &agent_env))
        .collect();
    let admin = api1.admin().await;
    let tok = api1.demo().await;
    wait_hosts_up(&api1, &admin, &["compute-1", "compute-2"]).await;

    // Count the delete.end notifications actually published on the bus.
    let published: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let listener = stratus_bus::NatsBus::connect(&nats.url).await.expect("nats");
    let mut ends = listener.subscribe("notifications.instance.delete.end").await.expect("subscribe");
    let seen = published.clone();
    tokio::spawn(async move {
        while let Some(m) = ends.next().await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            let text = v.to_string();
            if let Some(id) = text.split("\"uuid\":\"").nth(1).and_then(|r| r.split('"').next()) {
                *seen.lock().expect("lock").entry(id.to_string()).or_default() += 1;
            }
        }
    });

    // Boot through both APIs.
    let apis = [&api1, &api2];
    let image = api1.cirros(&tok).await;
    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let (api, tok, image) = (apis[i % 2], tok.clone(), image.clone());
            async move {
                let body = json!({"server": {"name": format!("s{i}"), "imageRef": image, "flavorRef": "1"}});
                let (s, v) = api.call(&tok, Method::POST, "/compute/v2.1/servers", Some(body)).await;
                if s != StatusCode::ACCEPTED {
                    let log = std::fs::read_to_string(api.data_dir.join("stratus.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
                    panic!("create: {s} {v}\n{}", tail.join("\n"));
                }
                v["server"]["id"].as_str().expect("id").to_string()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let st = statuses(&api1, &tok).await;
        let active = ids.iter().filter(|id| st.get(*id).is_some_and(|s| s == "ACTIVE")).count();
        let errors: Vec<_> = ids.iter().filter(|id| st.get(*id).is_some_and(|s| s == "ERROR")).collect();
        assert!(errors.is_empty(), "builds failed: {errors:?}");
        if active == n {
            break;
        }
        assert!(Instant::now() < deadline, "only {active} of {n} servers ACTIVE");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("MEASURE 2x2: {n} servers ACTIVE after {} ms", started.elapsed().as_millis());

    // Delete through both APIs; kill controller A a third of the way in.
    let started = Instant::now();
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killer = {
        let issued = issued.clone();
        let pid = ctl_a.id();
        tokio::spawn(async move {
            while issued.load(std::sync::atomic::Ordering::SeqCst) < n / 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            Instant::now()
        })
    };
    let statuses_of_delete: Vec<StatusCode> = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (api, tok, issued) = (apis[i % 2], tok.clone(), issued.clone());
            async move {
                let (s, _) = api.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
                issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                s
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let killed_at = killer.await.expect("killer");
    assert!(statuses_of_delete.iter().all(|s| *s == StatusCode::NO_CONTENT), "every DELETE is a 204");
    let _ = ctl_a.wait();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctl_a = api1.start_controller(&nats, &ctl_env("ctl-a"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = statuses(&api1, &tok).await.len();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} servers still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "MEASURE 2x2: {n} deletes through 2 APIs, 2 controllers (one SIGKILLed {} ms in, restarted): all 404 after {} ms",
        killed_at.duration_since(started).as_millis(),
        started.elapsed().as_millis()
    );

    // Exactly one delete.start / delete.end each in the outbox; every
    // delete.end published (at least once: a relay that dies between publish
    // and mark publishes again after failover).
    let db = api1.db().await;
    for id in &ids {
        let rows: Vec<String> =
            db.notification_list_for_server(&sid(id)).await.expect("n").into_iter().map(|r| r.event_type).collect();
        assert_eq!(rows.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{id}: {rows:?}");
        assert_eq!(rows.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{id}: {rows:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = published.lock().expect("lock").clone();
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            let dup = seen.values().filter(|c| **c > 1).count();
            eprintln!("MEASURE 2x2: every delete.end published; {dup} published twice (relay failover)");
            break;
        }
        assert!(Instant::now() < deadline, "{missing} delete.end notifications never published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Quota usage back to zero; no VM left on any host; the audit is clean.
    let (_, limits) = api1.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(limits["limits"]["absolute"]["totalInstancesUsed"], 0, "{limits}");
    assert_eq!(limits["limits"]["absolute"]["totalCoresUsed"], 0, "{limits}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while agents.iter().any(|a| !a.vms().is_empty()) {
        assert!(Instant::now() < deadline, "VMs left on the hosts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (clean, report) = api1.audit();
    assert!(clean, "{report}");
    for c in [&mut ctl_a, &mut ctl_b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The leader lease moves when the leader dies: hosts are still marked down
/// (by the other controller), and a stopped (SIGSTOP) leader that resumes
/// after losing the lease writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_other_controller_takes_over_the_liveness_monitor_when_the_leader_dies() {
    let pg = PgDatabase::create().await;
    let nats = Nats::start();
    let env = [("STRATUS_DATABASE_URL", pg.url.as_str())];
    let api = Cloud::start_api(&["--nats-url", &nats.url], &env).await;
    let ctl =
        |id: &'static str| [("STRATUS_CONTROLLER_ID", id), ("STRATUS_LEADER_TTL", "2"), ("STRATUS_LEASE_TTL", "3")];
    let mut a = api.start_controller(&nats, &ctl("ctl-a"));
    let db = api.db().await;
    wait_log(&api, "this controller is now the leader holder=ctl-a").await;
    let mut b = api.start_controller(&nats, &ctl("ctl-b"));
    let mut agent = AgentProc::start("compute-1", &nats, api.data_dir.join("hosts").join("compute-1"), &[]);
    let admin = api.admin().await;
    wait_hosts_up(&api, &admin, &["compute-1"]).await;
    // Stop the leader, then the agent: only ctl-b can mark the host down.
    let pid = a.id();
    let _ = std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status();
    agent.kill9();
    let stopped = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let svc = db.service_get_by_host("compute-1").await.expect("svc");
        if svc.state == stratus_types::ServiceState::Down {
            break;
        }
        assert!(Instant::now() < deadline, "the host was never marked down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "MEASURE leader failover: host marked down {} ms after the leader stopped",
        stopped.elapsed().as_millis()
    );
    assert!(controllers_log(&api).contains("this controller is now the leader holder=ctl-b"), "ctl-b took over");
    // The old leader resumes: it finds itself deposed and steps down.
    let _ = std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status();
    wait_log(&api, "leadership lost to another controller holder=ctl-a").await;
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
