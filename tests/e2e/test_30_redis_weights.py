"""Live weights from Redis (DESIGN.md "Redis contract"): shifting traffic,
deleting the key, refusing bad values with an audit entry, poll-only mode,
the poll fallback for a missed message, SIGHUP with overrides in place, and
two instances converging on one change."""

import time

import pytest

from conftest import route, track
from redis_helpers import (audit_entries, audit_key, events_key, log_count, publish,
                           redis_conf, redis_factory, sample, set_weights, wait_for, wait_log,
                           wait_split, weights_key)

__all__ = ["redis_factory"]  # the fixture, re-exported for pytest

# pub/sub tests use a long poll so that only the event can explain a change
NO_POLL = 600000


@pytest.fixture
def three(origins):
    return origins("blue", "green", "canary")


def test_shift_100_blue_to_100_green(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    assert set(sample(p, 20)) == {"blue"}
    t0 = time.monotonic()
    set_weights(r, blue=0, green=100)
    wait_split(p, "green", timeout=2)
    assert time.monotonic() - t0 < 2
    assert set(sample(p, 50)) == {"green"}
    line = wait_log(p, r"weights applied route=web blue=0,green=100 \(was blue=100,green=0 "
                       r"from config\) source=redis reason=\"redis event\" in \d+ us after event")
    assert line
    # and back
    set_weights(r, blue=100, green=0)
    wait_split(p, "blue", timeout=2)


def test_90_10_to_50_50_exact(cutover, origins, redis_factory):
    blue, canary = origins("blue", "canary")
    r = redis_factory()
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    seq = sample(p, 100)
    assert seq.count("canary") == 10
    set_weights(r, blue=50, canary=50)
    wait_log(p, r"weights applied route=web blue=50,canary=50")
    seq = sample(p, 300)
    # the smooth-WRR state is carried: at most one period to converge, then exact
    assert seq[100:200].count("canary") == 50 and seq[200:300].count("canary") == 50, seq
    assert 45 <= seq[:100].count("canary") <= 55


def test_99_1_stays_exact_across_repeated_updates(cutover, origins, redis_factory):
    blue, canary = origins("blue", "canary")
    r = redis_factory()
    p = cutover(tracks=[track("blue", 99, blue), track("canary", 1, canary)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    set_weights(r, blue=99, canary=1)  # same split, now from Redis
    seq = []
    with p.h1() as c:
        for i in range(1000):
            if i % 10 == 5:
                publish(r)  # re-read, same weights: must not disturb the split
            seq.append(c.request("GET", f"/x{i}").origin)
    assert seq.count("canary") == 10, seq.count("canary")
    for i in range(0, 1000, 100):
        assert seq[i:i + 100].count("canary") == 1


def test_delete_key_brings_config_back(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    set_weights(r, blue=0, green=100)
    wait_split(p, "green")
    r.client().delete(weights_key())
    publish(r)
    wait_split(p, "blue")
    wait_log(p, r"weights applied route=web blue=100,green=0 \(was blue=0,green=100 from redis\) "
                r"source=config reason=\"redis key absent: config weights back\"")


BAD = [  # (hash, substring of the refusal reason)
    ({"blue": "abc", "green": "10"}, 'field "blue": value "abc" is not a non-negative'),
    ({"blue": "-5", "green": "10"}, 'value "-5" is not a non-negative'),
    ({"blue": "1.5", "green": "10"}, 'value "1.5" is not a non-negative'),
    ({"blue": " 5", "green": "10"}, 'value " 5" is not a non-negative'),
    ({"blue": "0x10", "green": "10"}, 'value "0x10" is not a non-negative'),
    ({"purple": "10"}, 'field "purple": no such track'),
    ({"blue": "0", "green": "0"}, "all weights are zero"),
    ({"blue": "99999999999999999999"}, "is above 1000000"),
]


def test_bad_values_refused_old_weights_kept_and_audited(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    set_weights(r, blue=0, green=100)  # the last good weights
    wait_split(p, "green")
    cl = r.client()
    for i, (h, _reason) in enumerate(BAD):
        with cl.pipeline(transaction=True) as tx:
            tx.delete(weights_key())
            tx.hset(weights_key(), mapping=h)
            tx.execute()
        publish(r)
        wait_log(p, r"redis weights refused: route web", count=i + 1)
        assert set(sample(p, 10)) == {"green"}, h
    # a key that is not a hash at all
    cl.delete(weights_key())
    cl.set(weights_key(), "blue=50")
    publish(r)
    wait_log(p, r"redis weights refused: route web: cutover:route:web:weights is not a hash")
    assert set(sample(p, 10)) == {"green"}

    refused = [e for e in audit_entries(r, "web") if e.get("result") == "refused"]
    assert len(refused) == len(BAD) + 1, refused
    for e, (h, reason) in zip(refused, BAD):
        assert e["source"] == "redis"
        assert e["old"] == "blue=0,green=100"
        assert "route web" in e["reason"]
        assert reason in e["reason"], (reason, e["reason"])
        assert e["instance"]
    assert refused[-1]["new"] == "(not a hash)"

    # the same bad value seen by later reads is not logged or audited again
    n_log = log_count(p, r"redis weights refused")
    for _ in range(3):
        publish(r)
    time.sleep(0.3)
    assert log_count(p, r"redis weights refused") == n_log
    assert len([e for e in audit_entries(r, "web") if e.get("result") == "refused"]) == len(BAD) + 1

    # a good value again is applied
    cl.delete(weights_key())
    set_weights(r, blue=100, green=0)
    wait_split(p, "blue")


def test_audit_stream_records_changes(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 90, blue), track("green", 10, green)],
                redis=redis_conf(r, poll_ms=NO_POLL, instance="edge-1"))
    set_weights(r, blue=50, green=50)
    wait_log(p, r"weights applied route=web blue=50,green=50")
    r.client().delete(weights_key())
    publish(r)
    wait_log(p, r"source=config reason=\"redis key absent")
    es = wait_for(lambda: (lambda x: x if len(x) >= 3 else None)(audit_entries(r, "web")),
                  what="3 audit entries")
    assert [(e["source"], e["old"], e["new"], e["result"]) for e in es] == [
        ("config", "", "blue=90,green=10", "applied"),
        ("redis", "blue=90,green=10", "blue=50,green=50", "applied"),
        ("config", "blue=50,green=50", "blue=90,green=10", "applied"),
    ]
    assert {e["instance"] for e in es} == {"edge-1"}
    assert es[0]["reason"] == "config loaded"
    assert es[1]["reason"] == "redis event"
    # capped stream: XADD MAXLEN ~
    info = r.client().xinfo_stream(audit_key())
    assert info["length"] == 3


def test_poll_only_mode_applies_within_poll_ms(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=300, pubsub=False))
    assert set(sample(p, 10)) == {"blue"}
    set_weights(r, publish=False, blue=0, green=100)
    t0 = time.monotonic()
    wait_split(p, "green", n=5, timeout=3)
    assert time.monotonic() - t0 < 1.0  # poll_ms 300 + slack
    wait_log(p, r"weights applied route=web blue=0,green=100 .* after poll")
    assert log_count(p, r"subscribed to") == 0


def test_missed_message_caught_by_poll(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=300))
    wait_log(p, r"subscribed to cutover:events")
    set_weights(r, publish=False, blue=0, green=100)  # no PUBLISH: the message is "lost"
    t0 = time.monotonic()
    wait_split(p, "green", n=5, timeout=3)
    assert time.monotonic() - t0 < 1.0


def test_sighup_keeps_redis_overrides(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    set_weights(r, blue=0, green=100)
    wait_split(p, "green")
    # the new file changes the config weights; the Redis override must survive the reload
    newconf = p.conf(tracks=[track("blue", 70, blue), track("green", 30, green)],
                     redis=redis_conf(r, poll_ms=NO_POLL))
    with p.h1() as c:
        p.reload(newconf, settle=0)
        seen = [c.request("GET", f"/r{i}").origin for i in range(200)]
    assert set(seen) == {"green"}, "a request went by the config's weights during the reload"
    wait_log(p, r"configuration reloaded")
    wait_log(p, r"reload: route web keeps redis weights blue=0,green=100 "
                r"\(config says blue=70,green=30\)")
    assert set(sample(p, 50)) == {"green"}
    # the key deleted now: the NEW config's weights come back
    r.client().delete(weights_key())
    publish(r)
    wait_log(p, r"weights applied route=web blue=70,green=30 .*source=config")
    seq = sample(p, 100)
    assert seq.count("green") == 30


def test_sighup_with_redis_changes_reconnects(cutover, three, redis_factory):
    """A reload that changes the redis block (another server) switches to it."""
    blue, green, canary = three
    r1, r2 = redis_factory(), redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r1, poll_ms=NO_POLL))
    set_weights(r2, blue=0, green=100)
    assert set(sample(p, 10)) == {"blue"}
    p.reload(p.conf(tracks=[track("blue", 100, blue), track("green", 0, green)],
                    redis=redis_conf(r2, poll_ms=NO_POLL)), settle=0)
    wait_split(p, "green", timeout=3)


