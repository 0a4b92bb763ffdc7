//! Volume snapshots as Cinder keeps them: a point-in-time copy of one
//! volume in the backend, counted in the `snapshots` and `gigabytes` quotas
//! (and their per-type twins), from which new volumes can be built.
//!
//! Crash safety follows the volume lifecycle: the row is recorded
//! `creating` before the backend copies anything and marked deleted only
//! once the backend's copy is gone. The reconciler finishes a snapshot left
//! `creating` (its copy complete: `available`; else its leftovers removed
//! and `error`, never a copy taken later than asked) or `deleting` (the
//! removal retried until it succeeds).

use crate::{Missing, VolumeError, VolumeService, VolumeStatus, check_metadata, check_text, check_write};
use std::collections::BTreeMap;
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_blockstore::BlockError;
use stratus_db::{Cas, DbError, SnapshotLimits, SnapshotRow, VolumeQuotaLayer};
use tracing::{info, warn};

/// `creating`: recorded, the backend copy not (known to be) made yet.
pub const SNAP_CREATING: &str = "creating";
/// `available`: the copy exists.
pub const SNAP_AVAILABLE: &str = "available";
/// `deleting`: the copy is being removed.
pub const SNAP_DELETING: &str = "deleting";
/// `error`.
pub const SNAP_ERROR: &str = "error";
/// `error_deleting`: the removal failed (a delete retries it).
pub const SNAP_ERROR_DELETING: &str = "error_deleting";

/// Statuses an admin may set with the snapshot's `os-reset_status`
/// (Cinder's snapshot statuses). A snapshot reset to `creating` or
/// `deleting` is left to the reconciler once stale: `available` if its copy
/// exists (else `error`), or deleted.
pub const SNAPSHOT_RESET_STATUSES: &[&str] =
    &["creating", "available", "deleting", "error", "error_deleting", "backing-up", "restoring", "unmanaging"];

/// Statuses from which a snapshot may be deleted (Cinder's, plus
/// `error_deleting` so a failed removal can be retried).
const SNAP_DELETABLE: &[&str] = &[SNAP_AVAILABLE, SNAP_ERROR, SNAP_ERROR_DELETING];

/// A snapshot create request (`POST /snapshots`), already parsed.
#[derive(Clone, Debug, Default)]
pub struct NewSnapshot {
    /// The volume to copy.
    pub volume_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// `force`: also copy an `in-use` volume (implied from 3.66).
    pub force: bool,
}

/// Filters of `GET /snapshots`.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// `all_tenants` (admins only; ignored for others).
    pub all_projects: bool,
    /// With `all_projects`: only this project.
    pub project_id: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Snapshots of this volume.
    pub volume_id: Option<String>,
}

impl VolumeService {
    /// A snapshot the caller may see; another project's is a 404.
    pub async fn snapshot_visible(&self, ctx: &AuthContext, id: &str) -> Result<SnapshotRow, VolumeError> {
        let s = match self.ds.snapshot_get(id).await {
            Ok(s) => s,
            Err(DbError::NotFound { .. }) => return Err(VolumeError::not_found(Missing::Snapshot, id)),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&s.project_id) {
            return Err(VolumeError::not_found(Missing::Snapshot, id));
        }
        Ok(s)
    }

    /// Snapshots the caller may list, newest first.
    pub async fn snapshot_list(&self, ctx: &AuthContext, f: &SnapshotFilter) -> Result<Vec<SnapshotRow>, VolumeError> {
        let project =
            if ctx.is_admin() && f.all_projects { f.project_id.clone() } else { Some(ctx.project_id.clone()) };
        Ok(self
            .ds
            .snapshot_list(project.as_deref())
            .await?
            .into_iter()
            .filter(|s| f.name.as_ref().is_none_or(|n| s.name.as_ref() == Some(n)))
            .filter(|s| f.status.as_ref().is_none_or(|st| *st == s.status))
            .filter(|s| f.volume_id.as_ref().is_none_or(|v| *v == s.volume_id.to_string()))
            .collect())
    }

