"""One host's kernel (``struct net``): devices, routes, sysctls, MIB, tables, and the IPv4 paths.

Receive: ``ip_rcv`` -> ``ip_local_deliver`` -> protocol handler (``tcp_v4_rcv``, ``udp_rcv``,
``icmp_rcv``). Send: ``ip_queue_xmit`` / ``ip_build_and_send_pkt`` -> route -> device. Local
destinations go through the loopback device and a softirq-like backlog, never by recursion.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections import deque
from collections.abc import Callable
from errno import EHOSTUNREACH

from ..ktime import Clock, KTimer
from ..packet.checksum import csum_partial, pseudo_sum
from ..packet.gso import (
    CHECKSUM_PARTIAL,
    CHECKSUM_UNNECESSARY,
    OffloadPacket,
    offload_packet,
    skb_checksum_help,
    skb_gso_segment,
)
from ..packet.ipv4 import (
    IP_CSUMERR,
    IP_MF,
    IP_OFFSET,
    IP_OK,
    IP_TRUNCATED,
    IPHDR_LEN,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    int2ip,
    ip2int,
    ip_build,
    ip_parse,
)
from ..sysctl import Sysctl
from ..trace import Tracepoints
from .mib import Mib
from .route import ip_dst_mtu_maybe_forward

# netfilter hook numbers (NF_INET_*)
NF_INET_PRE_ROUTING = 0
NF_INET_LOCAL_IN = 1
NF_INET_FORWARD = 2
NF_INET_LOCAL_OUT = 3
NF_INET_POST_ROUTING = 4

# netdev features (NETIF_F_*), as ``ethtool -k`` shows them; all off unless a driver sets them
# dev_queue_xmit's answer (include/linux/netdevice.h)
NET_XMIT_SUCCESS = 0
NET_XMIT_DROP = 1            # the qdisc dropped it

NETIF_F_HW_CSUM = 0x1        # tx-checksumming: TCP checksum left to the device
NETIF_F_RXCSUM = 0x2         # rx-checksumming: the device vouches for received checksums
NETIF_F_TSO = 0x4            # tcp-segmentation-offload: GSO packets handed to the device
NETIF_F_GRO = 0x8            # generic-receive-offload: GSO packets accepted up the stack
NETIF_F_OFFLOAD = NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_TSO | NETIF_F_GRO  # lo / veth

MAX_GRO_SKBS = 8              # flows GRO holds per device (napi->gro_hash buckets)
_GRO_MAX_SIZE = 65535 - 20 - 60
_IP_ECN_MIB = (None, "IpExtInECT1Pkts", "IpExtInECT0Pkts", "IpExtInCEPkts")
_GRO_NOMERGE = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x80   # FIN, SYN, RST, PSH, URG, CWR
_IPH = struct.Struct("!BBHHHBBHII")
_H = struct.Struct("!H")
_I = struct.Struct("!I")

# A hook sees (net, data, dev_name) and returns the datagram to go on with (maybe rewritten) or None
NfHook = Callable[["Netns", bytes, str], "bytes | None"]


def _have_module(name: str) -> bool:
    """Is the protocol module ``tcpdive.net.<name>`` present (its inet_protos slot filled)?"""
    r = _MODULES.get(name)
    if r is None:
        import importlib.util

        r = _MODULES[name] = importlib.util.find_spec(f"{__package__}.{name}") is not None
    return r


_MODULES: dict[str, bool] = {}


class NetDevice:
    """A network interface: name, MTU, IPv4 addresses, offload features, the driver's transmit."""

    __slots__ = ("name", "mtu", "addrs", "xmit", "net", "up", "tx_packets", "rx_packets",
                 "tx_bytes", "rx_bytes", "features", "qdisc_limit", "qdisc_drops", "tx_dropped")

    def __init__(self, name: str, mtu: int = 1500,
                 xmit: Callable[[bytes, int], None] | None = None) -> None:
        self.name = name
        self.mtu = mtu
        self.addrs: list[tuple[int, int]] = []       # (address, prefixlen)
        self.xmit = xmit
        self.net: Netns | None = None
        self.up = True
        self.tx_packets = self.rx_packets = self.tx_bytes = self.rx_bytes = 0
        self.features = 0
        self.qdisc_limit: int | None = None        # root pfifo's packet limit; None: default
        self.qdisc_drops = 0
        self.tx_dropped = 0                          # frames over the MTU (_dev_mtu_exceeded)

    def set_qdisc(self, limit: int | None) -> None:
        """``tc qdisc add|replace dev NAME root pfifo limit N`` (None: ``tc qdisc del``, back
        to the default qdisc). The device sends each packet at once, so the queue is empty
        at every enqueue and only ``limit 0`` drops (``pfifo_enqueue``: qlen < limit)."""
        self.qdisc_limit = limit

    def set_features(self, features: int) -> None:
        """``ethtool -K``: switch offloads (NETIF_F_* bits) on or off (``netdev_update_features``)."""
        self.features = features
        net = self.net
        if net is not None:
            net.dev_features = 0
            for d in net.devices.values():
                net.dev_features |= d.features


