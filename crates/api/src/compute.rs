//! Compute API v2.1 request bodies. Unknown keys are refused where Nova's
//! JSON schemas set `additionalProperties: false`, so typos give a 400
//! instead of being silently ignored.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /servers` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServerRequest {
    /// The server to create.
    pub server: CreateServer,
    /// Scheduler hints (accepted, ignored: one cell, no affinity groups).
    #[serde(rename = "OS-SCH-HNT:scheduler_hints", default)]
    #[schema(value_type = Object)]
    pub scheduler_hints: Option<Value>,
}

/// The `server` object of a create request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    /// Display name, 1..255 characters.
    pub name: String,
    /// Image id (or an image URL whose last segment is the id).
    #[serde(rename = "imageRef", default)]
    pub image_ref: Option<String>,
    /// Flavor id (or a flavor URL).
    #[serde(rename = "flavorRef")]
    #[schema(value_type = String)]
    pub flavor_ref: Value,
    /// `auto`, `none`, or a list of `{uuid|port|fixed_ip}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub networks: Option<Value>,
    /// String to string metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Number of servers to create at least.
    #[serde(default)]
    pub min_count: Option<Value>,
    /// Number of servers to create at most.
    #[serde(default)]
    pub max_count: Option<Value>,
    /// Return only the reservation id.
    #[serde(default)]
    pub return_reservation_id: Option<Value>,
    /// Admin password (generated when absent).
    #[serde(rename = "adminPass", default)]
    pub admin_pass: Option<String>,
    /// Key pair name.
    #[serde(default)]
    pub key_name: Option<String>,
    /// Availability zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Base64 user data.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Security groups by name (accepted; one implicit group).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub security_groups: Option<Value>,
    /// Config drive flag.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config_drive: Option<Value>,
    /// Disk config (`AUTO`/`MANUAL`).
    #[serde(rename = "OS-DCF:diskConfig", default)]
    pub disk_config: Option<String>,
    /// Access IPv4 address.
    #[serde(rename = "accessIPv4", default)]
    pub access_ipv4: Option<String>,
    /// Access IPv6 address.
    #[serde(rename = "accessIPv6", default)]
    pub access_ipv6: Option<String>,
    /// Files to inject (legacy, accepted and ignored below 2.57).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub personality: Option<Value>,
    /// Block device mappings (volumes arrive with the volumes work).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub block_device_mapping_v2: Option<Value>,
    /// Legacy block device mapping.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub block_device_mapping: Option<Value>,
}

/// `PUT /os-services/{id}` body (2.53+) or the legacy enable/disable bodies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceRequest {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Force the service down (2.11+).
    #[serde(default)]
    pub forced_down: Option<bool>,
    /// Host (legacy body).
    #[serde(default)]
    pub host: Option<String>,
    /// Binary (legacy body).
    #[serde(default)]
    pub binary: Option<String>,
}
