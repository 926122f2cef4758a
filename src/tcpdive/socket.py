"""The BSD socket layer: file descriptors, ``struct socket``, blocking and non-blocking calls.

"Everything is a file": each host has an fd table; ``read``/``write`` work on a socket fd like
``recv``/``send``. Calls never block inside the kernel: a call that would block either raises
EAGAIN / EINPROGRESS (non-blocking) or sleeps on the socket's wait queue until woken
(``sk_wait_event``). In the simulator, a blocking call made outside the event loop runs virtual
time until it completes; inside coroutines use the ``a``-prefixed awaitables.
"""

from __future__ import annotations

import asyncio
import heapq
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import errors as E
from .errors import oserror
from .packet.ipv4 import int2ip, ip2int
from .skb import byte_view
from .tcp import fastopen as _fastopen
from .tcp import sock as S
from .tcp.input import tcp_epollin_ready
from .tcp.ipv4 import tcp_v4_connect
from .tcp.output import __sk_stream_is_writeable
from .tcp.sock import TcpSock
from .tcp.sockopt import do_getsockopt, do_setsockopt
from .tcp.tcp import (
    lock_sock,
    release_sock,
    sk_add_waiter,
    sk_stream_memory_free,
    sk_wake,
    tcp_close,
    tcp_disconnect,
    tcp_ioctl_outq,
    tcp_listen_start,
    tcp_recvmsg,
    tcp_sendmsg,
    tcp_shutdown,
)
from .tcp.urgent import tcp_atmark, tcp_inq, tcp_poll_urg

if TYPE_CHECKING:
    from .net.netns import Netns

# address families, types, levels and options (Linux values)
AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
SOL_SOCKET = 1
SO_DEBUG = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_LINGER = 13
SO_REUSEPORT = 15
SO_RCVLOWAT = 18
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
SO_ACCEPTCONN = 30
SO_PROTOCOL = 38
SO_DOMAIN = 39
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_CORK = 3
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_SYNCNT = 7
TCP_LINGER2 = 8
TCP_DEFER_ACCEPT = 9
TCP_WINDOW_CLAMP = 10
TCP_INFO = 11
TCP_QUICKACK = 12
TCP_CONGESTION = 13
TCP_USER_TIMEOUT = 18
TCP_NOTSENT_LOWAT = 25
IP_TOS = 1
IP_TTL = 2
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTWAIT = 0x40
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_MORE = 0x8000
MSG_FASTOPEN = 0x20000000
O_NONBLOCK = 0o4000
POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020
POLLRDNORM = 0x040
POLLWRNORM = 0x100
POLLRDHUP = 0x2000
SIOCINQ = 0x541B
SIOCOUTQ = 0x5411
SIOCATMARK = 0x8905
FIONREAD = SIOCINQ

SOCK_BINDPORT_LOCK = 0x8
SOCK_BINDADDR_LOCK = 0x4
SOCK_SNDBUF_LOCK = 0x1
SOCK_RCVBUF_LOCK = 0x2

_LINGER = struct.Struct("ii")


class FdTable:
    """A host's file descriptor table: lowest free number first, 0-2 taken by stdio."""

    def __init__(self, net: Netns) -> None:
        self.net = net
        self.files: dict[int, Socket] = {}
        self.limit = 1 << 20          # RLIMIT_NOFILE of a simulated host: effectively unlimited
        self._free: list[int] = []    # closed descriptors, lowest first (a heap)
        self._next = 3

    def install(self, f: Socket) -> int:
        """``fd_install`` at the lowest free descriptor (EMFILE past RLIMIT_NOFILE)."""
        if self._free:
            fd = heapq.heappop(self._free)
        else:
            fd = self._next
            if fd >= self.limit:
                raise oserror(E.EMFILE, "too many open files")
            self._next += 1
        self.files[fd] = f
        f.fd = fd
        return fd

    def release(self, fd: int) -> None:
        """Free a descriptor number for reuse (``put_unused_fd``)."""
        if self.files.pop(fd, None) is not None:
            heapq.heappush(self._free, fd)

    def get(self, fd: int) -> Socket:
        f = self.files.get(fd)
        if f is None:
            raise oserror(E.EBADF, f"fd {fd}")
        return f

    def close(self, fd: int) -> None:
        self.get(fd).close()


