#!/usr/bin/python3
"""Profile one proxy on one bench test (the instrument behind bench/README.md's log).

  bench/prof.py [--proxy cutover|nginx|haproxy|nghttpx] [--test h2c|h1|h2tls|h1-64k|h2c-64k]
                [--callgrind | --strace | --perf | --floor] [-n REQUESTS] [--repeat K]

Same origins, configs and CPU placement as bench/peers.py. Without --callgrind it
prints proxy CPU microseconds per request (from /proc, over the process tree) for
K runs of -n requests each, interleavable by hand with another proxy. With
--callgrind the proxy runs under valgrind (callgrind) and the script prints
instructions per request and the top functions (inclusive and self), from
callgrind_annotate. With --strace: system calls per request. With --perf: self
time by symbol, kernel included (perf record -e cpu-clock -g over the proxy's
process tree; perf report --children on the output file gives call-chain
totals). With --floor, no proxy: bench/floor.c does the upstream half of the
test alone (one request head sent, one response read, per request, on as many
keep-alive origin connections as the proxy would hold), pinned where the proxy
would be: the CPU per request any proxy with HTTP/1.1 upstreams pays at least.
Everything listens on 127.0.0.1 and is stopped by PID.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402


def load(test, target, n, tmp):
    name, _, tool, proto, path = test
    url = target.url(proto, path)
    argv = ["taskset", "-c", peers.LOAD_CPU, "h2load", "-n", str(n)]
    if proto == "h1":
        argv += ["--h1", "-c32", "-m1"]
    else:
        argv += ["-c16", "-m10"]
    if proto == "tls":
        argv += [f"--tls13-ciphers={peers.CIPHER}", "--npn-list=h2"]
    cp = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600)
    r = peers.parse("h2load", cp.stdout + cp.stderr, None)
    return r


def cpu_faults(pids):
    """utime, stime (ticks) and minor faults, summed over <pids>."""
    u = k = f = 0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        u += int(rest[11])
        k += int(rest[12])
        f += int(rest[7])  # minflt
    return u, k, f


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default="cutover")
    ap.add_argument("--test", default="h2c")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--strace", action="store_true", help="syscalls per request (strace -c)")
    ap.add_argument("--perf", action="store_true",
                    help="where the CPU time goes, user and kernel (perf record -e cpu-clock)")
    ap.add_argument("--floor", action="store_true",
                    help="no proxy: bench/floor.c's upstream half alone (one send, one recv "
                         "per request on as many origin connections), CPU per request")
    ap.add_argument("-n", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cutover", default=str(peers.ROOT / "build/release/cutover"))
    ap.add_argument("--out", default="/tmp/cutover-prof.out")
    a = ap.parse_args()
    test = next(t for t in peers.TESTS if t[0] == a.test)
    n = a.n or (20000 if a.callgrind else 200000)
    tmp = Path(tempfile.mkdtemp(prefix="cutover-prof-"))
    (tmp / "tmp").mkdir()
    origins = peers.Origins(tmp)
    proxy = None
    try:
        if a.floor:
            exe = peers.build_floor(tmp)
            if exe is None:
                print(peers.PROBLEMS[-1])
                return
            for i in range(a.repeat):
                r = peers.run_floor(exe, test, origins, a.n)
                if r is None:
                    print(peers.PROBLEMS[-1])
                    return
                print(f"floor {a.test}: {a.n or peers.FLOOR[a.test][1]} requests on "
                      f"{peers.FLOOR[a.test][0]} connections: "
                      f"{r['cpu_us']:.2f} us/request (user {r['user']:.2f}, sys {r['sys']:.2f})",
                      flush=True)
            return
        if a.callgrind:
            # Proxy.__init__ pins with taskset; put valgrind between.
            orig = peers.start

            def start(name, argv, cwd, logfile):
                if name == a.proxy:
                    i = argv.index("-c") + 2 if argv[0] == "taskset" else 0
                    argv = argv[:i] + ["valgrind", "--tool=callgrind",
                                       f"--callgrind-out-file={a.out}",
                                       "--instr-atstart=no"] + argv[i:]
                return orig(name, argv, cwd, logfile)
            peers.start = start
        proxy = peers.Proxy(a.proxy, tmp, origins, a.cutover)
        time.sleep(1.0 if a.callgrind else 0.2)
        # warm the pools (160 upstream connections) and the allocator
        load(test, proxy, 4000 if a.callgrind else 20000, tmp)
        if a.callgrind:
            cc = subprocess.run(["callgrind_control", "-i", "on", str(proxy.pid)],
                                capture_output=True, text=True)
            if cc.returncode != 0:
                print("callgrind_control:", cc.stdout, cc.stderr)
            r = load(test, proxy, n, tmp)
            subprocess.run(["callgrind_control", "-i", "off", str(proxy.pid)],
                           capture_output=True)
            proxy.stop()
            proxy = None
            time.sleep(0.5)
            out = subprocess.run(["callgrind_annotate", a.out], capture_output=True,
                                 text=True).stdout
            tot = next((int(l.split()[0].replace(",", "")) for l in out.splitlines()
                        if "PROGRAM TOTALS" in l and l.split()[0][0].isdigit()), 0)
            print(f"{a.test}: {r['ok']} ok, {r['errors']} errors; "
                  f"{tot / max(1, r['ok']):.0f} Ir/request")
            lines = [l for l in out.splitlines() if l.strip() and l.strip()[0].isdigit()]
            print("self:")
            for l in lines[1:31]:
                v = int(l.split()[0].replace(",", ""))
                print(f"  {v / max(1, r['ok']):7.0f}  {l.split(None, 1)[1][:110]}")
        elif a.strace:
            load(test, proxy, 20000, tmp)
            pids = [str(x) for x in peers.tree(proxy.pid)]  # nginx, nghttpx: workers are children
            st = subprocess.Popen(["strace", "-c", "-f", "-o", a.out] +
                                  [x for pid in pids for x in ("-p", pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            r = load(test, proxy, n, tmp)
            st.send_signal(2)
            st.wait(timeout=30)
            print(f"{a.proxy} {a.test}: {r['ok']} ok; syscalls per request:")
            for l in open(a.out).read().splitlines():
                f = l.split()
                if len(f) >= 5 and f[3].isdigit():
                    print(f"  {int(f[3]) / max(1, r['ok']):6.2f}  {f[-1]}")
        elif a.perf:
            load(test, proxy, 20000, tmp)
            pids = ",".join(str(x) for x in peers.tree(proxy.pid))
            pr = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "20000",
                                   "-g", "-o", a.out, "-p", pids],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            r = load(test, proxy, n, tmp)
            pr.send_signal(2)
            pr.wait(timeout=60)
            out = subprocess.run(["perf", "report", "-i", a.out, "--no-children", "--stdio",
                                  "-g", "none", "--percent-limit", "0.7", "--sort", "sym"],
                                 capture_output=True, text=True).stdout
            print(f"{a.proxy} {a.test}: {r['ok']} ok; self time by symbol ([k] kernel):")
            for l in out.splitlines():
                if l.strip() and not l.startswith("#"):
                    print("  " + l.strip())
        else:
            for i in range(a.repeat):
                pids = peers.tree(proxy.pid)
                u0, k0, f0 = cpu_faults(pids)
                r = load(test, proxy, n, tmp)
                u1, k1, f1 = cpu_faults(pids)
                per = 1e6 / peers.HZ / max(1, r["ok"])
                print(f"{a.proxy} {a.test}: {r['ok']} ok, {r['errors']} errors, "
                      f"{r['ok'] / r['secs']:.0f} req/s, {(u1 - u0 + k1 - k0) * per:.2f} us/request "
                      f"(user {(u1 - u0) * per:.2f}, sys {(k1 - k0) * per:.2f}), "
                      f"{(f1 - f0) / max(1, r['ok']):.2f} page faults/request", flush=True)
    finally:
        if proxy:
            proxy.stop()
        peers.stop(origins.proc, "origins")


if __name__ == "__main__":
    main()
