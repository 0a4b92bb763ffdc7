//! Controller settings, with the defaults of docs/architecture.md.

use std::time::Duration;
use stratus_db::QuotaLimits;

/// Settings of the controller role (and of the API's compute logic).
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Lease length granted to agents (`lease_ttl`, alias `service_down_time`).
    pub lease_ttl: Duration,
    /// How often agents renew (`lease_renew_interval`).
    pub lease_renew_interval: Duration,
    /// An agent must acknowledge a terminate within this (`terminate_ack_timeout`).
    pub terminate_ack_timeout: Duration,
    /// An agent must finish a terminate within this (`terminate_timeout`).
    pub terminate_timeout: Duration,
    /// An agent must finish a spawn within this.
    pub build_timeout: Duration,
    /// Acknowledgement timeout of other commands.
    pub command_ack_timeout: Duration,
    /// Completion timeout of power commands.
    pub power_timeout: Duration,
    /// Operation claim length; other controllers adopt after it lapses.
    pub op_claim_ttl: Duration,
    /// Leader lease length: how long the controllers' singleton duties
    /// (the hosts' leases and convictions, storage reconciler, notification
    /// relay, reclaim) wait for a dead leader before another controller takes
    /// them over. Hosts renew with the leader only, so a takeover must come
    /// well before their leases (minus the watchdog margin) run out:
    /// `leader_ttl × 4/3 + lease_renew_interval` below `lease_ttl − 2 s`
    /// (3 s: 6 s against 8 s with the defaults).
    pub leader_ttl: Duration,
    /// How often to look for operations without a hint.
    pub op_poll_interval: Duration,
    /// Operations driven at once.
    pub op_concurrency: usize,
    /// Scheduling attempts before a build fails.
    pub max_schedule_attempts: usize,
    /// Default per-project quota.
    pub default_quota: QuotaLimits,
    /// Soft delete: keep deleted servers restorable this long (zero: off).
    pub reclaim_instance_interval: Duration,
    /// Offload shelved servers after this long; `None` never, zero at once.
    pub shelved_offload_time: Option<Duration>,
    /// Stable identity of this controller's operation runner, so a restarted
    /// controller re-claims its own operations at once (default: `controller@<hostname>`).
    pub controller_id: Option<String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(10),
            lease_renew_interval: Duration::from_secs(2),
            terminate_ack_timeout: Duration::from_secs(5),
            terminate_timeout: Duration::from_secs(30),
            build_timeout: Duration::from_secs(120),
            command_ack_timeout: Duration::from_secs(5),
            power_timeout: Duration::from_secs(60),
            op_claim_ttl: Duration::from_secs(15),
            leader_ttl: Duration::from_secs(3),
            op_poll_interval: Duration::from_millis(500),
            op_concurrency: 512,
            max_schedule_attempts: 3,
            default_quota: QuotaLimits::NOVA_DEFAULTS,
            reclaim_instance_interval: Duration::ZERO,
            shelved_offload_time: Some(Duration::ZERO),
            controller_id: None,
        }
    }
}
