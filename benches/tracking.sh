#!/usr/bin/env bash
# Tracking benchmark: the open pixel of `ambassador serve` against nginx's
# `empty_gif`, both hit by wrk with the same Lua script rotating over the
# pixel URLs of real messages, in the same run. Prints requests per second,
# the ratio, and checks that every hit answered 200 is recorded as an event;
# see docs/benchmarks.md.
#
#   benches/tracking.sh [MESSAGES]                 # default 20000
#   BACKENDS="sqlite postgres" RUNS=2 DURATION=10s CONNECTIONS=64 THREADS=2 \
#   PG=postgres://postgres@127.0.0.1:5432 PORT=18080 NGINX_PORT=18081 benches/tracking.sh
#   AMBASSADOR_BIN=path/to/earlier/ambassador benches/tracking.sh   # another build
#
# Per backend: builds the release binary, imports a roster of MESSAGES people
# and a one-step campaign, lets `serve` send them with the file transport,
# collects the pixel URL of every .eml file, then alternates wrk against
# `serve` and against nginx (its own config in a temporary folder, on a
# loopback port), RUNS times each. `serve` starts afresh for each run, so the
# per-message rate limit (20 hits at once) starts afresh too; a run makes
# fewer than that per URL. PostgreSQL gets a fresh database (unique name),
# dropped at the end. Needs wrk, nginx (nginx-light), sqlite3, psql, python3.
set -euo pipefail

