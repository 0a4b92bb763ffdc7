//! Middleware and extractors: request ids, token authentication, compute
//! microversions.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stratus_api::{Microversion, negotiate};
use stratus_auth::AuthContext;
use tracing::{Instrument, info};

/// The request id of the current request (`req-<uuid>`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Give every request an id, log it, and return it as
/// `x-openstack-request-id` (and `x-compute-request-id` on compute).
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let is_compute = path.starts_with("/compute");
    let span = tracing::info_span!("request", request_id = %id);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span).await;
    let status = resp.status().as_u16();
    if status >= 500 || !(method == "GET" || method == "HEAD") {
        info!(request_id = %id, %method, %path, status, ms = started.elapsed().as_millis() as u64, "request");
    } else {
        tracing::debug!(request_id = %id, %method, %path, status, ms = started.elapsed().as_millis() as u64, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HeaderName::from_static("x-openstack-request-id"), v.clone());
        if is_compute {
            resp.headers_mut().insert(HeaderName::from_static("x-compute-request-id"), v);
        }
    }
    resp
}

/// The authenticated caller. Extracting it validates `X-Auth-Token` with
/// the built-in identity or the external Keystone (401 when missing,
/// unknown, revoked or expired; 503 when Keystone cannot be asked).
pub struct Auth(pub AuthContext);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
        let mut ctx = state.tokens.validate(token).await?;
        // A system reader reads every project's compute, volume and image
        // resources and changes none (Keystone's and the services' SYSTEM_READER
        // defaults); the identity API applies its own policy to it.
        if ctx.is_system_reader() && !parts.uri.path().starts_with("/identity") {
            if !(parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD) {
                return Err(ApiError::Forbidden("A system reader may not change anything.".into()));
            }
            ctx = ctx.reading_everything();
        }
        if let Some(UrlProject(p)) = parts.extensions.get::<UrlProject>()
            && *p != ctx.project_id
            && !ctx.system_scope
        {
            return Err(ApiError::BadRequest(format!(
                "Malformed request URL: URL's project_id '{p}' doesn't match Context's project_id '{}'",
                ctx.project_id
            )));
        }
        Ok(Self(ctx))
    }
}

/// The negotiated compute microversion (set by [`compute_microversion`]).
#[derive(Clone, Copy, Debug)]
pub struct Mv(pub Microversion);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Mv>().copied().unwrap_or(Mv(stratus_api::MIN_COMPUTE)))
    }
}

/// Negotiate the compute microversion; refuse bad ones (400/406) and echo
/// the chosen one in `OpenStack-API-Version` and the legacy header.
pub async fn compute_microversion(mut req: Request, next: Next) -> Response {
    let negotiated = {
        let headers = req.headers();
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        negotiate(header("openstack-api-version").as_deref(), header("x-openstack-nova-api-version").as_deref())
    };
    let mv = match negotiated {
        Ok(mv) => mv,
        Err(e) => return ApiError::from(e).into_response(),
    };
    req.extensions_mut().insert(Mv(mv));
    let mut resp = next.run(req).await;
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute {mv}")) {
        hs.insert(HeaderName::from_static("openstack-api-version"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&mv.to_string()) {
        hs.insert(HeaderName::from_static("x-openstack-nova-api-version"), v);
    }
    hs.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    resp
}

/// The project id a compute URL carried (`/compute/v2.1/{project_id}/...`):
/// it must be the token's project (checked with the token, as Nova does).
#[derive(Clone, Debug)]
pub struct UrlProject(pub String);

/// Nova serves every compute path both with and without a project id after
/// `/v2.1` (the id a hex-and-dashes segment; optional since 2.18, and old
/// catalogs still list URLs with it). Routes are written without it, so a
/// URL carrying one is rewritten before routing and the id kept for
/// [`Auth`] to compare with the token's project.
pub async fn compute_project_prefix(mut req: Request, next: Next) -> Response {
    if let Some((project, rest)) = split_project(req.uri().path()) {
        let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        let path_and_query = format!("/compute/v2.1/{rest}{query}");
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                let project = project.to_string();
                *req.uri_mut() = uri;
                req.extensions_mut().insert(UrlProject(project));
            }
        }
    }
    next.run(req).await
}

/// `(project_id, rest)` of `/compute/v2.1/{project_id}/{rest}` when the
/// segment after `/v2.1/` can only be a project id (hex digits and dashes,
/// as Nova's router requires; no collection name is spelled so).
fn split_project(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/compute/v2.1/")?;
    let (seg, tail) = rest.split_once('/')?;
    let project_like = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    (project_like && !tail.is_empty()).then_some((seg, tail))
}

#[cfg(test)]
mod tests {
    use super::split_project;

    /// Nova's `ProjectMapper` routes `/{project_id:[0-9a-f-]+}/servers` next
    /// to `/servers`: only such a segment is taken for a project id.
    #[test]
    fn only_a_hex_segment_is_a_url_project_id() {
        let p = "0123456789abcdef0123456789abcdef";
        assert_eq!(split_project(&format!("/compute/v2.1/{p}/servers/detail")), Some((p, "servers/detail")));
        assert_eq!(split_project("/compute/v2.1/servers/detail"), None);
        assert_eq!(split_project("/compute/v2.1/flavors/1"), None);
        assert_eq!(split_project(&format!("/compute/v2.1/{p}")), None);
        assert_eq!(split_project("/compute/v2.1/os-hosts/abc"), None);
    }
}
