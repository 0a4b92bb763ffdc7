-- Nova's os-migrations list (2.59 adds each migration's uuid, 2.80 its
-- owner's user and project, and a project manager lists only its own
-- project's): a uuid, project and user per migration, the older rows given
-- theirs from their server. Numbered 0063 to leave room for other branches.
-- And the server's own copy of its old flavor (name, root, ephemeral and
-- swap sizes besides the allocation's), so that a revert restores it even
-- after the flavor was deleted (Nova keeps instance.old_flavor); NULL in
-- older rows, whose revert reads the flavor table as before.
ALTER TABLE migrations ADD COLUMN uuid TEXT;
ALTER TABLE migrations ADD COLUMN project_id TEXT;
ALTER TABLE migrations ADD COLUMN user_id TEXT;
ALTER TABLE migrations ADD COLUMN old_flavor_name TEXT;
ALTER TABLE migrations ADD COLUMN old_root_gb BIGINT;
ALTER TABLE migrations ADD COLUMN old_ephemeral_gb BIGINT;
ALTER TABLE migrations ADD COLUMN old_swap_mb BIGINT;
UPDATE migrations SET uuid = gen_random_uuid()::text;
UPDATE migrations SET project_id = s.project_id, user_id = s.user_id FROM servers s WHERE s.id = migrations.server_id;
CREATE UNIQUE INDEX migrations_by_uuid ON migrations (uuid);
