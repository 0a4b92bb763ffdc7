use super::*;
use std::sync::Arc;
use stratus_api::compute::{BlockDeviceMappingV2 as BdmRequest, Networks, ServerCreate};
use stratus_bus::InProcessBus;
use stratus_db::HostCapacity;

#[test]
fn hostnames_are_sanitized() {
    assert_eq!(sanitize_hostname("My VM_1.test"), "my-vm-1-test");
    assert_eq!(sanitize_hostname("--x--"), "x");
    assert_eq!(sanitize_hostname("!!!"), "server");
}

#[test]
fn typed_errors_keep_novas_messages() {
    assert_eq!(ComputeError::instance_not_found("i-1").to_string(), "Instance i-1 could not be found.");
    let e = ComputeError::NotFound { kind: Resource::Service, id: "nova-compute on host h1".into() };
    assert_eq!(e.to_string(), "Service nova-compute on host h1 could not be found.");
    assert_eq!(ComputeError::Locked { id: "i-1".into() }.to_string(), "Instance i-1 is locked");
    assert_eq!(ComputeError::DetachNotFound { volume_id: "v".into() }.to_string(), "volume_id not found: v");
    assert_eq!(ComputeError::UnknownServiceAction("x".into()).to_string(), "Unknown service action: x");
}

fn ctx(roles: &[&str]) -> AuthContext {
    let now = chrono::Utc::now();
    AuthContext {
        user_id: "u".into(),
        user_name: "u".into(),
        project_id: "p".into(),
        project_name: "p".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        role_ids: vec![],
        audit_id: "a".into(),
        issued_at: now,
        expires_at: now + chrono::Duration::hours(1),
        system_scope: false,
        app_cred: None,
    }
}

/// Keeps the test database alive (SQLite file or PostgreSQL database).
type Dir = stratus_db::testing::TestDb;

async fn api() -> (ComputeApi, Datastore, Dir) {
    api_with(ControllerConfig::default()).await
}

async fn api_with(cfg: ControllerConfig) -> (ComputeApi, Datastore, Dir) {
    let (ds, dir) = stratus_db::testing::fresh(Arc::new(stratus_types::SystemClock)).await;
    let api = ComputeApi::new(ds.clone(), Arc::new(InProcessBus::new()), cfg);
    (api, ds, dir)
}

/// Nova's `m1.tiny`.
fn tiny_flavor() -> FlavorRow {
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

fn body(host: &str) -> Result<ServiceUpdate, String> {
    Ok(ServiceUpdate { host: Some(host.into()), binary: Some("nova-compute".into()), ..Default::default() })
}

#[tokio::test]
async fn host_changes_are_validated_and_written_by_the_service() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 4, memory_mb: 4096, disk_gb: 40 };
    ds.service_join("h1", cap, chrono::Duration::seconds(30)).await.expect("join");
    let admin = ctx(&["admin"]);

    // Policy first, even before a body that did not parse.
    let e = api.update_service(&ctx(&["member"]), "force-down", true, Err("bad body".into())).await;
    assert!(matches!(e, Err(ComputeError::Forbidden(_))));
    let e = api.update_service(&admin, "force-down", true, Err("bad body".into())).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == "bad body"));

    // force-down needs 2.11 and a flag.
    let e = api.update_service(&admin, "force-down", false, body("h1")).await;
    assert!(matches!(e, Err(ComputeError::UnknownServiceAction(a)) if a == "force-down"));
    let e = api.update_service(&admin, "force-down", true, body("h1")).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(_))));
    let e = api.update_service(&admin, "enable", true, body("nowhere")).await;
    assert!(matches!(e, Err(ComputeError::NotFound { kind: Resource::Service, .. })));

    let forced = Ok(ServiceUpdate { forced_down: Some(true), ..body("h1").expect("body") });
    let done = api.update_service(&admin, "force-down", true, forced).await.expect("force down");
    assert_eq!(done.change, HostChange::ForceDown(true));
    let svc = ds.service_get_by_host("h1").await.expect("service");
    assert!(svc.forced_down);
    assert!(!api.host_is_up("h1").await, "a forced-down host is down: its servers take the down-host delete path");

    let reason = Ok(ServiceUpdate { disabled_reason: Some("maintenance".into()), ..body("h1").expect("body") });
    api.update_service(&admin, "disable-log-reason", true, reason).await.expect("disable");
    let svc = ds.service_get_by_host("h1").await.expect("service");
    assert!(svc.disabled);
    assert_eq!(svc.disabled_reason.as_deref(), Some("maintenance"));
    api.update_service(&admin, "enable", true, body("h1")).await.expect("enable");
    let svc = ds.service_get_by_host("h1").await.expect("service");
    assert!(!svc.disabled && svc.disabled_reason.is_none());

    let listed = api.service_list(&admin, Some("h1"), None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(matches!(api.service_list(&ctx(&["member"]), None, None).await, Err(ComputeError::Forbidden(_))));
}

#[tokio::test]
async fn create_checks_mappings_flavor_and_image_in_the_service() {
    let (api, ds, _dir) = api().await;
    let member = ctx(&["member"]);
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let f = api.flavor_get(&member, "1").await.expect("flavor");
    let req = |block_devices: Vec<BdmRequest>, flavor_id: &str, image: Option<&str>| ServerCreate {
        name: "vm".into(),
        image_ref: image.map(str::to_string),
        flavor_ref: flavor_id.into(),
        flavor_id: flavor_id.into(),
        block_devices,
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: None,
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    let bad_map = BdmRequest { source_type: "volume".into(), destination_type: "local".into(), ..Default::default() };
    let e = api.create(&member, req(vec![bad_map], "1", None), "req-1").await;
    assert!(
        matches!(e, Err(ComputeError::BadRequest(m)) if m == "Block device mapping volume -> local is not supported by this cloud.")
    );
    let e = api.create(&member, req(vec![], "no-such-flavor", None), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == "Flavor no-such-flavor could not be found."));
    let e = api.create(&member, req(vec![], &f.id, None), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == "Missing imageRef attribute"));
    let e = api.create(&member, req(vec![], &f.id, Some("not-a-uuid")), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m.ends_with("not-a-uuid is not a UUID")));
    let missing = uuid::Uuid::new_v4().to_string();
    let e = api.create(&member, req(vec![], &f.id, Some(&missing)), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == format!("Image {missing} could not be found.")));
    let from_image = BdmRequest {
        source_type: "image".into(),
        destination_type: "volume".into(),
        uuid: Some(missing.clone()),
        boot_index: Some(0),
        ..Default::default()
    };
    let e = api.create(&member, req(vec![from_image], &f.id, None), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == format!("Image {missing} could not be found.")));
    // An existing volume is looked up by its id in our spelling only: any
    // other spelling fails like a missing volume.
    for vid in [missing.clone(), missing.to_uppercase()] {
        let existing = BdmRequest {
            source_type: "volume".into(),
            destination_type: "volume".into(),
            uuid: Some(vid.clone()),
            boot_index: Some(0),
            ..Default::default()
        };
        let e = api.create(&member, req(vec![existing], &f.id, None), "req-1").await;
        assert!(
            matches!(e, Err(ComputeError::BadRequest(ref m)) if *m == format!("Block Device Mapping is Invalid: failed to get volume {vid}.")),
            "{e:?}"
        );
    }
    // Nova's schema: volume_size is 1..=2147483647 (db.MAX_INT); a huge one
    // is refused before any quota arithmetic.
    for size in [i64::MAX, 2_147_483_648] {
        let huge = BdmRequest {
            source_type: "image".into(),
            destination_type: "volume".into(),
            uuid: Some(missing.clone()),
            boot_index: Some(0),
            volume_size: Some(size),
            ..Default::default()
        };
        let e = api.create(&member, req(vec![huge], &f.id, None), "req-1").await;
        assert!(
            matches!(e, Err(ComputeError::BadRequest(ref m)) if *m == format!("Invalid input for field/attribute volume_size. Value: {size}. {size} is greater than the maximum of 2147483647")),
            "{e:?}"
        );
    }
    let e = api.flavor_get(&member, "no-such-flavor").await;
    assert!(matches!(e, Err(ComputeError::NotFound { kind: Resource::Flavor, .. })));
}

/// Nova boots what Glance shows the caller: another project's shared image
/// is "not found" until the caller's project is a member of it (whatever its
/// answer), and then it is checked like any image (here: not active).
#[tokio::test]
async fn a_shared_image_is_bootable_by_its_members_only() {
    let (api, ds, _dir) = api().await;
    let member = ctx(&["member"]);
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor");
    let f = api.flavor_get(&member, "1").await.expect("flavor");
    let img = stratus_db::ImageRow {
        id: stratus_types::ImageId::new(),
        name: Some("shared".into()),
        owner: "other".into(),
        status: stratus_types::image::ImageStatus::Queued,
        visibility: stratus_types::image::Visibility::Shared,
        disk_format: None,
        container_format: None,
        size: None,
        checksum: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        properties: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    };
    ds.image_create(&img).await.expect("image");
    let req = ServerCreate {
        access_ips: Default::default(),
        name: "vm".into(),
        image_ref: Some(img.id.to_string()),
        flavor_ref: f.id.clone(),
        flavor_id: f.id.clone(),
        block_devices: Vec::new(),
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: None,
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
    };
    let e = api.create(&member, req.clone(), "req-1").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == format!("Image {} could not be found.", img.id)));
    ds.image_member_create(&img.id, &member.project_id, -1).await.expect("member");
    let e = api.create(&member, req, "req-2").await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == format!("Image {} is not active.", img.id)));
}

#[tokio::test]
async fn a_server_id_that_is_not_ours_is_the_same_404() {
    let (api, _ds, _dir) = api().await;
    let me = ctx(&["member"]);
    let missing = stratus_types::ServerId::new().to_string();
    for id in ["not-a-uuid", missing.as_str(), &missing.to_uppercase(), &missing.replace('-', "")] {
        match api.get_visible(&me, id).await {
            Err(e @ ComputeError::NotFound { kind: Resource::Instance, .. }) => {
                assert_eq!(e.to_string(), format!("Instance {id} could not be found."));
            }
            other => panic!("{id}: expected Nova's 404, got {other:?}"),
        }
    }
    assert!(matches!(
        api.server_list(&me, ServerQuery { marker: Some("nope".into()), ..Default::default() }, false).await,
        Err(ComputeError::BadRequest(m)) if m == "marker [nope] not found"
    ));
}

