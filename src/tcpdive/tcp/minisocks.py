"""tcp_minisocks.c: request socks (SYN_RECV before accept) and TIME_WAIT socks.

Both are small objects standing in the established hash where a full socket would, as in
Linux: a TIME_WAIT socket keeps only what it needs to answer a late FIN or a new SYN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ktime import KTimer
from ..packet.ipv4 import IPPROTO_TCP
from ..packet.tcp import ACK, FIN, RST, SYN, syn_options, tcp_build, ts_option
from . import md5 as _md5
from . import sock as S
from .ecn import tcp_ecn_make_synack
from .sock import TCP_TIMEWAIT_LEN, TcpSock, ts_before, unwrap

if TYPE_CHECKING:
    from ..net.netns import Netns

# tcp_timewait_state_process verdicts
TCP_TW_SUCCESS = 0
TCP_TW_RST = 1
TCP_TW_ACK = 2
TCP_TW_SYN = 3


class TimewaitSock:
    """A TIME_WAIT (or orphaned FIN_WAIT2) connection (``inet_timewait_sock`` + ``tcp_timewait_sock``)."""

    __slots__ = ("net", "saddr", "sport", "daddr", "dport", "state", "substate", "rcv_nxt",
                 "snd_nxt", "rcv_wnd", "rcv_wscale", "ts_recent", "ts_recent_stamp", "tsoffset",
                 "timer", "hash_key", "bind_bucket", "reuse", "reuseport", "rcv_saddr",
                 "entry_stamp_ms", "tos", "ttl", "tstamp_ok", "kill", "tw_timeout",
                 "md5_key")

    def __init__(self, net: Netns, sk: TcpSock, state: int) -> None:
        self.net = net
        self.saddr = sk.saddr
        self.rcv_saddr = sk.rcv_saddr
        self.sport = sk.sport
        self.daddr = sk.daddr
        self.dport = sk.dport
        self.state = S.TCP_TIME_WAIT
        self.substate = state
        self.rcv_nxt = sk.rcv_nxt
        self.snd_nxt = sk.snd_nxt
        self.rcv_wnd = sk.tcp_receive_window()
        self.rcv_wscale = sk.rcv_wscale
        self.tstamp_ok = sk.tstamp_ok
        self.ts_recent = sk.ts_recent
        self.ts_recent_stamp = sk.ts_recent_stamp
        self.tsoffset = sk.tsoffset
        self.reuse = sk.reuse
        self.reuseport = sk.reuseport
        self.tos = sk.tos & ~3      # its ACKs go Not-ECT (ip_send_unicast_reply drops ECN bits)
        self.ttl = sk.ttl
        self.entry_stamp_ms = net.clock.now_us() // 1000
        # tw_timeout: TIME_WAIT length once the FIN is in (only the tcp_tw_recycle emulation
        # makes it anything but TCP_TIMEWAIT_LEN; Linux < 4.12 kept it in inet_timewait_sock)
        self.tw_timeout = TCP_TIMEWAIT_LEN
        self.timer = KTimer(net.clock, tw_timer_handler, self)
        self.hash_key = None
        self.bind_bucket = None
        self.kill = False
        # tcp_time_wait keeps a copy of the MD5 key for the peer (tw_md5_key) to sign ACKs
        self.md5_key = None if sk.md5sig_info is None else _md5.tcp_v4_md5_lookup(sk)

    def remaining_us(self) -> int:
        return self.timer.remaining(self.net.clock.now_us())

    def __repr__(self) -> str:
        from ..packet.ipv4 import int2ip

        return f"<TimewaitSock {int2ip(self.saddr)}:{self.sport} -> {int2ip(self.daddr)}:{self.dport}>"


def inet_twsk_schedule(tw: TimewaitSock, timeo: int) -> None:
    """(Re)arm the TIME_WAIT timer (``inet_twsk_reschedule``)."""
    tw.timer.mod(tw.net.clock.now_us() + timeo)


def inet_twsk_schedule_first(tw: TimewaitSock, timeo: int) -> None:
    """Arm a new mini socket's timer (``__inet_twsk_schedule`` with rearm=false).

    Linux counts the mini socket here, not when it expires: TcpExtTW (LINUX_MIB_TIMEWAITED), or
    TcpExtTWKilled when the timeout is at most 4 s (checked on Linux 6.18: nstat shows
    TcpExtTW 1 right after close() of a connection whose FIN was acked).
    """
    tw.net.mib["TcpExtTWKilled" if timeo <= 4_000_000 else "TcpExtTW"] += 1
    tw.timer.mod(tw.net.clock.now_us() + timeo)


def tw_timer_handler(tw: TimewaitSock) -> None:
    """TIME_WAIT expired: the 4-tuple and the port are free again (``tw_timer_handler``)."""
    net = tw.net
    tp = net.trace.timer
    if tp.subs:
        tp.emit(tw, "timewait", "expire", net.clock.now_us())
    inet_twsk_kill(tw)


def inet_twsk_kill(tw: TimewaitSock) -> None:
    net = tw.net
    tw.timer.arg = None                   # the timer lets go of it: freed without the cycle GC
    hi = net.tcp_hashinfo
    hi.ehash_remove(tw)
    hi.bind_remove(tw)
    net.tw_count -= 1
    tp = net.trace.set_state
    if tp.subs:
        tp.emit(tw, S.TCP_TIME_WAIT, S.TCP_CLOSE, net.clock.now_us())


def inet_twsk_deschedule_put(tw: TimewaitSock) -> None:
    """Kill a TIME_WAIT socket early (reuse by connect, or RST) (``inet_twsk_deschedule_put``)."""
    tw.timer.cancel()
    inet_twsk_kill(tw)


def tcp_time_wait(sk: TcpSock, state: int, timeo: int) -> None:
    """Replace a closing socket by a TIME_WAIT mini socket (``tcp_time_wait``).

    ``state`` is TIME_WAIT, or FIN_WAIT2 for an orphan waiting out tcp_fin_timeout. When
    tcp_max_tw_buckets is reached no mini socket is made (TcpExtTCPTimeWaitOverflow).

    With the tcp_tw_recycle emulation (Linux < 4.12, see tcp/metrics.py) a connection that
    saw timestamps first stores the peer's last TSval (``tcp_remember_stamp``) and then waits
    only ``tw_timeout`` = 3.5 * RTO in TIME_WAIT instead of 60 s. Linux tests
    ``rx_opt.ts_recent_stamp != 0``; virtual seconds start at 0, so tcpdive tests tstamp_ok.
    """
    net = sk.net
    sc = net.sysctl
    recycle_ok = False
    if sc.tcp_tw_recycle and sk.tstamp_ok:
        from .metrics import tcp_remember_stamp

        recycle_ok = tcp_remember_stamp(sk)
    if net.tw_count < sc.tcp_max_tw_buckets:
        tw = TimewaitSock(net, sk, state)
        rto = sk.icsk_rto
        rto3 = (rto << 2) - (rto >> 1)
        if timeo < rto3:
            timeo = rto3
        if recycle_ok:
            tw.tw_timeout = rto3      # pre-4.12 tcp_tw_recycle: the RTO-based TIME_WAIT
        elif state == S.TCP_TIME_WAIT:
            timeo = TCP_TIMEWAIT_LEN
        hi = net.tcp_hashinfo
        key = sk.hash_key
        tb = sk.bind_bucket
        if tb is not None:
            tb.add(tw)
            tw.bind_bucket = tb
        if key is not None:
            hi.ehash[key] = tw
            tw.hash_key = key
            sk.hash_key = None
        net.tw_count += 1
        inet_twsk_schedule_first(tw, timeo)
        _emit_state(sk, state if state == S.TCP_TIME_WAIT else S.TCP_FIN_WAIT2)
        _tcp.tcp_done(sk, quiet=True)
        return
    net.mib["TcpExtTCPTimeWaitOverflow"] += 1
    _tcp.tcp_done(sk)


def _emit_state(sk: TcpSock, new: int) -> None:
    tp = sk.net.trace.set_state
    if tp.subs:
        tp.emit(sk, sk.state, new, sk.net.clock.now_us())


def _emit_tw_state(tw: TimewaitSock, old: int, new: int) -> None:
    tp = tw.net.trace.set_state
    if tp.subs:
        tp.emit(tw, old, new, tw.net.clock.now_us())


def tcp_timewait_state_process(tw: TimewaitSock, th_flags: int, seq: int, ack_seq: int,
                               data_len: int, opts) -> int:
    """A segment for a TIME_WAIT socket (``tcp_timewait_state_process``); returns a TCP_TW_* verdict."""
    net = tw.net
    saw_ts = bool(opts is not None and opts.saw_tstamp and tw.tstamp_ok)
    paws_reject = False
    if saw_ts and tw.ts_recent_stamp:
        d = (tw.ts_recent - opts.tsval) & 0xFFFFFFFF
        if d >= 0x80000000:
            d -= 0x100000000
        paws_reject = d > S.TCP_PAWS_WINDOW
    seq = unwrap(seq, tw.rcv_nxt)
    end_seq = seq + data_len + (1 if th_flags & SYN else 0) + (1 if th_flags & FIN else 0)
    if tw.substate == S.TCP_FIN_WAIT2:
        # orphaned FIN_WAIT2 living as a mini socket
        if paws_reject or not (end_seq >= tw.rcv_nxt and seq <= tw.rcv_nxt + tw.rcv_wnd):
            return TCP_TW_ACK if not th_flags & RST else TCP_TW_SUCCESS
        if th_flags & RST:
            inet_twsk_deschedule_put(tw)
            return TCP_TW_SUCCESS
        if th_flags & SYN or end_seq != tw.rcv_nxt + (1 if th_flags & FIN else 0) - 0 and data_len:
            return TCP_TW_RST
        if not th_flags & ACK or not th_flags & FIN or end_seq != tw.rcv_nxt + 1:
            return TCP_TW_SUCCESS if not data_len else TCP_TW_RST
        tw.substate = S.TCP_TIME_WAIT
        tw.rcv_nxt = end_seq
        # Linux's tcp_timewait_state_process flips tw_substate silently; the substate is what
        # ss/netstat show, so tell set_state subscribers (FIN_WAIT2 -> TIME_WAIT).
        _emit_tw_state(tw, S.TCP_FIN_WAIT2, S.TCP_TIME_WAIT)
        if saw_ts:
            tw.ts_recent = opts.tsval
            tw.ts_recent_stamp = net.clock.now_us() // 1_000_000
        if net.sysctl.tcp_tw_recycle and tw.tstamp_ok:
            # pre-4.12 tcp_tw_recycle emulation: tcp_tw_remember_stamp, then tw_timeout
            from .metrics import tcp_tw_remember_stamp

            if tcp_tw_remember_stamp(tw):
                inet_twsk_schedule(tw, tw.tw_timeout)
                return TCP_TW_ACK
        inet_twsk_schedule(tw, TCP_TIMEWAIT_LEN)
        return TCP_TW_ACK
    # real TIME_WAIT
    if not paws_reject and seq == tw.rcv_nxt and (seq == end_seq or th_flags & RST):
        if th_flags & RST:
            if not net.sysctl.tcp_rfc1337:
                inet_twsk_deschedule_put(tw)
                return TCP_TW_SUCCESS
        else:
            inet_twsk_schedule(tw, TCP_TIMEWAIT_LEN)
        if saw_ts:
            tw.ts_recent = opts.tsval
            tw.ts_recent_stamp = net.clock.now_us() // 1_000_000
        return TCP_TW_SUCCESS
    if (th_flags & SYN and not th_flags & RST and not th_flags & ACK and not paws_reject
            and (seq > tw.rcv_nxt or (saw_ts and ts_before(tw.ts_recent, opts.tsval)))):
        # a new SYN may open a new incarnation (RFC 1122 4.2.2.13)
        return TCP_TW_SYN
    if paws_reject:
        net.mib["TcpExtPAWSEstab"] += 1
    if not th_flags & RST:
        # duplicate FIN or out-of-window: re-ACK and restart the 60 s (the "TIME_WAIT ACK")
        if paws_reject or th_flags & FIN:
            inet_twsk_schedule(tw, TCP_TIMEWAIT_LEN)
        return TCP_TW_ACK
    return TCP_TW_SUCCESS


def tcp_v4_timewait_ack(tw: TimewaitSock) -> None:
    """ACK from a TIME_WAIT socket (``tcp_v4_timewait_ack``): timestamps, then the kept MD5
    signature (``tcp_v4_send_ack`` writes them in that order)."""
    net = tw.net
    opts = b""
    if tw.tstamp_ok:
        opts = ts_option((net.clock.now_us() // 1000 + tw.tsoffset) & 0xFFFFFFFF, tw.ts_recent)
    win = min(tw.rcv_wnd >> tw.rcv_wscale, 0xFFFF)
    md5 = tw.md5_key
    seg = tcp_build(tw.saddr, tw.daddr, tw.sport, tw.dport, tw.snd_nxt, tw.rcv_nxt, ACK, win,
                    opts if md5 is None else opts + _md5.MD5_OPTION)
    if md5 is not None:
        seg = _md5.tcp_md5_fill(seg, md5.key, tw.saddr, tw.daddr, 24 + len(opts))
    net.mib["TcpOutSegs"] += 1
    net.ip_output(tw.saddr, tw.daddr, IPPROTO_TCP, seg, tw.tos, tw.ttl or None)


# ---- request socks ---------------------------------------------------------------------------

class RequestSock:
    """A connection in SYN_RECV before it is a full socket (``tcp_request_sock``)."""

    __slots__ = ("listener", "net", "saddr", "sport", "daddr", "dport", "rcv_isn", "snt_isn",
                 "mss", "snd_wscale", "rcv_wscale", "wscale_ok", "sack_ok", "tstamp_ok",
                 "ts_recent", "tsoffset", "rcv_wnd", "window_clamp", "num_retrans",
                 "num_timeout", "timer", "hash_key", "snt_synack", "acked", "state", "timeout",
                 "peer_window", "cookie", "tos", "ttl", "rcv_saddr", "peer_mss", "ecn_ok",
                 "tfo")       # a Fast Open child's request: fastopen.TfoReq, else None

    def __init__(self, listener: TcpSock) -> None:
        self.listener = listener
        self.net = listener.net
        self.state = S.TCP_NEW_SYN_RECV
        self.num_retrans = 0
        self.num_timeout = 0
        self.acked = False
        self.hash_key = None
        self.cookie = False
        self.ecn_ok = False
        self.tfo = None
        self.timer = KTimer(self.net.clock, reqsk_timer_handler, self)
        self.timeout = self.net.tcp_timeout_init()
        self.tos = listener.tos
        self.ttl = listener.ttl

    def __repr__(self) -> str:
        from ..packet.ipv4 import int2ip

        return f"<RequestSock {int2ip(self.saddr)}:{self.sport} <- {int2ip(self.daddr)}:{self.dport}>"


def tcp_v4_send_synack(req: RequestSock, foc=None) -> None:
    """Send (or resend) the SYN-ACK of a request (``tcp_v4_send_synack`` / ``tcp_make_synack``).

    With the listener's MD5 key for the peer the signature comes first and, but for a cookie
    SYN-ACK, timestamps are given up when SACK is on (``tcp_synack_options``: MD5 + TS leave
    no room for a SACK block). ``foc``: the Fast Open cookie for the client (first SYN-ACK
    only); a Fast Open child's SYN-ACK acks the SYN's data too (``tcp_rsk(req)->rcv_nxt``).
    """
    net = req.net
    listener = req.listener
    md5 = None if listener.md5sig_info is None else _md5.tcp_md5_do_lookup(listener, req.daddr)
    if md5 is not None and not req.cookie and req.sack_ok:
        req.tstamp_ok = False
    ts = None
    if req.tstamp_ok:
        ts = ((net.clock.now_us() // 1000 + req.tsoffset) & 0xFFFFFFFF, req.ts_recent)
    opts = syn_options(req.mss, req.sack_ok, ts, req.rcv_wscale if req.wscale_ok else None)
    if md5 is not None:
        opts = _md5.MD5_OPTION + opts
    ack = req.rcv_isn + 1
    if foc is not None or req.tfo is not None:
        from .fastopen import tcp_fastopen_synack_options

        opts = tcp_fastopen_synack_options(opts, foc)
        if req.tfo is not None:
            ack = req.tfo.rcv_nxt
    flags = SYN | ACK
    if req.ecn_ok:
        flags |= tcp_ecn_make_synack(req)
    seg = tcp_build(req.saddr, req.daddr, req.sport, req.dport, req.snt_isn, ack,
                    flags, min(req.rcv_wnd, 0xFFFF), opts)
    if md5 is not None:
        seg = _md5.tcp_md5_fill(seg, md5.key, req.saddr, req.daddr, 24)
    req.snt_synack = net.clock.now_us()
    net.mib["TcpOutSegs"] += 1
    net.ip_output(req.saddr, req.daddr, IPPROTO_TCP, seg, req.tos, req.ttl or None)


def reqsk_timer_handler(req: RequestSock) -> None:
    """SYN-ACK retransmission with backoff; drop after tcp_synack_retries (``reqsk_timer_handler``)."""
    listener = req.listener
    net = req.net
    if listener.state != S.TCP_LISTEN or req.hash_key is None:
        inet_csk_reqsk_queue_drop(req)
        return
    max_retries = listener.icsk_syn_retries or net.sysctl.tcp_synack_retries
    qlen = listener.syn_queue_len
    if (qlen << 1) > max(8, listener.max_ack_backlog):
        young = _young_len(listener) << 1
        while max_retries > 2:
            if qlen < young:
                break
            max_retries -= 1
            young <<= 1
    expire = req.num_timeout >= max_retries
    if not expire:
        if not req.acked:
            tcp_v4_send_synack(req)
            req.num_retrans += 1
            net.mib["TcpRetransSegs"] += 1
            net.mib["TcpExtTCPSynRetrans"] += 1
        req.num_timeout += 1
        req.timer.mod(net.clock.now_us() + min(req.timeout << req.num_timeout, S.TCP_RTO_MAX))
        return
    inet_csk_reqsk_queue_drop(req)


def _young_len(listener: TcpSock) -> int:
    hi = listener.net.tcp_hashinfo
    return sum(1 for r in hi.ehash.values()
               if isinstance(r, RequestSock) and r.listener is listener and r.num_timeout == 0)


def inet_csk_reqsk_queue_drop(req: RequestSock) -> None:
    """Forget a request (``inet_csk_reqsk_queue_drop``)."""
    req.timer.cancel()
    req.timer.arg = None                  # the timer lets go of it: freed without the cycle GC
    if req.hash_key is not None:
        req.net.tcp_hashinfo.ehash_remove(req)
        req.listener.syn_queue_len -= 1


# tcp.py imports this module (cycle): bound as a module, its functions looked up at call time
from . import tcp as _tcp  # noqa: E402
