//! The stock python-openstackclient against a live `stratus up`: the
//! commands of the foundation issue, unchanged, with assertions on their
//! output. `scripts/test` installs the pinned client and sets
//! `STRATUS_OPENSTACK_CLI`; without it this test fails (it never skips).

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn cli() -> String {
    std::env::var("STRATUS_OPENSTACK_CLI").unwrap_or_else(|_| {
        panic!(
            "STRATUS_OPENSTACK_CLI is not set: run the tests with scripts/test, which installs python-openstackclient"
        )
    })
}

struct Osc<'a> {
    cloud: &'a Cloud,
}

impl Osc<'_> {
    fn run(&self, os_cloud: &str, args: &[&str]) -> String {
        let out = Command::new(cli())
            .arg("--os-cloud")
            .arg(os_cloud)
            .args(args)
            .env("OS_CLIENT_CONFIG_FILE", self.cloud.data_dir.join("clouds.yaml"))
            .output()
            .expect("run openstack");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "openstack {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    fn json(&self, os_cloud: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-f", "json"]);
        let out = self.run(os_cloud, &a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: not JSON ({e}): {out}"))
    }
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|x| x[key] == value)
}

/// The commands of the foundation issue, point 2, as a new user would type them.
#[tokio::test(flavor = "multi_thread")]
async fn stock_openstack_cli_works_unchanged() {
    let cloud = Cloud::start_with(&[
        ("STRATUS_QUOTA_INSTANCES", "60"),
        ("STRATUS_QUOTA_CORES", "60"),
        ("STRATUS_QUOTA_RAM", "65536"),
    ])
    .await;
    let osc = Osc { cloud: &cloud };

    let flavors = osc.json("stratus", &["flavor", "list"]);
    let tiny = find(&flavors, "Name", "m1.tiny").expect("m1.tiny listed");
    assert_eq!(tiny["RAM"], 512);
    assert_eq!(tiny["VCPUs"], 1);
    let images = osc.json("stratus", &["image", "list"]);
    assert!(find(&images, "Name", "cirros").is_some(), "{images}");

    let created =
        osc.json("stratus", &["server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--wait", "vm1"]);
    assert_eq!(created["status"], "ACTIVE", "{created}");
    let list = osc.json("stratus", &["server", "list"]);
    assert_eq!(find(&list, "Name", "vm1").expect("vm1 listed")["Status"], "ACTIVE");
    let shown = osc.json("stratus", &["server", "show", "vm1"]);
    assert_eq!(shown["status"], "ACTIVE");
    assert_eq!(
        shown["flavor"]["name"].as_str().or(shown["flavor"].as_str()).map(|s| s.contains("m1.tiny")),
        Some(true),
        "{shown}"
    );
    let id = shown["id"].as_str().expect("id").to_string();
    // No `--network`: Nova before 2.37 allocates a port on its own, so the
    // server has an address.
    assert!(
        shown["addresses"].as_object().is_some_and(|a| !a.is_empty())
            || shown["addresses"].as_str().is_some_and(|a| !a.is_empty()),
        "an address without --network: {shown}"
    );

    // 2.37+: `--nic none` (`--no-network`) boots with no port; `--nic auto`
    // allocates one (Nova's `networks: "none"` / `"auto"`).
    let none = osc.json(
        "stratus",
        &[
            "--os-compute-api-version",
            "2.37",
            "server",
            "create",
            "--image",
            "cirros",
            "--flavor",
            "m1.tiny",
            "--nic",
            "none",
            "--wait",
            "vm-none",
        ],
    );
    assert_eq!(none["status"], "ACTIVE", "{none}");
    let shown_none = osc.json("stratus", &["server", "show", "vm-none"]);
    assert!(
        shown_none["addresses"].as_object().is_some_and(|a| a.is_empty())
            || shown_none["addresses"].as_str().is_some_and(str::is_empty),
        "no address with --nic none: {shown_none}"
    );
    let auto = osc.json(
        "stratus",
        &[
            "--os-compute-api-version",
            "2.37",
            "server",
            "create",
            "--image",
            "cirros",
            "--flavor",
            "m1.tiny",
            "--nic",
            "auto",
            "--wait",
            "vm-auto",
        ],
    );
    assert_eq!(auto["status"], "ACTIVE", "{auto}");
    osc.run("stratus", &["server", "delete", "--wait", "vm-none", "vm-auto"]);

    // Key pairs (generated and imported), a server booted with one, and a rebuild.
    let generated = osc.run("stratus", &["keypair", "create", "kp-gen"]);
    assert!(generated.contains("PRIVATE KEY"), "the private key is printed once: {generated}");
    let pubkey = cloud.data_dir.join("kp.pub");
    std::fs::write(&pubkey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8oSkfjjA7v4XyGHj/XNI6yTYOVsXUmkKKuU8QBebAc t\n")
        .expect("write public key");
    let imported = osc.json("stratus", &["keypair", "create", "--public-key", &pubkey.to_string_lossy(), "kp1"]);
    assert_eq!(imported["fingerprint"], "29:97:2f:7a:0c:0e:3b:e5:bb:70:9d:52:56:1f:d2:8e", "{imported}");
    let keypairs = osc.json("stratus", &["keypair", "list"]);
    assert!(find(&keypairs, "Name", "kp1").is_some() && find(&keypairs, "Name", "kp-gen").is_some(), "{keypairs}");
    let keyed = osc.json(
        "stratus",
        &["server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--key-name", "kp1", "--wait", "vm-key"],
    );
    assert_eq!(keyed["key_name"], "kp1", "{keyed}");
    osc.run("stratus", &["server", "rebuild", "--image", "cirros", "--wait", "vm-key"]);
    assert_eq!(osc.json("stratus", &["server", "show", "vm-key"])["status"], "ACTIVE");
    osc.run("stratus", &["server", "delete", "--wait", "vm-key"]);
    osc.run("stratus", &["keypair", "delete", "kp1", "kp-gen"]);
    assert!(osc.json("stratus", &["keypair", "list"]).as_array().is_some_and(|a| a.is_empty()));

    osc.run("stratus", &["server", "stop", "vm1"]);
    wait_for(|| osc.json("stratus", &["server", "show", "vm1"])["status"] == "SHUTOFF");
    osc.run("stratus", &["server", "start", "vm1"]);
    wait_for(|| osc.json("stratus", &["server", "show", "vm1"])["status"] == "ACTIVE");
    osc.run("stratus", &["server", "reboot", "--wait", "vm1"]);
    assert_eq!(osc.json("stratus", &["server", "show", "vm1"])["status"], "ACTIVE");

    let limits = osc.json("stratus", &["limits", "show", "--absolute"]);
    let used = find(&limits, "Name", "instances_used").expect("instances_used");
    assert_eq!(used["Value"], 1, "{limits}");
    assert_eq!(find(&limits, "Name", "instances").expect("instances")["Value"], 60);

    let services = osc.json("stratus-admin", &["compute", "service", "list"]);
    for host in ["compute-1", "compute-2"] {
        let s = find(&services, "Host", host).unwrap_or_else(|| panic!("{host} listed: {services}"));
        assert_eq!(s["State"], "up");
        assert_eq!(s["Status"], "enabled");
    }
    let all = osc.json("stratus-admin", &["server", "list", "--all-projects"]);
    assert!(find(&all, "ID", &id).is_some(), "admin sees the demo server: {all}");
    // Admin deletes another project's server.
    osc.run("stratus-admin", &["server", "delete", "--wait", &id]);
    let list = osc.json("stratus", &["server", "list"]);
    assert!(list.as_array().expect("list").is_empty(), "{list}");

    // Block storage with the stock client: volumes, attach/detach, boot from volume.
    let vol = osc.json("stratus", &["volume", "create", "--size", "1", "vol1"]);
    assert_eq!(vol["size"], 1, "{vol}");
    wait_for(|| osc.json("stratus", &["volume", "show", "vol1"])["status"] == "available");
    let vols = osc.json("stratus", &["volume", "list"]);
    assert!(find(&vols, "Name", "vol1").is_some(), "{vols}");
    let bfv = osc.json(
        "stratus",
        &["server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--boot-from-volume", "1", "--wait", "bfv1"],
    );
    assert_eq!(bfv["status"], "ACTIVE", "{bfv}");
    osc.run("stratus", &["server", "add", "volume", "bfv1", "vol1"]);
    wait_for(|| osc.json("stratus", &["volume", "show", "vol1"])["status"] == "in-use");
    osc.run("stratus", &["server", "remove", "volume", "bfv1", "vol1"]);
    wait_for(|| osc.json("stratus", &["volume", "show", "vol1"])["status"] == "available");
    osc.run("stratus", &["server", "delete", "--wait", "bfv1"]);
    osc.run("stratus", &["volume", "delete", "vol1"]);
    wait_for(|| {
        osc.json("stratus", &["volume", "list"]).as_array().is_some_and(|a| a.iter().all(|v| v["Name"] != "vol1"))
    });

    // Volume types (admin) and snapshots, a volume from a snapshot, and
    // Cinder's rule that a volume with snapshots is not deletable.
    let vtype = osc.json("stratus-admin", &["volume", "type", "create", "--property", "tier=gold", "gold"]);
    assert_eq!(vtype["name"], "gold", "{vtype}");
    let types = osc.json("stratus", &["volume", "type", "list"]);
    assert!(find(&types, "Name", "gold").is_some(), "{types}");
    osc.json("stratus", &["volume", "create", "--size", "1", "--type", "gold", "vol2"]);
    wait_for(|| osc.json("stratus", &["volume", "show", "vol2"])["status"] == "available");
    assert_eq!(osc.json("stratus", &["volume", "show", "vol2"])["type"], "gold");
    let snap = osc.json("stratus", &["volume", "snapshot", "create", "--volume", "vol2", "snap2"]);
    assert_eq!(snap["name"], "snap2", "{snap}");
    wait_for(|| osc.json("stratus", &["volume", "snapshot", "show", "snap2"])["status"] == "available");
    let snaps = osc.json("stratus", &["volume", "snapshot", "list"]);
    assert!(find(&snaps, "Name", "snap2").is_some(), "{snaps}");
    osc.json("stratus", &["volume", "create", "--snapshot", "snap2", "vol3"]);
    wait_for(|| osc.json("stratus", &["volume", "show", "vol3"])["status"] == "available");
    assert_eq!(osc.json("stratus", &["volume", "show", "vol3"])["size"], 1);
    let refused = Command::new(cli())
        .args(["--os-cloud", "stratus", "volume", "delete", "vol2"])
        .env("OS_CLIENT_CONFIG_FILE", cloud.data_dir.join("clouds.yaml"))
        .output()
        .expect("run openstack");
    assert!(!refused.status.success(), "a volume with snapshots is not deletable");
    osc.run("stratus", &["volume", "snapshot", "delete", "snap2"]);
    wait_for(|| osc.json("stratus", &["volume", "snapshot", "list"]).as_array().is_some_and(|a| a.is_empty()));
    osc.run("stratus", &["volume", "delete", "vol2", "vol3"]);
    wait_for(|| {
        osc.json("stratus", &["volume", "list"])
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v["Name"] != "vol2" && v["Name"] != "vol3"))
    });
    osc.run("stratus-admin", &["volume", "type", "delete", "gold"]);
    let types = osc.json("stratus", &["volume", "type", "list"]);
    assert!(find(&types, "Name", "gold").is_none(), "{types}");

    // 50 servers: create them, then one `openstack server delete --wait` for all.
    osc.run(
        "stratus",
        &[
            "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--min", "50", "--max", "50", "--wait",
            "fleet",
        ],
    );
    let list = osc.json("stratus", &["server", "list"]);
    let ids: Vec<String> =
        list.as_array().expect("list").iter().map(|s| s["ID"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids.len(), 50);
    let mut args = vec!["server", "delete", "--wait"];
    args.extend(ids.iter().map(String::as_str));
    let started = Instant::now();
    osc.run("stratus", &args);
    let took = started.elapsed();
    eprintln!("MEASURE openstack server delete --wait of 50 servers: {:.2} s", took.as_secs_f64());
    assert!(osc.json("stratus", &["server", "list"]).as_array().expect("list").is_empty());
    let limits = osc.json("stratus", &["limits", "show", "--absolute"]);
    assert_eq!(find(&limits, "Name", "instances_used").expect("used")["Value"], 0);
}

#[track_caller]
fn wait_for(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "condition not met in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}
