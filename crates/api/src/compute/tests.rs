use super::*;
use serde_json::json;

#[test]
fn body_less_actions_take_null_or_empty_object() {
    assert_eq!(ServerAction::parse(&json!({"pause": null})), Ok(ServerAction::Pause));
    assert_eq!(ServerAction::parse(&json!({"os-stop": {}})), Ok(ServerAction::Stop));
    assert_eq!(ServerAction::parse(&json!({"lock": {}})), Ok(ServerAction::Lock { reason: None }));
    assert_eq!(
        ServerAction::parse(&json!({"pause": 1})),
        Err(actions::ActionError::Invalid(RequestError::BadRequest(
            "Invalid input for field/attribute pause. Value: 1. 1 is not of type 'null'".into()
        )))
    );
    assert_eq!(
        ServerAction::parse(&json!({"shelveOffload": {"x": 1}})),
        Err(actions::ActionError::Invalid(RequestError::BadRequest(
            "Invalid input for field/attribute shelveOffload. Value: {\"x\":1}. {\"x\":1} is not of type 'null'".into()
        )))
    );
}

#[test]
fn actions_with_arguments_keep_novas_messages() {
    assert_eq!(ServerAction::parse(&json!({"reboot": {"type": "hard"}})), Ok(ServerAction::Reboot { hard: true }));
    assert_eq!(
        ServerAction::parse(&json!({"reboot": {}})),
        Err(actions::ActionError::Invalid(RequestError::BadRequest(
            "Invalid input for field/attribute reboot. 'type' is a required property".into()
        )))
    );
    assert_eq!(
        ServerAction::parse(&json!({"resize": {"flavorRef": 2}})),
        Ok(ServerAction::Resize { flavor_ref: "2".into() })
    );
    assert_eq!(
        ServerAction::parse(&json!({"createImage": {"name": "snap", "metadata": {"a": "b"}}})),
        Ok(ServerAction::CreateImage { name: "snap".into(), metadata: [("a".to_string(), "b".to_string())].into() })
    );
    assert_eq!(
        ServerAction::parse(&json!({"evacuate": {"onSharedStorage": false}})),
        Ok(ServerAction::Evacuate(actions::Evacuate { on_shared_storage: Some(false), ..Default::default() }))
    );
    assert_eq!(
        ServerAction::parse(&json!({"os-resetState": {"state": "error"}})),
        Ok(ServerAction::ResetState { state: ResetStateTarget::Error })
    );
    assert_eq!(
        ServerAction::parse(&json!({"frobnicate": null})),
        Err(actions::ActionError::Unknown("frobnicate".into()))
    );
    assert!(matches!(ServerAction::parse(&json!({"a": null, "b": null})), Err(actions::ActionError::Invalid(_))));
}

#[test]
fn create_body_is_checked_in_shape() {
    let req: CreateServerRequest = serde_json::from_value(json!({"server": {
        "name": "vm", "imageRef": "http://x/images/abc", "flavorRef": 1, "networks": "none",
        "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume", "uuid": "u", "boot_index": "0"}]
    }, "os:scheduler_hints": {"group": "g"}}))
    .expect("body");
    let c = req.check_at(crate::Microversion::new(2, 37)).expect("valid");
    assert_eq!(c.image_ref.as_deref(), Some("abc"));
    assert_eq!(c.flavor_id, "1");
    assert_eq!(c.networks, Networks::None);
    assert_eq!(c.block_devices[0].boot_index, Some(0));
    assert_eq!(c.count, 1);
}

#[test]
fn list_query_is_parsed() {
    let q = ServerListQuery::parse(Some("name=a%20b&limit=5000&all_tenants")).expect("query");
    assert_eq!(q.name.as_deref(), Some("a b"));
    assert_eq!(q.limit, Some(1000));
    assert!(q.all_tenants);
    assert_eq!(
        ServerListQuery::parse(Some("limit=-1")),
        Err(RequestError::BadRequest("limit param must be positive".into()))
    );
}

#[test]
fn views_follow_the_microversion() {
    let f = stratus_db::FlavorRow {
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
    };
    let brief = views::flavor("http://c", &f, false, crate::MIN_COMPUTE, None);
    assert!(brief.get("ram").is_none());
    let full = views::flavor("http://c", &f, true, crate::MIN_COMPUTE, None);
    assert_eq!(full["swap"], json!(""));
    assert_eq!(full["links"][0]["href"], json!("http://c/compute/v2.1/flavors/1"));
    let body = views::service_updated("h1", "nova-compute", views::ServiceChangeView::ForcedDown(true));
    assert_eq!(body, json!({"service": {"host": "h1", "binary": "nova-compute", "forced_down": true}}));
    let body = views::service_updated("h1", "nova-compute", views::ServiceChangeView::Disabled(Some("r")));
    assert_eq!(body["service"]["disabled_reason"], json!("r"));
}

/// Timestamps are typed now; the wire text must be what the stored-string
/// helpers rendered before (Nova seconds with `Z`, Nova and Cinder
/// microseconds without a zone), including a zero fraction.
#[test]
fn typed_timestamps_render_as_the_stored_text_did() {
    let t = stratus_db::parse_ts("2026-11-28T23:41:22.123456Z").expect("ts");
    assert_eq!(views::iso(t), "2026-11-28T23:41:22Z");
    assert_eq!(views::iso_micro(t), "2026-11-28T23:41:22.123456");
    assert_eq!(crate::volume::cinder_ts(t), json!("2026-11-28T23:41:22.123456"));
    let whole = stratus_db::parse_ts("2026-11-28T23:41:22.000000Z").expect("ts");
    assert_eq!(views::iso(whole), "2026-11-28T23:41:22Z");
    assert_eq!(views::iso_micro(whole), "2026-11-28T23:41:22.000000");
    assert_eq!(crate::volume::cinder_ts(whole), json!("2026-11-28T23:41:22.000000"));
}

#[test]
fn console_output_length_is_an_integer_or_digits_minus_one_meaning_all() {
    let parse = |arg: serde_json::Value| ServerAction::parse(&json!({"os-getConsoleOutput": arg}));
    let ok = |length| Ok(ServerAction::GetConsoleOutput { length });
    assert_eq!(parse(json!({})), ok(None));
    assert_eq!(parse(json!({"length": null})), ok(None));
    assert_eq!(parse(json!({"length": -1})), ok(None));
    assert_eq!(parse(json!({"length": "-1"})), ok(None));
    assert_eq!(parse(json!({"length": 0})), ok(Some(0)));
    assert_eq!(parse(json!({"length": 5})), ok(Some(5)));
    assert_eq!(parse(json!({"length": "12"})), ok(Some(12)));
    assert_eq!(parse(json!({"length": "99999999999999999999999999"})), ok(Some(usize::MAX)));
    for bad in [
        json!({"length": -2}),
        json!({"length": "-3"}),
        json!({"length": 1.5}),
        json!({"length": "abc"}),
        json!({"length": ""}),
        json!({"length": "1.0"}),
        json!({"length": true}),
        json!({"length": [1]}),
        json!({"size": 1}),
        json!(null),
        json!(3),
    ] {
        assert!(
            matches!(parse(bad.clone()), Err(actions::ActionError::Invalid(RequestError::BadRequest(_)))),
            "{bad} must be refused"
        );
    }
}

/// Issue 11, hole 7: createImage metadata becomes image properties, so it
/// may not set Stratus's reserved `stratus:` keys (tags, os_hidden) nor
/// Glance's reserved `os_glance_` ones; Nova answers invalid metadata with 400.
#[test]
fn create_image_refuses_reserved_metadata_keys() {
    for key in ["stratus:tags", "stratus:os_hidden", "STRATUS:x", "os_glance_import_task", ""] {
        let r = ServerAction::parse(&json!({"createImage": {"name": "snap", "metadata": {key: "[\"x\"]"}}}));
        assert!(
            matches!(r, Err(actions::ActionError::Invalid(RequestError::BadRequest(ref m))) if m.contains("metadata")),
            "{key:?}: {r:?}"
        );
    }
    let long = "k".repeat(256);
    let r = ServerAction::parse(&json!({"createImage": {"name": "snap", "metadata": {long: "v"}}}));
    assert!(matches!(r, Err(actions::ActionError::Invalid(_))), "{r:?}");
}

