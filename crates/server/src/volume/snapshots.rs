//! Volume snapshots: `/snapshots` (create, list, detail, show, update,
//! delete), their metadata, and the admin actions (`os-reset_status`,
//! `os-force_delete`, `os-update_snapshot_status`, `os-update_progress`).
//! Handlers only translate: bodies and views are
//! [`stratus_api::volume::snapshots`]'s, the rules
//! [`stratus_volume::VolumeService`]'s.

use super::{Params, Q, VolumeMv, param, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use stratus_api::volume::snapshots::{self as wire, CreateSnapshot, SnapshotAction};
use stratus_api::volume::{self as vwire, truthy};
use stratus_auth::AuthContext;
use stratus_volume::{NewSnapshot, SnapshotFilter};

/// Block Storage 3.22: the `metadata` filter (`SNAPSHOT_LIST_METADATA_FILTER`).
const MV_SNAPSHOT_METADATA_FILTER: u32 = 22;
/// Block Storage 3.45: `with_count` (`SUPPORT_COUNT_INFO`).
const MV_WITH_COUNT: u32 = 45;

/// `GET /snapshots[/detail]`: filters `all_tenants` (admins), `project_id`,
/// `name`, `status`, `volume_id`, `metadata` (3.22+); `with_count` (3.45+); sorted by `sort`/`sort_key`/`sort_dir`
/// (`created_at`, `id`, `name`, `status`, `size`); pages by `limit`/`marker`/`offset`.
async fn list(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
    detail: bool,
    mv: VolumeMv,
) -> Result<Value, ApiError> {
    let project = scope(ctx, p)?;
    let f = SnapshotFilter {
        all_projects: q.get("all_tenants").or_else(|| q.get("all_projects")).is_some_and(|v| truthy(v)),
        project_id: q.get("project_id").cloned(),
        name: q.get("name").or_else(|| q.get("display_name")).cloned(),
        status: q.get("status").cloned(),
        volume_id: q.get("volume_id").cloned(),
    };
    // 3.22: `metadata` (a dict, as Cinder's `literal_eval` reads it);
    // dropped before, as Cinder pops it.
    let metadata = match q.get("metadata") {
        Some(m) if mv.0 >= MV_SNAPSHOT_METADATA_FILTER => Some(vwire::dict_filter("metadata", m)?),
        _ => None,
    };
    // 3.45 `with_count`: the number of matches, before paging.
    let with_count = mv.0 >= MV_WITH_COUNT
        && match q.get("with_count") {
            Some(v) => vwire::bool_param("with_count", v)?,
            None => false,
        };
    let mut rows = state.volume.snapshot_list(ctx, &f).await?;
    if let Some(want) = &metadata {
        rows.retain(|s| {
            let have = stratus_volume::VolumeService::snapshot_metadata_of(s);
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        });
    }
    let count = rows.len();
    // Sort keys as Cinder's (`sort=key:dir,...` or `sort_key`/`sort_dir`), newest first by default.
    let mut keys: Vec<(String, bool)> = Vec::new();
    if let Some(sort) = q.get("sort") {
        for part in sort.split(',').filter(|s| !s.is_empty()) {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            keys.push((k.trim().to_string(), d.trim() != "asc"));
        }
    } else if let Some(k) = q.get("sort_key") {
        keys.push((k.clone(), q.get("sort_dir").is_none_or(|d| d != "asc")));
    }
    for (k, _) in &keys {
        if !["created_at", "updated_at", "id", "name", "display_name", "status", "size", "volume_id"]
            .contains(&k.as_str())
        {
            return Err(ApiError::BadRequest(format!("Invalid input received: Invalid sort key {k}")));
        }
    }
    if keys.is_empty() {
        keys.push(("created_at".into(), true));
    }
    rows.sort_by(|a, b| {
        for (k, desc) in &keys {
            let o = match k.as_str() {
                "id" => a.id.cmp(&b.id),
                "name" | "display_name" => a.name.cmp(&b.name),
                "status" => a.status.cmp(&b.status),
                "size" => a.size_gb.cmp(&b.size_gb),
                "volume_id" => a.volume_id.to_string().cmp(&b.volume_id.to_string()),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                _ => a.created_at.cmp(&b.created_at),
            };
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        b.id.cmp(&a.id)
    });
    // Cinder pages only from a non-empty marker (`if marker:`).
    if let Some(marker) = q.get("marker").filter(|m| !m.is_empty()) {
        let Some(i) = rows.iter().position(|s| s.id == *marker) else {
            // Cinder's `MarkerNotFound` is a 404.
            return Err(ApiError::NotFound(format!("Marker {marker} could not be found.")));
        };
        rows.drain(..=i);
    }
    if let Some(off) = q.get("offset") {
        let n = off
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("Invalid input received: offset {off} must be an integer.")))?;
        rows.drain(..n.min(rows.len()));
    }
    const MAX_PAGE: usize = 1000;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("Invalid input received: limit {l} must be an integer.")))?
            .min(MAX_PAGE),
        None => MAX_PAGE,
    };
    rows.truncate(limit);
    let next = (rows.len() == limit && limit > 0).then(|| rows.last().map(|s| s.id.clone())).flatten();
    let out: Vec<Value> = rows.iter().map(|s| wire::snapshot_view(s, mv.0, detail)).collect();
    let mut body = json!({ "snapshots": out });
    if with_count {
        body["count"] = json!(count);
    }
    if let Some(marker) = next {
        let path = if detail { "snapshots/detail" } else { "snapshots" };
        let mut query: Vec<String> =
            q.iter().filter(|(k, _)| *k != "marker").map(|(k, v)| format!("{k}={v}")).collect();
        query.sort();
        query.push(format!("marker={marker}"));
        body["snapshots_links"] = json!([{
            "rel": "next",
            "href": format!("{}/volume/v3/{project}/{path}?{}", state.public_url, query.join("&")),
        }]);
    }
    Ok(body)
}

