"""Processes for the cutover-latency and snap-back benchmarks (bench/cutover.py,
bench/snapback.py): free loopback ports, the test origin, redis-server, stopping by
PID. Everything listens on 127.0.0.1; every process started here is appended to the
caller's <procs> list, which the caller stops with kill()."""

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def kill(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open")


def start_origin(binary, name, procs):
    p = subprocess.Popen([binary, "-p", "0", "-a", LOOPBACK, "-n", name],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    line = b""
    deadline = time.monotonic() + 10
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.1)
        if r:
            ch = os.read(p.stdout.fileno(), 64)
            if not ch:
                break
            line += ch
    m = re.match(rb"ready (\d+)", line)
    if not m:
        raise RuntimeError(f"origin {name}: {line!r}")
    return p, int(m.group(1))


def start_redis(tmp, procs):
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", LOOPBACK, "--save", "",
                          "--appendonly", "no", "--dir", str(tmp)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port, p)
    return port
