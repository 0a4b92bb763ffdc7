//! Flavors (Nova's instance types), their extra specs, and the projects a
//! private flavor is shared with. A flavor is deleted outright (with its
//! specs and its access list): servers keep their own copy of its sizes.

use crate::{Datastore, DbError, RowKind};
use sqlx::{FromRow, QueryBuilder};
use std::collections::BTreeMap;

/// A flavor (instance type).
#[derive(Clone, Debug, FromRow)]
pub struct FlavorRow {
    /// Flavor id (string, `1`..`4` for the seeded ones).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: i64,
    /// RAM in MiB.
    pub ram_mb: i64,
    /// Root disk GiB.
    pub disk_gb: i64,
    /// Ephemeral disk GiB.
    pub ephemeral_gb: i64,
    /// Swap MiB.
    pub swap_mb: i64,
    /// Legacy bandwidth factor.
    pub rxtx_factor: f64,
    /// Visible to every project.
    pub is_public: bool,
    /// Hidden from new boots.
    pub disabled: bool,
    /// Free-text description (compute 2.55); `None` when unset.
    pub description: Option<String>,
}

/// What a flavor list is ordered by: Nova's `sort_key` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlavorSortKey {
    /// `flavorid` (Nova's default).
    #[default]
    FlavorId,
    /// `name`.
    Name,
    /// `memory_mb`.
    MemoryMb,
    /// `root_gb`.
    RootGb,
    /// `ephemeral_gb`.
    EphemeralGb,
    /// `swap`.
    Swap,
    /// `vcpus`.
    Vcpus,
    /// `rxtx_factor`.
    RxtxFactor,
    /// `is_public`.
    IsPublic,
    /// `disabled`.
    Disabled,
    /// `id`, `created_at`, `updated_at`: creation order (flavors never change).
    Created,
    /// `description`, `vcpu_weight`: unset on every flavor here, so only the
    /// tie-break (creation order) orders them.
    Unset,
}

impl FlavorSortKey {
    /// The key Nova's `sort_key` names, if it is one of Nova's flavor columns.
    pub fn from_nova(key: &str) -> Option<Self> {
        Some(match key {
            "flavorid" => Self::FlavorId,
            "name" => Self::Name,
            "memory_mb" => Self::MemoryMb,
            "root_gb" => Self::RootGb,
            "ephemeral_gb" => Self::EphemeralGb,
            "swap" => Self::Swap,
            "vcpus" => Self::Vcpus,
            "rxtx_factor" => Self::RxtxFactor,
            "is_public" => Self::IsPublic,
            "disabled" => Self::Disabled,
            "id" | "created_at" | "updated_at" => Self::Created,
            "description" | "vcpu_weight" => Self::Unset,
            _ => return None,
        })
    }

    /// The column, or `None` when only the tie-break orders.
    fn column(self) -> Option<&'static str> {
        Some(match self {
            Self::FlavorId => "id",
            Self::Name => "name",
            Self::MemoryMb => "ram_mb",
            Self::RootGb => "disk_gb",
            Self::EphemeralGb => "ephemeral_gb",
            Self::Swap => "swap_mb",
            Self::Vcpus => "vcpus",
            Self::RxtxFactor => "rxtx_factor",
            Self::IsPublic => "is_public",
            Self::Disabled => "disabled",
            Self::Created | Self::Unset => return None,
        })
    }
}

/// Which flavors a list returns, in what order (Nova's flavor list).
#[derive(Clone, Debug, Default)]
pub struct FlavorFilter {
    /// Only public flavors and those shared with this project (non-admins).
    pub visible_to: Option<String>,
    /// `Some(true)`: public flavors and those shared with `project_id`;
    /// `Some(false)`: private flavors; `None`: both.
    pub is_public: Option<bool>,
    /// The caller's project (for `is_public: Some(true)`).
    pub project_id: String,
    /// Leave out disabled flavors.
    pub enabled_only: bool,
    /// `minRam`: at least this much RAM (MiB).
    pub min_ram_mb: Option<i64>,
    /// `minDisk`: at least this much root disk (GiB).
    pub min_disk_gb: Option<i64>,
    /// Order.
    pub sort_key: FlavorSortKey,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Page size.
    pub limit: Option<i64>,
    /// The flavor id the page starts after (checked to exist by the caller).
    pub marker: Option<String>,
}

