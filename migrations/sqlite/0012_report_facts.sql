-- Report facts per enrolment, kept current by triggers in the transaction
-- that writes each event or outbox mark, whatever code path writes it, so
-- the report reads one row per person instead of every outbox row and
-- event. Every fact is a count with the instants that bound it, or the
-- first instant something happened, so a report "as of" an earlier instant
-- still comes out exact (src/store/report/figures.rs).
ALTER TABLE enrolments ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;      -- messages accepted by the relay
ALTER TABLE enrolments ADD COLUMN first_sent_at BIGINT;                       -- their earliest and latest accepted_at
ALTER TABLE enrolments ADD COLUMN last_sent_at BIGINT;
ALTER TABLE enrolments ADD COLUMN reminders_sent BIGINT NOT NULL DEFAULT 0;  -- of them, reminders (report_steps)
ALTER TABLE enrolments ADD COLUMN announced_at BIGINT;                        -- the announcement's acceptance
ALTER TABLE enrolments ADD COLUMN undeliverable_at BIGINT;                    -- first message found undeliverable
ALTER TABLE enrolments ADD COLUMN opened_at BIGINT;                           -- first open, by anyone
ALTER TABLE enrolments ADD COLUMN opened_human_at BIGINT;                     -- first open by a person
ALTER TABLE enrolments ADD COLUMN clicked_at BIGINT;
ALTER TABLE enrolments ADD COLUMN clicked_human_at BIGINT;

-- Which of a campaign's steps the report counts as its announcement and
-- as reminders: the report writes them from the campaign file (and
-- recomputes reminders_sent and announced_at) when they differ.
CREATE TABLE report_steps (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    step        TEXT   NOT NULL,
    role        TEXT   NOT NULL,   -- announcement | reminder
    PRIMARY KEY (campaign_id, step)
);

-- A message newly accepted: counted at once.
CREATE TRIGGER outbox_facts_sent_insert AFTER INSERT ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'sent' AND NEW.accepted_at IS NOT NULL
BEGIN
    UPDATE enrolments SET
        sent_count = sent_count + 1,
        first_sent_at = min(coalesce(first_sent_at, NEW.accepted_at), NEW.accepted_at),
        last_sent_at = max(coalesce(last_sent_at, NEW.accepted_at), NEW.accepted_at),
        reminders_sent = reminders_sent + (SELECT count(*) FROM report_steps r
            WHERE r.campaign_id = NEW.campaign_id AND r.step = NEW.step AND r.role = 'reminder'),
        announced_at = CASE WHEN EXISTS (SELECT 1 FROM report_steps r
                WHERE r.campaign_id = NEW.campaign_id AND r.step = NEW.step AND r.role = 'announcement')
            THEN min(coalesce(announced_at, NEW.accepted_at), NEW.accepted_at) ELSE announced_at END
    WHERE id = NEW.enrolment_id;
END;

CREATE TRIGGER outbox_facts_sent_update AFTER UPDATE OF status, accepted_at ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'sent' AND NEW.accepted_at IS NOT NULL
     AND OLD.status <> 'sent'
BEGIN
    UPDATE enrolments SET
        sent_count = sent_count + 1,
        first_sent_at = min(coalesce(first_sent_at, NEW.accepted_at), NEW.accepted_at),
        last_sent_at = max(coalesce(last_sent_at, NEW.accepted_at), NEW.accepted_at),
        reminders_sent = reminders_sent + (SELECT count(*) FROM report_steps r
            WHERE r.campaign_id = NEW.campaign_id AND r.step = NEW.step AND r.role = 'reminder'),
        announced_at = CASE WHEN EXISTS (SELECT 1 FROM report_steps r
                WHERE r.campaign_id = NEW.campaign_id AND r.step = NEW.step AND r.role = 'announcement')
            THEN min(coalesce(announced_at, NEW.accepted_at), NEW.accepted_at) ELSE announced_at END
    WHERE id = NEW.enrolment_id;
END;

-- A message found undeliverable: the first such instant.
CREATE TRIGGER outbox_facts_undeliverable_insert AFTER INSERT ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'undeliverable'
BEGIN
    UPDATE enrolments SET undeliverable_at = min(coalesce(undeliverable_at, NEW.updated_at), NEW.updated_at)
    WHERE id = NEW.enrolment_id;
END;

CREATE TRIGGER outbox_facts_undeliverable_update AFTER UPDATE OF status ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'undeliverable' AND OLD.status <> 'undeliverable'
BEGIN
    UPDATE enrolments SET undeliverable_at = min(coalesce(undeliverable_at, NEW.updated_at), NEW.updated_at)
    WHERE id = NEW.enrolment_id;
