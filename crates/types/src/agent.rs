//! The protocol between controller and compute agents, carried on the bus.
//!
//! Subjects: the controller serves `stratus.ctl.join`, `stratus.ctl.lease` and
//! `stratus.ctl.inventory` (requests from agents); each agent serves
//! `stratus.agent.<host>.cmd` (requests from the controller, answered with an
//! [`Ack`] at once) and `stratus.agent.<host>.console` (the API's synchronous
//! [`ConsoleRequest`], answered with a [`ConsoleReply`]), and publishes
//! [`CommandResult`]s on `stratus.agent.result` when a command finishes.

use crate::{AttachmentId, ImageId, OperationId, ServerId};
use serde::{Deserialize, Serialize};

/// Subject an agent joins on.
pub const SUBJECT_JOIN: &str = "stratus.ctl.join";
/// Subject an agent renews its lease on.
pub const SUBJECT_LEASE: &str = "stratus.ctl.lease";
/// Subject an agent asks for the servers it should run.
pub const SUBJECT_INVENTORY: &str = "stratus.ctl.inventory";
/// Subject agents publish command results on.
pub const SUBJECT_RESULT: &str = "stratus.agent.result";
/// Subject that wakes the operation runner (payload: operation id or empty).
pub const SUBJECT_OPS_WAKE: &str = "stratus.ops.wake";

/// The command subject of one host.
pub fn agent_subject(host: &str) -> String {
    format!("stratus.agent.{host}.cmd")
}

/// The console subject of one host: reads of a VM's serial console log
/// (`os-getConsoleOutput`). A read changes nothing, so it is answered at once
/// and apart from the command queue and the lease epoch.
pub fn agent_console_subject(host: &str) -> String {
    format!("stratus.agent.{host}.console")
}

/// The API asking a host for a VM's console log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleRequest {
    /// The server whose VM's console is read.
    pub server_id: ServerId,
    /// Only the last this many lines (`None`: all).
    #[serde(default)]
    pub max_lines: Option<usize>,
}

/// A host's answer to a [`ConsoleRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ConsoleReply {
    /// The console text.
    Output {
        /// The (tail of the) serial console log.
        output: String,
    },
    /// The host has no VM of this server.
    NoVm,
    /// The hypervisor could not read the console.
    Failed {
        /// The driver's error.
        message: String,
    },
}

/// An agent announcing itself (at start and after its lease lapsed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Host name.
    pub host: String,
    /// vCPUs offered.
    pub vcpus: i64,
    /// RAM MiB offered.
    pub memory_mb: i64,
    /// Disk GiB offered.
    pub disk_gb: i64,
}

/// The controller's answer to a join.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinReply {
    /// New epoch; commands from older epochs are refused by the agent.
    pub epoch: i64,
    /// Lease length in milliseconds.
    pub lease_ttl_ms: u64,
    /// How often to renew, milliseconds.
    pub renew_interval_ms: u64,
}

/// A lease renewal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// Host name.
    pub host: String,
    /// The epoch the agent holds.
    pub epoch: i64,
}

/// Answer to a renewal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseReply {
    /// Renewed.
    Renewed,
    /// The lease lapsed or the epoch is stale: rejoin and reconcile first.
    MustRejoin,
}

/// A host reports the VMs it holds and asks which servers it should be
/// running. The report also releases the capacity of zombies whose VM is gone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InventoryRequest {
    /// Host name.
    pub host: String,
    /// Server ids of the VMs present on the host right now.
    #[serde(default)]
    pub vms: Vec<ServerId>,
    /// VMs the host's watchdog killed because the agent stopped renewing the
    /// lease (self-fencing), so the controller can record which fence acted
    /// first on the server's instance action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub self_fenced: Vec<SelfFence>,
    /// The host's epoch when it made the report (absent before it joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// Ids of the storage clients still open on the host (the agent's own
    /// clients and every recorded client process still running), or absent
    /// when the agent cannot tell (then no fence of the host is lifted): a
    /// storage fence is lifted only once its client is reported gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<String>>,
}

/// One VM the host watchdog paused and killed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfFence {
    /// Its server.
    pub server_id: ServerId,
    /// When it was killed, Unix milliseconds (the host's wall clock).
    pub at_unix_ms: i64,
}

/// The servers a host should be running (everything else is to be reaped).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InventoryReply {
    /// Server ids placed on the host and not deleted.
    pub servers: Vec<ServerId>,
}

