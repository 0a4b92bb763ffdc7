//! Metadata definitions (Glance's metadefs catalogue): namespaces and the
//! objects, properties, tags and resource-type associations they hold.
//! Definitions are stored as JSON bodies; `stratus-image` validates them and
//! decides who may see or change what, this module only stores rows.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// One namespace.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct MetadefNamespaceRow {
    /// Its unique name (the key in every URL).
    pub namespace: String,
    /// Owning project.
    pub owner: String,
    /// `public` or `private`.
    pub visibility: String,
    /// A protected namespace (and its content) cannot be deleted.
    pub protected: bool,
    /// The other attributes (`display_name`, `description`) as a JSON object.
    pub body: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

/// One definition inside a namespace.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct MetadefItemRow {
    /// Its namespace.
    pub namespace: String,
    /// `object`, `property`, `tag` or `resource_type` (an association).
    pub kind: String,
    /// Unique within (namespace, kind).
    pub name: String,
    /// The definition as a JSON object (without its name).
    pub body: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

/// A resource type namespaces may be associated with.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct MetadefResourceTypeRow {
    /// E.g. `OS::Glance::Image`.
    pub name: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

const NS_COLS: &str = "namespace, owner, visibility, protected, body, created_at, updated_at";
const ITEM_COLS: &str = "namespace, kind, name, body, created_at, updated_at";

fn ns_missing(ns: &str) -> DbError {
    DbError::not_found(RowKind::MetadefNamespace, ns)
}

fn item_missing(ns: &str, kind: &str, name: &str) -> DbError {
    DbError::not_found(RowKind::MetadefItem, format!("{ns} / {kind} {name}"))
}

fn unique(e: sqlx::Error, kind: RowKind, detail: String) -> DbError {
    if crate::is_unique_violation(&e) { DbError::conflict(kind, detail) } else { e.into() }
}

