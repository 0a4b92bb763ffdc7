//! End-to-end tests of the embedded cloud: a real `stratus up` process
//! driven over HTTP, as OpenStack clients drive Nova.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Nova: POST /servers → 202, server goes ACTIVE; DELETE → 204, then GET → 404.
#[tokio::test]
async fn boot_then_delete_many_servers_concurrently() {
    let cloud = Cloud::start_with(&[("STRATUS_QUOTA_INSTANCES", "100"), ("STRATUS_QUOTA_CORES", "100")]).await;
    let tok = cloud.demo().await;
    let n = 40;
    let ids = futures_join((0..n).map(|i| {
        let c = &cloud;
        let t = tok.clone();
        async move { c.create_server(&t, &format!("vm-{i}")).await }
    }))
    .await;
    for id in &ids {
        let v = cloud.wait_status(&tok, id, "ACTIVE", T).await;
        let s = &v["server"];
        assert_eq!(s["OS-EXT-STS:power_state"], 1);
        assert!(
            s["addresses"]["private"][0]["addr"].as_str().is_some_and(|a| a.starts_with("10.0.")),
            "fixed IP shown: {s}"
        );
    }
    let (_, lim) = cloud.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], n);
    let statuses = futures_join(ids.iter().map(|id| {
        let c = &cloud;
        let t = tok.clone();
        async move { c.call(&t, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await }
    }))
    .await;
    for (s, body) in statuses {
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(body.is_null(), "DELETE has an empty body");
    }
    for id in &ids {
        cloud.wait_gone(&tok, id, T).await;
    }
    let (_, lim) = cloud.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 0, "quota usage drops with the deletes");
    assert_eq!(lim["limits"]["absolute"]["totalCoresUsed"], 0);
    // No VM left on any host, and one delete.start/.end pair per server.
    let db = cloud.db().await;
    for id in &ids {
        let n: Vec<String> = db
            .notification_list_for_server(&sid(id))
            .await
            .expect("notifications")
            .into_iter()
            .map(|n| n.event_type)
            .collect();
        assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{n:?}");
        assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{n:?}");
        assert!(db.port_list_for_server(&sid(id)).await.expect("ports").is_empty(), "ports released");
    }
    assert!(cloud.vms("compute-1").is_empty() && cloud.vms("compute-2").is_empty(), "VMs destroyed on the hosts");
}

async fn futures_join<F: std::future::Future>(it: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(it).await
}

/// State lives in the data dir: servers, users, passwords and tokens survive a restart.
#[tokio::test]
async fn restart_keeps_servers_users_and_tokens() {
    let mut cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "keeper").await;
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    cloud.restart().await;
    // The old token is still valid, the server still ACTIVE on its host.
    let v = cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(v["server"]["name"], "keeper");
    let tok2 = cloud.demo().await;
    assert_ne!(tok, tok2);
    let (s, _) = cloud.call(&tok2, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    cloud.wait_gone(&tok2, &id, T).await;
}

