//! Keystone Identity v3 on the wire: request bodies and query filters
//! ([`requests`]), the resources as clients see them, the pure JSON views
//! ([`views`]) and the fixed service catalog ([`catalog`]).
//!
//! Nothing here touches a store: the identity service (`stratus-auth`) takes
//! the typed requests and returns the resources below, and the HTTP handlers
//! render them with the views. Views build `serde_json::Value`s (sorted keys)
//! so that bodies stay byte-identical to what Stratus always served.

pub mod catalog;
pub mod requests;
pub mod views;

pub use catalog::*;
pub use requests::*;
pub use views::*;

/// The only domain.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// Its name.
pub const DEFAULT_DOMAIN_NAME: &str = "Default";
/// The only region.
pub const REGION: &str = "RegionOne";
/// The Identity API version advertised (the one clients negotiate against).
pub const API_VERSION: &str = "v3.14";
/// When that version was last updated, as Keystone reports it.
pub const API_UPDATED: &str = "2020-04-07T00:00:00Z";

/// A request that cannot be turned into a typed identity request.
///
/// Kept apart from the service's errors because it is decided before any
/// lookup: the HTTP layer maps it like the service's 400 and 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// 400: malformed or missing field; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the request names a scope or domain that cannot exist here
    /// (domain, system or trust scope, a foreign domain). Keystone answers
    /// these like bad credentials, so this never says which.
    #[error("The request you have made requires authentication.")]
    Unauthenticated,
}

impl RequestError {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
}

/// A project as the identity service returns it (flat, in the default domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// 32 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Always `default`.
    pub domain_id: String,
    /// Free text.
    pub description: String,
    /// Disabled projects cannot get tokens.
    pub enabled: bool,
    /// Its tags, sorted.
    pub tags: Vec<String>,
}

/// A user as the identity service returns it: never its password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// 32 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Always `default`.
    pub domain_id: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Optional default project.
    pub default_project_id: Option<String>,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
}

/// A role (`admin`, `member`, `reader`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// Role id.
    pub id: String,
    /// Role name.
    pub name: String,
}

/// A role of a user on a project, with the names `include_names` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleAssignment {
    /// User id.
    pub user_id: String,
    /// Project id.
    pub project_id: String,
    /// Role id.
    pub role_id: String,
    /// Role name.
    pub role_name: String,
    /// User name, when names were asked for and the user still exists.
    pub user_name: Option<String>,
    /// Project name, when names were asked for and the project still exists.
    pub project_name: Option<String>,
}

/// What a token stands for, as its view shows it.
#[derive(Clone, Debug)]
pub struct TokenInfo<'a> {
    /// Authentication methods (`password`, `token`).
    pub methods: &'a [&'a str],
    /// User id.
    pub user_id: &'a str,
    /// User name.
    pub user_name: &'a str,
    /// Scoped project id.
    pub project_id: &'a str,
    /// Scoped project name.
    pub project_name: &'a str,
    /// `(id, name)` of each role on that project.
    pub roles: Vec<(&'a str, &'a str)>,
    /// Audit id.
    pub audit_id: &'a str,
    /// Issue time.
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Expiry time.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Scoped to the system (no project in the body).
    pub system: bool,
    /// The application credential it came from: `(id, name, restricted)`.
    pub app_cred: Option<(&'a str, &'a str, bool)>,
}

/// An application credential as the identity service returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppCredential {
    /// 32 hex digits.
    pub id: String,
    /// Unique per user.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Owner.
    pub user_id: String,
    /// The project its tokens are scoped to.
    pub project_id: String,
    /// The roles it carries.
    pub roles: Vec<Role>,
    /// When it stops working.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// May create application credentials and trusts.
    pub unrestricted: bool,
    /// The secret: only in the answer to its creation.
    pub secret: Option<String>,
}

/// A role of a user on the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemAssignment {
    /// User id.
    pub user_id: String,
    /// The role.
    pub role: Role,
}
