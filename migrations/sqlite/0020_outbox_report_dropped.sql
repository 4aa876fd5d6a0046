-- outbox_report (0005) covered the report's reading of every outbox row.
-- The report now reads the per-enrolment facts (0012), and only the
-- reference report from the whole history (tests, examples/bench_report.rs)
-- still reads the outbox that way. Every claim and every mark changes
-- `status`, which this index holds, so each paid one more index entry a
-- message (docs/benchmarks.md, "Delivery on PostgreSQL").
DROP INDEX outbox_report;
