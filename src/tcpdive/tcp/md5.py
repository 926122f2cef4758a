"""TCP MD5 signature option (RFC 2385) as Linux 6.x keeps, writes and checks it.

Keys live on the socket (``tp->md5sig_info``), one per peer address or prefix, set with
setsockopt(TCP_MD5SIG / TCP_MD5SIG_EXT) and ``struct tcp_md5sig``. Once a socket has a key for
its peer every segment it sends carries ``nop,nop,md5`` (kind 19, length 18) first in its
options, and every segment it receives from that peer must carry a correct one.

The digest (RFC 2385 section 2.0, ``tcp_v4_md5_hash_skb``) is MD5 over

    1. the pseudo-header: source and destination address, zero, protocol 6, TCP length;
    2. the 20-byte TCP header without options, checksum taken as zero;
    3. the segment's data;
    4. the key.

What Linux does around it, and tcpdive with it:

- a SYN with a key offers no timestamps (``tcp_syn_options``); a SYN-ACK with a key keeps
  timestamps only when the SYN did not ask for SACK too (``tcp_synack_options``), since
  MD5 (20) + TS (12) leave no room for a SACK block;
- ``tcp_header_len`` counts the 20 option bytes where Linux counts them (``tcp_connect_init``,
  ``tcp_create_openreq_child``) and ``tcp_current_mss`` takes them off the MSS elsewhere;
- a socket with keys sends no TSO/GSO bursts (``sk_gso_disable``);
- ``tcp_v4_rcv`` checks every segment for a listener (request socks included) or a full
  socket with ``tcp_inbound_hash``: no option but a key for the peer -> TcpExtTCPMD5NotFound,
  an option but no key -> TcpExtTCPMD5Unexpected, a wrong digest -> TcpExtTCPMD5Failure;
  TIME_WAIT sockets are not checked (they sign their ACKs with the key they kept);
- RSTs and the ACKs of request and TIME_WAIT socks are signed (``tcp_v4_send_reset``,
  ``tcp_v4_send_ack``: there the timestamps come first, then ``nop,nop,md5``).

Not done: TCP-AO (RFC 5925), L3 master devices (VRF): a key with TCP_MD5SIG_FLAG_IFINDEX and
a non-zero ifindex is refused with EINVAL, as Linux refuses it for a device that is not an
L3 master.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from .. import errors as E
from ..errors import oserror
from ..packet.tcp import TCPHDR_LEN

if TYPE_CHECKING:
    from ..skb import SKB
    from .sock import TcpSock

# include/uapi/linux/tcp.h
TCP_MD5SIG = 14
TCP_MD5SIG_EXT = 32
TCP_MD5SIG_MAXKEYLEN = 80
TCP_MD5SIG_FLAG_PREFIX = 0x1
TCP_MD5SIG_FLAG_IFINDEX = 0x2
# include/net/tcp.h
TCPOPT_MD5SIG = 19
TCPOLEN_MD5SIG = 18
TCPOLEN_MD5SIG_ALIGNED = 20
TCP_MD5_DIGEST_LEN = 16
AF_INET = 2

# struct tcp_md5sig on x86-64: sockaddr_storage (128), flags, prefixlen, keylen (u16),
# ifindex (int), key[80] -- 216 bytes, host byte order for the integers
TCP_MD5SIG_STRUCT = struct.Struct("=128sBBHi80s")
_SOCKADDR_IN = struct.Struct("=H")           # sin_family, host order
_BE32 = struct.Struct("!I")
_BE16 = struct.Struct("!H")
_DIGEST_WORDS = struct.Struct("!8H")
_PSEUDO = struct.Struct("!IIBBH")             # tcp4_pseudohdr: saddr, daddr, pad, protocol, len
# nop, nop, kind 19, length 18, and a zero digest for tcp_md5_fill to replace
MD5_OPTION = b"\x01\x01\x13\x12" + bytes(16)
_md5 = hashlib.md5


class TcpMd5sigKey:
    """One key (``struct tcp_md5sig_key``): peer address/prefix, flags, the key bytes."""

    __slots__ = ("addr", "prefixlen", "mask", "l3index", "flags", "key")

    def __init__(self, addr: int, prefixlen: int, l3index: int, flags: int, key: bytes) -> None:
        self.addr = addr
        self.prefixlen = prefixlen
        self.mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF if prefixlen else 0
        self.l3index = l3index
        self.flags = flags
        self.key = key

    def __repr__(self) -> str:
        from ..packet.ipv4 import int2ip

        return f"<TcpMd5sigKey {int2ip(self.addr)}/{self.prefixlen} keylen {len(self.key)}>"


class TcpMd5sigInfo:
    """A socket's keys (``struct tcp_md5sig_info``), newest first like ``hlist_add_head_rcu``."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[TcpMd5sigKey] = []


