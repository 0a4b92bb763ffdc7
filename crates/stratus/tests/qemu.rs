//! The seed problem with real VMs: every server is a real qemu running the
//! tiny guest, which writes `counter=N` to sector 0 of every disk once a
//! second. These tests kill, stop and restart real processes and read the
//! counters back from the volumes, so "no write after the fence" is counted
//! on the disk, not inferred.
//!
//! Needs qemu and the guest (scripts/test installs qemu and builds the guest
//! into target/guest, exporting STRATUS_GUEST_DIR) and, for rbd, the
//! single-node Ceph scripts/test starts (CEPH_CONF).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);

fn guest_dir() -> String {
    std::env::var("STRATUS_GUEST_DIR").unwrap_or_else(|_| {
        panic!("STRATUS_GUEST_DIR is not set: run scripts/test (it builds the guest with scripts/guest/build-tiny-guest.sh)")
    })
}

fn ceph_conf() -> String {
    std::env::var("CEPH_CONF").unwrap_or_else(|_| {
        panic!("CEPH_CONF is not set: run the tests with scripts/test, which starts a single-node Ceph")
    })
}

/// What [`QemuCloud::vm_with_data`] made.
struct VmWithData {
    id: String,
    data_name: String,
    host: String,
    pid: u32,
    idx: usize,
}

/// A cloud with an API+controller process and two `stratus compute --driver qemu` hosts.
struct QemuCloud {
    cloud: Cloud,
    agents: Vec<AgentProc>,
    _nats: Nats,
    backend: String,
    /// The Ceph pool of this cloud (rbd).
    pool: String,
}

impl QemuCloud {
    async fn start(backend: &str, watchdog: bool) -> Self {
        let nats = Nats::start();
        let guest = guest_dir();
        let mut args = vec![
            "--fake-hosts",
            "0",
            "--nats-url",
            nats.url.as_str(),
            "--volume-backend",
            backend,
            "--driver",
            "qemu",
            "--guest-dir",
            guest.as_str(),
        ];
        let conf = if backend == "rbd" { Some(ceph_conf()) } else { None };
        let pool = if backend == "rbd" { ceph_pool() } else { "rbd".to_string() };
        if let Some(c) = conf.as_deref() {
            args.extend(["--ceph-conf", c, "--ceph-pool", pool.as_str()]);
        }
        let env = [("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")];
        let cloud = Cloud::start_with_args(&args, &env).await;
        let data_dir = cloud.data_dir.to_string_lossy().to_string();
        let wd = if watchdog { "true" } else { "false" };
        let mut agent_env: Vec<(&str, &str)> = vec![
            ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1"),
            ("STRATUS_DATA_DIR", data_dir.as_str()),
            ("STRATUS_VOLUME_BACKEND", backend),
            ("STRATUS_DRIVER", "qemu"),
            ("STRATUS_WATCHDOG", wd),
        ];
        if let Some(c) = conf.as_deref() {
            agent_env.push(("STRATUS_CEPH_CONF", c));
            agent_env.push(("STRATUS_CEPH_POOL", pool.as_str()));
        }
        let agents = ["compute-1", "compute-2"]
            .iter()
            .map(|h| AgentProc::start(h, &nats, cloud.data_dir.join("hosts").join(h), &agent_env))
            .collect();
        let me = Self { cloud, agents, _nats: nats, backend: backend.to_string(), pool };
        let admin = me.cloud.admin().await;
        me.wait_hosts_up(&admin).await;
        me
    }

