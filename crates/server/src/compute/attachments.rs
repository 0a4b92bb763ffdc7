//! Volume attachments of a server (`os-volume_attachments`).

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv, RequestId};
use crate::openapi::schemas as s;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{VolumeAttach, parse_attachment_update, views};
use stratus_db::AttachmentRow;

/// An attachment's view at `mv`, with its tag read when it is shown (2.70).
async fn view(st: &AppState, a: &AttachmentRow, mv: stratus_api::Microversion) -> Result<Value, ApiError> {
    let tag = if mv.at_least(70) { st.compute.attachment_tag(a).await? } else { None };
    Ok(views::attachment(a, tag.as_deref(), mv))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's volume attachments", body = s::ServerAttachmentList), (status = 404, description = "Not found")))]
pub(super) async fn volume_attachment_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let atts = st.compute.attachment_list(&ctx, &id).await?;
    let mut list = Vec::with_capacity(atts.len());
    for a in &atts {
        list.push(view(&st, a, mv).await?);
    }
    Ok(Json(json!({"volumeAttachments": list})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), responses((status = 200, description = "One attachment", body = s::ServerAttachmentBody), (status = 400, description = "A query parameter (2.102)"), (status = 404, description = "Not found")))]
pub(super) async fn volume_attachment_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.attachment_get(&ctx, &id, &volume).await?;
    Ok(Json(json!({"volumeAttachment": view(&st, &a, mv).await?})))
}

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), request_body = s::VolumeAttach, responses((status = 200, description = "Attachment reserved; the host opens the volume", body = s::ServerAttachmentBody), (status = 202, description = "The same, from 2.101", body = s::ServerAttachmentBody), (status = 400, description = "Volume not available"), (status = 404, description = "Server or volume not found"), (status = 409, description = "Server state or lock")))]
pub(super) async fn volume_attach(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Existence and policy before the body: 404/403 never hide behind a 400.
    st.compute.authorize_attach(&ctx, &id).await?;
    let req = VolumeAttach::parse_at(&parse_json::<Value>(&body)?, mv)?;
    let c = &st.compute;
    let opts = stratus_controller::compute_api::AttachOptions {
        offloaded_allowed: mv.at_least(20),
        tag: req.tag.as_deref(),
        delete_on_termination: req.delete_on_termination,
    };
    let a = c.attach_volume_with(&ctx, &id, &req.volume_id, &rid.0, opts);
    let a = a.await?;
    let body = Json(json!({"volumeAttachment": view(&st, &a, mv).await?}));
    // From 2.101 Nova answers an attach 202 (it completes later).
    let status = if mv.at_least(101) { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, body).into_response())
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), request_body = s::VolumeAttachmentUpdate, responses((status = 202, description = "delete_on_termination changed (2.85)"), (status = 400, description = "Invalid body, or another volume (swapping is not offered)"), (status = 403, description = "Not allowed"), (status = 404, description = "Not attached, or below 2.85"), (status = 409, description = "Locked")))]
pub(super) async fn volume_attachment_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, volume)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let change = parse_json::<Value>(&body).and_then(|v| Ok(parse_attachment_update(&v)?)).map_err(|e| e.to_string());
    st.compute.update_attachment(&ctx, &id, &volume, change).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), responses((status = 202, description = "Detach started"), (status = 400, description = "Root volume"), (status = 404, description = "Not attached"), (status = 409, description = "Host down or locked")))]
pub(super) async fn volume_detach(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Extension(rid): Extension<RequestId>,
    Path((id, volume)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    // From 2.20 a shelved-offloaded server takes attach and detach too.
    st.compute.detach_volume(&ctx, &id, &volume, &rid.0, mv.at_least(20)).await?;
    Ok(StatusCode::ACCEPTED)
}