// Nova server_metadata: `{"metadata": {...}}` only; `{"meta": {k: v}}` with
// the URL's key, "Request body contains too many items", "Request body and URI mismatch".
#[test]
fn metadata_bodies_follow_novas_schema_and_messages() {
    let ok = parse_metadata_body(&json!({"metadata": {"a": "1"}})).expect("metadata");
    assert_eq!(ok.get("a").map(String::as_str), Some("1"));
    assert!(parse_metadata_body(&json!({"metadata": {}})).expect("empty").is_empty());
    for bad in [json!({}), json!({"meta": {"a": "1"}}), json!({"metadata": {"": "1"}}), json!({"metadata": {"a": 1}})] {
        assert!(matches!(parse_metadata_body(&bad), Err(RequestError::BadRequest(_))), "{bad}");
    }
    assert!(parse_metadata_body(&json!({"metadata": {"k".repeat(256): "v"}})).is_err());
    assert_eq!(parse_meta_item(&json!({"meta": {"a": "1"}}), "a"), Ok("1".to_string()));
    let many = parse_meta_item(&json!({"meta": {"a": "1", "b": "2"}}), "a").expect_err("two items");
    assert_eq!(many.to_string(), "Request body contains too many items");
    let mismatch = parse_meta_item(&json!({"meta": {"b": "1"}}), "a").expect_err("other key");
    assert_eq!(mismatch.to_string(), "Request body and URI mismatch");
    assert!(parse_meta_item(&json!({"metadata": {"a": "1"}}), "a").is_err());
    assert!(parse_meta_item(&json!({"meta": {}}), "a").is_err());
}

// Nova keypairs schema: `type` from 2.2, `user_id` from 2.10, nothing else.
#[test]
fn keypair_bodies_follow_novas_schema_per_microversion() {
    use crate::Microversion as M;
    let plain = parse_keypair_create(&json!({"keypair": {"name": "k"}}), M::new(2, 1)).expect("plain");
    assert_eq!((plain.name.as_str(), plain.key_type.as_str(), plain.public_key), ("k", "ssh", None));
    let typed = json!({"keypair": {"name": "k", "type": "x509"}});
    assert!(parse_keypair_create(&typed, M::new(2, 1)).is_err(), "type is 2.2+");
    assert_eq!(parse_keypair_create(&typed, M::new(2, 2)).expect("2.2").key_type, "x509");
    let owned = json!({"keypair": {"name": "k", "user_id": "u2"}});
    assert!(parse_keypair_create(&owned, M::new(2, 9)).is_err(), "user_id is 2.10+");
    assert_eq!(parse_keypair_create(&owned, M::new(2, 10)).expect("2.10").user_id.as_deref(), Some("u2"));
    for bad in [
        json!({}),
        json!({"keypair": {}}),
        json!({"keypair": {"name": 1}}),
        json!({"keypair": {"name": "k", "type": "rsa"}}),
    ] {
        assert!(parse_keypair_create(&bad, M::new(2, 11)).is_err(), "{bad}");
    }
}

// Nova servers index: `name` is a regular expression; `flavor` and `image` filter by id.
#[test]
fn server_list_name_is_a_regex_and_flavor_image_filter() {
    let q = ServerListQuery::parse(Some("name=%5E.*-instance-%5B0-9%5D%2B%24&flavor=http://x/flavors/2&image=abc"))
        .expect("q");
    assert_eq!(q.name.as_deref(), Some("^.*-instance-[0-9]+$"));
    assert_eq!((q.flavor.as_deref(), q.image.as_deref()), (Some("2"), Some("abc")));
    let literal = ServerListQuery::parse(Some("name=a(b")).expect("invalid regex");
    assert_eq!(literal.name.as_deref(), Some(r"a\(b"), "matched as text");
}

// Nova's quota_sets/quota_classes update schemas: integers or digit strings
// from -1 to 2^31-1, known resources only, `force` a boolean on quota sets.
#[test]
fn quota_bodies_follow_novas_schema() {
    let v21 = crate::MIN_COMPUTE;
    let ok = parse_quota_body(&json!({"quota_set": {"ram": "5120", "cores": 2, "force": "True"}}), QuotaBody::Set, v21);
    let ok = ok.expect("valid");
    assert!(ok.force);
    assert_eq!(ok.limits.iter().find(|(r, _)| *r == "ram"), Some(&("ram", 5120)));
    assert_eq!(ok.limits.iter().find(|(r, _)| *r == "cores"), Some(&("cores", 2)));
    // The legacy network quotas are accepted (Nova stores them, Neutron enforces).
    let net = parse_quota_body(&json!({"quota_set": {"floating_ips": 20}}), QuotaBody::Set, v21).expect("network key");
    assert_eq!(net.limits, vec![("floating_ips", 20)]);
    let bad = |v: serde_json::Value, kind| match parse_quota_body(&v, kind, v21) {
        Err(RequestError::BadRequest(m)) => m,
        other => panic!("expected a 400 for {v}: {other:?}"),
    };
    assert_eq!(
        bad(json!({"quota_set": {"foo": 1}}), QuotaBody::Set),
        "Additional properties are not allowed ('foo' was unexpected)"
    );
    assert!(bad(json!({"quota_set": {"ram": -2}}), QuotaBody::Set).contains("less than the minimum of -1"));
    assert!(bad(json!({"quota_set": {"ram": "1.5"}}), QuotaBody::Set).contains("does not match"));
    assert!(bad(json!({"quota_set": {"ram": 2147483648i64}}), QuotaBody::Set).contains("greater than the maximum"));
    assert!(bad(json!({"quota_set": {"ram": true}}), QuotaBody::Set).contains("is not of type"));
    assert!(bad(json!({"quota_set": {"force": "maybe"}}), QuotaBody::Set).contains("force"));
    assert!(bad(json!({"quota_class_set": {"force": true}}), QuotaBody::ClassSet).contains("'force' was unexpected"));
    assert!(bad(json!({"quota_set": {}}), QuotaBody::ClassSet).contains("'quota_set' was unexpected"));
    assert!(bad(json!({}), QuotaBody::Set).contains("'quota_set' is a required property"));
}

#[test]
fn flavor_list_queries_follow_novas_parsing() {
    let q = FlavorListQuery::parse(Some("minRam=512&minDisk=%2B2&limit=5000&marker=7&sort_key=name&sort_dir=desc"))
        .expect("query");
    assert_eq!((q.min_ram, q.min_disk, q.limit, q.marker.as_deref()), (Some(512), Some(2), Some(1000), Some("7")));
    assert_eq!((q.sort_key, q.descending), (stratus_db::FlavorSortKey::Name, true));
    // Nova: int() of minRam/minDisk, its schema for limit, sort_key and sort_dir.
    for (raw, msg) in [
        ("minRam=big", "Invalid minRam filter [big]"),
        ("minDisk=1.5", "Invalid minDisk filter [1.5]"),
        ("limit=-1", "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"),
        ("sort_dir=up", "Invalid input for query parameters sort_dir. Value: up. 'up' is not one of ['asc', 'desc']"),
    ] {
        assert_eq!(FlavorListQuery::parse(Some(raw)), Err(RequestError::BadRequest(msg.into())), "{raw}");
    }
    assert!(FlavorListQuery::parse(Some("sort_key=colour")).is_err());
    // Nova's admin is_public: absent is public only, "none" is all, else strict booleans.
    assert_eq!(parse_is_public(None), Ok(Some(true)));
    assert_eq!(parse_is_public(Some("NONE")), Ok(None));
    assert_eq!(parse_is_public(Some("no")), Ok(Some(false)));
    assert_eq!(parse_is_public(Some("x")), Err(RequestError::BadRequest("Invalid is_public filter [x]".into())));
}

#[test]
fn flavor_create_bodies_follow_novas_schema() {
    let ok = parse_flavor_create(&json!({"flavor": {"name": "f", "ram": "1024", "vcpus": 1, "disk": 0, "id": 1000,
        "os-flavor-access:is_public": "False", "rxtx_factor": "2.5", "swap": 0}}))
    .expect("valid");
    assert_eq!((ok.ram_mb, ok.id.as_deref(), ok.is_public, ok.rxtx_factor), (1024, Some("1000"), false, 2.5));
    assert_eq!(
        parse_flavor_create(&json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "id": null}}))
            .expect("null id")
            .id,
        None
    );
    // Nova's create schema (2.1) and its messages.
    for (body, msg) in [
        (json!({"flavor": {"ram": 1, "vcpus": 1, "disk": 0}}), "'name' is a required property"),
        (
            json!({"flavor": {"name": "f", "ram": 0, "vcpus": 1, "disk": 0}}),
            "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1",
        ),
        (
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": "x", "disk": 0}}),
            "Invalid input for field/attribute vcpus. Value: x. 'x' does not match '^[0-9]+$'",
        ),
        (
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": -1}}),
            "Invalid input for field/attribute disk. Value: -1. -1 is less than the minimum of 0",
        ),
        (
            json!({"flavor": {"name": " f", "ram": 1, "vcpus": 1, "disk": 0}}),
            "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.",
        ),
        (
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "id": "a/b"}}),
            "Invalid input for field/attribute id. Value: a/b. 'a/b' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'",
        ),
        (
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}}),
            "Invalid input for field/attribute rxtx_factor. Value: 0. 0 is less than or equal to the minimum of 0",
        ),
        (
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "colour": 1}}),
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
    ] {
        assert_eq!(parse_flavor_create(&body), Err(RequestError::BadRequest(msg.into())), "{body}");
    }
}

