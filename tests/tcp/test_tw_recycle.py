"""tcp_tw_recycle emulation (issue #4): two clients behind one NAT, the server closes first.

``net.ipv4.tcp_tw_recycle`` was removed in Linux 4.12; tcpdive keeps it as an explicit emulation
of 4.11 (tcp/metrics.py): when a connection that saw timestamps enters TIME_WAIT the server
caches the peer address's last TSval (``tcp_remember_stamp``), TIME_WAIT lasts
``tw_timeout`` = 3.5 * RTO instead of 60 s, and ``tcp_conn_request`` drops a SYN from that address
whose TSval is more than TCP_PAWS_WINDOW behind the cached one, or has no timestamp, within
TCP_PAWS_MSL = 60 s of the cached stamp (``tcp_peer_is_proven``).

The drop counter keeps its pre-4.12 name, TcpExtPAWSPassive (LINUX_MIB_PAWSPASSIVEREJECTED):
Linux 6.18 has no such counter (``nstat -az`` on 6.18 lists PAWSActive, PAWSEstab, PAWSOldAck
and PAWSTimewait only), so it is listed as tcpdive-only in net/mib.py. Like 4.11, the drop also
counts TcpExtListenDrops (``drop_and_release`` -> ``tcp_listendrop``).

Since 4.10 each (saddr, daddr) pair has its own random timestamp offset
(``secure_tcp_ts_off``), so the two clients' clocks differ by their offsets: the client whose
offset is larger (in 32-bit serial arithmetic) is "ahead" (C1) and the other is "behind" (C2).
"""

from __future__ import annotations

import errno

import pytest

from tcpdive.packet.ipv4 import ip2int
from tcpdive.packet.tcp import SYN, tcp_parse_options
from tcpdive.sim.middlebox import Nat
from tcpdive.sim.world import World
from tcpdive.tcp import sock as S
from tcpdive.tcp.ipv4 import secure_tcp_ts_off

SERVER = "203.0.113.10"
PUBLIC = "198.51.100.1"


class NatWorld:
    def __init__(self, recycle: int, seed: int = 1) -> None:
        self.w = w = World(seed=seed)
        self.server = w.host("server", SERVER)
        nat = w.host("nat", PUBLIC)
        a, b = w.host("c1", "172.16.0.11"), w.host("c2", "172.16.0.12")
        w.link(nat, self.server, delay=0.002, a_addr=PUBLIC, b_addr=SERVER)
        for h in (a, b):
            w.link(h, nat, delay=0.0005, b_addr=PUBLIC)
        self.nat = Nat(nat, PUBLIC, "172.16.0.0/16")
        off = {h: secure_tcp_ts_off(h, ip2int(h.addr), ip2int(SERVER)) for h in (a, b)}
        ahead = ((off[a] - off[b]) & 0xFFFFFFFF) < 0x80000000
        self.ahead, self.behind = (a, b) if ahead else (b, a)
        self.server.sysctl.set("net.ipv4.tcp_tw_recycle", recycle)
        self.ls = self.server.socket()
        self.ls.bind(("0.0.0.0", 80))
        self.ls.listen(16)
        self.syns: list[tuple[float, int | None]] = []       # SYNs reaching the server
        self.synacks = 0
        self.rto_at_close = 0
        self.tw: dict[tuple, list[float]] = {}                # 4-tuple: [entered, left]
        self.server.trace.packet.attach(self._on_packet)
        self.server.trace.set_state.attach(self._on_state)

    def _on_packet(self, net, dev, data, direction, now_us) -> None:
        if data[9] != 6:
            return
        off = (data[0] & 15) * 4
        flags = data[off + 13]
        if direction == "in" and flags & 0x12 == SYN:
            o = tcp_parse_options(data[off:], 20, (data[off + 12] >> 4) * 4, True)
            self.syns.append((now_us / 1e6, o.tsval if o is not None and o.saw_tstamp else None))
        elif direction == "out" and flags & 0x12 == 0x12:
            self.synacks += 1

    def _on_state(self, sk, old, new, now_us) -> None:
        key = (sk.sport, sk.daddr, sk.dport)          # the full socket, then its mini socket
        if new in (S.TCP_FIN_WAIT2, S.TCP_TIME_WAIT) and hasattr(sk, "icsk_rto"):
            self.rto_at_close = sk.icsk_rto           # what tcp_time_wait sees
        if new == S.TCP_TIME_WAIT:
            self.tw[key] = [now_us / 1e6]
        elif old == S.TCP_TIME_WAIT and key in self.tw:
            self.tw[key].append(now_us / 1e6)

    def request(self, client, client_close_after: float = 0.0) -> int:
        """One request on a fresh connection; the server closes first.

        Returns the server socket's RTO when tcp_time_wait made its mini socket."""
        k = client.socket()
        k.settimeout(10)
        k.connect((SERVER, 80))
        ss, _ = self.ls.accept()
        k.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert ss.recv(100) == b"GET / HTTP/1.0\r\n\r\n"
        ss.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
        ss.close()                                   # active closer: TIME_WAIT on the server
        assert k.recv(100) == b"HTTP/1.0 200 OK\r\n\r\n"
        assert k.recv(100) == b""
        if client_close_after:
            self.w.run_for(client_close_after)
        k.close()
        self.w.run_for(0.05)
        return self.rto_at_close

    def try_connect(self, client, wait: float = 5.0) -> int:
        """Non-blocking connect, then ``wait`` seconds; returns the client socket's state."""
        k = client.socket()
        k.setblocking(False)
        assert k.connect_ex((SERVER, 80)) == errno.EINPROGRESS
        self.w.run_for(wait)
        return k.sk.state


