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
