#!/bin/sh
# `make demo`: three demo origins (blue :9001, green :9002, canary :9003),
# ./cutover on conf/cutover.conf, then traffic over HTTP/1.1, h2c and h2 over
# TLS, and a count per track. Everything started here is stopped by PID on exit.
#
# Run from the repository root, after `make` (make demo does both).
set -u

cd "$(dirname "$0")/.." || exit 1
ORIGIN=build/release/origin
CUTOVER=./cutover
CONF=${CONF:-conf/cutover.conf}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cutover-demo.XXXXXX")
PIDS=""

cleanup() {
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "demo: $*" >&2
    exit 1
}

for f in "$ORIGIN" "$CUTOVER" "$CONF"; do
    [ -e "$f" ] || die "$f is missing (run make first)"
done
command -v curl >/dev/null 2>&1 || die "curl is not installed (make deps)"

# The proxy's plain and TLS ports, from the listen block of the config: one
# "PORT plain|tls" line per listen entry (a "tls" after an address, before the
# next one, makes that entry a TLS one).
listen_ports() {
    awk '
        /^[[:space:]]*listen[[:space:]]*=/ { inb = 1 }
        inb {
            line = $0
            sub(/#.*/, "", line)
            while (match(line, /address[[:space:]]*=[[:space:]]*"[^"]*:[0-9]+"/)) {
                if (port != "") print port, kind
                a = substr(line, RSTART, RLENGTH)
                line = substr(line, RSTART + RLENGTH)
                sub(/"$/, "", a)
                sub(/.*:/, "", a)
                port = a
                kind = "plain"
            }
            if (port != "" && line ~ /tls/) kind = "tls"
            if ($0 ~ /^[[:space:]]*\);/) { if (port != "") print port, kind; exit }
        }' "$CONF"
}
PLAIN_PORT=${PLAIN_PORT:-$(listen_ports | awk '$2 == "plain" { print $1; exit }')}
TLS_PORT=${TLS_PORT:-$(listen_ports | awk '$2 == "tls" { print $1; exit }')}
PLAIN_PORT=${PLAIN_PORT:-8080}
ADMIN_PORT=$(sed -n 's/^[[:space:]]*admin[[:space:]]*=.*address[[:space:]]*=[[:space:]]*"[^"]*:\([0-9]*\)".*/\1/p' "$CONF" | head -n 1)

port_in_use() {
    # dash has no /dev/tcp; curl tells us whether anything answers
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null
    rc=$?
    # 7: connection refused (free). Anything else: something is there.
    [ $rc -ne 7 ]
}

busy=""
for p in 9001 9002 9003 $PLAIN_PORT $TLS_PORT $ADMIN_PORT; do
    port_in_use "$p" && busy="$busy $p"
done
[ -z "$busy" ] || die "port(s)$busy already in use on 127.0.0.1; stop whatever listens there and retry"

start_origin() { # name port
    "$ORIGIN" -p "$2" -n "$1" >"$WORK/$1.out" 2>"$WORK/$1.err" &
    PIDS="$PIDS $!"
    i=0
    until grep -q '^ready' "$WORK/$1.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || die "origin $1 did not start on :$2: $(cat "$WORK/$1.err")"
        sleep 0.05
    done
    echo "origin $1 on 127.0.0.1:$2 (pid $!)"
}

start_origin blue 9001
start_origin green 9002
start_origin canary 9003

# Redis, if installed: a private redis-server on a free port, and the demo's
# config gets a redis block pointing at it (the sample keeps it commented out).
REDIS_PORT=""
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    for p in 6390 6391 6392 6393 6394 6395 6396 6397 6398 6399; do
        if ! redis-cli -p "$p" ping >/dev/null 2>&1; then
            REDIS_PORT=$p
            break
        fi
    done
fi
if [ -n "$REDIS_PORT" ]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        >"$WORK/redis.out" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || die "redis-server did not start on :$REDIS_PORT"
        sleep 0.05
    done
    echo "redis-server on 127.0.0.1:$REDIS_PORT (pid $!)"
    sed "s|^# redis = {.*|redis = { address = \"127.0.0.1:$REDIS_PORT\"; prefix = \"cutover\"; poll_ms = 1000; };|" \
        "$CONF" >"$WORK/demo.conf"
    CONF=$WORK/demo.conf
else
    echo "redis-server not installed: the demo runs without live weights (make deps installs it)"
fi
rcli() {
    redis-cli -p "$REDIS_PORT" "$@" >/dev/null
}

"$CUTOVER" -c "$CONF" >"$WORK/cutover.out" 2>"$WORK/cutover.err" &
CUT_PID=$!
PIDS="$PIDS $CUT_PID"
i=0
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PLAIN_PORT/"; do
    i=$((i + 1))
    if [ $i -ge 100 ] || ! kill -0 $CUT_PID 2>/dev/null; then
        cat "$WORK/cutover.err" >&2
        die "cutover did not start on :$PLAIN_PORT"
    fi
    sleep 0.05
done
echo "cutover on :$PLAIN_PORT${TLS_PORT:+ and TLS :$TLS_PORT} (pid $CUT_PID), config $CONF"
echo

urls() { # base count
    n=1
    while [ $n -le "$2" ]; do
        printf '%s/demo?n=%d\n' "$1" "$n"
        n=$((n + 1))
    done
}

# Each response body is the name of the origin that served it.
count() { # title, file
    total=$(grep -c . "$2")
    printf '%s (%d requests):\n' "$1" "$total"
    for t in blue green canary; do
        n=$(grep -cx "$t" "$2")
        printf '  %-7s %4d  %3d%%\n' "$t" "$n" $((total ? n * 100 / total : 0))
    done
    other=$(grep -cvx 'blue\|green\|canary' "$2")
    [ "$other" -eq 0 ] || printf '  %-7s %4d  (errors)\n' other "$other"
}

# One curl for all the URLs: every request on one reused connection.
tally() { # title, then curl arguments
    title=$1
    shift
    if ! curl -sS "$@" >"$WORK/tally.txt" 2>"$WORK/curl.err"; then
        echo "$title: curl failed: $(cat "$WORK/curl.err")"
        return 1
    fi
    count "$title" "$WORK/tally.txt"
}

# One curl per request: curl 7.88 (Debian 12) cannot reuse an h2c
# prior-knowledge connection (curl issue #10634, fixed in 8.0).
tally_each() { # title, base, count, then curl arguments
    title=$1 base=$2 n=$3
    shift 3
    : >"$WORK/tally.txt"
    i=1
    while [ $i -le "$n" ]; do
        if ! curl -sS "$@" "$base/demo?n=$i" >>"$WORK/tally.txt" 2>"$WORK/curl.err"; then
            echo "$title: curl failed: $(cat "$WORK/curl.err")"
            return 1
        fi
        i=$((i + 1))
    done
    count "$title" "$WORK/tally.txt"
}

status=0
tally "HTTP/1.1" --http1.1 $(urls "http://127.0.0.1:$PLAIN_PORT" 200) || status=1
tally_each "h2c (prior knowledge)" "http://127.0.0.1:$PLAIN_PORT" 100 \
    --http2-prior-knowledge || status=1
if [ -n "${TLS_PORT:-}" ]; then
    tally "h2 over TLS (ALPN)" -k --http2 $(urls "https://127.0.0.1:$TLS_PORT" 100) || status=1
else
    echo "no TLS listener in $CONF: skipping h2 over TLS"
fi

if [ -n "$REDIS_PORT" ]; then
    echo
    echo "Live weights: redis-cli HSET cutover:route:web:weights blue 50 canary 50"
    echo "              redis-cli PUBLISH cutover:events web"
    rcli HSET cutover:route:web:weights blue 50 canary 50
    rcli PUBLISH cutover:events web
    sleep 0.2
    tally "HTTP/1.1 after the change" --http1.1 $(urls "http://127.0.0.1:$PLAIN_PORT" 200) || status=1

    echo
    echo "The canary breaks (its origin now answers 500 to everything):"
    curl -s -o /dev/null "http://127.0.0.1:9003/__mode?status=500"
    tally "HTTP/1.1 GETs while it fails (the retry shield sends them to blue)" --http1.1 \
        $(urls "http://127.0.0.1:$PLAIN_PORT" 200) || status=1
    sleep 0.2
    echo "Redis after the guard tripped (the whole fleet follows):"
    printf '  weights: %s\n' "$(redis-cli -p "$REDIS_PORT" HGETALL cutover:route:web:weights | paste -sd' ')"
    printf '  guard:   %s\n' "$(redis-cli -p "$REDIS_PORT" HGET cutover:route:web:guard state)"
    printf '  reason:  %.160s\n' "$(redis-cli -p "$REDIS_PORT" HGET cutover:route:web:guard reason)"
    tally "HTTP/1.1 after the snap-back" --http1.1 $(urls "http://127.0.0.1:$PLAIN_PORT" 100) || status=1
    curl -s -o /dev/null "http://127.0.0.1:9003/__mode?reset=1"
    if [ -n "$ADMIN_PORT" ]; then
        echo
        echo "Re-arm once the canary is fixed: ./cutover ctl -a 127.0.0.1:$ADMIN_PORT arm web"
        ./cutover ctl -a "127.0.0.1:$ADMIN_PORT" arm web >/dev/null 2>&1 || status=1
        ./cutover ctl -a "127.0.0.1:$ADMIN_PORT" weights web blue=90 canary=10 >/dev/null 2>&1 || status=1
        sleep 0.2
        tally "HTTP/1.1 after re-arming at 90/10" --http1.1 $(urls "http://127.0.0.1:$PLAIN_PORT" 100) || status=1
    fi
fi

echo
echo "Try it yourself while nothing runs: ./cutover -c conf/cutover.conf, then"
echo "  curl -s http://127.0.0.1:$PLAIN_PORT/                       # HTTP/1.1"
echo "  curl -s --http2-prior-knowledge http://127.0.0.1:$PLAIN_PORT/  # h2c"
[ -z "${TLS_PORT:-}" ] || echo "  curl -sk --http2 https://127.0.0.1:$TLS_PORT/                 # h2 over TLS"
echo "  curl -s -H 'x-cutover-track: canary' http://127.0.0.1:$PLAIN_PORT/   # override, if configured"
exit $status