def _server_tw(net):
    return [s for s in net.tcp_hashinfo.ehash.values() if type(s).__name__ == "TimewaitSock"]


def test_recycle_on_drops_the_nat_peer_whose_timestamps_are_behind():
    n = NatWorld(recycle=1)
    s = n.server
    rto = n.request(n.ahead)
    # the peer's last TSval is cached per address (the NAT's), as 4.11's tcp_metrics did
    (tw,) = _server_tw(s)
    assert s.tcp_metrics_ts[ip2int(PUBLIC)][0] == tw.ts_recent
    # TIME_WAIT shortened to the RTO-based value: 3.5 * RTO ((rto << 2) - (rto >> 1))
    rto3 = (rto << 2) - (rto >> 1)
    assert rto3 == 3.5 * rto and rto3 < 1_000_000
    assert tw.remaining_us() <= rto3
    n.w.run_for(1.0)
    ((enter, leave),) = n.tw.values()
    assert leave - enter == pytest.approx(rto3 / 1e6, abs=1e-6)
    assert s.mib["TcpExtTWKilled"] == 1 and s.mib["TcpExtTW"] == 0   # timeo <= 4 s: "killed"
    assert not _server_tw(s)
    # the second client's SYNs (older TSvals, same source address) are all dropped silently
    before = dict(s.mib)
    n.syns.clear()
    n.synacks = 0
    assert n.try_connect(n.behind, wait=20.0) == S.TCP_SYN_SENT
    k_syns = len(n.syns)
    assert k_syns >= 5                                # the SYN and its retransmissions
    assert all(ts is not None for _, ts in n.syns)
    assert n.synacks == 0
    d = s.mib.delta(before)
    assert d.get("TcpExtPAWSPassive") == k_syns
    assert d.get("TcpExtListenDrops") == k_syns
    assert d.get("TcpPassiveOpens", 0) == 0


def test_recycle_orphaned_fin_wait2_gets_the_rto_based_time_wait_on_its_fin():
    """The client closes 1 s after the server: the server's orphaned FIN_WAIT2 is a mini socket
    (tcp_time_wait(TCP_FIN_WAIT2), TcpExtTW); when the FIN comes, 4.11's
    tcp_timewait_state_process ran tcp_tw_remember_stamp and rescheduled it to tw_timeout."""
    n = NatWorld(recycle=1)
    s = n.server
    rto = n.request(n.ahead, client_close_after=1.0)
    rto3 = (rto << 2) - (rto >> 1)
    assert s.mib["TcpExtTW"] == 1 and s.mib["TcpExtTWKilled"] == 0
    n.w.run_for(1.0)
    ((enter, leave),) = n.tw.values()
    assert leave - enter == pytest.approx(rto3 / 1e6, abs=1e-6)
    assert n.try_connect(n.behind, wait=0.5) == S.TCP_SYN_SENT
    assert s.mib["TcpExtPAWSPassive"] == 1


