"""End-to-end fixtures for cutover: the real ./cutover binary, real origins
(tests/origin/origin.c) and, for later issues, a real redis-server, all on
free 127.0.0.1 ports and all stopped BY PID at teardown.

Binaries: $CUTOVER_BIN and $ORIGIN_BIN (absolute paths), by default
build/release/cutover and build/release/origin of this repository.

Every network loop here is bounded in count and in time: a hung proxy makes
a test fail within seconds, never hang the suite.
"""

import contextlib
import hashlib
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

import h2.config
import h2.connection
import h2.events
import h2.settings

ROOT = Path(__file__).resolve().parents[2]
CUTOVER_BIN = os.environ.get("CUTOVER_BIN") or str(ROOT / "build" / "release" / "cutover")
ORIGIN_BIN = os.environ.get("ORIGIN_BIN") or str(ROOT / "build" / "release" / "origin")
LOOPBACK = "127.0.0.1"

# Memory ceilings are meaningless under sanitizers (shadow memory, quarantine).
SANITIZED = (
    os.environ.get("CUTOVER_SANITIZED") == "1"
    or any(part in ("asan", "tsan") for part in Path(CUTOVER_BIN).parts)
)
RSS_LIMIT_KB = 64 * 1024

# origin.c generates body byte i as PATTERN[i % 64].
PATTERN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MB = 1024 * 1024


# ---------------------------------------------------------------------------
# ports and processes


_ports_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that
    this session has not handed out before."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def wait_port(port, timeout=10.0, proc=None):
    """Polls a TCP connect to 127.0.0.1:<port> until it succeeds. Fails early
    if <proc> exits. Returns True when the port answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def port_refuses(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return False
    except OSError:
        return True


def kill_pid(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after <timeout>: by PID, never by name."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)


def proc_status(pid):
    """VmRSS and VmHWM of <pid> in kB, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def n_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pattern_sha256(n):
    """SHA-256 of the first <n> bytes origin.c generates for bytes=<n>."""
    h = hashlib.sha256()
    block = PATTERN * 4096  # 256 KiB, a multiple of 64
    while n > 0:
        k = min(n, len(block))
        h.update(block[:k])
        n -= k
    return h.hexdigest()


# ---------------------------------------------------------------------------
# origins


class Origin:
    def __init__(self, name, proc, port, log_path):
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.addr = f"{LOOPBACK}:{port}"
        self.log_path = log_path

    def get(self, path, timeout=5.0):
        c = H1Conn(self.port, timeout=timeout)
        try:
            return c.request("GET", path, headers=[("Connection", "close")])
        finally:
            c.close()

    def count(self):
        """Requests served so far (the /__count request does not count)."""
        return int(self.get("/__count").body.strip())

    def reset_count(self):
        return int(self.get("/__count?reset=1").body.strip())

    def stop(self):
        return kill_pid(self.proc)

    def __repr__(self):
        return f"Origin({self.name}@{self.addr})"


def spawn_ready(argv, log_path, what):
    """Starts <argv> (stderr to <log_path>) and waits up to 10 s for the
    "ready PORT" line every test server prints; returns (proc, port). Kills it
    by PID and raises if the line does not come."""
    errf = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
    errf.close()
    deadline = time.monotonic() + 10
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            ch = os.read(proc.stdout.fileno(), 64)
            if not ch:
                break
            line += ch
        elif proc.poll() is not None:
            break
    m = re.match(rb"ready (\d+)\n", line)
    if not m:
        kill_pid(proc)
        raise RuntimeError(f"{what} did not get ready: {line!r}, "
                           f"stderr: {Path(log_path).read_text(errors='replace')}")
    return proc, int(m.group(1))


def start_origin(name, log_dir, port=0, extra_args=()):
    log_path = Path(log_dir) / f"origin-{name}-{time.monotonic_ns()}.log"
    proc, port = spawn_ready([ORIGIN_BIN, "-p", str(port), "-a", LOOPBACK, "-n", name, *extra_args],
                             log_path, f"origin {name}")
    return Origin(name, proc, port, log_path)


@pytest.fixture
def origins(tmp_path):
    """Factory: origins("blue", "canary") starts one origin per name on a
    free port and returns them (a single Origin for a single name). All are
    killed by PID at teardown."""
    started = []

    def start(*names, extra_args=()):
        out = []
        for n in names:
            o = start_origin(n, tmp_path, extra_args=extra_args)
            started.append(o)
            out.append(o)
        return out[0] if len(out) == 1 else out

    yield start
    for o in started:
        kill_pid(o.proc)
        with contextlib.suppress(Exception):
            o.proc.stdout.close()


