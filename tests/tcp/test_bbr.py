"""BBR v1 (tcp_bbr.c), delivery-rate sampling (tcp_rate.c) and internal pacing.

Whole-flow tests run one bulk sender over a 10 Mbit/s, 20 ms each way (40 ms RTT) link with a
1000-packet drop-tail queue, sampling the sender every 10 ms of virtual time. A wire packet is
1500 bytes (MSS 1448 + 52 bytes of headers with timestamps), so the bottleneck is 833.3 pkt/s.
Unit tests check the kernel's fixed-point arithmetic (BBR_SCALE 8, BW_SCALE 24) by hand.
"""

from __future__ import annotations

import statistics
from itertools import pairwise

import pytest

from tcpdive.packet.ipv4 import ip_parse
from tcpdive.sim.world import World
from tcpdive.tcp.cong import bbr as B
from tcpdive.tcp.minmax import Minmax
from tcpdive.tcp.rate import RateSample
from tcpdive.tcp.sock import SK_MAX_PACING_RATE, SK_PACING_NEEDED, SK_PACING_NONE
from tcpdive.tools.netstat import ss_info

LINK_PPS = 10e6 / (1500 * 8)          # 833.3 wire packets per second


class Flow:
    """One bulk transfer client -> server; ``samples`` every ``step`` s:
    (t, mode, cwnd, srtt_us, pacing_rate, bw, in_flight)."""

    def __init__(self, cc: str, secs: float, loss: float = 0.0, seed: int = 1,
                 step: float = 0.01, capture: bool = False, max_pacing_rate: int | None = None,
                 rate_bps: float = 10e6) -> None:
        w = World(seed=seed)
        c = w.host("client", "10.0.0.1")
        s = w.host("server", "10.0.0.2")
        self.link = w.link(c, s, delay=0.020, rate_bps=rate_bps, queue_limit=1000, loss=loss)
        for h in (c, s):
            h.sysctl.set("tcp_congestion_control", cc)
        ls = s.socket()
        ls.bind(("0.0.0.0", 80))
        ls.listen(5)
        self.got = 0
        self.departures: list[tuple[int, int]] = []      # (us, payload) of client data segments
        if capture:
            c.trace.packet.attach(self._on_packet)
        chunk = bytes(1 << 16)
        self.sock = c.socket()
        if max_pacing_rate is not None:
            self.sock.setsockopt(1, 47, max_pacing_rate)

        async def client() -> None:
            await self.sock.aconnect(("10.0.0.2", 80))
            while True:
                await self.sock.asendall(chunk)

        async def server() -> None:
            conn, _ = await ls.aaccept()
            while True:
                d = await conn.arecv(1 << 20)
                if not d:
                    return
                self.got += len(d)

        tc = c.spawn(client())
        ts = s.spawn(server())
        self.samples: list[tuple] = []
        n = round(secs / step)
        for k in range(1, n + 1):
            w.run_for(step)
            sk = self.sock.sk
            p = sk.ca_priv
            bbr = cc == "bbr" and p is not None
            self.samples.append((round(k * step, 3), p.mode if bbr else None, sk.snd_cwnd,
                                 sk.srtt_us >> 3, sk.sk_pacing_rate, p.bw.get() if bbr else 0,
                                 sk.tcp_packets_in_flight()))
        self.secs = secs
        self.sk = self.sock.sk
        self.client = c
        tc.cancel()
        ts.cancel()
        w.run_for(0)

    def _on_packet(self, net, dev, data, direction, now_us) -> None:
        if direction != "out":
            return
        _, iph = ip_parse(data)
        if iph is None or iph.protocol != 6:
            return
        plen = iph.tot_len - iph.ihl * 4 - (data[iph.ihl * 4 + 12] >> 4) * 4
        if plen > 0:
            self.departures.append((now_us, plen))

    @property
    def mbps(self) -> float:
        return self.got * 8 / self.secs / 1e6

    def modes(self) -> list[int]:
        """Modes in order of appearance (consecutive duplicates collapsed)."""
        out: list[int] = []
        for smp in self.samples:
            if smp[1] is not None and (not out or out[-1] != smp[1]):
                out.append(smp[1])
        return out

    def srtt_between(self, t0: float, t1: float) -> list[int]:
        return [smp[3] for smp in self.samples if t0 <= smp[0] < t1]


