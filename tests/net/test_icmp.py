"""ICMP (net/icmp.py): echo, errors in and out, the never-reply rules and rate limiting."""

from __future__ import annotations

import errno
import struct

import pytest

import tcpdive.tcp.ipv4 as tcp_ipv4
from tcpdive.net.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_EXC_TTL,
    ICMP_FRAG_NEEDED,
    ICMP_PORT_UNREACH,
    ICMP_TIME_EXCEEDED,
    icmp_send,
)
from tcpdive.net.netns import NetDevice
from tcpdive.packet.icmp import icmp_parse
from tcpdive.packet.ipv4 import ip2int

from . import A_INT, B_INT, A, B, Pair, ip_fields, ones_sum, raw_icmp, raw_ip, raw_udp

C_INT = ip2int("10.0.1.5")


def _errno(fn, *args) -> int:
    with pytest.raises(OSError) as ei:
        fn(*args)
    return ei.value.errno


# ---- echo ------------------------------------------------------------------------------------


def test_echo_reply_exact():
    p = Pair()
    body = b"0123456789abcdef" * 3
    req = raw_icmp(A_INT, B_INT, 8, 0, (0x4242 << 16) | 7, body, ttl=64)
    p.b.netif_receive(p.dev_b, raw_ip(A_INT, B_INT, 1, req[20:], tos=0x10))
    [rep] = p.out_b
    f = ip_fields(rep)
    assert (f["src"], f["dst"], f["proto"]) == (B_INT, A_INT, 1)
    assert f["tos"] == 0x10                               # icmp_reply keeps the request's TOS
    assert f["frag"] == 0 and f["ttl"] == 64
    assert ones_sum(rep[:20]) == 0xFFFF
    msg = rep[20:]
    assert ones_sum(msg) == 0xFFFF
    h = icmp_parse(msg)
    assert (h.type, h.code, h.echo_id, h.echo_seq) == (0, 0, 0x4242, 7)
    assert msg[8:] == body
    m = p.b.mib
    assert (m["IcmpInMsgs"], m["IcmpInEchos"], m["IcmpMsgInType8"]) == (1, 1, 1)
    assert (m["IcmpOutMsgs"], m["IcmpOutEchoReps"], m["IcmpMsgOutType0"]) == (1, 1, 1)
    # the reply is consumed by A (no ping socket) and counted
    p.to_a()
    assert p.a.mib["IcmpInEchoReps"] == 1 and p.a.mib["IcmpInErrors"] == 0


def test_echo_over_loopback():
    p = Pair()
    from tcpdive.packet.icmp import icmp_echo_build
    p.a.ip_output(0x7F000001, 0x7F000001, 1, icmp_echo_build(1, 1, b"lo"))
    p.run_softirq()
    assert p.a.mib["IcmpInEchos"] == 1 and p.a.mib["IcmpInEchoReps"] == 1


def test_echo_ignore_all():
    p = Pair(icmp_echo_ignore_all=1)
    p.b.netif_receive(p.dev_b, raw_icmp(A_INT, B_INT, 8, 0, 1, b"x"))
    assert p.out_b == []
    assert p.b.mib["IcmpInEchos"] == 1


def test_bad_icmp_checksum():
    p = Pair()
    p.b.netif_receive(p.dev_b, raw_icmp(A_INT, B_INT, 8, 0, 1, b"x", good_csum=False))
    assert p.out_b == []
    m = p.b.mib
    assert (m["IcmpInMsgs"], m["IcmpInErrors"], m["IcmpInCsumErrors"]) == (1, 1, 1)
    assert m["IcmpInEchos"] == 0


def test_unknown_type_and_short_message():
    p = Pair()
    p.b.netif_receive(p.dev_b, raw_icmp(A_INT, B_INT, 42, 0, 0, b""))
    assert p.b.mib["IcmpInErrors"] == 1 and p.b.mib["IcmpMsgInType42"] == 1
    short = b"\x08\x00\xf7\xff"                            # 4 bytes, checksum right
    assert ones_sum(short) == 0xFFFF
    p.b.netif_receive(p.dev_b, raw_ip(A_INT, B_INT, 1, short))
    assert p.b.mib["IcmpInErrors"] == 2 and p.b.mib["IcmpInCsumErrors"] == 0
    assert p.out_b == []


