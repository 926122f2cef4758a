"""TCP urgent data (MSG_OOB) between two tcpdive hosts, as Linux 6.x does it.

Send side (tcp.c ``tcp_mark_urg``, tcp_output.c ``__tcp_transmit_skb``): send(MSG_OOB) sets
snd_up to the end of the data written; every segment sent while snd_up is ahead of it (and
urgent mode is on: snd_una != snd_up) has URG and urg_ptr = snd_up - seq, or 0xFFFF when the
mark is 64 KiB or more away; urgent data ignores Nagle (``tcp_nagle_test``).

Receive side (tcp_input.c ``tcp_check_urg`` / ``tcp_urg``, tcp.c ``tcp_recvmsg_locked`` /
``tcp_recv_urg`` / ``tcp_ioctl`` / ``tcp_poll``): with tcp_stdurg = 0 the pointer is one past
the urgent byte; without SO_OOBINLINE that byte leaves the stream (recv(MSG_OOB) returns it
once, then EINVAL); a read never crosses the mark; SIOCATMARK says whether the next byte is the
mark; SIOCINQ counts only up to it; poll reports POLLPRI while the byte waits.
"""

from __future__ import annotations

import struct

import pytest

from tcpdive.errors import EAGAIN, EINVAL
from tcpdive.packet.ipv4 import ip_parse
from tcpdive.socket import (
    MSG_OOB,
    MSG_PEEK,
    MSG_WAITALL,
    POLLIN,
    POLLPRI,
    SIOCATMARK,
    SIOCINQ,
    SO_OOBINLINE,
    SOL_SOCKET,
)
from tcpdive.tcp.urgent import TCP_URG_NOTYET, TCP_URG_READ, TCP_URG_VALID

from .helpers import Net

_HDR = struct.Struct("!HHIIBBHHH")
URG = 0x20
TCP_NODELAY = 1


class UrgCapture:
    """Data segments as (host, relative seq, len, URG set, urg_ptr)."""

    def __init__(self, net: Net) -> None:
        self.segs: list[tuple[str, int, int, bool, int]] = []
        self.base: dict[str, int] = {}
        for h in (net.c, net.s):
            h.trace.packet.attach(self._on)

    def _on(self, net, dev, data, direction, now_us) -> None:
        if direction != "out":
            return
        _reason, iph = ip_parse(data)
        off = iph.ihl * 4
        _sp, _dp, seq, _ack, doff, fl, _win, _ck, urp = _HDR.unpack_from(data, off)
        if fl & 0x02:
            self.base[net.name] = seq
            return
        n = iph.tot_len - off - (doff >> 4) * 4
        rel = (seq - self.base[net.name]) & 0xFFFFFFFF
        self.segs.append((net.name, rel, n, bool(fl & URG), urp))

    def sent_by(self, host: str) -> list[tuple[int, int, bool, int]]:
        return [s[1:] for s in self.segs if s[0] == host]


def _pair():
    n = Net()
    cap = UrgCapture(n)
    cs, ss, ls = n.connect_pair()
    cap.segs.clear()
    return n, cap, cs, ss


def _oob_stream(n: Net, cs) -> None:
    """b"hello", then b"abc" with MSG_OOB (c is the urgent byte), then b"world"."""
    cs.send(b"hello")
    cs.send(b"abc", MSG_OOB)
    cs.send(b"world")
    n.run_for(1)


# ---- send side ------------------------------------------------------------------------------

def test_send_oob_sets_urg_and_the_pointer_one_past_the_data():
    n, cap, cs, ss = _pair()
    _oob_stream(n, cs)
    # "abc" goes at once although "hello" is unacknowledged: no Nagle for urgent data; so
    # does "world" (urgent mode lasts until snd_una passes snd_up) but it starts at the mark
    assert cap.sent_by("client") == [(1, 5, False, 0), (6, 3, True, 3), (9, 5, False, 0)]
    # the receiver's pure ACKs carry no URG (it has nothing urgent to send)
    assert all(not urg for _s, _n, urg, _p in cap.sent_by("server"))
    assert cs.sk.snd_up == cs.sk.iss + 9


