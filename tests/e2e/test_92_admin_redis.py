"""Admin endpoint with Redis: PUT writes through to a real Redis and a second
instance follows; Redis state in /status and /metrics (connected, reconnects,
last-apply latency); PUT while Redis is down; re-arming a tripped guard with
POST /routes/{route}/guard/arm (state armed written through, the fleet
follows)."""

import math
import time

import pytest

from conftest import route, track
from redis_helpers import (audit_entries, redis_conf, redis_factory, sample, wait_for,
                           weights_key)
from test_90_admin import GUARD_FAST, TOKEN, Admin, admin_conf, poll, sample_value

__all__ = ["redis_factory"]  # the fixture, re-exported for pytest

NO_POLL = 600000  # only pub/sub can explain a change


def guard_key(route_name="web"):
    return f"cutover:route:{route_name}:guard"


def two_instances(cutover, tmp_path, r, tracks=None, routes=None):
    out = []
    for name in ("edge-a", "edge-b"):
        conf = admin_conf(tmp_path, TOKEN)
        p = cutover(tracks=tracks, routes=routes, admin=conf,
                    redis=redis_conf(r, poll_ms=NO_POLL, instance=name))
        out.append((p, Admin(p, conf)))
    return out


def test_put_writes_through_and_second_instance_follows(cutover, origins, redis_factory,
                                                        tmp_path):
    blue, canary = origins("blue", "canary")
    r = redis_factory()
    (p1, a1), (p2, a2) = two_instances(cutover, tmp_path, r,
                                       tracks=[track("blue", 9, blue), track("canary", 1, canary)])
    for a in (a1, a2):
        poll(lambda a=a: a.status()["redis"]["connected"], what="redis connected")
    s = a1.status()["redis"]
    assert s["enabled"] and s["address"] == r.addr and s["prefix"] == "cutover"
    assert s["instance"] == "edge-a" and s["connects"] == 1 and s["failures_in_a_row"] == 0

    st, body = a1.put_weights("web", {"blue": 1, "canary": 4})
    assert st == 200, body
    assert body["redis"] == "written"
    # applied on p1 before the answer: exact split at once
    seq = sample(p1, 50)
    assert seq.count("canary") == 40, seq
    # written through: the hash holds the whole split, an audit entry says admin
    cl = r.client()
    wait_for(lambda: cl.hgetall(weights_key()) == {"blue": "1", "canary": "4"}, 3,
             what="the hash in Redis")
    es = audit_entries(r, "web")
    mine = [e for e in es if e.get("source") == "admin"]
    assert mine and mine[-1]["instance"] == "edge-a", es
    assert any(e.get("new") == "blue=1,canary=4" for e in mine), mine
    # the second instance follows through pub/sub, with source "redis"
    poll(lambda: [t["weight"] for t in a2.status()["routes"][0]["tracks"]] == [1, 4], 3,
         what="edge-b following")
    t2 = a2.status()["routes"][0]["tracks"]
    assert [t["source"] for t in t2] == ["redis", "redis"]
    seq = sample(p2, 50)
    assert 39 <= seq.count("canary") <= 41, seq  # SWRR state carried: within one period
    fams = a2.metrics()
    assert sample_value(fams, "cutover_redis_connected") == 1
    assert sample_value(fams, "cutover_weight", route="web", track="canary", source="redis") == 4
    last = sample_value(fams, "cutover_redis_last_apply_seconds")
    assert 0 <= last < 1, last
    assert a2.status()["redis"]["last_apply_ms"] >= 0
    # p1's own weights stay "admin" (its Redis read finds what it wrote)
    assert [t["source"] for t in a1.status()["routes"][0]["tracks"]] in (["admin", "admin"],
                                                                       ["redis", "redis"])


def test_put_while_redis_down_and_reconnects_metric(cutover, origins, redis_factory, tmp_path):
    blue, canary = origins("blue", "canary")
    r = redis_factory()
    conf = admin_conf(tmp_path, TOKEN)
    p = cutover(tracks=[track("blue", 1, blue), track("canary", 0, canary)], admin=conf,
                redis=redis_conf(r, poll_ms=200))
    a = Admin(p, conf)
    poll(lambda: sample_value(a.metrics(), "cutover_redis_connected") == 1, what="connected")
    assert sample_value(a.metrics(), "cutover_redis_reconnects") == 0
    r.kill()
    poll(lambda: sample_value(a.metrics(), "cutover_redis_connected") == 0, what="disconnected")
    st, body = a.put_weights("web", {"blue": 0, "canary": 1})
    assert st == 200 and body["redis"] == "not connected", body
    assert set(sample(p, 10)) == {"canary"}  # applied here all the same
    s = a.status()["redis"]
    assert s["connected"] is False and s["failures_in_a_row"] >= 1
    r.restart()
    poll(lambda: sample_value(a.metrics(), "cutover_redis_reconnects") == 1, 10,
         what="one reconnect")
    assert sample_value(a.metrics(), "cutover_redis_connected") == 1


GUARD = GUARD_FAST


def trip(p, canary, n=120):
    """Makes the canary fail until the guard snaps it back (bounded)."""
    canary.get("/__mode?status=500")
    with p.h1() as c:
        for i in range(n):
            c.request("GET", f"/t{i}")
    canary.get("/__mode?reset=1")


