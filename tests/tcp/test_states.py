"""Conformance: exact segments and state sequences of open, close and reset (issue #2).

All worlds use a 5 ms one-way link on the virtual clock, so every time below is exact.
Expected behaviour is Linux 6.18's (checked against the real kernel where noted).
"""

from __future__ import annotations

import errno
import re
import struct

import pytest

from tcpdive.socket import SO_LINGER, SOL_SOCKET

from .helpers import Net, tcp_sockets

SYN_OPTS = re.compile(r"^mss 1460,sackOK,TS val \d+ ecr 0,nop,wscale 10$")
SYNACK_OPTS = re.compile(r"^mss 1460,sackOK,TS val \d+ ecr (\d+),nop,wscale 10$")
TS_OPTS = re.compile(r"^nop,nop,TS val \d+ ecr \d+$")


def tsval(opts: str) -> int:
    return int(re.search(r"TS val (\d+)", opts).group(1))


def tsecr(opts: str) -> int:
    return int(re.search(r"ecr (\d+)", opts).group(1))


def established_pair(n: Net):
    cs, ss, ls = n.connect_pair()
    n.cap.clear()
    return cs, ss, ls


# ---- 1. three-way handshake -----------------------------------------------------------------

def test_active_passive_open():
    n = Net(delay=0.005)
    ls = n.listener(80)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    assert n.now() == pytest.approx(0.010)          # connect() returns on the SYN-ACK
    ss, peer = ls.accept()
    assert peer == ("10.0.0.1", cs.getsockname()[1])
    assert n.now() == pytest.approx(0.015)          # accept() returns on the final ACK
    assert n.lines() == [
        "0.000000 client S seq 0 ack 0 len 0",
        "0.005000 server S. seq 0 ack 1 len 0",
        "0.010000 client . seq 1 ack 1 len 0",
    ]
    syn, synack, ack = n.segs
    assert SYN_OPTS.match(syn.opts), syn.opts
    m = SYNACK_OPTS.match(synack.opts)
    assert m, synack.opts
    assert int(m.group(1)) == tsval(syn.opts)      # SYN-ACK echoes the SYN's TSval
    assert TS_OPTS.match(ack.opts), ack.opts
    assert tsecr(ack.opts) == tsval(synack.opts)
    assert syn.win == 64240 and synack.win == 65160   # Linux's initial windows (unscaled)
    assert syn.dport == 80 and synack.sport == 80 and 32768 <= syn.sport < 61000
    assert n.state_lines() == [
        "0.000000 server CLOSE->LISTEN",
        "0.000000 client CLOSE->SYN_SENT",
        "0.010000 client SYN_SENT->ESTABLISHED",
        "0.015000 server CLOSE->SYN_RECV",
        "0.015000 server SYN_RECV->ESTABLISHED",
    ]
    assert n.c.mib["TcpActiveOpens"] == 1 and n.s.mib["TcpPassiveOpens"] == 1


def test_data_then_ack_after_handshake():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.sendall(b"hello")
    assert ss.recv(100) == b"hello"
    assert ss.getpeername() == ("10.0.0.1", cs.getsockname()[1])
    lines = n.lines()
    assert lines[0] == "0.015000 client P. seq 1 ack 1 len 5"


# ---- 2. simultaneous open (RFC 9293 figure 8) -------------------------------------------------

def test_simultaneous_open():
    n = Net(delay=0.005)
    a = n.c.socket()
    a.bind(("10.0.0.1", 5000))
    b = n.s.socket()
    b.bind(("10.0.0.2", 6000))
    ta = n.c.spawn(a.aconnect(("10.0.0.2", 6000)))
    tb = n.s.spawn(b.aconnect(("10.0.0.1", 5000)))
    n.run_for(1)
    assert ta.done() and ta.exception() is None
    assert tb.done() and tb.exception() is None
    # The SYNs cross; each side answers the other's SYN with a SYN-ACK carrying its own ISN
    # (tcp_rcv_synsent_state_process: "simultaneous open"), then ACKs the peer's SYN-ACK. That
    # SYN-ACK repeats an already received SYN, so tcp_data_queue D-SACKs it (Linux does too).
    assert n.lines() == [
        "0.000000 client S seq 0 ack 0 len 0",
        "0.000000 server S seq 0 ack 0 len 0",
        "0.005000 server S. seq 0 ack 1 len 0",
        "0.005000 client S. seq 0 ack 1 len 0",
        "0.010000 client . seq 1 ack 1 len 0",
        "0.010000 server . seq 1 ack 1 len 0",
    ]
    s_syn, c_synack = n.segs[1], n.segs[3]
    assert SYN_OPTS.match(n.segs[0].opts) and SYN_OPTS.match(s_syn.opts)
    assert SYNACK_OPTS.match(c_synack.opts)
    assert tsecr(c_synack.opts) == tsval(s_syn.opts)
    assert sorted(n.state_lines()) == sorted([
        "0.000000 client CLOSE->SYN_SENT",
        "0.000000 server CLOSE->SYN_SENT",
        "0.005000 client SYN_SENT->SYN_RECV",
        "0.005000 server SYN_SENT->SYN_RECV",
        "0.010000 client SYN_RECV->ESTABLISHED",
        "0.010000 server SYN_RECV->ESTABLISHED",
    ])
    # and the connection works both ways
    a.sendall(b"ping")
    assert b.recv(10) == b"ping"
    b.sendall(b"pong")
    assert a.recv(10) == b"pong"


