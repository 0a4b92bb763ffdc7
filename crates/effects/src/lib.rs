//! Effect recording: every effect a process has on the world outside the
//! database (a VM spawned or destroyed, a volume created or deleted, a
//! storage client opened, closed, fenced or unfenced) becomes one JSON line
//! appended to a file that every process of a cloud shares.
//!
//! Why: "exactly once" counted on database rows proves little (a unique key
//! cannot be duplicated); counted on effects it is what an operator cares
//! about: a VM destroyed twice, a volume deleted twice, a fence lifted while
//! its client still runs. The nemesis (`crates/stratus/tests/nemesis.rs`)
//! sets `STRATUS_EFFECT_LOG`, runs its schedule and checks the file.
//!
//! The layer wraps the two seams every effect goes through, [`Driver`] and
//! [`BlockBackend`], so no call site changes and nothing is recorded unless
//! the variable is set. Each line says whether the call *changed* the world
//! (the VM or volume did not exist before, the fenced client was a current
//! watcher), which is what "at most once" is checked on: an idempotent
//! repeat is recorded with `changed: false`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use stratus_blockstore::{BlockBackend, BlockError, ClientId, ClientProcess, OpenClient, VolumeConnection};
use stratus_driver::{Driver, DriverError, VmInfo, VmSpec, VmVolume};
use stratus_types::image::DiskFormat;
use stratus_types::{AttachmentId, ImageId, PowerState, ServerId};

/// The environment variable naming the effect log (unset: nothing recorded).
pub const ENV: &str = "STRATUS_EFFECT_LOG";

/// One recorded effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// Wall-clock time after the call returned, Unix milliseconds (the
    /// processes of one machine share the clock).
    pub at_ms: u64,
    /// The recording process.
    pub pid: u32,
    /// Which role of that process: `control`, or the host's name.
    pub who: String,
    /// `vm.spawn`, `vm.destroy`, `volume.create`, `volume.delete`,
    /// `client.open`, `client.close`, `client.fence`, `client.unfence`.
    pub effect: String,
    /// What it acted on: a server id, a volume name or a client id.
    pub target: String,
    /// Did the world change (not an idempotent repeat)?
    pub changed: bool,
    /// The operation whose attempt made the call, when one did.
    pub op: Option<String>,
    /// That attempt's fencing token.
    pub token: Option<i64>,
    /// `client.open` of a client that is a process of its own (it may
    /// outlive the recording process): its pid.
    #[serde(default)]
    pub client_pid: Option<u32>,
}

/// An append-only effect log shared by the processes of a cloud.
pub struct EffectLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl EffectLog {
    /// Open (create) the log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// The process's log, opened once from [`ENV`]; `None` when unset (or
    /// unopenable, which is logged: recording is a test aid, never fatal).
    pub fn from_env() -> Option<&'static EffectLog> {
        static LOG: OnceLock<Option<EffectLog>> = OnceLock::new();
        LOG.get_or_init(|| {
            let path = std::env::var_os(ENV)?;
            match Self::open(Path::new(&path)) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::error!(path = ?path, error = %e, "cannot open the effect log; effects are not recorded");
                    None
                }
            }
        })
        .as_ref()
    }

    /// Append one effect. Each line is one `write` on an `O_APPEND` file,
    /// so lines of several processes never interleave.
    pub fn record(&self, who: &str, effect: &str, target: &str, changed: bool) {
        self.record_with(who, effect, target, changed, None);
    }

    /// [`EffectLog::record`], naming the client's own process.
    pub fn record_with(&self, who: &str, effect: &str, target: &str, changed: bool, client_pid: Option<u32>) {
        let claim = stratus_db::claim::current();
        let e = Effect {
            at_ms: now_ms(),
            pid: std::process::id(),
            who: who.to_string(),
            effect: effect.to_string(),
            target: target.to_string(),
            changed,
            op: claim.as_ref().map(|c| c.op.to_string()),
            token: claim.map(|c| c.token),
            client_pid,
        };
        let Ok(mut line) = serde_json::to_vec(&e) else { return };
        line.push(b'\n');
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(&line),
            Err(_) => return,
        };
        if let Err(err) = written {
            tracing::error!(path = %self.path.display(), error = %err, "cannot append to the effect log");
        }
    }
}

