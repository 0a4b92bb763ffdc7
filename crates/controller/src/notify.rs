//! Versioned notifications: recorded once in the outbox (dedup key), then
//! relayed to the bus on `notifications.<event_type>`.

use crate::controller::Shared;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use stratus_db::{Datastore, DbError, ServerRow, ts};
use tokio::sync::watch;
use tracing::warn;

/// Build (without recording) the notification `event_type` about `server`.
pub(crate) fn build(
    ds: &Datastore,
    server: &ServerRow,
    op_id: &stratus_types::OperationId,
    event_type: &str,
    publisher: &str,
) -> stratus_db::NewNotification {
    let state = if event_type == "instance.delete.end" {
        stratus_types::VmState::Deleted.as_str()
    } else {
        server.vm_state.as_str()
    };
    let payload = payload(ds, server, event_type, publisher, state);
    stratus_db::NewNotification {
        dedup_key: format!("{}:{}:{}", server.id, op_id, event_type),
        event_type: event_type.to_string(),
        publisher_id: publisher.to_string(),
        payload,
    }
}

/// Record `event_type` about `server` for operation `op_id`, once.
pub(crate) async fn record(
    ds: &Datastore,
    server: &ServerRow,
    op_id: &stratus_types::OperationId,
    event_type: &str,
    publisher: &str,
) -> Result<bool, DbError> {
    let n = build(ds, server, op_id, event_type, publisher);
    ds.notification_record(&n.dedup_key, &n.event_type, &n.publisher_id, &n.payload).await
}

/// Nova's versioned notification envelope around an `InstanceActionPayload`,
/// written straight from the row: the JSON tree it replaced cost two dozen
/// allocations per notification, two notifications per delete.
#[derive(Serialize)]
struct Envelope<'a> {
    priority: &'static str,
    event_type: &'a str,
    timestamp: String,
    publisher_id: &'a str,
    message_id: uuid::fmt::Hyphenated,
    payload: Versioned<'a>,
}

/// The `nova_object` wrapper Nova's notification consumers expect.
#[derive(Serialize)]
struct Versioned<'a> {
    #[serde(rename = "nova_object.name")]
    name: &'static str,
    #[serde(rename = "nova_object.namespace")]
    namespace: &'static str,
    #[serde(rename = "nova_object.version")]
    version: &'static str,
    #[serde(rename = "nova_object.data")]
    data: ActionData<'a>,
}

/// The fields of Nova's `InstanceActionPayload` that Stratus records.
#[derive(Serialize)]
struct ActionData<'a> {
    uuid: &'a stratus_types::ServerId,
    display_name: &'a str,
    tenant_id: &'a str,
    user_id: &'a str,
    host: &'a Option<String>,
    state: &'a str,
    task_state: &'a Option<stratus_types::TaskState>,
    power_state: &'static str,
    image_uuid: &'a Option<stratus_types::ImageId>,
    flavor: Flavor<'a>,
    created_at: String,
    launched_at: Option<String>,
    deleted_at: Option<String>,
    fault: Option<serde_json::Value>,
}

/// The flavor as the payload carries it (Nova's `FlavorPayload`, in short).
#[derive(Serialize)]
struct Flavor<'a> {
    flavorid: &'a str,
    name: &'a str,
    vcpus: i64,
    memory_mb: i64,
    root_gb: i64,
}

fn payload(ds: &Datastore, server: &ServerRow, event_type: &str, publisher: &str, state: &str) -> String {
    let envelope = Envelope {
        priority: if event_type.ends_with(".error") { "ERROR" } else { "INFO" },
        event_type,
        timestamp: ts(ds.clock().now()),
        publisher_id: publisher,
        message_id: uuid::Uuid::new_v4().hyphenated(),
        payload: Versioned {
            name: "InstanceActionPayload",
            namespace: "nova",
            version: "1.8",
            data: ActionData {
                uuid: &server.id,
                display_name: &server.name,
                tenant_id: &server.project_id,
                user_id: &server.user_id,
                host: &server.host,
                state,
                task_state: &server.task_state,
                power_state: server.power_state.nova_name(),
                image_uuid: &server.image_id,
                flavor: Flavor {
                    flavorid: &server.flavor_id,
                    name: &server.flavor_name,
                    vcpus: server.vcpus,
                    memory_mb: server.ram_mb,
                    root_gb: server.disk_gb,
                },
                created_at: ts(server.created_at),
                launched_at: server.launched_at.map(ts),
                deleted_at: server.deleted_at.map(ts),
                fault: server.fault.as_deref().and_then(|f| serde_json::from_str(f).ok()),
            },
        },
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// Publish recorded notifications in order; at-least-once on the bus.
pub(crate) async fn relay(s: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        // One relay in the cloud: the leader's (else every controller would
        // publish each notification).
        let pending = if s.leader_fence().is_some() { s.ds.notification_pending(500).await } else { Ok(vec![]) };
        match pending {
            Ok(rows) if !rows.is_empty() => {
                let mut done = Vec::with_capacity(rows.len());
                for r in rows {
                    let subject = format!("notifications.{}", r.event_type);
                    match s.bus.publish(&subject, Bytes::from(r.payload)).await {
                        Ok(()) => done.push(r.id),
                        Err(e) => {
                            warn!(error = %e, "cannot publish notifications; will retry");
                            break;
                        }
                    }
                }
                if let Err(e) = s.ds.notification_mark_published(&done).await {
                    warn!(error = %e, "cannot mark notifications published");
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot read the notification outbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
