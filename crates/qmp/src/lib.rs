//! A small async client for the QEMU Machine Protocol (QMP).
//!
//! Both the VMs (`qemu-system-x86_64 -qmp unix:…`) and the storage side
//! (`qemu-storage-daemon --monitor`) are driven through QMP. The agent must
//! not need Python at run time, and the fence path must be fast (an export
//! is deleted in about a millisecond), so this is a direct client: one Unix
//! socket, newline-delimited JSON, commands matched to replies by `id`,
//! asynchronous events fanned out to subscribers.
//!
//! Protocol: the server greets with `{"QMP": …}`; the client must send
//! `qmp_capabilities` before anything else; every command is answered with
//! `{"return": …}` or `{"error": {"class", "desc"}}`; events arrive at any
//! time as `{"event": NAME, "data": …, "timestamp": …}`.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Mutex, broadcast, oneshot};

/// Errors of a QMP session.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The monitor socket could not be reached (no such socket, refused).
    #[error("cannot connect to the QMP socket {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The peer did not greet or answer within the deadline.
    #[error("QMP {what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection broke (the process exited, the socket closed).
    #[error("QMP connection closed")]
    Closed,
    /// I/O on an open connection failed.
    #[error("QMP I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not QMP.
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    /// The command was refused (QMP `error` reply).
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// QMP error class (`GenericError`, `DeviceNotFound`, …).
        class: String,
        /// Human-readable description from qemu.
        desc: String,
    },
}

/// One asynchronous QMP event.
#[derive(Clone, Debug)]
pub struct Event {
    /// Event name (`STOP`, `BLOCK_IO_ERROR`, `BLOCK_EXPORT_DELETED`, …).
    pub name: String,
    /// Its `data` member (`null` if none).
    pub data: Value,
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// An open, negotiated QMP session. Cheap to share behind an `Arc`; commands
/// may be issued concurrently.
pub struct Qmp {
    writer: Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    events: broadcast::Sender<Event>,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Qmp {
    /// Connect to the monitor at `path`, read the greeting and negotiate
    /// capabilities. `timeout` bounds the connect, the greeting and every
    /// later command.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout { what: format!("connect to {}", path.display()), after: timeout })?
            .map_err(|source| QmpError::Connect { path: path.to_path_buf(), source })?;
        let (read, writer) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = tokio::time::timeout(timeout, lines.next_line())
            .await
            .map_err(|_| QmpError::Timeout { what: "greeting".into(), after: timeout })??
            .ok_or(QmpError::Closed)?;
        let greeting: Value =
            serde_json::from_str(&greeting).map_err(|e| QmpError::Protocol(format!("bad greeting: {e}")))?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("not a QMP greeting: {greeting}")));
        }
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(256);
        let reader = tokio::spawn(read_loop(lines, pending.clone(), events.clone()));
        let qmp = Self { writer: Mutex::new(writer), pending, next_id: AtomicU64::new(1), events, timeout, reader };
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Subscribe to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Run `command` with `arguments` and return its `return` value.
    pub async fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        let mut line = msg.to_string();
        line.push('\n');
        let sent = {
            let mut w = self.writer.lock().await;
            tokio::time::timeout(self.timeout, w.write_all(line.as_bytes())).await
        };
        let forget = || {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                forget();
                return Err(e.into());
            }
            Err(_) => {
                forget();
                return Err(QmpError::Timeout { what: command.into(), after: self.timeout });
            }
        }
        let reply = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => return Err(QmpError::Closed),
            Err(_) => {
                forget();
                return Err(QmpError::Timeout { what: command.into(), after: self.timeout });
            }
        };
        if let Some(err) = reply.get("error") {
            return Err(QmpError::Command {
                command: command.into(),
                class: err.get("class").and_then(Value::as_str).unwrap_or("GenericError").into(),
                desc: err.get("desc").and_then(Value::as_str).unwrap_or_default().into(),
            });
        }
        Ok(reply.get("return").cloned().unwrap_or(Value::Null))
    }

    /// Wait up to `timeout` for an event named `name` whose data satisfies
    /// `matches`, on a receiver taken *before* the command that causes it.
    pub async fn wait_event(
        rx: &mut broadcast::Receiver<Event>,
        name: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Event, QmpError> {
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.name == name && matches(&ev.data) => return Ok(ev),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Err(QmpError::Closed),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| QmpError::Timeout { what: format!("event {name}"), after: timeout })?
    }

    /// `query-status`: the VM's run state (`running`, `paused`, `io-error`,
    /// `shutdown`, …).
    pub async fn status(&self) -> Result<String, QmpError> {
        let v = self.execute("query-status", None).await?;
        v.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| QmpError::Protocol(format!("query-status without status: {v}")))
    }
}

async fn read_loop(
    mut lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    pending: Pending,
    events: broadcast::Sender<Event>,
) {
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => break,
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            tracing::debug!(line = %line, "ignoring a QMP line that is not JSON");
            continue;
        };
        if let Some(name) = v.get("event").and_then(Value::as_str) {
            let _ = events.send(Event { name: name.to_string(), data: v.get("data").cloned().unwrap_or(Value::Null) });
            continue;
        }
        if let Some(id) = v.get("id").and_then(Value::as_u64)
            && let Some(tx) = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)
        {
            let _ = tx.send(v);
        }
    }
    // Closing: every waiter learns the connection is gone.
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A scripted monitor: greets, accepts capabilities, answers `query-status`
    /// with `running`, refuses anything else, and emits an event on `stop`.
    async fn fake_monitor(path: PathBuf) {
        let listener = UnixListener::bind(&path).expect("bind");
        let (s, _) = listener.accept().await.expect("accept");
        let (r, mut w) = s.into_split();
        w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").await.expect("greet");
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).expect("json");
            let id = v["id"].clone();
            let reply = match v["execute"].as_str() {
                Some("qmp_capabilities") => json!({"return": {}, "id": id}),
                Some("query-status") => json!({"return": {"status": "running", "running": true}, "id": id}),
                Some("stop") => {
                    w.write_all(b"{\"event\": \"STOP\", \"data\": {}}\n").await.expect("event");
                    json!({"return": {}, "id": id})
                }
                _ => json!({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": id}),
            };
            w.write_all(format!("{reply}\n").as_bytes()).await.expect("reply");
        }
    }

    #[tokio::test]
    async fn negotiates_runs_commands_and_sees_events() {
        let dir = std::env::temp_dir().join(format!("qmp-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let sock = dir.join("m.sock");
        let _ = std::fs::remove_file(&sock);
        let server = tokio::spawn(fake_monitor(sock.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let q = Qmp::connect(&sock, Duration::from_secs(2)).await.expect("connect");
        assert_eq!(q.status().await.expect("status"), "running");
        let mut rx = q.events();
        q.execute("stop", None).await.expect("stop");
        Qmp::wait_event(&mut rx, "STOP", Duration::from_secs(2), |_| true).await.expect("STOP event");
        match q.execute("bogus", None).await {
            Err(QmpError::Command { class, .. }) => assert_eq!(class, "CommandNotFound"),
            other => panic!("expected a command error, got {other:?}"),
        }
        drop(q);
        server.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_connect_error() {
        let r = Qmp::connect(Path::new("/nonexistent/qmp.sock"), Duration::from_secs(1)).await;
        assert!(matches!(r, Err(QmpError::Connect { .. })), "{:?}", r.err());
    }
}
