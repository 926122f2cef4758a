"""``tcpdive bench --real``: bulk throughput tcpdive <-> kernel over TUN, next to kernel <-> kernel.

For each MTU (1500 and a large one) both directions are measured: tcpdive sends NBYTES to a
kernel ``kpeer`` sink in the namespace (and the reverse), checked byte-exact by sha256. The
reference is kernel <-> kernel over a veth pair between two namespaces, same programs.
``TCPDIVE_REAL_BENCH_BYTES`` overrides the size (default 100 MB, 20 MB with ``--quick``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from .kpeer import pattern, pattern_sha256
from .netns import KernelNetns, RealModeUnavailable, check_real_mode
from .stack import RealStack

__all__ = ["bulk_from_kernel", "bulk_to_kernel", "kernel_veth_bulk", "run_real_bench"]

LARGE_MTU = 65000


def _kpeer(ns: KernelNetns, *args: str) -> subprocess.Popen:
    p = ns.popen([sys.executable, "-m", "tcpdive.real.kpeer", *args], stdout=subprocess.PIPE,
                 text=True)
    return p


def _ready(p: subprocess.Popen) -> None:
    line = p.stdout.readline().strip()
    if line != "READY":
        raise RuntimeError(f"kernel peer did not start (said {line!r})")


def _result(p: subprocess.Popen, timeout: float) -> dict[str, Any]:
    out, _ = p.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def bulk_to_kernel(st: RealStack, nbytes: int, port: int = 9101,
                   timeout: float = 600) -> dict[str, Any]:
    """tcpdive (blocking facade) sends ``nbytes`` to a kernel sink; sha256 checked."""
    p = _kpeer(st.ns, "listen-sink", str(port))
    _ready(p)
    s = st.socket()
    s.settimeout(timeout)
    t0 = time.perf_counter()
    s.connect((st.kernel_addr, port))
    for chunk in pattern(nbytes):
        s.sendall(chunk)
    s.close()
    res = _result(p, timeout)
    dt = time.perf_counter() - t0
    return {"bytes": res["bytes"], "seconds": dt, "MBps": res["bytes"] / dt / 1e6,
            "ok": res["bytes"] == nbytes and res["sha256"] == pattern_sha256(nbytes),
            "kernel": res}


def bulk_from_kernel(st: RealStack, nbytes: int, port: int = 9102,
                     timeout: float = 600) -> dict[str, Any]:
    """A kernel source sends ``nbytes`` to tcpdive (blocking facade); sha256 checked."""
    p = _kpeer(st.ns, "listen-source", str(port), str(nbytes))
    _ready(p)
    s = st.socket()
    s.settimeout(timeout)
    h = hashlib.sha256()
    n = 0
    t0 = time.perf_counter()
    s.connect((st.kernel_addr, port))
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    s.close()
    dt = time.perf_counter() - t0
    res = _result(p, timeout)
    return {"bytes": n, "seconds": dt, "MBps": n / dt / 1e6,
            "ok": n == nbytes and h.hexdigest() == res["sha256"], "kernel": res}


def kernel_veth_bulk(nbytes: int, mtu: int = 1500, timeout: float = 300) -> dict[str, Any]:
    """Kernel -> kernel over a veth pair between two fresh namespaces (the reference)."""
    with KernelNetns() as a, KernelNetns() as b:
        a.ip("link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b.name)
        for ns, dev, addr in ((a, "va", "10.79.0.1"), (b, "vb", "10.79.0.2")):
            ns.ip("link", "set", dev, "mtu", str(mtu))
            ns.ip("addr", "add", f"{addr}/24", "dev", dev)
            ns.ip("link", "set", dev, "up")
        sink = _kpeer(b, "listen-sink", "9103")
        _ready(sink)
        src = _kpeer(a, "connect-source", "10.79.0.2", "9103", str(nbytes))
        rs = _result(sink, timeout)
        _result(src, timeout)
        dt = rs["seconds"]          # first byte to EOF at the sink: no interpreter start-up
    return {"bytes": rs["bytes"], "seconds": dt, "MBps": rs["bytes"] / dt / 1e6,
            "ok": rs["sha256"] == pattern_sha256(nbytes)}


def _line(label: str, r: dict[str, Any]) -> str:
    return (f"  {label:<34} {r['bytes'] / 1e6:7.1f} MB in {r['seconds']:6.2f} s -> "
            f"{r['MBps']:7.1f} MB/s ({r['MBps'] * 8:6.0f} Mbit/s){'' if r['ok'] else '  CORRUPT'}")


def run_real_bench(quick: bool = False) -> int:
    try:
        check_real_mode()
    except RealModeUnavailable as e:
        print(f"tcpdive bench --real: {e}", file=sys.stderr)
        return 1
    nbytes = int(os.environ.get("TCPDIVE_REAL_BENCH_BYTES") or ((20 if quick else 100) * 10**6))
    print(f"tcpdive bench --real: {nbytes / 1e6:.0f} MB bulk each way, sha256-checked"
          + (" (quick)" if quick else ""))
    ok = True
    for mtu in (1500, LARGE_MTU):
        with RealStack(mtu=mtu) as st:
            for label, fn in ((f"tcpdive -> kernel  TUN mtu {mtu}", bulk_to_kernel),
                              (f"kernel -> tcpdive  TUN mtu {mtu}", bulk_from_kernel)):
                r = fn(st, nbytes)
                ok &= r["ok"]
                print(_line(label, r), flush=True)
        r = kernel_veth_bulk(nbytes, mtu)
        ok &= r["ok"]
        print(_line(f"kernel -> kernel  veth mtu {mtu}", r), flush=True)
    print("  (tcpdive runs in one Python thread: per-segment interpreter cost bounds it; the "
          "kernel figures include the kpeer Python copy loop)")
    return 0 if ok else 1
