//! The volume steps of a server's life, called by the controller's
//! operations so that the volume lifecycle has one owner:
//!
//! - boot from volume: [`VolumeService::create_boot_volume`] builds a volume
//!   from an image and reserves it for the server;
//! - attach/detach on a host: the controller talks to the agent, then records
//!   the outcome with [`VolumeService::host_attached`],
//!   [`VolumeService::host_attach_failed`], [`VolumeService::host_detached`]
//!   and [`VolumeService::host_detach_failed`];
//! - delete: [`VolumeService::fence_server`] fences the server's storage
//!   clients (local path, before anything is released), then
//!   [`VolumeService::release_server_volumes`] detaches every volume and
//!   deletes the `delete_on_termination` ones (a busy one goes to the durable
//!   queue, never swallowed); the reconciler lifts the fences once the host
//!   confirmed the VM gone ([`VolumeService::lift_fences`]).

use crate::{Build, CleanupKind, DeleteOutcome, VolumeError, VolumeService};
use stratus_blockstore::{BlockError, ClientId};
use stratus_db::{AttachmentRow, DbError, OpenRecord, Release, VolumeRow};
use stratus_types::{AttachmentId, ServerId, VolumeId};
use tracing::{info, warn};

/// A volume to build from an image for a boot-from-volume server (one block
/// device mapping with `source_type=image, destination_type=volume`).
#[derive(Clone, Debug)]
pub struct BootVolume {
    /// The server the volume is reserved for.
    pub server_id: ServerId,
    /// The server's project (owns the volume, counts its quota).
    pub project_id: String,
    /// The server's user.
    pub user_id: String,
    /// Size GiB.
    pub size_gb: i64,
    /// Image to copy into the volume (a blank volume if its file is absent).
    pub image_id: Option<String>,
    /// Volume snapshot to copy into the volume instead (`source_type:
    /// snapshot`); the new volume takes its source volume's image.
    pub snapshot_id: Option<String>,
    /// Device the server sees it as (`/dev/vda`): also what makes the step
    /// idempotent (a mapping whose device already has an attachment is done).
    pub mountpoint: String,
    /// Delete the volume when the server is deleted.
    pub delete_on_termination: bool,
    /// Boot index of the mapping (0 for the root volume).
    pub boot_index: Option<i64>,
    /// Volume type id (the default type when none).
    pub volume_type_id: Option<String>,
}

impl VolumeService {
    /// Live attachments of a server (boot volume first): what its operations
    /// open on the host, and what a delete fences and releases.
    pub async fn attachments_of_server(&self, server_id: &ServerId) -> Result<Vec<AttachmentRow>, VolumeError> {
        Ok(self.ds.attachment_list_for_server(server_id).await?)
    }

