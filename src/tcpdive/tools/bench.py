"""``tcpdive bench``: wall-clock speed and memory of the simulator, next to the real kernel.

Figures, not assertions: segments per second of a bulk transfer, connection lifecycles per
second, bytes per idle ESTABLISHED socket and per TIME_WAIT socket, and the same churn and bulk
through the Linux kernel over loopback on this machine as the reference ratio.
"""

from __future__ import annotations

import gc
import json
import platform
import socket as pysocket
import struct
import subprocess
import sys
import threading
import time

from ..sim.world import World
from .pypy import JIT_PARAMS, child_env, find_pypy, on_pypy, tune_jit

_INFO = struct.Struct("=BBBBBBBBIIIIIIIIIIIIIIIIIIIIIIIIQQQQIIIIII")


def _world(delay: float = 0.0005, offload: bool = False):
    w = World(seed=7)
    a = w.host("a", "10.0.0.1")
    b = w.host("b", "10.0.0.2")
    w.link(a, b, delay=delay, offload=offload)
    return w, a, b


def bench_bulk(nbytes: int, offload: bool = True) -> dict:
    """Bulk transfer a -> b; data segments per wall second.

    ``offload``: the link's devices do TSO/GSO, GRO and checksum offload, as Linux's lo and
    veth do by default (one packet per TSO burst); False: one wire packet per MSS segment.
    """
    w, a, b = _world(offload=offload)
    ls = b.socket()
    ls.bind(("0.0.0.0", 5001))
    ls.listen(8)
    got = 0

    async def sink():
        nonlocal got
        conn, _ = await ls.aaccept()
        while True:
            d = await conn.arecv(1 << 20)
            if not d:
                break
            got += len(d)
        conn.close()

    b.spawn(sink())
    cs = a.socket()
    cs.connect(("10.0.0.2", 5001))
    payload = b"x" * nbytes
    t0 = time.perf_counter()
    cs.sendall(payload)
    cs.close()
    w.run_for(5)
    dt = time.perf_counter() - t0
    segs = cs.sk.data_segs_out
    return {"bytes": got, "segments": segs, "wall_s": dt, "segs_per_s": segs / dt,
            "virtual_s": w.now(), "packets": a.mib["IpOutRequests"]}


def bench_churn(n: int, offload: bool = True) -> dict:
    """Connect, one request/response, close — n times; lifecycles per wall second.

    ``offload``: checksum offload (and TSO/GRO, idle for small segments) on the link, as on
    Linux's lo which the reference churn runs over; False: every checksum in software.
    """
    w, a, b = _world(offload=offload)
    ls = b.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(1024)

    async def server():
        while True:
            conn, _ = await ls.aaccept()
            await conn.arecv(100)
            await conn.asend(b"HTTP/1.1 200 OK\r\n\r\n")
            conn.close()

    srv = b.spawn(server())

    async def client():
        for _ in range(n):
            s = a.socket()
            await s.aconnect(("10.0.0.2", 80))
            await s.asend(b"GET / HTTP/1.1\r\n\r\n")
            while await s.arecv(100):
                pass
            s.close()

    t0 = time.perf_counter()
    a.run(client())
    dt = time.perf_counter() - t0
    srv.cancel()
    w.run_for(0)
    return {"lifecycles": n, "wall_s": dt, "per_s": n / dt}


