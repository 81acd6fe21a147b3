"""Malformed and hostile HTTP/1.1 responses from upstreams (tests/e2e/raw_origin.py
sends canned bytes per request path):

- a bad response head, before anything reached the client: 502;
- a failure after the head went out: the client's HTTP/1.1 connection is closed
  before the body completes, its HTTP/2 stream is reset;
- the upstream connection is never reused after a bad or suspect response, and
  bytes an upstream sends beyond its response never reach another request;
- the proxy keeps serving: a good request right after succeeds.
"""

import contextlib
import json
import socket
import time
from pathlib import Path

import pytest

import raw_origin  # the case table, shared with the origin process
from conftest import LOOPBACK, H1Conn, build_request, kill_pid, spawn_ready, track

PYTHON = "/usr/bin/python3"
RAW_ORIGIN = str(Path(__file__).resolve().parent / "raw_origin.py")


# ---------------------------------------------------------------------------
# the raw origin, a separate process stopped by PID


class RawOrigin:
    def __init__(self, proc, port, log_path):
        self.proc, self.pid, self.port = proc, proc.pid, port
        self.addr = f"{LOOPBACK}:{port}"
        self.log_path = log_path

    def _direct(self, path):
        with H1Conn(self.port, timeout=5) as c:
            return c.request("GET", path)

    def stats(self):
        """{connection id: [paths received, in order]}"""
        return json.loads(self._direct("/__stats").body)

    def reset(self):
        self._direct("/__reset")


def start_raw_origin(log_dir):
    log_path = Path(log_dir) / f"raw-origin-{time.monotonic_ns()}.log"
    proc, port = spawn_ready([PYTHON, RAW_ORIGIN, "-p", "0"], log_path, "raw origin")
    return RawOrigin(proc, port, log_path)


@pytest.fixture(scope="module")
def raw_up(tmp_path_factory):
    o = start_raw_origin(tmp_path_factory.mktemp("raw-origin"))
    yield o
    kill_pid(o.proc)
    with contextlib.suppress(Exception):
        o.proc.stdout.close()


@pytest.fixture
def bad(cutover, raw_up):
    """A proxy with one track on the raw origin (fresh stats)."""
    raw_up.reset()
    p = cutover(tracks=[track("blue", 1, raw_up.addr)], timeouts={"upstream_ms": 3000})
    return p, raw_up


# ---------------------------------------------------------------------------
# what each case must give

# a bad head: 502 before anything reached the client
BAD_HEAD = [
    "garbage", "garbage_binary", "html_no_head", "icy",
    "version_lowercase", "version_2_0", "version_1_2", "version_0_9", "version_no_minor",
    "version_long_minor",
    "status_099", "status_600", "status_1000", "status_abc", "status_2x0", "status_two_digits",
    "status_negative", "status_empty", "status_two_spaces", "reason_with_nul", "status_101",
    "header_no_colon", "space_before_colon", "empty_field_name", "bad_char_in_name",
    "bare_lf", "bare_lf_in_fields", "bare_lf_end", "bare_cr", "bare_cr_status",
    "nul_in_value", "ctl_in_value", "del_in_value", "crlf_injection",
    "obs_fold", "obs_fold_tab", "ws_before_first_field",
    "cl_two_values", "cl_list_differ", "cl_plus", "cl_minus", "cl_hex", "cl_garbage",
    "cl_inner_space", "cl_empty", "cl_overflow", "cl_2_64", "cl_2_63", "cl_above_2_62",
    "te_chunked_twice", "te_empty", "te_params",
    "te_gzip", "te_gzip_chunked", "te_chunked_gzip", "te_identity", "te_http10",
    "head_too_large", "head_too_large_no_end", "too_many_headers",
    "1xx_with_body", "1xx_then_garbage", "1xx_then_close",
    "close_before_head", "reset_before_head", "close_mid_status", "close_mid_head",
]

# the head went out, then the body failed: the client must see a cut response
CUT = [
    "close_after_head_cl", "close_after_head_cl_big", "close_after_head_chunked",
    "close_mid_chunk", "close_before_trailers_end", "reset_after_head_cl", "close_huge_cl",
    "chunk_nonhex", "chunk_negative", "chunk_0x", "chunk_overflow", "chunk_size_2_64",
    "chunk_empty_size", "chunk_missing_crlf", "chunk_too_long", "chunk_bare_lf",
    "chunk_bad_ext", "chunk_ext_too_long", "chunk_bad_trailer", "chunk_huge_trailers",
]

