//! Holes found from outside (issue 11), each pinned by a test against a real
//! `stratus up` process.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn login(c: &Cloud, user: &str, password: &str) -> (StatusCode, Option<String>, Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}}});
    let r = c.http.post(format!("{}/identity/v3/auth/tokens", c.url)).json(&body).send().await.expect("auth");
    let status = r.status();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Keystone's `lockout_failure_attempts` / `lockout_duration`: after 6 wrong
/// passwords the account is locked (401 saying so) even for the right
/// password, until an administrator sets a new one; and one address
/// guessing many names is told to slow down (429 with Retry-After).
#[tokio::test]
async fn password_guessing_locks_the_account_and_slows_the_source() {
    let c = Cloud::start().await;
    let admin = c.admin().await;
    for _ in 0..6 {
        let (s, _, _) = login(&c, "demo", "wrong-password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, v) = login(&c, "demo", DEMO_PW).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "locked even with the right password: {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("locked"), "{v}");
    // An administrator's new password lifts the lock.
    let (_, users) = c.call(&admin, reqwest::Method::GET, "/identity/v3/users?name=demo", None).await;
    let demo_id = users["users"][0]["id"].as_str().expect("demo id").to_string();
    let (s, v) = c
        .call(
            &admin,
            reqwest::Method::PATCH,
            &format!("/identity/v3/users/{demo_id}"),
            Some(json!({"user": {"password": "a-new-demo-secret"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = login(&c, "demo", "a-new-demo-secret").await;
    assert_eq!(s, StatusCode::CREATED, "unlocked by the administrator: {v}");

    // A spray of names from one address: after 30 failures in a minute, 429.
    let mut limited = None;
    for i in 0..40 {
        let (s, retry, _) = login(&c, &format!("nobody-{i}"), "guess").await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, retry));
            break;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (i, retry) = limited.expect("the source is limited");
    assert_eq!(i, 24, "limited after 30 failures from this address (the 6 wrong demo passwords count too)");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|r| (1..=60).contains(&r)), "Retry-After");
}

/// Nova creates all of a multi-create or none: a request for two servers
/// booting from one existing volume is refused (Nova: "Cannot attach one or
/// more volumes to multiple instances") and leaves no server behind.
#[tokio::test]
async fn a_multi_create_that_fails_leaves_no_server_behind() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let (s, v) = c
        .call(&tok, reqwest::Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "name": "v"}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vol = v["volume"]["id"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, v) = c.call(&tok, reqwest::Method::GET, &format!("/volume/v3/volumes/{vol}"), None).await;
        if v["volume"]["status"] == "available" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let bdm = json!([{"boot_index": 0, "uuid": vol, "source_type": "volume", "destination_type": "volume"}]);
    let body = json!({"server": {"name": "two", "imageRef": "", "flavorRef": "1", "min_count": 2, "max_count": 2, "block_device_mapping_v2": bdm}});
    let (s, v) = c.call(&tok, reqwest::Method::POST, "/compute/v2.1/servers", Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = c.call(&tok, reqwest::Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(v["servers"].as_array().map(Vec::len), Some(0), "no server left behind: {v}");
    let (_, v) = c.call(&tok, reqwest::Method::GET, &format!("/volume/v3/volumes/{vol}"), None).await;
    assert_eq!(v["volume"]["status"], "available", "the volume is not held: {v}");
}

/// Files in the data dir are private whatever the umask, also when they
/// existed before with wider modes: the database, the passwords and
/// clouds.yaml 0600, the directories 0700.
#[tokio::test]
async fn the_data_dir_is_private_even_when_it_existed_world_readable() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut c = Cloud::start().await;
    let _ = c.demo().await;
    c.keep_dir();
    let dir = c.data_dir.clone();
    drop(c);
    // Widen everything, as a permissive umask or an operator's copy would.
    let open =
        |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    open(&dir, 0o777);
    for e in std::fs::read_dir(&dir).expect("ls").flatten() {
        open(&e.path(), if e.path().is_dir() { 0o777 } else { 0o666 });
    }
    let c = Cloud::start_in(&dir).await;
    let _tok = c.demo().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for name in ["stratus.db", "clouds.yaml"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    for e in std::fs::read_dir(&dir).expect("ls").flatten() {
        let want = if e.path().is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&e.path()), want, "{}", e.path().display());
    }
}

/// Peak resident memory of a process, KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// One member must not exhaust the API's memory: an image download is
/// streamed from disk (Glance streams too), so downloading a 1 GiB image
/// raises the API's peak memory by a small buffer, not by the image.
#[tokio::test]
async fn an_image_download_is_streamed_not_read_into_memory() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let body = json!({"name": "big", "disk_format": "raw", "container_format": "bare"});
    let (s, v) = c.call(&tok, reqwest::Method::POST, "/image/v2/images", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let r = c
        .http
        .put(format!("{}/image/v2/images/{id}/file", c.url))
        .header("X-Auth-Token", &tok)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 4096])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Grow the stored file to 1 GiB (sparse), as a large upload would have.
    let f = std::fs::OpenOptions::new().write(true).open(c.data_dir.join("images").join(&id)).expect("image file");
    f.set_len(1 << 30).expect("grow");
    let pid = c.child.as_ref().expect("running").id();
    let before = vm_hwm_kib(pid);
    let mut r = c
        .http
        .get(format!("{}/image/v2/images/{id}/file", c.url))
        .header("X-Auth-Token", &tok)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), StatusCode::OK);
    let mut got: u64 = 0;
    while let Some(chunk) = r.chunk().await.expect("chunk") {
        got += chunk.len() as u64;
    }
    assert_eq!(got, 1 << 30, "every byte arrives");
    let grown = vm_hwm_kib(pid).saturating_sub(before);
    assert!(grown < 256 * 1024, "the API's peak memory grew by {grown} KiB for a 1 GiB download");
}

