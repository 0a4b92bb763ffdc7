-- Duties of which exactly one controller may run at a time (the liveness
-- monitor, the storage reconciler, the notification relay, reclaim) belong
-- to the holder of a lease here. `token` grows by one at every change of
-- holder, and the duty's writes check it in the same statement, so a
-- deposed holder (paused past its lease, cut off) cannot write late.
CREATE TABLE leader_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TEXT NOT NULL
);