#[test]
fn flavor_access_and_extra_spec_bodies_follow_novas_schema() {
    assert_eq!(
        parse_flavor_action(&json!({"addTenantAccess": {"tenant": "p"}})),
        Ok(FlavorAccessChange::Add("p".into()))
    );
    assert_eq!(
        parse_flavor_action(&json!({"removeTenantAccess": {"tenant": "p"}})),
        Ok(FlavorAccessChange::Remove("p".into()))
    );
    assert_eq!(
        parse_flavor_action(&json!({"shareIt": {}})),
        Err(RequestError::BadRequest("There is no such action: shareIt".into()))
    );
    assert_eq!(
        parse_flavor_action(&json!({"addTenantAccess": {}})),
        Err(RequestError::BadRequest("'tenant' is a required property".into()))
    );
    // Nova: numbers are accepted as extra spec values (kept as text); keys follow its pattern.
    let specs =
        parse_extra_specs_body(&json!({"extra_specs": {"hw:numa_nodes": 2, "a b.c-d_e": "x"}}), mv(1)).expect("specs");
    assert_eq!(specs.get("hw:numa_nodes").map(String::as_str), Some("2"));
    assert!(parse_extra_specs_body(&json!({"extra_specs": {"bad/key": "x"}}), mv(1)).is_err());
    assert!(parse_extra_specs_body(&json!({"extra_specs": {"k": "v".repeat(256)}}), mv(1)).is_err());
    assert!(parse_extra_specs_body(&json!({"specs": {}}), mv(1)).is_err());
    assert_eq!(parse_extra_spec_item(&json!({"hw:numa_nodes": "2"}), "hw:numa_nodes", mv(1)), Ok("2".into()));
    assert_eq!(
        parse_extra_spec_item(&json!({"hw:cpu_policy": "shared"}), "hw:numa_nodes", mv(1)),
        Err(RequestError::BadRequest("Request body and URI mismatch".into()))
    );
    assert!(matches!(
        parse_extra_spec_item(&json!({"a": "1", "b": "2"}), "a", mv(1)),
        Err(RequestError::BadRequest(m)) if m.ends_with("has too many properties")
    ));
}

/// Nova 2.86 validates extra specs on `POST os-extra_specs` and `PUT
/// os-extra_specs/{key}` against its registry; below 2.86 nothing is.
#[test]
fn extra_specs_are_validated_from_2_86() {
    let body = json!({"extra_specs": {"hw:cpu_policy": "fast", "foo:bar": "x"}});
    assert!(parse_extra_specs_body(&body, mv(85)).is_ok());
    assert_eq!(
        parse_extra_specs_body(&body, mv(86)),
        Err(RequestError::BadRequest("Validation failed; 'fast' is not one of: dedicated, shared, mixed.".into()))
    );
    let ok = json!({"extra_specs": {"hw:cpu_policy": "mixed", "hw:numa_nodes": 2, "foo:bar": "x", "plain": "y"}});
    assert_eq!(parse_extra_specs_body(&ok, mv(86)).map(|m| m.len()), Ok(4));
    // A number is checked as its text.
    assert!(parse_extra_specs_body(&json!({"extra_specs": {"hw:numa_nodes": 0}}), mv(86)).is_err());
    let unknown = json!({"extra_specs": {"hw:no_such_thing": "1"}});
    assert!(parse_extra_specs_body(&unknown, mv(85)).is_ok());
    assert_eq!(
        parse_extra_specs_body(&unknown, mv(86)),
        Err(RequestError::BadRequest(
            "Validation failed; extra spec 'hw:no_such_thing' does not appear to be a valid extra spec.".into()
        ))
    );
    // The schema's own checks come first.
    assert!(matches!(
        parse_extra_specs_body(&json!({"extra_specs": {"hw:numa_nodes": "x".repeat(256)}}), mv(86)),
        Err(RequestError::BadRequest(m)) if m.ends_with("is too long")
    ));
    // PUT: validated before the key is compared with the URL's, as Nova does.
    assert_eq!(parse_extra_spec_item(&json!({"hw:numa_nodes": "2"}), "hw:numa_nodes", mv(86)), Ok("2".into()));
    assert_eq!(parse_extra_spec_item(&json!({"hw:numa_nodes": "x"}), "hw:numa_nodes", mv(85)), Ok("x".into()));
    assert_eq!(
        parse_extra_spec_item(&json!({"hw:numa_nodes": "x"}), "other", mv(86)),
        Err(RequestError::BadRequest("Validation failed; 'x' is not a valid integer value.".into()))
    );
    assert_eq!(
        parse_extra_spec_item(&json!({"foo:bar": "x"}), "other", mv(86)),
        Err(RequestError::BadRequest("Request body and URI mismatch".into()))
    );
}

#[test]
fn full_flavor_pages_link_the_next_one_with_the_same_parameters() {
    let params = vec![("limit".to_string(), "2".to_string()), ("minRam".to_string(), "512".to_string())];
    let links = views::flavors_links("http://h", true, &params, Some("f 2"), 2, 2).expect("full page");
    assert_eq!(links[0]["href"], "http://h/compute/v2.1/flavors/detail?limit=2&marker=f+2&minRam=512");
    assert!(views::flavors_links("http://h", false, &params, Some("2"), 1, 2).is_none());
    let access = views::flavor_access("10", &["p".to_string()]);
    assert_eq!(access, json!({"flavor_access": [{"flavor_id": "10", "tenant_id": "p"}]}));
}

// Nova's rebuild schema: imageRef required; name, metadata, adminPass, preserve_ephemeral optional.
#[test]
fn rebuild_bodies_follow_novas_schema() {
    let ok = ServerAction::parse(&json!({"rebuild": {"imageRef": "img", "name": "n", "metadata": {"a": "1"}}}));
    let Ok(ServerAction::Rebuild(r)) = ok else { panic!("{ok:?}") };
    assert_eq!((r.image_ref.as_str(), r.name.as_deref()), ("img", Some("n")));
    assert_eq!(r.metadata.map(|m| m.len()), Some(1));
    for bad in [
        json!({"rebuild": {}}),
        json!({"rebuild": {"imageRef": ""}}),
        json!({"rebuild": {"imageRef": "i", "bogus": 1}}),
        json!({"rebuild": {"imageRef": "i", "preserve_ephemeral": "yes"}}),
        json!({"rebuild": {"imageRef": "i", "metadata": {"": "x"}}}),
    ] {
        assert!(matches!(ServerAction::parse(&bad), Err(ActionError::Invalid(_))), "{bad}");
    }
}

fn mv(minor: u32) -> crate::Microversion {
    crate::Microversion::new(2, minor)
}

