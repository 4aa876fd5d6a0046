#!/usr/bin/env bash
# Roster import benchmark: ambassador against sqlite3's own CSV loader.
#
#   benches/roster_import.sh [ROWS] [RUNS]      (defaults: 100000 rows, 5 runs)
#   BACKENDS="sqlite postgres" PG=postgres://postgres@127.0.0.1:5432 benches/roster_import.sh
#
# For each run on SQLite: a fresh import into an empty SQLite database, the
# same file imported again (every row unchanged), and
# `sqlite3 DB ".import --csv FILE staff"` into an empty database: the floor
# for loading this CSV into SQLite (a bare table: no indexes, no WAL); and
# benches/sqlite3_into_schema.sh: sqlite3 loading the same rows into the
# migrated schema, the floor for the same end state. On PostgreSQL (a fresh database of a
# unique name, dropped at the end): the same two imports, and psql's
# `\copy` of the same file into a table of ten text columns: the floor
# there. Prints medians, ratios and peak resident memory (from
# /usr/bin/time -v). Needs: sqlite3, GNU time, psql for PostgreSQL
# (apt-get install -y sqlite3 time postgresql-client).
set -euo pipefail

ROWS=${1:-100000}
RUNS=${2:-5}
BACKENDS=${BACKENDS:-sqlite}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PGDB="ambassador_import_$(date +%s)_$$"
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-bench-out}
mkdir -p "$OUT"

for tool in sqlite3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing; apt-get install -y sqlite3 time" >&2; exit 1; }
done

cargo build --release --quiet --bin ambassador --example gen_roster
BIN="$TARGET/release/ambassador"
CSV="$OUT/roster-$ROWS.csv"
"$TARGET/release/examples/gen_roster" "$ROWS" "$CSV"

# run LABEL CMD...: runs CMD under GNU time, appends "seconds kilobytes" to $OUT/LABEL.
run() {
    local label=$1; shift
    /usr/bin/time -v -o "$OUT/time.txt" "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" || {
        echo "error: $label failed:" >&2; cat "$OUT/stderr.txt" >&2; exit 1; }
    awk -F': ' '
        /Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
        /Maximum resident set size/ { kb = $2 }
        END { printf "%.3f %d\n", s, kb }' "$OUT/time.txt" >>"$OUT/$label"
}

rm -f "$OUT/fresh" "$OUT/again" "$OUT/sqlite3" "$OUT/sqlite3_schema" "$OUT/pg_fresh" "$OUT/pg_again" "$OUT/psql"
if [[ " $BACKENDS " == *" postgres "* ]]; then
    trap 'psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
fi
for i in $(seq "$RUNS"); do
  if [[ " $BACKENDS " == *" sqlite "* ]]; then
    DB="$OUT/bench.db"
    rm -f "$DB" "$DB-wal" "$DB-shm"
    export AMBASSADOR__DATABASE__URL="sqlite://$DB"
    "$BIN" db migrate >/dev/null 2>&1   # schema creation is not part of the import
    # A copy for the same-work anchor below (the schema may still be in the WAL).
    sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null && cp "$DB" "$OUT/schema.db"
    run fresh "$BIN" roster import "$CSV"
    run again "$BIN" roster import "$CSV"
    grep -q "unchanged $ROWS " "$OUT/stdout.txt" || { echo "error: re-import did not find every row unchanged:" >&2; cat "$OUT/stdout.txt" >&2; exit 1; }

    FLOOR="$OUT/floor.db"
    rm -f "$FLOOR"
    run sqlite3 sqlite3 "$FLOOR" ".import --csv $CSV staff"
    rm -f "$OUT"/schema.db-*
    run sqlite3_schema benches/sqlite3_into_schema.sh "$OUT/schema.db" "$CSV"
  fi
  if [[ " $BACKENDS " == *" postgres "* ]]; then
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB" >/dev/null
    export AMBASSADOR__DATABASE__URL="$PG/$PGDB"
    "$BIN" db migrate >/dev/null 2>&1
    run pg_fresh "$BIN" roster import "$CSV"
    run pg_again "$BIN" roster import "$CSV"
    grep -q "unchanged $ROWS " "$OUT/stdout.txt" || { echo "error: re-import on PostgreSQL did not find every row unchanged:" >&2; cat "$OUT/stdout.txt" >&2; exit 1; }
    psql -q "$PG/$PGDB" -c "CREATE TABLE floor (c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text, c8 text, c9 text, c10 text)" >/dev/null
    run psql psql -q "$PG/$PGDB" -c "\\copy floor FROM '$CSV' WITH (FORMAT csv, HEADER true)"
  fi
  echo "run $i/$RUNS done" >&2
done

median() { sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# table FLOOR_LABEL LABEL...: one row per label, its ratio to the floor's median.
table() {
    local floor=$1; shift
    local floor_s
    floor_s=$(median "$OUT/$floor" 1)
    printf '| %-40s | %9s | %11s | %12s | %13s |\n' "what" "seconds" "rows/s" "vs floor" "peak RSS (MB)"
    printf '|%s|%s|%s|%s|%s|\n' "------------------------------------------" "-----------" "-------------" "--------------" "---------------"
    for label in "$floor" "$@"; do
        case $label in
            sqlite3) name='sqlite3 .import --csv (floor)' ;;
            sqlite3_schema) name='sqlite3 into the migrated schema' ;;
            fresh) name='ambassador roster import (fresh)' ;;
            again) name='ambassador re-import (unchanged)' ;;
            psql) name='psql \copy (floor)' ;;
            pg_fresh) name='ambassador roster import, PG (fresh)' ;;
            pg_again) name='ambassador re-import, PG (unchanged)' ;;
        esac
        local s kb
        s=$(median "$OUT/$label" 1)
        kb=$(median "$OUT/$label" 2)
        # The name through the environment: awk -v would read "\c" as an escape.
        NAME=$name awk -v s="$s" -v f="$floor_s" -v kb="$kb" -v rows="$ROWS" \
            'BEGIN { printf "| %-40s | %9.3f | %11.0f | %11.2fx | %13.1f |\n", ENVIRON["NAME"], s, rows / s, s / f, kb / 1024 }'
    done
    echo
}

printf '\n%s rows, %s runs each, medians (%s bytes of CSV)\n\n' "$ROWS" "$RUNS" "$(stat -c %s "$CSV")"
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    table sqlite3 sqlite3_schema fresh again
    awk -v s="$(median "$OUT/sqlite3_schema" 1)" -v f="$(median "$OUT/fresh" 1)" 'BEGIN { printf "fresh import / sqlite3 into the migrated schema: %.2fx\n", f / s }'
    awk -v a="$(median "$OUT/again" 1)" -v f="$(median "$OUT/fresh" 1)" 'BEGIN { printf "re-import / fresh import: %.2fx\n\n", a / f }'
fi
if [[ " $BACKENDS " == *" postgres "* ]]; then
    table psql pg_fresh pg_again
fi
