//! The errors of the block storage service. Each variant carries what
//! happened, typed; its text is Cinder's message word for word (clients and
//! operators match on it), and `stratus-server`'s `error` module maps each
//! variant to its HTTP status.

use stratus_blockstore::BlockError;
use stratus_db::{DbError, QuotaExceeded, RowKind};

/// What could not be found, for [`VolumeError::NotFound`]: each kind has
/// Cinder's own message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A volume (also another project's: no existence leak).
    Volume,
    /// An image named by `imageRef` (id or name).
    Image,
    /// A volume type named by id (or hidden from the caller).
    VolumeType,
    /// A volume type named by name.
    VolumeTypeName,
    /// An extra spec key of the volume type `volume_type`.
    VolumeTypeExtraSpec {
        /// The type that lacks the key.
        volume_type: String,
    },
    /// A project the volume type `volume_type` is not shared with.
    VolumeTypeAccess {
        /// The type.
        volume_type: String,
    },
    /// The access list of a public type (it has none).
    PublicTypeAccessList,
    /// A volume attachment.
    Attachment,
    /// A server named by `instance_uuid` that does not exist or that the
    /// caller may not see (Cinder's `InstanceNotFound`; no existence leak).
    Instance,
    /// A metadata key of the volume `volume`.
    MetadataKey {
        /// The volume whose metadata lacks the key.
        volume: String,
    },
    /// A volume transfer (also another project's: no existence leak).
    Transfer,
    /// An image metadata key of the volume `volume`.
    ImageMetadataKey {
        /// The volume whose image metadata lacks the key.
        volume: String,
    },
    /// A QoS spec.
    QosSpec,
    /// A key of the QoS spec `qos`.
    QosSpecKey {
        /// The spec that lacks the key.
        qos: String,
    },
    /// The encryption spec of a volume type (by type id).
    Encryption,
    /// A group type.
    GroupType,
    /// A spec key of the group type `group_type`.
    GroupTypeSpec {
        /// The type that lacks the key.
        group_type: String,
    },
    /// A generic volume group (also another project's).
    Group,
    /// A user message (also another project's).
    Message,
    /// A volume snapshot (also another project's: no existence leak).
    Snapshot,
    /// A group snapshot (also another project's).
    GroupSnapshot,
    /// A metadata key of the snapshot `snapshot`.
    SnapshotMetadataKey {
        /// The snapshot whose metadata lacks the key.
        snapshot: String,
    },
    /// The boot snapshot a Nova snapshot image names (3.46).
    ImageBootSnapshot,
    /// A project (Keystone's) named in a URL, e.g. of `/default-types`.
    Project,
    /// The default volume type of a project (none set).
    ProjectDefaultType,
    /// A row the datastore did not find (the table it looked in).
    Row(RowKind),
}

fn not_found_message(kind: &Missing, id: &str) -> String {
    match kind {
        Missing::Volume => format!("Volume {id} could not be found."),
        Missing::Image => format!("Image {id} could not be found."),
        Missing::VolumeType => format!("Volume type {id} could not be found."),
        Missing::VolumeTypeName => format!("Volume type with name {id} could not be found."),
        Missing::VolumeTypeExtraSpec { volume_type } => {
            format!("Volume Type {volume_type} has no extra specs with key {id}.")
        }
        Missing::VolumeTypeAccess { volume_type } => {
            format!("Volume type access not found for {volume_type} / {id} combination.")
        }
        Missing::PublicTypeAccessList => "Access list not available for public volume types.".to_string(),
        Missing::Attachment => format!("Volume attachment could not be found with filter: attachment_id = {id}."),
        Missing::Instance => format!("Instance {id} could not be found."),
        Missing::MetadataKey { volume } => format!("Volume {volume} has no metadata with key {id}."),
        Missing::Transfer => format!("Transfer {id} could not be found."),
        Missing::ImageMetadataKey { volume } => {
            format!("Glance metadata for volume {volume} with key {id} could not be found.")
        }
        Missing::QosSpec => format!("QoS Specs {id} could not be found."),
        Missing::QosSpecKey { qos } => format!("QoS spec {qos} has no spec with key {id}."),
        Missing::Encryption => format!("Volume type encryption for type {id} does not exist."),
        Missing::GroupType => format!("Group type {id} could not be found."),
        Missing::GroupTypeSpec { group_type } => format!("Group Type {group_type} has no specs with key {id}."),
        Missing::Group => format!("Group {id} could not be found."),
        Missing::Message => format!("Message {id} could not be found."),
        Missing::Snapshot => format!("Snapshot {id} could not be found."),
        Missing::GroupSnapshot => format!("GroupSnapshot {id} could not be found."),
        Missing::SnapshotMetadataKey { snapshot } => format!("Snapshot {snapshot} has no metadata with key {id}."),
        Missing::ImageBootSnapshot => {
            format!("Nova specific image is found, but boot volume snapshot id:{id} not found.")
        }
        Missing::Project => format!("Project with id {id} not found."),
        Missing::ProjectDefaultType => format!("Default type for project {id} not found."),
        Missing::Row(what) => format!("{what} could not be found."),
    }
}

