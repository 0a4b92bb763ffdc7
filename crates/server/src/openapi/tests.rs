use super::*;
use std::collections::HashSet;

/// Every `$ref` target in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_route_is_in_its_apis_document() {
    let docs: Vec<(Api, Value)> = Api::ALL.iter().map(|a| (*a, a.document())).collect();
    let routes = crate::auth_matrix_tests::every_route();
    assert!(routes.len() > 80, "the route scan found only {} routes", routes.len());
    let mut missing = Vec::new();
    for (method, path) in &routes {
        // The Prometheus exposition is text for scrapers, not an API a
        // client codes against: no OpenAPI document describes it.
        if path == "/metrics" {
            continue;
        }
        let Some(api) = Api::of_path(path) else {
            missing.push(format!("{method} {path}: no document covers this prefix"));
            continue;
        };
        let doc = &docs.iter().find(|(a, _)| *a == api).expect("document").1;
        if doc["paths"][path.as_str()][method.to_ascii_lowercase()].is_null() {
            missing.push(format!("{method} {path}: not in the {api:?} document"));
        }
    }
    assert!(missing.is_empty(), "{} routes missing:\n{}", missing.len(), missing.join("\n"));
    // And no document describes a route the router does not have.
    let scanned: HashSet<(String, String)> = routes.iter().map(|(m, p)| (m.to_ascii_lowercase(), p.clone())).collect();
    for (api, mut doc) in docs {
        for (path, method, _) in operations(&mut doc) {
            assert!(
                scanned.contains(&(method.clone(), path.clone())),
                "{api:?} documents {method} {path}: no such route"
            );
        }
    }
}

#[test]
fn documents_are_complete_and_consistent() {
    for api in Api::ALL {
        let mut doc = api.document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{api:?}: {}", doc["openapi"]);
        // Every reference resolves, and named schemas are the hand-written JSON.
        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        for t in targets {
            let name = t.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{api:?}: odd $ref {t}"));
            let schema = &doc["components"]["schemas"][name];
            assert!(!schema.is_null(), "{api:?}: $ref {t} does not resolve");
            if let Some(lit) = schemas::literal(name) {
                assert_eq!(*schema, lit, "{api:?}: {name} is not its JSON schema");
            }
        }
        let mut ids = HashSet::new();
        for (path, method, op) in operations(&mut doc) {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(ids.insert(id.clone()), "{api:?}: operation id {id} twice");
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2') || s == "300"), "{method} {path}: no success status");
            for (status, r) in responses {
                if status.starts_with('4') {
                    assert!(
                        !r["content"]["application/json"]["schema"].is_null(),
                        "{method} {path} {status}: no fault body schema"
                    );
                }
            }
            if !Api::is_public(&method, &path) {
                assert!(responses.contains_key("401"), "{method} {path}: wants a token, 401 not documented");
            }
        }
    }
}

#[test]
fn every_hand_written_schema_is_used() {
    let mut used = HashSet::new();
    for api in Api::ALL {
        if let Some(s) = api.document()["components"]["schemas"].as_object() {
            used.extend(s.keys().cloned());
        }
    }
    let unused: Vec<&&str> = schemas::NAMES.iter().filter(|n| !used.contains(**n)).collect();
    assert!(unused.is_empty(), "schemas no document uses: {unused:?}");
}

#[test]
fn fault_schemas_name_the_status_the_server_writes() {
    // Nova's fault body: `{"itemNotFound": {"code": 404, "message": ...}}`; Keystone's: `{"error": {...}}`.
    let nova = fault_schema(Api::Volume, 404);
    assert_eq!(nova["required"], json!(["itemNotFound"]));
    assert_eq!(nova["properties"]["itemNotFound"]["properties"]["code"]["const"], 404);
    let ks = fault_schema(Api::Identity, 403);
    assert_eq!(ks["properties"]["error"]["properties"]["title"]["const"], "Forbidden");
}
