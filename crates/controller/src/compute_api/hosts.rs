//! Compute hosts (`os-services`): listing with up/down state, and the
//! operator's enable/disable/force-down. `forced_down` decides the delete
//! path (a forced-down host's servers are deleted without it), so the change
//! is validated, written and logged here, never by a handler.

use super::{ComputeApi, ComputeError, Resource};
use stratus_auth::AuthContext;
use stratus_db::{DbError, ServiceRow};
use tracing::{info, warn};

/// The body of a legacy (below 2.53) `PUT /os-services/{action}`.
#[derive(Clone, Debug, Default)]
pub struct ServiceUpdate {
    /// `host` of the body.
    pub host: Option<String>,
    /// `binary` of the body.
    pub binary: Option<String>,
    /// `disabled_reason` of the body.
    pub disabled_reason: Option<String>,
    /// `forced_down` of the body.
    pub forced_down: Option<bool>,
}

/// The body of a `PUT /os-services/{service_id}` (2.53+), checked for shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceChange {
    /// `status`: `enabled` (true) or `disabled` (false).
    pub enabled: Option<bool>,
    /// `disabled_reason` (only with `disabled`).
    pub disabled_reason: Option<String>,
    /// `forced_down`.
    pub forced_down: Option<bool>,
}

/// What an operator changed on a compute service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostChange {
    /// Scheduling to the host allowed again (reason cleared).
    Enable,
    /// No new servers on the host, with an optional reason.
    Disable {
        /// Why (`disable-log-reason`).
        reason: Option<String>,
    },
    /// The host is declared down (or up again) regardless of its lease.
    ForceDown(bool),
}

/// The result of a service update, for the response body.
#[derive(Clone, Debug)]
pub struct ServiceUpdated {
    /// Host of the service.
    pub host: String,
    /// Binary of the service.
    pub binary: String,
    /// What changed.
    pub change: HostChange,
}

/// A compute service and whether it is up now.
#[derive(Clone, Debug)]
pub struct ServiceState {
    /// The service.
    pub service: ServiceRow,
    /// Lease valid and not forced down.
    pub up: bool,
}

