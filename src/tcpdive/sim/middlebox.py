"""Middleboxes for simulated worlds: a firewall with DROP rules, SNAT, and a DSR load balancer.

All three sit on a host's netfilter-style hooks (``Netns.nf_register_hook``), like iptables,
the nf_nat masquerade target and an L4 load balancer (IPVS in direct-routing mode) do on Linux:

- :class:`Firewall` — ``iptables -A INPUT|OUTPUT|FORWARD ... -j DROP`` rules with packet counters.
- :class:`Nat` — source NAT of many inside clients to one public address, with a port mapping
  (the original port is kept when free, as ``nf_nat_used_tuple`` prefers) and the IPv4 and TCP
  checksums fixed after the rewrite.
- :class:`MssClamp` — ``iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS
  --clamp-mss-to-pmtu`` (or ``--set-mss N``): the MSS option of forwarded SYNs lowered to fit
  the path, the TCP checksum patched incrementally (xt_TCPMSS).
- :class:`LoadBalancer` — a virtual IP in front of backends: a session table keyed by the
  client's 4-tuple, round-robin for flows it does not know, an idle timeout (120 s by default)
  after which a flow's session is forgotten, and Direct Server Return: the LB only ever sees
  client -> VIP packets; backends (which also own the VIP) answer the client directly.

They do not know TCP states: like the boxes in the article they see packets, not sockets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ..net.netns import (
    NF_INET_FORWARD,
    NF_INET_LOCAL_IN,
    NF_INET_LOCAL_OUT,
    NF_INET_POST_ROUTING,
    NF_INET_PRE_ROUTING,
    Netns,
)
from ..packet.checksum import ip_fast_csum, tcp_v4_check
from ..packet.ipv4 import int2ip, ip2int

__all__ = ["Firewall", "Rule", "Nat", "LoadBalancer", "MssClamp", "parse_l4", "fix_checksums"]

_CHAINS = {"INPUT": NF_INET_LOCAL_IN, "OUTPUT": NF_INET_LOCAL_OUT, "FORWARD": NF_INET_FORWARD}
_PROTO = {"tcp": 6, "udp": 17, "icmp": 1}
_PORTS = struct.Struct("!HH")


def parse_l4(data: bytes) -> tuple[int, int, int, int, int]:
    """(protocol, saddr, daddr, sport, dport) of an IPv4 datagram (ports 0 when not TCP/UDP)."""
    proto = data[9]
    saddr, daddr = struct.unpack_from("!II", data, 12)
    sport = dport = 0
    if proto in (6, 17):
        off = (data[0] & 15) * 4
        if len(data) >= off + 4:
            sport, dport = _PORTS.unpack_from(data, off)
    return proto, saddr, daddr, sport, dport


def fix_checksums(b: bytearray) -> bytes:
    """Recompute the IPv4 header checksum and the TCP/UDP checksum after a rewrite."""
    ihl = (b[0] & 15) * 4
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", ip_fast_csum(bytes(b[:ihl])))
    proto = b[9]
    if proto in (6, 17):
        saddr, daddr = struct.unpack_from("!II", b, 12)
        seg = b[ihl:]
        coff = 16 if proto == 6 else 6
        if proto == 17 and seg[coff:coff + 2] == b"\0\0":
            return bytes(b)
        seg[coff:coff + 2] = b"\0\0"
        c = tcp_v4_check(saddr, daddr, bytes(seg), proto)
        if proto == 17 and c == 0:
            c = 0xFFFF
        seg[coff:coff + 2] = struct.pack("!H", c)
        b[ihl:] = seg
    return bytes(b)


# ---------------------------------------------------------------------------------- firewall


@dataclass
class Rule:
    """One ``iptables -A CHAIN [-p P] [-s S] [-d D] [--sport] [--dport] -j DROP`` rule."""

    chain: str
    proto: str | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    pkts: int = 0
    bytes: int = 0
    match: Callable[[bytes], bool] | None = field(default=None, repr=False)

    def matches(self, data: bytes) -> bool:
        proto, saddr, daddr, sport, dport = parse_l4(data)
        if self.proto is not None and _PROTO[self.proto] != proto:
            return False
        if self.src is not None and ip2int(self.src) != saddr:
            return False
        if self.dst is not None and ip2int(self.dst) != daddr:
            return False
        if self.sport is not None and self.sport != sport:
            return False
        if self.dport is not None and self.dport != dport:
            return False
        return self.match is None or self.match(data)

    def spec(self) -> str:
        parts = [f"-A {self.chain}"]
        if self.proto:
            parts.append(f"-p {self.proto}")
        if self.src:
            parts.append(f"-s {self.src}")
        if self.dst:
            parts.append(f"-d {self.dst}")
        if self.sport is not None:
            parts.append(f"--sport {self.sport}")
        if self.dport is not None:
            parts.append(f"--dport {self.dport}")
        return " ".join(parts + ["-j DROP"])


class Firewall:
    """iptables' filter table on one host: DROP rules on INPUT, OUTPUT and FORWARD."""

    def __init__(self, host: Netns) -> None:
        self.host = host
        self.rules: list[Rule] = []
        self._hooks: dict[int, Callable] = {}

    def _hook(self, chain: str) -> Callable:
        def hook(net: Netns, data: bytes, dev: str) -> bytes | None:
            for r in self.rules:
                if r.chain == chain and r.matches(data):
                    r.pkts += 1
                    r.bytes += len(data)
                    return None
            return data
        return hook

    def drop(self, chain: str = "INPUT", **kw) -> Rule:
        """Append a DROP rule (``iptables -A CHAIN ... -j DROP``)."""
        if chain not in _CHAINS:
            raise ValueError(f"unknown chain {chain!r}")
        rule = Rule(chain, **kw)
        self.rules.append(rule)
        hookno = _CHAINS[chain]
        if hookno not in self._hooks:
            fn = self._hooks[hookno] = self._hook(chain)
            self.host.nf_register_hook(hookno, fn)
        return rule

    def flush(self) -> None:
        """``iptables -F``: delete every rule (counters go with them)."""
        self.rules.clear()
        for hookno, fn in self._hooks.items():
            self.host.nf_unregister_hook(hookno, fn)
        self._hooks.clear()

    def listing(self) -> list[str]:
        """``iptables -S`` with ``-v``-style counters."""
        return [f"{r.spec():<60} # {r.pkts} pkts, {r.bytes} bytes" for r in self.rules]