/// Nova's `api.max_limit` (1000): a server list page never holds more,
/// whether the client asked for no limit or for a bigger one; the page then
/// carries its limit so the view adds the `next` link.
#[tokio::test]
async fn server_lists_are_paged_at_a_thousand() {
    let cfg = ControllerConfig { default_quota: stratus_db::QuotaLimits::UNLIMITED, ..ControllerConfig::default() };
    let (api, ds, _dir) = api_with(cfg).await;
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let member = ctx(&["member"]);
    let spec = ServerSpec {
        name: "many".into(),
        image_id: None,
        flavor: tiny,
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        allocate_network: false,
        count: 1001,
        volumes: vec![],
        description: None,
        tags: Vec::new(),
        user_data: None,
        requested_host: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    assert_eq!(api.create_servers(&member, &spec, "req-many").await.expect("create").len(), 1001);
    for limit in [None, Some(5000)] {
        let page = api.server_list(&member, ServerQuery { limit, ..Default::default() }, false).await.expect("list");
        assert_eq!(page.servers.len(), 1000, "limit {limit:?}");
        assert_eq!(page.limit, Some(1000), "the view links the next page");
    }
}

/// One server of project `p`, active with no task (as Nova's metadata calls require).
async fn active_server(api: &ComputeApi, ds: &Datastore) -> String {
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let spec = ServerSpec {
        name: "meta".into(),
        image_id: None,
        flavor: tiny,
        metadata: [("a".to_string(), "1".to_string())].into(),
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
    let id = api.create_servers(&ctx(&["member"]), &spec, "req-meta").await.expect("create")[0].server.id.to_string();
    api.reset_state(&ctx(&["admin"]), &id, stratus_types::VmState::Active, "req-reset").await.expect("reset");
    id
}

fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

// Nova server_metadata: PUT replaces, POST merges, PUT/DELETE of one key,
// 404 "Metadata item was not found", 409 when locked, 403 over metadata_items.
#[tokio::test]
async fn server_metadata_follows_novas_replace_merge_item_and_quota_rules() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let (member, reader) = (ctx(&["member"]), ctx(&["reader"]));
    assert_eq!(api.server_metadata(&reader, &id).await.expect("list"), map(&[("a", "1")]));
    let merged = api.change_server_metadata(&member, &id, Ok(MetadataChange::Merge(map(&[("b", "2")])))).await;
    assert_eq!(merged.expect("merge"), map(&[("a", "1"), ("b", "2")]));
    let replaced = api.change_server_metadata(&member, &id, Ok(MetadataChange::Replace(map(&[("c", "3")])))).await;
    assert_eq!(replaced.expect("replace"), map(&[("c", "3")]));
    api.change_server_metadata(&member, &id, Ok(MetadataChange::Set("d".into(), "4".into()))).await.expect("set");
    assert_eq!(api.server_metadata_item(&reader, &id, "d").await.expect("item"), "4");
    api.change_server_metadata(&member, &id, Ok(MetadataChange::Remove("c".into()))).await.expect("remove");
    let gone = api.server_metadata_item(&reader, &id, "c").await.expect_err("removed key");
    assert_eq!(gone.to_string(), "Metadata item was not found");
    let again = api.change_server_metadata(&member, &id, Ok(MetadataChange::Remove("c".into()))).await;
    assert!(matches!(again, Err(ComputeError::MetadataItemNotFound)), "{again:?}");

    // A reader may look but not change; the body's fault comes after the policy's.
    let denied = api.change_server_metadata(&reader, &id, Err("bad body".into())).await;
    assert!(matches!(denied, Err(ComputeError::Forbidden(_))), "{denied:?}");
    let bad = api.change_server_metadata(&member, &id, Err("bad body".into())).await;
    assert!(matches!(bad, Err(ComputeError::BadRequest(_))), "{bad:?}");

    // Quota: metadata_items (128 by default) counts the entries the server would hold.
    ds.quota_set("p", "metadata_items", 2).await.expect("quota");
    let over =
        api.change_server_metadata(&member, &id, Ok(MetadataChange::Merge(map(&[("x", "1"), ("y", "2")])))).await;
    assert!(matches!(over, Err(ComputeError::QuotaExceeded(_))), "{over:?}");
    assert_eq!(api.server_metadata(&reader, &id).await.expect("list"), map(&[("d", "4")]), "nothing written");

    // Locked: the owner gets 409, an admin may still change it.
    api.set_lock(&ctx(&["admin"]), &id, true, None, "req-lock").await.expect("lock");
    let locked = api.change_server_metadata(&member, &id, Ok(MetadataChange::Set("e".into(), "5".into()))).await;
    assert!(matches!(locked, Err(ComputeError::Locked { .. })), "{locked:?}");
    let admin = ctx(&["admin"]);
    let set = api.change_server_metadata(&admin, &id, Ok(MetadataChange::Set("e".into(), "5".into()))).await;
    assert_eq!(set.expect("admin"), map(&[("d", "4"), ("e", "5")]));
}

// Concurrent POSTs of different keys to one server all land (Nova serialises
// them with the instance's save; here a compare-and-swap retries the loser).
#[tokio::test]
async fn concurrent_metadata_merges_lose_no_key() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let api = Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (api, id) = (api.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let change = MetadataChange::Merge(map(&[(&format!("k{i}"), "v")]));
            api.change_server_metadata(&ctx(&["member"]), &id, Ok(change)).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("merge");
    }
    let m = api.server_metadata(&ctx(&["reader"]), &id).await.expect("list");
    assert_eq!(m.len(), 9, "every key of every merge is kept: {m:?}");
}

fn kp(name: &str, public_key: Option<&str>) -> KeypairCreate {
    KeypairCreate {
        name: name.into(),
        public_key: public_key.map(str::to_string),
        key_type: stratus_keys::KeyType::Ssh,
        user_id: None,
        names_v292: false,
    }
}

// Nova keypairs: generate (private key once) or import; names unique per user (409);
// unsafe names 400; key_pairs quota 403; another user's only for admins; Nova's 404 text.
#[tokio::test]
async fn key_pairs_follow_novas_rules() {
    let (api, ds, _dir) = api().await;
    let member = ctx(&["member"]);
    let made = api.keypair_create(&member, kp("gen", None)).await.expect("generate");
    assert!(made.private_key.as_deref().is_some_and(|p| p.contains("PRIVATE KEY")));
    let public = made.row.public_key.clone();
    let imported = api.keypair_create(&member, kp("imp", Some(&public))).await.expect("import");
    assert_eq!((imported.private_key, imported.row.fingerprint), (None, made.row.fingerprint.clone()));
    let dup = api.keypair_create(&member, kp("gen", Some(&public))).await.expect_err("same name");
    assert!(matches!(&dup, ComputeError::Conflict(m) if m == "Key pair 'gen' already exists."), "{dup:?}");
    for (name, msg) in [
        ("", "Keypair name must be string and between 1 and 255 characters long"),
        (&"k".repeat(256), "Keypair name must be string and between 1 and 255 characters long"),
        (r"key_/.\@:", "Keypair name contains unsafe characters"),
    ] {
        let e = api.keypair_create(&member, kp(name, None)).await.expect_err("bad name");
        assert!(matches!(&e, ComputeError::BadRequest(m) if m == msg), "{name:?}: {e:?}");
    }
    let bad_key = api.keypair_create(&member, kp("bad", Some("ssh-rsa AAAA"))).await.expect_err("bad key");
    assert!(matches!(bad_key, ComputeError::BadRequest(_)));
    let names: Vec<String> = api.keypair_list(&member, None).await.expect("list").into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["gen", "imp"]);

    // Another user's key pairs: 403 for a member, allowed for an admin.
    let other = Some("someone-else");
    assert!(matches!(api.keypair_list(&member, other).await, Err(ComputeError::Forbidden(_))));
    assert!(api.keypair_list(&ctx(&["admin"]), other).await.expect("admin list").is_empty());
    let mut for_other = kp("theirs", None);
    for_other.user_id = Some("someone-else".into());
    assert!(matches!(api.keypair_create(&member, for_other.clone()).await, Err(ComputeError::Forbidden(_))));
    assert_eq!(api.keypair_create(&ctx(&["admin"]), for_other).await.expect("admin").row.user_id, "someone-else");

    // Quota: key_pairs per user.
    ds.quota_set("p", "key_pairs", 2).await.expect("quota");
    let over = api.keypair_create(&member, kp("third", None)).await.expect_err("over quota");
    assert!(matches!(&over, ComputeError::QuotaExceeded(m) if m == "Quota exceeded, too many key pairs."), "{over:?}");

    api.keypair_delete(&member, "gen", None).await.expect("delete");
    let gone = api.keypair_get(&member, "gen", None).await.expect_err("deleted");
    assert_eq!(gone.to_string(), "Keypair gen not found for user u");
    assert!(matches!(api.keypair_delete(&member, "gen", None).await, Err(ComputeError::KeypairNotFound { .. })));
}

// Nova servers create: a key_name the user has no key pair of is "Invalid key_name provided." (400).
#[tokio::test]
async fn a_server_with_an_unknown_key_name_is_refused() {
    let (api, ds, _dir) = api().await;
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor");
    let member = ctx(&["member"]);
    let req = |key: &str| ServerCreate {
        name: "k".into(),
        image_ref: Some(String::new()),
        flavor_ref: "1".into(),
        flavor_id: "1".into(),
        block_devices: vec![],
        metadata: Default::default(),
        key_name: Some(key.into()),
        availability_zone: None,
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: None,
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    let e = api.create(&member, req("nope"), "req-k").await.expect_err("unknown key");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Invalid key_name provided."), "{e:?}");
    api.keypair_create(&member, kp("mine", None)).await.expect("key pair");
    let made = api.create(&member, req("mine"), "req-k2").await.expect("known key");
    assert_eq!(made[0].server.key_name.as_deref(), Some("mine"));
}

// Nova os-hypervisors / os-hosts: admin only; capacity from the host, use from what is
// placed there; 404 "Compute host X could not be found."; maintenance mode not offered (501).
#[tokio::test]
async fn hypervisors_and_hosts_show_capacity_and_use_to_admins() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let svc = ds.service_join("hv-1", cap, chrono::Duration::minutes(5)).await.expect("join");
    let id = active_server(&api, &ds).await;
    let sid: stratus_types::ServerId = id.parse().expect("id");
    let place = stratus_db::Transition { host: Some(Some("hv-1".into())), ..Default::default() };
    ds.server_transition(&sid, &place).await.expect("place");
    let (admin, member) = (ctx(&["admin"]), ctx(&["member"]));
    assert!(matches!(api.hypervisors(&member).await, Err(ComputeError::Forbidden(_))));
    let h = api.hypervisor(&admin, &svc.id.to_string(), false).await.expect("show");
    assert_eq!((h.service.vcpus, h.vcpus_used, h.memory_mb_used, h.running_vms), (8, 1, 512, 1));
    let t = api.hypervisor_totals(&admin).await.expect("totals");
    assert_eq!((t.count, t.vcpus, t.running_vms), (1, 8, 1));
    assert!(matches!(api.hypervisor(&admin, "999", false).await, Err(ComputeError::HypervisorNotFound(_))));
    assert_eq!(api.hypervisors_matching(&admin, "hv").await.expect("search").len(), 1);
    assert!(matches!(api.hypervisors_matching(&admin, "zz").await, Err(ComputeError::NoHypervisorMatching(_))));
    let r = api.host_resources(&admin, "hv-1").await.expect("host");
    assert_eq!(r.projects, [("p".to_string(), 1, 512, 1)]);
    let missing = api.host_resources(&admin, "nope").await.expect_err("unknown host");
    assert_eq!(missing.to_string(), "Compute host nope could not be found.");
    assert!(!api.update_host(&admin, "hv-1", Ok(HostUpdate::Status(false))).await.expect("disable"));
    assert!(ds.service_get_by_host("hv-1").await.expect("svc").disabled, "the service is disabled");
    let m = api.update_host(&admin, "hv-1", Ok(HostUpdate::Maintenance)).await;
    assert!(matches!(m, Err(ComputeError::NotImplemented(_))), "{m:?}");
}

fn agg_create(name: &str, zone: Option<&str>) -> Result<stratus_api::compute::AggregateCreate, String> {
    Ok(stratus_api::compute::AggregateCreate { name: name.into(), availability_zone: zone.map(str::to_string) })
}

