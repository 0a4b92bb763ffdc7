//! Lifecycle actions and delete in every server state, each mirroring the
//! Nova behaviour named in its doc line (nova/compute/api.py `_delete` and
//! the actions' `check_instance_state` rules).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

async fn act(c: &Cloud, tok: &str, id: &str, body: Value) -> (StatusCode, Value) {
    c.call(tok, Method::POST, &format!("/compute/v2.1/servers/{id}/action"), Some(body)).await
}

async fn host_of(c: &Cloud, admin: &str, id: &str) -> Option<String> {
    let (_, v) = c.call(admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
    v["server"]["OS-EXT-SRV-ATTR:host"].as_str().map(str::to_string)
}

fn all_vms(c: &Cloud) -> Vec<String> {
    [c.vms("compute-1"), c.vms("compute-2")].concat()
}

async fn delete_and_check(c: &Cloud, tok: &str, id: &str) {
    let (s, _) = c.call(tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_gone(tok, id, T).await;
    let db = c.db().await;
    let n: Vec<String> =
        db.notification_list_for_server(&sid(id)).await.expect("n").into_iter().map(|n| n.event_type).collect();
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.start").count(), 1, "{n:?}");
    assert_eq!(n.iter().filter(|e| *e == "instance.delete.end").count(), 1, "{n:?}");
    let deadline = Instant::now() + T;
    while all_vms(c).contains(&id.to_string()) || !db.zombie_list(None).await.expect("z").is_empty() {
        assert!(Instant::now() < deadline, "copies of {id} left: {:?}", all_vms(c));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (clean, report) = c.audit();
    assert!(clean, "{report}");
}

/// Nova: DELETE is accepted in every vm_state (checklist item 3): SHUTOFF, PAUSED, SUSPENDED, ERROR.
#[tokio::test(flavor = "multi_thread")]
async fn delete_in_stopped_paused_suspended_and_error_states() {
    let c = Cloud::start_with(&[("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")]).await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    for (action, status) in
        [("os-stop", "SHUTOFF"), ("pause", "PAUSED"), ("suspend", "SUSPENDED"), ("os-resetState", "ERROR")]
    {
        let id = c.create_server(&tok, status).await;
        c.wait_status(&tok, &id, "ACTIVE", T).await;
        let (who, body) = if action == "os-resetState" {
            (&admin, json!({"os-resetState": {"state": "error"}}))
        } else {
            (&tok, json!({ action: null }))
        };
        let (s, v) = act(&c, who, &id, body).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{action}: {v}");
        c.wait_status(&tok, &id, status, T).await;
        delete_and_check(&c, &tok, &id).await;
    }
}

/// Nova: pause/unpause, suspend/resume follow check_instance_state; a wrong state is 409 with Nova's message.
#[tokio::test(flavor = "multi_thread")]
async fn pause_suspend_round_trips_and_state_conflicts() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let id = c.create_server(&tok, "ps").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"pause": null})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "PAUSED", T).await;
    assert_eq!(v["server"]["OS-EXT-STS:power_state"], 3);
    let (s, v) = act(&c, &tok, &id, json!({"pause": null})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        v["conflictingRequest"]["message"],
        format!("Cannot 'pause' instance {id} while it is in vm_state paused")
    );
    assert_eq!(act(&c, &tok, &id, json!({"unpause": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"suspend": null})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "SUSPENDED", T).await;
    assert_eq!(v["server"]["OS-EXT-STS:power_state"], 7);
    assert_eq!(act(&c, &tok, &id, json!({"confirmResize": null})).await.0, StatusCode::CONFLICT);
    assert_eq!(act(&c, &tok, &id, json!({"resume": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"pause": {"x": 1}})).await.0, StatusCode::BAD_REQUEST);
}

