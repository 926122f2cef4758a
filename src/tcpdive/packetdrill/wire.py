"""Packets between a packetdrill script and the stack: build inbound ones, read outbound ones.

``build_tcp`` turns a scripted inbound ``TcpPacket`` (already mapped to live sequence
numbers) into IPv4 bytes; ``LivePacket`` parses what the stack transmitted; ``fmt_*``
print both the way packetdrill's ``packet_to_string`` does (``S. 0:0(0) ack 1 win 65535
<mss 1460,nop,wscale 8>``).
"""

from __future__ import annotations

import struct

from ..packet.checksum import csum_fold, csum_partial, pseudo_sum
from ..packet.ipv4 import int2ip, ip_build
from .ast import (
    EolOption,
    FastOpenOption,
    Md5Option,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TcpPacket,
    TimestampOption,
    WScaleOption,
)

__all__ = ["LivePacket", "LiveOption", "build_tcp", "encode_options", "fmt_script_packet",
           "tcp_flag_bits", "ECN_BITS"]

_TCPHDR = struct.Struct("!HHIIBBHHH")
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40,
              "W": 0x80}
ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}


def tcp_flag_bits(pkt: TcpPacket) -> tuple[int, int]:
    """(flag byte, AE bit) of a scripted packet; ACE digits set AE/CWR/ECE."""
    bits = 0
    for ch in pkt.flags:
        b = _FLAG_BITS.get(ch)
        if b is not None:
            bits |= b
    ace = pkt.ace
    if ace is not None:
        bits = (bits & ~0xC0) | (0x40 if ace & 1 else 0) | (0x80 if ace & 2 else 0)
        return bits, 1 if ace & 4 else 0
    return bits, 1 if "A" in pkt.flags else 0


def encode_options(options: tuple[TcpOption, ...], sack_offset: int = 0,
                   ecr: int | None = None) -> bytes:
    """The wire bytes of scripted options; SACK blocks shifted by ``sack_offset`` and the
    TS ecr replaced by ``ecr`` when given (packetdrill's map_inbound_packet)."""
    out = bytearray()
    for o in options:
        if isinstance(o, NopOption):
            out.append(1)
        elif isinstance(o, EolOption):
            out.append(0)
        elif isinstance(o, MssOption):
            out += struct.pack("!BBH", 2, 4, o.mss)
        elif isinstance(o, WScaleOption):
            out += bytes((3, 3, o.shift or 0))
        elif isinstance(o, SackPermittedOption):
            out += b"\x04\x02"
        elif isinstance(o, SackOption):
            out += bytes((5, 2 + 8 * len(o.blocks)))
            for a, b in o.blocks:
                out += struct.pack("!II", (a + sack_offset) & 0xFFFFFFFF,
                                   (b + sack_offset) & 0xFFFFFFFF)
        elif isinstance(o, TimestampOption):
            e = o.ecr if ecr is None else ecr
            out += struct.pack("!BBII", 8, 10, o.val & 0xFFFFFFFF, e & 0xFFFFFFFF)
        elif isinstance(o, Md5Option):
            out += bytes((19, o.length)) + o.digest_bytes
        elif isinstance(o, FastOpenOption):
            if o.exp:
                out += bytes((254, o.length)) + struct.pack("!H", o.EXP_MAGIC) + o.cookie_bytes
            else:
                out += bytes((34, o.length)) + o.cookie_bytes
    return bytes(out)


def build_tcp(saddr: int, daddr: int, sport: int, dport: int, seq: int, ack: int, flags: int,
              ae: int, window: int, urg: int, options: bytes, payload_len: int, tos: int,
              ttl: int, ip_id: int) -> bytes:
    """One IPv4 datagram carrying the segment, checksums filled in."""
    doff = (20 + len(options)) >> 2
    hdr = _TCPHDR.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (doff << 4) | ae,
                       flags, window & 0xFFFF, 0, urg & 0xFFFF)
    seg = hdr + options + bytes(payload_len)
    check = csum_fold(csum_partial(seg, pseudo_sum(saddr, daddr, 6, len(seg))))
    seg = seg[:16] + check.to_bytes(2, "big") + seg[18:]
    return ip_build(saddr, daddr, 6, seg, ttl, tos, ip_id, True)


class LiveOption:
    """One TCP option as sent: kind, total length and the bytes after kind/length."""

    __slots__ = ("kind", "length", "data")

    def __init__(self, kind: int, length: int, data: bytes) -> None:
        self.kind = kind
        self.length = length
        self.data = data


