-- The leader controller holds the hosts' leases in memory and looks, every
-- quarter renewal interval, for services changed since its last look (joins
-- served by other controllers, hosts forced down). Without this index each
-- look scans every service row.
CREATE INDEX services_updated_at ON services (updated_at);
