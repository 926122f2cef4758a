"""tcp.c: what the socket layer calls — sendmsg, recvmsg, close, shutdown, disconnect,
socket options, tcp_info — plus ``tcp_set_state`` and ``tcp_done``.

These never block: they return what they could do, or raise the errno; the socket layer waits
on ``sk.wq`` and retries, as ``sk_wait_event`` does.
"""

from __future__ import annotations

from collections import deque

from ..errors import EAGAIN, ECONNRESET, EINVAL, ENOTCONN, EPIPE, oserror
from ..packet.tcp import ACK, FIN, PSH
from ..skb import SKB
from . import sock as S
from .minisocks import RequestSock, inet_csk_reqsk_queue_drop, tcp_time_wait
from .output import (
    __sk_stream_memory_free,
    __tcp_push_pending_frames,
    __tcp_select_window,
    tcp_add_write_queue_tail,
    tcp_current_mss,
    tcp_lskb,
    tcp_lskb_entail,
    tcp_lskb_tail_len,
    tcp_send_ack,
    tcp_send_active_reset,
    tcp_send_fin,
    tcp_slow_start_after_idle_check,
    tcp_write_xmit,
    tcp_xmit_size_goal,
)
from .rate import tcp_rate_check_app_limited
from .sock import TcpSock, sk_add_waiter, sk_wake  # noqa: F401  (re-exported)
from .timer import inet_csk_reset_keepalive_timer

MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTWAIT = 0x40
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_MORE = 0x8000
MSG_EOR = 0x80
MSG_TRUNC = 0x20

SOCK_BINDPORT_LOCK = 0x8
SOCK_BINDADDR_LOCK = 0x4
SOCK_SNDBUF_LOCK = 0x1
SOCK_RCVBUF_LOCK = 0x2


def tcp_set_state(sk: TcpSock, state: int, quiet: bool = False) -> None:
    """Change state, count MIBs, unhash on CLOSE (``tcp_set_state``); emits inet_sock_set_state.

    ``quiet`` skips the tracepoint when a TIME_WAIT mini socket takes over (already reported).
    """
    old = sk.state
    if old == state:
        return
    net = sk.net
    mib = net.mib
    if state == S.TCP_ESTABLISHED:
        mib["TcpCurrEstab"] += 1
    elif old == S.TCP_ESTABLISHED:
        mib["TcpCurrEstab"] -= 1
    if state == S.TCP_CLOSE:
        if old in (S.TCP_CLOSE_WAIT, S.TCP_ESTABLISHED):
            mib["TcpEstabResets"] += 1
        hi = net.tcp_hashinfo
        if sk.hash_key is not None:
            hi.ehash_remove(sk)
        if sk.listen_hashed:
            hi.listen_unhash(sk)
        if sk.bind_bucket is not None and not (sk.userlocks & SOCK_BINDPORT_LOCK):
            hi.bind_remove(sk)
    tp = net.trace.set_state
    sk.state = state
    if tp.subs and not quiet:
        tp.emit(sk, old, state, net.clock.now_us())


def lock_sock(sk: TcpSock) -> None:
    """The application takes the socket (``lock_sock``): softirq input now goes to the backlog."""
    sk.owned_by_user = True


def release_sock(sk: TcpSock) -> None:
    """The application lets go (``release_sock`` / ``__release_sock``): process the backlog
    through ``sk_backlog_rcv`` = ``tcp_v4_do_rcv``, in arrival order."""
    from .ipv4 import tcp_v4_do_rcv

    while sk.backlog:
        queue, sk.backlog = sk.backlog, None
        for skb in queue:
            if skb.path is not None:
                skb.path.append("release_sock")
            tcp_v4_do_rcv(sk, skb)
            if skb.path is not None:
                sk.net.trace.path.emit(sk.net, skb.path, skb)
    sk.owned_by_user = False


def tcp_clear_xmit_timers(sk: TcpSock) -> None:
    sk.retransmit_timer.cancel()
    sk.delack_timer.cancel()
    sk.keepalive_timer.cancel()
    sk.icsk_pending = 0
    sk.ack_pending = 0


