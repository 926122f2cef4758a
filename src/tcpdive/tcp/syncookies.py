"""syncookies.c: stateless SYN-ACKs under SYN flood (tcp_syncookies 1 = when the queue is full,
2 = always). The ISN encodes a minute counter and an MSS index; the TS value's low 6 bits carry
window scale and SACK, so the final ACK alone can rebuild the connection (``cookie_v4_check``).
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from . import sock as S

if TYPE_CHECKING:
    from ..skb import SKB
    from .minisocks import RequestSock
    from .sock import TcpSock

COOKIEBITS = 24
COOKIEMASK = (1 << COOKIEBITS) - 1
MAX_SYNCOOKIE_AGE = 2
TSBITS = 6
TS_OPT_WSCALE_MASK = 0xF
TS_OPT_SACK = 1 << 4
TS_OPT_ECN = 1 << 5
MSSTAB = (536, 1300, 1440, 1460)


def _cookie_hash(net, saddr: int, daddr: int, sport: int, dport: int, count: int, c: int) -> int:
    h = hashlib.blake2b(struct.pack("!IIHHIB", saddr, daddr, sport, dport, count, c),
                        key=net.secret, digest_size=4).digest()
    return int.from_bytes(h, "big")


def tcp_cookie_time(net) -> int:
    """Minutes since boot (``tcp_cookie_time``)."""
    return net.clock.now_us() // 60_000_000


def cookie_v4_init_sequence(listener: TcpSock, req: RequestSock, skb: SKB, peer_mss: int) -> int:
    """ISN carrying the cookie (``__cookie_v4_init_sequence``); sets the request's TS value too."""
    net = listener.net
    mssind = 0
    for i in range(len(MSSTAB) - 1, -1, -1):
        if peer_mss >= MSSTAB[i]:
            mssind = i
            break
    req.peer_mss = MSSTAB[mssind]
    count = tcp_cookie_time(net)
    seq = skb.seq
    isn = (_cookie_hash(net, req.daddr, req.saddr, req.dport, req.sport, 0, 0) + seq
           + (count << COOKIEBITS)
           + ((_cookie_hash(net, req.daddr, req.saddr, req.dport, req.sport, count, 1) + mssind)
              & COOKIEMASK))
    if req.tstamp_ok:
        # cookie_init_timestamp: the options live in the low TSBITS of the *clock* value; the
        # SYN-ACK's TSval is that value plus the request's ts_off (tcp_make_synack adds
        # tcp_rsk(req)->ts_off, set by tcp_conn_request from secure_tcp_ts_off), so the child,
        # which gets the same ts_off back in cookie_v4_check, continues the same TS clock.
        opts = req.snd_wscale if req.wscale_ok else TS_OPT_WSCALE_MASK
        if req.sack_ok:
            opts |= TS_OPT_SACK
        if req.ecn_ok:
            opts |= TS_OPT_ECN
        now_ms = net.clock.now_us() // 1000
        ts = ((now_ms >> TSBITS) << TSBITS) | opts
        if ts > now_ms:
            ts -= 1 << TSBITS
        # SYN-ACK TSval = now_ms + tsoffset = ts + ts_off
        req.tsoffset = (req.tsoffset + ts - now_ms) & 0xFFFFFFFF
    return isn & 0xFFFFFFFF


