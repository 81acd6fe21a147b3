"""SIGTERM/SIGINT: stop accepting, finish in-flight requests up to drain_ms,
GOAWAY on h2, exit 0."""

import signal
import socket
import time

from conftest import LOOPBACK, ConnectionClosed, run_in_thread, track


def start(cutover, origins, drain_ms=5000, **kw):
    blue = origins("blue")
    return cutover(tracks=[track("blue", 1, blue)], timeouts={"drain_ms": drain_ms}, **kw), blue


def new_connection_served(p):
    """True if a new connection still gets a response after the signal."""
    try:
        s = socket.create_connection((LOOPBACK, p.port), timeout=1)
    except OSError:
        return False
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        s.settimeout(1)
        return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def test_sigterm_drain_in_flight_request_completes(cutover, origins):
    p, blue = start(cutover, origins, drain_ms=5000, workers=2)
    idle = p.h1()
    assert idle.request("GET", "/").status == 200  # an idle keep-alive connection
    with p.h1() as c:
        t0 = time.monotonic()
        c.send(b"GET /slow?delay_ms=1500&bytes=100000 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.3)
        p.signal(signal.SIGTERM)
        time.sleep(0.2)
        assert not new_connection_served(p), "still accepting after SIGTERM"
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 100000
        assert time.monotonic() - t0 >= 1.4
    assert idle.is_closed_by_peer(3.0), "idle keep-alive connection not closed on drain"
    idle.close()
    rc = p.wait_exit(timeout=5.0)
    assert rc == 0, f"exit status {rc}"
    assert time.monotonic() - t0 < 5.0 + 1.0


def test_sigterm_drain_h2_goaway_and_stream_completes(cutover, origins):
    p, blue = start(cutover, origins, drain_ms=5000)
    with p.h2() as c:
        assert c.request("GET", "/").status == 200
        sid = c.start("GET", "/slow?delay_ms=1500")
        time.sleep(0.3)
        p.signal(signal.SIGTERM)
        st = c.wait(sid, timeout=5)
        assert st.status == 200 and st.ended and bytes(st.data) == b"blue\n"
        assert c.goaway is not None, "no GOAWAY on drain"
        assert c.goaway.last_stream_id >= sid
    assert p.wait_exit(timeout=5.0) == 0


def test_sigterm_idle_exits_promptly(cutover, origins):
    p, blue = start(cutover, origins, drain_ms=5000)
    assert p.get("/").status == 200
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    assert p.wait_exit(timeout=5.0) == 0
    assert time.monotonic() - t0 < 2.0


def test_sigint_drains_like_sigterm(cutover, origins):
    p, blue = start(cutover, origins, drain_ms=5000)
    with p.h1() as c:
        c.send(b"GET /?delay_ms=800 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.2)
        p.signal(signal.SIGINT)
        assert c.read_response().status == 200
    assert p.wait_exit(timeout=5.0) == 0


def test_drain_timeout_cuts_long_requests(cutover, origins):
    p, blue = start(cutover, origins, drain_ms=1000)

    def slow():
        with p.h1(timeout=15) as c:
            try:
                return c.request("GET", "/?delay_ms=10000").status
            except ConnectionClosed:
                return "closed"

    t, box = run_in_thread(slow)
    time.sleep(0.3)
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait_exit(timeout=6.0)
    took = time.monotonic() - t0
    t.join(10)
    assert rc == 0, f"exit status {rc}"
    assert 0.8 <= took <= 3.0, took
    assert box.get("result") != 200
