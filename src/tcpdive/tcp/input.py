"""tcp_input.c: the receive side — established fast/slow path, state machine, ACKs, data, FIN.

``tcp_rcv_established`` handles ESTABLISHED (header prediction first, then the slow path);
``tcp_rcv_state_process`` every other state. ``tcp_ack`` processes the ACK field,
``tcp_data_queue`` the payload (receive queue, out-of-order queue, SACK blocks), ``tcp_fin`` the
FIN. Loss recovery here is SACK/dupack-threshold based with PRR; RACK-TLP is not modelled yet.
"""

from __future__ import annotations

from bisect import insort
from collections import deque

from ..packet.tcp import ACK, FIN, RST, SYN
from ..skb import SKB, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS
from . import sock as S
from .cong import tcp_init_congestion_control
from .output import (
    __tcp_select_window,
    tcp_check_space,
    tcp_data_snd_check,
    tcp_rearm_rto,
    tcp_retransmit_skb,
    tcp_send_ack,
    tcp_send_delayed_ack,
    tcp_space,
    tcp_sync_mss,
    tcp_time_stamp_ts,
)
from .rtt import tcp_ack_update_rtt
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
    sk_wake,
    ts_before,
    unwrap,
)

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
FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED
FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED

ECONNREFUSED = 111
ECONNRESET = 104
EPIPE = 32


def _ensure_deque(sk: TcpSock, name: str) -> deque:
    q = getattr(sk, name)
    if not q:
        q = deque()
        setattr(sk, name, q)
    return q


def tcp_set_state(sk: TcpSock, state: int) -> None:
    from .tcp import tcp_set_state as _set

    _set(sk, state)


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
    return bool(sk.ack_quick) and not sk.in_pingpong_mode()


def inet_csk_schedule_ack(sk: TcpSock) -> None:
    sk.ack_pending |= ICSK_ACK_SCHED


def tcp_measure_rcv_mss(sk: TcpSock, skb: SKB) -> None:
    """Estimate the peer's MSS from segment sizes, for delayed-ACK decisions (``tcp_measure_rcv_mss``)."""
    lss = sk.ack_last_seg_size
    sk.ack_last_seg_size = 0
    n = len(skb.data)
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
    """Starting point of receive-buffer autotuning (``tcp_init_buffer_space``)."""
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
    from .tcp import tcp_done_with_error

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
            if nwin > sk.max_window:
                sk.max_window = nwin
                tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
    sk.snd_una = ack
    return flag


def tcp_sacktag_write_queue(sk: TcpSock, prior_snd_una: int) -> int:
    """Mark SACKed segments on the retransmit queue from the ACK's SACK blocks (``tcp_sacktag_write_queue``)."""
    blocks = sk.rx_opt_sack
    if not blocks or not sk.rtx_queue:
        return 0
    flag = 0
    ref = sk.snd_una
    ub = [(unwrap(a, ref), unwrap(b, ref)) for a, b in blocks]
    # D-SACK (RFC 2883): first block below the cumulative ACK or inside the second block
    first_start, first_end = ub[0]
    if first_start < sk.snd_una or (len(ub) > 1 and ub[1][0] <= first_start
                                    and first_end <= ub[1][1]):
        sk.net.mib["TcpExtTCPDSACKRecv"] += 1
        flag |= FLAG_DSACKING_ACK
        ub = ub[1:]
    for start, end in ub:
        if end <= start or end > sk.snd_nxt or start < sk.snd_una - sk.max_window:
            continue
        for skb in sk.rtx_queue:
            if skb.seq >= end:
                break
            if skb.seq >= start and skb.end_seq <= end and not skb.sacked & TCPCB_SACKED_ACKED:
                if skb.sacked & TCPCB_SACKED_RETRANS:
                    skb.sacked &= ~TCPCB_SACKED_RETRANS
                    sk.retrans_out -= 1
                if skb.sacked & TCPCB_LOST:
                    skb.sacked &= ~TCPCB_LOST
                    sk.lost_out -= 1
                skb.sacked |= TCPCB_SACKED_ACKED
                sk.sacked_out += 1
                sk.delivered += 1
                flag |= FLAG_DATA_SACKED
    return flag


