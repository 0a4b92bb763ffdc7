-- Image API v2 tasks (Glance's `/v2/tasks` and an image's import tasks,
-- `/v2/images/{id}/tasks`). The task's view (input, result, message, ...)
-- is kept as JSON in `body`; the columns are what lists filter and sort on.
-- `expires_at` is set when the task ends (Glance's task_time_to_live);
-- expired tasks are purged. (0060: other branches take other numbers.)
CREATE TABLE image_tasks (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    task_type  TEXT NOT NULL,
    status     TEXT NOT NULL,
    image_id   TEXT,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX image_tasks_owner ON image_tasks (owner);
CREATE INDEX image_tasks_image ON image_tasks (image_id);
CREATE INDEX image_tasks_expires ON image_tasks (expires_at);
