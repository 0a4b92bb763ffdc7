//! Volume attachments of a server (`os-volume_attachments`).

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv, RequestId};
use crate::openapi::schemas as s;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{VolumeAttach, views};

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's volume attachments", body = s::ServerAttachmentList), (status = 404, description = "Not found")))]
pub(super) async fn volume_attachment_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let atts = st.compute.attachment_list(&ctx, &id).await?;
    Ok(Json(json!({"volumeAttachments": atts.iter().map(views::attachment).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}", tag = "volumes", params(("id" = String, Path, description = "Server id"), ("volume" = String, Path, description = "Volume id")), responses((status = 200, description = "One attachment", body = s::ServerAttachmentBody), (status = 404, description = "Not found")))]
pub(super) async fn volume_attachment_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = st.compute.attachment_get(&ctx, &id, &volume).await?;
    Ok(Json(json!({"volumeAttachment": views::attachment(&a)})))
}

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/os-volume_attachments", tag = "volumes", params(("id" = String, Path, description = "Server id")), request_body = s::VolumeAttach, responses((status = 200, description = "Attachment reserved; the host opens the volume", body = s::ServerAttachmentBody), (status = 400, description = "Volume not available"), (status = 404, description = "Server or volume not found"), (status = 409, description = "Server state or lock")))]
pub(super) async fn volume_attach(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Existence and policy before the body: 404/403 never hide behind a 400.
    st.compute.authorize_attach(&ctx, &id).await?;
    let req = VolumeAttach::parse(&parse_json::<Value>(&body)?)?;
    let a = st.compute.attach_volume(&ctx, &id, &req.volume_id, &rid.0, mv.at_least(20)).await?;
    Ok(Json(json!({"volumeAttachment": views::attachment(&a)})))
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
