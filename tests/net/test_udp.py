"""UDP (net/udp.py): delivery, lookup, ports, errors and counters, checked against Linux's rules."""

from __future__ import annotations

import errno
import struct

import pytest

from tcpdive.net.udp import udp_skb_truesize
from tcpdive.packet.ipv4 import ip2int, ip_parse
from tcpdive.socket import (
    MSG_PEEK,
    POLLERR,
    POLLIN,
    POLLOUT,
    SHUT_RD,
    SIOCINQ,
)

from . import A_INT, B_INT, A, B, Pair, ip_fields, ones_sum, raw_ip, raw_udp, udp_csum_valid


def _errno(fn, *args) -> int:
    with pytest.raises(OSError) as ei:
        fn(*args)
    return ei.value.errno


# ---- delivery --------------------------------------------------------------------------------


def test_datagram_exact_wire_bytes_and_delivery():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    cli = p.udp(p.a, (A, 4000))
    assert cli.sendto(b"hello", (B, 5000)) == 5
    [d] = p.out_a
    f = ip_fields(d)
    assert (f["ver"], f["ihl"], f["tot_len"], f["proto"], f["ttl"]) == (4, 5, 33, 17, 64)
    assert f["frag"] == 0x4000                            # DF: fits the MTU (IP_PMTUDISC_WANT)
    assert (f["src"], f["dst"]) == (A_INT, B_INT)
    assert ones_sum(d[:20]) == 0xFFFF
    assert struct.unpack("!HHH", d[20:26]) == (4000, 5000, 13)
    assert udp_csum_valid(d)
    assert d[28:] == b"hello"
    assert p.a.mib["UdpOutDatagrams"] == 1

    p.to_b()
    assert p.b.mib["UdpInDatagrams"] == 0                 # Linux counts it when read
    assert srv.ioctl(SIOCINQ) == 5
    assert srv.poll() & POLLIN
    assert srv.recvfrom(100) == (b"hello", (A, 4000))
    assert p.b.mib["UdpInDatagrams"] == 1
    assert not srv.poll() & POLLIN
    assert _errno(srv.recvfrom, 100) == errno.EAGAIN


def test_datagram_boundaries_kept_and_peek():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    cli = p.udp(p.a)
    cli.sendto(b"one", (B, 5000))
    cli.sendto(b"second", (B, 5000))
    cli.sendto(b"", (B, 5000))
    p.to_b()
    assert srv.recv(100, MSG_PEEK) == b"one"
    assert srv.recv(100, MSG_PEEK) == b"one"
    assert p.b.mib["UdpInDatagrams"] == 0                 # peeking counts nothing
    assert srv.recv(100) == b"one"
    assert srv.ioctl(SIOCINQ) == 6                        # size of the next datagram only
    assert srv.recv(100) == b"second"
    assert srv.recv(100) == b""                           # an empty datagram is a datagram
    assert p.b.mib["UdpInDatagrams"] == 3
    assert srv.ioctl(SIOCINQ) == 0


def test_truncated_read_discards_rest():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    p.udp(p.a).sendto(b"0123456789", (B, 5000))
    p.udp(p.a).sendto(b"next", (B, 5000))
    p.to_b()
    assert srv.recv(3) == b"012"
    assert srv.recv(100) == b"next"
    assert _errno(srv.recv, 100) == errno.EAGAIN


def test_short_and_malformed_udp_length_dropped():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    # UDP length larger than what arrived: "short packet"
    d = raw_udp(A_INT, B_INT, 1111, 5000, b"abcd", ulen=40)
    p.b.netif_receive(p.dev_b, d)
    # UDP length below the header size
    d = raw_udp(A_INT, B_INT, 1111, 5000, b"abcd", ulen=4)
    p.b.netif_receive(p.dev_b, d)
    # fewer than 8 bytes of UDP at all
    p.b.netif_receive(p.dev_b, raw_ip(A_INT, B_INT, 17, b"\x00\x01\x13"))
    assert p.b.mib["UdpInErrors"] == 3
    assert p.b.mib["UdpNoPorts"] == 0 and not p.out_b
    assert _errno(srv.recv, 100) == errno.EAGAIN


def test_udp_length_shorter_than_ip_payload_is_trimmed():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    # checksum computed over the 8+3 bytes the UDP length covers; trailing junk is ignored
    good = raw_udp(A_INT, B_INT, 1111, 5000, b"abc")
    seg = good[20:] + b"JUNK"
    p.b.netif_receive(p.dev_b, raw_ip(A_INT, B_INT, 17, seg))
    assert srv.recvfrom(100) == (b"abc", (A, 1111))


