"""Interop fixtures: a RealStack (tcpdive on a TUN device in a fresh namespace) per test, and
kernel-side programs (nginx, redis-server) started inside that test's own namespace."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time

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


@pytest.fixture
def stack():
    if _WHY:
        pytest.skip(f"real mode unavailable: {_WHY}")
    with RealStack() as st:
        yield st


def wait_listening(ns, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["local"].endswith(f":{port}") for r in ns.ss("-tln")):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} in {ns.name}")


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
    wait_listening(st.ns, port)
    return p


def start_redis(st, tmp_path, port: int = 6379) -> subprocess.Popen:
    need_binary("redis-server")
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    p = st.ns.popen([exe, "--bind", st.kernel_addr, "--port", str(port), "--save", "",
                     "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
                     "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    wait_listening(st.ns, port)
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
