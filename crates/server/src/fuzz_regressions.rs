//! Requests the fuzzer (`scripts/fuzz`, schemathesis on the OpenAPI
//! documents) found mishandled, each kept as a test of the whole router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> (axum::Router, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("stratus-fuzzreg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let (state, _) = crate::volume::test_state(&ds, identity, dir.join("images"));
    (crate::router(state), dir)
}

/// A method the route does not serve.
fn unserved(served: &[&str]) -> Option<&'static str> {
    ["PATCH", "PUT", "POST", "DELETE", "GET"].into_iter().find(|m| !served.contains(m))
}

/// Found by the coverage phase, which also sends the methods a path does
/// not document: `PATCH /compute/v2.1/servers` was a 405 with an empty body
/// on Compute, Image, Block Storage and the admin endpoints (Identity had
/// its Keystone body). Every error carries its fault body, as Nova's
/// `badMethod` fault and Keystone's `{"error": ...}` do; the `Allow` header
/// stays.
#[tokio::test]
async fn an_unserved_method_is_a_405_with_a_fault_body_and_allow() {
    let (app, dir) = app().await;
    let routes = crate::auth_matrix_tests::every_route();
    let mut wrong = Vec::new();
    let mut paths: Vec<&String> = routes.iter().map(|(_, p)| p).collect();
    paths.dedup();
    for path in paths {
        let served: Vec<&str> = routes.iter().filter(|(_, p)| p == path).map(|(m, _)| m.as_str()).collect();
        let Some(method) = unserved(&served) else { continue };
        let url = path.replace('{', "x").replace('}', "");
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(&url)
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let allow = resp.headers().contains_key(header::ALLOW);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = if path.starts_with("/identity") { &body["error"]["code"] } else { &body["badMethod"]["code"] };
        if status != StatusCode::METHOD_NOT_ALLOWED || !allow || *code != 405 {
            wrong.push(format!("{method} {path}: {status}, allow: {allow}, body {}", String::from_utf8_lossy(&bytes)));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