/// Nova: another project's server is 404 (not 403) for a non-admin; admins see and delete it.
#[tokio::test]
async fn projects_are_isolated_and_admin_sees_all() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin().await;
    let demo = cloud.demo().await;
    let admins_vm = cloud.create_server(&admin, "admins-vm").await;
    let demos_vm = cloud.create_server(&demo, "demos-vm").await;
    cloud.wait_status(&demo, &demos_vm, "ACTIVE", T).await;
    for (m, p) in [
        (Method::GET, format!("/compute/v2.1/servers/{admins_vm}")),
        (Method::DELETE, format!("/compute/v2.1/servers/{admins_vm}")),
        (Method::GET, format!("/compute/v2.1/servers/{admins_vm}/os-instance-actions")),
    ] {
        let (s, v) = cloud.call(&demo, m, &p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {v}");
        assert_eq!(v["itemNotFound"]["code"], 404);
    }
    let (_, v) = cloud.call(&demo, Method::GET, "/compute/v2.1/servers", None).await;
    let names: Vec<&str> = v["servers"].as_array().expect("list").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, vec!["demos-vm"]);
    let (s, _) = cloud.call(&demo, Method::GET, "/compute/v2.1/servers?all_tenants=1", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = cloud.call(&admin, Method::GET, "/compute/v2.1/servers/detail?all_tenants=1", None).await;
    assert_eq!(v["servers"].as_array().expect("list").len(), 2);
    let (s, _) = cloud.call(&admin, Method::DELETE, &format!("/compute/v2.1/servers/{demos_vm}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "admin may delete another project's server");
    cloud.wait_gone(&demo, &demos_vm, T).await;
    let (s, _) = cloud.call(&demo, Method::GET, "/compute/v2.1/os-services", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "services are admin-only");
}

/// Bad input is a 4xx with a fault body, never a 500 (Nova's schema validation and microversion rules).
#[tokio::test]
async fn bad_input_gets_clear_client_errors() {
    let cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let image = cloud.cirros(&tok).await;
    let id = cloud.create_server(&tok, "target").await;
    let srv = "/compute/v2.1/servers";
    // (method, path, body, headers, expected status)
    type Case<'a> = (Method, String, Option<&'a str>, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        (Method::POST, srv.into(), Some("{not json"), vec![], 400),
        (Method::POST, srv.into(), Some("{}"), vec![], 400),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "bogus": 1}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "", "flavorRef": "1", "imageRef": "IMG"}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": " x", "flavorRef": "1", "imageRef": "IMG"}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "999", "imageRef": "IMG"}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "1", "imageRef": "not-a-uuid"}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "1", "imageRef": "6f0c4b1e-0000-4000-8000-000000000000"}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "metadata": {"k": 1}}}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            srv.into(),
            Some(r#"{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "max_count": 0}}"#),
            vec![],
            400,
        ),
        (Method::GET, format!("{srv}/not-a-uuid"), None, vec![], 404),
        (Method::GET, format!("{srv}/6f0c4b1e-0000-4000-8000-000000000000"), None, vec![], 404),
        (Method::DELETE, format!("{srv}/6f0c4b1e-0000-4000-8000-000000000000"), None, vec![], 404),
        (Method::GET, format!("{srv}?limit=abc"), None, vec![], 400),
        // Nova: an unknown status lists nothing below 2.38, and is a 400 from it.
        (Method::GET, format!("{srv}?status=NOPE"), None, vec![], 200),
        (Method::GET, format!("{srv}?status=NOPE"), None, vec![("OpenStack-API-Version", "compute 2.38")], 400),
        (Method::GET, format!("{srv}?marker=6f0c4b1e-0000-4000-8000-000000000000"), None, vec![], 400),
        (Method::POST, format!("{srv}/ID/action"), Some(r#"{"reboot": {}}"#), vec![], 400),
        (Method::POST, format!("{srv}/ID/action"), Some(r#"{"reboot": {"type": "WARM"}}"#), vec![], 400),
        (Method::POST, format!("{srv}/ID/action"), Some(r#"{"explode": null}"#), vec![], 400),
        (Method::POST, format!("{srv}/ID/action"), Some(r#"{"os-stop": null, "os-start": null}"#), vec![], 400),
        (Method::GET, srv.into(), None, vec![("OpenStack-API-Version", "compute 2.999")], 406),
        (Method::GET, srv.into(), None, vec![("OpenStack-API-Version", "compute two")], 400),
        (Method::GET, "/compute/v2.1/flavors/77".into(), None, vec![], 404),
        (Method::GET, "/compute/v2.1/nothing-here".into(), None, vec![], 404),
    ];
    for (m, path, body, headers, want) in cases {
        let path = path.replace("ID", &id);
        let mut rb = cloud.http.request(m.clone(), format!("{}{}", cloud.url, path)).header("X-Auth-Token", &tok);
        for (k, v) in &headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json").body(b.replace("IMG", &image));
        }
        let r = rb.send().await.expect("send");
        let status = r.status().as_u16();
        assert!(r.headers().contains_key("x-openstack-request-id"), "request id on every response");
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, want, "{m} {path} {body:?} -> {status} {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("fault body is JSON: {text}"));
        if want == 200 {
            // Not a fault: what Nova answers where a later microversion refuses.
            assert_eq!(v["servers"], serde_json::json!([]), "{text}");
            continue;
        }
        let fault = v.as_object().and_then(|o| o.values().next()).expect("fault object");
        assert_eq!(fault["code"], want, "{text}");
        assert!(fault["message"].as_str().is_some_and(|m| !m.is_empty()), "{text}");
    }
    // No token, and a bogus token: 401.
    let r = cloud.http.get(format!("{}{srv}", cloud.url)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r =
        cloud.http.get(format!("{}{srv}", cloud.url)).header("X-Auth-Token", "deadbeef").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Nothing was created by the bad requests.
    let (_, lim) = cloud.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 1);
}

/// Nova: over quota → 403 "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances".
#[tokio::test]
async fn quota_is_enforced_by_counting() {
    let cloud = Cloud::start_with(&[("STRATUS_QUOTA_INSTANCES", "2")]).await;
    let tok = cloud.demo().await;
    let image = cloud.cirros(&tok).await;
    let a = cloud.create_server(&tok, "a").await;
    let _b = cloud.create_server(&tok, "b").await;
    let (s, v) = cloud
        .call(
            &tok,
            Method::POST,
            "/compute/v2.1/servers",
            Some(json!({"server": {"name": "c", "imageRef": image, "flavorRef": "1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        v["forbidden"]["message"],
        "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
    );
    let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{a}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    cloud.wait_gone(&tok, &a, T).await;
    let (s, v) = cloud
        .call(
            &tok,
            Method::POST,
            "/compute/v2.1/servers",
            Some(json!({"server": {"name": "c", "imageRef": image, "flavorRef": "1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "usage is counted, so the freed slot is usable at once: {v}");
}

/// Nova: stop/start/reboot with their state rules; 409 with Nova's message otherwise.
#[tokio::test]
async fn power_actions_follow_nova_state_rules() {
    let cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "p").await;
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let act = |body: serde_json::Value| {
        let c = &cloud;
        let t = tok.clone();
        let id = id.clone();
        async move { c.call(&t, Method::POST, &format!("/compute/v2.1/servers/{id}/action"), Some(body)).await }
    };
    let (s, _) = act(json!({"os-start": null})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = act(json!({"os-stop": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let v = cloud.wait_status(&tok, &id, "SHUTOFF", T).await;
    assert_eq!(v["server"]["OS-EXT-STS:power_state"], 4);
    let (s, v) = act(json!({"os-stop": null})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        v["conflictingRequest"]["message"],
        format!("Cannot 'stop' instance {id} while it is in vm_state stopped")
    );
    let (s, _) = act(json!({"reboot": {"type": "SOFT"}})).await;
    assert_eq!(s, StatusCode::CONFLICT, "soft reboot only from ACTIVE");
    let (s, _) = act(json!({"reboot": {"type": "HARD"}})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "hard reboot from SHUTOFF");
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let (s, _) = act(json!({"os-stop": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    cloud.wait_status(&tok, &id, "SHUTOFF", T).await;
    let (s, _) = act(json!({"os-start": null})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let (_, v) = cloud.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{id}/os-instance-actions"), None).await;
    let actions: Vec<&str> =
        v["instanceActions"].as_array().expect("actions").iter().filter_map(|a| a["action"].as_str()).collect();
    assert_eq!(actions, vec!["start", "stop", "reboot", "stop", "create"], "newest first");
}

/// Delete during spawn cancels the build; repeated DELETEs are 204 and
/// create one operation and one notification pair (Nova ignores repeats; we re-drive).
#[tokio::test]
async fn delete_during_build_and_repeated_deletes() {
    let cloud = Cloud::start_with(&[("STRATUS_FAKE_SPAWN_DELAY", "3")]).await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "slow").await;
    // Wait until it is placed (spawning), then delete three times.
    let deadline = std::time::Instant::now() + T;
    loop {
        let (_, v) = cloud.call(&cloud.admin().await, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
        if v["server"]["OS-EXT-STS:task_state"] == "spawning" {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let took = cloud.wait_gone(&tok, &id, T).await;
    assert!(took < Duration::from_secs(3), "the spawn was cancelled, not waited for ({took:?})");
    let db = cloud.db().await;
    let n: Vec<String> =
        db.notification_list_for_server(&sid(&id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
    assert_eq!(n.iter().filter(|e| e.starts_with("instance.delete.")).count(), 2, "{n:?}");
    assert!(!n.iter().any(|e| e == "instance.create.end"), "never became active: {n:?}");
    let actions = db.action_list(&sid(&id)).await.expect("actions");
    assert_eq!(actions.iter().filter(|a| a.action == "delete").count(), 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(cloud.vms("compute-1").is_empty() && cloud.vms("compute-2").is_empty(), "no VM left behind");
}

/// Version documents and microversion headers (strict clients negotiate with them).
#[tokio::test]
async fn version_documents_and_microversion_headers() {
    let cloud = Cloud::start().await;
    let v: serde_json::Value =
        cloud.http.get(format!("{}/compute/", cloud.url)).send().await.expect("get").json().await.expect("json");
    // Nova lists the legacy v2.0 first (Tempest's test_list_api_versions checks it), then v2.1.
    assert_eq!(v["versions"][0]["id"], "v2.0");
    assert_eq!(v["versions"][1]["id"], "v2.1");
    assert_eq!(v["versions"][1]["min_version"], "2.1");
    // The newest served (MAX_COMPUTE; docs/compute-microversions.md).
    assert_eq!(v["versions"][1]["version"], "2.104");
    let tok = cloud.demo().await;
    let r = cloud
        .http
        .get(format!("{}/compute/v2.1/servers", cloud.url))
        .header("X-Auth-Token", &tok)
        .header("OpenStack-API-Version", "compute 2.9")
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["openstack-api-version"], "compute 2.9");
    assert_eq!(r.headers()["x-openstack-nova-api-version"], "2.9");
    assert!(r.headers().contains_key("x-compute-request-id"));
    // `locked` appears from 2.9 only.
    let id = cloud.create_server(&tok, "mv").await;
    let at = |mv: &'static str| {
        let c = &cloud;
        let t = tok.clone();
        let id = id.clone();
        async move {
            let r = c
                .http
                .get(format!("{}/compute/v2.1/servers/{id}", c.url))
                .header("X-Auth-Token", t)
                .header("OpenStack-API-Version", mv)
                .send()
                .await
                .expect("get");
            r.json::<serde_json::Value>().await.expect("json")
        }
    };
    assert!(at("compute 2.8").await["server"].get("locked").is_none());
    assert_eq!(at("compute 2.9").await["server"]["locked"], false);
    let doc: serde_json::Value = cloud
        .http
        .get(format!("{}/compute/openapi.json", cloud.url))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(doc["paths"]["/compute/v2.1/servers/{id}"]["delete"].is_object());
}

/// `stratus audit` reports a VM no server accounts for, exits non-zero, and `--repair` removes it.
#[tokio::test]
async fn audit_finds_and_repairs_leaks() {
    let mut cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "kept").await;
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let (clean, report) = cloud.audit();
    assert!(clean, "{report}");
    cloud.kill();
    // A VM left behind on a host by something outside Stratus's knowledge.
    let dir = cloud.data_dir.join("hosts").join("compute-1").join("vms");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("6f0c4b1e-0000-4000-8000-00000000dead.json"),
        br#"{"server_id":"6f0c4b1e-0000-4000-8000-00000000dead","power_state":1}"#,
    )
    .expect("write");
    let (clean, report) = cloud.audit();
    assert!(!clean);
    assert!(report.contains("LEAK host compute-1 runs VM 6f0c4b1e-0000-4000-8000-00000000dead"), "{report}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["audit", "--repair", "--data-dir"])
        .arg(&cloud.data_dir)
        .output()
        .expect("repair");
    assert!(!out.status.success(), "the repairing run still reports what it found");
    let (clean, report) = cloud.audit();
    assert!(clean, "repaired: {report}");
    assert!(
        cloud.vms("compute-1").iter().chain(cloud.vms("compute-2").iter()).any(|v| *v == id),
        "the real server's VM is kept"
    );
}

/// Each kind of storage and capacity leak `stratus audit` knows is reported
/// (and none on the healthy cloud first): storage no live volume owns, a
/// live volume whose storage is gone, a watcher on an unattached volume (a
/// writer no fence will stop), a watcher no attachment records, capacity
/// held on a host that is not a service, a host holding more than it
/// offers, a zombie on an up host that runs no such VM.
#[tokio::test]
async fn audit_reports_each_kind_of_storage_and_capacity_leak() {
    use stratus_blockstore::BlockBackend;
    let mut cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let mut vols = Vec::new();
    for name in ["watched", "lost"] {
        let (s, v) = cloud
            .call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "name": name}})))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().expect("id").to_string();
        cloud.wait_volume(&tok, &id, "available", T).await;
        vols.push(id);
    }
    let image = cloud.cirros(&tok).await;
    let (s, v) = cloud.post_bfv_server(&tok, "bfv", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    let shown = cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let root = shown["server"]["os-extended-volumes:volumes_attached"][0]["id"].as_str().expect("root").to_string();
    // The healthy cloud, its root volume watched by the host's recorded client: clean.
    let (clean, report) = cloud.audit();
    assert!(clean, "{report}");
    cloud.kill();

    let dir = cloud.data_dir.join("volumes");
    let stray = "volume-00000000-0000-4000-8000-0000000000aa";
    std::fs::write(dir.join(format!("{stray}.img")), b"").expect("stray volume");
    std::fs::remove_file(dir.join(format!("volume-{}.img", vols[1]))).expect("lose a volume's storage");
    let backend = stratus_blockstore::local::LocalBackend::new(dir.clone());
    let writer = backend.open(&format!("volume-{}", vols[0])).await.expect("a writer on an unattached volume");
    let stranger = backend.open(&format!("volume-{root}")).await.expect("an unrecorded client of the root volume");
    let db = cloud.db().await;
    let zombie = |server: stratus_types::ServerId, host: &str| stratus_db::ZombieRow {
        server_id: server,
        host: host.into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        reason: "audit test".into(),
        created_at: chrono::Utc::now(),
    };
    db.zombie_record(&zombie(stratus_types::ServerId::new(), "ghost")).await.expect("zombie on a ghost host");
    let phantom = stratus_types::ServerId::new();
    db.zombie_record(&zombie(phantom, "compute-1")).await.expect("zombie with no VM");
    let none = stratus_db::HostCapacity { vcpus: 0, memory_mb: 0, disk_gb: 0 };
    db.service_join("compute-1", none, chrono::Duration::hours(1)).await.expect("shrink compute-1");

    let (clean, report) = cloud.audit();
    assert!(!clean, "{report}");
    for leak in [
        format!("LEAK local volume {stray} belongs to no live volume"),
        format!("LEAK volume {} is available but its local storage volume-{} does not exist", vols[1], vols[1]),
        format!("LEAK volume {} is available with no attachment but watched by [\"{}\"]", vols[0], writer.id().0),
        format!("LEAK volume {root} is watched by client {} that no attachment records", stranger.id().0),
        "LEAK capacity (1 vCPUs, 512 MiB, 1 GiB) held on host ghost, which is not a service".to_string(),
        "LEAK host compute-1 holds ".to_string(),
        format!("LEAK zombie {phantom} holds capacity on compute-1, which is up and runs no such VM"),
    ] {
        assert!(report.contains(&leak), "missing {leak:?} in:\n{report}");
    }
    drop((writer, stranger));
}

/// `up --driver qemu` seeds a bootable image: `cirros` is a blank raw disk whose
/// `kernel_id`, `ramdisk_id` and `os_command_line` name the guest's kernel (aki)
/// and ramdisk (ari) images, seeded from `--guest-dir`; a restart converges
/// instead of duplicating.
#[tokio::test]
async fn qemu_driver_seeds_a_kernel_booted_cirros() {
    let guest = std::env::temp_dir().join(format!("stratus-guest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&guest).expect("mkdir");
    std::fs::write(guest.join("vmlinuz"), b"a kernel").expect("write");
    std::fs::write(guest.join("initrd.img"), b"an initramfs").expect("write");
    let dir = guest.to_str().expect("utf-8 path");
    let mut cloud = Cloud::start_with_args(&["--driver", "qemu", "--guest-dir", dir], &[]).await;
    let token = cloud.demo().await;
    let image = |name: &'static str| {
        let (c, t) = (&cloud, token.clone());
        async move {
            let (s, v) = c.call(&t, Method::GET, &format!("/image/v2/images?name={name}"), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["images"].as_array().map(Vec::len), Some(1), "one {name}: {v}");
            v["images"][0].clone()
        }
    };
    let cirros = image("cirros").await;
    let kernel = image("cirros-kernel").await;
    let ramdisk = image("cirros-ramdisk").await;
    assert_eq!((cirros["disk_format"].as_str(), cirros["container_format"].as_str()), (Some("raw"), Some("bare")));
    assert_eq!(cirros["status"], "active");
    assert_eq!(cirros["kernel_id"], kernel["id"]);
    assert_eq!(cirros["ramdisk_id"], ramdisk["id"]);
    assert_eq!(cirros["os_command_line"], "console=ttyS0 quiet panic=-1");
    assert_eq!((kernel["disk_format"].as_str(), kernel["container_format"].as_str()), (Some("aki"), Some("aki")));
    assert_eq!((ramdisk["disk_format"].as_str(), ramdisk["container_format"].as_str()), (Some("ari"), Some("ari")));
    assert_eq!(kernel["size"], 8);
    assert_eq!(kernel["visibility"], "public");
    // A rebuilt guest: same ids, new bytes.
    std::fs::write(guest.join("vmlinuz"), b"a rebuilt kernel").expect("write");
    cloud.restart().await;
    let token = cloud.demo().await;
    let (s, v) = cloud.call(&token, Method::GET, "/image/v2/images?name=cirros-kernel", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["images"][0]["id"], kernel["id"]);
    assert_eq!(v["images"][0]["size"], 16);
    let (_, v) = cloud.call(&token, Method::GET, "/image/v2/images?name=cirros", None).await;
    assert_eq!(v["images"][0]["id"], cirros["id"]);
    cloud.kill();
    let _ = std::fs::remove_dir_all(&guest);
}

/// `up --driver qemu` without a built guest stops at once with an error that
/// names the script building it.
#[test]
fn qemu_driver_without_a_guest_is_a_clear_startup_error() {
    let data = std::env::temp_dir().join(format!("stratus-noguest-{}", uuid::Uuid::new_v4()));
    for extra in [&["--guest-dir", "/nonexistent/guest"][..], &[][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
            .args(["up", "--driver", "qemu", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .env_remove("STRATUS_GUEST_DIR")
            .output()
            .expect("run stratus up");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "up started without a guest: {stderr}");
        assert!(stderr.contains("scripts/guest/build-tiny-guest.sh"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// Nova's `os-getConsoleOutput`: 200 `{"output"}` with the fake driver's three
/// lines, `length` cuts the tail (`-1`, null or absent: all; an integer
/// string counts too), bad lengths are 400, another project's server is 404,
/// a stopped server still has its log, and a server without a host (shelved
/// offloaded) is 409.
#[tokio::test]
async fn console_output_follows_nova() {
    let cloud = Cloud::start_with(&[("STRATUS_SHELVED_OFFLOAD_TIME", "0")]).await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "con").await;
    cloud.wait_status(&tok, &id, "ACTIVE", T).await;
    let path = format!("/compute/v2.1/servers/{id}/action");
    let console = |tok: String, arg: serde_json::Value| {
        let (c, path) = (&cloud, path.clone());
        async move { c.call(&tok, Method::POST, &path, Some(json!({"os-getConsoleOutput": arg}))).await }
    };
    let lines = |v: &serde_json::Value| v["output"].as_str().expect("output").lines().count();
    let (s, v) = console(tok.clone(), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let all = stratus_driver::FAKE_CONSOLE_OUTPUT.lines().count();
    assert_eq!(lines(&v), all, "{v}");
    for (arg, want) in [
        (json!({"length": 1}), 1),
        (json!({"length": "2"}), 2),
        (json!({"length": -1}), all),
        (json!({"length": "-1"}), all),
        (json!({"length": null}), all),
        (json!({"length": 50}), all),
    ] {
        let (s, v) = console(tok.clone(), arg.clone()).await;
        assert_eq!((s, lines(&v)), (StatusCode::OK, want), "{arg}: {v}");
    }
    let (_, v) = console(tok.clone(), json!({"length": 0})).await;
    assert_eq!(v["output"], "");
    for arg in [json!({"length": -2}), json!({"length": "x"}), json!({"length": 1.5}), json!({"lines": 1}), json!(null)]
    {
        let (s, v) = console(tok.clone(), arg.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{arg}: {v}");
    }
    // Another project's server: not found, as any other call on it.
    let admin = cloud.admin().await;
    let theirs = cloud.create_server(&admin, "theirs").await;
    cloud.wait_status(&admin, &theirs, "ACTIVE", T).await;
    let (s, v) = cloud
        .call(
            &tok,
            Method::POST,
            &format!("/compute/v2.1/servers/{theirs}/action"),
            Some(json!({"os-getConsoleOutput": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // A stopped VM keeps its log.
    assert_eq!(cloud.call(&tok, Method::POST, &path, Some(json!({"os-stop": null}))).await.0, StatusCode::ACCEPTED);
    cloud.wait_status(&tok, &id, "SHUTOFF", T).await;
    let (s, v) = console(tok.clone(), json!({"length": 2})).await;
    assert_eq!((s, lines(&v)), (StatusCode::OK, 2), "{v}");
    // Shelved and offloaded: no host, nothing to ask.
    assert_eq!(cloud.call(&tok, Method::POST, &path, Some(json!({"shelve": null}))).await.0, StatusCode::ACCEPTED);
    cloud.wait_status(&tok, &id, "SHELVED_OFFLOADED", T).await;
    let (s, v) = console(tok.clone(), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

/// The value of `var` in the environment of running process `pid`.
fn process_env(pid: u32, var: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the process's environment");
    let prefix = format!("{var}=");
    environ.split(|b| *b == 0).map(String::from_utf8_lossy).find_map(|kv| kv.strip_prefix(&prefix).map(String::from))
}

/// Footprint (issue 12): `stratus` caps glibc's malloc arenas at 2 and fixes
/// its mmap threshold at 1 MiB by executing itself again at start (same
/// pid, still serving), and keeps what the operator set.
#[tokio::test]
async fn the_process_caps_malloc_arenas_unless_the_operator_chose() {
    let cloud = Cloud::start().await;
    let pid = cloud.child.as_ref().expect("the stratus process").id();
    assert_eq!(process_env(pid, "MALLOC_ARENA_MAX").as_deref(), Some("2"));
    assert_eq!(process_env(pid, "MALLOC_MMAP_THRESHOLD_").as_deref(), Some("1048576"));
    let tok = cloud.demo().await;
    let (s, _) = cloud.call(&tok, Method::GET, "/compute/v2.1/servers", None).await;
    assert_eq!(s, StatusCode::OK, "the re-executed process serves");

    // The operator's choice stands; what they left unset is still set.
    let chosen = Cloud::start_with(&[("MALLOC_ARENA_MAX", "8")]).await;
    let pid = chosen.child.as_ref().expect("the stratus process").id();
    assert_eq!(process_env(pid, "MALLOC_ARENA_MAX").as_deref(), Some("8"));
    assert_eq!(process_env(pid, "MALLOC_MMAP_THRESHOLD_").as_deref(), Some("1048576"));
    let both = Cloud::start_with(&[("MALLOC_ARENA_MAX", "4"), ("MALLOC_MMAP_THRESHOLD_", "65536")]).await;
    let pid = both.child.as_ref().expect("the stratus process").id();
    assert_eq!(process_env(pid, "MALLOC_ARENA_MAX").as_deref(), Some("4"));
    assert_eq!(process_env(pid, "MALLOC_MMAP_THRESHOLD_").as_deref(), Some("65536"));
}
