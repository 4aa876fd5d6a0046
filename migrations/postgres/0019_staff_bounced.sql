-- The people whose address bounced: a few among many. The report reads
-- them on every build (the bounced list, by address, and the set that
-- reach leaves out); without an index each read walked the whole of staff.
CREATE INDEX staff_bounced ON staff (email) WHERE bounced_at IS NOT NULL;
