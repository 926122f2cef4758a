"""VirtualTimeLoop: virtual clock, deterministic ordering, asyncio compatibility, KTimer driving."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpdive.ktime import KTimer
from tcpdive.sim.loop import LoopIdleError, VirtualTimeLoop


@pytest.fixture
def loop():
    lp = VirtualTimeLoop()
    yield lp
    lp.close()


# ------------------------------------------------------------------------------------- clock


def test_clock_starts_at_start_us_and_time_is_seconds():
    lp = VirtualTimeLoop(start_us=1_500_000)
    try:
        assert lp.now_us() == 1_500_000
        assert lp.time() == 1.5
    finally:
        lp.close()


def test_two_hour_sleep_is_exact(loop):
    async def main():
        await asyncio.sleep(7200)
        return loop.now_us()

    assert loop.run(main()) == 7_200_000_000
    assert loop.time() == 7200.0


def test_call_at_rounds_to_nearest_microsecond(loop):
    seen = []
    loop.call_at(1.0000004, lambda: seen.append(("a", loop.now_us())))
    loop.call_at(1.0000006, lambda: seen.append(("b", loop.now_us())))
    loop.call_later(0.0000024, lambda: seen.append(("c", loop.now_us())))
    h = loop.call_at(2.5, lambda: None)
    assert h.when() == 2.5
    loop.run_until_idle()
    assert seen == [("c", 2), ("a", 1_000_000), ("b", 1_000_001)]


def test_call_later_is_exact_after_many_steps(loop):
    # 0.1 s steps accumulate no float error: the clock is integer microseconds
    async def main():
        for _ in range(1000):
            await asyncio.sleep(0.1)

    loop.run(main())
    assert loop.now_us() == 100_000_000


def test_past_deadline_runs_now_and_clock_never_goes_back(loop):
    loop.run_for(5)
    seen = []
    loop.call_at(1.0, lambda: seen.append(loop.now_us()))
    loop.call_at_us(2, lambda: seen.append(loop.now_us()))
    loop.run_until_idle()
    assert seen == [5_000_000, 5_000_000]
    assert loop.now_us() == 5_000_000


# ----------------------------------------------------------------------------------- ordering


def test_same_time_callbacks_run_fifo(loop):
    seen = []
    for i in range(20):
        if i % 3 == 0:
            loop.call_at_us(1000, seen.append, i)
        elif i % 3 == 1:
            loop.call_at(0.001, seen.append, i)
        else:
            loop.arm(_Recorder(seen, i), 1000)
    loop.run_until_idle()
    assert seen == list(range(20))


class _Recorder:
    """A minimal KTimer-shaped object for arm() ordering tests."""

    __slots__ = ("seen", "tag", "pending", "expires")

    def __init__(self, seen: list, tag: object) -> None:
        self.seen = seen
        self.tag = tag
        self.pending = True
        self.expires = 0

    def run(self, when: int) -> None:
        self.seen.append(self.tag)


def test_call_soon_runs_before_time_advances(loop):
    seen = []

    def at_1ms():
        seen.append(("t1", loop.now_us()))
        loop.call_soon(lambda: seen.append(("soon", loop.now_us())))

    loop.call_at_us(1000, at_1ms)
    loop.call_at_us(2000, lambda: seen.append(("t2", loop.now_us())))
    loop.call_soon(lambda: seen.append(("first", loop.now_us())))
    loop.run_until_idle()
    assert seen == [("first", 0), ("t1", 1000), ("soon", 1000), ("t2", 2000)]


def test_asyncio_batch_order_at_one_instant(loop):
    """Timers due together run before what they call_soon; a timer they add for the same instant
    runs after those call_soon callbacks (asyncio's iteration order)."""
    seen = []

    def a():
        seen.append("A")
        loop.call_soon(seen.append, "C")
        loop.call_at_us(loop.now_us(), seen.append, "D")

    loop.call_at_us(10, a)
    loop.call_at_us(10, seen.append, "B")
    loop.run_until_idle()
    assert seen == ["A", "B", "C", "D"]


def test_same_instant_timer_does_not_starve_behind_busy_task(loop):
    """A coroutine spinning on sleep(0) keeps the ready queue busy; a timer due now still runs."""
    flag = []

    async def spin():
        n = 0
        while not flag:
            n += 1
            await asyncio.sleep(0)
        return n

    loop.call_at_us(0, flag.append, 1)
    assert loop.run(spin()) >= 1
    assert loop.now_us() == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["us", "at", "arm"])), max_size=60))
