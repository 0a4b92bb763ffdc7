//! Seed problem 1: a volume-backed server whose host dies while its VM (and
//! so its storage client) keeps running. DELETE must finish within the bound,
//! fence the zombie's storage client before any volume is released, delete
//! the root volume (no leak: Nova's W2/W3), and free the data volume only
//! after the fence, so it can be attached elsewhere. Runs on the `local`
//! backend always and on a real single-node Ceph (`CEPH_CONF`).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

async fn wait_volume(c: &Cloud, tok: &str, id: &str, status: &str) -> Value {
    c.wait_volume(tok, id, status, T).await
}

async fn wait_hosts_up(c: &Cloud, admin: &str, hosts: &[&str]) {
    let deadline = Instant::now() + T;
    loop {
        let (_, v) = c.call(admin, Method::GET, "/compute/v2.1/os-services", None).await;
        let up =
            |h: &str| v["services"].as_array().is_some_and(|a| a.iter().any(|s| s["host"] == h && s["state"] == "up"));
        if hosts.iter().all(|h| up(h)) {
            return;
        }
        assert!(Instant::now() < deadline, "hosts not up: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The librbd holder processes (the fake driver's storage clients) that hold
/// `image` open: a python3 whose arguments include exactly the image name.
fn holder_pids(image: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if holds(pid, image) {
            pids.push(pid);
        }
    }
    pids
}

/// Is `pid` alive (not defunct) and a holder of `image`? Never a pid alone: pids are reused.
fn holds(pid: u32, image: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.contains(&b"-c".as_slice()) && args.contains(&image.as_bytes())
}

/// Ends the zombie's holder processes (pid, image) when the test ends, pass or
/// fail: a process is signalled only while it still holds that image.
struct KillOnDrop(Vec<(u32, String)>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, image) in &self.0 {
            if holds(*pid, image) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

fn rbd(args: &[&str]) -> String {
    let out = Command::new("rbd").args(args).output().expect("rbd");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn blocklist() -> String {
    let out = Command::new("ceph").args(["osd", "blocklist", "ls"]).output().expect("ceph");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn seed_problem(backend: &str) {
    let nats = Nats::start();
    let mut args = vec!["--fake-hosts", "0", "--nats-url", nats.url.as_str(), "--volume-backend", backend];
    let ceph_conf = std::env::var("CEPH_CONF").ok();
    let pool = if backend == "rbd" {
        let conf = ceph_conf.as_deref().unwrap_or_else(|| {
            panic!("CEPH_CONF is not set: run the tests with scripts/test, which starts a single-node Ceph")
        });
        args.extend(["--ceph-conf", conf]);
        ceph_pool()
    } else {
        "rbd".to_string()
    };
    args.extend(["--ceph-pool", pool.as_str()]);
    let env = [("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")];
    let cloud = Cloud::start_with_args(&args, &env).await;
    let data_dir = cloud.data_dir.to_string_lossy().to_string();
    let mut agent_env: Vec<(&str, &str)> = vec![
        ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1"),
        ("STRATUS_DATA_DIR", data_dir.as_str()),
        ("STRATUS_VOLUME_BACKEND", backend),
    ];
    if let Some(conf) = ceph_conf.as_deref() {
        agent_env.push(("STRATUS_CEPH_CONF", conf));
        agent_env.push(("STRATUS_CEPH_POOL", pool.as_str()));
    }
    // Zombie holders (rbd) keep writing after their agent dies and log each write here.
    let holder_logs = cloud.data_dir.join("holder-logs");
    std::fs::create_dir_all(&holder_logs).expect("mkdir");
    let holder_logs_s = holder_logs.to_string_lossy().to_string();
    agent_env.push(("STRATUS_HOLDER_LOG_DIR", holder_logs_s.as_str()));
    let mut agents = [
        AgentProc::start("compute-1", &nats, cloud.data_dir.join("hosts").join("compute-1"), &agent_env),
        AgentProc::start("compute-2", &nats, cloud.data_dir.join("hosts").join("compute-2"), &agent_env),
    ];
    let tok = cloud.demo().await;
    let admin = cloud.admin().await;
    wait_hosts_up(&cloud, &admin, &["compute-1", "compute-2"]).await;

    // A data volume and a boot-from-volume server using it.
    let (s, v) = cloud
        .call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "name": "data"}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let data = v["volume"]["id"].as_str().expect("id").to_string();
    wait_volume(&cloud, &tok, &data, "available").await;
    let image = cloud.cirros(&tok).await;
    let (s, v) = cloud.post_bfv_server(&tok, "bfv", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    let shown = cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let root =
        shown["server"]["os-extended-volumes:volumes_attached"][0]["id"].as_str().expect("root volume").to_string();
    let (s, v) = cloud
        .call(
            &tok,
            Method::POST,
            &format!("/compute/v2.1/servers/{id}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": data}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_volume(&cloud, &tok, &data, "in-use").await;
    wait_volume(&cloud, &tok, &root, "in-use").await;
    let db = cloud.db().await;
    let atts = db.attachment_list_for_server(&sid(&id)).await.expect("atts");
    assert_eq!(atts.len(), 2);
    let clients: Vec<String> = atts.iter().map(|a| a.client_id.clone().expect("client recorded at attach")).collect();
    let root_backend = db.volume_get(&vid(&root)).await.expect("root").backend_name;
    let data_backend_name = db.volume_get(&vid(&data)).await.expect("data").backend_name;
    // The storage clients of the VM: with rbd one librbd holder process per
    // volume (they outlive their agent by design); with local, in-process.
    let zombie_holders: Vec<(u32, String)> = [&root_backend, &data_backend_name]
        .into_iter()
        .flat_map(|image| holder_pids(image).into_iter().map(move |pid| (pid, image.clone())))
        .collect();
    let _reaper = KillOnDrop(zombie_holders.clone());
    if backend == "rbd" {
        assert_eq!(zombie_holders.len(), 2, "one holder per volume: {zombie_holders:?}");
    } else {
        assert!(zombie_holders.is_empty(), "local clients live in the agent: {zombie_holders:?}");
    }
    if backend == "rbd" {
        assert!(rbd(&["ls", &pool]).contains(&root_backend), "root image exists in the pool");
    }

    // The host dies; the VM and its storage clients live on (zombie).
    let (_, v) = cloud.call(&admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
    let host = v["server"]["OS-EXT-SRV-ATTR:host"].as_str().expect("host").to_string();
    let idx = if host == "compute-1" { 0 } else { 1 };
    agents[idx].kill9();
    // Detach is refused while the host is down (Nova bug 1909120).
    let (s, _) = cloud
        .call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}/os-volume_attachments/{data}"), None)
        .await;
    assert!(s == StatusCode::CONFLICT || s == StatusCode::ACCEPTED, "{s}");

    let started = Instant::now();
    let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let took = cloud.wait_gone(&tok, &id, T).await;
    eprintln!(
        "MEASURE {backend}: DELETE of a volume-backed server on a dead host -> 404 and root volume removed in {} ms",
        started.elapsed().as_millis()
    );
    assert!(took <= Duration::from_secs(15), "{took:?}");

    // When the fence was known applied (rbd): no write of the zombie may succeed after it, ever.
    let mut fenced_at: u128 = 0;
    let epoch_before = db.service_get_by_host(&host).await.expect("svc").epoch;
    // The root volume is gone from the backend; the data volume is free only now that its client is fenced.
    let (s, _) = cloud.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "root volume deleted with the server");
    if backend == "rbd" {
        assert!(!rbd(&["ls", &pool]).contains(&root_backend), "root image removed from the pool");
        let bl = blocklist();
        let a = db
            .action_list(&sid(&id))
            .await
            .expect("actions")
            .into_iter()
            .find(|a| a.action == "delete")
            .expect("delete");
        let (_, events) = db.action_get(&sid(&id), &a.request_id).await.expect("events");
        for c in &clients {
            assert!(bl.contains(c.as_str()), "zombie client {c} fenced: {bl}; clients {clients:?}; events {events:#?}");
        }
        // The zombies kept writing until the fence; from the fence on, every write fails (errno 108).
        let fenced_by = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
        fenced_at = fenced_by;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let data_backend = db.volume_get(&vid(&data)).await.expect("data").backend_name;
        let mut ok_before = 0;
        for name in [&root_backend, &data_backend] {
            let log = std::fs::read_to_string(holder_logs.join(format!("{name}.log"))).unwrap_or_default();
            let lines: Vec<(&str, u128)> = log
                .lines()
                .filter_map(|l| {
                    let mut p = l.split_whitespace();
                    let r = p.next()?;
                    let t = p.last()?.parse().ok()?;
                    Some((r, t))
                })
                .collect();
            ok_before += lines.iter().filter(|(r, _)| *r == "OK").count();
            let ok_after = lines.iter().filter(|(r, t)| *r == "OK" && *t > fenced_by).count();
            let failed_after = lines.iter().filter(|(r, t)| *r == "FAILED" && *t > fenced_by).count();
            eprintln!(
                "MEASURE rbd zombie on {name}: {} bytes written after the fence ({failed_after} writes refused)",
                ok_after * 4096
            );
            assert_eq!(ok_after, 0, "the zombie wrote after the fence: {log}");
            assert!(failed_after > 0, "the zombie kept trying and was refused: {log}");
        }
        eprintln!("MEASURE rbd zombies: {ok_before} writes succeeded between the agent's death and the fence");
    } else {
        assert!(
            !cloud.data_dir.join("volumes").join(format!("{root_backend}.img")).exists(),
            "root volume file removed"
        );
    }
    wait_volume(&cloud, &tok, &data, "available").await;
    // The fences wait to be lifted until the host is back: visible to admins.
    let (s, v) = cloud.call(&admin, Method::GET, "/stratus/v1/storage-cleanups", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["storage_cleanups"].as_array().map(|a| a.iter().filter(|c| c["kind"] == "unfence").count()),
        Some(2),
        "{v}"
    );
    let a =
        db.action_list(&sid(&id)).await.expect("actions").into_iter().find(|a| a.action == "delete").expect("delete");
    let (_, events) = db.action_get(&sid(&id), &a.request_id).await.expect("events");
    let fence = events.iter().find(|e| e.event == "controller_fence_storage").expect("fence event");
    eprintln!("{backend} fence event: {:?}", fence.details);
    assert_eq!(fence.details.as_deref().map(|d| d.matches("fenced client").count()), Some(2));

    // The freed data volume can be attached to another server.
    let other = cloud.create_server(&tok, "other").await;
    cloud.wait_status(&tok, &other, "ACTIVE", T).await;
    let (s, v) = cloud
        .call(
            &tok,
            Method::POST,
            &format!("/compute/v2.1/servers/{other}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": data}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_volume(&cloud, &tok, &data, "in-use").await;

    // The host returns: it reaps the zombie, the capacity and the fence are released.
    agents[idx].restart();
    let deadline = Instant::now() + T;
    loop {
        let zombies = db.zombie_list(None).await.expect("z");
        let pending = db.cleanup_pending().await.expect("q");
        if zombies.is_empty() && pending.is_empty() && !agents[idx].vms().contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "not released: zombies {zombies:?} cleanups {pending:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reaping the zombie VM ended every storage client process it had, even
    // though they were started by the agent process that was killed.
    let left: Vec<&(u32, String)> = zombie_holders.iter().filter(|(pid, image)| holds(*pid, image)).collect();
    assert!(left.is_empty(), "the reaped zombie's holder processes still run: {left:?}");
    // The fences were lifted because the host, rejoined, reported those
    // clients gone, not merely because the zombie VM record went.
    let report = db.host_clients(&host).await.expect("report").expect("the rejoined host reported its clients");
    assert!(report.epoch > epoch_before, "a report from after the rejoin: {report:?} (epoch before {epoch_before})");
    for c in &clients {
        assert!(!report.clients.contains(c), "fence of {c} lifted while the host reports it open: {report:?}");
    }
    if backend == "rbd" {
        let bl = blocklist();
        for c in &clients {
            assert!(!bl.contains(c.as_str()), "fence of {c} lifted after the host rejoined: {bl}");
        }
        // Read the zombies' logs again now that the fences are lifted and the
        // data volume belongs to another server: still no write after the fence.
        for name in [&root_backend, &data_backend_name] {
            let log = std::fs::read_to_string(holder_logs.join(format!("{name}.log"))).unwrap_or_default();
            let late = log
                .lines()
                .filter(|l| l.starts_with("OK"))
                .filter_map(|l| l.split_whitespace().last()?.parse::<u128>().ok())
                .filter(|t| *t > fenced_at)
                .count();
            assert_eq!(late, 0, "a zombie client of {name} wrote after its fence (read after the lift): {log}");
        }
    }
    let (clean, report) = cloud.audit();
    assert!(clean, "{report}");
    if backend == "rbd" {
        // A fence Stratus lifted that is back in (or was never removed from)
        // the blocklist is reported by the audit of the Ceph backend.
        let conf = ceph_conf.as_deref().expect("CEPH_CONF");
        let lifted = &clients[0];
        let out = Command::new("ceph").args(["osd", "blocklist", "add", lifted]).output().expect("ceph");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (clean, report) = cloud.audit_with(&["--volume-backend", "rbd", "--ceph-conf", conf, "--ceph-pool", &pool]);
        let _ = Command::new("ceph").args(["osd", "blocklist", "rm", lifted]).output();
        assert!(!clean, "{report}");
        let leak = format!("LEAK rbd client {lifted} is still fenced although its fence was lifted");
        assert!(report.contains(&leak), "missing {leak:?} in:\n{report}");
        // An image in the cloud's pool that no live volume owns is reported
        // by the plain audit (the cloud recorded its backend).
        let stray = format!("volume-{}", uuid::Uuid::new_v4());
        let out =
            Command::new("rbd").args(["create", "--size", "1M", &format!("{pool}/{stray}")]).output().expect("rbd");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (clean, report) = cloud.audit();
        let _ = Command::new("rbd").args(["rm", "--no-progress", &format!("{pool}/{stray}")]).output();
        assert!(!clean, "{report}");
        let leak = format!("LEAK rbd volume {stray} belongs to no live volume");
        assert!(report.contains(&leak), "missing {leak:?} in:\n{report}");
    }
    // Clean up the rbd images this test made.
    let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{other}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    cloud.wait_gone(&tok, &other, T).await;
    wait_volume(&cloud, &tok, &data, "available").await;
    let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/volume/v3/volumes/{data}"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_backed_server_on_a_dead_host_local_backend() {
    seed_problem("local").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_backed_server_on_a_dead_host_real_ceph() {
    seed_problem("rbd").await;
}
