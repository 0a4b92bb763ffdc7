//! Compute API v2.1 (`/compute`): versions, flavors, servers, server
//! actions, instance actions, volume attachments, services, host aggregates,
//! availability zones, limits, quota sets and quota classes.
//!
//! Handlers only translate: they parse the request with the wire types of
//! `stratus_api::compute`, call one method of the compute service
//! (`stratus_controller::compute_api::ComputeApi`), and render the result with
//! the view builders of `stratus_api::compute::views`. Response bodies follow
//! the api-ref for the negotiated microversion exactly.

mod actions;
mod aggregates;
mod attachments;
mod flavors;
mod hypervisors;
mod images;
mod instance_actions;
mod keypairs;
mod limits;
mod metadata;
mod migrations;
mod networks;
mod quotas;
mod servers;
mod services;
mod tags;
mod usage;
mod volumes;

use crate::AppState;
use crate::middleware::compute_microversion;
use crate::openapi::schemas as s;
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use stratus_api::compute::views;
use stratus_api::compute::{CreateServerRequest, UpdateServiceRequest};

/// The Compute API's OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus Compute API",
        version = "2.1",
        description = "OpenStack Compute API v2.1 as served by Stratus (microversions from 2.1; the v2.1 version document gives the maximum)"
    ),
    paths(
        attachments::volume_attachment_list,
        attachments::volume_attachment_show,
        attachments::volume_attach,
        attachments::volume_detach,
        attachments::volume_attachment_update,
        versions,
        version_v20,
        version_v21,
        flavors::flavor_list,
        flavors::flavor_detail,
        flavors::flavor_show,
        flavors::flavor_create,
        flavors::flavor_delete,
        flavors::flavor_update,
        flavors::flavor_access_list,
        flavors::flavor_action,
        flavors::extra_specs_list,
        flavors::extra_specs_create,
        flavors::extra_spec_show,
        flavors::extra_spec_update,
        flavors::extra_spec_delete,
        servers::server_list,
        servers::server_detail,
        servers::server_show,
        servers::server_create,
        servers::server_update,
        servers::server_delete,
        actions::server_action,
        metadata::metadata_list,
        keypairs::keypair_create,
        keypairs::keypair_list,
        keypairs::keypair_show,
        keypairs::keypair_delete,
        metadata::metadata_replace,
        metadata::metadata_merge,
        metadata::metadata_item_show,
        metadata::metadata_item_set,
        metadata::metadata_item_delete,
        tags::tag_list,
        tags::tag_replace,
        tags::tag_clear,
        tags::tag_check,
        tags::tag_add,
        tags::tag_delete,
        instance_actions::instance_action_list,
        instance_actions::instance_action_show,
        migrations::server_migration_list,
        migrations::migration_list,
        migrations::server_migration_show,
        migrations::server_topology,
        services::service_list,
        services::service_update,
        limits::limits,
        limits::availability_zones,
        volumes::volume_list,
        volumes::volume_detail,
        volumes::volume_create,
        volumes::volume_show,
        volumes::volume_delete,
        volumes::snapshot_list,
        volumes::snapshot_detail,
        volumes::snapshot_create,
        volumes::snapshot_show,
        volumes::snapshot_delete,
        images::image_list,
        images::image_detail,
        images::image_show,
        images::image_delete,
        images::image_metadata,
        images::image_metadata_replace,
        images::image_metadata_merge,
        images::image_metadata_item,
        images::image_metadata_item_set,
        images::image_metadata_item_delete,
        usage::usage_list,
        usage::usage_show,
        usage::audit_log_list,
        usage::audit_log_show,
        usage::diagnostics,
        networks::network_list,
        networks::network_show,
        hypervisors::hypervisor_list,
        hypervisors::hypervisor_detail,
        hypervisors::hypervisor_statistics,
        hypervisors::hypervisor_show,
        hypervisors::hypervisor_uptime,
        hypervisors::hypervisor_search,
        hypervisors::hypervisor_servers,
        hypervisors::host_list,
        hypervisors::host_show,
        hypervisors::host_update,
        hypervisors::host_power,
        limits::availability_zones_detail,
        aggregates::aggregate_list,
        aggregates::aggregate_create,
        aggregates::aggregate_show,
        aggregates::aggregate_update,
        aggregates::aggregate_delete,
        aggregates::aggregate_action,
        limits::extension_list,
        limits::extension_show,
        quotas::quota_show,
        quotas::quota_detail,
        quotas::quota_defaults,
        quotas::quota_update,
        quotas::quota_delete,
        quotas::quota_class_show,
        quotas::quota_class_update,
        crate::openapi::compute_openapi
    ),
    components(schemas(CreateServerRequest, stratus_api::compute::CreateServer, UpdateServiceRequest))
)]
pub struct ComputeDoc;

