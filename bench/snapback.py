#!/usr/bin/python3
"""Snap-back: how fast does the guard take a failing canary out, here and
across the fleet, and how many users see it? (`make bench-snapback`)

Setup per run, all on 127.0.0.1 and free ports: one redis-server (shared, a
fresh key prefix per run), two origins (tests/origin: blue = stable, canary)
answering in 10 ms, and two ./cutover instances on the same Redis:
  p1  carries the load; its guard trips and writes through;
  p2  carries no load; it follows through Redis (its log line is the
      "seen by a second instance" time).
The guard runs with GUARD.md's defaults (10 s / 50 requests warm-up, h =
13.8, F after 5 failures, ...); only `shield` changes between runs.

A load process keeps CONNS keep-alive HTTP/1.1 connections busy, one request
in flight each, paced to RATE requests/s in total (default 1000), and records
per request: wall-clock send and receive times, status (0 = connection
error) and X-Origin.

Runs: canary weight 5, 10, 25 (%) x fault x shield on/off. After PRE seconds
of steady load (past the guard's warm-up), the fault starts at t0:
  5xx      GET /__mode?status=500 on the canary origin: it answers 500;
  3x slow  GET /__mode?delay_ms=30 (3x its 10 ms): L1 / L2 territory;
  refused  the canary origin is killed by PID: resets, then refused connects.
Measured from t0 (wall clock; the proxy logs in ms):
  local     p1's "guard tripped ... snapped back in-process" line;
  fleet     p2's "guard of route web tripped by p1 (read from Redis ...)" line;
  errors    client requests answered 5xx or failed at the connection, from t0 on.
Then healthy canaries: both origins answer 1% of requests with 500 (same
rate), for HEALTHY_S seconds per weight; false trips are counted (must be 0).

Bounded: every run has a hard time limit, the load process a deadline,
every child is killed by PID. QUICK=1 shortens the healthy runs to 10 s per
weight. The Markdown table is printed and written to bench/results/snapback.md.
"""

import argparse
import array
import contextlib
import datetime
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import LOOPBACK, free_port, kill, start_origin, start_redis, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORIGINS = {"blue": 0, "canary": 1}
BASE_DELAY_MS = 10

# ---------------------------------------------------------------------------
# the load process (run as: snapback.py --load PORT CONNS RATE SECONDS OUTFILE)


