"""1,000,000 TIME_WAIT sockets in one host: build time, memory (tracemalloc), on-time expiry.

    PYTHONPATH=. python tests/tcp/bench_time_wait.py [N]

Not collected by pytest (the CI test in test_ports.py does 100k).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

from tests.tcp.test_ports import _pair_world, make_time_wait


def main(n: int = 1_000_000) -> None:
    w, c, _s = _pair_world()
    c.sysctl.set("net.ipv4.tcp_max_tw_buckets", n)
    w.run_for(1.0)
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    make_time_wait(c, n)
    build = time.perf_counter() - t
    gc.collect()
    mem = tracemalloc.get_traced_memory()[0] - m0
    tracemalloc.stop()
    assert c.tw_count == n == len(c.tcp_hashinfo.ehash)
    w.run_for(59.99)
    alive = c.tw_count
    t = time.perf_counter()
    w.run_for(0.02)
    expire = time.perf_counter() - t
    print(f"{n} TIME_WAIT: built in {build:.1f}s (under tracemalloc), {mem / 2**20:.0f} MiB "
          f"traced = {mem / n:.0f} B each; alive at 59.99 s: {alive}; at 60.01 s: "
          f"{c.tw_count} (expiry pass {expire:.1f}s); TcpExtTW={c.mib['TcpExtTW']}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
