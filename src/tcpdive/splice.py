"""Host-level files beside sockets: pipes, in-memory regular files, splice() and sendfile()
(fs/pipe.c, fs/splice.c, ``do_sendfile`` in fs/read_write.c).

A pipe is a bounded byte buffer with a read end and a write end, each a descriptor in the
host's fd table next to its sockets. A regular file is an in-memory byte array (tcpdive has no
disk: a packetdrill run's ``dd of=/tmp/f`` fills one). ``splice`` moves bytes between a pipe
and a socket (``tcp_splice_read`` / ``splice_to_socket``), a file or another pipe;
``sendfile`` sends a file's bytes through a socket (``splice_direct_to_actor``).

Knowing differences from Linux: a pipe holds ``PIPE_DEF_BUFFERS * PAGE_SIZE`` (64 KiB) bytes,
counted in bytes rather than in page buffers (Linux spends one buffer slot per write or per
spliced skb fragment, so small writes can fill its 16 slots sooner); F_SETPIPE_SZ is not
offered; SIGPIPE is not raised (the EPIPE is).

The ``a``-prefixed calls are coroutines: they sleep on the objects' wait queues where Linux
would sleep (in virtual time under the simulator) and raise EAGAIN where a non-blocking
caller gets it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import errors as E
from .errors import oserror
from .tcp.sock import sk_add_waiter

if TYPE_CHECKING:
    from .net.netns import Netns

PAGE_SIZE = 4096
PIPE_DEF_BUFFERS = 16
PIPE_BUF = PAGE_SIZE
MAX_RW_COUNT = 0x7FFFF000                   # INT_MAX & PAGE_MASK: one read/write at most

O_ACCMODE = 0o3
O_RDONLY = 0
O_WRONLY = 1
O_RDWR = 2
O_CREAT = 0o100
O_EXCL = 0o200
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000

SPLICE_F_MOVE = 0x01
SPLICE_F_NONBLOCK = 0x02
SPLICE_F_MORE = 0x04
SPLICE_F_GIFT = 0x08
SPLICE_F_ALL = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT

MSG_DONTWAIT = 0x40
MSG_MORE = 0x8000

POLLIN = 0x001
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020
POLLRDNORM = 0x040
POLLWRNORM = 0x100


class HostFile:
    """What a non-socket descriptor has in common (``struct file``): fd, flags, close."""

    is_tcp = False

    def __init__(self, net: Netns, flags: int) -> None:
        self.net = net
        self.flags = flags
        self.nonblocking = bool(flags & O_NONBLOCK)
        self.fd = -1
        self.closed = False
        net.files.install(self)                  # type: ignore[arg-type]

    def fileno(self) -> int:
        return self.fd

    def readable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    def writable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.net.files.release(self.fd)
        self._release()

    def _release(self) -> None:
        pass


# ---- pipes: fs/pipe.c --------------------------------------------------------------------

class Pipe:
    """``struct pipe_inode_info``: the buffer, reader and writer counts, one wait queue."""

    __slots__ = ("buf", "capacity", "readers", "writers", "wq")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.capacity = PIPE_DEF_BUFFERS * PAGE_SIZE
        self.readers = 1
        self.writers = 1
        self.wq: list | None = None

    def space(self) -> int:
        return self.capacity - len(self.buf)

    def wake(self) -> None:
        """Wake every sleeper on the pipe (``wake_up_interruptible_all(&pipe->rd_wait)``...)."""
        wq = self.wq
        if wq:
            self.wq = None
            for cb in wq:
                cb()

    def push(self, data: bytes) -> int:
        """Append what fits; returns the bytes taken (``splice_to_pipe`` / ``pipe_write``)."""
        n = min(len(data), self.space())
        if n:
            self.buf += data[:n]
            self.wake()
        return n

    def pull(self, n: int) -> bytes:
        """Take up to ``n`` bytes from the head."""
        out = bytes(self.buf[:n])
        if out:
            del self.buf[:len(out)]
            self.wake()
        return out


class PipeFile(HostFile):
    """One end of a pipe (``pipefifo_fops``): read/write/poll/close."""

    def __init__(self, net: Netns, pipe: Pipe, flags: int) -> None:
        self.pipe = pipe
        super().__init__(net, flags)

    def read(self, n: int) -> bytes:
        """``pipe_read``: what is there (at most ``n``); b"" once no writer is left; EAGAIN
        when empty (a blocking reader then sleeps: ``aread``)."""
        if not self.readable():
            raise oserror(E.EBADF)
        if n < 0:
            raise oserror(E.EINVAL)
        p = self.pipe
        if not n:
            return b""
        if p.buf:
            return p.pull(n)
        if not p.writers:
            return b""
        raise oserror(E.EAGAIN)

    def write(self, data: bytes) -> int:
        """``pipe_write``: EPIPE without readers; what fits, EAGAIN if nothing does. A blocking
        writer waits for the rest (``awrite``); up to PIPE_BUF bytes go in at once or not at
        all."""
        if not self.writable():
            raise oserror(E.EBADF)
        p = self.pipe
        if not p.readers:
            raise oserror(E.EPIPE)                   # and SIGPIPE
        if not data:
            return 0
        if len(data) <= PIPE_BUF and p.space() < len(data):
            raise oserror(E.EAGAIN)                  # atomic small write
        n = p.push(data)
        if not n:
            raise oserror(E.EAGAIN)
        return n

    async def aread(self, n: int) -> bytes:
        while True:
            try:
                return self.read(n)
            except OSError as e:
                if e.errno != E.EAGAIN or self.nonblocking:
                    raise
            await wait_any((self.pipe,))

    async def awrite(self, data: bytes) -> int:
        """A blocking write takes everything, sleeping for room; a non-blocking one what
        fits. An error after some bytes returns their count (``pipe_write``)."""
        done = 0
        while True:
            try:
                done += self.write(data[done:])
            except OSError as e:
                if done:
                    return done
                if e.errno != E.EAGAIN or self.nonblocking:
                    raise
            if done >= len(data) or self.nonblocking:
                return done
            await wait_any((self.pipe,))

    def poll(self) -> int:
        """``pipe_poll``."""
        if self.closed:
            return POLLNVAL
        p = self.pipe
        mask = 0
        if self.readable():
            if p.buf:
                mask |= POLLIN | POLLRDNORM
            if not p.writers:
                mask |= POLLHUP
        if self.writable():
            if p.space():
                mask |= POLLOUT | POLLWRNORM
            if not p.readers:
                mask |= POLLERR
        return mask

    def _release(self) -> None:
        p = self.pipe
        if self.readable():
            p.readers -= 1
        if self.writable():
            p.writers -= 1
        p.wake()

    def __repr__(self) -> str:
        end = "r" if self.readable() else "w"
        return f"<tcpdive.PipeFile fd={self.fd} {end} {len(self.pipe.buf)} bytes>"


def do_pipe2(net: Netns, flags: int = 0) -> tuple[PipeFile, PipeFile]:
    """pipe2(): a read end then a write end, at the two lowest free descriptors."""
    if flags & ~(O_NONBLOCK | O_CLOEXEC | 0o40000):        # O_DIRECT (packet mode) accepted
        raise oserror(E.EINVAL)
    p = Pipe()
    extra = flags & O_NONBLOCK
    return PipeFile(net, p, O_RDONLY | extra), PipeFile(net, p, O_WRONLY | extra)


# ---- regular files -------------------------------------------------------------------------

class RegularFile(HostFile):
    """An open in-memory file: shares its byte array with the path's other opens."""

    def __init__(self, net: Netns, path: str, data: bytearray, flags: int) -> None:
        self.path = path
        self.data = data
        self.pos = 0
        super().__init__(net, flags)

    def pread(self, n: int, pos: int) -> bytes:
        if pos < 0 or n < 0:
            raise oserror(E.EINVAL)
        return bytes(self.data[pos:pos + n])

    def read(self, n: int) -> bytes:
        if not self.readable():
            raise oserror(E.EBADF)
        out = self.pread(n, self.pos)
        self.pos += len(out)
        return out

    def write(self, data: bytes) -> int:
        if not self.writable():
            raise oserror(E.EBADF)
        if self.flags & O_APPEND:
            self.pos = len(self.data)
        end = self.pos + len(data)
        if self.pos > len(self.data):
            self.data.extend(bytes(self.pos - len(self.data)))
        self.data[self.pos:end] = data
        self.pos = end
        return len(data)

    async def aread(self, n: int) -> bytes:
        return self.read(n)

    async def awrite(self, data: bytes) -> int:
        return self.write(data)

    def poll(self) -> int:
        """Regular files are always ready (DEFAULT_POLLMASK)."""
        return POLLNVAL if self.closed else POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM

    def __repr__(self) -> str:
        return f"<tcpdive.RegularFile fd={self.fd} {self.path!r} pos {self.pos}>"


