"""Two hosts on one wire, without the simulator: every transmitted datagram lands in a list and
is delivered by hand with ``netif_receive``.

    p = Pair()                 # a = 10.0.0.1/24 on eth0, b = 10.0.0.2/24 on eth0
    p.out_a / p.out_b          # IP datagrams each host put on its eth0
    p.to_b() / p.to_a()        # deliver everything pending, return what was delivered
"""

from __future__ import annotations

import struct

from tcpdive.ktime import ManualClock
from tcpdive.net.netns import NetDevice, Netns
from tcpdive.packet.ipv4 import ip2int
from tcpdive.socket import AF_INET, SOCK_DGRAM, Socket

A = "10.0.0.1"
B = "10.0.0.2"
A_INT = ip2int(A)
B_INT = ip2int(B)


class Pair:
    def __init__(self, **sysctl_b: object) -> None:
        self.clock = ManualClock(1_000_000_000)
        self.a = Netns(self.clock, "a")
        self.b = Netns(self.clock, "b")
        for k, v in sysctl_b.items():
            self.b.sysctl.set(k, v)
        self.out_a: list[bytes] = []
        self.out_b: list[bytes] = []
        self.dev_a = self.a.add_device(NetDevice("eth0", xmit=lambda d, nh: self.out_a.append(d)))
        self.dev_b = self.b.add_device(NetDevice("eth0", xmit=lambda d, nh: self.out_b.append(d)))
        self.a.add_addr("eth0", A, 24)
        self.b.add_addr("eth0", B, 24)

    def to_b(self) -> list[bytes]:
        sent, self.out_a[:] = list(self.out_a), []
        for d in sent:
            self.b.netif_receive(self.dev_b, d)
        return sent

    def to_a(self) -> list[bytes]:
        sent, self.out_b[:] = list(self.out_b), []
        for d in sent:
            self.a.netif_receive(self.dev_a, d)
        return sent

    def udp(self, host: Netns, bind: tuple[str, int] | None = None) -> Socket:
        s = Socket(host, AF_INET, SOCK_DGRAM)
        s.setblocking(False)
        if bind is not None:
            s.bind(bind)
        return s

    def run_softirq(self) -> None:
        """Let loopback deliveries (queued as a softirq at 'now') happen."""
        self.clock.run_until(self.clock.now_us())


def ones_sum(b: bytes) -> int:
    """Independent RFC 1071 sum, folded (for checking the stack's checksums)."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ip_fields(d: bytes) -> dict:
    vihl, tos, tot, ident, frag, ttl, proto, check, src, dst = struct.unpack_from("!BBHHHBBHII", d)
    return {"ver": vihl >> 4, "ihl": vihl & 15, "tos": tos, "tot_len": tot, "id": ident,
            "frag": frag, "ttl": ttl, "proto": proto, "src": src, "dst": dst}


def udp_csum_valid(d: bytes) -> bool:
    ihl = (d[0] & 15) * 4
    seg = d[ihl:]
    pseudo = d[12:20] + struct.pack("!BBH", 0, 17, len(seg))
    return ones_sum(pseudo + seg) == 0xFFFF


def raw_udp(src: int, dst: int, sport: int, dport: int, payload: bytes, check: int | None = None,
            ulen: int | None = None, ttl: int = 64) -> bytes:
    """A UDP/IPv4 datagram built independently of the stack; ``check`` overrides the checksum."""
    ul = 8 + len(payload) if ulen is None else ulen
    seg = struct.pack("!HHHH", sport, dport, ul, 0) + payload
    if check is None:
        pseudo = struct.pack("!IIBBH", src, dst, 0, 17, len(seg))
        check = (~ones_sum(pseudo + seg)) & 0xFFFF or 0xFFFF
    seg = seg[:6] + struct.pack("!H", check) + seg[8:]
    return raw_ip(src, dst, 17, seg, ttl=ttl)


def raw_ip(src: int, dst: int, proto: int, payload: bytes, ttl: int = 64, tos: int = 0,
           frag: int = 0x4000, ident: int = 0x1234) -> bytes:
    hdr = struct.pack("!BBHHHBBHII", 0x45, tos, 20 + len(payload), ident, frag, ttl, proto, 0,
                      src, dst)
    c = (~ones_sum(hdr)) & 0xFFFF
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def raw_icmp(src: int, dst: int, icmp_type: int, code: int, rest: int, body: bytes,
             ttl: int = 64, good_csum: bool = True) -> bytes:
    msg = struct.pack("!BBHI", icmp_type, code, 0, rest) + body
    c = (~ones_sum(msg)) & 0xFFFF
    if not good_csum:
        c ^= 0x5A5A
    msg = msg[:2] + struct.pack("!H", c) + msg[4:]
    return raw_ip(src, dst, 1, msg, ttl=ttl)
