-- The report facts (0012) kept by statement-level triggers over transition
-- tables instead of a PL/pgSQL call per row. The delivery worker marks a
-- whole batch with one UPDATE and the tracking writer inserts a batch of
-- events with one INSERT, so the facts now follow in one UPDATE of
-- enrolments per statement; claims, releases and retries (no row reaches
-- or leaves sent or undeliverable) touch no enrolment. The facts are the
-- same as 0012's, row for row.
DROP TRIGGER outbox_facts ON outbox;
DROP TRIGGER events_facts ON events;
DROP FUNCTION outbox_facts();
DROP FUNCTION events_facts();

CREATE FUNCTION outbox_facts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrolments e SET
        sent_count = e.sent_count + a.sent,
        first_sent_at = LEAST(e.first_sent_at, a.first_sent_at),
        last_sent_at = GREATEST(e.last_sent_at, a.last_sent_at),
        reminders_sent = e.reminders_sent + a.reminders,
        announced_at = LEAST(e.announced_at, a.announced_at),
        undeliverable_at = LEAST(e.undeliverable_at, a.undeliverable_at)
    FROM (SELECT n.enrolment_id,
                 count(*) FILTER (WHERE n.status = 'sent') AS sent,
                 min(n.accepted_at) FILTER (WHERE n.status = 'sent') AS first_sent_at,
                 max(n.accepted_at) FILTER (WHERE n.status = 'sent') AS last_sent_at,
                 count(*) FILTER (WHERE n.status = 'sent' AND r.role = 'reminder') AS reminders,
                 min(n.accepted_at) FILTER (WHERE n.status = 'sent' AND r.role = 'announcement') AS announced_at,
                 min(n.updated_at) FILTER (WHERE n.status = 'undeliverable') AS undeliverable_at
          FROM new_rows n
          LEFT JOIN report_steps r ON r.campaign_id = n.campaign_id AND r.step = n.step
          WHERE n.enrolment_id IS NOT NULL
            AND ((n.status = 'sent' AND n.accepted_at IS NOT NULL) OR n.status = 'undeliverable')
          GROUP BY n.enrolment_id) a
    WHERE e.id = a.enrolment_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION outbox_facts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recounted BIGINT[] := '{}';
BEGIN
    -- Most statements are claims (no fact moves) and sent marks (rows that
    -- were neither sent nor undeliverable): one probe each skips the rest.
    IF EXISTS (SELECT 1 FROM old_rows WHERE status IN ('sent', 'undeliverable')) THEN
        -- Anything but a new acceptance or bounce (no code path does this
        -- today: a sent message stays sent) recounts its enrolments from
        -- their few outbox rows, so the facts never drift.
        SELECT COALESCE(array_agg(DISTINCT x.id), '{}') INTO recounted
        FROM (SELECT o.enrolment_id AS id, n.enrolment_id AS moved_to
              FROM old_rows o JOIN new_rows n ON n.id = o.id
              WHERE (o.status = 'sent' AND (n.status <> 'sent' OR o.accepted_at IS DISTINCT FROM n.accepted_at
                                            OR o.step <> n.step OR n.enrolment_id IS DISTINCT FROM o.enrolment_id))
                 OR (o.status = 'undeliverable' AND (n.status <> 'undeliverable' OR o.updated_at <> n.updated_at
                                                     OR n.enrolment_id IS DISTINCT FROM o.enrolment_id))) changed,
             LATERAL (VALUES (changed.id), (changed.moved_to)) AS x(id)
        WHERE x.id IS NOT NULL;
        PERFORM enrolment_message_facts(id) FROM unnest(recounted) AS id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status IN ('sent', 'undeliverable')) THEN
        RETURN NULL;
    END IF;
    -- New acceptances and bounces: rows that were neither before, of
    -- enrolments not recounted just now.
    UPDATE enrolments e SET
        sent_count = e.sent_count + a.sent,
        first_sent_at = LEAST(e.first_sent_at, a.first_sent_at),
        last_sent_at = GREATEST(e.last_sent_at, a.last_sent_at),
        reminders_sent = e.reminders_sent + a.reminders,
        announced_at = LEAST(e.announced_at, a.announced_at),
        undeliverable_at = LEAST(e.undeliverable_at, a.undeliverable_at)
    FROM (SELECT n.enrolment_id,
                 count(*) FILTER (WHERE n.status = 'sent') AS sent,
                 min(n.accepted_at) FILTER (WHERE n.status = 'sent') AS first_sent_at,
                 max(n.accepted_at) FILTER (WHERE n.status = 'sent') AS last_sent_at,
                 count(*) FILTER (WHERE n.status = 'sent' AND r.role = 'reminder') AS reminders,
                 min(n.accepted_at) FILTER (WHERE n.status = 'sent' AND r.role = 'announcement') AS announced_at,
                 min(n.updated_at) FILTER (WHERE n.status = 'undeliverable') AS undeliverable_at
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          LEFT JOIN report_steps r ON r.campaign_id = n.campaign_id AND r.step = n.step
          WHERE n.enrolment_id IS NOT NULL AND o.status NOT IN ('sent', 'undeliverable')
            AND ((n.status = 'sent' AND n.accepted_at IS NOT NULL) OR n.status = 'undeliverable')
            AND NOT n.enrolment_id = ANY (recounted)
          GROUP BY n.enrolment_id) a
    WHERE e.id = a.enrolment_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION outbox_facts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM enrolment_message_facts(x.id)
    FROM (SELECT DISTINCT enrolment_id AS id FROM old_rows
          WHERE enrolment_id IS NOT NULL AND status IN ('sent', 'undeliverable')) x;
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_facts_inserted AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_facts_inserted();
CREATE TRIGGER outbox_facts_updated AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_facts_updated();
CREATE TRIGGER outbox_facts_deleted AFTER DELETE ON outbox
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_facts_deleted();

-- Opens and clicks: the first of each, by anyone and by a person.
CREATE FUNCTION events_facts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrolments e SET
        opened_at = LEAST(e.opened_at, a.opened_at),
        opened_human_at = LEAST(e.opened_human_at, a.opened_human_at),
        clicked_at = LEAST(e.clicked_at, a.clicked_at),
        clicked_human_at = LEAST(e.clicked_human_at, a.clicked_human_at)
    FROM (SELECT enrolment_id,
                 min(at) FILTER (WHERE kind = 'open') AS opened_at,
                 min(at) FILTER (WHERE kind = 'open' AND CAST(machine AS INTEGER) = 0) AS opened_human_at,
                 min(at) FILTER (WHERE kind = 'click') AS clicked_at,
                 min(at) FILTER (WHERE kind = 'click' AND CAST(machine AS INTEGER) = 0) AS clicked_human_at
          FROM new_rows
          WHERE enrolment_id IS NOT NULL AND kind IN ('open', 'click')
          GROUP BY enrolment_id) a
    WHERE e.id = a.enrolment_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_facts_inserted AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION events_facts_inserted();
