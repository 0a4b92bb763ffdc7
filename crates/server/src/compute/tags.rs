//! Server tags (`/servers/{id}/tags`, microversion 2.26+), as Nova's
//! `server_tags` controller: list, replace and clear all, and check, add or
//! remove one. Below 2.26 the routes do not exist (404).

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::{parse_tags, validate_tag};
use stratus_controller::compute_api::TagSet;

/// The tags API exists from 2.26; below, Nova answers 404.
fn served(mv: Microversion) -> Result<(), ApiError> {
    if mv.at_least(26) { Ok(()) } else { Err(ApiError::NotFound("The resource could not be found.".into())) }
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/tags", tag = "server tags", params(("id" = String, Path, description = "Server id")), responses((status = 200, description = "The server's tags", body = s::ServerTags), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, or below microversion 2.26")))]
pub(super) async fn tag_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    served(mv)?;
    Ok(Json(json!({"tags": st.compute.server_tags(&ctx, &id).await?})))
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}/tags", tag = "server tags", params(("id" = String, Path, description = "Server id")), request_body = s::ServerTags, responses((status = 200, description = "Tags replaced; the tags now held", body = s::ServerTags), (status = 400, description = "Invalid body or tag"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, or below microversion 2.26"), (status = 409, description = "Server in a state that refuses tag changes")))]
pub(super) async fn tag_replace(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    served(mv)?;
    // The caller and the server first: a reader gets 403, not a 400 about the body.
    st.compute.authorize_tag_change(&ctx, &id, "update_all").await?;
    let v: Value = parse_json(&body)?;
    let tags = match v.as_object() {
        Some(o) if o.len() == 1 && o.contains_key("tags") => parse_tags(&o["tags"], "tags")?,
        Some(o) if !o.contains_key("tags") => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute tags. 'tags' is a required property".into(),
            ));
        }
        _ => {
            return Err(ApiError::BadRequest(
                "Invalid input: the body must be {\"tags\": [...]} and nothing else".into(),
            ));
        }
    };
    Ok(Json(json!({"tags": st.compute.server_tags_replace(&ctx, &id, tags).await?})))
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}/tags", tag = "server tags", params(("id" = String, Path, description = "Server id")), responses((status = 204, description = "Every tag removed"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, or below microversion 2.26"), (status = 409, description = "Server in a state that refuses tag changes")))]
pub(super) async fn tag_clear(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    served(mv)?;
    st.compute.server_tags_clear(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/compute/v2.1/servers/{id}/tags/{tag}", tag = "server tags", params(("id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "The server holds the tag"), (status = 400, description = "A query parameter (2.102)"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, tag not held, or below microversion 2.26")))]
pub(super) async fn tag_check(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    served(mv)?;
    st.compute.server_tag_check(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/compute/v2.1/servers/{id}/tags/{tag}", tag = "server tags", params(("id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")), responses((status = 201, description = "Tag added (Location names it)"), (status = 204, description = "The server already held the tag"), (status = 400, description = "Invalid tag, or the server holds 50 tags already"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, or below microversion 2.26"), (status = 409, description = "Server in a state that refuses tag changes")))]
pub(super) async fn tag_add(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    served(mv)?;
    st.compute.authorize_tag_change(&ctx, &id, "update").await?;
    if validate_tag(&tag, "tag").is_err() {
        return Err(ApiError::BadRequest(format!(
            "Tag '{tag}' is invalid. It must be a non empty string of at most 60 characters without characters '/' and ','"
        )));
    }
    match st.compute.server_tag_add(&ctx, &id, &tag).await? {
        TagSet::Existed => Ok(StatusCode::NO_CONTENT.into_response()),
        TagSet::Created => {
            let mut resp = StatusCode::CREATED.into_response();
            let url = format!("{}/compute/v2.1/servers/{id}/tags/{}", st.public_url, path_escape(&tag));
            if let Ok(v) = HeaderValue::from_str(&url) {
                resp.headers_mut().insert(axum::http::header::LOCATION, v);
            }
            Ok(resp)
        }
    }
}

#[utoipa::path(delete, path = "/compute/v2.1/servers/{id}/tags/{tag}", tag = "server tags", params(("id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "Tag removed"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown server, tag not held, or below microversion 2.26"), (status = 409, description = "Server in a state that refuses tag changes")))]
pub(super) async fn tag_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    served(mv)?;
    st.compute.server_tag_delete(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tag as one URL path segment (unreserved characters kept, the rest
/// percent-encoded), for the Location of a new tag.
fn path_escape(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for b in tag.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
