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
CREATE TRIGGER enrolments_replan AFTER UPDATE OF completed_at, exempted_at, left_at, due_at, enrolled_at ON enrolments
WHEN OLD.completed_at IS NOT NEW.completed_at OR OLD.exempted_at IS NOT NEW.exempted_at
  OR OLD.left_at IS NOT NEW.left_at OR OLD.due_at IS NOT NEW.due_at OR OLD.enrolled_at IS NOT NEW.enrolled_at
BEGIN
    UPDATE enrolments SET next_at = min(coalesce(next_at, 0), 0) - 1 WHERE id = NEW.id;
END;

-- A person's record changed: their audience, address, manager or state.
CREATE TRIGGER staff_replan AFTER UPDATE ON staff
WHEN OLD.active IS NOT NEW.active OR OLD.email IS NOT NEW.email OR OLD.employee_id IS NOT NEW.employee_id
  OR OLD.first_name IS NOT NEW.first_name OR OLD.last_name IS NOT NEW.last_name
  OR OLD.department IS NOT NEW.department OR OLD.role IS NOT NEW.role OR OLD.facility IS NOT NEW.facility
  OR OLD.manager_email IS NOT NEW.manager_email OR OLD.time_zone IS NOT NEW.time_zone
  OR OLD.attributes IS NOT NEW.attributes
BEGIN
    UPDATE enrolments SET next_at = min(coalesce(next_at, 0), 0) - 1 WHERE staff_id = NEW.id;
END;

-- A changed campaign file: every enrolment and the roster are looked at again.
CREATE TRIGGER campaigns_replan AFTER UPDATE OF definition, starts_at ON campaigns
WHEN OLD.definition IS NOT NEW.definition OR OLD.starts_at IS NOT NEW.starts_at
BEGIN
    UPDATE enrolments SET next_at = min(coalesce(next_at, 0), 0) - 1 WHERE campaign_id = NEW.id;
    UPDATE campaigns SET roster_seen = '' WHERE id = NEW.id;
END;

-- An enrolment removed (an exemption made before enrolling, undone): the
-- person may be enrolled again.
CREATE TRIGGER enrolments_removed AFTER DELETE ON enrolments
BEGIN
    UPDATE campaigns SET roster_seen = '' WHERE id = OLD.campaign_id;
END;