/// Nova: deleting a SHELVED server deletes its shelve snapshot (checklist item 8), then deletes the VM on its host.
#[tokio::test(flavor = "multi_thread")]
async fn delete_shelved_server_removes_snapshot_and_vm() {
    let c = Cloud::start_with(&[("STRATUS_SHELVED_OFFLOAD_TIME", "-1")]).await;
    let tok = c.demo().await;
    let id = c.create_server(&tok, "shelfy").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"shelve": null})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "SHELVED", T).await;
    assert_eq!(v["server"]["OS-EXT-STS:power_state"], 4);
    let (_, imgs) = c.call(&tok, Method::GET, "/image/v2/images?name=shelfy-shelved", None).await;
    let snap = imgs["images"][0]["id"].as_str().expect("shelve snapshot exists").to_string();
    assert!(all_vms(&c).contains(&id), "the VM stays on its host while shelved");
    delete_and_check(&c, &tok, &id).await;
    let (s, _) = c.call(&tok, Method::GET, &format!("/image/v2/images/{snap}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "snapshot deleted with the server");
}

/// Nova: SHELVED_OFFLOADED has no VM anywhere; delete is local; unshelve spawns from the snapshot and deletes it.
#[tokio::test(flavor = "multi_thread")]
async fn shelve_offload_unshelve_and_delete_offloaded() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "off").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"shelve": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "SHELVED_OFFLOADED", T).await;
    assert!(!all_vms(&c).contains(&id), "offloaded: no VM on any host");
    assert_eq!(host_of(&c, &admin, &id).await, None);
    assert_eq!(act(&c, &tok, &id, json!({"unshelve": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert!(all_vms(&c).contains(&id));
    let (_, imgs) = c.call(&tok, Method::GET, "/image/v2/images?name=off-shelved", None).await;
    assert!(imgs["images"].as_array().expect("list").is_empty(), "snapshot deleted on unshelve");
    assert_eq!(act(&c, &tok, &id, json!({"shelve": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "SHELVED_OFFLOADED", T).await;
    delete_and_check(&c, &tok, &id).await;
    let db = c.db().await;
    let a =
        db.action_list(&sid(&id)).await.expect("actions").into_iter().find(|a| a.action == "delete").expect("delete");
    let (_, ev) = db.action_get(&sid(&id), &a.request_id).await.expect("events");
    assert!(ev.iter().any(|e| e.details.as_deref().is_some_and(|d| d.contains("shelved offloaded"))), "{ev:?}");
}

/// Nova: RESIZED (VERIFY_RESIZE) is confirmed before the delete (checklist item 10): both hosts end clean.
#[tokio::test(flavor = "multi_thread")]
async fn resize_confirm_revert_and_delete_in_verify_resize() {
    let c = Cloud::start_with(&[("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")]).await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    // confirm
    let id = c.create_server(&tok, "grow").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let src = host_of(&c, &admin, &id).await.expect("host");
    assert_eq!(
        act(&c, &tok, &id, json!({"resize": {"flavorRef": "1"}})).await.0,
        StatusCode::BAD_REQUEST,
        "same flavor"
    );
    assert_eq!(act(&c, &tok, &id, json!({"resize": {"flavorRef": "2"}})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "VERIFY_RESIZE", T).await;
    assert_eq!(v["server"]["flavor"]["id"], "2");
    let dst = host_of(&c, &admin, &id).await.expect("host");
    assert_ne!(src, dst);
    assert!(c.vms(&src).contains(&id) && c.vms(&dst).contains(&id), "copies on both hosts until confirmed");
    let (s, _) = act(&c, &tok, &id, json!({"confirmResize": null})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert!(!c.vms(&src).contains(&id) && c.vms(&dst).contains(&id), "source cleaned on confirm");
    // revert
    assert_eq!(act(&c, &tok, &id, json!({"resize": {"flavorRef": "3"}})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "VERIFY_RESIZE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"revertResize": null})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(v["server"]["flavor"]["id"], "2", "revert restores the old flavor");
    assert_eq!(host_of(&c, &admin, &id).await.as_deref(), Some(dst.as_str()));
    assert_eq!(all_vms(&c), vec![id.clone()], "destination copy removed on revert");
    // delete while VERIFY_RESIZE
    assert_eq!(act(&c, &tok, &id, json!({"resize": {"flavorRef": "1"}})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "VERIFY_RESIZE", T).await;
    assert_eq!(all_vms(&c).len(), 2);
    delete_and_check(&c, &tok, &id).await;
    assert!(all_vms(&c).is_empty(), "both hosts cleaned");
}

/// Nova: a resize reverts to the server's own copy of its old flavor even
/// when that flavor was deleted meanwhile (Tempest's
/// test_resize_server_revert_deleted_flavor; Nova keeps `instance.old_flavor`).
#[tokio::test(flavor = "multi_thread")]
async fn a_resize_reverts_after_its_old_flavor_was_deleted() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let flavor = json!({"flavor": {"name": "short-lived", "ram": 512, "disk": 1, "vcpus": 1, "swap": 64}});
    let (s, v) = c.call(&admin, Method::POST, "/compute/v2.1/flavors", Some(flavor)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fid = v["flavor"]["id"].as_str().expect("flavor id").to_string();
    let image = c.cirros(&tok).await;
    let body = json!({"server": {"name": "orphan-flavor", "imageRef": image, "flavorRef": fid}});
    let (s, v) = c.call(&tok, Method::POST, "/compute/v2.1/servers", Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let (s, _) = c.call(&admin, Method::DELETE, &format!("/compute/v2.1/flavors/{fid}"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(act(&c, &tok, &id, json!({"resize": {"flavorRef": "2"}})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "VERIFY_RESIZE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"revertResize": null})).await.0, StatusCode::ACCEPTED);
    let v = c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(v["server"]["flavor"]["id"], fid.as_str(), "the deleted flavor is the server's again: {v}");
    let r = c
        .http
        .get(format!("{}/compute/v2.1/servers/{id}", c.url))
        .header("X-Auth-Token", &tok)
        .header("OpenStack-API-Version", "compute 2.47")
        .send()
        .await
        .expect("show");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["server"]["flavor"]["original_name"], "short-lived", "{v}");
    assert_eq!(v["server"]["flavor"]["swap"], 64, "{v}");
    delete_and_check(&c, &tok, &id).await;
}

/// Nova bug 1848666 class: a delete during a migration wins, and no copy is left on either host.
#[tokio::test(flavor = "multi_thread")]
async fn delete_during_migration() {
    let c = Cloud::start_with(&[
        ("STRATUS_FAKE_SPAWN_DELAY", "2"),
        ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1"),
    ])
    .await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "mover").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &admin, &id, json!({"migrate": null})).await.0, StatusCode::ACCEPTED);
    assert_eq!(
        act(&c, &tok, &id, json!({"migrate": null})).await.0,
        StatusCode::FORBIDDEN,
        "cold migration is admin-only"
    );
    let deadline = Instant::now() + T;
    loop {
        let (_, v) = c.call(&admin, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
        if v["server"]["OS-EXT-STS:task_state"] == "resize_migrating" {
            assert_eq!(v["server"]["status"], "RESIZE");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    delete_and_check(&c, &tok, &id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(all_vms(&c).is_empty(), "no copy left after the interrupted spawn: {:?}", all_vms(&c));
}

/// Nova: a locked server refuses DELETE from its owner (409) but not from an admin; an admin lock cannot be lifted by the owner.
#[tokio::test(flavor = "multi_thread")]
async fn locked_server_delete_rules() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "locked").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"lock": null})).await.0, StatusCode::ACCEPTED);
    let (s, _) = c.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let r = c
        .http
        .get(format!("{}/compute/v2.1/servers/{id}", c.url))
        .header("X-Auth-Token", &tok)
        .header("OpenStack-API-Version", "compute 2.9")
        .send()
        .await
        .expect("get");
    assert_eq!(r.json::<Value>().await.expect("json")["server"]["locked"], true);
    let (s, v) = c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["conflictingRequest"]["message"], format!("Instance {id} is locked"));
    assert_eq!(act(&c, &tok, &id, json!({"os-stop": null})).await.0, StatusCode::CONFLICT);
    assert_eq!(act(&c, &tok, &id, json!({"unlock": null})).await.0, StatusCode::ACCEPTED);
    assert_eq!(act(&c, &admin, &id, json!({"lock": null})).await.0, StatusCode::ACCEPTED);
    assert_eq!(
        act(&c, &tok, &id, json!({"unlock": null})).await.0,
        StatusCode::FORBIDDEN,
        "owner cannot lift an admin lock"
    );
    delete_and_check(&c, &admin, &id).await;
}

/// Nova: with reclaim_instance_interval > 0, DELETE soft-deletes; restore brings it back; forceDelete and the reclaim periodic delete for real.
#[tokio::test(flavor = "multi_thread")]
async fn soft_delete_restore_force_delete_and_reclaim() {
    let c = Cloud::start_with(&[
        ("STRATUS_RECLAIM_INSTANCE_INTERVAL", "2"),
        ("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1"),
    ])
    .await;
    let tok = c.demo().await;
    let id = c.create_server(&tok, "soft").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(
        c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    let v = c.wait_status(&tok, &id, "SOFT_DELETED", T).await;
    assert_eq!(v["server"]["OS-EXT-STS:power_state"], 4);
    assert_eq!(act(&c, &tok, &id, json!({"restore": null})).await.0, StatusCode::ACCEPTED);
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(
        act(&c, &tok, &id, json!({"restore": null})).await.0,
        StatusCode::CONFLICT,
        "restore only from SOFT_DELETED"
    );
    // forceDelete a soft-deleted server
    assert_eq!(
        c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    c.wait_status(&tok, &id, "SOFT_DELETED", T).await;
    assert_eq!(act(&c, &tok, &id, json!({"forceDelete": null})).await.0, StatusCode::ACCEPTED);
    c.wait_gone(&tok, &id, T).await;
    // reclaim after the interval
    let id2 = c.create_server(&tok, "soft2").await;
    c.wait_status(&tok, &id2, "ACTIVE", T).await;
    assert_eq!(
        c.call(&tok, Method::DELETE, &format!("/compute/v2.1/servers/{id2}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    c.wait_status(&tok, &id2, "SOFT_DELETED", T).await;
    let took = c.wait_gone(&tok, &id2, T).await;
    assert!(took >= Duration::from_millis(1500), "reclaimed only after the interval ({took:?})");
    let deadline = Instant::now() + T;
    while !all_vms(&c).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", all_vms(&c));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, lim) = c.call(&tok, Method::GET, "/compute/v2.1/limits", None).await;
    assert_eq!(lim["limits"]["absolute"]["totalInstancesUsed"], 0);
    let (clean, report) = c.audit();
    assert!(clean, "{report}");
}

/// Nova bug 1914777: concurrent DELETEs both succeed (204); Stratus records one operation and one notification pair.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deletes_from_two_clients() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "twice").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let path = format!("/compute/v2.1/servers/{id}");
    let (a, b) = tokio::join!(c.call(&tok, Method::DELETE, &path, None), c.call(&admin, Method::DELETE, &path, None));
    assert_eq!((a.0, b.0), (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT));
    delete_and_check(&c, &tok, &id).await;
    let db = c.db().await;
    assert_eq!(db.action_list(&sid(&id)).await.expect("a").iter().filter(|a| a.action == "delete").count(), 1);
}

/// Nova: evacuate is refused (400) while the source host is up; from a forced-down host it rebuilds elsewhere, and the source reaps its copy when back.
#[tokio::test(flavor = "multi_thread")]
async fn evacuate_from_a_down_host() {
    let c = Cloud::start_with(&[("STRATUS_RUNNING_DELETED_INSTANCE_POLL_INTERVAL", "1")]).await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "evac").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let src = host_of(&c, &admin, &id).await.expect("host");
    let (s, v) = act(&c, &admin, &id, json!({"evacuate": {"onSharedStorage": false}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    c.force_down(&admin, &src, true).await;
    let (s, v) = act(&c, &admin, &id, json!({"evacuate": {"onSharedStorage": false}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["adminPass"].is_string());
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let dst = host_of(&c, &admin, &id).await.expect("host");
    assert_ne!(dst, src);
    c.force_down(&admin, &src, false).await;
    let deadline = Instant::now() + T;
    let db = c.db().await;
    while c.vms(&src).contains(&id) || !db.zombie_list(None).await.expect("z").is_empty() {
        assert!(Instant::now() < deadline, "source copy not reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.vms(&dst).contains(&id));
    delete_and_check(&c, &tok, &id).await;
}

/// Nova (`compute/api.py` `detach_volume`: `check_instance_state`, whose
/// task_state must be None): a volume is not detached while its server is
/// being evacuated (409). Found by the nemesis: a detach sent to the
/// evacuation's destination, which held nothing yet, released the volume,
/// and the evacuation then opened it there, writing to a released volume.
#[tokio::test(flavor = "multi_thread")]
async fn detach_is_refused_while_the_server_is_evacuated() {
    // A slow spawn keeps the evacuation in task_state rebuilding a while.
    let c = Cloud::start_with(&[("STRATUS_FAKE_SPAWN_DELAY", "3")]).await;
    let tok = c.demo().await;
    let admin = c.admin().await;
    let id = c.create_server(&tok, "evac-vol").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let (s, v) =
        c.call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "name": "data"}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vol = v["volume"]["id"].as_str().expect("id").to_string();
    c.wait_volume(&tok, &vol, "available", T).await;
    let attachments = format!("/compute/v2.1/servers/{id}/os-volume_attachments");
    let (s, v) = c.call(&tok, Method::POST, &attachments, Some(json!({"volumeAttachment": {"volumeId": vol}}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    c.wait_volume(&tok, &vol, "in-use", T).await;
    let src = host_of(&c, &admin, &id).await.expect("host");
    c.force_down(&admin, &src, true).await;
    let (s, v) = act(&c, &admin, &id, json!({"evacuate": {"onSharedStorage": false}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Once the server is placed on its new host (an up host), the spawn
    // there still running: the window the nemesis hit.
    let deadline = Instant::now() + T;
    while host_of(&c, &admin, &id).await.as_deref() == Some(src.as_str()) {
        assert!(Instant::now() < deadline, "never placed elsewhere");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, v) = c.call(&tok, Method::DELETE, &format!("{attachments}/{vol}"), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "detach during the evacuation: {v}");
    assert!(v["conflictingRequest"]["message"].as_str().unwrap_or("").contains("task_state rebuilding"), "{v}");
    // The evacuation moves the volume with the server: still attached, on the new host.
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let (_, v) = c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{vol}"), None).await;
    assert_eq!(v["volume"]["status"], "in-use", "{v}");
    assert_ne!(host_of(&c, &admin, &id).await.expect("host"), src);
    c.force_down(&admin, &src, false).await;
}

/// Nova: createImage returns 202 with a Location header (below 2.45) and the snapshot appears in the image service.
#[tokio::test(flavor = "multi_thread")]
async fn create_image_makes_a_snapshot() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let id = c.create_server(&tok, "snap").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let r = c
        .http
        .post(format!("{}/compute/v2.1/servers/{id}/action", c.url))
        .header("X-Auth-Token", &tok)
        .json(&json!({"createImage": {"name": "snap-1", "metadata": {"k": "v"}}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers().get("location").and_then(|l| l.to_str().ok()).expect("Location").to_string();
    let image_id = loc.rsplit('/').next().expect("id").to_string();
    let deadline = Instant::now() + T;
    loop {
        let (s, v) = c.call(&tok, Method::GET, &format!("/image/v2/images/{image_id}"), None).await;
        if s == StatusCode::OK {
            assert_eq!(v["name"], "snap-1");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait_status(&tok, &id, "ACTIVE", T).await;
}

/// Nova's API creates the snapshot image before it answers createImage, so a
/// client that follows the Location at once (the openstack CLI, Tempest's
/// create_server_snapshot) finds it rather than a 404.
#[tokio::test(flavor = "multi_thread")]
async fn create_image_location_is_found_at_once() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    // One snapshot per server: a second one on the same server is a 409
    // while the first is in progress, as in Nova.
    for n in 0..3 {
        let id = c.create_server(&tok, &format!("snap-now-{n}")).await;
        c.wait_status(&tok, &id, "ACTIVE", T).await;
        let r = c
            .http
            .post(format!("{}/compute/v2.1/servers/{id}/action", c.url))
            .header("X-Auth-Token", &tok)
            .json(&json!({"createImage": {"name": format!("now-{n}")}}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = r.headers().get("location").and_then(|l| l.to_str().ok()).expect("Location").to_string();
        let image_id = loc.rsplit('/').next().expect("id").to_string();
        let (s, v) = c.call(&tok, Method::GET, &format!("/image/v2/images/{image_id}"), None).await;
        assert_eq!(s, StatusCode::OK, "snapshot {n} not there at once: {v}");
        assert_eq!(v["name"], format!("now-{n}"));
    }
}

/// Nova checklist item 6: a server that never got a host is destroyed directly (no host to ask, nothing to fence).
#[tokio::test(flavor = "multi_thread")]
async fn delete_never_scheduled_server() {
    let c = Cloud::start_with_args(&["--fake-hosts", "0"], &[]).await;
    let tok = c.demo().await;
    let id = c.create_server(&tok, "homeless").await;
    let v = c.wait_status(&tok, &id, "ERROR", T).await;
    assert_eq!(v["server"]["fault"]["message"], "No valid host was found. There are not enough hosts available.");
    delete_and_check(&c, &tok, &id).await;
    let db = c.db().await;
    let a =
        db.action_list(&sid(&id)).await.expect("actions").into_iter().find(|a| a.action == "delete").expect("delete");
    let (_, ev) = db.action_get(&sid(&id), &a.request_id).await.expect("events");
    assert!(ev.iter().any(|e| e.details.as_deref().is_some_and(|d| d.contains("never scheduled"))), "{ev:?}");
    assert!(db.zombie_list(None).await.expect("z").is_empty(), "nothing can run anywhere: no zombie");
}

/// Nova's `source_type: snapshot, destination_type: volume` mapping: the
/// root volume is made from the Cinder snapshot, sized after it, carries
/// its source volume's image, and goes with the server when
/// `delete_on_termination`; another project's snapshot is Nova's
/// `InvalidBDMSnapshot` 400.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_boots_from_a_volume_snapshot() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let image = c.cirros(&tok).await;
    let (s, v) =
        c.call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 2, "imageRef": image}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let source = v["volume"]["id"].as_str().expect("id").to_string();
    c.wait_volume(&tok, &source, "available", T).await;
    let (s, v) = c
        .call(&tok, Method::POST, "/volume/v3/snapshots", Some(json!({"snapshot": {"volume_id": source, "name": "s"}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let snap = v["snapshot"]["id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + T;
    while c.call(&tok, Method::GET, &format!("/volume/v3/snapshots/{snap}"), None).await.1["snapshot"]["status"]
        != "available"
    {
        assert!(Instant::now() < deadline, "snapshot never available");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let bdm = json!([{"boot_index": 0, "uuid": snap, "source_type": "snapshot", "destination_type": "volume", "delete_on_termination": true}]);
    let body =
        json!({"server": {"name": "from-snap", "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bdm}});
    let (s, v) = c.call(&tok, Method::POST, "/compute/v2.1/servers", Some(body.clone())).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    let shown = c.wait_status(&tok, &id, "ACTIVE", T).await;
    assert_eq!(shown["server"]["image"], "", "volume-backed: {shown}");
    let (_, atts) = c.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{id}/os-volume_attachments"), None).await;
    let root = atts["volumeAttachments"][0]["volumeId"].as_str().expect("root volume").to_string();
    let (_, rv) = c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(rv["volume"]["snapshot_id"], snap, "{rv}");
    assert_eq!(rv["volume"]["size"], 2, "sized after the snapshot: {rv}");
    assert_eq!(rv["volume"]["bootable"], "true");
    assert_eq!(rv["volume"]["volume_image_metadata"]["image_id"], image, "{rv}");

    // A snapshot the caller cannot read: Nova's InvalidBDMSnapshot.
    let missing = uuid::Uuid::new_v4().to_string();
    let bad = json!([{"boot_index": 0, "uuid": missing, "source_type": "snapshot", "destination_type": "volume"}]);
    let body = json!({"server": {"name": "bad", "imageRef": "", "flavorRef": "1", "block_device_mapping_v2": bad}});
    let (s, v) = c.call(&tok, Method::POST, "/compute/v2.1/servers", Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["badRequest"]["message"],
        format!("Block Device Mapping is Invalid: failed to get snapshot {missing}.")
    );

    delete_and_check(&c, &tok, &id).await;
    let deadline = Instant::now() + T;
    while c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await.0 != StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline, "root volume {root} not deleted with the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nova's `snapshot_volume_backed`: createImage of a volume-backed server
/// snapshots its volumes in Cinder ("snapshot for <image name>") and
/// records them on an image of no bytes (`bdm_v2`, `root_device_name`,
/// `block_device_mapping`); a server booted from that image gets its root
/// volume made from the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn a_volume_backed_server_snapshot_maps_its_volumes_and_boots_again() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    let image = c.cirros(&tok).await;
    let (s, v) = c.post_bfv_server(&tok, "bfv-src", &image).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().expect("id").to_string();
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let (s, v) = act(&c, &tok, &id, json!({"createImage": {"name": "bfv-snap"}})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, atts) = c.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{id}/os-volume_attachments"), None).await;
    let src_root = atts["volumeAttachments"][0]["volumeId"].as_str().expect("root").to_string();
    let deadline = Instant::now() + T;
    let (img, mapping) = loop {
        let (_, v) = c.call(&tok, Method::GET, "/image/v2/images?name=bfv-snap", None).await;
        let img = v["images"][0].clone();
        if let Some(m) = img["block_device_mapping"].as_str() {
            let m: Value = serde_json::from_str(m).expect("mapping JSON");
            break (img, m);
        }
        assert!(Instant::now() < deadline, "no mapping recorded: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(img["bdm_v2"], "True", "{img}");
    assert_eq!(img["root_device_name"], "/dev/vda", "{img}");
    assert_eq!(img["status"], "active");
    let m = &mapping[0];
    assert_eq!((m["source_type"].as_str(), m["destination_type"].as_str()), (Some("snapshot"), Some("volume")));
    assert_eq!(m["boot_index"], 0);
    let snap = m["snapshot_id"].as_str().expect("snapshot id").to_string();
    let (_, sv) = c.call(&tok, Method::GET, &format!("/volume/v3/snapshots/{snap}"), None).await;
    assert_eq!(sv["snapshot"]["status"], "available", "{sv}");
    assert_eq!(sv["snapshot"]["volume_id"], src_root.as_str());
    assert_eq!(sv["snapshot"]["name"], "snapshot for bfv-snap");
    c.wait_status(&tok, &id, "ACTIVE", T).await;

    let img_id = img["id"].as_str().expect("image id");
    let body = json!({"server": {"name": "from-bfv-snap", "imageRef": img_id, "flavorRef": "1"}});
    let (s, v) = c.call(&tok, Method::POST, "/compute/v2.1/servers", Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let again = v["server"]["id"].as_str().expect("id").to_string();
    c.wait_status(&tok, &again, "ACTIVE", T).await;
    let (_, atts) =
        c.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{again}/os-volume_attachments"), None).await;
    let root = atts["volumeAttachments"][0]["volumeId"].as_str().expect("root").to_string();
    assert_ne!(root, src_root);
    let (_, rv) = c.call(&tok, Method::GET, &format!("/volume/v3/volumes/{root}"), None).await;
    assert_eq!(rv["volume"]["snapshot_id"], snap.as_str(), "{rv}");
    delete_and_check(&c, &tok, &again).await;
    delete_and_check(&c, &tok, &id).await;
}

/// Cinder 3.42 + Nova's `volume-extended` event: an attached volume grows
/// (below 3.42 only an `available` one may), stays `in-use`, and its
/// server gets an `extend_volume` instance action whose
/// `compute_extend_volume` event ends in success once the host told the VM.
#[tokio::test(flavor = "multi_thread")]
async fn an_in_use_volume_grows_at_3_42_and_its_server_is_told() {
    let c = Cloud::start().await;
    let (tok, admin) = (c.demo().await, c.admin().await);
    let id = c.create_server(&tok, "grows").await;
    c.wait_status(&tok, &id, "ACTIVE", T).await;
    let (s, v) = c.call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vol = v["volume"]["id"].as_str().expect("id").to_string();
    c.wait_volume(&tok, &vol, "available", T).await;
    let attachments = format!("/compute/v2.1/servers/{id}/os-volume_attachments");
    let (s, v) = c.call(&tok, Method::POST, &attachments, Some(json!({"volumeAttachment": {"volumeId": vol}}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    c.wait_volume(&tok, &vol, "in-use", T).await;
    let extend = |version: &'static str, size: i64| {
        let (c, tok, vol) = (&c, &tok, &vol);
        async move {
            let r = c
                .http
                .post(format!("{}/volume/v3/volumes/{vol}/action", c.url))
                .header("X-Auth-Token", tok)
                .header("OpenStack-API-Version", format!("volume {version}"))
                .json(&json!({"os-extend": {"new_size": size}}))
                .send()
                .await
                .expect("extend");
            let s = r.status();
            (s, r.text().await.unwrap_or_default())
        }
    };
    let (s, body) = extend("3.41", 2).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "in-use below 3.42: {body}");
    let (s, body) = extend("3.42", 2).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let v = c.wait_volume(&tok, &vol, "in-use", T).await;
    assert_eq!(v["volume"]["size"], 2);
    let deadline = Instant::now() + T;
    let event = loop {
        let (_, acts) =
            c.call(&tok, Method::GET, &format!("/compute/v2.1/servers/{id}/os-instance-actions"), None).await;
        let found = acts["instanceActions"].as_array().into_iter().flatten().find(|a| a["action"] == "extend_volume");
        if let Some(a) = found {
            let req = a["request_id"].as_str().expect("request id");
            let (_, one) = c
                .call(&admin, Method::GET, &format!("/compute/v2.1/servers/{id}/os-instance-actions/{req}"), None)
                .await;
            let done = one["instanceAction"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["event"] == "compute_extend_volume" && !e["finish_time"].is_null())
                .cloned();
            if let Some(e) = done {
                break e;
            }
        }
        assert!(Instant::now() < deadline, "no finished compute_extend_volume event: {acts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["result"], "Success", "{event}");
    delete_and_check(&c, &tok, &id).await;
}
