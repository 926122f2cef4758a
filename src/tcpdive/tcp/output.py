"""tcp_output.c: building and sending segments, window selection, Nagle, ACK/FIN/RST/SYN.

``tcp_write_xmit`` decides what may leave (congestion window, receive window, Nagle);
``tcp_transmit_skb`` writes header and options and hands the segment to IP.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque

from ..net.netns import NETIF_F_HW_CSUM, NETIF_F_TSO
from ..net.route import dst_metric_advmss
from ..packet.gso import CHECKSUM_PARTIAL
from ..packet.ipv4 import IPPROTO_TCP
from ..packet.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    TCPOPT_TS_NOPNOP,
    TS_ALIGNED,
    URG,
    sack_option,
    syn_options,
    tcp_build,
    ts_option,
)
from ..skb import SKB, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS
from .cong import CA_EVENT_CWND_RESTART, tcp_is_cwnd_limited
from .ecn import TCPHDR_SYN_ECN, tcp_ecn_clear_syn, tcp_ecn_send, tcp_ecn_send_syn
from .md5 import (
    MD5_OPTION,
    TCPOLEN_MD5SIG_ALIGNED,
    tcp_md5_connect_init,
    tcp_md5_established_len,
    tcp_md5_fill,
    tcp_v4_md5_lookup,
)
from .metrics import __sk_dst_check, sk_dst_set, tcp_init_cwnd, tcp_mss_clamp
from .pacing import tcp_pacing_check, tcp_update_skb_after_send
from .rate import tcp_rate_skb_sent
from .recovery import (
    tcp_schedule_loss_probe,
    tcp_tsorted_add,
    tcp_tsorted_del,
    tcp_tsorted_insert_after,
)
from .rtt import tcp_rto_min_us
from .sock import (
    GSO_LEGACY_MAX_SIZE,
    ICSK_ACK_PUSHED,
    ICSK_ACK_SCHED,
    ICSK_ACK_TIMER,
    ICSK_TIME_LOSS_PROBE,
    ICSK_TIME_PROBE0,
    ICSK_TIME_REO_TIMEOUT,
    ICSK_TIME_RETRANS,
    MAX_TCP_WINDOW,
    POLL_KEY_OUT,
    SK_PACING_SHIFT,
    TCP_ATO_MIN,
    TCP_CLOSE,
    TCP_CLOSE_WAIT,
    TCP_DELACK_MAX,
    TCP_DELACK_MIN,
    TCP_ESTABLISHED,
    TCP_MAX_WSCALE,
    TCP_MIN_MSS,
    TCP_MSS_DEFAULT,
    TCP_NAGLE_CORK,
    TCP_NAGLE_OFF,
    TCP_NAGLE_PUSH,
    TCP_RESOURCE_PROBE_INTERVAL,
    TCP_RMEM_TO_WIN_SCALE,
    TCP_RTO_MAX,
    TCP_RTO_MIN,
    TCP_SYN_SENT,
    TcpSock,
    jiffies_round,
    sk_wake,
    tcp_time_stamp_ts,
)
from .urgent import tcp_urg_ptr

MAX_TCP_OPTION_SPACE = 40
_pack_ts = TS_ALIGNED.pack
TCPOLEN_SACK_BASE_ALIGNED = 4
TCPOLEN_SACK_PERBLOCK = 8
TCPOLEN_TSTAMP_ALIGNED = 12


# ---- small queue helpers (queues are created lazily) ----------------------------------------

def tcp_add_write_queue_tail(sk: TcpSock, skb: SKB) -> None:
    """Queue ``skb``; the first one unsent starts the busy chronograph (``tcp_add_write_queue_tail``)."""
    q = sk.write_queue
    if not q:
        q = sk.write_queue = deque()
        q.append(skb)
        tcp_chrono_start(sk, TCP_CHRONO_BUSY)
        return
    q.append(skb)


def tcp_rtx_queue_tail_add(sk: TcpSock, skb: SKB) -> None:
    """Sent: onto the retransmit queue and the tail of the send-time list (tsorted_sent_queue)."""
    q = sk.rtx_queue
    if not q:
        q = sk.rtx_queue = deque()
    q.append(skb)
    tcp_tsorted_add(sk, skb)


# ---- tcp_info chronographs: busy, receive-window limited, send-buffer limited ----------------

TCP_CHRONO_UNSPEC = 0
TCP_CHRONO_BUSY = 1
TCP_CHRONO_RWND_LIMITED = 2
TCP_CHRONO_SNDBUF_LIMITED = 3


def tcp_chrono_set(sk: TcpSock, new: int) -> None:
    """Add the running chronograph's time to its total, start ``new`` (``tcp_chrono_set``);
    in jiffies as Linux counts them (tcpdive's HZ is 1000)."""
    now = sk.net.clock.now_us() // 1000
    old = sk.chrono_type
    if old == TCP_CHRONO_BUSY:
        sk.busy_time += now - sk.chrono_start
    elif old == TCP_CHRONO_RWND_LIMITED:
        sk.rwnd_limited += now - sk.chrono_start
    elif old == TCP_CHRONO_SNDBUF_LIMITED:
        sk.sndbuf_limited += now - sk.chrono_start
    sk.chrono_start = now
    sk.chrono_type = new


def tcp_chrono_start(sk: TcpSock, type_: int) -> None:
    """A more interesting chronograph takes over from the running one (``tcp_chrono_start``)."""
    if type_ > sk.chrono_type:
        tcp_chrono_set(sk, type_)


def tcp_chrono_stop(sk: TcpSock, type_: int) -> None:
    """``type_`` ended: idle if nothing is queued, else back to busy if it was the running
    one (``tcp_chrono_stop``)."""
    if not sk.write_queue and not sk.rtx_queue:
        tcp_chrono_set(sk, TCP_CHRONO_UNSPEC)
    elif type_ == sk.chrono_type:
        tcp_chrono_set(sk, TCP_CHRONO_BUSY)


# ---- time stamps --------------------------------------------------------------------------

# ---- MSS and windows ----------------------------------------------------------------------

def __tcp_mtu_to_mss(sk: TcpSock, pmtu: int) -> int:
    """MSS from path MTU, minus IP and TCP base headers, clamped (``__tcp_mtu_to_mss``)."""
    mss = pmtu - 20 - 20
    if mss > sk.mss_clamp:
        mss = sk.mss_clamp
    mss_min = sk.net.sysctl.tcp_min_snd_mss
    return mss if mss > mss_min else mss_min


def tcp_mtu_to_mss(sk: TcpSock, pmtu: int) -> int:
    """MSS for a path MTU less the options every segment carries (``tcp_mtu_to_mss``)."""
    return __tcp_mtu_to_mss(sk, pmtu) - (sk.tcp_header_len - 20)


def tcp_mss_to_mtu(sk: TcpSock, mss: int) -> int:
    """The inverse: path MTU a segment of ``mss`` bytes needs (``tcp_mss_to_mtu``)."""
    return mss + sk.tcp_header_len + 20


def tcp_sync_mss(sk: TcpSock, pmtu: int) -> int:
    """Recompute mss_cache for a path MTU (``tcp_sync_mss``): MSS minus options we always send,
    and with MTU probing on at most the MSS of the probed-good ``search_low``."""
    m = sk.mtup
    if m is not None and m.search_high > pmtu:
        m.search_high = pmtu
    mss = __tcp_mtu_to_mss(sk, pmtu) - (sk.tcp_header_len - 20)
    if sk.max_window and mss > (sk.max_window >> 1):
        half = max(sk.max_window >> 1, 68 - (sk.tcp_header_len - 20) - 40)
        mss = min(mss, half)
    mss = max(mss, TCP_MIN_MSS - (sk.tcp_header_len - 20))
    sk.icsk_pmtu_cookie = pmtu
    if m is not None and m.enabled:
        mss = min(mss, tcp_mtu_to_mss(sk, m.search_low))
    sk.mss_cache = mss
    return mss


def tcp_current_mss(sk: TcpSock) -> int:
    """MSS for the next segment (``tcp_current_mss``): mss_cache, re-synced first if the
    cached route's MTU moved (a route change, ICMP), less room for SACK blocks we must send."""
    mtu = sk.dst_mtu
    if mtu != sk.icsk_pmtu_cookie and mtu:
        tcp_sync_mss(sk, mtu)
    mss = sk.mss_cache
    hlen = sk.tcp_header_len
    if sk.md5sig_info is not None:
        # the header tcp_established_options writes now, against the one mss_cache assumed
        hdr = 20 + (TCPOLEN_TSTAMP_ALIGNED if sk.tstamp_ok else 0) + tcp_md5_established_len(sk)
        mss -= hdr - hlen
        hlen = hdr
    if sk.sack_ok and (sk.num_sacks or sk.dsack):
        n = sk.num_sacks + sk.dsack
        room = MAX_TCP_OPTION_SPACE - (hlen - 20)
        blocks = min(n, (room - TCPOLEN_SACK_BASE_ALIGNED) // TCPOLEN_SACK_PERBLOCK)
        if blocks > 0:
            mss -= TCPOLEN_SACK_BASE_ALIGNED + blocks * TCPOLEN_SACK_PERBLOCK
    return mss


def tcp_win_from_space(sk: TcpSock, space: int) -> int:
    """Bytes of window a buffer of ``space`` bytes can offer (``tcp_win_from_space``)."""
    return (space * sk.scaling_ratio) >> TCP_RMEM_TO_WIN_SCALE


def tcp_full_space(sk: TcpSock) -> int:
    return tcp_win_from_space(sk, sk.sk_rcvbuf)


def tcp_space(sk: TcpSock) -> int:
    """Free receive space as window (``tcp_space``); queued bytes stand for sk_rmem_alloc."""
    return tcp_win_from_space(sk, sk.sk_rcvbuf - sk.rcv_queue_bytes - sk.ofo_bytes)


def tcp_select_initial_window(sk: TcpSock, space: int, mss: int, wscale_ok: bool,
                              init_rcv_wnd: int = 0) -> tuple[int, int, int]:
    """Initial rcv_wnd, window_clamp and rcv_wscale (``tcp_select_initial_window``)."""
    window_clamp = sk.window_clamp or (0xFFFF << TCP_MAX_WSCALE)
    space = max(space, 0)
    space = min(window_clamp, space)
    if space > mss:
        space = (space // mss) * mss
    sc = sk.net.sysctl
    rcv_wnd = min(space, MAX_TCP_WINDOW) if sc.tcp_workaround_signed_windows else space
    if init_rcv_wnd:
        rcv_wnd = min(rcv_wnd, init_rcv_wnd * mss)
    rcv_wscale = 0
    if wscale_ok:
        space = max(space, sc.tcp_rmem[2], sc.rmem_max)
        space = min(space, window_clamp)
        rcv_wscale = max(0, min(space.bit_length() - 1 - 15, TCP_MAX_WSCALE))
    window_clamp = min(0xFFFF << rcv_wscale, window_clamp)
    return rcv_wnd, window_clamp, rcv_wscale


def __tcp_select_window(sk: TcpSock) -> int:
    """The window we would like to offer now (``__tcp_select_window``): never shrinks it."""
    mss = sk.ack_rcv_mss
    ratio = sk.scaling_ratio
    rcvbuf = sk.sk_rcvbuf
    # tcp_space(), tcp_full_space()
    free_space = ((rcvbuf - sk.rcv_queue_bytes - sk.ofo_bytes) * ratio) >> TCP_RMEM_TO_WIN_SCALE
    allowed_space = (rcvbuf * ratio) >> TCP_RMEM_TO_WIN_SCALE
    full_space = sk.window_clamp
    if allowed_space < full_space:
        full_space = allowed_space
    if mss > full_space:
        mss = full_space
        if mss <= 0:
            return 0
    wscale = sk.rcv_wscale
    if free_space < (full_space >> 1):
        sk.ack_quick = 0
        free_space = (free_space >> wscale) << wscale
        if free_space < (allowed_space >> 4) or free_space < mss:
            return 0
    if free_space > sk.rcv_ssthresh:
        free_space = sk.rcv_ssthresh
    if wscale:
        window = free_space
        unit = 1 << wscale
        window = (window + unit - 1) // unit * unit
    else:
        window = sk.rcv_wnd
        if window <= free_space - mss or window > free_space:
            window = (free_space // mss) * mss
        elif mss == full_space and free_space > window + (full_space >> 1):
            window = free_space
    return window


def tcp_select_window(sk: TcpSock) -> int:
    """Window field for an outgoing non-SYN segment; updates rcv_wnd/rcv_wup (``tcp_select_window``)."""
    old_win = sk.rcv_wnd
    rcv_nxt = sk.rcv_nxt
    cur_win = sk.rcv_wup + old_win - rcv_nxt      # tcp_receive_window()
    new_win = __tcp_select_window(sk)
    wscale = sk.rcv_wscale
    if new_win < cur_win:
        if new_win == 0:
            sk.net.mib["TcpExtTCPWantZeroWindowAdv"] += 1
        unit = 1 << wscale
        new_win = (cur_win + unit - 1) // unit * unit
    sk.rcv_wnd = new_win
    sk.rcv_wup = rcv_nxt
    if not wscale and sk.net.sysctl.tcp_workaround_signed_windows:
        if new_win > MAX_TCP_WINDOW:
            new_win = MAX_TCP_WINDOW
    elif new_win > 0xFFFF << wscale:
        new_win = 0xFFFF << wscale
    new_win >>= wscale
    if new_win == 0:
        sk.pred_flags = 0
        if old_win:
            sk.net.mib["TcpExtTCPToZeroWindowAdv"] += 1
    elif old_win == 0:
        sk.net.mib["TcpExtTCPFromZeroWindowAdv"] += 1
    return new_win


# ---- the transmit path --------------------------------------------------------------------

def tcp_established_options(sk: TcpSock, md5_size: int = 0) -> bytes:
    """Options for a non-SYN segment: timestamps, then DSACK/SACK blocks (``tcp_established_options``).

    ``md5_size``: bytes an MD5 signature takes in front of them (tcp_transmit_skb adds it).
    """
    opts = b""
    size = md5_size
    if sk.tstamp_ok:
        opts = _pack_ts(TCPOPT_TS_NOPNOP,                        # tcp_time_stamp_ts()
                        (sk.net.clock.now_us() // 1000 + sk.tsoffset) & 0xFFFFFFFF,
                        sk.ts_recent & 0xFFFFFFFF)
        size += TCPOLEN_TSTAMP_ALIGNED
        if not sk.sack_ok:
            return opts
    if sk.sack_ok and (sk.num_sacks or sk.dsack):
        remaining = MAX_TCP_OPTION_SPACE - size
        n = min(sk.num_sacks + sk.dsack,
                (remaining - TCPOLEN_SACK_BASE_ALIGNED) // TCPOLEN_SACK_PERBLOCK)
        if n > 0:
            blocks: list[tuple[int, int]] = []
            if sk.dsack and sk.duplicate_sack is not None:
                blocks.append(sk.duplicate_sack)
            blocks.extend(sk.selective_acks[: n - len(blocks)])
            opts += sack_option([(a & 0xFFFFFFFF, b & 0xFFFFFFFF) for a, b in blocks])
            if sk.dsack:
                sk.dsack = 0          # a DSACK is reported once (tcp_options_write)
                sk.duplicate_sack = None
    return opts


def tcp_transmit_skb(sk: TcpSock, skb: SKB, rcv_nxt: int | None = None,
                     gso_last: bool = False) -> int:
    """Write the header and options of ``skb`` and send it (``__tcp_transmit_skb``).

    ``gso_last``: ``skb`` is the last segment of a multi-segment TSO skb. Linux forces PSH on
    every GSO packet (``if (tcp_skb_pcount(skb) > 1) tcb->tcp_flags |= TCPHDR_PSH``, on the
    clone only) and GSO gives PSH to the last segment; tcpdive keeps one segment per skb, so
    the PSH goes on the wire copy of that last segment and not into ``skb.flags``. (When the
    route's device does TSO, ``tcp_write_xmit`` sends whole bursts with ``tcp_transmit_gso``.)

    Returns 0, or a positive errno if IP could not send it (no route, netfilter drop).
    """
    net = sk.net
    if sk.dst_genid != net.rt_genid:
        __sk_dst_check(sk)                       # ip_queue_xmit: the routes changed
    flags = skb.flags
    if gso_last:
        flags |= PSH
    now = net.clock.now_us()
    if rcv_nxt is None:
        rcv_nxt = sk.rcv_nxt
    md5 = tcp_v4_md5_lookup(sk) if sk.md5sig_info is not None else None
    if flags & SYN:
        ts = None
        if sk.tstamp_ok:
            ts = (tcp_time_stamp_ts(sk), sk.ts_recent if flags & ACK else 0)
        opts = syn_options(sk.advmss, sk.sack_ok, ts,
                           sk.rcv_wscale if sk.wscale_ok else None)
        if sk.tfo is not None:
            opts = _fastopen.tcp_fastopen_syn_options(sk, opts)
        window = min(sk.rcv_wnd, 0xFFFF)
    else:
        opts = tcp_established_options(sk, 0 if md5 is None else TCPOLEN_MD5SIG_ALIGNED)
        window = tcp_select_window(sk)
        if sk.ecn_flags:
            # new data: not sent before (seq at snd_nxt, tcp_event_new_data_sent comes after)
            flags |= tcp_ecn_send(sk, bool(skb.data) and skb.seq >= sk.snd_nxt)
    if md5 is not None:
        opts = MD5_OPTION + opts                    # tcp_options_write: the signature first
    # CHECKSUM_PARTIAL when the route's device checksums (sk_route_caps & NETIF_F_HW_CSUM)
    summed = CHECKSUM_PARTIAL if net.dev_features and (
        net.route_caps(sk.daddr) & NETIF_F_HW_CSUM) else 0
    urg = 0
    if sk.snd_up > skb.seq and sk.snd_up > sk.snd_una:     # tcp_urg_mode, before(seq, snd_up)
        urg = tcp_urg_ptr(sk, skb.seq)
        if urg < 0:
            urg = 0
        else:
            flags |= URG
    seg = tcp_build(sk.saddr, sk.daddr, sk.sport, sk.dport, skb.seq, rcv_nxt if flags & ACK else 0,
                    flags, window, opts, skb.data, urg, csum=not summed)
    if md5 is not None:
        seg = tcp_md5_fill(seg, md5.key, sk.saddr, sk.daddr, 24, not summed)
    if flags & ACK:
        tcp_event_ack_sent(sk, rcv_nxt)
    if skb.data:
        tcp_event_data_sent(sk, now)
        sk.data_segs_out += 1
    sk.segs_out += 1
    net.mib["TcpOutSegs"] += 1
    skb.tstamp = now
    sk.tx_count += 1
    skb.tx_seq = sk.tx_count
    err = net.ip_output(sk.saddr, sk.daddr, IPPROTO_TCP, seg, sk.tos, sk.ttl or None,
                        ip_summed=summed)
    if err:
        return tcp_xmit_err(sk, err)
    if skb.data or flags & (SYN | FIN):
        # a queued skb (Linux's cloned oskb; a bare ACK or RST is neither paced nor sampled)
        if sk.sk_pacing_status:
            tcp_update_skb_after_send(sk, len(skb.data), now)
        tcp_rate_skb_sent(sk, skb)
    return 0


def tcp_transmit_gso(sk: TcpSock, skbs: list[SKB], mss_now: int, psh: bool,
                     rtx: bool = False) -> int:
    """Send consecutive MSS skbs as one TSO packet (``__tcp_transmit_skb`` of a pcount > 1 skb).

    One header (options, window, ACK) for all, payloads joined, ``gso_size`` = ``mss_now``;
    the device or GSO cuts it into wire segments with PSH/FIN on the last (``tcp_gso_segment``).
    ``psh``: it ends a multi-segment burst, so it carries PSH as the per-segment path does.
    Counters count segments (TcpOutSegs, segs_out, data_segs_out += pcount). tcpdive keeps
    the retransmit queue per MSS skb, moved there before this runs: a send error is not undone
    (so ``rtx`` says whether it is a retransmission, for ``tcp_ecn_send``).
    """
    net = sk.net
    if sk.dst_genid != net.rt_genid:
        __sk_dst_check(sk)
    first = skbs[0]
    n = len(skbs)
    last = skbs[-1]
    flags = first.flags | (last.flags & (PSH | FIN)) | (PSH if psh else 0)
    payload = first.data if n == 1 else b"".join([s.data for s in skbs])
    rcv_nxt = sk.rcv_nxt
    opts = tcp_established_options(sk)
    window = tcp_select_window(sk)
    if sk.ecn_flags:
        flags |= tcp_ecn_send(sk, not rtx)       # GSO gives CWR to the first segment only
    caps = net.route_caps(sk.daddr)
    summed = CHECKSUM_PARTIAL if caps & NETIF_F_HW_CSUM else 0
    urg = 0
    if sk.snd_up > first.seq and sk.snd_up > sk.snd_una:   # one header: GSO copies it as is
        urg = tcp_urg_ptr(sk, first.seq)
        if urg < 0:
            urg = 0
        else:
            flags |= URG
    seg = tcp_build(sk.saddr, sk.daddr, sk.sport, sk.dport, first.seq,
                    rcv_nxt if flags & ACK else 0, flags, window, opts, payload, urg,
                    csum=not summed)
    if flags & ACK:
        tcp_event_ack_sent(sk, rcv_nxt)
    sk.data_segs_out += n
    sk.segs_out += n
    net.mib["TcpOutSegs"] += n
    err = net.ip_output(sk.saddr, sk.daddr, IPPROTO_TCP, seg, sk.tos, sk.ttl or None,
                        gso_size=mss_now if n > 1 else 0, gso_segs=n, ip_summed=summed)
    return tcp_xmit_err(sk, err) if err else 0


def tcp_xmit_err(sk: TcpSock, err: int) -> int:
    """IP did not send it: a local drop (NET_XMIT_DROP > 0) is congestion, so cwnd is reduced
    (``tcp_enter_cwr`` in ``__tcp_transmit_skb``); no route (-EHOSTUNREACH) is not. Returns a
    positive value for tcpdive's callers (NET_XMIT_DROP, or the errno)."""
    if err > 0:
        from .input import tcp_enter_cwr  # input imports this module; a rare path

        tcp_enter_cwr(sk)
        return err
    return -err


def tcp_event_data_sent(sk: TcpSock, now: int) -> None:
    """Note a data transmission: restart idle accounting, maybe enter pingpong mode."""
    if sk.tcp_packets_in_flight() == 0 and sk.ca is not None:
        sk.ca.cwnd_event(sk, 0)                  # CA_EVENT_TX_START
    sk.lsndtime = now
    if now - sk.ack_lrcvtime < sk.ack_ato:
        sk.ack_pingpong += 1


def tcp_event_ack_sent(sk: TcpSock, rcv_nxt: int) -> None:
    """An ACK went out: clear the delayed-ACK state (``tcp_event_ack_sent``)."""
    if rcv_nxt != sk.rcv_nxt:
        return
    if sk.ack_quick:
        sk.ack_quick -= 1
        if sk.ack_quick == 0:
            sk.ack_ato = TCP_ATO_MIN
    sk.ack_pending = 0
    sk.delack_timer.cancel()


def tcp_minshall_update(sk: TcpSock, mss_now: int, skb: SKB) -> None:
    if len(skb.data) < mss_now:
        sk.snd_sml = skb.end_seq


def tcp_nagle_test(sk: TcpSock, skb: SKB, cur_mss: int, nonagle: int) -> bool:
    """May ``skb`` go now under Nagle's rule, Minshall's variant (``tcp_nagle_test``)?"""
    if nonagle & TCP_NAGLE_PUSH:
        return True
    if skb.flags & FIN or sk.snd_up > sk.snd_una:     # nor urgent data (tcp_urg_mode)
        return True
    partial = len(skb.data) < cur_mss
    if not partial:
        return True
    if nonagle & TCP_NAGLE_CORK:
        return False
    if not nonagle and sk.packets_out and sk.snd_sml > sk.snd_una and sk.snd_sml <= sk.snd_nxt:
        return False
    return True


def tcp_wnd_end(sk: TcpSock) -> int:
    return sk.snd_una + sk.snd_wnd


def tcp_event_new_data_sent(sk: TcpSock, skb: SKB) -> None:
    """Move a sent skb to the retransmit queue and arm the RTO (``tcp_event_new_data_sent``)."""
    prior_packets = sk.packets_out
    sk.write_queue.popleft()
    q = sk.rtx_queue                             # tcp_rtx_queue_tail_add
    if not q:
        q = sk.rtx_queue = deque()
    q.append(skb)
    tcp_tsorted_add(sk, skb)
    sk.snd_nxt = skb.end_seq
    sk.packets_out += 1
    skb.first_tx = skb.tstamp
    if not prior_packets or sk.icsk_pending != ICSK_TIME_RETRANS:
        tcp_rearm_rto(sk)
    if skb.data:
        sk.net.mib["TcpExtTCPOrigDataSent"] += 1


# ---- Linux's skb layout and send-buffer accounting ------------------------------------------
#
# tcpdive queues one skb per segment; Linux queues ``size_goal``-sized skbs that
# ``tcp_write_xmit`` cuts into TSO bursts (``tso_fragment``) and grows (``tcp_grow_skb``).
# The layout matters for three visible things: the send-buffer charge (each skb costs its
# ``truesize`` overhead on top of the payload), when ``tcp_sendmsg`` needs a new skb (only
# then are sndbuf and TCP_NOTSENT_LOWAT checked) and which segments a TSO burst takes.
# ``sk.lskb`` keeps the start sequence of each Linux skb still queued (write + retransmit
# queues); entries below ``snd_una`` fall off lazily. Of the splits and merges loss recovery
# does on the retransmit queue, a partial retransmission and tcp_retrans_try_collapse are
# recorded here; SACK/loss-mark splits show as changes of scoreboard bits or send time
# (tcp_rtx_skb_segs), and SACK shifting only merges SACKed skbs, which are never resent.

SKB_TRUESIZE_OVERHEAD = 832    # truesize of an empty tcp_stream_alloc_skb() (6.18 x86-64)
MAX_TCP_HEADER = 192           # L1_CACHE_ALIGN(128 + MAX_HEADER) on 6.18 x86-64: with the
                               # initial sndbuf 2 * 10 * (roundup_pow_of_two(mss + 192 + 320)
                               # + 256) measured for peer MSS 500 / 536 / 1000 / 2000
SKB_SHINFO_SIZE = 320          # SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
SKB_STRUCT_SIZE = 256          # SKB_DATA_ALIGN(sizeof(struct sk_buff))
SK_GSO_MAX_SIZE = GSO_LEGACY_MAX_SIZE - (MAX_TCP_HEADER + 1)   # sk_setup_caps for TCP
GSO_MAX_SEGS = 65535


def tcp_lskb(sk: TcpSock) -> deque[int]:
    """Start sequences of the Linux skbs still queued, fully acked ones dropped."""
    lskb = sk.lskb
    if lskb is None:
        lskb = sk.lskb = deque()
    if not sk.write_queue and not sk.rtx_queue:
        lskb.clear()
        return lskb
    una = sk.snd_una
    while len(lskb) > 1 and lskb[1] <= una:
        lskb.popleft()
    if lskb and sk.write_seq <= una:
        lskb.clear()
    return lskb


def tcp_wmem_queued(sk: TcpSock) -> int:
    """``sk_wmem_queued`` as Linux counts it: payload plus each queued skb's overhead."""
    return sk.sk_wmem_queued + SKB_TRUESIZE_OVERHEAD * len(tcp_lskb(sk))


def tcp_lskb_entail(sk: TcpSock) -> None:
    """A new skb at the write queue tail (``tcp_stream_alloc_skb`` + ``tcp_skb_entail``)."""
    lskb = tcp_lskb(sk)
    if not lskb or lskb[-1] < sk.write_seq:
        lskb.append(sk.write_seq)


def tcp_lskb_tail_len(sk: TcpSock) -> int:
    """Length of the unsent Linux skb at the write queue tail, -1 if there is none."""
    lskb = tcp_lskb(sk)
    if not lskb or sk.write_seq <= sk.snd_nxt or not sk.write_queue:
        return -1
    return sk.write_seq - max(lskb[-1], sk.snd_nxt)


def tcp_lskb_sent(sk: TcpSock, start: int, end: int) -> None:
    """[start, end) just left as one TSO skb: skbs it grew into are gone (``tcp_grow_skb``),
    and if it was cut inside an skb the rest is a new one (``tso_fragment``)."""
    lskb = tcp_lskb(sk)
    if end <= start:
        return
    keep = [b for b in lskb if b <= start or b >= end]
    if not keep or keep[0] > start:
        keep.insert(0, start)
    data_end = sk.write_seq - (1 if sk.write_queue and sk.write_queue[-1].flags & FIN else 0)
    if end < data_end and end not in keep:
        keep.append(end)
        keep.sort()
    lskb.clear()
    lskb.extend(keep)


def tcp_notsent_lowat(sk: TcpSock) -> int:
    """TCP_NOTSENT_LOWAT, else net.ipv4.tcp_notsent_lowat (``tcp_notsent_lowat``)."""
    return sk.notsent_lowat or sk.net.sysctl.tcp_notsent_lowat


def tcp_stream_memory_free(sk: TcpSock, wake: int) -> bool:
    """Unsent bytes (doubled when deciding a wake-up) below the low-water mark
    (``tcp_stream_memory_free``)."""
    return ((sk.write_seq - sk.snd_nxt) << wake) < tcp_notsent_lowat(sk)


def __sk_stream_memory_free(sk: TcpSock, wake: int) -> bool:
    if tcp_wmem_queued(sk) >= sk.sk_sndbuf:
        return False
    return tcp_stream_memory_free(sk, wake)


def __sk_stream_is_writeable(sk: TcpSock, wake: int) -> bool:
    """Free space at least half of what is queued, and memory free
    (``sk_stream_wspace() >= sk_stream_min_wspace()`` in ``__sk_stream_is_writeable``)."""
    queued = tcp_wmem_queued(sk)
    return sk.sk_sndbuf - queued >= queued >> 1 and __sk_stream_memory_free(sk, wake)


def tcp_bound_to_half_wnd(sk: TcpSock, pktsize: int) -> int:
    """TSO skbs no larger than half the peer's largest window (``tcp_bound_to_half_wnd``)."""
    cutoff = sk.max_window >> 1 if sk.max_window > TCP_MSS_DEFAULT else sk.max_window
    if cutoff and pktsize > cutoff:
        return max(cutoff, 68 - sk.tcp_header_len)
    return pktsize


def tcp_xmit_size_goal(sk: TcpSock, mss_now: int, large_allowed: bool) -> int:
    """Bytes tcp_sendmsg puts in one skb: a whole number of MSS (``tcp_xmit_size_goal``).

    A socket with MD5 keys has GSO off and sk_gso_max_size 0: one MSS per skb.
    """
    if not large_allowed or sk.md5sig_info is not None:
        return mss_now
    new_size_goal = tcp_bound_to_half_wnd(sk, SK_GSO_MAX_SIZE)
    return max(min(new_size_goal // mss_now, GSO_MAX_SEGS) * mss_now, mss_now)


def tcp_tso_autosize(sk: TcpSock, mss_now: int, min_tso_segs: int) -> int:
    """Segments per TSO skb: about 1 ms of the pacing rate, plus a bonus at small min_rtt,
    at most sk_gso_max_size (``tcp_tso_autosize``)."""
    nbytes = sk.sk_pacing_rate >> SK_PACING_SHIFT
    # tcp_min_rtt() is ~0U before the first sample
    r = (sk.min_rtt_us if sk.min_rtt_us else 0xFFFFFFFF) >> sk.net.sysctl.tcp_tso_rtt_log
    if r < 32:
        nbytes += SK_GSO_MAX_SIZE >> r
    nbytes = min(nbytes, SK_GSO_MAX_SIZE)
    return max(nbytes // mss_now, min_tso_segs)


def tcp_tso_segs(sk: TcpSock, mss_now: int) -> int:
    """Largest TSO skb tcp_write_xmit builds, in segments (``tcp_tso_segs``)."""
    ca = sk.ca
    min_tso = getattr(ca, "min_tso_segs", None) if ca is not None else None
    min_tso = min_tso(sk) if min_tso is not None else sk.net.sysctl.tcp_min_tso_segs
    return tcp_tso_autosize(sk, mss_now, min_tso)


def tcp_cwnd_test(sk: TcpSock) -> int:
    """Segments cwnd lets go now, at most half of cwnd per TSO skb "to have at least 2 GSO
    packets in flight" (``tcp_cwnd_test``); 0 when cwnd is full."""
    in_flight = sk.tcp_packets_in_flight()
    cwnd = sk.snd_cwnd
    if in_flight >= cwnd:
        return 0
    return min(max(cwnd >> 1, 1), cwnd - in_flight)


def tcp_tso_burst(sk: TcpSock, mss_now: int, max_segs: int, nonagle: int) -> int:
    """How many of the MSS skbs at the head of the write queue Linux sends as one TSO skb.

    Per ``tcp_write_xmit`` round Linux takes the head skb, grows it from the next one up to
    ``max_segs`` MSS (``tcp_grow_skb``: one next skb, not past an EOR skb), then cuts it at
    ``tcp_mss_split_point``: ``max_segs`` MSS, or what the receive window allows, less a
    trailing partial segment Nagle holds back (``tcp_nagle_check``).
    """
    q = sk.write_queue
    head = q[0]
    b0 = head.seq
    data_end = sk.write_seq - (1 if q[-1].flags & FIN else 0)
    if not head.data:
        return 1
    later = [b for b in tcp_lskb(sk) if b > b0]
    b1 = later[0] if later else data_end
    b2 = later[1] if len(later) > 1 else data_end
    max_len = mss_now * max_segs
    length = b1 - b0
    is_tail = b1 >= data_end
    if length < max_len and not is_tail and not _lskb_eor(q, b1):
        length = min(max_len, b2 - b0)               # tcp_grow_skb
        is_tail = b0 + length >= data_end
    if length <= mss_now:
        return 1
    # tcp_mss_split_point
    window = tcp_wnd_end(sk) - b0
    if max_len <= window and not is_tail:
        limit = max_len
    else:
        needed = min(length, window)
        if max_len <= needed:
            limit = max_len
        else:
            partial = needed % mss_now
            limit = needed
            if partial and (nonagle & TCP_NAGLE_CORK or (
                    not nonagle and sk.packets_out and sk.snd_una < sk.snd_sml <= sk.snd_nxt)):
                limit = needed - partial
    limit = min(limit, length)
    segs = 0
    for s in q:
        if limit <= 0:
            break
        limit -= len(s.data)
        segs += 1
    return max(segs, 1)


def tcp_grow_skb_psh(q: deque[SKB], burst: int) -> None:
    """A burst grown into the next skb (``tcp_grow_skb``) keeps the head skb's flags: a PSH that
    marked the head's end now marks the end of the grown skb, not a segment inside it."""
    moved = False
    for i, s in enumerate(q):
        if i == burst - 1:
            if moved:
                s.flags |= PSH
            return
        if s.flags & PSH:
            s.flags &= ~PSH
            moved = True


def _lskb_eor(q: deque[SKB], end: int) -> bool:
    """Is the Linux skb ending at ``end`` marked EOR (MSG_EOR: nothing may join it)?"""
    for s in q:
        if s.end_seq == end:
            return bool(getattr(s, "eor", False))
        if s.seq >= end:
            break
    return False


def tcp_write_xmit(sk: TcpSock, mss_now: int, nonagle: int, push_one: bool = False) -> bool:
    """Send what congestion window, receive window and Nagle allow (``tcp_write_xmit``).

    Returns True if nothing could be sent while data waits (the caller may arm the probe timer).
    """
    sent = 0
    is_cwnd_limited = False
    q = sk.write_queue
    max_segs = 0      # tcp_tso_segs, asked when a burst could be more than one segment
    burst_start = 0
    burst = 0         # segments left of the TSO skb Linux would be sending (tcpdive: MSS skbs)
    multi = False     # that TSO skb has more than one segment: its last one carries PSH
    # sk_can_gso: the route's device does TSO, so a burst leaves as one packet
    gso: list[SKB] | None = [] if sk.net.dev_features and sk.md5sig_info is None and (
        sk.net.route_caps(sk.daddr) & NETIF_F_TSO) else None      # (MD5: sk_gso_disable)
    gso_bytes = 0
    now = sk.net.clock.now_us()
    cwnd_quota = quota_left = 0
    is_rwnd_limited = False
    wnd_end = sk.snd_una + sk.snd_wnd            # tcp_wnd_end: no ACK is taken in this loop
    if sk.mtup is not None and not push_one:
        from .mtu_probe import tcp_mtu_probe  # MTU probing on (tcp_mtu_probing)

        result = tcp_mtu_probe(sk)
        if not result:
            return False
        if result > 0:
            sent = 1
            q = sk.write_queue
    while q:
        skb = q[0]
        if not burst and sk.sk_pacing_status and tcp_pacing_check(sk, now):
            break                                # internal pacing: the next skb is not due
        # only packets_out moves in this loop: while fewer skbs than the last quota went out
        # since tcp_cwnd_test, cwnd still has room and the test need not run again
        if not burst or quota_left <= 0:
            cwnd_quota = quota_left = tcp_cwnd_test(sk)
            if not cwnd_quota:
                if push_one != 2:
                    is_cwnd_limited = True
                    break
                cwnd_quota = 1
        quota_left -= 1
        if skb.end_seq - (1 if skb.flags & FIN else 0) > wnd_end and skb.data:
            # does not fit the receive window: a TSO skb goes only if its first segment fits
            # (tcp_snd_wnd_test). Linux may end it with a short segment at the window edge
            # (tcp_mss_split_point) and cut what follows into MSS segments from there;
            # tcpdive's queue is cut into segments once, so it holds that short one back
            fits = wnd_end - skb.seq
            if fits < min(len(skb.data), mss_now):
                is_rwnd_limited = True
                break
            tcp_fragment(sk, skb, fits)
        # Nagle only holds back the tail (tcp_nagle_test passes TCP_NAGLE_PUSH otherwise)
        if q[-1] is skb and not tcp_nagle_test(sk, skb, mss_now, nonagle):
            break
        n = len(skb.data)
        if n > mss_now:
            tcp_fragment(sk, skb, mss_now)
        elif n < mss_now and len(q) > 1 and n:
            tcp_grow_skb(sk, skb, mss_now - n)
        if not burst:
            if len(q) == 1 and len(skb.data) <= mss_now:
                burst = 1                            # a lone segment is a burst of one
            else:
                if not max_segs:
                    max_segs = tcp_tso_segs(sk, mss_now)
                burst = tcp_tso_burst(sk, mss_now, min(cwnd_quota, max_segs), nonagle)
                if burst > 1:
                    tcp_grow_skb_psh(q, burst)
            multi = burst > 1
            burst_start = skb.seq
        burst -= 1
        if gso is not None and multi:
            n = len(skb.data)
            if gso and gso_bytes + n > SK_GSO_MAX_SIZE:
                tcp_transmit_gso(sk, gso, mss_now, False)
                gso = []
                gso_bytes = 0
            # what __tcp_transmit_skb does per skb before the TSO packet leaves
            if not gso:
                tcp_event_data_sent(sk, now)
            skb.tstamp = now
            sk.tx_count += 1
            skb.tx_seq = sk.tx_count
            if sk.sk_pacing_status:
                tcp_update_skb_after_send(sk, n, now)
            tcp_rate_skb_sent(sk, skb)
            gso.append(skb)
            gso_bytes += n
        elif tcp_transmit_skb(sk, skb, gso_last=multi and not burst):
            break
        tcp_event_new_data_sent(sk, skb)
        if len(skb.data) < mss_now:              # tcp_minshall_update
            sk.snd_sml = skb.end_seq
        sent += 1
        if gso and (not burst or len(skb.data) != mss_now or skb.flags & (PSH | FIN)):
            # the TSO packet ends with the burst, or before a segment GSO would cut elsewhere
            tcp_transmit_gso(sk, gso, mss_now, not burst)
            gso = []
            gso_bytes = 0
        if not burst:
            tcp_lskb_sent(sk, burst_start, sk.snd_nxt)
        if sk.icsk_pending == ICSK_TIME_LOSS_PROBE:
            sk.tlp_high_seq = sk.snd_nxt
        if push_one and not burst:
            break
    if gso:
        tcp_transmit_gso(sk, gso, mss_now, False)
    if burst and sent:
        tcp_lskb_sent(sk, burst_start, sk.snd_nxt)
    if is_rwnd_limited:
        tcp_chrono_start(sk, TCP_CHRONO_RWND_LIMITED)
    else:
        tcp_chrono_stop(sk, TCP_CHRONO_RWND_LIMITED)
    if sent:
        if sk.icsk_ca_state in (2, 3):           # tcp_in_cwnd_reduction: CWR, Recovery
            sk.prr_out += sent
        if push_one != 2:
            tcp_schedule_loss_probe(sk, False)  # one loss probe per tail loss episode
        tcp_cwnd_validate(sk, is_cwnd_limited)
        return False
    if is_cwnd_limited:
        sk.is_cwnd_limited = True
    return not sk.packets_out and bool(q)


def tcp_cwnd_validate(sk: TcpSock, is_cwnd_limited: bool) -> None:
    """Track whether cwnd is used (RFC 7661 cwnd validation, ``tcp_cwnd_validate``): a window
    the application did not fill is not grown, and after an RTO's worth of starving it decays
    (``tcp_cwnd_application_limited``)."""
    if (sk.snd_una >= sk.cwnd_usage_seq or is_cwnd_limited
            or (not sk.is_cwnd_limited and sk.packets_out > sk.max_packets_out)):
        sk.is_cwnd_limited = is_cwnd_limited
        sk.max_packets_out = sk.packets_out
        sk.cwnd_usage_seq = sk.snd_nxt
    now = sk.net.clock.now_us()
    if tcp_is_cwnd_limited(sk):
        sk.snd_cwnd_used = 0
        sk.snd_cwnd_stamp = now
    else:
        if sk.packets_out > sk.snd_cwnd_used:
            sk.snd_cwnd_used = sk.packets_out
        if (sk.net.sysctl.tcp_slow_start_after_idle
                and jiffies_round(now - sk.snd_cwnd_stamp) >= sk.icsk_rto):
            tcp_cwnd_application_limited(sk)
        # all sent, not cwnd limited, the writer out of buffer: send-buffer limited
        if (not sk.write_queue and sk.sock_nospace
                and sk.state in (TCP_ESTABLISHED, TCP_CLOSE_WAIT)):
            tcp_chrono_start(sk, TCP_CHRONO_SNDBUF_LIMITED)


def tcp_cwnd_application_limited(sk: TcpSock) -> None:
    """cwnd decays towards what was used (``tcp_cwnd_application_limited``)."""
    if sk.icsk_ca_state == 0 and sk.wq is None:      # Open, and no writer out of buffer
        win_used = max(sk.snd_cwnd_used, tcp_init_cwnd(sk))
        if win_used < sk.snd_cwnd:
            sk.snd_ssthresh = _current_ssthresh(sk)
            sk.snd_cwnd = (sk.snd_cwnd + win_used) >> 1
        sk.snd_cwnd_used = 0
    sk.snd_cwnd_stamp = sk.net.clock.now_us()


def _current_ssthresh(sk: TcpSock) -> int:
    if sk.icsk_ca_state in (2, 3):
        return sk.snd_ssthresh
    return max(sk.snd_ssthresh, (sk.snd_cwnd >> 1) + (sk.snd_cwnd >> 2))


def tcp_cwnd_restart(sk: TcpSock, delta: int) -> None:
    """After idle: halve cwnd per RTO idle, down to the initial window (``tcp_cwnd_restart``)."""
    if sk.ca is not None:
        sk.ca.cwnd_event(sk, CA_EVENT_CWND_RESTART)
    cwnd = sk.snd_cwnd
    restart_cwnd = min(tcp_init_cwnd(sk), cwnd)
    sk.snd_ssthresh = _current_ssthresh(sk)
    delta -= sk.icsk_rto
    while delta > 0 and cwnd > restart_cwnd:
        cwnd >>= 1
        delta -= sk.icsk_rto
    sk.snd_cwnd = max(cwnd, restart_cwnd)
    sk.snd_cwnd_stamp = sk.net.clock.now_us()
    sk.snd_cwnd_used = 0


def tcp_slow_start_after_idle_check(sk: TcpSock) -> None:
    """New data after more than an RTO of silence restarts from a smaller cwnd
    (``tcp_slow_start_after_idle_check``, net.ipv4.tcp_slow_start_after_idle)."""
    if not sk.net.sysctl.tcp_slow_start_after_idle or sk.packets_out:
        return
    delta = jiffies_round(sk.net.clock.now_us() - sk.lsndtime)
    if delta > sk.icsk_rto:
        tcp_cwnd_restart(sk, delta)


def tcp_grow_skb(sk: TcpSock, skb: SKB, amount: int) -> None:
    """Move up to ``amount`` bytes of the next unsent skb into the head one (``tcp_grow_skb``).

    Linux's skbs are TSO-sized and cut at multiples of the current MSS, then a short head is
    grown from the next skb, so a changed MSS (SACK blocks taking option room) gives full
    segments; tcpdive's MSS skbs get the same wire. Not past an EOR skb (tcp_skb_can_collapse).
    """
    q = sk.write_queue
    nxt = q[1]
    if getattr(skb, "eor", False) or skb.flags & FIN:
        return
    data = nxt.data
    k = min(amount, len(data))
    if k <= 0:
        return
    skb.data += data[:k]
    skb.end_seq += k
    lskb = sk.lskb                         # the Linux skb that began at nxt now begins k later
    if lskb and nxt.seq in lskb:
        i = lskb.index(nxt.seq)
        if nxt.seq + k >= (lskb[i + 1] if i + 1 < len(lskb) else sk.write_seq):
            del lskb[i]
        else:
            lskb[i] = nxt.seq + k
    if k == len(data):                     # next eaten whole (tcp_eat_one_skb)
        skb.flags |= nxt.flags
        skb.end_seq = nxt.end_seq
        skb.eor = getattr(nxt, "eor", False)
        del q[1]
    else:
        nxt.data = data[k:]
        nxt.seq += k


def tcp_fragment(sk: TcpSock, skb: SKB, len_: int) -> None:
    """Split the head of the write queue at ``len_`` bytes (``tcp_fragment``); FIN/PSH go right."""
    q = sk.write_queue
    data = skb.data
    right = SKB(skb.seq + len_, skb.end_seq, skb.flags, data[len_:])
    skb.data = data[:len_]
    skb.end_seq = skb.seq + len_
    skb.flags &= ~(FIN | PSH)
    idx = 0
    for i, s in enumerate(q):
        if s is skb:
            idx = i
            break
    q.insert(idx + 1, right)


def __tcp_push_pending_frames(sk: TcpSock, cur_mss: int, nonagle: int) -> None:
    """Push the write queue; arm the zero-window probe if stuck (``__tcp_push_pending_frames``)."""
    if sk.state == TCP_CLOSE:
        return
    if tcp_write_xmit(sk, cur_mss, nonagle):
        tcp_check_probe_timer(sk)


def tcp_push_pending_frames(sk: TcpSock) -> None:
    if sk.write_queue:
        __tcp_push_pending_frames(sk, tcp_current_mss(sk), sk.nonagle)


def tcp_data_snd_check(sk: TcpSock) -> None:
    """After an ACK: send queued data the new window allows (``tcp_data_snd_check``)."""
    if sk.write_queue:
        tcp_push_pending_frames(sk)
    tcp_check_space(sk)


def tcp_sndbuf_expand(sk: TcpSock) -> None:
    """Grow the send buffer to twice cwnd's worth of worst-case skbs: one per segment, its
    head a power-of-two kmalloc (``tcp_sndbuf_expand``)."""
    per_mss = max(sk.mss_clamp, sk.mss_cache) + MAX_TCP_HEADER + SKB_SHINFO_SIZE
    per_mss = (1 << (per_mss - 1).bit_length()) + SKB_STRUCT_SIZE     # roundup_pow_of_two
    nr_segs = max(10, sk.snd_cwnd, sk.reordering + 1)
    expand = getattr(sk.ca, "sndbuf_expand", None) if sk.ca is not None else None
    sndmem = (expand(sk) if expand is not None else 2) * nr_segs * per_mss
    if sk.sk_sndbuf < sndmem:
        sk.sk_sndbuf = min(sndmem, sk.net.sysctl.tcp_wmem[2])


def tcp_check_space(sk: TcpSock) -> None:
    """After ACKs free buffer space, for a writer that found none (SOCK_NOSPACE: someone
    sleeps on the socket): grow the send buffer if allowed, then ``sk_stream_write_space``
    wakes it once free space is at least half of what is still queued
    (``tcp_check_space`` / ``tcp_new_space``). ``sk.sock_nospace`` is SOCK_NOSPACE, set by
    tcp_sendmsg when it runs out of buffer and by poll() when it reports no POLLOUT."""
    if not sk.sock_nospace:
        return
    # tcp_should_expand_sndbuf: not if SO_SNDBUF was set, nor with cwnd filled
    if not sk.userlocks & 1 and sk.tcp_packets_in_flight() < sk.snd_cwnd:
        tcp_sndbuf_expand(sk)
    sk_stream_write_space(sk)
    if not sk.sock_nospace:
        tcp_chrono_stop(sk, TCP_CHRONO_SNDBUF_LIMITED)


def sk_stream_write_space(sk: TcpSock) -> None:
    """Wake writers once the socket is writeable again (``sk_stream_write_space``)."""
    if __sk_stream_is_writeable(sk, 1):
        sk.sock_nospace = False
        sk_wake(sk, POLL_KEY_OUT)


# ---- timers from the send side --------------------------------------------------------------

XMIT_TIMER_NAMES = {ICSK_TIME_RETRANS: "retrans", ICSK_TIME_PROBE0: "probe0",
                    ICSK_TIME_LOSS_PROBE: "loss_probe", ICSK_TIME_REO_TIMEOUT: "reo"}


def tcp_reset_xmit_timer(sk: TcpSock, what: int, when: int, max_when: int = TCP_RTO_MAX) -> None:
    """Arm the retransmit/probe timer (``inet_csk_reset_xmit_timer``)."""
    if when > max_when:
        when = max_when
    sk.icsk_pending = what
    sk.icsk_timeout = sk.net.clock.now_us() + when
    sk.retransmit_timer.mod(sk.icsk_timeout)
    tp = sk.net.trace.timer
    if tp.subs:
        tp.emit(sk, XMIT_TIMER_NAMES.get(what, "probe0"), "start", sk.icsk_timeout)


def inet_csk_clear_xmit_timer(sk: TcpSock) -> None:
    sk.icsk_pending = 0
    sk.retransmit_timer.cancel()


def tcp_clamp_rto_to_user_timeout(sk: TcpSock) -> int:
    """Do not sleep past TCP_USER_TIMEOUT (``tcp_clamp_rto_to_user_timeout``)."""
    user_timeout = sk.icsk_user_timeout
    if not user_timeout or not sk.retrans_stamp:
        return sk.icsk_rto
    elapsed = sk.net.clock.now_us() // 1000 - sk.retrans_stamp
    remaining = user_timeout - elapsed
    if remaining <= 0:
        return 1000
    return min(sk.icsk_rto, remaining * 1000)


def tcp_rearm_rto(sk: TcpSock) -> None:
    """Restart the RTO for the oldest outstanding segment, or stop it (``tcp_rearm_rto``)."""
    if sk.tfo is not None and sk.tfo.fastopen_rsk is not None:
        return              # the timer retransmits a Fast Open child's SYN-ACK: stay put
    if not sk.packets_out:
        # inet_csk_clear_xmit_timer(sk, ICSK_TIME_RETRANS) zeroes icsk_pending whatever is
        # armed (RTO, loss probe, reordering timer): nothing is left to time out
        inet_csk_clear_xmit_timer(sk)
    else:
        rto = sk.icsk_rto
        if sk.icsk_pending in (ICSK_TIME_REO_TIMEOUT, ICSK_TIME_LOSS_PROBE) and sk.rtx_queue:
            # the RTO counts from the head's transmission, not from now (tcp_rto_delta_us)
            delta_us = rto - (sk.net.clock.now_us() - sk.rtx_queue[0].tstamp)
            rto = jiffies_round(max(delta_us, 1))
        tcp_reset_xmit_timer(sk, ICSK_TIME_RETRANS, rto)


def tcp_probe0_base(sk: TcpSock) -> int:
    return max(sk.icsk_rto, TCP_RTO_MIN)


def tcp_probe0_when(sk: TcpSock, max_when: int) -> int:
    """Zero-window probe interval: base << backoff, capped (``tcp_probe0_when``)."""
    backoff = min((TCP_RTO_MAX // TCP_RTO_MIN).bit_length() - 1 + 1, sk.icsk_backoff)
    return min(tcp_probe0_base(sk) << backoff, max_when)


def tcp_check_probe_timer(sk: TcpSock) -> None:
    """Nothing in flight but data waits: probe the window (``tcp_check_probe_timer``)."""
    if not sk.packets_out and not sk.icsk_pending:
        tcp_reset_xmit_timer(sk, ICSK_TIME_PROBE0, tcp_probe0_base(sk))


# ---- control segments ----------------------------------------------------------------------

def tcp_acceptable_seq(sk: TcpSock) -> int:
    """Sequence number for a segment with no data (``tcp_acceptable_seq``)."""
    wnd_end = tcp_wnd_end(sk)
    if sk.snd_nxt <= wnd_end or (sk.rcv_wscale and sk.snd_nxt - wnd_end < (1 << sk.rcv_wscale)):
        return sk.snd_nxt
    return wnd_end


def __tcp_send_ack(sk: TcpSock, rcv_nxt: int) -> None:
    if sk.state == TCP_CLOSE:
        return
    skb = SKB(tcp_acceptable_seq(sk), 0, ACK)
    skb.end_seq = skb.seq
    tcp_transmit_skb(sk, skb, rcv_nxt)


def tcp_send_ack(sk: TcpSock) -> None:
    """Send a pure ACK now (``tcp_send_ack``)."""
    __tcp_send_ack(sk, sk.rcv_nxt)


def tcp_delack_max(sk: TcpSock) -> int:
    """Longest delayed-ACK wait (``tcp_delack_max``, Linux 6.11+): icsk_delack_max, and one
    jiffy less than the RTO floor (the route's rto_min, else tcp_rto_min_us) -- 199 ms by
    default -- so a delayed ACK never races the peer's minimum RTO."""
    rto_min = -(-tcp_rto_min_us(sk) // 1000)            # usecs_to_jiffies (HZ 1000)
    from_rto_min = (max(rto_min, 2) - 1) * 1000
    d = sk.icsk_delack_max
    return d if d < from_rto_min else from_rto_min


def tcp_send_delayed_ack(sk: TcpSock) -> None:
    """Schedule the delayed ACK within ato, bounded by RTT and tcp_delack_max
    (``tcp_send_delayed_ack``)."""
    ato = sk.ack_ato
    if ato > TCP_DELACK_MIN:
        max_ato = 500_000
        if sk.in_pingpong_mode() or sk.ack_pending & ICSK_ACK_PUSHED:
            max_ato = TCP_DELACK_MAX          # the constant; icsk_delack_max applies below
        if sk.srtt_us:
            rtt = max(jiffies_round(sk.srtt_us >> 3), TCP_DELACK_MIN)
            if rtt < max_ato:
                max_ato = rtt
        ato = min(ato, max_ato)
    ato = min(ato, tcp_delack_max(sk))
    now = sk.net.clock.now_us()
    timeout = now + ato
    if sk.ack_pending & ICSK_ACK_TIMER:
        if sk.ack_timeout <= now + (ato >> 2):
            tcp_send_ack(sk)
            return
        if timeout >= sk.ack_timeout:
            timeout = sk.ack_timeout
    sk.ack_pending |= ICSK_ACK_SCHED | ICSK_ACK_TIMER
    sk.ack_timeout = timeout
    sk.delack_timer.mod(timeout)


def tcp_send_fin(sk: TcpSock) -> None:
    """Queue a FIN: on the last unsent skb, or as its own segment (``tcp_send_fin``)."""
    q = sk.write_queue
    if q:
        tail = q[-1]
        tail.flags |= FIN
        tail.end_seq += 1
    else:
        skb = SKB(sk.write_seq, sk.write_seq + 1, FIN | ACK)
        tcp_add_write_queue_tail(sk, skb)
        tcp_lskb_entail(sk)
    sk.write_seq += 1
    __tcp_push_pending_frames(sk, tcp_current_mss(sk), TCP_NAGLE_OFF)


def tcp_send_active_reset(sk: TcpSock) -> None:
    """Send RST|ACK for an abort (``tcp_send_active_reset``); counts TcpOutRsts."""
    net = sk.net
    seq = tcp_acceptable_seq(sk)
    opts = b""
    if sk.tstamp_ok:
        opts = ts_option(tcp_time_stamp_ts(sk), sk.ts_recent)
    md5 = tcp_v4_md5_lookup(sk) if sk.md5sig_info is not None else None
    if md5 is not None:
        opts = MD5_OPTION + opts
    flags = RST | ACK
    if sk.ecn_flags:
        flags |= tcp_ecn_send(sk, False)          # __tcp_transmit_skb: Not-ECT, maybe ECE
    seg = tcp_build(sk.saddr, sk.daddr, sk.sport, sk.dport, seq, sk.rcv_nxt, flags,
                    0, opts)
    if md5 is not None:
        seg = tcp_md5_fill(seg, md5.key, sk.saddr, sk.daddr, 24)
    net.mib["TcpOutRsts"] += 1
    net.mib["TcpOutSegs"] += 1
    tp = net.trace.send_reset
    if tp.subs:
        tp.emit(net, sk.saddr, sk.sport, sk.daddr, sk.dport, "active")
    net.ip_output(sk.saddr, sk.daddr, IPPROTO_TCP, seg, sk.tos, sk.ttl or None)


def tcp_connect_init(sk: TcpSock) -> None:
    """Choose window, scale and MSS for an active open (``tcp_connect_init``)."""
    sc = sk.net.sysctl
    sk.tcp_header_len = 20 + (TCPOLEN_TSTAMP_ALIGNED if sc.tcp_timestamps else 0)
    md5 = sk.md5sig_info is not None and tcp_md5_connect_init(sk)
    if sk.user_mss:
        sk.mss_clamp = sk.user_mss
    route = sk.net.fib_lookup(sk.daddr)
    sk_dst_set(sk, route)
    pmtu = sk.dst_mtu if route is not None else 1500
    sk.max_window = 0
    if sc.tcp_mtu_probing or sk.mtup is not None:
        from .mtu_probe import tcp_mtup_init

        tcp_mtup_init(sk)
    tcp_sync_mss(sk, pmtu)
    sk.advmss = tcp_mss_clamp(sk, dst_metric_advmss(route) if route is not None else pmtu - 40)
    if not sk.window_clamp:
        sk.window_clamp = 0
    ts_room = (sk.tcp_header_len - 20) if sk.ts_recent_stamp else 0
    sk.rcv_wnd, sk.window_clamp, sk.rcv_wscale = tcp_select_initial_window(
        sk, tcp_full_space(sk), sk.advmss - ts_room, bool(sc.tcp_window_scaling),
        route.initrwnd if route is not None else 0)
    sk.wscale_ok = bool(sc.tcp_window_scaling)
    sk.rcv_ssthresh = sk.rcv_wnd
    sk.snd_wnd = 0
    sk.snd_una = sk.write_seq
    sk.snd_sml = sk.write_seq
    sk.snd_up = sk.write_seq
    sk.snd_nxt = sk.write_seq
    sk.rcv_nxt = 0
    sk.rcv_wup = 0
    sk.copied_seq = 0
    sk.icsk_rto = sk.net.tcp_timeout_init()
    sk.icsk_retransmits = 0
    sk.tstamp_ok = bool(sc.tcp_timestamps) and not md5      # tcp_syn_options: MD5 or TS
    sk.sack_ok = bool(sc.tcp_sack)


def tcp_connect(sk: TcpSock) -> None:
    """Send the SYN and arm its retransmission (``tcp_connect``)."""
    tcp_connect_init(sk)
    skb = SKB(sk.write_seq, sk.write_seq + 1, SYN)
    tcp_ecn_send_syn(sk, skb)
    sk.write_seq += 1
    sk.snd_nxt = sk.write_seq
    sk.pushed_seq = sk.write_seq
    now = sk.net.clock.now_us()
    sk.retrans_stamp = now // 1000
    tcp_rtx_queue_tail_add(sk, skb)
    sk.packets_out += 1
    if sk.tfo is not None and sk.tfo.fastopen_req is not None:
        _fastopen.tcp_send_syn_data(sk, skb)       # SYN with data and/or a Fast Open option
        sk.snd_nxt = sk.pushed_seq = sk.write_seq
    else:
        tcp_transmit_skb(sk, skb)
    skb.first_tx = skb.tstamp
    sk.net.mib["TcpActiveOpens"] += 1
    tcp_reset_xmit_timer(sk, ICSK_TIME_RETRANS, sk.icsk_rto)


def tcp_retransmit_skb(sk: TcpSock, skb: SKB, segs: int = 1, idx: int = -1) -> int:
    """Send ``skb`` again, with up to ``segs`` segments of its Linux skb, and mark them
    retransmitted (``tcp_retransmit_skb``): SACKED_RETRANS, retrans_out, the episode's
    first-retransmission stamp and the undo count. ``skb.gso_segs``: how many went."""
    err = __tcp_retransmit_skb(sk, skb, segs, idx)
    n = skb.gso_segs
    if not err:
        q = sk.rtx_queue
        i = idx if 0 <= idx < len(q) and q[idx] is skb else q.index(skb)
        for k in range(i, i + n):
            s = q[k]
            if not s.sacked & TCPCB_SACKED_RETRANS:
                sk.retrans_out += 1
            s.sacked |= TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS
    if not sk.retrans_stamp:
        # "save stamp of the first (attempted) retransmit" from the skb's timestamp, which
        # __tcp_transmit_skb has just set to now: the tcp_retries2 / TCP_USER_TIMEOUT clock
        # starts at the first retransmission, not the original send (checked on Linux 6.18:
        # tcp_retries2=3 gives up at the 5th RTO, not the 4th).
        sk.retrans_stamp = skb.tstamp // 1000
    if sk.undo_retrans < 0:
        sk.undo_retrans = 0
    sk.undo_retrans += n
    return err


def tcp_rtx_skb_segs(sk: TcpSock, i: int, max_segs: int, mss: int) -> int:
    """How many MSS skbs from ``rtx_queue[i]`` on Linux holds in one skb with it, at most
    ``max_segs``: its TSO skb of the first send (``sk.lskb``, as ``tso_fragment`` cut it),
    less what loss recovery split off (``tcp_fragment`` on a SACK edge, a loss mark or a
    partial retransmission), seen as a change of scoreboard bits or send time. A reneged
    SACK can make parts equal again that Linux keeps apart: a known difference."""
    q = sk.rtx_queue
    head = q[i]
    lskb = sk.lskb
    if max_segs <= 1 or not lskb or not head.data or head.flags & SYN:
        return 1
    j = bisect_right(lskb, head.seq)
    end = lskb[j] if j < len(lskb) else head.end_seq + (1 << 32)
    sacked = head.sacked
    tstamp = head.tstamp
    n = 1
    prev = head
    while n < max_segs and i + n < len(q):
        s = q[i + n]
        if (s.seq >= end or s.seq != prev.end_seq or not s.data or len(prev.data) != mss
                or s.sacked != sacked or s.tstamp != tstamp):
            break
        prev = s
        n += 1
    return n


def tcp_lskb_split(sk: TcpSock, seq: int) -> None:
    """A Linux skb of the retransmit queue is cut at ``seq`` (``tcp_fragment``)."""
    lskb = sk.lskb
    if lskb:
        j = bisect_left(lskb, seq)
        if j == len(lskb) or lskb[j] != seq:
            lskb.insert(j, seq)


def tcp_retrans_try_collapse(sk: TcpSock, i: int, space: int, mss: int) -> None:
    """Join the one-segment skbs after the short ``rtx_queue[i]`` into it while they fit in
    ``space`` and the window: fewer packets on the wire (``tcp_retrans_try_collapse`` /
    ``tcp_collapse_retrans``). Not over a SACKed skb, a multi-segment one or an EOR mark."""
    if not sk.net.sysctl.tcp_retrans_collapse:
        return
    q = sk.rtx_queue
    to = q[i]
    if to.flags & SYN:
        return
    space -= len(to.data)
    wnd_end = tcp_wnd_end(sk)
    while i + 1 < len(q):
        nxt = q[i + 1]
        if (getattr(to, "eor", False) or nxt.sacked & TCPCB_SACKED_ACKED
                or len(nxt.data) > mss or tcp_rtx_skb_segs(sk, i + 1, 2, mss) > 1):
            break
        space -= len(nxt.data)
        if space < 0 or nxt.end_seq > wnd_end:
            break
        to.data += nxt.data
        to.end_seq = nxt.end_seq
        to.flags |= nxt.flags                       # PSH/FIN move over
        to.sacked |= nxt.sacked & TCPCB_EVER_RETRANS
        if getattr(nxt, "eor", False):
            to.eor = True
        # tcp_adjust_pcount: nxt is gone from every count (it cannot be SACKed)
        sk.packets_out -= 1
        if nxt.sacked & TCPCB_SACKED_RETRANS:
            sk.retrans_out -= 1
        if nxt.sacked & TCPCB_LOST:
            sk.lost_out -= 1
        del q[i + 1]
        tcp_tsorted_del(sk, nxt)
        lskb = sk.lskb
        if lskb:
            j = bisect_left(lskb, nxt.seq)
            if j < len(lskb) and lskb[j] == nxt.seq:
                del lskb[j]


def __tcp_retransmit_skb(sk: TcpSock, skb: SKB, segs: int = 1, idx: int = -1) -> int:
    """Send ``skb`` again, trimming what was acked (``__tcp_retransmit_skb``); counts it. The
    loss probe uses it directly: a probe is EVER_RETRANS but not SACKED_RETRANS.

    tcpdive queues one skb per segment; Linux resends its whole skb, up to ``segs`` segments
    and the window (cutting it there), as one TSO packet with PSH forced
    (``tcp_skb_pcount(skb) > 1`` in ``__tcp_transmit_skb``), or a short one collapsed with
    the next. The MSS skbs that make up that skb (``tcp_rtx_skb_segs``) go together, on a
    TSO device as one GSO packet; ``skb.gso_segs`` tells how many.
    """
    skb.gso_segs = 1
    if skb.seq < sk.snd_una:
        if skb.end_seq <= sk.snd_una:
            return 22
        cut = sk.snd_una - skb.seq
        if skb.flags & SYN:
            skb.flags &= ~SYN
            cut -= 1
        skb.data = skb.data[cut:]
        skb.seq = sk.snd_una
    run = [skb]
    if sk.state != TCP_SYN_SENT and skb.data:
        cur_mss = tcp_current_mss(sk)
        avail_wnd = tcp_wnd_end(sk) - skb.seq
        if avail_wnd <= 0:
            # out of a shrunk window: only the head goes, as a zero-window probe
            if skb.seq != sk.snd_una:
                return -11                          # -EAGAIN
            avail_wnd = cur_mss
        len_ = cur_mss * segs
        if len_ > avail_wnd:
            len_ = avail_wnd - avail_wnd % cur_mss or avail_wnd
        q = sk.rtx_queue
        i = idx if 0 <= idx < len(q) and q[idx] is skb else q.index(skb)
        whole = tcp_rtx_skb_segs(sk, i, 1 << 16, cur_mss)
        n = min(whole, max(len_ // cur_mss, 1))
        if n == 1 and len(skb.data) > min(len_, cur_mss):
            # the peer's window or our MSS shrank: resend only what fits, one segment
            tcp_fragment_rtx(sk, skb, min(len_, cur_mss))
        elif n < whole:
            tcp_lskb_split(sk, q[i + n - 1].end_seq)
        elif n == 1 and len(skb.data) < min(avail_wnd, cur_mss):
            tcp_retrans_try_collapse(sk, i, min(avail_wnd, cur_mss), cur_mss)
        if n > 1:
            run = [q[k] for k in range(i, i + n)]
            skb.gso_segs = n
    if skb.flags & TCPHDR_SYN_ECN == TCPHDR_SYN_ECN:
        tcp_ecn_clear_syn(sk, skb)               # RFC 3168 6.1.1.1: ECN fallback
    net = sk.net
    err = 0
    if len(run) == 1:
        err = tcp_transmit_skb(sk, skb)
    elif net.dev_features and net.route_caps(sk.daddr) & NETIF_F_TSO:
        now = net.clock.now_us()
        tcp_event_data_sent(sk, now)
        for s in run:
            s.tstamp = now
            sk.tx_count += 1
            s.tx_seq = sk.tx_count
            if sk.sk_pacing_status:
                tcp_update_skb_after_send(sk, len(s.data), now)
            tcp_rate_skb_sent(sk, s)
        err = tcp_transmit_gso(sk, run, cur_mss, True, rtx=True)
    else:
        last = run[-1]
        for s in run:
            err = tcp_transmit_skb(sk, s, gso_last=s is last)
            if err:
                break
    n = len(run)
    for s in run:
        s.sacked |= TCPCB_EVER_RETRANS      # even if it failed: no RTT sample from it
    if err:
        net.mib["TcpExtTCPRetransFail"] += n
        return err
    net.mib["TcpRetransSegs"] += n
    if skb.flags & SYN:
        net.mib["TcpExtTCPSynRetrans"] += 1
    sk.total_retrans += n
    for s in run:
        sk.bytes_retrans += len(s.data)
        s.retrans += 1
        tcp_tsorted_add(sk, s)          # tcp_update_skb_after_send: to the tail of tsorted
    tp = net.trace.retransmit
    if tp.subs:
        tp.emit(sk, skb, net.clock.now_us())
    return 0


def tcp_fragment_rtx(sk: TcpSock, skb: SKB, len_: int) -> None:
    """Split an skb on the retransmit queue at ``len_`` bytes (``tcp_fragment`` with
    TCP_FRAG_IN_RTX_QUEUE): the tail keeps the scoreboard bits and send times, and every
    counter its bits feed grows by one (``tcp_adjust_pcount``)."""
    q = sk.rtx_queue
    right = SKB(skb.seq + len_, skb.end_seq, skb.flags & ~SYN, skb.data[len_:])
    right.sacked = skb.sacked
    right.first_tx = skb.first_tx
    right.tstamp = skb.tstamp
    right.tx_seq = getattr(skb, "tx_seq", 0)
    right.retrans = skb.retrans
    skb.data = skb.data[:len_]
    skb.end_seq = skb.seq + len_
    skb.flags &= ~(FIN | PSH)
    for i, s in enumerate(q):
        if s is skb:
            q.insert(i + 1, right)
            break
    sk.packets_out += 1
    if right.sacked & TCPCB_LOST:
        sk.lost_out += 1
    if right.sacked & TCPCB_SACKED_ACKED:
        sk.sacked_out += 1
    if right.sacked & TCPCB_SACKED_RETRANS:
        sk.retrans_out += 1
    tcp_tsorted_insert_after(sk, skb, right)


def tcp_xmit_probe_skb(sk: TcpSock, urgent: bool, mib: str) -> int:
    """An ACK with an old sequence number that the peer must answer (``tcp_xmit_probe_skb``)."""
    seq = sk.snd_una - (0 if urgent else 1)
    skb = SKB(seq, seq, ACK)
    sk.net.mib[mib] += 1
    return tcp_transmit_skb(sk, skb)


def tcp_write_wakeup(sk: TcpSock, mib: str) -> int:
    """Keepalive / window probe: send new data if the window allows, else a probe ACK."""
    if sk.state == TCP_CLOSE:
        return -1
    q = sk.write_queue
    if q and q[0].seq < tcp_wnd_end(sk):
        skb = q[0]
        mss = tcp_current_mss(sk)
        seg_size = tcp_wnd_end(sk) - skb.seq
        if sk.pushed_seq < skb.end_seq:
            sk.pushed_seq = skb.end_seq
        if seg_size < skb.end_seq - skb.seq or len(skb.data) > mss:
            seg_size = min(seg_size, mss)
            skb.flags |= PSH
            if seg_size < len(skb.data):
                tcp_fragment(sk, skb, seg_size)
        skb.flags |= PSH
        err = tcp_transmit_skb(sk, skb)
        if not err:
            tcp_event_new_data_sent(sk, skb)
            tcp_lskb_sent(sk, skb.seq, sk.snd_nxt)
        return err
    if sk.snd_una < sk.snd_up <= sk.snd_una + 0xFFFF:
        tcp_xmit_probe_skb(sk, True, mib)             # urgent mark pending: probe at snd_una
    return tcp_xmit_probe_skb(sk, False, mib)


def tcp_send_probe0(sk: TcpSock) -> None:
    """Zero-window probe and its exponential backoff (``tcp_send_probe0``)."""
    err = tcp_write_wakeup(sk, "TcpExtTCPWinProbe")
    if sk.packets_out or not sk.write_queue:
        sk.icsk_probes_out = 0
        sk.icsk_backoff = 0
        sk.icsk_probes_tstamp = 0
        return
    sk.icsk_probes_out += 1
    if err <= 0:
        if sk.icsk_backoff < sk.net.sysctl.tcp_retries2:
            sk.icsk_backoff += 1
        timeout = tcp_probe0_when(sk, TCP_RTO_MAX)
    else:
        timeout = TCP_RESOURCE_PROBE_INTERVAL
    timeout = tcp_clamp_probe0_to_user_timeout(sk, timeout)
    tcp_reset_xmit_timer(sk, ICSK_TIME_PROBE0, timeout)


def tcp_clamp_probe0_to_user_timeout(sk: TcpSock, when: int) -> int:
    """Do not sleep past TCP_USER_TIMEOUT while probing a zero window
    (``tcp_clamp_probe0_to_user_timeout``); at least TCP_TIMEOUT_MIN (2 jiffies)."""
    user_timeout = sk.icsk_user_timeout
    if not user_timeout or not sk.icsk_probes_tstamp:
        return when
    elapsed = max(sk.net.clock.now_us() // 1000 - sk.icsk_probes_tstamp, 0)
    remaining = max((user_timeout - elapsed) * 1000, 2000)
    return min(remaining, when)


# fastopen.py imports this module (cycle): bound as a module, looked up at call time
from . import fastopen as _fastopen  # noqa: E402
