//! `rbd` backend: real Ceph through the `rbd` and `ceph` CLIs.
//!
//! Every call passes `--conf <ceph_conf>` (the admin keyring path is in the
//! `[client]` section of a conf made by the shared start script, and
//! `CEPH_KEYRING` in the environment is honoured too), uses `--format json`
//! where the CLI has it, and is killed (SIGKILL) after a deadline. Exit codes
//! are errnos: 2 ENOENT, 16 EBUSY, 17 EEXIST, 22 EINVAL.
//!
//! Client identity is the watcher address `IP:PORT/NONCE` that
//! `rbd status --format json` prints: it names exactly one client instance.
//! Fencing is `ceph osd blocklist add <addr> <expiry>` with a long expiry (30
//! days by default; Ceph's own default of one hour would let a zombie that
//! is still alive an hour later write again), then breaking any lock that
//! client still holds. Only addresses with a nonce are accepted: a bare IP
//! would fence every client of that host (on a single-node cluster, the
//! control plane itself).
//!
//! [`RbdBackend::open_client`] starts a real librbd client process (python3
//! with python3-rbd, running the embedded `holder.py`) that holds the image
//! open and writes on command: the simulated VM of the fake hypervisor
//! driver and of the tests.

mod client;

use crate::util::{self, CmdOutput, TempPath};
use crate::{BlockBackend, BlockError, ClientId, OpenClient, VolumeConnection};
use async_trait::async_trait;
pub use client::RbdClient;
use client::drain_stderr;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_types::image::DiskFormat;
use tokio::io::BufReader;
use tokio::process::Command;

/// The holder program, run with `python3 -c`.
const HOLDER_SCRIPT: &str = include_str!("../holder.py");

/// Default blocklist expiry of a fence: 30 days, far beyond any time a host
/// can stay partitioned unnoticed (Ceph's default is only 3600 s).
pub const DEFAULT_BLOCKLIST_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Default deadline of one CLI call.
pub const DEFAULT_CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadline of `rbd rm`: against a lock owner that stopped responding (a
/// frozen, unfenced client) librbd waits for the OSD to expire its watch
/// (`osd_client_watch_timeout`, 30 s; measured 27–28 s) before it breaks the
/// lock, so the generic 30 s deadline would kill it just before it succeeds.
/// Killing it would also leave the CLI's own watch behind for 30 s more.
pub const RM_TIMEOUT: Duration = Duration::from_secs(90);

/// The interpreter that has python3-rbd (on Debian, `/usr/bin/python3`; a
/// pyenv `python3` earlier in `PATH` usually lacks the Ceph modules).
pub const DEFAULT_PYTHON: &str = "/usr/bin/python3";

/// errno of a blocklisted client's I/O (ESHUTDOWN; librbd's EBLOCKLISTED).
const ESHUTDOWN: i32 = 108;

/// Ceph RBD block backend (one pool).
#[derive(Debug, Clone)]
pub struct RbdBackend {
    pool: String,
    ceph_conf: PathBuf,
    python: PathBuf,
    cli_timeout: Duration,
    blocklist_expiry: Duration,
    holder_linger: Duration,
}

/// One entry of `ceph osd blocklist ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistEntry {
    /// The fenced client instance (`IP:PORT/NONCE`).
    #[serde(rename = "addr")]
    pub client: ClientId,
    /// When Ceph drops the entry, as printed (`2026-12-27T11:55:33.923007+0000`).
    pub until: String,
}

impl BlocklistEntry {
    /// [`BlocklistEntry::until`] as Unix seconds (UTC), so a reconciler can
    /// check that a fence will outlive the zombie; `None` if unparsable.
    pub fn until_unix(&self) -> Option<i64> {
        parse_ceph_time(&self.until)
    }
}

/// An image in the pool's trash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashEntry {
    /// Image id (what `rbd trash rm` takes).
    pub id: String,
    /// Image name when it was moved.
    pub name: String,
}

/// One lock on an image (`rbd lock ls --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbdLock {
    /// Lock id (cookie), e.g. `auto 140348995160464` for the exclusive lock.
    pub id: String,
    /// Locker entity, e.g. `client.4150`.
    pub locker: String,
    /// Locker address (`IP:PORT/NONCE`).
    pub address: String,
}

