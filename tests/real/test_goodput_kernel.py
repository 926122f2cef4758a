"""Linux's own goodput over the impaired path of tests/tcp/test_goodput.py (issue #8).

Two kernel namespaces joined by KernelRelay: 100 Mbit/s, 20 ms each way, 1000-packet queue,
1 % random loss both ways; one bulk sender for 60 s of real time per algorithm (selected with
TCP_CONGESTION, since this machine's default may be bbr). Two minutes of wall time, so it runs
only with TCPDIVE_GOODPUT=1. Measured on Linux 6.18: cubic 3.18 Mbit/s, reno 3.46 / 3.43.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tcpdive.real import KernelRelay

pytestmark = pytest.mark.skipif(not os.environ.get("TCPDIVE_GOODPUT"),
                                reason="2 minutes of real time: set TCPDIVE_GOODPUT=1")

SECS = 60.0

SRC = r'''
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[3].encode())
s.connect((sys.argv[1], 9300))
buf = bytes(1 << 16)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    s.send(buf)
s.close()
'''

SINK = r'''
import socket, sys, time, json
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", 9300)); ls.listen(1); print("READY", flush=True)
s, _ = ls.accept(); t0 = time.time(); n = 0; win = 0; secs = float(sys.argv[1])
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
    if time.time() - t0 <= secs:
        win = n
print(json.dumps({"bytes": n, "bytes_in_window": win}), flush=True)
'''


def kernel_goodput(cc: str, secs: float = SECS, loss: float = 0.01) -> float:
    with KernelRelay(delay=0.020, rate_bps=100e6, loss=loss, queue_limit=1000) as rl:
        sink = rl.b.popen([sys.executable, "-c", SINK, str(secs)], stdout=subprocess.PIPE,
                          text=True)
        assert sink.stdout.readline().strip() == "READY"
        src = rl.a.popen([sys.executable, "-c", SRC, rl.b_addr, str(secs), cc])
        out, _ = sink.communicate(timeout=secs + 120)
        src.wait(timeout=30)
        return json.loads(out.strip().splitlines()[-1])["bytes_in_window"] * 8 / secs / 1e6


def test_kernel_goodput_matches_tcpdive():
    from tests.tcp.test_goodput import goodput

    for cc in ("cubic", "reno"):
        linux = kernel_goodput(cc)
        ours, _ = goodput(cc)
        print(f"{cc}: linux {linux:.2f} Mbit/s, tcpdive {ours:.2f} Mbit/s")
        assert abs(ours - linux) / linux < 0.15
