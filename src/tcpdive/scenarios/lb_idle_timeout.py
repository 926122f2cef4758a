"""Scenario 10 — load-balancer-idle-timeout: a session table forgets idle flows; keepalive fixes it.

Article: STEP 3.3.4 ("load balancer and TCP Keep-Alive"): clients reach MQ servers through
a load balancer with a session table, DSR replies and a 120 s idle timeout. After an idle
period the client's next packet is an unknown flow to the LB, goes round-robin to another
backend, which answers RST; the client gives up on that connection and opens a new one, while
the first backend keeps its side ESTABLISHED forever: zombies pile up. TCP keepalive under the
idle timeout keeps the session alive.

What differs: the RST reaches the client here (in the article's incident the client saw a
timeout); the reconnecting client is the same small app. Keepalive is set on the backends
(60 s), whose probes go straight to the client; the client's ACKs pass through the LB and
refresh the session.
"""

from __future__ import annotations

import asyncio

from ..sim.middlebox import LoadBalancer
from ..socket import IPPROTO_TCP, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPIDLE, TCP_KEEPINTVL
from . import Options, Result, scenario
from ._common import (
    Recorder,
    add_ladder,
    apply_sysctls,
    count_state,
    finish,
    make_world,
    plot,
    snapshot,
)

VIP = "10.10.10.100"


def _world(opts: Options, keepalive: bool):
    w = make_world(opts)
    client = w.host("client", "10.0.1.1")
    lb = w.host("lb", "10.0.0.254")
    mq1 = w.host("mq1", "10.10.10.11")
    mq2 = w.host("mq2", "10.10.10.12")
    rec = Recorder(w, max_packets=120)
    rec.link(client, lb, delay=0.001)
    rec.link(lb, mq1, delay=0.001)
    rec.link(lb, mq2, delay=0.001)
    rec.link(mq1, client, delay=0.001)       # DSR: replies go straight back
    rec.link(mq2, client, delay=0.001)
    for mq in (mq1, mq2):
        mq.add_addr("lo", VIP, 32)           # the backends own the VIP (IPVS -g / DSR)
    rec.watch(client, lb, mq1, mq2)
    rec.addr_host[__import__("tcpdive.packet.ipv4", fromlist=["ip2int"]).ip2int(VIP)] = "lb"
    apply_sysctls(opts, client, lb, mq1, mq2)
    balancer = LoadBalancer(lb, VIP, 5672, {"mq1": "eth1", "mq2": "eth2"}, idle_timeout=120.0)

    async def serve(reader, writer):
        if keepalive:
            s = writer.get_extra_info("socket")
            s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
            s.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, 60)
            s.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, 10)
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(b"ack " + line)
        writer.close()

    for mq in (mq1, mq2):
        mq.run(asyncio.start_server(serve, "0.0.0.0", 5672))
    return w, client, lb, mq1, mq2, rec, balancer


@scenario("load-balancer-idle-timeout", "LB session table idle timeout 120 s: RST, reconnects, zombies; keepalive fixes it",
          "STEP 3.3.4 (load balancer with DSR, session table idle timeout, zombie connections, TCP keepalive)")
def run(opts: Options) -> Result:
    res = Result("load-balancer-idle-timeout", "Load balancer idle timeout", __doc__ or "")
    out = {}
    for keepalive in (False, True):
        w, client, lb, mq1, mq2, rec, bal = _world(opts, keepalive)
        log: list[str] = []
        resets = []

        async def app(log=log, resets=resets):
            reader, writer = await asyncio.open_connection(VIP, 5672)
            for i in range(4):
                try:
                    writer.write(b"msg %d\n" % i)
                    reply = await asyncio.wait_for(reader.readline(), 5.0)
                    if not reply:
                        raise ConnectionResetError("EOF")
                    log.append(f"t={asyncio.get_running_loop().time():8.3f}  {reply.decode().strip()} via "
                               f"{writer.get_extra_info('sockname')}")
                except (TimeoutError, ConnectionError, OSError) as e:
                    resets.append(asyncio.get_running_loop().time())
                    log.append(f"t={asyncio.get_running_loop().time():8.3f}  request failed: {e!r}; reconnecting")
                    writer.close()
                    reader, writer = await asyncio.open_connection(VIP, 5672)
                    writer.write(b"msg %d (retry)\n" % i)
                    reply = await reader.readline()
                    log.append(f"t={asyncio.get_running_loop().time():8.3f}  {reply.decode().strip()} via "
                               f"{writer.get_extra_info('sockname')}")
                await asyncio.sleep(150.0)          # idle longer than the LB's 120 s
            writer.close()
        est: list[tuple[float, float]] = []

        def zombies(mq1=mq1, mq2=mq2):
            return count_state(mq1, "ESTABLISHED") + count_state(mq2, "ESTABLISHED")
        from ._common import sampler
        sampler(w, 5.0, zombies, est)
        client.run(app())
        w.run_for(1.0)
        tag = "with keepalive 60 s" if keepalive else "no keepalive"
        res.section(f"Client log ({tag})", log)
        res.section(f"LB events ({tag})", [f"t={t:8.3f}  {m}" for t, m in bal.events])
        z1 = snapshot(res, f"{tag}: backend mq1 after the client finished", mq1, ":5672")
        z2 = snapshot(res, f"{tag}: backend mq2", mq2, ":5672")
        rst = [a for a in rec.arrows if "R" in a["flags"]]
        out[keepalive] = dict(resets=len(resets), zombies=sum("ESTABLISHED" in ln for ln in z1 + z2),
                              rst=len(rst), rst_from=sorted({a["src"] for a in rst}),
                              backends=sorted({m.split(" -> ")[1] for _, m in bal.events if m.startswith("new")}))
        add_ladder(res, rec, f"{tag}: client, LB, two backends (DSR)",
                   hosts=["client", "lb", "mq1", "mq2"], limit=40)
        plot(res, f"ESTABLISHED sockets on the backends ({tag})", "virtual seconds", "sockets", [("backends", est)],
             kind="step")
        finish(w)
    n, k = out[False], out[True]
    res.check("after 150 s idle the LB forgets the flow and sends it to the other backend, which answers RST",
              n["rst"] >= 1 and n["rst_from"] and n["rst_from"][0].startswith("mq") and n["resets"] >= 1,
              f"{n['rst']} RST from {n['rst_from']}, {n['resets']} failed requests; backends used {n['backends']}")
    res.check("the client reconnects; the old server sides stay ESTABLISHED: zombies pile up",
              n["zombies"] >= 2, f"{n['zombies']} ESTABLISHED rows left on the backends")
    res.check("with TCP keepalive 60 s (< 120 s idle timeout) no RST, no reconnect, no zombie",
              k["rst"] == 0 and k["resets"] == 0 and k["zombies"] == 0,
              f"{k['rst']} RST, {k['resets']} failures, {k['zombies']} zombies")
    return res