def load_main(port, conns, rate, seconds, outfile):
    """Keeps <conns> keep-alive connections busy, one request in flight each,
    paced to <rate> requests/s in total, until SIGTERM or <seconds>. Writes
    four int64 arrays (send ns, recv ns, status, origin) to <outfile>; wall
    clock (time.time_ns) so the times compare with the proxies' logs."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    req = b"GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n"
    interval = int(conns * 1e9 / rate)  # per connection, ns
    sends, recvs, stats, origs = (array.array("q") for _ in range(4))
    poller = select.epoll()
    conn = {}  # fd -> dict(sock, buf, sent, due)

    def record(t_send, status, origin):
        sends.append(t_send)
        recvs.append(time.time_ns())
        stats.append(status)
        origs.append(origin)

    def open_conn(due):
        try:
            s = socket.create_connection((LOOPBACK, port), timeout=2)
        except OSError:
            return None
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
        conn[s.fileno()] = {"sock": s, "buf": b"", "sent": None, "due": due}
        return s

    def close_conn(fd):
        c = conn.pop(fd)
        with contextlib.suppress(OSError):
            poller.unregister(fd)
        c["sock"].close()
        return c

    t_start = time.monotonic_ns()
    for i in range(conns):
        open_conn(t_start + (interval * i) // conns)
    deadline = time.monotonic() + seconds
    print("ready", flush=True)
    reopen = []  # due times of connections to open again
    while not stop and time.monotonic() < deadline:
        now = time.monotonic_ns()
        wait = 0.2
        for due in list(reopen):
            if due <= now:
                reopen.remove(due)
                if open_conn(now) is None:
                    record(time.time_ns(), 0, -1)
                    reopen.append(now + interval)
        for fd, c in list(conn.items()):
            if c["due"] is None:
                continue
            if c["due"] <= now:
                c["due"] = None
                c["sent"] = (time.time_ns(), now)
                try:
                    c["sock"].send(req)
                except OSError:
                    record(c["sent"][0], 0, -1)
                    close_conn(fd)
                    reopen.append(now + interval)
            else:
                wait = min(wait, (c["due"] - now) / 1e9)
        for fd, _ev in poller.poll(wait if wait >= 0.002 else 0):
            c = conn.get(fd)
            if c is None:
                continue
            try:
                data = c["sock"].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            now = time.monotonic_ns()
            if not data:
                if c["sent"] is not None:
                    record(c["sent"][0], 0, -1)  # the request in flight failed
                close_conn(fd)
                reopen.append(now + interval)
                continue
            buf = c["buf"] + data
            closing = False
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                clen = int(m.group(1)) if m else 0
                if len(buf) < end + 4 + clen:
                    break
                status = int(head.split(" ", 2)[1])
                m = re.search(r"(?im)^x-origin:\s*(\S+)", head)
                record(c["sent"][0], status, ORIGINS.get(m.group(1), -1) if m else -1)
                closing = re.search(r"(?im)^connection:\s*close", head) is not None
                buf = buf[end + 4 + clen:]
                c["due"] = max(now, c["sent"][1] + interval)
                c["sent"] = None
            c["buf"] = buf
            if closing:
                close_conn(fd)
                reopen.append(now)
    with open(outfile, "wb") as f:
        f.write(array.array("q", [len(sends)]).tobytes())
        for a in (sends, recvs, stats, origs):
            a.tofile(f)
    for fd in list(conn):
        close_conn(fd)


def read_records(path):
    with open(path, "rb") as f:
        hdr = array.array("q")
        hdr.fromfile(f, 1)
        n = hdr[0]
        out = []
        for _ in range(4):
            a = array.array("q")
            a.fromfile(f, n)
            out.append(a)
    return list(zip(*out))  # (send ns, recv ns, status, origin)


# ---------------------------------------------------------------------------
# origins' fault modes (the processes, all stopped by PID: bench/procs.py)


def origin_mode(port, query):
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        s.sendall(f"GET /__mode?{query} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while b"\r\n\r\n" not in data:
            ch = s.recv(4096)
            if not ch:
                break
            data += ch
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"origin {port} /__mode?{query}: {data[:80]!r}")


def write_conf(path, port, blue, canary, redis_port, prefix, instance, weight, shield, workers):
    path.write_text(f"""
workers = {workers};
listen = ( {{ address = "{LOOPBACK}:{port}"; }} );
redis = {{ address = "{LOOPBACK}:{redis_port}"; prefix = "{prefix}"; poll_ms = 1000;
          instance = "{instance}"; }};
timeouts = {{ connect_ms = 1000; header_ms = 10000; idle_ms = 60000; upstream_ms = 10000;
             drain_ms = 1000; }};
