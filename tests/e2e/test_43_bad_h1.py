"""Malformed and hostile HTTP/1.1 requests: the request-smuggling surface of an
HTTP/1.1 -> HTTP/1.1 proxy (RFC 9112; nginx and HAProxy where the RFC leaves
a choice).

For every case the tests check:

- the client's answer (400, 413, 414, 431, 501, 505, or the origin's response
  for what is well-formed);
- what the origin received, by count (GET /__count) and by content (echo=1):
  never a second, smuggled request, never one framed otherwise than the proxy
  decided, never a body cut short that looks complete;
- that the connection is closed after any framing error, with no further
  request parsed from the bytes behind it (every attack carries a pipelined
  request that must not be served);
- that the proxy keeps serving (a new connection's request succeeds).
"""

import json
import socket
import time

import pytest

from conftest import LOOPBACK, track

LIMITS = {"max_request_line": 1024, "max_header_size": 8192, "max_headers": 50,
          "max_body_size": 100000}

# pipelined behind every attack: it must never reach the origin when the
# attack is refused, and it is what a smuggled request would look like
SMUG = b"GET /smuggled?echo=1 HTTP/1.1\r\nHost: test\r\n\r\n"
NEXT = b"GET /next?echo=1 HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture
def env(cutover, origins):
    blue = origins("blue")
    p = cutover(tracks=[track("blue", 1, blue)], limits=LIMITS,
                timeouts={"header_ms": 3000, "idle_ms": 5000})
    return p, blue


# ---------------------------------------------------------------------------
# helpers (bounded in time and size)


