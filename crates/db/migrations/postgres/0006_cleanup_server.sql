-- An unfence waits for the fenced server's host to confirm its VM gone.
ALTER TABLE storage_cleanup ADD COLUMN server_id TEXT;
