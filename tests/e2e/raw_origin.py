#!/usr/bin/python3
"""A hostile HTTP/1.1 origin for the end-to-end tests: it answers with canned,
often malformed, bytes chosen by the request path, so the tests can check how
the proxy handles broken upstream responses.

    raw_origin.py [-p PORT]      listens on 127.0.0.1 (port 0: any), prints "ready PORT"

Requests:
    GET /ok...            a good response naming the connection and the request:
                          X-Conn: <connection id>, X-Req: <n-th request on it>,
                          body "ok conn=<id> req=<n> path=<path>"
    GET /case/<name>      the canned answer CASES[<name>] (see there)
    GET /__stats          (direct, not through the proxy) JSON {conn id: [paths]}:
                          every path received on every connection, in order;
                          the stats connections themselves are not listed
    GET /__reset          forgets the stats

Each connection runs in a thread; every loop is bounded in time (socket
timeouts) and in count (requests per connection, bytes of a head).
"""

import json
import socket
import struct
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
MAX_HEAD = 1 << 16
MAX_REQUESTS = 1000
IDLE_S = 30.0

SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: 1\r\n\r\nSMUGGLED"


def ok_resp(head):
    return b"HTTP/1.1 200 OK\r\n" + head + b"\r\n"


def cl(body, extra=b""):
    return b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


