//! A malformed-image corpus made here (crafted headers, plus images made by
//! `qemu-img` itself): every unsafe one refused, every ordinary one accepted
//! with its virtual size, as Glance/Nova's format inspector tests check.

use super::*;
use std::path::PathBuf;
use std::process::Command;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir() -> Dir {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let d = std::env::temp_dir().join(format!("stratus-imageformat-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("mkdir");
    Dir(d)
}

fn write(d: &Dir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = d.0.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// `qemu-img create -f fmt [opts] name 10M`.
fn qemu(d: &Dir, name: &str, fmt: &str, opts: &[&str]) -> PathBuf {
    let p = d.0.join(name);
    let st = Command::new("qemu-img")
        .current_dir(&d.0)
        .args(["create", "-q", "-f", fmt])
        .args(opts)
        .arg(&p)
        .arg("10M")
        .status()
        .expect("qemu-img");
    assert!(st.success(), "qemu-img create {fmt}");
    p
}

/// A VMDK sparse extent header with `capacity` sectors and `descriptor`
/// embedded at sector 1.
fn vmdk_sparse(capacity: u64, descriptor: &str) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..4].copy_from_slice(b"KDMV");
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    b[12..20].copy_from_slice(&capacity.to_le_bytes());
    b[20..28].copy_from_slice(&128u64.to_le_bytes());
    b[28..36].copy_from_slice(&1u64.to_le_bytes());
    b[36..44].copy_from_slice(&20u64.to_le_bytes());
    let mut desc = descriptor.as_bytes().to_vec();
    desc.resize(20 * 512, 0);
    b.extend(desc);
    b
}

fn sparse_descriptor(create_type: &str, extent: &str) -> String {
    format!("# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n{extent}\n")
}

/// A dynamic VHD footer claiming `size` bytes, disk type `kind`.
fn vhd(size: u64, kind: u32) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..8].copy_from_slice(b"conectix");
    b[48..56].copy_from_slice(&size.to_be_bytes());
    b[60..64].copy_from_slice(&kind.to_be_bytes());
    b
}

