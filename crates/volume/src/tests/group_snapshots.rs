//! Volume clones, group snapshots and groups built from a source (Cinder
//! 3.14): bytes, status rules, visibility and quota.

use super::*;

fn used(usage: &[QuotaUse], r: &str) -> Option<i64> {
    usage.iter().find(|q| q.resource == r).map(|q| q.in_use)
}

/// Cinder's clone (`source_volid`): the new volume holds the source's
/// bytes at clone time, at its own size, shows `source_volid`, and is
/// independent afterwards (writes to either stay apart; the source may be
/// deleted first). Local backend, real files.
#[tokio::test]
async fn clone_copies_bytes_and_stays_independent_local_backend() {
    let dir = std::env::temp_dir().join(format!("stratus-clone-bytes-{}", uuid::Uuid::new_v4()));
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
    let req = NewVolume { size: 2, source_volid: Some(v.id.to_string()), ..NewVolume::default() };
    let copy = svc.create(&me, req).await.expect("clone");
    assert_eq!(copy.status, VolumeStatus::Available);
    assert_eq!(copy.source_volid.as_deref(), Some(v.id.to_string().as_str()));
    assert_eq!(copy.volume_type_id, v.volume_type_id, "the source's type when none is asked");
    c.write(4096, b"again").await.expect("write 2");
    Box::new(c).close().await.expect("close");
    let read = |name: &str| {
        let bytes = std::fs::read(local.image_path(name).expect("path")).expect("read");
        (bytes[4096..4101].to_vec(), bytes.len() as u64)
    };
    assert_eq!(read(&copy.backend_name), (b"first".to_vec(), 2 << 30));
    assert_eq!(read(&v.backend_name).0, b"again".to_vec());
    // No scratch snapshot is left on the source; the source can go first.
    assert!(local.snapshots().await.expect("list").is_empty());
    let usage = svc.quota_show(&me, "p1").await.expect("usage");
    assert_eq!((used(&usage, "volumes"), used(&usage, "gigabytes")), (Some(2), Some(3)));
    svc.delete(&me, &v.id.to_string()).await.expect("source delete");
    assert_eq!(read(&copy.backend_name).0, b"first".to_vec());
    // The size defaults to the source's.
    let req = NewVolume { source_volid: Some(copy.id.to_string()), ..NewVolume::default() };
    assert_eq!(svc.create(&me, req).await.expect("clone of the clone").size_gb, 2);
}

/// Cinder's refusals: a source in `error` (400), a clone smaller than its
/// source (400), another project's source (404, as if absent).
#[tokio::test]
async fn clone_refusals() {
    let e = env().await;
    let me = member();
    let v = e.svc.create(&me, new_volume(2, "src")).await.expect("volume");
    let clone = |size: i64| NewVolume { size, source_volid: Some(v.id.to_string()), ..NewVolume::default() };
    assert!(
        matches!(e.svc.create(&me, clone(1)).await, Err(VolumeError::BadRequest(m)) if m.contains("cannot be smaller"))
    );
    let other = ctx("p2", "member");
    assert!(matches!(e.svc.create(&other, clone(2)).await, Err(VolumeError::NotFound { .. })));
    e.ds.volume_set_status(&v.id, &[], VolumeStatus::Error).await.expect("error");
    assert!(
        matches!(e.svc.create(&me, clone(2)).await, Err(VolumeError::BadRequest(m)) if m.contains("available or in-use"))
    );
    assert_eq!(e.svc.usage("p1").await.expect("usage").volumes, 1, "nothing recorded for the refusals");
}

