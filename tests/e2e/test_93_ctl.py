"""`cutover ctl`: status, metrics, healthz, weights and arm against a running
proxy's admin endpoint; address and token from -a/-k or from -c CONF; exit
codes 0 (ok), 1 (HTTP error), 2 (usage or connection error)."""

import json
import os
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from conftest import CUTOVER_BIN, LOOPBACK, ROOT, free_port, route, track
from redis_helpers import sample
from test_90_admin import GUARD_FAST, TOKEN, Admin, admin_conf, poll


def ctl(*args, env=None, timeout=15):
    e = dict(os.environ)
    e.pop("CUTOVER_ADMIN_TOKEN", None)
    e.update(env or {})
    return subprocess.run([CUTOVER_BIN, "ctl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT), env=e)


def start(cutover, origins, tmp_path, guard=None):
    blue, canary = origins("blue", "canary")
    conf = admin_conf(tmp_path, TOKEN)
    p = cutover(routes=[route([track("blue", 1, blue), track("canary", 0, canary)],
                              guard=guard)], admin=conf)
    return p, Admin(p, conf), conf, canary


def test_ctl_status_metrics_healthz(cutover, origins, tmp_path):
    p, a, conf, _ = start(cutover, origins, tmp_path)
    r = ctl("-a", conf["address"], "status")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["pid"] == p.pid and s["routes"][0]["name"] == "web"
    r = ctl("-a", conf["address"], "metrics")
    assert r.returncode == 0, r.stderr
    names = {f.name for f in text_string_to_metric_families(r.stdout)}
    assert "cutover_requests" in names and "cutover_weight" in names
    r = ctl("-a", conf["address"], "healthz")
    assert (r.returncode, r.stdout) == (0, "ok\n")
    # -c CONF: the address (and token) come from the admin block
    r = ctl("-c", str(p.conf_path), "status")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == p.pid


def test_ctl_weights(cutover, origins, tmp_path):
    p, a, conf, _ = start(cutover, origins, tmp_path)
    addr, tok = conf["address"], conf["token_file"]
    r = ctl("-a", addr, "-k", tok, "weights", "web", "blue=1", "canary=3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["weights"] == {"blue": 1, "canary": 3} and out["source"] == "admin"
    assert sample(p, 40).count("canary") == 30
    # token from the config's token_file
    r = ctl("-c", str(p.conf_path), "weights", "web", "blue=1", "canary=1")
    assert r.returncode == 0, r.stderr
    # token from the environment
    r = ctl("-a", addr, "weights", "web", "blue=3", "canary=1", env={"CUTOVER_ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    # HTTP errors: exit 1, the JSON error on stderr
    r = ctl("-a", addr, "weights", "web", "blue=1")
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    bad = tmp_path / "bad.token"
    bad.write_text("nope\n")
    r = ctl("-a", addr, "-k", str(bad), "weights", "web", "blue=1")
    assert r.returncode == 1 and "HTTP 403" in r.stderr
    for args, code in ((["blue=-1"], "negative"), (["purple=1"], "unknown_track"),
                       (["blue=0", "canary=0"], "all_zero"), (["blue=x"], "not_integer"),
                       (["blue=1.5"], "not_integer")):
        r = ctl("-a", addr, "-k", tok, "weights", "web", *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "HTTP 400" in r.stderr and f'"code": "{code}"' in r.stderr, (args, r.stderr)
    r = ctl("-a", addr, "-k", tok, "weights", "nope", "blue=1")
    assert r.returncode == 1 and "HTTP 404" in r.stderr
    # the split is the last good one
    assert sample(p, 40).count("canary") == 10


def test_ctl_arm(cutover, origins, tmp_path):
    p, a, conf, canary = start(cutover, origins, tmp_path, guard=GUARD_FAST)
    addr, tok = conf["address"], conf["token_file"]
    assert ctl("-a", addr, "-k", tok, "weights", "web", "blue=1", "canary=1").returncode == 0
    canary.get("/__mode?status=500")
    with p.h1() as c:
        for i in range(120):
            c.request("GET", f"/t{i}")
    canary.get("/__mode?reset=1")
    poll(lambda: a.status()["routes"][0]["guard"]["state"] == "tripped", what="tripped")
    r = ctl("-a", addr, "-k", tok, "arm", "web")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["guard"] == "armed" and out["was_tripped"] is True
    assert a.status()["routes"][0]["guard"]["state"] == "armed"
    r = ctl("-a", addr, "-k", tok, "arm", "nope")
    assert r.returncode == 1 and "HTTP 404" in r.stderr


def test_ctl_usage_and_connection_errors(tmp_path):
    assert ctl().returncode == 2
    assert ctl("frobnicate").returncode == 2
    assert ctl("weights", "web").returncode == 2
    assert ctl("weights", "web", "blue").returncode == 2
    assert ctl("arm").returncode == 2
    assert ctl("-T", "0", "status").returncode == 2
    r = ctl("-h")
    assert r.returncode == 0 and "usage: cutover ctl" in r.stdout
    # nothing listens there
    r = ctl("-a", f"{LOOPBACK}:{free_port()}", "status")
    assert r.returncode == 2 and "Connection refused" in r.stderr
    r = ctl("-a", "not-an-address", "status")
    assert r.returncode == 2
    r = ctl("-c", str(tmp_path / "missing.conf"), "status")
    assert r.returncode == 2
    r = ctl("-k", str(tmp_path / "missing.token"), "-a", f"{LOOPBACK}:1", "status")
    assert r.returncode == 2
