"""Packetization-layer path MTU discovery (RFC 4821) as Linux's TCP does it.

``net.ipv4.tcp_mtu_probing``: 0 off; 1 off until a black hole is suspected (an RTO past
tcp_retries1, ``tcp_mtu_probing`` in tcp_timer.c), then on; 2 on from the start. With it on,
a connection keeps a search range of path MTUs (``icsk_mtup``: ``search_low`` known to work,
``search_high`` not yet refuted) and the MSS is at most ``tcp_mtu_to_mss(search_low)``
(``tcp_sync_mss``). ``search_low`` starts at ``tcp_base_mss`` (1024) and ``search_high`` at the
peer's MSS + 40; the route's MTU still bounds it all.

- ``tcp_mtu_probe`` (start of ``tcp_write_xmit``): with cwnd >= 11, no SACK blocks pending, in
  CA_Open and enough queued data (``size_needed`` = probe + (reordering + 1) * mss), one
  segment of ``tcp_mtu_to_mss((search_low + search_high) / 2)`` bytes is cut from the head of
  the send queue and sent; cwnd drops by one (it stands for two segments).
- success (``tcp_mtup_probe_success``, from ``tcp_clean_rtx_queue``): the probe's end is
  cumulatively acked -- ``search_low`` becomes the probe size, cwnd is rescaled to bytes, the
  MSS re-synced.
- failure (``tcp_mtup_probe_failed``, from ``tcp_fastretrans_alert``): loss is detected while
  snd_una sits at the probe's start -- ``search_high`` drops below it and the oversize
  segment is resent at the current MSS (``tcp_simple_retransmit``), without a cwnd cut.
- black hole (``tcp_mtu_probing``, from ``tcp_write_timeout``): retransmissions timed out past
  tcp_retries1 -- probing is switched on, or ``search_low`` halved (not below
  ``tcp_mtu_probe_floor`` / ``tcp_min_snd_mss``), and the MSS re-synced.
- ``tcp_mtu_check_reprobe``: once the range has closed (below ``tcp_probe_threshold`` bytes),
  after ``tcp_probe_interval`` seconds the search starts again from the current MSS.

State lives in ``sk.mtup``, created only when tcp_mtu_probing is on (a knowing difference:
Linux fills icsk_mtup for every connection; if the sysctl is switched on later, a black hole
starts the search from the route's MTU rather than from the peer MSS bound seen at setup).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..packet.tcp import ACK, FIN, PSH
from ..skb import SKB
from .output import (
    tcp_current_mss,
    tcp_event_new_data_sent,
    tcp_lskb,
    tcp_lskb_sent,
    tcp_mss_to_mtu,
    tcp_mtu_to_mss,
    tcp_sync_mss,
    tcp_transmit_skb,
    tcp_wnd_end,
)
from .sock import TCP_CA_CWR, TCP_CA_Loss, TCP_CA_Open

if TYPE_CHECKING:
    from .sock import TcpSock

MTU_PROBE_MIN_CWND = 11          # tcp_mtu_probe: "have enough cwnd"


class Mtup:
    """``icsk_mtup`` plus ``tp->mtu_probe``: the search range (path MTUs, bytes), the probe in
    flight (its size as an MTU, 0 if none, and its sequence range) and when probing (re)started
    (ms, tcp_jiffies32)."""

    __slots__ = ("enabled", "search_high", "search_low", "probe_size", "probe_timestamp",
                 "probe_seq_start", "probe_seq_end")

    def __init__(self) -> None:
        self.enabled = False
        self.search_high = self.search_low = 0
        self.probe_size = 0
        self.probe_timestamp = 0
        self.probe_seq_start = self.probe_seq_end = 0

    def __repr__(self) -> str:
        return (f"<Mtup {'on' if self.enabled else 'off'} [{self.search_low}, "
                f"{self.search_high}] probe {self.probe_size}>")


def _jiffies(sk: TcpSock) -> int:
    return sk.net.clock.now_us() // 1000          # tcp_jiffies32 (HZ 1000)


def tcp_mtup_init(sk: TcpSock) -> None:
    """Start the search (``tcp_mtup_init``, from tcp_connect_init and tcp_init_transfer):
    on with tcp_mtu_probing 2, search_high = mss_clamp + 40, search_low = MTU of
    tcp_base_mss."""
    sc = sk.net.sysctl
    mode = sc.tcp_mtu_probing
    m = sk.mtup
    if m is None:
        if not mode:
            return
        m = sk.mtup = Mtup()
    m.enabled = mode > 1
    m.search_high = sk.mss_clamp + 20 + 20
    m.search_low = tcp_mss_to_mtu(sk, sc.tcp_base_mss)
    m.probe_size = 0
    if m.enabled:
        m.probe_timestamp = _jiffies(sk)


def tcp_mtu_check_reprobe(sk: TcpSock) -> None:
    """The search has ended: after tcp_probe_interval seconds start it again, from the current
    MSS up to the peer's (``tcp_mtu_check_reprobe``)."""
    m = sk.mtup
    now = _jiffies(sk)
    if now - m.probe_timestamp >= sk.net.sysctl.tcp_probe_interval * 1000:
        mss = tcp_current_mss(sk)
        m.probe_size = 0
        m.search_high = sk.mss_clamp + 20 + 20
        m.search_low = tcp_mss_to_mtu(sk, mss)
        m.probe_timestamp = now