# ---------------------------------------------------------------------------
# libconfig rendering


def _lc_value(v, indent):
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**31 <= v < 2**31 else f"{v}L"
    if isinstance(v, float):
        return repr(v) if ("." in repr(v) or "e" in repr(v)) else repr(v) + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Origin):
        return _lc_value(v.addr, indent)
    if isinstance(v, dict):
        inner = "".join(f"{pad}  {k} = {_lc_value(x, indent + 1)};\n" for k, x in v.items())
        return "{\n" + inner + pad + "}"
    if isinstance(v, (list, tuple)):
        if not v:
            return "( )"
        inner = ",\n".join(f"{pad}  {_lc_value(x, indent + 1)}" for x in v)
        return "(\n" + inner + "\n" + pad + ")"
    raise TypeError(f"cannot render {v!r} as libconfig")


def render_libconfig(conf):
    """Renders a dict as a libconfig file: dict -> group, list -> list,
    str/int/float/bool -> scalars, Origin -> its "ip:port"."""
    return "".join(f"{k} = {_lc_value(v, 0)};\n" for k, v in conf.items())


def track(name, weight, *servers):
    return {"name": name, "weight": weight,
            "servers": [s.addr if isinstance(s, Origin) else s for s in servers]}


def route(tracks, name="web", host="*", path_prefix="/", sticky=None, override=None, guard=None):
    r = {"name": name, "match": {"host": host, "path_prefix": path_prefix}, "tracks": list(tracks)}
    if sticky:
        r["sticky"] = sticky
    if override:
        r["override"] = override
    if guard:
        r["guard"] = guard
    return r


DEFAULT_TIMEOUTS = {"connect_ms": 1000, "header_ms": 5000, "idle_ms": 30000,
                    "upstream_ms": 10000, "drain_ms": 3000}


# ---------------------------------------------------------------------------
# TLS material


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """(cert, key): conf/tls/ of the repository when present, else a
    self-signed pair generated with the openssl CLI for this session."""
    cert, key = ROOT / "conf" / "tls" / "cert.pem", ROOT / "conf" / "tls" / "key.pem"
    if cert.is_file() and key.is_file() and os.access(key, os.R_OK):
        return str(cert), str(key)
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def client_ssl_context(alpn=("h2", "http/1.1")):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


# ---------------------------------------------------------------------------
# the proxy


