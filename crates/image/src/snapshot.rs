//! Server snapshots: the images compute takes of a server (`createImage`)
//! and the shelve snapshot a shelved server keeps. The controller writes
//! them only through these methods, so the image service stays the one
//! owner of image records and their bytes.
//!
//! Every method is idempotent, because the operation steps that call them
//! run again after a crash: the snapshot id is chosen by the caller (the
//! operation id or the id the API returned), so a retry finds the record an
//! earlier attempt made, and deleting twice is not an error.

use crate::{ImageError, ImageService};
use serde_json::{Map, Value};
use stratus_db::{DbError, ImageRow};
use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, Visibility};
use stratus_types::{ImageId, ServerId};

/// What a snapshot of a server is made of.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    /// The image id, chosen by the caller so a retried step finds its own record.
    pub id: ImageId,
    /// The image name.
    pub name: String,
    /// The project owning the server (and so the image).
    pub owner_project_id: String,
    /// The server snapshotted (`instance_uuid`).
    pub server_id: ServerId,
    /// The image the server was booted from (`base_image_ref`), if any.
    pub base_image_ref: Option<ImageId>,
    /// The server's root disk size: the smallest disk the snapshot boots on.
    pub min_disk: i64,
    /// Extra properties the user asked for (they override the defaults).
    pub metadata: Map<String, Value>,
}

/// Whether [`ImageService::create_snapshot_record`] made the record now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SnapshotRecord {
    /// The record is new.
    Created,
    /// An earlier attempt already made it; nothing changed.
    AlreadyExists,
}

/// What [`ImageService::delete_snapshot`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SnapshotRemoval {
    /// The record existed and is gone now.
    Deleted,
    /// There was no such record (deleted earlier, or never made).
    AlreadyGone,
}

impl SnapshotSpec {
    /// The record as stored: private, active, qcow2/bare, with the Nova
    /// snapshot properties (`instance_uuid`, `image_type`, `base_image_ref`)
    /// under the user's metadata.
    fn row(&self) -> ImageRow {
        let mut props = Map::new();
        props.insert("instance_uuid".into(), Value::String(self.server_id.to_string()));
        props.insert("image_type".into(), Value::String("snapshot".into()));
        props
            .insert("base_image_ref".into(), self.base_image_ref.map_or(Value::Null, |i| Value::String(i.to_string())));
        // Reserved keys (tags, os_hidden) are never the user's to set; the
        // API refuses them, and a request recorded before that is filtered here.
        for (k, v) in self.metadata.iter().filter(|(k, _)| !k.starts_with(crate::rules::RESERVED_PREFIX)) {
            props.insert(k.clone(), v.clone());
        }
        ImageRow {
            id: self.id,
            name: Some(self.name.clone()),
            owner: self.owner_project_id.clone(),
            // The fake hypervisor captures no bytes: the record is complete as it is.
            status: ImageStatus::Active,
            visibility: Visibility::Private,
            disk_format: Some(DiskFormat::Qcow2),
            container_format: Some(ContainerFormat::Bare),
            size: Some(0),
            checksum: None,
            os_hash_value: None,
            min_disk: self.min_disk,
            min_ram: 0,
            protected: false,
            properties: Value::Object(props).to_string(),
            created_at: stratus_db::SET_ON_INSERT,
            updated_at: stratus_db::SET_ON_INSERT,
        }
    }
}

