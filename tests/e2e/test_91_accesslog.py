"""Access log (issue 5): one JSON line per finished exchange, counted against
the requests sent and checked field by field (h1, h2, request and response
bodies, proxy-generated errors with their reason), sampling
(access_log_sample), stdout ("-"), and SIGUSR1 reopening after the file was
moved away."""

import json
import re
import signal
import time

from conftest import LOOPBACK, free_port, route, track
from test_90_admin import poll

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {"time", "route", "track", "server", "method", "path", "proto", "tls", "status",
          "bytes_in", "bytes_out", "upstream_ms", "total_ms", "forced", "reason"}


def read_lines(path):
    """Every complete line of the log, each parsed as JSON (a line that is not
    valid JSON fails the test)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    assert not data or data.endswith(b"\n"), "a partial line was written"
    out = []
    for raw in data.splitlines():
        obj = json.loads(raw)
        assert isinstance(obj, dict) and set(obj) == FIELDS, raw
        assert TIME_RE.match(obj["time"]), obj["time"]
        out.append(obj)
    return out


def wait_lines(path, n, timeout=5.0):
    """Waits for exactly <n> lines (buffers are flushed within 100 ms), then
    checks that no more arrive."""
    lines = poll(lambda: (lambda ls: ls if len(ls) >= n else None)(read_lines(path)), timeout,
                 what=f"{n} access log lines in {path}")
    time.sleep(0.25)
    lines = read_lines(path)
    assert len(lines) == n, f"{len(lines)} lines, expected {n}"
    return lines


def test_one_json_line_per_exchange(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    log = tmp_path / "access.log"
    dead = f"{LOOPBACK}:{free_port()}"
    p = cutover(routes=[route([track("blue", 1, blue), track("canary", 1, canary)],
                              path_prefix="/app", override={"header": "x-cutover-track"}),
                        route([track("gone", 1, dead)], name="dead", path_prefix="/dead")],
                access_log=str(log), workers=2)
    t0 = time.time()
    with p.h1() as c:
        for i in range(10):
            assert c.request("GET", f"/app/a{i}?x=\"q\"").status == 200
        assert c.request("GET", "/app/big?bytes=12345").status == 200
        assert c.request("POST", "/app/up", body=b"x" * 777).status == 200
        assert c.request("GET", "/app/s?status=404").status == 404
        assert c.request("GET", "/app/f", headers=[("x-cutover-track", "canary")]).status == 200
        assert c.request("GET", "/nowhere").status == 404
        assert c.request("GET", "/dead/x").status == 502
    with p.h2() as c:
        for i in range(4):
            st = c.request("GET", f"/app/h2-{i}")
            assert st.status == 200
        st = c.request("POST", "/app/h2-post", body=b"y" * 100)
        assert st.status == 200
    lines = wait_lines(log, 21)
    t1 = time.time()
    by_path = {ln["path"]: ln for ln in lines}
    assert len(by_path) == 21

    for i in range(10):
        ln = by_path[f"/app/a{i}?x=\"q\""]  # quotes in the path are escaped and round-trip
        assert (ln["route"], ln["method"], ln["proto"], ln["tls"]) == ("web", "GET", "HTTP/1.1",
                                                                       False)
        assert ln["track"] in ("blue", "canary")
        assert ln["server"] == {"blue": blue.addr, "canary": canary.addr}[ln["track"]]
        assert (ln["status"], ln["bytes_in"]) == (200, 0)
        assert ln["bytes_out"] == len(ln["track"]) + 1  # the origin's body is "NAME\n"
        assert 0 <= ln["upstream_ms"] <= ln["total_ms"] < 5000
        assert ln["forced"] is False and ln["reason"] is None
        t = time.mktime(time.strptime(ln["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert t0 - 2 <= t <= t1 + 2
    tracks = [by_path[f"/app/a{i}?x=\"q\""]["track"] for i in range(10)]
    assert tracks.count("blue") == 5  # 1:1 smooth WRR is exact on one worker (one connection)
    assert by_path["/app/big?bytes=12345"]["bytes_out"] == 12345
    assert by_path["/app/up"]["method"] == "POST" and by_path["/app/up"]["bytes_in"] == 777
    assert by_path["/app/s?status=404"]["status"] == 404
    assert by_path["/app/s?status=404"]["reason"] is None  # the origin's 404, not the proxy's
    f = by_path["/app/f"]
    assert f["forced"] is True and f["track"] == "canary" and f["server"] == canary.addr
    nr = by_path["/nowhere"]
    assert (nr["status"], nr["route"], nr["track"], nr["server"]) == (404, None, None, None)
    assert nr["reason"] == "no route" and nr["upstream_ms"] is None
    d = by_path["/dead/x"]
    assert (d["status"], d["route"], d["track"], d["server"]) == (502, "dead", "gone", dead)
    assert d["reason"] == "upstream connect failed" and d["upstream_ms"] is None
    for i in range(4):
        ln = by_path[f"/app/h2-{i}"]
        assert ln["proto"] == "HTTP/2" and ln["status"] == 200 and ln["route"] == "web"
    assert by_path["/app/h2-post"]["bytes_in"] == 100


def test_sampling_half(cutover, origins, tmp_path):
    blue = origins("blue")
    log = tmp_path / "access.log"
    p = cutover(tracks=[track("blue", 1, blue)], access_log=str(log), access_log_sample=0.5)
    n = 600
    with p.h1() as c:
        for i in range(n):
            assert c.request("GET", f"/s{i}").status == 200
    time.sleep(0.4)  # every buffer flushed (100 ms)
    lines = read_lines(log)
    # Binomial(600, 0.5): mean 300, sd 12.2; +-6 sd never fails a correct proxy
    assert 226 <= len(lines) <= 374, len(lines)
    paths = [ln["path"] for ln in lines]
    assert len(set(paths)) == len(paths) and all(re.match(r"^/s\d+$", x) for x in paths)
    # and not a fixed pattern such as every other request
    idx = sorted(int(x[2:]) for x in paths)
    assert any(b - a == 1 for a, b in zip(idx, idx[1:]))
    assert any(b - a > 2 for a, b in zip(idx, idx[1:]))


def test_sampling_zero_logs_nothing(cutover, origins, tmp_path):
    blue = origins("blue")
    log = tmp_path / "access.log"
    p = cutover(tracks=[track("blue", 1, blue)], access_log=str(log), access_log_sample=0.0)
    with p.h1() as c:
        for i in range(50):
            assert c.request("GET", f"/z{i}").status == 200
    time.sleep(0.4)
    assert read_lines(log) == []


def test_stdout(cutover, origins, tmp_path):
    blue = origins("blue")
    p = cutover(tracks=[track("blue", 1, blue)], access_log="-")
    with p.h1() as c:
        for i in range(7):
            assert c.request("GET", f"/o{i}").status == 200
    lines = wait_lines(p.stdout_path, 7)
    assert [ln["path"] for ln in lines] == [f"/o{i}" for i in range(7)]


def test_sigusr1_reopens_after_move(cutover, origins, tmp_path):
    blue = origins("blue")
    log = tmp_path / "access.log"
    moved = tmp_path / "access.log.1"
    p = cutover(tracks=[track("blue", 1, blue)], access_log=str(log), workers=2)

    def send(prefix, n):
        with p.h1() as c:
            for i in range(n):
                assert c.request("GET", f"/{prefix}{i}").status == 200

    send("a", 5)
    wait_lines(log, 5)
    log.rename(moved)
    send("b", 3)  # the file is open: these still land in the moved file
    wait_lines(moved, 8)
    assert not log.exists()
    p.signal(signal.SIGUSR1)
    poll(lambda: "log files reopened" in p.stderr_text(), what="the reopen")
    poll(log.exists, what="a new access.log")
    send("c", 4)
    new = wait_lines(log, 4)
    assert [ln["path"] for ln in new] == [f"/c{i}" for i in range(4)]
    old = read_lines(moved)
    assert [ln["path"] for ln in old] == [f"/a{i}" for i in range(5)] + [f"/b{i}" for i in range(3)]
    assert p.alive()
