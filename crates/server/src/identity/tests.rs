use super::*;
use axum::body::Body;
use axum::http::{Method, Request};
use std::path::PathBuf;
use tower::ServiceExt;

const PUBLIC: &str = "http://127.0.0.1:8774";

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    app: Router,
    _dir: TempDir,
}

/// Admin `admin/pw` on project `admin`, member `demo/demopw` and
/// reader `viewer/viewpw` on project `demo`.
async fn env() -> Env {
    let dir = TempDir(std::env::temp_dir().join(format!("stratus-identity-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(dir.0.join("images")).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.0.join("t.db")).await.expect("open");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    identity.bootstrap_user("admin", "pw", "admin", "admin", false).await.expect("bootstrap admin");
    identity.bootstrap_user("demo", "demopw", "demo", "member", false).await.expect("bootstrap demo");
    identity.bootstrap_user("viewer", "viewpw", "demo", "reader", false).await.expect("bootstrap viewer");
    let (state, _) = crate::volume::test_state(&ds, identity, dir.0.join("images"));
    Env { app: crate::router(state), _dir: dir }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    subject: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    if let Some(s) = subject {
        req = req.header("x-subject-token", s);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).expect("request")).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let raw = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body").to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Reply { status, headers, raw, body }
}

fn password_body(user: &str, password: &str, project: &str) -> Value {
    json!({ "auth": {
        "identity": { "methods": ["password"], "password": { "user": { "name": user, "domain": { "name": "Default" }, "password": password } } },
        "scope": { "project": { "name": project, "domain": { "id": "default" } } },
    } })
}

/// Log in by names; returns (token, body).
async fn login(app: &Router, user: &str, password: &str, project: &str) -> (String, Value) {
    let r =
        call(app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(password_body(user, password, project)))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "login {user}: {}", r.body);
    let token = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("X-Subject-Token").to_string();
    (token, r.body)
}

fn assert_keystone_error(body: &Value, code: u16) {
    assert_eq!(body["error"]["code"], json!(code), "{body}");
    assert!(body["error"]["title"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

fn endpoint_url(catalog: &Value, kind: &str) -> String {
    let svc =
        catalog.as_array().expect("catalog array").iter().find(|s| s["type"] == kind).expect("service in catalog");
    let ep = svc["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["interface"] == "public")
        .expect("public endpoint");
    ep["url"].as_str().expect("url").to_string()
}

#[tokio::test]
async fn identity_version_documents() {
    let e = env().await;
    for path in ["/identity", "/identity/"] {
        let r = call(&e.app, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES, "{path}");
        let v = &r.body["versions"]["values"][0];
        assert_eq!(v["id"], "v3.14");
        assert_eq!(v["status"], "stable");
        assert_eq!(v["links"][0]["href"], format!("{PUBLIC}/identity/v3/"));
        assert_eq!(v["media-types"][0]["type"], "application/vnd.openstack.identity-v3+json");
    }
    for path in ["/identity/v3", "/identity/v3/"] {
        let r = call(&e.app, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["version"]["id"], "v3.14");
        assert_eq!(r.body["version"]["updated"], "2020-04-07T00:00:00Z");
    }
}

#[tokio::test]
async fn identity_password_auth_by_names_gives_token_and_catalog() {
    let e = env().await;
    let (token, body) = login(&e.app, "admin", "pw", "admin").await;
    assert_eq!(token.len(), 64);
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["user"]["domain"], json!({ "id": "default", "name": "Default" }));
    assert!(t["user"]["password_expires_at"].is_null());
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(t["is_domain"], false);
    assert_eq!(t["roles"][0]["name"], "admin");
    assert_eq!(t["audit_ids"].as_array().map(Vec::len), Some(1));
    for k in ["expires_at", "issued_at"] {
        let s = t[k].as_str().expect("timestamp");
        assert!(s.ends_with('Z') && s.len() == 27 && s.as_bytes()[19] == b'.', "{k}: {s}");
    }
    let project_id = t["project"]["id"].as_str().expect("project id");
    assert_eq!(endpoint_url(&t["catalog"], "compute"), format!("{PUBLIC}/compute/v2.1"));
    assert_eq!(endpoint_url(&t["catalog"], "image"), format!("{PUBLIC}/image"));
    assert_eq!(endpoint_url(&t["catalog"], "identity"), format!("{PUBLIC}/identity"));
    assert_eq!(endpoint_url(&t["catalog"], "volumev3"), format!("{PUBLIC}/volume/v3/{project_id}"));
    assert_eq!(endpoint_url(&t["catalog"], "block-storage"), format!("{PUBLIC}/volume/v3/{project_id}"));

    // By ids, unscoped (default project), and without a catalog.
    let user_id = t["user"]["id"].as_str().expect("user id");
    let by_id = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "id": user_id, "password": "pw" } } },
        "scope": { "project": { "id": project_id } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens?nocatalog", None, None, Some(by_id)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["token"].get("catalog").is_none());
    let unscoped = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "demo", "domain": { "id": "default" }, "password": "demopw" } } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(unscoped)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token"]["project"]["name"], "demo");
}

