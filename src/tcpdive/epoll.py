"""epoll(7) as ``fs/eventpoll.c`` does it: an epoll instance is a file in the host's fd table.

    ep = Eventpoll(host)                          # epoll_create1(0); ep.fd is its descriptor
    ep.epoll_ctl(EPOLL_CTL_ADD, sock.fileno(), EPOLLIN | EPOLLET)
    ep.epoll_wait(16, 250)                        # -> [(fd, events)], [] after 250 ms
    await ep.aepoll_wait(16, -1)                  # the same inside the event loop

or the syscall shapes on a host: ``epoll_create1(host)``, ``epoll_ctl(host, epfd, ...)``,
``epoll_wait(host, epfd, maxevents, timeout_ms)``.

Each watched (file, fd) is an ``EpItem`` hooked on the file's wait queue (``sk.ep_wq`` for a
socket, ``poll_wait`` for a nested epoll). The stack's wake-ups (``sk_wake`` with the key of
``sk_data_ready`` / ``sk_write_space`` / ``sk_state_change``) run ``ep_poll_callback``, which
puts the item on the ready list when the key concerns it. ``epoll_wait`` then polls each ready
item with the file's own ``poll`` (``tcp_poll``, ``udp_poll``): level-triggered items go back on
the list after being reported, edge-triggered ones wait for the next wake-up, one-shot ones are
disarmed. Readiness is therefore exactly poll()'s, and an edge is exactly a kernel wake-up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import errors as E
from .errors import oserror

if TYPE_CHECKING:
    from .net.netns import Netns

# linux/eventpoll.h
EPOLLIN = 0x001
EPOLLPRI = 0x002
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
EPOLLNVAL = 0x020
EPOLLRDNORM = 0x040
EPOLLRDBAND = 0x080
EPOLLWRNORM = 0x100
EPOLLWRBAND = 0x200
EPOLLMSG = 0x400
EPOLLRDHUP = 0x2000
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLL_CTL_ADD = 1
EPOLL_CTL_DEL = 2
EPOLL_CTL_MOD = 3
EPOLL_CLOEXEC = 0o2000000

EP_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
EPOLLINOUT_BITS = EPOLLIN | EPOLLOUT
EPOLLEXCLUSIVE_OK_BITS = (EPOLLINOUT_BITS | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET
                          | EPOLLEXCLUSIVE)
EP_MAX_NESTS = 4                                  # nesting depth of epoll in epoll
EP_MAX_EVENTS = 0x7FFFFFFF // 12                  # INT_MAX / sizeof(struct epoll_event)


class EpItem:
    """``struct epitem``: one (file, fd) watched by one epoll instance, queued on the file's
    wait queue (``whead``) and, while ready, on the instance's ready list."""

    __slots__ = ("ep", "file", "fd", "events", "data", "ready", "whead")

    def __init__(self, ep: Eventpoll, file: Any, fd: int, events: int, data: int) -> None:
        self.ep = ep
        self.file = file
        self.fd = fd
        self.events = events
        self.data = data
        self.ready = False                        # ep_is_linked: on ep.rdllist
        self.whead: list | None = None

    def wake(self, key: int) -> None:
        """The wait-queue callback (``ep_poll_callback``)."""
        ep_poll_callback(self, key)

    def __repr__(self) -> str:
        return f"<EpItem fd={self.fd} events={self.events:#x} ready={self.ready}>"


def _file_wait_queue(file: Any) -> list:
    """The wait queue a poll table hooks into (``sock_poll_wait`` / ``poll_wait(ep->poll_wait)``)."""
    if isinstance(file, Eventpoll):
        return file.poll_wait
    sk = file.sk
    wq = sk.ep_wq
    if wq is None:
        wq = sk.ep_wq = []
    return wq


def ep_item_poll(epi: EpItem) -> int:
    """The file's readiness masked by what the item watches (``ep_item_poll``: ``vfs_poll``)."""
    return epi.file.poll() & epi.events


