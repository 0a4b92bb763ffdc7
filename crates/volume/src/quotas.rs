//! Block Storage quotas as Cinder layers them: a project's own limits over
//! the `default` quota class's over the configured defaults. `volumes`,
//! `gigabytes` and `per_volume_gigabytes` are enforced when a volume is
//! created or extended, `groups` when a group is; `snapshots`, `backups`
//! and `backup_gigabytes` are kept and shown for clients that set them, and
//! cannot be exceeded because this cloud creates none of those. Every volume type
//! adds Cinder's per-type resources `volumes_<type>`, `gigabytes_<type>`
//! and `snapshots_<type>` (unlimited by default); the first two are
//! enforced like their totals, counting the project's volumes of the type.

use crate::{VolumeError, VolumeService};
use std::collections::BTreeMap;
use stratus_auth::AuthContext;
use stratus_db::{DEFAULT_QUOTA_CLASS, VolumeQuotaLayer};
use tracing::info;

/// The resources of a Cinder quota set, in the order views list them.
pub const VOLUME_QUOTA_RESOURCES: [&str; 7] =
    ["volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes", "groups"];

/// The per-type resources each volume type adds (`<kind>_<type name>`).
pub const PER_TYPE_KINDS: [&str; 3] = ["volumes", "gigabytes", "snapshots"];

/// Limits by resource (-1: unlimited).
pub type VolumeLimits = BTreeMap<String, i64>;

/// One resource of a quota set with its usage (Cinder's `?usage=true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUse {
    /// The resource.
    pub resource: String,
    /// Its limit.
    pub limit: i64,
    /// What the project uses now.
    pub in_use: i64,
}

/// The resources of a quota set given the volume types' names, in view
/// order: the fixed ones, then each type's.
fn resources(type_names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = VOLUME_QUOTA_RESOURCES.iter().map(|r| (*r).to_string()).collect();
    for t in type_names {
        out.extend(PER_TYPE_KINDS.iter().map(|k| format!("{k}_{t}")));
    }
    out
}

impl VolumeService {
    /// The configured defaults (Cinder's `quota_*` options), without the
    /// per-type resources (unlimited by default).
    pub fn default_volume_limits(&self) -> VolumeLimits {
        let c = &self.cfg;
        VOLUME_QUOTA_RESOURCES
            .iter()
            .map(|r| {
                let v = match *r {
                    "volumes" => c.quota_volumes,
                    "gigabytes" => c.quota_gigabytes,
                    "backup_gigabytes" => 1000,
                    "per_volume_gigabytes" => -1,
                    _ => 10,
                };
                ((*r).to_string(), v)
            })
            .collect()
    }

