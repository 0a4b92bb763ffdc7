//! The simulated VM's storage client on Ceph: a real librbd process that
//! holds an image open, writes on command and reports a fenced write.

use super::ESHUTDOWN;
use crate::util;
use crate::{BlockError, ClientId, ClientProcess, OpenClient};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Keep the last few KiB of a holder's stderr for error messages (and keep
/// the pipe drained so librados logging can never block the holder).
pub(super) async fn drain_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut t) = tail.lock() {
            t.push_str(&line);
            t.push('\n');
            if t.len() > 8192 {
                let keep = util::last_chars(&t, 4096).to_owned();
                *t = keep;
            }
        }
    }
}

/// A real librbd client process holding an image open (the simulated VM).
///
/// - [`OpenClient::write`] sends the bytes to the process, which writes and
///   flushes them; errno 108 (blocklisted) is [`BlockError::Fenced`].
/// - [`OpenClient::close`] closes the image and ends the process.
/// - Dropping it without `close` leaves the process running with the image
///   open — the zombie — for as long as the owning process lives, plus the
///   backend's holder linger; [`RbdClient::kill_on_drop`] changes that.
/// - [`RbdClient::kill`] is `kill -9` (the host reaping the VM): its watch
///   then stays for about 30 s unless the client is fenced.
/// - [`OpenClient::process`] names the holder (pid and a unique marker
///   argument), so an owner that restarted can still end a zombie.
#[derive(Debug)]
pub struct RbdClient {
    pub(super) id: ClientId,
    pub(super) image: String,
    pub(super) pid: Option<u32>,
    pub(super) marker: String,
    pub(super) child: Option<Child>,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) stdout: Option<BufReader<ChildStdout>>,
    pub(super) stderr_tail: Arc<Mutex<String>>,
    pub(super) io_timeout: Duration,
    pub(super) broken: Option<String>,
    pub(super) kill_on_drop: bool,
}

impl RbdClient {
    /// Process id of the holder (what a reaper kills), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The unique argument on the holder's command line (see [`ClientProcess`]).
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The image this client holds open.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Kill the holder (SIGKILL) when this value is dropped, instead of
    /// leaving a zombie: for tests and for owners that must not leak.
    pub fn kill_on_drop(&mut self, yes: bool) {
        self.kill_on_drop = yes;
    }

    /// SIGKILL the holder now (librbd ignores SIGTERM while waiting for a
    /// lock). Tokio reaps it in the background.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Err(e) = child.start_kill()
        {
            tracing::debug!(pid = ?self.pid, error = %e, "holder already gone");
        }
        self.stdin = None;
        self.stdout = None;
        self.child = None;
        self.broken.get_or_insert_with(|| "killed".into());
    }

    pub(super) fn stderr_tail(&self) -> String {
        self.stderr_tail.lock().map(|t| util::last_chars(t.trim(), 2000).to_owned()).unwrap_or_default()
    }

    pub(super) async fn read_line(&mut self) -> Result<String, BlockError> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Err(BlockError::Backend(format!("holder of {} is not running", self.image)));
        };
        let mut line = String::new();
        match stdout.read_line(&mut line).await {
            Ok(0) => {
                // Give the stderr drain a moment to collect the reason.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(BlockError::Backend(format!("holder of {} exited: {}", self.image, self.stderr_tail())))
            }
            Ok(_) => Ok(line.trim_end().to_owned()),
            Err(e) => Err(BlockError::Backend(format!("reading from the holder of {}: {e}", self.image))),
        }
    }

    async fn roundtrip(&mut self, offset: u64, data: &[u8]) -> Result<String, BlockError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(BlockError::Backend(format!("holder of {} is not running", self.image)));
        };
        let header = format!("write {offset} {}\n", data.len());
        let sent = async {
            stdin.write_all(header.as_bytes()).await?;
            stdin.write_all(data).await?;
            stdin.flush().await
        }
        .await;
        sent.map_err(|e| BlockError::Backend(format!("writing to the holder of {}: {e}", self.image)))?;
        self.read_line().await
    }
}

#[async_trait]
impl OpenClient for RbdClient {
    fn id(&self) -> ClientId {
        self.id.clone()
    }

    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        if let Some(why) = &self.broken {
            return Err(BlockError::Backend(format!("holder of {} is unusable: {why}", self.image)));
        }
        let answer = match tokio::time::timeout(self.io_timeout, self.roundtrip(offset, data)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.broken = Some(e.to_string());
                return Err(e);
            }
            Err(_) => {
                // A late answer would desynchronise the protocol.
                let why = format!("no answer to a write within {:?}", self.io_timeout);
                self.broken = Some(why.clone());
                return Err(BlockError::Backend(format!("holder of {}: {why}", self.image)));
            }
        };
        let mut words = answer.splitn(3, ' ');
        match (words.next(), words.next().map(str::parse::<i32>)) {
            (Some("OK"), _) => Ok(()),
            (Some("FAILED"), Some(Ok(ESHUTDOWN))) => Err(BlockError::Fenced(self.id.clone())),
            (Some("FAILED"), _) => {
                Err(BlockError::Backend(format!("write to {} by {} failed: {answer}", self.image, self.id.0)))
            }
            _ => {
                self.broken = Some(format!("unexpected answer {answer:?}"));
                Err(BlockError::Backend(format!("holder of {} answered {answer:?}", self.image)))
            }
        }
    }

    fn process(&self) -> Option<ClientProcess> {
        self.pid.map(|pid| ClientProcess { pid, marker: self.marker.clone() })
    }

    async fn close(mut self: Box<Self>) -> Result<(), BlockError> {
        let timeout = self.io_timeout;
        let closed = tokio::time::timeout(timeout, async {
            if let Some(stdin) = self.stdin.as_mut() {
                // A dead holder makes these fail; the exit status below decides.
                let _ = stdin.write_all(b"close\n").await;
                let _ = stdin.flush().await;
            }
            self.stdin = None;
            self.stdout = None;
            match self.child.as_mut() {
                Some(child) => child.wait().await.map(Some),
                None => Ok(None),
            }
        })
        .await;
        match closed {
            Ok(Ok(_)) => {
                self.child = None;
                Ok(())
            }
            Ok(Err(e)) => {
                self.kill();
                Err(BlockError::Backend(format!("waiting for the holder of {}: {e}", self.image)))
            }
            Err(_) => {
                self.kill();
                Err(BlockError::Backend(format!("holder of {} did not close within {timeout:?}; killed", self.image)))
            }
        }
    }
}

impl Drop for RbdClient {
    fn drop(&mut self) {
        if self.kill_on_drop {
            self.kill();
            return;
        }
        // The zombie: keep the holder's stdin open so it does not see EOF and
        // close the image; the pipe closes when this process exits. The
        // process itself keeps running (a dropped tokio `Child` is not killed).
        if let Some(stdin) = self.stdin.take() {
            if self.child.is_some() {
                tracing::warn!(image = %self.image, client = %self.id.0, pid = ?self.pid, "client dropped without close: holder left running");
            }
            std::mem::forget(stdin);
        }
    }
}