@pytest.fixture(scope="module")
def bbr12() -> Flow:
    return Flow("bbr", 12.0, capture=True)


@pytest.fixture(scope="module")
def cubic12() -> Flow:
    return Flow("cubic", 12.0)


# ---- whole flows ----------------------------------------------------------------------------

def test_startup_drain_probe_bw_then_probe_rtt(bbr12):
    modes = bbr12.modes()
    assert modes[:4] == [B.BBR_STARTUP, B.BBR_DRAIN, B.BBR_PROBE_BW, B.BBR_PROBE_RTT]
    assert modes[4] == B.BBR_PROBE_BW
    first = {m: next(s[0] for s in bbr12.samples if s[1] == m) for m in set(modes)}
    # STARTUP doubles per round from 10 packets: the pipe (~33 packets) fills within a second
    assert first[B.BBR_DRAIN] < 1.0
    assert first[B.BBR_PROBE_BW] - first[B.BBR_DRAIN] < 0.5        # DRAIN takes about a round
    assert bbr12.sk.snd_ssthresh < 0x7FFFFFFF                     # set on entering DRAIN


def test_bw_estimate_matches_the_bottleneck(bbr12):
    bw = bbr12.sk.ca_priv.bw.get()
    pps = bw * 1e6 / B.BW_UNIT
    assert abs(pps - LINK_PPS) / LINK_PPS < 0.02, pps
    # tcp_info / INET_DIAG: bw in payload bytes per second
    info = bbr12.sk.ca.get_info(bbr12.sk)
    assert info["bbr_bw_lo"] == bw * 1448 * 1_000_000 >> 24
    assert abs(info["bbr_bw_lo"] * 8 - LINK_PPS * 1448 * 8) < 0.02 * 10e6
    # refreshed in PROBE_RTT at ~10 s (an expired filter takes the new sample): measured 42.4 ms
    assert 40_000 <= info["bbr_min_rtt"] < 45_000
    assert bbr12.mbps > 9.0            # 9.65 Mbit/s of payload fits the 10 Mbit/s wire


def test_queue_stays_small_compared_with_cubic(bbr12, cubic12):
    bbr = bbr12.srtt_between(2.0, 9.5)
    cub = cubic12.srtt_between(2.0, 9.5)
    # measured: BBR ~46-53 ms (up to 1.25 * BDP queued while probing), CUBIC fills the
    # 1000-packet queue towards 1.2 s of queueing delay
    assert statistics.mean(bbr) < 60_000
    assert max(bbr) < 75_000
    assert statistics.mean(cub) > 5 * statistics.mean(bbr)
    assert abs(bbr12.mbps - cubic12.mbps) < 1.0      # both fill the link


def test_probe_rtt_after_10s_for_200ms_at_cwnd_4(bbr12):
    rtt = [s for s in bbr12.samples if s[1] == B.BBR_PROBE_RTT]
    t0, t1 = rtt[0][0], rtt[-1][0]
    assert 9.9 <= t0 <= 10.6                          # min_rtt last refreshed at ~0.04 s
    assert t1 - t0 >= 0.2                             # 200 ms at cwnd 4, then a round
    assert t1 - t0 < 0.35
    assert all(s[2] == 4 for s in rtt)
    # cwnd restored afterwards (bbr_check_probe_rtt_done: max(cwnd, prior_cwnd))
    after = next(s for s in bbr12.samples if s[0] > t1)
    assert after[2] > 40


