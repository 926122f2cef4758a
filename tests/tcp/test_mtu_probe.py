"""TCP MTU probing (RFC 4821 PLPMTUD as Linux 6.x does it: tcp_mtu_probe, tcp_mtup_probe_success
/ _failed, tcp_mtu_probing black-hole detection, tcp_mtu_check_reprobe).

Client 10.0.0.1 -> server 10.0.0.2, RTT 10 ms, timestamps on (12 option bytes per segment), so
``tcp_mtu_to_mss(mtu) = mtu - 52`` and the probing range starts at search_low =
tcp_mss_to_mtu(tcp_base_mss 1024) = 1076, search_high = peer MSS 1460 + 40 = 1500.
"""

from __future__ import annotations

import pytest

import tcpdive.tcp.mtu_probe as M

from .helpers import Net


def _bulk(n: Net, cs, ss, size: int, limit: float = 60.0) -> int:
    """Send ``size`` bytes client -> server with non-blocking sockets; returns bytes received."""
    cs.setblocking(False)
    ss.setblocking(False)
    data = b"d" * size
    sent = got = 0
    t_end = n.now() + limit
    while got < size and n.now() < t_end:
        if sent < size:
            try:
                sent += cs.send(data[sent:])
            except BlockingIOError:
                pass
        n.run_for(0.01)
        try:
            got += len(ss.recv(1 << 22))
        except BlockingIOError:
            pass
    return got


@pytest.fixture
def probes(monkeypatch):
    """The probes sent, as (time, probe MTU, search range before) per tcp_mtu_probe == 1."""
    got: list[tuple[float, int, tuple[int, int]]] = []
    orig = M.tcp_mtu_probe

    def spy(sk):
        before = (sk.mtup.search_low, sk.mtup.search_high)
        r = orig(sk)
        if r == 1:
            got.append((round(sk.net.clock.now_us() / 1e6, 6), sk.mtup.probe_size, before))
        return r
    monkeypatch.setattr(M, "tcp_mtu_probe", spy)
    return got


def _pair(mode: int, **route):
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", mode)
    if route:
        n.c.change_route("10.0.0.2", 32, "eth0", **route)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    return n, cs, ss


def _black_hole(n: Net, mtu: int = 1200):
    """The client's device carries at most ``mtu`` bytes but its route says 1500."""
    dev = n.dev(n.c)
    dev.mtu = mtu
    n.c.change_route("10.0.0.2", 32, "eth0", mtu=1500)
    return dev


def test_mode_2_starts_at_base_mss_and_binary_searches_up(probes):
    """tcp_mtu_probing=2: tcp_mtup_init at setup, so the MSS starts at tcp_base_mss (1024);
    each probe is tcp_mtu_to_mss((low + high) / 2) bytes, and its ACK raises search_low and
    the MSS (tcp_mtup_probe_success) until high - low < tcp_probe_threshold (8)."""
    n, cs, ss = _pair(2)
    sk = cs.sk
    assert sk.mss_cache == 1024 and (sk.mtup.search_low, sk.mtup.search_high) == (1076, 1500)
    n.cap.clear()
    assert _bulk(n, cs, ss, 2_000_000) == 2_000_000
    assert [p[1] for p in probes] == [1288, 1394, 1447, 1473, 1486, 1493]
    assert [p[2] for p in probes] == [(1076, 1500), (1288, 1500), (1394, 1500), (1447, 1500),
                                      (1473, 1500), (1486, 1500)]
    assert (sk.mtup.search_low, sk.mtup.search_high, sk.mtup.probe_size) == (1493, 1500, 0)
    assert sk.mss_cache == 1493 - 52 == 1441
    assert n.c.mib["TcpExtTCPMTUPSuccess"] == 6 and n.c.mib["TcpExtTCPMTUPFail"] == 0
    # on the wire: the first probe is the first segment longer than 1024, 1236 bytes, and
    # before its ACK every other data segment is 1024
    data = [s for s in n.segs if s.host == "client" and s.len]
    i = next(k for k, s in enumerate(data) if s.len > 1024)
    assert data[i].len == 1288 - 52 == 1236 and data[i].t == probes[0][0]
    assert {s.len for s in data[:i]} == {1024}