def tcp_clean_rtx_queue(sk: TcpSock, prior_snd_una: int, now: int) -> tuple[int, int, int]:
    """Free acked segments, take an RTT sample by Karn's rule (``tcp_clean_rtx_queue``).

    Returns (flag, packets acked, rtt sample in us or -1).
    """
    flag = 0
    acked = 0
    seq_rtt = -1
    q = sk.rtx_queue
    snd_una = sk.snd_una
    while q:
        skb = q[0]
        if skb.end_seq > snd_una:
            break
        q.popleft()
        sacked = skb.sacked
        if sacked & TCPCB_SACKED_RETRANS:
            sk.retrans_out -= 1
            flag |= FLAG_RETRANS_DATA_ACKED
        elif not skb.retrans and not sacked & TCPCB_SACKED_ACKED:
            # first_ackt = tcp_skb_timestamp_us(skb): a segment sent at t=0 is a valid sample
            seq_rtt = now - skb.tstamp
            flag |= FLAG_ORIG_SACK_ACKED
        if sacked & TCPCB_SACKED_ACKED:
            sk.sacked_out -= 1
        else:
            sk.delivered += 1
        if sacked & TCPCB_LOST:
            sk.lost_out -= 1
        sk.packets_out -= 1
        acked += 1
        if skb.flags & SYN:
            flag |= FLAG_SYN_ACKED
            sk.retrans_stamp = 0          # tcp_clean_rtx_queue: the SYN's timeout clock stops
        else:
            flag |= FLAG_DATA_ACKED
        sk.sk_wmem_queued -= len(skb.data)
    if sk.sk_wmem_queued < 0:
        sk.sk_wmem_queued = 0
    if acked:
        flag |= FLAG_SET_XMIT_TIMER
    return flag, acked, seq_rtt


def tcp_ack(sk: TcpSock, skb: SKB, flag: int) -> int:
    """Process the ACK field (``tcp_ack``): window, SACK, RTT, cwnd, recovery.

    Returns > 0 if acceptable, 0 for an old duplicate we ignore, < 0 for an unacceptable ACK
    (-1 beyond snd_nxt, -2 too old).
    """
    net = sk.net
    now = net.clock.now_us()
    prior_snd_una = sk.snd_una
    ack_seq = skb.seq
    ack = skb.ack_seq
    prior_packets = sk.packets_out
    if ack < prior_snd_una:
        if ack < prior_snd_una - sk.max_window:
            if not flag & FLAG_NO_CHALLENGE_ACK:
                tcp_send_challenge_ack(sk)
            return -2
        # old ACK: still take SACK information
        if sk.rx_opt_sack:
            tcp_sacktag_write_queue(sk, prior_snd_una)
        return 0
    if ack > sk.snd_nxt:
        return -1
    if ack > prior_snd_una:
        flag |= FLAG_SND_UNA_ADVANCED
        sk.icsk_retransmits = 0
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
            flag |= tcp_sacktag_write_queue(sk, prior_snd_una)
    sk.bytes_acked += ack - prior_snd_una
    sk.icsk_probes_out = 0
    sk.rcv_tstamp = now
    if not prior_packets:
        # no_queue: a window update may let queued data go, or stop the window probe
        if sk.write_queue and sk.snd_wnd and sk.icsk_pending == S.ICSK_TIME_PROBE0:
            from .output import inet_csk_clear_xmit_timer

            sk.icsk_backoff = 0
            sk.icsk_probes_tstamp = 0
            inet_csk_clear_xmit_timer(sk)
        elif sk.write_queue and sk.icsk_pending == S.ICSK_TIME_PROBE0:
            # tcp_ack_probe: the window is still shut; the probe timer restarts from this
            # ACK with the current backoff (tcp_probe0_when), clamped to TCP_USER_TIMEOUT
            from .output import (
                tcp_clamp_probe0_to_user_timeout,
                tcp_probe0_when,
                tcp_reset_xmit_timer,
            )

            tcp_reset_xmit_timer(sk, S.ICSK_TIME_PROBE0, tcp_clamp_probe0_to_user_timeout(
                sk, tcp_probe0_when(sk, S.TCP_RTO_MAX)))
        return 1
    cflag, acked, seq_rtt = tcp_clean_rtx_queue(sk, prior_snd_una, now)
    flag |= cflag
    if seq_rtt < 0 and sk.saw_tstamp and sk.rcv_tsecr and flag & FLAG_ACKED:
        delta = (tcp_time_stamp_ts(sk) - sk.rcv_tsecr) & 0xFFFFFFFF
        if delta < 0x80000000:
            seq_rtt = max(delta * 1000, 1)
    if flag & FLAG_ACKED:
        tcp_ack_update_rtt(sk, seq_rtt)
        if sk.ca is not None:
            sk.ca.pkts_acked(sk, acked, seq_rtt)
    tcp_fastretrans_alert(sk, prior_snd_una, flag, acked)
    if flag & FLAG_SET_XMIT_TIMER:
        tcp_rearm_rto(sk)
    tp = net.trace.tcp_probe
    if tp.subs:
        tp.emit(sk, now)
    return 1


