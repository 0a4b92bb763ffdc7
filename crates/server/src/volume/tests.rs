//! HTTP-level tests of the Block Storage API: status codes, fault bodies
//! and Cinder's JSON, through the real router and an in-memory backend.

use super::*;
use axum::body::{Body, to_bytes};
use axum::http::HeaderMap;
use std::path::PathBuf;
use tower::ServiceExt;

/// Removes the test's directory when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    state: AppState,
    ds: stratus_db::Datastore,
    backend: stratus_volume::testing::MemBackend,
    admin: String,
    demo: String,
    demo_project: String,
    admin_project: String,
    _dir: TempDir,
}

async fn env() -> Env {
    let dir = std::env::temp_dir().join(format!("stratus-volume-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open db");
    stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("admin");
    stratus_auth::bootstrap_user(&ds, "demo", "pw", "demo", "member", false).await.expect("demo");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let admin = identity
        .authenticate("admin", "pw", stratus_auth::ProjectScope::Name("admin".into()))
        .await
        .expect("admin token");
    let demo =
        identity.authenticate("demo", "pw", stratus_auth::ProjectScope::Name("demo".into())).await.expect("demo token");
    let (state, backend) = crate::volume::test_state(&ds, identity, dir.join("images"));
    let server = SERVER.parse().expect("uuid");
    stratus_volume::testing::insert_server(&ds, server, &demo.context.project_id).await.expect("demo's server");
    Env {
        state,
        ds,
        backend,
        admin_project: admin.context.project_id,
        admin: admin.token,
        demo_project: demo.context.project_id,
        demo: demo.token,
        _dir: TempDir(dir),
    }
}

async fn call(env: &Env, uri: &str, token: Option<&str>, version: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    send(env, "GET", uri, token, version, None).await
}

async fn send(
    env: &Env,
    method: &str,
    uri: &str,
    token: Option<&str>,
    version: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    if let Some(v) = version {
        req = req.header("openstack-api-version", v);
    }
    let resp = crate::router(env.state.clone())
        .oneshot(
            match body {
                Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
                None => req.body(Body::empty()),
            }
            .expect("request"),
        )
        .await
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("json") };
    (status, headers, json)
}

#[tokio::test]
async fn volume_version_discovery() {
    let env = env().await;
    for (path, status) in [
        ("/volume", StatusCode::MULTIPLE_CHOICES),
        ("/volume/", StatusCode::MULTIPLE_CHOICES),
        ("/volume/v3", StatusCode::OK),
        ("/volume/v3/", StatusCode::OK),
    ] {
        let (s, _, v) = call(&env, path, None, None).await;
        assert_eq!(s, status, "{path}");
        let ver = &v["versions"][0];
        assert_eq!(ver["id"], "v3.0");
        assert_eq!(ver["status"], "CURRENT");
        assert_eq!(ver["version"], "3.71");
        assert_eq!(ver["min_version"], "3.0");
        assert_eq!(ver["links"][0]["href"], "http://127.0.0.1:8774/volume/v3/");
        assert_eq!(ver["media-types"][0]["type"], "application/vnd.openstack.volume+json;version=3");
    }
}

