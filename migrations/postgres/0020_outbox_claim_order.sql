-- A claim takes due messages in (not_before, id) order. SQLite's index on
-- (status, not_before) ends in the rowid, so it already hands rows over in
-- that order; PostgreSQL's does not, and when many messages share one
-- not_before (an announcement planned for a whole roster) every claim read
-- and sorted all of them: 22 ms for 20,000 pending rows, against 0.2 ms
-- with id in the index (docs/benchmarks.md, "PostgreSQL: the claim's order").
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, not_before, id);
