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
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(versions_doc(&state.public_url)),
    )
        .into_response()
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
        let malformed = || {
            ApiError::BadRequest(format!(
                "Invalid API version request string: volume {version}"
            ))
        };
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
    let requested = req
        .headers()
        .get("openstack-api-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let minor = match requested_minor(requested.as_deref()) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut resp = next.run(req).await;
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume 3.{minor}")) {
        hs.insert(HeaderName::from_static("openstack-api-version"), v);
    }
    hs.insert(
        header::VARY,
        HeaderValue::from_static("OpenStack-API-Version"),
    );
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

async fn limits(
    Auth(ctx): Auth,
    Path(project_id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    check_project(&ctx, &project_id)?;
    Ok(axum::Json(limits_doc()))
}

async fn limits_own(Auth(_ctx): Auth) -> axum::Json<Value> {
    axum::Json(limits_doc())
}

async fn list_volumes(
    Auth(ctx): Auth,
    Path(project_id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    check_project(&ctx, &project_id)?;
    Ok(axum::Json(json!({ "volumes": [] })))
}

async fn list_volumes_own(Auth(_ctx): Auth) -> axum::Json<Value> {
    axum::Json(json!({ "volumes": [] }))
}
