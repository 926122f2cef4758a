"""Pipes, splice() and sendfile() on a simulated host (fs/pipe.c, fs/splice.c, do_sendfile,
tcp.c ``tcp_read_sock`` / ``tcp_splice_read`` / ``tcp_splice_eof``)."""

from __future__ import annotations

import pytest

from tcpdive.errors import EAGAIN, EBADF, EINVAL, EPIPE, ESPIPE
from tcpdive.socket import MSG_OOB, SIOCATMARK
from tcpdive.splice import (
    O_NONBLOCK,
    O_RDONLY,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    SPLICE_F_NONBLOCK,
    RegularFile,
    asendfile,
    asplice,
    do_pipe2,
)

from .helpers import Net


def _pair():
    n = Net()
    cs, ss, ls = n.connect_pair()
    n.cap.clear()
    return n, cs, ss


# ---- pipes --------------------------------------------------------------------------------

def test_pipe_ends_take_the_lowest_fds_and_move_bytes():
    n = Net()
    r, w = do_pipe2(n.s)
    assert (r.fd, w.fd) == (3, 4)
    assert w.poll() & POLLOUT and not r.poll() & POLLIN
    assert w.write(b"hello") == 5
    assert r.poll() & POLLIN
    assert r.read(3) == b"hel"
    assert r.read(100) == b"lo"
    with pytest.raises(OSError) as e:               # empty, a writer left: would block
        r.read(1)
    assert e.value.errno == EAGAIN
    with pytest.raises(OSError) as e:
        r.write(b"x")                                # the read end is not writable
    assert e.value.errno == EBADF
    w.close()
    assert r.read(1) == b"" and r.poll() & POLLHUP   # EOF once no writer is left
    r.close()
    assert 3 not in n.s.files.files and 4 not in n.s.files.files


def test_pipe_write_without_readers_is_epipe_and_a_full_pipe_would_block():
    n = Net()
    r, w = do_pipe2(n.s, O_NONBLOCK)
    assert w.write(b"x" * 100_000) == 65536         # 16 pages
    with pytest.raises(OSError) as e:
        w.write(b"y")
    assert e.value.errno == EAGAIN
    assert not w.poll() & POLLOUT
    r.close()
    assert w.poll() & POLLERR
    with pytest.raises(OSError) as e:
        w.write(b"y")
    assert e.value.errno == EPIPE


# ---- splice -------------------------------------------------------------------------------

def test_splice_socket_to_pipe_stops_at_the_urgent_mark():
    """tcp_splice_loop_test.pkt's case: 100 bytes, urgent pointer on the last one."""
    n, cs, ss = _pair()
    r, w = do_pipe2(n.s)
    cs.send(b"d" * 99)
    cs.send(b"!", MSG_OOB)
    n.run_for(1)
    assert n.w.run(asplice(ss, None, w, None, 99, 0)) == (99, None, None)
    assert r.read(200) == b"d" * 99
    # at the mark with the urgent byte queued: 0 at once, not a sleep (Linux's loop guard)
    assert n.w.run(asplice(ss, None, w, None, 1, 0))[0] == 0
    assert ss.ioctl(SIOCATMARK) == 1 and ss.sk.rcv_queue_bytes == 1
    assert ss.recv(1, MSG_OOB) == b"!"
    cs.send(b"more")
    n.run_for(1)
    # splice never steps over the urgent byte; recv does, then splice reads on
    assert n.w.run(asplice(ss, None, w, None, 10, 0))[0] == 0
    assert ss.recv(2) == b"mo"
    assert n.w.run(asplice(ss, None, w, None, 10, 0))[0] == 2
    assert r.read(10) == b"re"


def test_blocking_splice_sleeps_until_data_arrives():
    n, cs, ss = _pair()
    r, w = do_pipe2(n.s)
    t0 = n.now()
    n.w.loop.call_later(0.3, cs.send, b"late")
    got = n.w.run(asplice(ss, None, w, None, 100, 0))
    assert got[0] == 4 and r.read(10) == b"late"
    assert round(n.now() - t0, 3) == 0.305          # sent at +0.3 s, 5 ms link delay