/// Errors of volume calls; the HTTP layer maps each to a status and fault.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// 400 (Cinder's `InvalidInput` / `InvalidVolume`), with Cinder's message.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the caller's role does not allow `action` (a policy name, e.g. `volume:delete`).
    #[error("Policy doesn't allow {action} to be performed.")]
    Forbidden {
        /// The policy rule that refused.
        action: String,
    },
    /// 413 with Cinder's quota message.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 404 (also for another project's volume).
    #[error("{}", not_found_message(.kind, .id))]
    NotFound {
        /// What kind of thing is missing.
        kind: Missing,
        /// Its id (or name, or key).
        id: String,
    },
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 500: a boot volume could not be built (its status says how it ended).
    #[error("volume {id} is {status} after its build")]
    BootVolume {
        /// The volume.
        id: stratus_types::VolumeId,
        /// Its status after the build (`error` when the backend failed).
        status: String,
    },
    /// 500: fencing a storage client failed (the delete retries).
    #[error("fencing {client}: {source}")]
    Fence {
        /// The storage client.
        client: String,
        /// Why the backend refused.
        source: BlockError,
    },
    /// 500 (logged, not shown).
    #[error(transparent)]
    Db(DbError),
    /// 500: the storage backend failed (logged, not shown).
    #[error(transparent)]
    Backend(BlockError),
}

impl VolumeError {
    /// The text a tenant may see (a server fault). Backend and datastore
    /// failures are only named: their details (command lines, paths, a
    /// CLI's stderr) stay in the logs; an image the inspector refused says why.
    pub fn tenant_message(&self) -> String {
        match self {
            Self::Backend(BlockError::ImageRefused(m)) => m.clone(),
            Self::Backend(_) | Self::Fence { .. } => "the block storage backend failed".into(),
            Self::Db(_) => "the block storage service failed".into(),
            e => e.to_string(),
        }
    }

    /// A 404 for `kind` named `id`.
    pub fn not_found(kind: Missing, id: impl Into<String>) -> Self {
        Self::NotFound { kind, id: id.into() }
    }
}

impl From<DbError> for VolumeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::QuotaExceeded(q) => Self::QuotaExceeded(quota_message(&q)),
            DbError::NotFound { kind, id } => Self::NotFound { kind: Missing::Row(kind), id },
            DbError::Conflict { detail, .. } => Self::Conflict(detail),
            e => Self::Db(e),
        }
    }
}

impl From<BlockError> for VolumeError {
    fn from(e: BlockError) -> Self {
        Self::Backend(e)
    }
}

/// Cinder's quota messages: `gigabytes` is reported before `volumes`, as
/// Cinder's `process_reserve_over_quota` does.
pub fn quota_message(q: &QuotaExceeded) -> String {
    let at = |name: &str| q.overs.iter().position(|o| *o == name);
    let get = |v: &[i64], i: usize| v.get(i).copied().unwrap_or(0);
    if let Some(i) = at("gigabytes") {
        return gigabytes_message(get(&q.requested, i), get(&q.allowed, i), get(&q.used, i));
    }
    if let Some(i) = at("volumes") {
        return format!("Maximum number of volumes allowed ({}) exceeded for quota 'volumes'.", get(&q.allowed, i));
    }
    if let Some(i) = at("groups") {
        return format!("Maximum number of groups allowed ({}) exceeded", get(&q.allowed, i));
    }
    q.to_string()
}

/// Cinder's messages for a create over a per-type quota (`volumes_<type>`
/// or `gigabytes_<type>`, reported by the datastore as `volumes_type` /
/// `gigabytes_type`).
pub(crate) fn typed_quota_message(q: &QuotaExceeded, type_name: &str) -> String {
    let at = |name: &str| q.overs.iter().position(|o| *o == name);
    let get = |v: &[i64], i: usize| v.get(i).copied().unwrap_or(0);
    if let Some(i) = at("gigabytes_type") {
        return format!(
            "Requested volume or snapshot exceeds allowed gigabytes_{type_name} quota. Requested {}G, quota is {}G and {}G has been consumed.",
            get(&q.requested, i),
            get(&q.allowed, i),
            get(&q.used, i)
        );
    }
    if let Some(i) = at("volumes_type") {
        return format!(
            "Maximum number of volumes allowed ({}) exceeded for quota 'volumes_{type_name}'.",
            get(&q.allowed, i)
        );
    }
    quota_message(q)
}

/// Cinder's message for a request over the gigabytes quota.
pub(crate) fn gigabytes_message(requested: i64, quota: i64, consumed: i64) -> String {
    format!(
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested {requested}G, quota is {quota}G and {consumed}G has been consumed."
    )
}
