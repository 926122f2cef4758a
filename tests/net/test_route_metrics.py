"""Per-route metrics as Linux 6.x applies them (``ip route ... advmss N mtu [lock] N initcwnd N
initrwnd N rto_min T quickack 1``): where TCP reads each one, when a route change reaches an
established connection, and the ``ip route`` command itself (errno as RTNETLINK answers).

Two hosts, client 10.0.0.1 and server 10.0.0.2, one link with 5 ms each way (RTT 10 ms),
timestamps and window scaling on (Linux defaults): the MSS in data segments is advmss - 12.
"""

from __future__ import annotations

import errno

import pytest
from tcp.helpers import Net  # tests/tcp (pytest puts tests/ on sys.path)

from tcpdive.net.route import RTAX_MTU, RTAX_RTO_MIN, dst_metric_advmss, dst_mtu, parse_ip_route
from tcpdive.socket import IPPROTO_TCP

TCP_NODELAY = 1


def _syn(n: Net, host: str):
    return next(s for s in n.segs if s.host == host and "S" in s.flags)


def _first_flight(n: Net, cs, size: int = 200_000) -> list:
    """Data segments the client sends at the instant of a large write (before any ACK)."""
    n.run_for(0.1)
    n.cap.clear()
    t0 = n.now()
    cs.send(b"x" * size)
    n.run_for(0.001)
    return [s for s in n.segs if s.host == "client" and s.len and s.t == t0]


# ---- advmss / mtu: the MSS option and the segment size ----------------------------------------

def test_advmss_sets_the_mss_option_of_syn_and_synack():
    n = Net()
    n.c.change_route("10.0.0.2", 32, "eth0", advmss=800)
    n.s.change_route("10.0.0.1", 32, "eth0", advmss=1000)
    cs, ss, _ = n.connect_pair()
    assert _syn(n, "client").opts.startswith("mss 800,")
    assert _syn(n, "server").opts.startswith("mss 1000,")
    # each side's segments: the peer's MSS less the 12 bytes of timestamps; our advmss is
    # what we told the peer (tcp_info's advmss)
    assert cs.sk.mss_cache == 1000 - 12 and ss.sk.mss_cache == 800 - 12
    assert cs.sk.advmss == 800 and ss.sk.advmss == 1000
    flight = _first_flight(n, cs, 20_000)
    assert {s.len for s in flight} == {988}


def test_mtu_metric_sets_advmss_and_the_path_mtu():
    # no advmss: ipv4_default_advmss from the route's MTU (mtu - 40); tcp_sync_mss from it too
    n = Net()
    n.c.change_route("10.0.0.2", 32, "eth0", mtu=1200)
    cs, ss, _ = n.connect_pair()
    assert _syn(n, "client").opts.startswith("mss 1160,")
    assert cs.sk.icsk_pmtu_cookie == 1200 and cs.sk.mss_cache == 1160 - 12
    # the server did not lower its route: it sends 1160 - 12 byte segments (the client's MSS)
    assert ss.sk.mss_cache == 1148


def test_dst_helpers_follow_linux_bounds():
    n = Net()
    r = n.c.fib_lookup(0x0A000002)
    assert dst_mtu(r) == 1500 and dst_metric_advmss(r) == 1460
    lo = n.c.fib_lookup(0x7F000001)
    # loopback: MTU 65536, but IP_MAX_MTU is 65535, so the MSS on lo is 65495 as on Linux
    assert dst_mtu(lo) == 65535 and dst_metric_advmss(lo) == 65495
    r = n.c.change_route("10.0.0.2", 32, "eth0", mtu=200)
    assert dst_metric_advmss(r) == 256          # at least ip_rt_min_advmss
    r = n.c.change_route("10.0.0.2", 32, "eth0", advmss=70000, mtu=70000)
    assert r.advmss == 65495 and r.mtu == 65520  # ip_metrics_convert clamps


