"""IPv4 header (RFC 791) building and strict parsing; addresses are host-order ints on hot paths."""

from __future__ import annotations

import socket as _socket
import struct

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFSET = 0x1FFF

IPHDR = struct.Struct("!BBHHHBBHII")   # version/ihl, tos, tot_len, id, frag_off, ttl, proto, check, saddr, daddr
IPHDR_LEN = 20

_pack_hdr = IPHDR.pack
_unpack_hdr = IPHDR.unpack_from
_from_bytes = int.from_bytes


def ip2int(addr: str) -> int:
    """Dotted quad to a host-order int ('10.0.0.1' -> 0x0a000001); OSError(EINVAL) if malformed."""
    try:
        return int.from_bytes(_socket.inet_aton(addr), "big") if addr.count(".") == 3 else _bad(addr)
    except OSError:
        return _bad(addr)


def _bad(addr: str) -> int:
    from ..errors import EINVAL, oserror

    raise oserror(EINVAL, f"bad IPv4 address {addr!r}")


def int2ip(addr: int) -> str:
    """Host-order int to dotted quad."""
    return f"{addr >> 24 & 255}.{addr >> 16 & 255}.{addr >> 8 & 255}.{addr & 255}"


def ipv4_is_loopback(addr: int) -> bool:
    """127.0.0.0/8 (``ipv4_is_loopback``)."""
    return (addr >> 24) == 127


def ipv4_is_multicast(addr: int) -> bool:
    return (addr >> 28) == 0xE


def ip_build(saddr: int, daddr: int, proto: int, payload: bytes, ttl: int = 64, tos: int = 0,
             ident: int = 0, df: bool = True) -> bytes:
    """A complete IPv4 datagram: 20-byte header with checksum, then ``payload``.

    The checksum is summed from the field values (``ip_send_check``), one pack for the header.
    """
    tot = IPHDR_LEN + len(payload)
    ident &= 0xFFFF
    frag = IP_DF if df else 0
    s = (0x4500 + tos + tot + ident + frag + (ttl << 8) + proto
         + (saddr >> 16) + (saddr & 0xFFFF) + (daddr >> 16) + (daddr & 0xFFFF))
    check = 0xFFFF - (s % 0xFFFF or 0xFFFF)
    return _pack_hdr(0x45, tos, tot, ident, frag, ttl, proto, check, saddr, daddr) + payload


class IpHdr:
    """A parsed IPv4 header (``struct iphdr``) and where its payload lies in the buffer."""

    __slots__ = ("tos", "tot_len", "id", "frag_off", "ttl", "protocol", "saddr", "daddr", "ihl")

    def __init__(self, ihl: int, tos: int, tot_len: int, ident: int, frag_off: int, ttl: int,
                 protocol: int, saddr: int, daddr: int) -> None:
        self.ihl = ihl
        self.tos = tos
        self.tot_len = tot_len
        self.id = ident
        self.frag_off = frag_off
        self.ttl = ttl
        self.protocol = protocol
        self.saddr = saddr
        self.daddr = daddr


# Reasons ip_rcv drops a datagram, and the MIB counter Linux bumps for each (ip_rcv_core).
IP_OK = 0
IP_HDRERR = 1        # IpInHdrErrors: too short, version != 4, ihl < 5, bad checksum
IP_TRUNCATED = 2     # IpExtInTruncatedPkts (Linux: IPSTATS_MIB_INTRUNCATEDPKTS), tot_len > buffer
IP_CSUMERR = 3       # IpExtInCsumErrors + IpInHdrErrors


def ip_parse(data: bytes) -> tuple[int, IpHdr | None]:
    """Validate and parse an IPv4 header as ``ip_rcv_core`` does; returns (reason, header)."""
    n = len(data)
    if n < IPHDR_LEN:
        return IP_HDRERR, None
    vihl, tos, tot_len, ident, frag_off, ttl, proto, _check, saddr, daddr = _unpack_hdr(data)
    ihl = vihl & 15
    if vihl >> 4 != 4 or ihl < 5:
        return IP_HDRERR, None
    hl = ihl * 4
    if n < hl:
        return IP_HDRERR, None
    if _from_bytes(data[:hl], "big") % 0xFFFF:      # ip_fast_csum() != 0 (the header is not 0)
        return IP_CSUMERR, None
    if tot_len > n:
        return IP_TRUNCATED, None
    if tot_len < hl:
        return IP_HDRERR, None
    return IP_OK, IpHdr(ihl, tos, tot_len, ident, frag_off, ttl, proto, saddr, daddr)


# IP ECN field: the low two bits of the TOS byte (RFC 3168 5, include/net/inet_ecn.h)
INET_ECN_NOT_ECT = 0
INET_ECN_ECT_1 = 1
INET_ECN_ECT_0 = 2
INET_ECN_CE = 3
INET_ECN_MASK = 3


def IP_ECN_set_ce(pkt: bytes) -> bytes | None:
    """``pkt`` with Congestion Experienced in its ECN field, the header checksum updated
    incrementally (``IP_ECN_set_ce``, RFC 1624 eqn. 3); None if it is Not-ECT (a router
    must drop it instead), ``pkt`` itself if it already says CE."""
    tos = pkt[1]
    ecn = tos & INET_ECN_MASK
    if ecn == INET_ECN_CE:
        return pkt
    if not ecn:
        return None
    word = pkt[0] << 8
    # HC' = ~(~HC + ~m + m'): the first header word goes from (vihl, tos) to (vihl, tos | CE)
    s = (~_from_bytes(pkt[10:12], "big") & 0xFFFF) + (~(word | tos) & 0xFFFF) + (word | tos | 3)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    check = ~s & 0xFFFF
    return pkt[:1] + bytes((tos | INET_ECN_CE,)) + pkt[2:10] + check.to_bytes(2, "big") + pkt[12:]
