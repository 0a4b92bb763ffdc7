//! Image (Glance v2) row vocabulary: status, visibility and the two formats.
//!
//! The strings are Glance's and are stored as they are, so the database and
//! the wire keep the same spelling while the code matches on variants.

use crate::state::{UnknownState, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// Where an image is in its life (Glance's `status`).
    ImageStatus {
        /// Record exists, no data yet.
        Queued => "queued",
        /// Data is being uploaded.
        Saving => "saving",
        /// Data stored; the image can be booted.
        Active => "active",
        /// An upload failed.
        Killed => "killed",
        /// Deleted (kept rows only).
        Deleted => "deleted",
        /// Staged upload in progress (import API).
        Uploading => "uploading",
        /// Import in progress.
        Importing => "importing",
        /// Delayed delete.
        PendingDelete => "pending_delete",
        /// Data hidden by an admin.
        Deactivated => "deactivated",
    }
);

impl ImageStatus {
    /// Every status, in the order Glance's schema lists them.
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Saving,
        Self::Active,
        Self::Killed,
        Self::Deleted,
        Self::Uploading,
        Self::Importing,
        Self::PendingDelete,
        Self::Deactivated,
    ];
}

string_enum!(
    /// Who may see an image (Glance's `visibility`).
    Visibility {
        /// Every project.
        Public => "public",
        /// The owner only.
        Private => "private",
        /// The owner and its members (Glance's default for new images).
        Shared => "shared",
        /// Every project that asks for it; not listed by default.
        Community => "community",
    }
);

impl Visibility {
    /// Every visibility, in the order error messages and the schema list them.
    pub const ALL: [Self; 4] = [Self::Public, Self::Private, Self::Shared, Self::Community];

    /// The visibilities [`Visibility::is_open`] accepts, for queries.
    pub const OPEN: [Self; 2] = [Self::Public, Self::Community];

    /// Public and community images are visible beyond their owner.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Public | Self::Community)
    }
}

string_enum!(
    /// Where a project stands on an image shared with it (Glance's image
    /// member `status`): only `accepted` images appear in its default list.
    MemberStatus {
        /// Shared, not yet answered.
        Pending => "pending",
        /// The consumer took it: listed by default.
        Accepted => "accepted",
        /// The consumer declined it: not listed by default.
        Rejected => "rejected",
    }
);

impl MemberStatus {
    /// Every member status, in Glance's schema order.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Accepted, Self::Rejected];
}

string_enum!(
    /// Disk formats Glance accepts by default.
    DiskFormat {
        /// Amazon machine image.
        Ami => "ami",
        /// Amazon ramdisk image.
        Ari => "ari",
        /// Amazon kernel image.
        Aki => "aki",
        /// Hyper-V / Xen VHD.
        Vhd => "vhd",
        /// Hyper-V VHDX.
        Vhdx => "vhdx",
        /// VMware disk.
        Vmdk => "vmdk",
        /// Raw bytes.
        Raw => "raw",
        /// QEMU copy-on-write v2.
        Qcow2 => "qcow2",
        /// VirtualBox disk.
        Vdi => "vdi",
        /// Optical disc image.
        Iso => "iso",
        /// Virtuozzo ploop.
        Ploop => "ploop",
    }
);

impl DiskFormat {
    /// Every disk format, in Glance's order.
    pub const ALL: [Self; 11] = [
        Self::Ami,
        Self::Ari,
        Self::Aki,
        Self::Vhd,
        Self::Vhdx,
        Self::Vmdk,
        Self::Raw,
        Self::Qcow2,
        Self::Vdi,
        Self::Iso,
        Self::Ploop,
    ];
}

string_enum!(
    /// Container formats Glance accepts by default.
    ContainerFormat {
        /// Amazon machine image.
        Ami => "ami",
        /// Amazon ramdisk image.
        Ari => "ari",
        /// Amazon kernel image.
        Aki => "aki",
        /// No container.
        Bare => "bare",
        /// Open virtualization format.
        Ovf => "ovf",
        /// OVF archive.
        Ova => "ova",
        /// Docker tarball.
        Docker => "docker",
        /// Compressed archive.
        Compressed => "compressed",
    }
);

impl ContainerFormat {
    /// Every container format, in Glance's order.
    pub const ALL: [Self; 8] =
        [Self::Ami, Self::Ari, Self::Aki, Self::Bare, Self::Ovf, Self::Ova, Self::Docker, Self::Compressed];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_enums_round_trip_through_their_strings() {
        for s in ImageStatus::ALL {
            assert_eq!(s.as_str().parse::<ImageStatus>(), Ok(s));
        }
        for v in Visibility::ALL {
            assert_eq!(v.as_str().parse::<Visibility>(), Ok(v));
        }
        for d in DiskFormat::ALL {
            assert_eq!(d.as_str().parse::<DiskFormat>(), Ok(d));
        }
        for c in ContainerFormat::ALL {
            assert_eq!(c.as_str().parse::<ContainerFormat>(), Ok(c));
        }
        assert!("everyone".parse::<Visibility>().is_err());
    }
}