#[tokio::test]
async fn identity_bad_credentials_and_bodies() {
    let e = env().await;
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("admin", "wrong", "admin")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_keystone_error(&r.body, 401);
    assert_eq!(r.body["error"]["message"], "The request you have made requires authentication.");
    assert_eq!(r.body["error"]["title"], "Unauthorized");
    assert!(r.headers.contains_key("www-authenticate"));
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("nobody", "pw", "admin")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A project the user has no role on, and a foreign domain.
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("demo", "demopw", "admin")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mut other_domain = password_body("demo", "demopw", "demo");
    other_domain["auth"]["identity"]["password"]["user"]["domain"] = json!({ "id": "elsewhere" });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(other_domain)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    for bad_body in [
        json!({}),
        json!({ "auth": {} }),
        json!({ "auth": { "identity": { "methods": ["password"] } } }),
        json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "name": "admin" } } } } }),
        json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": { "password": "pw" } } } } }),
        json!({ "auth": { "identity": { "methods": ["token"] } } }),
        json!({ "auth": { "identity": { "methods": "password" } } }),
    ] {
        let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(bad_body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad_body} -> {}", r.body);
        assert_keystone_error(&r.body, 400);
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri("/identity/v3/auth/tokens")
        .body(Body::from("{not json"))
        .expect("req");
    let resp = e.app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn identity_token_validate_head_and_revoke() {
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let (demo, demo_body) = login(&e.app, "demo", "demopw", "demo").await;
    let (viewer, _) = login(&e.app, "viewer", "viewpw", "demo").await;

    // Own token, and an admin validating another user's token.
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["token"]["user"]["name"], "demo");
    assert_eq!(r.body["token"]["audit_ids"], demo_body["token"]["audit_ids"]);
    assert!(r.body["token"]["catalog"].is_array());
    assert_eq!(r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()), Some(demo.as_str()));
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens?nocatalog", Some(&admin), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["token"].get("catalog").is_none());
    let r = call(&e.app, Method::HEAD, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.raw.is_empty());

    // Non-admins cannot look at other users' tokens; bad subjects are 404; no caller is 401.
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_keystone_error(&r.body, 403);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&admin), Some("nonsense"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_keystone_error(&r.body, 404);
    let r = call(&e.app, Method::HEAD, "/identity/v3/auth/tokens", Some(&admin), Some("nonsense"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", None, Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_keystone_error(&r.body, 401);

    // A reader may log itself out; the token is then dead.
    let r = call(&e.app, Method::DELETE, "/identity/v3/auth/tokens", Some(&viewer), Some(&viewer), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&viewer), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_keystone_error(&r.body, 401);

    // Admin revokes demo's token.
    let r = call(&e.app, Method::DELETE, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&admin), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/tokens", Some(&demo), Some(&demo), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_token_method_reissues_and_rescopes() {
    let e = env().await;
    let (admin, body) = login(&e.app, "admin", "pw", "admin").await;
    let req = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": admin } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(req)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let new = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("token").to_string();
    assert_ne!(new, admin);
    assert_eq!(r.body["token"]["methods"], json!(["token"]));
    assert_eq!(r.body["token"]["project"]["id"], body["token"]["project"]["id"]);
    // Keystone: a token from a token keeps the original expiry.
    assert_eq!(r.body["token"]["expires_at"], body["token"]["expires_at"]);

    // Admin gets a role on demo, then rescopes its token there.
    let demo_project = call(&e.app, Method::GET, "/identity/v3/projects?name=demo", Some(&admin), None, None)
        .await
        .body["projects"][0]["id"]
        .as_str()
        .expect("demo id")
        .to_string();
    let user_id = body["token"]["user"]["id"].as_str().expect("uid");
    let role_id = body["token"]["roles"][0]["id"].as_str().expect("rid");
    let rescope = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": new } }, "scope": { "project": { "id": demo_project } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(rescope.clone())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no role on demo yet");
    let r = call(
        &e.app,
        Method::PUT,
        &format!("/identity/v3/projects/{demo_project}/users/{user_id}/roles/{role_id}"),
        Some(&admin),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(rescope)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token"]["project"]["name"], "demo");
    let bad = json!({ "auth": { "identity": { "methods": ["token"], "token": { "id": "bogus" } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(bad)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_admin_creates_project_user_and_grant_then_user_logs_in() {
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let api = |m: Method, path: &str, body: Option<Value>| {
        let app = e.app.clone();
        let admin = admin.clone();
        let uri = format!("/identity/v3{path}");
        async move { call(&app, m, &uri, Some(&admin), None, body).await }
    };

    let r = api(
        Method::POST,
        "/projects",
        Some(
            json!({ "project": { "name": "web", "description": "Web team", "domain_id": "default", "enabled": true } }),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = &r.body["project"];
    let pid = p["id"].as_str().expect("pid").to_string();
    assert_eq!(p["name"], "web");
    assert_eq!(p["description"], "Web team");
    assert_eq!(p["domain_id"], "default");
    assert_eq!(p["parent_id"], "default");
    assert_eq!(p["is_domain"], false);
    assert_eq!(p["enabled"], true);
    assert_eq!(p["tags"], json!([]));
    assert_eq!(p["links"]["self"], format!("{PUBLIC}/identity/v3/projects/{pid}"));
    let r = api(Method::POST, "/projects", Some(json!({ "project": { "name": "web" } }))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_keystone_error(&r.body, 409);

    // OSC's lookup: by id (404 for a name), then by ?name=.
    assert_eq!(api(Method::GET, "/projects/web", None).await.status, StatusCode::NOT_FOUND);
    let r = api(Method::GET, "/projects?name=web", None).await;
    assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
    assert!(r.body["links"]["next"].is_null());
    assert_eq!(api(Method::GET, &format!("/projects/{pid}"), None).await.body["project"]["name"], "web");
    let r = api(
        Method::PATCH,
        &format!("/projects/{pid}"),
        Some(json!({ "project": { "name": "web", "description": "Web team" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "no-op update");
    let r = api(Method::PATCH, &format!("/projects/{pid}"), Some(json!({ "project": { "enabled": false } }))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api(
        Method::POST,
        "/users",
        Some(json!({ "user": { "name": "alice", "password": "alicepw", "default_project_id": pid, "domain_id": "default", "enabled": true, "email": "alice@example.com", "description": "Alice" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let uid = r.body["user"]["id"].as_str().expect("uid").to_string();
    assert_eq!(r.body["user"]["email"], "alice@example.com");
    assert_eq!(r.body["user"]["default_project_id"], json!(pid));
    assert!(r.body["user"].get("password").is_none());
    assert_eq!(api(Method::GET, "/users/alice", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(Method::GET, "/users?name=alice", None).await.body["users"][0]["id"], json!(uid));

    // No role yet: no token.
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("alice", "alicepw", "web")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = api(Method::GET, "/roles?name=member", None).await;
    let rid = r.body["roles"][0]["id"].as_str().expect("member role").to_string();
    assert_eq!(api(Method::GET, &format!("/roles/{rid}"), None).await.body["role"]["name"], "member");
    let grant = format!("/projects/{pid}/users/{uid}/roles/{rid}");
    assert_eq!(api(Method::HEAD, &grant, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(Method::PUT, &grant, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::HEAD, &grant, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api(Method::PUT, &format!("/projects/{pid}/users/{uid}/roles/nope"), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(Method::PUT, &format!("/projects/nope/users/{uid}/roles/{rid}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api(Method::GET, &format!("/projects/{pid}/users/{uid}/roles"), None).await;
    assert_eq!(r.body["roles"][0]["name"], "member");

    let r =
        api(Method::GET, &format!("/role_assignments?user.id={uid}&scope.project.id={pid}&include_names=True"), None)
            .await;
    assert_eq!(r.status, StatusCode::OK);
    let a = &r.body["role_assignments"][0];
    assert_eq!(a["role"], json!({ "id": rid, "name": "member" }));
    assert_eq!(a["user"]["name"], "alice");
    assert_eq!(a["scope"]["project"]["name"], "web");
    assert_eq!(a["links"]["assignment"], format!("{PUBLIC}/identity/v3{grant}"));
    let r = api(Method::GET, &format!("/role_assignments?role.id={rid}"), None).await;
    assert!(
        r.body["role_assignments"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|a| a["role"].get("name").is_none()))
    );

    // Alice logs in scoped to the project, sees her projects and herself.
    let (alice, body) = login(&e.app, "alice", "alicepw", "web").await;
    assert_eq!(body["token"]["roles"][0]["name"], "member");
    assert_eq!(body["token"]["project"]["id"], json!(pid));
    let r = call(&e.app, Method::GET, &format!("/identity/v3/users/{uid}/projects"), Some(&alice), None, None).await;
    assert_eq!(r.body["projects"][0]["name"], "web");
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
    assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
    let r = call(&e.app, Method::GET, &format!("/identity/v3/users/{uid}"), Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&e.app, Method::GET, &format!("/identity/v3/projects/{pid}"), Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Password change (Keystone revokes the user's tokens); other attributes are refused.
    let r = api(
        Method::PATCH,
        &format!("/users/{uid}"),
        Some(json!({ "user": { "password": "newpw", "email": "alice@example.com" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("alice", "alicepw", "web")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the password change revoked alice's token");
    let (alice, _) = login(&e.app, "alice", "newpw", "web").await;
    let r = api(Method::PATCH, &format!("/users/{uid}"), Some(json!({ "user": { "name": "bob" } }))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_keystone_error(&r.body, 400);
    // Disabling revokes her tokens; enabling again revives none of them.
    let r = api(Method::PATCH, &format!("/users/{uid}"), Some(json!({ "user": { "enabled": false } }))).await;
    assert_eq!((r.status, &r.body["user"]["enabled"]), (StatusCode::OK, &json!(false)), "{}", r.body);
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/auth/tokens",
        None,
        None,
        Some(password_body("alice", "newpw", "web")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "disabled");
    let r = api(Method::PATCH, &format!("/users/{uid}"), Some(json!({ "user": { "enabled": true } }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the disable revoked alice's token for good");
    let (alice, _) = login(&e.app, "alice", "newpw", "web").await;
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Revoking the role cuts alice off (the token cache is flushed).
    assert_eq!(api(Method::DELETE, &grant, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::DELETE, &grant, None).await.status, StatusCode::NOT_FOUND);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&alice), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    assert_eq!(api(Method::DELETE, &format!("/users/{uid}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::GET, &format!("/users/{uid}"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(Method::DELETE, &format!("/projects/{pid}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::DELETE, &format!("/projects/{pid}"), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn identity_non_admins_are_forbidden_to_change_or_list() {
    let e = env().await;
    let (demo, demo_body) = login(&e.app, "demo", "demopw", "demo").await;
    let (viewer, _) = login(&e.app, "viewer", "viewpw", "demo").await;
    let (admin, admin_body) = login(&e.app, "admin", "pw", "admin").await;
    let admin_uid = admin_body["token"]["user"]["id"].as_str().expect("uid");
    let admin_pid = admin_body["token"]["project"]["id"].as_str().expect("pid");
    let demo_uid = demo_body["token"]["user"]["id"].as_str().expect("uid");
    let demo_pid = demo_body["token"]["project"]["id"].as_str().expect("pid");
    let member_rid = demo_body["token"]["roles"][0]["id"].as_str().expect("rid");
    for token in [&demo, &viewer] {
        let forbidden = [
            (Method::POST, "/identity/v3/projects".to_string(), Some(json!({ "project": { "name": "mine" } }))),
            (Method::GET, "/identity/v3/projects".to_string(), None),
            (Method::GET, "/identity/v3/users".to_string(), None),
            (
                Method::POST,
                "/identity/v3/users".to_string(),
                Some(json!({ "user": { "name": "eve", "password": "x" } })),
            ),
            (Method::GET, "/identity/v3/roles".to_string(), None),
            (Method::GET, "/identity/v3/role_assignments".to_string(), None),
            (Method::GET, format!("/identity/v3/projects/{admin_pid}"), None),
            (Method::GET, format!("/identity/v3/users/{admin_uid}"), None),
            (Method::GET, format!("/identity/v3/users/{admin_uid}/projects"), None),
            (Method::PATCH, format!("/identity/v3/users/{demo_uid}"), Some(json!({ "user": { "password": "x" } }))),
            (Method::DELETE, format!("/identity/v3/projects/{demo_pid}"), None),
            (Method::PUT, format!("/identity/v3/projects/{admin_pid}/users/{demo_uid}/roles/{member_rid}"), None),
            (Method::GET, "/identity/v3/endpoints".to_string(), None),
        ];
        for (m, uri, body) in forbidden {
            let r = call(&e.app, m.clone(), &uri, Some(token), None, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {uri}: {}", r.body);
            assert_keystone_error(&r.body, 403);
        }
        // What non-admins may read.
        for uri in [
            "/identity/v3/domains/default".to_string(),
            "/identity/v3/domains?name=Default".to_string(),
            "/identity/v3/regions".to_string(),
            "/identity/v3/auth/projects".to_string(),
            "/identity/v3/auth/catalog".to_string(),
            format!("/identity/v3/projects/{demo_pid}"),
        ] {
            let r = call(&e.app, Method::GET, &uri, Some(token), None, None).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        }
    }
    let r = call(&e.app, Method::GET, "/identity/v3/projects", None, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_keystone_error(&r.body, 401);
    let r = call(&e.app, Method::GET, "/identity/v3/domains?name=Default", Some(&admin), None, None).await;
    assert_eq!(r.body["domains"][0]["id"], "default");
    assert_eq!(r.body["domains"][0]["name"], "Default");
    let r = call(&e.app, Method::GET, "/identity/v3/domains/other", Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn identity_invalid_admin_requests_are_4xx() {
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let cases = [
        (Method::POST, "/identity/v3/projects", Some(json!({})), StatusCode::BAD_REQUEST),
        (Method::POST, "/identity/v3/projects", Some(json!({ "project": {} })), StatusCode::BAD_REQUEST),
        (Method::POST, "/identity/v3/projects", Some(json!({ "project": { "name": "  " } })), StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/identity/v3/projects",
            Some(json!({ "project": { "name": "x", "enabled": "yes" } })),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/identity/v3/projects",
            Some(json!({ "project": { "name": "x", "domain_id": "other" } })),
            StatusCode::BAD_REQUEST,
        ),
        (Method::POST, "/identity/v3/projects", Some(json!({ "project": "x" })), StatusCode::BAD_REQUEST),
        (Method::POST, "/identity/v3/projects", None, StatusCode::BAD_REQUEST),
        (Method::POST, "/identity/v3/users", Some(json!({ "user": {} })), StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/identity/v3/users",
            Some(json!({ "user": { "name": "bob", "default_project_id": "nope" } })),
            StatusCode::BAD_REQUEST,
        ),
        (Method::PATCH, "/identity/v3/users/nope", Some(json!({ "user": { "password": "x" } })), StatusCode::NOT_FOUND),
        (Method::PATCH, "/identity/v3/projects/nope", Some(json!({ "project": {} })), StatusCode::NOT_FOUND),
        (Method::GET, "/identity/v3/roles/nope", None, StatusCode::NOT_FOUND),
        (Method::PUT, "/identity/v3/projects/a/users/b/roles/c", None, StatusCode::NOT_FOUND),
        (Method::GET, "/identity/v3/projects/a/users/b/roles", None, StatusCode::NOT_FOUND),
        (
            Method::PATCH,
            "/identity/v3/roles/nope",
            Some(json!({ "role": { "name": "x" } })),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (m, uri, body, want) in cases {
        let r = call(&e.app, m.clone(), uri, Some(&admin), None, body.clone()).await;
        assert_eq!(r.status, want, "{m} {uri} {body:?}: {}", r.body);
        assert_keystone_error(&r.body, want.as_u16());
    }
}

#[tokio::test]
async fn identity_services_and_endpoints_match_the_catalog() {
    let e = env().await;
    let (admin, body) = login(&e.app, "admin", "pw", "admin").await;
    let r = call(&e.app, Method::GET, "/identity/v3/services?type=compute", Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let sid = r.body["services"][0]["id"].as_str().expect("sid").to_string();
    assert_eq!(r.body["services"][0]["name"], "nova");
    let r = call(
        &e.app,
        Method::GET,
        &format!("/identity/v3/endpoints?service_id={sid}&interface=public"),
        Some(&admin),
        None,
        None,
    )
    .await;
    let eps = r.body["endpoints"].as_array().expect("endpoints");
    assert_eq!(eps.len(), 1);
    let compute = body["token"]["catalog"]
        .as_array()
        .expect("catalog")
        .iter()
        .find(|s| s["type"] == "compute")
        .expect("compute")
        .clone();
    assert_eq!(compute["id"], json!(sid));
    assert!(compute["endpoints"].as_array().expect("eps").iter().any(|e| e["id"] == eps[0]["id"]));
    let r = call(&e.app, Method::GET, &format!("/identity/v3/services/{sid}"), Some(&admin), None, None).await;
    assert_eq!(r.body["service"]["type"], "compute");
}

/// With `--keystone-url` and that Keystone down, an API call is a 503 with
/// a Nova fault (keystonemiddleware answers 503 when it cannot reach the
/// identity server), never an accepted token; `/identity` is a 404 fault
/// naming the Keystone.
#[tokio::test]
async fn with_an_external_keystone_down_calls_are_503_and_identity_is_404() {
    let dir = TempDir(std::env::temp_dir().join(format!("stratus-identity-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(dir.0.join("images")).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.0.join("t.db")).await.expect("open");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let keystone = stratus_auth::Keystone::new(stratus_auth::KeystoneConfig {
        url: format!("http://127.0.0.1:{port}"),
        user: "stratus".into(),
        password: "pw".into(),
        project: "service".into(),
        domain: "Default".into(),
        cache_ttl: std::time::Duration::from_secs(30),
        region: "RegionOne".into(),
        timeout: std::time::Duration::from_secs(2),
    })
    .expect("client");
    let (mut state, _) = crate::volume::test_state(&ds, identity, dir.0.join("images"));
    state.tokens = stratus_auth::TokenValidator::Keystone(std::sync::Arc::new(keystone));
    let app = crate::router(state);
    let r = call(&app, Method::GET, "/compute/v2.1/servers", Some("tok"), None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body["serviceUnavailable"]["code"], 503, "{}", r.body);
    let r = call(&app, Method::GET, "/compute/v2.1/servers", None, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for path in ["/identity", "/identity/v3", "/identity/v3/auth/tokens"] {
        let r = call(&app, Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let message = r.body["error"]["message"].as_str().expect("keystone fault");
        assert!(message.contains(&format!("http://127.0.0.1:{port}/v3")), "{message}");
    }
    let r = call(&app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// `POST /auth/tokens` by application credential id and secret.
fn app_cred_body(id: &str, secret: &str) -> Value {
    json!({ "auth": { "identity": { "methods": ["application_credential"], "application_credential": { "id": id, "secret": secret } } } })
}

#[tokio::test]
async fn identity_application_credentials_yield_scoped_tokens_until_deleted_or_the_role_goes() {
    // Keystone's application credentials API (api-ref "Application credentials") and
    // its `application_credential` auth method.
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let (demo, body) = login(&e.app, "demo", "demopw", "demo").await;
    let uid = body["token"]["user"]["id"].as_str().expect("user id").to_string();
    let pid = body["token"]["project"]["id"].as_str().expect("project id").to_string();
    let base = format!("/identity/v3/users/{uid}/application_credentials");

    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "ci" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = &r.body["application_credential"];
    let (id, secret) = (created["id"].as_str().expect("id").to_string(), created["secret"].as_str().expect("secret"));
    let secret = secret.to_string();
    assert_eq!((created["project_id"].as_str(), created["unrestricted"].as_bool()), (Some(pid.as_str()), Some(false)));
    assert_eq!(created["roles"][0]["name"], "member", "default: all of the creator's roles");
    assert!(created["expires_at"].is_null());
    // The secret is shown once.
    let r = call(&e.app, Method::GET, &format!("{base}/{id}"), Some(&demo), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["application_credential"].get("secret").is_none(), "{}", r.body);
    let r = call(&e.app, Method::GET, &format!("{base}?name=ci"), Some(&demo), None, None).await;
    assert_eq!(r.body["application_credentials"].as_array().map(Vec::len), Some(1));
    let r = call(&e.app, Method::GET, &format!("{base}?name=other"), Some(&demo), None, None).await;
    assert_eq!(r.body["application_credentials"].as_array().map(Vec::len), Some(0));
    // Only the owner creates its credentials, even admins may not (Keystone's policy).
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&admin),
        None,
        Some(json!({ "application_credential": { "name": "x" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Roles beyond the creator's, a past expiry, a taken name.
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "x", "roles": [{ "name": "admin" }] } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "x", "expires_at": "2001-01-01T00:00:00" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "ci" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // The token: the credential's project and roles, and the credential in its body.
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(app_cred_body(&id, &secret))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = &r.body["token"];
    assert_eq!(t["methods"], json!(["application_credential"]));
    assert_eq!((t["project"]["id"].as_str(), t["roles"][0]["name"].as_str()), (Some(pid.as_str()), Some("member")));
    assert_eq!(t["application_credential"], json!({ "id": id, "name": "ci", "restricted": true }));
    let ac_token = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("token").to_string();
    // By name and user name too; a wrong secret is a 401.
    let by_name = json!({ "auth": { "identity": { "methods": ["application_credential"], "application_credential": { "name": "ci", "user": { "name": "demo", "domain": { "id": "default" } }, "secret": secret } } } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(by_name)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(app_cred_body(&id, "wrong"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A restricted credential's token may not make credentials.
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&ac_token),
        None,
        Some(json!({ "application_credential": { "name": "y" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&ac_token), None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Deleting it ends its tokens and its logins.
    let r = call(&e.app, Method::DELETE, &format!("{base}/{id}"), Some(&demo), None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&ac_token), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(app_cred_body(&id, &secret))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // An empty role list means all of the creator's roles, as Keystone reads it (the CLI sends `[]`).
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "cli", "roles": [] } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["application_credential"]["roles"][0]["name"], "member");

    // A given secret, unrestricted; the user losing the role deletes it (Keystone) and ends its tokens.
    let r = call(
        &e.app,
        Method::POST,
        &base,
        Some(&demo),
        None,
        Some(json!({ "application_credential": { "name": "tf", "secret": "s3cret", "unrestricted": true } })),
    )
    .await;
    assert_eq!((r.status, r.body["application_credential"]["secret"].as_str()), (StatusCode::CREATED, Some("s3cret")));
    let id2 = r.body["application_credential"]["id"].as_str().expect("id").to_string();
    let r =
        call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(app_cred_body(&id2, "s3cret"))).await;
    assert_eq!(r.body["token"]["application_credential"]["restricted"], false);
    let tf_token = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("token").to_string();
    let r = call(&e.app, Method::GET, "/identity/v3/roles?name=member", Some(&admin), None, None).await;
    let member = r.body["roles"][0]["id"].as_str().expect("member role").to_string();
    // Roles: admins create and delete them (Keystone's POST/DELETE /v3/roles), not the standard ones.
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/roles",
        Some(&admin),
        None,
        Some(json!({ "role": { "name": "auditor" } })),
    )
    .await;
    assert_eq!((r.status, r.body["role"]["name"].as_str()), (StatusCode::CREATED, Some("auditor")), "{}", r.body);
    let auditor = r.body["role"]["id"].as_str().expect("role id").to_string();
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/roles",
        Some(&admin),
        None,
        Some(json!({ "role": { "name": "auditor" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r =
        call(&e.app, Method::POST, "/identity/v3/roles", Some(&demo), None, Some(json!({ "role": { "name": "x" } })))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&e.app, Method::DELETE, &format!("/identity/v3/roles/{member}"), Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&e.app, Method::DELETE, &format!("/identity/v3/roles/{auditor}"), Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::GET, &format!("/identity/v3/roles/{auditor}"), Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let grant = format!("/identity/v3/projects/{pid}/users/{uid}/roles/{member}");
    assert_eq!(call(&e.app, Method::DELETE, &grant, Some(&admin), None, None).await.status, StatusCode::NO_CONTENT);
    let r = call(&e.app, Method::GET, "/identity/v3/auth/projects", Some(&tf_token), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&e.app, Method::GET, &format!("{base}/{id2}"), Some(&admin), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn identity_project_tags_and_tag_filters() {
    // Keystone's project tags (api-ref "Projects": tags) and the tags/tags-any/not-tags/not-tags-any filters.
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let (demo, body) = login(&e.app, "demo", "demopw", "demo").await;
    let demo_pid = body["token"]["project"]["id"].as_str().expect("pid").to_string();
    let api = |m: Method, path: String, b: Option<Value>| {
        let (app, admin) = (e.app.clone(), admin.clone());
        async move { call(&app, m, &format!("/identity/v3{path}"), Some(&admin), None, b).await }
    };
    let r =
        api(Method::POST, "/projects".into(), Some(json!({ "project": { "name": "web", "tags": ["a", "b"] } }))).await;
    assert_eq!((r.status, &r.body["project"]["tags"]), (StatusCode::CREATED, &json!(["a", "b"])), "{}", r.body);
    let pid = r.body["project"]["id"].as_str().expect("id").to_string();
    assert_eq!(api(Method::PUT, format!("/projects/{pid}/tags/c"), None).await.status, StatusCode::CREATED);
    assert_eq!(api(Method::PUT, format!("/projects/{pid}/tags/c"), None).await.status, StatusCode::CREATED);
    assert_eq!(api(Method::GET, format!("/projects/{pid}/tags/c"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::GET, format!("/projects/{pid}/tags/z"), None).await.status, StatusCode::NOT_FOUND);
    let r = api(Method::GET, format!("/projects/{pid}"), None).await;
    assert_eq!(r.body["project"]["tags"], json!(["a", "b", "c"]));
    let names = |q: &'static str| {
        let api = &api;
        async move {
            let r = api(Method::GET, format!("/projects?{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}");
            r.body["projects"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|p| p["name"].as_str().map(String::from))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("tags=a,c").await, vec!["web"]);
    assert_eq!(names("tags=a,z").await, Vec::<String>::new());
    assert_eq!(names("tags-any=z,b").await, vec!["web"]);
    assert!(!names("not-tags=a,b").await.contains(&"web".to_string()));
    assert!(names("not-tags=a,z").await.contains(&"web".to_string()));
    assert!(!names("not-tags-any=z,c").await.contains(&"web".to_string()));
    assert!(names("not-tags-any=z").await.contains(&"admin".to_string()));
    // Keystone's limits: 60 characters, no '/' or ',', at most 80 tags.
    for bad in [
        json!({ "tags": ["x".repeat(61)] }),
        json!({ "tags": ["a,b"] }),
        json!({ "tags": ["a/b"] }),
        json!({ "tags": (0..81).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
        json!({ "tags": ["d", "d"] }),
    ] {
        let r = api(Method::PUT, format!("/projects/{pid}/tags"), Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(api(Method::PUT, format!("/projects/{pid}/tags/a,b"), None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api(Method::PUT, format!("/projects/{pid}/tags/{}", "y".repeat(61)), None).await.status,
        StatusCode::BAD_REQUEST
    );
    let eighty: Vec<String> = (0..80).map(|i| format!("t{i}")).collect();
    let r = api(Method::PUT, format!("/projects/{pid}/tags"), Some(json!({ "tags": eighty }))).await;
    assert_eq!((r.status, r.body["tags"].as_array().map(Vec::len)), (StatusCode::OK, Some(80)));
    assert_eq!(api(Method::PUT, format!("/projects/{pid}/tags/one-more"), None).await.status, StatusCode::BAD_REQUEST);
    // Replace, delete one, delete all; PATCH replaces them too.
    let r = api(Method::PUT, format!("/projects/{pid}/tags"), Some(json!({ "tags": ["p", "q"] }))).await;
    assert_eq!(r.body["tags"], json!(["p", "q"]));
    assert_eq!(api(Method::DELETE, format!("/projects/{pid}/tags/p"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::DELETE, format!("/projects/{pid}/tags/p"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(Method::DELETE, format!("/projects/{pid}/tags"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::GET, format!("/projects/{pid}/tags"), None).await.body["tags"], json!([]));
    let r = api(Method::PATCH, format!("/projects/{pid}"), Some(json!({ "project": { "tags": ["r"] } }))).await;
    assert_eq!((r.status, &r.body["project"]["tags"]), (StatusCode::OK, &json!(["r"])), "{}", r.body);
    // A member reads its own project's tags and changes none.
    let r = call(&e.app, Method::GET, &format!("/identity/v3/projects/{demo_pid}/tags"), Some(&demo), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r =
        call(&e.app, Method::PUT, &format!("/identity/v3/projects/{demo_pid}/tags/x"), Some(&demo), None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn identity_system_scope_reader_reads_everything_and_writes_nothing() {
    // Keystone's system role assignments (api-ref "System Role Assignments") and
    // `{"system": {"all": true}}` scope; SYSTEM_READER may read, not write.
    let e = env().await;
    let (admin, _) = login(&e.app, "admin", "pw", "admin").await;
    let api = |m: Method, path: String, b: Option<Value>| {
        let (app, admin) = (e.app.clone(), admin.clone());
        async move { call(&app, m, &format!("/identity/v3{path}"), Some(&admin), None, b).await }
    };
    let r =
        api(Method::POST, "/users".into(), Some(json!({ "user": { "name": "auditor", "password": "audpw" } }))).await;
    let uid = r.body["user"]["id"].as_str().expect("uid").to_string();
    let reader = api(Method::GET, "/roles?name=reader".into(), None).await.body["roles"][0]["id"]
        .as_str()
        .expect("reader role")
        .to_string();
    let system_login = json!({ "auth": {
        "identity": { "methods": ["password"], "password": { "user": { "name": "auditor", "domain": { "id": "default" }, "password": "audpw" } } },
        "scope": { "system": { "all": true } },
    } });
    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(system_login.clone())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no role on the system yet");
    let grant = format!("/system/users/{uid}/roles/{reader}");
    assert_eq!(api(Method::GET, grant.clone(), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(Method::PUT, grant.clone(), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::GET, grant.clone(), None).await.status, StatusCode::NO_CONTENT);
    let r = api(Method::GET, format!("/system/users/{uid}/roles"), None).await;
    assert_eq!(r.body["roles"][0]["name"], "reader");
    let r = api(Method::GET, "/role_assignments?scope.system=all".into(), None).await;
    assert_eq!(r.body["role_assignments"][0]["scope"], json!({ "system": { "all": true } }), "{}", r.body);

    let r = call(&e.app, Method::POST, "/identity/v3/auth/tokens", None, None, Some(system_login.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token"]["system"], json!({ "all": true }));
    assert!(r.body["token"].get("project").is_none());
    assert_eq!(r.body["token"]["roles"][0]["name"], "reader");
    let sys = r.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("token").to_string();
    for path in [
        "/identity/v3/projects",
        "/identity/v3/users",
        "/identity/v3/role_assignments",
        "/compute/v2.1/servers?all_tenants=1",
        "/compute/v2.1/flavors",
    ] {
        let r = call(&e.app, Method::GET, path, Some(&sys), None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let r = call(
        &e.app,
        Method::POST,
        "/identity/v3/projects",
        Some(&sys),
        None,
        Some(json!({ "project": { "name": "x" } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&e.app, Method::PUT, &format!("/identity/v3{grant}"), Some(&sys), None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &e.app,
        Method::POST,
        "/compute/v2.1/flavors",
        Some(&sys),
        None,
        Some(json!({ "flavor": { "name": "f", "ram": 1, "vcpus": 1, "disk": 1 } })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Revoking the system role ends the system token.
    assert_eq!(api(Method::DELETE, grant.clone(), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(Method::DELETE, grant, None).await.status, StatusCode::NOT_FOUND);
    let r = call(&e.app, Method::GET, "/identity/v3/projects", Some(&sys), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