def test_arm_after_trip(cutover, origins, redis_factory, tmp_path):
    blue, canary = origins("blue", "canary")
    r = redis_factory()
    routes = [route([track("blue", 1, blue), track("canary", 1, canary)], guard=GUARD)]
    (p1, a1), (p2, a2) = two_instances(cutover, tmp_path, r, routes=routes)
    for a in (a1, a2):
        poll(lambda a=a: a.status()["redis"]["connected"], what="redis connected")
    g = a1.status()["routes"][0]["guard"]
    assert g["state"] == "armed" and g["trips"] == 0 and g["last_trip"] is None

    # arming an armed guard is harmless
    st, body = a1.arm("web")
    assert st == 200 and body == {"route": "web", "guard": "armed", "was_tripped": False,
                                  "redis": "written"}, body

    trip(p1, canary)
    s = poll(lambda: (lambda s: s if s["routes"][0]["guard"]["state"] == "tripped" else None)(
        a1.status()), what="tripped")
    g = s["routes"][0]["guard"]
    assert g["trips"] == 1
    lt = g["last_trip"]
    assert lt["test"] in ("F", "E2", "ceiling", "E1") and lt["text"], lt
    assert lt["candidate_errors"] >= 1 and lt["ms_ago"] < 10000
    assert set(lt["cusum"]) == {"E1", "E2", "L1", "L2"}
    tr = {t["name"]: t for t in s["routes"][0]["tracks"]}
    assert tr["canary"]["weight"] == 0 and tr["canary"]["source"] == "guard"
    assert set(sample(p1, 20)) == {"blue"}
    fams = a1.metrics()
    assert sample_value(fams, "cutover_guard_tripped", route="web") == 1
    assert sample_value(fams, "cutover_guard_trips", route="web") == 1
    assert sample_value(fams, "cutover_weight", route="web", track="canary", source="guard") == 0
    # the fleet: edge-b reads "state tripped" and holds the canary at 0
    poll(lambda: a2.status()["routes"][0]["guard"]["state"] == "tripped", what="edge-b tripped")
    wait_for(lambda: set(sample(p2, 10)) == {"blue"}, 3, what="edge-b all blue")
    assert r.client().hget(guard_key(), "state") == "tripped"

    # re-arm: 401/403 first, then the right token
    assert a1.arm("web", token=None)[0] == 401
    assert a1.arm("web", token="nope")[0] == 403
    assert a1.arm("nope")[0] == 404
    st, body = a1.arm("web")
    assert st == 200, body
    assert body == {"route": "web", "guard": "armed", "was_tripped": True, "redis": "written"}
    g = a1.status()["routes"][0]["guard"]
    assert g["state"] == "armed" and g["trips"] == 1
    assert g["last_trip"]["text"] == lt["text"], "the last trip's evidence outlives the re-arm"
    assert sample_value(a1.metrics(), "cutover_guard_tripped", route="web") == 0
    wait_for(lambda: r.client().hget(guard_key(), "state") == "armed", 3, what="state armed")
    poll(lambda: a2.status()["routes"][0]["guard"]["state"] == "armed", 3, what="edge-b armed")
    # re-arming does not raise the candidate by itself: the trip wrote canary=0 to Redis
    assert [t["weight"] for t in a1.status()["routes"][0]["tracks"]] == [1, 0]
    assert set(sample(p1, 10)) == {"blue"}
    # the operator ramps again; the fleet follows
    st, body = a1.put_weights("web", {"blue": 1, "canary": 1})
    assert st == 200 and body["guard_held"] is False, body
    assert sample(p1, 20).count("canary") == 10
    wait_for(lambda: "canary" in sample(p2, 10), 3, what="canary back on edge-b")
    assert "admin: guard of route web armed by 127.0.0.1:" in p1.stderr_text()


def test_put_while_tripped_holds_the_candidate(cutover, origins, tmp_path):
    blue, canary = origins("blue", "canary")
    conf = admin_conf(tmp_path, TOKEN)
    p = cutover(routes=[route([track("blue", 1, blue), track("canary", 1, canary)],
                              guard=GUARD)], admin=conf)
    a = Admin(p, conf)
    trip(p, canary)
    poll(lambda: a.status()["routes"][0]["guard"]["state"] == "tripped", what="tripped")
    st, body = a.put_weights("web", {"blue": 2, "canary": 3})
    assert st == 200, body
    assert body["requested"] == {"blue": 2, "canary": 3}
    assert body["weights"] == {"blue": 2, "canary": 0} and body["guard_held"] is True, body
    assert set(sample(p, 10)) == {"blue"}
    st, body = a.arm("web")
    assert st == 200 and body["was_tripped"] is True and body["redis"] == "not configured"
    st, body = a.put_weights("web", {"blue": 2, "canary": 3})
    assert body["weights"] == {"blue": 2, "canary": 3} and body["guard_held"] is False, body
    assert sample(p, 50).count("canary") == 30


def test_status_and_metrics_do_not_disturb_the_guard(cutover, origins, tmp_path):
    """Reading /status and /metrics often never evaluates or trips the guard."""
    blue, canary = origins("blue", "canary")
    conf = admin_conf(tmp_path)
    p = cutover(routes=[route([track("blue", 1, blue), track("canary", 1, canary)],
                              guard=GUARD)], admin=conf)
    a = Admin(p, conf)
    with p.h1() as c:
        for i in range(60):
            assert c.request("GET", f"/ok{i}").status == 200
            if i % 5 == 0:
                a.status()
                a.metrics()
    g = a.status()["routes"][0]["guard"]
    assert g["state"] == "armed" and g["trips"] == 0
    assert all(v == 0 for v in g["cusum"].values())
    assert not math.isnan(sum(g["cusum"].values()))
    assert a.status()["redis"] == {"enabled": False}
    time.sleep(0)
