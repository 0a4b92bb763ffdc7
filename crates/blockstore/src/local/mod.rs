//! `local` backend: volumes are raw image files with RBD semantics kept in a
//! sidecar state file, served to VMs as NBD exports of one
//! `qemu-storage-daemon` per directory.
//!
//! Layout of the backend directory:
//! - `<name>.img`: the volume (a sparse raw file made by `qemu-img`);
//! - `<name>.state.json`: `{"generation": N, "watchers": [{"client": …, "generation": N, "owner": …}]}`
//!   (`owner`: the process of an in-process client; its watch ends with it);
//! - `.stratus-blockstore.lock`: the lock file that serialises every state
//!   change of the directory (see *Concurrency* below);
//! - `.qsd/`: the directory's `qemu-storage-daemon` (`qmp.sock`, `nbd.sock`,
//!   `qsd.pid`, `qsd.log`), started by the first `connect` (see `qsd.rs`).
//!
//! Semantics (the ones the delete contract relies on, mirroring Ceph):
//! - `open` and `connect` register a watcher stamped with the volume's
//!   current generation; its [`ClientId`] is `local:<name>:<generation>:<uuid>`.
//! - A client's `write` is allowed only while its watcher entry is present and
//!   carries the current generation; otherwise it fails with
//!   [`BlockError::Fenced`] (it was fenced, or the volume was deleted).
//! - `fence(name, client)` removes that client's entry and bumps the
//!   generation; the *other* watchers are re-stamped with the new generation.
//!   Re-stamping is what keeps fencing per client, as Ceph's blocklist is per
//!   client instance: with a bare "generation < current ⇒ fenced" rule,
//!   fencing one attachment of a multi-attached volume would also cut off
//!   the healthy one.
//! - `delete` fails with [`BlockError::Busy`] while any current watcher
//!   exists; an absent volume is success.
//! - `unfence` is a no-op: a fenced local client can never come back; the
//!   host opens the volume again and gets a new generation.
//!
//! # VMs: one NBD export per attachment
//! A qemu given the raw `.img` path would bypass all of the above (only
//! killing it would stop its writes), so [`BlockBackend::connect`] hands a VM
//! an NBD export instead: it registers a watcher exactly as `open` does, then
//! adds, over QMP, a raw node on the image and a writable NBD export of it on
//! the directory's `qemu-storage-daemon` (started lazily and detached, so it
//! outlives agents). The export's name, id and node name are derived from the
//! client id (`<name>-g<generation>-<uuid>`), so every attachment gets a name
//! never served before: a fenced zombie qemu, whose NBD client reconnects by
//! itself to a name it knew, finds nothing. `fence` first deletes that export
//! with `block-export-del mode=hard` (connections cut, requests in flight
//! fail), waits for `BLOCK_EXPORT_DELETED`, deletes the node, and only then
//! drops the watcher and returns; a qsd that does not run serves nothing, so
//! the fence is complete at once, and a qsd that runs but does not answer is
//! killed (which ends all its exports). `disconnect` does the same without
//! the generation bump (like `close`), and fails rather than kill an
//! unresponsive qsd.
//!
//! Crash safety: the watcher is registered before the export exists and
//! dropped only after the export is gone, and the export is found again from
//! the client id alone; so whatever the crash point, the volume stays `Busy`
//! until a fence or disconnect removes both, and neither ever leaves an
//! export of an unwatched volume behind.
//!
//! `extend` of a volume that a VM has connected is refused with a clear
//! error: qemu's NBD server forbids resizing a node while it exports it, and
//! a VM's NBD client could not learn the new size anyway (NBD has no resize
//! notice). Detach, extend, attach again (Cinder, too, extends in-use
//! volumes only where the hypervisor can resize the attached disk).
//!
//! # Concurrency
//! Every state change, and every client write, runs under two locks: an
//! in-process [`tokio::sync::RwLock`] (so tasks wait asynchronously instead of
//! parking blocking threads) and an `flock` on the directory's lock file via
//! [`std::fs::File::lock`] (safe Rust, no extra dependency), which makes it
//! safe across processes (API, controller and agents may share the directory
//! on one host). Writes hold the lock *shared* for the check *and* the
//! `pwrite`, fences hold it *exclusive*: once `fence` returns, no write of the
//! fenced client can land, not even one that passed its check just before.
//! The QMP sessions (starting the qsd, adding and deleting exports) run under
//! the exclusive lock too, which serialises them across processes (the qsd's
//! monitor serves one client at a time) and makes connect and fence of one
//! client atomic with respect to each other.
//! State files are replaced atomically (write to a temporary file, `fsync`,
//! `rename`), so a crash never leaves a torn state file.
//!
//! Limits: `flock` works on local file systems (on NFS, Linux emulates it with
//! POSIX locks, which is acceptable but slower). One lock per directory
//! serialises all volumes of a host; every critical section is a few small
//! file operations or QMP commands (about a millisecond each), so this is not
//! a bottleneck at the scale of one host.

