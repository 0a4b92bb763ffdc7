//! Volume transfers: `/os-volume-transfer` (every microversion) and
//! `/volume-transfers` (3.55+, the same calls). Create answers the auth key
//! once; another project accepts with it and takes the volume. Handlers only
//! translate: bodies and views are [`stratus_api::volume::transfers`]'s, the
//! rules [`stratus_volume::VolumeService`]'s.

use super::{Params, Q, VolumeMv, param, require_mv, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use stratus_api::volume::transfers::{self as wire, CreateTransfer, MV_TRANSFERS};
use stratus_auth::AuthContext;

/// Which of the two collections a request came by (links name it; the new
/// one needs 3.55).
#[derive(Clone, Copy)]
enum Via {
    Legacy,
    New,
}

impl Via {
    fn path(self) -> &'static str {
        match self {
            Via::Legacy => "os-volume-transfer",
            Via::New => "volume-transfers",
        }
    }

    fn check(self, mv: VolumeMv) -> Result<(), ApiError> {
        match self {
            Via::Legacy => Ok(()),
            Via::New => require_mv(mv, MV_TRANSFERS),
        }
    }
}

type Created = (StatusCode, axum::Json<Value>);

async fn create(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    via: Via,
    body: &Bytes,
) -> Result<Created, ApiError> {
    via.check(mv)?;
    stratus_volume::check_write(ctx, "create_transfer")?;
    let c = CreateTransfer::parse(&parse_json(body)?, mv.0)?;
    let t = state.volume.transfer_create(ctx, &c.volume_id, c.name, c.no_snapshots).await?;
    let mut view = wire::transfer_detail(&state.public_url, &t.transfer, via.path(), mv.0);
    view["auth_key"] = json!(t.auth_key);
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "transfer": view }))))
}

async fn list(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    via: Via,
    q: &HashMap<String, String>,
    detail: bool,
) -> Result<axum::Json<Value>, ApiError> {
    via.check(mv)?;
    let all = q.get("all_tenants").or_else(|| q.get("all_projects")).is_some_and(|v| stratus_api::volume::truthy(v));
    let mut rows = state.volume.transfer_list(ctx, all).await?;
    // Cinder: oldest first before 3.59; from 3.59 sorted (default newest
    // first) and paged as the query asks.
    let field = |t: &stratus_db::VolumeTransferRow, k: &str| -> Option<String> {
        Some(match k {
            "id" => t.id.clone(),
            "created_at" => stratus_api::volume::cinder_ts(t.created_at).to_string(),
            "name" | "display_name" => t.name.clone().unwrap_or_default(),
            "volume_id" => t.volume_id.to_string(),
            _ => return None,
        })
    };
    let mut next = None;
    if mv.0 >= 59 {
        super::paging::sort(&mut rows, q, field)?;
        let (page, n) = super::paging::page(rows, q, |t| t.id.clone())?;
        rows = page;
        next = n;
    } else {
        rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    }
    let out: Vec<Value> = rows
        .iter()
        .map(|t| {
            if detail {
                wire::transfer_detail(&state.public_url, t, via.path(), mv.0)
            } else {
                wire::transfer_summary(&state.public_url, t, via.path())
            }
        })
        .collect();
    let mut body = json!({ "transfers": out });
    if let Some((limit, marker)) = next {
        let path = if detail { format!("{}/detail", via.path()) } else { via.path().to_string() };
        body["transfers_links"] =
            super::paging::next_link(&state.public_url, &ctx.project_id, &path, q, limit, &marker);
    }
    Ok(axum::Json(body))
}

async fn show(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    via: Via,
    id: &str,
) -> Result<axum::Json<Value>, ApiError> {
    via.check(mv)?;
    let t = state.volume.transfer_get(ctx, id).await?;
    Ok(axum::Json(json!({ "transfer": wire::transfer_detail(&state.public_url, &t, via.path(), mv.0) })))
}

async fn delete(state: &AppState, ctx: &AuthContext, mv: VolumeMv, via: Via, id: &str) -> Result<StatusCode, ApiError> {
    via.check(mv)?;
    state.volume.transfer_delete(ctx, id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn accept(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    via: Via,
    id: &str,
    body: &Bytes,
) -> Result<Created, ApiError> {
    via.check(mv)?;
    stratus_volume::check_write(ctx, "accept_transfer")?;
    let key = wire::parse_accept(&parse_json(body)?)?;
    let t = state.volume.transfer_accept(ctx, id, &key).await?;
    let view = wire::transfer_summary(&state.public_url, &t, via.path());
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "transfer": view }))))
}

/// `POST /os-volume-transfer`: offer an `available` volume → 202 with the auth key (shown once).
#[utoipa::path(post, path = "/volume/v3/{project_id}/os-volume-transfer", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::VolumeTransferCreate, responses((status = 202, description = "Created, with the auth key", body = s::VolumeTransferBody), (status = 400, description = "Invalid body, or the volume is not available"), (status = 404, description = "Unknown volume")))]
pub(super) async fn legacy_create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    scope(&ctx, &p)?;
    create(&state, &ctx, mv, Via::Legacy, &body).await
}

