"""CUBIC + HyStart (tcp_cubic.c) against hand-computed values of the kernel's integer arithmetic.

The fake socket has ``__slots__`` listing exactly the TcpSock fields cubic may use (plus what the
package's ``tcp_is_cwnd_limited`` reads and ``lsndtime`` for CA_EVENT_TX_START), so touching any
other field fails loudly.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal, getcontext
from itertools import pairwise
from types import SimpleNamespace

import pytest

from tcpdive.tcp.cong import (
    CA_EVENT_CWND_RESTART,
    CA_EVENT_TX_START,
    available,
    tcp_ca_find,
)
from tcpdive.tcp.cong import cubic as C

INF_SSTHRESH = 0x7FFFFFFF
TCP_CA_Open, TCP_CA_Recovery, TCP_CA_Loss = 0, 3, 4


class FakeClock:
    def __init__(self, now_us: int = 0) -> None:
        self.t = now_us

    def now_us(self) -> int:
        return self.t


class FakeNet:
    __slots__ = ("clock", "sysctl", "mib")

    def __init__(self, now_us: int) -> None:
        self.clock = FakeClock(now_us)
        self.sysctl = SimpleNamespace()
        self.mib: Counter = Counter()


class FakeSock:
    __slots__ = (
        "snd_cwnd", "snd_ssthresh", "snd_cwnd_cnt", "prior_cwnd", "srtt_us", "min_rtt_us",
        "snd_nxt", "snd_una", "icsk_ca_state", "net", "ca_priv",
        "is_cwnd_limited", "max_packets_out",   # read by tcp_is_cwnd_limited
        "lsndtime",                             # read by CA_EVENT_TX_START (us)
    )

    def __init__(self, now_us: int = 10_000_000, cwnd: int = 10,
                 ssthresh: int = INF_SSTHRESH) -> None:
        self.net = FakeNet(now_us)
        self.snd_cwnd = cwnd
        self.snd_ssthresh = ssthresh
        self.snd_cwnd_cnt = 0
        self.prior_cwnd = 0
        self.srtt_us = 0
        self.min_rtt_us = 0
        self.snd_nxt = 1000
        self.snd_una = 1000
        self.icsk_ca_state = TCP_CA_Open
        self.ca_priv = None
        self.is_cwnd_limited = True
        self.max_packets_out = 0
        self.lsndtime = 0

    @property
    def now(self) -> int:
        return self.net.clock.t

    @now.setter
    def now(self, us: int) -> None:
        self.net.clock.t = us


class ClampedSock(FakeSock):
    __slots__ = ("snd_cwnd_clamp",)


def make(**kw) -> tuple[FakeSock, C.BicTcp]:
    sk = FakeSock(**kw)
    C.Cubic().init(sk)
    return sk, sk.ca_priv


# ---- parameters and registration ------------------------------------------------------------------

def test_precomputed_scales():
    # beta_scale = 8*(1024+717)/3/(1024-717) = 13928/3 = 4642 (int), /307 = 15
    assert C.beta_scale == 15
    # cube_rtt_scale = bic_scale*10 = 410; cube_factor = 2^40 / 410
    assert C.cube_rtt_scale == 410
    assert C.cube_factor == 2681735677
    assert (C.beta, C.bic_scale, C.fast_convergence, C.tcp_friendliness) == (717, 41, 1, 1)
    assert (C.hystart, C.hystart_detect, C.hystart_low_window, C.hystart_ack_delta_us) == (
        1, 3, 16, 2000)


def test_registered_and_per_socket_state_is_slotted():
    assert "cubic" in available()
    assert tcp_ca_find("cubic") is C.Cubic
    sk, ca = make()
    assert isinstance(ca, C.BicTcp)
    assert not hasattr(ca, "__dict__")
    # init starts a HyStart round at snd_nxt
    assert (ca.round_start, ca.last_ack, ca.end_seq) == (sk.now, sk.now, 1000)
    assert ca.curr_rtt == 0xFFFFFFFF and ca.sample_cnt == 0 and ca.found == 0
    assert ca.epoch_start == 0 and ca.last_max_cwnd == 0


def test_initial_ssthresh_only_without_hystart(monkeypatch):
    monkeypatch.setattr(C, "initial_ssthresh", 50)
    sk, _ = make()
    assert sk.snd_ssthresh == INF_SSTHRESH
    monkeypatch.setattr(C, "hystart", 0)
    sk, ca = make()
    assert sk.snd_ssthresh == 50
    assert ca.end_seq == 0          # no HyStart round was started


# ---- cubic_root --------------------------------------------------------------------------------

@pytest.mark.parametrize("a, root", [
    (0, 0), (1, 1), (7, 2), (8, 2), (26, 3), (27, 3), (63, 4),
    # 64: 7 bits -> b=(7*84>>8)-1=1, v[64>>3]=v[8]=123, x=(133<<1)>>6=4,
    #     x=2*4+64//(4*3)=13, 13*341>>10=4
    (64, 4),
    # 1000: b=2, v[1000>>6]=v[15]=156, x=(166<<2)>>6=10, x=20+1000//90=31, 31*341>>10=10
    (1000, 10),
    # 10^6: b=5, v[30]=197, x=(207<<5)>>6=103, x=206+10^6//10506=301, 301*341>>10=100
    (10**6, 100),
    # K for W_max-cwnd=30: a=2681735677*30, 37 bits -> b=11, v[a>>33]=v[9]=129,
    # x=(139<<11)>>6=4448, x=8896+a//(4448*4447)=8896+4067=12963, 12963*341>>10=4316
    (2681735677 * 30, 4316),
    (2**63, 2098142),
    (2**64 - 1, 2641850),
])
def test_cubic_root_table(a, root):
    assert C.cubic_root(a) == root


def _cbrt(a: int) -> Decimal:
    getcontext().prec = 40
    return Decimal(a) ** (Decimal(1) / 3)


def test_cubic_root_error_small_inputs():
    # below 64 the answer comes straight from the table, the cube root rounded (within 0.53)
    for a in range(64):
        assert abs(Decimal(C.cubic_root(a)) - _cbrt(a)) < Decimal("0.53"), a


def test_cubic_root_error_in_operating_range():
    # bictcp_update feeds cube_factor * (W_max - cwnd) >= 2^31; the kernel documents an average
    # error of ~0.195% for the table + one Newton step; the worst case stays under that
    rng = random.Random(6_18)
    samples = [rng.getrandbits(rng.randint(31, 64)) | (1 << 30) for _ in range(20000)]
    samples += [C.cube_factor * d for d in range(1, 2000)]
    worst = Decimal(0)
    total = Decimal(0)
    for a in samples:
        exact = _cbrt(a)
        err = abs(Decimal(C.cubic_root(a)) - exact) / exact
        worst = max(worst, err)
        total += err
    assert worst < Decimal("0.00195")
    assert total / len(samples) < Decimal("0.001")


# ---- ssthresh (multiplicative decrease, fast convergence) -----------------------------------

def test_recalc_ssthresh_and_fast_convergence():
    sk, ca = make(cwnd=100)
    ca.epoch_start = 1234
    # first loss: W_max = cwnd; ssthresh = 100*717/1024 = 70
    assert C.Cubic().ssthresh(sk) == 70
    assert ca.last_max_cwnd == 100 and ca.epoch_start == 0
    # loss below the previous W_max: W_max = 90*(1024+717)/2048 = 156690/2048 = 76
    sk.snd_cwnd = 90
    assert C.Cubic().ssthresh(sk) == 63          # 64530/1024
    assert ca.last_max_cwnd == 76
    # loss above W_max: W_max = cwnd
    sk.snd_cwnd = 200
    assert C.Cubic().ssthresh(sk) == 140         # 143400/1024
    assert ca.last_max_cwnd == 200


def test_recalc_ssthresh_without_fast_convergence(monkeypatch):
    monkeypatch.setattr(C, "fast_convergence", 0)
    sk, ca = make(cwnd=100)
    C.cubictcp_recalc_ssthresh(sk)
    sk.snd_cwnd = 90
    assert C.cubictcp_recalc_ssthresh(sk) == 63
    assert ca.last_max_cwnd == 90


def test_recalc_ssthresh_floor_is_two():
    sk, _ = make(cwnd=2)
    assert C.cubictcp_recalc_ssthresh(sk) == 2   # 1434/1024 = 1 -> 2


# ---- bictcp_update ---------------------------------------------------------------------------

def test_bictcp_update_below_origin_known_inputs():
    ca = C.BicTcp()
    ca.last_max_cwnd = 100
    ca.delay_min = 100_000
    C.bictcp_update(ca, 70, 1, 5000)
    # new epoch: K = cubic_root(cube_factor*30) = 4316 (2^-10 s), origin = W_max
    assert (ca.epoch_start, ca.bic_K, ca.bic_origin_point) == (5000, 4316, 100)
    assert (ca.ack_cnt, ca.tcp_cwnd, ca.last_cwnd, ca.last_time) == (1, 70, 70, 5000)
    # t = (0 + 100 ms) << 10 / 1000 = 102; offs = 4214; 410*4214^3 >> 40 = 27
    # target = 100 - 27 = 73; cnt = 70 / 3 = 23
    assert ca.cnt == 23

    # same jiffy, cwnd grew: only the TCP-friendly part runs; last_cwnd is not updated
    C.bictcp_update(ca, 71, 1, 5000)
    assert (ca.cnt, ca.last_cwnd, ca.ack_cnt) == (23, 70, 2)

    # next jiffy: t = 101<<10/1000 = 103, offs = 4213, delta = 27, target 73, cnt = 71/2 = 35
    C.bictcp_update(ca, 71, 1, 5001)
    assert (ca.cnt, ca.last_cwnd, ca.last_time) == (35, 71, 5001)


def test_bictcp_update_above_origin_convex():
    ca = C.BicTcp()
    ca.last_max_cwnd = 100
    ca.delay_min = 100_000
    C.bictcp_update(ca, 100, 1, 5000)
    # at W_max: K = 0, origin = cwnd; t = 102, 410*102^3 >> 40 = 0 -> target = cwnd
    assert (ca.bic_K, ca.bic_origin_point) == (0, 100)
    assert ca.cnt == 100 * 100
    # 2 s later: t = 2100<<10/1000 = 2150, 410*2150^3 >> 40 = 3, target 103, cnt = 100/3 = 33
    C.bictcp_update(ca, 100, 1, 7000)
    assert ca.cnt == 33


def test_bictcp_update_unchanged_cwnd_rechecks_every_hz_over_32():
    ca = C.BicTcp()
    ca.last_max_cwnd = 100
    ca.delay_min = 100_000
    C.bictcp_update(ca, 100, 1, 5000)
    C.bictcp_update(ca, 100, 1, 7000)
    assert ca.cnt == 33
    # 31 jiffies later with the same cwnd: early return (only ack_cnt moves)
    C.bictcp_update(ca, 100, 1, 7031)
    assert (ca.cnt, ca.last_time, ca.ack_cnt) == (33, 7000, 3)
    # 32 jiffies: re-evaluated; t = 2132<<10/1000 = 2183, delta = 410*2183^3>>40 = 3
    C.bictcp_update(ca, 100, 1, 7032)
    assert (ca.cnt, ca.last_time) == (33, 7032)


def test_bictcp_update_no_loss_yet_grows_at_least_5_percent():
    ca = C.BicTcp()
    C.bictcp_update(ca, 20, 5, 5000)
    # W_max = 0: K = 0, origin = cwnd, target = cwnd -> cnt would be 2000; capped at 20
    assert ca.cnt == 20


def test_bictcp_update_cnt_at_least_two():
    ca = C.BicTcp()
    ca.last_max_cwnd = 1000
    ca.delay_min = 100_000
    C.bictcp_update(ca, 10, 1, 5000)
    # target far above cwnd: 10 / (target - 10) = 0 -> 2
    assert ca.cnt == 2


def test_tcp_friendly_region_caps_cnt():
    ca = C.BicTcp()
    ca.last_max_cwnd = 70
    ca.delay_min = 1000
    C.bictcp_update(ca, 70, 1, 1000)
    # K = 0, t = 1, delta = 0: target = cwnd, cnt = 100*70
    assert ca.cnt == 7000 and ca.tcp_cwnd == 70
    C.bictcp_update(ca, 70, 2239, 1010)          # within HZ/32: early return
    assert ca.ack_cnt == 2240 and ca.cnt == 7000
    C.bictcp_update(ca, 70, 0, 1032)
    # Reno emulation: one packet per (70*15)>>3 = 131 ACKed: (2240-1)//131 = 17 packets,
    # ack_cnt = 2240 - 17*131 = 13, tcp_cwnd = 87; cnt = min(7000, 70 // 17 = 4)
    assert (ca.tcp_cwnd, ca.ack_cnt, ca.cnt) == (87, 13, 4)


def test_tcp_friendliness_off(monkeypatch):
    monkeypatch.setattr(C, "tcp_friendliness", 0)
    ca = C.BicTcp()
    ca.last_max_cwnd = 70
    ca.delay_min = 1000
    C.bictcp_update(ca, 70, 1, 1000)
    C.bictcp_update(ca, 70, 2239, 1010)
    C.bictcp_update(ca, 70, 0, 1032)
    assert (ca.tcp_cwnd, ca.cnt) == (70, 7000)


# ---- cong_avoid ------------------------------------------------------------------------------

def test_cong_avoid_slow_start_then_cubic():
    sk, ca = make(cwnd=10, ssthresh=20)
    C.Cubic().cong_avoid(sk, 0, 15)
    # slow start to ssthresh uses 10 of 15; the other 5 go to bictcp_update + tcp_cong_avoid_ai:
    # no W_max -> cnt = 20; snd_cwnd_cnt = 5
    assert sk.snd_cwnd == 20 and sk.snd_cwnd_cnt == 5
    assert ca.cnt == 20 and ca.epoch_start == sk.now // 1000 and ca.ack_cnt == 5


def test_cong_avoid_slow_start_exact():
    sk, ca = make(cwnd=10)
    for _ in range(7):
        C.Cubic().cong_avoid(sk, 0, 2)
    assert sk.snd_cwnd == 24 and ca.epoch_start == 0


def test_cong_avoid_not_cwnd_limited():
    sk, _ = make(cwnd=10)
    sk.is_cwnd_limited = False
    sk.max_packets_out = 5                     # cwnd 10 >= 2*5: application limited
    C.Cubic().cong_avoid(sk, 0, 4)
    assert sk.snd_cwnd == 10


def test_cong_avoid_honours_snd_cwnd_clamp():
    sk = ClampedSock(cwnd=10)
    sk.snd_cwnd_clamp = 12
    C.Cubic().init(sk)
    C.Cubic().cong_avoid(sk, 0, 5)
    assert sk.snd_cwnd == 12
    sk.snd_ssthresh = 12
    for _ in range(100):
        C.Cubic().cong_avoid(sk, 0, 1)
    assert sk.snd_cwnd == 12


def test_cong_avoid_frozen_clock_exact_trajectory():
    sk, ca = make(cwnd=70, ssthresh=70)
    ca.last_max_cwnd = 100
    ca.delay_min = 100_000
    traj = []
    for _ in range(100):
        C.Cubic().cong_avoid(sk, 0, 1)
        traj.append(sk.snd_cwnd)
    # cnt = 23 for the whole jiffy (later calls take the friendliness-only path): one packet
    # per 23 ACKed; the emulated Reno window (1 per 131 ACKs) never catches up
    assert ca.cnt == 23
    assert traj == [70 + (i + 1) // 23 for i in range(100)]


def _run_rounds(sk: FakeSock, rtt_us: int, until_us: int) -> list[tuple[int, int]]:
    """ACK clock: each round of rtt_us delivers snd_cwnd single-packet ACKs evenly spaced."""
    t0 = sk.now
    hist = []
    while sk.now - t0 < until_us:
        n = sk.snd_cwnd
        start = sk.now
        hist.append((start - t0, n))
        for i in range(n):
            sk.now = start + rtt_us * i // n
            C.cubictcp_cong_avoid(sk, 0, 1)
        sk.now = start + rtt_us
    return hist


def _after_loss(cwnd: int, rtt_us: int) -> tuple[FakeSock, C.BicTcp]:
    sk, ca = make(cwnd=cwnd)
    ca.delay_min = rtt_us
    sk.snd_ssthresh = C.cubictcp_recalc_ssthresh(sk)
    sk.snd_cwnd = sk.snd_ssthresh
    return sk, ca


def test_wmax_recovered_at_K_concave_then_convex():
    sk, ca = _after_loss(1000, 100_000)
    assert sk.snd_cwnd == 700 and ca.last_max_cwnd == 1000
    hist = _run_rounds(sk, 100_000, 15_000_000)
    # K = cubic_root(cube_factor*300) = 9294/1024 s = 9.076 s
    assert ca.bic_K == 9294
    k_us = 9294 * 1_000_000 // 1024
    at_k = [w for t, w in hist if t <= k_us][-1]
    assert at_k == 1000                                   # W_max regained at K ...
    assert max(w for t, w in hist if t <= k_us) == 1000   # ... and not overshot before it
    assert hist[-1][1] > 1050                             # then probing beyond it
    # growth per second: shrinking while concave (before K), growing while convex (after K)
    per_s = [hist[i + 10][1] - hist[i][1] for i in range(0, len(hist) - 10, 10)]
    k_s = 9
    concave, convex = per_s[:k_s], per_s[k_s:]
    assert all(a >= b for a, b in pairwise(concave)), per_s
    assert all(a <= b for a, b in pairwise(convex)), per_s
    assert per_s[0] > 80 and per_s[k_s - 1] == 0 and per_s[-1] > 20


def test_tcp_friendly_region_at_small_rtt(monkeypatch):
    # RTT 1 ms, W_max 100: the cubic curve barely moves in 200 ms, Reno (emulated with
    # beta 0.7: 8/15 packet per RTT) is faster, so cwnd follows the emulated Reno window
    sk, ca = _after_loss(100, 1000)
    _run_rounds(sk, 1000, 200_000)
    reno = 70 + 200 * 8 / 15
    assert abs(sk.snd_cwnd - reno) < 0.05 * reno
    monkeypatch.setattr(C, "tcp_friendliness", 0)
    sk, ca = _after_loss(100, 1000)
    _run_rounds(sk, 1000, 200_000)
    assert sk.snd_cwnd < 80


# ---- cwnd_event, state, undo -----------------------------------------------------------------

def test_tx_start_shifts_epoch_by_idle_time():
    sk, ca = make()
    ca.epoch_start = 5000
    sk.lsndtime = 6_000_000          # last send at 6000 ms
    sk.now = 8_000_400               # now 8000 ms: idle 2000 jiffies
    C.Cubic().cwnd_event(sk, CA_EVENT_TX_START)
    assert ca.epoch_start == 7000


def test_tx_start_epoch_never_after_now():
    sk, ca = make()
    ca.epoch_start = 7500
    sk.lsndtime = 6_000_000
    sk.now = 8_000_000
    C.Cubic().cwnd_event(sk, CA_EVENT_TX_START)
    assert ca.epoch_start == 8000


def test_tx_start_without_epoch_or_other_event():
    sk, ca = make()
    sk.lsndtime = 6_000_000
    sk.now = 8_000_000
    C.Cubic().cwnd_event(sk, CA_EVENT_TX_START)
    assert ca.epoch_start == 0
    ca.epoch_start = 5000
    C.Cubic().cwnd_event(sk, CA_EVENT_CWND_RESTART)
    assert ca.epoch_start == 5000


def test_loss_state_resets():
    sk, ca = make(cwnd=100)
    ca.delay_min = 5000
    C.cubictcp_recalc_ssthresh(sk)
    ca.epoch_start = 99
    ca.found = 1
    ca.sample_cnt = 5
    C.Cubic().set_state(sk, TCP_CA_Recovery)
    assert ca.last_max_cwnd == 100 and ca.found == 1
    sk.snd_nxt = 5000
    sk.now += 777
    C.Cubic().set_state(sk, TCP_CA_Loss)
    assert (ca.last_max_cwnd, ca.epoch_start, ca.delay_min, ca.found, ca.cnt) == (0, 0, 0, 0, 0)
    assert (ca.end_seq, ca.round_start, ca.sample_cnt, ca.curr_rtt) == (
        5000, sk.now, 0, 0xFFFFFFFF)


def test_undo_cwnd_is_renos():
    sk, _ = make(cwnd=30)
    sk.prior_cwnd = 50
    assert C.Cubic().undo_cwnd(sk) == 50
    sk.prior_cwnd = 10
    assert C.Cubic().undo_cwnd(sk) == 30


# ---- pkts_acked: delay_min -----------------------------------------------------------------

def test_acked_tracks_delay_min():
    sk, ca = make()
    C.Cubic().pkts_acked(sk, 1, -1)              # no RTT sample
    assert ca.delay_min == 0
    C.Cubic().pkts_acked(sk, 1, 0)               # 0 counts as 1 us
    assert ca.delay_min == 1
    ca.delay_min = 0
    for rtt, expect in ((5000, 5000), (7000, 5000), (4000, 4000)):
        C.Cubic().pkts_acked(sk, 1, rtt)
        assert ca.delay_min == expect


def test_acked_ignores_samples_just_after_epoch_start():
    sk, ca = make()
    ca.delay_min = 5000
    ca.epoch_start = sk.now // 1000
    sk.now += 999_000                            # 999 jiffies after the epoch began
    C.Cubic().pkts_acked(sk, 1, 100)
    assert ca.delay_min == 5000
    sk.now += 1000                               # 1000 jiffies: accepted
    C.Cubic().pkts_acked(sk, 1, 100)
    assert ca.delay_min == 100


# ---- HyStart ---------------------------------------------------------------------------------

def _hystart_sock(cwnd: int = 32) -> tuple[FakeSock, C.BicTcp]:
    sk, ca = make(cwnd=cwnd)
    return sk, ca


def test_hystart_delay_exit_after_sample_window():
    sk, ca = _hystart_sock()
    # round 1: RTT 10 ms; ACKs 3 ms apart so no ACK train forms
    for _ in range(12):
        sk.now += 3000
        C.cubictcp_acked(sk, 1, 10_000)
    assert ca.delay_min == 10_000 and ca.found == 0 and ca.sample_cnt == 8
    # new round: snd_una passes end_seq
    sk.snd_nxt = 2000
    sk.snd_una = 1001
    # threshold = delay_min + clamp(10000 >> 3, 4000, 16000) = 14000 us
    for i in range(8):                           # the sample window: no decision yet
        sk.now += 3000
        C.cubictcp_acked(sk, 1, 20_000)
        assert ca.found == 0 and ca.sample_cnt == i + 1
    assert ca.end_seq == 2000 and ca.curr_rtt == 20_000
    sk.now += 3000
    C.cubictcp_acked(sk, 1, 20_000)
    assert ca.found == 1 and sk.snd_ssthresh == 32
    assert sk.net.mib["TcpExtTCPHystartDelayDetect"] == 1
    assert sk.net.mib["TcpExtTCPHystartDelayCwnd"] == 32
    assert sk.net.mib["TcpExtTCPHystartTrainDetect"] == 0


@pytest.mark.parametrize("rtt, fires", [(14_000, False), (14_001, True)])
def test_hystart_delay_threshold_boundary(rtt, fires):
    sk, ca = _hystart_sock()
    ca.delay_min = 10_000
    for _ in range(9):
        sk.now += 3000
        C.cubictcp_acked(sk, 1, rtt)
    assert bool(ca.found) is fires
    assert sk.snd_ssthresh == (32 if fires else INF_SSTHRESH)


def test_hystart_delay_threshold_clamped_high():
    sk, ca = _hystart_sock()
    ca.delay_min = 200_000                       # 200000>>3 = 25000 -> clamped to 16000
    for _ in range(9):
        sk.now += 3000
        C.cubictcp_acked(sk, 1, 216_000)
    assert ca.found == 0
    sk.now += 3000
    C.cubictcp_acked(sk, 1, 216_001)             # round minimum is still 216000
    assert ca.found == 0
    sk.snd_nxt = 3000
    sk.snd_una = 1001                            # next round
    for _ in range(9):
        sk.now += 3000
        C.cubictcp_acked(sk, 1, 216_001)
    assert ca.found == 1


def test_hystart_ack_train_exit():
    sk, ca = _hystart_sock()
    t0 = sk.now
    # ACKs 1 ms apart (<= hystart_ack_delta_us) with RTT 10 ms: threshold = delay_min/2 = 5 ms
    for k in range(1, 6):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
        assert ca.found == 0, k                  # 5000 > 5000 is false at k = 5
    sk.now = t0 + 6000
    C.cubictcp_acked(sk, 1, 10_000)
    assert ca.found == 1 and sk.snd_ssthresh == 32
    assert sk.net.mib["TcpExtTCPHystartTrainDetect"] == 1
    assert sk.net.mib["TcpExtTCPHystartTrainCwnd"] == 32
    assert sk.net.mib["TcpExtTCPHystartDelayDetect"] == 0
    # found: HyStart is done for this slow start
    C.cubictcp_acked(sk, 1, 50_000)
    assert sk.net.mib["TcpExtTCPHystartDelayDetect"] == 0


def test_hystart_ack_train_broken_by_gap():
    sk, ca = _hystart_sock()
    t0 = sk.now
    sk.now = t0 + 1000
    C.cubictcp_acked(sk, 1, 10_000)
    sk.now = t0 + 3001                           # 2001 us gap: not part of the train
    C.cubictcp_acked(sk, 1, 10_000)
    for k in range(4, 12):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
    assert ca.last_ack == t0 + 1000
    assert ca.found == 0 and sk.snd_ssthresh == INF_SSTHRESH


def test_hystart_delay_only_ignores_ack_train(monkeypatch):
    monkeypatch.setattr(C, "hystart_detect", C.HYSTART_DELAY)
    sk, ca = _hystart_sock()
    t0 = sk.now
    for k in range(1, 10):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
    assert ca.found == 0


def test_hystart_needs_low_window_and_slow_start():
    sk, ca = _hystart_sock(cwnd=15)              # below hystart_low_window
    t0 = sk.now
    for k in range(1, 10):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
    assert ca.found == 0 and ca.sample_cnt == 0
    sk, ca = _hystart_sock(cwnd=32)
    sk.snd_ssthresh = 32                         # not in slow start
    for k in range(1, 10):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
    assert ca.found == 0 and ca.sample_cnt == 0 and ca.delay_min == 10_000


def test_hystart_exit_ends_slow_start_in_cong_avoid():
    sk, ca = _hystart_sock(cwnd=32)
    t0 = sk.now
    for k in range(1, 7):
        sk.now = t0 + 1000 * k
        C.cubictcp_acked(sk, 1, 10_000)
    assert sk.snd_ssthresh == 32
    C.cubictcp_cong_avoid(sk, 0, 1)
    # no slow-start doubling: cubic with no W_max yet -> cnt 20, 1 of 20 ACKed
    assert sk.snd_cwnd == 32 and sk.snd_cwnd_cnt == 1 and ca.cnt == 20


def test_hystart_pacing_cushion(monkeypatch):
    # with a pacing rate, threshold = delay_min + min(1 ms, 4*gso_max_size/rate) (then halved
    # when not paced by fq): 10000 + 1000 -> 5500 us
    class PacedSock(FakeSock):
        __slots__ = ("sk_pacing_rate", "sk_gso_max_size")

    sk = PacedSock(cwnd=32)
    sk.sk_pacing_rate = 1_000_000                # 65536*4*1e6/1e6 us -> capped at 1000
    sk.sk_gso_max_size = 65536
    C.Cubic().init(sk)
    ca = sk.ca_priv
    assert C.hystart_ack_delay(sk) == 1000
    t0 = sk.now
    for k in range(1, 15):
        sk.now = t0 + 500 * k
        C.cubictcp_acked(sk, 1, 10_000)
        assert bool(ca.found) is (500 * k > 5500), k
