//! Block Storage API v3 (Cinder-compatible), mounted at `/volume`.
//!
//! Version discovery, absolute limits (usage counted from the database),
//! volumes (create, list, detail, show, update, delete, `os-extend`,
//! `os-reset_status`, `os-set_bootable`, `os-retype`), volume types (the
//! `types` module) and the attachments API (3.27+) the
//! way Nova drives it: create → update (connector) → `os-complete` (3.44) →
//! delete. Every path exists both under `/volume/v3/{project_id}` (the path
//! project must be the caller's unless admin: 403) and without the project
//! (Cinder 3.67+). Requests under `/volume/v3` negotiate the `volume`
//! microversion. Handlers only translate: the request bodies and views are
//! in [`stratus_api::volume`], the logic in [`stratus_volume::VolumeService`].
//! Handlers that read a body ask the service for existence and policy first,
//! so a 404 or 403 never hides behind a 400 about the body.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use stratus_api::volume::{
    self as wire, AttachmentAction, CreateAttachment, CreateVolume, MV_ATTACH_COMPLETE, MV_ATTACHMENTS, UpdateVolume,
    Viewer, VolumeAction,
};
use stratus_auth::AuthContext;
use stratus_db::{AttachmentRow, VolumeRow};
use stratus_volume::ListFilter;

/// The negotiated `volume` minor version (3.x), set by the microversion
/// middleware for handlers that gate on it.
#[derive(Clone, Copy, Debug)]
pub struct VolumeMv(pub u32);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for VolumeMv {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<VolumeMv>().copied().unwrap_or(VolumeMv(0)))
    }
}

/// Path parameters (`project_id` is absent on project-less URLs).
type Params = Path<HashMap<String, String>>;
/// Query parameters.
type Q = Query<HashMap<String, String>>;

/// The Block Storage API's OpenAPI document, generated from the handlers'
/// annotations; every path is also served without `/{project_id}`, which
/// [`crate::openapi`] adds.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus Block Storage API",
        version = "3.71",
        description = "OpenStack Block Storage API v3 as served by Stratus: volumes, their metadata and actions, limits, the attachments API, and volume types"
    ),
    paths(
        versions_multiple,
        versions_ok,
        crate::openapi::volume_openapi,
        limits,
        list_volumes,
        list_volumes_detail,
        volume_summary,
        resource_filters,
        create_volume,
        show_volume,
        update_volume,
        delete_volume,
        volume_action,
        show_metadata,
        merge_metadata,
        replace_metadata,
        show_metadata_key,
        set_metadata_key,
        delete_metadata_key,
        list_attachments,
        list_attachments_detail,
        create_attachment,
        show_attachment,
        update_attachment,
        delete_attachment,
        attachment_action,
        types::list_types,
        types::create_type,
        types::show_type,
        types::update_type,
        types::delete_type,
        types::list_extra_specs,
        types::create_extra_specs,
        types::show_extra_spec,
        types::update_extra_spec,
        types::delete_extra_spec,
        types::list_type_access,
        types::type_action,
        admin::availability_zones,
        admin::extensions,
        admin::list_services,
        admin::service_action,
        admin::list_hosts,
        admin::show_host,
        admin::pools,
        admin::capabilities,
        quotas::show,
        quotas::defaults,
        quotas::update,
        quotas::delete,
        quotas::class_show,
        quotas::class_update,
        default_types::set_default_type,
        default_types::show_default_type,
        default_types::list_default_types,
        default_types::delete_default_type,
        snapshots::list_snapshots,
        snapshots::list_snapshots_detail,
        snapshots::create_snapshot,
        snapshots::show_snapshot,
        snapshots::update_snapshot,
        snapshots::delete_snapshot,
        snapshots::snapshot_action,
        snapshots::show_snapshot_metadata,
        snapshots::merge_snapshot_metadata,
        snapshots::replace_snapshot_metadata,
        snapshots::show_snapshot_metadata_key,
        snapshots::set_snapshot_metadata_key,
        snapshots::delete_snapshot_metadata_key,
        transfers::legacy_create,
        transfers::legacy_list,
        transfers::legacy_list_detail,
        transfers::legacy_show,
        transfers::legacy_delete,
        transfers::legacy_accept,
        transfers::new_create,
        transfers::new_list,
        transfers::new_list_detail,
        transfers::new_show,
        transfers::new_delete,
        transfers::new_accept,
        qos::list_qos,
        qos::create_qos,
        qos::show_qos,
        qos::set_qos_keys,
        qos::delete_qos,
        qos::unset_qos_keys,
        qos::qos_associations,
        qos::qos_associate,
        qos::qos_disassociate,
        qos::qos_disassociate_all,
        qos::show_encryption,
        qos::create_encryption,
        qos::show_encryption_item,
        qos::update_encryption,
        qos::delete_encryption,
        groups::list_group_types,
        groups::create_group_type,
        groups::show_group_type,
        groups::update_group_type,
        groups::delete_group_type,
        groups::list_group_specs,
        groups::create_group_specs,
        groups::show_group_spec,
        groups::update_group_spec,
        groups::delete_group_spec,
        groups::list_groups,
        groups::list_groups_detail,
        groups::create_group,
        groups::groups_action,
        groups::show_group,
        groups::update_group,
        groups::group_action,
        group_snapshots::list_group_snapshots,
        group_snapshots::list_group_snapshots_detail,
        group_snapshots::create_group_snapshot,
        group_snapshots::show_group_snapshot,
        group_snapshots::delete_group_snapshot,
        group_snapshots::group_snapshot_action,
        groups::list_messages,
        groups::show_message,
        groups::delete_message
    )
)]
pub struct VolumeDoc;

