"""RealStack: the unchanged tcpdive stack owning an address on a TUN device, in real time.

Topology (defaults)::

    kernel namespace td-<pid>-<n>                 this process (loop thread)
    ┌─────────────────────────────┐  TUN fd      ┌──────────────────────────────┐
    │ tdNNNtM 10.77.0.1/24        │◄────────────►│ [Pipe]  tcpdive Netns "tun0" │
    │ curl, nginx, redis-server   │  IP packets  │ 10.77.0.2/24, default route  │
    └─────────────────────────────┘              └──────────────────────────────┘

The kernel side reaches tcpdive at 10.77.0.2 (``ip netns exec td-... curl http://10.77.0.2/``).
Packets crossing the TUN device may go through tcpdive's own link model (:class:`Pipe`, one per
direction) for delay, rate, loss, reordering and duplication: this is the netem.

Threading: one loop thread runs the asyncio loop, the TUN reader, the pipes and every call into
the stack. Other threads use :meth:`RealStack.call` / :meth:`RealStack.run`, or the blocking
facade in :mod:`tcpdive.real.socket`, which does that for them.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..net.netns import NetDevice, Netns
from ..packet.ipv4 import ip2int
from ..sim.link import Pipe
from ..socket import AF_INET, SOCK_STREAM, Socket
from ..sysctl import Sysctl
from .netns import KernelNetns, check_real_mode
from .tun import LoopThread, RealClock, TunPort

__all__ = ["RealHost", "RealStack", "default_stack"]

_COUNTER = [0]
_LOCK = threading.Lock()
_DEFAULT: list[RealStack] = []


def default_stack() -> RealStack:
    """The most recently started RealStack still running (for ``tcpdive.real.socket.socket()``)."""
    for st in reversed(_DEFAULT):
        if st.running:
            return st
    raise RuntimeError("no RealStack is running: use `with RealStack() as stack:` first")


class RealHost(Netns):
    """The tcpdive kernel in real mode: a Netns on the real-time clock, plus ``socket()``."""

    def __init__(self, clock: RealClock, name: str, seed: int = 0,
                 sysctl: Sysctl | None = None) -> None:
        super().__init__(clock, name, seed, sysctl)
        self.addr = ""

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> Socket:
        """socket(2) on the tcpdive kernel (call on the loop thread)."""
        return Socket(self, family, type, proto)

    def __repr__(self) -> str:
        return f"<RealHost {self.name} {self.addr}>"


class RealStack:
    """tcpdive on a TUN device in a fresh kernel namespace; use as a context manager.

    ``netns``: name of the kernel namespace to create (default ``td-<pid>-<n>``); ``addr``: the
    address tcpdive owns; ``kernel_addr``: the kernel's address on the TUN device; ``mtu``:
    of the TUN device and of tcpdive's interface; ``impair``: Pipe parameters for both
    directions (``delay``, ``rate_bps``, ``loss``, ``reorder``, ``duplicate``, ``jitter``...),
    ``to_kernel``/``from_kernel`` per direction; ``sysctls``: tcpdive sysctls ``{name: value}``.
    """

    def __init__(self, netns: str | None = None, *, addr: str = "10.77.0.2",
                 kernel_addr: str = "10.77.0.1", prefixlen: int = 24, mtu: int = 1500,
                 impair: dict[str, Any] | None = None, to_kernel: dict[str, Any] | None = None,
                 from_kernel: dict[str, Any] | None = None, seed: int = 0,
                 sysctls: dict[str, Any] | None = None) -> None:
        self.netns_name = netns
        self.addr = addr
        self.kernel_addr = kernel_addr
        self.prefixlen = prefixlen
        self.mtu = mtu
        self.seed = seed
        self._impair = (dict(impair or {}), dict(to_kernel or {}), dict(from_kernel or {}))
        self._sysctls = dict(sysctls or {})
        self.ns: KernelNetns | None = None
        self.lt: LoopThread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.net: RealHost | None = None
        self.tun: TunPort | None = None
        self.dev: NetDevice | None = None
        self.to_kernel: Pipe | None = None      # tcpdive -> kernel impairment
        self.from_kernel: Pipe | None = None    # kernel -> tcpdive impairment
        self.running = False

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RealStack:
        check_real_mode()
        self.ns = KernelNetns(self.netns_name)
        try:
            self.lt = LoopThread(f"tcpdive-real-{self.ns.name}")
            self.loop = self.lt.loop
            self.lt.call(self._setup)
        except BaseException:
            self.close()
            raise
        self.running = True
        _DEFAULT.append(self)
        return self

    def _setup(self) -> None:
        with _LOCK:
            _COUNTER[0] += 1
            n = _COUNTER[0]
        devname = f"td{os.getpid() % 1000000}t{n}"
        loop = self.loop
        assert loop is not None and self.ns is not None
        self.tun = TunPort(loop, self.ns, devname, self.kernel_addr, self.prefixlen, self.mtu,
                           rx=None)
        net = self.net = RealHost(RealClock(loop), f"tcpdive-{self.ns.name}", self.seed)
        for k, v in self._sysctls.items():
            net.sysctl.set(k, v)
        net.addr = self.addr
        dev = self.dev = NetDevice("tun0", self.mtu, self._xmit)
        net.add_device(dev)
        net.add_addr("tun0", ip2int(self.addr), self.prefixlen)
        net.add_default_route("tun0")
        both, tk, fk = self._impair
        if both or tk:
            self._set_pipe("to_kernel", {**both, **tk})
        if both or fk:
            self._set_pipe("from_kernel", {**both, **fk})
        self._wire()
        self.tun.start()

    def _xmit(self, data: bytes, nexthop: int) -> None:
        p = self.to_kernel
        if p is not None:
            p.send(data)
        else:
            self.tun.send(data)

    def _wire(self) -> None:
        net, dev = self.net, self.dev
        fk = self.from_kernel
        if fk is not None:
            self.tun.rx = fk.send
        else:
            def rx(data: bytes, _recv=net.netif_receive, _dev=dev) -> None:
                _recv(_dev, data)
            self.tun.rx = rx

    def _set_pipe(self, which: str, params: dict[str, Any]) -> None:
        params = dict(params)
        rng = params.pop("rng", None) or random.Random(f"{self.seed}/{which}")
        if which == "to_kernel":
            self.to_kernel = Pipe(self.loop, self.tun.send, rng=rng, **params)
        else:
            net, dev = self.net, self.dev
            self.from_kernel = Pipe(self.loop, lambda d: net.netif_receive(dev, d), rng=rng,
                                    **params)

    def impair(self, *, to_kernel: dict[str, Any] | None = None,
               from_kernel: dict[str, Any] | None = None, **both: Any) -> None:
        """Set impairments now (e.g. ``impair(loss=0.01, reorder=0.01)``); ``impair()`` with no
        arguments removes them. Per direction with ``to_kernel={...}``/``from_kernel={...}``."""
        def apply() -> None:
            if not both and not to_kernel and not from_kernel:
                self.to_kernel = self.from_kernel = None
            else:
                for which, extra in (("to_kernel", to_kernel), ("from_kernel", from_kernel)):
                    params = {**both, **(extra or {})}
                    if not params:
                        continue
                    pipe = getattr(self, which)
                    if pipe is None:
                        self._set_pipe(which, params)
                    else:
                        pipe.set(**params)
            self._wire()
        self.call(apply)

    def close(self) -> None:
        """Stop the loop, close the TUN fd, delete the namespace (idempotent)."""
        self.running = False
        if self in _DEFAULT:
            _DEFAULT.remove(self)
        lt, self.lt = self.lt, None
        if lt is not None:
            try:
                if self.tun is not None:
                    lt.call(self.tun.close, timeout=5)
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
            lt.stop()
        if self.ns is not None:
            self.ns.delete()

    def __enter__(self) -> RealStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- running code on the stack ---------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = 30) -> Any:
        """Run ``fn(*args)`` on the loop thread (where the stack lives) and return its result."""
        if self.lt is None:
            raise RuntimeError("RealStack is not running")
        return self.lt.call(fn, *args, timeout=timeout)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the loop (asyncio streams over tcpdive) and wait for it."""
        if self.lt is None:
            raise RuntimeError("RealStack is not running")
        return self.lt.run(coro, timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]):
        """Start a coroutine on the loop; returns a concurrent.futures.Future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0):
        """A blocking, stdlib-compatible socket on this stack (:mod:`tcpdive.real.socket`)."""
        from .socket import socket

        return socket(family, type, proto, stack=self)

    def patch(self):
        """Context manager: ``socket.socket``/``create_connection`` go through tcpdive."""
        from .socket import patched

        return patched(self)

    # ---- tools -------------------------------------------------------------------------------

    def netstat(self, grep: str | None = None, header: bool = True) -> list[str]:
        """tcpdive's ``netstat -napo`` for its own side."""
        from ..tools.netstat import netstat_napo

        return self.call(lambda: netstat_napo(self.net, grep, header=header))

    def ss(self) -> list[str]:
        from ..tools.netstat import ss_tanpoi

        return self.call(lambda: ss_tanpoi(self.net))

    def proc_net_tcp(self) -> str:
        """tcpdive's own /proc/net/tcp (tools/procnet.py), not the kernel's."""
        from ..tools.procnet import proc_net_tcp

        return self.call(lambda: proc_net_tcp(self.net))

    def states(self) -> list[tuple[str, str, str]]:
        """(state, local, peer) of tcpdive's TCP sockets, named as netstat names them."""
        from ..tools.netstat import _NETSTAT_STATES, _addr, tcp_rows

        def rows() -> list[tuple[str, str, str]]:
            return [(_NETSTAT_STATES.get(r.state, "UNKNOWN"), _addr(r.saddr, r.sport),
                     _addr(r.daddr, r.dport)) for r in tcp_rows(self.net)]
        return self.call(rows)

    def how_to_reach(self, port: int, scheme: str = "http") -> str:
        ns = self.ns.name if self.ns else "?"
        if scheme == "http":
            return f"ip netns exec {ns} curl http://{self.addr}:{port}/"
        if scheme == "redis":
            return f"ip netns exec {ns} redis-cli -h {self.addr} -p {port} ping"
        return f"ip netns exec {ns} nc {self.addr} {port}"

    def __repr__(self) -> str:
        ns = self.ns.name if self.ns else None
        return f"<RealStack {self.addr} <-> kernel {self.kernel_addr} in {ns} mtu={self.mtu}>"