# a complete response for the client, but the upstream connection is suspect
# (framing overridden, or bytes beyond the response): closed, never reused.
# name -> (method, status, body)
COMPLETE_NOT_REUSED = {
    "te_and_cl": ("GET", 200, b"hello"),
    "te_and_cl_clean": ("GET", 200, b"hello"),
    "conn_close_kept_open": ("GET", 200, b"bye"),
    "http10_kept_open": ("GET", 200, b"old"),
    "extra_after_cl": ("GET", 200, b"hello"),
    "extra_after_chunked": ("GET", 200, b"hello"),
    "extra_after_empty": ("GET", 200, b""),
    "head_with_body": ("HEAD", 200, b""),
    "head_with_chunked_body": ("HEAD", 200, b""),
    "204_with_body": ("GET", 204, b""),
    "204_with_cl_body": ("GET", 204, b""),
    "304_with_body": ("GET", 304, b""),
    "close_delimited": ("GET", 200, b"until-close"),
}

# unusual but valid: served, and the connection may be reused
# name -> (status, body)
VALID = {
    "continue_then_ok": (200, b"after-100"),
    "early_hints_then_ok": (200, b"after-103"),
    "many_1xx_then_ok": (200, b"after-1000"),
    "split_1xx_then_ok": (200, b"split"),
    "http10_keepalive": (200, b"ten!"),
    "cl_list_same": (200, b"ok"),
    "cl_leading_zeros": (200, b"ok"),
    "chunk_ext_ok": (200, b"hello"),
    "empty_reason": (200, b"ok"),
    "obs_text_value": (200, b"ok"),
    "value_ows_trimmed": (200, b"ok"),
    "head_near_limit": (200, b"ok"),
    "many_headers_ok": (200, b"ok"),
    "hop_by_hop_fields": (200, b"ok"),
}

HOP_BY_HOP = ("connection", "x-drop", "keep-alive", "proxy-connection", "te", "upgrade",
              "trailer", "transfer-encoding")

# cases that were checked over h2c too (the exchange is shared; the fronts differ)
H2_BAD_HEAD = ["garbage", "status_600", "header_no_colon", "obs_fold", "nul_in_value",
               "cl_two_values", "cl_overflow", "te_gzip", "head_too_large", "too_many_headers",
               "status_101", "1xx_with_body", "close_before_head", "close_mid_head"]
H2_CUT = ["close_after_head_cl", "close_after_head_cl_big", "close_after_head_chunked",
          "reset_after_head_cl", "chunk_nonhex", "chunk_overflow", "chunk_missing_crlf",
          "chunk_bad_trailer"]


def test_every_case_is_classified():
    named = BAD_HEAD + CUT + list(COMPLETE_NOT_REUSED) + list(VALID)
    assert len(named) == len(set(named)), "a case is listed twice"
    unknown = set(named) - set(raw_origin.CASES)
    assert not unknown, unknown
    # these have tests of their own
    assert set(raw_origin.CASES) - set(named) == {"extra_after_cl_delayed", "head_trickle",
                                                  "1xx_trickle"}


# ---------------------------------------------------------------------------
# helpers


def read_to_close(c, timeout=5.0):
    """Whatever the proxy sends on H1Conn <c> until it closes: (bytes, closed).
    closed is False when the proxy kept the connection open for <timeout>."""
    data, c.buf = c.buf, b""
    deadline = time.monotonic() + timeout
    while len(data) < 8 << 20:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        c.sock.settimeout(left)
        try:
            ch = c.sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not ch:
            return data, True
        data += ch
    return data, False