#[tokio::test]
async fn volume_limits_for_own_project_only() {
    let env = env().await;
    let own = format!("/volume/v3/{}/limits", env.demo_project);
    let (s, h, v) = call(&env, &own, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["limits"]["rate"], json!([]));
    let abs = &v["limits"]["absolute"];
    assert_eq!(abs["maxTotalVolumes"], 10);
    assert_eq!(abs["maxTotalVolumeGigabytes"], 1000);
    assert_eq!(abs["totalVolumesUsed"], 0);
    assert_eq!(abs["totalGigabytesUsed"], 0);
    assert_eq!(abs.as_object().expect("absolute").len(), 10);
    assert_eq!(h.get("openstack-api-version").and_then(|v| v.to_str().ok()), Some("volume 3.0"));

    let other = format!("/volume/v3/{}/limits", env.admin_project);
    let (s, _, v) = call(&env, &other, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["forbidden"]["code"], 403);

    // Admins may look at any project.
    let (s, _, _) = call(&env, &own, Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&env, "/volume/v3/limits", Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _, _) = call(&env, &own, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn volume_lists_are_empty() {
    let env = env().await;
    for suffix in ["volumes", "volumes/detail"] {
        let (s, _, v) = call(&env, &format!("/volume/v3/{}/{suffix}", env.demo_project), Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"volumes": []}));
        let (s, _, v) = call(&env, &format!("/volume/v3/{suffix}"), Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"volumes": []}));
        let (s, _, _) = call(&env, &format!("/volume/v3/{}/{suffix}", env.admin_project), Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn volume_microversion_negotiation() {
    let env = env().await;
    let uri = format!("/volume/v3/{}/limits", env.demo_project);
    let echoed = |h: &HeaderMap| h.get("openstack-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (s, h, _) = call(&env, &uri, Some(&env.demo), Some("volume 3.59")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echoed(&h).as_deref(), Some("volume 3.59"));
    let (_, h, _) = call(&env, &uri, Some(&env.demo), Some("compute 2.90, volume latest")).await;
    assert_eq!(echoed(&h).as_deref(), Some("volume 3.71"));
    let (_, h, _) = call(&env, &uri, Some(&env.demo), Some("compute 2.90")).await;
    assert_eq!(echoed(&h).as_deref(), Some("volume 3.0"));
    let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 3.99")).await;
    assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
    let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 2.0")).await;
    assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
    let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume three")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

const SERVER: &str = "5f3d2a3e-0c1b-4f7a-9a57-1b2c3d4e5f60";

/// Create a volume as demo through the API; returns its JSON.
async fn create(env: &Env, size: i64, name: &str) -> Value {
    let uri = format!("/volume/v3/{}/volumes", env.demo_project);
    let (s, _, v) =
        send(env, "POST", &uri, Some(&env.demo), None, Some(json!({"volume": {"size": size, "name": name}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["volume"].clone()
}

#[tokio::test]
async fn volume_create_list_show_update_delete() {
    let env = env().await;
    let base = format!("/volume/v3/{}/volumes", env.demo_project);
    // The body the SDK sends for `openstack volume create --size 1 v1`.
    let body = json!({"volume": {
        "size": 1, "name": "v1", "description": null, "snapshot_id": null, "volume_type": null,
        "availability_zone": null, "metadata": {"k": "v"}, "imageRef": null, "source_volid": null,
        "consistencygroup_id": null, "backup_id": null
    }});
    let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vol = &v["volume"];
    let id = vol["id"].as_str().expect("id").to_string();
    assert_eq!(vol["status"], "available");
    assert_eq!(vol["size"], 1);
    assert_eq!(vol["name"], "v1");
    assert_eq!(vol["bootable"], "false");
    assert_eq!(vol["encrypted"], false);
    assert_eq!(vol["multiattach"], false);
    assert_eq!(vol["volume_type"], "__DEFAULT__");
    assert_eq!(vol["availability_zone"], "nova");
    assert_eq!(vol["attachments"], json!([]));
    assert_eq!(vol["metadata"], json!({"k": "v"}));
    // Cinder's create answer has no extension attributes (Tempest's create_volume
    // schema refuses them); show has the tenant; consumes_quota only from 3.65.
    assert!(vol.get("os-vol-tenant-attr:tenant_id").is_none(), "not in a create answer");
    assert!(vol.get("consumes_quota").is_none(), "3.65+ only");
    let (_, _, shown) = send(&env, "GET", &format!("{base}/{id}"), Some(&env.demo), None, None).await;
    assert_eq!(shown["volume"]["os-vol-tenant-attr:tenant_id"], env.demo_project.as_str());
    for k in ["snapshot_id", "source_volid", "consistencygroup_id", "replication_status", "migration_status"] {
        assert!(vol.get(k).is_some_and(Value::is_null), "{k}");
    }
    assert!(vol.get("os-vol-host-attr:host").is_none(), "admins only");
    assert_eq!(vol["links"][0]["href"], format!("http://127.0.0.1:8774/volume/v3/{}/volumes/{id}", env.demo_project));
    assert!(!vol["created_at"].as_str().expect("ts").ends_with('Z'), "Cinder's naive UTC format");

    let (s, _, v) = call(&env, &base, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["volumes"][0]["id"], id.as_str());
    assert_eq!(v["volumes"][0]["name"], "v1");
    assert!(v["volumes"][0].get("status").is_none(), "summary view");
    for uri in [format!("{base}/detail"), "/volume/v3/volumes/detail".to_string()] {
        let (s, _, v) = call(&env, &uri, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
        assert_eq!(v["volumes"][0]["status"], "available");
    }
    let (_, _, v) = call(&env, &format!("{base}/detail?name=v1"), Some(&env.demo), None).await;
    assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
    let (_, _, v) = call(&env, &format!("{base}/detail?name=nope"), Some(&env.demo), None).await;
    assert_eq!(v["volumes"], json!([]));

    let one = format!("{base}/{id}");
    let (s, _, v) = call(&env, &one, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["volume"]["id"], id.as_str());
    let (s, _, v) = call(&env, &one, Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["volume"]["os-vol-host-attr:host"], "stratus@mem#mem");

    let (s, _, v) =
        send(&env, "PUT", &one, Some(&env.demo), None, Some(json!({"volume": {"name": "v2", "description": "d"}})))
            .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["volume"]["name"], "v2");
    assert_eq!(v["volume"]["description"], "d");
    assert_eq!(v["volume"]["metadata"], json!({"k": "v"}), "kept");

    let (s, _, _) = send(&env, "DELETE", &one, Some(&env.demo), None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, v) = call(&env, &one, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["itemNotFound"]["message"], format!("Volume {id} could not be found."));
    assert!(env.backend.is_empty());
}

#[tokio::test]
async fn volume_create_validation() {
    let env = env().await;
    let base = format!("/volume/v3/{}/volumes", env.demo_project);
    let post = |b: Value| send(&env, "POST", &base, Some(&env.demo), None, Some(b));
    let (s, _, v) = post(json!({"volume": {"size": 0}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["code"], 400);
    let (s, _, _) = post(json!({"size": 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = post(json!({"volume": {"size": "x"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, v) = post(json!({"volume": {"size": "2"}})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "numeric strings are sizes too");
    assert_eq!(v["volume"]["size"], 2);
    let (s, _, _) = post(json!({"volume": {"size": 1, "snapshot_id": SERVER}})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(json!({"volume": {"size": 1, "volume_type": "gold"}})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(json!({"volume": {"size": 1, "imageRef": SERVER}})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another project's URL: 403.
    let other = format!("/volume/v3/{}/volumes", env.admin_project);
    let (s, _, _) = send(&env, "POST", &other, Some(&env.demo), None, Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn volume_of_another_project_is_404() {
    let env = env().await;
    let id = create(&env, 1, "mine").await["id"].as_str().expect("id").to_string();
    let theirs = format!("/volume/v3/volumes/{id}");
    env.state.identity.bootstrap_user("alt", "pw", "alt", "member", false).await.expect("alt");
    let alt = env
        .state
        .identity
        .authenticate("alt", "pw", stratus_auth::ProjectScope::Name("alt".into()))
        .await
        .expect("alt token")
        .token;
    for (method, body) in [("GET", None), ("PUT", Some(json!({"volume": {"name": "x"}}))), ("DELETE", None)] {
        let (s, _, _) = send(&env, method, &theirs, Some(&alt), None, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method}");
    }
    let (s, _, _) =
        send(&env, "POST", &format!("{theirs}/action"), Some(&alt), None, Some(json!({"os-extend": {"new_size": 2}})))
            .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, v) = call(&env, "/volume/v3/volumes", Some(&alt), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"volumes": []})));
    // Admins see every project's volumes with all_tenants.
    let (_, _, v) = call(&env, "/volume/v3/volumes/detail?all_tenants=1", Some(&env.admin), None).await;
    assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
    let (_, _, v) = call(&env, "/volume/v3/volumes/detail", Some(&env.admin), None).await;
    assert_eq!(v["volumes"], json!([]), "own project only without all_tenants");
}

#[tokio::test]
async fn attachments_as_nova_drives_them_and_deleting_an_attached_volume_is_400() {
    let env = env().await;
    let vol = create(&env, 1, "data").await;
    let vid = vol["id"].as_str().expect("id").to_string();
    let p = &env.demo_project;
    let t = Some(env.demo.as_str());
    let mv = Some("volume 3.44");

    // Below 3.27 the attachments API does not exist.
    let (s, _, _) = send(&env, "POST", &format!("/volume/v3/{p}/attachments"), t, None, Some(json!({}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Nova: attachment_create without a connector reserves the volume.
    let body = json!({"attachment": {"volume_uuid": vid, "instance_uuid": SERVER}});
    let (s, _, v) = send(&env, "POST", &format!("/volume/v3/{p}/attachments"), t, mv, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let att = v["attachment"]["id"].as_str().expect("attachment id").to_string();
    assert_eq!(v["attachment"]["status"], "reserved");
    assert_eq!(v["attachment"]["instance"], SERVER);
    assert_eq!(v["attachment"]["volume_id"], vid.as_str());
    assert!(v["attachment"]["connection_info"].is_null());
    let vol_uri = format!("/volume/v3/{p}/volumes/{vid}");
    assert_eq!(call(&env, &vol_uri, t, None).await.2["volume"]["status"], "reserved");

    // Deleting a reserved volume: Cinder's 400.
    let (s, _, v) = send(&env, "DELETE", &vol_uri, t, None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["message"], stratus_volume::DELETE_REFUSED);

    // attachment_update with the host connector → attaching + connection info.
    let connector = json!({"host": "compute-1", "ip": "10.0.0.2", "initiator": "iqn.x", "mountpoint": "/dev/vdb"});
    let (s, _, v) = send(
        &env,
        "PUT",
        &format!("/volume/v3/{p}/attachments/{att}"),
        t,
        mv,
        Some(json!({"attachment": {"connector": connector}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attachment"]["status"], "attaching");
    assert_eq!(v["attachment"]["connection_info"]["driver_volume_type"], "mem");
    assert_eq!(v["attachment"]["connection_info"]["data"]["volume_id"], vid.as_str());
    assert_eq!(call(&env, &vol_uri, t, None).await.2["volume"]["status"], "attaching");

    // os-complete needs 3.44.
    let complete = format!("/volume/v3/{p}/attachments/{att}/action");
    let (s, _, _) = send(&env, "POST", &complete, t, Some("volume 3.27"), Some(json!({"os-complete": null}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, v) = send(&env, "POST", &complete, t, mv, Some(json!({"os-complete": null}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, _, v) = call(&env, &vol_uri, t, None).await;
    assert_eq!(v["volume"]["status"], "in-use");
    let a = &v["volume"]["attachments"][0];
    assert_eq!(a["server_id"], SERVER);
    assert_eq!(a["attachment_id"], att.as_str());
    assert_eq!(a["volume_id"], vid.as_str());
    assert_eq!(a["id"], vid.as_str());
    assert_eq!(a["device"], "/dev/vdb");
    assert_eq!(a["host_name"], "compute-1");
    assert!(a["attached_at"].is_string());

    let (s, _, v) = send(&env, "DELETE", &vol_uri, t, None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["message"], stratus_volume::DELETE_REFUSED);

    let (s, _, v) = call(&env, &format!("/volume/v3/{p}/attachments"), t, mv).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["attachments"][0]["id"], att.as_str());
    let (s, _, v) = call(&env, &format!("/volume/v3/attachments/{att}"), t, mv).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["attachment"]["status"], "attached");
    let (s, _, _) = call(&env, &format!("/volume/v3/attachments/{att}"), Some(&env.admin), mv).await;
    assert_eq!(s, StatusCode::OK, "admins see every attachment");

    // Detach: attachment_delete → available, then the delete goes through.
    let (s, _, v) = send(&env, "DELETE", &format!("/volume/v3/{p}/attachments/{att}"), t, mv, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"attachments": []}));
    let (_, _, v) = call(&env, &vol_uri, t, None).await;
    assert_eq!(v["volume"]["status"], "available");
    assert_eq!(v["volume"]["attachments"], json!([]));
    let (s, _, _) = call(&env, &format!("/volume/v3/attachments/{att}"), t, mv).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A connector at create time goes straight to attaching.
    let body = json!({"attachment": {"volume_uuid": vid, "instance_uuid": SERVER, "connector": {"host": "compute-2"}}});
    let (s, _, v) = send(&env, "POST", "/volume/v3/attachments", t, mv, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attachment"]["status"], "attaching");
}

/// Nova/Cinder: an instance of another project does not exist for a member
/// (Nova's `InstanceNotFound`, 404): A's volume is never attached to B's
/// server, and B never sees such an attachment.
#[tokio::test]
async fn attachment_to_another_projects_server_is_404() {
    let env = env().await;
    env.state.identity.bootstrap_user("alt", "pw", "alt", "member", false).await.expect("alt");
    let alt = env
        .state
        .identity
        .authenticate("alt", "pw", stratus_auth::ProjectScope::Name("alt".into()))
        .await
        .expect("alt token");
    let (alt_token, alt_project) = (alt.token, alt.context.project_id);
    let theirs = stratus_types::ServerId::new();
    stratus_volume::testing::insert_server(&env.ds, theirs, &alt_project).await.expect("alt's server");
    let vid = create(&env, 1, "mine").await["id"].as_str().expect("id").to_string();
    let p = &env.demo_project;
    let mv = Some("volume 3.44");
    for connector in [None, Some(json!({"host": "compute-1"}))] {
        let mut body = json!({"attachment": {"volume_uuid": vid, "instance_uuid": theirs.to_string()}});
        if let Some(c) = connector {
            body["attachment"]["connector"] = c;
        }
        let (s, _, v) =
            send(&env, "POST", &format!("/volume/v3/{p}/attachments"), Some(&env.demo), mv, Some(body)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(v["itemNotFound"]["message"], format!("Instance {theirs} could not be found."));
    }
    let (_, _, v) = call(&env, &format!("/volume/v3/volumes/{vid}"), Some(&env.demo), None).await;
    assert_eq!(v["volume"]["status"], "available");
    assert_eq!(v["volume"]["attachments"], json!([]));
    let (s, _, v) = call(&env, &format!("/volume/v3/{alt_project}/attachments"), Some(&alt_token), mv).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"attachments": []})));
    // The owner's own server still works.
    let body = json!({"attachment": {"volume_uuid": vid, "instance_uuid": SERVER}});
    let (s, _, v) = send(&env, "POST", &format!("/volume/v3/{p}/attachments"), Some(&env.demo), mv, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn volume_busy_delete_stays_deleting_until_the_reconciler_succeeds() {
    let env = env().await;
    let id = create(&env, 1, "busy").await["id"].as_str().expect("id").to_string();
    env.backend.busy_deletes(2);
    let uri = format!("/volume/v3/volumes/{id}");
    let (s, _, _) = send(&env, "DELETE", &uri, Some(&env.demo), None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, _, v) = call(&env, &uri, Some(&env.demo), None).await;
    assert_eq!(v["volume"]["status"], "deleting");
    env.state.volume.reconcile().await.expect("pass 1");
    let (_, _, v) = call(&env, &uri, Some(&env.demo), None).await;
    assert_eq!(v["volume"]["status"], "deleting", "still busy: not swallowed");
    env.state.volume.reconcile().await.expect("pass 2");
    let (s, _, _) = call(&env, &uri, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn volume_extend_set_bootable_and_admin_only_reset_status() {
    let env = env().await;
    let id = create(&env, 1, "x").await["id"].as_str().expect("id").to_string();
    let action = format!("/volume/v3/{}/volumes/{id}/action", env.demo_project);
    let uri = format!("/volume/v3/{}/volumes/{id}", env.demo_project);
    let t = Some(env.demo.as_str());
    let (s, _, v) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 3}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(call(&env, &uri, t, None).await.2["volume"]["size"], 3);
    let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 2}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "shrinking");

    let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-set_bootable": {"bootable": "true"}}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(call(&env, &uri, t, None).await.2["volume"]["bootable"], "true");

    let reset = json!({"os-reset_status": {"status": "error"}});
    let (s, _, v) = send(&env, "POST", &action, t, None, Some(reset.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["forbidden"]["code"], 403);
    let admin_action = format!("/volume/v3/volumes/{id}/action");
    let (s, _, v) = send(&env, "POST", &admin_action, Some(&env.admin), None, Some(reset)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(call(&env, &uri, t, None).await.2["volume"]["status"], "error");
    let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-extend": {"new_size": 4}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "extend needs available");
    let (s, _, v) = send(&env, "POST", &action, t, None, Some(json!({"os-frobnicate": {}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["message"], "There is no such action: os-frobnicate");
}

#[tokio::test]
async fn volume_quota_is_413_with_cinders_messages() {
    let env = env().await;
    let base = format!("/volume/v3/{}/volumes", env.demo_project);
    let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"volume": {"size": 1001}}))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        v["overLimit"]["message"],
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1001G, quota is 1000G and 0G has been consumed."
    );
    assert_eq!(v["overLimit"]["code"], 413);
    for i in 0..10 {
        create(&env, 1, &format!("v{i}")).await;
    }
    let (s, _, v) = send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["overLimit"]["message"], "Maximum number of volumes allowed (10) exceeded for quota 'volumes'.");
}

/// Cinder's schema (`volume_size`: 1..=2147483647): a huge size is a 400
/// with a message, never wrapped past the quota; creates and limits keep
/// working afterwards (they answered 500 once a wrapped size was stored).
#[tokio::test]
async fn volume_huge_size_is_400_and_creates_and_limits_keep_working() {
    let env = env().await;
    let base = format!("/volume/v3/{}/volumes", env.demo_project);
    let id = create(&env, 1, "first").await["id"].as_str().expect("id").to_string();
    for size in [json!(9_223_372_036_854_775_807_i64), json!("9223372036854775807"), json!(2_147_483_648_i64)] {
        let (s, _, v) =
            send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"volume": {"size": size.clone()}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{size}: {v}");
        let n = size.as_str().map_or_else(|| size.to_string(), str::to_string);
        assert_eq!(
            v["badRequest"]["message"],
            format!(
                "Invalid input for field/attribute size. Value: {n}. {n} is greater than the maximum of 2147483647"
            )
        );
        let action = format!("{base}/{id}/action");
        let (s, _, v) =
            send(&env, "POST", &action, Some(&env.demo), None, Some(json!({"os-extend": {"new_size": size}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
    create(&env, 2, "after").await;
    let (s, _, v) = call(&env, "/volume/v3/limits", Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["limits"]["absolute"]["totalGigabytesUsed"], 3);
    assert_eq!(v["limits"]["absolute"]["totalVolumesUsed"], 2);
}

#[tokio::test]
async fn volume_limits_count_usage() {
    let env = env().await;
    create(&env, 1, "a").await;
    create(&env, 3, "b").await;
    for uri in [format!("/volume/v3/{}/limits", env.demo_project), "/volume/v3/limits".to_string()] {
        let (s, _, v) = call(&env, &uri, Some(&env.demo), None).await;
        assert_eq!(s, StatusCode::OK);
        let abs = &v["limits"]["absolute"];
        assert_eq!(abs["totalVolumesUsed"], 2);
        assert_eq!(abs["totalGigabytesUsed"], 4);
        assert_eq!(abs["maxTotalVolumes"], 10);
        assert_eq!(abs["maxTotalVolumeGigabytes"], 1000);
    }
    // An admin looking at demo's limits sees demo's usage; its own is zero.
    let (_, _, v) = call(&env, &format!("/volume/v3/{}/limits", env.demo_project), Some(&env.admin), None).await;
    assert_eq!(v["limits"]["absolute"]["totalVolumesUsed"], 2);
    let (_, _, v) = call(&env, "/volume/v3/limits", Some(&env.admin), None).await;
    assert_eq!(v["limits"]["absolute"]["totalVolumesUsed"], 0);
}

#[tokio::test]
async fn volume_metadata_set_and_unset() {
    let env = env().await;
    let id = create(&env, 1, "m").await["id"].as_str().expect("id").to_string();
    let uri = format!("/volume/v3/{}/volumes/{id}/metadata", env.demo_project);
    let t = Some(env.demo.as_str());
    let (s, _, v) = send(&env, "POST", &uri, t, None, Some(json!({"metadata": {"a": "1"}}))).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"metadata": {"a": "1"}})));
    let (_, _, v) = send(&env, "POST", &uri, t, None, Some(json!({"metadata": {"b": "2"}}))).await;
    assert_eq!(v, json!({"metadata": {"a": "1", "b": "2"}}), "merged");
    let (s, _, v) = send(&env, "PUT", &format!("{uri}/c"), t, None, Some(json!({"meta": {"c": "3"}}))).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"meta": {"c": "3"}})));
    let (s, _, _) = send(&env, "DELETE", &format!("{uri}/a"), t, None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(&env, "DELETE", &format!("{uri}/a"), t, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, v) = call(&env, &uri, t, None).await;
    assert_eq!(v, json!({"metadata": {"b": "2", "c": "3"}}));
    let (_, _, v) = send(&env, "PUT", &uri, t, None, Some(json!({"metadata": {}}))).await;
    assert_eq!(v, json!({"metadata": {}}), "replaced");
    let (s, _, _) = call(&env, &uri, Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::OK, "admins may use another project's path");
}

#[tokio::test]
async fn volume_list_pagination() {
    let env = env().await;
    for i in 0..3 {
        create(&env, 1, &format!("p{i}")).await;
    }
    let (_, _, v) = call(&env, "/volume/v3/volumes?limit=2", Some(&env.demo), None).await;
    assert_eq!(v["volumes"].as_array().expect("page").len(), 2);
    let next = v["volumes_links"][0]["href"].as_str().expect("next link").to_string();
    let marker = v["volumes"][1]["id"].as_str().expect("id");
    assert!(next.ends_with(&format!("marker={marker}")), "{next}");
    let (_, _, v) = call(&env, &format!("/volume/v3/volumes?limit=2&marker={marker}"), Some(&env.demo), None).await;
    assert_eq!(v["volumes"].as_array().expect("page").len(), 1);
    assert!(v.get("volumes_links").is_none());
}

/// Cinder pages only from a non-empty marker (`if marker:` in its DB
/// layer): `marker=` lists from the start; an unknown marker is refused.
#[tokio::test]
async fn an_empty_marker_lists_from_the_start() {
    let env = env().await;
    create(&env, 1, "m0").await;
    for path in ["volumes", "volumes/detail", "snapshots", "snapshots/detail", "volume-transfers"] {
        let (s, _, v) = call(&env, &format!("/volume/v3/{path}?marker="), Some(&env.demo), Some("volume 3.55")).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    let (_, _, v) = call(&env, "/volume/v3/volumes?marker=", Some(&env.demo), None).await;
    assert_eq!(v["volumes"].as_array().expect("list").len(), 1);
    let (s, _, _) = call(&env, "/volume/v3/snapshots?marker=nope", Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "Cinder's MarkerNotFound");
}

/// Cinder links a full page to the next one, even when that one is empty
/// (Tempest's `_test_pagination` expects the link when the count divides by
/// the limit), and the link keeps the caller's sort and filters.
#[tokio::test]
async fn volume_list_full_pages_link_onwards_with_the_callers_query() {
    let env = env().await;
    for i in 0..2 {
        create(&env, 1, &format!("q{i}")).await;
    }
    let (_, _, v) = call(&env, "/volume/v3/volumes?limit=1&sort=id:asc&status=available", Some(&env.demo), None).await;
    let mut seen = vec![v["volumes"][0]["id"].as_str().expect("id").to_string()];
    let mut next = v["volumes_links"][0]["href"].as_str().expect("a full page links on").to_string();
    assert!(next.contains("sort=id%3Aasc") && next.contains("status=available"), "{next}");
    let mut pages = 1;
    loop {
        let path = next.split_once("/volume/").map(|(_, p)| format!("/volume/{p}")).expect("path");
        let (status, _, v) = call(&env, &path, Some(&env.demo), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        pages += 1;
        seen.extend(v["volumes"].as_array().expect("page").iter().map(|x| x["id"].as_str().expect("id").to_string()));
        match v["volumes_links"][0]["href"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3, "two full pages, then an empty one without a link");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ascending ids across pages");
}

/// Cinder's sort parameters: `sort=key:dir` or `sort_key`/`sort_dir` (not
/// both), unknown keys and directions are 400; the marker is a position in
/// the sorted list (Tempest `test_volume_list_with_detail_param_marker`).
#[tokio::test]
async fn volume_list_sorts_as_cinder() {
    let env = env().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create(&env, 1, &format!("s{i}")).await["id"].as_str().expect("id").to_string());
    }
    ids.sort();
    let list = |q: &'static str| {
        let env = &env;
        async move {
            let (status, _, v) = call(env, &format!("/volume/v3/volumes/detail?{q}"), Some(&env.demo), None).await;
            (status, v)
        }
    };
    let order = |v: &Value| -> Vec<String> {
        v["volumes"].as_array().expect("list").iter().map(|x| x["id"].as_str().expect("id").to_string()).collect()
    };
    let (_, v) = list("sort_key=id&sort_dir=asc").await;
    assert_eq!(order(&v), ids);
    let (_, v) = list("sort=id:desc").await;
    assert_eq!(order(&v), ids.iter().rev().cloned().collect::<Vec<_>>());
    let marker = ids[0].clone();
    let (_, _, v) =
        call(&env, &format!("/volume/v3/volumes/detail?sort=id:asc&marker={marker}"), Some(&env.demo), None).await;
    assert_eq!(order(&v), ids[1..].to_vec(), "only ids after the marker");
    for bad in ["sort=id:sideways", "sort=colour:asc", "sort_key=colour", "sort=id&sort_key=id"] {
        let (status, v) = list(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

/// What Cinder tells about itself: the zone for anyone; services, hosts,
/// pools and capabilities for admins, naming the one backend as Cinder names
/// a volume's host (`host@backend#pool`), with the volume usage per project
/// on `os-hosts/{host}` (Tempest's volume admin host, pool, service tests).
#[tokio::test]
async fn volume_service_documents_describe_the_one_backend() {
    let env = env().await;
    create(&env, 2, "u").await;
    let (status, _, v) = call(&env, "/volume/v3/os-availability-zone", Some(&env.demo), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["availabilityZoneInfo"][0]["zoneState"]["available"], true);
    let (status, _, v) = call(&env, "/volume/v3/extensions", Some(&env.demo), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["extensions"].as_array().expect("list").iter().any(|e| e["name"] == "Hosts"));
    for admin_only in ["os-services", "os-hosts", "scheduler-stats/get_pools"] {
        let (status, _, _) = call(&env, &format!("/volume/v3/{admin_only}"), Some(&env.demo), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{admin_only}");
    }
    let attr = env.state.volume.host_attr();
    let backend = attr.split('#').next().expect("host@backend").to_string();
    let (_, _, v) = call(&env, "/volume/v3/os-services?binary=cinder-volume", Some(&env.admin), None).await;
    let services = v["services"].as_array().expect("services");
    assert_eq!(services.len(), 1, "{v}");
    assert_eq!(services[0]["host"], backend.as_str());
    let (_, _, v) = call(&env, "/volume/v3/os-services?host=stratus", Some(&env.admin), None).await;
    assert_eq!(v["services"].as_array().expect("services").len(), 2, "host without @backend matches both");
    let (_, _, v) = call(&env, &format!("/volume/v3/os-hosts/{backend}"), Some(&env.admin), None).await;
    let rows = v["host"].as_array().expect("usage");
    assert_eq!(rows[0]["resource"]["project"], "(total)");
    assert_eq!(rows[0]["resource"]["total_volume_gb"], "2");
    assert!(rows.iter().any(|r| r["resource"]["project"] == env.demo_project.as_str()));
    let (status, _, _) = call(&env, "/volume/v3/os-hosts/elsewhere@x", Some(&env.admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, v) = call(&env, "/volume/v3/scheduler-stats/get_pools?detail=true", Some(&env.admin), None).await;
    assert_eq!(v["pools"][0]["name"], attr.as_str());
    assert!(v["pools"][0]["capabilities"]["volume_backend_name"].is_string());
    let (status, _, v) = call(&env, &format!("/volume/v3/capabilities/{backend}"), Some(&env.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["namespace"].as_str().is_some_and(|n| n.starts_with("OS::Storage::Capabilities::")));
}

/// Cinder's service changes, checked as Cinder does (Tempest's
/// `VolumeServicesNegativeTest`): an unknown host or binary is 404 for
/// enable/disable, a disable without a reason is 400, freeze/thaw of an
/// unknown host is 400; disabling or freezing a known service is refused with
/// 400 (it runs inside Stratus), enabling or thawing it is a no-op.
#[tokio::test]
async fn volume_service_changes_are_checked_and_refused() {
    let env = env().await;
    let put = |action: &'static str, body: Value| {
        let env = &env;
        async move {
            send(env, "PUT", &format!("/volume/v3/os-services/{action}"), Some(&env.admin), None, Some(body)).await.0
        }
    };
    assert_eq!(put("enable", json!({"host": "nowhere", "binary": "cinder-volume"})).await, StatusCode::NOT_FOUND);
    assert_eq!(put("disable", json!({"host": "stratus", "binary": "cinder-nothing"})).await, StatusCode::NOT_FOUND);
    assert_eq!(
        put("disable-log-reason", json!({"host": "stratus", "binary": "cinder-scheduler"})).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(put("freeze", json!({"host": "nowhere"})).await, StatusCode::BAD_REQUEST);
    assert_eq!(put("thaw", json!({"host": "nowhere"})).await, StatusCode::BAD_REQUEST);
    assert_eq!(put("disable", json!({"host": "stratus", "binary": "cinder-scheduler"})).await, StatusCode::BAD_REQUEST);
    assert_eq!(put("freeze", json!({"host": "stratus"})).await, StatusCode::BAD_REQUEST);
    assert_eq!(put("enable", json!({"host": "stratus", "binary": "cinder-scheduler"})).await, StatusCode::OK);
    assert_eq!(put("thaw", json!({"host": "stratus"})).await, StatusCode::OK);
    assert_eq!(put("explode", json!({})).await, StatusCode::NOT_FOUND);
    let (status, _, _) =
        send(&env, "PUT", "/volume/v3/os-services/enable", Some(&env.demo), None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Server ids are typed behind the API, but the path text is parsed by the
/// compute service: text that is not a server id answers Nova's 404 exactly as
/// a missing server does, on every route that names a server.
#[tokio::test]
async fn a_server_path_that_is_not_a_server_id_is_novas_404() {
    let env = env().await;
    let missing = uuid::Uuid::new_v4().to_string();
    for id in ["not-a-uuid", missing.as_str(), &missing.to_uppercase()] {
        for (method, uri, body) in [
            ("GET", format!("/compute/v2.1/servers/{id}"), None),
            ("DELETE", format!("/compute/v2.1/servers/{id}"), None),
            ("POST", format!("/compute/v2.1/servers/{id}/action"), Some(json!({"os-stop": null}))),
            ("GET", format!("/compute/v2.1/servers/{id}/os-volume_attachments"), None),
        ] {
            let (s, _, v) = send(&env, method, &uri, Some(&env.demo), None, body).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {uri}: {v}");
            assert_eq!(v["itemNotFound"]["message"], format!("Instance {id} could not be found."), "{method} {uri}");
        }
    }
}

/// Volume and attachment ids are typed behind the API; the volume service
/// parses the path text: text that is not an id in our spelling answers
/// Cinder's 404 exactly as a missing volume or attachment does.
#[tokio::test]
async fn a_volume_path_that_is_not_a_volume_id_is_cinders_404() {
    let env = env().await;
    let p = &env.demo_project;
    let missing = uuid::Uuid::new_v4().to_string();
    for id in ["not-a-uuid", missing.as_str(), &missing.to_uppercase()] {
        for (method, uri, body) in [
            ("GET", format!("/volume/v3/{p}/volumes/{id}"), None),
            ("DELETE", format!("/volume/v3/{p}/volumes/{id}"), None),
            ("GET", format!("/volume/v3/{p}/volumes/{id}/metadata"), None),
            ("POST", format!("/volume/v3/{p}/volumes/{id}/action"), Some(json!({"os-extend": {"new_size": 2}}))),
        ] {
            let (s, _, v) = send(&env, method, &uri, Some(&env.demo), None, body).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {uri}: {v}");
            assert_eq!(v["itemNotFound"]["message"], format!("Volume {id} could not be found."), "{method} {uri}");
        }
        let uri = format!("/volume/v3/{p}/attachments/{id}");
        let (s, _, v) = send(&env, "GET", &uri, Some(&env.demo), Some("volume 3.44"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "GET {uri}: {v}");
        assert_eq!(
            v["itemNotFound"]["message"],
            format!("Volume attachment could not be found with filter: attachment_id = {id}."),
            "GET {uri}"
        );
    }
}

/// Cinder's volume type API end to end: admin-only create (200) with the
/// access flag, 409 on a taken name, show/default, a private type is 404 to
/// others until shared, a volume created with it shows it by name (and its
/// id from 3.63), and the type in use cannot be deleted (400).
#[tokio::test]
async fn volume_types_over_http() {
    let env = env().await;
    let (s, _, _) =
        send(&env, "POST", "/volume/v3/types", Some(&env.demo), None, Some(json!({"volume_type": {"name": "x"}})))
            .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "Cinder: volume_extension:type_create is admin only");
    let body = json!({"volume_type": {"name": "gold", "description": "d", "extra_specs": {"vendor_name": "v", "multiattach": "<is> False"}, "os-volume-type-access:is_public": false}});
    let (s, _, v) = send(&env, "POST", "/volume/v3/types", Some(&env.admin), None, Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let t = &v["volume_type"];
    assert_eq!(
        (t["name"].as_str(), t["is_public"].as_bool(), t["os-volume-type-access:is_public"].as_bool()),
        (Some("gold"), Some(false), Some(false))
    );
    assert!(t.get("qos_specs_id").is_none(), "Tempest's create schema has no qos_specs_id");
    let id = t["id"].as_str().expect("id").to_string();
    let (s, _, _) = send(&env, "POST", "/volume/v3/types", Some(&env.admin), None, Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) =
        send(&env, "POST", "/volume/v3/types", Some(&env.admin), None, Some(json!({"volume_type": {"name": ""}})))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, v) = call(&env, "/volume/v3/types/default", Some(&env.demo), None).await;
    assert_eq!((s, v["volume_type"]["name"].as_str()), (StatusCode::OK, Some("__DEFAULT__")));
    let one = format!("/volume/v3/{}/types/{id}", env.demo_project);
    let (s, _, _) = call(&env, &one, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a private type not shared is hidden");
    let action = format!("/volume/v3/types/{id}/action");
    let add = json!({"addProjectAccess": {"project": env.demo_project}});
    let (s, _, _) = send(&env, "POST", &action, Some(&env.admin), None, Some(add.clone())).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, _) = send(&env, "POST", &action, Some(&env.admin), None, Some(add)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, v) = call(&env, &format!("/volume/v3/types/{id}/os-volume-type-access"), Some(&env.admin), None).await;
    assert_eq!(
        (s, v["volume_type_access"][0]["project_id"].as_str()),
        (StatusCode::OK, Some(env.demo_project.as_str()))
    );
    let (s, _, v) = call(&env, &one, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["volume_type"]["extra_specs"], json!({"multiattach": "<is> False"}), "only user-visible specs");
    let vols = format!("/volume/v3/{}/volumes", env.demo_project);
    let (s, _, v) = send(
        &env,
        "POST",
        &vols,
        Some(&env.demo),
        Some("volume 3.63"),
        Some(json!({"volume": {"size": 1, "volume_type": id}})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        (v["volume"]["volume_type"].as_str(), v["volume"]["volume_type_id"].as_str()),
        (Some("gold"), Some(id.as_str()))
    );
    let (s, _, v) = send(&env, "DELETE", &format!("/volume/v3/types/{id}"), Some(&env.admin), None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["message"], "Target volume type is still in use.");
}

/// Cinder's extra spec rules over HTTP: create echoes the body, show is
/// `{key: value}`, an update must name the URL's key, delete is 202, and a
/// missing key is 404 with Cinder's message.
#[tokio::test]
async fn volume_type_extra_specs_over_http() {
    let env = env().await;
    let (_, _, v) =
        send(&env, "POST", "/volume/v3/types", Some(&env.admin), None, Some(json!({"volume_type": {"name": "s"}})))
            .await;
    let id = v["volume_type"]["id"].as_str().expect("id").to_string();
    let specs = format!("/volume/v3/types/{id}/extra_specs");
    let (s, _, v) =
        send(&env, "POST", &specs, Some(&env.admin), None, Some(json!({"extra_specs": {"spec1": "val1"}}))).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"extra_specs": {"spec1": "val1"}})));
    let (s, _, _) = send(&env, "POST", &specs, Some(&env.admin), None, Some(json!({"extra_specs": ["invalid"]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, v) =
        send(&env, "PUT", &format!("{specs}/spec1"), Some(&env.admin), None, Some(json!({"spec1": "val2"}))).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"spec1": "val2"})));
    let (s, _, v) =
        send(&env, "PUT", &format!("{specs}/None"), Some(&env.admin), None, Some(json!({"spec1": "val2"}))).await;
    assert_eq!(
        (s, v["badRequest"]["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Request body and URI mismatch"))
    );
    let (s, _, v) = call(&env, &format!("{specs}/spec1"), Some(&env.admin), None).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"spec1": "val2"})));
    let (s, _, _) = send(&env, "DELETE", &format!("{specs}/spec1"), Some(&env.admin), None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, v) = call(&env, &format!("{specs}/spec1"), Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["itemNotFound"]["message"], format!("Volume Type {id} has no extra specs with key spec1."));
    let (s, _, _) =
        call(&env, &format!("/volume/v3/types/{}/extra_specs", uuid::Uuid::new_v4()), Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Cinder's older attach flow: `os-reserve` takes an available volume to
/// `attaching` and refuses any other status (Tempest
/// `test_reserve_volume_with_negative_volume_status`), `os-unreserve` undoes
/// it; `os-begin_detaching`/`os-roll_detaching` likewise between `in-use` and
/// `detaching`. `os-attach`/`os-detach` are refused (a host must open and
/// close the volume), but an unknown volume is 404 first, as are the steps.
#[tokio::test]
async fn volume_older_attach_flow_steps_and_refusals() {
    let env = env().await;
    let id = create(&env, 1, "r").await["id"].as_str().expect("id").to_string();
    let act = |vol: String, body: Value| {
        let env = &env;
        async move {
            let uri = format!("/volume/v3/volumes/{vol}/action");
            let (status, _, v) = send(env, "POST", &uri, Some(&env.demo), None, Some(body)).await;
            (status, v)
        }
    };
    let status_of = |vol: String| {
        let env = &env;
        async move {
            call(env, &format!("/volume/v3/volumes/{vol}"), Some(&env.demo), None).await.2["volume"]["status"].clone()
        }
    };
    assert_eq!(act(id.clone(), json!({"os-reserve": {}})).await.0, StatusCode::ACCEPTED);
    assert_eq!(status_of(id.clone()).await, "attaching");
    let (status, v) = act(id.clone(), json!({"os-reserve": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["badRequest"]["message"].as_str().is_some_and(|m| m.contains("must be available to reserve")), "{v}");
    assert_eq!(act(id.clone(), json!({"os-unreserve": {}})).await.0, StatusCode::ACCEPTED);
    assert_eq!(status_of(id.clone()).await, "available");
    assert_eq!(act(id.clone(), json!({"os-unreserve": {}})).await.0, StatusCode::ACCEPTED, "no change, no error");
    assert_eq!(act(id.clone(), json!({"os-begin_detaching": {}})).await.0, StatusCode::BAD_REQUEST, "not in-use");
    assert_eq!(act(id.clone(), json!({"os-roll_detaching": {}})).await.0, StatusCode::ACCEPTED);
    assert_eq!(status_of(id.clone()).await, "available");
    for old in ["os-attach", "os-detach"] {
        let (status, v) = act(id.clone(), json!({old: {"instance_uuid": SERVER, "mountpoint": "/dev/vdb"}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{old}: {v}");
        assert!(v["badRequest"]["message"].as_str().is_some_and(|m| m.contains("compute API")), "{v}");
    }
    let missing = uuid::Uuid::new_v4().to_string();
    for body in
        [json!({"os-reserve": {}}), json!({"os-unreserve": {}}), json!({"os-attach": {}}), json!({"os-detach": {}})]
    {
        assert_eq!(act(missing.clone(), body.clone()).await.0, StatusCode::NOT_FOUND, "{body}");
    }
}

/// A clone names its source: an unknown source is 404 (Cinder's answer,
/// Tempest `test_create_volume_with_nonexistent_source_volid`), a clone
/// smaller than its source is 400 (`test_create_from_volume_decreasing_size`);
/// a valid one is 202 and shows `source_volid` (`test_create_from_volume`).
#[tokio::test]
async fn volume_clone_source_is_looked_up_and_shown() {
    let env = env().await;
    let src = create(&env, 2, "src").await["id"].as_str().expect("id").to_string();
    let post = |source: String, size: i64| {
        let env = &env;
        async move {
            send(
                env,
                "POST",
                "/volume/v3/volumes",
                Some(&env.demo),
                None,
                Some(json!({"volume": {"size": size, "source_volid": source}})),
            )
            .await
        }
    };
    assert_eq!(post(uuid::Uuid::new_v4().to_string(), 2).await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(src.clone(), 1).await.0, StatusCode::BAD_REQUEST);
    let (status, _, body) = post(src.clone(), 3).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["volume"]["source_volid"], json!(src));
    let (_, _, v) = call(&env, "/volume/v3/volumes", Some(&env.demo), None).await;
    assert_eq!(v["volumes"].as_array().expect("list").len(), 2, "the source and its clone");
}

/// Cinder's quota sets: an admin sets a project's limits (unknown keys, and
/// limits below what the project uses, are 400), creates and extends are
/// held to them (413, `per_volume_gigabytes` included), the project's
/// readers see them with usage, a delete brings the defaults back, and the
/// `default` quota class is every project's default (Tempest's
/// `VolumeQuotasAdminTestJSON`, `VolumeQuotasNegativeTestJSON`,
/// `VolumeQuotaClassesTest`).
#[tokio::test]
async fn volume_quota_sets_and_classes_are_enforced() {
    let env = env().await;
    let demo = env.demo_project.clone();
    let put = |path: String, body: Value| {
        let env = &env;
        async move { send(env, "PUT", &path, Some(&env.admin), None, Some(body)).await }
    };
    let quota_path = format!("/volume/v3/os-quota-sets/{demo}");
    create(&env, 2, "first").await;
    let (status, _, v) = put(quota_path.clone(), json!({"quota_set": {"volumes": 0}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "below the usage: {v}");
    let (status, _, _) = put(quota_path.clone(), json!({"quota_set": {"colours": 3}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown resource");
    let (status, _, _) = put(quota_path.clone(), json!({"quota_set": {"volumes": -2}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "below -1");
    let (status, _, _) =
        send(&env, "PUT", &quota_path, Some(&env.demo), None, Some(json!({"quota_set": {"volumes": 5}}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members cannot raise their own quota");
    let (status, _, v) =
        put(quota_path.clone(), json!({"quota_set": {"volumes": "2", "gigabytes": 4, "per_volume_gigabytes": 3}}))
            .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["quota_set"]["volumes"], 2);
    assert!(v["quota_set"].get("id").is_none(), "an update answers without the id");

    let post = |size: i64| {
        let env = &env;
        async move {
            send(env, "POST", "/volume/v3/volumes", Some(&env.demo), None, Some(json!({"volume": {"size": size}})))
                .await
        }
    };
    let (status, _, v) = post(4).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "per_volume_gigabytes: {v}");
    let (status, _, v) = post(3).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "gigabytes (2 + 3 > 4): {v}");
    let (status, _, second) = post(1).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = post(1).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "volumes (2 of 2)");
    let id = second["volume"]["id"].as_str().expect("id");
    let (status, _, _) = send(
        &env,
        "POST",
        &format!("/volume/v3/volumes/{id}/action"),
        Some(&env.demo),
        None,
        Some(json!({"os-extend": {"new_size": 3}})),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "extend over gigabytes (3 + 2 > 4)");

    let (status, _, v) = call(&env, &format!("{quota_path}?usage=true"), Some(&env.demo), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["quota_set"]["id"], demo.as_str());
    assert_eq!(v["quota_set"]["volumes"], json!({"limit": 2, "in_use": 2, "reserved": 0}));
    assert_eq!(v["quota_set"]["gigabytes"]["in_use"], 3);
    let (_, _, v) = call(&env, "/volume/v3/limits", Some(&env.demo), None).await;
    assert_eq!(v["limits"]["absolute"]["maxTotalVolumes"], 2, "limits show the project's quota");
    let (status, _, _) =
        call(&env, &format!("/volume/v3/os-quota-sets/{}", env.admin_project), Some(&env.demo), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another project's quota");

    // The default class: every project without its own limit.
    let (status, _, v) =
        put("/volume/v3/os-quota-class-sets/default".into(), json!({"quota_class_set": {"volumes": 7}})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, _, v) = call(&env, &format!("{quota_path}/defaults"), Some(&env.demo), None).await;
    assert_eq!(v["quota_set"]["volumes"], 7);
    let (status, _, body) = send(&env, "DELETE", &quota_path, Some(&env.admin), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null, "Cinder's delete answers no body");
    let (_, _, v) = call(&env, &quota_path, Some(&env.demo), None).await;
    assert_eq!(v["quota_set"]["volumes"], 7, "back to the default class");
    assert_eq!(v["quota_set"]["per_volume_gigabytes"], -1);
    let (_, _, v) = call(&env, "/volume/v3/os-quota-class-sets/default", Some(&env.admin), None).await;
    assert_eq!(v["quota_class_set"]["id"], "default");
    assert_eq!(v["quota_class_set"]["volumes"], 7);
}

/// A member token of a third project, `alt` (Tempest's alt credentials).
async fn alt_member(env: &Env) -> (String, String, String) {
    stratus_auth::bootstrap_user(&env.ds, "alt", "pw", "alt", "member", false).await.expect("alt");
    let t = env
        .state
        .identity
        .authenticate("alt", "pw", stratus_auth::ProjectScope::Name("alt".into()))
        .await
        .expect("alt token");
    (t.token, t.context.project_id, t.context.user_id)
}

/// Cinder's transfer flow: create answers 202 with the auth key once and
/// the volume goes `awaiting-transfer`; another project accepts with the key
/// and owns the volume (and its quota usage); a withdrawn transfer frees it.
#[tokio::test]
async fn volume_transfer_create_show_list_accept_and_delete() {
    let env = env().await;
    let (alt, alt_project, alt_user) = alt_member(&env).await;
    let vol = create(&env, 2, "tv").await;
    let vid = vol["id"].as_str().expect("id").to_string();
    let base = format!("/volume/v3/{}/os-volume-transfer", env.demo_project);
    let (s, _, v) =
        send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"transfer": {"volume_id": vid, "name": "t1"}})))
            .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let t = &v["transfer"];
    let keys: Vec<&str> = t.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    for k in ["id", "name", "volume_id", "auth_key", "created_at", "links"] {
        assert!(t.get(k).is_some(), "{k} missing");
    }
    let (tid, key) = (t["id"].as_str().expect("id").to_string(), t["auth_key"].as_str().expect("key").to_string());
    let vol_url = format!("/volume/v3/{}/volumes/{vid}", env.demo_project);
    let (_, _, v) = call(&env, &vol_url, Some(&env.demo), None).await;
    assert_eq!(v["volume"]["status"], "awaiting-transfer");
    // A second transfer of the same volume: not available any more (400).
    let (s, _, _) =
        send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"transfer": {"volume_id": vid}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Show and lists: the key is never shown again; 3.57 adds the history keys.
    let (s, _, v) = call(&env, &format!("{base}/{tid}"), Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["transfer"]["volume_id"], vid.as_str());
    assert!(v["transfer"].get("auth_key").is_none());
    let (_, _, v) = call(&env, &format!("{base}/{tid}"), Some(&env.demo), Some("volume 3.57")).await;
    assert_eq!(v["transfer"]["accepted"], false);
    assert_eq!(v["transfer"]["no_snapshots"], false);
    assert_eq!(v["transfer"]["source_project_id"], env.demo_project.as_str());
    let (_, _, v) = call(&env, &base, Some(&env.demo), None).await;
    assert_eq!(v["transfers"].as_array().expect("list").len(), 1);
    assert_eq!(v["transfers"][0].as_object().expect("object").len(), 4);
    let (_, _, v) = call(&env, &format!("{base}/detail"), Some(&env.demo), None).await;
    assert!(v["transfers"][0]["created_at"].is_string());
    // Another project cannot see it, and /volume-transfers needs 3.55.
    let alt_base = format!("/volume/v3/{alt_project}/os-volume-transfer");
    let (s, _, _) = call(&env, &format!("{alt_base}/{tid}"), Some(&alt), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, v) = call(&env, &alt_base, Some(&alt), None).await;
    assert_eq!(v["transfers"], json!([]));
    let new_base = format!("/volume/v3/{}/volume-transfers", env.demo_project);
    let (s, _, _) = call(&env, &format!("{new_base}/{tid}"), Some(&env.demo), Some("volume 3.54")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(&env, &format!("{new_base}/{tid}"), Some(&env.demo), Some("volume 3.55")).await;
    assert_eq!(s, StatusCode::OK);
    // A wrong key is 400; the right one gives alt the volume and its usage.
    let accept = format!("{alt_base}/{tid}/accept");
    let (s, _, _) = send(&env, "POST", &accept, Some(&alt), None, Some(json!({"accept": {"auth_key": "nope"}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, v) = send(&env, "POST", &accept, Some(&alt), None, Some(json!({"accept": {"auth_key": key}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["transfer"]["volume_id"], vid.as_str());
    let (s, _, _) = call(&env, &vol_url, Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, v) = call(&env, &format!("/volume/v3/{alt_project}/volumes/{vid}"), Some(&alt), None).await;
    assert_eq!(v["volume"]["status"], "available");
    assert_eq!(v["volume"]["user_id"], alt_user.as_str());
    assert_eq!(v["volume"]["os-vol-tenant-attr:tenant_id"], alt_project.as_str());
    let usage = |p: String| {
        let env = &env;
        async move {
            let url = format!("/volume/v3/{}/os-quota-sets/{p}?usage=true", env.admin_project);
            call(env, &url, Some(&env.admin), None).await.2["quota_set"].clone()
        }
    };
    assert_eq!(usage(alt_project.clone()).await["gigabytes"]["in_use"], 2);
    assert_eq!(usage(env.demo_project.clone()).await["volumes"]["in_use"], 0);
    // Accepted: gone from the lists.
    let (s, _, _) = call(&env, &format!("{base}/{tid}"), Some(&env.demo), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Withdrawing a transfer frees the volume.
    let vol = create(&env, 1, "tv2").await;
    let vid = vol["id"].as_str().expect("id").to_string();
    let (_, _, v) =
        send(&env, "POST", &base, Some(&env.demo), None, Some(json!({"transfer": {"volume_id": vid}}))).await;
    let tid = v["transfer"]["id"].as_str().expect("id").to_string();
    let (s, _, _) = send(&env, "DELETE", &format!("{base}/{tid}"), Some(&env.demo), None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, _, v) = call(&env, &format!("/volume/v3/{}/volumes/{vid}", env.demo_project), Some(&env.demo), None).await;
    assert_eq!(v["volume"]["status"], "available");
    let (s, _, _) = send(&env, "DELETE", &format!("{base}/{tid}"), Some(&env.demo), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Cinder's QoS specs: admins create (consumer default `back-end`), show
/// with links, set and unset keys, associate with types, and delete only
/// unassociated specs unless `force`; members are refused (403).
#[tokio::test]
async fn qos_specs_over_http() {
    let env = env().await;
    let base = format!("/volume/v3/{}/qos-specs", env.admin_project);
    let body = json!({"qos_specs": {"name": "gold", "consumer": "front-end", "read_iops_sec": "2000"}});
    let (s, _, v) = send(&env, "POST", &base, Some(&env.admin), None, Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["qos_specs"]["specs"], json!({"read_iops_sec": "2000"}));
    assert_eq!(v["qos_specs"]["consumer"], "front-end");
    assert!(v["links"].is_array());
    let id = v["qos_specs"]["id"].as_str().expect("id").to_string();
    let (s, _, _) = send(&env, "POST", &base, Some(&env.admin), None, Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "name taken");
    let bad = json!({"qos_specs": {"name": "x", "consumer": "middle"}});
    assert_eq!(send(&env, "POST", &base, Some(&env.admin), None, Some(bad)).await.0, StatusCode::BAD_REQUEST);
    let demo_base = format!("/volume/v3/{}/qos-specs", env.demo_project);
    assert_eq!(call(&env, &demo_base, Some(&env.demo), None).await.0, StatusCode::FORBIDDEN);
    let (s, _, v) = call(&env, &base, Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["qos_specs"][0]["name"], "gold");
    // Set and unset a key; an absent key is 404.
    let one = format!("{base}/{id}");
    let (s, _, v) =
        send(&env, "PUT", &one, Some(&env.admin), None, Some(json!({"qos_specs": {"iops_bytes": "500"}}))).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"qos_specs": {"iops_bytes": "500"}})));
    let keys = format!("{one}/delete_keys");
    let (s, _, _) = send(&env, "PUT", &keys, Some(&env.admin), None, Some(json!({"keys": ["iops_bytes"]}))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, _) = send(&env, "PUT", &keys, Some(&env.admin), None, Some(json!({"keys": ["iops_bytes"]}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, v) = call(&env, &one, Some(&env.admin), None).await;
    assert_eq!(v["qos_specs"]["specs"], json!({"read_iops_sec": "2000"}));
    // Associate with a type; then delete needs force.
    let types = format!("/volume/v3/{}/types", env.admin_project);
    let (_, _, t) =
        send(&env, "POST", &types, Some(&env.admin), None, Some(json!({"volume_type": {"name": "q1"}}))).await;
    let tid = t["volume_type"]["id"].as_str().expect("type id").to_string();
    let (s, _, _) = call(&env, &format!("{one}/associate?vol_type_id={tid}"), Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, _) = call(&env, &format!("{one}/associate"), Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no vol_type_id");
    let (_, _, v) = call(&env, &format!("{one}/associations"), Some(&env.admin), None).await;
    assert_eq!(v["qos_associations"], json!([{"association_type": "volume_type", "id": tid, "name": "q1"}]));
    let (s, _, _) = send(&env, "DELETE", &format!("{one}?force=False"), Some(&env.admin), None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "still associated");
    let (s, _, _) = call(&env, &format!("{one}/disassociate?vol_type_id={tid}"), Some(&env.admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, _, v) = call(&env, &format!("{one}/associations"), Some(&env.admin), None).await;
    assert_eq!(v["qos_associations"], json!([]));
    call(&env, &format!("{one}/associate?vol_type_id={tid}"), Some(&env.admin), None).await;
    assert_eq!(call(&env, &format!("{one}/disassociate_all"), Some(&env.admin), None).await.0, StatusCode::ACCEPTED);
    call(&env, &format!("{one}/associate?vol_type_id={tid}"), Some(&env.admin), None).await;
    let (s, _, _) = send(&env, "DELETE", &format!("{one}?force=True"), Some(&env.admin), None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(call(&env, &one, Some(&env.admin), None).await.0, StatusCode::NOT_FOUND);
}

/// Cinder's encryption types: admins create, show (`{}` when none), read
/// one field, update and delete a type's spec. Stratus cannot encrypt yet,
/// so a volume of an encrypted type is refused (400), never made plaintext.
#[tokio::test]
async fn encryption_types_over_http_and_encrypted_volumes_are_refused() {
    let env = env().await;
    let types = format!("/volume/v3/{}/types", env.admin_project);
    let (_, _, t) =
        send(&env, "POST", &types, Some(&env.admin), None, Some(json!({"volume_type": {"name": "enc"}}))).await;
    let tid = t["volume_type"]["id"].as_str().expect("type id").to_string();
    let url = format!("{types}/{tid}/encryption");
    let (s, _, v) = call(&env, &url, Some(&env.admin), None).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({})));
    let demo_url = format!("/volume/v3/{}/types/{tid}/encryption", env.demo_project);
    assert_eq!(call(&env, &demo_url, Some(&env.demo), None).await.0, StatusCode::FORBIDDEN);
    let create = json!({"encryption": {"provider": "luks", "key_size": 256, "cipher": "aes-xts-plain64", "control_location": "front-end"}});
    let (s, _, v) = send(&env, "POST", &url, Some(&env.admin), None, Some(create.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["encryption"]["key_size"], 256);
    assert_eq!(v["encryption"]["volume_type_id"], tid.as_str());
    let eid = v["encryption"]["encryption_id"].as_str().expect("encryption id").to_string();
    assert_eq!(send(&env, "POST", &url, Some(&env.admin), None, Some(create)).await.0, StatusCode::BAD_REQUEST);
    let (_, _, v) = call(&env, &url, Some(&env.admin), None).await;
    assert_eq!(v["provider"], "luks");
    assert_eq!(v["deleted"], false);
    // A volume of the encrypted type is refused.
    let vols = format!("/volume/v3/{}/volumes", env.demo_project);
    let (s, _, v) =
        send(&env, "POST", &vols, Some(&env.demo), None, Some(json!({"volume": {"size": 1, "volume_type": "enc"}})))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["badRequest"]["message"].as_str().expect("message").contains("encrypted"), "{v}");
    // Update, read one field, delete.
    let one = format!("{url}/{eid}");
    let upd = json!({"encryption": {"key_size": 128, "control_location": "back-end"}});
    let (s, _, v) = send(&env, "PUT", &one, Some(&env.admin), None, Some(upd)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, v) = call(&env, &format!("{url}/control_location"), Some(&env.admin), None).await;
    assert_eq!(v, json!({"control_location": "back-end"}));
    assert_eq!(call(&env, &format!("{url}/nope"), Some(&env.admin), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(send(&env, "DELETE", &one, Some(&env.admin), None, None).await.0, StatusCode::ACCEPTED);
    assert_eq!(call(&env, &url, Some(&env.admin), None).await.2, json!({}));
    let (s, _, _) =
        send(&env, "POST", &vols, Some(&env.demo), None, Some(json!({"volume": {"size": 1, "volume_type": "enc"}})))
            .await;
    assert_eq!(s, StatusCode::ACCEPTED, "no longer encrypted");
    // A type in use cannot gain encryption.
    let (s, _, _) =
        send(&env, "POST", &url, Some(&env.admin), None, Some(json!({"encryption": {"provider": "luks"}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Cinder's per-volume-type quotas: every type adds `volumes_<type>`,
/// `gigabytes_<type>` and `snapshots_<type>` (unlimited by default) to
/// quota sets and classes; they are set like the others, an unknown type's
/// key is "Bad key(s)", and creates are held to them (413).
#[tokio::test]
async fn per_volume_type_quotas_are_shown_set_and_enforced() {
    let env = env().await;
    let admin = |path: &str| format!("/volume/v3/{}/{path}", env.admin_project);
    let (_, _, t) =
        send(&env, "POST", &admin("types"), Some(&env.admin), None, Some(json!({"volume_type": {"name": "fast"}})))
            .await;
    assert!(t["volume_type"]["id"].is_string(), "{t}");
    let (_, _, v) = call(&env, &admin("os-quota-class-sets/default"), Some(&env.admin), None).await;
    for k in ["volumes_fast", "gigabytes_fast", "snapshots_fast", "volumes___DEFAULT__"] {
        assert_eq!(v["quota_class_set"][k], -1, "{k} in {v}");
    }
    let body = json!({"quota_class_set": {"gigabytes_fast": 7}});
    let (s, _, v) = send(&env, "PUT", &admin("os-quota-class-sets/default"), Some(&env.admin), None, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["quota_class_set"]["gigabytes_fast"], 7);
    let defaults = admin(&format!("os-quota-sets/{}/defaults", env.demo_project));
    assert_eq!(call(&env, &defaults, Some(&env.admin), None).await.2["quota_set"]["gigabytes_fast"], 7);
    let bad = json!({"quota_set": {"volumes_nosuchtype": 1}});
    let demo_set = admin(&format!("os-quota-sets/{}", env.demo_project));
    assert_eq!(send(&env, "PUT", &demo_set, Some(&env.admin), None, Some(bad)).await.0, StatusCode::BAD_REQUEST);
    let (s, _, _) =
        send(&env, "PUT", &demo_set, Some(&env.admin), None, Some(json!({"quota_set": {"volumes_fast": 1}}))).await;
    assert_eq!(s, StatusCode::OK);
    let vols = format!("/volume/v3/{}/volumes", env.demo_project);
    let new = |size: i64| Some(json!({"volume": {"size": size, "volume_type": "fast"}}));
    assert_eq!(send(&env, "POST", &vols, Some(&env.demo), None, new(1)).await.0, StatusCode::ACCEPTED);
    let (s, _, v) = send(&env, "POST", &vols, Some(&env.demo), None, new(1)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v.to_string().contains("volumes_fast"), "{v}");
    // Another type is not held to it.
    let (s, _, _) = send(&env, "POST", &vols, Some(&env.demo), None, Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, _, v) = call(&env, &format!("{demo_set}?usage=true"), Some(&env.admin), None).await;
    assert_eq!(v["quota_set"]["volumes_fast"], json!({"limit": 1, "in_use": 1, "reserved": 0}));
    assert_eq!(v["quota_set"]["gigabytes_fast"]["in_use"], 1);
    assert_eq!(v["quota_set"]["gigabytes_fast"]["limit"], 7);
}

/// Cinder's volume image metadata actions: `os-set_image_metadata` merges
/// and answers the whole, `os-show_image_metadata` shows it, the volume
/// view carries it as `volume_image_metadata`, `os-unset_image_metadata`
/// removes a key (404 when absent); readers may only look.
#[tokio::test]
async fn volume_image_metadata_actions() {
    let env = env().await;
    let vol = create(&env, 1, "im").await;
    let id = vol["id"].as_str().expect("id").to_string();
    let url = format!("/volume/v3/{}/volumes/{id}", env.demo_project);
    let act = format!("{url}/action");
    let (s, _, v) =
        send(&env, "POST", &act, Some(&env.demo), None, Some(json!({"os-show_image_metadata": null}))).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"metadata": {}})));
    let set = json!({"os-set_image_metadata": {"metadata": {"image_name": "image", "ramdisk_id": "somedisk"}}});
    let (s, _, v) = send(&env, "POST", &act, Some(&env.demo), None, Some(set)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["ramdisk_id"], "somedisk");
    let (_, _, v) = call(&env, &url, Some(&env.demo), None).await;
    assert_eq!(v["volume"]["volume_image_metadata"], json!({"image_name": "image", "ramdisk_id": "somedisk"}));
    let unset = json!({"os-unset_image_metadata": {"key": "ramdisk_id"}});
    assert_eq!(send(&env, "POST", &act, Some(&env.demo), None, Some(unset.clone())).await.0, StatusCode::OK);
    assert_eq!(send(&env, "POST", &act, Some(&env.demo), None, Some(unset)).await.0, StatusCode::NOT_FOUND);
    let (_, _, v) = send(&env, "POST", &act, Some(&env.demo), None, Some(json!({"os-show_image_metadata": {}}))).await;
    assert_eq!(v, json!({"metadata": {"image_name": "image"}}));
    let bad = json!({"os-set_image_metadata": {"metadata": {"k": 1}}});
    assert_eq!(send(&env, "POST", &act, Some(&env.demo), None, Some(bad)).await.0, StatusCode::BAD_REQUEST);
}

/// Cinder 3.12's volume summary: count and total size of the project's
/// volumes; 3.36 adds each metadata key's values; below 3.12 it is 404.
#[tokio::test]
async fn volume_summary_counts_the_projects_volumes() {
    let env = env().await;
    create(&env, 2, "a").await;
    create(&env, 3, "b").await;
    let url = format!("/volume/v3/{}/volumes/summary", env.demo_project);
    assert_eq!(call(&env, &url, Some(&env.demo), Some("volume 3.11")).await.0, StatusCode::NOT_FOUND);
    let (s, _, v) = call(&env, &url, Some(&env.demo), Some("volume 3.12")).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"volume-summary": {"total_size": 5, "total_count": 2}})));
    let (_, _, v) = call(&env, &url, Some(&env.demo), Some("volume 3.36")).await;
    assert_eq!(v["volume-summary"]["metadata"], json!({}));
}

/// Cinder's v3 volume view (`views/volumes.py` `detail`): `provider_id`
/// (3.21) and `cluster_name` (3.61) for admins only, `shared_targets` and
/// `service_uuid` from 3.48, and no `encryption_key_id` (3.64) for an
/// unencrypted volume.
#[tokio::test]
async fn volume_view_fields_follow_cinders_microversions() {
    let env = env().await;
    let id = create(&env, 1, "f").await["id"].as_str().expect("id").to_string();
    let uri = format!("/volume/v3/volumes/{id}");
    let show = |token: &str, v: &'static str| {
        let (env, uri, token) = (&env, uri.clone(), token.to_string());
        async move { call(env, &uri, Some(&token), Some(v)).await.2["volume"].clone() }
    };
    let old = show(&env.admin, "volume 3.20").await;
    for k in ["provider_id", "shared_targets", "service_uuid", "cluster_name"] {
        assert!(old.get(k).is_none(), "{k} not before its version");
    }
    let admin = show(&env.admin, "volume 3.70").await;
    assert!(admin.get("provider_id").is_some_and(Value::is_null));
    assert!(admin.get("cluster_name").is_some_and(Value::is_null));
    assert_eq!(admin["shared_targets"], false);
    assert!(admin.get("service_uuid").is_some_and(Value::is_null));
    assert!(admin.get("encryption_key_id").is_none(), "omitted for an unencrypted volume");
    let member = show(&env.demo, "volume 3.70").await;
    assert!(member.get("provider_id").is_none() && member.get("cluster_name").is_none(), "admins only");
    assert_eq!(member["shared_targets"], false);
    let older = show(&env.demo, "volume 3.47").await;
    assert!(older.get("shared_targets").is_none());
}

/// Cinder's volume list: `bootable` takes strict boolean words from 3.2
/// (else 400), `created_at`/`updated_at` `op:time` comparisons from 3.60,
/// and `with_count` (3.45) adds the number of matches before paging.
#[tokio::test]
async fn volume_list_bootable_time_filters_and_count() {
    let env = env().await;
    let boot = create(&env, 1, "boot").await["id"].as_str().expect("id").to_string();
    create(&env, 1, "plain").await;
    let action = format!("/volume/v3/volumes/{boot}/action");
    let t = Some(env.demo.as_str());
    let (s, _, _) = send(&env, "POST", &action, t, None, Some(json!({"os-set_bootable": {"bootable": true}}))).await;
    assert_eq!(s, StatusCode::OK);
    let names = |v: &Value| -> Vec<String> {
        v["volumes"].as_array().expect("list").iter().map(|x| x["name"].as_str().expect("name").to_string()).collect()
    };
    let list = |q: &'static str, mv: &'static str| {
        let env = &env;
        async move { call(env, &format!("/volume/v3/volumes?{q}"), Some(&env.demo), Some(mv)).await }
    };
    let (_, _, v) = list("bootable=yes", "volume 3.2").await;
    assert_eq!(names(&v), ["boot"]);
    let (_, _, v) = list("bootable=0", "volume 3.2").await;
    assert_eq!(names(&v), ["plain"]);
    let (s, _, v) = list("bootable=maybe", "volume 3.2").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, _, v) = list("bootable=0", "volume 3.0").await;
    assert_eq!(names(&v), ["boot"], "before 3.2 any non-false word is true");

    let (_, _, v) = list("created_at=gt:2000-01-01T00:00:00&updated_at=lt:2999-01-01T00:00:00Z", "volume 3.60").await;
    assert_eq!(names(&v).len(), 2);
    let (_, _, v) = list("created_at=lt:2000-01-01T00:00:00", "volume 3.60").await;
    assert_eq!(names(&v).len(), 0);
    let (_, _, v) = list("created_at=lt:2000-01-01T00:00:00", "volume 3.59").await;
    assert_eq!(names(&v).len(), 0, "Cinder's general filtering (3.31+) passes them already");
    let (_, _, v) = list("created_at=lt:2000-01-01T00:00:00", "volume 3.30").await;
    assert_eq!(names(&v).len(), 2, "dropped before 3.31");
    let (s, _, _) = list("created_at=soon:2000-01-01T00:00:00", "volume 3.60").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, _, v) = list("with_count=true&limit=1", "volume 3.45").await;
    assert_eq!((names(&v).len(), v["count"].as_u64()), (1, Some(2)));
    let (_, _, v) = list("with_count=true", "volume 3.44").await;
    assert!(v.get("count").is_none());
    let (s, _, _) = list("with_count=perhaps", "volume 3.45").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Cinder's `get_pools` filters: none before 3.28; `name` and capability
/// filters from 3.28; only `name`/`volume_type` from 3.31 (others 400, even
/// for admins); `volume_type` from 3.35 keeps pools whose capabilities
/// satisfy the type's extra specs (unknown type 404).
#[tokio::test]
async fn volume_pool_filters_follow_cinder() {
    let env = env().await;
    let a = Some(env.admin.as_str());
    let pools = |q: String, mv: &'static str| {
        let env = &env;
        async move { call(env, &format!("/volume/v3/scheduler-stats/get_pools?{q}"), a, Some(mv)).await }
    };
    let count = |v: &Value| v["pools"].as_array().map(Vec::len);
    let (_, _, v) = pools(String::new(), "volume 3.70").await;
    let name = v["pools"][0]["name"].as_str().expect("pool").to_string();
    assert_eq!(count(&pools("name=other".into(), "volume 3.27").await.2), Some(1), "ignored before 3.28");
    assert_eq!(count(&pools("name=other".into(), "volume 3.28").await.2), Some(0));
    let encoded = name.replace('@', "%40").replace('#', "%23");
    assert_eq!(count(&pools(format!("name={encoded}"), "volume 3.28").await.2), Some(1));
    assert_eq!(count(&pools("vendor_name=Other".into(), "volume 3.28").await.2), Some(0), "capability filter");
    let (s, _, v) = pools("vendor_name=Stratus".into(), "volume 3.31").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["badRequest"]["message"], "Invalid filters vendor_name are found in query options.");

    let body = json!({"volume_type": {"name": "elsewhere", "extra_specs": {"vendor_name": "Other"}}});
    let (s, _, _) = send(&env, "POST", "/volume/v3/types", a, None, Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) =
        send(&env, "POST", "/volume/v3/types", a, None, Some(json!({"volume_type": {"name": "here"}}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(count(&pools("volume_type=elsewhere".into(), "volume 3.34").await.2), Some(1), "ignored before 3.35");
    assert_eq!(count(&pools("volume_type=elsewhere".into(), "volume 3.35").await.2), Some(0));
    assert_eq!(count(&pools("volume_type=here&detail=true".into(), "volume 3.35").await.2), Some(1));
    assert_eq!(pools("volume_type=nosuch".into(), "volume 3.35").await.0, StatusCode::NOT_FOUND);
}

/// Cinder's 3.49 `backend_state` on cinder-volume services (`up` when the
/// pool reports nothing else) and 3.39 admin `project_id` on limits.
#[tokio::test]
async fn volume_services_backend_state_and_limits_for_a_named_project() {
    let env = env().await;
    let a = Some(env.admin.as_str());
    let (_, _, v) = call(&env, "/volume/v3/os-services", a, Some("volume 3.49")).await;
    let svcs = v["services"].as_array().expect("services");
    for s in svcs {
        let want = if s["binary"] == "cinder-volume" { Some("up") } else { None };
        assert_eq!(s.get("backend_state").and_then(Value::as_str), want, "{s}");
    }
    let (_, _, v) = call(&env, "/volume/v3/os-services", a, Some("volume 3.48")).await;
    assert!(v["services"].as_array().expect("services").iter().all(|s| s.get("backend_state").is_none()));

    create(&env, 2, "demo's").await;
    let q = format!("/volume/v3/limits?project_id={}", env.demo_project);
    let used = |v: &Value| v["limits"]["absolute"]["totalGigabytesUsed"].as_i64();
    assert_eq!(used(&call(&env, &q, a, Some("volume 3.39")).await.2), Some(2), "the named project's");
    assert_eq!(used(&call(&env, &q, a, Some("volume 3.38")).await.2), Some(0), "the admin's own before 3.39");
    let q = format!("/volume/v3/limits?project_id={}", env.admin_project);
    assert_eq!(used(&call(&env, &q, Some(&env.demo), Some("volume 3.39")).await.2), Some(2), "ignored for members");
}

/// Cinder's general volume filtering with the default
/// `resource_filters.json`: non-admins' unknown filters are dropped before
/// 3.31 and 400 from 3.31; `metadata`, `availability_zone`, `size` filter;
/// `name~` (3.34, `LIKE`) and `glance_metadata` (3.4) are admin filters.
#[tokio::test]
async fn volume_list_general_filters_follow_cinders_defaults() {
    let env = env().await;
    let uri = format!("/volume/v3/{}/volumes", env.demo_project);
    let body = json!({"volume": {"size": 2, "name": "Alpha-one", "metadata": {"tier": "gold"}}});
    let (s, _, _) = send(&env, "POST", &uri, Some(&env.demo), None, Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    create(&env, 1, "beta").await;
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["volumes"]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| x["name"].as_str().expect("name").to_string())
            .collect();
        n.sort();
        n
    };
    let list = |q: &'static str, token: &str, mv: &'static str| {
        let (env, token) = (&env, token.to_string());
        async move { call(env, &format!("/volume/v3/volumes?all_tenants=1&{q}"), Some(&token), Some(mv)).await }
    };
    let d = env.demo.clone();
    assert_eq!(names(&list("metadata={'tier':'gold'}", &d, "volume 3.0").await.2), ["Alpha-one"]);
    assert_eq!(names(&list("size=1&availability_zone=nova", &d, "volume 3.0").await.2), ["beta"]);
    assert_eq!(names(&list("name~=ALPHA", &d, "volume 3.30").await.2).len(), 2, "non-admin: dropped before 3.31");
    let (s, _, v) = list("name~=ALPHA", &d, "volume 3.34").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a default non-admin filter");
    assert_eq!(v["badRequest"]["message"], "Invalid filters name~ are found in query options.");
    let a = env.admin.clone();
    assert_eq!(names(&list("name~=ALPHA", &a, "volume 3.34").await.2), ["Alpha-one"]);
    assert_eq!(names(&list("glance_metadata={'image_id':'x'}", &a, "volume 3.4").await.2).len(), 0);
    assert_eq!(names(&list("glance_metadata={'image_id':'x'}", &a, "volume 3.3").await.2).len(), 2, "3.4+");
}

/// Cinder's `GET /resource_filters` (3.33, no policy): the configured
/// filters per resource, one resource with `?resource=`, none for an
/// unknown one; 404 below 3.33.
#[tokio::test]
async fn resource_filters_list_cinders_defaults() {
    let env = env().await;
    let t = Some(env.demo.as_str());
    let (s, _, _) = call(&env, "/volume/v3/resource_filters", t, Some("volume 3.32")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, v) = call(&env, "/volume/v3/resource_filters", t, Some("volume 3.33")).await;
    assert_eq!(s, StatusCode::OK);
    let all = v["resource_filters"].as_array().expect("list");
    assert!(all.iter().any(|r| r["resource"] == "pool" && r["filters"] == json!(["name", "volume_type"])));
    let (_, _, v) = call(&env, "/volume/v3/resource_filters?resource=volume", t, Some("volume 3.33")).await;
    assert_eq!(v["resource_filters"].as_array().map(Vec::len), Some(1));
    assert!(v["resource_filters"][0]["filters"].as_array().expect("filters").contains(&json!("bootable")));
    let (_, _, v) = call(&env, "/volume/v3/resource_filters?resource=nothing", t, Some("volume 3.33")).await;
    assert_eq!(v["resource_filters"], json!([]));
}

/// Cinder's message list: newest first; from 3.5 `sort`, `limit`/`marker`
/// with a `messages_links` next link, and exact filters on message
/// columns; from 3.31 a non-admin's unconfigured filter is 400.
#[tokio::test]
async fn message_list_sorts_pages_and_filters_from_3_5() {
    let env = env().await;
    let a = Some(env.admin.as_str());
    let body = json!({"volume_type": {"name": "nowhere", "extra_specs": {"vendor_name": "Other"}}});
    let (s, _, _) = send(&env, "POST", "/volume/v3/types", a, None, Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    let mut vols = Vec::new();
    for i in 0..3 {
        let body = json!({"volume": {"size": 1, "name": format!("m{i}"), "volume_type": "nowhere"}});
        let (s, _, v) = send(&env, "POST", "/volume/v3/volumes", Some(&env.demo), None, Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        vols.push(v["volume"]["id"].as_str().expect("id").to_string());
    }
    let t = Some(env.demo.as_str());
    let uuids = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["resource_uuid"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (_, _, v) = call(&env, "/volume/v3/messages?limit=1", t, Some("volume 3.3")).await;
    let newest_first: Vec<String> = vols.iter().rev().cloned().collect();
    assert_eq!(uuids(&v), newest_first, "newest first; paging ignored before 3.5");
    let (_, _, v) = call(&env, "/volume/v3/messages?sort=created_at:asc&limit=2", t, Some("volume 3.5")).await;
    assert_eq!(uuids(&v), vols[..2].to_vec());
    let next = v["messages_links"][0]["href"].as_str().expect("a full page links on").to_string();
    let path = next.split_once("/volume/").map(|(_, p)| format!("/volume/{p}")).expect("path");
    let (s, _, v) = call(&env, &path, t, Some("volume 3.5")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(uuids(&v), vols[2..].to_vec());
    let (_, _, v) = call(&env, &format!("/volume/v3/messages?resource_uuid={}", vols[1]), t, Some("volume 3.5")).await;
    assert_eq!(uuids(&v), [vols[1].clone()]);
    let (s, _, _) = call(&env, "/volume/v3/messages?sort=colour", t, Some("volume 3.5")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = call(&env, "/volume/v3/messages?project_id=x", t, Some("volume 3.31")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a configured message filter");
}

/// Cinder's transfer list: oldest first before 3.59; from 3.59 sorted
/// (default newest first) and paged with `transfers_links`.
#[tokio::test]
async fn transfer_list_sorts_and_pages_from_3_59() {
    let env = env().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let vid = create(&env, 1, &format!("t{i}")).await["id"].as_str().expect("id").to_string();
        let body = json!({"transfer": {"volume_id": vid, "name": format!("t{i}")}});
        let (s, _, v) =
            send(&env, "POST", "/volume/v3/volume-transfers", Some(&env.demo), Some("volume 3.59"), Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        ids.push(v["transfer"]["id"].as_str().expect("id").to_string());
    }
    let t = Some(env.demo.as_str());
    let got = |v: &Value| -> Vec<String> {
        v["transfers"].as_array().expect("list").iter().map(|x| x["id"].as_str().expect("id").to_string()).collect()
    };
    let (_, _, v) = call(&env, "/volume/v3/os-volume-transfer?limit=1", t, None).await;
    assert_eq!(got(&v), ids, "oldest first, unpaged, before 3.59");
    let (_, _, v) = call(&env, "/volume/v3/volume-transfers?limit=2", t, Some("volume 3.59")).await;
    assert_eq!(got(&v), [ids[2].clone(), ids[1].clone()]);
    assert!(v["transfers_links"][0]["href"].as_str().expect("next").contains(&format!("marker={}", ids[1])));
    let (_, _, v) = call(
        &env,
        &format!("/volume/v3/volume-transfers/detail?sort=name:asc&marker={}", ids[0]),
        t,
        Some("volume 3.59"),
    )
    .await;
    assert_eq!(got(&v), ids[1..].to_vec());
}

/// Cinder's 3.52 volume type filters: `extra_specs` (a dict) matches
/// types having every pair; non-admins only from 3.52 and only on
/// user-visible specs (others give an empty list), other filters 400.
#[tokio::test]
async fn volume_type_list_extra_specs_filter_from_3_52() {
    let env = env().await;
    let a = Some(env.admin.as_str());
    let body =
        json!({"volume_type": {"name": "az1", "extra_specs": {"RESKEY:availability_zones": "az1", "secret": "x"}}});
    let (s, _, _) = send(&env, "POST", "/volume/v3/types", a, None, Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    let names = |v: &Value| -> Vec<String> {
        v["volume_types"]
            .as_array()
            .expect("types")
            .iter()
            .map(|t| t["name"].as_str().expect("name").to_string())
            .collect()
    };
    let q = "/volume/v3/types?extra_specs={'RESKEY:availability_zones':'az1'}";
    let t = Some(env.demo.as_str());
    assert_eq!(names(&call(&env, q, t, Some("volume 3.52")).await.2), ["az1"]);
    assert!(names(&call(&env, q, t, Some("volume 3.51")).await.2).len() > 1, "dropped for members before 3.52");
    assert_eq!(names(&call(&env, q, a, Some("volume 3.0")).await.2), ["az1"], "admins' filter always applies");
    let secret = "/volume/v3/types?extra_specs={'secret':'x'}";
    assert_eq!(names(&call(&env, secret, t, Some("volume 3.52")).await.2).len(), 0, "not a user-visible spec");
    assert_eq!(names(&call(&env, secret, a, Some("volume 3.52")).await.2), ["az1"]);
    let (s, _, _) = call(&env, "/volume/v3/types?name=az1", t, Some("volume 3.52")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Cinder's 3.15 ETags on volume metadata: `GET .../metadata` carries the
/// MD5 of the document as `ETag`; a `PUT` whose `If-Match` names another
/// tag is an empty 412, the current tag (or none) lets it through.
#[tokio::test]
async fn volume_metadata_etags_from_3_15() {
    let env = env().await;
    let id = create(&env, 1, "e").await["id"].as_str().expect("id").to_string();
    let meta = format!("/volume/v3/volumes/{id}/metadata");
    let t = Some(env.demo.as_str());
    let (_, h, _) = call(&env, &meta, t, Some("volume 3.14")).await;
    assert!(h.get("etag").is_none());
    let (_, h, _) = call(&env, &meta, t, Some("volume 3.15")).await;
    let tag = h.get("etag").and_then(|v| v.to_str().ok()).expect("etag").to_string();
    assert_eq!(tag.len(), 32, "an MD5 hex digest");
    let put = |uri: String, if_match: String, body: Value| {
        let env = &env;
        async move {
            let req = axum::http::Request::builder()
                .method("PUT")
                .uri(uri)
                .header("x-auth-token", &env.demo)
                .header("openstack-api-version", "volume 3.15")
                .header("content-type", "application/json")
                .header("if-match", if_match.as_str())
                .body(Body::from(body.to_string()))
                .expect("request");
            crate::router(env.state.clone()).oneshot(req).await.expect("response").status()
        }
    };
    let stale = put(meta.clone(), "\"0123456789abcdef0123456789abcdef\"".into(), json!({"metadata": {"a": "1"}})).await;
    assert_eq!(stale, StatusCode::PRECONDITION_FAILED);
    assert_eq!(put(meta.clone(), tag.clone(), json!({"metadata": {"a": "1"}})).await, StatusCode::OK);
    assert_eq!(
        put(format!("{meta}/a"), tag.clone(), json!({"meta": {"a": "2"}})).await,
        StatusCode::PRECONDITION_FAILED,
        "the metadata changed"
    );
    assert_eq!(put(format!("{meta}/a"), "*".into(), json!({"meta": {"a": "2"}})).await, StatusCode::OK);
}

/// Cinder's group snapshots over HTTP (Tempest `GroupSnapshotsTest`): 404
/// below 3.14; create answers {id, name, group_type_id}; show has Tempest's
/// seven keys (admins also `project_id` from 3.58); member snapshots show
/// `group_snapshot_id`; the group view shows what a group was built from;
/// reset_status is 3.19+ and admin-only.
#[tokio::test]
async fn group_snapshots_over_http() {
    let env = env().await;
    let (admin, demo) = (env.admin.clone(), env.demo.clone());
    let v = |mv: &str| format!("volume {mv}");
    let post = |uri: &'static str, token: String, mv: String, body: Value| {
        let env = &env;
        async move { send(env, "POST", uri, Some(&token), Some(&mv), Some(body)).await }
    };
    let (s, _, gt) =
        post("/volume/v3/group_types", admin.clone(), v("3.11"), json!({"group_type": {"name": "gsnap"}})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{gt}");
    let body = json!({"group": {"group_type": gt["group_type"]["id"], "volume_types": ["__DEFAULT__"]}});
    let (s, _, g) = post("/volume/v3/groups", demo.clone(), v("3.13"), body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{g}");
    let gid = g["group"]["id"].as_str().expect("group id").to_string();
    let body = json!({"volume": {"size": 1, "group_id": gid}});
    let (s, _, vol) = post("/volume/v3/volumes", demo.clone(), v("3.13"), body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{vol}");
    let body = json!({"group_snapshot": {"group_id": gid, "name": "gs"}});
    assert_eq!(
        post("/volume/v3/group_snapshots", demo.clone(), v("3.13"), body.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _, gs) = post("/volume/v3/group_snapshots", demo.clone(), v("3.14"), body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{gs}");
    let keys: Vec<&String> = gs["group_snapshot"].as_object().expect("view").keys().collect();
    assert_eq!(keys, ["group_type_id", "id", "name"]);
    let id = gs["group_snapshot"]["id"].as_str().expect("id").to_string();
    let (s, _, shown) = call(&env, &format!("/volume/v3/group_snapshots/{id}"), Some(&demo), Some(&v("3.70"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(shown["group_snapshot"].as_object().expect("view").len(), 7, "{shown}");
    assert_eq!(shown["group_snapshot"]["status"], json!("available"));
    let (_, _, shown) = call(&env, &format!("/volume/v3/group_snapshots/{id}"), Some(&admin), Some(&v("3.58"))).await;
    assert_eq!(shown["group_snapshot"]["project_id"], json!(env.demo_project));
    let (_, _, snaps) = call(&env, "/volume/v3/snapshots/detail", Some(&demo), Some(&v("3.14"))).await;
    assert_eq!(snaps["snapshots"][0]["group_snapshot_id"], json!(id));
    let (_, _, list) = call(&env, "/volume/v3/group_snapshots", Some(&demo), Some(&v("3.14"))).await;
    assert_eq!(list["group_snapshots"], json!([{"id": id, "name": "gs"}]));
    // A group from it names it (3.14 view).
    let body = json!({"create-from-src": {"group_snapshot_id": id, "name": "copy"}});
    let (s, _, copy) = post("/volume/v3/groups/action", demo.clone(), v("3.14"), body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{copy}");
    let cid = copy["group"]["id"].as_str().expect("id").to_string();
    let (_, _, shown) = call(&env, &format!("/volume/v3/groups/{cid}"), Some(&demo), Some(&v("3.14"))).await;
    assert_eq!(shown["group"]["group_snapshot_id"], json!(id));
    // reset_status: 3.19+, admins only.
    let uri = format!("/volume/v3/group_snapshots/{id}/action");
    let reset = json!({"reset_status": {"status": "error"}});
    assert_eq!(
        send(&env, "POST", &uri, Some(&admin), Some(&v("3.18")), Some(reset.clone())).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&env, "POST", &uri, Some(&demo), Some(&v("3.19")), Some(reset.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&env, "POST", &uri, Some(&admin), Some(&v("3.19")), Some(reset)).await.0, StatusCode::ACCEPTED);
}

/// Cinder's `revert` action: a 404 before 3.40 (the action is not there),
/// 202 from 3.40 to the latest snapshot, 400 to another, 409 when the
/// volume is not `available`.
#[tokio::test]
async fn revert_action_from_3_40() {
    let env = env().await;
    let t = Some(env.demo.as_str());
    let p = &env.demo_project;
    let (s, _, v) =
        send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, None, Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vid = v["volume"]["id"].as_str().expect("id").to_string();
    let snap = json!({"snapshot": {"volume_id": vid}});
    let (s, _, sn) = send(&env, "POST", &format!("/volume/v3/{p}/snapshots"), t, None, Some(snap)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{sn}");
    let sid = sn["snapshot"]["id"].as_str().expect("id").to_string();
    let action = format!("/volume/v3/{p}/volumes/{vid}/action");
    let revert = |id: &str| Some(json!({"revert": {"snapshot_id": id}}));
    let (s, _, _) = send(&env, "POST", &action, t, Some("volume 3.39"), revert(&sid)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.40"), revert("other")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.40"), revert(&sid)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(env.backend.reverts(), 1);
    let (_, _, v) = call(&env, &format!("/volume/v3/{p}/volumes/{vid}"), t, None).await;
    assert_eq!(v["volume"]["status"], "available");
    let id: stratus_types::VolumeId = vid.parse().expect("uuid");
    env.ds.volume_set_status(&id, &[], stratus_volume::VolumeStatus::InUse).await.expect("in-use");
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.40"), revert(&sid)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
}

/// Cinder's `/default-types` (3.62): 404 below it; admins set (200),
/// show, list and unset (204) a project's default; members get 403; the
/// member's volume created without a type gets it.
#[tokio::test]
async fn default_types_from_3_62() {
    let env = env().await;
    let (a, m) = (Some(env.admin.as_str()), Some(env.demo.as_str()));
    let p = env.demo_project.clone();
    let v62 = Some("volume 3.62");
    let (s, _, t) =
        send(&env, "POST", "/volume/v3/types", a, None, Some(json!({"volume_type": {"name": "gold"}}))).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let gold = t["volume_type"]["id"].as_str().expect("id").to_string();
    let url = format!("/volume/v3/default-types/{p}");
    let set = Some(json!({"default_type": {"volume_type": "gold"}}));
    let (s, _, _) = send(&env, "PUT", &url, a, Some("volume 3.61"), set.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = send(&env, "PUT", &url, m, v62, set.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, b) = send(&env, "GET", &url, a, v62, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _, b) = send(&env, "PUT", &url, a, v62, set).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"default_type": {"project_id": p, "volume_type_id": gold}}));
    let (s, _, b) = send(&env, "GET", &url, a, v62, None).await;
    assert_eq!((s, &b["default_type"]["volume_type_id"]), (StatusCode::OK, &json!(gold)));
    let (s, _, b) = send(&env, "GET", "/volume/v3/default-types", a, v62, None).await;
    assert_eq!((s, b["default_types"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, _, b) = send(&env, "PUT", &url, a, v62, Some(json!({"default_type": {"volume_type": "tin"}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _, v) =
        send(&env, "POST", &format!("/volume/v3/{p}/volumes"), m, v62, Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["volume"]["volume_type"], "gold");
    let (s, _, _) = send(&env, "DELETE", &url, a, v62, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = send(&env, "GET", &url, a, v62, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Cinder's snapshot lists: the `metadata` filter from 3.22 (ignored
/// before, as Cinder pops it) and `count` with `with_count` from 3.45.
#[tokio::test]
async fn snapshot_list_metadata_filter_and_count() {
    let env = env().await;
    let t = Some(env.demo.as_str());
    let p = &env.demo_project;
    let (_, _, v) =
        send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, None, Some(json!({"volume": {"size": 1}}))).await;
    let vid = v["volume"]["id"].as_str().expect("id").to_string();
    for (name, meta) in [("a", json!({"k": "1"})), ("b", json!({"k": "2", "x": "y"}))] {
        let body = json!({"snapshot": {"volume_id": vid, "name": name, "metadata": meta}});
        let (s, _, b) = send(&env, "POST", &format!("/volume/v3/{p}/snapshots"), t, None, Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    let list = |q: &str, v: &'static str| {
        let url = format!("/volume/v3/{p}/snapshots/detail?{q}");
        let env = &env;
        async move { call(env, &url, t, Some(v)).await }
    };
    let names = |b: &Value| -> Vec<String> {
        let mut n: Vec<String> = b["snapshots"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect();
        n.sort();
        n
    };
    let (_, _, b) = list("metadata=%7B%27k%27%3A%272%27%7D", "volume 3.22").await;
    assert_eq!(names(&b), ["b"]);
    let (_, _, b) = list("metadata=%7B%27k%27%3A%272%27%7D", "volume 3.21").await;
    assert_eq!(names(&b), ["a", "b"]);
    let (s, _, _) = list("metadata=nope", "volume 3.22").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, _, b) = list("with_count=true&limit=1", "volume 3.45").await;
    assert_eq!((b["count"].as_u64(), b["snapshots"].as_array().map(Vec::len)), (Some(2), Some(1)));
    let (_, _, b) = list("with_count=true", "volume 3.44").await;
    assert!(b.get("count").is_none());
    let (s, _, _) = list("with_count=maybe", "volume 3.45").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Cinder 3.46: a volume from a Nova snapshot image (no data, a
/// `block_device_mapping` naming the boot volume's snapshot) is built from
/// that snapshot; before 3.46 the image is used as an image; a mapping
/// naming a snapshot the caller cannot see is Cinder's 404.
#[tokio::test]
async fn volume_from_a_nova_snapshot_image_from_3_46() {
    let env = env().await;
    let t = Some(env.demo.as_str());
    let p = &env.demo_project;
    let (_, _, v) =
        send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, None, Some(json!({"volume": {"size": 1}}))).await;
    let vid = v["volume"]["id"].as_str().expect("id").to_string();
    let snap = json!({"snapshot": {"volume_id": vid}});
    let (_, _, sn) = send(&env, "POST", &format!("/volume/v3/{p}/snapshots"), t, None, Some(snap)).await;
    let sid = sn["snapshot"]["id"].as_str().expect("id").to_string();
    let image = |snapshot: &str| {
        let bdm = json!([{"source_type": "snapshot", "boot_index": 0, "snapshot_id": snapshot, "volume_size": 1}]);
        json!({"name": "nova-snap", "disk_format": "raw", "container_format": "bare", "block_device_mapping": bdm.to_string()})
    };
    let (s, _, img) = send(&env, "POST", "/image/v2/images", t, None, Some(image(&sid))).await;
    assert_eq!(s, StatusCode::CREATED, "{img}");
    let iid = img["id"].as_str().expect("id").to_string();
    let create = Some(json!({"volume": {"size": 1, "imageRef": iid}}));
    let (s, _, v) =
        send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, Some("volume 3.46"), create.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["volume"]["snapshot_id"], json!(sid));
    // Before 3.46 it is an image without data: refused as one.
    let (s, _, b) = send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, Some("volume 3.45"), create).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, _, img) =
        send(&env, "POST", "/image/v2/images", t, None, Some(image("0b7e5d3c-0000-4000-8000-000000000000"))).await;
    let iid = img["id"].as_str().expect("id").to_string();
    let create = Some(json!({"volume": {"size": 1, "imageRef": iid}}));
    let (s, _, b) = send(&env, "POST", &format!("/volume/v3/{p}/volumes"), t, Some("volume 3.46"), create).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(b.to_string().contains("Nova specific image is found"), "{b}");
}

/// A test environment with one 1 GB volume of the demo project: its id and
/// its action URL.
async fn env_with_volume() -> (Env, String, String) {
    let env = env().await;
    let p = &env.demo_project;
    let (_, _, v) = send(
        &env,
        "POST",
        &format!("/volume/v3/{p}/volumes"),
        Some(env.demo.as_str()),
        None,
        Some(json!({"volume": {"size": 1}})),
    )
    .await;
    let vid = v["volume"]["id"].as_str().expect("id").to_string();
    let action = format!("/volume/v3/{p}/volumes/{vid}/action");
    (env, vid, action)
}

/// Cinder's `os-reimage` action: a 404 before 3.68; from 3.68 an image id
/// that is not a UUID is 400 and an unknown image 404.
#[tokio::test]
async fn reimage_action_from_3_68() {
    let (env, vid, action) = env_with_volume().await;
    let t = Some(env.demo.as_str());
    let p = &env.demo_project;
    let body = |id: &str| Some(json!({"os-reimage": {"image_id": id}}));
    let unknown = uuid::Uuid::new_v4().to_string();
    let (s, _, _) = send(&env, "POST", &action, t, Some("volume 3.67"), body(&unknown)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.68"), body("x")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.68"), body(&unknown)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (_, _, v) = call(&env, &format!("/volume/v3/{p}/volumes/{vid}"), t, None).await;
    assert_eq!(v["volume"]["status"], "available", "nothing changed");
}

/// Cinder's `os-extend_volume_completion` (3.71): a 404 before 3.71; from
/// 3.71 admin (or service) only, and an `InvalidVolume` 400 for a volume
/// with no extend awaiting completion (Cinder's `extend_volume_completion`
/// checks for `extending` first), which is every volume here.
#[tokio::test]
async fn extend_completion_action_from_3_71() {
    let (env, vid, action) = env_with_volume().await;
    let t = Some(env.demo.as_str());
    let p = &env.demo_project;
    let body = || Some(json!({"os-extend_volume_completion": {"error": false}}));
    let admin = Some(env.admin.as_str());
    let (s, _, _) = send(&env, "POST", &action, admin, Some("volume 3.70"), body()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = send(&env, "POST", &action, t, Some("volume 3.71"), body()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, _, b) = send(&env, "POST", &action, admin, Some("volume 3.71"), body()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["badRequest"]["message"].as_str().unwrap_or("").contains("'extending'"), "{b}");
    let (s, _, b) =
        send(&env, "POST", &action, admin, Some("volume 3.71"), Some(json!({"os-extend_volume_completion": {"x": 1}})))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, _, v) = call(&env, &format!("/volume/v3/{p}/volumes/{vid}"), t, None).await;
    assert_eq!(v["volume"]["status"], "available", "nothing changed");
    assert_eq!(v["volume"]["size"], 1);
}
