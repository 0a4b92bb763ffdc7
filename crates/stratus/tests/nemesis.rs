//! Issue 13: a randomized nemesis. A concurrent workload (create, stop and
//! start, delete, plain and boot-from-volume servers, data volumes attached,
//! detached and read back, an admin evacuating servers of a faulted host)
//! runs against real
//! processes (`stratus up` holding the API and the controller, two `stratus
//! compute` agents, each in a network namespace of its own on a private
//! bridge, nats-server) while a seeded random schedule injects faults one
//! after another: SIGKILL and SIGSTOP of an agent, an agent cut off or
//! falsely up (its fault switches), real network cuts of a host (its link
//! down; its packets to and from NATS dropped by nftables), a host forced down, nats-server
//! SIGKILLed and restarted or SIGSTOPped, the control process SIGSTOPped or
//! SIGKILLed and restarted. On Ceph (agents in the root namespace) the
//! network cuts give way to OSD pauses and to a VM's storage client (rbd
//! holder) SIGKILLed or SIGSTOPped; in the split layout the control plane
//! is `stratus api` and two `stratus controller` processes, each of which
//! is SIGKILLed or SIGSTOPped. Every request and its answer is recorded; a
//! checker then verifies, for the schedule:
//!
//! - every acknowledged DELETE is 404 within the delete bound
//!   (`min(terminate_timeout, lease_ttl) + 5 s`) timed from its *send*,
//!   extended only by the time the control plane itself (the control
//!   process, NATS) or the storage (the Ceph OSD) was down or stopped while
//!   it waited, or by an adoption per fault of one of two controllers: a
//!   host fault never extends it;
//! - the mechanism (each delete's instance action): a server whose host no
//!   fault touched, with the control plane whole, is deleted by its host
//!   (remote path); one whose host was forced down throughout, locally;
//! - once every fault is healed, everything converges: no server, volume, zombie,
//!   queued storage cleanup, open operation or VM left; quota usage zero;
//!   `stratus audit` clean;
//! - each deleted server has one `instance.delete.start` and one `.end`;
//! - a data volume, whose fake guest writes a sequence-numbered block every
//!   100 ms, is released within a minute of its server's delete and, read
//!   back from the storage directly, does not change after its release
//!   (whatever the old host still runs was fenced or ended);
//! - effects, counted by the recording layer (`stratus-effects`: every
//!   process appends each VM, volume and storage-client effect to one file):
//!   no VM spawned or destroyed twice in a row on a host, no volume created
//!   twice, no attempt of an operation repeating a completed storage call;
//!   every VM spawned is destroyed, every volume created is deleted, every
//!   fence is lifted after it was last applied, every client
//!   opened is closed or died with its process; and no fence is lifted
//!   before its client ended (closed, or its process was SIGKILLed).
//!
//! `STRATUS_NEMESIS_FAULTS` (e.g. `agent-sigkill,ceph-osd-sigstop`) limits
//! the draw to those kinds, for a soak of one scenario.
//! `STRATUS_NEMESIS_SEED` (default 1) picks the first seed,
//! `STRATUS_NEMESIS_CEPH_SCHEDULES` (default 1) and
//! `STRATUS_NEMESIS_SPLIT_SCHEDULES` (default 1) how many schedules run on
//! Ceph and with the control plane split into `stratus api` and two
//! `stratus controller` processes,
//! `STRATUS_NEMESIS_SCHEDULES` (default 2, what CI runs) how many schedules
//! run (seed, seed + 1, ...), `STRATUS_NEMESIS_SECS` (default 20) how long
//! each one injects faults. The soak is the same test with many schedules;
//! it prints one line per schedule and a table of results.
//!
//! Nova's reference: `compute/api.py` `_delete` (local delete only when the
//! service is down; a falsely-up or hung host leaves the server `deleting`
//! until the host returns), which the per-delete bound rules out here.

mod common;

use common::netns::{Net, NsHost};
use common::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Short timings, so a schedule sees many deadlines and lease lapses.
const LEASE_TTL: f64 = 4.0;
const ACK: f64 = 1.5;
const TERMINATE: f64 = 2.5;
/// `min(terminate_timeout, lease_ttl) + 5 s`.
const DELETE_BOUND: Duration = Duration::from_millis(((TERMINATE * 1000.0) as u64) + 5000);
/// Added to the bound per restart of the control process (it starts, the
/// runner adopts its operations) and per NATS restart (clients reconnect).
const RESTART_ALLOWANCE: Duration = Duration::from_secs(5);
/// Operation claims lapse after this long (`STRATUS_OP_CLAIM_TTL`).
const CLAIM_TTL: u64 = 3;
/// Added to the bound per fault of one of two controllers, whatever its
/// length: the claim lapses, the other controller adopts the operation.
const ADOPTION_ALLOWANCE: Duration = Duration::from_secs(CLAIM_TTL + 3);
/// Clients running the workload at once.
const CLIENTS: usize = 3;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A deterministic generator (xorshift64*): the schedule is a function of the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// One fault of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    AgentKilled(usize),
    AgentStopped(usize),
    AgentCutOff(usize),
    AgentFalselyUp(usize),
    /// A real cut: the host's veth goes down (nothing in or out).
    AgentLinkDown(usize),
    /// A real cut: nftables in the host's namespace silently drops its
    /// traffic to and from the NATS port (connections stall, none refused).
    AgentNatsDropped(usize),
    HostForcedDown(usize),
    NatsKilled,
    /// nats-server SIGSTOPped: connections stay open, nothing moves.
    NatsStopped,
    /// The process holding the API (and, in the one-process layout, the
    /// controller) SIGSTOPped or SIGKILLed.
    ControlStopped,
    ControlKilled,
    /// One of the two `stratus controller` processes (split layout).
    ControllerStopped(usize),
    ControllerKilled(usize),
    /// Ceph's OSD SIGSTOPped: every read and write of a volume stalls.
    OsdPaused,
    /// A VM's storage client process (rbd's holder) SIGKILLed or
    /// SIGSTOPped: a qemu crashing or hanging on its own.
    ClientKilled,
    ClientStopped,
}

/// How a schedule's cloud is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `stratus up` (API and controller in one process), local volumes,
    /// agents in network namespaces.
    Local,
    /// As `Local`, on the single-node Ceph (agents in the root namespace).
    Ceph,
    /// `stratus api` and two `stratus controller` processes sharing the
    /// database, local volumes, agents in network namespaces.
    Split,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ceph => "Ceph",
            Self::Split => "split: API + 2 controllers",
        }
    }
}

impl Fault {
    /// A fault drawn from `rng`. On Ceph the agents share the root network
    /// namespace (the single-node Ceph listens on loopback only), so the
    /// network cuts give way to pauses of the OSD.
    fn pick(rng: &mut Rng, layout: Layout) -> Self {
        let host = rng.below(2) as usize;
        // Every layout: the agents, the hosts, NATS and the control process.
        let mut kinds: Vec<fn(usize) -> Self> = vec![
            Self::AgentKilled,
            Self::AgentStopped,
            Self::AgentCutOff,
            Self::AgentFalselyUp,
            Self::HostForcedDown,
            |_| Self::NatsKilled,
            |_| Self::NatsStopped,
            |_| Self::ControlStopped,
            |_| Self::ControlKilled,
        ];
        match layout {
            Layout::Ceph => kinds.extend([
                (|_| Self::OsdPaused) as fn(usize) -> Self,
                |_| Self::ClientKilled,
                |_| Self::ClientStopped,
            ]),
            // Real network cuts where the hosts have namespaces of their own.
            Layout::Local => kinds.extend([Self::AgentLinkDown as fn(usize) -> Self, Self::AgentNatsDropped]),
            // Each controller is drawn as often as the API process.
            Layout::Split => kinds.extend([
                Self::AgentLinkDown as fn(usize) -> Self,
                Self::AgentNatsDropped,
                Self::ControllerStopped,
                Self::ControllerKilled,
                Self::ControllerStopped,
                Self::ControllerKilled,
            ]),
        }
        // A scenario soak draws only the kinds `STRATUS_NEMESIS_FAULTS` names.
        let wanted = std::env::var("STRATUS_NEMESIS_FAULTS").unwrap_or_default();
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
        let candidates: Vec<Self> = kinds
            .iter()
            .map(|k| k(host))
            .filter(|f| wanted.is_empty() || wanted.contains(&f.slug().as_str()))
            .collect();
        assert!(
            !candidates.is_empty(),
            "STRATUS_NEMESIS_FAULTS={wanted:?} names no fault of this backend (names: {:?})",
            kinds.iter().map(|k| k(0).slug()).collect::<Vec<_>>()
        );
        candidates[rng.below(candidates.len() as u64) as usize]
    }

