"""Kernel time for the sans-IO core: a Clock the driver supplies, and timers shaped like timer_list.

The core never reads a wall clock. It asks its Clock for ``now_us()`` (integer microseconds, like
``tcp_clock_us()``) and arms KTimers. A KTimer keeps its deadline in ``expires`` (like
``sk_reset_timer``); moving a deadline later costs nothing, only moving it earlier asks the driver
for another wake-up. The driver calls ``KTimer.run(when_us)`` at each requested time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

HZ = 1000                      # jiffies per second for timer arithmetic (CONFIG_HZ)
USEC_PER_SEC = 1_000_000
USEC_PER_MSEC = 1000
USEC_PER_JIFFY = USEC_PER_SEC // HZ


class Clock(Protocol):
    """What a driver (simulator, TUN, packetdrill) provides to the core."""

    def now_us(self) -> int:
        """Monotonic time in microseconds."""
        ...

    def arm(self, timer: KTimer, when_us: int) -> None:
        """Call ``timer.run(when_us)`` at (virtual or real) time ``when_us``."""
        ...


class KTimer:
    """One kernel timer (``struct timer_list``): a deadline, a pending bit and a handler.

    ``mod(expires)`` is ``mod_timer``/``sk_reset_timer``, ``cancel()`` is ``del_timer``. Stale
    wake-ups from earlier arming are absorbed in ``run``, so re-arming allocates nothing unless
    the new deadline is earlier than every wake-up already requested.
    """

    __slots__ = ("clock", "func", "arg", "expires", "pending", "armed_at")

    def __init__(self, clock: Clock, func: Callable[[Any], None], arg: Any = None) -> None:
        self.clock = clock
        self.func = func
        self.arg = arg
        self.expires = 0
        self.pending = False
        self.armed_at: int | None = None   # earliest wake-up requested from the driver

    def mod(self, expires: int) -> None:
        """Arm (or re-arm) the timer to fire at ``expires`` microseconds."""
        self.expires = expires
        self.pending = True
        armed = self.armed_at
        if armed is None or expires < armed:
            self.armed_at = expires
            self.clock.arm(self, expires)

    def cancel(self) -> None:
        """Disarm the timer; outstanding driver wake-ups become no-ops."""
        self.pending = False

    def remaining(self, now: int) -> int:
        """Microseconds until expiry (0 if not pending or already due)."""
        if not self.pending:
            return 0
        r = self.expires - now
        return r if r > 0 else 0

    def run(self, when: int) -> None:
        """Driver entry point: a wake-up requested for ``when`` has come."""
        if self.armed_at == when:
            self.armed_at = None
        if not self.pending:
            return
        expires = self.expires
        if expires > self.clock.now_us():
            armed = self.armed_at
            if armed is None or armed > expires:
                self.armed_at = expires
                self.clock.arm(self, expires)
            return
        self.pending = False
        self.func(self.arg)


class ManualClock:
    """A Clock for unit tests and tools: time moves only when ``advance``/``run_until`` says so."""

    def __init__(self, start_us: int = 0) -> None:
        import heapq

        self._heapq = heapq
        self._now = start_us
        self._heap: list[tuple[int, int, KTimer]] = []
        self._seq = 0

    def now_us(self) -> int:
        return self._now

    def arm(self, timer: KTimer, when_us: int) -> None:
        self._seq += 1
        self._heapq.heappush(self._heap, (when_us, self._seq, timer))

    def next_deadline(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def run_until(self, t_us: int) -> None:
        """Fire every wake-up due up to ``t_us`` in order, then set the clock to ``t_us``."""
        heap = self._heap
        while heap and heap[0][0] <= t_us:
            when, _, timer = self._heapq.heappop(heap)
            if when > self._now:
                self._now = when
            timer.run(when)
        if t_us > self._now:
            self._now = t_us

    def advance(self, delta_us: int) -> None:
        self.run_until(self._now + delta_us)
