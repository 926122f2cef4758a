"""tcpdump -n -S -tt lines from the tracepoint, and robustness on malformed datagrams."""

from __future__ import annotations

import io

from tcpdive.packet.ipv4 import IPPROTO_ICMP, IPPROTO_UDP, ip2int, ip_build
from tcpdive.packet.tcp import ACK, SYN, syn_options, tcp_build
from tcpdive.sim.world import World
from tcpdive.tools.tcpdump import TcpdumpPrinter, format_packet, tcp_flags_str

A, B = ip2int("10.0.0.1"), ip2int("10.0.0.2")


def run_exchange():
    w = World(seed=1)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=0.005)
    buf = io.StringIO()
    p = TcpdumpPrinter(out=buf).attach([c, s])
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)

    async def server():
        conn, _ = await ls.aaccept()
        await conn.arecv(100)
        await conn.asendall(b"HTTP/1.1 200 OK\r\n\r\nhello")
        conn.close()

    s.spawn(server())
    cs = c.socket()
    cs.connect(("10.0.0.2", 80))
    cs.sendall(b"GET / HTTP/1.1\r\n\r\n")
    while cs.recv(100):
        pass
    cs.close()
    w.run_for(1.0)
    p.detach()
    return p, buf, cs


def test_handshake_lines_exact():
    p, buf, cs = run_exchange()
    port = int(p.lines[0].split()[2].rsplit(".", 1)[1])
    assert p.lines[1] == (
        f"0.005000 IP 10.0.0.2.80 > 10.0.0.1.{port}: Flags [S.], seq 3179645542, "
        "ack 271124994, win 65160, options [mss 1460,sackOK,TS val 3597810150 ecr 3669553640,"
        "nop,wscale 10], length 0")
    assert p.lines[0].startswith(f"0.000000 IP 10.0.0.1.{port} > 10.0.0.2.80: Flags [S], seq ")
    assert ", ack " not in p.lines[0]
    # the third packet is a pure ACK: no seq, as tcpdump prints it
    assert p.lines[2].startswith(f"0.010000 IP 10.0.0.1.{port} > 10.0.0.2.80: Flags [.], ack ")
    req = p.lines[3]
    assert req.startswith(f"0.010000 IP 10.0.0.1.{port} > 10.0.0.2.80: Flags [P.], seq "
                          "271124994:271125012, ack 3179645543, win 63, options [nop,nop,TS val")
    assert req.endswith("length 18: HTTP: GET / HTTP/1.1")
    assert any(" Flags [F.], " in line for line in p.lines)
    assert buf.getvalue().splitlines() == p.lines


def test_flag_order_is_tcpdumps():
    assert tcp_flags_str(SYN | ACK) == "S."
    assert tcp_flags_str(0x19) == "FP."
    assert tcp_flags_str(SYN | ACK | 0x40) == "S.E"
    assert tcp_flags_str(SYN | 0x40 | 0x80) == "SEW"
    assert tcp_flags_str(0) == "none"


def test_udp_and_icmp_lines():
    udp = (5353).to_bytes(2, "big") + (53).to_bytes(2, "big") + (20).to_bytes(2, "big") + b"\0\0"
    pkt = ip_build(A, B, IPPROTO_UDP, udp + b"x" * 12)
    assert format_packet(pkt, 1_500_000) == "1.500000 IP 10.0.0.1.5353 > 10.0.0.2.53: UDP, length 12"
    echo = bytes((8, 0, 0, 0)) + (7).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"p" * 56
    assert format_packet(ip_build(A, B, IPPROTO_ICMP, echo), 0) == (
        "0.000000 IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64")
    inner = ip_build(B, A, IPPROTO_UDP, udp)[:28]
    unreach = bytes((3, 3, 0, 0, 0, 0, 0, 0)) + inner
    assert format_packet(ip_build(A, B, IPPROTO_ICMP, unreach), 0) == (
        "0.000000 IP 10.0.0.1 > 10.0.0.2: ICMP 10.0.0.1 udp port 53 unreachable, length 36")


def test_sack_option_format():
    opts = bytes((1, 1, 5, 18)) + (100).to_bytes(4, "big") + (200).to_bytes(4, "big") \
        + (300).to_bytes(4, "big") + (400).to_bytes(4, "big")
    seg = tcp_build(A, B, 1000, 80, 1, 2, ACK, 100, opts)
    line = format_packet(ip_build(A, B, 6, seg), 0)
    assert "options [nop,nop,sack 2 {100:200}{300:400}]" in line


def test_malformed_never_raises():
    seg = tcp_build(A, B, 1000, 80, 5, 0, SYN, 1000, syn_options(1460, True, (1, 0), 7))
    good = ip_build(A, B, 6, seg)
    assert format_packet(good[:24], 0).endswith(": [|tcp]")
    assert format_packet(good[:38], 0).endswith("[|tcp]")
    assert "[|tcp]" in format_packet(good[:45], 0)
    bad_doff = bytearray(good)
    bad_doff[20 + 12] = 0x30                  # data offset 12 bytes
    assert "bad hdr length 12 - too short" in format_packet(bytes(bad_doff), 0)
    for junk in (b"", b"\x45", b"\x60" + b"\0" * 39, bytes(range(256)), b"\x45" + b"\xff" * 60):
        assert isinstance(format_packet(junk, 0), str)
    for n in range(len(good)):
        assert isinstance(format_packet(good[:n], 0), str)
