//! A volume from a Nova snapshot image (Block Storage 3.46): the image
//! Nova makes of a volume-backed server holds no data, only a
//! `block_device_mapping` property naming the boot volume's snapshot; a
//! volume created from such an image is built from that snapshot (Cinder's
//! `_get_image_snapshot`).

use crate::{Missing, VolumeError, VolumeService};
use serde_json::Value;
use stratus_auth::AuthContext;

impl VolumeService {
    /// The snapshot a volume created from image `image_ref` is built from
    /// instead (3.46): the `snapshot_id` of the image's boot mapping
    /// (`source_type` `snapshot`, `boot_index` 0), which the caller must
    /// see (Cinder's 404 otherwise); `None` for an ordinary image.
    pub async fn image_boot_snapshot(&self, ctx: &AuthContext, image_ref: &str) -> Result<Option<String>, VolumeError> {
        let image = self.resolve_image(ctx, image_ref).await?;
        let Some(sid) = boot_snapshot_of(&image.properties) else {
            return Ok(None);
        };
        match self.snapshot_visible(ctx, &sid).await {
            Ok(s) => Ok(Some(s.id)),
            Err(VolumeError::NotFound { .. }) => Err(VolumeError::not_found(Missing::ImageBootSnapshot, sid)),
            Err(e) => Err(e),
        }
    }
}

/// The boot snapshot named by an image's properties (a JSON object whose
/// `block_device_mapping` is a list, or a JSON string of one, as Nova
/// stores it in Glance).
fn boot_snapshot_of(properties: &str) -> Option<String> {
    let props: Value = serde_json::from_str(properties).ok()?;
    let bdms = match props.get("block_device_mapping")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v => v.clone(),
    };
    bdms.as_array()?
        .iter()
        .find(|b| {
            b.get("source_type").and_then(Value::as_str) == Some("snapshot")
                && b.get("boot_index").and_then(Value::as_i64) == Some(0)
        })
        .and_then(|b| b.get("snapshot_id").and_then(Value::as_str))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::boot_snapshot_of;

    /// Cinder's `_get_image_snapshot`: the mapping with `source_type`
    /// `snapshot` and `boot_index` 0, from a list or Nova's JSON string.
    #[test]
    fn boot_snapshot_is_read_as_cinder_does() {
        let bdm = r#"[{"source_type": "volume", "boot_index": 0, "snapshot_id": "no"}, {"source_type": "snapshot", "boot_index": 0, "snapshot_id": "s1"}]"#;
        let as_string = serde_json::json!({ "block_device_mapping": bdm }).to_string();
        assert_eq!(boot_snapshot_of(&as_string).as_deref(), Some("s1"));
        let as_list = format!(r#"{{"block_device_mapping": {bdm}}}"#);
        assert_eq!(boot_snapshot_of(&as_list).as_deref(), Some("s1"));
        let not_boot =
            r#"{"block_device_mapping": [{"source_type": "snapshot", "boot_index": 1, "snapshot_id": "s"}]}"#;
        assert_eq!(boot_snapshot_of(not_boot), None);
        assert_eq!(boot_snapshot_of("{}"), None);
        assert_eq!(boot_snapshot_of("not json"), None);
    }
}