/// Cinder's group snapshot lifecycle: a snapshot of each volume carrying
/// `group_snapshot_id`, counted in the snapshot quotas; the group cannot
/// be deleted while it has group snapshots, nor a member snapshot alone;
/// another project sees 404; a group is built from it with a volume per
/// member; its delete removes the members and releases their quota.
#[tokio::test]
async fn group_snapshot_lifecycle() {
    let e = env().await;
    let me = member();
    let (g, v) = grouped(&e).await;
    let gs = e.svc.group_snapshot_create(&me, &g, Some("gs".into()), None).await.expect("group snapshot");
    assert_eq!((gs.status.as_str(), gs.group_id.as_str()), ("available", g.as_str()));
    let members = e.ds.group_snapshot_members(&gs.id).await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].volume_id, v.id);
    assert_eq!(members[0].group_snapshot_id.as_deref(), Some(gs.id.as_str()));
    assert_eq!(members[0].status, "available");
    let usage = e.svc.quota_show(&me, "p1").await.expect("usage");
    assert_eq!((used(&usage, "snapshots"), used(&usage, "gigabytes")), (Some(1), Some(2)));
    // Cinder: "Group has existing snapshots."; a member goes only with its group snapshot.
    let refused = e.svc.group_delete(&me, &g, true).await;
    assert!(matches!(refused, Err(VolumeError::BadRequest(m)) if m.contains("Group has existing snapshots")));
    assert!(matches!(e.svc.snapshot_delete(&me, &members[0].id, false).await, Err(VolumeError::BadRequest(_))));
    // Another project's group snapshot is 404 to show, delete and build from.
    let other = ctx("p2", "member");
    assert!(matches!(e.svc.group_snapshot_get(&other, &gs.id).await, Err(VolumeError::NotFound { .. })));
    assert!(matches!(e.svc.group_snapshot_delete(&other, &gs.id).await, Err(VolumeError::NotFound { .. })));
    let stolen = e.svc.group_create_from_group_snapshot(&other, &gs.id, None, None).await;
    assert!(matches!(stolen, Err(VolumeError::NotFound { .. })));
    assert!(e.svc.group_snapshot_list(&other, false).await.expect("list").is_empty());
    assert_eq!(e.svc.group_snapshot_list(&me, false).await.expect("list").len(), 1);
    // A group from the group snapshot: one volume per member, from its snapshot.
    let g2 = e.svc.group_create_from_group_snapshot(&me, &gs.id, Some("g2".into()), None).await.expect("from gs");
    assert_eq!(g2.group_snapshot_id.as_deref(), Some(gs.id.as_str()));
    let vols = e.svc.group_volume_ids(&g2.id).await.expect("volumes");
    assert_eq!(vols.len(), 1);
    let nv = e.svc.get_visible(&me, &vols[0]).await.expect("volume");
    assert_eq!((nv.status, nv.snapshot_id.as_deref()), (VolumeStatus::Available, Some(members[0].id.as_str())));
    e.svc.group_delete(&me, &g2.id, true).await.expect("delete the copy");
    // Delete: members gone, quota released, then the group can go.
    e.svc.group_snapshot_delete(&me, &gs.id).await.expect("group snapshot delete");
    assert!(matches!(e.svc.group_snapshot_get(&me, &gs.id).await, Err(VolumeError::NotFound { .. })));
    assert!(e.ds.group_snapshot_members(&gs.id).await.expect("members").is_empty());
    assert!(e.backend.snapshots().await.expect("list").is_empty());
    let usage = e.svc.quota_show(&me, "p1").await.expect("usage");
    assert_eq!((used(&usage, "snapshots"), used(&usage, "gigabytes")), (Some(0), Some(1)));
    e.svc.group_delete(&me, &g, true).await.expect("group delete once its snapshots are gone");
}

/// Cinder's quota: a group snapshot over the `snapshots` quota is refused
/// (413) and leaves nothing behind.
#[tokio::test]
async fn group_snapshot_over_quota_records_nothing() {
    let e = env().await;
    let me = member();
    let (g, _) = grouped(&e).await;
    let admin = ctx("admin-project", "admin");
    e.svc.quota_update(&admin, "p1", &[("snapshots".to_string(), 0)]).await.expect("quota");
    let refused = e.svc.group_snapshot_create(&me, &g, None, None).await;
    assert!(matches!(refused, Err(VolumeError::QuotaExceeded(_))), "{refused:?}");
    assert!(e.svc.group_snapshot_list(&me, false).await.expect("list").is_empty());
    assert!(e.svc.snapshot_list(&me, &SnapshotFilter::default()).await.expect("list").is_empty());
}