/// Read a whole effect log (lines that do not parse, e.g. one cut by a
/// SIGKILL mid-write, are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Effect>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Current wall-clock time, Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `driver`, recorded under `who` when the process has an effect log.
pub fn driver(driver: Arc<dyn Driver>, who: &str) -> Arc<dyn Driver> {
    match EffectLog::from_env() {
        Some(log) => Arc::new(RecordingDriver { inner: driver, log, who: who.to_string() }),
        None => driver,
    }
}

/// `backend`, recorded under `who` when the process has an effect log.
pub fn backend(backend: Arc<dyn BlockBackend>, who: &str) -> Arc<dyn BlockBackend> {
    match EffectLog::from_env() {
        Some(log) => Arc::new(RecordingBackend { inner: backend, log, who: who.to_string() }),
        None => backend,
    }
}

/// A driver that records spawns and destroys.
pub struct RecordingDriver {
    inner: Arc<dyn Driver>,
    log: &'static EffectLog,
    who: String,
}

impl RecordingDriver {
    /// Does the VM exist now? (Unknown counts as absent: the change is then
    /// over-reported, which the checker flags rather than hides.)
    async fn exists(&self, id: &ServerId) -> bool {
        !matches!(self.inner.power_state(id).await, Ok(PowerState::NoState) | Err(_))
    }
}

#[async_trait]
impl Driver for RecordingDriver {
    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        let before = self.exists(&spec.server_id).await;
        self.inner.spawn(spec).await?;
        self.log.record(&self.who, "vm.spawn", &spec.server_id.to_string(), !before);
        Ok(())
    }
    async fn destroy(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let before = self.exists(server_id).await;
        self.inner.destroy(server_id).await?;
        self.log.record(&self.who, "vm.destroy", &server_id.to_string(), before);
        Ok(())
    }
    async fn power_off(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.power_off(server_id).await
    }
    async fn power_on(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.power_on(server_id).await
    }
    async fn reboot(&self, server_id: &ServerId, hard: bool) -> Result<(), DriverError> {
        self.inner.reboot(server_id, hard).await
    }
    async fn pause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.pause(server_id).await
    }
    async fn unpause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.unpause(server_id).await
    }
    async fn suspend(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.suspend(server_id).await
    }
    async fn resume(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.resume(server_id).await
    }
    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        self.inner.list().await
    }
    async fn power_state(&self, server_id: &ServerId) -> Result<PowerState, DriverError> {
        self.inner.power_state(server_id).await
    }
    fn opens_volumes(&self) -> bool {
        self.inner.opens_volumes()
    }
    async fn attach_volume(
        &self,
        server_id: &ServerId,
        attachment_id: &AttachmentId,
        volume: &str,
        conn: &VolumeConnection,
    ) -> Result<(), DriverError> {
        self.inner.attach_volume(server_id, attachment_id, volume, conn).await
    }
    async fn volumes(&self, server_id: &ServerId) -> Result<Vec<VmVolume>, DriverError> {
        self.inner.volumes(server_id).await
    }
    async fn halt(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.inner.halt(server_id).await
    }
    async fn detach_volume(&self, server_id: &ServerId, attachment_id: &AttachmentId) -> Result<(), DriverError> {
        self.inner.detach_volume(server_id, attachment_id).await
    }
    async fn capture_root_disk(&self, server_id: &ServerId, image_id: &ImageId) -> Result<Option<u64>, DriverError> {
        self.inner.capture_root_disk(server_id, image_id).await
    }
    async fn self_fenced(&self) -> Vec<(ServerId, i64)> {
        self.inner.self_fenced().await
    }
    async fn console_output(&self, server_id: &ServerId, max_lines: Option<usize>) -> Result<String, DriverError> {
        self.inner.console_output(server_id, max_lines).await
    }
}

/// A block storage backend that records volume and client effects.
pub struct RecordingBackend {
    inner: Arc<dyn BlockBackend>,
    log: &'static EffectLog,
    who: String,
}

