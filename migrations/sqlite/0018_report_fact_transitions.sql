-- A message that was undeliverable and is then accepted (or the other way
-- round) is recounted by outbox_facts_recount; the triggers that count a
-- new acceptance or bounce now leave such a row to it, instead of adding
-- it a second time. No code path makes that change today; a test does
-- (tests/report_facts.rs), and PostgreSQL's statement triggers (its 0018)
-- draw the same line.
DROP TRIGGER outbox_facts_sent_update;
DROP TRIGGER outbox_facts_undeliverable_update;

CREATE TRIGGER outbox_facts_sent_update AFTER UPDATE OF status, accepted_at ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'sent' AND NEW.accepted_at IS NOT NULL
     AND OLD.status NOT IN ('sent', 'undeliverable')
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

CREATE TRIGGER outbox_facts_undeliverable_update AFTER UPDATE OF status ON outbox
WHEN NEW.enrolment_id IS NOT NULL AND NEW.status = 'undeliverable'
     AND OLD.status NOT IN ('sent', 'undeliverable')
BEGIN
    UPDATE enrolments SET undeliverable_at = min(coalesce(undeliverable_at, NEW.updated_at), NEW.updated_at)
    WHERE id = NEW.enrolment_id;
END;
