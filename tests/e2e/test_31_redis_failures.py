"""Redis down, slow, wrong or lying: the proxy keeps serving with the last
good weights, never makes the data path wait, reconnects with backoff and
re-reads everything once Redis is back."""

import contextlib
import os
import signal
import socket
import threading
import time

import pytest

from conftest import LOOPBACK, free_port, track
from redis_helpers import (Load, redis_conf, redis_factory, sample, set_weights, wait_for,
                           wait_log, wait_split)

__all__ = ["redis_factory"]

NO_POLL = 600000


@pytest.fixture
def two(origins):
    return origins("blue", "green")


def test_redis_killed_under_load_then_restarted(cutover, two, redis_factory):
    blue, green = two
    r = redis_factory(persist=True)  # the key survives SIGKILL, as in production
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=200))
    set_weights(r, blue=0, green=100)
    wait_split(p, "green")
    with Load(p, max_requests=200000, max_seconds=40) as load:
        time.sleep(0.3)
        m0 = load.mark()
        r.kill()  # SIGKILL: both connections reset
        wait_log(p, r"cmd connection\): connection lost")
        time.sleep(1.0)  # several failed reconnects and polls, under load
        m1 = load.mark()
        r.restart()
        wait_log(p, r"connected \(db 0\) \(back after failures\)", timeout=10)
        wait_log(p, r"subscribed to cutover:events \(back after failures\)", timeout=5)
        time.sleep(0.3)
        m2 = load.mark()
        set_weights(r, blue=100, green=0)
        wait_log(p, r"weights applied route=web blue=100,green=0 .* after event", timeout=5)
        time.sleep(0.3)
    assert not load.errors, load.errors[:5]
    res = load.results
    assert len(res) > 200, len(res)
    assert all(s == 200 for s, _o, _t in res), [x for x in res if x[0] != 200][:5]
    # weights kept all through the outage and the restart (no flap to the config's)
    during = {o for _s, o, _t in res[m0:m2]}
    assert during == {"green"}, during
    assert m1 > m0 + 10, "no requests were served while Redis was down"
    assert {o for _s, o, _t in res[-20:]} == {"blue"}
    # the data path never waited on Redis
    slow = [t for _s, _o, t in res if t > 0.5]
    assert not slow, slow[:5]


def test_proxy_starts_while_redis_is_down(cutover, two, redis_factory, tmp_path):
    blue, green = two
    port = free_port()
    addr = f"{LOOPBACK}:{port}"
    t0 = time.monotonic()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis={"address": addr, "prefix": "cutover", "poll_ms": NO_POLL})
    assert time.monotonic() - t0 < 3, "start-up waited on a Redis that refuses connections"
    assert set(sample(p, 10)) == {"blue"}
    wait_log(p, r"connect failed: Connection refused")
    r = redis_factory(port=port)
    set_weights(r, blue=0, green=100)
    # reconnects within the capped backoff (5 s), then re-reads every route
    wait_split(p, "green", timeout=8)


def test_wrong_password_logged_and_fixed_by_reload(cutover, two, redis_factory):
    blue, green = two
    r = redis_factory(password="s3cret")
    set_weights(r, blue=0, green=100)
    trk = [track("blue", 100, blue), track("green", 0, green)]
    p = cutover(tracks=trk, redis=redis_conf(r, poll_ms=NO_POLL, password="wrong"))
    wait_log(p, r"AUTH refused: WRONGPASS.*check redis.username and redis.password")
    assert set(sample(p, 10)) == {"blue"}
    # no password at all: SELECT is refused with NOAUTH, and that is said too
    p.reload(p.conf(tracks=trk, redis=redis_conf(r, poll_ms=NO_POLL)), settle=0)
    wait_log(p, r"SELECT 0 refused: NOAUTH")
    p.reload(p.conf(tracks=trk, redis=redis_conf(r, poll_ms=NO_POLL, password="s3cret")),
             settle=0)
    wait_split(p, "green", timeout=8)


def test_acl_user_and_password(cutover, two, redis_factory):
    blue, green = two
    r = redis_factory(password="adminpw")
    admin = r.client()
    admin.execute_command("ACL", "SETUSER", "cutover", "on", ">userpw", "~cutover:*",
                          "&cutover:*", "+@all")
    set_weights(r, blue=0, green=100)
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL, username="cutover", password="userpw"))
    wait_split(p, "green")
    set_weights(r, blue=100, green=0)
    wait_split(p, "blue")


