-- Glance keeps a deleted image's id reserved: a create naming it is a 409.
CREATE TABLE deleted_image_ids (
    id         TEXT PRIMARY KEY,
    deleted_at TEXT NOT NULL
);