def test_checksum_zero_means_none():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 5000, b"nocsum", check=0))
    assert srv.recv(100) == b"nocsum"


def test_bad_checksum_small_dropped_on_arrival():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 5000, b"x" * 10, check=0x1234))
    assert p.b.mib["UdpInCsumErrors"] == 1 and p.b.mib["UdpInErrors"] == 1
    assert not srv.poll() & POLLIN
    # to a closed port: still a checksum error, no port unreachable
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 6000, b"x" * 10, check=0x1234))
    assert p.b.mib["UdpInCsumErrors"] == 2 and p.b.mib["UdpInErrors"] == 2
    assert p.b.mib["UdpNoPorts"] == 0 and p.out_b == []


def test_bad_checksum_large_found_when_read():
    """Past CHECKSUM_BREAK (76 bytes) Linux checks the sum at recvmsg / first_packet_length."""
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 5000, b"y" * 200, check=0x1234))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 5000, b"good"))
    assert p.b.mib["UdpInCsumErrors"] == 0
    assert srv.recv(1000) == b"good"                      # the bad one is skipped
    assert p.b.mib["UdpInCsumErrors"] == 1 and p.b.mib["UdpInErrors"] == 1
    assert p.b.mib["UdpInDatagrams"] == 1
    # alone in the queue: recv says EAGAIN, blocking poll says not readable
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1111, 5000, b"z" * 200, check=0x1234))
    srv.setblocking(True)
    assert not srv.poll() & POLLIN
    assert p.b.mib["UdpInCsumErrors"] == 2
    assert srv.sk.rmem_alloc == 0


def test_rcvbuf_full_drops_and_counts():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    ts = udp_skb_truesize(20 + 8 + 100)
    srv.sk.sk_rcvbuf = 2 * ts
    cli = p.udp(p.a)
    for _ in range(5):
        cli.sendto(b"q" * 100, (B, 5000))
    p.to_b()
    # Linux admits while sk_rmem_alloc <= sk_rcvbuf (one datagram may overshoot)
    assert len(srv.sk.receive_queue) == 3
    assert p.b.mib["UdpRcvbufErrors"] == 2 and p.b.mib["UdpInErrors"] == 2
    assert srv.sk.drops == 2
    for _ in range(3):
        srv.recv(1000)
    assert srv.sk.rmem_alloc == 0
    cli.sendto(b"again", (B, 5000))
    p.to_b()
    assert srv.recv(100) == b"again"


# ---- port unreachable and pending errors -----------------------------------------------------


def test_port_unreachable_exact_shape():
    p = Pair()
    cli = p.udp(p.a, (A, 4000))
    cli.sendto(b"ping?", (B, 7))
    [orig] = p.to_b()
    assert p.b.mib["UdpNoPorts"] == 1
    assert p.b.mib["IcmpOutDestUnreachs"] == 1 and p.b.mib["IcmpOutMsgs"] == 1
    assert p.b.mib["IcmpMsgOutType3"] == 1
    [icmp] = p.out_b
    f = ip_fields(icmp)
    assert f["proto"] == 1 and f["src"] == B_INT and f["dst"] == A_INT
    assert f["tos"] == 0xC0                               # IPTOS_PREC_INTERNETCONTROL
    assert f["frag"] == 0                                 # ICMP socket: IP_PMTUDISC_DONT
    assert f["ttl"] == 64
    assert f["tot_len"] == 20 + 8 + len(orig) == len(icmp)
    assert ones_sum(icmp[:20]) == 0xFFFF
    msg = icmp[20:]
    assert msg[0] == 3 and msg[1] == 3
    assert msg[4:8] == b"\0\0\0\0"
    assert ones_sum(msg) == 0xFFFF
    assert msg[8:] == orig                                # quoted header and all of the datagram


def test_port_unreachable_quote_capped_at_576():
    p = Pair()
    p.udp(p.a).sendto(b"L" * 1000, (B, 7))
    [orig] = p.to_b()
    [icmp] = p.out_b
    assert len(icmp) == 576
    assert icmp[28:] == orig[:548]
    assert ip_fields(icmp[28:])["tot_len"] == len(orig)  # the quoted header is untouched


def test_no_port_unreachable_for_broadcast():
    p = Pair()
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, ip2int("10.0.0.255"), 1111, 7, b"bc"))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, 0xFFFFFFFF, 1111, 7, b"bc"))
    assert p.out_b == []
    assert p.b.mib["UdpNoPorts"] == 0


