//! `stratus-bench`: how fast do server deletes finish?
//!
//! Starts a real `stratus up` (release build) on a free port with a temp data
//! dir, unlimited quota and a fast fake driver, authenticates as `demo`, and
//! runs two workloads, each on servers it boots first (flavor `1`, `cirros`):
//!
//! - `delete_all_at_once`: every DELETE fired with bounded concurrency; a
//!   poller lists the project's servers (`GET /servers/detail`, every
//!   `--poll-ms`, one request in flight) and notes when each id disappears.
//!   Listing is what a client waiting for many deletes would do, and it keeps
//!   the load on the server bounded (one request per interval instead of N
//!   GETs per interval); a listed server disappears at the same moment its
//!   `GET /servers/{id}` turns 404 (both read live rows only). The time a
//!   disappearance is noted is when that list response arrived, so
//!   time-to-404 is an upper bound with a resolution of interval + list
//!   latency (reported under `gone_poller`).
//! - `delete_one_at_a_time`: DELETE, then `GET /servers/{id}` every
//!   `--serial-poll-ms` until 404, then the next server.
//!
//! For each: DELETE request latency and time-to-404 percentiles
//! (nearest-rank), deletes per second (N / time from first DELETE to last
//! server gone), CPU of the stratus process per delete (utime+stime from
//! /proc), plus peak RSS (VmHWM) of the process and the boot figures.
//! Prints one JSON document to stdout and `--out`, and a table to stderr.
//!
//! `--workload qemu` instead measures real VMs (see [`qemu`]): boot time of
//! the tiny guest, DELETE → 404 on a live host, DELETE → 404 and → storage
//! fence of a real zombie per volume backend, and the RSS of the agent and
//! the control plane with ten VMs running.

mod api;
mod cloud;
mod liveness;
mod qemu;
mod stats;
mod workloads;

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use workloads::{ListKind, Probe};

const ADMIN_PW: &str = "bench-admin-secret";
const DEMO_PW: &str = "bench-demo-secret";

/// What the benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// Deletes (and boots) of many servers with the fake driver.
    Delete,
    /// Real VMs: boot, delete on a live host, zombie fencing per backend, RSS.
    Qemu,
    /// Many simulated hosts over NATS against one controller: joins, lease
    /// renewals (controller CPU, database commits), failure detection, and
    /// deletes on simulated hosts (`--servers`).
    Liveness,
}

