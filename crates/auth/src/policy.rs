//! Who may do what with identity resources, in one table.
//!
//! Anyone may ask for a token; every other call needs a valid token.
//! Admins (the `admin` role on their scoped project or on the system) may
//! do everything but create another user's application credentials;
//! system readers (a system-scoped token without admin) may read
//! everything, as Keystone's `SYSTEM_READER` rules allow, and change
//! nothing; other callers may read their own token, user and scoped
//! project (and its tags), the projects they have roles on, the domain,
//! the regions and the catalog, revoke their own tokens, and manage their
//! own application credentials. Nobody else changes anything.

use crate::{AuthContext, AuthError};

/// An identity action the policy decides, with the target it depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// `GET /projects`.
    ListProjects,
    /// `POST /projects`.
    CreateProject,
    /// `GET /projects/{id}`.
    GetProject {
        /// The project asked for.
        project_id: &'a str,
    },
    /// `PATCH /projects/{id}`.
    UpdateProject,
    /// `DELETE /projects/{id}`.
    DeleteProject,
    /// `GET /users`.
    ListUsers,
    /// `POST /users`.
    CreateUser,
    /// `GET /users/{id}`.
    GetUser {
        /// The user asked for.
        user_id: &'a str,
    },
    /// `PATCH /users/{id}`.
    UpdateUser,
    /// `DELETE /users/{id}`.
    DeleteUser,
    /// `GET /users/{id}/projects`.
    ListUserProjects {
        /// The user asked for.
        user_id: &'a str,
    },
    /// `GET /roles`.
    ListRoles,
    /// `GET /roles/{id}`.
    GetRole,
    /// `POST /roles`.
    CreateRole,
    /// `DELETE /roles/{id}`.
    DeleteRole,
    /// `HEAD /projects/{p}/users/{u}/roles/{r}`.
    CheckGrant,
    /// `PUT /projects/{p}/users/{u}/roles/{r}`.
    CreateGrant,
    /// `DELETE /projects/{p}/users/{u}/roles/{r}`.
    RevokeGrant,
    /// `GET /projects/{p}/users/{u}/roles`.
    ListGrants,
    /// `GET /role_assignments`.
    ListRoleAssignments,
    /// `GET /services`.
    ListServices,
    /// `GET /services/{id}`.
    GetService,
    /// `GET /endpoints`.
    ListEndpoints,
    /// `GET /endpoints/{id}`.
    GetEndpoint,
    /// `GET`/`HEAD`/`DELETE /auth/tokens` on a subject token.
    ValidateToken {
        /// The user the subject token belongs to.
        owner: &'a str,
    },
    /// `GET /projects/{id}/tags` and `GET /projects/{id}/tags/{tag}`.
    GetProjectTags {
        /// The project asked for.
        project_id: &'a str,
    },
    /// `PUT`/`DELETE /projects/{id}/tags[/{tag}]`.
    UpdateProjectTags,
    /// `POST /users/{id}/application_credentials`.
    CreateAppCred {
        /// The owner.
        user_id: &'a str,
    },
    /// `GET /users/{id}/application_credentials`.
    ListAppCreds {
        /// The owner.
        user_id: &'a str,
    },
    /// `GET /users/{id}/application_credentials/{id}`.
    GetAppCred {
        /// The owner.
        user_id: &'a str,
    },
    /// `DELETE /users/{id}/application_credentials/{id}`.
    DeleteAppCred {
        /// The owner.
        user_id: &'a str,
    },
    /// `GET /system/users/{u}/roles`.
    ListSystemGrants,
    /// `HEAD /system/users/{u}/roles/{r}`.
    CheckSystemGrant,
    /// `PUT /system/users/{u}/roles/{r}`.
    CreateSystemGrant,
    /// `DELETE /system/users/{u}/roles/{r}`.
    RevokeSystemGrant,
}

