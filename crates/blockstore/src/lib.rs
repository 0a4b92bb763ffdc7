//! Block storage backends.
//!
//! Both backends keep RBD's semantics, because the delete contract depends on
//! them: a volume opened by a client (a VM) has a *watcher*; deleting a
//! watched volume fails with [`BlockError::Busy`] (never swallowed); and a
//! client can be *fenced*, after which its I/O fails and it can never write
//! again, so the volume can be released safely even while the old client
//! process still runs (a zombie VM on a dead or partitioned host).
//!
//! - `local` (embedded default): volumes are image files; each opening client
//!   is a watcher stamped with the volume's generation, and the storage side
//!   refuses I/O from a client that is no longer a current watcher; fencing
//!   drops that client and bumps the generation (the other clients carry
//!   over, so fencing stays per client, as in Ceph). VMs reach volumes as
//!   per-attachment NBD exports of a `qemu-storage-daemon`, which a fence
//!   deletes. See [`local`].
//! - `rbd`: real Ceph through the `rbd` / `ceph` CLIs (`--format json`); the
//!   client identity is the watcher address (`IP:0/NONCE`); fencing is
//!   `ceph osd blocklist add <addr> <expiry>` followed by breaking the lock.
//!   VMs open images with qemu's own librbd ([`BlockBackend::connect`]
//!   returns the pool and image; [`wait_for_new_watcher`] then finds the
//!   VM's client identity). See [`rbd`].

pub mod local;
pub mod process;
pub mod rbd;
mod util;

use async_trait::async_trait;
pub use process::ClientProcess;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
pub use stratus_types::agent::VolumeConnection;
use stratus_types::image::DiskFormat;

