"""Pipe / Link: exact timing on the virtual clock, queueing, impairments, reproducibility."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpdive.sim.link import Link, Pipe
from tcpdive.sim.loop import VirtualTimeLoop


@pytest.fixture
def loop():
    lp = VirtualTimeLoop()
    yield lp
    lp.close()


class Sink:
    """Records (arrival time in us, packet)."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop
        self.got: list[tuple[int, bytes]] = []

    def __call__(self, pkt: bytes) -> None:
        self.got.append((self.loop.now_us(), pkt))

    @property
    def times(self) -> list[int]:
        return [t for t, _ in self.got]

    @property
    def pkts(self) -> list[bytes]:
        return [p for _, p in self.got]


def pkt(i: int, size: int = 100) -> bytes:
    return i.to_bytes(4, "big") + bytes(size - 4)


def conserved(p: Pipe) -> bool:
    lost = p.dropped_filter + p.dropped_queue + p.dropped_loss
    return p.delivered == p.sent - lost + p.duplicated


# ---------------------------------------------------------------------------------- timing


def test_delay_only(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.025)
    loop.call_at_us(1000, p.send, pkt(0))
    loop.call_at_us(1000, p.send, pkt(1))
    loop.call_at_us(3000, p.send, pkt(2))
    loop.run_until_idle()
    assert sink.got == [(26_000, pkt(0)), (26_000, pkt(1)), (28_000, pkt(2))]
    assert (p.sent, p.delivered, p.bytes, p.bytes_delivered) == (3, 3, 300, 300)


def test_serialization_then_propagation(loop):
    sink = Sink(loop)
    # 10 Mbit/s: 1250 bytes take exactly 1 ms on the wire; 10 ms propagation
    p = Pipe(loop, sink, delay=0.010, rate_bps=10e6)
    for i in range(4):
        assert p.send(pkt(i, 1250))
    assert p.backlog() == (4, 5000)
    loop.run_until_idle()
    assert sink.times == [11_000, 12_000, 13_000, 14_000]
    assert sink.pkts == [pkt(i, 1250) for i in range(4)]
    assert p.backlog() == (0, 0)


def test_mixed_sizes_and_idle_wire(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.001, rate_bps=8e6)  # 1 byte per microsecond
    p.send(pkt(0, 500))  # wire 0..500
    p.send(pkt(1, 100))  # wire 500..600
    loop.call_at_us(2000, p.send, pkt(2, 40))  # wire idle again: 2000..2040
    loop.run_until_idle()
    assert sink.times == [1500, 1600, 3040]


def test_fractional_serialization_does_not_drift(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, rate_bps=3e6, queue_limit=10_000)  # 1000 B -> 2666.67 us each
    for i in range(3000):
        p.send(pkt(i, 1000))
    loop.run_until_idle()
    assert sink.times[:3] == [2667, 5333, 8000]
    assert sink.times[-1] == 8_000_000  # 3000 * 8000 bits / 3 Mbit/s exactly


def test_rate_change_mid_run(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, rate_bps=8e6)
    p.send(pkt(0, 1000))  # 1000 us at 8 Mbit/s
    p.rate_bps = 16e6
    p.send(pkt(1, 1000))  # queued behind, 500 us at the new rate
    loop.run_until_idle()
    assert sink.times == [1000, 1500]


def test_fifo_order_many_packets(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.003, rate_bps=1e9, queue_limit=100_000)
    for i in range(5000):
        p.send(pkt(i))
    loop.run_until_idle()
    assert sink.pkts == [pkt(i) for i in range(5000)]
    assert sink.times == sorted(sink.times)


# ------------------------------------------------------------------------------------ queue


