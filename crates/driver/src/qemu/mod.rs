//! The `qemu` driver: every server is a real `qemu-system-x86_64` process.
//!
//! Layout: one directory per VM under the driver's state directory, holding
//! `vm.json` (the [`record::VmRecord`]), `qemu.pid`,
//! `console.log` (the serial console, appended across restarts),
//! `qemu.log` (qemu's own stderr), `cmdline` (the command line used, for the
//! operator), the local root disk and copies of the boot kernel/ramdisk.
//! QMP sockets live in a short per-state-directory path under the temp
//! directory ([`default_socket_dir`]), since a socket path must fit 108 bytes.
//!
//! Why this shape:
//! - The VM is a process that outlives the agent, exactly the zombie the
//!   delete contract is about; the agent finds it again by its pidfile *and*
//!   the QMP socket named on its command line, never by a pid alone.
//! - Volumes are opened by qemu's own block drivers (librbd for `rbd`, its
//!   NBD client for `local`), so the storage client that fencing targets is
//!   the VM itself.
//! - Destroy escalates QMP `quit` → SIGTERM → SIGKILL, each with a deadline,
//!   and reports success only once the process is gone: a VM reported
//!   destroyed can no longer write anywhere.

mod cmdline;
mod process;
mod record;
pub mod watchdog;

pub use record::{Intent, VmRecord, VolumeSlot};

use crate::{Driver, DriverError, VmInfo, VmSpec, VmVolume};
use async_trait::async_trait;
use process::Sig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stratus_imageformat::{Format, qemu_img};
use stratus_qmp::{Qmp, QmpError};
use stratus_types::agent::VolumeConnection;
use stratus_types::{AttachmentId, ImageId, PowerState, ServerId};
use tokio::time::Instant;
use tracing::{info, warn};

/// Which accelerator qemu uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (needs /dev/kvm and vmx/svm).
    Kvm,
    /// Software emulation: slow, but works everywhere.
    Tcg,
}

impl Accel {
    /// KVM if this host can run KVM guests, else TCG. `/dev/kvm` alone is
    /// not enough (a nested "kvm-pvm" device exists without vmx/svm and does
    /// not run stock guests), so the CPU flags decide too.
    pub fn detect() -> Self {
        let kvm_dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
        let cpu_flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let vt = cpu_flags.lines().filter(|l| l.starts_with("flags")).any(|l| {
            let mut words = l.split_whitespace();
            words.any(|w| w == "vmx" || w == "svm")
        });
        if kvm_dev && vt { Self::Kvm } else { Self::Tcg }
    }
}

/// Settings of the qemu driver.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Where VM directories live (per host).
    pub state_dir: PathBuf,
    /// Where the VMs' QMP sockets live: a short path, because a Unix socket
    /// path must fit in 108 bytes and state directories can be deep.
    pub socket_dir: PathBuf,
    /// The image store (one file per image id), read to build root disks and
    /// to copy direct-boot kernels and ramdisks.
    pub image_dir: PathBuf,
    /// `qemu-system-x86_64`.
    pub qemu_binary: PathBuf,
    /// `qemu-img`.
    pub qemu_img: PathBuf,
    /// Accelerator; `None`: detect.
    pub accel: Option<Accel>,
    /// TCG translation cache MiB (smaller saves RSS; 32 boots the tiny guest as fast).
    pub tcg_tb_size_mb: u32,
    /// Smallest RAM a VM gets (a kernel does not boot below ~128 MiB).
    pub min_ram_mb: i64,
    /// Hot-plug ports for volumes per VM.
    pub volume_ports: u8,
    /// Deadline of each QMP command.
    pub qmp_timeout: Duration,
    /// How long a starting VM may take until QMP answers.
    pub start_timeout: Duration,
    /// How long a clean shutdown (ACPI power button) may take before the
    /// VM is stopped hard (Nova's `shutdown_timeout`).
    pub clean_shutdown_timeout: Duration,
    /// Deadline of each destroy step (QMP quit, SIGTERM, SIGKILL).
    pub destroy_step_timeout: Duration,
    /// How long a hot-unplug may wait for the guest to release the device.
    pub unplug_timeout: Duration,
}

