#!/usr/bin/env bash
# Delivery benchmark: ambassador's outbox (plan, claim, render, send, mark)
# against Postfix's smtp-source, both into one smtp-sink on loopback, in the
# same run. Prints medians of 3 and the ratio; see docs/benchmarks.md.
#
#   benches/delivery.sh [PORT] [MESSAGES] [CONCURRENCY]
#
# Needs the Debian package postfix (only smtp-sink and smtp-source run; the
# postfix service stays stopped) and GNU time (/usr/bin/time).
set -euo pipefail

PORT=${1:-2525}
MESSAGES=${2:-20000}
CONCURRENCY=${3:-16}
RUNS=3
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/release/examples/bench_delivery"

cargo build --release --example bench_delivery >&2

"$SINK" -u postfix "127.0.0.1:$PORT" 1024 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true' EXIT
sleep 0.5

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

SIZE=$("$BENCH" --port "$PORT" --size)
echo "message size: $SIZE bytes (smtp-source -l $SIZE)" >&2

source_rates=()
for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    "$SOURCE" -d -s "$CONCURRENCY" -m "$MESSAGES" -l "$SIZE" "127.0.0.1:$PORT"
    end=$(date +%s.%N)
    source_rates+=("$(echo "$MESSAGES / ($end - $start)" | bc -l)")
done

ours=()
rss=()
for _ in $(seq "$RUNS"); do
    out=$(/usr/bin/time -v "$BENCH" --port "$PORT" --messages "$MESSAGES" --concurrency "$CONCURRENCY" 2>&1)
    echo "$out" | grep '^ambassador:' >&2
    ours+=("$(echo "$out" | sed -n 's/.*total [0-9.]*s, \([0-9]*\) msg\/s.*/\1/p')")
    rss+=("$(echo "$out" | sed -n 's/.*Maximum resident set size (kbytes): //p')")
done

# The transport alone, without the outbox: ambassador's mailer (TCP_NODELAY)
# and lettre's own pool as released (Nagle on; ~40 ms a message, so fewer).
"$BENCH" --port "$PORT" --transport mailer --messages "$MESSAGES" --concurrency "$CONCURRENCY"
"$BENCH" --port "$PORT" --transport lettre --messages 2000 --concurrency "$CONCURRENCY"

src=$(printf '%s\n' "${source_rates[@]}" | median)
amb=$(printf '%s\n' "${ours[@]}" | median)
peak=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
echo
echo "| what | msg/s (median of $RUNS) |"
echo "|---|---|"
printf '| smtp-source -s %s -m %s -l %s | %.0f (runs: %s) |\n' "$CONCURRENCY" "$MESSAGES" "$SIZE" "$src" \
    "$(printf '%.0f ' "${source_rates[@]}")"
printf '| ambassador, plan to marked, c=%s | %s (runs: %s) |\n' "$CONCURRENCY" "$amb" "${ours[*]}"
printf '| ratio | %.2f |\n' "$(echo "$amb / $src" | bc -l)"
printf '| ambassador peak RSS | %.1f MB |\n' "$(echo "$peak / 1024" | bc -l)"