/// Routes of Block Storage v3: version discovery, limits, volumes, attachments.
pub fn routes(state: AppState) -> Router {
    let mut v3 = Router::new();
    // Project-less URLs (Cinder 3.67+) share the handlers.
    for prefix in ["/volume/v3/{project_id}", "/volume/v3"] {
        v3 = v3
            .route(&format!("{prefix}/limits"), get(limits))
            .route(&format!("{prefix}/volumes"), get(list_volumes).post(create_volume))
            .route(&format!("{prefix}/volumes/detail"), get(list_volumes_detail))
            .route(&format!("{prefix}/volumes/summary"), get(volume_summary))
            .route(&format!("{prefix}/resource_filters"), get(resource_filters))
            .route(
                &format!("{prefix}/volumes/{{volume_id}}"),
                get(show_volume).put(update_volume).delete(delete_volume),
            )
            .route(&format!("{prefix}/volumes/{{volume_id}}/action"), post(volume_action))
            .route(
                &format!("{prefix}/volumes/{{volume_id}}/metadata"),
                get(show_metadata).post(merge_metadata).put(replace_metadata),
            )
            .route(
                &format!("{prefix}/volumes/{{volume_id}}/metadata/{{key}}"),
                get(show_metadata_key).put(set_metadata_key).delete(delete_metadata_key),
            )
            .route(&format!("{prefix}/attachments"), get(list_attachments).post(create_attachment))
            .route(&format!("{prefix}/attachments/detail"), get(list_attachments_detail))
            .route(
                &format!("{prefix}/attachments/{{attachment_id}}"),
                get(show_attachment).put(update_attachment).delete(delete_attachment),
            )
            .route(&format!("{prefix}/attachments/{{attachment_id}}/action"), post(attachment_action))
            .route(&format!("{prefix}/types"), get(types::list_types).post(types::create_type))
            .route(
                &format!("{prefix}/types/{{type_id}}"),
                get(types::show_type).put(types::update_type).delete(types::delete_type),
            )
            .route(
                &format!("{prefix}/types/{{type_id}}/extra_specs"),
                get(types::list_extra_specs).post(types::create_extra_specs),
            )
            .route(
                &format!("{prefix}/types/{{type_id}}/extra_specs/{{key}}"),
                get(types::show_extra_spec).put(types::update_extra_spec).delete(types::delete_extra_spec),
            )
            .route(&format!("{prefix}/types/{{type_id}}/os-volume-type-access"), get(types::list_type_access))
            .route(&format!("{prefix}/types/{{type_id}}/action"), post(types::type_action))
            .route(&format!("{prefix}/group_types"), get(groups::list_group_types).post(groups::create_group_type))
            .route(
                &format!("{prefix}/group_types/{{group_type_id}}"),
                get(groups::show_group_type).put(groups::update_group_type).delete(groups::delete_group_type),
            )
            .route(
                &format!("{prefix}/group_types/{{group_type_id}}/group_specs"),
                get(groups::list_group_specs).post(groups::create_group_specs),
            )
            .route(
                &format!("{prefix}/group_types/{{group_type_id}}/group_specs/{{key}}"),
                get(groups::show_group_spec).put(groups::update_group_spec).delete(groups::delete_group_spec),
            )
            .route(&format!("{prefix}/groups"), get(groups::list_groups).post(groups::create_group))
            .route(&format!("{prefix}/groups/detail"), get(groups::list_groups_detail))
            .route(&format!("{prefix}/groups/action"), post(groups::groups_action))
            .route(&format!("{prefix}/groups/{{group_id}}"), get(groups::show_group).put(groups::update_group))
            .route(&format!("{prefix}/groups/{{group_id}}/action"), post(groups::group_action))
            .route(
                &format!("{prefix}/group_snapshots"),
                get(group_snapshots::list_group_snapshots).post(group_snapshots::create_group_snapshot),
            )
            .route(&format!("{prefix}/group_snapshots/detail"), get(group_snapshots::list_group_snapshots_detail))
            .route(
                &format!("{prefix}/group_snapshots/{{group_snapshot_id}}"),
                get(group_snapshots::show_group_snapshot).delete(group_snapshots::delete_group_snapshot),
            )
            .route(
                &format!("{prefix}/group_snapshots/{{group_snapshot_id}}/action"),
                post(group_snapshots::group_snapshot_action),
            )
            .route(&format!("{prefix}/messages"), get(groups::list_messages))
            .route(
                &format!("{prefix}/messages/{{message_id}}"),
                get(groups::show_message).delete(groups::delete_message),
            )
            .route(&format!("{prefix}/os-availability-zone"), get(admin::availability_zones))
            .route(&format!("{prefix}/extensions"), get(admin::extensions))
            .route(&format!("{prefix}/os-services"), get(admin::list_services))
            .route(&format!("{prefix}/os-services/{{action}}"), put(admin::service_action))
            .route(&format!("{prefix}/os-hosts"), get(admin::list_hosts))
            .route(&format!("{prefix}/os-hosts/{{host}}"), get(admin::show_host))
            .route(&format!("{prefix}/scheduler-stats/get_pools"), get(admin::pools))
            .route(&format!("{prefix}/capabilities/{{host}}"), get(admin::capabilities))
            .route(
                &format!("{prefix}/os-quota-sets/{{tenant_id}}"),
                get(quotas::show).put(quotas::update).delete(quotas::delete),
            )
            .route(&format!("{prefix}/os-quota-sets/{{tenant_id}}/defaults"), get(quotas::defaults))
            .route(&format!("{prefix}/os-quota-class-sets/{{id}}"), get(quotas::class_show).put(quotas::class_update))
            .route(&format!("{prefix}/default-types"), get(default_types::list_default_types))
            .route(
                &format!("{prefix}/default-types/{{tenant_id}}"),
                get(default_types::show_default_type)
                    .put(default_types::set_default_type)
                    .delete(default_types::delete_default_type),
            )
            .route(&format!("{prefix}/snapshots"), get(snapshots::list_snapshots).post(snapshots::create_snapshot))
            .route(&format!("{prefix}/snapshots/detail"), get(snapshots::list_snapshots_detail))
            .route(
                &format!("{prefix}/snapshots/{{snapshot_id}}"),
                get(snapshots::show_snapshot).put(snapshots::update_snapshot).delete(snapshots::delete_snapshot),
            )
            .route(&format!("{prefix}/snapshots/{{snapshot_id}}/action"), post(snapshots::snapshot_action))
            .route(
                &format!("{prefix}/snapshots/{{snapshot_id}}/metadata"),
                get(snapshots::show_snapshot_metadata)
                    .post(snapshots::merge_snapshot_metadata)
                    .put(snapshots::replace_snapshot_metadata),
            )
            .route(
                &format!("{prefix}/snapshots/{{snapshot_id}}/metadata/{{key}}"),
                get(snapshots::show_snapshot_metadata_key)
                    .put(snapshots::set_snapshot_metadata_key)
                    .delete(snapshots::delete_snapshot_metadata_key),
            )
            .route(&format!("{prefix}/os-volume-transfer"), get(transfers::legacy_list).post(transfers::legacy_create))
            .route(&format!("{prefix}/os-volume-transfer/detail"), get(transfers::legacy_list_detail))
            .route(
                &format!("{prefix}/os-volume-transfer/{{transfer_id}}"),
                get(transfers::legacy_show).delete(transfers::legacy_delete),
            )
            .route(&format!("{prefix}/os-volume-transfer/{{transfer_id}}/accept"), post(transfers::legacy_accept))
            .route(&format!("{prefix}/volume-transfers"), get(transfers::new_list).post(transfers::new_create))
            .route(&format!("{prefix}/volume-transfers/detail"), get(transfers::new_list_detail))
            .route(
                &format!("{prefix}/volume-transfers/{{transfer_id}}"),
                get(transfers::new_show).delete(transfers::new_delete),
            )
            .route(&format!("{prefix}/volume-transfers/{{transfer_id}}/accept"), post(transfers::new_accept))
            .route(&format!("{prefix}/qos-specs"), get(qos::list_qos).post(qos::create_qos))
            .route(
                &format!("{prefix}/qos-specs/{{qos_id}}"),
                get(qos::show_qos).put(qos::set_qos_keys).delete(qos::delete_qos),
            )
            .route(&format!("{prefix}/qos-specs/{{qos_id}}/delete_keys"), put(qos::unset_qos_keys))
            .route(&format!("{prefix}/qos-specs/{{qos_id}}/associations"), get(qos::qos_associations))
            .route(&format!("{prefix}/qos-specs/{{qos_id}}/associate"), get(qos::qos_associate))
            .route(&format!("{prefix}/qos-specs/{{qos_id}}/disassociate"), get(qos::qos_disassociate))
            .route(&format!("{prefix}/qos-specs/{{qos_id}}/disassociate_all"), get(qos::qos_disassociate_all))
            .route(
                &format!("{prefix}/types/{{type_id}}/encryption"),
                get(qos::show_encryption).post(qos::create_encryption),
            )
            .route(
                &format!("{prefix}/types/{{type_id}}/encryption/{{encryption_id}}"),
                get(qos::show_encryption_item).put(qos::update_encryption).delete(qos::delete_encryption),
            );
    }
    let v3 = v3
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .route_layer(axum::middleware::from_fn(volume_microversion));
    Router::new()
        .route("/volume", get(versions_multiple))
        .route("/volume/", get(versions_multiple))
        .route("/volume/v3", get(versions_ok))
        .route("/volume/v3/", get(versions_ok))
        .route("/volume/openapi.json", get(crate::openapi::volume_openapi))
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .merge(v3)
        .with_state(state)
}