routes = ( {{ name = "web"; match = {{ host = "*"; path_prefix = "/"; }};
  tracks = ( {{ name = "blue";   weight = {100 - weight}; servers = ( "{LOOPBACK}:{blue}" ); }},
             {{ name = "canary"; weight = {weight}; servers = ( "{LOOPBACK}:{canary}" ); }} );
  guard = {{ baseline = "blue"; candidate = "canary"; shield = {"true" if shield else "false"}; }};
}} );
""")


def log_time(line):
    """Wall-clock seconds of a log line ("2026-11-27T16:27:07.463Z [warn] ...")."""
    ts = line.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def find_line(path, pattern):
    with contextlib.suppress(OSError):
        for ln in path.read_text(errors="replace").splitlines():
            if re.search(pattern, ln):
                return ln
    return None


TRIP_RE = r"\[warn\] guard tripped route=web test=(\S+): .* snapped back in-process in (\d+) us"
FOLLOW_RE = r"\[warn\] guard of route web tripped by p1 "


# ---------------------------------------------------------------------------
# one run


def run(args, tmp, redis_port, idx, weight, fault, shield, healthy_s=0):
    """One fresh setup; returns a dict of measurements."""
    procs, proxies = [], []
    tag = f"r{idx}"
    try:
        bp, blue = start_origin(args.origin, "blue", procs)
        cp, canary = start_origin(args.origin, "canary", procs)
        for o in (blue, canary):
            origin_mode(o, f"delay_ms={BASE_DELAY_MS}" +
                        ("&error_rate=0.01" if fault == "healthy" else ""))
        logs = []
        for inst in ("p1", "p2"):
            port = free_port()
            conf = tmp / f"{tag}-{inst}.conf"
            log = tmp / f"{tag}-{inst}.log"
            write_conf(conf, port, blue, canary, redis_port, f"snap{idx}", inst, weight, shield,
                       args.workers)
            with open(log, "wb") as lf:
                p = subprocess.Popen([args.cutover, "-c", str(conf)], stdout=lf, stderr=lf,
                                     stdin=subprocess.DEVNULL)
            procs.append(p)
            proxies.append((p, port))
            logs.append(log)
            wait_port(port, p)
        outfile = tmp / f"{tag}-load.bin"
        total = (healthy_s + 2) if fault == "healthy" else (args.pre + args.window + 2)
        load = subprocess.Popen([sys.executable, __file__, "--load", str(proxies[0][1]),
                                 str(args.conns), str(args.rate), str(total), str(outfile)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(load)
        if not load.stdout.readline().startswith(b"ready"):
            raise RuntimeError("load process did not start")
        t0 = None
        if fault == "healthy":
            time.sleep(healthy_s)
        else:
            time.sleep(args.pre)
            t0 = time.time()
            if fault == "5xx":
                origin_mode(canary, "status=500")
            elif fault == "slow":
                origin_mode(canary, f"delay_ms={3 * BASE_DELAY_MS}")
            elif fault == "refused":
                os.kill(cp.pid, signal.SIGKILL)  # by PID: resets, then refused connects
                cp.wait(5)
            deadline = time.monotonic() + args.window
            while time.monotonic() < deadline:
                if find_line(logs[0], TRIP_RE) and find_line(logs[1], FOLLOW_RE):
                    break
                time.sleep(0.05)
            time.sleep(1.0)  # the tail: what clients see after the snap-back
        load.send_signal(signal.SIGTERM)
        load.wait(30)
    finally:
        for p in reversed(procs):
            kill(p)
    recs = read_records(outfile)
    trip = find_line(logs[0], TRIP_RE)
    follow = find_line(logs[1], FOLLOW_RE)
    out = {"weight": weight, "fault": fault, "shield": shield, "requests": len(recs),
           "trips": len(re.findall(r"\[warn\] guard tripped route=web",
                                   logs[0].read_text(errors="replace")))}
    dur = (recs[-1][1] - recs[0][0]) / 1e9 if len(recs) > 1 else 1
    out["rate"] = len(recs) / dur if dur > 0 else 0
    out["canary_req"] = sum(1 for r in recs if r[3] == 1)
    bad = [r for r in recs if r[2] == 0 or r[2] >= 500]
    out["errors_total"] = len(bad)
    if t0 is not None:
        t0ns = int(t0 * 1e9)
        out["errors"] = sum(1 for r in bad if r[1] >= t0ns)
        out["errors_before"] = sum(1 for r in bad if r[1] < t0ns)
        out["after"] = sum(1 for r in recs if r[1] >= t0ns)
        m = re.search(TRIP_RE, trip) if trip else None
        out["test"] = m.group(1) if m else "-"
        out["swap_us"] = int(m.group(2)) if m else None
        out["local_ms"] = (log_time(trip) - t0) * 1000 if trip else None
        out["fleet_ms"] = (log_time(follow) - t0) * 1000 if follow else None
    return out


def fmt_ms(v):
    return "not tripped" if v is None else f"{max(v, 0):.0f} ms"


FAULT_NAMES = {"5xx": "all 5xx", "slow": "3x slower", "refused": "connections refused"}


def tables(results, healthy):
    lines = [
        "| canary | fault | shield | test | fault → local snap-back | fault → 2nd instance "
        "| in-process swap | client errors after fault | requests after fault |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['weight']}% | {FAULT_NAMES[r['fault']]} | {'on' if r['shield'] else 'off'} "
            f"| {r['test']} | {fmt_ms(r['local_ms'])} | {fmt_ms(r['fleet_ms'])} "
            f"| {'-' if r['swap_us'] is None else str(r['swap_us']) + ' µs'} "
            f"| {r['errors']} | {r['after']} |")
    hl = ["| canary | duration | requests | on the canary | 5xx seen by clients | false trips |",
          "| --- | --- | --- | --- | --- | --- |"]
    for r in healthy:
        hl.append(f"| {r['weight']}% | {r['duration']} s | {r['requests']} | {r['canary_req']} "
                  f"| {r['errors_total']} | {r['trips']} |")
    return "\n".join(lines), "\n".join(hl)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
                  sys.argv[6])
        return 0
    quick = os.environ.get("QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cutover", default=str(ROOT / "build/release/cutover"))
    ap.add_argument("--origin", default=str(ROOT / "build/release/origin"))
    ap.add_argument("--rate", type=float, default=1000, help="total requests/s (bounded)")
    ap.add_argument("--conns", type=int, default=32, help="keep-alive load connections")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--weights", default="5,10,25", help="canary weights, %%")
    ap.add_argument("--faults", default="5xx,slow,refused")
    ap.add_argument("--pre", type=float, default=11.0,
                    help="seconds of load before the fault (past the guard's 10 s warm-up)")
    ap.add_argument("--window", type=float, default=8.0, help="seconds to wait for the trips")
    ap.add_argument("--healthy-s", type=float, default=10.0 if quick else 60.0,
                    help="seconds of healthy load per weight")
    ap.add_argument("--out", default=str(ROOT / "bench/results/snapback.md"))
    args = ap.parse_args()
    args.rate = max(50.0, min(args.rate, 5000.0))
    args.pre = max(1.0, min(args.pre, 60.0))
    args.window = max(1.0, min(args.window, 30.0))
    args.healthy_s = max(1.0, min(args.healthy_s, 600.0))
    weights = [int(w) for w in args.weights.split(",") if w]
    faults = [f for f in args.faults.split(",") if f in FAULT_NAMES]
    procs, results, healthy = [], [], []
    idx = 0
    with tempfile.TemporaryDirectory(prefix="cutover-snapback-") as d:
        tmp = Path(d)
        try:
            redis_port = start_redis(tmp, procs)
            for w in weights:
                for f in faults:
                    for shield in (True, False):
                        idx += 1
                        r = run(args, tmp, redis_port, idx, w, f, shield)
                        results.append(r)
                        print(f"{w}% {f} shield={'on' if shield else 'off'}: test={r['test']} "
                              f"local={fmt_ms(r['local_ms'])} fleet={fmt_ms(r['fleet_ms'])} "
                              f"errors={r['errors']}/{r['after']} "
                              f"(before the fault: {r['errors_before']}) "
                              f"rate={r['rate']:.0f}/s", flush=True)
            for w in weights:
                idx += 1
                r = run(args, tmp, redis_port, idx, w, "healthy", True, args.healthy_s)
                r["duration"] = int(args.healthy_s)
                healthy.append(r)
                print(f"{w}% healthy {args.healthy_s:.0f} s: {r['requests']} requests, "
                      f"{r['canary_req']} on the canary, {r['errors_total']} 5xx, "
                      f"false trips {r['trips']}", flush=True)
        finally:
            for p in reversed(procs):
                kill(p)
    t1, t2 = tables(results, healthy)
    cpu = "?"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else "?"
    rates = [r["rate"] for r in results + healthy]
    text = f"""# Snap-back

