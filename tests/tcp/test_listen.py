"""Listen path (issue #4): accept queue bound, overflow counters, tcp_abort_on_overflow, SYN flood
with and without SYN cookies. Real-kernel results (Linux 6.18, fresh netns) are quoted where a
test mirrors them."""

from __future__ import annotations

import errno
import random
import time

from tcpdive.packet.ipv4 import IPPROTO_TCP, ip2int, ip_build
from tcpdive.packet.tcp import SYN, syn_options, tcp_build
from tcpdive.sim.world import World
from tcpdive.tcp import sock as S


def _world(seed: int = 1):
    w = World(seed=seed)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=0.0005)
    return w, c, s


def _eth(host):
    return next(d for d in host.devices.values() if d.name.startswith("eth"))


def test_accept_queue_holds_backlog_plus_one_and_counts_overflows():
    """Real kernel: listen(2), 6 non-blocking connects, nobody accepts: after 0.3 s 3 children
    are queued (sk_acceptq_is_full is ack_backlog > max_ack_backlog), ListenOverflows 3,
    ListenDrops 3, accept() returns 3."""
    w, c, s = _world()
    ls = s.socket()
    ls.bind(("10.0.0.2", 7100))
    ls.listen(2)
    before = dict(s.mib)
    cs = []
    for _ in range(6):
        k = c.socket()
        k.setblocking(False)
        assert k.connect_ex(("10.0.0.2", 7100)) == errno.EINPROGRESS
        cs.append(k)
    w.run_for(0.3)
    d = s.mib.delta(before)
    assert d.get("TcpExtListenOverflows") == 3 and d.get("TcpExtListenDrops") == 3
    ls.setblocking(False)
    got = 0
    while True:
        try:
            ls.accept()
        except OSError:
            break
        got += 1
    assert got == 3
    # the clients whose final ACK was dropped think they are connected
    assert [k.sk.state for k in cs] == [S.TCP_ESTABLISHED] * 6


def test_listen_backlog_is_capped_by_somaxconn():
    w, c, s = _world()
    s.sysctl.set("net.core.somaxconn", 3)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(1000)
    assert ls.sk.max_ack_backlog == 3


def test_abort_on_overflow_resets_the_client():
    w, c, s = _world()
    s.sysctl.set("net.ipv4.tcp_abort_on_overflow", 1)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(0)
    ks = []
    for _ in range(3):
        k = c.socket()
        k.setblocking(False)
        k.connect_ex(("10.0.0.2", 80))
        ks.append(k)
    w.run_for(0.1)
    states = sorted(k.sk.state for k in ks)
    assert states.count(S.TCP_ESTABLISHED) == 1      # backlog 0 still queues one child
    reset = [k for k in ks if k.sk.state == S.TCP_CLOSE]
    assert len(reset) == 2
    assert all(k.getsockopt(1, 4) == errno.ECONNRESET for k in reset)   # SO_ERROR
    assert s.mib["TcpExtListenOverflows"] == 2


def _flood(s, n: int, rng: random.Random, port: int = 80) -> None:
    """``n`` SYNs from random spoofed sources, straight into the server's NIC."""
    dev = _eth(s)
    daddr = ip2int("10.0.0.2")
    opts = syn_options(1460, True, None, 7)
    rx = s.netif_receive
    for _ in range(n):
        saddr = ip2int("172.16.0.0") | rng.getrandbits(20)
        seg = tcp_build(saddr, daddr, rng.randrange(1024, 65536), port, rng.getrandbits(32), 0,
                        SYN, 64240, opts)
        rx(dev, ip_build(saddr, daddr, IPPROTO_TCP, seg))


def _legit_exchange(w, c, ls) -> bool:
    k = c.socket()
    k.settimeout(300)
    try:
        k.connect(("10.0.0.2", 80))
    except OSError as e:
        assert e.errno == errno.ETIMEDOUT
        return False
    ss, _ = ls.accept()
    k.sendall(b"hello over a flood")
    w.run_for(0.1)
    assert ss.recv(100) == b"hello over a flood"
    return True


