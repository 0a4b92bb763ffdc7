//! The vocabulary of durable operations and migrations: which operations
//! exist, which states their rows pass through, and the states of a
//! migration. The database keeps the same strings; these enums are what the
//! code matches on, so a new kind cannot be forgotten in a `match`.

use crate::state::{UnknownState, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// What a durable operation does; one handler per kind in the controller.
    OpKind {
        /// Schedule and spawn a new server.
        Create => "create",
        /// Delete a server (the bounded delete).
        Delete => "delete",
        /// Power off.
        Stop => "stop",
        /// Power on.
        Start => "start",
        /// Reboot (soft or hard, see its params).
        Reboot => "reboot",
        /// Pause in memory.
        Pause => "pause",
        /// Unpause.
        Unpause => "unpause",
        /// Suspend to disk.
        Suspend => "suspend",
        /// Resume from suspend.
        Resume => "resume",
        /// Soft delete (reclaimable).
        SoftDelete => "soft_delete",
        /// Restore a soft-deleted server.
        Restore => "restore",
        /// Shelve (snapshot, power off, maybe offload).
        Shelve => "shelve",
        /// Offload a shelved server from its host.
        ShelveOffload => "shelve_offload",
        /// Unshelve.
        Unshelve => "unshelve",
        /// Resize or cold-migrate (no flavor in its params).
        Resize => "resize",
        /// Confirm a resize.
        ConfirmResize => "confirm_resize",
        /// Revert a resize.
        RevertResize => "revert_resize",
        /// Rebuild on another host after the first one died.
        Evacuate => "evacuate",
        /// Rebuild in place from an image (the VM is made again on its host).
        Rebuild => "rebuild",
        /// Snapshot a server into an image.
        CreateImage => "create_image",
        /// Open a volume on the server's host.
        AttachVolume => "attach_volume",
        /// Close a volume on the server's host.
        DetachVolume => "detach_volume",
        /// Show an attached volume's new size to the VM on its host.
        ExtendVolume => "extend_volume",
    }
);

impl OpKind {
    /// Every kind, for tests that must cover all of them.
    pub const ALL: [OpKind; 23] = [
        Self::Create,
        Self::Delete,
        Self::Stop,
        Self::Start,
        Self::Reboot,
        Self::Pause,
        Self::Unpause,
        Self::Suspend,
        Self::Resume,
        Self::SoftDelete,
        Self::Restore,
        Self::Shelve,
        Self::ShelveOffload,
        Self::Unshelve,
        Self::Resize,
        Self::ConfirmResize,
        Self::RevertResize,
        Self::Evacuate,
        Self::Rebuild,
        Self::CreateImage,
        Self::AttachVolume,
        Self::DetachVolume,
        Self::ExtendVolume,
    ];
}

/// The cursor of an operation none of whose steps has completed yet (the
/// `step` a new operation row starts with).
pub const INITIAL_STEP: &str = "start";

string_enum!(
    /// Where an operation row is in its life.
    OpState {
        /// Recorded, never claimed.
        Pending => "pending",
        /// Claimed by a runner at least once, not closed.
        Running => "running",
        /// Closed successfully.
        Done => "done",
        /// Closed unsuccessfully (the server records the fault).
        Failed => "failed",
    }
);

impl OpState {
    /// The states of an operation that is still to be driven (`pending`,
    /// `running`): what "open" means in every query.
    pub const OPEN: [OpState; 2] = [Self::Pending, Self::Running];

    /// Still to be driven by some runner.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

string_enum!(
    /// What moves a server between hosts.
    MigrationKind {
        /// Resize to another flavor (on another host).
        Resize => "resize",
        /// Cold migration (same flavor).
        Migration => "migration",
        /// Rebuild elsewhere after the host died.
        Evacuation => "evacuation",
    }
);

string_enum!(
    /// Where a migration is.
    MigrationStatus {
        /// Recorded, nothing moved yet.
        PreMigrating => "pre-migrating",
        /// Moving.
        Migrating => "migrating",
        /// Moved; the resize awaits confirm or revert.
        Finished => "finished",
        /// Confirmed: the source copy is gone.
        Confirmed => "confirmed",
        /// Reverted: back on the source.
        Reverted => "reverted",
        /// An evacuation completed.
        Done => "done",
        /// Failed or aborted (e.g. by a delete).
        Error => "error",
    }
);

impl MigrationStatus {
    /// Statuses of a migration still in progress (a copy may exist on two hosts).
    pub const OPEN: [MigrationStatus; 3] = [Self::PreMigrating, Self::Migrating, Self::Finished];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_strings() {
        for k in OpKind::ALL {
            assert_eq!(k.as_str().parse::<OpKind>(), Ok(k));
        }
        assert_eq!(OpKind::try_from("shelve_offload".to_string()), Ok(OpKind::ShelveOffload));
        assert!("bogus".parse::<OpKind>().is_err());
        assert_eq!("pre-migrating".parse::<MigrationStatus>(), Ok(MigrationStatus::PreMigrating));
    }
}
