//! Typed parameters of each operation kind, as the compute API records
//! them (JSON in the operation row). A payload that does not decode fails
//! the operation loudly instead of running it with defaults.

use crate::compute_api::VolumeBdm;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stratus_db::OperationRow;

/// `create`: the volumes of the block device mapping.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CreateParams {
    /// Volumes to create or attach before the spawn.
    #[serde(default)]
    pub volumes: Vec<VolumeBdm>,
    /// The host an admin asked for (2.74): the only one the scheduler may pick.
    #[serde(default)]
    pub requested_host: Option<String>,
}

/// Power-like operations (`reboot` reads `hard`; the others take nothing).
#[derive(Debug, Deserialize)]
pub(crate) struct PowerParams {
    /// Hard reboot.
    #[serde(default)]
    pub hard: bool,
}

/// `resize`: the new flavor; none for a cold migration.
#[derive(Debug, Deserialize)]
pub(crate) struct ResizeParams {
    /// Target flavor id.
    pub flavor_id: Option<String>,
    /// The destination an admin chose for a cold migration (2.56).
    #[serde(default)]
    pub host: Option<String>,
}

/// `evacuate`: the destination the admin chose, if any, and whether the
/// server ends stopped.
#[derive(Debug, Deserialize)]
pub(crate) struct EvacuateParams {
    /// Destination host; `None`: the scheduler picks.
    #[serde(default)]
    pub host: Option<String>,
    /// Power the rebuilt VM off (it was stopped, or 2.95 asked so).
    #[serde(default)]
    pub stopped: bool,
}

/// `create_image`: the snapshot image to create.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateImageParams {
    /// Image id chosen by the API (defaults to the operation id).
    pub image_id: Option<stratus_types::ImageId>,
    /// Image name.
    pub name: Option<String>,
    /// Extra image properties.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// `createBackup`: rotate the server's backups of a type afterwards.
    #[serde(default)]
    pub backup: Option<BackupParams>,
}

/// `createBackup`'s rotation.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BackupParams {
    /// The backup type.
    pub backup_type: String,
    /// How many backups of the type to keep.
    pub rotation: u32,
}

/// `rebuild`: the image to make the VM from again, and whether the server
/// was stopped (it is left stopped, as Nova does).
#[derive(Debug, Deserialize)]
pub(crate) struct RebuildParams {
    /// The new image.
    pub image_id: stratus_types::ImageId,
    /// The server was stopped when the rebuild was asked for.
    #[serde(default)]
    pub stopped: bool,
    /// Re-image the root volume of a volume-backed server (2.93).
    #[serde(default)]
    pub reimage: bool,
}

/// `attach_volume` / `detach_volume`: the attachment acted on.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct VolumeParams {
    /// Attachment id.
    pub attachment_id: stratus_types::AttachmentId,
}

/// Operations that take no parameters (an object, usually empty).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NoParams {}

/// The JSON the operation row keeps (these structs always serialize).
pub(crate) fn encode<P: Serialize>(p: &P) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

/// Decode `op`'s parameters; the error says which operation and why.
pub(crate) fn decode<P: DeserializeOwned>(op: &OperationRow) -> Result<P, String> {
    serde_json::from_str(&op.params).map_err(|e| format!("invalid parameters of {} operation {}: {e}", op.kind, op.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed id of the fixture operation (the failure message names it).
    const OP_ID: stratus_types::OperationId = stratus_types::OperationId(uuid::Uuid::from_u128(0x0b));

    fn op(params: &str) -> OperationRow {
        OperationRow {
            id: OP_ID,
            kind: stratus_types::OpKind::Reboot,
            server_id: stratus_types::ServerId::new(),
            state: stratus_types::OpState::Running,
            step: "start".into(),
            request_id: "r".into(),
            user_id: "u".into(),
            project_id: "p".into(),
            params: params.into(),
            claimed_by: None,
            claim_expires_at: None,
            attempts: 1,
            last_error: None,
            created_at: stratus_db::SET_ON_INSERT,
        }
    }

    #[test]
    fn params_decode_or_fail_loudly() {
        assert!(decode::<PowerParams>(&op(r#"{"hard":true}"#)).is_ok_and(|p| p.hard));
        assert!(decode::<NoParams>(&op("{}")).is_ok());
        assert!(decode::<VolumeParams>(&op("{}")).is_err());
        let e = decode::<PowerParams>(&op(r#"{"hard":"yes"}"#)).err().unwrap_or_default();
        assert!(e.contains(&format!("invalid parameters of reboot operation {OP_ID}")), "{e}");
    }
}
