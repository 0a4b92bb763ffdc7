//! Hosts as network namespaces, for the partition tests (issue 9).
//!
//! [`Net`] is a private bridge with a /24 it picks; [`Net::add_host`] makes a
//! namespace joined to it by a veth pair (its only links are that veth and
//! its loopback). A host is cut from one TCP port by nftables rules inside
//! its namespace ([`NsHost::cut_port`]: its packets to the port and the
//! port's packets to it are dropped, silently, as a firewall or a broken
//! route would) and from everything by taking the bridge side of its veth
//! down ([`NsHost::link_down`]: the cable pulled at the switch). [`PrivatePg`]
//! is a PostgreSQL of the test's own (`initdb` + `pg_ctl`) listening on the
//! bridge, so processes in namespaces reach it and it can be restarted
//! without touching the machine's server.
//!
//! Every name starts with [`PREFIX`] followed by the test process's pid, so
//! the leftovers of a test process that died (namespaces, links) are found
//! and removed by the next one; everything is removed on drop.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first letters of every namespace and link these tests make.
pub const PREFIX: &str = "stx";

/// Networks made by this process (a letter each in their names).
static SEQ: AtomicU32 = AtomicU32::new(0);
/// Serialises picking a subnet among this process's concurrent tests.
static SETUP: Mutex<()> = Mutex::new(());

/// Run a command; panic with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/test installs iproute2 and nftables)"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run a command, ignoring failure (cleanup of what may already be gone).
fn run_quiet(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Namespaces and bridges need root and the `ip` and `nft` tools: fail
/// loudly (never skip) when they are missing.
fn require_tools() {
    // The effective uid, from /proc (no libc call needed).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2));
    assert_eq!(euid, Some("0"), "the partition tests make network namespaces: run them as root");
    for tool in ["ip", "nft"] {
        let ok = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(ok, "{tool} is not installed: run the tests with scripts/test, which installs iproute2 and nftables");
    }
}

/// The pid a name of ours carries (`stx<pid><letter>…`).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Remove the namespaces and links of test processes that no longer run
/// (a test killed before its drop ran), ending what still runs in them.
fn remove_leftovers() {
    let dead = |name: &str| owner_pid(name).is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
    for line in run_quiet("ip", &["netns", "list"]).lines() {
        let Some(ns) = line.split_whitespace().next() else { continue };
        if dead(ns) {
            for pid in run_quiet("ip", &["netns", "pids", ns]).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            run_quiet("ip", &["netns", "del", ns]);
        }
    }
    for line in run_quiet("ip", &["-o", "link", "show"]).lines() {
        // "7: stx123ab@if6: <...>" or "7: stx123abr: <...>"
        let Some(name) = line.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n)) else { continue };
        if dead(name) {
            run_quiet("ip", &["link", "del", name]);
        }
    }
}

/// A private bridge and the /24 on it; removed (with every host) on drop.
pub struct Net {
    tag: String,
    /// The bridge's name.
    pub bridge: String,
    /// The first three octets of the /24 (`10.x.y`).
    prefix: String,
    /// The bridge's own address (`.1`): where the root namespace's services listen.
    pub gateway: String,
    namespaces: Mutex<Vec<String>>,
    next: AtomicU32,
}

impl Net {
    /// Make a bridge with a /24 no link of this machine uses yet.
    pub fn create() -> Self {
        require_tools();
        let _g = SETUP.lock().unwrap_or_else(|p| p.into_inner());
        remove_leftovers();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let letter = (b'a' + (seq % 26) as u8) as char;
        let tag = format!("{PREFIX}{}{letter}", std::process::id());
        let used = format!("{}{}", run_quiet("ip", &["-4", "-o", "addr"]), run_quiet("ip", &["-4", "route"]));
        let start = (std::process::id() as usize * 7 + seq as usize * 13) % 250;
        let prefix = (0..250)
            .map(|i| format!("10.231.{}", (start + i) % 250 + 1))
            .find(|p| !used.contains(&format!("{p}.")))
            .expect("a free 10.231.x.0/24");
        let bridge = format!("{tag}br");
        let gateway = format!("{prefix}.1");
        run("ip", &["link", "add", &bridge, "type", "bridge"]);
        let net = Self {
            tag,
            bridge: bridge.clone(),
            prefix,
            gateway: gateway.clone(),
            namespaces: Mutex::default(),
            next: AtomicU32::new(0),
        };
        run("ip", &["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
        run("ip", &["link", "set", &bridge, "up"]);
        net
    }

    /// The /24 in CIDR notation (for pg_hba).
    pub fn cidr(&self) -> String {
        format!("{}.0/24", self.prefix)
    }

    /// A new namespace on the bridge, with its own address.
    pub fn add_host(&self) -> NsHost {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        let ns = format!("{}n{i}", self.tag);
        let veth = format!("{}v{i}", self.tag);
        let peer = format!("{}p{i}", self.tag);
        let ip = format!("{}.{}", self.prefix, 10 + i);
        run("ip", &["netns", "add", &ns]);
        self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).push(ns.clone());
        run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        run("ip", &["link", "set", &peer, "netns", &ns]);
        run("ip", &["link", "set", &veth, "master", &self.bridge]);
        run("ip", &["link", "set", &veth, "up"]);
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        run("ip", &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", &peer]);
        run("ip", &["-n", &ns, "link", "set", &peer, "up"]);
        NsHost { ns, veth, ip, cut: Mutex::default() }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            for pid in run_quiet("ip", &["netns", "pids", &ns]).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            run_quiet("ip", &["netns", "del", &ns]);
        }
        run_quiet("ip", &["link", "del", &self.bridge]);
    }
}

/// One namespace on a [`Net`]: a host of the test.
pub struct NsHost {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// The bridge side of its veth pair.
    pub veth: String,
    /// Its address on the bridge.
    pub ip: String,
    /// Ports cut off inside it.
    cut: Mutex<Vec<u16>>,
}

/// The nftables table the cuts live in, inside a host's namespace.
const CUT_TABLE: &str = "stratus_cut";

impl NsHost {
    /// Drop every packet between this host and TCP `port` on any address
    /// (both directions, silently: connections stall, nothing is refused).
    pub fn cut_port(&self, port: u16) {
        let mut cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
        if cut.is_empty() {
            let script = format!(
                "add table inet {CUT_TABLE}; \
                 add chain inet {CUT_TABLE} out {{ type filter hook output priority 0; policy accept; }}; \
                 add chain inet {CUT_TABLE} in {{ type filter hook input priority 0; policy accept; }}"
            );
            run("ip", &["netns", "exec", &self.ns, "nft", &script]);
        }
        let script = format!(
            "add rule inet {CUT_TABLE} out tcp dport {port} drop; add rule inet {CUT_TABLE} in tcp sport {port} drop"
        );
        run("ip", &["netns", "exec", &self.ns, "nft", &script]);
        cut.push(port);
    }