#[derive(Parser, Debug)]
#[command(name = "stratus-bench", about = "Benchmark server deletes against a real `stratus up`")]
struct Args {
    /// `delete` (fake driver, default) or `qemu` (real VMs).
    #[arg(long, value_enum, default_value = "delete")]
    workload: Workload,
    /// qemu: directory with the tiny guest's `vmlinuz` and `initrd.img`.
    #[arg(long, env = "STRATUS_GUEST_DIR", default_value = "target/guest")]
    guest_dir: PathBuf,
    /// qemu: Ceph config of the cluster for the `rbd` backend.
    #[arg(long, env = "CEPH_CONF")]
    ceph_conf: Option<PathBuf>,
    /// qemu: volume backends of the zombie part (repeatable; default:
    /// `local`, plus `rbd` when a Ceph config is given).
    #[arg(long = "backend", value_enum)]
    backends: Vec<qemu::Backend>,
    /// qemu: servers booted one at a time and measured.
    #[arg(long, default_value_t = 5)]
    vms: usize,
    /// qemu: real VMs running while RSS is read (also the live-host delete samples).
    #[arg(long, default_value_t = 10)]
    rss_vms: usize,
    /// qemu: zombie deletes per backend.
    #[arg(long, default_value_t = 3)]
    zombie_samples: usize,
    /// liveness: simulated hosts.
    #[arg(long, default_value_t = 100_000)]
    hosts: usize,
    /// liveness: NATS connections the simulated hosts share.
    #[arg(long, default_value_t = 8)]
    sim_connections: usize,
    /// liveness: joins in flight at most.
    #[arg(long, default_value_t = 256)]
    join_concurrency: usize,
    /// liveness: seconds of steady renewals measured.
    #[arg(long, default_value_t = 30)]
    steady_secs: u64,
    /// liveness: share of the hosts that fail at once, percent.
    #[arg(long, default_value_t = 1.0)]
    fail_percent: f64,
    /// The stratus binary to start (a release build).
    #[arg(long, default_value = "target/release/stratus")]
    stratus_bin: PathBuf,
    /// Servers of `delete_all_at_once` (0 skips it).
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// Servers of `delete_one_at_a_time` (0 skips it).
    #[arg(long, default_value_t = 200)]
    serial_servers: usize,
    /// DELETE requests in flight at most (`delete_all_at_once`).
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// POST /servers requests in flight at most (boot phases).
    #[arg(long, default_value_t = 64)]
    boot_concurrency: usize,
    /// Interval of the server-list poller (boot and `delete_all_at_once`), ms.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Interval of the GET /servers/{id} poller of `delete_one_at_a_time`, ms.
    #[arg(long, default_value_t = 5)]
    serial_poll_ms: u64,
    /// List the "gone" poller of `delete_all_at_once` reads.
    #[arg(long, value_enum, default_value = "detail")]
    gone_poll: ListKind,
    /// Fake compute hosts of the cloud.
    #[arg(long, default_value_t = 2)]
    fake_hosts: u32,
    /// STRATUS_LOG of the cloud (e.g. `info` to see its timing lines).
    #[arg(long, default_value = "warn")]
    stratus_log: String,
    /// Keep stratus's stderr in this file (default: in the temp data dir, removed at exit).
    #[arg(long)]
    stratus_log_file: Option<PathBuf>,
    /// Extra environment of the cloud, KEY=VALUE (repeatable; overrides the benchmark's settings).
    #[arg(long = "stratus-env", value_name = "KEY=VALUE")]
    stratus_env: Vec<String>,
    /// Before deleting, time this many sequential list calls of each kind
    /// (`/servers/detail`, `/servers`) over the booted servers (0 skips).
    #[arg(long, default_value_t = 10)]
    list_probe_calls: usize,
    /// Give up on a phase (all ACTIVE, all gone) after this many seconds.
    #[arg(long, default_value_t = 600)]
    phase_timeout_secs: u64,
    /// Seconds to wait for stratus to report its listen address.
    #[arg(long, default_value_t = 60)]
    startup_timeout_secs: u64,
    /// Where the JSON report is written (also printed to stdout); default
    /// `target/bench/delete.json`, or `target/bench/qemu.json` for `--workload qemu`.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Args {
    fn cloud_env(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut env: Vec<(String, String)> = [
            ("STRATUS_ADMIN_PASSWORD", ADMIN_PW),
            ("STRATUS_DEMO_PASSWORD", DEMO_PW),
            ("STRATUS_QUOTA_INSTANCES", "-1"),
            ("STRATUS_QUOTA_CORES", "-1"),
            ("STRATUS_QUOTA_RAM", "-1"),
            ("STRATUS_FAKE_SPAWN_DELAY", "0.01"),
            ("STRATUS_FAKE_DESTROY_DELAY", "0"),
            ("STRATUS_FAKE_HOST_VCPUS", "100000"),
            ("STRATUS_FAKE_HOST_RAM_MB", "100000000"),
            ("STRATUS_FAKE_HOST_DISK_GB", "10000000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.push(("STRATUS_FAKE_HOSTS".into(), self.fake_hosts.to_string()));
        env.push(("STRATUS_LOG".into(), self.stratus_log.clone()));
        for kv in &self.stratus_env {
            let (k, v) = kv.split_once('=').with_context(|| format!("--stratus-env wants KEY=VALUE, got {kv}"))?;
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        Ok(env)
    }
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new(cmd).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn machine(tck: u64) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string());
    let mem_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": model,
        "mem_total_mib": mem_kib.map(|k| k / 1024),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        "clk_tck": tck,
    })
}