def test_a_probe_needs_cwnd_11_and_stands_for_two_packets(probes):
    """The first flight of the default initcwnd 10 has no probe; with ``initcwnd 11`` on the
    route the first segment is the probe, and cwnd drops by one for it (10 left: 9 more
    1024-byte segments)."""
    n, cs, ss = _pair(2)
    n.cap.clear()
    t0 = n.now()
    cs.send(b"a" * 100_000)
    n.run_for(0.001)
    assert [s.len for s in n.segs if s.host == "client" and s.t == t0] == [1024] * 10
    assert probes == []
    # (a write below size_goal: a larger one is pushed as it is copied, tcp_push_one, which
    # never probes, before tcp_push's tcp_write_xmit does)
    n, cs, ss = _pair(2, initcwnd=11)
    n.cap.clear()
    t0 = n.now()
    cs.send(b"a" * 30_000)
    n.run_for(0.001)
    assert [s.len for s in n.segs if s.host == "client" and s.t == t0] == [1236] + [1024] * 9
    assert len(probes) == 1 and cs.sk.snd_cwnd == 10
    assert (cs.sk.mtup.probe_seq_start, cs.sk.mtup.probe_seq_end) == (
        cs.sk.iss + 1, cs.sk.iss + 1 + 1236)


def test_not_enough_queued_data_means_no_probe(probes):
    """size_needed = probe + (reordering + 1) * mss = 1236 + 4 * 1024 must be queued."""
    n, cs, ss = _pair(2, initcwnd=11)
    cs.send(b"a" * (1236 + 4 * 1024 - 1))
    n.run_for(0.5)
    assert probes == []
    cs.send(b"b" * 100_000)
    n.run_for(0.5)
    assert len(probes) >= 1


def test_probe_threshold_and_modes_0_1_do_not_probe(probes):
    n, cs, ss = _pair(0)
    assert cs.sk.mtup is None and cs.sk.mss_cache == 1448
    assert _bulk(n, cs, ss, 500_000) == 500_000
    n, cs, ss = _pair(1)                      # on only once a black hole is suspected
    assert not cs.sk.mtup.enabled and cs.sk.mss_cache == 1448
    assert _bulk(n, cs, ss, 500_000) == 500_000
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", 2)
    n.c.sysctl_set("net.ipv4.tcp_probe_threshold", 425)      # 1500 - 1076 = 424 < 425
    cs, ss, _ = n.connect_pair()
    assert _bulk(n, cs, ss, 500_000) == 500_000
    assert probes == [] and cs.sk.mss_cache == 1024


def test_black_hole_is_stuck_without_mtu_probing():
    n = Net(delay=0.005)
    dev = _black_hole(n)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    n.cap.clear()
    assert _bulk(n, cs, ss, 20_000, limit=10.0) == 0
    sizes = {s.len for s in n.segs if s.host == "client" and s.len}
    assert sizes == {1448} and dev.tx_dropped == len(
        [s for s in n.segs if s.host == "client" and s.len])
    assert n.c.mib["TcpExtTCPTimeouts"] == 5


def test_black_hole_detection_lowers_the_mss_after_rtos(probes):
    """tcp_mtu_probing=1 over a path that drops anything over 1200 bytes without ICMP. The
    RTO retransmits the 1448-byte head at 0.347, 0.767, 1.607, 3.287 s (210 ms doubling); at the
    RTO of 6.647 s the retransmissions have lasted longer than tcp_retries1 (3) backoffs from
    200 ms allow (3 s, tcp_model_timeout): tcp_mtu_probing switches probing on, tcp_sync_mss
    lowers the MSS to MTU 1076 (1024 bytes) and the head goes again, cut to 1024."""
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", 1)
    dev = _black_hole(n)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    n.cap.clear()
    assert _bulk(n, cs, ss, 300_000) == 300_000
    head = [(round(s.t, 3), s.len) for s in n.segs if s.host == "client" and s.seq == 1]
    assert head[0][1] == 1448
    assert head[-5:] == [(0.347, 1448), (0.767, 1448), (1.607, 1448), (3.287, 1448),
                         (6.647, 1024)]
    assert n.c.mib["TcpExtTCPTimeouts"] == 5
    # then probing, now on, searches between 1076 and 1500: 1288 and 1234 and 1207 are lost
    # (tcp_mtup_probe_failed lowers search_high below them), 1181, 1193 and 1199 arrive
    assert [p[1] for p in probes] == [1288, 1181, 1234, 1207, 1193, 1199]
    assert n.c.mib["TcpExtTCPMTUPFail"] == 3 and n.c.mib["TcpExtTCPMTUPSuccess"] == 3
    m = cs.sk.mtup
    assert (m.search_low, m.search_high) == (1199, 1206) and cs.sk.mss_cache == 1147
    sent = [s for s in n.segs if s.host == "client" and s.len]
    assert dev.tx_dropped == sum(1 for s in sent if s.len + 52 > 1200) == 18


