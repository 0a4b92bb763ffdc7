//! The image service's one error type; `crates/server/src/error.rs` maps it to HTTP.

use stratus_db::DbError;

/// Why an image request failed. The `Display` text is the message clients see.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image does not exist or the caller may not see it (both are a 404).
    #[error("No image found with ID {id}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The tag is not on the image.
    #[error("Tag {tag} not found on image {id}.")]
    TagNotFound {
        /// The image.
        id: String,
        /// The tag asked for.
        tag: String,
    },
    /// The project is not a member of the image (or the caller may not see
    /// that membership).
    #[error("{member} is not a member of image {id}.")]
    MemberNotFound {
        /// The image.
        id: String,
        /// The member asked for.
        member: String,
    },
    /// A metadata definition (namespace, object, property, tag or
    /// resource-type association) does not exist or is not visible (404).
    #[error("{0}")]
    Missing(String),
    /// The image is active but its bytes are gone.
    #[error("Image data for {id} could not be found.")]
    DataNotFound {
        /// The image.
        id: String,
    },
    /// The caller's role does not allow writes.
    #[error("You are not authorized to complete this action.")]
    NotAuthorized,
    /// The caller may see the image but does not own it.
    #[error("You are not permitted to modify image {id}.")]
    NotOwner {
        /// The image.
        id: String,
    },
    /// Protected images cannot be deleted.
    #[error("Image {id} is protected and cannot be deleted.")]
    Protected {
        /// The image.
        id: String,
    },
    /// A client tried to set an attribute only Stratus sets.
    #[error("Attribute '{attr}' is read-only.")]
    ReadOnly {
        /// The attribute.
        attr: String,
    },
    /// Any other refusal by policy (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The uploaded bytes failed format inspection (400; Glance's
    /// `InvalidImageData`): the image goes back to `queued`.
    #[error("{0}")]
    InvalidData(String),
    /// The request conflicts with the image's state (409).
    #[error("{0}")]
    Conflict(String),
    /// The data exceeds the size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A per-project image quota would be exceeded (413, as Glance).
    #[error("{0}")]
    QuotaExceeded(String),
    /// Storing or reading image data failed (500; the detail is logged only).
    #[error("{0}")]
    Internal(String),
    /// The datastore failed or refused.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ImageError {
    /// The 404 for an image id.
    pub fn not_found(id: impl std::fmt::Display) -> Self {
        Self::NotFound { id: id.to_string() }
    }

    /// A file-system failure while handling image data.
    pub(crate) fn io(what: &str, e: std::io::Error) -> Self {
        Self::Internal(format!("{what}: {e}"))
    }
}
