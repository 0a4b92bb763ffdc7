//! Reads behind the compute views: flavors, servers with their ports and
//! volumes, instance actions, limits with usage, and zombies. Visibility rules
//! (which project, which filters an admin may use) are applied here, so a
//! handler only renders what it gets.

use super::{ComputeApi, ComputeError};
use std::collections::{BTreeMap, HashMap};
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
    /// Tags by server id (sorted).
    pub tags: HashMap<ServerId, Vec<String>>,
    /// `host_status` by host, for admins only (Nova's policy).
    pub host_status: HashMap<String, &'static str>,
    /// Extra specs by flavor id (the embedded flavor of 2.47+).
    pub extra_specs: HashMap<String, BTreeMap<String, String>>,
    /// Image properties (JSON) by image id (the embedded image of 2.98+).
    pub image_properties: HashMap<stratus_types::ImageId, String>,
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
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Its `host_status`, for admins only (Nova's policy).
    pub host_status: Option<&'static str>,
    /// Its flavor's extra specs (the embedded flavor of 2.47+).
    pub extra_specs: BTreeMap<String, String>,
    /// Its boot image's properties (JSON), if the image still exists (2.98+).
    pub image_properties: Option<String>,
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
        let Some(f) = self.list_filter(ctx, q).await? else {
            return Ok(ServerList::default());
        };
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
            for (id, tag) in self.ds.server_tags_for_servers(&ids).await? {
                out.tags.entry(id).or_default().push(tag);
            }
            if ctx.is_admin() && servers.iter().any(|s| s.host.is_some()) {
                for svc in self.ds.service_list().await? {
                    let up = svc.is_up();
                    out.host_status.insert(svc.host.clone(), stratus_api::compute::views::host_status(Some(&svc), up));
                }
            }
            for s in &servers {
                if let Some(i) = s.image_id
                    && !out.image_properties.contains_key(&i)
                    && let Some(p) = self.image_properties_or_none(&i).await?
                {
                    out.image_properties.insert(i, p);
                }
                if !out.extra_specs.contains_key(&s.flavor_id) {
                    let specs = self.flavor_specs_or_none(&s.flavor_id).await?;
                    out.extra_specs.insert(s.flavor_id.clone(), specs);
                }
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
        match self.list_filter(ctx, q).await? {
            Some(f) => Ok((self.ds.server_list_brief(&f).await?, f.limit)),
            None => Ok((Vec::new(), None)),
        }
    }

    /// An image's properties (JSON); none when the image is gone.
    async fn image_properties_or_none(&self, id: &stratus_types::ImageId) -> Result<Option<String>, ComputeError> {
        match self.ds.image_get(id).await {
            Ok(i) => Ok(Some(i.properties)),
            Err(DbError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A flavor's extra specs; none when the flavor is gone.
    async fn flavor_specs_or_none(&self, flavor_id: &str) -> Result<BTreeMap<String, String>, ComputeError> {
        match self.ds.flavor_extra_specs(flavor_id).await {
            Ok(s) => Ok(s),
            Err(DbError::NotFound { .. }) => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The datastore filter of a list request, with its policy applied;
    /// `None` when the request can match no server (Nova: a `status` naming
    /// no state below 2.38; an `ip6` pattern, as no server has IPv6 here).
    async fn list_filter(&self, ctx: &AuthContext, q: ServerQuery) -> Result<Option<ServerFilter>, ComputeError> {
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
            tags_all: q.tags,
            tags_any: q.tags_any,
            not_tags: q.not_tags,
            not_tags_any: q.not_tags_any,
            locked: q.locked,
            include_deleted: q.changes_since.is_some() || q.changes_before.is_some(),
            changes_since: q.changes_since,
            changes_before: q.changes_before,
            // Admins may use every column filter; others those their
            // microversion opens (Nova drops the rest silently).
            columns: q
                .columns
                .into_iter()
                .filter(|(_, _, open)| *open || ctx.is_admin())
                .map(|(col, value, _)| (col, value))
                .collect(),
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
        let no_config_drive_matches = q.config_drive.is_some_and(|(none, open)| none && (open || ctx.is_admin()));
        if no_config_drive_matches || q.unknown_status || (q.ip6.is_some() && (ctx.is_admin() || q.ip6_for_everyone)) {
            return Ok(None);
        }
        Ok(Some(f))
    }

    /// One server the caller may see, with its ports and volumes.
    pub async fn server_show(&self, ctx: &AuthContext, id: &str) -> Result<ServerWithResources, ComputeError> {
        let server = self.get_visible(ctx, id).await?;
        let ports = self.ds.port_list_for_server(&server.id).await?;
        let volumes = self.ds.attachment_list_for_server(&server.id).await?.into_iter().map(|a| a.volume_id).collect();
        let tags = self.ds.server_tags(&server.id).await?;
        let host_status = match (&server.host, ctx.is_admin()) {
            (Some(h), true) => Some(match self.ds.service_get_by_host(h).await {
                Ok(svc) => stratus_api::compute::views::host_status(Some(&svc), svc.is_up()),
                Err(DbError::NotFound { .. }) => "",
                Err(e) => return Err(e.into()),
            }),
            (None, true) => Some(""),
            (_, false) => None,
        };
        let extra_specs = self.flavor_specs_or_none(&server.flavor_id).await?;
        let image_properties = match &server.image_id {
            Some(i) => self.image_properties_or_none(i).await?,
            None => None,
        };
        Ok(ServerWithResources { server, ports, volumes, tags, host_status, extra_specs, image_properties })
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
