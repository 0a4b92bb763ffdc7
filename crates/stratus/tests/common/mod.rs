//! Test harness: starts a real `stratus up` process on a free port with a
//! temp data dir, and talks to it over HTTP like any OpenStack client.

#![allow(dead_code)]

pub mod netns;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PW: &str = "admin-secret";
pub const DEMO_PW: &str = "demo-secret";

/// A running cloud.
pub struct Cloud {
    pub child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub http: Client,
    /// Environment of the next (re)start.
    pub env: Vec<(String, String)>,
    args: Vec<String>,
    role: String,
    owns_dir: bool,
}

impl Cloud {
    /// Start with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Start with extra `STRATUS_*` environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        Self::launch("up", &[], env)
    }

    fn launch(role: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("stratus-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut c = Self {
            child: None,
            url: String::new(),
            data_dir: dir,
            http: Client::new(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            args: args.iter().map(|a| a.to_string()).collect(),
            role: role.into(),
            owns_dir: true,
        };
        c.spawn();
        c
    }

    /// Start `stratus up` on an existing data dir (removed when this value drops).
    pub async fn start_in(dir: &std::path::Path) -> Self {
        let mut c = Self {
            child: None,
            url: String::new(),
            data_dir: dir.to_path_buf(),
            http: Client::new(),
            env: Vec::new(),
            args: Vec::new(),
            role: "up".into(),
            owns_dir: true,
        };
        c.spawn();
        c
    }

    /// Start another process of `role` (`api`) on this cloud's data dir and
    /// database, with `args` (a second API of a distributed deployment).
    pub async fn start_another(&self, role: &str, args: &[&str]) -> Self {
        let mut c = Self {
            child: None,
            url: String::new(),
            data_dir: self.data_dir.clone(),
            http: Client::new(),
            env: self.env.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            role: role.into(),
            owns_dir: false,
        };
        c.spawn();
        c
    }

    /// The `--database-url` this cloud runs on (`STRATUS_DATABASE_URL` in its
    /// environment), if not the data dir's SQLite file.
    pub fn database_url(&self) -> Option<String> {
        self.env.iter().find(|(k, _)| k == "STRATUS_DATABASE_URL").map(|(_, v)| v.clone())
    }

    /// Keep the data dir when this value drops (another cloud reuses it).
    pub fn keep_dir(&mut self) {
        self.owns_dir = false;
    }

    /// Start with extra command-line arguments and environment.
    pub async fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch("up", args, env)
    }

    /// Start only the API role (`stratus api`) with these arguments.
    pub async fn start_api(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch("api", args, env)
    }

    /// Start a controller process (`stratus controller`) on this cloud's database.
    pub fn start_controller(&self, nats: &Nats, env: &[(&str, &str)]) -> Child {
        self.start_controller_in(None, nats, env)
    }

    /// Start a controller process in the network namespace `netns` (the
    /// root namespace when `None`), on this cloud's database.
    pub fn start_controller_in(&self, netns: Option<&str>, nats: &Nats, env: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("controllers.log"))
            .expect("log");
        let mut cmd = stratus_command(netns);
        cmd.args(["controller", "--nats-url", &nats.url, "--data-dir"]).arg(&self.data_dir).env("STRATUS_LOG", "info");
        if let Some(url) = self.database_url() {
            cmd.env("STRATUS_DATABASE_URL", url);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn controller")
    }

    /// Force a compute host down (or let it back) as an admin, with microversion 2.11.
    pub async fn force_down(&self, admin: &str, host: &str, on: bool) {
        let r = self
            .http
            .put(format!("{}/compute/v2.1/os-services/force-down", self.url))
            .header("X-Auth-Token", admin)
            .header("OpenStack-API-Version", "compute 2.11")
            .json(&serde_json::json!({"host": host, "binary": "nova-compute", "forced_down": on}))
            .send()
            .await
            .expect("force-down request");
        assert_eq!(r.status(), StatusCode::OK, "force-down {host} {on}");
    }

    /// Run `stratus audit` on this cloud's data dir; returns (clean, output).
    pub fn audit(&self) -> (bool, String) {
        self.audit_with(&[])
    }

    /// `stratus audit` with extra arguments (e.g. the storage backend's).
    pub fn audit_with(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
        cmd.arg("audit").arg("--data-dir").arg(&self.data_dir).args(args);
        if let Some(url) = self.database_url() {
            cmd.env("STRATUS_DATABASE_URL", url);
        }
        let out = cmd.output().expect("run audit");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
        cmd.arg(&self.role);
        for a in &self.args {
            cmd.arg(a);
        }
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("STRATUS_ADMIN_PASSWORD", ADMIN_PW)
            .env("STRATUS_DEMO_PASSWORD", DEMO_PW)
            .env("STRATUS_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.data_dir.join("stratus.log"))
                    .expect("log file"),
            ));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn stratus");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut url = None;
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("Stratus is listening on ") {
                        url = Some(u.trim().to_string());
                        break;
                    }
                }
                _ => break,
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // With a fault point armed, the process may reach it (adopting an
        // operation at startup) and abort before it says where it listens:
        // the caller sees it exited and goes on with the next fault.
        let armed = self.env.iter().any(|(k, _)| k == "STRATUS_FAULTS");
        let mut exited = false;
        for _ in 0..40 {
            if url.is_some() || !armed {
                break;
            }
            if matches!(child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.url = match url {
            Some(u) => u,
            None if exited => "http://127.0.0.1:9".to_string(),
            None => panic!("stratus did not start; see {}", self.data_dir.join("stratus.log").display()),
        };
        self.child = Some(child);
    }

    /// Has the process exited (e.g. aborted at a fault point)?
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Stop the process (SIGKILL: no graceful shutdown, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill and start again on the same data dir (a new port).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A project-scoped token.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}, "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = self
            .http
            .post(format!("{}/identity/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .expect("auth request");
        assert_eq!(r.status(), StatusCode::CREATED, "auth as {user}");
        r.headers().get("x-subject-token").expect("token header").to_str().expect("ascii").to_string()
    }

    pub async fn admin(&self) -> String {
        self.token("admin", ADMIN_PW, "admin").await
    }

    pub async fn demo(&self) -> String {
        self.token("demo", DEMO_PW, "demo").await
    }

    /// A compute call; returns status and JSON body (Null when empty).
    pub async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}{}", self.url, path)).header("X-Auth-Token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, v)
    }

    pub async fn cirros(&self, token: &str) -> String {
        let (s, v) = self.call(token, Method::GET, "/image/v2/images?name=cirros", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["images"][0]["id"].as_str().expect("cirros image").to_string()
    }

    /// Create a server, return its id.
    pub async fn create_server(&self, token: &str, name: &str) -> String {
        let image = self.cirros(token).await;
        let (s, v) = self
            .call(
                token,
                Method::POST,
                "/compute/v2.1/servers",
                Some(json!({"server": {"name": name, "imageRef": image, "flavorRef": "1"}})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        v["server"]["id"].as_str().expect("id").to_string()
    }

    /// POST a boot-from-volume server: a 1 GiB root volume built from
    /// `image`, deleted with the server. Returns the create response.
    pub async fn post_bfv_server(&self, token: &str, name: &str, image: &str) -> (StatusCode, Value) {
        let bdm = json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}]);
        self.call(
            token,
            Method::POST,
            "/compute/v2.1/servers",
            Some(json!({"server": {"name": name, "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bdm}})),
        )
        .await
    }

    /// Poll until the volume has `status`; returns its body.
    pub async fn wait_volume(&self, token: &str, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, v) = self.call(token, Method::GET, &format!("/volume/v3/volumes/{id}"), None).await;
            if s == StatusCode::OK && v["volume"]["status"] == status {
                return v;
            }
            assert!(Instant::now() < deadline, "volume {id} never became {status}: {s} {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll until the server has `status` (panics on ERROR or timeout).
    pub async fn wait_status(&self, token: &str, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, v) = self.call(token, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
            assert_eq!(s, StatusCode::OK, "server {id} vanished: {v}");
            let st = v["server"]["status"].as_str().unwrap_or_default().to_string();
            if st == status {
                return v;
            }
            if st == "ERROR" && status != "ERROR" {
                let db = self.db().await;
                let mut events = Vec::new();
                for a in db.action_list(&sid(id)).await.unwrap_or_default() {
                    if let Ok((_, ev)) = db.action_get(&sid(id), &a.request_id).await {
                        events.extend(ev.into_iter().map(|e| format!("{}: {:?} {:?}", e.event, e.result, e.details)));
                    }
                }
                panic!("server {id} went ERROR: {v}\nevents: {events:#?}");
            }
            assert!(Instant::now() < deadline, "server {id} stuck in {st} (wanted {status})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Poll until GET is 404; returns how long it took.
    pub async fn wait_gone(&self, token: &str, id: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let (s, v) = self.call(token, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
            if s == StatusCode::NOT_FOUND {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "server {id} not gone after {timeout:?}: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Open the cloud's database (read side) for assertions.
    pub async fn db(&self) -> stratus_db::Datastore {
        match self.database_url() {
            Some(url) => stratus_db::Datastore::open(&url.parse().expect("database url")).await.expect("open db"),
            None => stratus_db::Datastore::open_sqlite(&self.data_dir.join("stratus.db")).await.expect("open db"),
        }
    }

    /// VMs the fake driver of `host` holds.
    pub fn vms(&self, host: &str) -> Vec<String> {
        vm_ids(&self.data_dir.join("hosts").join(host).join("vms"))
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.kill();
        // VMs, storage daemons and watchdogs outlive their agents by design:
        // end every process that names this cloud's data dir, pass or fail.
        let _ = Command::new("pkill").arg("-9").arg("-f").arg(self.data_dir.as_os_str()).status();
        if self.owns_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A nats-server on a free port, stopped on drop.
pub struct Nats {
    child: Option<Child>,
    bin: &'static str,
    addr: String,
    port: u16,
    pub url: String,
}

impl Nats {
    /// Start Debian's nats-server on loopback; fails loudly when it is not installed.
    pub fn start() -> Self {
        Self::start_at("127.0.0.1")
    }

    /// Start Debian's nats-server listening on `addr` (e.g. a test bridge's address).
    pub fn start_at(addr: &str) -> Self {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nats-server is not installed: run the tests with scripts/test, which installs it");
        let port = std::net::TcpListener::bind((addr, 0)).and_then(|l| l.local_addr()).expect("free port").port();
        let mut n = Self { child: None, bin, addr: addr.to_string(), port, url: format!("nats://{addr}:{port}") };
        n.start_again();
        n
    }

    /// Stop the server at once (SIGKILL): every client loses its connection.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the server again on the same address and port (after [`Nats::kill`]).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server still runs");
        let child = Command::new(self.bin)
            .args(["-a", &self.addr, "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((self.addr.as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's pid (to SIGSTOP it: connections stay open, nothing moves).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("nats-server runs")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command running the `stratus` binary, inside the network namespace
/// `netns` (`ip netns exec`, which execs: the child's pid is stratus's) or
/// in this process's namespace.
pub fn stratus_command(netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_stratus")]);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_stratus")),
    }
}

/// A compute agent running as its own OS process (`stratus compute`).
pub struct AgentProc {
    pub child: Option<Child>,
    pub host: String,
    pub state_dir: PathBuf,
    nats_url: String,
    env: Vec<(String, String)>,
    /// The network namespace it runs in (`None`: this process's).
    netns: Option<String>,
}

impl AgentProc {
    /// Start `stratus compute --host <host>` joined over `nats`, keeping its VMs under `state_dir`.
    pub fn start(host: &str, nats: &Nats, state_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        Self::start_in(None, host, nats, state_dir, env)
    }

    /// As [`AgentProc::start`], inside the network namespace `netns`.
    pub fn start_in(netns: Option<&str>, host: &str, nats: &Nats, state_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        let mut a = Self {
            child: None,
            host: host.into(),
            state_dir,
            nats_url: nats.url.clone(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            netns: netns.map(str::to_string),
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.state_dir).expect("state dir");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.state_dir.join("agent.log")).expect("log");
        let mut cmd = stratus_command(self.netns.as_deref());
        cmd.args(["compute", "--host", &self.host, "--nats-url", &self.nats_url, "--state-dir"])
            .arg(&self.state_dir)
            .env("STRATUS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn agent"));
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("running")
    }

    /// Send a signal (`KILL`, `STOP`, `CONT`, `USR1`, `USR2`).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(st.success(), "kill -{sig}");
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the process again with the same state dir (VMs that survived are still there).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// VMs this host holds.
    pub fn vms(&self) -> Vec<String> {
        vm_ids(&self.state_dir.join("vms"))
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-CONT").arg(c.id().to_string()).status();
        }
        self.kill9();
    }
}

/// The typed id of a server id the API returned (tests read the datastore by it).
pub fn sid(id: impl AsRef<str>) -> stratus_types::ServerId {
    id.as_ref().parse().expect("server id")
}

/// A volume id from the API's text (tests only: a bad one fails the test).
pub fn vid(id: impl AsRef<str>) -> stratus_types::VolumeId {
    id.as_ref().parse().expect("volume id")
}

/// Server ids of the VM files a fake host keeps in `dir`.
pub fn vm_ids(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name().to_string_lossy().strip_suffix(".json").filter(|n| !n.starts_with('.')).map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// A fresh PostgreSQL database on the machine's server
/// (`STRATUS_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432`),
/// dropped on drop. Fails loudly when PostgreSQL does not answer.
pub struct PgDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let server = std::env::var("STRATUS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
            .trim_end_matches('/')
            .to_string();
        let name = format!("stratus_e2e_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server} does not answer: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&admin).await.expect("create database");
        admin.close().await;
        let url = format!("{server}/{name}");
        Self { server, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&format!("{server}/postgres")).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A Ceph pool of the calling test's own (one placement group, rbd
/// initialised), so that the storage `stratus audit` compares with a cloud's
/// records holds that cloud's volumes only, never another concurrent test's.
/// `CEPH_CONF` must be set (scripts/test starts a single-node Ceph). Pools
/// are not removed: the test cluster is throwaway.
pub fn ceph_pool() -> String {
    let name = format!("stratus-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    for (prog, args) in
        [("ceph", vec!["osd", "pool", "create", name.as_str(), "1", "1"]), ("rbd", vec!["pool", "init", name.as_str()])]
    {
        let out = Command::new(prog).args(&args).output().unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
        assert!(out.status.success(), "{prog} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    name
}
