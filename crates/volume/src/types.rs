//! Volume types (Cinder's `/types`): the default type, private types shared
//! with projects, extra specs, and the type a volume is created with.
//!
//! Reads follow Cinder's visibility rule (admins see every type; others see
//! public types and private ones shared with their project; any other is
//! 404, like a missing one); writes are admin only (Cinder's `RULE_ADMIN_API`).

use crate::{Missing, VolumeError, VolumeService};
use stratus_api::volume::types::{CreateVolumeType, UpdateVolumeType, visible_specs};
use stratus_auth::AuthContext;
use stratus_db::{DEFAULT_VOLUME_TYPE_ID, DbError, ExtraSpecs, RowKind, VolumeTypeFilter, VolumeTypeRow};
use tracing::info;
use uuid::Uuid;

/// `GET /types/default` names the default type with this path segment.
pub const DEFAULT_TYPE_ALIAS: &str = "default";

/// Admin-only Block Storage calls (Cinder's `RULE_ADMIN_API` policies: types,
/// quotas, services and hosts); the
/// HTTP layer checks this before it reads a body, so a 403 never hides
/// behind a 400 about the body.
pub fn check_type_admin(ctx: &AuthContext, policy: &str) -> Result<(), VolumeError> {
    if ctx.is_admin() { Ok(()) } else { Err(VolumeError::Forbidden { action: policy.to_string() }) }
}

/// A type missing, or hidden from the caller, by id (Cinder's `VolumeTypeNotFound`).
fn type_not_found(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::VolumeType, id)
}

impl VolumeService {
    /// What the caller may see of types: `None` for admins.
    fn type_scope(ctx: &AuthContext) -> Option<&str> {
        if ctx.is_admin() { None } else { Some(ctx.project_id.as_str()) }
    }

