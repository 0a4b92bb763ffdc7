//! HTTP-level tests of the Image API: routes, status codes, fault bodies.

use crate::AppState;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use md5::Md5;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
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
    admin: String,
    demo: String,
    alt: String,
    viewer: String,
    _dir: TempDir,
}

async fn env() -> Env {
    let dir = std::env::temp_dir().join(format!("stratus-image-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open db");
    stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("admin");
    stratus_auth::bootstrap_user(&ds, "demo", "pw", "demo", "member", false).await.expect("demo");
    stratus_auth::bootstrap_user(&ds, "alt", "pw", "alt", "member", false).await.expect("alt");
    stratus_auth::bootstrap_user(&ds, "viewer", "pw", "demo", "reader", false).await.expect("viewer");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let token = |user: &'static str, project: &'static str| {
        let identity = identity.clone();
        async move {
            identity
                .authenticate(user, "pw", stratus_auth::ProjectScope::Name(project.into()))
                .await
                .expect("token")
                .token
        }
    };
    let admin = token("admin", "admin").await;
    let demo = token("demo", "demo").await;
    let alt = token("alt", "alt").await;
    let viewer = token("viewer", "demo").await;
    let (state, _) = crate::volume::test_state(&ds, identity, dir.join("images"));
    Env { state, admin, demo, alt, viewer, _dir: TempDir(dir) }
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

async fn call(env: &Env, method: &str, uri: &str, token: Option<&str>, ctype: Option<&str>, body: Vec<u8>) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    if let Some(c) = ctype {
        req = req.header("content-type", c);
    }
    let resp =
        crate::router(env.state.clone()).oneshot(req.body(Body::from(body)).expect("request")).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    Resp { status, headers, body }
}

async fn get(env: &Env, uri: &str, token: &str) -> Resp {
    call(env, "GET", uri, Some(token), None, vec![]).await
}

async fn post_json(env: &Env, uri: &str, token: &str, body: Value) -> Resp {
    call(env, "POST", uri, Some(token), Some("application/json"), body.to_string().into_bytes()).await
}

async fn patch(env: &Env, id: &str, token: &str, ops: Value) -> Resp {
    let uri = format!("/image/v2/images/{id}");
    call(
        env,
        "PATCH",
        &uri,
        Some(token),
        Some("application/openstack-images-v2.1-json-patch"),
        ops.to_string().into_bytes(),
    )
    .await
}

async fn create(env: &Env, token: &str, body: Value) -> String {
    let r = post_json(env, "/image/v2/images", token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn image_version_discovery() {
    let env = env().await;
    for path in ["/image", "/image/"] {
        let r = call(&env, "GET", path, None, None, vec![]).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
        let v = r.json();
        assert_eq!(v["versions"][0]["id"], "v2.16");
        assert_eq!(v["versions"][0]["status"], "CURRENT");
        assert_eq!(v["versions"][0]["links"][0]["href"], "http://127.0.0.1:8774/image/v2/");
        let ids: Vec<&str> = v["versions"].as_array().expect("list").iter().filter_map(|x| x["id"].as_str()).collect();
        assert!(ids.contains(&"v2.0") && ids.contains(&"v2.1") && ids.contains(&"v2.9"));
        assert!(v["versions"].as_array().expect("list").iter().skip(1).all(|x| x["status"] == "SUPPORTED"));
    }
    let r = call(&env, "GET", "/image/versions", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["versions"][0]["id"], "v2.16");
}

#[tokio::test]
async fn image_lifecycle_create_upload_show_download_delete() {
    let env = env().await;
    let r = post_json(
        &env,
        "/image/v2/images",
        &env.demo,
        json!({"name": "mine", "disk_format": "raw", "container_format": "bare", "min_disk": 1, "tags": ["a", "b"], "hw_disk_bus": "virtio"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let img = r.json();
    let id = img["id"].as_str().expect("id").to_string();
    assert_eq!(img["status"], "queued");
    assert_eq!(img["visibility"], "shared");
    assert_eq!(img["os_hash_algo"], Value::Null);
    assert_eq!(img["size"], Value::Null);
    assert_eq!(img["tags"], json!(["a", "b"]));
    assert_eq!(img["hw_disk_bus"], "virtio");
    assert_eq!(img["self"], format!("/v2/images/{id}"));
    assert_eq!(img["file"], format!("/v2/images/{id}/file"));
    assert_eq!(img["schema"], "/v2/schemas/image");
    assert_eq!(img["os_hidden"], false);
    assert!(img.as_object().expect("object").keys().all(|k| !k.starts_with("stratus:")));
    let created = img["created_at"].as_str().expect("created_at");
    assert_eq!(created.len(), 20, "{created}");
    assert!(created.ends_with('Z'));
    assert!(r.headers.get("location").is_some());

    // Queued: no data yet.
    let r = get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Over axum's default 2 MB body limit.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let file_uri = format!("/image/v2/images/{id}/file");
    let r = call(&env, "PUT", &file_uri, Some(&env.demo), Some("application/octet-stream"), data.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    let r = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    let img = r.json();
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"], data.len());
    assert_eq!(img["checksum"], hex::encode(Md5::digest(&data)));
    assert_eq!(img["os_hash_algo"], "sha512");
    assert_eq!(img["os_hash_value"], hex::encode(Sha512::digest(&data)));

    let r = get(&env, &file_uri, &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), data.as_slice());
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/octet-stream"));
    assert_eq!(
        r.headers.get("content-md5").and_then(|v| v.to_str().ok()),
        Some(hex::encode(Md5::digest(&data)).as_str())
    );

    // A second upload conflicts with the active image.
    let r = call(&env, "PUT", &file_uri, Some(&env.demo), Some("application/octet-stream"), b"x".to_vec()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = get(&env, "/image/v2/images", &env.demo).await;
    assert!(r.json()["images"].as_array().expect("list").iter().any(|i| i["id"] == id.as_str()));

    let r = call(&env, "DELETE", &format!("/image/v2/images/{id}"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!env.state.images.image_dir().join(&id).exists());
    let r = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["itemNotFound"]["code"], 404);
    let r = call(&env, "DELETE", &format!("/image/v2/images/{id}"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn image_private_image_of_another_project_is_not_found() {
    let env = env().await;
    let private = create(&env, &env.alt, json!({"name": "alt-private", "visibility": "private"})).await;
    let shared = create(&env, &env.alt, json!({"name": "alt-shared"})).await;
    let community = create(&env, &env.alt, json!({"name": "alt-community", "visibility": "community"})).await;
    let public = create(&env, &env.admin, json!({"name": "pub", "visibility": "public"})).await;
    for id in [&private, &shared] {
        let uri = format!("/image/v2/images/{id}");
        assert_eq!(get(&env, &uri, &env.demo).await.status, StatusCode::NOT_FOUND);
        assert_eq!(call(&env, "DELETE", &uri, Some(&env.demo), None, vec![]).await.status, StatusCode::NOT_FOUND);
        assert_eq!(get(&env, &uri, &env.alt).await.status, StatusCode::OK);
        assert_eq!(get(&env, &uri, &env.admin).await.status, StatusCode::OK);
    }
    assert_eq!(get(&env, &format!("/image/v2/images/{community}"), &env.demo).await.status, StatusCode::OK);
    assert_eq!(get(&env, &format!("/image/v2/images/{public}"), &env.demo).await.status, StatusCode::OK);
    // Visible but not ours: may not be changed.
    let r = call(&env, "DELETE", &format!("/image/v2/images/{public}"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&env, &public, &env.demo, json!([{"op": "replace", "path": "/name", "value": "x"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let ids = |r: &Resp| -> Vec<String> {
        r.json()["images"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect()
    };
    let listed = ids(&get(&env, "/image/v2/images", &env.demo).await);
    assert!(listed.contains(&public));
    assert!(!listed.contains(&private) && !listed.contains(&shared));
    assert!(!listed.contains(&community), "community images are listed only on request");
    let listed = ids(&get(&env, "/image/v2/images?visibility=community", &env.demo).await);
    assert_eq!(listed, vec![community.clone()]);
    let listed = ids(&get(&env, "/image/v2/images", &env.admin).await);
    assert!(listed.contains(&private) && listed.contains(&shared) && listed.contains(&public));
}

#[tokio::test]
async fn image_requires_token_and_write_role() {
    let env = env().await;
    let r = call(&env, "GET", "/image/v2/images", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&env, "GET", "/image/v2/images", Some("bogus"), None, vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&env, "POST", "/image/v2/images", None, Some("application/json"), b"{}".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A reader sees the project's images but changes nothing.
    let r = post_json(&env, "/image/v2/images", &env.viewer, json!({"name": "nope"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["forbidden"]["code"], 403);
    let id = create(&env, &env.demo, json!({"name": "d", "disk_format": "raw", "container_format": "bare"})).await;
    let uri = format!("/image/v2/images/{id}");
    assert_eq!(get(&env, &uri, &env.viewer).await.status, StatusCode::OK);
    let r =
        call(&env, "PUT", &format!("{uri}/file"), Some(&env.viewer), Some("application/octet-stream"), b"x".to_vec())
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&env, &id, &env.viewer, json!([{"op": "replace", "path": "/name", "value": "x"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&env, "DELETE", &uri, Some(&env.viewer), None, vec![]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn image_public_visibility_requires_admin() {
    let env = env().await;
    let r = post_json(&env, "/image/v2/images", &env.demo, json!({"name": "p", "visibility": "public"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let id = create(&env, &env.demo, json!({"name": "p", "visibility": "private"})).await;
    let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&env, &id, &env.admin, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["visibility"], "public");
    let r = post_json(&env, "/image/v2/images", &env.admin, json!({"name": "p2", "visibility": "public"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["visibility"], "public");
}

#[tokio::test]
async fn image_bad_values_are_rejected() {
    let env = env().await;
    let bad = [
        json!({"disk_format": "floppy"}),
        json!({"container_format": "zip"}),
        json!({"id": "not-a-uuid"}),
        json!({"visibility": "everyone"}),
        json!({"min_disk": -1}),
        json!({"min_ram": "lots"}),
        json!({"protected": "yes"}),
        json!({"tags": "a"}),
        json!({"hw_disk_bus": 5}),
        json!({"name": "x".repeat(256)}),
    ];
    for body in bad {
        let r = post_json(&env, "/image/v2/images", &env.demo, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json()["badRequest"]["code"], 400);
    }
    let r =
        call(&env, "POST", "/image/v2/images", Some(&env.demo), Some("application/json"), b"{not json".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for attr in ["status", "size", "checksum", "os_hash_value", "stratus:tags"] {
        let r = post_json(&env, "/image/v2/images", &env.demo, json!({ attr: "x" })).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{attr}");
    }
    let r = post_json(&env, "/image/v2/images", &env.demo, json!({"owner": "someone-else"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let fixed = "6c1d5f6e-2b43-4c1b-9b8c-1f2e3d4c5b6a";
    let id = create(&env, &env.demo, json!({"id": fixed, "name": "fixed"})).await;
    assert_eq!(id, fixed);
    let r = post_json(&env, "/image/v2/images", &env.demo, json!({"id": fixed})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Data needs formats first, and must be octet-stream.
    let uri = format!("/image/v2/images/{id}/file");
    let r = call(&env, "PUT", &uri, Some(&env.demo), Some("application/octet-stream"), b"x".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&env, "PUT", &uri, Some(&env.demo), Some("text/plain"), b"x".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn image_patch_updates_attributes_and_properties() {
    let env = env().await;
    let id = create(&env, &env.demo, json!({"name": "before", "os_distro": "cirros"})).await;
    let r = patch(
        &env,
        &id,
        &env.demo,
        json!([
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "replace", "path": "/min_ram", "value": 64},
            {"op": "add", "path": "/min_disk", "value": 2},
            {"op": "replace", "path": "/disk_format", "value": "raw"},
            {"op": "replace", "path": "/container_format", "value": "bare"},
            {"op": "add", "path": "/hw_qemu_guest_agent", "value": "yes"},
            {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
            {"op": "replace", "path": "/protected", "value": true},
            {"op": "replace", "path": "/tags", "value": ["x"]},
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let img = r.json();
    assert_eq!(img["name"], "after");
    assert_eq!(img["min_ram"], 64);
    assert_eq!(img["min_disk"], 2);
    assert_eq!(img["disk_format"], "raw");
    assert_eq!(img["container_format"], "bare");
    assert_eq!(img["hw_qemu_guest_agent"], "yes");
    assert_eq!(img["os_distro"], "ubuntu");
    assert_eq!(img["protected"], true);
    assert_eq!(img["tags"], json!(["x"]));

    // Protected images cannot be deleted.
    let uri = format!("/image/v2/images/{id}");
    assert_eq!(call(&env, "DELETE", &uri, Some(&env.demo), None, vec![]).await.status, StatusCode::FORBIDDEN);

    let r = patch(
        &env,
        &id,
        &env.demo,
        json!([{"op": "remove", "path": "/os_distro"}, {"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("os_distro").is_none());

    let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/nonexistent", "value": "v"}])).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = patch(&env, &id, &env.demo, json!([{"op": "remove", "path": "/nonexistent"}])).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/status", "value": "active"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&env, &id, &env.demo, json!([{"op": "remove", "path": "/name"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&env, &id, &env.demo, json!([{"op": "move", "path": "/name"}])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = patch(&env, &id, &env.demo, json!([{"op": "replace", "path": "/disk_format", "value": "floppy"}])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&env, "PATCH", &uri, Some(&env.demo), Some("application/json"), b"[]".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A failed patch changes nothing.
    let r = patch(
        &env,
        &id,
        &env.demo,
        json!([{"op": "replace", "path": "/name", "value": "zzz"}, {"op": "replace", "path": "/min_ram", "value": -5}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&env, &uri, &env.demo).await.json()["name"], "after");

    // Tags by URL.
    let r = call(&env, "PUT", &format!("{uri}/tags/blue"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&env, &uri, &env.demo).await.json()["tags"], json!(["x", "blue"]));
    let r = call(&env, "DELETE", &format!("{uri}/tags/x"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&env, "DELETE", &format!("{uri}/tags/x"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&env, "/image/v2/images?tag=blue", &env.demo).await;
    assert_eq!(r.json()["images"].as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn image_list_filters_and_pagination() {
    let env = env().await;
    for i in 0..5 {
        let disk = if i % 2 == 0 { "qcow2" } else { "raw" };
        create(&env, &env.demo, json!({"name": format!("img{i}"), "disk_format": disk, "container_format": "bare", "os_type": if i == 3 { "windows" } else { "linux" }})).await;
    }
    let r = get(&env, "/image/v2/images?name=img2", &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["images"].as_array().expect("list").len(), 1);
    assert_eq!(v["schema"], "/v2/schemas/images");
    assert!(v["first"].as_str().expect("first").starts_with("/v2/images"));
    assert!(v.get("next").is_none());
    let r = get(&env, "/image/v2/images?disk_format=raw", &env.demo).await;
    assert_eq!(r.json()["images"].as_array().expect("list").len(), 2);
    let r = get(&env, "/image/v2/images?os_type=windows", &env.demo).await;
    assert_eq!(r.json()["images"][0]["name"], "img3");
    let r = get(&env, "/image/v2/images?name=in:img1,img4", &env.demo).await;
    assert_eq!(r.json()["images"].as_array().expect("list").len(), 2);
    let r = get(&env, "/image/v2/images?status=active", &env.demo).await;
    assert!(r.json()["images"].as_array().expect("list").is_empty());

    // Pages of two, by name, following `next`.
    let mut names = Vec::new();
    let mut uri = "/image/v2/images?limit=2&sort_key=name&sort_dir=asc".to_string();
    let mut pages = 0;
    loop {
        let v = get(&env, &uri, &env.demo).await.json();
        pages += 1;
        for i in v["images"].as_array().expect("list") {
            names.push(i["name"].as_str().expect("name").to_string());
        }
        match v["next"].as_str() {
            Some(next) => {
                assert!(next.contains("marker="));
                uri = format!("/image{next}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, vec!["img0", "img1", "img2", "img3", "img4"]);
    let r = get(&env, "/image/v2/images?sort=name:desc&limit=1", &env.demo).await;
    assert_eq!(r.json()["images"][0]["name"], "img4");

    for bad in ["limit=-1", "limit=x", "marker=nope", "sort_key=bogus", "sort_dir=up", "visibility=x"] {
        let r = get(&env, &format!("/image/v2/images?{bad}"), &env.demo).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn image_seed_is_idempotent() {
    let env = env().await;
    let project = env.state.identity.bootstrap_user("admin", "pw", "admin", "admin", false).await.expect("project");
    let data = b"not really a qcow2".to_vec();
    let id = env.state.images.seed("cirros", &project, &data).await.expect("seed").to_string();
    let again = env.state.images.seed("cirros", &project, &data).await.expect("seed again").to_string();
    assert_eq!(id, again);
    let r = get(&env, "/image/v2/images?name=cirros", &env.demo).await;
    let images = r.json()["images"].as_array().expect("list").clone();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img["id"], id.as_str());
    assert_eq!(img["status"], "active");
    assert_eq!(img["visibility"], "public");
    assert_eq!(img["disk_format"], "qcow2");
    assert_eq!(img["container_format"], "bare");
    assert_eq!(img["size"], data.len());
    assert_eq!(img["checksum"], hex::encode(Md5::digest(&data)));
    let r = get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await;
    assert_eq!(r.body.as_ref(), data.as_slice());

    // A private image of the same name elsewhere does not count as the seed.
    let other = create(&env, &env.demo, json!({"name": "ubuntu", "visibility": "private"})).await;
    let seeded = env.state.images.seed("ubuntu", &project, b"u").await.expect("seed ubuntu").to_string();
    assert_ne!(seeded, other);
}

#[tokio::test]
async fn image_schemas_are_served() {
    let env = env().await;
    let r = get(&env, "/image/v2/schemas/image", &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["name"], "image");
    assert_eq!(v["additionalProperties"]["type"], "string");
    assert!(v["properties"]["disk_format"]["enum"].as_array().expect("enum").contains(&json!("qcow2")));
    let r = get(&env, "/image/v2/schemas/images", &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["properties"]["images"]["items"]["name"], "image");
}

/// Issue 11, hole 1: Glance inspects a finished upload; bytes that are not a
/// safe image of the declared disk_format are refused with a 400 and the
/// image stays `queued` (no data kept), so a correct upload can follow.
#[tokio::test]
async fn upload_failing_format_inspection_is_refused_and_stays_queued() {
    let env = env().await;
    let id = create(&env, &env.demo, json!({"name": "v", "disk_format": "vmdk", "container_format": "bare"})).await;
    let file_uri = format!("/image/v2/images/{id}/file");
    let desc = b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"../admin.password\" 0\n";
    let r = call(&env, "PUT", &file_uri, Some(&env.demo), Some("application/octet-stream"), desc.to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let msg = r.json().to_string();
    assert!(msg.contains("vmdk") && !msg.contains("admin.password"), "{msg}");
    let img = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await.json();
    assert_eq!(img["status"], "queued");
    assert_eq!(img["size"], Value::Null);
    let r = get(&env, &file_uri, &env.demo).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Raw bytes under a raw image are fine; qcow2 magic under raw is not.
    let raw = create(&env, &env.demo, json!({"name": "r", "disk_format": "raw", "container_format": "bare"})).await;
    let mut q = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    q.resize(4096, 0);
    let raw_uri = format!("/image/v2/images/{raw}/file");
    let r = call(&env, "PUT", &raw_uri, Some(&env.demo), Some("application/octet-stream"), q).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = call(&env, "PUT", &raw_uri, Some(&env.demo), Some("application/octet-stream"), vec![0u8; 4096]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

/// An active raw image of `token`'s project holding `data`.
async fn active_image(env: &Env, token: &str, data: &[u8]) -> String {
    let id = create(env, token, json!({"name": "act", "disk_format": "raw", "container_format": "bare"})).await;
    let uri = format!("/image/v2/images/{id}/file");
    let r = call(env, "PUT", &uri, Some(token), Some("application/octet-stream"), data.to_vec()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    id
}

/// Glance's image actions: the owner (or an admin) deactivates an active
/// image (204, status `deactivated`), a non-admin's download is then 403
/// while an admin's still works, and reactivate brings it back; a queued
/// image can be neither (403), readers may not, other projects get a 404.
#[tokio::test]
async fn image_deactivate_and_reactivate() {
    let env = env().await;
    let data = vec![7u8; 4096];
    let id = active_image(&env, &env.demo, &data).await;
    let act = |what: &str| format!("/image/v2/images/{id}/actions/{what}");
    let file = format!("/image/v2/images/{id}/file");
    assert_eq!(
        call(&env, "POST", &act("deactivate"), Some(&env.viewer), None, vec![]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&env, "POST", &act("deactivate"), Some(&env.alt), None, vec![]).await.status,
        StatusCode::NOT_FOUND
    );
    let r = call(&env, "POST", &act("deactivate"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // Idempotent, as Glance.
    assert_eq!(
        call(&env, "POST", &act("deactivate"), Some(&env.demo), None, vec![]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.viewer).await.json()["status"], "deactivated");
    let r = get(&env, &file, &env.demo).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["forbidden"]["code"], 403);
    let r = get(&env, &file, &env.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), data.as_slice());
    let r = call(&env, "POST", &act("reactivate"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.demo).await.json()["status"], "active");
    assert_eq!(get(&env, &file, &env.demo).await.body.as_ref(), data.as_slice());

    let queued = create(&env, &env.demo, json!({"name": "q"})).await;
    for what in ["deactivate", "reactivate"] {
        let uri = format!("/image/v2/images/{queued}/actions/{what}");
        assert_eq!(
            call(&env, "POST", &uri, Some(&env.demo), None, vec![]).await.status,
            StatusCode::FORBIDDEN,
            "{what}"
        );
    }
    let uri = format!("/image/v2/images/{}/actions/deactivate", uuid::Uuid::new_v4());
    assert_eq!(call(&env, "POST", &uri, Some(&env.admin), None, vec![]).await.status, StatusCode::NOT_FOUND);
}

/// Cinder refuses a volume from an image that is not active (400), so a
/// deactivated image cannot seed a volume.
#[tokio::test]
async fn volume_from_deactivated_image_is_refused() {
    let env = env().await;
    let id = active_image(&env, &env.demo, &[0u8; 4096]).await;
    let uri = format!("/image/v2/images/{id}/actions/deactivate");
    assert_eq!(call(&env, "POST", &uri, Some(&env.demo), None, vec![]).await.status, StatusCode::NO_CONTENT);
    let r = post_json(&env, "/volume/v3/volumes", &env.demo, json!({"volume": {"size": 1, "imageRef": id}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
}

/// Glance's draft-4 patch form (`application/openstack-images-v2.0-json-patch`):
/// the operation is the key, its value the path.
#[tokio::test]
async fn image_legacy_json_patch_form() {
    let env = env().await;
    let id = create(&env, &env.demo, json!({"name": "old", "protected": true})).await;
    let uri = format!("/image/v2/images/{id}");
    let legacy = "application/openstack-images-v2.0-json-patch";
    let body = json!([{"replace": "/name", "value": "new"}, {"add": "/k", "value": "v"}, {"replace": "/protected", "value": false}]);
    let r = call(&env, "PATCH", &uri, Some(&env.demo), Some(legacy), body.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!((v["name"].as_str(), v["k"].as_str(), v["protected"].as_bool()), (Some("new"), Some("v"), Some(false)));
    let body = json!([{"remove": "/k"}]);
    let r = call(&env, "PATCH", &uri, Some(&env.demo), Some(legacy), body.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.json().get("k").is_none());
    for bad in [
        json!([{"replace": "/name"}]),
        json!([{"replace": "/name", "add": "/x", "value": "v"}]),
        json!([{"value": "v"}]),
    ] {
        let r = call(&env, "PATCH", &uri, Some(&env.demo), Some(legacy), bad.to_string().into_bytes()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Glance lets an admin hand an image to another project (`replace
/// /owner`); a member may not give its image away.
#[tokio::test]
async fn image_owner_update_by_admin_only() {
    let env = env().await;
    let id = create(&env, &env.admin, json!({"name": "o", "owner": "p1"})).await;
    let r = patch(&env, &id, &env.admin, json!([{"op": "replace", "path": "/owner", "value": "p2"}])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.admin).await.json()["owner"], "p2");
    let mine = create(&env, &env.demo, json!({"name": "m"})).await;
    let r = patch(&env, &mine, &env.demo, json!([{"op": "replace", "path": "/owner", "value": "p2"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Glance reserves the `os_glance_` namespace: a create or an update naming
/// such a property is a 403; and a protected image cannot be deleted (403).
#[tokio::test]
async fn image_reserved_properties_and_protected_delete() {
    let env = env().await;
    let r = post_json(&env, "/image/v2/images", &env.demo, json!({"name": "r", "os_glance_foo": "bar"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let id = create(&env, &env.demo, json!({"name": "r", "protected": true})).await;
    let r = patch(&env, &id, &env.demo, json!([{"op": "add", "path": "/os_glance_foo", "value": "bar"}])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&env, "DELETE", &format!("/image/v2/images/{id}"), Some(&env.demo), None, vec![]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.demo).await.status, StatusCode::OK);
}

/// The project id behind a token (the owner of an image it creates).
async fn project_of(env: &Env, token: &str) -> String {
    let r = post_json(env, "/image/v2/images", token, json!({"name": "whoami"})).await;
    r.json()["owner"].as_str().expect("owner").to_string()
}

fn listed_ids(r: &Resp) -> Vec<String> {
    r.json()["images"].as_array().expect("list").iter().filter_map(|i| i["id"].as_str().map(str::to_string)).collect()
}

/// Glance's image sharing: the owner offers a shared image to a project
/// (pending), only that project answers (accepted/rejected; the owner gets
/// 403, a bad status 400); the consumer lists the image only once it has
/// accepted (or when it asks by `member_status`), while any member may show
/// it by id; the owner withdraws it (204) and it is a 404 again.
#[tokio::test]
async fn image_members_share_accept_reject_remove() {
    let env = env().await;
    let alt = project_of(&env, &env.alt).await;
    let id = active_image(&env, &env.demo, &[1u8; 1024]).await;
    let members = format!("/image/v2/images/{id}/members");
    let member = format!("{members}/{alt}");
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.alt).await.status, StatusCode::NOT_FOUND);
    // Only the owner adds members; readers and other projects may not.
    assert_eq!(post_json(&env, &members, &env.viewer, json!({"member": alt})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post_json(&env, &members, &env.alt, json!({"member": alt})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(post_json(&env, &members, &env.demo, json!({})).await.status, StatusCode::BAD_REQUEST);
    let r = post_json(&env, &members, &env.demo, json!({"member": alt})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let m = r.json();
    assert_eq!(
        (m["image_id"].as_str(), m["member_id"].as_str(), m["status"].as_str()),
        (Some(id.as_str()), Some(alt.as_str()), Some("pending"))
    );
    assert_eq!(m["schema"], "/v2/schemas/member");
    assert!(m["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(post_json(&env, &members, &env.demo, json!({"member": alt})).await.status, StatusCode::CONFLICT);

    // Pending: visible by id, not in the default list; listed on request.
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.alt).await.status, StatusCode::OK);
    assert!(!listed_ids(&get(&env, "/image/v2/images", &env.alt).await).contains(&id));
    let pending = listed_ids(&get(&env, "/image/v2/images?member_status=pending&visibility=shared", &env.alt).await);
    assert_eq!(pending, vec![id.clone()]);
    assert_eq!(get(&env, "/image/v2/images?member_status=bogus", &env.alt).await.status, StatusCode::BAD_REQUEST);

    let put = |token: &str, status: &str| {
        let (uri, token, body) = (member.clone(), token.to_string(), json!({"status": status}).to_string());
        let env = &env;
        async move { call(env, "PUT", &uri, Some(&token), Some("application/json"), body.into_bytes()).await }
    };
    assert_eq!(put(&env.demo, "accepted").await.status, StatusCode::FORBIDDEN, "the owner cannot accept");
    assert_eq!(put(&env.alt, "notavalidstatus").await.status, StatusCode::BAD_REQUEST);
    let r = put(&env.alt, "accepted").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "accepted");
    assert!(listed_ids(&get(&env, "/image/v2/images", &env.alt).await).contains(&id));
    let r = get(&env, &members, &env.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["members"].as_array().expect("members").len(), 1);
    assert_eq!(r.json()["schema"], "/v2/schemas/members");
    assert_eq!(get(&env, &member, &env.alt).await.json()["status"], "accepted");
    assert_eq!(get(&env, &format!("{members}/someone-else"), &env.demo).await.status, StatusCode::NOT_FOUND);
    // A member may boot it: its data is readable.
    assert_eq!(get(&env, &format!("/image/v2/images/{id}/file"), &env.alt).await.status, StatusCode::OK);

    assert_eq!(put(&env.alt, "rejected").await.json()["status"], "rejected");
    assert!(!listed_ids(&get(&env, "/image/v2/images", &env.alt).await).contains(&id));
    assert!(listed_ids(&get(&env, "/image/v2/images?member_status=all", &env.alt).await).contains(&id));

    // Only the owner withdraws it.
    assert_eq!(call(&env, "DELETE", &member, Some(&env.alt), None, vec![]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(call(&env, "DELETE", &member, Some(&env.demo), None, vec![]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(call(&env, "DELETE", &member, Some(&env.demo), None, vec![]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.alt).await.status, StatusCode::NOT_FOUND);

    // A private image has no members, and another project's stays a 404.
    let private = create(&env, &env.demo, json!({"name": "p", "visibility": "private"})).await;
    let uri = format!("/image/v2/images/{private}/members");
    assert_eq!(post_json(&env, &uri, &env.demo, json!({"member": alt})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&env, &uri, &env.alt).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, &format!("/image/v2/images/{private}"), &env.alt).await.status, StatusCode::NOT_FOUND);
}

/// Glance serves the member schemas (`/v2/schemas/member`, `/members`).
#[tokio::test]
async fn image_member_schemas_are_served() {
    let env = env().await;
    let r = get(&env, "/image/v2/schemas/member", &env.demo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["name"], "member");
    assert_eq!(r.json()["properties"]["status"]["enum"], json!(["pending", "accepted", "rejected"]));
    let r = get(&env, "/image/v2/schemas/members", &env.demo).await;
    assert_eq!(r.json()["name"], "members");
    assert_eq!(r.json()["properties"]["members"]["items"]["name"], "member");
}

/// Glance's interoperable import, `glance-direct`: `/v2/info/import` offers
/// it (and only it), stage (204, `uploading`) then import (202, `active`,
/// one `success` task carrying the request id); staged bytes that fail the
/// format inspection do not become the image (back to `queued`, the task a
/// `failure`); importing an unstaged image is a 409, an unknown method 400.
#[tokio::test]
async fn image_glance_direct_import() {
    let env = env().await;
    let r = get(&env, "/image/v2/info/import", &env.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["import-methods"]["value"], json!(["glance-direct"]));
    let id = create(&env, &env.demo, json!({"name": "i", "disk_format": "raw", "container_format": "bare"})).await;
    let import = format!("/image/v2/images/{id}/import");
    let direct = json!({"method": {"name": "glance-direct"}, "all_stores": true});
    assert_eq!(post_json(&env, &import, &env.demo, direct.clone()).await.status, StatusCode::CONFLICT);
    let stage = format!("/image/v2/images/{id}/stage");
    let data = vec![3u8; 8192];
    assert_eq!(
        call(&env, "PUT", &stage, Some(&env.viewer), Some("application/octet-stream"), data.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let r = call(&env, "PUT", &stage, Some(&env.demo), Some("application/octet-stream"), data.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let img = get(&env, &format!("/image/v2/images/{id}"), &env.viewer).await.json();
    assert_eq!(img["status"], "uploading");
    // Staged bytes are not the image's data yet.
    assert_eq!(get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await.status, StatusCode::NO_CONTENT);
    let web = json!({"method": {"name": "web-download", "uri": "http://127.0.0.1/x"}});
    assert_eq!(post_json(&env, &import, &env.demo, web).await.status, StatusCode::BAD_REQUEST);
    let r = post_json(&env, &import, &env.demo, direct.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let img = get(&env, &format!("/image/v2/images/{id}"), &env.demo).await.json();
    assert_eq!((img["status"].as_str(), img["size"].as_u64()), (Some("active"), Some(8192)));
    assert!(img.as_object().expect("image").keys().all(|k| !k.starts_with("stratus:")));
    assert_eq!(get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await.body.as_ref(), data.as_slice());
    let tasks = get(&env, &format!("/image/v2/images/{id}/tasks"), &env.viewer).await.json();
    let task = &tasks["tasks"][0];
    assert_eq!(tasks["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(
        (task["status"].as_str(), task["input"]["import_req"]["method"]["name"].as_str()),
        (Some("success"), Some("glance-direct"))
    );
    assert!(task["request_id"].as_str().is_some_and(|r| r.starts_with("req-")), "{task}");

    // Hostile staged bytes: a VMDK descriptor naming a host file.
    let bad = create(&env, &env.demo, json!({"name": "v", "disk_format": "vmdk", "container_format": "bare"})).await;
    let desc =
        b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"/etc/passwd\" 0\n".to_vec();
    let r = call(
        &env,
        "PUT",
        &format!("/image/v2/images/{bad}/stage"),
        Some(&env.demo),
        Some("application/octet-stream"),
        desc,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = post_json(&env, &format!("/image/v2/images/{bad}/import"), &env.demo, direct).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let img = get(&env, &format!("/image/v2/images/{bad}"), &env.demo).await.json();
    assert_eq!((img["status"].as_str(), &img["size"]), (Some("queued"), &Value::Null));
    let task = get(&env, &format!("/image/v2/images/{bad}/tasks"), &env.demo).await.json()["tasks"][0].clone();
    assert_eq!(task["status"], "failure");
    assert!(task["message"].as_str().is_some_and(|m| m.contains("vmdk") && !m.contains("passwd")), "{task}");
    assert!(!env.state.images.image_dir().join("staging").join(&bad).exists());
}

// ------------------------------------------------------------ tasks and web-download

/// A tiny HTTP/1.0 server on 127.0.0.1 answering `body(path)` with 200.
async fn serve_files(body: fn(&str) -> Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
                let data = body(line.split(' ').nth(1).unwrap_or("/"));
                let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", data.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&data).await;
            });
        }
    });
    port
}

fn served(path: &str) -> Vec<u8> {
    if path == "/bad.vmdk" {
        b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"/etc/passwd\" 0\n".to_vec()
    } else {
        vec![5u8; 8192]
    }
}

/// The env with web downloads enabled through `guard`.
fn with_guard(mut env: Env, guard: stratus_image::webfetch::Guard) -> Env {
    env.state.images = std::sync::Arc::new((*env.state.images).clone().with_web_download(guard));
    env
}

/// Poll `uri` until `done(json)` (the import runs after the answer).
async fn wait_for(env: &Env, uri: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let v = get(env, uri, token).await.json();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{uri} never reached the expected state");
}

/// Glance refuses a URL it will not fetch with 400 at task create / import
/// (bug 2152110): a loopback URL is refused by default, with a message that
/// does not echo the address, and so is an unresolvable host.
#[tokio::test]
async fn web_download_refuses_internal_urls_by_default() {
    let port = serve_files(served).await;
    let open_ports = stratus_image::webfetch::Guard { allowed_ports: vec![], ..Default::default() };
    let env = with_guard(env().await, open_ports);
    let url = format!("http://127.0.0.1:{port}/cirros.img");
    let r = get(&env, "/image/v2/info/import", &env.viewer).await;
    assert_eq!(r.json()["import-methods"]["value"], json!(["glance-direct", "web-download"]));
    let task = |from: &str| json!({"type": "import", "input": {"import_from": from, "import_from_format": "raw", "image_properties": {"name": "t", "disk_format": "raw", "container_format": "bare"}}});
    // Glance's tasks_api_access: admin only.
    assert_eq!(post_json(&env, "/image/v2/tasks", &env.demo, task(&url)).await.status, StatusCode::FORBIDDEN);
    for from in [
        url.as_str(),
        "http://[::ffff:127.0.0.1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://dummy-img-file.invalid/x.qcow2",
        "file:///etc/passwd",
    ] {
        let r = post_json(&env, "/image/v2/tasks", &env.admin, task(from)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{from}");
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains("127.0.0.1") && !text.contains("169.254"), "{text}");
    }
    let id = create(&env, &env.demo, json!({"name": "w", "disk_format": "raw", "container_format": "bare"})).await;
    let web = json!({"method": {"name": "web-download", "uri": url}});
    let r = post_json(&env, &format!("/image/v2/images/{id}/import"), &env.demo, web).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&env, &format!("/image/v2/images/{id}"), &env.demo).await.json()["status"], "queued");
    // Glance's default filters: http(s) on ports 80/443 only.
    let env = with_guard(env, stratus_image::webfetch::Guard::default());
    let r = post_json(&env, "/image/v2/tasks", &env.admin, task(&url)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(get(&env, "/image/v2/tasks", &env.admin).await.json()["tasks"].as_array().is_some_and(|t| t.is_empty()));
}

/// With 127.0.0.1 allowlisted by the operator, Glance's web-download import
/// and `import` task fetch the image, inspect it like an upload (a hostile
/// VMDK is refused: the task fails and its image goes), and the tasks API
/// shows, lists (filters, paging) and links the tasks.
#[tokio::test]
async fn web_download_and_import_task_from_an_allowlisted_server() {
    let port = serve_files(served).await;
    let guard = stratus_image::webfetch::Guard {
        allowed_ports: vec![],
        allowed_networks: vec!["127.0.0.1/32".parse().expect("network")],
        ..Default::default()
    };
    let env = with_guard(env().await, guard);
    let base = format!("http://127.0.0.1:{port}");
    // web-download: queued -> importing -> active, one api_image_import task.
    let id = create(&env, &env.demo, json!({"name": "w", "disk_format": "raw", "container_format": "bare"})).await;
    let web = json!({"method": {"name": "web-download", "uri": format!("{base}/cirros.img")}});
    let r = post_json(&env, &format!("/image/v2/images/{id}/import"), &env.demo, web.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let img = wait_for(&env, &format!("/image/v2/images/{id}"), &env.demo, |v| v["status"] == "active").await;
    assert_eq!(img["size"], 8192);
    assert_eq!(
        get(&env, &format!("/image/v2/images/{id}/file"), &env.demo).await.body.as_ref(),
        served("/").as_slice()
    );
    // The task ends just after the image goes active (Glance's import flow
    // records the task's success as its last step), so wait for it too.
    let tasks =
        wait_for(&env, &format!("/image/v2/images/{id}/tasks"), &env.demo, |v| v["tasks"][0]["status"] != "processing")
            .await;
    assert_eq!(tasks["tasks"][0]["status"], "success");
    assert_eq!(tasks["tasks"][0]["input"]["import_req"]["method"]["name"], "web-download");
    // An active image cannot be imported into again (Glance: 409).
    let r = post_json(&env, &format!("/image/v2/images/{id}/import"), &env.demo, web).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // POST /v2/tasks: 201 pending with a Location, then success with the image.
    let task = |path: &str, fmt: &str| json!({"type": "import", "input": {"import_from": format!("{base}{path}"), "import_from_format": fmt, "image_properties": {"name": "t", "disk_format": fmt, "container_format": "bare"}}});
    let r = post_json(&env, "/image/v2/tasks", &env.admin, task("/cirros.img", "raw")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created = r.json();
    let tid = created["id"].as_str().expect("id").to_string();
    assert_eq!(r.headers["location"], format!("/v2/tasks/{tid}").as_str());
    assert_eq!((created["type"].as_str(), created["status"].as_str()), (Some("import"), Some("pending")));
    assert_eq!(created["input"]["import_from_format"], "raw");
    let done = wait_for(&env, &format!("/image/v2/tasks/{tid}"), &env.admin, |v| v["status"] == "success").await;
    assert!(done["expires_at"].is_string() && done["self"] == format!("/v2/tasks/{tid}").as_str(), "{done}");
    let made = done["result"]["image_id"].as_str().expect("image").to_string();
    let img = get(&env, &format!("/image/v2/images/{made}"), &env.admin).await.json();
    assert_eq!((img["status"].as_str(), img["disk_format"].as_str()), (Some("active"), Some("raw")));

    // Hostile bytes: the inspection refuses them, the task fails, the image goes.
    let r = post_json(&env, "/image/v2/tasks", &env.admin, task("/bad.vmdk", "vmdk")).await;
    let bad = r.json()["id"].as_str().expect("id").to_string();
    let failed = wait_for(&env, &format!("/image/v2/tasks/{bad}"), &env.admin, |v| v["status"] == "failure").await;
    assert!(failed["message"].as_str().is_some_and(|m| m.contains("vmdk") && !m.contains("passwd")), "{failed}");
    let bad_image = failed["image_id"].as_str().expect("image id");
    assert_eq!(get(&env, &format!("/image/v2/images/{bad_image}"), &env.admin).await.status, StatusCode::NOT_FOUND);

    // The list: stubs without details, Glance's filters, sort and paging.
    let list = get(&env, "/image/v2/tasks", &env.admin).await.json();
    let rows = list["tasks"].as_array().expect("tasks");
    assert_eq!(rows.len(), 3, "{list}");
    assert!(rows.iter().all(|t| t.get("input").is_none() && t.get("result").is_none()));
    assert_eq!((list["first"].as_str(), list["schema"].as_str()), (Some("/v2/tasks"), Some("/v2/schemas/tasks")));
    let ok = get(&env, "/image/v2/tasks?status=failure", &env.admin).await.json();
    assert_eq!(ok["tasks"].as_array().map(Vec::len), Some(1));
    let page = get(&env, "/image/v2/tasks?limit=1&type=import", &env.admin).await.json();
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1));
    let next = page["next"].as_str().expect("next");
    let page2 = get(&env, &format!("/image{next}"), &env.admin).await.json();
    assert_eq!(page2["tasks"].as_array().map(Vec::len), Some(1));
    assert_ne!(page2["tasks"][0]["id"], page["tasks"][0]["id"]);
    for bad_q in ["status=done", "sort_dir=up", "sort_key=owner", "limit=-1", "marker=nope"] {
        assert_eq!(
            get(&env, &format!("/image/v2/tasks?{bad_q}"), &env.admin).await.status,
            StatusCode::BAD_REQUEST,
            "{bad_q}"
        );
    }
    assert_eq!(
        get(&env, "/image/v2/tasks/00000000-0000-4000-8000-000000000000", &env.admin).await.status,
        StatusCode::NOT_FOUND
    );
    let schema = call(&env, "GET", "/image/v2/schemas/task", None, None, vec![]).await.json();
    assert_eq!(schema["name"], "task");
    assert!(schema["properties"]["input"].is_object());
    let schemas = call(&env, "GET", "/image/v2/schemas/tasks", None, None, vec![]).await.json();
    assert!(schemas["properties"]["tasks"]["items"]["properties"].get("input").is_none());
}

// ------------------------------------------------------------ metadefs

async fn put_json(env: &Env, uri: &str, token: &str, body: Value) -> Resp {
    call(env, "PUT", uri, Some(token), Some("application/json"), body.to_string().into_bytes()).await
}

async fn delete(env: &Env, uri: &str, token: &str) -> Resp {
    call(env, "DELETE", uri, Some(token), None, vec![]).await
}

const MD: &str = "/image/v2/metadefs/namespaces";

/// Glance (api-ref "Metadata definition namespaces"): admins create a
/// namespace (201) with its content; show lists it inline; a protected
/// namespace cannot be deleted (403) until updated unprotected; a rename
/// keeps the content; delete is 204 and then 404.
#[tokio::test]
async fn metadefs_namespace_lifecycle() {
    let env = env().await;
    let body = json!({
        "namespace": "OS::Test", "display_name": "Test", "description": "d", "visibility": "public", "protected": true,
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "test_"}],
        "properties": {"speed": {"title": "Speed", "type": "integer", "minimum": 1}},
        "objects": [{"name": "Obj", "required": ["speed"], "properties": {"x": {"title": "X", "type": "string"}}}],
        "tags": [{"name": "t1"}]
    });
    let r = post_json(&env, MD, &env.admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let v = r.json();
    assert_eq!(
        (v["namespace"].as_str(), v["visibility"].as_str(), v["protected"].as_bool()),
        (Some("OS::Test"), Some("public"), Some(true))
    );
    assert_eq!(v["self"], "/v2/metadefs/namespaces/OS::Test");
    assert_eq!(v["schema"], "/v2/schemas/metadefs/namespace");
    assert_eq!(post_json(&env, MD, &env.admin, body).await.status, StatusCode::CONFLICT);
    let v = get(&env, &format!("{MD}/OS::Test"), &env.alt).await.json();
    assert_eq!(v["properties"]["speed"]["type"], "integer");
    assert_eq!(v["objects"][0]["name"], "Obj");
    assert_eq!(v["tags"][0]["name"], "t1");
    assert_eq!(v["resource_type_associations"][0]["prefix"], "test_");
    let listed = get(&env, MD, &env.demo).await.json();
    assert_eq!(listed["namespaces"][0]["namespace"], "OS::Test");
    assert_eq!(listed["first"], "/v2/metadefs/namespaces");
    let typed = get(&env, &format!("{MD}?resource_types=OS::Nova::Flavor"), &env.demo).await.json();
    assert!(typed["namespaces"].as_array().expect("list").is_empty());
    assert_eq!(delete(&env, &format!("{MD}/OS::Test"), &env.admin).await.status, StatusCode::FORBIDDEN);
    assert_eq!(delete(&env, &format!("{MD}/OS::Test/tags/t1"), &env.admin).await.status, StatusCode::FORBIDDEN);
    let upd = json!({"namespace": "OS::Renamed", "visibility": "private", "protected": false});
    let r = put_json(&env, &format!("{MD}/OS::Test"), &env.admin, upd).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.json()["visibility"].as_str(), r.json()["protected"].as_bool()), (Some("private"), Some(false)));
    assert_eq!(get(&env, &format!("{MD}/OS::Test"), &env.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, &format!("{MD}/OS::Renamed/objects/Obj"), &env.admin).await.status, StatusCode::OK);
    assert_eq!(delete(&env, &format!("{MD}/OS::Renamed"), &env.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&env, &format!("{MD}/OS::Renamed"), &env.admin).await.status, StatusCode::NOT_FOUND);
}

/// Glance's metadef policy: only admins write (403); a private namespace is
/// seen by its owner project only (another project gets 404, also on writes).
#[tokio::test]
async fn metadefs_policy_admin_writes_private_is_owner_only() {
    let env = env().await;
    let r = post_json(&env, MD, &env.demo, json!({"namespace": "mine"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Owned by the admin's project and private: nobody else sees it.
    assert_eq!(post_json(&env, MD, &env.admin, json!({"namespace": "priv"})).await.status, StatusCode::CREATED);
    assert_eq!(get(&env, &format!("{MD}/priv"), &env.demo).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, &format!("{MD}/priv/tags"), &env.viewer).await.status, StatusCode::NOT_FOUND);
    let r = put_json(&env, &format!("{MD}/priv"), &env.demo, json!({"namespace": "priv"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let names = |v: Value| -> Vec<String> {
        v["namespaces"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|n| n["namespace"].as_str().map(str::to_string))
            .collect()
    };
    assert!(names(get(&env, MD, &env.demo).await.json()).is_empty());
    assert_eq!(names(get(&env, MD, &env.admin).await.json()), ["priv"]);
    // Made public: readers see it but still may not change it.
    let r =
        put_json(&env, &format!("{MD}/priv"), &env.admin, json!({"namespace": "priv", "visibility": "public"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&env, &format!("{MD}/priv"), &env.viewer).await.status, StatusCode::OK);
    let r = post_json(&env, &format!("{MD}/priv/objects"), &env.demo, json!({"name": "o"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(delete(&env, &format!("{MD}/priv"), &env.demo).await.status, StatusCode::FORBIDDEN);
}

/// Glance (api-ref "objects", "properties", "tags", "resource type
/// associations"): create 201, show, rename by PUT, delete 204, list;
/// `POST /tags` replaces the tag list; bad bodies are 400, duplicates 409.
#[tokio::test]
async fn metadefs_objects_properties_tags_associations() {
    let env = env().await;
    assert_eq!(
        post_json(&env, MD, &env.admin, json!({"namespace": "n", "visibility": "public"})).await.status,
        StatusCode::CREATED
    );
    let ns = format!("{MD}/n");
    // Objects.
    let r = post_json(&env, &format!("{ns}/objects"), &env.admin, json!({"name": "o1", "description": "d"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["self"], "/v2/metadefs/namespaces/n/objects/o1");
    assert_eq!(
        post_json(&env, &format!("{ns}/objects"), &env.admin, json!({"name": "o1"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post_json(&env, &format!("{ns}/objects"), &env.admin, json!({"nom": "x"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let stamped = json!({"name": "o9", "created_at": "2026-01-01T00:00:00Z"});
    assert_eq!(post_json(&env, &format!("{ns}/objects"), &env.admin, stamped).await.status, StatusCode::FORBIDDEN);
    let r = put_json(&env, &format!("{ns}/objects/o1"), &env.admin, json!({"name": "o2"})).await;
    assert_eq!(r.json()["name"], "o2");
    assert_eq!(get(&env, &format!("{ns}/objects/o1"), &env.demo).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, &format!("{ns}/objects"), &env.demo).await.json()["objects"][0]["name"], "o2");
    assert_eq!(delete(&env, &format!("{ns}/objects/o2"), &env.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(delete(&env, &format!("{ns}/objects/o2"), &env.admin).await.status, StatusCode::NOT_FOUND);
    // Properties: a map by name; `type` must be a JSON-schema type.
    let prop = json!({"name": "OS::Glance::Image", "title": "T", "type": "string", "enum": ["a", "b"]});
    let r = post_json(&env, &format!("{ns}/properties"), &env.admin, prop).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["title"], "T");
    let bad = json!({"name": "q", "title": "T", "type": "text"});
    assert_eq!(post_json(&env, &format!("{ns}/properties"), &env.admin, bad).await.status, StatusCode::BAD_REQUEST);
    let r = get(&env, &format!("{ns}/properties/OS::Glance::Image"), &env.viewer).await;
    assert_eq!((r.json()["name"].as_str(), r.json()["enum"][1].as_str()), (Some("OS::Glance::Image"), Some("b")));
    let upd = json!({"name": "OS::Glance::Image", "title": "U", "type": "string"});
    assert_eq!(
        put_json(&env, &format!("{ns}/properties/OS::Glance::Image"), &env.admin, upd).await.json()["title"],
        "U"
    );
    assert_eq!(
        get(&env, &format!("{ns}/properties"), &env.demo).await.json()["properties"]["OS::Glance::Image"]["title"],
        "U"
    );
    assert_eq!(delete(&env, &format!("{ns}/properties"), &env.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&env, &format!("{ns}/properties"), &env.demo).await.json()["properties"], json!({}));
    // Tags.
    let tags = json!({"tags": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(post_json(&env, &format!("{ns}/tags"), &env.admin, tags).await.status, StatusCode::CREATED);
    assert_eq!(
        call(&env, "POST", &format!("{ns}/tags/c"), Some(&env.admin), None, vec![]).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&env, "POST", &format!("{ns}/tags/c"), Some(&env.admin), None, vec![]).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(get(&env, &format!("{ns}/tags"), &env.demo).await.json()["tags"].as_array().map(Vec::len), Some(3));
    assert_eq!(put_json(&env, &format!("{ns}/tags/c"), &env.admin, json!({"name": "d"})).await.json()["name"], "d");
    let dup = json!({"tags": [{"name": "x"}, {"name": "x"}]});
    assert_eq!(post_json(&env, &format!("{ns}/tags"), &env.admin, dup).await.status, StatusCode::CONFLICT);
    let r = post_json(&env, &format!("{ns}/tags"), &env.admin, json!({"tags": [{"name": "z"}]})).await;
    assert_eq!(r.json()["tags"][0]["name"], "z");
    assert_eq!(get(&env, &format!("{ns}/tags"), &env.demo).await.json()["tags"].as_array().map(Vec::len), Some(1));
    assert_eq!(delete(&env, &format!("{ns}/tags"), &env.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&env, &format!("{ns}/tags"), &env.demo).await.json()["tags"], json!([]));
    // Resource types and associations.
    let types = get(&env, "/image/v2/metadefs/resource_types", &env.demo).await.json();
    assert!(types["resource_types"].as_array().expect("list").iter().any(|t| t["name"] == "OS::Nova::Flavor"));
    let r = post_json(
        &env,
        &format!("{ns}/resource_types"),
        &env.admin,
        json!({"name": "OS::Nova::Flavor", "prefix": "hw:"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["prefix"], "hw:");
    let r = get(&env, &format!("{ns}/resource_types"), &env.demo).await.json();
    assert_eq!(r["resource_type_associations"][0]["name"], "OS::Nova::Flavor");
    assert_eq!(
        delete(&env, &format!("{ns}/resource_types/OS::Nova::Flavor"), &env.admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(&env, &format!("{ns}/resource_types"), &env.demo).await.json()["resource_type_associations"],
        json!([])
    );
}

/// Glance serves a JSON schema per metadefs document under /v2/schemas/metadefs.
#[tokio::test]
async fn metadefs_schemas() {
    let env = env().await;
    for (path, name) in [
        ("namespace", "namespace"),
        ("namespaces", "namespaces"),
        ("object", "object"),
        ("objects", "objects"),
        ("property", "property"),
        ("properties", "properties"),
        ("tag", "tag"),
        ("tags", "tags"),
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
    ] {
        let r = get(&env, &format!("/image/v2/schemas/metadefs/{path}"), &env.viewer).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["name"], name);
        assert!(r.json()["properties"].is_object());
    }
    assert_eq!(get(&env, "/image/v2/schemas/metadefs/nope", &env.viewer).await.status, StatusCode::NOT_FOUND);
}
