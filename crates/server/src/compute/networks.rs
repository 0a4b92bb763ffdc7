//! The deprecated network proxy (`/os-networks`, up to 2.35): the one
//! tenant network every server's port is on, in the shape Nova gives a
//! Neutron network (id and label; the nova-network fields null).

use crate::error::ApiError;
use crate::middleware::Auth;
use crate::openapi::schemas as s;
use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

/// The stable id of the one network (`private`, 10.0.0.0/16).
pub const PRIVATE_NETWORK_ID: &str = "5f8e6a2c-1d3b-4c7e-9a0f-2b4d6c8e0a1f";

fn network() -> Value {
    json!({
        "id": PRIVATE_NETWORK_ID,
        "label": "private",
        "cidr": "10.0.0.0/16",
        "netmask": "255.255.0.0",
        "gateway": null,
        "broadcast": null,
        "dns1": null,
        "dns2": null,
        "cidr_v6": null,
        "gateway_v6": null,
        "netmask_v6": null,
    })
}

#[utoipa::path(get, path = "/compute/v2.1/os-networks", tag = "networks", responses((status = 404, description = "Not found, or gone at this microversion (2.36 proxies, 2.43 os-hosts)"), (status = 200, description = "The tenant network", body = s::NetworkList)))]
pub(super) async fn network_list(_a: Auth) -> Json<Value> {
    Json(json!({"networks": [network()]}))
}

#[utoipa::path(get, path = "/compute/v2.1/os-networks/{id}", tag = "networks", params(("id" = String, Path, description = "Network id")), responses((status = 200, description = "The tenant network", body = s::NetworkBody), (status = 404, description = "Unknown network")))]
pub(super) async fn network_show(_a: Auth, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if id != PRIVATE_NETWORK_ID {
        return Err(ApiError::NotFound(format!("Network {id} could not be found.")));
    }
    Ok(Json(json!({"network": network()})))
}
