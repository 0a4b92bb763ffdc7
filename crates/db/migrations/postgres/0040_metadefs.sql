-- Image API v2 metadata definitions (Glance's metadefs catalogue). A
-- namespace owns its objects, properties, tags and resource-type
-- associations, kept as `metadef_items` rows told apart by `kind`
-- (`object`, `property`, `tag`, `resource_type`) with the definition's
-- JSON in `body`; the namespace's delete (or rename) takes its items along.
-- Resource types are a cloud-wide list, seeded with the types Glance ships
-- definitions for and grown by associations naming a new one.
-- (0040: other branches take the numbers below.)
CREATE TABLE metadef_namespaces (
    namespace  TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected  BOOLEAN NOT NULL DEFAULT FALSE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE metadef_items (
    namespace  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, kind, name)
);
CREATE TABLE metadef_resource_types (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO metadef_resource_types (name, created_at, updated_at) VALUES
    ('OS::Glance::Image', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Cinder::Volume', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Flavor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Aggregate', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Server', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
