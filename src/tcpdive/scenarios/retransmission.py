"""Scenario 11 — retransmission: RTO from RTT, exponential backoff, giving up, SYN retries.

Article: STEP 3.4 / 3.4.1. RTO from the first RTT measurement (RFC 6298 2.2: SRTT = R,
RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR)); exponential backoff 200 -> 400 -> 800 -> 1600 ms
up to TCP_RTO_MAX (120 s); tcp_retries1 = 3 (soft: tell IP to re-check the route) and
tcp_retries2 = 15 (hard: give up); tcp_syn_retries = 6 for SYNs with an initial RTO of 1 s; and
an application connect timeout below 1 s failing on a single lost SYN.

What differs (Linux 6.x vs the article's 5.15): Linux keeps RTTVAR at least tcp_rto_min (200 ms),
so the RTO is SRTT + 200 ms, not SRTT + 4*RTTVAR; the give-up point is time-based
(``tcp_model_timeout``: retries2 = 15 is 924.6 s of backoffs from 200 ms), not a count; and
6.18's ``tcp_syn_linear_timeouts`` = 4 makes the first 4 SYN retransmissions 1 s apart before
the doubling starts, and adds 4 to the SYN retry budget. Since 3.10 Linux also sends a tail
loss probe (RFC 8985 TLP) before the first RTO fires: the first retransmission of a lone
segment is the probe (PTO = 2*srtt + tcp_rto_min, capped by the RTO), which restarts the RTO
without backing it off — so the waits read 220, 220, 440, 880 ms... (the real 6.18 kernel on a
black-holed veth: 207, 208, 428, 836, 1648 ms).
"""

from __future__ import annotations

import asyncio
import errno

from ..tcp.timer import tcp_model_timeout
from . import Options, Result, scenario
from ._common import Recorder, _at, add_ladder, apply_sysctls, finish, make_world, plot, snapshot


@scenario("retransmission", "RTO, 200->400->800 ms backoff, tcp_retries2, SYN retries, app timeouts",
          "STEP 3.4 (RTO, exponential backoff), STEP 3.4.1 (tcp_retries1/2, tcp_syn_retries)")