/// Nova's limits view: the network keys go at 2.36, `maxImageMeta` at 2.39,
/// the personality keys at 2.57.
#[test]
fn limits_lose_keys_with_the_apis_nova_removed() {
    let (l, u) = (stratus_db::QuotaLimits::NOVA_DEFAULTS, stratus_db::QuotaUsage::default());
    let keys = |m| {
        let v = views::limits(&l, &u, mv(m));
        v["limits"]["absolute"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    let has = |m, k: &str| keys(m).iter().any(|x| x == k);
    assert!(has(35, "maxSecurityGroups") && has(35, "totalFloatingIpsUsed") && has(35, "maxImageMeta"));
    assert!(!has(36, "maxSecurityGroups") && !has(36, "maxSecurityGroupRules") && !has(36, "maxTotalFloatingIps"));
    assert!(!has(36, "totalSecurityGroupsUsed") && !has(36, "totalFloatingIpsUsed") && has(36, "maxImageMeta"));
    assert!(!has(39, "maxImageMeta") && has(39, "maxPersonality"));
    assert!(!has(57, "maxPersonality") && !has(57, "maxPersonalitySize") && has(57, "maxServerGroupMembers"));
    assert_eq!(keys(57).len(), 11, "{:?}", keys(57));
}

/// Nova's quota sets drop the network quotas at 2.36 and the personality
/// ones at 2.57 (shown and accepted alike); quota classes gain the server
/// group quotas and lose the network ones at 2.50.
#[test]
fn quota_sets_and_classes_follow_novas_filters() {
    let l = stratus_db::QuotaLimits::NOVA_DEFAULTS;
    let set = |m| views::quota_set(Some("p"), &l, mv(m))["quota_set"].clone();
    let class = |m| views::quota_class_set(Some("default"), &l, mv(m))["quota_class_set"].clone();
    assert!(set(35).get("floating_ips").is_some() && set(35).get("injected_files").is_some());
    assert!(set(36).get("floating_ips").is_none() && set(36).get("security_group_rules").is_none());
    assert!(set(36).get("injected_files").is_some() && set(57).get("injected_file_path_bytes").is_none());
    assert!(set(57).get("server_groups").is_some() && set(57).get("id").is_some());
    assert!(class(49).get("server_groups").is_none() && class(49).get("fixed_ips").is_some());
    assert!(class(50).get("server_group_members").is_some() && class(50).get("fixed_ips").is_none());
    assert!(class(57).get("injected_files").is_none());
    let detail = views::quota_set_detail("p", &l, &Default::default(), mv(36));
    assert!(detail["quota_set"].get("security_groups").is_none() && detail["quota_set"]["cores"]["limit"].is_i64());
    let refused = parse_quota_body(&json!({"quota_set": {"floating_ips": 20}}), QuotaBody::Set, mv(36));
    assert_eq!(
        refused,
        Err(RequestError::BadRequest("Additional properties are not allowed ('floating_ips' was unexpected)".into()))
    );
    assert!(parse_quota_body(&json!({"quota_class_set": {"floating_ips": 1}}), QuotaBody::ClassSet, mv(49)).is_ok());
    assert!(parse_quota_body(&json!({"quota_class_set": {"floating_ips": 1}}), QuotaBody::ClassSet, mv(50)).is_err());
    assert!(parse_quota_body(&json!({"quota_class_set": {"server_groups": 1}}), QuotaBody::ClassSet, mv(50)).is_ok());
    assert!(parse_quota_body(&json!({"quota_set": {"injected_files": 1}}), QuotaBody::Set, mv(57)).is_err());
}

/// Nova's `get_limit_and_marker` and collection links: a non-negative
/// limit capped at 1000, a marker that must name an item (400 otherwise),
/// and a `next` link only on a full page.
#[test]
fn paging_follows_novas_limit_and_marker() {
    let q = |s: &str| parse_query(Some(s));
    assert_eq!(Page::parse(&q("limit=2&marker=b")), Ok(Page { limit: Some(2), marker: Some("b".into()) }));
    assert_eq!(Page::parse(&q("limit=5000")).map(|p| p.limit), Ok(Some(1000)));
    assert!(Page::parse(&q("limit=-1")).is_err() && Page::parse(&q("limit=x")).is_err());
    let items = vec!["a", "b", "c", "d"];
    let page = Page { limit: Some(2), marker: Some("a".into()) };
    assert_eq!(page.apply(items.clone(), |s| s.to_string()), Ok(vec!["b", "c"]));
    assert!(page.is_full(2) && !page.is_full(1));
    let unknown = Page { limit: None, marker: Some("z".into()) };
    assert_eq!(unknown.apply(items, |s| s.to_string()), Err(RequestError::BadRequest("marker [z] not found".into())));
    let link = paging::next_link("http://c", "os-keypairs", &q("limit=2&user_id=u 1"), "k 2");
    assert_eq!(link[0]["href"], "http://c/compute/v2.1/os-keypairs?limit=2&marker=k+2&user_id=u+1");
    assert_eq!(link[0]["rel"], "next");
}

/// Nova's instance-action list query: nothing read before 2.58; from it
/// `limit`, `marker`, `changes-since` and nothing else; `changes-before`
/// from 2.66, not earlier than `changes-since`.
#[test]
fn instance_action_queries_follow_novas_schema() {
    use paging::ChangesQuery;
    assert_eq!(ChangesQuery::parse_actions(Some("foo=1"), mv(57)), Ok(ChangesQuery::default()));
    assert!(ChangesQuery::parse_actions(Some("foo=1"), mv(58)).is_err());
    assert!(ChangesQuery::parse_actions(Some("changes-before=2020-01-01T00:00:00Z"), mv(65)).is_err());
    let q = ChangesQuery::parse_actions(Some("changes-since=2020-01-01T00:00:00Z&limit=1"), mv(58)).expect("valid");
    assert_eq!(q.page.limit, Some(1));
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)).expect("time");
    assert!(q.admits(t("2020-01-01T00:00:00Z")) && !q.admits(t("2019-12-31T23:59:59Z")));
    assert!(ChangesQuery::parse_actions(Some("changes-since=yesterday"), mv(58)).is_err());
    let both = "changes-since=2020-01-02T00:00:00Z&changes-before=2020-01-01T00:00:00Z";
    assert_eq!(
        ChangesQuery::parse_actions(Some(both), mv(66)),
        Err(RequestError::BadRequest(
            "The value of changes-since must be less than or equal to changes-before.".into()
        ))
    );
    let window = ChangesQuery::parse_actions(Some("changes-before=2020-01-01T00:00:00Z"), mv(66)).expect("valid");
    assert!(window.admits(t("2019-01-01T00:00:00Z")) && !window.admits(t("2020-01-01T00:00:01Z")));
}

fn action_row() -> stratus_db::ActionRow {
    let t = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").map(|t| t.with_timezone(&chrono::Utc));
    let t = t.expect("time");
    stratus_db::ActionRow {
        id: 1,
        server_id: stratus_types::ServerId::new(),
        request_id: "req-1".into(),
        action: "stop".into(),
        user_id: "u".into(),
        project_id: "p".into(),
        start_time: t,
        updated_at: t,
        message: None,
    }
}

/// Nova's instance-action views: `updated_at` from 2.58; events for admins,
/// and for everyone from 2.51 (traceback still admin-only); `hostId` from
/// 2.62 for all and `host` for admins; `details` from 2.84 for admins.
#[test]
fn instance_action_views_follow_novas_microversions() {
    let a = action_row();
    assert!(views::instance_action(&a, mv(57)).get("updated_at").is_none());
    assert_eq!(views::instance_action(&a, mv(58))["updated_at"], "2020-01-01T00:00:00.000000");
    let e = stratus_db::EventRow {
        event: "compute_stop_instance".into(),
        start_time: a.start_time,
        finish_time: None,
        result: None,
        host: Some("h1".into()),
        details: Some("why".into()),
    };
    let show = |m, admin| views::instance_action_with_events(&a, std::slice::from_ref(&e), admin, mv(m));
    assert!(show(50, false).get("events").is_none());
    assert_eq!(show(50, true)["events"][0]["traceback"], "why");
    let member = show(51, false);
    assert!(member["events"][0].get("traceback").is_none() && member["events"][0]["event"] == "compute_stop_instance");
    assert!(show(61, true)["events"][0].get("hostId").is_none());
    let (m62, a62) = (show(62, false), show(62, true));
    assert_eq!(m62["events"][0]["hostId"], views::host_id("p", Some("h1")));
    assert!(m62["events"][0].get("host").is_none() && a62["events"][0]["host"] == "h1");
    assert!(show(83, true)["events"][0].get("details").is_none());
    assert_eq!(show(84, true)["events"][0]["details"], "why");
    assert!(show(84, false)["events"][0].get("details").is_none());
}

/// Nova's evacuate and migrate schemas by microversion: `onSharedStorage`
/// required before 2.14 and refused from it; `force` only 2.29-2.67 and
/// only with a `host`; a cold migration's `host` from 2.56.
#[test]
fn evacuate_and_migrate_arguments_follow_novas_microversions() {
    let check = |v: serde_json::Value, m| {
        ServerAction::parse(&v).map_err(|_| ()).and_then(|a| a.check_at(mv(m)).map_err(|_| ()))
    };
    assert!(check(json!({"evacuate": {}}), 13).is_err());
    assert!(check(json!({"evacuate": {"onSharedStorage": false}}), 13).is_ok());
    assert!(check(json!({"evacuate": {"onSharedStorage": false}}), 14).is_err());
    assert!(check(json!({"evacuate": {}}), 14).is_ok());
    assert!(check(json!({"evacuate": {"host": "h2", "force": true}}), 28).is_err());
    assert!(check(json!({"evacuate": {"host": "h2", "force": true}}), 29).is_ok());
    assert!(check(json!({"evacuate": {"force": true}}), 29).is_err());
    assert!(check(json!({"evacuate": {"force": false}}), 29).is_ok());
    assert!(check(json!({"evacuate": {"host": "h2", "force": false}}), 68).is_err());
    assert!(check(json!({"evacuate": {"host": "bad host!"}}), 29).is_err());
    assert!(check(json!({"migrate": {"host": "h2"}}), 55).is_err());
    assert!(check(json!({"migrate": {"host": "h2"}}), 56).is_ok());
    assert!(check(json!({"migrate": {"host": null}}), 56).is_ok());
    assert!(check(json!({"migrate": null}), 1).is_ok());
    assert_eq!(
        ServerAction::parse(&json!({"migrate": {"host": "h2"}})),
        Ok(ServerAction::Migrate { host: Some("h2".into()) })
    );
}

