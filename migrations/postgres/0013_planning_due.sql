-- Incremental planning. `next_at` is when the planning tick must next look
-- at an enrolment: its next step, or its manager's next digest; NULL when
-- nothing more can fall due until something changes. A value <= 0 means
-- "look at the next tick": triggers set it, each time lower than before, so
-- a tick that read the row before the change cannot overwrite it. The tick
-- reads one range of `enrolments_next`, not the whole campaign.
ALTER TABLE enrolments ADD COLUMN next_at BIGINT DEFAULT -1;
CREATE INDEX enrolments_next ON enrolments (campaign_id, next_at) WHERE next_at IS NOT NULL;

-- Which roster the tick last looked at for people to enrol (imports made,
-- highest staff id); '' makes the next tick look again.
ALTER TABLE campaigns ADD COLUMN roster_seen TEXT NOT NULL DEFAULT '';

-- A completion, exemption, departure, return or new due date.
CREATE FUNCTION enrolments_replan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.next_at := LEAST(COALESCE(OLD.next_at, 0), 0) - 1;
    RETURN NEW;
END;
$$;
CREATE TRIGGER enrolments_replan BEFORE UPDATE OF completed_at, exempted_at, left_at, due_at, enrolled_at ON enrolments
    FOR EACH ROW WHEN (OLD.completed_at IS DISTINCT FROM NEW.completed_at OR OLD.exempted_at IS DISTINCT FROM NEW.exempted_at
        OR OLD.left_at IS DISTINCT FROM NEW.left_at OR OLD.due_at IS DISTINCT FROM NEW.due_at
        OR OLD.enrolled_at IS DISTINCT FROM NEW.enrolled_at)
    EXECUTE FUNCTION enrolments_replan();

-- A person's record changed: their audience, address, manager or state.
CREATE FUNCTION staff_replan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrolments SET next_at = LEAST(COALESCE(next_at, 0), 0) - 1 WHERE staff_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER staff_replan AFTER UPDATE ON staff
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active OR OLD.email IS DISTINCT FROM NEW.email
        OR OLD.employee_id IS DISTINCT FROM NEW.employee_id OR OLD.first_name IS DISTINCT FROM NEW.first_name
        OR OLD.last_name IS DISTINCT FROM NEW.last_name OR OLD.department IS DISTINCT FROM NEW.department
        OR OLD.role IS DISTINCT FROM NEW.role OR OLD.facility IS DISTINCT FROM NEW.facility
        OR OLD.manager_email IS DISTINCT FROM NEW.manager_email OR OLD.time_zone IS DISTINCT FROM NEW.time_zone
        OR OLD.attributes IS DISTINCT FROM NEW.attributes)
    EXECUTE FUNCTION staff_replan();

-- A changed campaign file: every enrolment and the roster are looked at again.
CREATE FUNCTION campaigns_replan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrolments SET next_at = LEAST(COALESCE(next_at, 0), 0) - 1 WHERE campaign_id = NEW.id;
    NEW.roster_seen := '';
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_replan BEFORE UPDATE OF definition, starts_at ON campaigns
    FOR EACH ROW WHEN (OLD.definition IS DISTINCT FROM NEW.definition OR OLD.starts_at IS DISTINCT FROM NEW.starts_at)
    EXECUTE FUNCTION campaigns_replan();

-- An enrolment removed (an exemption made before enrolling, undone): the
-- person may be enrolled again.
CREATE FUNCTION enrolments_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaigns SET roster_seen = '' WHERE id = OLD.campaign_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER enrolments_removed AFTER DELETE ON enrolments
    FOR EACH ROW EXECUTE FUNCTION enrolments_removed();
