-- Campaigns, enrolments and the outbox.

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT   NOT NULL UNIQUE,
    name        TEXT   NOT NULL,
    definition  TEXT   NOT NULL,           -- the parsed campaign file, as JSON
    status      TEXT   NOT NULL DEFAULT 'active',  -- active | paused | cancelled
    starts_at   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One per person per campaign, with the person's own due date.
CREATE TABLE enrolments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id       BIGINT NOT NULL REFERENCES campaigns (id),
    staff_id          BIGINT NOT NULL REFERENCES staff (id),
    enrolled_at       BIGINT NOT NULL,
    due_at            BIGINT NOT NULL,
    completed_at      BIGINT,
    completion_source TEXT,
    exempted_at       BIGINT,
    exempt_reason     TEXT,
    left_at           BIGINT,
    UNIQUE (campaign_id, staff_id)
);
CREATE INDEX enrolments_staff ON enrolments (staff_id);

-- One row per message to send. dedupe_key makes planning idempotent.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key     TEXT   NOT NULL UNIQUE,
    campaign_id    BIGINT NOT NULL REFERENCES campaigns (id),
    enrolment_id   BIGINT REFERENCES enrolments (id),
    step           TEXT   NOT NULL,
    recipient      TEXT   NOT NULL,
    message_id     TEXT   NOT NULL,
    scheduled_at   BIGINT NOT NULL,          -- when the step fell due
    not_before     BIGINT NOT NULL,          -- inside the send window, after spread and rate limit
    status         TEXT   NOT NULL DEFAULT 'pending', -- pending | sending | sent | failed | undeliverable | cancelled | skipped
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until    BIGINT,
    leased_by      TEXT,
    accepted_at    BIGINT,
    smtp_reply     TEXT,
    last_error     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, not_before);
CREATE INDEX outbox_enrolment ON outbox (enrolment_id);
CREATE INDEX outbox_campaign ON outbox (campaign_id, step);

-- Scheduled jobs that must run once across all instances take a lease here.
CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY,
    holder      TEXT   NOT NULL,
    lease_until BIGINT NOT NULL
);
