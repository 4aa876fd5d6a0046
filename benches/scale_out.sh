#!/usr/bin/env bash
# Scale-out benchmark: messages per second with 1, 2 and 3 instances (separate
# processes, each running the daemon's delivery worker) sharing one PostgreSQL
# outbox, and one instance on SQLite for comparison, all into one smtp-sink on
# loopback, in the same run. Prints medians and ratios vs one PostgreSQL
# instance; see docs/benchmarks.md.
#
#   benches/scale_out.sh [PORT] [MESSAGES] [CONCURRENCY]
#   PG=postgres://postgres@127.0.0.1:5432 RUNS=3 INSTANCES="1 2 3" ASYNC="1" benches/scale_out.sh
#
# ASYNC lists instance counts also run with synchronous_commit = off (set per
# connection): PostgreSQL then no longer waits for the WAL flush at commit,
# as SQLite in WAL mode with synchronous = NORMAL does not. A diagnostic, not
# a recommended setting. ASYNC="" skips it.
#
# OLD=path/to/an/earlier/bench_delivery also runs one instance on each
# database with that binary, alternating with the others in every
# repetition: an A/B of two builds in the same run (same schema expected).
#
# VARIANT_SQL="..." prepares a second PostgreSQL database the same way, runs
# that SQL in it (say, an index as an earlier migration left it) and runs one
# instance on it in every repetition too: an A/B of two schemas, one binary.
#
# A fresh PostgreSQL database (unique name) is created, filled once (roster,
# campaign, plan: not timed) and dropped at the end; SQLite gets a file in a
# temporary folder. Between runs every outbox row is set back to pending, so
# each run sends the same MESSAGES messages. Needs the Debian package postfix
# (only smtp-sink runs) and psql.
set -euo pipefail

PORT=${1:-2525}
MESSAGES=${2:-20000}
CONCURRENCY=${3:-16}
RUNS=${RUNS:-3}
INSTANCES=${INSTANCES:-1 2 3}
ASYNC=${ASYNC-1}
OLD=${OLD:-}
VARIANT_SQL=${VARIANT_SQL:-}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
SINK=/usr/sbin/smtp-sink
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/release/examples/bench_delivery"
DB="ambassador_scale_$(date +%s)_$$"
PGDB="$PG/$DB"
PGASYNC="$PGDB?options=-c%20synchronous_commit%3Doff"
PGVARIANT="${PGDB}_variant"
WORK=$(mktemp -d)
LITE="sqlite://$WORK/bench.db"

cargo build --release --example bench_delivery >&2