// Nova os-aggregates: admin only; 409 "Aggregate X already exists."; add of an unknown host 404
// "Compute host X could not be found."; a host already in it 409; delete while hosts remain 400.
#[tokio::test]
async fn aggregates_group_hosts_for_admins_with_novas_refusals() {
    use stratus_api::compute::{AggregateAction as A, AggregateUpdate};
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    ds.service_join("hv-1", cap, chrono::Duration::minutes(5)).await.expect("join");
    let (admin, member) = (ctx(&["admin"]), ctx(&["member"]));
    let denied = api.create_aggregate(&member, agg_create("a", None)).await.expect_err("members may not");
    assert_eq!(denied.to_string(), "Policy doesn't allow os_compute_api:os-aggregates:create to be performed.");
    assert!(matches!(api.aggregates(&member).await, Err(ComputeError::Forbidden(_))));
    let bad_body = api.create_aggregate(&member, Err("bad".into())).await.expect_err("policy before body");
    assert!(matches!(bad_body, ComputeError::Forbidden(_)), "{bad_body:?}");
    let a = api.create_aggregate(&admin, agg_create("a", None)).await.expect("create");
    assert_eq!((a.availability_zone(), a.updated_at), (None, None));
    let dup = api.create_aggregate(&admin, agg_create("a", Some("z"))).await.expect_err("taken");
    assert_eq!(dup.to_string(), "Aggregate a already exists.");
    let id = a.id.to_string();
    let missing = api.aggregate(&admin, "-1").await.expect_err("no such aggregate");
    assert_eq!(missing.to_string(), "Aggregate -1 could not be found.");
    let bad = api.aggregate(&admin, "x").await.expect_err("not an integer");
    assert!(matches!(bad, ComputeError::BadRequest(_)), "{bad:?}");

    let unknown = api.aggregate_action(&admin, &id, Ok(A::AddHost("nope".into()))).await.expect_err("unknown host");
    assert_eq!(unknown.to_string(), "Compute host nope could not be found.");
    let added = api.aggregate_action(&admin, &id, Ok(A::AddHost("hv-1".into()))).await.expect("add");
    assert_eq!(added.hosts, vec!["hv-1".to_string()]);
    let again = api.aggregate_action(&admin, &id, Ok(A::AddHost("hv-1".into()))).await.expect_err("again");
    assert_eq!(again.to_string(), format!("Aggregate {id} already has host hv-1."));
    let busy = api.delete_aggregate(&admin, &id).await.expect_err("not empty");
    assert_eq!(
        busy.to_string(),
        format!("Cannot remove host from aggregate {id}. Reason: Host aggregate is not empty.")
    );
    assert!(matches!(busy, ComputeError::InvalidAggregateAction { verb: AggregateVerb::Delete, .. }));

    let meta = [("k".to_string(), Some("v".to_string()))].into();
    let set = api.aggregate_action(&admin, &id, Ok(A::SetMetadata(meta))).await.expect("set_metadata");
    assert_eq!(set.metadata, map(&[("k", "v")]));
    let unset = api.aggregate_action(&admin, &id, Ok(A::SetMetadata([("k".to_string(), None)].into()))).await;
    assert!(unset.expect("null deletes").metadata.is_empty());
    let upd = AggregateUpdate { name: Some("a2".into()), availability_zone: None };
    let renamed = api.update_aggregate(&admin, &id, Ok(upd)).await.expect("rename");
    assert_eq!(renamed.name, "a2");
    assert!(renamed.updated_at.is_some(), "Nova's update response always has updated_at");

    let not_in = api.aggregate_action(&admin, &id, Ok(A::RemoveHost("other".into()))).await.expect_err("not a member");
    assert_eq!(not_in.to_string(), format!("Cannot remove host other in aggregate {id}"));
    api.aggregate_action(&admin, &id, Ok(A::RemoveHost("hv-1".into()))).await.expect("remove");
    api.delete_aggregate(&admin, &id).await.expect("delete");
    assert!(api.aggregates(&admin).await.expect("list").is_empty());
}

// Nova is_safe_to_update_az: a host is in one availability zone at most (409 on add_host, 400 on
// update), a zone is never emptied, and the zone of hosts with servers does not change; the
// zone listing shows the aggregate's zone with its hosts and `nova` for the others.
#[tokio::test]
async fn aggregate_zones_keep_a_host_in_one_zone_and_list_as_availability_zones() {
    use stratus_api::compute::{AggregateAction as A, AggregateUpdate};
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    ds.service_join("hv-1", cap, chrono::Duration::minutes(5)).await.expect("join");
    ds.service_join("hv-2", cap, chrono::Duration::minutes(5)).await.expect("join");
    let (admin, member) = (ctx(&["admin"]), ctx(&["member"]));
    let names = |z: &[Zone]| z.iter().map(|z| z.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&api.availability_zones(&member, false).await.expect("zones")), ["nova"]);

    let z1 = api.create_aggregate(&admin, agg_create("z1", Some("az1"))).await.expect("create");
    assert_eq!(z1.metadata, map(&[("availability_zone", "az1")]), "the zone is a metadata key too");
    let z2 = api.create_aggregate(&admin, agg_create("z2", Some("az2"))).await.expect("create");
    let (id1, id2) = (z1.id.to_string(), z2.id.to_string());
    api.aggregate_action(&admin, &id1, Ok(A::AddHost("hv-1".into()))).await.expect("add");
    let clash = api.aggregate_action(&admin, &id2, Ok(A::AddHost("hv-1".into()))).await.expect_err("two zones");
    assert_eq!(
        clash.to_string(),
        format!(
            "Cannot add host to aggregate {id2}. Reason: One or more hosts already in availability zone(s) ['az1']."
        )
    );
    assert!(matches!(clash, ComputeError::InvalidAggregateAction { verb: AggregateVerb::AddHost, .. }));

    let zones = api.availability_zones(&admin, true).await.expect("detail");
    assert_eq!(names(&zones), ["az1", "nova"]);
    assert_eq!(zones[0].hosts.iter().map(|h| h.service.host.as_str()).collect::<Vec<_>>(), ["hv-1"]);
    assert!(matches!(api.availability_zones(&member, true).await, Err(ComputeError::Forbidden(_))));

    let emptied = AggregateUpdate { name: None, availability_zone: Some(None) };
    let e = api.update_aggregate(&admin, &id1, Ok(emptied)).await.expect_err("no empty zone");
    assert_eq!(
        e.to_string(),
        format!("Cannot update aggregate {id1}. Reason: Aggregate z1 does not support empty named availability zone.")
    );
    let sid: stratus_types::ServerId = active_server(&api, &ds).await.parse().expect("id");
    let place = stratus_db::Transition { host: Some(Some("hv-1".into())), ..Default::default() };
    ds.server_transition(&sid, &place).await.expect("place");
    let meta = A::SetMetadata([("availability_zone".to_string(), Some("az9".to_string()))].into());
    let e = api.aggregate_action(&admin, &id1, Ok(meta)).await.expect_err("servers on the zone's host");
    assert_eq!(
        e.to_string(),
        format!("Cannot update metadata of aggregate {id1}. Reason: One or more hosts contain instances in this zone.")
    );
    assert!(matches!(e, ComputeError::InvalidAggregateAction { verb: AggregateVerb::SetMetadata, .. }));
}

