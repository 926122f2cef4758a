"""Scenario 4 — connection-pool: 10,001 SETEX commands, a connection each vs a pool.

Article: STEP 3.1.1, the two redis-py scripts (``redis.Redis(...)`` per command vs
``redis.Redis(connection_pool=pool)``) against Redis in Docker, and the two ``netstat -napo |
grep 6379`` listings: a screenful of TIME_WAIT vs one ESTABLISHED pair with a keepalive timer.

What differs: client and server are two simulated hosts 0.1 ms apart instead of loopback and a
Docker bridge, so every TIME_WAIT here is the client's (the active closer) and none is doubled by
docker-proxy. Redis's tcp-keepalive 300 gives the server's row its keepalive timer, as in the
article's pool listing. Times are virtual: the handshake cost shows as round trips, not CPU.
"""

from __future__ import annotations

import os

from ..apps.redis import ConnectionPool, Redis, RedisServer
from . import Options, Result, scenario
from ._common import (
    Recorder,
    add_ladder,
    apply_sysctls,
    count_state,
    finish,
    make_world,
    plot,
    sampler,
    snapshot,
)

COMMANDS = 10_001


def _commands() -> int:
    """The article's 10,001; ``TCPDIVE_POOL_COMMANDS`` may shrink it (the report's own test)."""
    return int(os.environ.get("TCPDIVE_POOL_COMMANDS", COMMANDS))


@scenario("connection-pool", "10,001 SETEX: a connection per command vs a connection pool",
          "STEP 3.1.1 (Connection Less vs Connection Pool with redis-py, netstat | grep 6379)")
def run(opts: Options) -> Result:
    res = Result("connection-pool", "Connection per command vs connection pool", __doc__ or "")
    n_cmd = _commands()
    out = {}
    for mode in ("connection-less", "connection-pool"):
        w = make_world(opts)
        client = w.host("client", "172.17.0.1")
        server = w.host("redis", "172.17.0.2")
        rec = Recorder(w, max_packets=40)
        rec.link(client, server, delay=0.0001)
        rec.watch(client, server, states=False)
        apply_sysctls(opts, client, server)
        srv = RedisServer(6379, tcp_keepalive=300)
        server.run(srv.start())
        tw_series: list[tuple[float, float]] = []
        sampler(w, 1.0 if mode == "connection-less" else 0.2,
                lambda c=client: c.tw_count if hasattr(c, "tw_count") else count_state(c, "TIME_WAIT"),
                tw_series)
        pool = ConnectionPool("172.17.0.2", 6379) if mode == "connection-pool" else None

        async def script(pool=pool):
            ok = 0
            for count in range(n_cmd):
                r = Redis(connection_pool=pool) if pool else Redis("172.17.0.2", 6379)
                if await r.setex(count, 10, count) == "OK":
                    ok += 1
                if pool is None:
                    await r.close()          # the dropped Redis object closes its connection
            return ok

        t0 = w.now()
        ok = client.run(script())
        dt = w.now() - t0
        w.run_for(0.05)
        lines = snapshot(res, f"{mode}, right after {n_cmd} SETEX", client, "6379")
        srv_lines = snapshot(res, f"{mode}, server side", server, "6379")
        tw = sum(" TIME_WAIT " in ln for ln in lines)
        est = sum(" ESTABLISHED " in ln for ln in lines)
        w.run_for(61.0)
        tw_after = count_state(client, "TIME_WAIT")
        out[mode] = dict(ok=ok, dt=dt, tw=tw, est=est, tw_after=tw_after,
                         syn=client.mib["TcpActiveOpens"], packets=rec.packet_count,
                         srv_lines=srv_lines, accepted=srv.accepted)
        # keep the listing readable: the article shows the head of it too
        res.sections[-2] = (res.sections[-2][0], lines[:22] + ([f"... ({len(lines) - 22} more lines)"]
                                                                if len(lines) > 22 else []))
        add_ladder(res, rec, f"{mode}: the first commands")
        plot_series = [(mode, tw_series)]
        out[mode]["series"] = plot_series
        srv.close()
        finish(w)
    a, b = out["connection-less"], out["connection-pool"]
    res.section("Side by side", [
        f"{'':18} {'connection-less':>16} {'connection-pool':>16}",
        f"{'SETEX OK':18} {a['ok']:>16} {b['ok']:>16}",
        f"{'connections':18} {a['syn']:>16} {b['syn']:>16}",
        f"{'TIME_WAIT (end)':18} {a['tw']:>16} {b['tw']:>16}",
        f"{'ESTABLISHED':18} {a['est']:>16} {b['est']:>16}",
        f"{'packets':18} {a['packets']:>16} {b['packets']:>16}",
        f"{'virtual time (s)':18} {a['dt']:>16.3f} {b['dt']:>16.3f}",
    ])
    plot(res, "Client TIME_WAIT sockets over time", "virtual seconds", "TIME_WAIT sockets",
         a["series"] + b["series"])
    res.check(f"both scripts complete all {n_cmd} SETEX", a["ok"] == b["ok"] == n_cmd,
              f"{a['ok']} / {b['ok']}")
    res.check("connection-less: one connection per command, one TIME_WAIT per command on the client",
              a["syn"] == n_cmd and a["tw"] >= n_cmd - 1,
              f"{a['syn']} connects, {a['tw']} TIME_WAIT rows")
    res.check("pool: one connection, ESTABLISHED, no TIME_WAIT",
              b["syn"] == 1 and b["tw"] == 0 and b["est"] == 1, f"{b['syn']} connect, {b['est']} ESTABLISHED")
    res.check("the server's pooled connection shows Redis's keepalive timer",
              any("ESTABLISHED" in ln and "keepalive (" in ln for ln in b["srv_lines"]),
              next((ln for ln in b["srv_lines"] if "ESTABLISHED" in ln), "(none)"))
    res.check("the pool is faster: fewer round trips for the same commands",
              b["dt"] < 0.6 * a["dt"], f"{a['dt']:.3f} s vs {b['dt']:.3f} s virtual")
    res.check("TIME_WAIT drains 60 s later (TCP_TIMEWAIT_LEN)", a["tw_after"] == 0, f"{a['tw_after']} left")
    return res