const PROJECT: &str = "The caller's project (any for admins)";

#[utoipa::path(get, path = "/volume/v3/{project_id}/snapshots", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("volume_id" = Option<String>, Query, description = "Snapshots of this volume"), ("limit" = Option<u32>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last id of the previous page"), ("metadata" = Option<String>, Query, description = "3.22+: a dict the snapshot's metadata must contain"), ("with_count" = Option<bool>, Query, description = "3.45+: add `count`, the number of matches")), responses((status = 200, description = "Snapshots", body = s::VolumeSnapshotList), (status = 400, description = "Bad sort, limit, metadata or with_count"), (status = 404, description = "Unknown marker (Cinder's MarkerNotFound)")))]
pub(super) async fn list_snapshots(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, false, mv).await?))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/snapshots/detail", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("volume_id" = Option<String>, Query, description = "Snapshots of this volume"), ("limit" = Option<u32>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last id of the previous page"), ("metadata" = Option<String>, Query, description = "3.22+: a dict the snapshot's metadata must contain"), ("with_count" = Option<bool>, Query, description = "3.45+: add `count`, the number of matches")), responses((status = 200, description = "Snapshots with progress and project", body = s::VolumeSnapshotList), (status = 400, description = "Bad sort, limit, metadata or with_count"), (status = 404, description = "Unknown marker (Cinder's MarkerNotFound)")))]
pub(super) async fn list_snapshots_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, true, mv).await?))
}

/// `POST /snapshots` → 202 with the snapshot (`available` once the copy
/// answered in time, else `creating`).
#[utoipa::path(post, path = "/volume/v3/{project_id}/snapshots", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT)), request_body = s::VolumeSnapshotCreate, responses((status = 202, description = "Created", body = s::VolumeSnapshotBody), (status = 400, description = "Invalid body or volume status"), (status = 404, description = "Unknown volume"), (status = 413, description = "Over the snapshots or gigabytes quota")))]
pub(super) async fn create_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    scope(&ctx, &p)?;
    stratus_volume::check_write(&ctx, "create_snapshot")?;
    let c = CreateSnapshot::parse(&parse_json(&body)?, mv.0)?;
    let req = NewSnapshot {
        volume_id: c.volume_id,
        name: c.name,
        description: c.description,
        metadata: c.metadata,
        force: c.force,
    };
    let row = state.volume.snapshot_create(&ctx, req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "snapshot": wire::snapshot_view(&row, mv.0, false) }))))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), responses((status = 200, description = "The snapshot", body = s::VolumeSnapshotBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn show_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let s = state.volume.snapshot_visible(&ctx, param(&p, "snapshot_id")?).await?;
    Ok(axum::Json(json!({ "snapshot": wire::snapshot_view(&s, mv.0, true) })))
}

#[utoipa::path(put, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), request_body = s::VolumeSnapshotUpdate, responses((status = 200, description = "The updated snapshot", body = s::VolumeSnapshotBody), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn update_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "snapshot_id")?;
    state.volume.snapshot_visible(&ctx, id).await?;
    stratus_volume::check_write(&ctx, "update_snapshot")?;
    let (name, description) = wire::parse_update(&parse_json(&body)?)?;
    let row = state.volume.snapshot_update(&ctx, id, name.as_deref(), description.as_deref()).await?;
    Ok(axum::Json(json!({ "snapshot": wire::snapshot_view(&row, mv.0, false) })))
}

