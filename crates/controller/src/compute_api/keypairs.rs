//! Key pairs (`/os-keypairs`): Nova's rules. A key pair belongs to a user
//! (not a project): any user may manage their own, an admin anyone's
//! (`user_id`, microversion 2.10+). Names are 1–255 characters of letters,
//! digits, `-`, `_` and space; an uploaded public key is parsed before it is
//! stored; a generated private key is returned once and never stored; the
//! `key_pairs` quota counts per user.

use super::{ComputeApi, ComputeError};
use stratus_auth::AuthContext;
use stratus_db::{DbError, KeypairRow, NewKeypair};
use stratus_keys::KeyType;
use tracing::info;

/// A checked create request.
#[derive(Clone, Debug)]
pub struct KeypairCreate {
    /// Name.
    pub name: String,
    /// Public key to import; `None` generates a key pair.
    pub public_key: Option<String>,
    /// `ssh` or `x509`.
    pub key_type: KeyType,
    /// Owner other than the caller (admin, 2.10+).
    pub user_id: Option<String>,
    /// Names may also hold `@` and `.` (Nova 2.92).
    pub names_v292: bool,
}

/// A created key pair: the stored row and, when generated, the private key.
#[derive(Clone, Debug)]
pub struct KeypairCreated {
    /// As stored.
    pub row: KeypairRow,
    /// The private half of a generated key pair (shown once).
    pub private_key: Option<String>,
}

/// Nova's key pair name rule (before 2.92): 1–255 characters, only
/// letters, digits, `-`, `_` and spaces.
pub fn check_keypair_name(name: &str) -> Result<(), ComputeError> {
    check_keypair_name_at(name, false)
}

/// Nova's key pair name rule, with `@` and `.` allowed too from 2.92 (`v292`).
pub fn check_keypair_name_at(name: &str, v292: bool) -> Result<(), ComputeError> {
    let n = name.chars().count();
    if n == 0 || n > 255 {
        return Err(ComputeError::BadRequest(
            "Keypair name must be string and between 1 and 255 characters long".into(),
        ));
    }
    let extra = |c: char| v292 && matches!(c, '@' | '.');
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ') || extra(c)) {
        return Err(ComputeError::BadRequest("Keypair name contains unsafe characters".into()));
    }
    Ok(())
}

impl ComputeApi {
    /// Whose key pairs a call acts on: the caller's own, or (admins only)
    /// the user named in the request.
    fn keypair_owner(&self, ctx: &AuthContext, user_id: Option<&str>, rule: &str) -> Result<String, ComputeError> {
        match user_id {
            Some(u) if u != ctx.user_id && !ctx.is_admin() => Err(ComputeError::Forbidden(format!(
                "Policy doesn't allow os_compute_api:os-keypairs:{rule} to be performed."
            ))),
            Some(u) => Ok(u.to_string()),
            None => Ok(ctx.user_id.clone()),
        }
    }

    /// The 404 of a key pair, in Nova's words.
    fn keypair_not_found(name: &str, user: &str) -> ComputeError {
        ComputeError::KeypairNotFound { name: name.to_string(), user: user.to_string() }
    }

    /// `POST /os-keypairs`.
    pub async fn keypair_create(&self, ctx: &AuthContext, req: KeypairCreate) -> Result<KeypairCreated, ComputeError> {
        let owner = self.keypair_owner(ctx, req.user_id.as_deref(), "create")?;
        check_keypair_name_at(&req.name, req.names_v292)?;
        let (public_key, fingerprint, private_key) = match &req.public_key {
            Some(text) => {
                let k = stratus_keys::import(req.key_type, text).map_err(|e| {
                    if let stratus_keys::KeyError::Invalid(why) = &e {
                        info!(user = %owner, key_pair = %req.name, why = %why, "uploaded public key refused");
                    }
                    ComputeError::BadRequest(e.to_string())
                })?;
                (k.text, k.fingerprint, None)
            }
            None => {
                let user = owner.clone();
                let kind = req.key_type;
                let g = tokio::task::spawn_blocking(move || stratus_keys::generate(kind, &user))
                    .await
                    .map_err(|e| ComputeError::KeyGeneration(format!("the key generation task did not finish: {e}")))?
                    .map_err(|e| ComputeError::KeyGeneration(e.to_string()))?;
                (g.public_key, g.fingerprint, Some(g.private_key))
            }
        };
        let limit = self.quota_limits(&ctx.project_id).await?.key_pairs;
        let new = NewKeypair {
            user_id: owner,
            name: req.name.clone(),
            key_type: req.key_type.as_str().into(),
            public_key,
            fingerprint,
        };
        match self.ds.keypair_create(&new, limit).await {
            Ok(row) => Ok(KeypairCreated { row, private_key }),
            Err(DbError::QuotaExceeded(_)) => {
                Err(ComputeError::QuotaExceeded("Quota exceeded, too many key pairs.".into()))
            }
            Err(DbError::Conflict { detail, .. }) => Err(ComputeError::Conflict(detail)),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /os-keypairs` (of another user: admin, 2.10+).
    pub async fn keypair_list(
        &self,
        ctx: &AuthContext,
        user_id: Option<&str>,
    ) -> Result<Vec<KeypairRow>, ComputeError> {
        let owner = self.keypair_owner(ctx, user_id, "index")?;
        Ok(self.ds.keypair_list(&owner).await?)
    }

    /// `GET /os-keypairs/{name}`.
    pub async fn keypair_get(
        &self,
        ctx: &AuthContext,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<KeypairRow, ComputeError> {
        let owner = self.keypair_owner(ctx, user_id, "show")?;
        match self.ds.keypair_get(&owner, name).await {
            Err(DbError::NotFound { .. }) => Err(Self::keypair_not_found(name, &owner)),
            other => Ok(other?),
        }
    }

    /// `DELETE /os-keypairs/{name}`.
    pub async fn keypair_delete(
        &self,
        ctx: &AuthContext,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<(), ComputeError> {
        let owner = self.keypair_owner(ctx, user_id, "delete")?;
        match self.ds.keypair_delete(&owner, name).await {
            Err(DbError::NotFound { .. }) => Err(Self::keypair_not_found(name, &owner)),
            other => Ok(other?),
        }
    }
}
