//! Bounds on every request: how many are served at once, and how long one
//! may take. A client that opens thousands of connections, or a request
//! stuck behind a slow backend, must not exhaust the process. Requests
//! beyond the cap wait a moment for a slot and then get a 503 with
//! `Retry-After`; a request that runs past its deadline gets a 503 too. Image
//! data transfers (`/file`) are exempt from the deadline: their length
//! depends on the image, and they are bounded by their own size limits.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The bounds of one API process.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Requests served at once.
    pub max_in_flight: usize,
    /// How long a request waits for a slot before a 503.
    pub queue_wait: Duration,
    /// How long a request (other than image data) may run before a 503.
    pub timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_in_flight: 1024, queue_wait: Duration::from_secs(5), timeout: Duration::from_secs(60) }
    }
}

fn unavailable(message: &str, retry_after: u64) -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let mut resp = (status, Json(stratus_api::nova_fault(status.as_u16(), message))).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// The middleware enforcing `limits` (add with `axum::middleware::from_fn`).
pub fn enforce(
    limits: RequestLimits,
) -> impl Fn(Request, Next) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> + Clone {
    let slots = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    move |req: Request, next: Next| {
        let slots = slots.clone();
        let limits = limits.clone();
        Box::pin(async move {
            let Ok(Ok(_permit)) = tokio::time::timeout(limits.queue_wait, slots.acquire_owned()).await else {
                tracing::warn!(path = %req.uri().path(), "request refused: too many in flight");
                return unavailable("The server is busy; retry later.", 1);
            };
            if req.uri().path().ends_with("/file") {
                return next.run(req).await;
            }
            let path = req.uri().path().to_string();
            match tokio::time::timeout(limits.timeout, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => {
                    tracing::warn!(%path, after = ?limits.timeout, "request timed out");
                    unavailable("The request took too long and was abandoned; retry later.", 1)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app(limits: RequestLimits) -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "done"
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(enforce(limits)))
    }

    fn get_req(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_a_503() {
        let limits = RequestLimits { timeout: Duration::from_millis(100), ..Default::default() };
        let r = app(limits.clone()).oneshot(get_req("/slow")).await.expect("response");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        let r = app(limits).oneshot(get_req("/fast")).await.expect("response");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_beyond_the_cap_wait_then_get_a_503() {
        let limits =
            RequestLimits { max_in_flight: 1, queue_wait: Duration::from_millis(50), timeout: Duration::from_secs(5) };
        let app = app(limits);
        let busy = tokio::spawn(app.clone().oneshot(get_req("/slow")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = app.clone().oneshot(get_req("/fast")).await.expect("response");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "no slot within the wait");
        assert_eq!(busy.await.expect("join").expect("response").status(), StatusCode::OK);
        let r = app.oneshot(get_req("/fast")).await.expect("response");
        assert_eq!(r.status(), StatusCode::OK, "a slot is free again");
    }
}
