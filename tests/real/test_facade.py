"""The blocking stdlib-compatible facade (tcpdive.real.socket) and namespace clean-up."""

from __future__ import annotations

import os
import signal
import socket as pysocket
import subprocess
import sys
import threading
import time

import pytest

from tcpdive.real import RealStack, servers
from tcpdive.real.socket import patched

from .conftest import needs_real, unique_port

pytestmark = needs_real


def test_facade_stdlib_semantics(stack):
    echo_port, port, closed_port = unique_port(), unique_port(), unique_port()
    stack.run(servers.start(stack, "echo", echo_port), timeout=10)
    ks = stack.ns.socket()          # a kernel client talking to tcpdive's echo server
    ks.settimeout(10)
    ks.connect((stack.addr, echo_port))
    ks.sendall(b"ping\n")
    assert ks.recv(10) == b"ping\n"
    ks.close()

    ls = stack.ns.socket()
    ls.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    ls.bind((stack.kernel_addr, port))
    ls.listen(4)
    ls.settimeout(10)
    with patched(stack):
        s = pysocket.create_connection((stack.kernel_addr, port), timeout=10)
        assert type(s).__module__ == "tcpdive.real.socket"
        u = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)   # not routed
        assert isinstance(u, pysocket.SocketType)
        u.close()
    k, _ = ls.accept()
    assert s.getpeername() == (stack.kernel_addr, port)
    assert s.getsockname()[0] == stack.addr
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY, 1)
    assert s.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY) == 1
    s.settimeout(0.3)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        s.recv(10)
    assert 0.25 < time.monotonic() - t0 < 2
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.recv(10)
    s.settimeout(5)
    k.sendall(b"line one\nline two\n")
    f = s.makefile("rb")
    assert f.readline() == b"line one\n"
    assert f.readline() == b"line two\n"
    buf = bytearray(8)
    k.sendall(b"12345")
    assert s.recv_into(buf) == 5 and bytes(buf[:5]) == b"12345"
    got = bytearray()

    def drain() -> None:
        while len(got) < 3_000_000:
            d = k.recv(65536)
            if not d:
                break
            got.extend(d)

    th = threading.Thread(target=drain)
    th.start()
    s.sendall(b"x" * 3_000_000)      # more than both buffers: sendall must wait for the reader
    th.join(20)
    assert bytes(got) == b"x" * 3_000_000
    f.close()
    s.close()
    assert k.recv(10) == b""      # FIN only after the makefile and the socket are closed
    k.close()
    ls.close()
    # errors map to the stdlib's exceptions
    r = stack.socket()
    r.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        r.connect((stack.kernel_addr, closed_port))
    r.close()


def test_namespace_removed_on_exit_and_sigterm():
    with RealStack() as st:
        name = st.ns.name
        assert name in os.listdir("/var/run/netns")
    assert name not in os.listdir("/var/run/netns")
    # a process holding a stack that gets SIGTERM still removes its namespace
    code = ("import sys, time; from tcpdive.real import RealStack\n"
            "st = RealStack().start(); print(st.ns.name, flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    name = p.stdout.readline().strip()
    assert name in os.listdir("/var/run/netns")
    p.send_signal(signal.SIGTERM)
    p.wait(20)
    assert name not in os.listdir("/var/run/netns")


def test_cli_serve_and_netstat(tmp_path):
    name = f"td-cli-{os.getpid()}-{unique_port()}"      # never reused within or across runs
    p = subprocess.Popen([sys.executable, "-m", "tcpdive.cli", "real", "serve", "http",
                          "--netns", name, "--duration", "20"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(4)]
        hint = next(ln for ln in lines if "curl" in ln).strip()
        assert hint.startswith(f"ip netns exec {name} curl http://10.77.0.2:80/")
        r = subprocess.run(hint.split(), capture_output=True, text=True, timeout=10)
        assert r.stdout == "hello from tcpdive\n"
        out = subprocess.run([sys.executable, "-m", "tcpdive.cli", "real", "netstat", "--netns",
                              name], capture_output=True, text=True, timeout=10).stdout
        assert "0.0.0.0:80" in out and "LISTEN" in out
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(20)
    assert name not in os.listdir("/var/run/netns")


def test_cli_one_line_error_when_not_root(monkeypatch, capsys):
    from tcpdive.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["real", "serve", "http"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "root" in err
