//! Disk image format inspection, written for Stratus (behaviour modelled on
//! Glance's and Nova's `format_inspector`, not their code).
//!
//! Tenants upload image bytes and name a `disk_format`. Handing such a file
//! to `qemu-img` unchecked lets it follow references to other files: a qcow2
//! backing file or external data file, a VMDK descriptor's extents (`RW 1
//! FLAT "../admin.password" 0`), a VMDK sparse header whose embedded
//! descriptor names extents. [`check`] reads the image's header bytes,
//! detects the format the way `qemu-img` would probe it, requires it to be
//! the declared one and refuses anything that refers outside the file or
//! claims an absurd size. [`qemu_img`] then runs `qemu-img` with that
//! explicit format and under resource limits.
//!
//! The [`InspectError`] texts are shown to tenants: they never contain a path.

pub mod qemu_img;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use stratus_types::image::DiskFormat;

/// Largest virtual size accepted (64 TiB, VHDX's maximum; larger claims only
/// serve to make a converter allocate or loop).
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;

/// How many header bytes detection reads (the ISO 9660 volume descriptor is
/// at 32 KiB; qcow2 header extensions live in the first cluster).
const HEAD: usize = 64 << 10;

/// Largest embedded VMDK descriptor read (real ones are under 1 KiB).
const MAX_DESCRIPTOR: u64 = 1 << 20;

/// A format detected from an image's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No known header: plain bytes.
    Raw,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// VMware sparse extent (`KDMV`).
    Vmdk,
    /// A VMDK text descriptor: a file that only names other files.
    VmdkDescriptor,
    /// Legacy VMware (`COWD`).
    Vmdk3,
    /// Virtual PC / Hyper-V VHD (dynamic; fixed VHDs are raw with a footer).
    Vpc,
    /// Hyper-V VHDX.
    Vhdx,
    /// VirtualBox VDI.
    Vdi,
    /// ISO 9660 optical disc.
    Iso,
    /// QEMU enhanced disk (can name a backing file).
    Qed,
    /// LUKS encrypted container.
    Luks,
    /// Bochs disk.
    Bochs,
    /// Compressed loop.
    Cloop,
    /// Parallels / ploop.
    Parallels,
}

impl Format {
    /// The name shown in errors (Glance's `disk_format` spelling where one exists).
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vmdk => "vmdk",
            Self::VmdkDescriptor => "vmdk descriptor",
            Self::Vmdk3 => "vmdk3",
            Self::Vpc => "vhd",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
            Self::Iso => "iso",
            Self::Qed => "qed",
            Self::Luks => "luks",
            Self::Bochs => "bochs",
            Self::Cloop => "cloop",
            Self::Parallels => "ploop",
        }
    }

    /// The `qemu-img -f` driver that reads this format, for the formats
    /// Stratus converts (`None`: never handed to qemu-img).
    pub fn qemu_driver(self) -> Option<&'static str> {
        match self {
            Self::Raw | Self::Iso => Some("raw"),
            Self::Qcow2 => Some("qcow2"),
            Self::Vmdk => Some("vmdk"),
            Self::Vpc => Some("vpc"),
            Self::Vhdx => Some("vhdx"),
            Self::Vdi => Some("vdi"),
            _ => None,
        }
    }
}

/// The format an image of `disk_format` must hold. Kernel, ramdisk and AMI
/// images are plain bytes, as Nova treats them.
pub fn expected_format(disk_format: DiskFormat) -> Format {
    match disk_format {
        DiskFormat::Ami | DiskFormat::Ari | DiskFormat::Aki | DiskFormat::Raw => Format::Raw,
        DiskFormat::Vhd => Format::Vpc,
        DiskFormat::Vhdx => Format::Vhdx,
        DiskFormat::Vmdk => Format::Vmdk,
        DiskFormat::Qcow2 => Format::Qcow2,
        DiskFormat::Vdi => Format::Vdi,
        DiskFormat::Iso => Format::Iso,
        DiskFormat::Ploop => Format::Parallels,
    }
}

/// What inspection found in an acceptable image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The detected format.
    pub format: Format,
    /// Size of the disk the image describes, in bytes.
    pub virtual_size: u64,
}

