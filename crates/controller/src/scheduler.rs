//! Placement: the host with the most free RAM among hosts that are up and
//! enabled, in the server's availability zone if it asked for one, and have
//! room for the flavor. Serialised in-process so two builds
//! never both take the last slot of a host.

use crate::controller::Shared;
use stratus_db::{DbError, ServerRow, ServiceRow};

/// Pick a host for `server`, excluding `exclude`, and only `only` when an
/// admin asked for that host (2.74). `None`: no valid host.
pub(crate) async fn pick(
    s: &Shared,
    server: &ServerRow,
    exclude: &[String],
    only: Option<&str>,
) -> Result<Option<ServiceRow>, DbError> {
    let zone = server.availability_zone.as_deref();
    let mut exclude = exclude.to_vec();
    if let Some(only) = only {
        exclude.extend(s.ds.service_list().await?.into_iter().map(|svc| svc.host).filter(|h| h != only));
    }
    s.ds.service_pick(server.vcpus, server.ram_mb, server.disk_gb + server.ephemeral_gb, zone, &exclude).await
}