    /// Snapshot a volume: `available`, or `in-use` with `force` (Cinder's
    /// 400s otherwise); quota counted and the row recorded `creating` in one
    /// transaction, then the backend copy is made, waited for at most
    /// `create_answer_within` (it goes on in the background after that).
    pub async fn snapshot_create(
        self: &Arc<Self>,
        ctx: &AuthContext,
        req: NewSnapshot,
    ) -> Result<SnapshotRow, VolumeError> {
        check_write(ctx, "create_snapshot")?;
        let v = self.get_visible(ctx, &req.volume_id).await?;
        check_text("name", req.name.as_deref())?;
        check_text("description", req.description.as_deref())?;
        check_metadata(&req.metadata)?;
        let force = req.force;
        let allowed: &[VolumeStatus] =
            if force { &[VolumeStatus::Available, VolumeStatus::InUse] } else { &[VolumeStatus::Available] };
        let refused = |status: &str| {
            if force {
                VolumeError::BadRequest(format!(
                    "Invalid volume: Volume {} status must be available or in-use, but current status is: {status}.",
                    v.id
                ))
            } else {
                VolumeError::BadRequest(format!(
                    "Invalid volume: Volume {} status must be available, but current status is: {status}.",
                    v.id
                ))
            }
        };
        if !allowed.contains(&v.status) {
            return Err(refused(v.status.as_str()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        match self.snapshot_record(&v, &ctx.user_id, req, allowed, id).await {
            Err(VolumeError::Conflict(status)) => Err(refused(&status)),
            other => other,
        }
    }

    /// Record a snapshot of `v` as `id` (quota counted, `creating`, in one
    /// transaction that re-checks the volume's status against `allowed`),
    /// then make the backend copy, waited for at most
    /// `create_answer_within`. A volume that changed status meanwhile is a
    /// `Conflict` carrying its status.
    async fn snapshot_record(
        self: &Arc<Self>,
        v: &stratus_db::VolumeRow,
        user_id: &str,
        req: NewSnapshot,
        allowed: &[VolumeStatus],
        id: String,
    ) -> Result<SnapshotRow, VolumeError> {
        let limits = self.volume_limits(VolumeQuotaLayer::Project(&v.project_id)).await?;
        let limit = |r: &str| limits.get(r).copied().unwrap_or(-1);
        let type_name = v.volume_type.clone().unwrap_or_default();
        let lim = SnapshotLimits {
            snapshots: limit("snapshots"),
            gigabytes: limit("gigabytes"),
            type_snapshots: limit(&format!("snapshots_{type_name}")),
            type_gigabytes: limit(&format!("gigabytes_{type_name}")),
        };
        let row = SnapshotRow {
            backend_name: format!("snapshot-{id}"),
            id,
            volume_id: v.id,
            project_id: v.project_id.clone(),
            user_id: user_id.to_string(),
            name: req.name,
            description: req.description,
            size_gb: v.size_gb,
            status: SNAP_CREATING.into(),
            progress: "0%".into(),
            volume_type_id: v.volume_type_id.clone(),
            metadata: serde_json::to_string(&req.metadata).unwrap_or_else(|_| "{}".into()),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
            group_snapshot_id: None,
        };
        let row = match self.ds.snapshot_create(&row, allowed, lim).await {
            Ok(r) => r,
            Err(DbError::QuotaExceeded(q)) => {
                return Err(VolumeError::QuotaExceeded(snapshot_quota_message(&q, &type_name)));
            }
            Err(DbError::Conflict { detail, .. }) => return Err(VolumeError::Conflict(detail)),
            Err(DbError::NotFound { .. }) => return Err(VolumeError::not_found(Missing::Volume, &req.volume_id)),
            Err(e) => return Err(e.into()),
        };
        info!(snapshot = %row.id, volume = %v.id, size = row.size_gb, "snapshot create recorded");
        let (me, recorded, vname) = (self.clone(), row.clone(), v.backend_name.clone());
        let build = tokio::spawn(async move { me.snapshot_build(&recorded, &vname).await });
        match tokio::time::timeout(self.cfg.create_answer_within, build).await {
            Ok(Ok(Ok(built))) => Ok(built),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) | Err(_) => Ok(row),
        }
    }

    /// Make the backend copy of a `creating` snapshot, then `available`
    /// (100%), or `error` when the backend refuses.
    pub(crate) async fn snapshot_build(
        &self,
        s: &SnapshotRow,
        volume_backend_name: &str,
    ) -> Result<SnapshotRow, VolumeError> {
        let r = self.backend.snapshot_create(volume_backend_name, &s.backend_name).await;
        let (to, progress) = match &r {
            Ok(()) => (SNAP_AVAILABLE, "100%"),
            Err(e) => {
                warn!(snapshot = %s.id, error = %e, "snapshot storage could not be created");
                (SNAP_ERROR, "0%")
            }
        };
        if self.ds.snapshot_set_status(&s.id, &[SNAP_CREATING], to, Some(progress)).await? == Cas::Conflict {
            warn!(snapshot = %s.id, to, "snapshot left `creating` during its build; status kept");
        } else if r.is_ok() {
            info!(snapshot = %s.id, volume = %s.volume_id, "snapshot created");
        }
        Ok(self.ds.snapshot_get(&s.id).await?)
    }

    /// The snapshot a new volume is built from: visible, `available`, and
    /// no larger than the volume (Cinder's 400s).
    pub(crate) async fn source_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
        size: i64,
    ) -> Result<SnapshotRow, VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        if s.status != SNAP_AVAILABLE {
            return Err(VolumeError::BadRequest(format!(
                "Invalid snapshot: Originating snapshot status must be one of 'available' values, but is {}.",
                s.status
            )));
        }
        if size < s.size_gb {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.",
                s.size_gb
            )));
        }
        Ok(s)
    }

    /// The backend names (volume, snapshot) a volume built from snapshot
    /// `id` copies.
    pub(crate) async fn snapshot_source_names(&self, id: &str) -> Result<(String, String), BlockError> {
        let s = match self.ds.snapshot_get(id).await {
            Ok(s) => s,
            Err(DbError::NotFound { .. }) => return Err(BlockError::NotFound(format!("snapshot {id}"))),
            Err(e) => return Err(BlockError::Backend(format!("reading snapshot {id}: {e}"))),
        };
        let v = self.snapshot_volume_backend_name(&s).await.map_err(|e| BlockError::Backend(e.to_string()))?;
        Ok((v, s.backend_name))
    }

    /// `PUT /snapshots/{id}`: name and/or description.
    pub async fn snapshot_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<SnapshotRow, VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        check_write(ctx, "update_snapshot")?;
        check_text("name", name)?;
        check_text("description", description)?;
        Ok(self.ds.snapshot_update(&s.id, name, description).await?)
    }

    /// A snapshot's metadata as a map.
    pub fn snapshot_metadata_of(s: &SnapshotRow) -> BTreeMap<String, String> {
        serde_json::from_str(&s.metadata).unwrap_or_default()
    }

    /// Snapshot metadata calls: merge `m` (`POST`, `PUT .../{key}`) or
    /// replace the whole (`PUT`); answers the metadata now.
    pub async fn snapshot_set_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        m: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>, VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        check_write(ctx, "update_snapshot_metadata")?;
        check_metadata(&m)?;
        let mut cur = if replace { BTreeMap::new() } else { Self::snapshot_metadata_of(&s) };
        cur.extend(m);
        let row =
            self.ds.snapshot_set_metadata(&s.id, &serde_json::to_string(&cur).unwrap_or_else(|_| "{}".into())).await?;
        Ok(Self::snapshot_metadata_of(&row))
    }

    /// `DELETE /snapshots/{id}/metadata/{key}` (404 when absent).
    pub async fn snapshot_delete_metadata(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        check_write(ctx, "delete_snapshot_metadata")?;
        let mut cur = Self::snapshot_metadata_of(&s);
        if cur.remove(key).is_none() {
            return Err(VolumeError::not_found(Missing::SnapshotMetadataKey { snapshot: s.id.clone() }, key));
        }
        self.ds.snapshot_set_metadata(&s.id, &serde_json::to_string(&cur).unwrap_or_else(|_| "{}".into())).await?;
        Ok(())
    }

    /// Delete a snapshot: `available`, `error` or `error_deleting` (or any
    /// status with `force`, admins: `os-force_delete`), and not the source
    /// of a volume still being built. `deleting` by compare-and-swap, then
    /// the backend copy is removed inline; a removal that fails leaves
    /// `error_deleting`, one cut off by a crash stays `deleting` for the
    /// reconciler.
    pub async fn snapshot_delete(&self, ctx: &AuthContext, id: &str, force: bool) -> Result<(), VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        if force {
            if !ctx.is_admin() {
                return Err(VolumeError::Forbidden {
                    action: "volume_extension:snapshot_admin_actions:force_delete".into(),
                });
            }
        } else {
            check_write(ctx, "delete_snapshot")?;
        }
        // Cinder: a member of a group snapshot goes only with it.
        if let Some(gs) = &s.group_snapshot_id {
            return Err(VolumeError::BadRequest(format!(
                "Invalid snapshot: Snapshot {} is part of group snapshot {gs}; delete the group snapshot instead.",
                s.id
            )));
        }
        // A repeated delete changes nothing; a forced one (an admin's, also
        // for a snapshot reset to `deleting`) removes the copy now.
        if s.status == SNAP_DELETING && !force {
            return Ok(());
        }
        let building = self
            .ds
            .volume_list(Some(&s.project_id))
            .await?
            .into_iter()
            .any(|v| v.snapshot_id.as_deref() == Some(s.id.as_str()) && v.status == VolumeStatus::Creating);
        if building {
            return Err(VolumeError::BadRequest(format!(
                "Invalid snapshot: Snapshot {} has a volume being created from it.",
                s.id
            )));
        }
        let refused =
            || VolumeError::BadRequest("Invalid snapshot: Volume Snapshot status must be available or error.".into());
        if !force && !SNAP_DELETABLE.contains(&s.status.as_str()) {
            return Err(refused());
        }
        let from: &[&str] = if force { &[] } else { SNAP_DELETABLE };
        match self.ds.snapshot_set_status(&s.id, from, SNAP_DELETING, None).await? {
            Cas::Updated => {}
            Cas::AlreadySo if force => {}
            Cas::AlreadySo => return Ok(()),
            Cas::Conflict => return Err(refused()),
        }
        info!(snapshot = %s.id, force, "snapshot delete recorded");
        self.snapshot_remove(&s).await
    }

    /// Remove a `deleting` snapshot's backend copy and mark it deleted
    /// (quota released), or leave `error_deleting`.
    pub(crate) async fn snapshot_remove(&self, s: &SnapshotRow) -> Result<(), VolumeError> {
        let vname = self.snapshot_volume_backend_name(s).await?;
        match self.backend.snapshot_delete(&vname, &s.backend_name).await {
            Ok(()) | Err(BlockError::NotFound(_)) => {
                self.ds.snapshot_mark_deleted(&s.id).await?;
                info!(snapshot = %s.id, "snapshot deleted");
                Ok(())
            }
            Err(e) => {
                warn!(snapshot = %s.id, error = %e, "snapshot storage could not be deleted");
                self.ds.snapshot_set_status(&s.id, &[SNAP_DELETING], SNAP_ERROR_DELETING, None).await?;
                Ok(())
            }
        }
    }

    /// The backend name of the volume a snapshot copies (the volume row may
    /// be gone only in a database edited by hand: its default name then).
    async fn snapshot_volume_backend_name(&self, s: &SnapshotRow) -> Result<String, VolumeError> {
        match self.ds.volume_get(&s.volume_id).await {
            Ok(v) => Ok(v.backend_name),
            Err(DbError::NotFound { .. }) => Ok(format!("volume-{}", s.volume_id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete every snapshot of a volume (a volume delete with `cascade`):
    /// each must be deletable as by a delete of its own.
    pub(crate) async fn delete_snapshots_of(
        &self,
        ctx: &AuthContext,
        v: &stratus_db::VolumeRow,
    ) -> Result<(), VolumeError> {
        let snaps = self.ds.snapshot_list_for_volume(&v.id).await?;
        if let Some(s) =
            snaps.iter().find(|s| !SNAP_DELETABLE.contains(&s.status.as_str()) && s.status != SNAP_DELETING)
        {
            return Err(VolumeError::BadRequest(format!(
                "Invalid volume: Snapshot {} of volume {} is {}; it must be available or error to delete the volume with cascade.",
                s.id, v.id, s.status
            )));
        }
        for s in snaps {
            self.snapshot_delete(ctx, &s.id, false).await?;
        }
        Ok(())
    }

    /// Admin `os-reset_status` of a snapshot.
    pub async fn snapshot_reset_status(&self, ctx: &AuthContext, id: &str, status: &str) -> Result<(), VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        if !ctx.is_admin() {
            return Err(VolumeError::Forbidden {
                action: "volume_extension:snapshot_admin_actions:reset_status".into(),
            });
        }
        if !SNAPSHOT_RESET_STATUSES.contains(&status) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input for field/attribute status. Value: {status}. '{status}' is not one of {SNAPSHOT_RESET_STATUSES:?}"
            )));
        }
        self.ds.snapshot_set_status(&s.id, &[], status, None).await?;
        info!(snapshot = %s.id, status, by = %ctx.user_id, "snapshot status reset");
        Ok(())
    }

    /// `os-update_snapshot_status` (what a volume driver reports; Cinder's
    /// policy lets the project's members call it): `status` and optionally
    /// `progress`; Cinder only lets a
    /// `creating` snapshot become `available` or `error`, and a `deleting`
    /// one `error_deleting`.
    pub async fn snapshot_update_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
        progress: Option<&str>,
    ) -> Result<(), VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        check_write(ctx, "snapshot_extension:snapshot_actions:update_snapshot_status")?;
        let allowed: &[&str] = match s.status.as_str() {
            SNAP_CREATING => &[SNAP_CREATING, SNAP_AVAILABLE, SNAP_ERROR],
            SNAP_DELETING => &[SNAP_DELETING, SNAP_ERROR_DELETING],
            _ => &[],
        };
        if !allowed.contains(&status) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Provided snapshot status {status} not allowed for snapshot with status {}.",
                s.status
            )));
        }
        self.ds.snapshot_set_status(&s.id, &[s.status.as_str()], status, progress).await?;
        Ok(())
    }

    /// Admin `os-update_progress`: the progress text as given.
    pub async fn snapshot_update_progress(
        &self,
        ctx: &AuthContext,
        id: &str,
        progress: &str,
    ) -> Result<(), VolumeError> {
        let s = self.snapshot_visible(ctx, id).await?;
        if !ctx.is_admin() {
            return Err(VolumeError::Forbidden {
                action: "volume_extension:snapshot_admin_actions:update_progress".into(),
            });
        }
        self.ds.snapshot_set_progress(&s.id, progress).await?;
        Ok(())
    }

    /// The reconciler's snapshot step: a stale `creating` snapshot whose
    /// copy is complete becomes `available`; one without becomes `error`
    /// (its leftovers removed: copying now would not be the point in time
    /// asked for); a stale `deleting` one has its removal retried.
    /// Returns (finished, failed).
    pub(crate) async fn reconcile_snapshots(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<(usize, usize), VolumeError> {
        let (mut done, mut failed) = (0, 0);
        for s in self.ds.snapshot_list_stale(&[SNAP_CREATING], cutoff).await? {
            let vname = self.snapshot_volume_backend_name(&s).await?;
            let present = self.backend.snapshot_exists(&vname, &s.backend_name).await;
            let to = match present {
                Ok(true) => SNAP_AVAILABLE,
                Ok(false) => {
                    if let Err(e) = self.backend.snapshot_delete(&vname, &s.backend_name).await {
                        warn!(snapshot = %s.id, error = %e, "removing what an interrupted snapshot left failed; the next pass retries");
                        failed += 1;
                        continue;
                    }
                    SNAP_ERROR
                }
                Err(e) => {
                    warn!(snapshot = %s.id, error = %e, "checking an interrupted snapshot failed; the next pass retries");
                    failed += 1;
                    continue;
                }
            };
            let progress = if to == SNAP_AVAILABLE { "100%" } else { "0%" };
            if self.ds.snapshot_set_status(&s.id, &[SNAP_CREATING], to, Some(progress)).await? == Cas::Updated {
                warn!(snapshot = %s.id, status = to, "interrupted snapshot create finished");
                done += 1;
            }
        }
        for s in self.ds.snapshot_list_stale(&[SNAP_DELETING], cutoff).await? {
            self.snapshot_remove(&s).await?;
            match self.ds.snapshot_get(&s.id).await {
                Err(DbError::NotFound { .. }) => done += 1,
                _ => failed += 1,
            }
        }
        Ok((done, failed))
    }
}