const FLAVOR_COLS: &str =
    "id, name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, disabled, description";

/// The condition "shared with the bound project" on a `flavors` row.
const SHARED_WITH: &str = "EXISTS (SELECT 1 FROM flavor_projects p WHERE p.flavor_id = flavors.id AND p.project_id = ";

crate::per_backend! {

/// The `SELECT` of a flavor list.
pub(crate) fn flavor_list_query(f: &FlavorFilter) -> QueryBuilder<'static, dbk::Db> {
    let mut q: QueryBuilder<dbk::Db> = QueryBuilder::new(format!("SELECT {FLAVOR_COLS} FROM flavors WHERE 1 = 1"));
    if let Some(p) = &f.visible_to {
        q.push(" AND (is_public = TRUE OR ").push(SHARED_WITH).push_bind(p.clone()).push("))");
    }
    match f.is_public {
        Some(true) => {
            q.push(" AND (is_public = TRUE OR ").push(SHARED_WITH).push_bind(f.project_id.clone()).push("))");
        }
        Some(false) => {
            q.push(" AND is_public = FALSE");
        }
        None => {}
    }
    if f.enabled_only {
        q.push(" AND disabled = FALSE");
    }
    if let Some(m) = f.min_ram_mb {
        q.push(" AND ram_mb >= ").push_bind(m);
    }
    if let Some(m) = f.min_disk_gb {
        q.push(" AND disk_gb >= ").push_bind(m);
    }
    // Ties (and keys no flavor has) fall back to creation order, then id.
    let keys = match f.sort_key.column() {
        Some(c) => format!("{c}, created_at, id"),
        None => "created_at, id".to_string(),
    };
    let (dir, after) = if f.descending { ("DESC", "<") } else { ("ASC", ">") };
    if let Some(m) = &f.marker {
        q.push(format!(" AND ({keys}) {after} (SELECT {keys} FROM flavors WHERE id = "))
            .push_bind(m.clone())
            .push(")");
    }
    let order: Vec<String> = keys.split(", ").map(|k| format!("{k} {dir}")).collect();
    q.push(format!(" ORDER BY {}", order.join(", ")));
    if let Some(l) = f.limit {
        q.push(" LIMIT ").push_bind(l);
    }
    q
}

}