    async fn wait_hosts_up(&self, admin: &str) {
        let deadline = Instant::now() + T;
        loop {
            let (_, v) = self.cloud.call(admin, Method::GET, "/compute/v2.1/os-services", None).await;
            let up = v["services"]
                .as_array()
                .map(|a| a.iter().filter(|s| s["binary"] == "nova-compute" && s["state"] == "up").count())
                .unwrap_or(0);
            if up == self.agents.len() {
                return;
            }
            assert!(Instant::now() < deadline, "hosts not up: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A running image-backed VM with a data volume attached, once the
    /// guest has written the volume at least `writes` times.
    async fn vm_with_data(&self, tok: &str, admin: &str, writes: u64) -> VmWithData {
        let data = create_volume(&self.cloud, tok, "data").await;
        let id = self.cloud.create_server(tok, "vm1").await;
        self.cloud.wait_status(tok, &id, "ACTIVE", T).await;
        attach(&self.cloud, tok, &id, &data).await;
        let data_name = self.cloud.db().await.volume_get(&vid(&data)).await.expect("data").backend_name;
        wait_until("the guest writes the data volume", T, || self.counter(&data_name) >= writes).await;
        let host = self.host_of(admin, &id).await;
        let pid = self.qemu_pid(&host, &id).expect("qemu");
        let idx = self.agent_of(&host);
        VmWithData { id, data_name, host, pid, idx }
    }

    fn agent_of(&self, host: &str) -> usize {
        self.agents.iter().position(|a| a.host == host).expect("agent")
    }

    async fn host_of(&self, admin: &str, id: &str) -> String {
        let (_, v) = self.cloud.call(admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
        v["server"]["OS-EXT-SRV-ATTR:host"].as_str().expect("host").to_string()
    }

    fn vm_dir(&self, host: &str, id: &str) -> PathBuf {
        self.cloud.data_dir.join("hosts").join(host).join("qemu").join(id)
    }

    fn qemu_pid(&self, host: &str, id: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.vm_dir(host, id).join("qemu.pid")).ok()?.trim().parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(id).then_some(pid)
    }

    fn console(&self, host: &str, id: &str) -> String {
        std::fs::read_to_string(self.vm_dir(host, id).join("console.log")).unwrap_or_default()
    }

    /// Sector 0 of a volume as the guest left it: `counter=N tag=T dev=D`.
    fn sector0(&self, backend_name: &str) -> String {
        let target = if self.backend == "rbd" {
            format!("rbd:{}/{backend_name}:conf={}", self.pool, ceph_conf())
        } else {
            self.cloud.data_dir.join("volumes").join(format!("{backend_name}.img")).to_string_lossy().to_string()
        };
        let out = Command::new("qemu-io")
            .args(["-r", "-U", "-f", "raw", &target, "-c", "read -v 0 64"])
            .output()
            .expect("qemu-io");
        assert!(out.status.success(), "qemu-io read: {}", String::from_utf8_lossy(&out.stderr));
        // `read -v` prints "OFFSET:  hex bytes  ascii"; decode the hex columns.
        let mut bytes = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((_, rest)) = line.split_once(':') else { continue };
            for w in rest.split_whitespace().take(16) {
                match u8::from_str_radix(w, 16) {
                    Ok(b) if w.len() == 2 => bytes.push(b),
                    _ => break,
                }
            }
        }
        String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string()
    }

    fn counter(&self, backend_name: &str) -> u64 {
        let s = self.sector0(backend_name);
        s.strip_prefix("counter=")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// `ceph osd blocklist ls`, as text.
fn blocklist() -> String {
    let out = Command::new("ceph").args(["osd", "blocklist", "ls"]).output().expect("ceph");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The last `wrote <dev> N` before the first `write failed <dev>` on the
/// console (the counter at the fence), and how many writes failed.
fn fence_point(console: &str, dev: &str) -> (Option<u64>, usize) {
    let mut last_ok = None;
    let mut failed = 0;
    for line in console.lines() {
        let mut w = line.trim_end_matches('\r').split_whitespace();
        match (w.next(), w.next(), w.next(), w.next()) {
            (Some("wrote"), Some(d), Some(n), None) if d == dev && failed == 0 => last_ok = n.parse().ok(),
            (Some("write"), Some("failed"), Some(d), Some(_)) if d == dev => failed += 1,
            _ => {}
        }
    }
    (last_ok, failed)
}

/// Is `pid` a live process (not gone, not a defunct entry nobody reaped)?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

async fn wait_volume(c: &Cloud, tok: &str, id: &str, status: &str) {
    c.wait_volume(tok, id, status, T).await;
}

/// Wait until the delete's instance action records the host watchdog's kill.
async fn wait_self_fence_event(c: &Cloud, id: &str) -> stratus_db::EventRow {
    let deadline = Instant::now() + T;
    loop {
        // Only a finished event counts: the controller starts and finishes it
        // in two writes, and a reader may land between them.
        let finished = |e: &stratus_db::EventRow| e.event == "compute_self_fence" && e.finish_time.is_some();
        if let Some(e) = delete_events(c, id).await.into_iter().find(finished) {
            return e;
        }
        assert!(Instant::now() < deadline, "self-fence never recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until no zombie and no storage cleanup (fence lift, queued delete)
/// is left, and `also` holds.
async fn wait_released(db: &stratus_db::Datastore, also: impl Fn() -> bool) {
    let deadline = Instant::now() + T;
    loop {
        let zombies = db.zombie_list(None).await.expect("zombies");
        let pending = db.cleanup_pending().await.expect("cleanups");
        if zombies.is_empty() && pending.is_empty() && also() {
            return;
        }
        assert!(Instant::now() < deadline, "not released: zombies {zombies:?} cleanups {pending:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_volume(c: &Cloud, tok: &str, name: &str) -> String {
    let (s, v) =
        c.call(tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "name": name}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["volume"]["id"].as_str().expect("id").to_string();
    wait_volume(c, tok, &id, "available").await;
    id
}

async fn attach(c: &Cloud, tok: &str, server: &str, volume: &str) {
    let (s, v) = c
        .call(
            tok,
            Method::POST,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": volume}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_volume(c, tok, volume, "in-use").await;
}

async fn delete_events(c: &Cloud, id: &str) -> Vec<stratus_db::EventRow> {
    let db = c.db().await;
    let a =
        db.action_list(&sid(id)).await.expect("actions").into_iter().find(|a| a.action == "delete").expect("delete");
    db.action_get(&sid(id), &a.request_id).await.expect("events").1
}

/// Nova's seed problem 1, with a real zombie: the host's agent dies, its
/// qemu keeps writing, the API deletes the server. The storage fence (rbd
/// blocklist / NBD export deletion) must cut the VM off before any volume is
/// released, and the counters on the volumes must never move again.
async fn real_zombie(backend: &str) {
    let qc = QemuCloud::start(backend, false).await;
    let c = &qc.cloud;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let data = create_volume(c, &tok, "data").await;
    let image = c.cirros(&tok).await;
    let t = Instant::now();
    let (s, v) = c.post_bfv_server(&tok, "bfv", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    let shown = c.wait_status(&tok, &id, "ACTIVE", T).await;
    eprintln!("MEASURE {backend}: boot-from-volume POST -> ACTIVE with a real VM: {} ms", t.elapsed().as_millis());
    let root = shown["server"]["os-extended-volumes:volumes_attached"][0]["id"].as_str().expect("root").to_string();
    attach(c, &tok, &id, &data).await;
    let db = c.db().await;
    let root_name = db.volume_get(&vid(&root)).await.expect("root").backend_name;
    let data_name = db.volume_get(&vid(&data)).await.expect("data").backend_name;
    let host = qc.host_of(&admin, &id).await;
    // The storage clients recorded at attach time: for rbd, the qemu's own librbd addresses.
    let clients: Vec<String> = db
        .attachment_list_for_server(&sid(&id))
        .await
        .expect("attachments")
        .into_iter()
        .map(|a| a.client_id.expect("client recorded at attach"))
        .collect();
    assert_eq!(clients.len(), 2, "{clients:?}");
    // The guest writes both disks.
    wait_until("counters advance on both volumes", T, || qc.counter(&root_name) >= 2 && qc.counter(&data_name) >= 2)
        .await;
    let data_dev = qc.sector0(&data_name).split("dev=").nth(1).map(|d| d.trim().to_string()).expect("dev");

    // The host's agent dies; its qemu lives on and keeps writing.
    let pid = qc.qemu_pid(&host, &id).expect("qemu runs");
    let mut qc = qc;
    let idx = qc.agent_of(&host);
    qc.agents[idx].kill9();
    let c = &qc.cloud;
    let before = qc.counter(&data_name);
    wait_until("the zombie keeps writing", Duration::from_secs(10), || qc.counter(&data_name) > before).await;

    let started = Instant::now();
    let (s, _) = c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let took = c.wait_gone(&tok, &id, T).await;
    eprintln!("MEASURE {backend}: DELETE of a real zombie VM's server -> 404 in {} ms", started.elapsed().as_millis());
    assert!(took <= Duration::from_secs(30), "{took:?}");
    assert!(qc.qemu_pid(&host, &id) == Some(pid), "the zombie qemu still runs (its agent is dead)");

    // The fence came before any volume was released. The instance action
    // records the order; the backend proves it: both backends refuse to
    // delete a volume a client still holds (rbd: watchers; local: the NBD
    // export's watcher), so a root volume deleted while its zombie qemu
    // still runs was released only after that qemu's client was fenced.
    let events = delete_events(c, &id).await;
    let pos = |name: &str| events.iter().position(|e| e.event == name).unwrap_or_else(|| panic!("{name}: {events:#?}"));
    assert!(pos("controller_fence_storage") < pos("controller_release_volumes"), "{events:#?}");
    let fence = &events[pos("controller_fence_storage")];
    if backend == "rbd" {
        let bl = blocklist();
        for c in &clients {
            assert!(bl.contains(c.as_str()), "the zombie qemu's client {c} is blocklisted: {bl}");
        }
    }
    let (s, _) = c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "root volume deleted");
    assert!(alive(pid), "…while the zombie qemu holding it still ran");
    assert_eq!(fence.details.as_deref().map(|d| d.matches("fenced client").count()), Some(2), "{events:#?}");
    eprintln!("{backend} fence: {:?}", fence.details);

    // From the fence on, every guest write fails and the counter is frozen.
    wait_until("the guest sees its writes fail", Duration::from_secs(10), || {
        fence_point(&qc.console(&host, &id), &data_dev).1 >= 2
    })
    .await;
    let frozen = qc.counter(&data_name);
    let (last_ok, failed) = fence_point(&qc.console(&host, &id), &data_dev);
    let last_ok = last_ok.expect("writes before the fence");
    // A write in flight at the fence may land without its reply: N or N+1.
    assert!(frozen == last_ok || frozen == last_ok + 1, "counter {frozen} vs last acknowledged write {last_ok}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, failed_later) = fence_point(&qc.console(&host, &id), &data_dev);
    assert!(failed_later > failed, "the zombie keeps trying");
    assert_eq!(qc.counter(&data_name), frozen, "no write lands after the fence");
    eprintln!("MEASURE {backend}: counter frozen at {frozen}; {failed_later} guest writes refused after the fence");

    // The root volume is gone; the data volume is free and holds the frozen counter.
    let (s, _) = c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    wait_volume(c, &tok, &data, "available").await;

    // A new server on the other host reads the frozen counter.
    let other = c.create_server(&tok, "other").await;
    c.wait_status(&tok, &other, "ACTIVE", T).await;
    attach(c, &tok, &other, &data).await;
    let other_host = qc.host_of(&admin, &other).await;
    wait_until("the new VM reads the frozen counter", T, || {
        qc.console(&other_host, &other).lines().any(|l| l.contains("START") && l.contains(&format!("counter={frozen}")))
    })
    .await;

    // The dead host returns: the zombie is gone within a poll interval, fences clear, audit is clean.
    let mut qc = qc;
    qc.agents[idx].restart();
    let restarted = Instant::now();
    let c = &qc.cloud;
    wait_released(&db, || qc.qemu_pid(&host, &id).is_none()).await;
    assert!(!alive(pid), "zombie qemu {pid} ended");
    if backend == "rbd" {
        let bl = blocklist();
        for c in &clients {
            assert!(!bl.contains(c.as_str()), "the fence of {c} is lifted once the zombie is gone: {bl}");
        }
    }
    eprintln!(
        "MEASURE {backend}: restarted agent -> zombie reaped, fences lifted: {} ms",
        restarted.elapsed().as_millis()
    );
    let (clean, report) = c.audit();
    assert!(clean, "{report}");
    let (s, _) = c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{other}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_gone(&tok, &other, T).await;
    wait_volume(c, &tok, &data, "available").await;
    let (s, _) = c.call(&tok, Method::DELETE, &format!("/volume/v3/volumes/{data}"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread")]
async fn real_zombie_vm_is_fenced_on_local_nbd() {
    real_zombie("local").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_zombie_vm_is_fenced_on_real_ceph() {
    real_zombie("rbd").await;
}

#[allow(dead_code)]
fn _unused(_: Value) {}

async fn server_action(c: &Cloud, tok: &str, id: &str, body: Value) {
    let (s, v) = c.call(tok, Method::POST, &format!("/compute/v2.1/servers/{id}/action"), Some(body)).await;
    // 202 for most actions; confirmResize answers 204 and evacuate 200 with
    // the admin password (as Nova does).
    assert!(s == StatusCode::ACCEPTED || s == StatusCode::NO_CONTENT || s == StatusCode::OK, "{s} {v}");
}

/// Counter on a VM's local root disk (vda).
fn root_counter(qc: &QemuCloud, host: &str, id: &str) -> u64 {
    let bytes = std::fs::read(qc.vm_dir(host, id).join("root.raw")).unwrap_or_default();
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_string();
    s.strip_prefix("counter=")
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Host up, as an operator runs it: an agent restart leaves the VMs running
/// and managed (Nova: a nova-compute restart keeps its domains); stop/start
/// act on the real process; DELETE ends the qemu before the 404 and frees
/// the volumes; a SIGSTOPped qemu is killed, and after SIGCONT no write lands.
#[tokio::test(flavor = "multi_thread")]
async fn real_vms_on_a_live_host_survive_agent_restarts_and_delete_cleanly() {
    let mut qc = QemuCloud::start("local", true).await;
    let tok = qc.cloud.demo().await;
    let admin = qc.cloud.admin().await;
    let data = create_volume(&qc.cloud, &tok, "data").await;
    let t = Instant::now();
    let id = qc.cloud.create_server(&tok, "vm1").await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    eprintln!("MEASURE qemu: POST -> ACTIVE (qemu runs, QMP answers): {} ms", t.elapsed().as_millis());
    let host = qc.host_of(&admin, &id).await;
    wait_until("the guest boots and writes its root disk", T, || root_counter(&qc, &host, &id) >= 1).await;
    eprintln!("MEASURE qemu: POST -> first guest write on the root disk: {} ms", t.elapsed().as_millis());
    let (s, v) = qc
        .cloud
        .call(
            &tok,
            Method::POST,
            &format!("/compute/v2.1/servers/{id}/action"),
            Some(json!({"os-getConsoleOutput": {"length": 50}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["output"].as_str().unwrap_or_default().contains("TINY-GUEST READY"), "{v}");
    attach(&qc.cloud, &tok, &id, &data).await;

    // The agent restarts; the VM keeps its process and stays managed.
    let pid = qc.qemu_pid(&host, &id).expect("qemu");
    let idx = qc.agent_of(&host);
    qc.agents[idx].restart();
    qc.wait_hosts_up(&admin).await;
    assert_eq!(qc.qemu_pid(&host, &id), Some(pid), "the VM outlived its agent");
    server_action(&qc.cloud, &tok, &id, json!({"os-stop": null})).await;
    qc.cloud.wait_status(&tok, &id, "SHUTOFF", T).await;
    assert!(!alive(pid), "stop ended the qemu");
    let n = root_counter(&qc, &host, &id);
    server_action(&qc.cloud, &tok, &id, json!({"os-start": null})).await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let pid2 = qc.qemu_pid(&host, &id).expect("a new qemu");
    wait_until("the restarted guest continues its counter", T, || root_counter(&qc, &host, &id) > n).await;

    // Shelve copies the root disk into the image service; unshelve boots from
    // it, so the guest's counter continues (Nova: the shelve snapshot is the disk).
    let n = root_counter(&qc, &host, &id);
    server_action(&qc.cloud, &tok, &id, json!({"shelve": null})).await;
    qc.cloud.wait_status(&tok, &id, "SHELVED_OFFLOADED", T).await;
    assert!(!alive(pid2), "offloaded: no qemu");
    assert!(!qc.vm_dir(&host, &id).exists(), "offloaded: the host's copy is gone");
    server_action(&qc.cloud, &tok, &id, json!({"unshelve": null})).await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let host = qc.host_of(&admin, &id).await;
    // (The shelved disk may hold a write or two after `n`: the guest ran until the power-off.)
    let start_counter = || -> Option<u64> {
        let console = qc.console(&host, &id);
        let line = console.lines().find(|l| l.contains("START vda"))?.to_string();
        line.split("counter=").nth(1)?.trim().parse().ok()
    };
    wait_until("the unshelved guest boots from the shelved disk", T, || start_counter().is_some()).await;
    let resumed_from = start_counter().unwrap_or(0);
    assert!(resumed_from >= n, "the unshelved disk starts at {resumed_from}, the shelved VM had written {n}");
    wait_until("the unshelved VM has its data volume back", T, || qc.console(&host, &id).contains("wrote vdb")).await;
    wait_until("the unshelved guest writes on", T, || root_counter(&qc, &host, &id) > resumed_from).await;

    // Cold migration boots the same disk on the other host (Nova copies the
    // disk to the destination); confirming ends the source copy.
    let before = root_counter(&qc, &host, &id);
    server_action(&qc.cloud, &admin, &id, json!({"migrate": null})).await;
    qc.cloud.wait_status(&admin, &id, "VERIFY_RESIZE", T).await;
    let dest = qc.host_of(&admin, &id).await;
    assert_ne!(dest, host, "migrated to the other host");
    let dest_start = || -> Option<u64> {
        let console = qc.console(&dest, &id);
        let line = console.lines().find(|l| l.contains("START vda"))?.to_string();
        line.split("counter=").nth(1)?.trim().parse().ok()
    };
    wait_until("the migrated guest boots from the carried disk", T, || dest_start().is_some()).await;
    assert!(dest_start().unwrap_or(0) >= before, "the destination disk continues the counter");
    wait_until("the migrated VM writes its data volume too", T, || qc.console(&dest, &id).contains("wrote vdb")).await;
    server_action(&qc.cloud, &admin, &id, json!({"confirmResize": null})).await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    wait_until("the source copy is destroyed", T, || !qc.vm_dir(&host, &id).exists()).await;
    let host = dest;
    let pid2 = qc.qemu_pid(&host, &id).expect("qemu after the migration");

    // DELETE with the host up: the qemu is gone before the 404 is served.
    let started = Instant::now();
    let (s, _) = qc.cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    qc.cloud.wait_gone(&tok, &id, T).await;
    eprintln!("MEASURE qemu: DELETE -> 404 of a running real VM, host up: {} ms", started.elapsed().as_millis());
    assert!(!alive(pid2), "qemu gone once the server is");
    assert!(!qc.vm_dir(&host, &id).exists(), "its directory and root disk are gone");
    wait_volume(&qc.cloud, &tok, &data, "available").await;

    // A SIGSTOPped qemu: DELETE kills it; after SIGCONT (of nothing) no write lands.
    let id = qc.cloud.create_server(&tok, "vm2").await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    attach(&qc.cloud, &tok, &id, &data).await;
    let data_name = qc.cloud.db().await.volume_get(&vid(&data)).await.expect("data").backend_name;
    let before = qc.counter(&data_name);
    wait_until("the guest writes the data volume", T, || qc.counter(&data_name) > before).await;
    let host = qc.host_of(&admin, &id).await;
    let pid = qc.qemu_pid(&host, &id).expect("qemu");
    assert!(Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("kill").success());
    let stopped_at = qc.counter(&data_name);
    let started = Instant::now();
    let (s, _) = qc.cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    qc.cloud.wait_gone(&tok, &id, T).await;
    eprintln!("MEASURE qemu: DELETE -> 404 of a SIGSTOPped VM: {} ms", started.elapsed().as_millis());
    let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!alive(pid), "the stopped qemu was killed");
    assert_eq!(qc.counter(&data_name), stopped_at, "no write after SIGCONT");
    wait_volume(&qc.cloud, &tok, &data, "available").await;
    let (clean, report) = qc.cloud.audit();
    assert!(clean, "{report}");
}

/// Self-fencing: the agent is SIGSTOPped while a real VM runs on a plain
/// local disk (nothing the controller can fence). The host watchdog must stop
/// the VM's writes before the lease expires, and the counter on its disk
/// must never advance after that.
#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_kills_the_vms_of_a_stopped_agent_before_its_lease_expires() {
    let qc = QemuCloud::start("local", true).await;
    let tok = qc.cloud.demo().await;
    let admin = qc.cloud.admin().await;
    let id = qc.cloud.create_server(&tok, "vm1").await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let host = qc.host_of(&admin, &id).await;
    wait_until("the guest writes its root disk", T, || root_counter(&qc, &host, &id) >= 2).await;
    let pid = qc.qemu_pid(&host, &id).expect("qemu");
    let idx = qc.agent_of(&host);
    qc.agents[idx].signal("STOP");
    let stopped = Instant::now();
    // Watch the VM die and the host go down, whichever comes first.
    let mut vm_dead_at = None;
    let mut down_at = None;
    while vm_dead_at.is_none() || down_at.is_none() {
        assert!(stopped.elapsed() < Duration::from_secs(60), "vm dead {vm_dead_at:?} host down {down_at:?}");
        if vm_dead_at.is_none() && !alive(pid) {
            vm_dead_at = Some(stopped.elapsed());
        }
        if down_at.is_none() {
            let (_, v) = qc.cloud.call(&admin, Method::GET, "/compute/v2.1/os-services", None).await;
            let down = v["services"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["host"] == host.as_str() && s["state"] == "down");
            if down {
                down_at = Some(stopped.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (vm_dead_at, down_at) = (vm_dead_at.expect("dead"), down_at.expect("down"));
    eprintln!(
        "MEASURE watchdog: VM killed {} ms after the agent stopped; host seen down after {} ms",
        vm_dead_at.as_millis(),
        down_at.as_millis()
    );
    assert!(vm_dead_at < down_at, "the VM died ({vm_dead_at:?}) before the host's lease expired ({down_at:?})");
    assert!(qc.vm_dir(&host, &id).join("self-fenced").exists(), "the VM is marked self-fenced");
    let frozen = root_counter(&qc, &host, &id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(root_counter(&qc, &host, &id), frozen, "no write after the self-fence");

    // The host is down: the delete is local. When the agent comes back it
    // reports the self-fence, which lands on the delete's instance action,
    // and the reaper removes the dead VM.
    let (s, _) = qc.cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    qc.cloud.wait_gone(&tok, &id, T).await;
    qc.agents[idx].signal("CONT");
    let event = wait_self_fence_event(&qc.cloud, &id).await;
    eprintln!("self-fence event: {:?}", event.details);
    assert!(event.details.as_deref().unwrap_or_default().contains("paused and killed"), "{event:?}");
    wait_until("the reaper removes the dead VM", T, || !qc.vm_dir(&host, &id).exists()).await;
    let (clean, report) = qc.cloud.audit();
    assert!(clean, "{report}");
}

/// The two fences back each other up: the agent is killed (so the delete
/// takes the local path at once, on "no responder") while the watchdog is
/// on. The storage fence cuts the zombie off first; the watchdog, which
/// needs no agent, still kills the zombie before the lease would expire;
/// the returning host reports the self-fence, and the delete's instance
/// action says which fence acted first.
#[tokio::test(flavor = "multi_thread")]
async fn storage_fence_and_watchdog_both_act_on_a_dead_agents_zombie() {
    let mut qc = QemuCloud::start("local", true).await;
    let tok = qc.cloud.demo().await;
    let admin = qc.cloud.admin().await;
    let VmWithData { id, data_name, host, pid, idx } = qc.vm_with_data(&tok, &admin, 1).await;
    qc.agents[idx].kill9();
    let killed = Instant::now();
    let (s, _) = qc.cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    qc.cloud.wait_gone(&tok, &id, T).await;
    assert!(alive(pid), "the storage fence came first: the zombie still runs at the 404");
    let frozen = qc.counter(&data_name);
    wait_until("the watchdog kills the zombie of the dead agent", Duration::from_secs(30), || !alive(pid)).await;
    eprintln!("MEASURE watchdog: zombie killed {} ms after its agent died", killed.elapsed().as_millis());
    assert_eq!(qc.counter(&data_name), frozen, "no write after the storage fence");
    qc.agents[idx].restart();
    let event = wait_self_fence_event(&qc.cloud, &id).await;
    eprintln!("self-fence event: {:?}", event.details);
    assert!(event.details.as_deref().unwrap_or_default().contains("the storage fence acted first"), "{event:?}");
    wait_until("the reaper removes the dead VM", T, || !qc.vm_dir(&host, &id).exists()).await;
    let db = qc.cloud.db().await;
    wait_released(&db, || true).await;
    let (clean, report) = qc.cloud.audit();
    assert!(clean, "{report}");
}

/// Evacuation with a live zombie: the source host's agent is dead and its
/// qemu still writes the data volume. Evacuating (Nova: allowed once the
/// host is down) must fence the zombie's client before the destination
/// opens the volume; the new VM continues from the frozen counter, the
/// zombie's writes fail, and the returning host reaps the zombie and gets
/// its fences lifted.
#[tokio::test(flavor = "multi_thread")]
async fn evacuation_fences_the_zombie_before_the_new_host_opens_the_volumes() {
    let mut qc = QemuCloud::start("local", false).await;
    let tok = qc.cloud.demo().await;
    let admin = qc.cloud.admin().await;
    let VmWithData { id, data_name, host, pid, idx } = qc.vm_with_data(&tok, &admin, 2).await;
    qc.agents[idx].kill9();
    qc.cloud.force_down(&admin, &host, true).await;
    server_action(&qc.cloud, &admin, &id, json!({"evacuate": {"onSharedStorage": false}})).await;
    qc.cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let dest = qc.host_of(&admin, &id).await;
    assert_ne!(dest, host);
    assert!(alive(pid), "the zombie still runs (its agent is dead)");
    // The zombie was cut off; the new VM starts from what the zombie last wrote.
    wait_until("the zombie's writes fail", T, || fence_point(&qc.console(&host, &id), "vdb").1 >= 1).await;
    let (last_ok, _) = fence_point(&qc.console(&host, &id), "vdb");
    let last_ok = last_ok.expect("the zombie wrote before the fence");
    let start = || -> Option<u64> {
        let console = qc.console(&dest, &id);
        let line = console.lines().find(|l| l.contains("START vdb"))?.to_string();
        line.split("counter=").nth(1)?.trim().parse().ok()
    };
    wait_until("the evacuated VM opens the data volume", T, || start().is_some()).await;
    let from = start().unwrap_or(0);
    assert!(from == last_ok || from == last_ok + 1, "new VM starts at {from}, zombie's last write {last_ok}");
    wait_until("the evacuated VM writes on", T, || qc.counter(&data_name) > from).await;
    // The source host comes back: it reaps the zombie; the fence is lifted.
    qc.cloud.force_down(&admin, &host, false).await;
    qc.agents[idx].restart();
    let db = qc.cloud.db().await;
    wait_released(&db, || !alive(pid)).await;
    let (clean, report) = qc.cloud.audit();
    assert!(clean, "{report}");
}