// Nova: a server may ask for a zone that has an enabled compute host (400 "The requested
// availability zone is not available" otherwise); the request keeps the zone for placement.
#[tokio::test]
async fn server_create_accepts_an_aggregate_zone_only_with_an_enabled_host() {
    let (api, ds, _dir) = api().await;
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    ds.service_join("hv-1", cap, chrono::Duration::minutes(5)).await.expect("join");
    let admin = ctx(&["admin"]);
    let agg = api.create_aggregate(&admin, agg_create("z", Some("az1"))).await.expect("aggregate");
    let req = |az: &str| ServerCreate {
        name: "vm".into(),
        image_ref: Some(String::new()),
        flavor_ref: "1".into(),
        flavor_id: "1".into(),
        block_devices: vec![],
        metadata: Default::default(),
        key_name: None,
        availability_zone: Some(az.into()),
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: None,
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    let member = ctx(&["member"]);
    let e = api.create(&member, req("az1"), "req-1").await.expect_err("the zone has no host yet");
    assert_eq!(e.to_string(), "The requested availability zone is not available: az1");
    let add = stratus_api::compute::AggregateAction::AddHost("hv-1".into());
    api.aggregate_action(&admin, &agg.id.to_string(), Ok(add)).await.expect("add host");
    let created = api.create(&member, req("az1"), "req-2").await.expect("create in az1");
    assert_eq!(created[0].server.availability_zone.as_deref(), Some("az1"));
    api.create(&member, req("nova"), "req-3").await.expect("the default zone is always accepted");
}

fn quota_body(pairs: &[(&'static str, i64)], force: bool) -> Result<stratus_api::compute::QuotaUpdate, String> {
    Ok(stratus_api::compute::QuotaUpdate { limits: pairs.to_vec(), force })
}

// Nova's DbQuotaDriver: a project's limit is its override, else the
// `default` class's, else the configured default; DELETE drops the overrides.
#[tokio::test]
async fn quota_sets_layer_project_over_default_class_over_config() {
    let (api, ds, _dir) = api().await;
    let (admin, reader) = (ctx(&["admin"]), ctx(&["reader"]));
    let shown = api.quota_set_show(&reader, "p", None).await.expect("show");
    assert_eq!(shown, stratus_db::QuotaLimits::NOVA_DEFAULTS, "no override: the configured defaults");
    assert_eq!(api.quota_set_defaults(&reader).await.expect("defaults"), shown);

    let set = api.quota_set_update(&admin, "p", None, quota_body(&[("ram", 5120), ("floating_ips", 20)], false));
    let set = set.await.expect("update");
    assert_eq!((set.ram, set.floating_ips, set.cores), (5120, 20, 20), "legacy network keys are stored too, as Nova");
    assert_eq!(api.quota_set_show(&reader, "p", None).await.expect("show").ram, 5120);
    assert_eq!(api.quota_set_defaults(&reader).await.expect("defaults").ram, 51200, "defaults ignore overrides");

    // The default class changes the defaults, and the limits of a project
    // without its own override, but not an override.
    let class = api.quota_class_update(&admin, "default", quota_body(&[("ram", 1000), ("instances", 0)], false));
    let class = class.await.expect("class update");
    assert_eq!((class.ram, class.instances), (1000, 0));
    assert_eq!(api.quota_class_show(&admin, "default").await.expect("class show"), class);
    assert_eq!(api.quota_set_defaults(&reader).await.expect("defaults").ram, 1000);
    let other = api.quota_set_show(&admin, "q", None).await.expect("show q");
    assert_eq!((other.ram, other.instances), (1000, 0));
    let p = api.quota_limits("p").await.expect("limits");
    assert_eq!((p.ram, p.instances), (5120, 0), "override over class over config");
    // Another class does not change anyone's defaults.
    api.quota_class_update(&admin, "gold", quota_body(&[("cores", 99)], false)).await.expect("gold");
    assert_eq!(api.quota_set_defaults(&reader).await.expect("defaults").cores, 20);

    // Every quota check uses the layered limits: the class's instances 0 refuses a create.
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let spec = ServerSpec {
        name: "over".into(),
        image_id: None,
        flavor: tiny,
        metadata: Default::default(),
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
    let refused = api.create_servers(&ctx(&["member"]), &spec, "req-over").await;
    assert!(matches!(refused, Err(ComputeError::QuotaExceeded(_))), "{:?}", refused.map(|_| ()));

    // DELETE: the project sees the (class) defaults again.
    api.quota_set_delete(&admin, "p", None).await.expect("delete");
    assert_eq!(
        api.quota_set_show(&reader, "p", None).await.expect("show"),
        api.quota_set_defaults(&reader).await.expect("d")
    );
}

// Nova's quota_sets update: a limit below usage is a 400 unless `force`;
// detail shows in_use per resource with reserved 0.
#[tokio::test]
async fn quota_set_updates_respect_usage_unless_forced() {
    let (api, ds, _dir) = api().await;
    let _id = active_server(&api, &ds).await;
    let (admin, reader) = (ctx(&["admin"]), ctx(&["reader"]));
    let d = api.quota_set_detail(&reader, "p", None).await.expect("detail");
    assert_eq!((d.in_use["instances"], d.in_use["cores"], d.in_use["ram"]), (1, 1, 512));
    assert_eq!(d.limits.instances, 10);

    let below = api.quota_set_update(&admin, "p", None, quota_body(&[("instances", 0)], false)).await;
    match below {
        Err(ComputeError::BadRequest(m)) => {
            assert_eq!(m, "Quota limit 0 for instances must be greater than or equal to already used and reserved 1.")
        }
        other => panic!("expected a 400: {other:?}"),
    }
    assert_eq!(api.quota_set_show(&reader, "p", None).await.expect("show").instances, 10, "nothing stored");
    // -1 (unlimited) is never below usage; the usage itself is allowed.
    api.quota_set_update(&admin, "p", None, quota_body(&[("instances", 1), ("cores", -1)], false))
        .await
        .expect("at usage");
    let forced = api.quota_set_update(&admin, "p", None, quota_body(&[("instances", 0)], true)).await;
    assert_eq!(forced.expect("forced").instances, 0);
    // A body refused by the parser is a 400 for an admin.
    let bad = api.quota_set_update(&admin, "p", None, Err("bad body".into())).await;
    assert!(matches!(bad, Err(ComputeError::BadRequest(_))), "{bad:?}");
}

// Nova's user quotas: `?user_id=` limits stand over the project's; a user's
// limit may not exceed what the project has left, and a project's may not
// drop below what its users were given.
#[tokio::test]
async fn user_quotas_stand_over_the_project_within_its_limit() {
    let (api, _ds, _dir) = api().await;
    let admin = ctx(&["admin"]);
    let set = api.quota_set_update(&admin, "p", Some("u2"), quota_body(&[("ram", 2048)], false)).await;
    assert_eq!(set.expect("user update").ram, 2048);
    assert_eq!(api.quota_set_show(&admin, "p", Some("u2")).await.expect("user").ram, 2048);
    assert_eq!(api.quota_set_show(&admin, "p", None).await.expect("project").ram, 51200);

    let over = api.quota_set_update(&admin, "p", Some("u3"), quota_body(&[("ram", 50000)], false)).await;
    match over {
        Err(ComputeError::BadRequest(m)) => {
            assert_eq!(m, "Quota limit 50000 for ram must be less than or equal to 49152.")
        }
        other => panic!("expected a 400: {other:?}"),
    }
    let low = api.quota_set_update(&admin, "p", None, quota_body(&[("ram", 1024)], false)).await;
    assert!(matches!(low, Err(ComputeError::BadRequest(m)) if m.ends_with("already used and reserved 2048.")));

    // Deleting the user's set leaves the project's; deleting the project's drops both.
    api.quota_set_delete(&admin, "p", Some("u2")).await.expect("delete user");
    assert_eq!(api.quota_set_show(&admin, "p", Some("u2")).await.expect("user").ram, 51200);
}

// nova/policies/quota_sets.py and quota_class_sets.py (secure RBAC): show and
// detail PROJECT_READER_OR_ADMIN, defaults any, update/delete and classes ADMIN;
// the policy answers before the body.
#[tokio::test]
async fn quota_policies_follow_novas_defaults() {
    let (api, _ds, _dir) = api().await;
    let (reader, member) = (ctx(&["reader"]), ctx(&["member"]));
    fn forbidden<T>(r: Result<T, ComputeError>) -> bool {
        matches!(r, Err(ComputeError::Forbidden(_)))
    }
    assert!(forbidden(api.quota_set_update(&reader, "p", None, Err("bad body".into())).await));
    assert!(forbidden(api.quota_set_update(&member, "p", None, quota_body(&[("ram", 1)], true)).await));
    assert!(forbidden(api.quota_set_delete(&member, "p", None).await));
    let other = api.quota_set_show(&member, "other", None).await;
    assert!(
        matches!(&other, Err(ComputeError::Forbidden(m)) if m == "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed."),
        "{other:?}"
    );
    assert!(forbidden(api.quota_set_detail(&reader, "other", None).await));
    assert!(api.quota_set_show(&reader, "p", Some("someone")).await.is_ok(), "any user of one's own project");
    assert!(api.quota_set_defaults(&member).await.is_ok());
    assert!(forbidden(api.quota_class_show(&member, "default").await));
    assert!(forbidden(api.quota_class_update(&reader, "default", Err("bad body".into())).await));
    // An admin may read any project's set, existing or not (Nova does not look it up).
    assert!(api.quota_set_show(&ctx(&["admin"]), "no-such-project", None).await.is_ok());
}

/// A flavor of `ram_mb` MiB and `disk_gb` GiB.
fn sized_flavor(id: &str, ram_mb: i64, disk_gb: i64, is_public: bool) -> FlavorRow {
    FlavorRow { id: id.into(), name: format!("f-{id}"), ram_mb, disk_gb, is_public, ..tiny_flavor() }
}

/// Projects `p` (the tests' caller) and `q`.
async fn projects(ds: &Datastore) {
    for id in ["p", "q"] {
        let row = stratus_db::ProjectRow {
            id: id.into(),
            name: id.into(),
            domain_id: "default".into(),
            description: String::new(),
            enabled: true,
        };
        ds.project_create(&row).await.expect("project");
    }
}

fn ids(page: &FlavorPage) -> Vec<&str> {
    page.flavors.iter().map(|f| f.id.as_str()).collect()
}

fn flavor_query(raw: &str) -> stratus_api::compute::FlavorListQuery {
    stratus_api::compute::FlavorListQuery::parse(Some(raw)).expect("query")
}

#[tokio::test]
async fn flavor_lists_filter_sort_and_page_as_nova() {
    let (api, ds, _dir) = api().await;
    projects(&ds).await;
    for f in [
        sized_flavor("1", 512, 1, true),
        sized_flavor("2", 2048, 20, true),
        sized_flavor("3", 4096, 40, true),
        sized_flavor("mine", 1024, 10, false),
        sized_flavor("theirs", 1024, 10, false),
    ] {
        ds.flavor_create(&f).await.expect("flavor");
    }
    ds.flavor_access_add("mine", "p").await.expect("share");
    let member = ctx(&["member"]);
    let admin = AuthContext { project_id: "admin-project".into(), ..ctx(&["admin"]) };
    let list = |who: &AuthContext, raw: &str| {
        let (api, who, q) = (api.clone(), who.clone(), flavor_query(raw));
        async move { api.flavor_list(&who, q).await }
    };
    // Nova: non-admins see public flavors and private ones shared with their project, by flavorid.
    assert_eq!(ids(&list(&member, "").await.expect("list")), ["1", "2", "3", "mine"]);
    // Nova ignores is_public from non-admins.
    assert_eq!(ids(&list(&member, "is_public=false").await.expect("list")), ["1", "2", "3", "mine"]);
    // minRam and minDisk are lower bounds; limit and marker page.
    assert_eq!(ids(&list(&member, "minRam=1024&minDisk=20").await.expect("list")), ["2", "3"]);
    let page = list(&member, "limit=2").await.expect("page");
    assert_eq!((ids(&page), page.limit), (vec!["1", "2"], 2));
    assert_eq!(ids(&list(&member, "marker=2").await.expect("after 2")), ["3", "mine"]);
    assert_eq!(ids(&list(&member, "sort_key=memory_mb&sort_dir=desc&limit=2").await.expect("sorted")), ["3", "2"]);
    assert_eq!(ids(&list(&member, "sort_key=memory_mb&sort_dir=desc&marker=2").await.expect("sorted")), ["mine", "1"]);
    // Nova: a marker the caller cannot see is "not found", a 400.
    let e = list(&member, "marker=theirs").await.expect_err("hidden marker");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "marker [theirs] not found"), "{e:?}");
    // Nova: admins choose with is_public (default public, "none" all), strictly parsed.
    assert_eq!(ids(&list(&admin, "").await.expect("list")), ["1", "2", "3"]);
    assert_eq!(ids(&list(&admin, "is_public=f").await.expect("list")), ["mine", "theirs"]);
    assert_eq!(ids(&list(&admin, "is_public=None").await.expect("list")), ["1", "2", "3", "mine", "theirs"]);
    let e = list(&admin, "is_public=maybe").await.expect_err("bad is_public");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Invalid is_public filter [maybe]"), "{e:?}");
    assert_eq!(ids(&list(&admin, "marker=theirs&is_public=none").await.expect("admin marker")), Vec::<&str>::new());
}

fn flavor_body(name: &str, id: Option<&str>, is_public: bool) -> Result<stratus_api::compute::FlavorCreate, String> {
    Ok(stratus_api::compute::FlavorCreate {
        name: name.into(),
        id: id.map(str::to_string),
        ram_mb: 512,
        vcpus: 1,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public,
        description: None,
    })
}

#[tokio::test]
async fn flavor_create_and_delete_follow_novas_rules() {
    let (api, ds, _dir) = api().await;
    let (member, admin) = (ctx(&["member"]), ctx(&["admin"]));
    // Nova's flavor-manage policy is ADMIN, checked before the body.
    let e = api.flavor_create(&member, Err("bad body".into())).await.expect_err("member");
    assert!(matches!(&e, ComputeError::Forbidden(m) if m.contains("os-flavor-manage:create")), "{e:?}");
    let e = api.flavor_create(&admin, Err("bad body".into())).await.expect_err("bad body");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "bad body"), "{e:?}");
    let made = api.flavor_create(&admin, flavor_body("small", Some("1000"), true)).await.expect("create");
    assert_eq!(made.id, "1000");
    // Nova: a missing or null id becomes a new UUID.
    let auto = api.flavor_create(&admin, flavor_body("auto", None, true)).await.expect("create");
    assert!(uuid::Uuid::parse_str(&auto.id).is_ok(), "{}", auto.id);
    // Nova: FlavorIdExists and FlavorExists are 409s.
    let e = api.flavor_create(&admin, flavor_body("other", Some("1000"), true)).await.expect_err("same id");
    assert!(matches!(&e, ComputeError::Conflict(m) if m == "Flavor with ID 1000 already exists."), "{e:?}");
    let e = api.flavor_create(&admin, flavor_body("small", Some("1001"), true)).await.expect_err("same name");
    assert!(matches!(&e, ComputeError::Conflict(m) if m == "Flavor with name small already exists."), "{e:?}");

    // Servers keep their own copy of a deleted flavor's sizes.
    let server = active_server(&api, &ds).await;
    assert!(matches!(api.flavor_delete(&member, "1").await, Err(ComputeError::Forbidden(_))));
    api.flavor_delete(&admin, "1").await.expect("delete");
    let shown = api.server_show(&member, &server).await.expect("server outlives its flavor");
    assert_eq!((shown.server.flavor_id.as_str(), shown.server.ram_mb), ("1", 512));
    let e = api.flavor_delete(&admin, "1").await.expect_err("gone");
    assert_eq!(e.to_string(), "Flavor 1 could not be found.");
    assert!(matches!(api.flavor_get(&member, "1").await, Err(ComputeError::NotFound { .. })));
    // Nova deletes outright: the id and name may be used again.
    api.flavor_create(&admin, flavor_body("m1.tiny", Some("1"), true)).await.expect("id reused");
}

#[tokio::test]
async fn private_flavors_are_seen_and_booted_only_by_projects_with_access() {
    let (api, ds, _dir) = api().await;
    projects(&ds).await;
    let (member, admin) = (ctx(&["member"]), ctx(&["admin"]));
    let private = api.flavor_create(&admin, flavor_body("private", Some("10"), false)).await.expect("private");
    api.flavor_create(&admin, flavor_body("public", Some("11"), true)).await.expect("public");
    // Nova bug 1209101: the creator's project is not given access; the list is empty.
    assert!(api.flavor_access_list(&admin, "10").await.expect("access list").is_empty());
    assert!(matches!(api.flavor_access_list(&member, "10").await, Err(ComputeError::Forbidden(_))));
    let e = api.flavor_access_list(&admin, "11").await.expect_err("public");
    assert_eq!(e.to_string(), "Access list not available for public flavors.");
    // Another project's private flavor is a 404 to show and a 400 to boot (Nova's FlavorNotFound).
    assert!(matches!(api.flavor_get(&member, "10").await, Err(ComputeError::NotFound { .. })));
    let e = api.flavor_for_request(&member, "10", "10").await.expect_err("boot");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Flavor 10 could not be found."), "{e:?}");

    let add = |p: &str| Ok(stratus_api::compute::FlavorAccessChange::Add(p.into()));
    let remove = |p: &str| Ok(stratus_api::compute::FlavorAccessChange::Remove(p.into()));
    let mv = stratus_api::Microversion::new;
    assert!(matches!(
        api.flavor_access_change(&member, "10", add("p"), mv(2, 1)).await,
        Err(ComputeError::Forbidden(_))
    ));
    assert_eq!(api.flavor_access_change(&admin, "10", add("p"), mv(2, 1)).await.expect("add"), ["p"]);
    assert_eq!(api.flavor_get(&member, "10").await.expect("now visible").id, private.id);
    api.flavor_for_request(&member, "10", "10").await.expect("now bootable");
    // Nova: FlavorAccessExists 409, FlavorAccessNotFound 404, an unknown project 400.
    let e = api.flavor_access_change(&admin, "10", add("p"), mv(2, 1)).await.expect_err("twice");
    assert_eq!(e.to_string(), "Flavor access already exists for flavor 10 and project p combination.");
    let e = api.flavor_access_change(&admin, "10", remove("q"), mv(2, 1)).await.expect_err("not shared");
    assert!(matches!(&e, ComputeError::FlavorAccessNotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), "Flavor access not found for 10 / q combination.");
    let e = api.flavor_access_change(&admin, "10", add("nobody"), mv(2, 1)).await.expect_err("no project");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Project ID nobody is not a valid project."), "{e:?}");
    // Nova 2.7: adding access to a public flavor is a 409 (allowed before).
    let e = api.flavor_access_change(&admin, "11", add("q"), mv(2, 7)).await.expect_err("public at 2.7");
    assert!(matches!(&e, ComputeError::Conflict(m) if m == "Can not add access to a public flavor."), "{e:?}");
    api.flavor_access_change(&admin, "11", add("q"), mv(2, 6)).await.expect("public before 2.7");
    assert!(api.flavor_access_change(&admin, "10", remove("p"), mv(2, 1)).await.expect("remove").is_empty());
    assert!(matches!(api.flavor_get(&member, "10").await, Err(ComputeError::NotFound { .. })));
}

