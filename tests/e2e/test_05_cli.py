"""Command line: -V, -t exit codes and `file:line: message` errors."""

import re
import subprocess

import pytest

from conftest import CUTOVER_BIN, ROOT

VALID = """\
workers = 1;
listen = ( { address = "127.0.0.1:18080"; } );
timeouts = { connect_ms = 1000; };
routes = (
  { name = "web";
    match = { host = "*"; path_prefix = "/"; };
    tracks = (
      { name = "blue"; weight = 90; servers = ( "127.0.0.1:9001" ); },
      { name = "canary"; weight = 10; servers = ( "127.0.0.1:9003" ); }
    );
  }
);
"""


def check(path):
    return subprocess.run([CUTOVER_BIN, "-t", "-c", str(path)], capture_output=True,
                          text=True, timeout=10, cwd=str(ROOT))


def with_line(n, text):
    lines = VALID.splitlines()
    lines[n - 1] = text
    return "\n".join(lines) + "\n"


def test_version():
    r = subprocess.run([CUTOVER_BIN, "-V"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert re.search(r"\d+\.\d+", r.stdout + r.stderr)


def test_check_valid_config_exits_0(tmp_path):
    p = tmp_path / "good.conf"
    p.write_text(VALID)
    r = check(p)
    assert r.returncode == 0, r.stderr


# (name, line to replace, replacement, lines the error may point at)
BAD = [
    ("unknown_key", 3, 'timeouts = { connect_ms = 1000; bogus_ms = 5; };', {3}),
    ("unknown_top_key", 1, 'workers = 1; colour = "red";', {1}),
    ("wrong_type", 1, 'workers = "two";', {1}),
    ("duplicate_track", 9,
     '      { name = "blue"; weight = 10; servers = ( "127.0.0.1:9003" ); }', {9}),
    ("weight_out_of_range", 8,
     '      { name = "blue"; weight = 2000000; servers = ( "127.0.0.1:9001" ); },', {8}),
    ("weight_negative", 8,
     '      { name = "blue"; weight = -1; servers = ( "127.0.0.1:9001" ); },', {8}),
    ("bad_server_address", 8,
     '      { name = "blue"; weight = 90; servers = ( "127.0.0.1:http" ); },', {8}),
    ("bad_listen_address", 2, 'listen = ( { address = "nowhere"; } );', {2}),
    ("missing_cert", 2,
     'listen = ( { address = "127.0.0.1:18443"; tls = { cert = "/nonexistent/cert.pem"; '
     'key = "/nonexistent/key.pem"; }; } );', {2}),
    ("syntax_error", 3, 'timeouts = { connect_ms = = 1000; };', {3}),
]


@pytest.mark.parametrize("name,line,text,lines", BAD, ids=[b[0] for b in BAD])
def test_check_invalid_config_exits_1_with_file_line(tmp_path, name, line, text, lines):
    p = tmp_path / f"bad-{name}.conf"
    p.write_text(with_line(line, text))
    r = check(p)
    assert r.returncode == 1, f"exit {r.returncode}, stderr: {r.stderr}"
    m = re.search(re.escape(p.name) + r":(\d+): \S", r.stderr)
    assert m, f"no 'file:line: message' in stderr: {r.stderr!r}"
    assert int(m.group(1)) in lines, r.stderr


def test_check_all_weights_zero(tmp_path):
    p = tmp_path / "zero.conf"
    text = VALID.replace("weight = 90", "weight = 0").replace("weight = 10", "weight = 0")
    p.write_text(text)
    r = check(p)
    assert r.returncode == 1
    m = re.search(re.escape(p.name) + r":(\d+): \S", r.stderr)
    assert m and 4 <= int(m.group(1)) <= 10, r.stderr


def test_check_missing_file(tmp_path):
    r = check(tmp_path / "absent.conf")
    assert r.returncode == 1 and r.stderr.strip()


def test_sample_configs_are_valid():
    samples = sorted((ROOT / "conf").glob("*.conf"))
    if not samples:
        pytest.skip("no conf/*.conf yet")
    for s in samples:
        r = check(s)
        assert r.returncode == 0, f"{s}: {r.stderr}"
