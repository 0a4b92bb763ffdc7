//! The qemu driver against real qemu processes and the tiny guest
//! (scripts/guest/build-tiny-guest.sh builds it; scripts/test exports
//! STRATUS_GUEST_DIR). Mirrors what Nova's libvirt driver guarantees an
//! operator: a VM survives its agent, power operations act on the real
//! process, destroy leaves no process behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stratus_driver::qemu::{QemuConfig, QemuDriver};
use stratus_driver::{Driver, VmSpec};
use stratus_types::agent::BootSpec;
use stratus_types::{ImageId, PowerState, ServerId};

fn guest_dir() -> PathBuf {
    let dir = std::env::var("STRATUS_GUEST_DIR").unwrap_or_else(|_| {
        panic!("STRATUS_GUEST_DIR is not set: run scripts/test, or build the guest with scripts/guest/build-tiny-guest.sh DIR and export STRATUS_GUEST_DIR=DIR")
    });
    let dir = PathBuf::from(dir);
    assert!(dir.join("vmlinuz").exists(), "no guest kernel in {}", dir.display());
    dir
}

struct Env {
    root: PathBuf,
    cfg: QemuConfig,
    kernel: ImageId,
    initrd: ImageId,
    disk: ImageId,
}

impl Env {
    fn new(name: &str) -> Self {
        let g = guest_dir();
        let root = std::env::temp_dir().join(format!("stratus-qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let images = root.join("images");
        std::fs::create_dir_all(&images).expect("mkdir");
        let (kernel, initrd, disk) = (ImageId::new(), ImageId::new(), ImageId::new());
        std::fs::copy(g.join("vmlinuz"), images.join(kernel.to_string())).expect("kernel");
        std::fs::copy(g.join("initrd.img"), images.join(initrd.to_string())).expect("initrd");
        let f = std::fs::File::create(images.join(disk.to_string())).expect("disk");
        f.set_len(16 << 20).expect("size");
        let mut cfg = QemuConfig::new(root.join("vms"), images);
        cfg.destroy_step_timeout = Duration::from_secs(2);
        cfg.clean_shutdown_timeout = Duration::from_millis(500);
        Self { root, cfg, kernel, initrd, disk }
    }

    fn spec(&self, id: ServerId) -> VmSpec {
        VmSpec {
            server_id: id,
            vcpus: 1,
            ram_mb: 128,
            image_id: Some(self.disk),
            boot: BootSpec {
                root_gb: 0,
                kernel_id: Some(self.kernel),
                ramdisk_id: Some(self.initrd),
                kernel_args: Some("console=ttyS0 quiet panic=-1".into()),
            },
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Kill whatever qemu a failed test left behind, then remove the files.
        for e in std::fs::read_dir(self.root.join("vms")).into_iter().flatten().flatten() {
            if let Ok(pid) = std::fs::read_to_string(e.path().join("qemu.pid")) {
                let _ = std::process::Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The counter the guest last wrote to sector 0 of a raw disk file.
fn counter(disk: &Path) -> Option<u64> {
    let bytes = std::fs::read(disk).ok()?;
    let sector = String::from_utf8_lossy(&bytes[..512.min(bytes.len())]).into_owned();
    let rest = sector.strip_prefix("counter=")?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| !c.is_empty()).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_vm_boots_writes_and_obeys_power_operations() {
    let env = Env::new("power");
    let d = QemuDriver::new(env.cfg.clone()).expect("driver");
    let id = ServerId::new();
    let t = Instant::now();
    d.spawn(&env.spec(id)).await.expect("spawn");
    eprintln!("MEASURE qemu spawn -> QMP answers: {} ms", t.elapsed().as_millis());
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Running);
    let root = d.paths(&id).dir.join("root.raw");
    wait_for("the guest to write its counter", Duration::from_secs(30), || counter(&root).unwrap_or(0) >= 2).await;
    eprintln!("MEASURE qemu spawn -> first counter on disk: {} ms", t.elapsed().as_millis());
    let console = d.console_output(&id, None).await.expect("console");
    assert!(console.contains("TINY-GUEST READY"), "{console}");
    assert_eq!(d.console_output(&id, Some(1)).await.expect("tail").lines().count(), 1);
    // Spawning again is a no-op (same process).
    let pid = d.pid(&id).expect("pid");
    d.spawn(&env.spec(id)).await.expect("spawn again");
    assert_eq!(d.pid(&id), Some(pid));

    // Pause stops the guest's writes; unpause resumes them.
    d.pause(&id).await.expect("pause");
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Paused);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = counter(&root);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(counter(&root), frozen, "a paused VM does not write");
    d.unpause(&id).await.expect("unpause");
    let before = counter(&root).unwrap_or(0);
    wait_for("writes after unpause", Duration::from_secs(10), || counter(&root).unwrap_or(0) > before).await;

    // Hard reboot is a new process with the same disk (the counter continues).
    let n = counter(&root).unwrap_or(0);
    d.reboot(&id, true).await.expect("hard reboot");
    let pid2 = d.pid(&id).expect("pid after reboot");
    assert_ne!(pid, pid2);
    assert!(!alive(pid), "the old qemu is gone");
    wait_for("writes after reboot", Duration::from_secs(30), || counter(&root).unwrap_or(0) > n).await;

    // Suspend saves the VM and ends the process; resume restores it.
    d.suspend(&id).await.expect("suspend");
    assert!(!alive(pid2), "suspended VM has no process");
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Suspended);
    let n = counter(&root).unwrap_or(0);
    d.resume(&id).await.expect("resume");
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Running);
    wait_for("writes after resume", Duration::from_secs(15), || counter(&root).unwrap_or(0) > n).await;
    let console = d.console_output(&id, None).await.expect("console");
    assert_eq!(console.matches("TINY-GUEST READY").count(), 2, "resume restores memory, it does not boot: {console}");

    // Power off and on.
    d.power_off(&id).await.expect("off");
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Shutdown);
    assert!(d.pid(&id).is_none());
    d.power_on(&id).await.expect("on");
    assert_eq!(d.power_state(&id).await.expect("ps"), PowerState::Running);

    // Destroy: the process is gone before it returns, and so are the files.
    let pid = d.pid(&id).expect("pid");
    d.destroy(&id).await.expect("destroy");
    assert!(!alive(pid), "qemu gone when destroy returns");
    assert!(!d.paths(&id).dir.exists());
    assert!(d.list().await.expect("list").is_empty());
    d.destroy(&id).await.expect("destroy again is a no-op");
}

#[tokio::test(flavor = "multi_thread")]
async fn vms_outlive_their_driver_and_a_stopped_qemu_is_killed() {
    let env = Env::new("rediscover");
    let id = ServerId::new();
    {
        let d = QemuDriver::new(env.cfg.clone()).expect("driver");
        d.spawn(&env.spec(id)).await.expect("spawn");
    }
    // A new agent (driver) finds the VM running and manages it.
    let d = QemuDriver::new(env.cfg.clone()).expect("driver again");
    let pid = d.pid(&id).expect("still running");
    let list = d.list().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].power_state, PowerState::Running.code());
    // A SIGSTOPped qemu answers neither QMP nor SIGTERM: destroy escalates to SIGKILL.
    let _ = std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status();
    let t = Instant::now();
    d.destroy(&id).await.expect("destroy");
    eprintln!("MEASURE destroy of a SIGSTOPped qemu: {} ms", t.elapsed().as_millis());
    assert!(!alive(pid));
}