#[tokio::test]
async fn flavor_extra_specs_follow_novas_rules() {
    let (api, ds, _dir) = api().await;
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor");
    let (reader, admin) = (ctx(&["reader"]), ctx(&["admin"]));
    let specs: BTreeMap<String, String> = [("hw:numa_nodes", "1"), ("hw:cpu_policy", "shared")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Nova: writes are ADMIN (before the body), reads any caller who sees the flavor.
    let e = api.flavor_extra_specs_create(&reader, "1", Err("bad".into())).await.expect_err("reader");
    assert!(matches!(&e, ComputeError::Forbidden(m) if m.contains("os-flavor-extra-specs:create")), "{e:?}");
    assert!(matches!(
        api.flavor_extra_specs_create(&admin, "nope", Err("bad".into())).await,
        Err(ComputeError::NotFound { .. })
    ));
    assert_eq!(api.flavor_extra_specs_create(&admin, "1", Ok(specs.clone())).await.expect("set"), specs);
    assert_eq!(api.flavor_extra_specs(&reader, "1").await.expect("read"), specs);
    // Nova: an update sets one key and keeps the others.
    assert_eq!(api.flavor_extra_spec_update(&admin, "1", "hw:numa_nodes", Ok("2".into())).await.expect("update"), "2");
    assert_eq!(api.flavor_extra_spec(&reader, "1", "hw:numa_nodes").await.expect("one"), "2");
    assert_eq!(api.flavor_extra_spec(&reader, "1", "hw:cpu_policy").await.expect("kept"), "shared");
    let e = api.flavor_extra_spec_update(&reader, "1", "hw:numa_nodes", Ok("3".into())).await.expect_err("reader");
    assert!(matches!(e, ComputeError::Forbidden(_)));
    // Nova: FlavorExtraSpecsNotFound.
    let e = api.flavor_extra_spec(&reader, "1", "hw:cpu_thread_policy").await.expect_err("unset");
    assert_eq!(e.to_string(), "Flavor 1 has no extra specs with key hw:cpu_thread_policy.");
    assert!(matches!(
        api.flavor_extra_spec_delete(&reader, "1", "hw:numa_nodes").await,
        Err(ComputeError::Forbidden(_))
    ));
    api.flavor_extra_spec_delete(&admin, "1", "hw:numa_nodes").await.expect("delete");
    let e = api.flavor_extra_spec_delete(&admin, "1", "hw:numa_nodes").await.expect_err("twice");
    assert!(matches!(e, ComputeError::FlavorExtraSpecNotFound { .. }));
    assert_eq!(api.flavor_extra_specs(&reader, "1").await.expect("read").len(), 1);
    // The specs go with their flavor.
    api.flavor_delete(&admin, "1").await.expect("delete flavor");
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor again");
    assert!(api.flavor_extra_specs(&reader, "1").await.expect("read").is_empty());
}

// Nova simple tenant usage: hours of a server inside [start, end) (launch to
// termination, clipped), totals weighted by its size; another project's is 403;
// start after end is 400; Nova's three time formats.
#[tokio::test]
async fn tenant_usage_counts_hours_inside_the_period() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let sid: stratus_types::ServerId = id.parse().expect("id");
    ds.server_transition(&sid, &stratus_db::Transition { launched: true, ..Default::default() }).await.expect("launch");
    let launched = ds.server_get(&sid).await.expect("row").launched_at.expect("launched");
    let member = ctx(&["member"]);
    let start = launched - chrono::Duration::hours(5);
    let end = launched + chrono::Duration::hours(2);
    let usage = api.tenant_usage(&member, Some("p"), start, end).await.expect("usage");
    assert_eq!(usage.len(), 1);
    let hours = usage[0].total_hours();
    assert!((hours - 2.0).abs() < 1e-6, "only the launched part counts: {hours}");
    assert!((usage[0].total_of(|s| s.ram_mb) - 1024.0).abs() < 1e-3, "512 MiB for 2 hours");
    let before = api.tenant_usage(&member, Some("p"), start, launched - chrono::Duration::hours(1)).await;
    assert!(before.expect("usage").is_empty(), "not running in that period");
    assert!(matches!(api.tenant_usage(&member, Some("other"), start, end).await, Err(ComputeError::Forbidden(_))));
    assert!(matches!(api.tenant_usage(&member, None, start, end).await, Err(ComputeError::Forbidden(_))));
    assert!(matches!(api.tenant_usage(&member, Some("p"), end, start).await, Err(ComputeError::BadRequest(_))));
    let now = chrono::Utc::now();
    for ok in ["2026-11-30T01:02:03", "2026-11-30T01:02:03.123456", "2026-11-30 01:02:03.123456"] {
        assert!(usage_time(Some(ok), now).is_ok(), "{ok}");
    }
    assert!(matches!(usage_time(Some("yesterday"), now), Err(ComputeError::BadRequest(_))));
}

/// Nova 2.53: a hypervisor is named by its UUID (not a UUID: 400 "Invalid
/// uuid"; unknown: 404); before 2.53 by its integer id.
#[tokio::test]
async fn hypervisors_are_found_by_uuid_from_2_53() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let svc = ds.service_join("hv-1", cap, chrono::Duration::minutes(5)).await.expect("join");
    let admin = ctx(&["admin"]);
    assert_eq!(api.hypervisor(&admin, &svc.uuid, true).await.expect("by uuid").service.host, "hv-1");
    assert!(matches!(api.hypervisor(&admin, &svc.uuid, false).await, Err(ComputeError::HypervisorNotFound(_))));
    let e = api.hypervisor(&admin, "1", true).await.expect_err("not a uuid");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Invalid uuid 1"), "{e:?}");
    let other = uuid::Uuid::new_v4().to_string();
    assert!(matches!(api.hypervisor(&admin, &other, true).await, Err(ComputeError::HypervisorNotFound(_))));
    assert!(matches!(api.hypervisor(&ctx(&["member"]), &svc.uuid, true).await, Err(ComputeError::Forbidden(_))));
}

/// Nova 2.53 `PUT /os-services/{service_id}`: a UUID (else 400 before the
/// policy), admin only, `status` and/or `forced_down` (neither: 400), no
/// `disabled_reason` with `enabled`, and the whole service back.
#[tokio::test]
async fn services_are_updated_by_uuid_from_2_53() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 4, memory_mb: 4096, disk_gb: 40 };
    let svc = ds.service_join("h1", cap, chrono::Duration::seconds(30)).await.expect("join");
    let admin = ctx(&["admin"]);
    let change = |enabled, reason: Option<&str>, forced| {
        Ok(ServiceChange { enabled, disabled_reason: reason.map(str::to_string), forced_down: forced })
    };
    let e = api.update_service_by_id(&ctx(&["member"]), "nope", change(Some(false), None, None)).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m == "Invalid uuid nope"));
    let e = api.update_service_by_id(&ctx(&["member"]), &svc.uuid, change(Some(false), None, None)).await;
    assert!(matches!(e, Err(ComputeError::Forbidden(_))));
    let missing = uuid::Uuid::new_v4().to_string();
    let e = api.update_service_by_id(&admin, &missing, change(Some(false), None, None)).await;
    assert!(matches!(e, Err(ComputeError::NotFound { .. })));
    let e = api.update_service_by_id(&admin, &svc.uuid, change(None, Some("x"), None)).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m.starts_with("No updates were requested")));
    let e = api.update_service_by_id(&admin, &svc.uuid, change(Some(true), Some("x"), None)).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(m)) if m.contains("'disabled_reason' with status 'enabled'")));
    let done = api.update_service_by_id(&admin, &svc.uuid, change(Some(false), Some("maint"), Some(true))).await;
    let done = done.expect("disable and force down");
    assert!(done.service.disabled && done.service.forced_down && !done.up);
    assert_eq!(done.service.disabled_reason.as_deref(), Some("maint"));
    let back = api.update_service_by_id(&admin, &svc.uuid, change(Some(true), None, Some(false))).await;
    let back = back.expect("enable");
    assert!(!back.service.disabled && back.service.disabled_reason.is_none() && !back.service.forced_down);
}

/// Nova 2.21: the instance actions of a deleted server are still listed and
/// shown (below 2.21 the deleted server is a 404); another project's stays 404.
#[tokio::test]
async fn instance_actions_of_deleted_servers_from_2_21() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let sid: stratus_types::ServerId = id.parse().expect("id");
    ds.server_mark_deleted(&sid).await.expect("deleted");
    let member = ctx(&["member"]);
    assert!(matches!(api.instance_actions(&member, &id, false).await, Err(ComputeError::NotFound { .. })));
    let actions = api.instance_actions(&member, &id, true).await.expect("deleted server's actions");
    assert!(actions.iter().any(|a| a.request_id == "req-meta"), "{actions:?}");
    let (a, _) = api.instance_action(&member, &id, "req-meta", true).await.expect("show");
    assert_eq!(a.action, "create");
    let mut stranger = ctx(&["member"]);
    stranger.project_id = "other".into();
    assert!(matches!(api.instance_actions(&stranger, &id, true).await, Err(ComputeError::NotFound { .. })));
}

/// Nova 2.40: tenant usage pages the servers counted (`marker` a server id,
/// a next marker when the page is full), then groups them by project.
#[tokio::test]
async fn tenant_usage_pages_by_server() {
    let (api, ds, _dir) = api().await;
    let mut rows = Vec::new();
    for project in ["a", "a", "b"] {
        let id: stratus_types::ServerId = active_server(&api, &ds).await.parse().expect("id");
        let mut s = ds.server_get(&id).await.expect("row");
        s.project_id = project.into();
        rows.push(ServerUsage { server: s, hours: 1.0, uptime: 1 });
    }
    let (b1, a2, a1) = (rows.remove(2), rows.remove(1), rows.remove(0));
    let ids: Vec<String> = [&a1, &a2, &b1].iter().map(|u| u.server.id.to_string()).collect();
    let all = vec![
        TenantUsage { project_id: "a".into(), servers: vec![a1, a2] },
        TenantUsage { project_id: "b".into(), servers: vec![b1] },
    ];
    let first = stratus_api::compute::Page { limit: Some(2), marker: None };
    let (page, next) = page_usage(all.clone(), &first).expect("page");
    assert_eq!((page.len(), page[0].servers.len()), (1, 2));
    assert_eq!(next.as_deref(), Some(ids[1].as_str()));
    let second = stratus_api::compute::Page { limit: Some(2), marker: next };
    let (page, next) = page_usage(all.clone(), &second).expect("page");
    assert_eq!((page.len(), page[0].project_id.as_str(), next), (1, "b", None));
    let unknown = stratus_api::compute::Page { limit: None, marker: Some("nope".into()) };
    assert!(matches!(page_usage(all, &unknown), Err(ComputeError::BadRequest(_))));
}

