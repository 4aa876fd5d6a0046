-- One row per weekly summary sent: the unique key makes the send happen once
-- per campaign per week, however many instances run the schedule.
CREATE TABLE weekly_reports (
    report_key   TEXT PRIMARY KEY,
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id),
    claimed_by   TEXT   NOT NULL,
    claimed_at   BIGINT NOT NULL,
    sent_at      BIGINT,
    recipients   TEXT   NOT NULL,
    outcome      TEXT
);
