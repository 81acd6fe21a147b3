#!/usr/bin/python3
"""Cutover latency: how long after an operator's HSET + PUBLISH does traffic
follow the new weights? (`make bench-cutover`)

Setup, all on 127.0.0.1 and free ports: a real redis-server, two origins
(tests/origin: blue and canary), ./cutover with 2 workers and the Redis
source, and a load process that keeps N keep-alive connections busy (one
request in flight each) and records, per request, when it was sent, when its
response arrived and which track served it (X-Origin).

Then, for each mode (pub/sub on; pub/sub off = poll only), FLIPS times:
HSET {prefix}:route:web:weights blue 0 canary 100 (or the reverse), take t0,
PUBLISH {prefix}:events web, wait a little (randomised so the poll timer's
phase varies). With a 100/0 <-> 0/100 flip every request is unambiguous.

Per flip:
  (a) first-new  = first response from the new track after t0, minus t0;
  (b) last-old   = last response from the old track among requests SENT after
                   t0, minus t0 (0 when no request sent after t0 went to the old
                   track): from then on, every request follows the new weights.
Reported as p50/p99/max, plus the proxy's own "in X us after event" figure
(event receipt to snapshot swap) from its log.

Bounded: FLIPS per mode (default 200), a per-flip gap, a hard time limit on
the load process, every child killed by PID. The Markdown table is printed
and written to bench/results/cutover-latency.md.
"""

import argparse
import array
import contextlib
import os
import random
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
TRACKS = ("blue", "canary")


# ---------------------------------------------------------------------------
# the load process (run as: cutover.py --load PORT CONNS SECONDS OUTFILE)


def load_main(port, conns, seconds, outfile, rate):
    """Keeps <conns> keep-alive connections busy until SIGTERM or <seconds>, one
    request in flight per connection, paced to <rate> requests/s in total (0: as
    fast as they answer). Writes three int64 arrays (send ns, recv ns, track
    index) to <outfile>."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    req = b"GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n"
    interval = int(conns * 1e9 / rate) if rate > 0 else 0  # per connection, ns
    socks, bufs, sent, due = [], {}, {}, {}
    for _ in range(conns):
        s = socket.create_connection((LOOPBACK, port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    sends, recvs, tracks = array.array("q"), array.array("q"), array.array("q")
    errors = 0
    poller = select.epoll()
    by_fd = {}
    t_start = time.monotonic_ns()
    for i, s in enumerate(socks):
        fd = s.fileno()
        by_fd[fd] = s
        poller.register(fd, select.EPOLLIN)
        bufs[fd] = b""
        sent[fd] = None
        due[fd] = t_start + (interval * i) // conns  # spread the connections' phases
    deadline = time.monotonic() + seconds
    print("ready", flush=True)
    while not stop and time.monotonic() < deadline:
        now = time.monotonic_ns()
        wait = 0.2
        for fd, t in due.items():
            if t is None:
                continue
            if t <= now:
                sent[fd] = time.monotonic_ns()
                due[fd] = None
                by_fd[fd].send(req)
            else:
                wait = min(wait, (t - now) / 1e9)
        # epoll waits in whole milliseconds: spin instead when the next send is closer
        for fd, _ev in poller.poll(wait if wait >= 0.002 else 0):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            now = time.monotonic_ns()
            if not data:
                errors += 1
                poller.unregister(fd)
                continue
            buf = bufs[fd] + data
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
                name = m.group(1) if m else ""
                buf = buf[end + 4 + clen:]
                if status != 200 or name not in TRACKS:
                    errors += 1
                else:
                    sends.append(sent[fd])
                    recvs.append(now)
                    tracks.append(TRACKS.index(name))
                # next request of this connection: on its schedule, or at once if late
                due[fd] = max(now, sent[fd] + interval)
            bufs[fd] = buf
    with open(outfile, "wb") as f:
        f.write(array.array("q", [len(sends), errors]).tobytes())
        sends.tofile(f)
        recvs.tofile(f)
        tracks.tofile(f)
    for s in socks:
        s.close()


def read_records(path):
    with open(path, "rb") as f:
        hdr = array.array("q")
        hdr.fromfile(f, 2)
        n, errors = hdr
        out = []
        for _ in range(3):
            a = array.array("q")
            a.fromfile(f, n)
            out.append(a)
    return out[0], out[1], out[2], errors


# ---------------------------------------------------------------------------
# Redis, without redis-py (the processes themselves: bench/procs.py)


class Resp:
    """A minimal blocking RESP client (no dependency beyond the stdlib)."""

    def __init__(self, port):
        self.s = socket.create_connection((LOOPBACK, port), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def reply(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line[:1] == b"-":
            raise RuntimeError(line.decode())
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if line[:1] == b"*":
            return [self.reply() for _ in range(int(line[1:]))]
        return line[1:]

    def cmd(self, *args):
        self.send(*args)
        return self.reply()


# ---------------------------------------------------------------------------
# one mode


def write_conf(path, port, blue, canary, redis_port, pubsub, poll_ms, workers):
    path.write_text(f"""
