//! Running `qemu-img` on tenant images: always under resource limits (an
//! image crafted to make qemu-img allocate or spin must not take the host
//! down, as Nova's `QEMU_IMG_LIMITS` guard against) and, by the callers'
//! contract, always with an explicit `-f` from [`crate::check`].
//!
//! Limits are set with `prlimit(1)` wrapping the call, so no `unsafe`
//! `pre_exec` hook is needed.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Resource limits for one `qemu-img` run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Address space, bytes (`RLIMIT_AS`).
    pub address_space: u64,
    /// CPU time, seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
}

/// For `qemu-img info` / `create` (Nova: 1 GiB, 30 s).
pub const INFO: Limits = Limits { address_space: 1 << 30, cpu_seconds: 30 };

/// For `qemu-img convert`, which decompresses and copies a whole disk.
pub const CONVERT: Limits = Limits { address_space: 2 << 30, cpu_seconds: 600 };

/// The tool that applies the limits.
pub const PRLIMIT: &str = "prlimit";

/// Program and arguments that run `qemu_img args…` under `limits`: pass
/// them to `Command::new(program).args(args)`.
pub fn limited<S: AsRef<OsStr>>(qemu_img: &Path, limits: Limits, args: &[S]) -> (PathBuf, Vec<OsString>) {
    let mut all: Vec<OsString> = vec![
        format!("--as={}", limits.address_space).into(),
        format!("--cpu={}", limits.cpu_seconds).into(),
        "--".into(),
        qemu_img.as_os_str().to_owned(),
    ];
    all.extend(args.iter().map(|a| a.as_ref().to_owned()));
    (PathBuf::from(PRLIMIT), all)
}
