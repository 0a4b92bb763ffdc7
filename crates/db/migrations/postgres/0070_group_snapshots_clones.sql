-- Group snapshots (Cinder's /group_snapshots, 3.14): a point-in-time copy
-- of every volume of a generic group, taken together. Each member is an
-- ordinary volume snapshot naming its group snapshot; the group snapshot
-- row itself holds no storage.
CREATE TABLE volume_group_snapshots (
    id            TEXT PRIMARY KEY,
    group_id      TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT,
    description   TEXT,
    status        TEXT NOT NULL,
    group_type_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at    TEXT
);
CREATE INDEX volume_group_snapshots_by_project ON volume_group_snapshots (project_id, deleted);
CREATE INDEX volume_group_snapshots_by_group ON volume_group_snapshots (group_id, deleted);

-- The group snapshot a volume snapshot belongs to.
ALTER TABLE volume_snapshots ADD COLUMN group_snapshot_id TEXT;
-- The group snapshot a group was built from (3.14 `group_snapshot_id`).
ALTER TABLE volume_groups ADD COLUMN group_snapshot_id TEXT;
-- The volume a volume was cloned from (Cinder's `source_volid`).
ALTER TABLE volumes ADD COLUMN source_volid TEXT;
