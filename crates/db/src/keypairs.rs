//! Key pairs (Nova's `os-keypairs`): owned by a user, unique by name per
//! user, counted against the user's `key_pairs` quota in the same
//! transaction that records one.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// A stored key pair (public half only).
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct KeypairRow {
    /// Row id (Nova shows it in the detail view).
    pub id: i64,
    /// Owner.
    pub user_id: String,
    /// Name, unique per user.
    pub name: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    /// OpenSSH line or PEM certificate.
    pub public_key: String,
    /// Nova's fingerprint of the public key.
    pub fingerprint: String,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

/// A key pair to record.
#[derive(Clone, Debug)]
pub struct NewKeypair {
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    /// Public key text.
    pub public_key: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

const COLS: &str = "id, user_id, name, key_type, public_key, fingerprint, created_at";

impl Datastore {
    /// Record a key pair unless its user already has one of that name
    /// (`Conflict`) or already holds `limit` of them (`QuotaExceeded`,
    /// unless `limit` is negative), in one transaction so two creates at
    /// once cannot both pass the count.
    pub async fn keypair_create(&self, k: &NewKeypair, limit: i64) -> Result<KeypairRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM key_pairs WHERE user_id = $1")
                .bind(&k.user_id)
                .fetch_one(&mut *tx)
                .await?;
            if crate::exceeds(held, 1, limit) {
                return Err(DbError::QuotaExceeded(crate::QuotaExceeded {
                    overs: vec!["key_pairs"],
                    requested: vec![1],
                    used: vec![held],
                    allowed: vec![limit],
                }));
            }
            let row: KeypairRow = sqlx::query_as(&format!("INSERT INTO key_pairs (user_id, name, key_type, public_key, fingerprint, created_at) VALUES ($1,$2,$3,$4,$5,$6) RETURNING {COLS}"))
                .bind(&k.user_id).bind(&k.name).bind(&k.key_type).bind(&k.public_key).bind(&k.fingerprint).bind(self.now())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| if crate::is_unique_violation(&e) { DbError::conflict(RowKind::Keypair, format!("Key pair '{}' already exists.", k.name)) } else { e.into() })?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A user's key pairs by name.
    pub async fn keypair_list(&self, user_id: &str) -> Result<Vec<KeypairRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {COLS} FROM key_pairs WHERE user_id = $1 ORDER BY name"))
                .bind(user_id)
                .fetch_all(rp)
                .await?)
        })
    }

    /// One key pair of a user.
    pub async fn keypair_get(&self, user_id: &str, name: &str) -> Result<KeypairRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {COLS} FROM key_pairs WHERE user_id = $1 AND name = $2"))
                .bind(user_id)
                .bind(name)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Keypair, name))
        })
    }

    /// Remove a key pair (`NotFound` if the user has none of that name).
    pub async fn keypair_delete(&self, user_id: &str, name: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM key_pairs WHERE user_id = $1 AND name = $2").bind(user_id).bind(name),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Keypair, name));
            }
            Ok(())
        })
    }

    /// How many key pairs a user holds (quota usage).
    pub async fn keypair_count(&self, user_id: &str) -> Result<i64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM key_pairs WHERE user_id = $1").bind(user_id).fetch_one(rp).await?;
            Ok(n)
        })
    }
}