fn git() -> Value {
    json!({
        "commit": command_output("git", &["rev-parse", "--short", "HEAD"]),
        "dirty": command_output("git", &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
    })
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// `--workload qemu`: real VMs, each part on a fresh cloud.
async fn run_qemu(args: &Args) -> anyhow::Result<Value> {
    let tck = stats::clk_tck();
    if !args.stratus_bin.is_file() {
        anyhow::bail!(
            "stratus binary not found at {} (build it with `cargo build --release -p stratus`, or pass --stratus-bin target/debug/stratus)",
            args.stratus_bin.display()
        );
    }
    let mut backends = args.backends.clone();
    if backends.is_empty() {
        backends.push(qemu::Backend::Local);
        if args.ceph_conf.is_some() {
            backends.push(qemu::Backend::Rbd);
        }
    }
    backends.dedup();
    let spec = qemu::QemuSpec {
        bin: &args.stratus_bin,
        guest_dir: &args.guest_dir,
        ceph_conf: args.ceph_conf.as_deref(),
        backends,
        vms: args.vms,
        rss_vms: args.rss_vms.max(args.vms),
        zombie_samples: args.zombie_samples,
        startup_timeout: Duration::from_secs(args.startup_timeout_secs),
        timeout: Duration::from_secs(args.phase_timeout_secs.min(300)),
        admin_pw: ADMIN_PW,
        demo_pw: DEMO_PW,
    };
    let (workloads, facts) = qemu::run(&spec).await?;
    let bin = std::fs::canonicalize(&args.stratus_bin).unwrap_or_else(|_| args.stratus_bin.clone());
    let profile = bin.parent().and_then(|p| p.file_name()).map(|p| p.to_string_lossy().to_string());
    Ok(json!({
        "benchmark": "stratus-qemu",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "machine": machine(tck),
        "git": git(),
        "settings": {
            "stratus_bin": bin.display().to_string(),
            "stratus_build": profile,
            "stratus_bin_modified": std::fs::metadata(&args.stratus_bin)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
            "qemu": facts,
        },
        "workloads": workloads,
    }))
}

/// `--workload liveness`: simulated hosts against one controller.
async fn run_liveness(args: &Args) -> anyhow::Result<Value> {
    let tck = stats::clk_tck();
    let env = args.cloud_env()?;
    let spec = liveness::LivenessSpec {
        bin: &args.stratus_bin,
        env: env.clone(),
        hosts: args.hosts,
        connections: args.sim_connections,
        join_concurrency: args.join_concurrency,
        steady: Duration::from_secs(args.steady_secs),
        fail_percent: args.fail_percent,
        servers: args.servers,
        concurrency: args.concurrency,
        boot_concurrency: args.boot_concurrency,
        poll: Duration::from_millis(args.poll_ms),
        timeout: Duration::from_secs(args.phase_timeout_secs),
        startup_timeout: Duration::from_secs(args.startup_timeout_secs),
        demo_pw: DEMO_PW,
        log_file: args.stratus_log_file.as_deref(),
    };
    let workload = liveness::run(&spec).await?;
    let stratus_env: serde_json::Map<String, Value> =
        env.iter().filter(|(k, _)| !k.ends_with("_PASSWORD")).map(|(k, v)| (k.clone(), json!(v))).collect();
    Ok(json!({
        "benchmark": "stratus-liveness",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "machine": machine(tck),
        "git": git(),
        "settings": {
            "stratus_bin": args.stratus_bin.display().to_string(),
            "hosts": args.hosts,
            "servers": args.servers,
            "concurrency": args.concurrency,
            "poll_ms": args.poll_ms,
            "steady_secs": args.steady_secs,
            "fail_percent": args.fail_percent,
            "stratus_env": stratus_env,
        },
        "workloads": {"liveness": workload},
    }))
}

async fn run(args: &Args) -> anyhow::Result<Value> {
    let tck = stats::clk_tck();
    let env = args.cloud_env()?;
    let timeout = Duration::from_secs(args.phase_timeout_secs);
    let poll = Duration::from_millis(args.poll_ms);
    let mut cloud = cloud::Cloud::start(&cloud::CloudSpec {
        bin: &args.stratus_bin,
        env: env.clone(),
        log_file: args.stratus_log_file.as_deref(),
        startup_timeout: Duration::from_secs(args.startup_timeout_secs),
        data_dir: None,
    })?;
    eprintln!("stratus-bench: stratus (pid {}) listening on {}", cloud.pid, cloud.url);
    let probe = Probe { pid: cloud.pid, tck };

    let work = async {
        let api = api::Api::login(&cloud.url, "demo", DEMO_PW, "demo").await?;
        let image = api.cirros().await?;
        let boot_spec = |prefix: &'static str, n: usize| workloads::BootSpec {
            image: &image,
            prefix,
            n,
            concurrency: args.boot_concurrency,
            poll,
            timeout,
        };
        let mut workloads = serde_json::Map::new();
        if args.servers > 0 {
            eprintln!("stratus-bench: booting {} servers", args.servers);
            let b = workloads::boot(&api, probe, boot_spec("bench-all", args.servers))
                .await
                .context("boot phase of delete_all_at_once")?;
            let probe_report = if args.list_probe_calls > 0 {
                eprintln!("stratus-bench: timing {} list calls of each kind", args.list_probe_calls);
                Some(
                    workloads::list_probe(&api, probe, b.ids.len(), args.list_probe_calls)
                        .await
                        .context("list probe")?,
                )
            } else {
                None
            };
            eprintln!("stratus-bench: deleting {} servers at once (concurrency {})", b.ids.len(), args.concurrency);
            let mut r =
                workloads::delete_all_at_once(&api, probe, b.ids, args.concurrency, args.gone_poll, poll, timeout)
                    .await
                    .context("delete_all_at_once")?;
            r["boot"] = b.report;
            if let Some(p) = probe_report {
                r["list_probe"] = p;
            }
            r["vm_rss_mib_after"] = json!(mib(stats::status_kib(&cloud.pid.to_string(), "VmRSS")?));
            workloads.insert("delete_all_at_once".into(), r);
        }
        if args.serial_servers > 0 {
            eprintln!("stratus-bench: booting {} servers", args.serial_servers);
            let b = workloads::boot(&api, probe, boot_spec("bench-serial", args.serial_servers))
                .await
                .context("boot phase of delete_one_at_a_time")?;
            eprintln!("stratus-bench: deleting {} servers one at a time", b.ids.len());
            let mut r = workloads::delete_one_at_a_time(
                &api,
                probe,
                b.ids,
                Duration::from_millis(args.serial_poll_ms),
                timeout,
            )
            .await
            .context("delete_one_at_a_time")?;
            r["boot"] = b.report;
            r["vm_rss_mib_after"] = json!(mib(stats::status_kib(&cloud.pid.to_string(), "VmRSS")?));
            workloads.insert("delete_one_at_a_time".into(), r);
        }
        let peak = stats::status_kib(&cloud.pid.to_string(), "VmHWM")?;
        anyhow::Ok((Value::Object(workloads), peak))
    };
    let (workloads, peak_kib) = match work.await {
        Ok(v) => v,
        Err(e) => {
            let why = match cloud.check_alive() {
                Err(dead) => format!("{dead}"),
                Ok(()) => format!("stratus still running; last lines of its log:\n{}", cloud.log_tail(20)),
            };
            return Err(e.context(why));
        }
    };
    let stratus_env: serde_json::Map<String, Value> =
        env.iter().filter(|(k, _)| !k.ends_with("_PASSWORD")).map(|(k, v)| (k.clone(), json!(v))).collect();
    Ok(json!({
        "benchmark": "stratus-delete",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "machine": machine(tck),
        "git": git(),
        "settings": {
            "stratus_bin": args.stratus_bin.display().to_string(),
            "stratus_bin_modified": std::fs::metadata(&args.stratus_bin)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
            "servers": args.servers,
            "serial_servers": args.serial_servers,
            "concurrency": args.concurrency,
            "boot_concurrency": args.boot_concurrency,
            "flavor": "1",
            "image": "cirros",
            "poll_ms": args.poll_ms,
            "serial_poll_ms": args.serial_poll_ms,
            "list_probe_calls": args.list_probe_calls,
            "gone_poll": format!("{:?}", args.gone_poll).to_lowercase(),
            "stratus_env": stratus_env,
        },
        "workloads": workloads,
        "peak_rss_mib": mib(peak_kib),
    }))
}

fn table(report: &Value) -> String {
    let f = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x:.1}"),
        None => "-".into(),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{:<22} {:>6} {:>26} {:>26} {:>10} {:>10}\n",
        "workload", "n", "DELETE ms p50/p95/p99/max", "to-404 ms p50/p95/p99/max", "deletes/s", "cpu ms/del"
    ));
    if let Some(w) = report["workloads"].as_object() {
        for (name, r) in w {
            let q =
                |k: &str| format!("{}/{}/{}/{}", f(&r[k]["p50"]), f(&r[k]["p95"]), f(&r[k]["p99"]), f(&r[k]["max"]));
            out.push_str(&format!(
                "{:<22} {:>6} {:>26} {:>26} {:>10} {:>10}\n",
                name,
                r["count"],
                q("delete_latency_ms"),
                q("time_to_404_ms"),
                f(&r["deletes_per_second"]),
                f(&r["cpu_ms_per_delete"])
            ));
            let b = &r["boot"];
            out.push_str(&format!(
                "{:<22} {:>6} POST ms p50 {}, POST->ACTIVE ms p50/p95 {}/{}, {} boots/s\n",
                format!("  boot for it"),
                b["count"],
                f(&b["post_latency_ms"]["p50"]),
                f(&b["post_to_active_ms"]["p50"]),
                f(&b["post_to_active_ms"]["p95"]),
                f(&b["boots_per_second"])
            ));
        }
    }
    out.push_str(&format!("peak RSS of stratus: {} MiB\n", f(&report["peak_rss_mib"])));
    out
}

async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[tokio::main(worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Dropping `run` (on a signal) drops the cloud: the process is killed, the data dir removed.
    let report = tokio::select! {
        r = async {
            match args.workload {
                Workload::Delete => run(&args).await,
                Workload::Qemu => run_qemu(&args).await,
                Workload::Liveness => run_liveness(&args).await,
            }
        } => r?,
        _ = interrupted() => anyhow::bail!("interrupted; stratus stopped"),
    };
    let out = args.out.clone().unwrap_or_else(|| match args.workload {
        Workload::Delete => PathBuf::from("target/bench/delete.json"),
        Workload::Qemu => PathBuf::from("target/bench/qemu.json"),
        Workload::Liveness => PathBuf::from("target/bench/liveness.json"),
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&out, format!("{text}\n")).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{text}");
    match args.workload {
        Workload::Delete => eprint!("{}", table(&report)),
        Workload::Qemu => eprint!("{}", qemu::table(&report)),
        Workload::Liveness => {}
    }
    eprintln!("report written to {}", out.display());
    Ok(())
}
