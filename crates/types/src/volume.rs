//! Block storage states as Cinder names them: a volume's status, an
//! attachment's status and mode, and the kinds of the durable
//! storage-cleanup queue. The database and the API keep Cinder's exact
//! strings; code compares enums, so a typo cannot become a new state.

use crate::state::{UnknownState, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Largest volume size in GiB the APIs accept: Cinder's and Nova's
/// `volume_size` schema maximum (their `DB_MAX_INT`, 2^31 - 1). It keeps
/// every quota sum far from `i64` overflow; the gigabytes quota and the
/// backend are the real limits below it.
pub const MAX_VOLUME_SIZE_GB: i64 = 2_147_483_647;

string_enum!(
    /// Cinder's volume `status`.
    VolumeStatus {
        /// Storage being built (a crash here is finished by the reconciler).
        Creating => "creating",
        /// Ready to be attached, extended or deleted.
        Available => "available",
        /// Reserved for a server, not opened by a host yet.
        Reserved => "reserved",
        /// A host is opening it.
        Attaching => "attaching",
        /// A host is closing it.
        Detaching => "detaching",
        /// Attached to a server.
        InUse => "in-use",
        /// Set by an admin: no one may use it.
        Maintenance => "maintenance",
        /// Offered to another project by a volume transfer.
        AwaitingTransfer => "awaiting-transfer",
        /// Growing.
        Extending => "extending",
        /// Its storage being rebuilt from an image (Cinder's `os-reimage`, 3.68).
        Downloading => "downloading",
        /// Getting its latest snapshot's bytes back (Cinder's revert, 3.40).
        Reverting => "reverting",
        /// Delete recorded; the storage goes (or waits in the cleanup queue).
        Deleting => "deleting",
        /// Gone (the row is kept, marked deleted).
        Deleted => "deleted",
        /// The storage could not be created.
        Error => "error",
        /// A delete failed; the user may retry it.
        ErrorDeleting => "error_deleting",
        /// An extend failed (or was interrupted).
        ErrorExtending => "error_extending",
        /// A restore failed.
        ErrorRestoring => "error_restoring",
        /// A manage failed.
        ErrorManaging => "error_managing",
    }
);

string_enum!(
    /// An attachment's `status`: where opening the volume on the server's
    /// host stands, and whether its storage client was fenced.
    AttachStatus {
        /// Reserved for the server (Nova's `attachment_create`).
        Reserved => "reserved",
        /// The host's connector is known; it is opening the volume.
        Attaching => "attaching",
        /// Opened on the host.
        Attached => "attached",
        /// Being closed on the host.
        Detaching => "detaching",
        /// The storage client was fenced (a local delete of a server on a down host).
        Fenced => "fenced",
        /// Removed.
        Detached => "detached",
    }
);

string_enum!(
    /// Cinder's `attach_mode` of an attachment.
    AttachMode {
        /// Read-write: the only mode Stratus attaches with.
        ReadWrite => "rw",
        /// Read-only.
        ReadOnly => "ro",
    }
);

string_enum!(
    /// What a queued storage cleanup does.
    CleanupKind {
        /// Delete a volume's storage (it was busy or the delete was interrupted).
        VolumeDelete => "volume_delete",
        /// Lift the fence of a storage client once its host confirmed the VM gone.
        Unfence => "unfence",
    }
);

/// A status is stored and shown as its string.
macro_rules! string_conversions {
    ($($name:ident),+) => {$(
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_string()
            }
        }
    )+};
}

string_conversions!(VolumeStatus, AttachStatus, AttachMode, CleanupKind);
