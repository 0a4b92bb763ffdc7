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

        // Stored as the hyphenated lowercase text in any database sqlx speaks
        // (byte-identical to the strings rows held before); text that is not a
        // UUID is a decode error, never a default.
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
