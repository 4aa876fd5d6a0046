-- Report facts per enrolment, kept current by triggers in the transaction
-- that writes each event or outbox mark, whatever code path writes it, so
-- the report reads one row per person instead of every outbox row and
-- event. Every fact is a count with the instants that bound it, or the
-- first instant something happened, so a report "as of" an earlier instant
-- still comes out exact (src/store/report/figures.rs).
ALTER TABLE enrolments
    ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0,     -- messages accepted by the relay
    ADD COLUMN first_sent_at BIGINT,                      -- their earliest and latest accepted_at
    ADD COLUMN last_sent_at BIGINT,
    ADD COLUMN reminders_sent BIGINT NOT NULL DEFAULT 0, -- of them, reminders (report_steps)
    ADD COLUMN announced_at BIGINT,                       -- the announcement's acceptance
    ADD COLUMN undeliverable_at BIGINT,                   -- first message found undeliverable
    ADD COLUMN opened_at BIGINT,                          -- first open, by anyone
    ADD COLUMN opened_human_at BIGINT,                    -- first open by a person
    ADD COLUMN clicked_at BIGINT,
    ADD COLUMN clicked_human_at BIGINT;

-- Which of a campaign's steps the report counts as its announcement and
-- as reminders: the report writes them from the campaign file (and
-- recomputes reminders_sent and announced_at) when they differ.
CREATE TABLE report_steps (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    step        TEXT   NOT NULL,
    role        TEXT   NOT NULL,   -- announcement | reminder
    PRIMARY KEY (campaign_id, step)
);

-- Recomputes one enrolment's message facts from its few outbox rows.
CREATE FUNCTION enrolment_message_facts(enrolment BIGINT) RETURNS void LANGUAGE sql AS $$
    UPDATE enrolments e SET
        sent_count = f.sent_count, first_sent_at = f.first_sent_at, last_sent_at = f.last_sent_at,
        reminders_sent = f.reminders_sent, announced_at = f.announced_at, undeliverable_at = f.undeliverable_at
    FROM (SELECT count(*) FILTER (WHERE o.status = 'sent' AND o.accepted_at IS NOT NULL) AS sent_count,
                 min(o.accepted_at) FILTER (WHERE o.status = 'sent') AS first_sent_at,
                 max(o.accepted_at) FILTER (WHERE o.status = 'sent') AS last_sent_at,
                 count(*) FILTER (WHERE o.status = 'sent' AND o.accepted_at IS NOT NULL AND r.role = 'reminder') AS reminders_sent,
                 min(o.accepted_at) FILTER (WHERE o.status = 'sent' AND r.role = 'announcement') AS announced_at,
                 min(o.updated_at) FILTER (WHERE o.status = 'undeliverable') AS undeliverable_at
          FROM outbox o LEFT JOIN report_steps r ON r.campaign_id = o.campaign_id AND r.step = o.step
          WHERE o.enrolment_id = enrolment) f
    WHERE e.id = enrolment;
$$;