/// Routes of the Compute API.
pub fn routes(state: AppState) -> Router {
    let v21 = Router::new()
        .route("/compute/v2", get(version_v20))
        .route("/compute/v2/", get(version_v20))
        .route("/compute/v2.1", get(version_v21))
        .route("/compute/v2.1/", get(version_v21))
        .route("/compute/v2.1/flavors", get(flavors::flavor_list).post(flavors::flavor_create))
        .route("/compute/v2.1/flavors/detail", get(flavors::flavor_detail))
        .route("/compute/v2.1/flavors/{id}", get(flavors::flavor_show).delete(flavors::flavor_delete))
        .route("/compute/v2.1/flavors/{id}/action", axum::routing::post(flavors::flavor_action))
        .route("/compute/v2.1/servers", get(servers::server_list).post(servers::server_create))
        .route("/compute/v2.1/servers/detail", get(servers::server_detail))
        .route("/compute/v2.1/servers/{id}/action", axum::routing::post(actions::server_action))
        .route("/compute/v2.1/os-keypairs", get(keypairs::keypair_list).post(keypairs::keypair_create))
        .route("/compute/v2.1/os-keypairs/{name}", get(keypairs::keypair_show).delete(keypairs::keypair_delete))
        .route("/compute/v2.1/servers/{id}/os-instance-actions", get(instance_actions::instance_action_list))
        .route(
            "/compute/v2.1/servers/{id}/os-volume_attachments",
            get(attachments::volume_attachment_list).post(attachments::volume_attach),
        )
        .route("/compute/v2.1/os-services", get(services::service_list))
        .route("/compute/v2.1/os-migrations", get(migrations::migration_list))
        .route("/compute/v2.1/os-services/{action}", put(services::service_update))
        .route("/compute/v2.1/limits", get(limits::limits))
        .route("/compute/v2.1/os-hypervisors", get(hypervisors::hypervisor_list))
        .route("/compute/v2.1/os-hypervisors/detail", get(hypervisors::hypervisor_detail))
        .route("/compute/v2.1/os-hypervisors/{id}", get(hypervisors::hypervisor_show))
        .route("/compute/v2.1/os-simple-tenant-usage", get(usage::usage_list))
        .route("/compute/v2.1/os-simple-tenant-usage/{tenant_id}", get(usage::usage_show))
        .route("/compute/v2.1/os-aggregates/{id}/action", axum::routing::post(aggregates::aggregate_action))
        .route(
            "/compute/v2.1/os-quota-sets/{project_id}",
            get(quotas::quota_show).put(quotas::quota_update).delete(quotas::quota_delete),
        )
        .route("/compute/v2.1/os-quota-sets/{project_id}/detail", get(quotas::quota_detail))
        .merge(no_query_from(
            &state,
            102,
            Router::new()
                .route("/compute/v2.1/flavors/{id}/os-flavor-access", get(flavors::flavor_access_list))
                .route(
                    "/compute/v2.1/servers/{id}",
                    get(servers::server_show).delete(servers::server_delete).put(servers::server_update),
                )
                .route(
                    "/compute/v2.1/servers/{id}/metadata",
                    get(metadata::metadata_list).put(metadata::metadata_replace).post(metadata::metadata_merge),
                )
                .route(
                    "/compute/v2.1/servers/{id}/metadata/{key}",
                    get(metadata::metadata_item_show)
                        .put(metadata::metadata_item_set)
                        .delete(metadata::metadata_item_delete),
                )
                .route(
                    "/compute/v2.1/servers/{id}/tags",
                    get(tags::tag_list).put(tags::tag_replace).delete(tags::tag_clear),
                )
                .route(
                    "/compute/v2.1/servers/{id}/tags/{tag}",
                    get(tags::tag_check).put(tags::tag_add).delete(tags::tag_delete),
                )
                .route(
                    "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
                    get(attachments::volume_attachment_show).delete(attachments::volume_detach),
                )
                .route(
                    "/compute/v2.1/flavors/{id}/os-extra_specs",
                    get(flavors::extra_specs_list).post(flavors::extra_specs_create),
                )
                .route(
                    "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
                    get(flavors::extra_spec_show).put(flavors::extra_spec_update).delete(flavors::extra_spec_delete),
                )
                .route(
                    "/compute/v2.1/servers/{id}/os-instance-actions/{req}",
                    get(instance_actions::instance_action_show),
                )
                .route("/compute/v2.1/os-instance_usage_audit_log", get(usage::audit_log_list))
                .route("/compute/v2.1/os-instance_usage_audit_log/{before}", get(usage::audit_log_show))
                .route("/compute/v2.1/servers/{id}/diagnostics", get(usage::diagnostics))
                .route("/compute/v2.1/os-availability-zone", get(limits::availability_zones))
                .route("/compute/v2.1/os-availability-zone/detail", get(limits::availability_zones_detail))
                .route(
                    "/compute/v2.1/os-aggregates",
                    get(aggregates::aggregate_list).post(aggregates::aggregate_create),
                )
                .route(
                    "/compute/v2.1/os-aggregates/{id}",
                    get(aggregates::aggregate_show)
                        .put(aggregates::aggregate_update)
                        .delete(aggregates::aggregate_delete),
                )
                .route("/compute/v2.1/extensions", get(limits::extension_list))
                .route("/compute/v2.1/extensions/{alias}", get(limits::extension_show))
                .route("/compute/v2.1/os-quota-sets/{project_id}/defaults", get(quotas::quota_defaults))
                .route(
                    "/compute/v2.1/os-quota-class-sets/{id}",
                    get(quotas::quota_class_show).put(quotas::quota_class_update),
                ),
        ))
        .merge(added_in(
            &state,
            85,
            Router::new().route(
                "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
                put(attachments::volume_attachment_update),
            ),
        ))
        .merge(added_in(
            &state,
            78,
            no_query_from(
                &state,
                102,
                Router::new().route("/compute/v2.1/servers/{id}/topology", get(migrations::server_topology)),
            ),
        ))
        .merge(added_in(&state, 55, Router::new().route("/compute/v2.1/flavors/{id}", put(flavors::flavor_update))))
        .merge(added_in(
            &state,
            23,
            no_query_from(
                &state,
                102,
                Router::new()
                    .route("/compute/v2.1/servers/{id}/migrations", get(migrations::server_migration_list))
                    .route(
                        "/compute/v2.1/servers/{id}/migrations/{migration_id}",
                        get(migrations::server_migration_show),
                    ),
            ),
        ))
        .merge(gone_from(
            &state,
            36,
            Router::new()
                .route("/compute/v2.1/os-networks", get(networks::network_list))
                .route("/compute/v2.1/os-networks/{id}", get(networks::network_show))
                .route("/compute/v2.1/images", get(images::image_list))
                .route("/compute/v2.1/images/detail", get(images::image_detail))
                .route("/compute/v2.1/images/{id}", get(images::image_show).delete(images::image_delete))
                .route(
                    "/compute/v2.1/images/{id}/metadata",
                    get(images::image_metadata).put(images::image_metadata_replace).post(images::image_metadata_merge),
                )
                .route(
                    "/compute/v2.1/images/{id}/metadata/{key}",
                    get(images::image_metadata_item)
                        .put(images::image_metadata_item_set)
                        .delete(images::image_metadata_item_delete),
                )
                .route("/compute/v2.1/os-volumes", get(volumes::volume_list).post(volumes::volume_create))
                .route("/compute/v2.1/os-volumes/detail", get(volumes::volume_detail))
                .route("/compute/v2.1/os-volumes/{id}", get(volumes::volume_show).delete(volumes::volume_delete))
                .route("/compute/v2.1/os-snapshots", get(volumes::snapshot_list).post(volumes::snapshot_create))
                .route("/compute/v2.1/os-snapshots/detail", get(volumes::snapshot_detail))
                .route("/compute/v2.1/os-snapshots/{id}", get(volumes::snapshot_show).delete(volumes::snapshot_delete)),
        ))
        .merge(gone_from(
            &state,
            43,
            Router::new()
                .route("/compute/v2.1/os-hosts", get(hypervisors::host_list))
                .route("/compute/v2.1/os-hosts/{host}", get(hypervisors::host_show).put(hypervisors::host_update))
                .route("/compute/v2.1/os-hosts/{host}/{power}", get(hypervisors::host_power)),
        ))
        .merge(gone_from(
            &state,
            53,
            Router::new()
                .route("/compute/v2.1/os-hypervisors/{id}/search", get(hypervisors::hypervisor_search))
                .route("/compute/v2.1/os-hypervisors/{id}/servers", get(hypervisors::hypervisor_servers)),
        ))
        .merge(gone_from(
            &state,
            88,
            Router::new()
                .route("/compute/v2.1/os-hypervisors/statistics", get(hypervisors::hypervisor_statistics))
                .route("/compute/v2.1/os-hypervisors/{id}/uptime", get(hypervisors::hypervisor_uptime)),
        ))
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .layer(axum::middleware::from_fn(compute_microversion))
        .with_state(state.clone());
    Router::new()
        .route("/compute", get(versions))
        .route("/compute/", get(versions))
        .route("/compute/openapi.json", get(crate::openapi::compute_openapi))
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .with_state(state)
        .merge(v21)
}