def ep_poll_callback(epi: EpItem, key: int) -> None:
    """A wake-up on a watched file (``ep_poll_callback``): unless the item is disarmed
    (EPOLLONESHOT fired) or the key names none of its events, put it on the ready list, wake one
    ``epoll_wait`` sleeper (they queue exclusively) and the epolls watching this one."""
    events = epi.events
    if not events & ~EP_PRIVATE_BITS:
        return
    if key and not key & events:
        return
    ep = epi.ep
    if not epi.ready:
        epi.ready = True
        ep.rdllist.append(epi)
    ep_wake_waiter(ep)
    if ep.poll_wait:
        ep_poll_safewake(ep)


def ep_wake_waiter(ep: Eventpoll) -> None:
    """``wake_up(&ep->wq)``: one exclusive sleeper, removed from the queue as it wakes."""
    wq = ep.wq
    while wq:
        fut = wq.pop(0)
        if not fut.done():
            fut.set_result(None)
            return


def ep_poll_safewake(ep: Eventpoll) -> None:
    """Wake the epolls watching this one with EPOLLIN (``ep_poll_safewake``)."""
    for epi in tuple(ep.poll_wait):
        epi.wake(EPOLLIN)


def ep_send_events(ep: Eventpoll, maxevents: int) -> list[tuple[int, int]]:
    """Report ready items (``ep_send_events``): each is polled again and dropped if nothing is
    ready any more; level-triggered ones go back on the list's tail, EPOLLONESHOT ones are
    disarmed, edge-triggered ones stay off until the next wake-up. Items not reached for
    ``maxevents`` stay at the list's head (``ep_done_scan``)."""
    txlist = ep.rdllist
    ep.rdllist = []
    out: list[tuple[int, int]] = []
    n = len(txlist)
    i = 0
    while i < n:
        if len(out) >= maxevents:
            break
        epi = txlist[i]
        i += 1
        epi.ready = False
        revents = ep_item_poll(epi)
        if not revents:
            continue
        out.append((epi.data, revents))
        if epi.events & EPOLLONESHOT:
            epi.events &= EP_PRIVATE_BITS
        elif not epi.events & EPOLLET:
            epi.ready = True
            ep.rdllist.append(epi)
    if i < n:
        ep.rdllist[:0] = txlist[i:]
    return out


