//! The caller of an API request: resolved once from its token, then passed
//! to every service so that each can apply its own rules.

use chrono::{DateTime, Utc};

/// The roles Stratus knows, as Keystone names them.
pub const ROLE_ADMIN: &str = "admin";
/// A project's manager (Keystone's default hierarchy: admin implies manager
/// implies member implies reader): a member that may also do what Nova's
/// `PROJECT_MANAGER_OR_ADMIN` rules allow within its project.
pub const ROLE_MANAGER: &str = "manager";
/// May read and change its project's resources.
pub const ROLE_MEMBER: &str = "member";
/// May only read its project's resources.
pub const ROLE_READER: &str = "reader";

/// Who is calling, with what roles on which project.
#[derive(Clone, Debug)]
pub struct AuthContext {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: String,
    /// Scoped project id.
    pub project_id: String,
    /// Scoped project name.
    pub project_name: String,
    /// Role names on that project.
    pub roles: Vec<String>,
    /// Role ids, same order as `roles`.
    pub role_ids: Vec<String>,
    /// Audit id of the token.
    pub audit_id: String,
    /// Token issue time.
    pub issued_at: DateTime<Utc>,
    /// Token expiry.
    pub expires_at: DateTime<Utc>,
}

impl AuthContext {
    /// Cloud admin (Stratus has no domain or system scope: admin on any project is admin).
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    /// May change resources of its project (member, manager or admin; not
    /// reader-only).
    pub fn can_write(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN || r == ROLE_MANAGER || r == ROLE_MEMBER)
    }

    /// Nova's `PROJECT_MANAGER_OR_ADMIN`: the `manager` role on the scoped
    /// project, or admin.
    pub fn is_manager(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN || r == ROLE_MANAGER)
    }

    /// May this caller see a resource owned by `project_id`? Admins see all.
    pub fn can_see(&self, project_id: &str) -> bool {
        self.is_admin() || self.project_id == project_id
    }
}