/// Glance's image quotas (`image_count_total`, `image_size_total`): a
/// project over them gets 413, and an upload over the size quota leaves the
/// image `queued` with nothing stored.
#[tokio::test]
async fn image_quotas_bound_what_one_project_stores() {
    let c = Cloud::start_with(&[("STRATUS_IMAGE_COUNT_TOTAL", "2"), ("STRATUS_IMAGE_SIZE_TOTAL_MB", "1")]).await;
    let tok = c.demo().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = json!({"name": format!("i{i}"), "disk_format": "raw", "container_format": "bare"});
        let (s, v) = c.call(&tok, reqwest::Method::POST, "/image/v2/images", Some(body)).await;
        if i < 2 {
            assert_eq!(s, StatusCode::CREATED, "{v}");
            ids.push(v["id"].as_str().expect("id").to_string());
        } else {
            assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "the third image is over image_count_total: {v}");
        }
    }
    // A client of its own: the server answers 413 before reading the whole
    // body and closes that connection, which must not poison the shared pool.
    let r = reqwest::Client::new()
        .put(format!("{}/image/v2/images/{}/file", c.url, ids[0]))
        .header("X-Auth-Token", &tok)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 2 << 20])
        .send()
        .await;
    // The server refuses as soon as the quota is passed; the client may see
    // the 413, or the connection closed under the rest of its body.
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "2 MiB over a 1 MiB image_size_total"),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let (_, v) = c.call(&tok, reqwest::Method::GET, &format!("/image/v2/images/{}", ids[0]), None).await;
    assert_eq!(v["status"], "queued", "{v}");
    assert!(!c.data_dir.join("images").join(&ids[0]).exists(), "nothing stored");
    let r = c
        .http
        .put(format!("{}/image/v2/images/{}/file", c.url, ids[0]))
        .header("X-Auth-Token", &tok)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 512 << 10])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "within the quota");
}

/// The admin scope, explicit: as in Nova's and Keystone's default policies
/// (project-scoped tokens, `admin` role), the `admin` role on ANY project is
/// cloud-wide admin: it lists every project's servers and forces hosts down.
/// A member of the same project is not. Operators grant `admin` only to
/// operators (README, Security).
#[tokio::test]
async fn the_admin_role_on_any_project_is_cloud_admin_and_member_is_not() {
    let c = Cloud::start().await;
    let admin = c.admin().await;
    let demo = c.demo().await;
    let mine = c.create_server(&demo, "demo-vm").await;
    let call = |tok: String, m: reqwest::Method, p: String, b: Option<Value>| {
        let c = &c;
        async move { c.call(&tok, m, &p, b).await }
    };
    let (s, v) = call(
        admin.clone(),
        reqwest::Method::POST,
        "/identity/v3/projects".into(),
        Some(json!({"project": {"name": "ops"}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ops = v["project"]["id"].as_str().expect("id").to_string();
    let mut users = Vec::new();
    for name in ["ops-admin", "ops-member"] {
        let body = json!({"user": {"name": name, "password": "ops-secret-pw", "default_project_id": ops}});
        let (s, v) = call(admin.clone(), reqwest::Method::POST, "/identity/v3/users".into(), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        users.push(v["user"]["id"].as_str().expect("id").to_string());
    }
    let (_, roles) = call(admin.clone(), reqwest::Method::GET, "/identity/v3/roles".into(), None).await;
    let role = |n: &str| {
        roles["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == n)
            .and_then(|r| r["id"].as_str())
            .map(str::to_string)
            .expect("role")
    };
    for (user, r) in [(&users[0], role("admin")), (&users[1], role("member"))] {
        let (s, v) = call(
            admin.clone(),
            reqwest::Method::PUT,
            format!("/identity/v3/projects/{ops}/users/{user}/roles/{r}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    let ops_admin = c.token("ops-admin", "ops-secret-pw", "ops").await;
    let ops_member = c.token("ops-member", "ops-secret-pw", "ops").await;
    let list = "/compute/v2.1/servers?all_tenants=1".to_string();
    let (s, v) = call(ops_admin.clone(), reqwest::Method::GET, list.clone(), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["servers"].as_array().into_iter().flatten().any(|x| x["id"] == mine.as_str()),
        "an admin anywhere sees demo's server: {v}"
    );
    let (s, _) = call(ops_member.clone(), reqwest::Method::GET, list, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "all_tenants is admin-only");
    let (s, _) = call(ops_member, reqwest::Method::GET, format!("/compute/v2.1/servers/{mine}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another project's server is a 404 to a member");
    let (s, _) = call(ops_admin, reqwest::Method::GET, format!("/compute/v2.1/servers/{mine}"), None).await;
    assert_eq!(s, StatusCode::OK, "and visible to an admin of any project");
}
