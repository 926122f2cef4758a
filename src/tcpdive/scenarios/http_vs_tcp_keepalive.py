"""Scenario 9 — http-vs-tcp-keepalive: HTTP persistent-connection timeout vs TCP keepalive.

Article: STEP 3.3.3. Case 1: HTTP keep-alive timeout 60 s, TCP keepalive 30 s: a TCP probe (and
its ACK) at 30 s, then at 60 s the server closes the idle connection. Case 2: HTTP 30 s, TCP
60 s: at 30 s the server closes; the TCP keepalive never fires. Conclusion: the HTTP timeout
decides; the two need not be aligned.

What differs: TCP keepalive is enabled by the server (nginx ``listen ... so_keepalive=30s:10s:3``)
so the probes come from the server, as in the article's figures.
"""

from __future__ import annotations

import asyncio

from ..apps.http import HttpClient, HttpServer
from . import Options, Result, scenario
from ._common import Recorder, add_ladder, apply_sysctls, finish, make_world


@scenario("http-vs-tcp-keepalive", "HTTP keep-alive timeout 60 s vs TCP keepalive 30 s, and the reverse",
          "STEP 3.3.3 (HTTP persistent connection vs TCP Keep-Alive: who closes, and when)")
def run(opts: Options) -> Result:
    res = Result("http-vs-tcp-keepalive", "HTTP keep-alive vs TCP keepalive", __doc__ or "")
    out = {}
    for http_to, tcp_ka in ((60, 30), (30, 60)):
        w = make_world(opts)
        client = w.host("client", "192.168.106.1")
        server = w.host("nginx", "192.168.106.3")
        rec = Recorder(w, max_packets=60)
        rec.link(client, server, delay=0.0005)
        rec.watch(client, server)
        apply_sysctls(opts, client, server)
        http = HttpServer(80, keepalive_timeout=http_to, so_keepalive=(tcp_ka, 10, 3))
        server.run(http.start())
        hc = HttpClient("192.168.106.3", 80)

        async def browse(hc=hc):
            await hc.get("/")
            t_last = asyncio.get_running_loop().time()
            await hc.wait_closed_by_peer()
            return t_last
        t_last = client.run(browse())
        w.run_for(1.0)
        fin = next((a["t0"] - t_last for a in rec.arrows if a["src"] == "nginx" and "F" in a["flags"]), None)
        probes = [a["t0"] - t_last for a in rec.arrows
                  if a["src"] == "nginx" and a["flags"] == "." and a["len"] == 0 and a["t0"] > t_last + 1
                  and (fin is None or a["t0"] - t_last < fin - 0.01)]
        first_fin = next((a["src"] for a in rec.arrows if "F" in a["flags"]), None)
        out[(http_to, tcp_ka)] = dict(probes=probes, fin=fin, first=first_fin)
        res.section(f"HTTP keepalive_timeout {http_to} s, TCP keepalive {tcp_ka} s", [
            f"TCP keepalive probes from the server at +{', +'.join(f'{p:.1f}' for p in probes) or ' (none)'} s",
            f"server FIN at +{fin:.1f} s after the last response" if fin is not None else "no FIN",
            f"first FIN sent by: {first_fin}"])
        add_ladder(res, rec, f"HTTP {http_to} s vs TCP keepalive {tcp_ka} s")
        http.close()
        finish(w)
    a, b = out[(60, 30)], out[(30, 60)]
    res.check("HTTP 60 / TCP 30: one keepalive probe at ~30 s", len(a["probes"]) == 1 and abs(a["probes"][0] - 30) < 0.5,
              f"probes at {[round(p, 3) for p in a['probes']]}")
    res.check("HTTP 60 / TCP 30: the server closes at ~60 s (active closer)",
              a["fin"] is not None and abs(a["fin"] - 60) < 0.5 and a["first"] == "nginx", f"FIN at {a['fin']}")
    res.check("HTTP 30 / TCP 60: the server closes at ~30 s, no probe ever sent",
              b["fin"] is not None and abs(b["fin"] - 30) < 0.5 and not b["probes"], f"FIN at {b['fin']}, probes {b['probes']}")
    return res