def bench_memory(n: int) -> dict:
    """Bytes per idle ESTABLISHED socket and per TIME_WAIT socket (tracemalloc).

    ``n`` connections over several server ports (one destination port has only 64512 source
    ports); both ends of each count as ESTABLISHED sockets, the client ends as TIME_WAIT after
    the client closes first. CPython only: PyPy has no tracemalloc.
    """
    import tracemalloc

    w, a, b = _world()
    nports = n // 50000 + 1
    listeners = []
    for i in range(nports):
        ls = b.socket()
        ls.bind(("0.0.0.0", 80 + i))
        ls.listen(4096)
        listeners.append(ls)
    a.sysctl.set("ip_local_port_range", "1024 65535")
    a.sysctl.set("tcp_max_tw_buckets", max(n, 262144))
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    clients = []
    servers = []

    def drain() -> None:
        for ls in listeners:
            while ls.sk.accept_queue:
                servers.append(ls.accept()[0])

    for i in range(n):
        s = a.socket()
        s.setblocking(False)
        try:
            s.connect(("10.0.0.2", 80 + i % nports))
        except OSError:
            pass
        clients.append(s)
        if i % 256 == 255:
            w.run_for(0.01)
            drain()
    w.run_for(0.01)
    drain()
    w.run_for(1)
    gc.collect()
    m1 = tracemalloc.get_traced_memory()[0]
    est = sum(1 for s in clients if s.sk.state == 1) + sum(1 for s in servers if s.sk.state == 1)
    per_est = (m1 - m0) / max(est, 1)
    for s in clients:
        s.close()
    w.run_for(0.05)
    for s in servers:
        s.close()
    w.run_for(1)
    clients.clear()
    servers.clear()
    gc.collect()
    m2 = tracemalloc.get_traced_memory()[0]
    tw = a.tw_count
    w.run_for(61)                     # TIME_WAIT expires: what it held is given back
    gc.collect()
    m3 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"established": est, "bytes_per_established": per_est, "time_wait": tw,
            "bytes_per_time_wait": (m2 - m3) / max(tw, 1),
            "bytes_per_time_wait_all": (m2 - m0) / max(tw, 1)}


def linux_churn(n: int) -> dict:
    """The same churn through the real kernel on 127.0.0.1."""
    srv = pysocket.socket()
    srv.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve():
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            c.recv(100)
            c.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    t0 = time.perf_counter()
    for _ in range(n):
        s = pysocket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        while s.recv(100):
            pass
        s.close()
    dt = time.perf_counter() - t0
    stop.set()
    th.join(2)
    srv.close()
    return {"lifecycles": n, "wall_s": dt, "per_s": n / dt}


def linux_bulk(nbytes: int) -> dict:
    """Bulk through the real kernel over loopback; segments from TCP_INFO."""
    srv = pysocket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = [0]

    def sink():
        c, _ = srv.accept()
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            got[0] += len(d)
        c.close()

    th = threading.Thread(target=sink, daemon=True)
    th.start()
    s = pysocket.create_connection(("127.0.0.1", port))
    payload = b"x" * nbytes
    t0 = time.perf_counter()
    s.sendall(payload)
    info = _INFO.unpack_from(s.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_INFO, _INFO.size))
    s.shutdown(pysocket.SHUT_WR)
    th.join(10)
    dt = time.perf_counter() - t0
    s.close()
    srv.close()
    segs = info[-1]   # tcpi_data_segs_out
    return {"bytes": got[0], "segments": segs, "wall_s": dt, "segs_per_s": segs / dt,
            "mss": info[10]}


def bench_goodput(cc: str, secs: float = 60.0, seed: int = 1, loss: float = 0.01,
                  rate_bps: float = 100e6) -> tuple[float, dict]:
    """Goodput (Mbit/s) of one bulk sender over ``rate_bps`` (100 Mbit/s), 20 ms each way,
    1000-packet queue and ``loss`` both ways, in ``secs`` of virtual time; also the sender's MIB
    counters."""
    w = World(seed=seed)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=0.020, rate_bps=rate_bps, queue_limit=1000, loss=loss)
    for h in (c, s):
        h.sysctl.set("tcp_congestion_control", cc)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)
    got = [0]
    chunk = bytes(1 << 16)

    async def client() -> None:
        sock = c.socket()
        await sock.aconnect(("10.0.0.2", 80))
        while True:
            await sock.asendall(chunk)

    async def server() -> None:
        sock, _ = await ls.aaccept()
        while True:
            d = await sock.arecv(1 << 20)
            if not d:
                return
            got[0] += len(d)

    tc = c.spawn(client())
    ts = s.spawn(server())
    w.run_for(secs)
    tc.cancel()
    ts.cancel()
    return got[0] * 8 / secs / 1e6, dict(c.mib)


