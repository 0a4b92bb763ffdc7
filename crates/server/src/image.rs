//! Image API v2 (Glance-compatible), mounted at `/image`: thin handlers that
//! check the media type, parse the body, call one [`ImageService`] method and
//! render the result. The rules, the store and seeding live in `stratus-image`.
//!
//! [`ImageService`]: stratus_image::ImageService

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value};
use stratus_api::image::{
    ListImagesQuery, PATCH_TYPES, image_schema, images_doc, images_schema, member_schema, members_schema, versions_doc,
};
use stratus_image::{Download, image_view, member_view};

/// The Image API's OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stratus Image API",
        version = "2.16",
        description = "OpenStack Image API v2 as served by Stratus: images, their data and tags, and Glance's schemas"
    ),
    paths(
        versions_multiple,
        versions_ok,
        crate::openapi::image_openapi,
        list_images,
        create_image,
        show_image,
        patch_image,
        delete_image,
        upload_file,
        download_file,
        add_tag,
        remove_tag,
        deactivate_image,
        reactivate_image,
        info_import,
        stage_image,
        import_image,
        image_tasks,
        list_tasks,
        create_task,
        show_task,
        schema_task,
        schema_tasks,
        list_members,
        create_member,
        show_member,
        update_member,
        delete_member,
        schema_image,
        schema_images,
        schema_member,
        schema_members
    )
)]
pub struct ImageDoc;

/// Routes of the Image API: version discovery, images, image data, tags, schemas.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/image", get(versions_multiple))
        .route("/image/", get(versions_multiple))
        .route("/image/versions", get(versions_ok))
        .route("/image/v2", get(versions_ok))
        .route("/image/v2/", get(versions_ok))
        .route("/image/openapi.json", get(crate::openapi::image_openapi))
        .route("/image/v2/images", get(list_images).post(create_image))
        .route("/image/v2/images/{id}", get(show_image).patch(patch_image).delete(delete_image))
        .route("/image/v2/images/{id}/file", put(upload_file).get(download_file).layer(DefaultBodyLimit::disable()))
        .route("/image/v2/images/{id}/tags/{tag}", put(add_tag).delete(remove_tag))
        .route("/image/v2/images/{id}/actions/deactivate", post(deactivate_image))
        .route("/image/v2/images/{id}/actions/reactivate", post(reactivate_image))
        .route("/image/v2/schemas/image", get(schema_image))
        .route("/image/v2/info/import", get(info_import))
        .route("/image/v2/images/{id}/stage", put(stage_image).layer(DefaultBodyLimit::disable()))
        .route("/image/v2/images/{id}/import", post(import_image))
        .route("/image/v2/images/{id}/tasks", get(image_tasks))
        .route("/image/v2/tasks", get(list_tasks).post(create_task))
        .route("/image/v2/tasks/{id}", get(show_task))
        .route("/image/v2/schemas/task", get(schema_task))
        .route("/image/v2/schemas/tasks", get(schema_tasks))
        .route("/image/v2/images/{id}/members", get(list_members).post(create_member))
        .route("/image/v2/images/{id}/members/{member_id}", get(show_member).put(update_member).delete(delete_member))
        .route("/image/v2/schemas/images", get(schema_images))
        .route("/image/v2/schemas/member", get(schema_member))
        .route("/image/v2/schemas/members", get(schema_members))
        .merge(metadefs::routes())
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback)
        .with_state(state)
}

#[utoipa::path(get, path = "/image", tag = "versions", responses((status = 300, description = "The version list (Multiple Choices, as Glance)", body = s::VersionList)))]
async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(versions_doc(&state.public_url))).into_response()
}

#[utoipa::path(get, path = "/image/v2", tag = "versions", responses((status = 200, description = "The version list", body = s::VersionList)))]
async fn versions_ok(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(versions_doc(&state.public_url))).into_response()
}

/// The media type of a request (without parameters), lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

