"""TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018) as Linux writes and parses them.

Options are written in the order and alignment of ``tcp_options_write`` (tcp_output.c), so a SYN
from tcpdive reads ``mss 1460,sackOK,TS val .. ecr 0,nop,wscale 7`` like one from Linux.
"""

from __future__ import annotations

import struct

TCPHDR = struct.Struct("!HHIIBBHHH")   # source, dest, seq, ack_seq, doff<<4, flags, window, check, urg_ptr
TCPHDR_LEN = 20
_pack_hdr = TCPHDR.pack
_unpack_hdr = TCPHDR.unpack_from

# TCP header flags (TCPHDR_* in include/net/tcp.h)
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

# Option kinds (TCPOPT_*)
TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8
TCPOPT_MD5SIG = 19
TCPOPT_FASTOPEN = 34
TCPOPT_EXP = 254
TCPOPT_FASTOPEN_MAGIC = 0xF989

TCPOLEN_TSTAMP_ALIGNED = 12
TCP_MAX_WSCALE = 14
MAX_TCP_OPTION_SPACE = 40

_TS_ALIGNED = struct.Struct("!BBBBII")     # nop, nop, kind 8, len 10, tsval, tsecr
_MSS = struct.Struct("!BBH")
_SACK_TS = struct.Struct("!BBBBII")        # sackOK(4,2) then TS(8,10): Linux's SYN layout
_II = struct.Struct("!II")
_TS_PREFIX_NOPNOP = b"\x01\x01\x08\x0a"
TCPOPT_TS_NOPNOP = 0x0101080A               # nop, nop, TS, 10 as one word (TCPOPT_TSTAMP_HDR)
TS_ALIGNED = struct.Struct("!III")          # that word, TSval, TSecr
_pack_ts = TS_ALIGNED.pack
_unpack_ts = TS_ALIGNED.unpack_from
_from_bytes = int.from_bytes
_TS_PREFIX_SACKOK = b"\x04\x02\x08\x0a"


def flags_str(flags: int) -> str:
    """tcpdump's flag letters: S, F, R, P, ., E, W, U (e.g. 'S.' for SYN-ACK)."""
    s = ""
    if flags & SYN:
        s += "S"
    if flags & FIN:
        s += "F"
    if flags & RST:
        s += "R"
    if flags & PSH:
        s += "P"
    if flags & URG:
        s += "U"
    if flags & ECE:
        s += "E"
    if flags & CWR:
        s += "W"
    if flags & ACK:
        s += "."
    return s or "none"


def syn_options(mss: int, sack: bool, ts: tuple[int, int] | None, wscale: int | None) -> bytes:
    """Options of a SYN / SYN-ACK in Linux's layout: MSS, [sackOK,] [TS,] [nop, wscale]."""
    out = _MSS.pack(TCPOPT_MSS, 4, mss)
    if ts is not None:
        prefix = _TS_PREFIX_SACKOK if sack else _TS_PREFIX_NOPNOP
        out += prefix + _II.pack(ts[0] & 0xFFFFFFFF, ts[1] & 0xFFFFFFFF)
    elif sack:
        out += b"\x01\x01\x04\x02"
    if wscale is not None:
        out += bytes((TCPOPT_NOP, TCPOPT_WINDOW, 3, wscale))
    return out


def ts_option(tsval: int, tsecr: int) -> bytes:
    """The 12-byte aligned timestamp option Linux puts on every non-SYN segment."""
    return _pack_ts(TCPOPT_TS_NOPNOP, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def sack_option(blocks: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> bytes:
    """nop, nop, SACK with up to 4 blocks (3 alongside timestamps), as ``tcp_options_write``."""
    n = len(blocks)
    out = bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, 2 + 8 * n))
    for start, end in blocks:
        out += _II.pack(start & 0xFFFFFFFF, end & 0xFFFFFFFF)
    return out


def tcp_build(saddr: int, daddr: int, sport: int, dport: int, seq: int, ack_seq: int, flags: int,
              window: int, options: bytes = b"", payload: bytes = b"", urg_ptr: int = 0,
              csum: bool = True) -> bytes:
    """A TCP segment with a correct checksum over the IPv4 pseudo-header (``tcp_transmit_skb``).

    ``csum=False`` leaves the checksum field zero for the device (CHECKSUM_PARTIAL). The
    header's share of the sum comes from its field values, so the header is packed once.
    """
    olen = len(options)
    if olen & 3:
        options += b"\x00" * (4 - (olen & 3))      # EOL padding
        olen = len(options)
    doff = (TCPHDR_LEN + olen) >> 2
    seq &= 0xFFFFFFFF
    ack_seq &= 0xFFFFFFFF
    rest = options + payload if payload else options
    if not csum:
        return _pack_hdr(sport, dport, seq, ack_seq, doff << 4, flags, window, 0, urg_ptr) + rest
    n = len(rest)
    v = _from_bytes(rest, "big")
    if n & 1:
        v <<= 8                                     # padded to even length
    v += (sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack_seq >> 16) + (ack_seq & 0xFFFF)
          + (doff << 12) + flags + window + urg_ptr
          + (saddr >> 16) + (saddr & 0xFFFF) + (daddr >> 16) + (daddr & 0xFFFF) + 6 + TCPHDR_LEN + n)
    check = 0xFFFF - (v % 0xFFFF or 0xFFFF)
    return _pack_hdr(sport, dport, seq, ack_seq, doff << 4, flags, window, check, urg_ptr) + rest