def test_urgent_data_is_not_held_by_nagle():
    n, cap, cs, ss = _pair()
    cs.send(b"a" * 100)                 # in flight
    cs.send(b"b" * 10)                  # partial segment, one unacked: Nagle holds it
    assert cap.sent_by("client") == [(1, 100, False, 0)]
    cs.send(b"!", MSG_OOB)              # joins the held skb; urgent mode sends it now
    assert cap.sent_by("client") == [(1, 100, False, 0), (101, 11, True, 11)]
    n.run_for(1)
    assert ss.recv(200) == b"a" * 100 + b"b" * 10


def test_urgent_pointer_capped_at_0xffff_while_the_mark_is_far():
    n, cap, cs, ss = _pair()
    cs.sk.sk_sndbuf = ss.sk.sk_rcvbuf = 1 << 22
    cs.setsockopt(6, TCP_NODELAY, 1)
    data = b"u" * 100_000
    assert cs.send(data, MSG_OOB) == len(data)
    up = 100_001                                  # relative snd_up: one past the last byte
    for _ in range(40):
        n.run_for(0.05)
        while True:
            try:
                ss.recv(1 << 20, 0x40)
            except OSError:
                break
    segs = cap.sent_by("client")
    assert sum(s[1] for s in segs) == len(data)
    for seq, _length, urg, ptr in segs:
        assert urg, seq
        assert ptr == min(0xFFFF, up - seq), (seq, ptr)
    assert segs[0][3] == 0xFFFF and segs[-1][3] == up - segs[-1][0]
    # after the mark is acknowledged urgent mode is over: new data goes without URG
    cap.segs.clear()
    cs.send(b"after")
    assert cap.sent_by("client") == [(up, 5, False, 0)]


# ---- receive side ---------------------------------------------------------------------------

def test_read_stops_at_the_mark_and_the_oob_byte_is_read_once():
    n, cap, cs, ss = _pair()
    _oob_stream(n, cs)
    sk = ss.sk
    assert sk.urg_data == TCP_URG_VALID | ord("c")
    assert ss.ioctl(SIOCATMARK) == 0
    assert ss.ioctl(SIOCINQ) == 7                 # only up to the mark
    assert ss.recv(100) == b"helloab"             # stops before the urgent byte
    assert ss.ioctl(SIOCATMARK) == 1
    assert ss.ioctl(SIOCINQ) == 0                 # tcp_inq: urg_seq - copied_seq
    assert ss.recv(1, MSG_OOB) == b"c"
    assert sk.urg_data == TCP_URG_READ
    with pytest.raises(OSError) as e:
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EINVAL
    assert ss.ioctl(SIOCATMARK) == 1              # still at the mark until a normal read
    assert ss.recv(100) == b"world"               # steps over the urgent byte
    assert ss.ioctl(SIOCATMARK) == 0
    assert sk.urg_data == 0 and sk.pred_flags     # the fast path is back
    with pytest.raises(OSError) as e:
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EINVAL


def test_unread_urgent_byte_is_skipped_by_a_normal_read():
    n, cap, cs, ss = _pair()
    _oob_stream(n, cs)
    assert ss.recv(100) == b"helloab"
    assert ss.recv(100) == b"world"               # the byte was never read with MSG_OOB
    with pytest.raises(OSError) as e:
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EINVAL


def test_peek_at_the_mark_skips_the_byte_without_consuming_it():
    n, cap, cs, ss = _pair()
    _oob_stream(n, cs)
    assert ss.recv(100) == b"helloab"
    assert ss.recv(100, MSG_PEEK) == b"world"
    assert ss.recv(1, MSG_OOB | MSG_PEEK) == b"c"
    assert ss.ioctl(SIOCATMARK) == 1
    assert ss.recv(1, MSG_OOB) == b"c"
    assert ss.recv(100) == b"world"


def test_waitall_read_stops_at_the_mark():
    n, cap, cs, ss = _pair()
    _oob_stream(n, cs)
    assert ss.recv(12, MSG_WAITALL) == b"helloab"
    assert ss.recv(5, MSG_WAITALL) == b"world"


