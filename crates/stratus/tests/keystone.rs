//! `stratus up --keystone-url` against a real Keystone (issue 10): Keystone
//! 30.0.0 from PyPI, started by `scripts/keystone/start`, issues the tokens;
//! Stratus validates them there, authorises by their project and roles,
//! honours revocation within its cache TTL, answers 503 when Keystone is
//! gone, and publishes its endpoints in Keystone's catalog.
//!
//! This test needs the Keystone: when the script cannot provide one (no
//! Python, no PyPI), it fails with the script's output, never skips.

mod common;

use common::Cloud;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SERVICE_PW: &str = "stratus-service-pw";

/// A Keystone started by `scripts/keystone/start`, stopped on drop.
struct Keystone {
    url: String,
    dir: PathBuf,
    admin_pw: String,
    http: Client,
    stopped: bool,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/keystone").join(name)
}

impl Keystone {
    fn start() -> Self {
        let out = Command::new(script("start")).arg("--env").output().expect("run scripts/keystone/start");
        assert!(
            out.status.success(),
            "scripts/keystone/start could not provide a Keystone (this test needs one):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let var = |name: &str| {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in the output of scripts/keystone/start: {stdout}"))
                .to_string()
        };
        Self {
            url: var("KEYSTONE_URL"),
            dir: PathBuf::from(var("KEYSTONE_DIR")),
            admin_pw: var("KEYSTONE_ADMIN_PASSWORD"),
            http: Client::new(),
            stopped: false,
        }
    }

    fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = Command::new(script("stop")).arg(&self.dir).status();
        }
    }

    /// A project-scoped token, as any client gets one.
    async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}, "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = self.http.post(format!("{}/v3/auth/tokens", self.url)).json(&body).send().await.expect("keystone");
        assert_eq!(r.status(), StatusCode::CREATED, "token for {user}");
        r.headers()["x-subject-token"].to_str().expect("token").to_string()
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}/v3{path}", self.url)).header("X-Auth-Token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("keystone");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Create a project, or find it.
    async fn project(&self, admin: &str, name: &str) -> String {
        let (s, v) = self
            .call(admin, Method::POST, "/projects", Some(json!({"project": {"name": name, "domain_id": "default"}})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["project"]["id"].as_str().expect("id").to_string()
    }

    /// Create a user with `role` on `project`.
    async fn user(&self, admin: &str, name: &str, pw: &str, project: &str, role: &str) {
        let (s, v) = self
            .call(
                admin,
                Method::POST,
                "/users",
                Some(json!({"user": {"name": name, "password": pw, "domain_id": "default"}})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let user = v["user"]["id"].as_str().expect("id").to_string();
        let (_, roles) = self.call(admin, Method::GET, &format!("/roles?name={role}"), None).await;
        let role = roles["roles"][0]["id"].as_str().expect("role").to_string();
        let (s, _) =
            self.call(admin, Method::PUT, &format!("/projects/{project}/users/{user}/roles/{role}"), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The public endpoints of `kind` in a catalog.
fn public_urls(catalog: &Value, kind: &str) -> Vec<String> {
    catalog["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == kind)
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["interface"] == "public")
        .filter_map(|e| e["url"].as_str().map(str::to_string))
        .collect()
}

/// Mirrors a Nova/Cinder/Glance deployment behind keystonemiddleware: the
/// tokens are Keystone's, another project's server is a 404, a reader cannot
/// create, a revoked token stops working once the middleware's cache expires,
/// and an unreachable Keystone is a 503 (never an accepted token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_issues_the_tokens() {
    let mut ks = Keystone::start();
    let admin = ks.token("admin", &ks.admin_pw.clone(), "admin").await;
    let service = ks.project(&admin, "service").await;
    ks.user(&admin, "stratus", SERVICE_PW, &service, "admin").await;
    let demo_p = ks.project(&admin, "demo").await;
    let alt_p = ks.project(&admin, "alt").await;
    ks.user(&admin, "demo", "demo-pw", &demo_p, "member").await;
    ks.user(&admin, "reader", "reader-pw", &demo_p, "reader").await;
    ks.user(&admin, "alt", "alt-pw", &alt_p, "member").await;

    let keystone_env = [("STRATUS_KEYSTONE_PASSWORD", SERVICE_PW), ("STRATUS_KEYSTONE_CACHE_TTL", "1")];
    let cloud = Cloud::start_with_args(&["--keystone-url", &format!("{}/v3", ks.url)], &keystone_env).await;

    // A member's Keystone token works on every API, in its project.
    let demo = ks.token("demo", "demo-pw", "demo").await;
    let (s, v) = cloud.call(&demo, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let server = cloud.create_server(&demo, "web").await;
    let (s, v) = cloud.call(&demo, Method::GET, &format!("/volume/v3/{demo_p}/volumes"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Another project's server does not exist for it.
    let alt = ks.token("alt", "alt-pw", "alt").await;
    let (s, v) = cloud.call(&alt, Method::GET, &format!("/compute/v2.1/servers/{server}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A reader sees its project's server but cannot create one.
    let reader = ks.token("reader", "reader-pw", "demo").await;
    let (s, v) = cloud.call(&reader, Method::GET, &format!("/compute/v2.1/servers/{server}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let image = cloud.cirros(&reader).await;
    let body = json!({"server": {"name": "no", "imageRef": image, "flavorRef": "1"}});
    let (s, v) = cloud.call(&reader, Method::POST, "/compute/v2.1/servers", Some(body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // No token, or a made-up one: 401 as ever.
    let (s, _) = cloud.call("not-a-token", Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The built-in Identity API is not served: 404 naming the Keystone.
    let r = cloud.http.get(format!("{}/identity/v3", cloud.url)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.expect("fault");
    assert!(v["error"]["message"].as_str().expect("message").contains(&ks.url), "{v}");

    // Keystone's catalog lists the compute, image and block storage endpoints at Stratus.
    let (s, catalog) = ks.call(&demo, Method::GET, "/auth/catalog", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(public_urls(&catalog, "compute"), [format!("{}/compute/v2.1", cloud.url)]);
    assert_eq!(public_urls(&catalog, "image"), [format!("{}/image", cloud.url)]);
    for kind in ["volumev3", "block-storage"] {
        assert_eq!(public_urls(&catalog, kind), [format!("{}/volume/v3/{demo_p}", cloud.url)], "{kind}");
    }

    // A revoked token is refused once the cache TTL (1 s here) has passed.
    let doomed = ks.token("demo", "demo-pw", "demo").await;
    let (s, _) = cloud.call(&doomed, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::OK);
    let r = ks
        .http
        .delete(format!("{}/v3/auth/tokens", ks.url))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &doomed)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, v) = cloud.call(&doomed, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = cloud.call(&demo, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::OK, "the other token still works");

    // Publishing is idempotent: a second Stratus updates the endpoints, never adds.
    {
        let second = Cloud::start_with_args(&["--keystone-url", &ks.url], &keystone_env).await;
        let (_, catalog) = ks.call(&demo, Method::GET, "/auth/catalog", None).await;
        assert_eq!(public_urls(&catalog, "compute"), [format!("{}/compute/v2.1", second.url)]);
        let (_, services) = ks.call(&admin, Method::GET, "/services?type=compute", None).await;
        assert_eq!(services["services"].as_array().map(Vec::len), Some(1), "{services}");
    }

    // Keystone gone: 503 with a fault body once the cache has expired; never a 500.
    ks.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, v) = cloud.call(&demo, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["serviceUnavailable"]["code"], 503, "{v}");
    let (s, v) = cloud.call(&demo, Method::GET, "/image/v2/images", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}
