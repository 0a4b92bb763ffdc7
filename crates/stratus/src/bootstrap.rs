//! First-start setup of the embedded cloud: users and passwords, flavors,
//! the `cirros` image, and `clouds.yaml`. Every step is idempotent, so a
//! restart with the same data dir keeps everything.

use crate::config::GuestFiles;
use anyhow::Context;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use stratus_db::FlavorRow;
use stratus_image::{ContainerFormat, DiskFormat, SeedImage};
use stratus_server::AppState;

/// What the `cirros` image is: it follows the driver the hosts run.
#[derive(Clone, Debug)]
pub enum Seed {
    /// The fake driver never reads the bytes: a small qcow2 stand-in.
    Fake,
    /// A real guest: `cirros` is a blank raw disk booted with this kernel and ramdisk.
    Guest(GuestFiles),
}

/// Kernel command line of the seeded guest (`os_command_line`): serial console
/// (what `os-getConsoleOutput` reads), quiet, and a panic powers the VM off.
pub const GUEST_COMMAND_LINE: &str = "console=ttyS0 quiet panic=-1";

/// Size of the seeded blank raw disk; the driver grows a server's root disk to its flavor.
const BLANK_DISK_BYTES: usize = 1 << 20;

/// Passwords of the bootstrap users.
pub struct Credentials {
    /// `admin` user's password.
    pub admin: String,
    /// `demo` user's password.
    pub demo: String,
}

fn password(data_dir: &Path, name: &str, env: &str) -> anyhow::Result<(String, bool)> {
    if let Ok(p) = std::env::var(env)
        && !p.is_empty()
    {
        return Ok((p, true));
    }
    let file = data_dir.join(format!("{name}.password"));
    if let Ok(p) = std::fs::read_to_string(&file) {
        return Ok((p.trim().to_string(), false));
    }
    let p = stratus_auth::random_secret()[..20].to_string();
    write_private(&file, p.as_bytes())?;
    Ok((p, false))
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// Create users, flavors and the seed image if missing. With an external
/// Keystone no built-in users are made (there are no credentials to
/// return) and the seed images belong to the service user's project.
pub async fn bootstrap(state: &AppState, data_dir: &Path, seed: &Seed) -> anyhow::Result<Option<Credentials>> {
    let (admin_project, creds) = match state.tokens.keystone() {
        Some(keystone) => (keystone.service_project_id().await?, None),
        None => {
            let (admin, admin_from_env) = password(data_dir, "admin", "STRATUS_ADMIN_PASSWORD")?;
            let (demo, demo_from_env) = password(data_dir, "demo", "STRATUS_DEMO_PASSWORD")?;
            let admin_project = state
                .identity
                .bootstrap_user("admin", &admin, "admin", stratus_auth::ROLE_ADMIN, admin_from_env)
                .await?;
            state.identity.bootstrap_user("demo", &demo, "demo", stratus_auth::ROLE_MEMBER, demo_from_env).await?;
            (admin_project, Some(Credentials { admin, demo }))
        }
    };
    // devstack's flavor sizes
    for (id, name, vcpus, ram, disk) in [
        ("1", "m1.tiny", 1, 512, 1),
        ("2", "m1.small", 1, 2048, 20),
        ("3", "m1.medium", 2, 4096, 40),
        ("4", "m1.large", 4, 8192, 80),
        ("5", "m1.xlarge", 8, 16384, 160),
    ] {
        state
            .compute
            .ensure_flavor(&FlavorRow {
                id: id.into(),
                name: name.into(),
                vcpus,
                ram_mb: ram,
                disk_gb: disk,
                ephemeral_gb: 0,
                swap_mb: 0,
                rxtx_factor: 1.0,
                is_public: true,
                disabled: false,
                description: None,
            })
            .await?;
    }
    seed_images(state, &admin_project, seed).await?;
    Ok(creds)
}

/// Seed the `cirros` image (and, for a real guest, its kernel and ramdisk images).
async fn seed_images(state: &AppState, admin_project: &str, seed: &Seed) -> anyhow::Result<()> {
    let seed_one = async |spec: SeedImage<'_>| {
        state
            .images
            .seed_image(admin_project, &spec)
            .await
            .map_err(|e| anyhow::anyhow!("cannot seed the {} image: {e}", spec.name))
    };
    match seed {
        Seed::Fake => {
            // A small stand-in for the CirrOS image: an empty, valid qcow2
            // (every image is inspected before use; a fake header would be refused).
            let data = empty_qcow2(1 << 20);
            seed_one(SeedImage {
                name: "cirros",
                disk_format: DiskFormat::Qcow2,
                container_format: ContainerFormat::Bare,
                properties: Map::new(),
                data: &data,
            })
            .await?;
        }
        Seed::Guest(files) => {
            let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read the guest's {}", p.display()));
            let kernel = read(&files.kernel)?;
            let ramdisk = read(&files.ramdisk)?;
            let kernel_id = seed_one(SeedImage {
                name: "cirros-kernel",
                disk_format: DiskFormat::Aki,
                container_format: ContainerFormat::Aki,
                properties: Map::new(),
                data: &kernel,
            })
            .await?;
            let ramdisk_id = seed_one(SeedImage {
                name: "cirros-ramdisk",
                disk_format: DiskFormat::Ari,
                container_format: ContainerFormat::Ari,
                properties: Map::new(),
                data: &ramdisk,
            })
            .await?;
            let mut properties = Map::new();
            properties.insert("kernel_id".into(), json!(kernel_id.to_string()));
            properties.insert("ramdisk_id".into(), json!(ramdisk_id.to_string()));
            properties.insert("os_command_line".into(), Value::from(GUEST_COMMAND_LINE));
            seed_one(SeedImage {
                name: "cirros",
                disk_format: DiskFormat::Raw,
                container_format: ContainerFormat::Bare,
                properties,
                data: &vec![0u8; BLANK_DISK_BYTES],
            })
            .await?;
        }
    }
    Ok(())
}