/// Nova's service view shows the service UUID as `id` from 2.53.
#[test]
fn services_are_named_by_uuid_from_2_53() {
    let now = chrono::Utc::now();
    let svc = stratus_db::ServiceRow {
        id: 7,
        uuid: "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11".into(),
        host: "h1".into(),
        binary: "nova-compute".into(),
        zone: "nova".into(),
        disabled: false,
        disabled_reason: None,
        forced_down: false,
        state: stratus_types::ServiceState::Up,
        epoch: 1,
        lease_expires_at: None,
        vcpus: 1,
        memory_mb: 1,
        disk_gb: 1,
        created_at: now,
        updated_at: now,
    };
    assert_eq!(views::service(&svc, true, mv(52))["id"], 7);
    assert_eq!(views::service(&svc, true, mv(53))["id"], "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
}

/// Nova's aggregate view gains `uuid` at 2.41.
#[test]
fn aggregates_show_their_uuid_from_2_41() {
    let a = stratus_db::AggregateRow {
        id: 3,
        uuid: "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11".into(),
        name: "agg".into(),
        created_at: chrono::Utc::now(),
        updated_at: None,
        hosts: vec![],
        metadata: Default::default(),
    };
    assert!(views::aggregate(&a, true, mv(40)).get("uuid").is_none());
    assert_eq!(views::aggregate(&a, false, mv(41))["uuid"], "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11");
    assert_eq!(views::aggregate(&a, false, mv(41))["id"], 3);
}

/// Nova's flavor views: `description` from 2.55 in both forms, the extra
/// specs from 2.61 when the caller may read them, `swap` 0 from 2.75,
/// `rxtx_factor` and `OS-FLV-DISABLED:disabled` gone at 2.102; and its
/// update body (`description` only, a string or null).
#[test]
fn flavor_views_follow_novas_microversions() {
    let f = stratus_db::FlavorRow {
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
        description: Some("small".into()),
    };
    let specs: std::collections::BTreeMap<String, String> = [("hw:a".to_string(), "1".to_string())].into();
    assert!(views::flavor("p", &f, false, mv(54), None).get("description").is_none());
    assert_eq!(views::flavor("p", &f, false, mv(55), None)["description"], "small");
    assert!(views::flavor("p", &f, false, mv(61), Some(&specs)).get("extra_specs").is_none(), "index form");
    assert_eq!(views::flavor("p", &f, true, mv(61), Some(&specs))["extra_specs"]["hw:a"], "1");
    assert_eq!(views::flavor("p", &f, true, mv(74), None)["swap"], "");
    assert_eq!(views::flavor("p", &f, true, mv(75), None)["swap"], 0);
    let v102 = views::flavor("p", &f, true, mv(102), None);
    assert!(v102.get("rxtx_factor").is_none() && v102.get("OS-FLV-DISABLED:disabled").is_none());
    assert!(views::flavor("p", &f, true, mv(101), None).get("rxtx_factor").is_some());
    assert_eq!(parse_flavor_update(&json!({"flavor": {"description": "x"}})), Ok(Some("x".into())));
    assert_eq!(parse_flavor_update(&json!({"flavor": {"description": null}})), Ok(None));
    assert!(parse_flavor_update(&json!({"flavor": {}})).is_err());
    assert!(parse_flavor_update(&json!({"flavor": {"description": "x", "name": "y"}})).is_err());
    assert!(parse_flavor_update(&json!({"flavor": {"description": "a\u{7}b"}})).is_err());
    let created =
        parse_flavor_create(&json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "description": "d"}}));
    assert_eq!(created.map(|c| c.description), Ok(Some("d".into())));
}

/// Nova's attachment views and attach body by microversion: `tag` in the
/// body from 2.49 and shown from 2.70, `delete_on_termination` from 2.79,
/// `attachment_id`/`bdm_uuid` instead of `id` from 2.89.
#[test]
fn attachments_follow_novas_microversions() {
    let body = json!({"volumeAttachment": {"volumeId": "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11", "tag": "data"}});
    assert!(VolumeAttach::parse_at(&body, mv(48)).is_err());
    assert_eq!(VolumeAttach::parse_at(&body, mv(49)).map(|a| a.tag), Ok(Some("data".into())));
    let bad_tag = json!({"volumeAttachment": {"volumeId": "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11", "tag": "a/b"}});
    assert!(VolumeAttach::parse_at(&bad_tag, mv(49)).is_err());
    let dot = json!({"volumeAttachment": {"volumeId": "0b9f5a3c-6a29-4ab0-8a5e-0d0c4b1f7e11", "delete_on_termination": true}});
    assert!(VolumeAttach::parse_at(&dot, mv(78)).is_err());
    assert_eq!(VolumeAttach::parse_at(&dot, mv(79)).map(|a| a.delete_on_termination), Ok(true));
    let a = stratus_db::AttachmentRow {
        id: stratus_types::AttachmentId::new(),
        volume_id: stratus_types::VolumeId::new(),
        server_id: stratus_types::ServerId::new(),
        host: None,
        connector: None,
        client_id: None,
        mountpoint: Some("/dev/vdb".into()),
        status: stratus_types::AttachStatus::Reserved,
        delete_on_termination: true,
        boot_index: None,
        created_at: chrono::Utc::now(),
    };
    let v = |m| views::attachment(&a, Some("data"), mv(m));
    assert!(v(69).get("tag").is_none() && v(69)["id"] == json!(a.volume_id));
    assert_eq!(v(70)["tag"], "data");
    assert!(v(78).get("delete_on_termination").is_none() && v(79)["delete_on_termination"] == true);
    assert!(v(89).get("id").is_none() && v(89)["attachment_id"] == json!(a.id) && v(89)["bdm_uuid"] == json!(a.id));
    assert_eq!(
        parse_attachment_update(&json!({"volumeAttachment": {"volumeId": "x", "delete_on_termination": false}})),
        Ok(("x".into(), Some(false)))
    );
    assert!(
        parse_attachment_update(&json!({"volumeAttachment": {"volumeId": "x", "delete_on_termination": 1}})).is_err()
    );
}

/// Nova 2.92: no key pair generation, the public key is required.
#[test]
fn keypair_creation_needs_a_public_key_from_2_92() {
    let body = json!({"keypair": {"name": "k"}});
    assert!(parse_keypair_create(&body, mv(91)).is_ok());
    assert_eq!(
        parse_keypair_create(&body, mv(92)).map(|_| ()),
        Err(RequestError::BadRequest("'public_key' is a required property".into()))
    );
    assert!(parse_keypair_create(&json!({"keypair": {"name": "k", "public_key": "ssh-ed25519 AAAA"}}), mv(92)).is_ok());
}

/// Nova's strict query schemas (2.75 for most lists): an unknown parameter is 400.
#[test]
fn strict_query_parameters_from_a_microversion() {
    use paging::only_params_from;
    assert!(only_params_from(Some("host=h&foo=1"), mv(74), 75, &["host"]).is_ok());
    let e = only_params_from(Some("host=h&foo=1"), mv(75), 75, &["host"]);
    assert_eq!(
        e,
        Err(RequestError::BadRequest(
            "Invalid input for query parameters foo. Additional properties are not allowed ('foo' was unexpected)"
                .into()
        ))
    );
    assert!(only_params_from(Some("host=h"), mv(75), 75, &["host", "binary"]).is_ok());
}

/// Nova 2.44 removed the fixed and floating IP actions: from then on they
/// are a 404 rather than an action it does not know.
#[test]
fn network_actions_are_gone_from_2_44() {
    assert!(!actions::action_removed("addFloatingIp", mv(43)));
    assert!(actions::action_removed("addFloatingIp", mv(44)));
    assert!(actions::action_removed("removeFixedIp", mv(44)));
    assert!(!actions::action_removed("os-stop", mv(44)));
}

fn create_at(body: serde_json::Value, minor: u32) -> Result<ServerCreate, RequestError> {
    let req: CreateServerRequest = serde_json::from_value(body).expect("body");
    req.check_at(crate::Microversion::new(2, minor))
}

