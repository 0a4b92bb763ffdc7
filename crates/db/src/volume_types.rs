//! Volume types (Cinder's `/types`), their extra specs, and the projects a
//! private type is shared with. A type is deleted outright (with its specs
//! and access list), and only while no live volume uses it; names are
//! unique. The default type (`__DEFAULT__`) is created by the migration
//! with the fixed id [`DEFAULT_VOLUME_TYPE_ID`].

use crate::{Datastore, DbError, RowKind};
use sqlx::{FromRow, QueryBuilder};
use std::collections::BTreeMap;

/// The id migration 0019 gives the default type, the same in every
/// deployment (volumes created before types existed were moved onto it).
pub const DEFAULT_VOLUME_TYPE_ID: &str = "e7ec5cfc-ee49-4de1-bb46-97bb64a56540";

/// A volume type's extra specs (Cinder stores a `null` value as given).
pub type ExtraSpecs = BTreeMap<String, Option<String>>;

/// A volume type row.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct VolumeTypeRow {
    /// Type id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Visible to every project (else only to admins and shared projects).
    pub is_public: bool,
}

/// Which volume types a list returns (Cinder's type list filters).
#[derive(Clone, Debug, Default)]
pub struct VolumeTypeFilter {
    /// Only public types and those shared with this project (non-admins).
    pub visible_to: Option<String>,
    /// `Some(true)`: public types and those shared with `project_id`;
    /// `Some(false)`: private types; `None`: both.
    pub is_public: Option<bool>,
    /// The caller's project (for `is_public: Some(true)`).
    pub project_id: String,
}

const TCOLS: &str = "id, name, description, is_public";

/// The condition "shared with the bound project" on a `volume_types` row.
const SHARED_WITH: &str =
    "EXISTS (SELECT 1 FROM volume_type_projects p WHERE p.type_id = volume_types.id AND p.project_id = ";

crate::per_backend! {

/// The `SELECT` of a type list: newest first, as Cinder sorts by default.
pub(crate) fn volume_type_list_query(f: &VolumeTypeFilter) -> QueryBuilder<'static, dbk::Db> {
    let mut q: QueryBuilder<dbk::Db> = QueryBuilder::new(format!("SELECT {TCOLS} FROM volume_types WHERE 1 = 1"));
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
    q.push(" ORDER BY created_at DESC, id DESC");
    q
}

}

/// Cinder's `VolumeTypeExists` text for a name already taken.
fn name_taken(name: &str) -> DbError {
    DbError::conflict(RowKind::VolumeType, format!("Volume Type {name} already exists."))
}