impl Action<'_> {
    /// The rule's name, as Keystone's policy (and its 403 message) calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ListProjects => "list_projects",
            Self::CreateProject => "create_project",
            Self::GetProject { .. } => "get_project",
            Self::UpdateProject => "update_project",
            Self::DeleteProject => "delete_project",
            Self::ListUsers => "list_users",
            Self::CreateUser => "create_user",
            Self::GetUser { .. } => "get_user",
            Self::UpdateUser => "update_user",
            Self::DeleteUser => "delete_user",
            Self::ListUserProjects { .. } => "list_user_projects",
            Self::ListRoles => "list_roles",
            Self::GetRole => "get_role",
            Self::CreateRole => "create_role",
            Self::DeleteRole => "delete_role",
            Self::CheckGrant => "check_grant",
            Self::CreateGrant => "create_grant",
            Self::RevokeGrant => "revoke_grant",
            Self::ListGrants => "list_grants",
            Self::ListRoleAssignments => "list_role_assignments",
            Self::ListServices => "list_services",
            Self::GetService => "get_service",
            Self::ListEndpoints => "list_endpoints",
            Self::GetEndpoint => "get_endpoint",
            Self::ValidateToken { .. } => "validate_token",
            Self::GetProjectTags { .. } => "get_project_tags",
            Self::UpdateProjectTags => "update_project_tags",
            Self::CreateAppCred { .. } => "create_application_credential",
            Self::ListAppCreds { .. } => "list_application_credentials",
            Self::GetAppCred { .. } => "get_application_credential",
            Self::DeleteAppCred { .. } => "delete_application_credential",
            Self::ListSystemGrants => "list_system_grants_for_user",
            Self::CheckSystemGrant => "check_system_grant_for_user",
            Self::CreateSystemGrant => "create_system_grant_for_user",
            Self::RevokeSystemGrant => "revoke_system_grant_for_user",
        }
    }

    /// Does the action only read? (What a system reader may do.)
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::ListProjects
                | Self::GetProject { .. }
                | Self::ListUsers
                | Self::GetUser { .. }
                | Self::ListUserProjects { .. }
                | Self::ListRoles
                | Self::GetRole
                | Self::CheckGrant
                | Self::ListGrants
                | Self::ListRoleAssignments
                | Self::ListServices
                | Self::GetService
                | Self::ListEndpoints
                | Self::GetEndpoint
                | Self::ValidateToken { .. }
                | Self::GetProjectTags { .. }
                | Self::ListAppCreds { .. }
                | Self::GetAppCred { .. }
                | Self::ListSystemGrants
                | Self::CheckSystemGrant
        )
    }
}

/// May `ctx` do `action`? Admins may do everything (but create another
/// user's application credentials: Keystone allows only the owner), system
/// readers may read everything, others only what concerns themselves.
pub fn allowed(ctx: &AuthContext, action: Action<'_>) -> bool {
    if let Action::CreateAppCred { user_id } = action {
        return ctx.user_id == user_id;
    }
    if ctx.is_admin() || (ctx.is_system_reader() && action.is_read()) {
        return true;
    }
    match action {
        Action::GetProject { project_id } | Action::GetProjectTags { project_id } => {
            !ctx.system_scope && ctx.project_id == project_id
        }
        Action::GetUser { user_id }
        | Action::ListUserProjects { user_id }
        | Action::ListAppCreds { user_id }
        | Action::GetAppCred { user_id }
        | Action::DeleteAppCred { user_id } => ctx.user_id == user_id,
        Action::ValidateToken { owner } => ctx.user_id == owner,
        _ => false,
    }
}