END;

-- Anything else that changes a counted message (no code path does this
-- today: a sent message stays sent) recomputes the enrolment's message
-- facts from its few outbox rows, so the facts never drift.
CREATE TRIGGER outbox_facts_recount AFTER UPDATE OF status, accepted_at, updated_at, step ON outbox
WHEN OLD.enrolment_id IS NOT NULL AND (
       (OLD.status = 'sent' AND (NEW.status <> 'sent' OR OLD.accepted_at IS NOT NEW.accepted_at OR OLD.step <> NEW.step))
    OR (OLD.status = 'undeliverable' AND (NEW.status <> 'undeliverable' OR OLD.updated_at <> NEW.updated_at)))
BEGIN
    UPDATE enrolments SET
        sent_count = (SELECT count(*) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
        first_sent_at = (SELECT min(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        last_sent_at = (SELECT max(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        reminders_sent = (SELECT count(*) FROM outbox o JOIN report_steps r
            ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'reminder'
            WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id
              AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
        announced_at = (SELECT min(o.accepted_at) FROM outbox o JOIN report_steps r
            ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'announcement'
            WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        undeliverable_at = (SELECT min(o.updated_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'undeliverable')
    WHERE id IN (OLD.enrolment_id, NEW.enrolment_id);
END;

CREATE TRIGGER outbox_facts_delete AFTER DELETE ON outbox
WHEN OLD.enrolment_id IS NOT NULL AND OLD.status IN ('sent', 'undeliverable')
BEGIN
    UPDATE enrolments SET
        sent_count = (SELECT count(*) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
        first_sent_at = (SELECT min(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        last_sent_at = (SELECT max(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        reminders_sent = (SELECT count(*) FROM outbox o JOIN report_steps r
            ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'reminder'
            WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id
              AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
        announced_at = (SELECT min(o.accepted_at) FROM outbox o JOIN report_steps r
            ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'announcement'
            WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
        undeliverable_at = (SELECT min(o.updated_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
            AND o.enrolment_id = enrolments.id AND o.status = 'undeliverable')
    WHERE id = OLD.enrolment_id;
END;

-- Opens and clicks: the first of each, by anyone and by a person.
CREATE TRIGGER events_facts AFTER INSERT ON events
WHEN NEW.enrolment_id IS NOT NULL AND NEW.kind IN ('open', 'click')
BEGIN
    UPDATE enrolments SET
        opened_at = CASE WHEN NEW.kind = 'open' THEN min(coalesce(opened_at, NEW.at), NEW.at) ELSE opened_at END,
        opened_human_at = CASE WHEN NEW.kind = 'open' AND NEW.machine = 0
            THEN min(coalesce(opened_human_at, NEW.at), NEW.at) ELSE opened_human_at END,
        clicked_at = CASE WHEN NEW.kind = 'click' THEN min(coalesce(clicked_at, NEW.at), NEW.at) ELSE clicked_at END,
        clicked_human_at = CASE WHEN NEW.kind = 'click' AND NEW.machine = 0
            THEN min(coalesce(clicked_human_at, NEW.at), NEW.at) ELSE clicked_human_at END
    WHERE id = NEW.enrolment_id;
END;

-- Backfill from the history so far. The announcement and reminders are
-- unknown here (they come from the campaign file): the first report of
-- each campaign writes report_steps and fills those two.
UPDATE enrolments SET
    sent_count = (SELECT count(*) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
        AND o.enrolment_id = enrolments.id AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
    first_sent_at = (SELECT min(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
        AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
    last_sent_at = (SELECT max(o.accepted_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
        AND o.enrolment_id = enrolments.id AND o.status = 'sent'),
    undeliverable_at = (SELECT min(o.updated_at) FROM outbox o WHERE o.campaign_id = enrolments.campaign_id
        AND o.enrolment_id = enrolments.id AND o.status = 'undeliverable'),
    opened_at = (SELECT min(v.at) FROM events v WHERE v.campaign_id = enrolments.campaign_id
        AND v.enrolment_id = enrolments.id AND v.kind = 'open'),
    opened_human_at = (SELECT min(v.at) FROM events v WHERE v.campaign_id = enrolments.campaign_id
        AND v.enrolment_id = enrolments.id AND v.kind = 'open' AND v.machine = 0),
    clicked_at = (SELECT min(v.at) FROM events v WHERE v.campaign_id = enrolments.campaign_id
        AND v.enrolment_id = enrolments.id AND v.kind = 'click'),
    clicked_human_at = (SELECT min(v.at) FROM events v WHERE v.campaign_id = enrolments.campaign_id
        AND v.enrolment_id = enrolments.id AND v.kind = 'click' AND v.machine = 0);