def test_failed_probe_is_resent_at_the_mss_without_a_cwnd_cut(probes, monkeypatch):
    """Mode 2 over a 1200-byte path: the first probe (1288) is lost; the SACKs of the segments
    after it show the loss while snd_una sits at the probe's start, so tcp_fastretrans_alert
    takes the "MTU probe failure" branch: search_high = 1287, cwnd given back the probe's
    extra segment, tcp_simple_retransmit resends the probe's bytes at the MSS -- no RTO and
    no Recovery (no cwnd reduction)."""
    calls = []
    orig = M.tcp_simple_retransmit

    def spy(sk):
        calls.append((sk.snd_cwnd, sk.icsk_ca_state))
        orig(sk)
    monkeypatch.setattr(M, "tcp_simple_retransmit", spy)
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", 2)
    _black_hole(n)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    n.cap.clear()
    assert _bulk(n, cs, ss, 300_000) == 300_000
    assert probes[0][1] == 1288 and probes[1][2] == (1076, 1287)
    assert n.c.mib["TcpExtTCPTimeouts"] == 0 and n.c.mib["TcpExtTCPMTUPFail"] >= 1
    assert calls and calls[0][1] == 1            # CA_Disorder (< CWR) when it failed
    # the probe's first byte went out again as a 1024-byte segment
    first = [s for s in n.segs if s.host == "client" and s.len == 1236][0]
    again = [s.len for s in n.segs if s.host == "client" and s.seq == first.seq]
    assert again == [1236, 1024]
    assert cs.sk.mss_cache <= 1200 - 52


def test_black_hole_below_base_mss_halves_search_low():
    """Mode 2, a path of 1000 bytes: even search_low (1076) does not fit. Each RTO past
    tcp_retries1 halves it: mss = min(tcp_base_mss, mtu_to_mss(search_low) / 2) = 512, not
    below tcp_mtu_probe_floor (48)."""
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", 2)
    _black_hole(n, mtu=1000)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    assert cs.sk.mss_cache == 1024
    assert _bulk(n, cs, ss, 50_000) == 50_000
    m = cs.sk.mtup
    assert m.search_low == 512 + 52 and cs.sk.mss_cache <= 1000 - 52
    assert n.c.mib["TcpExtTCPTimeouts"] == 5


def test_reprobe_after_probe_interval_finds_a_larger_path(probes):
    """The search closed at 1199 on a 1200-byte path. The path then grows to 1500; after
    tcp_probe_interval seconds (here 10) tcp_mtu_check_reprobe restarts it from the current
    MSS (search_low = 1199, search_high = 1500) and the MSS climbs again."""
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_mtu_probing", 2)
    n.c.sysctl_set("net.ipv4.tcp_probe_interval", 10)
    dev = _black_hole(n)
    cs, ss, _ = n.connect_pair()
    n.run_for(0.1)
    assert _bulk(n, cs, ss, 1_000_000) == 1_000_000
    m = cs.sk.mtup
    assert (m.search_low, m.search_high) == (1199, 1206) and cs.sk.mss_cache == 1147
    stamp = m.probe_timestamp
    dev.mtu = 1500
    count = len(probes)
    n.run_for(2)
    assert _bulk(n, cs, ss, 300_000) == 300_000
    assert len(probes) == count                   # less than 10 s since: still closed
    n.run_for(10)
    assert _bulk(n, cs, ss, 1_000_000) == 1_000_000
    assert m.probe_timestamp > stamp
    assert probes[count][2] == (1199, 1500)
    assert [p[1] for p in probes[count:]] == [1349, 1424, 1462, 1481, 1490, 1495]
    assert cs.sk.mss_cache == 1495 - 52 == 1443
