//! QoS specs and encryption types, admin-only as in Cinder. QoS specs are
//! kept and associated with volume types for clients that manage them; the
//! one backend applies no limits. Encryption types are kept too, but this
//! cloud does not encrypt volumes yet: a volume of an encrypted type is
//! refused (400) at create and retype, never silently made in plaintext.

use crate::types::check_type_admin;
use crate::{Missing, VolumeError, VolumeService};
use std::collections::BTreeMap;
use stratus_auth::AuthContext;
use stratus_db::{DbError, EncryptionRow, QosSpecRow};
use tracing::info;

/// The consumers a QoS spec may name (Cinder's list).
pub const QOS_CONSUMERS: [&str; 3] = ["front-end", "back-end", "both"];

/// Where an encryptor runs (Cinder's `control_location` values).
pub const CONTROL_LOCATIONS: [&str; 2] = ["front-end", "back-end"];

/// The changes of an encryption create or update (absent: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionChange {
    /// Encryptor class.
    pub provider: Option<String>,
    /// Cipher (`Some(None)`: cleared).
    pub cipher: Option<Option<String>>,
    /// Key size in bits (`Some(None)`: cleared).
    pub key_size: Option<Option<i64>>,
    /// `front-end` or `back-end`.
    pub control_location: Option<String>,
}

fn qos_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::QosSpec, id)
}

fn specs_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

