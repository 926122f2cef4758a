"""BBR v1: Bottleneck Bandwidth and RTT (net/ipv4/tcp_bbr.c, Linux 6.x).

On every ACK BBR updates a model of the path from the delivery-rate sample (tcp/rate.py):

- ``bw``: the windowed maximum delivery rate over the last 10 packet-timed round trips, in
  packets per microsecond << 24 (BW_SCALE), or the long-term rate ``lt_bw`` when it estimates
  that a token-bucket policer drops its packets;
- ``min_rtt``: the minimum RTT over the last 10 seconds.

It paces at ``pacing_gain * bw`` (1 % below, to keep queues short) and keeps
``cwnd = cwnd_gain * bw * min_rtt`` (plus ACK-aggregation room and TSO quantization), driven by
a four-mode state machine: STARTUP (gain 2/ln2 until bw stops growing 25 % per round for 3
rounds), DRAIN (the inverse gain until the queue STARTUP built is gone), PROBE_BW (the 8-phase
pacing-gain cycle 5/4, 3/4, 1 x 6, starting at a random phase) and PROBE_RTT (cwnd 4 for at
least 200 ms and a round, when min_rtt has not been refreshed for 10 s). Gains are in 1/256
(BBR_SCALE 8), all arithmetic is the kernel's integer arithmetic.

BBR sets ``sk_pacing_status = SK_PACING_NEEDED``: tcpdive then paces internally
(tcp/pacing.py), as Linux does without the fq qdisc.

Known differences from Linux: the random start phase comes from the host's seeded rng
(``get_random_u32_below`` in Linux), and the time of the next departure
(``bbr_packets_in_net_at_edt``) reads ``tcp_wstamp_ns`` against the namespace clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..minmax import Minmax
from ..sock import (
    SK_PACING_NEEDED,
    SK_PACING_NONE,
    SK_PACING_SHIFT,
    TCP_INFINITE_SSTHRESH,
    TCP_INIT_CWND,
    TCP_CA_Loss,
    TCP_CA_Open,
    TCP_CA_Recovery,
)
from . import CA_EVENT_TX_START, TcpCongestionOps, tcp_register_congestion_control

if TYPE_CHECKING:
    from ..rate import RateSample
    from ..sock import TcpSock

_M32 = 0xFFFFFFFF
USEC_PER_SEC = 1_000_000
USEC_PER_MSEC = 1000
HZ = 1000

BW_SCALE = 24
BW_UNIT = 1 << BW_SCALE
BBR_SCALE = 8
BBR_UNIT = 1 << BBR_SCALE

# enum bbr_mode
BBR_STARTUP = 0
BBR_DRAIN = 1
BBR_PROBE_BW = 2
BBR_PROBE_RTT = 3
MODE_NAMES = {BBR_STARTUP: "STARTUP", BBR_DRAIN: "DRAIN", BBR_PROBE_BW: "PROBE_BW",
              BBR_PROBE_RTT: "PROBE_RTT"}

CYCLE_LEN = 8
bbr_bw_rtts = CYCLE_LEN + 2               # bw filter window, in rounds
bbr_min_rtt_win_sec = 10
bbr_probe_rtt_mode_ms = 200
bbr_min_tso_rate = 1200000                # bit/s below which TSO bursts are 1 segment
bbr_pacing_margin_percent = 1
bbr_high_gain = BBR_UNIT * 2885 // 1000 + 1       # 2/ln(2) = 739/256
bbr_drain_gain = BBR_UNIT * 1000 // 2885          # 88/256
bbr_cwnd_gain = BBR_UNIT * 2
bbr_pacing_gain = (BBR_UNIT * 5 // 4, BBR_UNIT * 3 // 4,
                   BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT)
bbr_cycle_rand = 7
bbr_cwnd_min_target = 4
bbr_full_bw_thresh = BBR_UNIT * 5 // 4
bbr_full_bw_cnt = 3
bbr_lt_intvl_min_rtts = 4
bbr_lt_loss_thresh = 50                   # lost/delivered > 50/256 (~20 %): lossy
bbr_lt_bw_ratio = BBR_UNIT // 8
bbr_lt_bw_diff = 4000 // 8                # bytes/s
bbr_lt_bw_max_rtts = 48
bbr_extra_acked_gain = BBR_UNIT
bbr_extra_acked_win_rtts = 5
bbr_ack_epoch_acked_reset_thresh = 1 << 20
bbr_extra_acked_max_us = 100 * 1000

GSO_LEGACY_MAX_SIZE = 65536
MAX_TCP_HEADER = 192                      # as tcp/output.py: 6.18 x86-64


def _s32(x: int) -> int:
    return ((x + 0x80000000) & _M32) - 0x80000000


def _jiffies(sk: TcpSock) -> int:
    """``tcp_jiffies32`` at HZ=1000."""
    return (sk.net.clock.now_us() // USEC_PER_MSEC) & _M32


class Bbr:
    """``struct bbr`` (icsk_ca_priv)."""

    __slots__ = (
        "min_rtt_us", "min_rtt_stamp", "probe_rtt_done_stamp", "bw", "rtt_cnt",
        "next_rtt_delivered", "cycle_mstamp", "mode", "prev_ca_state", "packet_conservation",
        "round_start", "idle_restart", "probe_rtt_round_done", "lt_is_sampling", "lt_rtt_cnt",
        "lt_use_bw", "lt_bw", "lt_last_delivered", "lt_last_stamp", "lt_last_lost",
        "pacing_gain", "cwnd_gain", "full_bw_reached", "full_bw_cnt", "cycle_idx",
        "has_seen_rtt", "prior_cwnd", "full_bw", "ack_epoch_mstamp", "extra_acked",
        "ack_epoch_acked", "extra_acked_win_rtts", "extra_acked_win_idx",
    )

    def __init__(self) -> None:
        for n in self.__slots__:
            setattr(self, n, 0)
        self.bw = Minmax(0, 0)
        self.extra_acked = [0, 0]

    def __repr__(self) -> str:
        return (f"Bbr(mode={MODE_NAMES[self.mode]}, bw={self.bw.get()}, "
                f"min_rtt_us={self.min_rtt_us}, pacing_gain={self.pacing_gain}, "
                f"cwnd_gain={self.cwnd_gain}, cycle_idx={self.cycle_idx}, "
                f"full_bw_reached={self.full_bw_reached}, lt_use_bw={self.lt_use_bw})")


def bbr_max_bw(sk: TcpSock) -> int:
    """Windowed max recent bandwidth sample, pkts/us << BW_SCALE (``bbr_max_bw``)."""
    return sk.ca_priv.bw.get()


def bbr_bw(sk: TcpSock) -> int:
    """The path's estimated bandwidth: lt_bw when policed, else max_bw (``bbr_bw``)."""
    bbr: Bbr = sk.ca_priv
    return bbr.lt_bw if bbr.lt_use_bw else bbr.bw.get()


