"""RTT estimation and RTO (RFC 6298 with Linux's mdev/rttvar arithmetic), tcp_input.c."""

from __future__ import annotations

from ..ktime import HZ, USEC_PER_JIFFY
from .minmax import Minmax
from .sock import TCP_RTO_MAX, TCP_RTO_MIN, TcpSock, jiffies_round, tcp_time_stamp_ts


def tcp_rto_min_us(sk: TcpSock) -> int:
    """Lower bound of rttvar, and so of the RTO (``tcp_rto_min_us``): the route's ``rto_min``
    (locked, as iproute2 always sets it), else net.ipv4.tcp_rto_min_us (200 ms)."""
    dst = sk.dst
    if dst is not None and dst.rto_min:
        return dst.rto_min * 1000              # ms -> us (dst_metric_rtt, HZ 1000)
    v = getattr(sk.net.sysctl, "tcp_rto_min_us", 0)
    return v if v else TCP_RTO_MIN


def tcp_rtt_estimator(sk: TcpSock, mrtt_us: int) -> None:
    """Fold one RTT sample into srtt (x8) and mdev/rttvar (x4) as ``tcp_rtt_estimator`` does.

    Unlike RFC 6298's RTTVAR, Linux lets rttvar fall only once per RTT (by a quarter of the gap
    to the largest mdev seen that RTT), so the RTO shrinks slowly after a burst of variance.
    """
    m = mrtt_us
    srtt = sk.srtt_us
    if srtt != 0:
        m -= srtt >> 3
        srtt += m
        if m < 0:
            m = -m
            m -= sk.mdev_us >> 2
            if m > 0:
                m >>= 3
        else:
            m -= sk.mdev_us >> 2
        sk.mdev_us += m
        if sk.mdev_us > sk.mdev_max_us:
            sk.mdev_max_us = sk.mdev_us
            if sk.mdev_max_us > sk.rttvar_us:
                sk.rttvar_us = sk.mdev_max_us
        if sk.snd_una > sk.rtt_seq:
            if sk.mdev_max_us < sk.rttvar_us:
                sk.rttvar_us -= (sk.rttvar_us - sk.mdev_max_us) >> 2
            sk.rtt_seq = sk.snd_nxt
            sk.mdev_max_us = tcp_rto_min_us(sk)
    else:
        srtt = m << 3
        sk.mdev_us = m << 1
        sk.rttvar_us = max(sk.mdev_us, tcp_rto_min_us(sk))
        sk.mdev_max_us = sk.rttvar_us
        sk.rtt_seq = sk.snd_nxt
    sk.srtt_us = max(1, srtt)


def __tcp_set_rto(sk: TcpSock) -> int:
    """srtt + rttvar, rounded up to a jiffy (``__tcp_set_rto``)."""
    return jiffies_round((sk.srtt_us >> 3) + sk.rttvar_us)


def tcp_set_rto(sk: TcpSock) -> None:
    """Recompute icsk_rto after a sample, bounded by TCP_RTO_MAX (``tcp_set_rto``)."""
    rto = __tcp_set_rto(sk)
    sk.icsk_rto = rto if rto < TCP_RTO_MAX else TCP_RTO_MAX


def tcp_rtt_tsopt_us(sk: TcpSock, min_delta: int) -> int:
    """RTT in us from the echoed TSval (``tcp_rtt_tsopt_us``): the TS clock ticks in ms, so an
    echo from this very ms counts as ``min_delta`` ms; -1 if the echo is implausibly old."""
    delta = (tcp_time_stamp_ts(sk) - sk.rcv_tsecr) & 0xFFFFFFFF
    if delta < 0x7FFFFFFF // 1000:
        return (delta or min_delta) * 1000
    return -1


FLAG_ACK_MAYBE_DELAYED = 0x10000     # tcp_input.c: likely a delayed ACK, skip its min_rtt sample
FLAG_SYN_ACKED = 0x10


def tcp_update_rtt_min(sk: TcpSock, rtt_us: int, flag: int) -> None:
    """Feed the windowed min-RTT filter (``tcp_update_rtt_min``): window tcp_min_rtt_wlen s in
    jiffies, time tcp_jiffies32; a sample above the current min from a likely delayed ACK is
    skipped. ``sk.min_rtt_us`` mirrors ``tcp_min_rtt()`` (0 here where Linux has ~0U)."""
    if flag & FLAG_ACK_MAYBE_DELAYED and sk.min_rtt_us and rtt_us > sk.min_rtt_us:
        return
    win = sk.net.sysctl.tcp_min_rtt_wlen * HZ
    now_j = sk.net.clock.now_us() // USEC_PER_JIFFY
    meas = rtt_us or USEC_PER_JIFFY              # 0 counts as one jiffy (jiffies_to_usecs(1))
    m = sk.rtt_min
    if m is None or type(m) is int:
        # Memory: while the filter is one reset sample (tcp_init_sock's ~0U always resets at
        # the first), rtt_min keeps only its jiffy and min_rtt_us its value; a Minmax is made
        # when a sample neither resets it (minmax_running_min's first test) nor is the first.
        if m is None or meas <= sk.min_rtt_us or now_j - m > win:
            sk.rtt_min = now_j
            sk.min_rtt_us = meas
            return
        sk.rtt_min = m = Minmax(m, sk.min_rtt_us)
    sk.min_rtt_us = m.running_min(win, now_j, meas)


def tcp_ack_update_rtt(sk: TcpSock, seq_rtt_us: int, sack_rtt_us: int = -1,
                       ca_rtt_us: int | None = None, acked: bool = True,
                       flag: int = FLAG_SYN_ACKED) -> int:
    """One sample per ACK (``tcp_ack_update_rtt``): ACK timing (Karn), else SACK, else now - TSecr
    if new data is acked (RFC 7323 RTTM); feeds the min-RTT filter, resets the backoff (RFC 6298
    5.7). Returns the CC sample (``rs->rtt_us``) or -1. ``flag``: tcp_ack's FLAG_* bits (the
    default, FLAG_SYN_ACKED, is the handshake's sample of ``tcp_synack_rtt_meas``)."""
    if ca_rtt_us is None:
        ca_rtt_us = seq_rtt_us
    if seq_rtt_us < 0:
        seq_rtt_us = sack_rtt_us
    if seq_rtt_us < 0 and acked and sk.saw_tstamp and sk.rcv_tsecr:
        seq_rtt_us = ca_rtt_us = tcp_rtt_tsopt_us(sk, 1)
    if seq_rtt_us < 0:
        return ca_rtt_us
    tcp_update_rtt_min(sk, ca_rtt_us, flag)
    tcp_rtt_estimator(sk, seq_rtt_us)
    tcp_set_rto(sk)
    sk.icsk_backoff = 0
    return ca_rtt_us


def tcp_synack_rtt_meas(sk: TcpSock, rtt_us: int) -> None:
    """The RTT of the handshake seeds the estimator (``tcp_synack_rtt_meas``)."""
    tcp_ack_update_rtt(sk, rtt_us)
