-- A volume's image metadata (Cinder's volume_glance_metadata), as a JSON
-- object, once it was set with os-set_image_metadata; until then a volume
-- from an image shows its image id.
CREATE TABLE volume_image_metadata (
    volume_id TEXT PRIMARY KEY,
    metadata  TEXT NOT NULL
);