impl ImageService {
    /// Record the snapshot `spec` describes; a record with its id already
    /// there (an earlier attempt of the same step) is left as it is.
    pub async fn create_snapshot_record(&self, spec: &SnapshotSpec) -> Result<SnapshotRecord, ImageError> {
        match self.ds.image_create(&spec.row()).await {
            Ok(()) => Ok(SnapshotRecord::Created),
            Err(DbError::Conflict { .. }) => Ok(SnapshotRecord::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Take the bytes a host wrote for snapshot `id` (a captured root disk,
    /// raw) into its record: size, checksums, `disk_format` raw. Returns
    /// whether there were bytes (a fake VM's snapshot has none and keeps its
    /// empty record). Idempotent: a retried step hashes the same file again.
    pub async fn adopt_snapshot_bytes(&self, id: &ImageId) -> Result<bool, ImageError> {
        let path = crate::store::data_path(self.image_dir(), id);
        let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<Option<(u64, String, String)>> {
            use md5::Digest as _;
            use std::io::Read as _;
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let (mut md5, mut sha) = (md5::Md5::new(), sha2::Sha512::new());
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
                sha.update(&buf[..n]);
                size += n as u64;
            }
            Ok(Some((size, hex::encode(md5.finalize()), hex::encode(sha.finalize()))))
        })
        .await
        .map_err(|e| ImageError::io("hashing a snapshot", std::io::Error::other(e)))?
        .map_err(|e| ImageError::io("hashing a snapshot", e))?;
        let Some((size, md5, sha512)) = hashed else { return Ok(false) };
        let mut row = self.ds.image_get(id).await?;
        row.disk_format = Some(DiskFormat::Raw);
        self.ds.image_update(&row).await?;
        let size =
            i64::try_from(size).map_err(|_| ImageError::io("sizing a snapshot", std::io::Error::other("too large")))?;
        self.ds.image_set_data(id, size, &md5, &sha512).await?;
        Ok(true)
    }

    /// Record on a volume-backed server's snapshot image the volume
    /// snapshots it maps, as Nova writes them (`bdm_v2`,
    /// `root_device_name` and `block_device_mapping`, a JSON list in one
    /// string property): booting from the image makes the volumes again.
    /// The image holds no bytes (its record's size stays 0). Idempotent.
    pub async fn set_volume_mappings(
        &self,
        id: &ImageId,
        mappings: &[Value],
        root_device_name: &str,
    ) -> Result<(), ImageError> {
        let mut row = self.ds.image_get(id).await?;
        let mut props: Map<String, Value> = serde_json::from_str(&row.properties).unwrap_or_default();
        props.insert("bdm_v2".into(), Value::String("True".into()));
        props.insert("root_device_name".into(), Value::String(root_device_name.into()));
        props.insert("block_device_mapping".into(), Value::String(Value::Array(mappings.to_vec()).to_string()));
        row.properties = Value::Object(props).to_string();
        self.ds.image_update(&row).await?;
        Ok(())
    }

    /// Does a host's copy of a root disk exist under `id` (a transient,
    /// record-less copy carried from one host to another on a move)?
    pub fn has_carried_disk(&self, id: &ImageId) -> bool {
        crate::store::data_path(self.image_dir(), id).exists()
    }

    /// Remove a carried root-disk copy once the destination built its own
    /// disk from it (idempotent).
    pub async fn remove_carried_disk(&self, id: &ImageId) -> Result<(), ImageError> {
        self.remove_data(id).await
    }

    /// Delete a snapshot's record and bytes, whoever may see it (the caller
    /// is the system cleaning up after a server, not a user). Deleting one
    /// that is already gone is not an error: the result says which it was.
    /// `id` is parsed here: text that is not an image id in our spelling
    /// never named a record, so there is nothing to delete.
    pub async fn delete_snapshot(&self, id: &str) -> Result<SnapshotRemoval, ImageError> {
        let Some(id) = ImageId::parse_canonical(id) else { return Ok(SnapshotRemoval::AlreadyGone) };
        let id = &id;
        // Bytes first: a crash in between leaves a record a retry deletes,
        // never a file no record points at.
        self.remove_data(id).await?;
        match self.ds.image_delete(id).await {
            Ok(()) => Ok(SnapshotRemoval::Deleted),
            Err(DbError::NotFound { .. }) => Ok(SnapshotRemoval::AlreadyGone),
            Err(e) => Err(e.into()),
        }
    }

    /// Keep only the `rotation` newest backups of `backup_type` that
    /// `createBackup` made of `server_id` in `owner`'s images (Nova's
    /// rotation, run once the new backup is recorded; 0 keeps none).
    /// Returns the backups deleted, oldest first.
    pub async fn rotate_backups(
        &self,
        owner: &str,
        server_id: &stratus_types::ServerId,
        backup_type: &str,
        rotation: u32,
    ) -> Result<Vec<ImageId>, ImageError> {
        let server = server_id.to_string();
        let mut backups: Vec<ImageRow> = self
            .ds
            .image_list(Some(owner))
            .await?
            .into_iter()
            .filter(|i| i.owner == owner)
            .filter(|i| {
                let props: Map<String, Value> = serde_json::from_str(&i.properties).unwrap_or_default();
                let is = |k: &str, want: &str| props.get(k).and_then(Value::as_str) == Some(want);
                is("instance_uuid", &server) && is("image_type", "backup") && is("backup_type", backup_type)
            })
            .collect();
        // Newest first; the id breaks ties of one timestamp.
        backups.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.to_string().cmp(&a.id.to_string())));
        let keep = usize::try_from(rotation).unwrap_or(usize::MAX);
        let mut deleted = Vec::new();
        for old in backups.into_iter().skip(keep).rev() {
            // Gone already (a concurrent rotation) counts as rotated.
            let _removed = self.delete_snapshot(&old.id.to_string()).await?;
            deleted.push(old.id);
        }
        Ok(deleted)
    }
}
