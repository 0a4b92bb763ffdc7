-- Flavor extra specs and the projects a private flavor is shared with
-- (Nova's os-extra_specs and os-flavor-access). Both go with their flavor.
-- `created_at` orders flavors by creation (Nova's `id` sort key and the
-- tie-break of every other sort key); seeded flavors keep '' and sort first.
CREATE TABLE flavor_extra_specs (
    flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    spec_key   TEXT NOT NULL,
    spec_value TEXT NOT NULL,
    PRIMARY KEY (flavor_id, spec_key)
);

CREATE TABLE flavor_projects (
    flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

ALTER TABLE flavors ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