/// Nova's create schemas per microversion: `description` from 2.19, `tags`
/// from 2.52, `personality` gone at 2.57, `networks` required (and `auto` /
/// `none` allowed) from 2.37.
#[test]
fn create_keys_follow_novas_schema_per_microversion() {
    let base = json!({"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "auto"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        json!({ "server": b })
    };
    assert!(create_at(with("description", json!("d")), 18).is_err());
    assert_eq!(create_at(with("description", json!("d")), 37).expect("2.37").description.as_deref(), Some("d"));
    assert!(create_at(with("description", json!("x".repeat(256))), 37).is_err());
    assert!(create_at(with("tags", json!(["a"])), 51).is_err());
    assert_eq!(create_at(with("tags", json!(["a", "b", "a"])), 52).expect("2.52").tags, vec!["a", "b"]);
    assert!(create_at(with("tags", json!(["a,b"])), 52).is_err());
    assert!(
        create_at(
            with("tags", json!(vec!["t"; 51].iter().enumerate().map(|(i, _)| i.to_string()).collect::<Vec<_>>())),
            52
        )
        .is_err()
    );
    assert!(create_at(with("personality", json!([])), 56).is_ok());
    assert!(create_at(with("personality", json!([])), 57).is_err());
    let mut no_net = base.clone();
    no_net.as_object_mut().expect("object").remove("networks");
    assert!(create_at(json!({"server": no_net.clone()}), 36).is_ok());
    assert!(create_at(json!({"server": no_net}), 37).is_err());
    assert!(create_at(json!({"server": base.clone()}), 36).is_err(), "a string is not a list before 2.37");
    assert_eq!(create_at(with("networks", json!("none")), 37).expect("none").networks, Networks::None);
}

/// Nova's device tags at create: on `networks` entries at 2.32-2.36 and
/// from 2.42, on block device mappings at 2.32 only and from 2.42; a tag
/// holds neither ',' nor '/'.
#[test]
fn device_tags_are_accepted_only_where_nova_takes_them() {
    let net = |tag: &str| json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": [{"uuid": "5f8e6a2c-1d3b-4c7e-9a0f-2b4d6c8e0a1f", "tag": tag}]}});
    assert!(create_at(net("nic"), 31).is_err());
    assert!(create_at(net("nic"), 32).is_ok());
    assert!(create_at(net("nic"), 36).is_ok());
    assert!(create_at(net("nic"), 37).is_err());
    assert!(create_at(net("nic"), 42).is_ok());
    assert!(create_at(net("a/b"), 42).is_err());
    let bdm = json!({"server": {"name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [
        {"source_type": "volume", "destination_type": "volume", "uuid": "5f8e6a2c-1d3b-4c7e-9a0f-2b4d6c8e0a1f", "boot_index": 0, "tag": "disk"}]}});
    assert!(create_at(bdm.clone(), 32).is_err(), "networks 'none' needs 2.37");
    assert!(create_at(bdm.clone(), 41).is_err());
    assert_eq!(create_at(bdm, 42).expect("2.42").block_devices[0].tag.as_deref(), Some("disk"));
}

/// Nova's server list: an unknown `status` is an empty list below 2.38 and
/// a 400 from it; tag filters are read from 2.26 (comma-separated).
#[test]
fn list_query_status_and_tags_follow_the_microversion() {
    let at = |q: &str, minor: u32| ServerListQuery::parse_at(Some(q), crate::Microversion::new(2, minor));
    assert!(at("status=bogus", 37).expect("2.37").unknown_status);
    assert!(at("status=bogus", 38).is_err());
    assert!(at("tags=a,b", 25).expect("2.25").tags.is_empty());
    let q = at("tags=a,b&tags-any=c&not-tags=d&not-tags-any=e,f", 26).expect("2.26");
    assert_eq!(
        (q.tags, q.tags_any, q.not_tags, q.not_tags_any.len()),
        (vec!["a".to_string(), "b".to_string()], vec!["c".to_string()], vec!["d".to_string()], 2)
    );
    assert!(!at("ip6=::1", 4).expect("2.4").ip6_for_everyone);
    assert!(at("ip6=::1", 5).expect("2.5").ip6_for_everyone);
}

/// Nova's update schema takes `description` from 2.19 (null clears it).
#[test]
fn update_takes_a_description_from_2_19() {
    let body = json!({"server": {"description": null}});
    assert!(ServerUpdate::parse_at(&body, crate::Microversion::new(2, 18)).is_err());
    assert_eq!(ServerUpdate::parse_at(&body, crate::Microversion::new(2, 19)).expect("2.19").description, Some(None));
}

/// Nova's rebuild schema: `description` from 2.19, `key_name` from 2.54
/// (null unsets it), `user_data` from 2.57, `personality` refused from 2.57.
#[test]
fn rebuild_keys_follow_novas_schema_per_microversion() {
    let parse = |extra: serde_json::Value| {
        let mut r = json!({"imageRef": "i"});
        for (k, v) in extra.as_object().expect("object") {
            r[k] = v.clone();
        }
        match ServerAction::parse(&json!({ "rebuild": r })).expect("rebuild") {
            ServerAction::Rebuild(r) => r,
            other => panic!("{other:?}"),
        }
    };
    let mv = |m| crate::Microversion::new(2, m);
    assert!(parse(json!({"description": "d"})).check_at(mv(18)).is_err());
    assert!(parse(json!({"description": "d"})).check_at(mv(19)).is_ok());
    let k = parse(json!({"key_name": null}));
    assert!(k.check_at(mv(53)).is_err());
    assert!(k.check_at(mv(54)).is_ok());
    assert_eq!(k.key_name, Some(None));
    assert!(parse(json!({"user_data": "aGk="})).check_at(mv(56)).is_err());
    assert_eq!(parse(json!({"user_data": "aGk="})).user_data, Some(Some("aGk=".to_string())));
    assert!(parse(json!({"personality": []})).check_at(mv(56)).is_ok());
    assert!(parse(json!({"personality": []})).check_at(mv(57)).is_err());
    assert!(ServerAction::parse(&json!({"rebuild": {"imageRef": "i", "user_data": "not base64!"}})).is_err());
}

fn server_row() -> stratus_db::ServerRow {
    stratus_db::ServerRow {
        id: stratus_types::ServerId::new(),
        name: "vm".into(),
        project_id: "p".into(),
        user_id: "u".into(),
        image_id: None,
        flavor_id: "1".into(),
        flavor_name: "m1.tiny".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        vm_state: stratus_types::VmState::Active,
        task_state: None,
        power_state: stratus_types::PowerState::Running,
        host: Some("h1".into()),
        metadata: "{}".into(),
        key_name: None,
        locked: false,
        locked_by: None,
        locked_reason: None,
        availability_zone: None,
        reservation_id: "r-1".into(),
        hostname: "vm".into(),
        fault: None,
        progress: 0,
        generation: 1,
        launched_at: None,
        terminated_at: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        deleted_at: None,
        deleted: false,
        shelved_image_id: None,
        description: Some("about".into()),
        user_data: None,
        scheduler_hints: None,
        access_ip_v4: None,
        access_ip_v6: None,
    }
}

