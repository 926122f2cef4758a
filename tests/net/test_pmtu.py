"""Path MTU discovery as Linux 6.x does it: routers' ICMP frag-needed (ip_forward ->
ip_exceeds_mtu), the per-destination PMTU exception (__ip_rt_update_pmtu: mtu_expires,
min_pmtu), tcp_v4_mtu_reduced + tcp_simple_retransmit, UDP IP_MTU_DISCOVER / IP_MTU."""

from __future__ import annotations

import errno
import struct

import pytest

from tcpdive.packet.ipv4 import ip2int
from tcpdive.sim.world import World
from tcpdive.socket import AF_INET, SOCK_DGRAM

SOL_IP, IP_MTU_DISCOVER, IP_MTU = 0, 10, 14
DONT, WANT, DO, PROBE = 0, 1, 2, 3
C, R_C, R_S, S = "10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"


def world(mtu: int = 1400):
    """client --(1500)-- router --(mtu)-- server; the server's device keeps 1500 on its side
    (a narrow hop inside the path: only the router's egress device is small)."""
    w = World(seed=3)
    c = w.host("client", C)
    r = w.host("router", R_C)
    s = w.host("server", S)
    w.link(c, r, delay=0.005, a_addr=C, b_addr=R_C)
    w.link(r, s, delay=0.005, a_addr=R_S, b_addr=S)
    r.devices["eth1"].mtu = mtu
    r.sysctl.set("net.ipv4.ip_forward", "1")
    r.replace_route(0, 0, "eth0")
    pk: list[tuple[str, str, float, bytes]] = []
    for h in (c, r, s):
        h.trace.packet.attach(lambda net, dev, data, d, now: pk.append((net.name, d, now / 1e6, bytes(data))))
    return w, c, r, s, pk


def udp(host, mode: int | None = None, connect: str | None = S):
    so = host.socket(AF_INET, SOCK_DGRAM)
    if mode is not None:
        so.setsockopt(SOL_IP, IP_MTU_DISCOVER, mode)
    so.bind(("0.0.0.0", 0))
    if connect:
        so.connect((connect, 9))
    return so


def icmps(pk, host="router"):
    return [d for n, dirn, _, d in pk if n == host and dirn == "out" and d[9] == 1]


def test_router_sends_frag_needed_with_next_hop_mtu_and_the_quote():
    w, c, r, s, pk = world()
    so = udp(c, DO)
    so.send(b"u" * 1472)                              # 1500 bytes, DF
    w.run_for(0.1)
    sent = next(d for n, dirn, _, d in pk if n == "client" and dirn == "out" and d[9] == 17)
    assert len(sent) == 1500 and sent[6] & 0x40
    (m,) = icmps(pk)
    ihl = 20
    assert struct.unpack_from("!II", m, 12) == (ip2int(R_C), ip2int(C))   # from the router
    assert m[6] & 0x40 == 0 and m[8] == 64 and m[1] == 0xC0     # no DF, TTL 64, tos internetcontrol
    icmp = m[ihl:]
    assert icmp[0] == 3 and icmp[1] == 4                      # dest unreach, frag needed
    assert icmp[4:8] == b"\x00\x00\x05\x78"                   # unused 0, next-hop MTU 1400
    assert len(icmp) == 8 + 548                               # 576 - 20 - 8 of the datagram
    assert icmp[8:8 + 548] == sent[:548]                      # quoted as it arrived (TTL 64)
    assert r.mib["IpFragFails"] == 1 and r.mib["IcmpOutDestUnreachs"] == 1
    assert r.mib["IpForwDatagrams"] == 0
    assert not [d for n, dirn, _, d in pk if n == "server" and dirn == "in"]


def test_frag_needed_is_not_rate_limited():
    w, c, r, s, pk = world()
    so = udp(c, PROBE)                                # PROBE: device MTU, so it keeps trying
    for _ in range(20):
        so.send(b"u" * 1472)
    w.run_for(0.1)
    assert len(icmps(pk)) == 20 and r.mib["IpFragFails"] == 20