def tcp_done(sk: TcpSock, quiet: bool = False) -> None:
    """Final close (``tcp_done``): CLOSE state, timers off, wake or destroy."""
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
        sk.net.mib["TcpAttemptFails"] += 1
    tcp_set_state(sk, S.TCP_CLOSE, quiet)
    tcp_clear_xmit_timers(sk)
    sk.sk_shutdown = S.SHUTDOWN_MASK
    if not sk.dead:
        sk_wake(sk)
        if sk.parent is not None and sk.parent.wq:
            sk_wake(sk.parent)
    else:
        inet_csk_destroy_sock(sk)


def tcp_done_with_error(sk: TcpSock, err: int) -> None:
    """Record ``err`` for the application, drop queues, close (``tcp_done_with_error``)."""
    sk.sk_err = err
    _input.tcp_write_queue_purge(sk)
    tcp_done(sk)


def inet_csk_destroy_sock(sk: TcpSock) -> None:
    """Forget a dead, closed socket (``inet_csk_destroy_sock``)."""
    net = sk.net
    if sk in net.sockets:
        net.sockets.discard(sk)
        if sk.dead:
            net.tcp_orphan_count -= 1
    hi = net.tcp_hashinfo
    if sk.bind_bucket is not None:
        hi.bind_remove(sk)
    if sk.ca is not None:
        sk.ca.release(sk)
    # the timers hold the socket (their argument, as Linux's sock_hold per timer): a dead socket
    # gives that back, so it is freed when the last user lets go rather than by the cycle GC
    sk.retransmit_timer.arg = sk.delack_timer.arg = sk.keepalive_timer.arg = None


# ---- send / receive ------------------------------------------------------------------------

def sk_stream_memory_free(sk: TcpSock) -> bool:
    """Room for a new skb: the Linux-counted queue below sndbuf and the unsent bytes below
    TCP_NOTSENT_LOWAT (``sk_stream_memory_free`` -> ``tcp_stream_memory_free``)."""
    return __sk_stream_memory_free(sk, 0)


def forced_push(sk: TcpSock) -> bool:
    """Half of the peer's largest window written since the last PSH (``forced_push``)."""
    return sk.write_seq > sk.pushed_seq + (sk.max_window >> 1)