    /// One attachment, without a caller's scope (the controller's view);
    /// `None` once it is gone.
    pub async fn attachment(&self, id: &AttachmentId) -> Result<Option<AttachmentRow>, VolumeError> {
        match self.ds.attachment_get(id).await {
            Ok(a) => Ok(Some(a)),
            Err(DbError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One volume, without a caller's scope (the controller needs its backend name).
    pub async fn volume(&self, id: &VolumeId) -> Result<VolumeRow, VolumeError> {
        Ok(self.ds.volume_get(id).await?)
    }

    /// Build a boot volume from an image and reserve it for the server. The
    /// volume is recorded together with the attachment that reserves it (so
    /// a build cut short leaves a volume the server owns: its delete releases
    /// it, and a retried build resumes it through
    /// [`VolumeService::finish_boot_volume`]). It counts against the
    /// project's quota like any other; a backend failure leaves it `error`
    /// and is returned (the build is aborted).
    pub async fn create_boot_volume(&self, b: &BootVolume) -> Result<AttachmentRow, VolumeError> {
        if b.size_gb < 1 {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Volume size '{}' must be an integer and greater than 0",
                b.size_gb
            )));
        }
        crate::check_max_size("size", b.size_gb)?;
        // Cinder: a volume made from a snapshot carries its source volume's
        // image metadata (and so stays bootable from that image).
        let image_id = match &b.snapshot_id {
            Some(sid) => {
                let snap = self.ds.snapshot_get(sid).await?;
                self.ds.volume_get(&snap.volume_id).await.ok().and_then(|v| v.image_id)
            }
            None => b.image_id.clone(),
        };
        // Nova creates it through Cinder without a type: the project's
        // default type (3.62) before the global one.
        let volume_type_id = match &b.volume_type_id {
            Some(t) => t.clone(),
            None => self.default_type_for(&b.project_id).await?,
        };
        let id = VolumeId::new();
        let row = VolumeRow {
            group_id: None,
            backend_name: format!("volume-{id}"),
            id,
            name: Some(String::new()),
            description: Some(String::new()),
            project_id: b.project_id.clone(),
            user_id: b.user_id.clone(),
            size_gb: b.size_gb,
            status: crate::VolumeStatus::Creating,
            volume_type_id: Some(volume_type_id),
            volume_type: None,
            availability_zone: self.cfg.availability_zone.clone(),
            bootable: true,
            image_id,
            metadata: "{}".into(),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
            deleted_at: None,
            deleted: false,
            snapshot_id: b.snapshot_id.clone(),
            source_volid: None,
        };
        let att = AttachmentRow {
            id: AttachmentId::new(),
            volume_id: id,
            server_id: b.server_id,
            host: None,
            connector: None,
            client_id: None,
            mountpoint: Some(b.mountpoint.clone()),
            status: crate::AttachStatus::Reserved,
            delete_on_termination: b.delete_on_termination,
            boot_index: b.boot_index,
            created_at: stratus_db::SET_ON_INSERT,
        };
        let limits = self.volume_limits(stratus_db::VolumeQuotaLayer::Project(&b.project_id)).await?;
        let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
        self.check_per_volume(&b.project_id, b.size_gb).await?;
        let (vol, att) = self.ds.volume_create_reserved(&row, &att, limit("volumes"), limit("gigabytes")).await?;
        info!(volume = %vol.id, server = %b.server_id, image = ?b.image_id, snapshot = ?b.snapshot_id, "boot volume create recorded with its reservation");
        let vol = self.build(&vol, Build::Boot { retry: false }).await?;
        if vol.status != crate::VolumeStatus::Reserved {
            return Err(VolumeError::BootVolume { id: vol.id, status: vol.status.to_string() });
        }
        Ok(att)
    }

