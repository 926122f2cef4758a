"""A virtual-time asyncio event loop: the simulator's clock and scheduler.

``VirtualTimeLoop`` is an ``asyncio.BaseEventLoop`` whose clock is an integer count of microseconds.
It never sleeps and never polls: when no callback is ready, the clock jumps to the next scheduled
entry. Ordinary asyncio code (tasks, ``asyncio.sleep``, ``wait_for``, ``timeout``, queues, events)
runs on it unchanged, and it implements tcpdive's :class:`~tcpdive.ktime.Clock` protocol so that
kernel ``KTimer``s are its timers.

Scheduling order is deterministic. Each iteration runs the ready (``call_soon``) callbacks present
at its start, then every heap entry that is due, in ``(time, sequence)`` order; entries scheduled
for the current instant while ready callbacks are pending run after those callbacks, as in
asyncio. Time advances only when nothing is ready.

Heap entries are plain tuples compared on ``(when_us, seq)`` only (``seq`` is unique):

* ``(when_us, seq, timer)`` -- ``timer.run(when_us)``; from :meth:`arm` (a ``KTimer``) and from
  ``call_at``/``call_later`` (a ``TimerHandle`` subclass with the same ``run``/``pending``/
  ``expires`` interface);
* ``(when_us, seq, callback, args)`` -- ``callback(*args)``; from :meth:`call_at_us`.

A wake-up that can do nothing (cancelled handle, ``KTimer`` no longer pending, or a stale
``KTimer`` wake-up earlier than its current deadline) is consumed without moving the clock, so
time only advances to instants where something happens.

``KTimer`` wake-ups armed with the same delay (every TIME_WAIT's 60 s, each RTO or delayed-ACK
value in use) come due in the order they were armed, so they wait in a FIFO *lane* per delay
and only each lane's head is on the heap, under the ``(when_us, seq)`` it was armed with: the
order is exactly the heap's, while the heap stays a few entries deep however many thousands of
sockets wait (Linux's timer wheel buckets them for the same reason).
"""

from __future__ import annotations

import asyncio
import math
import time as _time
from asyncio import events
from collections import deque
from collections.abc import Callable, Coroutine
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any, TypeVar

__all__ = ["LoopIdleError", "VirtualTimeLoop"]

_T = TypeVar("_T")

_US = 1_000_000
_NEVER = 1 << 62  # 'no bound' as an int: int-int compares are cheapest

# What a run does when nothing is ready and nothing is due within its bound.
_IDLE_RAISE = 0  # run_forever / run_until_complete: a deadlock, raise LoopIdleError
_IDLE_STOP = 1  # run_until_idle: stop, leave the clock at the last event
_IDLE_JUMP = 2  # run_until_time: set the clock to the bound, stop

_MIN_CANCELLED_PURGE = 256
_MAX_LANES = 256  # distinct KTimer delays with a FIFO lane; others go on the heap directly