def tcp_sendmsg(sk: TcpSock, data: bytes | memoryview, flags: int = 0) -> int:
    """Copy bytes into the write queue and push (``tcp_sendmsg_locked``).

    Linux appends to the tail skb until it holds ``size_goal`` bytes (several MSS) and checks
    the send buffer and TCP_NOTSENT_LOWAT only before allocating a new skb; a full skb at the
    head of the unsent data is pushed at once (``tcp_push_one``), a forced push marks PSH
    (``forced_push``). tcpdive cuts the bytes into MSS skbs and follows Linux's skb layout in
    ``sk.lskb``. Returns how many bytes were taken (maybe fewer than offered when the buffer
    fills); raises EAGAIN when none fit, EPIPE when sending is shut down, the pending error.
    """
    if sk.sk_err:
        err = sk.sk_err
        sk.sk_err = 0
        raise oserror(err)
    tcp_rate_check_app_limited(sk)           # is sending application-limited?
    if sk.state not in (S.TCP_ESTABLISHED, S.TCP_CLOSE_WAIT) and not (
            sk.tfo is not None and _fastopen.tcp_passive_fastopen(sk)):
        if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
            raise oserror(EAGAIN)
        raise oserror(EPIPE)
    if sk.sk_shutdown & S.SEND_SHUTDOWN:
        raise oserror(EPIPE)
    mss_now = tcp_current_mss(sk)
    size_goal = tcp_xmit_size_goal(sk, mss_now, not flags & MSG_OOB)
    copied = 0
    n = len(data)
    q = sk.write_queue
    while copied < n:
        tail_len = tcp_lskb_tail_len(sk)
        copy = size_goal - tail_len
        if tail_len < 0 or copy <= 0 or getattr(q[-1], "eor", False):
            # new_segment
            if not sk_stream_memory_free(sk):
                sk.sock_nospace = True                 # wait_for_space
                if copied:
                    tcp_push(sk, flags & ~MSG_MORE, mss_now, S.TCP_NAGLE_PUSH)
                break
            tcp_lskb_entail(sk)
            tcp_slow_start_after_idle_check(sk)        # tcp_skb_entail
            copy = size_goal
            tail_len = 0
        copy = min(copy, n - copied)
        if not copied and q and tail_len > 0:
            q[-1].flags &= ~PSH                        # appending: the old tail PSH goes
        left = copy
        while left:
            tail = q[-1] if q else None
            if (tail is not None and tail_len > 0 and tail.seq >= sk.snd_nxt
                    and len(tail.data) < mss_now and not tail.flags & FIN):
                chunk = bytes(data[copied:copied + min(mss_now - len(tail.data), left)])
                tail.data += chunk
                tail.end_seq += len(chunk)
            else:
                chunk = bytes(data[copied:copied + min(mss_now, left)])
                skb = SKB(sk.write_seq, sk.write_seq + len(chunk), ACK, chunk)
                skb.eor = False
                if tail is not None and tail_len > 0 and tail.flags & PSH:
                    # still Linux's tail skb (a sent head cut off, the rest refilled up to
                    # size_goal): its PSH stays with the skb's end, which moves on
                    tail.flags &= ~PSH
                    skb.flags |= PSH
                tcp_add_write_queue_tail(sk, skb)
                q = sk.write_queue
            sk.write_seq += len(chunk)
            sk.sk_wmem_queued += len(chunk)
            copied += len(chunk)
            left -= len(chunk)
            tail_len += len(chunk)
        if copied == n:
            if flags & MSG_EOR:
                q[-1].eor = True
            break
        if tail_len < size_goal or flags & MSG_OOB:
            continue
        if forced_push(sk):
            q[-1].flags |= PSH                         # tcp_mark_push
            sk.pushed_seq = sk.write_seq
            __tcp_push_pending_frames(sk, mss_now, S.TCP_NAGLE_PUSH)
        elif tcp_lskb(sk)[-1] <= sk.snd_nxt:          # skb == tcp_send_head: tcp_push_one
            tcp_write_xmit(sk, mss_now, S.TCP_NAGLE_PUSH, push_one=True)
    if copied == 0 and n:
        raise oserror(EAGAIN)
    if copied:
        tcp_push(sk, flags, mss_now, sk.nonagle)
    return copied


def tcp_push(sk: TcpSock, flags: int, mss_now: int, nonagle: int | None = None) -> None:
    """Mark PSH on the tail unless MSG_MORE (or when a push is forced), the urgent mark for
    MSG_OOB, then push (``tcp_push``)."""
    q = sk.write_queue
    if not q:
        return
    if nonagle is None:
        nonagle = sk.nonagle
    if not flags & MSG_MORE or forced_push(sk):
        q[-1].flags |= PSH                             # tcp_mark_push
        sk.pushed_seq = sk.write_seq
    if flags & MSG_OOB:
        sk.snd_up = sk.write_seq                       # tcp_mark_urg
    if flags & MSG_MORE:
        nonagle = S.TCP_NAGLE_CORK
    __tcp_push_pending_frames(sk, mss_now, nonagle)


def tcp_inq(sk: TcpSock) -> int:
    """Bytes ready to read (SIOCINQ)."""
    return sk.rcv_queue_bytes