class TcpOpts:
    """Options as read off one segment, before any sysctl or state says which ones count."""

    __slots__ = ("mss", "wscale", "sack_ok", "saw_tstamp", "tsval", "tsecr", "sack", "truncated",
                 "fastopen", "md5")

    def __init__(self) -> None:
        self.mss = 0
        self.wscale = -1
        self.sack_ok = False
        self.saw_tstamp = False
        self.tsval = 0
        self.tsecr = 0
        self.sack: tuple[tuple[int, int], ...] = ()
        self.truncated = False
        self.fastopen = None        # a SYN's FO option: (cookie len, cookie, exp), len 0 a request
        self.md5 = False


_unpack_ii = _II.unpack_from
_unpack_h = struct.Struct("!H").unpack_from


def tcp_parse_options(data: bytes, start: int, end: int, syn: bool) -> TcpOpts:
    """Walk the option bytes like ``tcp_parse_options``: stop at EOL or at a bad/partial length.

    MSS, window scale and sackOK are read only on SYNs and SACK blocks only on non-SYNs, as Linux
    does; ``truncated`` records an option whose length was invalid or ran past the header
    (Linux ignores the rest of the options and keeps the segment; so do we). The aligned
    timestamp alone, on almost every segment, is read in one go (``tcp_parse_aligned_timestamp``).
    """
    o = TcpOpts()
    if end - start == TCPOLEN_TSTAMP_ALIGNED:
        word, tsval, tsecr = _unpack_ts(data, start)
        if word == TCPOPT_TS_NOPNOP:
            o.saw_tstamp = True
            o.tsval = tsval
            o.tsecr = tsecr
            return o
    i = start
    sack = None
    while i < end:
        kind = data[i]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            o.truncated = True
            break
        size = data[i + 1]
        if size < 2 or i + size > end:
            o.truncated = True
            break
        if kind == TCPOPT_TIMESTAMP:
            if size == 10:
                o.saw_tstamp = True
                o.tsval, o.tsecr = _unpack_ii(data, i + 2)
        elif kind == TCPOPT_SACK:
            if size >= 10 and (size - 2) % 8 == 0 and not syn:
                blocks = []
                for j in range(i + 2, i + size, 8):
                    blocks.append(_unpack_ii(data, j))
                sack = tuple(blocks)
        elif kind == TCPOPT_MSS:
            if size == 4 and syn:
                o.mss = _unpack_h(data, i + 2)[0]
        elif kind == TCPOPT_WINDOW:
            if size == 3 and syn:
                o.wscale = data[i + 2]
        elif kind == TCPOPT_SACK_PERM:
            if size == 2 and syn:
                o.sack_ok = True
        elif kind == TCPOPT_FASTOPEN or (kind == TCPOPT_EXP and size >= 4):
            # tcp_parse_fastopen_option: SYNs only, even cookie lengths, 4..16 bytes kept
            exp = kind == TCPOPT_EXP
            if syn and (not exp or _unpack_h(data, i + 2)[0] == TCPOPT_FASTOPEN_MAGIC):
                base = 4 if exp else 2
                n = size - base
                if not n & 1:
                    if 4 <= n <= 16:
                        o.fastopen = (n, bytes(data[i + base:i + size]), exp)
                    else:
                        o.fastopen = (0 if n == 0 else -1, b"", exp)
        elif kind == TCPOPT_MD5SIG:
            o.md5 = True                  # checked (length too) by tcp/md5.py tcp_inbound_hash
        i += size
    if sack is not None:
        o.sack = sack
    return o


def options_str(data: bytes, start: int, end: int) -> str:
    """tcpdump-style option list ('mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7')."""
    parts = []
    i = start
    while i < end:
        kind = data[i]
        if kind == TCPOPT_EOL:
            parts.append("eol")
            break
        if kind == TCPOPT_NOP:
            parts.append("nop")
            i += 1
            continue
        if i + 1 >= end or data[i + 1] < 2 or i + data[i + 1] > end:
            parts.append("[bad opt]")
            break
        size = data[i + 1]
        if kind == TCPOPT_MSS and size == 4:
            parts.append(f"mss {_unpack_h(data, i + 2)[0]}")
        elif kind == TCPOPT_WINDOW and size == 3:
            parts.append(f"wscale {data[i + 2]}")
        elif kind == TCPOPT_SACK_PERM and size == 2:
            parts.append("sackOK")
        elif kind == TCPOPT_TIMESTAMP and size == 10:
            v, e = _unpack_ii(data, i + 2)
            parts.append(f"TS val {v} ecr {e}")
        elif kind == TCPOPT_SACK and (size - 2) % 8 == 0:
            blocks = [_unpack_ii(data, j) for j in range(i + 2, i + size, 8)]
            parts.append("sack {} {}".format(len(blocks), " ".join(f"{{{a}:{b}}}" for a, b in blocks)))
        elif kind == TCPOPT_MD5SIG and size == 18:
            # tcpdump built with libcrypto, run without -M secret
            parts.append("md5 shared secret not supplied with -M, can't check - "
                         + bytes(data[i + 2:i + 18]).hex())
        elif kind == TCPOPT_FASTOPEN or (kind == TCPOPT_EXP and size >= 4 and _unpack_h(
                data, i + 2)[0] == TCPOPT_FASTOPEN_MAGIC):
            cookie = bytes(data[i + (2 if kind == TCPOPT_FASTOPEN else 4):i + size])
            name = "tfo" if kind == TCPOPT_FASTOPEN else "exp-tfo"
            parts.append(f"{name} cookie {cookie.hex()}" if cookie else f"{name} cookiereq")
        else:
            parts.append(f"unknown-{kind}")
        i += size
    return ",".join(parts)
