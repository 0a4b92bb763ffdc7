//! The directory's `qemu-storage-daemon` (qsd): the NBD server through which
//! VMs reach `local` volumes, and the per-client exports it serves.
//!
//! One qsd per backend directory, started on the first `connect` and detached
//! (own process group, stdin `/dev/null`, output to `qsd.log`) so it outlives
//! the process that started it: an agent that restarts must not cut its VMs'
//! disks. Its files live in `<dir>/.qsd/`: `qmp.sock` (monitor), `nbd.sock`
//! (NBD server), `qsd.pid`, `qsd.log`.
//!
//! A running qsd is recognised by its pidfile *and* `/proc/<pid>/cmdline`
//! naming our `qmp.sock` (a pid alone may have been reused by another
//! process), or simply by its monitor answering. The monitor is a chardev
//! socket that serves one client at a time, so every QMP session here is
//! short and taken under the directory's exclusive lock (the caller's job).

use crate::BlockError;
use crate::util;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use stratus_qmp::{Qmp, QmpError};

/// Deadline of the monitor greeting and of each QMP command.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new qsd may take to answer on its monitor.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a hard export deletion may take to be confirmed
/// (`BLOCK_EXPORT_DELETED`; measured at about a millisecond).
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopped or killed qsd may take to disappear.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest Unix socket path (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The names one NBD export uses on the qsd, all derived from the client id
/// it stands for, so fence and disconnect find it again even after a crash
/// of the process that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExportIds {
    /// NBD export name (what the VM's NBD client asks for).
    pub export: String,
    /// `block-export-add` id.
    pub id: String,
    /// Node name of the raw block node the export serves.
    pub node: String,
}

impl ExportIds {
    /// The export of client `client` of volume `name`, when `client` is a
    /// local client id of that volume (`local:<name>:<generation>:<uuid>`);
    /// `None` otherwise (nothing of ours can be exported for it).
    pub fn of(name: &str, client: &str) -> Option<Self> {
        let rest = client.strip_prefix("local:")?;
        let mut parts = rest.rsplitn(3, ':');
        let (uuid, generation, volume) = (parts.next()?, parts.next()?, parts.next()?);
        let generation: u64 = generation.parse().ok()?;
        let uuid_ok = uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if volume != name || !uuid_ok {
            return None;
        }
        // Node names are limited to 31 characters; 30 hex digits of a random
        // v4 uuid are still unique for all practical purposes. The export
        // name carries the whole id, readable in `query-block-exports`.
        let short = &uuid[..30];
        Some(Self {
            export: format!("{volume}-g{generation}-{uuid}"),
            id: format!("x{short}"),
            node: format!("n{short}"),
        })
    }
}

/// The files of one directory's qsd.
#[derive(Debug, Clone)]
pub(super) struct Qsd {
    dir: PathBuf,
}

/// How [`Qsd::session`] treats a qsd whose process runs but whose monitor
/// does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unresponsive {
    /// Fail: the caller must not take drastic action (connect, extend).
    Fail,
    /// SIGKILL it: that ends every export it serves, which is what a fence
    /// needs (and more); the caller then sees "not running".
    Kill,
}

fn qmp_err(what: &str, e: QmpError) -> BlockError {
    BlockError::Backend(format!("qemu-storage-daemon: {what}: {e}"))
}

/// A path as a qemu option value (`,` doubled), refusing non-UTF-8 paths.
fn opt_value(path: &Path) -> Result<String, BlockError> {
    path.to_str()
        .map(|s| s.replace(',', ",,"))
        .ok_or_else(|| BlockError::Backend(format!("path {} is not UTF-8", path.display())))
}

/// Is the process `pid` alive and running with an argument that contains
/// `needle`? (A zombie has an empty command line: not alive.)
fn cmdline_contains(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| raw.split(|b| *b == 0).any(|arg| String::from_utf8_lossy(arg).contains(needle)))
        .unwrap_or(false)
}

