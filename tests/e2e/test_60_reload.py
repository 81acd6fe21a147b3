"""SIGHUP: a valid file applies to new requests without dropping
connections; an invalid one is refused and the old config stays."""

import os
import signal
import time

from conftest import route, track


def canaries(c, n, path="/"):
    return sum(1 for _ in range(n) if c.request("GET", path).origin == "canary")


def test_sighup_good_file_changes_split_keeps_connection(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    with p.h1() as c:
        assert canaries(c, 100) == 10
        p.reload(p.conf(tracks=[track("blue", 50, blue), track("canary", 50, canary)],
                        workers=1))
        # same connection, never re-opened: H1Conn raises if the proxy closed it
        deadline = time.monotonic() + 5
        while True:
            n = canaries(c, 100)
            if 40 <= n <= 60 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert 40 <= n <= 60, n
        assert canaries(c, 100) == 50  # exact again once settled
    with p.h2() as c2:
        seq = [st.origin for st in c2.wait([c2.start("GET", "/") for _ in range(100)])]
        assert seq.count("canary") == 50
    assert p.alive()


def test_sighup_during_in_flight_request(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    with p.h1() as c:
        c.send(b"GET /?delay_ms=800 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.2)
        p.reload(p.conf(tracks=[track("blue", 0, blue), track("canary", 10, canary)],
                        workers=1), settle=0)
        r = c.read_response()
        assert r.status == 200
        time.sleep(0.5)
        assert all(c.request("GET", "/").origin == "canary" for _ in range(20))


def test_sighup_adds_route(cutover, origins):
    blue, other = origins("blue", "other")
    p = cutover(tracks=[track("blue", 1, blue)])
    assert p.get("/new/x").origin == "blue"
    p.reload(p.conf(routes=[route([track("blue", 1, blue)]),
                            route([track("blue", 1, other)], name="new", path_prefix="/new")]))
    deadline = time.monotonic() + 5
    while p.get("/new/x").origin != "other" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert p.get("/new/x").origin == "other"
    assert p.get("/x").origin == "blue"


def test_sighup_bad_file_keeps_old_config(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    good = p.conf(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    with p.h1() as c:
        assert canaries(c, 10) == 1
        bad_files = [
            "this is not libconfig {",
            p.conf(tracks=[track("blue", 0, blue), track("canary", 0, canary)], workers=1),
            p.conf(tracks=[track("blue", 50, blue), track("blue", 50, canary)], workers=1),
            {**p.conf(tracks=[track("blue", 50, blue), track("canary", 50, canary)],
                      workers=1), "unknown_key": 1},
        ]
        for bad in bad_files:
            before = len(p.stderr_text(10**7))
            p.reload(bad, settle=0.5)
            assert p.alive(), "SIGHUP with a bad file killed the proxy"
            assert len(p.stderr_text(10**7)) > before, "refused reload was not logged"
            # the old 90/10 split stays, on the open connection and on new ones
            assert canaries(c, 100) == 10
        with p.h1() as c2:
            assert canaries(c2, 10) == 1
    # a good file after bad ones is still taken
    good["routes"][0]["tracks"][0]["weight"] = 50
    good["routes"][0]["tracks"][1]["weight"] = 50
    p.reload(good)
    with p.h1() as c:
        deadline = time.monotonic() + 5
        while canaries(c, 10) != 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert canaries(c, 100) == 50


def test_sighup_sticky_raise_candidate_only_moves_users_onto_it(cutover, origins):
    blue, canary = origins("blue", "canary")
    kw = dict(sticky={"header": "x-user-id"}, workers=1)
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], **kw)

    def assignment():
        with p.h1() as c:
            return {k: c.request("GET", "/", headers=[("x-user-id", f"u{k}")]).origin
                    for k in range(400)}

    before = assignment()
    p.reload(p.conf(tracks=[track("blue", 70, blue), track("canary", 30, canary)], **kw))
    deadline = time.monotonic() + 5
    after = assignment()
    while after == before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = assignment()
    moved = [k for k in before if before[k] != after[k]]
    assert moved, "no user moved after raising the canary"
    assert all(before[k] == "blue" and after[k] == "canary" for k in moved)
    n_after = sum(1 for v in after.values() if v == "canary")
    assert 80 <= n_after <= 160, n_after  # ~30% of 400


def test_sighup_repeated_quickly(cutover, origins):
    blue, canary = origins("blue", "canary")
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=2)
    with p.h1() as c:
        for i in range(20):
            w = 10 + i
            p.write_conf(p.conf(tracks=[track("blue", 90, blue), track("canary", w, canary)],
                                workers=2))
            p.signal(signal.SIGHUP)
            assert c.request("GET", "/").status == 200
    assert p.alive()


def sig_mask(status):
    """SigBlk of a /proc/PID/task/TID/status text, as an int."""
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigBlk line")


def test_signals_are_the_main_threads(cutover, origins):
    """Workers start with signals blocked, so reload/drain/reopen signals always
    reach the main thread; SIGHUPs sent right after start, spaced out, each give
    exactly one reload."""
    blue = origins("blue")
    p = cutover(tracks=[track("blue", 1, blue)], workers=3)
    # the listeners are up before the worker threads start: wait for the last one
    deadline = time.monotonic() + 10
    while " started: " not in p.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert " started: " in p.stderr_text()
    tids = sorted(int(t) for t in os.listdir(f"/proc/{p.pid}/task"))
    assert len(tids) >= 4, tids  # main + 3 workers
    for tid in tids:
        mask = sig_mask(open(f"/proc/{p.pid}/task/{tid}/status").read())
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            blocked = bool(mask >> (sig - 1) & 1)
            if tid == p.pid:
                assert not blocked, f"main thread blocks {sig!r}"
            else:
                assert blocked, f"thread {tid} does not block {sig!r} (SigBlk {mask:x})"
    for _ in range(5):
        p.signal(signal.SIGHUP)
        time.sleep(0.15)
    deadline = time.monotonic() + 5
    while p.stderr_text().count("configuration reloaded") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.stderr_text().count("configuration reloaded") == 5, p.stderr_text()
    assert p.alive()
