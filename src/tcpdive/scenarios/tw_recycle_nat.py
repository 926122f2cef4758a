"""Scenario 6 — tw-recycle-nat: pre-4.12 tcp_tw_recycle drops SYNs of a second client behind NAT.

Article: STEP 3.1.2 (note on ``net.ipv4.tcp_tw_recycle``, figure 14): with recycle on, the
server remembers the last timestamp of each peer *address* when its TIME_WAIT sockets die; C1
and C2 behind one NAT look like one peer, and when C2's timestamps are behind C1's, the server
silently drops C2's SYNs; C2 retransmits them and times out.

What differs: tcp_tw_recycle was removed in Linux 4.12 (commit 4396e46187ca) and tcpdive models
6.x, so ``net.ipv4.tcp_tw_recycle`` is an explicit *emulation* knob of the 4.11 behaviour in the
core (tcp/metrics.py, ``tcp_time_wait``, ``tcp_conn_request``): the server caches each peer
address's last TSval when its connection enters TIME_WAIT (``tcp_remember_stamp``), that
TIME_WAIT lasts 3.5 * RTO instead of 60 s, and a SYN from the address whose TSval is more than
TCP_PAWS_WINDOW behind the cached one within TCP_PAWS_MSL = 60 s is dropped
(``tcp_peer_is_proven``), counted as TcpExtPAWSPassive — the pre-4.12 name; Linux 6.18 has no
such counter. Since 4.10 Linux randomizes timestamps per connection (``secure_tcp_ts_off``),
which is exactly what makes C2 look "behind" here; the client whose offset is larger plays C1.
"""

from __future__ import annotations

import struct

from ..apps.http import HttpServer, curl
from ..packet.ipv4 import ip2int
from ..sim.middlebox import Nat
from ..tcp.ipv4 import secure_tcp_ts_off
from ..tcp.sock import TCP_PAWS_MSL, TCP_PAWS_WINDOW, TCP_TIME_WAIT
from . import Options, Result, scenario
from ._common import Recorder, add_ladder, apply_sysctls, finish, make_world, snapshot


