"""tcp_input.c: the receive side — established fast/slow path, state machine, ACKs, data, FIN.

``tcp_rcv_established`` handles ESTABLISHED (header prediction first, then the slow path);
``tcp_rcv_state_process`` every other state. ``tcp_ack`` processes the ACK field,
``tcp_data_queue`` the payload (receive queue, out-of-order queue, SACK blocks), ``tcp_fin`` the
FIN. Loss recovery follows Linux: the SACK scoreboard (``tcp_sacktag_write_queue``), DSACK and
undo, ``tcp_fastretrans_alert`` with NewReno dupacks or RACK (recovery.py), PRR, F-RTO.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque

from ..packet.tcp import ACK, CWR, ECE, FIN, RST, SYN, URG
from ..skb import (
    SKB,
    TCPCB_EVER_RETRANS,
    TCPCB_LOST,
    TCPCB_RETRANS,
    TCPCB_SACKED_ACKED,
    TCPCB_SACKED_RETRANS,
)
from . import sock as S
from .cong import tcp_init_congestion_control
from .ecn import (
    tcp_data_ecn_check,
    tcp_ecn_accept_cwr,
    tcp_ecn_queue_cwr,
    tcp_ecn_rcv_ecn_echo,
    tcp_ecn_rcv_syn,
    tcp_ecn_rcv_synack,
    tcp_ecn_send_synack,
    tcp_ecn_withdraw_cwr,
)
from .metrics import tcp_init_cwnd
from .minisocks import tcp_time_wait
from .output import (
    TCP_CHRONO_BUSY,
    __tcp_select_window,
    tcp_check_space,
    tcp_chrono_stop,
    tcp_current_mss,
    tcp_data_snd_check,
    tcp_fragment_rtx,
    tcp_full_space,
    tcp_rearm_rto,
    tcp_retransmit_skb,
    tcp_send_ack,
    tcp_send_delayed_ack,
    tcp_slow_start_after_idle_check,
    tcp_sndbuf_expand,
    tcp_space,
    tcp_sync_mss,
    tcp_time_stamp_ts,
    tcp_transmit_skb,
    tcp_tso_segs,
)
from .pacing import tcp_pacing_check
from .rate import RateSample, tcp_rate_gen, tcp_rate_skb_delivered
from .recovery import (
    TCP_RACK_LOSS_DETECTION,
    TCP_RACK_RECOVERY_THRESH,
    tcp_process_tlp_ack,
    tcp_rack_advance,
    tcp_rack_mark_lost,
    tcp_rack_skb_timeout,
    tcp_rack_update_reo_wnd,
    tcp_schedule_loss_probe,
    tcp_tsorted_del,
)
from .rtt import FLAG_ACK_MAYBE_DELAYED, tcp_ack_update_rtt
from .sock import (
    ICSK_ACK_NOW,
    ICSK_ACK_PUSHED,
    ICSK_ACK_PUSHED2,
    ICSK_ACK_SCHED,
    TCP_ATO_MIN,
    TCP_CA_CWR,
    TCP_INFINITE_SSTHRESH,
    TCP_MAX_QUICKACKS,
    TCP_PAWS_24DAYS,
    TCP_PAWS_WINDOW,
    TCP_CA_Disorder,
    TCP_CA_Loss,
    TCP_CA_Open,
    TCP_CA_Recovery,
    TcpSock,
    jiffies_round,
    sk_wake,
    ts_before,
    unwrap,
)
from .tcp import tcp_done, tcp_done_with_error, tcp_set_state
from .timer import inet_csk_reset_keepalive_timer
from .urgent import tcp_urg

# tcp_ack flags
FLAG_DATA = 0x01
FLAG_WIN_UPDATE = 0x02
FLAG_DATA_ACKED = 0x04
FLAG_RETRANS_DATA_ACKED = 0x08
FLAG_SYN_ACKED = 0x10
FLAG_DATA_SACKED = 0x20
FLAG_ECE = 0x40
FLAG_LOST_RETRANS = 0x80
FLAG_SLOWPATH = 0x100
FLAG_ORIG_SACK_ACKED = 0x200
FLAG_SND_UNA_ADVANCED = 0x400
FLAG_DSACKING_ACK = 0x800
FLAG_SET_XMIT_TIMER = 0x1000
FLAG_SACK_RENEGING = 0x2000
FLAG_UPDATE_TS_RECENT = 0x4000
FLAG_NO_CHALLENGE_ACK = 0x8000
FLAG_DSACK_TLP = 0x20000
FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED
FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED
FLAG_CA_ALERT = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK
FLAG_FORWARD_PROGRESS = FLAG_ACKED | FLAG_DATA_SACKED

# what tcp_xmit_recovery should send
REXMIT_NONE = 0
REXMIT_LOST = 1
REXMIT_NEW = 2

ECONNREFUSED = 111
ECONNRESET = 104
EPIPE = 32


def _ensure_deque(sk: TcpSock, name: str) -> deque:
    q = getattr(sk, name)
    if not q:
        q = deque()
        setattr(sk, name, q)
    return q


# ---- quick ACK / delayed ACK engine --------------------------------------------------------

def tcp_incr_quickack(sk: TcpSock, max_quickacks: int) -> None:
    """Allow up to ``max_quickacks`` immediate ACKs (``tcp_incr_quickack``)."""
    quickacks = sk.rcv_wnd // (2 * sk.ack_rcv_mss) if sk.ack_rcv_mss else 0
    if quickacks == 0:
        quickacks = 2
    quickacks = min(quickacks, max_quickacks)
    if quickacks > sk.ack_quick:
        sk.ack_quick = quickacks


def tcp_enter_quickack_mode(sk: TcpSock, max_quickacks: int) -> None:
    """ACK every segment for a while and leave pingpong mode (``tcp_enter_quickack_mode``)."""
    tcp_incr_quickack(sk, max_quickacks)
    sk.ack_pingpong = 0
    sk.ack_ato = TCP_ATO_MIN


def tcp_in_quickack_mode(sk: TcpSock) -> bool:
    """ACK at once? A route with ``quickack 1``, or quick ACKs left outside pingpong mode
    (``tcp_in_quickack_mode``)."""
    dst = sk.dst
    if dst is not None and dst.quickack:
        return True
    return bool(sk.ack_quick) and not sk.in_pingpong_mode()


def inet_csk_schedule_ack(sk: TcpSock) -> None:
    sk.ack_pending |= ICSK_ACK_SCHED


def tcp_measure_rcv_mss(sk: TcpSock, skb: SKB) -> None:
    """Estimate the peer's MSS from segment sizes, for delayed-ACK decisions (``tcp_measure_rcv_mss``).

    A GSO/GRO skb counts as its ``gso_size``."""
    lss = sk.ack_last_seg_size
    sk.ack_last_seg_size = 0
    n = skb.gso_size or len(skb.data)
    if n >= sk.ack_rcv_mss:
        sk.ack_rcv_mss = min(n, sk.advmss) if sk.advmss else n
    else:
        n += 20 + (skb.doff * 4 - 20 if skb.doff else 0) - 20
        if n >= 536 or (n >= 88 and not (skb.flags & 0x08)):   # TCP_MSS_DEFAULT / TCP_MIN_MSS, !PSH
            n -= 0
            if n == lss:
                sk.ack_rcv_mss = n
                return
        if skb.flags & 0x08:
            sk.ack_pending |= ICSK_ACK_PUSHED2 if sk.ack_pending & ICSK_ACK_PUSHED else ICSK_ACK_PUSHED
        sk.ack_last_seg_size = n


def tcp_rcv_rtt_update(sk: TcpSock, sample: int, win_dep: bool) -> None:
    """Receiver-side RTT estimate, x8 (``tcp_rcv_rtt_update``): a running minimum."""
    old = sk.rcv_rtt_us
    m = sample << 3
    if old == 0 or m < old:
        new = m
    else:
        if win_dep or sk.rcv_nxt != sk.copied_seq:
            return
        new = old - (old >> 3) + sample
    sk.rcv_rtt_us = new


def tcp_rcv_rtt_measure(sk: TcpSock, now: int) -> None:
    """Per-window RTT sample when timestamps are off (``tcp_rcv_rtt_measure``)."""
    if sk.rcv_rtt_time and sk.rcv_nxt >= sk.rcv_rtt_seq:
        tcp_rcv_rtt_update(sk, now - sk.rcv_rtt_time, True)
    elif sk.rcv_rtt_time:
        return
    sk.rcv_rtt_seq = sk.rcv_nxt + sk.rcv_wnd
    sk.rcv_rtt_time = now


def tcp_rcv_rtt_measure_ts(sk: TcpSock, skb: SKB) -> None:
    """RTT sample from the echoed timestamp of a data segment (``tcp_rcv_rtt_measure_ts``)."""
    if sk.saw_tstamp and sk.rcv_tsecr and skb.data:
        delta = (tcp_time_stamp_ts(sk) - sk.rcv_tsecr) & 0xFFFFFFFF
        if delta < 0x80000000:
            tcp_rcv_rtt_update(sk, max(delta * 1000, 1), False)


def tcp_init_buffer_space(sk: TcpSock) -> None:
    """Send buffer sized for the initial cwnd, window_clamp and rcv_ssthresh bounded by the
    receive buffer, and the starting point of receive-buffer autotuning
    (``tcp_init_buffer_space``)."""
    if not sk.userlocks & 1:                        # SOCK_SNDBUF_LOCK
        tcp_sndbuf_expand(sk)
    # the window clamp no larger than the buffer can offer, less tcp_app_win's share and one
    # segment kept back; the receive slow-start threshold under the clamp
    advmss = sk.advmss
    maxwin = tcp_full_space(sk)
    app_win = sk.net.sysctl.tcp_app_win
    if sk.window_clamp >= maxwin:
        sk.window_clamp = maxwin
        if app_win and maxwin > 4 * advmss:
            sk.window_clamp = max(maxwin - (maxwin >> app_win), 4 * advmss)
    if app_win and sk.window_clamp > 2 * advmss and sk.window_clamp + advmss > maxwin:
        sk.window_clamp = max(2 * advmss, maxwin - advmss)
    sk.rcv_ssthresh = min(sk.rcv_ssthresh, sk.window_clamp)
    sk.rcvq_space = min(sk.rcv_ssthresh, sk.rcv_wnd, S.TCP_INIT_CWND * (sk.advmss or 536))
    sk.rcvq_space_time = sk.net.clock.now_us()
    sk.rcvq_space_seq = sk.copied_seq


def tcp_rcv_space_adjust(sk: TcpSock) -> None:
    """Dynamic right-sizing: grow sk_rcvbuf to 2x what the reader drained per RTT, plus
    room for the sender's growth (``tcp_rcv_space_adjust``, tcp_moderate_rcvbuf)."""
    now = sk.net.clock.now_us()
    elapsed = now - sk.rcvq_space_time
    rtt = sk.rcv_rtt_us
    if rtt == 0 or elapsed < (rtt >> 3):
        return
    copied = sk.copied_seq - sk.rcvq_space_seq - (sk.rcv_nxt - sk.copied_seq)
    if copied > sk.rcvq_space and sk.rcvq_space:
        sc = sk.net.sysctl
        if sc.tcp_moderate_rcvbuf and not sk.userlocks & 2:
            rcvwin = (copied << 1) + 16 * sk.advmss
            grow = rcvwin * (copied - sk.rcvq_space) // sk.rcvq_space
            rcvwin += grow << 1
            rcvbuf = min((rcvwin << S.TCP_RMEM_TO_WIN_SCALE) // sk.scaling_ratio, sc.tcp_rmem[2])
            if rcvbuf > sk.sk_rcvbuf:
                sk.sk_rcvbuf = rcvbuf
                sk.window_clamp = (rcvbuf * sk.scaling_ratio) >> S.TCP_RMEM_TO_WIN_SCALE
        sk.rcvq_space = copied
    sk.rcvq_space_seq = sk.copied_seq
    sk.rcvq_space_time = now


def tcp_event_data_recv(sk: TcpSock, skb: SKB) -> None:
    """Data arrived: adapt ato, grow the window (``tcp_event_data_recv``)."""
    inet_csk_schedule_ack(sk)
    tcp_measure_rcv_mss(sk, skb)
    now = sk.net.clock.now_us()
    tcp_rcv_rtt_measure(sk, now)
    if not sk.ack_ato:
        tcp_incr_quickack(sk, TCP_MAX_QUICKACKS)
        sk.ack_ato = TCP_ATO_MIN
    else:
        m = now - sk.ack_lrcvtime
        if m <= TCP_ATO_MIN // 2:
            sk.ack_ato = (sk.ack_ato >> 1) + TCP_ATO_MIN // 2
        elif m < sk.ack_ato:
            sk.ack_ato = (sk.ack_ato >> 1) + m
            if sk.ack_ato > sk.icsk_rto:
                sk.ack_ato = sk.icsk_rto
        elif m > sk.icsk_rto:
            tcp_incr_quickack(sk, TCP_MAX_QUICKACKS)
    sk.ack_lrcvtime = now
    if sk.ecn_flags:
        tcp_data_ecn_check(sk, skb)
    if len(skb.data) >= 128:
        tcp_grow_window(sk, skb)


def tcp_grow_window(sk: TcpSock, skb: SKB) -> None:
    """Raise rcv_ssthresh as data shows the buffer can take it (``tcp_grow_window``)."""
    room = min(sk.window_clamp, tcp_space(sk)) - sk.rcv_ssthresh
    if room <= 0:
        return
    incr = max(2 * sk.advmss, 2 * len(skb.data))
    sk.rcv_ssthresh += min(room, incr)
    sk.ack_quick |= 1


def __tcp_ack_snd_check(sk: TcpSock, ofo_possible: bool) -> None:
    """ACK now (two full segments, quickack, ACK_NOW) or schedule a delayed ACK."""
    if (((sk.rcv_nxt - sk.rcv_wup) > sk.ack_rcv_mss
         and ((sk.rcv_nxt - sk.copied_seq) < sk.sk_rcvlowat
              or __tcp_select_window(sk) >= sk.rcv_wnd))
            or tcp_in_quickack_mode(sk)
            or sk.ack_pending & ICSK_ACK_NOW):
        tcp_send_ack(sk)
        return
    if not ofo_possible or not sk.ofo_queue:
        tcp_send_delayed_ack(sk)
        return
    # out-of-order data: the first dupacks go at once (compressed SACK is not modelled)
    tcp_send_ack(sk)


def tcp_ack_snd_check(sk: TcpSock) -> None:
    if not (sk.ack_pending & ICSK_ACK_SCHED):
        return
    __tcp_ack_snd_check(sk, True)


# ---- timestamps and PAWS (RFC 7323) --------------------------------------------------------

def tcp_store_ts_recent(sk: TcpSock) -> None:
    sk.ts_recent = sk.rcv_tsval
    sk.ts_recent_stamp = sk.net.clock.now_us() // 1_000_000


def tcp_replace_ts_recent(sk: TcpSock, seq: int) -> None:
    """Remember the peer's TSval if this segment covers rcv_wup (``tcp_replace_ts_recent``)."""
    if sk.saw_tstamp and seq <= sk.rcv_wup:
        if not ts_before(sk.rcv_tsval, sk.ts_recent) or _paws_expired(sk):
            tcp_store_ts_recent(sk)


def _paws_expired(sk: TcpSock) -> bool:
    return sk.net.clock.now_us() // 1_000_000 >= sk.ts_recent_stamp + TCP_PAWS_24DAYS


def tcp_paws_check(sk: TcpSock, paws_win: int) -> bool:
    """True if the segment passes PAWS (``tcp_paws_check``)."""
    d = (sk.ts_recent - sk.rcv_tsval) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    if d <= paws_win:
        return True
    if _paws_expired(sk):
        return True
    if not sk.ts_recent:
        return True
    return False


def tcp_may_update_window(sk: TcpSock, ack: int, ack_seq: int, nwin: int) -> bool:
    """RFC 9293 SND.WL1/WL2 rule (``tcp_may_update_window``)."""
    return (ack > sk.snd_una or ack_seq > sk.snd_wl1
            or (ack_seq == sk.snd_wl1 and (nwin > sk.snd_wnd or not nwin)))


def tcp_disordered_ack(sk: TcpSock, skb: SKB) -> bool:
    """A pure duplicate ACK that PAWS may let through (``tcp_disordered_ack``)."""
    seq = skb.seq
    if not (skb.flags & ACK and seq == skb.end_seq and seq == sk.rcv_nxt):
        return False
    if skb.ack_seq != sk.snd_una:
        return False
    if tcp_may_update_window(sk, skb.ack_seq, seq, skb.window << sk.snd_wscale):
        return False
    d = (sk.ts_recent - sk.rcv_tsval) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    return d <= (sk.icsk_rto // 1000 * 1024) // 1000


def tcp_parse_rx_opts(sk: TcpSock, skb: SKB) -> None:
    """Take the options that count on this connection (``tcp_fast_parse_options``)."""
    o = skb.opts
    if o is not None and o.saw_tstamp and sk.tstamp_ok:
        sk.saw_tstamp = True
        sk.rcv_tsval = o.tsval
        sk.rcv_tsecr = o.tsecr
    else:
        sk.saw_tstamp = False
    sk.rx_opt_sack = o.sack if (o is not None and sk.sack_ok) else ()


# ---- challenge ACKs and dupacks ------------------------------------------------------------

def tcp_oow_rate_limited(sk: TcpSock, skb: SKB | None, mib: str) -> bool:
    """Rate-limit ACKs to out-of-window segments per socket (``tcp_oow_rate_limited``)."""
    if skb is not None and skb.data and not (skb.flags & SYN):
        return False
    now = sk.net.clock.now_us()
    limit = sk.net.sysctl.tcp_invalid_ratelimit * 1000
    if sk.last_oow_ack_time:
        elapsed = now - sk.last_oow_ack_time
        if 0 <= elapsed < limit:
            sk.net.mib["TcpExt" + mib] += 1
            return True
    sk.last_oow_ack_time = now
    return False


def tcp_send_challenge_ack(sk: TcpSock) -> None:
    """RFC 5961 challenge ACK, rate limited (``tcp_send_challenge_ack``)."""
    if tcp_oow_rate_limited(sk, None, "TCPACKSkippedChallenge"):
        return
    sk.net.mib["TcpExtTCPChallengeACK"] += 1
    tcp_send_ack(sk)


def tcp_dsack_set(sk: TcpSock, seq: int, end_seq: int) -> None:
    """Report a duplicate segment with a D-SACK block (``tcp_dsack_set``)."""
    if sk.sack_ok and sk.net.sysctl.tcp_dsack:
        sk.net.mib["TcpExtTCPDSACKOldSent" if seq < sk.rcv_nxt else "TcpExtTCPDSACKOfoSent"] += 1
        sk.dsack = 1
        sk.duplicate_sack = (seq, end_seq)


def tcp_dsack_extend(sk: TcpSock, seq: int, end_seq: int) -> None:
    if not sk.dsack:
        tcp_dsack_set(sk, seq, end_seq)
    elif sk.duplicate_sack is not None:
        a, b = sk.duplicate_sack
        sk.duplicate_sack = (min(a, seq), max(b, end_seq))


def tcp_send_dupack(sk: TcpSock, skb: SKB) -> None:
    """ACK a segment we already had, with a D-SACK (``tcp_send_dupack``)."""
    if skb.end_seq != skb.seq and skb.seq < sk.rcv_nxt:
        sk.net.mib["TcpExtDelayedACKLost"] += 1
        tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)
        if sk.sack_ok and sk.net.sysctl.tcp_dsack:
            end_seq = skb.end_seq
            if end_seq > sk.rcv_nxt:
                end_seq = sk.rcv_nxt
            tcp_dsack_set(sk, skb.seq, end_seq)
    tcp_send_ack(sk)


def tcp_sequence(sk: TcpSock, seq: int, end_seq: int) -> bool:
    """Is the segment inside the receive window (``tcp_sequence``)?"""
    return end_seq >= sk.rcv_wup and seq <= sk.rcv_nxt + sk.tcp_receive_window()


def tcp_reset_check(sk: TcpSock, skb: SKB) -> bool:
    return skb.seq == sk.rcv_nxt - 1 and sk.state in (S.TCP_CLOSE_WAIT, S.TCP_LAST_ACK,
                                                        S.TCP_CLOSING)


def tcp_reset(sk: TcpSock) -> None:
    """A valid RST arrived: report the error the state implies and close (``tcp_reset``)."""
    net = sk.net
    tp = net.trace.receive_reset
    if tp.subs:
        tp.emit(sk, net.clock.now_us())
    state = sk.state
    if state == S.TCP_SYN_SENT:
        err = ECONNREFUSED
    elif state == S.TCP_CLOSE_WAIT:
        err = EPIPE
    elif state == S.TCP_CLOSE:
        return
    else:
        err = ECONNRESET
    tcp_write_queue_purge(sk)
    tcp_done_with_error(sk, err)


def tcp_write_queue_purge(sk: TcpSock) -> None:
    """Drop everything queued for sending (``tcp_write_queue_purge``)."""
    sk.write_queue = ()
    sk.rtx_queue = ()
    sk.sk_wmem_queued = 0
    sk.packets_out = sk.retrans_out = sk.sacked_out = sk.lost_out = 0


def tcp_validate_incoming(sk: TcpSock, skb: SKB, syn_inerr: bool) -> bool:
    """PAWS, sequence, RST and SYN checks (RFC 9293 3.10.7.4 steps 1-4, RFC 5961)."""
    net = sk.net
    flags = skb.flags
    if sk.saw_tstamp and not tcp_paws_check(sk, TCP_PAWS_WINDOW):
        if not tcp_disordered_ack(sk, skb):
            if not flags & RST:
                if flags & SYN:
                    return _syn_challenge(sk, syn_inerr)
                net.mib["TcpExtPAWSEstab"] += 1
                if not tcp_oow_rate_limited(sk, skb, "TCPACKSkippedPAWS"):
                    tcp_send_dupack(sk, skb)
                net.drop(skb, "TCP_RFC7323_PAWS")
                return False
    if not tcp_sequence(sk, skb.seq, skb.end_seq):
        if not flags & RST:
            if flags & SYN:
                return _syn_challenge(sk, syn_inerr)
            if not tcp_oow_rate_limited(sk, skb, "TCPACKSkippedSeq"):
                tcp_send_dupack(sk, skb)
        elif tcp_reset_check(sk, skb):
            tcp_reset(sk)
            return False
        net.drop(skb, "TCP_INVALID_SEQUENCE")
        return False
    if flags & RST:
        if skb.seq == sk.rcv_nxt or tcp_reset_check(sk, skb):
            tcp_reset(sk)
            return False
        if sk.sack_ok and sk.num_sacks:
            max_sack = max(e for _, e in sk.selective_acks)
            if skb.seq == max_sack:
                tcp_reset(sk)
                return False
        tcp_send_challenge_ack(sk)
        net.drop(skb, "TCP_RESET")
        return False
    if flags & SYN:
        if (sk.state == S.TCP_SYN_RECV and flags & ACK and skb.seq + 1 == skb.end_seq
                and skb.seq + 1 == sk.rcv_nxt and skb.ack_seq == sk.snd_nxt):
            return True
        return _syn_challenge(sk, syn_inerr)
    return True


def _syn_challenge(sk: TcpSock, syn_inerr: bool) -> bool:
    if syn_inerr:
        sk.net.mib["TcpInErrs"] += 1
    sk.net.mib["TcpExtTCPSYNChallenge"] += 1
    tcp_send_challenge_ack(sk)
    return False


# ---- the ACK field -------------------------------------------------------------------------

def tcp_ack_update_window(sk: TcpSock, skb: SKB, ack: int, ack_seq: int) -> int:
    """Take the peer's window if the WL1/WL2 rule allows (``tcp_ack_update_window``)."""
    flag = 0
    nwin = skb.window
    if not (skb.flags & SYN):
        nwin <<= sk.snd_wscale
    if tcp_may_update_window(sk, ack, ack_seq, nwin):
        flag |= FLAG_WIN_UPDATE
        sk.snd_wl1 = ack_seq
        if sk.snd_wnd != nwin:
            sk.snd_wnd = nwin
            sk.pred_flags = 0
            if sk.write_queue:
                # a window opening after idle restarts cwnd like new data does
                tcp_slow_start_after_idle_check(sk)
            if nwin > sk.max_window:
                sk.max_window = nwin
                tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
    sk.snd_una = ack
    return flag


class SackState:
    """``struct tcp_sacktag_state``: what one ACK's SACK/ACK processing found."""

    __slots__ = ("flag", "reord", "first_sackt", "last_sackt", "sack_delivered", "rate")

    def __init__(self, reord: int, rate: RateSample | None = None) -> None:
        self.rate = rate
        self.flag = 0
        self.reord = reord
        self.first_sackt = 0
        self.last_sackt = 0
        self.sack_delivered = 0


_NO_SACK_STATE = SackState(0)


def tcp_highest_sack_seq(sk: TcpSock) -> int:
    """Sequence just above the highest SACKed segment, snd_una if none (``tcp_highest_sack_seq``)."""
    if not sk.sacked_out:
        return sk.snd_una
    return max(sk.highest_sack_seq, sk.snd_una)


def tcp_count_delivered(sk: TcpSock, delivered: int) -> None:
    """``tcp_count_delivered``."""
    sk.delivered += delivered


def tcp_check_sack_reordering(sk: TcpSock, low_seq: int, ts: int) -> None:
    """Data below the highest SACK arrived late: raise ``reordering`` to the distance seen
    (``tcp_check_sack_reordering``)."""
    mss = sk.mss_cache
    fack = tcp_highest_sack_seq(sk)
    if low_seq >= fack:
        return
    metric = fack - low_seq
    if metric > sk.reordering * mss and mss:
        sk.reordering = min((metric + mss - 1) // mss, sk.net.sysctl.tcp_max_reordering)
    sk.reord_seen += 1
    sk.net.mib["TcpExtTCPTSReorder" if ts else "TcpExtTCPSACKReorder"] += 1


def tcp_is_sackblock_valid(sk: TcpSock, is_dsack: bool, start: int, end: int) -> bool:
    """Reject SACK blocks beyond snd_nxt or too far below snd_una (``tcp_is_sackblock_valid``)."""
    if end > sk.snd_nxt or start >= end:
        return False
    if start >= sk.snd_una:
        return True
    if not is_dsack or not sk.undo_marker:
        return False
    if end > sk.snd_una:
        return False
    if start >= sk.undo_marker:
        return True
    if end <= sk.undo_marker:
        return False
    return end - start <= sk.max_window


def tcp_dsack_seen(sk: TcpSock, start: int, end: int, st: SackState) -> int:
    """Count the segments a DSACK reports (``tcp_dsack_seen``); 0 if dubious."""
    if start >= end:
        return 0
    seq_len = end - start
    if seq_len > sk.max_window:
        return 0
    dup_segs = 1
    if seq_len > sk.mss_cache:
        dup_segs = -(-seq_len // sk.mss_cache)
    elif sk.tlp_high_seq and sk.tlp_high_seq == end:
        st.flag |= FLAG_DSACK_TLP
    sk.dsack_dups += dup_segs
    if sk.dsack_dups > sk.total_retrans:
        return 0
    sk.dsack_seen_flag = True
    if sk.reord_seen and not st.flag & FLAG_DSACK_TLP:
        sk.rack_dsack_seen = True
    st.flag |= FLAG_DSACKING_ACK
    st.sack_delivered += dup_segs
    return dup_segs


def tcp_check_dsack(sk: TcpSock, ack: int, blocks: list, prior_snd_una: int, st: SackState) -> bool:
    """Is the first block a D-SACK (RFC 2883)? Count it for undo (``tcp_check_dsack``)."""
    start0, end0 = blocks[0]
    net = sk.net
    if start0 < ack:
        net.mib["TcpExtTCPDSACKRecv"] += 1
    elif len(blocks) > 1:
        start1, end1 = blocks[1]
        if end0 > end1 or start0 < start1:
            return False
        net.mib["TcpExtTCPDSACKOfoRecv"] += 1
    else:
        return False
    dup_segs = tcp_dsack_seen(sk, start0, end0, st)
    if not dup_segs:
        net.mib["TcpExtTCPDSACKIgnoredDubious"] += 1
        return False
    net.mib["TcpExtTCPDSACKRecvSegs"] += dup_segs
    if (sk.undo_marker and sk.undo_retrans > 0 and end0 <= prior_snd_una
            and end0 > sk.undo_marker):
        sk.undo_retrans = max(0, sk.undo_retrans - dup_segs)
    return True


def tcp_sacktag_one(sk: TcpSock, st: SackState, skb: SKB, dup_sack: bool) -> None:
    """Apply one SACK (or D-SACK) to one skb and keep the counters (``tcp_sacktag_one``)."""
    sacked = skb.sacked
    start_seq, end_seq = skb.seq, skb.end_seq
    if dup_sack and sacked & TCPCB_RETRANS:
        if sk.undo_marker and sk.undo_retrans > 0 and end_seq > sk.undo_marker:
            sk.undo_retrans -= 1
        if sacked & TCPCB_SACKED_ACKED and start_seq < st.reord:
            st.reord = start_seq
    if end_seq <= sk.snd_una:
        return
    if not sacked & TCPCB_SACKED_ACKED:
        tcp_rack_advance(sk, sacked, skb.tx_seq, skb.tstamp)
        if sacked & TCPCB_SACKED_RETRANS:
            # a retransmission not marked lost may still be in flight: keep its RETRANS
            if sacked & TCPCB_LOST:
                sacked &= ~(TCPCB_LOST | TCPCB_SACKED_RETRANS)
                sk.lost_out -= 1
                sk.retrans_out -= 1
        else:
            if not sacked & TCPCB_RETRANS:
                # a never-retransmitted segment in a hole: reordering
                if start_seq < tcp_highest_sack_seq(sk) and start_seq < st.reord:
                    st.reord = start_seq
                if end_seq <= sk.high_seq:
                    st.flag |= FLAG_ORIG_SACK_ACKED
                if not st.first_sackt:
                    st.first_sackt = skb.tstamp
                st.last_sackt = skb.tstamp
            if sacked & TCPCB_LOST:
                sacked &= ~TCPCB_LOST
                sk.lost_out -= 1
        sacked |= TCPCB_SACKED_ACKED
        st.flag |= FLAG_DATA_SACKED
        sk.sacked_out += 1
        st.sack_delivered += 1
        if end_seq > sk.highest_sack_seq or sk.sacked_out == 1:
            sk.highest_sack_seq = end_seq
        tcp_tsorted_del(sk, skb)
    if dup_sack and sacked & TCPCB_SACKED_RETRANS:
        sacked &= ~TCPCB_SACKED_RETRANS
        sk.retrans_out -= 1
    skb.sacked = sacked
    if st.rate is not None:
        tcp_rate_skb_delivered(sk, skb, st.rate)     # from tcp_sacktag_walk


def tcp_match_skb_to_sack(sk: TcpSock, skb: SKB, start: int, end: int) -> bool:
    """Does the SACK block cover ``skb``? An skb of more than one MSS (queued before the MSS
    shrank) is split on an MSS boundary so the covered part can be tagged
    (``tcp_match_skb_to_sack`` with ``tcp_fragment(TCP_FRAG_IN_RTX_QUEUE)``)."""
    in_sack = start <= skb.seq and skb.end_seq <= end
    mss = sk.mss_cache
    if not in_sack and len(skb.data) > mss and skb.end_seq > start:
        in_sack = start <= skb.seq
        if not in_sack:
            pkt_len = start - skb.seq
            if pkt_len < mss:
                pkt_len = mss
        else:
            pkt_len = end - skb.seq
            if pkt_len < mss:
                return False
        if pkt_len > mss:
            new_len = (pkt_len // mss) * mss
            if not in_sack and new_len < pkt_len:
                new_len += mss
            pkt_len = new_len
        if pkt_len >= len(skb.data) and not in_sack:
            return False
        if pkt_len < len(skb.data):
            tcp_fragment_rtx(sk, skb, pkt_len)
    return in_sack


def tcp_skb_spurious_retrans(sk: TcpSock, skb: SKB) -> bool:
    """The ACK echoes a timestamp older than the skb's retransmission: the original was
    delivered (``tcp_skb_spurious_retrans``)."""
    return bool(skb.sacked & TCPCB_RETRANS and sk.saw_tstamp and sk.rcv_tsecr
                and ts_before((sk.rcv_tsecr - sk.tsoffset) & 0xFFFFFFFF,
                              (skb.tstamp // 1000) & 0xFFFFFFFF))


def _rtx_index(q, seq: int) -> int:
    """First index in the retransmit queue whose skb ends above ``seq`` (an rb-tree lookup)."""
    return bisect_right(q, seq, key=_end_seq)


def _end_seq(skb: SKB) -> int:
    return skb.end_seq


def tcp_sacktag_walk(sk: TcpSock, st: SackState, start: int, end: int, dup_sack: bool) -> None:
    """Tag the skbs inside [start, end) (``tcp_sacktag_walk``)."""
    q = sk.rtx_queue
    i = _rtx_index(q, start)
    while i < len(q):
        skb = q[i]
        if skb.seq >= end:
            break
        if tcp_match_skb_to_sack(sk, skb, start, end):
            tcp_sacktag_one(sk, st, skb, dup_sack)
        i += 1


def tcp_sacktag_write_queue(sk: TcpSock, ack: int, prior_snd_una: int, st: SackState) -> int:
    """Mark SACKed segments on the retransmit queue (``tcp_sacktag_write_queue``).

    Blocks are sorted; the parts already covered by the previous ACK's blocks
    (``recv_sack_cache``) are skipped, so a long SACK scoreboard costs only its new edges.
    """
    ref = sk.snd_una
    blocks = [(unwrap(a, ref), unwrap(b, ref)) for a, b in sk.rx_opt_sack]
    net = sk.net
    found_dup = tcp_check_dsack(sk, ack, blocks, prior_snd_una, st)
    if not sk.packets_out or not sk.rtx_queue:
        sk.recv_sack_cache = []
        return st.flag
    used = []
    for i, (start, end) in enumerate(blocks):
        dup = found_dup and i == 0
        if not tcp_is_sackblock_valid(sk, dup, start, end):
            if dup:
                mib = "TcpExtTCPDSACKIgnoredOld" if sk.undo_marker else "TcpExtTCPDSACKIgnoredNoUndo"
            else:
                mib = "TcpExtTCPSACKDiscard"
            net.mib[mib] += 1
            continue
        if end <= prior_snd_una:
            continue
        used.append((start, end, dup))
    used.sort()
    cache = sk.recv_sack_cache
    for start, end, dup in used:
        if dup:
            tcp_sacktag_walk(sk, st, start, end, True)
            continue
        # skip what the previous ACK's blocks already covered
        cur = start
        for cs, ce in cache:
            if ce <= cur or cs >= end:
                continue
            if cs > cur:
                tcp_sacktag_walk(sk, st, cur, cs, False)
            cur = max(cur, ce)
            if cur >= end:
                break
        if cur < end:
            tcp_sacktag_walk(sk, st, cur, end, False)
    sk.recv_sack_cache = [(s, e) for s, e, d in used if not d]
    if sk.icsk_ca_state != TCP_CA_Loss or sk.undo_marker:
        tcp_check_sack_reordering(sk, st.reord, 0)
    return st.flag


def tcp_clean_rtx_queue(sk: TcpSock, prior_fack: int, prior_snd_una: int,
                        st: SackState, rs: RateSample | None = None,
                        ) -> tuple[int, int, int, int, int]:
    """Free acked segments; RTT sample by Karn's rule, else from SACKs (``tcp_clean_rtx_queue``).

    Returns (flag, packets acked, seq_rtt, sack_rtt, ca_rtt), the samples in us or -1.
    """
    flag = 0
    acked = 0
    first_ackt = last_ackt = None
    reord = sk.snd_nxt
    q = sk.rtx_queue
    snd_una = sk.snd_una
    now = sk.tcp_mstamp
    sack = sk.sack_ok
    ts = sk.tsorted
    rate_skb = None
    while q:
        skb = q[0]
        if skb.end_seq > snd_una:
            break
        q.popleft()
        if ts:
            ts.pop(skb, None)
        sacked = skb.sacked
        if sacked & TCPCB_RETRANS:
            if sacked & TCPCB_SACKED_RETRANS:
                sk.retrans_out -= 1
            flag |= FLAG_RETRANS_DATA_ACKED
        elif not sacked & TCPCB_SACKED_ACKED:
            last_ackt = skb.tstamp
            if first_ackt is None:
                first_ackt = last_ackt
            if skb.seq < reord:
                reord = skb.seq
            if skb.end_seq <= sk.high_seq:
                flag |= FLAG_ORIG_SACK_ACKED
        if sacked & TCPCB_SACKED_ACKED:
            sk.sacked_out -= 1
        elif sack:
            sk.delivered += 1
            if not tcp_skb_spurious_retrans(sk, skb):
                tcp_rack_advance(sk, sacked, skb.tx_seq, skb.tstamp)
        if sacked & TCPCB_LOST:
            sk.lost_out -= 1
        sk.packets_out -= 1
        acked += 1
        if skb.tx_delivered_mstamp and (rate_skb is None or skb.tstamp >= rate_skb.tstamp):
            rate_skb = skb              # the most recently sent: the one tcp_rate_skb_delivered keeps
        if skb.flags & SYN:
            flag |= FLAG_SYN_ACKED
            sk.retrans_stamp = 0          # tcp_clean_rtx_queue: the SYN's timeout clock stops
        else:
            flag |= FLAG_DATA_ACKED
        sk.sk_wmem_queued -= len(skb.data)
    if sk.sk_wmem_queued < 0:
        sk.sk_wmem_queued = 0
    if rate_skb is not None and rs is not None:
        # tcp_rate_skb_delivered per acked skb keeps the latest-sent one (queue order breaks
        # send-time ties by end_seq): calling it once for that skb leaves the same sample
        tcp_rate_skb_delivered(sk, rate_skb, rs)
    if q and q[0].sacked & TCPCB_SACKED_ACKED:
        flag |= FLAG_SACK_RENEGING
    # first_ackt = tcp_skb_timestamp_us(skb): a segment sent at t=0 is a valid sample. Karn
    # (RFC 6298 3): no sample from the ACK's timing if any segment it acks was retransmitted
    seq_rtt = sack_rtt = ca_rtt = -1
    if first_ackt is not None and not flag & FLAG_RETRANS_DATA_ACKED:
        seq_rtt = now - first_ackt
        ca_rtt = now - last_ackt
    if st.first_sackt:
        sack_rtt = now - st.first_sackt
        ca_rtt = now - st.last_sackt
    if flag & FLAG_ACKED:
        flag |= FLAG_SET_XMIT_TIMER
        m = sk.mtup
        if m is not None and m.probe_size and m.probe_seq_end <= sk.snd_una:
            from .mtu_probe import tcp_mtup_probe_success

            tcp_mtup_probe_success(sk)
        if not sack:
            tcp_remove_reno_sacks(sk, acked)
            # without SACK bits a cumulative ACK that covers a retransmission cannot show the
            # originals arrived: no F-RTO/undo evidence from it
            if flag & FLAG_RETRANS_DATA_ACKED:
                flag &= ~FLAG_ORIG_SACK_ACKED
        elif reord < prior_fack:
            tcp_check_sack_reordering(sk, reord, 0)
    elif q and sack_rtt >= 0 and sack_rtt > now - q[0].tstamp:
        flag |= FLAG_SET_XMIT_TIMER     # do not re-arm the RTO for SACKs of data sent later
    if not q:
        tcp_chrono_stop(sk, TCP_CHRONO_BUSY)
        # all acknowledged: give the queues' memory back (an idle socket stays small)
        sk.rtx_queue = ()
        sk.tsorted = None
        if not sk.write_queue:
            sk.write_queue = ()
    return flag, acked, seq_rtt, sack_rtt, ca_rtt


# ---- Reno (no SACK): duplicate ACKs stand for SACKed segments -----------------------------

def tcp_limit_reno_sacked(sk: TcpSock) -> bool:
    holes = min(max(sk.lost_out, 1), sk.packets_out)
    if sk.sacked_out + holes > sk.packets_out:
        sk.sacked_out = sk.packets_out - holes
        return True
    return False


def tcp_check_reno_reordering(sk: TcpSock, addend: int) -> None:
    """``tcp_check_reno_reordering``: more dupacks than holes can explain is reordering."""
    if not tcp_limit_reno_sacked(sk):
        return
    sk.reordering = min(sk.packets_out + addend, sk.net.sysctl.tcp_max_reordering)
    sk.reord_seen += 1
    sk.net.mib["TcpExtTCPRenoReorder"] += 1


def tcp_add_reno_sack(sk: TcpSock, num_dupack: int) -> None:
    """A duplicate ACK: one more segment has left the network (``tcp_add_reno_sack``)."""
    if num_dupack:
        prior_sacked = sk.sacked_out
        sk.sacked_out += num_dupack
        tcp_check_reno_reordering(sk, 0)
        delivered = sk.sacked_out - prior_sacked
        if delivered > 0:
            tcp_count_delivered(sk, delivered)


def tcp_remove_reno_sacks(sk: TcpSock, acked: int) -> None:
    """``tcp_remove_reno_sacks``: one ACK filled the hole, the rest ate duplicate ACKs."""
    if acked > 0:
        tcp_count_delivered(sk, max(acked - sk.sacked_out, 1))
        if acked - 1 >= sk.sacked_out:
            sk.sacked_out = 0
        else:
            sk.sacked_out -= acked - 1
    tcp_check_reno_reordering(sk, acked)


def tcp_reset_reno_sack(sk: TcpSock) -> None:
    sk.sacked_out = 0


def tcp_ack(sk: TcpSock, skb: SKB, flag: int) -> int:
    """Process the ACK field (``tcp_ack``): window, SACK, RTT, loss recovery, cwnd.

    Returns > 0 if acceptable, 0 for an old duplicate we ignore, < 0 for an unacceptable ACK
    (-1 beyond snd_nxt, -2 too old).
    """
    net = sk.net
    now = net.clock.now_us()
    sk.tcp_mstamp = now
    prior_snd_una = sk.snd_una
    ack_seq = skb.seq
    ack = skb.ack_seq
    prior_packets = sk.packets_out
    delivered = sk.delivered
    lost = sk.lost
    num_dupack = 0
    # tcp_ack's on-stack struct rate_sample; prior_in_flight before this ACK
    rs = RateSample(sk.tcp_packets_in_flight())
    # only SACK processing writes the tag state; without blocks a shared empty one is read
    st = SackState(sk.snd_nxt, rs) if sk.rx_opt_sack else _NO_SACK_STATE
    if ack < prior_snd_una:
        # RFC 5961 5.2: not older than what we sent and the peer could still be acking
        if ack < prior_snd_una - min(sk.max_window, sk.bytes_acked):
            if not flag & FLAG_NO_CHALLENGE_ACK:
                tcp_send_challenge_ack(sk)
            return -2
        # old_ack: still take SACK information
        if sk.rx_opt_sack:
            flag |= tcp_sacktag_write_queue(sk, ack, prior_snd_una, st)
            tcp_count_delivered(sk, st.sack_delivered)
            if st.sack_delivered:
                sk.delivered_mstamp = now     # tcp_rate_gen
            flag, rexmit = tcp_fastretrans_alert(sk, prior_snd_una, 0, flag)
            tcp_xmit_recovery(sk, rexmit)
        return 0
    if ack > sk.snd_nxt:
        # acks data never sent: dropped, and (Linux 6.x) answered with a challenge ACK
        if not flag & FLAG_NO_CHALLENGE_ACK:
            tcp_send_challenge_ack(sk)
        return -1
    if ack > prior_snd_una:
        flag |= FLAG_SND_UNA_ADVANCED
        sk.icsk_retransmits = 0
    prior_fack = tcp_highest_sack_seq(sk) if sk.sack_ok else prior_snd_una
    if flag & FLAG_UPDATE_TS_RECENT:
        tcp_replace_ts_recent(sk, skb.seq)
    if not (flag & FLAG_SLOWPATH) and ack > prior_snd_una:
        sk.snd_wl1 = ack_seq
        sk.snd_una = ack
        flag |= FLAG_WIN_UPDATE
        net.mib["TcpExtTCPHPAcks"] += 1
    else:
        if ack_seq != skb.end_seq:
            flag |= FLAG_DATA
        else:
            net.mib["TcpExtTCPPureAcks"] += 1
        flag |= tcp_ack_update_window(sk, skb, ack, ack_seq)
        if sk.rx_opt_sack:
            flag |= tcp_sacktag_write_queue(sk, ack, prior_snd_una, st)
            if st.sack_delivered:
                tcp_count_delivered(sk, st.sack_delivered)
        if skb.flags & ECE and tcp_ecn_rcv_ecn_echo(sk, skb.flags):
            flag |= FLAG_ECE
    if skb.flags & CWR:
        # RFC 3168 says CWR comes on new data; Linux accepts it on pure ACKs too
        tcp_ecn_accept_cwr(sk, skb)
    sk.bytes_acked += ack - prior_snd_una
    sk.sk_err_soft = 0
    sk.icsk_probes_out = 0
    sk.rcv_tstamp = now
    if not prior_packets:
        # no_queue: a DSACK may undo; a window update may let queued data go or stop the probe
        if flag & FLAG_DSACKING_ACK:
            flag, _ = tcp_fastretrans_alert(sk, prior_snd_una, num_dupack, flag)
        tcp_ack_probe(sk)
        if sk.tlp_high_seq:
            tcp_process_tlp_ack(sk, ack, flag)
        return 1
    prior_delivered = delivered
    prior_sacked = sk.sacked_out
    cflag, acked, seq_rtt, sack_rtt, ca_rtt = tcp_clean_rtx_queue(sk, prior_fack, prior_snd_una,
                                                                   st, rs)
    flag |= cflag
    if (seq_rtt >= 0 and acked == 1 and sk.sack_ok and not prior_sacked
            and (not sk.rtx_queue or sk.rtx_queue[0].seq >= sk.snd_una)
            and sk.snd_una - prior_snd_una < sk.mss_cache
            and sk.delivered_mstamp <= now - seq_rtt
            and not flag & (FLAG_CA_ALERT | FLAG_SYN_ACKED)):
        # tcp_clean_rtx_queue: one lone runt, fully acked, no SACK or CE, and nothing else
        # delivered since it was sent (rs->prior_delivered + 1 == delivered): maybe delayed
        flag |= FLAG_ACK_MAYBE_DELAYED
    ca_rtt = tcp_ack_update_rtt(sk, seq_rtt, sack_rtt, ca_rtt, bool(flag & FLAG_ACKED), flag)
    rs.rtt_us = ca_rtt                        # RTT of the last (S)ACKed packet, or -1
    if flag & FLAG_ACKED and sk.ca is not None:
        sk.ca.pkts_acked(sk, acked, ca_rtt)
    tcp_rack_update_reo_wnd(sk, prior_delivered)
    if sk.tlp_high_seq:
        tcp_process_tlp_ack(sk, ack, flag)
    rexmit = REXMIT_NONE
    if tcp_ack_is_dubious(sk, flag):
        if not flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK):
            num_dupack = 1
        flag, rexmit = tcp_fastretrans_alert(sk, prior_snd_una, num_dupack, flag)
    if flag & FLAG_SET_XMIT_TIMER:
        tcp_set_xmit_timer(sk)
    acked_sacked = sk.delivered - delivered
    if flag & FLAG_ECE:
        sk.delivered_ce += acked_sacked          # tcp_count_delivered(..., ece_ack)
    rs.is_ack_delayed = bool(flag & FLAG_ACK_MAYBE_DELAYED)
    tcp_rate_gen(sk, acked_sacked, sk.lost - lost, sk.is_sack_reneg, rs)
    tcp_cong_control(sk, ack, acked_sacked, flag, rs)
    tcp_xmit_recovery(sk, rexmit)
    tp = net.trace.tcp_probe
    if tp.subs:
        tp.emit(sk, now)
    return 1


def tcp_ack_probe(sk: TcpSock) -> None:
    """An ACK with nothing in flight (``tcp_ack_probe``): if the window now takes the head of
    the write queue, stop probing (tcp_data_snd_check sends it); else re-arm the zero-window
    probe from this ACK, base << backoff, no later than TCP_USER_TIMEOUT allows."""
    q = sk.write_queue
    if not q:
        return
    from .output import (
        inet_csk_clear_xmit_timer,
        tcp_clamp_probe0_to_user_timeout,
        tcp_probe0_when,
        tcp_reset_xmit_timer,
    )

    if q[0].end_seq <= sk.snd_una + sk.snd_wnd:
        sk.icsk_backoff = 0
        sk.icsk_probes_tstamp = 0
        if sk.icsk_pending == S.ICSK_TIME_PROBE0:
            inet_csk_clear_xmit_timer(sk)
    else:
        when = tcp_clamp_probe0_to_user_timeout(sk, tcp_probe0_when(sk, S.TCP_RTO_MAX))
        tcp_reset_xmit_timer(sk, S.ICSK_TIME_PROBE0, when)


def tcp_ack_is_dubious(sk: TcpSock, flag: int) -> bool:
    """Anything but a plain in-order ACK in Open state (``tcp_ack_is_dubious``)."""
    return (not flag & FLAG_NOT_DUP or bool(flag & FLAG_CA_ALERT)
            or sk.icsk_ca_state != TCP_CA_Open)


def tcp_set_xmit_timer(sk: TcpSock) -> None:
    """Arm the loss probe, else the RTO (``tcp_set_xmit_timer``)."""
    if not tcp_schedule_loss_probe(sk, True):
        tcp_rearm_rto(sk)


def tcp_in_cwnd_reduction(sk: TcpSock) -> bool:
    return sk.icsk_ca_state in (TCP_CA_CWR, TCP_CA_Recovery)


def tcp_may_raise_cwnd(sk: TcpSock, flag: int) -> bool:
    """Grow cwnd only on forward progress, or on any delivery when reordering is high
    (``tcp_may_raise_cwnd``)."""
    if sk.reordering > sk.net.sysctl.tcp_reordering:
        return bool(flag & FLAG_FORWARD_PROGRESS)
    return bool(flag & FLAG_DATA_ACKED)


_PACING_UNIT = (S.USEC // 100) << 3           # USEC_PER_SEC / 100 (ratios are in %) << 3


def tcp_update_pacing_rate(sk: TcpSock) -> None:
    """``sk_pacing_rate`` = mss * max(cwnd, packets_out) / srtt, times tcp_pacing_ss_ratio
    (200 %) while cwnd < ssthresh/2, else tcp_pacing_ca_ratio (120 %)
    (``tcp_update_pacing_rate``). tcpdive does not pace; tcp_tso_autosize reads it to size
    TSO bursts, which decides where Linux puts PSH (see ``tcp_write_xmit``)."""
    sc = sk.net.sysctl
    cwnd = sk.snd_cwnd
    rate = sk.mss_cache * _PACING_UNIT
    if cwnd < sk.snd_ssthresh // 2:
        rate *= sc.tcp_pacing_ss_ratio
    else:
        rate *= sc.tcp_pacing_ca_ratio
    packets_out = sk.packets_out
    rate *= cwnd if cwnd >= packets_out else packets_out
    srtt = sk.srtt_us
    if srtt:
        rate //= srtt
    cap = sk.sk_max_pacing_rate
    sk.sk_pacing_rate = rate if rate < cap else cap


def tcp_cong_control(sk: TcpSock, ack: int, acked_sacked: int, flag: int,
                     rs: RateSample) -> None:
    """An algorithm with its own ``cong_control`` (BBR) sets cwnd and pacing from the rate
    sample; else PRR while reducing, else the algorithm's cong_avoid; then the pacing rate
    (``tcp_cong_control``)."""
    ca = sk.ca
    if ca is not None and ca.cong_control is not None:
        ca.cong_control(sk, ack, flag, rs)
        return
    if tcp_in_cwnd_reduction(sk):
        tcp_cwnd_reduction(sk, acked_sacked, rs.losses, flag)
    elif tcp_may_raise_cwnd(sk, flag):
        if sk.ca is not None and acked_sacked > 0:
            sk.ca.cong_avoid(sk, ack, acked_sacked)
        sk.snd_cwnd_stamp = sk.tcp_mstamp
    tcp_update_pacing_rate(sk)


def tcp_xmit_recovery(sk: TcpSock, rexmit: int) -> None:
    """Send what recovery decided: lost segments, or new data for F-RTO (``tcp_xmit_recovery``)."""
    if rexmit == REXMIT_NONE or sk.state == S.TCP_SYN_SENT:
        return
    if rexmit == REXMIT_NEW:
        from .output import __tcp_push_pending_frames, tcp_current_mss

        __tcp_push_pending_frames(sk, tcp_current_mss(sk), S.TCP_NAGLE_OFF)
        if sk.snd_nxt > sk.high_seq:
            return
        sk.frto = False
    tcp_xmit_retransmit_queue(sk)


# ---- congestion state machine (tcp_fastretrans_alert and its helpers) ---------------------

def tcp_set_ca_state(sk: TcpSock, state: int) -> None:
    if sk.ca is not None:
        sk.ca.set_state(sk, state)
    sk.icsk_ca_state = state


def tcp_current_ssthresh(sk: TcpSock) -> int:
    """``tcp_current_ssthresh``: the threshold to restore on undo."""
    if tcp_in_cwnd_reduction(sk):
        return sk.snd_ssthresh
    return max(sk.snd_ssthresh, (sk.snd_cwnd >> 1) + (sk.snd_cwnd >> 2))


def tcp_init_undo(sk: TcpSock) -> None:
    """Remember where undo starts and how many retransmissions DSACKs must cover (``tcp_init_undo``)."""
    sk.undo_marker = sk.snd_una
    sk.undo_retrans = sk.retrans_out
    if sk.tlp_high_seq and sk.tlp_retrans:
        sk.undo_retrans += 1
    if not sk.undo_retrans:
        sk.undo_retrans = -1


def tcp_mark_skb_lost(sk: TcpSock, skb: SKB) -> None:
    """Mark one skb lost; a lost retransmission is counted again (``tcp_mark_skb_lost``)."""
    sacked = skb.sacked
    if sacked & TCPCB_SACKED_ACKED:
        return
    if sacked & TCPCB_LOST:
        if sacked & TCPCB_SACKED_RETRANS:
            skb.sacked = sacked & ~TCPCB_SACKED_RETRANS
            sk.retrans_out -= 1
            sk.net.mib["TcpExtTCPLostRetransmit"] += 1
            sk.lost += 1
    else:
        sk.lost_out += 1
        skb.sacked = sacked | TCPCB_LOST
        sk.lost += 1


def tcp_timeout_mark_lost(sk: TcpSock) -> None:
    """RTO: everything not SACKed and not sent within the last RTT is lost; SACK reneging
    (head SACKed) forgets all SACKs (``tcp_timeout_mark_lost``)."""
    q = sk.rtx_queue
    if not q:
        return
    head = q[0]
    is_reneg = bool(head.sacked & TCPCB_SACKED_ACKED)
    if is_reneg:
        sk.net.mib["TcpExtTCPSACKReneging"] += 1
        sk.sacked_out = 0
        sk.is_sack_reneg = True
    elif not sk.sack_ok:
        tcp_reset_reno_sack(sk)
    for skb in q:
        if is_reneg:
            skb.sacked &= ~TCPCB_SACKED_ACKED
        elif skb is not head and tcp_rack_skb_timeout(sk, skb, 0) > 0:
            continue
        tcp_mark_skb_lost(sk, skb)


def tcp_enter_loss(sk: TcpSock) -> None:
    """RTO: mark lost, cwnd to in-flight + 1, enter Loss, maybe start F-RTO (``tcp_enter_loss``)."""
    from .cong import CA_EVENT_LOSS

    sk.tcp_mstamp = sk.net.clock.now_us()
    new_recovery = sk.icsk_ca_state < TCP_CA_Recovery
    tcp_timeout_mark_lost(sk)
    if (sk.icsk_ca_state <= TCP_CA_Disorder or sk.high_seq <= sk.snd_una
            or (sk.icsk_ca_state == TCP_CA_Loss and not sk.icsk_retransmits)):
        sk.prior_ssthresh = tcp_current_ssthresh(sk)
        sk.prior_cwnd = sk.snd_cwnd
        if sk.ca is not None:
            sk.snd_ssthresh = sk.ca.ssthresh(sk)
            sk.ca.cwnd_event(sk, CA_EVENT_LOSS)
        tcp_init_undo(sk)
    sk.snd_cwnd = sk.tcp_packets_in_flight() + 1
    sk.snd_cwnd_cnt = 0
    sk.snd_cwnd_stamp = sk.tcp_mstamp
    reordering = sk.net.sysctl.tcp_reordering
    if sk.icsk_ca_state <= TCP_CA_Disorder and sk.sacked_out >= reordering:
        sk.reordering = min(sk.reordering, reordering)
    tcp_set_ca_state(sk, TCP_CA_Loss)
    sk.high_seq = sk.snd_nxt
    sk.tlp_high_seq = 0
    if sk.ecn_flags:
        tcp_ecn_queue_cwr(sk)
    sk.frto = bool(sk.net.sysctl.tcp_frto) and (new_recovery or bool(sk.icsk_retransmits))


def tcp_xmit_retransmit_queue(sk: TcpSock) -> None:
    """Retransmit lost segments as cwnd allows, from the head (``tcp_xmit_retransmit_queue``)."""
    if not sk.packets_out or sk.retrans_out >= sk.lost_out:
        return
    q = sk.rtx_queue
    head = q[0] if q else None
    rearm = False
    net = sk.net
    mib = "TcpExtTCPFastRetrans" if sk.icsk_ca_state != TCP_CA_Loss else "TcpExtTCPSlowStartRetrans"
    reducing = tcp_in_cwnd_reduction(sk)
    max_segs = tcp_tso_segs(sk, tcp_current_mss(sk))
    i = -1
    while i + 1 < len(q):
        # by index (skb_rbtree_walk_from): a retransmission may fragment an skb and insert
        # its tail right after it, or collapse the next ones into it
        i += 1
        skb = q[i]
        if sk.sk_pacing_status and tcp_pacing_check(sk, net.clock.now_us()):
            break
        segs = sk.snd_cwnd - sk.tcp_packets_in_flight()
        if segs <= 0:
            break
        if sk.retrans_out >= sk.lost_out:
            break
        s = skb.sacked
        if not s & TCPCB_LOST or s & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS):
            continue
        if tcp_retransmit_skb(sk, skb, min(segs, max_segs), i):
            break
        net.mib[mib] += skb.gso_segs
        if reducing:
            sk.prr_out += skb.gso_segs
        if skb is head and sk.icsk_pending != S.ICSK_TIME_REO_TIMEOUT:
            rearm = True
    if rearm:
        from .output import tcp_reset_xmit_timer

        tcp_reset_xmit_timer(sk, S.ICSK_TIME_RETRANS, sk.icsk_rto)


def tcp_cwnd_reduction(sk: TcpSock, newly_acked_sacked: int, newly_lost: int, flag: int) -> None:
    """Proportional Rate Reduction, RFC 6937 (``tcp_cwnd_reduction``)."""
    if newly_acked_sacked <= 0 or not sk.prior_cwnd:
        return
    delta = sk.snd_ssthresh - sk.tcp_packets_in_flight()
    sk.prr_delivered += newly_acked_sacked
    if delta < 0:
        dividend = sk.snd_ssthresh * sk.prr_delivered + sk.prior_cwnd - 1
        sndcnt = dividend // sk.prior_cwnd - sk.prr_out
    else:
        sndcnt = max(sk.prr_delivered - sk.prr_out, newly_acked_sacked)
        if flag & FLAG_SND_UNA_ADVANCED and not newly_lost:
            sndcnt += 1
        sndcnt = min(delta, sndcnt)
    sndcnt = max(sndcnt, 0 if sk.prr_out else 1)
    sk.snd_cwnd = sk.tcp_packets_in_flight() + sndcnt


def tcp_init_cwnd_reduction(sk: TcpSock) -> None:
    """Start a cwnd reduction: ssthresh from the algorithm, PRR counters to 0
    (``tcp_init_cwnd_reduction``)."""
    sk.high_seq = sk.snd_nxt
    sk.tlp_high_seq = 0
    sk.snd_cwnd_cnt = 0
    sk.prior_cwnd = sk.snd_cwnd
    sk.prr_delivered = 0
    sk.prr_out = 0
    if sk.ca is not None:
        sk.snd_ssthresh = sk.ca.ssthresh(sk)
    if sk.ecn_flags:
        tcp_ecn_queue_cwr(sk)


def tcp_end_cwnd_reduction(sk: TcpSock) -> None:
    """cwnd to ssthresh at the end of CWR or (not undone) Recovery (``tcp_end_cwnd_reduction``)."""
    from .cong import CA_EVENT_COMPLETE_CWR

    if sk.snd_ssthresh < TCP_INFINITE_SSTHRESH and (sk.icsk_ca_state == TCP_CA_CWR
                                                   or sk.undo_marker):
        sk.snd_cwnd = sk.snd_ssthresh
        sk.snd_cwnd_stamp = sk.net.clock.now_us()
    if sk.ca is not None:
        sk.ca.cwnd_event(sk, CA_EVENT_COMPLETE_CWR)


def tcp_enter_cwr(sk: TcpSock) -> None:
    """ECN or local congestion: reduce cwnd by PRR without retransmitting (``tcp_enter_cwr``)."""
    sk.prior_ssthresh = 0
    if sk.icsk_ca_state < TCP_CA_CWR:
        sk.undo_marker = 0
        tcp_init_cwnd_reduction(sk)
        tcp_set_ca_state(sk, TCP_CA_CWR)


def tcp_enter_recovery(sk: TcpSock, ece_ack: bool = False) -> None:
    """Fast retransmit: start PRR and the undo bookkeeping (``tcp_enter_recovery``)."""
    # start the clock with our fast retransmit, for undo and ETIMEDOUT (Linux 6.12+)
    tcp_retrans_stamp_cleanup(sk)
    sk.net.mib["TcpExtTCPSackRecovery" if sk.sack_ok else "TcpExtTCPRenoRecovery"] += 1
    sk.prior_ssthresh = 0
    tcp_init_undo(sk)
    if not tcp_in_cwnd_reduction(sk):
        if not ece_ack:
            sk.prior_ssthresh = tcp_current_ssthresh(sk)
        tcp_init_cwnd_reduction(sk)
    tcp_set_ca_state(sk, TCP_CA_Recovery)


def tcp_any_retrans_done(sk: TcpSock) -> bool:
    """Is a retransmission still outstanding, or was the head ever retransmitted?"""
    if sk.retrans_out:
        return True
    q = sk.rtx_queue
    return bool(q and q[0].sacked & TCPCB_EVER_RETRANS)


def tcp_retrans_stamp_cleanup(sk: TcpSock) -> None:
    """Loss recovery is over and no retransmission is out: stop the clock that undo and
    ETIMEDOUT (``retransmits_timed_out``) measure from (``tcp_retrans_stamp_cleanup``)."""
    if not tcp_any_retrans_done(sk):
        sk.retrans_stamp = 0


def tcp_packet_delayed(sk: TcpSock) -> bool:
    """Was the original, not the retransmission, acked — an echoed timestamp older than the
    first retransmission (Eifel, RFC 3522) (``tcp_packet_delayed``)?"""
    if sk.retrans_stamp:
        return bool(sk.saw_tstamp and sk.rcv_tsecr
                    and ts_before((sk.rcv_tsecr - sk.tsoffset) & 0xFFFFFFFF,
                                  sk.retrans_stamp & 0xFFFFFFFF))
    if not sk.sack_ok and sk.snd_una >= sk.high_seq:
        return False
    if sk.state == S.TCP_SYN_SENT:
        return False
    return True


def tcp_may_undo(sk: TcpSock) -> bool:
    return bool(sk.undo_marker) and (not sk.undo_retrans or tcp_packet_delayed(sk))


def tcp_undo_cwnd_reduction(sk: TcpSock, unmark_loss: bool) -> None:
    """Restore cwnd/ssthresh from before a spurious reduction (``tcp_undo_cwnd_reduction``)."""
    if unmark_loss:
        for skb in sk.rtx_queue:
            skb.sacked &= ~TCPCB_LOST
        sk.lost_out = 0
    if sk.prior_ssthresh:
        if sk.ca is not None:
            sk.snd_cwnd = sk.ca.undo_cwnd(sk)
        if sk.prior_ssthresh > sk.snd_ssthresh:
            sk.snd_ssthresh = sk.prior_ssthresh
            tcp_ecn_withdraw_cwr(sk)
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    sk.undo_marker = 0
    sk.rack_advanced = True


def tcp_is_non_sack_preventing_reopen(sk: TcpSock) -> bool:
    if sk.snd_una == sk.high_seq and not sk.sack_ok:
        tcp_retrans_stamp_cleanup(sk)
        return True
    return False


def tcp_try_undo_recovery(sk: TcpSock) -> bool:
    """End of Recovery/Loss: undo if nothing needed retransmitting (``tcp_try_undo_recovery``)."""
    if tcp_may_undo(sk):
        tcp_undo_cwnd_reduction(sk, False)
        sk.net.mib["TcpExtTCPLossUndo" if sk.icsk_ca_state == TCP_CA_Loss
                   else "TcpExtTCPFullUndo"] += 1
    elif sk.rack_reo_wnd_persist:
        sk.rack_reo_wnd_persist -= 1
    if tcp_is_non_sack_preventing_reopen(sk):
        return True
    tcp_set_ca_state(sk, TCP_CA_Open)
    sk.is_sack_reneg = False
    return False


def tcp_try_undo_dsack(sk: TcpSock) -> bool:
    """Every retransmission was DSACKed: it was all spurious (``tcp_try_undo_dsack``)."""
    if sk.undo_marker and not sk.undo_retrans:
        sk.rack_reo_wnd_persist = min(TCP_RACK_RECOVERY_THRESH, sk.rack_reo_wnd_persist + 1)
        tcp_undo_cwnd_reduction(sk, False)
        sk.net.mib["TcpExtTCPDSACKUndo"] += 1
        return True
    return False


def tcp_try_undo_loss(sk: TcpSock, frto_undo: bool) -> bool:
    """Undo an RTO found spurious, by F-RTO or timestamps (``tcp_try_undo_loss``)."""
    if frto_undo or tcp_may_undo(sk):
        tcp_undo_cwnd_reduction(sk, True)
        sk.net.mib["TcpExtTCPLossUndo"] += 1
        if frto_undo:
            sk.net.mib["TcpExtTCPSpuriousRTOs"] += 1
        sk.icsk_retransmits = 0
        if tcp_is_non_sack_preventing_reopen(sk):
            return True
        if frto_undo or sk.sack_ok:
            tcp_set_ca_state(sk, TCP_CA_Open)
            sk.is_sack_reneg = False
        return True
    return False


def tcp_try_undo_partial(sk: TcpSock, prior_snd_una: int) -> bool:
    """A partial ACK for an original transmission: reordering, not loss (``tcp_try_undo_partial``)."""
    if sk.undo_marker and tcp_packet_delayed(sk):
        tcp_check_sack_reordering(sk, prior_snd_una, 1)
        if sk.retrans_out:
            return True
        tcp_retrans_stamp_cleanup(sk)
        tcp_undo_cwnd_reduction(sk, True)
        sk.net.mib["TcpExtTCPPartialUndo"] += 1
        tcp_try_keep_open(sk)
    return False


def tcp_try_keep_open(sk: TcpSock) -> None:
    """Open, or Disorder while SACKs/retransmissions are outstanding (``tcp_try_keep_open``)."""
    state = TCP_CA_Open
    if sk.sacked_out + sk.lost_out or tcp_any_retrans_done(sk):
        state = TCP_CA_Disorder
    if sk.icsk_ca_state != state:
        tcp_set_ca_state(sk, state)
        sk.high_seq = sk.snd_nxt


def tcp_try_to_open(sk: TcpSock, flag: int) -> None:
    """``tcp_try_to_open``: clear the retransmission clock once nothing is retransmitted."""
    tcp_retrans_stamp_cleanup(sk)
    if flag & FLAG_ECE:
        tcp_enter_cwr(sk)
    if sk.icsk_ca_state != TCP_CA_CWR:
        tcp_try_keep_open(sk)


def tcp_newreno_mark_lost(sk: TcpSock, snd_una_advanced: bool) -> None:
    """Without SACK: the head is lost after dupthresh dupacks, or on a partial ACK in
    Recovery (NewReno, RFC 6582) (``tcp_newreno_mark_lost``)."""
    state = sk.icsk_ca_state
    if ((state < TCP_CA_Recovery and sk.sacked_out >= sk.reordering)
            or (state == TCP_CA_Recovery and snd_una_advanced)):
        skb = sk.rtx_queue[0]
        if skb.sacked & TCPCB_LOST:
            return
        tcp_mark_skb_lost(sk, skb)


def tcp_mark_head_lost(sk: TcpSock) -> None:
    """Classic dupthresh (RFC 6675) marking when RACK is off (tcp_recovery=0): skbs with
    ``reordering`` SACKed skbs above them are lost."""
    sacked_above = 0
    for skb in reversed(sk.rtx_queue):
        if skb.sacked & TCPCB_SACKED_ACKED:
            sacked_above += 1
        elif sacked_above >= sk.reordering:
            tcp_mark_skb_lost(sk, skb)


def tcp_identify_packet_loss(sk: TcpSock, flag: int) -> int:
    """NewReno without SACK, RACK with it (``tcp_identify_packet_loss``); returns flag."""
    if not sk.rtx_queue:
        return flag
    if not sk.sack_ok:
        tcp_newreno_mark_lost(sk, bool(flag & FLAG_SND_UNA_ADVANCED))
    elif sk.net.sysctl.tcp_recovery & TCP_RACK_LOSS_DETECTION:
        prior_retrans = sk.retrans_out
        if tcp_rack_mark_lost(sk):
            flag &= ~FLAG_SET_XMIT_TIMER
        if prior_retrans > sk.retrans_out:
            flag |= FLAG_LOST_RETRANS
    elif sk.sacked_out + 1 > sk.reordering:
        tcp_mark_head_lost(sk)
    return flag


def tcp_time_to_recover(sk: TcpSock) -> bool:
    """Has loss detection marked a packet lost (``tcp_time_to_recover``)?"""
    return bool(sk.lost_out)


def tcp_check_sack_reneging(sk: TcpSock, flag: int) -> tuple[bool, int]:
    """The receiver dropped data it had SACKed: wait a little, then let the RTO sort it out
    (``tcp_check_sack_reneging``)."""
    if flag & FLAG_SACK_RENEGING and flag & FLAG_SND_UNA_ADVANCED:
        from .output import tcp_reset_xmit_timer

        delay = max(jiffies_round(sk.srtt_us >> 4), 10_000)
        tcp_reset_xmit_timer(sk, S.ICSK_TIME_RETRANS, delay)
        return True, flag & ~FLAG_SET_XMIT_TIMER
    return False, flag


def tcp_process_loss(sk: TcpSock, flag: int, num_dupack: int) -> int:
    """An ACK in Loss: undo a spurious RTO (timestamps, F-RTO RFC 5682), or keep
    retransmitting (``tcp_process_loss``). Returns the rexmit decision."""
    recovered = sk.snd_una >= sk.high_seq
    if flag & FLAG_SND_UNA_ADVANCED and tcp_try_undo_loss(sk, False):
        return REXMIT_NONE
    if sk.frto:
        if flag & FLAG_ORIG_SACK_ACKED and tcp_try_undo_loss(sk, True):
            return REXMIT_NONE
        if sk.snd_nxt > sk.high_seq:
            if flag & FLAG_DATA_SACKED or num_dupack:
                sk.frto = False                # step 3.a: the loss was real
        elif flag & FLAG_SND_UNA_ADVANCED and not recovered:
            sk.high_seq = sk.snd_nxt
            # step 2.b: send new data (after cwnd is updated in tcp_ack), else fall back
            q = sk.write_queue
            if q and sk.snd_una + sk.snd_wnd > sk.snd_nxt:
                return REXMIT_NEW
            sk.frto = False
    if recovered:
        tcp_try_undo_recovery(sk)
        return REXMIT_NONE
    if not sk.sack_ok:
        if sk.snd_nxt > sk.high_seq and num_dupack:
            tcp_add_reno_sack(sk, num_dupack)
        elif flag & FLAG_SND_UNA_ADVANCED:
            tcp_reset_reno_sack(sk)
    return REXMIT_LOST


def tcp_fastretrans_alert(sk: TcpSock, prior_snd_una: int, num_dupack: int,
                          flag: int) -> tuple[int, int]:
    """The congestion-avoidance state machine (``tcp_fastretrans_alert``): leave Recovery/Loss
    when high_seq is acked (undoing if the reduction proves spurious), detect loss (RACK, or
    NewReno dupacks), enter Recovery. Returns (flag, rexmit).

    ``retrans_stamp`` (start of the retransmission episode that tcp_write_timeout measures) is
    cleared in Open and by tcp_try_undo_recovery / tcp_try_to_open once no retransmission is
    outstanding.
    """
    rexmit = REXMIT_NONE
    ece_ack = bool(flag & FLAG_ECE)
    if not sk.packets_out and sk.sacked_out:
        sk.sacked_out = 0
    if ece_ack:
        sk.prior_ssthresh = 0
    reneg, flag = tcp_check_sack_reneging(sk, flag)
    if reneg:
        return flag, rexmit
    state = sk.icsk_ca_state
    # D. state exit conditions
    if state == TCP_CA_Open:
        sk.retrans_stamp = 0
    elif sk.snd_una >= sk.high_seq:
        if state == TCP_CA_CWR:
            if sk.snd_una != sk.high_seq:
                tcp_end_cwnd_reduction(sk)
                tcp_set_ca_state(sk, TCP_CA_Open)
        elif state == TCP_CA_Recovery:
            if not sk.sack_ok:
                tcp_reset_reno_sack(sk)
            if tcp_try_undo_recovery(sk):
                return flag, rexmit
            tcp_end_cwnd_reduction(sk)
    # E. process state
    state = sk.icsk_ca_state
    if state == TCP_CA_Recovery:
        if not flag & FLAG_SND_UNA_ADVANCED:
            if not sk.sack_ok:
                tcp_add_reno_sack(sk, num_dupack)
        elif tcp_try_undo_partial(sk, prior_snd_una):
            return flag, rexmit
        if tcp_try_undo_dsack(sk):
            tcp_try_to_open(sk, flag)
        flag = tcp_identify_packet_loss(sk, flag)
        return flag, REXMIT_LOST
    if state == TCP_CA_Loss:
        rexmit = tcp_process_loss(sk, flag, num_dupack)
        flag = tcp_identify_packet_loss(sk, flag)
        if not (sk.icsk_ca_state == TCP_CA_Open or flag & FLAG_LOST_RETRANS):
            return flag, rexmit
        # cwnd undone or retransmissions lost: change state (fall through)
    if not sk.sack_ok:
        if flag & FLAG_SND_UNA_ADVANCED:
            tcp_reset_reno_sack(sk)
        tcp_add_reno_sack(sk, num_dupack)
    if sk.icsk_ca_state <= TCP_CA_Disorder:
        tcp_try_undo_dsack(sk)
    flag = tcp_identify_packet_loss(sk, flag)
    if not tcp_time_to_recover(sk):
        tcp_try_to_open(sk, flag)
        return flag, rexmit
    if sk.mtup is not None:
        from .mtu_probe import tcp_mtup_probe_check_failed

        if tcp_mtup_probe_check_failed(sk):      # MTU probe failure: don't reduce cwnd
            return flag, rexmit
    tcp_enter_recovery(sk, ece_ack)
    return flag, REXMIT_LOST


# ---- data ----------------------------------------------------------------------------------

def tcp_queue_rcv(sk: TcpSock, data: bytes) -> None:
    """Append in-order bytes to the receive queue (``tcp_queue_rcv``)."""
    q = sk.receive_queue
    if not q:
        q = sk.receive_queue = deque()
    q.append(data)
    sk.rcv_queue_bytes += len(data)


def tcp_epollin_ready(sk: TcpSock, target: int) -> bool:
    """Enough to read for a reader wanting ``target`` bytes, or the buffer or window is nearly
    full (``tcp_epollin_ready``: tcp_rmem_pressure, receive window <= rcv_mss). Queued payload
    stands for sk_rmem_alloc, as in tcp_space."""
    avail = sk.rcv_queue_bytes
    if avail <= 0:
        return False
    rcvbuf = sk.sk_rcvbuf
    return (avail >= target or avail + sk.ofo_bytes > rcvbuf - (rcvbuf >> 3)
            or sk.tcp_receive_window() <= sk.ack_rcv_mss)


def tcp_data_ready(sk: TcpSock) -> None:
    """Wake readers once SO_RCVLOWAT is met or the stream has ended (``tcp_data_ready``)."""
    if (sk.wq or sk.ep_wq) and (sk.done or tcp_epollin_ready(sk, sk.sk_rcvlowat)):
        sk_wake(sk, S.POLL_KEY_IN)


def tcp_sack_remove(sk: TcpSock) -> None:
    """Drop SACK blocks the cumulative ACK has passed (``tcp_sack_remove``)."""
    if not sk.ofo_queue:
        sk.num_sacks = 0
        sk.selective_acks = ()
        return
    blocks = [b for b in sk.selective_acks if b[1] > sk.rcv_nxt]
    sk.selective_acks = blocks
    sk.num_sacks = len(blocks)


def tcp_sack_new_ofo_skb(sk: TcpSock, seq: int, end_seq: int) -> None:
    """Put the block holding a new out-of-order segment first (``tcp_sack_new_ofo_skb``)."""
    blocks = list(sk.selective_acks)
    new = (seq, end_seq)
    merged = True
    while merged:
        merged = False
        for i, (a, b) in enumerate(blocks):
            if a <= new[1] and new[0] <= b:
                new = (min(a, new[0]), max(b, new[1]))
                del blocks[i]
                merged = True
                break
    blocks.insert(0, new)
    del blocks[4:]
    sk.selective_acks = blocks
    sk.num_sacks = len(blocks)


def tcp_ofo_queue(sk: TcpSock) -> None:
    """Move now-in-order segments from the out-of-order queue (``tcp_ofo_queue``)."""
    ofo = sk.ofo_queue
    while ofo and ofo[0][0] <= sk.rcv_nxt:
        seq, end_seq, data, fin = ofo.pop(0)
        sk.ofo_bytes -= len(data)
        if end_seq <= sk.rcv_nxt and not fin:
            tcp_dsack_extend(sk, seq, end_seq)
            continue
        skip = sk.rcv_nxt - seq
        if skip < 0:
            skip = 0
        if skip > 0 and fin and skip > len(data):
            continue
        if skip:
            tcp_dsack_extend(sk, seq, sk.rcv_nxt)
        chunk = data[skip:]
        if chunk:
            tcp_queue_rcv(sk, chunk)
        sk.rcv_nxt = end_seq
        if fin:
            tcp_fin(sk)
            break
    tcp_sack_remove(sk)


def tcp_data_queue_ofo(sk: TcpSock, skb: SKB) -> None:
    """Keep a segment that arrived ahead of a hole (``tcp_data_queue_ofo``)."""
    net = sk.net
    if sk.ecn_flags:
        tcp_data_ecn_check(sk, skb)
    sk.pred_flags = 0
    inet_csk_schedule_ack(sk)
    net.mib["TcpExtTCPOFOQueue"] += 1
    seq, end_seq = skb.seq, skb.end_seq
    fin = bool(skb.flags & FIN)
    ofo = sk.ofo_queue
    if not ofo:
        ofo = sk.ofo_queue = []
    for s, e, _d, _f in ofo:
        if s <= seq and end_seq <= e:
            net.mib["TcpExtTCPOFOMerge"] += 1
            tcp_dsack_set(sk, seq, end_seq)
            return
    # drop segments the new one fully covers
    keep = []
    for ent in ofo:
        if seq <= ent[0] and ent[1] <= end_seq:
            tcp_dsack_extend(sk, ent[0], ent[1])
            sk.ofo_bytes -= len(ent[2])
            continue
        keep.append(ent)
    if len(keep) != len(ofo):
        ofo[:] = keep
    insort(ofo, (seq, end_seq, skb.data, fin), key=lambda t: t[0])
    sk.ofo_bytes += len(skb.data)
    if sk.sack_ok:
        tcp_sack_new_ofo_skb(sk, seq, end_seq)


def tcp_data_queue(sk: TcpSock, skb: SKB) -> None:
    """Queue payload: in order, duplicate, partial, out of window or out of order (``tcp_data_queue``)."""
    net = sk.net
    if skb.seq == skb.end_seq:
        return
    sk.dsack = 0 if not sk.dsack else sk.dsack
    if skb.seq == sk.rcv_nxt:
        if sk.tcp_receive_window() == 0 and skb.data:
            # zero window: drop unless it only carries FIN (tcp_data_queue out_of_window)
            net.mib["TcpExtTCPZeroWindowDrop"] += 1
            tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)
            inet_csk_schedule_ack(sk)
            return
        if skb.data:
            tcp_queue_rcv(sk, skb.data)
            sk.bytes_received += len(skb.data)
        sk.rcv_nxt = skb.end_seq
        if skb.data:
            tcp_event_data_recv(sk, skb)
        if skb.flags & FIN:
            if skb.path is not None:
                skb.path.append("tcp_fin")
            tcp_fin(sk)
        if sk.ofo_queue:
            tcp_ofo_queue(sk)
            if not sk.ofo_queue:
                sk.ack_pending |= ICSK_ACK_NOW
        if sk.num_sacks:
            tcp_sack_remove(sk)
        if skb.data or skb.flags & FIN:
            tcp_data_ready(sk)
        return
    if skb.end_seq <= sk.rcv_nxt:
        # a pure retransmission: D-SACK it and ACK at once
        tcp_rcv_spurious_retrans(sk, skb)
        tcp_dsack_set(sk, skb.seq, skb.end_seq)
        net.mib["TcpExtDelayedACKLost"] += 1
        tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)
        inet_csk_schedule_ack(sk)
        net.drop(skb, "TCP_OLD_DATA")
        return
    if skb.seq >= sk.rcv_nxt + sk.tcp_receive_window():
        tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)
        inet_csk_schedule_ack(sk)
        net.drop(skb, "TCP_OVERWINDOW")
        return
    if skb.seq < sk.rcv_nxt:
        # partial overlap: report the duplicate part, keep the rest
        tcp_dsack_set(sk, skb.seq, sk.rcv_nxt)
        cut = sk.rcv_nxt - skb.seq
        skb.data = skb.data[cut:]
        skb.seq = sk.rcv_nxt
        if sk.tcp_receive_window() == 0:
            tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)
            inet_csk_schedule_ack(sk)
            return
        tcp_data_queue(sk, skb)
        return
    tcp_data_queue_ofo(sk, skb)


def tcp_rcv_spurious_retrans(sk: TcpSock, skb: SKB) -> None:
    """Hook for spurious-retransmission accounting (``tcp_rcv_spurious_retrans``)."""


def tcp_fin(sk: TcpSock) -> None:
    """Process the FIN (``tcp_fin``): ESTABLISHED -> CLOSE_WAIT, FIN_WAIT1 -> CLOSING, FIN_WAIT2 -> TIME_WAIT."""
    inet_csk_schedule_ack(sk)
    sk.sk_shutdown |= S.RCV_SHUTDOWN
    sk.done = True
    sk.fin_received = True
    state = sk.state
    if state in (S.TCP_SYN_RECV, S.TCP_ESTABLISHED):
        tcp_set_state(sk, S.TCP_CLOSE_WAIT)
        sk.ack_pingpong = S.TCP_PINGPONG_THRESH          # inet_csk_enter_pingpong_mode
    elif state in (S.TCP_CLOSE_WAIT, S.TCP_CLOSING, S.TCP_LAST_ACK):
        pass
    elif state == S.TCP_FIN_WAIT1:
        tcp_send_ack(sk)
        tcp_set_state(sk, S.TCP_CLOSING)
    elif state == S.TCP_FIN_WAIT2:
        tcp_send_ack(sk)
        tcp_time_wait(sk, S.TCP_TIME_WAIT, 0)
        return
    if sk.ofo_queue:
        sk.ofo_queue = []
        sk.ofo_bytes = 0
    if sk.sack_ok:
        sk.num_sacks = 0
        sk.selective_acks = ()
    if not sk.dead:
        sk_wake(sk)                                     # sk_state_change


# ---- ESTABLISHED -----------------------------------------------------------------------------

def tcp_rcv_established(sk: TcpSock, skb: SKB) -> None:
    """ESTABLISHED input: header prediction fast path, else the full slow path."""
    net = sk.net
    path = skb.path
    tcp_parse_rx_opts(sk, skb)
    segs = skb.gso_segs if skb.gso_size else 1      # tcp_segs_in: a GRO skb counts its segments
    sk.segs_in += segs
    flags = skb.flags
    # --- fast path (header prediction): ACK only (maybe PSH), in sequence, window unchanged
    if ((flags & ~0x08) == ACK and skb.seq == sk.rcv_nxt and skb.ack_seq <= sk.snd_nxt
            and not sk.rx_opt_sack and skb.window << sk.snd_wscale == sk.snd_wnd
            and sk.pred_flags and (not sk.tstamp_ok or sk.saw_tstamp)):
        # PAWS: the TSval is not older than ts_recent (ts_before, inlined)
        if not sk.saw_tstamp or ((sk.rcv_tsval - sk.ts_recent) & 0xFFFFFFFF) < 0x80000000:
            if path is not None:
                path.append("tcp_rcv_established(fast)")
            n = len(skb.data)
            if n == 0:
                if sk.saw_tstamp and skb.seq == sk.rcv_wup:
                    tcp_store_ts_recent(sk)
                tcp_ack(sk, skb, 0)
                tcp_data_snd_check(sk)
                return
            if n <= sk.tcp_receive_window():
                if sk.saw_tstamp and skb.seq == sk.rcv_wup:
                    tcp_store_ts_recent(sk)
                net.mib["TcpExtTCPHPHits"] += 1
                tcp_rcv_rtt_measure_ts(sk, skb)
                sk.data_segs_in += segs
                tcp_queue_rcv(sk, skb.data)
                sk.bytes_received += n
                sk.rcv_nxt = skb.end_seq
                tcp_event_data_recv(sk, skb)
                if skb.ack_seq != sk.snd_una:
                    tcp_ack(sk, skb, FLAG_DATA)
                    tcp_data_snd_check(sk)
                if sk.ack_pending & ICSK_ACK_SCHED:
                    __tcp_ack_snd_check(sk, False)
                tcp_data_ready(sk)
                return
    # --- slow path
    if path is not None:
        path.append("tcp_rcv_established(slow)")
    if not (flags & (ACK | RST | SYN)):
        net.drop(skb, "TCP_FLAGS")
        return
    if not tcp_validate_incoming(sk, skb, True):
        return
    if skb.data:
        sk.data_segs_in += segs
        tcp_rcv_rtt_measure_ts(sk, skb)
    if flags & ACK:
        if tcp_ack(sk, skb, FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT) < 0:
            net.drop(skb, "TCP_ACK_INVALID")
            return
    elif not flags & RST:
        net.drop(skb, "TCP_FLAGS")
        return
    if flags & URG or sk.urg_data:
        tcp_urg(sk, skb)                        # process urgent data
    if path is not None and (skb.data or flags & FIN):
        path.append("tcp_data_queue")
    tcp_data_queue(sk, skb)
    tcp_data_snd_check(sk)
    tcp_ack_snd_check(sk)
    tcp_fast_path_check(sk)


def tcp_fast_path_check(sk: TcpSock) -> None:
    """Re-enable header prediction when nothing unusual is pending (``tcp_fast_path_check``)."""
    if (not sk.ofo_queue and sk.rcv_wnd and sk.rcv_queue_bytes < sk.sk_rcvbuf
            and not sk.urg_data and sk.state == S.TCP_ESTABLISHED):
        sk.pred_flags = 1


# ---- SYN_SENT -------------------------------------------------------------------------------

def tcp_finish_connect(sk: TcpSock, skb: SKB | None) -> None:
    """Become ESTABLISHED after the handshake (``tcp_finish_connect`` / ``tcp_init_transfer``)."""
    tcp_set_state(sk, S.TCP_ESTABLISHED)
    now = sk.net.clock.now_us()
    sk.ack_lrcvtime = now
    tcp_init_transfer(sk)
    sk.lsndtime = now
    if sk.keepopen:
        inet_csk_reset_keepalive_timer(sk, sk.keepalive_time_when())
    sk.pred_flags = 1


def tcp_init_transfer(sk: TcpSock) -> None:
    """MTU probing state, initial cwnd (the route's initcwnd), congestion control and buffer
    space (``tcp_init_transfer``)."""
    if sk.mtup is not None or sk.net.sysctl.tcp_mtu_probing:
        from .mtu_probe import tcp_mtup_init

        tcp_mtup_init(sk)
    # RFC 5681's cwnd of 1 after a retransmitted SYN/SYN-ACK, but (RFC 6298's 1 s initial RTO
    # makes a single one likely spurious) only after more than one, as Linux 6.x does
    sk.snd_cwnd = 1 if sk.total_retrans > 1 and sk.undo_marker else tcp_init_cwnd(sk)
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    tcp_init_congestion_control(sk)
    tcp_init_buffer_space(sk)


def tcp_rcv_synsent_state_process(sk: TcpSock, skb: SKB) -> int:
    """SYN_SENT input (``tcp_rcv_synsent_state_process``); returns 1 to send a RST."""
    net = sk.net
    flags = skb.flags
    o = skb.opts
    # tcp_parse_options(estab=0): the SYN-ACK's TSecr is there for tcp_ack's RTT sample
    sk.saw_tstamp = bool(o is not None and o.saw_tstamp and net.sysctl.tcp_timestamps)
    if sk.saw_tstamp:
        sk.rcv_tsval, sk.rcv_tsecr = o.tsval, o.tsecr
    if flags & ACK:
        ack = skb.ack_seq
        if ack <= sk.iss or ack > sk.snd_nxt:
            if flags & RST:
                return 0
            return 1                           # "reset_and_undo": RST seq=ack
        if sk.saw_tstamp and sk.rcv_tsecr and sk.rtx_queue:
            # RFC 7323 5.5: the TSecr must echo one of our SYNs, sent between the first SYN
            # (retrans_stamp: here the SYN's first transmission, as a virtual clock may start
            # at 0) and now (tcp_time_stamp_ts without the connection's offset)
            ecr = (sk.rcv_tsecr - sk.tsoffset) & 0xFFFFFFFF
            now_ms = net.clock.now_us() // 1000
            first = sk.rtx_queue[0].first_tx // 1000
            if ((ecr - first) & 0xFFFFFFFF) > ((now_ms - first) & 0xFFFFFFFF):
                net.mib["TcpExtPAWSActive"] += 1
                return 1                       # reset_and_undo
        if flags & RST:
            tcp_reset(sk)
            return 0
        if not flags & SYN:
            net.drop(skb, "TCP_FLAGS")
            return 0
        # SYN-ACK: RFC 9293 3.10.7.3, Linux style
        if sk.ecn_flags:
            tcp_ecn_rcv_synack(sk, flags)
        sk.snd_wl1 = skb.seq
        tcp_ack(sk, skb, FLAG_SLOWPATH)
        sk.irs = skb.seq
        sk.rcv_nxt = skb.seq + 1
        sk.rcv_wup = sk.rcv_nxt
        sk.copied_seq = sk.rcv_nxt
        sk.snd_wnd = skb.window            # SYN windows are never scaled
        _apply_syn_options(sk, o)
        tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
        sk.snd_una = skb.ack_seq
        tcp_finish_connect(sk, skb)
        if sk.tfo is not None and (sk.tfo.syn_fastopen or sk.syn_data):
            return _fastopen.tcp_synsent_fastopen(sk, skb)
        _data = skb.data
        if _data or flags & FIN:
            # data on a SYN-ACK: queue it like any data
            skb.seq += 1
            tcp_data_queue(sk, skb)
        tcp_send_ack(sk)
        sk_wake(sk)
        return -1
    if flags & RST:
        net.drop(skb, "TCP_RESET")
        return 0
    if flags & SYN:
        # simultaneous open (RFC 9293 3.5): SYN_SENT -> SYN_RECV, send SYN-ACK
        o_ts = o is not None and o.saw_tstamp
        sk.irs = skb.seq
        sk.rcv_nxt = skb.seq + 1
        sk.rcv_wup = sk.rcv_nxt
        sk.copied_seq = sk.rcv_nxt
        _apply_syn_options(sk, o)
        if o_ts and sk.tstamp_ok:
            sk.ts_recent = o.tsval
            sk.ts_recent_stamp = net.clock.now_us() // 1_000_000
        tcp_set_state(sk, S.TCP_SYN_RECV)
        sk.snd_wnd = skb.window
        sk.snd_wl1 = skb.seq
        sk.max_window = sk.snd_wnd
        synack_flags = SYN | ACK
        if sk.ecn_flags:
            tcp_ecn_rcv_syn(sk, flags)
            # tcp_send_synack: the SYN skb, ECE|CWR and all, becomes the SYN-ACK
            head = sk.rtx_queue[0] if sk.rtx_queue else None
            if head is not None and head.flags & SYN:
                synack_flags = tcp_ecn_send_synack(sk, synack_flags | (head.flags & (ECE | CWR)))
        tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
        synack = SKB(sk.iss, sk.iss + 1, synack_flags)
        tcp_transmit_skb(sk, synack)
        return -1
    net.drop(skb, "TCP_FLAGS")
    return 0


def _apply_syn_options(sk: TcpSock, o) -> None:
    """Negotiate timestamps, SACK, window scale and MSS from the peer's SYN/SYN-ACK."""
    sc = sk.net.sysctl
    if o is None:
        sk.tstamp_ok = sk.sack_ok = sk.wscale_ok = False
        sk.snd_wscale = sk.rcv_wscale = 0
        sk.mss_clamp = S.TCP_MSS_DEFAULT if not sk.user_mss else min(sk.user_mss, 536)
        sk.tcp_header_len = 20
        return
    if o.saw_tstamp and sk.tstamp_ok:
        sk.tstamp_ok = True
        sk.ts_recent = o.tsval
        sk.ts_recent_stamp = sk.net.clock.now_us() // 1_000_000
        sk.tcp_header_len = 20 + 12
    else:
        sk.tstamp_ok = False
        sk.tcp_header_len = 20
    sk.sack_ok = bool(o.sack_ok and sk.sack_ok and sc.tcp_sack)
    if o.wscale >= 0 and sk.wscale_ok:
        sk.snd_wscale = min(o.wscale, S.TCP_MAX_WSCALE)
    else:
        sk.wscale_ok = False
        sk.snd_wscale = 0
        sk.rcv_wscale = 0
        sk.window_clamp = min(sk.window_clamp, 65535)
    peer_mss = o.mss if o.mss else S.TCP_MSS_DEFAULT
    if sk.user_mss and sk.user_mss < peer_mss:
        peer_mss = sk.user_mss
    sk.mss_clamp = peer_mss


# ---- every other state ---------------------------------------------------------------------

def tcp_rcv_state_process(sk: TcpSock, skb: SKB) -> int:
    """All states but ESTABLISHED and TIME_WAIT (``tcp_rcv_state_process``); 1 means send RST."""
    net = sk.net
    path = skb.path
    if path is not None:
        path.append("tcp_rcv_state_process")
    state = sk.state
    flags = skb.flags
    if state == S.TCP_CLOSE:
        return 1
    if state == S.TCP_LISTEN:
        # full listeners are handled in tcp_v4_do_rcv (request socks); reaching here means junk
        if flags & ACK:
            return 1
        net.drop(skb, "TCP_FLAGS")
        return 0
    if state == S.TCP_SYN_SENT:
        r = tcp_rcv_synsent_state_process(sk, skb)
        if r >= 0:
            return r
        tcp_data_snd_check(sk)
        return 0
    tfo = sk.tfo
    if tfo is not None and tfo.fastopen_rsk is not None and not _fastopen.tcp_fastopen_check_req(sk, skb):
        return 0
    tcp_parse_rx_opts(sk, skb)
    sk.segs_in += 1
    if not (flags & (ACK | RST | SYN)):
        net.drop(skb, "TCP_FLAGS")
        return 0
    if not tcp_validate_incoming(sk, skb, False):
        return 0
    if not flags & ACK:
        net.drop(skb, "TCP_FLAGS")
        return 0
    r = tcp_ack(sk, skb, FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT | FLAG_NO_CHALLENGE_ACK)
    acceptable = r > 0
    if r <= 0:
        if sk.state == S.TCP_SYN_RECV:
            return 1
        if r < 0:
            tcp_send_challenge_ack(sk)
            net.drop(skb, "TCP_ACK_INVALID")
            return 0
    state = sk.state
    if state == S.TCP_SYN_RECV:
        if not acceptable:
            return 1
        # simultaneous open completes, or a child created by tcp_check_req
        sk.snd_una = skb.ack_seq
        sk.snd_wnd = skb.window << sk.snd_wscale
        sk.snd_wl1 = skb.seq
        sk.delivered += 1                     # SYN-ACK delivery isn't tracked in tcp_ack
        fo_child = tfo is not None and tfo.fastopen_rsk is not None
        if fo_child:
            _fastopen.tcp_rcv_synrecv_state_fastopen(sk)
        else:
            sk.retrans_stamp = 0              # tcp_rcv_state_process, case TCP_SYN_RECV
        tcp_set_state(sk, S.TCP_ESTABLISHED)
        sk.ack_lrcvtime = net.clock.now_us()
        if sk.ca is None:
            tcp_init_transfer(sk)
        elif not fo_child:                    # a TFO child did tcp_init_transfer at birth
            if net.sysctl.tcp_mtu_probing or sk.mtup is not None:   # tcp_mtup_init
                from .mtu_probe import tcp_mtup_init

                tcp_mtup_init(sk)
            tcp_init_buffer_space(sk)
        if sk.ca is None or sk.ca.cong_control is None:
            tcp_update_pacing_rate(sk)
        sk.lsndtime = net.clock.now_us()
        tcp_fast_path_check(sk)
        if sk.keepopen:
            inet_csk_reset_keepalive_timer(sk, sk.keepalive_time_when())
        sk_wake(sk)
    elif state == S.TCP_FIN_WAIT1:
        if tfo is not None and tfo.fastopen_rsk is not None:
            _fastopen.tcp_rcv_synrecv_state_fastopen(sk)
        if sk.snd_una == sk.write_seq:
            tcp_set_state(sk, S.TCP_FIN_WAIT2)
            sk.sk_shutdown |= S.SEND_SHUTDOWN
            if not sk.dead:
                        sk_wake(sk)
            else:
                if sk.linger2 < 0:
                    tcp_done(sk)
                    net.mib["TcpExtTCPAbortOnData"] += 1
                    return 1
                if (skb.end_seq != skb.seq and skb.end_seq - (1 if flags & FIN else 0) > sk.rcv_nxt):
                    tcp_done(sk)
                    net.mib["TcpExtTCPAbortOnData"] += 1
                    return 1
                tmo = sk.tcp_fin_time()
                if tmo > S.TCP_TIMEWAIT_LEN:
                    inet_csk_reset_keepalive_timer(sk, tmo - S.TCP_TIMEWAIT_LEN)
                elif flags & FIN:
                    inet_csk_reset_keepalive_timer(sk, tmo)
                else:
                    tcp_time_wait(sk, S.TCP_FIN_WAIT2, tmo)
                    return 0
    elif state == S.TCP_CLOSING:
        if sk.snd_una == sk.write_seq:
            tcp_time_wait(sk, S.TCP_TIME_WAIT, 0)
            return 0
    elif state == S.TCP_LAST_ACK:
        if sk.snd_una == sk.write_seq:
            tcp_done(sk)
            return 0
    # step 6: check the URG bit; step 7: process the segment text
    if flags & URG or sk.urg_data:
        tcp_urg(sk, skb)
    state = sk.state
    if state in (S.TCP_FIN_WAIT1, S.TCP_FIN_WAIT2):
        if (sk.sk_shutdown & S.RCV_SHUTDOWN and skb.end_seq != skb.seq
                and skb.end_seq - (1 if flags & FIN else 0) > sk.rcv_nxt):
            # RFC 9293 / RFC 1122: data after we closed for reading -> reset
            net.mib["TcpExtTCPAbortOnData"] += 1
            tcp_reset(sk)
            return 1
        tcp_data_queue(sk, skb)
    elif state == S.TCP_ESTABLISHED:
        tcp_data_queue(sk, skb)
    if sk.state != S.TCP_CLOSE:
        tcp_data_snd_check(sk)
        tcp_ack_snd_check(sk)
    return 0


__all__ = ["tcp_rcv_established", "tcp_rcv_state_process", "tcp_ack", "tcp_data_queue", "tcp_fin",
           "tcp_enter_loss", "tcp_reset", "tcp_validate_incoming", "tcp_check_space"]


# fastopen.py imports this module (cycle): bound as a module, looked up at call time
from . import fastopen as _fastopen  # noqa: E402