def h1_complete(data):
    """True when <data> holds a complete HTTP/1.1 response (Content-Length or
    chunked framing; a response without either is never complete here)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        fields[k.strip().lower()] = v.strip()
    if b"content-length" in fields:
        return len(body) >= int(fields[b"content-length"])
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        # the last chunk and the end of the (empty) trailer section
        return body.endswith(b"\r\n0\r\n\r\n") or body == b"0\r\n\r\n"
    return False


def conn_of(stats, path):
    """The ids of the upstream connections that received <path>."""
    return [cid for cid, paths in stats.items() if path in paths]


def assert_not_reused(origin, path):
    """No upstream connection got a request after <path> (the proxy dropped it)."""
    stats = origin.stats()
    cids = conn_of(stats, path)
    assert cids, f"the origin never saw {path}: {stats}"
    for cid in cids:
        paths = stats[cid]
        assert paths[-1] == path, f"connection {cid} reused after {path}: {paths}"


def assert_still_serving(p, origin, h2=False):
    """Good requests right after succeed, on fresh upstream connections, and
    none of them gets bytes an upstream sent beyond a response."""
    for i in range(3):
        path = f"/ok/after{i}"
        if h2:
            with p.h2() as c:
                st = c.request("GET", path)
                status, body = st.status, bytes(st.data)
        else:
            r = p.get(path)
            status, body = r.status, r.body
        assert status == 200, (status, body)
        assert b"SMUGGLED" not in body
        assert body.endswith(b"path=" + path.encode()), body
    assert p.alive()


def warm(c):
    """One good request on client connection <c>, so that an idle upstream
    connection is in the pool for the case that follows: it runs on a reused
    connection. Returns that connection's id."""
    r = c.request("GET", "/ok/warm")
    assert r.status == 200, r
    return r.header("x-conn")


# ---------------------------------------------------------------------------
# HTTP/1.1 clients


@pytest.mark.parametrize("name", BAD_HEAD)
def test_bad_head_502_h1(bad, name):
    p, origin = bad
    path = f"/case/{name}"
    with p.h1() as c:
        warm(c)
        t0 = time.monotonic()
        c.send(build_request("GET", path))
        r = c.read_response("GET")
        took = time.monotonic() - t0
    assert r.status == 502, (r, r.body)
    assert r.body == b"502 Bad Gateway\n"
    assert r.header("x-smuggled") is None
    assert took < 2.5, took  # never waited for the upstream timeout (3 s)
    assert_not_reused(origin, path)
    assert_still_serving(p, origin)


@pytest.mark.parametrize("name", CUT)
def test_cut_after_head_h1(bad, name):
    p, origin = bad
    path = f"/case/{name}"
    with p.h1() as c:
        warm(c)
        c.send(build_request("GET", path))
        data, closed = read_to_close(c, timeout=5.0)
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert closed, "the proxy kept the client connection after a failed body"
    assert not h1_complete(data), "a failed upstream body was delivered as complete"
    assert_not_reused(origin, path)
    assert_still_serving(p, origin)


@pytest.mark.parametrize("name", sorted(COMPLETE_NOT_REUSED))
def test_complete_but_not_reused_h1(bad, name):
    p, origin = bad
    method, status, body = COMPLETE_NOT_REUSED[name]
    path = f"/case/{name}"
    with p.h1() as c:
        up = warm(c)
        r = c.request(method, path)
        assert (r.status, r.body) == (status, body)
        assert r.header("x-smuggled") is None
        # the same client connection goes on: another upstream connection
        r = c.request("GET", "/ok/next")
        assert r.status == 200 and b"SMUGGLED" not in r.body, r.body
        assert r.header("x-conn") != up
    assert_not_reused(origin, path)
    assert_still_serving(p, origin)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_unusual_responses_h1(bad, name):
    p, origin = bad
    status, body = VALID[name]
    with p.h1() as c:
        warm(c)
        for _ in range(2):
            r = c.request("GET", f"/case/{name}")
            assert (r.status, r.body) == (status, body)
            # the proxy's own framing and connection fields only
            assert not [k for k, _ in r.headers
                        if k in HOP_BY_HOP and k not in ("connection", "transfer-encoding")]
            assert r.header_all("transfer-encoding") in ([], ["chunked"])
            assert r.header_all("connection") in ([], ["close"])
        r = c.request("GET", "/ok/next")
        assert r.status == 200
    assert_still_serving(p, origin)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_unusual_responses_h2(bad, name):
    """python3-h2 also refuses connection-specific fields (RFC 9113 8.2.2)."""
    p, origin = bad
    status, body = VALID[name]
    with p.h2() as c:
        for _ in range(2):
            st = c.request("GET", f"/case/{name}")
            assert (st.status, bytes(st.data), st.ended) == (status, body, True)
            assert not [k for k, _ in st.headers if k in HOP_BY_HOP]
        assert c.request("GET", "/ok/next").status == 200