/// Nova 2.23 `GET /servers/{id}/migrations`: admin only, after the server
/// lookup (another project's is 404); Stratus has no live migrations to list.
#[tokio::test]
async fn server_migrations_are_admin_only() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    api.live_migrations(&ctx(&["admin"]), &id).await.expect("admin");
    assert!(matches!(api.live_migrations(&ctx(&["member"]), &id).await, Err(ComputeError::Forbidden(_))));
    let mut stranger = ctx(&["admin"]);
    stranger.roles = vec!["member".into()];
    stranger.project_id = "other".into();
    assert!(matches!(api.live_migrations(&stranger, &id).await, Err(ComputeError::NotFound { .. })));
}

/// Nova's evacuate with a `host` (404 for an unknown host, 400 for the
/// server's own) and cold migration to a `host` (2.56: both 400), checked
/// before anything starts; the chosen host goes into the operation.
#[tokio::test]
async fn evacuate_and_migrate_check_the_requested_host() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    ds.service_join("h1", cap, chrono::Duration::minutes(5)).await.expect("join h1");
    ds.service_join("h2", cap, chrono::Duration::minutes(5)).await.expect("join h2");
    let id = active_server(&api, &ds).await;
    let sid: stratus_types::ServerId = id.parse().expect("id");
    let place = stratus_db::Transition { host: Some(Some("h1".into())), ..Default::default() };
    ds.server_transition(&sid, &place).await.expect("place");
    let admin = ctx(&["admin"]);
    let evac = |h: &str| Action::Evacuate { host: Some(h.into()), stop: false };
    let e = api.action(&admin, &id, evac("nope"), "r1").await.expect_err("unknown host");
    assert!(matches!(e, ComputeError::ComputeHostNotFound(_)), "{e:?}");
    let e = api.action(&admin, &id, evac("h1"), "r2").await.expect_err("own host");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "The target host can't be the same one."), "{e:?}");
    let mig = |h: &str| Action::Migrate { host: Some(h.into()) };
    let e = api.action(&admin, &id, mig("nope"), "r3").await.expect_err("unknown host");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Compute host nope could not be found."), "{e:?}");
    let e = api.action(&admin, &id, mig("h1"), "r4").await.expect_err("own host");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m.starts_with("Cannot migrate to the host")), "{e:?}");
    api.action(&admin, &id, mig("h2"), "r5").await.expect("migrate to h2");
    let ops = ds.op_list_open_for_server(&sid).await.expect("ops");
    let op = ops.into_iter().find(|o| o.request_id == "r5").expect("op");
    let params: serde_json::Value = serde_json::from_str(&op.params).expect("json");
    assert_eq!(params["host"], "h2");
}

/// Nova 2.48: diagnostics in the standard form (state from the power
/// state, sizes, one entry per NIC and disk, uncollected counters null).
#[tokio::test]
async fn diagnostics_follow_the_standard_form_from_2_48() {
    let (api, ds, _dir) = api().await;
    let id: stratus_types::ServerId = active_server(&api, &ds).await.parse().expect("id");
    let running =
        stratus_db::Transition { power: Some(stratus_types::PowerState::Running.code()), ..Default::default() };
    ds.server_transition(&id, &running).await.expect("running");
    let s = ds.server_get(&id).await.expect("row");
    let v = stratus_api::compute::views::diagnostics_v248(&s, &["fa:16:3e:00:00:01"], 2, Some(5));
    assert_eq!(v["state"], "running");
    assert_eq!((v["num_cpus"].as_i64(), v["num_nics"].as_i64(), v["num_disks"].as_i64()), (Some(1), Some(1), Some(2)));
    assert_eq!(v["memory_details"], serde_json::json!({"maximum": 512, "used": null}));
    assert_eq!(v["nic_details"][0]["mac_address"], "fa:16:3e:00:00:01");
    assert!(v["nic_details"][0]["rx_octets"].is_null() && v["disk_details"].as_array().map(Vec::len) == Some(2));
    assert_eq!(v["uptime"], 5);
    assert!(v.get("power_state").is_none() && v.get("host").is_none(), "no pre-2.48 keys");
}

/// Nova 2.55: a flavor's description is set at create and by `PUT
/// /flavors/{id}` (admin; unknown flavor 404), and cleared with null.
#[tokio::test]
async fn flavor_descriptions_are_kept_and_updated() {
    let (api, _ds, _dir) = api().await;
    let admin = ctx(&["admin"]);
    let mut body = flavor_body("described", Some("d1"), true).expect("body");
    body.description = Some("for tests".into());
    let made = api.flavor_create(&admin, Ok(body)).await.expect("create");
    assert_eq!(made.description.as_deref(), Some("for tests"));
    assert_eq!(api.flavor_get(&admin, "d1").await.expect("show").description.as_deref(), Some("for tests"));
    let e = api.flavor_update(&ctx(&["member"]), "d1", Ok(None)).await;
    assert!(matches!(e, Err(ComputeError::Forbidden(_))));
    assert!(api.flavor_update(&admin, "nope", Ok(None)).await.is_err());
    let changed = api.flavor_update(&admin, "d1", Ok(Some("new".into()))).await.expect("update");
    assert_eq!(changed.description.as_deref(), Some("new"));
    let cleared = api.flavor_update(&admin, "d1", Ok(None)).await.expect("clear");
    assert_eq!(cleared.description, None);
    let e = api.flavor_update(&admin, "d1", Err("bad".into())).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(_))));
}

/// Nova 2.49/2.79/2.85: a volume attached with a device tag and
/// `delete_on_termination` keeps both; `PUT` on the attachment changes
/// `delete_on_termination` (a reader may not; another volume is a swap,
/// not offered: 400).
#[tokio::test]
async fn attachments_keep_their_tag_and_delete_on_termination() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let vid = stratus_types::VolumeId::new();
    let vol = stratus_db::VolumeRow {
        group_id: None,
        id: vid,
        name: Some("v".into()),
        description: None,
        project_id: "p".into(),
        user_id: "u".into(),
        size_gb: 1,
        status: stratus_types::VolumeStatus::Available,
        volume_type_id: Some(stratus_db::DEFAULT_VOLUME_TYPE_ID.into()),
        volume_type: None,
        availability_zone: "nova".into(),
        bootable: false,
        image_id: None,
        backend_name: format!("volume-{vid}"),
        metadata: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        deleted_at: None,
        deleted: false,
        snapshot_id: None,
        source_volid: None,
    };
    ds.volume_create(&vol, -1, -1).await.expect("volume");
    let member = ctx(&["member"]);
    let v = vid.to_string();
    let a = api
        .attach_volume_with(
            &member,
            &id,
            &v,
            "req-att",
            AttachOptions { tag: Some("data"), delete_on_termination: true, ..Default::default() },
        )
        .await
        .expect("attach");
    assert!(a.delete_on_termination);
    assert_eq!(api.attachment_tag(&a).await.expect("tag").as_deref(), Some("data"));
    let e = api.update_attachment(&ctx(&["reader"]), &id, &v, Ok((v.clone(), Some(false)))).await;
    assert!(matches!(e, Err(ComputeError::Forbidden(_))));
    let other = stratus_types::VolumeId::new().to_string();
    let e = api.update_attachment(&member, &id, &v, Ok((other, Some(false)))).await;
    assert!(matches!(e, Err(ComputeError::BadRequest(_))));
    api.update_attachment(&member, &id, &v, Ok((v.clone(), Some(false)))).await.expect("update");
    assert!(!api.attachment_get(&member, &id, &v).await.expect("get").delete_on_termination);
    let e = api.update_attachment(&member, &id, &other_volume(), Ok((v.clone(), None))).await;
    assert!(matches!(e, Err(ComputeError::AttachmentNotFound { .. })));
}

fn other_volume() -> String {
    stratus_types::VolumeId::new().to_string()
}

/// Nova 2.92: key pair names may hold `@` and `.` (refused before).
#[test]
fn keypair_names_widen_at_2_92() {
    assert!(check_keypair_name("me@host.example").is_err());
    assert!(keypairs::check_keypair_name_at("me@host.example", true).is_ok());
    assert!(keypairs::check_keypair_name_at("a/b", true).is_err());
    assert!(keypairs::check_keypair_name_at("ok-name_1", false).is_ok());
}

/// Nova 2.102: `GET /flavors?name=` filters by a regular expression on the
/// name, and the page is cut after the filter.
#[tokio::test]
async fn flavor_lists_filter_by_name() {
    let (api, _ds, _dir) = api().await;
    let admin = ctx(&["admin"]);
    for (name, id) in [("small-a", "a1"), ("small-b", "b1"), ("large", "c1")] {
        api.flavor_create(&admin, flavor_body(name, Some(id), true)).await.expect("create");
    }
    let list = |q: &'static str| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let q = stratus_api::compute::FlavorListQuery::parse(Some(q)).expect("query");
            api.flavor_list(&admin, q).await.expect("list").flavors.into_iter().map(|f| f.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("name=^small").await, vec!["small-a", "small-b"]);
    assert_eq!(list("name=^small&limit=1").await, vec!["small-a"]);
    assert_eq!(list("name=arg").await, vec!["large"]);
    assert!(list("name=nothing").await.is_empty());
}

/// Nova's server tags API (2.26): readers list and check, members change;
/// a tag the server lacks is a 404; 50 tags at most; changes only while the
/// server is active, paused, suspended or stopped (else 409).
#[tokio::test]
async fn server_tags_follow_novas_rules() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let (member, reader) = (ctx(&["member"]), ctx(&["reader"]));
    assert_eq!(api.server_tag_add(&member, &id, "a").await.expect("add"), TagSet::Created);
    assert_eq!(api.server_tag_add(&member, &id, "a").await.expect("again"), TagSet::Existed);
    assert!(matches!(api.server_tag_add(&reader, &id, "b").await, Err(ComputeError::Forbidden(_))));
    assert_eq!(api.server_tags(&reader, &id).await.expect("list"), vec!["a".to_string()]);
    api.server_tag_check(&reader, &id, "a").await.expect("held");
    let e = api.server_tag_check(&reader, &id, "zz").await.expect_err("not held");
    assert_eq!(e.to_string(), format!("Server {id} has no tag 'zz'"));
    let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    api.server_tags_replace(&member, &id, fifty).await.expect("fifty");
    let e = api.server_tag_add(&member, &id, "one-more").await.expect_err("over");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m.contains("per-server limit 50")), "{e:?}");
    api.server_tag_delete(&member, &id, "t0").await.expect("delete");
    assert!(matches!(api.server_tag_delete(&member, &id, "t0").await, Err(ComputeError::ServerTagNotFound { .. })));
    api.server_tags_clear(&member, &id).await.expect("clear");
    assert!(api.server_tags(&member, &id).await.expect("empty").is_empty());
    api.reset_state(&ctx(&["admin"]), &id, stratus_types::VmState::Error, "req-err").await.expect("error state");
    assert!(matches!(api.server_tag_add(&member, &id, "x").await, Err(ComputeError::Conflict(_))));
    assert!(matches!(api.server_tags(&ctx(&["member"]), "not-a-server").await, Err(ComputeError::NotFound { .. })));
}

/// Nova stores a server's description (2.19) from create and update, and
/// a null description clears it.
#[tokio::test]
async fn server_description_is_set_and_cleared_by_update() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let member = ctx(&["member"]);
    let set = stratus_api::compute::ServerUpdate {
        access_ips: Default::default(),
        name: None,
        description: Some(Some("web".into())),
        hostname: None,
        pinned_availability_zone: None,
    };
    assert_eq!(api.update_server(&member, &id, Ok(set)).await.expect("set").server.description.as_deref(), Some("web"));
    let clear = stratus_api::compute::ServerUpdate {
        access_ips: Default::default(),
        name: None,
        description: Some(None),
        hostname: None,
        pinned_availability_zone: None,
    };
    assert_eq!(api.update_server(&member, &id, Ok(clear)).await.expect("clear").server.description, None);
}