async fn send_signal(pid: u32, signal: &str) {
    let args = [format!("-{signal}"), pid.to_string()];
    match util::run(Path::new("kill"), &args, &[], Duration::from_secs(5)).await {
        Ok(out) if out.success() => {}
        Ok(out) => tracing::debug!(pid, signal, stderr = %out.stderr.trim(), "kill failed (process gone?)"),
        Err(e) => tracing::warn!(pid, signal, error = %e, "cannot run kill"),
    }
}

impl Qsd {
    /// The qsd of the backend directory `backend_dir`.
    pub fn new(backend_dir: &Path) -> Self {
        Self { dir: backend_dir.join(".qsd") }
    }

    /// Its monitor socket.
    pub fn qmp_sock(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    /// Its NBD server socket (what VMs connect to).
    pub fn nbd_sock(&self) -> PathBuf {
        self.dir.join("nbd.sock")
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("qsd.pid")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("qsd.log")
    }

    /// What our qsd's command line must contain (its monitor socket option).
    fn cmdline_marker(&self) -> Result<String, BlockError> {
        Ok(format!("path={},", opt_value(&self.qmp_sock())?))
    }

    /// The pid of our running qsd: the pidfile's pid, only if that process
    /// runs with our monitor socket on its command line.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pidfile()).ok()?.trim().parse().ok()?;
        let marker = self.cmdline_marker().ok()?;
        cmdline_contains(pid, &marker).then_some(pid)
    }

    /// A QMP session with the running qsd, or `None` when no qsd runs (so
    /// no export of this directory is served). Never starts one.
    pub async fn session(&self, unresponsive: Unresponsive) -> Result<Option<Qmp>, BlockError> {
        let sock = self.qmp_sock();
        let failure = match Qmp::connect(&sock, QMP_TIMEOUT).await {
            Ok(q) => return Ok(Some(q)),
            Err(e) => e,
        };
        let Some(pid) = self.pid() else {
            tracing::debug!(socket = %sock.display(), error = %failure, "no qemu-storage-daemon runs");
            return Ok(None);
        };
        match unresponsive {
            Unresponsive::Fail => Err(BlockError::Backend(format!(
                "qemu-storage-daemon pid {pid} runs but its monitor {} does not answer ({failure}); \
                 stop it (LocalBackend::stop_storage_daemon) to recover",
                sock.display()
            ))),
            Unresponsive::Kill => {
                tracing::warn!(pid, error = %failure, "qemu-storage-daemon does not answer; killing it (ends all its exports)");
                send_signal(pid, "KILL").await;
                self.wait_gone(pid, EXIT_TIMEOUT).await?;
                Ok(None)
            }
        }
    }

    /// A session with the running qsd, starting it if none runs.
    pub async fn ensure(&self) -> Result<Qmp, BlockError> {
        match self.session(Unresponsive::Fail).await? {
            Some(q) => Ok(q),
            None => self.start().await,
        }
    }

