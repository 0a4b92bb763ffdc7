-- Per-project default volume types (Cinder's /default-types, Block Storage
-- 3.62): the type a project's volumes get when a create names none, before
-- the global default. A type that is some project's default cannot be
-- deleted (checked by the service); should one go anyway, its defaults go
-- with it and those projects fall back to the global default.
CREATE TABLE project_default_volume_types (
    project_id     TEXT PRIMARY KEY,
    volume_type_id TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE
);
CREATE INDEX project_default_volume_types_by_type ON project_default_volume_types (volume_type_id);