/// Nova stores `accessIPv4`/`accessIPv6` given at update (and create and
/// rebuild), normalised: an IPv6 address in its compressed form (what
/// Tempest's `test_verify_server_details` compares with netaddr's form);
/// a value that is not an address of its family is a 400.
#[tokio::test]
async fn access_ips_are_stored_normalised_and_bad_ones_refused() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let member = ctx(&["member"]);
    let body = serde_json::json!({"server": {"accessIPv4": "1.1.1.1", "accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2"}});
    let update = stratus_api::compute::ServerUpdate::parse(&body).map_err(|e| e.to_string());
    let s = api.update_server(&member, &id, update).await.expect("update").server;
    assert_eq!(s.access_ip_v4.as_deref(), Some("1.1.1.1"));
    assert_eq!(s.access_ip_v6.as_deref(), Some("::babe:dc0c:1602"));
    let only_v4 = serde_json::json!({"server": {"accessIPv4": "2.2.2.2"}});
    let update = stratus_api::compute::ServerUpdate::parse(&only_v4).map_err(|e| e.to_string());
    let s = api.update_server(&member, &id, update).await.expect("update").server;
    assert_eq!((s.access_ip_v4.as_deref(), s.access_ip_v6.as_deref()), (Some("2.2.2.2"), Some("::babe:dc0c:1602")));
    for bad in [
        serde_json::json!({"server": {"accessIPv4": "1.1.1"}}),
        serde_json::json!({"server": {"accessIPv6": "1.1.1.1"}}),
        serde_json::json!({"server": {"accessIPv4": 7}}),
    ] {
        let update = stratus_api::compute::ServerUpdate::parse(&bad).map_err(|e| e.to_string());
        let e = api.update_server(&member, &id, update).await.expect_err("refused");
        assert!(matches!(&e, ComputeError::BadRequest(m) if m.contains("is not a 'ipv")), "{bad}: {e:?}");
    }
}

/// Nova's server list: an `ip6` filter matches no server here (none has
/// IPv6); an unknown status below 2.38 is an empty list; tags filter.
#[tokio::test]
async fn server_lists_filter_by_ip6_status_and_tags() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let member = ctx(&["member"]);
    api.server_tag_add(&member, &id, "web").await.expect("tag");
    let list = |q: &str, minor: u32| {
        let q = ServerQuery::parse_at(Some(q), stratus_api::Microversion::new(2, minor)).expect("query");
        let api = api.clone();
        let member = member.clone();
        async move { api.server_list(&member, q, true).await.expect("list") }
    };
    assert_eq!(list("", 26).await.servers.len(), 1);
    assert!(list("ip6=::1", 4).await.servers.len() == 1, "a non-admin's ip6 is ignored before 2.5");
    assert!(list("ip6=::1", 5).await.servers.is_empty());
    assert!(list("status=bogus", 37).await.servers.is_empty());
    let tagged = list("tags=web", 26).await;
    assert_eq!(tagged.servers.len(), 1);
    assert_eq!(tagged.tags.get(&tagged.servers[0].id), Some(&vec!["web".to_string()]));
    assert!(list("not-tags-any=web", 26).await.servers.is_empty());
}

/// Nova's rebuild at 2.54: a key pair the user does not have is a 400.
#[tokio::test]
async fn rebuild_with_an_unknown_key_name_is_refused() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let a = Action::Rebuild {
        image_ref: uuid::Uuid::new_v4().to_string(),
        name: None,
        metadata: None,
        description: None,
        key_name: Some(Some("nope".into())),
        user_data: None,
        hostname: None,
        reimage_boot_volume: false,
        access_ips: Default::default(),
    };
    let e = api.action(&ctx(&["member"]), &id, a, "req-rb").await.expect_err("unknown key");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Invalid key_name provided."), "{e:?}");
}

/// Nova's list filters `locked` (2.73) and `changes-since`, which also
/// lists servers deleted since.
#[tokio::test]
async fn server_lists_filter_by_lock_and_changes_since_with_deleted_ones() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let member = ctx(&["member"]);
    let list = |q: &str| {
        let q = ServerQuery::parse_at(Some(q), stratus_api::Microversion::new(2, 73)).expect("query");
        let api = api.clone();
        let member = member.clone();
        async move { api.server_list(&member, q, true).await.expect("list").servers }
    };
    assert!(list("locked=true").await.is_empty());
    api.set_lock(&member, &id, true, Some("why".into()), "req-lock").await.expect("lock");
    let locked = list("locked=1").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].locked_reason.as_deref(), Some("why"));
    api.set_lock(&member, &id, false, None, "req-unlock").await.expect("unlock");
    ds.server_mark_deleted(&ServerId::parse_canonical(&id).expect("id")).await.expect("deleted");
    assert!(list("").await.is_empty());
    let since = list("changes-since=2000-01-01T00:00:00Z").await;
    assert_eq!(since.len(), 1, "a server deleted since is listed");
    assert!(since[0].deleted);
}

/// Nova (2.67): a mapping's `volume_type`, by id or name, must name a type
/// the caller sees; an unknown one is a 400.
#[tokio::test]
async fn block_device_volume_types_must_exist() {
    let (api, ds, _dir) = api().await;
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor");
    let req = |t: &str| ServerCreate {
        name: "vt".into(),
        image_ref: None,
        flavor_ref: "1".into(),
        flavor_id: "1".into(),
        block_devices: vec![BdmRequest {
            source_type: "volume".into(),
            destination_type: "volume".into(),
            uuid: Some(uuid::Uuid::new_v4().to_string()),
            boot_index: Some(0),
            volume_type: Some(t.into()),
            ..Default::default()
        }],
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: None,
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    let e = api.create(&ctx(&["member"]), req("nope"), "req-vt").await.expect_err("unknown type");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Volume type nope could not be found."), "{e:?}");
    // The default type by name passes this check (the missing volume fails later).
    let e = api.create(&ctx(&["member"]), req("__DEFAULT__"), "req-vt2").await.expect_err("missing volume");
    assert!(matches!(&e, ComputeError::BadRequest(m) if !m.starts_with("Volume type")), "{e:?}");
}

/// Nova (2.74): a requested host needs an admin
/// (`servers:create:requested_destination`) and an existing compute host
/// (else 400 "Compute host X could not be found.").
#[tokio::test]
async fn a_requested_host_needs_an_admin_and_a_known_host() {
    let (api, ds, _dir) = api().await;
    ds.flavor_ensure(&tiny_flavor()).await.expect("flavor");
    let cap = HostCapacity { vcpus: 4, memory_mb: 4096, disk_gb: 40 };
    ds.service_join("h1", cap, chrono::Duration::seconds(30)).await.expect("join");
    let req = |host: &str| ServerCreate {
        name: "placed".into(),
        image_ref: Some(String::new()),
        flavor_ref: "1".into(),
        flavor_id: "1".into(),
        block_devices: vec![],
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        networks: Networks::None,
        count: 1,
        admin_pass: None,
        return_reservation_id: false,
        description: None,
        tags: Vec::new(),
        user_data: None,
        host: Some(host.into()),
        hypervisor_hostname: None,
        hostname: None,
        scheduler_hints: None,
        access_ips: Default::default(),
    };
    let e = api.create(&ctx(&["member"]), req("h1"), "req-h").await.expect_err("member");
    assert!(matches!(e, ComputeError::Forbidden(_)), "{e:?}");
    let admin = ctx(&["admin"]);
    let e = api.create(&admin, req("h9"), "req-h").await.expect_err("unknown host");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Compute host h9 could not be found."), "{e:?}");
    api.create(&admin, req("h1"), "req-h").await.expect("known host");
}

/// Nova's unshelve to a zone or host (2.77, 2.91): only for a
/// shelved-offloaded server (409), a host only for admins (403) and known
/// (400), a zone only with an enabled host (400); the zone asked for pins
/// the server.
#[tokio::test]
async fn unshelve_destinations_follow_novas_rules() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let (member, admin) = (ctx(&["member"]), ctx(&["admin"]));
    let to = |az: Option<Option<&str>>, host: Option<&str>| Action::Unshelve {
        availability_zone: az.map(|z| z.map(str::to_string)),
        host: host.map(str::to_string),
    };
    let e = api.action(&member, &id, to(Some(Some("nova")), None), "req-u1").await.expect_err("active");
    assert!(matches!(e, ComputeError::Conflict(_)), "{e:?}");
    api.reset_state(&admin, &id, stratus_types::VmState::Active, "req-r").await.expect("reset");
    let sid = ServerId::parse_canonical(&id).expect("id");
    let t = stratus_db::Transition { vm: Some(stratus_types::VmState::ShelvedOffloaded), ..Default::default() };
    ds.server_transition(&sid, &t).await.expect("offloaded");
    let e = api.action(&member, &id, to(None, Some("h1")), "req-u2").await.expect_err("member host");
    assert!(matches!(e, ComputeError::Forbidden(_)), "{e:?}");
    let e = api.action(&admin, &id, to(None, Some("h9")), "req-u3").await.expect_err("unknown host");
    assert!(matches!(&e, ComputeError::BadRequest(m) if m == "Compute host h9 could not be found."), "{e:?}");
    let e = api.action(&member, &id, to(Some(Some("elsewhere")), None), "req-u4").await.expect_err("zone");
    assert!(matches!(e, ComputeError::BadRequest(_)), "{e:?}");
    api.action(&member, &id, to(Some(Some("nova")), None), "req-u5").await.expect("unshelve to nova");
    assert_eq!(ds.server_get(&sid).await.expect("row").availability_zone.as_deref(), Some("nova"));
}

/// Nova (2.90): an update's `hostname` becomes the guest's host name.
#[tokio::test]
async fn server_hostname_is_set_by_update() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let set = stratus_api::compute::ServerUpdate {
        access_ips: Default::default(),
        name: None,
        description: None,
        hostname: Some("db-1".into()),
        pinned_availability_zone: None,
    };
    let shown = api.update_server(&ctx(&["member"]), &id, Ok(set)).await.expect("update");
    assert_eq!(shown.server.hostname, "db-1");
}

/// Nova keeps a create's scheduler hints with the server (2.100 shows them).
#[tokio::test]
async fn scheduler_hints_are_kept_with_the_server() {
    let (api, ds, _dir) = api().await;
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let spec = ServerSpec {
        access_ips: Default::default(),
        name: "hinted".into(),
        image_id: None,
        flavor: tiny,
        metadata: Default::default(),
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
        scheduler_hints: Some(serde_json::json!({"same_host": "x"})),
    };
    let made = api.create_servers(&ctx(&["member"]), &spec, "req-hint").await.expect("create");
    let row = ds.server_get(&made[0].server.id).await.expect("row");
    assert_eq!(row.scheduler_hints.as_deref(), Some(r#"{"same_host":"x"}"#));
}

/// Nova (2.104): `pinned_availability_zone` pins an unpinned server to the
/// zone it is in (409 for another), a pinned one cannot be moved to another
/// zone directly (409), and null unpins.
#[tokio::test]
async fn pinning_follows_novas_rules() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let member = ctx(&["member"]);
    let pin = |z: Option<&str>| stratus_api::compute::ServerUpdate {
        access_ips: Default::default(),
        pinned_availability_zone: Some(z.map(str::to_string)),
        ..Default::default()
    };
    let e = api.update_server(&member, &id, Ok(pin(Some("z9")))).await.expect_err("not its zone");
    assert!(matches!(e, ComputeError::Conflict(_)), "{e:?}");
    let shown = api.update_server(&member, &id, Ok(pin(Some("nova")))).await.expect("pin");
    assert_eq!(shown.server.availability_zone.as_deref(), Some("nova"));
    let e = api.update_server(&member, &id, Ok(pin(Some("z9")))).await.expect_err("pinned elsewhere");
    assert!(matches!(&e, ComputeError::Conflict(m) if m.starts_with("Cannot change pinned")), "{e:?}");
    let shown = api.update_server(&member, &id, Ok(pin(None))).await.expect("unpin");
    assert_eq!(shown.server.availability_zone, None);
}

/// Nova's column filters: admins may always use them; other users from
/// 2.83 (`user_id`, `vm_state`, `key_name`, `power_state`, `config_drive`,
/// ...) and 2.90 (`hostname`); before, Nova drops them silently.
#[tokio::test]
async fn column_filters_open_to_non_admins_at_2_83_and_2_90() {
    let (api, ds, _dir) = api().await;
    active_server(&api, &ds).await;
    let list = |q: &str, minor: u32, roles: &'static [&'static str]| {
        let q = ServerQuery::parse_at(Some(q), stratus_api::Microversion::new(2, minor)).expect("query");
        let api = api.clone();
        async move { api.server_list(&ctx(roles), q, false).await.expect("list").servers.len() }
    };
    assert_eq!(list("user_id=someone-else", 82, &["member"]).await, 1, "ignored before 2.83");
    assert_eq!(list("user_id=someone-else", 83, &["member"]).await, 0);
    assert_eq!(list("user_id=u&vm_state=active&power_state=^0$&created_at=20", 83, &["member"]).await, 1);
    assert_eq!(list("vm_state=stopped", 2, &["admin"]).await, 0, "admins may always filter");
    assert_eq!(list("config_drive=True", 83, &["member"]).await, 0, "no server has a config drive");
    assert_eq!(list("hostname=^meta$", 89, &["member"]).await, 1, "ignored before 2.90");
    assert_eq!(list("hostname=^nope$", 90, &["member"]).await, 0);
    assert_eq!(list("hostname=^meta$", 90, &["member"]).await, 1);
}

