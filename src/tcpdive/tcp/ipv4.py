"""tcp_ipv4.c: segment demux (``tcp_v4_rcv``), ``tcp_v4_do_rcv``, connect, SYN handling, RST.

The receive path the article traces: ``ip_local_deliver`` -> ``tcp_v4_rcv`` (checksum, ehash /
listener lookup, backlog if the socket is owned by the application) -> ``tcp_v4_do_rcv`` ->
``tcp_rcv_established`` or ``tcp_rcv_state_process``.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import EMSGSIZE, ENETUNREACH, oserror
from ..net.route import dst_metric_advmss
from ..packet.checksum import csum_partial, pseudo_sum
from ..packet.gso import OffloadPacket
from ..packet.ipv4 import IPPROTO_TCP
from ..packet.tcp import ACK, FIN, RST, SYN, TCPHDR_LEN, tcp_build, tcp_parse_options, ts_option
from ..skb import SKB
from . import sock as S
from .cong import tcp_init_congestion_control
from .ecn import tcp_ecn_create_request, tcp_ecn_openreq_child
from .md5 import (
    MD5_OPTION,
    tcp_inbound_hash,
    tcp_md5_do_lookup,
    tcp_md5_fill,
    tcp_md5_openreq_child,
    tcp_v4_send_reset_key,
)
from .metrics import sk_dst_set, tcp_init_cwnd, tcp_mss_clamp, tcp_peer_is_proven
from .minisocks import (
    TCP_TW_ACK,
    TCP_TW_RST,
    TCP_TW_SYN,
    RequestSock,
    TimewaitSock,
    inet_csk_reqsk_queue_drop,
    inet_twsk_deschedule_put,
    tcp_timewait_state_process,
    tcp_v4_send_synack,
    tcp_v4_timewait_ack,
)
from .output import tcp_connect, tcp_select_initial_window, tcp_sync_mss, tcp_win_from_space
from .rtt import tcp_ack_update_rtt
from .sock import TcpSock, unwrap
from .syncookies import cookie_v4_check, cookie_v4_init_sequence
from .tcp import sk_wake, tcp_done_with_error, tcp_set_state

if TYPE_CHECKING:
    from ..net.netns import Netns

_unpack_th = struct.Struct("!HHIIBBHHH").unpack_from


def secure_tcp_seq(net: Netns, saddr: int, daddr: int, sport: int, dport: int) -> int:
    """ISN per RFC 6528: keyed hash of the 4-tuple plus a clock ticking every 64 ns."""
    h = hashlib.blake2b(struct.pack("!IIHH", saddr, daddr, sport, dport), key=net.secret,
                        digest_size=4).digest()
    return (int.from_bytes(h, "big") + (net.clock.now_us() * 1000 >> 6)) & 0xFFFFFFFF


def secure_tcp_ts_off(net: Netns, saddr: int, daddr: int) -> int:
    """Per-pair random timestamp offset (``secure_tcp_ts_off``, tcp_timestamps=1)."""
    if net.sysctl.tcp_timestamps != 1:
        return 0
    return _ts_off_hash(net.secret, saddr, daddr)


@lru_cache(maxsize=1024)
def _ts_off_hash(secret: bytes, saddr: int, daddr: int) -> int:
    """The keyed hash behind secure_tcp_ts_off; a pure function, so kept for repeated pairs."""
    h = hashlib.blake2b(struct.pack("!II", saddr, daddr), key=secret + b"ts",
                        digest_size=4).digest()
    return int.from_bytes(h, "big")


def tcp_v4_rcv(net: Netns, iph, data: bytes, off: int) -> None:
    """Entry from IP: validate the header and checksum, find the socket, process or backlog.

    An ``OffloadPacket`` needs no checksum check (CHECKSUM_PARTIAL/UNNECESSARY) and may be a
    GSO/GRO skb of ``gso_segs`` segments; TcpInSegs counts it once, as Linux does.
    """
    mib = net.mib
    n = len(data) - off
    if n < TCPHDR_LEN:
        mib["TcpInErrs"] += 1
        net.drop(data, "PKT_TOO_SMALL")
        return
    sport, dport, seq, ack_seq, doff_b, flags, window, _check, urg = _unpack_th(data, off)
    doff = (doff_b >> 4) * 4
    if doff < TCPHDR_LEN or doff > n:
        mib["TcpInErrs"] += 1
        net.drop(data, "TCP_HDR_LEN")
        return
    saddr = iph.saddr
    daddr = iph.daddr
    gso_size = 0
    if type(data) is bytes:
        summed = 0
    elif isinstance(data, OffloadPacket):
        gso_size = data.gso_size
        summed = data.ip_summed
    else:
        summed = 0
    # the sum runs over the whole datagram: ip_rcv checked that the IP header sums to 0xffff,
    # and its length is a multiple of 4, so it adds nothing mod 0xffff (no copy of the segment)
    if not summed and csum_partial(data, pseudo_sum(saddr, daddr, IPPROTO_TCP, n)) != 0xFFFF:
        mib["TcpInCsumErrors"] += 1
        mib["TcpInErrs"] += 1
        net.drop(data, "TCP_CSUM")
        return
    mib["TcpInSegs"] += 1
    hdr_end = off + doff
    skb = SKB(seq, 0, flags, data[hdr_end:] if doff < n else b"")
    skb.ack_seq = ack_seq
    skb.window = window
    skb.saddr = saddr
    skb.daddr = daddr
    skb.sport = sport
    skb.dport = dport
    skb.doff = doff >> 2
    skb.urg_ptr = urg
    skb.tos = iph.tos
    o = skb.opts = (tcp_parse_options(data, off + TCPHDR_LEN, hdr_end, bool(flags & SYN))
                    if doff > TCPHDR_LEN else None)
    md5_seg = None
    if o is not None and o.md5:
        md5_seg = skb.raw = data[off:]  # the signed segment, for tcp_inbound_hash / send_reset
    if gso_size:
        skb.gso_size = gso_size
        skb.gso_segs = data.gso_segs
    if net.trace.path.subs:
        skb.path = ["ip_rcv", "ip_local_deliver", "tcp_v4_rcv"]
    hi = net.tcp_hashinfo
    sk = hi.ehash.get((daddr, dport, saddr, sport))
    if sk is None:
        sk = hi.lookup_listener(daddr, dport, saddr, sport)
        if sk is None:
            _no_tcp_socket(net, skb)
            return
    cls = type(sk)
    if cls is TimewaitSock:
        _do_time_wait(net, sk, skb)
        return
    if cls is RequestSock:
        # tcp_inbound_hash(listener, req, ...): signatures are the listener's business
        if (md5_seg is not None or sk.listener.md5sig_info is not None) and tcp_inbound_hash(
                sk.listener, skb, md5_seg):
            return
        _rcv_request(net, sk, skb)
        return
    if (md5_seg is not None or sk.md5sig_info is not None) and tcp_inbound_hash(sk, skb, md5_seg):
        return
    if sk.owned_by_user:
        # tcp_add_backlog: the application holds the socket; process on release_sock
        bl = sk.backlog
        if bl is None:
            bl = sk.backlog = []
        bl.append(skb)
        if skb.path is not None:
            skb.path.append("tcp_add_backlog")
        return
    tcp_v4_do_rcv(sk, skb)
    if skb.path is not None:
        _emit_path(net, skb)


def _emit_path(net: Netns, skb: SKB) -> None:
    if skb.path is not None:
        net.trace.path.emit(net, skb.path, skb)


def tcp_v4_do_rcv(sk: TcpSock, skb: SKB) -> None:
    """Per-socket receive (``tcp_v4_do_rcv``): ESTABLISHED fast path or the state machine."""
    if skb.path is not None:
        skb.path.append("tcp_v4_do_rcv")
    state = sk.state
    if state == S.TCP_ESTABLISHED:
        _unwrap_skb(sk, skb)
        tcp_rcv_established(sk, skb)
        return
    if state == S.TCP_LISTEN:
        if skb.flags & RST:
            return
        if skb.flags & ACK:
            # tcp_v4_cookie_check: a final ACK for a SYN-ACK sent with a cookie
            # tcp_v4_do_rcv: NULL (a valid cookie whose child could not be made, e.g. accept
            # queue full) is dropped silently; the listener itself (no cookie) -> RST
            nsk = cookie_v4_check(sk, skb)
            if nsk is sk:
                tcp_v4_send_reset(sk.net, skb, sk)
            return
        if skb.flags & SYN:
            tcp_v4_conn_request(sk, skb)
            if skb.path is not None:
                skb.path.append("tcp_conn_request")
            return
        return
    if state == S.TCP_SYN_SENT:
        # seq stays raw (irs is learnt from this segment); ack is relative to our iss
        skb.ack_seq = unwrap(skb.ack_seq, sk.snd_una)
        skb.end_seq = skb.seq + len(skb.data) + (1 if skb.flags & SYN else 0) + (
            1 if skb.flags & FIN else 0)
    else:
        _unwrap_skb(sk, skb)
    if tcp_rcv_state_process(sk, skb):
        tcp_v4_send_reset(sk.net, skb, sk)


def _unwrap_skb(sk: TcpSock, skb: SKB) -> None:
    """Wire seq/ack to the unwrapped values nearest rcv_nxt/snd_una (``unwrap``, inlined)."""
    ref = sk.rcv_nxt
    d = (skb.seq - ref) & 0xFFFFFFFF
    seq = ref + d if d < 0x80000000 else ref + d - 0x100000000
    skb.seq = seq
    flags = skb.flags
    skb.end_seq = seq + len(skb.data) + ((flags >> 1) & 1) + (flags & 1)    # SYN, FIN
    ref = sk.snd_una
    d = (skb.ack_seq - ref) & 0xFFFFFFFF
    skb.ack_seq = ref + d if d < 0x80000000 else ref + d - 0x100000000


def _no_tcp_socket(net: Netns, skb: SKB) -> None:
    """No socket wants it: answer with a RST (``no_tcp_socket``)."""
    if skb.path is not None:
        skb.path.append("tcp_v4_send_reset")
        _emit_path(net, skb)
    net.drop(skb, "NO_SOCKET")
    tcp_v4_send_reset(net, skb)


def tcp_v4_send_reset(net: Netns, skb: SKB, sk=None) -> None:
    """RST in reply to ``skb`` (``tcp_v4_send_reset``), never to a RST (RFC 9293 3.10.7.1).

    ``sk``: the full socket (or TIME_WAIT one) that answers, if any: with an MD5 key for the
    peer the RST is signed (tcp/md5.py ``tcp_v4_send_reset_key``, which may forbid it).
    """
    flags = skb.flags
    if flags & RST:
        return
    key = None
    o = skb.opts
    if o is not None and o.md5 or sk is not None and getattr(sk, "md5sig_info", None) is not None:
        key = tcp_v4_send_reset_key(net, skb, sk)
        if key is False:
            return
    wire_seq = skb.seq & 0xFFFFFFFF
    if flags & ACK:
        seq = skb.ack_seq & 0xFFFFFFFF
        ack = 0
        rflags = RST
    else:
        seq = 0
        ack = (wire_seq + len(skb.data) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & 0xFFFFFFFF
        rflags = RST | ACK
    if key is None:
        seg = tcp_build(skb.daddr, skb.saddr, skb.dport, skb.sport, seq, ack, rflags, 0)
    else:
        seg = tcp_md5_fill(tcp_build(skb.daddr, skb.saddr, skb.dport, skb.sport, seq, ack, rflags,
                                     0, MD5_OPTION), key.key, skb.daddr, skb.saddr, 24)
    net.mib["TcpOutRsts"] += 1
    net.mib["TcpOutSegs"] += 1
    tp = net.trace.send_reset
    if tp.subs:
        tp.emit(net, skb.daddr, skb.dport, skb.saddr, skb.sport, "no socket")
    net.ip_output(skb.daddr, skb.saddr, IPPROTO_TCP, seg)


def _do_time_wait(net: Netns, tw: TimewaitSock, skb: SKB) -> None:
    if skb.path is not None:
        skb.path.append("tcp_timewait_state_process")
    verdict = tcp_timewait_state_process(tw, skb.flags, skb.seq, skb.ack_seq, len(skb.data), skb.opts)
    if verdict == TCP_TW_SYN:
        sk2 = net.tcp_hashinfo.lookup_listener(skb.daddr, skb.dport, skb.saddr, skb.sport)
        o = skb.opts
        md5_seg = skb.raw if o is not None and o.md5 else None
        if sk2 is not None and (md5_seg is not None or sk2.md5sig_info is not None) and \
                tcp_inbound_hash(sk2, skb, md5_seg):
            inet_twsk_deschedule_put(tw)      # tcp_v4_rcv: "goto process" checks the listener
            return
        if sk2 is not None:
            # the new incarnation starts above anything the old one sent (RFC 1122 4.2.2.13):
            # tcp_timewait_state_process picks tw_snd_nxt + 65535 + 2, and tcp_v4_rcv hands it
            # to tcp_conn_request in the per-CPU tcp_tw_isn
            net.tcp_tw_isn = ((tw.snd_nxt + 65535 + 2) & 0xFFFFFFFF) or 1
            inet_twsk_deschedule_put(tw)
            tcp_v4_do_rcv(sk2, skb)
            net.tcp_tw_isn = 0
            _emit_path(net, skb)
            return
        verdict = TCP_TW_RST
    if verdict == TCP_TW_ACK:
        tcp_v4_timewait_ack(tw)
    elif verdict == TCP_TW_RST:
        tcp_v4_send_reset(net, skb, tw)
    _emit_path(net, skb)


# ---- listen side -----------------------------------------------------------------------------

def tcp_v4_conn_request(sk: TcpSock, skb: SKB) -> None:
    """A SYN on a listener: make a request sock and send the SYN-ACK (``tcp_conn_request``).

    A SYN that hit a TIME_WAIT socket arrives with ``net.tcp_tw_isn`` set: "TW buckets are
    converted to open requests without limitations" (no SYN-queue / cookie decision, no
    tcp_max_syn_backlog clause, no tcp_tw_recycle check) and that ISN is used.
    """
    net = sk.net
    sc = net.sysctl
    mib = net.mib
    want_cookie = False
    syncookies = sc.tcp_syncookies
    isn = net.tcp_tw_isn
    if isn:
        net.tcp_tw_isn = 0
    elif syncookies == 2 or (sk.syn_queue_len >= sk.max_ack_backlog and syncookies):
        want_cookie = True
        mib["TcpExtTCPReqQFullDoCookies"] += 1   # tcp_syn_flood_action counts mode 2 too
    elif sk.syn_queue_len >= sk.max_ack_backlog:
        mib["TcpExtTCPReqQFullDrop"] += 1
        mib["TcpExtListenDrops"] += 1
        return
    if sk.accept_queue is not None and len(sk.accept_queue) > sk.max_ack_backlog:
        mib["TcpExtListenOverflows"] += 1
        mib["TcpExtListenDrops"] += 1
        return
    # (before 4.12 this clause was the ``else`` of the tcp_tw_recycle check below)
    if (not want_cookie and not isn and not syncookies and not sc.tcp_tw_recycle
            and sc.tcp_max_syn_backlog - sk.syn_queue_len < (sc.tcp_max_syn_backlog >> 2)):
        mib["TcpExtListenDrops"] += 1
        return
    o = skb.opts
    req = RequestSock(sk)
    req.saddr = skb.daddr
    req.rcv_saddr = skb.daddr
    req.sport = skb.dport
    req.daddr = skb.saddr
    req.dport = skb.sport
    req.rcv_isn = skb.seq
    peer_mss = o.mss if o is not None and o.mss else S.TCP_MSS_DEFAULT
    if sk.user_mss and sk.user_mss < peer_mss:
        peer_mss = sk.user_mss
    req.peer_mss = peer_mss
    req.peer_window = skb.window
    req.tstamp_ok = bool(o is not None and o.saw_tstamp and sc.tcp_timestamps)
    req.sack_ok = bool(o is not None and o.sack_ok and sc.tcp_sack)
    req.wscale_ok = bool(o is not None and o.wscale >= 0 and sc.tcp_window_scaling)
    req.snd_wscale = min(o.wscale, S.TCP_MAX_WSCALE) if req.wscale_ok else 0
    req.ts_recent = o.tsval if req.tstamp_ok else 0
    req.tsoffset = secure_tcp_ts_off(net, req.saddr, req.daddr) if req.tstamp_ok else 0
    # tcp_openreq_init_rwin: MSS to advertise (the route's advmss, else from its MTU), our
    # initial window (capped by the route's initrwnd) and scale
    dst = net.fib_lookup(req.daddr)
    advmss = tcp_mss_clamp(sk, dst_metric_advmss(dst) if dst is not None
                           else net.route_mtu(req.daddr) - 40)
    req.mss = advmss
    mss_for_win = advmss - (12 if req.tstamp_ok else 0)
    req.rcv_wnd, req.window_clamp, req.rcv_wscale = tcp_select_initial_window(
        sk, tcp_win_from_space(sk, sk.sk_rcvbuf), mss_for_win, req.wscale_ok,
        dst.initrwnd if dst is not None else 0)
    if not req.wscale_ok:
        req.rcv_wscale = 0
    # tcp_tw_recycle emulation (Linux < 4.12 tcp_conn_request, "VJ's idea"): a SYN that did not
    # hit a TIME_WAIT socket is dropped when its address's cached timestamp (tcp/metrics.py) is
    # newer by more than TCP_PAWS_WINDOW, or it has none, within TCP_PAWS_MSL. Counted as
    # TcpExtPAWSPassive (LINUX_MIB_PAWSPASSIVEREJECTED), a name Linux 6.18 no longer has, and
    # ListenDrops (drop_and_release -> tcp_listendrop).
    if sc.tcp_tw_recycle and not want_cookie and not isn:
        if not tcp_peer_is_proven(req, True, req.tstamp_ok):
            mib["TcpExtPAWSPassive"] += 1
            mib["TcpExtListenDrops"] += 1
            return
    tcp_ecn_create_request(req, skb, sk)
    if want_cookie:
        if not req.tstamp_ok:
            req.ecn_ok = False                  # a cookie keeps ECN only in the TS option
        req.snt_isn = cookie_v4_init_sequence(sk, req, skb, peer_mss)
        req.mss = advmss
        req.cookie = True
        sk.last_synq_overflow = net.clock.now_us()     # tcp_synq_overflow
        mib["TcpExtSyncookiesSent"] += 1
        tcp_v4_send_synack(req)
        return
    req.snt_isn = isn or secure_tcp_seq(net, req.saddr, req.daddr, req.sport, req.dport)
    foc = None
    if (o is not None and o.fastopen is not None) or skb.data:
        # tcp_try_fastopen: a Fast Open child, or the cookie for the SYN-ACK
        foc = _fastopen.tcp_fastopen_cookie_of(o)
        child = _fastopen.tcp_try_fastopen(sk, skb, req, foc)
        if child is not None:
            tcp_v4_send_synack(req, foc)
            sk_wake(sk)
            return
    hi = net.tcp_hashinfo
    hi.ehash_insert(req, (req.saddr, req.sport, req.daddr, req.dport))
    sk.syn_queue_len += 1
    tcp_v4_send_synack(req, foc)
    req.timer.mod(net.clock.now_us() + req.timeout)


def _rcv_request(net: Netns, req: RequestSock, skb: SKB) -> None:
    """A segment for a request sock: the handshake's final ACK (``tcp_check_req``)."""
    listener = req.listener
    if skb.path is not None:
        skb.path.append("tcp_check_req")
    if listener.state != S.TCP_LISTEN:
        inet_csk_reqsk_queue_drop(req)
        tcp_v4_send_reset(net, skb, listener)
        return
    flags = skb.flags
    seq = skb.seq
    # retransmitted SYN: resend SYN-ACK
    if flags & SYN and not flags & (RST | ACK) and seq == req.rcv_isn:
        tcp_v4_send_synack(req)
        net.mib["TcpRetransSegs"] += 1
        _emit_path(net, skb)
        return
    if flags & ACK and ((skb.ack_seq - (req.snt_isn + 1)) & 0xFFFFFFFF) != 0:
        tcp_v4_send_reset(net, skb, listener)  # "Invalid ACK: reset will be sent by listening socket"
        _emit_path(net, skb)
        return
    rcv_nxt = (req.rcv_isn + 1) & 0xFFFFFFFF
    in_window = ((seq - rcv_nxt) & 0xFFFFFFFF) <= req.rcv_wnd or seq == rcv_nxt
    if not in_window:
        if not flags & RST:
            _req_send_ack(req)
        return
    if flags & RST:
        inet_csk_reqsk_queue_drop(req)
        return
    if flags & SYN:
        inet_csk_reqsk_queue_drop(req)
        tcp_v4_send_reset(net, skb, listener)
        return
    if not flags & ACK:
        return
    child = tcp_v4_syn_recv_sock(listener, req, skb)
    if child is None:
        return
    tcp_child_process(listener, child, skb)
    _emit_path(net, skb)