# ---- 3. closing -------------------------------------------------------------------------------

def test_active_and_passive_close():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)            # t = 15 ms
    cs.close()
    n.run_for(0.1)
    assert ss.recv(10) == b""                   # EOF
    ss.close()                                  # t = 115 ms
    n.run_for(1)
    assert n.lines() == [
        "0.015000 client F. seq 1 ack 1 len 0",
        "0.020000 server . seq 1 ack 2 len 0",
        "0.115000 server F. seq 1 ack 2 len 0",
        "0.120000 client . seq 2 ack 2 len 0",
    ]
    assert n.state_lines() == [
        "0.015000 client ESTABLISHED->FIN_WAIT1",
        "0.020000 server ESTABLISHED->CLOSE_WAIT",
        "0.025000 client FIN_WAIT1->FIN_WAIT2",
        "0.025000 client FIN_WAIT2->FIN_WAIT2",   # orphan handed to a FIN_WAIT2 mini socket
        "0.115000 server CLOSE_WAIT->LAST_ACK",
        "0.120000 client FIN_WAIT2->TIME_WAIT",
        "0.125000 server LAST_ACK->CLOSE",
    ]
    assert tcp_sockets(n.s) == []
    (tw,) = tcp_sockets(n.c)
    assert type(tw).__name__ == "TimewaitSock"
    n.cap.clear()
    n.w.run_until(60.119)
    assert len(tcp_sockets(n.c)) == 1
    n.w.run_until(60.121)
    assert tcp_sockets(n.c) == []
    assert n.state_lines() == ["60.120000 client TIME_WAIT->CLOSE"]
    assert n.lines() == []


def test_active_close_with_shutdown_keeps_full_socket():
    """shutdown(SHUT_WR) keeps the socket owned: FIN_WAIT2 is a full socket, then TIME_WAIT."""
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.shutdown(1)
    n.run_for(0.1)
    assert ss.recv(10) == b""
    ss.sendall(b"bye")
    ss.close()
    assert cs.recv(10) == b"bye"
    assert cs.recv(10) == b""
    n.run_for(1)
    assert n.lines() == [
        "0.015000 client F. seq 1 ack 1 len 0",
        "0.020000 server . seq 1 ack 2 len 0",
        "0.115000 server P. seq 1 ack 2 len 3",
        "0.115000 server F. seq 4 ack 2 len 0",
        "0.120000 client . seq 2 ack 4 len 0",
        "0.120000 client . seq 2 ack 5 len 0",
    ] or n.lines() == [
        "0.015000 client F. seq 1 ack 1 len 0",
        "0.020000 server . seq 1 ack 2 len 0",
        "0.115000 server P. seq 1 ack 2 len 3",
        "0.115000 server F. seq 4 ack 2 len 0",
        "0.120000 client . seq 2 ack 5 len 0",
    ]
    sl = n.state_lines()
    assert sl[:3] == [
        "0.015000 client ESTABLISHED->FIN_WAIT1",
        "0.020000 server ESTABLISHED->CLOSE_WAIT",
        "0.025000 client FIN_WAIT1->FIN_WAIT2",
    ]
    assert "0.120000 client FIN_WAIT2->TIME_WAIT" in sl
    assert "0.125000 server LAST_ACK->CLOSE" in sl
    cs.close()
    n.w.run_until(60.119)
    assert len(tcp_sockets(n.c)) == 1
    n.w.run_until(60.121)
    assert tcp_sockets(n.c) == []


