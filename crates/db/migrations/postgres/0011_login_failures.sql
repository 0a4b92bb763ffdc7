-- Failed password logins per user (Keystone's local_user.failed_auth_count
-- and failed_auth_at), kept in the database so that every API process
-- counts the same attempts: with N API processes behind a load balancer, a
-- per-process counter would allow N times the attempts.
ALTER TABLE users ADD COLUMN failed_auth_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_auth_at TEXT;