def _addr(addr: Any) -> tuple[int, int]:
    """('10.0.0.1', 80) / (int, port) -> (int address, port), EINVAL/EAFNOSUPPORT on junk."""
    if not isinstance(addr, tuple) or len(addr) != 2:
        raise oserror(E.EINVAL, f"bad sockaddr {addr!r}")
    host, port = addr
    if isinstance(host, str):
        a = 0 if host in ("", "0.0.0.0") else ip2int(host)
    elif isinstance(host, int):
        a = host
    else:
        raise oserror(E.EAFNOSUPPORT, f"bad address {host!r}")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OverflowError("port must be 0-65535.") if isinstance(port, int) else oserror(
            E.EINVAL, f"bad port {port!r}")
    return a, port


class Socket:
    """``struct socket`` + its ``struct file``: the object behind a socket fd.

    Methods mirror Python's ``socket.socket`` (bind, listen, accept, connect, send, sendall,
    recv, recv_into, shutdown, close, getsockname, getpeername, setsockopt, getsockopt,
    setblocking, settimeout, fileno); the ``a``-prefixed coroutines are the same calls for code
    already running in the event loop.
    """

    def __init__(self, net: Netns, family: int = AF_INET, type: int = SOCK_STREAM,
                 proto: int = 0, _sk: Any = None) -> None:
        base_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        if family != AF_INET:
            raise oserror(E.EAFNOSUPPORT, "only AF_INET is implemented")
        if base_type == SOCK_STREAM:
            if proto not in (0, IPPROTO_TCP):
                raise oserror(E.EPROTONOSUPPORT)
            self.sk = _sk if _sk is not None else TcpSock(net)
        elif base_type == SOCK_DGRAM:
            if proto not in (0, IPPROTO_UDP):
                raise oserror(E.EPROTONOSUPPORT)
            from .net.udp import UdpSock

            self.sk = _sk if _sk is not None else UdpSock(net)
        else:
            raise oserror(E.ESOCKTNOSUPPORT if base_type == SOCK_RAW else E.EINVAL)
        self.net = net
        self.family = family
        self.type = base_type
        self.is_tcp = base_type == SOCK_STREAM
        self.proto = IPPROTO_TCP if base_type == SOCK_STREAM else IPPROTO_UDP
        self.nonblocking = bool(type & SOCK_NONBLOCK)
        self.timeout: float | None = None
        self.fd = -1
        self.closed = False
        # struct socket's SS_* state; only the TCP Fast Open paths of connect/sendmsg read it
        self.ss_state = _fastopen.SS_CONNECTED if _sk is not None else _fastopen.SS_UNCONNECTED
        self.sk.socket = self
        net.files.install(self)

    # ---- helpers -------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.fd

    def _check_open(self) -> None:
        if self.closed:
            raise oserror(E.EBADF, "socket is closed")

    def _loop(self):
        return self.net.clock

    def _run_blocking(self, coro):
        """Run a blocking call: drive virtual time outside the loop; refuse inside it."""
        loop = self._loop()
        if not isinstance(loop, asyncio.AbstractEventLoop):
            coro.close()
            raise oserror(E.EAGAIN, "would block and this clock cannot wait")
        if loop.is_running():
            coro.close()
            raise RuntimeError("blocking socket call inside the event loop: await the "
                               "a-prefixed form (e.g. await sock.arecv(n)) or use non-blocking")
        return loop.run_until_complete(coro)

    async def _wait(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Sleep until ``ready()`` holds (``sk_wait_event``); EAGAIN-style timeout -> TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        sk = self.sk
        while not ready():
            fut = loop.create_future()

            def wake(fut=fut) -> None:
                if not fut.done():
                    fut.set_result(None)

            sk_add_waiter(sk, wake)
            if deadline is None:
                await fut
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError("timed out")
                try:
                    await asyncio.wait_for(fut, remaining)
                except TimeoutError:
                    raise TimeoutError("timed out") from None

    def _would_block(self, flags: int = 0) -> bool:
        return self.nonblocking or bool(flags & MSG_DONTWAIT) or self.timeout == 0

    # ---- bind / listen / accept ------------------------------------------------------------

    def bind(self, addr: tuple) -> None:
        """bind(): local address and port, EADDRINUSE on conflict (``inet_bind``)."""
        self._check_open()
        a, port = _addr(addr)
        sk = self.sk
        if not self.is_tcp:
            sk.bind(a, port)
            return
        if sk.state != S.TCP_CLOSE or sk.sport:
            raise oserror(E.EINVAL, "socket already bound")
        if (a and a not in self.net.local_addrs and (a >> 24) != 127
                and not self.net.sysctl.ip_nonlocal_bind and not sk.freebind):
            raise oserror(E.EADDRNOTAVAIL, f"{int2ip(a)} is not a local address")
        sk.rcv_saddr = sk.saddr = a
        self.net.tcp_hashinfo.get_port(sk, port)
        if a:
            sk.userlocks |= SOCK_BINDADDR_LOCK
        if port:
            sk.userlocks |= SOCK_BINDPORT_LOCK
        sk.bound = True

    def listen(self, backlog: int = 128) -> None:
        """listen(): autobinds if needed (``inet_listen``); EINVAL unless unconnected."""
        self._check_open()
        sk = self.sk
        if not self.is_tcp:
            raise oserror(E.EOPNOTSUPP)
        if sk.state not in (S.TCP_CLOSE, S.TCP_LISTEN):
            raise oserror(E.EINVAL, "socket is connected")
        if not sk.sport:
            self.net.tcp_hashinfo.get_port(sk, 0)
        else:
            tb = sk.bind_bucket
            if tb is not None and self.net.tcp_hashinfo.bind_conflict(sk, tb, True, True):
                # listen() re-checks: another listener may have taken the port meanwhile
                raise oserror(E.EADDRINUSE)
        tcp_listen_start(sk, backlog)

    def _accept_now(self) -> Socket:
        sk = self.sk
        if not self.is_tcp or sk.state != S.TCP_LISTEN:
            raise oserror(E.EINVAL, "socket is not listening")
        aq = sk.accept_queue
        if not aq:
            raise oserror(E.EAGAIN)
        child = aq.popleft()
        ns = Socket(self.net, AF_INET, SOCK_STREAM, 0, _sk=child)
        child.parent = None
        return ns

    def accept(self) -> tuple[Socket, tuple[str, int]]:
        """accept(): the oldest completed connection (``inet_csk_accept``)."""
        self._check_open()
        try:
            ns = self._accept_now()
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block():
                raise
            ns = self._run_blocking(self._aaccept_wait())
        return ns, ns.getpeername()

    async def _aaccept_wait(self) -> Socket:
        sk = self.sk
        await self._wait(lambda: bool(sk.accept_queue) or sk.state != S.TCP_LISTEN, self.timeout)
        return self._accept_now()

    async def aaccept(self) -> tuple[Socket, tuple[str, int]]:
        self._check_open()
        sk = self.sk
        if (self.is_tcp and sk.state == S.TCP_LISTEN and not sk.accept_queue
                and not self._would_block()):
            ns = await self._aaccept_wait()         # nothing queued: sleep first, no EAGAIN
            return ns, ns.getpeername()
        try:
            ns = self._accept_now()
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block():
                raise
            ns = await self._aaccept_wait()
        return ns, ns.getpeername()

    # ---- connect ---------------------------------------------------------------------------

    def _connect_start(self, addr: tuple) -> bool:
        """Start connect(); True if finished (``__inet_stream_connect``), EINPROGRESS-worthy else."""
        a, port = _addr(addr)
        sk = self.sk
        if not self.is_tcp:
            sk.connect(a, port)
            return True
        st = sk.state
        if sk.tfo is not None and sk.tfo.defer_connect and self.ss_state == _fastopen.SS_CONNECTING:
            raise oserror(E.EISCONN)        # a deferred Fast Open connect is "connected"
        if st == S.TCP_ESTABLISHED or st == S.TCP_CLOSE_WAIT:
            raise oserror(E.EISCONN)
        if st in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
            raise oserror(E.EALREADY)
        if st == S.TCP_LISTEN:
            raise oserror(E.EINVAL)
        if st != S.TCP_CLOSE:
            raise oserror(E.EISCONN)
        if sk.sk_err:
            sk.sk_err = 0
        if port == 0:
            raise oserror(E.ECONNREFUSED)
        if a == 0:
            a = 0x7F000001
        sk.dead = False
        sk.done = False
        sk.sk_shutdown = 0
        tcp_v4_connect(sk, a, port)
        self.ss_state = _fastopen.SS_CONNECTING
        # TCP_FASTOPEN_CONNECT with a cookie: connect() returns 0, the first write sends SYN+data
        return sk.tfo is not None and sk.tfo.defer_connect

    def _connect_result(self) -> None:
        sk = self.sk
        if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
            raise oserror(E.EINPROGRESS)
        if sk.state == S.TCP_CLOSE or sk.sk_err:
            err = sk.sk_err or E.ECONNABORTED
            sk.sk_err = 0
            self.ss_state = _fastopen.SS_UNCONNECTED
            raise oserror(err, f"connect to {int2ip(sk.daddr)}:{sk.dport}" if sk.daddr else None)

    def connect(self, addr: tuple) -> None:
        """connect(): blocking waits for the handshake; non-blocking raises EINPROGRESS."""
        self._check_open()
        if self._connect_start(addr):
            return
        if self._would_block():
            raise oserror(E.EINPROGRESS)
        self._run_blocking(self._aconnect_wait())

    def disconnect(self) -> None:
        """connect() to an AF_UNSPEC address (``__inet_stream_connect`` -> ``tcp_disconnect``,
        ``__udp_disconnect``): TCP aborts (RST if the peer knows us) and may connect or listen
        again; UDP forgets its peer."""
        self._check_open()
        if self.is_tcp:
            tcp_disconnect(self.sk)
            self.ss_state = _fastopen.SS_UNCONNECTED
        else:
            self.sk.disconnect()

    def connect_ex(self, addr: tuple) -> int:
        try:
            self.connect(addr)
        except OSError as e:
            return e.errno or 0
        return 0

    async def _aconnect_wait(self) -> None:
        sk = self.sk
        try:
            await self._wait(lambda: sk.state not in (S.TCP_SYN_SENT, S.TCP_SYN_RECV), self.timeout)
        except TimeoutError:
            raise oserror(E.ETIMEDOUT, "connect timed out") from None
        self._connect_result()

    async def aconnect(self, addr: tuple) -> None:
        self._check_open()
        if self._connect_start(addr):
            return
        if self._would_block():
            raise oserror(E.EINPROGRESS)
        await self._aconnect_wait()

    # ---- data ------------------------------------------------------------------------------

    def _send_now(self, data: bytes | memoryview, flags: int) -> int:
        sk = self.sk
        if not self.is_tcp:
            return sk.sendto(data, None, flags)
        return tcp_sendmsg(sk, data, flags)

    def _send_ready(self) -> bool:
        sk = self.sk
        return (sk.sk_err != 0 or sk.sk_shutdown & S.SEND_SHUTDOWN != 0
                or sk.state not in (S.TCP_ESTABLISHED, S.TCP_CLOSE_WAIT, S.TCP_SYN_SENT,
                                    S.TCP_SYN_RECV)
                or (sk.state in (S.TCP_ESTABLISHED, S.TCP_CLOSE_WAIT)
                    and sk_stream_memory_free(sk)))

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """send(): bytes queued; blocks until some buffer space frees (``tcp_sendmsg``)."""
        self._check_open()
        data = byte_view(data) if not isinstance(data, bytes) else data
        if self._fastopen_send(flags):
            return self._sendmsg_fastopen(data, flags, None)
        try:
            return self._send_now(data, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block(flags):
                raise
            return self._run_blocking(self._asend_wait(data, flags))

    async def _retry(self, ready: Callable[[], bool], attempt: Callable[[], Any],
                     timeout_errno: int | None = None) -> Any:
        """Sleep until ``ready``, try again, repeat while it would still block (EAGAIN)."""
        while True:
            try:
                await self._wait(ready, self.timeout)
            except TimeoutError:
                if timeout_errno is None:
                    raise
                raise oserror(timeout_errno, "timed out") from None
            try:
                return attempt()
            except OSError as e:
                if e.errno != E.EAGAIN:
                    raise

    async def _asend_wait(self, data, flags: int) -> int:
        return await self._retry(self._send_ready, lambda: self._send_now(data, flags))

    async def asend(self, data: bytes, flags: int = 0) -> int:
        self._check_open()
        try:
            return self._send_now(data, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block(flags):
                raise
            return await self._asend_wait(data, flags)

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        """Send everything, blocking as needed."""
        self._check_open()
        if self._would_block(flags) or not isinstance(self._loop(), asyncio.AbstractEventLoop):
            view = byte_view(data)
            while view:
                n = self.send(view, flags)
                view = view[n:]
            return
        self._run_blocking(self.asendall(data, flags))

    async def asendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        view = byte_view(data)
        while view:
            n = await self.asend(view, flags)
            view = view[n:]

    def write(self, data: bytes) -> int:
        """write(2) on the socket fd: send() with no flags."""
        return self.send(data)

    def _recv_now(self, n: int, flags: int) -> bytes:
        sk = self.sk
        if not self.is_tcp:
            return sk.recvfrom(n, flags)[0]
        return tcp_recvmsg(sk, n, flags)

    def _recv_ready(self) -> bool:
        sk = self.sk
        if not self.is_tcp:
            return sk.readable()
        queued = sk.rcv_queue_bytes
        if queued and sk.urg_data and sk.urg_seq == sk.copied_seq and not sk.urginline:
            queued -= 1                 # the urgent byte at the mark is no data to a reader
        return (queued > 0 or sk.sk_err != 0 or bool(sk.sk_shutdown & S.RCV_SHUTDOWN)
                or sk.done or sk.state in (S.TCP_CLOSE, S.TCP_LISTEN))

    def recv(self, n: int, flags: int = 0) -> bytes:
        """recv(): up to ``n`` bytes, b'' at EOF; blocks until data, EOF or error.
        recv(MSG_OOB) never blocks (``tcp_recv_urg``)."""
        self._check_open()
        try:
            data = self._recv_now(n, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block(flags) or flags & MSG_OOB:
                raise
            data = self._run_blocking(self._arecv_wait(n, flags))
        if flags & MSG_WAITALL and self.is_tcp and 0 < len(data) < n and not self._would_block(flags):
            rest = self._run_blocking(self._arecv_all(n - len(data), flags))
            data += rest
        return data

    async def _arecv_all(self, n: int, flags: int) -> bytes:
        out = b""
        while len(out) < n:
            if self.is_tcp and self.sk.urg_data and tcp_atmark(self.sk):
                break                    # even MSG_WAITALL stops at the urgent mark
            chunk = await self._arecv_wait(n - len(out), flags & ~MSG_WAITALL)
            if not chunk:
                break
            out += chunk
        return out

    async def _arecv_wait(self, n: int, flags: int) -> bytes:
        return await self._retry(self._recv_ready, lambda: self._recv_now(n, flags), E.EAGAIN)

    async def arecv(self, n: int, flags: int = 0) -> bytes:
        self._check_open()
        if flags & MSG_OOB:
            return self._recv_now(n, flags)          # never blocks
        if self.is_tcp and n >= 0 and not self._recv_ready() and not self._would_block(flags):
            return await self._arecv_wait(n, flags)  # nothing to read: sleep first, no EAGAIN
        try:
            return self._recv_now(n, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block(flags):
                raise
            return await self._arecv_wait(n, flags)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        view = byte_view(buffer)
        n = nbytes or len(view)
        data = self.recv(n, flags)
        view[: len(data)] = data
        return len(data)

    def read(self, n: int) -> bytes:
        """read(2) on the socket fd: recv() with no flags."""
        return self.recv(n)

    def sendto(self, data: bytes, *args) -> int:
        self._check_open()
        flags, addr = (0, args[0]) if len(args) == 1 else (args[0], args[1])
        if self.is_tcp:
            if self._fastopen_send(flags):
                return self._sendmsg_fastopen(data, flags, _addr(addr) if addr else None)
            return self.send(data, flags)
        a, port = _addr(addr)
        return self.sk.sendto(data, (a, port), flags)

    # ---- TCP Fast Open (tcp_sendmsg_fastopen) ---------------------------------------------

    def _fastopen_send(self, flags: int) -> bool:
        """Does this sendmsg go through ``tcp_sendmsg_fastopen`` (MSG_FASTOPEN, or the first
        write after a TCP_FASTOPEN_CONNECT connect())?"""
        return self.is_tcp and (bool(flags & MSG_FASTOPEN) or (
            self.sk.tfo is not None and self.sk.tfo.defer_connect))

    def _sendmsg_fastopen(self, data, flags: int, addr: tuple | None) -> int:
        coro = self._asendmsg_fastopen(bytes(data), flags, addr)
        if self._would_block(flags):
            return _fastopen.drive(coro)
        return self._run_blocking(coro)

    async def _asendmsg_fastopen(self, data: bytes, flags: int, addr: tuple | None,
                                 send_rest: Callable | None = None) -> int:
        """sendto(MSG_FASTOPEN) / a deferred connect's first write: connect with data in the
        SYN (blocking callers wait for the handshake), then send what is left normally."""
        flags &= ~MSG_FASTOPEN

        async def rest(view) -> int:
            try:
                return self._send_now(view, flags)
            except OSError as e:
                if e.errno != E.EAGAIN or self._would_block(flags):
                    raise
                return await self._asend_wait(view, flags)

        return await _fastopen.tcp_sendmsg_with_fastopen(self, data, flags, addr,
                                                         send_rest or rest)

    def recvfrom(self, n: int, flags: int = 0) -> tuple[bytes, tuple[str, int] | None]:
        self._check_open()
        if self.is_tcp:
            return self.recv(n, flags), None
        try:
            data, (a, p) = self.sk.recvfrom(n, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or self._would_block(flags):
                raise
            self._run_blocking(self._wait_async(self._recv_ready))
            data, (a, p) = self.sk.recvfrom(n, flags)
        return data, (int2ip(a), p)

    async def _wait_async(self, ready) -> None:
        await self._wait(ready, self.timeout)

    async def arecvfrom(self, n: int, flags: int = 0) -> tuple[bytes, tuple[str, int]]:
        while True:
            try:
                data, (a, p) = self.sk.recvfrom(n, flags)
                return data, (int2ip(a), p)
            except OSError as e:
                if e.errno != E.EAGAIN or self._would_block(flags):
                    raise
                await self._wait(self._recv_ready, self.timeout)

    # ---- shutdown / close --------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        """shutdown(): SHUT_WR sends FIN (``inet_shutdown``); ENOTCONN if not connected."""
        self._check_open()
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise oserror(E.EINVAL)
        sk = self.sk
        if not self.is_tcp:
            sk.shutdown(how)
            return
        mask = how + 1                      # SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND_SHUTDOWN
        state = sk.state
        if state == S.TCP_LISTEN:
            if mask & S.RCV_SHUTDOWN:       # inet_shutdown: a listener is disconnected
                tcp_disconnect(sk)
            return
        if state == S.TCP_SYN_SENT:
            tcp_disconnect(sk)
            return
        sk.sk_shutdown |= mask
        tcp_shutdown(sk, mask)
        sk_wake(sk)
        if state == S.TCP_CLOSE:
            raise oserror(E.ENOTCONN)       # flags set anyway, as Linux does

    def close(self) -> None:
        """close(): release the fd; TCP goes on closing in the kernel (orphan) (``tcp_close``)."""
        if self.closed:
            return
        self.closed = True
        self.net.files.release(self.fd)
        sk = self.sk
        if sk.ep_wq:
            from .epoll import eventpoll_release

            eventpoll_release(self)
        if self.is_tcp:
            tcp_close(sk)
        else:
            sk.close()

    def detach(self) -> int:
        return self.fd

    # ---- names and options -------------------------------------------------------------------

    def getsockname(self) -> tuple[str, int]:
        sk = self.sk
        return int2ip(sk.saddr or sk.rcv_saddr), sk.sport

    def getpeername(self) -> tuple[str, int]:
        sk = self.sk
        if self.is_tcp:
            if sk.state in (S.TCP_CLOSE, S.TCP_LISTEN, S.TCP_SYN_SENT) and not (
                    sk.state == S.TCP_CLOSE and sk.done and sk.daddr):
                raise oserror(E.ENOTCONN)
        elif not sk.daddr:
            raise oserror(E.ENOTCONN)
        return int2ip(sk.daddr), sk.dport

    def setblocking(self, flag: bool) -> None:
        self.nonblocking = not flag
        self.timeout = None if flag else 0.0

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self.timeout = value
        self.nonblocking = value == 0

    def gettimeout(self) -> float | None:
        return self.timeout

    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None:
        self._check_open()
        do_setsockopt(self, level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        self._check_open()
        return do_getsockopt(self, level, optname, buflen)

    def poll(self) -> int:
        """Readiness mask as ``tcp_poll`` / ``udp_poll`` compute it."""
        if self.closed:
            return POLLNVAL
        sk = self.sk
        if not self.is_tcp:
            return sk.poll()
        return tcp_poll(sk)

    def ioctl(self, request: int) -> int:
        sk = self.sk
        if request == SIOCINQ:
            if self.is_tcp and sk.state == S.TCP_LISTEN:
                raise oserror(E.EINVAL)
            if self.is_tcp and sk.urg_data:
                return tcp_inq(sk)                  # only up to the urgent mark
            return sk.rcv_queue_bytes if self.is_tcp else sk.inq()
        if request == SIOCATMARK and self.is_tcp:
            return tcp_atmark(sk)
        if request == SIOCOUTQ:
            if self.is_tcp:
                if sk.state == S.TCP_LISTEN:
                    raise oserror(E.EINVAL)
                return tcp_ioctl_outq(sk)
            return 0
        raise oserror(E.ENOTTY if hasattr(E, "ENOTTY") else 25)

    def locked(self):
        """Hold the socket as a syscall does (``lock_sock`` ... ``release_sock``): segments that
        arrive meanwhile wait in the backlog and are processed on release. A context manager."""
        from contextlib import contextmanager

        @contextmanager
        def _held():
            lock_sock(self.sk)
            try:
                yield self
            finally:
                release_sock(self.sk)

        return _held()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tcpdive.Socket fd={self.fd} {self.sk!r}>"


def tcp_poll(sk: TcpSock) -> int:
    """``tcp_poll``: the readiness mask of a TCP socket, shared by poll(), select() and epoll.

    Listener: POLLIN with a connection to accept (``inet_csk_listen_poll``). Otherwise POLLHUP
    when shut down both ways or CLOSE, POLLIN|POLLRDHUP once the peer's FIN (or SHUT_RD) is in,
    POLLIN for SO_RCVLOWAT bytes (``tcp_epollin_ready``), POLLOUT while
    ``__sk_stream_is_writeable`` (buffer space and TCP_NOTSENT_LOWAT), POLLPRI for valid urgent
    data, POLLERR for a pending error. Finding no room sets SOCK_NOSPACE, so ``tcp_check_space``
    wakes the poller once ACKs free enough."""
    state = sk.state
    if state == S.TCP_LISTEN:
        return POLLIN | POLLRDNORM if sk.accept_queue else 0
    mask = 0
    shutdown = sk.sk_shutdown
    if shutdown == S.SHUTDOWN_MASK or state == S.TCP_CLOSE:
        mask |= POLLHUP
    if shutdown & S.RCV_SHUTDOWN:
        mask |= POLLIN | POLLRDNORM | POLLRDHUP
    tfo = sk.tfo
    if state not in (S.TCP_SYN_SENT, S.TCP_SYN_RECV) or (
            tfo is not None and state == S.TCP_SYN_RECV and tfo.fastopen_rsk is not None):
        target = sk.sk_rcvlowat or 1
        if sk.urg_data:
            target, _pri = tcp_poll_urg(sk, target)
        if tcp_epollin_ready(sk, target):
            mask |= POLLIN | POLLRDNORM
        if not shutdown & S.SEND_SHUTDOWN:
            if __sk_stream_is_writeable(sk, 1):
                mask |= POLLOUT | POLLWRNORM
            else:
                sk.sock_nospace = True
        else:
            mask |= POLLOUT | POLLWRNORM
        if sk.urg_data & 0x100:                 # TCP_URG_VALID
            mask |= POLLPRI
    elif tfo is not None and state == S.TCP_SYN_SENT and tfo.defer_connect:
        mask |= POLLOUT | POLLWRNORM        # the application's write() sends SYN+data
    if sk.sk_err:
        mask |= POLLERR
    return mask


def poll(net: Netns, fds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """poll(2) once: [(fd, events)] -> [(fd, revents)] (POLLNVAL for bad fds)."""
    out = []
    for fd, events in fds:
        f = net.files.files.get(fd)
        if f is None:
            out.append((fd, POLLNVAL))
            continue
        m = f.poll()
        out.append((fd, m & (events | POLLERR | POLLHUP | POLLNVAL)))
    return out
