//! Building a compute host: its hypervisor driver, its capacity and, for
//! real VMs, its watchdog.

use crate::config::{AgentArgs, DriverArgs, DriverKind};
use anyhow::Context as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stratus_compute::AgentConfig;
use stratus_driver::qemu::{QemuConfig, QemuDriver, watchdog};
use stratus_driver::{Driver, FakeDriver};
use tracing::info;

/// Where a host keeps the qemu driver's VM directories.
pub fn qemu_vm_dir(host_dir: &Path) -> PathBuf {
    host_dir.join("qemu")
}

/// The watchdog's feed file of a host.
pub fn watchdog_feed(host_dir: &Path) -> PathBuf {
    host_dir.join("watchdog.feed")
}

/// The driver of one host and the agent settings that go with it: the
/// fake driver offers the configured fake capacity; the qemu driver offers
/// what the machine has, times the allocation ratios, and arms a watchdog.
pub fn host_driver(
    driver: &DriverArgs,
    agent: &AgentArgs,
    host: &str,
    host_dir: &Path,
    image_dir: &Path,
) -> anyhow::Result<(Arc<dyn Driver>, AgentConfig)> {
    let mut cfg = agent.agent(host);
    // The agent records the storage client processes it opens for VMs here,
    // so that an agent that restarted still ends them with their VM.
    cfg.state_dir = Some(host_dir.to_path_buf());
    match driver.driver {
        DriverKind::Fake => {
            let d: Arc<dyn Driver> = Arc::new(FakeDriver::new(agent.fake_driver(Some(host_dir.join("vms")))));
            Ok((stratus_effects::driver(d, host), cfg))
        }
        DriverKind::Qemu => {
            let vm_dir = qemu_vm_dir(host_dir);
            let mut q = QemuConfig::new(vm_dir.clone(), image_dir.to_path_buf());
            q.qemu_binary = driver.qemu_binary.clone();
            let d = QemuDriver::new(q).context("starting the qemu driver")?;
            (cfg.vcpus, cfg.memory_mb, cfg.disk_gb) = offered(&machine_capacity(&vm_dir), driver);
            if driver.watchdog {
                let feed = watchdog_feed(host_dir);
                ensure_watchdog(&vm_dir, &feed)?;
                cfg.watchdog_feed = Some(feed);
                cfg.watchdog_margin = driver.watchdog_margin.0;
            } else {
                tracing::warn!(host, "host watchdog off: only storage fencing protects volumes of a lost host");
            }
            info!(host, accel = ?d.accel(), vcpus = cfg.vcpus, memory_mb = cfg.memory_mb, disk_gb = cfg.disk_gb,
                  "qemu host: capacity from the machine times the allocation ratios");
            Ok((stratus_effects::driver(Arc::new(d), host), cfg))
        }
    }
}

/// What the machine has.
struct Capacity {
    cpus: u64,
    memory_mb: u64,
    disk_gb: u64,
}

/// What a host offers the scheduler: what it has times Nova's allocation
/// ratios, less the RAM kept for the host itself (vCPUs, MiB, GiB).
fn offered(cap: &Capacity, d: &DriverArgs) -> (i64, i64, i64) {
    let scale = |have: u64, ratio: f64| (have as f64 * ratio.max(0.0)).floor() as i64;
    (
        scale(cap.cpus, d.cpu_allocation_ratio),
        scale(cap.memory_mb.saturating_sub(d.reserved_host_memory_mb), d.ram_allocation_ratio),
        scale(cap.disk_gb, d.disk_allocation_ratio),
    )
}

fn machine_capacity(dir: &Path) -> Capacity {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0);
    let disk_gb = free_disk_gb(dir).unwrap_or(0);
    Capacity { cpus, memory_mb, disk_gb }
}

fn free_disk_gb(dir: &Path) -> Option<u64> {
    // `df` is everywhere and avoids an unsafe statvfs binding.
    let out = std::process::Command::new("df").args(["--output=avail", "-B1G"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

/// Start the host's watchdog (a detached `stratus watchdog` process) unless
/// one already watches this feed file. It outlives the agent on purpose:
/// it is what kills the VMs when the agent is dead.
pub fn ensure_watchdog(vm_dir: &Path, feed: &Path) -> anyhow::Result<()> {
    let pidfile = feed.with_extension("pid");
    if let Ok(pid) = std::fs::read_to_string(&pidfile)
        && let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
        && String::from_utf8_lossy(&cmdline).contains(feed.to_string_lossy().as_ref())
    {
        return Ok(());
    }
    let exe = std::env::current_exe().context("locating the stratus binary for the watchdog")?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(feed.with_extension("log"))?;
    let child = std::process::Command::new(exe)
        .arg("watchdog")
        .arg("--vm-dir")
        .arg(vm_dir)
        .arg("--feed-file")
        .arg(feed)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("STRATUS_FAULTS")
        .process_group(0)
        .spawn()
        .context("starting the watchdog")?;
    std::fs::write(&pidfile, format!("{}\n", child.id()))?;
    info!(pid = child.id(), feed = %feed.display(), "watchdog started");
    Ok(())
}

/// Run the watchdog in this process (the `stratus watchdog` subcommand).
/// It exits when its VM directory is removed (the host was decommissioned).
pub async fn run_watchdog(vm_dir: PathBuf, feed_file: PathBuf, poll: Duration) -> anyhow::Result<()> {
    let pidfile = feed_file.with_extension("pid");
    let cfg = watchdog::WatchdogConfig { vm_dir: vm_dir.clone(), feed_file: feed_file.clone(), poll };
    let me = std::process::id();
    let guard = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if !vm_dir.exists() {
                info!(dir = %vm_dir.display(), "watchdog: VM directory removed; exiting");
                return;
            }
            // One watchdog per host: give way to another live one the pidfile names.
            if let Some(other) = std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse::<u32>().ok())
                && other != me
                && std::fs::read(format!("/proc/{other}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(feed_file.to_string_lossy().as_ref()))
            {
                info!(other, "watchdog: another watchdog owns this host; exiting");
                return;
            }
        }
    };
    tokio::select! {
        _ = watchdog::run(cfg) => {}
        _ = guard => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        driver: DriverArgs,
    }

    /// Nova's defaults: 16 vCPUs per CPU, 1.5 x RAM after the reserve, 1.0 x disk.
    #[test]
    fn a_qemu_host_offers_what_it_has_times_the_allocation_ratios() {
        let d = Cli::parse_from(["t", "--driver", "qemu"]).driver;
        let cap = Capacity { cpus: 2, memory_mb: 4096, disk_gb: 100 };
        assert_eq!(offered(&cap, &d), (32, 5376, 100));
        let d = Cli::parse_from(["t", "--cpu-allocation-ratio", "1", "--reserved-host-memory-mb", "5000"]).driver;
        assert_eq!(offered(&cap, &d), (2, 0, 100), "a reserve larger than the RAM offers none, never a negative");
    }
}