# ---- congestion state machine (tcp_fastretrans_alert, simplified) --------------------------

def tcp_set_ca_state(sk: TcpSock, state: int) -> None:
    if sk.ca is not None:
        sk.ca.set_state(sk, state)
    sk.icsk_ca_state = state


def tcp_enter_loss(sk: TcpSock) -> None:
    """RTO: mark everything not SACKed lost, cwnd to 1, enter Loss (``tcp_enter_loss``)."""
    from .cong import CA_EVENT_LOSS

    for skb in sk.rtx_queue:
        if skb.sacked & TCPCB_SACKED_ACKED:
            continue
        if skb.sacked & TCPCB_SACKED_RETRANS:
            skb.sacked &= ~TCPCB_SACKED_RETRANS
        if not skb.sacked & TCPCB_LOST:
            skb.sacked |= TCPCB_LOST
            sk.lost_out += 1
    sk.retrans_out = 0
    if (sk.icsk_ca_state <= TCP_CA_Disorder or sk.high_seq <= sk.snd_una
            or (sk.icsk_ca_state == TCP_CA_Loss and not sk.icsk_retransmits)):
        sk.prior_ssthresh = sk.snd_ssthresh
        sk.prior_cwnd = sk.snd_cwnd
        if sk.ca is not None:
            sk.snd_ssthresh = sk.ca.ssthresh(sk)
            sk.ca.cwnd_event(sk, CA_EVENT_LOSS)
        sk.undo_marker = sk.snd_una
        sk.undo_retrans = 0
    sk.snd_cwnd = sk.tcp_packets_in_flight() + 1
    sk.snd_cwnd_cnt = 0
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    sk.dupacks = 0
    tcp_set_ca_state(sk, TCP_CA_Loss)
    sk.high_seq = sk.snd_nxt


def tcp_mark_head_lost(sk: TcpSock) -> int:
    """Mark segments lost that dupthresh SACKed segments (or dupacks) have passed."""
    newly = 0
    if sk.sack_ok:
        sacked_above = 0
        skbs = list(sk.rtx_queue)
        for skb in reversed(skbs):
            if skb.sacked & TCPCB_SACKED_ACKED:
                sacked_above += 1
            elif sacked_above >= sk.reordering and not skb.sacked & (TCPCB_LOST | TCPCB_SACKED_RETRANS):
                skb.sacked |= TCPCB_LOST
                sk.lost_out += 1
                newly += 1
        q = sk.rtx_queue
        if q and not newly and not sk.lost_out and not q[0].sacked & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS):
            q[0].sacked |= TCPCB_LOST
            sk.lost_out += 1
            newly = 1
    else:
        q = sk.rtx_queue
        if q and not q[0].sacked & (TCPCB_LOST | TCPCB_SACKED_RETRANS):
            q[0].sacked |= TCPCB_LOST
            sk.lost_out += 1
            newly = 1
    return newly