def test_recycle_on_blocking_connect_waits_out_tcp_paws_msl():
    """A blocking connect() of the client behind keeps retransmitting its SYN; every SYN within
    TCP_PAWS_MSL of the cached stamp is dropped, the first one after it opens the connection
    (4.11 did the same: its 6th SYN retransmission, at 63 s, came after the 60 s)."""
    n = NatWorld(recycle=1)
    s = n.server
    n.request(n.ahead)
    stamp = s.tcp_metrics_ts[ip2int(PUBLIC)][1]
    n.syns.clear()
    k = n.behind.socket()
    k.settimeout(300)
    k.connect((SERVER, 80))                           # succeeds, late
    times = [t for t, _ in n.syns]
    late = [t for t in times if t >= stamp + S.TCP_PAWS_MSL]
    assert len(late) == 1 and times[-1] == late[0]
    assert s.mib["TcpExtPAWSPassive"] == len(times) - 1 >= 5
    assert n.w.now() > stamp + S.TCP_PAWS_MSL
    ss, _ = n.ls.accept()
    k.sendall(b"late")
    n.w.run_for(0.1)
    assert ss.recv(10) == b"late"


def test_recycle_off_both_clients_connect():
    n = NatWorld(recycle=0)
    s = n.server
    n.request(n.ahead)
    assert all(t.remaining_us() > 59_000_000 for t in _server_tw(s))
    n.request(n.behind)
    assert s.mib["TcpExtPAWSPassive"] == 0
    assert s.mib["TcpPassiveOpens"] == 2
    assert s.tcp_metrics_ts is None                   # no timestamp cache without recycle
    n.w.run_for(61)
    assert [round(b - a, 6) for a, b in n.tw.values()] == [60.0, 60.0]     # TCP_TIMEWAIT_LEN


def test_recycle_on_newer_timestamps_pass():
    """The check is about older timestamps only: the client that is *ahead* connects after the
    one behind, and the cache then moves forward (tcp_remember_stamp keeps the newer TSval)."""
    n = NatWorld(recycle=1)
    s = n.server
    n.request(n.behind)
    n.w.run_for(1.0)
    old = list(s.tcp_metrics_ts[ip2int(PUBLIC)])
    n.request(n.ahead)
    assert s.mib["TcpExtPAWSPassive"] == 0 and s.mib["TcpPassiveOpens"] == 2
    new = s.tcp_metrics_ts[ip2int(PUBLIC)]
    assert ((new[0] - old[0]) & 0xFFFFFFFF) < 0x80000000 and new[0] != old[0]


def test_recycle_cache_expires_after_tcp_paws_msl():
    """tcp_peer_is_proven: the cached stamp only counts for TCP_PAWS_MSL (60 s)."""
    n = NatWorld(recycle=1)
    s = n.server
    n.request(n.ahead)
    stamp = s.tcp_metrics_ts[ip2int(PUBLIC)][1]
    n.w.run_until(stamp + S.TCP_PAWS_MSL - 1)
    assert n.try_connect(n.behind, wait=0.1) == S.TCP_SYN_SENT
    assert s.mib["TcpExtPAWSPassive"] == 1 and s.mib["TcpPassiveOpens"] == 1
    n.w.run_until(stamp + S.TCP_PAWS_MSL + 0.5)
    # the retransmitted SYN (at 1 s) now falls outside the 60 s and is accepted
    assert s.mib["TcpPassiveOpens"] == 2
    assert s.mib["TcpExtPAWSPassive"] == 1


def test_recycle_on_drops_a_syn_without_timestamps_from_a_cached_peer():
    """``!timestamps`` in tcp_peer_is_proven: no TSval at all is as bad as an old one."""
    n = NatWorld(recycle=1)
    n.request(n.ahead)
    n.behind.sysctl.set("net.ipv4.tcp_timestamps", 0)
    n.syns.clear()
    assert n.try_connect(n.behind, wait=2.5) == S.TCP_SYN_SENT
    assert [ts for _, ts in n.syns] == [None, None, None]     # at 0, 1, 2 s (linear timeouts)
    assert n.server.mib["TcpExtPAWSPassive"] == 3