mod qsd;

use crate::util::{self, TempPath};
use crate::{BlockBackend, BlockError, ClientId, OpenClient, VolumeConnection};
use async_trait::async_trait;
use qsd::{ExportIds, Qsd, Unresponsive};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stratus_types::image::DiskFormat;
use tokio::sync::RwLock;

/// Name of the per-directory lock file (hidden, so never a volume name).
const LOCK_FILE: &str = ".stratus-blockstore.lock";

/// The watchers and generation of one volume, as stored in its sidecar file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeState {
    /// Fencing epoch of the volume: bumped by every effective fence.
    pub generation: u64,
    /// The clients holding the volume open.
    pub watchers: Vec<Watcher>,
}

/// One client holding a volume open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watcher {
    /// Its identity (what `fence` targets).
    pub client: ClientId,
    /// The generation it is allowed to write at (the volume's current one
    /// while it is not fenced).
    pub generation: u64,
    /// The process holding an in-process client (`open`); none for a VM's
    /// own connection (`connect`), which the storage daemon serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// The process an in-process client lives in. Its watch ends with it, as
/// a Ceph watch expires once its client stops answering: a client whose
/// process was SIGKILLed never closes, and would otherwise keep its volume
/// busy (undeletable) for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Its start time (`/proc/<pid>/stat` field 22): a reused pid is another process.
    pub start: u64,
}

impl Owner {
    /// This process.
    fn me() -> Option<Self> {
        let pid = std::process::id();
        Some(Self { pid, start: process_start(pid)? })
    }

    /// Does the process still run?
    fn alive(&self) -> bool {
        process_start(self.pid) == Some(self.start)
    }
}

/// The start time of process `pid`, if it runs (a zombie process counts as gone).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    // After the state (field 3), the start time is field 22.
    fields.nth(18)?.parse().ok()
}

impl VolumeState {
    /// Watchers allowed to do I/O now (a client whose process is gone holds nothing).
    fn current(&self) -> impl Iterator<Item = &Watcher> {
        self.watchers.iter().filter(move |w| w.generation == self.generation && w.owner.is_none_or(|o| o.alive()))
    }

    /// May `client` write now?
    fn admits(&self, client: &ClientId) -> bool {
        self.current().any(|w| &w.client == client)
    }
}

/// Shared part of the backend, also held by its open clients.
#[derive(Debug)]
struct Inner {
    /// The backend directory.
    dir: PathBuf,
    /// In-process side of the directory lock.
    lock: RwLock<()>,
    /// The directory's qemu-storage-daemon (NBD exports for VMs).
    qsd: Qsd,
}

/// How a critical section takes the directory lock.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Client writes and reads of state: many at once.
    Shared,
    /// State changes.
    Exclusive,
}

impl Inner {
    fn img(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.img"))
    }

    /// A snapshot's file: `<volume>@<snapshot>.snap` (not `.img`, so it is
    /// never taken for a volume).
    fn snap(&self, volume: &str, snapshot: &str) -> PathBuf {
        self.dir.join(format!("{volume}@{snapshot}.snap"))
    }

    /// Where a snapshot is copied before it is put in place: one fixed name
    /// per snapshot, so a copy cut off by a crash is overwritten by the
    /// retry (or removed by the snapshot's delete), never left behind.
    fn snap_tmp(&self, volume: &str, snapshot: &str) -> PathBuf {
        self.dir.join(format!(".{volume}@{snapshot}.snap.tmp"))
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.state.json"))
    }

