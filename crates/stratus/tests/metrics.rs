//! Issue 9, observability: every process serves Prometheus metrics at
//! `/metrics` (the API roles on their API listener, `controller` and
//! `compute` on `--metrics-listen`), and `--log-format json` writes one JSON
//! object per log line, carrying the request id of the API request.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use stratus_metrics::text::{Sample, parse};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// `GET url` without a token: the content type and the parsed samples.
async fn scrape(url: &str) -> (String, Vec<Sample>) {
    let r = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), StatusCode::OK, "GET {url} needs no token");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = r.text().await.expect("body");
    let samples = parse(&body).unwrap_or_else(|e| panic!("{url} does not parse: {e}\n{body}"));
    (ct, samples)
}

fn value(s: &[Sample], series: &str) -> Option<f64> {
    s.iter().find(|x| x.series() == series).map(|x| x.value)
}

/// Poll `url` until `series` reaches at least `min`.
async fn until_at_least(url: &str, series: &str, min: f64) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, s) = scrape(url).await;
        if value(&s, series).is_some_and(|v| v >= min) {
            return s;
        }
        assert!(Instant::now() < deadline, "{url}: {series} never reached {min} (now {:?})", value(&s, series));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stratus_up_serves_the_metrics_of_its_deletes() {
    let cloud = Cloud::start().await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "watched").await;
    cloud.wait_status(&tok, &id, "ACTIVE", Duration::from_secs(30)).await;
    let (st, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    cloud.wait_gone(&tok, &id, Duration::from_secs(30)).await;

    let url = format!("{}/metrics", cloud.url);
    let (ct, s) = scrape(&url).await;
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(value(&s, "stratus_deletes_total{path=\"remote\"}"), Some(1.0));
    assert_eq!(value(&s, "stratus_deletes_total{path=\"down\"}"), Some(0.0));
    assert_eq!(value(&s, "stratus_operation_duration_seconds_count{kind=\"create\",outcome=\"done\"}"), Some(1.0));
    assert_eq!(value(&s, "stratus_operation_duration_seconds_count{kind=\"delete\",outcome=\"done\"}"), Some(1.0));
    assert_eq!(value(&s, "stratus_hosts{state=\"up\"}"), Some(2.0), "the two fake hosts");
    assert_eq!(value(&s, "stratus_zombies"), Some(0.0));
    assert!(s.iter().any(|x| x.name == "stratus_leader" && x.value == 1.0), "the one controller leads");
    assert!(value(&s, "stratus_http_requests_total{api=\"compute\",status_class=\"2xx\"}").is_some_and(|v| v >= 3.0));
    assert!(value(&s, "stratus_http_requests_total{api=\"identity\",status_class=\"2xx\"}").is_some_and(|v| v >= 1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_and_compute_serve_metrics_on_their_own_listener() {
    let nats = Nats::start();
    let cloud = Cloud::start_api(&["--nats-url", &nats.url], &[]).await;
    let (ctl_port, agent_port) = (free_port(), free_port());
    let mut ctl = cloud.start_controller(
        &nats,
        &[("STRATUS_CONTROLLER_ID", "ctl-m"), ("STRATUS_METRICS_LISTEN", &format!("127.0.0.1:{ctl_port}"))],
    );
    let _agent = AgentProc::start(
        "compute-1",
        &nats,
        cloud.data_dir.join("hosts").join("compute-1"),
        &[("STRATUS_METRICS_LISTEN", &format!("127.0.0.1:{agent_port}"))],
    );
    let ctl_url = format!("http://127.0.0.1:{ctl_port}/metrics");
    let agent_url = format!("http://127.0.0.1:{agent_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(&ctl_url).await.is_err() || reqwest::get(&agent_url).await.is_err() {
        assert!(Instant::now() < deadline, "the metrics listeners never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let s = until_at_least(&ctl_url, "stratus_hosts{state=\"up\"}", 1.0).await;
    assert_eq!(value(&s, "stratus_leader{holder=\"ctl-m\"}"), Some(1.0));
    assert_eq!(value(&s, "stratus_nats_connected"), Some(1.0));
    assert!(value(&s, "stratus_host_joins_total").is_some_and(|v| v >= 1.0));

    let s = until_at_least(&agent_url, "stratus_agent_lease_renewals_total{result=\"renewed\"}", 1.0).await;
    assert_eq!(value(&s, "stratus_nats_connected"), Some(1.0));
    assert_eq!(value(&s, "stratus_nats_reconnects_total"), Some(0.0));

    // The API process serves its own on the API listener; the cluster
    // gauges are the controllers' (absent here, not a misleading 0).
    let (_, s) = scrape(&format!("{}/metrics", cloud.url)).await;
    assert_eq!(value(&s, "stratus_nats_connected"), Some(1.0));
    assert_eq!(value(&s, "stratus_zombies"), None);
    assert_eq!(value(&s, "stratus_hosts{state=\"up\"}"), None);
    let _ = ctl.kill();
    let _ = ctl.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let cloud = Cloud::start_with(&[("STRATUS_LOG_FORMAT", "json")]).await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "logged").await;
    cloud.wait_status(&tok, &id, "ACTIVE", Duration::from_secs(30)).await;
    let r = cloud
        .http
        .delete(format!("{}/compute/v2.1/servers/{id}", cloud.url))
        .header("X-Auth-Token", &tok)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let request_id = r.headers()["x-openstack-request-id"].to_str().expect("ascii").to_string();
    cloud.wait_gone(&tok, &id, Duration::from_secs(30)).await;

    let log = std::fs::read_to_string(cloud.data_dir.join("stratus.log")).expect("log");
    let mut lines = Vec::new();
    for l in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
        for key in ["timestamp", "level", "message"] {
            assert!(v[key].is_string(), "no {key} in {l}");
        }
        lines.push(v);
    }
    assert!(lines.iter().any(|v| v["message"] == "database open" && v["database"].is_string()), "fields are kept");
    // Logged inside the DELETE's handler: the request span's id rides along,
    // the same one the client got back.
    let recorded = lines
        .iter()
        .find(|v| v["message"] == "delete recorded" && v["server"] == id.as_str())
        .unwrap_or_else(|| panic!("no 'delete recorded' line for {id}:\n{log}"));
    assert_eq!(recorded["span"]["request_id"], request_id.as_str(), "{recorded}");
    assert!(recorded["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["request_id"] == request_id.as_str())));
}
