-- Each clients report of a host gets the next number of that host, and a
-- queued fence lift keeps the number the host's reports had reached when the
-- fence was applied. Agents send their reports one at a time, so the second
-- report handled after the fence was made after the fence: its content (the
-- fenced client absent) can lift the fence even on a host that never lost
-- its lease (one that was falsely up), which never rejoins with a new epoch.
ALTER TABLE host_storage_clients ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE storage_cleanup ADD COLUMN clients_seq BIGINT;