/// Nova's server views: `host_status` from 2.16 (when policy gives it),
/// `description` from 2.19, `tags` from 2.26, the embedded flavor from 2.47.
#[test]
fn server_view_keys_follow_the_microversion() {
    let row = server_row();
    let tags = vec!["a".to_string()];
    let specs: std::collections::BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
    let extras =
        views::ServerExtras { host_status: Some("UP"), tags: &tags, extra_specs: Some(&specs), image_properties: None };
    let at = |m| views::server("http://x", &row, &[], &[], true, crate::Microversion::new(2, m), &extras);
    let v15 = at(15);
    for k in ["host_status", "description", "tags"] {
        assert!(v15.get(k).is_none(), "{k} at 2.15");
    }
    assert_eq!(at(16)["host_status"], "UP");
    assert_eq!(at(19)["description"], "about");
    assert_eq!(at(26)["tags"], json!(["a"]));
    assert_eq!(at(46)["flavor"]["id"], "1");
    let f = &at(47)["flavor"];
    assert_eq!(
        *f,
        json!({"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0, "original_name": "m1.tiny", "extra_specs": {"k": "v"}})
    );
    let reader = views::ServerExtras { host_status: None, tags: &tags, extra_specs: None, image_properties: None };
    let v = views::server("http://x", &row, &[], &[], false, crate::Microversion::new(2, 47), &reader);
    assert!(v.get("host_status").is_none());
    assert!(v["flavor"].get("extra_specs").is_none());
}

/// Nova's `host_status`: empty without a service, DOWN when forced down,
/// MAINTENANCE when disabled, UP or UNKNOWN by liveness.
#[test]
fn host_status_follows_nova() {
    assert_eq!(views::host_status(None, false), "");
}

/// Nova's lock: a `locked_reason` (at most 255 characters) from 2.73 only.
#[test]
fn lock_takes_a_reason_from_2_73() {
    let a = ServerAction::parse(&json!({"lock": {"locked_reason": "maintenance"}})).expect("lock");
    assert_eq!(a, ServerAction::Lock { reason: Some("maintenance".into()) });
    assert!(a.check_at(crate::Microversion::new(2, 72)).is_err());
    assert!(a.check_at(crate::Microversion::new(2, 73)).is_ok());
    assert!(ServerAction::parse(&json!({"lock": {"locked_reason": "x".repeat(256)}})).is_err());
    assert!(ServerAction::parse(&json!({"lock": {"other": 1}})).is_err());
}

/// Nova's `trusted_image_certificates` (2.63): unknown before; null is
/// fine; a list asks for signature checks this cloud does not offer (400).
#[test]
fn trusted_image_certificates_are_only_null_here() {
    let body = |c: serde_json::Value| json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "none", "trusted_image_certificates": c}});
    assert!(create_at(body(json!(null)), 62).is_err());
    assert!(create_at(body(json!(null)), 63).is_ok());
    assert!(create_at(body(json!(["cert"])), 63).is_err());
    assert!(create_at(body(json!([])), 63).is_err());
    let rebuild = |c: serde_json::Value| {
        ServerAction::parse(&json!({"rebuild": {"imageRef": "i", "trusted_image_certificates": c}}))
    };
    assert!(rebuild(json!(["cert"])).is_err());
    let r = rebuild(json!(null)).expect("null");
    assert!(r.check_at(crate::Microversion::new(2, 62)).is_err());
    assert!(r.check_at(crate::Microversion::new(2, 63)).is_ok());
}

/// Nova's server list query: `changes-before` from 2.66 (not before
/// `changes-since`), `locked` from 2.73 (a strict boolean), and from 2.75
/// any parameter its schema does not name is a 400.
#[test]
fn list_query_follows_novas_later_microversions() {
    let at = |q: &str, minor: u32| ServerListQuery::parse_at(Some(q), crate::Microversion::new(2, minor));
    assert!(at("changes-before=2026-11-30T00:00:00Z", 65).expect("2.65").changes_before.is_none());
    assert!(at("changes-before=2026-11-30T00:00:00Z", 66).expect("2.66").changes_before.is_some());
    assert!(at("changes-since=2026-11-30T00:00:00Z&changes-before=2026-11-29T00:00:00Z", 66).is_err());
    assert!(at("changes-since=yesterday", 2).is_err());
    assert_eq!(at("locked=true", 73).expect("2.73").locked, Some(true));
    assert_eq!(at("locked=true", 72).expect("2.72").locked, None);
    assert!(at("locked=maybe", 73).is_err());
    assert!(at("bogus=1", 74).is_ok());
    assert!(at("bogus=1", 75).is_err());
    assert!(at("name=a&sort_key=uuid&limit=1&tags=x", 75).is_ok());
}

/// Nova's views: `trusted_image_certificates` (null here) from 2.63 and
/// `locked_reason` from 2.73.
#[test]
fn server_view_shows_certificates_and_lock_reason_from_their_versions() {
    let mut row = server_row();
    row.locked = true;
    row.locked_reason = Some("why".into());
    let extras = views::ServerExtras::default();
    let at = |m| views::server("http://x", &row, &[], &[], false, crate::Microversion::new(2, m), &extras);
    assert!(at(62).get("trusted_image_certificates").is_none());
    assert_eq!(at(63)["trusted_image_certificates"], serde_json::Value::Null);
    assert!(at(72).get("locked_reason").is_none());
    assert_eq!(at(73)["locked_reason"], "why");
}

/// Nova's block device mappings take a `volume_type` from 2.67 only.
#[test]
fn block_device_volume_type_needs_2_67() {
    let body = json!({"server": {"name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [
        {"source_type": "image", "destination_type": "volume", "uuid": "5f8e6a2c-1d3b-4c7e-9a0f-2b4d6c8e0a1f", "boot_index": 0, "volume_size": 1, "volume_type": "fast"}]}});
    assert!(create_at(body.clone(), 66).is_err());
    assert_eq!(create_at(body, 67).expect("2.67").block_devices[0].volume_type.as_deref(), Some("fast"));
}

/// Nova's create takes `host` and `hypervisor_hostname` from 2.74 only.
#[test]
fn requested_destination_needs_2_74() {
    let body = json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "none", "host": "h1"}});
    assert!(create_at(body.clone(), 73).is_err());
    assert_eq!(create_at(body, 74).expect("2.74").host.as_deref(), Some("h1"));
    let empty = json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "none", "hypervisor_hostname": ""}});
    assert!(create_at(empty, 74).is_err());
}

/// Nova's unshelve body: null (or {}) at any version; an
/// `availability_zone` from 2.77; a null zone (unpin) or a `host` from 2.91.
#[test]
fn unshelve_destination_follows_the_microversion() {
    let parse = |b: serde_json::Value| ServerAction::parse(&json!({ "unshelve": b })).expect("unshelve");
    let mv = |m| crate::Microversion::new(2, m);
    let plain = parse(json!(null));
    assert_eq!(plain, ServerAction::Unshelve { availability_zone: None, host: None });
    assert!(plain.check_at(mv(1)).is_ok());
    let az = parse(json!({"availability_zone": "z1"}));
    assert!(az.check_at(mv(76)).is_err());
    assert!(az.check_at(mv(77)).is_ok());
    let unpin = parse(json!({"availability_zone": null}));
    assert_eq!(unpin, ServerAction::Unshelve { availability_zone: Some(None), host: None });
    assert!(unpin.check_at(mv(90)).is_err());
    assert!(unpin.check_at(mv(91)).is_ok());
    assert!(parse(json!({"host": "h1"})).check_at(mv(90)).is_err());
    assert!(ServerAction::parse(&json!({"unshelve": {"other": 1}})).is_err());
}

/// Nova's `hostname` (2.90): create, update and rebuild take a host label;
/// from 2.94 an FQDN; never with several servers; shown to every user.
#[test]
fn requested_hostnames_follow_novas_schema() {
    let body = |h: &str, max: u32| json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "none", "hostname": h, "max_count": max}});
    assert!(create_at(body("web-1", 1), 89).is_err());
    assert_eq!(create_at(body("web-1", 1), 90).expect("2.90").hostname.as_deref(), Some("web-1"));
    assert!(create_at(body("web.example.org", 1), 93).is_err());
    assert!(create_at(body("web.example.org", 1), 94).is_ok());
    assert!(create_at(body("web-1", 2), 90).is_err());
    assert!(create_at(body("-web", 1), 90).is_err());
    let update = json!({"server": {"hostname": "db"}});
    assert!(ServerUpdate::parse_at(&update, crate::Microversion::new(2, 89)).is_err());
    assert_eq!(
        ServerUpdate::parse_at(&update, crate::Microversion::new(2, 90)).expect("2.90").hostname.as_deref(),
        Some("db")
    );
    let ServerAction::Rebuild(r) =
        ServerAction::parse(&json!({"rebuild": {"imageRef": "i", "hostname": "a.b"}})).expect("rebuild")
    else {
        panic!("not a rebuild")
    };
    assert!(r.check_at(crate::Microversion::new(2, 90)).is_err(), "an FQDN needs 2.94");
    assert_eq!(r.hostname_at(crate::Microversion::new(2, 94)).expect("2.94").as_deref(), Some("a.b"));
    let row = server_row();
    let v = views::server(
        "http://x",
        &row,
        &[],
        &[],
        false,
        crate::Microversion::new(2, 90),
        &views::ServerExtras::default(),
    );
    assert_eq!(v["OS-EXT-SRV-ATTR:hostname"], "vm");
}

