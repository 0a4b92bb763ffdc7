//! Typed identifiers: a server id can never be passed where an image id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id (UUID v4), as OpenStack services hand out.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl $name {
            /// The id spelled exactly as we store and print it (hyphenated,
            /// lowercase), or `None`: a path segment in any other spelling never
            /// named a row, so callers answer it with their "not found".
            pub fn parse_canonical(s: &str) -> Option<Self> {
                let id = Uuid::parse_str(s).ok().map(Self)?;
                (id.to_string() == s).then_some(id)
            }
        }

        // Stored as the hyphenated lowercase text (byte-identical to the
        // strings rows held before).
        crate::state::sqlx_text_codec!($name);
    };
}

typed_id!(
    /// Identifies a server (Nova "instance") for its whole life, including after deletion.
    ServerId
);
typed_id!(
    /// Identifies a durable operation (a row with a step log).
    OperationId
);
typed_id!(
    /// Identifies an image in the image service.
    ImageId
);
typed_id!(
    /// Identifies a block storage volume (Cinder) for its whole life.
    VolumeId
);
typed_id!(
    /// Identifies one attachment of a volume to a server (Cinder's attachment record).
    AttachmentId
);
typed_id!(
    /// Identifies a network port (fixed IP allocation) owned by a server.
    PortId
);

#[cfg(test)]
mod tests {
    use super::ServerId;

    #[test]
    fn canonical_spelling_only() {
        let id = ServerId::new();
        let s = id.to_string();
        assert_eq!(ServerId::parse_canonical(&s), Some(id));
        assert_eq!(ServerId::parse_canonical(&s.to_uppercase()), None);
        assert_eq!(ServerId::parse_canonical(&s.replace('-', "")), None);
        assert_eq!(ServerId::parse_canonical("nope"), None);
    }

    #[test]
    fn serde_is_the_plain_string() {
        let id = ServerId::new();
        let json = serde_json::to_string(&id).expect("ser");
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ServerId>(&json).expect("de"), id);
    }
}
