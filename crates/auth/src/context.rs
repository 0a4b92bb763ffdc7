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
    /// Scoped to the system (`{"system": {"all": true}}`) rather than a
    /// project: `project_id` is empty and `roles` are the user's roles on
    /// the system.
    pub system_scope: bool,
    /// The application credential the token was issued from, if any.
    pub app_cred: Option<AppCredRef>,
}

/// The application credential behind a token, as the token body names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppCredRef {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Restricted credentials may not create application credentials or trusts.
    pub restricted: bool,
}

impl AuthContext {
    /// Cloud admin: the admin role on its project (Stratus has no domains,
    /// so admin on any project is admin) or on the system.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    /// Nova's `PROJECT_MANAGER_OR_ADMIN`: the `manager` role on the scoped
    /// project, or admin.
    pub fn is_manager(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN || r == ROLE_MANAGER)
    }

    /// A system-scoped caller without admin (Keystone's system reader or
    /// member; `member` implies `reader`): it may read every project's
    /// resources and change nothing.
    pub fn is_system_reader(&self) -> bool {
        self.system_scope && !self.is_admin()
    }

    /// May read every project's resources (admins and system readers).
    pub fn can_read_all(&self) -> bool {
        self.is_admin() || self.is_system_reader()
    }

    /// The context a system reader's safe (`GET`/`HEAD`) request to the
    /// compute, volume and image APIs runs with: the admin's visibility
    /// across projects, so that every service's `is_admin()` read rules
    /// apply unchanged. Only for requests that cannot change anything: the
    /// HTTP layer refuses a system reader's other methods before this.
    pub fn reading_everything(mut self) -> Self {
        if self.is_system_reader() {
            self.roles.push(ROLE_ADMIN.to_string());
            self.role_ids.push(String::new());
        }
        self
    }

    /// May change resources of its project (member, manager or admin; not
    /// reader-only; a system-scoped token has no project to write to, so
    /// only a system admin may).
    pub fn can_write(&self) -> bool {
        if self.system_scope {
            return self.is_admin();
        }
        self.roles.iter().any(|r| r == ROLE_ADMIN || r == ROLE_MANAGER || r == ROLE_MEMBER)
    }

    /// May this caller see a resource owned by `project_id`? Admins and
    /// system readers see all.
    pub fn can_see(&self, project_id: &str) -> bool {
        self.can_read_all() || self.project_id == project_id
    }
}
