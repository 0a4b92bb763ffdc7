//! `rbd` volumes served to VMs: `connect` hands qemu the pool and image, the
//! VM's own librbd (here `qemu-io`'s, the same qemu rbd driver a VM uses)
//! opens it, `wait_for_new_watcher` finds that client, and `fence`
//! blocklists it so its later writes fail.
//!
//! Needs `CEPH_CONF` naming a running cluster with a pool `rbd`
//! (`scripts/ceph/start-single-node.sh`) and `qemu-io` with rbd support
//! (qemu-block-extra). Without them these tests FAIL: they are never skipped.

mod common;

use common::Interactive;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stratus_blockstore::rbd::RbdBackend;
use stratus_blockstore::{BlockBackend, BlockError, ClientId, VolumeConnection, wait_for_new_watcher};

const POOL: &str = "rbd";

fn ceph_conf() -> PathBuf {
    match std::env::var_os("CEPH_CONF") {
        Some(conf) if !conf.is_empty() => PathBuf::from(conf),
        _ => panic!(
            "CEPH_CONF is not set: these tests need a running Ceph cluster with pool `rbd`. Start one with \
             `eval \"$(scripts/ceph/start-single-node.sh --env)\"` and run again"
        ),
    }
}

/// What a test made on the cluster, removed at the end even on failure:
/// the image and any blocklist entry it added.
struct Fixture {
    conf: PathBuf,
    image: String,
    fenced: Vec<ClientId>,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let conf = ceph_conf();
        let image = format!("stratus-test-{test}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Self { conf, image, fenced: vec![] }
    }

    fn cli(&self, program: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new("timeout")
            .args(["-k", "5", "90", program, "--conf"])
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("run a ceph CLI")
    }

    /// The first `len` bytes of the image, read by a fresh client.
    fn head(&self, len: usize) -> Vec<u8> {
        let out = self.cli("rbd", &["export", "--no-progress", &format!("{POOL}/{}", self.image), "-"]);
        assert!(out.status.success(), "rbd export: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout[..len].to_vec()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.cli("rbd", &["rm", "--no-progress", &format!("{POOL}/{}", self.image)]);
        for c in &self.fenced {
            let _ = self.cli("ceph", &["osd", "blocklist", "rm", &c.0]);
        }
    }
}

fn rbd_target(conn: &VolumeConnection) -> String {
    match conn {
        VolumeConnection::Rbd { pool, image, ceph_conf } => {
            format!("rbd:{pool}/{image}:conf={}", ceph_conf.display())
        }
        other => panic!("expected an rbd connection, got {other:?}"),
    }
}

#[tokio::test]
async fn the_vms_librbd_client_is_found_and_fenced() {
    let mut f = Fixture::new("qemu");
    let backend = RbdBackend::new(POOL.into(), f.conf.clone());
    let b: &dyn BlockBackend = &backend;
    b.create(&f.image, 1).await.expect("create");

    let conn = b.connect(&f.image, "att-1").await.expect("connect");
    match &conn {
        VolumeConnection::Rbd { pool, image, ceph_conf } => {
            assert_eq!(pool, POOL);
            assert_eq!(image, &f.image);
            assert_eq!(ceph_conf, &f.conf);
        }
        other => panic!("expected an rbd connection, got {other:?}"),
    }
    assert!(matches!(b.connect("stratus-test-no-such-image", "att-x").await, Err(BlockError::NotFound(_))));

    let known = b.watchers(&f.image).await.expect("watchers before qemu opens it");
    assert!(known.is_empty(), "{known:?}");
    // Nothing opened it yet: the wait ends with an error, not a guess.
    assert!(wait_for_new_watcher(b, &f.image, &known, Duration::from_millis(300)).await.is_err());

    let mut vm = Interactive::open(&rbd_target(&conn)).await;
    let t = Instant::now();
    let client = wait_for_new_watcher(b, &f.image, &known, Duration::from_secs(30)).await.expect("the VM's client");
    eprintln!("found the qemu librbd client {} after {:?}", client.0, t.elapsed());
    assert!(stratus_blockstore::rbd::client_addr(&client).is_ok(), "{client:?}");
    assert_eq!(b.watchers(&f.image).await.expect("watchers"), vec![client.clone()]);

    let out = vm.cmd("write -P 0x41 0 512").await;
    assert!(out.contains("wrote 512/512"), "{out}");
    let out = vm.cmd("flush").await;
    assert!(!out.contains("failed"), "{out}");
    assert_eq!(f.head(512), vec![0x41; 512]);
    match b.delete(&f.image).await {
        Err(BlockError::Busy { watchers, .. }) => assert_eq!(watchers, vec![client.clone()]),
        other => panic!("expected Busy, got {other:?}"),
    }

    f.fenced.push(client.clone());
    let t = Instant::now();
    b.fence(&f.image, &client).await.expect("fence");
    eprintln!("rbd fence (blocklist + lock break) took {:?}", t.elapsed());
    assert!(backend.blocklist().await.expect("blocklist").contains(&client));
    for i in 0..2 {
        let out = vm.cmd("write -P 0x42 0 512").await;
        assert!(out.contains("write failed"), "write {i} after the fence must fail: {out}");
    }
    assert_eq!(f.head(512), vec![0x41; 512], "no write landed after the fence");

    b.disconnect(&f.image, &conn).await.expect("disconnect is a no-op");
    vm.kill().await;
    b.delete(&f.image).await.expect("delete after the fence");
    assert!(!b.exists(&f.image).await.expect("exists"));
    b.unfence(&client).await.expect("unfence");
    f.fenced.clear();
}

#[tokio::test]
async fn wait_for_new_watcher_ignores_known_clients_and_refuses_to_guess() {
    let f = Fixture::new("watch");
    let backend = RbdBackend::new(POOL.into(), f.conf.clone());
    backend.create(&f.image, 1).await.expect("create");
    let conn = backend.connect(&f.image, "att-1").await.expect("connect");
    let target = rbd_target(&conn);

    let first = Interactive::open(&target).await;
    let a = wait_for_new_watcher(&backend, &f.image, &[], Duration::from_secs(30)).await.expect("first client");
    // Already known: no new client.
    assert!(
        wait_for_new_watcher(&backend, &f.image, std::slice::from_ref(&a), Duration::from_millis(300)).await.is_err()
    );
    let second = Interactive::open(&target).await;
    let b = wait_for_new_watcher(&backend, &f.image, std::slice::from_ref(&a), Duration::from_secs(30))
        .await
        .expect("second client");
    assert_ne!(a, b);
    // Both unknown: ambiguous, so no answer rather than the wrong client.
    match wait_for_new_watcher(&backend, &f.image, &[], Duration::from_secs(5)).await {
        Err(BlockError::Backend(msg)) => assert!(msg.contains("several"), "{msg}"),
        other => panic!("expected an ambiguity error, got {other:?}"),
    }
    first.kill().await;
    second.kill().await;
}
