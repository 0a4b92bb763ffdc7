//! Server states as Nova names them, and the API status derived from them.
//!
//! Keeping Nova's exact strings matters: clients poll `status` and compare it
//! with `ACTIVE`, `SHUTOFF`, `ERROR`, ... and admins read `OS-EXT-STS:*`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Error for a state string that is not one we know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

/// sqlx `Type`/`Decode`/`Encode` for a type stored as its text (`Display` out,
/// `FromStr` in), in any database sqlx speaks: the state enums and the typed ids.
/// Text that does not parse is a decode error, never a default.
macro_rules! sqlx_text_codec {
    ($name:ident) => {
        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(s.parse::<Self>()?)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, DB>>::encode(self.to_string(), buf)
            }
        }
    };
}

pub(crate) use sqlx_text_codec;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$variant),)+
                    other => Err(UnknownState(other.to_string())),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(s: String) -> Result<Self, UnknownState> {
                s.parse()
            }
        }

        // Stored as its string in any database sqlx speaks, so rows hold the
        // enum itself (an unknown string is a decode error, never a default).
        crate::state::sqlx_text_codec!($name);
    };
}

/// Shared with the other row-state modules of this crate (e.g. [`crate::image`]).
pub(crate) use string_enum;

string_enum!(
    /// Nova's `vm_state`: the stable state a server rests in.
    VmState {
        /// Being scheduled or spawned.
        Building => "building",
        /// Running.
        Active => "active",
        /// Powered off by the user.
        Stopped => "stopped",
        /// Paused in memory.
        Paused => "paused",
        /// Suspended to disk.
        Suspended => "suspended",
        /// Resized, waiting for confirm or revert.
        Resized => "resized",
        /// Shelved, VM still on its host.
        Shelved => "shelved",
        /// Shelved and removed from its host.
        ShelvedOffloaded => "shelved_offloaded",
        /// Soft-deleted, reclaimable until `reclaim_instance_interval` elapses.
        SoftDeleted => "soft-delete",
        /// Deleted.
        Deleted => "deleted",
        /// Failed.
        Error => "error",
    }
);

string_enum!(
    /// Nova's `task_state`: what is happening to the server right now.
    TaskState {
        /// Looking for a host.
        Scheduling => "scheduling",
        /// Networks being allocated.
        Networking => "networking",
        /// The VM is being created on its host.
        Spawning => "spawning",
        /// Power-off in progress.
        PoweringOff => "powering-off",
        /// Power-on in progress.
        PoweringOn => "powering-on",
        /// Soft reboot in progress.
        Rebooting => "rebooting",
        /// Hard reboot in progress.
        RebootingHard => "rebooting_hard",
        /// Delete in progress: once set, no other transition may clear it.
        Deleting => "deleting",
        /// Soft delete in progress.
        SoftDeleting => "soft-deleting",
        /// Restore from soft delete in progress.
        Restoring => "restoring",
        /// Pause in progress.
        Pausing => "pausing",
        /// Unpause in progress.
        Unpausing => "unpausing",
        /// Suspend in progress.
        Suspending => "suspending",
        /// Resume in progress.
        Resuming => "resuming",
        /// Shelve in progress.
        Shelving => "shelving",
        /// Shelve offload in progress.
        ShelvingOffloading => "shelving_offloading",
        /// Unshelve in progress.
        Unshelving => "unshelving",
        /// Snapshot in progress.
        ImageSnapshot => "image_snapshot",
        /// Resize or cold migration: preparing.
        ResizePrep => "resize_prep",
        /// Resize or cold migration: moving.
        ResizeMigrating => "resize_migrating",
        /// Resize confirm in progress.
        ResizeConfirming => "resize_confirming",
        /// Resize revert in progress.
        ResizeReverting => "resize_reverting",
        /// Rebuild on another host (evacuate).
        Rebuilding => "rebuilding",
    }
);

impl TaskState {
    /// The tasks during which a server's volumes stay open where they are
    /// (its host and attachments do not change): an attach that completes
    /// meanwhile may be recorded. Every other task moves, closes or
    /// releases volumes (delete, shelve, unshelve, resize, migration,
    /// rebuild, evacuation).
    pub const VOLUMES_STAY: &'static [TaskState] = &[
        TaskState::Spawning,
        TaskState::PoweringOff,
        TaskState::PoweringOn,
        TaskState::Rebooting,
        TaskState::RebootingHard,
        TaskState::Pausing,
        TaskState::Unpausing,
        TaskState::Suspending,
        TaskState::Resuming,
        TaskState::ImageSnapshot,
        TaskState::SoftDeleting,
        TaskState::Restoring,
    ];

    /// Whether the server's volumes stay where they are during this task.
    pub fn volumes_stay(self) -> bool {
        Self::VOLUMES_STAY.contains(&self)
    }
}

/// Nova's power states (integers on the wire as `OS-EXT-STS:power_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i64)]
pub enum PowerState {
    /// Unknown or no VM.
    NoState = 0,
    /// Running.
    Running = 1,
    /// Paused.
    Paused = 3,
    /// Shut down.
    Shutdown = 4,
    /// Crashed.
    Crashed = 6,
    /// Suspended.
    Suspended = 7,
}

