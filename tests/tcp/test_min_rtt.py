"""min_rtt as Linux keeps it: the windowed min filter of lib/win_minmax.c over tcp_min_rtt_wlen
seconds (``tcp_update_rtt_min``, jiffies time base), skipping samples of likely delayed ACKs.

Worlds are two hosts on a 5 ms one-way link (RTT 10 ms); the path delay is then raised to
20 ms one way (RTT 40 ms) mid-connection.
"""

from __future__ import annotations

from tcpdive.tcp.minmax import Minmax
from tcpdive.tcp.sockopt import tcp_get_info

from .helpers import Net


def test_minmax_running_min_expires_best_and_promotes_2nd_and_3rd():
    m = Minmax(0, 100)                               # minmax_reset at t=0
    w = 100
    assert m.running_min(w, 10, 150) == 100          # worse, before a quarter window: ignored
    assert (m.t1, m.v1) == (0, 100)
    assert m.running_min(w, 30, 150) == 100          # past a quarter: 2nd (and 3rd) choice
    assert (m.t1, m.v1, m.t2, m.v2) == (30, 150, 30, 150)
    assert m.running_min(w, 60, 200) == 100          # past half: a 3rd choice
    assert (m.t2, m.v2) == (60, 200)
    assert m.running_min(w, 100, 300) == 100         # dt == win: still inside
    # dt 101 > win: the best (100 @ 0) expires, 2nd and 3rd move up, the new sample is 3rd
    assert m.running_min(w, 101, 300) == 150
    assert (m.t0, m.v0, m.t1, m.v1, m.t2, m.v2) == (30, 150, 60, 200, 101, 300)
    # 150 @ 30 expires too (131 - 30 > 100): 200 @ 60 is the minimum now
    assert m.running_min(w, 131, 300) == 200
    assert (m.t0, m.v0) == (60, 200)
    # nothing at all inside the window (232 - 131 > 100): reset to the new sample
    assert m.running_min(w, 232, 400) == 400
    assert (m.t0, m.v0, m.t1, m.v1, m.t2, m.v2) == (232, 400, 232, 400, 232, 400)
    # a new best (<=) always resets
    assert m.running_min(w, 233, 400) == 400 and m.t2 == 233
    assert m.running_min(w, 240, 50) == 50 and (m.t1, m.v1) == (240, 50)


def test_minmax_second_expiry_in_one_update():
    m = Minmax(0, 10)
    m.running_min(100, 30, 20)                       # 2nd/3rd = 20 @ 30
    assert (m.t1, m.t2) == (30, 30)
    # at 131 both 10 @ 0 and 20 @ 30 are out of the window: the new sample takes over
    assert m.running_min(100, 131, 30) == 30
    assert (m.t0, m.v0) == (131, 30)


def _bulk(n: Net, cs, ss, at: float) -> None:
    """4000 bytes (3 segments, ACKed two at a time: no delayed-ACK suspicion) at ``at`` s."""
    n.w.run_until(at)
    cs.sendall(b"x" * 4000)
    n.run_for(0.5)
    try:
        while ss.recv(65536):
            pass
    except BlockingIOError:
        pass


def _rtt_rises(wlen: int | None = None):
    n = Net(delay=0.005)
    if wlen is not None:
        n.c.sysctl_set("net.ipv4.tcp_min_rtt_wlen", wlen)
    cs, ss, ls = n.connect_pair()
    ss.setblocking(False)
    assert cs.sk.min_rtt_us == 10_000                # the handshake's sample (SYN -> SYN-ACK)
    for t in (1.0, 2.0, 3.0, 4.0):
        _bulk(n, cs, ss, t)                          # last 10 ms sample at 4.010 s (jiffy 4010)
    assert cs.sk.min_rtt_us == 10_000
    n.link.ab.delay = 0.020
    n.link.ba.delay = 0.020
    return n, cs, ss


def test_min_rtt_follows_a_higher_path_rtt_only_after_tcp_min_rtt_wlen():
    n, cs, ss = _rtt_rises()
    _bulk(n, cs, ss, 5.0)
    assert cs.sk.srtt_us >> 3 > 15_000             # srtt moves at once ...
    assert cs.sk.min_rtt_us == 10_000                # ... min_rtt does not
    _bulk(n, cs, ss, 150.0)
    _bulk(n, cs, ss, 303.0)                          # sample at 303.040: 299.03 s after 4.010
    assert cs.sk.min_rtt_us == 10_000
    assert tcp_get_info(cs.sk).tcpi_min_rtt == 10_000
    _bulk(n, cs, ss, 304.0)                          # 304.040 - 4.010 > 300 s: expired
    assert cs.sk.min_rtt_us == 40_000
    assert tcp_get_info(cs.sk).tcpi_min_rtt == 40_000


def test_min_rtt_wlen_short_window():
    n, cs, ss = _rtt_rises(10)
    _bulk(n, cs, ss, 14.0)                           # 14.040 - 4.010 = 10.03 s > 10 s
    assert cs.sk.min_rtt_us == 40_000


def test_min_rtt_wlen_zero_keeps_only_the_latest_jiffy():
    # window 0 jiffies: any sample from a later jiffy resets the filter (minmax_running_min:
    # t - s[2].t > 0), so min_rtt is the latest sample; a lower one comes back at once too
    n, cs, ss = _rtt_rises(0)
    _bulk(n, cs, ss, 5.0)
    assert cs.sk.min_rtt_us == 40_000
    n.link.ab.delay = 0.005
    n.link.ba.delay = 0.005
    _bulk(n, cs, ss, 6.0)
    assert cs.sk.min_rtt_us == 10_000


def test_min_rtt_skips_lone_runt_samples_of_maybe_delayed_acks():
    # FLAG_ACK_MAYBE_DELAYED (tcp_clean_rtx_queue): one packet, less than an MSS, fully acked,
    # no SACK/ECE/DSACK, nothing else delivered since it was sent. Its sample is skipped when
    # it is above the current min, even with tcp_min_rtt_wlen=0; srtt still takes it.
    n, cs, ss = _rtt_rises(0)
    for t in (5.0, 6.0, 7.0):
        n.w.run_until(t)
        cs.send(b"x" * 100)
        n.run_for(0.5)
    assert cs.sk.srtt_us >> 3 > 15_000
    assert cs.sk.min_rtt_us == 10_000
    _bulk(n, cs, ss, 8.0)                            # two-segment ACKs are not suspected
    assert cs.sk.min_rtt_us == 40_000
    # a lone runt *below* the current min is taken (the skip is only for rtt_us > min)
    n.link.ab.delay = 0.005
    n.link.ba.delay = 0.005
    n.w.run_until(9.0)
    cs.send(b"x" * 100)
    n.run_for(0.5)
    assert cs.sk.min_rtt_us == 10_000


def test_filter_is_made_only_when_a_second_sample_needs_it():
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    # one sample (the handshake's): the filter is just its jiffy, min_rtt_us its value
    assert (cs.sk.rtt_min, cs.sk.min_rtt_us) == (10, 10_000)
    assert n.s.socket().sk.rtt_min is None           # no sample, no filter
    n.link.ab.delay = 0.020
    ss.setblocking(False)
    _bulk(n, cs, ss, 1.0)                            # 25 ms samples, within a quarter window
    m = cs.sk.rtt_min
    assert isinstance(m, Minmax) and not hasattr(m, "__dict__")
    assert (m.t0, m.v0, m.t1, m.v1, m.t2, m.v2) == (10, 10_000, 10, 10_000, 10, 10_000)
    assert cs.sk.min_rtt_us == 10_000
