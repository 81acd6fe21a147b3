"""Weighted tracks: the exact 90/10 split, override, sticky by header and
by cookie."""

import re

import pytest

from conftest import track


@pytest.fixture
def split(cutover, origins):
    blue, canary = origins("blue", "canary")
    return blue, canary


def windows_exact(seq, size, want):
    """Every run of <size> consecutive picks holds exactly <want> canaries."""
    for i in range(len(seq) - size + 1):
        n = seq[i:i + size].count("canary")
        if n != want:
            return i, seq[i:i + size]
    return None


def test_split_90_10_exact_over_1000_on_one_connection(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    seq = []
    with p.h1() as c:
        for i in range(1000):
            r = c.request("GET", f"/r{i}")
            assert r.status == 200
            seq.append(r.origin)
    assert seq.count("blue") == 900 and seq.count("canary") == 100
    assert windows_exact(seq, 10, 1) is None, windows_exact(seq, 10, 1)
    assert (blue.count(), canary.count()) == (900, 100)


def test_split_exact_over_h2c(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)], workers=1)
    with p.h2() as c:
        seq = []
        for batch in range(20):  # 20 x 50 streams in flight
            sids = [c.start("GET", f"/b{batch}/{i}") for i in range(50)]
            out = c.wait(sids, timeout=20)
            assert all(st.status == 200 for st in out)
            seq += [st.origin for st in out]
    assert seq.count("blue") == 900 and seq.count("canary") == 100


def test_split_three_tracks_with_zero_weight(cutover, origins):
    blue, green, canary = origins("blue", "green", "canary")
    p = cutover(tracks=[track("blue", 6, blue), track("green", 0, green),
                        track("canary", 4, canary)], workers=1)
    with p.h1() as c:
        seq = [c.request("GET", "/").origin for _ in range(100)]
    assert (seq.count("blue"), seq.count("green"), seq.count("canary")) == (60, 0, 40)
    assert windows_exact(seq, 10, 4) is None


def test_override_header_forces_track(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)],
                override={"header": "x-cutover-track"})
    with p.h1() as c:
        for _ in range(30):
            assert c.request("GET", "/", headers=[("X-Cutover-Track", "canary")]).origin == "canary"
        for _ in range(10):
            assert c.request("GET", "/", headers=[("x-cutover-track", "blue")]).origin == "blue"
    with p.h2() as c:
        st = c.request("GET", "/", headers=[("x-cutover-track", "canary")])
        assert st.origin == "canary"


def test_override_forces_a_zero_weight_track(cutover, origins):
    blue, green = origins("blue", "green")
    p = cutover(tracks=[track("blue", 1, blue), track("green", 0, green)],
                override={"header": "x-cutover-track"})
    r = p.get("/", headers=[("x-cutover-track", "green")])
    assert r.origin == "green"
    assert p.get("/").origin == "blue"


def test_sticky_header_same_key_same_track_and_split_near_weights(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 90, blue), track("canary", 10, canary)],
                sticky={"header": "x-user-id"}, workers=2)
    first = {}
    with p.h1() as c:
        for rnd in range(2):
            for k in range(800):
                r = c.request("GET", "/", headers=[("X-User-Id", f"user-{k}")])
                assert r.status == 200
                if rnd == 0:
                    first[k] = r.origin
                else:
                    assert r.origin == first[k], f"user-{k} moved"
    # the same keys from other connections (other workers) land the same way
    for k in range(0, 800, 40):
        assert p.get("/", headers=[("x-user-id", f"user-{k}")]).origin == first[k]
    n_canary = sum(1 for v in first.values() if v == "canary")
    # 10% of 800 keys is 80; binomial sd is ~8.5
    assert 45 <= n_canary <= 120, n_canary


def test_sticky_cookie_set_by_proxy(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 50, blue), track("canary", 50, canary)],
                sticky={"cookie": "cutover_id"})
    tracks_seen = set()
    for i in range(20):
        with p.h1() as c:
            r = c.request("GET", "/")
            assert r.status == 200
            cookies = [v for v in r.header_all("set-cookie") if v.startswith("cutover_id=")]
            assert len(cookies) == 1, r.headers
            value = re.match(r"cutover_id=([^;]*)", cookies[0]).group(1)
            assert value
            first = r.origin
            for _ in range(10):
                r = c.request("GET", "/", headers=[("Cookie", f"other=1; cutover_id={value}")])
                assert r.origin == first
            tracks_seen.add(first)
    assert tracks_seen == {"blue", "canary"}  # 20 users at 50/50: both seen


def test_sticky_cookie_over_h2(cutover, split):
    blue, canary = split
    p = cutover(tracks=[track("blue", 50, blue), track("canary", 50, canary)],
                sticky={"cookie": "cutover_id"})
    with p.h2() as c:
        st = c.request("GET", "/")
        cookies = [v for k, v in st.headers if k == "set-cookie" and v.startswith("cutover_id=")]
        assert len(cookies) == 1
        value = re.match(r"cutover_id=([^;]*)", cookies[0]).group(1)
        for _ in range(10):
            # h2 cookie crumbs, as browsers send them
            st2 = c.request("GET", "/", headers=[("cookie", "a=1"), ("cookie", f"cutover_id={value}")])
            assert st2.origin == st.origin
