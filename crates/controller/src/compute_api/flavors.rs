//! Flavors: Nova's rules for who sees which (public flavors, and private
//! ones shared with the caller's project; admins see all), the list's
//! filters, sort and pages, create and delete (admin), the access list of a
//! private flavor (admin), and extra specs (read by whoever sees the flavor,
//! written by admins). Policy and existence are checked before a body's
//! verdict, so a 403 or 404 never hides behind a 400.

use super::{ComputeApi, ComputeError, Resource};
use std::collections::BTreeMap;
use stratus_api::Microversion;
use stratus_api::compute::{FlavorAccessChange, FlavorCreate, FlavorListQuery, MAX_FLAVOR_PAGE, parse_is_public};
use stratus_auth::AuthContext;
use stratus_db::{DbError, FlavorFilter, FlavorRow, RowKind};

/// A page of a flavor list and the page size it was cut to (for `flavors_links`).
#[derive(Clone, Debug)]
pub struct FlavorPage {
    /// The flavors, in the asked order.
    pub flavors: Vec<FlavorRow>,
    /// The page size: the `limit` asked for, or the largest page.
    pub limit: i64,
}

/// Nova's 403 for a rule only admins pass.
fn admin_only(ctx: &AuthContext, rule: &str) -> Result<(), ComputeError> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(format!("Policy doesn't allow os_compute_api:{rule} to be performed.")))
    }
}

fn flavor_not_found(id: &str) -> ComputeError {
    ComputeError::NotFound { kind: Resource::Flavor, id: id.to_string() }
}

impl ComputeApi {
    /// Whose view of the flavors a caller has: `None` for admins (all),
    /// else the caller's project (public flavors and those shared with it).
    fn flavor_viewer(ctx: &AuthContext) -> Option<&str> {
        (!ctx.is_admin()).then_some(ctx.project_id.as_str())
    }

    /// A flavor the caller may see; any other is Nova's 404.
    async fn visible_flavor(&self, ctx: &AuthContext, id: &str) -> Result<FlavorRow, ComputeError> {
        match self.ds.flavor_get(id, Self::flavor_viewer(ctx)).await {
            Err(DbError::NotFound { .. }) => Err(flavor_not_found(id)),
            other => Ok(other?),
        }
    }

    /// `GET /flavors` and `/flavors/detail`: the flavors the caller may see,
    /// filtered, sorted and paged as Nova does.
    pub async fn flavor_list(&self, ctx: &AuthContext, q: FlavorListQuery) -> Result<FlavorPage, ComputeError> {
        // Only admins choose public, private or both; others get what they may see, enabled only.
        let is_public = if ctx.is_admin() {
            parse_is_public(q.is_public.as_deref()).map_err(|e| ComputeError::BadRequest(e.to_string()))?
        } else {
            Some(true)
        };
        if let Some(m) = &q.marker
            && let Err(DbError::NotFound { .. }) = self.ds.flavor_get(m, Self::flavor_viewer(ctx)).await
        {
            return Err(ComputeError::BadRequest(format!("marker [{m}] not found")));
        }
        let limit = q.limit.unwrap_or(MAX_FLAVOR_PAGE).min(MAX_FLAVOR_PAGE);
        let f = FlavorFilter {
            visible_to: Self::flavor_viewer(ctx).map(str::to_string),
            is_public,
            project_id: ctx.project_id.clone(),
            enabled_only: !ctx.is_admin(),
            min_ram_mb: q.min_ram,
            min_disk_gb: q.min_disk,
            sort_key: q.sort_key,
            descending: q.descending,
            // A name filter (2.102) is applied here, so the page is cut after it.
            limit: if q.name.is_some() { None } else { Some(limit) },
            marker: q.marker,
        };
        let mut flavors = self.ds.flavor_list(&f).await?;
        if let Some(pattern) = &q.name {
            flavors.retain(|fl| stratus_api::compute::flavors::flavor_name_matches(pattern, &fl.name));
            flavors.truncate(usize::try_from(limit).unwrap_or(0));
        }
        Ok(FlavorPage { flavors, limit })
    }

