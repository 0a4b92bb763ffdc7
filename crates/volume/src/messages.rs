//! User messages as Cinder records them (`/messages`, 3.3): when an
//! operation that the API already accepted fails for a reason the user
//! should see, the project gets a message naming the resource, with
//! Cinder's action and detail ids (`event_id`
//! `VOLUME_<resource type>_<action>_<detail>`), kept for Cinder's default
//! `message_ttl` (30 days).

use crate::{Missing, VolumeError, VolumeService, check_write};
use stratus_auth::AuthContext;
use stratus_db::{DbError, VolumeMessageRow};
use tracing::{info, warn};

/// Cinder's `message_ttl` default: 30 days.
const MESSAGE_TTL_SECS: i64 = 2_592_000;

/// What was being done (Cinder's `message_field.Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageAction {
    /// `001`: the scheduler found no backend for a new volume.
    ScheduleAllocateVolume,
    /// `005`: copying an image to a new volume.
    CopyImageToVolume,
    /// `007`: extending a volume.
    ExtendVolume,
    /// `008`: the backend creating a new volume.
    CreateVolumeFromBackend,
}

/// Why it failed (Cinder's `message_field.Detail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageDetail {
    /// `001`.
    UnknownError,
    /// `003`: no backend satisfies the volume type.
    NoBackendAvailable,
    /// `010`.
    DriverFailedExtend,
    /// `012`.
    DriverFailedCreate,
}

const ACTIONS: &[(&str, &str)] = &[
    ("001", "schedule allocate volume"),
    ("002", "attach volume"),
    ("003", "copy volume to image"),
    ("004", "update attachment"),
    ("005", "copy image to volume"),
    ("006", "unmanage volume"),
    ("007", "extend volume"),
    ("008", "create volume from backend storage"),
];

const DETAILS: &[(&str, &str)] = &[
    ("001", "An unknown error occurred."),
    ("002", "Driver is not initialized at present."),
    ("003", "Could not find any available weighted backend."),
    ("006", "Not enough quota resource for operation."),
    ("007", "Image used for creating volume exceeds available space."),
    ("010", "Volume Driver failed to extend volume."),
    ("012", "Driver failed to create the volume."),
];

impl MessageAction {
    /// Cinder's id.
    pub fn id(self) -> &'static str {
        match self {
            Self::ScheduleAllocateVolume => "001",
            Self::CopyImageToVolume => "005",
            Self::ExtendVolume => "007",
            Self::CreateVolumeFromBackend => "008",
        }
    }
}

impl MessageDetail {
    /// Cinder's id.
    pub fn id(self) -> &'static str {
        match self {
            Self::UnknownError => "001",
            Self::NoBackendAvailable => "003",
            Self::DriverFailedExtend => "010",
            Self::DriverFailedCreate => "012",
        }
    }
}

/// The `user_message` Cinder renders from the ids (`<action>:<detail>`;
/// an unknown action is `unknown action`, an unknown detail the unknown
/// error's text).
pub fn user_message(action_id: &str, detail_id: &str) -> String {
    let action = ACTIONS.iter().find(|(id, _)| *id == action_id).map_or("unknown action", |(_, t)| *t);
    let detail = DETAILS.iter().find(|(id, _)| *id == detail_id).map_or(DETAILS[0].1, |(_, t)| *t);
    format!("{action}:{detail}")
}

fn message_missing(id: &str) -> VolumeError {
    VolumeError::not_found(Missing::Message, id)
}

impl VolumeService {
    /// Record a message for `project_id` about volume `resource_uuid`. A
    /// message that cannot be written is logged, never an error: the
    /// operation's own outcome (the volume's status) stands either way.
    pub async fn record_message(
        &self,
        project_id: &str,
        resource_uuid: &str,
        action: MessageAction,
        detail: MessageDetail,
    ) {
        let row = VolumeMessageRow {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_string(),
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
            resource_type: Some("VOLUME".into()),
            resource_uuid: Some(resource_uuid.to_string()),
            event_id: format!("VOLUME_VOLUME_{}_{}", action.id(), detail.id()),
            action_id: action.id().into(),
            detail_id: detail.id().into(),
            message_level: "ERROR".into(),
            created_at: stratus_db::SET_ON_INSERT,
            expires_at: stratus_db::SET_ON_INSERT,
        };
        match self.ds.volume_message_create(&row, chrono::Duration::seconds(MESSAGE_TTL_SECS)).await {
            Ok(m) => info!(message = %m.id, event = %m.event_id, resource = resource_uuid, "user message recorded"),
            Err(e) => warn!(error = %e, resource = resource_uuid, "could not record a user message"),
        }
    }