fn refused(r: Result<Inspection, InspectError>, what: &str) -> String {
    match r {
        Err(e @ (InspectError::Unsafe { .. } | InspectError::Mismatch { .. } | InspectError::TooLarge { .. })) => {
            e.to_string()
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn ordinary_images_are_accepted_with_their_size() {
    let d = dir();
    let cases = [
        ("a.qcow2", "qcow2", &[][..], DiskFormat::Qcow2, Format::Qcow2),
        ("b.vmdk", "vmdk", &["-o", "subformat=monolithicSparse"][..], DiskFormat::Vmdk, Format::Vmdk),
        ("c.vmdk", "vmdk", &["-o", "subformat=streamOptimized"][..], DiskFormat::Vmdk, Format::Vmdk),
        ("d.vhdx", "vhdx", &[][..], DiskFormat::Vhdx, Format::Vhdx),
        ("e.vdi", "vdi", &[][..], DiskFormat::Vdi, Format::Vdi),
        ("f.raw", "raw", &[][..], DiskFormat::Raw, Format::Raw),
    ];
    for (name, fmt, opts, disk_format, want) in cases {
        let p = qemu(&d, name, fmt, opts);
        let got = check(&p, disk_format).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, Inspection { format: want, virtual_size: 10 << 20 }, "{name}");
    }
    // qemu's vpc rounds the size to a CHS geometry.
    let p = qemu(&d, "g.vhd", "vpc", &[]);
    let got = check(&p, DiskFormat::Vhd).expect("vhd");
    assert_eq!(got.format, Format::Vpc);
    assert!(got.virtual_size > 0 && got.virtual_size <= 11 << 20, "{got:?}");
    // Kernel and ramdisk images are plain bytes.
    let p = write(&d, "k", b"\x7fELF kernel");
    assert_eq!(check(&p, DiskFormat::Aki).expect("aki").format, Format::Raw);
    // An ISO is plain bytes to qemu: accepted as iso and as raw.
    let mut iso = vec![0u8; 0x9000];
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    let p = write(&d, "cd.iso", &iso);
    assert_eq!(check(&p, DiskFormat::Iso).expect("iso").format, Format::Iso);
    assert_eq!(check(&p, DiskFormat::Raw).expect("raw iso").format, Format::Iso);
}

#[test]
fn qcow2_referring_to_other_files_is_refused() {
    let d = dir();
    qemu(&d, "base.qcow2", "qcow2", &[]);
    let p = qemu(&d, "over.qcow2", "qcow2", &["-b", "base.qcow2", "-F", "qcow2"]);
    assert!(refused(check(&p, DiskFormat::Qcow2), "backing file").contains("backing file"));
    let p = qemu(&d, "df.qcow2", "qcow2", &["-o", "data_file=df.raw"]);
    assert!(refused(check(&p, DiskFormat::Qcow2), "data file").contains("data file"));
    // A backing chain that loops (a → b → a): refused at the first reference,
    // never followed.
    let st = Command::new("qemu-img")
        .current_dir(&d.0)
        .args(["create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2", "10M"])
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let st = Command::new("qemu-img")
        .current_dir(&d.0)
        .args(["create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2", "10M"])
        .status()
        .expect("qemu-img");
    assert!(st.success());
    assert!(refused(check(&d.0.join("a.qcow2"), DiskFormat::Qcow2), "backing loop").contains("backing file"));
    // The same header with only the data-file extension (feature bit cleared).
    let mut b = std::fs::read(&p).expect("read");
    let incompat = u64::from_be_bytes(b[72..80].try_into().expect("8")) & !QCOW2_DATA_FILE;
    b[72..80].copy_from_slice(&incompat.to_be_bytes());
    let p = write(&d, "df2.qcow2", &b);
    assert!(refused(check(&p, DiskFormat::Qcow2), "data file ext").contains("data file"));
}

#[test]
fn vmdk_with_external_extents_is_refused() {
    let d = dir();
    // The reproduction of issue 11: a text descriptor with FLAT extents.
    let text = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"../admin.password\" 0\n";
    let p = write(&d, "flat.vmdk", text.as_bytes());
    let msg = refused(check(&p, DiskFormat::Vmdk), "flat descriptor");
    assert!(msg.contains("extents") && !msg.contains("admin.password"), "{msg}");
    // The same bytes declared raw: still refused (qemu would probe them as vmdk).
    refused(check(&p, DiskFormat::Raw), "descriptor as raw");
    // A sparse header whose embedded descriptor names a FLAT extent.
    let p = write(&d, "emb.vmdk", &vmdk_sparse(2048, &sparse_descriptor("monolithicSparse", "RW 1 FLAT \"../x\" 0")));
    refused(check(&p, DiskFormat::Vmdk), "embedded flat extent");
    // A relative SPARSE extent outside the directory.
    let p = write(
        &d,
        "rel.vmdk",
        &vmdk_sparse(2048, &sparse_descriptor("monolithicSparse", "RW 2048 SPARSE \"../other.vmdk\"")),
    );
    refused(check(&p, DiskFormat::Vmdk), "relative extent");
    // Two extents.
    let two = "RW 2048 SPARSE \"a.vmdk\"\nRW 2048 SPARSE \"b.vmdk\"";
    let p = write(&d, "two.vmdk", &vmdk_sparse(2048, &sparse_descriptor("monolithicSparse", two)));
    refused(check(&p, DiskFormat::Vmdk), "two extents");
    // Another create type.
    let p = write(
        &d,
        "ty.vmdk",
        &vmdk_sparse(2048, &sparse_descriptor("twoGbMaxExtentSparse", "RW 2048 SPARSE \"a.vmdk\"")),
    );
    refused(check(&p, DiskFormat::Vmdk), "create type");
    // Capacity 0: qemu would open the embedded descriptor as a descriptor file.
    let p =
        write(&d, "zero.vmdk", &vmdk_sparse(0, &sparse_descriptor("monolithicSparse", "RW 2048 SPARSE \"a.vmdk\"")));
    refused(check(&p, DiskFormat::Vmdk), "capacity 0");
    // The well-formed one is fine.
    let p =
        write(&d, "ok.vmdk", &vmdk_sparse(2048, &sparse_descriptor("monolithicSparse", "RW 2048 SPARSE \"ok.vmdk\"")));
    assert_eq!(check(&p, DiskFormat::Vmdk).expect("ok").virtual_size, 2048 * 512);
}

#[test]
fn absurd_sizes_differencing_disks_and_other_formats_are_refused() {
    let d = dir();
    let p = write(&d, "huge.vhd", &vhd(u64::MAX, 3));
    assert!(matches!(check(&p, DiskFormat::Vhd), Err(InspectError::TooLarge { .. })));
    let p = write(&d, "diff.vhd", &vhd(1 << 20, 4));
    refused(check(&p, DiskFormat::Vhd), "differencing vhd");
    let mut q = std::fs::read(qemu(&d, "big.qcow2", "qcow2", &[])).expect("read");
    q[24..32].copy_from_slice(&(1u64 << 62).to_be_bytes());
    let p = write(&d, "big2.qcow2", &q);
    assert!(matches!(check(&p, DiskFormat::Qcow2), Err(InspectError::TooLarge { .. })));
    let p = qemu(&d, "x.qed", "qed", &[]);
    refused(check(&p, DiskFormat::Raw), "qed");
}

#[test]
fn detected_format_must_match_disk_format() {
    let d = dir();
    let q = qemu(&d, "q.qcow2", "qcow2", &[]);
    let msg = refused(check(&q, DiskFormat::Raw), "qcow2 as raw");
    assert_eq!(msg, "Image data is qcow2 but its disk_format is raw.");
    refused(check(&q, DiskFormat::Vmdk), "qcow2 as vmdk");
    let r = write(&d, "r.raw", &[0u8; 4096]);
    refused(check(&r, DiskFormat::Qcow2), "raw as qcow2");
    let v = qemu(&d, "v.vdi", "vdi", &[]);
    refused(check(&v, DiskFormat::Vhdx), "vdi as vhdx");
}

#[test]
fn qemu_img_runs_under_prlimit() {
    let (prog, args) = qemu_img::limited(Path::new("qemu-img"), qemu_img::INFO, &["info", "-f", "raw", "x"]);
    assert_eq!(prog, PathBuf::from("prlimit"));
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    assert_eq!(args, ["--as=1073741824", "--cpu=30", "--", "qemu-img", "info", "-f", "raw", "x"]);
    let d = dir();
    let p = qemu(&d, "l.qcow2", "qcow2", &[]);
    let (prog, args) = qemu_img::limited(
        Path::new("qemu-img"),
        qemu_img::INFO,
        &[std::ffi::OsStr::new("info"), std::ffi::OsStr::new("-f"), std::ffi::OsStr::new("qcow2"), p.as_os_str()],
    );
    assert!(Command::new(prog).args(args).output().expect("prlimit").status.success());
}