class _Lane:
    """KTimer wake-ups armed with one delay, in (when_us, seq) order; the head is on the heap."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: deque[tuple[int, int, Any]] = deque()

    def __repr__(self) -> str:
        head = f", next {self.items[0][2]!r}" if self.items else ""
        return f"<lane of {len(self.items)} timer wake-ups{head}>"


def _head(e: tuple[Any, ...]) -> Any:
    """The timer of a 3-tuple heap entry (a lane's head timer for a lane entry)."""
    obj = e[2]
    return obj.items[0][2] if obj.__class__ is _Lane else obj


def _pop(heap: list[tuple[Any, ...]], e: tuple[Any, ...]) -> None:
    """Remove the heap's top 3-tuple entry ``e``; a lane's next wake-up takes its place."""
    lane = e[2]
    if lane.__class__ is _Lane:
        items = lane.items
        items.popleft()
        if items:
            when, seq, _ = items[0]
            heapreplace(heap, (when, seq, lane))
            return
    heappop(heap)


class LoopIdleError(RuntimeError):
    """The loop has nothing ready and nothing scheduled, so what it waits for can never happen."""


class _VTimerHandle(events.TimerHandle):
    """An asyncio ``TimerHandle`` kept on the virtual heap; runs via ``run(when_us)`` like a KTimer."""

    __slots__ = ("pending", "expires")

    def __init__(
        self,
        when_us: int,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
        loop: VirtualTimeLoop,
        context: Any,
    ) -> None:
        super().__init__(when_us / _US, callback, args, loop, context)
        self.pending = True
        self.expires = when_us

    def cancel(self) -> None:
        self.pending = False
        super().cancel()

    def run(self, when: int) -> None:
        """Called by the loop at ``when``: run the callback unless cancelled."""
        self._scheduled = False
        if self._cancelled:
            self._loop._timer_cancelled_count -= 1
            return
        self.pending = False
        self._run()


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An asyncio event loop on a virtual, integer-microsecond clock, with no I/O.

    ``raise_exceptions`` (default True): an exception escaping a callback is re-raised from the
    ``run_*`` call instead of being logged by asyncio's default handler; a handler installed with
    ``set_exception_handler`` still takes precedence, as in asyncio. The loop never blocks, so
    ``run_forever``/``run_until_complete`` raise :class:`LoopIdleError` when nothing is left to
    run (a deadlock); ``call_soon_threadsafe`` works but cannot wake an idle loop.
    """

    def __init__(
        self, *, start_us: int = 0, raise_exceptions: bool = True, debug: bool = False
    ) -> None:
        super().__init__()
        self._now: int = int(start_us)
        self._seq: int = 0
        self._heap: list[tuple[Any, ...]] = []
        self._lanes: dict[int, _Lane] = {}
        self._until: int = _NEVER
        self._idle_mode: int = _IDLE_RAISE
        self.raise_exceptions = raise_exceptions
        # counters for wall_stats(): cheap, updated per batch
        self._n_events = 0  # heap entries that ran (timers, call_at_us, packets)
        self._n_handles = 0  # ready (call_soon) handles taken from the queue
        self._n_stale = 0  # wake-ups consumed without advancing the clock
        self._wall = 0.0  # wall seconds spent inside run_forever
        self._failed: Any = None  # the heap callback whose exception is being handled
        self.set_debug(debug)

    # ------------------------------------------------------------------ clock

    def now_us(self) -> int:
        """Virtual time in integer microseconds (the ``Clock`` protocol)."""
        return self._now

    def time(self) -> float:
        """Virtual time in seconds, ``now_us() / 1e6`` (asyncio's ``loop.time()``)."""
        return self._now / _US

    def arm(self, timer: Any, when_us: int) -> None:
        """Call ``timer.run(when_us)`` at virtual time ``when_us`` (the ``Clock`` protocol).

        ``timer`` is a ``KTimer`` (or has its ``run``/``pending``/``expires``): a wake-up for a
        timer that is not pending, or whose deadline is later, runs without moving the clock.
        """
        self._seq = seq = self._seq + 1
        lane = self._lanes.get(when_us - self._now)
        if lane is None:
            lane = self._new_lane(when_us - self._now)
            if lane is None:
                heappush(self._heap, (when_us, seq, timer))
                return
        items = lane.items
        items.append((when_us, seq, timer))
        if len(items) == 1:
            heappush(self._heap, (when_us, seq, lane))

    def _new_lane(self, delay: int) -> _Lane | None:
        """A lane for wake-ups ``delay`` us ahead; None when too many delays are in use."""
        lanes = self._lanes
        if len(lanes) >= _MAX_LANES:
            for d in [d for d, lane in lanes.items() if not lane.items]:
                del lanes[d]
            if len(lanes) >= _MAX_LANES:
                return None
        lane = lanes[delay] = _Lane()
        return lane

    def call_at_us(self, when_us: int, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` at virtual time ``when_us``; a light, non-cancellable call_at."""
        self._seq = seq = self._seq + 1
        heappush(self._heap, (when_us, seq, callback, args))

    def call_later_us(self, delay_us: int, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` ``delay_us`` microseconds from now (non-cancellable)."""
        self._seq = seq = self._seq + 1
        heappush(self._heap, (self._now + delay_us, seq, callback, args))

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        """asyncio ``call_at``: ``when`` in seconds, rounded to the nearest microsecond."""
        if when is None:
            raise TypeError("when cannot be None")
        try:
            when_us = round(when * _US)
        except (OverflowError, ValueError):  # inf or nan
            return self._schedule_nonfinite(when, callback, args, context)
        return self._schedule_handle(when_us, callback, args, context, "call_at")

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        """asyncio ``call_later``: ``delay`` seconds from now, rounded to the nearest microsecond."""
        if delay is None:
            raise TypeError("delay must not be None")
        try:
            when_us = self._now + round(delay * _US)
        except (OverflowError, ValueError):  # inf or nan
            return self._schedule_nonfinite(delay, callback, args, context)
        return self._schedule_handle(when_us, callback, args, context, "call_later")

    def _schedule_handle(
        self,
        when_us: int,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
        context: Any,
        method: str,
    ) -> asyncio.TimerHandle:
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, method)
        handle = _VTimerHandle(when_us, callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._seq = seq = self._seq + 1
        heappush(self._heap, (when_us, seq, handle))
        handle._scheduled = True
        return handle

    def _schedule_nonfinite(
        self, t: float, callback: Callable[..., Any], args: tuple[Any, ...], context: Any
    ) -> asyncio.TimerHandle:
        """+inf means never (a handle that is never queued); -inf means now; NaN is an error."""
        if math.isnan(t):
            raise ValueError("timer time is NaN")
        if t < 0:
            return self._schedule_handle(self._now, callback, args, context, "call_at")
        self._check_closed()
        handle = _VTimerHandle(0, callback, args, self, context)
        handle._when = math.inf
        handle.expires = _NEVER
        return handle

    # -------------------------------------------------------------- running

    def run(self, coro: Coroutine[Any, Any, _T] | asyncio.Future[_T]) -> _T:
        """Run ``coro`` to completion in virtual time and return its result (``asyncio.run``-like).

        The loop stays open and keeps its clock; other tasks are left running (use
        :meth:`shutdown` to cancel them).
        """
        return self.run_until_complete(coro)

    def run_forever(self) -> None:
        """Run until ``stop()``; raises :class:`LoopIdleError` if the loop goes idle first."""
        t0 = _time.perf_counter()
        try:
            super().run_forever()
        finally:
            self._wall += _time.perf_counter() - t0

    def run_until_idle(self, max_time_us: int | None = None) -> bool:
        """Run until nothing is ready or scheduled; return True if idle, False if stopped early.

        With ``max_time_us`` (absolute virtual time) nothing later than it runs: if work remains
        beyond it, the clock is left at ``max_time_us`` and False is returned.
        """
        self._bounded_run(_NEVER if max_time_us is None else max_time_us, _IDLE_STOP)
        return not self._ready and not self._heap

    def run_until_time(self, t_us: int) -> None:
        """Run everything due up to virtual time ``t_us`` inclusive, then set the clock to it."""
        self._bounded_run(t_us, _IDLE_JUMP)

    def run_for(self, seconds: float) -> None:
        """Advance virtual time by ``seconds`` (rounded to the microsecond), running what is due."""
        self._bounded_run(self._now + round(seconds * _US), _IDLE_JUMP)

    def run_for_us(self, delta_us: int) -> None:
        """Advance virtual time by ``delta_us`` microseconds, running what is due."""
        self._bounded_run(self._now + delta_us, _IDLE_JUMP)

    def _bounded_run(self, until: int, mode: int) -> None:
        self._check_closed()
        self._check_running()
        self._until = round(until)
        self._idle_mode = mode
        try:
            self.run_forever()
        finally:
            self._until = _NEVER
            self._idle_mode = _IDLE_RAISE

    async def _cancel_all(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks(self) if t is not me]
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for t, res in zip(tasks, results, strict=True):
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                self.call_exception_handler(
                    {"message": "unhandled exception during shutdown", "exception": res, "task": t}
                )

    def shutdown(self) -> None:
        """Cancel every remaining task and let them finish, then finalize async generators."""
        self.run_until_complete(self._cancel_all())
        self.run_until_complete(self.shutdown_asyncgens())

    def close(self) -> None:
        """Close the loop and drop everything still scheduled."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        self._heap.clear()
        self._lanes.clear()
        super().close()

    def _run_once(self) -> None:
        """One iteration: ready callbacks, then due heap entries, advancing the clock when idle."""
        ready = self._ready
        heap = self._heap

        cancelled = self._timer_cancelled_count
        if cancelled > _MIN_CANCELLED_PURGE and cancelled * 2 > len(heap):
            self._purge_cancelled()

        ntodo = len(ready)
        if ntodo:
            self._n_handles += ntodo
            popleft = ready.popleft
            while ntodo:
                ntodo -= 1
                handle = popleft()
                if handle._cancelled:
                    continue
                handle._run()
            handle = None  # break reference cycles on exceptions
        if self._stopping:
            return

        until = self._until
        while True:
            try:
                self._run_heap(ready, heap, until)
                break
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                failed, self._failed = self._failed, None
                if self.raise_exceptions and self._exception_handler is None:
                    raise
                self.call_exception_handler(
                    {
                        "message": f"Exception in virtual-time callback {failed!r}",
                        "exception": exc,
                        "callback": failed,
                    }
                )

        if ready or self._stopping:
            return
        if heap and heap[0][0] <= until:
            return  # cannot happen after _run_heap, kept for safety
        mode = self._idle_mode
        if mode == _IDLE_RAISE:
            raise LoopIdleError(
                f"virtual-time loop is idle at t={self._now}us: nothing is ready or scheduled, "
                "so the awaited future can never complete (deadlock)"
            )
        if (mode == _IDLE_JUMP or heap) and until > self._now:
            self._now = until  # bound reached (run_until_time, or run_until_idle cut short)
        self._stopping = True

    def _run_heap(self, ready: Any, heap: list[tuple[Any, ...]], until: int) -> None:
        """Pop and run due heap entries; advance the clock while nothing is ready (hot loop)."""
        now = self._now
        limit = self._seq  # entries newer than this, at time ``now``, wait for ``ready``
        n = stale = 0
        obj = None
        try:
            while heap:
                e = heap[0]
                when = e[0]
                if when > now:
                    if ready or self._stopping:
                        break
                    if len(e) == 3:
                        obj = e[2]
                        if obj.__class__ is _Lane:
                            obj = obj.items[0][2]
                        if obj.expires > when or not obj.pending:
                            # no-op wake-up (cancelled, or stale KTimer): consume, keep the clock
                            _pop(heap, e)
                            stale += 1
                            obj.run(when)
                            continue
                        if when > until:
                            break
                        _pop(heap, e)
                        self._now = now = when
                        limit = self._seq
                        n += 1
                        obj.run(when)
                    else:
                        if when > until:
                            break
                        heappop(heap)
                        self._now = now = when
                        limit = self._seq
                        n += 1
                        e[2](*e[3])
                elif ready and e[1] > limit:
                    break
                elif len(e) == 3:
                    obj = _head(e)
                    _pop(heap, e)
                    n += 1
                    obj.run(when)
                else:
                    heappop(heap)
                    n += 1
                    e[2](*e[3])
        except BaseException:
            self._failed = obj if len(e) == 3 else e[2]  # for the exception handler's message
            raise
        finally:
            self._n_events += n
            self._n_stale += stale

    def _purge_cancelled(self) -> None:
        """Drop cancelled asyncio timer handles from the heap (asyncio does the same)."""
        keep = []
        for e in self._heap:
            obj = e[2]
            if len(e) == 3 and isinstance(obj, _VTimerHandle) and obj._cancelled:
                obj._scheduled = False
            else:
                keep.append(e)
        heapify(keep)
        self._heap[:] = keep
        self._timer_cancelled_count = 0

    # ---------------------------------------------------------- exceptions

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """asyncio's handler dispatch; with ``raise_exceptions`` and no custom handler, an
        exception that escaped a callback is re-raised so the ``run_*`` call fails."""
        exc = context.get("exception")
        if (
            self.raise_exceptions
            and self._exception_handler is None
            and "handle" in context
            and isinstance(exc, BaseException)
        ):
            raise exc
        super().call_exception_handler(context)

    # ----------------------------------------------------------------- info

    def next_deadline_us(self) -> int | None:
        """Time of the earliest heap entry (possibly a no-op wake-up), or None if empty."""
        return self._heap[0][0] if self._heap else None

    def pending_count(self) -> int:
        """Ready callbacks plus heap entries (including no-op wake-ups not yet consumed)."""
        return len(self._ready) + self._n_scheduled()

    def _n_scheduled(self) -> int:
        """Heap entries plus the lane wake-ups behind each lane's head."""
        return len(self._heap) + sum(len(lane.items) - 1 for lane in self._lanes.values()
                                     if lane.items)

    def wall_stats(self) -> dict[str, float | int]:
        """Counters for benchmarks: events run, ready handles, stale wake-ups, wall seconds."""
        return {
            "now_us": self._now,
            "events": self._n_events,
            "handles": self._n_handles,
            "stale": self._n_stale,
            "scheduled": self._n_scheduled(),
            "wall_s": self._wall,
        }

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} t={self._now}us running={self.is_running()} "
            f"closed={self.is_closed()} scheduled={self._n_scheduled()} ready={len(self._ready)}>"
        )

    # --------------------------------------------------------------- no I/O

    def _write_to_self(self) -> None:
        """call_soon_threadsafe wake-up: nothing to wake, the loop never blocks."""

    def _process_events(self, event_list: Any) -> None:
        """No selector: there are never I/O events."""

    def _no_io(self, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__}.{what}: the virtual-time loop does no OS I/O; "
            "use the simulated network's transports and sockets instead"
        )

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
        raise self._no_io("add_reader")

    def remove_reader(self, fd: Any) -> bool:
        raise self._no_io("remove_reader")

    def add_writer(self, fd: Any, callback: Any, *args: Any) -> None:
        raise self._no_io("add_writer")

    def remove_writer(self, fd: Any) -> bool:
        raise self._no_io("remove_writer")

    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
        raise self._no_io("add_signal_handler")

    def remove_signal_handler(self, sig: int) -> bool:
        raise self._no_io("remove_signal_handler")

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        raise NotImplementedError(
            f"{type(self).__name__}.run_in_executor: threads would break virtual time and "
            "determinism; run the work inline or as a task"
        )

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("getaddrinfo")

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("getnameinfo")

    # Simulated TCP: the host is ``current_host`` (set by ``Host.spawn``/``Host.run``) unless
    # ``on=host`` is given; see tcpdive.sim.aio. TLS, families and flags are not simulated.

    async def create_connection(
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: Any = None,
        local_addr: Any = None,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        happy_eyeballs_delay: Any = None,
        interleave: Any = None,
        on: Any = None,
        **kwargs: Any,
    ) -> Any:
        """asyncio ``create_connection`` over simulated TCP (:func:`tcpdive.sim.aio.create_connection`)."""
        if ssl:
            raise NotImplementedError("create_connection(ssl=...): TLS is not simulated")
        from . import aio

        return await aio.create_connection(protocol_factory, host, port, on=on,
                                           local_addr=local_addr, sock=sock)

    async def create_server(
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: int | None = None,
        *,
        family: int = 0,
        flags: int = 0,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        start_serving: bool = True,
        on: Any = None,
        **kwargs: Any,
    ) -> Any:
        """asyncio ``create_server`` over simulated TCP (:func:`tcpdive.sim.aio.create_server`)."""
        if ssl:
            raise NotImplementedError("create_server(ssl=...): TLS is not simulated")
        from . import aio

        return await aio.create_server(protocol_factory, host, port, on=on, backlog=backlog,
                                       reuse_address=reuse_address, reuse_port=reuse_port,
                                       sock=sock, start_serving=start_serving)

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("create_unix_connection")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("create_unix_server")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("create_datagram_endpoint")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("connect_accepted_socket")

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("connect_read_pipe")

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("connect_write_pipe")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("subprocess_exec")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("subprocess_shell")

    async def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("sendfile")

    async def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("start_tls")

    async def sock_recv(self, sock: Any, nbytes: int) -> Any:
        """asyncio ``sock_recv`` on a simulated tcpdive Socket (:mod:`tcpdive.sim.aio`)."""
        from . import aio

        return await aio.sock_recv(sock, nbytes)

    async def sock_recv_into(self, sock: Any, buf: Any) -> Any:
        """asyncio ``sock_recv_into`` on a simulated tcpdive Socket (:mod:`tcpdive.sim.aio`)."""
        from . import aio

        return await aio.sock_recv_into(sock, buf)

    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("sock_recvfrom")

    async def sock_recvfrom_into(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("sock_recvfrom_into")

    async def sock_sendall(self, sock: Any, data: Any) -> Any:
        """asyncio ``sock_sendall`` on a simulated tcpdive Socket (:mod:`tcpdive.sim.aio`)."""
        from . import aio

        return await aio.sock_sendall(sock, data)

    async def sock_sendto(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("sock_sendto")

    async def sock_connect(self, sock: Any, address: Any) -> Any:
        """asyncio ``sock_connect`` on a simulated tcpdive Socket (:mod:`tcpdive.sim.aio`)."""
        from . import aio

        return await aio.sock_connect(sock, address)

    async def sock_accept(self, sock: Any) -> Any:
        """asyncio ``sock_accept`` on a simulated tcpdive Socket (:mod:`tcpdive.sim.aio`)."""
        from . import aio

        return await aio.sock_accept(sock)

    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_io("sock_sendfile")