def run_goodput(real: bool = False) -> int:
    """CUBIC and Reno goodput on the issue #8 path (100 Mbit/s), BBR's on a 20 Mbit/s one (the
    relay to the real kernel keeps up with that), all at 1 % loss; Linux's over the same path
    with --real."""
    for cc, rate, secs in (("cubic", 100e6, 60.0), ("reno", 100e6, 60.0), ("bbr", 20e6, 20.0)):
        t0 = time.perf_counter()
        mbps, _ = bench_goodput(cc, secs, rate_bps=rate)
        line = (f"  goodput {cc:5s} over {rate / 1e6:.0f} Mbit/s (sim, {secs:.0f} s virtual in "
                f"{time.perf_counter() - t0:.1f} s wall): {mbps:.2f} Mbit/s")
        if real:
            from ..real.goodput import kernel_goodput

            line += (f"; Linux over the same path: "
                     f"{kernel_goodput(cc, secs, rate_bps=rate):.2f} Mbit/s")
        print(line)
    return 0


def interpreter() -> str:
    """This interpreter, as 'CPython 3.11.7' or 'PyPy 3.11.11 (PyPy 7.3.19)'."""
    name = f"{platform.python_implementation()} {platform.python_version()}"
    pv = getattr(sys, "pypy_version_info", None)
    return f"{name} (PyPy {pv.major}.{pv.minor}.{pv.micro})" if pv else name


def _warm_up(run, rate_key: str, batches: int = 12) -> int:
    """Run ``run()`` until a run is no more than 5 % faster than the one before (a JIT has
    compiled what the workload takes); how many runs that took."""
    prev = run()[rate_key]
    for n in range(2, batches + 1):
        rate = run()[rate_key]
        if rate < prev * 1.05:
            return n
        prev = rate
    return batches


def sim_figures(quick: bool = False, warm: int = 0) -> dict:
    """Bulk (offload on and off) and churn figures of the simulator on this interpreter.

    ``warm``: first run each workload untimed (churn in batches of ``warm`` lifecycles, bulk
    8 MB at a time) until it stops getting faster, so that a JIT (PyPy) is measured warm, as the
    kernel is; CPython needs none.
    """
    n_bulk = (8 if quick else 32) << 20
    n_churn = 300 if quick else 2000
    warmed = {}
    if warm:
        warmed = {
            "churn": warm * _warm_up(lambda: bench_churn(warm), "per_s"),
            "churn0": warm * _warm_up(lambda: bench_churn(warm, offload=False), "per_s"),
            "bulk_mb": 8 * _warm_up(lambda: bench_bulk(8 << 20), "segs_per_s"),
            "bulk0_mb": 8 * _warm_up(lambda: bench_bulk(8 << 20, offload=False), "segs_per_s"),
        }
        n_churn *= 5
    out: dict = {"interpreter": interpreter(), "warm": warmed}
    for key, run in (("bulk", lambda: bench_bulk(n_bulk)),
                     ("bulk0", lambda: bench_bulk(n_bulk, offload=False)),
                     ("churn", lambda: bench_churn(n_churn)),
                     ("churn0", lambda: bench_churn(n_churn, offload=False))):
        if not on_pypy():
            gc.collect()              # the previous run's world is garbage: not on this clock
        out[key] = run()              # (on PyPy a full collection drops compiled loops: no)
    return out


_PYPY_WARM = {False: 4000, True: 1000}   # lifecycles per warm-up batch, by --quick


def pypy_figures(pypy: str, quick: bool = False, timeout: float = 600) -> dict:
    """sim_figures() run by ``pypy`` in a child process, warmed up; tcpdive from this tree."""
    env = child_env()
    cmd = [pypy, "-m", "tcpdive.tools.bench", "--figures", "--warm", str(_PYPY_WARM[quick])]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise RuntimeError(f"{pypy}: {last}")
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    fig["gc_nursery"] = env["PYPY_GC_NURSERY"]
    return fig


