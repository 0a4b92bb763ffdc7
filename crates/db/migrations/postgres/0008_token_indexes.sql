-- A user's tokens are revoked together (password change, disable), and
-- expired tokens are purged in small batches at every issue: both must
-- find their rows without scanning the whole table.
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