def test_timestamp_reply():
    p = Pair()
    p.b.netif_receive(p.dev_b, raw_icmp(A_INT, B_INT, 13, 0, 0x00010002, b"\0\0\0\x05" + b"\0" * 8))
    [rep] = p.out_b
    h = icmp_parse(rep, 20)
    assert (h.type, h.un) == (14, 0x00010002)
    orig, recv, xmit = struct.unpack("!III", rep[28:40])
    assert orig == 5 and recv == xmit == (p.clock.now_us() // 1000) % 86_400_000
    assert p.b.mib["IcmpOutTimestampReps"] == 1


# ---- errors out ------------------------------------------------------------------------------


def test_protocol_unreachable():
    p = Pair()
    d = raw_ip(A_INT, B_INT, 200, b"whatever")
    p.b.netif_receive(p.dev_b, d)
    [icmp] = p.out_b
    assert icmp[20:22] == bytes([3, 2])
    assert icmp[28:] == d
    assert p.b.mib["IpInUnknownProtos"] == 1 and p.b.mib["IcmpOutDestUnreachs"] == 1


def test_time_exceeded_from_router_and_never_about_icmp_errors():
    p = Pair(ip_forward=1)
    p.b.add_device(NetDevice("eth1", xmit=lambda d, nh: None))
    p.b.add_addr("eth1", "10.0.1.1", 24)
    d = raw_udp(A_INT, C_INT, 1111, 53, b"q", ttl=1)
    p.b.netif_receive(p.dev_b, d)
    [te] = p.out_b
    f = ip_fields(te)
    assert (f["src"], f["dst"]) == (B_INT, A_INT)         # the router's address toward A
    assert te[20:22] == bytes([ICMP_TIME_EXCEEDED, ICMP_EXC_TTL])
    assert te[28:] == d
    assert p.b.mib["IcmpOutTimeExcds"] == 1
    p.out_b.clear()
    # an ICMP error in transit that expires: no error about it
    err = raw_icmp(A_INT, C_INT, 3, 3, 0, d[:28], ttl=1)
    p.b.netif_receive(p.dev_b, err)
    assert p.out_b == []
    # an echo request in transit that expires does get one
    p.b.netif_receive(p.dev_b, raw_icmp(A_INT, C_INT, 8, 0, 1, b"x", ttl=1))
    assert len(p.out_b) == 1


def test_icmp_send_refusals():
    p = Pair()
    d = raw_udp(A_INT, B_INT, 1, 2, b"x")
    frag = raw_ip(A_INT, B_INT, 17, d[20:], frag=0x0010)  # offset != 0
    assert not icmp_send(p.b, frag, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    bcast = raw_udp(A_INT, ip2int("10.0.0.255"), 1, 2, b"x")
    assert not icmp_send(p.b, bcast, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    mcast = raw_udp(A_INT, ip2int("239.1.1.1"), 1, 2, b"x")
    assert not icmp_send(p.b, mcast, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    from_zero = raw_udp(0, B_INT, 1, 2, b"x")
    assert not icmp_send(p.b, from_zero, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    about_error = raw_icmp(A_INT, B_INT, 11, 0, 0, d[:28])
    assert not icmp_send(p.b, about_error, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    assert not icmp_send(p.b, b"\x45\x00", ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
    assert p.out_b == [] and p.b.mib["IcmpOutMsgs"] == 0
    assert icmp_send(p.b, d, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400)
    [m] = p.out_b
    assert struct.unpack("!HH", m[24:28]) == (0, 1400)


def test_port_unreachable_rate_limited_per_peer():
    p = Pair()
    s = p.udp(p.a)
    for _ in range(10):
        s.sendto(b"x", (B, 9))
    p.to_b()
    assert p.b.mib["UdpNoPorts"] == 10
    assert len(p.out_b) == 6                              # XRLIM_BURST_FACTOR x 1000 ms
    assert p.b.mib["IcmpOutRateLimitHost"] == 4
    assert p.b.mib["IcmpOutDestUnreachs"] == 6
    p.out_b.clear()
    p.clock.advance(999_000)
    s.sendto(b"x", (B, 9))
    p.to_b()
    assert p.out_b == []
    p.clock.advance(1_000)                                # one token per icmp_ratelimit ms
    s.sendto(b"x", (B, 9))
    s.sendto(b"x", (B, 9))
    p.to_b()
    assert len(p.out_b) == 1


def test_rate_limit_knobs():
    p = Pair(icmp_ratelimit=0)
    s = p.udp(p.a)
    for _ in range(10):
        s.sendto(b"x", (B, 9))
    p.to_b()
    assert len(p.out_b) == 10
    q = Pair(icmp_ratemask=0)                             # no type is limited
    s = q.udp(q.a)
    for _ in range(60):
        s.sendto(b"x", (B, 9))
    q.to_b()
    assert len(q.out_b) == 60


def test_echo_replies_not_rate_limited():
    p = Pair()
    for i in range(20):
        p.b.netif_receive(p.dev_b, raw_icmp(A_INT, B_INT, 8, 0, i, b"x"))
    assert len(p.out_b) == 20


def test_loopback_errors_not_rate_limited():
    p = Pair()
    s = p.udp(p.a)
    for _ in range(10):
        s.sendto(b"x", ("127.0.0.1", 9))
    p.run_softirq()
    assert p.a.mib["IcmpOutDestUnreachs"] == 10


# ---- errors in -------------------------------------------------------------------------------


def _connected(p: Pair):
    s = p.udp(p.a, (A, 4000))
    s.connect((B, 5000))
    s.send(b"probe")
    [d] = p.out_a
    p.out_a.clear()
    return s, d


def test_frag_needed_gives_emsgsize_to_connected_udp():
    p = Pair()
    s, d = _connected(p)
    p.a.netif_receive(p.dev_a, raw_icmp(B_INT, A_INT, 3, ICMP_FRAG_NEEDED, 1280, d[:28]))
    assert _errno(s.recv, 10) == errno.EMSGSIZE


def test_soft_errors_ignored_by_connected_udp():
    p = Pair()
    s, d = _connected(p)
    p.a.netif_receive(p.dev_a, raw_icmp(B_INT, A_INT, 11, 0, 0, d[:28]))   # time exceeded
    p.a.netif_receive(p.dev_a, raw_icmp(B_INT, A_INT, 3, 1, 0, d[:28]))    # host unreachable
    assert p.a.mib["IcmpInTimeExcds"] == 1 and p.a.mib["IcmpInDestUnreachs"] == 1
    assert _errno(s.recv, 10) == errno.EAGAIN
    p.a.netif_receive(p.dev_a, raw_icmp(B_INT, A_INT, 3, 13, 0, d[:28]))   # admin filtered
    assert _errno(s.recv, 10) == errno.EHOSTUNREACH


def test_error_with_short_quote_is_counted():
    p = Pair()
    _s, d = _connected(p)
    p.a.netif_receive(p.dev_a, raw_icmp(B_INT, A_INT, 3, 3, 0, d[:12]))
    assert p.a.mib["IcmpInErrors"] == 1


def test_tcp_errors_handed_to_tcp_v4_err(monkeypatch):
    p = Pair()
    calls = []
    monkeypatch.setattr(tcp_ipv4, "tcp_v4_err", lambda *a: calls.append(a), raising=False)
    tcp = raw_ip(A_INT, B_INT, 6, struct.pack("!HHIIBBHHH", 4000, 80, 1000, 0, 0x50, 2, 0, 0, 0))
    icmp = raw_icmp(B_INT, A_INT, 3, 4, 1400, tcp[:28])
    p.a.netif_receive(p.dev_a, icmp)
    [(net, t, c, inner, data, toff, info)] = calls
    assert net is p.a and (t, c, info) == (3, 4, 1400)
    assert (inner.saddr, inner.daddr, inner.protocol) == (A_INT, B_INT, 6)
    assert data == icmp and toff == 48
    assert struct.unpack_from("!HHI", data, toff) == (4000, 80, 1000)
