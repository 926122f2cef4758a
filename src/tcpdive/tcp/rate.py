"""Delivery-rate sampling (net/ipv4/tcp_rate.c, Linux 6.x).

Every transmitted skb records the connection's delivery state at that moment
(``tcp_rate_skb_sent``: ``tp->delivered``, ``delivered_mstamp``, the start of the current send
phase ``first_tx_mstamp``, and whether the sender was application-limited). When an ACK
(S)ACKs skbs, the most recently sent of them gives the sample's starting point
(``tcp_rate_skb_delivered``), and ``tcp_rate_gen`` turns it into a ``struct rate_sample``:
packets delivered over the longer of the send phase and the ACK phase. Congestion control
modules with a ``cong_control`` hook (BBR) read that sample; ``tcp_info`` reports the last one
as ``tcpi_delivery_rate``.

Times are the namespace clock's microseconds (``tcp_skb_timestamp_us``). As in Linux a
``delivered_mstamp`` of 0 means "no timing information".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..skb import TCPCB_RETRANS, TCPCB_SACKED_ACKED

if TYPE_CHECKING:
    from ..skb import SKB
    from .sock import TcpSock

_M32 = 0xFFFFFFFF


class RateSample:
    """``struct rate_sample``: one ACK's delivery-rate sample (-1: not valid/no RTT)."""

    __slots__ = ("prior_mstamp", "prior_delivered", "prior_delivered_ce", "delivered",
                 "delivered_ce", "interval_us", "snd_interval_us", "rcv_interval_us", "rtt_us",
                 "losses", "acked_sacked", "prior_in_flight", "last_end_seq", "is_app_limited",
                 "is_retrans", "is_ack_delayed")

    def __init__(self, prior_in_flight: int = 0) -> None:
        self.prior_mstamp = 0
        self.prior_delivered = 0
        self.prior_delivered_ce = 0
        self.delivered = 0
        self.delivered_ce = 0
        self.interval_us = 0
        self.snd_interval_us = 0
        self.rcv_interval_us = 0
        self.rtt_us = -1
        self.losses = 0
        self.acked_sacked = 0
        self.prior_in_flight = prior_in_flight
        self.last_end_seq = 0
        self.is_app_limited = False
        self.is_retrans = False
        self.is_ack_delayed = False

    def __repr__(self) -> str:
        return "RateSample(" + ", ".join(f"{n}={getattr(self, n)}" for n in self.__slots__) + ")"


def tcp_rate_skb_sent(sk: TcpSock, skb: SKB) -> None:
    """Snapshot the delivery state in the skb being sent (``tcp_rate_skb_sent``). With nothing
    in flight the send phase and the ACK phase both start now."""
    if not sk.packets_out:
        t = skb.tstamp
        sk.first_tx_mstamp = t
        sk.delivered_mstamp = t
    skb.tx_first_tx_mstamp = sk.first_tx_mstamp
    skb.tx_delivered_mstamp = sk.delivered_mstamp
    skb.delivered = sk.delivered
    skb.tx_app_limited = sk.app_limited != 0


def tcp_rate_skb_delivered(sk: TcpSock, skb: SKB, rs: RateSample) -> None:
    """An skb was (S)ACKed: the most recently sent one of this ACK (later send time, or the
    same time and higher end_seq: ``tcp_skb_sent_after``) sets the sample's start
    (``tcp_rate_skb_delivered``). A SACKed skb gives its information once."""
    if not skb.tx_delivered_mstamp:
        return
    tx = skb.tstamp
    first = sk.first_tx_mstamp
    if not rs.prior_delivered or tx > first or (tx == first and skb.end_seq > rs.last_end_seq):
        rs.prior_delivered = skb.delivered
        rs.prior_mstamp = skb.tx_delivered_mstamp
        rs.is_app_limited = skb.tx_app_limited
        rs.is_retrans = bool(skb.sacked & TCPCB_RETRANS)
        rs.last_end_seq = skb.end_seq
        sk.first_tx_mstamp = tx
        rs.interval_us = tx - skb.tx_first_tx_mstamp
    if skb.sacked & TCPCB_SACKED_ACKED:
        skb.tx_delivered_mstamp = 0


def tcp_rate_gen(sk: TcpSock, delivered: int, lost: int, is_sack_reneg: bool,
                 rs: RateSample) -> None:
    """Finish this ACK's sample: delivered / max(send phase, ACK phase), invalid (-1) without
    timing, during SACK reneging, or over less than min_rtt; remember the last
    non-app-limited (or best app-limited) sample for tcp_info (``tcp_rate_gen``)."""
    app = sk.app_limited
    if app and ((app - sk.delivered) & _M32) >= 0x80000000:      # after(delivered, app_limited)
        sk.app_limited = 0
    if delivered:
        sk.delivered_mstamp = sk.tcp_mstamp
    rs.acked_sacked = delivered
    rs.losses = lost
    if not rs.prior_mstamp or is_sack_reneg:
        rs.delivered = -1
        rs.interval_us = -1
        return
    rs.delivered = sk.delivered - rs.prior_delivered
    snd_us = rs.interval_us
    ack_us = sk.tcp_mstamp - rs.prior_mstamp
    rs.interval_us = snd_us if snd_us > ack_us else ack_us
    rs.snd_interval_us = snd_us
    rs.rcv_interval_us = ack_us
    min_rtt = sk.min_rtt_us if sk.min_rtt_us else 0xFFFFFFFF      # tcp_min_rtt: ~0U unset
    if rs.interval_us < min_rtt:
        rs.interval_us = -1
        return
    if (not rs.is_app_limited
            or rs.delivered * sk.rate_interval_us >= sk.rate_delivered * rs.interval_us):
        sk.rate_delivered = rs.delivered
        sk.rate_interval_us = rs.interval_us
        sk.rate_app_limited = rs.is_app_limited


def tcp_rate_check_app_limited(sk: TcpSock) -> None:
    """A gap in the sender's data: less than an MSS unsent, cwnd not full, no lost packet
    waiting for retransmission, so the samples now in flight measure the application
    (``tcp_rate_check_app_limited``). Nothing waits in a qdisc here (sk_wmem_alloc is 0)."""
    in_flight = sk.tcp_packets_in_flight()
    if (sk.write_seq - sk.snd_nxt < sk.mss_cache and in_flight < sk.snd_cwnd
            and sk.lost_out <= sk.retrans_out):
        sk.app_limited = (sk.delivered + in_flight) or 1


def tcp_compute_delivery_rate(sk: TcpSock) -> int:
    """Bytes per second of the last reported sample (``tcp_compute_delivery_rate``)."""
    if not sk.rate_interval_us:
        return 0
    return sk.rate_delivered * sk.mss_cache * 1_000_000 // sk.rate_interval_us
