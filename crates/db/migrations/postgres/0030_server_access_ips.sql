-- Nova's accessIPv4 / accessIPv6: addresses the user (or admin) records on a
-- server at create, update or rebuild, shown in its views ('' when unset).
-- Stored normalised (an IPv6 address in its compressed form), as Nova does.
-- Numbered 0030 to leave room for migrations on other branches.
ALTER TABLE servers ADD COLUMN access_ip_v4 TEXT;
ALTER TABLE servers ADD COLUMN access_ip_v6 TEXT;