/// `router` answering 404 from microversion 2.`minor` on: Nova removed
/// these APIs then (a method absent at the requested version is a 404).
fn gone_from(state: &AppState, minor: u32, router: Router<AppState>) -> Router<AppState> {
    router.route_layer(axum::middleware::from_fn_with_state((state.clone(), 0, minor), served_between))
}

/// `router` refusing any query parameter of its GETs from microversion
/// 2.`minor` on (Nova's query schemas of these GETs forbid unknown ones
/// from 2.102; its other methods have no query schema and ignore them).
fn no_query_from(state: &AppState, minor: u32, router: Router<AppState>) -> Router<AppState> {
    router.route_layer(axum::middleware::from_fn_with_state((state.clone(), minor), no_query))
}

/// The check [`no_query_from`] installs: after the token (401), a query
/// parameter is a 400 with Nova's message.
async fn no_query(
    State((st, from)): State<(AppState, u32)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    if !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    if let Err(e) = crate::middleware::Auth::from_request_parts(&mut parts, &st).await {
        return e.into_response();
    }
    let mv = parts.extensions.get::<crate::middleware::Mv>().map_or(stratus_api::MIN_COMPUTE, |m| m.0);
    if let Err(e) = stratus_api::compute::paging::only_params_from(parts.uri.query(), mv, from, &[]) {
        return crate::error::ApiError::from(e).into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// `router` answering 404 below microversion 2.`minor`, which added it.
fn added_in(state: &AppState, minor: u32, router: Router<AppState>) -> Router<AppState> {
    router.route_layer(axum::middleware::from_fn_with_state((state.clone(), minor, u32::MAX), served_between))
}

/// The check [`gone_from`] and [`added_in`] install: served from 2.`from`
/// up to (not including) 2.`until`. As in Nova, the token is checked first
/// (401), the version then (404).
async fn served_between(
    State((st, from, until)): State<(AppState, u32, u32)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let (mut parts, body) = req.into_parts();
    if let Err(e) = crate::middleware::Auth::from_request_parts(&mut parts, &st).await {
        return e.into_response();
    }
    let mv = parts.extensions.get::<crate::middleware::Mv>().map_or(stratus_api::MIN_COMPUTE, |m| m.0);
    if !mv.at_least(from) || mv.at_least(until) {
        return crate::error::ApiError::NotFound("The resource could not be found.".into()).into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

#[utoipa::path(get, path = "/compute", tag = "versions", responses((status = 200, description = "Version list", body = s::VersionList)))]
async fn versions(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"versions": [views::version_v20_object(&st.public_url), views::version_object(&st.public_url)]}))
}

#[utoipa::path(get, path = "/compute/v2", tag = "versions", responses((status = 200, description = "The legacy v2.0 version document (listed, not served: clients use v2.1)", body = s::VersionDoc)))]
async fn version_v20(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"version": views::version_v20_object(&st.public_url)}))
}