class Eventpoll:
    """An epoll instance (``struct eventpoll`` and its ``struct file``), installed in the host's fd
    table like a socket: ``close()`` frees the descriptor and unhooks every watched item.

    ``epoll_ctl``/``epoll_wait``/``aepoll_wait`` are the syscalls on this instance;
    ``register``/``modify``/``unregister`` are ``select.epoll``-style shorthands.
    """

    def __init__(self, net: Netns, flags: int = 0) -> None:
        if flags & ~EPOLL_CLOEXEC:
            raise oserror(E.EINVAL, "epoll_create1 flags")
        self.net = net
        self.cloexec = bool(flags & EPOLL_CLOEXEC)
        self.items: dict[tuple[int, int], EpItem] = {}     # the RB tree, keyed by (file, fd)
        self.rdllist: list[EpItem] = []                    # ready list, FIFO
        self.wq: list[asyncio.Future[None]] = []           # epoll_wait sleepers
        self.poll_wait: list[EpItem] = []                  # epolls watching this one
        self.fd = -1
        self.closed = False
        net.files.install(self)  # type: ignore[arg-type]

    # ---- the file -------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.fd

    def poll(self) -> int:
        """An epoll fd is readable while an item on its ready list is (``ep_eventpoll_poll``);
        items found not ready are dropped from the list on the way."""
        if self.closed:
            return EPOLLNVAL
        rdl = self.rdllist
        while rdl:
            epi = rdl[0]
            if ep_item_poll(epi):
                return EPOLLIN | EPOLLRDNORM
            rdl.pop(0)
            epi.ready = False
        return 0

    def close(self) -> None:
        """close(): release the descriptor, unhook every item (``ep_clear_and_put``) and leave
        the epolls watching this one (``eventpoll_release``)."""
        if self.closed:
            return
        self.closed = True
        self.net.files.release(self.fd)
        for epi in list(self.items.values()):
            ep_remove(self, epi)
        if self.poll_wait:
            eventpoll_release(self)
        for fut in self.wq:
            if not fut.done():
                fut.set_result(None)
        self.wq.clear()

    def __enter__(self) -> Eventpoll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tcpdive.Eventpoll fd={self.fd} items={len(self.items)} ready={len(self.rdllist)}>"

    # ---- epoll_ctl ------------------------------------------------------------------------

    def epoll_ctl(self, op: int, fd: int, events: int = 0, data: int | None = None) -> None:
        """epoll_ctl(2) on this instance (``do_epoll_ctl``); ``data`` defaults to ``fd``.

        EBADF for an unknown ``fd``, EPERM for a file that cannot be polled, EINVAL for
        ``fd`` being this epoll, a bad ``op`` or misused EPOLLEXCLUSIVE, ELOOP for a cycle of
        epolls (or nesting deeper than EP_MAX_NESTS), EEXIST on ADD of a watched fd, ENOENT on
        MOD/DEL of an unwatched one.
        """
        if self.closed:
            raise oserror(E.EBADF, "epoll fd is closed")
        tf = self.net.files.get(fd)
        if getattr(tf, "poll", None) is None:
            raise oserror(E.EPERM, "file does not support poll")
        has_event = op != EPOLL_CTL_DEL
        if has_event:
            events &= 0xFFFFFFFF
            events &= ~EPOLLWAKEUP          # without CAP_BLOCK_SUSPEND: silently dropped
        if tf is self:
            raise oserror(E.EINVAL, "an epoll cannot watch itself")
        if has_event and events & EPOLLEXCLUSIVE:
            if op == EPOLL_CTL_MOD:
                raise oserror(E.EINVAL, "EPOLLEXCLUSIVE with EPOLL_CTL_MOD")
            if op == EPOLL_CTL_ADD and (isinstance(tf, Eventpoll)
                                        or events & ~EPOLLEXCLUSIVE_OK_BITS):
                raise oserror(E.EINVAL, "EPOLLEXCLUSIVE with these events")
        if op == EPOLL_CTL_ADD and isinstance(tf, Eventpoll) and ep_loop_check(self, tf):
            raise oserror(E.ELOOP, "epoll nesting loop or too deep")
        key = (id(tf), fd)
        epi = self.items.get(key)
        if op == EPOLL_CTL_ADD:
            if epi is not None:
                raise oserror(E.EEXIST, f"fd {fd} already watched")
            ep_insert(self, tf, fd, events | EPOLLERR | EPOLLHUP, fd if data is None else data)
        elif op == EPOLL_CTL_DEL:
            if epi is None:
                raise oserror(E.ENOENT, f"fd {fd} not watched")
            ep_remove(self, epi)
        elif op == EPOLL_CTL_MOD:
            if epi is None:
                raise oserror(E.ENOENT, f"fd {fd} not watched")
            if epi.events & EPOLLEXCLUSIVE:
                raise oserror(E.EINVAL, "item was added with EPOLLEXCLUSIVE")
            ep_modify(self, epi, events | EPOLLERR | EPOLLHUP, fd if data is None else data)
        else:
            raise oserror(E.EINVAL, f"bad epoll_ctl op {op}")

    def register(self, fd: Any, eventmask: int = EPOLLIN | EPOLLPRI | EPOLLOUT) -> None:
        """``select.epoll.register``: EPOLL_CTL_ADD (a socket or its fd)."""
        self.epoll_ctl(EPOLL_CTL_ADD, _fdno(fd), eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self.epoll_ctl(EPOLL_CTL_MOD, _fdno(fd), eventmask)

    def unregister(self, fd: Any) -> None:
        self.epoll_ctl(EPOLL_CTL_DEL, _fdno(fd))

    # ---- epoll_wait -----------------------------------------------------------------------

    def _check_wait(self, maxevents: int) -> None:
        if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
            raise oserror(E.EINVAL, f"maxevents {maxevents}")
        if self.closed:
            raise oserror(E.EBADF, "epoll fd is closed")

    def epoll_wait(self, maxevents: int = 64, timeout: int = -1) -> list[tuple[int, int]]:
        """epoll_wait(2): up to ``maxevents`` (data, events) pairs; ``timeout`` in ms, -1 blocks
        until an event, 0 never blocks. Blocking outside the event loop runs virtual time
        until an event or the deadline; inside it, ``await aepoll_wait``."""
        self._check_wait(maxevents)
        if timeout == 0:
            return ep_send_events(self, maxevents) if self.rdllist else []
        loop = self.net.clock
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise oserror(E.EAGAIN, "would block and this clock cannot wait")
        if loop.is_running():
            raise RuntimeError("blocking epoll_wait inside the event loop: await aepoll_wait()")
        return loop.run_until_complete(self.aepoll_wait(maxevents, timeout))

    async def aepoll_wait(self, maxevents: int = 64, timeout: int = -1) -> list[tuple[int, int]]:
        """``ep_poll``: report what is ready; else sleep (exclusively) until a wake-up puts an
        item on the ready list or the ``timeout`` ms deadline (fixed at entry) passes. An item
        that turns out not ready when polled is dropped and the sleep resumes."""
        self._check_wait(maxevents)
        if timeout == 0:
            return ep_send_events(self, maxevents) if self.rdllist else []
        loop = asyncio.get_running_loop()
        expired = timer_woke = False
        fut: asyncio.Future[None] | None = None
        handle = None
        if timeout > 0:
            def on_timeout() -> None:
                nonlocal expired, timer_woke
                expired = True
                if fut is not None and not fut.done():
                    if fut in self.wq:
                        self.wq.remove(fut)
                    timer_woke = True
                    fut.set_result(None)

            handle = loop.call_later(timeout / 1000, on_timeout)
        try:
            eavail = bool(self.rdllist)
            while True:
                if eavail:
                    res = ep_send_events(self, maxevents)
                    if res:
                        return res
                if expired or self.closed:
                    return []
                eavail = True
                if not self.rdllist:
                    fut = loop.create_future()
                    self.wq.append(fut)
                    try:
                        await fut
                    finally:
                        if fut in self.wq:
                            self.wq.remove(fut)
                    if timer_woke:               # timed out, not woken by an event
                        eavail = False
        finally:
            if handle is not None:
                handle.cancel()


def _fdno(f: Any) -> int:
    return f if isinstance(f, int) else f.fileno()


def ep_insert(ep: Eventpoll, tf: Any, fd: int, events: int, data: int) -> None:
    """EPOLL_CTL_ADD (``ep_insert``): hook on the file's wait queue, poll it once and queue the
    item if it is already ready (so an edge-triggered item reports the current state once)."""
    epi = EpItem(ep, tf, fd, events, data)
    wq = _file_wait_queue(tf)
    wq.append(epi)
    epi.whead = wq
    ep.items[(id(tf), fd)] = epi
    _ep_queue_if_ready(ep, epi)


def _ep_queue_if_ready(ep: Eventpoll, epi: EpItem) -> None:
    """Poll the item now; if ready and not yet queued, put it on the ready list and wake the
    epoll's waiters (the tail shared by ``ep_insert`` and ``ep_modify``)."""
    if ep_item_poll(epi) and not epi.ready:
        epi.ready = True
        ep.rdllist.append(epi)
        ep_wake_waiter(ep)
        if ep.poll_wait:
            ep_poll_safewake(ep)


def ep_modify(ep: Eventpoll, epi: EpItem, events: int, data: int) -> None:
    """EPOLL_CTL_MOD (``ep_modify``): new mask and data (re-arming a fired EPOLLONESHOT); queue
    the item if the new mask finds it ready."""
    epi.events = events
    epi.data = data
    _ep_queue_if_ready(ep, epi)


def ep_remove(ep: Eventpoll, epi: EpItem) -> None:
    """EPOLL_CTL_DEL / file release (``ep_remove``): unhook from the wait queue and ready list."""
    wq = epi.whead
    if wq is not None:
        try:
            wq.remove(epi)
        except ValueError:
            pass
        epi.whead = None
    if epi.ready:
        epi.ready = False
        try:
            ep.rdllist.remove(epi)
        except ValueError:
            pass
    ep.items.pop((id(epi.file), epi.fd), None)


def eventpoll_release(file: Any) -> None:
    """A watched file is closed: it leaves every epoll watching it (``eventpoll_release``)."""
    wq = file.poll_wait if isinstance(file, Eventpoll) else file.sk.ep_wq
    if wq:
        for epi in list(wq):
            ep_remove(epi.ep, epi)


def _ep_depth_down(ep: Eventpoll, target: Eventpoll, depth: int) -> int:
    """How deep the epolls nested under ``ep`` go; -1 if ``target`` is among them
    (``ep_loop_check_proc``)."""
    deepest = depth
    for epi in ep.items.values():
        f = epi.file
        if isinstance(f, Eventpoll):
            if f is target:
                return -1
            d = _ep_depth_down(f, target, depth + 1)
            if d < 0:
                return -1
            deepest = max(deepest, d)
    return deepest


def _ep_depth_up(ep: Eventpoll, depth: int) -> int:
    """How many epolls sit above ``ep`` (``ep_get_upwards_depth_proc``)."""
    deepest = depth
    for epi in ep.poll_wait:
        deepest = max(deepest, _ep_depth_up(epi.ep, depth + 1))
    return deepest


def ep_loop_check(ep: Eventpoll, to: Eventpoll) -> bool:
    """True if watching epoll ``to`` from ``ep`` closes a cycle or nests deeper than
    EP_MAX_NESTS (``ep_loop_check``)."""
    down = _ep_depth_down(to, ep, 0)
    if down < 0:
        return True
    return down + 1 + _ep_depth_up(ep, 0) > EP_MAX_NESTS


# ---- the syscalls on a host ---------------------------------------------------------------

def epoll_create(net: Netns, size: int) -> int:
    """epoll_create(2): EINVAL unless ``size`` > 0 (otherwise ignored); the new fd."""
    if size <= 0:
        raise oserror(E.EINVAL, "epoll_create size must be positive")
    return Eventpoll(net).fd


def epoll_create1(net: Netns, flags: int = 0) -> int:
    """epoll_create1(2): EINVAL for flags other than EPOLL_CLOEXEC; the new fd."""
    return Eventpoll(net, flags).fd


def _ep_file(net: Netns, epfd: int) -> Eventpoll:
    f = net.files.get(epfd)
    if not isinstance(f, Eventpoll):
        raise oserror(E.EINVAL, f"fd {epfd} is not an epoll")
    return f


def epoll_ctl(net: Netns, epfd: int, op: int, fd: int, events: int = 0,
              data: int | None = None) -> int:
    """epoll_ctl(2): EBADF for a bad ``epfd`` or ``fd``, EPERM for a file without poll, EINVAL
    if ``epfd`` is no epoll (checked in ``do_epoll_ctl``'s order)."""
    ep = net.files.get(epfd)
    tf = net.files.get(fd)
    if getattr(tf, "poll", None) is None:
        raise oserror(E.EPERM, "file does not support poll")
    if not isinstance(ep, Eventpoll):
        raise oserror(E.EINVAL, f"fd {epfd} is not an epoll")
    ep.epoll_ctl(op, fd, events, data)
    return 0


def epoll_wait(net: Netns, epfd: int, maxevents: int, timeout: int) -> list[tuple[int, int]]:
    """epoll_wait(2): EINVAL for ``maxevents`` <= 0, EBADF / EINVAL for a bad ``epfd``."""
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise oserror(E.EINVAL, f"maxevents {maxevents}")
    return _ep_file(net, epfd).epoll_wait(maxevents, timeout)


async def aepoll_wait(net: Netns, epfd: int, maxevents: int,
                      timeout: int) -> list[tuple[int, int]]:
    """epoll_wait(2) for code running in the event loop."""
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise oserror(E.EINVAL, f"maxevents {maxevents}")
    return await _ep_file(net, epfd).aepoll_wait(maxevents, timeout)