#[utoipa::path(delete, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), responses((status = 202, description = "Deleting"), (status = 400, description = "Not available or error"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn delete_snapshot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.snapshot_delete(&ctx, param(&p, "snapshot_id")?, false).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /snapshots/{id}/action` (202): the admin actions.
#[utoipa::path(post, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/action", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), request_body = s::VolumeSnapshotAction, responses((status = 202, description = "Done"), (status = 400, description = "Unknown action or invalid status"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn snapshot_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "snapshot_id")?;
    state.volume.snapshot_visible(&ctx, id).await?;
    let svc = &state.volume;
    match SnapshotAction::parse(&parse_json(&body)?)? {
        SnapshotAction::ResetStatus(st) => svc.snapshot_reset_status(&ctx, id, &st).await?,
        SnapshotAction::ForceDelete => svc.snapshot_delete(&ctx, id, true).await?,
        SnapshotAction::UpdateStatus(st, progress) => {
            svc.snapshot_update_status(&ctx, id, &st, progress.as_deref()).await?
        }
        SnapshotAction::UpdateProgress(progress) => svc.snapshot_update_progress(&ctx, id, &progress).await?,
    }
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), responses((status = 200, description = "The metadata", body = s::VolumeMetadata), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn show_snapshot_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let s = state.volume.snapshot_visible(&ctx, param(&p, "snapshot_id")?).await?;
    Ok(axum::Json(json!({ "metadata": stratus_volume::VolumeService::snapshot_metadata_of(&s) })))
}

async fn write_metadata(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    body: &[u8],
    replace: bool,
) -> Result<axum::Json<Value>, ApiError> {
    scope(ctx, p)?;
    let id = param(p, "snapshot_id")?;
    state.volume.snapshot_visible(ctx, id).await?;
    stratus_volume::check_write(ctx, "update_snapshot_metadata")?;
    let m = vwire::parse_metadata(&parse_json(body)?)?;
    let out = state.volume.snapshot_set_metadata(ctx, id, m, replace).await?;
    Ok(axum::Json(json!({ "metadata": out })))
}

/// `POST /snapshots/{id}/metadata`: merge.
#[utoipa::path(post, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), request_body = s::VolumeMetadata, responses((status = 200, description = "The merged metadata", body = s::VolumeMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn merge_snapshot_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    write_metadata(&state, &ctx, &p, &body, false).await
}

/// `PUT /snapshots/{id}/metadata`: replace all.
#[utoipa::path(put, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id")), request_body = s::VolumeMetadata, responses((status = 200, description = "The new metadata", body = s::VolumeMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn replace_snapshot_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    write_metadata(&state, &ctx, &p, &body, true).await
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "The item", body = s::VolumeMetaItem), (status = 404, description = "Unknown snapshot or key")))]
pub(super) async fn show_snapshot_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "snapshot_id")?, param(&p, "key")?);
    let s = state.volume.snapshot_visible(&ctx, id).await?;
    let m = stratus_volume::VolumeService::snapshot_metadata_of(&s);
    let Some(value) = m.get(key) else {
        return Err(stratus_volume::VolumeError::not_found(
            stratus_volume::Missing::SnapshotMetadataKey { snapshot: s.id.clone() },
            key,
        )
        .into());
    };
    Ok(axum::Json(json!({ "meta": { key: value } })))
}

/// `PUT /snapshots/{id}/metadata/{key}` with `{"meta": {key: value}}`.
#[utoipa::path(put, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id"), ("key" = String, Path, description = "Metadata key")), request_body = s::VolumeMetaItem, responses((status = 200, description = "The item", body = s::VolumeMetaItem), (status = 400, description = "Body and URL disagree"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn set_snapshot_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "snapshot_id")?, param(&p, "key")?);
    state.volume.snapshot_visible(&ctx, id).await?;
    stratus_volume::check_write(&ctx, "update_snapshot_metadata")?;
    let value = vwire::parse_meta_key(&parse_json(&body)?, key)?;
    state.volume.snapshot_set_metadata(&ctx, id, BTreeMap::from([(key.to_string(), value.clone())]), false).await?;
    Ok(axum::Json(json!({ "meta": { key: value } })))
}

#[utoipa::path(delete, path = "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}", tag = "snapshots", params(("project_id" = String, Path, description = PROJECT), ("snapshot_id" = String, Path, description = "Snapshot id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "Removed"), (status = 404, description = "Unknown snapshot or key")))]
pub(super) async fn delete_snapshot_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.snapshot_delete_metadata(&ctx, param(&p, "snapshot_id")?, param(&p, "key")?).await?;
    Ok(StatusCode::OK)
}
