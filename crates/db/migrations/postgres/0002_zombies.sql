-- A zombie is a server deleted locally (host down, unresponsive or past a
-- deadline) whose VM may still run on its host. It keeps the host's capacity
-- reserved until the host's agent reports the VM gone.
CREATE TABLE zombies (
    server_id  TEXT NOT NULL,
    host       TEXT NOT NULL,
    vcpus      BIGINT NOT NULL,
    ram_mb     BIGINT NOT NULL,
    disk_gb    BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (server_id, host)
);
CREATE INDEX zombies_by_host ON zombies (host);
