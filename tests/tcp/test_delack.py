"""Delayed ACK bounds (issue #3): TCP_DELACK_MIN 40 ms, tcp_delack_max 199 ms, ATO inflation.

Linux 6.18, all in jiffies (HZ=1000 here, so 1 jiffy = 1 ms):

- ``tcp_event_data_recv``: the first data segment starts quick-ACK mode and ato = TCP_ATO_MIN
  (40 ms); later segments adapt ato to the inter-arrival gap m (m <= 20 ms: ato/2 + 20 ms;
  m < ato: ato/2 + m, at most the RTO; m > RTO: quick-ACK mode again).
- ``tcp_send_delayed_ack``: if ato > TCP_DELACK_MIN it is bounded by max_ato = HZ/2 (500 ms),
  or TCP_DELACK_MAX (200 ms) in pingpong mode or when ICSK_ACK_PUSHED is set, and by
  max(srtt, TCP_DELACK_MIN) (``usecs_to_jiffies``, rounded up) when an RTT is known; then by
  ``tcp_delack_max`` in every case: ``icsk_delack_max`` (TCP_DELACK_MAX unless a BPF program
  changed it) and, since Linux 6.11, one jiffy less than ``tcp_rto_min`` (the route's
  rto_min, else 200 ms): 199 ms by default.
- ``tcp_delack_timer_handler``: when the timer sends the ACK, outside pingpong mode "Delayed ACK
  missed: inflate ATO": ato = min(ato << 1, RTO); in pingpong mode it leaves pingpong and
  "deflates" ato to TCP_ATO_MIN. Each such ACK counts TcpExtDelayedACKs.

So on a path whose RTT is at least 200 ms, a receiver that gets one small segment at a time
ACKs after 40, 80, 160, then 199 ms every time: the tcp_delack_max maximum, while ato itself
keeps doubling up to the RTO.
"""

from __future__ import annotations

from tcpdive.socket import IPPROTO_TCP
from tcpdive.tcp import sock as S
from tcpdive.tcp.metrics import sk_dst_set
from tcpdive.tcp.output import tcp_send_delayed_ack

from .helpers import Net

TCP_NODELAY = 1


def r3(x: float) -> float:
    return round(x, 3)


def _ack_delays(n: Net, delay: float) -> list[float]:
    """For each client data segment: ms from its arrival at the server to the server's ACK."""
    out = []
    for d in (s for s in n.segs if s.host == "client" and s.len):
        a = next(a for a in n.segs
                 if a.host == "server" and a.t > d.t and a.ack >= d.seq + d.len)
        out.append(r3((a.t - d.t - delay) * 1000))
    return out


def _trickle(n: Net, cs, count: int, gap: float, size: int = 100) -> None:
    for _ in range(count):
        cs.send(b"x" * size)
        n.run_for(gap)


def _pair(delay: float):
    n = Net(delay=delay)
    cs, ss, ls = n.connect_pair()
    cs.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    ss.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    n.cap.clear()
    return n, cs, ss


def test_delack_inflates_to_the_200ms_max_on_a_300ms_rtt_path():
    """One 100-byte segment every 600 ms, RTT 300 ms, the server never reads (so
    tcp_cleanup_rbuf sends nothing): 16 quick ACKs, then the delayed-ACK timer fires for every
    segment, 40, 80, 160 ms, then tcp_delack_max = 199 ms for ever."""
    n, cs, ss = _pair(delay=0.15)
    sk = ss.sk
    assert sk.srtt_us >> 3 == 300_000 and sk.icsk_rto == 900_000    # 300 ms + max(2 * 300, 200)
    _trickle(n, cs, 24, gap=0.6)
    delays = _ack_delays(n, 0.15)
    assert delays == [0.0] * 16 + [40.0, 80.0, 160.0] + [199.0] * 5
    # ato kept doubling behind the 199 ms cap: 40 80 160 320 640, then min(1280, RTO = 900)
    assert sk.ack_ato == sk.icsk_rto == 900_000
    assert n.s.mib["TcpExtDelayedACKs"] == 8
    assert not sk.in_pingpong_mode()


def test_delack_bounded_by_srtt_below_200ms():
    """RTT 100 ms: after 40 and 80 ms the bound is max(srtt, 40 ms) = 100 ms, not 200 ms; ato
    itself still climbs to the RTO (100 + 200 = 300 ms)."""
    n, cs, ss = _pair(delay=0.05)
    sk = ss.sk
    assert sk.srtt_us >> 3 == 100_000 and sk.icsk_rto == 300_000
    _trickle(n, cs, 22, gap=0.3)
    assert _ack_delays(n, 0.05) == [0.0] * 16 + [40.0, 80.0] + [100.0] * 4
    assert sk.ack_ato == 300_000


