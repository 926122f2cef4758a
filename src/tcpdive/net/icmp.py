"""icmp.c: ICMP receive (``icmp_rcv``), errors to transport protocols, and sending (``__icmp_send``).

Receive: checksum, per-type MIB, echo -> ``icmp_reply``, destination unreachable / source quench /
time exceeded / parameter problem / redirect -> ``icmp_socket_deliver`` -> ``udp_err`` or
``tcp_v4_err`` with the quoted header. Send: the RFC 1122 "never in reply to" rules, a global
token bucket (``icmp_msgs_per_sec`` / ``icmp_msgs_burst``) and a per-peer one (``icmp_ratelimit``,
``inet_peer_xrlim_allow``) for the types in ``icmp_ratemask``, and as much of the offending
datagram as fits in 576 bytes.

Known differences: no IP options are echoed, no ping sockets (echo replies are consumed), and
the route used is the FIB entry (no PMTU or redirect cache).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from ..errors import (
    ECONNREFUSED,
    EHOSTDOWN,
    EHOSTUNREACH,
    EMSGSIZE,
    ENETUNREACH,
    ENOPROTOOPT,
    EOPNOTSUPP,
)
from ..packet.checksum import csum_partial
from ..packet.icmp import (
    ICMP_ADDRESS,
    ICMP_ADDRESSREPLY,
    ICMP_DEST_UNREACH,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    ICMP_ERROR_TYPES,
    ICMP_EXC_FRAGTIME,
    ICMP_EXC_TTL,
    ICMP_FRAG_NEEDED,
    ICMP_HOST_UNREACH,
    ICMP_NET_UNREACH,
    ICMP_PARAMETERPROB,
    ICMP_PORT_UNREACH,
    ICMP_PROT_UNREACH,
    ICMP_REDIRECT,
    ICMP_SOURCE_QUENCH,
    ICMP_TIME_EXCEEDED,
    ICMP_TIMESTAMP,
    ICMP_TIMESTAMPREPLY,
    ICMPHDR_LEN,
    NR_ICMP_TYPES,
    NR_ICMP_UNREACH,
    icmp_build,
    unpack_icmphdr,
)
from ..packet.ipv4 import IP_OFFSET, IPHDR, IPHDR_LEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IpHdr

if TYPE_CHECKING:
    from .netns import Netns, Route

ENONET = 64          # "Machine is not on the network" (not in errors.py)
EPROTO = 71          # "Protocol error"

IPTOS_TOS_MASK = 0x1E
IPTOS_PREC_INTERNETCONTROL = 0xC0
INADDR_BROADCAST = 0xFFFFFFFF
XRLIM_BURST_FACTOR = 6
ICMP_MSGS_PER_SEC = 1000         # net.ipv4.icmp_msgs_per_sec default
ICMP_MSGS_BURST = 50             # net.ipv4.icmp_msgs_burst default
ICMP_ROOM = 576                  # RFC 1812 4.3.2.3: an error plus its quote fits in 576 bytes

# icmp_err_convert[code] for ICMP_DEST_UNREACH: (errno, fatal) as in icmp.c
ICMP_ERR_CONVERT: tuple[tuple[int, bool], ...] = (
    (ENETUNREACH, False),     # ICMP_NET_UNREACH
    (EHOSTUNREACH, False),    # ICMP_HOST_UNREACH
    (ENOPROTOOPT, True),      # ICMP_PROT_UNREACH
    (ECONNREFUSED, True),     # ICMP_PORT_UNREACH
    (EMSGSIZE, False),        # ICMP_FRAG_NEEDED
    (EOPNOTSUPP, False),      # ICMP_SR_FAILED
    (ENETUNREACH, True),      # ICMP_NET_UNKNOWN
    (EHOSTDOWN, True),        # ICMP_HOST_UNKNOWN
    (ENONET, True),           # ICMP_HOST_ISOLATED
    (ENETUNREACH, True),      # ICMP_NET_ANO
    (EHOSTUNREACH, True),     # ICMP_HOST_ANO
    (ENETUNREACH, False),     # ICMP_NET_UNR_TOS
    (EHOSTUNREACH, False),    # ICMP_HOST_UNR_TOS
    (EHOSTUNREACH, True),     # ICMP_PKT_FILTERED
    (EHOSTUNREACH, True),     # ICMP_PREC_VIOLATION
    (EHOSTUNREACH, True),     # ICMP_PREC_CUTOFF
)

# The Icmp: line of /proc/net/snmp names one counter per type (icmpmibmap in proc.c).
_IN_NAMES = {0: "IcmpInEchoReps", 3: "IcmpInDestUnreachs", 4: "IcmpInSrcQuenchs",
             5: "IcmpInRedirects", 8: "IcmpInEchos", 11: "IcmpInTimeExcds",
             12: "IcmpInParmProbs", 13: "IcmpInTimestamps", 14: "IcmpInTimestampReps",
             17: "IcmpInAddrMasks", 18: "IcmpInAddrMaskReps"}
_OUT_NAMES = {k: v.replace("IcmpIn", "IcmpOut") for k, v in _IN_NAMES.items()}
_MSG_IN = tuple(f"IcmpMsgInType{t}" for t in range(256))
_MSG_OUT = tuple(f"IcmpMsgOutType{t}" for t in range(256))


class IcmpState:
    """Per-namespace ICMP rate-limit state: the global credit bucket and the inet_peer buckets."""

    __slots__ = ("credit", "stamp", "peers")

    def __init__(self) -> None:
        self.credit = 0
        self.stamp: int | None = None
        self.peers: dict[int, list[int]] = {}      # daddr -> [rate_tokens, rate_last] (ms)


_STATE: weakref.WeakKeyDictionary[Netns, IcmpState] = weakref.WeakKeyDictionary()


def icmp_state(net: Netns) -> IcmpState:
    """The rate-limit state of ``net`` (made on first use)."""
    st = _STATE.get(net)
    if st is None:
        st = _STATE[net] = IcmpState()
    return st


def inet_addr_is_broadcast(net: Netns, addr: int) -> bool:
    """RTN_BROADCAST: 255.255.255.255 or a local subnet's directed broadcast (prefix < 31)."""
    if addr == INADDR_BROADCAST:
        return True
    if addr in net.local_addrs:
        return False                               # the local table is consulted first
    for dev in net.devices.values():
        for a, plen in dev.addrs:
            if plen < 31:
                host = (1 << (32 - plen)) - 1
                if addr & ~host & 0xFFFFFFFF == a & ~host & 0xFFFFFFFF and addr & host == host:
                    return True
    return False


