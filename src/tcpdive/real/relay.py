"""KernelRelay: two kernel namespaces joined by TUN devices through tcpdive's impaired Pipe.

::

    ns A  tunA 10.78.0.1/24 ──► Pipe a->b (delay, loss, reorder...) ──► tunB  ns B 10.78.0.2/24
                            ◄── Pipe b->a ◄──

Kernel <-> kernel traffic (two real TCP stacks) crosses a path whose impairments tcpdive
applies in real time: the netem this kernel does not have.
"""

from __future__ import annotations

import random
from typing import Any

from ..sim.link import Pipe
from .netns import KernelNetns, check_real_mode
from .tun import LoopThread, TunPort

__all__ = ["KernelRelay"]


class KernelRelay:
    """Two fresh namespaces ``a`` and ``b`` with addresses ``a_addr``/``b_addr``, relayed."""

    _n = 0

    def __init__(self, *, a_addr: str = "10.78.0.1", b_addr: str = "10.78.0.2",
                 prefixlen: int = 24, mtu: int = 1500, seed: int = 0, **impair: Any) -> None:
        self.a_addr, self.b_addr, self.prefixlen, self.mtu = a_addr, b_addr, prefixlen, mtu
        self.seed = seed
        self._impair = impair
        self.a: KernelNetns | None = None
        self.b: KernelNetns | None = None
        self.lt: LoopThread | None = None
        self.ab: Pipe | None = None
        self.ba: Pipe | None = None

    def start(self) -> KernelRelay:
        import os

        check_real_mode()
        try:
            self.a = KernelNetns()
            self.b = KernelNetns()
            self.lt = LoopThread("tcpdive-relay")
            KernelRelay._n += 1
            tag = f"{os.getpid() % 100000}r{KernelRelay._n}"

            def setup() -> None:
                loop = self.lt.loop
                self.ta = TunPort(loop, self.a, f"tda{tag}", self.a_addr, self.prefixlen, self.mtu)
                self.tb = TunPort(loop, self.b, f"tdb{tag}", self.b_addr, self.prefixlen, self.mtu)
                self.ab = Pipe(loop, self.tb.send, rng=random.Random(f"{self.seed}/ab"),
                               **self._impair)
                self.ba = Pipe(loop, self.ta.send, rng=random.Random(f"{self.seed}/ba"),
                               **self._impair)
                self.ta.rx = self.ab.send
                self.tb.rx = self.ba.send
                self.ta.start()
                self.tb.start()

            self.lt.call(setup)
        except BaseException:
            self.close()
            raise
        return self

    def impair(self, **params: Any) -> None:
        """Change impairments of both directions now (``impair(loss=0.01)``)."""
        self.lt.call(lambda: (self.ab.set(**params), self.ba.set(**params)))

    def close(self) -> None:
        lt, self.lt = self.lt, None
        if lt is not None:
            def down() -> None:
                for t in (getattr(self, "ta", None), getattr(self, "tb", None)):
                    if t is not None:
                        t.close()
            try:
                lt.call(down, timeout=5)
            except Exception:  # noqa: BLE001
                pass
            lt.stop()
        for ns in (self.a, self.b):
            if ns is not None:
                ns.delete()

    def __enter__(self) -> KernelRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
