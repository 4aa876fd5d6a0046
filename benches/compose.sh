#!/usr/bin/env bash
# Composition benchmark: the same messages composed with the reuse of what a
# step's message says to everyone and rendered whole, turn about in one run
# (examples/bench_compose.rs), without and with DKIM signing. Prints
# microseconds per message and the ratio; see docs/benchmarks.md.
#
#   benches/compose.sh [MESSAGES] [ROUNDS]      (defaults: 5000 messages, 5 rounds)
set -euo pipefail

MESSAGES=${1:-5000}
ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/release/examples/bench_compose"

cargo build --release --quiet --example bench_compose
for template in news_item reminder; do
    "$BENCH" --messages "$MESSAGES" --rounds "$ROUNDS" --template "$template"
    echo
done
"$BENCH" --messages "$((MESSAGES / 5))" --rounds "$ROUNDS" --template news_item --dkim
