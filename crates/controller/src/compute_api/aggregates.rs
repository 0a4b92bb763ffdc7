//! Host aggregates (`/os-aggregates`, admin only) and the availability
//! zones they make (`/os-availability-zone`). The datastore checks and
//! writes each change in one transaction and says why it refused; this
//! module holds the policy and words each refusal the way Nova does.

use super::hosts::ServiceState;
use super::{ComputeApi, ComputeError};
use std::collections::BTreeMap;
use stratus_api::compute::{AggregateAction, AggregateCreate, AggregateUpdate};
use stratus_auth::AuthContext;
use stratus_db::{AggregateChange, AggregateRefusal, AggregateRow, DEFAULT_ZONE, ZONE_KEY};

/// Which aggregate call was refused: Nova words (and, for adding a host,
/// answers) its `InvalidAggregateAction` per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateVerb {
    /// `add_host` (Nova answers 409).
    AddHost,
    /// `DELETE` (400).
    Delete,
    /// `PUT` (400).
    Update,
    /// `set_metadata` (400).
    SetMetadata,
}

impl AggregateVerb {
    /// Nova's sentence for a refused call on aggregate `id`.
    pub fn refusal(self, id: i64, reason: &str) -> String {
        match self {
            Self::AddHost => format!("Cannot add host to aggregate {id}. Reason: {reason}."),
            // Nova's text for a refused delete does say "remove host".
            Self::Delete => format!("Cannot remove host from aggregate {id}. Reason: {reason}."),
            Self::Update => format!("Cannot update aggregate {id}. Reason: {reason}."),
            Self::SetMetadata => format!("Cannot update metadata of aggregate {id}. Reason: {reason}."),
        }
    }
}

/// One availability zone: its name, whether any of its hosts takes new
/// servers, and its hosts (for the admin's detail view).
#[derive(Clone, Debug)]
pub struct Zone {
    /// Zone name.
    pub name: String,
    /// Some host in it is enabled.
    pub available: bool,
    /// Its compute services.
    pub hosts: Vec<ServiceState>,
}

/// Nova's `utils.validate_integer(id, 'id')`: Python's `int()` of the path text.
fn aggregate_id(id: &str) -> Result<i64, ComputeError> {
    let t = id.trim();
    t.strip_prefix('+')
        .unwrap_or(t)
        .parse()
        .map_err(|_| ComputeError::BadRequest("Invalid input received: id must be an integer".into()))
}

/// Nova's list repr of the zones a host is already in (`['az1', 'az2']`).
fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

impl ComputeApi {
    fn aggregate_policy(ctx: &AuthContext, rule: &str) -> Result<(), ComputeError> {
        Self::require_admin(ctx, &format!("os_compute_api:os-aggregates:{rule}"))
    }

    /// Word a datastore refusal of `verb` on aggregate `id` as Nova does;
    /// `subject` is the host of a host change, else the aggregate's name
    /// (the new one when a name is refused).
    fn aggregate_refused(r: AggregateRefusal, verb: AggregateVerb, id: i64, subject: &str) -> ComputeError {
        let subject = subject.to_string();
        let invalid =
            |reason: String| ComputeError::InvalidAggregateAction { verb, message: verb.refusal(id, &reason) };
        match r {
            AggregateRefusal::NotFound => ComputeError::AggregateNotFound(id.to_string()),
            AggregateRefusal::NameExists => ComputeError::AggregateNameExists(subject),
            AggregateRefusal::HostNotFound => ComputeError::ComputeHostNotFound(subject),
            AggregateRefusal::HostExists => ComputeError::AggregateHostExists { id, host: subject },
            AggregateRefusal::HostNotMember => ComputeError::AggregateHostRemove { id: id.to_string(), host: subject },
            AggregateRefusal::NotEmpty => invalid("Host aggregate is not empty".into()),
            AggregateRefusal::EmptyZone => {
                invalid(format!("Aggregate {subject} does not support empty named availability zone"))
            }
            AggregateRefusal::ZoneConflict(zones) => {
                invalid(format!("One or more hosts already in availability zone(s) {}", python_list(&zones)))
            }
            AggregateRefusal::ZoneHasServers => invalid("One or more hosts contain instances in this zone".into()),
        }
    }

    /// Every aggregate (admin).
    pub async fn aggregates(&self, ctx: &AuthContext) -> Result<Vec<AggregateRow>, ComputeError> {
        Self::aggregate_policy(ctx, "index")?;
        Ok(self.ds.aggregate_list().await?)
    }

    /// One aggregate (admin); the id must be an integer (400), and exist (404).
    pub async fn aggregate(&self, ctx: &AuthContext, id: &str) -> Result<AggregateRow, ComputeError> {
        Self::aggregate_policy(ctx, "show")?;
        let id = aggregate_id(id)?;
        self.ds.aggregate_get(id).await?.ok_or_else(|| ComputeError::AggregateNotFound(id.to_string()))
    }

    /// Create an aggregate (admin); 409 if the name is taken. `req` is the
    /// parsed body or why it was refused: the policy is checked first, so a
    /// non-admin learns nothing from the body.
    pub async fn create_aggregate(
        &self,
        ctx: &AuthContext,
        req: Result<AggregateCreate, String>,
    ) -> Result<AggregateRow, ComputeError> {
        Self::aggregate_policy(ctx, "create")?;
        let req = req.map_err(ComputeError::BadRequest)?;
        let created = self.ds.aggregate_create(&req.name, req.availability_zone.as_deref()).await?;
        let row = created.map_err(|r| Self::aggregate_refused(r, AggregateVerb::Update, 0, &req.name))?;
        tracing::info!(id = row.id, name = %row.name, zone = ?row.availability_zone(), by = %ctx.user_id, "aggregate created");
        Ok(row)
    }

