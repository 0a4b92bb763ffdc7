-- The storage clients each compute host last reported still open, with the
-- host's epoch at the report. A storage fence is lifted only once the host,
-- after rejoining with a newer epoch, reported the fenced client gone: the
-- VM record being gone is not enough (a client process can outlive its VM).
CREATE TABLE host_storage_clients (
    host        TEXT PRIMARY KEY,
    epoch       INTEGER NOT NULL,
    clients     TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
