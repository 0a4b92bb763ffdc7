//! Unit tests: status machine, quota, the busy-delete queue and crash
//! recovery, with the in-memory backend and a manual clock.

use super::*;
use crate::testing::MemBackend;
use serde_json::json;
use stratus_types::ManualClock;
use tokio::sync::watch;

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    svc: Arc<VolumeService>,
    ds: Datastore,
    backend: MemBackend,
    clock: ManualClock,
    dir: TempDir,
    _db: stratus_db::testing::TestDb,
}

async fn env_with(cfg: impl FnOnce(&mut VolumeConfig)) -> Env {
    let dir = std::env::temp_dir().join(format!("stratus-volume-svc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    let clock = ManualClock::new(chrono::Utc::now());
    let (ds, db) = stratus_db::testing::fresh(Arc::new(clock.clone())).await;
    let backend = MemBackend::new();
    let mut c = VolumeConfig { image_dir: dir.join("images"), ..VolumeConfig::default() };
    cfg(&mut c);
    let svc = Arc::new(VolumeService::new(ds.clone(), Arc::new(backend.clone()), c));
    crate::testing::insert_server(&ds, server(), "p1").await.expect("server of p1");
    Env { svc, ds, backend, clock, dir: TempDir(dir), _db: db }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

fn ctx(project: &str, role: &str) -> AuthContext {
    AuthContext {
        user_id: format!("user-{project}"),
        user_name: format!("user-{project}"),
        project_id: project.into(),
        project_name: project.into(),
        roles: vec![role.into()],
        role_ids: vec![role.into()],
        audit_id: "audit".into(),
        issued_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        system_scope: false,
        app_cred: None,
    }
}

fn member() -> AuthContext {
    ctx("p1", "member")
}

fn new_volume(size: i64, name: &str) -> NewVolume {
    NewVolume { size, name: Some(name.into()), ..NewVolume::default() }
}

const SERVER: &str = "0b0a4f4e-9c39-4c59-8d1e-3c1f5a0e2f11";

/// [`SERVER`] as the typed id the server-facing calls take.
fn server() -> stratus_types::ServerId {
    SERVER.parse().expect("uuid")
}

#[tokio::test]
async fn status_machine_create_attach_detach_delete() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v1")).await.expect("create");
    assert_eq!(v.status.as_str(), "available");
    assert_eq!(e.backend.volume(&v.backend_name).expect("stored").size_gb, 1);

    // Another project sees nothing: 404, as for a missing volume.
    let other = ctx("p2", "member");
    assert!(matches!(e.svc.get_visible(&other, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    assert!(matches!(e.svc.delete(&other, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    assert!(e.svc.list(&other, &ListFilter::default()).await.expect("list").is_empty());
    // Readers may look but not change.
    let reader = ctx("p1", "reader");
    assert!(matches!(e.svc.delete(&reader, &v.id.to_string()).await, Err(VolumeError::Forbidden { .. })));

    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let u = e
        .svc
        .update(
            &me,
            &v.id.to_string(),
            VolumeUpdate { name: Some("renamed".into()), metadata: Some(meta), ..Default::default() },
        )
        .await
        .expect("update");
    assert_eq!(u.name.as_deref(), Some("renamed"));
    assert_eq!(u.metadata, r#"{"k":"v"}"#);

    // Nova's attach: create (reserved) → update (attaching) → complete (in-use).
    let a = e.svc.attachment_create(&me, &v.id.to_string(), SERVER, None).await.expect("reserve");
    assert_eq!(a.status.as_str(), "reserved");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("get").status.as_str(), "reserved");
    assert!(
        matches!(e.svc.attachment_create(&me, &v.id.to_string(), SERVER, None).await, Err(VolumeError::BadRequest(_))),
        "a reserved volume cannot be reserved again"
    );
    match e.svc.delete(&me, &v.id.to_string()).await {
        Err(VolumeError::BadRequest(m)) => assert_eq!(m, DELETE_REFUSED),
        other => panic!("delete of a reserved volume: {other:?}"),
    }
    let connector = json!({"host": "compute-1", "mountpoint": "/dev/vdb", "initiator": "iqn"});
    let a = e.svc.attachment_update(&me, &a.id.to_string(), &connector).await.expect("update");
    assert_eq!(a.status.as_str(), "attaching");
    assert_eq!(a.host.as_deref(), Some("compute-1"));
    assert_eq!(a.mountpoint.as_deref(), Some("/dev/vdb"));
    let vol = e.svc.get_visible(&me, &v.id.to_string()).await.expect("get");
    assert_eq!(vol.status.as_str(), "attaching");
    assert_eq!(e.svc.connection_info(&a, &vol)["data"]["name"], vol.backend_name);
    e.svc.attachment_complete(&me, &a.id.to_string()).await.expect("complete");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("get").status.as_str(), "in-use");
    assert!(matches!(e.svc.delete(&me, &v.id.to_string()).await, Err(VolumeError::BadRequest(_))), "in-use");
    assert!(matches!(e.svc.attachment_delete(&other, &a.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    e.svc.attachment_delete(&me, &a.id.to_string()).await.expect("detach");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("get").status.as_str(), "available");
    assert!(matches!(e.svc.attachment_complete(&me, &a.id.to_string()).await, Err(VolumeError::NotFound { .. })));

    e.svc.delete(&me, &v.id.to_string()).await.expect("delete");
    assert!(matches!(e.svc.get_visible(&me, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    assert!(e.backend.is_empty(), "storage gone");
    assert_eq!(e.svc.usage("p1").await.expect("usage").volumes, 0);
}

/// Cinder/Nova: a server the caller cannot see does not exist for it
/// (Nova's `InstanceNotFound`, 404); a volume of one project is never
/// attached to another project's server by a member.
#[tokio::test]
async fn attachment_to_a_server_the_caller_cannot_see_is_404() {
    let e = env().await;
    let theirs = stratus_types::ServerId::new();
    crate::testing::insert_server(&e.ds, theirs, "p2").await.expect("server of p2");
    let v = e.svc.create(&member(), new_volume(1, "mine")).await.expect("create");
    let vid = v.id.to_string();
    for target in [theirs.to_string(), stratus_types::ServerId::new().to_string()] {
        match e.svc.attachment_create(&member(), &vid, &target, None).await {
            Err(e @ VolumeError::NotFound { kind: Missing::Instance, .. }) => {
                assert_eq!(e.to_string(), format!("Instance {target} could not be found."));
            }
            other => panic!("attach to {target}: {other:?}"),
        }
    }
    assert_eq!(e.svc.get_visible(&member(), &vid).await.expect("get").status.as_str(), "available");
    assert!(e.svc.attachments_of(&v.id).await.expect("atts").is_empty(), "nothing reserved");
    // An admin sees every server, as in Nova.
    let admin = ctx("p3", "admin");
    e.svc.attachment_create(&admin, &vid, &theirs.to_string(), None).await.expect("admin attaches");
}

#[tokio::test]
async fn attachment_create_with_connector_goes_attaching() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    let a = e.svc.attachment_create(&me, &v.id.to_string(), SERVER, Some(&json!({}))).await.expect("reserve");
    assert_eq!(a.status.as_str(), "reserved", "an empty connector is no connector");
    e.svc.attachment_delete(&me, &a.id.to_string()).await.expect("unreserve");
    let a =
        e.svc.attachment_create(&me, &v.id.to_string(), SERVER, Some(&json!({"host": "h2"}))).await.expect("attach");
    assert_eq!(a.status.as_str(), "attaching");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("get").status.as_str(), "attaching");
    assert!(matches!(
        e.svc.attachment_create(&me, &v.id.to_string(), "not-a-uuid", None).await,
        Err(VolumeError::BadRequest(_))
    ));
}

/// Cinder deletes asynchronously; here a delete whose backend never answers
/// must not hold its caller (a server's delete waits on it for its 404):
/// after `inline_delete_timeout` the removal is queued and the volume stays
/// `deleting` until the reconciler's retry succeeds. (Found on real Ceph: an
/// `rbd rm` behind a SIGKILLed client's watch held a delete 30 s.)
#[tokio::test]
async fn a_delete_the_backend_never_answers_is_queued_not_waited_for() {
    let e = env_with(|c| {
        c.inline_delete_timeout = std::time::Duration::from_millis(200);
        c.stale_after = std::time::Duration::from_millis(300);
    })
    .await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    e.backend.hanging_deletes(1);
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete accepted");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("still there").status.as_str(), "deleting");
    let q = e.ds.cleanup_pending().await.expect("queue");
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].reason.contains("did not answer"), "{}", q[0].reason);
    // The hanging removal is given up after `stale_after`; the retry then
    // reaches a backend that answers: the volume goes.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    e.svc.reconcile().await.expect("retry");
    assert!(e.svc.get_visible(&me, &v.id.to_string()).await.is_err(), "deleted by the retry");
    assert!(e.ds.cleanup_pending().await.expect("queue").is_empty());
}

/// A delete slower than `inline_delete_timeout` is queued, but the removal
/// already under way is not abandoned: it finishes in the background. (Found
/// by the nemesis on Ceph: the timeout killed an `rbd rm` part-way through a
/// paused OSD, leaving an image half removed for the retry to find.)
#[tokio::test]
async fn a_slow_delete_is_queued_and_still_finishes_in_the_background() {
    let e = env_with(|c| c.inline_delete_timeout = std::time::Duration::from_millis(100)).await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    e.backend.slow_deletes(1, std::time::Duration::from_millis(400));
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete accepted");
    assert_eq!(e.ds.cleanup_pending().await.expect("queue").len(), 1, "queued at the timeout");
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if e.backend.volume(&v.backend_name).is_none() {
            gone = true;
            break;
        }
    }
    assert!(gone, "the removal under way finished without waiting for the retry");
    assert_eq!(e.backend.delete_calls(), 1, "no second call was needed");
    // The queued retry then finds it gone and closes the volume.
    e.svc.reconcile().await.expect("retry");
    assert!(e.svc.get_visible(&me, &v.id.to_string()).await.is_err(), "deleted");
    let calls = e.backend.delete_calls();
    // A retry while a removal still runs leaves it alone (no second call at once).
    let w = e.svc.create(&me, new_volume(1, "w")).await.expect("create");
    e.backend.slow_deletes(1, std::time::Duration::from_millis(600));
    e.svc.delete(&me, &w.id.to_string()).await.expect("delete accepted");
    e.svc.reconcile().await.expect("a pass while the removal runs");
    assert_eq!(e.backend.delete_calls(), calls + 1, "the pass did not delete again while the first removal ran");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    e.svc.reconcile().await.expect("a pass after it finished");
    assert!(e.svc.get_visible(&me, &w.id.to_string()).await.is_err(), "deleted once the removal finished");
}

#[tokio::test]
async fn busy_delete_is_queued_and_retried_until_the_backend_deletes() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(2, "v")).await.expect("create");
    e.backend.busy_deletes(2);

    // Inline attempt: busy → the volume stays `deleting`, the delete is queued.
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete accepted");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("still there").status.as_str(), "deleting");
    let q = e.ds.cleanup_pending().await.expect("queue");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].kind, CleanupKind::VolumeDelete);
    assert_eq!(q[0].volume_id, Some(v.id));
    assert!(q[0].reason.starts_with("busy"), "{}", q[0].reason);
    // A repeated delete is accepted and queues nothing new.
    e.svc.delete(&me, &v.id.to_string()).await.expect("repeat");
    assert_eq!(e.ds.cleanup_pending().await.expect("queue").len(), 1);
    assert_eq!(e.svc.usage("p1").await.expect("usage").gigabytes, 2, "still counted while deleting");

    // First retry: still busy, nothing swallowed.
    let r = e.svc.reconcile().await.expect("pass 1");
    assert_eq!((r.deletes_pending, r.deletes_finished), (1, 0));
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("still there").status.as_str(), "deleting");
    let q = e.ds.cleanup_pending().await.expect("queue");
    assert_eq!(q[0].attempts, 1);
    assert!(q[0].last_error.as_deref().unwrap_or_default().contains("busy"));

    // Second retry: the backend deletes it; only now is the volume deleted.
    let r = e.svc.reconcile().await.expect("pass 2");
    assert_eq!((r.deletes_pending, r.deletes_finished), (0, 1));
    assert!(matches!(e.svc.get_visible(&me, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    assert!(e.ds.cleanup_pending().await.expect("queue").is_empty());
    assert!(e.backend.is_empty());
    assert_eq!(e.backend.delete_calls(), 3);
    assert_eq!(e.svc.usage("p1").await.expect("usage").gigabytes, 0);

    // Quiet afterwards.
    assert!(e.svc.reconcile().await.expect("pass 3").is_quiet());
}

#[tokio::test]
async fn watched_volume_is_deleted_only_after_its_client_goes() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    let client = e.backend.open(&v.backend_name).await.expect("open");
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete");
    for _ in 0..3 {
        assert_eq!(e.svc.reconcile().await.expect("pass").deletes_pending, 1);
    }
    assert!(e.backend.volume(&v.backend_name).is_some(), "never deleted while watched");
    client.close().await.expect("close");
    assert_eq!(e.svc.reconcile().await.expect("pass").deletes_finished, 1);
    assert!(e.backend.is_empty());
}

#[tokio::test]
async fn queued_delete_is_cancelled_when_an_admin_resets_the_volume() {
    let e = env().await;
    let me = member();
    let admin = ctx("admin", "admin");
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    e.backend.busy_deletes(1);
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete");
    e.svc.reset_status(&admin, &v.id.to_string(), Some("available"), None).await.expect("reset");
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!(r.deletes_cancelled, 1);
    assert!(e.backend.volume(&v.backend_name).is_some(), "data kept");
    assert_eq!(e.svc.get_visible(&me, &v.id.to_string()).await.expect("get").status.as_str(), "available");
    assert!(e.ds.cleanup_pending().await.expect("queue").is_empty());
}

#[tokio::test]
async fn quota_counts_volumes_and_gigabytes() {
    let e = env_with(|c| {
        c.quota_volumes = 2;
        c.quota_gigabytes = 10;
    })
    .await;
    let me = member();
    let a = e.svc.create(&me, new_volume(6, "a")).await.expect("a");
    match e.svc.create(&me, new_volume(5, "b")).await {
        Err(VolumeError::QuotaExceeded(m)) => assert_eq!(
            m,
            "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is 10G and 6G has been consumed."
        ),
        other => panic!("expected gigabytes quota: {other:?}"),
    }
    e.svc.create(&me, new_volume(4, "b")).await.expect("b fits");
    match e.svc.create(&me, new_volume(0, "c")).await {
        Err(VolumeError::BadRequest(m)) => assert!(m.contains("greater than 0"), "{m}"),
        other => panic!("size 0: {other:?}"),
    }
    match e.svc.create(&me, new_volume(1, "c")).await {
        Err(VolumeError::QuotaExceeded(m)) => {
            assert!(m.starts_with("Requested volume or snapshot exceeds allowed gigabytes quota"), "{m}")
        }
        other => panic!("expected quota: {other:?}"),
    }
    // Extend is held to the gigabytes quota too.
    match e.svc.extend(&me, &a.id.to_string(), 7, false).await {
        Err(VolumeError::QuotaExceeded(m)) => assert!(m.contains("Requested 1G, quota is 10G and 10G"), "{m}"),
        other => panic!("extend over quota: {other:?}"),
    }
    assert_eq!(e.svc.usage("p1").await.expect("usage"), stratus_db::VolumeUsage { volumes: 2, gigabytes: 10 });
    // Another project has its own quota.
    e.svc.create(&ctx("p2", "member"), new_volume(10, "x")).await.expect("p2");
}

/// Cinder's schema: a volume size is an integer from 1 to 2147483647
/// (`volume_size`, DB_MAX_INT); a bigger one is a 400 before any quota
/// arithmetic (it used to wrap past the gigabytes quota), for create,
/// extend and boot volumes alike.
#[tokio::test]
async fn huge_sizes_are_400_and_never_reach_the_quota() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "first")).await.expect("create");
    for size in [i64::MAX, i64::MAX - 1, MAX_VOLUME_SIZE_GB + 1] {
        match e.svc.create(&me, new_volume(size, "huge")).await {
            Err(VolumeError::BadRequest(m)) => assert_eq!(
                m,
                format!(
                    "Invalid input for field/attribute size. Value: {size}. {size} is greater than the maximum of 2147483647"
                )
            ),
            other => panic!("size {size}: {other:?}"),
        }
        match e.svc.extend(&me, &v.id.to_string(), size, false).await {
            Err(VolumeError::BadRequest(m)) => assert_eq!(
                m,
                format!(
                    "Invalid input for field/attribute new_size. Value: {size}. {size} is greater than the maximum of 2147483647"
                )
            ),
            other => panic!("extend to {size}: {other:?}"),
        }
    }
    let boot = BootVolume {
        server_id: server(),
        project_id: "p1".into(),
        user_id: "u1".into(),
        image_id: Some("missing".into()),
        snapshot_id: None,
        size_gb: i64::MAX,
        mountpoint: "/dev/vda".into(),
        boot_index: Some(0),
        volume_type_id: None,
        delete_on_termination: true,
    };
    assert!(matches!(e.svc.create_boot_volume(&boot).await, Err(VolumeError::BadRequest(_))));
    e.svc.create(&me, new_volume(2, "after")).await.expect("creates still work");
    assert_eq!(e.svc.usage("p1").await.expect("usage"), stratus_db::VolumeUsage { volumes: 2, gigabytes: 3 });
}

#[tokio::test]
async fn volumes_quota_message() {
    let e = env_with(|c| c.quota_volumes = 1).await;
    let me = member();
    e.svc.create(&me, new_volume(1, "a")).await.expect("a");
    match e.svc.create(&me, new_volume(1, "b")).await {
        Err(VolumeError::QuotaExceeded(m)) => {
            assert_eq!(m, "Maximum number of volumes allowed (1) exceeded for quota 'volumes'.")
        }
        other => panic!("expected volumes quota: {other:?}"),
    }
}

#[tokio::test]
async fn failed_backend_create_leaves_error_and_it_can_be_deleted() {
    let e = env().await;
    let me = member();
    e.backend.failing_creates(1);
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create answered");
    assert_eq!(v.status.as_str(), "error");
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete an errored volume");
    assert!(matches!(e.svc.get_visible(&me, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })));
}