def test_route_change_reaches_an_established_connection_at_its_next_transmission():
    """``ip route change ... mtu 1000``: the socket's cached route goes stale (rt_genid); the
    next transmission re-routes (__sk_dst_check), then tcp_current_mss sees dst_mtu 1000 and
    re-syncs the MSS: 1000 - 40 - 12 = 948 byte segments."""
    n = Net()
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    assert cs.sk.mss_cache == 1448
    n.c.change_route("10.0.0.2", 32, "eth0", mtu=1000)
    assert cs.sk.mss_cache == 1448 and cs.sk.dst_mtu == 1500     # nothing sent yet
    cs.send(b"a" * 100)              # sized with the old MSS, then re-routed in ip_queue_xmit
    n.run_for(0.1)
    assert cs.sk.dst_mtu == 1000 and cs.sk.icsk_pmtu_cookie == 1500
    n.cap.clear()
    cs.send(b"b" * 5000)             # tcp_send_mss -> tcp_current_mss: dst_mtu != pmtu cookie
    n.run_for(0.1)
    assert cs.sk.icsk_pmtu_cookie == 1000
    assert [s.len for s in n.segs if s.host == "client" and s.len] == [948] * 5 + [260]


# ---- initcwnd / initrwnd ----------------------------------------------------------------------

@pytest.mark.parametrize("initcwnd, burst", [(4, 4), (20, 20), (None, 10)])
def test_initcwnd_is_the_first_flight(initcwnd, burst):
    """tcp_init_cwnd: the route's initcwnd, else TCP_INIT_CWND (10), read when the
    transfer starts (tcp_init_transfer)."""
    n = Net()
    if initcwnd is not None:
        n.c.change_route("10.0.0.2", 32, "eth0", initcwnd=initcwnd)
    cs, ss, _ = n.connect_pair()
    flight = _first_flight(n, cs)
    assert len(flight) == burst and {s.len for s in flight} == {1448}
    assert cs.sk.snd_cwnd == burst


def test_initcwnd_of_the_servers_route_for_the_accepted_socket():
    n = Net()
    n.s.change_route("10.0.0.1", 32, "eth0", initcwnd=3)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    n.cap.clear()
    t0 = n.now()
    ss.send(b"y" * 50_000)
    n.run_for(0.001)
    assert len([s for s in n.segs if s.host == "server" and s.len and s.t == t0]) == 3


def test_initrwnd_caps_the_window_of_syn_and_synack():
    """tcp_select_initial_window(init_rcv_wnd): rcv_wnd at most initrwnd * mss, the mss
    being advmss (1460) for the SYN and advmss less timestamps (1448) for the SYN-ACK."""
    n = Net()
    n.c.change_route("10.0.0.2", 32, "eth0", initrwnd=5)
    n.s.change_route("10.0.0.1", 32, "eth0", initrwnd=3)
    cs, ss, _ = n.connect_pair()
    assert _syn(n, "client").win == 5 * 1460
    assert _syn(n, "server").win == 3 * 1448
    # without the metric: the whole initial receive space (tcp_rmem[1] 131072 at the default
    # scaling ratio: 64240, a multiple of 1460)
    m = Net()
    m.connect_pair()
    assert _syn(m, "client").win == 64240 and _syn(m, "server").win == 65160


# ---- rto_min / quickack -----------------------------------------------------------------------

def _first_rto(n: Net, cs) -> float:
    """Drop the first transmission of one data segment: seconds until it is sent again."""
    n.run_for(0.1)
    seen = []

    def drop_once(pkt: bytes) -> bool:
        ihl = (pkt[0] & 15) * 4
        doff = (pkt[ihl + 12] >> 4) * 4
        if len(pkt) > ihl + doff and not seen:
            seen.append(pkt)
            return False
        return True
    n.link.ab.filter = drop_once
    n.cap.clear()
    cs.send(b"z" * 100)
    n.run_for(2)
    sends = [s.t for s in n.segs if s.host == "client" and s.len]
    assert len(sends) >= 2
    return round(sends[1] - sends[0], 6)


