-- Volume snapshots (Cinder's /snapshots): a point-in-time copy of one
-- volume, kept by the backend under `backend_name`. The row is the durable
-- record of the storage step too: a snapshot left `creating` or `deleting`
-- by a crash is finished by the volume reconciler. A volume built from a
-- snapshot names it in `volumes.snapshot_id`.
CREATE TABLE volume_snapshots (
    id             TEXT PRIMARY KEY,
    volume_id      TEXT NOT NULL,
    project_id     TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    name           TEXT,
    description    TEXT,
    size_gb        BIGINT NOT NULL,
    status         TEXT NOT NULL,
    progress       TEXT NOT NULL DEFAULT '0%',
    volume_type_id TEXT,
    metadata       TEXT NOT NULL DEFAULT '{}',
    backend_name   TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX volume_snapshots_by_project ON volume_snapshots (project_id, deleted);
CREATE INDEX volume_snapshots_by_volume ON volume_snapshots (volume_id, deleted);
ALTER TABLE volumes ADD COLUMN snapshot_id TEXT;