class Proxy:
    """One ./cutover process. Build its config with conf(), start it with
    start(conf); reload(conf) rewrites the same file and sends SIGHUP."""

    def __init__(self, tmp_path, tls_files, tls=False):
        self.tmp_path = Path(tmp_path)
        self.tls_files = tls_files
        n = len(list(self.tmp_path.glob("cutover-*.conf")))
        self.conf_path = self.tmp_path / f"cutover-{n}.conf"
        self.stderr_path = self.tmp_path / f"cutover-{n}.stderr"
        self.stdout_path = self.tmp_path / f"cutover-{n}.stdout"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.proc = None
        self.pid = None
        self.expected_exit = False

    # -- config ------------------------------------------------------------

    def conf(self, routes=None, tracks=None, workers=1, timeouts=None, limits=None,
             sticky=None, override=None, **top):
        """A config dict for this proxy's ports. Either <routes> (a list of
        route()) or <tracks> (a list of track(), one catch-all route "web")."""
        if routes is None:
            routes = [route(tracks, sticky=sticky, override=override)]
        listen = [{"address": f"{LOOPBACK}:{self.port}"}]
        if self.tls_port:
            cert, key = self.tls_files
            listen.append({"address": f"{LOOPBACK}:{self.tls_port}",
                           "tls": {"cert": cert, "key": key}})
        c = {"workers": workers, "listen": listen,
             "timeouts": {**DEFAULT_TIMEOUTS, **(timeouts or {})}}
        if limits:
            c["limits"] = dict(limits)
        c.update(top)
        c["routes"] = routes
        return c

    def write_conf(self, conf):
        text = conf if isinstance(conf, str) else render_libconfig(conf)
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf_path)

    # -- life cycle --------------------------------------------------------

    def start(self, conf, ready_timeout=10.0):
        self.write_conf(conf)
        errf = open(self.stderr_path, "ab")
        outf = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([CUTOVER_BIN, "-c", str(self.conf_path)],
                                     stdout=outf, stderr=errf, stdin=subprocess.DEVNULL,
                                     cwd=str(ROOT))
        errf.close()
        outf.close()
        self.pid = self.proc.pid
        for p in (self.port, self.tls_port):
            if p and not wait_port(p, ready_timeout, self.proc):
                raise AssertionError(
                    f"cutover did not listen on {p} (exit {self.proc.poll()}):\n"
                    + self.stderr_text())
        return self

    def reload(self, conf, settle=0.5):
        """Rewrites the config file and sends SIGHUP; waits <settle> seconds
        (the contract has no reload acknowledgement on the data path)."""
        self.write_conf(conf)
        os.kill(self.pid, signal.SIGHUP)
        time.sleep(settle)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its status or None."""
        self.expected_exit = True
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        self.expected_exit = True
        return kill_pid(self.proc)

    # -- observation -------------------------------------------------------

    def stderr_text(self, limit=20000):
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace")

    def rss(self):
        return proc_status(self.pid)

    def fds(self):
        return n_fds(self.pid)

    # -- clients -----------------------------------------------------------

    def h1(self, timeout=10.0, tls=False, alpn=("http/1.1",)):
        if tls:
            return H1Conn(self.tls_port, timeout=timeout, ssl_context=client_ssl_context(alpn))
        return H1Conn(self.port, timeout=timeout)

    def h2(self, timeout=10.0, tls=False, **kw):
        if tls:
            return H2Client(self.tls_port, timeout=timeout, ssl_context=client_ssl_context(), **kw)
        return H2Client(self.port, timeout=timeout, **kw)

    def get(self, path="/", headers=(), timeout=10.0):
        """One GET on a fresh connection."""
        c = self.h1(timeout=timeout)
        try:
            return c.request("GET", path, headers=headers)
        finally:
            c.close()

    def url(self, path="/", tls=False):
        if tls:
            return f"https://{LOOPBACK}:{self.tls_port}{path}"
        return f"http://{LOOPBACK}:{self.port}{path}"


@pytest.fixture
def cutover(tmp_path, tls_files, request):
    """Factory: cutover(tracks=[...] | routes=[...], tls=False, workers=1,
    timeouts={}, limits={}, sticky=..., override=..., start=True) builds a
    config for fresh ports, starts ./cutover on it and waits until every
    listener accepts. Returns the Proxy. Killed by PID at teardown; a proxy
    that died on its own (crash, abort) fails the test."""
    if not os.access(CUTOVER_BIN, os.X_OK):
        pytest.fail(f"cutover binary not found: {CUTOVER_BIN} (run make)")
    proxies = []
    request.node._cutover_proxies = proxies

    def start(tls=False, start=True, **conf_kw):
        p = Proxy(tmp_path, tls_files, tls=tls)
        proxies.append(p)
        if start:
            p.start(p.conf(**conf_kw))
        return p

    yield start
    died = []
    for p in proxies:
        if p.proc is None:
            continue
        if p.proc.poll() is not None and not p.expected_exit:
            died.append(f"cutover exited on its own with status {p.proc.returncode}:\n"
                        + p.stderr_text())
        kill_pid(p.proc)
    if died:
        pytest.fail("\n".join(died), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach each proxy's stderr to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_cutover_proxies", []):
            rep.sections.append((f"cutover stderr ({p.stderr_path})", p.stderr_text()))


# ---------------------------------------------------------------------------
# redis (for the Redis issues; started only by tests that ask for it)


class Redis:
    def __init__(self, proc, port):
        self.proc, self.pid, self.port = proc, proc.pid, port
        self.addr = f"{LOOPBACK}:{port}"

    def client(self):
        import redis
        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=5,
                           decode_responses=True)

    def stop(self):
        return kill_pid(self.proc)


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server on a free port (no persistence), killed by PID."""
    exe = "/usr/bin/redis-server"
    if not os.access(exe, os.X_OK):
        pytest.skip("redis-server is not installed")
    port = free_port()
    log = open(tmp_path / "redis.log", "wb")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start: "
                                   + (tmp_path / "redis.log").read_text(errors="replace"))
            time.sleep(0.02)
        yield Redis(proc, port)
    finally:
        kill_pid(proc)


# ---------------------------------------------------------------------------
# a strict, bounded HTTP/1.1 client over a raw socket


class ConnectionClosed(Exception):
    pass


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lower-case name, value)] in received order
        self.body = body        # bytes, or None when a sink consumed it
        self.version = version

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def has_token(self, name, token):
        """True when the comma-separated header <name> lists <token>."""
        return any(t.strip().lower() == token.lower()
                   for v in self.header_all(name) for t in v.split(","))

    @property
    def origin(self):
        return self.header("x-origin")

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.origin}, {len(self.body or b'')} bytes)"


