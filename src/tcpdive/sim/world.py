"""A simulated world: hosts (one kernel each), links between them, one virtual clock.

    w = World(seed=1)
    client = w.host("client", "10.0.0.1")
    server = w.host("server", "10.0.0.2")
    w.link(client, server, delay=0.005)

Every host's timers and every packet in flight live on the same ``VirtualTimeLoop``; a run is
reproducible from its seed.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Coroutine
from typing import Any

from ..net.netns import NETIF_F_OFFLOAD, NetDevice, Netns
from ..packet.ipv4 import int2ip, ip2int
from ..socket import AF_INET, SOCK_STREAM, Socket
from ..sysctl import Sysctl
from .link import Link
from .loop import VirtualTimeLoop

current_host: contextvars.ContextVar[Host | None] = contextvars.ContextVar("tcpdive_host",
                                                                           default=None)


class Host(Netns):
    """A simulated machine: its kernel (``Netns``) plus conveniences for programs running on it."""

    def __init__(self, world: World, name: str, seed: int) -> None:
        super().__init__(world.loop, name, seed, Sysctl())
        self.world = world
        self.addr = ""

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> Socket:
        """socket(2) on this host."""
        return Socket(self, family, type, proto)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None):
        """Run a coroutine as a task 'on' this host (asyncio's create_connection etc. use it)."""
        ctx = contextvars.copy_context()
        ctx.run(current_host.set, self)
        return self.world.loop.create_task(coro, name=name, context=ctx)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this host to completion, driving virtual time."""
        return self.world.loop.run_until_complete(self.spawn(coro))

    def sysctl_set(self, name: str, value: Any) -> str:
        return self.sysctl.set(name, value)

    def proc_net_tcp(self) -> str:
        """This host's /proc/net/tcp, as Linux prints it (tools/procnet.py)."""
        from ..tools.procnet import proc_net_tcp

        return proc_net_tcp(self)

    def proc_net_tcp6(self) -> str:
        """This host's /proc/net/tcp6: the header (tcpdive has no IPv6 sockets)."""
        from ..tools.procnet import proc_net_tcp6

        return proc_net_tcp6(self)

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.addr}>"


class World:
    """Hosts, links and one virtual-time loop, seeded."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.loop = VirtualTimeLoop()
        self.rng = random.Random(seed)
        self.hosts: dict[str, Host] = {}
        self.links: list[Link] = []
        self._subnet = 0

    def host(self, name: str, addr: str | None = None, prefixlen: int = 24) -> Host:
        """Create a host; with ``addr`` it gets an interface-less address until linked."""
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists")
        h = Host(self, name, self.seed)
        h.addr = addr or ""
        h._pending_addr = (addr, prefixlen)  # type: ignore[attr-defined]
        self.hosts[name] = h
        return h

    def link(self, a: Host, b: Host, *, mtu: int = 1500, a_addr: str | None = None,
             b_addr: str | None = None, prefixlen: int = 24, offload: bool = False,
             **params: Any) -> Link:
        """Join two hosts with a point-to-point link (delay, rate_bps, loss, reorder,
        ecn_mark_threshold, ...: the :class:`~tcpdive.sim.link.Pipe` parameters).

        Each side gets a device ``ethN`` carrying its address; each host routes the other's
        address (and, for its first link, everything else) over it. ``offload=True`` gives both
        devices TSO/GSO, GRO and checksum offload, as Linux's lo and veth have by default.
        """
        a_addr = a_addr or a._pending_addr[0] or f"10.{self._subnet}.0.1"  # type: ignore[attr-defined]
        b_addr = b_addr or b._pending_addr[0] or f"10.{self._subnet}.0.2"  # type: ignore[attr-defined]
        self._subnet += 1
        da = NetDevice(f"eth{sum(1 for d in a.devices.values() if d.name.startswith('eth'))}", mtu)
        db = NetDevice(f"eth{sum(1 for d in b.devices.values() if d.name.startswith('eth'))}", mtu)
        if offload:
            da.features = db.features = NETIF_F_OFFLOAD
        a.add_device(da)
        b.add_device(db)
        params.setdefault("rng", None)
        rng = params.pop("rng") or random.Random(f"{self.seed}/{a.name}/{b.name}")
        link = Link(self.loop, lambda p: a.netif_receive(da, p), lambda p: b.netif_receive(db, p),
                    ab_params={"rng": random.Random(rng.random())},
                    ba_params={"rng": random.Random(rng.random())}, **params)
        da.xmit = lambda data, nh: link.ab.send(data)
        db.xmit = lambda data, nh: link.ba.send(data)
        ia, ib = ip2int(a_addr), ip2int(b_addr)
        if ia not in a.local_addrs:
            a.add_addr(da.name, ia, 32)
        if ib not in b.local_addrs:
            b.add_addr(db.name, ib, 32)
        a.add_route(ib, 32, da.name, src=ia)
        b.add_route(ia, 32, db.name, src=ib)
        if not any(r.plen == 0 for r in a.routes):
            a.add_default_route(da.name)
        if not any(r.plen == 0 for r in b.routes):
            b.add_default_route(db.name)
        a.addr = a.addr or a_addr
        b.addr = b.addr or b_addr
        self.links.append(link)
        return link

    # ---- running -------------------------------------------------------------------------------

    def now(self) -> float:
        """Virtual seconds since the world began."""
        return self.loop.now_us() / 1e6

    def run(self, coro: Coroutine[Any, Any, Any] | None = None, host: Host | None = None) -> Any:
        """Run a coroutine (on ``host`` if given) or, with none, until nothing is left to do."""
        if coro is None:
            self.loop.run_until_idle()
            return None
        if host is not None:
            return host.run(coro)
        return self.loop.run_until_complete(coro)

    def run_for(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``, running everything due."""
        self.loop.run_for(seconds)

    def run_until(self, t: float) -> None:
        self.loop.run_until_time(int(round(t * 1e6)))

    def addr_of(self, host: Host) -> str:
        return int2ip(host.primary_addr())