def tcp_recvmsg(sk: TcpSock, n: int, flags: int = 0) -> bytes:
    """Take up to ``n`` bytes from the receive queue (``tcp_recvmsg_locked``).

    Returns b"" at end of stream; raises EAGAIN when nothing is ready, ENOTCONN when not
    connected, the pending error (ECONNRESET...) if the connection failed. MSG_OOB reads the
    urgent byte (``tcp_recv_urg``); a pending urgent mark stops the read (``tcp_urg_mark``).
    """
    if sk.state == S.TCP_LISTEN:
        raise oserror(ENOTCONN)
    if n < 0:
        raise oserror(EINVAL)
    if flags & MSG_OOB:
        return _urgent.tcp_recv_urg(sk, n, flags)
    hole = 0
    if sk.urg_data:
        n, hole = _urgent.tcp_urg_mark(sk, n, flags)
    if sk.rcv_queue_bytes <= hole:
        if sk.sk_err:
            err = sk.sk_err
            sk.sk_err = 0
            raise oserror(err)
        if sk.sk_shutdown & S.RCV_SHUTDOWN or sk.done:
            if sk.fin_received and not flags & MSG_PEEK and sk.copied_seq == sk.rcv_nxt - 1:
                sk.copied_seq = sk.rcv_nxt       # found_fin_ok: the reader consumed the FIN
            return b""
        if sk.state == S.TCP_CLOSE:
            if sk.done:
                return b""
            raise oserror(ENOTCONN)
        raise oserror(EAGAIN)
    if n == 0:
        return b""
    q = sk.receive_queue
    out = []
    got = 0
    peek = flags & MSG_PEEK
    off = sk.rcv_queue_off + hole
    idx = 0
    while got < n and idx < len(q):
        buf = q[idx]
        avail = len(buf) - off
        take = min(avail, n - got)
        out.append(buf[off:off + take])
        got += take
        if peek:
            idx += 1
            off = 0
            continue
        if take == avail:
            q.popleft()
            off = 0
        else:
            off += take
    if not peek:
        sk.rcv_queue_off = off
        sk.rcv_queue_bytes -= got
        sk.copied_seq += got
        if not sk.rcv_queue_bytes:
            sk.receive_queue = ()                # drained: let an idle socket stay small
        if sk.fin_received and not sk.rcv_queue_bytes and sk.copied_seq == sk.rcv_nxt - 1:
            sk.copied_seq = sk.rcv_nxt           # the FIN follows the last byte read
        if sk.urg_data:
            _urgent.tcp_urg_passed(sk)
        _input.tcp_rcv_space_adjust(sk)
        tcp_cleanup_rbuf(sk, got)
    return b"".join(out) if len(out) != 1 else bytes(out[0])


def tcp_cleanup_rbuf(sk: TcpSock, copied: int) -> None:
    """After a read: ACK now if the window can grow a lot, or a delayed ACK is due (``tcp_cleanup_rbuf``)."""
    time_to_ack = False
    if sk.ack_pending & S.ICSK_ACK_SCHED:
        if (sk.rcv_nxt - sk.rcv_wup > sk.ack_rcv_mss
                or (copied > 0 and (sk.ack_pending & S.ICSK_ACK_PUSHED2
                                    or (sk.ack_pending & S.ICSK_ACK_PUSHED
                                        and not sk.in_pingpong_mode()))
                    and not sk.rcv_queue_bytes)):
            time_to_ack = True
    if copied > 0 and not time_to_ack and not sk.sk_shutdown & S.RCV_SHUTDOWN:
        rcv_window_now = sk.tcp_receive_window()
        if 2 * rcv_window_now <= sk.window_clamp:
            new_window = __tcp_select_window(sk)
            if new_window and new_window >= 2 * rcv_window_now:
                time_to_ack = True
    if time_to_ack and sk.state not in (S.TCP_CLOSE, S.TCP_SYN_SENT, S.TCP_LISTEN):
        tcp_send_ack(sk)


def tcp_read_sock(sk: TcpSock, count: int, actor) -> int:
    """Hand up to ``count`` queued bytes to ``actor(bytes) -> used`` without copying them to a
    user buffer (``tcp_read_sock``, the splice/sendfile reader). It never blocks, never reads
    urgent data and stops *at* an urgent mark, without stepping over the urgent byte (only
    recvmsg does that). Returns the bytes used, or the actor's negative errno if none were.
    """
    if sk.state == S.TCP_LISTEN:
        return -ENOTCONN
    copied = 0
    q = sk.receive_queue
    while q and count > 0:
        buf = q[0]
        off = sk.rcv_queue_off
        n = len(buf) - off
        if sk.urg_data:                              # stop at a patch of urgent data
            urg_offset = sk.urg_seq - sk.copied_seq
            if 0 <= urg_offset < n:
                n = urg_offset
            if not n:
                break
        used = actor(buf[off:off + min(n, count)])
        if used <= 0:
            if not copied:
                copied = used
            break
        copied += used
        count -= used
        sk.copied_seq += used
        sk.rcv_queue_bytes -= used
        if off + used == len(buf):
            q.popleft()
            sk.rcv_queue_off = 0
        else:
            sk.rcv_queue_off = off + used
    if not sk.rcv_queue_bytes:
        sk.receive_queue = ()
        if sk.fin_received and sk.copied_seq == sk.rcv_nxt - 1:
            sk.copied_seq = sk.rcv_nxt               # the FIN skb is eaten too
    _input.tcp_rcv_space_adjust(sk)
    if copied > 0:
        tcp_cleanup_rbuf(sk, copied)
    return copied


