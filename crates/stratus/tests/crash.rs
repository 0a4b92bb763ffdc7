//! Crash safety of delete: the process is killed at every step (fault points
//! in the API, the operation runner and the agent), restarted, and the
//! delete must still finish exactly once with nothing leaked.
//!
//! Nova's weakness W5 (API crash mid-delete leaves a server that looks like
//! it is deleting while nothing acts on it) is what this guards against.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

/// DELETE the server while the process is set to abort at `faults[0]`, wait
/// for it to die there, restart it, and retry the DELETE if the first one
/// got no answer (as a client whose request died would); once per fault of
/// `faults` in turn: each restart is set to
/// abort at the next one (a crash during the recovery from the previous
/// crash), the last restart at none. A DELETE that got no answer is sent
/// again after each restart, as a client would.
async fn delete_through_crashes(cloud: &mut Cloud, tok: &str, id: &str, faults: &[&str]) {
    let send = |cloud: &Cloud| {
        cloud.http.delete(format!("{}/compute/v2.1/servers/{id}", cloud.url)).header("X-Auth-Token", tok).send()
    };
    let r = send(cloud).await;
    let mut answered = matches!(&r, Ok(resp) if resp.status() == StatusCode::NO_CONTENT);
    for (i, fault) in faults.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cloud.exited() {
            assert!(Instant::now() < deadline, "fault point {fault} was never reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cloud.env.retain(|(k, _)| k != "STRATUS_FAULTS");
        if let Some(next) = faults.get(i + 1) {
            cloud.env.push(("STRATUS_FAULTS".into(), (*next).into()));
        }
        cloud.restart().await;
        if !answered {
            match send(cloud).await {
                Ok(resp) => {
                    let s = resp.status();
                    assert!(s == StatusCode::NO_CONTENT || s == StatusCode::NOT_FOUND, "{fault}: retry got {s}");
                    answered = true;
                }
                // The next fault point killed the process before it answered.
                Err(_) if i + 1 < faults.len() => {}
                Err(e) => panic!("{fault}: retry failed: {e}"),
            }
        }
    }
}

async fn crash_at(fault: &str) {
    crash_at_each(&[fault]).await;
}

/// [`crash_at`], crashing at each of `faults` in turn (see [`delete_through_crashes`]).
async fn crash_at_each(faults: &[&str]) {
    let fault = faults.join(" then ");
    let fault = fault.as_str();
    let mut cloud =
        Cloud::start_with(&[("STRATUS_FAULTS", faults[0]), ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")])
            .await;
    let tok = cloud.demo().await;
    let id = cloud.create_server(&tok, "crashy").await;
    cloud.wait_status(&tok, &id, "ACTIVE", Duration::from_secs(30)).await;

    // The DELETE may or may not get its answer before the process dies.
    delete_through_crashes(&mut cloud, &tok, &id, faults).await;
    let took = cloud.wait_gone(&tok, &id, Duration::from_secs(30)).await;
    eprintln!("MEASURE crash at {fault}: 404 {} ms after restart", took.as_millis());

    let db = cloud.db().await;
    let n: Vec<String> =
        db.notification_list_for_server(&sid(&id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{fault}: {n:?}");
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{fault}: {n:?}");
    let actions = db.action_list(&sid(&id)).await.expect("actions");
    assert_eq!(actions.iter().filter(|a| a.action == "delete").count(), 1, "{fault}: one delete action");
    assert!(db.op_list_open().await.expect("ops").is_empty(), "{fault}: no operation left open");
    // VMs and zombies converge: the restarted agents reap what should not run.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let vms = [cloud.vms("compute-1"), cloud.vms("compute-2")].concat();
        let zombies = db.zombie_list(None).await.expect("zombies");
        if vms.is_empty() && zombies.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{fault}: leftovers: vms {vms:?} zombies {zombies:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, lim) = cloud.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 0);
    let (clean, report) = cloud.audit();
    assert!(clean, "{fault}: {report}");
}

macro_rules! crash_tests {
    ($($name:ident => $fault:literal,)+) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                crash_at($fault).await;
            }
        )+
    };
}

crash_tests! {
    crash_in_api_before_recording_the_delete => "api:before:delete",
    crash_in_api_after_recording_the_delete => "api:after:delete",
    crash_in_controller_before_terminate => "before:terminate",
    crash_in_controller_after_terminate => "after:terminate",
    crash_in_controller_before_release => "before:release",
    crash_in_controller_after_release => "after:release",
    crash_in_agent_before_destroy => "agent:before:terminate",
    crash_in_agent_after_destroy => "agent:after:terminate",
}

/// The fenced local path (host forced down) of a volume-backed server,
/// killed at each of its steps: after a restart the delete still finishes
/// once, the root volume is gone, nothing is left attached.
async fn crash_on_local_path_at(fault: &str) {
    crash_on_local_path_at_each(&[fault]).await;
}

/// [`crash_on_local_path_at`], crashing at each of `faults` in turn (see
/// [`delete_through_crashes`]).
async fn crash_on_local_path_at_each(faults: &[&str]) {
    let fault = faults.join(" then ");
    let fault = fault.as_str();
    let mut cloud =
        Cloud::start_with(&[("STRATUS_FAULTS", faults[0]), ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")])
            .await;
    let tok = cloud.demo().await;
    let admin = cloud.admin().await;
    let image = cloud.cirros(&tok).await;
    let bdm = serde_json::json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}]);
    let (s, v) = cloud
        .call(&tok, Method::POST, "/compute/v2.1/servers", Some(serde_json::json!({"server": {"name": "bfv", "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bdm}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    let shown = cloud.wait_status(&tok, &id, "ACTIVE", Duration::from_secs(30)).await;
    let root = shown["server"]["os-extended-volumes:volumes_attached"][0]["id"].as_str().expect("root").to_string();
    let (_, v) = cloud.call(&admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
    let host = v["server"]["OS-EXT-SRV-ATTR:host"].as_str().expect("host").to_string();
    cloud.force_down(&admin, &host, true).await;

    delete_through_crashes(&mut cloud, &tok, &id, faults).await;
    cloud.wait_gone(&tok, &id, Duration::from_secs(30)).await;
    let (s, _) = cloud.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{fault}: root volume deleted");
    let db = cloud.db().await;
    assert!(db.attachment_list_for_server(&sid(&id)).await.expect("atts").is_empty(), "{fault}: nothing left attached");
    let n: Vec<String> =
        db.notification_list_for_server(&sid(&id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{fault}: {n:?}");
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{fault}: {n:?}");
    assert!(db.op_list_open().await.expect("ops").is_empty(), "{fault}: no operation left open");
    // The operator brings the host back: the zombie is reaped and the fence lifted.
    let admin = cloud.admin().await;
    cloud.force_down(&admin, &host, false).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !db.zombie_list(None).await.expect("z").is_empty() || !db.cleanup_pending().await.expect("q").is_empty() {
        assert!(Instant::now() < deadline, "{fault}: zombie or cleanup left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (clean, report) = cloud.audit();
    assert!(clean, "{fault}: {report}");
}

macro_rules! local_crash_tests {
    ($($name:ident => $fault:literal,)+) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                crash_on_local_path_at($fault).await;
            }
        )+
    };
}

local_crash_tests! {
    crash_before_local_delete => "before:local_delete",
    crash_before_fence => "before:fence",
    crash_after_fence => "after:fence",
    crash_before_volumes => "before:volumes",
    crash_after_volumes => "after:volumes",
    crash_before_local_release => "before:release",
}

/// Crashes during the recovery from a crash (issue 13): the process dies at
/// one step, and the restarted one dies again at a later step of the
/// resumed delete (re-running the idempotent steps in between); the third
/// process finishes it, once, with nothing leaked.
#[tokio::test(flavor = "multi_thread")]
async fn crash_twice_remote_after_terminate_then_before_release() {
    crash_at_each(&["after:terminate", "before:release"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_twice_remote_in_agent_then_in_controller() {
    crash_at_each(&["agent:before:terminate", "after:terminate"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_twice_local_before_fence_then_after_volumes() {
    crash_on_local_path_at_each(&["before:fence", "after:volumes"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_twice_local_after_fence_then_before_release() {
    crash_on_local_path_at_each(&["after:fence", "before:release"]).await;
}

/// Durability of acknowledgements: a batch of DELETEs is fired at once and
/// the process is SIGKILLed as soon as some of them got their 204. After a
/// restart every acknowledged delete is still recorded (its instance action
/// and operation exist) and finishes exactly once; the unacknowledged ones
/// may or may not have been recorded, and a retried DELETE finishes them.
/// (Nova: a 204 means the delete is recorded, `task_state=deleting`, before
/// the API answers; here the record is also flushed to disk first.)
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_deletes_survive_a_sigkill() {
    const SERVERS: usize = 24;
    const KILL_AFTER: usize = 6;
    let mut cloud = Cloud::start_with(&[("STRATUS_QUOTA_INSTANCES", "-1"), ("STRATUS_QUOTA_CORES", "-1")]).await;
    let tok = cloud.demo().await;
    let mut ids = Vec::new();
    for i in 0..SERVERS {
        ids.push(cloud.create_server(&tok, &format!("acked-{i}")).await);
    }
    for id in &ids {
        cloud.wait_status(&tok, id, "ACTIVE", Duration::from_secs(60)).await;
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for id in ids.clone() {
        let (http, url, tok, tx) = (cloud.http.clone(), cloud.url.clone(), tok.clone(), tx.clone());
        tokio::spawn(async move {
            let r = http.delete(format!("{url}/compute/v2.1/servers/{id}")).header("X-Auth-Token", tok).send().await;
            let _ = tx.send((id, r.map(|r| r.status()).ok()));
        });
    }
    drop(tx);
    let mut acked = Vec::new();
    while let Some((id, status)) = rx.recv().await {
        if status == Some(StatusCode::NO_CONTENT) {
            acked.push(id);
            if acked.len() == KILL_AFTER {
                cloud.kill();
            }
        }
    }
    // Responses that raced the kill and still arrived are acknowledged too.
    assert!(acked.len() >= KILL_AFTER, "only {} deletes acknowledged", acked.len());
    eprintln!("MEASURE sigkill: {} of {SERVERS} deletes acknowledged before/at the kill", acked.len());

    cloud.restart().await;
    let db = cloud.db().await;
    for id in &acked {
        let actions = db.action_list(&sid(id)).await.expect("actions");
        assert_eq!(actions.iter().filter(|a| a.action == "delete").count(), 1, "{id}: acknowledged delete lost");
    }
    for id in &acked {
        cloud.wait_gone(&tok, id, Duration::from_secs(30)).await;
    }
    // A client retries the ones that got no answer.
    for id in ids.iter().filter(|i| !acked.contains(i)) {
        let (s, v) = cloud.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
        assert!(s == StatusCode::NO_CONTENT || s == StatusCode::NOT_FOUND, "{id}: retry got {s} {v}");
        cloud.wait_gone(&tok, id, Duration::from_secs(30)).await;
    }
    for id in &ids {
        let n: Vec<String> =
            db.notification_list_for_server(&sid(id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
        assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{id}: {n:?}");
    }
    let (_, lim) = cloud.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 0);
    let (clean, report) = cloud.audit();
    assert!(clean, "{report}");
}
