//! Glance's metadata definitions catalogue (`/image/v2/metadefs/...`) and
//! its schemas (`/image/v2/schemas/metadefs/...`): thin handlers over the
//! `stratus_image::metadefs` rules. Existence and policy are checked before
//! a body is read, so a 404 or 403 never hides behind a 400.

use super::object_body;
use crate::AppState;
use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_image::metadefs::{
    self as md, OBJECT, PROPERTY, RESOURCE_TYPE, TAG, association_view, object_view, property_view, tag_view,
};

/// The metadefs paths of the Image API's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_namespaces,
    create_namespace,
    show_namespace,
    update_namespace,
    delete_namespace,
    list_objects,
    create_object,
    delete_objects,
    show_object,
    update_object,
    delete_object,
    list_properties,
    create_property,
    delete_properties,
    show_property,
    update_property,
    delete_property,
    list_tags,
    create_tags,
    delete_tags,
    show_tag,
    create_tag,
    update_tag,
    delete_tag,
    list_associations,
    create_association,
    delete_association,
    list_resource_types,
    metadefs_schema
))]
pub struct MetadefsDoc;

/// Routes of the metadefs catalogue and its schemas.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/image/v2/metadefs/namespaces", get(list_namespaces).post(create_namespace))
        .route(
            "/image/v2/metadefs/namespaces/{namespace}",
            get(show_namespace).put(update_namespace).delete(delete_namespace),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/objects",
            get(list_objects).post(create_object).delete(delete_objects),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}",
            get(show_object).put(update_object).delete(delete_object),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/properties",
            get(list_properties).post(create_property).delete(delete_properties),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
            get(show_property).put(update_property).delete(delete_property),
        )
        .route("/image/v2/metadefs/namespaces/{namespace}/tags", get(list_tags).post(create_tags).delete(delete_tags))
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}",
            get(show_tag).post(create_tag).put(update_tag).delete(delete_tag),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/resource_types",
            get(list_associations).post(create_association),
        )
        .route(
            "/image/v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}",
            axum::routing::delete(delete_association),
        )
        .route("/image/v2/metadefs/resource_types", get(list_resource_types))
        .route("/image/v2/schemas/metadefs/{name}", get(metadefs_schema))
}

type Json = Result<axum::Json<Value>, ApiError>;

fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

/// The body of a write to namespace `ns`, read only once the caller may write there.
async fn write_body(
    state: &AppState,
    ctx: &stratus_auth::AuthContext,
    ns: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Map<String, Value>, ApiError> {
    state.images.md_writable(ctx, ns).await?;
    object_body(headers, body)
}

// ------------------------------------------------------------ namespaces

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces", tag = "metadefs", params(("limit" = Option<u32>, Query, description = "Page size"), ("marker" = Option<String>, Query, description = "Last namespace of the previous page"), ("visibility" = Option<String>, Query, description = "public or private"), ("resource_types" = Option<String>, Query, description = "Associated with one of these (comma-separated)"), ("sort_key" = Option<String>, Query, description = "namespace, created_at or updated_at"), ("sort_dir" = Option<String>, Query, description = "asc or desc")), responses((status = 200, description = "The visible namespaces", body = s::MetadefNamespaceList), (status = 400, description = "Bad filter or sort"), (status = 404, description = "Unknown marker")))]
async fn list_namespaces(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Json {
    let Query(params) = query?;
    Ok(axum::Json(state.images.md_list_namespaces(&ctx, &params).await?))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces", tag = "metadefs", request_body = s::MetadefNamespaceCreate, responses((status = 201, description = "Created", body = s::MetadefNamespace), (status = 400, description = "Invalid namespace"), (status = 403, description = "Not an admin"), (status = 409, description = "The name is taken"), (status = 415, description = "Not application/json")))]
async fn create_namespace(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    md::check_admin(&ctx)?;
    let req = object_body(&headers, &body)?;
    Ok(created(state.images.md_create_namespace(&ctx, &req).await?))
}

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 200, description = "The namespace with its objects, properties, tags and associations", body = s::MetadefNamespace), (status = 404, description = "Unknown or not visible")))]
async fn show_namespace(State(state): State<AppState>, Auth(ctx): Auth, Path(ns): Path<String>) -> Json {
    Ok(axum::Json(state.images.md_show_namespace(&ctx, &ns).await?))
}

