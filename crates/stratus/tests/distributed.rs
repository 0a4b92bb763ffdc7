//! The roles as separate OS processes over NATS: `stratus api`, two
//! `stratus controller`s and a `stratus compute` agent. A controller that
//! dies mid-delete leaves its claimed operation to another controller, which
//! adopts it once the claim lapses (Nova has no such thing: weakness W5).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn another_controller_adopts_a_delete_when_the_first_dies() {
    let nats = Nats::start();
    let cloud = Cloud::start_api(&["--nats-url", &nats.url], &[]).await;
    let mut ctl_a = cloud.start_controller(
        &nats,
        &[("STRATUS_CONTROLLER_ID", "ctl-a"), ("STRATUS_OP_CLAIM_TTL", "2"), ("STRATUS_FAULTS", "before:release")],
    );
    let agent = AgentProc::start(
        "compute-1",
        &nats,
        cloud.data_dir.join("hosts").join("compute-1"),
        &[("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")],
    );
    let tok = cloud.demo().await;
    let admin = cloud.admin().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = cloud.call(&admin, Method::GET, "/compute/v2.1/os-services", None).await;
        if v["services"].as_array().is_some_and(|a| a.iter().any(|s| s["host"] == "compute-1" && s["state"] == "up")) {
            break;
        }
        assert!(Instant::now() < deadline, "compute-1 never came up: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = cloud.create_server(&tok, "adoptee").await;
    cloud.wait_status(&tok, &id, "ACTIVE", Duration::from_secs(30)).await;
    assert_eq!(agent.vms(), vec![id.clone()]);

    let (s, _) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ctl_a.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "controller A never reached its fault point");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let died = Instant::now();
    let mut ctl_b = cloud.start_controller(&nats, &[("STRATUS_CONTROLLER_ID", "ctl-b"), ("STRATUS_OP_CLAIM_TTL", "2")]);
    let took = cloud.wait_gone(&tok, &id, Duration::from_secs(30)).await;
    eprintln!("MEASURE adoption: server 404 {} ms after controller A died", died.elapsed().as_millis());
    assert!(took < Duration::from_secs(15));

    let db = cloud.db().await;
    let n: Vec<String> =
        db.notification_list_for_server(&sid(&id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{n:?}");
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{n:?}");
    assert!(agent.vms().is_empty(), "the VM was destroyed");
    let (clean, report) = cloud.audit();
    assert!(clean, "{report}");
    let _ = ctl_b.kill();
    let _ = ctl_b.wait();
}