#[utoipa::path(get, path = "/volume", tag = "versions", responses((status = 300, description = "The version list (Multiple Choices, as Cinder)", body = s::VersionList)))]
async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(wire::versions_doc(&state.public_url))).into_response()
}

#[utoipa::path(get, path = "/volume/v3", tag = "versions", responses((status = 200, description = "The version list", body = s::VersionList)))]
async fn versions_ok(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(wire::versions_doc(&state.public_url))).into_response()
}

/// Negotiate the `volume` microversion and echo it (`OpenStack-API-Version`),
/// refusing malformed (400) and unsupported (406) requests like Cinder.
async fn volume_microversion(mut req: Request, next: Next) -> Response {
    let requested = req.headers().get("openstack-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let minor = match wire::requested_minor(requested.as_deref()) {
        Ok(m) => m,
        Err(e) => return ApiError::from(e).into_response(),
    };
    req.extensions_mut().insert(VolumeMv(minor));
    let mut resp = next.run(req).await;
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume 3.{minor}")) {
        hs.insert(HeaderName::from_static("openstack-api-version"), v);
    }
    hs.insert(header::VARY, HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// The project in the URL must be the caller's own, unless admin.
fn check_project(ctx: &AuthContext, project_id: &str) -> Result<(), ApiError> {
    if ctx.can_see(project_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Policy doesn't allow access to project {project_id} with a token scoped to project {}.",
            ctx.project_id
        )))
    }
}

/// Check the URL's project (when present) and return it, else the caller's.
fn scope(ctx: &AuthContext, p: &HashMap<String, String>) -> Result<String, ApiError> {
    match p.get("project_id") {
        Some(pid) => {
            check_project(ctx, pid)?;
            Ok(pid.clone())
        }
        None => Ok(ctx.project_id.clone()),
    }
}

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> Result<&'a str, ApiError> {
    p.get(key).map(String::as_str).ok_or_else(|| ApiError::BadRequest(format!("missing path parameter {key}")))
}

fn require_mv(mv: VolumeMv, min: u32) -> Result<(), ApiError> {
    Ok(wire::require_mv(mv.0, min)?)
}

/// Absolute limits: Cinder's keys, the project's volume quotas and usage
/// counted from the database; from 3.39 admins may ask for another project.
#[utoipa::path(get, path = "/volume/v3/{project_id}/limits", tag = "limits", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), responses((status = 200, description = "Absolute limits with usage", body = s::VolumeLimits)))]
async fn limits(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    let mut project = scope(&ctx, &p)?;
    // Cinder's 3.39: an admin may name the project (`project_id`, or the
    // older `tenant_id`); others and older versions get their own.
    if mv.0 >= 39
        && ctx.is_admin()
        && let Some(other) = q.get("project_id").or_else(|| q.get("tenant_id"))
    {
        project = other.clone();
    }
    let quota = state.volume.quota_show(&ctx, &project).await?;
    let limit = |r: &str| quota.iter().find(|q| q.resource == r).map_or(-1, |q| q.limit);
    let used = |r: &str| quota.iter().find(|q| q.resource == r).map_or(0, |q| q.in_use);
    let mut view = wire::limits_view(limit, used("volumes"), used("gigabytes"));
    view["limits"]["absolute"]["totalSnapshotsUsed"] = json!(used("snapshots"));
    Ok(axum::Json(view))
}

