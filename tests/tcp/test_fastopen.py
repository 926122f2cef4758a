"""TCP Fast Open (RFC 7413) between two simulated hosts, as Linux 6.x does it.

A 5 ms one-way link: every time below is exact virtual time. The server enables TFO with
net.ipv4.tcp_fastopen=3 and a TCP_FASTOPEN queue; the client's first connection asks for a
cookie, its second one carries data in the SYN, which the server's child delivers before the
third ACK arrives.
"""

from __future__ import annotations

import errno
import struct

import pytest

from tcpdive.packet.ipv4 import ip2int
from tcpdive.socket import MSG_FASTOPEN
from tcpdive.tcp import sock as S
from tcpdive.tcp.fastopen import (
    TCPI_OPT_SYN_DATA,
    TFO_DATA_NOT_ACKED,
    _parse_key_words,
    siphash24,
)
from tcpdive.tcp.sockopt import tcp_get_info

from .helpers import Net

SOL_TCP = 6
TCP_FASTOPEN = 23
TCP_FASTOPEN_CONNECT = 30
TCP_FASTOPEN_KEY = 33
SERVER = ("10.0.0.2", 80)


def tfo_mib(host) -> dict[str, int]:
    return {k: v for k, v in host.mib.items() if "FastOpen" in k and v}


def server_net(sysctl: int = 3) -> tuple[Net, object]:
    n = Net(delay=0.005)
    n.s.sysctl.set("net.ipv4.tcp_fastopen", sysctl)
    ls = n.listener(80)
    ls.setsockopt(SOL_TCP, TCP_FASTOPEN, 5)
    return n, ls


def get_cookie(n: Net, ls) -> None:
    """A first connection: the SYN asks for a cookie, the data goes after the handshake."""
    cs = n.c.socket()
    assert cs.sendto(b"hello", MSG_FASTOPEN, SERVER) == 5       # blocks for the handshake
    ss, _ = ls.accept()
    assert ss.recv(100) == b"hello"
    cs.close()
    ss.close()
    n.run_for(1.0)


def expected_cookie(saddr: str, daddr: str, key: str) -> str:
    k0, k1 = _parse_key_words(key)
    return siphash24(k0, k1, struct.pack("!II", ip2int(saddr), ip2int(daddr))).to_bytes(
        8, "little").hex()


def test_siphash_cookie_matches_linux() -> None:
    # values a Linux 6.18 server sent (packetdrill's TFO_COOKIE under defaults.sh's key, and
    # the cookie of fastopen/server/simple1.pkt's key in tiers.tsv)
    assert expected_cookie("192.0.2.1", "192.168.0.1",
                           "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4") == "3021b9d889017eeb"
    assert expected_cookie("192.0.2.1", "192.168.0.1",
                           "a0bf63f7-ed803d81-cd641d30-cebc4a90") == "f49b0ef989d9f624"


def test_cookie_request_then_data_in_syn() -> None:
    n, ls = server_net()
    cookie = expected_cookie("10.0.0.1", "10.0.0.2", n.s.sysctl.tcp_fastopen_key)
    get_cookie(n, ls)
    # the cookie request and the answer; a blocked sendto with data left over delays the ACK
    # of the SYN-ACK (sk_write_pending), so the data carries it
    first = n.segs[:4]
    assert [f"{s.t:.3f} {s.host} {s.flags} {s.seq}:{s.ack}({s.len})" for s in first] == [
        "0.000 client S 0:0(0)",
        "0.005 server S. 0:1(0)",
        "0.010 client P. 1:1(5)",
        "0.015 server . 1:6(0)",
    ]
    assert first[0].opts.endswith(",wscale 10,tfo cookiereq,nop,nop")
    assert first[1].opts.endswith(f",wscale 10,tfo cookie {cookie},nop,nop")
    assert tfo_mib(n.s) == {"TcpExtTCPFastOpenCookieReqd": 1}
    assert tfo_mib(n.c) == {}

    # second connection, non-blocking: 100 bytes ride in the SYN with the cached cookie
    n.cap.clear()
    t0 = n.now()
    cs = n.c.socket()
    cs.setblocking(False)
    assert cs.sendto(b"x" * 100, MSG_FASTOPEN, SERVER) == 100
    n.run_for(0.005)                                   # the SYN reached the server
    ss, _ = ls.accept()                                # the child exists before the third ACK
    assert ss.sk.state == S.TCP_SYN_RECV
    assert ss.recv(1000) == b"x" * 100
    assert n.now() - t0 == pytest.approx(0.005)
    assert tcp_get_info(ss.sk).tcpi_options & TCPI_OPT_SYN_DATA
    n.run_for(0.010)
    assert ss.sk.state == S.TCP_ESTABLISHED
    assert [f"{s.t - t0:.3f} {s.host} {s.flags} {s.seq}:{s.ack}({s.len})" for s in n.segs] == [
        "0.000 client S 0:0(100)",
        "0.005 server S. 0:101(0)",                    # acks the SYN data: no cookie echoed
        "0.010 client . 101:1(0)",
    ]
    assert n.segs[0].opts.endswith(f",wscale 10,tfo cookie {cookie},nop,nop")
    assert "tfo" not in n.segs[1].opts
    assert tfo_mib(n.s) == {"TcpExtTCPFastOpenCookieReqd": 1, "TcpExtTCPFastOpenPassive": 1}
    assert tfo_mib(n.c) == {"TcpExtTCPFastOpenActive": 1}
    info = tcp_get_info(cs.sk)
    assert info.tcpi_options & TCPI_OPT_SYN_DATA
    assert info.tcpi_delivered == 1                    # SYN-data counts once
    assert n.s.tcp_hashinfo is not None and ls.sk.tfo.qlen == 0   # the TFO queue slot is free