def test_non_df_datagram_is_fragmented_by_the_router():
    w, c, r, s, pk = world()
    so = udp(c, DONT)
    so.send(b"u" * 1472)
    w.run_for(0.1)
    frags = [d for n, dirn, _, d in pk if n == "router" and dirn == "out" and d[9] == 17]
    assert [len(f) for f in frags] == [1396, 124]             # 1376 + 104 payload bytes
    offs = [struct.unpack_from("!H", f, 6)[0] for f in frags]
    assert offs == [0x2000, 1376 // 8]                        # MF on the first, offset 172
    assert r.mib["IpFragOKs"] == 1 and r.mib["IpFragCreates"] == 2 and not icmps(pk)
    assert s.mib["IpReasmFails"] == 2                         # tcpdive does not reassemble


def test_forward_without_route_is_in_no_routes_and_net_unreachable():
    w, c, r, s, pk = world()
    r.del_route(0, 0)
    so = udp(c, WANT, connect="192.0.2.1")
    so.send(b"x")
    w.run_for(0.1)
    (m,) = icmps(pk)
    assert m[20] == 3 and m[21] == 0
    assert r.mib["IpExtInNoRoutes"] == 1 and r.mib["IpOutNoRoutes"] == 0


def test_udp_learns_pmtu_emsgsize_and_ip_mtu():
    w, c, r, s, pk = world()
    so = udp(c, DO)
    assert so.getsockopt(SOL_IP, IP_MTU) == 1500
    assert so.getsockopt(SOL_IP, IP_MTU_DISCOVER) == DO
    so.send(b"u" * 1472)
    w.run_for(0.1)
    with pytest.raises(OSError) as e:                       # the ICMP: a pending EMSGSIZE
        so.send(b"small")
    assert e.value.errno == errno.EMSGSIZE
    assert so.getsockopt(SOL_IP, IP_MTU) == 1400
    with pytest.raises(OSError) as e:                       # now refused locally
        so.send(b"u" * 1373)
    assert e.value.errno == errno.EMSGSIZE
    assert so.send(b"u" * 1372) == 1372
    other = udp(c, PROBE)                                   # PROBE: the device's MTU
    assert other.send(b"u" * 1472) == 1472
    unconnected = udp(c, DO, connect=None)
    with pytest.raises(OSError) as e:
        unconnected.getsockopt(SOL_IP, IP_MTU)
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        unconnected.sendto(b"u" * 1400, (S, 9))
    assert e.value.errno == errno.EMSGSIZE


def test_udp_want_hears_emsgsize_dont_does_not():
    w, c, r, s, pk = world()
    want = udp(c)                                           # default: IP_PMTUDISC_WANT
    assert want.getsockopt(SOL_IP, IP_MTU_DISCOVER) == WANT
    want.send(b"u" * 1472)
    w.run_for(0.1)
    with pytest.raises(OSError) as e:
        want.send(b"x")
    assert e.value.errno == errno.EMSGSIZE
    # WANT over a learnt 1400: a bigger datagram goes without DF (and is fragmented on the way)
    want.send(b"u" * 1472)
    w.run_for(0.1)
    last = [d for n, dirn, _, d in pk if n == "client" and dirn == "out" and d[9] == 17][-1]
    assert len(last) == 1500 and not last[6] & 0x40 and r.mib["IpFragOKs"] == 1


def _exc_lines(host, dst=S):
    return host.ip_route_get(dst).splitlines()


def test_pmtu_is_per_destination_shared_and_expires_after_600s():
    w, c, r, s, pk = world()
    a = udp(c, DO)
    b = udp(c, DO)
    other_dst = udp(c, DO, connect=R_S)
    a.send(b"u" * 1472)
    w.run_for(0.1)
    assert _exc_lines(c) == [f"{S} dev eth0 src {C} uid 0", "    cache expires 599sec mtu 1400"]
    assert b.getsockopt(SOL_IP, IP_MTU) == 1400               # another socket, same destination
    assert other_dst.getsockopt(SOL_IP, IP_MTU) == 1500       # another destination, same route
    assert udp(c, DO).getsockopt(SOL_IP, IP_MTU) == 1400      # a new socket
    w.run_for(299.9)
    assert _exc_lines(c)[1] == "    cache expires 300sec mtu 1400"
    w.run_for(299.9)
    assert _exc_lines(c)[1] == "    cache expires 0sec mtu 1400"      # 15 ms left
    w.run_for(0.2)
    assert _exc_lines(c) == [f"{S} dev eth0 src {C} uid 0", "    cache"]
    assert b.getsockopt(SOL_IP, IP_MTU) == 1500


def test_mtu_expires_sysctl_and_route_change_drop_it():
    w, c, r, s, pk = world()
    c.sysctl.set("net.ipv4.route.mtu_expires", "30")
    a = udp(c, DO)
    a.send(b"u" * 1472)
    w.run_for(0.1)
    assert "expires 29sec mtu 1400" in c.ip_route_get(S)
    w.run_for(30)
    assert "mtu" not in c.ip_route_get(S)
    with pytest.raises(OSError):
        a.send(b"x")                                           # the pending EMSGSIZE
    a.send(b"u" * 1472)
    w.run_for(0.1)
    assert "mtu 1400" in c.ip_route_get(S)
    c.replace_route(0, 0, "eth0")                              # a new fib entry: no exceptions
    assert "mtu" not in c.ip_route_get(S)


def _frag_needed(host, src, dst, mtu):
    """Deliver an ICMP frag-needed about a datagram ``host`` sent to ``dst``."""
    from tcpdive.packet.icmp import icmp_build
    from tcpdive.packet.ipv4 import IPPROTO_ICMP, ip_build

    inner = ip_build(ip2int(C), ip2int(dst), 17, struct.pack("!HHHH", 1000, 9, 8, 0), 64, 0, 1, True)
    msg = icmp_build(3, 4, mtu, inner)
    host.netif_receive(host.devices["eth0"], ip_build(ip2int(src), ip2int(C), IPPROTO_ICMP, msg,
                                                      64, 0, 7, False))


def test_min_pmtu_floor_locks_the_mtu():
    w, c, r, s, pk = world()
    so = udp(c, WANT)
    so.sk.sport = 1000                                         # the quoted datagram's port
    c.udp_table  # noqa: B018  (made)
    from tcpdive.net.route import ip_rt_update_pmtu

    ip_rt_update_pmtu(c, ip2int(S), 300)
    assert _exc_lines(c)[1] == "    cache expires 600sec mtu lock 552"
    ip_rt_update_pmtu(c, ip2int(S), 400)                       # locked: ignored
    assert _exc_lines(c)[1].endswith("mtu lock 552")
    so.send(b"u" * 600)                                        # WANT over a locked MTU: no DF
    w.run_for(0.1)
    last = [d for n, dirn, _, d in pk if n == "client" and dirn == "out" and d[9] == 17][-1]
    assert not last[6] & 0x40
    c.sysctl.set("net.ipv4.route.min_pmtu", "68")
    ip_rt_update_pmtu(c, ip2int(R_S), 300)
    assert _exc_lines(c, R_S)[1] == "    cache expires 600sec mtu 300"
    with pytest.raises(OSError):
        c.sysctl.set("net.ipv4.route.min_pmtu", "67")


def test_pmtu_never_raised_and_refreshed_only_in_second_half():
    w, c, r, s, pk = world()
    from tcpdive.net.route import ip_rt_update_pmtu

    ip_rt_update_pmtu(c, ip2int(S), 1400)
    ip_rt_update_pmtu(c, ip2int(S), 1450)                      # larger: ignored
    assert _exc_lines(c)[1] == "    cache expires 600sec mtu 1400"
    w.run_for(200)
    ip_rt_update_pmtu(c, ip2int(S), 1400)                      # same, first half: kept as is
    assert _exc_lines(c)[1] == "    cache expires 400sec mtu 1400"
    w.run_for(150)
    ip_rt_update_pmtu(c, ip2int(S), 1400)                      # second half: refreshed
    assert _exc_lines(c)[1] == "    cache expires 600sec mtu 1400"
    w.run_for(1)
    ip_rt_update_pmtu(c, ip2int(S), 1300)                      # lower: taken at once
    assert _exc_lines(c)[1] == "    cache expires 600sec mtu 1300"


# ---- TCP --------------------------------------------------------------------------------------


def tcp_pair(w, c, s, port=80):
    ls = s.socket()
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    cs = c.socket()
    cs.connect((S, port))
    ss, _ = ls.accept()
    return cs, ss, ls


def test_tcp_frag_needed_retransmits_at_once_not_at_rto():
    w, c, r, s, pk = world()
    cs, ss, ls = tcp_pair(w, c, s)
    cs2, ss2, _ = tcp_pair(w, c, s, 81)
    assert cs.sk.mss_cache == 1448 and cs.getsockopt(SOL_IP, IP_MTU) == 1500
    cs.sendall(b"d" * 4 * 1448)
    t_send = w.now()
    w.run_for(1.0)
    icmp_t = [t for n, dirn, t, d in pk if n == "client" and dirn == "in" and d[9] == 1]
    assert len(icmp_t) == 4 and icmp_t[0] == pytest.approx(t_send + 0.010)
    data = [(t, len(d) - 52) for n, dirn, t, d in pk
            if n == "client" and dirn == "out" and d[9] == 6 and len(d) > 52 and not d[33] & 0x02]
    first_rtx = [t for t, ln in data if ln == 1348]
    assert first_rtx[0] == pytest.approx(icmp_t[0])            # right when the ICMP arrives
    assert [ln for t, ln in data] == [1448] * 4 + [1348, 100] * 4
    assert c.mib["TcpExtTCPTimeouts"] == 0 and c.mib["TcpRetransSegs"] == 8
    assert c.mib["TcpExtTCPSlowStartRetrans"] == 8
    assert ss.recv(65536, ) and cs.sk.mss_cache == 1348 and cs.sk.icsk_pmtu_cookie == 1400
    # shared: the idle connection to the same server sees it (IP_MTU); its segments already
    # sized at 1448 when its stale dst is re-checked still go out (as in Linux, whose local
    # ip_fragment would refuse them; here the router does) and the MSS follows
    assert cs2.getsockopt(SOL_IP, IP_MTU) == 1400
    cs2.sendall(b"e" * 3000)
    w.run_for(0.5)
    assert cs2.sk.mss_cache == 1348 and len(ss2.recv(65536)) == 3000
    # a new connection starts with the learnt PMTU: advertises and uses MSS 1360 / 1348
    cs3 = c.socket()
    cs3.connect((S, 80))
    syn = [d for n, dirn, t, d in pk if n == "client" and dirn == "out" and d[9] == 6
           and d[33] == 0x02][-1]
    assert syn[40:44] == b"\x02\x04\x05\x50"                   # mss 1360
    assert cs3.sk.mss_cache == 1348


def test_tcp_mtu_back_up_after_expiry():
    w, c, r, s, pk = world()
    c.sysctl.set("net.ipv4.route.mtu_expires", "60")
    cs, ss, ls = tcp_pair(w, c, s)
    cs.sendall(b"d" * 3000)
    w.run_for(1.0)
    ss.recv(65536)
    assert cs.sk.mss_cache == 1348
    w.run_for(60)
    assert cs.getsockopt(SOL_IP, IP_MTU) == 1500
    for _ in range(2):                  # the socket notices at its next transmissions
        cs.sendall(b"d" * 100)
        w.run_for(0.5)
    assert cs.sk.mss_cache == 1448


def test_tcp_pmtudisc_dont_keeps_mss():
    w, c, r, s, pk = world()
    cs, ss, ls = tcp_pair(w, c, s)
    cs.setsockopt(SOL_IP, IP_MTU_DISCOVER, DONT)
    cs.sendall(b"d" * 1448)
    w.run_for(0.1)
    assert cs.sk.mss_cache == 1448                  # the RTO will have to deal with it
    assert "mtu 1400" in c.ip_route_get(S)          # the route learnt it all the same


def test_mss_clamp_rewrites_syn_mss_and_checksum():
    from tcpdive.packet.checksum import tcp_v4_check
    from tcpdive.sim.middlebox import MssClamp

    w, c, r, s, pk = world()
    clamp = MssClamp(r)
    cs, ss, ls = tcp_pair(w, c, s)
    syns = [d for n, dirn, t, d in pk if n == "router" and dirn == "out" and d[33] & 0x02]
    assert [struct.unpack_from("!H", d, 42)[0] for d in syns] == [1360, 1360]
    for d in syns:
        seg = bytearray(d[20:])
        check = struct.unpack_from("!H", seg, 16)[0]
        seg[16:18] = b"\0\0"
        assert tcp_v4_check(ip2int(C) if d[12:16] == bytes(map(int, C.split("."))) else ip2int(S),
                            struct.unpack_from("!I", d, 16)[0], bytes(seg), 6) == check
    assert clamp.clamped == 2 and cs.sk.mss_cache == 1348 and ss.sk.mss_cache == 1348
    assert clamp.spec().endswith("-j TCPMSS --clamp-mss-to-pmtu")