impl Datastore {
    /// Insert a flavor unless its id exists (seeding is idempotent).
    pub async fn flavor_ensure(&self, f: &FlavorRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(wp, sqlx::query("INSERT INTO flavors (id, name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, disabled) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING")
            .bind(&f.id).bind(&f.name).bind(f.vcpus).bind(f.ram_mb).bind(f.disk_gb).bind(f.ephemeral_gb).bind(f.swap_mb).bind(f.rxtx_factor).bind(f.is_public).bind(f.disabled)
            ).await?;
            Ok(())
        })
    }

    /// Record a new flavor; an id or a name already taken is a `Conflict`
    /// saying which, in Nova's words.
    pub async fn flavor_create(&self, f: &FlavorRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let by_id: Option<(String,)> =
                sqlx::query_as("SELECT id FROM flavors WHERE id = $1").bind(&f.id).fetch_optional(&mut *tx).await?;
            if by_id.is_some() {
                return Err(DbError::conflict(RowKind::Flavor, format!("Flavor with ID {} already exists.", f.id)));
            }
            let by_name: Option<(String,)> =
                sqlx::query_as("SELECT id FROM flavors WHERE name = $1").bind(&f.name).fetch_optional(&mut *tx).await?;
            if by_name.is_some() {
                return Err(DbError::conflict(RowKind::Flavor, format!("Flavor with name {} already exists.", f.name)));
            }
            sqlx::query("INSERT INTO flavors (id, name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, disabled, created_at, description) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)")
                .bind(&f.id).bind(&f.name).bind(f.vcpus).bind(f.ram_mb).bind(f.disk_gb).bind(f.ephemeral_gb).bind(f.swap_mb).bind(f.rxtx_factor).bind(f.is_public).bind(f.disabled).bind(self.now()).bind(&f.description)
                .execute(&mut *tx)
                .await
                .map_err(|e| if crate::is_unique_violation(&e) { DbError::conflict(RowKind::Flavor, format!("Flavor with ID {} already exists.", f.id)) } else { e.into() })?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Set (or clear) a flavor's description (`NotFound` if absent).
    pub async fn flavor_set_description(&self, id: &str, description: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let q = sqlx::query("UPDATE flavors SET description = $2 WHERE id = $1").bind(id).bind(description);
            if dbk::exec(wp, q).await?.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Flavor, id));
            }
            Ok(())
        })
    }

    /// Delete a flavor with its extra specs and access list (`NotFound` if absent).
    pub async fn flavor_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query("DELETE FROM flavors WHERE id = $1").bind(id)).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Flavor, id));
            }
            Ok(())
        })
    }

    /// The flavors `f` selects, in its order.
    pub async fn flavor_list(&self, f: &FlavorFilter) -> Result<Vec<FlavorRow>, DbError> {
        crate::with_db!(self, |wp, rp| { Ok(dbk::flavor_list_query(f).build_query_as().fetch_all(rp).await?) })
    }

    /// One flavor by id; with `visible_to`, only if it is public or shared
    /// with that project (`NotFound` otherwise).
    pub async fn flavor_get(&self, id: &str, visible_to: Option<&str>) -> Result<FlavorRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {FLAVOR_COLS} FROM flavors WHERE id = $1 AND ($2 IS NULL OR is_public = TRUE OR {SHARED_WITH}$2))"))
                .bind(id)
                .bind(visible_to)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Flavor, id))
        })
    }

    /// One flavor by id, or by name as a fallback (clients pass either).
    pub async fn flavor_find(&self, id_or_name: &str) -> Result<FlavorRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "SELECT {FLAVOR_COLS} FROM flavors WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1"
            ))
            .bind(id_or_name)
            .fetch_optional(rp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::Flavor, id_or_name))
        })
    }

    /// The projects a flavor is shared with, in order.
    pub async fn flavor_projects(&self, id: &str) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT project_id FROM flavor_projects WHERE flavor_id = $1 ORDER BY project_id")
                    .bind(id)
                    .fetch_all(rp)
                    .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Share a flavor with a project: `NotFound` (flavor) if the flavor is
    /// gone, `Conflict` if it is already shared with it.
    pub async fn flavor_access_add(&self, id: &str, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT id FROM flavors WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(DbError::not_found(RowKind::Flavor, id));
            }
            sqlx::query("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)")
                .bind(id)
                .bind(project_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if crate::is_unique_violation(&e) {
                        DbError::conflict(RowKind::FlavorAccess, format!("{id} / {project_id}"))
                    } else {
                        e.into()
                    }
                })?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stop sharing a flavor with a project (`NotFound` (access) if it was not).
    pub async fn flavor_access_remove(&self, id: &str, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
                    .bind(id)
                    .bind(project_id),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::FlavorAccess, format!("{id} / {project_id}")));
            }
            Ok(())
        })
    }

    /// A flavor's extra specs.
    pub async fn flavor_extra_specs(&self, id: &str) -> Result<BTreeMap<String, String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT spec_key, spec_value FROM flavor_extra_specs WHERE flavor_id = $1")
                    .bind(id)
                    .fetch_all(rp)
                    .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Add or overwrite extra specs of a flavor, all or none (`NotFound`
    /// (flavor) if the flavor is gone).
    pub async fn flavor_extra_specs_set(&self, id: &str, specs: &BTreeMap<String, String>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT id FROM flavors WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(DbError::not_found(RowKind::Flavor, id));
            }
            for (k, v) in specs {
                sqlx::query("INSERT INTO flavor_extra_specs (flavor_id, spec_key, spec_value) VALUES ($1, $2, $3) ON CONFLICT (flavor_id, spec_key) DO UPDATE SET spec_value = excluded.spec_value")
                    .bind(id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Remove one extra spec (`NotFound` (extra spec) if the flavor has no such key).
    pub async fn flavor_extra_spec_delete(&self, id: &str, key: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2").bind(id).bind(key),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::FlavorExtraSpec, key));
            }
            Ok(())
        })
    }
}
