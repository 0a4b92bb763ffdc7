//! The [`BootSpec`] of a spawn: what a real hypervisor needs beyond vCPUs and
//! RAM, read here because the agent has no database. The root disk size comes
//! from the flavor; the kernel, ramdisk and kernel command line from the Glance
//! properties (`kernel_id`, `ramdisk_id`, `os_command_line`) of the image the
//! server boots: the spawn's image, else the server's own image (a shelve
//! snapshot does not carry them; Nova's inherit them from the instance), else
//! for a boot-from-volume server the image its root volume was built from.

use serde_json::{Map, Value};
use stratus_db::{Datastore, DbError, ServerRow};
use stratus_types::ImageId;
use stratus_types::agent::BootSpec;
use tracing::warn;

/// The Glance properties that make an image boot with its own kernel.
const BOOT_KEYS: [&str; 3] = ["kernel_id", "ramdisk_id", "os_command_line"];

/// The boot spec for spawning `server` from `image` with a `root_gb` root disk.
/// A missing image or root volume is not an error here (resize, evacuate and
/// unshelve must still work after the image was deleted): the spec then names
/// no kernel and the driver decides whether it can boot.
pub(crate) async fn boot_spec(
    ds: &Datastore,
    server: &ServerRow,
    image: Option<ImageId>,
    root_gb: i64,
) -> Result<BootSpec, DbError> {
    let mut candidates: Vec<ImageId> = image.into_iter().chain(server.image_id).collect();
    if candidates.is_empty()
        && let Some(id) = root_volume_image(ds, server).await?
    {
        candidates.push(id);
    }
    let mut props = Map::new();
    for id in candidates {
        let p = image_props(ds, &id).await?;
        if BOOT_KEYS.iter().any(|k| p.contains_key(*k)) {
            props = p;
            break;
        }
    }
    let image_ref = |key: &str| -> Option<ImageId> {
        let v = props.get(key)?.as_str()?;
        match v.parse::<ImageId>() {
            Ok(id) => Some(id),
            Err(_) => {
                warn!(server = %server.id, key, value = v, "image property is not an image id; ignored");
                None
            }
        }
    };
    Ok(BootSpec {
        root_gb,
        kernel_id: image_ref("kernel_id"),
        ramdisk_id: image_ref("ramdisk_id"),
        kernel_args: props.get("os_command_line").and_then(Value::as_str).map(str::to_string),
    })
}

/// The properties of image `id`; empty when it is gone.
async fn image_props(ds: &Datastore, id: &ImageId) -> Result<Map<String, Value>, DbError> {
    match ds.image_get(id).await {
        Ok(row) => Ok(stratus_image::rules::props_of(&row)),
        Err(DbError::NotFound { .. }) => Ok(Map::new()),
        Err(e) => Err(e),
    }
}

/// The image the server's root volume (boot index 0) was built from, if any.
async fn root_volume_image(ds: &Datastore, server: &ServerRow) -> Result<Option<ImageId>, DbError> {
    let Some(root) = ds.attachment_list_for_server(&server.id).await?.into_iter().find(|a| a.boot_index == Some(0))
    else {
        return Ok(None);
    };
    let volume = match ds.volume_get(&root.volume_id).await {
        Ok(v) => v,
        Err(DbError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(volume.image_id.as_deref().and_then(|s| s.parse().ok()))
}
