"""The guard end to end (GUARD.md "Acting", DESIGN.md "The guard"): a canary
that starts failing under load is snapped back in-process and in Redis, with
its evidence in the guard hash and the audit stream, and a second instance
follows (weights and latch); a latency regression trips L1; a canary as
healthy as stable does not trip; the latch holds against Redis polls, events
and reloads until an operator re-arms; Redis down at the trip: local
snap-back, written through once Redis is back.

Guard knobs are chosen so that each case runs in seconds: warm-up of 0.5 s /
20 requests; the other statistics keep GUARD.md's defaults. Load is one
keep-alive client thread (redis_helpers.Load), bounded in requests and time.
"""

import os
import signal
import time

import pytest

from conftest import route, track
from redis_helpers import (Load, audit_entries, events_key, log_count, redis_conf,
                           redis_factory, sample, set_weights, wait_for, wait_log, weights_key)

__all__ = ["redis_factory"]  # the fixture, re-exported for pytest

NO_POLL = 600000
TRIP = r"guard tripped route=web test=(\w+)"


def guard_key(rt="web"):
    return f"cutover:route:{rt}:guard"


def guarded(blue, canary, wb=90, wc=10, **knobs):
    g = {"baseline": "blue", "candidate": "canary", "warmup_ms": 500, "warmup_requests": 20}
    g.update(knobs)
    return [route([track("blue", wb, blue), track("canary", wc, canary)], guard=g)]


def weights(r):
    return {k: int(v) for k, v in r.client().hgetall(weights_key()).items()}


def guard_hash(r):
    return r.client().hgetall(guard_key())


def arm_via_redis(r):
    cl = r.client()
    cl.hset(guard_key(), "state", "armed")
    cl.publish(events_key(), "web")


def quiet_canary(canary, p, n=200):
    """The canary gets nothing more: <n> requests through <p> all go elsewhere."""
    time.sleep(0.2)  # in-flight candidate streams finish
    c0 = canary.count()
    got = sample(p, n)
    assert "canary" not in got, got.count("canary")
    assert canary.count() == c0


@pytest.fixture
def pair(origins):
    return origins("blue", "canary")


def test_crash_snaps_back_here_in_redis_and_on_a_second_instance(cutover, pair, redis_factory):
    blue, canary = pair
    r = redis_factory()
    set_weights(r, blue=90, canary=10)
    p1 = cutover(routes=guarded(blue, canary), redis=redis_conf(r, poll_ms=NO_POLL, instance="p1"))
    p2 = cutover(routes=guarded(blue, canary), redis=redis_conf(r, poll_ms=NO_POLL, instance="p2"))
    with Load(p1, max_requests=40000, max_seconds=20) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)  # warm-up time over
        t_fault = time.monotonic()
        canary.get("/__mode?status=500")
        wait_log(p1, TRIP, timeout=5)
        t_trip = time.monotonic() - t_fault
        time.sleep(0.3)
    assert not load.errors, load.errors[:5]
    assert t_trip < 3, t_trip
    err = p1.stderr_text()
    line = [ln for ln in err.splitlines() if "guard tripped route=web" in ln][0]
    assert "snapped back in-process in" in line and "canary 10 -> 0" in line, line
    # in-process: the canary gets nothing more on either instance
    quiet_canary(canary, p1)
    # Redis: weights, guard hash with its evidence, audit entry with S values and counts
    wait_log(p1, r"guard of route web: trip written through to Redis", timeout=3)
    assert weights(r) == {"blue": 90, "canary": 0}
    gh = guard_hash(r)
    assert gh["state"] == "tripped" and gh["by"] == "p1", gh
    assert gh["reason"] and gh["test"] in ("F", "E2", "E1", "ceiling"), gh
    assert abs(int(gh["at_ms"]) / 1000 - time.time()) < 30, gh
    assert int(gh["cand_errors"]) >= 1 and int(gh["cand_requests"]) >= 20, gh
    assert gh["weights_before"] == "blue=90,canary=10" and gh["weights_after"] == "blue=90,canary=0"
    trips = [e for e in audit_entries(r, "web") if e.get("result") == "tripped"]
    assert len(trips) == 1, trips
    e = trips[0]
    assert e["source"] == "guard" and e["instance"] == "p1", e
    assert e["old"] == "blue=90,canary=10" and e["new"] == "blue=90,canary=0", e
    for k in ("test", "s_e1", "s_e2", "s_l1", "s_l2", "h", "q0", "cand_requests", "cand_errors",
              "base_requests", "base_errors", "max_error_rate", "min_requests"):
        assert k in e, (k, e)
    assert float(e["h"]) == pytest.approx(13.8)
    # the second instance follows: weights from Redis and its own latch
    wait_log(p2, r"guard of route web tripped by p1 at_ms=\d+ \(read from Redis on event", 3)
    quiet_canary(canary, p2)
    set_weights(r, blue=50, canary=50)  # a script pushing the canary up again: held on both
    for p in (p1, p2):
        wait_log(p, r"route web: guard tripped, candidate canary held at 0 \(redis asked for 50\)")
        quiet_canary(canary, p, 100)
    assert {o for _s, o, _t in load.results[-20:]} == {"blue"}