/// `GET /os-volume-transfer`: the caller's project's transfers (`all_tenants`: admins, all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-volume-transfer", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Transfers (short)", body = s::VolumeTransferList)))]
pub(super) async fn legacy_list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, Via::Legacy, &q, false).await
}

/// `GET /os-volume-transfer/detail`: as the list, in full.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-volume-transfer/detail", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Transfers in full", body = s::VolumeTransferList)))]
pub(super) async fn legacy_list_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, Via::Legacy, &q, true).await
}

/// `GET /os-volume-transfer/{id}`: another project's transfer is 404.
#[utoipa::path(get, path = "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), responses((status = 200, description = "The transfer", body = s::VolumeTransferBody), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn legacy_show(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    show(&state, &ctx, mv, Via::Legacy, param(&p, "transfer_id")?).await
}

/// `DELETE /os-volume-transfer/{id}` → 202: withdrawn; the volume is `available` again.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), responses((status = 202, description = "Withdrawn"), (status = 404, description = "Unknown or another project's")))]
pub(super) async fn legacy_delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    delete(&state, &ctx, mv, Via::Legacy, param(&p, "transfer_id")?).await
}

/// `POST /os-volume-transfer/{id}/accept` with the auth key → 202: the volume is the caller's.
#[utoipa::path(post, path = "/volume/v3/{project_id}/os-volume-transfer/{transfer_id}/accept", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), request_body = s::VolumeTransferAccept, responses((status = 202, description = "Accepted", body = s::VolumeTransferBody), (status = 400, description = "Invalid body or wrong auth key"), (status = 404, description = "Unknown transfer"), (status = 413, description = "Over the accepting project's quota")))]
pub(super) async fn legacy_accept(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    scope(&ctx, &p)?;
    accept(&state, &ctx, mv, Via::Legacy, param(&p, "transfer_id")?, &body).await
}

/// `POST /volume-transfers`: offer an `available` volume → 202 with the auth key (shown once).
#[utoipa::path(post, path = "/volume/v3/{project_id}/volume-transfers", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::VolumeTransferCreate, responses((status = 202, description = "Created, with the auth key", body = s::VolumeTransferBody), (status = 400, description = "Invalid body, or the volume is not available"), (status = 404, description = "Unknown volume, or below microversion 3.55")))]
pub(super) async fn new_create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    scope(&ctx, &p)?;
    create(&state, &ctx, mv, Via::New, &body).await
}

/// `GET /volume-transfers`: the caller's project's transfers (`all_tenants`: admins, all).
#[utoipa::path(get, path = "/volume/v3/{project_id}/volume-transfers", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Transfers (short)", body = s::VolumeTransferList), (status = 404, description = "Below microversion 3.55")))]
pub(super) async fn new_list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, Via::New, &q, false).await
}

/// `GET /volume-transfers/detail`: as the list, in full.
#[utoipa::path(get, path = "/volume/v3/{project_id}/volume-transfers/detail", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Transfers in full", body = s::VolumeTransferList), (status = 404, description = "Below microversion 3.55")))]
pub(super) async fn new_list_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    list(&state, &ctx, mv, Via::New, &q, true).await
}

/// `GET /volume-transfers/{id}`: another project's transfer is 404.
#[utoipa::path(get, path = "/volume/v3/{project_id}/volume-transfers/{transfer_id}", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), responses((status = 200, description = "The transfer", body = s::VolumeTransferBody), (status = 404, description = "Unknown or another project's, or below microversion 3.55")))]
pub(super) async fn new_show(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    show(&state, &ctx, mv, Via::New, param(&p, "transfer_id")?).await
}

/// `DELETE /volume-transfers/{id}` → 202: withdrawn; the volume is `available` again.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/volume-transfers/{transfer_id}", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), responses((status = 202, description = "Withdrawn"), (status = 404, description = "Unknown or another project's, or below microversion 3.55")))]
pub(super) async fn new_delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    delete(&state, &ctx, mv, Via::New, param(&p, "transfer_id")?).await
}

/// `POST /volume-transfers/{id}/accept` with the auth key → 202: the volume is the caller's.
#[utoipa::path(post, path = "/volume/v3/{project_id}/volume-transfers/{transfer_id}/accept", tag = "transfers", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("transfer_id" = String, Path, description = "Transfer id")), request_body = s::VolumeTransferAccept, responses((status = 202, description = "Accepted", body = s::VolumeTransferBody), (status = 400, description = "Invalid body or wrong auth key"), (status = 404, description = "Unknown transfer, or below microversion 3.55"), (status = 413, description = "Over the accepting project's quota")))]
pub(super) async fn new_accept(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    scope(&ctx, &p)?;
    accept(&state, &ctx, mv, Via::New, param(&p, "transfer_id")?, &body).await
}