#[utoipa::path(get, path = "/image/v2/images", tag = "images", params(("limit" = Option<u32>, Query, description = "Page size (at most 1000)"), ("marker" = Option<String>, Query, description = "Last id of the previous page"), ("name" = Option<String>, Query, description = "Exact name, or in:a,b"), ("status" = Option<String>, Query, description = "Status"), ("owner" = Option<String>, Query, description = "Owner project"), ("visibility" = Option<String>, Query, description = "public, private, shared, community or all"), ("os_hidden" = Option<bool>, Query, description = "Hidden images"), ("protected" = Option<bool>, Query, description = "Protected or not"), ("tag" = Option<String>, Query, description = "Has this tag"), ("size_min" = Option<u64>, Query, description = "Minimum size, bytes"), ("size_max" = Option<u64>, Query, description = "Maximum size, bytes"), ("sort" = Option<String>, Query, description = "key[:dir],..."), ("sort_key" = Option<String>, Query, description = "Sort key"), ("sort_dir" = Option<String>, Query, description = "asc or desc")), responses((status = 200, description = "A page of images", body = s::ImageList), (status = 400, description = "Bad filter, sort or marker")))]
async fn list_images(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(params) = query?;
    let page = state.images.list(&ctx, &ListImagesQuery::parse(&params)?).await?;
    let images = page.images.iter().map(image_view).collect();
    Ok(axum::Json(images_doc(images, &params, page.next_marker.as_deref())))
}

#[utoipa::path(get, path = "/image/v2/images/{id}", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "The image", body = s::Image), (status = 404, description = "Unknown or not visible")))]
async fn show_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let row = state.images.get_visible(&ctx, &id).await?;
    Ok(axum::Json(image_view(&row)))
}

#[utoipa::path(post, path = "/image/v2/images", tag = "images", request_body = s::ImageCreate, responses((status = 201, description = "Created (queued)", body = s::Image), (status = 400, description = "Invalid attribute"), (status = 403, description = "Reader, or an attribute the caller may not set"), (status = 409, description = "The id exists"), (status = 413, description = "Over the image quota"), (status = 415, description = "Not application/json")))]
async fn create_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Readers are refused before the body is even looked at.
    stratus_image::check_write(&ctx)?;
    if let Some(mt) = media_type(&headers)
        && mt != "application/json"
    {
        return Err(ApiError::UnsupportedMediaType(format!("Unsupported Content-Type '{mt}'; use application/json.")));
    }
    let req: Map<String, Value> = parse_json(&body)?;
    let row = state.images.create(&ctx, &req).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(image_view(&row))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/image/v2/images/{}", state.public_url, row.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

#[utoipa::path(patch, path = "/image/v2/images/{id}", tag = "images", params(("id" = String, Path, description = "Image id")), request_body(content = s::ImagePatch, content_type = "application/openstack-images-v2.1-json-patch"), responses((status = 200, description = "The updated image", body = s::Image), (status = 400, description = "Invalid patch"), (status = 403, description = "Not the owner, or a read-only attribute"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Conflicts with the image's state"), (status = 413, description = "Too many properties or tags"), (status = 415, description = "Not a JSON patch media type")))]
async fn patch_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let mt = media_type(&headers).unwrap_or_default();
    if !PATCH_TYPES.contains(&mt.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{mt}'; use application/openstack-images-v2.1-json-patch."
        )));
    }
    // Existence and policy before the body: 404/403 never hide behind a 400.
    state.images.get_modifiable(&ctx, &id).await?;
    let mut ops: Vec<Value> = parse_json(&body)?;
    if mt == LEGACY_PATCH_TYPE {
        ops = stratus_image::rules::legacy_patch_ops(&ops)?;
    }
    let row = state.images.patch(&ctx, &id, &ops).await?;
    Ok(axum::Json(image_view(&row)))
}

/// Glance's draft-4 patch media type: `{"replace": "/name", "value": ...}`.
const LEGACY_PATCH_TYPE: &str = "application/openstack-images-v2.0-json-patch";