def test_oobinline_keeps_the_byte_in_the_stream():
    n, cap, cs, ss = _pair()
    ss.setsockopt(SOL_SOCKET, SO_OOBINLINE, 1)
    assert ss.getsockopt(SOL_SOCKET, SO_OOBINLINE) == 1
    _oob_stream(n, cs)
    with pytest.raises(OSError) as e:
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EINVAL
    assert ss.ioctl(SIOCINQ) == 13                # inline: everything counts
    assert ss.recv(100) == b"helloab"             # a read still stops at the mark
    assert ss.ioctl(SIOCATMARK) == 1
    assert ss.recv(100) == b"cworld"
    assert ss.ioctl(SIOCATMARK) == 0


def test_oobinline_is_inherited_by_accepted_sockets():
    n = Net()
    ls = n.listener()
    ls.setsockopt(SOL_SOCKET, SO_OOBINLINE, 1)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    assert ss.getsockopt(SOL_SOCKET, SO_OOBINLINE) == 1


def test_poll_reports_pollpri_and_needs_a_byte_past_the_mark_for_pollin():
    n, cap, cs, ss = _pair()
    ss.setblocking(False)
    cs.send(b"xy")
    cs.send(b"!", MSG_OOB)                        # the urgent byte is the last one queued
    n.run_for(1)
    assert ss.poll() & (POLLIN | POLLPRI) == POLLIN | POLLPRI
    assert ss.recv(10) == b"xy"
    # at the mark, the urgent byte alone is not readable data: no POLLIN, but POLLPRI
    assert ss.poll() & (POLLIN | POLLPRI) == POLLPRI
    assert ss.recv(1, MSG_OOB) == b"!"
    assert ss.poll() & (POLLIN | POLLPRI) == 0    # read: no POLLPRI any more
    with pytest.raises(OSError) as e:             # the normal read eats the byte, finds nothing
        ss.recv(10)
    assert e.value.errno == EAGAIN
    assert ss.ioctl(SIOCATMARK) == 0 and ss.sk.rcv_queue_bytes == 0


def test_recv_oob_never_blocks():
    n, cap, cs, ss = _pair()
    with pytest.raises(OSError) as e:             # blocking socket, no urgent data at all
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EINVAL


def test_stdurg_takes_the_pointer_as_the_urgent_byte_itself():
    n, cap, cs, ss = _pair()
    n.s.sysctl_set("net.ipv4.tcp_stdurg", 1)
    cs.send(b"abc", MSG_OOB)                      # urg_ptr 3 names the byte after "abc"
    n.run_for(1)
    assert ss.sk.urg_data == TCP_URG_NOTYET       # that byte has not come yet
    with pytest.raises(OSError) as e:
        ss.recv(1, MSG_OOB)
    assert e.value.errno == EAGAIN
    cs.send(b"de")
    n.run_for(1)
    assert ss.recv(1, MSG_OOB) == b"d"
    assert ss.recv(100) == b"abc"
    assert ss.recv(100) == b"e"


def test_a_second_mark_drops_the_first_urgent_byte_under_the_reader():
    """send("A", OOB); send("B", OOB) with the reader sitting on "A": tcp_check_urg steps
    over "A" (copied_seq++) before moving the mark to "B" ("Double Dutch" in tcp_input.c)."""
    n, cap, cs, ss = _pair()
    ss.setblocking(False)
    cs.send(b"A", MSG_OOB)
    n.run_for(1)
    cs.send(b"B", MSG_OOB)
    n.run_for(1)
    assert ss.recv(1, MSG_OOB) == b"B"
    with pytest.raises(OSError) as e:
        ss.recv(10)
    assert e.value.errno == EAGAIN


def test_blocking_peek_at_a_lone_urgent_byte_sleeps_for_data():
    """MSG_PEEK at the mark steps over the byte without eating it: with nothing after it a
    blocking peek sleeps (sk_wait_data) until data comes, then shows that data."""
    n, cap, cs, ss = _pair()
    cs.send(b"!", MSG_OOB)
    n.run_for(1)
    t0 = n.now()
    n.w.loop.call_later(0.5, cs.send, b"next")

    async def peek():
        return await ss.arecv(10, MSG_PEEK)

    assert n.w.run(peek()) == b"next"
    assert round(n.now() - t0, 3) == 0.505
    assert ss.recv(10) == b"next"                 # the normal read eats "!" on the way