MESSAGES=${1:-20000}
BACKENDS=${BACKENDS:-sqlite postgres}
RUNS=${RUNS:-2}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
TARGET=${CARGO_TARGET_DIR:-target}
AMB="$(pwd)/$TARGET/release/ambassador"
[[ $TARGET == /* ]] && AMB="$TARGET/release/ambassador"
# AMBASSADOR_BIN=path: measure that binary instead (an earlier build, for a
# comparison in the same hour); nothing is built then.
AMB=${AMBASSADOR_BIN:-$AMB}
WORK=$(mktemp -d)
PGDB="ambassador_tracking_$(date +%s)_$$"

[[ -n ${AMBASSADOR_BIN:-} ]] || cargo build --release --bin ambassador >&2

SERVE_PID=""
NGINX_PID=""
cleanup() {
    [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null || true
    [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null || true
    if [[ " $BACKENDS " == *" postgres "* ]]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# nginx: one server block answering the same paths with a 43-byte GIF.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /t/o/ { empty_gif; }
    }
}
EOF

# wrk: each thread walks the URL list from its own offset; done() prints the
# requests answered 2xx/3xx, which the events are checked against.
cat >"$WORK/rotate.lua" <<'EOF'
local paths = {}
for line in io.lines(os.getenv("PIXELS")) do paths[#paths + 1] = line end
local threads = 0
function setup(thread)
    thread:set("offset", threads)
    threads = threads + 1
end
local i = 0
function init(args)
    i = (offset or 0) * 7919
end
function request()
    i = i + 1
    return wrk.format("GET", paths[(i % #paths) + 1])
end
function done(summary, latency, requests)
    io.write(string.format("answered %d\n", summary.requests - summary.errors.status))
end
EOF

# A roster of MESSAGES people and a campaign that started in the past.
{
    echo "Email,First Name,Department"
    for i in $(seq "$MESSAGES"); do echo "p$i@hospital.example.org,P$i,Procurement"; done
} >"$WORK/roster.csv"
cat >"$WORK/campaign.toml" <<'EOF'
slug = "rollout"
name = "Rollout"
course_url = "https://train.example.org/c"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-01T00:00:00Z"
due = "3650d"
send_window = "always"
[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
EOF

# The pixel paths (/t/o/TOKEN.gif) of the .eml files in $1, one per line.
pixels() {
    python3 - "$1" <<'EOF'
import email, email.policy, pathlib, re, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.eml")):
    message = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    print(re.search(r"/t/o/[A-Za-z0-9_-]+\.gif", html).group(0))
EOF
}

start_serve() {
    "$AMB" --config "$1" serve 2>>"$WORK/serve.log" &
    SERVE_PID=$!
    for _ in $(seq 300); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "serve did not come up; log:" >&2
    tail -20 "$WORK/serve.log" >&2
    exit 1
}

stop_serve() {
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || { echo "serve exited with an error; log:" >&2; tail -20 "$WORK/serve.log" >&2; exit 1; }
    SERVE_PID=""
}

# One wrk run; prints "REQ_PER_SEC ANSWERED".
hit() {
    local out
    out=$(PIXELS="$WORK/pixels.txt" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$WORK/rotate.lua" "http://127.0.0.1:$1")
    echo "$out" | sed 's/^/    /' >&2
    echo "$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }') $(echo "$out" | awk '/^answered/ { print $2 }')"
}

declare -A results
for backend in $BACKENDS; do
    dir="$WORK/$backend"
    mkdir -p "$dir/outbox"
    case $backend in
        sqlite)
            url="sqlite://$dir/bench.db"
            events() { sqlite3 "$dir/bench.db" "SELECT COUNT(*) FROM events"; }
            ;;
        postgres)
            psql -q "$PG/postgres" -c "CREATE DATABASE $PGDB" >&2
            url="$PG/$PGDB"
            events() { psql -Atq "$PG/$PGDB" -c "SELECT COUNT(*) FROM events"; }
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
    cat >"$dir/ambassador.toml" <<EOF
[database]
url = "$url"
[smtp]
transport = "file"
outbox_dir = "$dir/outbox"
from = "Ambassador <ambassador@hospital.example.org>"
[delivery]
concurrency = 16
max_per_second = 0
plan_every = "1s"
[http]
bind = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
[security]
token_key_file = "$dir/token.key"
[log]
level = "warn"
format = "json"
EOF
    "$AMB" --config "$dir/ambassador.toml" roster import "$WORK/roster.csv" >/dev/null
    "$AMB" --config "$dir/ambassador.toml" campaign apply "$WORK/campaign.toml" >/dev/null
    echo "-- $backend: sending $MESSAGES messages to $dir/outbox" >&2
    start_serve "$dir/ambassador.toml"
    for _ in $(seq 600); do
        [[ $(find "$dir/outbox" -name '*.eml' | wc -l) -ge $MESSAGES ]] && break
        sleep 1
    done
    stop_serve
    pixels "$dir/outbox" >"$WORK/pixels.txt"
    [[ $(wc -l <"$WORK/pixels.txt") -eq $MESSAGES ]] || { echo "expected $MESSAGES pixel URLs" >&2; exit 1; }

    for run in $(seq "$RUNS"); do
        echo "-- $backend, run $run: ambassador serve" >&2
        start_serve "$dir/ambassador.toml"
        before=$(events)
        read -r rate answered < <(hit "$PORT")
        stop_serve
        recorded=$(($(events) - before))
        echo "   answered $answered, recorded $recorded" >&2
        if [[ $recorded -lt $answered ]]; then
            echo "FAILED: $answered hits answered, only $recorded recorded" >&2
            exit 1
        fi
        results[$backend.ours]+="$rate "
        results[$backend.answered]+="$answered "
        results[$backend.recorded]+="$recorded "

        echo "-- $backend, run $run: nginx empty_gif" >&2
        nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
        NGINX_PID=$!
        for _ in $(seq 100); do
            curl -fs "http://127.0.0.1:$NGINX_PORT/t/o/x.gif" >/dev/null 2>&1 && break
            sleep 0.1
        done
        read -r rate _ < <(hit "$NGINX_PORT")
        kill -QUIT "$NGINX_PID"
        wait "$NGINX_PID" || true
        NGINX_PID=""
        results[$backend.nginx]+="$rate "
    done
done

echo
echo "| backend | ambassador pixel, req/s (median; runs) | nginx empty_gif, req/s (median; runs) | ratio | answered 200 / events recorded (per run) |"
echo "|---|---|---|---|---|"
for backend in $BACKENDS; do
    ours=$(printf '%s\n' ${results[$backend.ours]} | median)
    theirs=$(printf '%s\n' ${results[$backend.nginx]} | median)
    printf '| %s | %.0f (%s) | %.0f (%s) | %.2fx | %s |\n' "$backend" "$ours" "$(echo ${results[$backend.ours]} | sed 's/ / \/ /g')" \
        "$theirs" "$(echo ${results[$backend.nginx]} | sed 's/ / \/ /g')" "$(echo "$ours / $theirs" | bc -l)" \
        "$(paste -d/ <(printf '%s\n' ${results[$backend.answered]}) <(printf '%s\n' ${results[$backend.recorded]}) | paste -sd' ')"
done
echo "c=$CONNECTIONS, $THREADS wrk threads, $DURATION per run, $MESSAGES pixel URLs, $(nproc) cores"