def inet_addr_is_bcast_or_mcast(net: Netns, addr: int) -> bool:
    """RTCF_BROADCAST | RTCF_MULTICAST for a destination address."""
    if addr in net.local_addrs:
        return False
    return (addr >> 28) == 0xE or inet_addr_is_broadcast(net, addr)


def _is_local(net: Netns, addr: int) -> bool:
    return addr in net.local_addrs or (addr >> 24) == 127


def _parse_inner(data: bytes, off: int) -> IpHdr:
    """A quoted IPv4 header, unvalidated (it is truncated, and its checksum is not ours to judge)."""
    vihl, tos, tot_len, ident, frag_off, ttl, proto, _check, saddr, daddr = IPHDR.unpack_from(data, off)
    return IpHdr(vihl & 15, tos, tot_len, ident, frag_off, ttl, proto, saddr, daddr)


# ---- rate limiting --------------------------------------------------------------------------


def _now_ms(net: Netns) -> int:
    return net.clock.now_us() // 1000          # jiffies at HZ=1000


def icmpv4_mask_allow(net: Netns, icmp_type: int, code: int) -> bool:
    """True if the type is not rate limited at all (``icmpv4_mask_allow``)."""
    if icmp_type > NR_ICMP_TYPES:
        return True
    if icmp_type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        return True                            # never limit PMTU discovery
    return not (1 << icmp_type) & net.sysctl.icmp_ratemask


def icmp_global_allow(net: Netns) -> bool:
    """The host-wide bucket (``icmp_global_allow``): icmp_msgs_per_sec refill, icmp_msgs_burst cap."""
    st = icmp_state(net)
    if st.credit > 0:
        return True
    now = _now_ms(net)
    delta = 1000 if st.stamp is None else min(now - st.stamp, 1000)
    if delta < 1000 // 50:
        return False
    incr = getattr(net.sysctl, "icmp_msgs_per_sec", ICMP_MSGS_PER_SEC) * delta // 1000
    if not incr:
        return False
    st.stamp = now
    st.credit = min(st.credit + incr, getattr(net.sysctl, "icmp_msgs_burst", ICMP_MSGS_BURST))
    return True


