//! `stratus audit`: the leak detector. It compares what the database says
//! with what the hosts actually run and with itself, prints every
//! disagreement, and with `--repair` fixes what is safe to fix.

use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use stratus_db::Datastore;
use stratus_image::ImageService;
use stratus_types::VmState;

/// VMs on each host of a cloud: fake VMs (`<data_dir>/hosts/<host>/vms/<server>.json`)
/// and qemu VMs (`<data_dir>/hosts/<host>/qemu/<server>/vm.json`, whether or not
/// their process runs: a stopped VM is still the host's).
fn host_vms(data_dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let Ok(hosts) = std::fs::read_dir(data_dir.join("hosts")) else { return out };
    for h in hosts.flatten() {
        let name = h.file_name().to_string_lossy().to_string();
        let mut vms: BTreeSet<String> = vm_files(&h.path()).into_iter().map(|(id, _)| id).collect();
        vms.extend(qemu_vms(&h.path()));
        out.insert(name, vms);
    }
    out
}

/// The qemu VM directories of one host.
fn qemu_vms(host_dir: &Path) -> Vec<String> {
    std::fs::read_dir(host_dir.join("qemu"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("vm.json").exists() || e.path().join("qemu.pid").exists())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

/// The VM files of one fake host: (server id, path).
fn vm_files(host_dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_dir(host_dir.join("vms"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".json").filter(|n| !n.starts_with('.')).map(|id| (id.to_string(), e.path()))
        })
        .collect()
}

/// Run the audit; `Ok(true)` when everything agrees.
pub async fn run(data_dir: &Path, url: &stratus_db::DatabaseUrl, repair: bool) -> anyhow::Result<bool> {
    if let stratus_db::DatabaseUrl::Sqlite(db) = url {
        anyhow::ensure!(db.exists(), "no database at {}", db.display());
    }
    let ds = Datastore::open(url).await.context("open database")?;
    // Image records and bytes are the image service's to remove.
    let images = ImageService::new(ds.clone(), data_dir.join("images"));
    let mut problems: Vec<String> = Vec::new();

    // Ports held by deleted or unknown servers.
    let orphans = ds.port_list_orphans().await?;
    for p in &orphans {
        problems.push(format!("port {} ({}) held by deleted or unknown server {}", p.id, p.ip, p.server_id));
    }
    if repair {
        for p in &orphans {
            ds.ports_release(&p.server_id).await?;
        }
    }

    // Operations open for long: a delete that is not progressing is a stuck server.
    for op in ds.op_list_open().await? {
        let age = ds.clock().now() - op.created_at;
        if age > chrono::Duration::minutes(5) {
            problems.push(format!(
                "operation {} ({} of server {}) open for {} s at step {}",
                op.id,
                op.kind,
                op.server_id,
                age.num_seconds(),
                op.step
            ));
        }
    }

    // A server marked deleting with nothing driving its delete is stuck (Nova W1/W5).
    for srv in ds.server_list_stuck_deleting().await? {
        problems.push(format!("server {} is deleting but no delete operation is open", srv.id));
        if repair {
            let o = stratus_db::NewOperation {
                id: stratus_types::OperationId::new(),
                kind: stratus_types::OpKind::Delete,
                server_id: srv.id,
                request_id: format!("req-{}", uuid::Uuid::new_v4()),
                user_id: "stratus-audit".into(),
                project_id: srv.project_id.clone(),
                params: "{}".into(),
            };
            ds.server_begin_delete(&o).await?;
        }
    }
    for (srv, img) in ds.server_list_leaked_shelve_images().await? {
        problems.push(format!("image {img} is the shelve snapshot of deleted server {srv}"));
        if repair && let Err(e) = images.delete_snapshot(&img.to_string()).await {
            tracing::warn!(image = %img, error = %e, "could not delete the leaked shelve snapshot");
        }
    }
    for srv in ds.server_list_deleted_without_end_notification().await? {
        problems.push(format!("server {srv} is deleted but instance.delete.end was never recorded"));
    }

    // Block storage: attachments of deleted servers, stuck deletes, and
    // volume files no live volume owns (local backend).
    for a in ds.attachment_list_all().await? {
        let gone = match ds.server_get_any(&a.server_id).await {
            Ok(srv) => srv.deleted,
            Err(stratus_db::DbError::NotFound { .. }) => true,
            Err(e) => return Err(e.into()),
        };
        if gone {
            problems.push(format!(
                "attachment {} keeps volume {} attached to deleted server {}",
                a.id, a.volume_id, a.server_id
            ));
            if repair && a.status == stratus_volume::AttachStatus::Fenced {
                ds.attachment_delete(&a.id).await?;
            }
        }
    }
    let pending = ds.cleanup_pending().await?;
    for c in &pending {
        // Not a leak while queued: the reconcilers retry it; shown so admins see what waits and why.
        println!(
            "QUEUED {} {} (attempts {}, last error {:?}): {}",
            c.kind,
            c.volume_id.map(|v| v.to_string()).or_else(|| c.client_id.clone()).unwrap_or_else(|| "?".into()),
            c.attempts,
            c.last_error,
            c.reason
        );
    }
    let volumes = ds.volume_list(None).await?;
    for v in &volumes {
        if matches!(v.status, stratus_volume::VolumeStatus::Deleting | stratus_volume::VolumeStatus::ErrorDeleting)
            && !pending.iter().any(|c| c.volume_id == Some(v.id))
        {
            problems.push(format!("volume {} is {} with no deletion queued", v.id, v.status));
        }
    }
    if let Ok(files) = std::fs::read_dir(data_dir.join("volumes")) {
        let owned: BTreeSet<String> = volumes.iter().map(|v| format!("{}.img", v.backend_name)).collect();
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".img") && !owned.contains(&name) {
                problems.push(format!("volume file {name} belongs to no live volume"));
            }
        }
    }

    // What the hosts run versus what should run there.
    let zombies = ds.zombie_list(None).await?;
    let zombie_ids: BTreeSet<String> = zombies.iter().map(|z| z.server_id.to_string()).collect();
    for (host, vms) in host_vms(data_dir) {
        // The hosts name their VMs by the id text (file names), so compare as text.
        let expected: BTreeSet<String> =
            ds.server_ids_on_host(&host).await?.into_iter().map(|id| id.to_string()).collect();
        for vm in vms.difference(&expected) {
            let known = if zombie_ids.contains(vm) { " (recorded zombie, reaped when the host rejoins)" } else { "" };
            problems.push(format!("host {host} runs VM {vm} of a server that is deleted or not placed there{known}"));
        }
        for s in expected.difference(&vms) {
            if let Some(id) = stratus_types::ServerId::parse_canonical(s)
                && let Ok(row) = ds.server_get(&id).await
                && (matches!(row.vm_state, VmState::Active | VmState::Stopped))
            {
                problems.push(format!("server {s} is {} on {host} but the host has no VM for it", row.vm_state));
            }
        }
        if repair {
            // Safe: these servers are deleted; destroying their fake VMs is what the reaper does.
            // (A qemu VM is a process: only its host's reaper destroys it.)
            for (id, path) in vm_files(&data_dir.join("hosts").join(&host)) {
                if !expected.contains(&id) {
                    std::fs::remove_file(path)?;
                }
            }
        }
    }
    // Zombies whose host no longer exists at all keep capacity forever.
    let hosts: BTreeSet<String> = ds.service_list().await?.into_iter().map(|s| s.host).collect();
    for z in &zombies {
        if !hosts.contains(&z.host) {
            problems.push(format!("zombie {} on unknown host {}", z.server_id, z.host));
        }
    }

    for p in &problems {
        println!("LEAK {p}");
    }
    if problems.is_empty() {
        println!("audit: servers, zombies, ports, operations and host VMs agree");
    } else {
        println!("audit: {} disagreement(s){}", problems.len(), if repair { " (repaired what is safe)" } else { "" });
    }
    Ok(problems.is_empty())
}
