"""Limits and client timeouts: 414, 431, 413, header_ms, idle_ms."""

import socket
import time

import pytest

from conftest import LOOPBACK, H1Conn, read_until_close, track

LIMITS = {"max_request_line": 1024, "max_header_size": 4096, "max_headers": 20,
          "max_body_size": 100000}


@pytest.fixture
def limited(cutover, origins):
    blue = origins("blue")
    return cutover(tracks=[track("blue", 1, blue)], limits=LIMITS,
                   timeouts={"header_ms": 1000, "idle_ms": 1500}), blue


def status_of(data):
    line = data.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def raw(p, data, timeout=5):
    s = socket.create_connection((LOOPBACK, p.port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = read_until_close(s, timeout=timeout)
    s.close()
    return out


def test_within_limits_is_served(limited):
    p, blue = limited
    path = "/" + "a" * 900
    hs = [(f"X-H{i}", "v" * 100) for i in range(15)]
    with p.h1() as c:
        r = c.request("GET", path, headers=hs)
        assert r.status == 200
        r = c.request("POST", "/?echo=1", body=b"b" * 99000)
        assert r.status == 200 and r.json()["body_len"] == 99000


def test_request_line_too_long_414(limited):
    p, blue = limited
    data = raw(p, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    assert status_of(data) == 414, data[:200]
    assert blue.count() == 0


def test_request_line_far_too_long_414(limited):
    p, blue = limited
    # longer than any sane read buffer, sent without a line end
    data = raw(p, b"GET /" + b"a" * 200000)
    assert status_of(data) in (414, None) and b"200 OK" not in data
    assert p.alive()


def test_headers_too_large_431(limited):
    p, blue = limited
    data = raw(p, b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"x" * 8000 + b"\r\n\r\n")
    assert status_of(data) == 431, data[:200]
    data = raw(p, b"GET / HTTP/1.1\r\nHost: test\r\n"
               + b"".join(b"X-M%d: %s\r\n" % (i, b"y" * 300) for i in range(18)) + b"\r\n")
    assert status_of(data) == 431, data[:200]
    assert blue.count() == 0


def test_too_many_headers_431(limited):
    p, blue = limited
    data = raw(p, b"GET / HTTP/1.1\r\nHost: test\r\n"
               + b"".join(b"X-N%d: 1\r\n" % i for i in range(50)) + b"\r\n")
    assert status_of(data) == 431, data[:200]
    assert blue.count() == 0


def test_body_too_large_413(limited):
    p, blue = limited
    data = raw(p, b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 200000\r\n\r\n"
               + b"z" * 1000)
    assert status_of(data) == 413, data[:200]


MALFORMED = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("conflicting_content_length",
     b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"),
    ("bad_content_length", b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5x\r\n\r\nhello"),
    ("space_in_field_name", b"GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n"),
    # RFC 9112 5.1: whitespace between name and colon MUST get a 400 (smuggling vector)
    ("space_before_colon",
     b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding : chunked\r\n"
     b"Content-Length: 5\r\n\r\nhello"),
]


@pytest.mark.parametrize("name,bad", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_400(limited, name, bad):
    p, blue = limited
    data = raw(p, bad)
    assert status_of(data) == 400, data[:300]
    assert blue.count() == 0 and p.alive()


def test_h2_body_too_large_413_by_content_length(limited):
    """HTTP/2 honours max_body_size as HTTP/1.1 does: a content-length over it is
    refused before the upstream sees anything."""
    p, blue = limited
    with p.h2() as c:
        st = c.request("POST", "/", headers=[("content-length", "200000")], body=b"z" * 200000)
        assert st.status == 413, st.status
        assert c.request("GET", "/").status == 200  # the connection lives on
    assert blue.count() == 1


def test_h2_body_too_large_413_without_content_length(limited):
    """No content-length: the DATA past max_body_size gets a 413 (no response had
    started), the upstream request is cut, the connection lives on."""
    p, blue = limited
    with p.h2() as c:
        st = c.request("POST", "/?delay_ms=2000", body=b"z" * 300000)
        assert st.status == 413, st.status
        assert c.request("GET", "/").status == 200
    with p.h2() as c:  # within the limit, streamed without content-length: served
        st = c.request("POST", "/?echo=1", body=b"y" * 100000)
        assert st.status == 200 and st.json()["body_len"] == 100000
    assert p.alive()


def test_h2_header_list_too_large(limited):
    p, blue = limited
    with p.h2() as c:
        st = c.request("GET", "/", headers=[(f"x-big{i}", "v" * 1000) for i in range(10)])
        assert st.reset is not None or st.status == 431
        assert c.request("GET", "/").status == 200
    assert blue.count() == 1


def test_dribbling_client_closed_after_header_ms(limited):
    p, blue = limited  # header_ms = 1000
    s = socket.create_connection((LOOPBACK, p.port), timeout=5)
    head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200
    t0 = time.monotonic()
    closed_at = None
    for i in range(len(head)):  # one byte every 50 ms: would take 10+ s
        try:
            s.sendall(head[i:i + 1])
        except OSError:
            closed_at = time.monotonic()
            break
        s.settimeout(0.05)
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            closed_at = time.monotonic()
            break
        if not data or data.startswith(b"HTTP/1.1 408"):
            closed_at = time.monotonic()
            break
        if time.monotonic() - t0 > 6:
            break
    s.close()
    assert closed_at is not None, "dribbling client was never closed"
    took = closed_at - t0
    assert 0.8 <= took <= 3.0, took
    assert blue.count() == 0


def test_silent_connection_closed_after_header_ms(limited):
    p, blue = limited
    s = socket.create_connection((LOOPBACK, p.port), timeout=5)
    t0 = time.monotonic()
    read_until_close(s, timeout=5)
    took = time.monotonic() - t0
    s.close()
    assert took <= 3.0, took


def test_idle_keepalive_closed_after_idle_ms(limited):
    p, blue = limited  # idle_ms = 1500
    with p.h1() as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.is_closed_by_peer(5.0)
        took = time.monotonic() - t0
    assert 0.8 <= took <= 3.5, took


def test_max_connections_per_worker(cutover, origins):
    blue = origins("blue")
    p = cutover(tracks=[track("blue", 1, blue)], workers=1, limits={"max_connections": 5})
    conns = [H1Conn(p.port) for _ in range(5)]
    for c in conns:
        assert c.request("GET", "/").status == 200
    # a sixth is refused or closed, not served
    extra = socket.create_connection((LOOPBACK, p.port), timeout=5)
    try:
        extra.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    except OSError:
        pass
    data = read_until_close(extra, timeout=3)
    extra.close()
    assert b"200 OK" not in data.split(b"\r\n", 1)[0]
    for c in conns:
        c.close()
    time.sleep(0.3)
    assert p.get("/").status == 200