def test_nonblocking_splice_and_bad_arguments():
    n, cs, ss = _pair()
    r, w = do_pipe2(n.s)
    ss.setblocking(False)
    with pytest.raises(OSError) as e:                # empty socket, O_NONBLOCK socket
        n.w.run(asplice(ss, None, w, None, 10, 0))
    assert e.value.errno == EAGAIN
    with pytest.raises(OSError) as e:                # offset on the pipe end
        n.w.run(asplice(ss, None, w, 0, 10, 0))
    assert e.value.errno == ESPIPE
    with pytest.raises(OSError) as e:                # offset on a socket
        n.w.run(asplice(ss, 0, w, None, 10, 0))
    assert e.value.errno == EINVAL
    with pytest.raises(OSError) as e:                # neither end a pipe
        n.w.run(asplice(ss, None, cs, None, 10, 0))
    assert e.value.errno == EINVAL
    with pytest.raises(OSError) as e:                # unknown flag
        n.w.run(asplice(ss, None, w, None, 10, 0x100))
    assert e.value.errno == EINVAL
    w.write(b"x" * 65536)                            # full pipe, SPLICE_F_NONBLOCK
    with pytest.raises(OSError) as e:
        n.w.run(asplice(ss, None, w, None, 10, SPLICE_F_NONBLOCK))
    assert e.value.errno == EAGAIN
    assert n.w.run(asplice(ss, None, w, None, 0, 0)) == (0, None, None)


def test_splice_pipe_to_socket_sends_the_pipe_contents():
    n, cs, ss = _pair()
    r, w = do_pipe2(n.c)
    w.write(b"through a pipe")
    assert n.w.run(asplice(r, None, cs, None, 100, 0))[0] == 14
    n.run_for(1)
    assert ss.recv(100) == b"through a pipe"
    assert [s.flags for s in n.segs if s.host == "client" and s.len] == ["P."]


# ---- sendfile -----------------------------------------------------------------------------

def test_sendfile_sends_the_file_and_moves_the_offset():
    n, cs, ss = _pair()
    f = RegularFile(n.c, "/tmp/f", bytearray(b"0123456789"), O_RDONLY)
    assert n.w.run(asendfile(cs, f, 2, 5)) == (5, 7)
    assert f.pos == 0                                 # an explicit offset leaves it alone
    assert n.w.run(asendfile(cs, f, None, 4)) == (4, 4)
    assert f.pos == 4
    n.run_for(1)
    assert ss.recv(100) == b"234560123"


def test_sendfile_past_the_end_of_the_file_pushes_at_eof():
    """The read falls short of the count: the chunk goes with MSG_MORE, then
    ``tcp_splice_eof`` pushes it (PSH, at once)."""
    n, cs, ss = _pair()
    f = RegularFile(n.c, "/tmp/f", bytearray(5), O_RDONLY)
    t0 = n.now()
    assert n.w.run(asendfile(cs, f, None, 100)) == (5, 5)
    data = [s for s in n.segs if s.host == "client" and s.len]
    assert [(s.flags, s.seq, s.len, s.t) for s in data] == [("P.", 1, 5, t0)]
    assert n.w.run(asendfile(cs, f, None, 100)) == (0, 5)      # at EOF


def test_sendfile_argument_errors():
    n, cs, ss = _pair()
    f = RegularFile(n.c, "/tmp/f", bytearray(5), O_RDONLY)
    with pytest.raises(OSError) as e:                 # in_fd must be a file
        n.w.run(asendfile(cs, cs, None, 5))
    assert e.value.errno == EINVAL
    with pytest.raises(OSError) as e:                 # out_fd not open for writing
        n.w.run(asendfile(f, f, None, 5))
    assert e.value.errno == EBADF
    with pytest.raises(OSError) as e:
        n.w.run(asendfile(cs, f, -1, 5))
    assert e.value.errno == EINVAL


def test_ip_freebind_lets_bind_take_a_non_local_address():
    """IP_FREEBIND (inet->freebind, ``inet_can_nonlocal_bind``), set by the splice script."""
    from tcpdive.errors import EADDRNOTAVAIL

    n = Net()
    s = n.s.socket()
    with pytest.raises(OSError) as e:
        s.bind(("10.9.9.9", 8080))
    assert e.value.errno == EADDRNOTAVAIL
    assert s.getsockopt(0, 15) == 0
    s.setsockopt(0, 15, 1)                           # SOL_IP, IP_FREEBIND
    assert s.getsockopt(0, 15) == 1
    s.bind(("10.9.9.9", 8080))
    assert s.getsockname() == ("10.9.9.9", 8080)
