//! Reads behind the compute views: flavors, servers with their ports and
//! volumes, instance actions, limits with usage, and zombies. Visibility rules
//! (which project, which filters an admin may use) are applied here, so a
//! handler only renders what it gets.

use super::{ComputeApi, ComputeError};
use std::collections::HashMap;
use stratus_auth::AuthContext;
use stratus_db::{
    ActionRow, DbError, EventRow, FlavorRow, PortRow, QuotaLimits, QuotaUsage, ServerBrief, ServerFilter, ServerRow,
    ZombieRow,
};
use stratus_types::{ServerId, VolumeId};

/// `GET /servers` filters: the wire type, parsed from the query string.
pub use stratus_api::compute::ServerListQuery as ServerQuery;

/// A page of servers; ports and volumes only when asked for (the index view
/// shows ids and names, and clients poll it).
#[derive(Clone, Debug, Default)]
pub struct ServerList {
    /// The servers, in list order.
    pub servers: Vec<ServerRow>,
    /// Ports by server id.
    pub ports: HashMap<ServerId, Vec<PortRow>>,
    /// Attached volume ids by server id.
    pub volumes: HashMap<ServerId, Vec<VolumeId>>,
    /// The page size asked for (for `servers_links`).
    pub limit: Option<i64>,
}

/// One server with what its view shows besides the row.
#[derive(Clone, Debug)]
pub struct ServerWithResources {
    /// The server.
    pub server: ServerRow,
    /// Its ports.
    pub ports: Vec<PortRow>,
    /// Ids of its attached volumes.
    pub volumes: Vec<VolumeId>,
}

/// Largest page of a server list (Nova's `api.max_limit`).
const MAX_PAGE: i64 = 1000;

/// `GET /limits`: what a project may use and what it uses.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Absolute limits.
    pub limits: QuotaLimits,
    /// Counted usage.
    pub usage: QuotaUsage,
}

impl ComputeApi {
    /// Create `flavor` unless a flavor with its id exists (start-up seeding of the standard sizes).
    pub async fn ensure_flavor(&self, flavor: &FlavorRow) -> Result<(), ComputeError> {
        Ok(self.ds.flavor_ensure(flavor).await?)
    }

    /// Servers matching the query that the caller may list; ports and
    /// volumes too when `with_resources` (the detailed view).
    pub async fn server_list(
        &self,
        ctx: &AuthContext,
        q: ServerQuery,
        with_resources: bool,
    ) -> Result<ServerList, ComputeError> {
        let f = self.list_filter(ctx, q).await?;
        let limit = f.limit;
        let servers = self.ds.server_list(&f).await?;
        let mut out = ServerList { limit, ..Default::default() };
        if with_resources {
            let ids: Vec<ServerId> = servers.iter().map(|r| r.id).collect();
            for p in self.ds.port_list_for_servers(&ids).await? {
                out.ports.entry(p.server_id).or_default().push(p);
            }
            for a in self.ds.attachment_list_for_servers(&ids).await? {
                out.volumes.entry(a.server_id).or_default().push(a.volume_id);
            }
        }
        out.servers = servers;
        Ok(out)
    }

    /// The index (`GET /servers`): id and name of the servers the caller
    /// may list, with the page size asked for (for `servers_links`).
    pub async fn server_list_brief(
        &self,
        ctx: &AuthContext,
        q: ServerQuery,
    ) -> Result<(Vec<ServerBrief>, Option<i64>), ComputeError> {
        let f = self.list_filter(ctx, q).await?;
        Ok((self.ds.server_list_brief(&f).await?, f.limit))
    }

