//! The policy matrix of issue 11, role columns. For every route the router
//! serves (scanned from its sources by [`crate::auth_matrix_tests`], so a new
//! route without a row fails), the class of answer each of four callers gets:
//! a reader of the owning project, a member of it, a member of another
//! project, and an admin (the `admin` role on another project: cloud admin,
//! README "Security"). The requests target real resources of project `demo`
//! (a server with an instance action and an attached volume, a volume with
//! metadata, an attachment, an image with a tag) and, for identity, the
//! member's own user, `demo` itself and the member role; a destructive row
//! (`DELETE`, and every server or volume action) gets fresh resources for
//! each caller, and its identity targets are fresh victims. Query parameters
//! with a policy of their own (`all_tenants`, `tenant_id`) have rows too.
//!
//! Expectations are OpenStack's secure-RBAC defaults (nova/policies,
//! cinder/policies, glance/policies, keystone/common/policies); a row where
//! Stratus deliberately differs says why. Bodies are the cheapest placeholder
//! (`{}` mostly): a 400 about it still shows the policy let the call through,
//! while a 403 or 404 expectation must not be hidden behind such a 400, since
//! Stratus checks existence and policy before the body (as Keystone does;
//! Nova and Cinder validate a body's schema first, which Stratus does not
//! copy: the answer to a caller without the right never depends on its body).

use crate::AppState;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use stratus_auth::AuthContext;
use tower::ServiceExt;

/// The class of a caller's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Authorised: anything but 401, 403 and 404 (a 400 or 409 about the
    /// placeholder body or the resource's state means the policy passed).
    Allowed,
    /// 403.
    Forbidden,
    /// 404: another project's resource is hidden.
    NotFound,
}

use Class::{Allowed as A, Forbidden as F, NotFound as N};

/// Reader of the owning project, member of it, member of another project, admin.
type Cols = [Class; 4];

/// The callers, in column order.
const ROLES: [&str; 4] = ["reader", "member", "other-project member", "admin"];

/// Any authenticated caller (a collection read or create acts on the caller's own project).
const ANY: Cols = [A, A, A, A];
/// PROJECT_READER_OR_ADMIN on a project's resource; another project's is a 404.
const READ: Cols = [A, A, N, A];
/// PROJECT_MEMBER_OR_ADMIN on a project's resource; another project's is a 404.
const WRITE: Cols = [F, A, N, A];
/// PROJECT_MEMBER_OR_ADMIN creating in the caller's own project.
const CREATE: Cols = [F, A, A, A];
/// Admin only.
const ADMIN: Cols = [F, F, F, A];
/// ADMIN, but another project's resource is looked up first (404).
const ADMIN_ON: Cols = [F, F, N, A];
/// Any role on the project in the URL (Cinder's `/v3/{project_id}` URLs,
/// Keystone's project user), else 403.
const IN_PROJECT: Cols = [A, A, F, A];
/// Member role on the project in the URL, else 403; also Keystone's "the
/// user itself (or token subject) or admin" with the member as the target.
const MEMBER_IN: Cols = [F, A, F, A];
/// Keystone's "the user itself" with no admin override (the member is the target).
const OWNER_ONLY: Cols = [F, A, F, F];

