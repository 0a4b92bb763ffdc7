//! The leader's leases when its own bus link fails: the silence is the
//! leader's, not the hosts', so nobody is convicted while it lasts, and every
//! lease runs a full term from the reconnection. (Nova has no such rule: its
//! `servicegroup` DB driver reads the heartbeat row; the closest behaviour is
//! that a host is "down" only once `service_down_time` passed since its last
//! recorded report.)

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratus_bus::{Bus, BusError, InProcessBus, Subscription};
use stratus_controller::{Controller, ControllerConfig};
use stratus_db::{Datastore, HostCapacity};
use stratus_image::ImageService;
use tokio::sync::watch;

/// The in-process bus with a link an operator of the test can cut.
struct CuttableBus {
    inner: InProcessBus,
    link: watch::Sender<bool>,
}

#[async_trait]
impl Bus for CuttableBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish(subject, payload).await
    }
    async fn publish_with_reply(&self, subject: &str, reply_to: &str, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish_with_reply(subject, reply_to, payload).await
    }
    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        self.inner.subscribe(subject).await
    }
    async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription, BusError> {
        self.inner.queue_subscribe(subject, group).await
    }
    async fn unsubscribe_all(&self, subject: &str) -> Result<(), BusError> {
        self.inner.unsubscribe_all(subject).await
    }
    fn link(&self) -> watch::Receiver<bool> {
        self.link.subscribe()
    }
}

async fn is_up(ds: &Datastore, host: &str) -> bool {
    ds.service_get_by_host(host).await.is_ok_and(|s| s.is_up())
}

/// A host joins and never renews (its agent is gone). With the leader's bus
/// link cut before its lease ends, it stays up for three leases; once the
/// link is back it gets a full lease from the reconnection and is marked
/// down after it, not before.
#[tokio::test]
async fn a_leader_cut_off_from_the_bus_convicts_nobody_and_extends_leases_on_reconnection() {
    let dir = std::env::temp_dir().join(format!("stratus-leases-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (ds, _db) = stratus_db::testing::fresh(Arc::new(stratus_types::SystemClock)).await;
    let (link, _) = watch::channel(true);
    let bus = Arc::new(CuttableBus { inner: InProcessBus::new(), link });
    let lease = Duration::from_millis(1500);
    let cfg = ControllerConfig {
        lease_ttl: lease,
        lease_renew_interval: Duration::from_millis(200),
        leader_ttl: Duration::from_millis(600),
        ..ControllerConfig::default()
    };
    let images = Arc::new(ImageService::new(ds.clone(), dir.join("images")));
    let ctl = Controller::new(ds.clone(), bus.clone(), cfg, images);
    let (stop, stop_rx) = watch::channel(false);
    ctl.start_services(stop_rx).await.expect("controller services");

    let cap = HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
    let ttl = chrono::Duration::milliseconds(1500);
    ds.service_join("h1", cap, ttl).await.expect("join");
    // Control: a host with no renewals is convicted about one lease later.
    ds.service_join("h0", cap, ttl).await.expect("join");
    let t0 = Instant::now();
    while is_up(&ds, "h0").await {
        assert!(t0.elapsed() < Duration::from_secs(10), "a host that never renews is marked down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // h1 joined with h0: cut the leader's link before h1's lease could run out.
    ds.service_join("h1", cap, ttl).await.expect("rejoin: a fresh lease");
    bus.link.send_replace(false);
    tokio::time::sleep(lease * 3).await;
    assert!(is_up(&ds, "h1").await, "convicted while the leader could not hear it");

    // Back: a full lease from the reconnection, then down.
    bus.link.send_replace(true);
    let back = Instant::now();
    while is_up(&ds, "h1").await {
        assert!(back.elapsed() < Duration::from_secs(10), "marked down once a lease passed after the reconnection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = back.elapsed();
    assert!(took >= lease - Duration::from_millis(100), "convicted {took:?} after the reconnection, within one lease");
    let _ = stop.send(true);
    let _ = std::fs::remove_dir_all(&dir);
}