def test_server_without_tfo_acks_only_the_syn() -> None:
    """The client has a cookie but the server no longer does TFO: the SYN-ACK acks the ISN
    only and the data is sent again at once (tcp_rcv_fastopen_synack)."""
    n, ls = server_net()
    get_cookie(n, ls)
    n.s.sysctl.set("net.ipv4.tcp_fastopen", 0)
    n.cap.clear()
    t0 = n.now()
    cs = n.c.socket()
    cs.setblocking(False)
    assert cs.sendto(b"y" * 200, MSG_FASTOPEN, SERVER) == 200
    n.run_for(0.030)
    ss, _ = ls.accept()
    assert ss.recv(1000) == b"y" * 200
    assert [f"{s.t - t0:.3f} {s.host} {s.flags} {s.seq}:{s.ack}({s.len})" for s in n.segs] == [
        "0.000 client S 0:0(200)",
        "0.005 server S. 0:1(0)",
        "0.010 client P. 1:1(200)",                    # the retransmission carries the ACK
        "0.015 server . 1:201(0)",
    ]
    assert n.c.mib["TcpExtTCPFastOpenActiveFail"] == 1
    info = tcp_get_info(cs.sk)
    assert not info.tcpi_options & TCPI_OPT_SYN_DATA
    assert info.as_dict()["tcpi_fastopen_client_fail"] == TFO_DATA_NOT_ACKED
    assert tfo_mib(n.s) == {"TcpExtTCPFastOpenCookieReqd": 1}


def test_syn_data_times_out_to_a_plain_syn() -> None:
    """A lost SYN with data is retransmitted after 1 s as a plain SYN without FO option."""
    n, ls = server_net()
    get_cookie(n, ls)
    n.cap.clear()
    n.link.ab.loss = 1.0                             # client -> server drops everything
    t0 = n.now()
    cs = n.c.socket()
    cs.setblocking(False)
    assert cs.sendto(b"z" * 10, MSG_FASTOPEN, SERVER) == 10
    n.run_for(1.5)
    segs = [s for s in n.segs if s.host == "client"]
    assert [f"{s.t - t0:.3f} {s.flags} {s.len}" for s in segs] == ["0.000 S 10", "1.000 S 0"]
    assert "tfo" in segs[0].opts and "tfo" not in segs[1].opts


def test_tcp_fastopen_connect_defers_the_syn_to_write() -> None:
    n, ls = server_net()
    get_cookie(n, ls)
    n.cap.clear()
    cs = n.c.socket()
    cs.setsockopt(SOL_TCP, TCP_FASTOPEN_CONNECT, 1)
    cs.connect(SERVER)                                 # returns at once, nothing sent
    assert cs.sk.state == S.TCP_SYN_SENT and n.segs == []
    with pytest.raises(OSError) as e:
        cs.connect(SERVER)
    assert e.value.errno == errno.EISCONN
    assert cs.send(b"abc") == 3                        # SYN+data, blocks for the handshake
    assert [(s.host, s.flags, s.len) for s in n.segs[:2]] == [("client", "S", 3),
                                                           ("server", "S.", 0)]


def test_sockopt_errors() -> None:
    n = Net()
    s = n.c.socket()
    n.c.sysctl.set("net.ipv4.tcp_fastopen", 0)
    with pytest.raises(OSError) as e:
        s.setsockopt(SOL_TCP, TCP_FASTOPEN_CONNECT, 1)
    assert e.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as e:
        s.sendto(b"x", MSG_FASTOPEN, SERVER)
    assert e.value.errno == errno.EOPNOTSUPP
    n.c.sysctl.set("net.ipv4.tcp_fastopen", 1)
    with pytest.raises(OSError) as e:
        s.setsockopt(SOL_TCP, TCP_FASTOPEN_CONNECT, 2)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        s.setsockopt(SOL_TCP, TCP_FASTOPEN_KEY, b"short")
    assert e.value.errno == errno.EINVAL
    key = bytes(range(16))
    s.setsockopt(SOL_TCP, TCP_FASTOPEN_KEY, key)
    assert s.getsockopt(SOL_TCP, TCP_FASTOPEN_KEY) == key
    s.setsockopt(SOL_TCP, TCP_FASTOPEN, 7)
    assert s.getsockopt(SOL_TCP, TCP_FASTOPEN) == 7
    with pytest.raises(OSError) as e:
        s.setsockopt(SOL_TCP, TCP_FASTOPEN, -1)
    assert e.value.errno == errno.EINVAL
