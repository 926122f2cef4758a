"""RTT estimation and RTO (RFC 6298 with Linux's mdev/rttvar arithmetic), tcp_input.c."""

from __future__ import annotations

from .sock import TCP_RTO_MAX, TCP_RTO_MIN, TcpSock, jiffies_round, tcp_time_stamp_ts


def tcp_rto_min_us(sk: TcpSock) -> int:
    """Lower bound of rttvar, and so of the RTO (``tcp_rto_min_us``; 200 ms unless a route says)."""
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


def tcp_ack_update_rtt(sk: TcpSock, seq_rtt_us: int, sack_rtt_us: int = -1,
                       ca_rtt_us: int | None = None, acked: bool = True) -> int:
    """One sample per ACK (``tcp_ack_update_rtt``): ACK timing (Karn), else SACK, else now - TSecr
    if new data is acked (RFC 7323 RTTM); resets the backoff (RFC 6298 5.7). Returns the CC
    sample (``rs->rtt_us``) or -1. Knowingly differs: min_rtt is a plain, not windowed, minimum."""
    if ca_rtt_us is None:
        ca_rtt_us = seq_rtt_us
    if seq_rtt_us < 0:
        seq_rtt_us = sack_rtt_us
    if seq_rtt_us < 0 and acked and sk.saw_tstamp and sk.rcv_tsecr:
        seq_rtt_us = ca_rtt_us = tcp_rtt_tsopt_us(sk, 1)
    if seq_rtt_us < 0:
        return ca_rtt_us
    m = ca_rtt_us or 1000                 # 0 counts as one jiffy (jiffies_to_usecs(1))
    if sk.min_rtt_us == 0 or m < sk.min_rtt_us:
        sk.min_rtt_us = m
    tcp_rtt_estimator(sk, seq_rtt_us)
    tcp_set_rto(sk)
    sk.icsk_backoff = 0
    return ca_rtt_us


def tcp_synack_rtt_meas(sk: TcpSock, rtt_us: int) -> None:
    """The RTT of the handshake seeds the estimator (``tcp_synack_rtt_meas``)."""
    tcp_ack_update_rtt(sk, rtt_us)