#[utoipa::path(post, path = "/image/v2/images/{id}/actions/deactivate", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 204, description = "Deactivated (idempotent): its data is withheld from non-admins"), (status = 403, description = "Reader, not the owner, or not active"), (status = 404, description = "Unknown or not visible")))]
async fn deactivate_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.deactivate(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/image/v2/images/{id}/actions/reactivate", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 204, description = "Active again (idempotent)"), (status = 403, description = "Reader, not the owner, or not deactivated"), (status = 404, description = "Unknown or not visible")))]
async fn reactivate_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.reactivate(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/image/v2/images/{id}", tag = "images", params(("id" = String, Path, description = "Image id")), responses((status = 204, description = "Deleted"), (status = 403, description = "Not the owner, or protected"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "In use")))]
async fn delete_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/image/v2/images/{id}/tags/{tag}", tag = "images", params(("id" = String, Path, description = "Image id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "Tagged (idempotent)"), (status = 400, description = "Invalid tag"), (status = 403, description = "Not the owner"), (status = 404, description = "Unknown or not visible"), (status = 413, description = "Too many tags")))]
async fn add_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.add_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/image/v2/images/{id}/tags/{tag}", tag = "images", params(("id" = String, Path, description = "Image id"), ("tag" = String, Path, description = "Tag")), responses((status = 204, description = "Removed"), (status = 403, description = "Not the owner"), (status = 404, description = "Unknown image or tag")))]
async fn remove_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.remove_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/image/v2/images/{id}/file", tag = "image data", params(("id" = String, Path, description = "Image id")), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 204, description = "Stored; the image is active"), (status = 400, description = "Invalid data"), (status = 403, description = "Not the owner"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Not queued"), (status = 413, description = "Too large or over quota"), (status = 415, description = "Not application/octet-stream")))]
async fn upload_file(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    if let Some(mt) = media_type(&headers)
        && mt != "application/octet-stream"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{mt}'; image data must be application/octet-stream."
        )));
    }
    state.images.upload(&ctx, &id, body.into_data_stream()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/images/{id}/file", tag = "image data", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "The image data", content_type = "application/octet-stream", body = Vec<u8>), (status = 204, description = "No data yet"), (status = 403, description = "Not allowed"), (status = 404, description = "Unknown or not visible")))]
async fn download_file(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (file, len, checksum) = match state.images.download(&ctx, &id).await? {
        Download::Empty => return Ok(StatusCode::NO_CONTENT.into_response()),
        Download::Data { file, len, checksum } => (file, len, checksum),
    };
    // Stream the file in 64 KiB chunks: memory stays flat whatever the image's size.
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(chunks)).into_response();
    let hs = resp.headers_mut();
    hs.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    hs.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Some(sum) = checksum.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        hs.insert("content-md5", sum);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/image/v2/schemas/image", tag = "schemas", responses((status = 200, description = "The image schema", body = s::GlanceSchema)))]
async fn schema_image() -> axum::Json<Value> {
    axum::Json(image_schema())
}

#[utoipa::path(get, path = "/image/v2/schemas/images", tag = "schemas", responses((status = 200, description = "The image list schema", body = s::GlanceSchema)))]
async fn schema_images() -> axum::Json<Value> {
    axum::Json(images_schema())
}

#[utoipa::path(get, path = "/image/v2/schemas/member", tag = "schemas", responses((status = 200, description = "The image member schema", body = s::GlanceSchema)))]
async fn schema_member() -> axum::Json<Value> {
    axum::Json(member_schema())
}

#[utoipa::path(get, path = "/image/v2/schemas/members", tag = "schemas", responses((status = 200, description = "The image member list schema", body = s::GlanceSchema)))]
async fn schema_members() -> axum::Json<Value> {
    axum::Json(members_schema())
}

/// A JSON request body's object (Glance's member bodies are objects).
fn object_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if let Some(mt) = media_type(headers)
        && mt != "application/json"
    {
        return Err(ApiError::UnsupportedMediaType(format!("Unsupported Content-Type '{mt}'; use application/json.")));
    }
    parse_json(body)
}