def test_two_instances_converge(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    conf = dict(tracks=[track("blue", 100, blue), track("green", 0, green)])
    p1 = cutover(redis=redis_conf(r, poll_ms=NO_POLL, instance="edge-a"), **conf)
    p2 = cutover(redis=redis_conf(r, poll_ms=NO_POLL, instance="edge-b"), **conf)
    for p in (p1, p2):
        wait_log(p, r"subscribed to")
    set_weights(r, blue=0, green=100)
    for p in (p1, p2):
        wait_split(p, "green", timeout=2)
        wait_log(p, r"weights applied route=web blue=0,green=100 .* in \d+ us after event")
    es = [e for e in audit_entries(r, "web") if e["source"] == "redis"]
    assert sorted(e["instance"] for e in es) == ["edge-a", "edge-b"]
    assert all(e["new"] == "blue=0,green=100" for e in es)


def test_several_routes_and_star_message(cutover, origins, redis_factory):
    blue, green = origins("blue", "green")
    r = redis_factory()
    p = cutover(routes=[route([track("blue", 1, blue), track("green", 0, green)], name="web"),
                        route([track("blue", 1, blue), track("green", 0, green)], name="api",
                              path_prefix="/api")],
                redis=redis_conf(r, poll_ms=NO_POLL))
    set_weights(r, route="api", publish=False, blue=0, green=1)
    set_weights(r, route="web", publish=False, blue=0, green=1)
    r.client().publish(events_key(), "api")
    wait_for(lambda: set(sample(p, 5, path="/api/x")) == {"green"}, what="api on green")
    assert set(sample(p, 5)) == {"blue"}, "web changed without its message"
    r.client().publish(events_key(), "*")  # every route
    wait_split(p, "green", n=5)
    r.client().publish(events_key(), "nosuchroute")  # ignored
    time.sleep(0.1)
    assert p.alive()


def test_custom_prefix_and_db(cutover, three, redis_factory):
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL, prefix="edge", db=3))
    wait_log(p, r"connected \(db 3\)")
    cl = r.client(db=3)
    cl.hset("edge:route:web:weights", mapping={"blue": 0, "green": 5})
    cl.publish("edge:events", "web")
    wait_split(p, "green")
    assert cl.xlen("edge:audit") >= 2
    assert r.client().exists(weights_key()) == 0 and r.client().exists("edge:audit") == 0


def test_open_h2_and_h1_connections_follow_a_change(cutover, three, redis_factory):
    """Weights apply to the next request, also on connections opened before."""
    blue, green, canary = three
    r = redis_factory()
    p = cutover(tracks=[track("blue", 100, blue), track("green", 0, green)],
                redis=redis_conf(r, poll_ms=NO_POLL))
    with p.h2() as h2c, p.h1() as h1c:
        assert h2c.request("GET", "/a").origin == "blue"
        assert h1c.request("GET", "/a").origin == "blue"
        set_weights(r, blue=0, green=100)
        wait_log(p, r"weights applied route=web blue=0,green=100")
        assert {h2c.request("GET", f"/b{i}").origin for i in range(10)} == {"green"}
        assert {h1c.request("GET", f"/b{i}").origin for i in range(10)} == {"green"}