/// A `creating` row as the API records it; `name` picks a fixed id, so each
/// fixture row stays the same across runs.
fn creating_row(name: &str, image: Option<&str>) -> VolumeRow {
    let id = stratus_types::VolumeId(uuid::Uuid::from_u128(name.bytes().fold(0u128, |h, b| h * 131 + u128::from(b))));
    VolumeRow {
        group_id: None,
        id,
        name: Some("crashed".into()),
        description: None,
        project_id: "p1".into(),
        user_id: "u".into(),
        size_gb: 1,
        status: VolumeStatus::Creating,
        volume_type_id: Some(stratus_db::DEFAULT_VOLUME_TYPE_ID.into()),
        volume_type: None,
        availability_zone: "nova".into(),
        bootable: image.is_some(),
        image_id: image.map(str::to_string),
        backend_name: format!("volume-{id}"),
        metadata: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        deleted_at: None,
        deleted: false,
        snapshot_id: None,
        source_volid: None,
    }
}

#[tokio::test]
async fn interrupted_create_is_retried_after_a_minute() {
    let e = env().await;
    // The API recorded the volume and died before the backend call.
    let row = e.ds.volume_create(&creating_row("c1", None), 10, 1000).await.expect("row");
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!(r.creates_retried, 0, "a fresh `creating` may still be in progress");
    e.clock.advance(chrono::Duration::seconds(61));
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!((r.creates_retried, r.creates_finished), (1, 1));
    assert_eq!(e.ds.volume_get(&row.id).await.expect("get").status.as_str(), "available");
    assert!(e.backend.volume(&row.backend_name).is_some());
}

