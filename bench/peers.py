#!/usr/bin/python3
"""Peers benchmark: cutover against nginx, HAProxy and nghttpx on the same machine,
in the same run (`make bench`, run by bench/run.sh; `--quick` for QUICK=1).

Everything listens on 127.0.0.1, on free ports, and is started here and stopped here
by PID; nothing is installed or started as a system service (bench/run.sh installs the
Debian packages). Each proxy gets one worker and the same job: route "web", blue 90 /
canary 10 over HTTP/1.1 keep-alive upstream connections to two nginx origins (one
process, two ports), HTTP/1.1 and h2c and TLS 1.3 h2 (ALPN, TLS_AES_128_GCM_SHA256)
downstream. Configs are the templates in bench/peers/ with the ports filled in.

CPU placement on a 2-core machine: the proxy under test alone on CPU 0 (taskset), the
load generator, the origins and this script on CPU 1.

Per round (3 quick, 5 full), the proxies take turns in a rotated order; each is
started, warmed up, put through every test, and stopped. Figures per test:
requests/s, proxy CPU microseconds per request (delta of utime+stime in /proc/PID/stat
summed over the proxy's process tree, divided by 2xx responses), the proxy's CPU
utilisation, latency percentiles, peak RSS (VmHWM summed over the tree, reset before
each test through /proc/PID/clear_refs) and the split the origins saw (their access
log lines). Medians over rounds, with min-max.

The floor: each round also runs bench/floor.c pinned to CPU 0 with no proxy, doing
the upstream half of each test alone (one request head sent, one response read, per
request, on as many keep-alive origin connections as the proxies hold). Its CPU per
request is what any proxy with HTTP/1.1 upstreams pays at least; the summary sets
each ratio against it.
"""

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PEERS_DIR = BENCH / "peers"
LOOP = "127.0.0.1"
PROXY_CPU = "0"
LOAD_CPU = "1"
HZ = os.sysconf("SC_CLK_TCK")
CIPHER = "TLS_AES_128_GCM_SHA256"
LAT_CLIENTS, LAT_RPS_EACH = 50, 100          # 5000 requests/s offered in total

PROXIES = ("cutover", "nginx", "haproxy", "nghttpx")
LABEL = {"cutover": "**cutover**", "nginx": "nginx", "haproxy": "HAProxy",
         "nghttpx": "nghttpx", "direct": "direct (no proxy)",
         "floor": "floor (upstream half alone)"}
# the floor's connections and requests per test (h2tls: the same upstream work as h2c)
FLOOR = {"h1": (32, 200000), "h2c": (160, 200000), "h2tls": (160, 200000),
         "h1-64k": (32, 30000), "h2c-64k": (160, 30000)}

# name, title, tool, protocol, path
TESTS = (
    ("h1", "HTTP/1.1 keep-alive, small body (wrk -t1 -c32)", "wrk", "h1", "/"),
    ("h2c", "h2c, small body (h2load -c16 -m10)", "h2load", "h2c", "/"),
    ("h2tls", "TLS 1.3 h2, small body (h2load -c16 -m10)", "h2load", "tls", "/"),
    ("h1-64k", "HTTP/1.1 keep-alive, 64 KiB body (wrk -t1 -c32)", "wrk", "h1", "/64k"),
    ("h2c-64k", "h2c, 64 KiB body (h2load -c16 -m10)", "h2load", "h2c", "/64k"),
    ("lat", f"latency at {LAT_CLIENTS * LAT_RPS_EACH} req/s offered, HTTP/1.1 "
            f"(h2load --h1 -c{LAT_CLIENTS} --rps {LAT_RPS_EACH})", "rps", "h1", "/"),
)

STARTED = []        # (Popen, name) of everything we started, for cleanup by PID
PROBLEMS = []       # human-readable problem reports (with exact commands)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes, /proc


def free_port():
    with socket.socket() as s:
        s.bind((LOOP, 0))
        return s.getsockname()[1]


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOP, port)) == 0