impl RecordingBackend {
    async fn exists(&self, name: &str) -> bool {
        self.inner.exists(name).await.unwrap_or(false)
    }
}

#[async_trait]
impl BlockBackend for RecordingBackend {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn create(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        let before = self.exists(name).await;
        self.inner.create(name, size_gb).await?;
        self.log.record(&self.who, "volume.create", name, !before);
        Ok(())
    }
    async fn create_from_image(
        &self,
        name: &str,
        size_gb: u64,
        image: &Path,
        disk_format: DiskFormat,
    ) -> Result<(), BlockError> {
        let before = self.exists(name).await;
        self.inner.create_from_image(name, size_gb, image, disk_format).await?;
        self.log.record(&self.who, "volume.create", name, !before);
        Ok(())
    }
    async fn extend(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        self.inner.extend(name, size_gb).await
    }
    async fn exists(&self, name: &str) -> Result<bool, BlockError> {
        self.inner.exists(name).await
    }
    async fn watchers(&self, name: &str) -> Result<Vec<ClientId>, BlockError> {
        self.inner.watchers(name).await
    }
    async fn volumes(&self) -> Result<Vec<String>, BlockError> {
        self.inner.volumes().await
    }
    async fn snapshot_create(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        self.inner.snapshot_create(volume, snapshot).await
    }
    async fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        self.inner.snapshot_delete(volume, snapshot).await
    }
    async fn create_from_snapshot(
        &self,
        name: &str,
        size_gb: u64,
        volume: &str,
        snapshot: &str,
    ) -> Result<(), BlockError> {
        let before = self.exists(name).await;
        self.inner.create_from_snapshot(name, size_gb, volume, snapshot).await?;
        self.log.record(&self.who, "volume.create", name, !before);
        Ok(())
    }
    async fn snapshot_exists(&self, volume: &str, snapshot: &str) -> Result<bool, BlockError> {
        self.inner.snapshot_exists(volume, snapshot).await
    }
    async fn snapshots(&self) -> Result<Vec<(String, String)>, BlockError> {
        self.inner.snapshots().await
    }
    async fn open(&self, name: &str) -> Result<Box<dyn OpenClient>, BlockError> {
        let client = self.inner.open(name).await?;
        let pid = client.process().map(|p| p.pid);
        self.log.record_with(&self.who, "client.open", &client.id().0, true, pid);
        Ok(Box::new(RecordingClient { inner: client, log: self.log, who: self.who.clone() }))
    }
    async fn connect(&self, name: &str, attachment: &str) -> Result<VolumeConnection, BlockError> {
        let conn = self.inner.connect(name, attachment).await?;
        if let VolumeConnection::Nbd { client, .. } = &conn {
            self.log.record(&self.who, "client.open", client, true);
        }
        Ok(conn)
    }
    async fn disconnect(&self, name: &str, conn: &VolumeConnection) -> Result<(), BlockError> {
        self.inner.disconnect(name, conn).await?;
        if let VolumeConnection::Nbd { client, .. } = conn {
            self.log.record(&self.who, "client.close", client, true);
        }
        Ok(())
    }
    async fn fence(&self, name: &str, client: &ClientId) -> Result<(), BlockError> {
        let watched = self.inner.watchers(name).await.map(|w| w.contains(client)).unwrap_or(false);
        self.inner.fence(name, client).await?;
        self.log.record(&self.who, "client.fence", &client.0, watched);
        Ok(())
    }
    async fn fenced(&self) -> Result<Vec<ClientId>, BlockError> {
        self.inner.fenced().await
    }
    async fn unfence(&self, client: &ClientId) -> Result<(), BlockError> {
        self.inner.unfence(client).await?;
        self.log.record(&self.who, "client.unfence", &client.0, true);
        Ok(())
    }
    async fn delete(&self, name: &str) -> Result<(), BlockError> {
        let before = self.exists(name).await;
        self.inner.delete(name).await?;
        self.log.record(&self.who, "volume.delete", name, before);
        Ok(())
    }
    async fn delete_deferred(&self, name: &str) -> Result<(), BlockError> {
        let before = self.exists(name).await;
        self.inner.delete_deferred(name).await?;
        self.log.record(&self.who, "volume.delete", name, before);
        Ok(())
    }
    async fn purge_deferred(&self) -> Result<usize, BlockError> {
        self.inner.purge_deferred().await
    }
}