# ---------------------------------------------------------------------------------- TCPMSS


def csum_replace2(check: int, old: int, new: int) -> int:
    """A 16-bit field of a checksummed area changed from ``old`` to ``new``: the new checksum
    (RFC 1624 eqn. 3, ``inet_proto_csum_replace2``)."""
    s = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class MssClamp:
    """The TCPMSS target on a forwarding host's FORWARD chain (mangle table): SYNs (without RST)
    passing through get their MSS option lowered to ``mss``, or with ``mss=None``
    (``--clamp-mss-to-pmtu``) to min(MTU toward the destination, MTU back toward the source)
    - 40 (``tcpmss_mangle_packet``, ``tcpmss_reverse_mtu``). The MSS is never raised; the TCP
    checksum is patched incrementally. A SYN without an MSS option is left alone (xt_TCPMSS
    would add one; tcpdive's stacks always send it). ``clamped`` counts rewritten SYNs and
    ``log`` keeps (time, "old -> new") pairs."""

    def __init__(self, host: Netns, mss: int | None = None) -> None:
        self.host = host
        self.mss = mss
        self.clamped = 0
        self.pkts = 0
        self.log: list[tuple[float, str]] = []
        host.nf_register_hook(NF_INET_FORWARD, self._hook)

    def spec(self) -> str:
        target = "--clamp-mss-to-pmtu" if self.mss is None else f"--set-mss {self.mss}"
        return f"-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS {target}"

    def _hook(self, net: Netns, data: bytes, dev: str) -> bytes | None:
        if data[9] != 6:
            return data
        ihl = (data[0] & 15) * 4
        if len(data) < ihl + 20 or data[ihl + 13] & 0x06 != 0x02:     # SYN set, RST clear
            return data
        self.pkts += 1
        saddr, daddr = struct.unpack_from("!II", data, 12)
        if self.mss is None:
            newmss = min(net.route_mtu(daddr), net.route_mtu(saddr)) - 40
            if newmss <= 0:
                return None                   # "unknown or invalid path-MTU": NF_DROP
        else:
            newmss = self.mss
        doff = (data[ihl + 12] >> 4) * 4
        i = ihl + 20
        end = ihl + doff
        while i + 4 <= end:
            kind = data[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            ln = data[i + 1]
            if ln < 2:
                break
            if kind == 2 and ln == 4:
                old = struct.unpack_from("!H", data, i + 2)[0]
                if old <= newmss:
                    return data
                b = bytearray(data)
                struct.pack_into("!H", b, i + 2, newmss)
                check = struct.unpack_from("!H", b, ihl + 16)[0]
                struct.pack_into("!H", b, ihl + 16, csum_replace2(check, old, newmss))
                self.clamped += 1
                self.log.append((net.clock.now_us() / 1e6, f"mss {old} -> {newmss}"))
                return bytes(b)
            i += ln
        return data


# ---------------------------------------------------------------------------------- NAT


class Nat:
    """Source NAT (``-t nat -A POSTROUTING -s INSIDE -j SNAT --to PUBLIC``) on a forwarding host.

    Outbound packets from ``inside`` (a prefix like ``"172.16.0.0/16"``) get ``public`` as their
    source; the source port is kept when no other inside flow uses it toward the same
    destination, else the next free port from 1024 up. Replies to ``public`` are translated back
    before routing. ``table`` maps (inside addr, inside port, proto, dst addr, dst port) to the
    public port; the checksums of every rewritten packet are recomputed.
    """

    def __init__(self, host: Netns, public: str, inside: str) -> None:
        host.sysctl.set("net.ipv4.ip_forward", "1")
        self.host = host
        self.public = ip2int(public)
        net, plen = inside.split("/")
        self.plen = int(plen)
        self.mask = (0xFFFFFFFF << (32 - self.plen)) & 0xFFFFFFFF
        self.inside = ip2int(net) & self.mask
        self.table: dict[tuple[int, int, int, int, int], int] = {}
        self.reverse: dict[tuple[int, int, int, int], tuple[int, int]] = {}
        self.translated = 0
        host.nf_register_hook(NF_INET_POST_ROUTING, self._snat)
        host.nf_register_hook(NF_INET_PRE_ROUTING, self._dnat)

    def _snat(self, net: Netns, data: bytes, dev: str) -> bytes | None:
        proto, saddr, daddr, sport, dport = parse_l4(data)
        if (saddr & self.mask) != self.inside or proto not in (6, 17):
            return data
        key = (saddr, sport, proto, daddr, dport)
        port = self.table.get(key)
        if port is None:
            port = sport
            while (proto, daddr, dport, port) in self.reverse:
                port = port + 1 if port < 65535 else 1024
            self.table[key] = port
            self.reverse[(proto, daddr, dport, port)] = (saddr, sport)
        b = bytearray(data)
        struct.pack_into("!I", b, 12, self.public)
        ihl = (b[0] & 15) * 4
        struct.pack_into("!H", b, ihl, port)
        self.translated += 1
        return fix_checksums(b)

    def _dnat(self, net: Netns, data: bytes, dev: str) -> bytes | None:
        proto, saddr, daddr, sport, dport = parse_l4(data)
        if daddr != self.public:
            return data
        orig = self.reverse.get((proto, saddr, sport, dport))
        if orig is None:
            return data
        b = bytearray(data)
        struct.pack_into("!I", b, 16, orig[0])
        ihl = (b[0] & 15) * 4
        struct.pack_into("!H", b, ihl + 2, orig[1])
        self.translated += 1
        return fix_checksums(b)

    def mappings(self) -> list[str]:
        """``conntrack -L``-like lines."""
        out = []
        for (sa, sp, proto, da, dp), port in self.table.items():
            name = {6: "tcp", 17: "udp"}.get(proto, str(proto))
            out.append(f"{name:<4} src={int2ip(sa)} sport={sp} dst={int2ip(da)} dport={dp} "
                       f"-> src={int2ip(self.public)} sport={port}")
        return out


# ---------------------------------------------------------------------------------- load balancer


@dataclass
class Session:
    client: tuple[int, int]
    backend: str
    created: float
    last_seen: float
    packets: int = 0


class LoadBalancer:
    """An L4 load balancer in Direct Server Return mode, with a session table and idle timeout.

    ``backends`` maps a backend name to the LB's device toward it. A packet to ``vip``:port from
    a client flow in the session table goes to that flow's backend and refreshes ``last_seen``;
    a flow not in the table (new, or expired after ``idle_timeout`` seconds without packets) is
    given the next backend round-robin — whatever its TCP flags — and a new session. The packet
    is put on that backend's link unchanged (IPVS "gatewaying": the backend owns the VIP too) and
    the hook steals it (NF_STOLEN). Replies never pass the LB.
    """

    def __init__(self, host: Netns, vip: str, port: int, backends: dict[str, str],
                 idle_timeout: float = 120.0) -> None:
        self.host = host
        self.vip = ip2int(vip)
        self.port = port
        self.backends = dict(backends)      # name -> device name on the LB
        self.order = list(backends)
        self.idle_timeout = idle_timeout
        self.sessions: dict[tuple[int, int], Session] = {}
        self._rr = 0
        self.expired: list[tuple[float, str, str]] = []       # (time, client, backend)
        self.events: list[tuple[float, str]] = []
        host.nf_register_hook(NF_INET_PRE_ROUTING, self._hook)

    def _now(self) -> float:
        return self.host.clock.now_us() / 1e6

    def _expire(self, now: float) -> None:
        dead = [k for k, s in self.sessions.items() if now - s.last_seen >= self.idle_timeout]
        for k in dead:
            s = self.sessions.pop(k)
            who = f"{int2ip(k[0])}:{k[1]}"
            self.expired.append((s.last_seen + self.idle_timeout, who, s.backend))
            self.events.append((s.last_seen + self.idle_timeout,
                                f"session {who} -> {s.backend} expired (idle {self.idle_timeout:g} s)"))

    def _hook(self, net: Netns, data: bytes, dev: str) -> bytes | None:
        proto, saddr, daddr, sport, dport = parse_l4(data)
        if daddr != self.vip or proto != 6 or dport != self.port:
            return data
        now = self._now()
        self._expire(now)
        key = (saddr, sport)
        s = self.sessions.get(key)
        if s is None:
            name = self.order[self._rr % len(self.order)]
            self._rr += 1
            s = self.sessions[key] = Session(key, name, now, now)
            self.events.append((now, f"new session {int2ip(saddr)}:{sport} -> {name}"))
        s.last_seen = now
        s.packets += 1
        d = self.host.devices[self.backends[s.backend]]
        d.tx_packets += 1
        d.tx_bytes += len(data)
        tp = self.host.trace.packet
        if tp.subs:
            tp.emit(self.host, d, data, "out", self.host.clock.now_us())
        d.xmit(data, self.vip)
        return None

    def session_table(self) -> list[str]:
        """``ipvsadm -Lnc``-like listing of the live sessions."""
        now = self._now()
        self._expire(now)
        out = ["pro expire  source                 virtual                destination"]
        for (sa, sp), s in self.sessions.items():
            left = max(0.0, self.idle_timeout - (now - s.last_seen))
            out.append(f"TCP {left:6.1f}  {int2ip(sa) + ':' + str(sp):<22} "
                       f"{int2ip(self.vip) + ':' + str(self.port):<22} {s.backend}")
        return out
