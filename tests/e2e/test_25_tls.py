"""TLS listeners: ALPN picks h2 or http/1.1; TLS 1.2+ only."""

import socket
import ssl
import subprocess

import pytest

from conftest import LOOPBACK, H1Conn, client_ssl_context, track


@pytest.fixture
def tls_proxy(cutover, origins):
    blue = origins("blue")
    return cutover(tracks=[track("blue", 1, blue)], tls=True), blue


def test_tls_alpn_h2(tls_proxy):
    p, blue = tls_proxy
    with p.h2(tls=True) as c:
        assert c.alpn == "h2"
        st = c.request("GET", "/x?echo=1", scheme="https")
        assert st.status == 200 and st.origin == "blue"
        hs = [(k.lower(), v) for k, v in st.json()["headers"]]
        assert [v for k, v in hs if k == "x-forwarded-proto"] == ["https"]
        sids = [c.start("GET", f"/m{i}", scheme="https") for i in range(10)]
        assert all(s.status == 200 for s in c.wait(sids))


def test_tls_alpn_http11(tls_proxy):
    p, blue = tls_proxy
    with p.h1(tls=True, alpn=("http/1.1",)) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        for _ in range(5):
            r = c.request("GET", "/?echo=1")
            assert r.status == 200
        hs = [(k.lower(), v) for k, v in r.json()["headers"]]
        assert [v for k, v in hs if k == "x-forwarded-proto"] == ["https"]


def test_tls_without_alpn_speaks_http11(tls_proxy):
    p, blue = tls_proxy
    with H1Conn(p.tls_port, ssl_context=client_ssl_context(alpn=None)) as c:
        assert c.sock.selected_alpn_protocol() is None
        assert c.request("GET", "/").status == 200


def test_tls_plain_listener_still_works(tls_proxy):
    p, blue = tls_proxy
    assert p.get("/").status == 200


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_refuses_tls11(tls_proxy):
    p, blue = tls_proxy
    ctx = client_ssl_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    s = socket.create_connection((LOOPBACK, p.tls_port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(s, server_hostname="localhost")
    s.close()
    # and the listener is fine afterwards
    with p.h2(tls=True) as c:
        assert c.request("GET", "/", scheme="https").status == 200


def test_tls_garbage_does_not_hurt(tls_proxy):
    p, blue = tls_proxy
    s = socket.create_connection((LOOPBACK, p.tls_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plaintext on a TLS port
    s.settimeout(3)
    try:
        s.recv(1000)
    except OSError:
        pass
    s.close()
    assert p.alive()
    with p.h1(tls=True) as c:
        assert c.request("GET", "/").status == 200


def test_tls_h2_with_curl(tls_proxy):
    p, blue = tls_proxy
    r = subprocess.run(["curl", "-sk", "--http2", "-o", "-", "-w",
                        "%{http_version} %{http_code}", p.url("/c", tls=True)],
                       capture_output=True, timeout=20)
    assert r.stdout.decode().splitlines() == ["blue", "2 200"]
    r = subprocess.run(["curl", "-sk", "--http1.1", "-o", "-", "-w",
                        "%{http_version} %{http_code}", p.url("/c", tls=True)],
                       capture_output=True, timeout=20)
    assert r.stdout.decode().splitlines() == ["blue", "1.1 200"]