    /// `GET /flavors/{id}`: a flavor the caller may see (another project's
    /// private flavor is a 404).
    pub async fn flavor_get(&self, ctx: &AuthContext, id: &str) -> Result<FlavorRow, ComputeError> {
        self.visible_flavor(ctx, id).await
    }

    /// `POST /flavors` (admin): `req` is the checked body or why it was refused.
    /// A private flavor is not shared with the creator's project (Nova bug 1209101 kept).
    pub async fn flavor_create(
        &self,
        ctx: &AuthContext,
        req: Result<FlavorCreate, String>,
    ) -> Result<FlavorRow, ComputeError> {
        admin_only(ctx, "os-flavor-manage:create")?;
        let req = req.map_err(ComputeError::BadRequest)?;
        let row = FlavorRow {
            id: req.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: req.name,
            vcpus: req.vcpus,
            ram_mb: req.ram_mb,
            disk_gb: req.disk_gb,
            ephemeral_gb: req.ephemeral_gb,
            swap_mb: req.swap_mb,
            rxtx_factor: req.rxtx_factor,
            is_public: req.is_public,
            disabled: false,
            description: req.description,
        };
        match self.ds.flavor_create(&row).await {
            Err(DbError::Conflict { detail, .. }) => Err(ComputeError::Conflict(detail)),
            other => other.map(|()| row).map_err(Into::into),
        }
    }