    /// Undo every [`NsHost::cut_port`].
    pub fn heal_ports(&self) {
        let mut cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
        if !cut.is_empty() {
            run("ip", &["netns", "exec", &self.ns, "nft", &format!("delete table inet {CUT_TABLE}")]);
            cut.clear();
        }
    }

    /// Cut the host from everything: the bridge side of its veth goes down.
    pub fn link_down(&self) {
        run("ip", &["link", "set", &self.veth, "down"]);
    }

    /// Plug it back.
    pub fn link_up(&self) {
        run("ip", &["link", "set", &self.veth, "up"]);
    }
}

/// The directory of the PostgreSQL 15 server binaries
/// (`STRATUS_TEST_PG_BIN` overrides it).
fn pg_bin(name: &str) -> String {
    let dir = std::env::var("STRATUS_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let path = format!("{dir}/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: the partition tests run a private PostgreSQL 15 (apt-get install postgresql-15)"
    );
    path
}

/// A PostgreSQL server of the test's own, listening on `addr`, trusting
/// the test's /24; stopped (immediately) and removed on drop.
pub struct PrivatePg {
    dir: PathBuf,
    data: PathBuf,
    /// The address it listens on.
    pub addr: String,
    /// Its port.
    pub port: u16,
    /// `postgres://postgres@addr:port/postgres`.
    pub url: String,
}

impl PrivatePg {
    /// `initdb` a fresh cluster and start it on a free port of `addr`.
    pub fn start(addr: &str, trust_cidr: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{PREFIX}-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("pg dir");
        let data = dir.join("data");
        // PostgreSQL refuses to run as root: its files belong to `postgres`.
        run("chown", &["postgres:postgres", &dir.to_string_lossy()]);
        let port = std::net::TcpListener::bind((addr, 0)).and_then(|l| l.local_addr()).expect("free port").port();
        let url = format!("postgres://postgres@{addr}:{port}/postgres");
        let pg = Self { dir, data, addr: addr.to_string(), port, url };
        pg.as_postgres(
            &pg_bin("initdb"),
            &["-D", &pg.data_s(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        );
        let conf = format!(
            "listen_addresses = '{addr}'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\n",
            pg.dir.display()
        );
        append(&pg.data.join("postgresql.conf"), &conf);
        append(&pg.data.join("pg_hba.conf"), &format!("host all all {trust_cidr} trust\n"));
        pg.start_again();
        pg
    }

    fn data_s(&self) -> String {
        self.data.to_string_lossy().to_string()
    }

    fn as_postgres(&self, bin: &str, args: &[&str]) {
        let mut full = vec!["-u", "postgres", "--", bin];
        full.extend_from_slice(args);
        run("runuser", &full);
    }

    /// Stop it the hard way (`pg_ctl stop -m immediate`: no checkpoint,
    /// every connection cut, crash recovery at the next start).
    pub fn stop_immediate(&self) {
        self.as_postgres(&pg_bin("pg_ctl"), &["-D", &self.data_s(), "-m", "immediate", "-w", "stop"]);
    }

    /// Start it (again) and wait until it accepts connections.
    pub fn start_again(&self) {
        let log = self.dir.join("postgres.log").to_string_lossy().to_string();
        self.as_postgres(&pg_bin("pg_ctl"), &["-D", &self.data_s(), "-l", &log, "-w", "-t", "60", "start"]);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_bin("pg_ctl"), "-D", &self.data_s(), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open conf");
    f.write_all(text.as_bytes()).expect("write conf");
}