def tcp_xmit_retransmit_queue(sk: TcpSock) -> None:
    """Retransmit lost segments as cwnd allows (``tcp_xmit_retransmit_queue``)."""
    if not sk.lost_out:
        return
    for skb in list(sk.rtx_queue):
        if sk.tcp_packets_in_flight() >= sk.snd_cwnd:
            break
        s = skb.sacked
        if s & TCPCB_LOST and not s & (TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED):
            if skb.seq < sk.snd_una and skb.end_seq <= sk.snd_una:
                continue
            if tcp_retransmit_skb(sk, skb):
                break
            if sk.icsk_ca_state != TCP_CA_Open:
                sk.prr_out += 1
            if sk.icsk_ca_state == TCP_CA_Recovery:
                sk.net.mib["TcpExtTCPFastRetrans"] += 1
            elif sk.icsk_ca_state == TCP_CA_Loss:
                sk.net.mib["TcpExtTCPSlowStartRetrans"] += 1
            if skb is sk.rtx_queue[0]:
                tcp_rearm_rto(sk)


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


def tcp_enter_recovery(sk: TcpSock) -> None:
    """Fast retransmit: ssthresh from the algorithm, PRR starts (``tcp_enter_recovery``)."""
    sk.prior_ssthresh = sk.snd_ssthresh
    sk.undo_marker = sk.snd_una
    sk.undo_retrans = 0
    sk.prior_cwnd = sk.snd_cwnd
    if sk.ca is not None:
        sk.snd_ssthresh = sk.ca.ssthresh(sk)
    sk.prr_delivered = 0
    sk.prr_out = 0
    sk.high_seq = sk.snd_nxt
    tcp_set_ca_state(sk, TCP_CA_Recovery)


def tcp_end_cwnd_reduction(sk: TcpSock) -> None:
    if sk.icsk_ca_state == TCP_CA_CWR or sk.snd_ssthresh < TCP_INFINITE_SSTHRESH:
        sk.snd_cwnd = max(sk.snd_ssthresh, 2) if sk.icsk_ca_state != TCP_CA_Loss else sk.snd_cwnd
        sk.snd_cwnd_stamp = sk.net.clock.now_us()


def tcp_any_retrans_done(sk: TcpSock) -> bool:
    """Is a retransmission still outstanding, or was the head ever retransmitted?"""
    if sk.retrans_out:
        return True
    q = sk.rtx_queue
    return bool(q and q[0].sacked & TCPCB_EVER_RETRANS)


