//! Group snapshots (Cinder's `/group_snapshots`, 3.14; `reset_status` at
//! 3.19) and groups built from a source (`create-from-src`, 3.14).
//!
//! A group snapshot is a snapshot of every volume of a generic group taken
//! together: each member is an ordinary volume snapshot naming the group
//! snapshot (`group_snapshot_id`), counted in the `snapshots`/`gigabytes`
//! quotas like any other, and deleted only with its group snapshot. A group
//! that has group snapshots cannot be deleted (Cinder's rule). The group
//! snapshot is `creating` until every member's copy is made, then
//! `available` (`error` when one failed). After a crash the reconciler
//! finishes the members (its snapshot step), then the group snapshot: a
//! stale `creating` one takes its members' outcome, a stale `deleting` one
//! has its members' removal retried.
//!
//! A group built from a group snapshot gets a volume from each member
//! snapshot; one built from a source group gets a clone of each of its
//! volumes. The volumes are recorded with the group (quota counted; any
//! refusal undoes the whole) and built like any volume.

use crate::snapshots::{SNAP_AVAILABLE, SNAP_DELETING, snapshot_quota_message};
use crate::{
    Build, Missing, NewVolume, VolumeError, VolumeService, VolumeStatus, check_text, check_type_admin, check_write,
};
use std::sync::Arc;
use stratus_auth::AuthContext;
use stratus_db::{
    Cas, DbError, GroupSnapshotRow, SnapshotLimits, SnapshotRow, VolumeGroupRow, VolumeQuotaLayer, VolumeRow,
};
use tracing::{info, warn};

/// Cinder's group snapshot statuses (`GroupSnapshotStatus.ALL`): what
/// `reset_status` accepts.
pub const GROUP_SNAPSHOT_STATUSES: &[&str] =
    &["error", "available", "creating", "deleting", "deleted", "updating", "error_deleting"];

/// `creating`: recorded, member copies not all made yet.
const GS_CREATING: &str = "creating";
/// `available`: every member copy exists.
const GS_AVAILABLE: &str = "available";
/// `deleting`: the members are being removed.
const GS_DELETING: &str = "deleting";
/// `error`: a member copy failed.
const GS_ERROR: &str = "error";
/// `error_deleting`: a member could not be removed (a delete retries).
const GS_ERROR_DELETING: &str = "error_deleting";

/// Volume statuses a group snapshot (or a clone) may be taken of.
const SNAPPABLE: &[VolumeStatus] = &[VolumeStatus::Available, VolumeStatus::InUse];

fn gs_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::GroupSnapshot, id)
}

