"""Interop fixtures: a RealStack (tcpdive on a TUN device in a fresh namespace) per test, and
kernel-side programs (nginx, redis-server) started inside that test's own namespace.

Robustness rules for these tests (real time, two stacks, and a loaded CI machine):

- nothing is shared between tests: each test gets its own namespace (``td-<pid>-<n>``), and
  ports come from :func:`unique_port`, never reused within a run;
- a server counts as started only when it answers (redis PING, an HTTP GET), polled with a
  deadline, and failing fast with its log if the process died;
- state that needs packets still in flight (the last FIN of a loop, a TIME_WAIT that appears
  when the peer's FIN lands) is polled with :func:`wait_until`, never read once;
- teardown: the fixture closes the stack, which terminates the programs and deletes the
  namespace, and checks the namespace is gone.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket as pysocket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tcpdive.real import RealModeUnavailable, RealStack, check_real_mode

try:
    check_real_mode()
    _WHY = ""
except RealModeUnavailable as e:
    _WHY = str(e)

needs_real = pytest.mark.skipif(bool(_WHY), reason=f"real mode unavailable: {_WHY}")


def need_binary(name: str) -> None:
    if shutil.which(name) is None and not os.path.exists(f"/usr/sbin/{name}"):
        pytest.skip(f"{name} is not installed (CI installs it from .ci/run's apt list)")


def bulk_bytes() -> int:
    """Bulk size: 20 MB by default (CI time), TCPDIVE_REAL_BULK_BYTES=100000000 for the full run."""
    return int(os.environ.get("TCPDIVE_REAL_BULK_BYTES", 20 * 10**6))


_PORTS = itertools.count(20000 + (os.getpid() % 200) * 100)
T = TypeVar("T")


def unique_port() -> int:
    """A port no other test of this run uses (kernel listeners, tcpdive servers)."""
    return next(_PORTS)


def wait_until(fn: Callable[[], T], ok: Callable[[T], bool] = bool, timeout: float = 10.0,
               what: str = "condition") -> T:
    """Poll ``fn()`` until ``ok(value)``; return the value, or fail with the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if ok(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {v!r} after {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def stack():
    if _WHY:
        pytest.skip(f"real mode unavailable: {_WHY}")
    with RealStack() as st:
        name = st.ns.name
        yield st
    assert name not in os.listdir("/var/run/netns"), f"namespace {name} left behind"


def _log_tail(log) -> str:
    try:
        return log.read_text()[-2000:] if log is not None else ""
    except OSError:
        return ""


def wait_ready(ns, port: int, probe: Callable[[pysocket.socket], bool] | None = None,
               proc: subprocess.Popen | None = None, log=None, timeout: float = 15.0) -> None:
    """Wait until something in ``ns`` listens on ``port`` and, with ``probe``, answers it
    (a kernel socket inside the namespace); fail fast if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on "
                               f"{port} in {ns.name}: {_log_tail(log)}")
        if any(r["local"].endswith(f":{port}") for r in ns.ss("-tln")):
            if probe is None:
                return
            s = ns.socket()
            # abortive close (RST): the probe must leave no TIME_WAIT behind on either side
            s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                s.settimeout(2)
                s.connect((_addr_of(ns, port), port))
                if probe(s):
                    return
            except OSError as e:
                last = e
            finally:
                s.close()
        time.sleep(0.05)
    raise TimeoutError(f"nothing ready on port {port} in {ns.name} ({last!r}) {_log_tail(log)}")


def _addr_of(ns, port: int) -> str:
    for r in ns.ss("-tln"):
        if r["local"].endswith(f":{port}"):
            return r["local"].rsplit(":", 1)[0]
    raise OSError(f"no listener on {port}")


def wait_listening(ns, port: int, timeout: float = 10.0) -> None:
    wait_ready(ns, port, timeout=timeout)


def _http_ok(s: pysocket.socket) -> bool:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    return s.recv(12).startswith(b"HTTP/1.")


def _redis_pong(s: pysocket.socket) -> bool:
    s.sendall(b"PING\r\n")
    return s.recv(7) == b"+PONG\r\n"


def start_nginx(st, tmp_path, port: int = 8080) -> subprocess.Popen:
    need_binary("nginx")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_bytes(b"hello from nginx\n")
    (www / "big.bin").write_bytes(bytes(range(256)) * 4096)        # 1 MiB
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
user root;
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path {tmp_path}/body;
    server {{ listen {st.kernel_addr}:{port}; root {www}; }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    p = st.ns.popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-e", f"{tmp_path}/error.log"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(st.ns, port, _http_ok, p, tmp_path / "error.log")
    return p


def start_redis(st, tmp_path, port: int = 6379) -> subprocess.Popen:
    need_binary("redis-server")
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    log = tmp_path / "redis.log"
    p = st.ns.popen([exe, "--bind", st.kernel_addr, "--port", str(port), "--save", "",
                     "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
                     "--dir", str(tmp_path), "--logfile", str(log)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(st.ns, port, _redis_pong, p, log)
    return p


class Tcp:
    """The TCP header fields a test needs from one IPv4 datagram on the TUN device."""

    __slots__ = ("sport", "dport", "seq", "ack", "flags", "dlen")

    def __init__(self, data: bytes) -> None:
        ihl = (data[0] & 15) * 4
        tot = struct.unpack_from("!H", data, 2)[0]
        self.sport, self.dport, self.seq, self.ack, off, self.flags = struct.unpack_from(
            "!HHIIBB", data, ihl)
        self.dlen = tot - ihl - (off >> 4) * 4


def tap(st) -> list[tuple[str, Tcp]]:
    """Record (direction, Tcp) of every TCP datagram crossing the TUN device from now on."""
    seen: list[tuple[str, Tcp]] = []

    def fn(direction: str, data: bytes) -> None:
        if data[9] == 6:
            seen.append((direction, Tcp(data)))

    st.call(st.tun.taps.append, fn)
    return seen