impl QemuConfig {
    /// Defaults for VMs under `state_dir` booting images from `image_dir`.
    pub fn new(state_dir: PathBuf, image_dir: PathBuf) -> Self {
        Self {
            socket_dir: default_socket_dir(&state_dir),
            state_dir,
            image_dir,
            qemu_binary: "qemu-system-x86_64".into(),
            qemu_img: "qemu-img".into(),
            accel: None,
            tcg_tb_size_mb: 32,
            min_ram_mb: 128,
            volume_ports: 8,
            qmp_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(30),
            clean_shutdown_timeout: Duration::from_secs(3),
            destroy_step_timeout: Duration::from_secs(3),
            unplug_timeout: Duration::from_secs(10),
        }
    }
}

/// A short directory for the QMP sockets of the VMs under `state_dir`,
/// unique to it (a stable FNV-1a hash of the path, so an upgraded agent finds
/// the sockets of VMs an older one started).
pub fn default_socket_dir(state_dir: &Path) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir().join(format!("stratus-qmp-{h:016x}"))
}

/// Paths of one VM's directory.
#[derive(Clone, Debug)]
pub struct VmPaths {
    /// The directory.
    pub dir: PathBuf,
    /// `vm.json`.
    pub record: PathBuf,
    /// QMP socket.
    pub qmp: PathBuf,
    /// qemu's pidfile.
    pub pidfile: PathBuf,
    /// Serial console log.
    pub console: PathBuf,
    /// qemu's stderr.
    pub log: PathBuf,
    /// The command line last used.
    pub cmdline: PathBuf,
    /// Saved state of a suspended VM.
    pub managed_save: PathBuf,
}

impl VmPaths {
    fn new(state_dir: &Path, socket_dir: &Path, id: &ServerId) -> Self {
        let dir = state_dir.join(id.to_string());
        Self {
            record: dir.join("vm.json"),
            qmp: socket_dir.join(format!("{id}.qmp")),
            pidfile: dir.join("qemu.pid"),
            console: dir.join("console.log"),
            log: dir.join("qemu.log"),
            cmdline: dir.join("cmdline"),
            managed_save: dir.join("managed.sav"),
            dir,
        }
    }
}

/// The qemu hypervisor driver.
#[derive(Clone)]
pub struct QemuDriver {
    cfg: Arc<QemuConfig>,
    accel: Accel,
    locks: Arc<std::sync::Mutex<HashMap<ServerId, Arc<tokio::sync::Mutex<()>>>>>,
}

fn hv(msg: impl Into<String>) -> DriverError {
    DriverError::Hypervisor(msg.into())
}

fn io(what: &str, e: std::io::Error) -> DriverError {
    hv(format!("{what}: {e}"))
}

