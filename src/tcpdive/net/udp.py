"""udp.c: the UDP socket table and sockets — receive (``__udp4_lib_rcv``), lookup
(``__udp4_lib_lookup``), send (``udp_sendmsg``), read (``udp_recvmsg``) and ICMP errors
(``__udp4_lib_err``).

As on Linux's software-checksum path, a datagram of more than 76 bytes (CHECKSUM_BREAK) is
queued before its checksum is checked; the check happens when it reaches the head of the queue
(``udp_recvmsg``, ``first_packet_length`` for poll/SIOCINQ), which is where UdpInCsumErrors is
counted. UdpInDatagrams, likewise, counts datagrams the application has read.

Path MTU: IP_MTU_DISCOVER (``inet->pmtudisc``, default WANT) -- DO/PROBE/INTERFACE refuse a
datagram larger than the path MTU (the learnt one, the device's for PROBE) with EMSGSIZE; an
ICMP fragmentation-needed updates the per-destination PMTU and, for a connected socket not in
DONT mode, becomes a pending EMSGSIZE; IP_MTU reads the path MTU of a connected socket.

Known differences: no local fragmentation (a WANT/DONT datagram larger than the path MTU leaves
as one IP packet without DF; routers do fragment it), no corking (MSG_MORE / UDP_CORK), no error
queue (IP_RECVERR only makes every ICMP error pending, with no sock_extended_err / IP_MTU info
to read), no GSO/GRO and no UDP-Lite.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..errors import oserror
from ..packet.checksum import csum_partial, pseudo_sum
from ..packet.ipv4 import IPPROTO_UDP, IpHdr, int2ip
from ..packet.udp import UDP_MAX_PAYLOAD, UDPHDR_LEN, udp_build, unpack_udphdr
from ..tcp.sock import RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK, TCP_CLOSE, TCP_ESTABLISHED
from .icmp import (
    EPROTO,
    ICMP_DEST_UNREACH,
    ICMP_ERR_CONVERT,
    ICMP_FRAG_NEEDED,
    ICMP_PARAMETERPROB,
    ICMP_PORT_UNREACH,
    ICMP_REDIRECT,
    ICMP_SOURCE_QUENCH,
    NR_ICMP_UNREACH,
    icmp_send,
    inet_addr_is_bcast_or_mcast,
    inet_addr_is_broadcast,
)
from .route import dst_mtu, ip_rt_update_pmtu

if TYPE_CHECKING:
    from .netns import Netns

MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_ERRQUEUE = 0x2000

POLLIN = 0x001
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLRDNORM = 0x040
POLLWRNORM = 0x100
POLLWRBAND = 0x200
POLLRDHUP = 0x2000

SOCK_BINDADDR_LOCK = 0x4
SOCK_BINDPORT_LOCK = 0x8

# inet->pmtudisc (IP_MTU_DISCOVER values)
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_WANT = 1
IP_PMTUDISC_DO = 2
IP_PMTUDISC_PROBE = 3
IP_PMTUDISC_INTERFACE = 4
IP_PMTUDISC_OMIT = 5

CHECKSUM_BREAK = 76            # shorter datagrams are checksummed on arrival (__skb_checksum_validate)
INADDR_LOOPBACK = 0x7F000001
IPHDR_LEN = 20

# skb->truesize model: SKB_DATA_ALIGN(NET_SKB_PAD + ETH_HLEN + len) plus struct sk_buff and
# skb_shared_info (SKB_TRUESIZE overhead, 256 + 320 bytes on x86-64).
_NET_SKB_PAD = 64
_ETH_HLEN = 14
_SKB_OVERHEAD = 576


def udp_skb_truesize(ip_len: int) -> int:
    """What one received datagram of ``ip_len`` IP bytes charges to sk_rmem_alloc (approximation)."""
    return ((ip_len + _NET_SKB_PAD + _ETH_HLEN + 63) & ~63) + _SKB_OVERHEAD


def _sk_wake(sk: UdpSock, key: int = 0) -> None:
    """``sk_data_ready`` / ``sk_error_report``: wake every sleeper on the socket (``key``: the
    poll bits the wake-up is about, 0 for a state change)."""
    from ..tcp.tcp import sk_wake

    sk_wake(sk, key)


class UdpTable:
    """The UDP hash of one namespace (``udp_table``): port -> sockets, most recently bound first."""

    __slots__ = ("net", "ports")

    def __init__(self, net: Netns) -> None:
        self.net = net
        self.ports: dict[int, list[UdpSock]] = {}

    def __iter__(self):
        for chain in self.ports.values():
            yield from chain

    def __len__(self) -> int:
        return sum(len(c) for c in self.ports.values())

    # ---- lookup ------------------------------------------------------------------------------

    def lookup(self, saddr: int, sport: int, daddr: int, dport: int) -> UdpSock | None:
        """The socket for a datagram saddr:sport -> daddr:dport (``__udp4_lib_lookup``).

        Sockets bound to ``daddr`` are searched first, wildcard-bound ones only if none fits; in
        each pass the best ``compute_score`` wins (connected peer address and port add 4 each),
        ties going to the most recently bound socket.
        """
        chain = self.ports.get(dport)
        if not chain:
            return None
        sk = self._lookup2(chain, daddr, saddr, sport, dport)
        if sk is None and daddr:
            sk = self._lookup2(chain, 0, saddr, sport, dport)
        return sk

    def _lookup2(self, chain: list[UdpSock], laddr: int, saddr: int, sport: int,
                 dport: int) -> UdpSock | None:
        """One pass of ``udp4_lib_lookup2`` over sockets whose bound address is ``laddr``."""
        best = None
        badness = -1
        for sk in chain:
            if sk.rcv_saddr != laddr:
                continue
            score = 2
            if sk.daddr:
                if sk.daddr != saddr:
                    continue
                score += 4
            if sk.dport:
                if sk.dport != sport:
                    continue
                score += 4
            if score > badness:
                best = sk
                badness = score
        if best is not None and best.reuseport and best.state != TCP_ESTABLISHED:
            best = self._reuseport_select(chain, best, saddr, sport, laddr, dport)
        return best

    def _reuseport_select(self, chain: list[UdpSock], sk: UdpSock, saddr: int, sport: int,
                          laddr: int, dport: int) -> UdpSock:
        """``reuseport_select_sock``: a 4-tuple hash picks one unconnected member of the group."""
        group = [s for s in reversed(chain) if s.reuseport and s.rcv_saddr == sk.rcv_saddr
                 and s.state != TCP_ESTABLISHED]
        if len(group) < 2:
            return sk
        h = hash((saddr, sport, laddr, dport, self.net.name)) & 0xFFFFFFFF
        return group[(h * len(group)) >> 32]

    # ---- ports -------------------------------------------------------------------------------

    def _port_inuse(self, sk: UdpSock, port: int) -> bool:
        """Would ``sk`` clash with a socket already on ``port``? (``udp_lib_lport_inuse``)."""
        chain = self.ports.get(port)
        if not chain:
            return False
        addr = sk.rcv_saddr
        for sk2 in chain:
            if sk2 is sk or (sk2.reuse and sk.reuse):
                continue
            a2 = sk2.rcv_saddr
            if a2 and addr and a2 != addr:
                continue
            if sk2.reuseport and sk.reuseport:
                return False                      # joins sk2's SO_REUSEPORT group
            return True
        return False

    def get_port(self, sk: UdpSock, snum: int) -> bool:
        """Bind ``sk`` to ``snum``, or to a free ephemeral port if 0 (``udp_lib_get_port``).

        Ephemeral ports come from ip_local_port_range, starting at a random point and skipping
        ip_local_reserved_ports. Returns False if the port (or every port) is taken.
        """
        if not snum:
            sc = self.net.sysctl
            low, high = sc.ip_local_port_range
            reserved = sc.ip_local_reserved_ports
            remaining = high - low + 1
            first = self.net.rng.randrange(remaining)
            for i in range(remaining):
                port = low + (first + i) % remaining
                if port in reserved or self._port_inuse(sk, port):
                    continue
                snum = port
                break
            else:
                return False
        elif self._port_inuse(sk, snum):
            return False
        sk.sport = snum
        chain = self.ports.get(snum)
        if chain is None:
            self.ports[snum] = [sk]
        else:
            chain.insert(0, sk)
        sk.hashed = True
        self.net.sockets.add(sk)
        return True

    def unhash(self, sk: UdpSock) -> None:
        """Remove ``sk`` from the table and free its port (``udp_lib_unhash``)."""
        if not sk.hashed:
            return
        chain = self.ports.get(sk.sport)
        if chain is not None:
            try:
                chain.remove(sk)
            except ValueError:
                pass
            if not chain:
                del self.ports[sk.sport]
        sk.hashed = False
        self.net.sockets.discard(sk)

    # ---- receive -----------------------------------------------------------------------------

    def udp_rcv(self, iph: IpHdr, data: bytes, off: int) -> None:
        """Entry from IP (``__udp4_lib_rcv``): length, checksum, lookup, queue or port unreachable."""
        net = self.net
        mib = net.mib
        n = len(data) - off
        if n < UDPHDR_LEN:
            mib["UdpInErrors"] += 1
            net.drop(data, "PKT_TOO_SMALL")
            return
        sport, dport, ulen, check = unpack_udphdr(data, off)
        if ulen > n or ulen < UDPHDR_LEN:
            mib["UdpInErrors"] += 1                # "short packet"
            net.drop(data, "PKT_TOO_SMALL")
            return
        end = off + ulen
        if end < len(data):
            data = data[:end]                      # pskb_trim_rcsum to the UDP length
        saddr = iph.saddr
        daddr = iph.daddr
        bad = False
        if check:
            bad = csum_partial(data[off:], pseudo_sum(saddr, daddr, IPPROTO_UDP, ulen)) != 0xFFFF
            if bad and ulen <= CHECKSUM_BREAK:
                self._csum_error(data)
                return
        if inet_addr_is_bcast_or_mcast(net, daddr):
            self._mcast_deliver(iph, data, off, sport, dport, bad)
            return
        sk = self.lookup(saddr, sport, daddr, dport)
        if sk is not None:
            sk.queue_rcv(data[off + UDPHDR_LEN:], saddr, sport, udp_skb_truesize(len(data)), bad,
                         data)
            return
        if bad:
            self._csum_error(data)
            return
        mib["UdpNoPorts"] += 1
        icmp_send(net, data, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
        net.drop(data, "NO_SOCKET")

    def _csum_error(self, data: bytes) -> None:
        mib = self.net.mib
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        self.net.drop(data, "UDP_CSUM")

    def _mcast_deliver(self, iph: IpHdr, data: bytes, off: int, sport: int, dport: int,
                       bad: bool) -> None:
        """Broadcast/multicast: a copy to every matching socket (``__udp4_lib_mcast_deliver``)."""
        saddr = iph.saddr
        daddr = iph.daddr
        payload = data[off + UDPHDR_LEN:]
        truesize = udp_skb_truesize(len(data))
        found = False
        for sk in list(reversed(self.ports.get(dport, ()))):
            if ((sk.rcv_saddr and sk.rcv_saddr != daddr) or (sk.daddr and sk.daddr != saddr)
                    or (sk.dport and sk.dport != sport)):
                continue
            found = True
            sk.queue_rcv(payload, saddr, sport, truesize, bad, data)
        if not found:
            self.net.mib["UdpIgnoredMulti"] += 1
            self.net.drop(data, "NOT_SPECIFIED")

    # ---- ICMP errors -------------------------------------------------------------------------

    def udp_err(self, icmp_type: int, code: int, inner: IpHdr, data: bytes, toff: int,
                info: int = 0) -> None:
        """An ICMP error about a datagram we sent (``__udp4_lib_err``).

        ``inner`` is the quoted IP header and ``data[toff:]`` the quoted UDP header. Only a
        connected socket learns of hard errors (port/protocol unreachable, ...), as a pending
        ``sk_err`` reported once by the next call; others ignore them unless ``recverr``.
        """
        sport, dport = unpack_udphdr(data, toff)[:2]
        sk = self.lookup(inner.daddr, dport, inner.saddr, sport)
        if sk is None:
            self.net.mib["IcmpInErrors"] += 1
            return
        harderr = False
        if icmp_type == ICMP_SOURCE_QUENCH or icmp_type == ICMP_REDIRECT:
            return
        if icmp_type == ICMP_PARAMETERPROB:
            err = EPROTO
            harderr = True
        elif icmp_type == ICMP_DEST_UNREACH:
            if code == ICMP_FRAG_NEEDED:
                # Path MTU discovery (ipv4_sk_update_pmtu): the PMTU toward the destination
                # is learnt whatever the socket's mode; only DONT sockets hear nothing
                ip_rt_update_pmtu(self.net, inner.daddr, info)
                if sk.pmtudisc == IP_PMTUDISC_DONT:
                    return
                err = E.EMSGSIZE
                harderr = True
            elif code <= NR_ICMP_UNREACH:
                err, harderr = ICMP_ERR_CONVERT[code]
            else:
                err = E.EHOSTUNREACH
        else:                                       # ICMP_TIME_EXCEEDED and anything else
            err = E.EHOSTUNREACH
        if not sk.recverr and (not harderr or sk.state != TCP_ESTABLISHED):
            return
        sk.sk_err = err
        if sk.wq or sk.ep_wq:
            _sk_wake(sk, 0x008)                  # sk_error_report: EPOLLERR


class UdpSock:
    """One UDP socket (``struct udp_sock`` with its ``inet_sock`` and ``sock``).

    ``state`` is TCP_CLOSE, or TCP_ESTABLISHED once connected, as on Linux. The receive queue
    holds ``(payload, src_addr, src_port, truesize, csum_bad)`` tuples; ``rmem_alloc`` is the
    sum of their truesizes, bounded by ``sk_rcvbuf``.
    """

    protocol = IPPROTO_UDP

    __slots__ = (
        "net", "state", "saddr", "rcv_saddr", "sport", "daddr", "dport", "sk_err", "sk_err_soft",
        "sk_rcvbuf", "sk_sndbuf", "userlocks", "reuse", "reuseport", "wq", "ep_wq", "socket",
        "sk_shutdown", "receive_queue", "rmem_alloc", "drops", "hashed", "bound", "dead",
        "tos", "ttl", "mc_ttl", "broadcast", "recverr", "pmtudisc", "no_check_tx", "bound_dev",
        "sk_rcvlowat", "sk_rcvtimeo", "sk_sndtimeo", "keepopen", "linger", "lingertime",
        "sk_wmem_queued",
    )

    def __init__(self, net: Netns) -> None:
        sc = net.sysctl
        self.net = net
        self.state = TCP_CLOSE
        self.saddr = self.rcv_saddr = 0
        self.sport = self.daddr = self.dport = 0
        self.sk_err = self.sk_err_soft = 0
        self.sk_rcvbuf = sc.rmem_default
        self.sk_sndbuf = sc.wmem_default
        self.userlocks = 0
        self.reuse = 0
        self.reuseport = False
        self.wq: list | None = None
        self.ep_wq: list | None = None
        self.socket: Any = None
        self.sk_shutdown = 0
        self.receive_queue: deque[tuple[bytes, int, int, int, bool]] | None = None
        self.rmem_alloc = 0
        self.drops = 0
        self.hashed = False
        self.bound = False
        self.dead = False
        self.tos = 0
        self.ttl = 0                      # 0: net.ipv4.ip_default_ttl
        self.mc_ttl = 1
        self.broadcast = False            # SO_BROADCAST
        self.recverr = False              # IP_RECVERR
        self.pmtudisc = IP_PMTUDISC_DONT if sc.ip_no_pmtu_disc else IP_PMTUDISC_WANT
        self.no_check_tx = False          # SO_NO_CHECK
        self.bound_dev = None
        self.sk_rcvlowat = 1
        self.sk_rcvtimeo = self.sk_sndtimeo = 0
        self.keepopen = False
        self.linger = False
        self.lingertime = 0
        self.sk_wmem_queued = 0

    # ---- helpers -----------------------------------------------------------------------------

    @property
    def rcv_queue_bytes(self) -> int:
        """What ``ss`` shows as Recv-Q for a UDP socket (sk_rmem_alloc)."""
        return self.rmem_alloc

    def _nonblock(self, flags: int) -> bool:
        if flags & MSG_DONTWAIT:
            return True
        s = self.socket
        return s is None or s.nonblocking or s.timeout == 0

    def sock_error(self) -> int:
        """Take the pending error, clearing it (``sock_error``)."""
        err = self.sk_err
        if err:
            self.sk_err = 0
        return err

    def _raise_error(self, err: int) -> None:
        detail = f"{int2ip(self.daddr)}:{self.dport}" if self.daddr else None
        raise oserror(err, detail)

    def _autobind(self) -> None:
        """``inet_autobind``: an ephemeral port before the first send/connect, EAGAIN if none."""
        if not self.sport:
            if not self.net.udp_table.get_port(self, 0):
                raise oserror(E.EAGAIN, "no free ephemeral port")
            self.bound = True

    def queue_rcv(self, payload: bytes, saddr: int, sport: int, truesize: int, bad: bool,
                  data: bytes | None = None) -> bool:
        """Append a datagram (``__udp_enqueue_schedule_skb``); False if the receive buffer is full."""
        if self.rmem_alloc > self.sk_rcvbuf:
            mib = self.net.mib
            mib["UdpRcvbufErrors"] += 1
            mib["UdpInErrors"] += 1
            self.drops += 1
            self.net.drop(data if data is not None else payload, "SOCKET_RCVBUFF")
            return False
        q = self.receive_queue
        if q is None:
            q = self.receive_queue = deque()
        q.append((payload, saddr, sport, truesize, bad))
        self.rmem_alloc += truesize
        if self.wq or self.ep_wq:
            _sk_wake(self, 0x0C3)                # sock_def_readable: EPOLLIN|PRI|RDNORM|RDBAND
        return True

    def _first_packet(self) -> tuple[bytes, int, int, int, bool] | None:
        """The head datagram after dropping bad-checksum ones (``first_packet_length``)."""
        q = self.receive_queue
        while q:
            entry = q[0]
            if not entry[4]:
                return entry
            q.popleft()
            self.rmem_alloc -= entry[3]
            self.drops += 1
            mib = self.net.mib
            mib["UdpInCsumErrors"] += 1
            mib["UdpInErrors"] += 1
            self.net.drop(entry[0], "UDP_CSUM")
        return None

    # ---- bind / connect ----------------------------------------------------------------------

    def bind(self, addr: int, port: int) -> None:
        """bind(): address checks, then the port (``__inet_bind`` + ``udp_lib_get_port``)."""
        net = self.net
        is_bcast = addr != 0 and (inet_addr_is_broadcast(net, addr) or (addr >> 28) == 0xE)
        if (addr and addr not in net.local_addrs and (addr >> 24) != 127 and not is_bcast
                and not net.sysctl.ip_nonlocal_bind):
            raise oserror(E.EADDRNOTAVAIL, f"{int2ip(addr)} is not a local address")
        if self.state != TCP_CLOSE or self.sport:
            raise oserror(E.EINVAL, "socket already bound")
        self.rcv_saddr = self.saddr = addr
        if is_bcast:
            self.saddr = 0                         # send from the device's address
        if not net.udp_table.get_port(self, port):
            self.saddr = self.rcv_saddr = 0
            raise oserror(E.EADDRINUSE, f"{int2ip(addr)}:{port}")
        if self.rcv_saddr:
            self.userlocks |= SOCK_BINDADDR_LOCK
        if port:
            self.userlocks |= SOCK_BINDPORT_LOCK
        self.bound = True
        self.daddr = self.dport = 0

    def connect(self, addr: int, port: int) -> None:
        """connect(): autobind, route, fix the source address and peer (``__ip4_datagram_connect``)."""
        net = self.net
        self._autobind()
        if addr == 0:
            addr = self.saddr or INADDR_LOOPBACK    # ip_route_output: no destination = ourselves
        route = net.fib_lookup(addr)
        if route is None:
            net.mib["IpOutNoRoutes"] += 1
            raise oserror(E.ENETUNREACH, int2ip(addr))
        if inet_addr_is_broadcast(net, addr) and not self.broadcast:
            raise oserror(E.EACCES, "broadcast without SO_BROADCAST")
        src = self.saddr or net.inet_select_addr(route, addr)
        if not self.saddr:
            self.saddr = src
        if not self.rcv_saddr:
            self.rcv_saddr = src                     # udp_v4_rehash: now bound to that address
        self.daddr = addr
        self.dport = port
        self.state = TCP_ESTABLISHED

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): forget the peer and any implicit binding (``__udp_disconnect``)."""
        self.state = TCP_CLOSE
        self.daddr = self.dport = 0
        if not self.userlocks & SOCK_BINDADDR_LOCK:
            self.saddr = self.rcv_saddr = 0
        if not self.userlocks & SOCK_BINDPORT_LOCK:
            self.net.udp_table.unhash(self)
            self.sport = 0
            self.bound = False

    # ---- data --------------------------------------------------------------------------------

    def sendto(self, data: bytes | bytearray | memoryview, addr: tuple[int, int] | None,
               flags: int = 0) -> int:
        """Send one datagram (``inet_sendmsg`` -> ``udp_sendmsg``); returns its length.

        EDESTADDRREQ without an address on an unconnected socket; an address on a connected
        socket is used for this datagram. EMSGSIZE above 65507 bytes; a pending error (ICMP)
        is reported here once.
        """
        net = self.net
        self._autobind()
        n = len(data)
        if n > 0xFFFF:
            raise oserror(E.EMSGSIZE)
        if flags & MSG_OOB:
            raise oserror(E.EOPNOTSUPP)
        if addr is not None:
            daddr, dport = addr
            if dport == 0:
                raise oserror(E.EINVAL, "destination port 0")
        else:
            if self.state != TCP_ESTABLISHED:
                raise oserror(E.EDESTADDRREQ)
            daddr, dport = self.daddr, self.dport
        if daddr == 0:
            daddr = self.saddr or INADDR_LOOPBACK
        route = net.fib_lookup(daddr)
        if route is None:
            net.mib["IpOutNoRoutes"] += 1
            raise oserror(E.ENETUNREACH, int2ip(daddr))
        if not self.broadcast and inet_addr_is_broadcast(net, daddr):
            raise oserror(E.EACCES, "broadcast without SO_BROADCAST")
        saddr = self.saddr or net.inet_select_addr(route, daddr)
        if n > UDP_MAX_PAYLOAD:
            raise oserror(E.EMSGSIZE)
        tot = IPHDR_LEN + UDPHDR_LEN + n
        pmtudisc = self.pmtudisc
        # ip_append_data: the learnt path MTU (dst_mtu), the device's with IP_PMTUDISC_PROBE;
        # DO / PROBE / INTERFACE do not fragment locally: EMSGSIZE
        mtu = route.dev.mtu if pmtudisc >= IP_PMTUDISC_PROBE else dst_mtu(route)
        if tot > mtu and IP_PMTUDISC_DO <= pmtudisc <= IP_PMTUDISC_INTERFACE:
            raise oserror(E.EMSGSIZE, f"datagram of {tot} bytes, MTU {mtu}")
        err = self.sock_error()
        if err:
            self._raise_error(err)
        if self.sk_shutdown & SEND_SHUTDOWN:
            raise oserror(E.EPIPE)
        seg = udp_build(saddr, daddr, self.sport, dport, data, not self.no_check_tx)
        if (daddr >> 28) == 0xE:
            ttl: int | None = self.mc_ttl
        else:
            ttl = self.ttl or None
        # __ip_make_skb: DF with DO/PROBE, or WANT when it fits and the MTU is not locked
        df = (pmtudisc in (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE)
              or (pmtudisc == IP_PMTUDISC_WANT and tot <= mtu and not route.locks & 4))
        net.ip_output(saddr, daddr, IPPROTO_UDP, seg, tos=self.tos, ttl=ttl, df=df)
        net.mib["UdpOutDatagrams"] += 1
        return n

    def recvfrom(self, n: int, flags: int = 0) -> tuple[bytes, tuple[int, int]]:
        """Take (or with MSG_PEEK look at) the next datagram, cut to ``n`` bytes (``udp_recvmsg``).

        A pending error comes first and is cleared; an empty queue raises EAGAIN, or returns
        b'' on a blocking socket shut down for reading. The rest of a truncated datagram is lost.
        """
        if flags & MSG_ERRQUEUE:
            raise oserror(E.EAGAIN, "no error queue")
        err = self.sock_error()
        if err:
            self._raise_error(err)
        entry = self._first_packet()
        if entry is None:
            if self.sk_shutdown & RCV_SHUTDOWN and not self._nonblock(flags):
                return b"", (0, 0)
            raise oserror(E.EAGAIN)
        payload, saddr, sport, truesize, _bad = entry
        if not flags & MSG_PEEK:
            self.receive_queue.popleft()
            self.rmem_alloc -= truesize
            self.net.mib["UdpInDatagrams"] += 1
        if n < len(payload):
            payload = payload[:n] if n > 0 else b""
        return payload, (saddr, sport)

    def readable(self) -> bool:
        """Would a read return now (data, an error, or shut down for reading)?"""
        return bool(self.receive_queue) or self.sk_err != 0 or bool(self.sk_shutdown & RCV_SHUTDOWN)

    def poll(self) -> int:
        """``udp_poll`` / ``datagram_poll``: POLLERR for a pending error, POLLIN for a datagram.

        On a blocking socket a queue holding only bad-checksum datagrams is not readable.
        """
        mask = 0
        if self.sk_err:
            mask |= POLLERR
        shut = self.sk_shutdown
        if shut & RCV_SHUTDOWN:
            mask |= POLLRDHUP | POLLIN | POLLRDNORM
        if shut == SHUTDOWN_MASK:
            mask |= POLLHUP
        if self.receive_queue:
            if (self._nonblock(0) or shut & RCV_SHUTDOWN
                    or self._first_packet() is not None):
                mask |= POLLIN | POLLRDNORM
        mask |= POLLOUT | POLLWRNORM | POLLWRBAND     # sk_wmem_alloc never builds up here
        return mask

    def inq(self) -> int:
        """SIOCINQ: the payload size of the first datagram, 0 if none (``first_packet_length``)."""
        entry = self._first_packet()
        return len(entry[0]) if entry is not None else 0

    # ---- shutdown / close --------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        """shutdown(SHUT_RD/WR/RDWR) (``inet_shutdown``): flags set and sleepers woken even when
        unconnected, which then reports ENOTCONN."""
        if how not in (0, 1, 2):
            raise oserror(E.EINVAL)
        self.sk_shutdown |= how + 1
        if self.wq or self.ep_wq:
            _sk_wake(self)
        if self.state == TCP_CLOSE:
            raise oserror(E.ENOTCONN)

    def close(self) -> None:
        """close(): unhash, release the port, free queued datagrams (``udp_lib_close``)."""
        self.net.udp_table.unhash(self)
        self.state = TCP_CLOSE
        self.dead = True
        self.receive_queue = None
        self.rmem_alloc = 0
        if self.wq or self.ep_wq:
            _sk_wake(self)

    def __repr__(self) -> str:
        st = "ESTAB" if self.state == TCP_ESTABLISHED else "UNCONN"
        peer = f"{int2ip(self.daddr)}:{self.dport}" if self.daddr else "*:*"
        return (f"<UdpSock {st} {int2ip(self.rcv_saddr)}:{self.sport} {peer} "
                f"rmem {self.rmem_alloc}>")


__all__ = ["UdpTable", "UdpSock", "udp_skb_truesize", "CHECKSUM_BREAK", "MSG_PEEK",
           "MSG_DONTWAIT", "MSG_TRUNC", "IP_PMTUDISC_DONT", "IP_PMTUDISC_WANT", "IP_PMTUDISC_DO"]