def _syn_tsval(data: bytes) -> int | None:
    """TSval of a pure SYN (None for anything else)."""
    off = (data[0] & 15) * 4
    if data[9] != 6 or data[off + 13] & 0x12 != 0x02:
        return None
    doff = (data[off + 12] >> 4) * 4
    i = off + 20
    while i < off + doff:
        kind = data[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if kind == 8:
            return struct.unpack_from("!I", data, i + 2)[0]
        i += data[i + 1]
    return None


@scenario("tw-recycle-nat", "tcp_tw_recycle (emulated, pre-4.12) drops a second NATed client's SYNs",
          "STEP 3.1.2 (tcp_tw_recycle and NAT, figure 14; removed in Linux 4.12)")
def run(opts: Options) -> Result:
    res = Result("tw-recycle-nat", "tcp_tw_recycle behind NAT", __doc__ or "")
    out = {}
    for recycle in (True, False):
        w = make_world(opts)
        server = w.host("server", "203.0.113.10")
        nat = w.host("nat", "198.51.100.1")
        hosts = [w.host("c1", "172.16.0.11"), w.host("c2", "172.16.0.12")]
        rec = Recorder(w, max_packets=80)
        rec.link(nat, server, delay=0.002, a_addr="198.51.100.1", b_addr="203.0.113.10")
        for h in hosts:
            rec.link(h, nat, delay=0.0005, b_addr="198.51.100.1")
        rec.watch(server, nat, *hosts)
        apply_sysctls(opts, server, nat, *hosts)
        n = Nat(nat, "198.51.100.1", "172.16.0.0/16")
        # C1 is the client whose timestamp offset toward the server is larger
        offs = {h.name: secure_tcp_ts_off(h, ip2int(h.addr), ip2int("203.0.113.10")) for h in hosts}
        a_, b_ = hosts                 # C1 is "ahead" of C2 in 32-bit sequence arithmetic
        c1, c2 = (a_, b_) if (offs[a_.name] - offs[b_.name]) & 0xFFFFFFFF < 0x80000000 else (b_, a_)
        http = HttpServer(80, keepalive_timeout=0)      # the server closes: TIME_WAIT on the server
        server.run(http.start())
        if recycle:
            server.sysctl.set("net.ipv4.tcp_tw_recycle", 1)
        syn_log: list[tuple[int, int, list[int] | None]] = []
        tw_life: dict[tuple[int, int, int], list[int]] = {}

        def on_syn(net, dev, data, direction, now_us, log=syn_log) -> None:
            ts = _syn_tsval(data) if direction == "in" else None
            if ts is not None:
                cache = (net.tcp_metrics_ts or {}).get(struct.unpack_from("!I", data, 12)[0])
                log.append((now_us, ts, list(cache) if cache else None))

        def on_state(sk, old, new, now_us, life=tw_life) -> None:
            key = (sk.sport, sk.daddr, sk.dport)       # the full socket, then its mini socket
            if new == TCP_TIME_WAIT:
                life[key] = [now_us]
            elif old == TCP_TIME_WAIT and key in life:
                life[key].append(now_us)

        server.trace.packet.attach(on_syn)
        server.trace.set_state.attach(on_state)

        async def get():
            try:
                st, _, _ = await curl("203.0.113.10", 80, timeout=5.0)
                return f"HTTP {st}"
            except (TimeoutError, OSError) as e:
                return f"failed: {type(e).__name__}"
        r1 = c1.run(get())
        w.run_for(0.05)
        snap = snapshot(res, f"recycle={'on' if recycle else 'off'}: just after C1's request", server, ":80")
        w.run_for(1.0)
        r2 = c2.run(get())
        w.run_for(61.0)
        tw_len = [(v[1] - v[0]) / 1e6 for v in tw_life.values() if len(v) == 2]
        syns = [a for a in rec.arrows if a["src"] == "c2" and a["flags"] == "S"]
        drops = []
        for t, ts, cache in syn_log:
            if cache is None:
                continue
            behind = (cache[0] - ts) & 0xFFFFFFFF
            behind = behind - (1 << 32) if behind & 0x80000000 else behind
            verdict = ("more than TCP_PAWS_WINDOW behind: dropped" if behind > TCP_PAWS_WINDOW
                       and t // 1_000_000 - cache[1] < TCP_PAWS_MSL else "accepted")
            drops.append(f"t={t / 1e6:.3f} SYN TSval {ts}, cached TSval {cache[0]} "
                         f"(stamp {cache[1]} s): {behind} behind, {verdict}")
        out[recycle] = dict(r1=r1, r2=r2, syns=len(syns), drops=drops, tw_len=tw_len,
                            paws=server.mib["TcpExtPAWSPassive"], snap=snap)
        res.section(f"tcp_tw_recycle={'1 (emulated)' if recycle else '0'}", [
            f"C1 {c1.addr} (ts offset {offs[c1.name]}): {r1}",
            "server TIME_WAIT lasted " + (", ".join(f"{x:.3f} s" for x in tw_len) or "-"),
            f"C2 {c2.addr} (ts offset {offs[c2.name]}): {r2} after {len(syns)} SYN(s)"] +
            drops + [f"TcpExtPAWSPassive {server.mib['TcpExtPAWSPassive']} (pre-4.12 counter name)"])
        res.section("NAT mappings (conntrack -L)", n.mappings())
        add_ladder(res, rec, f"tcp_tw_recycle={'on' if recycle else 'off'}: C1, then C2 through the same NAT",
                   hosts=["c1", "c2", "nat", "server"], limit=40)
        http.close()
        finish(w)
    on, off = out[True], out[False]
    res.check("C1's request succeeds and leaves TIME_WAIT on the server", on["r1"] == "HTTP 200"
              and any("TIME_WAIT" in ln for ln in on["snap"]), on["r1"])
    res.check("recycle on: C2's SYNs (timestamps behind C1's) are dropped, C2 times out",
              on["r2"].startswith("failed") and on["paws"] >= 2 and on["syns"] >= 2,
              f"{on['r2']}, {on['syns']} SYNs, TcpExtPAWSPassive={on['paws']}")
    res.check("recycle on: the server's TIME_WAIT lasts 3.5 * RTO, not 60 s",
              bool(on["tw_len"]) and all(x < 4 for x in on["tw_len"]), f"{on['tw_len']}")
    res.check("recycle off (every kernel since 4.12): both clients connect",
              off["r1"] == off["r2"] == "HTTP 200", f"C1 {off['r1']}, C2 {off['r2']}")
    return res