def test_drop_tail_queue_limit(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, rate_bps=8e6, queue_limit=5)  # 100 B = 100 us each
    accepted = [p.send(pkt(i)) for i in range(10)]
    assert accepted == [True] * 5 + [False] * 5
    assert p.dropped_queue == 5
    loop.run_until_time(250)  # two packets have left the wire: room for two more
    assert [p.send(pkt(i)) for i in range(10, 13)] == [True, True, False]
    loop.run_until_idle()
    assert sink.pkts == [pkt(i) for i in (0, 1, 2, 3, 4, 10, 11)]
    assert sink.times == [100, 200, 300, 400, 500, 600, 700]
    assert p.dropped_queue == 6
    assert conserved(p)


def test_byte_queue_limit(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, rate_bps=8e6, queue_limit_bytes=1000)
    assert p.send(pkt(0, 600))
    assert not p.send(pkt(1, 500))  # 1100 > 1000
    assert p.send(pkt(2, 400))  # exactly 1000
    assert not p.send(b"x")
    loop.run_until_idle()
    assert sink.pkts == [pkt(0, 600), pkt(2, 400)]
    assert p.dropped_queue == 2


def test_infinite_rate_never_queues(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, queue_limit=1)
    assert all(p.send(pkt(i)) for i in range(100))
    loop.run_until_idle()
    assert len(sink.got) == 100 and set(sink.times) == {0}


# ------------------------------------------------------------------------------ impairments


def _run_lossy(seed: int, n: int = 10_000, **params) -> tuple[Pipe, Sink]:
    lp = VirtualTimeLoop()
    try:
        sink = Sink(lp)
        p = Pipe(
            lp, sink, delay=0.001, rate_bps=1e8, queue_limit=n, rng=random.Random(seed), **params
        )
        for i in range(n):
            p.send(pkt(i))
        lp.run_until_idle()
        return p, sink
    finally:
        lp.close()


def test_loss_fraction_within_bounds():
    p, sink = _run_lossy(7, loss=0.1)
    # binomial(10000, 0.1): sd = 30; allow 5 sd
    assert 850 <= p.dropped_loss <= 1150
    assert p.delivered == len(sink.got) == 10_000 - p.dropped_loss
    assert conserved(p)


def test_same_seed_is_bit_exact_and_other_seed_differs():
    params = dict(loss=0.05, duplicate=0.02, corrupt=0.02, reorder=0.03, jitter=0.0002)
    p1, s1 = _run_lossy(42, n=3000, **params)
    p2, s2 = _run_lossy(42, n=3000, **params)
    p3, s3 = _run_lossy(43, n=3000, **params)
    assert s1.got == s2.got
    assert p1.counters() == p2.counters()
    assert s3.got != s1.got
    assert conserved(p1) and conserved(p3)


def test_lost_packets_still_use_the_wire(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, rate_bps=8e6, loss=1.0)
    p.send(pkt(0))
    p.loss = 0.0
    p.send(pkt(1))
    loop.run_until_idle()
    assert sink.got == [(200, pkt(1))]
    assert p.dropped_loss == 1


def test_duplicate_delivers_twice_at_same_time(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.002, duplicate=1.0)
    p.send(pkt(0))
    p.send(pkt(1))
    loop.run_until_idle()
    assert sink.got == [(2000, pkt(0)), (2000, pkt(0)), (2000, pkt(1)), (2000, pkt(1))]
    assert (p.duplicated, p.delivered) == (2, 4)


def test_corrupt_flips_exactly_one_bit_of_a_copy(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, corrupt=1.0, rng=random.Random(5))
    originals = [bytes(range(i, i + 64)) for i in range(50)]
    keep = list(originals)
    for o in originals:
        p.send(o)
    loop.run_until_idle()
    assert originals == keep
    assert p.corrupted == 50
    for o, (_, got) in zip(originals, sink.got, strict=True):
        diff = int.from_bytes(o, "big") ^ int.from_bytes(got, "big")
        assert len(got) == len(o) and diff.bit_count() == 1