def cookie_v4_check(listener: TcpSock, skb: SKB):
    """Validate a final ACK against the cookie and create the child (``cookie_v4_check``).

    Returns the child; ``listener`` when the ACK is no (valid) cookie (the caller answers RST);
    None when the cookie was good but no child could be made (accept queue full: dropped)."""
    from .ipv4 import secure_tcp_ts_off, tcp_child_process, tcp_v4_syn_recv_sock
    from .minisocks import RequestSock

    net = listener.net
    sc = net.sysctl
    if not sc.tcp_syncookies or skb.flags & 0x06:
        return listener
    # tcp_synq_no_recent_overflow: cookies are only looked at within TCP_SYNCOOKIE_VALID (120 s)
    # of the last cookie sent by this listener; otherwise the ACK is not a cookie at all
    last = listener.last_synq_overflow
    if last is None or not (last - 1_000_000 <= net.clock.now_us() <= last + 120_000_000):
        return listener
    seq = (skb.seq - 1) & 0xFFFFFFFF
    cookie = (skb.ack_seq - 1) & 0xFFFFFFFF
    saddr, daddr, sport, dport = skb.saddr, skb.daddr, skb.sport, skb.dport
    cookie = (cookie - _cookie_hash(net, saddr, daddr, sport, dport, 0, 0) - seq) & 0xFFFFFFFF
    count = tcp_cookie_time(net)
    diff = (count - (cookie >> COOKIEBITS)) & (0xFFFFFFFF >> COOKIEBITS)
    if diff >= MAX_SYNCOOKIE_AGE:
        net.mib["TcpExtSyncookiesFailed"] += 1
        return listener
    # check_tcp_syn_cookie: ``count - diff`` is u32 arithmetic (a cookie from the minute
    # before minute 0 wraps to 0xFFFFFFFF, never a negative count)
    mssind = (cookie - _cookie_hash(net, saddr, daddr, sport, dport, (count - diff) & 0xFFFFFFFF,
                                    1)) & COOKIEMASK
    if mssind >= len(MSSTAB):
        net.mib["TcpExtSyncookiesFailed"] += 1
        return listener
    net.mib["TcpExtSyncookiesRecv"] += 1
    o = skb.opts
    req = RequestSock(listener)
    req.saddr = req.rcv_saddr = daddr
    req.sport = dport
    req.daddr = saddr
    req.dport = sport
    req.rcv_isn = seq
    req.snt_isn = (skb.ack_seq - 1) & 0xFFFFFFFF
    req.peer_mss = MSSTAB[mssind]
    req.peer_window = skb.window
    req.tstamp_ok = bool(o is not None and o.saw_tstamp and sc.tcp_timestamps)
    req.sack_ok = False
    req.wscale_ok = False
    req.snd_wscale = 0
    req.ts_recent = o.tsval if req.tstamp_ok else 0
    req.tsoffset = 0
    if req.tstamp_ok:
        # cookie_v4_check: ``tcp_opt.rcv_tsecr -= tsoff`` before cookie_timestamp_decode, and
        # cookie_tcp_reqsk_init gives the request (so the child) that same ts_off: the echoed
        # value minus the per-pair offset is the cookie_init_timestamp() clock value.
        tsoff = secure_tcp_ts_off(net, req.saddr, req.daddr)
        tsecr = (o.tsecr - tsoff) & 0xFFFFFFFF if o.tsecr else 0
        opts = tsecr & ((1 << TSBITS) - 1)
        # cookie_timestamp_decode: SACK or window scaling echoed while the sysctl is off now
        # makes the cookie invalid (after SyncookiesRecv, without SyncookiesFailed)
        if opts & TS_OPT_SACK and not sc.tcp_sack:
            return listener
        req.sack_ok = bool(opts & TS_OPT_SACK)
        ws = opts & TS_OPT_WSCALE_MASK
        if ws != TS_OPT_WSCALE_MASK:
            if not sc.tcp_window_scaling:
                return listener
            req.wscale_ok = True
            req.snd_wscale = min(ws, S.TCP_MAX_WSCALE)
        req.tsoffset = tsoff
        # cookie_ecn_ok: ECN was agreed on the SYN-ACK and tcp_ecn still allows it
        req.ecn_ok = bool(opts & TS_OPT_ECN and sc.tcp_ecn)
    from ..net.route import dst_metric_advmss
    from .output import tcp_select_initial_window, tcp_win_from_space

    dst = net.fib_lookup(req.daddr)
    req.mss = dst_metric_advmss(dst) if dst is not None else net.route_mtu(req.daddr) - 40
    from .sock import TcpSock

    probe = TcpSock.__new__(TcpSock)
    probe.window_clamp = listener.window_clamp
    probe.net = net
    req.rcv_wnd, req.window_clamp, req.rcv_wscale = tcp_select_initial_window(
        probe, tcp_win_from_space(listener, listener.sk_rcvbuf),
        req.mss - (12 if req.tstamp_ok else 0), req.wscale_ok,
        dst.initrwnd if dst is not None else 0)
    req.snt_synack = None               # no SYN-ACK RTT sample for a cookie (tcp_synack_rtt_meas)
    listener.syn_queue_len += 1       # tcp_v4_syn_recv_sock takes it off again
    child = tcp_v4_syn_recv_sock(listener, req, skb, req.peer_mss)
    if child is None:
        listener.syn_queue_len -= 1
        return None
    tcp_child_process(listener, child, skb)
    return child
