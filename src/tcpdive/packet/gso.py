"""Offloaded datagrams: TSO/GSO super-segments and checksums left to the device.

An :class:`OffloadPacket` is an IPv4+TCP datagram (``bytes``) that still carries the work a
device would do: ``gso_size``/``gso_segs`` (``skb_shinfo``) and ``ip_summed``. Where bytes must
be real (a non-offload device, an impairing link, a capture, a netfilter hook) it is
finished in software: :func:`skb_checksum_help` fills the TCP checksum and
:func:`skb_gso_segment` cuts it into wire segments (``tcp_gso_segment``/``inet_gso_segment``).
"""

from __future__ import annotations

import struct

from .checksum import csum_fold, csum_partial, pseudo_sum

# skb->ip_summed
CHECKSUM_NONE = 0
CHECKSUM_UNNECESSARY = 1
CHECKSUM_PARTIAL = 3

_IPHDR = struct.Struct("!BBHHHBBHII")
_TCP_SEQ = struct.Struct("!I")
_H = struct.Struct("!H")

_FIN = 0x01
_PSH = 0x08
_CWR = 0x80


class OffloadPacket(bytes):
    """An IPv4 datagram with device work left to do (``skb_shinfo`` gso_size/gso_segs, ``ip_summed``).

    ``gso_size`` is the TCP payload per wire segment (0: one segment), ``gso_segs`` how many;
    ``ip_summed`` CHECKSUM_PARTIAL means the TCP checksum field is not filled in, and
    CHECKSUM_UNNECESSARY that it is (the receiver need not verify it either way). A ``bytes``
    subclass cannot have ``__slots__``; only the few packets of an offload device are these.
    """

    gso_size = 0
    gso_segs = 1
    ip_summed = CHECKSUM_NONE


class CsumPartialPacket(OffloadPacket):
    """One segment whose TCP checksum is left to the device; no per-packet attributes."""

    __slots__ = ()
    ip_summed = CHECKSUM_PARTIAL


class CsumUnnecessaryPacket(OffloadPacket):
    """One segment whose checksum a device has vouched for (receive side)."""

    __slots__ = ()
    ip_summed = CHECKSUM_UNNECESSARY


_CSUM_ONLY = {CHECKSUM_PARTIAL: CsumPartialPacket, CHECKSUM_UNNECESSARY: CsumUnnecessaryPacket}


def offload_packet(data: bytes, gso_size: int, gso_segs: int, ip_summed: int) -> OffloadPacket:
    """``data`` as an ``OffloadPacket`` with these ``skb_shinfo``/``ip_summed`` values.

    Test with ``isinstance``: a single segment comes as a subclass carrying ``ip_summed``.
    """
    if not gso_size:
        cls = _CSUM_ONLY.get(ip_summed)
        if cls is not None:
            return cls(data)
    p = OffloadPacket(data)
    if gso_size:
        p.gso_size = gso_size
        p.gso_segs = gso_segs
    p.ip_summed = ip_summed
    return p


def _tcp_check(data: bytes, ihl: int) -> bytes:
    """``data`` with its TCP checksum computed over the IPv4 pseudo-header."""
    saddr, daddr = _IPHDR.unpack_from(data)[8:]
    seg = data[ihl:]
    if seg[16] or seg[17]:
        seg = seg[:16] + b"\0\0" + seg[18:]
    check = csum_fold(csum_partial(seg, pseudo_sum(saddr, daddr, 6, len(seg))))
    return data[: ihl + 16] + _H.pack(check) + data[ihl + 18:]


def skb_checksum_help(pkt: OffloadPacket) -> bytes:
    """Fill in a CHECKSUM_PARTIAL TCP checksum in software (``skb_checksum_help``).

    A GSO packet stays one (checksum over the whole super-segment, as a capture on lo shows it).
    """
    if pkt.ip_summed != CHECKSUM_PARTIAL:
        return pkt
    data = _tcp_check(pkt, (pkt[0] & 15) * 4)
    if not pkt.gso_size:
        return data
    return offload_packet(data, pkt.gso_size, pkt.gso_segs, CHECKSUM_UNNECESSARY)


def gso_wire_len(pkt: OffloadPacket) -> int:
    """Bytes the segments of ``pkt`` occupy on the wire: its length plus repeated headers."""
    n = pkt.gso_segs if pkt.gso_size else 1
    if n <= 1:
        return len(pkt)
    ihl = (pkt[0] & 15) * 4
    return len(pkt) + (n - 1) * (ihl + (pkt[ihl + 12] >> 4) * 4)


def skb_gso_segment(pkt: bytes) -> list[bytes]:
    """Cut a GSO packet into MSS wire segments with real checksums (``skb_gso_segment``).

    As ``tcp_gso_segment``: sequence advanced per segment, CWR only on the first, FIN and PSH
    only on the last; as ``inet_gso_segment``: IP id incremented, lengths and checksums redone.
    A non-GSO offload packet just gets its checksum; plain bytes are returned as they are.
    """
    if not isinstance(pkt, OffloadPacket):
        return [pkt]
    mss = pkt.gso_size
    if not mss:
        return [_tcp_check(pkt, (pkt[0] & 15) * 4) if pkt.ip_summed == CHECKSUM_PARTIAL
                else bytes(pkt)]
    vihl, tos, _tot, ident, frag_off, ttl, proto, _c, saddr, daddr = _IPHDR.unpack_from(pkt)
    ihl = (vihl & 15) * 4
    doff = (pkt[ihl + 12] >> 4) * 4
    hdr_end = ihl + doff
    seq = _TCP_SEQ.unpack_from(pkt, ihl + 4)[0]
    flags = pkt[ihl + 13]
    th_head = pkt[ihl: ihl + 4]
    th_mid = pkt[ihl + 8: ihl + 13]            # ack_seq, doff
    th_tail = pkt[ihl + 14: ihl + 16]          # window
    th_rest = pkt[ihl + 18: hdr_end]           # urg_ptr, options
    end = len(pkt)
    out = []
    i = 0
    for off in range(hdr_end, end, mss):
        chunk = pkt[off: off + mss]
        f = flags
        if off + mss < end:
            f &= ~(_FIN | _PSH)
        if i:
            f &= ~_CWR
        th = (th_head + _TCP_SEQ.pack((seq + off - hdr_end) & 0xFFFFFFFF) + th_mid
              + bytes((f,)) + th_tail + b"\0\0" + th_rest + chunk)
        check = csum_fold(csum_partial(th, pseudo_sum(saddr, daddr, proto, len(th))))
        th = th[:16] + _H.pack(check) + th[18:]
        iph = _IPHDR.pack(vihl, tos, ihl + len(th), (ident + i) & 0xFFFF, frag_off, ttl, proto,
                          0, saddr, daddr)
        if ihl > 20:
            iph += pkt[20:ihl]
        ipc = csum_fold(csum_partial(iph))
        out.append(iph[:10] + _H.pack(ipc) + iph[12:] + th)
        i += 1
    return out
