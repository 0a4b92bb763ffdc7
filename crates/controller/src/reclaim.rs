//! Periodic reconcilers of the server lifecycle: reclaim soft-deleted
//! servers after `reclaim_instance_interval` (Nova's
//! `_reclaim_queued_deletes`, but central, so a dead host does not stop it),
//! and offload shelved servers after `shelved_offload_time`.

use crate::controller::Shared;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use stratus_db::{NewOperation, OpStart, Transition};
use stratus_types::agent::SUBJECT_OPS_WAKE;
use stratus_types::{OpKind, ServerId, TaskState};
use tokio::sync::watch;
use tracing::{info, warn};

pub(crate) async fn run(s: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        // Reclaim and the storage reconciler are the leader's duties.
        if s.leader_fence().is_some() {
            if let Err(e) = pass(&s).await {
                warn!(error = %e, "reclaim pass failed; next pass retries");
            }
            if let Err(e) = crate::storage::reconcile(&s).await {
                warn!(error = %e, "storage cleanup pass failed; next pass retries");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn system_op(kind: OpKind, server_id: &ServerId, project_id: &str) -> NewOperation {
    NewOperation {
        id: stratus_types::OperationId::new(),
        kind,
        server_id: *server_id,
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        user_id: "stratus-controller".into(),
        project_id: project_id.to_string(),
        params: "{}".into(),
    }
}

async fn pass(s: &Shared) -> Result<(), stratus_db::DbError> {
    let now = s.ds.clock().now();
    if !s.cfg.reclaim_instance_interval.is_zero() {
        let interval = chrono::Duration::from_std(s.cfg.reclaim_instance_interval).unwrap_or_default();
        for server in s.ds.server_list_reclaimable(now - interval).await? {
            let o = system_op(OpKind::Delete, &server.id, &server.project_id);
            if let OpStart::Created(op) = s.ds.server_begin_delete(&o).await? {
                info!(server = %server.id, "reclaiming a soft-deleted server");
                let _ = s.bus.publish(SUBJECT_OPS_WAKE, Bytes::from(op.id.to_string())).await;
            }
        }
    }
    if let Some(after) = s.cfg.shelved_offload_time.filter(|t| !t.is_zero()) {
        let cutoff = now - chrono::Duration::from_std(after).unwrap_or_default();
        for server in s.ds.server_list_shelved_before(cutoff).await? {
            let o = system_op(OpKind::ShelveOffload, &server.id, &server.project_id);
            let t = Transition {
                from_vm: vec![stratus_types::VmState::Shelved],
                from_task: Some(None),
                task: Some(Some(TaskState::ShelvingOffloading)),
                ..Default::default()
            };
            if let Ok(OpStart::Created(op)) = s.ds.op_start(&o, "shelveOffload", Some(&t)).await {
                info!(server = %server.id, "offloading a shelved server");
                let _ = s.bus.publish(SUBJECT_OPS_WAKE, Bytes::from(op.id.to_string())).await;
            }
        }
    }
    Ok(())
}