#[tokio::test]
async fn interrupted_delete_and_extend_are_finished() {
    let e = env().await;
    let me = member();
    let d = e.svc.create(&me, new_volume(1, "d")).await.expect("d");
    let x = e.svc.create(&me, new_volume(1, "x")).await.expect("x");
    // Crash right after the status writes.
    e.ds.volume_set_status(&d.id, &[VolumeStatus::Available], VolumeStatus::Deleting).await.expect("cas");
    e.ds.volume_set_status(&x.id, &[VolumeStatus::Available], VolumeStatus::Extending).await.expect("cas");
    assert!(e.svc.reconcile().await.expect("pass").is_quiet());
    e.clock.advance(chrono::Duration::seconds(61));
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!((r.deletes_requeued, r.deletes_finished, r.extends_failed), (1, 1, 1));
    assert!(matches!(e.svc.get_visible(&me, &d.id.to_string()).await, Err(VolumeError::NotFound { .. })));
    assert_eq!(e.svc.get_visible(&me, &x.id.to_string()).await.expect("x").status.as_str(), "error_extending");
}

#[tokio::test]
async fn extend_and_reset_status() {
    let e = env().await;
    let me = member();
    let admin = ctx("admin", "admin");
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    let v2 = e.svc.extend(&me, &v.id.to_string(), 3, false).await.expect("extend");
    assert_eq!((v2.size_gb, v2.status.as_str()), (3, "available"));
    assert_eq!(e.backend.volume(&v.backend_name).expect("stored").size_gb, 3);
    assert!(
        matches!(e.svc.extend(&me, &v.id.to_string(), 3, false).await, Err(VolumeError::BadRequest(_))),
        "not larger"
    );

    assert!(matches!(
        e.svc.reset_status(&me, &v.id.to_string(), Some("error"), None).await,
        Err(VolumeError::Forbidden { .. })
    ));
    assert!(matches!(
        e.svc.reset_status(&admin, &v.id.to_string(), Some("bogus"), None).await,
        Err(VolumeError::BadRequest(_))
    ));
    assert!(
        matches!(
            e.svc.reset_status(&admin, &v.id.to_string(), Some("creating"), None).await,
            Err(VolumeError::BadRequest(_))
        ),
        "the reconciler would rebuild it"
    );
    assert!(matches!(e.svc.reset_status(&admin, &v.id.to_string(), None, None).await, Err(VolumeError::BadRequest(_))));

    // A stuck attachment: reset detaches the records and the volume.
    let a = e.svc.attachment_create(&me, &v.id.to_string(), SERVER, None).await.expect("reserve");
    e.svc.attachment_complete(&me, &a.id.to_string()).await.expect("complete");
    assert!(matches!(e.svc.extend(&me, &v.id.to_string(), 4, false).await, Err(VolumeError::BadRequest(_))), "in-use");
    let r = e.svc.reset_status(&admin, &v.id.to_string(), Some("available"), Some("detached")).await.expect("reset");
    assert_eq!(r.status.as_str(), "available");
    assert!(e.svc.attachments_of(&v.id).await.expect("atts").is_empty());
    let r = e.svc.reset_status(&admin, &v.id.to_string(), Some("error"), None).await.expect("reset");
    assert_eq!(r.status.as_str(), "error");
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete from error");
}

#[tokio::test]
async fn image_volume_is_bootable_and_checked_against_the_image() {
    let e = env().await;
    let me = member();
    let image_id = uuid::Uuid::new_v4().to_string();
    e.ds.image_create(&ImageRow {
        id: image_id.parse().expect("uuid"),
        name: Some("cirros".into()),
        owner: "p1".into(),
        status: stratus_image::ImageStatus::Queued,
        visibility: stratus_image::Visibility::Private,
        disk_format: Some(stratus_image::DiskFormat::Raw),
        container_format: Some(stratus_image::ContainerFormat::Bare),
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 2,
        min_ram: 0,
        protected: false,
        properties: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    })
    .await
    .expect("image");
    let req = |size| NewVolume { size, image_ref: Some(image_id.clone()), ..NewVolume::default() };
    assert!(matches!(e.svc.create(&me, req(2)).await, Err(VolumeError::BadRequest(_))), "not active yet");
    std::fs::write(e.dir.0.join("images").join(&image_id), b"bootable bits").expect("write image");
    e.ds.image_set_data(&image_id.parse().expect("uuid"), 13, "md5", "sha").await.expect("active");
    assert!(matches!(e.svc.create(&me, req(1)).await, Err(VolumeError::BadRequest(_))), "below min_disk");
    let v = e.svc.create(&me, req(2)).await.expect("from image");
    assert!(v.bootable);
    assert_eq!(v.status.as_str(), "available");
    assert_eq!(v.image_id.as_deref(), Some(image_id.as_str()));
    assert_eq!(e.backend.volume(&v.backend_name).expect("stored").image, Some(e.dir.0.join("images").join(&image_id)));
    // By name, too; another project cannot use a private image.
    let by_name = NewVolume { size: 2, image_ref: Some("cirros".into()), ..NewVolume::default() };
    e.svc.create(&me, by_name.clone()).await.expect("by name");
    assert!(matches!(e.svc.create(&ctx("p2", "member"), by_name).await, Err(VolumeError::NotFound { .. })));
}

#[tokio::test]
async fn interrupted_image_create_is_rebuilt_from_scratch() {
    let e = env().await;
    let image_id = uuid::Uuid::new_v4().to_string();
    e.ds.image_create(&ImageRow {
        id: image_id.parse().expect("uuid"),
        name: Some("img".into()),
        owner: "p1".into(),
        status: stratus_image::ImageStatus::Queued,
        visibility: stratus_image::Visibility::Private,
        disk_format: Some(stratus_image::DiskFormat::Raw),
        container_format: Some(stratus_image::ContainerFormat::Bare),
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        properties: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    })
    .await
    .expect("image");
    let image = e.dir.0.join("images").join(&image_id);
    std::fs::write(&image, b"x").expect("image file");
    let row = e.ds.volume_create(&creating_row("c2", Some(&image_id)), 10, 1000).await.expect("row");
    // A partial copy left by the crash.
    e.backend.create(&row.backend_name, 1).await.expect("partial");
    e.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(e.svc.reconcile().await.expect("pass").creates_finished, 1);
    assert_eq!(e.backend.volume(&row.backend_name).expect("rebuilt").image, Some(image));
}

#[tokio::test]
async fn reconciler_task_retries_and_stops_on_shutdown() {
    let e = env_with(|c| c.reconcile_interval = Duration::from_millis(10)).await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    e.backend.busy_deletes(2);
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(e.svc.clone().run_reconciler(rx));
    let mut gone = false;
    for _ in 0..200 {
        if matches!(e.svc.get_visible(&me, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the reconciler task finished the queued delete");
    assert!(e.svc.last_report().is_some());
    tx.send(true).expect("shutdown");
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops").expect("no panic");
}

/// A delete refused for another reason than watchers falls back to the
/// backend's trash (rbd `trash mv`), and the reconciler purges it; a busy
/// (watched) volume never goes to the trash.
#[tokio::test]
async fn refused_delete_goes_to_the_trash_and_is_purged() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "t")).await.expect("create");
    e.backend.refused_deletes(1);
    e.svc.delete(&me, &v.id.to_string()).await.expect("delete accepted");
    assert!(
        matches!(e.svc.get_visible(&me, &v.id.to_string()).await, Err(VolumeError::NotFound { .. })),
        "deleted via the trash"
    );
    assert_eq!(e.backend.trash_len(), 1);
    assert!(e.ds.cleanup_pending().await.expect("queue").is_empty());
    e.svc.reconcile().await.expect("pass");
    assert_eq!(e.backend.trash_len(), 0, "purged by the reconciler");

    let w = e.svc.create(&me, new_volume(1, "w")).await.expect("create");
    e.backend.busy_deletes(1);
    e.svc.delete(&me, &w.id.to_string()).await.expect("delete accepted");
    assert_eq!(e.backend.trash_len(), 0, "a busy volume is queued, never trashed");
    assert_eq!(e.ds.cleanup_pending().await.expect("queue").len(), 1);
}

/// Put the test server on `host` (what the scheduler does before its host opens volumes).
async fn place(e: &Env, host: &str) {
    let t = stratus_db::Transition { host: Some(Some(host.into())), ..Default::default() };
    e.ds.server_transition(&server(), &t).await.expect("placed");
}