# ---- the key list ------------------------------------------------------------------------------

def tcp_md5_do_lookup(sk, addr: int, l3index: int = 0) -> TcpMd5sigKey | None:
    """The key for a peer address (``__tcp_md5_do_lookup``): the longest matching prefix; keys
    bound to an L3 index only match that index (``better_md5_match``). None without keys."""
    info = sk.md5sig_info
    if info is None:
        return None
    best = None
    for key in info.keys:
        if key.flags & TCP_MD5SIG_FLAG_IFINDEX and key.l3index != l3index:
            continue
        if (key.addr ^ addr) & key.mask:
            continue
        if best is None:
            best = key
        elif best.l3index and not key.l3index:
            continue
        elif (not best.l3index and key.l3index) or best.prefixlen < key.prefixlen:
            best = key
    return best


def tcp_v4_md5_lookup(sk) -> TcpMd5sigKey | None:
    """The key ``sk`` signs its segments with: the one for its peer (``tcp_v4_md5_lookup``)."""
    return tcp_md5_do_lookup(sk, sk.daddr)


def tcp_md5_do_lookup_exact(sk, addr: int, prefixlen: int, l3index: int,
                            flags: int) -> TcpMd5sigKey | None:
    """The key set for exactly this address, prefix, index and IFINDEX flag."""
    info = sk.md5sig_info
    if info is None:
        return None
    for key in info.keys:
        if (key.flags & TCP_MD5SIG_FLAG_IFINDEX) != (flags & TCP_MD5SIG_FLAG_IFINDEX):
            continue
        if key.l3index != l3index:
            continue
        if key.addr == addr and key.prefixlen == prefixlen:
            return key
    return None


def tcp_md5_do_add(sk, addr: int, prefixlen: int, l3index: int, flags: int,
                   newkey: bytes) -> None:
    """Add a key or replace the bytes of the same one (``tcp_md5_do_add``); the first key of a
    socket turns off its TSO/GSO (``sk_gso_disable``: tcp_write_xmit tests md5sig_info)."""
    key = tcp_md5_do_lookup_exact(sk, addr, prefixlen, l3index, flags)
    if key is not None:
        key.key = bytes(newkey)
        return
    info = sk.md5sig_info
    if info is None:
        info = sk.md5sig_info = TcpMd5sigInfo()
    info.keys.insert(0, TcpMd5sigKey(addr, prefixlen, l3index, flags, bytes(newkey)))


def tcp_md5_do_del(sk, addr: int, prefixlen: int, l3index: int, flags: int) -> None:
    """Remove one key (``tcp_md5_do_del``): ENOENT when there is no such key. The (maybe empty)
    key list stays, as Linux keeps ``md5sig_info`` until the socket is destroyed."""
    key = tcp_md5_do_lookup_exact(sk, addr, prefixlen, l3index, flags)
    if key is None:
        raise oserror(E.ENOENT, "no such TCP MD5 key")
    sk.md5sig_info.keys.remove(key)


def pack_tcp_md5sig(addr: str | int, key: bytes = b"", *, prefixlen: int = 0, flags: int = 0,
                    ifindex: int = 0, keylen: int | None = None, family: int = AF_INET) -> bytes:
    """A ``struct tcp_md5sig`` as a program would pass it to setsockopt (216 bytes)."""
    if isinstance(addr, str):
        from ..packet.ipv4 import ip2int

        addr = ip2int(addr)
    sa = _SOCKADDR_IN.pack(family) + b"\0\0" + _BE32.pack(addr)
    return TCP_MD5SIG_STRUCT.pack(sa, flags, prefixlen, len(key) if keylen is None else keylen,
                                  ifindex, bytes(key))