def _req_send_ack(req: RequestSock) -> None:
    """ACK for an out-of-window segment to a request (``tcp_v4_reqsk_send_ack``): timestamps,
    then the listener's MD5 signature for the peer (``tcp_v4_send_ack``'s order)."""
    net = req.net
    opts = b""
    if req.tstamp_ok:
        opts = ts_option((net.clock.now_us() // 1000 + req.tsoffset) & 0xFFFFFFFF, req.ts_recent)
    md5 = tcp_md5_do_lookup(req.listener, req.daddr) \
        if req.listener.md5sig_info is not None else None
    seg = tcp_build(req.saddr, req.daddr, req.sport, req.dport, req.snt_isn + 1, req.rcv_isn + 1,
                    ACK, min(req.rcv_wnd >> req.rcv_wscale, 0xFFFF),
                    opts if md5 is None else opts + MD5_OPTION)
    if md5 is not None:
        seg = tcp_md5_fill(seg, md5.key, req.saddr, req.daddr, 24 + len(opts))
    net.mib["TcpOutSegs"] += 1
    net.ip_output(req.saddr, req.daddr, IPPROTO_TCP, seg)


def tcp_v4_syn_recv_sock(listener: TcpSock, req: RequestSock, skb: SKB,
                         peer_mss: int | None = None) -> TcpSock | None:
    """Make the child socket for a completed handshake (``tcp_v4_syn_recv_sock``).

    If the accept queue is full the ACK is dropped (ListenOverflows) and the request stays, so
    the peer's retransmission may succeed later — or RST with tcp_abort_on_overflow.
    """
    net = listener.net
    aq_len = len(listener.accept_queue) if listener.accept_queue is not None else 0
    if aq_len > listener.max_ack_backlog:
        net.mib["TcpExtListenOverflows"] += 1
        net.mib["TcpExtListenDrops"] += 1
        if net.sysctl.tcp_abort_on_overflow:
            inet_csk_reqsk_queue_drop(req)
            tcp_v4_send_reset(net, skb)
        else:
            req.acked = True
        return None
    if peer_mss is None:
        peer_mss = req.peer_mss
    child = TcpSock(net)
    child.state = S.TCP_SYN_RECV
    child.saddr = child.rcv_saddr = req.saddr
    child.sport = req.sport
    child.daddr = req.daddr
    child.dport = req.dport
    child.parent = listener
    child.reuse = listener.reuse
    child.reuseport = listener.reuseport
    child.keepopen = listener.keepopen
    child.nonagle = listener.nonagle
    child.linger = listener.linger
    child.lingertime = listener.lingertime
    child.keepalive_time = listener.keepalive_time
    child.keepalive_intvl = listener.keepalive_intvl
    child.keepalive_probes = listener.keepalive_probes
    child.icsk_user_timeout = listener.icsk_user_timeout
    child.user_mss = listener.user_mss
    child.sk_rcvbuf = listener.sk_rcvbuf
    child.sk_sndbuf = listener.sk_sndbuf
    child.userlocks = listener.userlocks
    child.congestion_name = listener.congestion_name
    child.owner = listener.owner
    child.tos = listener.tos
    child.ttl = listener.ttl
    child.pmtudisc = listener.pmtudisc
    if req.ecn_ok:
        tcp_ecn_openreq_child(child, req)
    child.urginline = listener.urginline          # sk_clone_lock copies the sock flags
    child.freebind = listener.freebind
    child.iss = req.snt_isn
    child.irs = req.rcv_isn
    base = req.snt_isn + 1
    child.snd_una = child.snd_nxt = child.write_seq = child.pushed_seq = child.snd_sml = base
    child.snd_up = base
    child.rcv_nxt = child.rcv_wup = child.copied_seq = req.rcv_isn + 1
    child.rcv_wnd = req.rcv_wnd
    child.window_clamp = req.window_clamp
    child.rcv_ssthresh = req.rcv_wnd
    child.rcv_wscale = req.rcv_wscale
    child.snd_wscale = req.snd_wscale
    child.wscale_ok = req.wscale_ok
    child.sack_ok = req.sack_ok
    child.tstamp_ok = req.tstamp_ok
    child.tsoffset = req.tsoffset
    child.ts_recent = req.ts_recent
    child.ts_recent_stamp = net.clock.now_us() // 1_000_000
    child.tcp_header_len = 20 + (12 if req.tstamp_ok else 0)
    if listener.md5sig_info is not None:
        tcp_md5_openreq_child(listener, child)
    child.mss_clamp = peer_mss
    child.advmss = req.mss                 # (re-read from the route below, as Linux)
    child.snd_wl1 = req.rcv_isn
    child.snd_wnd = req.peer_window
    child.max_window = child.snd_wnd
    child.icsk_rto = net.tcp_timeout_init()
    # inet_csk_route_child_sock + sk_setup_caps: the child caches the route; MSS from its MTU
    dst = net.fib_lookup(child.daddr)
    sk_dst_set(child, dst)
    tcp_sync_mss(child, child.dst_mtu if dst is not None else 1500)
    if dst is not None:
        child.advmss = tcp_mss_clamp(listener, dst_metric_advmss(dst))
    child.ack_rcv_mss = min(child.advmss, child.mss_cache) or S.TCP_MSS_DEFAULT
    # RTT of the handshake (tcp_synack_rtt_meas), unless the SYN-ACK was retransmitted
    # tcp_synack_rtt_meas: Linux tests snt_synack != 0; here 0 is a valid virtual time, so a
    # request without a SYN-ACK timestamp (a syncookie) carries None instead
    if req.num_retrans == 0 and req.snt_synack is not None:
        tcp_ack_update_rtt(child, max(net.clock.now_us() - req.snt_synack, 1))
    child.total_retrans = req.num_retrans
    child.snd_cwnd = tcp_init_cwnd(child)
    tcp_init_congestion_control(child)
    # inet_csk_complete_hashdance: the child takes the request's place in ehash
    hi = net.tcp_hashinfo
    req.timer.cancel()
    req.timer.arg = None                  # the request is done: its timer lets go of it
    hi.ehash_remove(req)
    listener.syn_queue_len -= 1
    hi.ehash_insert(child, (child.saddr, child.sport, child.daddr, child.dport))
    _inherit_port(hi, listener, child)
    net.sockets.add(child)
    child.state = S.TCP_CLOSE
    tcp_set_state(child, S.TCP_SYN_RECV)
    net.mib["TcpPassiveOpens"] += 1
    if listener.accept_queue is None:
        listener.accept_queue = deque()
    listener.accept_queue.append(child)
    return child


def _inherit_port(hi, listener: TcpSock, child: TcpSock) -> None:
    """The child shares the listener's bind bucket (``__inet_inherit_port``)."""
    tb = listener.bind_bucket
    if tb is not None:
        tb.add(child)
        child.bind_bucket = tb


def tcp_child_process(parent: TcpSock, child: TcpSock, skb: SKB) -> None:
    """Run the final ACK through the child and wake accept() (``tcp_child_process``)."""
    _unwrap_skb(child, skb)
    state = child.state
    if tcp_rcv_state_process(child, skb):
        tcp_v4_send_reset(child.net, skb, child)
    if child.state != state:
        sk_wake(parent, S.POLL_KEY_IN)                  # parent->sk_data_ready


def tcp_v4_connect(sk: TcpSock, daddr: int, dport: int) -> None:
    """connect(): route, source address, port, ISN, SYN (``tcp_v4_connect``)."""
    net = sk.net
    route = net.fib_lookup(daddr)
    if route is None:
        raise oserror(ENETUNREACH, "no route to host")
    bound_addr = sk.rcv_saddr
    if not bound_addr:
        # inet_bhash2_update_saddr: the chosen source becomes the bound address too, so a
        # later bind() to another address of the same port no longer conflicts (Linux 6.x)
        sk.saddr = sk.rcv_saddr = net.inet_select_addr(route, daddr)
    else:
        sk.saddr = sk.rcv_saddr
    sk.daddr = daddr
    sk.dport = dport
    sk.mss_clamp = S.TCP_MSS_DEFAULT
    tcp_set_state(sk, S.TCP_SYN_SENT)
    try:
        net.tcp_hashinfo.inet_hash_connect(sk)
    except OSError:
        sk.state = S.TCP_CLOSE
        sk.daddr = 0
        sk.dport = 0
        if not bound_addr:
            sk.saddr = sk.rcv_saddr = 0     # inet_bhash2_reset_saddr
        raise
    net.sockets.add(sk)
    if not sk.write_seq:
        sk.write_seq = secure_tcp_seq(net, sk.saddr, sk.daddr, sk.sport, sk.dport)
    sk.iss = sk.write_seq
    sk.tsoffset = secure_tcp_ts_off(net, sk.saddr, sk.daddr)
    sk.inet_id = net.rng.getrandbits(16)
    if sk.tfo is not None and _fastopen.tcp_fastopen_defer_connect(sk):
        return                  # TCP_FASTOPEN_CONNECT with a cookie: the first write sends the SYN
    tcp_connect(sk)


from . import fastopen as _fastopen  # noqa: E402
from .input import tcp_rcv_established, tcp_rcv_state_process  # noqa: E402  (input imports us)


def tcp_v4_mtu_reduced(sk: TcpSock, mtu: int) -> None:
    """ICMP fragmentation-needed said ``mtu`` (``tcp_v4_mtu_reduced``): update the path MTU
    toward the peer -- shared by every socket to it (``inet_csk_update_pmtu`` ->
    ``__ip_rt_update_pmtu``: at least net.ipv4.route.min_pmtu, then locked) -- and if it is
    below the MTU the MSS was sized for, re-sync the MSS and resend what no longer fits at once
    (``tcp_simple_retransmit``: the "fast" PMTU discovery, no RTO wait). IP_PMTUDISC_DONT,
    INTERFACE and OMIT sockets keep their MSS and let the retransmission timer deal with it."""
    from ..net.route import __ip_rt_update_pmtu, dst_mtu
    from .mtu_probe import tcp_simple_retransmit

    if sk.state in (S.TCP_LISTEN, S.TCP_CLOSE):
        return
    net = sk.net
    dst = __ip_rt_update_pmtu(net, sk.daddr, mtu)
    if dst is None:
        return
    sk_dst_set(sk, dst)                              # __sk_dst_check: the exception's rtable
    pmtu = dst_mtu(dst)
    pmtudisc = sk.pmtudisc
    if mtu < pmtu and (pmtudisc == 2 or (pmtudisc == 1 and not dst.locks & 4)):
        sk.sk_err_soft = EMSGSIZE                    # ip_dont_fragment: we cannot go lower
    if pmtudisc not in (0, 4, 5) and sk.icsk_pmtu_cookie > pmtu:
        tcp_sync_mss(sk, pmtu)
        if sk.syn_data and sk.state == S.TCP_SYN_SENT:
            # the SYN with data was too big: resend a plain SYN now (tcp_simple_retransmit's
            # fastopen case, mss = -1)
            _fastopen.tcp_fastopen_mtu_reduced(sk, pmtu)
        else:
            tcp_simple_retransmit(sk)


def tcp_v4_err(net: Netns, icmp_type: int, icmp_code: int, inner_iph, data: bytes, toff: int,
               info: int = 0) -> None:
    """An ICMP error about one of our segments (``tcp_v4_err``).

    Checks the quoted sequence number is in flight; in SYN_SENT / SYN_RECV a hard error
    (e.g. port unreachable -> ECONNREFUSED) aborts the connect, otherwise it is kept as the soft
    error reported if the connection later times out. Fragmentation-needed lowers the MSS.
    """
    from ..net.icmp import ICMP_DEST_UNREACH, ICMP_ERR_CONVERT, ICMP_FRAG_NEEDED, ICMP_TIME_EXCEEDED

    if len(data) < toff + 8:
        return
    sport, dport, seq = struct.unpack_from("!HHI", data, toff)
    sk = net.tcp_hashinfo.ehash.get((inner_iph.saddr, sport, inner_iph.daddr, dport))
    if sk is None:
        net.mib["IcmpInErrors"] += 1
        return
    if isinstance(sk, (TimewaitSock, RequestSock)):
        if isinstance(sk, RequestSock) and ((seq - sk.snt_isn) & 0xFFFFFFFF) == 0:
            inet_csk_reqsk_queue_drop(sk)      # tcp_req_err: abort the embryonic connection
        return
    if sk.state == S.TCP_CLOSE:
        return
    fo_req = sk.tfo.fastopen_rsk if sk.tfo is not None else None
    if fo_req is not None:
        # a Fast Open child's snd_una is past its SYN-ACK: the ICMP may quote the ISN
        useq = unwrap(seq, sk.snd_una)
        if not (sk.snd_una - 1 <= useq <= sk.snd_nxt):
            net.mib["TcpExtOutOfWindowIcmps"] += 1
            return
    else:
        useq = unwrap(seq, sk.snd_una)
        if not (sk.snd_una <= useq < max(sk.snd_nxt, sk.snd_una + 1)):
            net.mib["TcpExtOutOfWindowIcmps"] += 1
            return
    if icmp_type == ICMP_DEST_UNREACH:
        if icmp_code == ICMP_FRAG_NEEDED:
            # PMTU discovery, RFC 1191 (Linux defers this to release_sock when the user owns
            # the socket -- TCP_MTU_REDUCED_DEFERRED; tcpdive does it at once)
            tcp_v4_mtu_reduced(sk, info)
            return
        err, fatal = (ICMP_ERR_CONVERT[icmp_code] if icmp_code < len(ICMP_ERR_CONVERT)
                      else (113, False))
    elif icmp_type == ICMP_TIME_EXCEEDED:
        err, fatal = 113, False                    # EHOSTUNREACH
    else:
        return
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
        if fo_req is not None and sk.socket is None and not sk.owned_by_user:
            tcp_done_with_error(sk, err)    # a Fast Open child nobody accepted yet: any error
            return
        if fatal and not sk.owned_by_user:
            tcp_done_with_error(sk, err)
        else:
            sk.sk_err_soft = err
        return
    sk.sk_err_soft = err
