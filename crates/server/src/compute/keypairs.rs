//! Key pairs (`/os-keypairs`), as Nova's `keypairs` controller: create
//! (import or generate), list, show, delete; `type` from 2.2, another
//! user's key pairs for admins (`user_id`) from 2.10.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv};
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::Microversion;
use stratus_api::compute::paging::{next_link, only_params_from};
use stratus_api::compute::{Page, parse_keypair_create, parse_query, query_value, views};
use stratus_controller::compute_api::KeypairCreate;
use stratus_keys::KeyType;

/// `?user_id=` (honoured from 2.10, ignored before, as Nova).
fn user_id(q: Option<&str>, mv: Microversion) -> Option<String> {
    if mv < Microversion::new(2, 10) {
        return None;
    }
    query_value(&parse_query(q), "user_id").map(str::to_string)
}

#[utoipa::path(post, path = "/compute/v2.1/os-keypairs", tag = "keypairs", responses((status = 200, description = "Created (2.1); the private key when generated", body = s::KeypairCreated), (status = 201, description = "Created (2.2+)", body = s::KeypairCreated), (status = 400, description = "Invalid name, body or public key"), (status = 403, description = "Over the key_pairs quota, or another user's without admin"), (status = 409, description = "The user has a key pair of that name")))]
pub(super) async fn keypair_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r = parse_keypair_create(&parse_json::<Value>(&body)?, mv)?;
    let req = KeypairCreate {
        name: r.name,
        public_key: r.public_key,
        key_type: KeyType::parse(&r.key_type).unwrap_or(KeyType::Ssh),
        user_id: r.user_id,
        names_v292: mv.at_least(92),
    };
    let created = st.compute.keypair_create(&ctx, req).await?;
    let status = if mv >= Microversion::new(2, 2) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(views::keypair_created(&created.row, created.private_key.as_deref(), mv))).into_response())
}

#[utoipa::path(get, path = "/compute/v2.1/os-keypairs", tag = "keypairs", params(("user_id" = Option<String>, Query, description = "Another user's (admin, 2.10+)"), ("limit" = Option<u32>, Query, description = "Page size (2.35)"), ("marker" = Option<String>, Query, description = "Last name of the previous page (2.35)")), responses((status = 200, description = "The user's key pairs, by name", body = s::KeypairList), (status = 400, description = "Bad limit or unknown marker (2.35)"), (status = 403, description = "Another user's key pairs without admin")))]
pub(super) async fn keypair_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    // From 2.35 the list is paged by name (`limit`, `marker`, `keypairs_links`).
    only_params_from(q.as_deref(), mv, 75, &["user_id", "limit", "marker"])?;
    let params = parse_query(q.as_deref());
    let page = if mv.at_least(35) { Page::parse(&params)? } else { Page::default() };
    let rows = st.compute.keypair_list(&ctx, user_id(q.as_deref(), mv).as_deref()).await?;
    let rows = if mv.at_least(35) { page.apply(rows, |k| k.name.clone())? } else { rows };
    let mut body = json!({"keypairs": rows.iter().map(|k| views::keypair_brief(k, mv)).collect::<Vec<_>>()});
    if mv.at_least(35)
        && page.is_full(rows.len())
        && let Some(last) = rows.last()
    {
        body["keypairs_links"] = next_link(&st.public_url, "os-keypairs", &params, &last.name);
    }
    Ok(Json(body))
}

#[utoipa::path(get, path = "/compute/v2.1/os-keypairs/{name}", tag = "keypairs", params(("name" = String, Path, description = "Key pair name"), ("user_id" = Option<String>, Query, description = "Another user's (admin, 2.10+)")), responses((status = 200, description = "A key pair", body = s::KeypairShow), (status = 404, description = "No such key pair for the user"), (status = 403, description = "Another user's key pairs without admin")))]
pub(super) async fn keypair_show(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    let k = st.compute.keypair_get(&ctx, &name, user_id(q.as_deref(), mv).as_deref()).await?;
    Ok(Json(views::keypair(&k, mv)))
}

#[utoipa::path(delete, path = "/compute/v2.1/os-keypairs/{name}", tag = "keypairs", params(("name" = String, Path, description = "Key pair name"), ("user_id" = Option<String>, Query, description = "Another user's (admin, 2.10+)")), responses((status = 202, description = "Deleted (2.1)"), (status = 204, description = "Deleted (2.2+)"), (status = 404, description = "No such key pair for the user"), (status = 403, description = "Another user's key pairs without admin")))]
pub(super) async fn keypair_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Mv(mv): Mv,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    only_params_from(q.as_deref(), mv, 75, &["user_id"])?;
    st.compute.keypair_delete(&ctx, &name, user_id(q.as_deref(), mv).as_deref()).await?;
    Ok(if mv >= Microversion::new(2, 2) { StatusCode::NO_CONTENT } else { StatusCode::ACCEPTED })
}