def tcp_v4_parse_md5_keys(sk, optname: int, optval) -> None:
    """setsockopt(TCP_MD5SIG / TCP_MD5SIG_EXT) (``tcp_v4_parse_md5_keys``), with Linux's errno:
    EINVAL for a short option, a family other than AF_INET, a prefix over 32, an ifindex that
    is not an L3 master device, a key over 80 bytes; ENOENT deleting (keylen 0) a missing key."""
    if not isinstance(optval, (bytes, bytearray, memoryview)):
        raise oserror(E.EINVAL, "optlen < sizeof(struct tcp_md5sig)")
    optval = bytes(optval)
    if len(optval) < TCP_MD5SIG_STRUCT.size:
        raise oserror(E.EINVAL, "optlen < sizeof(struct tcp_md5sig)")
    sa, cmd_flags, cmd_prefixlen, keylen, ifindex, keybytes = TCP_MD5SIG_STRUCT.unpack_from(optval)
    if _SOCKADDR_IN.unpack_from(sa)[0] != AF_INET:
        raise oserror(E.EINVAL, "tcpm_addr is not AF_INET")
    flags = cmd_flags & TCP_MD5SIG_FLAG_IFINDEX
    prefixlen = 32
    if optname == TCP_MD5SIG_EXT and cmd_flags & TCP_MD5SIG_FLAG_PREFIX:
        prefixlen = cmd_prefixlen
        if prefixlen > 32:
            raise oserror(E.EINVAL, "tcpm_prefixlen > 32")
    l3index = 0
    if optname == TCP_MD5SIG_EXT and ifindex and cmd_flags & TCP_MD5SIG_FLAG_IFINDEX:
        # dev_get_by_index + netif_is_l3_master: tcpdive has no VRF devices
        raise oserror(E.EINVAL, "tcpm_ifindex is not an L3 master device")
    addr = _BE32.unpack_from(sa, 4)[0]
    if not keylen:
        tcp_md5_do_del(sk, addr, prefixlen, l3index, flags)
        return
    if keylen > TCP_MD5SIG_MAXKEYLEN:
        raise oserror(E.EINVAL, "tcpm_keylen > TCP_MD5SIG_MAXKEYLEN")
    tcp_md5_do_add(sk, addr, prefixlen, l3index, flags, keybytes[:keylen])


# ---- the digest --------------------------------------------------------------------------------

def tcp_v4_md5_hash(key: bytes, saddr: int, daddr: int, th: bytes, payload: bytes = b"") -> bytes:
    """RFC 2385 digest of a segment: ``th`` is its 20-byte base header (the checksum field is
    taken as zero), ``payload`` its data; the TCP length is the header length from ``th``'s
    data offset plus the data (``tcp_v4_md5_hash_skb`` / ``tcp_v4_md5_hash_hdr``)."""
    tcplen = (th[12] >> 4) * 4 + len(payload)
    if th[16] or th[17]:
        th = th[:16] + b"\0\0" + th[18:20]
    h = _md5(_PSEUDO.pack(saddr, daddr, 0, 6, tcplen))
    h.update(th[:TCPHDR_LEN])
    if payload:
        h.update(payload)
    h.update(key)
    return h.digest()


def tcp_md5_fill(seg: bytes, key: bytes, saddr: int, daddr: int, at: int,
                 csum: bool = True) -> bytes:
    """Sign a built segment: ``seg`` carries ``MD5_OPTION`` (zero digest) with the digest's
    first byte at offset ``at``; the digest goes in and, with ``csum``, the checksum is
    updated for it (RFC 1624: the ones' complement sum grows by the digest's words). Signing
    the segment as built keeps every header field other code set (flags, window, urgent
    pointer) in the digest (``tcp_options_write`` leaves the hole, ``calc_md5_hash`` fills it)."""
    hdr_len = (seg[12] >> 4) * 4
    digest = tcp_v4_md5_hash(key, saddr, daddr, seg, seg[hdr_len:])
    head = seg[:16]
    if csum:
        s = (~_BE16.unpack_from(seg, 16)[0] & 0xFFFF) + sum(_DIGEST_WORDS.unpack(digest))
        while s > 0xFFFF:
            s = (s & 0xFFFF) + (s >> 16)
        head += _BE16.pack(0xFFFF - s)
    else:
        head += seg[16:18]
    return head + seg[18:at] + digest + seg[at + TCP_MD5_DIGEST_LEN:]


def tcp_parse_auth_options(data: bytes, start: int, end: int) -> int:
    """Where the MD5 digest of a segment's options is (``tcp_parse_auth_options``): its offset,
    0 when there is none, -1 for a bad one (length not 18, or two of them), which Linux drops.

    Walks as Linux does with TCP-AO built in: it stops once fewer than 5 bytes are left.
    """
    i = start
    found = 0
    while end - i >= 5:
        kind = data[i]
        if kind == 0:
            return found
        if kind == 1:
            i += 1
            continue
        size = data[i + 1]
        if size < 2 or size > end - i:
            return -1
        if kind == TCPOPT_MD5SIG:
            if size != TCPOLEN_MD5SIG or found:
                return -1
            found = i + 2
        i += size
    return found


