//! Quota sets and quota classes (`os-quota-sets`, `os-quota-class-sets`)
//! with Nova's semantics: a project's limit of a resource is its override,
//! else the `default` class's, else the configured default; a user's limit
//! inside a project stands over the project's. An update never sets a
//! limit below what is already used unless the admin forces it. Policy is
//! OpenStack's secure-RBAC default: a project's readers (and admins) read
//! its set, anyone reads the defaults, admins change sets and classes.

use super::{ComputeApi, ComputeError};
use std::collections::BTreeMap;
use stratus_api::compute::QuotaUpdate;
use stratus_auth::AuthContext;
use stratus_db::{QuotaLimits, QuotaUsage};

/// A quota set with what is counted against it (`GET .../detail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaDetail {
    /// The limits that apply.
    pub limits: QuotaLimits,
    /// Usage per resource name (a resource absent here uses nothing).
    pub in_use: BTreeMap<&'static str, i64>,
}

/// Nova's refusal of a policy, naming the rule.
fn denied(rule: &str) -> ComputeError {
    ComputeError::Forbidden(format!("Policy doesn't allow os_compute_api:{rule} to be performed."))
}

/// `os-quota-sets:show`/`detail` are PROJECT_READER_OR_ADMIN on the project
/// in the URL: any role on it will do; another project's set is a 403.
fn require_reader(ctx: &AuthContext, project_id: &str, rule: &str) -> Result<(), ComputeError> {
    if ctx.can_see(project_id) { Ok(()) } else { Err(denied(rule)) }
}

/// Usage per resource as the quota-set views show it.
fn in_use(u: &QuotaUsage) -> BTreeMap<&'static str, i64> {
    // Nova counts instances, cores and ram from the servers; server_groups
    // will be counted here once server groups exist. key_pairs (and
    // server_group_members) stay 0: Nova never counts those per-user
    // resources for quota sets, even where it has key pairs. Everything
    // else is a limit without usage (metadata items, injected files) or a
    // legacy network quota.
    BTreeMap::from([("instances", u.instances), ("cores", u.cores), ("ram", u.ram)])
}

/// Nova's -1 is unlimited: larger than every limit.
fn unlimited_as_max(v: i64) -> i64 {
    if v < 0 { i64::MAX } else { v }
}