impl QemuDriver {
    /// A driver keeping VMs under `cfg.state_dir`. Logs the VMs it finds
    /// still running from an earlier agent (they are managed from now on).
    pub fn new(cfg: QemuConfig) -> Result<Self, DriverError> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| io("creating the VM state directory", e))?;
        std::fs::create_dir_all(&cfg.socket_dir).map_err(|e| io("creating the QMP socket directory", e))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            let private = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(&cfg.socket_dir, private)
                .map_err(|e| io("securing the QMP socket directory", e))?;
        }
        let accel = cfg.accel.unwrap_or_else(Accel::detect);
        let me = Self { cfg: Arc::new(cfg), accel, locks: Arc::default() };
        let (mut running, mut stopped) = (0, 0);
        for (id, _) in me.records() {
            let p = me.paths(&id);
            if process::live_pid(&p.pidfile, &p.qmp).is_some() {
                running += 1;
            } else {
                stopped += 1;
            }
        }
        info!(accel = ?accel, running, stopped, dir = %me.cfg.state_dir.display(), "qemu driver: VMs found at start");
        Ok(me)
    }

    /// The accelerator in use.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The pid of a server's qemu, if it runs (tests and operators use it to
    /// signal a VM directly).
    pub fn pid(&self, id: &ServerId) -> Option<u32> {
        self.find_pid(&self.paths(id))
    }

    /// Paths of a server's VM directory.
    pub fn paths(&self, id: &ServerId) -> VmPaths {
        VmPaths::new(&self.cfg.state_dir, &self.cfg.socket_dir, id)
    }

    fn lock(&self, id: &ServerId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(*id).or_default().clone()
    }

    fn records(&self) -> Vec<(ServerId, VmRecord)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.cfg.state_dir).into_iter().flatten().flatten() {
            let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<ServerId>().ok()) else { continue };
            match VmRecord::load(&e.path().join("vm.json")) {
                Ok(r) => out.push((id, r)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    // A spawn that died before writing its record: a process may still run.
                    if self.find_pid(&self.paths(&id)).is_some() {
                        warn!(server = %id, "qemu runs without a record (spawn interrupted); it will be destroyed when reaped");
                    }
                }
                Err(err) => warn!(server = %id, error = %err, "unreadable VM record"),
            }
        }
        out
    }

    /// The VM's pid: the pidfile if it names a live qemu on our socket, else
    /// a scan of /proc for a process naming the socket (qemu may have been
    /// started and not yet written its pidfile when a spawn was interrupted).
    fn find_pid(&self, p: &VmPaths) -> Option<u32> {
        if let Some(pid) = process::live_pid(&p.pidfile, &p.qmp) {
            return Some(pid);
        }
        let entries = std::fs::read_dir("/proc").ok()?;
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
            .find(|pid| process::is_our_process(*pid, &p.qmp))
    }

    async fn qmp(&self, p: &VmPaths) -> Result<Qmp, DriverError> {
        Qmp::connect(&p.qmp, self.cfg.qmp_timeout).await.map_err(|e| hv(format!("QMP: {e}")))
    }

    fn load(&self, id: &ServerId) -> Result<VmRecord, DriverError> {
        VmRecord::load(&self.paths(id).record).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DriverError::NotFound(*id),
            _ => io("reading the VM record", e),
        })
    }

    fn save(&self, rec: &VmRecord) -> Result<(), DriverError> {
        rec.save(&self.paths(&rec.server_id).record).map_err(|e| io("writing the VM record", e))
    }

    fn image_file(&self, id: &ImageId) -> PathBuf {
        self.cfg.image_dir.join(id.to_string())
    }

    /// Copy a boot kernel or ramdisk image next to the VM, so deleting the
    /// image later does not break the VM's next start.
    async fn copy_boot_file(&self, image: &ImageId, to: &Path) -> Result<PathBuf, DriverError> {
        let from = self.image_file(image);
        if std::fs::hard_link(&from, to).is_err() {
            tokio::fs::copy(&from, to).await.map_err(|e| io(&format!("copying boot image {image}"), e))?;
        }
        Ok(to.to_path_buf())
    }

    /// Build the local root disk from the image: inspect its bytes with the
    /// format inspector (only raw, and qcow2 without a backing or data file,
    /// are accepted; nothing that refers to another file), convert to raw
    /// with that explicit input format under resource limits, grow to the
    /// flavor's root size.
    async fn build_root_disk(&self, image: &ImageId, root_gb: i64, to: &Path) -> Result<(), DriverError> {
        let from = self.image_file(image);
        let path = from.clone();
        let found = tokio::task::spawn_blocking(move || stratus_imageformat::inspect(&path))
            .await
            .map_err(|e| hv(format!("image inspection did not finish: {e}")))?
            .map_err(|e| {
                warn!(image = %image, error = %e, "image refused by the format inspector");
                hv(format!("image {image} cannot be used: {e}"))
            })?;
        let format = match found.format {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            other => {
                return Err(hv(format!("image {image} has disk format {}; raw or qcow2 is needed", other.name())));
            }
        };
        let virtual_size = found.virtual_size;
        let tmp = to.with_extension("part");
        let args = [OsStr::new("convert"), OsStr::new("-q"), OsStr::new("-f"), OsStr::new(format)];
        let args = args.into_iter().chain([OsStr::new("-O"), OsStr::new("raw"), from.as_os_str(), tmp.as_os_str()]);
        let (prog, args) = qemu_img::limited(&self.cfg.qemu_img, qemu_img::CONVERT, &args.collect::<Vec<_>>());
        let out =
            tokio::process::Command::new(prog).args(args).output().await.map_err(|e| io("running qemu-img", e))?;
        if !out.status.success() {
            warn!(image = %image, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "qemu-img convert failed");
            return Err(hv(format!("could not build the root disk from image {image}")));
        }
        let want = u64::try_from(root_gb).unwrap_or(0).saturating_mul(1 << 30);
        if want > virtual_size {
            let f = std::fs::OpenOptions::new().write(true).open(&tmp).map_err(|e| io("opening the root disk", e))?;
            f.set_len(want).map_err(|e| io("growing the root disk", e))?;
        }
        tokio::fs::rename(&tmp, to).await.map_err(|e| io("placing the root disk", e))
    }

    /// Start the VM's process from its record and wait until QMP answers.
    async fn start(&self, rec: &VmRecord, incoming: bool) -> Result<(), DriverError> {
        let p = self.paths(&rec.server_id);
        if self.find_pid(&p).is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&p.qmp);
        let _ = std::fs::remove_file(&p.pidfile);
        let _ = std::fs::remove_file(p.dir.join(watchdog::SELF_FENCED_MARKER));
        let args = cmdline::args(&self.cfg, self.accel, &p, rec, incoming);
        let line = std::iter::once(self.cfg.qemu_binary.display().to_string())
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(&p.cmdline, format!("{line}\n")).map_err(|e| io("writing the command line", e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .map_err(|e| io("opening the qemu log", e))?;
        let log2 = log.try_clone().map_err(|e| io("opening the qemu log", e))?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&self.cfg.qemu_binary)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| io("starting qemu", e))?;
        let child_pid = child.id();
        // Reap the child when it exits (it is ours while this agent lives).
        let id = rec.server_id;
        let (exited_tx, mut exited) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let status = child.wait().await;
            info!(server = %id, pid = ?child_pid, status = ?status, "qemu exited");
            let _ = exited_tx.send(true);
        });
        let deadline = started + self.cfg.start_timeout;
        loop {
            if p.qmp.exists()
                && let Ok(q) = Qmp::connect(&p.qmp, self.cfg.qmp_timeout).await
                && q.status().await.is_ok()
            {
                info!(server = %id, pid = ?child_pid, ms = started.elapsed().as_millis() as u64, "qemu started; QMP answers");
                return Ok(());
            }
            if *exited.borrow() {
                let tail = tail_lines(&p.log, 5);
                warn!(server = %id, log = %tail, "qemu exited while starting");
                return Err(hv("qemu exited while starting; the host's log has the reason"));
            }
            if Instant::now() >= deadline {
                let _ = self.stop_process(&p).await;
                return Err(hv(format!("qemu did not answer QMP within {:?}", self.cfg.start_timeout)));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = exited.changed() => {}
            }
        }
    }

    /// End the VM's process: QMP `quit`, then SIGTERM, then SIGKILL, each
    /// with a deadline. Ok only once no process of this VM is left.
    async fn stop_process(&self, p: &VmPaths) -> Result<(), DriverError> {
        let Some(pid) = self.find_pid(p) else { return Ok(()) };
        let step = self.cfg.destroy_step_timeout;
        let started = Instant::now();
        let stopped = process::is_stopped(pid);
        if !stopped {
            if let Ok(Ok(q)) = tokio::time::timeout(step, Qmp::connect(&p.qmp, step)).await {
                let _ = q.execute("quit", None).await;
            }
            if process::wait_gone(pid, &p.qmp, step).await {
                info!(pid, ms = started.elapsed().as_millis() as u64, how = "quit", "qemu stopped");
                return Ok(());
            }
        }
        let signals: &[(Sig, &str)] =
            if stopped { &[(Sig::KILL, "SIGKILL")] } else { &[(Sig::TERM, "SIGTERM"), (Sig::KILL, "SIGKILL")] };
        if stopped {
            warn!(pid, "qemu is stopped (SIGSTOP): it cannot quit; killing it");
        }
        for &(sig, name) in signals {
            process::signal(pid, sig).map_err(|e| io(&format!("sending {name} to qemu {pid}"), e))?;
            if process::wait_gone(pid, &p.qmp, step).await {
                info!(pid, ms = started.elapsed().as_millis() as u64, how = name, "qemu stopped");
                return Ok(());
            }
            warn!(pid, "qemu still running after {name}");
        }
        Err(hv(format!("qemu process {pid} did not exit after SIGKILL")))
    }

    async fn hotplug(&self, p: &VmPaths, slot: &VolumeSlot) -> Result<(), DriverError> {
        let q = self.qmp(p).await?;
        q.execute("blockdev-add", Some(cmdline::volume_blockdev(slot))).await.map_err(|e| hv(e.to_string()))?;
        if let Err(e) = q.execute("device_add", Some(cmdline::volume_device(slot))).await {
            let _ = q.execute("blockdev-del", Some(json!({"node-name": slot.node_name()}))).await;
            return Err(hv(e.to_string()));
        }
        Ok(())
    }

    async fn unplug(&self, p: &VmPaths, slot: &VolumeSlot) -> Result<(), DriverError> {
        let q = self.qmp(p).await?;
        let mut events = q.events();
        let dev = slot.device_id();
        match q.execute("device_del", Some(json!({"id": dev}))).await {
            Ok(_) => {
                let want = dev.clone();
                Qmp::wait_event(&mut events, "DEVICE_DELETED", self.cfg.unplug_timeout, move |d| {
                    d.get("device").and_then(Value::as_str) == Some(want.as_str())
                })
                .await
                .map_err(|e| hv(format!("the guest did not release disk {dev}: {e}")))?;
            }
            Err(QmpError::Command { class, .. }) if class == "DeviceNotFound" => {}
            Err(e) => return Err(hv(e.to_string())),
        }
        match q.execute("blockdev-del", Some(json!({"node-name": slot.node_name()}))).await {
            Ok(_) => Ok(()),
            Err(QmpError::Command { desc, .. }) if desc.contains("Failed to find node") => Ok(()),
            Err(e) => Err(hv(e.to_string())),
        }
    }

    async fn running_qmp(&self, id: &ServerId) -> Result<Qmp, DriverError> {
        let p = self.paths(id);
        self.load(id)?;
        if self.find_pid(&p).is_none() {
            return Err(hv(format!("VM {id} is not running")));
        }
        self.qmp(&p).await
    }

    fn power_from_status(status: &str) -> PowerState {
        match status {
            "running" => PowerState::Running,
            "shutdown" => PowerState::Shutdown,
            "guest-panicked" | "internal-error" => PowerState::Crashed,
            "suspended" => PowerState::Suspended,
            _ => PowerState::Paused,
        }
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_=,./:+@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Most of the console log a caller gets (Nova caps it at 100 KiB too).
const MAX_CONSOLE_BYTES: u64 = 100 * 1024;

#[async_trait]
impl Driver for QemuDriver {
    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        let lock = self.lock(&spec.server_id);
        let _g = lock.lock().await;
        let p = self.paths(&spec.server_id);
        let rec = match VmRecord::load(&p.record) {
            Ok(rec) => rec,
            Err(_) => {
                std::fs::create_dir_all(&p.dir).map_err(|e| io("creating the VM directory", e))?;
                let root_disk = match &spec.image_id {
                    Some(img) => {
                        let root = p.dir.join("root.raw");
                        self.build_root_disk(img, spec.boot.root_gb, &root).await?;
                        Some(root)
                    }
                    None => None,
                };
                let kernel = match &spec.boot.kernel_id {
                    Some(k) => Some(self.copy_boot_file(k, &p.dir.join("kernel")).await?),
                    None => None,
                };
                let initrd = match &spec.boot.ramdisk_id {
                    Some(r) => Some(self.copy_boot_file(r, &p.dir.join("initrd")).await?),
                    None => None,
                };
                let rec = VmRecord {
                    server_id: spec.server_id,
                    vcpus: spec.vcpus,
                    ram_mb: spec.ram_mb,
                    kernel,
                    initrd,
                    kernel_args: spec.boot.kernel_args.clone(),
                    root_disk,
                    volumes: Vec::new(),
                    intent: Intent::Running,
                };
                self.save(&rec)?;
                rec
            }
        };
        self.start(&rec, false).await
    }

    async fn destroy(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let p = self.paths(server_id);
        self.stop_process(&p).await?;
        let _ = std::fs::remove_file(&p.qmp);
        match tokio::fs::remove_dir_all(&p.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing the VM directory", e)),
        }
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).remove(server_id);
        Ok(())
    }

    async fn power_off(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        let p = self.paths(server_id);
        if let Some(pid) = self.find_pid(&p) {
            // Clean shutdown first (ACPI power button), then hard.
            if let Ok(q) = self.qmp(&p).await {
                let _ = q.execute("system_powerdown", None).await;
            }
            if !process::wait_gone(pid, &p.qmp, self.cfg.clean_shutdown_timeout).await {
                self.stop_process(&p).await?;
            }
        }
        rec.intent = Intent::Shutoff;
        self.save(&rec)
    }

    async fn power_on(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        let p = self.paths(server_id);
        if rec.intent == Intent::Suspended && p.managed_save.exists() {
            drop(_g);
            return self.resume(server_id).await;
        }
        rec.intent = Intent::Running;
        self.save(&rec)?;
        self.start(&rec, false).await
    }

    async fn reboot(&self, server_id: &ServerId, hard: bool) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        let p = self.paths(server_id);
        if !hard && self.find_pid(&p).is_some() {
            // The guest gets a reset; the process, and its storage clients, stay.
            let q = self.qmp(&p).await?;
            q.execute("system_reset", None).await.map_err(|e| hv(e.to_string()))?;
            let _ = q.execute("cont", None).await;
            return Ok(());
        }
        // Hard: a new process from the record, with every volume re-plugged.
        self.stop_process(&p).await?;
        let _ = std::fs::remove_file(&p.managed_save);
        rec.intent = Intent::Running;
        self.save(&rec)?;
        self.start(&rec, false).await
    }

    async fn pause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let q = self.running_qmp(server_id).await?;
        q.execute("stop", None).await.map(|_| ()).map_err(|e| hv(e.to_string()))
    }

    async fn unpause(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let q = self.running_qmp(server_id).await?;
        q.execute("cont", None).await.map(|_| ()).map_err(|e| hv(e.to_string()))
    }

    /// Suspend = managed save (as Nova's libvirt driver does): the VM's
    /// memory and device state go to `managed.sav`, then the process ends.
    async fn suspend(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        let p = self.paths(server_id);
        if rec.intent == Intent::Suspended && self.find_pid(&p).is_none() {
            return Ok(());
        }
        let q = self.qmp(&p).await?;
        let part = p.managed_save.with_extension("part");
        let uri = format!("exec:cat > {}", shell_quote(&part.display().to_string()));
        q.execute("migrate", Some(json!({"uri": uri}))).await.map_err(|e| hv(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let st = q.execute("query-migrate", None).await.map_err(|e| hv(e.to_string()))?;
            match st.get("status").and_then(Value::as_str) {
                Some("completed") => break,
                Some("failed") | Some("cancelled") => {
                    let _ = q.execute("cont", None).await;
                    return Err(hv(format!("saving the VM's state failed: {st}")));
                }
                _ if Instant::now() > deadline => {
                    let _ = q.execute("migrate_cancel", None).await;
                    return Err(hv("saving the VM's state timed out"));
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        std::fs::rename(&part, &p.managed_save).map_err(|e| io("placing the saved state", e))?;
        rec.intent = Intent::Suspended;
        self.save(&rec)?;
        drop(q);
        self.stop_process(&p).await
    }

    async fn resume(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        let p = self.paths(server_id);
        if self.find_pid(&p).is_some() {
            return Ok(());
        }
        let incoming = p.managed_save.exists();
        self.start(&rec, incoming).await?;
        if incoming {
            let q = self.qmp(&p).await?;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let status = q.status().await.map_err(|e| hv(e.to_string()))?;
                match status.as_str() {
                    "running" => break,
                    "inmigrate" => {}
                    _ => {
                        let _ = q.execute("cont", None).await;
                    }
                }
                if Instant::now() > deadline {
                    return Err(hv("restoring the VM's state timed out"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = std::fs::remove_file(&p.managed_save);
        }
        rec.intent = Intent::Running;
        self.save(&rec)
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.cfg.state_dir).into_iter().flatten().flatten() {
            let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<ServerId>().ok()) else { continue };
            let p = self.paths(&id);
            let alive = self.find_pid(&p).is_some();
            let ps = match VmRecord::load(&p.record) {
                Ok(rec) => match (alive, rec.intent) {
                    (true, _) => PowerState::Running,
                    (false, Intent::Suspended) => PowerState::Suspended,
                    (false, _) => PowerState::Shutdown,
                },
                // No record: a spawn was interrupted. A live process still
                // counts (it must be reaped); an empty directory does not.
                Err(_) if alive => PowerState::Running,
                Err(_) => continue,
            };
            out.push(VmInfo { server_id: id, power_state: ps.code() });
        }
        Ok(out)
    }

    async fn power_state(&self, server_id: &ServerId) -> Result<PowerState, DriverError> {
        let p = self.paths(server_id);
        let Ok(rec) = VmRecord::load(&p.record) else { return Ok(PowerState::NoState) };
        if self.find_pid(&p).is_none() {
            return Ok(if rec.intent == Intent::Suspended { PowerState::Suspended } else { PowerState::Shutdown });
        }
        match self.qmp(&p).await {
            Ok(q) => Ok(q.status().await.map(|s| Self::power_from_status(&s)).unwrap_or(PowerState::Running)),
            Err(_) => Ok(PowerState::Running),
        }
    }

    fn opens_volumes(&self) -> bool {
        true
    }

    async fn capture_root_disk(&self, server_id: &ServerId, image_id: &ImageId) -> Result<Option<u64>, DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let rec = self.load(server_id)?;
        let Some(root) = rec.root_disk else { return Ok(None) };
        if self.find_pid(&self.paths(server_id)).is_some() {
            return Err(hv(format!("VM {server_id} is running; power it off before capturing its disk")));
        }
        let dest = self.image_file(image_id);
        let part = dest.with_extension("capture-part");
        // qemu-img keeps the copy sparse (a 1 GiB root disk mostly holes).
        let args = [OsStr::new("convert"), OsStr::new("-q"), OsStr::new("-f"), OsStr::new("raw"), OsStr::new("-O")];
        let args = args.into_iter().chain([OsStr::new("raw"), root.as_os_str(), part.as_os_str()]);
        let (prog, args) = qemu_img::limited(&self.cfg.qemu_img, qemu_img::CONVERT, &args.collect::<Vec<_>>());
        let out =
            tokio::process::Command::new(prog).args(args).output().await.map_err(|e| io("running qemu-img", e))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&part);
            warn!(server = %server_id, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "qemu-img convert failed");
            return Err(hv(format!("could not copy the root disk of {server_id}")));
        }
        let size = std::fs::metadata(&part).map_err(|e| io("reading the captured disk", e))?.len();
        std::fs::rename(&part, &dest).map_err(|e| io("placing the captured disk", e))?;
        info!(server = %server_id, image = %image_id, bytes = size, "root disk captured into the image store");
        Ok(Some(size))
    }

    async fn self_fenced(&self) -> Vec<(ServerId, i64)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.cfg.state_dir).into_iter().flatten().flatten() {
            let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<ServerId>().ok()) else { continue };
            if let Some(at) = std::fs::read_to_string(e.path().join(watchdog::SELF_FENCED_MARKER))
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
            {
                out.push((id, at));
            }
        }
        out
    }

    async fn attach_volume(
        &self,
        server_id: &ServerId,
        attachment_id: &AttachmentId,
        volume: &str,
        conn: &VolumeConnection,
    ) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = self.load(server_id)?;
        if let Some(s) = rec.volumes.iter().find(|s| &s.attachment_id == attachment_id) {
            if &s.conn == conn {
                return Ok(());
            }
            return Err(hv(format!("attachment {attachment_id} is already plugged with another connection")));
        }
        let port =
            rec.free_port(self.cfg.volume_ports).ok_or_else(|| hv(format!("VM {server_id} has no free disk slot")))?;
        let slot = VolumeSlot { attachment_id: *attachment_id, volume: volume.to_string(), conn: conn.clone(), port };
        let p = self.paths(server_id);
        if self.find_pid(&p).is_some() {
            self.hotplug(&p, &slot).await?;
        }
        rec.volumes.push(slot);
        self.save(&rec)
    }

    async fn volumes(&self, server_id: &ServerId) -> Result<Vec<VmVolume>, DriverError> {
        match self.load(server_id) {
            Ok(rec) => Ok(rec
                .volumes
                .into_iter()
                .map(|s| VmVolume { attachment_id: s.attachment_id, volume: s.volume, conn: s.conn })
                .collect()),
            Err(DriverError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn halt(&self, server_id: &ServerId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let p = self.paths(server_id);
        self.stop_process(&p).await?;
        match self.load(server_id) {
            Ok(mut rec) => {
                rec.intent = Intent::Shutoff;
                self.save(&rec)
            }
            Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn extend_volume(
        &self,
        server_id: &ServerId,
        attachment_id: &AttachmentId,
        size_bytes: u64,
    ) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let rec = self.load(server_id)?;
        let Some(slot) = rec.volumes.iter().find(|s| &s.attachment_id == attachment_id) else {
            return Err(hv(format!("attachment {attachment_id} is not plugged into VM {server_id}")));
        };
        let p = self.paths(server_id);
        if self.find_pid(&p).is_none() {
            return Ok(()); // opened at its new size when the VM starts again
        }
        // What libvirt's blockResize does: qemu re-reads the node's size
        // (rbd: the image already has it) and the virtio disk reports the
        // new capacity to the guest. An NBD export cannot grow under a
        // running qemu: that error is reported (the guest sees the size
        // once the volume is opened again, e.g. a hard reboot).
        let q = self.qmp(&p).await?;
        q.execute("block_resize", Some(json!({"node-name": slot.node_name(), "size": size_bytes})))
            .await
            .map_err(|e| hv(format!("resizing disk {} of VM {server_id}: {e}", slot.device_id())))?;
        Ok(())
    }

    async fn detach_volume(&self, server_id: &ServerId, attachment_id: &AttachmentId) -> Result<(), DriverError> {
        let lock = self.lock(server_id);
        let _g = lock.lock().await;
        let mut rec = match self.load(server_id) {
            Ok(r) => r,
            Err(DriverError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(slot) = rec.volumes.iter().find(|s| &s.attachment_id == attachment_id).cloned() else {
            return Ok(());
        };
        let p = self.paths(server_id);
        if self.find_pid(&p).is_some() {
            self.unplug(&p, &slot).await?;
        }
        rec.volumes.retain(|s| &s.attachment_id != attachment_id);
        self.save(&rec)
    }

    async fn console_output(&self, server_id: &ServerId, max_lines: Option<usize>) -> Result<String, DriverError> {
        let p = self.paths(server_id);
        if !p.record.exists() {
            return Err(DriverError::NotFound(*server_id));
        }
        let bytes = match tokio::fs::read(&p.console).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading the console log", e)),
        };
        let start = bytes.len().saturating_sub(MAX_CONSOLE_BYTES as usize);
        let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        Ok(match max_lines {
            Some(n) => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                lines[lines.len().saturating_sub(n)..].concat()
            }
            None => text,
        })
    }
}