/// The full volume view, with the host attribute for admins.
fn volume_detail(
    state: &AppState,
    ctx: &AuthContext,
    v: &VolumeRow,
    atts: &[AttachmentRow],
    form: wire::VolumeForm,
) -> Value {
    let host_attr = state.volume.host_attr();
    let viewer = if ctx.is_admin() { Viewer::Admin { host_attr: &host_attr } } else { Viewer::Member };
    wire::volume_detail(&state.public_url, viewer, v, atts, form)
}

async fn detail_of(
    state: &AppState,
    ctx: &AuthContext,
    v: &VolumeRow,
    form: wire::VolumeForm,
) -> Result<Value, ApiError> {
    let atts = state.volume.attachments_of(&v.id).await?;
    let mut out = volume_detail(state, ctx, v, &atts, form);
    if form.extended
        && let Some(m) = state.volume.image_metadata_of(v).await?
    {
        out["volume_image_metadata"] = json!(m);
    }
    Ok(out)
}

/// `GET /volumes[/detail]`: filters `all_tenants` (admins), `project_id`,
/// `name`, `status`, `bootable` (strict words from 3.2), `group_id` (3.10+),
/// `created_at`/`updated_at` comparisons (3.60+); pagination with `limit`
/// and `marker`; `with_count` (3.45+).
async fn list(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
    detail: bool,
    mv: VolumeMv,
) -> Result<Value, ApiError> {
    let project = scope(ctx, p)?;
    let f = ListFilter {
        all_projects: q.get("all_tenants").or_else(|| q.get("all_projects")).is_some_and(|v| wire::truthy(v)),
        project_id: q.get("project_id").cloned(),
        name: q.get("name").cloned(),
        status: q.get("status").cloned(),
        // Cinder reads the `group_id` filter from 3.10 on.
        group_id: if mv.0 >= 10 { q.get("group_id").cloned() } else { None },
    };
    let sort = wire::volume_sort(
        q.get("sort").map(String::as_str),
        q.get("sort_key").map(String::as_str),
        q.get("sort_dir").map(String::as_str),
    )?;
    // Cinder's general filtering: non-admins may use only the configured
    // filters, refused from 3.31 (`reject_invalid_filters`), silently
    // dropped before (`remove_invalid_filter_options`).
    const NOT_FILTERS: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count"];
    let keys = q.keys().map(String::as_str).filter(|k| !NOT_FILTERS.contains(k));
    let admin = ctx.is_admin();
    if !admin && mv.0 >= 31 {
        wire::reject_invalid_filters("volume", keys)?;
    }
    let allowed = wire::resource_filters("volume");
    let get = |k: &str| q.get(k).filter(|_| admin || allowed.contains(&k));
    let bootable = get("bootable").map(|b| wire::bootable_filter(b, mv.0)).transpose()?;
    // The time comparisons are 3.60's; Cinder's general filtering (3.31+)
    // already lets them through, so it honours them from 3.31.
    let time = |k: &str| -> Result<Option<Vec<_>>, ApiError> {
        Ok(if mv.0 >= 31 { get(k).map(|v| wire::time_filter(k, v)).transpose()? } else { None })
    };
    let metadata = get("metadata").map(|m| wire::dict_filter("metadata", m)).transpose()?;
    // 3.4; not among Cinder's default non-admin filters.
    let glance = if mv.0 >= 4 { get("glance_metadata") } else { None }
        .map(|m| wire::dict_filter("glance_metadata", m))
        .transpose()?;
    let zone = get("availability_zone");
    let size = get("size");
    let migration = get("migration_status");
    // Every Stratus volume consumes quota (3.65's `use_quota`).
    let consumes = get("consumes_quota").map(|v| wire::bool_param("consumes_quota", v)).transpose()?;
    // 3.34 inexact filters (SQL `LIKE %v%`, case-insensitive as on
    // Cinder's MySQL); admins only with the default configuration.
    let like = |k: &str| if mv.0 >= 34 { get(k).map(|v| v.to_lowercase()) } else { None };
    let (name_like, desc_like) = (like("name~"), like("description~"));
    let (created, updated) = (time("created_at")?, time("updated_at")?);
    // 3.45 `with_count`: the number of matches, before paging.
    let with_count = mv.0 >= 45
        && match q.get("with_count") {
            Some(v) => wire::bool_param("with_count", v)?,
            None => false,
        };
    let mut rows = state.volume.list(ctx, &f).await?;
    rows.retain(|v| {
        let meta: BTreeMap<String, String> = serde_json::from_str(&v.metadata).unwrap_or_default();
        bootable.is_none_or(|b| v.bootable == b)
            && created.as_ref().is_none_or(|c| wire::time_matches(v.created_at, c))
            && updated.as_ref().is_none_or(|u| wire::time_matches(v.updated_at, u))
            && metadata.as_ref().is_none_or(|m| m.iter().all(|(k, x)| meta.get(k) == Some(x)))
            && zone.is_none_or(|z| *z == v.availability_zone)
            && size.is_none_or(|s| s.trim().parse::<i64>().ok() == Some(v.size_gb))
            && migration.is_none()
            && consumes.is_none_or(|c| c)
            && name_like
                .as_ref()
                .is_none_or(|n| v.name.as_deref().is_some_and(|x| x.to_lowercase().contains(n.as_str())))
            && desc_like
                .as_ref()
                .is_none_or(|d| v.description.as_deref().is_some_and(|x| x.to_lowercase().contains(d.as_str())))
    });
    if let Some(want) = &glance {
        let mut kept = Vec::with_capacity(rows.len());
        for v in rows {
            let have = state.volume.image_metadata_of(&v).await?.unwrap_or_default();
            if want.iter().all(|(k, x)| have.get(k) == Some(x)) {
                kept.push(v);
            }
        }
        rows = kept;
    }
    let count = rows.len();
    rows.sort_by(|a, b| wire::volume_order(a, b, &sort));
    if let Some(marker) = q.get("marker").filter(|m| !m.is_empty()) {
        let Some(i) = rows.iter().position(|v| v.id.to_string() == *marker) else {
            return Err(ApiError::BadRequest(format!("Marker {marker} could not be found.")));
        };
        rows.drain(..=i);
    }
    // Cinder's `osapi_max_limit`: no page is larger, asked for or not.
    const MAX_PAGE: usize = 1000;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("Invalid input received: limit {l} must be an integer.")))?
            .min(MAX_PAGE),
        None => MAX_PAGE,
    };
    // As Cinder: a full page links to the next one (which may be empty).
    rows.truncate(limit);
    let next = (rows.len() == limit).then(|| rows.last().map(|v| v.id)).flatten();
    let mut out = Vec::with_capacity(rows.len());
    for v in &rows {
        let form = wire::VolumeForm { minor: mv.0, extended: true };
        out.push(if detail {
            detail_of(state, ctx, v, form).await?
        } else {
            wire::volume_summary(&state.public_url, v)
        });
    }
    let mut body = json!({ "volumes": out });
    if with_count {
        body["count"] = json!(count);
    }
    if let Some(marker) = next {
        let query: Vec<(String, String)> = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        body["volumes_links"] =
            wire::volumes_next_link(&state.public_url, &project, detail, &query, limit, &marker.to_string());
    }
    Ok(body)
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("name" = Option<String>, Query, description = "Exact name"), ("status" = Option<String>, Query, description = "Status"), ("limit" = Option<u32>, Query, description = "Page size (at most 1000)"), ("marker" = Option<String>, Query, description = "Last id of the previous page")), responses((status = 200, description = "Volumes (id, name, links)", body = s::VolumeList), (status = 400, description = "Bad limit or unknown marker")))]
async fn list_volumes(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, false, mv).await?))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes/detail", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("name" = Option<String>, Query, description = "Exact name"), ("status" = Option<String>, Query, description = "Status"), ("limit" = Option<u32>, Query, description = "Page size (at most 1000)"), ("marker" = Option<String>, Query, description = "Last id of the previous page")), responses((status = 200, description = "Volumes in full", body = s::VolumeDetailList), (status = 400, description = "Bad limit or unknown marker")))]
async fn list_volumes_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(list(&state, &ctx, &p, &q, true, mv).await?))
}

