"""Scenario 7 — tcp-keepalive: Redis's tcp-keepalive 0 / 300 / 10, the netstat timer, the probes.

Article: STEP 3.3 (TCP Keep-Alive): ``config set tcp-keepalive 300`` and a new telnet client shows
``keepalive (297.74/0/0)`` on the server's row; with tcp-keepalive 10 the capture shows a
keep-alive probe and its ACK every 10 s. STEP 3.3.1 lists the sysctls (7200 / 75 / 9).

What differs: Redis's ``anetKeepAlive`` also sets TCP_KEEPINTVL = interval/3 and TCP_KEEPCNT = 3;
that only matters once a probe goes unanswered (see zombie-connection). The telnet client is a
plain tcpdive socket that sets no keepalive, so its row stays ``off``, as in the article.
"""

from __future__ import annotations

import asyncio

from ..apps.redis import Redis, RedisServer
from . import Options, Result, scenario
from ._common import Recorder, add_ladder, apply_sysctls, finish, make_world, plot, snapshot


@scenario("tcp-keepalive", "Redis tcp-keepalive 0 / 300 / 10: timer column and probes every 10 s",
          "STEP 3.3 (Redis tcp-keepalive, netstat timer column, probes on the wire), STEP 3.3.1")
def run(opts: Options) -> Result:
    res = Result("tcp-keepalive", "TCP keepalive with Redis", __doc__ or "")
    w = make_world(opts)
    client = w.host("client", "10.0.0.1")
    server = w.host("redis", "10.0.0.2")
    rec = Recorder(w, max_packets=200)
    rec.link(client, server, delay=0.00005)
    rec.watch(client, server)
    apply_sysctls(opts, client, server)
    srv = RedisServer(6379, tcp_keepalive=0)
    server.run(srv.start())
    res.section("server$ sysctl -a | grep keepalive", [
        f"net.ipv4.tcp_keepalive_intvl = {server.sysctl.get('net.ipv4.tcp_keepalive_intvl')}",
        f"net.ipv4.tcp_keepalive_probes = {server.sysctl.get('net.ipv4.tcp_keepalive_probes')}",
        f"net.ipv4.tcp_keepalive_time = {server.sysctl.get('net.ipv4.tcp_keepalive_time')}"])
    rows = {}
    admin = Redis("10.0.0.2", 6379)
    conns = []

    async def telnet():
        r, wr = await asyncio.open_connection("10.0.0.2", 6379)
        conns.append(wr)
        await asyncio.sleep(2.5)

    for val in (0, 300, 10):
        got = client.run(admin.config_set("tcp-keepalive", val))
        cfg = client.run(admin.config_get("tcp-keepalive"))
        res.section(f"127.0.0.1:6379> config set tcp-keepalive {val}; config get tcp-keepalive",
                    [got, f'1) "{cfg[0].decode()}"', f'2) "{cfg[1].decode()}"'])
        mark = len(rec.arrows)
        client.run(telnet())
        port = conns[-1].get_extra_info("sockname")[1]
        lines = snapshot(res, f"tcp-keepalive {val}, a telnet client 2.5 s after connecting", server,
                         f":{port}")
        rows[val] = next((ln for ln in lines if "10.0.0.2:6379" in ln.split()[3]), "")
        if val == 10:
            t_conn = rec.arrows[mark]["t0"]
    # watch 60 s of the tcp-keepalive 10 connection
    w.run_for(60.0)
    port10 = conns[-1].get_extra_info("sockname")[1]
    probes, acks = [], []
    for a in rec.arrows:
        if a["len"] != 0 or a["flags"] != ".":
            continue
        if a["src"] == "redis" and a["ep"].endswith(f":{port10}"):
            probes.append(a["t0"])
        if a["src"] == "client" and f":{port10} >" in a["ep"] and a["t0"] > t_conn + 1:
            acks.append(a["t0"])
    probes = [t for t in probes if t > t_conn + 1]
    snapshot(res, "tcp-keepalive 10, 60 s later", server, f":{port10}")
    gaps = [round(b - a, 3) for a, b in zip(probes, probes[1:], strict=False)]
    res.section("Keepalive probes of the tcp-keepalive 10 connection (server -> client)",
                [f"probe at t={t:.3f} s" for t in probes] + [f"gaps: {gaps}"])
    add_ladder(res, rec, "tcp-keepalive 10: a probe (seq = snd_una - 1, no data) and its ACK every 10 s",
               select=lambda a: a["ep"].endswith(f":{port10}") or f":{port10} >" in a["ep"], limit=24)
    plot(res, "Keepalive probes (tcp-keepalive 10)", "virtual seconds", "probe #",
         [("probes sent by the server", [(t, i + 1) for i, t in enumerate(probes)]),
          ("ACKs from the client", [(t, i + 1) for i, t in enumerate(acks)])], kind="points")
    res.check("tcp-keepalive 0: the server's row shows no timer: off (0.00/0/0)", "off (0.00/0/0)" in rows[0], rows[0])
    res.check("tcp-keepalive 300: keepalive (297.xx/0/0), counting down from 300 s",
              "keepalive (297." in rows[300], rows[300])
    res.check("tcp-keepalive 10: keepalive (7.xx/0/0)", "keepalive (7." in rows[10], rows[10])
    res.check("a probe goes out every 10 s and each is answered", len(probes) >= 5
              and all(abs(g - 10.0) < 0.01 for g in gaps) and len(acks) >= len(probes),
              f"{len(probes)} probes, {len(acks)} ACKs, gaps {gaps}; TcpExtTCPKeepAlive="
              f"{server.mib['TcpExtTCPKeepAlive']}")
    srv.close()
    finish(w)
    return res
