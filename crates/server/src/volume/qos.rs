//! QoS specs (`/qos-specs`, admins) and volume types' encryption specs
//! (`/types/{id}/encryption`, admins). Handlers only translate: bodies and
//! views are [`stratus_api::volume::qos`]'s, the rules
//! [`stratus_volume::VolumeService`]'s; the admin check comes before the body.

use super::{Params, Q, param, scope};
use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::volume::qos as wire;
use stratus_volume::{EncryptionChange, check_type_admin};

fn change(f: wire::EncryptionFields) -> EncryptionChange {
    let (provider, cipher, key_size, control_location) = f;
    EncryptionChange { provider, cipher, key_size, control_location }
}

fn vol_type_id(q: &std::collections::HashMap<String, String>) -> Result<&str, ApiError> {
    q.get("vol_type_id")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("Volume Type id must not be None.".into()))
}

/// `GET /qos-specs` (admins).
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "QoS specs", body = s::QosSpecList), (status = 403, description = "Not an admin")))]
pub(super) async fn list_qos(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let out: Vec<Value> = state.volume.qos_list(&ctx).await?.iter().map(wire::qos_view).collect();
    Ok(axum::Json(json!({ "qos_specs": out })))
}

/// `POST /qos-specs` (admins) → 200: `name`, `consumer`, the rest specs.
#[utoipa::path(post, path = "/volume/v3/{project_id}/qos-specs", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::QosSpecCreate, responses((status = 200, description = "Created", body = s::QosSpecBody), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 409, description = "Name taken")))]
pub(super) async fn create_qos(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let project = scope(&ctx, &p)?;
    check_type_admin(&ctx, "volume_extension:qos_specs_manage:create")?;
    let c = wire::parse_qos_create(&parse_json(&body)?)?;
    let q = state.volume.qos_create(&ctx, &c.name, c.consumer.as_deref(), c.specs).await?;
    Ok(axum::Json(
        json!({ "qos_specs": wire::qos_view(&q), "links": wire::qos_links(&state.public_url, &project, &q.id) }),
    ))
}

/// `GET /qos-specs/{id}` (admins).
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs/{qos_id}", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id")), responses((status = 200, description = "The QoS specs", body = s::QosSpecBody), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn show_qos(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    let project = scope(&ctx, &p)?;
    let q = state.volume.qos_get(&ctx, param(&p, "qos_id")?).await?;
    Ok(axum::Json(
        json!({ "qos_specs": wire::qos_view(&q), "links": wire::qos_links(&state.public_url, &project, &q.id) }),
    ))
}

/// `PUT /qos-specs/{id}` (admins): add or overwrite keys; echoes them.
#[utoipa::path(put, path = "/volume/v3/{project_id}/qos-specs/{qos_id}", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id")), request_body = s::QosSpecKeys, responses((status = 200, description = "The keys set", body = s::QosSpecKeys), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn set_qos_keys(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "qos_id")?;
    state.volume.qos_get(&ctx, id).await?;
    let set = wire::parse_qos_set(&parse_json(&body)?)?;
    state.volume.qos_set_keys(&ctx, id, &set).await?;
    Ok(axum::Json(json!({ "qos_specs": set })))
}