/// `POST /volumes` → 202 with the volume: `available` or `error` when the
/// storage answers within `create_answer_within`, else `creating` (the
/// build goes on in the background, as Cinder's always does).
#[utoipa::path(post, path = "/volume/v3/{project_id}/volumes", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::VolumeCreate, responses((status = 202, description = "Created (available, error if the storage failed, or creating while the storage is slow)", body = s::VolumeBody), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown snapshot, backup or image"), (status = 413, description = "Over the volume quota")))]
async fn create_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    // The policy before the body: a reader gets 403, not a 400 about it.
    stratus_volume::check_write(&ctx, "create")?;
    let mut c = CreateVolume::parse(&parse_json(&body)?)?;
    // Cinder reads `group_id` from 3.13 on.
    if mv.0 < stratus_api::volume::groups::MV_GROUPS {
        c.group_id = None;
    }
    // 3.46: an image of a volume-backed server (Nova's, no data) stands
    // for its boot volume's snapshot, which the volume is built from.
    if mv.0 >= MV_NOVA_IMAGE
        && let Some(image_ref) = c.image_ref.clone().filter(|r| !r.is_empty())
        && let Some(sid) = state.volume.image_boot_snapshot(&ctx, &image_ref).await?
    {
        c.snapshot_id = Some(sid);
        c.image_ref = None;
    }
    let row = state.volume.create_answering_promptly(&ctx, c).await?;
    let form = wire::VolumeForm { minor: mv.0, extended: false };
    let body = json!({ "volume": detail_of(&state, &ctx, &row, form).await? });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes/{volume_id}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), responses((status = 200, description = "The volume", body = s::VolumeBody), (status = 404, description = "Unknown or another project's")))]
async fn show_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let v = state.volume.get_visible(&ctx, param(&p, "volume_id")?).await?;
    let form = wire::VolumeForm { minor: mv.0, extended: true };
    Ok(axum::Json(json!({ "volume": detail_of(&state, &ctx, &v, form).await? })))
}

/// `PUT /volumes/{id}`: name, description, metadata (legacy `display_*` too).
#[utoipa::path(put, path = "/volume/v3/{project_id}/volumes/{volume_id}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), request_body = s::VolumeUpdate, responses((status = 200, description = "The updated volume", body = s::VolumeBody), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
async fn update_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "volume_id")?;
    state.volume.get_writable(&ctx, id, "update").await?;
    let u = UpdateVolume::parse(&parse_json(&body)?)?;
    let row = state.volume.update(&ctx, id, u).await?;
    let form = wire::VolumeForm { minor: mv.0, extended: false };
    Ok(axum::Json(json!({ "volume": detail_of(&state, &ctx, &row, form).await? })))
}

