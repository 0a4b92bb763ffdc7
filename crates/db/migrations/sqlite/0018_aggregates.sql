-- Host aggregates (Nova's os-aggregates): named groups of compute hosts
-- with metadata. An aggregate's availability zone is its metadata key
-- `availability_zone`; `services.zone` keeps each host's resulting zone
-- (the zone of its aggregate that has one, else `nova`), rewritten in the
-- transaction that changes an aggregate's hosts or zone, so readers and
-- the scheduler filter on one column.
CREATE TABLE aggregates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE aggregate_hosts (
    aggregate_id INTEGER NOT NULL REFERENCES aggregates(id) ON DELETE CASCADE,
    host         TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, host)
);
CREATE INDEX aggregate_hosts_host ON aggregate_hosts (host);

CREATE TABLE aggregate_metadata (
    aggregate_id INTEGER NOT NULL REFERENCES aggregates(id) ON DELETE CASCADE,
    meta_key     TEXT NOT NULL,
    meta_value   TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, meta_key)
);
