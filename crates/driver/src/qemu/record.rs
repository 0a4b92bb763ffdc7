//! What the driver remembers about a VM, on disk next to it, so a restarted
//! agent knows the VM's devices and intended power state without asking a
//! database (the VM's process may outlive several agents).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use stratus_types::agent::VolumeConnection;
use stratus_types::{AttachmentId, ServerId};

/// The power state the VM should have when its process is not running
/// (and, for `Paused`, when it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Running (or paused by QMP `stop`, which the process itself reports).
    Running,
    /// Powered off: no process.
    Shutoff,
    /// Saved to `managed.sav`: no process until resumed.
    Suspended,
}

/// A volume given to the VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSlot {
    /// The attachment.
    pub attachment_id: AttachmentId,
    /// Volume name in the storage backend.
    #[serde(default)]
    pub volume: String,
    /// How the VM reaches the volume.
    pub conn: VolumeConnection,
    /// PCIe root port (1..).
    pub port: u8,
}

impl VolumeSlot {
    /// Block node name (qemu limits names to 31 characters, so the port
    /// names it; a port is reused only after its node was deleted).
    pub fn node_name(&self) -> String {
        format!("vol-p{}", self.port)
    }
    /// Device id of its virtio disk.
    pub fn device_id(&self) -> String {
        format!("disk-p{}", self.port)
    }
}

/// The persisted description of one VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VmRecord {
    /// Server id.
    pub server_id: ServerId,
    /// vCPUs.
    pub vcpus: i64,
    /// RAM MiB.
    pub ram_mb: i64,
    /// Direct-boot kernel (a copy in the VM's directory).
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk (a copy in the VM's directory).
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub kernel_args: Option<String>,
    /// Local root disk (raw), if the server boots from an image.
    pub root_disk: Option<PathBuf>,
    /// Volumes, each on its own port.
    pub volumes: Vec<VolumeSlot>,
    /// Intended power state.
    pub intent: Intent,
}

impl VmRecord {
    /// A free PCIe port for a new volume, if any of `1..=ports` is free.
    pub fn free_port(&self, ports: u8) -> Option<u8> {
        (1..=ports).find(|p| self.volumes.iter().all(|s| s.port != *p))
    }

    /// Read the record in `path`.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Replace the record atomically (write, fsync, rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    }
}