    /// A type the caller may see, by id (or `default`: the project's
    /// default type, else the global one, as Cinder's `show_default`); 404
    /// otherwise.
    pub async fn type_get(&self, ctx: &AuthContext, id: &str) -> Result<VolumeTypeRow, VolumeError> {
        if id == DEFAULT_TYPE_ALIAS {
            let default = self.default_type_for(&ctx.project_id).await?;
            return match self.ds.volume_type_get(&default, None).await {
                Ok(t) => Ok(t),
                Err(DbError::NotFound { .. }) => Err(type_not_found(&default)),
                Err(e) => Err(e.into()),
            };
        }
        match self.ds.volume_type_get(id, Self::type_scope(ctx)).await {
            Ok(t) => Ok(t),
            Err(DbError::NotFound { .. }) => Err(type_not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// A type by id or name (Cinder's `get_by_name_or_id`): a UUID-like
    /// value is tried as an id first, then as a name; `visible_to` limits
    /// it to what a project may use (`None`: any type).
    pub(crate) async fn type_find(
        &self,
        identity: &str,
        visible_to: Option<&str>,
    ) -> Result<VolumeTypeRow, VolumeError> {
        let uuid_like = Uuid::parse_str(identity).is_ok();
        if uuid_like {
            match self.ds.volume_type_get(identity, visible_to).await {
                Ok(t) => return Ok(t),
                Err(DbError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.ds.volume_type_get_by_name(identity, visible_to).await {
            Ok(t) => Ok(t),
            Err(DbError::NotFound { .. }) if uuid_like => Err(type_not_found(identity)),
            Err(DbError::NotFound { .. }) => Err(VolumeError::not_found(Missing::VolumeTypeName, identity)),
            Err(e) => Err(e.into()),
        }
    }

    /// Would the scheduler place a volume of this type (name or id, any
    /// type: admins ask) on the backend's pool? Cinder's `get_pools`
    /// `volume_type` filter (3.35); an unknown type is 404.
    pub async fn pool_takes_type(&self, identity: &str) -> Result<bool, VolumeError> {
        let t = self.type_find(identity, None).await?;
        self.type_fits_backend(&t.id).await
    }

    /// The type a new volume gets: the requested one (name or id) if the
    /// caller may use it, else Cinder's 404; the project's default type
    /// (else the global default) when absent.
    pub(crate) async fn type_for_create(
        &self,
        ctx: &AuthContext,
        requested: Option<&str>,
    ) -> Result<String, VolumeError> {
        match requested {
            // Cinder 3.62: the project's default type before the global one.
            None | Some("") => self.default_type_for(&ctx.project_id).await,
            Some(t) => Ok(self.type_find(t, Self::type_scope(ctx)).await?.id),
        }
    }

    /// Types the caller may list, newest first, with their extra specs.
    /// `is_public` is Cinder's query value (admins only: absent means public
    /// ones and those shared with the admin's project, `none` means all).
    pub async fn type_list(
        &self,
        ctx: &AuthContext,
        is_public: Option<&str>,
    ) -> Result<Vec<(VolumeTypeRow, ExtraSpecs)>, VolumeError> {
        let is_public = if ctx.is_admin() {
            match is_public {
                None => Some(true),
                Some(v) if v.eq_ignore_ascii_case("none") => None,
                Some(v) => Some(
                    parse_strict_bool(v)
                        .ok_or_else(|| VolumeError::BadRequest(format!("Invalid is_public filter [{v}]")))?,
                ),
            }
        } else {
            Some(true)
        };
        let f = VolumeTypeFilter {
            visible_to: Self::type_scope(ctx).map(str::to_string),
            is_public,
            project_id: ctx.project_id.clone(),
        };
        let types = self.ds.volume_type_list(&f).await?;
        let mut specs = self.ds.volume_type_extra_specs_all().await?;
        Ok(types
            .into_iter()
            .map(|t| {
                let s = specs.remove(&t.id).unwrap_or_default();
                (t, s)
            })
            .collect())
    }

    /// One type the caller may see with all its extra specs (views filter them).
    pub async fn type_show(&self, ctx: &AuthContext, id: &str) -> Result<(VolumeTypeRow, ExtraSpecs), VolumeError> {
        let t = self.type_get(ctx, id).await?;
        let specs = self.ds.volume_type_extra_specs(&t.id).await?;
        Ok((t, specs))
    }

    /// Create a type (admins): a name taken is 409 with Cinder's message.
    pub async fn type_create(
        &self,
        ctx: &AuthContext,
        req: CreateVolumeType,
    ) -> Result<(VolumeTypeRow, ExtraSpecs), VolumeError> {
        check_type_admin(ctx, "volume_extension:type_create")?;
        let row = VolumeTypeRow {
            id: Uuid::new_v4().to_string(),
            name: req.name,
            description: req.description,
            is_public: req.is_public,
        };
        let t = self.ds.volume_type_create(&row, &req.extra_specs).await?;
        info!(volume_type = %t.id, name = %t.name, public = t.is_public, by = %ctx.user_id, "volume type created");
        Ok((t, req.extra_specs))
    }

    /// Change a type's name, description or visibility (admins).
    pub async fn type_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        u: UpdateVolumeType,
    ) -> Result<(VolumeTypeRow, ExtraSpecs), VolumeError> {
        check_type_admin(ctx, "volume_extension:type_update")?;
        let t = match self.ds.volume_type_update(id, u.name.as_deref(), u.description.as_deref(), u.is_public).await {
            Ok(t) => t,
            Err(DbError::NotFound { .. }) => return Err(type_not_found(id)),
            Err(e) => return Err(e.into()),
        };
        let specs = self.ds.volume_type_extra_specs(&t.id).await?;
        Ok((t, specs))
    }

    /// Delete a type (admins): not the default type, and not while a live
    /// volume uses it (400s with Cinder's messages).
    pub async fn type_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        check_type_admin(ctx, "volume_extension:type_delete")?;
        let t = self.type_get(ctx, id).await?;
        // Cinder: neither the global default nor a project's default goes.
        if t.id == DEFAULT_VOLUME_TYPE_ID || !self.ds.project_default_type_users(&t.id).await?.is_empty() {
            return Err(VolumeError::BadRequest(format!(
                "The volume type {} is a default volume type and cannot be deleted.",
                t.id
            )));
        }
        match self.ds.volume_type_delete(&t.id).await {
            Ok(()) => {
                info!(volume_type = %t.id, by = %ctx.user_id, "volume type deleted");
                Ok(())
            }
            Err(DbError::Conflict { kind: RowKind::VolumeType, .. }) => {
                Err(VolumeError::BadRequest("Target volume type is still in use.".into()))
            }
            Err(DbError::NotFound { .. }) => Err(type_not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// A type's extra specs as the caller may see them (non-admins only the
    /// user-visible keys).
    pub async fn type_extra_specs(&self, ctx: &AuthContext, id: &str) -> Result<ExtraSpecs, VolumeError> {
        let t = self.type_get(ctx, id).await?;
        Ok(visible_specs(&self.ds.volume_type_extra_specs(&t.id).await?, ctx.is_admin()))
    }

    /// One extra spec the caller may see (404 with Cinder's message otherwise).
    pub async fn type_extra_spec(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<Option<String>, VolumeError> {
        let mut specs = self.type_extra_specs(ctx, id).await?;
        specs
            .remove(key)
            .ok_or_else(|| VolumeError::not_found(Missing::VolumeTypeExtraSpec { volume_type: id.to_string() }, key))
    }

    /// A type an admin may change the extra specs of (checked before the
    /// body is read): 403 for others, 404 if missing, and 400 while a
    /// volume uses it (Cinder refuses to change specs under a volume).
    pub async fn type_for_spec_change(&self, ctx: &AuthContext, id: &str, policy: &str) -> Result<String, VolumeError> {
        check_type_admin(ctx, policy)?;
        let t = self.type_get(ctx, id).await?;
        if self.ds.volume_type_in_use(&t.id).await? {
            return Err(VolumeError::BadRequest("Volume Type is currently in use.".into()));
        }
        Ok(t.id)
    }

    /// Add or overwrite extra specs (admins).
    pub async fn type_extra_specs_set(
        &self,
        ctx: &AuthContext,
        id: &str,
        specs: &ExtraSpecs,
    ) -> Result<(), VolumeError> {
        let id = self.type_for_spec_change(ctx, id, "volume_extension:types_extra_specs:create").await?;
        match self.ds.volume_type_extra_specs_set(&id, specs).await {
            Ok(()) => Ok(()),
            Err(DbError::NotFound { .. }) => Err(type_not_found(&id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove one extra spec (admins; 404 with Cinder's message if absent).
    pub async fn type_extra_spec_delete(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), VolumeError> {
        let id = self.type_for_spec_change(ctx, id, "volume_extension:types_extra_specs:delete").await?;
        match self.ds.volume_type_extra_spec_delete(&id, key).await {
            Ok(()) => Ok(()),
            Err(DbError::NotFound { .. }) => {
                Err(VolumeError::not_found(Missing::VolumeTypeExtraSpec { volume_type: id.clone() }, key))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The projects a private type is shared with (admins); a public type
    /// has no list (404, Cinder's message).
    pub async fn type_access_list(&self, ctx: &AuthContext, id: &str) -> Result<Vec<String>, VolumeError> {
        check_type_admin(ctx, "volume_extension:volume_type_access:get_all_for_type")?;
        let t = self.type_get(ctx, id).await?;
        if t.is_public {
            return Err(VolumeError::not_found(Missing::PublicTypeAccessList, &t.id));
        }
        Ok(self.ds.volume_type_projects(&t.id).await?)
    }

    /// A private type an admin may change the access list of: 403 for
    /// others, 404 if missing, 400 for a public type (Cinder's message).
    pub async fn type_for_access_change(
        &self,
        ctx: &AuthContext,
        id: &str,
        policy: &str,
    ) -> Result<String, VolumeError> {
        check_type_admin(ctx, policy)?;
        let t = self.type_get(ctx, id).await?;
        if t.is_public {
            return Err(VolumeError::BadRequest(
                "Invalid volume type: Type access modification is not applicable to public volume type.".into(),
            ));
        }
        Ok(t.id)
    }

    /// Share a private type with a project (admins; 409 if it already is).
    pub async fn type_access_add(&self, ctx: &AuthContext, id: &str, project: &str) -> Result<(), VolumeError> {
        let id = self.type_for_access_change(ctx, id, "volume_extension:volume_type_access:addProjectAccess").await?;
        match self.ds.volume_type_access_add(&id, project).await {
            Ok(()) => {
                info!(volume_type = %id, project, by = %ctx.user_id, "volume type shared");
                Ok(())
            }
            Err(DbError::Conflict { .. }) => Err(VolumeError::Conflict(format!(
                "Volume type access for {id} / {project} combination already exists."
            ))),
            Err(DbError::NotFound { .. }) => Err(type_not_found(&id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Stop sharing a private type with a project (admins; 404 if it was not).
    pub async fn type_access_remove(&self, ctx: &AuthContext, id: &str, project: &str) -> Result<(), VolumeError> {
        let id =
            self.type_for_access_change(ctx, id, "volume_extension:volume_type_access:removeProjectAccess").await?;
        match self.ds.volume_type_access_remove(&id, project).await {
            Ok(()) => {
                info!(volume_type = %id, project, by = %ctx.user_id, "volume type no longer shared");
                Ok(())
            }
            Err(DbError::NotFound { .. }) => {
                Err(VolumeError::not_found(Missing::VolumeTypeAccess { volume_type: id.clone() }, project))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `os-retype`: give a volume another type (by name or id; any type, as
    /// Cinder looks it up elevated). With one backend no data moves: only
    /// the type changes. The volume must be `available` or `in-use` and the
    /// type must differ (400, Cinder's message).
    pub async fn retype(&self, ctx: &AuthContext, id: &str, new_type: &str) -> Result<(), VolumeError> {
        let v = self.get_writable(ctx, id, "retype").await?;
        let t = self.type_find(new_type, None).await?;
        self.refuse_encrypted(&t.id, &t.name).await?;
        if !self.ds.volume_retype(&v.id, &t.id).await? {
            return Err(VolumeError::BadRequest(RETYPE_REFUSED.into()));
        }
        info!(volume = id, volume_type = %t.id, by = %ctx.user_id, "volume retyped");
        Ok(())
    }
}

/// Cinder's refusal of a retype (wrong status, or the same type).
pub const RETYPE_REFUSED: &str = "Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.";

/// `oslo`'s strict boolean words, for Cinder's `is_public` filter.
fn parse_strict_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}
