#!/usr/bin/env bash
# Resident memory of `serve` while a large roster is uploaded over HTTP.
#
#   benches/upload_rss.sh [MB]        (default: a 50 MB roster)
#
# Starts `serve` on a fresh SQLite database, then POSTs the file to
# /api/roster three times: a dry run, the same dry run again, and the real
# import. For each: the peak resident set during the request (VmHWM, reset
# before each request through /proc/PID/clear_refs), the resident set right
# after it, and the size of the JSON answer. PROFILE=debug measures a debug
# build instead of release (slower; the script sets http.request_timeout to
# 10 minutes so a slow import is still measured, not answered 408). Needs: curl.
set -euo pipefail

MB=${1:-50}
PROFILE=${PROFILE:-release}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-bench-out}/upload_rss
rm -rf "$OUT" && mkdir -p "$OUT"
command -v curl >/dev/null || { echo "error: curl is missing; apt-get install -y curl" >&2; exit 1; }

if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --bin ambassador --example gen_roster
else
    cargo build --quiet --bin ambassador --example gen_roster
fi
BIN="$TARGET/$PROFILE/ambassador"
CSV="$OUT/roster.csv"
# gen_roster writes about 150 bytes a row; make enough rows, then cut to MB.
"$TARGET/$PROFILE/examples/gen_roster" $((MB * 1000000 / 120)) "$OUT/full.csv"
head -c $((MB * 1000000)) "$OUT/full.csv" | sed '$d' >"$CSV"
rm "$OUT/full.csv"

cat >"$OUT/ambassador.toml" <<EOF
[database]
url = "sqlite://$OUT/bench.db"
[smtp]
outbox_dir = "$OUT/outbox"
[http]
bind = "127.0.0.1:0"
request_timeout = "10m"
[security]
token_key_file = "$OUT/token.key"
admin_token = "bench-token"
EOF
"$BIN" --config "$OUT/ambassador.toml" serve 2>"$OUT/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do
    ADDR=$(grep -o '"message":"HTTP listening","address":"[^"]*"' "$OUT/serve.log" | sed 's/.*"address":"//; s/"$//' || true)
    [ -n "$ADDR" ] && break
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "error: serve did not start:" >&2; cat "$OUT/serve.log" >&2; exit 1; }

kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }
mb() { echo $(( $1 / 1024 )); }

# upload LABEL QUERY: one POST, then its figures as one table row.
upload() {
    echo 5 >"/proc/$PID/clear_refs"   # VmHWM := VmRSS
    local before; before=$(kb VmRSS)
    local code; code=$(curl -sS -o "$OUT/$1.json" -w '%{http_code}' \
        -H 'Authorization: Bearer bench-token' -H 'Content-Type: text/csv' \
        --data-binary @"$CSV" "http://$ADDR/api/roster?$2")
    local peak; peak=$(kb VmHWM)
    local after; after=$(kb VmRSS)
    printf '| %-10s | %6s | %6s | %9s | %10s | %11s |\n' "$1" "$code" "$(mb "$before")" "$(mb "$peak")" \
        "$(mb "$after")" "$(stat -c %s "$OUT/$1.json")"
}

printf '\n%s: %s bytes, %s rows, %s build\n\n' "$CSV" "$(stat -c %s "$CSV")" "$(($(wc -l <"$CSV") - 1))" "$PROFILE"
printf '| %-10s | %6s | %6s | %9s | %10s | %11s |\n' "request" "status" "before" "peak (MB)" "after (MB)" "answer (B)"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------ -------- -------- ----------- ------------ -------------
upload dry-run "dry_run=true"
upload dry-run-2 "dry_run=true"
upload import "dry_run=false"
grep -o '"counts":{[^}]*}' "$OUT/import.json" || head -c 300 "$OUT/import.json"
echo
