"""Scenario 3 — client-port-exhaustion: one local port, TIME_WAIT holds it, tcp_tw_reuse frees it.

Article: STEP 3.1.1 (client side). The article narrows ``ip_local_port_range`` to
"32768 32768", runs curl twice and gets ``curl: (7) Couldn't connect to server`` while the first
connection's port sits in TIME_WAIT; with ``net.ipv4.tcp_tw_reuse=1`` repeated curls succeed.

What differs: the article's Ubuntu 22.04 (5.15) already had tcp_tw_reuse=2 by default, as Linux
6.x does; 2 means "reuse for loopback only", so toward a remote server the second connect still
fails, with EADDRNOTAVAIL from ``inet_hash_connect``. Reuse (``tcp_twsk_unique``) needs
timestamps and a TIME_WAIT at least 1 s old (``tcp_tw_reuse_delay``, 1000 ms in 6.x), so the
curls here are 2 s apart, as typed by a person.
"""

from __future__ import annotations

import errno

from ..apps.http import HttpServer, curl
from . import Options, Result, scenario
from ._common import (
    Recorder,
    add_ladder,
    add_timelines,
    apply_sysctls,
    finish,
    make_world,
    snapshot,
)


@scenario("client-port-exhaustion", "TIME_WAIT exhausts a one-port ip_local_port_range; tcp_tw_reuse=1",
          "STEP 3.1.1 (client side: curl, ip_local_port_range=32768 32768, tcp_tw_reuse)")
def run(opts: Options) -> Result:
    res = Result("client-port-exhaustion", "Client port exhaustion by TIME_WAIT", __doc__ or "")
    w = make_world(opts)
    client = w.host("client", "192.168.106.3")
    server = w.host("google", "142.250.207.99")
    rec = Recorder(w)
    rec.link(client, server, delay=0.015)
    rec.watch(client, server)
    apply_sysctls(opts, client, server)
    client.sysctl.set("net.ipv4.ip_local_port_range", "32768 32768")
    res.section("client$ sysctl", [f"net.ipv4.ip_local_port_range = {client.sysctl.get('net.ipv4.ip_local_port_range')}",
                                   f"net.ipv4.tcp_tw_reuse = {client.sysctl.get('net.ipv4.tcp_tw_reuse')}"])
    http = HttpServer(port=443, keepalive_timeout=65)
    server.run(http.start())

    async def one():
        try:
            st, body, name = await curl("142.250.207.99", 443)
            return f"{st} ({len(body)} bytes) from local port {name[1]}", None
        except OSError as e:
            return f"curl: (7) Couldn't connect to server [{errno.errorcode.get(e.errno, e.errno)}]", e

    out1, err1 = client.run(one())
    w.run_for(1.0)
    tw = snapshot(res, "after the first curl", client, "TIME_WAIT")
    out2, err2 = client.run(one())
    res.section("curl with tcp_tw_reuse default (2: loopback only)", [out1, out2])
    add_ladder(res, rec, "First curl, then the second one failing without a single packet")
    client.sysctl.set("net.ipv4.tcp_tw_reuse", "1")
    outs = []
    errs = []
    for _ in range(3):
        w.run_for(2.0)
        o, e = client.run(one())
        outs.append(o)
        errs.append(e)
    res.section("client$ sysctl -w net.ipv4.tcp_tw_reuse=1; curl x3 (2 s apart)", outs)
    w.run_for(0.5)
    snapshot(res, "after the reuse curls", client, "32768")
    add_timelines(res, rec)
    res.section("Packets (tcpdump -n)", rec.lines[:80])
    twe = client.mib.get("TcpExtTWRecycled", 0) if hasattr(client.mib, "get") else 0
    res.check("the first curl succeeds from port 32768", err1 is None and "32768" in out1, out1)
    res.check("its port sits in TIME_WAIT on the client (curl closed first)",
              any("192.168.106.3:32768" in ln and "TIME_WAIT" in ln for ln in tw),
              next((ln for ln in tw if "TIME_WAIT" in ln), "(none)"))
    res.check("the second curl fails: Couldn't connect, EADDRNOTAVAIL",
              err2 is not None and err2.errno == errno.EADDRNOTAVAIL, out2)
    res.check("with tcp_tw_reuse=1 three more curls succeed on the same port",
              all(e is None for e in errs) and all("32768" in o for o in outs),
              "; ".join(outs) + f"; TcpExtTWRecycled={twe}")
    finish(w)
    return res
