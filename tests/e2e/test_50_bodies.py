"""Bodies stream with backpressure: 100 MB up and down with the proxy's RSS
under 64 MB, slow readers that never drain, clients that vanish mid-body."""

import hashlib
import socket
import time

import pytest

from conftest import (LOOPBACK, MB, RSS_LIMIT_KB, SANITIZED, H1Conn, build_request,
                      pattern_sha256, proc_status, run_in_thread, sample_rss_while, track)

BIG = 100 * MB


@pytest.fixture
def proxy(cutover, origins):
    blue = origins("blue")
    return cutover(tracks=[track("blue", 1, blue)], workers=2), blue


def check_rss(p, peak_kb, what):
    hwm = p.rss()["VmHWM"]
    print(f"{what}: proxy VmRSS peak sampled {peak_kb} kB, VmHWM {hwm} kB")
    if SANITIZED:
        return
    assert hwm < RSS_LIMIT_KB, f"{what}: proxy VmHWM {hwm} kB >= 64 MB"


def test_upload_100mb_rss_bounded(proxy):
    p, blue = proxy

    def upload():
        h = hashlib.sha256()
        block = bytes(range(256)) * 4096  # 1 MiB
        with p.h1(timeout=60) as c:
            c.send(build_request("POST", "/up?echo=1", headers=[("Content-Length", str(BIG))]))
            for _ in range(BIG // len(block)):
                c.send(block)
                h.update(block)
            r = c.read_response("POST")
        return r, h.hexdigest()

    t, box = run_in_thread(upload)
    peak = sample_rss_while(p.pid, t)
    t.join(120)
    assert "error" not in box, box.get("error")
    r, sha = box["result"]
    assert r.status == 200
    e = r.json()
    assert e["body_len"] == BIG and e["body_sha256"] == sha
    check_rss(p, peak, "100 MB upload")


def test_download_100mb_rss_bounded(proxy):
    p, blue = proxy

    def download():
        h = hashlib.sha256()
        with p.h1(timeout=60) as c:
            r = c.request("GET", f"/down?bytes={BIG}", sink=h.update)
        return r, h.hexdigest()

    t, box = run_in_thread(download)
    peak = sample_rss_while(p.pid, t)
    t.join(120)
    assert "error" not in box, box.get("error")
    r, sha = box["result"]
    assert r.status == 200 and r.header("content-length") == str(BIG)
    assert sha == pattern_sha256(BIG)
    check_rss(p, peak, "100 MB download")


def test_download_chunked_h2_32mb(proxy):
    p, blue = proxy
    n = 32 * MB
    h = hashlib.sha256()
    with p.h2(timeout=60, window=8 * MB) as c:
        st = c.request("GET", f"/?bytes={n}&chunked=1", sink=h.update, timeout=60)
    assert st.status == 200 and st.ended and st.received == n
    assert h.hexdigest() == pattern_sha256(n)
    check_rss(p, 0, "32 MB h2 download")


def test_upload_h2_16mb(proxy):
    p, blue = proxy
    body = bytes(range(256)) * (16 * 4096)
    with p.h2(timeout=60) as c:
        st = c.request("PUT", "/?echo=1", body=body, timeout=60)
    assert st.status == 200
    e = st.json()
    assert e["body_len"] == len(body)
    assert e["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_slow_reader_never_drains_h1(proxy):
    p, blue = proxy
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect((LOOPBACK, p.port))
    s.sendall(build_request("GET", "/?bytes=1000000000"))
    s.recv(1024)  # the head arrived; now never read again
    time.sleep(2.0)
    rss = p.rss()["VmRSS"]
    print(f"slow reader: proxy VmRSS {rss} kB")
    # the proxy serves others meanwhile
    with p.h1() as c:
        t0 = time.monotonic()
        assert c.request("GET", "/").status == 200
        assert time.monotonic() - t0 < 1.0
    if not SANITIZED:
        assert rss < RSS_LIMIT_KB
    s.close()


def test_slow_reader_never_drains_h2(proxy):
    p, blue = proxy
    with p.h2(auto_ack=False) as c:  # never sends WINDOW_UPDATE
        sid = c.start("GET", "/?bytes=1000000000")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            c.pump(0.2)
        got = c.streams[sid].received
        assert got <= 65535, got  # flow control honoured
        rss = p.rss()["VmRSS"]
        print(f"h2 slow reader: proxy VmRSS {rss} kB, client got {got} bytes")
        with p.h2() as c2:
            assert c2.request("GET", "/").status == 200
        if not SANITIZED:
            assert rss < RSS_LIMIT_KB


def test_client_disconnects_mid_body_proxy_keeps_serving(proxy):
    p, blue = proxy
    fds_before = p.fds()
    for _ in range(5):
        # mid request body
        s = socket.create_connection((LOOPBACK, p.port), timeout=5)
        s.sendall(build_request("POST", "/?echo=1", headers=[("Content-Length", str(50 * MB))]))
        s.sendall(b"x" * MB)
        s.close()
        # mid response body
        s = socket.create_connection((LOOPBACK, p.port), timeout=5)
        s.sendall(build_request("GET", f"/?bytes={BIG}"))
        got = 0
        while got < MB:
            got += len(s.recv(65536))
        s.close()
        # while the upstream is still thinking
        s = socket.create_connection((LOOPBACK, p.port), timeout=5)
        s.sendall(build_request("GET", "/?delay_ms=300"))
        s.close()
        # h2: reset a stream mid-download, then drop the connection
        with p.h2() as c:
            sid = c.start("GET", f"/?bytes={BIG}")
            while c.streams[sid].received < MB:
                c.pump(1.0)
            c.reset_stream(sid)
            assert c.request("GET", "/").status == 200
    with p.h1() as c:
        for i in range(20):
            r = c.request("GET", f"/after{i}?echo=1")
            assert r.status == 200 and r.json()["uri"] == f"/after{i}?echo=1"
    assert p.alive()
    # connections are released (upstream ones may linger in the idle pool)
    deadline = time.monotonic() + 5
    while p.fds() > fds_before + 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert p.fds() <= fds_before + 10, (fds_before, p.fds())
    check_rss(p, 0, "after disconnects")
