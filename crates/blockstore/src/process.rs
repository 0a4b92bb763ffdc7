//! Storage clients that are processes of their own (the rbd holder): how
//! their owner finds them again and ends them after it restarted.
//!
//! A client process outlives the process that started it (a VM outlives its
//! host agent), so its owner records a [`ClientProcess`] durably and, when
//! the VM is destroyed, ends it with [`ClientProcess::end`]. A pid alone
//! never identifies it (pids are reused): it counts as the client only while
//! its command line carries the client's unique marker argument.

use crate::BlockError;
use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A storage client process as its owner records it: enough to find it
/// again after a restart, and to never signal an unrelated process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProcess {
    /// Process id when it was started.
    pub pid: u32,
    /// An argument on its command line that no other process has (a token
    /// made at start): the process is this client only while it has it.
    pub marker: String,
}

impl ClientProcess {
    /// Is the process alive (not defunct) with the marker on its command
    /// line? A defunct process has an empty command line, so it counts as gone.
    pub fn is_running(&self) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", self.pid)) else {
            return false;
        };
        cmdline.split(|b| *b == 0).any(|arg| arg == self.marker.as_bytes())
    }

    /// End the process (SIGKILL: librbd ignores SIGTERM while waiting for a
    /// lock) and wait up to `timeout` until it is gone. Signals only while
    /// the command line still carries the marker; a process already gone is
    /// success.
    pub async fn end(&self, timeout: Duration) -> Result<(), BlockError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut signalled = false;
        loop {
            if !self.is_running() {
                if signalled {
                    tracing::info!(pid = self.pid, marker = %self.marker, "storage client process ended");
                }
                return Ok(());
            }
            if !signalled {
                self.kill()?;
                signalled = true;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BlockError::Backend(format!(
                    "storage client process {} ({}) still runs {timeout:?} after SIGKILL",
                    self.pid, self.marker
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kill(&self) -> Result<(), BlockError> {
        let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return Err(BlockError::Backend(format!("bad pid {}", self.pid)));
        };
        match kill_process(pid, Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(BlockError::Backend(format!("cannot kill storage client process {}: {e}", self.pid))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell that waits (not `exec`: its own command line must stay) with
    /// `marker` as its `$0`.
    fn with_marker(marker: &str) -> std::process::Child {
        std::process::Command::new("sh").args(["-c", "sleep 60; :", marker]).spawn().expect("sh")
    }

    #[tokio::test]
    async fn ends_the_process_that_carries_its_marker_and_waits_until_it_is_gone() {
        let mut child = with_marker("stratus-test-client-end");
        let p = ClientProcess { pid: child.id(), marker: "stratus-test-client-end".into() };
        // Between fork and exec the child still shows our command line.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !p.is_running() && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(p.is_running());
        p.end(Duration::from_secs(5)).await.expect("ended");
        assert!(!p.is_running());
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed, not exited: {status:?}");
        // Already gone: success again.
        p.end(Duration::from_secs(1)).await.expect("gone is ended");
    }

    #[tokio::test]
    async fn never_signals_a_process_by_pid_alone() {
        let mut child = with_marker("stratus-test-client-other");
        let p = ClientProcess { pid: child.id(), marker: "stratus-test-client-not-this-one".into() };
        // Let it exec first, so the check below is about the marker, not the fork.
        let ours = ClientProcess { pid: child.id(), marker: "stratus-test-client-other".into() };
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !ours.is_running() && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!p.is_running());
        p.end(Duration::from_secs(1)).await.expect("not ours: nothing to end");
        assert!(child.try_wait().expect("try_wait").is_none(), "an unrelated process was signalled");
        let _ = child.kill();
        let _ = child.wait();
    }
}
