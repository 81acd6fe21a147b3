"""HTTP/2 by prior knowledge on a plain listener (h2c), next to HTTP/1.1."""

import hashlib
import subprocess

import h2.settings

from conftest import track


def h2_proxy(cutover, origins, **kw):
    blue = origins("blue")
    return cutover(tracks=[track("blue", 1, blue)], **kw), blue


def test_h2c_prior_knowledge_get(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        st = c.request("GET", "/hello")
        assert st.status == 200 and bytes(st.data) == b"blue\n" and st.origin == "blue"
        # no hop-by-hop fields in an h2 response
        names = {k for k, _ in st.headers}
        assert not names & {"connection", "keep-alive", "transfer-encoding", "upgrade"}


def test_h2c_and_http1_on_the_same_listener(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h1() as c:
        assert c.request("GET", "/").status == 200
    with p.h2() as c:
        assert c.request("GET", "/").status == 200


def test_h2c_concurrent_streams(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        sids = [c.start("GET", f"/s{i}?echo=1&delay_ms={(20 - i) * 10}") for i in range(20)]
        out = c.wait(sids, timeout=10)
        for i, st in enumerate(out):
            assert st.status == 200 and st.json()["uri"] == f"/s{i}?echo=1&delay_ms={(20 - i) * 10}"
    assert blue.count() == 20


def test_h2c_request_translation(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        body = b"0123456789" * 1000
        st = c.request("POST", "/t?echo=1", headers=[
            ("x-keep", "yes"), ("cookie", "a=1"), ("cookie", "b=2"),
            ("content-type", "text/plain")], body=body, authority="app.test:8080")
        assert st.status == 200
        e = st.json()
        hs = [(k.lower(), v) for k, v in e["headers"]]
        names = [k for k, _ in hs]
        assert e["method"] == "POST" and e["uri"] == "/t?echo=1"
        assert e["version"] == "1.1"
        assert ("host", "app.test:8080") in hs
        assert not any(k.startswith(":") for k in names)
        assert ("x-keep", "yes") in hs
        # RFC 9113 8.2.3: cookie crumbs are joined with "; " for HTTP/1.1
        assert [v for k, v in hs if k == "cookie"] == ["a=1; b=2"]
        assert e["body_len"] == len(body)
        assert e["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert [v for k, v in hs if k == "x-forwarded-for"] == ["127.0.0.1"]
        assert [v for k, v in hs if k == "x-forwarded-proto"] == ["http"]


def test_h2c_response_fields(cutover, origins):
    """Origin fields reach h2 clients with lower-case names (any length,
    python3-h2 refuses upper case) and values intact; hop-by-hop ones, and
    those the origin's Connection names, do not."""
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        st = c.request("GET", "/?header=Connection:X-Resp-Hop&header=X-Resp-Hop:1"
                              "&header=Keep-Alive:timeout%3D99&header=X-A:B"
                              "&header=X-Mixed-CASE-Name-Longer-Than-16:Va%20Lue%20Z")
        assert st.status == 200 and bytes(st.data) == b"blue\n"
        assert st.header("x-a") == "B"
        assert st.header("x-mixed-case-name-longer-than-16") == "Va Lue Z"
        names = {k for k, _ in st.headers}
        assert not names & {"connection", "keep-alive", "x-resp-hop"}
        assert st.header("content-length") == "5"


def test_h2c_head_204_304(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        st = c.request("HEAD", "/?bytes=5000")
        assert st.status == 200 and st.ended and len(st.data) == 0
        for code in (204, 304):
            st = c.request("GET", f"/?status={code}")
            assert st.status == code and st.ended and len(st.data) == 0
        st = c.request("GET", "/?bytes=70000&chunked=1")
        assert st.status == 200 and len(st.data) == 70000


def test_h2c_proxy_errors(cutover, origins):
    from conftest import LOOPBACK, free_port, route
    blue = origins("blue")
    dead = f"{LOOPBACK}:{free_port()}"
    p = cutover(routes=[route([track("blue", 1, blue)], name="ok", path_prefix="/ok"),
                        route([track("blue", 1, dead)], name="down", path_prefix="/down")],
                timeouts={"upstream_ms": 500})
    with p.h2() as c:
        assert c.request("GET", "/nothing").status == 404
        assert c.request("GET", "/down").status == 502
        assert c.request("GET", "/ok?delay_ms=3000").status == 504
        assert c.request("GET", "/ok").status == 200


def test_h2c_settings_advertise_max_concurrent_streams(cutover, origins):
    p, blue = h2_proxy(cutover, origins, limits={"max_concurrent_streams": 17})
    with p.h2() as c:
        c.request("GET", "/")
        assert c.remote_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS) == 17


def test_h2c_upstream_cut_resets_stream(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    with p.h2() as c:
        st = c.request("GET", "/?bytes=1000000&close=1")
        # a truncated body must not end cleanly
        assert st.reset is not None or (st.status is not None and st.status >= 500), \
            f"ended={st.ended} got {st.received} bytes"
        assert c.request("GET", "/").status == 200  # the connection lives on


def test_h2c_with_curl(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-w",
                        "%{http_version} %{http_code}", p.url("/c")],
                       capture_output=True, timeout=20)
    assert r.stdout.decode().splitlines() == ["blue", "2 200"]


def test_h2c_with_nghttp(cutover, origins):
    p, blue = h2_proxy(cutover, origins)
    r = subprocess.run(["nghttp", "-n", "-s", p.url("/a"), p.url("/b")],
                       capture_output=True, timeout=20, text=True)
    assert r.returncode == 0, r.stderr
    assert blue.count() == 2
