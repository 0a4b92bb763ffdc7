-- Identity additions (0050; other branches take other numbers):
-- project tags (Keystone's `project_tag`), application credentials (a
-- named secret of a user on one project with a subset of its roles, the
-- secret stored only as an argon2id hash), the application credential a
-- token was issued from (so that deleting the credential, or its expiry,
-- ends the token), and role assignments on the system (system scope).
CREATE TABLE project_tags (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (project_id, tag)
);

CREATE TABLE application_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    secret_hash  TEXT NOT NULL,
    role_ids     TEXT NOT NULL,
    expires_at   TEXT,
    unrestricted BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);

ALTER TABLE tokens ADD COLUMN app_cred_id TEXT;
ALTER TABLE tokens ADD COLUMN system_scope BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE system_role_assignments (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
