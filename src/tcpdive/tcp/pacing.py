"""TCP internal pacing (tcp_output.c: ``tcp_needs_internal_pacing``, ``tcp_pacing_check``,
``tcp_update_skb_after_send``, ``tcp_pace_kick``), for sockets whose ``sk_pacing_status`` is
SK_PACING_NEEDED: BBR asks for it, and so does SO_MAX_PACING_RATE.

Linux gives every skb an earliest departure time. ``tcp_wstamp_ns`` is the departure time of
the next one: each sent skb pushes it ``len / sk_pacing_rate`` further (less up to half of that
if the sender was late: "OS jitter" credit), and ``tcp_write_xmit`` stops while it lies in the
future, arming a per-socket high-resolution timer that resumes transmission at that time. Without
an fq qdisc (tcpdive has none) this is how a BBR sender's segments get spaced on the wire.

tcpdive keeps one skb per MSS; a Linux TSO skb of several segments is paced as the sum of its
segments (the jitter credit is taken on the first of them). The timer is a KTimer on the
microsecond clock, armed at the departure time rounded up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ktime import KTimer
from .sock import SK_MAX_PACING_RATE, SK_PACING_NEEDED, SK_PACING_NONE

if TYPE_CHECKING:
    from .sock import TcpSock

NSEC_PER_SEC = 1_000_000_000

# states in which tcp_tsq_write sends (TCPF_ESTABLISHED | FIN_WAIT1 | CLOSING | CLOSE_WAIT |
# LAST_ACK)
_TSQ_STATES = frozenset((1, 4, 11, 8, 9))


def tcp_needs_internal_pacing(sk: TcpSock) -> bool:
    """``tcp_needs_internal_pacing``: asked for pacing, and no fq qdisc does it."""
    return sk.sk_pacing_status == SK_PACING_NEEDED


def tcp_update_skb_after_send(sk: TcpSock, nbytes: int, now_us: int) -> None:
    """Advance the next departure time by this skb's length at the pacing rate; the first 10
    data segments are not paced, as sch_fq does not (``tcp_update_skb_after_send``, with the
    ``tcp_wstamp_ns = max(tcp_wstamp_ns, tcp_clock_cache)`` of ``__tcp_transmit_skb``)."""
    prior = sk.tcp_wstamp_ns
    now_ns = now_us * 1000
    w = prior if prior > now_ns else now_ns
    rate = sk.sk_pacing_rate
    if rate != SK_MAX_PACING_RATE and rate and sk.data_segs_out >= 10:
        len_ns = nbytes * NSEC_PER_SEC // rate
        credit = w - prior
        len_ns -= min(len_ns // 2, credit)
        w += len_ns
    sk.tcp_wstamp_ns = w


def tcp_pacing_check(sk: TcpSock, now_us: int) -> bool:
    """Is the next departure time still ahead? Then arm the pacing timer for it (unless armed)
    and tell the caller to stop sending (``tcp_pacing_check``)."""
    w = sk.tcp_wstamp_ns
    if w <= now_us * 1000:
        return False
    t = sk.pacing_timer
    if t is None:
        t = sk.pacing_timer = KTimer(sk.net.clock, tcp_pace_kick, sk)
    if not t.pending:
        t.mod(-(-w // 1000))
    return True


def tcp_pace_kick(sk: TcpSock) -> None:
    """The pacing timer fired: resend lost segments cwnd allows, then new data
    (``tcp_pace_kick`` -> ``tcp_tsq_handler`` -> ``tcp_tsq_write``)."""
    if sk.state not in _TSQ_STATES or sk.sk_pacing_status == SK_PACING_NONE:
        return
    from .input import tcp_xmit_retransmit_queue
    from .output import tcp_current_mss, tcp_write_xmit

    if sk.lost_out > sk.retrans_out and sk.snd_cwnd > sk.tcp_packets_in_flight():
        sk.tcp_mstamp = sk.net.clock.now_us()
        tcp_xmit_retransmit_queue(sk)
    if sk.write_queue:
        tcp_write_xmit(sk, tcp_current_mss(sk), sk.nonagle)


def sk_set_max_pacing_rate(sk: TcpSock, rate: int) -> None:
    """SO_MAX_PACING_RATE (``sk_setsockopt``): any cap but ~0 turns pacing on; the current rate
    is lowered to it at once."""
    if rate != SK_MAX_PACING_RATE and sk.sk_pacing_status == SK_PACING_NONE:
        sk.sk_pacing_status = SK_PACING_NEEDED
    sk.sk_max_pacing_rate = rate
    if rate < sk.sk_pacing_rate:
        sk.sk_pacing_rate = rate