/// `DELETE /volumes/{id}` → 202; the storage may be deleted later (queued
/// while busy), the volume shows `deleting` until then.
#[utoipa::path(delete, path = "/volume/v3/{project_id}/volumes/{volume_id}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id"), ("cascade" = Option<bool>, Query, description = "Also delete the volume's snapshots"), ("force" = Option<bool>, Query, description = "3.23+, admins: also from a status a delete otherwise refuses (never with attachments or an operation in flight)")), responses((status = 202, description = "Deleting"), (status = 400, description = "Attached or in a state that cannot be deleted, or a bad force"), (status = 403, description = "force by a non-admin"), (status = 404, description = "Unknown or another project's"), (status = 409, description = "Busy")))]
async fn delete_volume(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    Query(q): Q,
    mv: VolumeMv,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    let cascade = q.get("cascade").is_some_and(|v| wire::truthy(v));
    // 3.23 `force` (admins; read with Cinder's `get_bool_param`, ignored before).
    let force = match q.get("force") {
        Some(f) if mv.0 >= MV_DELETE_FORCE => wire::bool_param("force", f)?,
        _ => false,
    };
    let id = param(&p, "volume_id")?;
    if force {
        state.volume.delete_forced(&ctx, id, cascade).await?;
    } else {
        state.volume.delete_cascading(&ctx, id, cascade).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// `POST /volumes/{id}/action`: `os-extend` (202), `os-reset_status`
/// (admins, 202), `os-set_bootable` (200), `os-retype` (202), the status
/// steps of the older attach flow (202), `revert` (3.40, 202); its
/// `os-attach`/`os-detach` are refused (400) once the volume is found.
#[utoipa::path(post, path = "/volume/v3/{project_id}/volumes/{volume_id}/action", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), request_body = s::VolumeAction, responses((status = 202, description = "os-extend, os-reset_status, os-retype, os-reserve, os-unreserve, os-begin_detaching, os-roll_detaching revert (3.40) or os-reimage (3.68) accepted"), (status = 400, description = "os-extend_volume_completion (3.71): no extend awaits completion here (Stratus completes every extend itself)"), (status = 200, description = "os-set_bootable, os-set_image_metadata, os-unset_image_metadata or os-show_image_metadata done"), (status = 400, description = "Unknown action or invalid argument"), (status = 403, description = "os-reset_status by a non-admin; os-extend_volume_completion by neither an admin nor the service role"), (status = 404, description = "Unknown or another project's"), (status = 409, description = "Invalid state"), (status = 413, description = "Over the gigabytes quota")))]
async fn volume_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    let id = param(&p, "volume_id")?;
    let svc = &state.volume;
    match VolumeAction::parse(&parse_json(&body)?)? {
        VolumeAction::Reimage { image_id, reimage_reserved } => {
            require_mv(mv, stratus_api::volume::MV_REIMAGE)?;
            svc.reimage_volume(&ctx, id, &image_id, reimage_reserved).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::ExtendCompletion { error } => {
            require_mv(mv, stratus_api::volume::MV_EXTEND_COMPLETION)?;
            svc.extend_completion(&ctx, id, error).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::Revert { snapshot_id } => {
            // Cinder: an action of a later microversion is a bare 404.
            require_mv(mv, stratus_api::volume::MV_VOLUME_REVERT)?;
            svc.revert_to_snapshot(&ctx, id, snapshot_id.as_deref()).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::Extend { new_size } => {
            // 3.42: an `in-use` volume may grow too (the VM is told).
            svc.extend(&ctx, id, new_size, mv.0 >= 42).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::ResetStatus { status, attach_status } => {
            svc.reset_status(&ctx, id, status.as_deref(), attach_status.as_deref()).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::SetBootable(b) => {
            svc.set_bootable(&ctx, id, b).await?;
            Ok(StatusCode::OK.into_response())
        }
        VolumeAction::Retype { new_type } => {
            svc.retype(&ctx, id, &new_type).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::Step(step) => {
            svc.status_step(&ctx, id, step).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        VolumeAction::SetImageMetadata(m) => {
            let all = svc.set_image_metadata(&ctx, id, m).await?;
            Ok(axum::Json(json!({ "metadata": all })).into_response())
        }
        VolumeAction::UnsetImageMetadata(key) => {
            svc.unset_image_metadata(&ctx, id, &key).await?;
            Ok(StatusCode::OK.into_response())
        }
        VolumeAction::ShowImageMetadata => {
            let all = svc.image_metadata(&ctx, id).await?;
            Ok(axum::Json(json!({ "metadata": all })).into_response())
        }
        VolumeAction::OldAttach(action) => {
            // Looked up first: an unknown volume is 404, as Cinder answers.
            svc.get_visible(&ctx, id).await?;
            Err(ApiError::BadRequest(format!(
                "Invalid input received: {action} is not offered: attach and detach through the compute API, or with the attachments API (3.27+), so that a host opens and closes the volume."
            )))
        }
    }
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), responses((status = 200, description = "The metadata", body = s::VolumeMetadata), (status = 404, description = "Unknown or another project's")))]
async fn show_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    let v = state.volume.get_visible(&ctx, param(&p, "volume_id")?).await?;
    let body = json!({ "metadata": stratus_volume::VolumeService::metadata_of(&v) });
    let mut resp = axum::Json(&body).into_response();
    // Cinder's 3.15: the MD5 of the metadata document as its ETag.
    if mv.0 >= MV_ETAGS
        && let Ok(tag) = HeaderValue::from_str(&metadata_etag(&body))
    {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

/// Block Storage 3.46: a volume from a Nova snapshot image (`SUPPORT_NOVA_IMAGE`).
const MV_NOVA_IMAGE: u32 = 46;

/// Block Storage 3.23: `force` on volume delete (`VOLUME_DELETE_FORCE`).
const MV_DELETE_FORCE: u32 = 23;

/// Block Storage 3.15: ETags on volume metadata.
const MV_ETAGS: u32 = 15;

/// The ETag of a `{"metadata": ...}` document (Cinder: its MD5, hex).
fn metadata_etag(doc: &Value) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(doc.to_string().as_bytes()))
}

/// Cinder's `_validate_etag` (3.15+): a write with `If-Match` proceeds
/// only if one of its tags (or `*`) is the metadata's current ETag;
/// otherwise the answer is an empty 412.
async fn etag_matches(
    state: &AppState,
    ctx: &AuthContext,
    id: &str,
    headers: &axum::http::HeaderMap,
    mv: VolumeMv,
) -> Result<bool, ApiError> {
    let Some(if_match) = headers.get(header::IF_MATCH).filter(|_| mv.0 >= MV_ETAGS) else {
        return Ok(true);
    };
    let v = state.volume.get_visible(ctx, id).await?;
    let current = metadata_etag(&json!({ "metadata": stratus_volume::VolumeService::metadata_of(&v) }));
    let wanted = if_match.to_str().unwrap_or("");
    Ok(wanted.split(',').map(|t| t.trim().trim_start_matches("W/").trim_matches('"')).any(|t| t == "*" || t == current))
}

async fn write_metadata(
    state: &AppState,
    ctx: &AuthContext,
    p: &HashMap<String, String>,
    body: &[u8],
    replace: bool,
) -> Result<axum::Json<Value>, ApiError> {
    scope(ctx, p)?;
    state.volume.get_writable(ctx, param(p, "volume_id")?, "update_volume_metadata").await?;
    let m = wire::parse_metadata(&parse_json(body)?)?;
    let out = state.volume.set_metadata(ctx, param(p, "volume_id")?, m, replace).await?;
    Ok(axum::Json(json!({ "metadata": out })))
}

/// `POST /volumes/{id}/metadata`: merge (`openstack volume set --property`).
#[utoipa::path(post, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), request_body = s::VolumeMetadata, responses((status = 200, description = "The merged metadata", body = s::VolumeMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
async fn merge_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    write_metadata(&state, &ctx, &p, &body, false).await
}

/// `PUT /volumes/{id}/metadata`: replace all.
#[utoipa::path(put, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id")), request_body = s::VolumeMetadata, responses((status = 200, description = "The new metadata", body = s::VolumeMetadata), (status = 400, description = "Invalid body"), (status = 404, description = "Unknown or another project's")))]
async fn replace_metadata(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    if !etag_matches(&state, &ctx, param(&p, "volume_id")?, &headers, mv).await? {
        return Ok(StatusCode::PRECONDITION_FAILED.into_response());
    }
    Ok(write_metadata(&state, &ctx, &p, &body, true).await?.into_response())
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "The item", body = s::VolumeMetaItem), (status = 404, description = "Unknown volume or key")))]
async fn show_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "volume_id")?, param(&p, "key")?);
    let value = state.volume.metadata_value(&ctx, id, key).await?;
    Ok(axum::Json(json!({ "meta": { key: value } })))
}

