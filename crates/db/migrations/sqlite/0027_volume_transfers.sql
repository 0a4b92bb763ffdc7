-- Volume transfers (Cinder's /os-volume-transfer and /volume-transfers):
-- an offer of one `awaiting-transfer` volume to whoever presents the auth
-- key. Only a salted hash of the key is kept. A transfer row is marked
-- deleted when it is accepted or withdrawn; accepted ones keep who took it.
CREATE TABLE volume_transfers (
    id                     TEXT PRIMARY KEY,
    volume_id              TEXT NOT NULL,
    name                   TEXT,
    salt                   TEXT NOT NULL,
    crypt_hash             TEXT NOT NULL,
    source_project_id      TEXT NOT NULL,
    destination_project_id TEXT,
    accepted               BOOLEAN NOT NULL DEFAULT FALSE,
    no_snapshots           BOOLEAN NOT NULL DEFAULT FALSE,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    deleted                BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at             TEXT
);
CREATE INDEX volume_transfers_by_project ON volume_transfers (source_project_id, deleted);
CREATE INDEX volume_transfers_by_volume ON volume_transfers (volume_id, deleted);