cleanup() {
    [[ -n ${SINK_PID:-} ]] && kill "$SINK_PID" 2>/dev/null || true
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >&2 || true
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS ${DB}_variant WITH (FORCE)" >&2 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# -c: running counters (sessions, messages) on stdout, so the sink's own count
# of received messages can be compared with the outbox's.
"$SINK" -c -u postfix "127.0.0.1:$PORT" 1024 >"$WORK/sink.log" &
SINK_PID=$!
sleep 0.5
received() { tr '\r' '\n' <"$WORK/sink.log" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1 | grep . || echo 0; }

psql -q "$PG/postgres" -c "CREATE DATABASE $DB" >&2
common=(--dir "$WORK" --port "$PORT" --messages "$MESSAGES" --concurrency "$CONCURRENCY")
echo "postgres: $("$BENCH" --database "$PGDB" "${common[@]}" --phase prepare)" >&2
echo "sqlite:   $("$BENCH" --database "$LITE" "${common[@]}" --phase prepare)" >&2
if [[ -n $VARIANT_SQL ]]; then
    psql -q "$PG/postgres" -c "CREATE DATABASE ${DB}_variant" >&2
    echo "variant:  $("$BENCH" --database "$PGVARIANT" "${common[@]}" --phase prepare)" >&2
    psql -q "$PGVARIANT" -c "$VARIANT_SQL" -c "VACUUM ANALYZE outbox" >&2
fi

TCK=$(getconf CLK_TCK)
POSTMASTER=$(pgrep -o -x postgres || true)
# CPU ticks of a process, plus (for the postmaster) its exited children: the
# backends that served a run's connections.
ticks() { [[ -n $1 ]] && awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" || echo 0; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Committed transactions in the benchmark database (PostgreSQL's statistics,
# flushed when a backend exits): claims plus group-committed marks.
commits() {
    local name=${1##*/}
    psql -Atq "$PG/postgres" -c "SELECT COALESCE(SUM(xact_commit), 0) FROM pg_stat_database WHERE datname = '${name%%\?*}'"
}

declare -A rates cpu_busy ours amb_ms pg_ms sink_ms tx split

# One timed run: K instances on URL, started together; time from the first
# instance's start to the moment the last one saw nothing pending or sending.
run() {
    local name=$1 url=$2 k=$3 bench=${4:-$BENCH}
    local before_mesg before_pg before_sink before_busy
    before_mesg=$(received)
    before_pg=$(ticks "$POSTMASTER")
    before_sink=$(ticks "$SINK_PID")
    local before_tx
    before_tx=$(commits "$url")
    read -r b0 t0 < <(busy)
    local pids=()
    for i in $(seq "$k"); do
        /usr/bin/time -f '%U %S' -o "$WORK/cpu.$i" \
            "$bench" --database "$url" "${common[@]}" --phase work >"$WORK/out.$i" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    read -r b1 t1 < <(busy)
    sleep 0.3 # the sink's counters and the postmaster's reaping of backends
    local got=$(($(received) - before_mesg))
    local pg=$(($(ticks "$POSTMASTER") - before_pg))
    local sk=$(($(ticks "$SINK_PID") - before_sink))
    local txs=$(($(commits "$url") - before_tx))
    local first last amb
    first=$(cat "$WORK"/out.* | awk '{ print $3 }' | sort -n | head -1)
    last=$(cat "$WORK"/out.* | awk '{ print $5 }' | sort -n | tail -1)
    amb=$(cat "$WORK"/cpu.* | awk '{ s += $1 + $2 } END { print s }')
    local check
    check=$("$BENCH" --database "$url" "${common[@]}" --phase check)
    [[ $got -eq $MESSAGES ]] || { echo "smtp-sink received $got messages, expected $MESSAGES" >&2; exit 1; }
    local rate
    rate=$(echo "$MESSAGES * 1000 / ($last - $first)" | bc -l)
    local mine
    mine=$(echo "($amb * 1000 + ($pg + $sk) * 1000 / $TCK) / $MESSAGES * $rate / 1000" | bc -l)
    printf '%-22s %6.0f msg/s  %s  sink got %s  machine busy %.0f%%, ours %.2f cores\n' "$name" "$rate" "$check" "$got" \
        "$(echo "100 * ($b1 - $b0) / ($t1 - $t0)" | bc -l)" "$mine" >&2
    ours[$name]+="$mine "
    [[ $url == "$PGDB"* ]] && tx[$name]+="$(echo "$txs / $MESSAGES" | bc -l) "
    rates[$name]+="$(printf '%.0f' "$rate") "
    cpu_busy[$name]+="$(echo "100 * ($b1 - $b0) / ($t1 - $t0)" | bc -l) "
    amb_ms[$name]+="$(echo "$amb * 1000 / $MESSAGES" | bc -l) "
    pg_ms[$name]+="$(echo "$pg * 1000 / $TCK / $MESSAGES" | bc -l) "
    sink_ms[$name]+="$(echo "$sk * 1000 / $TCK / $MESSAGES" | bc -l) "
    split[$name]="${check##*per instance }"
    rm -f "$WORK"/out.* "$WORK"/cpu.*
    "$BENCH" --database "$url" "${common[@]}" --phase reset
}

names=()
for k in $INSTANCES; do names+=("postgres×$k"); done
for k in $ASYNC; do names+=("postgres×$k, sync off"); done
names+=("sqlite×1")
[[ -n $OLD ]] && names+=("postgres×1, old build" "sqlite×1, old build")
if [[ -n $VARIANT_SQL ]]; then names+=("postgres×1, variant"); fi
for rep in $(seq "$RUNS"); do
    echo "-- repetition $rep" >&2
    for k in $INSTANCES; do run "postgres×$k" "$PGDB" "$k"; done
    for k in $ASYNC; do run "postgres×$k, sync off" "$PGASYNC" "$k"; done
    run "sqlite×1" "$LITE" 1
    if [[ -n $OLD ]]; then
        run "postgres×1, old build" "$PGDB" 1 "$OLD"
        run "sqlite×1, old build" "$LITE" 1 "$OLD"
    fi
    if [[ -n $VARIANT_SQL ]]; then run "postgres×1, variant" "$PGVARIANT" 1; fi
done

med() { printf '%s\n' $1 | median; }
base=$(med "${rates[postgres×${INSTANCES%% *}]}")
echo
echo "| instances | msg/s (median of $RUNS; runs) | vs PostgreSQL ×${INSTANCES%% *} | CPU ms/msg: ambassador / PostgreSQL / smtp-sink | cores used by these | machine busy (2 cores, all processes) | PostgreSQL commits/msg | sent per instance (last run) |"
echo "|---|---|---|---|---|---|---|---|"
for name in "${names[@]}"; do
    m=$(med "${rates[$name]}")
    t="—"
    [[ -n ${tx[$name]:-} ]] && t=$(printf '%.2f' "$(med "${tx[$name]}")")
    printf '| %s | %s (%s) | %.2f | %.2f / %.2f / %.2f | %.2f | %.0f%% | %s | %s |\n' "$name" "$m" "$(echo ${rates[$name]} | sed 's/ / \/ /g')" \
        "$(echo "$m / $base" | bc -l)" "$(med "${amb_ms[$name]}")" "$(med "${pg_ms[$name]}")" "$(med "${sink_ms[$name]}")" \
        "$(med "${ours[$name]}")" "$(med "${cpu_busy[$name]}")" "$t" "${split[$name]}"
done
