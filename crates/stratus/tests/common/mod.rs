//! Test harness: starts a real `stratus up` process on a free port with a
//! temp data dir, and talks to it over HTTP like any OpenStack client.

#![allow(dead_code)]

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
    env: Vec<(String, String)>,
    owns_dir: bool,
}

impl Cloud {
    /// Start with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Start with extra `STRATUS_*` environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("stratus-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = Self { child: None, url: String::new(), data_dir: dir, http: Client::new(), env, owns_dir: true };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
        cmd.arg("up")
            .arg("--listen")
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
        self.url =
            url.unwrap_or_else(|| panic!("stratus did not start; see {}", self.data_dir.join("stratus.log").display()));
        self.child = Some(child);
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
            assert!(st != "ERROR" || status == "ERROR", "server {id} went ERROR: {v}");
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
        stratus_db::Datastore::open_sqlite(&self.data_dir.join("stratus.db")).await.expect("open db")
    }

    /// VMs the fake driver of `host` holds.
    pub fn vms(&self, host: &str) -> Vec<String> {
        let p = self.data_dir.join("hosts").join(host).join("vms.json");
        let Ok(b) = std::fs::read(p) else { return vec![] };
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