    /// Run the blocking `f` under both locks in `mode`.
    async fn locked<R, F>(self: &Arc<Self>, mode: Mode, f: F) -> Result<R, BlockError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, BlockError> + Send + 'static,
    {
        let _read = if matches!(mode, Mode::Shared) { Some(self.lock.read().await) } else { None };
        let _write = if matches!(mode, Mode::Exclusive) { Some(self.lock.write().await) } else { None };
        let inner = Arc::clone(self);
        // If this future is dropped mid-way, the blocking closure still runs
        // to completion holding the flock, so the critical section stays whole.
        tokio::task::spawn_blocking(move || {
            let _lock = inner.flock(mode)?;
            // Closing `_lock` (end of scope) releases the flock.
            f(&inner)
        })
        .await
        .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))?
    }

    /// Open the directory's lock file and `flock` it in `mode` (blocking);
    /// the lock lasts as long as the returned file is open.
    fn flock(&self, mode: Mode) -> Result<File, BlockError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err("creating", &self.dir, e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
            .map_err(|e| io_err("opening the lock file", &self.dir, e))?;
        match mode {
            Mode::Shared => lock.lock_shared(),
            Mode::Exclusive => lock.lock(),
        }
        .map_err(|e| io_err("locking", &self.dir, e))?;
        Ok(lock)
    }

    /// Run the asynchronous critical section `f` (state changes plus QMP
    /// calls to the qsd) under both locks, exclusive. It runs as its own
    /// task, so it completes even if the caller's future is dropped.
    async fn exclusive<R, F, Fut>(self: &Arc<Self>, f: F) -> Result<R, BlockError>
    where
        R: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<R, BlockError>> + Send + 'static,
    {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let _write = inner.lock.write().await;
            let flocker = Arc::clone(&inner);
            let _flock = tokio::task::spawn_blocking(move || flocker.flock(Mode::Exclusive))
                .await
                .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))??;
            f(Arc::clone(&inner)).await
        })
        .await
        .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))?
    }

    /// Run the blocking `f` (state file operations) off the async threads,
    /// inside a critical section that already holds the locks.
    async fn blocking<R, F>(self: &Arc<Self>, f: F) -> Result<R, BlockError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, BlockError> + Send + 'static,
    {
        let inner = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))?
    }

    /// Register a new watcher of `name` at its current generation (under
    /// the exclusive lock). Returns its id and generation.
    fn register_watcher(&self, name: &str, owner: Option<Owner>) -> Result<(ClientId, u64), BlockError> {
        not_found_if_missing(self, name)?;
        let mut state = self.read_state(name)?;
        let generation = state.generation;
        let id = ClientId(format!("local:{name}:{generation}:{}", uuid::Uuid::new_v4().simple()));
        // Watchers of processes that are gone are dropped on the way.
        state.watchers.retain(|w| w.owner.is_none_or(|o| o.alive()));
        state.watchers.push(Watcher { client: id.clone(), generation, owner });
        self.write_state(name, &state)?;
        Ok((id, generation))
    }

    /// Drop the watcher `id` of `name` (a clean close), keeping the
    /// generation. Absent volume or watcher: nothing to do.
    fn remove_watcher(&self, name: &str, id: &ClientId) -> Result<(), BlockError> {
        if !self.img(name).exists() {
            return Ok(());
        }
        let mut state = self.read_state(name)?;
        let before = state.watchers.len();
        state.watchers.retain(|w| &w.client != id);
        if state.watchers.len() != before {
            self.write_state(name, &state)?;
        }
        Ok(())
    }

    /// Fence `target` in the state file: drop its watcher, bump the
    /// generation and re-stamp the others. Returns the new generation, or
    /// `None` when there was nothing to fence.
    fn fence_watcher(&self, name: &str, target: &ClientId) -> Result<Option<u64>, BlockError> {
        if !self.img(name).exists() {
            // Nothing to fence: a deleted volume refuses all I/O.
            return Ok(None);
        }
        let mut state = self.read_state(name)?;
        let before = state.watchers.len();
        state.watchers.retain(|w| &w.client != target);
        if state.watchers.len() == before {
            // Already fenced (or never opened): idempotent success.
            return Ok(None);
        }
        state.generation += 1;
        let generation = state.generation;
        for w in &mut state.watchers {
            w.generation = generation;
        }
        self.write_state(name, &state)?;
        Ok(Some(generation))
    }

    /// Delete the qsd export of `client` of `name`, if it has one, and wait
    /// until it is gone. A qsd that does not run serves no export: done. A
    /// qsd that runs but does not answer is handled as `unresponsive` says
    /// (a fence kills it, which ends every export it serves; a clean
    /// disconnect fails instead). Returns whether an export was removed.
    async fn unexport(&self, name: &str, client: &ClientId, unresponsive: Unresponsive) -> Result<bool, BlockError> {
        let Some(ids) = ExportIds::of(name, &client.0) else {
            return Ok(false);
        };
        match self.qsd.session(unresponsive).await? {
            Some(q) => qsd::remove_export(&q, &ids).await,
            None => {
                tracing::info!(volume = name, client = %client.0, "no qemu-storage-daemon runs: no export to delete");
                Ok(false)
            }
        }
    }

    fn read_state(&self, name: &str) -> Result<VolumeState, BlockError> {
        let path = self.state_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BlockError::Backend(format!("corrupt state file {}: {e}", path.display()))),
            // An image without a state file (created by hand, or a crash in
            // an old version) has no watchers.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(VolumeState::default()),
            Err(e) => Err(io_err("reading", &path, e)),
        }
    }

    /// Replace the state file atomically (temporary file, fsync, rename).
    fn write_state(&self, name: &str, state: &VolumeState) -> Result<(), BlockError> {
        let path = self.state_path(name);
        let tmp = TempPath(self.dir.join(format!(".{name}.state.{}.tmp", util::random_suffix())));
        let bytes = serde_json::to_vec(state)
            .map_err(|e| BlockError::Backend(format!("cannot encode state of {name}: {e}")))?;
        let mut f = File::create(&tmp.0).map_err(|e| io_err("creating", &tmp.0, e))?;
        f.write_all(&bytes).map_err(|e| io_err("writing", &tmp.0, e))?;
        f.sync_all().map_err(|e| io_err("syncing", &tmp.0, e))?;
        std::fs::rename(&tmp.0, &path).map_err(|e| io_err("renaming over", &path, e))?;
        // Best effort: make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn remove_if_present(path: &Path) -> Result<(), BlockError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", path, e)),
        }
    }

    /// Move a fully built temporary image into place as `name` with a fresh
    /// state, unless `name` already exists (idempotent create). Runs under the
    /// exclusive lock.
    fn install(&self, name: &str, tmp: &TempPath) -> Result<(), BlockError> {
        let img = self.img(name);
        if img.exists() {
            return Ok(());
        }
        // A state file without an image is left over from an interrupted
        // delete: keep the generation monotonic and drop its watchers (their
        // clients then get `Fenced`, as they would after a delete).
        let generation =
            if self.state_path(name).exists() { self.read_state(name)?.generation.saturating_add(1) } else { 0 };
        let state = VolumeState { generation, watchers: vec![] };
        self.write_state(name, &state)?;
        std::fs::rename(&tmp.0, &img).map_err(|e| io_err("renaming into place", &img, e))
    }
}

