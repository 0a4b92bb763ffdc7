//! Who may do what with identity resources, in one table.
//!
//! Anyone may ask for a token; every other call needs a valid token.
//! Admins (the `admin` role on their scoped project) may do everything;
//! other callers may read their own token, user and scoped project, the
//! projects they have roles on, the domain, the regions and the catalog,
//! and revoke their own tokens. Nobody else changes anything.

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
        }
    }
}

/// May `ctx` do `action`? Admins may do everything; others only what concerns themselves.
pub fn allowed(ctx: &AuthContext, action: Action<'_>) -> bool {
    if ctx.is_admin() {
        return true;
    }
    match action {
        Action::GetProject { project_id } => ctx.project_id == project_id,
        Action::GetUser { user_id } | Action::ListUserProjects { user_id } => ctx.user_id == user_id,
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
    fn refusals_name_the_rule() {
        let e = enforce(&ctx(&["member"]), Action::CreateGrant).expect_err("forbidden");
        assert_eq!(e.to_string(), "You are not authorized to perform the requested action: identity:create_grant.");
    }
}
