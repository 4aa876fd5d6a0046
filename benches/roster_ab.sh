#!/usr/bin/env bash
# Roster import, two builds turn about: for comparing a change on a shared,
# noisy machine, where only runs interleaved in one run compare.
#
#   benches/roster_ab.sh OLD_BIN NEW_BIN [ROUNDS] [CSV]   (defaults: 7 rounds,
#                                                          bench-out/roster-100000.csv)
#
# Each round: for OLD then NEW, a fresh import into an empty migrated SQLite
# database and the same file again; then sqlite3 ".import --csv" of the file,
# and sqlite3 loading it into the migrated schema (benches/sqlite3_into_schema.sh).
# Prints the median wall time and peak RSS of each, and every run's time.
# Build the old binary from a worktree, e.g.
#   git worktree add ../old REV && (cd ../old && cargo build --release) && cp ../old/target/release/ambassador /tmp/old
# Needs: sqlite3, GNU time. The CSV comes from benches/roster_import.sh.
set -euo pipefail
OLD=$1; NEW=$2; ROUNDS=${3:-7}
CSV=${4:-"$(dirname "$0")/../bench-out/roster-100000.csv"}
[ -f "$CSV" ] || { echo "error: $CSV is missing; run benches/roster_import.sh first" >&2; exit 1; }
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
timed() { local label=$1; shift; /usr/bin/time -f "%e %M" -o "$D/t" "$@" >/dev/null 2>&1; echo "$label $(cat "$D/t")" >>"$D/res"; }
for _ in $(seq "$ROUNDS"); do
    for X in OLD NEW; do
        BIN=${!X}
        rm -f "$D"/f.db*
        export AMBASSADOR__DATABASE__URL="sqlite://$D/f.db"
        "$BIN" db migrate >/dev/null 2>&1
        # A copy for the same-work anchor (the schema may still be in the WAL).
        [ -f "$D/schema.db" ] || { sqlite3 "$D/f.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null && cp "$D/f.db" "$D/schema.db"; }
        timed "$X-fresh" "$BIN" roster import "$CSV"
        timed "$X-again" "$BIN" roster import "$CSV"
    done
    rm -f "$D/floor.db"
    timed sqlite3 sqlite3 "$D/floor.db" ".import --csv $CSV staff"
    rm -f "$D"/into.db*; cp "$D/schema.db" "$D/into.db"
    timed sqlite3-schema "$(dirname "$0")/sqlite3_into_schema.sh" "$D/into.db" "$CSV"
done
for X in sqlite3 sqlite3-schema OLD-fresh NEW-fresh OLD-again NEW-again; do
    grep "^$X " "$D/res" | sort -k2 -n | awk -v x="$X" '{ w[NR] = $2; m[NR] = $3; all = all " " $2 }
        END { printf "%-14s median %.2f s  peak %.1f MB  runs:%s\n", x, w[int((NR + 1) / 2)], m[int((NR + 1) / 2)] / 1024, all }'
done
