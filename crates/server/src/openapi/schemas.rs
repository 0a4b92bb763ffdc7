//! Body schemas of the OpenAPI documents, written as JSON Schema.
//!
//! Most request bodies are read by hand from JSON (OpenStack's APIs accept
//! loosely typed values and answer each mistake with their own message) and
//! most responses are built by view functions, so there is no Rust type to
//! derive a schema from. Each schema here is a unit type the handlers'
//! annotations name (`request_body = schemas::VolumeCreate`); utoipa renders
//! it as a reference, and [`resolve`] puts the JSON below under that name.
//! Request schemas describe what a valid request looks like (the fuzzer
//! starts from them); response schemas only say what the server always
//! writes, so that `response_schema_conformance` holds them to it.

use serde_json::{Value, json};
use std::borrow::Cow;
use utoipa::openapi::{RefOr, schema::Schema};

/// Declares unit types standing for JSON schemas, and [`literal`] giving
/// each one's JSON by name.
macro_rules! json_schemas {
    ($($(#[$doc:meta])* $name:ident => $schema:expr;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    RefOr::T(Schema::Object(utoipa::openapi::schema::Object::new()))
                }
            }
            impl utoipa::ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )*
        /// The JSON schema named `name`, if it is one of these.
        pub fn literal(name: &str) -> Option<Value> {
            match name {
                $(stringify!($name) => Some($schema),)*
                _ => None,
            }
        }
        /// Every name [`literal`] knows.
        #[cfg(test)]
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

/// One aggregate as Nova shows it before 2.41 (`with_members`: `hosts` and `metadata` too).
fn aggregate_schema(with_members: bool) -> Value {
    let mut required = vec!["id", "name", "availability_zone", "created_at", "updated_at", "deleted", "deleted_at"];
    if with_members {
        required.extend(["hosts", "metadata"]);
    }
    json!({
        "type": "object",
        "required": required,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "availability_zone": nullable_string(),
            "created_at": {"type": "string"},
            "updated_at": nullable_string(),
            "deleted": {"type": "boolean"},
            "deleted_at": nullable_string(),
            "hosts": {"type": "array", "items": {"type": "string"}},
            "metadata": string_map(),
        },
    })
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// `{"self": url}` links of a Keystone entity.
fn ks_self_link() -> Value {
    json!({"type": "object", "required": ["self"], "properties": {"self": {"type": "string"}}})
}

/// A Keystone list body: `{"<key>": [<item>], "links": {...}}`.
fn ks_list(key: &str, item: &str) -> Value {
    json!({
        "type": "object",
        "required": [key, "links"],
        "properties": {
            key: {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "links": {
                "type": "object",
                "required": ["self", "previous", "next"],
                "properties": {"self": {"type": "string"}, "previous": nullable_string(), "next": nullable_string()},
            },
        },
    })
}

/// `{"<key>": <item>}`.
fn wrapped(key: &str, item: &str) -> Value {
    json!({
        "type": "object",
        "required": [key],
        "properties": {key: {"$ref": format!("#/components/schemas/{item}")}},
    })
}

/// `[{"rel": ..., "href": ...}]`, the links of Nova, Cinder and version documents.
fn rel_links() -> Value {
    json!({
        "type": "array",
        "items": {"type": "object", "required": ["rel", "href"], "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}},
    })
}

/// A domain named by id or by name.
fn domain_ref() -> Value {
    json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}})
}

/// A Nova/Cinder/Keystone version object.
fn version_object() -> Value {
    json!({
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "links": rel_links()},
    })
}