def test_syn_flood_100k_with_syncookies_client_still_connects():
    w, c, s = _world()
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(128)
    rng = random.Random(7)
    t = time.perf_counter()
    _flood(s, 100_000, rng)
    flood_s = time.perf_counter() - t
    assert s.mib["TcpExtTCPReqQFullDoCookies"] == 100_000 - 128
    assert s.mib["TcpExtSyncookiesSent"] == 100_000 - 128
    assert ls.sk.syn_queue_len == 128
    assert _legit_exchange(w, c, ls)
    assert s.mib["TcpExtSyncookiesRecv"] == 1          # the client's ACK carried the cookie
    assert s.mib["TcpExtSyncookiesFailed"] == 0
    assert flood_s < 120, flood_s


def test_syn_flood_without_syncookies_client_times_out():
    """Spoofed SYNs keep the SYN queue full (400 every 0.5 s for as long as the client tries):
    without cookies its SYNs are dropped (TCPReqQFullDrop, ListenDrops) and connect() fails."""
    w, c, s = _world()
    s.sysctl.set("net.ipv4.tcp_syncookies", 0)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(128)
    rng = random.Random(8)
    _flood(s, 400, rng)

    left = [260]                          # 260 * 400 = 104k SYNs over 130 s

    def more():
        _flood(s, 400, rng)
        left[0] -= 1
        if left[0]:
            w.loop.call_later(0.5, more)

    w.loop.call_later(0.5, more)
    assert not _legit_exchange(w, c, ls)
    assert s.mib["TcpExtSyncookiesSent"] == 0
    assert s.mib["TcpExtTCPReqQFullDrop"] >= 7         # the client's SYN and 6 retransmissions
    assert s.mib["TcpExtListenDrops"] == s.mib["TcpExtTCPReqQFullDrop"]


def test_syncookie_connection_carries_data_both_ways():
    """Was an open bug: the cookie's SYN-ACK carried TSval = cookie_init_timestamp() *without*
    the per-pair ts_off, while the child made by cookie_v4_check used secure_tcp_ts_off(): the
    server's TSval jumped backwards and the client PAWS-dropped every data segment. Linux adds
    ts_off in tcp_make_synack and subtracts it from TSecr in cookie_v4_check before
    cookie_timestamp_decode; cookie_tcp_reqsk_init gives the child that same ts_off."""
    from tcpdive.packet.tcp import tcp_parse_options

    w, c, s = _world()
    s.sysctl.set("net.ipv4.tcp_syncookies", 2)
    tsvals: list[int] = []

    def on_pkt(net, dev, data, direction, now_us) -> None:
        if direction == "out" and data[9] == 6:
            off = (data[0] & 15) * 4
            doff = (data[off + 12] >> 4) * 4
            o = tcp_parse_options(data[off:], 20, doff, bool(data[off + 13] & SYN))
            if o is not None and o.saw_tstamp:
                tsvals.append(o.tsval)

    s.trace.packet.attach(on_pkt)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(128)
    k = c.socket()
    k.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    assert s.mib["TcpExtSyncookiesRecv"] == 1
    assert s.mib["TcpExtSyncookiesFailed"] == 0
    # window scale and SACK came back from the TSecr's low 6 bits (cookie_timestamp_decode)
    assert (ss.sk.snd_wscale, ss.sk.sack_ok, ss.sk.tstamp_ok) == (k.sk.rcv_wscale, True, True)
    assert ss.sk.mss_cache == k.sk.mss_cache == 1448
    ss.settimeout(30)
    k.settimeout(30)
    ss.sendall(b"x" * 100_000)
    got = b""
    while len(got) < 100_000:
        got += k.recv(65536)
    assert got == b"x" * 100_000
    k.sendall(b"y" * 100_000)
    got = b""
    while len(got) < 100_000:
        got += ss.recv(65536)
    assert got == b"y" * 100_000
    # one TS clock from the SYN-ACK on: TSvals never go backwards
    assert len(tsvals) > 10
    assert all(((b - a) & 0xFFFFFFFF) < 0x80000000 for a, b in zip(tsvals, tsvals[1:], strict=False))
    assert c.mib["TcpExtPAWSEstab"] == 0
