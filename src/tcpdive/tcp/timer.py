"""tcp_timer.c: retransmission, zero-window probe, delayed ACK and keepalive/FIN_WAIT2 timers.

``tcp_write_timeout`` decides when to give up, with Linux's model of the timeout
(``tcp_model_timeout``: tcp_retries2=15 on a 200 ms base is 924.6 s) and the orphan rules of
``tcp_orphan_retries``.
"""

from __future__ import annotations

from ..ktime import HZ, USEC_PER_JIFFY
from . import sock as S
from .sock import (
    ICSK_ACK_TIMER,
    ICSK_TIME_PROBE0,
    ICSK_TIME_RETRANS,
    TCP_ATO_MIN,
    TCP_RESOURCE_PROBE_INTERVAL,
    TCP_RTO_MAX,
    TCP_RTO_MIN,
    TCP_TIMEWAIT_LEN,
    TCP_CA_Loss,
    TcpSock,
)

ETIMEDOUT = 110


def tcp_model_timeout(boundary: int, rto_base: int, rto_max: int = TCP_RTO_MAX) -> int:
    """Milliseconds ``boundary`` exponential backoffs take from ``rto_base`` us (``tcp_model_timeout``)."""
    thresh = (rto_max // rto_base).bit_length() - 1
    if boundary <= thresh:
        timeout = ((2 << boundary) - 1) * rto_base
    else:
        timeout = ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max
    return timeout // 1000


def retransmits_timed_out(sk: TcpSock, boundary: int, timeout_ms: int) -> bool:
    """Has retransmission gone on longer than ``boundary`` backoffs (or ``timeout_ms``) allow?"""
    if not sk.icsk_retransmits:
        return False
    start_ts = sk.retrans_stamp
    if timeout_ms == 0:
        rto_base = TCP_RTO_MIN
        if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
            rto_base = sk.net.tcp_timeout_init()
        timeout_ms = tcp_model_timeout(boundary, rto_base)
    now_ms = sk.net.clock.now_us() // 1000
    return now_ms - start_ts - timeout_ms >= 0


def tcp_orphan_retries(sk: TcpSock, alive: bool) -> int:
    """Retries for an orphaned socket (``tcp_orphan_retries``): sysctl 0 means 8 while alive."""
    retries = sk.net.sysctl.tcp_orphan_retries
    if sk.sk_err_soft and not alive:
        retries = 0
    if retries == 0 and alive:
        retries = 8
    return retries


def tcp_out_of_resources(sk: TcpSock, do_reset: bool) -> bool:
    """Kill an orphan when orphans exceed tcp_max_orphans (``tcp_out_of_resources``)."""
    net = sk.net
    if net.tcp_orphan_count > net.sysctl.tcp_max_orphans:
        from .output import tcp_send_active_reset
        from .tcp import tcp_done

        if do_reset:
            tcp_send_active_reset(sk)
        tcp_done(sk)
        net.mib["TcpExtTCPAbortOnMemory"] += 1
        return True
    return False


def tcp_write_err(sk: TcpSock) -> None:
    """Give up: report ETIMEDOUT (or the soft error an ICMP left) and close (``tcp_write_err``)."""
    from .tcp import tcp_done_with_error

    tcp_done_with_error(sk, sk.sk_err_soft or ETIMEDOUT)
    sk.net.mib["TcpExtTCPAbortOnTimeout"] += 1


def tcp_write_timeout(sk: TcpSock) -> bool:
    """Decide whether retransmission has failed (``tcp_write_timeout``); True if the socket died."""
    net = sk.net
    sc = net.sysctl
    expired = False
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
        retry_until = sk.icsk_syn_retries or sc.tcp_syn_retries
        max_retransmits = retry_until
        if sk.state == S.TCP_SYN_SENT:
            max_retransmits += getattr(sc, "tcp_syn_linear_timeouts", 0)
        expired = sk.icsk_retransmits >= max_retransmits
    else:
        if retransmits_timed_out(sk, sc.tcp_retries1, 0):
            if sc.tcp_mtu_probing:
                from .mtu_probe import tcp_mtu_probing

                tcp_mtu_probing(sk)                # black hole detection
            # __dst_negative_advice: Linux counts nothing (there is no route cache here to
            # reset); the socket remembers that the advice was given.
            sk.pending_events |= 1
        retry_until = sc.tcp_retries2
        if sk.dead:
            alive = sk.icsk_rto < TCP_RTO_MAX
            retry_until = tcp_orphan_retries(sk, alive)
            do_reset = alive or not retransmits_timed_out(sk, retry_until, 0)
            if tcp_out_of_resources(sk, do_reset):
                return True
    if not expired:
        expired = retransmits_timed_out(sk, retry_until, sk.icsk_user_timeout)
    if sk.tfo is not None:
        from .fastopen import tcp_fastopen_active_detect_blackhole

        tcp_fastopen_active_detect_blackhole(sk, expired)
    if expired:
        tcp_write_err(sk)
        return True
    # sk_rethink_txhash (net.core.txrehash=1): every RTO that does not give up picks a new
    # flow hash and counts it (nstat's odd spelling; 10 for a failed connect() on Linux 6.18)
    net.mib["TcpExtTcpTimeoutRehash"] += 1
    return False


def tcp_rtx_probe0_timed_out(sk: TcpSock, rtx_delta: int) -> bool:
    """Give up an RTO-driven zero-window probe? (``tcp_rtx_probe0_timed_out``, Linux 6.6+).

    ``rtx_delta``: ms since the first retransmission (else the head's last send). Dead when
    the peer was silent for TCP_RTO_MAX*2 = 240 s (from the expiring timer's deadline to
    rcv_tstamp) *and* we have retransmitted that long; TCP_USER_TIMEOUT lowers that bound
    and, once rtx_delta exceeds it, kills regardless of ACKs.
    """
    user_timeout = sk.icsk_user_timeout
    timeout = (TCP_RTO_MAX * 2) // USEC_PER_JIFFY            # jiffies
    if user_timeout:
        if rtx_delta > user_timeout:
            return True
        timeout = min(timeout, user_timeout * HZ // 1000)    # msecs_to_jiffies
    rcv_delta = sk.icsk_timeout // USEC_PER_JIFFY - sk.rcv_tstamp // USEC_PER_JIFFY
    if rcv_delta <= timeout:
        return False
    return rtx_delta * HZ // 1000 > timeout


def tcp_retransmit_timer(sk: TcpSock) -> None:
    """The RTO fired: retransmit the head, back off, maybe give up (``tcp_retransmit_timer``)."""
    from .input import tcp_enter_loss
    from .output import tcp_reset_xmit_timer, tcp_retransmit_skb

    net = sk.net
    tfo = sk.tfo
    if tfo is not None and tfo.fastopen_rsk is not None:
        # a Fast Open child: only its SYN-ACK is retransmitted until the handshake completes
        from .fastopen import tcp_fastopen_synack_timer

        tcp_fastopen_synack_timer(sk, tfo.fastopen_rsk)
        return
    if not sk.packets_out or not sk.rtx_queue:
        return
    skb = sk.rtx_queue[0]
    if (not sk.snd_wnd and not sk.dead
            and sk.state not in (S.TCP_SYN_SENT, S.TCP_SYN_RECV)):
        # the receiver shrank its window to zero: our retransmits are window probes, which
        # die only when both the peer and our retransmissions have been silent too long
        rtx_delta = net.clock.now_us() // 1000 - (sk.retrans_stamp or skb.tstamp // 1000)
        if tcp_rtx_probe0_timed_out(sk, rtx_delta):
            tcp_write_err(sk)
            return
        tcp_enter_loss(sk)
        tcp_retransmit_skb(sk, skb)
    else:
        net.mib["TcpExtTCPTimeouts"] += 1
        if tcp_write_timeout(sk):
            return
        tcp_enter_loss(sk)
        sk.icsk_retransmits += 1
        sk.total_rto += 1
        if tcp_retransmit_skb(sk, sk.rtx_queue[0]) > 0:
            tcp_reset_xmit_timer(sk, ICSK_TIME_RETRANS, TCP_RESOURCE_PROBE_INTERVAL)
            return
    # out_reset_timer: exponential backoff (linear for the first SYN retries if configured)
    sc = net.sysctl
    if (sk.state == S.TCP_ESTABLISHED and (sk.thin_lto or sc.tcp_thin_linear_timeouts)
            and sk.packets_out < 4 and sk.icsk_retransmits <= S.TCP_THIN_LINEAR_RETRIES):
        from .rtt import __tcp_set_rto

        sk.icsk_backoff = 0
        sk.icsk_rto = min(max(__tcp_set_rto(sk), TCP_RTO_MIN), TCP_RTO_MAX)
    elif sk.state != S.TCP_SYN_SENT or sk.total_rto > getattr(sc, "tcp_syn_linear_timeouts", 0):
        sk.icsk_backoff += 1
        sk.icsk_rto = min(sk.icsk_rto << 1, TCP_RTO_MAX)
    from .output import tcp_clamp_rto_to_user_timeout

    tcp_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tcp_clamp_rto_to_user_timeout(sk))


def tcp_probe_timer(sk: TcpSock) -> None:
    """Zero-window probe timer (``tcp_probe_timer``, Linux 6.6+): unanswered probes give up
    after tcp_retries2 (orphans: tcp_orphan_retries); TCP_USER_TIMEOUT counts from the first
    probe (icsk_probes_tstamp) whether or not the peer answers. Any ACK zeroes probes_out."""
    from .output import tcp_send_probe0

    if sk.packets_out or not sk.write_queue:
        sk.icsk_probes_out = 0
        sk.icsk_probes_tstamp = 0
        return
    now_ms = sk.net.clock.now_us() // 1000
    if not sk.icsk_probes_tstamp:
        sk.icsk_probes_tstamp = now_ms
    elif sk.icsk_user_timeout and now_ms - sk.icsk_probes_tstamp >= sk.icsk_user_timeout:
        tcp_write_err(sk)
        return
    max_probes = sk.net.sysctl.tcp_retries2
    if sk.dead:
        alive = min(sk.icsk_rto << sk.icsk_backoff, TCP_RTO_MAX) < TCP_RTO_MAX
        max_probes = tcp_orphan_retries(sk, alive)
        if not alive and sk.icsk_backoff >= max_probes:
            tcp_write_err(sk)
            return
        if tcp_out_of_resources(sk, True):
            return
    if sk.icsk_probes_out >= max_probes:
        tcp_write_err(sk)
    else:
        tcp_send_probe0(sk)


def tcp_write_timer(sk: TcpSock) -> None:
    """Handler of the one transmit-side timer, by icsk_pending (``tcp_write_timer_handler``)."""
    if sk.state in (S.TCP_CLOSE, S.TCP_LISTEN) or not sk.icsk_pending:
        return
    tp = sk.net.trace.timer
    event = sk.icsk_pending
    sk.icsk_pending = 0
    if tp.subs:
        from .output import XMIT_TIMER_NAMES

        tp.emit(sk, XMIT_TIMER_NAMES.get(event, "probe0"), "expire", sk.net.clock.now_us())
    if event == ICSK_TIME_RETRANS:
        tcp_retransmit_timer(sk)
    elif event == ICSK_TIME_PROBE0:
        tcp_probe_timer(sk)
    elif event == S.ICSK_TIME_LOSS_PROBE:
        from .recovery import tcp_send_loss_probe

        tcp_send_loss_probe(sk)
    elif event == S.ICSK_TIME_REO_TIMEOUT:
        from .recovery import tcp_rack_reo_timeout

        tcp_rack_reo_timeout(sk)


def tcp_delack_timer(sk: TcpSock) -> None:
    """Delayed ACK timer (``tcp_delack_timer_handler``): send it, adapt ato, leave pingpong."""
    from .output import tcp_send_ack

    if sk.state in (S.TCP_CLOSE, S.TCP_LISTEN) or not (sk.ack_pending & ICSK_ACK_TIMER):
        return
    sk.ack_pending &= ~ICSK_ACK_TIMER
    if sk.ack_pending & 1:     # ICSK_ACK_SCHED
        if not sk.in_pingpong_mode():
            sk.ack_ato = min(sk.ack_ato << 1, sk.icsk_rto)
        else:
            sk.ack_pingpong = 0
            sk.ack_ato = TCP_ATO_MIN
        tp = sk.net.trace.timer
        if tp.subs:
            tp.emit(sk, "delack", "expire", sk.net.clock.now_us())
        tcp_send_ack(sk)
        sk.net.mib["TcpExtDelayedACKs"] += 1


def inet_csk_reset_keepalive_timer(sk: TcpSock, when: int) -> None:
    sk.keepalive_timer.mod(sk.net.clock.now_us() + when)


def inet_csk_delete_keepalive_timer(sk: TcpSock) -> None:
    sk.keepalive_timer.cancel()


def keepalive_time_elapsed(sk: TcpSock) -> int:
    """Idle time: since the last segment received or ACK seen (``keepalive_time_elapsed``)."""
    now = sk.net.clock.now_us()
    return min(now - sk.ack_lrcvtime, now - sk.rcv_tstamp)


def tcp_set_keepalive(sk: TcpSock, val: bool) -> None:
    """SO_KEEPALIVE on/off arms or stops the timer (``tcp_set_keepalive``)."""
    if sk.state in (S.TCP_CLOSE, S.TCP_LISTEN):
        return
    if val and not sk.keepopen:
        inet_csk_reset_keepalive_timer(sk, sk.keepalive_time_when())
    elif not val:
        inet_csk_delete_keepalive_timer(sk)


def tcp_keepalive_timer(sk: TcpSock) -> None:
    """Keepalive probes, and the FIN_WAIT2 timeout of orphans (``tcp_keepalive_timer``)."""
    from .minisocks import tcp_time_wait
    from .output import tcp_send_active_reset, tcp_write_wakeup
    from .tcp import tcp_done

    net = sk.net
    if sk.state == S.TCP_LISTEN:
        return
    tp = net.trace.timer
    if tp.subs:
        tp.emit(sk, "keepalive", "expire", net.clock.now_us())
    if sk.state == S.TCP_FIN_WAIT2 and sk.dead:
        if sk.linger2 >= 0:
            tmo = sk.tcp_fin_time() - TCP_TIMEWAIT_LEN
            if tmo > 0:
                tcp_time_wait(sk, S.TCP_FIN_WAIT2, tmo)
                return
        tcp_send_active_reset(sk)
        tcp_done(sk)
        return
    if not sk.keepopen or sk.state in (S.TCP_CLOSE, S.TCP_SYN_SENT):
        return
    elapsed = sk.keepalive_time_when()
    if sk.packets_out or sk.write_queue:
        inet_csk_reset_keepalive_timer(sk, elapsed)
        return
    elapsed = keepalive_time_elapsed(sk)
    if elapsed >= sk.keepalive_time_when():
        user_timeout = sk.icsk_user_timeout
        if ((user_timeout and elapsed >= user_timeout * 1000 and sk.icsk_probes_out > 0)
                or (not user_timeout and sk.icsk_probes_out >= sk.keepalive_probes_n())):
            tcp_send_active_reset(sk)
            tcp_write_err(sk)
            return
        if tcp_write_wakeup(sk, "TcpExtTCPKeepAlive") <= 0:
            sk.icsk_probes_out += 1
            elapsed = sk.keepalive_intvl_when()
        else:
            elapsed = TCP_RESOURCE_PROBE_INTERVAL
    else:
        elapsed = sk.keepalive_time_when() - elapsed
    inet_csk_reset_keepalive_timer(sk, elapsed)


__all__ = ["tcp_write_timer", "tcp_delack_timer", "tcp_keepalive_timer", "tcp_write_timeout",
           "tcp_orphan_retries", "tcp_model_timeout", "retransmits_timed_out", "TCP_CA_Loss"]