    /// A message the caller may see (another project's is 404).
    pub async fn message_get(&self, ctx: &AuthContext, id: &str) -> Result<VolumeMessageRow, VolumeError> {
        let m = match self.ds.volume_message_get(id).await {
            Ok(m) => m,
            Err(DbError::NotFound { .. }) => return Err(message_missing(id)),
            Err(e) => return Err(e.into()),
        };
        if !ctx.can_see(&m.project_id) {
            return Err(message_missing(id));
        }
        Ok(m)
    }

    /// The caller's project's messages (admins: every project's), oldest first.
    pub async fn message_list(&self, ctx: &AuthContext) -> Result<Vec<VolumeMessageRow>, VolumeError> {
        let project = if ctx.is_admin() { None } else { Some(ctx.project_id.as_str()) };
        Ok(self.ds.volume_message_list(project).await?)
    }

    /// `DELETE /messages/{id}`.
    pub async fn message_delete(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeError> {
        let m = self.message_get(ctx, id).await?;
        check_write(ctx, "message:delete")?;
        match self.ds.volume_message_delete(&m.id).await {
            Ok(()) => Ok(()),
            Err(DbError::NotFound { .. }) => Err(message_missing(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// The backend's capabilities, as the pool and capability documents
    /// show them and Cinder's capabilities filter matches volume types'
    /// extra specs against.
    pub fn capabilities(&self) -> Vec<(&'static str, String)> {
        let kind = self.backend.kind();
        vec![
            ("volume_backend_name", kind.to_string()),
            ("vendor_name", "Stratus".to_string()),
            ("driver_version", env!("CARGO_PKG_VERSION").to_string()),
            ("storage_protocol", if kind == "rbd" { "ceph".into() } else { "local".into() }),
        ]
    }

    /// Does the backend satisfy a volume type's extra specs (Cinder's
    /// capabilities filter)? Keys scoped other than `capabilities:` are
    /// for drivers and ignored; an unscoped key naming one of the
    /// backend's capabilities must match it (see [`spec_matches`]).
    /// Unscoped keys naming no capability are ignored too: Stratus has one
    /// backend and keeps such specs for clients (Cinder would find no backend).
    pub(crate) async fn type_fits_backend(&self, volume_type_id: &str) -> Result<bool, VolumeError> {
        let specs = match self.ds.volume_type_extra_specs(volume_type_id).await {
            Ok(s) => s,
            Err(DbError::NotFound { .. }) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let caps = self.capabilities();
        for (key, want) in &specs {
            let Some(want) = want else { continue };
            let key = key.strip_prefix("capabilities:").unwrap_or(key);
            if key.contains(':') {
                continue;
            }
            if let Some((_, have)) = caps.iter().find(|(k, _)| *k == key)
                && !spec_matches(have, want)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Cinder's extra-spec operators (`extra_specs_ops`): `<in>`, `<is>`,
/// `<or>`, `s==`, `s!=`, `==`/`!=`/`>=`/`<=` (numbers) and plain equality.
pub(crate) fn spec_matches(have: &str, want: &str) -> bool {
    let words: Vec<&str> = want.split_whitespace().collect();
    let num = |s: &str| s.parse::<f64>().ok();
    match words.as_slice() {
        ["<in>", rest @ ..] => have.contains(&rest.join(" ")),
        ["<is>", v] => have.eq_ignore_ascii_case(v),
        ["s==", v] => have == *v,
        ["s!=", v] => have != *v,
        [op @ ("==" | "!=" | ">=" | "<=" | "="), v] => match (num(have), num(v)) {
            (Some(h), Some(w)) => match *op {
                "==" => h == w,
                "!=" => h != w,
                "<=" => h <= w,
                _ => h >= w,
            },
            _ => false,
        },
        [first, ..] if *first == "<or>" || words.contains(&"<or>") => {
            want.split("<or>").map(str::trim).filter(|v| !v.is_empty()).any(|v| v == have)
        }
        _ => have == want,
    }
}