def test_stopped_redis_times_out_and_recovers(cutover, two, redis_factory):
    """SIGSTOP: the TCP connections stay up but nothing answers. The command
    timeout drops them; new connects hang in the backlog until the connect
    timeout. The data path is never slowed. SIGCONT: back to normal."""
    blue, green = two
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=200))
    set_weights(r, blue=0, green=100)
    wait_split(p, "green")
    os.kill(r.pid, signal.SIGSTOP)
    try:
        with Load(p, max_requests=100000, max_seconds=20) as load:
            wait_log(p, r"no reply within 1000 ms|no answer to", timeout=6)
            time.sleep(0.5)
    finally:
        os.kill(r.pid, signal.SIGCONT)
    assert not load.errors, load.errors[:5]
    assert load.results and {o for _s, o, _t in load.results} == {"green"}
    assert max(t for _s, _o, t in load.results) < 0.5
    set_weights(r, blue=100, green=0)
    wait_split(p, "blue", timeout=10)


class FakeRedis:
    """A TCP server on 127.0.0.1 that plays a broken Redis. mode:
    'garbage'  answers every read with bytes that are not RESP;
    'midreply' answers SELECT with +OK, confirms SUBSCRIBE, then starts a reply to
               the next command and closes in the middle of it;
    'silent'   accepts and never answers."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.accepted = 0
        self.conns = []
        self.servers = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _serve(self, c):
        c.settimeout(0.2)
        deadline = time.monotonic() + 20
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    data = c.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                if self.mode == "garbage":
                    c.sendall(b"\x00\xffHTTP/1.1 400 Bad Request\r\n\r\n")
                elif self.mode == "midreply":
                    if b"SUBSCRIBE" in data:
                        c.sendall(b"*3\r\n$9\r\nsubscribe\r\n$14\r\ncutover:events\r\n:1\r\n")
                    elif b"SELECT" in data:
                        c.sendall(b"+OK\r\n")
                    else:
                        c.sendall(b"*4\r\n$4\r\nblue\r\n$3\r\n10")
                        return
        finally:
            with contextlib.suppress(OSError):
                c.close()

    def _run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "silent":
                self.conns.append(c)  # held open, never answered
            else:  # the serving thread owns and closes the socket
                t = threading.Thread(target=self._serve, args=(c,), daemon=True)
                self.servers.append(t)
                t.start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for t in self.servers:
            t.join(5)
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()


@pytest.mark.parametrize("mode,expect", [
    ("garbage", r"Protocol error"),
    ("midreply", r"connection lost: Server closed the connection"),
    ("silent", r"no answer to AUTH/SELECT within 1000 ms"),
])
def test_broken_redis_is_survived(cutover, two, mode, expect):
    blue, green = two
    fake = FakeRedis(mode)
    try:
        p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                    redis={"address": f"{LOOPBACK}:{fake.port}", "prefix": "cutover",
                           "poll_ms": 100})
        with Load(p, max_requests=100000, max_seconds=20) as load:
            wait_log(p, expect, timeout=6)
            wait_for(lambda: fake.accepted >= 3, timeout=8, what="reconnect attempts")
        assert p.alive()
        assert not load.errors, load.errors[:5]
        assert load.results and {o for _s, o, _t in load.results} == {"blue"}
        assert max(t for _s, _o, t in load.results) < 0.5
    finally:
        fake.close()


def test_sighup_while_redis_is_down_keeps_overrides(cutover, two, redis_factory):
    blue, green = two
    r = redis_factory()
    trk = [track("blue", 100, blue), track("green", 0, green)]
    p = cutover(tracks=trk, redis=redis_conf(r, poll_ms=200))
    set_weights(r, blue=0, green=100)
    wait_split(p, "green")
    r.kill()
    wait_log(p, r"cmd connection\): connection lost")
    p.reload(p.conf(tracks=[track("blue", 60, blue), track("green", 40, green)],
                    redis=redis_conf(r, poll_ms=200)), settle=0)
    wait_log(p, r"configuration reloaded")
    wait_log(p, r"reload: route web keeps redis weights blue=0,green=100")
    assert set(sample(p, 50)) == {"green"}
