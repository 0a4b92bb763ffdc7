//! The one place where errors become HTTP responses.
//!
//! Compute, Image and Block Storage answer with Nova-style faults
//! (`{"itemNotFound": {"code": 404, "message": ...}}`); Identity answers
//! with Keystone's `{"error": {...}}`. Internal errors are logged with
//! their detail and shown to clients without it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_api::compute::RequestError;
use stratus_api::identity::RequestError as IdentityRequestError;
use stratus_api::image::ImageQueryError;
use stratus_api::{MicroversionError, keystone_fault, nova_fault};
use stratus_auth::AuthError;
use stratus_controller::compute_api::{AggregateVerb, ComputeError};
use stratus_db::DbError;
use stratus_image::ImageError;
use stratus_volume::VolumeError;
use tracing::error;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid token.
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    /// 403: authenticated but not allowed (or over quota).
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406: unsupported microversion.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409: conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 401 with a reason the client may see (a locked account).
    #[error("{0}")]
    UnauthorizedBecause(String),
    /// 429: slow down; retry after this many seconds.
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the client.
        message: String,
        /// `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// 501: a call this cloud does not offer.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a service this one depends on (the external Keystone) cannot answer now.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 500: a bug or a backend failure; the detail is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::UnauthorizedBecause(_) => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to clients.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(detail) => {
                error!(detail = %detail, "internal error");
                "Unexpected API Error. Please report this at the Stratus issue tracker and attach the request id."
                    .into()
            }
            e => e.to_string(),
        }
    }
}