impl VolumeService {
    /// `POST /qos-specs` (admins): a unique name, a consumer (default
    /// `back-end`) and string specs.
    pub async fn qos_create(
        &self,
        ctx: &AuthContext,
        name: &str,
        consumer: Option<&str>,
        specs: BTreeMap<String, String>,
    ) -> Result<QosSpecRow, VolumeError> {
        check_type_admin(ctx, "volume_extension:qos_specs_manage:create")?;
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(VolumeError::BadRequest(
                "Invalid input received: QoS specs name must be 1 to 255 characters and not blank.".into(),
            ));
        }
        let consumer = consumer.unwrap_or("back-end");
        if !QOS_CONSUMERS.contains(&consumer) {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: Valid consumer of QoS specs are: {QOS_CONSUMERS:?}, not {consumer}."
            )));
        }
        let row = QosSpecRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            consumer: consumer.to_string(),
            specs: specs_json(&specs),
        };
        let row = self.ds.qos_create(&row).await?;
        info!(qos = %row.id, name, by = %ctx.user_id, "qos specs created");
        Ok(row)
    }

    /// One QoS spec (admins); 404 when unknown.
    pub async fn qos_get(&self, ctx: &AuthContext, id: &str) -> Result<QosSpecRow, VolumeError> {
        check_type_admin(ctx, "volume_extension:qos_specs_manage:get")?;
        match self.ds.qos_get(id).await {
            Ok(q) => Ok(q),
            Err(DbError::NotFound { .. }) => Err(qos_missing(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Every QoS spec (admins).
    pub async fn qos_list(&self, ctx: &AuthContext) -> Result<Vec<QosSpecRow>, VolumeError> {
        check_type_admin(ctx, "volume_extension:qos_specs_manage:get_all")?;
        Ok(self.ds.qos_list().await?)
    }

    /// `PUT /qos-specs/{id}` (admins): add or overwrite keys.
    pub async fn qos_set_keys(
        &self,
        ctx: &AuthContext,
        id: &str,
        set: &BTreeMap<String, String>,
    ) -> Result<(), VolumeError> {
        let q = self.qos_get(ctx, id).await?;
        check_type_admin(ctx, "volume_extension:qos_specs_manage:update")?;
        let mut specs = q.spec_map();
        specs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.ds.qos_set_specs(id, &specs_json(&specs)).await?;
        Ok(())
    }

    /// `PUT /qos-specs/{id}/delete_keys` (admins): a key it lacks is 404.
    pub async fn qos_unset_keys(&self, ctx: &AuthContext, id: &str, keys: &[String]) -> Result<(), VolumeError> {
        let q = self.qos_get(ctx, id).await?;
        check_type_admin(ctx, "volume_extension:qos_specs_manage:update")?;
        let mut specs = q.spec_map();
        for k in keys {
            if specs.remove(k).is_none() {
                return Err(VolumeError::not_found(Missing::QosSpecKey { qos: id.to_string() }, k.clone()));
            }
        }
        self.ds.qos_set_specs(id, &specs_json(&specs)).await?;
        Ok(())
    }

    /// The volume types a QoS spec is associated with: (id, name).
    pub async fn qos_associations(&self, ctx: &AuthContext, id: &str) -> Result<Vec<(String, String)>, VolumeError> {
        self.qos_get(ctx, id).await?;
        Ok(self.ds.qos_associations(id).await?)
    }

    /// Associate a volume type (404 when unknown; 400 when it has another spec).
    pub async fn qos_associate(&self, ctx: &AuthContext, id: &str, type_id: &str) -> Result<(), VolumeError> {
        self.qos_get(ctx, id).await?;
        check_type_admin(ctx, "volume_extension:qos_specs_manage:update")?;
        let t = self.type_get(ctx, type_id).await?;
        match self.ds.qos_associate(id, &t.id).await {
            Ok(()) => Ok(()),
            Err(DbError::Conflict { detail, .. }) => {
                Err(VolumeError::BadRequest(format!("Invalid volume type: {detail}.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Dissociate one volume type (`Some`, 404 when unknown) or all (`None`).
    pub async fn qos_disassociate(
        &self,
        ctx: &AuthContext,
        id: &str,
        type_id: Option<&str>,
    ) -> Result<(), VolumeError> {
        self.qos_get(ctx, id).await?;
        check_type_admin(ctx, "volume_extension:qos_specs_manage:update")?;
        let t = match type_id {
            Some(t) => Some(self.type_get(ctx, t).await?.id),
            None => None,
        };
        Ok(self.ds.qos_disassociate(id, t.as_deref()).await?)
    }

    /// `DELETE /qos-specs/{id}` (admins): refused (400) while associated,
    /// unless `force`.
    pub async fn qos_delete(&self, ctx: &AuthContext, id: &str, force: bool) -> Result<(), VolumeError> {
        self.qos_get(ctx, id).await?;
        check_type_admin(ctx, "volume_extension:qos_specs_manage:delete")?;
        match self.ds.qos_delete(id, force).await {
            Ok(()) => {}
            Err(DbError::Conflict { detail, .. }) => return Err(VolumeError::BadRequest(detail)),
            Err(DbError::NotFound { .. }) => return Err(qos_missing(id)),
            Err(e) => return Err(e.into()),
        }
        info!(qos = id, force, by = %ctx.user_id, "qos specs deleted");
        Ok(())
    }

    /// A type's encryption spec (admins; 404 for an unknown type).
    pub async fn encryption_show(
        &self,
        ctx: &AuthContext,
        type_id: &str,
    ) -> Result<Option<EncryptionRow>, VolumeError> {
        check_type_admin(ctx, "volume_extension:volume_type_encryption:get")?;
        let t = self.type_get(ctx, type_id).await?;
        Ok(self.ds.encryption_get(&t.id).await?)
    }

    /// The type of an encryption change (admins): it must exist (404) and no
    /// live volume may use it (Cinder's 400: the change would not apply to them).
    pub async fn encryption_type_for_change(
        &self,
        ctx: &AuthContext,
        type_id: &str,
        policy: &str,
        verb: &str,
    ) -> Result<String, VolumeError> {
        check_type_admin(ctx, policy)?;
        let t = self.type_get(ctx, type_id).await?;
        if self.ds.volume_type_in_use(&t.id).await? {
            return Err(VolumeError::BadRequest(format!("Cannot {verb} encryption specs. Volume type in use.")));
        }
        Ok(t.id)
    }

    /// `POST /types/{id}/encryption` (admins): `provider` is required,
    /// `control_location` defaults to `front-end`; one per type (400).
    pub async fn encryption_create(
        &self,
        ctx: &AuthContext,
        type_id: &str,
        c: EncryptionChange,
    ) -> Result<EncryptionRow, VolumeError> {
        let tid = self
            .encryption_type_for_change(ctx, type_id, "volume_extension:volume_type_encryption:create", "create")
            .await?;
        let Some(provider) = c.provider else {
            return Err(VolumeError::BadRequest(
                "Invalid input for field/attribute encryption. 'provider' is a required property".into(),
            ));
        };
        let row = EncryptionRow {
            volume_type_id: tid,
            encryption_id: uuid::Uuid::new_v4().to_string(),
            provider,
            cipher: c.cipher.flatten(),
            key_size: c.key_size.flatten(),
            control_location: c.control_location.unwrap_or_else(|| "front-end".into()),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
        };
        match self.ds.encryption_create(&row).await {
            Ok(r) => Ok(r),
            Err(DbError::Conflict { detail, .. }) => Err(VolumeError::BadRequest(detail)),
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /types/{id}/encryption/{encryption_id}` (admins).
    pub async fn encryption_update(
        &self,
        ctx: &AuthContext,
        type_id: &str,
        encryption_id: &str,
        c: EncryptionChange,
    ) -> Result<EncryptionRow, VolumeError> {
        let tid = self
            .encryption_type_for_change(ctx, type_id, "volume_extension:volume_type_encryption:update", "update")
            .await?;
        let cur = self.encryption_of(&tid, encryption_id).await?;
        let row = EncryptionRow {
            provider: c.provider.unwrap_or(cur.provider.clone()),
            cipher: c.cipher.unwrap_or(cur.cipher.clone()),
            key_size: c.key_size.unwrap_or(cur.key_size),
            control_location: c.control_location.unwrap_or(cur.control_location.clone()),
            ..cur
        };
        Ok(self.ds.encryption_update(&row).await?)
    }

    /// `DELETE /types/{id}/encryption/{encryption_id}` (admins).
    pub async fn encryption_delete(
        &self,
        ctx: &AuthContext,
        type_id: &str,
        encryption_id: &str,
    ) -> Result<(), VolumeError> {
        let tid = self
            .encryption_type_for_change(ctx, type_id, "volume_extension:volume_type_encryption:delete", "delete")
            .await?;
        self.encryption_of(&tid, encryption_id).await?;
        match self.ds.encryption_delete(&tid).await {
            Ok(()) => Ok(()),
            Err(DbError::NotFound { .. }) => Err(VolumeError::not_found(Missing::Encryption, type_id)),
            Err(e) => Err(e.into()),
        }
    }

    async fn encryption_of(&self, type_id: &str, encryption_id: &str) -> Result<EncryptionRow, VolumeError> {
        match self.ds.encryption_get(type_id).await? {
            Some(e) if e.encryption_id == encryption_id => Ok(e),
            _ => Err(VolumeError::not_found(Missing::Encryption, type_id)),
        }
    }

    /// Refuse a volume of an encrypted type (create, retype): this cloud
    /// cannot encrypt yet, and a plaintext volume must never pass for an
    /// encrypted one.
    pub(crate) async fn refuse_encrypted(&self, type_id: &str, type_name: &str) -> Result<(), VolumeError> {
        if self.ds.encryption_get(type_id).await?.is_some() {
            return Err(VolumeError::BadRequest(format!(
                "Invalid input received: volume type {type_name} is encrypted, and this cloud cannot encrypt volumes yet."
            )));
        }
        Ok(())
    }
}
