//! `local` volumes served to VMs: `connect` exports a volume over NBD from
//! the directory's `qemu-storage-daemon`, and `fence` deletes that export, so
//! a real qemu block client (`qemu-io`, the same NBD client code as a VM's)
//! can write before the fence and never after it.
//!
//! Needs `qemu-storage-daemon` and `qemu-io` (qemu-utils); without them these
//! tests FAIL, naming the install script.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use stratus_blockstore::local::LocalBackend;
use stratus_blockstore::{BlockBackend, BlockError, ClientId, OpenClient, VolumeConnection};

mod common;

use common::Interactive;

const GIB: u64 = 1 << 30;

fn require_tools() {
    for tool in ["qemu-storage-daemon", "qemu-io"] {
        let found = std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is missing: install the qemu packages with /work/shared/guest/build-tiny-guest.sh (or apt-get \
             install qemu-utils qemu-system-x86 pinned to one version)"
        );
    }
}

/// A scratch volume directory; its qsd is SIGKILLed and the directory removed
/// when the test ends, even on failure.
struct Scratch {
    dir: PathBuf,
    backend: LocalBackend,
}

impl Scratch {
    fn new() -> Self {
        require_tools();
        // Short path: the qsd's Unix sockets live below it.
        let dir = std::env::temp_dir().join(format!("sbs-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        let backend = LocalBackend::new(dir.join("volumes"));
        Self { dir, backend }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(pid) = self.backend.storage_daemon_pid() {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nbd(conn: &VolumeConnection) -> (PathBuf, String, ClientId) {
    match conn {
        VolumeConnection::Nbd { socket, export, client } => (socket.clone(), export.clone(), ClientId(client.clone())),
        other => panic!("expected an NBD connection, got {other:?}"),
    }
}

fn nbd_uri(socket: &Path, export: &str) -> String {
    format!("nbd+unix:///{export}?socket={}", socket.display())
}

/// One `qemu-io` run against the export: `Ok(stdout)` when it exited 0.
async fn qemu_io(socket: &Path, export: &str, command: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("qemu-io")
        .args(["-f", "raw", &nbd_uri(socket, export), "-c", command])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run qemu-io");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(text) }
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::File::open(path).expect("open image");
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).expect("read image");
    buf
}

fn busy(r: Result<(), BlockError>) -> Vec<ClientId> {
    match r {
        Err(BlockError::Busy { watchers, .. }) => watchers,
        other => panic!("expected Busy, got {other:?}"),
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (killed, not yet reaped) has an empty command line.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test]
async fn connect_exports_the_volume_and_fence_deletes_the_export() {
    let s = Scratch::new();
    let b = &s.backend;
    b.create("vol1", 1).await.expect("create");
    let img = b.image_path("vol1").expect("path");

    let conn = b.connect("vol1", "att-1").await.expect("connect");
    let (socket, export, client) = nbd(&conn);
    assert_eq!(socket, b.nbd_socket());
    assert!(export.starts_with("vol1-g0-"), "{export}");
    assert_eq!(b.watchers("vol1").await.expect("watchers"), vec![client.clone()]);
    assert!(b.storage_daemon_pid().is_some(), "connect starts the qsd");

    let out = qemu_io(&socket, &export, "write -P 0x41 0 512").await.expect("write through the export");
    assert!(out.contains("wrote 512/512"), "{out}");
    assert_eq!(read_at(&img, 0, 512), vec![0x41; 512], "the bytes are in the image file");
    assert_eq!(busy(b.delete("vol1").await), vec![client.clone()]);

    let t = Instant::now();
    b.fence("vol1", &client).await.expect("fence");
    eprintln!("fence (export deleted, node deleted, state updated) took {:?}", t.elapsed());
    let err = qemu_io(&socket, &export, "write -P 0x42 0 512").await.expect_err("a fenced export must not open");
    assert!(err.contains("not present") || err.contains("not available"), "{err}");
    assert_eq!(read_at(&img, 0, 512), vec![0x41; 512], "the image is unchanged after the fence");
    assert!(b.watchers("vol1").await.expect("watchers").is_empty());
    b.fence("vol1", &client).await.expect("fence is idempotent");

    // A new attachment gets a name never served before; the fenced one stays dead.
    let conn2 = b.connect("vol1", "att-2").await.expect("connect again");
    let (socket2, export2, client2) = nbd(&conn2);
    assert_ne!(export2, export);
    assert_ne!(client2, client);
    assert!(export2.starts_with("vol1-g1-"), "the fence bumped the generation: {export2}");
    qemu_io(&socket2, &export2, "write -P 0x43 512 512").await.expect("write through the new export");
    qemu_io(&socket, &export, "write -P 0x42 0 512").await.expect_err("the fenced export name is never served again");
    assert_eq!(read_at(&img, 0, 1024), [vec![0x41; 512], vec![0x43; 512]].concat());
    busy(b.delete("vol1").await);

    b.disconnect("vol1", &conn2).await.expect("disconnect");
    b.disconnect("vol1", &conn2).await.expect("disconnect is idempotent");
    qemu_io(&socket2, &export2, "read 0 512").await.expect_err("a disconnected export is gone");
    b.delete("vol1").await.expect("delete after disconnect");
    assert!(!b.exists("vol1").await.expect("exists"));
    assert!(b.stop_storage_daemon().await.expect("stop"), "a qsd was running");
    assert_eq!(b.storage_daemon_pid(), None);
}

#[tokio::test]
async fn two_volumes_are_exported_at_once_by_one_daemon() {
    let s = Scratch::new();
    let b = &s.backend;
    b.create("va", 1).await.expect("create a");
    b.create("vb", 1).await.expect("create b");
    let (sa, ea, ca) = nbd(&b.connect("va", "att-a").await.expect("connect a"));
    let pid = b.storage_daemon_pid().expect("qsd runs");
    // Another backend value on the same directory (as another process on
    // the host has) finds the running qsd by its pidfile and command line.
    let other = LocalBackend::new(b.dir().to_path_buf());
    let (sb, eb, cb) = nbd(&other.connect("vb", "att-b").await.expect("connect b"));
    assert_eq!(other.storage_daemon_pid(), Some(pid), "the running qsd is reused");
    assert_eq!(sa, sb, "one NBD server per directory");

    let (ra, rb) =
        tokio::join!(qemu_io(&sa, &ea, "write -P 0x61 4096 512"), qemu_io(&sb, &eb, "write -P 0x62 4096 512"));
    ra.expect("write a");
    rb.expect("write b");
    assert_eq!(read_at(&b.image_path("va").expect("path"), 4096, 512), vec![0x61; 512]);
    assert_eq!(read_at(&b.image_path("vb").expect("path"), 4096, 512), vec![0x62; 512]);

    // Fencing one volume's client leaves the other export serving.
    b.fence("va", &ca).await.expect("fence a");
    qemu_io(&sa, &ea, "write -P 0x71 4096 512").await.expect_err("a is fenced");
    qemu_io(&sb, &eb, "write -P 0x72 4096 512").await.expect("b still works");
    assert_eq!(read_at(&b.image_path("va").expect("path"), 4096, 512), vec![0x61; 512]);
    assert_eq!(read_at(&b.image_path("vb").expect("path"), 4096, 512), vec![0x72; 512]);
    b.delete("va").await.expect("delete a");
    busy(b.delete("vb").await);
    b.fence("vb", &cb).await.expect("fence b");
    b.delete("vb").await.expect("delete b");

    assert!(b.stop_storage_daemon().await.expect("stop"));
    assert!(!pid_alive(pid), "the qsd is gone after stop");
    assert!(!b.stop_storage_daemon().await.expect("stop again"), "nothing runs any more");
}

#[tokio::test]
async fn a_killed_daemon_is_a_complete_fence_and_the_next_connect_starts_a_new_one() {
    let s = Scratch::new();
    let b = &s.backend;
    b.create("vol1", 1).await.expect("create");
    let (socket, export, client) = nbd(&b.connect("vol1", "att-1").await.expect("connect"));
    qemu_io(&socket, &export, "write -P 0x41 0 512").await.expect("write");
    let pid = b.storage_daemon_pid().expect("qsd runs");
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "qsd {pid} survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.storage_daemon_pid(), None, "a dead qsd is not taken for a running one");

    // The watcher is still there (the volume stays Busy) until fenced; the
    // fence finds no qsd, which serves nothing, and completes.
    busy(b.delete("vol1").await);
    b.fence("vol1", &client).await.expect("fence with no qsd running");
    assert_eq!(b.storage_daemon_pid(), None, "fence never starts a qsd");

    let (socket2, export2, _client2) = nbd(&b.connect("vol1", "att-2").await.expect("connect after the kill"));
    let pid2 = b.storage_daemon_pid().expect("a new qsd runs");
    assert_ne!(pid2, pid);
    qemu_io(&socket2, &export2, "write -P 0x42 512 512").await.expect("write through the new qsd");
    qemu_io(&socket, &export, "write -P 0x43 0 512").await.expect_err("the old export does not come back");
    let img = b.image_path("vol1").expect("path");
    assert_eq!(read_at(&img, 0, 1024), [vec![0x41; 512], vec![0x42; 512]].concat());
    let log = std::fs::read_to_string(b.dir().join(".qsd/qsd.log")).unwrap_or_default();
    assert!(!log.contains("rror"), "qsd log shows errors: {log}");
}

#[tokio::test]
async fn a_connected_client_is_cut_off_by_the_fence() {
    let s = Scratch::new();
    let b = &s.backend;
    b.create("vol1", 1).await.expect("create");
    let img = b.image_path("vol1").expect("path");
    let (socket, export, client) = nbd(&b.connect("vol1", "att-1").await.expect("connect"));
    let mut vm = Interactive::open(&nbd_uri(&socket, &export)).await;
    let out = vm.cmd("write -P 0x51 0 4096").await;
    assert!(out.contains("wrote 4096/4096"), "{out}");
    let out = vm.cmd("flush").await;
    assert!(!out.contains("failed"), "{out}");
    assert_eq!(read_at(&img, 0, 4096), vec![0x51; 4096]);

    let t = Instant::now();
    b.fence("vol1", &client).await.expect("fence");
    let took = t.elapsed();
    eprintln!("fence of a connected client took {took:?}");
    for i in 0..3 {
        let out = vm.cmd("write -P 0x52 0 4096").await;
        assert!(out.contains("write failed"), "write {i} after the fence must fail: {out}");
    }
    assert_eq!(read_at(&img, 0, 4096), vec![0x51; 4096], "no write landed after the fence");
    b.delete("vol1").await.expect("delete after the fence, with the client still running");
    vm.kill().await;
}

#[tokio::test]
async fn extend_is_refused_while_exported_and_works_after_disconnect() {
    let s = Scratch::new();
    let b = &s.backend;
    b.create("vol1", 1).await.expect("create");
    let conn = b.connect("vol1", "att-1").await.expect("connect");
    let (socket, export, _client) = nbd(&conn);
    match b.extend("vol1", 2).await {
        Err(BlockError::Backend(msg)) => assert!(msg.contains("detach"), "{msg}"),
        other => panic!("extend of an exported volume must be refused, got {other:?}"),
    }
    let img = b.image_path("vol1").expect("path");
    assert_eq!(std::fs::metadata(&img).expect("stat").len(), GIB, "the image kept its size");
    qemu_io(&socket, &export, "write -P 0x61 0 512").await.expect("the export still works");
    b.disconnect("vol1", &conn).await.expect("disconnect");

    b.extend("vol1", 2).await.expect("extend a detached volume");
    let (socket, export, _client) = nbd(&b.connect("vol1", "att-2").await.expect("connect again"));
    let out = qemu_io(&socket, &export, "length").await.expect("length");
    assert!(out.contains("2 GiB"), "the new export serves the new size: {out}");
    let beyond = GIB + 4096;
    qemu_io(&socket, &export, &format!("write -P 0x62 {beyond} 512")).await.expect("write beyond the old end");
    assert_eq!(read_at(&img, beyond, 512), vec![0x62; 512]);
}

#[tokio::test]
async fn fence_and_disconnect_work_for_a_client_whose_export_was_never_made() {
    // A crash between registering the watcher and adding the export leaves a
    // watcher in the state file without an export: what `open` makes.
    let s = Scratch::new();
    let b = &s.backend;
    b.create("vol1", 1).await.expect("create");
    b.create("vol2", 1).await.expect("create");
    let orphan = b.open_client("vol1").await.expect("watcher without an export");
    let id = orphan.id();
    // No qsd runs: the fence is complete.
    b.fence("vol1", &id).await.expect("fence without a qsd");
    b.delete("vol1").await.expect("delete");

    // With a qsd running (for another volume), it has no such export either.
    let (socket, export, _c) = nbd(&b.connect("vol2", "att-2").await.expect("connect vol2"));
    let orphan2 = b.open_client("vol2").await.expect("second watcher without an export");
    let id2 = orphan2.id();
    let conn = VolumeConnection::Nbd { socket: socket.clone(), export: "unknown".into(), client: id2.0.clone() };
    b.disconnect("vol2", &conn).await.expect("disconnect finds no export and drops the watcher");
    assert!(!b.watchers("vol2").await.expect("watchers").contains(&id2));
    qemu_io(&socket, &export, "write -P 0x41 0 512").await.expect("the other export is untouched");
    drop(orphan);
    drop(orphan2);
}
