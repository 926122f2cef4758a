"""TUN devices and the real-time driver: a loop thread, a wall Clock, packets on a TUN fd.

``open_tun`` creates a layer-3 TUN device (``IFF_TUN | IFF_NO_PI``: each read/write is exactly
one IP datagram) and moves it into a :class:`~tcpdive.real.netns.KernelNetns`; the fd stays
ours. :class:`LoopThread` runs one asyncio loop on a dedicated thread; the sans-IO stack, the
TUN readers and the impairment pipes all run on it. :class:`RealClock` is the stack's Clock on
that loop: ``now_us`` is ``time.monotonic_ns`` (the clock asyncio's ``loop.time`` reads), timers
are ``loop.call_at``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import struct
import subprocess
import threading
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from .netns import KernelNetns

__all__ = ["LoopThread", "RealClock", "TunPort", "open_tun"]

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
_READ_BATCH = 128           # datagrams read per readiness callback before yielding to timers


def open_tun(name: str) -> int:
    """Create TUN device ``name`` (in this process's namespace); returns the non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class RealClock:
    """The stack's Clock in real time, on one asyncio loop (call ``arm`` from that loop only)."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @staticmethod
    def now_us() -> int:
        return monotonic_ns() // 1000

    def arm(self, timer: Any, when_us: int) -> None:
        # +0.5 us: asyncio may run a handle up to its clock resolution early; KTimer would only
        # re-arm, but firing at or after the deadline saves that round
        self.loop.call_at((when_us + 0.5) * 1e-6, timer.run, when_us)


class LoopThread:
    """An asyncio event loop running forever on its own daemon thread."""

    def __init__(self, name: str = "tcpdive-real") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def in_loop(self) -> bool:
        return threading.current_thread() is self.thread

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn(*args)`` on the loop thread and return its result (direct if already there)."""
        if self.in_loop():
            return fn(*args)
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the loop and wait for its result from another thread."""
        if self.in_loop():
            coro.close()
            raise RuntimeError("LoopThread.run() called from the loop thread: await instead")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            if fut.done():
                raise                   # the coroutine's own TimeoutError
            fut.cancel()
            raise TimeoutError(f"timed out after {timeout} s") from None

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        def _stop() -> None:
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.call_soon(self.loop.stop)

        self.loop.call_soon_threadsafe(_stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class TunPort:
    """A TUN device in a kernel namespace, read and written on a loop.

    ``rx`` is called with each IPv4 datagram the kernel sends into the device; ``send(data)``
    writes a datagram to the kernel. Non-IPv4 frames (IPv6 router solicitations...) are dropped.
    Counters: rx_packets/rx_bytes/tx_packets/tx_bytes/tx_dropped. ``taps`` (callables
    ``(direction, data)``) see every datagram, for tests and tracing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, ns: KernelNetns, devname: str,
                 addr: str | None, prefixlen: int = 24, mtu: int = 1500,
                 rx: Callable[[bytes], None] | None = None) -> None:
        self.loop = loop
        self.ns = ns
        self.devname = devname
        self.mtu = mtu
        self.rx = rx
        self.taps: list[Callable[[str, bytes], None]] = []
        self.rx_packets = self.rx_bytes = self.tx_packets = self.tx_bytes = self.tx_dropped = 0
        self.fd = open_tun(devname)
        try:
            r = subprocess.run(["ip", "link", "set", devname, "netns", ns.name], capture_output=True,
                    text=True)
            if r.returncode:
                raise OSError(f"ip link set {devname} netns {ns.name}: {r.stderr.strip()}")
            ns.sysctl(f"net.ipv6.conf.{devname}.disable_ipv6", "1")
            ns.ip("link", "set", devname, "mtu", str(mtu))
            if addr:
                ns.ip("addr", "add", f"{addr}/{prefixlen}", "dev", devname)
            ns.ip("link", "set", devname, "up")
        except BaseException:
            os.close(self.fd)
            raise
        self._bufsize = max(mtu, 1500) + 64
        self._reading = False

    def start(self) -> None:
        """Begin reading (call on the loop thread)."""
        if not self._reading:
            self.loop.add_reader(self.fd, self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        read = os.read
        fd = self.fd
        size = self._bufsize
        rx = self.rx
        taps = self.taps
        for _ in range(_READ_BATCH):
            try:
                data = read(fd, size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not data or data[0] >> 4 != 4:
                continue
            self.rx_packets += 1
            self.rx_bytes += len(data)
            if taps:
                for t in taps:
                    t("in", data)
            if rx is not None:
                rx(data)

    def send(self, data: bytes) -> None:
        """Write one datagram into the kernel (dropped, and counted, if the device refuses)."""
        if self.fd < 0:
            return
        if self.taps:
            for t in self.taps:
                t("out", data)
        try:
            os.write(self.fd, data)
        except OSError:
            self.tx_dropped += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(data)

    def close(self) -> None:
        """Stop reading and close the fd (the device disappears with it); loop thread only."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        if self._reading:
            self.loop.remove_reader(fd)
            self._reading = False
        os.close(fd)
