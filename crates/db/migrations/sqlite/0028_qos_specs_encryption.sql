-- QoS specs (Cinder's /qos-specs): named sets of limits with a consumer,
-- associated with volume types (a type has at most one). Specs are kept as
-- one JSON object: they are always read and written whole.
CREATE TABLE qos_specs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    consumer   TEXT NOT NULL,
    specs      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

ALTER TABLE volume_types ADD COLUMN qos_specs_id TEXT;

-- Encryption types (Cinder's /types/{id}/encryption): at most one per
-- volume type, gone with the type.
CREATE TABLE volume_type_encryption (
    volume_type_id   TEXT PRIMARY KEY REFERENCES volume_types(id) ON DELETE CASCADE,
    encryption_id    TEXT NOT NULL UNIQUE,
    provider         TEXT NOT NULL,
    cipher           TEXT,
    key_size         BIGINT,
    control_location TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