/// What the controller asks a host to do. Every command is idempotent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandKind {
    /// Create and start the VM (already running: success).
    Spawn {
        /// vCPUs.
        vcpus: i64,
        /// RAM MiB.
        ram_mb: i64,
        /// Image id.
        image_id: Option<ImageId>,
        /// How a real hypervisor boots the VM (disk size, kernel and ramdisk
        /// images); absent from older controllers and unused by the fake driver.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot: Option<BootSpec>,
    },
    /// Hard power-off and destroy the VM and its local disks (absent: success).
    /// Preempts an in-flight spawn of the same server.
    Terminate,
    /// Power the VM off.
    PowerOff,
    /// Power the VM on.
    PowerOn,
    /// Reboot the VM.
    Reboot {
        /// Hard reboot.
        hard: bool,
    },
    /// Open a volume for the VM (the host's storage client for one
    /// attachment); the result carries the client identity fencing targets.
    AttachVolume {
        /// Attachment id.
        attachment_id: AttachmentId,
        /// Volume name in the storage backend.
        volume: String,
    },
    /// Close the VM's client of one attachment (absent: success).
    DetachVolume {
        /// Attachment id.
        attachment_id: AttachmentId,
        /// Volume name in the storage backend (a VM that opens volumes
        /// itself has its storage-side connection torn down by name).
        #[serde(default)]
        volume: String,
    },
    /// Tell the VM that an attached volume grew (Nova's `extend_volume`
    /// on a `volume-extended` event): the guest sees the new size at once.
    ExtendVolume {
        /// Attachment id.
        attachment_id: AttachmentId,
        /// The volume's new size, bytes.
        size_bytes: u64,
    },
    /// Copy the powered-off VM's local root disk into the image store as
    /// image `image_id` (the shelve snapshot's bytes). A VM with no local
    /// root disk (boot from volume, or the fake driver) copies nothing.
    CaptureDisk {
        /// The snapshot image.
        image_id: ImageId,
    },
    /// Pause the VM in memory.
    Pause,
    /// Unpause it.
    Unpause,
    /// Suspend the VM to disk.
    Suspend,
    /// Resume it.
    Resume,
}

impl CommandKind {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => "spawn",
            Self::Terminate => "terminate",
            Self::PowerOff => "power_off",
            Self::PowerOn => "power_on",
            Self::Reboot { .. } => "reboot",
            Self::AttachVolume { .. } => "attach_volume",
            Self::CaptureDisk { .. } => "capture_disk",
            Self::DetachVolume { .. } => "detach_volume",
            Self::ExtendVolume { .. } => "extend_volume",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        }
    }
}

/// A command to a host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Command {
    /// Operation that issued it (results are routed by it).
    pub op_id: OperationId,
    /// Server it acts on.
    pub server_id: ServerId,
    /// The host epoch the controller believes in; a mismatch is refused.
    pub epoch: i64,
    /// The server's generation when the command was sent. A terminate
    /// tombstones the server on the host up to its generation, so a spawn
    /// issued before the delete (lower or equal generation) can never run
    /// after it, while a later legitimate spawn (unshelve, resize) can.
    #[serde(default)]
    pub generation: i64,
    /// What to do.
    pub kind: CommandKind,
}

/// Immediate answer to a command: accepted for execution or refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ack {
    /// Accepted.
    pub accepted: bool,
    /// Why not.
    pub reason: Option<String>,
}

/// Outcome of a command, published when it finishes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandResult {
    /// Operation id.
    pub op_id: OperationId,
    /// Server id.
    pub server_id: ServerId,
    /// Host that ran it.
    pub host: String,
    /// Command name.
    pub command: String,
    /// Success.
    pub ok: bool,
    /// Error text.
    pub error: Option<String>,
    /// Power state after the command (Nova codes).
    pub power_state: i64,
    /// How long the host spent, milliseconds.
    pub elapsed_ms: u64,
    /// Storage client identity opened by `attach_volume`.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// What a real hypervisor needs to boot a server beyond vCPUs and RAM,
/// resolved by the controller from the flavor and the image's Glance
/// properties (`kernel_id`, `ramdisk_id`, `os_command_line`), because the
/// agent has no database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSpec {
    /// Root disk GiB of the flavor (0: the image's own size).
    #[serde(default)]
    pub root_gb: i64,
    /// Kernel image to boot directly (Glance `kernel_id`, an AKI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_id: Option<ImageId>,
    /// Initial ramdisk image (Glance `ramdisk_id`, an ARI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramdisk_id: Option<ImageId>,
    /// Kernel command line (Glance `os_command_line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<String>,
}

/// How a VM's own block driver reaches a volume (Cinder's
/// `connection_info`): qemu opens an `rbd` image with its librbd (so the VM
/// *is* the Ceph client that fencing targets), or an NBD export served by
/// the storage side's `qemu-storage-daemon` (fenced by deleting the export).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "driver_volume_type", rename_all = "lowercase")]
pub enum VolumeConnection {
    /// A Ceph RBD image.
    Rbd {
        /// Pool.
        pool: String,
        /// Image name.
        image: String,
        /// `ceph.conf` the VM's librbd reads.
        ceph_conf: std::path::PathBuf,
    },
    /// An NBD export, unique to one attachment generation and never reused
    /// (a zombie qemu reconnects by itself to a reused export name).
    Nbd {
        /// Unix socket of the NBD server.
        socket: std::path::PathBuf,
        /// Export name.
        export: String,
        /// The storage client identity the export stands for (what a fence targets).
        client: String,
    },
}