def test_pacing_spaces_segments(bbr12):
    sk = bbr12.sk
    # departures during one second of PROBE_BW, grouped by instant (a TSO burst leaves at once)
    times: dict[int, int] = {}
    for t, n in bbr12.departures:
        if 5_000_000 <= t < 6_000_000:
            times[t] = times.get(t, 0) + n
    assert max(times.values()) <= 2 * 1448            # bursts of bbr_tso_segs_goal = 2 segments
    stamps = sorted(times)
    gaps = [b - a for a, b in pairwise(stamps)]
    # a 2-segment skb every 2 * 1448 / pacing_rate: 2.42 ms at 1.19 MB/s (bw * 0.99)
    rate = sk.ca_priv.bw.get() * 1448 * 990_000 >> 24
    expect = 2 * 1448 * 1e6 / rate
    med = statistics.median(gaps)
    assert abs(med - expect) / expect < 0.05, (med, expect)
    assert min(gaps) >= 0.5 * expect * 0.75          # the 0.75 phase paces slower, none faster than 1.25
    assert sk.sk_pacing_status == SK_PACING_NEEDED


def test_random_loss_barely_dents_bbr():
    bbr = Flow("bbr", 20.0, loss=0.01, step=0.5)
    cubic = Flow("cubic", 20.0, loss=0.01, step=0.5)
    # measured: BBR ~9.2 Mbit/s, CUBIC ~2-3 Mbit/s (Reno regime, Mathis ~3.5 Mbit/s at 40 ms)
    assert bbr.mbps > 8.5
    assert cubic.mbps < 4.5
    assert bbr.mbps / cubic.mbps > 2.5
    # not mistaken for a policer: loss rate 1 % << 20 %
    assert not bbr.sk.ca_priv.lt_use_bw


def test_ss_shows_bbr_info(bbr12):
    line = ss_info(bbr12.sk)
    assert " bbr:(bw:9.7Mbps,mrtt:42.442,pacing_gain:1,cwnd_gain:2) " in line
    assert ",pacing_gain:" in line and ",cwnd_gain:2)" in line
    assert "pacing_rate " in line and "delivery_rate " in line


def test_tcp_info_rates(bbr12):
    from tcpdive.tcp.sockopt import tcp_get_info

    i = tcp_get_info(bbr12.sk)
    assert i.tcpi_pacing_rate == bbr12.sk.sk_pacing_rate
    assert i.tcpi_max_pacing_rate == SK_MAX_PACING_RATE
    # last sample's delivery rate: about the bottleneck's payload rate
    assert abs(i.tcpi_delivery_rate - LINK_PPS * 1448) / (LINK_PPS * 1448) < 0.1


def test_so_max_pacing_rate_paces_cubic():
    f = Flow("cubic", 5.0, step=0.5, max_pacing_rate=125_000)      # 1 Mbit/s
    sk = f.sk
    assert sk.sk_pacing_status == SK_PACING_NEEDED
    assert sk.sk_max_pacing_rate == 125_000 and sk.sk_pacing_rate == 125_000
    assert f.sock.getsockopt(1, 47) == 125_000
    assert 0.9 < f.mbps <= 1.03                        # the cap, not the 10 Mbit/s link
    # the queue never builds: RTT stays near 40 ms
    assert max(f.srtt_between(2.0, 5.0)) < 50_000


def test_so_max_pacing_rate_unlimited_keeps_pacing_off():
    w = World(seed=1)
    h = w.host("h", "10.0.0.1")
    s = h.socket()
    s.setsockopt(1, 47, 0xFFFFFFFF)                     # ~0U: unlimited
    assert s.sk.sk_pacing_status == SK_PACING_NONE
    assert s.sk.sk_max_pacing_rate == SK_MAX_PACING_RATE
    assert s.getsockopt(1, 47) == 0xFFFFFFFF
    assert s.getsockopt(1, 47, 8) == SK_MAX_PACING_RATE.to_bytes(8, "little")