def _global_allow(net: Netns, icmp_type: int, code: int) -> tuple[bool, bool]:
    """``icmpv4_global_allow``: (allowed, apply the per-peer limit too)."""
    if icmpv4_mask_allow(net, icmp_type, code):
        return True, False
    if icmp_global_allow(net):
        return True, True
    net.mib["IcmpOutRateLimitGlobal"] += 1
    return False, False


def inet_peer_xrlim_allow(net: Netns, daddr: int, timeout: int) -> bool:
    """Per-destination token bucket (``inet_peer_xrlim_allow``): 1 per ``timeout`` ms, burst 6."""
    peers = icmp_state(net).peers
    now = _now_ms(net)
    p = peers.get(daddr)
    if p is None:
        if len(peers) >= 4096:                 # inet_peer GC: drop buckets that are full again
            full = XRLIM_BURST_FACTOR * timeout
            for k in [k for k, v in peers.items() if now - v[1] >= full]:
                del peers[k]
        p = peers[daddr] = [0, now - 60 * 1000]
    token = p[0]
    delta = now - p[1]
    if delta:
        p[1] = now
        token = min(token + delta, XRLIM_BURST_FACTOR * timeout)
    ok = token >= timeout
    if ok:
        token -= timeout
    p[0] = token
    return ok


def icmpv4_xrlim_allow(net: Netns, route: Route, daddr: int, apply_ratelimit: bool) -> bool:
    """The per-peer limit, skipped on loopback (``icmpv4_xrlim_allow``); consumes global credit."""
    if not apply_ratelimit:
        return True
    timeout = net.sysctl.icmp_ratelimit
    ok = True
    if timeout and route.dev is not net.lo:
        ok = inet_peer_xrlim_allow(net, daddr, timeout)
    if not ok:
        net.mib["IcmpOutRateLimitHost"] += 1
    else:
        st = icmp_state(net)
        st.credit -= net.rng.randrange(3)     # icmp_global_consume: 0..2 credits, at random
    return ok


# ---- sending --------------------------------------------------------------------------------


def _icmp_out_count(net: Netns, icmp_type: int) -> None:
    mib = net.mib
    mib["IcmpOutMsgs"] += 1
    mib[_MSG_OUT[icmp_type]] += 1
    name = _OUT_NAMES.get(icmp_type)
    if name is not None:
        mib[name] += 1


