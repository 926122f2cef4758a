"""A blocking, stdlib-compatible ``socket`` over a RealStack, and a patch for ``socket.socket``.

``socket`` here behaves like Python's ``socket.socket`` for AF_INET/SOCK_STREAM (and
SOCK_DGRAM): connect/bind/listen/accept, send/sendall/recv/recv_into, shutdown/close,
settimeout/setblocking (timeouts raise ``TimeoutError('timed out')``, non-blocking calls
``BlockingIOError``), makefile (the stdlib's own SocketIO/BufferedReader over this object),
setsockopt/getsockopt with Linux option numbers. Every call runs on the stack's loop thread;
a call that must wait sleeps on the socket's wait queue there while the calling thread blocks
on a future, so the real-time stack keeps running.

``patched(stack)`` routes ``socket.socket(AF_INET, SOCK_STREAM)`` and
``socket.create_connection`` through tcpdive for a block of code, so unmodified http.client,
urllib and redis-py talk TCP through tcpdive::

    with RealStack() as st, patched(st):
        redis.Redis(host=st.kernel_addr).ping()

The patch is process-wide while active (other threads see it too); sockets of other families
(AF_UNIX, AF_INET6) and sockets made from an existing fd still get the real kernel's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as _errno
import os
import socket as _std
from collections.abc import Callable, Iterator
from typing import Any

from ..skb import byte_view
from ..socket import (
    POLLERR,
    POLLHUP,
    POLLOUT,
    SO_ERROR,
    SOL_SOCKET,
)
from ..socket import Socket as _TdSocket
from ..tcp.tcp import sk_add_waiter
from .stack import RealStack, default_stack

__all__ = ["socket", "create_connection", "patched"]

_EAGAIN = _errno.EAGAIN
_REAL_SOCKET = _std.socket                 # taken before any patch
_REAL_CREATE_CONNECTION = _std.create_connection


def _timeout_error() -> TimeoutError:
    return TimeoutError("timed out")


class socket:  # noqa: N801 - the stdlib's name
    """A blocking socket on a tcpdive RealStack, shaped like ``socket.socket``."""

    _stack: RealStack | None = None      # set on subclasses made by patched()

    def __init__(self, family: int = _std.AF_INET, type: int = _std.SOCK_STREAM,
                 proto: int = 0, fileno: int | None = None, *,
                 stack: RealStack | None = None, _inner: _TdSocket | None = None) -> None:
        if fileno is not None:
            raise OSError(_errno.EBADF, "tcpdive sockets cannot be made from an OS fd")
        st = stack or self._stack or default_stack()
        self._st = st
        self.family = _std.AddressFamily(family)
        self.type = _std.SocketKind(type & ~(_std.SOCK_NONBLOCK | _std.SOCK_CLOEXEC))
        self.proto = proto
        self._timeout: float | None = _std.getdefaulttimeout()
        if type & _std.SOCK_NONBLOCK:
            self._timeout = 0.0
        self._io_refs = 0
        self._closed = False
        if _inner is None:
            _inner = st.call(st.net.socket, int(family), int(type) & ~_std.SOCK_NONBLOCK, proto)
        self._s: _TdSocket = _inner
        st.call(self._s.setblocking, False)

    # ---- the loop-thread machinery --------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._st.call(fn, *args, timeout=None)

    def _blocking(self, attempt: Callable[[], Any], ready: Callable[[], bool] | None = None) -> Any:
        """Run ``attempt`` on the loop thread until it stops raising EAGAIN, sleeping on the
        socket's wait queue between tries; the socket timeout bounds the whole call."""
        timeout = self._timeout
        if timeout == 0:
            return self._call(attempt)
        sock = self._s

        async def run() -> Any:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                if ready is None or ready():
                    try:
                        return attempt()
                    except BlockingIOError as e:
                        if e.errno != _EAGAIN:
                            raise
                fut = loop.create_future()

                def wake(fut: asyncio.Future = fut) -> None:
                    if not fut.done():
                        fut.set_result(None)

                sk_add_waiter(sock.sk, wake)
                if deadline is None:
                    await fut
                else:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise _timeout_error()
                    try:
                        await asyncio.wait_for(fut, left)
                    except TimeoutError:
                        raise _timeout_error() from None

        return self._st.run(run())

    def _check(self) -> None:
        if self._closed:
            raise OSError(_errno.EBADF, "Bad file descriptor")

    # ---- connection setup -------------------------------------------------------------------

    def bind(self, address: tuple[str, int]) -> None:
        self._check()
        self._call(self._s.bind, _resolve(address))

    def listen(self, backlog: int = 128) -> None:
        self._check()
        self._call(self._s.listen, backlog)

    def accept(self) -> tuple[socket, tuple[str, int]]:
        self._check()
        inner, peer = self._blocking(self._s.accept)
        cls = type(self)
        s = cls.__new__(cls)
        socket.__init__(s, self.family, self.type, self.proto, stack=self._st, _inner=inner)
        s._timeout = _std.getdefaulttimeout()
        return s, peer

    def connect(self, address: tuple[str, int]) -> None:
        self._check()
        address = _resolve(address)
        s = self._s

        def start() -> bool:
            try:
                s.connect(address)
                return True
            except BlockingIOError as e:
                if e.errno != _errno.EINPROGRESS:
                    raise
                return False

        if self._call(start):
            return
        if self._timeout == 0:
            raise BlockingIOError(_errno.EINPROGRESS, "Operation now in progress")

        def result() -> None:
            err = s.getsockopt(SOL_SOCKET, SO_ERROR)
            if err:
                raise OSError(int(err), os.strerror(int(err)))

        def done() -> bool:
            return bool(s.poll() & (POLLOUT | POLLERR | POLLHUP))

        self._blocking(result, done)

    def connect_ex(self, address: tuple[str, int]) -> int:
        try:
            self.connect(address)
        except TimeoutError:
            return _errno.EAGAIN
        except OSError as e:
            return e.errno or 0
        return 0

    # ---- data ---------------------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        self._check()
        data = bytes(data)
        return self._blocking(lambda: self._s.send(data, flags))

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        self._check()
        view = memoryview(bytes(data))
        s = self._s
        pos = [0]

        def attempt() -> None:
            while pos[0] < len(view):
                pos[0] += s.send(view[pos[0]:], flags)   # EAGAIN -> sleep, then go on
            return None

        self._blocking(attempt)

    def sendto(self, data: bytes, *args: Any) -> int:
        self._check()
        if self.type == _std.SOCK_STREAM:
            return self.send(data, args[0] if len(args) == 2 else 0)
        flags, addr = (0, args[0]) if len(args) == 1 else (args[0], args[1])
        return self._blocking(lambda: self._s.sendto(bytes(data), flags, _resolve(addr)))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._check()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""
        return self._blocking(lambda: self._s.recv(bufsize, flags))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = byte_view(buffer)
        n = nbytes or len(view)
        data = self.recv(n, flags)
        view[: len(data)] = data
        return len(data)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        self._check()
        return self._blocking(lambda: self._s.recvfrom(bufsize, flags))

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        view = byte_view(buffer)
        data, addr = self.recvfrom(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data), addr

    # ---- files --------------------------------------------------------------------------------

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """The stdlib's makefile (SocketIO + buffering) over this socket."""
        return _REAL_SOCKET.makefile(self, mode, buffering, encoding=encoding, errors=errors,
                                    newline=newline)

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self._real_close()

    # ---- shutdown / close ------------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        self._check()
        self._call(self._s.shutdown, how)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        if self._st.running:
            self._call(self._s.close)

    def detach(self) -> int:
        raise OSError(_errno.EOPNOTSUPP, "tcpdive sockets have no OS fd to detach")

    def __enter__(self) -> socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed and self._st.running and self._io_refs <= 0:
                self._closed = True
                self._st.loop.call_soon_threadsafe(self._s.close)

    # ---- names, options, modes ---------------------------------------------------------------------

    def fileno(self) -> int:
        """tcpdive's own descriptor number (of its fd table, not an OS fd); -1 once closed."""
        return -1 if self._closed else self._s.fd

    def getsockname(self) -> tuple[str, int]:
        return self._call(self._s.getsockname)

    def getpeername(self) -> tuple[str, int]:
        return self._call(self._s.getpeername)

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        self._check()
        if isinstance(value, bool):
            value = int(value)
        self._call(self._s.setsockopt, level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        self._check()
        return self._call(self._s.getsockopt, level, optname, buflen)

    def settimeout(self, value: float | None) -> None:
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @property
    def inner(self) -> _TdSocket:
        """The tcpdive kernel socket (touch it only on the loop thread: ``stack.call``)."""
        return self._s

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<tcpdive.real.socket {state} fd={self.fileno()} {self._s.sk!r}>"


def _resolve(address: Any) -> tuple[str, int]:
    """Dotted quads pass; names go through the real resolver (``getaddrinfo``)."""
    host, port = address
    if isinstance(host, str) and host not in ("", "0.0.0.0"):
        try:
            _std.inet_aton(host)
            if host.count(".") != 3:
                raise OSError
        except OSError:
            host = _std.getaddrinfo(host, port, _std.AF_INET, _std.SOCK_STREAM)[0][4][0]
    return host, port


def create_connection(address: tuple[str, int], timeout: Any = _std._GLOBAL_DEFAULT_TIMEOUT,
                      source_address: tuple[str, int] | None = None, *,
                      all_errors: bool = False, stack: RealStack | None = None) -> socket:
    """``socket.create_connection`` through tcpdive."""
    s = socket(_std.AF_INET, _std.SOCK_STREAM, stack=stack)
    try:
        if timeout is not _std._GLOBAL_DEFAULT_TIMEOUT:
            s.settimeout(timeout)
        if source_address:
            s.bind(source_address)
        s.connect(address)
        return s
    except BaseException:
        s.close()
        raise


@contextlib.contextmanager
def patched(stack: RealStack | None = None) -> Iterator[RealStack]:
    """Route ``socket.socket(AF_INET, SOCK_STREAM)`` and ``socket.create_connection`` through
    tcpdive for the ``with`` block; everything else keeps the real kernel's sockets."""
    st = stack or default_stack()
    real_socket = _std.socket
    real_cc = _std.create_connection

    class _Patched(socket):
        _stack = st

        def __new__(cls, family: int = _std.AF_INET, type: int = _std.SOCK_STREAM,
                    proto: int = 0, fileno: int | None = None, **kw: Any) -> Any:
            base = type & ~(_std.SOCK_NONBLOCK | _std.SOCK_CLOEXEC)
            if fileno is not None or family != _std.AF_INET or base != _std.SOCK_STREAM:
                return real_socket(family, type, proto, fileno)
            return super().__new__(cls)

    _Patched.__name__ = _Patched.__qualname__ = "socket"

    def cc(address: tuple[str, int], timeout: Any = _std._GLOBAL_DEFAULT_TIMEOUT,
           source_address: Any = None, **kw: Any) -> socket:
        return create_connection(address, timeout, source_address, stack=st)

    _std.socket = _Patched  # type: ignore[misc]
    _std.create_connection = cc  # type: ignore[assignment]
    try:
        yield st
    finally:
        _std.socket = real_socket  # type: ignore[misc]
        _std.create_connection = real_cc