def test_simultaneous_close():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.close()
    ss.close()                                  # same instant: the FINs cross
    n.run_for(1)
    assert sorted(n.lines()) == sorted([
        "0.015000 client F. seq 1 ack 1 len 0",
        "0.015000 server F. seq 1 ack 1 len 0",
        "0.020000 server . seq 2 ack 2 len 0",
        "0.020000 client . seq 2 ack 2 len 0",
    ])
    assert sorted(n.state_lines()) == sorted([
        "0.015000 client ESTABLISHED->FIN_WAIT1",
        "0.015000 server ESTABLISHED->FIN_WAIT1",
        "0.020000 client FIN_WAIT1->CLOSING",
        "0.020000 server FIN_WAIT1->CLOSING",
        "0.025000 client CLOSING->TIME_WAIT",
        "0.025000 server CLOSING->TIME_WAIT",
    ])
    assert len(tcp_sockets(n.c)) == 1 and len(tcp_sockets(n.s)) == 1
    n.cap.clear()
    n.run_for(61)
    assert tcp_sockets(n.c) == [] and tcp_sockets(n.s) == []
    assert sorted(n.state_lines()) == ["60.025000 client TIME_WAIT->CLOSE",
                                       "60.025000 server TIME_WAIT->CLOSE"]
    assert n.lines() == []


# ---- 4. resets --------------------------------------------------------------------------------

def test_rst_on_closed_port_econnrefused():
    n = Net(delay=0.005)
    cs = n.c.socket()
    with pytest.raises(ConnectionRefusedError) as ei:
        cs.connect(("10.0.0.2", 81))
    assert ei.value.errno == errno.ECONNREFUSED == 111
    assert n.now() == pytest.approx(0.010)
    assert n.lines() == [
        "0.000000 client S seq 0 ack 0 len 0",
        "0.005000 server R. seq 0 ack 1 len 0",
    ]
    syn, rst = n.segs
    assert rst.raw_seq == 0 and rst.raw_ack == (syn.raw_seq + 1) & 0xFFFFFFFF
    assert rst.opts == "" and rst.win == 0
    assert n.state_lines() == ["0.000000 client CLOSE->SYN_SENT",
                               "0.010000 client SYN_SENT->CLOSE"]
    assert n.s.mib["TcpOutRsts"] == 1
    assert n.c.mib["TcpAttemptFails"] == 1


def test_rst_in_established_econnreset():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    ss.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    ss.close()                                  # abortive close (SO_LINGER {1, 0})
    n.run_for(0.1)
    with pytest.raises(ConnectionResetError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ECONNRESET == 104
    with pytest.raises(BrokenPipeError):        # the error is reported once, then EPIPE
        cs.send(b"x")
    assert n.lines() == ["0.015000 server R. seq 1 ack 1 len 0"]
    assert n.state_lines() == ["0.015000 server ESTABLISHED->CLOSE",
                               "0.020000 client ESTABLISHED->CLOSE"]
    assert tcp_sockets(n.s) == [] and tcp_sockets(n.c) == []     # no TIME_WAIT
    assert n.s.mib["TcpExtTCPAbortOnData"] == 1                  # Linux counts linger-0 here
    assert n.s.mib["TcpOutRsts"] == 1
    assert n.c.mib["TcpEstabResets"] == 1


def test_close_with_unread_data_sends_rst():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.sendall(b"x" * 100)
    n.run_for(0.1)
    ss.close()                                  # 100 unread bytes: RFC 2525 2.17 reset
    n.run_for(0.1)
    assert n.lines() == [
        "0.015000 client P. seq 1 ack 1 len 100",
        "0.020000 server . seq 1 ack 101 len 0",
        "0.115000 server R. seq 1 ack 101 len 0",
    ]
    assert n.state_lines() == ["0.115000 server ESTABLISHED->CLOSE",
                               "0.120000 client ESTABLISHED->CLOSE"]
    assert n.s.mib["TcpExtTCPAbortOnClose"] == 1
    with pytest.raises(ConnectionResetError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ECONNRESET
    assert tcp_sockets(n.s) == [] and tcp_sockets(n.c) == []


def test_linger_zero_abort_no_time_wait_active_side():
    """The client aborts with SO_LINGER {1,0}: RST, no FIN, no TIME_WAIT; server gets ECONNRESET."""
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.sendall(b"data")
    n.run_for(0.1)
    cs.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    assert struct.unpack("ii", cs.getsockopt(SOL_SOCKET, SO_LINGER, 8)) == (1, 0)
    cs.close()
    n.run_for(0.1)
    assert n.lines() == [
        "0.015000 client P. seq 1 ack 1 len 4",
        "0.020000 server . seq 1 ack 5 len 0",
        "0.115000 client R. seq 5 ack 1 len 0",
    ]
    assert tcp_sockets(n.c) == [] and tcp_sockets(n.s) == []
    assert ss.recv(10) == b"data"               # queued data stays readable...
    with pytest.raises(ConnectionResetError):   # ...then the reset is reported
        ss.recv(10)
    assert "F" not in "".join(s.flags for s in n.segs)
