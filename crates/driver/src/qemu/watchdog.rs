//! Self-fencing: a host watchdog that kills the host's VMs before its lease
//! expires when the agent stops renewing it.
//!
//! Storage fencing needs a storage system that can fence and that the
//! controller can still reach; a partition may cut the host off from Ceph's
//! monitors too, and a VM on a plain local disk cannot be fenced at all.
//! So, as Proxmox HA does with its watchdog, each host runs this small
//! process next to the agent. The agent *feeds* it after every successful
//! lease renewal by writing the instant until which the host may keep
//! running VMs: the lease's end minus a safety margin, on the host's
//! monotonic clock (`CLOCK_MONOTONIC`, shared by every process of the host
//! and immune to wall-clock jumps). When that instant passes without a new
//! feed (the agent is dead, hung, SIGSTOPped or partitioned), the watchdog
//! pauses every VM (QMP `stop`: the guest's CPUs halt, so it issues no new
//! writes) and then kills it (SIGKILL), before the controller can consider
//! the lease expired and release the VM's volumes. Each VM it kills gets a
//! `self-fenced` marker (wall-clock milliseconds) in its directory, so the
//! agent can tell the controller which fence acted first.
//!
//! The watchdog never revives anything: the agent rejoins, reconciles and
//! feeds again, which re-arms it.

use super::process::{self, Sig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use stratus_qmp::Qmp;
use tracing::{info, warn};

/// Name of the marker a self-fenced VM gets in its directory.
pub const SELF_FENCED_MARKER: &str = "self-fenced";

/// Milliseconds on the host's monotonic clock (the same value in every
/// process of the host).
pub fn monotonic_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1000) + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000
}

/// Feed the watchdog: the host may run VMs until `until_monotonic_ms`.
/// Written atomically; called by the agent after each lease renewal.
pub fn feed(feed_file: &Path, until_monotonic_ms: u64) -> std::io::Result<()> {
    let tmp = feed_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{until_monotonic_ms}\n"))?;
    std::fs::rename(tmp, feed_file)
}

/// The deadline last fed, if any.
pub fn read_feed(feed_file: &Path) -> Option<u64> {
    std::fs::read_to_string(feed_file).ok()?.trim().parse().ok()
}

/// Settings of the watchdog process.
#[derive(Clone, Debug)]
pub struct WatchdogConfig {
    /// The qemu driver's state directory (one directory per VM).
    pub vm_dir: PathBuf,
    /// The file the agent feeds.
    pub feed_file: PathBuf,
    /// How often to look at the feed.
    pub poll: Duration,
}

/// Pause then kill every VM under `vm_dir` that still runs. Returns how
/// many were killed.
pub async fn fence_all(vm_dir: &Path) -> usize {
    let mut killed = 0;
    let sockets = super::default_socket_dir(vm_dir);
    for e in std::fs::read_dir(vm_dir).into_iter().flatten().flatten() {
        let dir = e.path();
        let qmp = sockets.join(format!("{}.qmp", e.file_name().to_string_lossy()));
        let Some(pid) = process::live_pid(&dir.join("qemu.pid"), &qmp) else { continue };
        // Halt the guest's CPUs first (a few ms), then end the process. A
        // stopped (SIGSTOP) qemu answers no QMP: straight to SIGKILL.
        if !process::is_stopped(pid)
            && let Ok(Ok(q)) =
                tokio::time::timeout(Duration::from_millis(300), Qmp::connect(&qmp, Duration::from_millis(300))).await
        {
            let _ = q.execute("stop", None).await;
        }
        if let Err(e) = process::signal(pid, Sig::KILL) {
            warn!(pid, error = %e, "watchdog: cannot kill qemu");
            continue;
        }
        if !process::wait_gone(pid, &qmp, Duration::from_secs(5)).await {
            warn!(pid, "watchdog: qemu survived SIGKILL for 5 s");
            continue;
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let _ = std::fs::write(dir.join(SELF_FENCED_MARKER), format!("{now}\n"));
        killed += 1;
        warn!(pid, vm = %dir.display(), "watchdog: VM self-fenced (paused, then killed) before the host's lease expires");
    }
    killed
}

/// Run until the process is killed: whenever the fed deadline passes,
/// self-fence the host's VMs once, then wait for a newer feed.
pub async fn run(cfg: WatchdogConfig) {
    info!(feed = %cfg.feed_file.display(), vms = %cfg.vm_dir.display(), "watchdog armed by the first feed");
    let mut fired_for: Option<u64> = None;
    loop {
        if let Some(deadline) = read_feed(&cfg.feed_file)
            && monotonic_ms() > deadline
        {
            // Fence once per stale deadline, and again for any VM started
            // meanwhile (it would be a VM started without a lease).
            let n = fence_all(&cfg.vm_dir).await;
            if fired_for != Some(deadline) || n > 0 {
                warn!(
                    late_ms = monotonic_ms().saturating_sub(deadline),
                    killed = n,
                    "watchdog: the agent stopped renewing the host's lease; VMs self-fenced"
                );
                fired_for = Some(deadline);
            }
        }
        tokio::time::sleep(cfg.poll).await;
    }
}