    /// The kind as `STRATUS_NEMESIS_FAULTS` names it (`agent-sigkill`, ...).
    fn slug(&self) -> String {
        self.kind().to_lowercase().replace(' ', "-")
    }

    /// The fault's kind, for the results table.
    fn kind(&self) -> &'static str {
        match self {
            Self::AgentKilled(_) => "agent SIGKILL",
            Self::AgentStopped(_) => "agent SIGSTOP",
            Self::AgentCutOff(_) => "agent cut off",
            Self::AgentFalselyUp(_) => "agent falsely up",
            Self::AgentLinkDown(_) => "host link down",
            Self::AgentNatsDropped(_) => "host-NATS packets dropped",
            Self::HostForcedDown(_) => "host forced down",
            Self::NatsKilled => "nats-server SIGKILL",
            Self::NatsStopped => "nats-server SIGSTOP",
            Self::ControlStopped => "control SIGSTOP",
            Self::ControlKilled => "control SIGKILL",
            Self::ControllerStopped(_) => "controller SIGSTOP",
            Self::ControllerKilled(_) => "controller SIGKILL",
            Self::OsdPaused => "Ceph OSD SIGSTOP",
            Self::ClientKilled => "storage client SIGKILL",
            Self::ClientStopped => "storage client SIGSTOP",
        }
    }

    /// The host it takes away, if any.
    fn host(&self) -> Option<usize> {
        match *self {
            Self::AgentKilled(i)
            | Self::AgentStopped(i)
            | Self::AgentCutOff(i)
            | Self::AgentFalselyUp(i)
            | Self::AgentLinkDown(i)
            | Self::AgentNatsDropped(i)
            | Self::HostForcedDown(i) => Some(i),
            _ => None,
        }
    }

    /// Does it take the control plane or the storage away (so waits for it
    /// may be longer)? A host fault never does.
    fn control_plane(&self) -> bool {
        matches!(
            self,
            Self::NatsKilled | Self::NatsStopped | Self::ControlStopped | Self::ControlKilled | Self::OsdPaused
        )
    }

    /// Does it take one of two controllers away? The other one adopts its
    /// operations once their claims lapse, so a delete waits at most that
    /// long more, however long the fault lasts.
    fn one_controller(&self) -> bool {
        matches!(self, Self::ControllerStopped(_) | Self::ControllerKilled(_))
    }
}

/// Where the API is now (a restarted control process listens on a new port).
#[derive(Clone)]
struct Api {
    url: Arc<RwLock<String>>,
    http: Client,
    token: String,
}

impl Api {
    /// One call; `None` when no answer came (the process is down or stopped).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Option<(StatusCode, Value)> {
        let url = self.url.read().map(|u| u.clone()).unwrap_or_default();
        let mut rb = self.http.request(method, format!("{url}{path}")).header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.timeout(Duration::from_secs(3)).send().await.ok()?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// Where the cloud keeps its volumes, for reading them back directly.
#[derive(Clone, Debug)]
enum Storage {
    /// The local backend's directory of volume files.
    Local(std::path::PathBuf),
    /// A Ceph pool of the schedule's own, and the OSD to pause.
    Ceph { conf: String, pool: String, osd: u32 },
}

/// Read the first `len` bytes of an RBD image read-only, with librbd's
/// Python binding (installed with Ceph).
const RBD_READ: &str = "import rados, rbd, sys\n\
c = rados.Rados(conffile=sys.argv[1]); c.connect()\n\
io = c.open_ioctx(sys.argv[2])\n\
im = rbd.Image(io, sys.argv[3], read_only=True)\n\
sys.stdout.buffer.write(im.read(0, int(sys.argv[4])))\n\
im.close(); io.close(); c.shutdown()\n";

impl Storage {
    /// The first guest block of volume `vol`, read from the storage itself
    /// (async: a read stalls while the OSD is paused, and must not hold a
    /// runtime thread the nemesis needs to heal it).
    async fn first_block(&self, vol: &str) -> std::io::Result<Vec<u8>> {
        let len = stratus_compute::GUEST_BLOCK;
        match self {
            Self::Local(dir) => {
                use std::io::Read;
                let mut b = vec![0u8; len];
                std::fs::File::open(dir.join(format!("volume-{vol}.img"))).and_then(|mut f| f.read_exact(&mut b))?;
                Ok(b)
            }
            Self::Ceph { conf, pool, .. } => {
                let read = tokio::process::Command::new(stratus_blockstore::rbd::DEFAULT_PYTHON)
                    .args(["-c", RBD_READ, conf, pool, &format!("volume-{vol}"), &len.to_string()])
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(Duration::from_secs(60), read)
                    .await
                    .map_err(|_| std::io::Error::other("no answer from Ceph within 60 s"))??;
                if !out.status.success() || out.stdout.len() != len {
                    return Err(std::io::Error::other(String::from_utf8_lossy(&out.stderr).to_string()));
                }
                Ok(out.stdout)
            }
        }
    }

