//! QoS specs (Cinder's `/qos-specs`) and their association with volume
//! types, and volume types' encryption specs (`/types/{id}/encryption`).
//! A type has at most one QoS spec and at most one encryption spec.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::BTreeMap;

/// A QoS spec row (`specs` as a JSON object of strings).
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct QosSpecRow {
    /// Id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `front-end`, `back-end` or `both`.
    pub consumer: String,
    /// The specs, a JSON object.
    pub specs: String,
}

impl QosSpecRow {
    /// The specs as a map.
    pub fn spec_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.specs).unwrap_or_default()
    }
}

/// A volume type's encryption spec.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct EncryptionRow {
    /// The type.
    pub volume_type_id: String,
    /// Id of the spec (UUID).
    pub encryption_id: String,
    /// Encryptor class (`luks`, `LuksEncryptor`, ...).
    pub provider: String,
    /// Cipher.
    pub cipher: Option<String>,
    /// Key size in bits.
    pub key_size: Option<i64>,
    /// `front-end` or `back-end`.
    pub control_location: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Updated.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

const QCOLS: &str = "id, name, consumer, specs";
const ECOLS: &str =
    "volume_type_id, encryption_id, provider, cipher, key_size, control_location, created_at, updated_at";

fn qos_name_taken(name: &str) -> DbError {
    DbError::conflict(RowKind::QosSpec, format!("QoS Specs {name} already exists."))
}