/// Why an image is refused. The texts are shown to tenants.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The bytes are another format than the declared `disk_format`.
    #[error("Image data is {detected} but its disk_format is {declared}.")]
    Mismatch {
        /// Detected from the bytes.
        detected: &'static str,
        /// Declared by the image's `disk_format`.
        declared: &'static str,
    },
    /// The image refers to other files or uses a feature that would.
    #[error("Image is not a safe {format} image: {reason}.")]
    Unsafe {
        /// The detected format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The header is not valid for its format.
    #[error("Image is not a valid {format} image: {reason}.")]
    Malformed {
        /// The detected format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The image claims a virtual size beyond [`MAX_VIRTUAL_SIZE`].
    #[error("Image virtual size {size} bytes exceeds the limit of {MAX_VIRTUAL_SIZE} bytes.")]
    TooLarge {
        /// The claimed size.
        size: u64,
    },
    /// The image file could not be read (not a tenant's fault; logged).
    #[error("Image data could not be read.")]
    Io(#[from] std::io::Error),
}

/// Inspect the image file at `path` and require its bytes to be a safe
/// image of `disk_format`.
pub fn check(path: &Path, disk_format: DiskFormat) -> Result<Inspection, InspectError> {
    let found = inspect(path)?;
    let want = expected_format(disk_format);
    // An ISO 9660 file is plain bytes to qemu: a raw image may be one.
    let matches = found.format == want || (want == Format::Raw && found.format == Format::Iso);
    if !matches {
        return Err(InspectError::Mismatch { detected: found.format.name(), declared: want.name() });
    }
    Ok(found)
}

/// Detect the format of the image file at `path` and check it is safe
/// (no references to other files, a sane virtual size).
pub fn inspect(path: &Path) -> Result<Inspection, InspectError> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = Vec::with_capacity(HEAD);
    (&mut f).take(HEAD as u64).read_to_end(&mut head)?;
    let mut src = Source { f, len, head };
    let found = detect_and_check(&mut src)?;
    if found.virtual_size > MAX_VIRTUAL_SIZE {
        return Err(InspectError::TooLarge { size: found.virtual_size });
    }
    Ok(found)
}

/// An open image: its length, its first [`HEAD`] bytes, and reads beyond.
struct Source {
    f: File,
    len: u64,
    head: Vec<u8>,
}

impl Source {
    /// `n` bytes at `off` (from the head when there), or a malformed error.
    fn read_at(&mut self, off: u64, n: usize, format: Format) -> Result<Vec<u8>, InspectError> {
        let end = off.checked_add(n as u64).filter(|e| *e <= self.len).ok_or_else(|| malformed(format, "truncated"))?;
        if let (Ok(s), Ok(e)) = (usize::try_from(off), usize::try_from(end))
            && e <= self.head.len()
        {
            return Ok(self.head[s..e].to_vec());
        }
        let mut buf = vec![0u8; n];
        self.f.seek(SeekFrom::Start(off))?;
        self.f.read_exact(&mut buf)?;
        Ok(buf)
    }
}

fn malformed(format: Format, reason: &str) -> InspectError {
    InspectError::Malformed { format: format.name(), reason: reason.into() }
}

fn unsafe_(format: Format, reason: impl Into<String>) -> InspectError {
    InspectError::Unsafe { format: format.name(), reason: reason.into() }
}

fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_be_bytes)
}
fn be64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_be_bytes)
}
fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).and_then(|s| s.try_into().ok()).map_or(0, u16::from_le_bytes)
}
fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}
fn le64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// The format `head` starts like, in the order qemu's probes would pick.
fn detect(head: &[u8]) -> Format {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"QFI\xfb") {
        Format::Qcow2
    } else if starts(b"KDMV") {
        Format::Vmdk
    } else if starts(b"COWD") {
        Format::Vmdk3
    } else if starts(b"conectix") {
        Format::Vpc
    } else if starts(b"vhdxfile") {
        Format::Vhdx
    } else if le32(head, 0x40) == 0xbeda_107f {
        Format::Vdi
    } else if starts(b"QED\0") {
        Format::Qed
    } else if starts(b"LUKS\xba\xbe") {
        Format::Luks
    } else if starts(b"Bochs Virtual HD Image") {
        Format::Bochs
    } else if starts(b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=") {
        Format::Cloop
    } else if starts(b"WithoutFreeSpace") || starts(b"WithouFreSpacExt") {
        Format::Parallels
    } else if looks_like_vmdk_descriptor(head) {
        Format::VmdkDescriptor
    } else if head.get(0x8001..0x8006) == Some(b"CD001") {
        Format::Iso
    } else {
        Format::Raw
    }
}

/// qemu takes a text file with a `version=N` line (or the descriptor
/// banner) for a VMDK descriptor.
fn looks_like_vmdk_descriptor(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("# Disk DescriptorFile") || l.starts_with("createType=") || l.starts_with("version=")
    })
}