# name -> list of steps: bytes (sent), ("sleep", s), "close" (FIN), "reset" (RST).
# Without "close"/"reset" the connection stays open for more requests: the proxy
# must be the one to drop it after a bad response.
CASES = {
    # --- status line
    "garbage": [b"GARBAGE\r\n\r\n"],
    "garbage_binary": [b"\x00\x01\x02\xff\xfe\r\n\r\n"],
    "html_no_head": [b"<html><body>hello</body></html>\r\n\r\n"],
    "icy": [b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_lowercase": [b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_2_0": [b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_1_2": [b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_0_9": [b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_no_minor": [b"HTTP/1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "version_long_minor": [b"HTTP/1.10 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "status_099": [b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok"],
    "status_600": [b"HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nok"],
    "status_1000": [b"HTTP/1.1 1000 Big\r\nContent-Length: 2\r\n\r\nok"],
    "status_abc": [b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok"],
    "status_2x0": [b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"],
    "status_two_digits": [b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"],
    "status_negative": [b"HTTP/1.1 -200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "status_empty": [b"HTTP/1.1 \r\nContent-Length: 2\r\n\r\nok"],
    "status_two_spaces": [b"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok"],
    "reason_with_nul": [b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok"],
    "status_101": [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\n\r\n" + SMUGGLED],
    # --- header fields
    "header_no_colon": [b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 2\r\n\r\nok"],
    "space_before_colon": [b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"],
    "empty_field_name": [b"HTTP/1.1 200 OK\r\n: value\r\nContent-Length: 2\r\n\r\nok"],
    "bad_char_in_name": [b"HTTP/1.1 200 OK\r\nX-B\xffd: 1\r\nContent-Length: 2\r\n\r\nok"],
    "bare_lf": [b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"],
    "bare_lf_in_fields": [b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok"],
    "bare_lf_end": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok"],
    "bare_cr": [b"HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 2\r\n\r\nok"],
    "bare_cr_status": [b"HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok"],
    "nul_in_value": [b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"],
    "ctl_in_value": [b"HTTP/1.1 200 OK\r\nX-A: a\x1bb\r\nContent-Length: 2\r\n\r\nok"],
    "del_in_value": [b"HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 2\r\n\r\nok"],
    # a CR inside a value that, if copied through, would split the response
    "crlf_injection": [b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\n"
                       b"Content-Length: 2\r\n\r\nok"],
    "obs_fold": [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 2\r\n\r\nok"],
    "obs_fold_tab": [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\tcontinued\r\nContent-Length: 2\r\n\r\nok"],
    "ws_before_first_field": [b"HTTP/1.1 200 OK\r\n Content-Length: 2\r\n\r\nok"],
    # --- Content-Length
    "cl_two_values": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"],
    "cl_list_differ": [b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!"],
    "cl_plus": [b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"],
    "cl_minus": [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok"],
    "cl_hex": [b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok"],
    "cl_garbage": [b"HTTP/1.1 200 OK\r\nContent-Length: 2abc\r\n\r\nok"],
    "cl_inner_space": [b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nok"],
    "cl_empty": [b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok"],
    "cl_overflow": [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok"],
    "cl_2_64": [b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551618\r\n\r\nok"],
    "cl_2_63": [b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nok"],
    "cl_above_2_62": [b"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387905\r\n\r\nok"],
    # --- Transfer-Encoding
    "te_chunked_twice": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                         b"2\r\nok\r\n0\r\n\r\n"],
    "te_empty": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n2\r\nok\r\n0\r\n\r\n"],
    "te_params": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"
                  b"2\r\nok\r\n0\r\n\r\n"],
    # --- heads past the limits
    "head_too_large": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 70000 + b"\r\n"
                       b"Content-Length: 2\r\n\r\nok"],
    "head_too_large_no_end": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 200000],
    "too_many_headers": [b"HTTP/1.1 200 OK\r\n"
                         + b"".join(b"X-H%d: v\r\n" % i for i in range(300))
                         + b"Content-Length: 2\r\n\r\nok"],
    # big but within the proxy's limits (64 KiB, 256 fields): served intact
    "head_near_limit": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 60000 + b"\r\n"
                        b"Content-Length: 2\r\n\r\nok"],
    "many_headers_ok": [b"HTTP/1.1 200 OK\r\n"
                        + b"".join(b"X-H%d: v%d\r\n" % (i, i) for i in range(250))
                        + b"Content-Length: 2\r\n\r\nok"],
    # --- slow upstreams: progress on the head must not extend its deadline
    "head_trickle": [x for i in range(100) for x in (b"HTTP/1.1 200 OK\r\nX-%d: 1\r\n" % i
                                                      if i == 0 else b"X-%d: 1\r\n" % i,
                                                      ("sleep", 0.1))],
    "1xx_trickle": [x for i in range(100) for x in (b"HTTP/1.1 100 Continue\r\n\r\n",
                                                     ("sleep", 0.1))],
    # --- 1xx
    "continue_then_ok": [b"HTTP/1.1 100 Continue\r\n\r\n" + cl(b"after-100")],
    "early_hints_then_ok": [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                            + cl(b"after-103")],
    "many_1xx_then_ok": [b"HTTP/1.1 100 Continue\r\n\r\n" * 500
                         + b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" * 500
                         + cl(b"after-1000")],
    "split_1xx_then_ok": [b"HTTP/1.1 100 Con", ("sleep", 0.05), b"tinue\r\n\r\nHTTP/1.1 20",
                          ("sleep", 0.05), b"0 OK\r\nContent-Length: 5\r\n\r\nsplit"],
    # a 1xx has no body: its "body" is read as the next head, and is garbage
    "1xx_with_body": [b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello" + cl(b"ok")],
    "1xx_then_garbage": [b"HTTP/1.1 100 Continue\r\n\r\nGARBAGE\r\n\r\n"],
    "1xx_then_close": [b"HTTP/1.1 100 Continue\r\n\r\n", "close"],
    # --- closes and resets
    "close_before_head": ["close"],
    "reset_before_head": ["reset"],
    "close_mid_status": [b"HTTP/1.1 20", "close"],
    "close_mid_head": [b"HTTP/1.1 200 OK\r\nContent-Le", "close"],
    "close_after_head_cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 40,
                            ("sleep", 0.05), "close"],
    "close_after_head_cl_big": [b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
                                + b"b" * 300000, ("sleep", 0.05), "close"],
    "close_after_head_chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n", ("sleep", 0.05), "close"],
    "close_mid_chunk": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"a\r\nhello", ("sleep", 0.05), "close"],
    "close_before_trailers_end": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"5\r\nhello\r\n0\r\nX-T: 1\r\n", ("sleep", 0.05), "close"],
    "reset_after_head_cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 40,
                            ("sleep", 0.05), "reset"],
    "close_huge_cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387904\r\n\r\nabc",
                      ("sleep", 0.05), "close"],
    # --- bad chunked bodies (after the head went out)
    "chunk_nonhex": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"],
    "chunk_negative": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n-5\r\nworld\r\n0\r\n\r\n"],
    "chunk_0x": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n"],
    "chunk_overflow": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n1" + b"0" * 16 + b"5\r\nworld\r\n0\r\n\r\n"],
    "chunk_size_2_64": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n10000000000000005\r\nworld\r\n0\r\n\r\n"],
    "chunk_empty_size": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n\r\nworld\r\n0\r\n\r\n"],
    "chunk_missing_crlf": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhelloXX5\r\nworld\r\n0\r\n\r\n"],
    "chunk_too_long": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello world\r\n0\r\n\r\n"],
    "chunk_bare_lf": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n5\nworld\n0\n\n"],
    "chunk_bad_ext": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n5;=x\r\nworld\r\n0\r\n\r\n"],
    "chunk_ext_too_long": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n5;x=" + b"y" * 5000 + b"\r\nworld\r\n0\r\n\r\n"],
    "chunk_bad_trailer": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n"],
    "chunk_huge_trailers": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n"
                            + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 100) for i in range(100))
                            + b"\r\n"],
    # --- framing that ends the connection, and bodies that must not leak into
    # the next response on a pooled connection
    "te_and_cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED],
    # the same without bytes after: the framing alone rules out reuse
    "te_and_cl_clean": [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    "conn_close_kept_open": [cl(b"bye", b"Connection: close\r\n")],
    "http10_kept_open": [b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"],
    "te_http10": [b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n", "close"],
    "te_gzip": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "close"],
    "te_gzip_chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"8\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\r\n0\r\n\r\n"],
    "te_chunked_gzip": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                        b"5\r\nhello\r\n0\r\n\r\n", "close"],
    "te_identity": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello", "close"],
    "extra_after_cl": [cl(b"hello") + SMUGGLED],
    "extra_after_cl_delayed": [cl(b"hello"), ("sleep", 0.1), SMUGGLED],
    "extra_after_chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED],
    "extra_after_empty": [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + SMUGGLED],
    "head_with_body": [cl(SMUGGLED)],
    "head_with_chunked_body": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"],
    "204_with_body": [b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED],
    "204_with_cl_body": [b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
                         + SMUGGLED],
    "304_with_body": [b"HTTP/1.1 304 Not Modified\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
                      + SMUGGLED],
    # --- legitimate but unusual: must work
    "close_delimited": [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil-close", "close"],
    "http10_keepalive": [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\n"
                         b"ten!"],
    "cl_list_same": [b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"],
    "cl_leading_zeros": [b"HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok"],
    "chunk_ext_ok": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;a=b;c=\"d e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"],
    "empty_reason": [b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"],
    "obs_text_value": [b"HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nok"],
    "hop_by_hop_fields": [b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
                          b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                          b"TE: trailers\r\nUpgrade: h2c\r\nTrailer: X-T\r\n"
                          b"X-Kept: 1\r\nContent-Length: 2\r\n\r\nok"],
    "value_ows_trimmed": [b"HTTP/1.1 200 OK\r\nX-A: \t  padded \t\r\nContent-Length: 2\r\n\r\nok"],
}

stats_lock = threading.Lock()
stats = {}  # conn id -> [path, ...]
next_conn = [0]


def read_head(sock, buf):
    """Returns (head bytes, rest) or (None, buf) at EOF / limit / timeout."""
    deadline = time.monotonic() + IDLE_S
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD or time.monotonic() > deadline:
            return None, buf
        try:
            data = sock.recv(65536)
        except OSError:
            return None, buf
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def skip_body(sock, head, rest):
    """Drops a Content-Length request body (the tests send small ones)."""
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip() or b"0")
    deadline = time.monotonic() + IDLE_S
    while len(rest) < n and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return rest[n:]


def run_steps(sock, steps):
    """Returns False when the connection is finished."""
    for st in steps:
        if st == "close":
            sock.shutdown(socket.SHUT_WR)
            return False
        if st == "reset":
            # SO_LINGER {on, 0 s}: close() sends a RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if isinstance(st, tuple) and st[0] == "sleep":
            time.sleep(st[1])
            continue
        sock.sendall(st)
    return True


def serve(sock):
    sock.settimeout(IDLE_S)
    cid = None
    buf = b""
    try:
        for req in range(1, MAX_REQUESTS + 1):
            head, buf = read_head(sock, buf)
            if head is None:
                return
            parts = head.split(b"\r\n", 1)[0].split(b" ")
            path = parts[1].decode("latin-1") if len(parts) > 1 else ""
            buf = skip_body(sock, head, buf)
            if path.startswith("/__stats"):
                with stats_lock:
                    body = json.dumps(stats).encode()
                sock.sendall(cl(body, b"Connection: close\r\n"))
                return
            if path.startswith("/__reset"):
                with stats_lock:
                    stats.clear()
                sock.sendall(cl(b"reset", b"Connection: close\r\n"))
                return
            with stats_lock:
                if cid is None:
                    next_conn[0] += 1
                    cid = next_conn[0]
                stats.setdefault(str(cid), []).append(path)
            if path.startswith("/case/"):
                name = path[6:].split("?", 1)[0]
                steps = CASES.get(name)
                if steps is None:
                    steps = [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]
                if not run_steps(sock, steps):
                    return
                continue
            body = b"ok conn=%d req=%d path=%s" % (cid, req, path.encode("latin-1"))
            sock.sendall(cl(body, b"X-Conn: %d\r\nX-Req: %d\r\n" % (cid, req)))
    except OSError:
        pass
    finally:
        # let a final "close" or "reset" step reach the peer before the fd goes
        time.sleep(0.01)
        try:
            sock.close()
        except OSError:
            pass


def main():
    port = 0
    if len(sys.argv) == 3 and sys.argv[1] == "-p":
        port = int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((LOOPBACK, port))
    ls.listen(128)
    print(f"ready {ls.getsockname()[1]}", flush=True)
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
