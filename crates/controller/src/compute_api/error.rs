//! The compute service's errors: one typed variant per refusal, so the HTTP
//! layer (`crates/server/src/error.rs`) maps each to a status in one place and
//! the messages Nova clients parse are written once, here.

use super::aggregates::AggregateVerb;
use stratus_db::DbError;
use stratus_types::ServerId;

/// What a [`ComputeError::NotFound`] is about; its name starts Nova's
/// "`<Kind> <id> could not be found.`" message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A server (Nova says "Instance").
    Instance,
    /// A flavor.
    Flavor,
    /// A volume.
    Volume,
    /// A compute service (its id reads "`<binary> on host <host>`").
    Service,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Instance => "Instance",
            Self::Flavor => "Flavor",
            Self::Volume => "Volume",
            Self::Service => "Service",
        })
    }
}

/// Errors of compute calls; the HTTP layer maps each to a status and fault.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// 400: the request is invalid for this cloud or this resource.
    #[error("{0}")]
    BadRequest(String),
    /// 403: policy refuses the caller.
    #[error("{0}")]
    Forbidden(String),
    /// 403 with Nova's quota message.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 404: the resource does not exist or the caller may not see it.
    #[error("{kind} {id} could not be found.")]
    NotFound {
        /// What was looked up.
        kind: Resource,
        /// The id (or description) looked up.
        id: String,
    },
    /// 404: `GET .../os-volume_attachments/{volume}` for a volume the server does not have.
    #[error("Instance {server} is not attached to volume {volume}.")]
    AttachmentNotFound {
        /// Server id as requested.
        server: String,
        /// Volume id as requested.
        volume: String,
    },
    /// 404: a detach of a volume the server does not have (Nova's wording differs from the show).
    #[error("volume_id not found: {volume_id}")]
    DetachNotFound {
        /// Volume id as requested.
        volume_id: String,
    },
    /// 404: a security group the server's project does not have, one the
    /// server is not in, or a server with no port to put it on (Nova's
    /// `SecurityGroupNotFound`, its message naming which).
    #[error("{0}")]
    SecurityGroupNotFound(String),
    /// 404: no instance action with this request id on this server.
    #[error("Action for request_id {request_id} on instance {server} not found")]
    ActionNotFound {
        /// Server id as requested.
        server: String,
        /// Request id as requested.
        request_id: String,
    },
    /// 404: no key pair of this name for this user.
    #[error("Keypair {name} not found for user {user}")]
    KeypairNotFound {
        /// Name as requested.
        name: String,
        /// The owner looked in.
        user: String,
    },
    /// 500 (logged, not shown): a key pair could not be generated.
    #[error("key pair generation failed: {0}")]
    KeyGeneration(String),
    /// 404: no hypervisor with this id.
    #[error("Hypervisor with ID '{0}' could not be found.")]
    HypervisorNotFound(String),
    /// 404: no hypervisor's host name contains the pattern.
    #[error("No hypervisor matching '{0}' could be found.")]
    NoHypervisorMatching(String),
    /// 404: no compute host of this name.
    #[error("Compute host {0} could not be found.")]
    ComputeHostNotFound(String),
    /// 404: no aggregate with this id.
    #[error("Aggregate {0} could not be found.")]
    AggregateNotFound(String),
    /// 409: another aggregate has this name.
    #[error("Aggregate {0} already exists.")]
    AggregateNameExists(String),
    /// 409: the host is already in the aggregate.
    #[error("Aggregate {id} already has host {host}.")]
    AggregateHostExists {
        /// Aggregate id.
        id: i64,
        /// Host name.
        host: String,
    },
    /// 404: a host removal Nova refuses (no such aggregate, host or membership), in its one sentence.
    #[error("Cannot remove host {host} in aggregate {id}")]
    AggregateHostRemove {
        /// Aggregate id as requested.
        id: String,
        /// Host name.
        host: String,
    },
    /// Nova's `InvalidAggregateAction`: 409 when adding a host, else 400.
    #[error("{message}")]
    InvalidAggregateAction {
        /// The refused call.
        verb: AggregateVerb,
        /// Nova's sentence.
        message: String,
    },
    /// 501: a call this cloud does not offer (Nova answers the same where its driver does not).
    #[error("{0}")]
    NotImplemented(String),
    /// 404: a private flavor not shared with this project.
    #[error("Flavor access not found for {flavor_id} / {project_id} combination.")]
    FlavorAccessNotFound {
        /// Flavor id.
        flavor_id: String,
        /// Project id as requested.
        project_id: String,
    },
    /// 404: the access list of a public flavor (every project has access).
    #[error("Access list not available for public flavors.")]
    FlavorAccessPublic,
    /// 404: a flavor extra spec key that is not set.
    #[error("Flavor {flavor_id} has no extra specs with key {key}.")]
    FlavorExtraSpecNotFound {
        /// Flavor id as requested.
        flavor_id: String,
        /// Key as requested.
        key: String,
    },
    /// 404: a server metadata key that is not set.
    #[error("Metadata item was not found")]
    MetadataItemNotFound,
    /// 404: an `os-services` action this cloud does not know (or not at this microversion).
    #[error("Unknown service action: {0}")]
    UnknownServiceAction(String),
    /// 404: the server's host has no VM of it, so no console to read (Nova's
    /// `ConsoleNotAvailable`).
    #[error("Guest does not have a console available (instance {id}).")]
    ConsoleNotAvailable {
        /// Server id.
        id: String,
    },
    /// 404: a tag the server does not hold.
    #[error("Server {server} has no tag '{tag}'")]
    ServerTagNotFound {
        /// Server id as requested.
        server: String,
        /// Tag as requested.
        tag: String,
    },
    /// 409: the server is locked and the caller is not an admin.
    #[error("Instance {id} is locked")]
    Locked {
        /// Server id.
        id: String,
    },
    /// 409: the change conflicts with the resource's state (Nova's message).
    #[error("{0}")]
    Conflict(String),
    /// 500 (logged, not shown).
    #[error(transparent)]
    Db(DbError),
}

impl ComputeError {
    /// The 404 of a server the caller cannot see (or that does not exist).
    pub fn instance_not_found(id: &str) -> Self {
        Self::NotFound { kind: Resource::Instance, id: id.to_string() }
    }

    /// The typed id of a server named by request text (a path segment): a
    /// text that is not a server id in the spelling we store is a server the
    /// caller cannot see, Nova's 404 `Instance <id> could not be found.`.
    pub fn parse_server_id(id: &str) -> Result<ServerId, Self> {
        ServerId::parse_canonical(id).ok_or_else(|| Self::instance_not_found(id))
    }
}

impl From<DbError> for ComputeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::QuotaExceeded(q) => Self::QuotaExceeded(q.to_string()),
            e => Self::Db(e),
        }
    }
}
