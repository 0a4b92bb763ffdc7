//! The one error type of the identity service. The HTTP layer maps each
//! variant to a status and a Keystone fault body in one place; the messages
//! here are the ones clients see.

use std::fmt;
use stratus_db::DbError;

/// The kinds of identity resources an error can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A project.
    Project,
    /// A user.
    User,
    /// A role.
    Role,
    /// A domain (only `default` exists).
    Domain,
    /// A service of the fixed catalog.
    Service,
    /// An endpoint of the fixed catalog.
    Endpoint,
    /// A region (only `RegionOne` exists).
    Region,
    /// An application credential.
    AppCred,
    /// A tag of a project.
    ProjectTag,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Project => "project",
            Self::User => "user",
            Self::Role => "role",
            Self::Domain => "domain",
            Self::Service => "service",
            Self::Endpoint => "endpoint",
            Self::Region => "region",
            Self::AppCred => "application credential",
            Self::ProjectTag => "project tag",
        })
    }
}

/// Errors of authentication, policy and identity management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user, password, or scope; the message never says which.
    #[error("The request you have made requires authentication.")]
    InvalidCredentials,
    /// The token is unknown, revoked or expired.
    #[error("The request you have made requires authentication.")]
    InvalidToken,
    /// The user has no role on the requested project.
    #[error("User {user} has no access to project {project}")]
    NoRoleOnProject {
        /// User id.
        user: String,
        /// Project id.
        project: String,
    },
    /// The policy refuses the caller this action.
    #[error("You are not authorized to perform the requested action: identity:{action}.")]
    Forbidden {
        /// The policy rule's name (`list_projects`, ...).
        action: &'static str,
    },
    /// No resource of that kind has that id.
    #[error("Could not find {kind}: {id}.")]
    NotFound {
        /// What was looked for.
        kind: ResourceKind,
        /// The id asked for.
        id: String,
    },
    /// The subject token of a validate or revoke is unknown, revoked or expired.
    #[error("Failed to validate token")]
    SubjectTokenNotFound,
    /// The user does not have that role on the system.
    #[error("Could not find role assignment with role: {role}, user: {user}, system: all.")]
    SystemAssignmentNotFound {
        /// Role id.
        role: String,
        /// User id.
        user: String,
    },
    /// The user does not have that role on that project.
    #[error("Could not find role assignment with role: {role}, user: {user}, project: {project}.")]
    AssignmentNotFound {
        /// Role id.
        role: String,
        /// User id.
        user: String,
        /// Project id.
        project: String,
    },
    /// The name is taken.
    #[error("{kind} {name} already exists")]
    Conflict {
        /// Project or user.
        kind: ResourceKind,
        /// The name asked for.
        name: String,
    },
    /// The request asks for something invalid or unsupported; the message says what.
    #[error("{0}")]
    BadRequest(String),
    /// Too many failed logins: the account is locked for a while
    /// (Keystone's `lockout_failure_attempts`; a 401 that says so).
    #[error("The account is locked for user: {user}.")]
    AccountLocked {
        /// The user name (or id) the client gave.
        user: String,
    },
    /// Too many failed logins from one address, or every password check is
    /// busy: try again later (429).
    #[error("Too many authentication attempts; retry in {retry_after_secs} s.")]
    TooManyAttempts {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The datastore failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The external Keystone cannot validate tokens now (unreachable, or it
    /// refuses Stratus's service user): a 503, never an accepted token.
    #[error("The identity service is unavailable; retry later.")]
    IdentityUnavailable,
    /// Publishing Stratus's endpoints in the external Keystone failed (at startup).
    #[error("cannot publish the endpoints in Keystone: {0}")]
    Publish(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl AuthError {
    /// A 400 with this message.
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// A datastore `NotFound` becomes a typed `NotFound` naming `id`; other errors pass.
    pub(crate) fn not_found_as(kind: ResourceKind, id: &str) -> impl FnOnce(DbError) -> Self {
        move |e| match e {
            DbError::NotFound { .. } => Self::NotFound { kind, id: id.to_string() },
            e => Self::Db(e),
        }
    }

    /// A datastore `Conflict` (unique name) becomes a typed `Conflict`; other errors pass.
    pub(crate) fn conflict_as(kind: ResourceKind, name: &str) -> impl FnOnce(DbError) -> Self {
        move |e| match e {
            DbError::Conflict { .. } => Self::Conflict { kind, name: name.to_string() },
            e => Self::Db(e),
        }
    }
}
