-- Opens, clicks and self-attested completions. No IP address is stored;
-- user agents are reduced to a class.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    kind         TEXT   NOT NULL,   -- open | click | completion
    outbox_id    BIGINT NOT NULL REFERENCES outbox (id),
    enrolment_id BIGINT REFERENCES enrolments (id),
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id),
    link         TEXT,              -- course | video, for clicks
    ua_class     TEXT   NOT NULL,   -- human | proxy | scanner
    machine      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX events_campaign ON events (campaign_id, kind);
CREATE INDEX events_enrolment ON events (enrolment_id);

-- Completion reports imported from the learning network, for idempotence and audit.
CREATE TABLE completion_imports (
    id           BIGSERIAL PRIMARY KEY,
    imported_at  BIGINT NOT NULL,
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id),
    file_name    TEXT   NOT NULL,
    sha256       TEXT   NOT NULL,
    matched      BIGINT NOT NULL,
    newly_completed BIGINT NOT NULL,
    unmatched    BIGINT NOT NULL
);