impl VolumeService {
    /// A group snapshot the caller may see (another project's is 404).
    pub async fn group_snapshot_get(&self, ctx: &AuthContext, id: &str) -> Result<GroupSnapshotRow, VolumeError> {
        let g = match self.ds.group_snapshot_get(id).await {
            Ok(g) => g,
            Err(DbError::NotFound { .. }) => return Err(gs_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&g.project_id) {
            return Err(gs_missing(id));
        }
        Ok(g)
    }

    /// Group snapshots of the caller's project (`all_projects`: every
    /// project's, for admins; ignored for others, as Cinder does).
    pub async fn group_snapshot_list(
        &self,
        ctx: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<GroupSnapshotRow>, VolumeError> {
        let project = if ctx.is_admin() && all_projects { None } else { Some(ctx.project_id.as_str()) };
        Ok(self.ds.group_snapshot_list(project).await?)
    }

    /// `POST /group_snapshots`: snapshot every volume of a group the caller
    /// sees; the group must be `available` or `in-use` and each volume
    /// `available` or `in-use` (Cinder's 400s); each member snapshot counts
    /// in the snapshot quotas (413, nothing recorded). Answers within
    /// `create_answer_within`, `creating` if the copies take longer.
    pub async fn group_snapshot_create(
        self: &Arc<Self>,
        ctx: &AuthContext,
        group_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<GroupSnapshotRow, VolumeError> {
        check_write(ctx, "group:create_group_snapshot")?;
        check_text("name", name.as_deref())?;
        check_text("description", description.as_deref())?;
        let g = self.group_get(ctx, group_id).await?;
        if g.status != "available" && g.status != "in-use" {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group: Group {} status must be available or in-use, but current status is: {}.",
                g.id, g.status
            )));
        }
        let mut volumes = Vec::new();
        for vid in self.ds.volume_group_members(&g.id).await? {
            let v = self.ds.volume_get(&vid).await?;
            if !SNAPPABLE.contains(&v.status) {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid volume: Volume {} status must be available or in-use, but current status is: {}.",
                    v.id, v.status
                )));
            }
            volumes.push(v);
        }
        let gs = self
            .ds
            .group_snapshot_create(&GroupSnapshotRow {
                id: uuid::Uuid::new_v4().to_string(),
                group_id: g.id.clone(),
                project_id: g.project_id.clone(),
                user_id: ctx.user_id.clone(),
                name,
                description,
                status: GS_CREATING.into(),
                group_type_id: g.group_type_id.clone(),
                created_at: stratus_db::SET_ON_INSERT,
            })
            .await?;
        let mut members: Vec<(SnapshotRow, String)> = Vec::new();
        for v in &volumes {
            match self.record_member_snapshot(ctx, &gs, v).await {
                Ok(s) => members.push((s, v.backend_name.clone())),
                Err(e) => {
                    // Nothing was copied yet: the records go, quota with them.
                    for (s, _) in &members {
                        self.ds.snapshot_mark_deleted(&s.id).await?;
                    }
                    self.ds.group_snapshot_mark_deleted(&gs.id).await?;
                    return Err(e);
                }
            }
        }
        info!(group_snapshot = %gs.id, group = %g.id, members = members.len(), "group snapshot create recorded");
        let (me, gid) = (self.clone(), gs.id.clone());
        let build = tokio::spawn(async move { me.group_snapshot_build(&gid, members).await });
        // Still running (or its task died): answered `creating`, the copies go on.
        if let Ok(Ok(Err(e))) = tokio::time::timeout(self.cfg.create_answer_within, build).await {
            return Err(e);
        }
        Ok(self.ds.group_snapshot_get(&gs.id).await?)
    }

    /// Record one member snapshot `creating` (quota counted).
    async fn record_member_snapshot(
        &self,
        ctx: &AuthContext,
        gs: &GroupSnapshotRow,
        v: &VolumeRow,
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
        let id = uuid::Uuid::new_v4().to_string();
        let row = SnapshotRow {
            backend_name: format!("snapshot-{id}"),
            id,
            volume_id: v.id,
            project_id: v.project_id.clone(),
            user_id: ctx.user_id.clone(),
            name: gs.name.clone(),
            description: gs.description.clone(),
            size_gb: v.size_gb,
            status: crate::snapshots::SNAP_CREATING.into(),
            progress: "0%".into(),
            volume_type_id: v.volume_type_id.clone(),
            metadata: "{}".into(),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
            group_snapshot_id: Some(gs.id.clone()),
        };
        match self.ds.snapshot_create(&row, SNAPPABLE, lim).await {
            Ok(r) => Ok(r),
            Err(DbError::QuotaExceeded(q)) => Err(VolumeError::QuotaExceeded(snapshot_quota_message(&q, &type_name))),
            Err(DbError::Conflict { detail, .. }) => Err(VolumeError::BadRequest(format!(
                "Invalid volume: Volume {} status must be available or in-use, but current status is: {detail}.",
                v.id
            ))),
            Err(DbError::NotFound { .. }) => Err(VolumeError::not_found(Missing::Volume, v.id.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Make every member's copy, then `available` (or `error` when one
    /// failed), unless the status was changed meanwhile (a reset).
    async fn group_snapshot_build(&self, id: &str, members: Vec<(SnapshotRow, String)>) -> Result<(), VolumeError> {
        let mut ok = true;
        for (s, vname) in &members {
            let built = self.snapshot_build(s, vname).await?;
            ok &= built.status == SNAP_AVAILABLE;
        }
        let to = if ok { GS_AVAILABLE } else { GS_ERROR };
        if self.ds.group_snapshot_set_status(id, &[GS_CREATING], to).await? == Cas::Conflict {
            warn!(group_snapshot = id, to, "group snapshot left `creating` during its build; status kept");
        } else {
            info!(group_snapshot = id, status = to, "group snapshot built");
        }
        Ok(())
    }

    /// `DELETE /group_snapshots/{id}`: `available` or `error` (or a failed
    /// delete's `error_deleting`), and no volume being built from one of
    /// its members (Cinder's 400 otherwise); every member snapshot is
    /// removed (quota released), then the group snapshot. A member that
    /// cannot be removed leaves `error_deleting`.
    pub async fn group_snapshot_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        let gs = self.group_snapshot_get(ctx, id).await?;
        check_write(ctx, "group:delete_group_snapshot")?;
        if gs.status == GS_DELETING {
            return Ok(());
        }
        let refused = || {
            VolumeError::BadRequest(
                "Invalid group snapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation.".into(),
            )
        };
        let members = self.ds.group_snapshot_members(&gs.id).await?;
        let building = self.ds.volume_list(Some(&gs.project_id)).await?.into_iter().any(|v| {
            v.status == VolumeStatus::Creating
                && v.snapshot_id.as_ref().is_some_and(|s| members.iter().any(|m| &m.id == s))
        });
        if building {
            return Err(refused());
        }
        match self
            .ds
            .group_snapshot_set_status(&gs.id, &[GS_AVAILABLE, GS_ERROR, GS_ERROR_DELETING], GS_DELETING)
            .await?
        {
            Cas::Updated => {}
            Cas::AlreadySo => return Ok(()),
            Cas::Conflict => return Err(refused()),
        }
        info!(group_snapshot = %gs.id, members = members.len(), "group snapshot delete recorded");
        self.remove_group_snapshot_members(&gs).await
    }

    /// The reconciler's group snapshot step: a stale `creating` group
    /// snapshot whose members are all finished (by the snapshot step)
    /// becomes `available`, or `error` if one failed; a stale `deleting`
    /// one has its members' removal retried. Returns (finished, pending).
    pub(crate) async fn reconcile_group_snapshots(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<(usize, usize), VolumeError> {
        let (mut done, mut pending) = (0, 0);
        for gs in self.ds.group_snapshot_list_stale(GS_CREATING, cutoff).await? {
            let members = self.ds.group_snapshot_members(&gs.id).await?;
            if members.iter().any(|s| s.status == crate::snapshots::SNAP_CREATING) {
                pending += 1;
                continue;
            }
            let to = if members.iter().all(|s| s.status == SNAP_AVAILABLE) { GS_AVAILABLE } else { GS_ERROR };
            if self.ds.group_snapshot_set_status(&gs.id, &[GS_CREATING], to).await? == Cas::Updated {
                warn!(group_snapshot = %gs.id, status = to, "interrupted group snapshot create finished");
                done += 1;
            }
        }
        for gs in self.ds.group_snapshot_list_stale(GS_DELETING, cutoff).await? {
            self.remove_group_snapshot_members(&gs).await?;
            match self.ds.group_snapshot_get(&gs.id).await {
                Err(DbError::NotFound { .. }) => done += 1,
                _ => pending += 1,
            }
        }
        Ok((done, pending))
    }

    /// Remove every member of a `deleting` group snapshot, then the group
    /// snapshot; a member that cannot go leaves `error_deleting`.
    async fn remove_group_snapshot_members(&self, gs: &GroupSnapshotRow) -> Result<(), VolumeError> {
        for s in self.ds.group_snapshot_members(&gs.id).await? {
            self.ds.snapshot_set_status(&s.id, &[], SNAP_DELETING, None).await?;
            self.snapshot_remove(&s).await?;
        }
        if self.ds.group_snapshot_members(&gs.id).await?.is_empty() {
            self.ds.group_snapshot_mark_deleted(&gs.id).await?;
            info!(group_snapshot = %gs.id, "group snapshot deleted");
        } else {
            warn!(group_snapshot = %gs.id, "a member snapshot could not be removed; group snapshot error_deleting");
            self.ds.group_snapshot_set_status(&gs.id, &[GS_DELETING], GS_ERROR_DELETING).await?;
        }
        Ok(())
    }

    /// `POST /group_snapshots/{id}/action` `reset_status` (admins, 3.19):
    /// any of Cinder's group snapshot statuses; the members are left alone.
    pub async fn group_snapshot_reset_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: &str,
    ) -> Result<(), VolumeError> {
        let gs = self.group_snapshot_get(ctx, id).await?;
        check_type_admin(ctx, "group:reset_group_snapshot_status")?;
        if !GROUP_SNAPSHOT_STATUSES.contains(&status) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Group snapshot status: {status} is invalid, valid statuses are: {GROUP_SNAPSHOT_STATUSES:?}."
            )));
        }
        self.ds.group_snapshot_set_status(&gs.id, &[], status).await?;
        info!(group_snapshot = %gs.id, from = %gs.status, to = status, by = %ctx.user_id, "group snapshot status reset");
        Ok(())
    }

    /// `create-from-src` with `group_snapshot_id`: a group of the snapshot's
    /// group type and its group's volume types, with a volume from each
    /// member snapshot. The group snapshot must be `available` and not
    /// empty (Cinder's 400s).
    pub async fn group_create_from_group_snapshot(
        self: &Arc<Self>,
        ctx: &AuthContext,
        group_snapshot_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<VolumeGroupRow, VolumeError> {
        check_write(ctx, "group:create")?;
        check_text("name", name.as_deref())?;
        check_text("description", description.as_deref())?;
        let gs = self.group_snapshot_get(ctx, group_snapshot_id).await?;
        if gs.status != GS_AVAILABLE {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group snapshot: Group snapshot {} status must be available, but current status is: {}.",
                gs.id, gs.status
            )));
        }
        let snaps = self.ds.group_snapshot_members(&gs.id).await?;
        if snaps.is_empty() {
            return Err(VolumeError::BadRequest(
                "Invalid group: Group snapshot is empty. No group will be created.".into(),
            ));
        }
        let src = self.ds.volume_group_get(&gs.group_id).await?;
        let mut types = src.volume_types();
        for t in snaps.iter().filter_map(|s| s.volume_type_id.clone()) {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        let g = self
            .record_group(
                ctx,
                gs.group_type_id.clone(),
                types,
                name,
                description,
                src.availability_zone,
                (None, Some(gs.id.clone())),
            )
            .await?;
        let reqs = snaps
            .iter()
            .map(|s| NewVolume {
                size: s.size_gb,
                snapshot_id: Some(s.id.clone()),
                volume_type: s.volume_type_id.clone(),
                group_id: Some(g.id.clone()),
                ..NewVolume::default()
            })
            .collect();
        self.fill_new_group(ctx, g, reqs).await
    }

    /// `create-from-src` with `source_group_id`: a group of the source's
    /// type and volume types with a clone of each of its volumes (each
    /// `available` or `in-use`); an empty source is refused (Cinder's 400).
    pub(crate) async fn group_from_source_group(
        self: &Arc<Self>,
        ctx: &AuthContext,
        source_group_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<VolumeGroupRow, VolumeError> {
        check_write(ctx, "group:create")?;
        check_text("name", name.as_deref())?;
        check_text("description", description.as_deref())?;
        let src = self.group_get(ctx, source_group_id).await?;
        let mut vols = Vec::new();
        for vid in self.ds.volume_group_members(&src.id).await? {
            let v = self.ds.volume_get(&vid).await?;
            crate::clones::check_source(&v, v.size_gb)?;
            vols.push(v);
        }
        if vols.is_empty() {
            return Err(VolumeError::BadRequest(
                "Invalid group: Source Group is empty. No group will be created.".into(),
            ));
        }
        let types = src.volume_types();
        let g = self
            .record_group(
                ctx,
                src.group_type_id.clone(),
                types,
                name,
                description,
                src.availability_zone.clone(),
                (Some(src.id.clone()), None),
            )
            .await?;
        let reqs = vols
            .iter()
            .map(|v| NewVolume {
                size: v.size_gb,
                source_volid: Some(v.id.to_string()),
                volume_type: v.volume_type_id.clone(),
                group_id: Some(g.id.clone()),
                ..NewVolume::default()
            })
            .collect();
        self.fill_new_group(ctx, g, reqs).await
    }

    /// Record each volume of a group built from a source (quota counted);
    /// any refusal removes what was recorded and the group. The builds
    /// then run, waited for at most `create_answer_within` together.
    async fn fill_new_group(
        self: &Arc<Self>,
        ctx: &AuthContext,
        g: VolumeGroupRow,
        reqs: Vec<NewVolume>,
    ) -> Result<VolumeGroupRow, VolumeError> {
        let mut recorded: Vec<VolumeRow> = Vec::new();
        for req in reqs {
            match self.record_create(ctx, req).await {
                Ok(v) => recorded.push(v),
                Err(e) => {
                    for v in &recorded {
                        self.ds.volume_set_status(&v.id, &[VolumeStatus::Creating], VolumeStatus::Error).await?;
                        let v = self.ds.volume_get(&v.id).await?;
                        self.delete_in_group(ctx, &v, false).await?;
                        self.ds.volume_set_group(&v.id, None, Some(&g.id)).await.ok();
                    }
                    if let Err(de) = self.ds.volume_group_delete(&g.id).await {
                        warn!(group = %g.id, error = %de, "could not remove a group whose volumes were refused");
                    }
                    return Err(e);
                }
            }
        }
        info!(group = %g.id, volumes = recorded.len(), "group from source recorded");
        let me = self.clone();
        let build = tokio::spawn(async move {
            for v in &recorded {
                if let Err(e) = me.build(v, Build::First).await {
                    warn!(volume = %v.id, error = %e, "volume build failed; the reconciler retries it");
                }
            }
        });
        let _ = tokio::time::timeout(self.cfg.create_answer_within, build).await;
        Ok(self.ds.volume_group_get(&g.id).await?)
    }
}
