//! First-start setup of the embedded cloud: users and passwords, flavors,
//! the `cirros` image, and `clouds.yaml`. Every step is idempotent, so a
//! restart with the same data dir keeps everything.

use anyhow::Context;
use std::path::{Path, PathBuf};
use stratus_db::FlavorRow;
use stratus_server::AppState;

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

/// Create users, flavors and the seed image if missing.
pub async fn bootstrap(state: &AppState, data_dir: &Path) -> anyhow::Result<Credentials> {
    let (admin, admin_from_env) = password(data_dir, "admin", "STRATUS_ADMIN_PASSWORD")?;
    let (demo, demo_from_env) = password(data_dir, "demo", "STRATUS_DEMO_PASSWORD")?;
    let admin_project =
        state.identity.bootstrap_user("admin", &admin, "admin", stratus_auth::ROLE_ADMIN, admin_from_env).await?;
    state.identity.bootstrap_user("demo", &demo, "demo", stratus_auth::ROLE_MEMBER, demo_from_env).await?;
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
            })
            .await?;
    }
    // A small stand-in for the CirrOS image: a qcow2 magic and deterministic bytes.
    let mut data = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    data.extend((0..(64 * 1024)).map(|i: u32| (i % 251) as u8));
    state
        .images
        .seed("cirros", &admin_project, &data)
        .await
        .map_err(|e| anyhow::anyhow!("cannot seed the cirros image: {e}"))?;
    Ok(Credentials { admin, demo })
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