/// Write `<data_dir>/clouds.yaml` with the `stratus` and `stratus-admin` clouds.
pub fn write_clouds_yaml(data_dir: &Path, public_url: &str, c: &Credentials) -> anyhow::Result<PathBuf> {
    let cloud = |user: &str, project: &str, pw: &str| {
        format!(
            "    auth:\n      auth_url: {public_url}/identity\n      username: {user}\n      password: \"{pw}\"\n      project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n    interface: public\n"
        )
    };
    let yaml = format!(
        "clouds:\n  stratus:\n{}  stratus-admin:\n{}",
        cloud("demo", "demo", &c.demo),
        cloud("admin", "admin", &c.admin)
    );
    let path = data_dir.join("clouds.yaml");
    write_private(&path, yaml.as_bytes())?;
    Ok(path)
}

/// An empty qcow2 (version 2, 64 KiB clusters) of `virtual_size` bytes (at
/// most 512 MiB: one L2 table's reach): header, refcount table, one
/// refcount block, an L1 table with its one entry unallocated.
fn empty_qcow2(virtual_size: u64) -> Vec<u8> {
    const CLUSTER: usize = 1 << 16;
    let mut b = vec![0u8; 4 * CLUSTER];
    let put32 = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let put64 = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    b[0..4].copy_from_slice(b"QFI\xfb");
    put32(&mut b, 4, 2); // version
    put32(&mut b, 20, 16); // cluster_bits
    put64(&mut b, 24, virtual_size);
    put32(&mut b, 36, 1); // l1_size
    put64(&mut b, 40, 3 * CLUSTER as u64); // l1_table_offset
    put64(&mut b, 48, CLUSTER as u64); // refcount_table_offset
    put32(&mut b, 56, 1); // refcount_table_clusters
    put64(&mut b, CLUSTER, 2 * CLUSTER as u64); // refcount table[0] -> block at cluster 2
    for c in 0..4 {
        // 16-bit refcounts: clusters 0-3 are in use once.
        b[2 * CLUSTER + 2 * c + 1] = 1;
    }
    b
}

#[cfg(test)]
mod qcow2_tests {
    #[test]
    fn the_stand_in_cirros_is_a_valid_empty_qcow2() {
        let p = std::env::temp_dir().join(format!("stratus-seed-{}.qcow2", std::process::id()));
        std::fs::write(&p, super::empty_qcow2(1 << 20)).expect("write");
        let check = std::process::Command::new("qemu-img").args(["check", "-q", "-f", "qcow2"]).arg(&p).status();
        let found = stratus_imageformat::check(&p, stratus_types::image::DiskFormat::Qcow2);
        let _ = std::fs::remove_file(&p);
        assert!(check.expect("qemu-img").success(), "qemu-img check");
        assert_eq!(found.expect("inspector").virtual_size, 1 << 20);
    }
}
