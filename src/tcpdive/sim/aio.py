"""asyncio transports, servers and streams over simulated TCP (architecture principle 4).

Ordinary asyncio code runs unchanged on a simulated host::

    async def main():
        reader, writer = await asyncio.open_connection("10.0.0.2", 6379)
        ...
    client.run(main())          # or client.spawn(main()) / world.run(main(), host=client)

``VirtualTimeLoop.create_connection`` / ``create_server`` / ``sock_*`` delegate here; the host a
coroutine runs on is the ``current_host`` context variable set by ``Host.spawn``/``Host.run``
(or pass ``on=host`` to the functions of this module).

:class:`SimTransport` plays the role of asyncio's ``_SelectorSocketTransport``: it is
event-driven, never polls. It registers a one-shot waiter on the socket's wait queue
(``sk_add_waiter``); when the stack wakes the socket (``sk_wake``: data, FIN, RST, ACK freeing
send space, state change), the transport schedules one processing pass with ``call_soon`` (so
protocol callbacks never run inside the TCP input path), reads what is there with non-blocking
``recv``, flushes its write buffer with non-blocking ``send`` and re-arms the waiter if it still
has something to wait for.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import errno as _errno
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..packet.ipv4 import ip2int
from ..skb import byte_view
from ..socket import (
    IPPROTO_TCP,
    MSG_DONTWAIT,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    SHUT_WR,
    SO_ERROR,
    SO_LINGER,
    SO_REUSEADDR,
    SOL_SOCKET,
    TCP_NODELAY,
    Socket,
)
from ..tcp.tcp import sk_add_waiter

if TYPE_CHECKING:
    from .world import Host

__all__ = [
    "NoHostError",
    "SimServer",
    "SimTransport",
    "create_connection",
    "create_server",
    "open_connection",
    "resolve",
    "sock_accept",
    "sock_connect",
    "sock_recv",
    "sock_recv_into",
    "sock_sendall",
    "start_server",
    "this_host",
]

_EAGAIN = _errno.EAGAIN
_MAX_READ = 256 * 1024  # bytes taken per recv() (asyncio's max_size is 256 KiB too)
_DEFAULT_HIGH = 64 * 1024  # asyncio's default write-buffer high-water mark
_LOG_THRESHOLD = 5  # write() calls on a lost connection before warning (asyncio's value)


# ------------------------------------------------------------------------------ host lookup


class NoHostError(NotImplementedError):
    """A network call from a coroutine not started on a simulated host.

    A ``RuntimeError``; derived from ``NotImplementedError`` because that is what the loop raised
    for OS I/O before simulated transports existed.
    """


def this_host(on: Host | None = None) -> Host:
    """``on``, or the host the running coroutine was started on (``current_host``)."""
    if on is not None:
        return on
    from .world import current_host

    h = current_host.get()
    if h is None:
        raise NoHostError(
            "no simulated host for this coroutine (the virtual-time loop does no OS I/O, only "
            "the simulated network's): run this coroutine with host.spawn()/host.run() "
            "(or world.run(coro, host=...)), or pass on=host"
        )
    return h


def resolve(host: Host, name: Any) -> str:
    """A dotted quad for ``name``: a dotted quad itself, '' / None (any), 'localhost', a
    ``Host`` object, or the name of a host of the same world (its primary address)."""
    if name is None or name == "":
        return "0.0.0.0"
    if hasattr(name, "world") and hasattr(name, "addr"):  # a Host object
        return name.addr or host.world.addr_of(name)
    if not isinstance(name, str):
        raise TypeError(f"host must be a str, got {type(name).__name__}")
    if name == "localhost":
        return "127.0.0.1"
    try:
        ip2int(name)
        parts = name.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            return name
    except (ValueError, OSError, TypeError, IndexError):
        pass
    world = getattr(host, "world", None)
    other = world.hosts.get(name) if world is not None else None
    if other is None:
        # getaddrinfo's EAI_NONAME, as asyncio would raise it
        import socket as _stdsocket

        raise _stdsocket.gaierror(_stdsocket.EAI_NONAME,
                                  f"Name or service not known: {name!r} (not a dotted quad "
                                  "nor a host of this world)")
    return other.addr or world.addr_of(other)


def _host_context(host: Host) -> contextvars.Context:
    """A copy of the current context with ``current_host`` set to ``host``."""
    from .world import current_host

    ctx = contextvars.copy_context()
    ctx.run(current_host.set, host)
    return ctx


# ------------------------------------------------------------------------------ transport


class SimTransport(asyncio.Transport):
    """An asyncio stream transport over a connected tcpdive :class:`~tcpdive.socket.Socket`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: Socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: SimServer | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        super().__init__(extra)
        self._loop = loop
        self._sock = sock
        self._sk = sock.sk
        self._protocol = protocol
        self._server = server
        self._ctx = context if context is not None else contextvars.copy_context()
        self._buffer: collections.deque[memoryview] = collections.deque()
        self._buffer_size = 0
        self._high_water = _DEFAULT_HIGH
        self._low_water = _DEFAULT_HIGH // 4
        self._protocol_paused = False
        self._paused = False  # reading paused
        self._eof_seen = False  # EOF delivered to the protocol; no more reads
        self._eof = False  # write_eof() requested
        self._closing = False
        self._conn_lost = 0
        self._armed = False  # a waiter is registered on the socket
        self._scheduled = False  # a processing pass is queued with call_soon
        self._made = False  # connection_made has run
        sock.setblocking(False)
        # asyncio's socket transports disable Nagle (base_events._set_nodelay); so do we
        try:
            sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except OSError:
            pass
        self._extra["socket"] = sock
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        try:
            self._extra["peername"] = sock.getpeername()
        except OSError:
            self._extra["peername"] = None
        if server is not None:
            server._attach(self)
        loop.call_soon(self._connection_made, waiter, context=self._ctx)

    # ---- lifecycle ------------------------------------------------------------------------

    def _connection_made(self, waiter: asyncio.Future[None] | None) -> None:
        self._made = True
        try:
            self._protocol.connection_made(self)
        except BaseException as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self._force_close(exc if isinstance(exc, Exception) else None)
            if not isinstance(exc, Exception):
                raise
            return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._closing:
            self._process()  # data may already be queued (it arrived with the handshake)

    def __repr__(self) -> str:
        state = "closing" if self._closing else "open"
        return f"<SimTransport {state} {self._sock!r} buffered={self._buffer_size}>"

    # ---- waking -----------------------------------------------------------------------------

    def _arm(self) -> None:
        """Register for the next wake-up of the socket if there is something to wait for."""
        if self._armed or self._sock is None:
            return
        want_read = not self._paused and not self._eof_seen and not self._closing
        if want_read or self._buffer:
            self._armed = True
            sk_add_waiter(self._sk, self._on_wake)

    def _on_wake(self) -> None:
        """Called synchronously by ``sk_wake`` inside the stack: defer the work to the loop."""
        self._armed = False
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self._sock is not None:
            self._scheduled = True
            self._loop.call_soon(self._run_scheduled, context=self._ctx)

    def _run_scheduled(self) -> None:
        self._scheduled = False
        if self._sock is not None and self._made:
            self._process()

    def _process(self) -> None:
        """One pass: read what is ready, flush what fits, re-arm."""
        if not self._paused and not self._eof_seen and not self._closing:
            self._read_ready()
        if self._sock is None:
            return
        if self._buffer:
            self._write_ready()
        if self._sock is not None:
            self._arm()

    # ---- reading ---------------------------------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        while sock is not None and not self._paused and not self._closing:
            try:
                data = sock.recv(_MAX_READ, MSG_DONTWAIT)
            except OSError as exc:
                if exc.errno == _EAGAIN:
                    return
                self._fatal_error(exc, "Fatal read error on simulated socket transport")
                return
            if not data:
                self._read_eof()
                return
            try:
                self._protocol.data_received(data)  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                return
            sock = self._sock

    def _read_eof(self) -> None:
        self._eof_seen = True
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._schedule()  # whatever arrived meanwhile is waiting in the receive queue

    # ---- writing ---------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._conn_lost or self._sock is None:
            if self._conn_lost >= _LOG_THRESHOLD:
                import logging

                logging.getLogger("asyncio").warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # the caller may reuse its buffer
        view = byte_view(data)
        if not self._buffer:
            try:
                n = self._sock.send(view, MSG_DONTWAIT)
            except OSError as exc:
                if exc.errno != _EAGAIN:
                    self._fatal_error(exc, "Fatal write error on simulated socket transport")
                    return
                n = 0
            view = view[n:]
            if not view:
                return
        self._buffer.append(view)
        self._buffer_size += len(view)
        self._arm()
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        buf = self._buffer
        sock = self._sock
        while buf:
            head = buf[0]
            try:
                n = sock.send(head, MSG_DONTWAIT)
            except OSError as exc:
                if exc.errno == _EAGAIN:
                    break
                self._fatal_error(exc, "Fatal write error on simulated socket transport")
                return
            self._buffer_size -= n
            if n == len(head):
                buf.popleft()
            else:
                buf[0] = head[n:]
                break
        self._maybe_resume_protocol()
        if not buf:
            if self._closing:
                self._conn_lost += 1
                self._call_connection_lost_soon(None)
            elif self._eof:
                self._shutdown_wr()

    def _shutdown_wr(self) -> None:
        try:
            self._sock.shutdown(SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on simulated socket shutdown")

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer and self._sock is not None:
            self._shutdown_wr()

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._buffer_size <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.pause_writing() failed",
                "exception": exc, "transport": self, "protocol": self._protocol,
            })

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.resume_writing() failed",
                    "exception": exc, "transport": self, "protocol": self._protocol,
                })

    # ---- closing ---------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close after flushing the write buffer; the socket close sends FIN (RST if unread data)."""
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._conn_lost += 1
            self._call_connection_lost_soon(None)
        else:
            self._arm()

    def abort(self) -> None:
        """Close now, dropping buffered data, with an RST (``SO_LINGER`` {1, 0} then close)."""
        sock = self._sock
        if sock is not None and not sock.closed:
            try:
                sock.setsockopt(SOL_SOCKET, SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler({
                "message": message, "exception": exc,
                "transport": self, "protocol": self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
        self._closing = True
        self._conn_lost += 1
        self._call_connection_lost_soon(exc)

    def _call_connection_lost_soon(self, exc: BaseException | None) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        # close the socket now: the stack starts its FIN (or RST) at this instant
        sock.close()
        self._loop.call_soon(self._call_connection_lost, exc, context=self._ctx)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._made:
                self._protocol.connection_lost(exc)
        finally:
            self._protocol = None  # type: ignore[assignment]
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)

    # ---- protocol ----------------------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


# ------------------------------------------------------------------------------ server


class SimServer(asyncio.AbstractServer):
    """What ``create_server`` returns: like ``asyncio.Server`` over simulated listening sockets.

    ``wait_closed`` follows Python 3.12+: it returns once the server is closed *and* every
    connection it accepted has been closed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, host: Host, sockets: list[Socket],
                 protocol_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._loop = loop
        self._host = host
        self._sockets: list[Socket] | None = sockets
        self._protocol_factory = protocol_factory
        self._ctx = _host_context(host)
        self._serving = False
        self._armed: set[int] = set()
        self._transports: set[SimTransport] = set()
        self._waiters: list[asyncio.Future[None]] | None = []
        self._serving_forever_fut: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<SimServer host={self._host.name} sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[Socket, ...]:
        return tuple(self._sockets or ())

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        self._start_serving()
        await asyncio.sleep(0)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for s in self._sockets:
            self._accept_ready(s)

    def _arm(self, s: Socket) -> None:
        if self._serving and id(s) not in self._armed and not s.closed:
            self._armed.add(id(s))
            sk_add_waiter(s.sk, lambda s=s: self._on_wake(s))

    def _on_wake(self, s: Socket) -> None:
        self._armed.discard(id(s))
        self._loop.call_soon(self._accept_ready, s, context=self._ctx)

    def _accept_ready(self, s: Socket) -> None:
        while self._serving and not s.closed and s.poll() & POLLIN:
            try:
                conn, _peer = s.accept()
            except OSError as exc:
                if exc.errno == _EAGAIN:
                    break
                raise
            try:
                protocol = self._protocol_factory()
            except BaseException:
                conn.close()
                raise
            SimTransport(self._loop, conn, protocol, server=self, context=self._ctx.copy())
        self._arm(s)

    def _attach(self, transport: SimTransport) -> None:
        self._transports.add(transport)

    def _detach(self, transport: SimTransport) -> None:
        self._transports.discard(transport)
        self._wakeup_if_done()

    def _wakeup_if_done(self) -> None:
        if self._sockets is None and not self._transports and self._waiters is not None:
            waiters, self._waiters = self._waiters, None
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def close(self) -> None:
        """Stop accepting and close the listening sockets (accepted connections stay open)."""
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        self._serving = False
        for s in sockets:
            s.close()  # unaccepted children are reset, as close() of a listener does
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        self._wakeup_if_done()

    def close_clients(self) -> None:
        for t in list(self._transports):
            t.close()

    def abort_clients(self) -> None:
        for t in list(self._transports):
            t.abort()

    async def wait_closed(self) -> None:
        if self._waiters is None:
            return
        w = self._loop.create_future()
        self._waiters.append(w)
        await w

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None


# ------------------------------------------------------------------------------ entry points


async def create_connection(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: Any = None,
    port: int | None = None,
    *,
    on: Host | None = None,
    local_addr: tuple[str, int] | None = None,
    sock: Socket | None = None,
) -> tuple[SimTransport, asyncio.BaseProtocol]:
    """``loop.create_connection`` on a simulated host: connect, then wrap in a SimTransport."""
    loop = asyncio.get_running_loop()
    h = this_host(on)
    if sock is None:
        if host is None or port is None:
            raise ValueError("host and port must be specified when sock is not given")
        addr = resolve(h, host)
        sock = h.socket()
        try:
            if local_addr is not None:
                sock.bind((resolve(h, local_addr[0]), local_addr[1]))
            await sock_connect(sock, (addr, port))
        except BaseException:
            sock.close()
            raise
    elif host is not None or port is not None or local_addr is not None:
        raise ValueError("host/port and sock can not be specified at the same time")
    protocol = protocol_factory()
    waiter = loop.create_future()
    transport = SimTransport(loop, sock, protocol, waiter, context=_host_context(h))
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    return transport, protocol


async def create_server(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: Any = None,
    port: int | None = None,
    *,
    on: Host | None = None,
    backlog: int = 100,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    sock: Socket | None = None,
    start_serving: bool = True,
) -> SimServer:
    """``loop.create_server`` on a simulated host: bind, listen and accept into SimTransports.

    ``host`` may be None/'' (all addresses), a dotted quad, a world host name or a sequence of
    them; ``reuse_address`` defaults to True as asyncio's does on POSIX.
    """
    loop = asyncio.get_running_loop()
    h = this_host(on)
    sockets: list[Socket] = []
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        sockets.append(sock)
    else:
        if reuse_address is None:
            reuse_address = True
        hosts = [host] if host is None or isinstance(host, str) or hasattr(host, "world") else list(host)
        try:
            for name in hosts:
                s = h.socket()
                sockets.append(s)
                if reuse_address:
                    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
                if reuse_port:
                    from ..socket import SO_REUSEPORT

                    s.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)
                s.bind((resolve(h, name), port or 0))
        except BaseException:
            for s in sockets:
                s.close()
            raise
    for s in sockets:
        s.listen(backlog)
        s.setblocking(False)
    server = SimServer(loop, h, sockets, protocol_factory)
    if start_serving:
        server._start_serving()
        await asyncio.sleep(0)
    return server


async def open_connection(host: Any = None, port: int | None = None, *, on: Host | None = None,
                          limit: int = 2**16, **kwds: Any
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` on a simulated host (``on`` or the current one)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: protocol, host, port, on=on, **kwds)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(client_connected_cb: Callable[..., Any], host: Any = None,
                       port: int | None = None, *, on: Host | None = None, limit: int = 2**16,
                       **kwds: Any) -> SimServer:
    """``asyncio.start_server`` on a simulated host (``on`` or the current one)."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(factory, host, port, on=on, **kwds)


# ------------------------------------------------------------------------------ sock_* helpers


async def _wait_sk(sock: Socket) -> None:
    """Sleep until the stack next wakes the socket."""
    fut = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    sk_add_waiter(sock.sk, wake)
    await fut


async def sock_recv(sock: Socket, n: int) -> bytes:
    """``loop.sock_recv``: wait for data, EOF or error, whatever the socket's blocking mode."""
    while True:
        try:
            return sock.recv(n, MSG_DONTWAIT)
        except OSError as exc:
            if exc.errno != _EAGAIN:
                raise
        await _wait_sk(sock)


async def sock_recv_into(sock: Socket, buf: Any) -> int:
    view = byte_view(buf)
    data = await sock_recv(sock, len(view))
    view[: len(data)] = data
    return len(data)


async def sock_sendall(sock: Socket, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(bytes(data) if not isinstance(data, bytes) else data)
    while view:
        try:
            n = sock.send(view, MSG_DONTWAIT)
        except OSError as exc:
            if exc.errno != _EAGAIN:
                raise
            await _wait_sk(sock)
            continue
        view = view[n:]


async def sock_connect(sock: Socket, address: tuple[Any, int]) -> None:
    """``loop.sock_connect``: start the handshake, wait for it, raise its error (SO_ERROR)."""
    host = getattr(sock.net, "world", None) and sock.net
    if host is not None and isinstance(address[0], str):
        address = (resolve(host, address[0]), address[1])
    was_nonblocking, timeout = sock.nonblocking, sock.timeout
    sock.setblocking(False)
    try:
        try:
            sock.connect(address)
            return
        except OSError as exc:
            if exc.errno != _errno.EINPROGRESS:
                raise
        while not sock.poll() & (POLLOUT | POLLERR | POLLHUP):
            await _wait_sk(sock)
        err = sock.getsockopt(SOL_SOCKET, SO_ERROR)
        if err:
            from ..errors import oserror

            raise oserror(int(err), f"connect to {address[0]}:{address[1]}")
    finally:
        sock.nonblocking, sock.timeout = was_nonblocking, timeout


async def sock_accept(sock: Socket) -> tuple[Socket, tuple[str, int]]:
    """``loop.sock_accept``: wait for a completed connection."""
    while not sock.poll() & (POLLIN | POLLERR | POLLHUP | POLLNVAL):
        await _wait_sk(sock)
    return sock.accept()