def test_sysctl_loads_bbr():
    w = World(seed=1)
    h = w.host("h", "10.0.0.1")
    assert h.sysctl.get("tcp_available_congestion_control") == "reno cubic"
    h.sysctl.set("tcp_congestion_control", "bbr")
    assert h.sysctl.get("tcp_available_congestion_control") == "reno cubic bbr"
    assert h.sysctl.get("tcp_allowed_congestion_control") == "reno cubic bbr"
    s = h.socket()
    assert s.getsockopt(6, 13) == b"bbr"


# ---- unit: constants, arithmetic, gain cycle, filters ---------------------------------------

_WORLDS: list[World] = []


def _sock(rng_seed: int = 1):
    w = World(seed=rng_seed)
    _WORLDS[:] = [w]
    h = w.host("h", "10.0.0.1")
    sk = h.socket().sk
    sk.mss_cache = 1448
    B.bbr_init(sk)
    return sk


def test_fixed_point_constants():
    assert B.bbr_high_gain == 739                 # 2.885 * 256 + 1
    assert B.bbr_drain_gain == 88                 # 256 / 2.885
    assert B.bbr_pacing_gain == (320, 192, 256, 256, 256, 256, 256, 256)
    assert B.bbr_cwnd_gain == 512
    assert B.bbr_full_bw_thresh == 320


def test_init_state_and_pacing_from_initial_window():
    sk = _sock()
    bbr = sk.ca_priv
    assert bbr.mode == B.BBR_STARTUP and bbr.min_rtt_us == 0xFFFFFFFF
    assert sk.sk_pacing_status == SK_PACING_NEEDED
    # no RTT yet: 10 packets per 1 ms, times high_gain, less 1 %
    bw = 10 * B.BW_UNIT // 1000
    assert sk.sk_pacing_rate == ((bw * 1448 * 739 >> 8) * 990_000) >> 24
    assert B.bbr_bdp(sk, bw, 256) == 10            # TCP_INIT_CWND before any RTT sample


def test_rate_bdp_and_quantization_exact():
    sk = _sock()
    bbr = sk.ca_priv
    assert B.bbr_rate_bytes_per_sec(sk, B.BW_UNIT, 256) == 1448 * 990_000
    bbr.min_rtt_us = 40_000
    bw = 13981                                    # 833.3 pkt/s
    # ceil(13981 * 40000 * 2 / 2^24) = ceil(66.67)
    assert B.bbr_bdp(sk, bw, 512) == 67
    sk.sk_pacing_rate = 1_194_598
    assert B.bbr_tso_segs_goal(sk) == 2           # 1166 bytes per ms < 1 MSS: min_tso_segs
    bbr.mode = B.BBR_PROBE_BW
    bbr.cycle_idx = 1
    assert B.bbr_quantization_budget(sk, 67) == 74          # +6, rounded up to even
    bbr.cycle_idx = 0
    assert B.bbr_quantization_budget(sk, 67) == 76          # +2 while probing
    sk.sk_pacing_rate = 100_000                   # below 1.2 Mbit/s
    assert B.bbr_min_tso_segs(sk) == 1


def test_probe_bw_random_start_never_drains_first():
    sk = _sock()
    seen = set()
    for _ in range(300):
        B.bbr_reset_probe_bw_mode(sk)
        seen.add(sk.ca_priv.cycle_idx)
    assert seen == {0, 2, 3, 4, 5, 6, 7}         # 7 - rand(7) + 1 (mod 8): never phase 1 (3/4)


