"""ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): type/code constants, message building and parsing.

Wire format only. The 4 bytes after the checksum (``icmphdr.un``) are kept as one 32-bit
value: echo id/sequence, the frag-needed next-hop MTU in its low 16 bits, the parameter-problem
pointer in its top byte, or the redirect gateway.
"""

from __future__ import annotations

import struct

from .checksum import csum_fold, csum_partial

# Types (include/uapi/linux/icmp.h)
ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_REDIRECT = 5
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAMETERPROB = 12
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMPREPLY = 14
ICMP_INFO_REQUEST = 15
ICMP_INFO_REPLY = 16
ICMP_ADDRESS = 17
ICMP_ADDRESSREPLY = 18
NR_ICMP_TYPES = 18

# Codes for ICMP_DEST_UNREACH
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMP_SR_FAILED = 5
ICMP_NET_UNKNOWN = 6
ICMP_HOST_UNKNOWN = 7
ICMP_HOST_ISOLATED = 8
ICMP_NET_ANO = 9
ICMP_HOST_ANO = 10
ICMP_NET_UNR_TOS = 11
ICMP_HOST_UNR_TOS = 12
ICMP_PKT_FILTERED = 13
ICMP_PREC_VIOLATION = 14
ICMP_PREC_CUTOFF = 15
NR_ICMP_UNREACH = 15

# Codes for ICMP_REDIRECT
ICMP_REDIR_NET = 0
ICMP_REDIR_HOST = 1
ICMP_REDIR_NETTOS = 2
ICMP_REDIR_HOSTTOS = 3

# Codes for ICMP_TIME_EXCEEDED
ICMP_EXC_TTL = 0
ICMP_EXC_FRAGTIME = 1

ICMPHDR = struct.Struct("!BBHI")       # type, code, checksum, un (rest of header)
ICMPHDR_LEN = 8
_pack_hdr = ICMPHDR.pack
unpack_icmphdr = ICMPHDR.unpack_from

# Which types are errors (icmp_pointers[type].error in icmp.c)
ICMP_ERROR_TYPES = frozenset({ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_REDIRECT,
                              ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB})


def icmp_is_error(icmp_type: int) -> bool:
    """True for error messages (unreachable, quench, redirect, time exceeded, parameter problem)."""
    return icmp_type in ICMP_ERROR_TYPES


class IcmpHdr:
    """A parsed ICMP header (``struct icmphdr``); ``un`` is the 32-bit rest-of-header word."""

    __slots__ = ("type", "code", "checksum", "un")

    def __init__(self, icmp_type: int, code: int, checksum: int, un: int) -> None:
        self.type = icmp_type
        self.code = code
        self.checksum = checksum
        self.un = un

    @property
    def echo_id(self) -> int:
        return self.un >> 16

    @property
    def echo_seq(self) -> int:
        return self.un & 0xFFFF

    @property
    def frag_mtu(self) -> int:
        return self.un & 0xFFFF

    @property
    def gateway(self) -> int:
        return self.un

    def __repr__(self) -> str:
        return f"IcmpHdr(type {self.type}, code {self.code}, un {self.un:#010x})"


def icmp_build(icmp_type: int, code: int, un: int = 0,
               payload: bytes | bytearray | memoryview = b"") -> bytes:
    """An ICMP message: 8-byte header with its checksum over header and ``payload``."""
    body = bytes(payload)
    hdr = _pack_hdr(icmp_type, code, 0, un & 0xFFFFFFFF)
    check = csum_fold(csum_partial(hdr + body))
    return hdr[:2] + check.to_bytes(2, "big") + hdr[4:] + body


def icmp_echo_build(ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """An echo request (``ping``), or an echo reply with ``reply=True``."""
    return icmp_build(ICMP_ECHOREPLY if reply else ICMP_ECHO, 0,
                      (ident & 0xFFFF) << 16 | (seq & 0xFFFF), payload)


def icmp_parse(data: bytes | bytearray | memoryview, off: int = 0) -> IcmpHdr | None:
    """The ICMP header at ``data[off:]``, or None if fewer than 8 bytes remain."""
    if len(data) - off < ICMPHDR_LEN:
        return None
    return IcmpHdr(*unpack_icmphdr(data, off))


def icmp_csum_ok(message: bytes | bytearray | memoryview) -> bool:
    """True if an ICMP message's checksum is right (``skb_checksum_simple_validate`` == 0)."""
    return csum_partial(message) == 0xFFFF


__all__ = [n for n in dir() if n.isupper() and not n.startswith("_")] + [
    "IcmpHdr", "icmp_build", "icmp_echo_build", "icmp_parse", "icmp_csum_ok", "icmp_is_error",
    "unpack_icmphdr"]
