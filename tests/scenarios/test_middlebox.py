"""Middleboxes: firewall DROP rules, SNAT with checksum fix, load balancer session table."""

from __future__ import annotations

import asyncio

from tcpdive.apps.http import HttpServer, curl
from tcpdive.apps.redis import ConnectionPool, Redis, RedisServer
from tcpdive.packet.checksum import csum_partial, tcp_v4_verify
from tcpdive.sim.middlebox import Firewall, LoadBalancer, Nat, fix_checksums, parse_l4
from tcpdive.sim.world import World


def test_firewall_drop_counts_and_flush():
    w = World(seed=3)
    a, b = w.host("a", "10.0.0.1"), w.host("b", "10.0.0.2")
    w.link(a, b, delay=0.001)
    fw = Firewall(a)
    rule = fw.drop("OUTPUT", proto="tcp", dst="10.0.0.2", dport=80)
    ls = b.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(4)
    s = a.socket()
    s.settimeout(2.5)
    assert s.connect_ex(("10.0.0.2", 80)) != 0
    assert rule.pkts >= 2
    fw.flush()
    s2 = a.socket()
    s2.connect(("10.0.0.2", 80))


def test_nat_rewrites_and_fixes_checksums():
    w = World(seed=4)
    srv, nat, c = w.host("srv", "203.0.113.1"), w.host("nat", "198.51.100.1"), w.host("c", "172.16.0.5")
    w.link(nat, srv, delay=0.001)
    w.link(c, nat, delay=0.001, b_addr="198.51.100.1")
    n = Nat(nat, "198.51.100.1", "172.16.0.0/16")
    seen = []
    srv.trace.packet.attach(lambda net, dev, data, d, now: seen.append(data) if d == "in" else None)
    http = HttpServer(80, keepalive_timeout=0)
    srv.run(http.start())
    st, _, _ = c.run(curl("203.0.113.1", 80))
    assert st == 200 and n.translated > 0 and n.mappings()
    for data in seen:
        proto, sa, da, sp, dp = parse_l4(data)
        assert sa == int.from_bytes(bytes([198, 51, 100, 1]), "big")
        assert csum_partial(data[:20]) == 0xFFFF            # IPv4 header checksum is right
        assert tcp_v4_verify(sa, da, data[20:])
    assert fix_checksums(bytearray(seen[0])) == seen[0]


def test_load_balancer_round_robin_and_idle_timeout():
    w = World(seed=5)
    c, lb, b1, b2 = (w.host("c", "10.0.1.1"), w.host("lb", "10.0.0.254"), w.host("b1", "10.10.10.11"),
                     w.host("b2", "10.10.10.12"))
    w.link(c, lb, delay=0.001)
    w.link(lb, b1, delay=0.001)
    w.link(lb, b2, delay=0.001)
    w.link(b1, c, delay=0.001)
    w.link(b2, c, delay=0.001)
    for b in (b1, b2):
        b.add_addr("lo", "10.10.10.100", 32)
    bal = LoadBalancer(lb, "10.10.10.100", 80, {"b1": "eth1", "b2": "eth2"}, idle_timeout=120)
    for b in (b1, b2):
        b.run(HttpServer(80, keepalive_timeout=0).start())
    assert c.run(curl("10.10.10.100", 80))[0] == 200
    assert c.run(curl("10.10.10.100", 80))[0] == 200
    backends = [m.split(" -> ")[1] for _, m in bal.events if m.startswith("new")]
    assert backends == ["b1", "b2"]
    w.run_for(130)
    bal.session_table()
    assert not bal.sessions and len(bal.expired) == 2


def test_redis_pool_reuses_one_connection_and_config_keepalive():
    w = World(seed=6)
    c, s = w.host("c", "10.0.0.1"), w.host("s", "10.0.0.2")
    w.link(c, s, delay=0.0001)
    srv = RedisServer(tcp_keepalive=0)
    s.run(srv.start())
    pool = ConnectionPool("10.0.0.2")

    async def go():
        admin = Redis("10.0.0.2")
        assert await admin.config_set("tcp-keepalive", 42) == "OK"
        await admin.close()     # not left to the garbage collector (PyPy has no refcounting)
        for i in range(20):
            assert await Redis(connection_pool=pool).setex(i, 10, i) == "OK"
        assert await Redis(connection_pool=pool).get(3) == b"3"
        await asyncio.sleep(11)
        return await Redis(connection_pool=pool).get(3)
    assert c.run(go()) is None           # SETEX 10 expired
    assert pool.created == 1
    sk = next(iter(s.sockets - {x for x in s.sockets if x.state == 10}))
    assert sk.keepalive_time == 42 * 1_000_000 or sk.keepopen