impl PowerState {
    /// Nova's name of the state (`InstancePowerState`), as notifications and
    /// diagnostics carry it where the API shows the integer code.
    pub fn nova_name(self) -> &'static str {
        match self {
            Self::NoState => "pending",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Shutdown => "shutdown",
            Self::Crashed => "crashed",
            Self::Suspended => "suspended",
        }
    }

    /// Decode the integer stored in the database; unknown values read as `NoState`.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::Running,
            3 => Self::Paused,
            4 => Self::Shutdown,
            6 => Self::Crashed,
            7 => Self::Suspended,
            _ => Self::NoState,
        }
    }

    /// The integer clients see.
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// Strict decoding of a stored power state: a code Nova does not define is an
/// error (a corrupt row), never silently `NoState`.
impl TryFrom<i64> for PowerState {
    type Error = UnknownState;
    fn try_from(code: i64) -> Result<Self, UnknownState> {
        match code {
            0 => Ok(Self::NoState),
            1 => Ok(Self::Running),
            3 => Ok(Self::Paused),
            4 => Ok(Self::Shutdown),
            6 => Ok(Self::Crashed),
            7 => Ok(Self::Suspended),
            other => Err(UnknownState(other.to_string())),
        }
    }
}

/// The API `status` of a server, derived from `vm_state` and `task_state`
/// exactly as Nova's state map does (so `--wait` loops in clients behave).
pub fn api_status(vm: VmState, task: Option<TaskState>) -> &'static str {
    use TaskState as T;
    let resizing = matches!(task, Some(T::ResizePrep | T::ResizeMigrating));
    match vm {
        VmState::Building => "BUILD",
        VmState::Active => match task {
            Some(T::Rebooting) => "REBOOT",
            Some(T::RebootingHard) => "HARD_REBOOT",
            Some(T::Rebuilding) => "REBUILD",
            _ if resizing => "RESIZE",
            _ => "ACTIVE",
        },
        VmState::Stopped => match task {
            Some(T::Rebuilding) => "REBUILD",
            _ if resizing => "RESIZE",
            _ => "SHUTOFF",
        },
        VmState::Paused => "PAUSED",
        VmState::Suspended => "SUSPENDED",
        VmState::Resized => match task {
            Some(T::ResizeReverting) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        VmState::Shelved => "SHELVED",
        VmState::ShelvedOffloaded => "SHELVED_OFFLOADED",
        VmState::SoftDeleted => "SOFT_DELETED",
        VmState::Deleted => "DELETED",
        VmState::Error => "ERROR",
    }
}

/// Map an API `status` filter value (as `openstack server list --status` sends)
/// to the vm_states that produce it. `None` means the status is not one we know.
pub fn vm_states_for_status(status: &str) -> Option<Vec<VmState>> {
    let s = status.to_ascii_uppercase();
    let v = match s.as_str() {
        "BUILD" => vec![VmState::Building],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "REBUILD" => vec![VmState::Active],
        "RESIZE" => vec![VmState::Active, VmState::Stopped],
        "REVERT_RESIZE" => vec![VmState::Resized],
        "SHUTOFF" => vec![VmState::Stopped],
        "PAUSED" => vec![VmState::Paused],
        "SUSPENDED" => vec![VmState::Suspended],
        "VERIFY_RESIZE" => vec![VmState::Resized],
        "SHELVED" => vec![VmState::Shelved],
        "SHELVED_OFFLOADED" => vec![VmState::ShelvedOffloaded],
        "SOFT_DELETED" => vec![VmState::SoftDeleted],
        "DELETED" => vec![VmState::Deleted],
        "ERROR" => vec![VmState::Error],
        _ => return None,
    };
    Some(v)
}

/// Why a server action was refused in the current state; the text follows
/// Nova's `InstanceInvalidState` message so scripts that grep it keep working.
pub fn invalid_state_message(attr: &str, state: &str, method: &str, server_id: &impl fmt::Display) -> String {
    format!("Cannot '{method}' instance {server_id} while it is in {attr} {state}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_strings() {
        for vm in
            [VmState::Building, VmState::Active, VmState::Stopped, VmState::SoftDeleted, VmState::ShelvedOffloaded]
        {
            assert_eq!(vm.as_str().parse::<VmState>(), Ok(vm));
        }
        assert_eq!("deleting".parse::<TaskState>(), Ok(TaskState::Deleting));
        assert!("bogus".parse::<VmState>().is_err());
    }

    #[test]
    fn status_follows_nova_state_map() {
        // nova/api/openstack/common.py _STATE_MAP: deleting does not change the status.
        assert_eq!(api_status(VmState::Active, Some(TaskState::Deleting)), "ACTIVE");
        assert_eq!(api_status(VmState::Active, Some(TaskState::Rebooting)), "REBOOT");
        assert_eq!(api_status(VmState::Stopped, None), "SHUTOFF");
        assert_eq!(api_status(VmState::Building, Some(TaskState::Scheduling)), "BUILD");
    }

    #[test]
    fn status_filter_maps_back_to_vm_states() {
        assert_eq!(vm_states_for_status("active"), Some(vec![VmState::Active]));
        assert_eq!(vm_states_for_status("SHUTOFF"), Some(vec![VmState::Stopped]));
        assert_eq!(vm_states_for_status("NOPE"), None);
    }
}
