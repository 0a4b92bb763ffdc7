-- Image API v2 sharing: the projects a `shared` image is offered to, and
-- each one's answer (pending, accepted, rejected). One row per image and
-- project; the image's delete removes its rows. (0035, not 0022: other
-- branches take the numbers up to 0028 and may take more.)
CREATE TABLE image_members (
    image_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_by_member ON image_members (member_id);