#[tokio::test]
async fn server_volumes_boot_fence_release_and_lift_fences() {
    let e = env().await;
    let host = "compute-1";
    let cap = stratus_db::HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let ttl = chrono::Duration::seconds(30);
    e.ds.service_join(host, cap, ttl).await.expect("host joins");
    place(&e, host).await;

    // Boot from volume: the image has no file, so the root volume is built blank, bootable, reserved.
    let root_att = e.svc.create_boot_volume(&blank_boot_volume()).await.expect("boot volume");
    let root = e.svc.volume(&root_att.volume_id).await.expect("root");
    assert_eq!(root.status, VolumeStatus::Reserved);
    assert!(root.bootable);
    assert_eq!(e.backend.volume(&root.backend_name).expect("built").image, None);
    assert_eq!(e.svc.usage("p1").await.expect("usage").volumes, 1, "counted against the quota");

    // A data volume attached too (kept when the server goes).
    let me = member();
    let data = e.svc.create(&me, new_volume(1, "data")).await.expect("data");
    let data_att = e.svc.attachment_create(&me, &data.id.to_string(), SERVER, None).await.expect("reserve");
    let mut clients = Vec::new();
    for (a, v) in [(&root_att, &root), (&data_att, &data)] {
        let c = e.backend.open(&v.backend_name).await.expect("host opens");
        e.svc.host_attached(a, host, &c.id().0).await.expect("attached");
        clients.push(c);
    }
    assert_eq!(e.svc.volume(&data.id).await.expect("data").status, VolumeStatus::InUse);
    assert_eq!(e.svc.attachments_of_server(&server()).await.expect("atts").len(), 2);

    // The host is lost: fence both clients (twice: idempotent).
    let lines = e.svc.fence_server(&server()).await.expect("fence");
    assert_eq!(lines.iter().filter(|l| l.starts_with("fenced client")).count(), 2, "{lines:?}");
    let again = e.svc.fence_server(&server()).await.expect("fence again");
    assert!(again.iter().all(|l| l.contains("already fenced")), "{again:?}");
    assert!(clients[0].write(0, b"zombie").await.is_err(), "a fenced client cannot write");

    // Release: the root's storage is still busy, so its delete is queued, never swallowed; data is detached.
    e.backend.busy_deletes(1);
    let lines = e.svc.release_server_volumes(&server()).await.expect("release");
    assert!(lines.iter().any(|l| l.contains("queued for deletion")), "{lines:?}");
    assert!(lines.contains(&format!("volume {} detached", data.id)), "{lines:?}");
    assert_eq!(e.svc.volume(&root.id).await.expect("root").status, VolumeStatus::Deleting);
    assert_eq!(e.svc.volume(&data.id).await.expect("data").status, VolumeStatus::Available);
    let kinds = |q: Vec<stratus_db::CleanupRow>| q.iter().map(|c| c.kind).collect::<Vec<_>>();
    let q = kinds(e.svc.pending_cleanups().await.expect("queue"));
    assert_eq!(q.iter().filter(|k| **k == CleanupKind::Unfence).count(), 2);
    assert!(q.contains(&CleanupKind::VolumeDelete));

    // The fences stay until the host rejoins with a newer epoch...
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 0);
    let before = e.ds.service_get_by_host(host).await.expect("svc").epoch;
    e.ds.host_clients_report(host, before, &[]).await.expect("a report from before the rejoin");
    let rejoined = e.ds.service_join(host, cap, ttl).await.expect("host rejoins").epoch;
    // ... and reports, after that rejoin, the fenced clients gone: the VM
    // record being gone (no zombie here) is not enough.
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 0, "no report since the rejoin");
    // One client process outlived its VM: only the other one's fence is lifted.
    let ids: Vec<String> = clients.iter().map(|c| c.id().0).collect();
    let mut clients = clients.into_iter();
    let (mut first, second) = (clients.next().expect("root client"), clients.next().expect("data client"));
    let _ = second.close().await;
    e.ds.host_clients_report(host, rejoined, &ids[..1]).await.expect("report");
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 1, "only the gone client's fence");
    assert!(first.write(0, b"zombie").await.is_err(), "the live client stays fenced");
    // Then it ends too; the reconciler lifts its fence and deletes the root.
    let _ = first.close().await;
    e.ds.host_clients_report(host, rejoined, &[]).await.expect("report");
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!((r.fences_lifted, r.deletes_finished), (1, 1), "{r:?}");
    assert!(e.svc.pending_cleanups().await.expect("queue").is_empty());
    assert!(matches!(e.svc.volume(&root.id).await, Err(VolumeError::NotFound { .. })));
}

#[tokio::test]
async fn a_path_that_is_not_an_id_in_our_spelling_is_cinders_404() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("create");
    let a = e.svc.attachment_create(&me, &v.id.to_string(), SERVER, None).await.expect("reserve");
    for bad in ["not-a-uuid".to_string(), v.id.to_string().to_uppercase()] {
        match e.svc.get_visible(&me, &bad).await {
            Err(err @ VolumeError::NotFound { kind: Missing::Volume, .. }) => {
                assert_eq!(err.to_string(), format!("Volume {bad} could not be found."));
            }
            other => panic!("volume {bad}: {other:?}"),
        }
        assert!(matches!(e.svc.delete(&me, &bad).await, Err(VolumeError::NotFound { kind: Missing::Volume, .. })));
    }
    for bad in ["not-a-uuid".to_string(), a.id.to_string().to_uppercase()] {
        match e.svc.attachment_get_visible(&me, &bad).await {
            Err(err @ VolumeError::NotFound { kind: Missing::Attachment, .. }) => assert_eq!(
                err.to_string(),
                format!("Volume attachment could not be found with filter: attachment_id = {bad}.")
            ),
            other => panic!("attachment {bad}: {other:?}"),
        }
    }
}

/// A host that never lost its lease (falsely up: it renewed while its
/// executor was wedged, so the delete went local on a deadline) never
/// rejoins with a new epoch; its fence is lifted on the second clients
/// report handled after the fence (the first may have been made before it),
/// once the client is absent from it.
#[tokio::test]
async fn a_fence_on_a_host_that_never_rejoins_is_lifted_on_the_second_report_after_it() {
    let e = env().await;
    let host = "compute-1";
    let cap = stratus_db::HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let epoch = e.ds.service_join(host, cap, chrono::Duration::seconds(30)).await.expect("join").epoch;
    e.ds.host_clients_report(host, epoch, &[]).await.expect("a report before the volume is opened");
    place(&e, host).await;
    let me = member();
    let data = e.svc.create(&me, new_volume(1, "data")).await.expect("data");
    let att = e.svc.attachment_create(&me, &data.id.to_string(), SERVER, None).await.expect("reserve");
    let client = e.backend.open(&data.backend_name).await.expect("host opens");
    e.svc.host_attached(&att, host, &client.id().0).await.expect("attached");
    e.svc.fence_server(&server()).await.expect("fence");
    e.svc.release_server_volumes(&server()).await.expect("release");
    let _ = client.close().await;
    // Handled after the fence, but possibly made before it: not enough.
    e.ds.host_clients_report(host, epoch, &[]).await.expect("report");
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 0, "one report since the fence");
    // The next one was made after the previous was answered: after the fence.
    e.ds.host_clients_report(host, epoch, &[]).await.expect("report");
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 1);
    assert!(e.svc.pending_cleanups().await.expect("queue").is_empty());
}

/// Nemesis finding (seed 1, Ceph): a host opened a volume for an attach
/// that was not recorded yet (the attachment has no host) when the server's
/// storage was fenced (an evacuation from that host, once it was down). The
/// watcher was fenced with no intent to lift it, so it stayed blocklisted
/// for good. The intent now names the host the attach went to (the server's
/// host), and the fence is lifted like any other once that host reports
/// the client gone.
#[tokio::test]
async fn a_client_of_an_unrecorded_attach_is_fenced_with_an_intent_to_lift_it() {
    let e = env().await;
    let host = "compute-1";
    let cap = stratus_db::HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let ttl = chrono::Duration::seconds(30);
    e.ds.service_join(host, cap, ttl).await.expect("join");
    place(&e, host).await;
    let me = member();
    let data = e.svc.create(&me, new_volume(1, "data")).await.expect("data");
    e.svc.attachment_create(&me, &data.id.to_string(), SERVER, None).await.expect("reserve");
    // The host opened it; its answer is not recorded (no host on the attachment).
    let client = e.backend.open(&data.backend_name).await.expect("host opens");
    let id = client.id().0;
    let lines = e.svc.fence_server(&server()).await.expect("fence");
    assert!(lines.iter().any(|l| l.contains(&id)), "{lines:?}");
    let q = e.svc.pending_cleanups().await.expect("queue");
    let lift: Vec<_> = q.iter().filter(|c| c.kind == CleanupKind::Unfence).collect();
    assert_eq!(lift.len(), 1, "an intent to lift the fence: {q:?}");
    assert_eq!(lift[0].client_id.as_deref(), Some(id.as_str()));
    assert_eq!(lift[0].host.as_deref(), Some(host));
    // The host rejoins and reports the client gone: lifted.
    let _ = client.close().await;
    let epoch = e.ds.service_join(host, cap, ttl).await.expect("rejoin").epoch;
    e.ds.host_clients_report(host, epoch, &[]).await.expect("report");
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 1);
    assert!(e.svc.pending_cleanups().await.expect("queue").is_empty());

    // An evacuation: the server's host is already the destination when it
    // fences, and its zombie names the source, which holds the client.
    let other = e.svc.create(&me, new_volume(1, "other")).await.expect("other");
    e.svc.attachment_create(&me, &other.id.to_string(), SERVER, None).await.expect("reserve");
    let client = e.backend.open(&other.backend_name).await.expect("source opens");
    let zombie = stratus_db::ZombieRow {
        server_id: server(),
        host: host.into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        reason: "evacuated from a down host".into(),
        created_at: chrono::Utc::now(),
    };
    e.ds.zombie_record(&zombie).await.expect("zombie");
    e.ds.service_join("compute-2", cap, ttl).await.expect("destination joins");
    place(&e, "compute-2").await;
    e.svc.fence_server(&server()).await.expect("fence");
    let q = e.svc.pending_cleanups().await.expect("queue");
    let lift: Vec<_> = q.iter().filter(|c| c.kind == CleanupKind::Unfence).collect();
    assert_eq!(lift.len(), 1, "{q:?}");
    assert_eq!(lift[0].host.as_deref(), Some(host), "judged by the source, never the destination");
    let epoch2 = e.ds.service_get_by_host("compute-2").await.expect("svc").epoch;
    e.ds.host_clients_report("compute-2", epoch2, &[]).await.expect("destination report");
    assert_eq!(e.svc.lift_fences().await.expect("lift"), 0, "the source's zombie may still write");
    drop(client);
}

