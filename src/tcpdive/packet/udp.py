"""UDP header (RFC 768) building and parsing; checksums over the IPv4 pseudo-header.

Wire format only: no stack logic. A checksum field of 0 means "no checksum" on receive; on
send a computed 0 is written as 0xffff (``CSUM_MANGLED_0``), as ``udp4_hwcsum``/``udp_send_skb`` do.
"""

from __future__ import annotations

import struct

from .checksum import csum_fold, csum_partial, pseudo_sum

IPPROTO_UDP = 17

UDPHDR = struct.Struct("!HHHH")     # source, dest, len, check
UDPHDR_LEN = 8
UDP_MAX_PAYLOAD = 0xFFFF - 20 - UDPHDR_LEN      # 65507: largest IPv4 UDP datagram payload
CSUM_MANGLED_0 = 0xFFFF

_pack_hdr = UDPHDR.pack
unpack_udphdr = UDPHDR.unpack_from


class UdpHdr:
    """A parsed UDP header (``struct udphdr``)."""

    __slots__ = ("source", "dest", "len", "check")

    def __init__(self, source: int, dest: int, length: int, check: int) -> None:
        self.source = source
        self.dest = dest
        self.len = length
        self.check = check

    def __repr__(self) -> str:
        return f"UdpHdr({self.source} > {self.dest}, len {self.len}, check {self.check:#06x})"


def udp_build(saddr: int, daddr: int, sport: int, dport: int, payload: bytes | bytearray | memoryview,
              csum: bool = True) -> bytes:
    """A UDP segment (header + payload); ``csum=False`` sends check 0 (``SO_NO_CHECK``)."""
    ulen = UDPHDR_LEN + len(payload)
    hdr = _pack_hdr(sport, dport, ulen & 0xFFFF, 0)
    if not csum:
        return hdr + bytes(payload)
    body = bytes(payload)
    check = csum_fold(csum_partial(hdr + body, pseudo_sum(saddr, daddr, IPPROTO_UDP, ulen)))
    if check == 0:
        check = CSUM_MANGLED_0
    return hdr[:6] + check.to_bytes(2, "big") + body


def udp_parse(data: bytes | bytearray | memoryview, off: int = 0) -> UdpHdr | None:
    """The UDP header at ``data[off:]``, or None if fewer than 8 bytes remain."""
    if len(data) - off < UDPHDR_LEN:
        return None
    return UdpHdr(*unpack_udphdr(data, off))


def udp_csum_ok(saddr: int, daddr: int, segment: bytes | bytearray | memoryview) -> bool:
    """True if ``segment`` (header + data, trimmed to its UDP length) checks out; check 0 is none."""
    if segment[6] == 0 and segment[7] == 0:
        return True
    return csum_partial(segment, pseudo_sum(saddr, daddr, IPPROTO_UDP, len(segment))) == 0xFFFF


__all__ = ["UDPHDR", "UDPHDR_LEN", "UDP_MAX_PAYLOAD", "CSUM_MANGLED_0", "UdpHdr", "udp_build",
           "udp_parse", "udp_csum_ok", "unpack_udphdr"]