impl ApiError {
    /// `Retry-After` for a 429.
    fn retry_after(&self, resp: &mut Response) {
        if let Self::TooManyRequests { retry_after_secs, .. } = self
            && let Ok(v) = retry_after_secs.to_string().parse()
        {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = nova_fault(status.as_u16(), &self.public_message());
        let mut resp = (status, Json(body)).into_response();
        self.retry_after(&mut resp);
        resp
    }
}

/// An [`ApiError`] rendered the Keystone way (Identity API).
#[derive(Debug)]
pub struct IdentityError(pub ApiError);

impl<E: Into<ApiError>> From<E> for IdentityError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let mut resp = (status, Json(keystone_fault(status.as_u16(), &self.0.public_message()))).into_response();
        self.0.retry_after(&mut resp);
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Keystone uri=\"/identity\"".parse()
        {
            resp.headers_mut().insert("WWW-Authenticate", v);
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound { kind, .. } => Self::NotFound(format!("{kind} could not be found.")),
            DbError::Conflict { detail, .. } => Self::Conflict(detail),
            DbError::QuotaExceeded(q) => Self::Forbidden(q.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials | AuthError::InvalidToken | AuthError::NoRoleOnProject { .. } => {
                Self::Unauthorized
            }
            e @ AuthError::Forbidden { .. } => Self::Forbidden(e.to_string()),
            e @ (AuthError::NotFound { .. }
            | AuthError::SubjectTokenNotFound
            | AuthError::AssignmentNotFound { .. }
            | AuthError::SystemAssignmentNotFound { .. }) => Self::NotFound(e.to_string()),
            e @ AuthError::Conflict { .. } => Self::Conflict(e.to_string()),
            AuthError::BadRequest(m) => Self::BadRequest(m),
            AuthError::Db(e) => e.into(),
            e @ AuthError::AccountLocked { .. } => Self::UnauthorizedBecause(e.to_string()),
            e @ AuthError::TooManyAttempts { retry_after_secs } => {
                Self::TooManyRequests { message: e.to_string(), retry_after_secs }
            }
            AuthError::Hash(e) => Self::Internal(e),
            e @ AuthError::IdentityUnavailable => Self::ServiceUnavailable(e.to_string()),
            e @ AuthError::Publish(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<IdentityRequestError> for ApiError {
    fn from(e: IdentityRequestError) -> Self {
        match e {
            IdentityRequestError::BadRequest(m) => Self::BadRequest(m),
            IdentityRequestError::Unauthenticated => Self::Unauthorized,
        }
    }
}

impl From<ComputeError> for ApiError {
    fn from(e: ComputeError) -> Self {
        use ComputeError as C;
        match e {
            C::Db(e) => e.into(),
            e @ C::KeyGeneration(_) => Self::Internal(e.to_string()),
            e @ C::NotImplemented(_) => Self::NotImplemented(e.to_string()),
            e @ C::BadRequest(_) => Self::BadRequest(e.to_string()),
            // Nova answers quota refusals of the compute API with 403.
            e @ (C::Forbidden(_) | C::QuotaExceeded(_)) => Self::Forbidden(e.to_string()),
            e @ (C::NotFound { .. }
            | C::AttachmentNotFound { .. }
            | C::DetachNotFound { .. }
            | C::ActionNotFound { .. }
            | C::SecurityGroupNotFound(_)
            | C::MetadataItemNotFound
            | C::ServerTagNotFound { .. }
            | C::FlavorAccessNotFound { .. }
            | C::FlavorAccessPublic
            | C::FlavorExtraSpecNotFound { .. }
            | C::KeypairNotFound { .. }
            | C::HypervisorNotFound(_)
            | C::NoHypervisorMatching(_)
            | C::ComputeHostNotFound(_)
            | C::AggregateNotFound(_)
            | C::AggregateHostRemove { .. }
            | C::ConsoleNotAvailable { .. }
            | C::UnknownServiceAction(_)) => Self::NotFound(e.to_string()),
            e @ (C::Locked { .. }
            | C::Conflict(_)
            | C::AggregateNameExists(_)
            | C::AggregateHostExists { .. }
            | C::InvalidAggregateAction { verb: AggregateVerb::AddHost, .. }) => Self::Conflict(e.to_string()),
            // Nova answers a refused aggregate change other than adding a host with 400.
            e @ C::InvalidAggregateAction { .. } => Self::BadRequest(e.to_string()),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::BadRequest(m) => Self::BadRequest(m),
            // Nova answers too many metadata items with 403 (a quota).
            RequestError::MetadataQuota(m) => Self::Forbidden(m),
        }
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::BadRequest(m) => Self::BadRequest(m),
            e @ VolumeError::Forbidden { .. } => Self::Forbidden(e.to_string()),
            // Cinder answers quota refusals with 413 `overLimit`.
            VolumeError::QuotaExceeded(m) => Self::PayloadTooLarge(m),
            e @ VolumeError::NotFound { .. } => Self::NotFound(e.to_string()),
            VolumeError::Conflict(m) => Self::Conflict(m),
            VolumeError::Db(e) => e.into(),
            e @ (VolumeError::Backend(_) | VolumeError::BootVolume { .. } | VolumeError::Fence { .. }) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<stratus_api::volume::VolumeRequestError> for ApiError {
    fn from(e: stratus_api::volume::VolumeRequestError) -> Self {
        use stratus_api::volume::VolumeRequestError as R;
        match e {
            R::BadRequest(m) => Self::BadRequest(m),
            R::NotFound(m) => Self::NotFound(m),
            R::NotAcceptable(m) => Self::NotAcceptable(m),
        }
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound { .. }
            | ImageError::TagNotFound { .. }
            | ImageError::MemberNotFound { .. }
            | ImageError::Missing(_)
            | ImageError::DataNotFound { .. } => Self::NotFound(e.to_string()),
            ImageError::NotAuthorized
            | ImageError::NotOwner { .. }
            | ImageError::Protected { .. }
            | ImageError::ReadOnly { .. }
            | ImageError::Forbidden(_) => Self::Forbidden(e.to_string()),
            ImageError::BadRequest(m) | ImageError::InvalidData(m) => Self::BadRequest(m),
            ImageError::Conflict(m) => Self::Conflict(m),
            ImageError::TooLarge(m) => Self::PayloadTooLarge(m),
            ImageError::QuotaExceeded(m) => Self::PayloadTooLarge(m),
            ImageError::Internal(m) => Self::Internal(m),
            ImageError::Db(e) => e.into(),
        }
    }
}

impl From<ImageQueryError> for ApiError {
    fn from(e: ImageQueryError) -> Self {
        Self::BadRequest(e.0)
    }
}

impl From<MicroversionError> for ApiError {
    fn from(e: MicroversionError) -> Self {
        match e {
            MicroversionError::Malformed(_) => Self::BadRequest(e.to_string()),
            MicroversionError::Unsupported(_) => Self::NotAcceptable(e.to_string()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        match r {
            J::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).".into())
            }
            J::JsonSyntaxError(e) => Self::BadRequest(format!("Malformed request body: {}", e.body_text())),
            J::JsonDataError(e) => Self::BadRequest(format!("Invalid input for request body: {}", e.body_text())),
            J::BytesRejection(e) => Self::BadRequest(e.body_text()),
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Self::BadRequest(format!("Invalid query string: {}", r.body_text()))
    }
}

/// Unknown paths: 404 with a fault body (never an empty response).
pub async fn not_found_fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("The resource could not be found: {}", uri.path()))
}

/// A known path asked with a method it does not serve: 405 with a fault
/// body (axum keeps the `Allow` header), never an empty response.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed("The method is not allowed for the requested URL.".into())
}

/// Parse a JSON body, mapping syntax and schema errors to 400.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("The request body is empty; a JSON object is required.".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::BadRequest(format!("Malformed request body: {e}"))
        } else {
            ApiError::BadRequest(format!("Invalid input for field/attribute: {e}"))
        }
    })
}
