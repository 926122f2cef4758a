"""Per-destination TCP state: the timestamp cache of Linux < 4.12 (tcp_tw_recycle emulation
only), and the route metrics a connection reads through its cached dst (end of this file).

Linux 4.11's ``tcp_metrics.c`` remembered, per peer address, the last timestamp seen
(``tcpm_ts``) and when it was seen (``tcpm_ts_stamp``, seconds). With
``net.ipv4.tcp_tw_recycle = 1`` three functions used it:

- ``tcp_remember_stamp`` (from ``tcp_time_wait``): the closing socket's ``ts_recent`` goes into
  the cache and, if that worked, TIME_WAIT lasts the RTO-based ``tw_timeout`` (3.5 * RTO)
  instead of 60 s;
- ``tcp_tw_remember_stamp`` (from ``tcp_timewait_state_process``, when an orphaned FIN_WAIT2
  mini socket gets its FIN): the same for the mini socket;
- ``tcp_peer_is_proven(req, dst, paws_check=true, ...)`` (from ``tcp_conn_request``): a SYN from
  that address whose TSval is more than ``TCP_PAWS_WINDOW`` behind the cached one (or which has
  no timestamp at all) within ``TCP_PAWS_MSL`` (60 s) of the cached stamp is dropped, counted
  as ``LINUX_MIB_PAWSPASSIVEREJECTED`` (nstat ``TcpExtPAWSPassive``).

Both the sysctl and this cache were removed in Linux 4.12 (commits 4396e46187ca "tcp: remove
tcp_tw_recycle" and d82bae12dc38 "tcp: remove per-destination timestamp cache"), because
since 4.10 every connection has its own random timestamp offset (``secure_tcp_ts_off``) and
clients behind one NAT never share a clock. Linux 6.18 still has tcp_metrics, for RTT and
ssthresh only; tcpdive does not model that part, so this module holds just the timestamps.

Knowing differences: Linux's ``get_seconds()`` is wall-clock time, so a fresh cache entry
(``tcpm_ts_stamp == 0``) is always "older than 60 s"; tcpdive's virtual seconds start at 0, so
a missing entry stands for that case. The active-open side (``tcp_fetch_timewait_stamp`` in
4.11's ``tcp_v4_connect``, which seeded a connecting socket's ``ts_recent`` from the cache for
PAWSActive checks) is not emulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sock import TCP_INIT_CWND, TCP_PAWS_MSL, TCP_PAWS_WINDOW

if TYPE_CHECKING:
    from .minisocks import RequestSock, TimewaitSock
    from .sock import TcpSock


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _table(net) -> dict[int, list[int]]:
    """daddr -> [tcpm_ts, tcpm_ts_stamp]; created on first use (one per namespace)."""
    tab = net.tcp_metrics_ts
    if tab is None:
        tab = net.tcp_metrics_ts = {}
    return tab


def _update(tab: dict[int, list[int]], daddr: int, ts_recent: int, ts_recent_stamp: int,
            now_s: int) -> None:
    tm = tab.get(daddr)
    if tm is None:
        tab[daddr] = [ts_recent, ts_recent_stamp]
        return
    # a newer timestamp, or the old one is stale (> TCP_PAWS_MSL) and not from later
    if (_s32(tm[0] - ts_recent) <= 0
            or (now_s - tm[1] > TCP_PAWS_MSL and tm[1] <= ts_recent_stamp)):
        tm[0] = ts_recent
        tm[1] = ts_recent_stamp


def tcp_remember_stamp(sk: TcpSock) -> bool:
    """Cache the peer's last TSval when ``sk`` enters TIME_WAIT (4.11 ``tcp_remember_stamp``).

    Returns True (the entry exists or was created), which lets ``tcp_time_wait`` use the
    RTO-based TIME_WAIT length.
    """
    net = sk.net
    _update(_table(net), sk.daddr, sk.ts_recent, sk.ts_recent_stamp,
            net.clock.now_us() // 1_000_000)
    return True


def tcp_tw_remember_stamp(tw: TimewaitSock) -> bool:
    """The same for a mini socket (4.11 ``tcp_tw_remember_stamp``): lookup only, no create."""
    net = tw.net
    tab = net.tcp_metrics_ts
    if tab is None or tw.daddr not in tab:
        return False
    _update(tab, tw.daddr, tw.ts_recent, tw.ts_recent_stamp, net.clock.now_us() // 1_000_000)
    return True


def tcp_peer_is_proven(req: RequestSock, paws_check: bool, timestamps: bool) -> bool:
    """May a SYN from this peer open a connection? (4.11 ``tcp_peer_is_proven``, paws_check part).

    False when the cache holds a timestamp for the address, stamped less than TCP_PAWS_MSL
    seconds ago, and the SYN's TSval is more than TCP_PAWS_WINDOW behind it or absent.
    Only the ``paws_check`` (tcp_tw_recycle) use is emulated; otherwise the peer is proven.
    """
    if not paws_check:
        return True
    net = req.net
    tab = net.tcp_metrics_ts
    tm = tab.get(req.daddr) if tab is not None else None
    if (tm is not None
            and net.clock.now_us() // 1_000_000 - tm[1] < TCP_PAWS_MSL
            and (not timestamps or _s32(tm[0] - req.ts_recent) > TCP_PAWS_WINDOW)):
        return False
    return True


# ---- route metrics as TCP reads them (the socket's cached dst) ------------------------------
#
# Linux caches the route on the socket (``sk_dst_cache``, set by ``sk_setup_caps`` at connect
# and in ``tcp_v4_syn_recv_sock``) and reads the metrics from it: ``dst_mtu`` and
# ``dst_metric_advmss`` at connect / SYN-ACK time (tcp_connect_init, tcp_openreq_init_rwin,
# tcp_v4_syn_recv_sock), RTAX_INITRWND with them, RTAX_INITCWND when the transfer starts
# (tcp_init_transfer) and after idle (tcp_cwnd_restart, tcp_cwnd_application_limited), and
# RTAX_RTO_MIN / RTAX_QUICKACK per packet (tcp_rto_min on each RTT sample, tcp_in_quickack_mode
# on each ACK decision). A route change makes the cached dst stale; ``ip_queue_xmit`` checks it
# (``__sk_dst_check``) and takes the new route at the next transmission, and
# ``tcp_current_mss`` then sees the new ``dst_mtu`` and re-syncs the MSS.


def sk_dst_set(sk: TcpSock, route) -> None:
    """Cache ``route`` as the socket's dst (``sk_setup_caps`` / ``sk_dst_set``), with its
    path MTU (``dst_mtu``)."""
    net = sk.net
    sk.dst = route
    sk.dst_genid = net.rt_genid
    if route is not None:
        mtu = route.mtu or route.dev.mtu
        sk.dst_mtu = mtu if mtu < 0xFFFF else 0xFFFF


def __sk_dst_check(sk: TcpSock) -> None:
    """The routes changed since the dst was cached: look the destination up again
    (``__sk_dst_check`` + re-route in ``ip_queue_xmit``). A path MTU learned from ICMP comes
    back with the lookup (the nexthop exception, net/route.py); one created, refreshed or
    expired since gives a new rtable and so a new ``dst_mtu``."""
    net = sk.net
    route = net.fib_lookup(sk.daddr)
    if route is sk.dst:
        sk.dst_genid = net.rt_genid
        return
    sk_dst_set(sk, route)


def tcp_init_cwnd(sk: TcpSock) -> int:
    """Initial congestion window (``tcp_init_cwnd``): the route's ``initcwnd``, else
    TCP_INIT_CWND (10), at most snd_cwnd_clamp."""
    dst = sk.dst
    cwnd = dst.initcwnd if dst is not None else 0
    if not cwnd:
        cwnd = TCP_INIT_CWND
    return min(cwnd, sk.snd_cwnd_clamp)


def tcp_mss_clamp(sk: TcpSock, mss: int) -> int:
    """TCP_MAXSEG lowers the advertised MSS (``tcp_mss_clamp``)."""
    user_mss = sk.user_mss
    return user_mss if user_mss and user_mss < mss else mss