/// `PUT /volumes/{id}/metadata/{key}` with `{"meta": {key: value}}`.
#[utoipa::path(put, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id"), ("key" = String, Path, description = "Metadata key")), request_body = s::VolumeMetaItem, responses((status = 200, description = "The item", body = s::VolumeMetaItem), (status = 400, description = "Body and URL disagree"), (status = 404, description = "Unknown or another project's")))]
async fn set_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
    mv: VolumeMv,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    scope(&ctx, &p)?;
    let (id, key) = (param(&p, "volume_id")?, param(&p, "key")?);
    if !etag_matches(&state, &ctx, id, &headers, mv).await? {
        return Ok(StatusCode::PRECONDITION_FAILED.into_response());
    }
    state.volume.get_writable(&ctx, id, "update_volume_metadata").await?;
    let value = wire::parse_meta_key(&parse_json(&body)?, key)?;
    state.volume.set_metadata(&ctx, id, BTreeMap::from([(key.to_string(), value.clone())]), false).await?;
    Ok(axum::Json(json!({ "meta": { key: value } })).into_response())
}

/// `DELETE /volumes/{id}/metadata/{key}` (`openstack volume unset --property`).
#[utoipa::path(delete, path = "/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("volume_id" = String, Path, description = "Volume id"), ("key" = String, Path, description = "Metadata key")), responses((status = 200, description = "Removed"), (status = 404, description = "Unknown volume or key")))]
async fn delete_metadata_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    scope(&ctx, &p)?;
    state.volume.delete_metadata_key(&ctx, param(&p, "volume_id")?, param(&p, "key")?).await?;
    Ok(StatusCode::OK)
}

/// Cinder's attachment detail view, with the connection info once the
/// host's connector is known.
fn attachment_detail(state: &AppState, a: &AttachmentRow, v: &VolumeRow) -> Value {
    wire::attachment_detail(a, state.volume.connection_info(a, v))
}

/// `POST /attachments` (3.27+): reserve a volume for a server, as Nova does
/// before attaching; with a connector the attachment is `attaching` at once.
#[utoipa::path(post, path = "/volume/v3/{project_id}/attachments", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)")), request_body = s::AttachmentCreate, responses((status = 200, description = "Reserved (attaching with a connector)", body = s::AttachmentBody), (status = 400, description = "Invalid body, or the volume is not available"), (status = 404, description = "Unknown volume or server, or below microversion 3.27"), (status = 409, description = "Invalid state")))]
async fn create_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    stratus_volume::check_write(&ctx, "attachment_create")?;
    let c = CreateAttachment::parse(&parse_json(&body)?)?;
    let a = state.volume.attachment_create(&ctx, &c.volume_id, &c.instance_uuid, c.connector.as_ref()).await?;
    let (a, vol) = state.volume.attachment_get_visible(&ctx, &a.id.to_string()).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &vol) })))
}

/// `PUT /attachments/{id}` (3.27+): the host's connector; answers with the
/// connection info.
#[utoipa::path(put, path = "/volume/v3/{project_id}/attachments/{attachment_id}", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("attachment_id" = String, Path, description = "Attachment id")), request_body = s::AttachmentUpdate, responses((status = 200, description = "With the connection info", body = s::AttachmentBody), (status = 400, description = "No connector"), (status = 404, description = "Unknown, another project's, or below microversion 3.27"), (status = 409, description = "Invalid state")))]
async fn update_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let id = param(&p, "attachment_id")?;
    state.volume.attachment_get_writable(&ctx, id, "attachment_update").await?;
    let connector = wire::parse_attachment_connector(&parse_json(&body)?)?;
    state.volume.attachment_update(&ctx, id, &connector).await?;
    let (a, vol) = state.volume.attachment_get_visible(&ctx, id).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &vol) })))
}

/// `POST /attachments/{id}/action` with `{"os-complete": null}` (3.44+) → 204.
#[utoipa::path(post, path = "/volume/v3/{project_id}/attachments/{attachment_id}/action", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("attachment_id" = String, Path, description = "Attachment id")), request_body = s::AttachmentAction, responses((status = 204, description = "os-complete: attached"), (status = 400, description = "Unknown action"), (status = 404, description = "Unknown, another project's, or below microversion 3.27 (3.44 for os-complete)"), (status = 409, description = "Invalid state")))]
async fn attachment_action(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let id = param(&p, "attachment_id")?;
    match AttachmentAction::parse(&parse_json(&body)?)? {
        AttachmentAction::Complete => {
            require_mv(mv, MV_ATTACH_COMPLETE)?;
            state.volume.attachment_complete(&ctx, id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// `DELETE /attachments/{id}` (3.27+) → 200 with the attachments still
/// sharing the connection (none: no multiattach).
#[utoipa::path(delete, path = "/volume/v3/{project_id}/attachments/{attachment_id}", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("attachment_id" = String, Path, description = "Attachment id")), responses((status = 200, description = "Detached; the attachments still sharing the connection (none)", body = s::AttachmentList), (status = 404, description = "Unknown, another project's, or below microversion 3.27"), (status = 409, description = "Invalid state")))]
async fn delete_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    state.volume.attachment_delete(&ctx, param(&p, "attachment_id")?).await?;
    Ok(axum::Json(json!({ "attachments": [] })))
}

async fn attachments(
    state: &AppState,
    ctx: &AuthContext,
    mv: VolumeMv,
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
    detail: bool,
) -> Result<Value, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(ctx, p)?;
    let all = q.get("all_tenants").is_some_and(|v| wire::truthy(v));
    let rows = state.volume.attachment_list(ctx, all).await?;
    let filter = |a: &AttachmentRow| {
        q.get("volume_id").is_none_or(|v| *v == a.volume_id.to_string())
            && q.get("instance_id").is_none_or(|s| *s == a.server_id.to_string())
    };
    let out: Vec<Value> = rows
        .iter()
        .filter(|(a, _)| filter(a))
        .map(|(a, v)| if detail { attachment_detail(state, a, v) } else { wire::attachment_summary(a) })
        .collect();
    Ok(json!({ "attachments": out }))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/attachments", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("volume_id" = Option<String>, Query, description = "Of this volume"), ("instance_id" = Option<String>, Query, description = "For this server")), responses((status = 200, description = "Attachments (short)", body = s::AttachmentList), (status = 404, description = "Below microversion 3.27")))]
async fn list_attachments(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(attachments(&state, &ctx, mv, &p, &q, false).await?))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/attachments/detail", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)"), ("volume_id" = Option<String>, Query, description = "Of this volume"), ("instance_id" = Option<String>, Query, description = "For this server")), responses((status = 200, description = "Attachments in full", body = s::AttachmentList), (status = 404, description = "Below microversion 3.27")))]
async fn list_attachments_detail(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(attachments(&state, &ctx, mv, &p, &q, true).await?))
}