impl Datastore {
    /// Record a new type with its extra specs; a name already taken is a
    /// `Conflict` with Cinder's message.
    pub async fn volume_type_create(&self, t: &VolumeTypeRow, specs: &ExtraSpecs) -> Result<VolumeTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let taken: Option<(String,)> = sqlx::query_as("SELECT id FROM volume_types WHERE name = $1")
                .bind(&t.name)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(name_taken(&t.name));
            }
            let now = self.now();
            let row: VolumeTypeRow = sqlx::query_as(&format!("INSERT INTO volume_types ({TCOLS}, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$5) RETURNING {TCOLS}"))
                .bind(&t.id).bind(&t.name).bind(&t.description).bind(t.is_public).bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| if crate::is_unique_violation(&e) { name_taken(&t.name) } else { e.into() })?;
            for (k, v) in specs {
                sqlx::query("INSERT INTO volume_type_extra_specs (type_id, spec_key, spec_value) VALUES ($1, $2, $3)")
                    .bind(&t.id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    /// One type by id; with `visible_to`, only if it is public or shared
    /// with that project (`NotFound` otherwise).
    pub async fn volume_type_get(&self, id: &str, visible_to: Option<&str>) -> Result<VolumeTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {TCOLS} FROM volume_types WHERE id = $1 AND ($2 IS NULL OR is_public = TRUE OR {SHARED_WITH}$2))"))
                .bind(id)
                .bind(visible_to)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::VolumeType, id))
        })
    }

    /// One type by name, with the same visibility rule as [`Self::volume_type_get`].
    pub async fn volume_type_get_by_name(
        &self,
        name: &str,
        visible_to: Option<&str>,
    ) -> Result<VolumeTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {TCOLS} FROM volume_types WHERE name = $1 AND ($2 IS NULL OR is_public = TRUE OR {SHARED_WITH}$2))"))
                .bind(name)
                .bind(visible_to)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::VolumeType, name))
        })
    }

    /// The types `f` selects, newest first.
    pub async fn volume_type_list(&self, f: &VolumeTypeFilter) -> Result<Vec<VolumeTypeRow>, DbError> {
        crate::with_db!(self, |wp, rp| { Ok(dbk::volume_type_list_query(f).build_query_as().fetch_all(rp).await?) })
    }

    /// Change name, description and/or visibility (absent: unchanged); a
    /// name another type has is a `Conflict` with Cinder's message.
    pub async fn volume_type_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        is_public: Option<bool>,
    ) -> Result<VolumeTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            if let Some(n) = name {
                let taken: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM volume_types WHERE name = $1 AND id <> $2")
                        .bind(n)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Err(name_taken(n));
                }
            }
            let row: Option<VolumeTypeRow> = sqlx::query_as(&format!("UPDATE volume_types SET name = COALESCE($2, name), description = COALESCE($3, description), is_public = COALESCE($4, is_public), updated_at = $5 WHERE id = $1 RETURNING {TCOLS}"))
                .bind(id).bind(name).bind(description).bind(is_public).bind(self.now())
                .fetch_optional(&mut *tx)
                .await?;
            let row = row.ok_or_else(|| DbError::not_found(RowKind::VolumeType, id))?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Does a live volume use this type?
    pub async fn volume_type_in_use(&self, id: &str) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT id FROM volumes WHERE volume_type_id = $1 AND deleted = FALSE LIMIT 1")
                    .bind(id)
                    .fetch_optional(rp)
                    .await?;
            Ok(found.is_some())
        })
    }

    /// Delete a type with its specs and access list: `NotFound` if absent,
    /// `Conflict` (volume type) while a live volume uses it.
    pub async fn volume_type_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let used: Option<(String,)> =
                sqlx::query_as("SELECT id FROM volumes WHERE volume_type_id = $1 AND deleted = FALSE LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if used.is_some() {
                return Err(DbError::conflict(RowKind::VolumeType, format!("volume type {id} is in use")));
            }
            let r = sqlx::query("DELETE FROM volume_types WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::VolumeType, id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The extra specs of one type.
    pub async fn volume_type_extra_specs(&self, id: &str) -> Result<ExtraSpecs, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT spec_key, spec_value FROM volume_type_extra_specs WHERE type_id = $1")
                    .bind(id)
                    .fetch_all(rp)
                    .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// The extra specs of every type, by type id (for lists).
    pub async fn volume_type_extra_specs_all(&self) -> Result<BTreeMap<String, ExtraSpecs>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT type_id, spec_key, spec_value FROM volume_type_extra_specs")
                    .fetch_all(rp)
                    .await?;
            let mut out: BTreeMap<String, ExtraSpecs> = BTreeMap::new();
            for (t, k, v) in rows {
                out.entry(t).or_default().insert(k, v);
            }
            Ok(out)
        })
    }

    /// Add or overwrite extra specs of a type, all or none (`NotFound`
    /// (volume type) if the type is gone).
    pub async fn volume_type_extra_specs_set(&self, id: &str, specs: &ExtraSpecs) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT id FROM volume_types WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(DbError::not_found(RowKind::VolumeType, id));
            }
            for (k, v) in specs {
                sqlx::query("INSERT INTO volume_type_extra_specs (type_id, spec_key, spec_value) VALUES ($1, $2, $3) ON CONFLICT (type_id, spec_key) DO UPDATE SET spec_value = excluded.spec_value")
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

    /// Remove one extra spec (`NotFound` (extra spec) if the type has no such key).
    pub async fn volume_type_extra_spec_delete(&self, id: &str, key: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM volume_type_extra_specs WHERE type_id = $1 AND spec_key = $2")
                    .bind(id)
                    .bind(key),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::VolumeTypeExtraSpec, key));
            }
            Ok(())
        })
    }

    /// The projects a type is shared with, in order.
    pub async fn volume_type_projects(&self, id: &str) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT project_id FROM volume_type_projects WHERE type_id = $1 ORDER BY project_id")
                    .bind(id)
                    .fetch_all(rp)
                    .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Share a type with a project: `NotFound` (volume type) if the type is
    /// gone, `Conflict` (access) if it is already shared with it.
    pub async fn volume_type_access_add(&self, id: &str, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT id FROM volume_types WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(DbError::not_found(RowKind::VolumeType, id));
            }
            sqlx::query("INSERT INTO volume_type_projects (type_id, project_id) VALUES ($1, $2)")
                .bind(id)
                .bind(project_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if crate::is_unique_violation(&e) {
                        DbError::conflict(RowKind::VolumeTypeAccess, format!("{id} / {project_id}"))
                    } else {
                        e.into()
                    }
                })?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stop sharing a type with a project (`NotFound` (access) if it was not).
    pub async fn volume_type_access_remove(&self, id: &str, project_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM volume_type_projects WHERE type_id = $1 AND project_id = $2")
                    .bind(id)
                    .bind(project_id),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::VolumeTypeAccess, format!("{id} / {project_id}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    fn vt(id: &str, name: &str, public: bool) -> VolumeTypeRow {
        VolumeTypeRow { id: id.into(), name: name.into(), description: None, is_public: public }
    }

    /// The migration seeds Cinder's `__DEFAULT__` type with its fixed id.
    #[tokio::test]
    async fn default_type_is_seeded() {
        let (ds, _d) = store().await;
        let t = ds.volume_type_get(DEFAULT_VOLUME_TYPE_ID, Some("any")).await.expect("default");
        assert_eq!((t.name.as_str(), t.is_public), ("__DEFAULT__", true));
        assert_eq!(ds.volume_type_get_by_name("__DEFAULT__", None).await.expect("by name").id, DEFAULT_VOLUME_TYPE_ID);
    }

    /// Names are unique (Cinder's VolumeTypeExists, 409); private types are
    /// seen by shared projects only; specs and access go with the type.
    #[tokio::test]
    async fn create_visibility_specs_access_delete() {
        let (ds, _d) = store().await;
        let specs = ExtraSpecs::from([("a".into(), Some("1".into())), ("n".into(), None)]);
        ds.volume_type_create(&vt("11111111-1111-4111-8111-111111111111", "gold", false), &specs).await.expect("gold");
        assert!(matches!(
            ds.volume_type_create(&vt("22222222-2222-4222-8222-222222222222", "gold", true), &ExtraSpecs::new()).await,
            Err(DbError::Conflict { .. })
        ));
        let gold = "11111111-1111-4111-8111-111111111111";
        assert!(matches!(ds.volume_type_get(gold, Some("p1")).await, Err(DbError::NotFound { .. })));
        ds.volume_type_access_add(gold, "p1").await.expect("share");
        assert!(matches!(ds.volume_type_access_add(gold, "p1").await, Err(DbError::Conflict { .. })));
        assert_eq!(ds.volume_type_get(gold, Some("p1")).await.expect("shared").name, "gold");
        let f = VolumeTypeFilter { visible_to: Some("p2".into()), is_public: Some(true), project_id: "p2".into() };
        assert_eq!(ds.volume_type_list(&f).await.expect("list").len(), 1, "only the default type");
        let f = VolumeTypeFilter { visible_to: None, is_public: Some(false), project_id: "admin".into() };
        assert_eq!(ds.volume_type_list(&f).await.expect("list")[0].id, gold);
        assert_eq!(ds.volume_type_extra_specs(gold).await.expect("specs"), specs);
        ds.volume_type_extra_specs_set(gold, &ExtraSpecs::from([("a".into(), Some("2".into()))])).await.expect("set");
        assert_eq!(ds.volume_type_extra_specs_all().await.expect("all")[gold]["a"].as_deref(), Some("2"));
        ds.volume_type_extra_spec_delete(gold, "n").await.expect("delete spec");
        assert!(matches!(ds.volume_type_extra_spec_delete(gold, "n").await, Err(DbError::NotFound { .. })));
        let renamed = ds.volume_type_update(gold, Some("silver"), None, Some(true)).await.expect("update");
        assert_eq!((renamed.name.as_str(), renamed.is_public), ("silver", true));
        assert!(matches!(
            ds.volume_type_update(gold, Some("__DEFAULT__"), None, None).await,
            Err(DbError::Conflict { .. })
        ));
        ds.volume_type_delete(gold).await.expect("delete");
        assert!(ds.volume_type_projects(gold).await.expect("access").is_empty());
        assert!(ds.volume_type_extra_specs(gold).await.expect("specs").is_empty());
        assert!(matches!(ds.volume_type_delete(gold).await, Err(DbError::NotFound { .. })));
    }
}
