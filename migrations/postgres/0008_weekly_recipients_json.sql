-- Report claims keep their recipients as a JSON array of addresses, no longer
-- joined with commas: a quoted local part may hold a comma. Existing rows are
-- read as they were before: a team digest's one manager address, or a
-- summary's list split at each comma.
UPDATE weekly_reports
SET recipients = json_build_array(recipients)::text
WHERE kind = 'team' AND recipients NOT LIKE '[%';
UPDATE weekly_reports
SET recipients = to_json(string_to_array(recipients, ','))::text
WHERE kind <> 'team' AND recipients NOT LIKE '[%';
