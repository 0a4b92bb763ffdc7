//! The fixed service catalog: Identity, Compute, Image and Block Storage
//! (as both `volumev3` and `block-storage`), each with public, internal and
//! admin endpoints at the public URL.
//!
//! It is a pure function of the public URL (and the project, for Cinder's
//! per-project URLs). Service and endpoint ids are hashes of their labels,
//! so they are the same in every token, process and restart.

use super::{REGION, v3_url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Endpoint interfaces listed for every service.
const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

/// One service of the fixed catalog.
#[derive(Debug)]
pub struct ServiceDef {
    /// Service type (`compute`, ...).
    pub kind: &'static str,
    /// Service name (`nova`, ...).
    pub name: &'static str,
    /// Path below the public URL.
    pub path: &'static str,
    /// Whether the URL ends in the project id (Cinder's v3 endpoints do).
    pub per_project: bool,
}

/// The catalog every token carries.
pub const SERVICES: [ServiceDef; 5] = [
    ServiceDef { kind: "identity", name: "keystone", path: "/identity", per_project: false },
    ServiceDef { kind: "compute", name: "nova", path: "/compute/v2.1", per_project: false },
    ServiceDef { kind: "image", name: "glance", path: "/image", per_project: false },
    ServiceDef { kind: "volumev3", name: "cinderv3", path: "/volume/v3", per_project: true },
    ServiceDef { kind: "block-storage", name: "cinder", path: "/volume/v3", per_project: true },
];

/// Deterministic 32-hex-digit id from labels (catalog ids must not change between processes).
fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(32);
    s
}

/// The id of a service of the catalog.
pub fn service_id(kind: &str) -> String {
    stable_id(&["stratus-service", kind])
}

/// The id of an endpoint of the catalog.
fn endpoint_id(kind: &str, interface: &str) -> String {
    stable_id(&["stratus-endpoint", kind, interface])
}

fn service_url(public_url: &str, s: &ServiceDef, project_id: &str) -> String {
    if s.per_project { format!("{public_url}{}/{project_id}", s.path) } else { format!("{public_url}{}", s.path) }
}

/// The service catalog of a token scoped to `project_id`.
pub fn catalog(public_url: &str, project_id: &str) -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            let url = service_url(public_url, s, project_id);
            let endpoints: Vec<Value> = INTERFACES
                .iter()
                .map(|i| {
                    json!({
                        "id": endpoint_id(s.kind, i),
                        "interface": i,
                        "region": REGION,
                        "region_id": REGION,
                        "url": url,
                    })
                })
                .collect();
            json!({ "id": service_id(s.kind), "type": s.kind, "name": s.name, "endpoints": endpoints })
        })
        .collect();
    Value::Array(services)
}

/// A service of the catalog, as `GET /services` shows it.
pub fn service_view(public_url: &str, s: &ServiceDef) -> Value {
    let id = service_id(s.kind);
    json!({
        "id": id,
        "type": s.kind,
        "name": s.name,
        "description": "",
        "enabled": true,
        "links": { "self": format!("{}/services/{id}", v3_url(public_url)) },
    })
}

/// The service with this id, if any.
pub fn find_service(id: &str) -> Option<&'static ServiceDef> {
    SERVICES.iter().find(|s| service_id(s.kind) == id)
}

/// Endpoints of the fixed catalog; per-project URLs carry Keystone's `%(project_id)s` template.
pub fn endpoint_views(public_url: &str) -> Vec<Value> {
    SERVICES
        .iter()
        .flat_map(|s| {
            INTERFACES.iter().map(move |i| {
                let id = endpoint_id(s.kind, i);
                json!({
                    "id": id,
                    "interface": i,
                    "region": REGION,
                    "region_id": REGION,
                    "service_id": service_id(s.kind),
                    "url": service_url(public_url, s, "%(project_id)s"),
                    "enabled": true,
                    "links": { "self": format!("{}/endpoints/{id}", v3_url(public_url)) },
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const PUBLIC: &str = "http://127.0.0.1:8774";

    #[test]
    fn identity_catalog_is_deterministic_with_unique_ids() {
        let a = catalog(PUBLIC, "p1");
        assert_eq!(a, catalog(PUBLIC, "p1"));
        let b = catalog(PUBLIC, "p2");
        let ids = |c: &Value| -> Vec<String> {
            c.as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| {
                    s["endpoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        let unique: HashSet<String> = ids(&a).into_iter().collect();
        assert_eq!(unique.len(), 15);
        for svc in a.as_array().expect("array") {
            assert_eq!(svc["endpoints"].as_array().map(Vec::len), Some(3));
            for ep in svc["endpoints"].as_array().expect("eps") {
                assert_eq!(ep["region"], "RegionOne");
                assert_eq!(ep["region_id"], "RegionOne");
            }
        }
        assert_eq!(
            crate::identity::iso(chrono::DateTime::from_timestamp(1_795_780_800, 0).expect("time")),
            "2026-11-27T12:00:00.000000Z"
        );
    }
}
