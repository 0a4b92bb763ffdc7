//! Placement: the host with the most free RAM among hosts that are up and
//! enabled, in the server's availability zone if it asked for one, and have
//! room for the flavor. Serialised in-process so two builds
//! never both take the last slot of a host.

use crate::controller::Shared;
use stratus_db::{DbError, ServerRow, ServiceRow};

/// Pick a host for `server`, excluding `exclude`. `None`: no valid host.
pub(crate) async fn pick(s: &Shared, server: &ServerRow, exclude: &[String]) -> Result<Option<ServiceRow>, DbError> {
    let zone = server.availability_zone.as_deref();
    s.ds.service_pick(server.vcpus, server.ram_mb, server.disk_gb + server.ephemeral_gb, zone, exclude).await
}

/// [`pick`] restricted to `only` when an admin named the destination (an
/// evacuation's or a cold migration's `host`): that host if it is up,
/// enabled and has room, else none (Nova's scheduler still checks a
/// requested host).
pub(crate) async fn pick_on(
    s: &Shared,
    server: &ServerRow,
    exclude: &[String],
    only: Option<&str>,
) -> Result<Option<ServiceRow>, DbError> {
    let Some(only) = only else { return pick(s, server, exclude).await };
    if exclude.iter().any(|e| e == only) {
        return Ok(None);
    }
    let others: Vec<String> = s.ds.service_list().await?.into_iter().map(|r| r.host).filter(|h| h != only).collect();
    pick(s, server, &others).await
}