fn detect_and_check(src: &mut Source) -> Result<Inspection, InspectError> {
    let format = detect(&src.head);
    let virtual_size = match format {
        Format::Raw | Format::Iso => src.len,
        Format::Qcow2 => qcow2(&src.head)?,
        Format::Vmdk => vmdk(src)?,
        Format::Vpc => vpc(&src.head)?,
        Format::Vhdx => vhdx(src)?,
        Format::Vdi => le64(&src.head, 0x170),
        Format::VmdkDescriptor => {
            return Err(unsafe_(format, "a VMDK descriptor file only refers to other files (extents)"));
        }
        Format::Qed | Format::Luks | Format::Bochs | Format::Cloop | Format::Vmdk3 => {
            return Err(unsafe_(format, "this format is not supported"));
        }
        Format::Parallels => le64(&src.head, 0x24).saturating_mul(512),
    };
    Ok(Inspection { format, virtual_size })
}

/// qcow2 incompatible feature bits qemu knows: dirty, corrupt, external
/// data file, compression type, extended L2 entries.
const QCOW2_KNOWN_INCOMPAT: u64 = 0x1f;
/// The incompatible feature bit of an external data file.
const QCOW2_DATA_FILE: u64 = 1 << 2;
/// Header extension naming the external data file.
const QCOW2_EXT_DATA_FILE: u32 = 0x4441_5441;

fn qcow2(h: &[u8]) -> Result<u64, InspectError> {
    let f = Format::Qcow2;
    if h.len() < 72 {
        return Err(malformed(f, "truncated header"));
    }
    let version = be32(h, 4);
    if version != 2 && version != 3 {
        return Err(malformed(f, &format!("unknown version {version}")));
    }
    if be64(h, 8) != 0 || be32(h, 16) != 0 {
        return Err(unsafe_(f, "it has a backing file"));
    }
    let cluster_bits = be32(h, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(malformed(f, "bad cluster size"));
    }
    if be32(h, 32) != 0 {
        return Err(unsafe_(f, "encrypted images are not supported"));
    }
    let header_len = if version == 3 {
        if h.len() < 104 {
            return Err(malformed(f, "truncated header"));
        }
        let incompat = be64(h, 72);
        if incompat & QCOW2_DATA_FILE != 0 {
            return Err(unsafe_(f, "it has an external data file"));
        }
        if incompat & !QCOW2_KNOWN_INCOMPAT != 0 {
            return Err(unsafe_(f, "it uses unknown incompatible features"));
        }
        be32(h, 100) as usize
    } else {
        72
    };
    // Header extensions, up to the end marker (type 0).
    let mut off = header_len;
    while off + 8 <= h.len() {
        let (ty, len) = (be32(h, off), be32(h, off + 4) as usize);
        if ty == 0 {
            break;
        }
        if ty == QCOW2_EXT_DATA_FILE {
            return Err(unsafe_(f, "it names an external data file"));
        }
        off = off.saturating_add(8).saturating_add(len.div_ceil(8) * 8);
    }
    Ok(be64(h, 24))
}

fn vmdk(src: &mut Source) -> Result<u64, InspectError> {
    let f = Format::Vmdk;
    let h = &src.head;
    if h.len() < 512 {
        return Err(malformed(f, "truncated header"));
    }
    let capacity = le64(h, 12);
    let (desc_off, desc_len) = (le64(h, 28), le64(h, 36));
    // qemu parses the embedded descriptor as a descriptor file (extents and
    // all) when the header's capacity is 0.
    if capacity == 0 {
        return Err(unsafe_(f, "a zero capacity makes the embedded descriptor name the extents"));
    }
    if desc_off == 0 || desc_len == 0 {
        return Err(unsafe_(
            f,
            "it has no embedded descriptor (only monolithicSparse and streamOptimized are accepted)",
        ));
    }
    let bytes = desc_len
        .checked_mul(512)
        .filter(|b| *b <= MAX_DESCRIPTOR)
        .ok_or_else(|| malformed(f, "descriptor too large"))?;
    let start = desc_off.checked_mul(512).ok_or_else(|| malformed(f, "bad descriptor offset"))?;
    let desc = src.read_at(start, usize::try_from(bytes).unwrap_or(0), f)?;
    check_vmdk_descriptor(&String::from_utf8_lossy(&desc))?;
    capacity.checked_mul(512).ok_or_else(|| malformed(f, "bad capacity"))
}