def test_valid_responses_keep_the_connection(bad):
    """The control for the not-reused checks: keep-alive responses, 1xx
    included, do leave the upstream connection in the pool."""
    p, origin = bad
    with p.h1() as c:
        up = warm(c)
        for name in ("continue_then_ok", "early_hints_then_ok", "cl_list_same",
                     "http10_keepalive", "chunk_ext_ok"):
            assert c.request("GET", f"/case/{name}").status == 200
        r = c.request("GET", "/ok/last")
        assert r.header("x-conn") == up, "a valid response closed the upstream connection"
    assert len(origin.stats()) == 1


def test_pipelined_request_after_extra_bytes_not_smuggled(bad):
    """Two pipelined requests: the upstream answers the first with an extra,
    complete response after it. The second request must get its own answer."""
    p, origin = bad
    with p.h1() as c:
        warm(c)
        c.send(build_request("GET", "/case/extra_after_cl") + build_request("GET", "/ok/second"))
        r1 = c.read_response("GET")
        r2 = c.read_response("GET")
    assert (r1.status, r1.body) == (200, b"hello")
    assert r2.status == 200 and r2.body.endswith(b"path=/ok/second"), r2.body
    assert_not_reused(origin, "/case/extra_after_cl")


def test_late_extra_bytes_close_the_idle_connection(bad):
    """Extra bytes that arrive after the response, while the connection idles
    in the pool: the pool drops it rather than give them to the next request."""
    p, origin = bad
    with p.h1() as c:
        warm(c)
        r = c.request("GET", "/case/extra_after_cl_delayed")
        assert (r.status, r.body) == (200, b"hello")
        time.sleep(0.4)  # the extra response arrives at 0.1 s
        for i in range(3):
            r = c.request("GET", f"/ok/later{i}")
            assert r.status == 200 and r.body.endswith(b"path=/ok/later%d" % i), r.body
    assert_not_reused(origin, "/case/extra_after_cl_delayed")


def test_bad_responses_back_to_back(bad):
    """Many bad responses on one client connection, with pooled upstream
    connections between: every one is a 502 or a cut, the proxy never reuses
    one of those upstream connections, and the good ones keep working."""
    p, origin = bad
    names = BAD_HEAD[:20] + ["extra_after_cl", "te_and_cl", "204_with_body"]
    with p.h1() as c:
        for name in names:
            method = COMPLETE_NOT_REUSED.get(name, ("GET",))[0]
            r = c.request(method, f"/case/{name}")
            want = COMPLETE_NOT_REUSED.get(name, (None, 502))[1]
            assert r.status == want, (name, r)
            assert b"SMUGGLED" not in (r.body or b"")
            r = c.request("GET", f"/ok/{name}")
            assert r.status == 200 and r.body.endswith(f"path=/ok/{name}".encode()), r.body
    stats = origin.stats()
    for name in names:
        assert_not_reused(origin, f"/case/{name}")
    assert sum(len(v) for v in stats.values()) >= 2 * len(names)
    assert p.alive()


def test_http10_client_gets_502(bad):
    p, origin = bad
    with p.h1() as c:
        c.send(build_request("GET", "/case/garbage", version="HTTP/1.0"))
        r = c.read_response("GET")
    assert r.status == 502
    assert_still_serving(p, origin)


# ---------------------------------------------------------------------------
# HTTP/2 clients (h2c)


@pytest.mark.parametrize("name", H2_BAD_HEAD)
def test_bad_head_502_h2(bad, name):
    p, origin = bad
    path = f"/case/{name}"
    with p.h2() as c:
        assert c.request("GET", "/ok/warm").status == 200
        st = c.request("GET", path)
        assert st.status == 502 and st.ended and st.reset is None, (st.status, st.reset)
        assert bytes(st.data) == b"502 Bad Gateway\n"
        # the connection and its other streams go on
        st = c.request("GET", "/ok/same-conn")
        assert st.status == 200 and bytes(st.data).endswith(b"path=/ok/same-conn")
    assert_not_reused(origin, path)
    assert_still_serving(p, origin, h2=True)


