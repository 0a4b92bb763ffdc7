//! Server delete: the one entry of the delete path. Soft delete (a launched
//! server on a live host, with reclaim configured) or the hard delete that the
//! delete operation carries out; a repeated delete re-drives the open one.

use super::{ComputeApi, ComputeError};
use stratus_auth::AuthContext;
use stratus_db::{DbError, NewOperation, OpStart, Transition};
use stratus_types::{ServerId, TaskState, VmState};
use tracing::info;

impl ComputeApi {
    /// `DELETE /servers/{id}`: record the intent (or re-drive the open delete) and return.
    pub async fn delete_server(&self, ctx: &AuthContext, id: &str, request_id: &str) -> Result<(), ComputeError> {
        self.delete_or_force(ctx, &ComputeError::parse_server_id(id)?, request_id, false).await
    }

    /// `forceDelete`: a hard delete in any state, soft-deleted included.
    pub async fn force_delete(&self, ctx: &AuthContext, id: &str, request_id: &str) -> Result<(), ComputeError> {
        self.delete_or_force(ctx, &ComputeError::parse_server_id(id)?, request_id, true).await
    }

    /// Shared by both deletes and by the undo of a multi-create.
    pub(super) async fn delete_or_force(
        &self,
        ctx: &AuthContext,
        id: &ServerId,
        request_id: &str,
        force: bool,
    ) -> Result<(), ComputeError> {
        let s = self.visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:servers:delete to be performed.".into(),
            ));
        }
        if s.locked && !ctx.is_admin() {
            return Err(ComputeError::Locked { id: id.to_string() });
        }
        if !force && !self.cfg.reclaim_instance_interval.is_zero() && s.task_state != Some(TaskState::Deleting) {
            if s.vm_state == VmState::SoftDeleted {
                return Ok(()); // already soft-deleted: forceDelete or reclaim finishes it
            }
            // Nova soft-deletes launched servers on a live host; never-launched
            // ones, and servers on a down host, are deleted for real.
            let host_up = match &s.host {
                Some(h) => self.host_is_up(h).await,
                None => false,
            };
            if s.launched_at.is_some() && host_up && s.task_state.is_none() {
                let t = Transition {
                    from_task: Some(None),
                    task: Some(Some(TaskState::SoftDeleting)),
                    ..Default::default()
                };
                let o = NewOperation {
                    id: stratus_types::OperationId::new(),
                    kind: stratus_types::OpKind::SoftDelete,
                    server_id: s.id,
                    request_id: request_id.to_string(),
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id.clone(),
                    params: crate::params::encode(&crate::params::NoParams {}),
                };
                match self.ds.op_start(&o, "delete", Some(&t)).await {
                    Ok(OpStart::Created(op)) | Ok(OpStart::Existing(op)) => {
                        self.wake(&op.id).await;
                        return Ok(());
                    }
                    Err(DbError::Conflict { .. }) => {} // raced with another change: hard delete
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let o = NewOperation {
            id: stratus_types::OperationId::new(),
            kind: stratus_types::OpKind::Delete,
            server_id: s.id,
            request_id: request_id.to_string(),
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            params: crate::params::encode(&crate::params::NoParams {}),
        };
        stratus_types::faults::fault_point("api:before:delete");
        let started = self.ds.server_begin_delete(&o).await;
        stratus_types::faults::fault_point("api:after:delete");
        match started {
            Ok(OpStart::Created(op)) => {
                info!(server = %id, op = %op.id, request = request_id, "delete recorded");
                self.wake(&op.id).await;
            }
            Ok(OpStart::Existing(op)) => {
                info!(server = %id, op = %op.id, request = request_id, "repeated delete: re-driving the open operation");
                self.wake(&op.id).await;
            }
            Err(DbError::NotFound { .. }) => return Err(ComputeError::instance_not_found(&id.to_string())),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
