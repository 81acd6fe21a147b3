"""The test origin on its own: if these fail, nothing else can be trusted."""

import hashlib
import socket
import time

from conftest import H1Conn, LOOPBACK, ConnectionClosed, pattern_sha256, read_until_close


def test_origin_names_itself_and_counts(origins):
    o = origins("blue")
    with H1Conn(o.port) as c:
        r = c.request("GET", "/")
        assert (r.status, r.body, r.origin) == (200, b"blue\n", "blue")
        r = c.request("GET", "/health")
        assert (r.status, r.body) == (200, b"ok")
    assert o.count() == 2
    assert o.count() == 2  # /__count does not count itself
    assert o.reset_count() == 2 and o.count() == 0


def test_origin_query_controls(origins):
    o = origins("green")
    with H1Conn(o.port) as c:
        assert c.request("GET", "/?status=503").status == 503
        r = c.request("GET", "/?bytes=100000")
        assert r.header("content-length") == "100000"
        assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(100000)
        r = c.request("GET", "/?bytes=70000&chunked=1")
        assert r.header("transfer-encoding") == "chunked" and len(r.body) == 70000
        r = c.request("HEAD", "/?bytes=123")
        assert r.header("content-length") == "123" and r.body == b""
        r = c.request("GET", "/?status=204")
        assert r.status == 204 and r.body == b""
        r = c.request("GET", "/?header=X-A:%201")
        assert r.header("x-a") == "1"
        t0 = time.monotonic()
        assert c.request("GET", "/?delay_ms=300").status == 200
        assert time.monotonic() - t0 >= 0.28
        r = c.request("POST", "/p?echo=1", headers=[("X-One", "1"), ("x-one", "2")],
                      body=b"hello")
        e = r.json()
        assert e["method"] == "POST" and e["uri"] == "/p?echo=1"
        assert ["X-One", "1"] in e["headers"] and ["x-one", "2"] in e["headers"]
        assert e["body_len"] == 5
        assert e["body_sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_origin_close_mid_response(origins):
    o = origins("canary")
    s = socket.create_connection((LOOPBACK, o.port), timeout=5)
    s.sendall(b"GET /?bytes=1000&close=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_until_close(s, timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in head and len(body) == 500
    s.close()


def test_origin_drip(origins):
    o = origins("blue")
    with H1Conn(o.port) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/?drip_ms=100&bytes=50&piece=10")
        assert len(r.body) == 50 and time.monotonic() - t0 >= 0.38


def test_origin_survives_clients_that_vanish(origins):
    o = origins("blue")
    for _ in range(5):
        s = socket.create_connection((LOOPBACK, o.port), timeout=5)
        s.sendall(b"GET /?bytes=50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        s.close()
    with H1Conn(o.port) as c:
        try:
            assert c.request("GET", "/").status == 200
        except ConnectionClosed:
            raise AssertionError("origin died")
