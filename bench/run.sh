#!/usr/bin/env bash
# bench/run.sh: everything `make bench` reports, in one command.
#   make bench            full run (5 rounds; about 10-15 minutes)
#   make bench QUICK=1    quick run (3 rounds, short tests; about 3 minutes)
#
# 1. Installs what the benchmarks need from Debian when missing (nginx, haproxy,
#    nghttp2-proxy for nghttpx, nghttp2-client for h2load, wrk, redis-server, ...),
#    with a policy-rc.d in place during the install so that no service starts.
# 2. bench/peers.py: cutover against nginx, HAProxy and nghttpx (bench/peers/).
# 3. bench/cutover.py: cutover latency (HSET + PUBLISH to traffic on the new track).
# 4. bench/snapback.py, when it exists: snap-back latency.
# Then bench/results/latest.md (all sections) and a timestamped copy.
# Never part of `make test`. Everything it starts listens on 127.0.0.1 and is
# stopped by PID by the script that started it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
BIN=$ROOT/build/release/cutover
ORIGIN=$ROOT/build/release/origin
RESULTS=$ROOT/bench/results
QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
export QUICK
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# nghttp2-proxy has nghttpx, nghttp2-client h2load; redis-server is for cutover.py.
PKGS="nginx haproxy nghttp2-proxy nghttp2-client wrk util-linux procps redis-server python3"

install_deps() {
  local missing="" p
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing="$missing $p"
  done
  if [ -z "$missing" ]; then
    echo "bench: all Debian packages present"
    return 0
  fi
  echo "bench: installing$missing (services kept from starting)"
  local policy=/usr/sbin/policy-rc.d saved="" before rc=0
  before=$(pgrep -x 'nginx|haproxy|nghttpx|redis-server' | tr '\n' ' ')
  if [ -e "$policy" ]; then
    saved=$(mktemp)
    $SUDO cp -p "$policy" "$saved"
  fi
  printf '#!/bin/sh\n# written by cutover bench/run.sh for the length of its apt-get install\nexit 101\n' |
    $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  $SUDO apt-get update -q &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing || rc=$?
  if [ -n "$saved" ]; then
    $SUDO cp -p "$saved" "$policy"; rm -f "$saved"
  else
    $SUDO rm -f "$policy"
  fi
  [ $rc = 0 ] || { echo "bench: apt-get install failed ($rc)" >&2; return $rc; }
  # Belt and braces: a daemon that the install started anyway (no policy-rc.d
  # support) is stopped by its pid file, and only if it was not running before.
  local f pid
  for f in /run/nginx.pid /run/haproxy.pid /run/nghttpx.pid /run/redis/redis-server.pid; do
    [ -r "$f" ] || continue
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || continue
    case " $before " in *" $pid "*) continue ;; esac
    echo "bench: the install started $(cat /proc/$pid/comm) (pid $pid, $f): stopping it"
    $SUDO kill "$pid" || true
  done
  # Keep them from starting at the next boot too, for the packages installed here.
  if command -v systemctl >/dev/null 2>&1; then
    for p in $missing; do
      case $p in
        nginx|haproxy|redis-server) $SUDO systemctl disable --quiet "$p" 2>/dev/null &&
          echo "bench: disabled the $p service that the install enabled (systemctl enable $p to undo)" ;;
        nghttp2-proxy) $SUDO systemctl disable --quiet nghttpx 2>/dev/null &&
          echo "bench: disabled the nghttpx service that the install enabled" ;;
      esac
    done
  fi
}

install_deps || exit 1
[ -x "$BIN" ] || { echo "bench: no $BIN (run make)" >&2; exit 1; }
mkdir -p "$RESULTS"

status=0
started=$(date +%s)
stamp=$(date +%Y%m%d-%H%M%S)
mode=full; [ -n "$QUICK" ] && mode=quick
echo "bench: $mode run, $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# 1. peers
peers_args=(--cutover "$BIN" --out "$RESULTS/peers.md")
[ -n "$QUICK" ] && peers_args+=(--quick)
$PY bench/peers.py "${peers_args[@]}" || { echo "bench: peers.py failed ($?)" >&2; status=1; }

# 2. cutover latency
# the quick run's 25 flips must not overwrite the full run's table
if [ -n "$QUICK" ]; then cut_md=$RESULTS/cutover-latency-quick.md; else cut_md=$RESULTS/cutover-latency.md; fi
cut_args=(--cutover "$BIN" --origin "$ORIGIN" --out "$cut_md")
[ -n "$QUICK" ] && cut_args+=(--flips 25)
$PY bench/cutover.py "${cut_args[@]}" || { echo "bench: cutover.py failed ($?)" >&2; status=1; }

# 3. snap-back, when it exists (bench/snapback.py is written separately: its
#    options are probed)
snap_md=
if [ -f bench/snapback.py ]; then
  help=$($PY bench/snapback.py --help 2>&1 || true)
  snap_args=()
  grep -q -- '--cutover' <<<"$help" && snap_args+=(--cutover "$BIN")
  grep -q -- '--origin' <<<"$help" && snap_args+=(--origin "$ORIGIN")
  # QUICK=1 is in its environment (it shortens its healthy runs); for the quick
  # run's time budget, one canary weight (10 %) and two faults (5xx, slow) instead
  # of 3 x 3; the full run does them all.
  if [ -n "$QUICK" ] && grep -q -- '--weights' <<<"$help"; then
    snap_args+=(--weights 10)
    grep -q -- '--faults' <<<"$help" && snap_args+=(--faults 5xx,slow)
  fi
  if grep -q -- '--out' <<<"$help"; then
    # the quick subset must not overwrite the full run's table
    if [ -n "$QUICK" ]; then snap_md=$RESULTS/snapback-quick.md; else snap_md=$RESULTS/snapback.md; fi
    snap_args+=(--out "$snap_md")
    $PY bench/snapback.py "${snap_args[@]}" || { echo "bench: snapback.py failed" >&2; status=1; }
  else
    snap_md=$(mktemp)
    $PY bench/snapback.py "${snap_args[@]}" | tee "$snap_md" ||
      { echo "bench: snapback.py failed" >&2; status=1; }
  fi
fi

# 4. one report
secs=$(( $(date +%s) - started ))
latest=$RESULTS/latest.md
{
  echo "# cutover benchmarks ($mode run)"
  echo
  echo "\`make bench$([ -n "$QUICK" ] && echo " QUICK=1")\`, $(date '+%Y-%m-%d %H:%M'), $secs s;" \
       "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
       "cutover $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')."
  for f in "$RESULTS/peers.md" "$cut_md" ${snap_md:+"$snap_md"}; do
    [ -s "$f" ] || continue
    echo
    sed 's/^#/##/' "$f"
  done
  [ $status = 0 ] || { echo; echo "**Some parts failed: see the run's output.**"; }
} > "$latest"
cp "$latest" "$RESULTS/$stamp-$mode.md"
case $snap_md in /tmp/*) rm -f "$snap_md" ;; esac
echo "bench: $secs s; report in bench/results/latest.md and bench/results/$stamp-$mode.md"
exit $status
