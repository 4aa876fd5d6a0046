#!/usr/bin/env bash
# The same-work anchor of the roster import benchmarks: sqlite3 loads the
# generated roster (examples/gen_roster.rs) into `staff` of a migrated
# ambassador database, in WAL mode with its unique indexes, as a real import
# leaves it. `.import` cannot fill a table of other columns, so it loads a
# staging table, and one transaction copies the rows into `staff` and drops
# it (the rows are written twice; a single pass through an INSTEAD OF
# trigger on a view measured slower, 0.80 s against 0.57 s on 2026-12-01).
# No validation, no duplicate checks, no history: a floor for SQLite's share.
#
#   benches/sqlite3_into_schema.sh DB CSV     (DB: migrated, empty; it is filled)
set -euo pipefail
DB=$1; CSV=$2
sqlite3 "$DB" ".import --csv \"$CSV\" staff_in" "BEGIN" \
  "INSERT INTO staff (source, created_at, updated_at, employee_id, email, first_name, last_name,
                      department, role, facility, manager_email, time_zone, attributes)
   SELECT 'hr', 1, 1, \"Employee ID\", lower(\"Work Email\"), \"First Name\", \"Last Name\",
          Department, \"Job Title\", Location, NULLIF(lower(\"Supervisor Email\"), ''),
          NULLIF(\"Time Zone\", ''), json_object('cost_center', \"Cost Center\")
   FROM staff_in" \
  "DROP TABLE staff_in" "COMMIT"