workers = {workers};
listen = ( {{ address = "{LOOPBACK}:{port}"; }} );
redis = {{ address = "{LOOPBACK}:{redis_port}"; prefix = "cutover"; poll_ms = {poll_ms};
          pubsub = {"true" if pubsub else "false"}; instance = "bench"; }};
routes = ( {{ name = "web"; match = {{ host = "*"; path_prefix = "/"; }};
  tracks = ( {{ name = "blue";   weight = 100; servers = ( "{LOOPBACK}:{blue}" ); }},
             {{ name = "canary"; weight = 0;   servers = ( "{LOOPBACK}:{canary}" ); }} ); }} );
""")


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def run_mode(args, tmp, pubsub, poll_ms, blue, canary, redis_port):
    procs = []
    port = free_port()
    conf = tmp / f"cutover-{'pubsub' if pubsub else 'poll'}.conf"
    log = tmp / f"cutover-{'pubsub' if pubsub else 'poll'}.log"
    write_conf(conf, port, blue, canary, redis_port, pubsub, poll_ms, args.workers)
    r = Resp(redis_port)
    r.cmd("DEL", "cutover:route:web:weights")
    r.cmd("HSET", "cutover:route:web:weights", "blue", 100, "canary", 0)
    with open(log, "wb") as lf:
        proxy = subprocess.Popen([args.cutover, "-c", str(conf)], stdout=lf, stderr=lf,
                                 stdin=subprocess.DEVNULL)
    procs.append(proxy)
    outfile = tmp / f"load-{'pubsub' if pubsub else 'poll'}.bin"
    gap_s = args.gap_ms / 1000.0 if pubsub else (poll_ms + args.gap_ms) / 1000.0
    budget = 10 + args.flips * (gap_s + 0.05 + (poll_ms / 1000.0 if not pubsub else 0))
    try:
        wait_port(port, proxy)
        load = subprocess.Popen([sys.executable, __file__, "--load", str(port), str(args.conns),
                                 str(min(budget, 170)), str(outfile), str(args.rate)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(load)
        if not load.stdout.readline().startswith(b"ready"):
            raise RuntimeError("load process did not start")
        time.sleep(0.5)  # warm: pools, connections
        flips = []
        rng = random.Random(42)
        for i in range(args.flips):
            new = 1 if i % 2 == 0 else 0  # canary, then blue, ...
            w = {TRACKS[new]: 100, TRACKS[1 - new]: 0}
            r.cmd("HSET", "cutover:route:web:weights", "blue", w["blue"], "canary", w["canary"])
            t0 = time.monotonic_ns()
            r.cmd("PUBLISH", "cutover:events", "web")
            flips.append((t0, new))
            time.sleep(gap_s + rng.uniform(0, (poll_ms if not pubsub else args.gap_ms) / 1000.0))
        time.sleep(0.05)
        load.send_signal(signal.SIGTERM)
        load.wait(30)
    finally:
        for p in reversed(procs):
            kill(p)
    sends, recvs, tracks, errors = read_records(outfile)
    n = len(sends)
    first_new, last_old, lost = [], [], 0
    # records are in completion order per connection; sort by recv for scanning
    order = sorted(range(n), key=lambda k: recvs[k])
    rs = [recvs[k] for k in order]
    ss = [sends[k] for k in order]
    ts = [tracks[k] for k in order]
    import bisect
    for i, (t0, new) in enumerate(flips):
        t1 = flips[i + 1][0] if i + 1 < len(flips) else rs[-1] + 1
        lo = bisect.bisect_right(rs, t0)
        hi = bisect.bisect_left(rs, t1)
        a = next((rs[k] - t0 for k in range(lo, hi) if ts[k] == new), None)
        if a is None:
            lost += 1  # not cut over before the next flip (or no traffic)
            continue
        first_new.append(a / 1e6)
        old = [rs[k] - t0 for k in range(lo, hi) if ts[k] != new and ss[k] >= t0]
        last_old.append(max(old) / 1e6 if old else 0.0)
    dur = (rs[-1] - rs[0]) / 1e9 if n > 1 else 1
    applied = [int(x) / 1000.0 for x in
               re.findall(r"weights applied route=web .* in (\d+) us after (?:event|poll)",
                          log.read_text(errors="replace"))]
    return {
        "mode": "pub/sub" if pubsub else f"poll only ({poll_ms} ms)",
        "flips": len(flips), "measured": len(first_new), "lost": lost,
        "a": first_new, "b": last_old, "apply": applied,
        "requests": n, "errors": errors, "rate": n / dur if dur > 0 else 0,
    }


def table(results, args):
    lines = [
        "| mode | flips | (a) first new p50 | p99 | max | (b) last old p50 | p99 | max "
        "| read→swap p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['mode']} | {r['measured']}/{r['flips']} "
            f"| {pct(r['a'], 50):.3f} ms | {pct(r['a'], 99):.3f} ms | {max(r['a'] or [0]):.3f} ms "
            f"| {pct(r['b'], 50):.3f} ms | {pct(r['b'], 99):.3f} ms | {max(r['b'] or [0]):.3f} ms "
            f"| {pct(r['apply'], 50):.3f} ms | {pct(r['apply'], 99):.3f} ms |")
    loads = ", ".join(f"{r['mode']}: {r['requests']} requests at {r['rate']:.0f} req/s, "
                      f"{r['errors']} failed" for r in results)
    return "\n".join(lines), loads


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5],
                  float(sys.argv[6]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cutover", default=str(ROOT / "build/release/cutover"))
    ap.add_argument("--origin", default=str(ROOT / "build/release/origin"))
    ap.add_argument("--flips", type=int, default=200)
    ap.add_argument("--conns", type=int, default=4, help="keep-alive load connections")
    ap.add_argument("--rate", type=float, default=0,
                    help="total requests/s of the steady load (0: as fast as answered)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--gap-ms", type=float, default=30.0, help="pause between flips (pub/sub)")
    ap.add_argument("--poll-ms", type=int, default=100, help="poll_ms in the poll-only run")
    ap.add_argument("--out", default=str(ROOT / "bench/results/cutover-latency.md"))
    args = ap.parse_args()
    args.flips = max(1, min(args.flips, 2000))
    procs = []
    results = []
    with tempfile.TemporaryDirectory(prefix="cutover-bench-") as d:
        tmp = Path(d)
        try:
            redis_port = start_redis(tmp, procs)
            _bp, blue = start_origin(args.origin, "blue", procs)
            _cp, canary = start_origin(args.origin, "canary", procs)
            results.append(run_mode(args, tmp, True, 1000, blue, canary, redis_port))
            results.append(run_mode(args, tmp, False, args.poll_ms, blue, canary, redis_port))
        finally:
            for p in reversed(procs):
                kill(p)
    tbl, loads = table(results, args)
    cpu = "?"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else "?"
    pace = (f"paced to {args.rate:.0f} requests/s in total" if args.rate > 0
            else "each sending its next request as soon as the last is answered")
    text = f"""# Cutover latency

`make bench-cutover` (bench/cutover.py), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs
({cpu}); redis-server, two origins, ./cutover (workers = {args.workers}) and the load
generator on one machine, loopback. Steady load: {args.conns} keep-alive HTTP/1.1
connections, one request in flight each, {pace} ({loads}).

Each flip: `HSET cutover:route:web:weights blue 0 canary 100` (or the reverse), then
`PUBLISH cutover:events web` at t0. (a) = first response from the new track after t0;
(b) = last response from the old track to a request sent after t0 (0 when there was
none): from (b) on, every request follows the new weights. read→swap is the proxy's own
log figure, from the moment the event (or poll) triggered the read to the snapshot swap.

{tbl}
"""
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    bad = [r for r in results if r["errors"] or r["measured"] < r["flips"] * 0.95]
    for r in bad:
        print(f"warning: {r['mode']}: {r['errors']} failed requests, {r['lost']} flips "
              f"not measured", file=sys.stderr)
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