def run(opts: Options) -> Result:
    res = Result("retransmission", "Retransmission and timeouts", __doc__ or "")
    # --- part 1: established, then a black hole -----------------------------------------------
    w = make_world(opts)
    a = w.host("client", "10.0.0.1")
    b = w.host("server", "10.0.0.2")
    rec = Recorder(w, max_packets=80)
    link = rec.link(a, b, delay=0.010)           # RTT 20 ms
    rec.watch(a, b)
    apply_sysctls(opts, a, b)
    ls = b.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(8)
    c = a.socket()
    c.connect(("10.0.0.2", 80))
    s, _ = ls.accept()
    for _ in range(5):
        c.sendall(b"x" * 100)
        s.recv(1000)
        w.run_for(0.1)
    sk = c.sk
    srtt_ms = (sk.srtt_us >> 3) / 1000 if hasattr(sk, "srtt_us") else 0
    rto0 = sk.icsk_rto
    res.section("After 5 request/ACK exchanges over a 20 ms RTT link", [
        f"srtt = {srtt_ms:.1f} ms, rto = {rto0 / 1000:.0f} ms (tcp_rto_min = 200 ms)"])
    link.ab.set(loss=1.0)
    link.ba.set(loss=1.0)
    t0 = w.now()
    mark = len(rec.retransmits)
    c.sendall(b"lost in the void")
    w.run_for(0.1)
    snapshot(res, "the segment is out, its retransmit timer on", a, ":80")
    w.run_for(1200.0)
    rtx = [(t - t0, rto) for t, h, rto in rec.retransmits[mark:] if h == "client"]
    err = sk.sk_err if hasattr(sk, "sk_err") else 0
    gaps = [round(y[0] - x[0], 3) for x, y in zip([(0.0, 0)] + rtx, rtx, strict=False)]
    dead = next((t - t0 for t, h, lab, o, n in rec.states if h == "client" and n == "CLOSE" and t >= t0), None)
    res.section("Retransmissions of the lost segment", [
        f"#{i + 1:2d} at +{t:8.3f} s (waited {g:7.3f} s)" for i, ((t, _), g) in enumerate(zip(rtx, gaps, strict=False))] +
        [f"gave up at +{dead:.3f} s with {errno.errorcode.get(err, err)}" if dead else "still trying"])
    plot(res, "RTO per retransmission", "retransmission #", "RTO waited (s)",
         [("RTO", [(i + 1, g) for i, g in enumerate(gaps)])], kind="bars")
    model = tcp_model_timeout(15, 200_000) / 1000
    r1 = tcp_model_timeout(3, 200_000) / 1000
    # --- part 2: SYN retries -----------------------------------------------------------------
    w2 = make_world(opts)
    a2 = w2.host("client", "10.0.0.1")
    b2 = w2.host("server", "10.0.0.2")
    rec2 = Recorder(w2, max_packets=40)
    l2 = rec2.link(a2, b2, delay=0.010)
    rec2.watch(a2, b2)
    apply_sysctls(opts, a2, b2)
    l2.ab.set(loss=1.0)
    c2 = a2.socket()
    t1 = w2.now()
    rc = c2.connect_ex(("10.0.0.2", 80))
    syn_t = [x["t0"] - t1 for x in rec2.arrows if x["src"] == "client" and x["flags"] == "S"]
    sgaps = [round(y - x, 3) for x, y in zip(syn_t, syn_t[1:], strict=False)]
    res.section("connect() to a black hole: SYN transmissions", [
        f"SYN at +{t:.3f} s" for t in syn_t] + [f"gaps {sgaps}", f"connect() -> {errno.errorcode.get(rc, rc)} at "
                                                  f"+{w2.now() - t1:.3f} s"])
    add_ladder(res, rec2, "SYN retries: 1 s apart (linear) then doubling")
    # --- part 3: application timeout below the initial RTO -------------------------------------
    results = {}
    for app_timeout in (0.5, 3.0):
        w3 = make_world(opts)
        a3 = w3.host("client", "10.0.0.1")
        b3 = w3.host("server", "10.0.0.2")
        dropped = []

        def drop_first_syn(pkt, dropped=dropped):
            off = (pkt[0] & 15) * 4
            if pkt[off + 13] == 0x02 and not dropped:
                dropped.append(1)
                return False
            return True
        w3.link(a3, b3, delay=0.010, filter=drop_first_syn)
        ls3 = b3.socket()
        ls3.bind(("0.0.0.0", 80))
        ls3.listen(8)

        async def app(tmo=app_timeout):
            t = asyncio.get_running_loop().time()
            try:
                r, wr = await asyncio.wait_for(asyncio.open_connection("10.0.0.2", 80), tmo)
                wr.close()
                return f"connected after {asyncio.get_running_loop().time() - t:.3f} s"
            except TimeoutError:
                return f"TimeoutError after {asyncio.get_running_loop().time() - t:.3f} s"
        results[app_timeout] = a3.run(app())
        finish(w3)
    res.section("First SYN lost; application connect timeout", [f"timeout {k} s: {v}" for k, v in results.items()])
    add_ladder(res, rec, "Established connection into a black hole: the same segment, backing off",
               select=lambda x: x["src"] == "client" and x["t0"] >= t0, limit=20)
    res.check("RTO from measured RTT: srtt ~20 ms, rto = srtt + tcp_rto_min (~220 ms)",
              15 <= srtt_ms <= 25 and 200_000 <= rto0 <= 260_000, f"srtt {srtt_ms:.1f} ms, rto {rto0 / 1000:.0f} ms")
    rto_gaps = gaps[1:]                 # gaps[0] is the tail loss probe's wait
    doubling = all(abs(rto_gaps[i + 1] - min(2 * rto_gaps[i], 120.0)) < 0.02 * rto_gaps[i + 1] + 0.002
                   for i in range(min(8, len(rto_gaps) - 1)))
    res.check("a tail loss probe first, then exponential backoff: each RTO wait doubles "
              "(≈220, 220 -> 440 -> 880 ms ...)",
              doubling and len(rto_gaps) > 8 and abs(gaps[0] - rto_gaps[0]) < 0.01,
              " -> ".join(f"{g:.3f}" for g in gaps[:9]))
    res.check("the backoff is capped at TCP_RTO_MAX = 120 s", bool(gaps) and max(gaps) <= 120.001 and
              any(abs(g - 120) < 0.01 for g in gaps), f"max wait {max(gaps) if gaps else 0:.3f} s")
    res.check(f"tcp_retries2=15 gives up after ~{model:.1f} s (tcp_model_timeout) with ETIMEDOUT",
              dead is not None and abs(dead - model) < 130 and err == errno.ETIMEDOUT,
              f"dead at {_at(dead)} after {len(rtx)} retransmissions; tcp_retries1=3 boundary at +{r1:.1f} s")
    res.check("SYN retries: 1 s initial RTO kept for 4 more (tcp_syn_linear_timeouts=4), then doubling; "
              "6 + 4 retries, then ETIMEDOUT", sgaps[:5] == [1.0] * 5 and sgaps[5:7] == [2.0, 4.0]
              and len(syn_t) == 11 and rc == errno.ETIMEDOUT,
              f"{len(syn_t)} SYNs, gaps {sgaps}")
    res.check("an application timeout (0.5 s) below the initial RTO (1 s) fails on one lost SYN; 3 s succeeds",
              results[0.5].startswith("TimeoutError") and results[3.0].startswith("connected after 1.0"),
              "; ".join(f"{k} s: {v}" for k, v in results.items()))
    finish(w)
    finish(w2)
    return res