class Route:
    """One FIB entry: destination prefix, output device, optional gateway and preferred source,
    and its metrics (``fib_metrics``, see net/route.py): mtu, advmss, initcwnd, initrwnd,
    rto_min (ms), quickack and the lock bits (``1 << RTAX_x``); 0 = not set."""

    __slots__ = ("dst", "plen", "mask", "dev", "gw", "src", "mtu", "advmss", "initcwnd",
                 "initrwnd", "rto_min", "quickack", "locks")

    def __init__(self, dst: int, plen: int, dev: NetDevice, gw: int = 0, src: int = 0) -> None:
        self.plen = plen
        self.mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        self.dst = dst & self.mask
        self.dev = dev
        self.gw = gw
        self.src = src
        self.mtu = self.advmss = self.initcwnd = self.initrwnd = 0
        self.rto_min = self.quickack = self.locks = 0


class Netns:
    """A network namespace: the whole kernel of one simulated (or TUN-attached) host."""

    def __init__(self, clock: Clock, name: str = "host", seed: int = 0,
                 sysctl: Sysctl | None = None) -> None:
        self.name = name
        self.clock = clock
        self.sysctl = sysctl if sysctl is not None else Sysctl()
        self.mib = Mib()
        self.trace = Tracepoints()
        self.rng = random.Random(f"{name}/{seed}")
        self.secret = hashlib.blake2b(f"net_secret/{name}/{seed}".encode(), digest_size=16).digest()
        self.devices: dict[str, NetDevice] = {}
        self.routes: list[Route] = []
        self._fib_cache: dict[int, Route] = {}   # daddr -> route, emptied when routes change
        self.rt_genid = 0                  # bumped when routes change: cached dsts go stale
        # learned path MTUs per destination (fib_nh_exception, net/route.py), made on first
        # use, and the earliest expiry among them (us; 0: none)
        self.fnhe: dict[int, Route] | None = None
        self.fnhe_next = 0
        self.local_addrs: set[int] = set()
        self.nf_hooks: list[list[NfHook]] = [[], [], [], [], []]
        self.dev_features = 0            # union of the devices' features: 0 = no offload anywhere
        self.ip_id = self.rng.getrandbits(16)
        self._backlog: deque[tuple[NetDevice, bytes]] = deque()
        self._softirq = KTimer(clock, self._net_rx_action)
        # GRO's held flows: [dev, key, sig, next_seq, mss, segments, payload bytes]
        self._gro: list[list] | None = None
        self._gro_timer: KTimer | None = None
        lo = NetDevice("lo", mtu=65536, xmit=self._loopback_xmit)
        self.add_device(lo)
        self.add_addr("lo", "127.0.0.1", 8)
        self.lo = lo
        from ..tcp.hashtables import InetHashinfo

        self.tcp_hashinfo = InetHashinfo(self)
        self._udp_table = None
        from ..socket import FdTable

        self.files = FdTable(self)
        self.tcp_orphan_count = 0
        self.tw_count = 0
        # tcp_tw_isn: the ISN a SYN that hit a TIME_WAIT socket carries from tcp_v4_rcv to
        # tcp_conn_request (a per-CPU variable in Linux 6.10+)
        self.tcp_tw_isn = 0
        self.tcp_metrics_ts = None         # tcp_tw_recycle emulation only (tcp/metrics.py)
        self.tcp_fastopen_cache = None     # TFO cookies and MSS per (saddr, daddr) (tcp/fastopen.py)
        self.tfo_active_disable_times = 0  # active TFO blackhole detection (tcp/fastopen.py)
        self.tfo_active_disable_stamp = 0
        self.sockets: set = set()          # every full TCP/UDP socket alive, for netstat/ss

    @property
    def udp_table(self):
        """The UDP socket table, made on first use (most simulated hosts never touch UDP)."""
        t = self._udp_table
        if t is None:
            from .udp import UdpTable

            t = self._udp_table = UdpTable(self)
        return t

    # ---- configuration (ip link / ip addr / ip route) -------------------------------------

    def add_device(self, dev: NetDevice) -> NetDevice:
        """Register an interface (``register_netdevice``)."""
        dev.net = self
        self.devices[dev.name] = dev
        self.dev_features |= dev.features
        return dev

    def add_addr(self, devname: str, addr: str | int, prefixlen: int = 24) -> None:
        """``ip addr add ADDR/PREFIX dev DEV``: the address and its connected route."""
        a = ip2int(addr) if isinstance(addr, str) else addr
        dev = self.devices[devname]
        dev.addrs.append((a, prefixlen))
        self.local_addrs.add(a)
        self.add_route(a, prefixlen, devname, src=a)

    def add_route(self, dst: str | int, plen: int, devname: str, gw: str | int = 0,
                  src: str | int = 0, **metrics) -> Route:
        """``ip route add DST/PLEN [via GW] dev DEV [src SRC] [METRICS]``; longest prefix wins.

        Metrics (keywords): ``mtu``, ``mtu_lock``, ``advmss``, ``initcwnd``, ``initrwnd``,
        ``rto_min`` (seconds), ``quickack`` -- see net/route.py. Unlike ``ip route add`` (EEXIST)
        an existing prefix is not refused here (the older entry stays first)."""
        r = self._make_route(dst, plen, devname, gw, src, metrics)
        self.routes.append(r)
        self._routes_changed()
        return r

    def change_route(self, dst: str | int, plen: int, devname: str, gw: str | int = 0,
                     src: str | int = 0, **metrics) -> Route:
        """``ip route change``: replace the DST/PLEN entry -- device, gateway, source and all
        metrics (those not given are cleared, as a new fib_info has none); ENOENT if absent."""
        r = self._make_route(dst, plen, devname, gw, src, metrics)
        old = self.find_route(r.dst, plen)
        if old is None:
            from errno import ENOENT

            from ..errors import oserror

            raise oserror(ENOENT, "no such route")
        self.routes[self.routes.index(old)] = r
        self._routes_changed()
        return r

    def replace_route(self, dst: str | int, plen: int, devname: str, gw: str | int = 0,
                      src: str | int = 0, **metrics) -> Route:
        """``ip route replace``: change the entry, or add it if there is none."""
        r = self._make_route(dst, plen, devname, gw, src, metrics)
        old = self.find_route(r.dst, plen)
        if old is None:
            self.routes.append(r)
        else:
            self.routes[self.routes.index(old)] = r
        self._routes_changed()
        return r

    def del_route(self, dst: str | int, plen: int) -> None:
        """``ip route del DST/PLEN``; ESRCH if there is no such entry."""
        d = ip2int(dst) if isinstance(dst, str) else dst
        old = self.find_route(d, plen)
        if old is None:
            from errno import ESRCH

            from ..errors import oserror

            raise oserror(ESRCH, "no such route")
        self.routes.remove(old)
        self._routes_changed()

    def find_route(self, dst: int, plen: int) -> Route | None:
        """The FIB entry for exactly DST/PLEN (``fib_find_alias``), or None."""
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        d = dst & mask
        for r in self.routes:
            if r.plen == plen and r.dst == d:
                return r
        return None

    def ip_route(self, command: str | list[str]) -> None:
        """Run an ``ip route add|change|replace|del ...`` command line (net/route.py)."""
        from .route import ip_route

        ip_route(self, command)

    def _make_route(self, dst, plen, devname, gw, src, metrics: dict) -> Route:
        d = ip2int(dst) if isinstance(dst, str) else dst
        g = ip2int(gw) if isinstance(gw, str) else gw
        s = ip2int(src) if isinstance(src, str) else src
        r = Route(d, plen, self.devices[devname], g, s)
        if metrics:
            from .route import metrics_convert

            for k, v in metrics_convert(**metrics).items():
                setattr(r, k, v)
        return r

    def _routes_changed(self) -> None:
        """Keep the table longest-prefix first; forget cached lookups; make every socket's
        cached route stale (``rt_cache_flush``: rt_genid bump)."""
        self.routes.sort(key=lambda r: -r.plen)
        self._fib_cache.clear()
        self.rt_genid += 1

    def add_default_route(self, devname: str, gw: str | int = 0) -> None:
        self.add_route(0, 0, devname, gw)

    def primary_addr(self) -> int:
        """First non-loopback address (what a host is 'called')."""
        for dev in self.devices.values():
            if dev is not self.lo and dev.addrs:
                return dev.addrs[0][0]
        return 0x7F000001

    def fib_lookup(self, daddr: int) -> Route | None:
        """Route for a destination (``fib_lookup``): local addresses go via loopback.

        Answers are kept per destination until the routes change (the part of Linux's
        socket dst cache / nexthop cache tcpdive needs: no walk per packet).
        """
        if self.fnhe_next and self.clock.now_us() >= self.fnhe_next:
            self.fnhe_expire()
        r = self._fib_cache.get(daddr)
        if r is not None:
            return r
        if daddr in self.local_addrs or (daddr >> 24) == 127:
            r = self._lo_route(daddr)
        else:
            for r in self.routes:
                if (daddr & r.mask) == r.dst:
                    break
            else:
                return None
            if self.fnhe:
                e = self.fnhe.get(daddr)
                if e is not None:
                    if e.base is r:                  # find_exception on this nexthop
                        r = e
                    else:                            # its FIB entry is gone: so is it
                        del self.fnhe[daddr]
        cache = self._fib_cache
        if len(cache) >= 4096:               # many peers (a SYN flood's spoofed sources)
            cache.clear()
        cache[daddr] = r
        return r

    def fnhe_insert(self, daddr: int, exc: Route) -> None:
        """Store a learned PMTU toward ``daddr`` (``update_or_create_fnhe``) and make cached
        dsts stale so every socket toward it re-reads its MTU (DST_OBSOLETE_KILL)."""
        if self.fnhe is None:
            self.fnhe = {}
        self.fnhe[daddr] = exc
        self._fib_cache[daddr] = exc
        nxt = self.fnhe_next
        if not nxt or exc.expires < nxt:
            self.fnhe_next = exc.expires
        self.rt_genid += 1

    def fnhe_expire(self) -> None:
        """Forget exceptions past ``mtu_expires`` (Linux: ``find_exception`` deletes an expired
        one when it is next looked up; ``ipv4_mtu`` stops using it at once)."""
        now = self.clock.now_us()
        fnhe = self.fnhe or {}
        nxt = 0
        for d in list(fnhe):
            e = fnhe[d]
            if now >= e.expires:
                del fnhe[d]
                if self._fib_cache.get(d) is e:
                    del self._fib_cache[d]
            elif not nxt or e.expires < nxt:
                nxt = e.expires
        self.fnhe_next = nxt
        self.rt_genid += 1

    def ip_route_get(self, dst: str | int) -> str:
        """``ip route get DST`` as iproute2 prints it, with the cached PMTU (net/route.py)."""
        from .route import ip_route_get

        return ip_route_get(self, dst)

    def _lo_route(self, daddr: int) -> Route:
        return Route(daddr, 32, self.lo, 0, daddr)

    def inet_select_addr(self, route: Route, daddr: int) -> int:
        """Source address for a route (``inet_select_addr``): preferred src, else the dev's first."""
        if route.src:
            return route.src
        if route.dev is self.lo:
            return daddr
        for a, _ in route.dev.addrs:
            return a
        return self.primary_addr()

    def now_us(self) -> int:
        return self.clock.now_us()

    def route_mtu(self, daddr: int) -> int:
        """Path MTU toward ``daddr`` (``dst_mtu``): a learned PMTU, else the route's mtu
        metric, else the output device's MTU, at most IP_MAX_MTU."""
        r = self.fib_lookup(daddr)
        if r is None:
            return 1500
        mtu = r.mtu or r.dev.mtu
        return mtu if mtu < 0xFFFF else 0xFFFF

    def route_caps(self, daddr: int) -> int:
        """Offload features of the device toward ``daddr`` (``sk_route_caps``, which Linux
        caches at connect in ``sk_setup_caps``; asked per transmit here, free when no device
        offloads)."""
        if not self.dev_features:
            return 0
        r = self.fib_lookup(daddr)
        return r.dev.features if r is not None else 0

    def tcp_timeout_init(self) -> int:
        """Initial RTO for SYN / SYN-ACK in us (``tcp_timeout_init``: TCP_TIMEOUT_INIT, 1 s)."""
        return 1_000_000

    def sysctl_reserved_ports(self):
        """net.ipv4.ip_local_reserved_ports as a set."""
        return self.sysctl.ip_local_reserved_ports

    # ---- receive ---------------------------------------------------------------------------

    def netif_receive(self, dev: NetDevice, data: bytes) -> None:
        """Driver entry point: one IPv4 datagram arrived on ``dev`` (``napi_gro_receive`` /
        ``netif_receive_skb``).

        A GSO packet (``OffloadPacket``) goes up whole when ``dev`` does GRO, else cut first; on
        a GRO device in-order TCP segments of one flow arriving in the same instant are merged.
        """
        if dev.features & NETIF_F_GRO and type(data) is bytes and self.napi_gro_receive(dev, data):
            return
        self.netif_receive_skb(dev, data)

    def napi_gro_receive(self, dev: NetDevice, data: bytes) -> bool:
        """Hold or merge a TCP segment (``inet_gro_receive`` + ``tcp_gro_receive``); True if
        held. Merged: same flow, next in sequence, same ACK, window and options, checksums
        good, no flags but ACK (PSH or a short segment merges and ends it). Flushed when the
        instant ends (the NAPI poll), so nothing waits in virtual time."""
        n = len(data)
        held = self._gro
        if n < 40 or data[9] != 6:
            return False
        if data[0] != 0x45:                          # IP options: not merged, nothing overtaken
            while held:
                self._gro_flush_flow(held[0])
            return False
        key = data[12:24]                            # addresses and ports
        flow = None
        if held:
            for f in held:
                if f[1] == key and f[0] is dev:
                    flow = f
                    break
        vihl, tos, tot, _id, frag, _ttl, _p, _c, saddr, daddr = _IPH.unpack_from(data)
        doff = (data[32] >> 4) * 4
        plen = n - 20 - doff
        flags = data[33]
        if (plen <= 0 or tot != n or frag & (IP_MF | IP_OFFSET) or flags & (0x02 | 0x04 | 0x20)
                or doff < 20
                or csum_partial(data[:20]) != 0xFFFF
                or csum_partial(memoryview(data)[20:], pseudo_sum(saddr, daddr, 6, n - 20)) != 0xFFFF):
            if flow is not None:                     # nothing overtakes the held segments
                self._gro_flush_flow(flow)
            return False
        seq = _I.unpack_from(data, 24)[0]
        # flags but CWR/PSH/FIN, ack, window, options must match (tcp_gro_receive's flush test),
        # and the TOS byte (inet_gro_receive: a CE mark is not merged away)
        sig = bytes((flags & 0x76, tos)) + data[28:32] + data[34:36] + data[40:20 + doff]
        if flow is not None:
            segs = flow[5]
            if (seq == flow[3] and sig == flow[2] and plen <= flow[4] and not flags & 0x80
                    and len(segs[-1]) - 20 - doff == flow[4]
                    and flow[6] + plen <= _GRO_MAX_SIZE):
                segs.append(data)
                flow[3] = (seq + plen) & 0xFFFFFFFF
                flow[6] += plen
                if flags & _GRO_NOMERGE or plen < flow[4]:
                    self._gro_flush_flow(flow)
                return True
            self._gro_flush_flow(flow)
        if flags & _GRO_NOMERGE:
            return False
        if held is None:
            held = self._gro = []
        elif len(held) >= MAX_GRO_SKBS:
            self._gro_flush_flow(held[0])
        held.append([dev, key, sig, (seq + plen) & 0xFFFFFFFF, plen, [data], plen])
        t = self._gro_timer
        if t is None:
            t = self._gro_timer = KTimer(self.clock, self._napi_gro_flush)
        if not t.pending:
            t.mod(self.clock.now_us())
        return True

    def _napi_gro_flush(self, _arg: object = None) -> None:
        """End of the poll: every held flow goes up (``napi_gro_flush``)."""
        held = self._gro
        while held:
            self._gro_flush_flow(held[0])

    def _gro_flush_flow(self, flow: list) -> None:
        """One held flow goes up as one skb (``napi_gro_complete``): one segment as it came,
        several as a GSO packet (gso_size = the first's payload). Checksums were verified;
        the merged one is left to fill (CHECKSUM_PARTIAL) in case a capture reads it."""
        self._gro.remove(flow)
        dev, segs = flow[0], flow[5]
        first = segs[0]
        if len(segs) == 1:
            self.netif_receive_skb(dev, offload_packet(first, 0, 1, CHECKSUM_UNNECESSARY))
            return
        doff = (first[32] >> 4) * 4
        hl = 20 + doff
        last_flags = segs[-1][33] & 0x09             # PSH, FIN of the last
        tot = hl + flow[6]
        iph = first[:2] + _H.pack(tot) + first[4:10] + b"\0\0" + first[12:20]
        iph = iph[:10] + _H.pack(~csum_partial(iph) & 0xFFFF) + iph[12:]
        th = first[20:33] + bytes((first[33] | last_flags,)) + first[34:36] + b"\0\0" + first[38:hl]
        data = b"".join([iph, th] + [s[hl:] for s in segs])
        self.netif_receive_skb(dev, offload_packet(data, flow[4], len(segs), CHECKSUM_PARTIAL))

    def netif_receive_skb(self, dev: NetDevice, data: bytes) -> None:
        """One datagram (maybe a GSO/GRO skb) goes up from ``dev`` (``netif_receive_skb``)."""
        if isinstance(data, OffloadPacket):
            feats = dev.features
            if data.gso_size and not feats & NETIF_F_GRO:
                for seg in skb_gso_segment(data):
                    self.netif_receive(dev, seg)
                return
            if self.trace.packet.subs or not feats & NETIF_F_RXCSUM:
                data = skb_checksum_help(data)       # a capture sees real checksums
        dev.rx_packets += 1
        dev.rx_bytes += len(data)
        tp = self.trace.packet
        if tp.subs:
            tp.emit(self, dev, data, "in", self.clock.now_us())
        self.ip_rcv(dev, data)

    def ip_rcv(self, dev: NetDevice, data: bytes) -> None:
        """Validate the IP header (``ip_rcv_core``), run PRE_ROUTING, then deliver or forward."""
        mib = self.mib
        mib["IpInReceives"] += 1
        reason, iph = ip_parse(data)
        if reason != IP_OK:
            if reason == IP_TRUNCATED:
                mib["IpExtInTruncatedPkts"] += 1
                why = "PKT_TOO_SMALL"
            else:
                mib["IpInHdrErrors"] += 1
                if reason == IP_CSUMERR:
                    mib["IpExtInCsumErrors"] += 1
                    why = "IP_CSUM"
                else:
                    why = "IP_INHDR"
            self.drop(data, why)
            return
        assert iph is not None
        if iph.tos & 3:
            # IpExtInECT1Pkts / InECT0Pkts / InCEPkts per wire segment (ip_rcv_core); Not-ECT
            # (IpExtInNoECTPkts) is not counted, to keep the common path as it was
            mib[_IP_ECN_MIB[iph.tos & 3]] += data.gso_segs if type(data) is not bytes else 1
        if len(data) != iph.tot_len:
            data = data[: iph.tot_len]                  # strip link padding (pskb_trim_rcsum)
        if self.nf_hooks[NF_INET_PRE_ROUTING]:
            got = self._nf_hook_in(NF_INET_PRE_ROUTING, data, dev, iph)
            if got is None:
                return
            data, iph = got
        daddr = iph.daddr
        if daddr in self.local_addrs or (dev is self.lo and (daddr >> 24) == 127):
            self.ip_local_deliver(dev, iph, data)
        elif self.sysctl.ip_forward:
            self.ip_forward(dev, iph, data)
        else:
            mib["IpInAddrErrors"] += 1
            self.drop(data, "IP_INADDRERRORS")

    def ip_local_deliver(self, dev: NetDevice, iph, data: bytes) -> None:
        """Hand a datagram for this host to its protocol (``ip_local_deliver_finish``)."""
        if iph.frag_off & (IP_MF | IP_OFFSET):
            self.mib["IpReasmFails"] += 1                # no reassembly: we never fragment
            self.drop(data, "IP_FRAG")
            return
        if self.nf_hooks[NF_INET_LOCAL_IN]:
            got = self._nf_hook_in(NF_INET_LOCAL_IN, data, dev, iph)
            if got is None:
                return
            data, iph = got
        self.mib["IpInDelivers"] += 1
        proto = iph.protocol
        off = iph.ihl * 4
        if proto == IPPROTO_TCP:
            _tcp_v4_rcv(self, iph, data, off)
        elif proto == IPPROTO_UDP and _have_module("udp"):
            self.udp_table.udp_rcv(iph, data, off)
        elif proto == IPPROTO_ICMP and _have_module("icmp"):
            from .icmp import icmp_rcv

            icmp_rcv(self, iph, data, off)
        else:
            # no handler registered in inet_protos (ip_protocol_deliver_rcu): count, answer
            # "protocol unreachable" -- also for UDP while net/udp.py is not built yet
            self.mib["IpInUnknownProtos"] += 1
            from .icmp import ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, icmp_send

            icmp_send(self, data, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH)

    def ip_forward(self, dev: NetDevice, iph, data: bytes) -> None:
        """Route a transit datagram (``ip_forward``): TTL, FORWARD and POST_ROUTING hooks.

        A GSO packet is cut into its segments first (tcpdive forwards no GSO packets).
        """
        if isinstance(data, OffloadPacket) and data.gso_size:
            for seg in skb_gso_segment(data):
                _, siph = ip_parse(seg)
                if siph is not None:
                    self.ip_forward(dev, siph, seg)
            return
        route = self.fib_lookup(iph.daddr)
        if route is None or route.dev is self.lo:
            # ip_route_input_slow found nothing: RTN_UNREACHABLE -> ip_error (ENETUNREACH)
            self.mib["IpExtInNoRoutes"] += 1
            from .icmp import ICMP_DEST_UNREACH, ICMP_NET_UNREACH, icmp_send

            icmp_send(self, data, ICMP_DEST_UNREACH, ICMP_NET_UNREACH)
            self.drop(data, "IP_INNOROUTES")
            return
        if iph.ttl <= 1:
            self.mib["IpInHdrErrors"] += 1               # too_many_hops
            from .icmp import ICMP_EXC_TTL, ICMP_TIME_EXCEEDED, icmp_send

            icmp_send(self, data, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL)
            self.drop(data, "IP_TTL")
            return
        n = len(data)
        mtu = ip_dst_mtu_maybe_forward(self, route)
        if n > mtu:
            if data[6] & 0x40:
                # ip_exceeds_mtu: DF set -- drop it and tell the sender the next-hop MTU
                # (RFC 1191), quoting the datagram as it arrived (TTL not yet decreased)
                self.mib["IpFragFails"] += 1
                from .icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, icmp_send

                icmp_send(self, data, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
                self.drop(data, "PKT_TOO_BIG")
                return
        if isinstance(data, OffloadPacket):
            # a checksum left to the device (CHECKSUM_PARTIAL from a local offload sender):
            # filled in here, as the egress device would; ``bytes(b)`` below drops the mark
            data = skb_checksum_help(data)
        # decrement TTL and patch the checksum incrementally (ip_decrease_ttl)
        b = bytearray(data)
        b[8] -= 1
        check = int.from_bytes(b[10:12], "big") + 0x0100
        b[10:12] = ((check + (check >> 16)) & 0xFFFF).to_bytes(2, "big")
        data = bytes(b)
        hooks = self.nf_hooks[NF_INET_FORWARD]
        if hooks:
            data = self._nf_run(hooks, data, dev)
            if data is None:
                return
        self.mib["IpForwDatagrams"] += 1
        if n > mtu:
            self.ip_fragment(route, iph.daddr, data, mtu)   # no DF: fragments
            return
        self._dev_queue_xmit(route, iph.daddr, data)

    def ip_fragment(self, route: Route, daddr: int, data: bytes, mtu: int) -> None:
        """Cut a datagram without DF into fragments of at most ``mtu`` bytes (``ip_do_fragment``,
        slow path): payloads in multiples of 8 bytes, the header copied (options included),
        MF on all but the last (and on that one too if the datagram was itself a non-final
        fragment). IpFragOKs per datagram, IpFragCreates per fragment."""
        ihl = (data[0] & 15) * 4
        hdr = bytearray(data[:ihl])
        frag = _H.unpack_from(data, 6)[0]
        base_off = (frag & IP_OFFSET) * 8
        more = frag & IP_MF
        room = (mtu - ihl) & ~7
        payload = memoryview(bytes(data))[ihl:]
        if room < 8:
            self.mib["IpFragFails"] += 1
            self.drop(data, "PKT_TOO_BIG")
            return
        mib = self.mib
        pos = 0
        total = len(payload)
        while pos < total:
            chunk = payload[pos:pos + room]
            end = pos + len(chunk)
            flags = ((base_off + pos) >> 3) | (IP_MF if end < total or more else 0) | (frag & 0x8000)
            _H.pack_into(hdr, 2, ihl + len(chunk))
            _H.pack_into(hdr, 6, flags)
            hdr[10:12] = b"\0\0"
            _H.pack_into(hdr, 10, ~csum_partial(bytes(hdr)) & 0xFFFF)
            mib["IpFragCreates"] += 1
            self._dev_queue_xmit(route, daddr, bytes(hdr) + bytes(chunk))
            pos = end
        mib["IpFragOKs"] += 1

    # ---- send ------------------------------------------------------------------------------

    def ip_output(self, saddr: int, daddr: int, proto: int, payload: bytes, tos: int = 0,
                  ttl: int | None = None, df: bool = True, gso_size: int = 0, gso_segs: int = 1,
                  ip_summed: int = 0) -> int:
        """Build and send one datagram (``ip_queue_xmit`` / ``ip_build_and_send_pkt``).

        ``gso_size``/``gso_segs``/``ip_summed`` describe a TSO packet or a checksum left to
        the device (``OffloadPacket``); its segments take consecutive IP ids
        (``ip_select_ident_segs``). Returns as Linux: 0 (NET_XMIT_SUCCESS, also when a
        netfilter hook stole or dropped it), -EHOSTUNREACH without a route (IpOutNoRoutes), or
        NET_XMIT_DROP (1) when the device's qdisc dropped it.
        """
        route = self.fib_lookup(daddr)
        if route is None:
            self.mib["IpOutNoRoutes"] += 1
            return -EHOSTUNREACH
        if route.locks and df:
            df = not route.locks & 4         # ip_dont_fragment: no DF over ``mtu lock`` routes
        ident = (self.ip_id + 1) & 0xFFFF
        self.ip_id = (self.ip_id + (gso_segs if gso_size else 1)) & 0xFFFF
        data = ip_build(saddr, daddr, proto, payload,
                        ttl if ttl is not None else self.sysctl.ip_default_ttl, tos, ident, df)
        if gso_size or ip_summed:
            data = offload_packet(data, gso_size, gso_segs, ip_summed)
        self.mib["IpOutRequests"] += 1
        hooks = self.nf_hooks[NF_INET_LOCAL_OUT]
        if hooks:
            if isinstance(data, OffloadPacket):
                data = skb_checksum_help(data)
            data = self._nf_run(hooks, data, route.dev)
            if data is None:
                return NET_XMIT_SUCCESS
        return self._dev_queue_xmit(route, daddr, data)

    def _dev_queue_xmit(self, route: Route, daddr: int, data: bytes) -> int:
        """POST_ROUTING, then the device; what it cannot offload is done in software first
        (``validate_xmit_skb``: ``skb_gso_segment``, ``skb_checksum_help``). NET_XMIT_DROP if
        the device's qdisc dropped it at enqueue (a GSO packet as one), else NET_XMIT_SUCCESS."""
        hooks = self.nf_hooks[NF_INET_POST_ROUTING]
        if hooks:
            if isinstance(data, OffloadPacket):
                data = skb_checksum_help(data)
            data = self._nf_run(hooks, data, route.dev)
            if data is None:
                return NET_XMIT_SUCCESS
        dev = route.dev
        if not dev.up or dev.xmit is None:
            self.drop(data, "NETDEV_DOWN")
            return NET_XMIT_SUCCESS
        if dev.qdisc_limit is not None and dev.qdisc_limit <= 0:
            dev.qdisc_drops += 1
            self.drop(data, "QDISC_DROP")
            return NET_XMIT_DROP
        if route.mtu and self._dev_mtu_exceeded(dev, data):
            return NET_XMIT_SUCCESS
        tp = self.trace.packet
        if isinstance(data, OffloadPacket):
            feats = dev.features
            if ((data.gso_size and not feats & NETIF_F_TSO)
                    or (data.ip_summed == CHECKSUM_PARTIAL and not feats & NETIF_F_HW_CSUM)):
                for seg in skb_gso_segment(data):
                    self._dev_xmit(dev, route.gw or daddr, seg)
                return NET_XMIT_SUCCESS
            if tp.subs:
                data = skb_checksum_help(data)       # a capture sees real checksums
        self._dev_xmit(dev, route.gw or daddr, data)
        return NET_XMIT_SUCCESS

    def _dev_mtu_exceeded(self, dev: NetDevice, data: bytes) -> bool:
        """A route whose ``mtu`` metric is larger than its device's MTU (asked only then):
        a DF frame longer than the device MTU leaves the stack but not the device -- a capture
        sees it, the device drops it and counts it in ``tx_dropped`` (as veth does when its
        peer refuses an oversize frame). No ICMP comes back: a PMTU black hole, which only
        TCP's MTU probing (tcp_mtu_probing) gets out of. Non-DF frames are passed whole
        (Linux would have fragmented them to the route's MTU; tcpdive does not fragment)."""
        mtu = dev.mtu
        n = len(data)
        if n <= mtu or not data[6] & 0x40:
            return False
        if isinstance(data, OffloadPacket) and data.gso_size:
            ihl = (data[0] & 15) * 4
            if ihl + (data[ihl + 12] >> 4) * 4 + data.gso_size <= mtu:
                return False
        tp = self.trace.packet
        if tp.subs:
            tp.emit(self, dev, skb_checksum_help(data) if isinstance(data, OffloadPacket)
                    else data, "out", self.clock.now_us())
        dev.tx_dropped += 1
        self.drop(data, "PKT_TOO_BIG")
        return True

    def _dev_xmit(self, dev: NetDevice, nexthop: int, data: bytes) -> None:
        dev.tx_packets += 1
        dev.tx_bytes += len(data)
        tp = self.trace.packet
        if tp.subs:
            tp.emit(self, dev, data, "out", self.clock.now_us())
        dev.xmit(data, nexthop)

    def _loopback_xmit(self, data: bytes, nexthop: int) -> None:
        """loopback_xmit: queue for our own receive path, processed as a softirq would."""
        self._backlog.append((self.lo, data))
        if not self._softirq.pending:
            self._softirq.mod(self.clock.now_us())

    def _net_rx_action(self, _arg: object) -> None:
        backlog = self._backlog
        while backlog:
            dev, data = backlog.popleft()
            self.netif_receive(dev, data)

    def _nf_hook_in(self, hooknum: int, data: bytes, dev: NetDevice, iph):
        """Run an input-side hook; re-parse the header if a hook rewrote the datagram (NAT)."""
        if isinstance(data, OffloadPacket):
            data = skb_checksum_help(data)
        out = self._nf_run(self.nf_hooks[hooknum], data, dev)
        if out is None:
            return None
        if out is not data:
            _, iph = ip_parse(out)
            if iph is None:
                return None
        return out, iph

    def _nf_run(self, hooks: list[NfHook], data: bytes, dev: NetDevice) -> bytes | None:
        gso = data if isinstance(data, OffloadPacket) and data.gso_size else None
        for hook in hooks:
            out = hook(self, data, dev.name)
            if out is None:
                self.drop(data, "NETFILTER_DROP")
                return None
            data = out
        if gso is not None and not isinstance(data, OffloadPacket):
            # a hook rewrote a GSO packet (NAT): still one, its checksums now the hook's
            data = offload_packet(bytes(data), gso.gso_size, gso.gso_segs, 0)
        return data

    def nf_register_hook(self, hooknum: int, fn: NfHook) -> None:
        """Add a netfilter-style hook (``nf_register_net_hook``): firewall, NAT, load balancer."""
        self.nf_hooks[hooknum].append(fn)

    def nf_unregister_hook(self, hooknum: int, fn: NfHook) -> None:
        self.nf_hooks[hooknum].remove(fn)

    def drop(self, what: object, reason: str) -> None:
        """``kfree_skb_reason``: a packet is dropped; tell the drop tracepoint why."""
        tp = self.trace.drop
        if tp.subs:
            tp.emit(self, what, reason, self.clock.now_us())

    def __repr__(self) -> str:
        return f"<Netns {self.name} {int2ip(self.primary_addr())}>"


__all__ = ["Netns", "NetDevice", "Route", "IPHDR_LEN", "NF_INET_PRE_ROUTING", "NF_INET_LOCAL_IN",
           "NF_INET_FORWARD", "NF_INET_LOCAL_OUT", "NF_INET_POST_ROUTING", "NETIF_F_HW_CSUM",
           "NETIF_F_RXCSUM", "NETIF_F_TSO", "NETIF_F_GRO", "NETIF_F_OFFLOAD"]



def _tcp_v4_rcv(net: Netns, iph, data: bytes, off: int) -> None:
    """Bind ``tcp_v4_rcv`` on first use (tcp imports net; net cannot import tcp at load)."""
    global _tcp_v4_rcv
    from ..tcp.ipv4 import tcp_v4_rcv

    _tcp_v4_rcv = tcp_v4_rcv
    tcp_v4_rcv(net, iph, data, off)