/// Cinder 3.19: reset_status is admin-only and takes Cinder's group
/// snapshot statuses; a `creating` status is kept as set.
#[tokio::test]
async fn group_snapshot_reset_status() {
    let e = env().await;
    let me = member();
    let (g, _) = grouped(&e).await;
    let gs = e.svc.group_snapshot_create(&me, &g, None, None).await.expect("group snapshot");
    assert!(matches!(
        e.svc.group_snapshot_reset_status(&me, &gs.id, "error").await,
        Err(VolumeError::Forbidden { .. })
    ));
    let admin = ctx("admin-project", "admin");
    assert!(matches!(
        e.svc.group_snapshot_reset_status(&admin, &gs.id, "bogus").await,
        Err(VolumeError::BadRequest(_))
    ));
    for s in ["creating", "available", "error"] {
        e.svc.group_snapshot_reset_status(&admin, &gs.id, s).await.expect("reset");
        assert_eq!(e.svc.group_snapshot_get(&me, &gs.id).await.expect("get").status, s);
    }
    // An `error` group snapshot can be deleted.
    e.svc.group_snapshot_delete(&me, &gs.id).await.expect("delete");
}

/// Cinder's create-from-src with a source group: a clone of each of its
/// volumes in the new group (`source_group_id` shown); an empty source is
/// refused.
#[tokio::test]
async fn group_from_source_group_clones_its_volumes() {
    let e = env().await;
    let me = member();
    let (g, v) = grouped(&e).await;
    let g2 = e.svc.group_create_from_src(&me, &g, Some("copy".into()), None).await.expect("copy");
    assert_eq!(g2.source_group_id.as_deref(), Some(g.as_str()));
    let vols = e.svc.group_volume_ids(&g2.id).await.expect("volumes");
    assert_eq!(vols.len(), 1);
    let c = e.svc.get_visible(&me, &vols[0]).await.expect("clone");
    assert_eq!((c.status, c.source_volid.clone()), (VolumeStatus::Available, Some(v.id.to_string())));
    assert_eq!(e.svc.usage("p1").await.expect("usage").volumes, 2);
    e.svc.group_delete(&me, &g2.id, true).await.expect("delete copy");
    let admin = ctx("admin-project", "admin");
    let gt = e.svc.group_type_create(&admin, "gt2", None, true, BTreeMap::new()).await.expect("group type");
    let req = NewGroup {
        group_type: gt.id,
        volume_types: vec![stratus_db::DEFAULT_VOLUME_TYPE_ID.to_string()],
        ..NewGroup::default()
    };
    let empty = e.svc.group_create(&me, req).await.expect("empty group");
    let refused = e.svc.group_create_from_src(&me, &empty.id, None, None).await;
    assert!(matches!(refused, Err(VolumeError::BadRequest(m)) if m.contains("Source Group is empty")));
}

/// Crash safety: a group snapshot left `creating` (its members finished by
/// the snapshot step) takes its members' outcome; one left `deleting` has
/// its members removed and goes, quota released.
#[tokio::test]
async fn reconciler_finishes_interrupted_group_snapshots() {
    let e = env().await;
    let me = member();
    let (g, _) = grouped(&e).await;
    let a = e.svc.group_snapshot_create(&me, &g, None, None).await.expect("a");
    let b = e.svc.group_snapshot_create(&me, &g, None, None).await.expect("b");
    e.ds.group_snapshot_set_status(&a.id, &[], "creating").await.expect("as if cut off");
    e.ds.group_snapshot_set_status(&b.id, &[], "deleting").await.expect("as if cut off");
    e.clock.advance(chrono::Duration::seconds(120));
    let r = e.svc.reconcile().await.expect("pass");
    assert_eq!(r.snapshots_finished, 2);
    assert_eq!(e.svc.group_snapshot_get(&me, &a.id).await.expect("a").status, "available");
    assert!(matches!(e.svc.group_snapshot_get(&me, &b.id).await, Err(VolumeError::NotFound { .. })));
    assert_eq!(
        e.svc.usage("p1").await.expect("usage").gigabytes,
        2,
        "the volume and the member snapshot of the group snapshot kept"
    );
    let usage = e.svc.quota_show(&me, "p1").await.expect("usage");
    assert_eq!(used(&usage, "snapshots"), Some(1));
}