impl ComputeApi {
    /// `GET /os-quota-sets/{project_id}` (with `?user_id=`, that user's
    /// limits in the project). The project is not looked up: an unknown one
    /// shows the defaults, as Nova.
    pub async fn quota_set_show(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<QuotaLimits, ComputeError> {
        require_reader(ctx, project_id, "os-quota-sets:show")?;
        self.limits_of(project_id, user_id).await
    }

    /// `GET /os-quota-sets/{project_id}/detail`: the limits with what the
    /// project (or the user in it) uses.
    pub async fn quota_set_detail(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<QuotaDetail, ComputeError> {
        require_reader(ctx, project_id, "os-quota-sets:detail")?;
        let limits = self.limits_of(project_id, user_id).await?;
        let usage = self.usage_of(project_id, user_id).await?;
        Ok(QuotaDetail { limits, in_use: in_use(&usage) })
    }

    /// `GET /os-quota-sets/{project_id}/defaults`: what a project without
    /// overrides gets (any caller, any project id, as Nova's RULE_ANY).
    pub async fn quota_set_defaults(&self, _ctx: &AuthContext) -> Result<QuotaLimits, ComputeError> {
        Ok(self.ds.quota_default_limits(self.cfg.default_quota).await?)
    }

    /// `PUT /os-quota-sets/{project_id}` (admin): store the body's limits
    /// for the project, or for `user_id` in it, and return the limits that
    /// now apply. `body` is the parsed body or why it was refused (policy
    /// is answered first). Without `force`, a project limit may not go
    /// below its usage nor below what its users were given, and a user's
    /// may not go below the user's usage nor above what the project has
    /// left for it; each refusal is Nova's 400.
    pub async fn quota_set_update(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        user_id: Option<&str>,
        body: Result<QuotaUpdate, String>,
    ) -> Result<QuotaLimits, ComputeError> {
        if !ctx.is_admin() {
            return Err(denied("os-quota-sets:update"));
        }
        let update = body.map_err(ComputeError::BadRequest)?;
        if !update.force {
            let used = in_use(&self.usage_of(project_id, user_id).await?);
            let project = self.quota_limits(project_id).await?;
            let given = self.ds.quota_user_limit_sums(project_id, user_id).await?;
            for &(resource, limit) in &update.limits {
                let in_use = used.get(resource).copied().unwrap_or(0);
                let project_limit = project.get(resource).unwrap_or(-1);
                let given = given.get(resource).copied().unwrap_or(0);
                let (minimum, maximum) = match user_id {
                    None if project_limit < 0 => (in_use, -1),
                    None => (in_use.max(given), -1),
                    Some(_) if project_limit < 0 => (in_use, -1),
                    Some(_) => (in_use, project_limit.saturating_sub(given).max(0)),
                };
                check_limit(resource, limit, minimum, maximum)?;
            }
        }
        self.ds.quota_set_many(project_id, user_id, &update.limits).await?;
        self.limits_of(project_id, user_id).await
    }

    /// `DELETE /os-quota-sets/{project_id}` (admin): the project (with its
    /// users' limits), or the one user, goes back to the defaults.
    pub async fn quota_set_delete(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<(), ComputeError> {
        if !ctx.is_admin() {
            return Err(denied("os-quota-sets:delete"));
        }
        Ok(self.ds.quota_delete(project_id, user_id).await?)
    }

    /// `GET /os-quota-class-sets/{id}` (admin): the class's limits over the
    /// configured defaults.
    pub async fn quota_class_show(&self, ctx: &AuthContext, class: &str) -> Result<QuotaLimits, ComputeError> {
        if !ctx.is_admin() {
            return Err(denied("os-quota-class-sets:show"));
        }
        check_class_name(class)?;
        Ok(self.ds.quota_class_limits(class, self.cfg.default_quota).await?)
    }

    /// `PUT /os-quota-class-sets/{id}` (admin): store the class's limits;
    /// the `default` class's become the defaults of every project without
    /// its own limit.
    pub async fn quota_class_update(
        &self,
        ctx: &AuthContext,
        class: &str,
        body: Result<QuotaUpdate, String>,
    ) -> Result<QuotaLimits, ComputeError> {
        if !ctx.is_admin() {
            return Err(denied("os-quota-class-sets:update"));
        }
        check_class_name(class)?;
        let update = body.map_err(ComputeError::BadRequest)?;
        self.ds.quota_class_set_many(class, &update.limits).await?;
        Ok(self.ds.quota_class_limits(class, self.cfg.default_quota).await?)
    }

    /// The limits of a project, or of a user in it.
    async fn limits_of(&self, project_id: &str, user_id: Option<&str>) -> Result<QuotaLimits, ComputeError> {
        Ok(match user_id {
            Some(user) => self.ds.quota_user_limits(project_id, user, self.cfg.default_quota).await?,
            None => self.quota_limits(project_id).await?,
        })
    }

    /// The counted usage of a project, or of a user in it.
    async fn usage_of(&self, project_id: &str, user_id: Option<&str>) -> Result<QuotaUsage, ComputeError> {
        Ok(match user_id {
            Some(user) => self.ds.quota_usage_user(project_id, user).await?,
            None => self.ds.quota_usage(project_id).await?,
        })
    }
}

/// Nova's bounds of a new limit (-1 meaning unlimited on both sides).
fn check_limit(resource: &str, limit: i64, minimum: i64, maximum: i64) -> Result<(), ComputeError> {
    if unlimited_as_max(limit) < unlimited_as_max(minimum) {
        return Err(ComputeError::BadRequest(format!(
            "Quota limit {limit} for {resource} must be greater than or equal to already used and reserved {minimum}."
        )));
    }
    if unlimited_as_max(limit) > unlimited_as_max(maximum) {
        return Err(ComputeError::BadRequest(format!(
            "Quota limit {limit} for {resource} must be less than or equal to {maximum}."
        )));
    }
    Ok(())
}

/// A quota class name is 1 to 255 characters (Nova's `quota_class_name`).
fn check_class_name(class: &str) -> Result<(), ComputeError> {
    let n = class.chars().count();
    if n == 0 || n > 255 {
        return Err(ComputeError::BadRequest(format!(
            "quota_class_name has {n} characters, it must be 1 to 255 characters long."
        )));
    }
    Ok(())
}