def tcp_fastretrans_alert(sk: TcpSock, prior_snd_una: int, flag: int, acked: int) -> None:
    """Drive Open/Disorder/Recovery/Loss from this ACK and grow or reduce cwnd.

    ``retrans_stamp`` (start of the retransmission episode that tcp_write_timeout measures) is
    cleared as Linux does: on a dubious ACK in Open ("D. Check state exit conditions"), and by
    tcp_try_undo_recovery / tcp_try_to_open once no retransmission is outstanding. Without
    that, the first retransmission ever would start a clock that kills the connection
    tcp_retries2 worth of time later, whatever progress was made in between.
    """
    state = sk.icsk_ca_state
    if state == TCP_CA_Open and (not flag & FLAG_NOT_DUP or flag & (FLAG_ECE | FLAG_DATA_SACKED
                                                                    | FLAG_SACK_RENEGING)):
        sk.retrans_stamp = 0
    is_dupack = not (flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP)) and sk.packets_out > 0
    if not sk.sack_ok:
        if is_dupack:
            if sk.sacked_out + 1 < sk.packets_out:
                sk.sacked_out += 1       # tcp_add_reno_sack: dupacks stand for SACKed segments
                sk.delivered += 1
        elif flag & FLAG_SND_UNA_ADVANCED:
            sk.sacked_out = max(0, sk.sacked_out - acked)
            if state in (TCP_CA_Open, TCP_CA_Disorder):
                sk.sacked_out = 0
    newly_acked_sacked = acked + (1 if is_dupack else 0) if not sk.sack_ok else acked + (
        1 if flag & FLAG_DATA_SACKED else 0)
    # leaving a recovery episode
    if state in (TCP_CA_Recovery, TCP_CA_Loss) and sk.snd_una >= sk.high_seq:
        if state == TCP_CA_Recovery:
            tcp_end_cwnd_reduction(sk)
        tcp_set_ca_state(sk, TCP_CA_Open)
        sk.sacked_out = 0 if not sk.sack_ok else sk.sacked_out
        state = TCP_CA_Open
        sk.dupacks = 0
        if not tcp_any_retrans_done(sk):      # tcp_try_undo_recovery / tcp_try_to_open
            sk.retrans_stamp = 0
    if state == TCP_CA_Recovery:
        if not sk.sack_ok and flag & FLAG_SND_UNA_ADVANCED:
            tcp_mark_head_lost(sk)   # NewReno partial ACK: the next hole is lost too
        newly_lost = tcp_mark_head_lost(sk) if sk.sack_ok else 0
        tcp_cwnd_reduction(sk, newly_acked_sacked, newly_lost, flag)
        tcp_xmit_retransmit_queue(sk)
        return
    if state == TCP_CA_Loss:
        _cong_avoid(sk, acked, flag)
        tcp_xmit_retransmit_queue(sk)
        return
    # Open or Disorder: time to recover?
    dup_evidence = sk.sacked_out + 1 if sk.sack_ok else sk.sacked_out + 1
    if sk.sacked_out and (sk.lost_out or dup_evidence > sk.reordering):
        tcp_enter_recovery(sk)
        newly_lost = tcp_mark_head_lost(sk)
        tcp_cwnd_reduction(sk, max(newly_acked_sacked, 1), newly_lost, flag)
        tcp_xmit_retransmit_queue(sk)
        return
    if sk.sacked_out:
        if state != TCP_CA_Disorder:
            tcp_set_ca_state(sk, TCP_CA_Disorder)
    elif state == TCP_CA_Disorder:
        tcp_set_ca_state(sk, TCP_CA_Open)
    if state != TCP_CA_Open and not tcp_any_retrans_done(sk):   # tcp_try_to_open
        sk.retrans_stamp = 0
    _cong_avoid(sk, acked, flag)


def _cong_avoid(sk: TcpSock, acked: int, flag: int) -> None:
    if acked and sk.ca is not None and flag & FLAG_DATA_ACKED:
        sk.ca.cong_avoid(sk, sk.snd_una, acked)


# ---- data ----------------------------------------------------------------------------------

def tcp_queue_rcv(sk: TcpSock, data: bytes) -> None:
    """Append in-order bytes to the receive queue (``tcp_queue_rcv``)."""
    q = sk.receive_queue
    if not q:
        q = sk.receive_queue = deque()
    q.append(data)
    sk.rcv_queue_bytes += len(data)


def tcp_data_ready(sk: TcpSock) -> None:
    """Wake readers (``tcp_data_ready``)."""
    if sk.wq:
        sk_wake(sk)


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
    from .minisocks import tcp_time_wait

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
        tcp_data_ready(sk)


# ---- ESTABLISHED -----------------------------------------------------------------------------

def tcp_rcv_established(sk: TcpSock, skb: SKB) -> None:
    """ESTABLISHED input: header prediction fast path, else the full slow path."""
    net = sk.net
    path = skb.path
    tcp_parse_rx_opts(sk, skb)
    sk.segs_in += 1
    flags = skb.flags
    # --- fast path (header prediction): ACK only (maybe PSH), in sequence, window unchanged
    if ((flags & ~0x08) == ACK and skb.seq == sk.rcv_nxt and skb.ack_seq <= sk.snd_nxt
            and not sk.rx_opt_sack and skb.window << sk.snd_wscale == sk.snd_wnd
            and sk.pred_flags and (not sk.tstamp_ok or sk.saw_tstamp)):
        if not sk.saw_tstamp or not ts_before(sk.rcv_tsval, sk.ts_recent):
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
                sk.data_segs_in += 1
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
        sk.data_segs_in += 1
        tcp_rcv_rtt_measure_ts(sk, skb)
    if flags & ACK:
        if tcp_ack(sk, skb, FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT) < 0:
            net.drop(skb, "TCP_ACK_INVALID")
            return
    elif not flags & RST:
        net.drop(skb, "TCP_FLAGS")
        return
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
        from .timer import inet_csk_reset_keepalive_timer

        inet_csk_reset_keepalive_timer(sk, sk.keepalive_time_when())
    sk.pred_flags = 1