#[utoipa::path(get, path = "/image/v2/images/{id}/members", tag = "members", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "The members (a member sees only itself)", body = s::ImageMemberList), (status = 403, description = "Not a shared image"), (status = 404, description = "Unknown or not visible")))]
async fn list_members(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let members: Vec<Value> = state.images.members(&ctx, &id).await?.iter().map(member_view).collect();
    Ok(axum::Json(serde_json::json!({"members": members, "schema": "/v2/schemas/members"})))
}

#[utoipa::path(post, path = "/image/v2/images/{id}/members", tag = "members", params(("id" = String, Path, description = "Image id")), request_body = s::ImageMemberCreate, responses((status = 200, description = "The new member (pending)", body = s::ImageMember), (status = 400, description = "No member"), (status = 403, description = "Not the owner, or not a shared image"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Already a member"), (status = 413, description = "Too many members")))]
async fn create_member(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    // Existence and policy before the body.
    state.images.get_modifiable(&ctx, &id).await?;
    let req = object_body(&headers, &body)?;
    let member = req.get("member").unwrap_or(&Value::Null);
    let m = state.images.add_member(&ctx, &id, member).await?;
    Ok(axum::Json(member_view(&m)))
}

#[utoipa::path(get, path = "/image/v2/images/{id}/members/{member_id}", tag = "members", params(("id" = String, Path, description = "Image id"), ("member_id" = String, Path, description = "Member project id")), responses((status = 200, description = "The member", body = s::ImageMember), (status = 403, description = "Not a shared image"), (status = 404, description = "Unknown image or member")))]
async fn show_member(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(member_view(&state.images.member(&ctx, &id, &member).await?)))
}

#[utoipa::path(put, path = "/image/v2/images/{id}/members/{member_id}", tag = "members", params(("id" = String, Path, description = "Image id"), ("member_id" = String, Path, description = "Member project id")), request_body = s::ImageMemberUpdate, responses((status = 200, description = "The member with its new status", body = s::ImageMember), (status = 400, description = "Invalid status"), (status = 403, description = "Not the member itself, or not a shared image"), (status = 404, description = "Unknown image or member")))]
async fn update_member(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    state.images.member(&ctx, &id, &member).await?;
    let req = object_body(&headers, &body)?;
    let status = req.get("status").unwrap_or(&Value::Null);
    Ok(axum::Json(member_view(&state.images.set_member_status(&ctx, &id, &member, status).await?)))
}

#[utoipa::path(delete, path = "/image/v2/images/{id}/members/{member_id}", tag = "members", params(("id" = String, Path, description = "Image id"), ("member_id" = String, Path, description = "Member project id")), responses((status = 204, description = "No longer a member"), (status = 403, description = "Not the owner, or not a shared image"), (status = 404, description = "Unknown image or member")))]
async fn delete_member(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.remove_member(&ctx, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/image/v2/info/import", tag = "import", responses((status = 200, description = "The import methods offered (glance-direct; web-download when enabled)", body = s::ImageImportInfo)))]
async fn info_import(State(state): State<AppState>, Auth(_ctx): Auth) -> axum::Json<Value> {
    axum::Json(serde_json::json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": state.images.import_methods(),
        }
    }))
}

