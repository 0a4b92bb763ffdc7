-- Compute microversions 2.55 and 2.49: a flavor's free-text description
-- (set at create or by PUT /flavors/{id}), and the device tag a volume
-- attachment was made with (shown from 2.70). Both are null when unset.
ALTER TABLE flavors ADD COLUMN description TEXT;
ALTER TABLE volume_attachments ADD COLUMN tag TEXT;
