//! Helpers shared by the backends: volume-name validation, running a CLI with
//! a deadline, inspecting an image file and running `qemu-img` under limits, and a temporary file
//! that removes itself.

use crate::BlockError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use stratus_imageformat::{InspectError, qemu_img};
use stratus_types::image::DiskFormat;
use tokio::process::Command;

/// Bytes in one GiB (volume sizes are whole GiB, as in Cinder).
pub(crate) const GIB: u64 = 1 << 30;

/// Longest accepted volume name (RBD allows more, but file names and
/// temporary import names append suffixes).
const MAX_NAME_LEN: usize = 200;

/// Volume names end up in file paths (`local`) and in CLI image specs
/// (`pool/name`, where `@` would select a snapshot and `/` a namespace), so
/// only a safe character set is accepted: ASCII letters, digits, `-`, `_`,
/// `.`, not starting with `.` or `-` (no hidden files, no CLI options).
pub(crate) fn validate_name(kind: &str, name: &str) -> Result<(), BlockError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BlockError::Backend(format!(
            "invalid {kind} name {name:?}: use 1-{MAX_NAME_LEN} of [A-Za-z0-9._-], not starting with '.' or '-'"
        )))
    }
}

/// `size_gb` GiB in bytes, refusing sizes that overflow.
pub(crate) fn gib_to_bytes(size_gb: u64) -> Result<u64, BlockError> {
    size_gb.checked_mul(GIB).ok_or_else(|| BlockError::Backend(format!("size {size_gb} GiB is too large")))
}

/// What a finished CLI call returned.
#[derive(Debug)]
pub(crate) struct CmdOutput {
    /// The rendered command line, for error messages.
    pub cmdline: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CmdOutput {
    /// Did the command exit 0?
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A [`BlockError::Backend`] naming the command, its exit code and its
    /// stderr (the CLIs put the useful part of every error there).
    pub fn error(&self, what: &str) -> BlockError {
        let code = self.code.map_or_else(|| "a signal".to_owned(), |c| c.to_string());
        BlockError::Backend(format!(
            "{what}: `{}` exited with {code}: {}",
            self.cmdline,
            last_chars(self.stderr.trim(), 2000)
        ))
    }

    /// `Ok(self)` when the command exited 0, else [`CmdOutput::error`].
    pub fn ok(self, what: &str) -> Result<Self, BlockError> {
        if self.success() { Ok(self) } else { Err(self.error(what)) }
    }
}

/// The last `max` characters of `s` (errors of the Ceph CLIs start with log
/// noise and end with the reason).
pub(crate) fn last_chars(s: &str, max: usize) -> &str {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    match s.char_indices().nth(n - max) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

/// Run `program args…` with no stdin, capturing its output, and kill it
/// (SIGKILL: librbd clients waiting for a lock ignore SIGTERM) if it does not
/// finish within `timeout`. Any exit code is returned as data; only failing
/// to start, or the deadline, is an error.
pub(crate) async fn run<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
    envs: &[(&str, &std::ffi::OsStr)],
    timeout: Duration,
) -> Result<CmdOutput, BlockError> {
    let cmdline = std::iter::once(program.as_os_str())
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tracing::debug!(%cmdline, "running");
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(BlockError::Backend(format!("`{cmdline}` did not finish within {timeout:?}; killed"))),
        Ok(Err(e)) => return Err(BlockError::Backend(format!("cannot run `{cmdline}`: {e}"))),
        Ok(Ok(out)) => out,
    };
    Ok(CmdOutput {
        cmdline,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// How a checked image becomes a raw volume.
#[derive(Debug, Clone)]
pub(crate) enum ImageSource {
    /// Convert with `qemu-img convert -f <format>`.
    Convert {
        /// The `qemu-img` driver name, from the inspected bytes.
        format: &'static str,
        /// Size of the disk the image describes, in bytes.
        virtual_size: u64,
    },
    /// No format driver can read it (a stand-in image): copy its bytes,
    /// which reads nothing but the file itself.
    CopyBytes,
}

/// Deadline of the `qemu-img` calls (a convert of a large image takes long).
pub(crate) const QEMU_IMG_TIMEOUT: Duration = Duration::from_secs(600);

/// Inspect `image` (declared `disk_format`) with the format inspector
/// before anything reads it as an image: the bytes must be a safe image of
/// that format (no backing or data file, no VMDK extents, no absurd size),
/// or else the volume is refused ([`BlockError::ImageRefused`]). A header
/// too broken for its format is only copied as bytes.
pub(crate) async fn inspect_image(image: &Path, disk_format: DiskFormat) -> Result<ImageSource, BlockError> {
    let path = image.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || stratus_imageformat::check(&path, disk_format))
        .await
        .map_err(|e| BlockError::Backend(format!("image inspection did not finish: {e}")))?;
    match checked {
        Ok(found) => match found.format.qemu_driver() {
            Some(format) => Ok(ImageSource::Convert { format, virtual_size: found.virtual_size }),
            None => Err(BlockError::ImageRefused(format!(
                "Image format {} is not supported for volumes.",
                found.format.name()
            ))),
        },
        Err(InspectError::Malformed { format, reason }) => {
            tracing::info!(image = %image.display(), format, reason, "image header unreadable; copying bytes");
            Ok(ImageSource::CopyBytes)
        }
        Err(InspectError::Io(e)) => Err(BlockError::Backend(format!("reading image {}: {e}", image.display()))),
        Err(e) => {
            tracing::warn!(image = %image.display(), error = %e, "image refused by the format inspector");
            Err(BlockError::ImageRefused(e.to_string()))
        }
    }
}

/// Run `qemu-img args…` under the inspector's resource limits.
pub(crate) async fn qemu_img<S: AsRef<std::ffi::OsStr>>(
    limits: qemu_img::Limits,
    args: &[S],
) -> Result<CmdOutput, BlockError> {
    let (program, args) = qemu_img::limited(Path::new("qemu-img"), limits, args);
    run(&program, &args, &[], QEMU_IMG_TIMEOUT).await
}

/// Convert `image` (of the inspected `format`) to a raw file at `dst` with
/// `qemu-img convert`, always naming the input format.
pub(crate) async fn convert_to_raw(image: &Path, format: &str, dst: &Path) -> Result<(), BlockError> {
    let args = [
        std::ffi::OsStr::new("convert"),
        std::ffi::OsStr::new("-f"),
        std::ffi::OsStr::new(format),
        std::ffi::OsStr::new("-O"),
        std::ffi::OsStr::new("raw"),
        image.as_os_str(),
        dst.as_os_str(),
    ];
    qemu_img(qemu_img::CONVERT, &args).await?.ok("converting the image to raw").map(|_| ())
}

/// A file path removed (best effort) when dropped: temporary files of an
/// interrupted create must not accumulate.
#[derive(Debug)]
pub(crate) struct TempPath(pub PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.0.display(), error = %e, "cannot remove temporary file"),
        }
    }
}

/// Short random suffix for temporary names.
pub(crate) fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("volume", "vol-1_a.b").is_ok());
        for bad in ["", ".hidden", "-rf", "a/b", "a@snap", "a b", "ü", &"x".repeat(201)] {
            assert!(validate_name("volume", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tail() {
        assert_eq!(last_chars("abcdef", 3), "def");
        assert_eq!(last_chars("ab", 3), "ab");
        assert_eq!(last_chars("ééé", 2), "éé");
    }
}
