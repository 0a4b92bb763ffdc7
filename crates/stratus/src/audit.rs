//! `stratus audit`: the leak detector. It compares what the database says
//! with what the hosts actually run, with what the storage backend holds
//! (volumes, their watchers, fenced clients), with the hosts' capacity and with itself,
//! prints every disagreement (`LEAK ...`), and with `--repair` fixes what is
//! safe to fix.

use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use stratus_blockstore::BlockBackend;
use stratus_db::{AttachmentRow, Datastore, VolumeRow};
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

/// Prefix of every volume name Stratus gives its backend (`volume-<id>`):
/// storage without it is not Stratus's and is left alone.
const VOLUME_PREFIX: &str = "volume-";

/// Storage against the volume records: storage no live volume owns, live
/// volumes without storage, and watchers no attachment accounts for (a
/// writer on a volume nobody will fence).
async fn storage_problems(
    backend: &dyn BlockBackend,
    volumes: &[VolumeRow],
    attachments: &[AttachmentRow],
    lifted: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    use stratus_volume::VolumeStatus;
    let mut problems = Vec::new();
    let kind = backend.kind();
    let held: BTreeSet<String> = backend
        .volumes()
        .await
        .with_context(|| format!("listing the volumes of the {kind} backend"))?
        .into_iter()
        .filter(|n| n.starts_with(VOLUME_PREFIX))
        .collect();
    let live: BTreeSet<&str> = volumes.iter().map(|v| v.backend_name.as_str()).collect();
    for name in held.iter().filter(|n| !live.contains(n.as_str())) {
        problems.push(format!("{kind} volume {name} belongs to no live volume"));
    }
    for v in volumes {
        if matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) && !held.contains(&v.backend_name) {
            problems.push(format!(
                "volume {} is {} but its {kind} storage {} does not exist",
                v.id, v.status, v.backend_name
            ));
        }
        if !held.contains(&v.backend_name) {
            continue;
        }
        let watchers =
            backend.watchers(&v.backend_name).await.with_context(|| format!("watchers of {}", v.backend_name))?;
        if watchers.is_empty() {
            continue;
        }
        let mine: Vec<&AttachmentRow> = attachments.iter().filter(|a| a.volume_id == v.id).collect();
        let recorded: BTreeSet<&str> = mine.iter().filter_map(|a| a.client_id.as_deref()).collect();
        if mine.is_empty() {
            problems.push(format!(
                "volume {} is {} with no attachment but watched by {:?}: a writer no fence will stop",
                v.id,
                v.status,
                watchers.iter().map(|w| w.0.as_str()).collect::<Vec<_>>()
            ));
        } else {
            for w in watchers.iter().filter(|w| !recorded.contains(w.0.as_str())) {
                problems.push(format!("volume {} is watched by client {} that no attachment records", v.id, w.0));
            }
        }
    }
    // A fence Stratus lifted must be gone from the backend (Ceph's blocklist).
    for c in backend.fenced().await.with_context(|| format!("listing the fenced clients of the {kind} backend"))? {
        if lifted.contains(&c.0) {
            problems.push(format!("{kind} client {} is still fenced although its fence was lifted", c.0));
        }
    }
    Ok(problems)
}

/// Snapshots in the backend against the snapshot records: a copy no live
/// snapshot owns (a create or delete cut short that nothing finished) is
/// leaked storage. A backend that cannot list snapshots has none to leak.
async fn snapshot_problems(backend: &dyn BlockBackend, live: &[String]) -> anyhow::Result<Vec<String>> {
    let kind = backend.kind();
    let held = match backend.snapshots().await {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(error = %e, "the {kind} backend lists no snapshots");
            return Ok(Vec::new());
        }
    };
    Ok(held
        .into_iter()
        .filter(|(_, s)| s.starts_with("snapshot-") && !live.contains(s))
        .map(|(v, s)| format!("{kind} snapshot {v}@{s} belongs to no live snapshot"))
        .collect())
}

/// Host capacity: what live servers and zombies hold against what each
/// host offers, and zombies a running host has no VM for.
async fn capacity_problems(
    ds: &Datastore,
    host_vms: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let services = ds.service_list().await?;
    for (host, vcpus, ram_mb, disk_gb) in ds.host_usage().await? {
        match services.iter().find(|s| s.host == host) {
            None => problems.push(format!(
                "capacity ({vcpus} vCPUs, {ram_mb} MiB, {disk_gb} GiB) held on host {host}, which is not a service"
            )),
            Some(s) if vcpus > s.vcpus || ram_mb > s.memory_mb || disk_gb > s.disk_gb => problems.push(format!(
                "host {host} holds {vcpus} vCPUs, {ram_mb} MiB, {disk_gb} GiB, more than it offers ({}, {}, {})",
                s.vcpus, s.memory_mb, s.disk_gb
            )),
            Some(_) => {}
        }
    }
    for z in ds.zombie_list(None).await? {
        let up = services.iter().any(|s| s.host == z.host && s.is_up());
        if let Some(vms) = host_vms.get(&z.host)
            && up
            && !vms.contains(&z.server_id.to_string())
        {
            problems
                .push(format!("zombie {} holds capacity on {}, which is up and runs no such VM", z.server_id, z.host));
        }
    }
    Ok(problems)
}

/// Run the audit; `Ok(true)` when everything agrees.
pub async fn run(
    data_dir: &Path,
    url: &stratus_db::DatabaseUrl,
    backend: Arc<dyn BlockBackend>,
    repair: bool,
) -> anyhow::Result<bool> {
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
    // storage no live volume owns or no attachment accounts for.
    let attachments = ds.attachment_list_all().await?;
    for a in &attachments {
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
    let lifted: BTreeSet<String> = ds.cleanup_lifted_clients().await?.into_iter().collect();
    problems.extend(storage_problems(&*backend, &volumes, &attachments, &lifted).await?);
    problems.extend(snapshot_problems(&*backend, &ds.snapshot_backend_names().await?).await?);

    // What the hosts run versus what should run there.
    let zombies = ds.zombie_list(None).await?;
    let zombie_ids: BTreeSet<String> = zombies.iter().map(|z| z.server_id.to_string()).collect();
    let on_hosts = host_vms(data_dir);
    problems.extend(capacity_problems(&ds, &on_hosts).await?);
    for (host, vms) in on_hosts {
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
        println!("audit: servers, zombies, ports, operations, host VMs, capacity and storage agree");
    } else {
        println!("audit: {} disagreement(s){}", problems.len(), if repair { " (repaired what is safe)" } else { "" });
    }
    Ok(problems.is_empty())
}