`make bench-snapback` (bench/snapback.py{', QUICK=1' if quick else ''}), {time.strftime('%Y-%m-%d')},
{os.cpu_count()} CPUs ({cpu}); redis-server, two origins (10 ms per response), two ./cutover
instances (workers = {args.workers}) and the load generator on one machine, loopback. Load on
the first instance: {args.conns} keep-alive HTTP/1.1 connections paced to {args.rate:.0f}
requests/s in total (measured {min(rates):.0f}-{max(rates):.0f}/s), GET only. Guard: GUARD.md's
defaults; the fault starts after {args.pre:.0f} s of load (past the 10 s warm-up).

Times are from fault onset (the `/__mode` request, or the kill of the canary origin) to the
first instance's "guard tripped ... snapped back in-process" log line (local) and to the
second instance's "tripped by p1 (read from Redis)" line (fleet: trip, write-through,
PUBLISH, re-read); log lines carry milliseconds. In-process swap is the proxy's own figure
from the trip to the snapshot swap. Client errors: responses with status >= 500 or failed
connections received after the fault onset (0 before it in every run unless noted).

{t1}

Healthy canary: both origins answer 1% of requests with 500 (same error rate as stable),
10 ms each, shield on; no fault.

{t2}
"""
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    before = [r for r in results if r["errors_before"]]
    for r in before:
        print(f"note: {r['weight']}% {r['fault']}: {r['errors_before']} errors before the fault",
              file=sys.stderr)
    return 1 if any(r["trips"] for r in healthy) else 0


if __name__ == "__main__":
    sys.exit(main())