    /// Make sure the boot volume `att` reserves is built: a build cut short
    /// (its controller died, or lost its claim while the storage stalled)
    /// left it `creating`. A volume still refreshed by a live build is waited
    /// for; one that went stale is built again from scratch. Fails when the
    /// volume ends in any state but built (`error`, or deleted meanwhile).
    pub async fn finish_boot_volume(&self, att: &AttachmentRow) -> Result<(), VolumeError> {
        let stale = chrono::Duration::from_std(self.cfg.stale_after).unwrap_or_else(|_| chrono::Duration::seconds(60));
        loop {
            let vol = self.ds.volume_get(&att.volume_id).await?;
            match vol.status {
                crate::VolumeStatus::Creating => {
                    let idle = self.ds.clock().now() - vol.updated_at;
                    if idle > stale && !self.is_inflight(&vol.id) {
                        info!(volume = %vol.id, server = %att.server_id, "resuming an interrupted boot volume build");
                        self.build(&vol, Build::Boot { retry: true }).await?;
                    } else {
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                }
                failed @ (crate::VolumeStatus::Error
                | crate::VolumeStatus::Deleting
                | crate::VolumeStatus::ErrorDeleting
                | crate::VolumeStatus::Deleted) => {
                    return Err(VolumeError::BootVolume { id: vol.id, status: failed.to_string() });
                }
                _ => return Ok(()),
            }
        }
    }

    /// The host opened the volume for `att` as storage client `client`:
    /// record the connector and the client (what fencing targets later);
    /// the attachment is `attached`, the volume `in-use`. Only while the
    /// server is still on `host`, not moving, and the attachment still
    /// pending: otherwise [`OpenRecord::Stale`], and the caller closes (or
    /// fences) the stray open.
    pub async fn host_attached(
        &self,
        att: &AttachmentRow,
        host: &str,
        client: &str,
    ) -> Result<OpenRecord, VolumeError> {
        let connector = serde_json::json!({"host": host, "initiator": format!("stratus:{host}")}).to_string();
        let r = self.ds.attachment_record_open(&att.id, &att.server_id, host, &connector, client).await?;
        if r == OpenRecord::Stale {
            warn!(volume = %att.volume_id, server = %att.server_id, host, client, "volume opened where it no longer belongs: not recorded");
        }
        Ok(r)
    }

    /// Fence a storage client that opened a volume where it no longer
    /// belongs and could not be closed (its host stopped answering): the
    /// same intent-first fence a local delete uses, lifted once `host`
    /// rejoins and confirms `server_id`'s VM gone from it.
    pub async fn fence_stray(
        &self,
        server_id: &ServerId,
        host: &str,
        volume_id: &VolumeId,
        client: &str,
    ) -> Result<(), VolumeError> {
        let vol = self.ds.volume_get(volume_id).await?;
        let epoch = self.ds.service_get_by_host(host).await.map(|svc| svc.epoch).unwrap_or(0);
        self.ds.cleanup_enqueue_unfence(server_id, host, epoch, &vol.id, &vol.backend_name, client).await?;
        self.backend
            .fence(&vol.backend_name, &ClientId(client.to_string()))
            .await
            .map_err(|e| VolumeError::Fence { client: client.to_string(), source: e })?;
        self.metrics.fenced(stratus_metrics::FenceKind::Storage, 1);
        info!(server = %server_id, volume = %vol.id, client, host, "stray storage client fenced");
        Ok(())
    }

    /// Replace a volume's contents with an image (the root volume of a
    /// volume-backed server being rebuilt, Nova 2.93 / Cinder's
    /// `os-reimage`). The caller has closed every client of it first. Safe
    /// to repeat after a crash part-way: the old contents are being thrown
    /// away anyway, so the storage is removed and built again from the
    /// image each time, and recorded as holding the image once built.
    pub async fn reimage(&self, volume_id: &VolumeId, image_id: &str) -> Result<(), VolumeError> {
        let vol = self.ds.volume_get(volume_id).await?;
        let size = u64::try_from(vol.size_gb).unwrap_or(1);
        let path = self.cfg.image_dir.join(image_id);
        match self.backend.delete(&vol.backend_name).await {
            Ok(()) | Err(BlockError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if path.exists() {
            // The image's declared format: inspected against the bytes
            // before anything reads them as an image.
            let disk_format = self.image_disk_format(image_id).await?;
            self.backend.create_from_image(&vol.backend_name, size, &path, disk_format).await?;
        } else {
            // An image without data (the fake driver's): a blank volume, as a boot volume build makes.
            self.backend.create(&vol.backend_name, size).await?;
        }
        self.ds.volume_set_image(volume_id, image_id).await?;
        info!(volume = %volume_id, image = image_id, "volume re-imaged");
        Ok(())
    }

    /// The server moved and its new host opened the volume for `att` as
    /// storage client `client` (what a later fence targets).
    pub async fn host_moved(&self, att: &AttachmentRow, host: &str, client: &str) -> Result<(), VolumeError> {
        let connector = serde_json::json!({"host": host, "initiator": format!("stratus:{host}")}).to_string();
        Ok(self.ds.attachment_rehome(&att.id, host, &connector, client).await?)
    }

    /// The host could not open the volume: the reservation is dropped (the
    /// volume is `available` again), unless a move of the server opened it
    /// meanwhile.
    pub async fn host_attach_failed(&self, attachment_id: &AttachmentId) -> Result<(), VolumeError> {
        Ok(self.ds.attachment_delete_unopened(attachment_id).await?)
    }

    /// The host the attachment `att` names closed the volume: the
    /// attachment goes (the volume is `available` once it has no other),
    /// unless the volume moved meanwhile (a move of the server opened it on
    /// another host, or one is under way): then nothing is released and
    /// [`Release::Moved`] says the detach must follow the volume.
    pub async fn host_detached(&self, att: &AttachmentRow) -> Result<Release, VolumeError> {
        let r =
            self.ds.attachment_release(&att.id, &att.server_id, att.host.as_deref(), att.client_id.as_deref()).await?;
        if r == Release::Moved {
            warn!(volume = %att.volume_id, server = %att.server_id, host = ?att.host, "volume moved while its host closed it: not released");
        }
        Ok(r)
    }

    /// The host did not confirm the close: the volume stays attached, since
    /// releasing it while the host may still write is unsafe.
    pub async fn host_detach_failed(&self, attachment_id: &AttachmentId) -> Result<(), VolumeError> {
        Ok(self.ds.attachment_complete(attachment_id).await?)
    }

    /// Fence every storage client of the server's volumes (the local delete
    /// path: the host is down and its VM may still write): the client each
    /// attachment recorded, and every client watching the volume now. The
    /// second set matters for VMs that open volumes themselves: a qemu that
    /// was restarted (hard reboot, power on, resume) holds the image with a
    /// new librbd client, and a volume attached to this server alone has no
    /// other legitimate watcher. Returns a line per client for the instance
    /// action. Must run before any volume of the server is released. A fence
    /// is lifted later by [`VolumeService::lift_fences`], once the host
    /// rejoined and confirmed the VM gone.
    pub async fn fence_server(&self, server_id: &ServerId) -> Result<Vec<String>, VolumeError> {
        self.fence_server_on(server_id, None).await
    }

    /// As [`VolumeService::fence_server`], for the attachments open on
    /// `hosts` only (`None`: all): what a delete served by the server's host
    /// still fences, the volumes opened on a host where a copy of the VM may
    /// still run (the source of a move cut short, down with its VM alive).
    pub async fn fence_server_on(
        &self,
        server_id: &ServerId,
        hosts: Option<&[String]>,
    ) -> Result<Vec<String>, VolumeError> {
        let mut lines = Vec::new();
        for a in self.ds.attachment_list_for_server(server_id).await? {
            if let Some(hosts) = hosts
                && !a.host.as_ref().is_some_and(|h| hosts.contains(h))
            {
                continue;
            }
            let recorded = a.client_id.clone().filter(|c| !c.is_empty());
            if a.status == crate::AttachStatus::Fenced {
                let who = recorded.as_deref().unwrap_or("(none recorded)");
                lines.push(format!("client {who} of volume {} already fenced", a.volume_id));
                continue;
            }
            let vol = self.ds.volume_get(&a.volume_id).await?;
            let mut clients: Vec<String> = recorded.into_iter().collect();
            match self.backend.watchers(&vol.backend_name).await {
                Ok(ws) => clients.extend(ws.into_iter().map(|c| c.0).filter(|c| !c.is_empty())),
                Err(BlockError::NotFound(_)) => {}
                Err(e) => {
                    return Err(VolumeError::Fence { client: format!("watchers of {}", vol.backend_name), source: e });
                }
            }
            clients.sort();
            clients.dedup();
            // An attach not recorded yet has no host, but the host it was
            // sent to may already hold a client: the lift is judged by that
            // host's reports. That is the host the server's VM may still
            // run on: its newest zombie (an evacuation or a local delete
            // records it before fencing, and an evacuation has already
            // moved the server's host to the destination), else its host.
            let host = match &a.host {
                Some(h) => Some(h.clone()),
                None if !clients.is_empty() => {
                    let zombie = self
                        .ds
                        .zombie_list(None)
                        .await?
                        .into_iter()
                        .filter(|z| &z.server_id == server_id)
                        .max_by_key(|z| z.created_at)
                        .map(|z| z.host);
                    match zombie {
                        Some(h) => Some(h),
                        None => self.ds.server_get_any(server_id).await?.host,
                    }
                }
                None => None,
            };
            for client in clients {
                stratus_types::faults::fault_point("fence:client");
                let started = std::time::Instant::now();
                // Intent first, in a write fenced by the operation's claim: a
                // controller that lost the delete while it stalled stops here
                // instead of fencing a client whose fence was already handled
                // (and lifted) by the one that adopted it.
                match &host {
                    Some(host) => {
                        let epoch = self.ds.service_get_by_host(host).await.map(|svc| svc.epoch).unwrap_or(0);
                        self.ds
                            .cleanup_enqueue_unfence(server_id, host, epoch, &vol.id, &vol.backend_name, &client)
                            .await?;
                    }
                    None => self.ds.claim_held().await?,
                }
                self.backend
                    .fence(&vol.backend_name, &ClientId(client.clone()))
                    .await
                    .map_err(|e| VolumeError::Fence { client: client.clone(), source: e })?;
                let ms = started.elapsed().as_millis();
                self.metrics.fenced(stratus_metrics::FenceKind::Storage, 1);
                info!(server = %server_id, volume = %vol.id, client = %client, ms = ms as u64, "storage client fenced");
                lines.push(format!("fenced client {client} of volume {} in {ms} ms", vol.id));
            }
            self.ds.attachment_mark_fenced(&a.id).await?;
        }
        Ok(lines)
    }

    /// Detach every volume of a deleted server and delete the
    /// `delete_on_termination` ones. A volume whose storage cannot be
    /// deleted yet (busy: a client still watches it) stays `deleting` and
    /// its delete goes to the durable queue, retried by the reconciler.
    /// Returns a line per volume for the instance action.
    pub async fn release_server_volumes(&self, server_id: &ServerId) -> Result<Vec<String>, VolumeError> {
        let mut lines = Vec::new();
        for a in self.ds.attachment_list_for_server(server_id).await? {
            self.ds.attachment_delete(&a.id).await?;
            if !a.delete_on_termination {
                lines.push(format!("volume {} detached", a.volume_id));
                continue;
            }
            let vol = match self.ds.volume_get(&a.volume_id).await {
                Ok(v) => v,
                Err(DbError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            self.ds.volume_set_status(&vol.id, &[], crate::VolumeStatus::Deleting).await?;
            match self.delete_storage(&vol).await? {
                DeleteOutcome::Deleted | DeleteOutcome::Trashed => lines.push(format!("volume {} deleted", vol.id)),
                DeleteOutcome::Queued(why) => lines.push(format!("volume {} queued for deletion ({why})", vol.id)),
            }
        }
        Ok(lines)
    }

    /// Lift the fences whose host is up, reported the fenced server's VM gone
    /// (no zombie of it remains there) and, in a report made after the
    /// fence, the fenced client gone (not among its open storage clients).
    /// Returns how many were lifted.
    pub async fn lift_fences(&self) -> Result<usize, VolumeError> {
        let mut lifted = 0;
        for c in self.ds.cleanup_pending().await? {
            if c.kind != CleanupKind::Unfence {
                continue;
            }
            let (Some(host), Some(server), Some(client)) = (&c.host, &c.server_id, &c.client_id) else {
                self.ds.cleanup_done(c.id).await?;
                continue;
            };
            let up = self.ds.service_get_by_host(host).await.map(|svc| svc.is_up()).unwrap_or(false);
            let zombie = self.ds.zombie_list(Some(host)).await?.iter().any(|z| &z.server_id == server);
            // The client itself must be known gone, not only its VM: a
            // client process can outlive the VM it served. Known gone means
            // that a report the host made after the fence lists its open
            // clients without this one: one made at an epoch newer than the
            // fence's (the host rejoined since), or, for a host that never
            // lost its lease (falsely up), the second report handled after
            // the fence (an agent sends one report at a time, so the second
            // was made after the first was answered, after the fence).
            let client_gone = self.ds.host_clients(host).await?.is_some_and(|r| {
                let after = r.epoch > c.epoch.unwrap_or(i64::MAX) || c.clients_seq.is_some_and(|s| r.seq >= s + 2);
                after && !r.clients.contains(client)
            });
            if !up || zombie || !client_gone {
                continue;
            }
            match self.backend.unfence(&ClientId(client.clone())).await {
                Ok(()) => {
                    info!(client = %client, host = %host, "fence lifted: the host reaped the zombie and reported the client gone");
                    self.ds.cleanup_done(c.id).await?;
                    lifted += 1;
                }
                Err(e) => {
                    warn!(client = %client, host = %host, error = %e, "lifting a fence failed; the next pass retries");
                    self.ds.cleanup_failed(c.id, &e.to_string()).await?;
                }
            }
        }
        Ok(lifted)
    }
}
