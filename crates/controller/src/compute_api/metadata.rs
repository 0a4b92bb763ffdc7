//! Server metadata (`/servers/{id}/metadata`): Nova's rules for who may
//! change it and when (member or admin; not while locked; only in a settled
//! state), its quota (`metadata_items`), and an edit that never loses a
//! concurrent one (compare-and-swap on the stored object).

use super::{ComputeApi, ComputeError};
use std::collections::BTreeMap;
use stratus_auth::AuthContext;
use stratus_db::ServerRow;
use stratus_types::{VmState, invalid_state_message};

/// One change to a server's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataChange {
    /// `PUT /metadata`: these entries and no others.
    Replace(BTreeMap<String, String>),
    /// `POST /metadata`: these entries added or overwritten, the rest kept.
    Merge(BTreeMap<String, String>),
    /// `PUT /metadata/{key}`: one entry set.
    Set(String, String),
    /// `DELETE /metadata/{key}`: one entry removed (404 if absent).
    Remove(String),
}

impl MetadataChange {
    /// The method name Nova's state-conflict message uses.
    fn method(&self) -> &'static str {
        match self {
            Self::Remove(_) => "delete_instance_metadata",
            _ => "update_instance_metadata",
        }
    }
}

/// Nova's `vm_state`s in which metadata may change (with no task running).
const SETTLED: [VmState; 4] = [VmState::Active, VmState::Paused, VmState::Suspended, VmState::Stopped];

/// How many times an edit that lost a race re-reads and tries again.
const SWAP_ATTEMPTS: usize = 16;

/// The 404 of a key a server's metadata does not have, in Nova's words.
fn no_item() -> ComputeError {
    ComputeError::MetadataItemNotFound
}

/// The stored metadata object of a server (corrupt text reads as empty: the
/// column is only ever written from a map).
fn stored(s: &ServerRow) -> BTreeMap<String, String> {
    serde_json::from_str(&s.metadata).unwrap_or_default()
}

impl ComputeApi {
    /// `GET /servers/{id}/metadata`.
    pub async fn server_metadata(&self, ctx: &AuthContext, id: &str) -> Result<BTreeMap<String, String>, ComputeError> {
        Ok(stored(&self.get_visible(ctx, id).await?))
    }

    /// `GET /servers/{id}/metadata/{key}`: the value, 404 if the key is absent.
    pub async fn server_metadata_item(&self, ctx: &AuthContext, id: &str, key: &str) -> Result<String, ComputeError> {
        stored(&self.get_visible(ctx, id).await?).remove(key).ok_or_else(no_item)
    }

    /// Apply `change` and return the metadata as it now is. `change` is the
    /// parsed body or why it was refused: existence and policy are checked
    /// first (a 403 or 404 never hides behind a 400), then the body, the
    /// lock, the state and the quota (Nova's order).
    pub async fn change_server_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        change: Result<MetadataChange, String>,
    ) -> Result<BTreeMap<String, String>, ComputeError> {
        let mut s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:server-metadata:update to be performed.".into(),
            ));
        }
        let change = change.map_err(ComputeError::BadRequest)?;
        let limit = self.quota_limits(&s.project_id).await?.metadata_items;
        for _ in 0..SWAP_ATTEMPTS {
            if s.locked && !ctx.is_admin() {
                return Err(ComputeError::Locked { id: id.to_string() });
            }
            if !SETTLED.contains(&s.vm_state) {
                let msg = invalid_state_message("vm_state", s.vm_state.as_str(), change.method(), &id);
                return Err(ComputeError::Conflict(msg));
            }
            if let Some(t) = s.task_state {
                return Err(ComputeError::Conflict(invalid_state_message(
                    "task_state",
                    t.as_str(),
                    change.method(),
                    &id,
                )));
            }
            let mut m = stored(&s);
            match change.clone() {
                MetadataChange::Replace(new) => m = new,
                MetadataChange::Merge(new) => m.extend(new),
                MetadataChange::Set(k, v) => {
                    m.insert(k, v);
                }
                MetadataChange::Remove(k) => {
                    m.remove(&k).ok_or_else(no_item)?;
                }
            }
            if limit >= 0 && i64::try_from(m.len()).unwrap_or(i64::MAX) > limit {
                return Err(ComputeError::QuotaExceeded(format!(
                    "Quota exceeded for metadata_items: Requested {}, but limit is {limit}",
                    m.len()
                )));
            }
            let new = serde_json::to_string(&m).map_err(|e| ComputeError::BadRequest(e.to_string()))?;
            match self.ds.server_metadata_swap(&s.id, &s.metadata, &new).await {
                Ok(true) => return Ok(m),
                Ok(false) => s = self.get_visible(ctx, id).await?,
                Err(stratus_db::DbError::NotFound { .. }) => return Err(ComputeError::instance_not_found(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ComputeError::Conflict(format!(
            "The metadata of instance {id} is being changed by other requests; try again"
        )))
    }
}