    /// The datastore filter of a list request, with its policy applied.
    async fn list_filter(&self, ctx: &AuthContext, q: ServerQuery) -> Result<ServerFilter, ComputeError> {
        // A marker that is not a server id names no server: the same 400.
        let marker = match &q.marker {
            Some(m) => match ServerId::parse_canonical(m) {
                Some(id) if self.ds.server_exists(&id).await? => Some(id),
                _ => return Err(ComputeError::BadRequest(format!("marker [{m}] not found"))),
            },
            None => None,
        };
        let mut f = ServerFilter {
            project_id: Some(ctx.project_id.clone()),
            name: q.name,
            flavor_id: q.flavor,
            image_id: q.image,
            vm_states: q.vm_states,
            host: q.host,
            limit: q.limit,
            marker,
        };
        if q.all_tenants {
            if !ctx.is_admin() {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed.".into(),
                ));
            }
            f.project_id = q.project_id;
        } else if f.host.is_some() && !ctx.is_admin() {
            f.host = None;
        }
        // Nova's `max_limit`: a page never holds more than 1000 servers, asked for or not.
        f.limit = Some(f.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE));
        Ok(f)
    }

    /// One server the caller may see, with its ports and volumes.
    pub async fn server_show(&self, ctx: &AuthContext, id: &str) -> Result<ServerWithResources, ComputeError> {
        let server = self.get_visible(ctx, id).await?;
        let ports = self.ds.port_list_for_server(&server.id).await?;
        let volumes = self.ds.attachment_list_for_server(&server.id).await?.into_iter().map(|a| a.volume_id).collect();
        Ok(ServerWithResources { server, ports, volumes })
    }

    /// The instance actions of a server, newest first; `deleted_too` (Nova
    /// from 2.21) finds a deleted server's as well.
    pub async fn instance_actions(
        &self,
        ctx: &AuthContext,
        id: &str,
        deleted_too: bool,
    ) -> Result<Vec<ActionRow>, ComputeError> {
        let s = self.action_server(ctx, id, deleted_too).await?;
        Ok(self.ds.action_list(&s).await?)
    }

    /// The server whose actions are asked for: a live one the caller may
    /// see, or with `deleted_too` a deleted one as well (another project's
    /// is the same 404).
    async fn action_server(&self, ctx: &AuthContext, id: &str, deleted_too: bool) -> Result<ServerId, ComputeError> {
        if !deleted_too {
            return Ok(self.get_visible(ctx, id).await?.id);
        }
        let sid = ComputeError::parse_server_id(id)?;
        match self.ds.server_get_any(&sid).await {
            Ok(s) if ctx.can_see(&s.project_id) => Ok(s.id),
            Ok(_) | Err(DbError::NotFound { .. }) => Err(ComputeError::instance_not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// One instance action of a server with its events (`deleted_too`: as
    /// for [`ComputeApi::instance_actions`]).
    pub async fn instance_action(
        &self,
        ctx: &AuthContext,
        id: &str,
        request_id: &str,
        deleted_too: bool,
    ) -> Result<(ActionRow, Vec<EventRow>), ComputeError> {
        let s = self.action_server(ctx, id, deleted_too).await?;
        match self.ds.action_get(&s, request_id).await {
            Ok(x) => Ok(x),
            Err(DbError::NotFound { .. }) => {
                Err(ComputeError::ActionNotFound { server: id.to_string(), request_id: request_id.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Limits and usage of the caller's project, or of `tenant_id` for an
    /// admin. Nova's `os_compute_api:limits:other_project` is ADMIN and is
    /// checked whenever `tenant_id` is given (even the caller's own): a
    /// non-admin gets 403 rather than its own limits passed off as another's.
    pub async fn limits(&self, ctx: &AuthContext, tenant_id: Option<&str>) -> Result<Limits, ComputeError> {
        let project = match tenant_id {
            Some(p) if ctx.is_admin() => p.to_string(),
            Some(_) => {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:limits:other_project to be performed.".into(),
                ));
            }
            None => ctx.project_id.clone(),
        };
        let limits = self.quota_limits(&project).await?;
        let usage = self.ds.quota_usage(&project).await?;
        Ok(Limits { limits, usage })
    }

    /// Servers deleted while their VM may still run on a host (all hosts).
    pub async fn zombie_list(&self) -> Result<Vec<ZombieRow>, ComputeError> {
        Ok(self.ds.zombie_list(None).await?)
    }
}
