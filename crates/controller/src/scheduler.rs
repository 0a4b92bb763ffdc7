//! Placement: the host with the most free RAM among hosts that are up and
//! enabled and have room for the flavor. Serialised in-process so two builds
//! never both take the last slot of a host.

use crate::controller::Shared;
use std::collections::HashMap;
use stratus_db::{DbError, ServerRow, ServiceRow};

/// Pick a host for `server`, excluding `exclude`. `None`: no valid host.
pub(crate) async fn pick(s: &Shared, server: &ServerRow, exclude: &[String]) -> Result<Option<ServiceRow>, DbError> {
    let now = s.ds.clock().now();
    let usage: HashMap<String, (i64, i64, i64)> =
        s.ds.host_usage().await?.into_iter().map(|(h, c, r, d)| (h, (c, r, d))).collect();
    let mut best: Option<(i64, ServiceRow)> = None;
    for svc in s.ds.service_list().await? {
        if svc.disabled || !svc.is_up(now) || exclude.contains(&svc.host) {
            continue;
        }
        let (c, r, d) = usage.get(&svc.host).copied().unwrap_or((0, 0, 0));
        let free_ram = svc.memory_mb - r;
        let fits = svc.vcpus - c >= server.vcpus
            && free_ram >= server.ram_mb
            && svc.disk_gb - d >= server.disk_gb + server.ephemeral_gb;
        if fits && best.as_ref().is_none_or(|(f, _)| free_ram > *f) {
            best = Some((free_ram, svc));
        }
    }
    Ok(best.map(|(_, s)| s))
}