impl ComputeApi {
    /// `GET /os-services` (admins), filtered by host and binary.
    pub async fn service_list(
        &self,
        ctx: &AuthContext,
        host: Option<&str>,
        binary: Option<&str>,
    ) -> Result<Vec<ServiceState>, ComputeError> {
        if !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-services:list to be performed.".into(),
            ));
        }
        Ok(self
            .ds
            .service_list()
            .await?
            .into_iter()
            .filter(|s| host.is_none_or(|h| h == s.host) && binary.is_none_or(|b| b == s.binary))
            .map(|s| {
                let up = s.is_up();
                ServiceState { service: s, up }
            })
            .collect())
    }

    /// `PUT /os-services/{action}` (admins): enable, disable (with a
    /// reason), or force a host down/up (`force_down_allowed` from 2.11).
    /// `body` is the parsed body or the message of why it did not parse: the
    /// policy is checked first, as Nova does, so a non-admin learns nothing.
    pub async fn update_service(
        &self,
        ctx: &AuthContext,
        action: &str,
        force_down_allowed: bool,
        body: Result<ServiceUpdate, String>,
    ) -> Result<ServiceUpdated, ComputeError> {
        if !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-services:update to be performed.".into(),
            ));
        }
        let req = body.map_err(ComputeError::BadRequest)?;
        let host =
            req.host.ok_or_else(|| ComputeError::BadRequest("Invalid input: 'host' is a required property".into()))?;
        let binary = req
            .binary
            .ok_or_else(|| ComputeError::BadRequest("Invalid input: 'binary' is a required property".into()))?;
        let svc = match self.ds.service_get_by_host(&host).await {
            Ok(s) if s.binary == binary => s,
            Ok(_) | Err(DbError::NotFound { .. }) => {
                return Err(ComputeError::NotFound { kind: Resource::Service, id: format!("{binary} on host {host}") });
            }
            Err(e) => return Err(e.into()),
        };
        let change = match action {
            "enable" => HostChange::Enable,
            "disable" => HostChange::Disable { reason: None },
            "disable-log-reason" => {
                let reason = req.disabled_reason.filter(|r| !r.is_empty() && r.len() <= 255).ok_or_else(|| {
                    ComputeError::BadRequest("Invalid input: 'disabled_reason' must be 1 to 255 characters".into())
                })?;
                HostChange::Disable { reason: Some(reason) }
            }
            "force-down" if force_down_allowed => {
                let forced = req.forced_down.ok_or_else(|| {
                    ComputeError::BadRequest("Invalid input: 'forced_down' is a required property".into())
                })?;
                HostChange::ForceDown(forced)
            }
            _ => return Err(ComputeError::UnknownServiceAction(action.to_string())),
        };
        match &change {
            HostChange::Enable => {
                self.ds.service_update(&svc.uuid, Some(false), Some(None), None).await?;
                info!(host = %host, by = %ctx.user_id, "operator enabled the compute service");
            }
            HostChange::Disable { reason: None } => {
                self.ds.service_update(&svc.uuid, Some(true), None, None).await?;
                info!(host = %host, by = %ctx.user_id, "operator disabled the compute service");
            }
            HostChange::Disable { reason: Some(r) } => {
                self.ds.service_update(&svc.uuid, Some(true), Some(Some(r.clone())), None).await?;
                info!(host = %host, by = %ctx.user_id, reason = %r, "operator disabled the compute service");
            }
            HostChange::ForceDown(forced) => {
                self.ds.service_update(&svc.uuid, None, None, Some(*forced)).await?;
                // Servers of a forced-down host are deleted without it (their
                // VMs are fenced and recorded as zombies): say so in the log.
                warn!(host = %host, forced_down = forced, by = %ctx.user_id, "operator changed forced_down");
            }
        }
        Ok(ServiceUpdated { host, binary, change })
    }

    /// `PUT /os-services/{service_id}` (2.53+, admins): the service named by
    /// its UUID (other text: 400 before the policy, as Nova), `status`
    /// and/or `forced_down` changed, and the service as it now is. `body`
    /// is the parsed change or why it did not parse.
    pub async fn update_service_by_id(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: Result<ServiceChange, String>,
    ) -> Result<ServiceState, ComputeError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ComputeError::BadRequest(format!("Invalid uuid {id}")));
        }
        if !ctx.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-services:update to be performed.".into(),
            ));
        }
        let change = body.map_err(ComputeError::BadRequest)?;
        let svc = match self.ds.service_get(id).await {
            Ok(s) if s.uuid.eq_ignore_ascii_case(id) => s,
            Ok(_) | Err(DbError::NotFound { .. }) => {
                return Err(ComputeError::NotFound { kind: Resource::Service, id: id.to_string() });
            }
            Err(e) => return Err(e.into()),
        };
        let (disabled, reason) = match (change.enabled, change.disabled_reason) {
            (Some(true), Some(_)) => {
                return Err(ComputeError::BadRequest(
                    "Specifying 'disabled_reason' with status 'enabled' is invalid.".into(),
                ));
            }
            (Some(true), None) => (Some(false), Some(None)),
            (Some(false), reason) => (Some(true), Some(reason)),
            (None, _) => (None, None),
        };
        if disabled.is_none() && change.forced_down.is_none() {
            return Err(ComputeError::BadRequest(
                "No updates were requested. Fields 'status' or 'forced_down' should be specified.".into(),
            ));
        }
        let row = self.ds.service_update(&svc.uuid, disabled, reason, change.forced_down).await?;
        warn!(host = %row.host, ?disabled, forced_down = ?change.forced_down, by = %ctx.user_id, "operator updated the compute service");
        let up = row.is_up();
        Ok(ServiceState { service: row, up })
    }
}
