//! Percentiles and process accounting from /proc.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Milliseconds with 0.01 ms resolution.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Nearest-rank percentile of sorted samples: the value at rank ceil(p/100 * n).
pub fn nearest_rank(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `{p50, p95, p99, max}` in milliseconds (`null`s when there are no samples).
pub fn summary(samples: &[Duration]) -> Value {
    let mut s = samples.to_vec();
    s.sort();
    let f = |p: f64| nearest_rank(&s, p).map(ms);
    json!({"p50": f(50.0), "p95": f(95.0), "p99": f(99.0), "max": s.last().copied().map(ms), "samples": s.len()})
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: fields resume after the last ')'.
    let Some(close) = text.rfind(')') else { bail!("unexpected format of {path}") };
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        rest.get(n - 3).and_then(|v| v.parse().ok()).with_context(|| format!("no field {n} in {path}"))
    };
    Ok(field(14)? + field(15)?)
}

/// utime + stime and name of every thread of a process: tid -> (name, ticks).
pub fn thread_ticks(pid: u32) -> BTreeMap<u64, (String, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u64>().ok()) else { continue };
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim().to_string();
        if let Ok(t) = cpu_ticks(&format!("{pid}/task/{tid}")) {
            out.insert(tid, (name, t));
        }
    }
    out
}

/// CPU ms per thread group between two [`thread_ticks`] snapshots. Threads
/// are grouped by name, except SQLite connection threads (sqlx runs each
/// connection on its own thread, all named `sqlx-sqlite-worker-N`, which the
/// kernel truncates), which are told apart by creation order (tid): the
/// first one is the write connection, opened and migrated before the read
/// pool exists.
pub fn thread_cpu_ms(
    before: &BTreeMap<u64, (String, u64)>,
    after: &BTreeMap<u64, (String, u64)>,
    tck: u64,
) -> BTreeMap<String, f64> {
    let mut groups: BTreeMap<String, f64> = BTreeMap::new();
    let mut sqlite_rank = 0usize;
    for (tid, (name, ticks)) in after {
        let delta = ticks.saturating_sub(before.get(tid).map(|b| b.1).unwrap_or(0));
        let key = if name.starts_with("sqlx-sqlite") {
            sqlite_rank += 1;
            format!("sqlite connection thread #{sqlite_rank}")
        } else {
            name.clone()
        };
        *groups.entry(key).or_insert(0.0) += delta as f64 * 1000.0 / tck as f64;
    }
    groups.retain(|_, v| *v > 0.0);
    groups
}

/// A field of /proc/<pid>/status in kB (e.g. `VmHWM`).
pub fn status_kib(pid: &str, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            let n = v.trim().trim_end_matches("kB").trim();
            return n.parse().with_context(|| format!("bad {key} line in {path}: {line}"));
        }
    }
    bail!("no {key} in {path}")
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if that fails).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// CPU use of the benchmarked process and of this one across a phase.
pub struct CpuMark {
    server: u64,
    client: u64,
    threads: BTreeMap<u64, (String, u64)>,
}

impl CpuMark {
    pub fn take(pid: u32) -> anyhow::Result<Self> {
        Ok(Self { server: cpu_ticks(&pid.to_string())?, client: cpu_ticks("self")?, threads: thread_ticks(pid) })
    }

    /// CPU ms of the server and of this process since `self`, and the server's by thread group.
    pub fn since(&self, pid: u32, tck: u64) -> anyhow::Result<CpuSpent> {
        let now = Self::take(pid)?;
        let to_ms = |t: u64| t as f64 * 1000.0 / tck as f64;
        Ok(CpuSpent {
            server_ms: to_ms(now.server.saturating_sub(self.server)),
            client_ms: to_ms(now.client.saturating_sub(self.client)),
            server_by_thread_ms: thread_cpu_ms(&self.threads, &now.threads, tck),
        })
    }
}

/// CPU spent across a phase.
pub struct CpuSpent {
    pub server_ms: f64,
    pub client_ms: f64,
    pub server_by_thread_ms: BTreeMap<String, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_definition() {
        let s: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(nearest_rank(&s, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(nearest_rank(&s, 95.0), Some(Duration::from_millis(10)));
        assert_eq!(nearest_rank(&s, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(nearest_rank(&s[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }

    #[test]
    fn reads_own_proc_entries() {
        assert!(cpu_ticks("self").is_ok());
        assert!(status_kib("self", "VmHWM").is_ok_and(|k| k > 0));
    }
}