/// What a row sends besides its token.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// No body.
    Empty,
    /// `application/json`.
    Json(&'static str),
    /// Glance's JSON-patch media type.
    Patch(&'static str),
    /// `application/octet-stream`, no bytes.
    Octets,
    /// No body; `X-Subject-Token` is a token of the owning project's member.
    Subject,
}

use Payload::{Empty, Json, Octets, Patch, Subject};

/// One (method, route template) and what each caller gets.
struct Row {
    method: &'static str,
    path: &'static str,
    cols: Cols,
    send: Payload,
    /// The OpenStack rule it mirrors, and why Stratus differs when it does.
    why: &'static str,
}

const fn r(method: &'static str, path: &'static str, cols: Cols, send: Payload, why: &'static str) -> Row {
    Row { method, path, cols, send, why }
}

/// The matrix: one row per (method, route template) of the router.
const ROWS: &[Row] = &[
    // ---- Stratus's own admin endpoints (no OpenStack counterpart).
    r("GET", "/stratus/v1/zombies", ADMIN, Empty, "Stratus admin endpoint: admin only"),
    r("GET", "/stratus/v1/storage-cleanups", ADMIN, Empty, "Stratus admin endpoint: admin only"),
    r("GET", "/metrics", ANY, Empty, "Prometheus scrape: anonymous, counts only (no OpenStack counterpart)"),
    // ---- Identity (keystone/common/policies).
    r("GET", "/identity", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/identity/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/identity/v3", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/identity/v3/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/identity/v3/auth/tokens", MEMBER_IN, Subject, "identity:validate_token: admin or token subject"),
    r("POST", "/identity/v3/auth/tokens", ANY, Json("{}"), "token issue is anonymous"),
    r("DELETE", "/identity/v3/auth/tokens", MEMBER_IN, Subject, "identity:revoke_token: admin or token subject"),
    r("GET", "/identity/v3/auth/projects", ANY, Empty, "identity:get_auth_projects: any"),
    r("GET", "/identity/v3/auth/catalog", ANY, Empty, "identity:get_auth_catalog: any"),
    r("GET", "/identity/v3/projects", ADMIN, Empty, "identity:list_projects: admin (no system/domain readers here)"),
    r("POST", "/identity/v3/projects", ADMIN, Json("{}"), "identity:create_project: admin"),
    r("GET", "/identity/v3/projects/{project_id}", IN_PROJECT, Empty, "identity:get_project: admin or project user"),
    r("PATCH", "/identity/v3/projects/{project_id}", ADMIN, Json("{}"), "identity:update_project: admin"),
    r("DELETE", "/identity/v3/projects/{project_id}", ADMIN, Empty, "identity:delete_project: admin (a fresh victim)"),
    r("GET", "/identity/v3/projects/{project_id}/users/{user_id}/roles", ADMIN, Empty, "identity:list_grants: admin"),
    r(
        "GET",
        "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:check_grant: admin",
    ),
    r(
        "PUT",
        "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:create_grant: admin",
    ),
    r(
        "DELETE",
        "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:revoke_grant: admin (a fresh victim user's grant)",
    ),
    r("GET", "/identity/v3/users", ADMIN, Empty, "identity:list_users: admin"),
    r("POST", "/identity/v3/users", ADMIN, Json("{}"), "identity:create_user: admin"),
    r(
        "GET",
        "/identity/v3/users/{user_id}",
        MEMBER_IN,
        Empty,
        "identity:get_user: admin or the user itself (the member)",
    ),
    r("PATCH", "/identity/v3/users/{user_id}", ADMIN, Json("{}"), "identity:update_user: admin"),
    r("DELETE", "/identity/v3/users/{user_id}", ADMIN, Empty, "identity:delete_user: admin (a fresh victim)"),
    r("GET", "/identity/v3/users/{user_id}/projects", MEMBER_IN, Empty, "identity:list_user_projects: admin or owner"),
    r(
        "GET",
        "/identity/v3/users/{user_id}/application_credentials",
        MEMBER_IN,
        Empty,
        "identity:list_application_credentials: admin, system reader or the owner",
    ),
    r(
        "POST",
        "/identity/v3/users/{user_id}/application_credentials",
        OWNER_ONLY,
        Json("{}"),
        "identity:create_application_credential: the owner only, not even admin",
    ),
    r(
        "GET",
        "/identity/v3/users/{user_id}/application_credentials/{app_cred_id}",
        MEMBER_IN,
        Empty,
        "identity:get_application_credential: admin, system reader or the owner",
    ),
    r(
        "DELETE",
        "/identity/v3/users/{user_id}/application_credentials/{app_cred_id}",
        ADMIN,
        Empty,
        "identity:delete_application_credential: admin or the owner (a fresh victim's credential)",
    ),
    r("GET", "/identity/v3/projects/{project_id}/tags", IN_PROJECT, Empty, "identity:get_project_tags: project user"),
    r("PUT", "/identity/v3/projects/{project_id}/tags", ADMIN, Json("{}"), "identity:update_project_tags: admin"),
    r(
        "GET",
        "/identity/v3/projects/{project_id}/tags/{tag}",
        IN_PROJECT,
        Empty,
        "identity:get_project_tag: project user",
    ),
    r("PUT", "/identity/v3/projects/{project_id}/tags/{tag}", ADMIN, Empty, "identity:create_project_tag: admin"),
    r("DELETE", "/identity/v3/projects/{project_id}/tags/{tag}", ADMIN, Empty, "identity:delete_project_tag: admin"),
    r("DELETE", "/identity/v3/projects/{project_id}/tags", ADMIN, Empty, "identity:delete_project_tags: admin"),
    r(
        "GET",
        "/identity/v3/system/users/{user_id}/roles",
        ADMIN,
        Empty,
        "identity:list_system_grants_for_user: admin or system reader",
    ),
    r(
        "GET",
        "/identity/v3/system/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:check_system_grant_for_user: admin or system reader",
    ),
    r(
        "PUT",
        "/identity/v3/system/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:create_system_grant_for_user: admin",
    ),
    r(
        "DELETE",
        "/identity/v3/system/users/{user_id}/roles/{role_id}",
        ADMIN,
        Empty,
        "identity:revoke_system_grant_for_user: admin (a fresh victim's grant)",
    ),
    r("GET", "/identity/v3/roles", ADMIN, Empty, "identity:list_roles: admin"),
    r("POST", "/identity/v3/roles", ADMIN, Json("{}"), "identity:create_role: admin"),
    r("DELETE", "/identity/v3/roles/{role_id}", ADMIN, Empty, "identity:delete_role: admin (a fresh victim role)"),
    r("GET", "/identity/v3/roles/{role_id}", ADMIN, Empty, "identity:get_role: admin"),
    r("GET", "/identity/v3/role_assignments", ADMIN, Empty, "identity:list_role_assignments: admin"),
    r(
        "GET",
        "/identity/v3/domains",
        ANY,
        Empty,
        "identity:list_domains is admin/domain reader; Stratus: any, clients resolve --domain through it",
    ),
    r("GET", "/identity/v3/domains/{domain_id}", ANY, Empty, "identity:get_domain: users of the domain (all here)"),
    r("GET", "/identity/v3/services", ADMIN, Empty, "identity:list_services: admin"),
    r("GET", "/identity/v3/services/{service_id}", ADMIN, Empty, "identity:get_service: admin"),
    r("GET", "/identity/v3/endpoints", ADMIN, Empty, "identity:list_endpoints: admin"),
    r("GET", "/identity/v3/endpoints/{endpoint_id}", ADMIN, Empty, "identity:get_endpoint: admin"),
    r("GET", "/identity/v3/regions", ANY, Empty, "identity:list_regions: any"),
    r("GET", "/identity/v3/regions/{region_id}", ANY, Empty, "identity:get_region: any"),
    // ---- Compute (nova/policies).
    r("GET", "/compute/v2.1", ANY, Empty, "version document is anonymous"),
    r("GET", "/compute/v2.1/", ANY, Empty, "version document is anonymous"),
    r("GET", "/compute/v2.1/flavors", ANY, Empty, "flavors: any (no policy)"),
    r("POST", "/compute/v2.1/flavors", ADMIN, Json("{}"), "os-flavor-manage:create ADMIN"),
    r("GET", "/compute/v2.1/flavors/detail", ANY, Empty, "flavors: any (no policy)"),
    r(
        "GET",
        "/compute/v2.1/flavors/{id}",
        READ,
        Empty,
        "flavors: no policy; a private flavor shared with demo is hidden from other projects (404)",
    ),
    r(
        "DELETE",
        "/compute/v2.1/flavors/{id}",
        ADMIN,
        Empty,
        "os-flavor-manage:delete ADMIN (a fresh flavor per caller)",
    ),
    r("PUT", "/compute/v2.1/flavors/{id}", ADMIN, Json("{}"), "os-flavor-manage:update ADMIN (2.55, sent at it)"),
    r(
        "POST",
        "/compute/v2.1/flavors/{id}/action",
        ADMIN,
        Json(r#"{"addTenantAccess": {"tenant": "policy-tenant"}}"#),
        "os-flavor-access:add_tenant_access ADMIN (every action: ACTIONS)",
    ),
    r("GET", "/compute/v2.1/flavors/{id}/os-flavor-access", ADMIN, Empty, "os-flavor-access ADMIN"),
    r(
        "GET",
        "/compute/v2.1/flavors/{id}/os-extra_specs",
        READ,
        Empty,
        "os-flavor-extra-specs:index PROJECT_READER_OR_ADMIN, of a flavor the caller sees",
    ),
    r("POST", "/compute/v2.1/flavors/{id}/os-extra_specs", ADMIN, Json("{}"), "os-flavor-extra-specs:create ADMIN"),
    r(
        "GET",
        "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
        READ,
        Empty,
        "os-flavor-extra-specs:show PROJECT_READER_OR_ADMIN, of a flavor the caller sees",
    ),
    r(
        "PUT",
        "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
        ADMIN,
        Json("{}"),
        "os-flavor-extra-specs:update ADMIN",
    ),
    r("DELETE", "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", ADMIN, Empty, "os-flavor-extra-specs:delete ADMIN"),
    r("GET", "/compute/v2.1/servers", ANY, Empty, "servers:index PROJECT_READER_OR_ADMIN (own project)"),
    r("POST", "/compute/v2.1/servers", CREATE, Json("{}"), "servers:create PROJECT_MEMBER_OR_ADMIN"),
    r("GET", "/compute/v2.1/servers/detail", ANY, Empty, "servers:detail PROJECT_READER_OR_ADMIN (own project)"),
    r("GET", "/compute/v2.1/servers/{id}", READ, Empty, "servers:show PROJECT_READER_OR_ADMIN"),
    r("PUT", "/compute/v2.1/servers/{id}", WRITE, Json("{}"), "servers:update PROJECT_MEMBER_OR_ADMIN"),
    r("DELETE", "/compute/v2.1/servers/{id}", WRITE, Empty, "servers:delete PROJECT_MEMBER_OR_ADMIN"),
    r(
        "POST",
        "/compute/v2.1/servers/{id}/action",
        WRITE,
        Json(r#"{"os-stop": null}"#),
        "servers:stop PROJECT_MEMBER_OR_ADMIN (every action: ACTIONS)",
    ),
    r("GET", "/compute/v2.1/os-keypairs", ANY, Empty, "os-keypairs:index ADMIN or the owning user"),
    r("POST", "/compute/v2.1/os-keypairs", ANY, Json("{}"), "os-keypairs:create ADMIN or the owning user"),
    r(
        "GET",
        "/compute/v2.1/os-keypairs/{name}",
        ANY,
        Empty,
        "os-keypairs:show ADMIN or the owning user (each caller's own key pair)",
    ),
    r(
        "DELETE",
        "/compute/v2.1/os-keypairs/{name}",
        ANY,
        Empty,
        "os-keypairs:delete ADMIN or the owning user (each caller's own key pair)",
    ),
    r("GET", "/compute/v2.1/servers/{id}/metadata", READ, Empty, "server-metadata:index PROJECT_READER_OR_ADMIN"),
    r(
        "PUT",
        "/compute/v2.1/servers/{id}/metadata",
        WRITE,
        Json("{}"),
        "server-metadata:update_all PROJECT_MEMBER_OR_ADMIN",
    ),
    r(
        "POST",
        "/compute/v2.1/servers/{id}/metadata",
        WRITE,
        Json("{}"),
        "server-metadata:create PROJECT_MEMBER_OR_ADMIN",
    ),
    r("GET", "/compute/v2.1/servers/{id}/metadata/{key}", READ, Empty, "server-metadata:show PROJECT_READER_OR_ADMIN"),
    r(
        "PUT",
        "/compute/v2.1/servers/{id}/metadata/{key}",
        WRITE,
        Json("{}"),
        "server-metadata:update PROJECT_MEMBER_OR_ADMIN",
    ),
    r(
        "DELETE",
        "/compute/v2.1/servers/{id}/metadata/{key}",
        WRITE,
        Empty,
        "server-metadata:delete PROJECT_MEMBER_OR_ADMIN",
    ),
    r("GET", "/compute/v2.1/servers/{id}/tags", READ, Empty, "os-server-tags:index PROJECT_READER_OR_ADMIN"),
    r("PUT", "/compute/v2.1/servers/{id}/tags", WRITE, Json("{}"), "os-server-tags:update_all PROJECT_MEMBER_OR_ADMIN"),
    r("DELETE", "/compute/v2.1/servers/{id}/tags", WRITE, Empty, "os-server-tags:delete_all PROJECT_MEMBER_OR_ADMIN"),
    r("GET", "/compute/v2.1/servers/{id}/tags/{tag}", READ, Empty, "os-server-tags:show PROJECT_READER_OR_ADMIN"),
    r("PUT", "/compute/v2.1/servers/{id}/tags/{tag}", WRITE, Empty, "os-server-tags:update PROJECT_MEMBER_OR_ADMIN"),
    r("DELETE", "/compute/v2.1/servers/{id}/tags/{tag}", WRITE, Empty, "os-server-tags:delete PROJECT_MEMBER_OR_ADMIN"),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/os-instance-actions",
        READ,
        Empty,
        "os-instance-actions:list PROJECT_READER_OR_ADMIN",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/os-instance-actions/{req}",
        READ,
        Empty,
        "os-instance-actions:show PROJECT_READER_OR_ADMIN",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/os-volume_attachments",
        READ,
        Empty,
        "os-volumes-attachments:index PROJECT_READER_OR_ADMIN",
    ),
    r(
        "POST",
        "/compute/v2.1/servers/{id}/os-volume_attachments",
        WRITE,
        Json("{}"),
        "os-volumes-attachments:create PROJECT_MEMBER_OR_ADMIN",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        READ,
        Empty,
        "os-volumes-attachments:show PROJECT_READER_OR_ADMIN",
    ),
    r(
        "PUT",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        WRITE,
        Json("{}"),
        "os-volumes-attachments:update PROJECT_MEMBER_OR_ADMIN (2.85, sent at it)",
    ),
    r(
        "DELETE",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        WRITE,
        Empty,
        "os-volumes-attachments:delete PROJECT_MEMBER_OR_ADMIN",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/migrations",
        ADMIN_ON,
        Empty,
        "os-server-migrations:index ADMIN (2.23, sent at it)",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/migrations/{migration_id}",
        [F, F, N, N],
        Empty,
        "os-server-migrations:show ADMIN (2.23); no live migration exists, so the admin's answer is 404 too",
    ),
    r(
        "GET",
        "/compute/v2.1/servers/{id}/topology",
        READ,
        Empty,
        "servers:topology:index PROJECT_READER_OR_ADMIN (2.78)",
    ),
    r(
        "GET",
        "/compute/v2.1/os-migrations",
        ADMIN,
        Empty,
        "os-migrations:index PROJECT_MANAGER_OR_ADMIN, and index:all_projects ADMIN without project_id (no manager column here: the controller's tests cover a project manager)",
    ),
    r("GET", "/compute/v2.1/os-services", ADMIN, Empty, "os-services:list ADMIN"),
    r(
        "PUT",
        "/compute/v2.1/os-services/{action}",
        ADMIN,
        Json(r#"{"host": "policy-host", "binary": "nova-compute"}"#),
        "os-services:update ADMIN",
    ),
    r("GET", "/compute/v2.1/limits", ANY, Empty, "limits RULE_ANY"),
    r("GET", "/compute/v2.1/os-hypervisors", ADMIN, Empty, "os-hypervisors:list ADMIN"),
    r("GET", "/compute/v2.1/os-hypervisors/detail", ADMIN, Empty, "os-hypervisors:list-detail ADMIN"),
    r("GET", "/compute/v2.1/os-hypervisors/statistics", ADMIN, Empty, "os-hypervisors:statistics ADMIN"),
    r("GET", "/compute/v2.1/os-hypervisors/{id}", ADMIN, Empty, "os-hypervisors:show ADMIN"),
    r("GET", "/compute/v2.1/os-hypervisors/{id}/uptime", ADMIN, Empty, "os-hypervisors:uptime ADMIN"),
    r(
        "GET",
        "/compute/v2.1/os-hypervisors/{id}/search",
        ADMIN,
        Empty,
        "os-hypervisors:search ADMIN (the id is a host name pattern)",
    ),
    r(
        "GET",
        "/compute/v2.1/os-hypervisors/{id}/servers",
        ADMIN,
        Empty,
        "os-hypervisors:servers ADMIN (the id is a host name pattern)",
    ),
    r("GET", "/compute/v2.1/os-hosts", ADMIN, Empty, "os-hosts:list ADMIN"),
    r("GET", "/compute/v2.1/os-hosts/{host}", ADMIN, Empty, "os-hosts:show ADMIN"),
    r("PUT", "/compute/v2.1/os-hosts/{host}", ADMIN, Json(r#"{"status": "enable"}"#), "os-hosts:update ADMIN"),
    r(
        "GET",
        "/compute/v2.1/os-hosts/{host}/{power}",
        ADMIN,
        Empty,
        "os-hosts:start ADMIN (501 for admins: no host power actions)",
    ),
    r("GET", "/compute/v2.1/os-simple-tenant-usage", ADMIN, Empty, "os-simple-tenant-usage:list ADMIN"),
    r(
        "GET",
        "/compute/v2.1/os-simple-tenant-usage/{tenant_id}",
        IN_PROJECT,
        Empty,
        "os-simple-tenant-usage:show PROJECT_READER_OR_ADMIN (another project's: 403)",
    ),
    r("GET", "/compute/v2.1/os-instance_usage_audit_log", ADMIN, Empty, "os-instance-usage-audit-log:list ADMIN"),
    r(
        "GET",
        "/compute/v2.1/os-instance_usage_audit_log/{before}",
        ADMIN,
        Empty,
        "os-instance-usage-audit-log:show ADMIN",
    ),
    r("GET", "/compute/v2.1/servers/{id}/diagnostics", ADMIN_ON, Empty, "os-server-diagnostics ADMIN"),
    r("GET", "/compute/v2.1/os-networks", ANY, Empty, "os-networks:list PROJECT_READER_OR_ADMIN"),
    r("GET", "/compute/v2.1/os-networks/{id}", ANY, Empty, "os-networks:show PROJECT_READER_OR_ADMIN"),
    r("GET", "/compute/v2.1/images", ANY, Empty, "image proxy: Glance's get_images (own and public)"),
    r("GET", "/compute/v2.1/images/detail", ANY, Empty, "image proxy: Glance's get_images (own and public)"),
    r("GET", "/compute/v2.1/images/{id}", READ, Empty, "image proxy: Glance's get_image (private image of demo)"),
    r("DELETE", "/compute/v2.1/images/{id}", WRITE, Empty, "image proxy: Glance's delete_image"),
    r("GET", "/compute/v2.1/images/{id}/metadata", READ, Empty, "image-metadata: Glance's get_image"),
    r("PUT", "/compute/v2.1/images/{id}/metadata", WRITE, Json("{}"), "image-metadata: Glance's modify_image"),
    r("POST", "/compute/v2.1/images/{id}/metadata", WRITE, Json("{}"), "image-metadata: Glance's modify_image"),
    r("GET", "/compute/v2.1/images/{id}/metadata/{key}", READ, Empty, "image-metadata: Glance's get_image"),
    r("PUT", "/compute/v2.1/images/{id}/metadata/{key}", WRITE, Json("{}"), "image-metadata: Glance's modify_image"),
    r("DELETE", "/compute/v2.1/images/{id}/metadata/{key}", WRITE, Empty, "image-metadata: Glance's modify_image"),
    r("GET", "/compute/v2.1/os-volumes", ANY, Empty, "os-volumes:list PROJECT_READER_OR_ADMIN (own project)"),
    r("GET", "/compute/v2.1/os-volumes/detail", ANY, Empty, "os-volumes:detail PROJECT_READER_OR_ADMIN (own project)"),
    r("POST", "/compute/v2.1/os-volumes", CREATE, Json("{}"), "os-volumes:create PROJECT_MEMBER_OR_ADMIN"),
    r("GET", "/compute/v2.1/os-volumes/{id}", READ, Empty, "os-volumes:show PROJECT_READER_OR_ADMIN"),
    r("DELETE", "/compute/v2.1/os-volumes/{id}", WRITE, Empty, "os-volumes:delete PROJECT_MEMBER_OR_ADMIN"),
    r(
        "GET",
        "/compute/v2.1/os-snapshots",
        ANY,
        Empty,
        "os-volumes:snapshots:list PROJECT_READER_OR_ADMIN (own project)",
    ),
    r(
        "GET",
        "/compute/v2.1/os-snapshots/detail",
        ANY,
        Empty,
        "os-volumes:snapshots:detail PROJECT_READER_OR_ADMIN (own project)",
    ),
    r("POST", "/compute/v2.1/os-snapshots", CREATE, Json("{}"), "os-volumes:snapshots:create PROJECT_MEMBER_OR_ADMIN"),
    r("GET", "/compute/v2.1/os-snapshots/{id}", READ, Empty, "os-volumes:snapshots:show PROJECT_READER_OR_ADMIN"),
    r("DELETE", "/compute/v2.1/os-snapshots/{id}", WRITE, Empty, "os-volumes:snapshots:delete PROJECT_MEMBER_OR_ADMIN"),
    r("GET", "/compute/v2.1/os-availability-zone", ANY, Empty, "os-availability-zone:list RULE_ANY"),
    r("GET", "/compute/v2.1/os-availability-zone/detail", ADMIN, Empty, "os-availability-zone:detail ADMIN"),
    r("GET", "/compute/v2.1/os-aggregates", ADMIN, Empty, "os-aggregates:index ADMIN"),
    r("POST", "/compute/v2.1/os-aggregates", ADMIN, Json("{}"), "os-aggregates:create ADMIN"),
    r("GET", "/compute/v2.1/os-aggregates/{id}", ADMIN, Empty, "os-aggregates:show ADMIN"),
    r("PUT", "/compute/v2.1/os-aggregates/{id}", ADMIN, Json("{}"), "os-aggregates:update ADMIN"),
    r(
        "DELETE",
        "/compute/v2.1/os-aggregates/{id}",
        ADMIN,
        Empty,
        "os-aggregates:delete ADMIN (a fresh aggregate per caller; 400 while it has its host)",
    ),
    r(
        "POST",
        "/compute/v2.1/os-aggregates/{id}/action",
        ADMIN,
        Json(r#"{"set_metadata": {"metadata": {"k": "v"}}}"#),
        "os-aggregates:set_metadata ADMIN (every action: ACTIONS)",
    ),
    r("GET", "/compute/v2.1/extensions", ANY, Empty, "extensions RULE_ANY"),
    r("GET", "/compute/v2.1/extensions/{alias}", ANY, Empty, "extensions RULE_ANY"),
    r("GET", "/compute/v2", ANY, Empty, "version document is anonymous"),
    r("GET", "/compute/v2/", ANY, Empty, "version document is anonymous"),
    r(
        "GET",
        "/compute/v2.1/os-quota-sets/{project_id}",
        IN_PROJECT,
        Empty,
        "os-quota-sets:show PROJECT_READER_OR_ADMIN",
    ),
    r("PUT", "/compute/v2.1/os-quota-sets/{project_id}", ADMIN, Json("{}"), "os-quota-sets:update ADMIN"),
    r("DELETE", "/compute/v2.1/os-quota-sets/{project_id}", ADMIN, Empty, "os-quota-sets:delete ADMIN"),
    r("GET", "/compute/v2.1/os-quota-sets/{project_id}/defaults", ANY, Empty, "os-quota-sets:defaults RULE_ANY"),
    r(
        "GET",
        "/compute/v2.1/os-quota-sets/{project_id}/detail",
        IN_PROJECT,
        Empty,
        "os-quota-sets:detail PROJECT_READER_OR_ADMIN",
    ),
    r("GET", "/compute/v2.1/os-quota-class-sets/{id}", ADMIN, Empty, "os-quota-class-sets:show ADMIN"),
    r("PUT", "/compute/v2.1/os-quota-class-sets/{id}", ADMIN, Json("{}"), "os-quota-class-sets:update ADMIN"),
    r("GET", "/compute", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/compute/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/compute/openapi.json", ANY, Empty, "Stratus's API description is anonymous"),
    r("GET", "/identity/openapi.json", ANY, Empty, "Stratus's API description is anonymous"),
    r("GET", "/image/openapi.json", ANY, Empty, "Stratus's API description is anonymous"),
    r("GET", "/volume/openapi.json", ANY, Empty, "Stratus's API description is anonymous"),
    r("GET", "/stratus/openapi.json", ANY, Empty, "Stratus's API description is anonymous"),
    // ---- Image (glance/policies).
    r("GET", "/image", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/image/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/image/versions", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/image/v2", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/image/v2/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/image/v2/images", ANY, Empty, "get_images ADMIN_OR_PROJECT_READER (own and public images)"),
    r("POST", "/image/v2/images", CREATE, Json("{}"), "add_image ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE"),
    r("GET", "/image/v2/images/{id}", READ, Empty, "get_image ADMIN_OR_PROJECT_READER_GET_IMAGE"),
    r("PATCH", "/image/v2/images/{id}", WRITE, Patch("{}"), "modify_image ADMIN_OR_PROJECT_MEMBER"),
    r("DELETE", "/image/v2/images/{id}", WRITE, Empty, "delete_image ADMIN_OR_PROJECT_MEMBER"),
    r("PUT", "/image/v2/images/{id}/file", WRITE, Octets, "upload_image ADMIN_OR_PROJECT_MEMBER"),
    r(
        "GET",
        "/image/v2/images/{id}/file",
        WRITE,
        Empty,
        "download_image ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE: readers may not download",
    ),
    r("POST", "/image/v2/images/{id}/actions/deactivate", WRITE, Empty, "deactivate ADMIN_OR_PROJECT_MEMBER"),
    r("POST", "/image/v2/images/{id}/actions/reactivate", WRITE, Empty, "reactivate ADMIN_OR_PROJECT_MEMBER"),
    r("PUT", "/image/v2/images/{id}/tags/{tag}", WRITE, Empty, "modify_image ADMIN_OR_PROJECT_MEMBER"),
    r("DELETE", "/image/v2/images/{id}/tags/{tag}", WRITE, Empty, "modify_image ADMIN_OR_PROJECT_MEMBER"),
    r("GET", "/image/v2/schemas/image", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/schemas/images", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/schemas/member", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/schemas/members", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/info/import", ANY, Empty, "get_image_import_info: any authenticated caller"),
    r("PUT", "/image/v2/images/{id}/stage", WRITE, Octets, "stage ADMIN_OR_PROJECT_MEMBER (upload_image)"),
    r("POST", "/image/v2/images/{id}/import", WRITE, Json("{}"), "import ADMIN_OR_PROJECT_MEMBER (modify_image)"),
    r("GET", "/image/v2/images/{id}/tasks", READ, Empty, "get_image_tasks: get_image ADMIN_OR_PROJECT_READER"),
    r("GET", "/image/v2/tasks", ADMIN, Empty, "tasks_api_access / get_tasks: role:admin"),
    r("POST", "/image/v2/tasks", ADMIN, Json("{}"), "tasks_api_access / add_task: role:admin"),
    r(
        "GET",
        "/image/v2/tasks/{id}",
        [F, F, F, N],
        Empty,
        "tasks_api_access / get_task: role:admin (the world holds no task: the admin passes policy, then 404)",
    ),
    r("GET", "/image/v2/schemas/task", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/schemas/tasks", ANY, Empty, "schemas are anonymous"),
    r("GET", "/image/v2/images/{id}/members", READ, Empty, "get_members ADMIN_OR_PROJECT_READER"),
    r("POST", "/image/v2/images/{id}/members", WRITE, Json("{}"), "add_member ADMIN_OR_PROJECT_MEMBER (the owner)"),
    r("GET", "/image/v2/images/{id}/members/{member_id}", READ, Empty, "get_member ADMIN_OR_PROJECT_READER"),
    r(
        "PUT",
        "/image/v2/images/{id}/members/{member_id}",
        ADMIN_ON,
        Json("{}"),
        "modify_member: admin or the member project itself (none of the callers; the owner may not answer)",
    ),
    r(
        "DELETE",
        "/image/v2/images/{id}/members/{member_id}",
        WRITE,
        Empty,
        "delete_member ADMIN_OR_PROJECT_MEMBER (the owner)",
    ),
    // ---- Glance metadefs (glance/policies/metadef.py): admins write, readers
    // read; the fixture namespace is private to `demo`, so another project gets 404.
    r(
        "GET",
        "/image/v2/metadefs/namespaces",
        ANY,
        Empty,
        "get_metadef_namespaces: anyone (public ones and the project's own)",
    ),
    r("POST", "/image/v2/metadefs/namespaces", ADMIN, Json("{}"), "add_metadef_namespace: admin"),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}",
        READ,
        Empty,
        "get_metadef_namespace: a private namespace only to its owner project",
    ),
    r(
        "PUT",
        "/image/v2/metadefs/namespaces/{namespace}",
        ADMIN_ON,
        Json("{}"),
        "modify_metadef_namespace: admin (a hidden namespace is a 404 first)",
    ),
    r("DELETE", "/image/v2/metadefs/namespaces/{namespace}", ADMIN_ON, Empty, "delete_metadef_namespace: admin"),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/objects",
        READ,
        Empty,
        "get_metadef_objects: readers of a visible namespace",
    ),
    r("POST", "/image/v2/metadefs/namespaces/{namespace}/objects", ADMIN_ON, Json("{}"), "add_metadef_object: admin"),
    r(
        "DELETE",
        "/image/v2/metadefs/namespaces/{namespace}/objects",
        ADMIN_ON,
        Empty,
        "delete_metadef_namespace (its objects): admin",
    ),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
        READ,
        Empty,
        "get_metadef_object: readers of a visible namespace",
    ),
    r(
        "PUT",
        "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
        ADMIN_ON,
        Json("{}"),
        "modify_metadef_object: admin",
    ),
    r(
        "DELETE",
        "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
        ADMIN_ON,
        Empty,
        "delete_metadef_object: admin",
    ),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/properties",
        READ,
        Empty,
        "get_metadef_properties: readers of a visible namespace",
    ),
    r(
        "POST",
        "/image/v2/metadefs/namespaces/{namespace}/properties",
        ADMIN_ON,
        Json("{}"),
        "add_metadef_property: admin",
    ),
    r(
        "DELETE",
        "/image/v2/metadefs/namespaces/{namespace}/properties",
        ADMIN_ON,
        Empty,
        "delete_metadef_namespace (its properties): admin",
    ),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
        READ,
        Empty,
        "get_metadef_property: readers of a visible namespace",
    ),
    r(
        "PUT",
        "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
        ADMIN_ON,
        Json("{}"),
        "modify_metadef_property: admin",
    ),
    r(
        "DELETE",
        "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
        ADMIN_ON,
        Empty,
        "remove_metadef_property: admin",
    ),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/tags",
        READ,
        Empty,
        "get_metadef_tags: readers of a visible namespace",
    ),
    r("POST", "/image/v2/metadefs/namespaces/{namespace}/tags", ADMIN_ON, Json("{}"), "add_metadef_tags: admin"),
    r("DELETE", "/image/v2/metadefs/namespaces/{namespace}/tags", ADMIN_ON, Empty, "delete_metadef_tags: admin"),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}",
        READ,
        Empty,
        "get_metadef_tag: readers of a visible namespace",
    ),
    r(
        "POST",
        "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}",
        ADMIN_ON,
        Empty,
        "add_metadef_tag: admin (the fixture tag exists: 409)",
    ),
    r("PUT", "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", ADMIN_ON, Json("{}"), "modify_metadef_tag: admin"),
    r("DELETE", "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", ADMIN_ON, Empty, "delete_metadef_tag: admin"),
    r(
        "GET",
        "/image/v2/metadefs/namespaces/{namespace}/resource_types",
        READ,
        Empty,
        "list_metadef_resource_types: readers of a visible namespace",
    ),
    r(
        "POST",
        "/image/v2/metadefs/namespaces/{namespace}/resource_types",
        ADMIN_ON,
        Json("{}"),
        "add_metadef_resource_type_association: admin",
    ),
    r(
        "DELETE",
        "/image/v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}",
        ADMIN_ON,
        Empty,
        "remove_metadef_resource_type_association: admin",
    ),
    r("GET", "/image/v2/metadefs/resource_types", ANY, Empty, "list_metadef_resource_types: anyone"),
    r("GET", "/image/v2/schemas/metadefs/{name}", ANY, Empty, "schemas are anonymous"),
    // ---- Block Storage (cinder/policies), under /v3/{project_id}: the URL's
    // project must be the caller's unless admin. Cinder answers a mismatch
    // 400 "Malformed request url" even to admins; Stratus: 403, admins pass.
    r("GET", "/volume", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/volume/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/volume/v3", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/volume/v3/", ANY, Empty, "version discovery is anonymous"),
    r("GET", "/volume/v3/{project_id}/limits", IN_PROJECT, Empty, "limits_extension:used_limits PROJECT_READER"),
    r("GET", "/volume/v3/{project_id}/volumes", IN_PROJECT, Empty, "volume:get_all PROJECT_READER"),
    r("POST", "/volume/v3/{project_id}/volumes", MEMBER_IN, Json("{}"), "volume:create PROJECT_MEMBER"),
    r("GET", "/volume/v3/{project_id}/volumes/detail", IN_PROJECT, Empty, "volume:get_all PROJECT_READER"),
    r("GET", "/volume/v3/{project_id}/volumes/summary", IN_PROJECT, Empty, "volume:get_all PROJECT_READER (summary)"),
    r(
        "GET",
        "/volume/v3/{project_id}/resource_filters",
        IN_PROJECT,
        Empty,
        "no policy in Cinder: any user of the project",
    ),
    r("GET", "/volume/v3/{project_id}/volumes/{volume_id}", IN_PROJECT, Empty, "volume:get PROJECT_READER"),
    r("PUT", "/volume/v3/{project_id}/volumes/{volume_id}", MEMBER_IN, Json("{}"), "volume:update PROJECT_MEMBER"),
    r("DELETE", "/volume/v3/{project_id}/volumes/{volume_id}", MEMBER_IN, Empty, "volume:delete PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/{project_id}/volumes/{volume_id}/action",
        MEMBER_IN,
        Json(r#"{"os-extend": {"new_size": 2}}"#),
        "volume:extend PROJECT_MEMBER (every action: ACTIONS)",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata",
        IN_PROJECT,
        Empty,
        "volume:get_volume_metadata PROJECT_READER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata",
        MEMBER_IN,
        Json("{}"),
        "volume:create_volume_metadata PROJECT_MEMBER",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata",
        MEMBER_IN,
        Json("{}"),
        "volume:update_volume_metadata PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}",
        IN_PROJECT,
        Empty,
        "volume:get_volume_metadata PROJECT_READER",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}",
        MEMBER_IN,
        Json("{}"),
        "volume:update_volume_metadata PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}",
        MEMBER_IN,
        Empty,
        "volume:delete_volume_metadata PROJECT_MEMBER",
    ),
    r("GET", "/volume/v3/{project_id}/attachments", IN_PROJECT, Empty, "attachments index: project reader"),
    r("POST", "/volume/v3/{project_id}/attachments", MEMBER_IN, Json("{}"), "volume:attachment_create PROJECT_MEMBER"),
    r("GET", "/volume/v3/{project_id}/attachments/detail", IN_PROJECT, Empty, "attachments index: project reader"),
    r(
        "GET",
        "/volume/v3/{project_id}/attachments/{attachment_id}",
        IN_PROJECT,
        Empty,
        "attachment show: project reader",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/attachments/{attachment_id}",
        MEMBER_IN,
        Json("{}"),
        "volume:attachment_update PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/attachments/{attachment_id}",
        MEMBER_IN,
        Empty,
        "volume:attachment_delete PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/attachments/{attachment_id}/action",
        MEMBER_IN,
        Json(r#"{"os-complete": null}"#),
        "volume:attachment_complete PROJECT_MEMBER",
    ),
    // ---- The same without the project in the URL (Cinder 3.67+).
    r("GET", "/volume/v3/limits", ANY, Empty, "limits_extension:used_limits PROJECT_READER (own project)"),
    r("GET", "/volume/v3/volumes", ANY, Empty, "volume:get_all PROJECT_READER (own project)"),
    r("POST", "/volume/v3/volumes", CREATE, Json("{}"), "volume:create PROJECT_MEMBER"),
    r("GET", "/volume/v3/volumes/detail", ANY, Empty, "volume:get_all PROJECT_READER (own project)"),
    r("GET", "/volume/v3/volumes/summary", ANY, Empty, "volume:get_all PROJECT_READER (own project's summary)"),
    r("GET", "/volume/v3/resource_filters", ANY, Empty, "no policy in Cinder: anyone authenticated"),
    r("GET", "/volume/v3/volumes/{volume_id}", READ, Empty, "volume:get PROJECT_READER"),
    r("PUT", "/volume/v3/volumes/{volume_id}", WRITE, Json("{}"), "volume:update PROJECT_MEMBER"),
    r("DELETE", "/volume/v3/volumes/{volume_id}", WRITE, Empty, "volume:delete PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/volumes/{volume_id}/action",
        WRITE,
        Json(r#"{"os-extend": {"new_size": 2}}"#),
        "volume:extend PROJECT_MEMBER (every action: ACTIONS)",
    ),
    r("GET", "/volume/v3/volumes/{volume_id}/metadata", READ, Empty, "volume:get_volume_metadata PROJECT_READER"),
    r(
        "POST",
        "/volume/v3/volumes/{volume_id}/metadata",
        WRITE,
        Json("{}"),
        "volume:create_volume_metadata PROJECT_MEMBER",
    ),
    r(
        "PUT",
        "/volume/v3/volumes/{volume_id}/metadata",
        WRITE,
        Json("{}"),
        "volume:update_volume_metadata PROJECT_MEMBER",
    ),
    r("GET", "/volume/v3/volumes/{volume_id}/metadata/{key}", READ, Empty, "volume:get_volume_metadata PROJECT_READER"),
    r(
        "PUT",
        "/volume/v3/volumes/{volume_id}/metadata/{key}",
        WRITE,
        Json("{}"),
        "volume:update_volume_metadata PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/volumes/{volume_id}/metadata/{key}",
        WRITE,
        Empty,
        "volume:delete_volume_metadata PROJECT_MEMBER",
    ),
    r("GET", "/volume/v3/{project_id}/types", IN_PROJECT, Empty, "volume_extension:type_get_all PROJECT_READER"),
    r("POST", "/volume/v3/{project_id}/types", ADMIN, Json("{}"), "volume_extension:type_create ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}",
        IN_PROJECT,
        Empty,
        "volume_extension:type_get PROJECT_READER; a private type shared with demo is hidden from other projects",
    ),
    r("PUT", "/volume/v3/{project_id}/types/{type_id}", ADMIN, Json("{}"), "volume_extension:type_update ADMIN"),
    r(
        "DELETE",
        "/volume/v3/{project_id}/types/{type_id}",
        ADMIN,
        Empty,
        "volume_extension:type_delete ADMIN (a fresh type per caller)",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}/extra_specs",
        IN_PROJECT,
        Empty,
        "volume_extension:types_extra_specs:index PROJECT_READER, of a type the caller sees",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/types/{type_id}/extra_specs",
        ADMIN,
        Json("{}"),
        "volume_extension:types_extra_specs:create ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}",
        IN_PROJECT,
        Empty,
        "volume_extension:types_extra_specs:show PROJECT_READER (a user-visible key)",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}",
        ADMIN,
        Json("{}"),
        "volume_extension:types_extra_specs:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}",
        ADMIN,
        Empty,
        "volume_extension:types_extra_specs:delete ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}/os-volume-type-access",
        ADMIN,
        Empty,
        "volume_extension:volume_type_access:get_all_for_type ADMIN",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/types/{type_id}/action",
        ADMIN,
        Json(r#"{"addProjectAccess": {"project": "policy-tenant"}}"#),
        "volume_extension:volume_type_access:addProjectAccess ADMIN (every action: ACTIONS)",
    ),
    r("GET", "/volume/v3/types", ANY, Empty, "volume_extension:type_get_all PROJECT_READER"),
    r("POST", "/volume/v3/types", ADMIN, Json("{}"), "volume_extension:type_create ADMIN"),
    r(
        "GET",
        "/volume/v3/types/{type_id}",
        READ,
        Empty,
        "volume_extension:type_get PROJECT_READER; a private type shared with demo is hidden from other projects",
    ),
    r("PUT", "/volume/v3/types/{type_id}", ADMIN, Json("{}"), "volume_extension:type_update ADMIN"),
    r(
        "DELETE",
        "/volume/v3/types/{type_id}",
        ADMIN,
        Empty,
        "volume_extension:type_delete ADMIN (a fresh type per caller)",
    ),
    r(
        "GET",
        "/volume/v3/types/{type_id}/extra_specs",
        READ,
        Empty,
        "volume_extension:types_extra_specs:index PROJECT_READER, of a type the caller sees",
    ),
    r(
        "POST",
        "/volume/v3/types/{type_id}/extra_specs",
        ADMIN,
        Json("{}"),
        "volume_extension:types_extra_specs:create ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/types/{type_id}/extra_specs/{key}",
        READ,
        Empty,
        "volume_extension:types_extra_specs:show PROJECT_READER (a user-visible key)",
    ),
    r(
        "PUT",
        "/volume/v3/types/{type_id}/extra_specs/{key}",
        ADMIN,
        Json("{}"),
        "volume_extension:types_extra_specs:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/types/{type_id}/extra_specs/{key}",
        ADMIN,
        Empty,
        "volume_extension:types_extra_specs:delete ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/types/{type_id}/os-volume-type-access",
        ADMIN,
        Empty,
        "volume_extension:volume_type_access:get_all_for_type ADMIN",
    ),
    r(
        "POST",
        "/volume/v3/types/{type_id}/action",
        ADMIN,
        Json(r#"{"addProjectAccess": {"project": "policy-tenant"}}"#),
        "volume_extension:volume_type_access:addProjectAccess ADMIN (every action: ACTIONS)",
    ),
    // ---- Group types (3.11), generic volume groups (3.13), user messages (3.3).
    r(
        "GET",
        "/volume/v3/{project_id}/group_types",
        IN_PROJECT,
        Empty,
        "group:group_types:get_all: any reader (public types)",
    ),
    r("POST", "/volume/v3/{project_id}/group_types", ADMIN, Json("{}"), "group:group_types:create ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/group_types/{group_type_id}",
        IN_PROJECT,
        Empty,
        "group:group_types:get: public type, any reader",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/group_types/{group_type_id}",
        ADMIN,
        Json("{}"),
        "group:group_types:update ADMIN",
    ),
    r("DELETE", "/volume/v3/{project_id}/group_types/{group_type_id}", ADMIN, Empty, "group:group_types:delete ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs",
        ADMIN,
        Empty,
        "group:group_types_specs ADMIN",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs",
        ADMIN,
        Json("{}"),
        "group:group_types_specs ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}",
        ADMIN,
        Empty,
        "group:group_types_specs ADMIN",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}",
        ADMIN,
        Json("{}"),
        "group:group_types_specs ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}",
        ADMIN,
        Empty,
        "group:group_types_specs ADMIN",
    ),
    r("GET", "/volume/v3/{project_id}/groups", IN_PROJECT, Empty, "group:get_all PROJECT_READER"),
    r("POST", "/volume/v3/{project_id}/groups", MEMBER_IN, Json("{}"), "group:create PROJECT_MEMBER"),
    r("GET", "/volume/v3/{project_id}/groups/detail", IN_PROJECT, Empty, "group:get_all PROJECT_READER"),
    r(
        "POST",
        "/volume/v3/{project_id}/groups/action",
        MEMBER_IN,
        Json("{}"),
        "group:create PROJECT_MEMBER (create-from-src)",
    ),
    r("GET", "/volume/v3/{project_id}/groups/{group_id}", IN_PROJECT, Empty, "group:get PROJECT_READER"),
    r("PUT", "/volume/v3/{project_id}/groups/{group_id}", MEMBER_IN, Json("{}"), "group:update PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/{project_id}/groups/{group_id}/action",
        MEMBER_IN,
        Json("{}"),
        "group:delete PROJECT_MEMBER (reset_status: ADMIN)",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/group_snapshots",
        IN_PROJECT,
        Empty,
        "group:get_all_group_snapshots PROJECT_READER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/group_snapshots",
        MEMBER_IN,
        Json("{}"),
        "group:create_group_snapshot PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/group_snapshots/detail",
        IN_PROJECT,
        Empty,
        "group:get_all_group_snapshots PROJECT_READER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}",
        IN_PROJECT,
        Empty,
        "group:get_group_snapshot PROJECT_READER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}",
        MEMBER_IN,
        Empty,
        "group:delete_group_snapshot PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}/action",
        ADMIN,
        Json(r#"{"reset_status": {"status": "error"}}"#),
        "group:reset_group_snapshot_status ADMIN",
    ),
    r("GET", "/volume/v3/{project_id}/messages", IN_PROJECT, Empty, "message:get_all PROJECT_READER"),
    r("GET", "/volume/v3/{project_id}/messages/{message_id}", IN_PROJECT, Empty, "message:get PROJECT_READER"),
    r("DELETE", "/volume/v3/{project_id}/messages/{message_id}", MEMBER_IN, Empty, "message:delete PROJECT_MEMBER"),
    r("GET", "/volume/v3/group_types", ANY, Empty, "group:group_types:get_all: any reader (public types)"),
    r("POST", "/volume/v3/group_types", ADMIN, Json("{}"), "group:group_types:create ADMIN"),
    r("GET", "/volume/v3/group_types/{group_type_id}", ANY, Empty, "group:group_types:get: public type, any reader"),
    r("PUT", "/volume/v3/group_types/{group_type_id}", ADMIN, Json("{}"), "group:group_types:update ADMIN"),
    r("DELETE", "/volume/v3/group_types/{group_type_id}", ADMIN, Empty, "group:group_types:delete ADMIN"),
    r("GET", "/volume/v3/group_types/{group_type_id}/group_specs", ADMIN, Empty, "group:group_types_specs ADMIN"),
    r("POST", "/volume/v3/group_types/{group_type_id}/group_specs", ADMIN, Json("{}"), "group:group_types_specs ADMIN"),
    r("GET", "/volume/v3/group_types/{group_type_id}/group_specs/{key}", ADMIN, Empty, "group:group_types_specs ADMIN"),
    r(
        "PUT",
        "/volume/v3/group_types/{group_type_id}/group_specs/{key}",
        ADMIN,
        Json("{}"),
        "group:group_types_specs ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/group_types/{group_type_id}/group_specs/{key}",
        ADMIN,
        Empty,
        "group:group_types_specs ADMIN",
    ),
    r("GET", "/volume/v3/groups", ANY, Empty, "group:get_all PROJECT_READER (own project)"),
    r("POST", "/volume/v3/groups", CREATE, Json("{}"), "group:create PROJECT_MEMBER"),
    r("GET", "/volume/v3/groups/detail", ANY, Empty, "group:get_all PROJECT_READER (own project)"),
    r("POST", "/volume/v3/groups/action", CREATE, Json("{}"), "group:create PROJECT_MEMBER (create-from-src)"),
    r("GET", "/volume/v3/groups/{group_id}", READ, Empty, "group:get PROJECT_READER"),
    r("PUT", "/volume/v3/groups/{group_id}", WRITE, Json("{}"), "group:update PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/groups/{group_id}/action",
        WRITE,
        Json("{}"),
        "group:delete PROJECT_MEMBER (reset_status: ADMIN)",
    ),
    r("GET", "/volume/v3/group_snapshots", ANY, Empty, "group:get_all_group_snapshots PROJECT_READER (own project)"),
    r("POST", "/volume/v3/group_snapshots", CREATE, Json("{}"), "group:create_group_snapshot PROJECT_MEMBER"),
    r(
        "GET",
        "/volume/v3/group_snapshots/detail",
        ANY,
        Empty,
        "group:get_all_group_snapshots PROJECT_READER (own project)",
    ),
    r("GET", "/volume/v3/group_snapshots/{group_snapshot_id}", READ, Empty, "group:get_group_snapshot PROJECT_READER"),
    r(
        "DELETE",
        "/volume/v3/group_snapshots/{group_snapshot_id}",
        WRITE,
        Empty,
        "group:delete_group_snapshot PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/group_snapshots/{group_snapshot_id}/action",
        ADMIN_ON,
        Json(r#"{"reset_status": {"status": "error"}}"#),
        "group:reset_group_snapshot_status ADMIN",
    ),
    r("GET", "/volume/v3/messages", ANY, Empty, "message:get_all PROJECT_READER (own project)"),
    r("GET", "/volume/v3/messages/{message_id}", READ, Empty, "message:get PROJECT_READER"),
    r("DELETE", "/volume/v3/messages/{message_id}", WRITE, Empty, "message:delete PROJECT_MEMBER"),
    // ---- Volume snapshots, with and without the project in the URL.
    r("GET", "/volume/v3/{project_id}/snapshots", IN_PROJECT, Empty, "volume:get_all_snapshots PROJECT_READER"),
    r("POST", "/volume/v3/{project_id}/snapshots", MEMBER_IN, Json("{}"), "volume:create_snapshot PROJECT_MEMBER"),
    r("GET", "/volume/v3/{project_id}/snapshots/detail", IN_PROJECT, Empty, "volume:get_all_snapshots PROJECT_READER"),
    r(
        "GET",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}",
        IN_PROJECT,
        Empty,
        "volume:get_snapshot PROJECT_READER",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}",
        MEMBER_IN,
        Json("{}"),
        "volume:update_snapshot PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}",
        MEMBER_IN,
        Empty,
        "volume:delete_snapshot PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/action",
        ADMIN,
        Json(r#"{"os-reset_status": {"status": "error"}}"#),
        "volume_extension:snapshot_admin_actions:reset_status ADMIN (also force_delete, update_progress; update_snapshot_status is PROJECT_MEMBER)",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata",
        IN_PROJECT,
        Empty,
        "volume:get_snapshot_metadata PROJECT_READER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata",
        MEMBER_IN,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata",
        MEMBER_IN,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}",
        IN_PROJECT,
        Empty,
        "volume:get_snapshot_metadata PROJECT_READER",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}",
        MEMBER_IN,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}",
        MEMBER_IN,
        Empty,
        "volume:delete_snapshot_metadata PROJECT_MEMBER",
    ),
    r("GET", "/volume/v3/snapshots", ANY, Empty, "volume:get_all_snapshots PROJECT_READER (own project)"),
    r("POST", "/volume/v3/snapshots", CREATE, Json("{}"), "volume:create_snapshot PROJECT_MEMBER"),
    r("GET", "/volume/v3/snapshots/detail", ANY, Empty, "volume:get_all_snapshots PROJECT_READER (own project)"),
    r("GET", "/volume/v3/snapshots/{snapshot_id}", READ, Empty, "volume:get_snapshot PROJECT_READER"),
    r("PUT", "/volume/v3/snapshots/{snapshot_id}", WRITE, Json("{}"), "volume:update_snapshot PROJECT_MEMBER"),
    r("DELETE", "/volume/v3/snapshots/{snapshot_id}", WRITE, Empty, "volume:delete_snapshot PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/snapshots/{snapshot_id}/action",
        ADMIN_ON,
        Json(r#"{"os-reset_status": {"status": "error"}}"#),
        "volume_extension:snapshot_admin_actions:reset_status ADMIN (also force_delete, update_progress; update_snapshot_status is PROJECT_MEMBER)",
    ),
    r("GET", "/volume/v3/snapshots/{snapshot_id}/metadata", READ, Empty, "volume:get_snapshot_metadata PROJECT_READER"),
    r(
        "POST",
        "/volume/v3/snapshots/{snapshot_id}/metadata",
        WRITE,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "PUT",
        "/volume/v3/snapshots/{snapshot_id}/metadata",
        WRITE,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/snapshots/{snapshot_id}/metadata/{key}",
        READ,
        Empty,
        "volume:get_snapshot_metadata PROJECT_READER",
    ),
    r(
        "PUT",
        "/volume/v3/snapshots/{snapshot_id}/metadata/{key}",
        WRITE,
        Json("{}"),
        "volume:update_snapshot_metadata PROJECT_MEMBER",
    ),
    r(
        "DELETE",
        "/volume/v3/snapshots/{snapshot_id}/metadata/{key}",
        WRITE,
        Empty,
        "volume:delete_snapshot_metadata PROJECT_MEMBER",
    ),
    // ---- Volume transfers (os-volume-transfer); accepting is for any project holding the key.
    r(
        "GET",
        "/volume/v3/{project_id}/os-volume-transfer",
        IN_PROJECT,
        Empty,
        "volume:get_all_transfers PROJECT_READER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/os-volume-transfer",
        MEMBER_IN,
        Json("{}"),
        "volume:create_transfer PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/os-volume-transfer/detail",
        IN_PROJECT,
        Empty,
        "volume:get_all_transfers PROJECT_READER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}",
        IN_PROJECT,
        Empty,
        "volume:get_transfer PROJECT_READER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}",
        MEMBER_IN,
        Empty,
        "volume:delete_transfer PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}/accept",
        MEMBER_IN,
        Json("{}"),
        "volume:accept_transfer PROJECT_MEMBER (the URL's project must be the caller's)",
    ),
    r("GET", "/volume/v3/os-volume-transfer", ANY, Empty, "volume:get_all_transfers PROJECT_READER (own project)"),
    r("POST", "/volume/v3/os-volume-transfer", CREATE, Json("{}"), "volume:create_transfer PROJECT_MEMBER"),
    r(
        "GET",
        "/volume/v3/os-volume-transfer/detail",
        ANY,
        Empty,
        "volume:get_all_transfers PROJECT_READER (own project)",
    ),
    r("GET", "/volume/v3/os-volume-transfer/{transfer_id}", READ, Empty, "volume:get_transfer PROJECT_READER"),
    r("DELETE", "/volume/v3/os-volume-transfer/{transfer_id}", WRITE, Empty, "volume:delete_transfer PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/os-volume-transfer/{transfer_id}/accept",
        CREATE,
        Json("{}"),
        "volume:accept_transfer PROJECT_MEMBER: any project with the transfer id and key",
    ),
    // ---- Volume transfers (volume-transfers); accepting is for any project holding the key.
    r("GET", "/volume/v3/{project_id}/volume-transfers", IN_PROJECT, Empty, "volume:get_all_transfers PROJECT_READER"),
    r(
        "POST",
        "/volume/v3/{project_id}/volume-transfers",
        MEMBER_IN,
        Json("{}"),
        "volume:create_transfer PROJECT_MEMBER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/volume-transfers/detail",
        IN_PROJECT,
        Empty,
        "volume:get_all_transfers PROJECT_READER",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/volume-transfers/{transfer_id}",
        IN_PROJECT,
        Empty,
        "volume:get_transfer PROJECT_READER",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/volume-transfers/{transfer_id}",
        MEMBER_IN,
        Empty,
        "volume:delete_transfer PROJECT_MEMBER",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/volume-transfers/{transfer_id}/accept",
        MEMBER_IN,
        Json("{}"),
        "volume:accept_transfer PROJECT_MEMBER (the URL's project must be the caller's)",
    ),
    r("GET", "/volume/v3/volume-transfers", ANY, Empty, "volume:get_all_transfers PROJECT_READER (own project)"),
    r("POST", "/volume/v3/volume-transfers", CREATE, Json("{}"), "volume:create_transfer PROJECT_MEMBER"),
    r("GET", "/volume/v3/volume-transfers/detail", ANY, Empty, "volume:get_all_transfers PROJECT_READER (own project)"),
    r("GET", "/volume/v3/volume-transfers/{transfer_id}", READ, Empty, "volume:get_transfer PROJECT_READER"),
    r("DELETE", "/volume/v3/volume-transfers/{transfer_id}", WRITE, Empty, "volume:delete_transfer PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/volume-transfers/{transfer_id}/accept",
        CREATE,
        Json("{}"),
        "volume:accept_transfer PROJECT_MEMBER: any project with the transfer id and key",
    ),
    // ---- QoS specs and encryption types: admins only.
    r("GET", "/volume/v3/{project_id}/qos-specs", ADMIN, Empty, "volume_extension:qos_specs_manage:get_all ADMIN"),
    r("POST", "/volume/v3/{project_id}/qos-specs", ADMIN, Json("{}"), "volume_extension:qos_specs_manage:create ADMIN"),
    r("GET", "/volume/v3/{project_id}/qos-specs/{qos_id}", ADMIN, Empty, "volume_extension:qos_specs_manage:get ADMIN"),
    r(
        "PUT",
        "/volume/v3/{project_id}/qos-specs/{qos_id}",
        ADMIN,
        Json("{}"),
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/qos-specs/{qos_id}",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:delete ADMIN",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/qos-specs/{qos_id}/delete_keys",
        ADMIN,
        Json("{}"),
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/qos-specs/{qos_id}/associations",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:get ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/qos-specs/{qos_id}/associate",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/qos-specs/{qos_id}/disassociate",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/qos-specs/{qos_id}/disassociate_all",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}/encryption",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:get ADMIN",
    ),
    r(
        "POST",
        "/volume/v3/{project_id}/types/{type_id}/encryption",
        ADMIN,
        Json("{}"),
        "volume_extension:volume_type_encryption:create ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:get ADMIN (one field)",
    ),
    r(
        "PUT",
        "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Json("{}"),
        "volume_extension:volume_type_encryption:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:delete ADMIN",
    ),
    r("GET", "/volume/v3/qos-specs", ADMIN, Empty, "volume_extension:qos_specs_manage:get_all ADMIN"),
    r("POST", "/volume/v3/qos-specs", ADMIN, Json("{}"), "volume_extension:qos_specs_manage:create ADMIN"),
    r("GET", "/volume/v3/qos-specs/{qos_id}", ADMIN, Empty, "volume_extension:qos_specs_manage:get ADMIN"),
    r("PUT", "/volume/v3/qos-specs/{qos_id}", ADMIN, Json("{}"), "volume_extension:qos_specs_manage:update ADMIN"),
    r("DELETE", "/volume/v3/qos-specs/{qos_id}", ADMIN, Empty, "volume_extension:qos_specs_manage:delete ADMIN"),
    r(
        "PUT",
        "/volume/v3/qos-specs/{qos_id}/delete_keys",
        ADMIN,
        Json("{}"),
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r("GET", "/volume/v3/qos-specs/{qos_id}/associations", ADMIN, Empty, "volume_extension:qos_specs_manage:get ADMIN"),
    r("GET", "/volume/v3/qos-specs/{qos_id}/associate", ADMIN, Empty, "volume_extension:qos_specs_manage:update ADMIN"),
    r(
        "GET",
        "/volume/v3/qos-specs/{qos_id}/disassociate",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/qos-specs/{qos_id}/disassociate_all",
        ADMIN,
        Empty,
        "volume_extension:qos_specs_manage:update ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/types/{type_id}/encryption",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:get ADMIN",
    ),
    r(
        "POST",
        "/volume/v3/types/{type_id}/encryption",
        ADMIN,
        Json("{}"),
        "volume_extension:volume_type_encryption:create ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:get ADMIN (one field)",
    ),
    r(
        "PUT",
        "/volume/v3/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Json("{}"),
        "volume_extension:volume_type_encryption:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/types/{type_id}/encryption/{encryption_id}",
        ADMIN,
        Empty,
        "volume_extension:volume_type_encryption:delete ADMIN",
    ),
    // ---- Cinder describing itself: zones and extensions for anyone, the rest for admins.
    r(
        "GET",
        "/volume/v3/{project_id}/os-availability-zone",
        IN_PROJECT,
        Empty,
        "availability_zone:index PROJECT_READER",
    ),
    r("GET", "/volume/v3/os-availability-zone", ANY, Empty, "availability_zone:index (own project)"),
    r("GET", "/volume/v3/{project_id}/extensions", IN_PROJECT, Empty, "volume_extension:extensions (any role)"),
    r("GET", "/volume/v3/extensions", ANY, Empty, "volume_extension:extensions (own project)"),
    r("GET", "/volume/v3/{project_id}/os-services", ADMIN, Empty, "volume_extension:services:index ADMIN"),
    r("GET", "/volume/v3/os-services", ADMIN, Empty, "volume_extension:services:index ADMIN"),
    r(
        "PUT",
        "/volume/v3/{project_id}/os-services/{action}",
        ADMIN,
        Json("{}"),
        "volume_extension:services:update ADMIN",
    ),
    r("PUT", "/volume/v3/os-services/{action}", ADMIN, Json("{}"), "volume_extension:services:update ADMIN"),
    r("GET", "/volume/v3/{project_id}/os-hosts", ADMIN, Empty, "volume_extension:hosts ADMIN"),
    r("GET", "/volume/v3/os-hosts", ADMIN, Empty, "volume_extension:hosts ADMIN"),
    r("GET", "/volume/v3/{project_id}/os-hosts/{host}", ADMIN, Empty, "volume_extension:hosts ADMIN"),
    r("GET", "/volume/v3/os-hosts/{host}", ADMIN, Empty, "volume_extension:hosts ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/scheduler-stats/get_pools",
        ADMIN,
        Empty,
        "scheduler_extension:scheduler_stats:get_pools ADMIN",
    ),
    r(
        "GET",
        "/volume/v3/scheduler-stats/get_pools",
        ADMIN,
        Empty,
        "scheduler_extension:scheduler_stats:get_pools ADMIN",
    ),
    r("GET", "/volume/v3/{project_id}/capabilities/{host}", ADMIN, Empty, "volume_extension:capabilities ADMIN"),
    r("GET", "/volume/v3/capabilities/{host}", ADMIN, Empty, "volume_extension:capabilities ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/os-quota-sets/{tenant_id}",
        IN_PROJECT,
        Empty,
        "volume_extension:quotas:show PROJECT_READER",
    ),
    r("GET", "/volume/v3/os-quota-sets/{tenant_id}", IN_PROJECT, Empty, "volume_extension:quotas:show PROJECT_READER"),
    r(
        "PUT",
        "/volume/v3/{project_id}/os-quota-sets/{tenant_id}",
        ADMIN,
        Json(r#"{"quota_set": {"groups": 10}}"#),
        "volume_extension:quotas:update ADMIN",
    ),
    r(
        "PUT",
        "/volume/v3/os-quota-sets/{tenant_id}",
        ADMIN,
        Json(r#"{"quota_set": {"groups": 10}}"#),
        "volume_extension:quotas:update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/os-quota-sets/{tenant_id}",
        ADMIN,
        Empty,
        "volume_extension:quotas:delete ADMIN",
    ),
    r("DELETE", "/volume/v3/os-quota-sets/{tenant_id}", ADMIN, Empty, "volume_extension:quotas:delete ADMIN"),
    r(
        "GET",
        "/volume/v3/{project_id}/os-quota-sets/{tenant_id}/defaults",
        IN_PROJECT,
        Empty,
        "volume_extension:quotas:show PROJECT_READER",
    ),
    r(
        "GET",
        "/volume/v3/os-quota-sets/{tenant_id}/defaults",
        IN_PROJECT,
        Empty,
        "volume_extension:quotas:show PROJECT_READER",
    ),
    r("GET", "/volume/v3/{project_id}/default-types", ADMIN, Empty, "volume_extension:default_get_all ADMIN"),
    r("GET", "/volume/v3/{project_id}/default-types/{tenant_id}", ADMIN, Empty, "volume_extension:default_get ADMIN"),
    r(
        "PUT",
        "/volume/v3/{project_id}/default-types/{tenant_id}",
        ADMIN,
        Json(r#"{"default_type": {"volume_type": "__DEFAULT__"}}"#),
        "volume_extension:default_set_or_update ADMIN",
    ),
    r(
        "DELETE",
        "/volume/v3/{project_id}/default-types/{tenant_id}",
        ADMIN,
        Empty,
        "volume_extension:default_unset ADMIN",
    ),
    r("GET", "/volume/v3/default-types", ADMIN, Empty, "volume_extension:default_get_all ADMIN"),
    r("GET", "/volume/v3/default-types/{tenant_id}", ADMIN, Empty, "volume_extension:default_get ADMIN"),
    r(
        "PUT",
        "/volume/v3/default-types/{tenant_id}",
        ADMIN,
        Json(r#"{"default_type": {"volume_type": "__DEFAULT__"}}"#),
        "volume_extension:default_set_or_update ADMIN",
    ),
    r("DELETE", "/volume/v3/default-types/{tenant_id}", ADMIN, Empty, "volume_extension:default_unset ADMIN"),
    r("GET", "/volume/v3/{project_id}/os-quota-class-sets/{id}", ADMIN, Empty, "volume_extension:quota_classes ADMIN"),
    r("GET", "/volume/v3/os-quota-class-sets/{id}", ADMIN, Empty, "volume_extension:quota_classes ADMIN"),
    r(
        "PUT",
        "/volume/v3/{project_id}/os-quota-class-sets/{id}",
        ADMIN,
        Json(r#"{"quota_class_set": {"groups": 10}}"#),
        "volume_extension:quota_classes:update ADMIN",
    ),
    r(
        "PUT",
        "/volume/v3/os-quota-class-sets/{id}",
        ADMIN,
        Json(r#"{"quota_class_set": {"groups": 10}}"#),
        "volume_extension:quota_classes:update ADMIN",
    ),
    r("GET", "/volume/v3/attachments", ANY, Empty, "attachments index: own project"),
    r("POST", "/volume/v3/attachments", CREATE, Json("{}"), "volume:attachment_create PROJECT_MEMBER"),
    r("GET", "/volume/v3/attachments/detail", ANY, Empty, "attachments index: own project"),
    r("GET", "/volume/v3/attachments/{attachment_id}", READ, Empty, "attachment show: project reader"),
    r("PUT", "/volume/v3/attachments/{attachment_id}", WRITE, Json("{}"), "volume:attachment_update PROJECT_MEMBER"),
    r("DELETE", "/volume/v3/attachments/{attachment_id}", WRITE, Empty, "volume:attachment_delete PROJECT_MEMBER"),
    r(
        "POST",
        "/volume/v3/attachments/{attachment_id}/action",
        WRITE,
        Json(r#"{"os-complete": null}"#),
        "volume:attachment_complete PROJECT_MEMBER",
    ),
];

/// One action of an action route, with a valid body, and what each caller gets.
struct ActionRow {
    path: &'static str,
    key: &'static str,
    body: &'static str,
    cols: Cols,
    why: &'static str,
}

const fn a(path: &'static str, key: &'static str, body: &'static str, cols: Cols, why: &'static str) -> ActionRow {
    ActionRow { path, key, body, cols, why }
}

const SA: &str = "/compute/v2.1/servers/{id}/action";
const FA: &str = "/compute/v2.1/flavors/{id}/action";
const AGA: &str = "/compute/v2.1/os-aggregates/{id}/action";
const VA: &str = "/volume/v3/volumes/{volume_id}/action";
const VPA: &str = "/volume/v3/{project_id}/volumes/{volume_id}/action";
const TA: &str = "/volume/v3/types/{type_id}/action";
const TPA: &str = "/volume/v3/{project_id}/types/{type_id}/action";

/// Every server action key (checked against `ACTION_NAMES`) and the volume actions.
const ACTIONS: &[ActionRow] = &[
    a(SA, "os-stop", r#"{"os-stop": null}"#, WRITE, "servers:stop PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "os-start", r#"{"os-start": null}"#, WRITE, "servers:start PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "pause", r#"{"pause": null}"#, WRITE, "os-pause-server:pause PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "unpause", r#"{"unpause": null}"#, WRITE, "os-pause-server:unpause PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "suspend", r#"{"suspend": null}"#, WRITE, "os-suspend-server:suspend PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "resume", r#"{"resume": null}"#, WRITE, "os-suspend-server:resume PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "shelve", r#"{"shelve": null}"#, WRITE, "os-shelve:shelve PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "shelveOffload", r#"{"shelveOffload": null}"#, ADMIN_ON, "os-shelve:shelve_offload ADMIN"),
    a(SA, "unshelve", r#"{"unshelve": null}"#, WRITE, "os-shelve:unshelve PROJECT_MEMBER_OR_ADMIN"),
    a(
        SA,
        "migrate",
        r#"{"migrate": null}"#,
        ADMIN_ON,
        "os-migrate-server:migrate PROJECT_MANAGER_OR_ADMIN (Stratus has no manager role)",
    ),
    a(SA, "confirmResize", r#"{"confirmResize": null}"#, WRITE, "servers:confirm_resize PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "revertResize", r#"{"revertResize": null}"#, WRITE, "servers:revert_resize PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "restore", r#"{"restore": null}"#, WRITE, "os-deferred-delete:restore PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "forceDelete", r#"{"forceDelete": null}"#, WRITE, "os-deferred-delete:force PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "unlock", r#"{"unlock": null}"#, WRITE, "os-lock-server:unlock PROJECT_MEMBER_OR_ADMIN"),
    a(
        SA,
        "addSecurityGroup",
        r#"{"addSecurityGroup": {"name": "default"}}"#,
        [F, N, N, N],
        "os-security-groups:add PROJECT_MEMBER_OR_ADMIN; the fixture server has no port, so a caller the policy lets through gets Nova's 404 (no port to put the group on), a reader 403",
    ),
    a(
        SA,
        "removeSecurityGroup",
        r#"{"removeSecurityGroup": {"name": "default"}}"#,
        [F, N, N, N],
        "os-security-groups:remove PROJECT_MEMBER_OR_ADMIN; as addSecurityGroup (no port on the fixture server: 404 after the policy; a reader 403)",
    ),
    a(SA, "lock", r#"{"lock": null}"#, WRITE, "os-lock-server:lock PROJECT_MEMBER_OR_ADMIN"),
    a(
        SA,
        "rebuild",
        r#"{"rebuild": {"imageRef": "6e3f07fb-35b6-4bf8-8937-86797acf97be"}}"#,
        WRITE,
        "servers:rebuild PROJECT_MEMBER_OR_ADMIN",
    ),
    a(SA, "reboot", r#"{"reboot": {"type": "HARD"}}"#, WRITE, "servers:reboot PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "resize", r#"{"resize": {"flavorRef": "1"}}"#, WRITE, "servers:resize PROJECT_MEMBER_OR_ADMIN"),
    a(SA, "evacuate", r#"{"evacuate": {"onSharedStorage": false}}"#, ADMIN_ON, "os-evacuate ADMIN"),
    a(SA, "createImage", r#"{"createImage": {"name": "snap"}}"#, WRITE, "servers:create_image PROJECT_MEMBER_OR_ADMIN"),
    a(
        SA,
        "createBackup",
        r#"{"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}"#,
        WRITE,
        "os-create-backup PROJECT_MEMBER_OR_ADMIN",
    ),
    a(SA, "os-resetState", r#"{"os-resetState": {"state": "active"}}"#, ADMIN_ON, "os-admin-actions:reset_state ADMIN"),
    a(
        SA,
        "os-getConsoleOutput",
        r#"{"os-getConsoleOutput": {}}"#,
        WRITE,
        "os-console-output PROJECT_MEMBER_OR_ADMIN: readers may not read the console",
    ),
    a(
        FA,
        "addTenantAccess",
        r#"{"addTenantAccess": {"tenant": "policy-tenant"}}"#,
        ADMIN,
        "os-flavor-access:add_tenant_access ADMIN",
    ),
    a(
        FA,
        "removeTenantAccess",
        r#"{"removeTenantAccess": {"tenant": "policy-tenant"}}"#,
        ADMIN,
        "os-flavor-access:remove_tenant_access ADMIN",
    ),
    a(AGA, "add_host", r#"{"add_host": {"host": "policy-host"}}"#, ADMIN, "os-aggregates:add_host ADMIN (409: in it)"),
    a(AGA, "remove_host", r#"{"remove_host": {"host": "policy-host"}}"#, ADMIN, "os-aggregates:remove_host ADMIN"),
    a(AGA, "set_metadata", r#"{"set_metadata": {"metadata": {"k": null}}}"#, ADMIN, "os-aggregates:set_metadata ADMIN"),
    a(
        TA,
        "addProjectAccess",
        r#"{"addProjectAccess": {"project": "policy-tenant"}}"#,
        ADMIN,
        "volume_extension:volume_type_access:addProjectAccess ADMIN",
    ),
    a(
        TA,
        "removeProjectAccess",
        r#"{"removeProjectAccess": {"project": "policy-tenant"}}"#,
        ADMIN,
        "volume_extension:volume_type_access:removeProjectAccess ADMIN",
    ),
    a(
        TPA,
        "addProjectAccess",
        r#"{"addProjectAccess": {"project": "policy-tenant"}}"#,
        ADMIN,
        "volume_extension:volume_type_access:addProjectAccess ADMIN",
    ),
    a(
        TPA,
        "removeProjectAccess",
        r#"{"removeProjectAccess": {"project": "policy-tenant"}}"#,
        ADMIN,
        "volume_extension:volume_type_access:removeProjectAccess ADMIN",
    ),
    a(VA, "os-extend", r#"{"os-extend": {"new_size": 2}}"#, WRITE, "volume:extend PROJECT_MEMBER"),
    a(
        VA,
        "os-reset_status",
        r#"{"os-reset_status": {"status": "available"}}"#,
        ADMIN_ON,
        "volume_extension:volume_admin_actions:reset_status ADMIN (the volume is looked up first)",
    ),
    a(VA, "os-set_bootable", r#"{"os-set_bootable": {"bootable": true}}"#, WRITE, "volume:update PROJECT_MEMBER"),
    a(VA, "os-retype", r#"{"os-retype": {"new_type": "__DEFAULT__"}}"#, WRITE, "volume:retype PROJECT_MEMBER"),
    a(VA, "revert", r#"{"revert": {"snapshot_id": null}}"#, WRITE, "volume:revert_to_snapshot PROJECT_MEMBER"),
    a(VA, "os-reimage", r#"{"os-reimage": {"image_id": "not-a-uuid"}}"#, WRITE, "volume:reimage PROJECT_MEMBER"),
    a(
        VA,
        "os-extend_volume_completion",
        r#"{"os-extend_volume_completion": {"error": false}}"#,
        ADMIN_ON,
        "volume_extension:volume_admin_actions:extend_volume_completion ADMIN or service (the volume is looked up first)",
    ),
    a(VPA, "os-extend", r#"{"os-extend": {"new_size": 2}}"#, MEMBER_IN, "volume:extend PROJECT_MEMBER"),
    a(
        VPA,
        "os-reset_status",
        r#"{"os-reset_status": {"status": "available"}}"#,
        ADMIN,
        "volume_extension:volume_admin_actions:reset_status ADMIN",
    ),
    a(
        VPA,
        "os-extend_volume_completion",
        r#"{"os-extend_volume_completion": {"error": false}}"#,
        ADMIN,
        "volume_extension:volume_admin_actions:extend_volume_completion ADMIN or service",
    ),
    a(VPA, "os-set_bootable", r#"{"os-set_bootable": {"bootable": true}}"#, MEMBER_IN, "volume:update PROJECT_MEMBER"),
    a(VPA, "os-retype", r#"{"os-retype": {"new_type": "__DEFAULT__"}}"#, MEMBER_IN, "volume:retype PROJECT_MEMBER"),
    a(VPA, "revert", r#"{"revert": {"snapshot_id": null}}"#, MEMBER_IN, "volume:revert_to_snapshot PROJECT_MEMBER"),
    a(VPA, "os-reimage", r#"{"os-reimage": {"image_id": "not-a-uuid"}}"#, MEMBER_IN, "volume:reimage PROJECT_MEMBER"),
    a(
        VA,
        "os-set_image_metadata",
        r#"{"os-set_image_metadata": {"metadata": {"a": "b"}}}"#,
        WRITE,
        "volume_extension:volume_image_metadata:set PROJECT_MEMBER",
    ),
    a(
        VA,
        "os-show_image_metadata",
        r#"{"os-show_image_metadata": null}"#,
        READ,
        "volume_extension:volume_image_metadata:show PROJECT_READER",
    ),
    a(
        VPA,
        "os-set_image_metadata",
        r#"{"os-set_image_metadata": {"metadata": {"a": "b"}}}"#,
        MEMBER_IN,
        "volume_extension:volume_image_metadata:set PROJECT_MEMBER",
    ),
    a(
        VPA,
        "os-show_image_metadata",
        r#"{"os-show_image_metadata": null}"#,
        IN_PROJECT,
        "volume_extension:volume_image_metadata:show PROJECT_READER",
    ),
];

/// Query parameters with a policy of their own (the route's row covers the
/// request without them).
const QUERIES: &[Row] = &[
    r(
        "DELETE",
        "/volume/v3/volumes/{volume_id}?force=true",
        ADMIN_ON,
        Empty,
        "volume:force_delete ADMIN (3.23; the volume is looked up first)",
    ),
    r("GET", "/compute/v2.1/servers?all_tenants=1", ADMIN, Empty, "servers:index:get_all_tenants ADMIN"),
    r("GET", "/compute/v2.1/servers/detail?all_tenants=1", ADMIN, Empty, "servers:detail:get_all_tenants ADMIN"),
    r(
        "GET",
        "/compute/v2.1/limits?tenant_id={project_id}",
        ADMIN,
        Empty,
        "limits:other_project ADMIN: any tenant_id, even one's own, is the admin's",
    ),
    r(
        "GET",
        "/volume/v3/volumes?all_tenants=1",
        ANY,
        Empty,
        "Cinder ignores all_tenants from non-admins (own project)",
    ),
    r(
        "GET",
        "/volume/v3/attachments?all_tenants=1",
        ANY,
        Empty,
        "Cinder ignores all_tenants from non-admins (own project)",
    ),
];

// ---------------------------------------------------------------------------
// The cloud the matrix runs against.

/// Removes the test's directory when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Project `demo` with a reader and a member, project `alt` with a member,
/// project `admin` with an admin; a flavor and a compute host.
struct Env {
    state: AppState,
    app: axum::Router,
    ds: stratus_db::Datastore,
    /// Tokens in column order.
    tokens: [String; 4],
    /// The callers' user ids, in column order.
    users: [String; 4],
    /// The hypervisor id of the compute host [`HOST`].
    hypervisor: String,
    member: AuthContext,
    member_token: String,
    member_role: String,
    _dir: TempDir,
}

/// The compute host `os-services` rows act on (named in the update row's body).
const HOST: &str = "policy-host";

async fn env() -> Env {
    let dir = std::env::temp_dir().join(format!("stratus-policy-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open db");
    for (user, project, role) in [
        ("viewer", "demo", "reader"),
        ("demo", "demo", "member"),
        ("alt", "alt", "member"),
        ("admin", "admin", "admin"),
    ] {
        stratus_auth::bootstrap_user(&ds, user, "pw", project, role, false).await.expect("bootstrap");
    }
    let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
    let mut issued = Vec::new();
    for (user, project) in [("viewer", "demo"), ("demo", "demo"), ("alt", "alt"), ("admin", "admin")] {
        let t =
            identity.authenticate(user, "pw", stratus_auth::ProjectScope::Name(project.into())).await.expect("token");
        issued.push(t);
    }
    let member = issued[1].context.clone();
    let member_token = issued[1].token.clone();
    let tokens = [0, 1, 2, 3].map(|i| issued[i].token.clone());
    let users = [0, 1, 2, 3].map(|i| issued[i].context.user_id.clone());
    let bus: Arc<dyn stratus_bus::Bus> = Arc::new(stratus_bus::InProcessBus::new());
    let compute = stratus_controller::compute_api::ComputeApi::new(
        ds.clone(),
        bus.clone(),
        stratus_controller::ControllerConfig::default(),
    );
    // Every destructive row makes fresh resources: no quota may run out.
    let cfg = stratus_volume::VolumeConfig {
        image_dir: dir.join("images"),
        quota_volumes: 1_000_000,
        quota_gigabytes: 1_000_000,
        ..Default::default()
    };
    let class = stratus_db::VolumeQuotaLayer::Class(stratus_db::DEFAULT_QUOTA_CLASS);
    ds.volume_quota_set(class, &[("snapshots", -1)]).await.expect("unlimited snapshots");
    let backend = Arc::new(stratus_volume::testing::MemBackend::new());
    let volume = Arc::new(stratus_volume::VolumeService::new(ds.clone(), backend, cfg));
    let quota = stratus_image::ImageQuota { count_total: -1, ..Default::default() };
    let images = Arc::new(stratus_image::ImageService::new(ds.clone(), dir.join("images")).with_quota(quota));
    let state = AppState {
        tokens: stratus_auth::TokenValidator::Builtin(identity.clone()),
        identity,
        compute,
        bus,
        public_url: "http://127.0.0.1:8774".into(),
        volume,
        images,
        metrics: stratus_metrics::Metrics::new(),
    };
    ds.flavor_ensure(&stratus_db::FlavorRow {
        id: "1".into(),
        name: "m1.tiny".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public: true,
        disabled: false,
        description: None,
    })
    .await
    .expect("flavor");
    let cap = stratus_db::HostCapacity { vcpus: 8, memory_mb: 8192, disk_gb: 100 };
    let hypervisor =
        ds.service_join(HOST, cap, chrono::Duration::minutes(5)).await.expect("compute host").id.to_string();
    let member_role = ds.role_find("member").await.expect("member role").id;
    let app = crate::router(state.clone());
    Env { state, app, ds, tokens, users, member, member_token, member_role, hypervisor, _dir: TempDir(dir) }
}

/// Resources of project `demo` the requests name, and identity victims.
#[derive(Clone)]
struct World {
    server: String,
    request_id: String,
    volume: String,
    attached_volume: String,
    attachment: String,
    image: String,
    /// An active image of `demo` (image actions need data to act on).
    active_image: String,
    victim_project: String,
    victim_user: String,
    /// An application credential of the member.
    app_cred: String,
    /// A role nobody needs (the role delete row's target).
    victim_role: String,
    /// An application credential of the victim user.
    victim_app_cred: String,
    /// A token of the owning project's member.
    subject: String,
    /// A key pair name every caller has one of (key pairs are per user).
    keypair: String,
    /// A private flavor shared with `demo`, with extra spec `k=v`.
    flavor: String,
    /// An aggregate (no zone) holding [`HOST`], with metadata `k=v`.
    aggregate: String,
    /// A private volume type shared with `demo` and `policy-tenant`, with
    /// the user-visible extra spec `multiattach`.
    volume_type: String,
    /// A transfer of a volume of `demo` (awaiting it).
    transfer: String,
    /// A snapshot (metadata `k=v`) of a volume of `demo` kept for it alone.
    snapshot: String,
    /// A QoS spec with key `k`, associated with `volume_type`.
    qos: String,
    /// The encryption spec of `volume_type`.
    encryption: String,
    /// A public group type with spec `k=v`.
    group_type: String,
    /// A group of `demo` (of `group_type`, default volume type).
    group: String,
    /// An `available` group snapshot of `group` (no members).
    group_snapshot: String,
    /// A user message of `demo`.
    message: String,
    /// A private metadefs namespace of `demo` holding object `o`, property
    /// `p`, tag `t` and an association with `OS::Glance::Image`.
    namespace: String,
}

async fn world(e: &Env) -> World {
    let demo = e.member.project_id.clone();
    let server = new_server(e).await;
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let server_id = server.parse().expect("server id");
    e.ds.action_create(&server_id, &request_id, "create", &e.member.user_id, &demo).await.expect("instance action");
    // The member's project has a default volume type (3.62) for the admin to read.
    e.ds.project_default_type_set(&demo, stratus_db::DEFAULT_VOLUME_TYPE_ID).await.expect("default type");
    let volume = new_volume(e).await;
    let attached_volume = new_volume(e).await;
    let attachment = e
        .state
        .volume
        .attachment_create(&e.member, &attached_volume, &server, None)
        .await
        .expect("attachment")
        .id
        .to_string();
    let body = json!({"name": "policy", "disk_format": "qcow2", "container_format": "bare", "k": "v"});
    let image =
        e.state.images.create(&e.member, body.as_object().expect("object")).await.expect("image").id.to_string();
    e.state.images.add_tag(&e.member, &image, "t").await.expect("tag");
    // The (shared) image is offered to a project none of the callers is in.
    e.state.images.add_member(&e.member, &image, &json!(MEMBER_PROJECT)).await.expect("image member");
    let body = json!({"name": "policy-active", "disk_format": "raw", "container_format": "bare"});
    let active_image =
        e.state.images.create(&e.member, body.as_object().expect("object")).await.expect("image").id.to_string();
    let data = futures::stream::iter([Ok::<_, std::io::Error>(vec![0u8; 512])]);
    e.state.images.upload(&e.member, &active_image, data).await.expect("upload");
    let victim_project = uuid::Uuid::new_v4().simple().to_string();
    e.ds.project_create(&stratus_db::ProjectRow {
        id: victim_project.clone(),
        name: format!("victim-{victim_project}"),
        domain_id: "default".into(),
        description: String::new(),
        enabled: true,
    })
    .await
    .expect("victim project");
    let victim_user = uuid::Uuid::new_v4().simple().to_string();
    e.ds.user_create(&stratus_db::UserRow {
        id: victim_user.clone(),
        name: format!("victim-{victim_user}"),
        domain_id: "default".into(),
        password_hash: "!".into(),
        email: None,
        default_project_id: None,
        enabled: true,
    })
    .await
    .expect("victim user");
    e.ds.assignment_put(&victim_user, &demo, &e.member_role).await.expect("victim grant");
    // Application credentials of the member and of the victim, a tag on
    // `demo`, and system grants for both, for the identity rows that read or delete them.
    let cred = |user: &str| stratus_db::AppCredRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        user_id: user.to_string(),
        project_id: demo.clone(),
        name: format!("policy-{}", uuid::Uuid::new_v4().simple()),
        description: None,
        secret_hash: "!".into(),
        role_ids: format!("[\"{}\"]", e.member_role),
        expires_at: None,
        unrestricted: false,
    };
    let (app_cred, victim_app_cred) = (cred(&e.member.user_id), cred(&victim_user));
    let victim_role = uuid::Uuid::new_v4().simple().to_string();
    e.ds.role_create(&victim_role, &format!("victim-{victim_role}")).await.expect("victim role");
    e.ds.app_cred_create(&app_cred).await.expect("app cred");
    e.ds.app_cred_create(&victim_app_cred).await.expect("victim app cred");
    e.ds.project_tag_add(&demo, "t", 80).await.expect("project tag");
    e.ds.system_grant_put(&e.member.user_id, &e.member_role).await.expect("system grant");
    e.ds.system_grant_put(&victim_user, &e.member_role).await.expect("victim system grant");
    let subject = e.state.identity.reissue(&e.member, &e.member_token).await.expect("subject token").token;
    let keypair = format!("kp-{}", uuid::Uuid::new_v4().simple());
    for user in &e.users {
        let k = stratus_keys::generate(stratus_keys::KeyType::Ssh, user).expect("key");
        let new = stratus_db::NewKeypair {
            user_id: user.clone(),
            name: keypair.clone(),
            key_type: "ssh".into(),
            public_key: k.public_key,
            fingerprint: k.fingerprint,
        };
        e.ds.keypair_create(&new, -1).await.expect("key pair");
    }
    let flavor = format!("policy-{}", uuid::Uuid::new_v4().simple());
    e.ds.flavor_create(&stratus_db::FlavorRow {
        id: flavor.clone(),
        name: flavor.clone(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public: false,
        disabled: false,
        description: None,
    })
    .await
    .expect("private flavor");
    e.ds.flavor_access_add(&flavor, &demo).await.expect("flavor shared with demo");
    e.ds.flavor_extra_specs_set(&flavor, &[("k".to_string(), "v".to_string())].into()).await.expect("extra spec k=v");
    let name = format!("policy-{}", uuid::Uuid::new_v4().simple());
    let agg = e.ds.aggregate_create(&name, None).await.expect("db").expect("aggregate");
    e.ds.aggregate_add_host(agg.id, HOST).await.expect("db").expect("host in the aggregate");
    let meta = stratus_db::AggregateChange { name: None, metadata: [("k".to_string(), Some("v".to_string()))].into() };
    e.ds.aggregate_update(agg.id, &meta).await.expect("db").expect("aggregate metadata k=v");
    let volume_type = uuid::Uuid::new_v4().to_string();
    let t = stratus_db::VolumeTypeRow {
        id: volume_type.clone(),
        name: format!("policy-{volume_type}"),
        description: None,
        is_public: false,
    };
    let specs = [("multiattach".to_string(), Some("<is> False".to_string()))].into();
    e.ds.volume_type_create(&t, &specs).await.expect("private volume type");
    for p in [demo.as_str(), "policy-tenant"] {
        e.ds.volume_type_access_add(&volume_type, p).await.expect("volume type shared");
    }
    let offered = new_volume(e).await;
    let transfer =
        e.state.volume.transfer_create(&e.member, &offered, None, false).await.expect("transfer").transfer.id;
    let qos = stratus_db::QosSpecRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: format!("policy-{}", uuid::Uuid::new_v4().simple()),
        consumer: "both".into(),
        specs: r#"{"k":"v"}"#.into(),
    };
    e.ds.qos_create(&qos).await.expect("qos specs");
    e.ds.qos_associate(&qos.id, &volume_type).await.expect("qos associated");
    let encryption = stratus_db::EncryptionRow {
        volume_type_id: volume_type.clone(),
        encryption_id: uuid::Uuid::new_v4().to_string(),
        provider: "luks".into(),
        cipher: None,
        key_size: None,
        control_location: "front-end".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    };
    e.ds.encryption_create(&encryption).await.expect("encryption spec");
    let gt = stratus_db::GroupTypeRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: format!("policy-{}", uuid::Uuid::new_v4().simple()),
        description: None,
        is_public: true,
        group_specs: r#"{"k":"v"}"#.into(),
    };
    let gt = e.ds.group_type_create(&gt).await.expect("group type");
    // Straight to the datastore, unlimited: each fresh world adds a group
    // and the default `groups` quota (10) would run out.
    let new_group = stratus_db::VolumeGroupRow {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: demo.clone(),
        user_id: e.member.user_id.clone(),
        name: Some("policy".into()),
        description: None,
        status: "available".into(),
        group_type_id: gt.id.clone(),
        volume_type_ids: format!("[\"{}\"]", stratus_db::DEFAULT_VOLUME_TYPE_ID),
        availability_zone: "nova".into(),
        source_group_id: None,
        group_snapshot_id: None,
        created_at: stratus_db::SET_ON_INSERT,
    };
    let group = e.ds.volume_group_create(&new_group, -1).await.expect("group").id;
    let new_gs = stratus_db::GroupSnapshotRow {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: group.clone(),
        project_id: demo.clone(),
        user_id: e.member.user_id.clone(),
        name: Some("policy".into()),
        description: None,
        status: "available".into(),
        group_type_id: gt.id.clone(),
        created_at: stratus_db::SET_ON_INSERT,
    };
    let group_snapshot = e.ds.group_snapshot_create(&new_gs).await.expect("group snapshot").id;
    let msg = stratus_db::VolumeMessageRow {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: demo.clone(),
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        resource_type: Some("VOLUME".into()),
        resource_uuid: Some(volume.clone()),
        event_id: "VOLUME_VOLUME_001_003".into(),
        action_id: "001".into(),
        detail_id: "003".into(),
        message_level: "ERROR".into(),
        created_at: stratus_db::SET_ON_INSERT,
        expires_at: stratus_db::SET_ON_INSERT,
    };
    let message = e.ds.volume_message_create(&msg, chrono::Duration::days(30)).await.expect("message").id;
    let namespace = format!("policy-{}", uuid::Uuid::new_v4().simple());
    let ns = stratus_db::MetadefNamespaceRow {
        namespace: namespace.clone(),
        owner: demo.clone(),
        visibility: "private".into(),
        protected: false,
        body: "{}".into(),
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
    };
    let items: Vec<(String, String, String)> = [
        ("object", "o", "{}"),
        ("property", "p", r#"{"title": "p", "type": "string"}"#),
        ("tag", "t", "{}"),
        ("resource_type", "OS::Glance::Image", "{}"),
    ]
    .iter()
    .map(|(k, n, b)| (k.to_string(), n.to_string(), b.to_string()))
    .collect();
    e.ds.metadef_namespace_create(&ns, &items).await.expect("metadefs namespace");
    let snap_volume = new_volume(e).await;
    let snap = stratus_volume::NewSnapshot {
        volume_id: snap_volume,
        metadata: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    let snapshot = e.state.volume.snapshot_create(&e.member, snap).await.expect("snapshot").id;
    World {
        group_type: gt.id,
        group,
        group_snapshot,
        message,
        snapshot,
        qos: qos.id,
        encryption: encryption.encryption_id,
        transfer,
        namespace,
        aggregate: agg.id.to_string(),
        volume_type,
        flavor,
        server,
        request_id,
        volume,
        attached_volume,
        attachment,
        image,
        active_image,
        victim_project,
        victim_user,
        app_cred: app_cred.id,
        victim_role,
        victim_app_cred: victim_app_cred.id,
        subject,
        keypair,
    }
}

/// The project the fixture image is shared with (no caller's).
const MEMBER_PROJECT: &str = "policy-image-member";

/// Which resources a row's requests get.
#[derive(Clone, Copy)]
enum Fresh {
    /// The shared ones (the row changes nothing another row needs).
    No,
    /// A whole new world per caller (the row destroys what it names).
    All,
    /// A new server per caller (server actions).
    Server,
    /// A new volume per caller (volume actions).
    Volume,
}

/// A new active server of `demo`, as the member's.
/// A new server of `demo` with metadata `k=v`.
async fn new_server(e: &Env) -> String {
    let server = stratus_types::ServerId::new();
    stratus_volume::testing::insert_server(&e.ds, server, &e.member.project_id).await.expect("server");
    e.ds.server_metadata_swap(&server, "{}", r#"{"k":"v"}"#).await.expect("server metadata k=v");
    e.ds.server_tags_replace(&server, &["t".to_string()]).await.expect("server tag t");
    server.to_string()
}

/// A new 1 GiB volume of `demo` with metadata `k=v`.
async fn new_volume(e: &Env) -> String {
    let v = stratus_volume::NewVolume {
        size: 1,
        metadata: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    e.state.volume.create(&e.member, v).await.expect("volume").id.to_string()
}

/// The URL of `template` naming the resources of `w`. A parameter without a
/// fixture panics, so a new kind of route gets one.
fn fill(template: &str, method: &str, e: &Env, w: &World) -> String {
    if let Some((path, query)) = template.split_once('?') {
        let query = query.replace("{project_id}", &e.member.project_id);
        return format!("{}?{query}", fill(path, method, e, w));
    }
    let identity_delete = method == "DELETE" && template.starts_with("/identity/");
    let endpoint = || {
        stratus_api::identity::endpoint_views(&e.state.public_url)
            .first()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .expect("an endpoint")
    };
    let service = || {
        stratus_api::identity::service_view(&e.state.public_url, &stratus_api::identity::SERVICES[0])["id"]
            .as_str()
            .expect("service id")
            .to_string()
    };
    let mut prev = "";
    let mut out = Vec::new();
    for seg in template.split('/') {
        let v = match (prev, seg) {
            (_, s) if !s.starts_with('{') => s.to_string(),
            ("servers", "{id}") => w.server.clone(),
            ("flavors", "{id}") => w.flavor.clone(),
            ("os-aggregates", "{id}") => w.aggregate.clone(),
            ("os-keypairs", "{name}") => w.keypair.clone(),
            ("os-volumes", "{id}") => w.volume.clone(),
            ("os-snapshots", "{id}") => w.snapshot.clone(),
            ("os-hypervisors", "{id}") if template.ends_with("/search") || template.ends_with("/servers") => {
                HOST.into()
            }
            ("os-hypervisors", "{id}") => e.hypervisor.clone(),
            ("os-hosts" | "capabilities", "{host}") if template.starts_with("/volume") => {
                e.state.volume.host_attr().split('#').next().unwrap_or_default().to_string()
            }
            (_, "{host}") => HOST.into(),
            (_, "{power}") => "reboot".into(),
            ("images", "{id}") if template.contains("/actions/") => w.active_image.clone(),
            ("images", "{id}") => w.image.clone(),
            ("tasks", "{id}") => "00000000-0000-4000-8000-000000000000".into(),
            ("os-quota-class-sets", "{id}") => "default".into(),
            (_, "{req}") => w.request_id.clone(),
            (_, "{volume}") => w.attached_volume.clone(),
            (_, "{volume_id}") => w.volume.clone(),
            ("extra_specs", "{key}") => "multiattach".into(),
            ("types", "{type_id}") => w.volume_type.clone(),
            (_, "{transfer_id}") => w.transfer.clone(),
            (_, "{snapshot_id}") => w.snapshot.clone(),
            (_, "{qos_id}") => w.qos.clone(),
            (_, "{group_type_id}") => w.group_type.clone(),
            (_, "{group_id}") => w.group.clone(),
            (_, "{group_snapshot_id}") => w.group_snapshot.clone(),
            (_, "{message_id}") => w.message.clone(),
            ("encryption", "{encryption_id}") if method == "GET" => "provider".into(),
            (_, "{encryption_id}") => w.encryption.clone(),
            (_, "{key}") => "k".into(),
            (_, "{attachment_id}") => w.attachment.clone(),
            (_, "{tag}") => "t".into(),
            ("members", "{member_id}") => MEMBER_PROJECT.into(),
            (_, "{migration_id}") => "1".into(),
            (_, "{alias}") => "os-keypairs".into(),
            (_, "{tenant_id}") => e.member.project_id.clone(),
            (_, "{before}") => "2026-11-30%2000%3A00%3A00.000000".into(),
            ("os-networks", "{id}") => "5f8e6a2c-1d3b-4c7e-9a0f-2b4d6c8e0a1f".into(),
            (_, "{action}") => "enable".into(),
            ("projects", "{project_id}") if identity_delete && template.ends_with("{project_id}") => {
                w.victim_project.clone()
            }
            (_, "{project_id}") => e.member.project_id.clone(),
            (_, "{app_cred_id}") if identity_delete => w.victim_app_cred.clone(),
            (_, "{app_cred_id}") => w.app_cred.clone(),
            (_, "{user_id}") if identity_delete => w.victim_user.clone(),
            (_, "{user_id}") => e.member.user_id.clone(),
            (_, "{role_id}") if identity_delete && template == "/identity/v3/roles/{role_id}" => w.victim_role.clone(),
            (_, "{role_id}") => e.member_role.clone(),
            (_, "{domain_id}") => stratus_api::identity::DEFAULT_DOMAIN_ID.into(),
            (_, "{service_id}") => service(),
            (_, "{endpoint_id}") => endpoint(),
            (_, "{region_id}") => stratus_api::identity::REGION.into(),
            ("namespaces", "{namespace}") => w.namespace.clone(),
            ("objects", "{object_name}") => "o".into(),
            ("properties", "{property_name}") => "p".into(),
            ("resource_types", "{resource_type}") => "OS::Glance::Image".into(),
            ("metadefs", "{name}") => "namespace".into(),
            (p, s) => panic!("no fixture for {s} (after /{p}) in {template}: add one to fill()"),
        };
        out.push(v);
        prev = seg;
    }
    out.join("/")
}

/// Send one request as column `col`; the status and the start of the body.
async fn send(e: &Env, col: usize, method: &str, url: &str, what: Payload, w: &World) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(url).header("x-auth-token", &e.tokens[col]);
    if url.starts_with("/volume/") {
        req = req.header("openstack-api-version", "volume latest");
    }
    // Routes a later compute microversion added are asked at it.
    if let Some(minor) = added_in(method, url) {
        req = req.header("openstack-api-version", format!("compute 2.{minor}"));
    }
    let body = match what {
        Empty => Body::empty(),
        Json(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b)
        }
        Patch(b) => {
            req = req.header("content-type", "application/openstack-images-v2.1-json-patch");
            Body::from(b)
        }
        Octets => {
            req = req.header("content-type", "application/octet-stream");
            Body::empty()
        }
        Subject => {
            req = req.header("x-subject-token", &w.subject);
            Body::empty()
        }
    };
    let resp = e.app.clone().oneshot(req.body(body).expect("request")).await.expect("response");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 64 * 1024 * 1024).await.unwrap_or_default();
    let text: String = String::from_utf8_lossy(&bytes).chars().take(160).collect();
    (status, text)
}

fn class_ok(want: Class, got: StatusCode) -> bool {
    match want {
        Class::Allowed => ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&got),
        Class::Forbidden => got == StatusCode::FORBIDDEN,
        Class::NotFound => got == StatusCode::NOT_FOUND,
    }
}

fn key(method: &str, path: &str) -> (String, String) {
    (method.to_string(), path.to_string())
}

#[test]
fn every_route_has_exactly_one_row_and_every_row_a_route() {
    let scanned: BTreeSet<(String, String)> =
        crate::auth_matrix_tests::every_route().iter().map(|(m, p)| key(m, p)).collect();
    let mut rows = BTreeSet::new();
    let mut wrong = Vec::new();
    for row in ROWS {
        if !rows.insert(key(row.method, row.path)) {
            wrong.push(format!("two rows for {} {}", row.method, row.path));
        }
        assert!(!row.why.is_empty(), "{} {}: say which rule the row mirrors", row.method, row.path);
    }
    for (m, p) in scanned.difference(&rows) {
        wrong.push(format!("route without a row: {m} {p}"));
    }
    for (m, p) in rows.difference(&scanned) {
        wrong.push(format!("row for a route the router does not serve: {m} {p}"));
    }
    for name in stratus_api::compute::actions::ACTION_NAMES {
        if !ACTIONS.iter().any(|x| x.path == SA && x.key == *name) {
            wrong.push(format!("server action without a row: {name}"));
        }
    }
    for x in ACTIONS {
        let body: Value = serde_json::from_str(x.body).expect("action body is JSON");
        if body.as_object().and_then(|o| o.keys().next()).map(String::as_str) != Some(x.key) {
            wrong.push(format!("action row {} sends another action: {}", x.key, x.body));
        }
        if !rows.contains(&key("POST", x.path)) {
            wrong.push(format!("action row {} of an unknown route {}", x.key, x.path));
        }
    }
    for q in QUERIES {
        let path = q.path.split('?').next().unwrap_or_default();
        if !rows.contains(&key(q.method, path)) {
            wrong.push(format!("query row of an unknown route: {} {}", q.method, q.path));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The compute microversion that added a route (requests are sent at it).
fn added_in(method: &str, url: &str) -> Option<u32> {
    if url.starts_with("/compute/v2.1/servers/") && url.contains("/migrations") {
        Some(23)
    } else if url.starts_with("/compute/v2.1/servers/") && url.ends_with("/topology") {
        Some(78)
    } else if method == "PUT" && url.starts_with("/compute/v2.1/flavors/") {
        Some(55)
    } else if method == "PUT" && url.contains("/os-volume_attachments/") {
        Some(85)
    } else if url.starts_with("/compute/") && url.contains("/tags") {
        Some(26)
    } else {
        None
    }
}

/// Run one request per column; mismatches are added to `wrong`.
#[allow(clippy::too_many_arguments)]
async fn check(
    e: &Env,
    shared: &World,
    fresh: Fresh,
    method: &str,
    template: &str,
    label: &str,
    cols: Cols,
    what: Payload,
    why: &str,
    wrong: &mut Vec<String>,
) {
    // A route of a microversion above the served range answers 404 to all.
    if added_in(method, template).is_some_and(|m| m > stratus_api::MAX_COMPUTE.minor) {
        return;
    }
    // Forbidden and not-found callers first: they must change nothing.
    for col in [0, 2, 1, 3] {
        let w = match fresh {
            Fresh::No => shared.clone(),
            Fresh::All => world(e).await,
            Fresh::Server => World { server: new_server(e).await, ..shared.clone() },
            Fresh::Volume => World { volume: new_volume(e).await, ..shared.clone() },
        };
        let url = fill(template, method, e, &w);
        let (status, body) = send(e, col, method, &url, what, &w).await;
        if !class_ok(cols[col], status) {
            wrong.push(format!(
                "{method} {label} as {}: {status}, expected {:?} ({why}); body: {body}",
                ROLES[col], cols[col]
            ));
        }
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_openstack_default_policy() {
    let e = env().await;
    let shared = world(&e).await;
    let mut wrong = Vec::new();
    // Rows that destroy what they name get fresh resources per caller, after the others.
    let (destructive, others): (Vec<&Row>, Vec<&Row>) = ROWS.iter().partition(|r| r.method == "DELETE");
    for row in others {
        check(&e, &shared, Fresh::No, row.method, row.path, row.path, row.cols, row.send, row.why, &mut wrong).await;
    }
    for row in destructive {
        check(&e, &shared, Fresh::All, row.method, row.path, row.path, row.cols, row.send, row.why, &mut wrong).await;
    }
    for q in QUERIES {
        let fresh = if q.method == "DELETE" { Fresh::Volume } else { Fresh::No };
        check(&e, &shared, fresh, q.method, q.path, q.path, q.cols, q.send, q.why, &mut wrong).await;
    }
    for x in ACTIONS {
        let label = format!("{} {}", x.path, x.key);
        let fresh = match x.path {
            SA => Fresh::Server,
            FA | AGA | TA | TPA => Fresh::All,
            _ => Fresh::Volume,
        };
        check(&e, &shared, fresh, "POST", x.path, &label, x.cols, Json(x.body), x.why, &mut wrong).await;
    }
    assert!(wrong.is_empty(), "{} mismatches:\n{}", wrong.len(), wrong.join("\n"));
}
