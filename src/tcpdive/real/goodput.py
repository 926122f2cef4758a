"""Linux's own goodput over an impaired path, for comparison with tcpdive's (issue #8).

Two kernel namespaces joined by ``KernelRelay``: 100 Mbit/s, 20 ms each way, 1000-packet queue,
1 % random loss both ways; one bulk sender per algorithm, chosen with TCP_CONGESTION (this
machine's default may be bbr). Needs root; about a minute of real time per algorithm. Run with
``tcpdive bench --goodput --real``. Measured on Linux 6.18: cubic 3.18 Mbit/s, reno 3.46 / 3.43;
bbr over 20 Mbit/s (same delay and loss, 20 s): 18.74 Mbit/s.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .relay import KernelRelay

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


def kernel_goodput(cc: str, secs: float = SECS, loss: float = 0.01,
                   rate_bps: float = 100e6) -> float:
    """Linux's goodput (Mbit/s) with ``cc`` over the impaired relay path, in ``secs`` of real
    time."""
    with KernelRelay(delay=0.020, rate_bps=rate_bps, loss=loss, queue_limit=1000) as rl:
        sink = rl.b.popen([sys.executable, "-c", SINK, str(secs)], stdout=subprocess.PIPE,
                          text=True)
        assert sink.stdout.readline().strip() == "READY"
        src = rl.a.popen([sys.executable, "-c", SRC, rl.b_addr, str(secs), cc])
        out, _ = sink.communicate(timeout=secs + 120)
        src.wait(timeout=30)
        return json.loads(out.strip().splitlines()[-1])["bytes_in_window"] * 8 / secs / 1e6