    /// Start the qsd, detached, and wait until its monitor answers.
    async fn start(&self) -> Result<Qmp, BlockError> {
        let io = |what: &str, p: &Path, e: std::io::Error| BlockError::Backend(format!("{what} {}: {e}", p.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", &self.dir, e))?;
        for sock in [self.qmp_sock(), self.nbd_sock()] {
            let len = sock.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(BlockError::Backend(format!(
                    "socket path {} is {len} bytes, longer than the {MAX_SOCKET_PATH} a Unix socket allows; \
                     use a shorter volume directory",
                    sock.display()
                )));
            }
        }
        // Leftovers of a qsd that died (killed, host crash): nothing serves them.
        for stale in [self.qmp_sock(), self.nbd_sock(), self.pidfile()] {
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("removing", &stale, e)),
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| io("opening", &self.log(), e))?;
        let log2 = log.try_clone().map_err(|e| io("duplicating", &self.log(), e))?;
        let mut cmd = tokio::process::Command::new("qemu-storage-daemon");
        cmd.arg("--chardev")
            .arg(format!("socket,id=m0,path={},server=on,wait=off", opt_value(&self.qmp_sock())?))
            .arg("--monitor")
            .arg("chardev=m0")
            .arg("--nbd-server")
            .arg(format!("addr.type=unix,addr.path={}", opt_value(&self.nbd_sock())?))
            .arg("--pidfile")
            .arg(self.pidfile())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            // Its own process group: a Ctrl-C or a group kill of the process
            // that started it must not end the VMs' storage.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| {
            BlockError::Backend(format!(
                "cannot start qemu-storage-daemon ({e}); install qemu-utils (/work/shared/guest/build-tiny-guest.sh \
                 pins the qemu packages)"
            ))
        })?;
        let pid = child.id();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(BlockError::Backend(format!(
                    "qemu-storage-daemon exited at start ({status}): {}",
                    self.log_tail()
                )));
            }
            if self.qmp_sock().exists()
                && let Ok(q) = Qmp::connect(&self.qmp_sock(), QMP_TIMEOUT).await
            {
                tracing::info!(pid, dir = %self.dir.display(), "started qemu-storage-daemon");
                // Dropping `child` does not kill it; tokio reaps it when it exits.
                return Ok(q);
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                return Err(BlockError::Backend(format!(
                    "qemu-storage-daemon did not answer on {} within {START_TIMEOUT:?}; killed: {}",
                    self.qmp_sock().display(),
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        std::fs::read_to_string(self.log()).map(|s| util::last_chars(s.trim(), 1000).to_owned()).unwrap_or_default()
    }

    async fn wait_gone(&self, pid: u32, timeout: Duration) -> Result<(), BlockError> {
        let marker = self.cmdline_marker()?;
        let deadline = Instant::now() + timeout;
        while cmdline_contains(pid, &marker) {
            if Instant::now() >= deadline {
                return Err(BlockError::Backend(format!("qemu-storage-daemon pid {pid} still runs after {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stop the qsd (QMP `quit`, then SIGTERM, then SIGKILL) and wait until
    /// it is gone. Every export it served ends. Returns whether one ran.
    pub async fn stop(&self) -> Result<bool, BlockError> {
        let pid = self.pid();
        let session = self.session(Unresponsive::Kill).await?;
        let ran = pid.is_some() || session.is_some();
        if let Some(q) = session {
            // The reply may be lost as the process exits; the wait decides.
            let _ = q.execute("quit", None).await;
        }
        if let Some(pid) = pid
            && self.wait_gone(pid, EXIT_TIMEOUT).await.is_err()
        {
            send_signal(pid, "TERM").await;
            if self.wait_gone(pid, EXIT_TIMEOUT).await.is_err() {
                send_signal(pid, "KILL").await;
                self.wait_gone(pid, EXIT_TIMEOUT).await?;
            }
        }
        for stale in [self.qmp_sock(), self.nbd_sock(), self.pidfile()] {
            let _ = std::fs::remove_file(stale);
        }
        if ran {
            tracing::info!(dir = %self.dir.display(), ?pid, "stopped qemu-storage-daemon");
        }
        Ok(ran)
    }
}

/// Export `image` as `ids` (raw over file, writable). `cache.direct=on`
/// (no host page cache, so the image file holds every acknowledged write)
/// when the file system supports O_DIRECT; qemu refuses the node otherwise
/// and it is added again with the host cache.
pub(super) async fn add_export(q: &Qmp, image: &Path, ids: &ExportIds) -> Result<(), BlockError> {
    let filename =
        image.to_str().ok_or_else(|| BlockError::Backend(format!("path {} is not UTF-8", image.display())))?;
    let node = |direct: bool| {
        json!({
            "driver": "raw",
            "node-name": ids.node,
            "discard": "unmap",
            "cache": {"direct": direct},
            "file": {"driver": "file", "filename": filename, "cache": {"direct": direct}},
        })
    };
    if let Err(direct_err) = q.execute("blockdev-add", Some(node(true))).await {
        tracing::info!(image = filename, error = %direct_err, "no O_DIRECT for this image; exporting it with the host cache");
        q.execute("blockdev-add", Some(node(false))).await.map_err(|e| {
            qmp_err(&format!("adding node {} for {filename} (with O_DIRECT: {direct_err})", ids.node), e)
        })?;
    }
    let export = json!({"type": "nbd", "id": ids.id, "node-name": ids.node, "name": ids.export, "writable": true});
    q.execute("block-export-add", Some(export)).await.map_err(|e| qmp_err(&format!("exporting {}", ids.export), e))?;
    Ok(())
}

/// Names of the block nodes the qsd has.
async fn node_names(q: &Qmp) -> Result<Vec<String>, BlockError> {
    let nodes = q
        .execute("query-named-block-nodes", Some(json!({"flat": true})))
        .await
        .map_err(|e| qmp_err("listing nodes", e))?;
    Ok(nodes
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.get("node-name").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// `Some(shutting_down)` when the export `id` exists.
async fn export_state(q: &Qmp, id: &str) -> Result<Option<bool>, BlockError> {
    let exports = q.execute("query-block-exports", None).await.map_err(|e| qmp_err("listing exports", e))?;
    Ok(exports.as_array().and_then(|a| {
        a.iter()
            .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
            .map(|e| e.get("shutting-down").and_then(Value::as_bool).unwrap_or(false))
    }))
}

/// End the export `ids` (if it exists) with `mode=hard` (connected clients
/// are cut off at once, requests in flight fail), wait until the qsd
/// confirms it is gone (`BLOCK_EXPORT_DELETED`), then delete its node so
/// the qsd closes the image. Absent export or node: done. Returns whether
/// an export was removed.
pub(super) async fn remove_export(q: &Qmp, ids: &ExportIds) -> Result<bool, BlockError> {
    let mut removed = false;
    match export_state(q, &ids.id).await? {
        None => {}
        Some(shutting_down) => {
            removed = true;
            let mut events = q.events();
            if !shutting_down {
                q.execute("block-export-del", Some(json!({"id": ids.id, "mode": "hard"})))
                    .await
                    .map_err(|e| qmp_err(&format!("deleting export {}", ids.export), e))?;
            }
            let deleted = Qmp::wait_event(&mut events, "BLOCK_EXPORT_DELETED", DELETE_TIMEOUT, |d| {
                d.get("id").and_then(Value::as_str) == Some(ids.id.as_str())
            })
            .await;
            // An export already shutting down may have sent its event before
            // we subscribed: ask again rather than trust the wait alone.
            if let Err(e) = deleted
                && export_state(q, &ids.id).await?.is_some()
            {
                return Err(qmp_err(&format!("export {} is not deleted", ids.export), e));
            }
        }
    }
    if node_names(q).await?.contains(&ids.node) {
        q.execute("blockdev-del", Some(json!({"node-name": ids.node})))
            .await
            .map_err(|e| qmp_err(&format!("deleting node {}", ids.node), e))?;
    }
    Ok(removed)
}

/// Export names of those of `exports` whose node the qsd has (what a VM may
/// be connected to right now).
pub(super) async fn exported_nodes(q: &Qmp, exports: &[ExportIds]) -> Result<Vec<String>, BlockError> {
    let nodes = node_names(q).await?;
    Ok(exports.iter().filter(|ids| nodes.contains(&ids.node)).map(|ids| ids.export.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_ids_derive_from_the_client_id() {
        let uuid = "0123456789abcdef0123456789abcdef";
        let ids = ExportIds::of("vol-1", &format!("local:vol-1:7:{uuid}")).expect("ours");
        assert_eq!(ids.export, format!("vol-1-g7-{uuid}"));
        assert_eq!(ids.id, "x0123456789abcdef0123456789abcd");
        assert_eq!(ids.node, "n0123456789abcdef0123456789abcd");
        assert!(ids.node.len() <= 31);
        // A volume name may contain ':'-free dots and dashes only, but check
        // that a different volume or a malformed id yields nothing.
        assert_eq!(ExportIds::of("vol-2", &format!("local:vol-1:7:{uuid}")), None);
        assert_eq!(ExportIds::of("vol-1", "local:vol-1:x:abc"), None);
        assert_eq!(ExportIds::of("vol-1", "127.0.0.1:0/42"), None);
        assert_eq!(ExportIds::of("vol-1", &format!("local:vol-1:7:{}", uuid.to_uppercase())), None);
    }
}