/// An embedded descriptor may only describe this one file: `createType`
/// monolithicSparse or streamOptimized and exactly one SPARSE extent whose
/// name has no directory part.
fn check_vmdk_descriptor(text: &str) -> Result<(), InspectError> {
    let f = Format::Vmdk;
    let text = text.split('\0').next().unwrap_or_default();
    let mut create_type = None;
    let mut extents = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.strip_prefix("createType") {
            create_type = Some(v.trim_start().trim_start_matches('=').trim().trim_matches('"').to_string());
        } else if ["RW", "RDONLY", "NOACCESS"].iter().any(|a| line.starts_with(a)) {
            extents.push(line.to_string());
        }
    }
    match create_type.as_deref() {
        Some("monolithicSparse" | "streamOptimized") => {}
        Some(other) => {
            return Err(unsafe_(
                f,
                format!("createType {other:?} is not accepted (only monolithicSparse and streamOptimized)"),
            ));
        }
        None => return Err(unsafe_(f, "its descriptor has no createType")),
    }
    if extents.len() != 1 {
        return Err(unsafe_(f, "it must have exactly one extent, itself"));
    }
    let ext = &extents[0];
    let mut words = ext.split_whitespace();
    let kind = words.nth(2).unwrap_or_default();
    if kind != "SPARSE" {
        return Err(unsafe_(f, format!("extent type {kind} refers to another file")));
    }
    let name = ext.split('"').nth(1).unwrap_or_default();
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(unsafe_(f, "an extent names a file in another directory"));
    }
    Ok(())
}

fn vpc(h: &[u8]) -> Result<u64, InspectError> {
    let f = Format::Vpc;
    if h.len() < 512 {
        return Err(malformed(f, "truncated footer"));
    }
    match be32(h, 60) {
        2 | 3 => Ok(be64(h, 48)),
        4 => Err(unsafe_(f, "differencing disks refer to a parent file")),
        t => Err(malformed(f, &format!("unknown disk type {t}"))),
    }
}

/// GUIDs as stored on disk (first three fields little-endian).
const VHDX_METADATA_REGION: [u8; 16] =
    [0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e];
const VHDX_FILE_PARAMETERS: [u8; 16] =
    [0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b];
const VHDX_VIRTUAL_DISK_SIZE: [u8; 16] =
    [0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8];
const VHDX_PARENT_LOCATOR: [u8; 16] =
    [0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c];

fn vhdx(src: &mut Source) -> Result<u64, InspectError> {
    let f = Format::Vhdx;
    // Region table at 192 KiB: "regi", checksum, entry count, then 32-byte entries.
    let table = src.read_at(192 << 10, 64 << 10, f)?;
    if !table.starts_with(b"regi") {
        return Err(malformed(f, "no region table"));
    }
    let count = (le32(&table, 8) as usize).min(2047);
    let meta = (0..count)
        .map(|i| 16 + i * 32)
        .find(|&o| table.get(o..o + 16) == Some(&VHDX_METADATA_REGION[..]))
        .map(|o| (le64(&table, o + 16), le32(&table, o + 24)))
        .ok_or_else(|| malformed(f, "no metadata region"))?;
    let (meta_off, meta_len) = meta;
    let meta_len = (meta_len as usize).clamp(32, 64 << 10);
    let m = src.read_at(meta_off, meta_len, f)?;
    if !m.starts_with(b"metadata") {
        return Err(malformed(f, "no metadata table"));
    }
    let entries = (le16(&m, 10) as usize).min(2047);
    let mut size = None;
    for i in 0..entries {
        let o = 32 + i * 32;
        let Some(guid) = m.get(o..o + 16) else { break };
        let (item_off, item_len) = (u64::from(le32(&m, o + 16)), le32(&m, o + 20) as usize);
        if guid == VHDX_PARENT_LOCATOR {
            return Err(unsafe_(f, "differencing disks refer to a parent file"));
        }
        if guid == VHDX_FILE_PARAMETERS {
            let p = src.read_at(meta_off.saturating_add(item_off), item_len.clamp(8, 8), f)?;
            if le32(&p, 4) & 2 != 0 {
                return Err(unsafe_(f, "differencing disks refer to a parent file"));
            }
        }
        if guid == VHDX_VIRTUAL_DISK_SIZE {
            let p = src.read_at(meta_off.saturating_add(item_off), 8, f)?;
            size = Some(le64(&p, 0));
        }
    }
    size.ok_or_else(|| malformed(f, "no virtual disk size"))
}

#[cfg(test)]
mod tests;