/// Copy `src` to `dst` as it is now, holes kept (a reflink where the file
/// system offers one): blocking, for a critical section.
fn copy_sparse(src: &Path, dst: &Path) -> Result<(), BlockError> {
    let out = std::process::Command::new("cp")
        .arg("--reflink=auto")
        .arg("--sparse=always")
        .arg("--")
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| io_err("running cp for", src, e))?;
    if !out.status.success() {
        return Err(BlockError::Backend(format!(
            "copying {} to {}: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let f = File::open(dst).map_err(|e| io_err("opening", dst, e))?;
    f.sync_all().map_err(|e| io_err("syncing", dst, e))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> BlockError {
    BlockError::Backend(format!("{what} {}: {e}", path.display()))
}

fn not_found_if_missing(inner: &Inner, name: &str) -> Result<PathBuf, BlockError> {
    let img = inner.img(name);
    if img.exists() { Ok(img) } else { Err(BlockError::NotFound(name.to_owned())) }
}

/// The embedded-default block backend: raw image files in one directory with
/// generation fencing (see the module documentation for the exact rules).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    inner: Arc<Inner>,
}

impl LocalBackend {
    /// A backend keeping its volumes in `dir` (created if missing on first
    /// use). Several processes may use the same directory.
    pub fn new(dir: PathBuf) -> Self {
        let qsd = Qsd::new(&dir);
        Self { inner: Arc::new(Inner { dir, lock: RwLock::new(()), qsd }) }
    }

    /// The directory holding the volumes.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Path of a volume's image file (what an NBD export or a driver serves).
    pub fn image_path(&self, name: &str) -> Result<PathBuf, BlockError> {
        util::validate_name("volume", name)?;
        Ok(self.inner.img(name))
    }

    /// The stored state of a volume (generation and all watchers), for audit
    /// and tests; [`BlockError::NotFound`] when the volume does not exist.
    pub async fn state(&self, name: &str) -> Result<VolumeState, BlockError> {
        util::validate_name("volume", name)?;
        let name = name.to_owned();
        self.inner
            .locked(Mode::Shared, move |inner| {
                not_found_if_missing(inner, &name)?;
                inner.read_state(&name)
            })
            .await
    }

    /// Like [`BlockBackend::open`], returning the concrete client (whose
    /// generation tests and drivers can read).
    pub async fn open_client(&self, name: &str) -> Result<LocalClient, BlockError> {
        util::validate_name("volume", name)?;
        let owned = name.to_owned();
        let owner = Owner::me();
        let (id, generation) =
            self.inner.locked(Mode::Exclusive, move |inner| inner.register_watcher(&owned, owner)).await?;
        tracing::debug!(volume = name, client = %id.0, generation, "opened");
        Ok(LocalClient { inner: Arc::clone(&self.inner), name: name.to_owned(), id, generation })
    }

    /// Stop the directory's `qemu-storage-daemon` (QMP `quit`, then SIGTERM,
    /// then SIGKILL) and wait until it is gone: for tests and for shutting a
    /// host's storage down. Every export it served ends, so every connected
    /// VM loses its volumes (their watchers stay until fenced or
    /// disconnected). Returns whether one was running; the next `connect`
    /// starts a new one.
    pub async fn stop_storage_daemon(&self) -> Result<bool, BlockError> {
        self.inner.exclusive(|inner| async move { inner.qsd.stop().await }).await
    }

    /// Pid of the directory's running `qemu-storage-daemon` (verified by its
    /// command line naming this directory's monitor socket), if any: for
    /// audits, process accounting and tests.
    pub fn storage_daemon_pid(&self) -> Option<u32> {
        self.inner.qsd.pid()
    }

    /// The NBD socket VMs connect to for this directory's exports.
    pub fn nbd_socket(&self) -> PathBuf {
        self.inner.qsd.nbd_sock()
    }

    async fn ensure_dir(&self) -> Result<(), BlockError> {
        tokio::fs::create_dir_all(&self.inner.dir).await.map_err(|e| io_err("creating", &self.inner.dir, e))
    }

    fn tmp_image(&self, name: &str) -> TempPath {
        TempPath(self.inner.dir.join(format!(".{name}.{}.img.tmp", util::random_suffix())))
    }

    async fn install(&self, name: &str, tmp: TempPath) -> Result<(), BlockError> {
        let name = name.to_owned();
        // `tmp` moves into the closure; if the image already existed, its
        // drop removes the unused temporary file.
        self.inner.locked(Mode::Exclusive, move |inner| inner.install(&name, &tmp)).await
    }

    async fn exists_now(&self, name: &str) -> Result<bool, BlockError> {
        tokio::fs::try_exists(self.inner.img(name)).await.map_err(|e| io_err("checking", &self.inner.img(name), e))
    }
}

#[async_trait]
impl BlockBackend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn create(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        self.ensure_dir().await?;
        if self.exists_now(name).await? {
            return Ok(());
        }
        // Build the image under a temporary name outside the lock (qemu-img
        // may take a while), then move it into place under the lock.
        let tmp = self.tmp_image(name);
        let size = bytes.to_string();
        let args = [
            std::ffi::OsStr::new("create"),
            std::ffi::OsStr::new("-q"),
            std::ffi::OsStr::new("-f"),
            std::ffi::OsStr::new("raw"),
            tmp.0.as_os_str(),
            std::ffi::OsStr::new(&size),
        ];
        util::qemu_img(stratus_imageformat::qemu_img::INFO, &args).await?.ok("creating the volume")?;
        self.install(name, tmp).await
    }

    async fn create_from_image(
        &self,
        name: &str,
        size_gb: u64,
        image: &Path,
        disk_format: DiskFormat,
    ) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        self.ensure_dir().await?;
        if self.exists_now(name).await? {
            return Ok(());
        }
        let tmp = self.tmp_image(name);
        match util::inspect_image(image, disk_format).await? {
            util::ImageSource::Convert { format, virtual_size } => {
                if virtual_size > bytes {
                    return Err(BlockError::ImageRefused(format!(
                        "Image virtual size is {virtual_size} bytes, larger than the {size_gb} GiB volume."
                    )));
                }
                util::convert_to_raw(image, format, &tmp.0).await?;
            }
            util::ImageSource::CopyBytes => {
                tokio::fs::copy(image, &tmp.0).await.map_err(|e| io_err("copying", image, e))?;
            }
        }
        let f =
            tokio::fs::OpenOptions::new().write(true).open(&tmp.0).await.map_err(|e| io_err("opening", &tmp.0, e))?;
        let len = f.metadata().await.map_err(|e| io_err("reading metadata of", &tmp.0, e))?.len();
        if len > bytes {
            return Err(BlockError::Backend(format!(
                "image {} is {len} bytes, larger than the {size_gb} GiB volume",
                image.display()
            )));
        }
        // Extending a raw file is a sparse truncate.
        f.set_len(bytes).await.map_err(|e| io_err("resizing", &tmp.0, e))?;
        drop(f);
        self.install(name, tmp).await
    }

    async fn extend(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        let name = name.to_owned();
        self.inner
            .exclusive(move |inner| async move {
                // qemu's NBD server forbids resizing a node while it exports
                // it, and an NBD client could not learn the new size anyway:
                // refuse while a VM is connected (never start a qsd for this).
                let vol = name.clone();
                let watchers = inner.blocking(move |i| Ok(i.read_state(&vol)?.watchers)).await?;
                let exported: Vec<ExportIds> =
                    watchers.iter().filter_map(|w| ExportIds::of(&name, &w.client.0)).collect();
                if !exported.is_empty()
                    && let Some(q) = inner.qsd.session(Unresponsive::Fail).await?
                {
                    let served = qsd::exported_nodes(&q, &exported).await?;
                    if !served.is_empty() {
                        return Err(BlockError::Backend(format!(
                            "volume {name} is connected to a VM through the NBD export(s) {served:?}, which cannot \
                             be resized while served; detach it, extend, and attach it again"
                        )));
                    }
                }
                inner
                    .blocking(move |inner| {
                        let img = not_found_if_missing(inner, &name)?;
                        let f = OpenOptions::new().write(true).open(&img).map_err(|e| io_err("opening", &img, e))?;
                        let len = f.metadata().map_err(|e| io_err("reading metadata of", &img, e))?.len();
                        if bytes < len {
                            return Err(BlockError::Backend(format!(
                                "volume {name} is {len} bytes; refusing to shrink it to {size_gb} GiB"
                            )));
                        }
                        f.set_len(bytes).map_err(|e| io_err("resizing", &img, e))
                    })
                    .await
            })
            .await
    }

    async fn exists(&self, name: &str) -> Result<bool, BlockError> {
        util::validate_name("volume", name)?;
        self.exists_now(name).await
    }

    async fn volumes(&self) -> Result<Vec<String>, BlockError> {
        let dir = self.dir().to_path_buf();
        let entries = std::fs::read_dir(&dir).map_err(|e| io_err("listing", &dir, e))?;
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io_err("listing", &dir, e))?;
            let file = e.file_name().to_string_lossy().to_string();
            if let Some(name) = file.strip_suffix(".img").filter(|n| !n.starts_with('.')) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn watchers(&self, name: &str) -> Result<Vec<ClientId>, BlockError> {
        let state = self.state(name).await?;
        Ok(state.current().map(|w| w.client.clone()).collect())
    }

    async fn open(&self, name: &str) -> Result<Box<dyn OpenClient>, BlockError> {
        Ok(Box::new(self.open_client(name).await?))
    }

    async fn fence(&self, name: &str, client: &ClientId) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let owned = name.to_owned();
        let target = client.clone();
        let started = std::time::Instant::now();
        let (unexported, fenced) = self
            .inner
            .exclusive(move |inner| async move {
                // The export goes first: should deleting it fail, the watcher
                // stays and the volume stays Busy (never released while a
                // zombie may still write through it).
                let unexported = inner.unexport(&owned, &target, Unresponsive::Kill).await?;
                let fenced = inner.blocking(move |i| i.fence_watcher(&owned, &target)).await?;
                Ok((unexported, fenced))
            })
            .await?;
        if unexported || fenced.is_some() {
            tracing::info!(volume = name, client = %client.0, generation = ?fenced, export_deleted = unexported,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "fenced");
        }
        Ok(())
    }

    async fn connect(&self, name: &str, attachment: &str) -> Result<VolumeConnection, BlockError> {
        util::validate_name("volume", name)?;
        let owned = name.to_owned();
        let (conn, generation) = self
            .inner
            .exclusive(move |inner| async move {
                // Watcher first: from here on the volume is Busy, and a crash
                // at any later point leaves something fence can undo.
                let vol = owned.clone();
                let (id, generation) = inner.blocking(move |i| i.register_watcher(&vol, None)).await?;
                let Some(ids) = ExportIds::of(&owned, &id.0) else {
                    return Err(BlockError::Backend(format!("client id {} has an unexpected form", id.0)));
                };
                // On failure: the error, and whether nothing of the export
                // is left (only then may the watcher go).
                let exported: Result<(), (BlockError, bool)> = async {
                    let q = inner.qsd.ensure().await.map_err(|e| (e, true))?;
                    if let Err(e) = qsd::add_export(&q, &inner.img(&owned), &ids).await {
                        // Undo a half-made export; keep the watcher if even that fails.
                        return match qsd::remove_export(&q, &ids).await {
                            Ok(_) => Err((e, true)),
                            Err(undo) => {
                                tracing::warn!(volume = %owned, client = %id.0, error = %undo,
                                    "cannot undo a half-made export; the watcher stays until a fence removes both");
                                Err((e, false))
                            }
                        };
                    }
                    Ok(())
                }
                .await;
                if let Err((e, undone)) = exported {
                    let (vol, client) = (owned.clone(), id.clone());
                    if undone && let Err(undo) = inner.blocking(move |i| i.remove_watcher(&vol, &client)).await {
                        tracing::warn!(volume = %owned, client = %id.0, error = %undo, "cannot drop the watcher of a failed connect; fence it");
                    }
                    return Err(e);
                }
                let conn =
                    VolumeConnection::Nbd { socket: inner.qsd.nbd_sock(), export: ids.export, client: id.0 };
                Ok((conn, generation))
            })
            .await?;
        tracing::info!(volume = name, attachment, generation, connection = ?conn, "connected");
        Ok(conn)
    }

    async fn disconnect(&self, name: &str, conn: &VolumeConnection) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let VolumeConnection::Nbd { client, .. } = conn else {
            return Err(BlockError::Backend(format!("local volume {name} has no connection {conn:?}")));
        };
        let owned = name.to_owned();
        let client = ClientId(client.clone());
        let who = client.clone();
        self.inner
            .exclusive(move |inner| async move {
                inner.unexport(&owned, &client, Unresponsive::Fail).await?;
                inner.blocking(move |i| i.remove_watcher(&owned, &client)).await
            })
            .await?;
        tracing::info!(volume = name, client = %who.0, "disconnected");
        Ok(())
    }

    async fn unfence(&self, _client: &ClientId) -> Result<(), BlockError> {
        // A fenced local client's watcher entry is gone for good; the host
        // re-opens the volume and gets a new generation. Nothing to lift.
        Ok(())
    }

    /// The copy is made under the exclusive directory lock, so no client
    /// write through [`LocalClient`] lands during it. Writes a VM makes
    /// through its NBD export do not take that lock: a snapshot of an
    /// attached volume (`force`) is crash-consistent at best, as Cinder
    /// warns for in-use snapshots.
    async fn snapshot_create(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        util::validate_name("volume", volume)?;
        util::validate_name("snapshot", snapshot)?;
        self.ensure_dir().await?;
        let (volume, snapshot) = (volume.to_owned(), snapshot.to_owned());
        self.inner
            .locked(Mode::Exclusive, move |inner| {
                let dst = inner.snap(&volume, &snapshot);
                if dst.exists() {
                    return Ok(());
                }
                let img = not_found_if_missing(inner, &volume)?;
                let tmp = TempPath(inner.snap_tmp(&volume, &snapshot));
                copy_sparse(&img, &tmp.0)?;
                std::fs::rename(&tmp.0, &dst).map_err(|e| io_err("renaming into place", &dst, e))?;
                if let Ok(d) = File::open(&inner.dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            })
            .await
    }

    async fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        util::validate_name("volume", volume)?;
        util::validate_name("snapshot", snapshot)?;
        let (volume, snapshot) = (volume.to_owned(), snapshot.to_owned());
        self.inner
            .locked(Mode::Exclusive, move |inner| {
                Inner::remove_if_present(&inner.snap_tmp(&volume, &snapshot))?;
                Inner::remove_if_present(&inner.snap(&volume, &snapshot))
            })
            .await
    }

    async fn create_from_snapshot(
        &self,
        name: &str,
        size_gb: u64,
        volume: &str,
        snapshot: &str,
    ) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        util::validate_name("volume", volume)?;
        util::validate_name("snapshot", snapshot)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        self.ensure_dir().await?;
        if self.exists_now(name).await? {
            return Ok(());
        }
        let src = self.inner.snap(volume, snapshot);
        if !tokio::fs::try_exists(&src).await.map_err(|e| io_err("checking", &src, e))? {
            return Err(BlockError::NotFound(format!("{volume}@{snapshot}")));
        }
        let tmp = self.tmp_image(name);
        let dst = tmp.0.clone();
        // A snapshot never changes: copied outside the lock.
        tokio::task::spawn_blocking(move || {
            copy_sparse(&src, &dst)?;
            let f = OpenOptions::new().write(true).open(&dst).map_err(|e| io_err("opening", &dst, e))?;
            let len = f.metadata().map_err(|e| io_err("reading metadata of", &dst, e))?.len();
            if len > bytes {
                return Err(BlockError::Backend(format!(
                    "snapshot is {len} bytes, larger than the {size_gb} GiB volume"
                )));
            }
            f.set_len(bytes).map_err(|e| io_err("resizing", &dst, e))
        })
        .await
        .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))??;
        self.install(name, tmp).await
    }

    /// The snapshot is copied aside and renamed over the volume's image,
    /// all under the exclusive directory lock: no client write lands during
    /// it, and a crash leaves either the old bytes or the snapshot's, never
    /// a mix (a rerun finishes it). Refused while any current watcher holds
    /// the volume; a fenced client's I/O stays refused by its generation.
    async fn snapshot_revert(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        util::validate_name("volume", volume)?;
        util::validate_name("snapshot", snapshot)?;
        let (volume, snapshot) = (volume.to_owned(), snapshot.to_owned());
        let tmp = self.tmp_image(&volume);
        self.inner
            .locked(Mode::Exclusive, move |inner| {
                let img = not_found_if_missing(inner, &volume)?;
                let src = inner.snap(&volume, &snapshot);
                if !src.exists() {
                    return Err(BlockError::NotFound(format!("{volume}@{snapshot}")));
                }
                let watchers: Vec<ClientId> = inner.read_state(&volume)?.current().map(|w| w.client.clone()).collect();
                if !watchers.is_empty() {
                    return Err(BlockError::Busy { name: volume, watchers });
                }
                let len = std::fs::metadata(&img).map_err(|e| io_err("reading metadata of", &img, e))?.len();
                copy_sparse(&src, &tmp.0)?;
                let f = OpenOptions::new().write(true).open(&tmp.0).map_err(|e| io_err("opening", &tmp.0, e))?;
                let copied = f.metadata().map_err(|e| io_err("reading metadata of", &tmp.0, e))?.len();
                if copied > len {
                    return Err(BlockError::Backend(format!(
                        "snapshot {snapshot} is {copied} bytes, larger than volume {volume} ({len} bytes)"
                    )));
                }
                f.set_len(len).map_err(|e| io_err("resizing", &tmp.0, e))?;
                f.sync_all().map_err(|e| io_err("syncing", &tmp.0, e))?;
                std::fs::rename(&tmp.0, &img).map_err(|e| io_err("renaming over", &img, e))?;
                if let Ok(d) = File::open(&inner.dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            })
            .await
    }

    async fn snapshot_exists(&self, volume: &str, snapshot: &str) -> Result<bool, BlockError> {
        util::validate_name("volume", volume)?;
        util::validate_name("snapshot", snapshot)?;
        let p = self.inner.snap(volume, snapshot);
        tokio::fs::try_exists(&p).await.map_err(|e| io_err("checking", &p, e))
    }

    async fn snapshots(&self) -> Result<Vec<(String, String)>, BlockError> {
        let dir = self.dir().to_path_buf();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io_err("listing", &dir, e))?;
            let file = e.file_name().to_string_lossy().to_string();
            if let Some(stem) = file.strip_suffix(".snap").filter(|n| !n.starts_with('.'))
                && let Some((v, s)) = stem.split_once('@')
            {
                out.push((v.to_string(), s.to_string()));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, name: &str) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let owned = name.to_owned();
        self.inner
            .locked(Mode::Exclusive, move |inner| {
                let img = inner.img(&owned);
                if img.exists() {
                    let state = inner.read_state(&owned)?;
                    let watchers: Vec<ClientId> = state.current().map(|w| w.client.clone()).collect();
                    if !watchers.is_empty() {
                        return Err(BlockError::Busy { name: owned, watchers });
                    }
                    Inner::remove_if_present(&img)?;
                }
                Inner::remove_if_present(&inner.state_path(&owned))
            })
            .await
    }
}

