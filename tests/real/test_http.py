"""HTTP interop: kernel curl -> tcpdive's HTTP server, tcpdive client -> kernel nginx."""

from __future__ import annotations

import hashlib
import http.client
import urllib.request

from tcpdive.real import servers
from tcpdive.real.kpeer import pattern_sha256

from .conftest import need_binary, needs_real, start_nginx, unique_port, wait_until

pytestmark = needs_real

N = 50


def test_curl_to_tcpdive_http_keepalive_and_not(stack):
    need_binary("curl")
    port = unique_port()
    stack.run(servers.start(stack, "http", port), timeout=10)
    url = f"http://{stack.addr}:{port}/"
    fmt = "%{http_code} %{num_connects}\n"
    # keep-alive: one curl, N URLs, one connection reused
    outs = [a for _ in range(N) for a in ("-o", "/dev/null")]      # one -o per URL
    r = stack.ns.exec(["curl", "-s", *outs, "-w", fmt, *[url] * N])
    lines = r.stdout.split()
    assert lines[0::2] == ["200"] * N
    assert sum(int(x) for x in lines[1::2]) == 1
    # not keep-alive: Connection: close, one connection per request
    r = stack.ns.exec(["curl", "-s", "-H", "Connection: close", *outs, "-w", fmt,
                       *[url] * N])
    lines = r.stdout.split()
    assert lines[0::2] == ["200"] * N
    assert sum(int(x) for x in lines[1::2]) == N
    # tcpdive closed those (server sends Connection: close, then FIN): TIME_WAIT on its side,
    # the last one once curl's FIN has crossed the TUN device (curl may exit before)
    tw = wait_until(lambda: stack.netstat("TIME_WAIT", header=False), lambda r: len(r) >= N,
                    what="tcpdive TIME_WAIT sockets")
    assert len(tw) == N
    # a body that needs many segments, byte-exact
    r = stack.ns.exec(["sh", "-c", f"curl -s {url}bytes/3000000 | sha256sum"])
    assert r.stdout.split()[0] == pattern_sha256(3_000_000)


def test_tcpdive_client_to_nginx_keepalive_and_not(stack, tmp_path):
    port = unique_port()
    start_nginx(stack, tmp_path, port)
    big = bytes(range(256)) * 4096
    with stack.patch():
        # keep-alive: one http.client connection, N requests
        c = http.client.HTTPConnection(stack.kernel_addr, port, timeout=10)
        for _ in range(N):
            c.request("GET", "/index.html")
            resp = c.getresponse()
            assert resp.status == 200 and resp.read() == b"hello from nginx\n"
        c.request("GET", "/big.bin")
        assert hashlib.sha256(c.getresponse().read()).digest() == hashlib.sha256(big).digest()
        sock_port = c.sock.getsockname()[1]
        c.close()
        # not keep-alive: urllib sends Connection: close, nginx closes each one
        for _ in range(N):
            with urllib.request.urlopen(f"http://{stack.kernel_addr}:{port}/index.html",
                                        timeout=10) as u:
                assert u.read() == b"hello from nginx\n"
    rows = stack.states()
    # nginx closed the urllib connections first: its side holds TIME_WAIT, not ours (the last
    # one once our FIN has landed)
    wait_until(lambda: [r for r in stack.ns.ss("-tan") if r["state"] == "TIME-WAIT"],
               lambda v: len(v) >= N, what="kernel TIME-WAIT sockets")
    assert not [r for r in rows if r[0] == "ESTABLISHED" and r[1].endswith(f":{sock_port}")]