fn blank_boot_volume() -> BootVolume {
    BootVolume {
        server_id: server(),
        project_id: "p1".into(),
        user_id: "u1".into(),
        size_gb: 1,
        image_id: Some("no-such-file".into()),
        snapshot_id: None,
        mountpoint: "/dev/vda".into(),
        delete_on_termination: true,
        boot_index: Some(0),
        volume_type_id: None,
    }
}

/// Nova's `_delete` releases every volume of the instance's block device
/// mappings, a boot volume whose build never finished included: the volume
/// is the server's from the moment it is recorded, and a retried build
/// resumes it instead of making a second one (found by the nemesis on Ceph).
#[tokio::test]
async fn a_boot_volume_build_cut_short_stays_its_servers_and_is_resumed_not_made_again() {
    let e = env().await;
    // The copy stalls (an OSD paused) and its controller goes: the build is dropped mid-way.
    e.backend.delayed_creates(1, Duration::from_secs(3600));
    let cut = tokio::time::timeout(Duration::from_millis(200), e.svc.create_boot_volume(&blank_boot_volume())).await;
    assert!(cut.is_err(), "the build was still running");
    let atts = e.svc.attachments_of_server(&server()).await.expect("atts");
    assert_eq!(atts.len(), 1, "the recorded boot volume belongs to its server");
    assert_eq!(e.svc.volume(&atts[0].volume_id).await.expect("vol").status, VolumeStatus::Creating);

    // The operation's next attempt resumes it once no build refreshes it any more.
    e.clock.advance(chrono::Duration::seconds(61));
    e.svc.finish_boot_volume(&atts[0]).await.expect("resumed");
    let vol = e.svc.volume(&atts[0].volume_id).await.expect("vol");
    assert_eq!(vol.status, VolumeStatus::Reserved);
    assert_eq!((e.svc.usage("p1").await.expect("usage").volumes, e.backend.len()), (1, 1), "one volume, not two");

    // The server's delete releases it: no storage, no quota left behind.
    e.svc.release_server_volumes(&server()).await.expect("release");
    assert_eq!((e.svc.usage("p1").await.expect("usage").volumes, e.backend.len()), (0, 0));
}

/// A delete that arrives mid-build wins (Nova's delete of a `building`
/// instance): the boot volume it released while its storage was still being
/// made is not left behind when that storage appears afterwards.
#[tokio::test]
async fn a_server_deleted_while_its_boot_volume_builds_leaves_no_volume_and_no_storage() {
    let e = env().await;
    e.backend.delayed_creates(1, Duration::from_millis(500));
    let svc = e.svc.clone();
    let build = tokio::spawn(async move { svc.create_boot_volume(&blank_boot_volume()).await });
    // The delete runs while the storage is still being made.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while e.svc.attachments_of_server(&server()).await.expect("atts").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the boot volume was never recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    e.svc.release_server_volumes(&server()).await.expect("release");
    let built = build.await.expect("join");
    assert!(built.is_err(), "the build reports that its volume went: {built:?}");
    assert_eq!(e.svc.usage("p1").await.expect("usage").volumes, 0, "quota back");
    assert!(e.backend.is_empty(), "the storage the late build made was removed");

    // And a server already being deleted gets no new boot volume at all.
    let deleting =
        stratus_db::Transition { task: Some(Some(stratus_types::TaskState::Deleting)), ..Default::default() };
    e.ds.server_transition(&server(), &deleting).await.expect("deleting");
    let refused = e.svc.create_boot_volume(&blank_boot_volume()).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!((e.svc.usage("p1").await.expect("usage").volumes, e.backend.len()), (0, 0));
}

