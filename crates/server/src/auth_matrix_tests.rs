//! Every route of the four APIs, read from the router sources themselves (so
//! a new route is covered the day it is added), answered without a token
//! and with a token that is not valid: 401 everywhere except the few routes
//! OpenStack serves anonymously (version discovery, token issue, image
//! schemas, the OpenAPI document) and the Prometheus scrape (`/metrics`).
//! This is the first two columns of the policy matrix issue 11 asks for
//! (anonymous, expired/invalid token).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

/// Routes answered without authentication, as OpenStack does.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/identity"),
    ("GET", "/identity/"),
    ("GET", "/identity/v3"),
    ("GET", "/identity/v3/"),
    ("GET", "/identity/openapi.json"),
    ("POST", "/identity/v3/auth/tokens"),
    ("GET", "/image"),
    ("GET", "/image/"),
    ("GET", "/image/versions"),
    ("GET", "/image/v2"),
    ("GET", "/image/v2/"),
    ("GET", "/image/v2/schemas/image"),
    ("GET", "/image/v2/schemas/images"),
    ("GET", "/image/v2/schemas/member"),
    ("GET", "/image/v2/schemas/members"),
    ("GET", "/image/v2/schemas/task"),
    ("GET", "/image/v2/schemas/tasks"),
    ("GET", "/image/v2/schemas/metadefs/{name}"),
    ("GET", "/image/openapi.json"),
    ("GET", "/compute"),
    ("GET", "/compute/"),
    ("GET", "/compute/v2"),
    ("GET", "/compute/v2/"),
    ("GET", "/compute/v2.1"),
    ("GET", "/compute/v2.1/"),
    ("GET", "/compute/openapi.json"),
    ("GET", "/volume"),
    ("GET", "/volume/"),
    ("GET", "/volume/v3"),
    ("GET", "/volume/v3/"),
    ("GET", "/volume/openapi.json"),
    ("GET", "/stratus/openapi.json"),
    ("GET", "/metrics"),
];

/// The string literal starting at `s` (after its opening quote), unescaped.
fn literal(s: &str) -> Option<(String, usize)> {
    let end = s.find('"')?;
    Some((s[..end].to_string(), end))
}

/// (method, path template) of every `.route(…)` in `src`, with
/// `format!("{prefix}…")` paths expanded for each of `prefixes`.
fn routes_in(src: &str, prefixes: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text up to its matching parenthesis.
        let mut depth = 1;
        let mut end = 0;
        for (j, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..end];
        let Some(q) = call.find('"') else { continue };
        let Some((path, _)) = literal(&call[q + 1..]) else { continue };
        let paths: Vec<String> = if path.contains("{prefix}") {
            prefixes.iter().map(|p| path.replace("{prefix}", p).replace("{{", "{").replace("}}", "}")).collect()
        } else {
            vec![path]
        };
        let handlers = &call[q + 1..];
        for (name, method) in
            [("get(", "GET"), ("post(", "POST"), ("put(", "PUT"), ("delete(", "DELETE"), ("patch(", "PATCH")]
        {
            let found = handlers.match_indices(name).any(|(k, _)| {
                k == 0 || !handlers.as_bytes()[k - 1].is_ascii_alphanumeric() && handlers.as_bytes()[k - 1] != b'_'
            });
            if found {
                for p in &paths {
                    out.push((method.to_string(), p.clone()));
                }
            }
        }
    }
    out
}

/// Every (method, path template) of the router, as its sources declare them.
pub(crate) fn every_route() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let volume_prefixes = ["/volume/v3/{project_id}", "/volume/v3"];
    let mut all = Vec::new();
    for f in
        ["admin.rs", "identity/mod.rs", "compute/mod.rs", "image.rs", "image/metadefs.rs", "volume.rs", "metrics.rs"]
    {
        all.extend(routes_in(&read(f), &volume_prefixes));
    }
    all
}

/// A concrete URL for a template: every `{param}` becomes a syntactically
/// valid id of something that does not exist.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else { break };
        out.push_str("0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

async fn app() -> (axum::Router, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("stratus-authz-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let (state, _) = crate::volume::test_state(&ds, identity, dir.join("images"));
    (crate::router(state), dir)
}

#[tokio::test]
async fn every_route_wants_a_valid_token_except_the_public_ones() {
    let routes = every_route();
    assert!(routes.len() > 80, "the route scan found only {} routes: is the parser still right?", routes.len());
    let (app, dir) = app().await;
    let mut wrong = Vec::new();
    for (method, template) in &routes {
        let public = PUBLIC.iter().any(|(m, p)| m == method && p == template);
        let url = concrete(template);
        for token in [None, Some("not-a-token"), Some("gAAAAABexpired0000000000000000000000")] {
            let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).expect("method")).uri(&url);
            if let Some(t) = token {
                req = req.header("X-Auth-Token", t);
            }
            let req = req.header("Content-Type", "application/json").body(Body::from("{}")).expect("request");
            let status = app.clone().oneshot(req).await.expect("response").status();
            if public {
                if status == StatusCode::UNAUTHORIZED && token.is_none() {
                    wrong.push(format!("{method} {template}: public route wants a token"));
                }
            } else if status != StatusCode::UNAUTHORIZED {
                wrong.push(format!("{method} {template} with token {token:?}: {status}, expected 401"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    assert!(wrong.is_empty(), "{} of {} routes:\n{}", wrong.len(), routes.len(), wrong.join("\n"));
}

#[test]
fn the_route_scan_reads_multi_line_and_prefixed_routes() {
    let src = r#"
        .route("/a", get(x).post(y))
        .route(
            "/b/{id}",
            get(s).delete(d).put(u),
        )
        .route(&format!("{prefix}/v/{{volume_id}}"), post(z))
        .route("/c", axum::routing::post(w))
    "#;
    let got = routes_in(src, &["/p1", "/p2"]);
    let want: Vec<(String, String)> = [
        ("GET", "/a"),
        ("POST", "/a"),
        ("GET", "/b/{id}"),
        ("PUT", "/b/{id}"),
        ("DELETE", "/b/{id}"),
        ("POST", "/p1/v/{volume_id}"),
        ("POST", "/p2/v/{volume_id}"),
        ("POST", "/c"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
}
