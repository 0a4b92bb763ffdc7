-- Group types (Cinder's /group_types, 3.11): named sets of group specs,
-- public or not. Specs are one JSON object: always read and written whole.
CREATE TABLE group_types (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    is_public   BOOLEAN NOT NULL DEFAULT TRUE,
    group_specs TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at  TEXT
);
CREATE INDEX group_types_by_name ON group_types (name, deleted);

-- Generic volume groups (Cinder's /groups, 3.13): a project's set of
-- volumes of the group's volume types (a JSON array of type ids).
CREATE TABLE volume_groups (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    name              TEXT,
    description       TEXT,
    status            TEXT NOT NULL,
    group_type_id     TEXT NOT NULL,
    volume_type_ids   TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    source_group_id   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at        TEXT
);
CREATE INDEX volume_groups_by_project ON volume_groups (project_id, deleted);

-- The group a volume belongs to (3.13 shows it as `group_id`).
ALTER TABLE volumes ADD COLUMN group_id TEXT;

-- User messages (Cinder's /messages, 3.3): why an asynchronous operation
-- failed, for the project that asked; kept until `expires_at`.
CREATE TABLE volume_messages (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    resource_type TEXT,
    resource_uuid TEXT,
    event_id      TEXT NOT NULL,
    action_id     TEXT NOT NULL,
    detail_id     TEXT NOT NULL,
    message_level TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX volume_messages_by_project ON volume_messages (project_id, deleted);