class LivePacket:
    """An outbound IPv4/TCP datagram as captured, fields in host order."""

    __slots__ = ("time_us", "raw", "tos", "ttl", "tot_len", "ihl", "protocol", "saddr", "daddr",
                 "sport", "dport", "seq", "ack_seq", "doff", "res", "ae", "flags", "window",
                 "urg_ptr", "options", "opt_bytes", "payload_len", "payload")

    def __init__(self, time_us: int, raw: bytes) -> None:
        self.time_us = time_us
        self.raw = raw
        ihl = (raw[0] & 0x0F) * 4
        self.ihl = ihl // 4
        self.tos = raw[1]
        self.tot_len = int.from_bytes(raw[2:4], "big")
        self.ttl = raw[8]
        self.protocol = raw[9]
        self.saddr = int.from_bytes(raw[12:16], "big")
        self.daddr = int.from_bytes(raw[16:20], "big")
        self.options: list[LiveOption] = []
        self.opt_bytes = b""
        self.payload = b""
        self.sport = self.dport = self.seq = self.ack_seq = self.doff = self.res = 0
        self.ae = self.flags = self.window = self.urg_ptr = self.payload_len = 0
        if self.protocol != 6 or len(raw) < ihl + 20:
            return
        (self.sport, self.dport, self.seq, self.ack_seq, off, self.flags, self.window, _c,
         self.urg_ptr) = _TCPHDR.unpack_from(raw, ihl)
        self.doff = off >> 4
        self.res = (off >> 1) & 0x7
        self.ae = off & 1
        start = ihl + 20
        end = ihl + self.doff * 4
        self.opt_bytes = raw[start:end]
        self.payload = raw[end:self.tot_len]
        self.payload_len = len(self.payload)
        i = start
        while i < end:
            kind = raw[i]
            if kind in (0, 1):
                self.options.append(LiveOption(kind, 1, b""))
                i += 1
                if kind == 0:
                    break
                continue
            if i + 1 >= end or raw[i + 1] < 2:
                break
            size = raw[i + 1]
            self.options.append(LiveOption(kind, size, raw[i + 2:i + size]))
            i += size

    @property
    def is_tcp(self) -> bool:
        return self.protocol == 6

    def ts(self) -> tuple[int, int] | None:
        """(TS val, TS ecr) if the timestamp option is present."""
        for o in self.options:
            if o.kind == 8 and len(o.data) == 8:
                return struct.unpack("!II", o.data)
        return None

    def flags_str(self) -> str:
        return _flags_str(self.flags)

    def describe(self, seq: int, ack: int, ts_val: int | None = None,
                 sack_offset: int = 0, payload_len: int | None = None) -> str:
        """packetdrill's dump of this packet with seq/ack already in script space
        (``payload_len`` for an aggregate of several segments)."""
        n = self.payload_len if payload_len is None else payload_len
        s = f"{_flags_str(self.flags)} {seq & 0xFFFFFFFF}:{(seq + n) & 0xFFFFFFFF}({n})"
        if self.flags & 0x10:
            s += f" ack {ack & 0xFFFFFFFF}"
        s += f" win {self.window}"
        if self.options:
            s += " <" + ",".join(_live_opt_str(o, ts_val, sack_offset) for o in self.options) + ">"
        return s

    def addr_str(self) -> str:
        return f"{int2ip(self.saddr)}:{self.sport} > {int2ip(self.daddr)}:{self.dport}"


def _flags_str(flags: int) -> str:
    s = ""
    for ch, bit in (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", 0x08), ("U", 0x20),
                    ("E", 0x40), ("W", 0x80), (".", 0x10)):
        if flags & bit:
            s += ch
    return s or "-"


def _live_opt_str(o: LiveOption, ts_val: int | None, sack_offset: int) -> str:
    k = o.kind
    if k == 0:
        return "eol"
    if k == 1:
        return "nop"
    if k == 2 and len(o.data) == 2:
        return f"mss {int.from_bytes(o.data, 'big')}"
    if k == 3 and len(o.data) == 1:
        return f"wscale {o.data[0]}"
    if k == 4:
        return "sackOK"
    if k == 5:
        blocks = []
        for j in range(0, len(o.data) - 7, 8):
            a, b = struct.unpack_from("!II", o.data, j)
            blocks.append(f"{(a + sack_offset) & 0xFFFFFFFF}:{(b + sack_offset) & 0xFFFFFFFF}")
        return "sack " + " ".join(blocks)
    if k == 8 and len(o.data) == 8:
        val, ecr = struct.unpack("!II", o.data)
        return f"TS val {val if ts_val is None else ts_val} ecr {ecr}"
    if k == 34:
        return "FO " + o.data.hex() if o.data else "FO"
    if k == 19 and len(o.data) == 16:
        return "md5 " + o.data.hex()
    return f"opt{k}({o.length})"


def _script_opt_str(o: TcpOption) -> str:
    if isinstance(o, NopOption):
        return "nop"
    if isinstance(o, EolOption):
        return "eol"
    if isinstance(o, MssOption):
        return f"mss {o.mss}"
    if isinstance(o, WScaleOption):
        return f"wscale {'*' if o.shift is None else o.shift}"
    if isinstance(o, SackPermittedOption):
        return "sackOK"
    if isinstance(o, SackOption):
        return "sack " + " ".join(f"{a}:{b}" for a, b in o.blocks)
    if isinstance(o, TimestampOption):
        return f"TS val {o.val} ecr {o.ecr}"
    if isinstance(o, Md5Option):
        return f"md5 {o.digest}"
    if isinstance(o, FastOpenOption):
        return ("FOEXP" if o.exp else "FO") + (f" {o.cookie}" if o.cookie else "")
    return "?"


def fmt_script_packet(p: TcpPacket) -> str:
    """A scripted TCP packet, as packetdrill prints the script side of a mismatch."""
    s = f"{p.flags or '-'} {p.seq}:{p.end_seq}({p.payload_len})"
    if p.ack_seq is not None:
        s += f" ack {p.ack_seq}"
    if p.window is not None:
        s += f" win {p.window}"
    if p.options is None:
        s += " <...>"
    elif p.options:
        s += " <" + ",".join(_script_opt_str(o) for o in p.options) + ">"
    return s