def test_execution_order_is_time_then_schedule_order(plan):
    lp = VirtualTimeLoop()
    try:
        seen = []
        for i, (t, kind) in enumerate(plan):
            if kind == "us":
                lp.call_at_us(t, seen.append, i)
            elif kind == "at":
                lp.call_at(t / 1e6, seen.append, i)
            else:
                lp.arm(_Recorder(seen, i), t)
        assert lp.run_until_idle()
        expected = [i for i, _ in sorted(enumerate(plan), key=lambda x: (x[1][0], x[0]))]
        assert seen == expected
        assert lp.now_us() == (max(t for t, _ in plan) if plan else 0)
    finally:
        lp.close()


# ------------------------------------------------------------------------------ run_* helpers


def test_run_until_time_is_inclusive_and_sets_clock(loop):
    seen = []
    for t in (100, 200, 300):
        loop.call_at_us(t, seen.append, t)
    loop.run_until_time(200)
    assert seen == [100, 200]
    assert loop.now_us() == 200
    loop.run_until_time(250)
    assert seen == [100, 200]
    assert loop.now_us() == 250
    loop.run_for(0.00005)
    assert seen == [100, 200, 300]
    assert loop.now_us() == 300
    loop.run_for_us(7)
    assert loop.now_us() == 307


def test_run_until_time_in_the_past_runs_only_due_work(loop):
    loop.run_for(1)
    seen = []
    loop.call_soon(seen.append, "soon")
    loop.call_at_us(2_000_000, seen.append, "later")
    loop.run_until_time(10)
    assert seen == ["soon"]
    assert loop.now_us() == 1_000_000


def test_run_until_idle_returns_true_and_leaves_clock_at_last_event(loop):
    loop.call_at_us(1234, lambda: None)
    assert loop.run_until_idle() is True
    assert loop.now_us() == 1234
    assert loop.run_until_idle() is True  # nothing to do: no-op
    assert loop.now_us() == 1234


def test_run_until_idle_bound_stops_runaway_timer(loop):
    ticks = []

    def tick():
        ticks.append(loop.now_us())
        loop.call_at_us(loop.now_us() + 1000, tick)

    loop.call_at_us(0, tick)
    assert loop.run_until_idle(max_time_us=10_500) is False
    assert ticks == list(range(0, 10_001, 1000))
    assert loop.now_us() == 10_500


def test_stop_from_timer_stops_run_forever(loop):
    seen = []
    loop.call_at_us(10, seen.append, 1)
    loop.call_at_us(20, loop.stop)
    loop.call_at_us(30, seen.append, 3)
    loop.run_forever()
    assert seen == [1]
    assert loop.now_us() == 20
    loop.run_until_idle()
    assert seen == [1, 3]


def test_run_forever_raises_when_idle(loop):
    loop.call_at_us(5, lambda: None)
    with pytest.raises(LoopIdleError):
        loop.run_forever()
    assert loop.now_us() == 5
    assert not loop.is_running()


def test_deadlock_is_reported_not_hung(loop):
    async def main():
        await asyncio.Event().wait()

    with pytest.raises(LoopIdleError, match="deadlock"):
        loop.run(main())


def test_loop_is_reusable_and_time_persists(loop):
    async def nap(s):
        await asyncio.sleep(s)
        return loop.time()

    assert loop.run(nap(1)) == 1.0
    assert loop.run(nap(2)) == 3.0
    loop.run_for(0.5)
    assert loop.run(nap(0)) == 3.5