def tcp_splice_read(sk: TcpSock, length: int, actor, nonblock: bool) -> int:
    """splice() from a TCP socket (``tcp_splice_read``): ``tcp_read_sock`` into the pipe's
    ``actor``. ``nonblock`` is the socket file's O_NONBLOCK (SPLICE_F_NONBLOCK only concerns
    the pipe). Returns the bytes spliced; 0 at EOF, and 0 too when data is queued that cannot
    be read (an urgent mark at the head of the queue: Linux's guard against looping); raises
    the socket error, ENOTCONN, or EAGAIN when nothing is ready (a blocking caller sleeps on
    the socket and calls again, as ``sk_wait_data`` does).
    """
    spliced = 0
    ret = 0
    while length:
        ret = tcp_read_sock(sk, length, actor)
        if ret < 0:
            break
        if ret == 0:
            if spliced or sk.done:
                break
            if sk.sk_err:
                err, sk.sk_err = sk.sk_err, 0
                ret = -err
                break
            if sk.sk_shutdown & S.RCV_SHUTDOWN:
                break
            if sk.state == S.TCP_CLOSE:
                ret = -ENOTCONN
                break
            if nonblock or not sk.rcv_queue_bytes:
                ret = -EAGAIN                        # a blocking caller waits for data
            break
        length -= ret
        spliced += ret
        if nonblock:
            break
        if sk.sk_err or sk.state == S.TCP_CLOSE or sk.sk_shutdown & S.RCV_SHUTDOWN:
            break
    if spliced:
        return spliced
    if ret < 0:
        raise oserror(-ret)
    return ret


# ---- close / shutdown ------------------------------------------------------------------------

_NEW_STATE = {
    S.TCP_ESTABLISHED: (S.TCP_FIN_WAIT1, True),
    S.TCP_SYN_SENT: (S.TCP_CLOSE, False),
    S.TCP_SYN_RECV: (S.TCP_FIN_WAIT1, True),
    S.TCP_FIN_WAIT1: (S.TCP_FIN_WAIT1, False),
    S.TCP_FIN_WAIT2: (S.TCP_FIN_WAIT2, False),
    S.TCP_TIME_WAIT: (S.TCP_CLOSE, False),
    S.TCP_CLOSE: (S.TCP_CLOSE, False),
    S.TCP_CLOSE_WAIT: (S.TCP_LAST_ACK, True),
    S.TCP_LAST_ACK: (S.TCP_LAST_ACK, False),
    S.TCP_LISTEN: (S.TCP_CLOSE, False),
    S.TCP_CLOSING: (S.TCP_CLOSING, False),
}


def tcp_close_state(sk: TcpSock) -> bool:
    """Next state on close/shutdown; True if a FIN must be sent (``tcp_close_state``)."""
    new, send_fin = _NEW_STATE[sk.state]
    if new == S.TCP_CLOSE:
        tcp_done(sk) if sk.state != S.TCP_CLOSE else None
    else:
        tcp_set_state(sk, new)
    return send_fin


def tcp_shutdown(sk: TcpSock, how: int) -> None:
    """shutdown(): SEND_SHUTDOWN sends our FIN (``tcp_shutdown``)."""
    if not how & S.SEND_SHUTDOWN:
        return
    if sk.state in (S.TCP_ESTABLISHED, S.TCP_SYN_SENT, S.TCP_SYN_RECV, S.TCP_CLOSE_WAIT):
        if tcp_close_state(sk):
            tcp_send_fin(sk)


def tcp_need_reset(state: int) -> bool:
    return state in (S.TCP_ESTABLISHED, S.TCP_CLOSE_WAIT, S.TCP_FIN_WAIT1, S.TCP_FIN_WAIT2,
                     S.TCP_SYN_RECV)