def build_request(method="GET", path="/", headers=(), body=None, host="test",
                  version="HTTP/1.1"):
    names = {k.lower() for k, _ in headers}
    lines = [f"{method} {path} {version}"]
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


class H1Conn:
    """A keep-alive HTTP/1.1 connection on a raw (optionally TLS) socket.
    Never reconnects: a closed connection raises ConnectionClosed."""

    MAX_HEAD = 1 << 20

    def __init__(self, port, timeout=10.0, ssl_context=None):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.timeout = timeout

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, n=65536):
        try:
            data = self.sock.recv(n)
        except ConnectionResetError as e:
            raise ConnectionClosed(f"reset: {e}") from e
        if not data:
            raise ConnectionClosed("EOF")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._more(max(65536, n - len(self.buf)))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > self.MAX_HEAD:
                raise AssertionError("line too long")
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > self.MAX_HEAD:
                raise AssertionError("response head too long")
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError(f"bad status line {lines[0]!r}")
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            if not sep or k != k.strip():
                raise AssertionError(f"bad header line {ln!r}")
            headers.append((k.lower(), v.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers

    def read_response(self, method="GET", sink=None):
        """Reads one response (skipping 1xx). <sink>(bytes) receives the body
        when given (the Response then has body None)."""
        while True:
            version, status, reason, headers = self.read_head()
            if not 100 <= status < 200:
                break
        resp = Response(status, reason, headers, None, version)
        chunks = []
        put = sink if sink is not None else chunks.append
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if method == "HEAD" or status in (204, 304):
            pass
        elif te is not None and te.lower().split(",")[-1].strip() == "chunked":
            while True:
                size_line = self._line().split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._line() != b"":  # trailers
                        pass
                    break
                put(self._take(size))
                if self._take(2) != b"\r\n":
                    raise AssertionError("bad chunk terminator")
        elif cl is not None:
            left = int(cl)
            while left > 0:
                if not self.buf:
                    self._more(min(left, 1 << 20))
                piece = self.buf[:left]
                self.buf = self.buf[len(piece):]
                left -= len(piece)
                put(piece)
        else:
            while True:  # delimited by close
                if self.buf:
                    put(self.buf)
                    self.buf = b""
                try:
                    self._more()
                except ConnectionClosed:
                    break
        if sink is None:
            resp.body = b"".join(chunks)
        return resp

    def request(self, method="GET", path="/", headers=(), body=None, host="test", sink=None):
        self.send(build_request(method, path, headers, body, host))
        return self.read_response(method, sink=sink)

    def is_closed_by_peer(self, wait=0.2):
        """True if the peer has closed (EOF or reset) within <wait> seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
            if data:
                self.buf += data
                return False
            return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)


def wait_fds(p, at_most, timeout):
    """Polls the proxy's open fd count until it is <= <at_most> or <timeout>
    seconds pass; returns the last count."""
    deadline = time.monotonic() + timeout
    n = p.fds()
    while n > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
        n = p.fds()
    return n


def read_until_close(sock, timeout=10.0, limit=1 << 20):
    """Everything the peer sends until it closes, bounded in time and size."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline and len(data) < limit:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            ch = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not ch:
            break
        data += ch
    return data


# ---------------------------------------------------------------------------
# an HTTP/2 client on python3-h2 (h2c prior knowledge, or TLS with ALPN h2)


class H2Stream:
    def __init__(self, sid, sink=None):
        self.id = sid
        self.status = None
        self.headers = []
        self.trailers = []
        self.data = bytearray()
        self.received = 0
        self.sink = sink
        self.ended = False
        self.reset = None  # error code of a RST_STREAM

    @property
    def done(self):
        return self.ended or self.reset is not None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def origin(self):
        return self.header("x-origin")

    def json(self):
        import json
        return json.loads(bytes(self.data))


class _H2Connection(h2.connection.H2Connection):
    """python3-h2 closes its state machine on any GOAWAY and then refuses
    the frames of streams the peer is still finishing (RFC 9113 6.8 lets
    them complete). After a graceful GOAWAY (NO_ERROR) keep the connection
    open so in-flight streams can be read to their end."""

    def _receive_goaway_frame(self, frame):
        frames, events = super()._receive_goaway_frame(frame)
        if frame.error_code == 0:
            self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return frames, events


class H2Client:
    def __init__(self, port, timeout=10.0, ssl_context=None, auto_ack=True, window=None):
        sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname="localhost")
            self.alpn = sock.selected_alpn_protocol()
            if self.alpn != "h2":
                sock.close()
                raise AssertionError(f"ALPN selected {self.alpn!r}, not h2")
        self.sock = sock
        self.timeout = timeout
        self.auto_ack = auto_ack
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = _H2Connection(config=cfg)
        self.conn.initiate_connection()
        if window:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.conn.increment_flow_control_window(window)
        self.streams = {}
        self.pending = {}  # sid -> [memoryview, end_stream]
        self.remote_settings = {}
        self.goaway = None
        self.closed = False
        self.flush()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, method="GET", path="/", headers=(), body=None, authority="test",
              scheme="http", sink=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", scheme), (":authority", authority),
              (":path", path)] + [(k.lower(), v) for k, v in headers]
        self.streams[sid] = H2Stream(sid, sink)
        self.conn.send_headers(sid, hs, end_stream=(body is None and end))
        if body is not None:
            self.pending[sid] = [memoryview(body), end]
            self._send_pending()
        self.flush()
        return sid

    def _send_pending(self):
        for sid in list(self.pending):
            mv, end = self.pending[sid]
            st = self.streams[sid]
            if st.done:
                del self.pending[sid]
                continue
            while len(mv):
                n = min(len(mv), self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n <= 0:
                    break
                self.conn.send_data(sid, bytes(mv[:n]))
                mv = mv[n:]
                self.pending[sid][0] = mv
            if not len(mv):
                if end:
                    self.conn.end_stream(sid)
                del self.pending[sid]

    def pump(self, timeout=None):
        """Reads once (up to <timeout> s) and handles the events. Returns
        False on timeout, raises ConnectionClosed on EOF."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError) as e:
            self.closed = True
            raise ConnectionClosed(str(e)) from e
        if not data:
            self.closed = True
            raise ConnectionClosed("EOF")
        for ev in self.conn.receive_data(data):
            self._event(ev)
        self._send_pending()
        self.flush()
        return True

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            st.headers = list(ev.headers)
            st.status = int(dict(ev.headers)[":status"])
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if st is not None:
                st.received += len(ev.data)
                if st.sink is not None:
                    st.sink(ev.data)
                else:
                    st.data += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st.reset = ev.error_code
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for code, ch in ev.changed_settings.items():
                self.remote_settings[code] = ch.new_value
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait(self, sids, timeout=None):
        """Pumps until every stream in <sids> has ended or been reset."""
        if isinstance(sids, int):
            sids = [sids]
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not all(self.streams[s].done for s in sids):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"h2 streams {sids} not done in time")
            try:
                self.pump(min(left, 1.0))
            except ConnectionClosed:
                if all(self.streams[s].done for s in sids):
                    break
                raise
        return [self.streams[s] for s in sids] if len(sids) > 1 else self.streams[sids[0]]

    def request(self, method="GET", path="/", headers=(), body=None, timeout=None, **kw):
        sid = self.start(method, path, headers, body, **kw)
        return self.wait(sid, timeout)

    def reset_stream(self, sid, code=8):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def wait_settings(self, timeout=2.0):
        deadline = time.monotonic() + timeout
        while not self.remote_settings and time.monotonic() < deadline:
            self.pump(max(0.01, deadline - time.monotonic()))
        return self.remote_settings


# ---------------------------------------------------------------------------
# misc helpers shared by the test files


def run_in_thread(fn, *args, **kw):
    """Starts fn in a daemon thread; returns (thread, box) where box gets
    'result' or 'error' when it finishes."""
    box = {}

    def body():
        try:
            box["result"] = fn(*args, **kw)
        except BaseException as e:  # reported by the test
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, box


def sample_rss_while(pid, thread, interval=0.05):
    """Samples VmRSS of <pid> until <thread> ends; returns the largest, in kB."""
    peak = 0
    while thread.is_alive():
        with contextlib.suppress(OSError):
            peak = max(peak, proc_status(pid)["VmRSS"])
        thread.join(interval)
    return peak


# ---------------------------------------------------------------------------
# a per-test watchdog (pytest-timeout is not packaged in Debian 12's base set)

TEST_TIMEOUT_S = int(os.environ.get("E2E_TEST_TIMEOUT", "120"))


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog():
    def fire(signum, frame):
        raise TestTimeout(f"test exceeded {TEST_TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
