"""TCP CUBIC with HyStart, the Linux default (net/ipv4/tcp_cubic.c, Linux 6.x).

The window follows ``W(t) = C*(t-K)^3 + W_max`` after a loss (concave up to ``W_max`` at time
``K``, convex beyond it), is never slower than an emulated Reno flow (the "TCP friendly" region,
RFC 8312 4.2), and leaves slow start early when HyStart sees either a train of closely spaced
ACKs stretching past half the minimum RTT or an RTT that has grown by a clamped eighth of it.

Everything is the kernel's integer arithmetic: the cube root is the table-plus-one-Newton-step
approximation, the cubic term is scaled by ``2^BICTCP_HZ`` per second and computed against a
fixed 100 ms reference RTT (``cube_factor``, ``cube_rtt_scale``), and ``u32``/``s32``/``u64``
wrap-around is reproduced with masks where the kernel's types would wrap.

Time: where Linux reads ``tcp_jiffies32`` this module uses ``now_us() // 1000`` (HZ=1000, so
milliseconds); where it reads ``tp->tcp_mstamp`` (HyStart's clock) it uses ``now_us()``.

Tunables are module globals named as the kernel's module parameters
(``/sys/module/tcp_cubic/parameters/*``); like the kernel they are global, not per namespace, and
``beta_scale``/``cube_rtt_scale``/``cube_factor`` are computed once at load time
(``cubictcp_register``), so changing ``bic_scale`` or ``beta`` later does not change them.

Known differences from Linux:

- ``hystart_ack_delay`` needs ``sk_pacing_rate``/``sk_gso_max_size`` and the ACK-train threshold
  is halved only when ``sk_pacing_status`` is ``SK_PACING_NONE``. These are read with
  ``getattr`` (defaults: rate 0 → no cushion, status NONE) because TcpSock has no pacing yet.
  Linux always keeps a pacing rate, so its cushion is usually ``min(1 ms, 4*gso_max_size/rate)``.
- ``snd_cwnd_clamp`` is read with ``getattr`` (default ``0xFFFFFFFF``) and applied after
  ``tcp_slow_start``/``tcp_cong_avoid_ai``, which the kernel helpers do themselves.
- HyStart's MIB counters go to ``sk.net.mib`` when the namespace has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import (
    CA_EVENT_TX_START,
    TcpCongestionOps,
    tcp_cong_avoid_ai,
    tcp_is_cwnd_limited,
    tcp_register_congestion_control,
    tcp_slow_start,
)

if TYPE_CHECKING:
    from ..sock import TcpSock

TCP_CA_Loss = 4                    # icsk_ca_state (kept local: sock.py is not imported at runtime)
HZ = 1000                          # jiffies per second (tcp_jiffies32 = now_us // 1000)
USEC_PER_MSEC = 1000
USEC_PER_SEC = 1_000_000
SK_PACING_NONE = 0
SND_CWND_CLAMP_DEFAULT = 0xFFFFFFFF    # used when the socket has no snd_cwnd_clamp

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF

BICTCP_BETA_SCALE = 1024           # beta is in 1/1024ths
BICTCP_HZ = 10                     # time unit of the cubic function: 2^-10 s

HYSTART_ACK_TRAIN = 0x1
HYSTART_DELAY = 0x2
HYSTART_MIN_SAMPLES = 8            # RTT samples per round before the delay test
HYSTART_DELAY_MIN = 4000           # us
HYSTART_DELAY_MAX = 16000          # us

# ---- module parameters (defaults as in tcp_cubic.c) ----------------------------------------------
fast_convergence = 1
beta = 717                         # 717/1024 ~= 0.7
initial_ssthresh = 0
bic_scale = 41                     # C = bic_scale/1024*10 ~= 0.4
tcp_friendliness = 1
hystart = 1
hystart_detect = HYSTART_ACK_TRAIN | HYSTART_DELAY
hystart_low_window = 16
hystart_ack_delta_us = 2000

# precomputed at load time (cubictcp_register)
beta_scale = 0
cube_rtt_scale = 0
cube_factor = 0


def cubictcp_register() -> None:
    """Precompute the per-packet scale factors for a 100 ms reference RTT (``cubictcp_register``).

    ``beta_scale`` is the Reno-emulation slope 3(1-beta)/(1+beta) inverted and scaled by 8,
    ``cube_rtt_scale`` is 1024*C/rtt, and ``cube_factor`` is 2^(10+3*BICTCP_HZ)/(bic_scale*10), so
    that ``K = cubic_root(cube_factor * (W_max - cwnd))`` comes out in 2^-BICTCP_HZ seconds.
    """
    global beta_scale, cube_rtt_scale, cube_factor
    beta_scale = 8 * (BICTCP_BETA_SCALE + beta) // 3 // (BICTCP_BETA_SCALE - beta)
    cube_rtt_scale = bic_scale * 10
    cube_factor = (1 << (10 + 3 * BICTCP_HZ)) // (bic_scale * 10)


cubictcp_register()


def _s32(x: int) -> int:
    """The value of ``(s32)x`` for a difference of two u32 quantities."""
    return ((x + 0x80000000) & _M32) - 0x80000000


def _usecs_to_jiffies(us: int) -> int:
    """``usecs_to_jiffies`` at HZ=1000: round up to the millisecond."""
    return (us + USEC_PER_MSEC - 1) // USEC_PER_MSEC


class BicTcp:
    """Per-socket CUBIC state (``struct bictcp`` in ``icsk_ca_priv``); all fields start at 0."""

    __slots__ = (
        "cnt",               # increase cwnd by 1 after this many packets ACKed
        "last_max_cwnd",     # W_max: cwnd before the last reduction (fast-convergence adjusted)
        "last_cwnd",         # cwnd seen by the last full bictcp_update
        "last_time",         # jiffies of that update
        "bic_origin_point",  # origin of the cubic function (W_max, or cwnd if above it)
        "bic_K",             # time from epoch start to the origin, in 2^-BICTCP_HZ s
        "delay_min",         # minimum RTT seen, us
        "epoch_start",       # jiffies when this congestion-avoidance epoch began (0: none)
        "ack_cnt",           # packets ACKed, for Reno emulation
        "tcp_cwnd",          # the emulated Reno cwnd
        "sample_cnt",        # HyStart: RTT samples taken this round
        "found",             # HyStart: exit point found
        "round_start",       # HyStart: us when this round began
        "end_seq",           # HyStart: snd_nxt at round start; the round ends when it is ACKed
        "last_ack",          # HyStart: us of the last ACK close enough to be part of the train
        "curr_rtt",          # HyStart: minimum RTT of this round, us
    )

    def __init__(self) -> None:
        self.cnt = self.last_max_cwnd = self.last_cwnd = self.last_time = 0
        self.bic_origin_point = self.bic_K = self.delay_min = self.epoch_start = 0
        self.ack_cnt = self.tcp_cwnd = 0
        self.sample_cnt = self.found = 0
        self.round_start = self.end_seq = self.last_ack = self.curr_rtt = 0

    def __repr__(self) -> str:
        return "BicTcp(" + ", ".join(f"{n}={getattr(self, n)}" for n in self.__slots__) + ")"


def bictcp_reset(ca: BicTcp) -> None:
    """Clear the cubic state, keeping HyStart's round bookkeeping (``bictcp_reset``)."""
    ca.cnt = ca.last_max_cwnd = ca.last_cwnd = ca.last_time = 0
    ca.bic_origin_point = ca.bic_K = ca.delay_min = ca.epoch_start = 0
    ca.ack_cnt = ca.tcp_cwnd = 0
    ca.found = 0