#[derive(Deserialize)]
struct Status {
    watchers: Vec<StatusWatcher>,
}

#[derive(Deserialize)]
struct StatusWatcher {
    address: String,
}

#[derive(Deserialize)]
struct Info {
    size: u64,
}

impl RbdBackend {
    /// A backend on `pool` of the cluster described by `ceph_conf`.
    pub fn new(pool: String, ceph_conf: PathBuf) -> Self {
        Self {
            pool,
            ceph_conf,
            python: PathBuf::from(DEFAULT_PYTHON),
            cli_timeout: DEFAULT_CLI_TIMEOUT,
            blocklist_expiry: DEFAULT_BLOCKLIST_EXPIRY,
            holder_linger: Duration::ZERO,
        }
    }

    /// Use another python3 for holder processes (it must import `rados` and `rbd`).
    pub fn with_python(mut self, python: PathBuf) -> Self {
        self.python = python;
        self
    }

    /// Deadline of each CLI call (except `rbd rm`, see [`RM_TIMEOUT`]).
    pub fn with_cli_timeout(mut self, timeout: Duration) -> Self {
        self.cli_timeout = timeout;
        self
    }

    /// Expiry of the blocklist entries `fence` adds (default 30 days).
    pub fn with_blocklist_expiry(mut self, expiry: Duration) -> Self {
        self.blocklist_expiry = expiry;
        self
    }