/// `DELETE /qos-specs/{id}` (admins) → 202; refused while associated unless `force`.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/qos-specs/{qos_id}", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id"), ("force" = Option<String>, Query, description = "Truthy: dissociate first")), responses((status = 202, description = "Deleted"), (status = 400, description = "Still associated"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn delete_qos(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let force = q.get("force").is_some_and(|f| stratus_api::volume::truthy(f));
    state.volume.qos_delete(&ctx, param(&p, "qos_id")?, force).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /qos-specs/{id}/delete_keys` (admins) → 202.
#[utoipa::path(put, path = "/volume/v3/{project_id}/qos-specs/{qos_id}/delete_keys", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id")), request_body = s::QosSpecDeleteKeys, responses((status = 202, description = "Removed"), (status = 400, description = "Invalid body"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown spec or key")))]
pub(super) async fn unset_qos_keys(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "qos_id")?;
    state.volume.qos_get(&ctx, id).await?;
    let keys = wire::parse_qos_keys(&parse_json(&body)?)?;
    state.volume.qos_unset_keys(&ctx, id, &keys).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /qos-specs/{id}/associations` (admins): the volume types.
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs/{qos_id}/associations", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id")), responses((status = 200, description = "Associations", body = s::QosAssociations), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn qos_associations(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let a = state.volume.qos_associations(&ctx, param(&p, "qos_id")?).await?;
    Ok(axum::Json(json!({ "qos_associations": wire::qos_associations_view(&a) })))
}

/// `GET /qos-specs/{id}/associate?vol_type_id=` (admins) → 202.
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs/{qos_id}/associate", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id"), ("vol_type_id" = Option<String>, Query, description = "Volume type id")), responses((status = 202, description = "Associated"), (status = 400, description = "No type, or it has another QoS spec"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown spec or type")))]
pub(super) async fn qos_associate(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "qos_id")?;
    state.volume.qos_get(&ctx, id).await?;
    state.volume.qos_associate(&ctx, id, vol_type_id(&q)?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /qos-specs/{id}/disassociate?vol_type_id=` (admins) → 202.
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs/{qos_id}/disassociate", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id"), ("vol_type_id" = Option<String>, Query, description = "Volume type id")), responses((status = 202, description = "Dissociated"), (status = 400, description = "No type"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown spec or type")))]
pub(super) async fn qos_disassociate(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "qos_id")?;
    state.volume.qos_get(&ctx, id).await?;
    state.volume.qos_disassociate(&ctx, id, Some(vol_type_id(&q)?)).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /qos-specs/{id}/disassociate_all` (admins) → 202.
#[utoipa::path(get, path = "/volume/v3/{project_id}/qos-specs/{qos_id}/disassociate_all", tag = "qos", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("qos_id" = String, Path, description = "QoS specs id")), responses((status = 202, description = "Dissociated from every type"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown")))]
pub(super) async fn qos_disassociate_all(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.qos_disassociate(&ctx, param(&p, "qos_id")?, None).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /types/{id}/encryption` (admins): the spec, or `{}`.
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}/encryption", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Volume type id")), responses((status = 200, description = "The encryption spec, or {}", body = s::EncryptionSpec), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type")))]
pub(super) async fn show_encryption(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let e = state.volume.encryption_show(&ctx, param(&p, "type_id")?).await?;
    Ok(axum::Json(wire::encryption_show_view(e.as_ref())))
}

/// `POST /types/{id}/encryption` (admins) → 200; not for a type in use (400).
#[utoipa::path(post, path = "/volume/v3/{project_id}/types/{type_id}/encryption", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Volume type id")), request_body = s::EncryptionBody, responses((status = 200, description = "Created", body = s::EncryptionBody), (status = 400, description = "Invalid body, type in use, or already encrypted"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type")))]
pub(super) async fn create_encryption(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    state
        .volume
        .encryption_type_for_change(&ctx, id, "volume_extension:volume_type_encryption:create", "create")
        .await?;
    let c = change(wire::parse_encryption(&parse_json(&body)?)?);
    let e = state.volume.encryption_create(&ctx, id, c).await?;
    Ok(axum::Json(json!({ "encryption": wire::encryption_created_view(&e) })))
}

/// `GET /types/{id}/encryption/{key}` (admins): one field, `{key: value}`.
#[utoipa::path(get, path = "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Volume type id"), ("encryption_id" = String, Path, description = "Encryption spec id (GET: a spec key)")), responses((status = 200, description = "The field", body = s::EncryptionItem), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or key")))]
pub(super) async fn show_encryption_item(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let key = param(&p, "encryption_id")?;
    let e = state.volume.encryption_show(&ctx, param(&p, "type_id")?).await?;
    let view = wire::encryption_show_view(e.as_ref());
    match view.get(key) {
        Some(v) if e.is_some() => Ok(axum::Json(json!({ key: v }))),
        _ => {
            Err(ApiError::NotFound(format!("The encryption spec of type {} has no key {key}.", param(&p, "type_id")?)))
        }
    }
}

/// `PUT /types/{id}/encryption/{encryption_id}` (admins): echoes the fields given.
#[utoipa::path(put, path = "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Volume type id"), ("encryption_id" = String, Path, description = "Encryption spec id (GET: a spec key)")), request_body = s::EncryptionBody, responses((status = 200, description = "Updated: the fields given", body = s::EncryptionBody), (status = 400, description = "Invalid body, or type in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or spec")))]
pub(super) async fn update_encryption(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "type_id")?;
    state
        .volume
        .encryption_type_for_change(&ctx, id, "volume_extension:volume_type_encryption:update", "update")
        .await?;
    let v = parse_json(&body)?;
    let c = change(wire::parse_encryption(&v)?);
    state.volume.encryption_update(&ctx, id, param(&p, "encryption_id")?, c).await?;
    Ok(axum::Json(json!({ "encryption": v["encryption"].clone() })))
}

/// `DELETE /types/{id}/encryption/{encryption_id}` (admins) → 202.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/types/{type_id}/encryption/{encryption_id}", tag = "types", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("type_id" = String, Path, description = "Volume type id"), ("encryption_id" = String, Path, description = "Encryption spec id (GET: a spec key)")), responses((status = 202, description = "Deleted"), (status = 400, description = "Type in use"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown type or spec")))]
pub(super) async fn delete_encryption(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.encryption_delete(&ctx, param(&p, "type_id")?, param(&p, "encryption_id")?).await?;
    Ok(StatusCode::ACCEPTED)
}