def test_connected_socket_gets_econnrefused_once_on_recv():
    p = Pair()
    cli = p.udp(p.a)
    cli.connect((B, 9))
    cli.send(b"x")
    p.to_b()
    assert p.to_a()
    assert p.a.mib["IcmpInDestUnreachs"] == 1
    assert cli.poll() & POLLERR
    assert not cli.poll() & POLLIN                        # datagram_poll: POLLERR only
    assert _errno(cli.recv, 10) == errno.ECONNREFUSED
    assert not cli.poll() & POLLERR
    assert _errno(cli.recv, 10) == errno.EAGAIN


def test_connected_socket_gets_econnrefused_once_on_send():
    p = Pair()
    cli = p.udp(p.a)
    cli.connect((B, 9))
    cli.send(b"x")
    p.to_b()
    p.to_a()
    assert _errno(cli.send, b"y") == errno.ECONNREFUSED
    assert p.out_a == []                                  # nothing sent by the failing call
    assert cli.send(b"z") == 1
    assert p.out_a


def test_pending_error_reported_before_queued_data():
    p = Pair()
    srv = p.udp(p.b, ("0.0.0.0", 5000))
    cli = p.udp(p.a, (A, 4000))
    cli.connect((B, 5000))
    cli.send(b"a")
    p.to_b()
    srv.sendto(b"reply", (A, 4000))
    p.to_a()
    srv.close()
    cli.send(b"b")
    p.to_b()
    p.to_a()
    assert _errno(cli.recv, 100) == errno.ECONNREFUSED
    assert cli.recv(100) == b"reply"


def test_unconnected_socket_ignores_port_unreachable():
    p = Pair()
    cli = p.udp(p.a)
    cli.sendto(b"x", (B, 9))
    p.to_b()
    p.to_a()
    assert p.a.mib["IcmpInDestUnreachs"] == 1
    assert p.a.mib["IcmpInErrors"] == 0                   # a socket was found, it just ignores it
    assert not cli.poll() & POLLERR
    assert _errno(cli.recv, 10) == errno.EAGAIN
    assert cli.sendto(b"y", (B, 9)) == 1


def test_econnrefused_over_loopback():
    p = Pair()
    s = p.udp(p.a)
    s.connect(("127.0.0.1", 9))
    s.send(b"x")
    p.run_softirq()
    assert p.a.mib["UdpNoPorts"] == 1 and p.a.mib["IcmpOutDestUnreachs"] == 1
    assert _errno(s.recv, 10) == errno.ECONNREFUSED


def test_icmp_for_unknown_socket_counts_in_errors():
    p = Pair()
    s = p.udp(p.a, (A, 4000))
    s.sendto(b"x", (B, 9))
    p.to_b()
    s.close()
    p.to_a()
    assert p.a.mib["IcmpInErrors"] == 1


# ---- lookup ----------------------------------------------------------------------------------


def test_connected_socket_preferred_for_its_peer():
    p = Pair()
    wild = p.udp(p.b)
    wild.sk.reuse = 1
    wild.bind(("0.0.0.0", 5000))
    conn = p.udp(p.b)
    conn.sk.reuse = 1
    conn.bind(("0.0.0.0", 5000))
    conn.connect((A, 4000))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 4000, 5000, b"peer"))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 4001, 5000, b"other port"))
    p.b.netif_receive(p.dev_b, raw_udp(ip2int("10.0.0.3"), B_INT, 4000, 5000, b"other host"))
    assert conn.recv(100) == b"peer"
    assert _errno(conn.recv, 100) == errno.EAGAIN
    assert wild.recv(100) == b"other port"
    assert wild.recv(100) == b"other host"


def test_connected_socket_alone_refuses_strangers():
    p = Pair()
    conn = p.udp(p.b, ("0.0.0.0", 5000))
    conn.connect((A, 4000))
    assert conn.getsockname() == (B, 5000)                # connect fixed the local address
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 4001, 5000, b"stranger"))
    assert p.b.mib["UdpNoPorts"] == 1
    assert len(p.out_b) == 1


