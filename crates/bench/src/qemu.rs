//! `--workload qemu`: the same questions asked of real VMs. Every server is
//! a real qemu running the tiny guest (it writes `counter=N tag=T dev=vdX`
//! to sector 0 of every disk once a second and logs `wrote vdX N` /
//! `write failed vdX N` on its console), run by a `stratus compute --driver
//! qemu` agent process joined to `stratus up --fake-hosts 0` over a NATS
//! server. Each part runs on a fresh cloud with one agent (`compute-1`):
//!
//! - `boot`: POST /servers → ACTIVE (qemu runs, QMP answers) and POST → the
//!   guest's first write on its root disk (sector 0 of
//!   `<data>/hosts/<host>/qemu/<id>/root.raw`), one server at a time.
//! - `rss`: with `--rss-vms` real VMs running, VmRSS / VmHWM of the agent
//!   and of `stratus up`, and the qemu processes' summed RSS.
//! - `delete_live_host`: DELETE → 404 of each running VM, one at a time,
//!   and whether its qemu was gone by the 404.
//! - `zombie_<backend>` (watchdog off, so the zombie lives until the storage
//!   fence): a boot-from-volume server with a data volume, its agent
//!   SIGKILLed (the qemu keeps writing), DELETE → 404 and DELETE → fence.
//!   The fence time is the `controller_fence_storage` event's finish time
//!   minus the DELETE's send time; the event is read from the datastore,
//!   because the API (unlike Nova from 2.21 on) hides the actions of deleted
//!   servers. The controller stamps every event of a delete at its final
//!   commit, so that figure is an upper bound; the controller's own log line
//!   (`storage client fenced`) gives the moment the fence call returned, and
//!   the event's details the storage-side duration of each fence.

use crate::api::Api;
use crate::cloud::{Cloud, CloudSpec};
use crate::stats::{ms, status_kib, summary};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The host every part runs its VMs on.
const HOST: &str = "compute-1";

/// A volume backend the zombie part runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Files under the data dir, served over NBD; fenced by deleting the export.
    Local,
    /// Ceph RBD; fenced by blocklisting the client.
    Rbd,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Rbd => "rbd",
        }
    }
}

/// Settings of the qemu workload.
pub struct QemuSpec<'a> {
    pub bin: &'a Path,
    pub guest_dir: &'a Path,
    pub ceph_conf: Option<&'a Path>,
    pub backends: Vec<Backend>,
    /// Servers booted one at a time and measured.
    pub vms: usize,
    /// VMs running while RSS is read.
    pub rss_vms: usize,
    /// Zombie deletes per backend.
    pub zombie_samples: usize,
    pub startup_timeout: Duration,
    /// Give up on any wait (ACTIVE, first write, 404) after this.
    pub timeout: Duration,
    pub admin_pw: &'a str,
    pub demo_pw: &'a str,
}

/// A nats-server on a free loopback port, logging into the data dir (so the
/// cloud's cleanup, which ends every process naming that dir, ends it too).
pub(crate) struct Nats {
    child: Child,
    pub(crate) url: String,
}