def test_caller_buffer_is_snapshotted(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.001, corrupt=0.0)
    buf = bytearray(b"hello")
    p.send(buf)
    buf[0] = ord("J")
    loop.run_until_idle()
    assert sink.pkts == [b"hello"]
    assert type(sink.pkts[0]) is bytes


def test_empty_packet_passes_corruption_untouched(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, corrupt=1.0)
    p.send(b"")
    loop.run_until_idle()
    assert sink.pkts == [b""] and p.corrupted == 0


def test_reorder_holds_packet_back(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.005, rate_bps=8e6, reorder_delay=0.002)
    p.reorder = 1.0
    p.send(pkt(0))  # wire done 100, arrives 5100 + 2000
    p.reorder = 0.0
    for i in range(1, 4):
        p.send(pkt(i))  # arrive 5200, 5300, 5400
    loop.run_until_idle()
    assert sink.got == [(5200, pkt(1)), (5300, pkt(2)), (5400, pkt(3)), (7100, pkt(0))]
    assert p.reordered == 1


def test_reorder_fraction_reorders_some_packets():
    p, sink = _run_lossy(3, n=2000, reorder=0.1, reorder_delay=0.0005)
    seq = [int.from_bytes(x[:4], "big") for x in sink.pkts]
    assert sorted(seq) == list(range(2000))
    assert seq != list(range(2000))
    assert 120 <= p.reordered <= 280


def test_jitter_stays_within_bounds(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.010, jitter=0.001, rng=random.Random(9))
    for i in range(2000):
        p.send(pkt(i))
    loop.run_until_idle()
    assert all(9_000 <= t <= 11_000 for t in sink.times)
    assert len(set(sink.times)) > 100


def test_jitter_larger_than_delay_is_clamped(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.0005, jitter=0.002, rng=random.Random(1))
    loop.run_for(1)
    for i in range(500):
        p.send(pkt(i))
    loop.run_until_idle()
    assert min(sink.times) == 1_000_000  # never delivered before it was sent
    assert max(sink.times) <= 1_002_500


# ------------------------------------------------------------------------ filter / runtime


def test_filter_drops_like_a_firewall_rule(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.001, filter=lambda b: b[3] % 2 == 0)
    results = [p.send(pkt(i)) for i in range(6)]
    assert results == [True, False] * 3
    p.filter = None
    p.send(pkt(7))
    loop.run_until_idle()
    assert sink.pkts == [pkt(0), pkt(2), pkt(4), pkt(7)]
    assert p.dropped_filter == 3
    assert conserved(p)


def test_loss_switched_on_mid_run(loop):
    sink = Sink(loop)
    p = Pipe(loop, sink, delay=0.001)

    def tick(i):
        p.send(pkt(i))
        if i < 19:
            loop.call_at_us(loop.now_us() + 1000, tick, i + 1)

    loop.call_at_us(0, tick, 0)
    loop.call_at_us(9_500, setattr, p, "loss", 1.0)
    loop.run_until_idle()
    assert sink.pkts == [pkt(i) for i in range(10)]
    assert p.dropped_loss == 10


def test_parameter_validation(loop):
    with pytest.raises(ValueError):
        Pipe(loop, print, loss=1.5)
    with pytest.raises(ValueError):
        Pipe(loop, print, rate_bps=0)
    with pytest.raises(ValueError):
        Pipe(loop, print, delay=-1)
    p = Pipe(loop, print)
    with pytest.raises(TypeError):
        p.set(los=0.1)
    with pytest.raises(ValueError):
        p.duplicate = -0.1
    p.set(delay=0.5, loss=0.25, queue_limit=3, rate_bps=None)
    assert (p.delay, p.loss, p.queue_limit, p.rate_bps) == (0.5, 0.25, 3, None)