#[utoipa::path(get, path = "/volume/v3/{project_id}/attachments/{attachment_id}", tag = "attachments", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("attachment_id" = String, Path, description = "Attachment id")), responses((status = 200, description = "The attachment", body = s::AttachmentBody), (status = 404, description = "Unknown, another project's, or below microversion 3.27")))]
async fn show_attachment(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, MV_ATTACHMENTS)?;
    scope(&ctx, &p)?;
    let (a, v) = state.volume.attachment_get_visible(&ctx, param(&p, "attachment_id")?).await?;
    Ok(axum::Json(json!({ "attachment": attachment_detail(&state, &a, &v) })))
}

/// `GET /volumes/summary` (3.12+): how many volumes the caller's project
/// has (`all_tenants`: admins, every project's) and their total size; from
/// 3.36 each metadata key with the values its volumes give it.
#[utoipa::path(get, path = "/volume/v3/{project_id}/volumes/summary", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("all_tenants" = Option<String>, Query, description = "Truthy: every project (admins)")), responses((status = 200, description = "Count and total size", body = s::VolumeSummary), (status = 404, description = "Below microversion 3.12")))]
async fn volume_summary(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, wire::MV_VOLUME_SUMMARY)?;
    scope(&ctx, &p)?;
    let f = ListFilter {
        all_projects: q.get("all_tenants").or_else(|| q.get("all_projects")).is_some_and(|v| wire::truthy(v)),
        ..ListFilter::default()
    };
    let rows = state.volume.list(&ctx, &f).await?;
    Ok(axum::Json(json!({ "volume-summary": wire::volume_summary_view(&rows, mv.0) })))
}

/// `GET /resource_filters` (3.33+, anyone): the list filters non-admins
/// may use per resource (Cinder's default configuration, for the resources
/// Stratus serves); `?resource=` picks one (unknown: an empty list).
#[utoipa::path(get, path = "/volume/v3/{project_id}/resource_filters", tag = "volumes", params(("project_id" = String, Path, description = "The caller's project (any for admins)"), ("resource" = Option<String>, Query, description = "Only this resource's filters")), responses((status = 200, description = "Filters per resource", body = s::ResourceFilterList), (status = 404, description = "Below microversion 3.33")))]
async fn resource_filters(
    State(_state): State<AppState>,
    Auth(ctx): Auth,
    mv: VolumeMv,
    Path(p): Params,
    Query(q): Q,
) -> Result<axum::Json<Value>, ApiError> {
    require_mv(mv, wire::MV_RESOURCE_FILTERS)?;
    scope(&ctx, &p)?;
    let out: Vec<Value> = wire::RESOURCE_FILTERS
        .iter()
        .filter(|(r, _)| q.get("resource").is_none_or(|want| want == r))
        .map(|(r, f)| json!({"resource": r, "filters": f}))
        .collect();
    Ok(axum::Json(json!({ "resource_filters": out })))
}

/// A volume service over an in-memory backend, for the tests of every
/// module that builds an [`AppState`].
#[cfg(test)]
pub(crate) fn test_service(
    ds: &stratus_db::Datastore,
    image_dir: std::path::PathBuf,
) -> (std::sync::Arc<stratus_volume::VolumeService>, stratus_volume::testing::MemBackend) {
    let backend = stratus_volume::testing::MemBackend::new();
    let cfg = stratus_volume::VolumeConfig { image_dir, ..stratus_volume::VolumeConfig::default() };
    (
        std::sync::Arc::new(stratus_volume::VolumeService::new(ds.clone(), std::sync::Arc::new(backend.clone()), cfg)),
        backend,
    )
}

/// The state every in-process router test builds: the identity service
/// given, compute on an in-process bus, volumes over an in-memory backend
/// (returned too), images in `image_dir`.
#[cfg(test)]
pub(crate) fn test_state(
    ds: &stratus_db::Datastore,
    identity: stratus_auth::Identity,
    image_dir: std::path::PathBuf,
) -> (crate::AppState, stratus_volume::testing::MemBackend) {
    let bus: std::sync::Arc<dyn stratus_bus::Bus> = std::sync::Arc::new(stratus_bus::InProcessBus::new());
    let compute = stratus_controller::compute_api::ComputeApi::new(
        ds.clone(),
        bus.clone(),
        stratus_controller::ControllerConfig::default(),
    );
    let (volume, backend) = test_service(ds, image_dir.clone());
    let images = std::sync::Arc::new(stratus_image::ImageService::new(ds.clone(), image_dir));
    let state = crate::AppState {
        tokens: stratus_auth::TokenValidator::Builtin(identity.clone()),
        identity,
        compute,
        bus,
        public_url: "http://127.0.0.1:8774".into(),
        volume,
        images,
        metrics: stratus_metrics::Metrics::new(),
    };
    (state, backend)
}

mod admin;
mod default_types;
mod group_snapshots;
mod groups;
mod paging;
mod qos;
mod quotas;
mod snapshots;
mod transfers;
mod types;

#[cfg(test)]
mod tests;