def exchange(p, data, timeout=5.0, shut=False):
    """Sends <data> on a new connection and reads until the proxy closes or
    <timeout> passes. Returns (bytes received, closed by the proxy)."""
    s = socket.create_connection((LOOPBACK, p.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        out = b""
        while time.monotonic() < deadline and len(out) < (1 << 20):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                ch = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not ch:
                return out, True
            out += ch
        return out, False
    finally:
        s.close()


def parse_responses(data, limit=10):
    """Splits <data> into responses: [(status, {lower name: value}, body)].
    A trailing incomplete response is returned with status None."""
    out = []
    rest = data
    while rest and len(out) < limit:
        head, sep, after = rest.partition(b"\r\n\r\n")
        if not sep:
            out.append((None, {}, rest))
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if status is None:
            out.append((None, hdrs, after))
            break
        if 100 <= status < 200:
            out.append((status, hdrs, b""))
            rest = after
            continue
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            body, rest = after[:n], after[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            rest = after
            while True:
                line, sep, rest = rest.partition(b"\r\n")
                if not sep:
                    break
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    rest = rest.partition(b"\r\n")[2]
                    break
                body += rest[:n]
                rest = rest[n + 2:]
        else:
            body, rest = after, b""
        out.append((status, hdrs, body))
    return out


def final_statuses(data):
    return [s for s, _, _ in parse_responses(data) if s is None or s >= 200]


def assert_serving(p, origin):
    """A good request on a new connection succeeds, and the proxy lives."""
    r = p.get("/?echo=1")
    assert r.status == 200 and r.origin == origin.name
    assert p.alive()


def echo_of(body):
    return json.loads(body)


def hdr_values(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name]


def refused(p, origin, data, status, served=0):
    """<data> (with SMUG behind it) gets one <status> and a close; the origin
    served <served> requests, never the smuggled one."""
    out, closed = exchange(p, data + SMUG)
    st = final_statuses(out)
    assert st[-1:] == [status], out[:400]
    assert len(st) == served + 1, out[:400]
    assert b"/smuggled" not in out
    assert closed, "connection left open after a framing error"
    assert origin.count() == served
    assert_serving(p, origin)


# ---------------------------------------------------------------------------
# refused outright: the head is bad, nothing reaches the origin

H = b"Host: test\r\n"
POST = b"POST /?echo=1 HTTP/1.1\r\n" + H
GET = b"GET /?echo=1 HTTP/1.1\r\n" + H

REFUSED = [
    # --- CL.TE / TE.CL: both framings at once (nginx and HAProxy's strict
    # mode answer 400; RFC 9112 6.3 allows it for requests)
    ("cl_te", POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400),
    ("te_cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
     400),
    ("cl0_te", POST + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    ("te_cl_list", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5, 5\r\n\r\n0\r\n\r\n",
     400),
    # --- Transfer-Encoding obfuscations
    ("te_chunked_identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
    ("te_identity", POST + b"Transfer-Encoding: identity\r\n\r\n", 501),
    ("te_gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("te_gzip_chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("te_x_chunked", POST + b"Transfer-Encoding: x-chunked\r\n\r\n0\r\n\r\n", 501),
    ("te_chunkedx", POST + b"Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", 501),
    ("te_two_fields_chunked", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("te_two_fields_gzip", POST + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 501),
    ("te_chunked_chunked", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_params", POST + b"Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400),
    ("te_empty", POST + b"Transfer-Encoding: \r\n\r\n", 400),
    # empty list elements are refused in Transfer-Encoding (RFC 9110 5.6.1.2 lets
    # a recipient ignore them; this one is strict, on the field that frames)
    ("te_trailing_comma", POST + b"Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400),
    ("te_empty_element", POST + b"Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_quoted", POST + b'Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n', 400),
    ("te_vtab", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", 400),
    ("te_http10", b"POST /?echo=1 HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    ("te_space_before_colon", POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_tab_before_colon", POST + b"Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_obs_fold", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_obs_fold_after", POST + b"X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_leading_space_name", POST + b" Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    # --- Content-Length
    ("cl_conflict", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl_list_conflict", POST + b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("cl_plus", POST + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl_minus", POST + b"Content-Length: -1\r\n\r\n", 400),
    ("cl_hex", POST + b"Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl_float", POST + b"Content-Length: 5.0\r\n\r\nhello", 400),
    ("cl_inner_space", POST + b"Content-Length: 1 5\r\n\r\nhello", 400),
    ("cl_empty", POST + b"Content-Length: \r\n\r\n", 400),
    ("cl_trailing_comma", POST + b"Content-Length: 5,\r\n\r\nhello", 400),
    ("cl_overflow_2_64", POST + b"Content-Length: 18446744073709551621\r\n\r\nhello", 400),
    ("cl_overflow_long", POST + b"Content-Length: " + b"9" * 40 + b"\r\n\r\nhello", 400),
    ("cl_above_2_62", POST + b"Content-Length: 4611686018427387905\r\n\r\nhello", 400),
    ("cl_space_before_colon", POST + b"Content-Length : 5\r\n\r\nhello", 400),
    ("cl_nul", POST + b"Content-Length: 5\x00\r\n\r\nhello", 400),
    ("cl_too_large", POST + b"Content-Length: 100001\r\n\r\nhello", 413),
    # --- request line
    ("asterisk_get", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("authority_form_get", b"GET test:80 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("fragment", b"GET /a#frag HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space_in_target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("tab_in_target", b"GET /a\tb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del_in_target", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("two_spaces", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("tab_separator", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("trailing_space", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("leading_space", b" GET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("no_version", b"GET /\r\n" + H + b"\r\n", 400),
    ("http09", b"GET /\r\n\r\n", 400),
    ("version_lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("version_1_2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    ("version_2_0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("version_0_9", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    ("version_1_10", b"GET / HTTP/1.10\r\n" + H + b"\r\n", 400),
    ("version_1", b"GET / HTTP/1\r\n" + H + b"\r\n", 400),
    ("bare_lf_request_line", b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    ("bare_cr_request_line", b"GET / HTTP/1.1\r" + H + b"\r\n", 400),
    ("method_not_token", b"GE(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method_long", b"X" * 10000 + b" / HTTP/1.1\r\n" + H + b"\r\n", 431),
    ("target_long", b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("connect", b"CONNECT test:443 HTTP/1.1\r\nHost: test:443\r\n\r\n", 501),
    ("connect_with_tunnel_bytes", b"CONNECT test:443 HTTP/1.1\r\nHost: test:443\r\n\r\n"
     b"\x16\x03\x01\x00\x05hello", 501),
    ("connect_origin_form", b"CONNECT / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("absolute_bad_scheme", b"GET 1http://test/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("absolute_no_slashes", b"GET http:test/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    # --- Host
    ("no_host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: test\r\nHost: evil\r\n\r\n", 400),
    ("two_hosts_same", b"GET / HTTP/1.1\r\nHost: test\r\nHost: test\r\n\r\n", 400),
    ("host_userinfo", b"GET / HTTP/1.1\r\nHost: evil@test\r\n\r\n", 400),
    ("host_slash", b"GET / HTTP/1.1\r\nHost: test/evil\r\n\r\n", 400),
    ("host_space", b"GET / HTTP/1.1\r\nHost: te st\r\n\r\n", 400),
    ("host_comma", b"GET / HTTP/1.1\r\nHost: test, evil\r\n\r\n", 400),
    ("host_space_before_colon", b"GET / HTTP/1.1\r\nHost : test\r\n\r\n", 400),
    # --- header fields
    ("obs_fold", GET + b"X-A: b\r\n c\r\n\r\n", 400),
    ("obs_fold_tab", GET + b"X-A: b\r\n\tc\r\n\r\n", 400),
    ("nul_in_value", GET + b"X-A: b\x00c\r\n\r\n", 400),
    ("cr_in_value", GET + b"X-A: b\rc\r\n\r\n", 400),
    ("bare_lf_in_head", GET + b"X-A: b\nX-B: c\r\n\r\n", 400),
    ("bare_lf_end", GET + b"X-A: b\n\n", 400),
    ("ctl_in_value", GET + b"X-A: b\x01c\r\n\r\n", 400),
    ("del_in_value", GET + b"X-A: b\x7fc\r\n\r\n", 400),
    ("esc_in_value", GET + b"X-A: b\x1bc\r\n\r\n", 400),
    ("name_trailing_space", GET + b"X-A : b\r\n\r\n", 400),
    ("name_not_token", GET + b"X[A]: b\r\n\r\n", 400),
    ("name_empty", GET + b": b\r\n\r\n", 400),
    ("no_colon", GET + b"X-A b\r\n\r\n", 400),
    ("name_high_byte", GET + b"X-\xc3\xa9: b\r\n\r\n", 400),
    ("upgrade_websocket", GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 501),
    ("upgrade_h2c", GET + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
     b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 501),
    ("upgrade_without_connection", GET + b"Upgrade: websocket\r\n\r\n", 501),
    ("too_many_headers", GET + b"".join(b"X-N%d: 1\r\n" % i for i in range(60)) + b"\r\n", 431),
    ("head_too_large", GET + b"X-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
]


@pytest.mark.parametrize("name,data,status", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(env, name, data, status):
    p, blue = env
    refused(p, blue, data, status)


# ---------------------------------------------------------------------------
# bad chunked bodies: the head was valid (it may already be on its way to the
# origin), the body is not; 400, close, and the origin never sees a complete
# request

CH = POST + b"Transfer-Encoding: chunked\r\n\r\n"

BAD_CHUNKED = [
    ("chunk_nonhex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk_negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_0x", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_space_before_size", b" 5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_empty_size", b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_overflow_2_64", b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk_16_digits", b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("chunk_leading_zeros_16", b"0000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk_missing_crlf", b"5\r\nhelloXX\r\n0\r\n\r\n"),
    ("chunk_data_too_long", b"3\r\nhello\r\n0\r\n\r\n"),
    ("chunk_bare_lf_size", b"5\nhello\r\n0\r\n\r\n"),
    ("chunk_bare_lf_data", b"5\r\nhello\n0\r\n\r\n"),
    ("chunk_bare_cr_size", b"5\rhello\r\n0\r\n\r\n"),
    ("chunk_bare_lf_last", b"5\r\nhello\r\n0\n\r\n"),
    ("chunk_bare_lf_end", b"5\r\nhello\r\n0\r\n\n"),
    ("chunk_ext_bad", b"5;=x\r\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_quoted_crlf", b'5;a="x\r\nhello\r\n0\r\n\r\n'),
    ("chunk_ext_quoted_lf", b'5;a="x\ny"\r\nhello\r\n0\r\n\r\n'),
    ("chunk_ext_nul", b"5;a=\x00\r\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_too_long", b"5;a=" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_many", b"5" + b";a" * 3000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_after_good_chunk", b"5\r\nhello\r\nzz\r\n0\r\n\r\n"),
    ("trailer_no_colon", b"5\r\nhello\r\n0\r\nX-T\r\n\r\n"),
    ("trailer_obs_fold", b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
    ("trailer_space_name", b"5\r\nhello\r\n0\r\nX T: a\r\n\r\n"),
    ("trailer_bare_lf", b"5\r\nhello\r\n0\r\nX-T: a\n\r\n"),
    ("trailer_nul", b"5\r\nhello\r\n0\r\nX-T: a\x00\r\n\r\n"),
]


@pytest.mark.parametrize("name,body", BAD_CHUNKED, ids=[c[0] for c in BAD_CHUNKED])
def test_bad_chunked_body(env, name, body):
    p, blue = env
    refused(p, blue, CH + body, 400)


def test_chunked_huge_trailers_431(env):
    p, blue = env
    body = b"5\r\nhello\r\n0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 100)
                                             for i in range(100)) + b"\r\n"
    refused(p, blue, CH + body, 431)


def test_chunked_body_larger_than_max_body_size_413(env):
    p, blue = env  # max_body_size = 100000
    chunk = b"x" * 50000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    out, closed = exchange(p, CH + body + SMUG)
    st = final_statuses(out)
    assert st == [413], out[:300]
    assert closed
    assert blue.count() == 0
    assert_serving(p, blue)


def test_chunked_huge_size_no_data(env):
    """A 15-digit chunk size is valid; the data never comes. The client's EOF
    (or the idle timeout) ends it; the origin never sees a complete request."""
    p, blue = env
    out, closed = exchange(p, CH + b"fffffffffffffff\r\nabc", shut=True)
    assert closed
    assert final_statuses(out) in ([], [413]), out[:300]
    assert blue.count() == 0
    assert_serving(p, blue)


# ---------------------------------------------------------------------------
# accepted, and framed upstream exactly as the proxy read them: the pipelined
# request behind is served as its own request, with its own path


def served_pair(p, origin, first):
    """<first>, NEXT and a closing GET on one connection: three 200s from the
    origin; returns the echo of the first."""
    before = origin.count()
    out, closed = exchange(p, first + NEXT + b"GET / HTTP/1.1\r\nHost: test\r\n"
                           b"Connection: close\r\n\r\n")
    rs = [r for r in parse_responses(out) if r[0] is None or r[0] >= 200]
    assert [r[0] for r in rs] == [200, 200, 200], out[:600]
    assert closed
    a, b = echo_of(rs[0][2]), echo_of(rs[1][2])
    assert b["uri"] == "/next?echo=1"
    assert origin.count() == before + 3
    return a


ACCEPTED_BODY = [
    ("te_chunked_upper", CH.replace(b"chunked", b"Chunked"), b"5\r\nhello\r\n0\r\n\r\n"),
    ("te_chunked_allcaps", CH.replace(b"chunked", b"CHUNKED"), b"5\r\nhello\r\n0\r\n\r\n"),
    ("te_trailing_space", CH.replace(b"chunked", b"chunked "), b"5\r\nhello\r\n0\r\n\r\n"),
    ("te_leading_tab", CH.replace(b"chunked", b"\tchunked"), b"5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_leading_zeros", CH, b"0005\r\nhello\r\n000\r\n\r\n"),
    ("chunk_upper_hex", CH, b"A\r\nhellohello\r\n0\r\n\r\n"),
    ("chunk_ext_ok", CH, b'5;a=b;c="d\\"e";f\r\nhello\r\n0;z\r\n\r\n'),
    ("chunk_ext_bws", CH, b"5 ; a = b\r\nhello\r\n0\r\n\r\n"),
    ("cl_duplicate_equal", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", b"hello"),
    ("cl_list_equal", POST + b"Content-Length: 5, 5\r\n\r\n", b"hello"),
    ("cl_leading_zeros", POST + b"Content-Length: 005\r\n\r\n", b"hello"),
    ("cl_ows", POST + b"Content-Length:  5 \r\n\r\n", b"hello"),
    ("cl_on_get", GET + b"Content-Length: %d\r\n\r\n" % len(SMUG), SMUG),
    ("connection_names_cl", POST + b"Connection: Content-Length\r\nContent-Length: 5\r\n\r\n",
     b"hello"),
    ("connection_names_te", CH.replace(b"Transfer-Encoding", b"Connection: Transfer-Encoding\r\n"
                                       b"Transfer-Encoding"), b"5\r\nhello\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("name,head,body", ACCEPTED_BODY, ids=[c[0] for c in ACCEPTED_BODY])
def test_accepted_body_framing(env, name, head, body):
    p, blue = env
    a = served_pair(p, blue, head + body)
    data = b"hello" if b"hello" in body and name != "cl_on_get" else body
    if name == "chunk_upper_hex":
        data = b"hellohello"
    import hashlib
    assert a["body_len"] == len(data)
    assert a["body_sha256"] == hashlib.sha256(data).hexdigest()
    # the origin sees one framing, the proxy's: never both, never the client's TE
    te = hdr_values(a, "transfer-encoding")
    cl = hdr_values(a, "content-length")
    assert len(te) + len(cl) == 1, a["headers"]
    assert cl in ([], [str(len(data))])
    assert_serving(p, blue)


def test_trailers_are_not_forwarded(env):
    """Trailers are validated and dropped, forbidden fields included: none of
    them becomes a header field upstream, none changes the framing."""
    p, blue = env
    body = (b"5\r\nhello\r\n0\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n"
            b"Host: evil\r\nX-Trailer: t\r\n\r\n")
    a = served_pair(p, blue, CH.replace(b"Transfer-Encoding", b"Trailer: X-Trailer\r\n"
                                        b"Transfer-Encoding") + body)
    assert a["body_len"] == 5
    names = [k.lower() for k, _ in a["headers"]]
    assert "x-trailer" not in names and "trailer" not in names
    assert hdr_values(a, "host") == ["test"]
    assert hdr_values(a, "content-length") == [] or hdr_values(a, "content-length") == ["5"]


def test_hop_by_hop_fields_stripped(env):
    p, blue = env
    a = served_pair(p, blue, GET + b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                    b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                    b"Trailer: X-T\r\nX-Kept: 1\r\n\r\n")
    names = [k.lower() for k, _ in a["headers"]]
    for n in ("x-hop", "keep-alive", "proxy-connection", "te", "trailer"):
        assert n not in names, a["headers"]
    assert "x-kept" in names


def test_expect_unknown_is_ignored(env):
    """An expectation other than 100-continue is ignored and not forwarded,
    as nginx and HAProxy do (RFC 9110 10.1.1 allows 417 but does not require it)."""
    p, blue = env
    a = served_pair(p, blue, POST + b"Expect: x-foo\r\nContent-Length: 5\r\n\r\nhello")
    assert a["body_len"] == 5 and hdr_values(a, "expect") == []


def test_lowercase_and_long_methods_pass_through(env):
    """Methods are case-sensitive tokens (RFC 9110 9.1): "get" is not GET,
    but it is a valid method, forwarded as is (HAProxy does the same)."""
    p, blue = env
    out, closed = exchange(p, b"get /?echo=1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    rs = parse_responses(out)
    # the origin (evhttp) answers unknown methods itself, 501 without X-Origin:
    # what matters is that it came from the origin, not from the proxy's parser
    assert len(rs) == 1 and closed and rs[0][0] is not None
    assert rs[0][1].get("content-type") != "text/plain", out[:300]
    method = b"M" * 500
    out, closed = exchange(p, method + b" /?echo=1 HTTP/1.1\r\nHost: test\r\nConnection: close"
                           b"\r\n\r\n")
    rs = parse_responses(out)
    assert len(rs) == 1 and closed and rs[0][1].get("content-type") != "text/plain", out[:300]
    assert_serving(p, blue)


def test_absolute_form_routes_and_forwards_origin_form(env):
    """RFC 9112 3.2.2: with an absolute-form target the Host field is ignored
    and the target's authority is the host; the origin gets origin-form and
    that authority as Host, so the proxy and the origin agree on the host."""
    p, blue = env
    a = served_pair(p, blue, b"GET http://other.example/a/b?echo=1 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert a["uri"] == "/a/b?echo=1"
    assert hdr_values(a, "host") == ["other.example"]
    # no path: "/"; a port stays in Host
    a = served_pair(p, blue, b"GET http://other.example:8080?echo=1 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert a["uri"] == "/?echo=1"
    assert hdr_values(a, "host") == ["other.example:8080"]


@pytest.mark.parametrize("target", [b"http://evil@test/", b"http://a:b@test/", b"http:///a",
                                    b"http://te st/", b"http://test/a#b"])
def test_absolute_form_bad_authority_400(env, target):
    p, blue = env
    refused(p, blue, b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n\r\n", 400)


def test_absolute_form_routes_by_its_authority(cutover, origins):
    """The route is picked by the target's authority, not by the Host field."""
    blue, green = origins("blue", "green")
    from conftest import route
    p = cutover(routes=[route([track("green", 1, green)], name="g", host="green.example"),
                        route([track("blue", 1, blue)], name="b", host="*")])
    out, closed = exchange(p, b"GET http://green.example/?echo=1 HTTP/1.1\r\nHost: blue.example"
                           b"\r\nConnection: close\r\n\r\n")
    rs = parse_responses(out)
    assert rs[0][0] == 200 and rs[0][1].get("x-origin") == "green", out[:400]
    assert hdr_values(echo_of(rs[0][2]), "host") == ["green.example"]
    out, closed = exchange(p, b"GET http://blue.example/?echo=1 HTTP/1.1\r\nHost: green.example"
                           b"\r\nConnection: close\r\n\r\n")
    rs = parse_responses(out)
    assert rs[0][0] == 200 and rs[0][1].get("x-origin") == "blue", out[:400]
    assert green.count() == 1 and blue.count() == 1


def test_options_asterisk(env):
    """OPTIONS * is valid (RFC 9112 3.2.4); it is forwarded as such or
    answered by the proxy, never turned into something else."""
    p, blue = env
    out, closed = exchange(p, b"OPTIONS * HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
                           + SMUG)
    st = final_statuses(out)
    assert len(st) == 1 and st[0] is not None and st[0] < 500, out[:300]
    assert closed and b"/smuggled" not in out
    assert blue.count() <= 1
    assert_serving(p, blue)


def test_http10_without_host_is_served(env):
    p, blue = env
    out, closed = exchange(p, b"GET /?echo=1 HTTP/1.0\r\n\r\n" + SMUG)
    st = final_statuses(out)
    assert st == [200] and closed, out[:300]
    assert blue.count() == 1


def test_empty_host_is_served(env):
    p, blue = env
    out, closed = exchange(p, b"GET /?echo=1 HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
    assert final_statuses(out) == [200] and closed, out[:300]


def test_leading_empty_lines_are_skipped(env):
    """RFC 9112 2.2: empty lines before a request line are ignored."""
    p, blue = env
    a = served_pair(p, blue, b"\r\n\r\n" + GET + b"\r\n")
    assert a["uri"] == "/?echo=1"


def test_underscore_field_names_are_ordinary_fields(env):
    """Transfer_Encoding / Content_Length are not framing fields: the proxy
    frames by the real ones, and sends its own Content-Length."""
    p, blue = env
    a = served_pair(p, blue, POST + b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello")
    assert a["body_len"] == 5
    assert hdr_values(a, "content-length") == ["5"]
    assert hdr_values(a, "transfer-encoding") == []


# ---------------------------------------------------------------------------
# Expect: 100-continue


def test_expect_100_continue_with_body(env):
    p, blue = env
    s = socket.create_connection((LOOPBACK, p.port), timeout=5)
    try:
        s.sendall(POST + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        got = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in got and time.monotonic() < deadline:
            ch = s.recv(4096)
            if not ch:
                break
            got += ch
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
        s.sendall(b"hello" + b"GET /next?echo=1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        from conftest import read_until_close
        out = got + read_until_close(s, timeout=5)
    finally:
        s.close()
    rs = [r for r in parse_responses(out) if r[0] != 100]
    assert [r[0] for r in rs] == [200, 200], out[:500]
    a = echo_of(rs[0][2])
    assert a["body_len"] == 5 and hdr_values(a, "expect") == []
    assert blue.count() == 2


def test_expect_100_continue_without_body(env):
    p, blue = env
    for extra in (b"", b"Content-Length: 0\r\n"):
        out, closed = exchange(p, GET + b"Expect: 100-continue\r\n" + extra
                               + b"Connection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 "), out[:200]  # no 100 first
        assert closed


def test_expect_100_continue_http10(env):
    p, blue = env
    out, closed = exchange(p, b"POST /?echo=1 HTTP/1.0\r\nExpect: 100-continue\r\n"
                           b"Content-Length: 5\r\n\r\nhello")
    assert out.startswith(b"HTTP/1.0 200 "), out[:200]
    assert closed


def test_expect_100_continue_too_large_413_without_100(env):
    p, blue = env
    out, closed = exchange(p, POST + b"Expect: 100-continue\r\nContent-Length: 200000\r\n\r\n")
    assert final_statuses(out) == [413] and b" 100 " not in out.split(b"\r\n")[0], out[:200]
    assert closed
    assert blue.count() == 0


# ---------------------------------------------------------------------------
# connections: close, keep-alive, pipelining, truncation


def test_connection_close_honoured(env):
    p, blue = env
    out, closed = exchange(p, GET + b"Connection: close\r\n\r\n" + SMUG)
    rs = parse_responses(out)
    assert [r[0] for r in rs] == [200], out[:400]
    assert rs[0][1].get("connection", "").lower() == "close"
    assert closed and blue.count() == 1


def test_connection_close_in_list(env):
    p, blue = env
    out, closed = exchange(p, GET + b"Connection: X-Foo, Close\r\n\r\n" + SMUG)
    assert final_statuses(out) == [200] and closed, out[:400]
    assert blue.count() == 1


def test_http10_closes_by_default(env):
    p, blue = env
    out, closed = exchange(p, b"GET /?echo=1 HTTP/1.0\r\nHost: test\r\n\r\n" + SMUG)
    assert final_statuses(out) == [200] and closed, out[:400]
    assert out.startswith(b"HTTP/1.0 200")
    assert blue.count() == 1


def test_http10_keep_alive(env):
    p, blue = env
    out, closed = exchange(p, b"GET /?echo=1 HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n"
                           b"GET /next?echo=1 HTTP/1.0\r\nHost: test\r\n\r\n" + SMUG)
    rs = parse_responses(out)
    assert [r[0] for r in rs] == [200, 200], out[:600]
    assert rs[0][1].get("connection", "").lower() == "keep-alive"
    assert echo_of(rs[1][2])["uri"] == "/next?echo=1"
    assert closed and blue.count() == 2


def test_pipelined_good_then_bad(env):
    p, blue = env
    refused(p, blue, GET + b"\r\n" + b"GET / HTTP/1.1\r\nHost: test\r\nX-A: \x00\r\n\r\n", 400,
            served=1)


def test_pipelined_bad_chunked_first(env):
    """The first request's body has a framing error: the second, right behind
    it, must not be parsed (it could be the tail of a differently framed body)."""
    p, blue = env
    refused(p, blue, CH + b"5\r\nhello\r\n0\r\nX\r\n\r\n" + NEXT, 400)


def test_pipelined_bodies_served_in_order(env):
    p, blue = env
    first = POST + b"Content-Length: 5\r\n\r\nhello" + CH + b"3\r\nabc\r\n0\r\n\r\n"
    out, closed = exchange(p, first + GET + b"Connection: close\r\n\r\n")
    rs = parse_responses(out)
    assert [r[0] for r in rs] == [200, 200, 200], out[:600]
    assert [echo_of(r[2])["body_len"] for r in rs] == [5, 3, 0]
    assert closed and blue.count() == 3


@pytest.mark.parametrize("head,body", [
    (POST + b"Content-Length: 100\r\n\r\n", b"hello"),
    (POST + b"Content-Length: 5\r\n\r\n", b""),
    (CH, b"5\r\nhello\r\n"),
    (CH, b"5\r\nhel"),
    (CH, b"5\r\nhello\r\n0\r\n"),
    (CH, b"5\r\nhello\r\n0\r\nX-T: a\r\n"),
], ids=["cl_short", "cl_none", "chunked_no_last", "chunked_mid_data", "chunked_no_end",
        "chunked_mid_trailers"])
def test_body_cut_by_eof(env, head, body):
    """The client half-closes before its body is complete: the origin never
    serves a request (it never got a complete one), and the proxy goes on."""
    p, blue = env
    out, closed = exchange(p, head + body, shut=True)
    assert closed
    assert final_statuses(out) in ([], [400]), out[:300]
    time.sleep(0.2)  # the cut upstream request, if any, is over
    assert blue.count() == 0
    assert_serving(p, blue)


def test_body_cut_by_reset(env):
    p, blue = env
    for _ in range(5):
        s = socket.create_connection((LOOPBACK, p.port), timeout=5)
        s.sendall(POST + b"Content-Length: 1000\r\n\r\n" + b"x" * 500)
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(0.2)
    assert blue.count() == 0
    assert_serving(p, blue)


def test_smuggle_attempts_on_one_keepalive_upstream(env):
    """Many refused requests in a row, then good ones: every good request
    reaches the origin once and is echoed with its own path (no leftover bytes
    on a pooled upstream connection prefix it)."""
    p, blue = env
    assert_serving(p, blue)  # a pooled upstream connection for what follows
    for name, data, status in REFUSED[:12]:
        out, closed = exchange(p, data + SMUG)
        assert final_statuses(out) == [status] and closed, (name, out[:300])
    for name, body in BAD_CHUNKED[:8]:
        out, closed = exchange(p, CH + body + SMUG)
        assert final_statuses(out) == [400] and closed, (name, out[:300])
    assert blue.count() == 1
    with p.h1() as c:
        for i in range(5):
            r = c.request("POST", f"/good{i}?echo=1", body=b"x" * i)
            assert r.status == 200
            e = r.json()
            assert e["uri"] == f"/good{i}?echo=1" and e["body_len"] == i
    assert blue.count() == 6