def test_gain_cycle_sequence_and_phase_lengths():
    sk = _sock()
    bbr = sk.ca_priv
    bbr.mode = B.BBR_PROBE_BW
    bbr.min_rtt_us = 40_000
    bbr.bw.reset(0, 13981)
    bbr.cycle_idx = 0
    bbr.cycle_mstamp = 1_000_000
    gains = []
    rs = RateSample(prior_in_flight=0)
    t = 1_000_000
    for _ in range(16):
        B.bbr_update_gains(sk)
        gains.append(bbr.pacing_gain)
        # a whole min_rtt later, every phase ends (the 1.25 one also needs inflight >= 1.25 BDP)
        t += 40_001
        sk.delivered_mstamp = t
        rs.prior_in_flight = 200 if bbr.pacing_gain > 256 else 0
        assert B.bbr_is_next_cycle_phase(sk, rs)
        B.bbr_advance_cycle_phase(sk)
        assert bbr.cycle_mstamp == t
    assert gains == [320, 192, 256, 256, 256, 256, 256, 256] * 2


def test_cycle_phase_rules():
    sk = _sock()
    bbr = sk.ca_priv
    bbr.mode = B.BBR_PROBE_BW
    bbr.min_rtt_us = 40_000
    bbr.bw.reset(0, 13981)
    bbr.cycle_mstamp = 0
    sk.sk_pacing_rate = 1_194_598                  # bbr_tso_segs_goal = 2
    rs = RateSample()
    # gain 1.0: purely time
    bbr.cycle_idx, bbr.pacing_gain = 3, 256
    sk.delivered_mstamp = 40_000
    assert not B.bbr_is_next_cycle_phase(sk, rs)
    sk.delivered_mstamp = 40_001
    assert B.bbr_is_next_cycle_phase(sk, rs)
    # gain 1.25: time AND (inflight >= 1.25 BDP + budget, or a loss)
    bbr.cycle_idx, bbr.pacing_gain = 0, 320
    target = B.bbr_inflight(sk, 13981, 320)
    rs.prior_in_flight = target - 3               # + tso_segs_goal(2) at EDT: still short
    assert not B.bbr_is_next_cycle_phase(sk, rs)
    rs.losses = 1
    assert B.bbr_is_next_cycle_phase(sk, rs)
    rs.losses = 0
    rs.prior_in_flight = target - 2
    assert B.bbr_is_next_cycle_phase(sk, rs)
    # gain 0.75: time OR inflight down to one BDP
    bbr.cycle_idx, bbr.pacing_gain = 1, 192
    sk.delivered_mstamp = 10_000
    rs.prior_in_flight = B.bbr_inflight(sk, 13981, 256)
    assert B.bbr_is_next_cycle_phase(sk, rs)
    rs.prior_in_flight += 1
    assert not B.bbr_is_next_cycle_phase(sk, rs)


def test_max_bw_filter_windows_over_10_rounds():
    m = Minmax(0, 0)
    assert m.running_max(10, 1, 1000) == 1000
    for rnd in range(2, 12):
        assert m.running_max(10, rnd, 500) == 1000        # the peak holds for 10 rounds
    # round 12: the peak (round 1) is older than the window; the best later sample takes over
    assert m.running_max(10, 12, 500) == 500
    assert m.running_max(10, 13, 700) == 700              # a higher sample resets the filter


def test_full_bw_after_three_rounds_without_25_percent_growth():
    sk = _sock()
    bbr = sk.ca_priv
    rs = RateSample()
    bbr.round_start = 1
    for bw in (100, 200, 300, 375):                # each >= 1.25x the last full_bw
        bbr.bw.reset(0, bw)
        B.bbr_check_full_bw_reached(sk, rs)
        assert bbr.full_bw == bw and bbr.full_bw_cnt == 0
    for k, bw in enumerate((400, 420, 467), 1):   # < (375 * 320) >> 8 = 468
        bbr.bw.reset(0, bw)
        B.bbr_check_full_bw_reached(sk, rs)
        assert bbr.full_bw == 375 and bbr.full_bw_cnt == k
    assert bbr.full_bw_reached
    sk.sk_pacing_rate = 1_000_000
    B.bbr_check_drain(sk, rs)
    assert bbr.mode in (B.BBR_DRAIN, B.BBR_PROBE_BW)