def tcp_can_coalesce_send_queue_head(sk: TcpSock, length: int) -> bool:
    """May the first ``length`` bytes of the send queue go as one segment: no MSG_EOR
    boundary inside them (``tcp_can_coalesce_send_queue_head``)?"""
    for skb in sk.write_queue:
        n = len(skb.data)
        if length <= n:
            break
        if getattr(skb, "eor", False):
            return False
        length -= n
    return True


def tcp_mtu_probe(sk: TcpSock) -> int:
    """Send an MTU probe if the time is right (``tcp_mtu_probe``). Returns 1 if one was sent,
    0 to wait (the window or cwnd must drain first), -1 if not probing now.

    The probe is built from the head of the send queue: whole skbs are eaten (their flags
    join the probe), the last one is trimmed (its PSH/FIN stay with what is left), and the
    probe goes out as one segment. If sending fails it stays queued and is cut into MSS
    segments by tcp_write_xmit.
    """
    m = sk.mtup
    if (not m.enabled or m.probe_size or sk.icsk_ca_state != TCP_CA_Open
            or sk.snd_cwnd < MTU_PROBE_MIN_CWND or sk.num_sacks or sk.dsack):
        return -1
    sc = sk.net.sysctl
    mss_now = tcp_current_mss(sk)       # re-syncs the MSS if the route's MTU moved
    probe_size = tcp_mtu_to_mss(sk, (m.search_high + m.search_low) >> 1)
    size_needed = probe_size + (sk.reordering + 1) * sk.mss_cache
    interval = m.search_high - m.search_low
    if probe_size > tcp_mtu_to_mss(sk, m.search_high) or interval < sc.tcp_probe_threshold:
        tcp_mtu_check_reprobe(sk)
        return -1
    if sk.write_seq - sk.snd_nxt < size_needed:
        return -1
    if sk.snd_wnd < size_needed:
        return -1
    if sk.snd_nxt + size_needed > tcp_wnd_end(sk):
        return 0
    in_flight = sk.tcp_packets_in_flight()
    if in_flight + 2 > sk.snd_cwnd:
        return 0 if in_flight else -1
    if not tcp_can_coalesce_send_queue_head(sk, probe_size):
        return -1
    q = sk.write_queue
    seq = q[0].seq
    flags = ACK
    eor = False
    parts: list[bytes] = []
    length = 0
    while True:
        skb = q[0]
        n = len(skb.data)
        copy = min(n, probe_size - length)
        if n <= copy:                                # eaten whole (tcp_eat_one_skb)
            parts.append(skb.data)
            flags |= skb.flags
            eor = getattr(skb, "eor", False)
            q.popleft()
        else:
            parts.append(skb.data[:copy])
            flags |= skb.flags & ~(FIN | PSH)
            skb.data = skb.data[copy:]
            skb.seq += copy
        length += copy
        if length >= probe_size:
            break
    nskb = SKB(seq, seq + probe_size, flags, b"".join(parts))
    nskb.eor = eor
    q.appendleft(nskb)
    if tcp_transmit_skb(sk, nskb):
        return -1
    sk.snd_cwnd -= 1                                 # it stands for two packets
    tcp_event_new_data_sent(sk, nskb)
    tcp_lskb_sent(sk, seq, nskb.end_seq)
    if q:
        _tcp_resegment_head(sk, mss_now)
    m.probe_size = tcp_mss_to_mtu(sk, probe_size)
    m.probe_seq_start = seq
    m.probe_seq_end = nskb.end_seq
    return 1


def _tcp_resegment_head(sk: TcpSock, mss_now: int) -> None:
    """The Linux skb the probe trimmed now starts mid-way through one of tcpdive's MSS skbs
    (``__pskb_trim_head`` + ``tcp_set_skb_tso_segs(skb, mss_now)``): cut what is left of it
    into ``mss_now`` pieces again, from its new start, so TSO bursts count right."""
    q = sk.write_queue
    start = q[0].seq
    end = None
    for b in tcp_lskb(sk):
        if b > start:
            end = b
            break
    k = 0
    while k < len(q) and (end is None or q[k].seq < end):
        k += 1
    if k <= 1:
        return
    run = [q.popleft() for _ in range(k)]
    last = run[-1]
    tail_flags = last.flags & (PSH | FIN)
    eor = getattr(last, "eor", False)
    data = b"".join([s.data for s in run])
    pieces = []
    seq = start
    for off in range(0, len(data), mss_now):
        chunk = data[off:off + mss_now]
        skb = SKB(seq, seq + len(chunk), ACK, chunk)
        skb.eor = False
        pieces.append(skb)
        seq += len(chunk)
    if not pieces:
        pieces.append(SKB(seq, seq, ACK, b""))
    tail = pieces[-1]
    tail.flags |= tail_flags
    tail.eor = eor
    if tail_flags & FIN:
        tail.end_seq += 1
    q.extendleft(reversed(pieces))


