"""Scenario 8 — zombie-connection: a MySQL client idle between queries; clean vs silent shutdown.

Article: STEP 3.3.2. A pymysql script queries, then sleeps 600 s. ``docker stop mysql`` (clean):
the client goes CLOSE_WAIT, the server FIN_WAIT2. With ``iptables -A OUTPUT -p tcp -d 127.0.0.1 -j
DROP`` before the stop, the client stays ESTABLISHED with its keepalive timer; with
tcp_keepalive_time 10 / intvl 10 / probes 5 the probe counter rises (``keepalive (9.65/0/4)``)
until the kernel kills the connection; the server's FIN_WAIT1 keeps retrying its FIN.

What differs: client and server are two hosts; the firewall drops every TCP packet on the
client's host (INPUT and OUTPUT), which is what the article's OUTPUT rule on loopback does.
"""

from __future__ import annotations

from ..apps.mysql import MySqlClient, MySqlServer
from ..sim.middlebox import Firewall
from . import Options, Result, scenario
from ._common import (
    Recorder,
    add_ladder,
    add_timelines,
    apply_sysctls,
    finish,
    make_world,
    plot,
    snapshot,
)


@scenario("zombie-connection", "MySQL client idle: clean shutdown vs a firewall that drops everything",
          "STEP 3.3.2 (zombie connections: CLOSE_WAIT/FIN_WAIT2, iptables DROP, keepalive 10/10/5)")
def run(opts: Options) -> Result:
    res = Result("zombie-connection", "Zombie connections and keepalive", __doc__ or "")
    out = {}
    for case in ("clean", "dropped"):
        w = make_world(opts)
        client = w.host("app", "172.17.0.1")
        server = w.host("mysql", "172.17.0.2")
        rec = Recorder(w, max_packets=80)
        rec.link(client, server, delay=0.0001)
        rec.watch(client, server)
        apply_sysctls(opts, client, server)
        if case == "dropped":
            for h in (client, server):
                h.sysctl.set("net.ipv4.tcp_keepalive_time", "10")
                h.sysctl.set("net.ipv4.tcp_keepalive_intvl", "10")
                h.sysctl.set("net.ipv4.tcp_keepalive_probes", "5")
        db = MySqlServer(3306)
        server.run(db.start())
        cli = MySqlClient("172.17.0.2", 3306, interval=600)
        client.spawn(cli.run())
        w.run_for(1.0)
        snapshot(res, f"{case}: the script is running", client, ":3306")
        if case == "clean":
            db.shutdown()                           # docker stop mysql
            w.run_for(1.0)
            cl = snapshot(res, "clean: after docker stop mysql (client)", client, ":3306")
            sl = snapshot(res, "clean: after docker stop mysql (server)", server, ":3306")
            out[case] = dict(cl=cl, sl=sl)
            add_ladder(res, rec, "clean shutdown: FIN from the server, the idle client never closes")
        else:
            fw = Firewall(client)
            fw.drop("OUTPUT", proto="tcp", dst="172.17.0.2")
            fw.drop("INPUT", proto="tcp", src="172.17.0.2")
            res.section("app$ iptables -S", fw.listing())
            db.shutdown()
            probes: list[tuple[float, float]] = []
            snaps = []
            t0 = w.now()
            for _ in range(70):
                w.run_for(1.0)
                sk = cli.sock.sk
                probes.append((w.now() - t0, sk.icsk_probes_out))
                if w.now() - t0 in (25.0, 45.0):
                    pass
                if int(w.now() - t0) in (15, 45):
                    snaps.append(snapshot(res, f"dropped: {int(w.now() - t0)} s after the stop", client, ":3306"))
                    snapshot(res, "dropped: the server side", server, ":3306")
            end = snapshot(res, "dropped: after keepalive gave up", client, ":3306")
            res.section("app$ iptables -S (counters)", fw.listing())
            out[case] = dict(snaps=snaps, end=end, err=cli.error, probes=probes,
                             ka=client.mib["TcpExtTCPKeepAlive"], tmo=client.mib["TcpExtTCPAbortOnTimeout"])
            plot(res, "Client keepalive probes out (netstat's third timer number)", "seconds after the stop",
                 "icsk_probes_out", [("probes", probes)], kind="step")
            add_ladder(res, rec, "dropped: probes leave the client and die at the firewall",
                       select=lambda a: a["src"] == "app" or a["t0"] < 1.5, limit=30)
            add_timelines(res, rec, limit=4, title="dropped case")
        db.shutdown()
        finish(w)
    c, d = out["clean"], out["dropped"]
    cw = next((ln for ln in c["cl"] if "CLOSE_WAIT" in ln), "")
    fw2 = next((ln for ln in c["sl"] if "FIN_WAIT2" in ln), "")
    res.check("clean shutdown: the idle client sits in CLOSE_WAIT", bool(cw), cw or "(none)")
    res.check("clean shutdown: the server sits in FIN_WAIT2", bool(fw2), fw2 or "(none)")
    s15 = next((ln for ln in d["snaps"][0] if "ESTABLISHED" in ln), "") if d["snaps"] else ""
    s45 = next((ln for ln in d["snaps"][1] if "ESTABLISHED" in ln), "") if len(d["snaps"]) > 1 else ""
    res.check("dropped: the client is still ESTABLISHED, its keepalive timer counting probes",
              "ESTABLISHED" in s15 and "keepalive (" in s15, s15)
    res.check("dropped: the probe counter rises (as keepalive (9.65/0/4) in the article)",
              s45.endswith("/4)") or s45.endswith("/3)") or s45.endswith("/5)"), s45)
    res.check("dropped: after 5 unanswered probes the kernel kills it (ETIMEDOUT), no row left",
              not any(":3306" in ln for ln in d["end"][2:]) and d["tmo"] >= 1,
              f"TcpExtTCPKeepAlive={d['ka']} TcpExtTCPAbortOnTimeout={d['tmo']}, client error: {d['err']!r}")
    return res