def test_app_limited_sample_ignored_unless_higher():
    sk = _sock()
    bbr = sk.ca_priv
    bbr.bw.reset(0, 1000)
    rs = RateSample()
    rs.delivered, rs.interval_us, rs.is_app_limited = 10, 40_000, True
    rs.prior_delivered = 0
    B.bbr_update_bw(sk, rs)
    assert bbr.bw.get() == 4194                    # 10 * 2^24 / 40000 = 4194 > 1000: taken
    bbr.bw.reset(bbr.rtt_cnt, 10_000)
    B.bbr_update_bw(sk, rs)
    assert bbr.bw.get() == 10_000                  # 4194 < 10000 and app-limited: ignored


def test_min_rtt_filter_expires_after_10s():
    sk = _sock()
    bbr = sk.ca_priv
    clock = sk.net.clock
    rs = RateSample()
    rs.rtt_us = 40_000
    B.bbr_update_min_rtt(sk, rs)
    assert bbr.min_rtt_us == 40_000
    rs.rtt_us = 60_000
    B.bbr_update_min_rtt(sk, rs)
    assert bbr.min_rtt_us == 40_000                # larger, filter not expired
    _WORLDS[0].run_for(10.0)
    B.bbr_update_min_rtt(sk, rs)
    assert bbr.min_rtt_us == 40_000 and bbr.mode == B.BBR_STARTUP     # 10 s: not yet
    _WORLDS[0].run_for(0.002)
    assert clock.now_us() // 1000 - bbr.min_rtt_stamp > 10_000
    B.bbr_update_min_rtt(sk, rs)
    assert bbr.min_rtt_us == 60_000               # expired: the new sample replaces it
    assert bbr.mode == B.BBR_PROBE_RTT


def test_policer_detected_from_two_lossy_intervals():
    sk = _sock()
    bbr = sk.ca_priv
    bbr.mode = B.BBR_PROBE_BW
    B.bbr_lt_bw_interval_done(sk, 10_000)
    assert bbr.lt_bw == 10_000 and not bbr.lt_use_bw
    B.bbr_lt_bw_interval_done(sk, 11_000)         # within 1/8: consistent
    assert bbr.lt_use_bw and bbr.lt_bw == 10_500
    assert B.bbr_bw(sk) == 10_500
    B.bbr_update_gains(sk)
    assert bbr.pacing_gain == 256                 # no probing while policed


def test_undo_and_ssthresh_hooks():
    sk = _sock()
    bbr = sk.ca_priv
    sk.snd_cwnd = 50
    bbr.full_bw, bbr.full_bw_cnt = 123, 2
    assert B.bbr_undo_cwnd(sk) == 50
    assert bbr.full_bw == 0 and bbr.full_bw_cnt == 0
    ss = sk.snd_ssthresh
    assert B.bbr_ssthresh(sk) == ss and bbr.prior_cwnd == 50
    assert B.BbrOps().sndbuf_expand(sk) == 3


def test_recovery_packet_conservation_then_restore():
    sk = _sock()
    bbr = sk.ca_priv
    bbr.prior_cwnd = 80
    sk.snd_cwnd = 60
    sk.packets_out = 50
    rs = RateSample()
    rs.losses = 2
    sk.icsk_ca_state = 3                          # TCP_CA_Recovery
    conserving, cwnd = B.bbr_set_cwnd_to_recover_or_restore(sk, rs, 3)
    assert conserving and cwnd == 50 + 3          # in flight + acked
    rs.losses = 0
    sk.icsk_ca_state = 0
    conserving, cwnd = B.bbr_set_cwnd_to_recover_or_restore(sk, rs, 3)
    assert not conserving and cwnd == 80          # restored to the cwnd saved before recovery
