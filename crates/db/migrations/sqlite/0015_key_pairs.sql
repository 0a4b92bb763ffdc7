-- Key pairs (Nova's os-keypairs): per user, unique by name. Only the public
-- half is kept; a generated private key is returned once and never stored.
CREATE TABLE key_pairs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, name)
);