impl VolumeService {
    /// Snapshot `volume_id` for a volume-backed server's image (Nova's
    /// `create_snapshot_force`, on behalf of the server's user): `in-use`
    /// is allowed, the quota is the volume's project's. `id` is chosen by
    /// the caller so that a retried step finds the snapshot its earlier
    /// attempt made. Waits up to `wait` for the copy: `available` is
    /// returned, a failed copy is an error.
    pub async fn snapshot_for_server_image(
        self: &Arc<Self>,
        user_id: &str,
        volume_id: &stratus_types::VolumeId,
        name: &str,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<SnapshotRow, VolumeError> {
        let existing = match self.ds.snapshot_get(id).await {
            Ok(s) => Some(s),
            Err(DbError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if existing.is_none() {
            let v = self.ds.volume_get(volume_id).await?;
            let req = NewSnapshot {
                volume_id: v.id.to_string(),
                name: Some(name.to_string()),
                force: true,
                ..Default::default()
            };
            let allowed = [VolumeStatus::Available, VolumeStatus::InUse];
            match self.snapshot_record(&v, user_id, req, &allowed, id.to_string()).await {
                Ok(_) => {}
                Err(VolumeError::Conflict(status)) => {
                    return Err(VolumeError::BadRequest(format!(
                        "Invalid volume: Volume {volume_id} status must be available or in-use, but current status is: {status}."
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let s = self.ds.snapshot_get(id).await?;
            match s.status.as_str() {
                SNAP_AVAILABLE => return Ok(s),
                SNAP_CREATING if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => {
                    return Err(VolumeError::Backend(BlockError::Backend(format!(
                        "snapshot {id} of volume {volume_id} is {other}"
                    ))));
                }
            }
        }
    }
}

/// Cinder's messages for a snapshot over quota (`snapshots`, `gigabytes`,
/// or their per-type twins).
pub(crate) fn snapshot_quota_message(q: &stratus_db::QuotaExceeded, type_name: &str) -> String {
    let at = |name: &str| q.overs.iter().position(|o| *o == name);
    let get = |v: &[i64], i: usize| v.get(i).copied().unwrap_or(0);
    if let Some(i) = at("gigabytes") {
        return crate::error::gigabytes_message(get(&q.requested, i), get(&q.allowed, i), get(&q.used, i));
    }
    if let Some(i) = at("gigabytes_type") {
        return format!(
            "Requested volume or snapshot exceeds allowed gigabytes_{type_name} quota. Requested {}G, quota is {}G and {}G has been consumed.",
            get(&q.requested, i),
            get(&q.allowed, i),
            get(&q.used, i)
        );
    }
    if let Some(i) = at("snapshots") {
        return format!("Maximum number of snapshots allowed ({}) exceeded for quota 'snapshots'.", get(&q.allowed, i));
    }
    if let Some(i) = at("snapshots_type") {
        return format!(
            "Maximum number of snapshots allowed ({}) exceeded for quota 'snapshots_{type_name}'.",
            get(&q.allowed, i)
        );
    }
    q.to_string()
}