/// Cinder's `POST /volumes` answers 202 `creating` and builds in the
/// background; ours waits for the storage a bounded while only: behind a
/// stalled backend (a paused OSD) the client still learns the volume's id
/// (found by the nemesis on Ceph: a client timed out and the volume leaked).
#[tokio::test]
async fn a_create_behind_stalled_storage_answers_creating_and_finishes_in_the_background() {
    let e = env_with(|c| c.create_answer_within = Duration::from_millis(100)).await;
    e.backend.delayed_creates(1, Duration::from_millis(800));
    let v = e.svc.create_answering_promptly(&member(), new_volume(1, "slow")).await.expect("create");
    assert_eq!(v.status, VolumeStatus::Creating, "answered before the storage finished");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while e.svc.volume(&v.id).await.expect("vol").status != VolumeStatus::Available {
        assert!(std::time::Instant::now() < deadline, "the background build never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(e.backend.volume(&v.backend_name).is_some());
    // A fast storage is waited for: the answer is the built volume.
    let fast = e.svc.create_answering_promptly(&member(), new_volume(1, "fast")).await.expect("create");
    assert_eq!(fast.status, VolumeStatus::Available);
}

// ------------------------------------------------------------ volume types

fn new_type(name: &str, public: bool) -> stratus_api::volume::types::CreateVolumeType {
    stratus_api::volume::types::CreateVolumeType {
        name: name.into(),
        description: Some("d".into()),
        // The backend's own vendor: a type naming another finds no backend.
        extra_specs: [("vendor_name".to_string(), Some("Stratus".to_string()))].into(),
        is_public: public,
    }
}

/// Cinder: type writes are admin only; names are unique (409, VolumeTypeExists).
#[tokio::test]
async fn volume_type_create_is_admin_only_and_names_unique() {
    let e = env().await;
    let admin = ctx("admin", "admin");
    assert!(matches!(e.svc.type_create(&member(), new_type("gold", true)).await, Err(VolumeError::Forbidden { .. })));
    let (t, specs) = e.svc.type_create(&admin, new_type("gold", true)).await.expect("gold");
    assert_eq!((t.name.as_str(), specs.len()), ("gold", 1));
    match e.svc.type_create(&admin, new_type("gold", true)).await {
        Err(VolumeError::Conflict(m)) => assert_eq!(m, "Volume Type gold already exists."),
        other => panic!("{other:?}"),
    }
}

/// Cinder: a private type is invisible (404) to projects it is not shared
/// with, so creating a volume with it is 404; after addProjectAccess it works
/// and the volume shows the type by name.
#[tokio::test]
async fn private_volume_type_needs_access() {
    let e = env().await;
    let admin = ctx("admin", "admin");
    let (t, _) = e.svc.type_create(&admin, new_type("private", false)).await.expect("type");
    assert!(matches!(e.svc.type_get(&member(), &t.id).await, Err(VolumeError::NotFound { .. })));
    let req = NewVolume { size: 1, volume_type: Some(t.id.clone()), ..Default::default() };
    match e.svc.create(&member(), req.clone()).await {
        Err(e @ VolumeError::NotFound { .. }) => {
            assert_eq!(e.to_string(), format!("Volume type {} could not be found.", t.id))
        }
        other => panic!("{other:?}"),
    }
    e.svc.type_access_add(&admin, &t.id, "p1").await.expect("share");
    assert!(matches!(e.svc.type_access_add(&admin, &t.id, "p1").await, Err(VolumeError::Conflict(_))));
    assert_eq!(e.svc.type_access_list(&admin, &t.id).await.expect("list"), vec!["p1".to_string()]);
    let v = e.svc.create(&member(), req).await.expect("volume");
    assert_eq!(v.volume_type.as_deref(), Some("private"));
    // Cinder: by name too; an unknown name says "with name".
    let by_name = NewVolume { size: 1, volume_type: Some("nope".into()), ..Default::default() };
    match e.svc.create(&member(), by_name).await {
        Err(e @ VolumeError::NotFound { .. }) => {
            assert_eq!(e.to_string(), "Volume type with name nope could not be found.")
        }
        other => panic!("{other:?}"),
    }
    e.svc.type_access_remove(&admin, &t.id, "p1").await.expect("unshare");
    assert!(matches!(e.svc.type_access_remove(&admin, &t.id, "p1").await, Err(VolumeError::NotFound { .. })));
}

/// Cinder: the default type and a type in use cannot be deleted (400, its
/// messages); extra specs of a type in use cannot change; a public type has
/// no access list (404) and its access cannot change (400).
#[tokio::test]
async fn volume_type_delete_and_spec_rules() {
    let e = env().await;
    let admin = ctx("admin", "admin");
    match e.svc.type_delete(&admin, "default").await {
        Err(VolumeError::BadRequest(m)) => assert_eq!(
            m,
            format!(
                "The volume type {} is a default volume type and cannot be deleted.",
                stratus_db::DEFAULT_VOLUME_TYPE_ID
            )
        ),
        other => panic!("{other:?}"),
    }
    let (t, _) = e.svc.type_create(&admin, new_type("gold", true)).await.expect("type");
    assert!(matches!(e.svc.type_access_list(&admin, &t.id).await, Err(VolumeError::NotFound { .. })));
    assert!(matches!(e.svc.type_access_add(&admin, &t.id, "p1").await, Err(VolumeError::BadRequest(_))));
    e.svc
        .type_extra_specs_set(&admin, &t.id, &[("multiattach".to_string(), Some("<is> False".to_string()))].into())
        .await
        .expect("spec");
    // Cinder: non-admins see only the user-visible keys.
    let seen = e.svc.type_extra_specs(&member(), &t.id).await.expect("specs");
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec!["multiattach"]);
    assert!(matches!(e.svc.type_extra_spec(&member(), &t.id, "vendor_name").await, Err(VolumeError::NotFound { .. })));
    let v = e
        .svc
        .create(&member(), NewVolume { size: 1, volume_type: Some("gold".into()), ..Default::default() })
        .await
        .expect("v");
    match e.svc.type_delete(&admin, &t.id).await {
        Err(VolumeError::BadRequest(m)) => assert_eq!(m, "Target volume type is still in use."),
        other => panic!("{other:?}"),
    }
    match e.svc.type_extra_spec_delete(&admin, &t.id, "multiattach").await {
        Err(VolumeError::BadRequest(m)) => assert_eq!(m, "Volume Type is currently in use."),
        other => panic!("{other:?}"),
    }
    // os-retype: with one backend only the type changes; the same type is refused.
    e.svc.retype(&member(), &v.id.to_string(), "__DEFAULT__").await.expect("retype");
    assert_eq!(
        e.svc.get_visible(&member(), &v.id.to_string()).await.expect("v").volume_type.as_deref(),
        Some("__DEFAULT__")
    );
    assert!(matches!(e.svc.retype(&member(), &v.id.to_string(), "__DEFAULT__").await, Err(VolumeError::BadRequest(_))));
    e.svc.type_delete(&admin, &t.id).await.expect("no longer in use");
    assert!(matches!(e.svc.type_delete(&admin, &t.id).await, Err(VolumeError::NotFound { .. })));
}

/// A group type, a group of p1 allowing the default volume type, and one
/// volume in it.
async fn grouped(e: &Env) -> (VolumeGroupId, VolumeRow) {
    let admin = ctx("admin-project", "admin");
    let gt = e.svc.group_type_create(&admin, "gt", None, true, BTreeMap::new()).await.expect("group type");
    let req = NewGroup {
        group_type: gt.id,
        volume_types: vec![stratus_db::DEFAULT_VOLUME_TYPE_ID.to_string()],
        name: Some("g".into()),
        ..NewGroup::default()
    };
    let g = e.svc.group_create(&member(), req).await.expect("group");
    assert_eq!(g.status, "available");
    let v = e
        .svc
        .create(&member(), NewVolume { group_id: Some(g.id.clone()), ..new_volume(1, "in-group") })
        .await
        .expect("volume in group");
    assert_eq!(v.group_id.as_deref(), Some(g.id.as_str()));
    (g.id, v)
}

type VolumeGroupId = String;

// Cinder: a volume that belongs to a group cannot be deleted on its own
// (InvalidVolume, "... must not ... belong to a group ...").
#[tokio::test]
async fn volume_in_a_group_is_deleted_only_with_the_group() {
    let e = env().await;
    let (g, v) = grouped(&e).await;
    match e.svc.delete(&member(), &v.id.to_string()).await {
        Err(VolumeError::BadRequest(m)) => assert_eq!(m, DELETE_REFUSED),
        other => panic!("delete of a grouped volume: {other:?}"),
    }
    // Cinder's group delete: volumes need the delete-volumes flag.
    match e.svc.group_delete(&member(), &g, false).await {
        Err(VolumeError::BadRequest(m)) => assert!(m.contains("The delete-volumes flag is required"), "{m}"),
        other => panic!("group delete without delete-volumes: {other:?}"),
    }
    e.svc.group_delete(&member(), &g, true).await.expect("group delete with its volumes");
    assert!(matches!(e.svc.group_get(&member(), &g).await, Err(VolumeError::NotFound { kind: Missing::Group, .. })));
    assert!(
        matches!(e.ds.volume_get(&v.id).await, Err(DbError::NotFound { .. }))
            || e.ds.volume_get(&v.id).await.is_ok_and(|v| v.deleted)
    );
}

// Cinder's group update: remove_volumes takes a volume out, add_volumes
// puts it back; a volume of a type the group does not allow is refused.
#[tokio::test]
async fn group_update_adds_and_removes_volumes() {
    let e = env().await;
    let (g, v) = grouped(&e).await;
    let vid = v.id.to_string();
    // Cinder 3.10: the `group_id` filter lists the group's volumes.
    let f = ListFilter { group_id: Some(g.clone()), ..ListFilter::default() };
    assert_eq!(e.svc.list(&member(), &f).await.expect("list").len(), 1);
    let out = GroupUpdate { remove_volumes: vec![vid.clone()], ..GroupUpdate::default() };
    e.svc.group_update(&member(), &g, out).await.expect("remove");
    assert!(e.svc.group_volume_ids(&g).await.expect("members").is_empty());
    let back = GroupUpdate { add_volumes: vec![vid.clone()], ..GroupUpdate::default() };
    e.svc.group_update(&member(), &g, back).await.expect("add");
    assert_eq!(e.svc.group_volume_ids(&g).await.expect("members"), vec![vid.clone()]);
    // Already in the group: Cinder's InvalidVolume.
    let again = GroupUpdate { add_volumes: vec![vid], ..GroupUpdate::default() };
    assert!(matches!(e.svc.group_update(&member(), &g, again).await, Err(VolumeError::BadRequest(_))));
    // Another project's group is 404.
    assert!(matches!(e.svc.group_get(&ctx("p2", "member"), &g).await, Err(VolumeError::NotFound { .. })));
}

// Cinder's quota `groups`: a project over it gets GroupLimitExceeded (413).
#[tokio::test]
async fn groups_quota_is_enforced() {
    let e = env().await;
    let admin = ctx("admin-project", "admin");
    e.svc.quota_update(&admin, "p1", &[("groups".to_string(), 0)]).await.expect("quota");
    let gt = e.svc.group_type_create(&admin, "gt", None, true, BTreeMap::new()).await.expect("group type");
    let req = NewGroup {
        group_type: gt.id,
        volume_types: vec![stratus_db::DEFAULT_VOLUME_TYPE_ID.to_string()],
        ..NewGroup::default()
    };
    match e.svc.group_create(&member(), req).await {
        Err(VolumeError::QuotaExceeded(m)) => assert_eq!(m, "Maximum number of groups allowed (0) exceeded"),
        other => panic!("group over quota: {other:?}"),
    }
}

// Cinder's scheduler (capabilities filter): a volume type whose specs no
// backend satisfies leaves the volume `error` with a user message
// VOLUME_VOLUME_001_003 "schedule allocate volume:Could not find any
// available weighted backend." for the project.
#[tokio::test]
async fn no_backend_for_the_type_is_an_error_volume_and_a_user_message() {
    let e = env().await;
    let admin = ctx("admin-project", "admin");
    let t = stratus_db::VolumeTypeRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: "bogus".into(),
        description: None,
        is_public: true,
    };
    let specs = [("storage_protocol".to_string(), Some("fc".to_string()))].into();
    e.ds.volume_type_create(&t, &specs).await.expect("type");
    let v = e
        .svc
        .create(&member(), NewVolume { volume_type: Some(t.id.clone()), ..new_volume(1, "nowhere") })
        .await
        .expect("create accepted");
    assert_eq!(v.status, VolumeStatus::Error);
    let msgs = e.svc.message_list(&member()).await.expect("messages");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].event_id, "VOLUME_VOLUME_001_003");
    assert_eq!(msgs[0].resource_uuid.as_deref(), Some(v.id.to_string().as_str()));
    assert_eq!(
        user_message(&msgs[0].action_id, &msgs[0].detail_id),
        "schedule allocate volume:Could not find any available weighted backend."
    );
    // Another project's message is 404; the owner deletes it.
    assert!(e.svc.message_get(&ctx("p2", "member"), &msgs[0].id).await.is_err());
    e.svc.message_delete(&member(), &msgs[0].id).await.expect("delete");
    assert!(e.svc.message_list(&member()).await.expect("messages").is_empty());
    // A type the backend satisfies builds.
    assert!(crate::messages::spec_matches("local", "<in> loc"));
    assert!(!crate::messages::spec_matches("local", "iSCSI"));
    let _ = admin;
}