/// A storage client whose clean close is recorded (a client that dies with
/// its process records nothing: the checker takes the process's end).
struct RecordingClient {
    inner: Box<dyn OpenClient>,
    log: &'static EffectLog,
    who: String,
}

#[async_trait]
impl OpenClient for RecordingClient {
    fn id(&self) -> ClientId {
        self.inner.id()
    }
    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.inner.write(offset, data).await
    }
    async fn close(self: Box<Self>) -> Result<(), BlockError> {
        let id = self.inner.id();
        let (log, who) = (self.log, self.who.clone());
        self.inner.close().await?;
        log.record(&who, "client.close", &id.0, true);
        Ok(())
    }
    fn process(&self) -> Option<ClientProcess> {
        self.inner.process()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_driver::{FakeDriver, FakeDriverConfig};

    fn log() -> (&'static EffectLog, PathBuf) {
        let path = std::env::temp_dir().join(format!("stratus-effects-{}.jsonl", uuid::Uuid::new_v4()));
        let log = Box::leak(Box::new(EffectLog::open(&path).expect("open")));
        (log, path)
    }

    fn spec(id: ServerId) -> VmSpec {
        VmSpec { server_id: id, vcpus: 1, ram_mb: 64, image_id: None, boot: Default::default() }
    }

    /// A repeated spawn or destroy (idempotent, as every driver call is) is
    /// recorded as no change: "at most once" is checked on changes.
    #[tokio::test]
    async fn repeats_are_recorded_as_no_change() {
        let (log, path) = log();
        let d = RecordingDriver {
            inner: Arc::new(FakeDriver::new(FakeDriverConfig::default())),
            log,
            who: "compute-1".into(),
        };
        let id = ServerId::new();
        d.spawn(&spec(id)).await.expect("spawn");
        d.spawn(&spec(id)).await.expect("spawn again");
        d.destroy(&id).await.expect("destroy");
        d.destroy(&id).await.expect("destroy again");
        let got: Vec<(String, bool)> = read(&path).expect("read").into_iter().map(|e| (e.effect, e.changed)).collect();
        let want = [("vm.spawn", true), ("vm.spawn", false), ("vm.destroy", true), ("vm.destroy", false)];
        assert_eq!(got, want.map(|(e, c)| (e.to_string(), c)));
        let _ = std::fs::remove_file(path);
    }

    /// Volume and client effects of the local backend: a fence of a current
    /// watcher changes the world, a second fence does not.
    #[tokio::test]
    async fn storage_effects_are_recorded() {
        let (log, path) = log();
        let dir = std::env::temp_dir().join(format!("stratus-effects-vols-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let b = RecordingBackend {
            inner: Arc::new(stratus_blockstore::local::LocalBackend::new(dir.clone())),
            log,
            who: "control".into(),
        };
        b.create("v1", 1).await.expect("create");
        let client = b.open("v1").await.expect("open");
        let id = client.id();
        b.fence("v1", &id).await.expect("fence");
        b.fence("v1", &id).await.expect("fence again");
        b.unfence(&id).await.expect("unfence");
        b.delete("v1").await.expect("delete");
        b.delete("v1").await.expect("delete again");
        drop(client);
        let got: Vec<(String, String, bool)> =
            read(&path).expect("read").into_iter().map(|e| (e.effect, e.target, e.changed)).collect();
        let c = id.0.clone();
        let want = vec![
            ("volume.create".to_string(), "v1".to_string(), true),
            ("client.open".into(), c.clone(), true),
            ("client.fence".into(), c.clone(), true),
            ("client.fence".into(), c.clone(), false),
            ("client.unfence".into(), c, true),
            ("volume.delete".into(), "v1".into(), true),
            ("volume.delete".into(), "v1".into(), false),
        ];
        assert_eq!(got, want);
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_dir_all(dir);
    }
}