    /// `PUT /flavors/{id}` (2.55, admin): set or clear the description;
    /// `description` is the checked value or why it was refused.
    pub async fn flavor_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        description: Result<Option<String>, String>,
    ) -> Result<FlavorRow, ComputeError> {
        admin_only(ctx, "os-flavor-manage:update")?;
        let description = description.map_err(ComputeError::BadRequest)?;
        match self.ds.flavor_set_description(id, description.as_deref()).await {
            Err(DbError::NotFound { .. }) => return Err(flavor_not_found(id)),
            other => other?,
        }
        Ok(self.ds.flavor_get(id, None).await?)
    }

    /// `DELETE /flavors/{id}` (admin): the flavor, its extra specs and its
    /// access list go; servers built from it keep their own copy of its sizes.
    pub async fn flavor_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), ComputeError> {
        admin_only(ctx, "os-flavor-manage:delete")?;
        match self.ds.flavor_delete(id).await {
            Err(DbError::NotFound { .. }) => Err(flavor_not_found(id)),
            other => Ok(other?),
        }
    }

    /// `GET /flavors/{id}/os-flavor-access` (admin): the projects a private
    /// flavor is shared with; a public flavor has no list (404).
    pub async fn flavor_access_list(&self, ctx: &AuthContext, id: &str) -> Result<Vec<String>, ComputeError> {
        admin_only(ctx, "os-flavor-access")?;
        let f = self.visible_flavor(ctx, id).await?;
        if f.is_public {
            return Err(ComputeError::FlavorAccessPublic);
        }
        Ok(self.ds.flavor_projects(&f.id).await?)
    }

    /// `addTenantAccess` / `removeTenantAccess` (admin); returns the access
    /// list as it now is. The project must exist; from 2.7 a public flavor
    /// refuses new access (409).
    pub async fn flavor_access_change(
        &self,
        ctx: &AuthContext,
        id: &str,
        change: Result<FlavorAccessChange, String>,
        mv: Microversion,
    ) -> Result<Vec<String>, ComputeError> {
        let rule = match &change {
            Ok(FlavorAccessChange::Remove(_)) => "os-flavor-access:remove_tenant_access",
            _ => "os-flavor-access:add_tenant_access",
        };
        admin_only(ctx, rule)?;
        let f = self.visible_flavor(ctx, id).await?;
        let change = change.map_err(ComputeError::BadRequest)?;
        let project = match &change {
            FlavorAccessChange::Add(p) | FlavorAccessChange::Remove(p) => p.clone(),
        };
        if !self.project_known(&project).await? {
            return Err(ComputeError::BadRequest(format!("Project ID {project} is not a valid project.")));
        }
        let access_error = |e: DbError| match e {
            DbError::NotFound { kind: RowKind::Flavor, .. } => flavor_not_found(id),
            DbError::NotFound { .. } => {
                ComputeError::FlavorAccessNotFound { flavor_id: f.id.clone(), project_id: project.clone() }
            }
            DbError::Conflict { .. } => ComputeError::Conflict(format!(
                "Flavor access already exists for flavor {} and project {project} combination.",
                f.id
            )),
            e => e.into(),
        };
        match change {
            FlavorAccessChange::Add(_) => {
                if f.is_public && mv.at_least(7) {
                    return Err(ComputeError::Conflict("Can not add access to a public flavor.".into()));
                }
                self.ds.flavor_access_add(&f.id, &project).await.map_err(access_error)?;
            }
            FlavorAccessChange::Remove(_) => {
                self.ds.flavor_access_remove(&f.id, &project).await.map_err(access_error)?;
            }
        }
        Ok(self.ds.flavor_projects(&f.id).await?)
    }

    /// `GET /flavors/{id}/os-extra_specs`: of a flavor the caller may see.
    pub async fn flavor_extra_specs(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<BTreeMap<String, String>, ComputeError> {
        let f = self.visible_flavor(ctx, id).await?;
        Ok(self.ds.flavor_extra_specs(&f.id).await?)
    }

    /// `GET /flavors/{id}/os-extra_specs/{key}`: one value, 404 if unset.
    pub async fn flavor_extra_spec(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<String, ComputeError> {
        let mut specs = self.flavor_extra_specs(ctx, id).await?;
        specs
            .remove(key)
            .ok_or_else(|| ComputeError::FlavorExtraSpecNotFound { flavor_id: id.to_string(), key: key.to_string() })
    }

    /// `POST /flavors/{id}/os-extra_specs` (admin): add or overwrite
    /// `specs` (the checked body or why it was refused), keep the others;
    /// returns what was set.
    pub async fn flavor_extra_specs_create(
        &self,
        ctx: &AuthContext,
        id: &str,
        specs: Result<BTreeMap<String, String>, String>,
    ) -> Result<BTreeMap<String, String>, ComputeError> {
        self.set_extra_specs(ctx, id, specs, "os-flavor-extra-specs:create").await
    }

    /// `PUT /flavors/{id}/os-extra_specs/{key}` (admin): set one value (the
    /// checked body's or why it was refused); returns it.
    pub async fn flavor_extra_spec_update(
        &self,
        ctx: &AuthContext,
        id: &str,
        key: &str,
        value: Result<String, String>,
    ) -> Result<String, ComputeError> {
        let specs = value.map(|v| BTreeMap::from([(key.to_string(), v)]));
        let mut set = self.set_extra_specs(ctx, id, specs, "os-flavor-extra-specs:update").await?;
        Ok(set.remove(key).unwrap_or_default())
    }

    /// Policy `rule`, the flavor, then the body; then write.
    async fn set_extra_specs(
        &self,
        ctx: &AuthContext,
        id: &str,
        specs: Result<BTreeMap<String, String>, String>,
        rule: &str,
    ) -> Result<BTreeMap<String, String>, ComputeError> {
        admin_only(ctx, rule)?;
        let f = self.visible_flavor(ctx, id).await?;
        let specs = specs.map_err(ComputeError::BadRequest)?;
        match self.ds.flavor_extra_specs_set(&f.id, &specs).await {
            Err(DbError::NotFound { .. }) => Err(flavor_not_found(id)),
            other => other.map(|()| specs).map_err(Into::into),
        }
    }

    /// `DELETE /flavors/{id}/os-extra_specs/{key}` (admin): 404 if unset.
    pub async fn flavor_extra_spec_delete(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<(), ComputeError> {
        admin_only(ctx, "os-flavor-extra-specs:delete")?;
        let f = self.visible_flavor(ctx, id).await?;
        match self.ds.flavor_extra_spec_delete(&f.id, key).await {
            Err(DbError::NotFound { .. }) => {
                Err(ComputeError::FlavorExtraSpecNotFound { flavor_id: id.to_string(), key: key.to_string() })
            }
            other => Ok(other?),
        }
    }
}
