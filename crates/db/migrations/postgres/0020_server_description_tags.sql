-- Compute microversions 2.19 and 2.26: a server's free-text description
-- (NULL when none was given) and its tags. Tags are a set per server (Nova:
-- at most 50, each at most 60 characters, neither ',' nor '/'; the API
-- checks those). A deleted server's row stays, and so do its tags.
ALTER TABLE servers ADD COLUMN description TEXT;
-- The user data given at create or at a rebuild (2.57), base64 as sent.
ALTER TABLE servers ADD COLUMN user_data TEXT;
-- The scheduler hints given at create (2.100 shows them), a JSON object.
ALTER TABLE servers ADD COLUMN scheduler_hints TEXT;

CREATE TABLE server_tags (
    server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (server_id, tag)
);
CREATE INDEX server_tags_by_tag ON server_tags (tag);
