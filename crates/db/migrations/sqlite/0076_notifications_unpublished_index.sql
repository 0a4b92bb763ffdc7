-- The notification relay reads the rows not yet published, oldest first,
-- several times a second. Published rows stay (the outbox keeps its
-- history), so without an index that read walked the whole history on
-- every poll: its cost grew with every server ever created. The partial
-- index holds only what is waiting and shrinks as the relay publishes.
CREATE INDEX notifications_unpublished ON notifications (id) WHERE published_at IS NULL;
