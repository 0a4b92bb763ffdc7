-- Stratus schema v1. Portable SQL: TEXT ids (UUID strings), TEXT RFC 3339
-- timestamps, BOOLEAN columns; the PostgreSQL folder mirrors this file.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL DEFAULT 'default',
    description TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL DEFAULT 'default',
    password_hash      TEXT NOT NULL,
    email              TEXT,
    default_project_id TEXT,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    created_at         TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE roles (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE role_assignments (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

-- Tokens are opaque random strings; only their SHA-256 is stored.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    audit_id   TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE flavors (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    vcpus        INTEGER NOT NULL,
    ram_mb       INTEGER NOT NULL,
    disk_gb      INTEGER NOT NULL,
    ephemeral_gb INTEGER NOT NULL DEFAULT 0,
    swap_mb      INTEGER NOT NULL DEFAULT 0,
    rxtx_factor  REAL NOT NULL DEFAULT 1.0,
    is_public    BOOLEAN NOT NULL DEFAULT TRUE,
    disabled     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    disk_format      TEXT,
    container_format TEXT,
    size             INTEGER,
    checksum         TEXT,
    os_hash_value    TEXT,
    min_disk         INTEGER NOT NULL DEFAULT 0,
    min_ram          INTEGER NOT NULL DEFAULT 0,
    protected        BOOLEAN NOT NULL DEFAULT FALSE,
    properties       TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- One row per compute host. `state` is written by the liveness monitor on
-- transitions only; `lease_expires_at` is the lease itself, set by the
-- controller's clock (one authority) on each renewal.
CREATE TABLE services (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid             TEXT NOT NULL UNIQUE,
    host             TEXT NOT NULL,
    binary           TEXT NOT NULL,
    zone             TEXT NOT NULL DEFAULT 'nova',
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason  TEXT,
    forced_down      BOOLEAN NOT NULL DEFAULT FALSE,
    state            TEXT NOT NULL DEFAULT 'down',
    epoch            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at TEXT,
    vcpus            INTEGER NOT NULL DEFAULT 0,
    memory_mb        INTEGER NOT NULL DEFAULT 0,
    disk_gb          INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (host, binary)
);

CREATE TABLE servers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    image_id          TEXT,
    flavor_id         TEXT NOT NULL,
    flavor_name       TEXT NOT NULL,
    vcpus             INTEGER NOT NULL,
    ram_mb            INTEGER NOT NULL,
    disk_gb           INTEGER NOT NULL,
    ephemeral_gb      INTEGER NOT NULL DEFAULT 0,
    swap_mb           INTEGER NOT NULL DEFAULT 0,
    vm_state          TEXT NOT NULL,
    task_state        TEXT,
    power_state       INTEGER NOT NULL DEFAULT 0,
    host              TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    key_name          TEXT,
    locked            BOOLEAN NOT NULL DEFAULT FALSE,
    locked_by         TEXT,
    locked_reason     TEXT,
    availability_zone TEXT,
    reservation_id    TEXT NOT NULL,
    hostname          TEXT NOT NULL,
    fault             TEXT,
    progress          INTEGER NOT NULL DEFAULT 0,
    generation        INTEGER NOT NULL DEFAULT 1,
    launched_at       TEXT,
    terminated_at     TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX servers_by_project ON servers (project_id, deleted);
CREATE INDEX servers_by_host ON servers (host, deleted);

-- A port is the fixed IP a server holds; releasing it frees the address.
CREATE TABLE ports (
    id         TEXT PRIMARY KEY,
    server_id  TEXT NOT NULL,
    network    TEXT NOT NULL,
    ip         TEXT NOT NULL UNIQUE,
    ip_index   INTEGER NOT NULL UNIQUE,
    mac        TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ports_by_server ON ports (server_id);

-- Durable operations: created with the intent, claimed by a controller with a
-- lease, advanced one recorded step at a time.
CREATE TABLE operations (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    server_id        TEXT NOT NULL,
    state            TEXT NOT NULL,
    step             TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    params           TEXT NOT NULL DEFAULT '{}',
    claimed_by       TEXT,
    claim_expires_at TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX operations_open ON operations (state, claim_expires_at);
CREATE UNIQUE INDEX operations_one_open_per_kind ON operations (server_id, kind)
    WHERE state IN ('pending', 'running');

CREATE TABLE instance_actions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id  TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    start_time TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    message    TEXT,
    UNIQUE (server_id, request_id)
);

CREATE TABLE instance_action_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id   INTEGER NOT NULL REFERENCES instance_actions (id),
    event       TEXT NOT NULL,
    start_time  TEXT NOT NULL,
    finish_time TEXT,
    result      TEXT,
    host        TEXT,
    details     TEXT,
    UNIQUE (action_id, event)
);

-- Notification outbox: `dedup_key` makes "emitted exactly once" a constraint.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key    TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    publisher_id TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    published_at TEXT
);

CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
