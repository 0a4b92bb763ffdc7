-- Quota classes (Nova's quota_classes): the limits of the `default` class
-- stand between the configured defaults and a project's own overrides, so
-- an admin can change what every project without an override gets.
CREATE TABLE quota_classes (
    class_name TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (class_name, resource)
);

-- Per-user limits inside a project (Nova's project_user_quotas): a user's
-- own limit stands over the project's.
CREATE TABLE project_user_quotas (
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id, resource)
);
