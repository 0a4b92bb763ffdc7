//! Service-level tests: the rules (visibility, modify, patch, validation),
//! the list query and the store, without HTTP.

use super::*;
use serde_json::json;

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    svc: ImageService,
    _dir: TempDir,
    _db: stratus_db::testing::TestDb,
}

async fn env() -> Env {
    let dir = std::env::temp_dir().join(format!("stratus-image-svc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (ds, db) = stratus_db::testing::fresh(std::sync::Arc::new(stratus_types::SystemClock)).await;
    let svc = ImageService::new(ds, dir.join("images"));
    Env { svc, _dir: TempDir(dir), _db: db }
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

fn row(owner: &str, visibility: Visibility) -> ImageRow {
    let mut r = rules::new_image(&ctx(owner, "member"), &Map::new()).expect("row");
    r.visibility = visibility;
    r
}

fn req(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<&'static [u8], std::io::Error>> {
    futures::stream::iter(parts.into_iter().map(Ok))
}

#[test]
fn visibility_rule_own_open_or_admin() {
    let me = ctx("p1", "member");
    let admin = ctx("adm", "admin");
    for (vis, other_sees) in [
        (Visibility::Public, true),
        (Visibility::Community, true),
        (Visibility::Shared, false),
        (Visibility::Private, false),
    ] {
        assert!(visible_to(&me, &row("p1", vis)), "{vis}: owner");
        assert!(visible_to(&admin, &row("p2", vis)), "{vis}: admin");
        assert_eq!(visible_to(&me, &row("p2", vis)), other_sees, "{vis}: other project");
    }
}

#[test]
fn modify_needs_write_role_and_ownership() {
    let r = row("p1", Visibility::Public);
    assert!(rules::check_modify(&ctx("p1", "member"), &r).is_ok());
    assert!(rules::check_modify(&ctx("p2", "admin"), &r).is_ok());
    assert!(matches!(rules::check_modify(&ctx("p1", "reader"), &r), Err(ImageError::NotAuthorized)));
    assert!(matches!(rules::check_modify(&ctx("p2", "member"), &r), Err(ImageError::NotOwner { .. })));
}

#[test]
fn create_request_is_validated() {
    let me = ctx("p1", "member");
    let r = rules::new_image(&me, &req(json!({"name": "n", "disk_format": "qcow2", "tags": ["a", "a", "b"]})))
        .expect("valid");
    assert_eq!(r.status, ImageStatus::Queued);
    assert_eq!(r.visibility, Visibility::Shared);
    assert_eq!(r.disk_format, Some(DiskFormat::Qcow2));
    assert_eq!(rules::tags_of(&rules::props_of(&r)), vec!["a".to_string(), "b".to_string()]);
    let e = rules::new_image(&me, &req(json!({"disk_format": "floppy"}))).expect_err("bad format");
    assert_eq!(
        e.to_string(),
        "Invalid value \"floppy\" for 'disk_format'; expected one of: ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop."
    );
    assert!(matches!(rules::new_image(&me, &req(json!({"visibility": "public"}))), Err(ImageError::Forbidden(_))));
    assert!(matches!(rules::new_image(&me, &req(json!({"size": 1}))), Err(ImageError::ReadOnly { .. })));
    assert!(matches!(rules::new_image(&me, &req(json!({"stratus:x": "1"}))), Err(ImageError::Forbidden(_))));
    assert!(matches!(rules::new_image(&ctx("p1", "reader"), &Map::new()), Err(ImageError::NotAuthorized)));
}

#[test]
fn patch_keeps_reserved_keys_hidden_and_formats_fixed_once_active() {
    let me = ctx("p1", "member");
    let mut r = row("p1", Visibility::Private);
    let ops = [
        json!({"op": "add", "path": "/os_distro", "value": "cirros"}),
        json!({"op": "replace", "path": "/tags", "value": ["t"]}),
    ];
    rules::apply_patch(&me, &mut r, &ops).expect("patch");
    let view = image_view(&r);
    assert_eq!(view["os_distro"], "cirros");
    assert_eq!(view["tags"], json!(["t"]));
    assert!(view.as_object().expect("object").keys().all(|k| !k.starts_with("stratus:")));

    // The reserved keys are not properties a client can remove.
    let bad = [json!({"op": "remove", "path": "/stratus:tags"})];
    assert!(matches!(rules::apply_patch(&me, &mut r, &bad), Err(ImageError::Conflict(_))));
    r.status = ImageStatus::Active;
    let fmt = [json!({"op": "replace", "path": "/disk_format", "value": "raw"})];
    assert!(matches!(rules::apply_patch(&me, &mut r, &fmt), Err(ImageError::Forbidden(_))));
}

#[tokio::test]
async fn upload_streams_hashes_and_activates() {
    let e = env().await;
    let me = ctx("p1", "member");
    let img = e.svc.create(&me, &req(json!({"name": "i", "disk_format": "raw", "container_format": "bare"}))).await;
    let img = img.expect("create");
    e.svc.upload(&me, &img.id.to_string(), chunks(vec![b"hello ", b"world"])).await.expect("upload");
    let got = e.svc.get_visible(&me, &img.id.to_string()).await.expect("get");
    assert_eq!(got.status, ImageStatus::Active);
    assert_eq!(got.size, Some(11));
    assert_eq!(got.checksum.as_deref(), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
    match e.svc.download(&me, &img.id.to_string()).await.expect("download") {
        d @ Download::Data { .. } => assert_eq!(d.into_bytes().await.expect("read"), b"hello world"),
        Download::Empty => panic!("active image has data"),
    }
    let again = e.svc.upload(&me, &img.id.to_string(), chunks(vec![b"x"])).await;
    assert!(matches!(again, Err(ImageError::Conflict(_))));
    // Another project neither sees it nor learns that it exists.
    let other = ctx("p2", "member");
    assert!(matches!(e.svc.download(&other, &img.id.to_string()).await, Err(ImageError::NotFound { .. })));
    e.svc.delete(&me, &img.id.to_string()).await.expect("delete");
    assert!(!e.svc.image_dir().join(img.id.to_string()).exists());
}

#[tokio::test]
async fn failed_upload_leaves_no_file_and_stays_queued() {
    let e = env().await;
    let me = ctx("p1", "member");
    let img = e.svc.create(&me, &req(json!({"disk_format": "raw", "container_format": "bare"}))).await;
    let img = img.expect("create");
    let body = futures::stream::iter(vec![Ok(&b"part"[..]), Err(std::io::Error::other("client gone"))]);
    let r = e.svc.upload(&me, &img.id.to_string(), body).await;
    assert!(matches!(r, Err(ImageError::BadRequest(m)) if m.contains("client gone")));
    let left: Vec<_> = std::fs::read_dir(e.svc.image_dir()).expect("dir").collect();
    assert!(left.is_empty(), "partial files remain: {left:?}");
    assert_eq!(e.svc.get_visible(&me, &img.id.to_string()).await.expect("get").status, ImageStatus::Queued);
    assert!(matches!(e.svc.download(&me, &img.id.to_string()).await, Ok(Download::Empty)));
}

#[tokio::test]
async fn seed_finishes_an_interrupted_seed_instead_of_duplicating_it() {
    let e = env().await;
    let admin = ctx("adm", "admin");
    let pending = e
        .svc
        .create(
            &admin,
            &req(json!({"name": "cirros", "visibility": "public", "disk_format": "qcow2", "container_format": "bare"})),
        )
        .await
        .expect("create");
    let id = e.svc.seed("cirros", "adm", b"bits").await.expect("seed");
    assert_eq!(id, pending.id);
    assert_eq!(e.svc.seed("cirros", "adm", b"bits").await.expect("again"), id);
    let query = ListImagesQuery::parse(&[("name".into(), "cirros".into())]).expect("query");
    let page = e.svc.list(&admin, &query).await.expect("list");
    assert_eq!(page.images.len(), 1);
    assert_eq!(page.images[0].status, ImageStatus::Active);
}

#[tokio::test]
async fn seed_image_converges_formats_properties_and_bytes_keeping_the_id() {
    let e = env().await;
    let admin = ctx("adm", "admin");
    // A first start with the fake driver: the qcow2 stand-in.
    let id = e.svc.seed("cirros", "adm", b"standin").await.expect("seed");
    // A later start with a real driver: a raw disk booted with a kernel.
    let props = json!({"kernel_id": "k-1", "os_command_line": "console=ttyS0"});
    let spec = SeedImage {
        name: "cirros",
        disk_format: DiskFormat::Raw,
        container_format: ContainerFormat::Bare,
        properties: props.as_object().cloned().expect("object"),
        data: &[0u8; 4096],
    };
    assert_eq!(e.svc.seed_image("adm", &spec).await.expect("seed raw"), id, "same image, converged");
    let row = e.svc.get_visible(&admin, &id.to_string()).await.expect("get");
    assert_eq!(row.disk_format, Some(DiskFormat::Raw));
    assert_eq!(row.container_format, Some(ContainerFormat::Bare));
    assert_eq!(row.size, Some(4096));
    assert_eq!(rules::props_of(&row).get("kernel_id"), Some(&json!("k-1")));
    match e.svc.download(&admin, &id.to_string()).await.expect("download") {
        d @ Download::Data { .. } => assert_eq!(d.into_bytes().await.expect("read"), vec![0u8; 4096]),
        Download::Empty => panic!("seeded image has no data"),
    }
    // Seeding the same spec again changes nothing (same checksum, same update time).
    assert_eq!(e.svc.seed_image("adm", &spec).await.expect("again"), id);
    let again = e.svc.get_visible(&admin, &id.to_string()).await.expect("get");
    assert_eq!(again.updated_at, row.updated_at);
    let query = ListImagesQuery::parse(&[("name".into(), "cirros".into())]).expect("query");
    assert_eq!(e.svc.list(&admin, &query).await.expect("list").images.len(), 1);
    // A kernel image: aki/aki, active with its bytes.
    let kernel = SeedImage {
        name: "k",
        disk_format: DiskFormat::Aki,
        container_format: ContainerFormat::Aki,
        properties: Map::new(),
        data: b"kernel",
    };
    let kid = e.svc.seed_image("adm", &kernel).await.expect("kernel");
    let k = e.svc.get_visible(&admin, &kid.to_string()).await.expect("get kernel");
    assert_eq!(
        (k.disk_format, k.container_format, k.status),
        (Some(DiskFormat::Aki), Some(ContainerFormat::Aki), ImageStatus::Active)
    );
    // A rebuilt kernel replaces the bytes under the same id.
    let rebuilt = SeedImage { data: b"kernel v2", ..kernel };
    assert_eq!(e.svc.seed_image("adm", &rebuilt).await.expect("rebuilt"), kid);
    assert_eq!(e.svc.get_visible(&admin, &kid.to_string()).await.expect("get").size, Some(9));
}

#[tokio::test]
async fn find_visible_resolves_ids_then_names_within_the_rule() {
    let e = env().await;
    let mine = ctx("p1", "member");
    let other = ctx("p2", "member");
    let private = e.svc.create(&mine, &req(json!({"name": "priv", "visibility": "private"}))).await.expect("create");
    let community =
        e.svc.create(&mine, &req(json!({"name": "comm", "visibility": "community"}))).await.expect("create");
    assert_eq!(e.svc.find_visible(&mine, "priv").await.expect("by name").id, private.id);
    assert_eq!(e.svc.find_visible(&mine, &private.id.to_string()).await.expect("by id").id, private.id);
    assert!(matches!(e.svc.find_visible(&other, "priv").await, Err(ImageError::NotFound { .. })));
    assert!(matches!(e.svc.find_visible(&other, &private.id.to_string()).await, Err(ImageError::NotFound { .. })));
    assert_eq!(e.svc.find_visible(&other, "comm").await.expect("community").id, community.id);
}

/// The server the fixture snapshots are taken of.
const SRV_1: stratus_types::ServerId = stratus_types::ServerId(uuid::Uuid::from_u128(0x5e1));

fn snapshot_spec(id: &str) -> SnapshotSpec {
    let mut metadata = Map::new();
    metadata.insert("purpose".into(), json!("backup"));
    metadata.insert("image_type".into(), json!("custom"));
    SnapshotSpec {
        id: id.parse().expect("uuid"),
        name: "srv-shelved".into(),
        owner_project_id: "p1".into(),
        server_id: SRV_1,
        base_image_ref: None,
        min_disk: 3,
        metadata,
    }
}

#[tokio::test]
async fn snapshot_record_is_created_once() {
    let e = env().await;
    let id = uuid::Uuid::new_v4().to_string();
    let spec = snapshot_spec(&id);
    assert_eq!(e.svc.create_snapshot_record(&spec).await.expect("create"), SnapshotRecord::Created);
    assert_eq!(e.svc.create_snapshot_record(&spec).await.expect("again"), SnapshotRecord::AlreadyExists);
    let row = e.svc.get_visible(&ctx("p1", "member"), &id).await.expect("owner sees it");
    assert_eq!(row.status, ImageStatus::Active);
    assert_eq!(row.visibility, Visibility::Private);
    assert_eq!((row.size, row.min_disk, row.name.as_deref()), (Some(0), 3, Some("srv-shelved")));
    let props: Value = serde_json::from_str(&row.properties).expect("json");
    assert_eq!(props["instance_uuid"], json!(SRV_1.to_string()));
    assert_eq!(props["base_image_ref"], Value::Null);
    assert_eq!(props["purpose"], json!("backup"));
    assert_eq!(props["image_type"], json!("custom"), "the user's metadata wins");
    assert!(e.svc.get_visible(&ctx("p2", "member"), &id).await.is_err(), "private to its project");
}

#[tokio::test]
async fn snapshot_delete_is_idempotent_and_drops_the_bytes() {
    let e = env().await;
    let id = uuid::Uuid::new_v4().to_string();
    let _ = e.svc.create_snapshot_record(&snapshot_spec(&id)).await.expect("create");
    std::fs::create_dir_all(e.svc.image_dir()).expect("mkdir");
    let file = e.svc.image_dir().join(&id);
    std::fs::write(&file, b"disk").expect("bytes");
    assert_eq!(e.svc.delete_snapshot(&id).await.expect("delete"), SnapshotRemoval::Deleted);
    assert!(!file.exists());
    assert!(e.svc.get_visible(&ctx("p1", "admin"), &id).await.is_err());
    assert_eq!(e.svc.delete_snapshot(&id).await.expect("again"), SnapshotRemoval::AlreadyGone);
    assert_eq!(e.svc.delete_snapshot("not-a-uuid").await.expect("never made"), SnapshotRemoval::AlreadyGone);
}

/// Glance shows whole seconds with `Z`, whatever the stored fraction.
#[test]
fn glance_timestamps_render_as_the_stored_text_did() {
    let t = stratus_db::parse_ts("2026-11-28T23:41:22.999999Z").expect("ts");
    assert_eq!(crate::view::glance_ts(t), "2026-11-28T23:41:22Z");
}

/// A client-chosen id in any UUID spelling is accepted (as before) and
/// stored in ours; a path in any other spelling names no image.
#[tokio::test]
async fn chosen_ids_are_stored_in_our_spelling() {
    let e = env().await;
    let me = ctx("p1", "member");
    let id = ImageId::new();
    let upper = id.to_string().to_uppercase();
    let img = e.svc.create(&me, &req(json!({"id": upper}))).await.expect("create");
    assert_eq!(img.id, id);
    assert!(e.svc.get_visible(&me, &id.to_string()).await.is_ok());
    assert!(matches!(e.svc.get_visible(&me, &upper).await, Err(ImageError::NotFound { .. })));
    let bad = e.svc.create(&me, &req(json!({"id": "nope"}))).await;
    assert!(matches!(bad, Err(ImageError::BadRequest(m)) if m.starts_with("Invalid value \"nope\" for 'id'")));
}

/// Issue 11, hole 7: while bytes are uploaded the image is `saving`, and a
/// second upload is refused with 409 (Glance: data may only be uploaded to a
/// `queued` image), so nothing overwrites an image being saved or active.
#[tokio::test]
async fn upload_is_exclusive_the_image_is_saving_meanwhile() {
    let e = env().await;
    let me = ctx("p1", "member");
    let img = e.svc.create(&me, &req(json!({"disk_format": "raw", "container_format": "bare"}))).await;
    let id = img.expect("create").id.to_string();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    tx.unbounded_send(Ok(b"first ".to_vec())).expect("send");
    let svc = e.svc.clone();
    let me2 = me.clone();
    let id2 = id.clone();
    let first = tokio::spawn(async move { svc.upload(&me2, &id2, rx).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while e.svc.get_visible(&me, &id).await.expect("get").status != ImageStatus::Saving {
        assert!(std::time::Instant::now() < deadline, "image never became saving");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = e.svc.upload(&me, &id, chunks(vec![b"second"])).await;
    assert!(matches!(second, Err(ImageError::Conflict(ref m)) if m.contains("saving")), "{second:?}");
    tx.unbounded_send(Ok(b"upload".to_vec())).expect("send");
    drop(tx);
    first.await.expect("join").expect("first upload");
    match e.svc.download(&me, &id).await.expect("download") {
        d @ Download::Data { .. } => assert_eq!(d.into_bytes().await.expect("read"), b"first upload"),
        Download::Empty => panic!("active image has data"),
    }
    let again = e.svc.upload(&me, &id, chunks(vec![b"over"])).await;
    assert!(matches!(again, Err(ImageError::Conflict(_))), "{again:?}");
    // An upload that fails goes back to queued (Glance's restore), so it can be retried.
    let img = e.svc.create(&me, &req(json!({"disk_format": "raw", "container_format": "bare"}))).await;
    let id = img.expect("create").id.to_string();
    let body = futures::stream::iter(vec![Ok(&b"part"[..]), Err(std::io::Error::other("client gone"))]);
    assert!(e.svc.upload(&me, &id, body).await.is_err());
    assert_eq!(e.svc.get_visible(&me, &id).await.expect("get").status, ImageStatus::Queued);
    e.svc.upload(&me, &id, chunks(vec![b"ok"])).await.expect("retry");
}

/// Issue 11, hole 7: Glance keeps a deleted image's id reserved; creating an
/// image with it again is a 409.
#[tokio::test]
async fn a_deleted_images_id_cannot_be_reused() {
    let e = env().await;
    let me = ctx("p1", "member");
    let id = ImageId::new().to_string();
    e.svc.create(&me, &req(json!({"id": id}))).await.expect("create");
    e.svc.delete(&me, &id).await.expect("delete");
    let again = e.svc.create(&me, &req(json!({"id": id}))).await;
    assert!(matches!(again, Err(ImageError::Db(DbError::Conflict { .. }))), "{again:?}");
    assert!(matches!(e.svc.get_visible(&me, &id).await, Err(ImageError::NotFound { .. })));
}

/// A service on a datastore with a clock the test moves, and one queued
/// image of the member `me` (the sweep tests).
struct SweepEnv {
    clock: stratus_types::ManualClock,
    ds: Datastore,
    svc: ImageService,
    me: AuthContext,
    img: ImageRow,
    _dir: TempDir,
    _db: stratus_db::testing::TestDb,
}

async fn sweep_env() -> SweepEnv {
    let clock = stratus_types::ManualClock::new(chrono::Utc::now());
    let dir = std::env::temp_dir().join(format!("stratus-image-sweep-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (ds, db) = stratus_db::testing::fresh(std::sync::Arc::new(clock.clone())).await;
    let svc = ImageService::new(ds.clone(), dir.join("images"));
    let me = ctx("p1", "member");
    let img = svc.create(&me, &req(json!({"disk_format": "raw", "container_format": "bare"}))).await.expect("create");
    SweepEnv { clock, ds, svc, me, img, _dir: TempDir(dir), _db: db }
}

/// An upload whose process died leaves its image `saving` with nobody to
/// release it; the sweep gives it back as `queued` once its hold went
/// unrefreshed for `HOLD_STALE_AFTER` (Glance's restore of a failed
/// upload), and the upload can be made again. A fresh hold is left alone,
/// and so is a task still refreshed; a stale task ends as `failure`.
#[tokio::test]
async fn the_sweep_releases_holds_and_tasks_of_a_process_that_stopped() {
    let SweepEnv { clock, ds, svc, me, img, .. } = &sweep_env().await;
    // What a process that died mid-upload leaves: `saving` and partial bytes.
    assert_eq!(
        ds.image_set_status(&img.id, &[ImageStatus::Queued], ImageStatus::Saving).await.expect("hold"),
        stratus_db::Cas::Updated
    );
    let partial = store::data_path(svc.image_dir(), &img.id);
    std::fs::create_dir_all(partial.parent().expect("dir")).expect("mkdir");
    std::fs::write(&partial, b"half an upl").expect("partial");
    let task = ImageTaskRowBuilder::processing(ds, "p1").await;

    assert_eq!(svc.sweep_interrupted().await.expect("sweep"), sweep::Swept::default(), "fresh holds are kept");
    clock.advance(chrono::Duration::seconds(61));
    let swept = svc.sweep_interrupted().await.expect("sweep");
    assert_eq!(swept, sweep::Swept { images: 1, tasks: 1 });
    assert_eq!(ds.image_get(&img.id).await.expect("get").status, ImageStatus::Queued);
    assert!(!partial.exists(), "the partial bytes are dropped");
    let t = ds.image_task_get(&task).await.expect("task");
    assert_eq!(t.status, "failure");
    assert!(t.body.contains(sweep::INTERRUPTED), "{}", t.body);
    svc.upload(me, &img.id.to_string(), chunks(vec![b"whole"])).await.expect("upload again");
    assert_eq!(ds.image_get(&img.id).await.expect("get").status, ImageStatus::Active);
    assert_eq!(svc.sweep_interrupted().await.expect("sweep"), sweep::Swept::default());
}

/// A task row as a running import leaves it (`processing`).
struct ImageTaskRowBuilder;
impl ImageTaskRowBuilder {
    async fn processing(ds: &Datastore, owner: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let row = stratus_db::ImageTaskRow {
            id: id.clone(),
            owner: owner.into(),
            task_type: "import".into(),
            status: "processing".into(),
            image_id: None,
            body: "{}".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            expires_at: None,
        };
        ds.image_task_create(&row).await.expect("task");
        id
    }
}

/// A live upload refreshes its hold: however long it runs, the sweep
/// never gives its image away.
#[tokio::test]
async fn a_live_upload_keeps_its_hold_through_sweeps() {
    let SweepEnv { clock, ds, svc, me, img, .. } = &sweep_env().await;
    let id = img.id.to_string();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    tx.unbounded_send(Ok(b"slow ".to_vec())).expect("send");
    let (svc2, me2, id2) = (svc.clone(), me.clone(), id.clone());
    let upload = tokio::spawn(async move { svc2.upload(&me2, &id2, rx).await });
    while ds.image_get(&img.id).await.expect("get").status != ImageStatus::Saving {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A minute passes with no byte from a slow client: by the clock the
    // hold would be stale, but its next refresh (real time) renews it.
    clock.advance(chrono::Duration::seconds(61));
    tokio::time::sleep(HOLD_REFRESH + std::time::Duration::from_millis(500)).await;
    assert_eq!(svc.sweep_interrupted().await.expect("sweep"), sweep::Swept::default());
    tx.unbounded_send(Ok(b"upload".to_vec())).expect("send");
    drop(tx);
    upload.await.expect("join").expect("upload");
    assert_eq!(ds.image_get(&img.id).await.expect("get").status, ImageStatus::Active);
}