def tcp_mtup_probe_success(sk: TcpSock) -> None:
    """The probe arrived (``tcp_mtup_probe_success``): cwnd keeps its bytes at the larger
    segment size, search_low rises to the probe, the MSS is re-synced. Counts
    TcpExtTCPMTUPSuccess."""
    from .input import tcp_current_ssthresh

    m = sk.mtup
    sk.prior_ssthresh = tcp_current_ssthresh(sk)
    sk.snd_cwnd = max(1, sk.snd_cwnd * tcp_mss_to_mtu(sk, sk.mss_cache) // m.probe_size)
    sk.snd_cwnd_cnt = 0
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    sk.snd_ssthresh = tcp_current_ssthresh(sk)
    m.search_low = m.probe_size
    m.probe_size = 0
    tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
    sk.net.mib["TcpExtTCPMTUPSuccess"] += 1


def tcp_mtup_probe_failed(sk: TcpSock) -> None:
    """The probe was lost (``tcp_mtup_probe_failed``): the path MTU is below it. Counts
    TcpExtTCPMTUPFail."""
    m = sk.mtup
    m.search_high = m.probe_size - 1
    m.probe_size = 0
    sk.net.mib["TcpExtTCPMTUPFail"] += 1


def tcp_mtup_probe_check_failed(sk: TcpSock) -> bool:
    """``tcp_fastretrans_alert``'s "MTU probe failure: don't reduce cwnd": loss found while
    snd_una is the probe's start, before any cwnd reduction. Marks the failure, gives back the
    cwnd segment the probe took and resends what is now oversize; True if it did."""
    m = sk.mtup
    if (sk.icsk_ca_state < TCP_CA_CWR and m.probe_size
            and sk.snd_una == m.probe_seq_start):
        tcp_mtup_probe_failed(sk)
        sk.snd_cwnd += 1
        tcp_simple_retransmit(sk)
        return True
    return False


def tcp_simple_retransmit(sk: TcpSock) -> None:
    """Resend what no longer fits the MSS, without backoff (``tcp_simple_retransmit``):
    segments longer than the current MSS are marked lost, the state becomes Loss (ssthresh
    kept at the current value, no undo), and the lost ones go out again, cut to the MSS."""
    from .input import (
        tcp_current_ssthresh,
        tcp_limit_reno_sacked,
        tcp_mark_skb_lost,
        tcp_set_ca_state,
        tcp_xmit_retransmit_queue,
    )

    mss = tcp_current_mss(sk)
    for skb in sk.rtx_queue:
        if len(skb.data) > mss:
            tcp_mark_skb_lost(sk, skb)
    if not sk.lost_out:
        return
    if not sk.sack_ok:
        tcp_limit_reno_sacked(sk)
    if sk.icsk_ca_state != TCP_CA_Loss:
        sk.high_seq = sk.snd_nxt
        sk.snd_ssthresh = tcp_current_ssthresh(sk)
        sk.prior_ssthresh = 0
        sk.undo_marker = 0
        tcp_set_ca_state(sk, TCP_CA_Loss)
    tcp_xmit_retransmit_queue(sk)


def tcp_mtu_probing(sk: TcpSock) -> None:
    """Black-hole detection on a retransmission timeout past tcp_retries1 (``tcp_mtu_probing``
    in tcp_timer.c): with tcp_mtu_probing on, switch probing on, or if it already is, halve
    search_low (MSS at most tcp_base_mss, at least tcp_mtu_probe_floor and tcp_min_snd_mss);
    then re-sync the MSS."""
    sc = sk.net.sysctl
    if not sc.tcp_mtu_probing:
        return
    m = sk.mtup
    if m is None:
        tcp_mtup_init(sk)          # switched on after this connection started: not enabled
        m = sk.mtup                # yet, as Linux's icsk_mtup of such a connection
        m.enabled = False
        m.search_high = min(m.search_high, sk.icsk_pmtu_cookie or m.search_high)
    if not m.enabled:
        m.enabled = True
        m.probe_timestamp = _jiffies(sk)
    else:
        mss = tcp_mtu_to_mss(sk, m.search_low) >> 1
        mss = min(sc.tcp_base_mss, mss)
        mss = max(mss, sc.tcp_mtu_probe_floor)
        mss = max(mss, sc.tcp_min_snd_mss)
        m.search_low = tcp_mss_to_mtu(sk, mss)
    tcp_sync_mss(sk, sk.icsk_pmtu_cookie)


__all__ = ["Mtup", "tcp_mtup_init", "tcp_mtu_probe", "tcp_mtu_check_reprobe",
           "tcp_mtup_probe_success", "tcp_mtup_probe_failed", "tcp_mtup_probe_check_failed",
           "tcp_simple_retransmit", "tcp_mtu_probing", "tcp_can_coalesce_send_queue_head"]
