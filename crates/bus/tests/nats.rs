//! The NATS bus keeps the trait's semantics against a real nats-server
//! (started here on a free loopback port; the test fails if it is missing).

use bytes::Bytes;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stratus_bus::{Bus, BusError, NatsBus, reply};

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn start() -> (Server, String) {
    start_on(free_port()).await
}

async fn start_on(port: u16) -> (Server, String) {
    let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nats-server is not installed: run scripts/test, which installs it");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Server(child), format!("nats://127.0.0.1:{port}"))
}

#[tokio::test]
async fn nats_bus_has_the_in_process_semantics() {
    let (_srv, url) = start().await;
    let bus = NatsBus::connect(&url).await.expect("connect");
    let err = bus.request("agent.none", Bytes::new(), Duration::from_secs(2)).await.expect_err("nobody listens");
    assert!(matches!(err, BusError::NoResponders(_)), "{err:?}");

    let mut sub = bus.subscribe("echo").await.expect("sub");
    let b2 = bus.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let _ = reply(&b2, &m, m.payload.clone()).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = bus.request("echo", Bytes::from_static(b"hi"), Duration::from_secs(2)).await.expect("reply");
    assert_eq!(&got[..], b"hi");

    let _silent = bus.subscribe("silent").await.expect("sub");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = bus.request("silent", Bytes::new(), Duration::from_millis(200)).await.expect_err("no reply");
    assert!(matches!(err, BusError::Timeout(..)), "{err:?}");
}

/// The scraped value of one series (`None`: not exposed).
fn scraped(m: &stratus_metrics::Metrics, series: &str) -> Option<f64> {
    let text = m.encode(stratus_metrics::Format::Prometheus).expect("encode");
    stratus_metrics::text::parse(&text).expect("parses").into_iter().find(|s| s.series() == series).map(|s| s.value)
}

async fn wait_for(m: &stratus_metrics::Metrics, series: &str, want: f64) {
    for _ in 0..300 {
        if scraped(m, series) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{series} never became {want} (now {:?})", scraped(m, series));
}

#[tokio::test]
async fn a_broker_restart_is_one_reconnect_and_the_bus_works_after_it() {
    let port = free_port();
    let (srv, url) = start_on(port).await;
    let metrics = stratus_metrics::Metrics::new();
    let bus = NatsBus::connect_with_metrics(&url, metrics.clone()).await.expect("connect");
    wait_for(&metrics, "stratus_nats_connected", 1.0).await;
    assert_eq!(scraped(&metrics, "stratus_nats_reconnects_total"), Some(0.0), "the first connection is no reconnect");

    drop(srv);
    wait_for(&metrics, "stratus_nats_connected", 0.0).await;
    let (_srv, _) = start_on(port).await;
    wait_for(&metrics, "stratus_nats_connected", 1.0).await;
    assert_eq!(scraped(&metrics, "stratus_nats_reconnects_total"), Some(1.0));

    let mut sub = bus.subscribe("echo.after").await.expect("sub");
    let b2 = bus.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let _ = reply(&b2, &m, m.payload.clone()).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = bus.request("echo.after", Bytes::from_static(b"again"), Duration::from_secs(2)).await.expect("reply");
    assert_eq!(&got[..], b"again");
}

/// Dropping a queue subscription leaves the group at once, as on the
/// in-process bus: its share of the requests goes to the other members
/// instead of one more being taken and lost (a controller that cannot
/// reach its database drops its agent-facing subscriptions so that the
/// others serve the agents).
#[tokio::test]
async fn a_dropped_queue_subscription_leaves_the_group_at_once() {
    let (_srv, url) = start().await;
    let bus = NatsBus::connect(&url).await.expect("connect");
    let a = bus.queue_subscribe("svc", "group").await.expect("a");
    let mut b = bus.queue_subscribe("svc", "group").await.expect("b");
    let b2 = bus.clone();
    tokio::spawn(async move {
        while let Some(m) = b.next().await {
            let _ = reply(&b2, &m, Bytes::from_static(b"b")).await;
        }
    });
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        let got = bus
            .request("svc", Bytes::new(), Duration::from_millis(500))
            .await
            .unwrap_or_else(|e| panic!("request {i} lost to the dropped member: {e}"));
        assert_eq!(&got[..], b"b");
    }
}