def bictcp_clock_us(sk: TcpSock) -> int:
    """HyStart's clock: ``tp->tcp_mstamp`` as u32 microseconds (here: now)."""
    return sk.net.clock.now_us() & _M32


def tcp_jiffies32(sk: TcpSock) -> int:
    return (sk.net.clock.now_us() // USEC_PER_MSEC) & _M32


def bictcp_hystart_reset(sk: TcpSock) -> None:
    """Start a new HyStart round at snd_nxt (``bictcp_hystart_reset``)."""
    ca: BicTcp = sk.ca_priv
    ca.round_start = ca.last_ack = bictcp_clock_us(sk)
    ca.end_seq = sk.snd_nxt
    ca.curr_rtt = _M32
    ca.sample_cnt = 0


def cubic_root(a: int) -> int:
    """Approximate cube root of a u64, as the kernel computes it (``cubic_root``).

    A 64-entry table gives the cube root of the top bits (for a < 64 it is the answer, rounded
    to nearest); one Newton-Raphson step ``x' = (2x + a/(x*(x-1))) / 3`` refines it, the
    division by 3 done as ``*341 >> 10``. Average error about 0.2%.
    """
    b = a.bit_length()
    if b < 7:
        return (_CBRT_V[a] + 35) >> 6
    b = ((b * 84) >> 8) - 1
    shift = a >> (b * 3)
    x = (((_CBRT_V[shift] + 10) << b) & _M32) >> 6
    x = (2 * x + ((a // (x * (x - 1))) & _M32)) & _M32
    return ((x * 341) & _M32) >> 10


# v[i] = cbrt(i << 18) - 1 for i in 0..63, hand-refined in the kernel; cbrt(i) ~= (v[i] + 10) >> 6
_CBRT_V = (
    0, 54, 54, 54, 118, 118, 118, 118,
    123, 129, 134, 138, 143, 147, 151, 156,
    157, 161, 164, 168, 170, 173, 176, 179,
    181, 185, 187, 190, 192, 194, 197, 199,
    200, 202, 204, 206, 209, 211, 213, 215,
    217, 219, 221, 222, 224, 225, 227, 229,
    231, 232, 234, 236, 237, 239, 240, 242,
    244, 245, 246, 248, 250, 251, 252, 254,
)


def bictcp_update(ca: BicTcp, cwnd: int, acked: int, now: int) -> None:
    """Recompute ``ca.cnt``, the packets to ACK per cwnd increment (``bictcp_update``).

    ``now`` is ``tcp_jiffies32``. The target one ``delay_min`` ahead is the cubic curve
    ``origin ± cube_rtt_scale*|t-K|^3 >> 40``; ``cnt = cwnd / (target - cwnd)``, or ``100*cwnd``
    at or above target. Before the first loss the slope is at least 5% per RTT (cnt <= 20). In the
    TCP-friendly region the emulated Reno window (one packet per ``cwnd*beta_scale/8`` ACKed)
    caps cnt. cnt is never below 2 (at most 1.5x per RTT). The curve is re-evaluated at most
    once per jiffy and, while cwnd is unchanged, at most every HZ/32.
    """
    ca.ack_cnt = (ca.ack_cnt + acked) & _M32

    if ca.last_cwnd == cwnd and _s32(now - ca.last_time) <= HZ // 32:
        return

    if not (ca.epoch_start and now == ca.last_time):
        ca.last_cwnd = cwnd
        ca.last_time = now

        if ca.epoch_start == 0:
            ca.epoch_start = now           # record the beginning of an epoch
            ca.ack_cnt = acked             # start counting
            ca.tcp_cwnd = cwnd             # sync with cubic
            if ca.last_max_cwnd <= cwnd:
                ca.bic_K = 0
                ca.bic_origin_point = cwnd
            else:
                ca.bic_K = cubic_root((cube_factor * ((ca.last_max_cwnd - cwnd) & _M32)) & _M64)
                ca.bic_origin_point = ca.last_max_cwnd

        # t: time since epoch start plus one min RTT, in 2^-BICTCP_HZ s (u64 as the kernel's)
        t = _s32(now - ca.epoch_start) & _M64
        t = (t + _usecs_to_jiffies(ca.delay_min)) & _M64
        t = ((t << BICTCP_HZ) & _M64) // HZ

        offs = ca.bic_K - t if t < ca.bic_K else t - ca.bic_K
        # c/rtt * (t-K)^3
        delta = (((cube_rtt_scale * offs * offs * offs) & _M64) >> (10 + 3 * BICTCP_HZ)) & _M32
        if t < ca.bic_K:
            bic_target = (ca.bic_origin_point - delta) & _M32     # below origin
        else:
            bic_target = (ca.bic_origin_point + delta) & _M32     # above origin

        if bic_target > cwnd:
            ca.cnt = cwnd // (bic_target - cwnd)
        else:
            ca.cnt = (100 * cwnd) & _M32                          # very small increment

        # no loss seen yet: the available bandwidth is unknown, grow at least 5% per RTT
        if ca.last_max_cwnd == 0 and ca.cnt > 20:
            ca.cnt = 20

    # TCP friendly: never grow slower than Reno would
    if tcp_friendliness:
        delta = ((cwnd * beta_scale) & _M32) >> 3
        if delta and ca.ack_cnt > delta:       # (delta 0 would spin forever in the kernel)
            n = (ca.ack_cnt - 1) // delta      # the kernel's subtract loop, in one step
            ca.ack_cnt -= n * delta
            ca.tcp_cwnd = (ca.tcp_cwnd + n) & _M32
        if ca.tcp_cwnd > cwnd:                 # cubic is slower than Reno
            max_cnt = cwnd // (ca.tcp_cwnd - cwnd)
            if ca.cnt > max_cnt:
                ca.cnt = max_cnt

    # at most one packet per two ACKed: 1.5x per RTT
    if ca.cnt < 2:
        ca.cnt = 2


def hystart_ack_delay(sk: TcpSock) -> int:
    """Cushion for TSO/GRO aggregation in the ACK-train test, at most 1 ms (``hystart_ack_delay``)."""
    rate = getattr(sk, "sk_pacing_rate", 0)
    if not rate:
        return 0
    gso_max_size = getattr(sk, "sk_gso_max_size", 65536)
    return min(USEC_PER_MSEC, gso_max_size * 4 * USEC_PER_SEC // rate)


def _mib_add(sk: TcpSock, name: str, n: int) -> None:
    mib = getattr(sk.net, "mib", None)
    if mib is not None:
        mib[name] += n


def hystart_update(sk: TcpSock, delay: int) -> None:
    """Look for the slow-start exit point; on finding it, set ssthresh = cwnd (``hystart_update``).

    ACK train: ACKs arriving within ``hystart_ack_delta_us`` of each other extend the train;
    once the train spans more than ``delay_min/2`` (plus the aggregation cushion) since the
    round began, the pipe is full. Delay: after ``HYSTART_MIN_SAMPLES`` samples in a round, the
    round's minimum RTT exceeding ``delay_min + clamp(delay_min/8, 4 ms, 16 ms)``.
    """
    ca: BicTcp = sk.ca_priv

    if sk.snd_una > ca.end_seq:
        bictcp_hystart_reset(sk)

    if hystart_detect & HYSTART_ACK_TRAIN:
        now = bictcp_clock_us(sk)
        # first detection parameter - ack-train detection
        if _s32(now - ca.last_ack) <= hystart_ack_delta_us:
            ca.last_ack = now
            threshold = (ca.delay_min + hystart_ack_delay(sk)) & _M32
            # pacing may have spread the packets over up to RTT/2 during slow start
            if getattr(sk, "sk_pacing_status", SK_PACING_NONE) == SK_PACING_NONE:
                threshold >>= 1
            # (s32) compared with u32: C compares as unsigned
            if ((now - ca.round_start) & _M32) > threshold:
                ca.found = 1
                _mib_add(sk, "TcpExtTCPHystartTrainDetect", 1)
                _mib_add(sk, "TcpExtTCPHystartTrainCwnd", sk.snd_cwnd)
                sk.snd_ssthresh = sk.snd_cwnd

    if hystart_detect & HYSTART_DELAY:
        # obtain the minimum delay of more than sampling packets
        if ca.curr_rtt > delay:
            ca.curr_rtt = delay
        if ca.sample_cnt < HYSTART_MIN_SAMPLES:
            ca.sample_cnt += 1
        else:
            dthresh = min(max(ca.delay_min >> 3, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX)
            if ca.curr_rtt > ca.delay_min + dthresh:
                ca.found = 1
                _mib_add(sk, "TcpExtTCPHystartDelayDetect", 1)
                _mib_add(sk, "TcpExtTCPHystartDelayCwnd", sk.snd_cwnd)
                sk.snd_ssthresh = sk.snd_cwnd


# ---- tcp_congestion_ops callbacks ----------------------------------------------------------------

def cubictcp_init(sk: TcpSock) -> None:
    """Fresh zeroed state, a HyStart round from snd_nxt (``cubictcp_init``)."""
    sk.ca_priv = BicTcp()
    if hystart:
        bictcp_hystart_reset(sk)
    if not hystart and initial_ssthresh:
        sk.snd_ssthresh = initial_ssthresh


def cubictcp_cwnd_event(sk: TcpSock, event: int) -> None:
    """After an idle period, shift the epoch so the curve resumes where it was (``cubictcp_cwnd_event``).

    On CA_EVENT_TX_START (first transmission with nothing in flight), ``epoch_start`` moves later
    by the time since the last send, but never past now. ``sk.lsndtime`` is in microseconds here.
    """
    if event == CA_EVENT_TX_START:
        ca: BicTcp = sk.ca_priv
        now = tcp_jiffies32(sk)
        delta = _s32(now - ((sk.lsndtime // USEC_PER_MSEC) & _M32))
        if ca.epoch_start and delta > 0:
            ca.epoch_start = (ca.epoch_start + delta) & _M32
            if _s32(ca.epoch_start - now) > 0:        # after(epoch_start, now)
                ca.epoch_start = now


def cubictcp_recalc_ssthresh(sk: TcpSock) -> int:
    """End the epoch, remember W_max, return cwnd*beta (``cubictcp_recalc_ssthresh``).

    Fast convergence: if this loss came below the previous W_max the flow is probably losing
    share to a newcomer, so W_max is set lower, to ``cwnd*(1+beta)/2``, to release bandwidth.
    """
    ca: BicTcp = sk.ca_priv
    cwnd = sk.snd_cwnd
    ca.epoch_start = 0                 # end of epoch
    if cwnd < ca.last_max_cwnd and fast_convergence:
        ca.last_max_cwnd = ((cwnd * (BICTCP_BETA_SCALE + beta)) & _M32) // (2 * BICTCP_BETA_SCALE)
    else:
        ca.last_max_cwnd = cwnd
    return max(((cwnd * beta) & _M32) // BICTCP_BETA_SCALE, 2)


def cubictcp_state(sk: TcpSock, new_state: int) -> None:
    """An RTO (TCP_CA_Loss) forgets the curve and starts a new HyStart round (``cubictcp_state``)."""
    if new_state == TCP_CA_Loss:
        bictcp_reset(sk.ca_priv)
        bictcp_hystart_reset(sk)


def cubictcp_acked(sk: TcpSock, acked: int, rtt_us: int) -> None:
    """Track the minimum RTT and run HyStart in slow start (``cubictcp_acked``).

    Samples within a second of an epoch start (just after recovery) are discarded.
    """
    if rtt_us < 0:                     # no timing for this ACK
        return
    ca: BicTcp = sk.ca_priv
    if ca.epoch_start and _s32(tcp_jiffies32(sk) - ca.epoch_start) < HZ:
        return
    delay = rtt_us & _M32
    if delay == 0:
        delay = 1
    # first time call or link delay decreases
    if ca.delay_min == 0 or ca.delay_min > delay:
        ca.delay_min = delay
    # hystart triggers when cwnd is larger than some threshold
    if (not ca.found and sk.snd_cwnd < sk.snd_ssthresh and hystart
            and sk.snd_cwnd >= hystart_low_window):
        hystart_update(sk, delay)


def cubictcp_cong_avoid(sk: TcpSock, ack: int, acked: int) -> None:
    """Slow start below ssthresh, then follow the cubic curve (``cubictcp_cong_avoid``)."""
    if not tcp_is_cwnd_limited(sk):
        return
    clamp = getattr(sk, "snd_cwnd_clamp", SND_CWND_CLAMP_DEFAULT)
    if sk.snd_cwnd < sk.snd_ssthresh:
        acked = tcp_slow_start(sk, acked)
        if sk.snd_cwnd > clamp:
            sk.snd_cwnd = clamp
        if not acked:
            return
    ca: BicTcp = sk.ca_priv
    bictcp_update(ca, sk.snd_cwnd, acked, tcp_jiffies32(sk))
    tcp_cong_avoid_ai(sk, ca.cnt, acked)
    if sk.snd_cwnd > clamp:
        sk.snd_cwnd = clamp


@tcp_register_congestion_control
class Cubic(TcpCongestionOps):
    """CUBIC (``cubictcp`` ops); ``undo_cwnd`` is Reno's, inherited from the base class."""

    name = "cubic"

    def init(self, sk: TcpSock) -> None:
        cubictcp_init(sk)

    def ssthresh(self, sk: TcpSock) -> int:
        return cubictcp_recalc_ssthresh(sk)

    def cong_avoid(self, sk: TcpSock, ack: int, acked: int) -> None:
        cubictcp_cong_avoid(sk, ack, acked)

    def set_state(self, sk: TcpSock, new_state: int) -> None:
        cubictcp_state(sk, new_state)

    def cwnd_event(self, sk: TcpSock, event: int) -> None:
        cubictcp_cwnd_event(sk, event)

    def pkts_acked(self, sk: TcpSock, acked: int, rtt_us: int) -> None:
        cubictcp_acked(sk, acked, rtt_us)