impl Nats {
    pub(crate) fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("nats-server is not installed (scripts/test installs it: apt-get install nats-server)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("free port")?.port();
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-l"])
            .arg(data_dir.join("nats.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start nats-server")?;
        let me = Self { child, url: format!("nats://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `stratus compute --driver qemu` agent process.
struct Agent {
    child: Option<Child>,
    bin: PathBuf,
    nats_url: String,
    state_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Agent {
    fn spawn(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.state_dir)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.state_dir.join("agent.log"))?;
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("STRATUS_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["compute", "--host", HOST, "--nats-url", &self.nats_url, "--state-dir"])
            .arg(&self.state_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        self.child = Some(cmd.spawn().with_context(|| format!("cannot start {} compute", self.bin.display()))?);
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("agent.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cloud of one API+controller process and one qemu agent.
struct Session {
    // Drop order: the agent, then the cloud (which ends every process naming
    // its data dir and removes it), then NATS.
    agent: Agent,
    cloud: Cloud,
    _nats: Nats,
    demo: Api,
    admin: Api,
    db: Option<stratus_db::Datastore>,
}

impl Session {
    async fn start(spec: &QemuSpec<'_>, backend: Backend, watchdog: bool) -> anyhow::Result<Self> {
        let data_dir = std::env::temp_dir().join(format!("stratus-bench-qemu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let nats = match Nats::start(&data_dir) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&data_dir);
                return Err(e);
            }
        };
        let ceph_conf = match backend {
            Backend::Rbd => {
                Some(spec.ceph_conf.context("the rbd backend needs --ceph-conf (or CEPH_CONF)")?.display().to_string())
            }
            Backend::Local => None,
        };
        let mut env: Vec<(String, String)> = vec![
            ("STRATUS_ADMIN_PASSWORD".into(), spec.admin_pw.into()),
            ("STRATUS_DEMO_PASSWORD".into(), spec.demo_pw.into()),
            ("STRATUS_QUOTA_INSTANCES".into(), "-1".into()),
            ("STRATUS_QUOTA_CORES".into(), "-1".into()),
            ("STRATUS_QUOTA_RAM".into(), "-1".into()),
            ("STRATUS_FAKE_HOSTS".into(), "0".into()),
            ("STRATUS_NATS_URL".into(), nats.url.clone()),
            ("STRATUS_DRIVER".into(), "qemu".into()),
            ("STRATUS_GUEST_DIR".into(), spec.guest_dir.display().to_string()),
            ("STRATUS_VOLUME_BACKEND".into(), backend.name().into()),
            ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL".into(), "1".into()),
            // The fence timing is read from the controller's info lines.
            ("STRATUS_LOG".into(), "info,sqlx=warn".into()),
        ];
        if let Some(c) = &ceph_conf {
            env.push(("STRATUS_CEPH_CONF".into(), c.clone()));
        }
        let cloud = Cloud::start(&CloudSpec {
            bin: spec.bin,
            env,
            log_file: None,
            startup_timeout: spec.startup_timeout,
            data_dir: Some(data_dir.clone()),
        })?;
        let mut agent_env: Vec<(String, String)> = vec![
            ("STRATUS_DATA_DIR".into(), data_dir.display().to_string()),
            ("STRATUS_VOLUME_BACKEND".into(), backend.name().into()),
            ("STRATUS_DRIVER".into(), "qemu".into()),
            ("STRATUS_WATCHDOG".into(), watchdog.to_string()),
            ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL".into(), "1".into()),
            ("STRATUS_LOG".into(), "info".into()),
        ];
        if let Some(c) = &ceph_conf {
            agent_env.push(("STRATUS_CEPH_CONF".into(), c.clone()));
        }
        let mut agent = Agent {
            child: None,
            bin: spec.bin.to_path_buf(),
            nats_url: nats.url.clone(),
            state_dir: data_dir.join("hosts").join(HOST),
            env: agent_env,
        };
        agent.spawn()?;
        let demo = Api::login(&cloud.url, "demo", spec.demo_pw, "demo").await?;
        let admin = Api::login(&cloud.url, "admin", spec.admin_pw, "admin").await?;
        let me = Self { agent, cloud, _nats: nats, demo, admin, db: None };
        me.wait_host_up(spec.timeout).await?;
        Ok(me)
    }

    fn data_dir(&self) -> &Path {
        self.cloud.data_dir()
    }

    /// Waits until `compute-1` is `up` in `os-services`.
    async fn wait_host_up(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, _, v) = self.admin.request(Method::GET, "/compute/v2.1/os-services", None, None).await?;
            let up = v["services"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["binary"] == "nova-compute" && s["host"] == HOST && s["state"] == "up");
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("host {HOST} not up after {timeout:?}: {v}\nagent log:\n{}", self.agent.log_tail(20));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn vm_dir(&self, id: &str) -> PathBuf {
        self.data_dir().join("hosts").join(HOST).join("qemu").join(id)
    }

    /// The VM's qemu pid, if that process runs (its command line names the server).
    fn qemu_pid(&self, id: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.vm_dir(id).join("qemu.pid")).ok()?.trim().parse().ok()?;
        alive(pid).then_some(())?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(id).then_some(pid)
    }

    /// Has the guest written its root disk (sector 0 starts with `counter=`)?
    fn root_written(&self, id: &str) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 16];
        std::fs::File::open(self.vm_dir(id).join("root.raw"))
            .and_then(|mut f| f.read_exact(&mut buf))
            .map(|()| buf.starts_with(b"counter="))
            .unwrap_or(false)
    }

    fn console(&self, id: &str) -> String {
        std::fs::read_to_string(self.vm_dir(id).join("console.log")).unwrap_or_default()
    }

    async fn create_server(&self, body: Value) -> anyhow::Result<String> {
        let (s, _, v) = self.demo.request(Method::POST, "/compute/v2.1/servers", Some(body), None).await?;
        if s != StatusCode::ACCEPTED {
            bail!("POST /servers returned {s}: {v}");
        }
        v["server"]["id"].as_str().map(str::to_string).with_context(|| format!("POST /servers: no id in {v}"))
    }

    /// Polls `GET /servers/{id}` until `status`; returns the server.
    async fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, _, v) = self.demo.request(Method::GET, &format!("/compute/v2.1/servers/{id}"), None, None).await?;
            let now = v["server"]["status"].as_str().unwrap_or_default();
            if s == StatusCode::OK && now == status {
                return Ok(v);
            }
            if now == "ERROR" {
                bail!("server {id} went ERROR: {}", v["server"]["fault"]);
            }
            if Instant::now() > deadline {
                bail!("server {id} not {status} after {timeout:?} ({s}: {v})\nagent log:\n{}", self.agent.log_tail(20));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// DELETE, then poll `GET /servers/{id}` until 404. Returns the DELETE's
    /// request id, its send time (wall clock), its latency and the time to 404.
    async fn delete_until_gone(&self, id: &str, timeout: Duration) -> anyhow::Result<Deleted> {
        let sent_at = Utc::now();
        let start = Instant::now();
        let path = format!("/compute/v2.1/servers/{id}");
        let (s, request_id, v) = self.demo.request(Method::DELETE, &path, None, None).await?;
        let latency = start.elapsed();
        if s != StatusCode::NO_CONTENT {
            bail!("DELETE {path} returned {s}: {v}");
        }
        loop {
            let (s, _, v) = self.demo.request(Method::GET, &path, None, None).await?;
            if s == StatusCode::NOT_FOUND {
                return Ok(Deleted { request_id, sent_at, latency, to_404: start.elapsed() });
            }
            if v["server"]["status"] == "ERROR" {
                bail!("server {id} went ERROR while being deleted: {}", v["server"]["fault"]);
            }
            if start.elapsed() > timeout {
                bail!("server {id} still there {timeout:?} after its DELETE: {v}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_volume(&self, id: &str, status: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, _, v) = self.demo.request(Method::GET, &format!("/volume/v3/volumes/{id}"), None, None).await?;
            if v["volume"]["status"] == status {
                return Ok(());
            }
            if v["volume"]["status"] == "error" || Instant::now() > deadline {
                bail!("volume {id} not {status}: {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The delete action's events, from the datastore (the API hides the
    /// actions of deleted servers).
    async fn delete_events(&mut self, id: &str, request_id: Option<&str>) -> anyhow::Result<Vec<stratus_db::EventRow>> {
        if self.db.is_none() {
            let path = self.data_dir().join("stratus.db");
            self.db = Some(
                stratus_db::Datastore::open_sqlite(&path).await.with_context(|| format!("open {}", path.display()))?,
            );
        }
        let db = self.db.as_ref().context("datastore")?;
        let sid: stratus_types::ServerId = id.parse().map_err(|e| anyhow::anyhow!("server id {id}: {e:?}"))?;
        let request_id = match request_id {
            Some(r) => r.to_string(),
            None => db
                .action_list(&sid)
                .await?
                .into_iter()
                .find(|a| a.action == "delete")
                .map(|a| a.request_id)
                .context("no delete action")?,
        };
        Ok(db.action_get(&sid, &request_id).await?.1)
    }

    /// Resident memory of every process of this cloud, by kind.
    fn rss(&self, vm_ids: &[String]) -> anyhow::Result<Value> {
        let kib = |pid: u32, key: &str| status_kib(&pid.to_string(), key).unwrap_or(0);
        let proc_mem =
            |pid: u32| json!({"pid": pid, "vm_rss_mib": mib(kib(pid, "VmRSS")), "vm_hwm_mib": mib(kib(pid, "VmHWM"))});
        let agent = self.agent.pid().context("agent not running")?;
        let qemu: Vec<u32> = vm_ids.iter().filter_map(|id| self.qemu_pid(id)).collect();
        let qemu_kib: u64 = qemu.iter().map(|p| kib(*p, "VmRSS")).sum();
        // Other helpers of the host (watchdog, storage daemons) name the data dir.
        let dir = self.data_dir().to_string_lossy().to_string();
        let mut others: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
        for e in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if pid == agent || pid == self.cloud.pid || qemu.contains(&pid) {
                continue;
            }
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
            let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
            if !args.iter().any(|a| a.contains(&dir)) {
                continue;
            }
            let exe = args.first().and_then(|a| a.rsplit('/').next()).unwrap_or("?").to_string();
            let kind = match args.get(1).map(String::as_str) {
                Some(sub @ ("watchdog" | "compute" | "up")) if exe == "stratus" => format!("stratus {sub}"),
                _ => exe,
            };
            let entry = others.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += kib(pid, "VmRSS");
        }
        Ok(json!({
            "vms_running": qemu.len(),
            "agent": proc_mem(agent),
            "stratus_up": proc_mem(self.cloud.pid),
            "qemu": {"processes": qemu.len(), "sum_vm_rss_mib": mib(qemu_kib), "mean_vm_rss_mib": mib(qemu_kib / qemu.len().max(1) as u64)},
            "other_processes": others.iter().map(|(k, (n, kib))| (k.clone(), json!({"processes": n, "sum_vm_rss_mib": mib(*kib)}))).collect::<serde_json::Map<String, Value>>(),
        }))
    }
}

/// A finished DELETE.
struct Deleted {
    request_id: Option<String>,
    sent_at: DateTime<Utc>,
    latency: Duration,
    to_404: Duration,
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// Is `pid` a live process (not gone, not an unreaped zombie entry)?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(start.elapsed())
}

/// `wrote <dev> N` lines of a console: (count, distinct devices).
fn writes(console: &str) -> (usize, std::collections::BTreeSet<String>) {
    let mut n = 0;
    let mut devs = std::collections::BTreeSet::new();
    for line in console.lines() {
        let mut w = line.trim_end_matches('\r').split_whitespace();
        if let (Some("wrote"), Some(d), Some(_)) = (w.next(), w.next(), w.next()) {
            n += 1;
            devs.insert(d.to_string());
        }
    }
    (n, devs)
}

/// Every `in N ms` of an event's details (one per fenced client).
fn fence_ms(details: &str) -> Vec<u64> {
    details
        .split("; ")
        .filter(|l| l.starts_with("fenced client"))
        .filter_map(|l| l.rsplit_once(" in ").and_then(|(_, r)| r.strip_suffix(" ms")).and_then(|n| n.parse().ok()))
        .collect()
}

/// Removes ANSI escape sequences (the log may be colored).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Timestamps of the controller's `storage client fenced` lines for `id`.
fn fence_log_times(log: &Path, id: &str) -> Vec<DateTime<Utc>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(strip_ansi)
        .filter(|l| l.contains("storage client fenced") && l.contains(id))
        .filter_map(|l| l.split_whitespace().next().and_then(|t| DateTime::parse_from_rfc3339(t).ok()))
        .map(|t| t.with_timezone(&Utc))
        .collect()
}

fn since(later: DateTime<Utc>, earlier: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or(Duration::ZERO)
}

/// Parts 1, 2 and 4: boot one at a time, RSS with `rss_vms` running, then
/// delete them one at a time on the live host.
async fn live_host(spec: &QemuSpec<'_>) -> anyhow::Result<(Value, Value, Value)> {
    let s = Session::start(spec, Backend::Local, true).await.context("starting the live-host cloud")?;
    let idle = s.rss(&[])?;
    let image = s.demo.cirros().await?;
    let t = spec.timeout;
    let mut ids = Vec::new();
    let (mut to_active, mut to_write, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..spec.vms {
        let start = Instant::now();
        let id = s
            .create_server(json!({"server": {"name": format!("boot-{i}"), "imageRef": image, "flavorRef": "1"}}))
            .await?;
        s.wait_status(&id, "ACTIVE", t).await?;
        let active = start.elapsed();
        wait_until(&format!("server {id}'s guest writes its root disk"), t, || s.root_written(&id)).await?;
        let written = start.elapsed();
        eprintln!(
            "stratus-bench: boot {i}: ACTIVE {} ms, first root write {} ms",
            active.as_millis(),
            written.as_millis()
        );
        samples.push(json!({"id": id, "post_to_active_ms": ms(active), "post_to_first_write_ms": ms(written)}));
        to_active.push(active);
        to_write.push(written);
        ids.push(id);
    }
    let boot = json!({
        "count": spec.vms,
        "concurrency": 1,
        "note": "one server at a time; earlier ones keep running",
        "post_to_active_ms": summary(&to_active),
        "post_to_first_write_ms": summary(&to_write),
        "samples": samples,
    });

    // Fill up to rss_vms, all at once, and wait until every guest writes.
    let mut extra = Vec::new();
    for i in ids.len()..spec.rss_vms {
        extra.push(
            s.create_server(json!({"server": {"name": format!("rss-{i}"), "imageRef": image, "flavorRef": "1"}}))
                .await?,
        );
    }
    for id in &extra {
        s.wait_status(id, "ACTIVE", t).await?;
        wait_until(&format!("server {id}'s guest writes its root disk"), t, || s.root_written(id)).await?;
    }
    ids.extend(extra);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut rss = s.rss(&ids)?;
    rss["agent_idle_before_vms"] = idle["agent"].clone();
    rss["stratus_up_idle_before_vms"] = idle["stratus_up"].clone();
    eprintln!(
        "stratus-bench: {} VMs running: agent {} MiB, stratus up {} MiB, qemu sum {} MiB",
        rss["vms_running"], rss["agent"]["vm_rss_mib"], rss["stratus_up"]["vm_rss_mib"], rss["qemu"]["sum_vm_rss_mib"]
    );

    let (mut latencies, mut to_404, mut qemu_gone) = (Vec::new(), Vec::new(), 0usize);
    for id in &ids {
        let pid = s.qemu_pid(id).with_context(|| format!("server {id}'s qemu is not running"))?;
        let d = s.delete_until_gone(id, t).await?;
        if !alive(pid) {
            qemu_gone += 1;
        }
        latencies.push(d.latency);
        to_404.push(d.to_404);
    }
    let delete = json!({
        "count": ids.len(),
        "concurrency": 1,
        "note": "one at a time, each with the remaining VMs still running; 404 polled every 10 ms",
        "delete_latency_ms": summary(&latencies),
        "time_to_404_ms": summary(&to_404),
        "qemu_gone_by_the_404": qemu_gone,
    });
    Ok((boot, delete, rss))
}

/// Part 3 on one backend: real zombies (agent SIGKILLed, qemu running) deleted.
async fn zombies(spec: &QemuSpec<'_>, backend: Backend) -> anyhow::Result<Value> {
    let mut s =
        Session::start(spec, backend, false).await.with_context(|| format!("starting the {} cloud", backend.name()))?;
    let image = s.demo.cirros().await?;
    let t = spec.timeout;
    let (mut to_404, mut to_fence_event, mut to_fence_logged, mut storage_ms, mut bfv_active) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut samples = Vec::new();
    for i in 0..spec.zombie_samples {
        let (st, _, v) = s
            .demo
            .request(
                Method::POST,
                "/volume/v3/volumes",
                Some(json!({"volume": {"size": 1, "name": format!("data-{i}")}})),
                None,
            )
            .await?;
        if st != StatusCode::ACCEPTED {
            bail!("POST /volumes returned {st}: {v}");
        }
        let data = v["volume"]["id"].as_str().context("volume id")?.to_string();
        s.wait_volume(&data, "available", t).await?;
        let bdm = json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}]);
        let start = Instant::now();
        let id = s
            .create_server(json!({"server": {"name": format!("zombie-{i}"), "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bdm}}))
            .await?;
        s.wait_status(&id, "ACTIVE", t).await?;
        bfv_active.push(start.elapsed());
        let (st, _, v) = s
            .demo
            .request(
                Method::POST,
                &format!("/compute/v2.1/servers/{id}/os-volume_attachments"),
                Some(json!({"volumeAttachment": {"volumeId": data}})),
                None,
            )
            .await?;
        if st != StatusCode::OK {
            bail!("attach returned {st}: {v}");
        }
        s.wait_volume(&data, "in-use", t).await?;
        wait_until(&format!("server {id}'s guest writes both disks"), t, || writes(&s.console(&id)).1.len() >= 2)
            .await?;
        let pid = s.qemu_pid(&id).context("qemu not running")?;

        // The agent dies; its qemu lives on and keeps writing.
        s.agent.kill9();
        let before = writes(&s.console(&id)).0;
        let kept_writing =
            wait_until("the zombie keeps writing", Duration::from_secs(10), || writes(&s.console(&id)).0 > before)
                .await
                .is_ok();
        let d = s.delete_until_gone(&id, t).await?;
        let zombie_alive_at_404 = alive(pid);
        let events = s.delete_events(&id, d.request_id.as_deref()).await?;
        let fence = events.iter().find(|e| e.event == "controller_fence_storage");
        let fence_finish = fence.and_then(|e| e.finish_time).map(|f| since(f, d.sent_at));
        let details = fence.and_then(|e| e.details.clone()).unwrap_or_default();
        let per_client = fence_ms(&details);
        let logged = fence_log_times(s.cloud.log_path(), &id).into_iter().max().map(|f| since(f, d.sent_at));
        let refused = wait_until("the zombie's writes fail", Duration::from_secs(10), || {
            s.console(&id).lines().any(|l| l.starts_with("write failed"))
        })
        .await
        .is_ok();
        eprintln!(
            "stratus-bench: {} zombie {i}: DELETE->404 {} ms, ->fence event {:?} ms, ->fence logged {:?} ms, storage {per_client:?} ms",
            backend.name(),
            d.to_404.as_millis(),
            fence_finish.map(|f| f.as_millis()),
            logged.map(|f| f.as_millis())
        );
        to_404.push(d.to_404);
        if let Some(f) = fence_finish {
            to_fence_event.push(f);
        }
        if let Some(f) = logged {
            to_fence_logged.push(f);
        }
        storage_ms.extend(per_client.iter().map(|m| Duration::from_millis(*m)));
        samples.push(json!({
            "id": id,
            "zombie_kept_writing_after_agent_kill": kept_writing,
            "zombie_alive_at_404": zombie_alive_at_404,
            "zombie_writes_refused_after_fence": refused,
            "delete_latency_ms": ms(d.latency),
            "time_to_404_ms": ms(d.to_404),
            "delete_to_fence_event_finish_ms": fence_finish.map(ms),
            "delete_to_fence_logged_ms": logged.map(ms),
            "storage_fence_ms": per_client,
            "events": events.iter().map(|e| json!({"event": e.event, "start": e.start_time.to_rfc3339(), "finish": e.finish_time.map(|f| f.to_rfc3339()), "details": e.details})).collect::<Vec<_>>(),
        }));

        // The agent returns and reaps its zombie before the next sample.
        s.agent.spawn()?;
        let reaped = wait_until("the returning agent reaps the zombie", t, || !alive(pid)).await?;
        if let Some(x) = samples.last_mut() {
            x["zombie_reaped_after_agent_restart_ms"] = json!(ms(reaped));
        }
        s.wait_host_up(t).await?;
    }
    Ok(json!({
        "backend": backend.name(),
        "count": spec.zombie_samples,
        "watchdog": false,
        "note": "boot-from-volume server + data volume; agent SIGKILLed, qemu keeps running; DELETE at once. \
                 The fence event's finish time is stamped at the delete's final commit (an upper bound); \
                 the controller's `storage client fenced` log line is when the fence call returned; \
                 storage_fence_ms is the backend's fence duration per client from the event's details.",
        "boot_from_volume_post_to_active_ms": summary(&bfv_active),
        "time_to_404_ms": summary(&to_404),
        "delete_to_fence_event_finish_ms": summary(&to_fence_event),
        "delete_to_fence_logged_ms": summary(&to_fence_logged),
        "storage_fence_ms": summary(&storage_ms),
        "samples": samples,
    }))
}

fn qemu_version() -> Option<String> {
    let o = Command::new("qemu-system-x86_64").arg("--version").output().ok()?;
    String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string)
}

/// Runs every part; returns the `workloads` object and facts for `settings`.
pub async fn run(spec: &QemuSpec<'_>) -> anyhow::Result<(Value, Value)> {
    for f in ["vmlinuz", "initrd.img"] {
        if !spec.guest_dir.join(f).is_file() {
            bail!(
                "{} has no {f}: build the tiny guest with scripts/guest/build-tiny-guest.sh DIR and pass --guest-dir DIR (or STRATUS_GUEST_DIR)",
                spec.guest_dir.display()
            );
        }
    }
    if spec.backends.contains(&Backend::Rbd) && spec.ceph_conf.is_none() {
        bail!(
            "--backend rbd needs --ceph-conf FILE (or CEPH_CONF); start a cluster with scripts/ceph/start-single-node.sh"
        );
    }
    let mut w = serde_json::Map::new();
    eprintln!("stratus-bench: qemu: boot, RSS and delete on a live host");
    let (boot, delete, rss) = live_host(spec).await?;
    w.insert("boot".into(), boot);
    w.insert("rss".into(), rss);
    w.insert("delete_live_host".into(), delete);
    for b in &spec.backends {
        eprintln!("stratus-bench: qemu: zombie deletes on {}", b.name());
        w.insert(format!("zombie_{}", b.name()), zombies(spec, *b).await?);
    }
    let facts = json!({
        "qemu": qemu_version(),
        "guest_dir": spec.guest_dir.display().to_string(),
        "host": HOST,
        "flavor": "1",
        "image": "cirros (the tiny guest's kernel + initrd)",
        "vms": spec.vms,
        "rss_vms": spec.rss_vms,
        "zombie_samples": spec.zombie_samples,
        "backends": spec.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        "ceph_conf": spec.ceph_conf.map(|c| c.display().to_string()),
    });
    Ok((Value::Object(w), facts))
}

/// The short table of a qemu report.
pub fn table(report: &Value) -> String {
    let f = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x:.0}"),
        None => "-".into(),
    };
    let q = |v: &Value| format!("{} / {}", f(&v["p50"]), f(&v["max"]));
    let w = &report["workloads"];
    let mut out = String::new();
    out.push_str(&format!("{:<44} {:>5} {:>16}\n", "real VMs (qemu, tiny guest)", "n", "ms p50 / max"));
    let mut row = |name: &str, n: &Value, v: &Value| out.push_str(&format!("{name:<44} {n:>5} {:>16}\n", q(v)));
    row("boot: POST -> ACTIVE", &w["boot"]["count"], &w["boot"]["post_to_active_ms"]);
    row("boot: POST -> first guest write", &w["boot"]["count"], &w["boot"]["post_to_first_write_ms"]);
    row("live host: DELETE -> 404", &w["delete_live_host"]["count"], &w["delete_live_host"]["time_to_404_ms"]);
    for b in ["local", "rbd"] {
        let z = &w[format!("zombie_{b}")];
        if z.is_null() {
            continue;
        }
        row(&format!("zombie ({b}): DELETE -> 404"), &z["count"], &z["time_to_404_ms"]);
        row(&format!("zombie ({b}): DELETE -> fence event finish"), &z["count"], &z["delete_to_fence_event_finish_ms"]);
        row(&format!("zombie ({b}): DELETE -> fence logged"), &z["count"], &z["delete_to_fence_logged_ms"]);
        row(
            &format!("zombie ({b}): storage fence per client"),
            &z["storage_fence_ms"]["samples"],
            &z["storage_fence_ms"],
        );
    }
    let r = &w["rss"];
    out.push_str(&format!(
        "RSS with {} VMs: agent {} MiB (HWM {}), stratus up {} MiB (HWM {}), qemu sum {} MiB\n",
        r["vms_running"],
        r["agent"]["vm_rss_mib"],
        r["agent"]["vm_hwm_mib"],
        r["stratus_up"]["vm_rss_mib"],
        r["stratus_up"]["vm_hwm_mib"],
        r["qemu"]["sum_vm_rss_mib"]
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_storage_fence_durations_from_event_details() {
        let d = "fenced client 10.0.0.1:0/123 of volume a in 12 ms; client x of volume b already fenced; fenced client nbd:exp-1 of volume c in 3 ms";
        assert_eq!(fence_ms(d), vec![12, 3]);
        assert!(fence_ms("").is_empty());
    }

    #[test]
    fn counts_guest_writes_per_device() {
        let c = "START counter=0\r\nwrote vda 1\r\nwrote vdb 1\nwrite failed vdb 2\nwrote vda 2\n";
        let (n, devs) = writes(c);
        assert_eq!(n, 3);
        assert_eq!(devs.into_iter().collect::<Vec<_>>(), vec!["vda".to_string(), "vdb".to_string()]);
    }

    #[test]
    fn reads_fence_times_from_a_colored_log() {
        let dir = std::env::temp_dir().join(format!("bench-log-{}", uuid::Uuid::new_v4()));
        let log = dir.join("s.log");
        std::fs::create_dir_all(&dir).ok();
        let text = "\u{1b}[2m2025-01-02T03:04:05.250000Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m storage client fenced \u{1b}[3mserver\u{1b}[0m\u{1b}[2m=\u{1b}[0mabc ms=3\n\
                    2025-01-02T03:04:05.100000Z  INFO storage client fenced server=other ms=1\n";
        std::fs::write(&log, text).ok();
        let times = fence_log_times(&log, "abc");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(times.len(), 1);
        assert_eq!(times[0].to_rfc3339(), "2025-01-02T03:04:05.250+00:00");
    }
}