def icmp_send(net: Netns, orig: bytes, icmp_type: int, code: int, info: int = 0) -> bool:
    """Send an ICMP error about the received datagram ``orig`` (``__icmp_send``); True if sent.

    Never about an ICMP error, a non-first fragment, or a datagram to a broadcast/multicast
    address (or from an address that is not one host, RFC 1122 3.2.2). ``info`` fills the 32-bit
    rest-of-header (frag-needed MTU, parameter-problem pointer << 24, redirect gateway).
    """
    if len(orig) < IPHDR_LEN:
        return False
    iph = _parse_inner(orig, 0)
    if iph.ihl < 5:
        return False
    daddr, saddr = iph.daddr, iph.saddr
    if inet_addr_is_bcast_or_mcast(net, daddr):
        return False
    if iph.frag_off & IP_OFFSET:
        return False
    if saddr == 0 or inet_addr_is_bcast_or_mcast(net, saddr):
        return False
    is_error = icmp_type in ICMP_ERROR_TYPES
    if is_error and iph.protocol == IPPROTO_ICMP:
        ioff = iph.ihl * 4
        if len(orig) <= ioff:
            return False
        inner_type = orig[ioff]
        if inner_type > NR_ICMP_TYPES or inner_type in ICMP_ERROR_TYPES:
            return False
    apply_ratelimit = False
    if not _is_local(net, saddr):                 # arrived on loopback: no global limit
        ok, apply_ratelimit = _global_allow(net, icmp_type, code)
        if not ok:
            return False
    route = net.fib_lookup(saddr)
    if route is None:
        return False
    src = daddr if _is_local(net, daddr) else net.inet_select_addr(route, saddr)
    tos = (iph.tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL if is_error else iph.tos
    if not icmpv4_xrlim_allow(net, route, saddr, apply_ratelimit):
        return False
    room = min(route.dev.mtu, ICMP_ROOM) - IPHDR_LEN - ICMPHDR_LEN
    if room <= IPHDR_LEN:
        return False
    msg = icmp_build(icmp_type, code, info, orig[:room])
    _icmp_out_count(net, icmp_type)
    net.ip_output(src, saddr, IPPROTO_ICMP, msg, tos=tos, df=False)
    return True


def icmp_reply(net: Netns, iph: IpHdr, icmp_type: int, code: int, un: int, payload: bytes) -> bool:
    """Answer a query (echo, timestamp) to its sender from the address it was sent to (``icmp_reply``)."""
    daddr = iph.saddr
    ok, apply_ratelimit = _global_allow(net, icmp_type, code)
    if not ok:
        return False
    route = net.fib_lookup(daddr)
    if route is None:
        return False
    src = iph.daddr
    if not _is_local(net, src):                   # sent to a broadcast: fib_compute_spec_dst
        src = net.inet_select_addr(route, daddr)
    if not icmpv4_xrlim_allow(net, route, daddr, apply_ratelimit):
        return False
    msg = icmp_build(icmp_type, code, un, payload)
    _icmp_out_count(net, icmp_type)
    net.ip_output(src, daddr, IPPROTO_ICMP, msg, tos=iph.tos, df=False)
    return True


# ---- receiving ------------------------------------------------------------------------------


def icmp_rcv(net: Netns, iph: IpHdr, data: bytes, off: int) -> None:
    """Entry from IP (``icmp_rcv``): checksum, per-type counters, then the type's handler."""
    mib = net.mib
    mib["IcmpInMsgs"] += 1
    if csum_partial(data[off:]) != 0xFFFF:
        mib["IcmpInCsumErrors"] += 1
        mib["IcmpInErrors"] += 1
        net.drop(data, "ICMP_CSUM")
        return
    if len(data) - off < ICMPHDR_LEN:
        mib["IcmpInErrors"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    icmp_type, code, _check, un = unpack_icmphdr(data, off)
    mib[_MSG_IN[icmp_type]] += 1
    name = _IN_NAMES.get(icmp_type)
    if name is not None:
        mib[name] += 1
    if icmp_type > NR_ICMP_TYPES:
        mib["IcmpInErrors"] += 1                  # RFC 1122 3.2.2: unknown types are discarded
        net.drop(data, "UNHANDLED_PROTO")
        return
    if inet_addr_is_bcast_or_mcast(net, iph.daddr):
        if icmp_type in (ICMP_ECHO, ICMP_TIMESTAMP) and net.sysctl.icmp_echo_ignore_broadcasts:
            mib["IcmpInErrors"] += 1
            net.drop(data, "INVALID_PROTO")
            return
        if icmp_type not in (ICMP_ECHO, ICMP_TIMESTAMP, ICMP_ADDRESS, ICMP_ADDRESSREPLY):
            mib["IcmpInErrors"] += 1
            net.drop(data, "INVALID_PROTO")
            return
    if icmp_type == ICMP_ECHO:
        icmp_echo(net, iph, data, off, un)
    elif icmp_type in (ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
                       ICMP_PARAMETERPROB):
        icmp_unreach(net, data, off, icmp_type, code, un)
    elif icmp_type == ICMP_REDIRECT:
        icmp_redirect(net, data, off, code, un)
    elif icmp_type == ICMP_TIMESTAMP:
        icmp_timestamp(net, iph, data, off, un)
    # ECHOREPLY (no ping sockets), TIMESTAMPREPLY, info and address-mask messages: consumed


def icmp_echo(net: Netns, iph: IpHdr, data: bytes, off: int, un: int) -> None:
    """Echo request -> echo reply with the same id, sequence and data (``icmp_echo``)."""
    if net.sysctl.icmp_echo_ignore_all:
        return
    icmp_reply(net, iph, ICMP_ECHOREPLY, 0, un, data[off + ICMPHDR_LEN:])


def icmp_timestamp(net: Netns, iph: IpHdr, data: bytes, off: int, un: int) -> None:
    """Timestamp request -> reply with receive/transmit times in ms of the day (``icmp_timestamp``)."""
    body = data[off + ICMPHDR_LEN:]
    if len(body) < 4:
        net.mib["IcmpInErrors"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    now = (_now_ms(net) % 86_400_000).to_bytes(4, "big")
    payload = body[:4] + now + now
    icmp_reply(net, iph, ICMP_TIMESTAMPREPLY, 0, un, payload)


def icmp_unreach(net: Netns, data: bytes, off: int, icmp_type: int, code: int, un: int) -> None:
    """Errors about a datagram we sent: pick ``info`` and pass it to the protocol (``icmp_unreach``)."""
    mib = net.mib
    ioff = off + ICMPHDR_LEN
    if len(data) - ioff < IPHDR_LEN:
        mib["IcmpInErrors"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    if data[ioff] & 15 < 5:
        mib["IcmpInErrors"] += 1
        net.drop(data, "IP_INHDR")
        return
    info = 0
    if icmp_type == ICMP_DEST_UNREACH:
        if code & 15 == ICMP_FRAG_NEEDED:
            mode = net.sysctl.ip_no_pmtu_disc
            if mode == 2:
                return
            if mode == 3:
                return                            # no protocol here asks for strict tag checks
            if mode == 0:
                info = un & 0xFFFF
        if code > NR_ICMP_UNREACH:
            return
    elif icmp_type == ICMP_PARAMETERPROB:
        info = un >> 24
    elif icmp_type == ICMP_TIME_EXCEEDED and code == ICMP_EXC_FRAGTIME:
        return
    icmp_socket_deliver(net, data, ioff, icmp_type, code, info)


def icmp_redirect(net: Netns, data: bytes, off: int, code: int, un: int) -> None:
    """Redirects go to the protocol with the gateway as ``info`` (``icmp_redirect``); no FIB update."""
    ioff = off + ICMPHDR_LEN
    if len(data) - ioff < IPHDR_LEN:
        net.mib["IcmpInErrors"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    icmp_socket_deliver(net, data, ioff, ICMP_REDIRECT, code, un)


def icmp_socket_deliver(net: Netns, data: bytes, ioff: int, icmp_type: int, code: int,
                        info: int) -> None:
    """Hand an error to the quoted datagram's protocol (``icmp_socket_deliver``).

    Needs the quoted IP header plus 8 bytes (ports, TCP sequence number).
    """
    ihl = data[ioff] & 15
    toff = ioff + ihl * 4
    if len(data) < toff + 8:
        net.mib["IcmpInErrors"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    inner = _parse_inner(data, ioff)
    proto = inner.protocol
    if proto == IPPROTO_UDP:
        net.udp_table.udp_err(icmp_type, code, inner, data, toff, info)
    elif proto == IPPROTO_TCP:
        try:
            from ..tcp.ipv4 import tcp_v4_err
        except ImportError:
            return
        tcp_v4_err(net, icmp_type, code, inner, data, toff, info)


__all__ = [
    "ICMP_ECHOREPLY", "ICMP_DEST_UNREACH", "ICMP_SOURCE_QUENCH", "ICMP_REDIRECT", "ICMP_ECHO",
    "ICMP_TIME_EXCEEDED", "ICMP_PARAMETERPROB", "ICMP_TIMESTAMP", "ICMP_TIMESTAMPREPLY",
    "ICMP_NET_UNREACH", "ICMP_HOST_UNREACH", "ICMP_PROT_UNREACH", "ICMP_PORT_UNREACH",
    "ICMP_FRAG_NEEDED", "ICMP_EXC_TTL", "ICMP_EXC_FRAGTIME", "ICMP_ERR_CONVERT", "ENONET",
    "EPROTO", "IcmpState", "icmp_state", "icmp_send", "icmp_reply", "icmp_rcv", "icmp_echo",
    "icmp_unreach", "icmp_socket_deliver", "icmp_global_allow", "icmpv4_mask_allow",
    "inet_peer_xrlim_allow", "icmpv4_xrlim_allow", "inet_addr_is_broadcast",
    "inet_addr_is_bcast_or_mcast",
]
