//! Group types and generic volume groups as Cinder does them (3.11, 3.13):
//! admins define group types (with group specs); a project groups its own
//! volumes whose types the group allows. A volume in a group is deleted
//! only with its group (`delete-volumes`), never on its own; each group
//! counts against the project's `groups` quota. Groups are built inline,
//! so a new group is `available` at once.

use crate::{Missing, VolumeError, VolumeService, check_text, check_type_admin, check_write};
use std::collections::BTreeMap;
use stratus_auth::AuthContext;
use stratus_db::{DbError, GroupTypeChange, GroupTypeRow, RowKind, VolumeGroupRow, VolumeRow};
use stratus_types::VolumeStatus;
use tracing::info;

/// Cinder's group statuses (`GroupStatus`): what `reset_status` accepts.
pub const GROUP_STATUSES: &[&str] =
    &["error", "available", "creating", "deleting", "deleted", "updating", "in-use", "error_deleting"];

/// A new group as the API parsed it.
pub use stratus_api::volume::groups::CreateGroup as NewGroup;
/// A group update as the API parsed it.
pub use stratus_api::volume::groups::UpdateGroup as GroupUpdate;

fn group_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::Group, id)
}

fn type_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::GroupType, id)
}

impl VolumeService {
    /// `POST /group_types` (admins): a name already taken is 409.
    pub async fn group_type_create(
        &self,
        ctx: &AuthContext,
        name: &str,
        description: Option<String>,
        is_public: bool,
        specs: BTreeMap<String, String>,
    ) -> Result<GroupTypeRow, VolumeError> {
        check_type_admin(ctx, "group:group_types:create")?;
        check_text("name", Some(name))?;
        check_text("description", description.as_deref())?;
        let row = GroupTypeRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            description,
            is_public,
            group_specs: serde_json::to_string(&specs).unwrap_or_else(|_| "{}".into()),
        };
        let t = self.ds.group_type_create(&row).await?;
        info!(group_type = %t.id, name = %t.name, "group type created");
        Ok(t)
    }

    /// A group type the caller may see, by id (private ones: admins only;
    /// Cinder's 404 otherwise).
    pub async fn group_type_get(&self, ctx: &AuthContext, id: &str) -> Result<GroupTypeRow, VolumeError> {
        let t = match self.ds.group_type_get(id).await {
            Ok(t) => t,
            Err(DbError::NotFound { .. }) => return Err(type_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if !t.is_public && !ctx.is_admin() {
            return Err(type_missing(id));
        }
        Ok(t)
    }

    /// A group type by id or name (group create accepts either).
    async fn group_type_find(&self, ctx: &AuthContext, id_or_name: &str) -> Result<GroupTypeRow, VolumeError> {
        match self.group_type_get(ctx, id_or_name).await {
            Err(VolumeError::NotFound { .. }) => match self.ds.group_type_by_name(id_or_name).await {
                Ok(t) if t.is_public || ctx.is_admin() => Ok(t),
                Ok(_) | Err(DbError::NotFound { .. }) => Err(type_missing(id_or_name)),
                Err(e) => Err(e.into()),
            },
            r => r,
        }
    }

    /// `GET /group_types`: public ones for everyone; admins see private
    /// ones too, or only one kind with `is_public` (`None`: both).
    pub async fn group_type_list(
        &self,
        ctx: &AuthContext,
        is_public: Option<bool>,
    ) -> Result<Vec<GroupTypeRow>, VolumeError> {
        let filter = if ctx.is_admin() { is_public } else { Some(true) };
        Ok(self.ds.group_type_list(filter).await?)
    }

    /// `PUT /group_types/{id}` (admins).
    pub async fn group_type_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        change: GroupTypeChange,
    ) -> Result<GroupTypeRow, VolumeError> {
        check_type_admin(ctx, "group:group_types:update")?;
        check_text("name", change.name.as_deref())?;
        check_text("description", change.description.as_ref().and_then(|d| d.as_deref()))?;
        match self.ds.group_type_update(id, &change).await {
            Err(DbError::NotFound { .. }) => Err(type_missing(id)),
            r => Ok(r?),
        }
    }

    /// `DELETE /group_types/{id}` (admins): refused (400) while a group uses it.
    pub async fn group_type_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        check_type_admin(ctx, "group:group_types:delete")?;
        match self.ds.group_type_delete(id).await {
            Ok(()) => {
                info!(group_type = id, "group type deleted");
                Ok(())
            }
            Err(DbError::NotFound { .. }) => Err(type_missing(id)),
            Err(DbError::Conflict { detail, .. }) => Err(VolumeError::BadRequest(detail)),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /group_types/{id}/group_specs` (admins): merge `specs` in;
    /// answers the type's specs after the merge.
    pub async fn group_specs_merge(
        &self,
        ctx: &AuthContext,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<GroupTypeRow, VolumeError> {
        check_type_admin(ctx, "group:group_types_specs")?;
        let t = self.group_type_get(ctx, id).await?;
        let mut all = t.spec_map();
        all.extend(specs);
        let json = serde_json::to_string(&all).unwrap_or_else(|_| "{}".into());
        Ok(self.ds.group_type_set_specs(id, &json).await?)
    }

    /// `DELETE /group_types/{id}/group_specs/{key}` (admins): 404 for a key
    /// the type lacks.
    pub async fn group_spec_delete(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), VolumeError> {
        check_type_admin(ctx, "group:group_types_specs")?;
        let t = self.group_type_get(ctx, id).await?;
        let mut all = t.spec_map();
        if all.remove(key).is_none() {
            return Err(VolumeError::not_found(Missing::GroupTypeSpec { group_type: id.to_string() }, key));
        }
        let json = serde_json::to_string(&all).unwrap_or_else(|_| "{}".into());
        self.ds.group_type_set_specs(id, &json).await?;
        Ok(())
    }

    /// `POST /groups`: a group of the caller's project, within its `groups`
    /// quota (413); the group type and each volume type must exist (404).
    pub async fn group_create(&self, ctx: &AuthContext, req: NewGroup) -> Result<VolumeGroupRow, VolumeError> {
        check_write(ctx, "group:create")?;
        check_text("name", req.name.as_deref())?;
        check_text("description", req.description.as_deref())?;
        let gt = self.group_type_find(ctx, &req.group_type).await?;
        let mut type_ids = Vec::new();
        for t in &req.volume_types {
            let id = self.type_for_create(ctx, Some(t)).await?;
            if !type_ids.contains(&id) {
                type_ids.push(id);
            }
        }
        let az = self.check_az(req.availability_zone.as_deref())?;
        self.record_group(ctx, gt.id, type_ids, req.name, req.description, az, (None, None)).await
    }

    /// Record a group `available` within the `groups` quota; `source` is
    /// what it was built from (source group, group snapshot), for 3.14's view.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_group(
        &self,
        ctx: &AuthContext,
        group_type_id: String,
        type_ids: Vec<String>,
        name: Option<String>,
        description: Option<String>,
        availability_zone: String,
        source: (Option<String>, Option<String>),
    ) -> Result<VolumeGroupRow, VolumeError> {
        let (source_group_id, group_snapshot_id) = source;
        let row = VolumeGroupRow {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            name,
            description,
            status: "available".into(),
            group_type_id,
            volume_type_ids: serde_json::to_string(&type_ids).unwrap_or_else(|_| "[]".into()),
            availability_zone,
            source_group_id,
            group_snapshot_id,
            created_at: stratus_db::SET_ON_INSERT,
        };
        let limit = self.volume_limit(&ctx.project_id, "groups").await?;
        let g = self.ds.volume_group_create(&row, limit).await?;
        info!(group = %g.id, project = %g.project_id, "volume group created");
        Ok(g)
    }

    /// `POST /groups/action` `create-from-src` (3.14) from a source group:
    /// a group of its type and volume types holding a clone of each of its
    /// volumes (see the `group_snapshots` module).
    pub async fn group_create_from_src(
        self: &std::sync::Arc<Self>,
        ctx: &AuthContext,
        source_group_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<VolumeGroupRow, VolumeError> {
        self.group_from_source_group(ctx, source_group_id, name, description).await
    }

    /// A group the caller may see (another project's is 404).
    pub async fn group_get(&self, ctx: &AuthContext, id: &str) -> Result<VolumeGroupRow, VolumeError> {
        let g = match self.ds.volume_group_get(id).await {
            Ok(g) => g,
            Err(DbError::NotFound { .. }) => return Err(group_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&g.project_id) {
            return Err(group_missing(id));
        }
        Ok(g)
    }

    /// Groups of the caller's project (`all_projects`: every project's, for
    /// admins; ignored for others, as Cinder does).
    pub async fn group_list(&self, ctx: &AuthContext, all_projects: bool) -> Result<Vec<VolumeGroupRow>, VolumeError> {
        let project = if ctx.is_admin() && all_projects { None } else { Some(ctx.project_id.as_str()) };
        Ok(self.ds.volume_group_list(project).await?)
    }

    /// Ids of the volumes in a group (3.25's `volumes` in the view).
    pub async fn group_volume_ids(&self, id: &str) -> Result<Vec<String>, VolumeError> {
        Ok(self.ds.volume_group_members(id).await?.into_iter().map(|v| v.to_string()).collect())
    }

    /// `PUT /groups/{id}`: rename, describe, add and remove volumes, with
    /// Cinder's 400s (group not `available`/`in-use`; a volume missing, in
    /// another group, of a type the group does not allow, or in a state
    /// that cannot change groups).
    pub async fn group_update(&self, ctx: &AuthContext, id: &str, u: GroupUpdate) -> Result<(), VolumeError> {
        let g = self.group_get(ctx, id).await?;
        check_write(ctx, "group:update")?;
        check_text("name", u.name.as_deref())?;
        check_text("description", u.description.as_deref())?;
        if u.name.is_none() && u.description.is_none() && u.add_volumes.is_empty() && u.remove_volumes.is_empty() {
            return Err(VolumeError::BadRequest(
                "Name, description, add_volumes, and remove_volumes can not be all empty in the request body.".into(),
            ));
        }
        if g.status != "available" && g.status != "in-use" {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group: Group status must be available or in-use, but current status is: {}.",
                g.status
            )));
        }
        let allowed = g.volume_types();
        let mut add: Vec<VolumeRow> = Vec::new();
        for vid in &u.add_volumes {
            let refuse = |why: String| {
                VolumeError::BadRequest(format!("Invalid volume: Cannot add volume {vid} to group {id} because {why}."))
            };
            let v = match self.get_visible(ctx, vid).await {
                Ok(v) if v.project_id == g.project_id => v,
                Ok(_) | Err(VolumeError::NotFound { .. }) => return Err(refuse("volume cannot be found".into())),
                Err(e) => return Err(e),
            };
            if let Some(other) = &v.group_id {
                return Err(refuse(format!("it is already in group {other}")));
            }
            if !v.volume_type_id.as_ref().is_some_and(|t| allowed.contains(t)) {
                let t = v.volume_type.clone().unwrap_or_default();
                return Err(refuse(format!("volume type {t} is not supported by the group")));
            }
            if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) {
                return Err(refuse(format!(
                    "volume is in an invalid state: {}. Valid states are: ('available', 'in-use')",
                    v.status
                )));
            }
            add.push(v);
        }
        let mut remove: Vec<VolumeRow> = Vec::new();
        for vid in &u.remove_volumes {
            let v = match self.get_visible(ctx, vid).await {
                Ok(v) if v.group_id.as_deref() == Some(id) => v,
                Ok(_) | Err(VolumeError::NotFound { .. }) => {
                    return Err(VolumeError::BadRequest(format!(
                        "Invalid volume: Cannot remove volume {vid} from group {id} because it is not in the group."
                    )));
                }
                Err(e) => return Err(e),
            };
            let ok = [VolumeStatus::Available, VolumeStatus::InUse, VolumeStatus::Error, VolumeStatus::ErrorDeleting];
            if !ok.contains(&v.status) {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid volume: Cannot remove volume {vid} from group {id} because volume is in an invalid state: {}. Valid states are: ('available', 'in-use', 'error', 'error_deleting').",
                    v.status
                )));
            }
            remove.push(v);
        }
        if u.name.is_some() || u.description.is_some() {
            self.ds.volume_group_rename(id, u.name.map(Some), u.description.map(Some)).await?;
        }
        let changed = |vid: &stratus_types::VolumeId| {
            VolumeError::BadRequest(format!("Invalid volume: Volume {vid} changed group meanwhile."))
        };
        for v in &remove {
            match self.ds.volume_set_group(&v.id, None, Some(id)).await {
                Err(DbError::Conflict { kind: RowKind::Volume, .. }) => return Err(changed(&v.id)),
                r => r?,
            }
        }
        for v in &add {
            match self.ds.volume_set_group(&v.id, Some(id), None).await {
                Err(DbError::Conflict { kind: RowKind::Volume, .. }) => return Err(changed(&v.id)),
                r => r?,
            }
        }
        info!(group = id, added = add.len(), removed = remove.len(), "volume group updated");
        Ok(())
    }

    /// `POST /groups/{id}/action` `delete`: a group with volumes is
    /// deleted only with `delete-volumes` (Cinder's 400 otherwise), and
    /// then only if none of them is attached; its volumes are deleted
    /// first, then the group.
    pub async fn group_delete(&self, ctx: &AuthContext, id: &str, delete_volumes: bool) -> Result<(), VolumeError> {
        let g = self.group_get(ctx, id).await?;
        check_write(ctx, "group:delete")?;
        let members = self.ds.volume_group_members(id).await?;
        if !delete_volumes && !["available", "error"].contains(&g.status.as_str()) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group: Group status must be available or error, but current status is: {}",
                g.status
            )));
        }
        // Cinder: a group with group snapshots is not deleted (even with its volumes).
        if self.ds.group_snapshot_count_for_group(id).await? > 0 {
            return Err(VolumeError::BadRequest("Invalid group: Group has existing snapshots.".into()));
        }
        if !members.is_empty() && !delete_volumes {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group: Group {id} still contains volumes. The delete-volumes flag is required to delete it."
            )));
        }
        let mut vols = Vec::new();
        for vid in &members {
            let v = self.ds.volume_get(vid).await?;
            if !self.ds.attachment_list_for_volume(vid).await?.is_empty()
                || matches!(v.status, VolumeStatus::InUse | VolumeStatus::Attaching | VolumeStatus::Reserved)
            {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid volume: Volume in group {id} is attached. Need to detach first."
                )));
            }
            vols.push(v);
        }
        for v in &vols {
            self.delete_in_group(ctx, v, false).await?;
            self.ds.volume_set_group(&v.id, None, Some(id)).await.ok();
        }
        match self.ds.volume_group_delete(id).await {
            Ok(()) | Err(DbError::NotFound { .. }) => {}
            Err(DbError::Conflict { detail, .. }) => {
                return Err(VolumeError::BadRequest(format!("Invalid group: {detail}")));
            }
            Err(e) => return Err(e.into()),
        }
        info!(group = id, volumes = vols.len(), "volume group deleted");
        Ok(())
    }

    /// `POST /groups/{id}/action` `reset_status` (admins, 3.20): any of
    /// Cinder's group statuses; the group's volumes are left alone.
    pub async fn group_reset_status(&self, ctx: &AuthContext, id: &str, status: &str) -> Result<(), VolumeError> {
        let g = self.group_get(ctx, id).await?;
        check_type_admin(ctx, "group:reset_status")?;
        if !GROUP_STATUSES.contains(&status) {
            return Err(VolumeError::BadRequest(format!("Invalid input received: Group status {status} not allowed.")));
        }
        self.ds.volume_group_set_status(&g.id, None, status).await?;
        info!(group = id, from = %g.status, to = status, "volume group status reset");
        Ok(())
    }

    /// A group a new volume may join (3.13 `group_id` on volume create):
    /// the caller's, `available`, allowing the volume's type.
    pub(crate) async fn group_for_create(
        &self,
        ctx: &AuthContext,
        group_id: &str,
        volume_type_id: &str,
    ) -> Result<String, VolumeError> {
        let g = self.group_get(ctx, group_id).await?;
        if g.status != "available" {
            return Err(VolumeError::BadRequest(format!(
                "Invalid group: Group {group_id} status must be available, but current status is: {}.",
                g.status
            )));
        }
        if !g.volume_types().iter().any(|t| t == volume_type_id) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Volume type {volume_type_id} is not supported by group {group_id}."
            )));
        }
        Ok(g.id)
    }
}
