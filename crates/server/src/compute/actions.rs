//! `POST /servers/{id}/action`: parse the action with the wire enum, call
//! the compute service, answer with Nova's status for that action.

use crate::AppState;
use crate::error::{ApiError, parse_json};
use crate::middleware::{Auth, Mv, RequestId};
use crate::openapi::schemas as s;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{Value, json};
use stratus_api::compute::{ActionError, ResetStateTarget, ServerAction};
use stratus_controller::compute_api::{Action, BackupRotation};
use stratus_types::VmState;

#[utoipa::path(post, path = "/compute/v2.1/servers/{id}/action", tag = "servers", params(("id" = String, Path, description = "Server id")),
    request_body(content = s::ServerAction, description = "One action key"),
    responses((status = 202, description = "Accepted (rebuild: the server and its adminPass)"), (status = 200, description = "os-getConsoleOutput: {output}; evacuate: {adminPass}", body = s::ServerActionResult), (status = 204, description = "confirmResize done"), (status = 400, description = "Unknown action or bad body"), (status = 403, description = "Not allowed or over quota"), (status = 404, description = "Not found"), (status = 409, description = "Invalid state or locked")))]
pub(super) async fn server_action(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Extension(rid): Extension<RequestId>,
    Mv(mv): Mv,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v: Value = parse_json(&body)?;
    let action = match ServerAction::parse(&v) {
        Ok(a) => a,
        Err(ActionError::Invalid(e)) => return Err(e.into()),
        Err(ActionError::Unknown(other)) => {
            // Make sure the server exists for this caller before saying the action is unknown.
            st.compute.get_visible(&ctx, &id).await?;
            if stratus_api::compute::actions::action_removed(&other, mv) {
                return Err(ApiError::NotFound("The resource could not be found.".into()));
            }
            return Err(ApiError::BadRequest(format!("There is no such action: {other}")));
        }
    };
    action.check_at(mv)?;
    let c = &st.compute;
    let rid = rid.0.as_str();
    let op = |a: Action| c.action(&ctx, &id, a, rid);
    match action {
        ServerAction::Stop => op(Action::Stop).await?,
        ServerAction::Start => op(Action::Start).await?,
        ServerAction::Pause => op(Action::Pause).await?,
        ServerAction::Unpause => op(Action::Unpause).await?,
        ServerAction::Suspend => op(Action::Suspend).await?,
        ServerAction::Resume => op(Action::Resume).await?,
        ServerAction::Shelve => op(Action::Shelve).await?,
        ServerAction::ShelveOffload => op(Action::ShelveOffload).await?,
        ServerAction::Unshelve { availability_zone, host } => op(Action::Unshelve { availability_zone, host }).await?,
        ServerAction::Migrate { host } => op(Action::Migrate { host }).await?,
        ServerAction::RevertResize => op(Action::RevertResize).await?,
        ServerAction::Restore => op(Action::Restore).await?,
        ServerAction::Reboot { hard } => op(Action::Reboot { hard }).await?,
        ServerAction::ConfirmResize => {
            op(Action::ConfirmResize).await?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        ServerAction::Resize { flavor_ref } => {
            let flavor_id = ServerAction::flavor_id(&flavor_ref).to_string();
            op(Action::Resize { flavor_ref, flavor_id }).await?
        }
        ServerAction::Evacuate(e) => {
            op(Action::Evacuate { host: e.host, stop: mv.at_least(95) }).await?;
            // From 2.14 Nova answers an evacuation with no body (no password).
            if mv.at_least(14) {
                return Ok(StatusCode::OK.into_response());
            }
            let pass = e.admin_pass.unwrap_or_else(|| stratus_auth::random_secret()[..12].to_string());
            return Ok((StatusCode::OK, Json(json!({"adminPass": pass}))).into_response());
        }
        ServerAction::CreateImage { name, metadata } => {
            return snapshot_answer(&st, &ctx, &id, rid, mv, Snapshot { name, metadata, backup: None }).await;
        }
        ServerAction::CreateBackup(b) => {
            let mut metadata = b.metadata;
            // Nova's backup image properties, over the user's.
            metadata.insert("image_type".into(), "backup".into());
            metadata.insert("backup_type".into(), b.backup_type.clone());
            let rotation = BackupRotation { backup_type: b.backup_type, rotation: b.rotation };
            return snapshot_answer(
                &st,
                &ctx,
                &id,
                rid,
                mv,
                Snapshot { name: b.name, metadata, backup: Some(rotation) },
            )
            .await;
        }
        ServerAction::Rebuild(r) => {
            let hostname = r.hostname_at(mv)?;
            let pass = r.admin_pass.clone().unwrap_or_else(|| stratus_auth::random_secret()[..12].to_string());
            op(Action::Rebuild {
                image_ref: r.image_ref,
                name: r.name,
                metadata: r.metadata,
                description: r.description,
                key_name: r.key_name,
                user_data: r.user_data,
                hostname,
                reimage_boot_volume: mv.at_least(93),
                access_ips: r.access_ips,
            })
            .await?;
            // Nova answers a rebuild with the server as it now is, and its password.
            let shown = c.server_show(&ctx, &id).await?;
            let mut body = super::servers::show(&st.public_url, &shown, ctx.is_admin(), mv);
            stratus_api::compute::views::rebuild_answer(&mut body, mv, shown.server.user_data.as_deref(), &pass);
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        ServerAction::ForceDelete => c.force_delete(&ctx, &id, rid).await?,
        ServerAction::Lock { reason } => c.set_lock(&ctx, &id, true, reason, rid).await?,
        ServerAction::Unlock => c.set_lock(&ctx, &id, false, None, rid).await?,
        ServerAction::AddSecurityGroup { name } => c.change_security_group(&ctx, &id, &name, true).await?,
        ServerAction::RemoveSecurityGroup { name } => c.change_security_group(&ctx, &id, &name, false).await?,
        ServerAction::GetConsoleOutput { length } => {
            let output = c.console_output(&ctx, &id, length).await?;
            return Ok((StatusCode::OK, Json(json!({"output": printable(&output)}))).into_response());
        }
        ServerAction::ResetState { state } => {
            let vm = match state {
                ResetStateTarget::Active => VmState::Active,
                ResetStateTarget::Error => VmState::Error,
            };
            c.reset_state(&ctx, &id, vm, rid).await?
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Console text as Nova hands it out: control characters other than tab and
/// newline (the serial console's carriage returns, escape sequences) removed.
fn printable(text: &str) -> String {
    text.chars().filter(|&c| c == '\t' || c == '\n' || !(c < ' ' || c == '\u{7f}')).collect()
}

/// What `createImage` and `createBackup` ask for.
struct Snapshot {
    name: String,
    metadata: std::collections::BTreeMap<String, String>,
    backup: Option<BackupRotation>,
}

/// Start a snapshot (or backup) of server `id` and answer as Nova does:
/// 202 with the image's `Location` (below 2.45) or `{"image_id"}` (2.45+).
/// As Nova's API does, the image exists before the 202: a client that
/// follows the Location at once finds it (the operation's own, idempotent
/// record of it then finds this one).
async fn snapshot_answer(
    st: &AppState,
    ctx: &stratus_auth::AuthContext,
    id: &str,
    rid: &str,
    mv: stratus_api::Microversion,
    snap: Snapshot,
) -> Result<Response, ApiError> {
    let c = &st.compute;
    let image_id = stratus_types::ImageId::new();
    let props = snap.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let action =
        Action::CreateImage { name: snap.name.clone(), metadata: snap.metadata, image_id, backup: snap.backup };
    c.action(ctx, id, action, rid).await?;
    let server = c.get_visible(ctx, id).await?;
    let spec = stratus_image::SnapshotSpec {
        id: image_id,
        name: snap.name,
        owner_project_id: server.project_id.clone(),
        server_id: server.id,
        base_image_ref: server.image_id,
        min_disk: server.disk_gb,
        metadata: props,
    };
    let _ = st.images.create_snapshot_record(&spec).await?;
    let (body, location) = stratus_api::compute::views::create_image_answer(&st.public_url, &image_id.to_string(), mv);
    let mut resp = match body {
        Some(b) => (StatusCode::ACCEPTED, Json(b)).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    };
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}