/// A client of a local volume (what the host holds for one attachment).
/// Dropping it without [`OpenClient::close`] leaves its watcher registered:
/// that is the zombie, which only `fence` can cut off.
#[derive(Debug)]
pub struct LocalClient {
    inner: Arc<Inner>,
    name: String,
    id: ClientId,
    generation: u64,
}

impl LocalClient {
    /// The generation the volume had when this client opened it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The volume this client holds.
    pub fn volume(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl OpenClient for LocalClient {
    fn id(&self) -> ClientId {
        self.id.clone()
    }

    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let name = self.name.clone();
        let id = self.id.clone();
        let data = data.to_vec();
        // Shared lock for the check *and* the write: a fence (exclusive)
        // cannot slip between them.
        self.inner
            .locked(Mode::Shared, move |inner| {
                let img = inner.img(&name);
                if !img.exists() || !inner.read_state(&name)?.admits(&id) {
                    return Err(BlockError::Fenced(id));
                }
                let f = OpenOptions::new().write(true).open(&img).map_err(|e| io_err("opening", &img, e))?;
                let len = f.metadata().map_err(|e| io_err("reading metadata of", &img, e))?.len();
                let end = offset.checked_add(data.len() as u64);
                if end.is_none_or(|end| end > len) {
                    return Err(BlockError::Backend(format!(
                        "write of {} bytes at {offset} is beyond the end of volume {name} ({len} bytes)",
                        data.len()
                    )));
                }
                f.write_all_at(&data, offset).map_err(|e| io_err("writing", &img, e))
            })
            .await
    }

    async fn close(self: Box<Self>) -> Result<(), BlockError> {
        let name = self.name.clone();
        let id = self.id.clone();
        self.inner.locked(Mode::Exclusive, move |inner| inner.remove_watcher(&name, &id)).await
    }
}