/// Nova's views: `pinned_availability_zone` (the zone asked for) from 2.96
/// and the create's `scheduler_hints` ({} when none) from 2.100.
#[test]
fn server_view_shows_pinned_zone_and_scheduler_hints() {
    let mut row = server_row();
    row.availability_zone = Some("z1".into());
    let extras = views::ServerExtras::default();
    let at = |row: &stratus_db::ServerRow, m| {
        views::server("http://x", row, &[], &[], false, crate::Microversion::new(2, m), &extras)
    };
    assert!(at(&row, 95).get("pinned_availability_zone").is_none());
    assert_eq!(at(&row, 96)["pinned_availability_zone"], "z1");
    assert!(at(&row, 99).get("scheduler_hints").is_none());
    assert_eq!(at(&row, 100)["scheduler_hints"], json!({}));
    row.scheduler_hints = Some(r#"{"same_host":"x"}"#.into());
    assert_eq!(at(&row, 100)["scheduler_hints"], json!({"same_host": "x"}));
    let req: CreateServerRequest = serde_json::from_value(json!({"server": {"name": "vm", "imageRef": "i", "flavorRef": "1", "networks": "none"}, "os:scheduler_hints": {"group": "g"}})).expect("body");
    assert_eq!(
        req.check_at(crate::Microversion::new(2, 100)).expect("ok").scheduler_hints,
        Some(json!({"group": "g"}))
    );
}

/// Nova (2.98): the server's image embeds the boot image's standard
/// properties as strings; Glance's own and other properties are left out.
#[test]
fn server_view_embeds_standard_image_properties_from_2_98() {
    let mut row = server_row();
    row.image_id = Some(stratus_types::ImageId::new());
    let props = r#"{"hw_disk_bus": "virtio", "os_distro": "ubuntu", "hw_cpu_cores": 2, "os_glance_importing": "x", "os_hidden": false, "owner_note": "n"}"#;
    let extras = views::ServerExtras { image_properties: Some(props), ..Default::default() };
    let at = |m| views::server("http://x", &row, &[], &[], false, crate::Microversion::new(2, m), &extras);
    assert!(at(97)["image"].get("properties").is_none());
    assert_eq!(
        at(98)["image"]["properties"],
        json!({"hw_disk_bus": "virtio", "os_distro": "ubuntu", "hw_cpu_cores": "2"})
    );
}

/// Nova's update takes `pinned_availability_zone` (a name or null) from 2.104.
#[test]
fn update_takes_a_pinned_zone_from_2_104() {
    let body = json!({"server": {"pinned_availability_zone": null}});
    assert!(ServerUpdate::parse_at(&body, crate::Microversion::new(2, 103)).is_err());
    assert_eq!(
        ServerUpdate::parse_at(&body, crate::Microversion::new(2, 104)).expect("2.104").pinned_availability_zone,
        Some(None)
    );
}

/// Nova's createImage answer: a Location below 2.45; from 2.45 the image
/// id in the body and no Location.
#[test]
fn create_image_answer_follows_2_45() {
    let (body, location) = views::create_image_answer("http://x", "img", crate::Microversion::new(2, 44));
    assert_eq!((body, location.as_deref()), (None, Some("http://x/image/v2/images/img")));
    let (body, location) = views::create_image_answer("http://x", "img", crate::Microversion::new(2, 45));
    assert_eq!((body, location), (Some(json!({"image_id": "img"})), None));
}

/// Nova's update and rebuild answers: before 2.75 without the extended
/// attributes (rebuild keeps `key_name` from 2.54), from 2.75 the full
/// view; show, update and rebuild name the server's groups from 2.71.
#[test]
fn update_and_rebuild_views_follow_2_71_and_2_75() {
    let row = server_row();
    let extras = views::ServerExtras::default();
    let show = |m| views::server_show("http://x", &row, &[], &[], true, crate::Microversion::new(2, m), &extras);
    assert!(show(70)["server"].get("server_groups").is_none());
    assert_eq!(show(71)["server"]["server_groups"], json!([]));
    let mut b = show(74);
    views::trim_before_2_75(&mut b, crate::Microversion::new(2, 74), false);
    for k in ["OS-EXT-STS:vm_state", "OS-EXT-SRV-ATTR:host", "key_name", "config_drive"] {
        assert!(b["server"].get(k).is_none(), "{k} below 2.75");
    }
    let mut kept = show(74);
    views::trim_before_2_75(&mut kept, crate::Microversion::new(2, 74), true);
    assert!(kept["server"].get("key_name").is_some());
    let mut full = show(75);
    views::trim_before_2_75(&mut full, crate::Microversion::new(2, 75), false);
    assert_eq!(full, show(75));
}

/// Nova's rebuild answer: `key_name` from 2.54, `user_data` (not the
/// extended attribute) from 2.57, and the admin password.
#[test]
fn rebuild_answer_follows_the_microversion() {
    let row = server_row();
    let extras = views::ServerExtras::default();
    let answer = |m| {
        let mv = crate::Microversion::new(2, m);
        let mut b = views::server_show("http://x", &row, &[], &[], true, mv, &extras);
        views::rebuild_answer(&mut b, mv, Some("aGk="), "pw");
        b
    };
    let a53 = answer(53);
    assert!(a53["server"].get("key_name").is_none() && a53["server"].get("user_data").is_none());
    assert_eq!(a53["server"]["adminPass"], "pw");
    assert!(answer(54)["server"].get("key_name").is_some());
    assert_eq!(answer(57)["server"]["user_data"], "aGk=");
    let a75 = answer(75);
    assert!(a75["server"].get("OS-EXT-SRV-ATTR:user_data").is_none());
    assert!(a75["server"].get("OS-EXT-STS:vm_state").is_some());
}

/// Nova's createBackup schema: `name`, `backup_type` and `rotation` are
/// required, `rotation` a non-negative integer (a number or a string of
/// digits), no other key.
#[test]
fn create_backup_bodies_follow_novas_schema() {
    let ok = ServerAction::parse(&json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": "2"}}));
    let Ok(ServerAction::CreateBackup(b)) = ok else { panic!("{ok:?}") };
    assert_eq!((b.name.as_str(), b.backup_type.as_str(), b.rotation), ("b", "daily", 2));
    for bad in [
        json!({"createBackup": {"name": "b", "backup_type": "daily"}}),
        json!({"createBackup": {"name": "b", "rotation": 1}}),
        json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}}),
        json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": "x"}}),
        json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1}}),
    ] {
        assert!(matches!(ServerAction::parse(&bad), Err(ActionError::Invalid(_))), "{bad}");
    }
}

/// Nova's security group bodies (schemas/security_groups.py, servers.py):
/// `{name}` non-empty and nothing else; at create a list of `{name}`, each a
/// group the project has (here `default` only; an unknown one is 400).
#[test]
fn security_group_bodies_follow_novas_schema() {
    let a = ServerAction::parse(&json!({"addSecurityGroup": {"name": "default"}})).expect("add");
    assert_eq!(a, ServerAction::AddSecurityGroup { name: "default".into() });
    let r = ServerAction::parse(&json!({"removeSecurityGroup": {"name": "web"}})).expect("remove");
    assert_eq!(r, ServerAction::RemoveSecurityGroup { name: "web".into() });
    for bad in [
        json!({"addSecurityGroup": {}}),
        json!({"addSecurityGroup": {"name": ""}}),
        json!({"removeSecurityGroup": null}),
        json!({"addSecurityGroup": {"name": "a", "x": 1}}),
    ] {
        assert!(matches!(ServerAction::parse(&bad), Err(ActionError::Invalid(_))), "{bad}");
    }
    let create = |groups: serde_json::Value| {
        let req: CreateServerRequest = serde_json::from_value(json!({"server": {
            "name": "vm", "imageRef": "abc", "flavorRef": 1, "security_groups": groups
        }}))
        .expect("body");
        req.check()
    };
    assert!(create(json!([{"name": "default"}])).is_ok());
    let e = create(json!([{"name": "default"}, {"name": "web"}])).expect_err("unknown");
    assert_eq!(e, RequestError::BadRequest("Security group web not found.".into()));
    assert!(create(json!("default")).is_err(), "not a list");
    assert!(create(json!([{"id": "x"}])).is_err(), "not a name");
}

#[test]
fn the_server_index_is_written_as_the_brief_views_would_be() {
    // Nova's GET /servers: {"servers": [{"id", "links": [self, bookmark], "name"}], "servers_links"?}.
    let public = "http://cloud.example:8774";
    let servers: Vec<stratus_db::ServerBrief> = ["vm-1", "quote\"and\\slash", "ünï"]
        .iter()
        .map(|n| stratus_db::ServerBrief { id: stratus_types::ServerId::new(), name: (*n).to_string() })
        .collect();
    for next in [None, views::servers_links(public, servers.last().map(|s| &s.id), 3, Some(3), false)] {
        let mut old = json!({
            "servers": servers.iter().map(|s| views::server_brief(public, &s.id, &s.name)).collect::<Vec<_>>()
        });
        if let Some(l) = &next {
            old["servers_links"] = l.clone();
        }
        let index = views::ServerIndex { public: public.into(), servers: servers.clone(), next };
        let text = serde_json::to_string(&index).expect("serializes");
        assert_eq!(text, old.to_string(), "same bytes as the JSON tree");
    }
    let empty = views::ServerIndex { public: public.into(), servers: Vec::new(), next: None };
    assert_eq!(serde_json::to_string(&empty).expect("serializes"), r#"{"servers":[]}"#);
}