def tcp_init_transfer(sk: TcpSock) -> None:
    """Initial cwnd, congestion control and buffer space (``tcp_init_transfer``)."""
    sk.snd_cwnd = S.TCP_INIT_CWND if not sk.icsk_retransmits and not sk.total_retrans else 1
    if sk.total_retrans and sk.snd_cwnd < 1:
        sk.snd_cwnd = 1
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    tcp_init_congestion_control(sk)
    tcp_init_buffer_space(sk)
    if not sk.userlocks & 1:
        from .output import tcp_sndbuf_expand

        tcp_sndbuf_expand(sk)


def tcp_rcv_synsent_state_process(sk: TcpSock, skb: SKB) -> int:
    """SYN_SENT input (``tcp_rcv_synsent_state_process``); returns 1 to send a RST."""
    net = sk.net
    flags = skb.flags
    o = skb.opts
    if flags & ACK:
        ack = skb.ack_seq
        if ack <= sk.iss or ack > sk.snd_nxt:
            if flags & RST:
                return 0
            return 1                           # "reset_and_undo": RST seq=ack
        if flags & RST:
            tcp_reset(sk)
            return 0
        if not flags & SYN:
            net.drop(skb, "TCP_FLAGS")
            return 0
        # SYN-ACK: RFC 9293 3.10.7.3, Linux style
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
        tcp_sync_mss(sk, sk.icsk_pmtu_cookie)
        from .output import tcp_transmit_skb

        synack = SKB(sk.iss, sk.iss + 1, SYN | ACK)
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
        sk.retrans_stamp = 0                  # tcp_rcv_state_process, case TCP_SYN_RECV
        tcp_set_state(sk, S.TCP_ESTABLISHED)
        sk.ack_lrcvtime = net.clock.now_us()
        if sk.ca is None:
            tcp_init_transfer(sk)
        else:
            tcp_init_buffer_space(sk)
        sk.lsndtime = net.clock.now_us()
        tcp_fast_path_check(sk)
        if sk.keepopen:
            from .timer import inet_csk_reset_keepalive_timer

            inet_csk_reset_keepalive_timer(sk, sk.keepalive_time_when())
        sk_wake(sk)
    elif state == S.TCP_FIN_WAIT1:
        if sk.snd_una == sk.write_seq:
            tcp_set_state(sk, S.TCP_FIN_WAIT2)
            sk.sk_shutdown |= S.SEND_SHUTDOWN
            if not sk.dead:
                        sk_wake(sk)
            else:
                if sk.linger2 < 0:
                    from .tcp import tcp_done

                    tcp_done(sk)
                    net.mib["TcpExtTCPAbortOnData"] += 1
                    return 1
                if (skb.end_seq != skb.seq and skb.end_seq - (1 if flags & FIN else 0) > sk.rcv_nxt):
                    from .tcp import tcp_done

                    tcp_done(sk)
                    net.mib["TcpExtTCPAbortOnData"] += 1
                    return 1
                tmo = sk.tcp_fin_time()
                if tmo > S.TCP_TIMEWAIT_LEN:
                    from .timer import inet_csk_reset_keepalive_timer

                    inet_csk_reset_keepalive_timer(sk, tmo - S.TCP_TIMEWAIT_LEN)
                elif flags & FIN:
                    from .timer import inet_csk_reset_keepalive_timer

                    inet_csk_reset_keepalive_timer(sk, tmo)
                else:
                    from .minisocks import tcp_time_wait

                    tcp_time_wait(sk, S.TCP_FIN_WAIT2, tmo)
                    return 0
    elif state == S.TCP_CLOSING:
        if sk.snd_una == sk.write_seq:
            from .minisocks import tcp_time_wait

            tcp_time_wait(sk, S.TCP_TIME_WAIT, 0)
            return 0
    elif state == S.TCP_LAST_ACK:
        if sk.snd_una == sk.write_seq:
            from .tcp import tcp_done

            tcp_done(sk)
            return 0
    # step 6-7: urgent data ignored; process the segment text
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
