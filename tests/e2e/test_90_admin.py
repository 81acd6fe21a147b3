"""Admin endpoint (DESIGN.md "Admin endpoint"): /healthz, /status, /metrics
(parsed with prometheus_client's text parser), PUT /routes/{route}/weights
with its token and validation rules, 404/405 handling, and /healthz during a
SIGTERM drain.

The helpers at the top (admin_conf, Admin, metric values) are shared with
test_92_admin_redis.py and test_93_ctl.py."""

import http.client
import json
import math
import re
import signal
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import CUTOVER_BIN, LOOPBACK, free_port, route, run_in_thread, track, wait_port

TOKEN = "s3cret-Token_42"
# a guard that trips fast on a failing canary (F: 5 failures in a row), no retry shield
GUARD_FAST = {"baseline": "blue", "candidate": "canary", "min_requests": 5, "fast_failures": 5,
              "shield": False}


# ---------------------------------------------------------------------------
# helpers


def admin_conf(tmp_path, token=None, port=None):
    """An admin block on a free port; with <token>, a token file holding it
    (surrounded by whitespace, which the proxy trims)."""
    c = {"address": f"{LOOPBACK}:{port or free_port()}"}
    if token is not None:
        f = tmp_path / f"admin-{time.monotonic_ns()}.token"
        f.write_text(f"  {token}\n\n")
        c["token_file"] = str(f)
    return c


class Admin:
    """A small client of one proxy's admin endpoint (a fresh connection per request)."""

    def __init__(self, p, conf):
        self.p = p
        self.conf = conf
        self.port = int(conf["address"].rsplit(":", 1)[1])
        assert wait_port(self.port, 10, p.proc), "admin port not listening"

    def request(self, method, path, body=None, token=None, headers=None):
        c = http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)
        try:
            h = dict(headers or {})
            if token is not None:
                h["Authorization"] = f"Bearer {token}"
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def json(self, path="/status"):
        status, headers, data = self.get(path)
        assert status == 200, (status, data)
        assert headers["content-type"].startswith("application/json")
        return json.loads(data)

    def status(self):
        return self.json("/status")

    def metrics_text(self):
        status, headers, data = self.get("/metrics")
        assert status == 200, (status, data)
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return data.decode()

    def metrics(self):
        """{family name: family} from the real Prometheus text parser."""
        return {f.name: f for f in text_string_to_metric_families(self.metrics_text())}

    def put_weights(self, route_name, weights, token=TOKEN):
        status, _, data = self.request("PUT", f"/routes/{route_name}/weights", weights, token)
        return status, (json.loads(data) if data.strip() else None)

    def arm(self, route_name, token=TOKEN):
        status, _, data = self.request("POST", f"/routes/{route_name}/guard/arm", b"", token)
        return status, (json.loads(data) if data.strip() else None)


def start_with_admin(cutover, tmp_path, token=None, **kw):
    conf = admin_conf(tmp_path, token)
    p = cutover(admin=conf, **kw)
    return p, Admin(p, conf)


def sample_value(families, family, sample_name=None, **labels):
    """The value of the one sample of <family> (sample name <sample_name>,
    default the family's own, counters' _total) whose labels include <labels>."""
    fam = families[family]
    out = []
    for s in fam.samples:
        if sample_name is not None and s.name != sample_name:
            continue
        if sample_name is None and s.name not in (family, family + "_total"):
            continue
        if all(s.labels.get(k) == v for k, v in labels.items()):
            out.append(s.value)
    assert len(out) == 1, f"{family} {sample_name} {labels}: {len(out)} samples"
    return out[0]