json_schemas! {
    // ------------------------------------------------------------ shared
    /// `{"versions": [...]}` (Compute, Image, Block Storage).
    VersionList => json!({
        "type": "object",
        "required": ["versions"],
        "properties": {"versions": {"type": "array", "items": version_object()}},
    });
    /// `{"version": {...}}`.
    VersionDoc => json!({"type": "object", "required": ["version"], "properties": {"version": version_object()}});

    // ---------------------------------------------------------- identity
    /// Keystone's `{"versions": {"values": [...]}}`.
    IdentityVersions => json!({
        "type": "object",
        "required": ["versions"],
        "properties": {"versions": {
            "type": "object",
            "required": ["values"],
            "properties": {"values": {"type": "array", "items": version_object()}},
        }},
    });
    /// `POST /auth/tokens`: password or token, optionally project scoped.
    AuthRequest => json!({
        "type": "object",
        "required": ["auth"],
        "properties": {"auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string", "enum": ["password", "token"]}},
                        "password": {
                            "type": "object",
                            "required": ["user"],
                            "properties": {"user": {
                                "type": "object",
                                "required": ["password"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "name": {"type": "string"},
                                    "domain": domain_ref(),
                                    "password": {"type": "string"},
                                },
                            }},
                        },
                        "token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                    },
                },
                "scope": {
                    "type": "object",
                    "properties": {"project": {
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain": domain_ref()},
                    }},
                },
            },
        }},
    });
    /// A token (`{"token": {...}}`); `catalog` with the catalog asked for.
    Token => json!({
        "type": "object",
        "required": ["token"],
        "properties": {"token": {
            "type": "object",
            "required": ["methods", "user", "audit_ids", "expires_at", "issued_at", "project", "roles"],
            "properties": {
                "methods": {"type": "array", "items": {"type": "string"}},
                "user": {"type": "object", "required": ["id", "name", "domain"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain": domain_ref()}},
                "audit_ids": {"type": "array", "items": {"type": "string"}},
                "expires_at": {"type": "string"},
                "issued_at": {"type": "string"},
                "project": {"type": "object", "required": ["id", "name", "domain"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain": domain_ref()}},
                "roles": {"type": "array", "items": {"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}},
                "catalog": {"$ref": "#/components/schemas/CatalogEntries"},
            },
        }},
    });
    /// The services of a catalog with their endpoints.
    CatalogEntries => json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["id", "type", "name", "endpoints"],
            "properties": {
                "id": {"type": "string"},
                "type": {"type": "string"},
                "name": {"type": "string"},
                "endpoints": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "interface", "region_id", "url"],
                    "properties": {"id": {"type": "string"}, "interface": {"type": "string"}, "region_id": {"type": "string"}, "url": {"type": "string"}},
                }},
            },
        },
    });
    /// `GET /auth/catalog`.
    Catalog => json!({
        "type": "object",
        "required": ["catalog", "links"],
        "properties": {"catalog": {"$ref": "#/components/schemas/CatalogEntries"}, "links": {"type": "object"}},
    });
    /// `POST /projects`.
    ProjectCreate => json!({
        "type": "object",
        "required": ["project"],
        "properties": {"project": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "domain_id": {"type": "string"},
                "description": {"type": "string"},
                "enabled": {"type": "boolean"},
                "parent_id": {"type": "string"},
                "is_domain": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        }},
    });
    /// `PATCH /projects/{id}`: `tags` replaced; other values only when equal to the current ones.
    ProjectUpdate => json!({
        "type": "object",
        "required": ["project"],
        "properties": {"project": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "enabled": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}},
        }},
    });
    /// A project.
    Project => json!({
        "type": "object",
        "required": ["id", "name", "domain_id", "description", "enabled", "is_domain", "parent_id", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "domain_id": {"type": "string"},
            "description": {"type": "string"},
            "enabled": {"type": "boolean"},
            "is_domain": {"type": "boolean"},
            "parent_id": {"type": "string"},
            "tags": {"type": "array"},
            "options": {"type": "object"},
            "links": ks_self_link(),
        },
    });
    /// `{"project": ...}`.
    ProjectBody => wrapped("project", "Project");
    /// `{"projects": [...], "links": ...}`.
    ProjectList => ks_list("projects", "Project");
    /// `POST /users`.
    UserCreate => json!({
        "type": "object",
        "required": ["user"],
        "properties": {"user": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "password": {"type": "string"},
                "default_project_id": {"type": "string"},
                "domain_id": {"type": "string"},
                "enabled": {"type": "boolean"},
                "email": {"type": "string"},
            },
        }},
    });
    /// `PATCH /users/{id}`: the password and `enabled`; other values only unchanged.
    UserUpdate => json!({
        "type": "object",
        "required": ["user"],
        "properties": {"user": {
            "type": "object",
            "properties": {"password": {"type": "string"}, "enabled": {"type": "boolean"}, "name": {"type": "string"}, "email": {"type": "string"}},
        }},
    });
    /// A user; `email` and `default_project_id` only when set.
    User => json!({
        "type": "object",
        "required": ["id", "name", "domain_id", "enabled", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "domain_id": {"type": "string"},
            "enabled": {"type": "boolean"},
            "email": {"type": "string"},
            "default_project_id": {"type": "string"},
            "password_expires_at": nullable_string(),
            "options": {"type": "object"},
            "links": ks_self_link(),
        },
    });
    /// `{"user": ...}`.
    UserBody => wrapped("user", "User");
    /// `{"users": [...], "links": ...}`.
    UserList => ks_list("users", "User");
    /// A role (global).
    Role => json!({
        "type": "object",
        "required": ["id", "name", "links"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain_id": {"type": "null"}, "links": ks_self_link()},
    });
    /// `{"role": ...}`.
    RoleBody => wrapped("role", "Role");
    /// `POST /roles`.
    RoleCreate => json!({
        "type": "object",
        "required": ["role"],
        "properties": {"role": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "domain_id": {"type": "null"}, "description": {"type": ["string", "null"]}},
        }},
    });
    /// `POST /users/{id}/application_credentials`.
    AppCredCreate => json!({
        "type": "object",
        "required": ["application_credential"],
        "properties": {"application_credential": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": ["string", "null"]},
                "secret": {"type": ["string", "null"]},
                "expires_at": {"type": ["string", "null"]},
                "roles": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}},
                "unrestricted": {"type": "boolean"},
            },
        }},
    });
    /// An application credential; `secret` only in the answer to its creation.
    AppCred => json!({
        "type": "object",
        "required": ["id", "name", "user_id", "project_id", "roles", "expires_at", "unrestricted", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "user_id": {"type": "string"},
            "project_id": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "object"}},
            "expires_at": {"type": ["string", "null"]},
            "unrestricted": {"type": "boolean"},
            "access_rules": {"type": "array"},
            "secret": {"type": "string"},
            "links": ks_self_link(),
        },
    });
    /// `{"application_credential": ...}`.
    AppCredBody => wrapped("application_credential", "AppCred");
    /// `{"application_credentials": [...], "links": ...}`.
    AppCredList => ks_list("application_credentials", "AppCred");
    /// `{"tags": [...]}`: a project's tags.
    TagList => json!({
        "type": "object",
        "required": ["tags"],
        "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 80}},
    });
    /// `{"roles": [...], "links": ...}`.
    RoleList => ks_list("roles", "Role");
    /// A role assignment (names with `include_names`).
    RoleAssignment => json!({
        "type": "object",
        "required": ["role", "user", "scope", "links"],
        "properties": {
            "role": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
            "user": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
            "scope": {"type": "object", "required": ["project"], "properties": {"project": {"type": "object", "required": ["id"]}}},
            "links": {"type": "object", "required": ["assignment"], "properties": {"assignment": {"type": "string"}}},
        },
    });
    /// `{"role_assignments": [...], "links": ...}`.
    RoleAssignmentList => ks_list("role_assignments", "RoleAssignment");
    /// A domain, service, endpoint or region: an id and a self link.
    KeystoneEntity => json!({
        "type": "object",
        "required": ["id", "links"],
        "properties": {"id": {"type": "string"}, "links": ks_self_link()},
    });
    /// `{"domain": ...}`.
    DomainBody => wrapped("domain", "KeystoneEntity");
    /// `{"domains": [...]}`.
    DomainList => ks_list("domains", "KeystoneEntity");
    /// `{"service": ...}`.
    ServiceBody => wrapped("service", "KeystoneEntity");
    /// `{"services": [...]}`.
    ServiceList => ks_list("services", "KeystoneEntity");
    /// `{"endpoint": ...}`.
    EndpointBody => wrapped("endpoint", "KeystoneEntity");
    /// `{"endpoints": [...]}`.
    EndpointList => ks_list("endpoints", "KeystoneEntity");
    /// `{"region": ...}`.
    RegionBody => wrapped("region", "KeystoneEntity");
    /// `{"regions": [...]}`.
    RegionList => ks_list("regions", "KeystoneEntity");

    // ------------------------------------------------------------- image
    /// `POST /images`: the image's attributes, extra properties as strings.
    ImageCreate => json!({
        "type": "object",
        "properties": {
            "name": nullable_string(),
            "disk_format": {"type": "string", "enum": ["raw", "qcow2", "vmdk", "vdi", "iso", "ami", "ari", "aki", "vhd", "vhdx", "ploop"]},
            "container_format": {"type": "string", "enum": ["bare", "ovf", "ami", "ari", "aki", "ova", "docker", "compressed"]},
            "visibility": {"type": "string", "enum": ["public", "private", "shared", "community"]},
            "protected": {"type": "boolean"},
            "os_hidden": {"type": "boolean"},
            "min_disk": {"type": "integer", "minimum": 0},
            "min_ram": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": {"type": "string"},
    });
    /// `PATCH /images/{id}`: a JSON patch (`add`, `replace`, `remove` of `/<attribute>`).
    ImagePatch => json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"type": "string", "enum": ["add", "replace", "remove"]},
                "path": {"type": "string", "pattern": "^/"},
                "value": {},
            },
        },
    });
    /// An image: the server's own `GET /v2/schemas/image`.
    Image => strip_glance_keywords(stratus_api::image::image_schema());
    /// The image list: the server's own `GET /v2/schemas/images`.
    ImageList => strip_glance_keywords(stratus_api::image::images_schema());
    /// An image member: the server's own `GET /v2/schemas/member`.
    ImageMember => json!({
        "type": "object",
        "required": ["image_id", "member_id", "status", "created_at", "updated_at", "schema"],
        "properties": strip_glance_keywords(stratus_api::image::member_schema())["properties"].clone(),
    });
    /// `{"members": [...], "schema": ...}`.
    ImageMemberList => json!({
        "type": "object",
        "required": ["members", "schema"],
        "properties": {"members": {"type": "array", "items": {"$ref": "#/components/schemas/ImageMember"}}, "schema": {"type": "string"}},
    });
    /// `POST /images/{id}/members`: the project to share with.
    ImageMemberCreate => json!({"type": "object", "required": ["member"], "properties": {"member": {"type": "string"}}});
    /// `PUT /images/{id}/members/{member_id}`: the member's answer.
    ImageMemberUpdate => json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["pending", "accepted", "rejected"]}}});
    /// `GET /info/import`: the import methods offered.
    ImageImportInfo => json!({
        "type": "object",
        "required": ["import-methods"],
        "properties": {"import-methods": {"type": "object", "required": ["value"], "properties": {"value": {"type": "array", "items": {"type": "string"}}}}},
    });
    /// `POST /images/{id}/import`: the method (`glance-direct`).
    ImageImport => json!({
        "type": "object",
        "required": ["method"],
        "properties": {
            "method": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "enum": ["glance-direct", "web-download"]}, "uri": {"type": "string", "description": "web-download: the URL to fetch"}}},
            "all_stores": {"type": "boolean"},
            "all_stores_must_succeed": {"type": "boolean"},
        },
    });
    /// `GET /images/{id}/tasks`: the image's import tasks.
    ImageTaskList => json!({
        "type": "object",
        "required": ["tasks"],
        "properties": {"tasks": {"type": "array", "items": {"type": "object", "required": ["id", "type", "status", "image_id"], "properties": {
            "id": {"type": "string"}, "type": {"type": "string"}, "status": {"type": "string"}, "image_id": {"type": "string"},
            "request_id": {"type": "string"}, "user_id": {"type": "string"}, "owner": {"type": "string"}, "message": {"type": "string"},
            "input": {"type": "object"}, "result": {"type": ["object", "null"]}, "expires_at": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        }}}},
    });
    /// `POST /v2/tasks`: an `import` task.
    ImageTaskCreate => json!({
        "type": "object",
        "required": ["type", "input"],
        "properties": {
            "type": {"type": "string", "enum": ["import"]},
            "input": {"type": "object", "required": ["import_from", "import_from_format", "image_properties"], "properties": {
                "import_from": {"type": "string"}, "import_from_format": {"type": "string"}, "image_properties": {"type": "object"},
            }},
        },
    });
    /// A task (Glance's `task` schema).
    ImageTask => json!({
        "type": "object",
        "required": ["id", "type", "status", "owner", "created_at", "updated_at", "self", "schema"],
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"]},
            "owner": {"type": "string"}, "image_id": {"type": ["string", "null"]}, "request_id": {"type": ["string", "null"]}, "user_id": {"type": ["string", "null"]},
            "input": {"type": "object"}, "result": {"type": ["object", "null"]}, "message": {"type": ["string", "null"]},
            "expires_at": {"type": "string"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "self": {"type": "string"}, "schema": {"type": "string"},
        },
    });
    /// A page of tasks (Glance's `tasks` schema).
    ImageTaskPage => json!({
        "type": "object",
        "required": ["tasks", "first", "schema"],
        "properties": {"tasks": {"type": "array", "items": {"type": "object"}}, "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}},
    });
    /// A metadefs namespace (Glance's `namespace` schema), with its content inline on show.
    MetadefNamespace => json!({
        "type": "object",
        "required": ["namespace", "visibility", "protected", "owner", "created_at", "updated_at", "schema", "self"],
        "properties": {
            "namespace": {"type": "string"}, "display_name": {"type": "string"}, "description": {"type": "string"},
            "visibility": {"type": "string", "enum": ["public", "private"]}, "protected": {"type": "boolean"},
            "owner": {"type": "string"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "schema": {"type": "string"}, "self": {"type": "string"},
            "resource_type_associations": {"type": "array", "items": {"type": "object"}},
            "properties": {"type": "object"}, "objects": {"type": "array", "items": {"type": "object"}},
            "tags": {"type": "array", "items": {"type": "object"}},
        },
    });
    /// `POST /metadefs/namespaces` and `PUT .../{namespace}`: a namespace (only `namespace` is required).
    MetadefNamespaceCreate => json!({
        "type": "object",
        "required": ["namespace"],
        "properties": {
            "namespace": {"type": "string", "maxLength": 80}, "display_name": {"type": "string", "maxLength": 80},
            "description": {"type": "string", "maxLength": 500}, "visibility": {"type": "string", "enum": ["public", "private"]},
            "protected": {"type": "boolean"}, "owner": {"type": "string", "maxLength": 255},
        },
    });
    /// `GET /metadefs/namespaces`: a page of namespaces.
    MetadefNamespaceList => json!({
        "type": "object",
        "required": ["namespaces", "first", "schema"],
        "properties": {"namespaces": {"type": "array", "items": {"type": "object"}}, "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}},
    });
    /// A metadefs object, property, tag or resource-type association (one definition).
    MetadefItem => json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
    /// `POST/PUT` of an object, property, tag or resource-type association: Glance's schema of that kind.
    MetadefItemCreate => json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 80}}});
    /// `GET .../objects`: a namespace's objects.
    MetadefObjectList => json!({"type": "object", "required": ["objects"], "properties": {"objects": {"type": "array", "items": {"type": "object"}}, "schema": {"type": "string"}}});
    /// `GET .../properties`: a namespace's properties, by name.
    MetadefPropertyList => json!({"type": "object", "required": ["properties"], "properties": {"properties": {"type": "object"}, "schema": {"type": "string"}}});
    /// `GET .../tags` and `POST .../tags`: a namespace's tags.
    MetadefTagList => json!({"type": "object", "required": ["tags"], "properties": {"tags": {"type": "array", "items": {"type": "object", "required": ["name"]}}}});
    /// `GET .../resource_types` of a namespace: its resource-type associations.
    MetadefAssociationList => json!({"type": "object", "required": ["resource_type_associations"], "properties": {"resource_type_associations": {"type": "array", "items": {"type": "object"}}}});
    /// `GET /metadefs/resource_types`: every resource type.
    MetadefResourceTypeList => json!({"type": "object", "required": ["resource_types"], "properties": {"resource_types": {"type": "array", "items": {"type": "object", "required": ["name"]}}}});
    /// A Glance schema document.
    GlanceSchema => json!({"type": "object", "required": ["name", "properties"], "properties": {"name": {"type": "string"}, "properties": {"type": "object"}}});

    // ------------------------------------------------------------ volume
    /// `POST /volumes`: `size` (an integer or a numeric string) is required.
    VolumeCreate => json!({
        "type": "object",
        "required": ["volume"],
        "properties": {"volume": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 20},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "metadata": string_map(),
                "imageRef": {"type": "string"},
                "volume_type": {"type": "string"},
                "availability_zone": {"type": "string"},
            },
        }},
    });
    /// `PUT /volumes/{id}`.
    VolumeUpdate => json!({
        "type": "object",
        "required": ["volume"],
        "properties": {"volume": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "metadata": string_map()},
        }},
    });
    /// `POST /volumes/{id}/action`: one action key.
    VolumeAction => json!({
        "oneOf": [
            {"type": "object", "required": ["os-extend"], "additionalProperties": false, "properties": {"os-extend": {
                "type": "object", "required": ["new_size"], "properties": {"new_size": {"type": "integer", "minimum": 1, "maximum": 40}}}}},
            {"type": "object", "required": ["os-reset_status"], "additionalProperties": false, "properties": {"os-reset_status": {
                "type": "object", "properties": {"status": {"type": "string"}, "attach_status": {"type": "string"}}}}},
            {"type": "object", "required": ["os-set_bootable"], "additionalProperties": false, "properties": {"os-set_bootable": {
                "type": "object", "required": ["bootable"], "properties": {"bootable": {"type": "boolean"}}}}},
            {"type": "object", "required": ["os-retype"], "additionalProperties": false, "properties": {"os-retype": {
                "type": "object", "required": ["new_type"], "properties": {"new_type": {"type": "string"}, "migration_policy": {"type": "string", "enum": ["never", "on-demand"]}}}}},
            {"type": "object", "required": ["os-reimage"], "additionalProperties": false, "properties": {"os-reimage": {
                "type": "object", "required": ["image_id"], "additionalProperties": false, "properties": {"image_id": {"type": "string", "format": "uuid"}, "reimage_reserved": {"type": "boolean"}}}}},
            {"type": "object", "required": ["os-extend_volume_completion"], "additionalProperties": false, "properties": {"os-extend_volume_completion": {
                "type": "object", "additionalProperties": false, "properties": {"error": {"type": "boolean"}}}}},
            {"type": "object", "required": ["revert"], "additionalProperties": false, "properties": {"revert": {
                "type": "object", "properties": {"snapshot_id": {"type": ["string", "null"]}}}}},
        ],
    });
    /// A volume, as `GET /volumes/{id}` shows it.
    Volume => json!({
        "type": "object",
        "required": ["id", "name", "description", "size", "status", "availability_zone", "bootable", "attachments", "created_at", "updated_at", "metadata", "links", "encrypted", "multiattach"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": nullable_string(),
            "description": nullable_string(),
            "size": {"type": "integer"},
            "status": {"type": "string"},
            "availability_zone": nullable_string(),
            "bootable": {"type": "string", "enum": ["true", "false"]},
            "volume_type": nullable_string(),
            "volume_type_id": nullable_string(),
            "attachments": {"type": "array", "items": {"type": "object", "required": ["server_id", "attachment_id", "volume_id", "id"]}},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "metadata": string_map(),
            "links": rel_links(),
            "user_id": {"type": "string"},
            "os-vol-tenant-attr:tenant_id": {"type": "string"},
            "encrypted": {"type": "boolean"},
            "multiattach": {"type": "boolean"},
        },
    });
    /// `{"volume": ...}`.
    VolumeBody => wrapped("volume", "Volume");
    /// `GET /volumes/detail`.
    VolumeDetailList => json!({
        "type": "object",
        "required": ["volumes"],
        "properties": {"volumes": {"type": "array", "items": {"$ref": "#/components/schemas/Volume"}}, "volumes_links": rel_links()},
    });
    /// `GET /volumes`.
    VolumeList => json!({
        "type": "object",
        "required": ["volumes"],
        "properties": {
            "volumes": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "name", "links"],
                "properties": {"id": {"type": "string"}, "name": nullable_string(), "links": rel_links()},
            }},
            "volumes_links": rel_links(),
        },
    });
    /// `{"metadata": {...}}` (string values).
    VolumeMetadata => json!({"type": "object", "required": ["metadata"], "properties": {"metadata": string_map()}});
    /// `{"meta": {key: value}}`.
    VolumeMetaItem => json!({"type": "object", "required": ["meta"], "properties": {"meta": string_map()}});
    /// A volume type as shown (`extra_specs` filtered for non-admins).
    VolumeType => json!({
        "type": "object",
        "required": ["id", "name", "is_public", "description"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "is_public": {"type": "boolean"},
            "description": nullable_string(),
            "extra_specs": {"type": "object", "additionalProperties": nullable_string()},
            "qos_specs_id": nullable_string(),
            "os-volume-type-access:is_public": {"type": "boolean"},
        },
    });
    /// `{"volume_type": ...}`.
    VolumeTypeBody => wrapped("volume_type", "VolumeType");
    /// `{"volume_types": [...]}`.
    /// Cinder's availability zones.
    VolumeAzList => json!({"type": "object", "required": ["availabilityZoneInfo"], "properties": {"availabilityZoneInfo": {"type": "array", "items": {"type": "object", "required": ["zoneName", "zoneState"]}}}});
    /// Cinder's extensions.
    VolumeExtensionList => json!({"type": "object", "required": ["extensions"], "properties": {"extensions": {"type": "array", "items": {"type": "object", "required": ["alias", "name", "description", "updated", "links"]}}}});
    /// Cinder's services.
    VolumeServiceList => json!({"type": "object", "required": ["services"], "properties": {"services": {"type": "array", "items": {"type": "object", "required": ["binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"]}}}});
    /// A Cinder service change (`host`, `binary`, `disabled_reason`).
    VolumeServiceChange => json!({"type": "object", "properties": {"host": {"type": "string"}, "binary": {"type": "string"}, "disabled_reason": {"type": "string"}}});
    /// Cinder's hosts.
    VolumeHostList => json!({"type": "object", "required": ["hosts"], "properties": {"hosts": {"type": "array", "items": {"type": "object", "required": ["host_name", "service", "zone", "service-status", "service-state", "last-update"]}}}});
    /// Volume usage on one host, total first.
    VolumeHostBody => json!({"type": "object", "required": ["host"], "properties": {"host": {"type": "array", "items": {"type": "object", "required": ["resource"]}}}});
    /// Backend pools.
    VolumePoolList => json!({"type": "object", "required": ["pools"], "properties": {"pools": {"type": "array", "items": {"type": "object", "required": ["name"]}}}});
    /// A backend's capabilities.
    VolumeCapabilities => json!({"type": "object", "required": ["namespace", "volume_backend_name", "vendor_name", "driver_version", "storage_protocol", "properties"]});
    /// A Cinder quota set (limits, or with `usage=true` each as `{limit, in_use, reserved}`).
    VolumeQuotaSetBody => json!({"type": "object", "required": ["quota_set"], "properties": {"quota_set": {"type": "object"}}});
    /// A Cinder quota class.
    VolumeQuotaClassBody => json!({"type": "object", "required": ["quota_class_set"], "properties": {"quota_class_set": {"type": "object"}}});
    VolumeTypeList => json!({"type": "object", "required": ["volume_types"], "properties": {"volume_types": {"type": "array", "items": {"$ref": "#/components/schemas/VolumeType"}}}});
    /// `POST /types`.
    VolumeTypeCreate => json!({
        "type": "object",
        "required": ["volume_type"],
        "properties": {"volume_type": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": nullable_string(),
                "extra_specs": string_map(),
                "os-volume-type-access:is_public": {"type": "boolean"},
            },
        }},
    });
    /// `PUT /types/{id}`: at least one of name, description, is_public.
    VolumeTypeUpdate => json!({
        "type": "object",
        "required": ["volume_type"],
        "properties": {"volume_type": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": nullable_string(), "is_public": {"type": "boolean"}},
        }},
    });
    /// `{"extra_specs": {...}}`.
    VolumeTypeExtraSpecs => json!({"type": "object", "required": ["extra_specs"], "properties": {"extra_specs": {"type": "object", "additionalProperties": nullable_string()}}});
    /// `{key: value}`: one extra spec.
    VolumeTypeExtraSpecItem => json!({"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": nullable_string()});
    /// `{"volume_type_access": [...]}`.
    VolumeTypeAccessList => json!({
        "type": "object",
        "required": ["volume_type_access"],
        "properties": {"volume_type_access": {"type": "array", "items": {"type": "object", "required": ["volume_type_id", "project_id"], "properties": {"volume_type_id": {"type": "string"}, "project_id": {"type": "string"}}}}},
    });
    /// `POST /types/{id}/action`: `addProjectAccess` or `removeProjectAccess`.
    VolumeTypeAction => json!({
        "oneOf": [
            {"type": "object", "required": ["addProjectAccess"], "additionalProperties": false, "properties": {"addProjectAccess": {
                "type": "object", "required": ["project"], "properties": {"project": {"type": "string", "minLength": 1, "maxLength": 255}}}}},
            {"type": "object", "required": ["removeProjectAccess"], "additionalProperties": false, "properties": {"removeProjectAccess": {
                "type": "object", "required": ["project"], "properties": {"project": {"type": "string", "minLength": 1, "maxLength": 255}}}}},
        ],
    });
    /// A volume snapshot (progress and project only in the detailed view;
    /// `group_snapshot_id` from 3.14, `user_id` from 3.41, `consumes_quota` from 3.65).
    VolumeSnapshot => json!({
        "type": "object",
        "required": ["id", "status", "description", "created_at", "updated_at", "metadata", "name", "volume_id", "size"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "name": nullable_string(),
            "description": nullable_string(),
            "created_at": {"type": "string"},
            "updated_at": nullable_string(),
            "volume_id": {"type": "string"},
            "size": {"type": "integer"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "os-extended-snapshot-attributes:progress": {"type": "string"},
            "os-extended-snapshot-attributes:project_id": {"type": "string"},
            "group_snapshot_id": nullable_string(),
            "user_id": {"type": "string"},
            "consumes_quota": {"type": "boolean"},
        },
    });
    /// `{"snapshot": ...}`.
    VolumeSnapshotBody => wrapped("snapshot", "VolumeSnapshot");
    /// `{"snapshots": [...]}`.
    VolumeSnapshotList => json!({"type": "object", "required": ["snapshots"], "properties": {"snapshots": {"type": "array", "items": {"$ref": "#/components/schemas/VolumeSnapshot"}}, "snapshots_links": rel_links(), "count": {"type": "integer", "minimum": 0}}});
    /// `POST /snapshots`.
    VolumeSnapshotCreate => json!({
        "type": "object",
        "required": ["snapshot"],
        "properties": {"snapshot": {
            "type": "object",
            "required": ["volume_id"],
            "properties": {
                "volume_id": {"type": "string"},
                "name": nullable_string(),
                "description": nullable_string(),
                "force": {"type": ["boolean", "string"]},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }},
    });
    /// `PUT /snapshots/{id}`.
    VolumeSnapshotUpdate => json!({
        "type": "object",
        "required": ["snapshot"],
        "properties": {"snapshot": {"type": "object", "properties": {"name": nullable_string(), "description": nullable_string()}}},
    });
    /// `POST /snapshots/{id}/action`: `os-reset_status`, `os-force_delete`,
    /// `os-update_snapshot_status` or `os-update_progress`.
    VolumeSnapshotAction => json!({"type": "object", "minProperties": 1, "maxProperties": 1});
    /// A volume transfer (`auth_key` only in the create answer; history keys from 3.57).
    VolumeTransfer => json!({
        "type": "object",
        "required": ["id", "name", "volume_id", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": nullable_string(),
            "volume_id": {"type": "string"},
            "links": rel_links(),
            "created_at": {"type": "string"},
            "auth_key": {"type": "string"},
            "no_snapshots": {"type": "boolean"},
            "source_project_id": {"type": "string"},
            "destination_project_id": nullable_string(),
            "accepted": {"type": "boolean"},
        },
    });
    /// A project's default volume type (3.62).
    VolumeDefaultType => json!({
        "type": "object",
        "required": ["project_id", "volume_type_id"],
        "additionalProperties": false,
        "properties": {"project_id": {"type": "string"}, "volume_type_id": {"type": "string"}},
    });
    /// `{"default_type": ...}`.
    VolumeDefaultTypeBody => wrapped("default_type", "VolumeDefaultType");
    /// `{"default_types": [...]}`.
    VolumeDefaultTypeList => json!({"type": "object", "required": ["default_types"], "properties": {"default_types": {"type": "array", "items": {"$ref": "#/components/schemas/VolumeDefaultType"}}}});
    /// `PUT /default-types/{project_id}`.
    VolumeDefaultTypeSet => json!({
        "type": "object",
        "required": ["default_type"],
        "properties": {"default_type": {
            "type": "object",
            "required": ["volume_type"],
            "additionalProperties": false,
            "properties": {"volume_type": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^\\S(.*\\S)?$"}},
        }},
    });
    /// `{"transfer": ...}`.
    VolumeTransferBody => wrapped("transfer", "VolumeTransfer");
    /// `{"transfers": [...]}`.
    VolumeTransferList => json!({"type": "object", "required": ["transfers"], "properties": {"transfers": {"type": "array", "items": {"$ref": "#/components/schemas/VolumeTransfer"}}}});
    /// `POST /os-volume-transfer`.
    VolumeTransferCreate => json!({
        "type": "object",
        "required": ["transfer"],
        "properties": {"transfer": {
            "type": "object",
            "required": ["volume_id"],
            "properties": {"volume_id": {"type": "string", "format": "uuid"}, "name": {"type": ["string", "null"], "maxLength": 255}, "no_snapshots": {"type": "boolean"}},
        }},
    });
    /// A group type (`group_specs` for admins).
    GroupType => json!({
        "type": "object",
        "required": ["id", "name", "description", "is_public"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "description": nullable_string(),
            "is_public": {"type": "boolean"},
            "group_specs": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    });
    /// `{"group_type": ...}`.
    GroupTypeBody => wrapped("group_type", "GroupType");
    /// `{"group_types": [...]}`.
    GroupTypeList => json!({"type": "object", "required": ["group_types"], "properties": {"group_types": {"type": "array", "items": {"$ref": "#/components/schemas/GroupType"}}}});
    /// `{"group_specs": {...}}`.
    GroupSpecs => json!({"type": "object", "required": ["group_specs"], "properties": {"group_specs": {"type": "object", "additionalProperties": {"type": "string"}}}});
    /// A generic volume group (the short form has only `id` and `name`).
    Group => json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string"},
            "description": nullable_string(),
            "availability_zone": {"type": "string"},
            "created_at": {"type": "string"},
            "group_type": {"type": "string"},
            "volume_types": {"type": "array", "items": {"type": "string"}},
            "group_snapshot_id": nullable_string(),
            "source_group_id": nullable_string(),
            "volumes": {"type": "array", "items": {"type": "string"}},
            "replication_status": nullable_string(),
            "project_id": {"type": "string"},
        },
    });
    /// `{"group": ...}`.
    GroupBody => wrapped("group", "Group");
    /// `{"groups": [...]}`.
    GroupList => json!({"type": "object", "required": ["groups"], "properties": {"groups": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}}}});
    /// A group snapshot (the short form has only `id` and `name`; create adds `group_type_id`).
    GroupSnapshot => json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "group_id": {"type": "string"},
            "group_type_id": {"type": "string"},
            "status": {"type": "string"},
            "description": nullable_string(),
            "created_at": {"type": "string"},
            "project_id": {"type": "string"},
        },
    });
    /// `{"group_snapshot": ...}`.
    GroupSnapshotBody => wrapped("group_snapshot", "GroupSnapshot");
    /// `{"group_snapshots": [...]}`.
    GroupSnapshotList => json!({"type": "object", "required": ["group_snapshots"], "properties": {"group_snapshots": {"type": "array", "items": {"$ref": "#/components/schemas/GroupSnapshot"}}}});
    /// A user message.
    Message => json!({
        "type": "object",
        "required": ["id", "event_id", "user_message", "message_level", "created_at", "request_id"],
        "properties": {
            "id": {"type": "string"},
            "event_id": {"type": "string"},
            "user_message": {"type": "string"},
            "message_level": {"type": "string"},
            "created_at": {"type": "string"},
            "guaranteed_until": {"type": "string"},
            "request_id": {"type": "string"},
            "resource_type": {"type": "string"},
            "resource_uuid": {"type": "string"},
            "links": rel_links(),
        },
    });
    /// `{"message": ...}`.
    MessageBody => wrapped("message", "Message");
    /// `{"messages": [...]}`.
    MessageList => json!({"type": "object", "required": ["messages"], "properties": {"messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}}});
    /// `GET /resource_filters` (Block Storage 3.33).
    ResourceFilterList => json!({"type": "object", "required": ["resource_filters"], "properties": {"resource_filters": {"type": "array", "items": {"type": "object", "required": ["resource", "filters"], "properties": {"resource": {"type": "string"}, "filters": {"type": "array", "items": {"type": "string"}}}}}}});
    /// `POST /os-volume-transfer/{id}/accept`.
    VolumeTransferAccept => json!({
        "type": "object",
        "required": ["accept"],
        "properties": {"accept": {"type": "object", "required": ["auth_key"], "properties": {"auth_key": {"type": "string", "minLength": 1, "maxLength": 255}}}},
    });
    /// A QoS spec.
    QosSpec => json!({"type": "object", "required": ["id", "name", "consumer", "specs"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "consumer": {"type": "string"}, "specs": string_map()}});
    /// `{"qos_specs": ..., "links": [...]}`.
    QosSpecBody => json!({"type": "object", "required": ["qos_specs", "links"], "properties": {"qos_specs": {"$ref": "#/components/schemas/QosSpec"}, "links": rel_links()}});
    /// `{"qos_specs": [...]}`.
    QosSpecList => json!({"type": "object", "required": ["qos_specs"], "properties": {"qos_specs": {"type": "array", "items": {"$ref": "#/components/schemas/QosSpec"}}}});
    /// `POST /qos-specs`: `name`, `consumer`, every other key a spec.
    QosSpecCreate => json!({"type": "object", "required": ["qos_specs"], "properties": {"qos_specs": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "consumer": {"enum": ["front-end", "back-end", "both"]}}, "additionalProperties": {"type": "string"}}}});
    /// `{"qos_specs": {key: value}}`.
    QosSpecKeys => json!({"type": "object", "required": ["qos_specs"], "properties": {"qos_specs": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}}}});
    /// `{"keys": [...]}`.
    QosSpecDeleteKeys => json!({"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "string"}}}});
    /// `{"qos_associations": [...]}`.
    QosAssociations => json!({"type": "object", "required": ["qos_associations"], "properties": {"qos_associations": {"type": "array", "items": {"type": "object", "required": ["association_type", "id", "name"]}}}});
    /// A volume type's encryption spec (`{}` when none).
    EncryptionSpec => json!({"type": "object", "properties": {"volume_type_id": {"type": "string"}, "encryption_id": {"type": "string"}, "provider": {"type": "string"}, "cipher": nullable_string(), "key_size": {"type": ["integer", "null"]}, "control_location": {"enum": ["front-end", "back-end"]}}});
    /// `{"encryption": {...}}`.
    EncryptionBody => json!({"type": "object", "required": ["encryption"], "properties": {"encryption": {"type": "object", "properties": {"provider": {"type": "string", "minLength": 1, "maxLength": 255}, "cipher": nullable_string(), "key_size": {"type": ["integer", "null"], "minimum": 0}, "control_location": {"enum": ["front-end", "back-end"]}}}}});
    /// `{key: value}`: one field of an encryption spec.
    EncryptionItem => json!({"type": "object", "minProperties": 1, "maxProperties": 1});
    /// `{"volume-summary": {total_size, total_count[, metadata]}}`.
    VolumeSummary => json!({"type": "object", "required": ["volume-summary"], "properties": {"volume-summary": {"type": "object", "required": ["total_size", "total_count"], "properties": {"total_size": {"type": "integer"}, "total_count": {"type": "integer"}, "metadata": {"type": "object"}}}}});
    /// Cinder's absolute limits.
    VolumeLimits => json!({
        "type": "object",
        "required": ["limits"],
        "properties": {"limits": {
            "type": "object",
            "required": ["rate", "absolute"],
            "properties": {"rate": {"type": "array"}, "absolute": {"type": "object", "additionalProperties": {"type": "integer"}}},
        }},
    });
    /// `POST /attachments`.
    AttachmentCreate => json!({
        "type": "object",
        "required": ["attachment"],
        "properties": {"attachment": {
            "type": "object",
            "required": ["volume_uuid", "instance_uuid"],
            "properties": {
                "volume_uuid": {"type": "string", "format": "uuid"},
                "instance_uuid": {"type": "string", "format": "uuid"},
                "connector": {"type": ["object", "null"]},
                "mode": {"type": "string", "enum": ["rw"]},
            },
        }},
    });
    /// `PUT /attachments/{id}`: the host's connector.
    AttachmentUpdate => json!({
        "type": "object",
        "required": ["attachment"],
        "properties": {"attachment": {"type": "object", "required": ["connector"], "properties": {"connector": {"type": "object"}}}},
    });
    /// `POST /attachments/{id}/action`: `{"os-complete": null}`.
    AttachmentAction => json!({
        "type": "object",
        "required": ["os-complete"],
        "additionalProperties": false,
        "properties": {"os-complete": {"type": "null"}},
    });
    /// An attachment (connection info once the connector is known).
    Attachment => json!({
        "type": "object",
        "required": ["id", "status", "instance", "volume_id", "attached_at", "detached_at", "attach_mode", "connection_info"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "instance": {"type": "string"},
            "volume_id": {"type": "string"},
            "attached_at": nullable_string(),
            "detached_at": {"type": "null"},
            "attach_mode": {"type": "string", "enum": ["rw"]},
            "connection_info": {"type": ["object", "null"]},
        },
    });
    /// `{"attachment": ...}`.
    AttachmentBody => wrapped("attachment", "Attachment");
    /// `GET /attachments[/detail]` (short entries without `/detail`).
    AttachmentList => json!({
        "type": "object",
        "required": ["attachments"],
        "properties": {"attachments": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "status", "instance", "volume_id"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "instance": {"type": "string"}, "volume_id": {"type": "string"}},
        }}},
    });

    // ----------------------------------------------------------- compute
    /// `PUT /servers/{id}`.
    ServerUpdate => json!({
        "type": "object",
        "required": ["server"],
        "properties": {"server": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}}}},
    });
    /// `POST /servers/{id}/action`: one action key.
    ServerAction => json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "os-stop": {"type": "null"},
            "os-start": {"type": "null"},
            "reboot": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "enum": ["SOFT", "HARD"]}}},
            "pause": {"type": "null"},
            "unpause": {"type": "null"},
            "suspend": {"type": "null"},
            "resume": {"type": "null"},
            "shelve": {"type": "null"},
            "shelveOffload": {"type": "null"},
            "unshelve": {"type": "null"},
            "resize": {"type": "object", "required": ["flavorRef"], "properties": {"flavorRef": {"type": "string"}}},
            "migrate": {"type": "null"},
            "confirmResize": {"type": "null"},
            "revertResize": {"type": "null"},
            "evacuate": {"type": "object", "properties": {"host": {"type": "string"}, "adminPass": {"type": "string"}, "onSharedStorage": {"type": "boolean"}}},
            "createImage": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "metadata": string_map()}},
            "rebuild": {"type": "object", "required": ["imageRef"], "properties": {"imageRef": {"type": "string"}, "name": {"type": "string"}, "metadata": string_map(), "adminPass": {"type": "string"}, "preserve_ephemeral": {"type": "boolean"}}},
            "restore": {"type": "null"},
            "forceDelete": {"type": "null"},
            "lock": {"type": "null"},
            "unlock": {"type": "null"},
            "os-resetState": {"type": "object", "required": ["state"], "properties": {"state": {"type": "string", "enum": ["active", "error"]}}},
            "os-getConsoleOutput": {"type": "object", "properties": {"length": {"type": "integer"}}},
        },
    });
    /// `POST /servers/{id}/os-volume_attachments`.
    VolumeAttach => json!({
        "type": "object",
        "required": ["volumeAttachment"],
        "properties": {"volumeAttachment": {
            "type": "object",
            "required": ["volumeId"],
            "properties": {"volumeId": {"type": "string", "format": "uuid"}, "device": {"type": ["string", "null"]}},
        }},
    });
    /// A flavor (the detailed keys only in the detailed forms).
    Flavor => json!({
        "type": "object",
        "required": ["id", "name", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "links": rel_links(),
            "ram": {"type": "integer"},
            "disk": {"type": "integer"},
            "vcpus": {"type": "integer"},
            "swap": {"oneOf": [{"type": "integer"}, {"type": "string", "const": ""}]},
        },
    });
    /// `{"flavor": ...}`.
    FlavorBody => wrapped("flavor", "Flavor");
    /// `{"flavors": [...]}`, with `flavors_links` when the page is full.
    FlavorList => json!({"type": "object", "required": ["flavors"], "properties": {"flavors": {"type": "array", "items": {"$ref": "#/components/schemas/Flavor"}}, "flavors_links": {"type": "array", "items": {"type": "object", "required": ["rel", "href"]}}}});
    /// `POST /flavors`: name, ram, vcpus, disk; optional id, ephemeral, swap, rxtx_factor, is_public.
    FlavorCreateBody => json!({
        "type": "object",
        "required": ["flavor"],
        "properties": {"flavor": {
            "type": "object",
            "required": ["name", "ram", "vcpus", "disk"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "id": {"type": ["string", "number", "null"]},
                "ram": {"type": ["integer", "string"]},
                "vcpus": {"type": ["integer", "string"]},
                "disk": {"type": ["integer", "string"]},
                "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"]},
                "swap": {"type": ["integer", "string"]},
                "rxtx_factor": {"type": ["number", "string"]},
                "os-flavor-access:is_public": {"type": ["boolean", "string"]},
            },
        }},
    });
    /// `{"flavor_access": [...]}`: the projects a private flavor is shared with.
    FlavorAccessList => json!({
        "type": "object",
        "required": ["flavor_access"],
        "properties": {"flavor_access": {"type": "array", "items": {"type": "object", "required": ["flavor_id", "tenant_id"], "properties": {"flavor_id": {"type": "string"}, "tenant_id": {"type": "string"}}}}},
    });
    /// `addTenantAccess` or `removeTenantAccess`, `{"tenant": "<project id>"}`.
    FlavorAction => json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "addTenantAccess": {"type": "object", "required": ["tenant"], "properties": {"tenant": {"type": "string"}}},
            "removeTenantAccess": {"type": "object", "required": ["tenant"], "properties": {"tenant": {"type": "string"}}},
        },
    });
    /// `{"extra_specs": {...}}`.
    FlavorExtraSpecs => json!({
        "type": "object",
        "required": ["extra_specs"],
        "properties": {"extra_specs": {"type": "object", "additionalProperties": {"type": "string"}}},
    });
    /// One extra spec, `{key: value}`.
    FlavorExtraSpecItem => json!({
        "type": "object",
        "additionalProperties": {"type": "string"},
        "minProperties": 1,
        "maxProperties": 1,
    });
    /// A server as `GET /servers/{id}` shows it.
    Server => json!({
        "type": "object",
        "required": ["id", "name", "status", "tenant_id", "user_id", "metadata", "image", "flavor", "created", "updated", "addresses", "links"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "status": {"type": "string"},
            "tenant_id": {"type": "string"},
            "user_id": {"type": "string"},
            "metadata": string_map(),
            "image": {"oneOf": [{"type": "object", "required": ["id"]}, {"type": "string", "const": ""}]},
            "flavor": {"type": "object", "description": "`{id, links}`; from 2.47 the flavor itself (`original_name`, `vcpus`, `ram`, ...)"},
            "addresses": {"type": "object"},
            "links": rel_links(),
            "locked": {"type": "boolean"},
        },
    });
    /// `{"server": ...}`.
    ServerBody => wrapped("server", "Server");
    /// `GET /servers/detail`.
    ServerDetailList => json!({
        "type": "object",
        "required": ["servers"],
        "properties": {"servers": {"type": "array", "items": {"$ref": "#/components/schemas/Server"}}, "servers_links": rel_links()},
    });
    /// `GET /servers`.
    ServerList => json!({
        "type": "object",
        "required": ["servers"],
        "properties": {
            "servers": {"type": "array", "items": {"type": "object", "required": ["id", "name", "links"]}},
            "servers_links": rel_links(),
        },
    });
    /// The 202 body of a server create (`reservation_id` alone with `return_reservation_id`).
    ServerCreated => json!({
        "oneOf": [
            {"type": "object", "required": ["server"], "properties": {"server": {"type": "object", "required": ["id", "links", "adminPass"]}}},
            {"type": "object", "required": ["reservation_id"], "properties": {"reservation_id": {"type": "string"}}},
        ],
    });
    /// A server's volume attachment.
    ServerAttachment => json!({
        "type": "object",
        "required": ["id", "serverId", "volumeId"],
        "properties": {"id": {"type": "string"}, "serverId": {"type": "string"}, "volumeId": {"type": "string"}, "device": nullable_string()},
    });
    /// `{"volumeAttachment": ...}`.
    ServerAttachmentBody => wrapped("volumeAttachment", "ServerAttachment");
    /// `{"volumeAttachments": [...]}`.
    ServerAttachmentList => json!({
        "type": "object",
        "required": ["volumeAttachments"],
        "properties": {"volumeAttachments": {"type": "array", "items": {"$ref": "#/components/schemas/ServerAttachment"}}},
    });
    /// An instance action (`events` for admins on show).
    InstanceAction => json!({
        "type": "object",
        "required": ["action", "instance_uuid", "request_id", "start_time"],
        "properties": {"action": {"type": "string"}, "instance_uuid": {"type": "string"}, "request_id": {"type": "string"}, "start_time": {"type": "string"}, "events": {"type": "array"}},
    });
    /// `{"instanceAction": ...}`.
    InstanceActionBody => wrapped("instanceAction", "InstanceAction");
    /// `{"instanceActions": [...]}`.
    InstanceActionList => json!({
        "type": "object",
        "required": ["instanceActions"],
        "properties": {"instanceActions": {"type": "array", "items": {"$ref": "#/components/schemas/InstanceAction"}}},
    });
    /// `{"services": [...]}`.
    ComputeServiceList => json!({
        "type": "object",
        "required": ["services"],
        "properties": {"services": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "binary", "host", "zone", "status", "state", "updated_at"],
            "properties": {"status": {"type": "string", "enum": ["enabled", "disabled"]}, "state": {"type": "string", "enum": ["up", "down"]}},
        }}},
    });
    /// The body of a legacy `PUT /os-services/{action}`.
    ComputeServiceUpdated => json!({
        "type": "object",
        "required": ["service"],
        "properties": {"service": {"type": "object", "required": ["host", "binary"]}},
    });
    /// Nova's absolute limits with usage.
    ComputeLimits => json!({
        "type": "object",
        "required": ["limits"],
        "properties": {"limits": {
            "type": "object",
            "required": ["rate", "absolute"],
            "properties": {"rate": {"type": "array"}, "absolute": {"type": "object", "additionalProperties": {"type": "integer"}}},
        }},
    });
    /// `os-getConsoleOutput`'s `{"output": ...}` or evacuate's `{"adminPass": ...}`.
    ServerActionResult => json!({
        "type": "object",
        "minProperties": 1,
        "properties": {"output": {"type": "string"}, "adminPass": {"type": "string"}},
    });
    /// A created key pair (`private_key` only when generated).
    KeypairCreated => json!({
        "type": "object",
        "required": ["keypair"],
        "properties": {"keypair": {"type": "object", "required": ["name", "public_key", "fingerprint", "user_id"]}},
    });
    /// The caller's key pairs.
    KeypairList => json!({
        "type": "object",
        "required": ["keypairs"],
        "properties": {"keypairs": {"type": "array", "items": {"type": "object", "required": ["keypair"]}}},
    });
    /// One key pair in full.
    KeypairShow => json!({
        "type": "object",
        "required": ["keypair"],
        "properties": {"keypair": {"type": "object", "required": ["name", "public_key", "fingerprint", "user_id", "id", "deleted", "created_at", "updated_at", "deleted_at"]}},
    });
    /// A quota set as shown: every resource's limit, and the project id.
    QuotaSet => json!({
        "type": "object",
        "required": ["quota_set"],
        "properties": {"quota_set": quota_limits_schema(true)},
    });
    /// A quota set as an update answers it (no id).
    QuotaSetUpdated => json!({
        "type": "object",
        "required": ["quota_set"],
        "properties": {"quota_set": quota_limits_schema(false)},
    });
    /// A quota set with usage: each resource's `in_use`, `limit` and `reserved`.
    QuotaSetDetail => json!({
        "type": "object",
        "required": ["quota_set"],
        "properties": {"quota_set": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}},
            "additionalProperties": {
                "type": "object",
                "required": ["in_use", "limit", "reserved"],
                "properties": {"in_use": {"type": "integer"}, "limit": {"type": "integer"}, "reserved": {"type": "integer"}},
            },
        }},
    });
    /// A quota class as shown (with its name as id).
    QuotaClassSet => json!({
        "type": "object",
        "required": ["quota_class_set"],
        "properties": {"quota_class_set": quota_limits_schema(true)},
    });
    /// A quota class as an update answers it (no id).
    QuotaClassSetUpdated => json!({
        "type": "object",
        "required": ["quota_class_set"],
        "properties": {"quota_class_set": quota_limits_schema(false)},
    });
    /// A server's metadata.
    ServerMetadata => json!({
        "type": "object",
        "required": ["metadata"],
        "properties": {"metadata": {"type": "object", "additionalProperties": {"type": "string"}}},
    });
    /// A server's tags (2.26+).
    ServerTags => json!({
        "type": "object",
        "required": ["tags"],
        "properties": {"tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}}},
    });
    /// One metadata entry of a server.
    ServerMetaItem => json!({
        "type": "object",
        "required": ["meta"],
        "properties": {"meta": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 1}},
    });
    /// Hypervisors (brief or detailed).
    HypervisorList => json!({
        "type": "object",
        "required": ["hypervisors"],
        "properties": {"hypervisors": {"type": "array", "items": {"type": "object", "required": ["id", "hypervisor_hostname"]}}},
    });
    /// One hypervisor.
    HypervisorBody => json!({
        "type": "object",
        "required": ["hypervisor"],
        "properties": {"hypervisor": {"type": "object", "required": ["id", "hypervisor_hostname"]}},
    });
    /// Totals over every hypervisor.
    HypervisorStatistics => json!({
        "type": "object",
        "required": ["hypervisor_statistics"],
        "properties": {"hypervisor_statistics": {"type": "object", "required": ["count", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "running_vms"]}},
    });
    /// The legacy host list.
    HostList => json!({
        "type": "object",
        "required": ["hosts"],
        "properties": {"hosts": {"type": "array", "items": {"type": "object", "required": ["host_name", "service", "zone"]}}},
    });
    /// A host's resources (total, used now, used max, per project).
    HostShow => json!({
        "type": "object",
        "required": ["host"],
        "properties": {"host": {"type": "array", "items": {"type": "object", "required": ["resource"]}}},
    });
    /// A host's new status.
    HostUpdated => json!({
        "type": "object",
        "required": ["host"],
        "properties": {"host": {"type": "string"}, "status": {"type": "string"}},
    });
    /// Usage of every project.
    TenantUsageList => json!({
        "type": "object",
        "required": ["tenant_usages"],
        "properties": {"tenant_usages": {"type": "array", "items": {"type": "object", "required": ["tenant_id", "start", "stop", "total_hours"]}}},
    });
    /// Usage of one project (an empty object when none of its servers ran).
    TenantUsageBody => json!({
        "type": "object",
        "required": ["tenant_usage"],
        "properties": {"tenant_usage": {"type": "object"}},
    });
    /// The usage audit of the last period.
    AuditLogList => json!({
        "type": "object",
        "required": ["instance_usage_audit_logs"],
        "properties": {"instance_usage_audit_logs": {"type": "object", "required": ["num_hosts", "overall_status", "period_beginning", "period_ending"]}},
    });
    /// The usage audit of one period.
    AuditLogBody => json!({
        "type": "object",
        "required": ["instance_usage_audit_log"],
        "properties": {"instance_usage_audit_log": {"type": "object", "required": ["num_hosts", "overall_status", "period_beginning", "period_ending"]}},
    });
    /// A server's diagnostics (free-form before 2.48).
    Diagnostics => json!({"type": "object"});
    /// `PUT /servers/{id}/os-volume_attachments/{volume}` (2.85).
    VolumeAttachmentUpdate => json!({
        "type": "object",
        "required": ["volumeAttachment"],
        "properties": {"volumeAttachment": {"type": "object", "required": ["volumeId"],
            "properties": {"volumeId": {"type": "string", "format": "uuid"}, "delete_on_termination": {"type": "boolean"}}}},
    });
    /// `PUT /flavors/{id}` (2.55): the description only.
    FlavorUpdateBody => json!({
        "type": "object",
        "required": ["flavor"],
        "properties": {"flavor": {"type": "object", "required": ["description"], "additionalProperties": false,
            "properties": {"description": {"type": ["string", "null"], "maxLength": 65535}}}},
        "additionalProperties": false,
    });
    /// A server's NUMA topology (2.78).
    ServerTopology => json!({
        "type": "object",
        "required": ["nodes", "pagesize_kb"],
        "properties": {"nodes": {"type": "array"}},
    });
    /// A server's in-progress live migrations (2.23; none here).
    ServerMigrationList => json!({
        "type": "object",
        "required": ["migrations"],
        "properties": {"migrations": {"type": "array", "items": {"type": "object", "required": ["id", "server_uuid", "status"]}}},
    });
    /// Resizes, cold migrations and evacuations (`/os-migrations`; keys by microversion).
    MigrationList => json!({
        "type": "object",
        "required": ["migrations"],
        "properties": {
            "migrations": {"type": "array", "items": {"type": "object", "required": ["id", "instance_uuid", "status", "created_at", "updated_at"]}},
            "migrations_links": {"type": "array"},
        },
    });
    /// The tenant networks.
    NetworkList => json!({
        "type": "object",
        "required": ["networks"],
        "properties": {"networks": {"type": "array", "items": {"type": "object", "required": ["id", "label"]}}},
    });
    /// One network.
    NetworkBody => json!({
        "type": "object",
        "required": ["network"],
        "properties": {"network": {"type": "object", "required": ["id", "label"]}},
    });
    /// Images through the compute API.
    ComputeImageList => json!({
        "type": "object",
        "required": ["images"],
        "properties": {"images": {"type": "array", "items": {"type": "object", "required": ["id", "name", "links"]}}},
    });
    /// One image through the compute API.
    ComputeImageBody => json!({
        "type": "object",
        "required": ["image"],
        "properties": {"image": {"type": "object", "required": ["id", "name", "links", "status", "metadata", "minDisk", "minRam", "progress", "created", "updated"]}},
    });
    /// Volumes through the compute API.
    ComputeVolumeList => json!({
        "type": "object",
        "required": ["volumes"],
        "properties": {"volumes": {"type": "array", "items": {"type": "object", "required": ["id", "status", "size", "attachments"]}}},
    });
    /// One volume through the compute API.
    ComputeVolumeBody => json!({
        "type": "object",
        "required": ["volume"],
        "properties": {"volume": {"type": "object", "required": ["id", "status", "size", "availabilityZone", "createdAt", "displayName", "displayDescription", "volumeType", "snapshotId", "metadata", "attachments"]}},
    });
    /// The legacy extension list.
    ExtensionList => json!({
        "type": "object",
        "required": ["extensions"],
        "properties": {"extensions": {"type": "array", "items": {"type": "object", "required": ["alias", "name", "description", "namespace", "updated", "links"]}}},
    });
    /// One legacy extension.
    ExtensionBody => json!({
        "type": "object",
        "required": ["extension"],
        "properties": {"extension": {"type": "object", "required": ["alias", "name", "description", "namespace", "updated", "links"]}},
    });
    /// `{"aggregates": [...]}` (admin).
    AggregateList => json!({
        "type": "object",
        "required": ["aggregates"],
        "properties": {"aggregates": {"type": "array", "items": aggregate_schema(true)}},
    });
    /// `{"aggregate": {...}}`; a create's answer has no `hosts` or `metadata`.
    AggregateBody => json!({
        "type": "object",
        "required": ["aggregate"],
        "properties": {"aggregate": aggregate_schema(false)},
    });
    /// `{"aggregate": {"name", "availability_zone"?}}`.
    AggregateCreateBody => json!({
        "type": "object",
        "required": ["aggregate"],
        "properties": {"aggregate": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "availability_zone": nullable_string()}}},
    });
    /// `{"aggregate": {"name"?, "availability_zone"?}}`.
    AggregateUpdateBody => json!({
        "type": "object",
        "required": ["aggregate"],
        "properties": {"aggregate": {"type": "object", "minProperties": 1, "properties": {"name": {"type": "string"}, "availability_zone": nullable_string()}}},
    });
    /// `add_host`, `remove_host` (`{"host"}`) or `set_metadata` (`{"metadata"}`, null deletes a key).
    AggregateAction => json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "add_host": {"type": "object", "required": ["host"], "properties": {"host": {"type": "string"}}},
            "remove_host": {"type": "object", "required": ["host"], "properties": {"host": {"type": "string"}}},
            "set_metadata": {"type": "object", "required": ["metadata"], "properties": {"metadata": {"type": "object", "additionalProperties": nullable_string()}}},
        },
    });
    /// The availability zones.
    AvailabilityZones => json!({
        "type": "object",
        "required": ["availabilityZoneInfo"],
        "properties": {"availabilityZoneInfo": {"type": "array", "items": {"type": "object", "required": ["zoneName", "zoneState"]}}},
    });

    // ----------------------------------------------------------- stratus
    /// `{"zombies": [...]}`.
    ZombieList => json!({
        "type": "object",
        "required": ["zombies"],
        "properties": {"zombies": {"type": "array", "items": {"type": "object", "required": ["server_id", "host", "reason", "created_at"]}}},
    });
    /// `{"storage_cleanups": [...]}`.
    StorageCleanupList => json!({
        "type": "object",
        "required": ["storage_cleanups"],
        "properties": {"storage_cleanups": {"type": "array", "items": {"type": "object", "required": ["id", "kind", "attempts", "created_at"]}}},
    });
    /// An OpenAPI document.
    OpenApiDocument => json!({"type": "object", "required": ["openapi", "paths"]});
}