def test_exact_address_beats_wildcard_and_newest_reuseaddr_wins():
    p = Pair()
    p.b.add_addr("eth0", "10.0.0.9", 24)
    exact = p.udp(p.b)
    exact.sk.reuse = 1
    exact.bind((B, 53))
    wild1 = p.udp(p.b)
    wild1.sk.reuse = 1
    wild1.bind(("0.0.0.0", 53))
    wild2 = p.udp(p.b)
    wild2.sk.reuse = 1
    wild2.bind(("0.0.0.0", 53))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 1000, 53, b"to B"))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, ip2int("10.0.0.9"), 1000, 53, b"to .9"))
    assert exact.recv(100) == b"to B"
    assert wild2.recv(100) == b"to .9"                    # last bound SO_REUSEADDR socket
    assert _errno(wild1.recv, 100) == errno.EAGAIN


# ---- bind / ports ----------------------------------------------------------------------------


def test_bind_conflicts():
    p = Pair()
    p.udp(p.b, ("0.0.0.0", 5000))
    assert _errno(p.udp(p.b).bind, ("0.0.0.0", 5000)) == errno.EADDRINUSE
    assert _errno(p.udp(p.b).bind, (B, 5000)) == errno.EADDRINUSE       # wildcard covers it
    p.udp(p.b, (B, 5001))
    assert _errno(p.udp(p.b).bind, ("0.0.0.0", 5001)) == errno.EADDRINUSE
    p.udp(p.b, ("127.0.0.1", 5001))                       # different specific address: fine
    assert _errno(p.udp(p.b).bind, ("10.9.9.9", 5002)) == errno.EADDRNOTAVAIL
    s = p.udp(p.b, ("0.0.0.0", 5003))
    assert _errno(s.bind, ("0.0.0.0", 5004)) == errno.EINVAL             # already bound


def test_so_reuseaddr_shares_only_if_both_set():
    p = Pair()
    s1 = p.udp(p.b)
    s1.sk.reuse = 1
    s1.bind(("0.0.0.0", 6000))
    assert _errno(p.udp(p.b).bind, ("0.0.0.0", 6000)) == errno.EADDRINUSE
    s2 = p.udp(p.b)
    s2.sk.reuse = 1
    s2.bind(("0.0.0.0", 6000))
    s3 = p.udp(p.b)
    s3.sk.reuse = 1
    s3.bind((B, 6000))
    assert len(p.b.udp_table.ports[6000]) == 3


def test_so_reuseport_shares_and_spreads():
    p = Pair()
    socks = []
    for _ in range(4):
        s = p.udp(p.b)
        s.sk.reuseport = True
        s.bind(("0.0.0.0", 7000))
        socks.append(s)
    assert _errno(p.udp(p.b).bind, ("0.0.0.0", 7000)) == errno.EADDRINUSE
    for sport in range(2000, 2064):
        p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, sport, 7000, b"r"))
    counts = [len(s.sk.receive_queue or ()) for s in socks]
    assert sum(counts) == 64 and sum(1 for c in counts if c) >= 2
    # the same flow always lands on the same socket
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 2000, 7000, b"r"))
    p.b.netif_receive(p.dev_b, raw_udp(A_INT, B_INT, 2000, 7000, b"r"))
    after = [len(s.sk.receive_queue or ()) for s in socks]
    assert sorted(a - c for a, c in zip(after, counts, strict=True)) == [0, 0, 0, 2]


def test_close_releases_port():
    p = Pair()
    s = p.udp(p.b, ("0.0.0.0", 5000))
    s.close()
    p.udp(p.b, ("0.0.0.0", 5000))
    assert len(p.b.udp_table.ports[5000]) == 1


def test_ephemeral_autobind_in_range():
    p = Pair()
    low, high = p.a.sysctl.ip_local_port_range
    seen = set()
    for _ in range(20):
        s = p.udp(p.a)
        s.sendto(b"x", (B, 9))
        port = s.getsockname()[1]
        assert low <= port <= high
        seen.add(port)
    assert len(seen) == 20
    c = p.udp(p.a)
    c.connect((B, 9))
    assert low <= c.getsockname()[1] <= high
    assert c.getsockname()[0] == A
    b0 = p.udp(p.a, ("0.0.0.0", 0))                      # bind(port 0) picks one too
    assert low <= b0.getsockname()[1] <= high