def test_latency_regression_trips_l1(cutover, pair, redis_factory):
    blue, canary = pair
    r = redis_factory()
    # max_p99_ratio out of the way: this case is about L1 alone
    p = cutover(routes=guarded(blue, canary, wb=80, wc=20, max_p99_ratio=1000.0),
                redis=redis_conf(r, poll_ms=NO_POLL, instance="lat"))
    with Load(p, max_requests=60000, max_seconds=25) as load:
        # the baseline's p99 needs 1000 samples in 30 s before L1 judges anything
        wait_for(lambda: sum(o == "blue" for _s, o, _t in load.results) >= 1500, 15,
                 what="1500 baseline samples")
        time.sleep(0.3)  # thresholds published (every 100 ms)
        canary.get("/__mode?delay_ms=40")
        wait_log(p, TRIP, timeout=15)
    assert not load.errors, load.errors[:5]
    line = [ln for ln in p.stderr_text().splitlines() if "guard tripped route=web" in ln][0]
    assert "test=L1" in line, line
    wait_for(lambda: guard_hash(r).get("state") == "tripped", 3, what="guard hash")
    gh = guard_hash(r)
    assert gh["test"] == "L1" and float(gh["s_l1"]) >= 13.8, gh
    assert int(gh["cand_p99_us"]) > int(gh["base_p99_us"]) + 5000, gh
    quiet_canary(canary, p)


def test_healthy_canary_with_the_same_error_rate_does_not_trip(cutover, pair, redis_factory):
    blue, canary = pair
    r = redis_factory()
    for o in pair:
        o.get("/__mode?error_rate=0.01")
    p = cutover(routes=guarded(blue, canary, wb=80, wc=20),
                redis=redis_conf(r, poll_ms=NO_POLL, instance="calm"))
    with Load(p, max_requests=100000, max_seconds=10) as load:
        load.thread.join(12)
    res = load.results
    assert not load.errors, load.errors[:5]
    n_c = sum(o == "canary" for _s, o, _t in res)
    n_5 = sum(s >= 500 for s, _o, _t in res)
    assert len(res) > 3000 and n_c > 500 and n_5 > 0, (len(res), n_c, n_5)
    assert log_count(p, r"guard tripped") == 0, p.stderr_text()[-3000:]
    assert guard_hash(r) == {}
    # the canary still takes traffic (origins back to no errors first: sample()
    # wants every answer to be a 200)
    for o in pair:
        o.get("/__mode?reset=1")
    c0 = canary.count()
    sample(p, 50)
    assert canary.count() > c0


def test_rearm_via_redis_brings_the_candidate_back(cutover, pair, redis_factory):
    blue, canary = pair
    r = redis_factory()
    p1 = cutover(routes=guarded(blue, canary), redis=redis_conf(r, poll_ms=NO_POLL, instance="a"))
    p2 = cutover(routes=guarded(blue, canary), redis=redis_conf(r, poll_ms=NO_POLL, instance="b"))
    with Load(p1, max_requests=20000, max_seconds=15) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)
        canary.get("/__mode?status=500")
        wait_log(p1, TRIP, timeout=5)
    wait_log(p2, r"guard of route web tripped by a ", timeout=3)
    canary.get("/__mode?reset=1")  # fixed
    # the operator sets the weights first: still held while tripped
    set_weights(r, blue=80, canary=20)
    for p in (p1, p2):
        wait_log(p, r"candidate canary held at 0 \(redis asked for 20\)")
        assert "canary" not in sample(p, 50)
    arm_via_redis(r)
    for p in (p1, p2):
        wait_log(p, r"guard of route web re-armed \(redis\); weights from redis: blue=80,canary=20")
        seq = sample(p, 100)
        assert seq.count("canary") == 20, seq.count("canary")
    armed = [e for e in audit_entries(r, "web") if e.get("result") == "armed"]
    assert {e["instance"] for e in armed} == {"a", "b"}, armed
    # armed again: the canary can trip again
    canary.get("/__mode?status=500")
    with Load(p1, max_requests=20000, max_seconds=10):
        wait_log(p1, TRIP, timeout=8, count=2)
    assert weights(r)["canary"] == 0