/// Glance's schema documents carry `name` and `links` next to JSON Schema's
/// keywords; the OpenAPI copy keeps the JSON Schema.
fn strip_glance_keywords(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("name");
        o.remove("links");
        o.entry("type").or_insert_with(|| json!("object"));
    }
    if let Some(items) = v.pointer_mut("/properties/images/items") {
        *items = strip_glance_keywords(items.take());
    }
    v
}

/// Every `#/components/schemas/<name>` referenced anywhere in `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_string());
            }
            o.values().for_each(|x| references(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// Put the JSON of every schema the document references (and of the ones
/// those reference) under `components.schemas`.
pub fn resolve(doc: &mut Value) {
    let mut pending = Vec::new();
    references(doc, &mut pending);
    while let Some(name) = pending.pop() {
        let Some(schema) = literal(&name) else { continue };
        let components = doc.as_object_mut().map(|d| d.entry("components").or_insert_with(|| json!({})));
        let Some(schemas) = components
            .and_then(Value::as_object_mut)
            .map(|c| c.entry("schemas").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        if schemas.get(&name).is_some_and(|s| *s == schema) {
            continue;
        }
        references(&schema, &mut pending);
        schemas.insert(name, schema);
    }
}

/// The limits object of a quota set or class: integers by resource name,
/// with a string `id` when `with_id`.
fn quota_limits_schema(with_id: bool) -> Value {
    if with_id {
        json!({
            "type": "object",
            "required": ["id", "instances", "cores", "ram"],
            "properties": {"id": {"type": "string"}},
            "additionalProperties": {"type": "integer"},
        })
    } else {
        json!({
            "type": "object",
            "required": ["instances", "cores", "ram"],
            "additionalProperties": {"type": "integer"},
        })
    }
}