@pytest.mark.parametrize("name", H2_CUT)
def test_cut_after_head_h2(bad, name):
    p, origin = bad
    path = f"/case/{name}"
    with p.h2() as c:
        assert c.request("GET", "/ok/warm").status == 200
        st = c.request("GET", path)
        assert st.reset is not None and not st.ended, (st.status, st.reset, st.ended)
        assert st.status in (None, 200)
        st = c.request("GET", "/ok/same-conn")
        assert st.status == 200 and bytes(st.data).endswith(b"path=/ok/same-conn")
    assert_not_reused(origin, path)
    assert_still_serving(p, origin, h2=True)


@pytest.mark.parametrize("name", ["te_and_cl", "te_and_cl_clean", "extra_after_cl",
                                  "head_with_body", "204_with_body"])
def test_complete_but_not_reused_h2(bad, name):
    p, origin = bad
    method, status, body = COMPLETE_NOT_REUSED[name]
    path = f"/case/{name}"
    with p.h2() as c:
        assert c.request("GET", "/ok/warm").status == 200
        st = c.request(method, path)
        assert (st.status, bytes(st.data), st.ended) == (status, body, True)
        st = c.request("GET", "/ok/next")
        assert st.status == 200 and b"SMUGGLED" not in st.data
    assert_not_reused(origin, path)
    assert_still_serving(p, origin, h2=True)


def test_h2_concurrent_streams_one_bad(bad):
    """A bad response on one stream leaves the others on the same connection
    alone."""
    p, origin = bad
    with p.h2() as c:
        sids = [c.start("GET", f"/ok/s{i}") for i in range(4)]
        bad_sid = c.start("GET", "/case/garbage")
        cut_sid = c.start("GET", "/case/chunk_nonhex")
        sts = c.wait(sids + [bad_sid, cut_sid])
        for st in sts[:4]:
            assert st.status == 200 and st.ended
        assert sts[4].status == 502
        assert sts[5].reset is not None and not sts[5].ended
    assert_not_reused(origin, "/case/garbage")
    assert_not_reused(origin, "/case/chunk_nonhex")
    assert_still_serving(p, origin, h2=True)


@pytest.mark.parametrize("name", ["head_trickle", "1xx_trickle"])
def test_trickling_head_times_out_504(bad, name):
    """An upstream that keeps sending bits of a head (or 1xx after 1xx) gets
    upstream_ms (3 s) for the whole of it, not per read."""
    p, origin = bad
    with p.h1(timeout=15) as c:
        t0 = time.monotonic()
        r = c.request("GET", f"/case/{name}")
        took = time.monotonic() - t0
    assert r.status == 504, r
    assert 2.5 <= took < 6.0, took
    assert_not_reused(origin, f"/case/{name}")
    assert_still_serving(p, origin)


def test_big_valid_heads_h2(bad):
    p, origin = bad
    with p.h2() as c:
        st = c.request("GET", "/case/head_near_limit")
        assert st.status == 200 and bytes(st.data) == b"ok"
        assert st.header("x-big") == "x" * 60000
        st = c.request("GET", "/case/many_headers_ok")
        assert st.status == 200 and st.header("x-h249") == "v249"


def test_request_body_then_bad_response(bad):
    """A POST whose upstream answers garbage or cuts the body: same outcome,
    and the client connection is not left waiting."""
    p, origin = bad
    body = b"p" * 200000
    with p.h1() as c:
        r = c.request("POST", "/case/garbage", body=body)
        assert r.status == 502
        r = c.request("POST", "/ok/post", body=body)
        assert r.status == 200
    with p.h1() as c:
        c.send(build_request("POST", "/case/chunk_nonhex", body=body))
        data, closed = read_to_close(c)
        assert data.startswith(b"HTTP/1.1 200 ") and closed and not h1_complete(data)
    with p.h2() as c:
        st = c.request("POST", "/case/garbage", body=body)
        assert st.status == 502
        st = c.request("POST", "/case/close_after_head_cl", body=body)
        assert st.reset is not None and not st.ended
    assert_not_reused(origin, "/case/garbage")
    assert_still_serving(p, origin)
