-- A page of `GET /servers` is the newest servers of a project after a
-- marker, newest first. With an index on (project_id, deleted) alone every
-- page fetched all of the project's live servers and sorted them, so
-- reading a list of N servers page by page (1,000 a page) cost ~N²/1,000
-- row reads and grew with every server a project kept. With the sort
-- columns in the index a page is a range walk of at most `limit` entries.
-- The same for an admin's list of every project (Nova keeps an index on
-- instances (deleted, created_at) for the same reason).
DROP INDEX servers_by_project;
CREATE INDEX servers_by_project ON servers (project_id, deleted, created_at, id);
CREATE INDEX servers_by_age ON servers (deleted, created_at, id);