def tcp_disconnect(sk: TcpSock) -> None:
    """Abort to a fresh CLOSE socket that may connect or listen again (``tcp_disconnect``).

    RST if the peer knows us (ECONNRESET on the socket, also for an aborted SYN_SENT); queues,
    timers, RTT estimator, congestion state, counters and the peer's options (``rx_opt``, which
    holds TCP_MAXSEG too) are reset; a later connect() starts its ISN past the old window
    (``write_seq + max_window + 2``) instead of a fresh secure one, as Linux does.
    """
    old = sk.state
    if old == S.TCP_LISTEN:
        inet_csk_listen_stop(sk)
    elif tcp_need_reset(old) or (sk.snd_nxt != sk.write_seq and old in (S.TCP_CLOSING, S.TCP_LAST_ACK)):
        tcp_send_active_reset(sk)
        sk.sk_err = ECONNRESET
    elif old == S.TCP_SYN_SENT:
        sk.sk_err = ECONNRESET
    if old != S.TCP_CLOSE:
        tcp_set_state(sk, S.TCP_CLOSE)
    tcp_clear_xmit_timers(sk)
    sk.receive_queue = ()
    sk.rcv_queue_bytes = 0
    sk.copied_seq = sk.rcv_nxt
    sk.urg_data = 0
    _input.tcp_write_queue_purge(sk)
    sk.ofo_queue = ()
    sk.ofo_bytes = 0
    sk.dport = 0
    if not sk.userlocks & SOCK_BINDADDR_LOCK:
        sk.saddr = sk.rcv_saddr = 0                    # inet_reset_saddr
    sk.sk_shutdown = 0
    sk.done = False
    sk.srtt_us = sk.rttvar_us = sk.mdev_max_us = 0
    sk.mdev_us = S.TCP_TIMEOUT_INIT
    sk.rcv_rtt_us = 0
    sk.write_seq = (sk.write_seq + sk.max_window + 2) & 0xFFFFFFFF or 1
    sk.icsk_backoff = 0
    sk.icsk_retransmits = 0
    sk.icsk_probes_out = 0
    sk.icsk_probes_tstamp = 0
    sk.icsk_rto = S.TCP_TIMEOUT_INIT
    sk.icsk_delack_max = S.TCP_DELACK_MAX
    sk.snd_ssthresh = S.TCP_INFINITE_SSTHRESH
    sk.snd_cwnd = S.TCP_INIT_CWND
    sk.snd_cwnd_cnt = 0
    sk.is_cwnd_limited = False
    sk.max_packets_out = 0
    sk.window_clamp = 0
    sk.delivered = 0
    sk.ca = sk.ca_priv = None                          # re-initialised by the next connect
    sk.icsk_ca_state = S.TCP_CA_Open
    sk.is_sack_reneg = False
    sk.retrans_out = sk.lost_out = sk.sacked_out = sk.packets_out = 0   # tcp_clear_retrans
    sk.undo_marker = 0
    sk.undo_retrans = -1
    sk.total_retrans = 0
    sk.ack_pending = sk.ack_quick = sk.ack_pingpong = 0  # inet_csk_delack_init
    sk.ack_ato = sk.ack_timeout = sk.ack_lrcvtime = sk.ack_last_seg_size = 0
    sk.ack_rcv_mss = S.TCP_MIN_MSS
    # memset(&tp->rx_opt, 0): the peer's options and our TCP_MAXSEG
    sk.tstamp_ok = sk.sack_ok = sk.wscale_ok = sk.saw_tstamp = False
    sk.snd_wscale = sk.rcv_wscale = 0
    sk.ts_recent = sk.ts_recent_stamp = sk.rcv_tsval = sk.rcv_tsecr = 0
    sk.user_mss = sk.mss_clamp = 0
    sk.dsack = sk.num_sacks = 0
    sk.bytes_sent = sk.bytes_acked = sk.bytes_received = sk.bytes_retrans = 0
    sk.segs_in = sk.segs_out = sk.data_segs_in = sk.data_segs_out = 0
    sk.duplicate_sack = None
    sk.dsack_dups = sk.reord_seen = 0
    sk.tlp_high_seq = 0
    sk.last_oow_ack_time = 0
    sk.app_limited = 0xFFFFFFFF
    sk.rack_mstamp = sk.rack_last_delivered = sk.rack_reo_wnd_persist = 0
    sk.rack_advanced = sk.rack_dsack_seen = False
    sk.rack_reo_wnd_steps = 1
    tfo = sk.tfo
    if tfo is not None:
        tfo.fastopen_req = None                        # tcp_free_fastopen_req
        tfo.defer_connect = False
        tfo.syn_fastopen = tfo.syn_fastopen_exp = tfo.syn_data_acked = False
        tfo.client_fail = 0
        if tfo.fastopen_rsk is not None:
            _fastopen.reqsk_fastopen_remove(sk, tfo.fastopen_rsk, False)
    sk.syn_data = False
    sk_wake(sk)


