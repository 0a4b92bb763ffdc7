//! Hypervisor drivers. The agent only talks to a VM through [`Driver`], so the
//! fake driver (used by `stratus up` and most tests) and a real one are
//! interchangeable. Every method is idempotent: "already so" is success.

pub mod qemu;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stratus_types::agent::{BootSpec, VolumeConnection};
use stratus_types::{AttachmentId, ImageId, PowerState, ServerId};
use tokio::sync::Mutex;

/// Errors of a driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The VM does not exist (for operations that need it).
    #[error("VM {0} not found on this host")]
    NotFound(ServerId),
    /// The hypervisor refused or failed (a real driver's own error text).
    #[error("hypervisor error: {0}")]
    Hypervisor(String),
    /// The driver's on-disk record of a VM could not be written or removed
    /// (the fake driver persists its VMs so an agent restart keeps them).
    #[error("hypervisor error: {source}")]
    Record {
        /// The VM's server id.
        server_id: ServerId,
        /// The file system's error.
        source: std::io::Error,
    },
    /// A VM record does not encode (a bug).
    #[error("hypervisor error: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What to create.
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Server id (the VM's name on the host).
    pub server_id: ServerId,
    /// vCPUs.
    pub vcpus: i64,
    /// RAM MiB.
    pub ram_mb: i64,
    /// Image to boot.
    pub image_id: Option<ImageId>,
    /// Disk size and direct-boot kernel/ramdisk (used by real drivers).
    pub boot: BootSpec,
}

/// A volume a VM opens itself, as the driver recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmVolume {
    /// The attachment.
    pub attachment_id: AttachmentId,
    /// Volume name in the storage backend.
    pub volume: String,
    /// How the VM reaches it.
    pub conn: VolumeConnection,
}

/// A VM as the hypervisor sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmInfo {
    /// Server id.
    pub server_id: ServerId,
    /// Nova power state code.
    pub power_state: i64,
}