/// [`allowed`], or `Forbidden` naming the rule.
///
/// The service checks this itself; handlers that read a body also call it
/// first, so that a caller without the right gets 403 before any 400 about
/// its body (as Keystone does).
pub fn enforce(ctx: &AuthContext, action: Action<'_>) -> Result<(), AuthError> {
    if allowed(ctx, action) { Ok(()) } else { Err(AuthError::Forbidden { action: action.name() }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn ctx(roles: &[&str]) -> AuthContext {
        AuthContext {
            user_id: "u1".into(),
            user_name: "demo".into(),
            project_id: "p1".into(),
            project_name: "demo".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            role_ids: roles.iter().map(|r| format!("{r}-id")).collect(),
            audit_id: "a".into(),
            issued_at: Utc::now(),
            expires_at: Utc::now(),
            system_scope: false,
            app_cred: None,
        }
    }

    #[test]
    fn admins_may_do_everything_members_and_readers_only_their_own() {
        let admin = ctx(&["admin"]);
        for c in [ctx(&["member"]), ctx(&["reader"])] {
            for a in [
                Action::ListProjects,
                Action::CreateProject,
                Action::UpdateProject,
                Action::DeleteProject,
                Action::ListUsers,
                Action::CreateUser,
                Action::UpdateUser,
                Action::DeleteUser,
                Action::ListRoles,
                Action::GetRole,
                Action::CheckGrant,
                Action::CreateGrant,
                Action::RevokeGrant,
                Action::ListGrants,
                Action::ListRoleAssignments,
                Action::ListServices,
                Action::GetService,
                Action::ListEndpoints,
                Action::GetEndpoint,
                Action::GetProject { project_id: "p2" },
                Action::GetUser { user_id: "u2" },
                Action::ListUserProjects { user_id: "u2" },
                Action::ValidateToken { owner: "u2" },
            ] {
                assert!(!allowed(&c, a), "{:?} {a:?}", c.roles);
                assert!(allowed(&admin, a), "{a:?}");
            }
            assert!(allowed(&c, Action::GetProject { project_id: "p1" }));
            assert!(allowed(&c, Action::GetUser { user_id: "u1" }));
            assert!(allowed(&c, Action::ListUserProjects { user_id: "u1" }));
            assert!(allowed(&c, Action::ValidateToken { owner: "u1" }));
        }
    }

    #[test]
    fn system_readers_read_everything_and_change_nothing() {
        // Keystone's SYSTEM_READER rules: reads of every identity resource, no writes.
        let sys = AuthContext { system_scope: true, project_id: String::new(), ..ctx(&["reader"]) };
        assert!(sys.is_system_reader() && sys.can_read_all() && !sys.can_write() && sys.can_see("p9"));
        for a in [
            Action::ListProjects,
            Action::GetProject { project_id: "p2" },
            Action::ListUsers,
            Action::ListRoleAssignments,
            Action::GetProjectTags { project_id: "p2" },
            Action::ListAppCreds { user_id: "u2" },
            Action::ListSystemGrants,
            Action::ValidateToken { owner: "u2" },
        ] {
            assert!(a.is_read() && allowed(&sys, a), "{a:?}");
        }
        for a in [
            Action::CreateProject,
            Action::UpdateUser,
            Action::CreateGrant,
            Action::UpdateProjectTags,
            Action::CreateSystemGrant,
            Action::DeleteAppCred { user_id: "u2" },
        ] {
            assert!(!a.is_read() && !allowed(&sys, a), "{a:?}");
        }
        let sys_admin = AuthContext { system_scope: true, ..ctx(&["admin"]) };
        assert!(!sys_admin.is_system_reader() && sys_admin.can_write());
        let promoted = sys.reading_everything();
        assert!(promoted.is_admin() && promoted.system_scope);
    }

    #[test]
    fn only_the_owner_creates_its_application_credentials() {
        // identity:create_application_credential is "user_id:%(user_id)s", no admin override.
        assert!(allowed(&ctx(&["member"]), Action::CreateAppCred { user_id: "u1" }));
        assert!(!allowed(&ctx(&["admin"]), Action::CreateAppCred { user_id: "u2" }));
        assert!(allowed(&ctx(&["admin"]), Action::DeleteAppCred { user_id: "u2" }));
        assert!(!allowed(&ctx(&["member"]), Action::GetAppCred { user_id: "u2" }));
    }

    #[test]
    fn refusals_name_the_rule() {
        let e = enforce(&ctx(&["member"]), Action::CreateGrant).expect_err("forbidden");
        assert_eq!(e.to_string(), "You are not authorized to perform the requested action: identity:create_grant.");
    }
}
