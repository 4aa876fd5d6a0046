-- The audit trail: who did what, when, from where, and how it ended.
-- Append-only: no code path updates an entry, and the trigger refuses it;
-- entries leave only through the retention purge (audit.retention), which
-- itself leaves an entry.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,   -- account email, OS user, "system", "shared admin credential"
    actor_kind  TEXT    NOT NULL,   -- account | cli | system | shared
    address     TEXT    NOT NULL,   -- client address; "" on the command line
    action      TEXT    NOT NULL,   -- e.g. roster.import, sign_in
    target      TEXT    NOT NULL,   -- what it acted on: a campaign slug, an email, a file name
    outcome     TEXT    NOT NULL,   -- success | failure | refused
    detail      TEXT    NOT NULL    -- JSON object: counts, digests, reasons
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