def bbr_extra_acked(sk: TcpSock) -> int:
    bbr: Bbr = sk.ca_priv
    return max(bbr.extra_acked[0], bbr.extra_acked[1])


def bbr_rate_bytes_per_sec(sk: TcpSock, rate: int, gain: int) -> int:
    """A rate in pkts/us << 24 times a gain, in bytes/s less the 1 % pacing margin
    (``bbr_rate_bytes_per_sec``)."""
    rate *= sk.mss_cache
    rate *= gain
    rate >>= BBR_SCALE
    rate *= USEC_PER_SEC // 100 * (100 - bbr_pacing_margin_percent)
    return rate >> BW_SCALE


def bbr_bw_to_pacing_rate(sk: TcpSock, bw: int, gain: int) -> int:
    rate = bbr_rate_bytes_per_sec(sk, bw, gain)
    cap = sk.sk_max_pacing_rate
    return rate if rate < cap else cap


def bbr_init_pacing_rate_from_rtt(sk: TcpSock) -> None:
    """high_gain * cwnd / srtt (1 ms before any RTT sample) (``bbr_init_pacing_rate_from_rtt``)."""
    bbr: Bbr = sk.ca_priv
    if sk.srtt_us:
        rtt_us = max(sk.srtt_us >> 3, 1)
        bbr.has_seen_rtt = 1
    else:
        rtt_us = USEC_PER_MSEC
    bw = sk.snd_cwnd * BW_UNIT // rtt_us
    sk.sk_pacing_rate = bbr_bw_to_pacing_rate(sk, bw, bbr_high_gain)


def bbr_set_pacing_rate(sk: TcpSock, bw: int, gain: int) -> None:
    """Pace at gain * bw; before the pipe is full, never lower the rate (``bbr_set_pacing_rate``)."""
    bbr: Bbr = sk.ca_priv
    rate = bbr_bw_to_pacing_rate(sk, bw, gain)
    if not bbr.has_seen_rtt and sk.srtt_us:
        bbr_init_pacing_rate_from_rtt(sk)
    if bbr.full_bw_reached or rate > sk.sk_pacing_rate:
        sk.sk_pacing_rate = rate