def test_pingpong_delack_is_capped_at_200ms_then_leaves_pingpong_with_ato_40ms():
    """With ato inflated to 900 ms, an immediate response puts the server in pingpong mode
    (tcp_event_data_sent: sent within ato of the last segment received). The next segment it
    does not answer is ACKed by the timer after tcp_delack_max (199 ms; the pingpong bound
    TCP_DELACK_MAX is 200 ms; the 300 ms srtt does not lower it); the timer then leaves pingpong mode and sets ato back to
    TCP_ATO_MIN, so the segment after that is ACKed after 40 ms."""
    n, cs, ss = _pair(delay=0.15)
    sk = ss.sk
    _trickle(n, cs, 22, gap=0.6)
    assert sk.ack_ato == 900_000
    ss.recv(100_000)
    n.run_for(0.05)
    # a request answered at once: pingpong
    cs.send(b"GET")
    n.run_for(0.151)
    assert ss.recv(100) == b"GET"
    ss.send(b"RESPONSE")
    assert sk.in_pingpong_mode() and sk.ack_pingpong == S.TCP_PINGPONG_THRESH
    n.run_for(0.6)
    assert cs.recv(100) == b"RESPONSE"
    before = n.s.mib["TcpExtDelayedACKs"]
    n.cap.clear()
    cs.send(b"y" * 100)                           # not answered
    n.run_for(0.6)
    assert _ack_delays(n, 0.15) == [199.0]
    assert not sk.in_pingpong_mode() and sk.ack_ato == S.TCP_ATO_MIN     # deflated
    n.cap.clear()
    cs.send(b"z" * 100)
    n.run_for(0.6)
    assert _ack_delays(n, 0.15) == [40.0]
    assert n.s.mib["TcpExtDelayedACKs"] == before + 2


def test_tcp_send_delayed_ack_bounds():
    """The arithmetic of tcp_send_delayed_ack on one socket, branch by branch."""
    n, cs, ss = _pair(delay=0.15)
    sk = ss.sk
    now = n.s.clock.now_us()

    def timeout(ato: int, srtt_us: int, pushed: bool = False, pingpong: bool = False,
                delack_max: int = S.TCP_DELACK_MAX) -> int:
        sk.ack_ato = ato
        sk.srtt_us = srtt_us << 3
        sk.ack_pending = S.ICSK_ACK_PUSHED if pushed else 0
        sk.ack_pingpong = S.TCP_PINGPONG_THRESH if pingpong else 0
        sk.icsk_delack_max = delack_max
        tcp_send_delayed_ack(sk)
        sk.delack_timer.cancel()
        return sk.ack_timeout - now

    assert S.TCP_DELACK_MAX == 200_000 and S.TCP_DELACK_MIN == S.TCP_ATO_MIN == 40_000
    assert timeout(40_000, 300_000) == 40_000                    # ato <= TCP_DELACK_MIN: as is
    assert timeout(900_000, 300_000) == 199_000                  # tcp_delack_max, always
    assert timeout(900_000, 300_000, pingpong=True) == 199_000   # (TCP_DELACK_MAX is 200)
    assert timeout(900_000, 300_000, pushed=True) == 199_000
    assert timeout(900_000, 100_300, pushed=True) == 101_000     # srtt, rounded up to a jiffy
    assert timeout(900_000, 10_000, pushed=True) == 40_000       # max(srtt, TCP_DELACK_MIN)
    # with icsk_delack_max raised (BPF TCP_BPF_DELACK_MAX) the RTO floor still caps it
    assert timeout(900_000, 0, delack_max=1_000_000) == 199_000
    # and with tcp_rto_min raised too (here the route's rto_min 1 s) the other bounds show:
    # HZ/2 when neither pingpong nor pushed and no RTT known, else the srtt
    n.s.change_route("10.0.0.1", 32, "eth0", rto_min=1.0)
    sk_dst_set(sk, n.s.fib_lookup(sk.daddr))       # as the next transmission would
    assert timeout(900_000, 0, delack_max=1_000_000) == 500_000
    assert timeout(900_000, 300_000, delack_max=1_000_000) == 300_000
    assert timeout(900_000, 0, pingpong=True, delack_max=1_000_000) == 200_000