#[utoipa::path(put, path = "/image/v2/metadefs/namespaces/{namespace}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), request_body = s::MetadefNamespaceCreate, responses((status = 200, description = "The updated namespace", body = s::MetadefNamespace), (status = 400, description = "Invalid namespace"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The new name is taken"), (status = 415, description = "Not application/json")))]
async fn update_namespace(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(axum::Json(state.images.md_update_namespace(&ctx, &ns, &req).await?))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 204, description = "Deleted with its content"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_namespace(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_namespace(&ctx, &ns).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ objects

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/objects", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 200, description = "The namespace's objects", body = s::MetadefObjectList), (status = 404, description = "Unknown or not visible")))]
async fn list_objects(State(state): State<AppState>, Auth(ctx): Auth, Path(ns): Path<String>) -> Json {
    let objects: Vec<Value> = state.images.md_items(&ctx, &ns, OBJECT).await?.iter().map(object_view).collect();
    Ok(axum::Json(json!({"objects": objects, "schema": "v2/schemas/metadefs/objects"})))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces/{namespace}/objects", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), request_body = s::MetadefItemCreate, responses((status = 201, description = "Created", body = s::MetadefItem), (status = 400, description = "Invalid object"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The name is taken"), (status = 415, description = "Not application/json")))]
async fn create_object(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(created(object_view(&state.images.md_create_item(&ctx, &ns, OBJECT, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/objects", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 204, description = "Every object deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_objects(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, OBJECT, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("object_name" = String, Path, description = "Object")), responses((status = 200, description = "The object", body = s::MetadefItem), (status = 404, description = "Unknown or not visible")))]
async fn show_object(State(state): State<AppState>, Auth(ctx): Auth, Path((ns, name)): Path<(String, String)>) -> Json {
    Ok(axum::Json(object_view(&state.images.md_item(&ctx, &ns, OBJECT, &name).await?)))
}

#[utoipa::path(put, path = "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("object_name" = String, Path, description = "Object")), request_body = s::MetadefItemCreate, responses((status = 200, description = "The updated object", body = s::MetadefItem), (status = 400, description = "Invalid object"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The new name is taken"), (status = 415, description = "Not application/json")))]
async fn update_object(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Json {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(axum::Json(object_view(&state.images.md_update_item(&ctx, &ns, OBJECT, &name, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/objects/{object_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("object_name" = String, Path, description = "Object")), responses((status = 204, description = "Deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_object(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, OBJECT, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ properties

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/properties", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 200, description = "The namespace's properties, by name", body = s::MetadefPropertyList), (status = 404, description = "Unknown or not visible")))]
async fn list_properties(State(state): State<AppState>, Auth(ctx): Auth, Path(ns): Path<String>) -> Json {
    let props: Map<String, Value> = state
        .images
        .md_items(&ctx, &ns, PROPERTY)
        .await?
        .iter()
        .map(|p| {
            let mut v = property_view(p);
            if let Some(m) = v.as_object_mut() {
                m.remove("name");
            }
            (p.name.clone(), v)
        })
        .collect();
    Ok(axum::Json(json!({"properties": props, "schema": "v2/schemas/metadefs/properties"})))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces/{namespace}/properties", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), request_body = s::MetadefItemCreate, responses((status = 201, description = "Created", body = s::MetadefItem), (status = 400, description = "Invalid property"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The name is taken"), (status = 415, description = "Not application/json")))]
async fn create_property(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(created(property_view(&state.images.md_create_item(&ctx, &ns, PROPERTY, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/properties", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 204, description = "Every property deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_properties(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, PROPERTY, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("property_name" = String, Path, description = "Property")), responses((status = 200, description = "The property", body = s::MetadefItem), (status = 404, description = "Unknown or not visible")))]
async fn show_property(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
) -> Json {
    Ok(axum::Json(property_view(&state.images.md_item(&ctx, &ns, PROPERTY, &name).await?)))
}

#[utoipa::path(put, path = "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("property_name" = String, Path, description = "Property")), request_body = s::MetadefItemCreate, responses((status = 200, description = "The updated property", body = s::MetadefItem), (status = 400, description = "Invalid property"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The new name is taken"), (status = 415, description = "Not application/json")))]
async fn update_property(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Json {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(axum::Json(property_view(&state.images.md_update_item(&ctx, &ns, PROPERTY, &name, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/properties/{property_name}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("property_name" = String, Path, description = "Property")), responses((status = 204, description = "Deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_property(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, PROPERTY, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ tags

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/tags", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 200, description = "The namespace's tags", body = s::MetadefTagList), (status = 404, description = "Unknown or not visible")))]
async fn list_tags(State(state): State<AppState>, Auth(ctx): Auth, Path(ns): Path<String>) -> Json {
    let tags: Vec<Value> = state.images.md_items(&ctx, &ns, TAG).await?.iter().map(tag_view).collect();
    Ok(axum::Json(json!({"tags": tags})))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces/{namespace}/tags", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("X-Openstack-Append" = Option<bool>, Header, description = "Add to the existing tags instead of replacing them")), request_body = s::MetadefTagList, responses((status = 201, description = "The tags created", body = s::MetadefTagList), (status = 400, description = "Invalid tags"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "A duplicate tag"), (status = 415, description = "Not application/json")))]
async fn create_tags(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    let append =
        headers.get("x-openstack-append").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let tags: Vec<Value> = state.images.md_create_tags(&ctx, &ns, &req, append).await?.iter().map(tag_view).collect();
    Ok(created(json!({"tags": tags})))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/tags", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 204, description = "Every tag deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_tags(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, TAG, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("tag" = String, Path, description = "Tag")), responses((status = 200, description = "The tag", body = s::MetadefItem), (status = 404, description = "Unknown or not visible")))]
async fn show_tag(State(state): State<AppState>, Auth(ctx): Auth, Path((ns, tag)): Path<(String, String)>) -> Json {
    Ok(axum::Json(tag_view(&state.images.md_item(&ctx, &ns, TAG, &tag).await?)))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("tag" = String, Path, description = "Tag")), responses((status = 201, description = "Created", body = s::MetadefItem), (status = 400, description = "Invalid tag"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The tag exists")))]
async fn create_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.images.md_writable(&ctx, &ns).await?;
    let req = md::tag_name(&tag)?;
    Ok(created(tag_view(&state.images.md_create_item(&ctx, &ns, TAG, &req).await?)))
}

#[utoipa::path(put, path = "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("tag" = String, Path, description = "Tag")), request_body = s::MetadefItemCreate, responses((status = 200, description = "The renamed tag", body = s::MetadefItem), (status = 400, description = "Invalid tag"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "The new name is taken"), (status = 415, description = "Not application/json")))]
async fn update_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, tag)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Json {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(axum::Json(tag_view(&state.images.md_update_item(&ctx, &ns, TAG, &tag, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/tags/{tag}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "Deleted"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, TAG, Some(&tag)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ resource types

#[utoipa::path(get, path = "/image/v2/metadefs/namespaces/{namespace}/resource_types", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), responses((status = 200, description = "The namespace's resource-type associations", body = s::MetadefAssociationList), (status = 404, description = "Unknown or not visible")))]
async fn list_associations(State(state): State<AppState>, Auth(ctx): Auth, Path(ns): Path<String>) -> Json {
    let assoc: Vec<Value> =
        state.images.md_items(&ctx, &ns, RESOURCE_TYPE).await?.iter().map(association_view).collect();
    Ok(axum::Json(json!({"resource_type_associations": assoc})))
}

#[utoipa::path(post, path = "/image/v2/metadefs/namespaces/{namespace}/resource_types", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace")), request_body = s::MetadefItemCreate, responses((status = 201, description = "Associated", body = s::MetadefItem), (status = 400, description = "Invalid association"), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Already associated"), (status = 415, description = "Not application/json")))]
async fn create_association(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = write_body(&state, &ctx, &ns, &headers, &body).await?;
    Ok(created(association_view(&state.images.md_create_item(&ctx, &ns, RESOURCE_TYPE, &req).await?)))
}

#[utoipa::path(delete, path = "/image/v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}", tag = "metadefs", params(("namespace" = String, Path, description = "Namespace"), ("resource_type" = String, Path, description = "Resource type")), responses((status = 204, description = "Dissociated"), (status = 403, description = "Not an admin, or protected"), (status = 404, description = "Unknown or not visible")))]
async fn delete_association(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((ns, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.md_delete_items(&ctx, &ns, RESOURCE_TYPE, Some(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/metadefs/resource_types", tag = "metadefs", responses((status = 200, description = "Every resource type", body = s::MetadefResourceTypeList)))]
async fn list_resource_types(State(state): State<AppState>, Auth(_ctx): Auth) -> Json {
    Ok(axum::Json(state.images.md_resource_types().await?))
}

#[utoipa::path(get, path = "/image/v2/schemas/metadefs/{name}", tag = "schemas", params(("name" = String, Path, description = "namespace(s), object(s), property/properties, tag(s), resource_type(s)")), responses((status = 200, description = "The metadefs schema", body = s::GlanceSchema), (status = 404, description = "No such schema")))]
async fn metadefs_schema(Path(name): Path<String>) -> Json {
    md::schema(&name).map(axum::Json).ok_or_else(|| ApiError::NotFound(format!("No metadefs schema '{name}'.")))
}
