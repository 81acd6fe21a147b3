"""Server health inside and across tracks: active health checks (a failing
server leaves the rotation and comes back), fail-open when every track is
unhealthy, passive outlier ejection, and the retry shield that sends
idempotent requests that failed on the candidate once to the baseline."""

import collections
import time

from conftest import free_port, route, track


def counts(p, n, method="GET", body=None):
    c = collections.Counter()
    with p.h1() as conn:
        for i in range(n):
            r = conn.request(method, f"/n{i}", body=body)
            c[(r.status, r.origin)] += 1
    return c


def wait_until(pred, timeout=5.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


HEALTH = {"path": "/health", "interval_ms": 100, "timeout_ms": 500, "rise": 2, "fall": 2}


def health_route(tracks, **extra):
    r = route(tracks)
    r["health"] = dict(HEALTH)
    r.update(extra)
    return r


def test_health_check_removes_a_dead_server_and_brings_it_back(cutover, origins):
    b1, b2 = origins("blue", "blue2")
    p = cutover(routes=[health_route([track("blue", 100, b1, b2)])])
    assert counts(p, 20) == {(200, "blue"): 10, (200, "blue2"): 10}
    b2.get("/__mode?health=503")
    assert wait_until(lambda: counts(p, 10) == {(200, "blue"): 10}), \
        "an unhealthy server stayed in rotation"
    assert "blue2" not in str(counts(p, 30))
    assert "unhealthy" in p.stderr_text()
    b2.get("/__mode?reset=1")
    assert wait_until(lambda: counts(p, 10).get((200, "blue2"), 0) > 0), \
        "a recovered server did not come back"
    assert "healthy again" in p.stderr_text()


def test_unhealthy_track_gives_its_share_to_the_others(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(routes=[health_route([track("blue", 50, blue), track("canary", 50, canary)])])
    assert counts(p, 20) == {(200, "blue"): 10, (200, "canary"): 10}
    canary.get("/__mode?health=503")
    assert wait_until(lambda: counts(p, 10) == {(200, "blue"): 10})
    canary.get("/__mode?reset=1")
    assert wait_until(lambda: counts(p, 20) == {(200, "blue"): 10, (200, "canary"): 10})


def test_every_track_unhealthy_fails_open_to_configured_weights(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(routes=[health_route([track("blue", 50, blue), track("canary", 50, canary)])])
    blue.get("/__mode?health=503")
    canary.get("/__mode?health=503")
    assert wait_until(lambda: "every track is unhealthy" in p.stderr_text(), timeout=5.0) or \
        wait_until(lambda: counts(p, 2) and "failing open" in p.stderr_text(), timeout=5.0)
    # still served, by weight, rather than 503 for everything
    assert counts(p, 20) == {(200, "blue"): 10, (200, "canary"): 10}
    assert "failing open" in p.stderr_text()


def test_outlier_ejection_takes_a_failing_server_out_for_a_while(cutover, origins):
    b1, b2 = origins("blue", "blue2")
    r = route([track("blue", 100, b1, b2)])
    r["outlier"] = {"consecutive_failures": 3, "base_ejection_ms": 1500,
                    "max_ejection_ms": 10000, "max_ejected_percent": 50}
    p = cutover(routes=[r])
    b2.get("/__mode?status=500")
    c = counts(p, 10)  # blue2 fails 5 times in a row: ejected after its 3rd
    assert c[(500, "blue2")] == 3, c
    assert counts(p, 20) == {(200, "blue"): 20}
    assert "ejected 127.0.0.1:" in p.stderr_text()
    b2.get("/__mode?reset=1")
    time.sleep(1.6)
    assert counts(p, 20) == {(200, "blue"): 10, (200, "blue2"): 10}


def test_outlier_ejection_never_takes_the_last_server(cutover, origins):
    b1, canary = origins("blue", "canary")
    r = route([track("blue", 50, b1), track("canary", 50, canary)])
    r["outlier"] = {"consecutive_failures": 2}
    p = cutover(routes=[r])
    canary.get("/__mode?status=500")
    c = counts(p, 40)
    # a one-server track keeps its server: the guard, not ejection, judges tracks
    assert c == {(200, "blue"): 20, (500, "canary"): 20}, c
    assert "ejected" not in p.stderr_text()


# A guard that cannot trip here, so the weights stay put and only the shield acts.
QUIET_GUARD = {"baseline": "blue", "candidate": "canary", "fast_failures": 0, "h": 100.0,
               "max_error_rate": 1.0, "warmup_ms": 0, "warmup_requests": 0}


def test_retry_shield_hides_candidate_5xx_for_get_and_not_for_post(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(routes=[route([track("blue", 75, blue), track("canary", 25, canary)],
                              guard=QUIET_GUARD)])
    canary.get("/__mode?status=500")
    got = counts(p, 100)
    assert got == {(200, "blue"): 100}, got
    assert canary.count() >= 25  # the canary was tried (evidence), then the baseline served
    posts = counts(p, 40, method="POST", body=b"x")
    assert posts == {(200, "blue"): 30, (500, "canary"): 10}, posts
    heads = collections.Counter()
    with p.h1() as conn:
        for i in range(8):
            r = conn.request("HEAD", f"/h{i}")
            heads[(r.status, r.origin)] += 1
    assert heads == {(200, "blue"): 8}, heads


def test_retry_shield_covers_a_candidate_that_refuses_connections(cutover, origins):
    blue = origins("blue")
    dead = f"127.0.0.1:{free_port()}"
    p = cutover(routes=[route([track("blue", 50, blue), track("canary", 50, dead)],
                              guard=QUIET_GUARD)])
    got = counts(p, 40)
    assert got == {(200, "blue"): 40}, got
    posts = counts(p, 10, method="POST", body=b"x")
    assert posts == {(200, "blue"): 5, (502, None): 5}, posts


def test_without_shield_candidate_errors_reach_clients(cutover, origins):
    blue, canary = origins("blue", "canary")
    g = dict(QUIET_GUARD, shield=False)
    p = cutover(routes=[route([track("blue", 75, blue), track("canary", 25, canary)], guard=g)])
    canary.get("/__mode?status=500")
    got = counts(p, 100)
    assert got == {(200, "blue"): 75, (500, "canary"): 25}, got


def test_status_shows_per_server_windows_and_ejection(cutover, origins):
    import json
    import urllib.request
    b1, b2 = origins("blue", "blue2")
    admin_port = free_port()
    r = route([track("blue", 100, b1, b2)])
    r["outlier"] = {"consecutive_failures": 3, "base_ejection_ms": 60000}
    p = cutover(routes=[r], admin={"address": f"127.0.0.1:{admin_port}"})
    b2.get("/__mode?status=503")
    counts(p, 20)

    def servers():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=5) as resp:
            st = json.load(resp)
        route_ = next(x for x in st["routes"] if x["name"] == "web")
        return {s["address"]: s for t in route_["tracks"] for s in t["servers"]}

    assert wait_until(lambda: servers()[b1.addr]["window_60s"]["requests"] >= 17)
    s = servers()
    good, bad = s[b1.addr], s[b2.addr]
    assert good["window_60s"]["errors"] == 0 and good["window_60s"]["p50_ms"] is not None
    assert bad["window_60s"]["requests"] == 3 and bad["window_60s"]["errors"] == 3
    assert bad["window_60s"]["error_rate"] == 1.0
    assert bad["ejection"]["ejected"] is True and bad["ejection"]["ejections"] == 1
    assert good["ejection"]["ejected"] is False


def test_sticky_errors_are_capped_per_user_as_guard_evidence(cutover, origins):
    """GUARD.md: with stickiness errors cluster by user, so one user's errors
    count as evidence at most 3 times per 10 s; many users' errors still trip."""
    blue, canary = origins("blue", "canary")
    g = {"baseline": "blue", "candidate": "canary", "warmup_ms": 0, "warmup_requests": 0,
         "min_requests": 1, "shield": False}
    p = cutover(routes=[route([track("blue", 50, blue), track("canary", 50, canary)],
                              sticky={"header": "x-user"}, guard=g)])
    # users whose key lands on the canary
    users = []
    with p.h1() as conn:
        for i in range(400):
            r = conn.request("GET", "/", headers=[("x-user", f"u{i}")])
            if r.origin == "canary":
                users.append(f"u{i}")
            if len(users) >= 40:
                break
    assert len(users) >= 40
    time.sleep(0.3)
    canary.get("/__mode?status=500")
    with p.h1() as conn:
        for _ in range(30):  # one user hammering a broken canary
            r = conn.request("GET", "/", headers=[("x-user", users[0])])
            assert (r.status, r.origin) == (500, "canary")
    time.sleep(0.5)
    assert "guard tripped" not in p.stderr_text(), p.stderr_text()[-2000:]
    with p.h1() as conn:
        for u in users[1:]:  # many users: real evidence
            conn.request("GET", "/", headers=[("x-user", u)])
    assert wait_until(lambda: "guard tripped" in p.stderr_text(), timeout=3.0), \
        p.stderr_text()[-2000:]