    /// How long a holder process keeps its image open after its owner died
    /// without closing it (default 0: it closes when its stdin ends). A fake
    /// driver sets this to keep zombies alive after `kill -9` of its agent.
    pub fn with_holder_linger(mut self, linger: Duration) -> Self {
        self.holder_linger = linger;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// `pool/name`, after checking both (a name reaches a CLI argument).
    fn spec(&self, name: &str) -> Result<String, BlockError> {
        util::validate_name("pool", &self.pool)?;
        util::validate_name("volume", name)?;
        Ok(format!("{}/{name}", self.pool))
    }

    async fn cli(&self, program: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput, BlockError> {
        let mut full: Vec<OsString> = vec!["--conf".into(), self.ceph_conf.clone().into_os_string()];
        full.extend(args.iter().map(OsString::from));
        util::run(Path::new(program), &full, &[], timeout).await
    }

    async fn rbd(&self, args: &[&str]) -> Result<CmdOutput, BlockError> {
        self.cli("rbd", args, self.cli_timeout).await
    }

    async fn ceph(&self, args: &[&str]) -> Result<CmdOutput, BlockError> {
        let connect = self.cli_timeout.as_secs().max(1).to_string();
        let mut full = vec!["--connect-timeout", connect.as_str()];
        full.extend_from_slice(args);
        self.cli("ceph", &full, self.cli_timeout).await
    }

    /// Size of an image in bytes.
    pub async fn image_size(&self, name: &str) -> Result<u64, BlockError> {
        let spec = self.spec(name)?;
        let out = self.rbd(&["info", "--format", "json", &spec]).await?;
        match out.code {
            Some(0) => Ok(parse_json::<Info>(&out)?.size),
            Some(2) => Err(BlockError::NotFound(name.to_owned())),
            _ => Err(out.error("rbd info")),
        }
    }

    /// Images of the pool (`rbd ls`), outside the trash.
    pub async fn list(&self) -> Result<Vec<String>, BlockError> {
        util::validate_name("pool", &self.pool)?;
        let out = self.rbd(&["ls", "--format", "json", &self.pool]).await?.ok("rbd ls")?;
        parse_json(&out)
    }

    /// Remove the temporary images an import of `name` cut short left
    /// behind (`<name>.importing-*`: the process that imported died before
    /// its rename or its cleanup). Called before a new import and after a
    /// delete, so neither a retried build nor a deleted volume leaks one.
    async fn remove_import_leftovers(&self, name: &str) -> Result<(), BlockError> {
        let prefix = format!("{name}.importing-");
        for leftover in self.list().await?.into_iter().filter(|n| n.starts_with(&prefix)) {
            let spec = self.spec(&leftover)?;
            let out = self.cli("rbd", &["rm", "--no-progress", &spec], RM_TIMEOUT).await?;
            match out.code {
                Some(0 | 2) => tracing::info!(image = %leftover, "removed an import cut short"),
                _ => return Err(out.error("rbd rm")),
            }
        }
        Ok(())
    }

    /// Locks on an image (`rbd lock ls`).
    pub async fn locks(&self, name: &str) -> Result<Vec<RbdLock>, BlockError> {
        let spec = self.spec(name)?;
        let out = self.rbd(&["lock", "ls", "--format", "json", &spec]).await?;
        match out.code {
            Some(0) => parse_json(&out),
            Some(2) => Err(BlockError::NotFound(name.to_owned())),
            _ => Err(out.error("rbd lock ls")),
        }
    }

    /// The blocklisted client instances of the cluster.
    pub async fn blocklist(&self) -> Result<Vec<ClientId>, BlockError> {
        Ok(self.blocklist_entries().await?.into_iter().map(|e| e.client).collect())
    }

    /// The blocklist with expiry times. The CLI prints, after a newline, the
    /// address blocklist and then the range blocklist (new in 16.2) as two
    /// JSON arrays back to back; only the first is read.
    pub async fn blocklist_entries(&self) -> Result<Vec<BlocklistEntry>, BlockError> {
        let out = self.ceph(&["osd", "blocklist", "ls", "--format", "json"]).await?.ok("ceph osd blocklist ls")?;
        let first = serde_json::Deserializer::from_str(&out.stdout).into_iter::<Vec<BlocklistEntry>>().next();
        match first {
            Some(Ok(entries)) => Ok(entries),
            Some(Err(e)) => Err(BlockError::Backend(format!("`{}` printed unexpected JSON: {e}", out.cmdline))),
            None => Err(BlockError::Backend(format!("`{}` printed nothing", out.cmdline))),
        }
    }

    /// Move an image to the pool's trash (the fallback when `rbd rm` cannot
    /// finish; a purge reconciler removes it later). Absent is success.
    ///
    /// Ceph itself lets a *watched* image be moved to the trash (and the
    /// client keeps writing to it), so this refuses with
    /// [`BlockError::Busy`] while the image has watchers: fence first.
    pub async fn trash_move(&self, name: &str) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        match self.watchers(name).await {
            Ok(w) if !w.is_empty() => return Err(BlockError::Busy { name: name.to_owned(), watchers: w }),
            Ok(_) => {}
            Err(BlockError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let out = self.rbd(&["trash", "mv", &spec]).await?;
        match out.code {
            Some(0 | 2) => Ok(()),
            _ => Err(out.error("rbd trash mv")),
        }
    }

    /// The pool's trash.
    pub async fn trash_list(&self) -> Result<Vec<TrashEntry>, BlockError> {
        util::validate_name("pool", &self.pool)?;
        let out = self.rbd(&["trash", "ls", "--format", "json", &self.pool]).await?.ok("rbd trash ls")?;
        parse_json(&out)
    }

    /// Remove every expired image from the pool's trash and return what is
    /// still there. An image that still has watchers stays (the CLI exits 16,
    /// which is not an error here): the caller retries and shows the rest to
    /// admins.
    pub async fn trash_purge(&self) -> Result<Vec<TrashEntry>, BlockError> {
        util::validate_name("pool", &self.pool)?;
        let out = self.cli("rbd", &["trash", "purge", "--no-progress", &self.pool], RM_TIMEOUT).await?;
        match out.code {
            Some(0) => {}
            Some(16) => tracing::warn!(pool = %self.pool, stderr = %out.stderr.trim(), "trash purge left busy images"),
            _ => return Err(out.error("rbd trash purge")),
        }
        self.trash_list().await
    }

    /// Like [`BlockBackend::open`], returning the concrete client (its
    /// process id, kill switch and zombie behaviour).
    pub async fn open_client(&self, name: &str) -> Result<RbdClient, BlockError> {
        self.spec(name)?;
        let linger = format!("{:.3}", self.holder_linger.as_secs_f64());
        // Names this process and no other, so an owner that restarted can
        // find it again and never signals a process by a reused pid.
        let marker = format!("stratus-holder-{}", uuid::Uuid::new_v4());
        let mut child = Command::new(&self.python)
            .arg("-c")
            .arg(HOLDER_SCRIPT)
            .arg(&self.pool)
            .arg(name)
            .arg(&linger)
            .arg(&marker)
            .env("CEPH_CONF", &self.ceph_conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BlockError::Backend(format!("cannot start the holder ({}): {e}", self.python.display())))?;
        let pid = child.id();
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(drain_stderr(stderr, Arc::clone(&stderr_tail)));
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.start_kill();
            return Err(BlockError::Backend("holder started without pipes".into()));
        };
        let mut client = RbdClient {
            id: ClientId(String::new()),
            image: name.to_owned(),
            pid,
            marker,
            child: Some(child),
            stdin: Some(stdin),
            stdout: Some(BufReader::new(stdout)),
            stderr_tail,
            io_timeout: self.cli_timeout,
            broken: None,
            kill_on_drop: false,
        };
        // The holder connects with a 15 s timeout of its own; allow for that.
        let ready = tokio::time::timeout(self.cli_timeout + Duration::from_secs(15), client.read_line()).await;
        let line = match ready {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                client.kill();
                return Err(e);
            }
            Err(_) => {
                client.kill();
                return Err(BlockError::Backend(format!("holder for {name} did not open it in time; killed")));
            }
        };
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("READY"), Some(addr), Some(_instance)) if client_addr(&ClientId(addr.to_owned())).is_ok() => {
                client.id = ClientId(addr.to_owned());
                tracing::debug!(image = name, client = addr, pid, "holder opened the image");
                Ok(client)
            }
            (Some("ERROR"), _, Some(kind)) if kind.starts_with("ImageNotFound") => {
                client.kill();
                Err(BlockError::NotFound(name.to_owned()))
            }
            _ => {
                client.kill();
                Err(BlockError::Backend(format!(
                    "holder for {name} failed to open it: {line} {}",
                    client.stderr_tail()
                )))
            }
        }
    }

    /// Break every lock of `name` held by client `addr` (after it was
    /// blocklisted, so it cannot take the lock again). Absent image: done.
    async fn break_locks(&self, name: &str, addr: &str) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        for attempt in 0..3 {
            let held: Vec<RbdLock> = match self.locks(name).await {
                Ok(locks) => locks.into_iter().filter(|l| l.address == addr).collect(),
                Err(BlockError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if held.is_empty() {
                return Ok(());
            }
            for lock in held {
                let out = self.rbd(&["lock", "rm", &spec, &lock.id, &lock.locker]).await?;
                // `lock rm` has been seen to exit 2 ("releasing lock failed")
                // after doing its job; the re-listing decides.
                if !matches!(out.code, Some(0 | 2)) {
                    return Err(out.error("rbd lock rm"));
                }
                tracing::info!(image = name, lock = %lock.id, locker = %lock.locker, attempt, "broke the lock of a fenced client");
            }
        }
        match self.locks(name).await {
            Ok(locks) if locks.iter().any(|l| l.address == addr) => {
                Err(BlockError::Backend(format!("cannot break the lock of {addr} on {name}")))
            }
            Ok(_) | Err(BlockError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl BlockBackend for RbdBackend {
    async fn delete_deferred(&self, name: &str) -> Result<(), BlockError> {
        // `rbd trash mv`, refused while the image is watched.
        self.trash_move(name).await
    }

    async fn purge_deferred(&self) -> Result<usize, BlockError> {
        Ok(self.trash_purge().await?.len())
    }

    fn kind(&self) -> &'static str {
        "rbd"
    }

    async fn create(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        util::gib_to_bytes(size_gb)?;
        let size = format!("{size_gb}G");
        let out = self.rbd(&["create", "--size", &size, &spec]).await?;
        match out.code {
            Some(0 | 17) => Ok(()),
            _ => Err(out.error("rbd create")),
        }
    }

    async fn create_from_image(
        &self,
        name: &str,
        size_gb: u64,
        image: &Path,
        disk_format: DiskFormat,
    ) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        if self.exists(name).await? {
            return Ok(());
        }
        // `rbd import` copies bytes; anything but raw is converted first
        // into a temporary raw file, removed when this guard drops.
        let mut _converted_guard = None;
        let mut source = image.to_path_buf();
        match util::inspect_image(image, disk_format).await? {
            util::ImageSource::Convert { virtual_size, .. } if virtual_size > bytes => {
                return Err(BlockError::ImageRefused(format!(
                    "Image virtual size is {virtual_size} bytes, larger than the {size_gb} GiB volume."
                )));
            }
            util::ImageSource::Convert { format, .. } if format != "raw" => {
                let tmp = TempPath(std::env::temp_dir().join(format!("stratus-import-{}.raw", util::random_suffix())));
                util::convert_to_raw(image, format, &tmp.0).await?;
                source = tmp.0.clone();
                _converted_guard = Some(tmp);
            }
            _ => {}
        }
        // Import under a temporary name and rename, so a crash mid-import
        // never leaves a partial image under the real name (a reconciler can
        // remove `*.importing-*` leftovers).
        self.remove_import_leftovers(name).await?;
        let tmp_name = format!("{name}.importing-{}", util::random_suffix());
        let tmp_spec = self.spec(&tmp_name)?;
        let src = source.to_string_lossy().into_owned();
        let result = async {
            self.cli("rbd", &["import", "--no-progress", &src, &tmp_spec], util::QEMU_IMG_TIMEOUT)
                .await?
                .ok("rbd import")?;
            let imported = self.image_size(&tmp_name).await?;
            if imported > bytes {
                return Err(BlockError::Backend(format!(
                    "image {} is {imported} bytes, larger than the {size_gb} GiB volume",
                    image.display()
                )));
            }
            if imported < bytes {
                let size = format!("{size_gb}G");
                self.rbd(&["resize", "--no-progress", "--size", &size, &tmp_spec]).await?.ok("rbd resize")?;
            }
            let out = self.rbd(&["rename", &tmp_spec, &spec]).await?;
            match out.code {
                Some(0) => Ok(true),
                Some(17) => Ok(false), // created concurrently: theirs wins
                _ => Err(out.error("rbd rename")),
            }
        }
        .await;
        if !matches!(result, Ok(true)) {
            let out = self.cli("rbd", &["rm", "--no-progress", &tmp_spec], RM_TIMEOUT).await;
            if let Ok(out) = out
                && !matches!(out.code, Some(0 | 2))
            {
                tracing::warn!(image = %tmp_spec, error = %out.error("rbd rm"), "cannot remove a temporary import");
            }
        }
        result.map(|_| ())
    }

    async fn extend(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        let current = self.image_size(name).await?;
        if bytes == current {
            // `rbd resize` to the same size fails (EINVAL); already done.
            return Ok(());
        }
        if bytes < current {
            return Err(BlockError::Backend(format!(
                "volume {name} is {current} bytes; refusing to shrink it to {size_gb} GiB"
            )));
        }
        let size = format!("{size_gb}G");
        let out = self.rbd(&["resize", "--no-progress", "--size", &size, &spec]).await?;
        match out.code {
            Some(0) => Ok(()),
            Some(2) => Err(BlockError::NotFound(name.to_owned())),
            _ => Err(out.error("rbd resize")),
        }
    }

    async fn exists(&self, name: &str) -> Result<bool, BlockError> {
        match self.image_size(name).await {
            Ok(_) => Ok(true),
            Err(BlockError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn volumes(&self) -> Result<Vec<String>, BlockError> {
        self.list().await
    }

    async fn fenced(&self) -> Result<Vec<ClientId>, BlockError> {
        self.blocklist().await
    }

    async fn watchers(&self, name: &str) -> Result<Vec<ClientId>, BlockError> {
        let spec = self.spec(name)?;
        let out = self.rbd(&["status", "--format", "json", &spec]).await?;
        match out.code {
            Some(0) => Ok(parse_json::<Status>(&out)?.watchers.into_iter().map(|w| ClientId(w.address)).collect()),
            Some(2) => Err(BlockError::NotFound(name.to_owned())),
            _ => Err(out.error("rbd status")),
        }
    }

    async fn open(&self, name: &str) -> Result<Box<dyn OpenClient>, BlockError> {
        Ok(Box::new(self.open_client(name).await?))
    }

    /// The VM's own librbd (qemu's rbd driver) opens the image: the Ceph
    /// client holding it IS the VM, so fencing it blocklists the VM itself.
    /// Every open is a new client instance (new nonce), so a fenced zombie
    /// can never come back as a later attachment. The caller learns the
    /// VM's client identity with [`crate::wait_for_new_watcher`].
    async fn connect(&self, name: &str, attachment: &str) -> Result<VolumeConnection, BlockError> {
        self.spec(name)?;
        // Fail now, not in qemu, when the image is missing.
        self.image_size(name).await?;
        tracing::debug!(image = name, attachment, "connection handed out");
        Ok(VolumeConnection::Rbd { pool: self.pool.clone(), image: name.to_owned(), ceph_conf: self.ceph_conf.clone() })
    }

    /// Nothing to undo: the VM closed the image itself (its watcher is gone).
    async fn disconnect(&self, name: &str, conn: &VolumeConnection) -> Result<(), BlockError> {
        let _ = (name, conn);
        Ok(())
    }

    async fn fence(&self, name: &str, client: &ClientId) -> Result<(), BlockError> {
        self.spec(name)?;
        let addr = client_addr(client)?;
        let expiry = self.blocklist_expiry.as_secs().max(1).to_string();
        // Blocklist first: once it returns, the client's I/O fails with 108
        // and it can no longer (re)take the lock; breaking the lock before
        // that would let a live client grab it back.
        self.ceph(&["osd", "blocklist", "add", addr, &expiry]).await?.ok("ceph osd blocklist add")?;
        tracing::info!(image = name, client = addr, expiry_s = %expiry, "blocklisted");
        self.break_locks(name, addr).await
    }

    async fn unfence(&self, client: &ClientId) -> Result<(), BlockError> {
        let addr = client_addr(client)?;
        // Exits 0 also when the entry is absent ("isn't blocklisted").
        self.ceph(&["osd", "blocklist", "rm", addr]).await?.ok("ceph osd blocklist rm")?;
        tracing::info!(client = addr, "un-blocklisted");
        Ok(())
    }

    /// `rbd snap create` (atomic in Ceph; an existing snapshot is success).
    /// The snapshot is never protected nor cloned: a volume made from it is
    /// a full copy, so the snapshot and its volume can always be removed.
    async fn snapshot_create(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        let spec = format!("{}@{}", self.spec(volume)?, snap_name(snapshot)?);
        let out = self.rbd(&["snap", "create", "--no-progress", &spec]).await?;
        match out.code {
            Some(0 | 17) => Ok(()),
            Some(2) => Err(BlockError::NotFound(volume.to_owned())),
            _ => Err(out.error("rbd snap create")),
        }
    }

    async fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        let spec = format!("{}@{}", self.spec(volume)?, snap_name(snapshot)?);
        let out = self.rbd(&["snap", "rm", "--no-progress", &spec]).await?;
        match out.code {
            Some(0 | 2) => Ok(()),
            _ => Err(out.error("rbd snap rm")),
        }
    }

    /// `rbd cp` of the snapshot under a temporary name, grown and renamed
    /// into place (a copy cut short is a `*.importing-*` leftover, removed
    /// by the next attempt or the volume's delete).
    async fn create_from_snapshot(
        &self,
        name: &str,
        size_gb: u64,
        volume: &str,
        snapshot: &str,
    ) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        let bytes = util::gib_to_bytes(size_gb)?;
        let src = format!("{}@{}", self.spec(volume)?, snap_name(snapshot)?);
        if self.exists(name).await? {
            return Ok(());
        }
        self.remove_import_leftovers(name).await?;
        let tmp_name = format!("{name}.importing-{}", util::random_suffix());
        let tmp_spec = self.spec(&tmp_name)?;
        let result = async {
            let out = self.cli("rbd", &["cp", "--no-progress", &src, &tmp_spec], util::QEMU_IMG_TIMEOUT).await?;
            match out.code {
                Some(0) => {}
                Some(2) => return Err(BlockError::NotFound(format!("{volume}@{snapshot}"))),
                _ => return Err(out.error("rbd cp")),
            }
            let copied = self.image_size(&tmp_name).await?;
            if copied > bytes {
                return Err(BlockError::Backend(format!(
                    "snapshot {snapshot} is {copied} bytes, larger than the {size_gb} GiB volume"
                )));
            }
            if copied < bytes {
                let size = format!("{size_gb}G");
                self.rbd(&["resize", "--no-progress", "--size", &size, &tmp_spec]).await?.ok("rbd resize")?;
            }
            let out = self.rbd(&["rename", &tmp_spec, &spec]).await?;
            match out.code {
                Some(0) => Ok(true),
                Some(17) => Ok(false),
                _ => Err(out.error("rbd rename")),
            }
        }
        .await;
        if !matches!(result, Ok(true)) {
            let out = self.cli("rbd", &["rm", "--no-progress", &tmp_spec], RM_TIMEOUT).await;
            if let Ok(out) = out
                && !matches!(out.code, Some(0 | 2))
            {
                tracing::warn!(image = %tmp_spec, error = %out.error("rbd rm"), "cannot remove a temporary copy");
            }
        }
        result.map(|_| ())
    }

    /// `rbd snap rollback` (rewrites the image from the snapshot; a rerun
    /// after a crash finishes it). Refused while the image has watchers: a
    /// client with the image open, or one fenced but not yet gone, would
    /// have its disk change under it.
    async fn snapshot_revert(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        let spec = format!("{}@{}", self.spec(volume)?, snap_name(snapshot)?);
        let watchers = self.watchers(volume).await?;
        if !watchers.is_empty() {
            return Err(BlockError::Busy { name: volume.to_owned(), watchers });
        }
        let out = self.cli("rbd", &["snap", "rollback", "--no-progress", &spec], util::QEMU_IMG_TIMEOUT).await?;
        match out.code {
            Some(0) => Ok(()),
            Some(2) => Err(BlockError::NotFound(format!("{volume}@{snapshot}"))),
            _ => Err(out.error("rbd snap rollback")),
        }
    }

    async fn snapshot_exists(&self, volume: &str, snapshot: &str) -> Result<bool, BlockError> {
        let spec = self.spec(volume)?;
        let name = snap_name(snapshot)?;
        let ls = self.rbd(&["snap", "ls", "--format", "json", &spec]).await?;
        match ls.code {
            Some(0) => Ok(parse_json::<Vec<SnapEntry>>(&ls)?.iter().any(|s| s.name == name)),
            Some(2) => Ok(false),
            _ => Err(ls.error("rbd snap ls")),
        }
    }

    async fn snapshots(&self) -> Result<Vec<(String, String)>, BlockError> {
        type Snap = SnapEntry;
        let mut out = Vec::new();
        for image in self.list().await? {
            let spec = self.spec(&image)?;
            let ls = self.rbd(&["snap", "ls", "--format", "json", &spec]).await?;
            match ls.code {
                Some(0) => {
                    for s in parse_json::<Vec<Snap>>(&ls)? {
                        out.push((image.clone(), s.name));
                    }
                }
                Some(2) => {}
                _ => return Err(ls.error("rbd snap ls")),
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, name: &str) -> Result<(), BlockError> {
        let spec = self.spec(name)?;
        let out = self.cli("rbd", &["rm", "--no-progress", &spec], RM_TIMEOUT).await?;
        match out.code {
            Some(0 | 2) => {
                // Its own removal succeeded: a leftover that cannot go now
                // is left for the audit rather than failing the delete.
                if let Err(e) = self.remove_import_leftovers(name).await {
                    tracing::warn!(image = name, error = %e, "cannot remove leftovers of an import cut short");
                }
                Ok(())
            }
            Some(16) => {
                // "image still has watchers" (or a lock still held): say by whom.
                let watchers = match self.watchers(name).await {
                    Ok(w) => w,
                    Err(BlockError::NotFound(_)) => return Ok(()),
                    Err(e) => {
                        tracing::warn!(image = name, error = %e, "cannot list the watchers of a busy image");
                        vec![]
                    }
                };
                Err(BlockError::Busy { name: name.to_owned(), watchers })
            }
            _ => Err(out.error("rbd rm")),
        }
    }
}

/// One entry of `rbd snap ls --format json`.
#[derive(serde::Deserialize)]
struct SnapEntry {
    name: String,
}

/// A snapshot name checked like a volume name (no `@`, `/` or option).
fn snap_name(snapshot: &str) -> Result<&str, BlockError> {
    util::validate_name("snapshot", snapshot)?;
    Ok(snapshot)
}

/// The `IP:PORT/NONCE` address of a client, refusing anything that would
/// fence more than one client instance (a bare IP or a CIDR range).
pub fn client_addr(client: &ClientId) -> Result<&str, BlockError> {
    let addr = client.0.as_str();
    let valid = addr.rsplit_once('/').is_some_and(|(host, nonce)| {
        let ip_ok = host.rsplit_once(':').is_some_and(|(ip, port)| {
            let v6 = ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']'));
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && match v6 {
                    Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                    None => ip.parse::<std::net::Ipv4Addr>().is_ok(),
                }
        });
        ip_ok && !nonce.is_empty() && nonce.bytes().all(|b| b.is_ascii_digit()) && nonce.bytes().any(|b| b != b'0')
    });
    if valid {
        Ok(addr)
    } else {
        Err(BlockError::Backend(format!(
            "{addr:?} is not a Ceph client instance address (IP:PORT/NONCE); refusing to fence it"
        )))
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(out: &CmdOutput) -> Result<T, BlockError> {
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| BlockError::Backend(format!("`{}` printed unexpected JSON ({e}): {}", out.cmdline, out.stdout)))
}

/// Parse Ceph's `2026-12-27T11:55:33.923007+0000` as Unix seconds.
fn parse_ceph_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let hms = rest.get(..8)?;
    let mut t = hms.splitn(3, ':').map(str::parse::<i64>);
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Offset: the last 5 characters, `+HHMM` / `-HHMM`.
    let off = rest.get(rest.len().checked_sub(5)?..)?;
    let sign = match off.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off_s = sign * (off.get(1..3)?.parse::<i64>().ok()? * 3600 + off.get(3..5)?.parse::<i64>().ok()? * 60);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss - off_s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceph_time() {
        assert_eq!(parse_ceph_time("1970-01-01T00:00:00.000000+0000"), Some(0));
        assert_eq!(parse_ceph_time("2026-12-27T11:55:33.923007+0000"), Some(1_798_372_533));
        assert_eq!(parse_ceph_time("2026-12-27T12:55:33.923007+0100"), Some(1_798_372_533));
        assert_eq!(parse_ceph_time("garbage"), None);
    }

    #[test]
    fn addresses() {
        assert!(client_addr(&ClientId("127.0.0.1:0/1137572780".into())).is_ok());
        assert!(client_addr(&ClientId("[::1]:0/42".into())).is_ok());
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0/0",
            "10.0.0.0/24",
            "127.0.0.1:0/",
            "local:v:0:abc",
            "a b:0/1",
            "fe80::1/64",
            "[fe80::1]/64",
        ] {
            assert!(client_addr(&ClientId(bad.into())).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn blocklist_json_two_arrays() {
        let out = "\n[{\"addr\":\"127.0.0.1:0/1137572780\",\"until\":\"2026-11-27T10:15:48.682786+0000\"}][]";
        let first = serde_json::Deserializer::from_str(out).into_iter::<Vec<BlocklistEntry>>().next();
        let Some(Ok(entries)) = first else { panic!("not parsed: {first:?}") };
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].client, ClientId("127.0.0.1:0/1137572780".into()));
    }
}
