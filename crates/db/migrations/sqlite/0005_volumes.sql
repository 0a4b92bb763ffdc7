-- Block storage: volumes, their attachments to servers (with the storage
-- client identity recorded at attach time, which is what fencing targets),
-- and a durable queue of storage cleanups that could not be done yet.
CREATE TABLE volumes (
    id                TEXT PRIMARY KEY,
    name              TEXT,
    description       TEXT,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    size_gb           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    volume_type       TEXT NOT NULL DEFAULT '__DEFAULT__',
    availability_zone TEXT NOT NULL DEFAULT 'nova',
    bootable          BOOLEAN NOT NULL DEFAULT FALSE,
    image_id          TEXT,
    backend_name      TEXT NOT NULL,
    metadata          TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX volumes_by_project ON volumes (project_id, deleted);

CREATE TABLE volume_attachments (
    id                    TEXT PRIMARY KEY,
    volume_id             TEXT NOT NULL,
    server_id             TEXT NOT NULL,
    host                  TEXT,
    connector             TEXT,
    client_id             TEXT,
    mountpoint            TEXT,
    status                TEXT NOT NULL,
    delete_on_termination BOOLEAN NOT NULL DEFAULT FALSE,
    boot_index            INTEGER,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    deleted               BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX attachments_by_server ON volume_attachments (server_id, deleted);
CREATE INDEX attachments_by_volume ON volume_attachments (volume_id, deleted);

CREATE TABLE storage_cleanup (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    volume_id    TEXT,
    backend_name TEXT,
    client_id    TEXT,
    host         TEXT,
    reason       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    done         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX storage_cleanup_once ON storage_cleanup (kind, COALESCE(volume_id, ''), COALESCE(client_id, '')) WHERE done = FALSE;
