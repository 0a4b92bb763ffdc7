//! Agents' side of liveness that any controller serves: join (new epoch) and
//! inventory. Lease renewals and convictions are the leader's (see
//! [`crate::leases`]).

use crate::controller::Shared;
use bytes::Bytes;
use chrono::Duration as ChronoDuration;
use std::sync::Arc;
use std::time::Duration;
use stratus_bus::{BusError, reply};
use stratus_db::HostCapacity;
use stratus_types::agent::*;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The NATS queue group of the controllers' agent-facing services.
const AGENT_SERVICE_GROUP: &str = "stratus-controllers";

fn chrono(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::seconds(10))
}

/// Subscribe to the agent-facing subjects and serve them while this
/// controller reaches the database.
pub(crate) async fn serve_agents(s: Arc<Shared>, shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
    let served = subscribe_agents(&s).await?;
    tokio::spawn(follow_database(s, served, shutdown));
    Ok(())
}

/// Leave the agents' queue group while the database is unreachable and join
/// it again once it answers. NATS hands each request of a queue group to any
/// member: one that cannot record a join or read an inventory would only
/// keep the agent waiting until its request times out, while the other
/// controllers could have served it. When no controller reaches the database, the agents get "no
/// responders" at once (nothing could be recorded anyway).
async fn follow_database(s: Arc<Shared>, served: Vec<JoinHandle<()>>, mut shutdown: watch::Receiver<bool>) {
    let mut served = Some(served);
    let mut reachable = s.db_reachable.clone();
    loop {
        let ok = *reachable.borrow_and_update();
        if !ok && let Some(tasks) = served.take() {
            // Dropping the subscriptions (with their tasks) leaves the group.
            for t in tasks {
                t.abort();
            }
            warn!("database unreachable: leaving the agents' queue group to the other controllers");
        } else if ok && served.is_none() {
            match subscribe_agents(&s).await {
                Ok(tasks) => {
                    served = Some(tasks);
                    info!("database reachable: serving agents again");
                }
                Err(e) => {
                    warn!(error = %e, "cannot subscribe to the agents' subjects; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
        tokio::select! {
            r = reachable.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// Subscribe to the agent-facing subjects; the tasks serving them (each
/// owns its subscription: aborting it unsubscribes).
async fn subscribe_agents(s: &Arc<Shared>) -> Result<Vec<JoinHandle<()>>, BusError> {
    // A queue group: with several controllers, each join and inventory is
    // handled by one of them (a join handled twice would bump the host's
    // epoch twice and strand the agent on a stale one).
    let mut join = s.bus.queue_subscribe(SUBJECT_JOIN, AGENT_SERVICE_GROUP).await?;
    let mut inv = s.bus.queue_subscribe(SUBJECT_INVENTORY, AGENT_SERVICE_GROUP).await?;
    let s1 = s.clone();
    let joins = tokio::spawn(async move {
        while let Some(m) = join.next().await {
            let Ok(req) = serde_json::from_slice::<JoinRequest>(&m.payload) else { continue };
            let cap = HostCapacity { vcpus: req.vcpus, memory_mb: req.memory_mb, disk_gb: req.disk_gb };
            if s1.ds.service_get_by_host(&req.host).await.is_ok_and(|svc| svc.forced_down) {
                // Out of the cluster until an operator lets it back; the agent retries.
                let refusal = serde_json::json!({"refused": "host is forced down"}).to_string();
                let _ = reply(s1.bus.as_ref(), &m, Bytes::from(refusal)).await;
                continue;
            }
            match s1.ds.service_join(&req.host, cap, chrono(s1.cfg.lease_ttl)).await {
                Ok(row) => {
                    if let Some(table) = s1.lease_table() {
                        // Leading: the new epoch's lease is held from here.
                        table.admit(&row.host, row.epoch, row.lease_expires_at.unwrap_or_else(|| s1.ds.clock().now()));
                    }
                    s1.metrics.host_joined();
                    info!(host = %req.host, epoch = row.epoch, "host joined");
                    let r = JoinReply {
                        epoch: row.epoch,
                        lease_ttl_ms: s1.cfg.lease_ttl.as_millis() as u64,
                        renew_interval_ms: s1.cfg.lease_renew_interval.as_millis() as u64,
                    };
                    let _ = reply(s1.bus.as_ref(), &m, Bytes::from(serde_json::to_vec(&r).unwrap_or_default())).await;
                }
                Err(e) => warn!(host = %req.host, error = %e, "join failed"),
            }
        }
    });
    let s3 = s.clone();
    let inventories = tokio::spawn(async move {
        while let Some(m) = inv.next().await {
            let Ok(req) = serde_json::from_slice::<InventoryRequest>(&m.payload) else { continue };
            for f in &req.self_fenced {
                match record_self_fence(&s3, &req.host, f).await {
                    Ok(true) => s3.metrics.fenced(stratus_metrics::FenceKind::SelfFence, 1),
                    Ok(false) => {}
                    Err(e) => warn!(host = %req.host, server = %f.server_id, error = %e, "cannot record a self-fence"),
                }
            }
            // The open storage clients first: a fence is lifted only once its
            // client is reported gone, and the zombies cleared below are the
            // other half of that condition.
            if let (Some(epoch), Some(clients)) = (req.epoch, &req.clients)
                && let Err(e) = s3.ds.host_clients_report(&req.host, epoch, clients).await
            {
                warn!(host = %req.host, error = %e, "cannot record the host's open storage clients");
            }
            match s3.ds.zombie_clear_absent(&req.host, &req.vms).await {
                Ok(cleared) => {
                    for z in cleared {
                        info!(host = %req.host, server = %z, "zombie VM confirmed gone; host capacity released");
                    }
                }
                Err(e) => warn!(host = %req.host, error = %e, "cannot clear zombies"),
            }
            match s3.ds.server_ids_on_host(&req.host).await {
                Ok(servers) => {
                    let _ = reply(
                        s3.bus.as_ref(),
                        &m,
                        Bytes::from(serde_json::to_vec(&InventoryReply { servers }).unwrap_or_default()),
                    )
                    .await;
                }
                Err(e) => warn!(host = %req.host, error = %e, "inventory failed"),
            }
        }
    });
    Ok(vec![joins, inventories])
}

/// Name of the instance-action event that records a host watchdog's kill.
const EV_SELF_FENCE: &str = "compute_self_fence";

/// Record on the server's instance action (its delete, else its latest
/// action) that the host watchdog paused and killed its VM, and which fence
/// acted first: the watchdog's, or the controller's storage fence. Once per
/// action: hosts report the kill at every reconcile until the VM is gone.
/// `true` when this report was the one recorded.
async fn record_self_fence(s: &Shared, host: &str, f: &SelfFence) -> Result<bool, stratus_db::DbError> {
    let actions = s.ds.action_list(&f.server_id).await?;
    let Some(action) = actions.iter().find(|a| a.action == "delete").or(actions.first()) else { return Ok(false) };
    let (_, events) = s.ds.action_get(&f.server_id, &action.request_id).await?;
    // A finished event only: a controller that died between the start and
    // the finish must finish it on the next report.
    if events.iter().any(|e| e.event == EV_SELF_FENCE && e.finish_time.is_some()) {
        return Ok(false);
    }
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(f.at_unix_ms).unwrap_or_default();
    let order = match events.iter().find(|e| e.event == "controller_fence_storage").and_then(|e| e.finish_time) {
        Some(storage) if storage < at => format!("the storage fence acted first (at {})", storage.to_rfc3339()),
        Some(storage) => format!("the self-fence acted first (storage fence at {})", storage.to_rfc3339()),
        None => "no storage fence was needed".to_string(),
    };
    let details = format!("host watchdog paused and killed the VM at {}; {order}", at.to_rfc3339());
    s.ds.event_start(&f.server_id, &action.request_id, EV_SELF_FENCE, Some(host)).await?;
    s.ds.event_finish(&f.server_id, &action.request_id, EV_SELF_FENCE, true, &details).await?;
    info!(host, server = %f.server_id, %details, "self-fence recorded");
    Ok(true)
}
