//! A server's migrations (`/servers/{id}/migrations`, 2.23): Nova lists
//! only its in-progress live migrations there, and Stratus offers no live
//! migration, so the list is always empty and every migration id a 404.
//! Also a server's NUMA topology (`/servers/{id}/topology`, 2.78): Stratus
//! places no server on NUMA nodes, which Nova shows as no nodes. And the
//! migrations list (`/os-migrations`): every resize, cold migration and
//! evacuation, in Nova's view of each microversion.

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::paging::{Page, changes_window, next_link, only_params};
use stratus_api::compute::{parse_query, query_value, views};
use stratus_db::{MigrationFilter, MigrationRow};

/// The query parameters `/os-migrations` reads at `mv` (Nova's query
/// schemas: before 2.59 any other key is ignored, from 2.59 refused).
fn migration_query(raw: Option<&str>, mv: Microversion) -> Result<(MigrationFilter, Option<Page>, bool), ApiError> {
    let q = parse_query(raw);
    let mut allowed = vec!["hidden", "host", "instance_uuid", "source_compute", "status", "migration_type"];
    if mv.at_least(59) {
        allowed.extend(["limit", "marker", "changes-since"]);
        if mv.at_least(66) {
            allowed.push("changes-before");
        }
        if mv.at_least(80) {
            allowed.extend(["user_id", "project_id"]);
        }
        only_params(&q, &allowed)?;
    }
    let get = |k: &str| query_value(&q, k).map(str::to_string);
    let (since, before) = changes_window(&q, mv.at_least(59), mv.at_least(66))?;
    let filter = MigrationFilter {
        status: get("status"),
        host: get("host"),
        source_compute: get("source_compute"),
        migration_type: get("migration_type"),
        instance_uuid: get("instance_uuid"),
        // Nova reads `project_id` (the policy's cross-project check) at every
        // version; the schema names it from 2.80.
        project_id: get("project_id"),
        user_id: if mv.at_least(80) { get("user_id") } else { None },
        changes_since: since,
        changes_before: before,
    };
    // Stratus hides no migration (Nova hides the internal half of a
    // cross-cell move): asking for hidden ones finds none.
    let hidden = get("hidden")
        .is_some_and(|h| matches!(h.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes" | "y" | "on"));
    let page = if mv.at_least(59) { Some(Page::parse(&q)?) } else { None };
    Ok((filter, page, hidden))
}

/// One migration in Nova's view at `mv`; without `show_hosts` (not an admin)
/// the hosts and nodes are null, as Nova's `index:host` rule.
fn migration_view(m: &MigrationRow, mv: Microversion, show_hosts: bool) -> Value {
    // Nova's flavor ids here are its internal integers; a Stratus flavor id
    // that is one is shown, any other as null (the schema allows it).
    let flavor = |id: &str| id.parse::<i64>().ok();
    let host = |h: Option<&str>| if show_hosts { h.map(str::to_string) } else { None };
    let mut v = json!({
        "id": m.id,
        "instance_uuid": m.server_id,
        "status": m.status.as_str(),
        "source_compute": host(Some(&m.source_host)),
        "source_node": host(Some(&m.source_host)),
        "dest_compute": host(m.dest_host.as_deref()),
        "dest_node": host(m.dest_host.as_deref()),
        // Nova's dest_host is the destination's IP address, which Stratus
        // does not record for a compute host.
        "dest_host": null,
        "old_instance_type_id": flavor(&m.old_flavor_id),
        "new_instance_type_id": flavor(&m.new_flavor_id),
        "created_at": views::iso_micro(m.created_at),
        "updated_at": views::iso_micro(m.updated_at),
    });
    if mv.at_least(23) {
        // `links` only for an in-progress live migration: never here.
        v["migration_type"] = m.kind.as_str().into();
    }
    if mv.at_least(59) {
        v["uuid"] = m.uuid.clone().into();
    }
    if mv.at_least(80) {
        v["project_id"] = m.project_id.clone().into();
        v["user_id"] = m.user_id.clone().into();
    }
    v
}

#[utoipa::path(get, path = "/compute/v2.1/os-migrations", tag = "servers", params(("status" = Option<String>, Query, description = "Only this status"), ("host" = Option<String>, Query, description = "Moved from or to this host"), ("source_compute" = Option<String>, Query, description = "Moved from this host"), ("migration_type" = Option<String>, Query, description = "resize, migration or evacuation"), ("instance_uuid" = Option<String>, Query, description = "Of this server"), ("hidden" = Option<String>, Query, description = "Hidden migrations (none here)"), ("limit" = Option<u32>, Query, description = "Page size (2.59)"), ("marker" = Option<String>, Query, description = "uuid of the last migration of the previous page (2.59)"), ("changes-since" = Option<String>, Query, description = "Updated at or after (2.59)"), ("changes-before" = Option<String>, Query, description = "Updated at or before (2.66)"), ("project_id" = Option<String>, Query, description = "Of this project's servers (a manager: its own; all or another: admin)"), ("user_id" = Option<String>, Query, description = "Of this user's servers (2.80)")), responses((status = 200, description = "Migrations, newest first", body = s::MigrationList), (status = 400, description = "Bad limit, marker, time or parameter (2.59)"), (status = 403, description = "Not a project manager or admin, or another project's without admin")))]
pub(super) async fn migration_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (filter, page, hidden) = migration_query(q.as_deref(), mv)?;
    let list = st.compute.migrations(&ctx, filter).await?;
    let all = if hidden { Vec::new() } else { list.migrations };
    let mut body = json!({});
    match page {
        Some(page) => {
            let shown = page.apply(all, |m| m.uuid.clone())?;
            body["migrations"] =
                shown.iter().map(|m| migration_view(m, mv, list.show_hosts)).collect::<Vec<_>>().into();
            if page.is_full(shown.len())
                && let Some(last) = shown.last()
            {
                body["migrations_links"] =
                    next_link(&st.public_url, "os-migrations", &parse_query(q.as_deref()), &last.uuid);
            }
        }
        None => {
            body["migrations"] = all.iter().map(|m| migration_view(m, mv, list.show_hosts)).collect::<Vec<_>>().into()
        }
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/migrations", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's in-progress live migrations (admin, 2.23; always none: live migration is not offered)", body = s::ServerMigrationList), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not an admin"), (status = 404, description = "No such server, or below 2.23")))]
pub(super) async fn server_migration_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.compute.live_migrations(&ctx, &id).await?;
    Ok(Json(json!({"migrations": []})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/migrations/{migration_id}", tag = "servers", params(("id" = String, Path, description = "Server id"), ("migration_id" = String, Path, description = "Migration id")), responses((status = 200, description = "One in-progress live migration (never, here)", body = s::ServerMigrationList), (status = 403, description = "Not an admin"), (status = 404, description = "No such server or in-progress live migration, or below 2.23")))]
pub(super) async fn server_migration_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, migration_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    st.compute.live_migrations(&ctx, &id).await?;
    Err(ApiError::NotFound(format!("Migration {migration_id} not found for instance {id}")))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/topology", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's NUMA topology (2.78; none: Stratus does not pin servers to NUMA nodes)", body = s::ServerTopology), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not allowed"), (status = 404, description = "No such server, or below 2.78")))]
pub(super) async fn server_topology(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.compute.get_visible(&ctx, &id).await?;
    Ok(Json(json!({"nodes": [], "pagesize_kb": null})))
}