    /// The Ceph OSD's pid, from the cluster directory the configuration
    /// file lives in (`scripts/ceph/start-single-node.sh` layout).
    fn osd_pid(conf: &str) -> u32 {
        let dir = std::path::Path::new(conf).parent().expect("the Ceph cluster directory");
        let pid = std::fs::read_to_string(dir.join("run").join("osd.0.pid")).expect("osd.0.pid");
        pid.trim().parse().expect("a pid")
    }
}

/// What happened to one DELETE, as the client saw it.
#[derive(Clone, Debug)]
struct DeleteRecord {
    server: String,
    /// When the acknowledged DELETE (204) was sent.
    sent: Instant,
    /// When GET first answered 404.
    gone: Option<Instant>,
}

/// A fault as injected: what, and from when to when.
#[derive(Clone, Debug)]
struct Injected {
    fault: Fault,
    from: Instant,
    to: Instant,
}

#[derive(Default)]
struct History {
    deletes: Vec<DeleteRecord>,
    /// Processes SIGKILLed: (pid, Unix ms once reaped).
    killed: Vec<(u32, u64)>,
    faults: Vec<Injected>,
    created: Vec<String>,
    /// Requests that got no answer (and were retried).
    unanswered: usize,
    /// Data volumes read back after their server's delete released them,
    /// and how many of those held a guest write.
    readbacks: usize,
    readbacks_written: usize,
    /// What the readbacks found wrong.
    readback_violations: Vec<String>,
    /// Data volumes detached (and read back) before their server's delete.
    detaches: usize,
    /// Evacuations the API accepted (of servers on a faulted host).
    evacuations: usize,
}

/// The outcome of one schedule.
struct Outcome {
    seed: u64,
    faults: BTreeMap<&'static str, usize>,
    deletes: usize,
    /// Deletes whose mechanism the faults decide (and was checked).
    mechanisms: usize,
    /// Effects recorded and checked, by kind.
    effects: BTreeMap<String, usize>,
    /// Data volumes read back after release (and how many held a guest write).
    readbacks: (usize, usize),
    /// Detaches and evacuations done.
    detaches: usize,
    evacuations: usize,
    /// Longest DELETE → 404 from the send, and its allowed bound.
    worst: (Duration, Duration),
    violations: Vec<String>,
}

/// DELETE `id` until acknowledged (204, or 404: already gone), then poll
/// until 404; record it.
async fn delete(api: &Api, id: &str, history: &Arc<Mutex<History>>) {
    let path = format!("/compute/v2.1/servers/{id}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let sent = loop {
        let sent = Instant::now();
        match api.call(Method::DELETE, &path, None).await {
            Some((StatusCode::NO_CONTENT, _)) => break sent,
            Some((StatusCode::NOT_FOUND, _)) => return,
            Some((StatusCode::CONFLICT, _)) => {} // locked in a task: try again
            Some((s, v)) if s.is_server_error() || s == StatusCode::SERVICE_UNAVAILABLE => {
                eprintln!("nemesis: DELETE {id}: {s} {v}");
            }
            Some((s, v)) => panic!("DELETE {id}: unexpected {s} {v}"),
            None => history.lock().expect("history").unanswered += 1,
        }
        assert!(Instant::now() < deadline, "DELETE {id} never acknowledged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut rec = DeleteRecord { server: id.to_string(), sent, gone: None };
    while Instant::now() < deadline {
        if let Some((StatusCode::NOT_FOUND, _)) = api.call(Method::GET, &path, None).await {
            rec.gone = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    history.lock().expect("history").deletes.push(rec);
}

/// Create a 1 GiB data volume and attach it to `server`; the volume's id,
/// and whether it got attached (`None`: not even created).
async fn attach_data_volume(api: &Api, server: &str, name: &str) -> Option<(String, bool)> {
    let body = json!({"volume": {"size": 1, "name": name}});
    let vol = match api.call(Method::POST, "/volume/v3/volumes", Some(body)).await {
        Some((StatusCode::ACCEPTED, v)) => v["volume"]["id"].as_str()?.to_string(),
        // No answer (the API died or stalled mid-request): the volume may
        // exist all the same. Look it up by its name, as a client that
        // retries would, so that it is deleted like the others.
        None => find_volume(api, name).await?,
        Some(_) => return None,
    };
    let path = format!("/volume/v3/volumes/{vol}");
    let status = |want: &'static str| {
        let (api, path) = (api.clone(), path.clone());
        async move {
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Some((StatusCode::OK, v)) = api.call(Method::GET, &path, None).await
                    && v["volume"]["status"] == want
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    if !status("available").await {
        return Some((vol, false));
    }
    let body = json!({"volumeAttachment": {"volumeId": vol}});
    let attached = matches!(
        api.call(Method::POST, &format!("/compute/v2.1/servers/{server}/os-volume_attachments"), Some(body)).await,
        Some((StatusCode::OK, _))
    ) && status("in-use").await;
    Some((vol, attached))
}

/// The id of the volume named `name`, looked up for 30 s. An empty list is
/// not yet an answer: when the API was paused (SIGSTOP) the unanswered create
/// and this lookup resume together, and the lookup may run first; only a
/// volume still unlisted 5 s after the API answers again counts as never made.
async fn find_volume(api: &Api, name: &str) -> Option<String> {
    let until = Instant::now() + Duration::from_secs(30);
    let mut answering_since: Option<Instant> = None;
    while Instant::now() < until {
        if let Some((StatusCode::OK, v)) = api.call(Method::GET, &format!("/volume/v3/volumes?name={name}"), None).await
        {
            if let Some(id) = v["volumes"].as_array().and_then(|a| a.first()).and_then(|f| f["id"].as_str()) {
                return Some(id.to_string());
            }
            let since = *answering_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                return None;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Detach data volume `vol` from `server`; true once it is `available`.
async fn detach(api: &Api, server: &str, vol: &str) -> bool {
    let path = format!("/compute/v2.1/servers/{server}/os-volume_attachments/{vol}");
    if !matches!(api.call(Method::DELETE, &path, None).await, Some((StatusCode::ACCEPTED, _))) {
        return false;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Some((StatusCode::OK, v)) = api.call(Method::GET, &format!("/volume/v3/volumes/{vol}"), None).await
            && v["volume"]["status"] == "available"
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The admin who evacuates: while a host fault is on (`faulted`), now and
/// then evacuate a server of that host (Nova's `evacuate`, which the API
/// accepts only while the host's service is down), racing the clients'
/// deletes of the same servers.
async fn evacuator(api: Api, faulted: Arc<Mutex<Option<String>>>, until: Instant, history: Arc<Mutex<History>>) {
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(host) = faulted.lock().expect("faulted").clone() else { continue };
        let Some((StatusCode::OK, v)) = api.call(Method::GET, "/compute/v2.1/servers/detail?all_tenants=1", None).await
        else {
            continue;
        };
        // The newest idle server of the host (the clients' servers are short-lived).
        let on_host = v["servers"].as_array().into_iter().flatten().find(|s| {
            s["OS-EXT-SRV-ATTR:host"] == host.as_str()
                && s["status"] == "ACTIVE"
                && s["OS-EXT-STS:task_state"].is_null()
        });
        if let Some(id) = on_host.and_then(|s| s["id"].as_str()) {
            let body = json!({"evacuate": {"onSharedStorage": false}});
            // Refused while the host still counts as up, or the server is busy: try again later.
            if let Some((StatusCode::OK | StatusCode::ACCEPTED, _)) =
                api.call(Method::POST, &format!("/compute/v2.1/servers/{id}/action"), Some(body)).await
            {
                history.lock().expect("history").evacuations += 1;
            }
        }
    }
}

/// Once data volume `vol` is detached or its server deleted: wait until the
/// volume is released (`available`), read its first block from the storage
/// directly, twice, 1.5 s apart: a released volume must not change (every
/// writer the old host may still run was fenced or ended). Then delete it.
async fn read_back(api: &Api, vol: &str, attached: bool, storage: &Storage, history: &Arc<Mutex<History>>) {
    let path = format!("/volume/v3/volumes/{vol}");
    let until = Instant::now() + Duration::from_secs(60);
    let mut released = false;
    while Instant::now() < until {
        if let Some((StatusCode::OK, v)) = api.call(Method::GET, &path, None).await
            && v["volume"]["status"] == "available"
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if attached && released {
        let first = storage.first_block(vol).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = storage.first_block(vol).await;
        let text = |b: &std::io::Result<Vec<u8>>| match b {
            Ok(b) => String::from_utf8_lossy(b).trim_end_matches('\0').trim().to_string(),
            Err(e) => format!("unreadable: {e}"),
        };
        let mut h = history.lock().expect("history");
        h.readbacks += 1;
        if text(&first).starts_with("stratus-guest-write") {
            h.readbacks_written += 1;
        }
        if first.is_err() || text(&first) != text(&second) {
            let v = format!("volume {vol} changed after its release: {:?} then {:?}", text(&first), text(&second));
            h.readback_violations.push(v);
        }
    } else if attached {
        let v = format!("data volume {vol} not released within 60 s of its server's delete");
        history.lock().expect("history").readback_violations.push(v);
    }
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        match api.call(Method::DELETE, &path, None).await {
            Some((StatusCode::ACCEPTED | StatusCode::NOT_FOUND, _)) => return,
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// One client: create a server (boot from volume one time in three), wait
/// for it to be ACTIVE (or give up on it), stop and start it now and then,
/// delete it; until `until`.
async fn client(api: Api, image: String, storage: Storage, until: Instant, seed: u64, history: Arc<Mutex<History>>) {
    let mut rng = Rng::new(seed);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let body = if rng.below(3) == 0 {
            let bdm = json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}]);
            json!({"server": {"name": format!("n{seed}-{n}"), "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bdm}})
        } else {
            json!({"server": {"name": format!("n{seed}-{n}"), "imageRef": image, "flavorRef": "1"}})
        };
        let id = match api.call(Method::POST, "/compute/v2.1/servers", Some(body)).await {
            Some((StatusCode::ACCEPTED, v)) => v["server"]["id"].as_str().expect("id").to_string(),
            // No answer (the control process is down): the create may or may
            // not be recorded; the end checks list what is left.
            _ => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        history.lock().expect("history").created.push(id.clone());
        // Wait for ACTIVE a while; a build that fails (ERROR) or takes too
        // long under the faults is deleted all the same.
        let path = format!("/compute/v2.1/servers/{id}");
        let wait_until = Instant::now() + Duration::from_secs(8);
        let mut active = false;
        while Instant::now() < wait_until {
            match api.call(Method::GET, &path, None).await {
                Some((StatusCode::OK, v)) if v["server"]["status"] == "ACTIVE" => {
                    active = true;
                    break;
                }
                Some((StatusCode::OK, v)) if v["server"]["status"] == "ERROR" => break,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        // One server in three gets a data volume its guest writes to.
        let data = if active && rng.below(3) == 0 {
            attach_data_volume(&api, &id, &format!("d{seed}-{n}")).await
        } else {
            None
        };
        if active && rng.below(3) == 0 {
            for action in ["os-stop", "os-start"] {
                let mut body = serde_json::Map::new();
                body.insert(action.to_string(), Value::Null);
                let _ = api.call(Method::POST, &format!("{path}/action"), Some(Value::Object(body))).await;
                tokio::time::sleep(rng.millis(100, 800)).await;
            }
        }
        // One server in three lives a few seconds (so faults and the
        // evacuator find it), the others are deleted at once.
        let life = if rng.below(3) == 0 { rng.millis(2000, 6000) } else { rng.millis(0, 500) };
        tokio::time::sleep(life).await;
        // Half the data volumes are detached first: read back once detached.
        let data = match data {
            Some((vol, true)) if rng.below(2) == 0 && detach(&api, &id, &vol).await => {
                history.lock().expect("history").detaches += 1;
                read_back(&api, &vol, true, &storage, &history).await;
                None
            }
            other => other,
        };
        delete(&api, &id, &history).await;
        if let Some((vol, attached)) = data {
            read_back(&api, &vol, attached, &storage, &history).await;
        }
    }
}

struct Rig {
    /// The effect log every process of the cloud appends to.
    effects: std::path::PathBuf,
    storage: Storage,
    nats: Nats,
    cloud: Cloud,
    agents: Vec<AgentProc>,
    url: Arc<RwLock<String>>,
    admin: String,
    demo: String,
    /// Each agent's network namespace on the test bridge (dropped after the
    /// agents: the bridge and namespaces go last); none on Ceph.
    hosts: Vec<NsHost>,
    _net: Option<Net>,
    layout: Layout,
    /// The split layout's `stratus controller` processes (`None` while
    /// killed), and the environment they start with.
    controllers: Vec<Option<std::process::Child>>,
    controller_env: Vec<(String, String)>,
    /// The storage client process a `ClientStopped` fault stopped.
    stopped_client: Option<u32>,
}

async fn rig(layout: Layout) -> Rig {
    let ceph = layout == Layout::Ceph;
    // Each agent runs in a network namespace of its own on a private bridge,
    // so a host can really be cut off; nats-server listens on the bridge.
    // (Not on Ceph: the single-node cluster listens on loopback only.)
    let net = (!ceph).then(Net::create);
    let nats = match &net {
        Some(net) => Nats::start_at(&net.gateway),
        None => Nats::start(),
    };
    let effects = std::env::temp_dir().join(format!("stratus-nemesis-effects-{}.jsonl", uuid::Uuid::new_v4()));
    let effects_env = effects.to_string_lossy().to_string();
    let timings = [
        (stratus_effects::ENV, effects_env),
        ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1".to_string()),
        // Each fake VM writes a sequence-numbered block to its volumes.
        ("STRATUS_FAKE_GUEST_WRITE_INTERVAL", "0.1".to_string()),
        ("STRATUS_LEASE_TTL", LEASE_TTL.to_string()),
        ("STRATUS_LEASE_RENEW_INTERVAL", "0.5".to_string()),
        ("STRATUS_TERMINATE_ACK_TIMEOUT", ACK.to_string()),
        ("STRATUS_TERMINATE_TIMEOUT", TERMINATE.to_string()),
        ("STRATUS_LEADER_TTL", "1".to_string()),
        ("STRATUS_OP_CLAIM_TTL", CLAIM_TTL.to_string()),
        ("STRATUS_LOG", "info".to_string()),
        // A spawn a falsely-up host acknowledged waits this long for its
        // result (the create's own deadline), within the convergence wait.
        ("STRATUS_BUILD_TIMEOUT", "10".to_string()),
        // A volume delete cut short (the control process SIGKILLed while the
        // OSD stalls it) is queued again after this long, within the
        // convergence wait.
        ("STRATUS_VOLUME_STALE_AFTER", "10".to_string()),
    ];
    // The storage: the local backend, or a Ceph pool of this schedule's own.
    let ceph = ceph.then(|| {
        let conf = std::env::var("CEPH_CONF").unwrap_or_else(|_| {
            panic!("CEPH_CONF is not set: run the tests with scripts/test, which starts a single-node Ceph")
        });
        let osd = Storage::osd_pid(&conf);
        (conf, ceph_pool(), osd)
    });
    let mut storage_env: Vec<(&str, &str)> = vec![("STRATUS_VOLUME_BACKEND", "local")];
    if let Some((conf, pool, _)) = &ceph {
        storage_env = vec![
            ("STRATUS_VOLUME_BACKEND", "rbd"),
            ("STRATUS_CEPH_CONF", conf.as_str()),
            ("STRATUS_CEPH_POOL", pool.as_str()),
        ];
    }
    let mut env: Vec<(&str, &str)> = timings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend(storage_env.iter().copied());
    let cloud = match layout {
        Layout::Split => Cloud::start_api(&["--nats-url", nats.url.as_str()], &env).await,
        _ => Cloud::start_with_args(&["--fake-hosts", "0", "--nats-url", nats.url.as_str()], &env).await,
    };
    let controller_env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let controllers: Vec<Option<std::process::Child>> = match layout {
        Layout::Split => (0..2).map(|i| Some(start_controller(&cloud, &nats, &controller_env, i))).collect(),
        _ => Vec::new(),
    };
    let data_dir = cloud.data_dir.to_string_lossy().to_string();
    let mut agent_env = env.clone();
    agent_env.push(("STRATUS_DATA_DIR", data_dir.as_str()));
    let storage = match &ceph {
        Some((conf, pool, osd)) => Storage::Ceph { conf: conf.clone(), pool: pool.clone(), osd: *osd },
        None => Storage::Local(cloud.data_dir.join("volumes")),
    };
    let hosts: Vec<NsHost> = net.iter().flat_map(|n| [n.add_host(), n.add_host()]).collect();
    let agents: Vec<AgentProc> = ["compute-1", "compute-2"]
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let ns = hosts.get(i).map(|n| n.ns.as_str());
            AgentProc::start_in(ns, h, &nats, cloud.data_dir.join("hosts").join(h), &agent_env)
        })
        .collect();
    let admin = cloud.admin().await;
    let demo = cloud.demo().await;
    let db = cloud.db().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.service_list().await.expect("services").iter().filter(|s| s.is_up()).count() < 2 {
        assert!(Instant::now() < deadline, "the agents never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = Arc::new(RwLock::new(cloud.url.clone()));
    Rig {
        effects,
        storage,
        nats,
        cloud,
        agents,
        url,
        admin,
        demo,
        hosts,
        _net: net,
        layout,
        controllers,
        controller_env,
        stopped_client: None,
    }
}

/// Start controller `i` of the split layout (`ctl-0`, `ctl-1`: a restarted
/// one takes its own claims back at once).
fn start_controller(cloud: &Cloud, nats: &Nats, env: &[(String, String)], i: usize) -> std::process::Child {
    let id = format!("ctl-{i}");
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("STRATUS_CONTROLLER_ID", id.as_str()));
    cloud.start_controller(nats, &env)
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Never leave the shared Ceph paused (a panic may come mid-fault).
        if let Storage::Ceph { osd, .. } = self.storage {
            let _ = std::process::Command::new("kill").arg("-CONT").arg(osd.to_string()).status();
        }
        if let Some(pid) = self.stopped_client.take() {
            let _ = std::process::Command::new("kill").arg("-CONT").arg(pid.to_string()).status();
        }
        // A child process is not ended when its handle drops.
        for c in self.controllers.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Rig {
    fn signal_osd(&self, sig: &str) {
        if let Storage::Ceph { osd, .. } = self.storage {
            let st = std::process::Command::new("kill").arg(format!("-{sig}")).arg(osd.to_string()).status();
            assert!(st.map(|s| s.success()).unwrap_or(false), "kill -{sig} ceph-osd");
        }
    }

    fn control_pid(&self) -> u32 {
        self.cloud.child.as_ref().expect("control process").id()
    }

    fn controller_pid(&self, i: usize) -> Option<u32> {
        self.controllers.get(i).and_then(|c| c.as_ref()).map(|c| c.id())
    }

    fn signal(pid: u32, sig: &str) {
        let st = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "kill -{sig} {pid}");
    }

    /// A storage client process that runs now and was not closed (from the
    /// effect log), drawn with `rng`; none on a backend without them.
    fn live_client(&self, rng: &mut Rng) -> Option<u32> {
        let effects = stratus_effects::read(&self.effects).unwrap_or_default();
        let closed: std::collections::HashSet<&str> =
            effects.iter().filter(|e| e.effect == "client.close").map(|e| e.target.as_str()).collect();
        let live: Vec<u32> = effects
            .iter()
            .filter(|e| e.effect == "client.open" && !closed.contains(e.target.as_str()))
            .filter_map(|e| e.client_pid)
            .filter(|pid| running(*pid))
            .collect();
        (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
    }

    fn signal_control(&self, sig: &str) {
        let st = std::process::Command::new("kill").arg(format!("-{sig}")).arg(self.control_pid().to_string()).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "kill -{sig} control");
    }

    async fn force_down(&self, host: usize, on: bool) {
        let api = Api { url: self.url.clone(), http: Client::new(), token: self.admin.clone() };
        let body = json!({"host": self.agents[host].host, "binary": "nova-compute", "forced_down": on});
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = self.url.read().map(|u| u.clone()).unwrap_or_default();
            let r = api
                .http
                .put(format!("{url}/compute/v2.1/os-services/force-down"))
                .header("X-Auth-Token", &api.token)
                .header("OpenStack-API-Version", "compute 2.11")
                .json(&body)
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            if matches!(&r, Ok(resp) if resp.status() == StatusCode::OK) {
                return;
            }
            assert!(Instant::now() < deadline, "force-down {on} never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Inject `f`; the pid it SIGKILLed, if any, and when it was reaped.
    async fn inject(&mut self, f: Fault, rng: &mut Rng) -> Option<(u32, u64)> {
        let client = matches!(f, Fault::ClientKilled | Fault::ClientStopped).then(|| self.live_client(rng)).flatten();
        if matches!(f, Fault::ClientKilled | Fault::ClientStopped) {
            eprintln!(
                "NEMESIS {}: {}",
                f.kind(),
                client.map_or("no storage client runs now".into(), |p| format!("process {p}"))
            );
        }
        let killed = match f {
            Fault::AgentKilled(i) => Some(self.agents[i].pid() as u32),
            Fault::ControlKilled => Some(self.control_pid()),
            Fault::ControllerKilled(i) => self.controller_pid(i),
            Fault::ClientKilled => client,
            _ => None,
        };
        match f {
            Fault::AgentKilled(i) => self.agents[i].kill9(),
            Fault::AgentStopped(i) => self.agents[i].signal("STOP"),
            Fault::AgentCutOff(i) => self.agents[i].signal("USR2"),
            Fault::AgentFalselyUp(i) => self.agents[i].signal("USR1"),
            Fault::AgentLinkDown(i) => self.hosts[i].link_down(),
            Fault::AgentNatsDropped(i) => self.hosts[i].cut_port(self.nats.port()),
            Fault::HostForcedDown(i) => self.force_down(i, true).await,
            Fault::NatsKilled => self.nats.kill(),
            Fault::NatsStopped => Self::signal(self.nats.pid(), "STOP"),
            Fault::ControlStopped => self.signal_control("STOP"),
            Fault::ControlKilled => self.cloud.kill(),
            Fault::ControllerStopped(i) => {
                if let Some(pid) = self.controller_pid(i) {
                    Self::signal(pid, "STOP");
                }
            }
            Fault::ControllerKilled(i) => {
                if let Some(mut c) = self.controllers[i].take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Fault::OsdPaused => self.signal_osd("STOP"),
            // A holder may end on its own meanwhile (its VM was deleted).
            Fault::ClientKilled => {
                if let Some(pid) = client {
                    let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while running(pid) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            Fault::ClientStopped => {
                if let Some(pid) = client {
                    let _ = std::process::Command::new("kill").arg("-STOP").arg(pid.to_string()).status();
                    self.stopped_client = Some(pid);
                }
            }
        }
        killed.map(|pid| (pid, stratus_effects::now_ms()))
    }

    async fn heal(&mut self, f: Fault) {
        match f {
            Fault::AgentKilled(i) => self.agents[i].restart(),
            Fault::AgentStopped(i) => self.agents[i].signal("CONT"),
            Fault::AgentCutOff(i) => self.agents[i].signal("USR2"),
            Fault::AgentFalselyUp(i) => self.agents[i].signal("USR1"),
            Fault::AgentLinkDown(i) => self.hosts[i].link_up(),
            Fault::AgentNatsDropped(i) => self.hosts[i].heal_ports(),
            Fault::HostForcedDown(i) => self.force_down(i, false).await,
            Fault::NatsKilled => self.nats.start_again(),
            Fault::NatsStopped => Self::signal(self.nats.pid(), "CONT"),
            Fault::ControlStopped => self.signal_control("CONT"),
            Fault::ControllerStopped(i) => {
                if let Some(pid) = self.controller_pid(i) {
                    Self::signal(pid, "CONT");
                }
            }
            Fault::ControllerKilled(i) => {
                self.controllers[i] = Some(start_controller(&self.cloud, &self.nats, &self.controller_env, i));
            }
            Fault::ClientKilled => {}
            Fault::ClientStopped => {
                if let Some(pid) = self.stopped_client.take() {
                    let _ = std::process::Command::new("kill").arg("-CONT").arg(pid.to_string()).status();
                }
            }
            Fault::ControlKilled => {
                self.cloud.restart().await;
                if let Ok(mut u) = self.url.write() {
                    *u = self.cloud.url.clone();
                }
            }
            Fault::OsdPaused => self.signal_osd("CONT"),
        }
    }
}

/// Run one schedule from `seed`; faults are injected for `secs` seconds.
async fn schedule(seed: u64, secs: u64, layout: Layout) -> Outcome {
    let mut r = rig(layout).await;
    let mut rng = Rng::new(seed);
    let history = Arc::new(Mutex::new(History::default()));
    let image = r.cloud.cirros(&r.demo).await;
    let until = Instant::now() + Duration::from_secs(secs);
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let api = Api { url: r.url.clone(), http: Client::new(), token: r.demo.clone() };
        let seed = seed.wrapping_mul(31).wrapping_add(c as u64);
        clients.push(tokio::spawn(client(api, image.clone(), r.storage.clone(), until, seed, history.clone())));
    }
    let faulted: Arc<Mutex<Option<String>>> = Arc::default();
    let admin = Api { url: r.url.clone(), http: Client::new(), token: r.admin.clone() };
    clients.push(tokio::spawn(evacuator(admin, faulted.clone(), until, history.clone())));
    // The nemesis: one fault at a time, each held a random while, random gaps.
    while Instant::now() + Duration::from_secs(1) < until {
        tokio::time::sleep(rng.millis(300, 2500)).await;
        let f = Fault::pick(&mut rng, r.layout);
        let hold = rng.millis(500, 6000);
        let from = Instant::now();
        *faulted.lock().expect("faulted") = f.host().map(|i| r.agents[i].host.clone());
        if let Some(k) = r.inject(f, &mut rng).await {
            history.lock().expect("history").killed.push(k);
        }
        tokio::time::sleep(hold).await;
        *faulted.lock().expect("faulted") = None;
        r.heal(f).await;
        history.lock().expect("history").faults.push(Injected { fault: f, from, to: Instant::now() });
    }
    for c in clients {
        c.await.expect("client");
    }
    let h = std::mem::take(&mut *history.lock().expect("history"));
    let (violations, mechanisms) = check(&r, &h).await;
    let mut effects: BTreeMap<String, usize> = BTreeMap::new();
    for e in stratus_effects::read(&r.effects).unwrap_or_default() {
        *effects.entry(e.effect).or_default() += 1;
    }
    if violations.is_empty() {
        let _ = std::fs::remove_file(&r.effects);
    } else {
        // Keep the evidence: the data dir (database, logs, volumes) and the effect log.
        r.cloud.keep_dir();
        eprintln!(
            "NEMESIS seed {seed}: kept {} and {} for inspection",
            r.cloud.data_dir.display(),
            r.effects.display()
        );
    }
    let mut faults = BTreeMap::new();
    for i in &h.faults {
        *faults.entry(i.fault.kind()).or_default() += 1;
    }
    let mut worst = (Duration::ZERO, Duration::ZERO);
    for d in &h.deletes {
        if let Some(g) = d.gone {
            let took = g - d.sent;
            if took > worst.0 {
                worst = (took, allowed(d, &h.faults));
            }
        }
    }
    let readbacks = (h.readbacks, h.readbacks_written);
    Outcome {
        seed,
        faults,
        deletes: h.deletes.len(),
        mechanisms,
        effects,
        readbacks,
        detaches: h.detaches,
        evacuations: h.evacuations,
        worst,
        violations,
    }
}

/// The bound of one acknowledged delete: the delete bound, plus the time the
/// control plane was faulted while it waited, plus a restart allowance for
/// each control-plane fault that overlapped the wait.
fn allowed(d: &DeleteRecord, faults: &[Injected]) -> Duration {
    let end = d.gone.unwrap_or_else(Instant::now);
    let mut extra = Duration::ZERO;
    for f in faults.iter() {
        let (from, to) = (f.from.max(d.sent), f.to.min(end));
        if !(from < to || (f.to >= d.sent && f.to <= end)) {
            continue;
        }
        if f.fault.control_plane() {
            extra += to.saturating_duration_since(from) + RESTART_ALLOWANCE;
        } else if f.fault.one_controller() {
            extra += ADOPTION_ALLOWANCE;
        }
    }
    DELETE_BOUND + extra
}

/// The checker: bounds per delete, then convergence once every fault is healed.
/// The violations, and how many deletes had their mechanism checked.
async fn check(r: &Rig, h: &History) -> (Vec<String>, usize) {
    let mut v = h.readback_violations.clone();
    for d in &h.deletes {
        let bound = allowed(d, &h.faults);
        match d.gone {
            None => v.push(format!("{}: acknowledged delete never 404", d.server)),
            Some(g) if g - d.sent > bound => v.push(format!(
                "{}: 404 {:?} after the send, bound {bound:?} (faults: {:?})",
                d.server,
                g - d.sent,
                h.faults.iter().filter(|f| f.to >= d.sent && f.from <= g).map(|f| f.fault).collect::<Vec<_>>()
            )),
            Some(_) => {}
        }
    }
    // Convergence: every fault is healed; within a minute nothing is left.
    let api = Api { url: r.url.clone(), http: Client::new(), token: r.demo.clone() };
    let db = r.cloud.db().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let left = loop {
        // A create that got no answer may still have made a server: delete what is listed.
        let listed: Vec<String> = match api.call(Method::GET, "/compute/v2.1/servers", None).await {
            Some((StatusCode::OK, body)) => body["servers"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["id"].as_str().map(String::from)).collect())
                .unwrap_or_default(),
            _ => vec!["(no answer)".into()],
        };
        for id in listed.iter().filter(|id| !id.starts_with('(')) {
            let _ = api.call(Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
        }
        let volumes: Vec<(String, String)> = db
            .volume_list(None)
            .await
            .expect("volumes")
            .into_iter()
            .map(|v| (v.id.to_string(), v.status.to_string()))
            .collect();
        let zombies = db.zombie_list(None).await.expect("zombies");
        let cleanups = db.cleanup_pending().await.expect("cleanups");
        let ops = db.op_list_open().await.expect("ops");
        let vms: Vec<String> = r.agents.iter().flat_map(|a| a.vms()).collect();
        let left = format!(
            "servers {listed:?}, volumes {volumes:?}, zombies {:?}, cleanups {:?}, open ops {:?}, VMs {vms:?}",
            zombies.iter().map(|z| z.server_id).collect::<Vec<_>>(),
            cleanups.iter().map(|c| (c.kind, c.last_error.clone())).collect::<Vec<_>>(),
            ops.iter().map(|o| (o.kind, o.step.clone(), o.last_error.clone())).collect::<Vec<_>>()
        );
        if listed.is_empty()
            && volumes.is_empty()
            && zombies.is_empty()
            && cleanups.is_empty()
            && ops.is_empty()
            && vms.is_empty()
        {
            break None;
        }
        if Instant::now() > deadline {
            break Some(left);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if let Some(left) = left {
        v.push(format!("not converged a minute after the last fault: {left}"));
        return (v, 0);
    }
    match api.call(Method::GET, "/compute/v2.1/limits", None).await {
        Some((StatusCode::OK, lim)) => {
            for key in ["totalInstancesUsed", "totalCoresUsed", "totalRAMUsed"] {
                if lim["limits"]["absolute"][key] != 0 {
                    v.push(format!("quota usage left: {key} = {}", lim["limits"]["absolute"][key]));
                }
            }
        }
        other => v.push(format!("limits unreadable: {other:?}")),
    }
    for d in &h.deletes {
        let n: Vec<String> = db
            .notification_list_for_server(&sid(&d.server))
            .await
            .expect("notifications")
            .into_iter()
            .map(|n| n.event_type)
            .collect();
        for event in ["instance.delete.start", "instance.delete.end"] {
            let count = n.iter().filter(|e| *e == event).count();
            if count != 1 {
                v.push(format!("{}: {count} × {event}", d.server));
            }
        }
    }
    let (wrong, mechanisms) = check_mechanisms(r, h, &db).await;
    v.extend(wrong);
    let (clean, report) = r.cloud.audit();
    if !clean {
        v.push(format!("audit: {report}"));
    }
    match stratus_effects::read(&r.effects) {
        Ok(effects) => v.extend(check_effects(&effects, &h.killed, &running)),
        Err(e) => v.push(format!("effect log {} unreadable: {e}", r.effects.display())),
    }
    (v, mechanisms)
}

/// How long after a host fault healed its host may still be down (its lease
/// lapsed; it rejoins within a renewal or two).
const HOST_SETTLE: Duration = Duration::from_millis((LEASE_TTL * 1000.0) as u64 + 2000);

/// The mechanism each delete took (its instance action's events), where the
/// faults leave only one right answer: a server whose host no fault touched,
/// with the control plane whole, is deleted by its host (the remote path: a
/// healthy host is never convicted, Nova's `_delete` casting
/// `terminate_instance` to an up service); one whose host was forced down for
/// the whole delete takes the local path (Nova: `service.forced_down`).
/// Evacuated servers are left out (their host changed under the delete).
async fn check_mechanisms(r: &Rig, h: &History, db: &stratus_db::Datastore) -> (Vec<String>, usize) {
    let mut v = Vec::new();
    let mut checked = 0;
    for d in &h.deletes {
        let Some(gone) = d.gone else { continue };
        let id = sid(&d.server);
        let Ok(server) = db.server_get_any(&id).await else { continue };
        let Some(host) = server.host.clone() else { continue };
        let Some(hi) = r.agents.iter().position(|a| a.host == host) else { continue };
        let actions = db.action_list(&id).await.expect("actions");
        if actions.iter().any(|a| a.action == "evacuate") {
            continue;
        }
        let Some(del) = actions.iter().find(|a| a.action == "delete") else { continue };
        let (_, events) = db.action_get(&id, &del.request_id).await.expect("delete action");
        let local = events.iter().find_map(|e| e.details.as_deref().filter(|x| x.starts_with("path=local")));
        let overlapping = |f: &&Injected| f.to + HOST_SETTLE >= d.sent && f.from <= gone;
        let touched = h
            .faults
            .iter()
            .filter(overlapping)
            .any(|f| f.fault.host() == Some(hi) || f.fault.control_plane() || f.fault.one_controller());
        checked += usize::from(!touched);
        if !touched && let Some(why) = local {
            v.push(format!(
                "{}: deleted locally ({why}) though no fault touched its host {host} or the control plane",
                d.server
            ));
        }
        let forced_throughout = h.faults.iter().any(|f| {
            f.fault == Fault::HostForcedDown(hi) && f.from + Duration::from_millis(500) <= d.sent && f.to >= gone
        });
        checked += usize::from(forced_throughout);
        if forced_throughout && !local.is_some_and(|why| why.contains("forced down")) {
            v.push(format!(
                "{}: its host {host} was forced down throughout, yet not deleted locally: {events:?}",
                d.server
            ));
        }
    }
    (v, checked)
}

/// Does process `pid` run (not a zombie)?
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| st.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}

/// The effect checker (see the module doc), on the effect log and the
/// processes the schedule SIGKILLed.
fn check_effects(
    effects: &[stratus_effects::Effect],
    killed: &[(u32, u64)],
    alive: &dyn Fn(u32) -> bool,
) -> Vec<String> {
    use stratus_effects::Effect;
    let mut v = Vec::new();
    let changed = |e: &Effect, kind: &str| e.changed && e.effect == kind;
    // A volume is created at most once (its id is never reused). Deletes and
    // fences are idempotent and may overlap: a delete whose inline wait timed
    // out finishes in the background while its queued retry may run in
    // another process, and an evacuation and a delete of one server may
    // fence the same client at once. What matters for those is checked
    // below: every fence is lifted after its last application, and the
    // audit finds any storage left behind.
    let mut once: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in effects.iter().filter(|e| e.changed) {
        if e.effect == "volume.create" {
            *once.entry((e.effect.as_str(), e.target.as_str())).or_default() += 1;
        }
    }
    for ((effect, target), n) in &once {
        if *n > 1 {
            v.push(format!("effect {effect} of {target} happened {n} times"));
        }
    }
    // A VM on a host: spawns and destroys alternate. A server evacuated
    // away and back is spawned on the same host again, after its copy there
    // was destroyed; two in a row is a duplicate.
    let mut vm_runs: BTreeMap<(&str, &str), (&str, usize)> = BTreeMap::new();
    let mut vm_effects: Vec<&Effect> =
        effects.iter().filter(|e| e.changed && matches!(e.effect.as_str(), "vm.spawn" | "vm.destroy")).collect();
    vm_effects.sort_by_key(|e| e.at_ms);
    for e in vm_effects {
        let run = vm_runs.entry((e.who.as_str(), e.target.as_str())).or_insert((e.effect.as_str(), 0));
        if run.0 == e.effect {
            run.1 += 1;
            if run.1 == 2 {
                v.push(format!("effect {} of {} {} happened 2 times in a row", e.effect, e.target, e.who));
            }
        } else {
            *run = (e.effect.as_str(), 1);
        }
    }
    // One attempt of an operation never repeats a completed storage call.
    let mut per_attempt: BTreeMap<(&str, &str, u32, &str, i64), usize> = BTreeMap::new();
    for e in effects.iter().filter(|e| e.effect.starts_with("client.fence") || e.effect == "volume.delete") {
        if let (Some(op), Some(token)) = (&e.op, e.token) {
            *per_attempt.entry((e.effect.as_str(), e.target.as_str(), e.pid, op.as_str(), token)).or_default() += 1;
        }
    }
    for ((effect, target, pid, op, token), n) in &per_attempt {
        if *n > 1 {
            v.push(format!("attempt {token} of operation {op} (pid {pid}) called {effect} on {target} {n} times"));
        }
    }
    // Balance: what was made was undone, and in that order.
    let first = |kind: &str, target: &str, scope: Option<&str>| {
        effects
            .iter()
            .filter(|e| e.effect == kind && e.target == target && scope.is_none_or(|w| e.who == w))
            .map(|e| e.at_ms)
            .min()
    };
    for e in effects {
        let undone = match e.effect.as_str() {
            _ if !e.changed => continue,
            "vm.spawn" => effects
                .iter()
                .any(|d| changed(d, "vm.destroy") && d.who == e.who && d.target == e.target && d.at_ms >= e.at_ms),
            "volume.create" => effects.iter().any(|d| changed(d, "volume.delete") && d.target == e.target),
            "client.fence" => {
                effects.iter().any(|d| changed(d, "client.unfence") && d.target == e.target && d.at_ms >= e.at_ms)
            }
            _ => continue,
        };
        if !undone {
            v.push(format!("{} of {} ({}) never undone", e.effect, e.target, e.who));
        }
    }
    // Every client ends (closes, or dies with its process), and no fence is
    // lifted before its client ended: until then it may still write.
    for open in effects.iter().filter(|e| e.effect == "client.open") {
        let closed = first("client.close", &open.target, None);
        let lifted = first("client.unfence", &open.target, None);
        if let Some(pid) = open.client_pid {
            // A client process of its own (rbd's holder) outlives its opener:
            // it ended when closed or SIGKILLed by the nemesis, or must not
            // run any more now (an agent ends it when it reaps; when is not
            // recorded).
            let died = killed.iter().filter(|(p, at)| *p == pid && *at >= open.at_ms).map(|(_, at)| *at).min();
            let end = match (closed, died) {
                (Some(c), Some(d)) => Some(c.min(d)),
                (c, d) => c.or(d),
            };
            match (end, lifted) {
                (Some(end), Some(lift)) if lift < end => {
                    v.push(format!("fence of client {} lifted {} ms before the client ended", open.target, end - lift))
                }
                (None, _) if alive(pid) => {
                    v.push(format!("client {} (process {pid}) still runs after everything converged", open.target))
                }
                _ => {}
            }
            continue;
        }
        let died = killed.iter().filter(|(pid, at)| *pid == open.pid && *at >= open.at_ms).map(|(_, at)| *at).min();
        let end = match (closed, died) {
            (Some(c), Some(d)) => Some(c.min(d)),
            (c, d) => c.or(d),
        };
        match (end, lifted) {
            (None, _) => v.push(format!("client {} ({}) never ended", open.target, open.who)),
            (Some(end), Some(lift)) if lift < end => {
                v.push(format!("fence of client {} lifted {} ms before the client ended", open.target, end - lift))
            }
            _ => {}
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn nemesis() {
    let first: u64 = env_or("STRATUS_NEMESIS_SEED", 1);
    let schedules: u64 = env_or("STRATUS_NEMESIS_SCHEDULES", 2);
    let secs: u64 = env_or("STRATUS_NEMESIS_SECS", 20);
    let ceph_schedules: u64 = env_or("STRATUS_NEMESIS_CEPH_SCHEDULES", 1);
    let split_schedules: u64 = env_or("STRATUS_NEMESIS_SPLIT_SCHEDULES", 1);
    let mut outcomes = Vec::new();
    let runs = (first..first + schedules)
        .map(|s| (s, Layout::Local))
        .chain((first..first + ceph_schedules).map(|s| (s, Layout::Ceph)))
        .chain((first..first + split_schedules).map(|s| (s, Layout::Split)));
    for (seed, layout) in runs {
        let started = Instant::now();
        let o = schedule(seed, secs, layout).await;
        let on = layout.name();
        eprintln!(
            "NEMESIS seed {seed} ({on}): {} faults {:?}, {} deletes ({} with their mechanism checked), effects {:?}, {} volumes read back ({} written), {} detaches, {} evacuations, slowest 404 {} ms (its bound {} ms), {} violations, {} s",
            o.faults.values().sum::<usize>(),
            o.faults,
            o.deletes,
            o.mechanisms,
            o.effects,
            o.readbacks.0,
            o.readbacks.1,
            o.detaches,
            o.evacuations,
            o.worst.0.as_millis(),
            o.worst.1.as_millis(),
            o.violations.len(),
            started.elapsed().as_secs()
        );
        for violation in &o.violations {
            eprintln!("NEMESIS seed {seed} ({on}) VIOLATION: {violation}");
        }
        outcomes.push(o);
    }
    // The results table (README): schedules, faults by kind, deletes, violations.
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &outcomes {
        for (k, n) in &o.faults {
            *by_kind.entry(k).or_default() += n;
        }
    }
    let deletes: usize = outcomes.iter().map(|o| o.deletes).sum();
    let mechanisms: usize = outcomes.iter().map(|o| o.mechanisms).sum();
    let effects: usize = outcomes.iter().flat_map(|o| o.effects.values()).sum();
    let readbacks: usize = outcomes.iter().map(|o| o.readbacks.0).sum();
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    eprintln!(
        "NEMESIS | schedules | faults injected | deletes checked | effects checked | volumes read back | violations |"
    );
    eprintln!(
        "NEMESIS | {} ({schedules} local, {ceph_schedules} Ceph, {split_schedules} split, from seed {first}) | {} ({by_kind:?}) | {deletes} ({mechanisms} with their mechanism checked) | {effects} | {readbacks} | {violations} |",
        outcomes.len(),
        by_kind.values().sum::<usize>()
    );
    let failed: Vec<u64> = outcomes.iter().filter(|o| !o.violations.is_empty()).map(|o| o.seed).collect();
    assert!(failed.is_empty(), "violations in the schedules of seeds {failed:?} (rerun one with STRATUS_NEMESIS_SEED)");
}

/// The effect checker itself: each rule flags the history that breaks it
/// and passes the one that keeps it (the checker must be able to fail).
#[test]
fn the_effect_checker_flags_each_broken_rule() {
    fn e(at_ms: u64, pid: u32, who: &str, effect: &str, target: &str, changed: bool) -> stratus_effects::Effect {
        stratus_effects::Effect {
            at_ms,
            pid,
            who: who.into(),
            effect: effect.into(),
            target: target.into(),
            changed,
            op: None,
            token: None,
            client_pid: None,
        }
    }
    // A clean history: spawn, client opened, host killed, fence, destroy,
    // volume deleted, fence lifted after the kill; idempotent repeats.
    let clean = vec![
        e(1, 10, "compute-1", "volume.create", "vol", true),
        e(2, 20, "compute-1", "vm.spawn", "srv", true),
        e(3, 20, "compute-1", "client.open", "c1", true),
        e(5, 1, "control", "client.fence", "c1", true),
        e(6, 1, "control", "client.fence", "c1", false),
        e(7, 1, "control", "volume.delete", "vol", true),
        e(8, 30, "compute-1", "vm.destroy", "srv", true),
        e(9, 30, "compute-1", "vm.destroy", "srv", false),
        e(10, 1, "control", "client.unfence", "c1", true),
    ];
    let killed = [(20, 4)];
    assert_eq!(check_effects(&clean, &killed, &|_| false), Vec::<String>::new());

    // The fence lifted while the client's process still ran (not killed, not closed).
    let v = check_effects(&clean, &[], &|_| false);
    assert!(v.iter().any(|v| v.contains("client c1 (compute-1) never ended")), "{v:?}");
    let mut early = clean.clone();
    early.push(e(12, 20, "compute-1", "client.close", "c1", true));
    let v = check_effects(&early, &[], &|_| false);
    assert!(v.iter().any(|v| v.contains("fence of client c1 lifted 2 ms before the client ended")), "{v:?}");

    // A client fenced again after its fence was lifted stays fenced.
    let mut refenced = clean.clone();
    refenced.push(e(11, 1, "control", "client.fence", "c1", true));
    let v = check_effects(&refenced, &killed, &|_| false);
    assert!(v.iter().any(|v| v.contains("client.fence of c1 (control) never undone")), "{v:?}");
    // Overlapping idempotent calls are not violations by themselves.
    let mut overlap = clean.clone();
    overlap.push(e(6, 2, "control", "client.fence", "c1", true));
    overlap.push(e(7, 2, "control", "volume.delete", "vol", true));
    assert_eq!(check_effects(&overlap, &killed, &|_| false), Vec::<String>::new());
    // A VM destroyed twice in a row, a volume created twice.
    for twice in
        [e(11, 30, "compute-1", "vm.destroy", "srv", true), e(11, 10, "compute-1", "volume.create", "vol", true)]
    {
        let mut h = clean.clone();
        let what = format!("effect {} of {}", twice.effect, twice.target);
        h.push(twice);
        let v = check_effects(&h, &killed, &|_| false);
        assert!(v.iter().any(|v| v.starts_with(&what) && v.contains("2 times")), "{what}: {v:?}");
    }

    // A server evacuated away and back: spawned on compute-1 again after
    // its copy there was destroyed (no violation); spawned twice in a row is.
    let mut back = clean.clone();
    back.extend([e(12, 30, "compute-1", "vm.spawn", "srv", true), e(13, 30, "compute-1", "vm.destroy", "srv", true)]);
    assert_eq!(check_effects(&back, &killed, &|_| false), Vec::<String>::new());
    let mut dup = clean.clone();
    dup.push(e(3, 20, "compute-1", "vm.spawn", "srv", true));
    let v = check_effects(&dup, &killed, &|_| false);
    assert!(v.iter().any(|v| v == "effect vm.spawn of srv compute-1 happened 2 times in a row"), "{v:?}");

    // A VM never destroyed; a fence never lifted.
    let v = check_effects(&clean[..6], &killed, &|_| false);
    assert!(v.iter().any(|v| v == "vm.spawn of srv (compute-1) never undone"), "{v:?}");
    assert!(v.iter().any(|v| v == "client.fence of c1 (control) never undone"), "{v:?}");

    // One attempt calling the same fence twice.
    let mut h = clean.clone();
    for at in [5, 6] {
        let mut f = e(at, 1, "control", "client.fence", "c1", at == 5);
        f.op = Some("op-1".into());
        f.token = Some(3);
        h.push(f);
    }
    let v = check_effects(&h, &killed, &|_| false);
    assert!(v.iter().any(|v| v.contains("attempt 3 of operation op-1")), "{v:?}");
}