def test_poll_and_reload_do_not_resurrect_the_old_weights(cutover, pair, redis_factory):
    blue, canary = pair
    r = redis_factory()
    set_weights(r, blue=90, canary=10)
    routes = guarded(blue, canary)
    p = cutover(routes=routes, redis=redis_conf(r, poll_ms=100, instance="poller"))
    with Load(p, max_requests=20000, max_seconds=15) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)
        canary.get("/__mode?status=500")
        wait_log(p, TRIP, timeout=5)
    wait_log(p, r"trip written through to Redis", timeout=3)
    canary.get("/__mode?reset=1")
    # a stale writer puts the pre-trip weights back without publishing: only polls see it
    r.client().hset(weights_key(), mapping={"blue": "90", "canary": "10"})
    time.sleep(1.0)  # ten polls
    quiet_canary(canary, p)
    assert log_count(p, r"candidate canary held at 0 \(redis asked for 10\)") == 1
    assert log_count(p, r"weights applied route=web blue=90,canary=10 \(was") == 0
    # SIGHUP with the config's canary 10: still held
    p.reload(p.conf(routes=routes, redis=redis_conf(r, poll_ms=100, instance="poller")))
    quiet_canary(canary, p)
    assert log_count(p, r"weights applied route=web blue=90,canary=10 \(was") == 0


def test_redis_down_at_trip_snaps_back_locally_then_writes_through(cutover, pair,
                                                                    redis_factory):
    blue, canary = pair
    r = redis_factory(persist=True)  # comes back with the pre-trip weights (canary 10)
    set_weights(r, blue=90, canary=10)
    routes = guarded(blue, canary)
    p = cutover(routes=routes, redis=redis_conf(r, poll_ms=200, instance="lonely"))
    with Load(p, max_requests=30000, max_seconds=20) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)
        r.kill()
        wait_log(p, r"cmd connection\): connection lost")
        canary.get("/__mode?status=500")
        wait_log(p, TRIP, timeout=5)
        wait_log(p, r"guard of route web: Redis is down; snapped back here only")
    assert not load.errors, load.errors[:5]
    quiet_canary(canary, p)
    c0 = canary.count()
    r.restart()
    wait_log(p, r"guard of route web: trip written through to Redis", timeout=10)
    time.sleep(0.5)  # a few polls of what Redis now holds
    assert weights(r) == {"blue": 90, "canary": 0}
    gh = guard_hash(r)
    assert gh["state"] == "tripped" and gh["by"] == "lonely", gh
    trips = [e for e in audit_entries(r, "web") if e.get("result") == "tripped"]
    assert len(trips) == 1 and trips[0]["source"] == "guard", trips
    assert log_count(p, r"weights applied route=web blue=90,canary=10 \(was") == 0
    assert "canary" not in sample(p, 100)
    assert canary.count() == c0
    # an instance started now follows the latch from Redis at once
    p2 = cutover(routes=routes, redis=redis_conf(r, poll_ms=NO_POLL, instance="late"))
    wait_log(p2, r"guard of route web tripped by lonely", timeout=3)
    assert "canary" not in sample(p2, 100)


def test_without_redis_the_trip_is_local_and_survives_sighup(cutover, pair):
    blue, canary = pair
    routes = guarded(blue, canary)
    p = cutover(routes=routes)
    with Load(p, max_requests=20000, max_seconds=15) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)
        canary.get("/__mode?status=500")
        wait_log(p, TRIP, timeout=5)
    assert log_count(p, r"Redis is down") == 0  # no Redis at all: nothing owed
    canary.get("/__mode?reset=1")
    quiet_canary(canary, p)
    p.reload(p.conf(routes=routes))  # the config still says canary 10
    wait_log(p, r"reload: route web: guard tripped, candidate canary held at 0 \(config says 10\)")
    quiet_canary(canary, p)


def test_redis_stalled_at_trip_the_write_is_sent_again(cutover, pair, redis_factory):
    """SIGSTOP: the command connection still looks up, so the write-through is sent
    and never answered; the command timeout drops it and the trip stays owed until
    Redis answers again."""
    blue, canary = pair
    r = redis_factory()
    p = cutover(routes=guarded(blue, canary), redis=redis_conf(r, poll_ms=200, instance="st"))
    with Load(p, max_requests=30000, max_seconds=20) as load:
        wait_for(lambda: sum(o == "canary" for _s, o, _t in load.results) >= 60, 10,
                 what="canary warm-up traffic")
        time.sleep(0.6)
        os.kill(r.pid, signal.SIGSTOP)
        try:
            canary.get("/__mode?status=500")
            wait_log(p, TRIP, timeout=5)
            wait_log(p, r"guard of route web: write-through to Redis failed; sent again", 5)
        finally:
            os.kill(r.pid, signal.SIGCONT)
    assert not load.errors, load.errors[:5]
    wait_log(p, r"guard of route web: trip written through to Redis", timeout=10)
    assert weights(r) == {"blue": 90, "canary": 0}
    assert guard_hash(r)["state"] == "tripped"
    quiet_canary(canary, p)
