//! `GET /metrics`: the process's Prometheus metrics, answered without a
//! token as scrapers expect (like Nova's and Keystone's version documents,
//! it names no tenant's resource: counts only), and the middleware that
//! counts every API request by API and status class.

use crate::error::ApiError;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stratus_metrics::{Api, Format, Metrics};

/// The `/metrics` route over `metrics`: on the API router, and alone on
/// the metrics listener of the processes without an API.
pub fn routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .with_state(metrics)
}

/// OpenMetrics text when the scraper asks for it (Prometheus does), else
/// the classic text format 0.0.4.
async fn scrape(State(m): State<Metrics>, headers: HeaderMap) -> Result<Response, ApiError> {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let body = m.scrape(format).await.map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(([(CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Count the request and how long its answer took (until the response
/// head: a streamed image body is not included).
pub async fn record(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let api = Api::of_path(req.uri().path());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    m.http_request(api, resp.status().as_u16(), started.elapsed());
    resp
}

#[cfg(test)]
mod tests {
    //! A whole cloud in one process (controller, two fake hosts, the API
    //! router) with its own metrics: each delete path the contract names is
    //! driven for real and read back through `GET /metrics`.

    use crate::AppState;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;
    use stratus_auth::AuthContext;
    use stratus_bus::{Bus, InProcessBus};
    use stratus_compute::{Agent, AgentConfig, AgentFaults};
    use stratus_controller::compute_api::{ComputeApi, ServerSpec};
    use stratus_controller::{ClusterGauges, Controller, ControllerConfig};
    use stratus_db::{Datastore, FlavorRow, QuotaLimits};
    use stratus_driver::{FakeDriver, FakeDriverConfig};
    use stratus_metrics::Metrics;
    use stratus_metrics::text::{Sample, parse};
    use stratus_types::{ServerId, VmState};
    use tokio::sync::watch;
    use tower::ServiceExt;

    struct Host {
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        faults: AgentFaults,
    }

    struct Cloud {
        ds: Datastore,
        api: ComputeApi,
        app: axum::Router,
        hosts: BTreeMap<&'static str, Host>,
        ctx: AuthContext,
        _stop: watch::Sender<bool>,
        dir: std::path::PathBuf,
    }

    impl Drop for Cloud {
        fn drop(&mut self) {
            for h in self.hosts.values() {
                let _ = h.stop.send(true);
            }
            let _ = self._stop.send(true);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn flavor() -> FlavorRow {
        FlavorRow {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            disabled: false,
            description: None,
        }
    }

    async fn cloud() -> Cloud {
        let dir = std::env::temp_dir().join(format!("stratus-metrics-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("images")).expect("mkdir");
        let ds = Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        ds.flavor_ensure(&flavor()).await.expect("flavor");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let metrics = Metrics::new();
        // Short leases: a dead host is down, and a wedged one misses its
        // deadline (min(terminate_timeout, lease_ttl)), within seconds.
        let cfg = ControllerConfig {
            lease_ttl: Duration::from_secs(3),
            lease_renew_interval: Duration::from_millis(200),
            op_poll_interval: Duration::from_millis(100),
            default_quota: QuotaLimits::UNLIMITED,
            controller_id: Some("ctl-metrics".into()),
            ..ControllerConfig::default()
        };
        let (volume, _) = crate::volume::test_service(&ds, dir.join("images"));
        let images = Arc::new(stratus_image::ImageService::new(ds.clone(), dir.join("images")));
        let (stop, stop_rx) = watch::channel(false);
        Controller::new(ds.clone(), bus.clone(), cfg.clone(), images.clone())
            .with_volumes(volume.clone())
            .with_metrics(metrics.clone())
            .start(stop_rx)
            .await
            .expect("controller");
        metrics.add_scrape_hook(Arc::new(ClusterGauges::new(ds.clone())));
        let mut hosts = BTreeMap::new();
        for host in ["compute-1", "compute-2"] {
            let driver = FakeDriver::new(FakeDriverConfig {
                spawn_delay: Duration::ZERO,
                destroy_delay: Duration::ZERO,
                power_delay: Duration::ZERO,
                state_dir: None,
            });
            let faults = AgentFaults::default();
            let acfg = AgentConfig { reap_interval: Duration::from_secs(3600), ..AgentConfig::fake(host) };
            let agent = Agent::new(bus.clone(), Arc::new(driver), acfg, faults.clone()).with_metrics(metrics.clone());
            let (tx, rx) = watch::channel(false);
            let task = tokio::spawn(agent.run(rx));
            hosts.insert(host, Host { stop: tx, task, faults });
        }
        let api = ComputeApi::new(ds.clone(), bus.clone(), cfg);
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let public_url = "http://127.0.0.1:8774".to_string();
        let state = AppState {
            tokens: stratus_auth::TokenValidator::Builtin(identity.clone()),
            identity,
            compute: api.clone(),
            bus,
            public_url,
            volume,
            images,
            metrics,
        };
        let now = chrono::Utc::now();
        let ctx = AuthContext {
            user_id: "u1".into(),
            user_name: "tester".into(),
            project_id: "p1".into(),
            project_name: "p1".into(),
            roles: vec![stratus_auth::ROLE_ADMIN.into()],
            role_ids: vec!["r1".into()],
            audit_id: "a1".into(),
            issued_at: now,
            expires_at: now + chrono::Duration::hours(1),
            system_scope: false,
            app_cred: None,
        };
        let c = Cloud { ds, api, app: crate::router(state), hosts, ctx, _stop: stop, dir };
        c.until("both hosts are up", || async {
            c.ds.service_list().await.expect("services").iter().filter(|s| s.is_up()).count() == 2
        })
        .await;
        c
    }

    impl Cloud {
        async fn until<F, Fut>(&self, what: &str, mut cond: F)
        where
            F: FnMut() -> Fut,
            Fut: std::future::Future<Output = bool>,
        {
            for _ in 0..300 {
                if cond().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("timed out waiting until {what}");
        }

        async fn set(&self, host: &str, disabled: Option<bool>, forced_down: Option<bool>) {
            let svc = self.ds.service_get_by_host(host).await.expect("service");
            self.ds.service_update(&svc.uuid, disabled, None, forced_down).await.expect("service update");
        }

        /// An ACTIVE server on `host` (the other host is disabled meanwhile).
        async fn server_on(&self, host: &str) -> ServerId {
            let other = if host == "compute-1" { "compute-2" } else { "compute-1" };
            self.set(other, Some(true), None).await;
            let spec = ServerSpec {
                name: "s".into(),
                image_id: None,
                flavor: flavor(),
                metadata: BTreeMap::new(),
                key_name: None,
                availability_zone: None,
                allocate_network: false,
                count: 1,
                volumes: vec![],
                description: None,
                tags: Vec::new(),
                user_data: None,
                requested_host: None,
                hostname: None,
                scheduler_hints: None,
                access_ips: Default::default(),
            };
            let created = self.api.create_servers(&self.ctx, &spec, "req-create").await.expect("create");
            let id = created[0].server.id;
            self.until("the server is active", || async {
                self.ds.server_get_any(&id).await.is_ok_and(|s| s.vm_state == VmState::Active)
            })
            .await;
            self.set(other, Some(false), None).await;
            let s = self.ds.server_get_any(&id).await.expect("server");
            assert_eq!(s.host.as_deref(), Some(host));
            id
        }

        async fn delete(&self, id: &ServerId) {
            self.api.delete_server(&self.ctx, &id.to_string(), "req-delete").await.expect("delete");
            self.until("the server is deleted", || async { self.ds.server_get_any(id).await.is_ok_and(|s| s.deleted) })
                .await;
        }

        /// `GET /metrics` as Prometheus sends it (`accept`), parsed.
        async fn scrape_as(&self, accept: Option<&str>) -> (String, String) {
            let mut req = Request::get("/metrics");
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            let resp = self.app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response");
            assert_eq!(resp.status(), StatusCode::OK, "a scrape needs no token");
            let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let body = to_bytes(resp.into_body(), 1 << 22).await.expect("body");
            (ct, String::from_utf8(body.to_vec()).expect("utf-8"))
        }

        async fn scrape(&self) -> Vec<Sample> {
            let (_, body) = self.scrape_as(None).await;
            parse(&body).unwrap_or_else(|e| panic!("the scrape does not parse: {e}\n{body}"))
        }
    }

    fn value(samples: &[Sample], series: &str) -> f64 {
        samples.iter().find(|s| s.series() == series).map(|s| s.value).unwrap_or_else(|| panic!("no {series}"))
    }

    fn deletes(samples: &[Sample], path: &str) -> f64 {
        value(samples, &format!("stratus_deletes_total{{path=\"{path}\"}}"))
    }

    /// Issue 9: deletes by the path taken (the delete contract's decision
    /// tree: `docs/architecture.md`), read from a real scrape.
    #[tokio::test]
    async fn each_delete_path_is_counted_once_and_scraped() {
        let c = cloud().await;
        let mut a = Vec::new();
        for _ in 0..4 {
            a.push(c.server_on("compute-1").await);
        }
        let b = c.server_on("compute-2").await;

        // Healthy host: its agent destroys the VM.
        c.delete(&a[0]).await;
        let s = c.scrape().await;
        assert_eq!(deletes(&s, "remote"), 1.0);
        assert_eq!(deletes(&s, "deadline") + deletes(&s, "down") + deletes(&s, "no_responder"), 0.0);

        // Acknowledged but never finished: the deadline (min(terminate_timeout, lease_ttl)) escalates.
        c.hosts["compute-1"].faults.set_executor_wedged(true);
        c.delete(&a[1]).await;
        c.hosts["compute-1"].faults.set_executor_wedged(false);
        assert_eq!(deletes(&c.scrape().await, "deadline"), 1.0);

        // The agent process is gone while its lease still holds: no responder.
        let h = &c.hosts["compute-1"];
        let _ = h.stop.send(true);
        c.until("the agent stopped", || async { h.task.is_finished() }).await;
        c.delete(&a[2]).await;
        assert_eq!(deletes(&c.scrape().await, "no_responder"), 1.0);

        // Its lease lapses: down. The leader's monitor marks it down once.
        c.until("compute-1's lease lapsed", || async {
            c.ds.service_get_by_host("compute-1").await.is_ok_and(|s| !s.is_up())
        })
        .await;
        c.delete(&a[3]).await;
        c.until("the monitor marked compute-1 down", || async {
            value(&c.scrape().await, "stratus_host_lease_expirations_total") == 1.0
        })
        .await;

        // An operator forces the other host down.
        c.set("compute-2", None, Some(true)).await;
        c.delete(&b).await;

        let s = c.scrape().await;
        let want = [("remote", 1.0), ("deadline", 1.0), ("no_responder", 1.0), ("down", 1.0), ("forced_down", 1.0)];
        for (path, n) in want {
            assert_eq!(deletes(&s, path), n, "path {path}");
        }
        for path in ["refused", "host_failed", "bus_down", "unknown_host", "never_scheduled", "shelved_offloaded"] {
            assert_eq!(deletes(&s, path), 0.0, "path {path}");
        }
        assert_eq!(value(&s, "stratus_operation_duration_seconds_count{kind=\"delete\",outcome=\"done\"}"), 5.0);
        assert_eq!(value(&s, "stratus_operation_duration_seconds_count{kind=\"create\",outcome=\"done\"}"), 5.0);
        assert_eq!(value(&s, "stratus_hosts{state=\"up\"}"), 0.0);
        assert_eq!(value(&s, "stratus_hosts{state=\"down\"}"), 1.0);
        assert_eq!(value(&s, "stratus_hosts{state=\"forced_down\"}"), 1.0);
        // compute-1 never came back: the VMs of the no-responder and down deletes may still run there.
        assert!(value(&s, "stratus_zombies") >= 2.0, "zombies: {}", value(&s, "stratus_zombies"));
        assert_eq!(value(&s, "stratus_leader{holder=\"ctl-metrics\"}"), 1.0);
        assert_eq!(value(&s, "stratus_host_joins_total"), 2.0);
        assert!(value(&s, "stratus_agent_commands_total{command=\"terminate\",outcome=\"ok\"}") >= 1.0);
        assert!(value(&s, "stratus_http_requests_total{api=\"metrics\",status_class=\"2xx\"}") >= 1.0);
    }

    /// Prometheus asks for OpenMetrics and gets it; anything else gets the
    /// 0.0.4 text format. Both parse, anonymously.
    #[tokio::test]
    async fn the_scrape_negotiates_its_format_and_needs_no_token() {
        let c = cloud().await;
        let (ct, body) = c.scrape_as(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")).await;
        assert_eq!(ct, "application/openmetrics-text; version=1.0.0; charset=utf-8");
        assert!(body.ends_with("# EOF\n"), "{body}");
        parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        let (ct, body) = c.scrape_as(None).await;
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        let s = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        assert_eq!(value(&s, "stratus_hosts{state=\"up\"}"), 2.0);
        assert_eq!(value(&s, "stratus_storage_cleanup_pending"), 0.0);
    }
}
