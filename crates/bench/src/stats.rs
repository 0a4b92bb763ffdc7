//! Percentiles and process accounting from /proc.

use anyhow::{Context, bail};
use serde_json::{Value, json};
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
#[derive(Clone, Copy)]
pub struct CpuMark {
    server: u64,
    client: u64,
}

impl CpuMark {
    pub fn take(pid: u32) -> anyhow::Result<Self> {
        Ok(Self { server: cpu_ticks(&pid.to_string())?, client: cpu_ticks("self")? })
    }

    /// (server ms, client ms) since `self`.
    pub fn since(&self, pid: u32, tck: u64) -> anyhow::Result<(f64, f64)> {
        let now = Self::take(pid)?;
        let to_ms = |t: u64| t as f64 * 1000.0 / tck as f64;
        Ok((to_ms(now.server.saturating_sub(self.server)), to_ms(now.client.saturating_sub(self.client))))
    }
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
