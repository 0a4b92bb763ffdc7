//! Block Storage API v3 (Cinder-compatible), mounted at `/volume`.
//!
//! Stratus has no volumes yet; this surface exists so that clients which
//! touch Block Storage as a matter of course (`openstack limits show
//! --absolute`, `openstack volume list`) get well-formed, empty answers:
//! version discovery, absolute limits with zero usage, empty volume lists.
//! Requests under `/volume/v3` negotiate the `volume` microversion.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use stratus_auth::AuthContext;

/// Highest `volume` microversion claimed (Cinder 2023.2).
const MAX_MINOR: u32 = 70;

/// Routes of Block Storage v3: version discovery, limits, volume lists.
pub fn routes(state: AppState) -> Router {
    let v3 = Router::new()
        .route("/volume/v3/{project_id}/limits", get(limits))
        .route("/volume/v3/{project_id}/volumes", get(list_volumes))
        .route("/volume/v3/{project_id}/volumes/detail", get(list_volumes))
        // Project-less URLs (Cinder 3.67+).
        .route("/volume/v3/limits", get(limits_own))
        .route("/volume/v3/volumes", get(list_volumes_own))
        .route("/volume/v3/volumes/detail", get(list_volumes_own))
        .route_layer(axum::middleware::from_fn(volume_microversion));
    Router::new()
        .route("/volume", get(versions_multiple))
        .route("/volume/", get(versions_multiple))
        .route("/volume/v3", get(versions_ok))
        .route("/volume/v3/", get(versions_ok))
        .merge(v3)
        .with_state(state)
}

/// The version list with the v3 entry; `self` points at `<public>/volume/v3/`.
fn versions_doc(public_url: &str) -> Value {
    json!({
        "versions": [{
            "id": "v3.0",
            "status": "CURRENT",
            "version": format!("3.{MAX_MINOR}"),
            "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "self", "href": format!("{public_url}/volume/v3/")}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
        }]
    })
}

async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(versions_doc(&state.public_url))).into_response()
}

async fn versions_ok(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(versions_doc(&state.public_url))).into_response()
}

/// The requested `volume` minor version from `OpenStack-API-Version`
/// (e.g. `volume 3.59`, `volume latest`; other services' entries are
/// ignored); 3.0 when absent.
fn requested_minor(header_value: Option<&str>) -> Result<u32, ApiError> {
    let Some(h) = header_value else { return Ok(0) };
    for item in h.split(',') {
        let mut parts = item.split_whitespace();
        let (Some(service), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !service.eq_ignore_ascii_case("volume") {
            continue;
        }
        if version.eq_ignore_ascii_case("latest") {
            return Ok(MAX_MINOR);
        }
        let malformed = || ApiError::BadRequest(format!("Invalid API version request string: volume {version}"));
        let (major, minor) = version.split_once('.').ok_or_else(malformed)?;
        let major: u32 = major.parse().map_err(|_| malformed())?;
        let minor: u32 = minor.parse().map_err(|_| malformed())?;
        if major != 3 || minor > MAX_MINOR {
            return Err(ApiError::NotAcceptable(format!(
                "Version {version} is not supported by the API. Minimum is 3.0 and maximum is 3.{MAX_MINOR}."
            )));
        }
        return Ok(minor);
    }
    Ok(0)
}

/// Negotiate the `volume` microversion and echo it (`OpenStack-API-Version`),
/// refusing malformed (400) and unsupported (406) requests like Cinder.
async fn volume_microversion(req: Request, next: Next) -> Response {
    let requested = req.headers().get("openstack-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let minor = match requested_minor(requested.as_deref()) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut resp = next.run(req).await;
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume 3.{minor}")) {
        hs.insert(HeaderName::from_static("openstack-api-version"), v);
    }
    hs.insert(header::VARY, HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// The project in the URL must be the caller's own, unless admin.
fn check_project(ctx: &AuthContext, project_id: &str) -> Result<(), ApiError> {
    if ctx.can_see(project_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Policy doesn't allow access to project {project_id} with a token scoped to project {}.",
            ctx.project_id
        )))
    }
}

/// Absolute limits (defaults of Cinder's quotas); usage is zero while
/// Stratus has no volumes, snapshots or backups.
fn limits_doc() -> Value {
    json!({
        "limits": {
            "rate": [],
            "absolute": {
                "totalSnapshotsUsed": 0,
                "maxTotalBackups": 10,
                "maxTotalVolumeGigabytes": 1000,
                "maxTotalSnapshots": 10,
                "maxTotalBackupGigabytes": 1000,
                "totalBackupGigabytesUsed": 0,
                "maxTotalVolumes": 10,
                "totalVolumesUsed": 0,
                "totalBackupsUsed": 0,
                "totalGigabytesUsed": 0
            }
        }
    })
}

async fn limits(Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    check_project(&ctx, &project_id)?;
    Ok(axum::Json(limits_doc()))
}

async fn limits_own(Auth(_ctx): Auth) -> axum::Json<Value> {
    axum::Json(limits_doc())
}

async fn list_volumes(Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    check_project(&ctx, &project_id)?;
    Ok(axum::Json(json!({ "volumes": [] })))
}

async fn list_volumes_own(Auth(_ctx): Auth) -> axum::Json<Value> {
    axum::Json(json!({ "volumes": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::HeaderMap;
    use std::path::PathBuf;
    use std::sync::Arc;
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
        let demo = identity
            .authenticate("demo", "pw", stratus_auth::ProjectScope::Name("demo".into()))
            .await
            .expect("demo token");
        let bus: Arc<dyn stratus_bus::Bus> = Arc::new(stratus_bus::InProcessBus::new());
        let compute = stratus_controller::compute_api::ComputeApi::new(
            ds.clone(),
            bus.clone(),
            stratus_controller::ControllerConfig::default(),
        );
        let state = AppState {
            ds,
            identity,
            compute,
            bus,
            public_url: "http://127.0.0.1:8774".into(),
            image_dir: dir.join("images"),
        };
        Env {
            state,
            admin_project: admin.context.project_id,
            admin: admin.token,
            demo_project: demo.context.project_id,
            demo: demo.token,
            _dir: TempDir(dir),
        }
    }

    async fn call(env: &Env, uri: &str, token: Option<&str>, version: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        let mut req = axum::http::Request::builder().method("GET").uri(uri);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(v) = version {
            req = req.header("openstack-api-version", v);
        }
        let resp = crate::router(env.state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
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
            assert_eq!(ver["version"], "3.70");
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
            let (s, _, v) =
                call(&env, &format!("/volume/v3/{}/{suffix}", env.demo_project), Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v, json!({"volumes": []}));
            let (s, _, v) = call(&env, &format!("/volume/v3/{suffix}"), Some(&env.demo), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v, json!({"volumes": []}));
            let (s, _, _) =
                call(&env, &format!("/volume/v3/{}/{suffix}", env.admin_project), Some(&env.demo), None).await;
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
        assert_eq!(echoed(&h).as_deref(), Some("volume 3.70"));
        let (_, h, _) = call(&env, &uri, Some(&env.demo), Some("compute 2.90")).await;
        assert_eq!(echoed(&h).as_deref(), Some("volume 3.0"));
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 3.99")).await;
        assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume 2.0")).await;
        assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
        let (s, _, _) = call(&env, &uri, Some(&env.demo), Some("volume three")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}