def inet_csk_listen_stop(sk: TcpSock) -> None:
    """Close a listener: reset the children nobody accepted, drop requests."""
    aq = sk.accept_queue
    sk.accept_queue = None
    if aq:
        for child in aq:
            child.dead = True
            sk.net.tcp_orphan_count += 1
            tcp_disconnect(child)
            inet_csk_destroy_sock(child)
    hi = sk.net.tcp_hashinfo
    for req in [r for r in hi.ehash.values() if isinstance(r, RequestSock) and r.listener is sk]:
        inet_csk_reqsk_queue_drop(req)


def tcp_close(sk: TcpSock) -> None:
    """close() on a TCP socket (``__tcp_close``): FIN, or RST for unread data / linger 0."""
    net = sk.net
    sk.sk_shutdown = S.SHUTDOWN_MASK
    if sk.state == S.TCP_LISTEN:
        tcp_set_state(sk, S.TCP_CLOSE)
        inet_csk_listen_stop(sk)
    else:
        data_was_unread = sk.rcv_queue_bytes
        if sk.state == S.TCP_CLOSE:
            pass
        elif data_was_unread:
            net.mib["TcpExtTCPAbortOnClose"] += 1
            tcp_set_state(sk, S.TCP_CLOSE)
            tcp_send_active_reset(sk)
        elif sk.linger and not sk.lingertime:
            tcp_disconnect(sk)
            net.mib["TcpExtTCPAbortOnData"] += 1
        elif tcp_close_state(sk):
            tcp_send_fin(sk)
    state = sk.state
    sk.dead = True
    sk.socket = None
    sk.wq = None
    if state != S.TCP_CLOSE:
        net.tcp_orphan_count += 1
    if sk.state == S.TCP_FIN_WAIT2:
        if sk.linger2 < 0:
            tcp_set_state(sk, S.TCP_CLOSE)
            tcp_send_active_reset(sk)
            net.mib["TcpExtTCPAbortOnLinger"] += 1
        else:
            tmo = sk.tcp_fin_time()
            if tmo > S.TCP_TIMEWAIT_LEN:
                inet_csk_reset_keepalive_timer(sk, tmo - S.TCP_TIMEWAIT_LEN)
            else:
                tcp_time_wait(sk, S.TCP_FIN_WAIT2, tmo)
                return
    if sk.state == S.TCP_CLOSE:
        tcp_clear_xmit_timers(sk)
        inet_csk_destroy_sock(sk)


def tcp_listen_start(sk: TcpSock, backlog: int) -> None:
    """listen(): accept queue bounded by min(backlog, somaxconn) (``inet_csk_listen_start``)."""
    net = sk.net
    somaxconn = net.sysctl.somaxconn
    sk.max_ack_backlog = min(max(backlog, 0), somaxconn)
    if sk.state == S.TCP_LISTEN:
        return
    if sk.accept_queue is None:
        sk.accept_queue = deque()
    if net.sysctl.tcp_fastopen & 0x400:                # TFO_SERVER_WO_SOCKOPT1
        _fastopen.tcp_fastopen_listen(sk, backlog)
    tcp_set_state(sk, S.TCP_LISTEN)
    net.tcp_hashinfo.listen_hash(sk)
    net.sockets.add(sk)


def tcp_ioctl_outq(sk: TcpSock) -> int:
    """SIOCOUTQ: bytes not yet acknowledged."""
    return sk.write_seq - sk.snd_una if sk.state != S.TCP_LISTEN else 0


# input.py imports this module (cycle): bound as a module, its functions looked up at call time
from . import fastopen as _fastopen  # noqa: E402
from . import input as _input  # noqa: E402
from . import urgent as _urgent  # noqa: E402
