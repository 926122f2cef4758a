"""Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum (RFC 9293 3.1, RFC 768).

The ones'-complement sum of 16-bit big-endian words equals the data read as one big integer
modulo 0xffff (since 2**16 == 1 mod 0xffff), which CPython computes in C: no per-word loop.
"""

from __future__ import annotations

_from_bytes = int.from_bytes


def csum_partial(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Ones'-complement sum of ``data`` (padded to even length) plus ``initial``, folded to 16 bits.

    Like Linux's ``csum_partial``; the result is in 0..0xffff with 0 only for all-zero input.
    """
    v = _from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8                                    # the pad byte
    v += initial
    if v == 0:
        return 0
    r = v % 0xFFFF
    return r if r else 0xFFFF


def csum_fold(s: int) -> int:
    """Final checksum field value from a folded sum (``csum_fold``: complement, 16 bits)."""
    return (~s) & 0xFFFF


def ip_fast_csum(header: bytes | bytearray | memoryview) -> int:
    """Checksum field value for an IPv4 header (its own checksum field must be zero)."""
    return csum_fold(csum_partial(header))


def pseudo_sum(saddr: int, daddr: int, proto: int, length: int) -> int:
    """Unfolded sum of the IPv4 pseudo-header (``csum_tcpudp_nofold``)."""
    return (saddr >> 16) + (saddr & 0xFFFF) + (daddr >> 16) + (daddr & 0xFFFF) + proto + length


def tcp_v4_check(saddr: int, daddr: int, segment: bytes | bytearray | memoryview, proto: int = 6) -> int:
    """Checksum field value for a TCP (or UDP with proto=17) segment whose checksum is zeroed."""
    return csum_fold(csum_partial(segment, pseudo_sum(saddr, daddr, proto, len(segment))))


def tcp_v4_verify(saddr: int, daddr: int, segment: bytes | bytearray | memoryview, proto: int = 6) -> bool:
    """True if a received segment's checksum is right (``tcp_checksum_complete`` == 0)."""
    return csum_partial(segment, pseudo_sum(saddr, daddr, proto, len(segment))) == 0xFFFF