/// Cinder: a snapshot is a point-in-time copy; a volume created from it
/// holds the bytes as they were when it was taken (local backend, real files).
#[tokio::test]
async fn snapshot_keeps_the_first_bytes_local_backend() {
    let dir = std::env::temp_dir().join(format!("stratus-snap-bytes-{}", uuid::Uuid::new_v4()));
    let _guard = TempDir(dir.clone());
    let clock = ManualClock::new(chrono::Utc::now());
    let (ds, _db) = stratus_db::testing::fresh(Arc::new(clock.clone())).await;
    let local = stratus_blockstore::local::LocalBackend::new(dir.join("vols"));
    let cfg = VolumeConfig { image_dir: dir.join("images"), ..VolumeConfig::default() };
    let svc = Arc::new(VolumeService::new(ds.clone(), Arc::new(local.clone()), cfg));
    use stratus_blockstore::OpenClient as _;
    let me = member();
    let v = svc.create(&me, new_volume(1, "src")).await.expect("volume");
    let mut c = local.open_client(&v.backend_name).await.expect("open");
    c.write(4096, b"first").await.expect("write 1");
    let s = svc
        .snapshot_create(&me, NewSnapshot { volume_id: v.id.to_string(), ..Default::default() })
        .await
        .expect("snapshot");
    assert_eq!(s.status, "available");
    c.write(4096, b"again").await.expect("write 2");
    Box::new(c).close().await.expect("close");
    let req = NewVolume { size: 2, snapshot_id: Some(s.id.clone()), ..NewVolume::default() };
    let copy = svc.create(&me, req).await.expect("from snapshot");
    assert_eq!(copy.status, VolumeStatus::Available);
    assert_eq!(copy.snapshot_id.as_deref(), Some(s.id.as_str()));
    let read = |name: &str| {
        let bytes = std::fs::read(local.image_path(name).expect("path")).expect("read");
        (bytes[4096..4101].to_vec(), bytes.len() as u64)
    };
    assert_eq!(read(&copy.backend_name), (b"first".to_vec(), 2 << 30));
    assert_eq!(read(&v.backend_name).0, b"again".to_vec());
    // The snapshot's copy goes with its delete; the volume can go then.
    svc.snapshot_delete(&me, &s.id, false).await.expect("snapshot delete");
    assert!(local.snapshots().await.expect("list").is_empty());
    svc.delete(&me, &v.id.to_string()).await.expect("volume delete");
}

/// Cinder: a volume with snapshots cannot be deleted (400, its message)
/// unless `cascade=true`; snapshot sizes count in `gigabytes` and
/// `snapshots` until deleted.
#[tokio::test]
async fn volume_with_snapshots_needs_cascade_and_quota_counts_snapshots() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(3, "v")).await.expect("volume");
    let s = e
        .svc
        .snapshot_create(&me, NewSnapshot { volume_id: v.id.to_string(), ..Default::default() })
        .await
        .expect("snapshot");
    let usage = e.svc.quota_show(&me, "p1").await.expect("usage");
    let used = |r: &str| usage.iter().find(|q| q.resource == r).map(|q| q.in_use);
    assert_eq!((used("gigabytes"), used("snapshots")), (Some(6), Some(1)));
    let refused = e.svc.delete(&me, &v.id.to_string()).await;
    assert!(matches!(refused, Err(VolumeError::BadRequest(m)) if m == DELETE_REFUSED));
    // A smaller volume than the snapshot is refused.
    let small = NewVolume { size: 2, snapshot_id: Some(s.id.clone()), ..NewVolume::default() };
    assert!(matches!(e.svc.create(&me, small).await, Err(VolumeError::BadRequest(_))));
    e.svc.delete_cascading(&me, &v.id.to_string(), true).await.expect("cascade");
    assert!(matches!(e.svc.snapshot_visible(&me, &s.id).await, Err(VolumeError::NotFound { .. })));
    assert_eq!(e.svc.usage("p1").await.expect("usage").gigabytes, 0);
    assert!(e.backend.snapshots().await.expect("list").is_empty());
}

/// An in-use volume needs `force` (Cinder's 400 without it).
#[tokio::test]
async fn snapshot_of_in_use_volume_needs_force() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::InUse).await.expect("in-use");
    let req = |force| NewSnapshot { volume_id: v.id.to_string(), force, ..Default::default() };
    let refused = e.svc.snapshot_create(&me, req(false)).await;
    assert!(
        matches!(refused, Err(VolumeError::BadRequest(m)) if m.contains("status must be available, but current status is: in-use"))
    );
    assert_eq!(e.svc.snapshot_create(&me, req(true)).await.expect("forced").status, "available");
}

/// Crash safety: a snapshot left `creating` without its copy becomes
/// `error` (never a copy taken later than asked); one left `deleting`
/// has its removal finished and its quota released.
#[tokio::test]
async fn reconciler_finishes_interrupted_snapshots() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    let s = e
        .svc
        .snapshot_create(&me, NewSnapshot { volume_id: v.id.to_string(), ..Default::default() })
        .await
        .expect("snapshot");
    // As if the process died before the copy was made / during the delete.
    let half = stratus_db::SnapshotRow { id: uuid::Uuid::new_v4().to_string(), status: "creating".into(), ..s.clone() };
    let half = stratus_db::SnapshotRow { backend_name: format!("snapshot-{}", half.id), ..half };
    let limits = stratus_db::SnapshotLimits { snapshots: -1, gigabytes: -1, type_snapshots: -1, type_gigabytes: -1 };
    e.ds.snapshot_create(&half, &[VolumeStatus::Available], limits).await.expect("recorded");
    e.ds.snapshot_set_status(&s.id, &[], "deleting", None).await.expect("deleting");
    e.clock.advance(chrono::Duration::seconds(120));
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!(r.snapshots_finished, 2);
    assert_eq!(e.ds.snapshot_get(&half.id).await.expect("kept").status, "error");
    assert!(e.ds.snapshot_get(&s.id).await.is_err());
    assert!(e.backend.snapshots().await.expect("list").is_empty());
}

mod group_snapshots;
/// Cinder 3.40 `revert`: only to the volume's latest snapshot (400 for
/// another or none), sizes equal (400), volume and snapshot `available`
/// (409); the revert leaves both `available`, a backend failure leaves the
/// volume `error` and the snapshot `available` (Cinder's manager).
#[tokio::test]
async fn revert_goes_to_the_latest_snapshot_only() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    let vid = v.id.to_string();
    let none = e.svc.revert_to_snapshot(&me, &vid, Some("x")).await;
    assert!(matches!(none, Err(VolumeError::BadRequest(m)) if m.contains("doesn't have any snapshots")));
    let snap = |me: AuthContext| {
        let svc = e.svc.clone();
        let vid = vid.clone();
        async move {
            svc.snapshot_create(&me, NewSnapshot { volume_id: vid, ..Default::default() }).await.expect("snapshot")
        }
    };
    let s1 = snap(me.clone()).await;
    e.clock.advance(chrono::Duration::seconds(1));
    let s2 = snap(me.clone()).await;
    let older = e.svc.revert_to_snapshot(&me, &vid, Some(&s1.id)).await;
    assert!(matches!(older, Err(VolumeError::BadRequest(m)) if m.contains("not the latest one")));
    let unnamed = e.svc.revert_to_snapshot(&me, &vid, None).await;
    assert!(matches!(unnamed, Err(VolumeError::BadRequest(m)) if m.starts_with("Specified snapshot None")));
    // Readers may not; another project does not see the volume.
    assert!(matches!(
        e.svc.revert_to_snapshot(&ctx("p1", "reader"), &vid, Some(&s2.id)).await,
        Err(VolumeError::Forbidden { .. })
    ));
    assert!(matches!(
        e.svc.revert_to_snapshot(&ctx("p2", "member"), &vid, Some(&s2.id)).await,
        Err(VolumeError::NotFound { .. })
    ));
    // Not `available`: 409.
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::InUse).await.expect("in-use");
    let busy = e.svc.revert_to_snapshot(&me, &vid, Some(&s2.id)).await;
    assert!(matches!(busy, Err(VolumeError::Conflict(m)) if m.contains("Volume's status must be 'available'")));
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Available).await.expect("available");
    e.ds.snapshot_set_status(&s2.id, &[], "error", None).await.expect("error");
    let bad = e.svc.revert_to_snapshot(&me, &vid, Some(&s2.id)).await;
    assert!(matches!(bad, Err(VolumeError::Conflict(m)) if m.contains("Snapshot's status must be 'available'")));
    assert_eq!(e.ds.volume_get(&v.id).await.expect("v").status, VolumeStatus::Available, "rolled back");
    e.ds.snapshot_set_status(&s2.id, &[], "available", None).await.expect("available");

    e.svc.revert_to_snapshot(&me, &vid, Some(&s2.id)).await.expect("revert");
    assert_eq!(e.backend.reverts(), 1);
    assert_eq!(e.ds.volume_get(&v.id).await.expect("v").status, VolumeStatus::Available);
    assert_eq!(e.ds.snapshot_get(&s2.id).await.expect("s").status, "available");

    e.backend.failing_reverts(1);
    assert!(e.svc.revert_to_snapshot(&me, &vid, Some(&s2.id)).await.is_err());
    assert_eq!(e.ds.volume_get(&v.id).await.expect("v").status, VolumeStatus::Error);
    assert_eq!(e.ds.snapshot_get(&s2.id).await.expect("s").status, "available");

    // A size change since the snapshot: 400.
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Available).await.expect("available");
    e.svc.extend(&me, &vid, 2, false).await.expect("extend");
    let grown = e.svc.revert_to_snapshot(&me, &vid, Some(&s2.id)).await;
    assert!(matches!(grown, Err(VolumeError::BadRequest(m)) if m.contains("must be equal to the snapshot size")));
}

/// Crash safety of a revert: a volume left `reverting` has its revert
/// rerun by the reconciler (both `available` again); a snapshot left
/// `restoring` without a reverting volume is released.
#[tokio::test]
async fn reconciler_finishes_interrupted_reverts() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    let s = e
        .svc
        .snapshot_create(&me, NewSnapshot { volume_id: v.id.to_string(), ..Default::default() })
        .await
        .expect("snapshot");
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Reverting).await.expect("reverting");
    e.ds.snapshot_set_status(&s.id, &[], "restoring", None).await.expect("restoring");
    e.clock.advance(chrono::Duration::seconds(120));
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!(r.snapshots_finished, 1);
    assert_eq!(e.backend.reverts(), 1);
    assert_eq!(e.ds.volume_get(&v.id).await.expect("v").status, VolumeStatus::Available);
    assert_eq!(e.ds.snapshot_get(&s.id).await.expect("s").status, "available");
    // A `restoring` snapshot alone.
    e.ds.snapshot_set_status(&s.id, &[], "restoring", None).await.expect("restoring");
    e.clock.advance(chrono::Duration::seconds(120));
    e.svc.reconcile().await.expect("pass");
    assert_eq!(e.ds.snapshot_get(&s.id).await.expect("s").status, "available");
    assert_eq!(e.backend.reverts(), 1);
}

