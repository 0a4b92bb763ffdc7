//! A real `stratus up` process on a free port with a temp data dir; killed
//! and cleaned up when dropped (also on error and on Ctrl-C), together with
//! every process naming the data dir (agents, VMs, watchdogs, storage
//! daemons and the NATS server of the qemu workload).

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How the cloud is started.
pub struct CloudSpec<'a> {
    pub bin: &'a Path,
    /// `STRATUS_*` variables (every inherited `STRATUS_*` is removed first).
    pub env: Vec<(String, String)>,
    /// Where stratus's stderr goes; default: `stratus.log` in the temp data dir (removed at the end).
    pub log_file: Option<&'a Path>,
    pub startup_timeout: Duration,
    /// Use this (existing, empty) data dir instead of a new temp one; it is
    /// still removed at the end.
    pub data_dir: Option<PathBuf>,
}

/// A running cloud. Dropping it kills the process and removes the data dir.
pub struct Cloud {
    child: Option<Child>,
    pub pid: u32,
    pub url: String,
    data_dir: PathBuf,
    log_path: PathBuf,
}

impl Cloud {
    pub fn start(spec: &CloudSpec<'_>) -> anyhow::Result<Self> {
        let bin = spec.bin;
        if !bin.is_file() {
            bail!(
                "stratus binary not found at {} (build it with `cargo build --release -p stratus`, or pass --stratus-bin)",
                bin.display()
            );
        }
        let data_dir = match &spec.data_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("stratus-bench-{}", uuid::Uuid::new_v4())),
        };
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let log_path = spec.log_file.map(Path::to_path_buf).unwrap_or_else(|| data_dir.join("stratus.log"));
        // From here on, Drop cleans up whatever happens.
        let mut cloud = Self { child: None, pid: 0, url: String::new(), data_dir, log_path };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cloud.log_path)
            .with_context(|| format!("cannot open log file {}", cloud.log_path.display()))?;

        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("STRATUS_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("up")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&cloud.data_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        cloud.pid = child.id();
        let stdout = child.stdout.take();
        cloud.child = Some(child);
        let Some(stdout) = stdout else { bail!("no stdout pipe to stratus") };

        // A thread reads stdout (and keeps draining it so stratus never blocks on a full pipe).
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(u) = line.strip_prefix("Stratus is listening on ")
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(u.trim().to_string());
                }
            }
        });
        let deadline = Instant::now() + spec.startup_timeout;
        match rx.recv_timeout(spec.startup_timeout) {
            Ok(url) => cloud.url = url,
            Err(e) => {
                let why = match cloud.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => format!("it exited with {status}"),
                    _ if Instant::now() >= deadline || matches!(e, mpsc::RecvTimeoutError::Timeout) => {
                        format!("it did not report a listen address within {:?}", spec.startup_timeout)
                    }
                    _ => "its stdout closed before it reported a listen address".to_string(),
                };
                bail!("stratus did not start: {why}; last lines of its log:\n{}", cloud.log_tail(30));
            }
        }
        Ok(cloud)
    }

    /// The cloud's data dir (hosts, VMs, volumes and the database live under it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where stratus's stderr goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Last `n` lines of stratus's log (for error messages).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Is the process still running? (An error names its exit status.)
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait()?
        {
            bail!("stratus exited with {status}; last lines of its log:\n{}", self.log_tail(30));
        }
        Ok(())
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // VMs, watchdogs and storage daemons outlive their agents by design:
        // end every process that names this cloud's data dir.
        let _ = Command::new("pkill").arg("-9").arg("-f").arg(self.data_dir.as_os_str()).status();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
