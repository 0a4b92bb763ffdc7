-- Lifecycle beyond boot and delete: shelve snapshots and migrations
-- (resize, cold migration, evacuation).
ALTER TABLE servers ADD COLUMN shelved_image_id TEXT;

CREATE TABLE migrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    source_host   TEXT NOT NULL,
    dest_host     TEXT,
    old_flavor_id TEXT NOT NULL,
    new_flavor_id TEXT NOT NULL,
    old_vcpus     INTEGER NOT NULL,
    old_ram_mb    INTEGER NOT NULL,
    old_disk_gb   INTEGER NOT NULL,
    old_vm_state  TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX migrations_by_server ON migrations (server_id, status);