CREATE FUNCTION outbox_facts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    step_role TEXT;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.enrolment_id IS NOT NULL AND (
           (OLD.status = 'sent' AND (TG_OP = 'DELETE' OR NEW.status <> 'sent'
               OR OLD.accepted_at IS DISTINCT FROM NEW.accepted_at OR OLD.step <> NEW.step))
        OR (OLD.status = 'undeliverable' AND (TG_OP = 'DELETE' OR NEW.status <> 'undeliverable'
               OR OLD.updated_at <> NEW.updated_at))) THEN
        -- Anything but a new acceptance or bounce (no code path does this
        -- today: a sent message stays sent): recount, so the facts never drift.
        PERFORM enrolment_message_facts(OLD.enrolment_id);
        IF TG_OP = 'UPDATE' AND NEW.enrolment_id IS DISTINCT FROM OLD.enrolment_id AND NEW.enrolment_id IS NOT NULL THEN
            PERFORM enrolment_message_facts(NEW.enrolment_id);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' OR NEW.enrolment_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF NEW.status = 'sent' AND NEW.accepted_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.status <> 'sent') THEN
        SELECT r.role INTO step_role FROM report_steps r
        WHERE r.campaign_id = NEW.campaign_id AND r.step = NEW.step;
        UPDATE enrolments SET
            sent_count = sent_count + 1,
            first_sent_at = LEAST(first_sent_at, NEW.accepted_at),
            last_sent_at = GREATEST(last_sent_at, NEW.accepted_at),
            reminders_sent = reminders_sent + CASE WHEN step_role = 'reminder' THEN 1 ELSE 0 END,
            announced_at = CASE WHEN step_role = 'announcement'
                THEN LEAST(announced_at, NEW.accepted_at) ELSE announced_at END
        WHERE id = NEW.enrolment_id;
    ELSIF NEW.status = 'undeliverable' AND (TG_OP = 'INSERT' OR OLD.status <> 'undeliverable') THEN
        UPDATE enrolments SET undeliverable_at = LEAST(undeliverable_at, NEW.updated_at)
        WHERE id = NEW.enrolment_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_facts AFTER INSERT OR DELETE OR UPDATE OF status, accepted_at, updated_at, step ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_facts();

-- Opens and clicks: the first of each, by anyone and by a person.
CREATE FUNCTION events_facts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.enrolment_id IS NULL OR NEW.kind NOT IN ('open', 'click') THEN
        RETURN NULL;
    END IF;
    IF NEW.kind = 'open' THEN
        UPDATE enrolments SET
            opened_at = LEAST(opened_at, NEW.at),
            opened_human_at = CASE WHEN CAST(NEW.machine AS INTEGER) = 0
                THEN LEAST(opened_human_at, NEW.at) ELSE opened_human_at END
        WHERE id = NEW.enrolment_id;
    ELSE
        UPDATE enrolments SET
            clicked_at = LEAST(clicked_at, NEW.at),
            clicked_human_at = CASE WHEN CAST(NEW.machine AS INTEGER) = 0
                THEN LEAST(clicked_human_at, NEW.at) ELSE clicked_human_at END
        WHERE id = NEW.enrolment_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_facts AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_facts();

-- Backfill from the history so far. The announcement and reminders are
-- unknown here (they come from the campaign file): the first report of
-- each campaign writes report_steps and fills those two.
UPDATE enrolments e SET
    sent_count = f.sent_count, first_sent_at = f.first_sent_at, last_sent_at = f.last_sent_at,
    undeliverable_at = f.undeliverable_at
FROM (SELECT enrolment_id,
             count(*) FILTER (WHERE status = 'sent' AND accepted_at IS NOT NULL) AS sent_count,
             min(accepted_at) FILTER (WHERE status = 'sent') AS first_sent_at,
             max(accepted_at) FILTER (WHERE status = 'sent') AS last_sent_at,
             min(updated_at) FILTER (WHERE status = 'undeliverable') AS undeliverable_at
      FROM outbox WHERE enrolment_id IS NOT NULL GROUP BY enrolment_id) f
WHERE e.id = f.enrolment_id;
UPDATE enrolments e SET
    opened_at = f.opened_at, opened_human_at = f.opened_human_at,
    clicked_at = f.clicked_at, clicked_human_at = f.clicked_human_at
FROM (SELECT enrolment_id,
             min(at) FILTER (WHERE kind = 'open') AS opened_at,
             min(at) FILTER (WHERE kind = 'open' AND CAST(machine AS INTEGER) = 0) AS opened_human_at,
             min(at) FILTER (WHERE kind = 'click') AS clicked_at,
             min(at) FILTER (WHERE kind = 'click' AND CAST(machine AS INTEGER) = 0) AS clicked_human_at
      FROM events WHERE enrolment_id IS NOT NULL GROUP BY enrolment_id) f
WHERE e.id = f.enrolment_id;