@pytest.mark.parametrize("rto_min, rto", [(None, 0.21), (0.05, 0.06), (0.1, 0.11)])
def test_rto_min_sets_the_floor_of_the_rto(rto_min, rto):
    """RTO = srtt + max(2 * rtt, rto_min) after the handshake's 10 ms sample: 210 ms with the
    default 200 ms floor, 60 ms with ``rto_min 50ms`` (tcp_rto_min: the locked metric)."""
    n = Net()
    if rto_min is not None:
        n.c.change_route("10.0.0.2", 32, "eth0", rto_min=rto_min)
    cs, ss, _ = n.connect_pair()
    assert cs.sk.icsk_rto == int(rto * 1e6)
    # (the single lost segment goes out again by the loss probe or the RTO, whichever first:
    # with one segment in flight, TLP = 2 * srtt + rto_min ... capped by the RTO)
    assert _first_rto(n, cs) == rto


def test_rto_min_also_bounds_the_delayed_ack():
    """tcp_delack_max: one jiffy under tcp_rto_min. A receiver whose route says rto_min 30ms
    delays an ACK at most 29 ms (instead of 199)."""
    n = Net(delay=0.15)
    n.s.change_route("10.0.0.1", 32, "eth0", rto_min=0.03)
    cs, ss, _ = n.connect_pair()
    cs.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    n.run_for(0.5)
    for _ in range(17):                      # use up the 16 quick ACKs of a new connection
        cs.send(b"q" * 100)
        n.run_for(0.6)
    n.cap.clear()
    cs.send(b"r" * 100)
    n.run_for(0.6)
    d = next(s for s in n.segs if s.host == "client" and s.len)
    a = next(s for s in n.segs if s.host == "server" and s.ack >= d.seq + d.len)
    assert round((a.t - d.t - 0.15) * 1000, 3) == 29.0


def test_quickack_route_acks_every_segment_at_once():
    """tcp_in_quickack_mode: a route with quickack 1 makes every ACK immediate, also after the
    16 quick ACKs a new connection starts with are used up (then 40 ms delayed ACKs)."""
    def delays(quickack: int) -> list[float]:
        n = Net()
        if quickack:
            n.s.change_route("10.0.0.1", 32, "eth0", quickack=1)
        cs, ss, _ = n.connect_pair()
        cs.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        n.run_for(0.1)
        n.cap.clear()
        for _ in range(20):
            cs.send(b"q" * 100)
            n.run_for(0.1)
        out = []
        for d in (s for s in n.segs if s.host == "client" and s.len):
            a = next(s for s in n.segs if s.host == "server" and s.t >= d.t
                     and s.ack >= d.seq + d.len)
            out.append(round((a.t - d.t - 0.005) * 1000, 3))
        return out
    assert delays(0) == [0.0] * 16 + [40.0] * 4
    assert delays(1) == [0.0] * 20


# ---- mtu lock: no DF; a device smaller than the route drops DF frames ------------------------

def _df_bits(n: Net, host: str) -> set[bool]:
    got = set()

    def tap(net, dev, data, direction, now):
        if direction == "out" and data[9] == 6:
            got.add(bool(data[6] & 0x40))
    getattr(n, host).trace.packet.attach(tap)
    return got


def test_mtu_lock_clears_df():
    """ip_dont_fragment: IP_PMTUDISC_WANT sockets set DF unless the route's MTU is locked."""
    n = Net()
    locked = _df_bits(n, "c")
    plain = _df_bits(n, "s")
    n.c.change_route("10.0.0.2", 32, "eth0", mtu=1400, mtu_lock=True)
    cs, ss, _ = n.connect_pair()
    cs.send(b"x" * 3000)
    n.run_for(0.1)
    assert locked == {False} and plain == {True}
    assert cs.sk.mss_cache == 1400 - 52


