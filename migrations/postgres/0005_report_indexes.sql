-- Covering indexes for the report's fact queries (src/store/report.rs), in
-- their GROUP BY order: each query reads one index range of its campaign,
-- already grouped, without touching the table or sorting in a temp b-tree.
-- At 1,000,000 events this took event_facts from a sort over every event of
-- the campaign plus a table lookup per event to one index range read
-- (docs/benchmarks.md, "Report").
CREATE INDEX events_report ON events (campaign_id, enrolment_id, kind, machine, at);
CREATE INDEX outbox_report ON outbox (campaign_id, enrolment_id, step, status, accepted_at, updated_at);