# ---- waiting -------------------------------------------------------------------------------

async def wait_any(objs, timeout: float | None = None) -> None:
    """Sleep until any of ``objs`` (sockets' ``sk``, pipes: anything with a ``wq``) is woken."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    for o in objs:
        sk_add_waiter(o, wake)
    if timeout is None:
        await fut
    else:
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise oserror(E.EAGAIN, "timed out") from None


def _wq_of(f: Any):
    return f.pipe if isinstance(f, PipeFile) else f.sk


# ---- splice: fs/splice.c -------------------------------------------------------------------

async def asplice(f_in: Any, off_in: int | None, f_out: Any, off_out: int | None, length: int,
                  flags: int = 0) -> tuple[int, int | None, int | None]:
    """splice(2) (``__do_splice`` / ``do_splice``): the bytes moved and the offsets after them
    (for the loff_t pointers the caller passed; None for NULL). One end must be a pipe; the
    other a TCP socket, a regular file or a pipe. Sleeps where Linux sleeps, raises EBADF,
    EINVAL, ESPIPE, EPIPE, EAGAIN (non-blocking) and the socket's errors as Linux does.
    """
    if flags & ~SPLICE_F_ALL:
        raise oserror(E.EINVAL)
    if not length:
        return 0, off_in, off_out
    if not _can_read(f_in) or not _can_write(f_out):
        raise oserror(E.EBADF)
    ipipe = isinstance(f_in, PipeFile)
    opipe = isinstance(f_out, PipeFile)
    if ipipe and opipe:
        if off_in is not None or off_out is not None:
            raise oserror(E.ESPIPE)
        return await _splice_pipe_to_pipe(f_in, f_out, length, flags), None, None
    if ipipe:
        if off_in is not None:
            raise oserror(E.ESPIPE)
        if off_out is not None and not isinstance(f_out, RegularFile):
            raise oserror(E.EINVAL)                  # no FMODE_PWRITE on a socket
        if f_out.nonblocking:
            flags |= SPLICE_F_NONBLOCK
        n = await _splice_from_pipe(f_in.pipe, f_out, off_out, length, flags)
        return n, None, None if off_out is None else off_out + n
    if opipe:
        if off_out is not None:
            raise oserror(E.ESPIPE)
        if off_in is not None and not isinstance(f_in, RegularFile):
            raise oserror(E.EINVAL)                  # no FMODE_PREAD on a socket
        if f_out.nonblocking:
            flags |= SPLICE_F_NONBLOCK
        while True:
            n = splice_file_to_pipe(f_in, off_in, f_out.pipe, length, flags)
            if n is not None:
                return n, None if off_in is None else off_in + n, None
            timeout = f_in.timeout if getattr(f_in, "is_tcp", False) else None
            await wait_any((_wq_of(f_in), f_out.pipe), timeout)
    raise oserror(E.EINVAL)                          # neither end is a pipe


def _can_read(f: Any) -> bool:
    return f.readable() if isinstance(f, HostFile) else True


def _can_write(f: Any) -> bool:
    return f.writable() if isinstance(f, HostFile) else True


def splice_file_to_pipe(f_in: Any, off_in: int | None, pipe: Pipe, length: int,
                        flags: int) -> int | None:
    """``splice_file_to_pipe``, one try: wait for room (``wait_for_space``), then the file's
    splice_read (``tcp_splice_read`` for a TCP socket, a page-cache read for a regular file),
    never more than the pipe has room for. ``None``: a blocking caller sleeps and tries
    again."""
    if not pipe.readers:
        raise oserror(E.EPIPE)                       # and SIGPIPE
    room = pipe.space()
    if not room:
        if flags & SPLICE_F_NONBLOCK:
            raise oserror(E.EAGAIN)
        return None
    length = min(length, room, MAX_RW_COUNT)
    if isinstance(f_in, RegularFile):
        pos = f_in.pos if off_in is None else off_in
        n = pipe.push(f_in.pread(length, pos))
        if off_in is None:
            f_in.pos += n
        return n
    if getattr(f_in, "is_tcp", False):
        from .tcp.tcp import tcp_splice_read

        nonblock = f_in._would_block()               # the socket file's O_NONBLOCK / timeout
        try:
            return tcp_splice_read(f_in.sk, length, pipe.push, nonblock)
        except OSError as e:
            if e.errno == E.EAGAIN and not nonblock:
                return None                          # sk_wait_data
            raise
    raise oserror(E.EINVAL)


async def _wait_pipe_data(pipe: Pipe, flags: int) -> bool:
    """Sleep until the pipe holds data; False at EOF (no writer left)."""
    while not pipe.buf:
        if not pipe.writers:
            return False
        if flags & SPLICE_F_NONBLOCK:
            raise oserror(E.EAGAIN)
        await wait_any((pipe,))
    return True


async def _splice_pipe_to_pipe(f_in: PipeFile, f_out: PipeFile, length: int, flags: int) -> int:
    """``splice_pipe_to_pipe``: move buffered bytes, waiting for input and for room."""
    ip, op = f_in.pipe, f_out.pipe
    nb = SPLICE_F_NONBLOCK if f_in.nonblocking or f_out.nonblocking else 0
    while True:
        if not await _wait_pipe_data(ip, flags | nb):
            return 0
        if not op.readers:
            raise oserror(E.EPIPE)
        room = op.space()
        if room:
            return op.push(ip.pull(min(length, room)))
        if flags & SPLICE_F_NONBLOCK or nb:
            raise oserror(E.EAGAIN)
        await wait_any((ip, op))


async def _splice_from_pipe(pipe: Pipe, f_out: Any, off_out: int | None, length: int,
                            flags: int) -> int:
    """``splice_to_socket`` / ``iter_file_splice_write``: wait for pipe data, then write what
    is there (at most ``length``); into a socket as one ``tcp_sendmsg`` flagged MSG_MORE when
    SPLICE_F_MORE is given or data stays behind in the pipe, MSG_DONTWAIT only for a
    non-blocking socket (bytes the socket did not take stay in the pipe)."""
    if not await _wait_pipe_data(pipe, flags):
        return 0
    take = min(length, len(pipe.buf))
    data = bytes(pipe.buf[:take])
    if isinstance(f_out, RegularFile):
        if off_out is None:
            n = f_out.write(data)
        else:
            saved = f_out.pos
            f_out.pos = off_out
            n = f_out.write(data)
            f_out.pos = saved
    elif getattr(f_out, "is_tcp", False):
        more = flags & SPLICE_F_MORE or len(pipe.buf) > take
        n = await _sock_send(f_out, data, MSG_MORE if more else 0)
    else:
        raise oserror(E.EINVAL)
    pipe.pull(n)
    return n


# ---- sendfile: fs/read_write.c -------------------------------------------------------------

async def asendfile(f_out: Any, f_in: Any, offset: int | None, count: int) -> tuple[int, int]:
    """sendfile(2) (``do_sendfile`` + ``splice_direct_to_actor``): up to ``count`` bytes of the
    file ``f_in`` from ``offset`` (or its file position, which then moves) into ``f_out``.
    Returns (bytes sent, the offset after them).

    Into a socket the bytes go a pipe's worth (64 KiB) at a time, each through one
    ``tcp_sendmsg`` flagged MSG_MORE until a read covers all that is left (SPLICE_F_MORE);
    when the file ends first, ``tcp_splice_eof`` pushes what MSG_MORE held back. Only the
    socket's O_NONBLOCK makes it non-blocking.
    """
    if not isinstance(f_in, RegularFile) or not f_in.readable():
        raise oserror(E.EBADF if not _can_read(f_in) else E.EINVAL)
    if not _can_write(f_out):
        raise oserror(E.EBADF)
    if isinstance(f_out, RegularFile) and f_out.flags & O_APPEND:
        raise oserror(E.EINVAL)
    pos = f_in.pos if offset is None else offset
    if pos < 0 or count < 0:
        raise oserror(E.EINVAL)
    count = min(count, MAX_RW_COUNT)
    total = 0
    chunk_max = PIPE_DEF_BUFFERS * PAGE_SIZE
    while count > total:
        left = count - total
        data = f_in.pread(min(left, chunk_max), pos)
        if not data:
            if total and getattr(f_out, "is_tcp", False):
                tcp_splice_eof(f_out.sk)
            break
        if isinstance(f_out, PipeFile):
            # do_sendfile into a pipe: one splice_file_to_pipe (what the pipe has room for)
            fl = SPLICE_F_NONBLOCK if f_out.nonblocking else 0
            while (n := splice_file_to_pipe(f_in, pos, f_out.pipe, left, fl)) is None:
                await wait_any((f_out.pipe,))
            total += n
            pos += n
            break
        if isinstance(f_out, RegularFile):
            n = f_out.write(data)
        elif getattr(f_out, "is_tcp", False):
            try:
                n = await _sock_send(f_out, data, MSG_MORE if len(data) < left else 0)
            except OSError:
                if total:
                    break
                raise
        else:
            raise oserror(E.EINVAL)
        total += n
        pos += n
        if n < len(data):
            break
    if offset is None:
        f_in.pos = pos
    return total, pos


def tcp_splice_eof(sk: Any) -> None:
    """The file ended before the count (``tcp_splice_eof``): push the tail without MSG_MORE."""
    from .tcp.output import tcp_current_mss
    from .tcp.tcp import tcp_push

    if sk.write_queue:
        tcp_push(sk, 0, tcp_current_mss(sk), sk.nonagle)


async def _sock_send(s: Any, data: bytes, flags: int) -> int:
    """``tcp_sendmsg`` on the socket: a blocking socket takes everything (sleeping for buffer
    space), a non-blocking one what fits (EAGAIN if nothing)."""
    view = memoryview(data)
    sent = 0
    while True:
        try:
            sent += s._send_now(view[sent:], flags)
        except OSError as e:
            if e.errno != E.EAGAIN or s._would_block():
                if sent:
                    return sent
                raise
        if sent >= len(view) or s._would_block():
            return sent
        try:
            await s._wait(s._send_ready, s.timeout)
        except TimeoutError:
            if sent:
                return sent
            raise oserror(E.EAGAIN, "timed out") from None
