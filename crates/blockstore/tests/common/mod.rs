//! Helpers shared by the integration tests that drive real qemu clients.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A long-lived block client, as a VM is: `qemu-io` in interactive mode on
/// `target` (an NBD URI or an `rbd:` spec), fed through a pipe that stays
/// open. Killed when dropped.
pub struct Interactive {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
}

impl Interactive {
    /// Start `qemu-io -f raw TARGET` and wait for its first prompt.
    pub async fn open(target: &str) -> Self {
        let mut child = tokio::process::Command::new("qemu-io")
            .args(["-f", "raw", target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start qemu-io (install qemu-utils: /work/shared/guest/build-tiny-guest.sh)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut me = Self { child, stdin, stdout };
        me.until_prompt().await;
        me
    }

    async fn until_prompt(&mut self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let read = async {
            while !out.ends_with(b"qemu-io> ") {
                let n = self.stdout.read(&mut buf).await.expect("read qemu-io");
                assert!(n > 0, "qemu-io exited: {}", String::from_utf8_lossy(&out));
                out.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read).await.expect("qemu-io answers");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Run one qemu-io command and return what it printed.
    pub async fn cmd(&mut self, command: &str) -> String {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("send to qemu-io");
        self.stdin.flush().await.expect("flush");
        self.until_prompt().await
    }

    /// SIGKILL it and reap it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
