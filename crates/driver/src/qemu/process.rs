//! One qemu process: finding it again, signalling it, waiting for it to go.
//!
//! A pid alone never identifies a VM (pids are reused): a process counts as
//! the VM of a state directory only while its command line names that
//! directory's QMP socket. Children are started in their own process group
//! with stdin closed, so they outlive the agent (a killed agent leaves its
//! VMs running, as a crashed nova-compute leaves its libvirt domains).

use rustix::process::{Pid, Signal, kill_process};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// The pid of the qemu serving `qmp_sock`, if the pid in `pidfile` is alive
/// and its command line names that socket.
pub fn live_pid(pidfile: &Path, qmp_sock: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    is_our_process(pid, qmp_sock).then_some(pid)
}

/// Is `pid` alive (not a zombie) with `qmp_sock` on its command line?
pub fn is_our_process(pid: u32, qmp_sock: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A defunct process has an empty command line.
    let needle = qmp_sock.to_string_lossy();
    cmdline.split(|b| *b == 0).any(|arg| String::from_utf8_lossy(arg).contains(needle.as_ref()))
}

/// Is `pid` stopped (SIGSTOP, or a tracer)? A stopped qemu answers
/// neither QMP nor SIGTERM, so destroy goes straight to SIGKILL.
pub fn is_stopped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised command name: state is the first.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|s| s == "T" || s == "t")
}

/// Send `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Err(std::io::Error::other(format!("bad pid {pid}")));
    };
    match kill_process(p, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Wait until the process is gone (or no longer ours), up to `deadline`.
pub async fn wait_gone(pid: u32, qmp_sock: &Path, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if !is_our_process(pid, qmp_sock) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `Signal` re-exported so callers need not depend on rustix.
pub use rustix::process::Signal as Sig;