#[utoipa::path(get, path = "/compute/v2.1", tag = "versions", responses((status = 200, description = "The v2.1 version document with min/max microversions", body = s::VersionDoc)))]
async fn version_v21(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"version": views::version_object(&st.public_url)}))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn status(app: &axum::Router, token: &str, url: &str, version: &str) -> StatusCode {
        let req = Request::builder()
            .uri(url)
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {version}"));
        app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response").status()
    }

    /// A fresh cloud's router and an admin token.
    async fn cloud(tag: &str) -> (axum::Router, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("stratus-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("images")).expect("mkdir");
        let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("bootstrap");
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let scope = stratus_auth::ProjectScope::Name("admin".into());
        let issued = identity.authenticate("admin", "pw", scope).await.expect("token");
        let (state, _) = crate::volume::test_state(&ds, identity, dir.join("images"));
        (crate::router(state), issued.token.clone(), dir)
    }

    /// One compute call at `2.minor`: its status and body.
    async fn call(
        app: &axum::Router,
        token: &str,
        method: &str,
        url: &str,
        minor: u32,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header("x-auth-token", token)
            .header("content-type", "application/json")
            .header("openstack-api-version", format!("compute 2.{minor}"));
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = app.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Nova 2.86 validates extra specs set through `os-extra_specs` against
    /// its registry (a 400 naming the fault); below 2.86 any value is kept.
    #[tokio::test]
    async fn extra_specs_are_validated_from_2_86() {
        let (app, token, dir) = cloud("specs").await;
        let flavor = serde_json::json!({"flavor": {"name": "f", "id": "f1", "ram": 512, "vcpus": 1, "disk": 1}});
        assert_eq!(call(&app, &token, "POST", "/compute/v2.1/flavors", 1, Some(flavor)).await.0, StatusCode::OK);
        let specs = "/compute/v2.1/flavors/f1/os-extra_specs";
        let bad = serde_json::json!({"extra_specs": {"hw:cpu_policy": "fast"}});
        assert_eq!(call(&app, &token, "POST", specs, 85, Some(bad.clone())).await.0, StatusCode::OK);
        if stratus_api::MAX_COMPUTE.minor >= 86 {
            let (status, body) = call(&app, &token, "POST", specs, 86, Some(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body.contains("Validation failed; 'fast' is not one of: dedicated, shared, mixed."), "{body}");
            let unknown = serde_json::json!({"extra_specs": {"hw:no_such_spec": "1"}});
            let (status, body) = call(&app, &token, "POST", specs, 86, Some(unknown)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body.contains("extra spec 'hw:no_such_spec' does not appear to be a valid extra spec"), "{body}");
            let good = serde_json::json!({"extra_specs": {"hw:cpu_policy": "shared", "foo:bar": "x", "plain": "y"}});
            assert_eq!(call(&app, &token, "POST", specs, 86, Some(good)).await.0, StatusCode::OK);
            let item = format!("{specs}/hw:numa_nodes");
            let zero = serde_json::json!({"hw:numa_nodes": "0"});
            let (status, body) = call(&app, &token, "PUT", &item, 86, Some(zero)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body.contains("'0' is less than the min value of '1'"), "{body}");
            let two = serde_json::json!({"hw:numa_nodes": 2});
            assert_eq!(call(&app, &token, "PUT", &item, 86, Some(two)).await.0, StatusCode::OK);
        }
        let (_, body) = call(&app, &token, "GET", specs, 85, None).await;
        let got: serde_json::Value = serde_json::from_str(&body).expect("json");
        let want = if stratus_api::MAX_COMPUTE.minor >= 86 { "shared" } else { "fast" };
        assert_eq!(got["extra_specs"]["hw:cpu_policy"], want);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Nova 2.102: `GET /servers/{id}` and the server sub-resource GETs
    /// (metadata, tags, a volume attachment) refuse unknown query
    /// parameters (400, before the server is looked up); their other
    /// methods, and the lists with their own schemas, are unchanged.
    #[tokio::test]
    async fn server_gets_refuse_unknown_query_parameters_from_2_102() {
        let (app, token, dir) = cloud("strict").await;
        let urls = [
            "/compute/v2.1/servers/x?foo=1",
            "/compute/v2.1/servers/x/metadata?foo=1",
            "/compute/v2.1/servers/x/metadata/k?foo=1",
            "/compute/v2.1/servers/x/tags?foo=1",
            "/compute/v2.1/servers/x/tags/t?foo=1",
            "/compute/v2.1/servers/x/os-volume_attachments/v?foo=1",
        ];
        for url in urls {
            assert_eq!(
                call(&app, &token, "GET", url, 101.min(stratus_api::MAX_COMPUTE.minor), None).await.0,
                StatusCode::NOT_FOUND,
                "{url}"
            );
            if stratus_api::MAX_COMPUTE.minor >= 102 {
                let (status, body) = call(&app, &token, "GET", url, 102, None).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
                assert!(body.contains("Additional properties are not allowed ('foo' was unexpected)"), "{body}");
                // Without a query: the server is looked up.
                let bare = url.trim_end_matches("?foo=1");
                assert_eq!(call(&app, &token, "GET", bare, 102, None).await.0, StatusCode::NOT_FOUND, "{bare}");
            }
        }
        let latest = stratus_api::MAX_COMPUTE.minor;
        // A DELETE has no query schema in Nova: a parameter is ignored.
        assert_eq!(
            call(&app, &token, "DELETE", "/compute/v2.1/servers/x?foo=1", latest, None).await.0,
            StatusCode::NOT_FOUND
        );
        // The server lists keep their own 2.75 schema: known filters pass.
        assert_eq!(
            call(&app, &token, "GET", "/compute/v2.1/servers/detail?name=a&limit=1", latest, None).await.0,
            StatusCode::OK
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Nova answers an API removed at a microversion (the proxies at 2.36,
    /// os-hosts at 2.43, hypervisor search at 2.53, statistics at 2.88) and
    /// one added later (server migrations, 2.23) with 404 outside its range,
    /// before anything else; and serves every path with a hex project id
    /// after `/v2.1` as without it.
    #[tokio::test]
    async fn routes_follow_the_microversions_that_added_or_removed_them() {
        let dir = std::env::temp_dir().join(format!("stratus-gone-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("images")).expect("mkdir");
        let ds = stratus_db::Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        stratus_auth::bootstrap_user(&ds, "admin", "pw", "admin", "admin", false).await.expect("bootstrap");
        let identity = stratus_auth::Identity::new(ds.clone(), chrono::Duration::hours(1));
        let scope = stratus_auth::ProjectScope::Name("admin".into());
        let issued = identity.authenticate("admin", "pw", scope).await.expect("token");
        let (token, project) = (issued.token.clone(), issued.context.project_id.clone());
        let (state, _) = crate::volume::test_state(&ds, identity, dir.join("images"));
        let app = crate::router(state);
        let (gone, ok) = (StatusCode::NOT_FOUND, StatusCode::OK);
        assert_eq!(status(&app, "bad", "/compute/v2.1/os-hosts", "2.1").await, StatusCode::UNAUTHORIZED);
        let cases = [
            ("/compute/v2.1/os-networks", 35, ok),
            ("/compute/v2.1/os-networks", 36, gone),
            ("/compute/v2.1/images", 36, gone),
            ("/compute/v2.1/os-volumes/detail", 36, gone),
            ("/compute/v2.1/os-snapshots/detail", 35, ok),
            ("/compute/v2.1/os-snapshots/detail", 36, gone),
            ("/compute/v2.1/os-hosts", 42, ok),
            ("/compute/v2.1/os-hosts", 43, gone),
            ("/compute/v2.1/os-hypervisors/h/search", 53, gone),
            ("/compute/v2.1/os-hypervisors/statistics", 87, ok),
            ("/compute/v2.1/os-hypervisors/statistics", 88, gone),
            ("/compute/v2.1/servers/x/migrations", 22, gone),
            ("/compute/v2.1/servers/x/topology", 77, gone),
            ("/compute/v2.1/os-availability-zone?x=1", 101, ok),
            ("/compute/v2.1/os-availability-zone?x=1", 102, StatusCode::BAD_REQUEST),
            ("/compute/v2.1/flavors/1", 54, gone),
        ];
        // Versions above what this build serves cannot be asked for.
        for (url, minor, want) in cases.into_iter().filter(|c| c.1 <= stratus_api::MAX_COMPUTE.minor) {
            // The flavor case is the PUT that 2.55 added.
            let got = if url == "/compute/v2.1/flavors/1" {
                let req = Request::builder()
                    .method("PUT")
                    .uri(url)
                    .header("x-auth-token", &token)
                    .header("openstack-api-version", format!("compute 2.{minor}"));
                app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response").status()
            } else {
                status(&app, &token, url, &format!("2.{minor}")).await
            };
            assert_eq!(got, want, "{url} at 2.{minor}");
        }
        // From 2.23 the route is served: an unknown server is Nova's 404 for it.
        let body = if stratus_api::MAX_COMPUTE.minor < 23 {
            bytes::Bytes::from_static(b"Instance x could not be found")
        } else {
            let req = Request::builder()
                .uri("/compute/v2.1/servers/x/migrations")
                .header("x-auth-token", &token)
                .header("openstack-api-version", "compute 2.23");
            let resp = app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response");
            axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body")
        };
        assert!(String::from_utf8_lossy(&body).contains("Instance x could not be found"));
        let with_project = format!("/compute/v2.1/{project}/flavors/detail");
        assert_eq!(status(&app, &token, &with_project, "2.1").await, ok);
        let other = format!("/compute/v2.1/{}/flavors", uuid::Uuid::new_v4().simple());
        assert_eq!(status(&app, &token, &other, "2.1").await, StatusCode::BAD_REQUEST);
        assert_eq!(status(&app, &token, "/compute/v2.1/not-a-project/flavors", "2.1").await, gone);
        let _ = std::fs::remove_dir_all(dir);
    }
}