def wait_ports(ports, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        pending = {p for p in pending if not port_busy(p)}
        if pending:
            time.sleep(0.05)
    if pending:
        raise RuntimeError(f"{what}: ports {sorted(pending)} not listening after {timeout}s")


def start(name, argv, cwd, logfile):
    out = open(logfile, "ab")
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    STARTED.append((p, name))
    return p


def stat_fields(pid):
    """(ppid, utime+stime ticks, starttime) or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    # rest[0] = state (field 3); utime = field 14, stime = 15, starttime = 22
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def tree(root):
    """PIDs of root and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = stat_fields(int(d))
            if f:
                children.setdefault(f[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_ticks(pids):
    total = 0
    for pid in pids:
        f = stat_fields(pid)
        if f:
            total += f[1]
    return total


def vm_kb(pid, key):
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_jiffies():
    """{cpu index: (busy, total)} from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            f = line.split()
            v = [int(x) for x in f[1:]]
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            # guest time is already in user
            total = sum(v[:8])
            out[int(f[0][3:])] = (total - idle, total)
    return out


def children_ticks():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * HZ


def self_ticks():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * HZ


def reset_hwm(pids):
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def stop(proc, name, timeout=8.0):
    """SIGTERM the process we started (nginx's master, nghttpx's main, ...), wait; then
    SIGKILL whatever is left of its tree, PID by PID (checking start times)."""
    if proc.poll() is None:
        members = [(pid, (stat_fields(pid) or (0, 0, -1))[2]) for pid in tree(proc.pid)]
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"  {name} ({proc.pid}) did not stop on SIGTERM in {timeout}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
        for pid, st in members:
            f = stat_fields(pid)
            if f and f[2] == st and pid != proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ValueError):
        STARTED.remove((proc, name))


def stop_all():
    for p, name in reversed(list(STARTED)):
        with contextlib.suppress(Exception):
            stop(p, name, timeout=3)


def fill(template, out, values):
    text = (PEERS_DIR / template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise RuntimeError(f"{template}: unfilled placeholders {sorted(set(left))}")
    out.write_text(text)
    return out


# ---------------------------------------------------------------------------
# origins


class Origins:
    def __init__(self, tmp):
        self.tmp = tmp
        self.blue, self.canary = free_port(), free_port()
        (tmp / "www").mkdir()
        (tmp / "www" / "64k.bin").write_bytes(bytes((i * 7 + 13) % 251 for i in range(65536)))
        conf = fill("origin-nginx.conf.in", tmp / "origin-nginx.conf",
                    {"DIR": tmp, "BLUE_PORT": self.blue, "CANARY_PORT": self.canary})
        self.logs = (tmp / "origin-blue.log", tmp / "origin-canary.log")
        self.proc = start("origin nginx", ["taskset", "-c", LOAD_CPU, "nginx", "-e",
                                          str(tmp / "origin-stderr.log"), "-p", str(tmp),
                                          "-c", str(conf)], tmp, tmp / "origin.out")
        wait_ports([self.blue, self.canary], self.proc, "origin nginx")
        self.last = (0, 0)

    def counts(self):
        """(blue, canary) requests so far: flush the buffered access logs (SIGUSR1
        reopens them, which writes the buffers out) and count 4-byte lines. The
        result is kept in .last, the starting point of the next test."""
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.08)
        self.last = tuple(f.stat().st_size // 4 if f.exists() else 0 for f in self.logs)
        return self.last


# ---------------------------------------------------------------------------
# proxies


class Proxy:
    def __init__(self, name, tmp, origins, cutover_bin, workers=1, cpus=PROXY_CPU):
        self.name, self.tmp = name, tmp
        self.h1 = free_port()
        self.tls = free_port()
        self.h2c = self.h1
        vals = {"DIR": tmp, "BLUE_PORT": origins.blue, "CANARY_PORT": origins.canary,
                "H1_PORT": self.h1, "TLS_PORT": self.tls,
                "CERT": ROOT / "conf/tls/cert.pem", "KEY": ROOT / "conf/tls/key.pem"}
        pin = ["taskset", "-c", cpus]
        if name == "nginx":
            self.h2c = free_port()
            vals["H2C_PORT"] = self.h2c
            conf = fill("nginx.conf.in", tmp / "nginx.conf", vals)
            argv = ["nginx", "-e", str(tmp / "nginx-stderr.log"), "-p", str(tmp),
                    "-c", str(conf)]
        elif name == "haproxy":
            pem = tmp / "bench.pem"
            pem.write_text((ROOT / "conf/tls/cert.pem").read_text() +
                           (ROOT / "conf/tls/key.pem").read_text())
            vals["PEM"] = pem
            conf = fill("haproxy.cfg.in", tmp / "haproxy.cfg", vals)
            argv = ["haproxy", "-f", str(conf), "-db"]
        elif name == "nghttpx":
            conf = fill("nghttpx.conf.in", tmp / "nghttpx.conf", vals)
            argv = ["nghttpx", "--conf", str(conf)]
        elif name == "cutover":
            conf = fill("cutover.conf.in", tmp / "cutover.conf", vals)
            if workers != 1:
                conf.write_text(conf.read_text().replace("workers = 1;",
                                                         f"workers = {workers};"))
            chk = subprocess.run([cutover_bin, "-t", "-c", str(conf)], capture_output=True,
                                 text=True)
            if chk.returncode != 0:
                raise RuntimeError(f"cutover -t rejected {conf}: {chk.stderr.strip()}")
            argv = [cutover_bin, "-c", str(conf)]
        else:
            raise ValueError(name)
        self.argv = pin + argv
        self.log = tmp / f"{name}.out"
        self.proc = start(name, self.argv, tmp, self.log)
        wait_ports({self.h1, self.tls, self.h2c}, self.proc, name)
        self.pid = self.proc.pid

    def url(self, proto, path):
        if proto == "tls":
            return f"https://{LOOP}:{self.tls}{path}"
        return f"http://{LOOP}:{self.h2c if proto == 'h2c' else self.h1}{path}"

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop(self.proc, self.name)


class Direct:
    """The blue origin itself, for the direct (no proxy) reference figures."""
    name = "direct"

    def __init__(self, origins):
        self.origins = origins
        self.pid = origins.proc.pid

    def url(self, proto, path):
        return f"http://{LOOP}:{self.origins.blue}{path}"

    def alive(self):
        return self.origins.proc.poll() is None


# ---------------------------------------------------------------------------
# load generators


def load_cmd(test, target, dur, tmp, threads=1, pin=True):
    name, _, tool, proto, path = test
    url = target.url(proto, path)
    pre = ["taskset", "-c", LOAD_CPU] if pin else []
    if tool == "wrk":
        return pre + ["wrk", f"-t{threads}", f"-c{32 * threads}", f"-d{int(dur)}s",
                      "-s", str(BENCH / "wrk-report.lua"), url], None
    if tool == "h2load":
        argv = pre + ["h2load", f"-t{threads}", f"-c{16 * threads}", "-m10", "-D", f"{int(dur)}s"]
        if proto == "tls":
            argv += [f"--tls13-ciphers={CIPHER}", "--npn-list=h2"]
        return argv + [url], None
    if tool == "rps":
        lf = tmp / "lat.log"
        with contextlib.suppress(FileNotFoundError):
            lf.unlink()
        return pre + ["h2load", "--h1", f"-c{LAT_CLIENTS}", "--rps", str(LAT_RPS_EACH),
                      "-D", f"{int(dur)}s", f"--log-file={lf}", url], lf
    raise ValueError(tool)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def parse(tool, out, logfile):
    """-> dict(ok, errors, secs, p50, p99, p999 (us), tls) or raises."""
    r = {"p50": None, "p99": None, "p999": None, "tls": None}
    if tool == "wrk":
        m = re.search(r"^BENCH (.*)$", out, re.M)
        if not m:
            raise RuntimeError("no BENCH line in wrk output")
        kv = dict(x.split("=") for x in m.group(1).split())
        req, status = int(kv["requests"]), int(kv["status"])
        r.update(ok=req - status, secs=int(kv["duration_us"]) / 1e6,
                 errors=sum(int(kv[k]) for k in ("connect", "read", "write", "status",
                                                   "timeout")),
                 p50=int(kv["p50"]), p99=int(kv["p99"]), p999=int(kv["p999"]),
                 errdetail=" ".join(f"{k} {kv[k]}" for k in ("connect", "read", "write",
                                                              "status", "timeout")
                                    if kv[k] != "0"))
        return r
    m = re.search(r"finished in ([\d.]+)(m?s)", out)
    q = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (m and q and s):
        raise RuntimeError("cannot parse h2load output")
    secs = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    done, failed, errored, timeout = (int(q.group(i)) for i in (3, 5, 6, 7))
    ok = int(s.group(1))
    r.update(ok=ok, secs=secs, errors=max(done - ok, failed, errored) + timeout,
             errdetail=f"{q.group(0)}; {s.group(0)}")
    t = re.search(r"TLS Protocol: (\S+)\s+Cipher: (\S+)", out)
    if t:
        r["tls"] = f"{t.group(1)} {t.group(2)}"
    if logfile is not None and logfile.exists():
        lat = []
        with open(logfile) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1].startswith("2"):
                    lat.append(int(parts[2]))
        lat.sort()
        r.update(p50=pct(lat, 50), p99=pct(lat, 99), p999=pct(lat, 99.9), samples=len(lat))
    return r


def run_test(test, target, origins, dur, tmp, threads=1, pin=True):
    argv, logfile = load_cmd(test, target, dur, tmp, threads, pin)
    c0 = origins.last           # counted after the warm-up or the previous test
    pids = tree(target.pid)
    if target.name != "direct":
        reset_hwm(pids)
    cpu0 = tree_ticks(pids)
    org0, gen0, me0, j0 = tree_ticks([origins.proc.pid]), children_ticks(), self_ticks(), \
        cpu_jiffies()
    t0 = time.monotonic()
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=dur + 30)
        out, rc = cp.stdout + cp.stderr, cp.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"timeout: {e}", -1
    wall = time.monotonic() - t0
    pids = sorted(set(pids) | set(tree(target.pid)))
    cpu1 = tree_ticks(pids)
    org1, gen1, me1, j1 = tree_ticks([origins.proc.pid]), children_ticks(), self_ticks(), \
        cpu_jiffies()
    ours1 = (org1 - org0) + (gen1 - gen0) + (me1 - me0)
    if target.name == "direct":
        ours1 -= cpu1 - cpu0
    wall_ticks = wall * HZ
    load_util = 100.0 * ((org1 - org0) + (gen1 - gen0)) / wall_ticks
    machine = 100.0 * len(j1) * sum(j1[c][0] - j0[c][0] for c in j1) / \
        max(1, sum(j1[c][1] - j0[c][1] for c in j1))
    others = []
    for cpu, ours in ((int(PROXY_CPU), cpu1 - cpu0), (int(LOAD_CPU), ours1)):
        busy = j1[cpu][0] - j0[cpu][0]
        total = j1[cpu][1] - j0[cpu][1]
        others.append(max(0.0, 100.0 * (busy - ours) / total) if total else 0.0)
    rss = sum(vm_kb(p, "VmHWM") for p in pids) if target.name != "direct" else 0
    c1 = origins.counts()
    cmd = " ".join(argv)
    try:
        r = parse(test[2], out, logfile)
    except RuntimeError as e:
        PROBLEMS.append(f"{target.name} / {test[0]}: {e} (exit {rc}); command: `{cmd}`; "
                        f"output tail: {out.strip()[-300:]!r}")
        return None
    if rc != 0:
        PROBLEMS.append(f"{target.name} / {test[0]}: load generator exit {rc}: `{cmd}`")
    cpu_s = (cpu1 - cpu0) / HZ
    r.update(rps=r["ok"] / r["secs"] if r["secs"] else 0.0,
             cpu_us=(cpu_s * 1e6 / r["ok"]) if r["ok"] else None,
             util=100.0 * cpu_s / wall, rss_kb=rss,
             blue=c1[0] - c0[0], canary=c1[1] - c0[1], cmd=cmd,
             others0=others[0], others1=others[1], load_util=load_util, machine=machine)
    if r["errors"]:
        PROBLEMS.append(f"{target.name} / {test[0]}: {r['errors']} errors of "
                        f"{r['ok'] + r['errors']} requests ({r['errdetail']}); "
                        f"command: `{cmd}`")
    if not target.alive():
        PROBLEMS.append(f"{target.name} died during {test[0]}; command: `{cmd}`; "
                        f"see its log {getattr(target, 'log', '?')}")
    return r


def warm_up(target, origins, tmp):
    """Fills the proxy's upstream pools (160 connections, as many as -c16 -m10
    can use) and its allocator, outside the measurements."""
    url = target.url("h1", "/")
    subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-c160", "-n16000", url],
                   capture_output=True, timeout=30)
    subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-c4", "-m10", "-n2000",
                    f"--tls13-ciphers={CIPHER}", target.url("tls", "/")],
                   capture_output=True, timeout=30)
    origins.counts()


# ---------------------------------------------------------------------------
# report


def med_span(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"


def f_rps(v):
    return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"


def f_us(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def f_ms(us):
    return "–" if us is None else f"{us / 1000:.2f}"


def median_or_none(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def build_floor(tmp):
    exe = tmp / "floor"
    cp = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                         str(BENCH / "floor.c")], capture_output=True, text=True)
    if cp.returncode != 0:
        PROBLEMS.append(f"bench/floor.c did not build: {cp.stderr.strip()[:300]}")
        return None
    return exe


def run_floor(exe, test, origins, n=0):
    """CPU µs per request of bench/floor.c, pinned where the proxy would be."""
    conns, n = FLOOR[test[0]][0], n or FLOOR[test[0]][1]
    argv = ["taskset", "-c", PROXY_CPU, str(exe), str(origins.blue), str(origins.canary),
            test[4], str(conns), str(n)]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    m = re.search(r"([0-9.]+) us/request \(user ([0-9.]+), sys ([0-9.]+)\)", cp.stdout)
    if cp.returncode != 0 or not m:
        PROBLEMS.append(f"floor {test[0]}: {' '.join(argv)}: {(cp.stdout + cp.stderr)[:300]}")
        return None
    return {"cpu_us": float(m.group(1)), "user": float(m.group(2)), "sys": float(m.group(3))}


def report(results, direct, args, scaling, floor=None):
    """results[(proxy, test)] = [round dicts]"""
    lines = []
    cpu_model = "?"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu_model = m.group(1).strip() if m else "?"
    versions = tool_versions()
    lines.append("# Peers: cutover vs nginx, HAProxy, nghttpx\n")
    lines.append(f"`{'make bench QUICK=1' if args.quick else 'make bench'}` (bench/peers.py), "
                 f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs ({cpu_model}), "
                 f"kernel {os.uname().release}. {args.rounds} rounds, peers interleaved "
                 f"(order rotated each round), {args.duration:g} s per throughput test, "
                 f"{args.lat_duration:g} s for the latency test. Proxy under test alone on "
                 f"CPU 0; load generator and origins (one nginx process, two ports) on CPU 1.\n")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".\n")
    lines.append("Cells: median over rounds (min–max). **CPU µs/req** = Δ(utime+stime) of "
                 "the proxy's whole process tree / 2xx responses; **vs best peer** = this "
                 "row's CPU µs/req / the lowest peer's (nginx, HAProxy, nghttpx); **CPU %** "
                 "= the proxy's CPU time / wall time (100 %: CPU 0 saturated, req/s is the proxy's "
                 "limit; below it, CPU 1 — generator + origins — was the limit, or other "
                 "work took CPU 0: see others %); "
                 "latency from wrk (closed loop) or h2load's per-request log; **RSS** = peak "
                 "VmHWM summed over the tree, max over rounds; **split** = blue / canary "
                 "requests counted at the origins, all rounds; **others %** = busy time on CPU 0 "
                 "not charged to the proxy / on CPU 1 not charged to the generator, the "
                 "origins and this script (other processes, steal, softirq in idle "
                 "context): high values mean that row was disturbed.\n")
    hdr = ("| proxy | req/s | CPU µs/req | vs best peer | CPU % | p50 ms | p99 ms | p99.9 ms "
           "| RSS MiB | split blue/canary | errors | others % CPU 0 / 1 |")
    sep = "|" + " --- |" * 12
    for test in TESTS:
        tname = test[0]
        if tname not in args.tests:
            continue
        lines.append(f"\n### {test[1]}\n")
        lines.append(hdr)
        lines.append(sep)
        peer_best = None
        for p in args.proxies:
            if p == "cutover":
                continue
            m = median_or_none([r["cpu_us"] for r in results.get((p, tname), [])])
            if m is not None and (peer_best is None or m < peer_best[0]):
                peer_best = (m, p)
        for p in args.proxies:
            rs = results.get((p, tname), [])
            if not rs:
                lines.append(f"| {LABEL[p]} | n/a | | | | | | | | | | |")
                continue
            cpu = median_or_none([r["cpu_us"] for r in rs])
            ratio = "–"
            if cpu is not None and peer_best:
                ratio = f"{cpu / peer_best[0]:.2f}×"
                if p == "cutover":
                    ratio = f"**{ratio}** ({LABEL[peer_best[1]]})"
            blue = sum(r["blue"] for r in rs)
            canary = sum(r["canary"] for r in rs)
            tot = blue + canary
            split = f"{100.0 * blue / tot:.1f} / {100.0 * canary / tot:.1f}" if tot else "–"
            errs = sum(r["errors"] for r in rs)
            lines.append(
                f"| {LABEL[p]}{'¹' if p == 'nginx' and tname.startswith('h2c') else ''} | "
                f"{med_span([r['rps'] for r in rs], f_rps)} | "
                f"{med_span([r['cpu_us'] for r in rs], f_us)} | {ratio} | "
                f"{median_or_none([r['util'] for r in rs]):.0f} | "
                f"{f_ms(median_or_none([r['p50'] for r in rs]))} | "
                f"{f_ms(median_or_none([r['p99'] for r in rs]))} | "
                f"{f_ms(median_or_none([r['p999'] for r in rs]))} | "
                f"{max(r['rss_kb'] for r in rs) / 1024:.1f} | {split} | {errs} | "
                f"{median_or_none([r['others0'] for r in rs]):.0f} / "
                f"{median_or_none([r['others1'] for r in rs]):.0f} |")
        d = direct.get(tname)
        if d:
            lines.append(f"| {LABEL['direct']} | {med_span([r['rps'] for r in d], f_rps)} | "
                         f"| | | {f_ms(median_or_none([r['p50'] for r in d]))} | "
                         f"{f_ms(median_or_none([r['p99'] for r in d]))} | "
                         f"{f_ms(median_or_none([r['p999'] for r in d]))} | | | "
                         f"{sum(r['errors'] for r in d)} | "
                         f"{median_or_none([r['others0'] for r in d]):.0f} / "
                         f"{median_or_none([r['others1'] for r in d]):.0f} |")
        fl = (floor or {}).get(tname)
        if fl:
            lines.append(f"| {LABEL['floor']} | | {med_span([r['cpu_us'] for r in fl], f_us)} | "
                         f"| | | | | | | | |")
    lines.append("\n### Summary: cutover's CPU per request against the best peer\n")
    lines.append("**floor**: bench/floor.c's CPU per request for the upstream half alone "
                 "(the least any proxy with HTTP/1.1 upstreams can spend); **floor ratio**: "
                 "floor / best peer, the ratio a proxy would reach if everything else it does "
                 "were free; **above floor**: CPU per request beyond the floor, cutover vs "
                 "the best peer.\n")
    lines.append("| test | cutover µs/req | best peer | its µs/req | ratio | target | floor µs/req "
                 "| floor ratio | above floor: cutover / best peer |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    targets = {"h2c": 0.7, "h2tls": 0.7, "h1": 1.0, "h1-64k": 1.0, "h2c-64k": 1.0}
    for test in TESTS:
        tname = test[0]
        if tname not in args.tests or "cutover" not in args.proxies:
            continue
        c = median_or_none([r["cpu_us"] for r in results.get(("cutover", tname), [])])
        best = None
        for p in args.proxies:
            if p != "cutover":
                m = median_or_none([r["cpu_us"] for r in results.get((p, tname), [])])
                if m is not None and (best is None or m < best[0]):
                    best = (m, p)
        if c is None or best is None:
            continue
        tgt = targets.get(tname)
        if tname == "lat":
            hp = median_or_none([r["p99"] for r in results.get(("haproxy", tname), [])])
            cp = median_or_none([r["p99"] for r in results.get(("cutover", tname), [])])
            ok = "p99 ≤ HAProxy's: " + ("met" if (hp and cp and cp <= hp) else "**not met**") \
                + f" ({f_ms(cp)} vs {f_ms(hp)} ms)"
        else:
            ok = f"≤ {tgt:.1f}×: " + ("met" if c / best[0] <= tgt else "**not met**")
        fm = median_or_none([r["cpu_us"] for r in (floor or {}).get(tname, [])])
        fcells = "| | |"
        if fm is not None:
            fcells = (f"{f_us(fm)} | {fm / best[0]:.2f}× | {f_us(c - fm)} / "
                      f"{f_us(best[0] - fm)} |")
        lines.append(f"| {tname} | {f_us(c)} | {LABEL[best[1]]} | {f_us(best[0])} | "
                     f"{c / best[0]:.2f}× | {ok} | {fcells}")
    if scaling:
        lines.append("\n### cutover, workers = 1 vs 2 (no pinning: proxy, generator and origins "
                     "share both CPUs)\n")
        lines.append("CPU % of 200 (two CPUs). When the machine is at ~200 % busy, the "
                     "load generator and the origins, which need CPU time of their own for "
                     "every request, are what stops the second worker from adding "
                     "throughput: this machine cannot show proxy scaling beyond that.\n")
        lines.append("| test | workers | req/s | CPU µs/req | proxy CPU % | generator + "
                     "origins CPU % | machine busy % | errors |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (tname, w), rs in sorted(scaling.items()):
            lines.append(f"| {tname} | {w} | {med_span([r['rps'] for r in rs], f_rps)} | "
                         f"{med_span([r['cpu_us'] for r in rs], f_us)} | "
                         f"{median_or_none([r['util'] for r in rs]):.0f} | "
                         f"{median_or_none([r['load_util'] for r in rs]):.0f} | "
                         f"{median_or_none([r['machine'] for r in rs]):.0f} | "
                         f"{sum(r['errors'] for r in rs)} |")
    lines.append("\n**Fairness notes.** "
                 "¹ nginx 1.22 has h2c (prior knowledge) only on a port of its own "
                 "(`listen … http2` without `ssl` refuses HTTP/1.1), so its h2c figures come "
                 "from a third listener; the others serve HTTP/1.1 and h2c on one port. "
                 "Splits: cutover uses smooth weighted round robin (90/10); nginx and HAProxy "
                 "weighted round robin (`weight=90/10`); nghttpx `weight=90/10` inside one "
                 "backend group (its weighted fair queuing). TLS: nginx, HAProxy and nghttpx "
                 "are limited to TLS 1.3 and TLS_AES_128_GCM_SHA256 on the server side; "
                 "cutover has no cipher setting, so h2load offers only that suite "
                 "(`--tls13-ciphers`), which all four then use. cutover runs with its "
                 "regression guard configured (per-track stats windows are part of its job); "
                 "the peers have no equivalent. nginx and nghttpx run a master/main process "
                 "next to their one worker: its CPU and RSS are in their figures (RSS summed "
                 "over processes counts shared pages twice). Upstream: all keep HTTP/1.1 "
                 "connections alive (nginx `keepalive 512`, HAProxy `http-reuse always`, "
                 "nghttpx default pooling, cutover `max_upstream_conns = 512`), forward "
                 "X-Forwarded-For and X-Forwarded-Proto, and log nothing. nginx buffers "
                 "responses in memory (`proxy_buffers 8 16k`, no temp files); the others "
                 "stream. The machine is shared: other work running on CPU 0 during a test "
                 "shows up in req/s far more than in CPU µs/req.\n")
    if PROBLEMS:
        lines.append("\n**Problems seen in this run**\n")
        lines.extend(f"- {p}" for p in PROBLEMS)
    return "\n".join(lines) + "\n"


def tool_versions():
    v = {}

    def first(argv, rx):
        with contextlib.suppress(Exception):
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            m = re.search(rx, cp.stdout + cp.stderr)
            if m:
                return m.group(1)
        return "?"
    v["cutover"] = first([str(ROOT / "build/release/cutover"), "-V"], r"(\S+)\s*$")
    v["nginx"] = first(["nginx", "-v"], r"nginx/(\S+)")
    v["HAProxy"] = first(["haproxy", "-v"], r"version (\S+)")
    v["nghttpx"] = first(["nghttpx", "--version"], r"nghttp2/(\S+)")
    v["wrk"] = first(["wrk", "-v"], r"wrk (\S+)")
    v["h2load"] = first(["h2load", "--version"], r"nghttp2/(\S+)")
    return v


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of short tests")
    ap.add_argument("--cutover", default=str(ROOT / "build/release/cutover"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds per throughput test")
    ap.add_argument("--lat-duration", type=int, help="seconds of the latency test")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--tests", default=",".join(t[0] for t in TESTS))
    ap.add_argument("--scaling", choices=("auto", "yes", "no"), default="auto",
                    help="cutover workers=1 vs 2 without pinning (auto: full runs only)")
    ap.add_argument("--out", default=str(BENCH / "results/peers.md"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.duration = args.duration or (1 if args.quick else 3)
    args.lat_duration = args.lat_duration or (2 if args.quick else 6)
    args.proxies = [p for p in args.proxies.split(",") if p]
    args.tests = [t for t in args.tests.split(",") if t]
    for p in args.proxies:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p}")
    do_scaling = args.scaling == "yes" or (args.scaling == "auto" and not args.quick)
    for tool in ("nginx", "haproxy", "nghttpx", "wrk", "h2load", "taskset"):
        if not shutil.which(tool):
            log(f"peers: {tool} not found (bench/run.sh installs it)")
            return 2
    if not os.access(args.cutover, os.X_OK):
        log(f"peers: no cutover binary at {args.cutover} (make)")
        return 2
    if os.cpu_count() < 2:
        log("peers: needs 2 CPUs (proxy on CPU 0, load on CPU 1)")
        return 2
    # This script runs on CPU 1 with the load generator, never next to the proxy.
    os.sched_setaffinity(0, {int(LOAD_CPU)})

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="cutover-peers-"))
    (tmp / "tmp").mkdir()
    results, direct, scaling, floor = {}, {}, {}, {}
    t_start = time.monotonic()
    try:
        origins = Origins(tmp)
        log(f"peers: origins on {origins.blue} (blue) and {origins.canary} (canary), "
            f"temp dir {tmp}")
        # Direct: the origins' own ceiling with the generator on the same CPU.
        dtarget = Direct(origins)
        warm_up_direct = ["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-c32", "-n10000",
                          dtarget.url("h1", "/")]
        subprocess.run(warm_up_direct, capture_output=True, timeout=30)
        origins.counts()
        for test in TESTS:
            if test[3] == "h1" and test[0] in args.tests:
                dur = args.lat_duration if test[0] == "lat" else args.duration
                r = run_test(test, dtarget, origins, dur, tmp)
                if r:
                    direct.setdefault(test[0], []).append(r)
                    log(f"  direct     {test[0]:8} {r['rps']:9.0f} req/s"
                        + (f"  p99 {r['p99'] / 1000:.2f} ms" if r.get("p99") else ""))
        floor_exe = build_floor(tmp)
        for rnd in range(args.rounds):
            if floor_exe:
                for test in TESTS:
                    if test[0] in FLOOR and test[0] in args.tests:
                        r = run_floor(floor_exe, test, origins)
                        if r:
                            floor.setdefault(test[0], []).append(r)
                            log(f"  floor      {test[0]:8} {r['cpu_us']:6.2f} us/req "
                                f"(user {r['user']:.2f}, sys {r['sys']:.2f})")
            k = rnd % len(args.proxies)
            order = args.proxies[k:] + args.proxies[:k]
            log(f"peers: round {rnd + 1}/{args.rounds}: {', '.join(order)} "
                f"({time.monotonic() - t_start:.0f} s)")
            for name in order:
                pdir = tmp / f"r{rnd}-{name}"
                pdir.mkdir()
                (pdir / "tmp").mkdir()
                try:
                    px = Proxy(name, pdir, origins, args.cutover)
                except Exception as e:  # noqa: BLE001 - reported, next peer goes on
                    PROBLEMS.append(f"{name}: failed to start in round {rnd + 1}: {e}")
                    log(f"  {name}: failed to start: {e}")
                    continue
                try:
                    warm_up(px, origins, pdir)
                    for test in TESTS:
                        if test[0] not in args.tests:
                            continue
                        if not px.alive():
                            break
                        dur = args.lat_duration if test[0] == "lat" else args.duration
                        r = run_test(test, px, origins, dur, pdir)
                        if r is None:
                            continue
                        results.setdefault((name, test[0]), []).append(r)
                        if test[2] == "h2load" and test[3] == "tls" and r["tls"] and \
                                r["tls"] != f"TLSv1.3 {CIPHER}":
                            PROBLEMS.append(f"{name}: negotiated {r['tls']}")
                        log(f"  {name:10} {test[0]:8} {r['rps']:9.0f} req/s "
                            f"{r['cpu_us'] or 0:6.2f} us/req  cpu {r['util']:3.0f}%  "
                            f"split {r['blue']}/{r['canary']}"
                            + (f"  errors {r['errors']}" if r["errors"] else ""))
                finally:
                    px.stop()
                    rc = px.proc.returncode
                    if name == "cutover" and rc not in (0, None, -signal.SIGTERM):
                        PROBLEMS.append(f"cutover exited with {rc} on SIGTERM "
                                        f"(log: {px.log})")
        if do_scaling and "cutover" in args.proxies:
            log(f"peers: cutover scaling, workers 1 and 2, no pinning "
                f"({time.monotonic() - t_start:.0f} s)")
            sc_tests = [t for t in TESTS if t[0] in ("h1", "h2c")]
            for rnd in range(max(1, args.rounds // 2)):
                for w in (1, 2):
                    pdir = tmp / f"scale{rnd}-w{w}"
                    pdir.mkdir()
                    px = Proxy("cutover", pdir, origins, args.cutover, workers=w, cpus="0,1")
                    try:
                        warm_up(px, origins, pdir)
                        for test in sc_tests:
                            r = run_test(test, px, origins, args.duration, pdir,
                                         threads=2, pin=False)
                            if r:
                                scaling.setdefault((test[0], w), []).append(r)
                                log(f"  workers={w} {test[0]:6} {r['rps']:9.0f} req/s "
                                    f"{r['cpu_us'] or 0:6.2f} us/req")
                    finally:
                        px.stop()
    finally:
        stop_all()
        if args.keep:
            log(f"peers: temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = report(results, direct, args, scaling, floor)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"peers: {time.monotonic() - t_start:.0f} s; written {out}")
    crashed = [p for p in PROBLEMS if "died" in p or "exited with" in p]
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
