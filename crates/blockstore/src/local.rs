//! `local` backend: volumes are raw image files with RBD semantics kept in a
//! sidecar state file.
//!
//! Layout of the backend directory:
//! - `<name>.img`: the volume (a sparse raw file made by `qemu-img`);
//! - `<name>.state.json`: `{"generation": N, "watchers": [{"client": …, "generation": N}]}`;
//! - `.stratus-blockstore.lock`: the lock file that serialises every state
//!   change of the directory (see *Concurrency* below).
//!
//! Semantics (the ones the delete contract relies on, mirroring Ceph):
//! - `open` registers a watcher stamped with the volume's current generation;
//!   its [`ClientId`] is `local:<name>:<generation>:<uuid>`.
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
//! # Concurrency
//! Every state change, and every client write, runs under two locks: an
//! in-process [`tokio::sync::RwLock`] (so tasks wait asynchronously instead of
//! parking blocking threads) and an `flock` on the directory's lock file via
//! [`std::fs::File::lock`] (safe Rust, no extra dependency), which makes it
//! safe across processes (API, controller and agents may share the directory
//! on one host). Writes hold the lock *shared* for the check *and* the
//! `pwrite`, fences hold it *exclusive*: once `fence` returns, no write of the
//! fenced client can land, not even one that passed its check just before.
//! State files are replaced atomically (write to a temporary file, `fsync`,
//! `rename`), so a crash never leaves a torn state file.
//!
//! Limits: `flock` works on local file systems (on NFS, Linux emulates it with
//! POSIX locks, which is acceptable but slower); a process that opens the
//! `.img` file directly (e.g. a qemu given the raw path) bypasses all of this,
//! which is why the qemu driver must reach volumes through a per-attachment
//! NBD export that checks the generation. One lock per directory serialises
//! all volumes of a host; every critical section is a few small file
//! operations, so this is not a bottleneck at the scale of one host.

use crate::util::{self, TempPath};
use crate::{BlockBackend, BlockError, ClientId, OpenClient};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
}

impl VolumeState {
    /// Watchers allowed to do I/O now.
    fn current(&self) -> impl Iterator<Item = &Watcher> {
        self.watchers.iter().filter(move |w| w.generation == self.generation)
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
            std::fs::create_dir_all(&inner.dir).map_err(|e| io_err("creating", &inner.dir, e))?;
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(inner.dir.join(LOCK_FILE))
                .map_err(|e| io_err("opening the lock file", &inner.dir, e))?;
            match mode {
                Mode::Shared => lock.lock_shared(),
                Mode::Exclusive => lock.lock(),
            }
            .map_err(|e| io_err("locking", &inner.dir, e))?;
            // Closing `lock` (end of scope) releases the flock.
            f(&inner)
        })
        .await
        .map_err(|e| BlockError::Backend(format!("local backend task failed: {e}")))?
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
        Self { inner: Arc::new(Inner { dir, lock: RwLock::new(()) }) }
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
        let (id, generation) = self
            .inner
            .locked(Mode::Exclusive, move |inner| {
                not_found_if_missing(inner, &owned)?;
                let mut state = inner.read_state(&owned)?;
                let generation = state.generation;
                let id = ClientId(format!("local:{owned}:{generation}:{}", uuid::Uuid::new_v4().simple()));
                state.watchers.push(Watcher { client: id.clone(), generation });
                inner.write_state(&owned, &state)?;
                Ok((id, generation))
            })
            .await?;
        tracing::debug!(volume = name, client = %id.0, generation, "opened");
        Ok(LocalClient { inner: Arc::clone(&self.inner), name: name.to_owned(), id, generation })
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
        util::run(Path::new("qemu-img"), &args, &[], util::QEMU_IMG_TIMEOUT).await?.ok("creating the volume")?;
        self.install(name, tmp).await
    }

    async fn create_from_image(&self, name: &str, size_gb: u64, image: &Path) -> Result<(), BlockError> {
        util::validate_name("volume", name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        self.ensure_dir().await?;
        if self.exists_now(name).await? {
            return Ok(());
        }
        let tmp = self.tmp_image(name);
        match util::probe_image(image).await? {
            Some(info) => {
                if info.virtual_size > bytes {
                    return Err(BlockError::Backend(format!(
                        "image {} is {} bytes, larger than the {size_gb} GiB volume",
                        image.display(),
                        info.virtual_size
                    )));
                }
                util::convert_to_raw(image, &info.format, &tmp.0).await?;
            }
            None => {
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
            .locked(Mode::Exclusive, move |inner| {
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
    }

    async fn exists(&self, name: &str) -> Result<bool, BlockError> {
        util::validate_name("volume", name)?;
        self.exists_now(name).await
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
        let fenced = self
            .inner
            .locked(Mode::Exclusive, move |inner| {
                if !inner.img(&owned).exists() {
                    // Nothing to fence: a deleted volume refuses all I/O.
                    return Ok(None);
                }
                let mut state = inner.read_state(&owned)?;
                let before = state.watchers.len();
                state.watchers.retain(|w| w.client != target);
                if state.watchers.len() == before {
                    // Already fenced (or never opened): idempotent success.
                    return Ok(None);
                }
                state.generation += 1;
                let generation = state.generation;
                for w in &mut state.watchers {
                    w.generation = generation;
                }
                inner.write_state(&owned, &state)?;
                Ok(Some(generation))
            })
            .await?;
        if let Some(generation) = fenced {
            tracing::info!(volume = name, client = %client.0, generation, "fenced");
        }
        Ok(())
    }

    async fn unfence(&self, _client: &ClientId) -> Result<(), BlockError> {
        // A fenced local client's watcher entry is gone for good; the host
        // re-opens the volume and gets a new generation. Nothing to lift.
        Ok(())
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
        self.inner
            .locked(Mode::Exclusive, move |inner| {
                if !inner.img(&name).exists() {
                    return Ok(());
                }
                let mut state = inner.read_state(&name)?;
                let before = state.watchers.len();
                state.watchers.retain(|w| w.client != id);
                if state.watchers.len() != before {
                    inner.write_state(&name, &state)?;
                }
                Ok(())
            })
            .await
    }
}
