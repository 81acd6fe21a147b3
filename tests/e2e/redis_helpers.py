"""Helpers for the Redis end-to-end tests (test_30_redis_*.py): redis-server
processes that can be stopped and restarted on the same port, the Redis
contract's keys, bounded waits, and request sampling through the proxy.

Everything listens on 127.0.0.1 only, on free ports; processes are stopped
by PID (conftest.kill_pid); every loop is bounded in count and time.
"""

import contextlib
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import LOOPBACK, Redis, free_port, kill_pid

REDIS_SERVER = "/usr/bin/redis-server"
PREFIX = "cutover"


def weights_key(route="web", prefix=PREFIX):
    return f"{prefix}:route:{route}:weights"


def events_key(prefix=PREFIX):
    return f"{prefix}:events"


def audit_key(prefix=PREFIX):
    return f"{prefix}:audit"


class RedisProc(Redis):
    """A redis-server this test started; restart() brings it back on the
    same port with the same arguments (and data, if persistence is on)."""

    def __init__(self, proc, port, args, log_path, password=None):
        super().__init__(proc, port)
        self.args = args
        self.log_path = log_path
        self.password = password

    def client(self, db=0, username=None, password=None):
        import redis
        pw = password if password is not None else self.password
        return redis.Redis(host=LOOPBACK, port=self.port, db=db, username=username,
                           password=pw, socket_timeout=5, decode_responses=True)

    def kill(self, sig=9):
        """Stops it hard (SIGKILL by default): no shutdown save, sockets reset."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=10)

    def restart(self):
        assert self.proc.poll() is not None, "still running"
        new = _spawn(self.port, self.args, self.log_path, self.password)
        self.proc, self.pid = new, new.pid
        return self


def _ping(port, password=None):
    with socket.create_connection((LOOPBACK, port), timeout=0.5) as s:
        if password:
            s.sendall(f"AUTH {password}\r\n".encode())
            if not s.recv(64).startswith(b"+OK"):
                return False
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def _spawn(port, args, log_path, password):
    log = open(log_path, "ab")
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", LOOPBACK, *args],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError):
            if _ping(port, password):
                return proc
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_pid(proc)
            raise RuntimeError("redis-server did not start: "
                               + open(log_path, errors="replace").read()[-2000:])
        time.sleep(0.02)


@pytest.fixture
def redis_factory(tmp_path):
    """Factory: redis_factory(persist=False, password=None, extra=()) starts a
    redis-server on a free port. persist=True turns on an fsync-always AOF so
    a SIGKILLed server comes back with its keys. All killed by PID at teardown."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("redis-server is not installed")
    started = []

    def start(persist=False, password=None, extra=(), port=None):
        port = port or free_port()
        d = tmp_path / f"redis-{port}"
        d.mkdir(exist_ok=True)
        args = ["--save", "", "--dir", str(d)]
        args += (["--appendonly", "yes", "--appendfsync", "always"] if persist
                 else ["--appendonly", "no"])
        if password:
            args += ["--requirepass", password]
        args += list(extra)
        log_path = d / "redis.log"
        r = RedisProc(_spawn(port, args, log_path, password), port, args, log_path, password)
        started.append(r)
        return r

    yield start
    for r in started:
        kill_pid(r.proc)


def redis_conf(r, **kw):
    """The proxy's redis block for server <r>."""
    c = {"address": r.addr, "prefix": PREFIX}
    c.update(kw)
    return c


def set_weights(r, route="web", publish=True, db=0, **weights):
    """Replaces the whole hash (DEL + HSET in one transaction) and PUBLISHes
    the route, as an operator's script would."""
    cl = r.client(db=db)
    with cl.pipeline(transaction=True) as p:
        p.delete(weights_key(route))
        if weights:
            p.hset(weights_key(route), mapping={k: str(v) for k, v in weights.items()})
        p.execute()
    if publish:
        cl.publish(events_key(), route)


def publish(r, route="web"):
    r.client().publish(events_key(), route)


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Polls <pred> until it returns a true value; returns it. Fails after <timeout> s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def log_count(p, pattern):
    return len(re.findall(pattern, p.stderr_text(limit=1 << 22)))


def wait_log(p, pattern, timeout=5.0, count=1):
    """Waits until the proxy's stderr matches <pattern> at least <count> times."""
    return wait_for(lambda: log_count(p, pattern) >= count, timeout,
                    what=f"log /{pattern}/ x{count} in:\n{p.stderr_text()[-3000:]}")


def sample(p, n, path="/"):
    """<n> requests on one keep-alive connection; returns the origins in order."""
    out = []
    with p.h1() as c:
        for i in range(n):
            resp = c.request("GET", f"{path}?i={i}")
            assert resp.status == 200, resp
            out.append(resp.origin)
    return out


def wait_split(p, want, n=20, timeout=5.0):
    """Waits until <n> consecutive requests all go to track <want>."""
    return wait_for(lambda: set(sample(p, n)) == {want}, timeout,
                    what=f"all requests on {want}")


def audit_entries(r, route=None):
    """The audit stream as a list of dicts (field -> value), oldest first."""
    out = []
    for _id, fields in r.client().xrange(audit_key(), "-", "+"):
        if route is None or fields.get("route") == route:
            out.append(fields)
    return out


class Load:
    """A bounded client loop in a thread: keep-alive requests, one connection
    (reopened only if the proxy closes it), recording (status or error, origin)."""

    def __init__(self, p, max_requests=20000, max_seconds=30.0):
        self.p = p
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.results = []
        self.errors = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        c = None
        i = 0
        try:
            while (not self.stop_flag.is_set() and i < self.max_requests
                   and time.monotonic() < deadline):
                if c is None:
                    c = self.p.h1(timeout=5)
                t0 = time.monotonic()
                try:
                    resp = c.request("GET", f"/load?i={i}")
                except Exception as e:  # noqa: BLE001 - recorded and asserted on
                    self.errors.append(repr(e))
                    c.close()
                    c = None
                    continue
                finally:
                    i += 1
                self.results.append((resp.status, resp.origin, time.monotonic() - t0))
                if resp.header("connection") == "close":
                    c.close()
                    c = None
        finally:
            if c is not None:
                c.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.stop_flag.set()
        self.thread.join(15)

    def mark(self):
        return len(self.results)

    def since(self, mark):
        return self.results[mark:]