def _print_sim(f: dict, lb: dict, lc: dict) -> None:
    r, r0, c, c0 = f["bulk"], f["bulk0"], f["churn"], f["churn0"]
    print(f"  bulk  (sim, TSO/GRO/csum offload on, like Linux lo/veth): "
          f"{r['bytes'] / 1e6:.1f} MB in {r['segments']} data segments "
          f"({r['packets']} IP datagrams sent by a), "
          f"{r['wall_s']:.2f} s wall -> {r['segs_per_s']:,.0f} segments/s "
          f"({r['bytes'] / r['wall_s'] / 1e6:.1f} MB/s of wall time); ratio to Linux lo: "
          f"segments/s {r['segs_per_s'] / max(lb['segs_per_s'], 1):.3f}, "
          f"bytes/s {r['bytes'] / r['wall_s'] / (lb['bytes'] / lb['wall_s']):.3f}")
    print(f"  bulk  (sim, offload off: every MSS segment through the whole stack): "
          f"{r0['bytes'] / 1e6:.1f} MB in {r0['segments']} data segments, "
          f"{r0['wall_s']:.2f} s wall -> {r0['segs_per_s']:,.0f} segments/s "
          f"({r0['bytes'] / r0['wall_s'] / 1e6:.1f} MB/s of wall time)")
    print(f"  churn (sim, csum offload on, like Linux lo): {c['lifecycles']} "
          f"connect+request+close in {c['wall_s']:.2f} s -> {c['per_s']:,.0f} lifecycles/s; "
          f"ratio to Linux lo {c['per_s'] / max(lc['per_s'], 1):.3f}")
    print(f"  churn (sim, offload off): {c0['lifecycles']} in {c0['wall_s']:.2f} s -> "
          f"{c0['per_s']:,.0f} lifecycles/s")


def run_bench(quick: bool = False, pypy: str | None = None) -> int:
    """Print the simulator's figures on this interpreter and on PyPy 3.11 (when found), the
    kernel's over loopback beside them, and the memory figures."""
    n_bulk = (8 if quick else 32) << 20
    n_churn = 300 if quick else 2000
    n_mem = 10_000 if quick else 100_000
    print("tcpdive bench" + (" (quick)" if quick else ""))
    lb = linux_bulk(n_bulk)
    lc = linux_churn(n_churn)
    print(f"  Linux lo: bulk {lb['bytes'] / 1e6:.1f} MB in {lb['segments']} segments "
          f"(mss {lb['mss']}), {lb['wall_s']:.3f} s -> {lb['segs_per_s']:,.0f} segments/s, "
          f"{lb['bytes'] / lb['wall_s'] / 1e6:.0f} MB/s; churn {lc['lifecycles']} in "
          f"{lc['wall_s']:.2f} s -> {lc['per_s']:,.0f} lifecycles/s")
    if on_pypy():                     # `tcpdive bench` itself on PyPy: warm it, no child
        tune_jit()
        f = sim_figures(quick, warm=_PYPY_WARM[quick])
        print(f"simulator on {f['interpreter']}, --jit {JIT_PARAMS}, warmed:")
        _print_sim(f, lb, lc)
        print("memory: measured with tracemalloc, which only CPython has")
        return 0
    f = sim_figures(quick)
    print(f"simulator on {f['interpreter']}:")
    _print_sim(f, lb, lc)
    pypy = pypy or find_pypy()
    if pypy is None:
        print("simulator on PyPy 3.11: no PyPy found (bash scripts/install-pypy, or set TCPDIVE_PYPY)")
    else:
        try:
            fp = pypy_figures(pypy, quick)
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            print(f"simulator on PyPy 3.11: {pypy} failed: {e}")
        else:
            w = fp["warm"]
            print(f"simulator on {fp['interpreter']}, --jit {JIT_PARAMS}, "
                  f"PYPY_GC_NURSERY={fp['gc_nursery']}; JIT warmed until no faster by "
                  f"{w['churn']:,} + {w['churn0']:,} lifecycles and {w['bulk_mb']} + "
                  f"{w['bulk0_mb']} MB of bulk:")
            _print_sim(fp, lb, lc)
    m = bench_memory(n_mem)
    print(f"memory ({interpreter()}): {m['established']:,} idle ESTABLISHED sockets -> "
          f"{m['bytes_per_established']:,.0f} B each; {m['time_wait']:,} TIME_WAIT sockets -> "
          f"{m['bytes_per_time_wait']:,.0f} B each (freed at expiry: mini socket, timer, hash key, "
          f"port bucket), {m['bytes_per_time_wait_all']:,.0f} B counting all table growth")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m tcpdive.tools.bench --figures [--warm N] [--quick]``: the simulator's figures
    on this interpreter as one JSON line (what run_bench reads from a PyPy child)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tcpdive.tools.bench")
    ap.add_argument("--figures", action="store_true", required=True)
    ap.add_argument("--warm", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    tune_jit()
    print(json.dumps(sim_figures(args.quick, args.warm)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