    /// Every volume type's name (each adds per-type quota resources).
    async fn type_names(&self) -> Result<Vec<String>, VolumeError> {
        let all = stratus_db::VolumeTypeFilter::default();
        let mut names: Vec<String> = self.ds.volume_type_list(&all).await?.into_iter().map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    /// The resources of a quota set now, in view order.
    pub async fn quota_resources(&self) -> Result<Vec<String>, VolumeError> {
        Ok(resources(&self.type_names().await?))
    }

    /// The limits in force for a project, or a class's own: every resource
    /// of [`Self::quota_resources`] (stored limits of a type since deleted
    /// are left out).
    pub(crate) async fn volume_limits(&self, layer: VolumeQuotaLayer<'_>) -> Result<VolumeLimits, VolumeError> {
        let mut l = self.default_volume_limits();
        let known = self.quota_resources().await?;
        for r in &known {
            l.entry(r.clone()).or_insert(-1);
        }
        for (r, v) in self.ds.volume_quota_rows(layer).await? {
            if known.contains(&r) {
                l.insert(r, v);
            }
        }
        Ok(l)
    }

    /// A project's `volumes_<type>` and `gigabytes_<type>` limits for the
    /// type named `type_name` (-1: unlimited).
    pub(crate) async fn type_limits(&self, project_id: &str, type_name: &str) -> Result<(i64, i64), VolumeError> {
        let l = self.volume_limits(VolumeQuotaLayer::Project(project_id)).await?;
        let get = |k: &str| l.get(&format!("{k}_{type_name}")).copied().unwrap_or(-1);
        Ok((get("volumes"), get("gigabytes")))
    }

    /// What a project uses of each resource (per-type ones counted from
    /// its volumes of that type).
    async fn usage_of(&self, project_id: &str) -> Result<BTreeMap<String, i64>, VolumeError> {
        let usage = self.ds.volume_usage(project_id).await?;
        let mut out =
            BTreeMap::from([("volumes".to_string(), usage.volumes), ("gigabytes".to_string(), usage.gigabytes)]);
        out.insert("groups".to_string(), self.ds.volume_group_count(project_id).await?);
        for (t, n, gb) in self.ds.volume_usage_by_type(project_id).await? {
            out.insert(format!("volumes_{t}"), n);
            out.insert(format!("gigabytes_{t}"), gb);
        }
        // Snapshots: counted, and their sizes in `gigabytes_<type>` as
        // Cinder does (`gigabytes` already has them).
        let snaps = self.ds.snapshot_list(Some(project_id)).await?;
        out.insert("snapshots".to_string(), i64::try_from(snaps.len()).unwrap_or(i64::MAX));
        if !snaps.is_empty() {
            let all = stratus_db::VolumeTypeFilter::default();
            let types = self.ds.volume_type_list(&all).await?;
            for s in &snaps {
                if let Some(t) = types.iter().find(|t| Some(&t.id) == s.volume_type_id.as_ref()) {
                    *out.entry(format!("snapshots_{}", t.name)).or_insert(0) += 1;
                    *out.entry(format!("gigabytes_{}", t.name)).or_insert(0) += s.size_gb;
                }
            }
        }
        Ok(out)
    }

    /// The limit of one resource for a project.
    pub(crate) async fn volume_limit(&self, project_id: &str, resource: &str) -> Result<i64, VolumeError> {
        let l = self.volume_limits(VolumeQuotaLayer::Project(project_id)).await?;
        Ok(l.get(resource).copied().unwrap_or(-1))
    }

    /// Cinder's `per_volume_gigabytes`: no single volume larger (413).
    pub(crate) async fn check_per_volume(&self, project_id: &str, size_gb: i64) -> Result<(), VolumeError> {
        let per = self.volume_limit(project_id, "per_volume_gigabytes").await?;
        if per >= 0 && size_gb > per {
            return Err(VolumeError::QuotaExceeded(format!(
                "Requested volume size {size_gb}G is larger than maximum allowed limit {per}G."
            )));
        }
        Ok(())
    }

    /// `GET /os-quota-sets/{project}`: a project's limits with their usage.
    /// Readers see their own project's; admins any (Cinder's
    /// `volume_extension:quotas:show`).
    pub async fn quota_show(&self, ctx: &AuthContext, project_id: &str) -> Result<Vec<QuotaUse>, VolumeError> {
        if !ctx.can_see(project_id) {
            return Err(VolumeError::Forbidden { action: "volume_extension:quotas:show".into() });
        }
        let limits = self.volume_limits(VolumeQuotaLayer::Project(project_id)).await?;
        let usage = self.usage_of(project_id).await?;
        Ok(self
            .quota_resources()
            .await?
            .into_iter()
            .map(|r| QuotaUse {
                limit: limits.get(&r).copied().unwrap_or(-1),
                in_use: usage.get(&r).copied().unwrap_or(0),
                resource: r,
            })
            .collect())
    }

    /// `GET /os-quota-sets/{project}/defaults`: what a project without its
    /// own limits gets (the `default` class over the configured defaults).
    pub async fn quota_defaults(&self, ctx: &AuthContext, project_id: &str) -> Result<VolumeLimits, VolumeError> {
        if !ctx.can_see(project_id) {
            return Err(VolumeError::Forbidden { action: "volume_extension:quotas:show".into() });
        }
        self.volume_limits(VolumeQuotaLayer::Class(DEFAULT_QUOTA_CLASS)).await
    }

    /// `PUT /os-quota-sets/{project}` (admins): set some limits, all or
    /// none. Unknown resources are 400 (Cinder's "Bad key(s)"), as is a
    /// limit below what the project already uses.
    pub async fn quota_update(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        updates: &[(String, i64)],
    ) -> Result<VolumeLimits, VolumeError> {
        crate::check_type_admin(ctx, "volume_extension:quotas:update")?;
        let sets = checked(updates, &self.quota_resources().await?)?;
        let usage = self.usage_of(project_id).await?;
        for (r, v) in &sets {
            let used = usage.get(*r).copied().unwrap_or(0);
            if *v >= 0 && *v < used {
                return Err(VolumeError::BadRequest(format!(
                    "Invalid input received: Quota limit {v} for {r} must be equal or greater than existing resources. Current usage is {used} and the requested limit is {v}."
                )));
            }
        }
        self.ds.volume_quota_set(VolumeQuotaLayer::Project(project_id), &sets).await?;
        info!(project = project_id, ?sets, by = %ctx.user_id, "volume quotas updated");
        self.volume_limits(VolumeQuotaLayer::Project(project_id)).await
    }

    /// `DELETE /os-quota-sets/{project}` (admins): the project's own limits
    /// go; it sees the defaults again.
    pub async fn quota_delete(&self, ctx: &AuthContext, project_id: &str) -> Result<(), VolumeError> {
        crate::check_type_admin(ctx, "volume_extension:quotas:delete")?;
        self.ds.volume_quota_delete(project_id).await?;
        info!(project = project_id, by = %ctx.user_id, "volume quotas reset to the defaults");
        Ok(())
    }

    /// `GET /os-quota-class-sets/{class}` (admins).
    pub async fn quota_class_show(&self, ctx: &AuthContext, class: &str) -> Result<VolumeLimits, VolumeError> {
        crate::check_type_admin(ctx, "volume_extension:quota_classes")?;
        self.volume_limits(VolumeQuotaLayer::Class(class)).await
    }

    /// `PUT /os-quota-class-sets/{class}` (admins): the `default` class's
    /// limits are every project's defaults.
    pub async fn quota_class_update(
        &self,
        ctx: &AuthContext,
        class: &str,
        updates: &[(String, i64)],
    ) -> Result<VolumeLimits, VolumeError> {
        crate::check_type_admin(ctx, "volume_extension:quota_classes:update")?;
        if class.is_empty() || class.len() > 255 {
            return Err(VolumeError::BadRequest("Invalid input received: quota class name is invalid.".into()));
        }
        let sets = checked(updates, &self.quota_resources().await?)?;
        self.ds.volume_quota_set(VolumeQuotaLayer::Class(class), &sets).await?;
        info!(class, ?sets, by = %ctx.user_id, "volume quota class updated");
        self.volume_limits(VolumeQuotaLayer::Class(class)).await
    }
}

/// Known resources with limits of at least -1, or Cinder's 400.
fn checked<'a>(updates: &'a [(String, i64)], known: &[String]) -> Result<Vec<(&'a str, i64)>, VolumeError> {
    let bad: Vec<&str> = updates.iter().filter(|(r, _)| !known.contains(r)).map(|(r, _)| r.as_str()).collect();
    if !bad.is_empty() {
        return Err(VolumeError::BadRequest(format!("Bad key(s) in quota set: {}", bad.join(", "))));
    }
    let mut out = Vec::new();
    for (r, v) in updates {
        if *v < -1 {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Quota limit for {r} must be -1 or greater, got {v}."
            )));
        }
        out.push((r.as_str(), *v));
    }
    Ok(out)
}
