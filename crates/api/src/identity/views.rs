//! Pure JSON views of identity resources. Every link is absolute, built
//! from the public URL the clients reach Stratus at.

use super::{
    API_UPDATED, API_VERSION, AppCredential, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Project, REGION, Role,
    RoleAssignment, SystemAssignment, TokenInfo, User, catalog,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Keystone's timestamp form: UTC, microseconds, `Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `<public>/identity/v3`, the base of every link.
pub fn v3_url(public_url: &str) -> String {
    format!("{public_url}/identity/v3")
}

/// The `links` of a list (no paging: everything fits in one page).
pub fn list_links(url: String) -> Value {
    json!({ "self": url, "previous": null, "next": null })
}

/// A list body: `{"<key>": [...], "links": {...}}` with `self` at `<v3>/<path>`.
pub fn list_view(public_url: &str, key: &str, path: &str, items: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), Value::Array(items));
    m.insert("links".into(), list_links(format!("{}/{path}", v3_url(public_url))));
    Value::Object(m)
}

/// `{"id": "default", "name": "Default"}`, as tokens and assignments name the domain.
pub fn default_domain_ref() -> Value {
    json!({ "id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME })
}

/// Set `key` on a JSON object (no-op on anything else).
fn put(v: &mut Value, key: &str, val: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.into(), val);
    }
}

/// The one version this API serves, as version discovery lists it.
pub fn version_view(public_url: &str) -> Value {
    json!({
        "id": API_VERSION,
        "status": "stable",
        "updated": API_UPDATED,
        "links": [{ "rel": "self", "href": format!("{public_url}/identity/v3/") }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    })
}

/// The single `default` domain.
pub fn domain_view(public_url: &str) -> Value {
    json!({
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "",
        "enabled": true,
        "tags": [],
        "options": {},
        "links": { "self": format!("{}/domains/{DEFAULT_DOMAIN_ID}", v3_url(public_url)) },
    })
}

impl Project {
    /// What clients see of the project, links aside (also what a no-op update is compared against).
    pub fn attributes(&self) -> Map<String, Value> {
        let v = json!({
            "id": self.id,
            "name": self.name,
            "domain_id": self.domain_id,
            "description": self.description,
            "enabled": self.enabled,
            "is_domain": false,
            "parent_id": self.domain_id,
            "tags": self.tags,
            "options": {},
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

impl User {
    /// What clients see of the user, links aside (also what a no-op update is compared against).
    pub fn attributes(&self) -> Map<String, Value> {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "domain_id": self.domain_id,
            "enabled": self.enabled,
            "password_expires_at": null,
            "options": {},
        });
        if let Some(e) = &self.email {
            put(&mut v, "email", json!(e));
        }
        if let Some(p) = &self.default_project_id {
            put(&mut v, "default_project_id", json!(p));
        }
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// Attributes plus a `links.self`.
fn with_self_link(mut m: Map<String, Value>, href: String) -> Value {
    m.insert("links".into(), json!({ "self": href }));
    Value::Object(m)
}

/// A project.
pub fn project_view(public_url: &str, p: &Project) -> Value {
    with_self_link(p.attributes(), format!("{}/projects/{}", v3_url(public_url), p.id))
}

/// A user.
pub fn user_view(public_url: &str, u: &User) -> Value {
    with_self_link(u.attributes(), format!("{}/users/{}", v3_url(public_url), u.id))
}

/// A role (global roles: no domain, no description).
pub fn role_view(public_url: &str, r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": null,
        "description": null,
        "options": {},
        "links": { "self": format!("{}/roles/{}", v3_url(public_url), r.id) },
    })
}

/// A role assignment; names only when `include_names` asked for them.
pub fn assignment_view(public_url: &str, a: &RoleAssignment, include_names: bool) -> Value {
    let mut role = json!({ "id": a.role_id });
    let mut user = json!({ "id": a.user_id });
    let mut project = json!({ "id": a.project_id });
    if include_names {
        put(&mut role, "name", json!(a.role_name));
        put(&mut user, "name", json!(a.user_name));
        put(&mut user, "domain", default_domain_ref());
        put(&mut project, "name", json!(a.project_name));
        put(&mut project, "domain", default_domain_ref());
    }
    json!({
        "role": role,
        "user": user,
        "scope": { "project": project },
        "links": { "assignment": format!("{}/projects/{}/users/{}/roles/{}", v3_url(public_url), a.project_id, a.user_id, a.role_id) },
    })
}

/// A token body (`{"token": {...}}`), with the catalog of its project when asked.
pub fn token_view(public_url: &str, t: &TokenInfo<'_>, with_catalog: bool) -> Value {
    let roles: Vec<Value> = t.roles.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect();
    let mut token = json!({
        "methods": t.methods,
        "user": {
            "domain": default_domain_ref(),
            "id": t.user_id,
            "name": t.user_name,
            "password_expires_at": null,
        },
        "audit_ids": [t.audit_id],
        "expires_at": iso(t.expires_at),
        "issued_at": iso(t.issued_at),
        "is_domain": false,
        "roles": roles,
    });
    if t.system {
        put(&mut token, "system", json!({ "all": true }));
    } else {
        put(
            &mut token,
            "project",
            json!({ "domain": default_domain_ref(), "id": t.project_id, "name": t.project_name }),
        );
    }
    if let Some((id, name, restricted)) = t.app_cred {
        put(&mut token, "application_credential", json!({ "id": id, "name": name, "restricted": restricted }));
    }
    if with_catalog {
        put(&mut token, "catalog", catalog(public_url, t.project_id));
    }
    json!({ "token": token })
}

/// Keystone's rendering of an application credential's expiry: the
/// naive ISO 8601 time it was given, microseconds, no zone.
pub fn app_cred_expiry(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// An application credential (`secret` only when just created).
pub fn app_cred_view(public_url: &str, a: &AppCredential) -> Value {
    let roles: Vec<Value> = a.roles.iter().map(|r| json!({ "id": r.id, "name": r.name, "domain_id": null })).collect();
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "roles": roles,
        "expires_at": a.expires_at.map(app_cred_expiry),
        "unrestricted": a.unrestricted,
        "access_rules": [],
        "links": { "self": format!("{}/users/{}/application_credentials/{}", v3_url(public_url), a.user_id, a.id) },
    });
    if let Some(s) = &a.secret {
        put(&mut v, "secret", json!(s));
    }
    v
}

/// A role assignment on the system, as `/role_assignments` lists it.
pub fn system_assignment_view(public_url: &str, a: &SystemAssignment, include_names: bool) -> Value {
    let mut role = json!({ "id": a.role.id });
    if include_names {
        put(&mut role, "name", json!(a.role.name));
    }
    json!({
        "role": role,
        "user": { "id": a.user_id },
        "scope": { "system": { "all": true } },
        "links": { "assignment": format!("{}/system/users/{}/roles/{}", v3_url(public_url), a.user_id, a.role.id) },
    })
}

/// The single region.
pub fn region_view(public_url: &str) -> Value {
    json!({
        "id": REGION,
        "description": "",
        "parent_region_id": null,
        "links": { "self": format!("{}/regions/{REGION}", v3_url(public_url)) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_view_shows_optional_fields_only_when_set() {
        let u = User {
            id: "u".into(),
            name: "alice".into(),
            domain_id: "default".into(),
            email: None,
            default_project_id: Some("p".into()),
            enabled: true,
        };
        let v = user_view("http://x", &u);
        assert!(v.get("email").is_none());
        assert_eq!(v["default_project_id"], "p");
        assert_eq!(v["links"]["self"], "http://x/identity/v3/users/u");
    }
}
