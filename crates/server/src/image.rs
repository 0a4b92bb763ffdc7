//! Image API v2 (Glance-compatible), mounted at `/image`: thin handlers that
//! check the media type, parse the body, call one [`ImageService`] method and
//! render the result. The rules, the store and seeding live in `stratus-image`.
//!
//! [`ImageService`]: stratus_image::ImageService

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::Auth;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value};
use stratus_api::image::{ListImagesQuery, PATCH_TYPES, image_schema, images_doc, images_schema, versions_doc};
use stratus_image::{Download, image_view};

/// Routes of the Image API: version discovery, images, image data, tags, schemas.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/image", get(versions_multiple))
        .route("/image/", get(versions_multiple))
        .route("/image/versions", get(versions_ok))
        .route("/image/v2", get(versions_ok))
        .route("/image/v2/", get(versions_ok))
        .route("/image/v2/images", get(list_images).post(create_image))
        .route("/image/v2/images/{id}", get(show_image).patch(patch_image).delete(delete_image))
        .route("/image/v2/images/{id}/file", put(upload_file).get(download_file).layer(DefaultBodyLimit::disable()))
        .route("/image/v2/images/{id}/tags/{tag}", put(add_tag).delete(remove_tag))
        .route("/image/v2/schemas/image", get(schema_image))
        .route("/image/v2/schemas/images", get(schema_images))
        .with_state(state)
}

async fn versions_multiple(State(state): State<AppState>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(versions_doc(&state.public_url))).into_response()
}

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

async fn show_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let row = state.images.get_visible(&ctx, &id).await?;
    Ok(axum::Json(image_view(&row)))
}

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
    let ops: Vec<Value> = parse_json(&body)?;
    let row = state.images.patch(&ctx, &id, &ops).await?;
    Ok(axum::Json(image_view(&row)))
}

async fn delete_image(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.images.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.add_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_tag(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.images.remove_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

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

async fn schema_image() -> axum::Json<Value> {
    axum::Json(image_schema())
}

async fn schema_images() -> axum::Json<Value> {
    axum::Json(images_schema())
}

#[cfg(test)]
mod tests;