def test_ephemeral_exhaustion_and_reserved_ports():
    p = Pair()
    p.a.sysctl.set("ip_local_port_range", "40000 40003")
    p.a.sysctl.set("ip_local_reserved_ports", "40001")
    got = []
    for _ in range(3):
        s = p.udp(p.a)
        s.sendto(b"x", (B, 9))
        got.append(s.getsockname()[1])
    assert sorted(got) == [40000, 40002, 40003]
    assert _errno(p.udp(p.a).sendto, b"x", (B, 9)) == errno.EAGAIN
    assert _errno(p.udp(p.a).connect, (B, 9)) == errno.EAGAIN
    assert _errno(p.udp(p.a).bind, ("0.0.0.0", 0)) == errno.EADDRINUSE
    p.udp(p.a, ("0.0.0.0", 40001))                        # explicit bind may use a reserved port


# ---- send errors -----------------------------------------------------------------------------


def test_edestaddrreq_and_einval():
    p = Pair()
    s = p.udp(p.a)
    assert _errno(s.send, b"x") == errno.EDESTADDRREQ
    assert s.getsockname()[1] != 0                        # inet_send_prepare autobound first
    assert _errno(s.sendto, b"x", (B, 0)) == errno.EINVAL


def test_sendto_with_address_on_connected_socket():
    p = Pair()
    s = p.udp(p.a)
    s.connect((B, 9))
    s.sendto(b"elsewhere", (B, 10))
    [d] = p.out_a
    assert struct.unpack("!H", d[22:24])[0] == 10


def test_emsgsize():
    p = Pair()
    s = p.udp(p.a)
    assert _errno(s.sendto, b"\0" * 65508, (B, 9)) == errno.EMSGSIZE
    assert _errno(s.sendto, b"\0" * 70000, (B, 9)) == errno.EMSGSIZE
    assert p.a.mib["UdpOutDatagrams"] == 0
    assert s.sendto(b"\0" * 65507, (B, 9)) == 65507
    [d] = p.out_a
    f = ip_fields(d)
    assert f["tot_len"] == 65535 and f["frag"] == 0      # bigger than the MTU: no DF


def test_enetunreach():
    p = Pair()
    s = p.udp(p.a)
    assert _errno(s.connect, ("192.168.7.7", 9)) == errno.ENETUNREACH
    assert _errno(s.sendto, b"x", ("192.168.7.7", 9)) == errno.ENETUNREACH
    assert p.a.mib["IpOutNoRoutes"] == 2


def test_broadcast_needs_so_broadcast():
    p = Pair()
    s = p.udp(p.a)
    assert _errno(s.sendto, b"x", ("10.0.0.255", 9)) == errno.EACCES
    s.sk.broadcast = True
    assert s.sendto(b"x", ("10.0.0.255", 9)) == 1


def test_broadcast_delivered_to_every_matching_socket():
    p = Pair()
    s1 = p.udp(p.b)
    s1.sk.reuse = 1
    s1.bind(("0.0.0.0", 67))
    s2 = p.udp(p.b)
    s2.sk.reuse = 1
    s2.bind(("0.0.0.0", 67))
    d = raw_udp(A_INT, 0xFFFFFFFF, 68, 67, b"discover")
    p.b.udp_table.udp_rcv(ip_parse(d)[1], d, 20)          # ip_rcv would need a broadcast route
    assert s1.recv(100) == b"discover" and s2.recv(100) == b"discover"
    d = raw_udp(A_INT, 0xFFFFFFFF, 68, 99, b"nobody")
    p.b.udp_table.udp_rcv(ip_parse(d)[1], d, 20)
    assert p.b.mib["UdpIgnoredMulti"] == 1 and p.b.mib["UdpNoPorts"] == 0 and not p.out_b


# ---- shutdown / poll -------------------------------------------------------------------------


def test_shutdown_unconnected_sets_flags_and_says_enotconn():
    p = Pair()
    s = p.udp(p.b, ("0.0.0.0", 5000))
    assert _errno(s.shutdown, SHUT_RD) == errno.ENOTCONN
    assert s.poll() & POLLIN                              # RCV_SHUTDOWN reads as readable
    assert _errno(s.recv, 10) == errno.EAGAIN             # non-blocking: still EAGAIN


def test_shutdown_rd_blocking_reads_eof():
    p = Pair()
    s = p.udp(p.b, ("0.0.0.0", 5000))
    s.connect((A, 4000))
    s.shutdown(SHUT_RD)
    s.setblocking(True)
    assert s.recv(10) == b""


def test_shutdown_wr_send_epipe():
    p = Pair()
    s = p.udp(p.a)
    s.connect((B, 9))
    s.shutdown(1)
    assert _errno(s.send, b"x") == errno.EPIPE


def test_poll_writable():
    p = Pair()
    s = p.udp(p.a)
    assert s.poll() & POLLOUT
