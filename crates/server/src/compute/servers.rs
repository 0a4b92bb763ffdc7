//! Servers: list (index and detail), show, create, update, delete.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv, RequestId};
use crate::openapi::schemas as s;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::{CreateServerRequest, ServerListQuery, ServerUpdate, views};
use stratus_controller::compute_api::ServerWithResources;
use stratus_db::PortRow;

pub(super) fn show(public: &str, s: &ServerWithResources, admin: bool, mv: Microversion) -> Value {
    let p: Vec<&PortRow> = s.ports.iter().collect();
    let extras = views::ServerExtras {
        host_status: s.host_status,
        tags: &s.tags,
        extra_specs: Some(&s.extra_specs),
        image_properties: s.image_properties.as_deref(),
    };
    views::server_show(public, &s.server, &p, &s.volumes, admin, mv, &extras)
}

#[utoipa::path(get, path = "/compute/v2.1/servers", tag = "servers", params(("name" = Option<String>, Query, description = "Substring of the name"), ("status" = Option<String>, Query, description = "API status"), ("all_tenants" = Option<bool>, Query, description = "All projects (admin)"), ("limit" = Option<i64>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last id of the previous page")), responses((status = 200, description = "Servers (id, name, links)", body = s::ServerList), (status = 400, description = "Bad filter"), (status = 403, description = "all_tenants without admin")))]
pub(super) async fn server_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<views::ServerIndex>, ApiError> {
    let q = ServerListQuery::parse_at(q.as_deref(), mv)?;
    let (servers, limit) = st.compute.server_list_brief(&ctx, q).await?;
    let next = views::servers_links(&st.public_url, servers.last().map(|s| &s.id), servers.len(), limit, false);
    Ok(Json(views::ServerIndex { public: st.public_url.clone(), servers, next }))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/detail", tag = "servers", params(("name" = Option<String>, Query, description = "Substring of the name"), ("status" = Option<String>, Query, description = "API status"), ("all_tenants" = Option<bool>, Query, description = "All projects (admin)"), ("limit" = Option<i64>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last id of the previous page")), responses((status = 200, description = "Servers in full", body = s::ServerDetailList), (status = 400, description = "Bad filter"), (status = 403, description = "all_tenants without admin")))]
pub(super) async fn server_detail(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = ServerListQuery::parse_at(q.as_deref(), mv)?;
    let page = st.compute.server_list(&ctx, q, true).await?;
    let no_tags: Vec<String> = Vec::new();
    let view = |s: &stratus_db::ServerRow| {
        let p: Vec<&PortRow> = page.ports.get(&s.id).map(|v| v.iter().collect()).unwrap_or_default();
        let vols: &[stratus_types::VolumeId] = page.volumes.get(&s.id).map(Vec::as_slice).unwrap_or_default();
        let host_status =
            ctx.is_admin().then(|| s.host.as_ref().and_then(|h| page.host_status.get(h).copied()).unwrap_or(""));
        let extras = views::ServerExtras {
            host_status,
            tags: page.tags.get(&s.id).unwrap_or(&no_tags),
            extra_specs: page.extra_specs.get(&s.flavor_id),
            image_properties: s.image_id.and_then(|i| page.image_properties.get(&i)).map(String::as_str),
        };
        views::server(&st.public_url, s, &p, vols, ctx.is_admin(), mv, &extras)
    };
    let last = page.servers.last().map(|s| &s.id);
    let body = DetailPage {
        servers: ViewEach { items: &page.servers, view },
        servers_links: views::servers_links(&st.public_url, last, page.servers.len(), page.limit, true),
    };
    Ok(Json(body).into_response())
}

/// `{"servers": [...], "servers_links": [...]}` of the detail list.
#[derive(serde::Serialize)]
struct DetailPage<S> {
    servers: S,
    #[serde(skip_serializing_if = "Option::is_none")]
    servers_links: Option<Value>,
}

/// A list whose items are viewed one at a time while the answer is
/// written: a page of 1,000 servers built as one tree of JSON values held
/// 17 MiB at once (heaptrack, 1,500 servers booting under a list poller),
/// where each view now lives only until it is written.
struct ViewEach<'a, T, F> {
    items: &'a [T],
    view: F,
}

impl<T, F: Fn(&T) -> Value> serde::Serialize for ViewEach<'_, T, F> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.items.iter().map(&self.view))
    }
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "A server", body = s::ServerBody), (status = 400, description = "A query parameter (2.102)"), (status = 404, description = "Unknown, deleted, or another project's server")))]
pub(super) async fn server_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = st.compute.server_show(&ctx, &id).await?;
    Ok(Json(show(&st.public_url, &s, ctx.is_admin(), mv)))
}

#[utoipa::path(post, path = "/compute/v2.1/servers", tag = "servers", request_body = CreateServerRequest, responses((status = 202, description = "Accepted: id, links, adminPass", body = s::ServerCreated), (status = 400, description = "Invalid request"), (status = 403, description = "Over quota or not allowed")))]
pub(super) async fn server_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The policy before the body: a reader gets 403, not a 400 about it.
    st.compute.authorize_create(&ctx)?;
    let req: CreateServerRequest = parse_json(&body)?;
    let c = req.check_at(mv)?;
    let (reservation_only, admin_pass, networked) =
        (c.return_reservation_id, c.admin_pass.clone(), c.networks.allocates());
    let created = st.compute.create(&ctx, c, &rid.0).await?;
    let Some(first) = created.first() else {
        return Err(ApiError::Internal("no server created".into()));
    };
    if reservation_only {
        return Ok((StatusCode::ACCEPTED, Json(json!({"reservation_id": first.server.reservation_id}))).into_response());
    }
    let pass = admin_pass.as_deref().unwrap_or(&first.admin_pass);
    let body = views::server_created(&st.public_url, &first.server.id.to_string(), pass, networked);
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/compute/v2.1/servers/{}", st.public_url, first.server.id)) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), request_body = s::ServerUpdate, responses((status = 200, description = "Updated server", body = s::ServerBody), (status = 400, description = "Invalid request"), (status = 404, description = "Not found")))]
pub(super) async fn server_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v: Value = parse_json(&body)?;
    let update = ServerUpdate::parse_at(&v, mv).map_err(|e| e.to_string());
    let s = st.compute.update_server(&ctx, &id, update).await?;
    let mut body = show(&st.public_url, &s, ctx.is_admin(), mv);
    views::trim_before_2_75(&mut body, mv, false);
    Ok(Json(body))
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id")), responses((status = 204, description = "Delete recorded (or the open delete re-driven)"), (status = 404, description = "Not found"), (status = 409, description = "Locked")))]
pub(super) async fn server_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.compute.delete_server(&ctx, &id, &rid.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
