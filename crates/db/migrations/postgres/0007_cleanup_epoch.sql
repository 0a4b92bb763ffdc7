-- An unfence waits until the fenced host rejoined with a newer epoch.
ALTER TABLE storage_cleanup ADD COLUMN epoch BIGINT;