def test_counters_and_reset(loop):
    p = Pipe(loop, lambda b: None, duplicate=1.0)
    p.send(b"abc")
    loop.run_until_idle()
    c = p.counters()
    assert c["sent"] == 1 and c["delivered"] == 2 and c["bytes"] == 3
    assert c["bytes_delivered"] == 6 and c["duplicated"] == 1
    p.reset_counters()
    assert set(p.counters().values()) == {0}


# ------------------------------------------------------------------------------------- Link


def test_link_directions_and_overrides(loop):
    at_a, at_b = Sink(loop), Sink(loop)
    link = Link(loop, at_a, at_b, delay=0.010, ba_params={"delay": 0.020})
    link.send_from_a(b"to-b")
    link.ba.send(b"to-a")
    loop.run_until_idle()
    assert at_b.got == [(10_000, b"to-b")]
    assert at_a.got == [(20_000, b"to-a")]
    link.set(loss=1.0)
    link.send_from_a(b"x")
    link.send_from_b(b"y")
    loop.run_until_idle()
    assert link.ab.dropped_loss == link.ba.dropped_loss == 1


def test_link_directions_have_independent_randomness():
    def run(extra_ba: int) -> list[bytes]:
        lp = VirtualTimeLoop()
        try:
            at_b = Sink(lp)
            link = Link(lp, lambda b: None, at_b, loss=0.3)
            for i in range(extra_ba):
                link.send_from_b(pkt(i))
            for i in range(300):
                link.send_from_a(pkt(i))
            lp.run_until_idle()
            return at_b.pkts
        finally:
            lp.close()

    assert run(0) == run(50)


# --------------------------------------------------------------------------------- real loop


def test_pipe_runs_on_a_plain_asyncio_loop():
    got = []

    async def main():
        lp = asyncio.get_running_loop()
        p = Pipe(lp, lambda b: got.append((lp.time(), b)), delay=0.02, rate_bps=1e9)
        t0 = lp.time()
        for i in range(3):
            p.send(pkt(i))
        await asyncio.sleep(0.1)
        return t0

    t0 = asyncio.run(main())
    assert [b for _, b in got] == [pkt(i) for i in range(3)]
    assert all(t - t0 >= 0.019 for t, _ in got)


# ------------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(
    sends=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 1500)), max_size=40),
    rate=st.sampled_from([1e6, 8e6, 1e7, 1e9]),
    delay_us=st.integers(0, 50_000),
    qlimit=st.integers(1, 8),
)
def test_timing_matches_reference_model(sends, rate, delay_us, qlimit):
    """Without impairments, each packet leaves the wire at max(send, previous done) + size*8/rate
    and arrives delay later; drop-tail when qlimit packets are still on/awaiting the wire."""
    lp = VirtualTimeLoop()
    try:
        sink = Sink(lp)
        p = Pipe(lp, sink, delay=delay_us / 1e6, rate_bps=rate, queue_limit=qlimit)
        plan = sorted((t, i, size) for i, (t, size) in enumerate(sends))
        for t, i, size in plan:
            lp.call_at_us(t, p.send, pkt(i, max(size, 4)))
        lp.run_until_idle()

        expected, done_times, free = [], [], 0.0
        for t, i, size in plan:
            size = max(size, 4)
            done_times = [d for d in done_times if d > t]
            if len(done_times) >= qlimit:
                continue
            free = max(free, t) + size * 8e6 / rate
            done_times.append(free)
            expected.append((round(free + delay_us), pkt(i, size)))
        assert sink.got == expected
        assert conserved(p)
    finally:
        lp.close()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0, 1),
    dup=st.floats(0, 1),
    reorder=st.floats(0, 1),
    corrupt=st.floats(0, 1),
)
def test_counters_always_conserve_packets(seed, loss, dup, reorder, corrupt):
    p, sink = _run_lossy(
        seed, n=200, loss=loss, duplicate=dup, reorder=reorder, corrupt=corrupt, jitter=0.0001
    )
    assert conserved(p)
    assert len(sink.got) == p.delivered
    assert sink.times == sorted(sink.times)