impl Datastore {
    /// Create a namespace with its first items (one transaction);
    /// `Conflict` when the name (or an item's) is taken.
    pub async fn metadef_namespace_create(
        &self,
        ns: &MetadefNamespaceRow,
        items: &[(String, String, String)],
    ) -> Result<MetadefNamespaceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let now = self.now();
            let row: MetadefNamespaceRow = sqlx::query_as(&format!(
                "INSERT INTO metadef_namespaces ({NS_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$6) RETURNING {NS_COLS}"
            ))
            .bind(&ns.namespace)
            .bind(&ns.owner)
            .bind(&ns.visibility)
            .bind(ns.protected)
            .bind(&ns.body)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique(e, RowKind::MetadefNamespace, format!("Namespace {} already exists.", ns.namespace)))?;
            for (kind, name, body) in items {
                sqlx::query(&format!("INSERT INTO metadef_items ({ITEM_COLS}) VALUES ($1,$2,$3,$4,$5,$5)"))
                    .bind(&ns.namespace)
                    .bind(kind)
                    .bind(name)
                    .bind(body)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique(e, RowKind::MetadefItem, format!("Duplicate {kind} {name}.")))?;
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    /// One namespace; `NotFound` when there is none of that name.
    pub async fn metadef_namespace_get(&self, ns: &str) -> Result<MetadefNamespaceRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {NS_COLS} FROM metadef_namespaces WHERE namespace = $1"))
                .bind(ns)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| ns_missing(ns))
        })
    }

    /// Every namespace, by name (the catalogue is small; callers filter).
    pub async fn metadef_namespace_list(&self) -> Result<Vec<MetadefNamespaceRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {NS_COLS} FROM metadef_namespaces ORDER BY namespace"))
                .fetch_all(rp)
                .await?)
        })
    }

    /// Replace namespace `old`'s attributes with `ns`'s (a new name renames
    /// it and moves its items); `Conflict` when the new name is taken.
    pub async fn metadef_namespace_update(&self, old: &str, ns: &MetadefNamespaceRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query(
                "UPDATE metadef_namespaces SET namespace = $2, owner = $3, visibility = $4, protected = $5, body = $6, updated_at = $7 WHERE namespace = $1",
            )
            .bind(old)
            .bind(&ns.namespace)
            .bind(&ns.owner)
            .bind(&ns.visibility)
            .bind(ns.protected)
            .bind(&ns.body)
            .bind(self.now())
            .execute(&mut *tx)
            .await
            .map_err(|e| unique(e, RowKind::MetadefNamespace, format!("Namespace {} already exists.", ns.namespace)))?;
            if r.rows_affected() == 0 {
                return Err(ns_missing(old));
            }
            if old != ns.namespace {
                sqlx::query("UPDATE metadef_items SET namespace = $2 WHERE namespace = $1")
                    .bind(old)
                    .bind(&ns.namespace)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delete a namespace and everything in it.
    pub async fn metadef_namespace_delete(&self, ns: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            sqlx::query("DELETE FROM metadef_items WHERE namespace = $1").bind(ns).execute(&mut *tx).await?;
            let r =
                sqlx::query("DELETE FROM metadef_namespaces WHERE namespace = $1").bind(ns).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(ns_missing(ns));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A namespace's items of one kind (every kind when `kind` is `None`),
    /// oldest first.
    pub async fn metadef_item_list(&self, ns: &str, kind: Option<&str>) -> Result<Vec<MetadefItemRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {ITEM_COLS} FROM metadef_items WHERE namespace = $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2) ORDER BY created_at, name"
            ))
            .bind(ns)
            .bind(kind)
            .fetch_all(rp)
            .await?)
        })
    }

    /// One item; `NotFound` when absent.
    pub async fn metadef_item_get(&self, ns: &str, kind: &str, name: &str) -> Result<MetadefItemRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "SELECT {ITEM_COLS} FROM metadef_items WHERE namespace = $1 AND kind = $2 AND name = $3"
            ))
            .bind(ns)
            .bind(kind)
            .bind(name)
            .fetch_optional(rp)
            .await?
            .ok_or_else(|| item_missing(ns, kind, name))
        })
    }

    /// Add items of one kind to a namespace; with `replace`, its existing
    /// items of that kind go first (one transaction). `Conflict` on a
    /// duplicate name.
    pub async fn metadef_items_add(
        &self,
        ns: &str,
        kind: &str,
        items: &[(String, String)],
        replace: bool,
    ) -> Result<Vec<MetadefItemRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            if replace {
                sqlx::query("DELETE FROM metadef_items WHERE namespace = $1 AND kind = $2")
                    .bind(ns)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
            }
            let now = self.now();
            let mut out = Vec::with_capacity(items.len());
            for (name, body) in items {
                let row: MetadefItemRow = sqlx::query_as(&format!(
                    "INSERT INTO metadef_items ({ITEM_COLS}) VALUES ($1,$2,$3,$4,$5,$5) RETURNING {ITEM_COLS}"
                ))
                .bind(ns)
                .bind(kind)
                .bind(name)
                .bind(body)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| unique(e, RowKind::MetadefItem, format!("Duplicate {kind} {name} in namespace {ns}.")))?;
                out.push(row);
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Rename and/or redefine an item; `NotFound` when absent, `Conflict`
    /// when the new name is taken.
    pub async fn metadef_item_update(
        &self,
        ns: &str,
        kind: &str,
        old: &str,
        name: &str,
        body: &str,
    ) -> Result<MetadefItemRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE metadef_items SET name = $4, body = $5, updated_at = $6 WHERE namespace = $1 AND kind = $2 AND name = $3",
                )
                .bind(ns)
                .bind(kind)
                .bind(old)
                .bind(name)
                .bind(body)
                .bind(self.now()),
            )
            .await
            .map_err(|e| match e {
                DbError::Sqlx(e) => unique(e, RowKind::MetadefItem, format!("Duplicate {kind} {name} in namespace {ns}.")),
                e => e,
            })?;
            if r.rows_affected() == 0 {
                return Err(item_missing(ns, kind, old));
            }
            self.metadef_item_get(ns, kind, name).await
        })
    }

    /// Delete one item (`name`) or every item of `kind` (`None`).
    pub async fn metadef_item_delete(&self, ns: &str, kind: &str, name: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(
                    "DELETE FROM metadef_items WHERE namespace = $1 AND kind = $2 AND (CAST($3 AS TEXT) IS NULL OR name = $3)",
                )
                .bind(ns)
                .bind(kind)
                .bind(name),
            )
            .await?;
            match name {
                Some(n) if r.rows_affected() == 0 => Err(item_missing(ns, kind, n)),
                _ => Ok(()),
            }
        })
    }

    /// Every resource type, by name.
    pub async fn metadef_resource_type_list(&self) -> Result<Vec<MetadefResourceTypeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT name, created_at, updated_at FROM metadef_resource_types ORDER BY name")
                .fetch_all(rp)
                .await?)
        })
    }

    /// Make sure a resource type exists (an association may name a new one).
    pub async fn metadef_resource_type_ensure(&self, name: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query(
                    "INSERT INTO metadef_resource_types (name, created_at, updated_at) VALUES ($1,$2,$2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MetadefNamespaceRow;
    use crate::DbError;
    use crate::testutil::store;

    /// A namespace keeps its items through a rename and takes them along
    /// when deleted; names are unique per namespace and kind.
    #[tokio::test]
    async fn metadefs_round_trip() {
        let (ds, _db) = store().await;
        let ns = MetadefNamespaceRow {
            namespace: "n1".into(),
            owner: "p1".into(),
            visibility: "public".into(),
            protected: false,
            body: "{}".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
        };
        let tag = ("tag".to_string(), "t1".to_string(), "{}".to_string());
        ds.metadef_namespace_create(&ns, std::slice::from_ref(&tag)).await.expect("create");
        assert!(matches!(ds.metadef_namespace_create(&ns, &[]).await, Err(DbError::Conflict { .. })));
        let added = ds.metadef_items_add("n1", "object", &[("o1".into(), "{}".into())], false).await.expect("add");
        assert_eq!(added.len(), 1);
        assert!(matches!(
            ds.metadef_items_add("n1", "object", &[("o1".into(), "{}".into())], false).await,
            Err(DbError::Conflict { .. })
        ));
        let renamed = MetadefNamespaceRow { namespace: "n2".into(), ..ns.clone() };
        ds.metadef_namespace_update("n1", &renamed).await.expect("rename");
        assert_eq!(ds.metadef_item_list("n2", None).await.expect("items").len(), 2);
        let o = ds.metadef_item_update("n2", "object", "o1", "o2", r#"{"x":1}"#).await.expect("update");
        assert_eq!((o.name.as_str(), o.body.as_str()), ("o2", r#"{"x":1}"#));
        ds.metadef_items_add("n2", "tag", &[("t2".into(), "{}".into())], true).await.expect("replace");
        let tags = ds.metadef_item_list("n2", Some("tag")).await.expect("tags");
        assert_eq!(tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["t2"]);
        ds.metadef_item_delete("n2", "tag", None).await.expect("delete all");
        assert!(matches!(ds.metadef_item_delete("n2", "tag", Some("t2")).await, Err(DbError::NotFound { .. })));
        ds.metadef_resource_type_ensure("OS::Test::Thing").await.expect("ensure");
        ds.metadef_resource_type_ensure("OS::Test::Thing").await.expect("ensure twice");
        let types = ds.metadef_resource_type_list().await.expect("types");
        assert!(
            types.iter().any(|t| t.name == "OS::Glance::Image") && types.iter().any(|t| t.name == "OS::Test::Thing")
        );
        ds.metadef_namespace_delete("n2").await.expect("delete");
        assert!(ds.metadef_item_list("n2", None).await.expect("items").is_empty());
        assert!(matches!(ds.metadef_namespace_get("n2").await, Err(DbError::NotFound { .. })));
    }
}
