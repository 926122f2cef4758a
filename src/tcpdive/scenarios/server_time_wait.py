"""Scenario 5 — server-time-wait: nginx keepalive_timeout 0 makes the server the active closer.

Article: STEP 3.1.2 (server side): with ``keepalive_timeout 0;`` every ``curl`` leaves a
TIME_WAIT row on the server (192.168.106.3:80); with ``keepalive_timeout 30`` there are none
until the persistent connection's timeout expires and the server closes it.

What differs: nginx is the small HTTP/1.1 server of ``tcpdive.apps.http``; the persistent
clients are browser-like (they keep the connection and wait), since curl itself closes at exit.
"""

from __future__ import annotations

import asyncio

from ..apps.http import HttpClient, HttpServer, curl
from . import Options, Result, scenario
from ._common import (
    Recorder,
    add_ladder,
    add_timelines,
    apply_sysctls,
    count_state,
    finish,
    make_world,
    plot,
    sampler,
    snapshot,
)


@scenario("server-time-wait", "nginx keepalive_timeout 0 vs 30: TIME_WAIT on the server",
          "STEP 3.1.2 (server side: nginx keepalive_timeout 0, netstat | grep :80)")
def run(opts: Options) -> Result:
    res = Result("server-time-wait", "TIME_WAIT on the server", __doc__ or "")
    found = {}
    series = []
    for kat in (0, 30):
        w = make_world(opts)
        client = w.host("client", "192.168.106.1")
        server = w.host("server", "192.168.106.3")
        rec = Recorder(w, max_packets=60)
        rec.link(client, server, delay=0.0005)
        rec.watch(client, server)
        apply_sysctls(opts, client, server)
        http = HttpServer(80, keepalive_timeout=kat)
        server.run(http.start())
        tw: list[tuple[float, float]] = []
        sampler(w, 0.5, lambda s=server: count_state(s, "TIME_WAIT"), tw)
        if kat == 0:
            async def runs():
                for _ in range(7):
                    await curl("192.168.106.3", 80)
                    await asyncio.sleep(0.3)
            client.run(runs())
            w.run_for(1.0)
            lines = snapshot(res, "keepalive_timeout 0, after 7 curls", server, ":80")
            found[kat] = dict(server_tw=sum("TIME_WAIT" in ln for ln in lines),
                              client_tw=count_state(client, "TIME_WAIT"), lines=lines)
            add_ladder(res, rec, "keepalive_timeout 0: the server sends the first FIN", limit=11)
        else:
            clients = [HttpClient("192.168.106.3", 80) for _ in range(3)]

            async def browse(clients=clients):
                for c in clients:
                    await c.get("/")
                await asyncio.sleep(10)
                r = [await c.get("/index.html") for c in clients]
                for c in clients:          # a browser closes its side when the server's FIN comes
                    asyncio.get_running_loop().create_task(c.wait_closed_by_peer())
                await asyncio.sleep(10)
                return r
            client.run(browse())
            lines = snapshot(res, "keepalive_timeout 30, 10 s after the last request", server, ":80")
            before = sum("TIME_WAIT" in ln for ln in lines)
            w.run_for(21.0)
            after_lines = snapshot(res, "keepalive_timeout 30, after the timeout", server, ":80")
            found[kat] = dict(server_tw=before, after=sum("TIME_WAIT" in ln for ln in after_lines),
                              timeouts=http.closed_by_timeout,
                              est=sum("ESTABLISHED" in ln for ln in lines))
            add_ladder(res, rec, "keepalive_timeout 30: requests share a connection; the server "
                       "closes after 30 s idle", limit=24)
            add_timelines(res, rec, limit=8)
        series.append((f"keepalive_timeout {kat}", tw))
        http.close()
        finish(w)
    plot(res, "TIME_WAIT sockets on the server", "virtual seconds", "TIME_WAIT", series)
    z, t = found[0], found[30]
    res.check("keepalive_timeout 0: each curl leaves TIME_WAIT on the server (7 rows)",
              z["server_tw"] == 7, next((ln for ln in z["lines"] if "TIME_WAIT" in ln), ""))
    res.check("keepalive_timeout 0: the client (passive closer) keeps no TIME_WAIT", z["client_tw"] == 0,
              f"{z['client_tw']} on the client")
    res.check("keepalive_timeout 30: connections stay ESTABLISHED, no TIME_WAIT before the timeout",
              t["server_tw"] == 0 and t["est"] == 3, f"{t['est']} ESTABLISHED, {t['server_tw']} TIME_WAIT")
    res.check("after 30 s idle the server closes them and holds TIME_WAIT", t["after"] == 3 and t["timeouts"] == 3,
              f"{t['after']} TIME_WAIT after {t['timeouts']} keepalive timeouts")
    return res
