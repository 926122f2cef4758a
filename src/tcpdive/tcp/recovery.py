"""tcp_recovery.c: RACK-TLP loss detection (RFC 8985) and the tail loss probe.

RACK marks a segment lost once a segment *sent after it* has been delivered (SACKed or
cumulatively acked) and more than one RTT plus a reordering window has passed since it was
sent (``tcp_rack_detect_loss``). The walk follows ``tsorted_sent_queue``: here ``sk.tsorted``,
an insertion-ordered dict of the un-SACKed, un-acked skbs by (re)transmission time — a
retransmission moves its skb to the end, a SACK or cumulative ACK removes it, as
``list_move_tail`` / ``list_del_init`` do in Linux.

TLP (``tcp_schedule_loss_probe`` / ``tcp_send_loss_probe``, tcp_output.c) sends one probe
2*srtt after the last transmission when nothing else would, so a tail loss is repaired by fast
recovery instead of an RTO; ``tcp_process_tlp_ack`` (tcp_input.c) decides afterwards whether
the probe repaired a real loss (then cwnd is reduced, via CWR) or not.

Times are microseconds (``tcp_mstamp``); jiffy-based timer values are rounded up to the jiffy
as ``usecs_to_jiffies`` does. Linux stamps skbs in nanoseconds, so two transmissions almost
never share a stamp and ``tcp_skb_sent_after`` falls back to end_seq only in corner cases; on a
virtual clock a whole burst shares one microsecond, so the tie-break here is the transmission
order (``skb.tx_seq``), which is what the nanosecond stamps would have said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..skb import TCPCB_LOST, TCPCB_RETRANS, TCPCB_SACKED_RETRANS
from .rtt import tcp_rto_min_us
from .sock import (
    ICSK_TIME_LOSS_PROBE,
    ICSK_TIME_REO_TIMEOUT,
    ICSK_TIME_RETRANS,
    TCP_CA_CWR,
    TCP_TIMEOUT_INIT,
    TCP_CA_Open,
    TCP_CA_Recovery,
    jiffies_round,
)

if TYPE_CHECKING:
    from ..skb import SKB
    from .sock import TcpSock

TCP_RACK_LOSS_DETECTION = 0x1
TCP_RACK_STATIC_REO_WND = 0x2
TCP_RACK_NO_DUPTHRESH = 0x4
TCP_RACK_RECOVERY_THRESH = 16
TCP_TIMEOUT_MIN_US = 2000        # TCP_TIMEOUT_MIN_US: 2 ms


# ---- the tsorted_sent_queue --------------------------------------------------------------

def tcp_tsorted_add(sk: TcpSock, skb: SKB) -> None:
    """Append ``skb`` as the most recently sent (``list_move_tail(&skb->tcp_tsorted_anchor)``)."""
    ts = sk.tsorted
    if ts is None:
        ts = sk.tsorted = {}
    else:
        ts.pop(skb, None)
    ts[skb] = None


def tcp_tsorted_del(sk: TcpSock, skb: SKB) -> None:
    """Take ``skb`` off the send-time list (``list_del_init``)."""
    ts = sk.tsorted
    if ts:
        ts.pop(skb, None)


def tcp_tsorted_insert_after(sk: TcpSock, skb: SKB, new: SKB) -> None:
    """Place a fragment right after its parent, as ``tcp_fragment`` does with
    ``list_add(&buff->tcp_tsorted_anchor, &skb->tcp_tsorted_anchor)`` (rare: rebuilds the dict)."""
    ts = sk.tsorted
    if not ts or skb not in ts:
        return
    out: dict = {}
    for k in ts:
        out[k] = None
        if k is skb:
            out[new] = None
    sk.tsorted = out


# ---- RACK ----------------------------------------------------------------------------------

def tcp_min_rtt(sk: TcpSock) -> int:
    return sk.min_rtt_us or 0


def tcp_skb_sent_after(t1: int, t2: int, seq1: int, seq2: int) -> bool:
    """Was (t1, seq1) sent after (t2, seq2) (``tcp_skb_sent_after``)?"""
    return t1 > t2 or (t1 == t2 and seq1 > seq2)


def tcp_rack_reo_wnd(sk: TcpSock) -> int:
    """The reordering window in us (``tcp_rack_reo_wnd``): 0 while no reordering was seen and
    we are in recovery or past the dupack threshold, else min_rtt/4 * steps, at most srtt."""
    if not sk.reord_seen:
        if sk.icsk_ca_state >= TCP_CA_Recovery:
            return 0
        if (sk.sacked_out >= sk.reordering
                and not sk.net.sysctl.tcp_recovery & TCP_RACK_NO_DUPTHRESH):
            return 0
    return min((tcp_min_rtt(sk) >> 2) * sk.rack_reo_wnd_steps, sk.srtt_us >> 3)


def tcp_rack_skb_timeout(sk: TcpSock, skb: SKB, reo_wnd: int) -> int:
    """us left before ``skb`` is deemed lost (``tcp_rack_skb_timeout``)."""
    return sk.rack_rtt_us + reo_wnd - (sk.tcp_mstamp - skb.tstamp)


def tcp_rack_detect_loss(sk: TcpSock) -> int:
    """Mark lost every skb sent before the most recently delivered one and older than
    rtt + reo_wnd; return the longest wait (us) for those not yet due (``tcp_rack_detect_loss``)."""
    from .input import tcp_mark_skb_lost

    reo_timeout = 0
    reo_wnd = tcp_rack_reo_wnd(sk)
    ts = sk.tsorted
    if not ts:
        return 0
    rack_mstamp = sk.rack_mstamp
    rack_tx_seq = sk.rack_end_seq
    lost = []
    for skb in ts:
        s = skb.sacked
        if s & TCPCB_LOST and not s & TCPCB_SACKED_RETRANS:
            continue              # marked lost, not yet retransmitted
        if not tcp_skb_sent_after(rack_mstamp, skb.tstamp, rack_tx_seq, skb.tx_seq):
            break
        remaining = tcp_rack_skb_timeout(sk, skb, reo_wnd)
        if remaining <= 0:
            lost.append(skb)
        elif remaining > reo_timeout:
            reo_timeout = remaining
    for skb in lost:
        tcp_mark_skb_lost(sk, skb)
        del ts[skb]
    return reo_timeout


def tcp_rack_mark_lost(sk: TcpSock) -> bool:
    """Run RACK if a delivery advanced it; arm the REO timer for skbs not yet due
    (``tcp_rack_mark_lost``). True if that timer was armed."""
    if not sk.rack_advanced:
        return False
    sk.rack_advanced = False
    timeout = tcp_rack_detect_loss(sk)
    if timeout:
        from .output import tcp_reset_xmit_timer

        tcp_reset_xmit_timer(sk, ICSK_TIME_REO_TIMEOUT, jiffies_round(timeout + TCP_TIMEOUT_MIN_US),
                             max_when=sk.icsk_rto)
    return bool(timeout)


def tcp_rack_advance(sk: TcpSock, sacked: int, end_seq: int, xmit_time: int) -> None:
    """A delivered skb moves RACK's clock (``tcp_rack_advance``); an ambiguous sample from a
    retransmission faster than min_rtt is ignored. ``end_seq`` is the skb's ``tx_seq`` (the
    transmission-order tie-break, see the module docstring); ``rack_end_seq`` keeps it."""
    rtt_us = sk.tcp_mstamp - xmit_time
    if sacked & TCPCB_RETRANS and rtt_us < tcp_min_rtt(sk):
        return
    sk.rack_advanced = True
    sk.rack_rtt_us = rtt_us
    if tcp_skb_sent_after(xmit_time, sk.rack_mstamp, end_seq, sk.rack_end_seq):
        sk.rack_mstamp = xmit_time
        sk.rack_end_seq = end_seq


def tcp_rack_reo_timeout(sk: TcpSock) -> None:
    """The reordering timer fired: mark what is now due, maybe start recovery
    (``tcp_rack_reo_timeout``)."""
    from .input import tcp_cwnd_reduction, tcp_enter_recovery, tcp_xmit_retransmit_queue
    from .output import tcp_rearm_rto

    sk.tcp_mstamp = sk.net.clock.now_us()
    lost = sk.lost
    prior_inflight = sk.tcp_packets_in_flight()
    tcp_rack_detect_loss(sk)
    if prior_inflight != sk.tcp_packets_in_flight():
        if sk.icsk_ca_state != TCP_CA_Recovery:
            tcp_enter_recovery(sk, False)
            tcp_cwnd_reduction(sk, 1, sk.lost - lost, 0)
        tcp_xmit_retransmit_queue(sk)
    if sk.icsk_pending != ICSK_TIME_RETRANS:
        tcp_rearm_rto(sk)


def tcp_rack_update_reo_wnd(sk: TcpSock, prior_delivered: int) -> None:
    """Grow the reordering window a step per round with DSACKs, keep it for 16 recoveries
    (``tcp_rack_update_reo_wnd``)."""
    if sk.net.sysctl.tcp_recovery & TCP_RACK_STATIC_REO_WND or not prior_delivered:
        return
    if prior_delivered < sk.rack_last_delivered:
        sk.rack_dsack_seen = False
    if sk.rack_dsack_seen:
        sk.rack_reo_wnd_steps = min(0xFF, sk.rack_reo_wnd_steps + 1)
        sk.rack_dsack_seen = False
        sk.rack_last_delivered = sk.delivered
        sk.rack_reo_wnd_persist = TCP_RACK_RECOVERY_THRESH
    elif not sk.rack_reo_wnd_persist:
        sk.rack_reo_wnd_steps = 1


# ---- TLP (tcp_output.c) ------------------------------------------------------------------

def tcp_rto_delta_us(sk: TcpSock) -> int:
    """How far in the future the RTO of the head is (``tcp_rto_delta_us``)."""
    head = sk.rtx_queue[0]
    return sk.icsk_rto - (sk.net.clock.now_us() - head.tstamp)


def tcp_schedule_loss_probe(sk: TcpSock, advancing_rto: bool) -> bool:
    """Arm the probe timeout, 2*srtt (+ rto_min for a lone segment, which may wait for a
    delayed ACK; else + 2 ms), never later than the RTO (``tcp_schedule_loss_probe``)."""
    early_retrans = sk.net.sysctl.tcp_early_retrans
    if (early_retrans not in (3, 4) or not sk.packets_out or not sk.sack_ok
            or sk.icsk_ca_state not in (TCP_CA_Open, TCP_CA_CWR)):
        return False
    if sk.srtt_us:
        timeout_us = sk.srtt_us >> 2
        if sk.packets_out == 1:
            timeout_us += tcp_rto_min_us(sk)
        else:
            timeout_us += TCP_TIMEOUT_MIN_US
        timeout = jiffies_round(timeout_us)
    else:
        timeout = TCP_TIMEOUT_INIT
    rto_delta_us = sk.icsk_rto if advancing_rto else tcp_rto_delta_us(sk)
    if rto_delta_us > 0:
        timeout = min(timeout, jiffies_round(rto_delta_us))
    _output.tcp_reset_xmit_timer(sk, ICSK_TIME_LOSS_PROBE, timeout)
    return True


def tcp_send_loss_probe(sk: TcpSock) -> None:
    """The probe timer fired: send new data if the window allows, else retransmit the last
    segment; remember snd_nxt in tlp_high_seq (``tcp_send_loss_probe``)."""
    from .output import (
        TCP_NAGLE_OFF,
        __tcp_retransmit_skb,
        tcp_current_mss,
        tcp_rearm_rto,
        tcp_wnd_end,
        tcp_write_xmit,
    )

    net = sk.net
    if not sk.tlp_high_seq:
        sk.tlp_retrans = False
        mss = tcp_current_mss(sk)
        q = sk.write_queue
        sent = False
        if q and q[0].end_seq <= tcp_wnd_end(sk):
            pcount = sk.packets_out
            tcp_write_xmit(sk, mss, TCP_NAGLE_OFF, 2)
            sent = sk.packets_out > pcount
            if not sent:
                tcp_rearm_rto(sk)
                return
        if not sent:
            if not sk.rtx_queue:
                sk.icsk_pending = 0
                return
            skb = sk.rtx_queue[-1]
            if __tcp_retransmit_skb(sk, skb):
                tcp_rearm_rto(sk)
                return
            sk.tlp_retrans = True
        sk.tlp_high_seq = sk.snd_nxt
        net.mib["TcpExtTCPLossProbes"] += 1
        sk.icsk_pending = 0
    tcp_rearm_rto(sk)


def tcp_process_tlp_ack(sk: TcpSock, ack: int, flag: int) -> None:
    """Did the probe repair a loss (``tcp_process_tlp_ack``, tcp_input.c)?"""
    from .input import (
        FLAG_DATA_SACKED,
        FLAG_DSACK_TLP,
        FLAG_NOT_DUP,
        FLAG_SND_UNA_ADVANCED,
        tcp_end_cwnd_reduction,
        tcp_init_cwnd_reduction,
        tcp_set_ca_state,
        tcp_try_keep_open,
    )

    if ack < sk.tlp_high_seq:
        return
    if not sk.tlp_retrans:
        sk.tlp_high_seq = 0
    elif flag & FLAG_DSACK_TLP:
        sk.tlp_high_seq = 0
    elif ack > sk.tlp_high_seq:
        tcp_init_cwnd_reduction(sk)
        tcp_set_ca_state(sk, TCP_CA_CWR)
        tcp_end_cwnd_reduction(sk)
        tcp_try_keep_open(sk)
        sk.net.mib["TcpExtTCPLossProbeRecovery"] += 1
    elif not flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED):
        sk.tlp_high_seq = 0


# output.py imports this module (cycle): bound as a module, its functions looked up at call time
from . import output as _output  # noqa: E402