def tcp_inbound_hash(sk, skb: SKB, seg: bytes | None) -> bool:
    """Check a received segment's signature against ``sk``'s keys (``tcp_inbound_hash`` +
    ``tcp_inbound_md5_hash``); True when it is dropped. ``seg`` is the raw TCP segment, given
    when it carries an MD5 option (None when it has none)."""
    net = sk.net
    loc = 0
    if seg is not None:
        loc = tcp_parse_auth_options(seg, TCPHDR_LEN, (seg[12] >> 4) * 4)
        if loc < 0:
            net.drop(skb, "TCP_AUTH_HDR")        # Linux counts this in no MIB
            return True
    key = tcp_md5_do_lookup(sk, skb.saddr)
    if not loc:
        if key is not None:
            net.mib["TcpExtTCPMD5NotFound"] += 1
            net.drop(skb, "TCP_MD5NOTFOUND")
            return True
        return False
    if key is None:
        net.mib["TcpExtTCPMD5Unexpected"] += 1
        net.drop(skb, "TCP_MD5UNEXPECTED")
        return True
    hdr_len = (seg[12] >> 4) * 4
    if tcp_v4_md5_hash(key.key, skb.saddr, skb.daddr, seg, seg[hdr_len:]) != \
            bytes(seg[loc:loc + TCP_MD5_DIGEST_LEN]):
        net.mib["TcpExtTCPMD5Failure"] += 1
        net.drop(skb, "TCP_MD5FAILURE")
        return True
    return False


# ---- hooks of the connection's life ------------------------------------------------------------

def tcp_md5_connect_init(sk: TcpSock) -> bool:
    """``tcp_connect_init``: a key for the peer adds its 20 bytes to ``tcp_header_len``; True
    if there is one (the SYN then offers no timestamps, ``tcp_syn_options``)."""
    if tcp_v4_md5_lookup(sk) is None:
        return False
    sk.tcp_header_len += TCPOLEN_MD5SIG_ALIGNED
    return True


def tcp_md5_openreq_child(listener: TcpSock, child: TcpSock) -> None:
    """The listener's key for the peer becomes the child's, for exactly that address
    (``tcp_v4_syn_recv_sock``), and counts in its header length (``tcp_create_openreq_child``)."""
    key = tcp_md5_do_lookup(listener, child.daddr)
    if key is None:
        return
    child.tcp_header_len += TCPOLEN_MD5SIG_ALIGNED
    tcp_md5_do_add(child, child.daddr, 32, key.l3index, key.flags, key.key)


def tcp_md5_established_len(sk: TcpSock) -> int:
    """Option bytes the signature takes on this socket's segments: 20 with a key, else 0."""
    return TCPOLEN_MD5SIG_ALIGNED if tcp_v4_md5_lookup(sk) is not None else 0


def tcp_v4_send_reset_key(net, skb: SKB, sk) -> TcpMd5sigKey | None | bool:
    """The key a RST answering ``skb`` is signed with (``tcp_v4_send_reset``), or False when
    no RST may be sent: a full socket answers with its key for the peer; otherwise a segment
    that carries a signature is answered only if a listener on its source port ("the active
    side is lost") has a key for the peer and the signature checks out with it."""
    from .sock import TcpSock

    o = skb.opts
    seg = getattr(skb, "raw", None) if o is not None and o.md5 else None
    loc = 0
    if seg is not None:
        loc = tcp_parse_auth_options(seg, TCPHDR_LEN, (seg[12] >> 4) * 4)
        if loc < 0:
            return False
    if type(sk) is TcpSock:
        return tcp_md5_do_lookup(sk, skb.saddr)
    if not loc:
        return None
    sk1 = net.tcp_hashinfo.lookup_listener(skb.daddr, skb.sport, skb.saddr, skb.sport)
    if sk1 is None:
        return False
    key = tcp_md5_do_lookup(sk1, skb.saddr)
    if key is None:
        return False
    hdr_len = (seg[12] >> 4) * 4
    if tcp_v4_md5_hash(key.key, skb.saddr, skb.daddr, seg, seg[hdr_len:]) != \
            bytes(seg[loc:loc + TCP_MD5_DIGEST_LEN]):
        return False
    return key


__all__ = ["TCP_MD5SIG", "TCP_MD5SIG_EXT", "TCP_MD5SIG_MAXKEYLEN", "TCP_MD5SIG_FLAG_PREFIX",
           "TCP_MD5SIG_FLAG_IFINDEX", "TCPOLEN_MD5SIG", "TCPOLEN_MD5SIG_ALIGNED",
           "TcpMd5sigKey", "TcpMd5sigInfo", "tcp_md5_do_lookup", "tcp_v4_md5_lookup",
           "tcp_md5_do_add", "tcp_md5_do_del", "tcp_v4_parse_md5_keys", "pack_tcp_md5sig",
           "tcp_v4_md5_hash", "tcp_md5_fill", "MD5_OPTION", "tcp_parse_auth_options", "tcp_inbound_hash",
           "tcp_md5_connect_init", "tcp_md5_openreq_child", "tcp_md5_established_len",
           "tcp_v4_send_reset_key"]