def test_device_drops_df_frames_over_its_mtu():
    """A route mtu above the device's: DF frames longer than the device MTU are dropped by the
    device (tx_dropped, drop reason PKT_TOO_BIG), no ICMP -- a black hole. A capture on the
    host still sees them leave the stack."""
    n = Net()
    dev = n.dev(n.c)
    dev.mtu = 1200
    n.c.change_route("10.0.0.2", 32, "eth0", mtu=1500)
    reasons = []
    n.c.trace.drop.attach(lambda net, what, reason, now: reasons.append(reason))
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    tx0 = dev.tx_packets
    on_wire = n.link.ab.counters()["sent"]
    n.cap.clear()
    cs.send(b"x" * 1448)
    n.run_for(0.05)
    assert [s.len for s in n.segs if s.host == "client"] == [1448]     # captured
    assert dev.tx_dropped == 1 and reasons == ["PKT_TOO_BIG"] and dev.tx_packets == tx0
    assert n.link.ab.counters()["sent"] == on_wire                      # nothing reached it
    ss.setblocking(False)
    with pytest.raises(BlockingIOError):
        ss.recv(10)


# ---- the ip route command ---------------------------------------------------------------------

def test_ip_route_command_and_its_errors():
    n = Net()
    c = n.c
    c.ip_route("ip route change 10.0.0.2 via 10.0.0.2 dev eth0 advmss 600 mtu lock 640 "
               "initcwnd 11 initrwnd 7 rto_min 50ms quickack 1")
    r = c.fib_lookup(0x0A000002)
    assert (r.advmss, r.mtu, r.initcwnd, r.initrwnd, r.rto_min, r.quickack) == \
        (600, 640, 11, 7, 50, 1)
    assert r.locks == (1 << RTAX_MTU) | (1 << RTAX_RTO_MIN)   # rto_min is always locked
    assert (RTAX_MTU, RTAX_RTO_MIN) == (2, 13)                  # uapi/linux/rtnetlink.h
    # change replaces the whole entry: metrics not given are gone
    c.ip_route("route change 10.0.0.2 dev eth0 initcwnd 4")
    r = c.fib_lookup(0x0A000002)
    assert (r.advmss, r.mtu, r.initcwnd, r.rto_min, r.locks) == (0, 0, 4, 0, 0)
    cases = [
        ("ip route change 10.9.9.9 dev eth0 mtu 1400", errno.ENOENT),     # no such entry
        ("ip route add 10.0.0.2 dev eth0", errno.EEXIST),
        ("ip route del 10.9.9.9", errno.ESRCH),
        ("ip route add 10.9.9.9 dev eth9", errno.ENODEV),
        ("ip route add 10.9.9.9 quickack 2 dev eth0", errno.EINVAL),
        ("ip route add 10.9.9.9 dev eth0 rto_min 5parsecs", errno.EINVAL),
        ("ip route show", errno.EINVAL),
    ]
    for cmd, err in cases:
        with pytest.raises(OSError) as e:
            c.ip_route(cmd)
        assert e.value.errno == err, cmd
    c.ip_route("ip route replace 10.9.9.0/24 via 10.0.0.2 initrwnd 2")   # dev from the gateway
    r = c.fib_lookup(0x0A090901)
    assert r.dev.name == "eth0" and r.plen == 24 and r.initrwnd == 2
    c.ip_route("ip -4 route del 10.9.9.0/24")
    assert c.fib_lookup(0x0A090901).plen == 0    # back to the default route
    assert parse_ip_route("ip route add default via 10.0.0.2 rto_min 0.2s".split()) == (
        "add", {"dst": 0, "plen": 0, "dev": None, "gw": 0x0A000002, "src": 0, "rto_min": 0.2})


def test_route_change_bumps_genid_and_flushes_lookups():
    n = Net()
    g = n.c.rt_genid
    r1 = n.c.fib_lookup(0x0A000002)
    n.c.change_route("10.0.0.2", 32, "eth0", initcwnd=7)
    r2 = n.c.fib_lookup(0x0A000002)
    assert n.c.rt_genid == g + 1 and r2 is not r1 and r2.initcwnd == 7
    # the old entry is untouched: a socket still holding it keeps the old metrics
    assert r1.initcwnd == 0