impl Datastore {
    /// Record a QoS spec; a name already taken is a `Conflict`.
    pub async fn qos_create(&self, q: &QosSpecRow) -> Result<QosSpecRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let taken: Option<(String,)> = sqlx::query_as("SELECT id FROM qos_specs WHERE name = $1")
                .bind(&q.name)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(qos_name_taken(&q.name));
            }
            let row: QosSpecRow = sqlx::query_as(&format!(
                "INSERT INTO qos_specs ({QCOLS}, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$5) RETURNING {QCOLS}"
            ))
            .bind(&q.id)
            .bind(&q.name)
            .bind(&q.consumer)
            .bind(&q.specs)
            .bind(self.now())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| if crate::is_unique_violation(&e) { qos_name_taken(&q.name) } else { e.into() })?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// One QoS spec.
    pub async fn qos_get(&self, id: &str) -> Result<QosSpecRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {QCOLS} FROM qos_specs WHERE id = $1"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::QosSpec, id))
        })
    }

    /// Every QoS spec, newest first.
    pub async fn qos_list(&self) -> Result<Vec<QosSpecRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {QCOLS} FROM qos_specs ORDER BY created_at DESC, id"))
                .fetch_all(rp)
                .await?)
        })
    }

    /// Replace a QoS spec's specs (the caller merged them).
    pub async fn qos_set_specs(&self, id: &str, specs: &str) -> Result<QosSpecRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(
                wp,
                sqlx::query_as(&format!(
                    "UPDATE qos_specs SET specs = $2, updated_at = $3 WHERE id = $1 RETURNING {QCOLS}"
                ))
                .bind(id)
                .bind(specs)
                .bind(self.now()),
            )
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::QosSpec, id))
        })
    }

    /// The volume types a QoS spec is associated with: (id, name).
    pub async fn qos_associations(&self, id: &str) -> Result<Vec<(String, String)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT id, name FROM volume_types WHERE qos_specs_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(rp)
                .await?)
        })
    }

    /// The QoS spec a volume type is associated with.
    pub async fn volume_type_qos(&self, type_id: &str) -> Result<Option<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r: Option<(Option<String>,)> = sqlx::query_as("SELECT qos_specs_id FROM volume_types WHERE id = $1")
                .bind(type_id)
                .fetch_optional(rp)
                .await?;
            Ok(r.and_then(|(q,)| q))
        })
    }

    /// Associate a volume type with a QoS spec: `Conflict` (volume type)
    /// when the type has another one; associating it again changes nothing.
    pub async fn qos_associate(&self, id: &str, type_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("UPDATE volume_types SET qos_specs_id = $1, updated_at = $3 WHERE id = $2 AND (qos_specs_id IS NULL OR qos_specs_id = $1)")
                    .bind(id)
                    .bind(type_id)
                    .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::conflict(
                    RowKind::VolumeType,
                    format!("Type {type_id} is already associated with another qos specs"),
                ));
            }
            Ok(())
        })
    }

    /// Dissociate one volume type (`Some`) or every one (`None`) from a QoS spec.
    pub async fn qos_disassociate(&self, id: &str, type_id: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::exec(
                wp,
                sqlx::query("UPDATE volume_types SET qos_specs_id = NULL, updated_at = $3 WHERE qos_specs_id = $1 AND ($2 IS NULL OR id = $2)")
                    .bind(id)
                    .bind(type_id)
                    .bind(self.now()),
            )
            .await?;
            Ok(())
        })
    }

    /// Delete a QoS spec: `Conflict` while associated unless `force`, which
    /// dissociates it first.
    pub async fn qos_delete(&self, id: &str, force: bool) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let used: Option<(String,)> = sqlx::query_as("SELECT id FROM volume_types WHERE qos_specs_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if used.is_some() && !force {
                return Err(DbError::conflict(
                    RowKind::QosSpec,
                    format!("QoS Specs {id} is still associated with entities."),
                ));
            }
            sqlx::query("UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let r = sqlx::query("DELETE FROM qos_specs WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::QosSpec, id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A volume type's encryption spec, if it has one.
    pub async fn encryption_get(&self, type_id: &str) -> Result<Option<EncryptionRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {ECOLS} FROM volume_type_encryption WHERE volume_type_id = $1"))
                .bind(type_id)
                .fetch_optional(rp)
                .await?)
        })
    }

    /// Record a type's encryption spec: `Conflict` if it has one.
    pub async fn encryption_create(&self, e: &EncryptionRow) -> Result<EncryptionRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            dbk::fetch_optional(wp, sqlx::query_as(&format!("INSERT INTO volume_type_encryption ({ECOLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$7) ON CONFLICT (volume_type_id) DO NOTHING RETURNING {ECOLS}"))
                .bind(&e.volume_type_id).bind(&e.encryption_id).bind(&e.provider).bind(&e.cipher).bind(e.key_size).bind(&e.control_location).bind(&now))
                .await?
                .ok_or_else(|| DbError::conflict(RowKind::Encryption, format!("Volume type encryption for type {} already exists.", e.volume_type_id)))
        })
    }

    /// Replace a type's encryption spec fields (the caller merged them).
    pub async fn encryption_update(&self, e: &EncryptionRow) -> Result<EncryptionRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            dbk::fetch_optional(wp, sqlx::query_as(&format!("UPDATE volume_type_encryption SET provider = $2, cipher = $3, key_size = $4, control_location = $5, updated_at = $6 WHERE volume_type_id = $1 RETURNING {ECOLS}"))
                .bind(&e.volume_type_id).bind(&e.provider).bind(&e.cipher).bind(e.key_size).bind(&e.control_location).bind(self.now()))
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Encryption, &e.volume_type_id))
        })
    }

    /// Remove a type's encryption spec (`NotFound` if it has none).
    pub async fn encryption_delete(&self, type_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM volume_type_encryption WHERE volume_type_id = $1").bind(type_id),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Encryption, type_id));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    /// QoS specs: unique names, one per type, delete refused while associated
    /// unless forced; encryption: one per type, gone on delete.
    #[tokio::test]
    async fn qos_specs_and_encryption_on_both_backends() {
        let (ds, _d) = store().await;
        let q = QosSpecRow { id: "q1".into(), name: "gold".into(), consumer: "both".into(), specs: "{}".into() };
        ds.qos_create(&q).await.expect("create");
        assert!(matches!(
            ds.qos_create(&QosSpecRow { id: "q2".into(), ..q.clone() }).await,
            Err(DbError::Conflict { .. })
        ));
        ds.qos_create(&QosSpecRow { id: "q2".into(), name: "silver".into(), ..q.clone() }).await.expect("second");
        let t = crate::DEFAULT_VOLUME_TYPE_ID;
        ds.qos_associate("q1", t).await.expect("associate");
        ds.qos_associate("q1", t).await.expect("again: unchanged");
        assert!(matches!(ds.qos_associate("q2", t).await, Err(DbError::Conflict { .. })));
        assert_eq!(ds.qos_associations("q1").await.expect("assoc").len(), 1);
        assert_eq!(ds.volume_type_qos(t).await.expect("qos of type").as_deref(), Some("q1"));
        assert!(matches!(ds.qos_delete("q1", false).await, Err(DbError::Conflict { .. })));
        ds.qos_disassociate("q1", Some(t)).await.expect("disassociate");
        ds.qos_associate("q1", t).await.expect("associate");
        ds.qos_disassociate("q1", None).await.expect("disassociate all");
        ds.qos_associate("q1", t).await.expect("associate");
        ds.qos_delete("q1", true).await.expect("forced");
        assert_eq!(ds.volume_type_qos(t).await.expect("qos of type"), None);
        ds.qos_set_specs("q2", r#"{"a":"1"}"#).await.expect("specs");
        assert_eq!(ds.qos_get("q2").await.expect("q2").spec_map().get("a").map(String::as_str), Some("1"));
        let e = EncryptionRow {
            volume_type_id: t.into(),
            encryption_id: "e1".into(),
            provider: "luks".into(),
            cipher: None,
            key_size: Some(256),
            control_location: "front-end".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
        };
        ds.encryption_create(&e).await.expect("encryption");
        assert!(matches!(
            ds.encryption_create(&EncryptionRow { encryption_id: "e2".into(), ..e.clone() }).await,
            Err(DbError::Conflict { .. })
        ));
        let u = ds.encryption_update(&EncryptionRow { key_size: None, ..e.clone() }).await.expect("update");
        assert_eq!(u.key_size, None);
        ds.encryption_delete(t).await.expect("delete");
        assert_eq!(ds.encryption_get(t).await.expect("get"), None);
        assert!(matches!(ds.encryption_delete(t).await, Err(DbError::NotFound { .. })));
    }
}
