//! Stored quota limits, as Nova layers them: a resource's limit is the
//! user's own (per-user limits inside a project), else the project's, else
//! the `default` quota class's, else the configured default. Usage is never
//! stored: it is counted from live rows (see `servers`).

use crate::servers::saturating_total;
use crate::{Datastore, DbError, QuotaLimits, QuotaUsage};
use std::collections::BTreeMap;

/// The quota class whose limits are every project's defaults (Nova's
/// `_DEFAULT_QUOTA_NAME`).
pub const DEFAULT_QUOTA_CLASS: &str = "default";

/// Block Storage limits share the quota tables with Compute's under this
/// prefix (`volume:gigabytes`), so neither service's names can clash and
/// each service's reset leaves the other's limits alone.
pub const VOLUME_QUOTA_PREFIX: &str = "volume:";
const VOLUME_QUOTA_LIKE: &str = "volume:%";

/// Where a stored Block Storage limit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeQuotaLayer<'a> {
    /// A quota class's own limits (Cinder's `os-quota-class-sets`).
    Class(&'a str),
    /// The `default` class's, then the project's own limits over them.
    Project(&'a str),
}

impl Datastore {
    /// Stored Block Storage limits (names without the prefix), lowest layer
    /// first so that later rows win: a class's own limits, or for a project
    /// the `default` class's and then the project's.
    pub async fn volume_quota_rows(&self, layer: VolumeQuotaLayer<'_>) -> Result<Vec<(String, i64)>, DbError> {
        let (class, project) = match layer {
            VolumeQuotaLayer::Class(c) => (c, None),
            VolumeQuotaLayer::Project(p) => (DEFAULT_QUOTA_CLASS, Some(p)),
        };
        let rows: Vec<(String, i64)> = crate::with_db!(self, |wp, rp| {
            Ok::<_, DbError>(
                sqlx::query_as(
                    "SELECT resource, hard_limit FROM (
                        SELECT resource, hard_limit, 0 AS lvl FROM quota_classes WHERE class_name = $1 AND resource LIKE $3
                        UNION ALL SELECT resource, hard_limit, 1 AS lvl FROM quotas WHERE project_id = $2 AND resource LIKE $3
                    ) layers ORDER BY lvl",
                )
                .bind(class)
                .bind(project)
                .bind(VOLUME_QUOTA_LIKE)
                .fetch_all(rp)
                .await?,
            )
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(r, l)| r.strip_prefix(VOLUME_QUOTA_PREFIX).map(|r| (r.to_string(), l)))
            .collect())
    }

    /// Set Block Storage limits of a project or a class, all or none.
    pub async fn volume_quota_set(&self, layer: VolumeQuotaLayer<'_>, limits: &[(&str, i64)]) -> Result<(), DbError> {
        let named: Vec<(String, i64)> = limits.iter().map(|(r, l)| (format!("{VOLUME_QUOTA_PREFIX}{r}"), *l)).collect();
        let refs: Vec<(&str, i64)> = named.iter().map(|(r, l)| (r.as_str(), *l)).collect();
        match layer {
            VolumeQuotaLayer::Class(c) => self.quota_class_set_many(c, &refs).await,
            VolumeQuotaLayer::Project(p) => self.quota_set_many(p, None, &refs).await,
        }
    }

    /// Drop a project's own Block Storage limits (Cinder's quota delete):
    /// it sees the defaults again; its Compute limits stay.
    pub async fn volume_quota_delete(&self, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND resource LIKE $2")
                    .bind(project_id)
                    .bind(VOLUME_QUOTA_LIKE),
            )
            .await?;
            Ok(())
        })
    }

    /// Limits of a project: its overrides over the `default` class over
    /// `defaults` (the configured ones).
    pub async fn quota_limits(&self, project_id: &str, defaults: QuotaLimits) -> Result<QuotaLimits, DbError> {
        self.quota_layered(Some(project_id), None, defaults).await
    }

    /// Limits of a user in a project: the user's own limits over the
    /// project's (Nova's user quotas, shown with `?user_id=`).
    pub async fn quota_user_limits(
        &self,
        project_id: &str,
        user_id: &str,
        defaults: QuotaLimits,
    ) -> Result<QuotaLimits, DbError> {
        self.quota_layered(Some(project_id), Some(user_id), defaults).await
    }

    /// What a project without overrides gets: the `default` class over `defaults`.
    pub async fn quota_default_limits(&self, defaults: QuotaLimits) -> Result<QuotaLimits, DbError> {
        self.quota_layered(None, None, defaults).await
    }

    /// One query for every layer, lowest first, so later rows win.
    async fn quota_layered(
        &self,
        project_id: Option<&str>,
        user_id: Option<&str>,
        defaults: QuotaLimits,
    ) -> Result<QuotaLimits, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT resource, hard_limit FROM (
                    SELECT resource, hard_limit, 0 AS lvl FROM quota_classes WHERE class_name = $1
                    UNION ALL SELECT resource, hard_limit, 1 AS lvl FROM quotas WHERE project_id = $2
                    UNION ALL SELECT resource, hard_limit, 2 AS lvl FROM project_user_quotas WHERE project_id = $2 AND user_id = $3
                ) layers ORDER BY lvl",
            )
            .bind(DEFAULT_QUOTA_CLASS)
            .bind(project_id)
            .bind(user_id)
            .fetch_all(rp)
            .await?;
            let mut l = defaults;
            for (res, lim) in rows {
                l.set(&res, lim);
            }
            Ok(l)
        })
    }

    /// Limits of quota class `class`: its stored limits over `defaults`
    /// (another class does not inherit the `default` class's, as in Nova).
    pub async fn quota_class_limits(&self, class: &str, defaults: QuotaLimits) -> Result<QuotaLimits, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT resource, hard_limit FROM quota_classes WHERE class_name = $1")
                    .bind(class)
                    .fetch_all(rp)
                    .await?;
            let mut l = defaults;
            for (res, lim) in rows {
                l.set(&res, lim);
            }
            Ok(l)
        })
    }

    /// Set one limit of a project.
    pub async fn quota_set(&self, project_id: &str, resource: &str, limit: i64) -> Result<(), DbError> {
        self.quota_set_many(project_id, None, &[(resource, limit)]).await
    }

    /// Set limits of a project, or of a user in it, all or none.
    pub async fn quota_set_many(
        &self,
        project_id: &str,
        user_id: Option<&str>,
        limits: &[(&str, i64)],
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            for (resource, limit) in limits {
                match user_id {
                    None => sqlx::query("INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1,$2,$3) ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = $3")
                        .bind(project_id).bind(*resource).bind(*limit).execute(&mut *tx).await?,
                    Some(user) => sqlx::query("INSERT INTO project_user_quotas (project_id, user_id, resource, hard_limit) VALUES ($1,$2,$3,$4) ON CONFLICT (project_id, user_id, resource) DO UPDATE SET hard_limit = $4")
                        .bind(project_id).bind(user).bind(*resource).bind(*limit).execute(&mut *tx).await?,
                };
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Set limits of quota class `class`, all or none.
    pub async fn quota_class_set_many(&self, class: &str, limits: &[(&str, i64)]) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            for (resource, limit) in limits {
                sqlx::query("INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES ($1,$2,$3) ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = $3")
                    .bind(class).bind(*resource).bind(*limit).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Drop a user's own limits, or (no user) every override of a project,
    /// its users' included, so that it sees the defaults again (Nova's
    /// `destroy_all_by_project`).
    pub async fn quota_delete(&self, project_id: &str, user_id: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            match user_id {
                Some(user) => {
                    sqlx::query("DELETE FROM project_user_quotas WHERE project_id = $1 AND user_id = $2")
                        .bind(project_id)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    sqlx::query("DELETE FROM project_user_quotas WHERE project_id = $1")
                        .bind(project_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND resource NOT LIKE $2")
                        .bind(project_id)
                        .bind(VOLUME_QUOTA_LIKE)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Per resource, the sum of the non-negative user limits set in a
    /// project, leaving out `except_user`'s: what the project has already
    /// handed out to its users (Nova bounds a project limit from below and a
    /// user limit from above with it).
    pub async fn quota_user_limit_sums(
        &self,
        project_id: &str,
        except_user: Option<&str>,
    ) -> Result<BTreeMap<String, i64>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT resource, hard_limit FROM project_user_quotas
                 WHERE project_id = $1 AND hard_limit >= 0 AND ($2 IS NULL OR user_id <> $2)",
            )
            .bind(project_id)
            .bind(except_user)
            .fetch_all(rp)
            .await?;
            let mut sums = BTreeMap::new();
            for (res, lim) in rows {
                let s: &mut i64 = sums.entry(res).or_default();
                *s = s.saturating_add(lim);
            }
            Ok(sums)
        })
    }

    /// Counted usage of one user in a project (servers, vCPUs, RAM).
    pub async fn quota_usage_user(&self, project_id: &str, user_id: &str) -> Result<QuotaUsage, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (instances, cores, ram): (i64, f64, f64) = sqlx::query_as(&format!(
                "SELECT COUNT(*), {}, {} FROM servers WHERE project_id = $1 AND user_id = $2 AND deleted = FALSE",
                dbk::total("vcpus"),
                dbk::total("ram_mb")
            ))
            .bind(project_id)
            .bind(user_id)
            .fetch_one(rp)
            .await?;
            Ok(QuotaUsage { instances, cores: saturating_total(cores), ram: saturating_total(ram) })
        })
    }
}