/// Nova's `host_status` (2.16, admins only): UP for a live enabled host,
/// MAINTENANCE when disabled, DOWN when forced down, "" without a host.
#[tokio::test]
async fn host_status_follows_the_host_service() {
    let (api, ds, _dir) = api().await;
    let cap = HostCapacity { vcpus: 4, memory_mb: 4096, disk_gb: 40 };
    ds.service_join("h1", cap, chrono::Duration::seconds(30)).await.expect("join");
    let id = active_server(&api, &ds).await;
    let admin = ctx(&["admin"]);
    assert_eq!(api.server_show(&admin, &id).await.expect("show").host_status, Some(""));
    let sid = ServerId::parse_canonical(&id).expect("id");
    let placed = stratus_db::Transition { host: Some(Some("h1".into())), ..Default::default() };
    ds.server_transition(&sid, &placed).await.expect("placed");
    assert_eq!(api.server_show(&admin, &id).await.expect("show").host_status, Some("UP"));
    assert_eq!(api.server_show(&ctx(&["member"]), &id).await.expect("show").host_status, None);
    api.update_service(&admin, "disable", true, body("h1")).await.expect("disable");
    assert_eq!(api.server_show(&admin, &id).await.expect("show").host_status, Some("MAINTENANCE"));
    let forced = Ok(ServiceUpdate { forced_down: Some(true), ..body("h1").expect("body") });
    api.update_service(&admin, "force-down", true, forced).await.expect("force down");
    assert_eq!(api.server_show(&admin, &id).await.expect("show").host_status, Some("DOWN"));
}

/// A 1 GiB `available` volume of project `p`.
async fn available_volume(ds: &Datastore) -> stratus_types::VolumeId {
    let id = stratus_types::VolumeId::new();
    let row = stratus_db::VolumeRow {
        group_id: None,
        backend_name: format!("volume-{id}"),
        id,
        name: Some("v".into()),
        description: None,
        project_id: "p".into(),
        user_id: "u".into(),
        size_gb: 1,
        status: stratus_types::VolumeStatus::Available,
        volume_type_id: Some(stratus_db::DEFAULT_VOLUME_TYPE_ID.into()),
        volume_type: None,
        availability_zone: "nova".into(),
        bootable: false,
        image_id: None,
        metadata: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        deleted_at: None,
        deleted: false,
        snapshot_id: None,
        source_volid: None,
    };
    ds.volume_create(&row, -1, -1).await.expect("volume").id
}

/// Nova (2.20): a shelved-offloaded server takes volume attach and detach;
/// with no host, the attachment is only recorded (its unshelve opens it)
/// and a detach releases it; below 2.20 both are 409. A VM the offload did
/// not confirm gone (a zombie) keeps the detach refused.
#[tokio::test]
async fn offloaded_servers_take_attach_and_detach_from_2_20() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let sid = ServerId::parse_canonical(&id).expect("id");
    let t = stratus_db::Transition { vm: Some(stratus_types::VmState::ShelvedOffloaded), ..Default::default() };
    ds.server_transition(&sid, &t).await.expect("offloaded");
    let member = ctx(&["member"]);
    let vol = available_volume(&ds).await.to_string();
    let e = api.attach_volume(&member, &id, &vol, "req-a0", false).await.expect_err("below 2.20");
    assert!(matches!(e, ComputeError::Conflict(_)), "{e:?}");
    let att = api.attach_volume(&member, &id, &vol, "req-a1", true).await.expect("attach");
    assert_eq!(att.status, stratus_types::AttachStatus::Attached);
    assert!(att.host.is_none());
    let v = ds.volume_get(&att.volume_id).await.expect("volume");
    assert_eq!(v.status, stratus_types::VolumeStatus::InUse);
    let e = api.detach_volume(&member, &id, &vol, "req-d0", false).await.expect_err("below 2.20");
    assert!(matches!(e, ComputeError::Conflict(_)), "{e:?}");
    ds.zombie_record(&stratus_db::ZombieRow {
        server_id: sid,
        host: "h1".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        reason: "offload not confirmed".into(),
        created_at: stratus_db::SET_ON_INSERT,
    })
    .await
    .expect("zombie");
    let e = api.detach_volume(&member, &id, &vol, "req-d1", true).await.expect_err("zombie");
    assert!(matches!(e, ComputeError::Conflict(_)), "{e:?}");
    ds.zombie_clear_absent("h1", &[]).await.expect("zombie gone");
    api.detach_volume(&member, &id, &vol, "req-d2", true).await.expect("detach");
    let v = ds.volume_get(&att.volume_id).await.expect("volume");
    assert_eq!(v.status, stratus_types::VolumeStatus::Available);
    assert!(ds.attachment_list_for_server(&sid).await.expect("list").is_empty());
}

/// Nova's `os-migrations` policy defaults (nova/policies/migrations.py):
/// `index` PROJECT_MANAGER_OR_ADMIN, listing without `project_id` or with
/// another project's `index:all_projects` ADMIN, and the hosts shown only to
/// admins (`index:host`); filters as Nova's `migration_get_all_by_filters`.
#[tokio::test]
async fn migrations_are_listed_to_a_project_manager_for_its_project_and_to_admins() {
    let (api, ds, _dir) = api().await;
    let id = active_server(&api, &ds).await;
    let server = ds.server_get(&id.parse().expect("id")).await.expect("server");
    let row = |kind, status| stratus_db::MigrationRow {
        id: 0,
        server_id: server.id,
        kind,
        source_host: "h1".into(),
        dest_host: Some("h2".into()),
        old_flavor_id: "1".into(),
        new_flavor_id: "2".into(),
        old_vcpus: 1,
        old_ram_mb: 512,
        old_disk_gb: 1,
        old_vm_state: stratus_types::VmState::Active,
        status,
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        uuid: String::new(),
        project_id: server.project_id.clone(),
        user_id: server.user_id.clone(),
        old_flavor: Default::default(),
    };
    use stratus_types::{MigrationKind, MigrationStatus};
    let resize = ds.migration_create(&row(MigrationKind::Resize, MigrationStatus::Confirmed)).await.expect("resize");
    let evac = ds.migration_create(&row(MigrationKind::Evacuation, MigrationStatus::Done)).await.expect("evac");
    assert_eq!(resize.uuid.len(), 36, "a uuid is given at insert: {resize:?}");
    assert_ne!(resize.uuid, evac.uuid);
    assert_eq!(resize.project_id, "p");

    let own = || stratus_db::MigrationFilter { project_id: Some("p".into()), ..Default::default() };
    let manager = ctx(&["manager"]);
    let listed = api.migrations(&manager, own()).await.expect("a manager lists its own project's");
    assert_eq!(listed.migrations.iter().map(|m| m.id).collect::<Vec<_>>(), [evac.id, resize.id], "newest first");
    assert!(!listed.show_hosts, "only admins see the hosts");
    let forbidden = |r: Result<_, ComputeError>| matches!(r, Err(ComputeError::Forbidden(_)));
    assert!(forbidden(api.migrations(&manager, Default::default()).await), "all projects: admin only");
    let other = stratus_db::MigrationFilter { project_id: Some("q".into()), ..Default::default() };
    assert!(forbidden(api.migrations(&manager, other).await), "another project: admin only");
    assert!(forbidden(api.migrations(&ctx(&["member"]), own()).await), "a member may not");
    assert!(forbidden(api.migrations(&ctx(&["reader"]), own()).await), "a reader may not");

    let admin = ctx(&["admin"]);
    let all = api.migrations(&admin, Default::default()).await.expect("admin");
    assert_eq!(all.migrations.len(), 2);
    assert!(all.show_hosts);
    let only = |f: stratus_db::MigrationFilter| {
        let api = &api;
        let admin = &admin;
        async move { api.migrations(admin, f).await.expect("filtered").migrations.iter().map(|m| m.id).collect::<Vec<_>>() }
    };
    let f = stratus_db::MigrationFilter { migration_type: Some("resize".into()), ..Default::default() };
    assert_eq!(only(f).await, [resize.id]);
    let f = stratus_db::MigrationFilter { status: Some("done".into()), ..Default::default() };
    assert_eq!(only(f).await, [evac.id]);
    let f = stratus_db::MigrationFilter { host: Some("h2".into()), ..Default::default() };
    assert_eq!(only(f).await.len(), 2, "host matches the destination too");
    let f = stratus_db::MigrationFilter { source_compute: Some("h2".into()), ..Default::default() };
    assert!(only(f).await.is_empty(), "source_compute matches the source only");
    let f = stratus_db::MigrationFilter { instance_uuid: Some(uuid_str()), ..Default::default() };
    assert!(only(f).await.is_empty());
}

fn uuid_str() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}

/// Nova's addSecurityGroup / removeSecurityGroup against Neutron
/// (nova/network/security_group_api.py): an unknown group or a server with
/// no port is 404, removing a group the ports are not in is 404, a reader
/// may not; the ports' groups are what the server view lists.
#[tokio::test]
async fn security_groups_are_added_to_and_removed_from_a_servers_ports() {
    let (api, ds, _dir) = api().await;
    let tiny = tiny_flavor();
    ds.flavor_ensure(&tiny).await.expect("flavor");
    let spec = ServerSpec {
        name: "sg".into(),
        image_id: None,
        flavor: tiny,
        metadata: Default::default(),
        key_name: None,
        availability_zone: None,
        allocate_network: true,
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
    let member = ctx(&["member"]);
    let id = api.create_servers(&member, &spec, "req-sg").await.expect("create")[0].server.id.to_string();
    let sid: stratus_types::ServerId = id.parse().expect("id");
    let groups = |ds: Datastore| async move {
        ds.port_list_for_server(&sid).await.expect("ports").iter().flat_map(|p| p.security_groups()).collect::<Vec<_>>()
    };
    assert_eq!(groups(ds.clone()).await, ["default"], "every port starts in the project's default group");
    let not_found = |r: Result<(), ComputeError>| matches!(r, Err(ComputeError::SecurityGroupNotFound(_)));
    assert!(not_found(api.change_security_group(&member, &id, "web", true).await), "no such group");
    assert!(matches!(
        api.change_security_group(&ctx(&["reader"]), &id, "default", false).await,
        Err(ComputeError::Forbidden(_))
    ));
    api.change_security_group(&member, &id, "default", false).await.expect("remove");
    assert!(groups(ds.clone()).await.is_empty());
    let e = api.change_security_group(&member, &id, "default", false).await;
    assert!(matches!(&e, Err(ComputeError::SecurityGroupNotFound(m)) if m.contains("not associated")), "{e:?}");
    api.change_security_group(&member, &id, "default", true).await.expect("add");
    api.change_security_group(&member, &id, "default", true).await.expect("adding again changes nothing");
    assert_eq!(groups(ds.clone()).await, ["default"]);
    let portless = active_server(&api, &ds).await;
    let e = api.change_security_group(&member, &portless, "default", true).await;
    assert!(matches!(&e, Err(ComputeError::SecurityGroupNotFound(m)) if m.contains("any ports")), "{e:?}");
}
