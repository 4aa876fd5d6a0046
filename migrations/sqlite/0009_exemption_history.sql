-- Every exemption and every removal of one, with who, when and why: the
-- enrolment holds only the current state, and an auditor asks how it came
-- about. `actor` is the OS user for the command line and "admin" for the
-- web page and the API; `channel` says which (cli | api | page).
CREATE TABLE exemption_changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id),
    staff_id     BIGINT NOT NULL REFERENCES staff (id),
    action       TEXT   NOT NULL,   -- exempted | removed
    at           BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    channel      TEXT   NOT NULL,
    reason       TEXT   NOT NULL
);
CREATE INDEX exemption_changes_campaign ON exemption_changes (campaign_id, at);

-- Exemptions made before this history was kept, so that every current
-- exemption has its entry.
INSERT INTO exemption_changes (campaign_id, staff_id, action, at, actor, channel, reason)
SELECT campaign_id, staff_id, 'exempted', exempted_at, 'unknown', 'unknown', COALESCE(exempt_reason, '')
FROM enrolments WHERE exempted_at IS NOT NULL;