/// A hypervisor.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Create and start a VM; existing VM: success.
    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError>;
    /// Hard power-off and remove a VM and its local disks; absent VM: success.
    async fn destroy(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Power off.
    async fn power_off(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Power on.
    async fn power_on(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Reboot.
    async fn reboot(&self, server_id: &ServerId, hard: bool) -> Result<(), DriverError>;
    /// Pause in memory.
    async fn pause(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Unpause.
    async fn unpause(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Suspend to disk.
    async fn suspend(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Resume from suspend.
    async fn resume(&self, server_id: &ServerId) -> Result<(), DriverError>;
    /// Every VM on the host.
    async fn list(&self) -> Result<Vec<VmInfo>, DriverError>;
    /// Power state of one VM (`NoState` if absent).
    async fn power_state(&self, server_id: &ServerId) -> Result<PowerState, DriverError>;
    /// Does the VM open its volumes itself (qemu's own rbd/NBD drivers)? Then
    /// the agent hands it a [`VolumeConnection`] and the VM is the storage
    /// client that fencing targets; otherwise (the fake driver) the agent
    /// opens a storage client on the VM's behalf.
    fn opens_volumes(&self) -> bool {
        false
    }
    /// Give the VM a volume (hot-plug if it runs, else at its next start).
    /// Already attached: success.
    async fn attach_volume(
        &self,
        server_id: &ServerId,
        attachment_id: &AttachmentId,
        volume: &str,
        _conn: &VolumeConnection,
    ) -> Result<(), DriverError> {
        let _ = (attachment_id, volume);
        Err(DriverError::Hypervisor(format!("this driver does not attach volumes itself (server {server_id})")))
    }
    /// The volumes the VM was given with [`Driver::attach_volume`] (what the
    /// agent disconnects on the storage side once the VM is gone).
    async fn volumes(&self, _server_id: &ServerId) -> Result<Vec<VmVolume>, DriverError> {
        Ok(Vec::new())
    }
    /// Stop the VM hard and keep its record and disks (the first half of a
    /// destroy that must release storage before forgetting the VM).
    async fn halt(&self, server_id: &ServerId) -> Result<(), DriverError> {
        match self.power_off(server_id).await {
            Err(DriverError::NotFound(_)) => Ok(()),
            r => r,
        }
    }
    /// Show the VM that the volume of `attachment_id` grew to `size_bytes`
    /// (the storage already grew). A VM not running sees it at its next
    /// start; a driver whose VMs read no real volumes has nothing to do.
    async fn extend_volume(
        &self,
        _server_id: &ServerId,
        _attachment_id: &AttachmentId,
        _size_bytes: u64,
    ) -> Result<(), DriverError> {
        Ok(())
    }
    /// Take a volume away from the VM; absent: success.
    async fn detach_volume(&self, _server_id: &ServerId, _attachment_id: &AttachmentId) -> Result<(), DriverError> {
        Ok(())
    }
    /// Copy the VM's local root disk, which must not be in use (the VM is
    /// powered off), into the image store as image `image_id`. Returns the
    /// bytes written, or `None` when the VM has no local root disk (the fake
    /// driver's VMs have none).
    async fn capture_root_disk(&self, server_id: &ServerId, image_id: &ImageId) -> Result<Option<u64>, DriverError> {
        let _ = (server_id, image_id);
        Ok(None)
    }
    /// VMs a host watchdog killed (self-fenced) that are still recorded
    /// here, with when (Unix ms): reported to the controller at reconcile.
    async fn self_fenced(&self) -> Vec<(ServerId, i64)> {
        Vec::new()
    }
    /// The VM's serial console log, the last `max_lines` lines if given
    /// (Nova's `os-getConsoleOutput`).
    async fn console_output(&self, server_id: &ServerId, _max_lines: Option<usize>) -> Result<String, DriverError> {
        match self.power_state(server_id).await? {
            PowerState::NoState => Err(DriverError::NotFound(*server_id)),
            _ => Ok(String::new()),
        }
    }
}

/// The last `max_lines` lines of `text` (all of it for `None`, nothing for
/// `Some(0)`), line ends kept: how every driver cuts a console log for
/// `os-getConsoleOutput`'s `length`.
pub fn tail_lines(text: &str, max_lines: Option<usize>) -> String {
    let Some(n) = max_lines else { return text.to_string() };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

/// The fake driver's console log: fixed, three lines, so clients and tests
/// of `os-getConsoleOutput` (and its `length`) have something to read.
pub const FAKE_CONSOLE_OUTPUT: &str = "stratus fake console\nbooting the fake guest\nfake kernel started\nfake init started\nthe fake guest is running\nlast line of the fake console";

/// Delays of the fake driver, to make races and timing observable.
#[derive(Clone, Debug)]
pub struct FakeDriverConfig {
    /// Time to spawn.
    pub spawn_delay: Duration,
    /// Time to destroy.
    pub destroy_delay: Duration,
    /// Time for power operations.
    pub power_delay: Duration,
    /// Persist VMs here, one small file per VM (so each change costs O(1)),
    /// so they outlive the agent process (a "zombie" VM is one whose agent
    /// died while it kept running).
    pub state_dir: Option<PathBuf>,
}

impl Default for FakeDriverConfig {
    fn default() -> Self {
        Self {
            spawn_delay: Duration::from_millis(50),
            destroy_delay: Duration::from_millis(10),
            power_delay: Duration::from_millis(20),
            state_dir: None,
        }
    }
}

/// A driver whose VMs are records in memory (and optionally a file).
#[derive(Clone)]
pub struct FakeDriver {
    cfg: FakeDriverConfig,
    vms: Arc<Mutex<BTreeMap<ServerId, VmInfo>>>,
}

impl FakeDriver {
    /// A fake hypervisor; loads the VMs persisted in `state_dir`.
    pub fn new(cfg: FakeDriverConfig) -> Self {
        let mut vms = BTreeMap::new();
        if let Some(dir) = &cfg.state_dir {
            let _ = std::fs::create_dir_all(dir);
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if let Some(vm) = std::fs::read(e.path()).ok().and_then(|b| serde_json::from_slice::<VmInfo>(&b).ok()) {
                    vms.insert(vm.server_id, vm);
                }
            }
        }
        Self { cfg, vms: Arc::new(Mutex::new(vms)) }
    }

    async fn save(&self, vm: &VmInfo) -> Result<(), DriverError> {
        if let Some(dir) = &self.cfg.state_dir {
            let data = serde_json::to_vec(vm)?;
            let record = |source| DriverError::Record { server_id: vm.server_id, source };
            let tmp = dir.join(format!(".{}.tmp", vm.server_id));
            tokio::fs::write(&tmp, data).await.map_err(record)?;
            tokio::fs::rename(&tmp, dir.join(format!("{}.json", vm.server_id))).await.map_err(record)?;
        }
        Ok(())
    }

    async fn forget(&self, server_id: &ServerId) -> Result<(), DriverError> {
        if let Some(dir) = &self.cfg.state_dir {
            match tokio::fs::remove_file(dir.join(format!("{server_id}.json"))).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(DriverError::Record { server_id: *server_id, source }),
            }
        }
        Ok(())
    }

    async fn set_power(&self, server_id: &ServerId, ps: PowerState) -> Result<(), DriverError> {
        tokio::time::sleep(self.cfg.power_delay).await;
        let mut vms = self.vms.lock().await;
        let vm = vms.get_mut(server_id).ok_or(DriverError::NotFound(*server_id))?;
        vm.power_state = ps.code();
        let vm = vm.clone();
        self.save(&vm).await
    }
}

#[async_trait]
impl Driver for FakeDriver {
    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        tokio::time::sleep(self.cfg.spawn_delay).await;
        let mut vms = self.vms.lock().await;
        if vms.contains_key(&spec.server_id) {
            return Ok(());
        }
        let vm = VmInfo { server_id: spec.server_id, power_state: PowerState::Running.code() };
        self.save(&vm).await?;
        vms.insert(spec.server_id, vm);
        Ok(())
    }

    async fn destroy(&self, server_id: &ServerId) -> Result<(), DriverError> {
        tokio::time::sleep(self.cfg.destroy_delay).await;
        let mut vms = self.vms.lock().await;
        if vms.remove(server_id).is_some() {
            self.forget(server_id).await?;
        }
        Ok(())
    }

    async fn power_off(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Shutdown).await
    }

    async fn power_on(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Running).await
    }

    async fn reboot(&self, server_id: &ServerId, _hard: bool) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Running).await
    }

    async fn pause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Paused).await
    }

    async fn unpause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Running).await
    }

    async fn suspend(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Suspended).await
    }

    async fn resume(&self, server_id: &ServerId) -> Result<(), DriverError> {
        self.set_power(server_id, PowerState::Running).await
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        Ok(self.vms.lock().await.values().cloned().collect())
    }

    async fn power_state(&self, server_id: &ServerId) -> Result<PowerState, DriverError> {
        Ok(self
            .vms
            .lock()
            .await
            .get(server_id)
            .map(|v| PowerState::from_code(v.power_state))
            .unwrap_or(PowerState::NoState))
    }

    async fn console_output(&self, server_id: &ServerId, max_lines: Option<usize>) -> Result<String, DriverError> {
        if !self.vms.lock().await.contains_key(server_id) {
            return Err(DriverError::NotFound(*server_id));
        }
        Ok(tail_lines(FAKE_CONSOLE_OUTPUT, max_lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc", None), "a\nb\nc");
        assert_eq!(tail_lines("a\nb\nc", Some(2)), "b\nc");
        assert_eq!(tail_lines("a\nb\nc\n", Some(1)), "c\n");
        assert_eq!(tail_lines("a\nb\nc", Some(0)), "");
        assert_eq!(tail_lines("a\nb\nc", Some(10)), "a\nb\nc");
        assert_eq!(tail_lines("", Some(3)), "");
    }

    #[tokio::test]
    // Tempest's unlimited console read wants more than three lines, as a real boot log has.
    async fn fake_console_has_a_short_boot_log_while_the_vm_exists() {
        let d = FakeDriver::new(FakeDriverConfig { spawn_delay: Duration::ZERO, ..FakeDriverConfig::default() });
        let id = ServerId::new();
        assert!(matches!(d.console_output(&id, None).await, Err(DriverError::NotFound(_))));
        d.spawn(&spec(&id)).await.expect("spawn");
        assert_eq!(d.console_output(&id, None).await.expect("console").lines().count(), 6);
        assert_eq!(d.console_output(&id, Some(1)).await.expect("console"), "last line of the fake console");
        d.power_off(&id).await.expect("off");
        assert_eq!(d.console_output(&id, None).await.expect("console of a stopped VM"), FAKE_CONSOLE_OUTPUT);
    }

    fn spec(id: &ServerId) -> VmSpec {
        VmSpec { server_id: *id, vcpus: 1, ram_mb: 512, image_id: None, boot: BootSpec::default() }
    }

    #[tokio::test]
    async fn operations_are_idempotent() {
        let d = FakeDriver::new(FakeDriverConfig {
            spawn_delay: Duration::ZERO,
            destroy_delay: Duration::ZERO,
            power_delay: Duration::ZERO,
            state_dir: None,
        });
        let a = ServerId::new();
        d.spawn(&spec(&a)).await.expect("spawn");
        d.spawn(&spec(&a)).await.expect("spawn again");
        assert_eq!(d.list().await.expect("list").len(), 1);
        d.power_off(&a).await.expect("off");
        assert_eq!(d.power_state(&a).await.expect("ps"), PowerState::Shutdown);
        d.destroy(&a).await.expect("destroy");
        d.destroy(&a).await.expect("destroy again");
        assert!(d.list().await.expect("list").is_empty());
        assert!(matches!(d.power_on(&a).await, Err(DriverError::NotFound(_))));
    }

    #[tokio::test]
    async fn vms_outlive_the_driver_when_persisted() {
        let p = std::env::temp_dir().join(format!("fake-{}", std::process::id()));
        let cfg = FakeDriverConfig {
            spawn_delay: Duration::ZERO,
            destroy_delay: Duration::ZERO,
            power_delay: Duration::ZERO,
            state_dir: Some(p.clone()),
        };
        let z = ServerId::new();
        FakeDriver::new(cfg.clone()).spawn(&spec(&z)).await.expect("spawn");
        let again = FakeDriver::new(cfg);
        assert_eq!(again.list().await.expect("list")[0].server_id, z);
        let _ = std::fs::remove_dir_all(p);
    }
}