#[utoipa::path(put, path = "/image/v2/images/{id}/stage", tag = "import", params(("id" = String, Path, description = "Image id")), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 204, description = "Staged; the image is uploading"), (status = 403, description = "Not the owner"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Not queued"), (status = 413, description = "Too large or over quota"), (status = 415, description = "Not application/octet-stream")))]
async fn stage_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    if let Some(mt) = media_type(&headers)
        && mt != "application/octet-stream"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{mt}'; image data must be application/octet-stream."
        )));
    }
    state.images.stage(&ctx, &id, body.into_data_stream()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/image/v2/images/{id}/import", tag = "import", params(("id" = String, Path, description = "Image id")), request_body = s::ImageImport, responses((status = 202, description = "Import done, failed or (web-download) under way: the image's task tells"), (status = 400, description = "Unknown method, bad body, or a URL the cloud will not fetch"), (status = 403, description = "Not the owner"), (status = 404, description = "Unknown or not visible"), (status = 409, description = "Not staged, or formats unset"), (status = 415, description = "Not application/json")))]
async fn import_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<crate::middleware::RequestId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    state.images.get_modifiable(&ctx, &id).await?;
    let req = object_body(&headers, &body)?;
    let rid = request_id.map(|axum::Extension(r)| r.0).unwrap_or_default();
    if let Some(job) = state.images.import(&ctx, &id, &req, &rid).await? {
        tokio::spawn(job);
    }
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/image/v2/images/{id}/tasks", tag = "import", params(("id" = String, Path, description = "Image id")), responses((status = 200, description = "The image's import task (none before an import)", body = s::ImageTaskList), (status = 404, description = "Unknown or not visible")))]
async fn image_tasks(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let tasks = state.images.import_tasks(&ctx, &id).await?;
    Ok(axum::Json(serde_json::json!({"tasks": tasks})))
}

#[utoipa::path(post, path = "/image/v2/tasks", tag = "tasks", request_body = s::ImageTaskCreate, responses((status = 201, description = "The task (pending; the import runs after the answer)", body = s::ImageTask), (status = 400, description = "Bad body, or a URL the cloud will not fetch (refused by the guard, or not resolvable)"), (status = 403, description = "Not an admin (Glance's tasks_api_access)"), (status = 415, description = "Not application/json")))]
async fn create_task(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    request_id: Option<axum::Extension<crate::middleware::RequestId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = object_body(&headers, &body)?;
    let rid = request_id.map(|axum::Extension(r)| r.0).unwrap_or_default();
    let (view, job) = state.images.task_create(&ctx, &req, &rid).await?;
    tokio::spawn(job);
    let mut resp = (StatusCode::CREATED, axum::Json(view.clone())).into_response();
    if let Some(loc) = view["self"].as_str().and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/image/v2/tasks", tag = "tasks", params(("type" = Option<String>, Query, description = "Only tasks of this type"), ("status" = Option<String>, Query, description = "Only tasks in this status"), ("sort_key" = Option<String>, Query, description = "id, type, status, created_at (default) or updated_at"), ("sort_dir" = Option<String>, Query, description = "asc or desc (default)"), ("limit" = Option<i64>, Query, description = "Page size (default 25, at most 1000)"), ("marker" = Option<String>, Query, description = "Last task id of the previous page")), responses((status = 200, description = "A page of tasks (without input, result, message)", body = s::ImageTaskPage), (status = 400, description = "Bad filter, sort or paging parameter"), (status = 403, description = "Not an admin")))]
async fn list_tasks(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(axum::Json(state.images.task_list(&ctx, &query).await?))
}

#[utoipa::path(get, path = "/image/v2/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "Task id")), responses((status = 200, description = "The task", body = s::ImageTask), (status = 403, description = "Not an admin"), (status = 404, description = "Unknown, another project's, or expired")))]
async fn show_task(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(state.images.task_show(&ctx, &id).await?))
}

#[utoipa::path(get, path = "/image/v2/schemas/task", tag = "schemas", responses((status = 200, description = "The task schema", body = s::GlanceSchema)))]
async fn schema_task() -> axum::Json<Value> {
    axum::Json(stratus_api::image::task_schema())
}

#[utoipa::path(get, path = "/image/v2/schemas/tasks", tag = "schemas", responses((status = 200, description = "The task list schema", body = s::GlanceSchema)))]
async fn schema_tasks() -> axum::Json<Value> {
    axum::Json(stratus_api::image::tasks_schema())
}

pub(crate) mod metadefs;

#[cfg(test)]
mod tests;
