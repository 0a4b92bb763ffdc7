//! Hypervisors (`/os-hypervisors`) and the legacy host API (`/os-hosts`,
//! before 2.43): the admin's view of each compute host's capacity and use,
//! computed from the service rows (capacity reported at join) and the live
//! servers and zombies placed on them (what placement counts).

use super::{ComputeApi, ComputeError};
use std::collections::HashMap;
use stratus_auth::AuthContext;
use stratus_db::{ServerBrief, ServerFilter, ServiceRow};

/// One compute host as a hypervisor.
#[derive(Clone, Debug)]
pub struct Hypervisor {
    /// The host's service row (capacity, state, operator flags).
    pub service: ServiceRow,
    /// Lease valid and not forced down.
    pub up: bool,
    /// vCPUs in use (servers, zombies, moves' source allocations).
    pub vcpus_used: i64,
    /// RAM MiB in use.
    pub memory_mb_used: i64,
    /// Disk GiB in use.
    pub local_gb_used: i64,
    /// Live servers on the host.
    pub running_vms: i64,
    /// Servers on the host with a task running.
    pub current_workload: i64,
}

/// Totals over every hypervisor (`/os-hypervisors/statistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypervisorTotals {
    /// Hypervisors counted.
    pub count: i64,
    /// vCPUs.
    pub vcpus: i64,
    /// vCPUs in use.
    pub vcpus_used: i64,
    /// RAM MiB.
    pub memory_mb: i64,
    /// RAM MiB in use.
    pub memory_mb_used: i64,
    /// Disk GiB.
    pub local_gb: i64,
    /// Disk GiB in use.
    pub local_gb_used: i64,
    /// Live servers.
    pub running_vms: i64,
    /// Servers with a task running.
    pub current_workload: i64,
}

/// What `/os-hosts/{host}` shows: the host's capacity, its use now, and its
/// use per project.
#[derive(Clone, Debug)]
pub struct HostResources {
    /// The hypervisor.
    pub hypervisor: Hypervisor,
    /// (project, vCPUs, RAM MiB, disk GiB) of the live servers on the host.
    pub projects: Vec<(String, i64, i64, i64)>,
}

/// A legacy `PUT /os-hosts/{host}` change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostUpdate {
    /// `status`: enable or disable scheduling to the host.
    Status(bool),
    /// `maintenance_mode`: not offered (Nova's libvirt driver does not either).
    Maintenance,
}

impl ComputeApi {
    pub(super) fn require_admin(ctx: &AuthContext, rule: &str) -> Result<(), ComputeError> {
        if ctx.is_admin() {
            Ok(())
        } else {
            Err(ComputeError::Forbidden(format!("Policy doesn't allow {rule} to be performed.")))
        }
    }

    /// Every compute host as a hypervisor, oldest first (admin).
    pub async fn hypervisors(&self, ctx: &AuthContext) -> Result<Vec<Hypervisor>, ComputeError> {
        Self::require_admin(ctx, "os_compute_api:os-hypervisors:list")?;
        let used: HashMap<String, (i64, i64, i64)> =
            self.ds.host_usage().await?.into_iter().map(|(h, c, r, d)| (h, (c, r, d))).collect();
        let counts: HashMap<String, (i64, i64)> =
            self.ds.host_server_counts().await?.into_iter().map(|(h, n, busy)| (h, (n, busy))).collect();
        let mut out: Vec<Hypervisor> = self
            .ds
            .service_list()
            .await?
            .into_iter()
            .map(|s| {
                let (vcpus_used, memory_mb_used, local_gb_used) = used.get(&s.host).copied().unwrap_or_default();
                let (running_vms, current_workload) = counts.get(&s.host).copied().unwrap_or_default();
                let up = s.is_up();
                Hypervisor { service: s, up, vcpus_used, memory_mb_used, local_gb_used, running_vms, current_workload }
            })
            .collect();
        out.sort_by_key(|h| h.service.id);
        Ok(out)
    }

    /// One hypervisor by id: the service's integer id before 2.53 (other
    /// text: 404, as Nova), its UUID from 2.53 (`by_uuid`; text that is not
    /// a UUID: 400 "Invalid uuid", as Nova). Unknown: 404 with Nova's message.
    pub async fn hypervisor(&self, ctx: &AuthContext, id: &str, by_uuid: bool) -> Result<Hypervisor, ComputeError> {
        let all = self.hypervisors(ctx).await?;
        if by_uuid && uuid::Uuid::parse_str(id).is_err() {
            return Err(ComputeError::BadRequest(format!("Invalid uuid {id}")));
        }
        all.into_iter()
            .find(|h| if by_uuid { h.service.uuid.eq_ignore_ascii_case(id) } else { h.service.id.to_string() == id })
            .ok_or_else(|| ComputeError::HypervisorNotFound(id.to_string()))
    }