def bbr_min_tso_segs(sk: TcpSock) -> int:
    """1 segment per TSO skb below 1.2 Mbit/s, else 2 (``bbr_min_tso_segs``)."""
    return 1 if sk.sk_pacing_rate < (bbr_min_tso_rate >> 3) else 2


def bbr_tso_segs_goal(sk: TcpSock) -> int:
    """``tcp_tso_autosize`` without the device's gso_max_size, at most 127 (``bbr_tso_segs_goal``)."""
    nbytes = min(sk.sk_pacing_rate >> SK_PACING_SHIFT, GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER)
    segs = max(nbytes // sk.mss_cache, bbr_min_tso_segs(sk))
    return min(segs, 0x7F)


def bbr_save_cwnd(sk: TcpSock) -> None:
    """Remember the last good cwnd, to restore after recovery or PROBE_RTT (``bbr_save_cwnd``)."""
    bbr: Bbr = sk.ca_priv
    if bbr.prev_ca_state < TCP_CA_Recovery and bbr.mode != BBR_PROBE_RTT:
        bbr.prior_cwnd = sk.snd_cwnd
    else:
        bbr.prior_cwnd = max(bbr.prior_cwnd, sk.snd_cwnd)


def bbr_cwnd_event(sk: TcpSock, event: int) -> None:
    """Restart from idle while app-limited: pace at bw in PROBE_BW, maybe end PROBE_RTT
    (``bbr_cwnd_event``)."""
    bbr: Bbr = sk.ca_priv
    if event == CA_EVENT_TX_START and sk.app_limited:
        bbr.idle_restart = 1
        bbr.ack_epoch_mstamp = sk.tcp_mstamp
        bbr.ack_epoch_acked = 0
        if bbr.mode == BBR_PROBE_BW:
            bbr_set_pacing_rate(sk, bbr_bw(sk), BBR_UNIT)
        elif bbr.mode == BBR_PROBE_RTT:
            bbr_check_probe_rtt_done(sk)


def bbr_bdp(sk: TcpSock, bw: int, gain: int) -> int:
    """ceil(bw * min_rtt * gain); the initial window before any RTT sample (``bbr_bdp``)."""
    bbr: Bbr = sk.ca_priv
    if bbr.min_rtt_us == _M32:
        return TCP_INIT_CWND
    w = bw * bbr.min_rtt_us
    return (((w * gain) >> BBR_SCALE) + BW_UNIT - 1) // BW_UNIT


def bbr_quantization_budget(sk: TcpSock, cwnd: int) -> int:
    """Room for 3 TSO skbs in the end hosts, rounded up to even, +2 in the probing phase
    (``bbr_quantization_budget``)."""
    bbr: Bbr = sk.ca_priv
    cwnd += 3 * bbr_tso_segs_goal(sk)
    cwnd = (cwnd + 1) & ~1
    if bbr.mode == BBR_PROBE_BW and bbr.cycle_idx == 0:
        cwnd += 2
    return cwnd


def bbr_inflight(sk: TcpSock, bw: int, gain: int) -> int:
    return bbr_quantization_budget(sk, bbr_bdp(sk, bw, gain))


def bbr_packets_in_net_at_edt(sk: TcpSock, inflight_now: int) -> int:
    """Packets still in the network when the next skb departs (``bbr_packets_in_net_at_edt``)."""
    bbr: Bbr = sk.ca_priv
    now_ns = sk.tcp_mstamp * 1000
    edt_ns = max(sk.tcp_wstamp_ns, now_ns)
    interval_us = (edt_ns - now_ns) // 1000
    interval_delivered = (bbr_bw(sk) * interval_us) >> BW_SCALE
    inflight_at_edt = inflight_now
    if bbr.pacing_gain > BBR_UNIT:
        inflight_at_edt += bbr_tso_segs_goal(sk)
    if interval_delivered >= inflight_at_edt:
        return 0
    return inflight_at_edt - interval_delivered


def bbr_ack_aggregation_cwnd(sk: TcpSock) -> int:
    """cwnd room for ACK aggregation once the pipe is full, at most 100 ms of bw
    (``bbr_ack_aggregation_cwnd``)."""
    bbr: Bbr = sk.ca_priv
    aggr_cwnd = 0
    if bbr_extra_acked_gain and bbr.full_bw_reached:
        max_aggr_cwnd = bbr_bw(sk) * bbr_extra_acked_max_us // BW_UNIT
        aggr_cwnd = (bbr_extra_acked_gain * bbr_extra_acked(sk)) >> BBR_SCALE
        aggr_cwnd = min(aggr_cwnd, max_aggr_cwnd)
    return aggr_cwnd


def bbr_set_cwnd_to_recover_or_restore(sk: TcpSock, rs: RateSample, acked: int) -> tuple[bool, int]:
    """Packet conservation in the first round of Recovery, cwnd restored when it ends
    (``bbr_set_cwnd_to_recover_or_restore``). Returns (conserving, new cwnd)."""
    bbr: Bbr = sk.ca_priv
    prev_state = bbr.prev_ca_state
    state = sk.icsk_ca_state
    cwnd = sk.snd_cwnd
    if rs.losses > 0:
        cwnd = max(cwnd - rs.losses, 1)
    if state == TCP_CA_Recovery and prev_state != TCP_CA_Recovery:
        bbr.packet_conservation = 1
        bbr.next_rtt_delivered = sk.delivered          # start round now
        cwnd = sk.tcp_packets_in_flight() + acked
    elif prev_state >= TCP_CA_Recovery and state < TCP_CA_Recovery:
        cwnd = max(cwnd, bbr.prior_cwnd)
        bbr.packet_conservation = 0
    bbr.prev_ca_state = state
    if bbr.packet_conservation:
        return True, max(cwnd, sk.tcp_packets_in_flight() + acked)
    return False, cwnd


def bbr_set_cwnd(sk: TcpSock, rs: RateSample, acked: int, bw: int, gain: int) -> None:
    """Slow-start towards gain * BDP + aggregation, or snap down to it once the pipe is full;
    4 packets in PROBE_RTT (``bbr_set_cwnd``)."""
    bbr: Bbr = sk.ca_priv
    cwnd = sk.snd_cwnd
    if acked:
        conserving, cwnd = bbr_set_cwnd_to_recover_or_restore(sk, rs, acked)
        if not conserving:
            target_cwnd = bbr_bdp(sk, bw, gain)
            target_cwnd += bbr_ack_aggregation_cwnd(sk)
            target_cwnd = bbr_quantization_budget(sk, target_cwnd)
            if bbr.full_bw_reached:
                cwnd = min(cwnd + acked, target_cwnd)
            elif cwnd < target_cwnd or sk.delivered < TCP_INIT_CWND:
                cwnd = cwnd + acked
            cwnd = max(cwnd, bbr_cwnd_min_target)
    sk.snd_cwnd = min(cwnd, sk.snd_cwnd_clamp)
    if bbr.mode == BBR_PROBE_RTT:
        sk.snd_cwnd = min(sk.snd_cwnd, bbr_cwnd_min_target)


def bbr_is_next_cycle_phase(sk: TcpSock, rs: RateSample) -> bool:
    """A phase lasts min_rtt; the probing one until inflight reaches 5/4 BDP (or loss), the
    draining one ends early once inflight is down to BDP (``bbr_is_next_cycle_phase``)."""
    bbr: Bbr = sk.ca_priv
    is_full_length = max(sk.delivered_mstamp - bbr.cycle_mstamp, 0) > bbr.min_rtt_us
    if bbr.pacing_gain == BBR_UNIT:
        return is_full_length
    inflight = bbr_packets_in_net_at_edt(sk, rs.prior_in_flight)
    bw = bbr_max_bw(sk)
    if bbr.pacing_gain > BBR_UNIT:
        return is_full_length and (
            rs.losses > 0 or inflight >= bbr_inflight(sk, bw, bbr.pacing_gain))
    return is_full_length or inflight <= bbr_inflight(sk, bw, BBR_UNIT)


def bbr_advance_cycle_phase(sk: TcpSock) -> None:
    bbr: Bbr = sk.ca_priv
    bbr.cycle_idx = (bbr.cycle_idx + 1) & (CYCLE_LEN - 1)
    bbr.cycle_mstamp = sk.delivered_mstamp


def bbr_update_cycle_phase(sk: TcpSock, rs: RateSample) -> None:
    """Gain cycling in PROBE_BW (``bbr_update_cycle_phase``)."""
    if sk.ca_priv.mode == BBR_PROBE_BW and bbr_is_next_cycle_phase(sk, rs):
        bbr_advance_cycle_phase(sk)


def bbr_reset_startup_mode(sk: TcpSock) -> None:
    sk.ca_priv.mode = BBR_STARTUP


def bbr_reset_probe_bw_mode(sk: TcpSock) -> None:
    """Enter PROBE_BW at a random phase other than the draining one (``bbr_reset_probe_bw_mode``):
    cycle_idx = 7 - rand(7), then advanced, so the first phase is never 3/4."""
    bbr: Bbr = sk.ca_priv
    bbr.mode = BBR_PROBE_BW
    bbr.cycle_idx = CYCLE_LEN - 1 - sk.net.rng.randrange(bbr_cycle_rand)
    bbr_advance_cycle_phase(sk)


def bbr_reset_mode(sk: TcpSock) -> None:
    if not sk.ca_priv.full_bw_reached:
        bbr_reset_startup_mode(sk)
    else:
        bbr_reset_probe_bw_mode(sk)


def bbr_reset_lt_bw_sampling_interval(sk: TcpSock) -> None:
    bbr: Bbr = sk.ca_priv
    bbr.lt_last_stamp = (sk.delivered_mstamp // USEC_PER_MSEC) & _M32
    bbr.lt_last_delivered = sk.delivered
    bbr.lt_last_lost = sk.lost
    bbr.lt_rtt_cnt = 0


def bbr_reset_lt_bw_sampling(sk: TcpSock) -> None:
    bbr: Bbr = sk.ca_priv
    bbr.lt_bw = 0
    bbr.lt_use_bw = 0
    bbr.lt_is_sampling = 0
    bbr_reset_lt_bw_sampling_interval(sk)


def bbr_lt_bw_interval_done(sk: TcpSock, bw: int) -> None:
    """Two lossy intervals of consistent bw (within 1/8 or 4 kbit/s): policed, use their
    average (``bbr_lt_bw_interval_done``)."""
    bbr: Bbr = sk.ca_priv
    if bbr.lt_bw:
        diff = abs(bw - bbr.lt_bw)
        if (diff * BBR_UNIT <= bbr_lt_bw_ratio * bbr.lt_bw
                or bbr_rate_bytes_per_sec(sk, diff, BBR_UNIT) <= bbr_lt_bw_diff):
            bbr.lt_bw = (bw + bbr.lt_bw) >> 1
            bbr.lt_use_bw = 1
            bbr.pacing_gain = BBR_UNIT
            bbr.lt_rtt_cnt = 0
            return
    bbr.lt_bw = bw
    bbr_reset_lt_bw_sampling_interval(sk)


def bbr_lt_bw_sampling(sk: TcpSock, rs: RateSample) -> None:
    """Token-bucket policer detection (``bbr_lt_bw_sampling``): from the first loss, intervals
    of 4-16 rounds ending in a loss with loss rate >= 20 % give long-term bw samples."""
    bbr: Bbr = sk.ca_priv
    if bbr.lt_use_bw:
        if bbr.mode == BBR_PROBE_BW and bbr.round_start:
            bbr.lt_rtt_cnt += 1
            if bbr.lt_rtt_cnt >= bbr_lt_bw_max_rtts:
                bbr_reset_lt_bw_sampling(sk)
                bbr_reset_probe_bw_mode(sk)
        return
    if not bbr.lt_is_sampling:
        if not rs.losses:
            return
        bbr_reset_lt_bw_sampling_interval(sk)
        bbr.lt_is_sampling = 1
    if rs.is_app_limited:
        bbr_reset_lt_bw_sampling(sk)
        return
    if bbr.round_start:
        bbr.lt_rtt_cnt = min(bbr.lt_rtt_cnt + 1, 0x7F)       # lt_rtt_cnt:7
    if bbr.lt_rtt_cnt < bbr_lt_intvl_min_rtts:
        return
    if bbr.lt_rtt_cnt > 4 * bbr_lt_intvl_min_rtts:
        bbr_reset_lt_bw_sampling(sk)
        return
    if not rs.losses:
        return
    lost = sk.lost - bbr.lt_last_lost
    delivered = sk.delivered - bbr.lt_last_delivered
    if not delivered or (lost << BBR_SCALE) < bbr_lt_loss_thresh * delivered:
        return
    t = _s32(((sk.delivered_mstamp // USEC_PER_MSEC) & _M32) - bbr.lt_last_stamp)
    if t < 1:
        return
    if t >= _M32 // USEC_PER_MSEC:
        bbr_reset_lt_bw_sampling(sk)
        return
    t *= USEC_PER_MSEC
    bbr_lt_bw_interval_done(sk, delivered * BW_UNIT // t)


def bbr_update_bw(sk: TcpSock, rs: RateSample) -> None:
    """Count packet-timed rounds and feed the max-bw filter; app-limited samples only if they
    raise it (``bbr_update_bw``)."""
    bbr: Bbr = sk.ca_priv
    bbr.round_start = 0
    if rs.delivered < 0 or rs.interval_us <= 0:
        return
    if rs.prior_delivered >= bbr.next_rtt_delivered:
        bbr.next_rtt_delivered = sk.delivered
        bbr.rtt_cnt += 1
        bbr.round_start = 1
        bbr.packet_conservation = 0
    bbr_lt_bw_sampling(sk, rs)
    bw = rs.delivered * BW_UNIT // rs.interval_us
    if not rs.is_app_limited or bw >= bbr.bw.get():
        bbr.bw.running_max(bbr_bw_rtts, bbr.rtt_cnt, bw)


def bbr_update_ack_aggregation(sk: TcpSock, rs: RateSample) -> None:
    """Windowed max of data ACKed beyond what bw explains since the epoch began
    (``bbr_update_ack_aggregation``)."""
    bbr: Bbr = sk.ca_priv
    if not bbr_extra_acked_gain or rs.acked_sacked <= 0 or rs.delivered < 0 or rs.interval_us <= 0:
        return
    if bbr.round_start:
        bbr.extra_acked_win_rtts = min(0x1F, bbr.extra_acked_win_rtts + 1)
        if bbr.extra_acked_win_rtts >= bbr_extra_acked_win_rtts:
            bbr.extra_acked_win_rtts = 0
            bbr.extra_acked_win_idx = 0 if bbr.extra_acked_win_idx else 1
            bbr.extra_acked[bbr.extra_acked_win_idx] = 0
    epoch_us = max(sk.delivered_mstamp - bbr.ack_epoch_mstamp, 0)
    expected_acked = bbr_bw(sk) * epoch_us // BW_UNIT
    if (bbr.ack_epoch_acked <= expected_acked
            or bbr.ack_epoch_acked + rs.acked_sacked >= bbr_ack_epoch_acked_reset_thresh):
        bbr.ack_epoch_acked = 0
        bbr.ack_epoch_mstamp = sk.delivered_mstamp
        expected_acked = 0
    bbr.ack_epoch_acked = min(0xFFFFF, bbr.ack_epoch_acked + rs.acked_sacked)
    extra_acked = min(bbr.ack_epoch_acked - expected_acked, sk.snd_cwnd)
    if extra_acked > bbr.extra_acked[bbr.extra_acked_win_idx]:
        bbr.extra_acked[bbr.extra_acked_win_idx] = min(extra_acked, 0xFFFF)     # u16


def bbr_check_full_bw_reached(sk: TcpSock, rs: RateSample) -> None:
    """STARTUP filled the pipe when 3 non-app-limited rounds grew max bw less than 25 %
    (``bbr_check_full_bw_reached``)."""
    bbr: Bbr = sk.ca_priv
    if bbr.full_bw_reached or not bbr.round_start or rs.is_app_limited:
        return
    bw_thresh = (bbr.full_bw * bbr_full_bw_thresh) >> BBR_SCALE
    if bbr.bw.get() >= bw_thresh:
        bbr.full_bw = bbr.bw.get()
        bbr.full_bw_cnt = 0
        return
    bbr.full_bw_cnt = min(bbr.full_bw_cnt + 1, 3)              # full_bw_cnt:2
    bbr.full_bw_reached = int(bbr.full_bw_cnt >= bbr_full_bw_cnt)


def bbr_check_drain(sk: TcpSock, rs: RateSample) -> None:
    """STARTUP -> DRAIN once the pipe is full; DRAIN -> PROBE_BW once inflight is down to one
    BDP (``bbr_check_drain``)."""
    bbr: Bbr = sk.ca_priv
    if bbr.mode == BBR_STARTUP and bbr.full_bw_reached:
        bbr.mode = BBR_DRAIN
        sk.snd_ssthresh = bbr_inflight(sk, bbr.bw.get(), BBR_UNIT)
    if bbr.mode == BBR_DRAIN and bbr_packets_in_net_at_edt(
            sk, sk.tcp_packets_in_flight()) <= bbr_inflight(sk, bbr.bw.get(), BBR_UNIT):
        bbr_reset_probe_bw_mode(sk)


def bbr_check_probe_rtt_done(sk: TcpSock) -> None:
    """PROBE_RTT ends after its 200 ms and a round: restore cwnd, back to PROBE_BW or
    STARTUP (``bbr_check_probe_rtt_done``)."""
    bbr: Bbr = sk.ca_priv
    now = _jiffies(sk)
    if not (bbr.probe_rtt_done_stamp and _s32(now - bbr.probe_rtt_done_stamp) > 0):
        return
    bbr.min_rtt_stamp = now
    sk.snd_cwnd = max(sk.snd_cwnd, bbr.prior_cwnd)
    bbr_reset_mode(sk)


def bbr_update_min_rtt(sk: TcpSock, rs: RateSample) -> None:
    """The 10 s min_rtt filter, and PROBE_RTT when it expires (``bbr_update_min_rtt``)."""
    bbr: Bbr = sk.ca_priv
    now = _jiffies(sk)
    filter_expired = _s32(now - ((bbr.min_rtt_stamp + bbr_min_rtt_win_sec * HZ) & _M32)) > 0
    if rs.rtt_us >= 0 and (rs.rtt_us < bbr.min_rtt_us
                           or (filter_expired and not rs.is_ack_delayed)):
        bbr.min_rtt_us = rs.rtt_us
        bbr.min_rtt_stamp = now
    if (bbr_probe_rtt_mode_ms > 0 and filter_expired and not bbr.idle_restart
            and bbr.mode != BBR_PROBE_RTT):
        bbr.mode = BBR_PROBE_RTT
        bbr_save_cwnd(sk)
        bbr.probe_rtt_done_stamp = 0
    if bbr.mode == BBR_PROBE_RTT:
        in_flight = sk.tcp_packets_in_flight()
        sk.app_limited = (sk.delivered + in_flight) or 1        # ignore low-rate samples
        if not bbr.probe_rtt_done_stamp and in_flight <= bbr_cwnd_min_target:
            bbr.probe_rtt_done_stamp = (now + bbr_probe_rtt_mode_ms) & _M32   # msecs_to_jiffies
            bbr.probe_rtt_round_done = 0
            bbr.next_rtt_delivered = sk.delivered
        elif bbr.probe_rtt_done_stamp:
            if bbr.round_start:
                bbr.probe_rtt_round_done = 1
            if bbr.probe_rtt_round_done:
                bbr_check_probe_rtt_done(sk)
    if rs.delivered > 0:
        bbr.idle_restart = 0


def bbr_update_gains(sk: TcpSock) -> None:
    bbr: Bbr = sk.ca_priv
    mode = bbr.mode
    if mode == BBR_STARTUP:
        bbr.pacing_gain = bbr_high_gain
        bbr.cwnd_gain = bbr_high_gain
    elif mode == BBR_DRAIN:
        bbr.pacing_gain = bbr_drain_gain
        bbr.cwnd_gain = bbr_high_gain
    elif mode == BBR_PROBE_BW:
        bbr.pacing_gain = BBR_UNIT if bbr.lt_use_bw else bbr_pacing_gain[bbr.cycle_idx]
        bbr.cwnd_gain = bbr_cwnd_gain
    else:
        bbr.pacing_gain = BBR_UNIT
        bbr.cwnd_gain = BBR_UNIT


def bbr_update_model(sk: TcpSock, rs: RateSample) -> None:
    bbr_update_bw(sk, rs)
    bbr_update_ack_aggregation(sk, rs)
    bbr_update_cycle_phase(sk, rs)
    bbr_check_full_bw_reached(sk, rs)
    bbr_check_drain(sk, rs)
    bbr_update_min_rtt(sk, rs)
    bbr_update_gains(sk)


def bbr_main(sk: TcpSock, ack: int, flag: int, rs: RateSample) -> None:
    """``.cong_control``: update the model, then pacing rate and cwnd (``bbr_main``)."""
    bbr_update_model(sk, rs)
    bw = bbr_bw(sk)
    bbr = sk.ca_priv
    bbr_set_pacing_rate(sk, bw, bbr.pacing_gain)
    bbr_set_cwnd(sk, rs, rs.acked_sacked, bw, bbr.cwnd_gain)


def bbr_init(sk: TcpSock) -> None:
    """Fresh state in STARTUP, pacing from the initial window, pacing switched on (``bbr_init``)."""
    bbr = sk.ca_priv = Bbr()
    bbr.prior_cwnd = 0
    sk.snd_ssthresh = TCP_INFINITE_SSTHRESH
    bbr.rtt_cnt = 0
    bbr.next_rtt_delivered = sk.delivered
    bbr.prev_ca_state = TCP_CA_Open
    bbr.packet_conservation = 0
    bbr.probe_rtt_done_stamp = 0
    bbr.probe_rtt_round_done = 0
    bbr.min_rtt_us = sk.min_rtt_us if sk.min_rtt_us else _M32       # tcp_min_rtt
    bbr.min_rtt_stamp = _jiffies(sk)
    bbr.bw.reset(bbr.rtt_cnt, 0)
    bbr.has_seen_rtt = 0
    bbr_init_pacing_rate_from_rtt(sk)
    bbr.round_start = bbr.idle_restart = 0
    bbr.full_bw_reached = bbr.full_bw = bbr.full_bw_cnt = 0
    bbr.cycle_mstamp = 0
    bbr.cycle_idx = 0
    bbr_reset_lt_bw_sampling(sk)
    bbr_reset_startup_mode(sk)
    bbr.ack_epoch_mstamp = sk.tcp_mstamp
    bbr.ack_epoch_acked = 0
    bbr.extra_acked_win_rtts = bbr.extra_acked_win_idx = 0
    bbr.extra_acked = [0, 0]
    if sk.sk_pacing_status == SK_PACING_NONE:
        sk.sk_pacing_status = SK_PACING_NEEDED


def bbr_undo_cwnd(sk: TcpSock) -> int:
    """Spurious loss: restart full-pipe detection and policer sampling (``bbr_undo_cwnd``)."""
    bbr: Bbr = sk.ca_priv
    bbr.full_bw = 0
    bbr.full_bw_cnt = 0
    bbr_reset_lt_bw_sampling(sk)
    return sk.snd_cwnd


def bbr_ssthresh(sk: TcpSock) -> int:
    """Entering recovery: save cwnd; ssthresh unchanged (``bbr_ssthresh``)."""
    bbr_save_cwnd(sk)
    return sk.snd_ssthresh


def bbr_set_state(sk: TcpSock, new_state: int) -> None:
    """An RTO ends a round and counts as a loss for policer detection (``bbr_set_state``)."""
    if new_state == TCP_CA_Loss:
        from ..rate import RateSample

        bbr: Bbr = sk.ca_priv
        rs = RateSample()
        rs.losses = 1
        bbr.prev_ca_state = TCP_CA_Loss
        bbr.full_bw = 0
        bbr.round_start = 1
        bbr_lt_bw_sampling(sk, rs)


def bbr_get_info(sk: TcpSock) -> dict[str, int]:
    """``struct tcp_bbr_info`` (``bbr_get_info``): bw in bytes/s, min_rtt in us, gains << 8."""
    bbr: Bbr = sk.ca_priv
    bw = bbr_bw(sk) * sk.mss_cache * USEC_PER_SEC >> BW_SCALE
    return {"bbr_bw_lo": bw & _M32, "bbr_bw_hi": bw >> 32, "bbr_min_rtt": bbr.min_rtt_us,
            "bbr_pacing_gain": bbr.pacing_gain, "bbr_cwnd_gain": bbr.cwnd_gain}


@tcp_register_congestion_control
class BbrOps(TcpCongestionOps):
    """``tcp_bbr_cong_ops``: cong_control instead of cong_avoid."""

    name = "bbr"

    def init(self, sk: TcpSock) -> None:
        bbr_init(sk)

    def cong_control(self, sk: TcpSock, ack: int, flag: int, rs: RateSample) -> None:
        bbr_main(sk, ack, flag, rs)

    def cong_avoid(self, sk: TcpSock, ack: int, acked: int) -> None:
        """Never called: tcp_cong_control uses cong_control."""

    def sndbuf_expand(self, sk: TcpSock) -> int:
        """3 * cwnd of send buffer: BBR may slow-start even in recovery (``bbr_sndbuf_expand``)."""
        return 3

    def undo_cwnd(self, sk: TcpSock) -> int:
        return bbr_undo_cwnd(sk)

    def cwnd_event(self, sk: TcpSock, event: int) -> None:
        bbr_cwnd_event(sk, event)

    def ssthresh(self, sk: TcpSock) -> int:
        return bbr_ssthresh(sk)

    def min_tso_segs(self, sk: TcpSock) -> int:
        return bbr_min_tso_segs(sk)

    def get_info(self, sk: TcpSock) -> dict[str, int]:
        return bbr_get_info(sk)

    def set_state(self, sk: TcpSock, new_state: int) -> None:
        bbr_set_state(sk, new_state)