def poll(fn, timeout=5.0, interval=0.02, what="condition", dbg=None):
    """Calls <fn> until it returns a true value (workers hand their stats to the
    main thread every 10 ms); returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def origins_seen(p, n, path="/"):
    out = []
    with p.h1() as c:
        for i in range(n):
            r = c.request("GET", f"{path}{'&' if '?' in path else '?'}i={i}")
            out.append((r.status, r.origin))
    return out


def version():
    out = subprocess.run([CUTOVER_BIN, "-V"], capture_output=True, text=True, timeout=10).stdout
    return out.split()[-1]


# ---------------------------------------------------------------------------
# /healthz, 404, 405, HEAD, limits


def test_healthz_404_405_head(cutover, origins, tmp_path):
    blue = origins("blue")
    p, a = start_with_admin(cutover, tmp_path, tracks=[track("blue", 1, blue)])
    st, h, body = a.get("/healthz")
    assert (st, body) == (200, b"ok\n")
    assert h["cache-control"] == "no-store"

    st, h, body = a.get("/nope")
    assert st == 404 and json.loads(body)["code"] == "not_found"
    st, h, body = a.get("/routes/web/guard/arm/x")
    assert st == 404

    for method, path, allow in [("POST", "/status", "GET, HEAD"), ("DELETE", "/metrics", "GET, HEAD"),
                                ("PUT", "/healthz", "GET, HEAD"), ("GET", "/routes/web/weights", "PUT"),
                                ("POST", "/routes/web/weights", "PUT"),
                                ("GET", "/routes/web/guard/arm", "POST")]:
        st, h, body = a.request(method, path, body=b"" if method != "GET" else None)
        assert st == 405, (method, path, st)
        assert h["allow"] == allow
        assert json.loads(body)["code"] == "method_not_allowed"

    st, h, body = a.request("HEAD", "/status")
    assert st == 200 and body == b""
    assert abs(int(h["content-length"]) - len(a.get("/status")[2])) < 20  # times vary
    # HEAD on a keep-alive connection: a head and no body, then the next answer
    from conftest import H1Conn
    with H1Conn(a.port) as c:
        r = c.request("HEAD", "/metrics")
        assert r.status == 200 and int(r.header("content-length")) > 1000
        r = c.request("GET", "/healthz")
        assert (r.status, r.body) == (200, b"ok\n")
    # the proxy itself is unaffected by the admin port
    assert p.get("/").status == 200


def test_request_limits(cutover, origins, tmp_path):
    blue = origins("blue")
    p, a = start_with_admin(cutover, tmp_path, tracks=[track("blue", 1, blue)])
    st, _, _ = a.request("PUT", "/routes/web/weights", body=b"{" + b" " * 10000 + b"}")
    assert st == 413
    st, _, _ = a.request("GET", "/status", headers={"X-Big": "a" * 20000})
    assert 400 <= st < 500
    assert a.get("/healthz")[0] == 200


def test_admin_address_in_use_or_bad_token_file_refuses_to_start(cutover, origins, tmp_path):
    import socket
    blue = origins("blue")
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen(1)
        busy = s.getsockname()[1]
        p = cutover(start=False, tracks=[track("blue", 1, blue)])
        c = p.conf(tracks=[track("blue", 1, blue)], admin={"address": f"{LOOPBACK}:{busy}"})
        p.write_conf(c)
        r = subprocess.run([CUTOVER_BIN, "-c", str(p.conf_path)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 1, r.stderr
        assert f"admin: cannot listen on {LOOPBACK}:{busy}" in r.stderr
    empty = tmp_path / "empty.token"
    empty.write_text(" \n")
    c = p.conf(tracks=[track("blue", 1, blue)],
               admin={"address": f"{LOOPBACK}:{free_port()}", "token_file": str(empty)})
    p.write_conf(c)
    r = subprocess.run([CUTOVER_BIN, "-c", str(p.conf_path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "empty" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# /metrics


def test_metrics_count_exactly_what_was_sent(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    dead = f"{LOOPBACK}:{free_port()}"  # nothing listens: connect failures
    p, a = start_with_admin(cutover, tmp_path, routes=[
        route([track("blue", 3, blue), track("canary", 1, canary)], name="web"),
        route([track("gone", 1, dead)], name="dead", path_prefix="/dead"),
    ])
    fams = a.metrics()
    # every family is named cutover_*, has HELP and TYPE, and starts at zero
    for name, f in fams.items():
        assert name.startswith("cutover_"), name
        assert f.documentation, name
        assert f.type in ("counter", "gauge", "histogram"), (name, f.type)
    assert sample_value(fams, "cutover_requests", route="web", track="blue", **{"class": "2xx"}) == 0
    assert sample_value(fams, "cutover_build_info", version=version()) == 1

    # 3:1 smooth WRR is exact over every run of 4 requests on one worker
    seen = origins_seen(p, 40) + origins_seen(p, 8, "/?status=404") + origins_seen(p, 4, "/?status=503")
    assert [o for _, o in seen].count("blue") == 39
    with p.h1() as c:
        for i in range(3):
            assert c.request("GET", f"/dead/x{i}").status == 502

    want = {("blue", "2xx"): 30, ("blue", "4xx"): 6, ("blue", "5xx"): 3,
            ("canary", "2xx"): 10, ("canary", "4xx"): 2, ("canary", "5xx"): 1}

    def settled():
        f = a.metrics()
        total = sum(s.value for s in f["cutover_requests"].samples)
        return f if total == 55 else None

    fams = poll(settled, what="55 requests in cutover_requests_total")
    for (t, cls), n in want.items():
        assert sample_value(fams, "cutover_requests", route="web", track=t, **{"class": cls}) == n
    for t in ("blue", "canary"):
        for cls in ("1xx", "3xx", "none"):
            assert sample_value(fams, "cutover_requests", route="web", track=t,
                                **{"class": cls}) == 0
    assert sample_value(fams, "cutover_requests", route="dead", track="gone",
                        **{"class": "none"}) == 3
    assert sample_value(fams, "cutover_upstream_errors", route="dead", track="gone",
                        kind="connect") == 3
    assert sample_value(fams, "cutover_upstream_errors", route="web", track="blue",
                        kind="status_5xx") == 3
    assert sample_value(fams, "cutover_upstream_errors", route="web", track="canary",
                        kind="status_5xx") == 1
    for kind in ("connect", "timeout", "reset"):
        assert sample_value(fams, "cutover_upstream_errors", route="web", track="blue",
                            kind=kind) == 0
    # per server
    assert sample_value(fams, "cutover_server_requests", server=blue.addr,
                        **{"class": "2xx"}) == 30
    assert sample_value(fams, "cutover_server_requests", server=canary.addr,
                        **{"class": "5xx"}) == 1
    assert sample_value(fams, "cutover_server_upstream_errors", server=dead, kind="connect") == 3

    # latency histogram: cumulative buckets, +Inf = _count = responses with a head
    h = fams["cutover_upstream_latency_seconds"]
    assert h.type == "histogram"
    buckets = [(s.labels["le"], s.value) for s in h.samples
               if s.name.endswith("_bucket") and s.labels["track"] == "blue"
               and s.labels["route"] == "web"]
    assert len(buckets) == 16 and buckets[-1][0] == "+Inf"
    les = [float(le) for le, _ in buckets]
    assert les == sorted(les) and les[0] == 0.001 and les[-2] == 30.0
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 39
    assert sample_value(fams, "cutover_upstream_latency_seconds",
                        "cutover_upstream_latency_seconds_count", route="web", track="blue") == 39
    s = sample_value(fams, "cutover_upstream_latency_seconds", "cutover_upstream_latency_seconds_sum",
                     route="web", track="blue")
    assert 0 < s < 39 * 1.0
    assert sample_value(fams, "cutover_upstream_latency_seconds",
                        "cutover_upstream_latency_seconds_count", route="dead", track="gone") == 0

    # weights, realised share
    assert sample_value(fams, "cutover_weight", route="web", track="blue", source="config") == 3
    assert sample_value(fams, "cutover_weight", route="web", track="canary", source="config") == 1
    assert sample_value(fams, "cutover_config_weight", route="web", track="canary") == 1
    assert sample_value(fams, "cutover_realised_share", route="web", track="blue",
                        window="10s") == 39 / 52
    assert sample_value(fams, "cutover_realised_share", route="web", track="canary",
                        window="60s") == 13 / 52
    # connections: the fixture's readiness probe, origins_seen x3, the /dead one
    assert sample_value(fams, "cutover_connections_accepted") == 5
    assert sample_value(fams, "cutover_connections_open") == 0
    assert sample_value(fams, "cutover_streams_open") == 0
    assert sample_value(fams, "cutover_proxy_errors") >= 3
    assert sample_value(fams, "cutover_retries") == 0
    assert sample_value(fams, "cutover_config_reloads", result="ok") == 0
    assert sample_value(fams, "cutover_config_generation") == 1
    assert sample_value(fams, "cutover_draining") == 0
    assert sample_value(fams, "cutover_redis_enabled") == 0
    assert sample_value(fams, "cutover_redis_connected") == 0
    assert math.isnan(sample_value(fams, "cutover_redis_last_apply_seconds"))
    assert "cutover_guard_tripped" in fams and not fams["cutover_guard_tripped"].samples


def test_metrics_label_escaping(cutover, origins, tmp_path):
    """The config path is a label value: a file name with a backslash, a
    double quote and a newline must come back intact through the parser."""
    blue = origins("blue")
    weird = tmp_path / 'we"ird\\dir\nx'
    weird.mkdir()
    conf = admin_conf(tmp_path)
    p = cutover(start=False)
    p.conf_path = weird / "cutover.conf"
    p.start(p.conf(tracks=[track("blue", 1, blue)], admin=conf))
    a = Admin(p, conf)
    text = a.metrics_text()
    assert 'path="' + str(weird).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") in text
    fams = a.metrics()
    assert sample_value(fams, "cutover_config_info", path=str(p.conf_path)) == 1
    assert a.status()["config"]["path"] == str(p.conf_path)


def test_metrics_reload_counters(cutover, origins, tmp_path):
    blue = origins("blue")
    p, a = start_with_admin(cutover, tmp_path, tracks=[track("blue", 1, blue)])
    good = p.conf_path.read_text()
    p.reload(good, settle=0.3)
    p.reload("this is not libconfig", settle=0.3)
    p.reload(good, settle=0.3)
    fams = poll(lambda: (lambda f: f if sample_value(f, "cutover_config_reloads", result="ok") == 2
                         else None)(a.metrics()), what="2 reloads")
    assert sample_value(fams, "cutover_config_reloads", result="failed") == 1
    assert sample_value(fams, "cutover_config_generation") == 3
    st = a.status()["config"]
    assert (st["generation"], st["reloads"], st["reload_failures"]) == (3, 2, 1)
    assert st["loaded_ms_ago"] < 2000


# ---------------------------------------------------------------------------
# /status


def test_status_field_by_field(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    # no retry shield: a 503 stays on the track that answered it
    guard = {"baseline": "blue", "candidate": "canary", "min_requests": 20, "shield": False}
    p, a = start_with_admin(cutover, tmp_path, token=TOKEN, routes=[
        route([track("blue", 9, blue), track("canary", 1, canary)], name="web", guard=guard)])
    t_start = time.time()
    s = a.status()
    assert s["version"] == version()
    assert s["pid"] == p.pid
    assert s["draining"] is False
    assert s["workers"] == 1
    assert s["redis"] == {"enabled": False}
    assert s["config"]["generation"] == 1 and s["config"]["reloads"] == 0
    assert s["config"]["path"] == str(p.conf_path)
    (r,) = s["routes"]
    assert (r["name"], r["host"], r["path_prefix"], r["weights_sum"]) == ("web", "*", "/", 10)
    assert r["requests_10s"] == 0
    b, c = r["tracks"]
    assert (b["name"], b["weight"], b["conf_weight"], b["source"]) == ("blue", 9, 9, "config")
    assert b["share_10s"] is None and b["window_10s"]["p99_ms"] is None
    assert b["window_10s"]["error_rate"] is None

    # 20 requests at 9:1, then the admin sets 1:1 and 20 more, two of them 503s
    assert [o for _, o in origins_seen(p, 20)].count("canary") == 2
    t_put = time.time()
    st, body = a.put_weights("web", {"blue": 1, "canary": 1})
    assert st == 200, body
    assert body["weights"] == {"blue": 1, "canary": 1}
    assert body["previous"] == {"blue": 9, "canary": 1}
    assert body["redis"] == "not configured" and body["source"] == "admin"
    seq = origins_seen(p, 18) + origins_seen(p, 2, "/?status=503")
    # smooth WRR carries its state across the change: 1:1 within one period
    n_canary = 2 + [o for _, o in seq].count("canary")
    assert 11 <= n_canary <= 13, seq
    n = {"blue": 40 - n_canary, "canary": n_canary}
    errs = {"blue": 0, "canary": 0}
    for st, o in seq[-2:]:
        assert st == 503
        errs[o] += 1

    def settled():
        s2 = a.status()
        return s2 if s2["routes"][0]["requests_60s"] == 40 else None

    s = poll(settled, what="40 requests in /status", dbg=lambda: json.dumps(a.status()["routes"][0]["tracks"]))
    (r,) = s["routes"]
    assert r["requests_10s"] == 40 and r["weights_sum"] == 2
    b, c = r["tracks"]
    assert (b["weight"], b["conf_weight"], b["source"]) == (1, 9, "admin")
    assert (c["weight"], c["conf_weight"], c["source"]) == (1, 1, "admin")
    assert b["weight_share"] == 0.5
    # "since": when the admin changed it, both as ms ago and as wall-clock time
    assert 0 <= b["since_ms_ago"] <= (time.time() - t_put) * 1000 + 50
    since = time.mktime(time.strptime(b["since"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(since - t_put) < 2
    assert b["since"].endswith("Z")
    # realised shares, the same over 10 s and 60 s
    assert (b["share_10s"], b["share_60s"]) == (n["blue"] / 40, n["blue"] / 40)
    assert (c["share_10s"], c["share_60s"]) == (n["canary"] / 40, n["canary"] / 40)
    for t in (b, c):
        k, e = n[t["name"]], errs[t["name"]]
        for w in ("window_10s", "window_60s"):
            assert t[w]["requests"] == k and t[w]["errors"] == e
            assert t[w]["error_rate"] == pytest.approx(e / k, rel=1e-5)
            assert 0 < t[w]["p50_ms"] <= t[w]["p99_ms"] < 2000
            assert t[w]["forced"] == 0
        assert t["totals"]["requests"] == k
        assert t["totals"]["status"]["2xx"] == k - e and t["totals"]["status"]["5xx"] == e
    (sb,) = b["servers"]
    assert sb["address"] == blue.addr
    assert sb["health"] == {"checked": False, "healthy": True}
    assert sb["ejection"] == {"ejected": False, "ejections": 0}
    assert (sb["requests"], sb["errors"]) == (n["blue"], errs["blue"])
    g = r["guard"]
    assert (g["baseline"], g["candidate"], g["state"]) == ("blue", "canary", "armed")
    assert set(g["cusum"]) == {"E1", "E2", "L1", "L2"}
    assert all(v >= 0 for v in g["cusum"].values())
    assert g["trips"] == 0 and g["last_trip"] is None and g["min_requests"] == 20
    assert g["h"] > 0
    assert abs(time.time() - t_start) < 30


def test_status_health_checked_server(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    r = route([track("blue", 1, blue), track("canary", 1, canary)])
    r["health"] = {"path": "/health", "interval_ms": 100, "timeout_ms": 500, "rise": 1, "fall": 1}
    p, a = start_with_admin(cutover, tmp_path, routes=[r])
    canary.get("/__mode?health=500")

    def unhealthy():
        s = a.status()
        hs = {t["name"]: t["servers"][0]["health"] for t in s["routes"][0]["tracks"]}
        return hs if not hs["canary"]["healthy"] and hs["blue"]["checks"] >= 2 else None

    hs = poll(unhealthy, what="canary unhealthy in /status")
    assert hs["blue"]["checked"] and hs["blue"]["healthy"] and hs["blue"]["failures"] == 0
    assert hs["canary"]["failures"] >= 1 and hs["canary"]["last_error"]
    fams = a.metrics()
    assert sample_value(fams, "cutover_server_healthy", server=canary.addr) == 0
    assert sample_value(fams, "cutover_server_healthy", server=blue.addr) == 1
    assert sample_value(fams, "cutover_health_check_failures", server=canary.addr) >= 1


# ---------------------------------------------------------------------------
# PUT /routes/{route}/weights


BAD_BODIES = [  # (body, code, substring of the error)
    (b"", "bad_json", "empty body"),
    (b"{", "bad_json", "invalid JSON"),
    (b"[1, 2]", "bad_json", "expected an object"),
    (b'{"blue": 1,}', "bad_json", "expected a quoted name"),
    (b'{"blue": 01}', "bad_json", "leading zero"),
    (b'{"blue": 1} x', "bad_json", "trailing bytes"),
    (b'{"blue" 1}', "bad_json", "expected ':'"),
    (b'{blue: 1}', "bad_json", "expected a quoted name"),
    (b'{"blue": 1 "canary": 1}', "bad_json", "expected ',' or '}'"),
    (b'{"bl\\ue": 1}', "bad_json", "bad \\u escape"),
    (b'{"bl\xffue": 1}', "bad_json", "not UTF-8"),
    (b'{"blue": +1}', "bad_json", "unexpected '+'"),
    (b"{}", "empty", "no weights given"),
    (b'{"purple": 5}', "unknown_track", 'field "purple": no such track'),
    (b'{"blue": -5}', "negative", "-5 is negative"),
    (b'{"blue": -0}', "negative", "is negative"),
    (b'{"blue": 1.5}', "not_integer", "1.5 is not an integer"),
    (b'{"blue": 1e2}', "not_integer", "1e2 is not an integer"),
    (b'{"blue": "10"}', "not_integer", "must be a JSON integer"),
    (b'{"blue": true}', "not_integer", "must be a JSON integer"),
    (b'{"blue": null}', "not_integer", "must be a JSON integer"),
    (b'{"blue": 0, "canary": 0}', "all_zero", "all weights are zero"),
    (b'{"blue": 1000001}', "too_large", "above 1000000"),
    (b'{"blue": 99999999999999999999999999999}', "too_large", "above 1000000"),
    (b'{"blue": 1, "blue": 2}', "duplicate", "given twice"),
]


def test_put_weights_auth_validation_and_exact_split(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    p, a = start_with_admin(cutover, tmp_path, token=TOKEN,
                            tracks=[track("blue", 1, blue), track("canary", 0, canary)])
    good = {"blue": 1, "canary": 3}
    # 401 without a token (or with another scheme), 403 with a wrong one; reads stay open
    st, h, body = a.request("PUT", "/routes/web/weights", json.dumps(good))
    assert st == 401 and json.loads(body)["code"] == "unauthorized"
    assert h["www-authenticate"].startswith("Bearer")
    st, _, _ = a.request("PUT", "/routes/web/weights", json.dumps(good),
                         headers={"Authorization": f"Basic {TOKEN}"})
    assert st == 401
    for wrong in ("wrong", TOKEN + "x", TOKEN[:-1], "", " " + TOKEN.upper()):
        st, body = a.put_weights("web", good, token=wrong)
        assert st in (401, 403), wrong
        if wrong.strip():
            assert st == 403 and body["code"] == "forbidden"
    st, _, _ = a.request("POST", "/routes/web/guard/arm", b"")
    assert st == 401
    assert a.get("/status")[0] == 200 and a.get("/metrics")[0] == 200
    assert set(o for _, o in origins_seen(p, 8)) == {"blue"}

    # unknown route: 404 (after authentication)
    st, body = a.put_weights("nope", good)
    assert st == 404 and body["code"] == "unknown_route" and "nope" in body["error"]
    st, body = a.put_weights("nope", good, token="wrong")
    assert st == 403

    for raw, code, text in BAD_BODIES:
        st, _, data = a.request("PUT", "/routes/web/weights", raw, TOKEN)
        body = json.loads(data)
        assert st == 400, (raw, st, body)
        assert body["code"] == code, (raw, body)
        assert text in body["error"], (raw, body)
    # nothing changed: still all blue, weights from the config
    assert set(o for _, o in origins_seen(p, 8)) == {"blue"}
    tracks = a.status()["routes"][0]["tracks"]
    assert [(t["weight"], t["source"]) for t in tracks] == [(1, "config"), (0, "config")]

    # a good one, with JSON escapes and whitespace: applied at once, exact split
    st, _, data = a.request("PUT", "/routes/web/weights",
                            b' {\n "bl\\u0075e" : 1 ,\t"canary":3 } \r\n', TOKEN)
    assert st == 200, data
    assert json.loads(data)["weights"] == good
    seq = [o for _, o in origins_seen(p, 40)]
    assert seq.count("canary") == 30
    for i in range(0, 40, 4):
        assert seq[i:i + 4].count("canary") == 3, seq
    # a track left out gets 0 (the body is the whole split, as in Redis)
    st, body = a.put_weights("web", {"canary": 5})
    assert st == 200 and body["weights"] == {"blue": 0, "canary": 5}
    assert set(o for _, o in origins_seen(p, 10)) == {"canary"}
    assert "admin: weights of route web set by 127.0.0.1:" in p.stderr_text()
    assert re.search(r"weights applied route=web blue=0,canary=5 \(was blue=1,canary=3 from admin\) "
                     r"source=admin", p.stderr_text())


def test_put_weights_without_token_file_is_open(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    p, a = start_with_admin(cutover, tmp_path,
                            tracks=[track("blue", 1, blue), track("canary", 0, canary)])
    st, body = a.put_weights("web", {"blue": 0, "canary": 1}, token=None)
    assert st == 200, body
    assert set(o for _, o in origins_seen(p, 5)) == {"canary"}
    st, body = a.arm("web", token=None)
    assert st == 409 and body["code"] == "no_guard"


def test_route_names_percent_decoded(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    p, a = start_with_admin(cutover, tmp_path, routes=[
        route([track("blue", 1, blue), track("canary", 0, canary)], name="my.web-1")])
    st, body = a.put_weights("my%2Eweb%2D1", {"canary": 1}, token=None)
    assert st == 200, body
    assert body["route"] == "my.web-1"
    st, body = a.put_weights("my%00web", {"canary": 1}, token=None)
    assert st == 404


# ---------------------------------------------------------------------------
# /healthz during a SIGTERM drain


def test_healthz_503_while_draining(cutover, origins, tmp_path):
    blue = origins("blue")
    p, a = start_with_admin(cutover, tmp_path, tracks=[track("blue", 1, blue)],
                            timeouts={"drain_ms": 8000})
    assert a.get("/healthz")[0] == 200

    def slow():
        with p.h1(timeout=15) as c:
            return c.request("GET", "/slow?delay_ms=2000").status

    t, box = run_in_thread(slow)
    poll(lambda: blue.count() == 1, what="the slow request at the origin")
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    st = poll(lambda: (lambda r: r if r[0] == 503 else None)(a.get("/healthz")),
              what="503 from /healthz")
    assert st[2] == b"draining\n"
    assert time.monotonic() - t0 < 1.5, "healthz did not flip at once"
    s = a.status()
    assert s["draining"] is True
    assert sample_value(a.metrics(), "cutover_draining") == 1
    t.join(10)
    assert box.get("result") == 200, box
    assert p.wait_exit(timeout=10) == 0
    assert time.monotonic() - t0 >= 1.0


def test_clean_exit_after_every_endpoint(cutover, origins, tmp_path):
    """Exercise every endpoint and error path, then SIGTERM: exit 0 and, in
    the asan build, no sanitizer report (leaks are reported at exit)."""
    blue, canary = origins("blue", "canary")
    p, a = start_with_admin(cutover, tmp_path, token=TOKEN, routes=[
        route([track("blue", 1, blue), track("canary", 1, canary)], guard=GUARD_FAST)])
    origins_seen(p, 10)
    for path in ("/status", "/metrics", "/healthz", "/nope"):
        a.get(path)
    a.request("HEAD", "/metrics")
    a.request("DELETE", "/status")
    for raw, _, _ in BAD_BODIES:
        a.request("PUT", "/routes/web/weights", raw, TOKEN)
    a.put_weights("web", {"blue": 1, "canary": 2})
    a.put_weights("web", {"blue": 1}, token="bad")
    a.put_weights("nope", {"blue": 1})
    a.arm("web")
    a.arm("web", token=None)
    # a client that sends half a request and goes away, and one that never sends
    import socket
    s1 = socket.create_connection((LOOPBACK, a.port))
    s1.sendall(b"PUT /routes/web/weights HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"bl")
    s2 = socket.create_connection((LOOPBACK, a.port))
    s1.close()
    assert a.get("/healthz")[0] == 200
    p.signal(signal.SIGTERM)
    assert p.wait_exit(timeout=15) == 0, p.stderr_text()
    s2.close()
    assert "Sanitizer" not in p.stderr_text(), p.stderr_text()


def test_put_weights_mutated_bodies_never_crash(cutover, origins, tmp_path):
    """Random mutations of valid bodies (bytes flipped, inserted, cut): every
    answer is 200 or a 400 with a JSON error, and the proxy keeps serving (run
    it with the asan build to check the parser's memory safety)."""
    import random
    blue, canary = origins("blue", "canary")
    p, a = start_with_admin(cutover, tmp_path,
                            tracks=[track("blue", 1, blue), track("canary", 1, canary)])
    rng = random.Random(5)
    seeds = [b'{"blue": 1, "canary": 2}', b'{"bl\\u0075e":3,"canary":0}', b'{"canary":10}',
             b' { "blue" : 999999 , "canary" : 1 } ', b'{"\\ud83d\\ude00": 1}']
    alphabet = b'{}[]":,.-+eE0123456789 \\/u\t\n\x00\xff\xc3\xa9abcnrtful'
    codes = {}
    c = http.client.HTTPConnection(LOOPBACK, a.port, timeout=10)
    try:
        for i in range(400):
            body = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(body) + 1)
                if op == 0 and body:
                    body[min(pos, len(body) - 1)] = rng.choice(alphabet)
                elif op == 1:
                    body[pos:pos] = bytes([rng.choice(alphabet)])
                else:
                    del body[pos:pos + rng.randint(1, 3)]
            c.request("PUT", "/routes/web/weights", body=bytes(body))
            r = c.getresponse()
            data = r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
            assert r.status in (200, 400), (bytes(body), r.status, data)
            if r.status == 400:
                assert json.loads(data)["code"]
    finally:
        c.close()
    assert codes.get(400, 0) > 100 and codes.get(200, 0) > 5, codes
    assert a.get("/healthz")[0] == 200
    st, body = a.put_weights("web", {"blue": 1, "canary": 1}, token=None)
    assert st == 200
    assert sorted(set(o for _, o in origins_seen(p, 10))) == ["blue", "canary"]
    p.signal(signal.SIGTERM)
    assert p.wait_exit(timeout=15) == 0
    assert "Sanitizer" not in p.stderr_text(), p.stderr_text()