    /// Hypervisors whose host name contains `pattern` (search and servers
    /// routes); none is a 404, as Nova.
    pub async fn hypervisors_matching(
        &self,
        ctx: &AuthContext,
        pattern: &str,
    ) -> Result<Vec<Hypervisor>, ComputeError> {
        let found: Vec<Hypervisor> =
            self.hypervisors(ctx).await?.into_iter().filter(|h| h.service.host.contains(pattern)).collect();
        if found.is_empty() {
            return Err(ComputeError::NoHypervisorMatching(pattern.to_string()));
        }
        Ok(found)
    }

    /// The live servers on a host (the hypervisor servers route).
    pub async fn servers_on_host(&self, host: &str) -> Result<Vec<ServerBrief>, ComputeError> {
        let f = ServerFilter { host: Some(host.to_string()), ..Default::default() };
        Ok(self.ds.server_list_brief(&f).await?)
    }

    /// Sums over every hypervisor.
    pub async fn hypervisor_totals(&self, ctx: &AuthContext) -> Result<HypervisorTotals, ComputeError> {
        Self::require_admin(ctx, "os_compute_api:os-hypervisors:statistics")?;
        let mut t = HypervisorTotals::default();
        for h in self.hypervisors(ctx).await? {
            t.count += 1;
            t.vcpus += h.service.vcpus;
            t.vcpus_used += h.vcpus_used;
            t.memory_mb += h.service.memory_mb;
            t.memory_mb_used += h.memory_mb_used;
            t.local_gb += h.service.disk_gb;
            t.local_gb_used += h.local_gb_used;
            t.running_vms += h.running_vms;
            t.current_workload += h.current_workload;
        }
        Ok(t)
    }

    /// `GET /os-hosts/{host}` (admin): 404 "Compute host X could not be found."
    pub async fn host_resources(&self, ctx: &AuthContext, host: &str) -> Result<HostResources, ComputeError> {
        Self::require_admin(ctx, "os_compute_api:os-hosts:show")?;
        let hypervisor = self.host_hypervisor(ctx, host).await?;
        let f = ServerFilter { host: Some(host.to_string()), ..Default::default() };
        let mut per: HashMap<String, (i64, i64, i64)> = HashMap::new();
        for s in self.ds.server_list(&f).await? {
            let e = per.entry(s.project_id.clone()).or_default();
            e.0 += s.vcpus;
            e.1 += s.ram_mb;
            e.2 += s.disk_gb + s.ephemeral_gb;
        }
        let mut projects: Vec<(String, i64, i64, i64)> = per.into_iter().map(|(p, (c, r, d))| (p, c, r, d)).collect();
        projects.sort();
        Ok(HostResources { hypervisor, projects })
    }

    async fn host_hypervisor(&self, ctx: &AuthContext, host: &str) -> Result<Hypervisor, ComputeError> {
        self.hypervisors(ctx)
            .await?
            .into_iter()
            .find(|h| h.service.host == host)
            .ok_or_else(|| ComputeError::ComputeHostNotFound(host.to_string()))
    }

    /// `PUT /os-hosts/{host}` (admin): `status` enables or disables the
    /// host's service; maintenance mode is not offered (501). `change` is
    /// the parsed body or why it was refused (the policy and the host are
    /// checked first).
    pub async fn update_host(
        &self,
        ctx: &AuthContext,
        host: &str,
        change: Result<HostUpdate, String>,
    ) -> Result<bool, ComputeError> {
        Self::require_admin(ctx, "os_compute_api:os-hosts:update")?;
        let h = self.host_hypervisor(ctx, host).await?;
        match change.map_err(ComputeError::BadRequest)? {
            HostUpdate::Status(enabled) => {
                self.ds.service_update(&h.service.uuid, Some(!enabled), Some(None), None).await?;
                tracing::info!(host, enabled, by = %ctx.user_id, "operator changed the host's status (os-hosts)");
                Ok(enabled)
            }
            HostUpdate::Maintenance => Err(ComputeError::NotImplemented(
                "Maintenance mode is not offered: disable the host's service and migrate its servers instead.".into(),
            )),
        }
    }

    /// `GET /os-hosts/{host}/{startup|shutdown|reboot}` (admin): a 404 for an
    /// unknown host, else 501 (Stratus does not power hosts on or off; nor
    /// does Nova's libvirt driver).
    pub async fn host_power_action(&self, ctx: &AuthContext, host: &str) -> Result<(), ComputeError> {
        Self::require_admin(ctx, "os_compute_api:os-hosts:start")?;
        self.host_hypervisor(ctx, host).await?;
        Err(ComputeError::NotImplemented("Host power actions are not offered by this cloud.".into()))
    }

    /// The in-progress live migrations of a server (admin, Nova's
    /// `os-server-migrations` policies; another project's server is 404
    /// first): none ever, as Stratus offers no live migration.
    pub async fn live_migrations(&self, ctx: &AuthContext, id: &str) -> Result<(), ComputeError> {
        self.get_visible(ctx, id).await?;
        Self::require_admin(ctx, "os_compute_api:servers:migrations:index")
    }
}