    /// Rename an aggregate or change its zone (admin). Nova's rules: the
    /// name is unique, the zone is never emptied, a host is in one zone at
    /// most, and the zone of hosts carrying servers does not change. `req`
    /// as for [`ComputeApi::create_aggregate`].
    pub async fn update_aggregate(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: Result<AggregateUpdate, String>,
    ) -> Result<AggregateRow, ComputeError> {
        Self::aggregate_policy(ctx, "update")?;
        let req = req.map_err(ComputeError::BadRequest)?;
        let id = aggregate_id(id)?;
        let mut change = AggregateChange { name: req.name.clone(), metadata: BTreeMap::new() };
        if let Some(zone) = &req.availability_zone {
            change.metadata.insert(ZONE_KEY.to_string(), zone.clone());
        }
        self.change_aggregate(ctx, id, &change, AggregateVerb::Update).await
    }

    /// Delete an aggregate (admin); 400 while it still has hosts.
    pub async fn delete_aggregate(&self, ctx: &AuthContext, id: &str) -> Result<(), ComputeError> {
        Self::aggregate_policy(ctx, "delete")?;
        let id = aggregate_id(id)?;
        self.ds.aggregate_delete(id).await?.map_err(|r| Self::aggregate_refused(r, AggregateVerb::Delete, id, ""))?;
        tracing::info!(id, by = %ctx.user_id, "aggregate deleted");
        Ok(())
    }

    /// `POST /os-aggregates/{id}/action` (admin): add or remove a host, or
    /// set metadata (a null value deletes the key). `action` as `req` for
    /// [`ComputeApi::create_aggregate`] (every aggregate action is admin only).
    pub async fn aggregate_action(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: Result<AggregateAction, String>,
    ) -> Result<AggregateRow, ComputeError> {
        let rule = match &action {
            Ok(AggregateAction::AddHost(_)) => "add_host",
            Ok(AggregateAction::RemoveHost(_)) => "remove_host",
            Ok(AggregateAction::SetMetadata(_)) => "set_metadata",
            Err(_) => "action",
        };
        Self::aggregate_policy(ctx, rule)?;
        let action = action.map_err(ComputeError::BadRequest)?;
        let raw_id = id;
        let id = aggregate_id(id)?;
        match &action {
            AggregateAction::AddHost(host) => {
                let added = self.ds.aggregate_add_host(id, host).await?;
                let row = added.map_err(|r| Self::aggregate_refused(r, AggregateVerb::AddHost, id, host))?;
                tracing::info!(id, host = %host, by = %ctx.user_id, "host added to aggregate");
                Ok(row)
            }
            AggregateAction::RemoveHost(host) => {
                // Nova answers every refusal here with one sentence.
                let removed = self.ds.aggregate_remove_host(id, host).await?;
                let row = removed
                    .map_err(|_| ComputeError::AggregateHostRemove { id: raw_id.to_string(), host: host.clone() })?;
                tracing::info!(id, host = %host, by = %ctx.user_id, "host removed from aggregate");
                Ok(row)
            }
            AggregateAction::SetMetadata(metadata) => {
                let change = AggregateChange { name: None, metadata: metadata.clone() };
                self.change_aggregate(ctx, id, &change, AggregateVerb::SetMetadata).await
            }
        }
    }

    async fn change_aggregate(
        &self,
        ctx: &AuthContext,
        id: i64,
        change: &AggregateChange,
        verb: AggregateVerb,
    ) -> Result<AggregateRow, ComputeError> {
        match self.ds.aggregate_update(id, change).await? {
            Ok(row) => {
                tracing::info!(id, name = %row.name, zone = ?row.availability_zone(), by = %ctx.user_id, "aggregate changed");
                Ok(row)
            }
            Err(r @ AggregateRefusal::EmptyZone) => {
                // Nova names the aggregate as it is.
                let name = self.ds.aggregate_get(id).await?.map(|a| a.name).unwrap_or_default();
                Err(Self::aggregate_refused(r, verb, id, &name))
            }
            Err(r) => Err(Self::aggregate_refused(r, verb, id, change.name.as_deref().unwrap_or_default())),
        }
    }

    /// The availability zones of the compute hosts: the zone of each host's
    /// aggregate, else the default zone. `detail` (admins) lists each
    /// zone's hosts. A cloud with no host yet shows the default zone.
    pub async fn availability_zones(&self, ctx: &AuthContext, detail: bool) -> Result<Vec<Zone>, ComputeError> {
        if detail {
            Self::require_admin(ctx, "os_compute_api:os-availability-zone:detail")?;
        }
        let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
        for s in self.ds.service_list().await? {
            let z = zones.entry(s.zone.clone()).or_insert_with(|| Zone {
                name: s.zone.clone(),
                available: false,
                hosts: Vec::new(),
            });
            z.available |= !s.disabled;
            let up = s.is_up();
            z.hosts.push(ServiceState { service: s, up });
        }
        if zones.is_empty() {
            let name = DEFAULT_ZONE.to_string();
            zones.insert(name.clone(), Zone { name, available: true, hosts: Vec::new() });
        }
        // Nova lists the available zones first, then the others.
        let (mut out, unavailable): (Vec<Zone>, Vec<Zone>) = zones.into_values().partition(|z| z.available);
        out.extend(unavailable);
        Ok(out)
    }
}