/// Cinder 3.62 `/default-types`: admin only (403 otherwise); an unknown
/// project is 404 and an unknown type 400; a project's volumes created
/// without a type (and `GET /types/default`) get its default before the
/// global one; a type that is a project default cannot be deleted (400);
/// unset falls back to the global default.
#[tokio::test]
async fn project_default_types_as_cinder() {
    let e = env().await;
    let admin = ctx("admin", "admin");
    let p = stratus_db::ProjectRow {
        id: "p1".into(),
        name: "p1".into(),
        domain_id: "default".into(),
        description: String::new(),
        enabled: true,
    };
    e.ds.project_create(&p).await.expect("project");
    let (gold, _) = e.svc.type_create(&admin, new_type("gold", true)).await.expect("gold");
    assert!(matches!(e.svc.default_type_set(&member(), "p1", "gold").await, Err(VolumeError::Forbidden { .. })));
    assert!(matches!(e.svc.default_type_list(&member()).await, Err(VolumeError::Forbidden { .. })));
    assert!(matches!(e.svc.default_type_get(&admin, "p1").await,
        Err(e) if e.to_string() == "Default type for project p1 not found."));
    assert!(matches!(e.svc.default_type_set(&admin, "nope", "gold").await,
        Err(e) if e.to_string() == "Project with id nope not found."));
    assert!(matches!(e.svc.default_type_set(&admin, "p1", "silver").await, Err(VolumeError::BadRequest(_))));
    let d = e.svc.default_type_set(&admin, "p1", "gold").await.expect("set by name");
    assert_eq!((d.project_id.as_str(), d.volume_type_id.as_str()), ("p1", gold.id.as_str()));
    assert_eq!(e.svc.default_type_set(&admin, "p1", &gold.id).await.expect("set by id"), d);
    assert_eq!(e.svc.default_type_list(&admin).await.expect("list"), vec![d.clone()]);
    // Volumes of p1 without a type get gold; an explicit type wins.
    let v = e.svc.create(&member(), new_volume(1, "v")).await.expect("volume");
    assert_eq!(v.volume_type_id.as_deref(), Some(gold.id.as_str()));
    assert_eq!(e.svc.type_get(&member(), "default").await.expect("default").id, gold.id);
    let typed = NewVolume { volume_type: Some("__DEFAULT__".into()), ..new_volume(1, "t") };
    let t = e.svc.create(&member(), typed).await.expect("typed");
    assert_eq!(t.volume_type_id.as_deref(), Some(stratus_db::DEFAULT_VOLUME_TYPE_ID));
    // Another project keeps the global default.
    let other = e.svc.create(&ctx("p2", "member"), new_volume(1, "o")).await.expect("other");
    assert_eq!(other.volume_type_id.as_deref(), Some(stratus_db::DEFAULT_VOLUME_TYPE_ID));
    // A project default cannot be deleted.
    let refused = e.svc.type_delete(&admin, &gold.id).await;
    assert!(matches!(refused, Err(VolumeError::BadRequest(m)) if m.contains("is a default volume type")));
    e.svc.default_type_unset(&admin, "p1").await.expect("unset");
    e.svc.default_type_unset(&admin, "p1").await.expect("unset again");
    assert!(e.svc.default_type_list(&admin).await.expect("list").is_empty());
    let v = e.svc.create(&member(), new_volume(1, "w")).await.expect("volume");
    assert_eq!(v.volume_type_id.as_deref(), Some(stratus_db::DEFAULT_VOLUME_TYPE_ID));
}

/// Cinder 3.23 `force` on volume delete (admins, `volume:force_delete`):
/// Stratus honours it from bookkeeping-only statuses (`maintenance`,
/// `in-use` without an attachment record) but never with an attachment
/// record or its own storage operation in flight (`creating`, `reverting`).
#[tokio::test]
async fn forced_delete_is_admin_only_and_never_with_attachments() {
    let e = env().await;
    let admin = ctx("admin", "admin");
    let me = member();
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    let vid = v.id.to_string();
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Maintenance).await.expect("maintenance");
    assert!(matches!(e.svc.delete_forced(&me, &vid, false).await, Err(VolumeError::Forbidden { .. })));
    assert!(matches!(e.svc.delete(&me, &vid).await, Err(VolumeError::BadRequest(m)) if m == DELETE_REFUSED));
    e.svc.delete_forced(&admin, &vid, false).await.expect("forced");
    assert!(e.backend.volume(&v.backend_name).is_none(), "storage removed");
    for status in [VolumeStatus::Creating, VolumeStatus::Reverting, VolumeStatus::AwaitingTransfer] {
        let w = e.svc.create(&me, new_volume(1, "w")).await.expect("volume");
        e.ds.volume_set_status(&w.id, &[], status).await.expect("status");
        let r = e.svc.delete_forced(&admin, &w.id.to_string(), false).await;
        assert!(matches!(r, Err(VolumeError::BadRequest(m)) if m == DELETE_REFUSED), "{status}");
    }
    // An attachment record: refused even forced (a host may open it).
    let a = e.svc.create(&me, new_volume(1, "a")).await.expect("volume");
    e.svc.attachment_create(&me, &a.id.to_string(), &server().to_string(), None).await.expect("attachment");
    let r = e.svc.delete_forced(&admin, &a.id.to_string(), false).await;
    assert!(matches!(r, Err(VolumeError::BadRequest(m)) if m == DELETE_REFUSED));
    assert!(e.backend.volume(&a.backend_name).is_some());
}

/// Cinder 3.68 `os-reimage`: the volume's storage rebuilt from an active
/// image that fits it, `available`/`error` (also `reserved` with
/// `reimage_reserved`, else 400), back to its status after; refused with
/// snapshots (Stratus) and for an image larger than the volume (400).
#[tokio::test]
async fn reimage_rebuilds_from_the_image_as_cinder() {
    let e = env().await;
    let me = member();
    let image_id = uuid::Uuid::new_v4().to_string();
    e.ds.image_create(&ImageRow {
        id: image_id.parse().expect("uuid"),
        name: Some("cirros".into()),
        owner: "p1".into(),
        status: stratus_image::ImageStatus::Queued,
        visibility: stratus_image::Visibility::Private,
        disk_format: Some(stratus_image::DiskFormat::Raw),
        container_format: Some(stratus_image::ContainerFormat::Bare),
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        properties: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    })
    .await
    .expect("image");
    let v = e.svc.create(&me, new_volume(1, "v")).await.expect("volume");
    let vid = v.id.to_string();
    let not_active = e.svc.reimage_volume(&me, &vid, &image_id, false).await;
    assert!(matches!(not_active, Err(VolumeError::BadRequest(m)) if m.contains("is not active")));
    std::fs::write(e.dir.0.join("images").join(&image_id), b"bootable bits").expect("write image");
    e.ds.image_set_data(&image_id.parse().expect("uuid"), 13, "md5", "sha").await.expect("active");
    assert!(matches!(
        e.svc.reimage_volume(&ctx("p1", "reader"), &vid, &image_id, false).await,
        Err(VolumeError::Forbidden { .. })
    ));
    assert!(matches!(e.svc.reimage_volume(&me, &vid, "nope", false).await, Err(VolumeError::BadRequest(_))));
    e.svc.reimage_volume(&me, &vid, &image_id, false).await.expect("reimage");
    let after = e.ds.volume_get(&v.id).await.expect("v");
    assert_eq!(after.status, VolumeStatus::Available);
    assert_eq!(after.image_id.as_deref(), Some(image_id.as_str()));
    assert_eq!(e.backend.volume(&v.backend_name).expect("stored").image, Some(e.dir.0.join("images").join(&image_id)));
    // `reserved` needs `reimage_reserved`.
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Reserved).await.expect("reserved");
    let refused = e.svc.reimage_volume(&me, &vid, &image_id, false).await;
    assert!(matches!(refused, Err(VolumeError::BadRequest(m)) if m.contains("must be available or error")));
    e.svc.reimage_volume(&me, &vid, &image_id, true).await.expect("reserved reimage");
    assert_eq!(e.ds.volume_get(&v.id).await.expect("v").status, VolumeStatus::Reserved);
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Available).await.expect("available");
    // With snapshots: refused.
    e.svc.snapshot_create(&me, NewSnapshot { volume_id: vid.clone(), ..Default::default() }).await.expect("snapshot");
    let snapped = e.svc.reimage_volume(&me, &vid, &image_id, false).await;
    assert!(matches!(snapped, Err(VolumeError::BadRequest(m)) if m.contains("has snapshots")));
    // An interrupted re-image ends `error`.
    let w = e.svc.create(&me, new_volume(1, "w")).await.expect("volume");
    e.ds.volume_set_status(&w.id, &[], VolumeStatus::Downloading).await.expect("downloading");
    e.clock.advance(chrono::Duration::seconds(120));
    e.svc.reconcile().await.expect("pass");
    assert_eq!(e.ds.volume_get(&w.id).await.expect("w").status, VolumeStatus::Error);
}