/// Wait until `name` has a watcher that is not in `known`, and return it:
/// how the agent learns the storage client identity of a VM it just gave a
/// [`VolumeConnection`] (with `rbd`, qemu's own librbd is a new Ceph client
/// whose address only `rbd status` reveals; that identity is what a later
/// fence must target, so it is recorded on the attachment).
///
/// Take `known` from [`BlockBackend::watchers`] *before* handing the
/// connection to qemu. Polls `watchers` until exactly one new client shows
/// up; more than one new client is an error (another opener raced this
/// attach, and recording the wrong one would fence the wrong client), as is
/// no new client within `timeout`.
pub async fn wait_for_new_watcher<B: BlockBackend + ?Sized>(
    backend: &B,
    name: &str,
    known: &[ClientId],
    timeout: Duration,
) -> Result<ClientId, BlockError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    loop {
        let mut new: Vec<ClientId> = backend.watchers(name).await?.into_iter().filter(|w| !known.contains(w)).collect();
        match new.len() {
            0 => {}
            1 => return Ok(new.remove(0)),
            _ => {
                return Err(BlockError::Backend(format!(
                    "volume {name} got several new watchers {new:?}; cannot tell which one is the VM"
                )));
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(BlockError::Backend(format!(
                "no new watcher of volume {name} within {timeout:?} (known: {known:?})"
            )));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

/// Identity of one storage client (one attachment's opener), as recorded at
/// attach time and used to fence exactly that client later.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientId(pub String);

/// Errors of a backend.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The volume does not exist.
    #[error("volume {0} not found")]
    NotFound(String),
    /// The volume is still open by these clients (watchers); it cannot be
    /// deleted until they are fenced or gone.
    #[error("volume {name} is busy: watched by {watchers:?}")]
    Busy {
        /// Volume name.
        name: String,
        /// Its watchers.
        watchers: Vec<ClientId>,
    },
    /// The client was fenced: its I/O is refused.
    #[error("client {0:?} is fenced")]
    Fenced(ClientId),
    /// The backend failed (CLI error, I/O error, bad output).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The image may not become a volume (the format inspector refused it:
    /// wrong format, references to other files, absurd size). The text names
    /// no path and may be shown to the image's user.
    #[error("{0}")]
    ImageRefused(String),
}

/// A client holding a volume open, as a VM does. Dropping it without
/// [`OpenClient::close`] models a VM that keeps running (a zombie).
#[async_trait]
pub trait OpenClient: Send + Sync {
    /// The client's identity (what fencing targets).
    fn id(&self) -> ClientId;
    /// Write `data` at `offset`; fails with [`BlockError::Fenced`] once fenced.
    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError>;
    /// Close cleanly (the watcher goes away).
    async fn close(self: Box<Self>) -> Result<(), BlockError>;
    /// The OS process this client is, if it is one of its own (it then
    /// outlives its owner): what the owner records so that it can end the
    /// client even after a restart. In-process clients have none.
    fn process(&self) -> Option<ClientProcess> {
        None
    }
}

/// A block storage backend.
#[async_trait]
pub trait BlockBackend: Send + Sync + 'static {
    /// Backend name (`local`, `rbd`).
    fn kind(&self) -> &'static str;
    /// Create an empty volume of `size_gb` GiB (idempotent: existing is success).
    async fn create(&self, name: &str, size_gb: u64) -> Result<(), BlockError>;
    /// Create a volume from an image file of the declared `disk_format`
    /// (boot from volume). The file is inspected first: it must be a safe
    /// image of that format, or [`BlockError::ImageRefused`].
    async fn create_from_image(
        &self,
        name: &str,
        size_gb: u64,
        image: &Path,
        disk_format: DiskFormat,
    ) -> Result<(), BlockError>;
    /// Grow a volume.
    async fn extend(&self, name: &str, size_gb: u64) -> Result<(), BlockError>;
    /// Does the volume exist?
    async fn exists(&self, name: &str) -> Result<bool, BlockError>;
    /// Current watchers (clients holding it open).
    async fn watchers(&self, name: &str) -> Result<Vec<ClientId>, BlockError>;
    /// Every volume the backend holds (outside a trash): what `stratus
    /// audit` compares with the volume records to find leaked storage. The
    /// default: this backend cannot list.
    async fn volumes(&self) -> Result<Vec<String>, BlockError> {
        Err(BlockError::Backend(format!("{} cannot list its volumes", self.kind())))
    }
    /// Open the volume as a client (what the host does for an attachment).
    async fn open(&self, name: &str) -> Result<Box<dyn OpenClient>, BlockError>;
    /// Make `name` reachable by a VM's own block driver for one attachment
    /// (Cinder's `initialize_connection`). Every call yields a target that
    /// was never handed out before, so a fenced zombie can never reconnect
    /// to a later one. The default: this backend cannot serve VMs directly.
    async fn connect(&self, name: &str, attachment: &str) -> Result<VolumeConnection, BlockError> {
        let _ = attachment;
        Err(BlockError::Backend(format!("{} cannot connect {name} to a VM", self.kind())))
    }
    /// Undo [`BlockBackend::connect`] after a clean detach (the VM closed
    /// the volume). Idempotent.
    async fn disconnect(&self, name: &str, conn: &VolumeConnection) -> Result<(), BlockError> {
        let _ = (name, conn);
        Ok(())
    }
    /// Fence one client of `name`: from now on its I/O fails, and any lock it
    /// holds is broken. Idempotent.
    async fn fence(&self, name: &str, client: &ClientId) -> Result<(), BlockError>;
    /// The clients fenced now whose fence a lift would remove (Ceph's
    /// blocklist): what `stratus audit` compares with the fences Stratus
    /// recorded as lifted. The default: none (a local fence is the removal
    /// of the client's watch, permanent, with nothing left to lift).
    async fn fenced(&self) -> Result<Vec<ClientId>, BlockError> {
        Ok(Vec::new())
    }
    /// Lift a fence (after the client's host rejoined with a new epoch and
    /// reaped the zombie). Idempotent.
    async fn unfence(&self, client: &ClientId) -> Result<(), BlockError>;
    /// Delete a volume. Fails with [`BlockError::Busy`] while watched;
    /// absent is success.
    async fn delete(&self, name: &str) -> Result<(), BlockError>;
    /// Fallback when `delete` fails for a reason other than watchers (e.g. a
    /// backend that refuses to remove an image right now): move it out of
    /// the way so a later [`BlockBackend::purge_deferred`] removes it. Never
    /// used for a watched volume (the watcher must be fenced first). The
    /// default has no such place and fails.
    async fn delete_deferred(&self, name: &str) -> Result<(), BlockError> {
        Err(BlockError::Backend(format!("{} has no deferred deletion for {name}", self.kind())))
    }
    /// Take a point-in-time copy `snapshot` of volume `volume` (Cinder's
    /// snapshot). Idempotent: an existing complete snapshot is success, and
    /// a copy cut off by a crash is never visible under `snapshot` (it is
    /// made aside and put in place last), so a retry starts afresh. The
    /// default: this backend has no snapshots.
    async fn snapshot_create(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        Err(BlockError::Backend(format!("{} cannot snapshot {volume} as {snapshot}", self.kind())))
    }
    /// Remove snapshot `snapshot` of `volume`; absent (or the volume absent)
    /// is success.
    async fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        Err(BlockError::Backend(format!("{} cannot delete snapshot {snapshot} of {volume}", self.kind())))
    }
    /// Create volume `name` of `size_gb` GiB holding the bytes of snapshot
    /// `snapshot` of `volume`, independent of it (the snapshot and its
    /// volume may be deleted afterwards). Idempotent like
    /// [`BlockBackend::create`].
    async fn create_from_snapshot(
        &self,
        name: &str,
        size_gb: u64,
        volume: &str,
        snapshot: &str,
    ) -> Result<(), BlockError> {
        let _ = (size_gb, volume);
        Err(BlockError::Backend(format!("{} cannot create {name} from snapshot {snapshot}", self.kind())))
    }
    /// Create volume `name` of `size_gb` GiB holding a point-in-time copy of
    /// volume `source` (Cinder's clone, `source_volid`), independent of it
    /// (no parent: either may be deleted afterwards). The default goes
    /// through the snapshot copy path: snapshot `scratch` of the source,
    /// a volume from it, then the scratch snapshot removed. `scratch` must
    /// be the same on a retry, so that a copy cut off by a crash is
    /// finished (or its snapshot removed) by the next attempt. Idempotent
    /// like [`BlockBackend::create`].
    async fn create_from_volume(
        &self,
        name: &str,
        size_gb: u64,
        source: &str,
        scratch: &str,
    ) -> Result<(), BlockError> {
        let built = if self.exists(name).await? {
            // Built already: only what an earlier attempt left on the source goes.
            Ok(())
        } else {
            self.snapshot_create(source, scratch).await?;
            self.create_from_snapshot(name, size_gb, source, scratch).await
        };
        let removed = self.snapshot_delete(source, scratch).await;
        built?;
        if let Err(e) = removed {
            tracing::warn!(volume = name, source, scratch, error = %e, "clone built; its scratch snapshot could not be removed");
        }
        Ok(())
    }

    /// Put the bytes of snapshot `snapshot` back into volume `volume`
    /// (Cinder's revert to snapshot), the snapshot kept. Refused with
    /// [`BlockError::Busy`] while the volume has a watcher: a client that
    /// holds it open (or a zombie not fenced yet) would see its disk change
    /// under it. Idempotent: a revert cut off by a crash is finished by
    /// running it again. The default: this backend cannot revert.
    async fn snapshot_revert(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        Err(BlockError::Backend(format!("{} cannot revert {volume} to snapshot {snapshot}", self.kind())))
    }
    /// Does the complete snapshot `snapshot` of `volume` exist? (What the
    /// reconciler asks of a snapshot whose create was cut off.)
    async fn snapshot_exists(&self, volume: &str, snapshot: &str) -> Result<bool, BlockError> {
        Ok(self.snapshots().await?.iter().any(|(v, s)| v == volume && s == snapshot))
    }
    /// Every snapshot the backend holds, as `(volume, snapshot)`: what
    /// `stratus audit` compares with the snapshot records. The default:
    /// this backend cannot list.
    async fn snapshots(&self) -> Result<Vec<(String, String)>, BlockError> {
        Err(BlockError::Backend(format!("{} cannot list its snapshots", self.kind())))
    }
    /// Remove what `delete_deferred` moved away; returns how many remain.
    async fn purge_deferred(&self) -> Result<usize, BlockError> {
        Ok(0)
    }
}
