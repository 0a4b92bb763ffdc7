-- Volume types (Cinder's /types), their extra specs, and the projects a
-- private type is shared with. Specs and access go with their type; a type
-- is deleted outright, and only while no live volume uses it.
-- The default type `__DEFAULT__` is created here, as Cinder's migration
-- does, with a fixed id so every deployment names it the same.
CREATE TABLE volume_types (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    is_public   BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE volume_type_extra_specs (
    type_id    TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
    spec_key   TEXT NOT NULL,
    spec_value TEXT,
    PRIMARY KEY (type_id, spec_key)
);

CREATE TABLE volume_type_projects (
    type_id    TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (type_id, project_id)
);

INSERT INTO volume_types (id, name, description, is_public, created_at, updated_at)
VALUES ('e7ec5cfc-ee49-4de1-bb46-97bb64a56540', '__DEFAULT__', 'Default Volume Type', TRUE, '', '');

-- Volumes name their type by id (the name is read through the join, so a
-- renamed type shows its new name). Every volume so far had the default type.
ALTER TABLE volumes ADD COLUMN volume_type_id TEXT;
UPDATE volumes SET volume_type_id = 'e7ec5cfc-ee49-4de1-bb46-97bb64a56540';
ALTER TABLE volumes DROP COLUMN volume_type;
CREATE INDEX volumes_by_type ON volumes (volume_type_id, deleted);
