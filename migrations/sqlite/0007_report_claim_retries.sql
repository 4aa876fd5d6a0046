-- A claimed summary or digest that was never sent (its instance died, or the
-- relay refused it) is sent again by a later planning tick. `kind` says which
-- message a claim is for; `attempts` bounds the retries. Manual sends
-- (`report send-weekly`) print their outcome and are not retried.
ALTER TABLE weekly_reports ADD COLUMN kind TEXT NOT NULL DEFAULT 'weekly';
ALTER TABLE weekly_reports ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
UPDATE weekly_reports SET kind = 'team' WHERE report_key LIKE 'team:%';
UPDATE weekly_reports SET kind = 'manual' WHERE report_key LIKE '%:manual:%';
CREATE INDEX weekly_reports_unsent ON weekly_reports (claimed_at)
    WHERE outcome IS NULL OR outcome <> 'sent';
