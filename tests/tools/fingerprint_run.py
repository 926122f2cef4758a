"""A seeded simulation whose every observable is printed as one JSON line.

Run by tests/tools/test_pypy.py under CPython and under PyPy: the stack must do exactly the same
thing on both (same packets at the same virtual microseconds, same counters, same bytes).
"""

from __future__ import annotations

import hashlib
import json
import sys

from tcpdive.sim.world import World
from tcpdive.tools.tcpdump import TcpdumpPrinter


def main() -> None:
    w = World(seed=11)
    a = w.host("a", "10.0.0.1")
    b = w.host("b", "10.0.0.2")
    w.link(a, b, delay=0.004, rate_bps=20e6, queue_limit=60, loss=0.03, reorder=0.05,
           duplicate=0.01, corrupt=0.01)
    dump = TcpdumpPrinter(out=None, show_host=True, direction="both").attach([a, b])
    ls = b.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(64)
    got: list[bytes] = []

    async def server() -> None:
        while True:
            conn, _ = await ls.aaccept()
            req = b""
            while len(req) < 200_000:
                d = await conn.arecv(1 << 16)
                if not d:
                    break
                req += d
            got.append(hashlib.sha256(req).digest())
            await conn.asendall(req[::-1])
            conn.close()

    srv = b.spawn(server())

    async def client() -> list[str]:
        out = []
        for i in range(12):
            s = a.socket()
            await s.aconnect(("10.0.0.2", 80))
            payload = bytes((i * 7 + k) & 0xFF for k in range(200_000))
            await s.asendall(payload)
            back = b""
            while d := await s.arecv(1 << 16):
                back += d
            out.append(hashlib.sha256(back).hexdigest()[:16])
            s.close()
        return out

    replies = a.run(client())
    w.run_for(70)
    srv.cancel()
    w.run_for(0)
    print(json.dumps({
        "replies": replies,
        "requests": [h.hex()[:16] for h in got],
        "now_us": w.loop.now_us(),
        "packets": len(dump.lines),
        "tcpdump_sha256": hashlib.sha256("\n".join(dump.lines).encode()).hexdigest(),
        "first": dump.lines[:3],
        "mib_a": dict(a.mib),
        "mib_b": dict(b.mib),
        "python": sys.implementation.name,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
