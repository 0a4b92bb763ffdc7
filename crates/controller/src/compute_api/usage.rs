//! Simple tenant usage (`/os-simple-tenant-usage`): what each server of a
//! project used over a period, in Nova's units (hours of uptime inside the
//! period times its vCPUs, RAM and disk), computed from the servers' launch
//! and termination times, deleted servers included.

use super::{ComputeApi, ComputeError};
use chrono::{DateTime, NaiveDateTime, Utc};
use stratus_auth::AuthContext;
use stratus_db::ServerRow;

/// One server's use over the period.
#[derive(Clone, Debug)]
pub struct ServerUsage {
    /// The server (as stored; deleted ones too).
    pub server: ServerRow,
    /// Hours it ran inside the period.
    pub hours: f64,
    /// Seconds from its launch to its termination (or to now).
    pub uptime: i64,
}

/// One project's use over the period.
#[derive(Clone, Debug)]
pub struct TenantUsage {
    /// The project.
    pub project_id: String,
    /// Its servers' use.
    pub servers: Vec<ServerUsage>,
}

impl TenantUsage {
    /// Sum of hours.
    pub fn total_hours(&self) -> f64 {
        self.servers.iter().map(|s| s.hours).sum()
    }

    /// Sum of hours × `f(server)`.
    pub fn total_of(&self, f: impl Fn(&ServerRow) -> i64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        self.servers.iter().map(|s| s.hours * f(&s.server) as f64).sum()
    }
}

/// Parse a `start`/`end` parameter in one of Nova's three formats; absent
/// means now.
pub fn usage_time(v: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, ComputeError> {
    let Some(v) = v else { return Ok(now) };
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    Err(ComputeError::BadRequest("Invalid input received: Datetime is in invalid format".into()))
}

/// One page of usage (2.40): Nova pages the servers the usage is counted
/// from (`marker` a server id, in the report's order), then groups them by
/// project. Also the `marker` of the next page when this one is full.
pub fn page_usage(
    all: Vec<TenantUsage>,
    page: &stratus_api::compute::Page,
) -> Result<(Vec<TenantUsage>, Option<String>), ComputeError> {
    let flat: Vec<ServerUsage> = all.into_iter().flat_map(|t| t.servers).collect();
    let paged = page.apply(flat, |u| u.server.id.to_string()).map_err(|e| ComputeError::BadRequest(e.to_string()))?;
    let next = if page.is_full(paged.len()) { paged.last().map(|u| u.server.id.to_string()) } else { None };
    let mut out: Vec<TenantUsage> = Vec::new();
    for u in paged {
        match out.last_mut() {
            Some(t) if t.project_id == u.server.project_id => t.servers.push(u),
            _ => out.push(TenantUsage { project_id: u.server.project_id.clone(), servers: vec![u] }),
        }
    }
    Ok((out, next))
}

impl ComputeApi {
    /// Usage of one project (`tenant_id`: PROJECT_READER_OR_ADMIN, another
    /// project's is 403 as Nova) or, with `None`, of every project (admin),
    /// over `[start, end)`.
    pub async fn tenant_usage(
        &self,
        ctx: &AuthContext,
        project: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<TenantUsage>, ComputeError> {
        match project {
            None if !ctx.is_admin() => {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.".into(),
                ));
            }
            Some(p) if !ctx.can_see(p) => {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.".into(),
                ));
            }
            _ => {}
        }
        if start >= end {
            return Err(ComputeError::BadRequest(
                "Invalid start time. The start time cannot occur after the end time.".into(),
            ));
        }
        let now = self.ds.clock().now();
        let mut out: Vec<TenantUsage> = Vec::new();
        for s in self.ds.server_list_ran_between(project, start, end).await? {
            let Some(launched) = s.launched_at else { continue };
            let from = launched.max(start);
            let to = s.terminated_at.unwrap_or(end).min(end);
            #[allow(clippy::cast_precision_loss)]
            let hours = (to - from).num_milliseconds().max(0) as f64 / 3_600_000.0;
            let uptime = (s.terminated_at.unwrap_or(now) - launched).num_seconds().max(0);
            let u = ServerUsage { server: s, hours, uptime };
            match out.last_mut() {
                Some(t) if t.project_id == u.server.project_id => t.servers.push(u),
                _ => out.push(TenantUsage { project_id: u.server.project_id.clone(), servers: vec![u] }),
            }
        }
        Ok(out)
    }
}