def test_asyncio_runner_with_loop_factory():
    async def main():
        await asyncio.sleep(60)
        return asyncio.get_running_loop().time()

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(main()) == 60.0


def test_shutdown_cancels_background_tasks(loop):
    cancelled = []

    async def server():
        try:
            await asyncio.sleep(10**6)
        except asyncio.CancelledError:
            cancelled.append(loop.now_us())
            raise

    async def main():
        loop.create_task(server())
        await asyncio.sleep(1)

    loop.run(main())
    loop.shutdown()
    assert cancelled == [1_000_000]
    assert loop.run_until_idle()


# -------------------------------------------------------------------------- asyncio features


def test_wait_for_times_out_at_exact_virtual_time(loop):
    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), timeout=2.5)
        return loop.now_us()

    assert loop.run(main()) == 2_500_000


def test_asyncio_timeout_context_manager(loop):
    async def main():
        t0 = loop.now_us()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.75):
                await asyncio.sleep(3600)
        t1 = loop.now_us()
        async with asyncio.timeout(5):
            await asyncio.sleep(1)
        return t0, t1, loop.now_us()

    assert loop.run(main()) == (0, 750_000, 1_750_000)


def test_cancelled_timeout_does_not_advance_clock(loop):
    async def main():
        await asyncio.wait_for(asyncio.sleep(1), timeout=3600)

    loop.run(main())
    assert loop.run_until_idle()
    assert loop.now_us() == 1_000_000


def test_gather_finishes_at_the_longest(loop):
    async def nap(s, tag):
        await asyncio.sleep(s)
        return tag, loop.now_us()

    async def main():
        return await asyncio.gather(nap(3, "a"), nap(1, "b"), nap(2, "c"))

    assert loop.run(main()) == [("a", 3_000_000), ("b", 1_000_000), ("c", 2_000_000)]


def test_event_and_queue(loop):
    log = []

    async def producer(q, ev):
        await ev.wait()
        for i in range(3):
            await asyncio.sleep(0.01)
            await q.put(i)
        await q.put(None)

    async def consumer(q):
        while (item := await q.get()) is not None:
            log.append((item, loop.now_us()))

    async def main():
        q: asyncio.Queue = asyncio.Queue(maxsize=1)
        ev = asyncio.Event()
        loop.call_later(1, ev.set)
        await asyncio.gather(producer(q, ev), consumer(q))

    loop.run(main())
    assert log == [(0, 1_010_000), (1, 1_020_000), (2, 1_030_000)]


