#!/usr/bin/env bash
# Roster import benchmark: ambassador against sqlite3's own CSV loader.
#
#   benches/roster_import.sh [ROWS] [RUNS]      (defaults: 100000 rows, 5 runs)
#
# For each run: a fresh import into an empty SQLite database, the same file
# imported again (every row unchanged), and `sqlite3 DB ".import --csv FILE staff"`
# into an empty database: the floor for loading this CSV into SQLite.
# Prints medians, ratios and peak resident memory (from /usr/bin/time -v).
# Needs: sqlite3, GNU time (apt-get install -y sqlite3 time).
set -euo pipefail

ROWS=${1:-100000}
RUNS=${2:-5}
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

rm -f "$OUT/fresh" "$OUT/again" "$OUT/sqlite3"
for i in $(seq "$RUNS"); do
    DB="$OUT/bench.db"
    rm -f "$DB" "$DB-wal" "$DB-shm"
    export AMBASSADOR__DATABASE__URL="sqlite://$DB"
    "$BIN" db migrate >/dev/null 2>&1   # schema creation is not part of the import
    run fresh "$BIN" roster import "$CSV"
    run again "$BIN" roster import "$CSV"
    grep -q "unchanged $ROWS " "$OUT/stdout.txt" || { echo "error: re-import did not find every row unchanged:" >&2; cat "$OUT/stdout.txt" >&2; exit 1; }

    FLOOR="$OUT/floor.db"
    rm -f "$FLOOR"
    run sqlite3 sqlite3 "$FLOOR" ".import --csv $CSV staff"
    echo "run $i/$RUNS done" >&2
done

median() { sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

FLOOR_S=$(median "$OUT/sqlite3" 1)
printf '\n%s rows, %s runs each, medians (%s bytes of CSV)\n\n' "$ROWS" "$RUNS" "$(stat -c %s "$CSV")"
printf '| %-34s | %9s | %11s | %12s | %13s |\n' "what" "seconds" "rows/s" "vs sqlite3" "peak RSS (MB)"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------------" "-----------" "-------------" "--------------" "---------------"
for label in sqlite3 fresh again; do
    case $label in
        sqlite3) name='sqlite3 .import --csv (floor)' ;;
        fresh) name='ambassador roster import (fresh)' ;;
        again) name='ambassador re-import (unchanged)' ;;
    esac
    S=$(median "$OUT/$label" 1)
    KB=$(median "$OUT/$label" 2)
    awk -v n="$name" -v s="$S" -v f="$FLOOR_S" -v kb="$KB" -v rows="$ROWS" \
        'BEGIN { printf "| %-34s | %9.3f | %11.0f | %11.2fx | %13.1f |\n", n, s, rows / s, s / f, kb / 1024 }'
done
FRESH_S=$(median "$OUT/fresh" 1)
AGAIN_S=$(median "$OUT/again" 1)
awk -v a="$AGAIN_S" -v f="$FRESH_S" 'BEGIN { printf "\nre-import / fresh import: %.2fx\n", a / f }'
