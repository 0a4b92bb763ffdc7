-- The runner lists open, unclaimed operations oldest first.
CREATE INDEX operations_open_by_age ON operations (state, created_at);