def test_task_cancellation_and_futures(loop):
    async def main():
        fut = loop.create_future()
        loop.call_later(0.2, fut.set_result, "done")
        task = loop.create_task(asyncio.sleep(100))
        loop.call_later(0.1, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        t_cancel = loop.now_us()
        return t_cancel, await fut, loop.now_us()

    assert loop.run(main()) == (100_000, "done", 200_000)


def test_call_later_infinity_never_fires(loop):
    seen = []
    h = loop.call_later(float("inf"), seen.append, 1)
    loop.call_at_us(10, seen.append, 2)
    assert loop.run_until_idle()
    assert seen == [2]
    h.cancel()
    assert h.when() == float("inf")
    loop.call_later(float("-inf"), seen.append, 3)
    loop.run_until_idle()
    assert seen == [2, 3]
    assert loop.now_us() == 10
    with pytest.raises(ValueError):
        loop.call_at(float("nan"), seen.append, 4)


def test_many_cancelled_handles_are_purged(loop):
    handles = [loop.call_later(100 + i, lambda: None) for i in range(2000)]
    for h in handles:
        h.cancel()
    loop.call_later(1, lambda: None)
    loop.run_for(0.5)  # one iteration purges the cancelled majority
    assert loop.pending_count() == 1
    assert loop.run_until_idle()
    assert loop.now_us() == 1_000_000


# ------------------------------------------------------------------------------ KTimer / arm


def test_ktimer_fires_at_deadline(loop):
    fired = []
    t = KTimer(loop, lambda arg: fired.append((arg, loop.now_us())), "x")
    t.mod(5000)
    loop.run_until_idle()
    assert fired == [("x", 5000)]
    assert not t.pending


def test_ktimer_rearmed_later_fires_once_at_final_deadline(loop):
    fired = []
    t = KTimer(loop, lambda _: fired.append(loop.now_us()))
    t.mod(1000)
    loop.run_until_time(500)
    t.mod(3000)
    t.mod(7000)
    loop.run_until_idle()
    assert fired == [7000]
    assert loop.now_us() == 7000


def test_ktimer_rearmed_earlier_fires_once_at_earlier_time(loop):
    fired = []
    t = KTimer(loop, lambda _: fired.append(loop.now_us()))
    t.mod(9000)
    t.mod(2000)
    loop.run_until_idle()
    assert fired == [2000]
    # the stale 9000 wake-up was consumed without moving the clock
    assert loop.now_us() == 2000
    assert loop.wall_stats()["stale"] == 1


def test_ktimer_cancel_leaves_no_trace_in_time(loop):
    fired = []
    keepalive = KTimer(loop, lambda _: fired.append("keepalive"))
    keepalive.mod(7_200_000_000)
    loop.call_at_us(1000, keepalive.cancel)
    assert loop.run_until_idle()
    assert fired == []
    assert loop.now_us() == 1000


def test_ktimer_cancel_then_rearm_reuses_wakeup(loop):
    fired = []
    t = KTimer(loop, lambda _: fired.append(loop.now_us()))
    t.mod(5000)
    t.cancel()
    t.mod(6000)  # armed_at still 5000: no new heap entry until that wake-up
    loop.run_until_idle()
    assert fired == [6000]


def test_ktimer_chain_rearming_from_handler(loop):
    fired = []

    def handler(_):
        fired.append(loop.now_us())
        if len(fired) < 5:
            t.mod(loop.now_us() + 200_000)  # like tcp_delack / keepalive rescheduling

    t = KTimer(loop, handler)
    t.mod(200_000)
    loop.run_until_idle()
    assert fired == [200_000, 400_000, 600_000, 800_000, 1_000_000]


def test_ktimer_and_asyncio_share_one_timeline(loop):
    seen = []
    t = KTimer(loop, lambda _: seen.append(("ktimer", loop.now_us())))

    async def main():
        t.mod(loop.now_us() + 1500)
        await asyncio.sleep(0.001)
        seen.append(("sleep1", loop.now_us()))
        await asyncio.sleep(0.001)
        seen.append(("sleep2", loop.now_us()))

    loop.run(main())
    assert seen == [("sleep1", 1000), ("ktimer", 1500), ("sleep2", 2000)]


# -------------------------------------------------------------------------------- exceptions


class Boom(Exception):
    pass


def _boom(*_):
    raise Boom("bang")


@pytest.mark.parametrize("how", ["call_soon", "call_later", "call_at_us", "ktimer"])
def test_exception_in_callback_is_raised_from_run(loop, how):
    after = []
    if how == "call_soon":
        loop.call_soon(_boom)
    elif how == "call_later":
        loop.call_later(0.001, _boom)
    elif how == "call_at_us":
        loop.call_at_us(1000, _boom)
    else:
        KTimer(loop, _boom).mod(1000)
    loop.call_at_us(5000, after.append, 1)
    with pytest.raises(Boom):
        loop.run_until_idle()
    assert not loop.is_running()
    assert after == []
    loop.run_until_idle()  # the loop stays usable; later work still runs
    assert after == [1]


def test_exception_handler_mode_keeps_running(caplog):
    lp = VirtualTimeLoop(raise_exceptions=False)
    after = []
    try:
        lp.call_soon(_boom)
        lp.call_at_us(10, _boom)
        lp.call_at_us(20, after.append, 1)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            assert lp.run_until_idle()
        assert after == [1]
        assert sum("Boom" in r.getMessage() or r.exc_info is not None for r in caplog.records) == 2
    finally:
        lp.close()


def test_custom_exception_handler_takes_precedence(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    loop.call_soon(_boom)
    KTimer(loop, _boom).mod(100)
    loop.call_at_us(200, lambda: None)
    assert loop.run_until_idle()
    assert [type(c["exception"]) for c in contexts] == [Boom, Boom]
    assert isinstance(contexts[1]["callback"], KTimer)
    assert loop.now_us() == 200


def test_task_exception_surfaces_through_run(loop):
    async def main():
        await asyncio.sleep(1)
        raise Boom("in task")

    with pytest.raises(Boom):
        loop.run(main())
    assert loop.now_us() == 1_000_000


# ------------------------------------------------------------------------------------ no I/O


def test_io_methods_raise_not_implemented(loop):
    with pytest.raises(NotImplementedError, match="no OS I/O"):
        loop.add_reader(0, lambda: None)
    with pytest.raises(NotImplementedError):
        loop.run_in_executor(None, print)

    async def main():
        with pytest.raises(NotImplementedError, match="simulated network"):
            await asyncio.open_connection("127.0.0.1", 80)
        with pytest.raises(NotImplementedError):
            await loop.getaddrinfo("example.com", 80)

    loop.run(main())


# ------------------------------------------------------------------------------------- stats


def test_wall_stats_counts_events(loop):
    for t in range(10):
        loop.call_at_us(t, lambda: None)
    loop.call_soon(lambda: None)
    loop.run_until_idle()
    stats = loop.wall_stats()
    assert stats["events"] == 10
    assert stats["handles"] == 1
    assert stats["now_us"] == 9
    assert stats["scheduled"] == 0
    assert stats["wall_s"] >= 0.0


# ------------------------------------------------------------------------------ timer lanes


def _timer_script(ops, lanes: bool):
    """Run ``ops`` (arm / re-arm / cancel / packet / advance) on a loop; the firing log."""
    import tcpdive.sim.loop as loop_mod

    saved = loop_mod._MAX_LANES
    loop_mod._MAX_LANES = saved if lanes else 0
    lp = VirtualTimeLoop()
    log = []
    try:
        timers = [KTimer(lp, lambda i: log.append(("t", i, lp.now_us())), i) for i in range(8)]
        for op, i, d in ops:
            if op == "mod":
                timers[i].mod(lp.now_us() + d)
            elif op == "cancel":
                timers[i].cancel()
            elif op == "pkt":
                lp.call_at_us(lp.now_us() + d, lambda i=i: log.append(("p", i, lp.now_us())))
            else:
                lp.run_for_us(d)
        lp.run_until_idle()
        return log, lp.now_us(), lp.pending_count()
    finally:
        lp.close()
        loop_mod._MAX_LANES = saved


_op = st.tuples(st.sampled_from(["mod", "mod", "cancel", "pkt", "run"]),
                st.integers(0, 7), st.sampled_from([0, 1, 5, 40, 200, 200, 1000, 60_000]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=120))
def test_lanes_fire_timers_in_exactly_the_heaps_order(ops):
    """Same-delay FIFO lanes change nothing observable: firing order, times, the final clock."""
    assert _timer_script(ops, lanes=True) == _timer_script(ops, lanes=False)


def test_lanes_keep_the_heap_shallow_with_thousands_of_time_wait_timers(loop):
    fired = []
    timers = [KTimer(loop, fired.append, i) for i in range(5000)]
    for t in timers:
        t.mod(loop.now_us() + 60_000_000)        # every TIME_WAIT: now + 60 s
        loop.run_for_us(100)
    assert len(loop._heap) == 1 and loop.pending_count() == 5000
    loop.run_for(61)
    assert fired == list(range(5000)) and loop.pending_count() == 0
