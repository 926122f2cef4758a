"""Scenario 14 — bufferbloat: a bulk upload and an interactive flow share a deep bottleneck queue.

Article: beyond the article (its STEP 3.4 RTT/RTO, seen from a full queue): a service uploads a
backup through a 20 Mbit/s uplink (base RTT 20 ms) whose router has the classic deep
1000-packet drop-tail queue (``txqueuelen 1000``), while the same machine answers interactive
requests over that link: a 100-byte request every 100 ms, a 100-byte answer (TCP_NODELAY on
both ends), its latency measured from send() to the last byte of the answer. Four runs, same
seed, same link; only the bulk sender's congestion control or the router's queue changes:
(a) CUBIC (the default): loss-based, it grows until the queue is full, so the queue holds
hundreds of packets and every interactive request waits behind them — latency in hundreds of
ms, the bulk flow's own srtt (``ss -ti`` rtt:) just as high. The deep buffer hides the
congestion: for seconds there is no loss to react to. (b) BBR (``tcp_congestion_control=bbr``):
it models the path (``bbr:(bw:..,mrtt:..)``), paces at the estimated bottleneck rate and keeps
about one BDP in flight, so the queue stays short and interactive latency stays near the base
RTT at the same throughput. (c) CUBIC with ECN (``net.ipv4.tcp_ecn=1`` on the sender) through a
queue that CE-marks ECN-capable packets above K = 30 packets (like ``tc qdisc ... red ... ecn``
with min = max = K): the receiver echoes ECE, the sender cuts its window (CUBIC: to 0.7x) in
the CWR state, retransmitting nothing, and sets CWR on its next new segment; the queue hovers below K and nothing of the
bulk flow is dropped. The marker still drops Not-ECT packets above K — pure ACKs, which RFC
3168 sends Not-ECT. (d) CUBIC with a shallow 4-packet queue: latency is low but the queue
drops, the bulk flow retransmits and its throughput falls, and the interactive flow's own
requests are dropped too (its p99 shows the retransmission).

What differs: the bottleneck queue is the link model's transmit queue (``sim/link.py``) on a
forwarding router, not a real qdisc: no ``tc`` and no fq, so CUBIC is not paced (as with
Linux's default pfifo_fast/fq_codel, where only BBR asks for internal pacing); the ECN marker
is a step at K, not RED's probability ramp. Both flows run on one host, so the sysctl
(``tcp_congestion_control``, ``tcp_ecn``) applies to the interactive flow too, as it would.
Latency figures are from the virtual clock; the queue is sampled every 20 ms.
"""

from __future__ import annotations

import asyncio
import re
import struct

from ..packet.tcp import flags_str
from ..tcp.sockopt import tcp_get_cc_info, tcp_get_info
from ..tools.netstat import ss_tanpoi
from . import Options, Result, scenario
from ._common import Recorder, apply_sysctls, finish, make_world, plot

RATE = 20e6                  # bottleneck, bits per second
BASE_RTT = 0.020             # 2 x (1 ms LAN + 9 ms uplink)
DEEP, SHALLOW = 1000, 4      # queue limits, packets
ECN_K = 30                   # CE-marking threshold, packets (~18 ms at 20 Mbit/s)
DUR, WARM = 6.0, 1.5         # virtual seconds per case; measurements from WARM on
REQ = RESP = 100             # interactive request / response bytes
PERIOD = 0.100               # one request every 100 ms
BULK_PORT, RR_PORT = 5001, 80
CLIENT, SERVER = "10.0.1.1", "10.0.2.2"
LADDER_AT = 5.0              # the interactive exchanges drawn in the ladder start here

CASES = {
    "cubic": ("(a) CUBIC, deep 1000-packet drop-tail queue", "cubic", DEEP, None),
    "bbr": ("(b) BBR, deep 1000-packet drop-tail queue", "bbr", DEEP, None),
    "ecn": (f"(c) CUBIC + ECN, queue CE-marks above K = {ECN_K} packets", "cubic", DEEP, ECN_K),
    "shallow": (f"(d) CUBIC, shallow {SHALLOW}-packet drop-tail queue", "cubic", SHALLOW, None),
}

def _pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``xs``."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))] if s else 0.0


def _tcp(data: bytes) -> tuple[int, int, int, int, int, int]:
    """(sport, dport, seq, ack, flags, payload length) of an IPv4/TCP datagram."""
    off = (data[0] & 15) * 4
    sport, dport, seq, ack, doff, flags = struct.unpack_from("!HHIIBB", data, off)
    return sport, dport, seq, ack, flags, len(data) - off - (doff >> 4) * 4


def _run_case(opts: Options, case: str) -> dict:
    title, cc, qlimit, ecn_k = CASES[case]
    w = make_world(opts)
    client = w.host("client", CLIENT)
    router = w.host("router", "10.0.1.2")
    server = w.host("server", SERVER)
    rec = Recorder(w)
    rec.link(client, router, delay=0.001, rate_bps=1e9, a_addr=CLIENT, b_addr="10.0.1.2")
    up = rec.link(router, server, delay=0.009, rate_bps=RATE, queue_limit=qlimit,
                  ecn_mark_threshold=ecn_k, a_addr="10.0.2.1", b_addr=SERVER)
    router.sysctl.set("net.ipv4.ip_forward", "1")
    server.replace_route(0, 0, "eth0", gw="10.0.2.1")
    rec.watch(client, server, packets=False)      # --pcap/--trace: each packet once, as it leaves
    apply_sysctls(opts, client, router, server)
    client.sysctl.set("net.ipv4.tcp_congestion_control", cc)
    if ecn_k is not None:
        client.sysctl.set("net.ipv4.tcp_ecn", "1")
    out: dict = {"case": case, "title": title, "cc": cc, "qlimit": qlimit, "ecn_k": ecn_k,
                 "lat": [], "bulk_bytes": 0, "queue": [], "dropped": [], "cwr": 0, "ece": 0}
    sent: list[float] = []

    # --- what the router's queue drops, as it drops it (Pipe.send returns False) -----------
    dev = router.devices["eth1"]
    xmit = dev.xmit

    def counting_xmit(data, nh):
        ok = xmit(data, nh)
        if ok is False:
            sport, dport, seq, _ack, flags, plen = _tcp(data)
            out["dropped"].append((w.now(), sport, dport, plen, data[1] & 3))
        return ok
    dev.xmit = counting_xmit

    # --- the applications --------------------------------------------------------------------
    async def bulk_server():
        ls = server.socket()
        ls.bind(("0.0.0.0", BULK_PORT))
        ls.listen(4)
        conn, _ = await ls.aaccept()
        while True:
            d = await conn.arecv(1 << 20)
            if not d:
                return
            if w.now() >= WARM:
                out["bulk_bytes"] += len(d)

    async def rr_server():
        ls = server.socket()
        ls.bind(("0.0.0.0", RR_PORT))
        ls.listen(4)
        conn, _ = await ls.aaccept()
        conn.setsockopt(6, 1, 1)                         # TCP_NODELAY
        pending = 0
        while True:
            d = await conn.arecv(4096)
            if not d:
                return
            pending += len(d)
            while pending >= REQ:
                pending -= REQ
                await conn.asendall(b"r" * RESP)

    async def bulk_client():
        cs = client.socket()
        out["bulk_sock"] = cs
        await cs.aconnect((SERVER, BULK_PORT))
        chunk = b"x" * 65536
        while True:
            await cs.asendall(chunk)

    async def rr_requests(cs):
        t0 = w.now()
        i = 0
        while True:
            sent.append(w.now())
            await cs.asendall(b"q" * REQ)
            i += 1
            await asyncio.sleep(t0 + i * PERIOD - w.now())

    async def rr_client():
        cs = client.socket()
        cs.setsockopt(6, 1, 1)                           # TCP_NODELAY
        out["rr_sock"] = cs
        await cs.aconnect((SERVER, RR_PORT))
        client.spawn(rr_requests(cs))
        got = 0
        while True:
            d = await cs.arecv(4096)
            if not d:
                return
            got += len(d)
            while got >= RESP:
                got -= RESP
                t = sent[len(out["lat"])]
                out["lat"].append((t, w.now() - t))

    server.spawn(bulk_server())
    server.spawn(rr_server())
    client.spawn(rr_client())
    client.spawn(bulk_client())

    # --- instruments: the queue every 20 ms, CWR/ECE on the wire, a ladder of the exchanges --
    def sample():
        out["queue"].append((w.now(), up.ab.backlog()[0]))
        w.loop.call_later(0.020, sample)
    w.loop.call_later(0, sample)
    if ecn_k is not None:
        def flags_cb(net, dev, data, d, now):
            if data[9] == 6:
                fl = data[(data[0] & 15) * 4 + 13]
                if d == "out" and fl & 0x80 and not fl & 0x02:     # CWR, not an ECN-setup SYN
                    out["cwr"] += 1
                elif d == "in" and fl & 0x40:
                    out["ece"] += 1
        client.trace.packet.attach(flags_cb)
    ladder: list[dict] = []
    inflight: dict[tuple, float] = {}

    def ladder_cb(net, dev, data, d, now):
        if data[9] != 6 or len(ladder) >= 40:
            return
        sport, dport, seq, ack, flags, plen = _tcp(data)
        if RR_PORT not in (sport, dport):
            return
        key = (sport, seq, ack, flags, plen)
        if d == "out":
            inflight[key] = now / 1e6
        elif key in inflight:
            t0 = inflight.pop(key)
            fl = flags_str(flags)
            src, dst = ("client", "server") if dport == RR_PORT else ("server", "client")
            label = f"[{fl}] seq {seq % 100000}" + (f" ack {ack % 100000}" if flags & 0x10 else "")
            label += f" len {plen}" if plen else ""
            a, b = (CLIENT, SERVER) if src == "client" else (SERVER, CLIENT)
            ladder.append({"t0": t0, "t1": now / 1e6, "src": src, "dst": dst, "flags": fl,
                           "label": label + f" ({(now / 1e6 - t0) * 1000:.0f} ms)", "len": plen,
                           "ep": f"{a}:{sport} > {b}:{dport}"})

    def ladder_on():
        client.trace.packet.attach(ladder_cb)
        server.trace.packet.attach(ladder_cb)

    def ladder_off():
        client.trace.packet.detach(ladder_cb)
        server.trace.packet.detach(ladder_cb)
    w.loop.call_later(LADDER_AT, ladder_on)
    w.loop.call_later(LADDER_AT + 1.5, ladder_off)

    w.run_for(DUR)

    # --- collect -----------------------------------------------------------------------------
    sk = out["bulk_sock"].sk
    info = tcp_get_info(sk)
    out["srtt_ms"] = info.tcpi_rtt / 1000
    out["min_rtt_ms"] = info.tcpi_min_rtt / 1000
    out["pacing_bps"] = info.tcpi_pacing_rate * 8
    out["delivered_ce"] = info.tcpi_delivered_ce
    out["total_retrans"] = info.tcpi_total_retrans
    out["cc_info"] = tcp_get_cc_info(sk)
    out["ecn_flags"] = sk.ecn_flags
    out["rr_retrans"] = tcp_get_info(out["rr_sock"].sk).tcpi_total_retrans
    ss = ss_tanpoi(client)
    out["ss"] = [ss[0]] + [ln for i, ln in enumerate(ss[1:], 1)
                           if f":{BULK_PORT} " in ln or (ln.startswith("\t")
                                                          and f":{BULK_PORT} " in ss[i - 1])]
    out["pipe"] = up.ab.counters()
    out["mib"] = {k: client.mib.get(k, 0) for k in (
        "TcpRetransSegs", "TcpExtTCPSackRecovery", "TcpExtTCPTimeouts", "TcpExtTCPLossProbes")}
    out["server_ce"] = server.mib.get("IpExtInCEPkts", 0)
    lat = [x * 1000 for t, x in out["lat"] if t >= WARM]
    out["n"] = len(lat)
    out["p50"], out["p99"], out["max"] = _pct(lat, 50), _pct(lat, 99), max(lat, default=0.0)
    q = [n for t, n in out["queue"] if t >= WARM]
    out["q_mean"], out["q_max"] = sum(q) / max(1, len(q)), max(q, default=0)
    out["goodput"] = out["bulk_bytes"] * 8 / (DUR - WARM)
    out["drops_window"] = sum(1 for x in out["dropped"] if x[0] >= WARM)
    out["ladder"] = {"title": f"{title}: interactive requests and answers from t = {LADDER_AT:.0f} s "
                              "(arrows from send to arrival, queueing included)",
                     "hosts": ["client", "server"], "arrows": ladder}
    finish(w)
    return out


def _drop_kinds(o: dict) -> str:
    """What the queue dropped: bulk data / interactive data / pure ACKs, and Not-ECT or ECT."""
    kinds: dict[str, int] = {}
    for _t, sport, dport, plen, ect in o["dropped"]:
        what = ("bulk data" if BULK_PORT in (sport, dport) else "interactive data") if plen \
            else "pure ACK"
        what += ", Not-ECT" if ect == 0 else ""
        kinds[what] = kinds.get(what, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"


def _mbit(bps: float) -> str:
    return f"{bps / 1e6:.2f} Mbit/s"


@scenario("bufferbloat", "Bufferbloat: a bulk upload vs interactive latency; CUBIC, BBR, ECN, a shallow queue",
          "beyond the article: STEP 3.4 RTT and RTO under a full bottleneck queue (RFC 8511, "
          "RFC 3168 ECN, BBR)")
def run(opts: Options) -> Result:
    res = Result("bufferbloat", "Bufferbloat", __doc__ or "")
    r = {c: _run_case(opts, c) for c in CASES}
    a, b, e, s = r["cubic"], r["bbr"], r["ecn"], r["shallow"]
    base = BASE_RTT * 1000
    res.section("Setup", [
        f"client --1 Gbit/s, 1 ms-- router ==20 Mbit/s, 9 ms, queue {DEEP} packets== server: "
        f"base RTT {base:.0f} ms, BDP {RATE * BASE_RTT / 8 / 1500:.0f} packets",
        f"bulk: client -> server:{BULK_PORT}, send() forever; interactive: client -> server:{RR_PORT}, "
        f"{REQ}-byte request every {PERIOD * 1000:.0f} ms, {RESP}-byte answer, TCP_NODELAY",
        f"each case runs {DUR:.0f} s of virtual time; latency, queue and goodput from t = {WARM} s"]
        + ([f"--pcap {opts.pcap}: case (a), each packet as it leaves the client or the server"]
           if opts.pcap else []))
    rows = [f"{'case':58s} {'p50 ms':>7} {'p99 ms':>7} {'queue mean/max':>15} {'drops':>6} "
            f"{'CE':>5} {'goodput':>13} {'srtt ms':>8}"]
    for o in r.values():
        rows.append(f"{o['title']:58s} {o['p50']:7.1f} {o['p99']:7.1f} "
                    f"{o['q_mean']:9.0f}/{o['q_max']:<5d} {o['pipe']['dropped_queue']:6d} "
                    f"{o['pipe']['ce_marked']:5d} {_mbit(o['goodput']):>13} {o['srtt_ms']:8.1f}")
    res.section("Interactive latency, bottleneck queue, bulk goodput (whole run for drops/CE)", rows)
    for o in r.values():
        res.section(f"{o['title']} — client$ ss -tni | grep :{BULK_PORT}   (t = {DUR:.0f} s)", o["ss"])
        p = o["pipe"]
        res.section(f"{o['title']} — the router's uplink queue (link model counters)", [
            f"sent {p['sent']} pkt {p['bytes']} bytes, dropped {p['dropped_queue']} "
            f"({_drop_kinds(o)}), CE-marked {p['ce_marked']}, limit {o['qlimit']}p"
            + (f", mark above {o['ecn_k']}p" if o["ecn_k"] else ""),
            f"client: {o['mib']}" + (f", CWR sent {o['cwr']}, ECE received {o['ece']}, "
                                     f"server IpExtInCEPkts {o['server_ce']}" if o["ecn_k"] else "")]
            + ([f"delivered_ce {o['delivered_ce']} > {o['pipe']['ce_marked']} CE marks: RFC 3168 "
                "echoes ECE on every ACK until the CWR arrives, and tcp_info counts all they ack"]
               if o["ecn_k"] else []))
        res.data.setdefault("ladders", []).append(o["ladder"])
    plot(res, "Bottleneck queue (packets)", "seconds", "packets",
         [(o["title"][:3] + " " + c, [pt for pt in o["queue"][::5]]) for c, o in r.items()])
    plot(res, "Interactive request latency", "seconds (request sent)", "ms",
         [(o["title"][:3] + " " + c, [(t, x * 1000) for t, x in o["lat"]]) for c, o in r.items()])
    res.data["cases"] = {c: {k: o[k] for k in ("p50", "p99", "max", "n", "q_mean", "q_max", "goodput",
                                               "srtt_ms", "min_rtt_ms", "pacing_bps", "delivered_ce",
                                               "total_retrans", "rr_retrans", "cwr", "ece",
                                               "server_ce", "drops_window")}
                         | {"pipe": o["pipe"], "mib": o["mib"], "ss": o["ss"], "dropped": o["dropped"]}
                         for c, o in r.items()}

    res.check("(a) CUBIC fills the deep queue: hundreds of packets wait at the bottleneck and "
              f"the bulk flow's own srtt (ss rtt:) is over 10x the {base:.0f} ms base RTT",
              a["q_mean"] >= 200 and a["srtt_ms"] > 10 * base,
              f"queue mean {a['q_mean']:.0f}, max {a['q_max']} of {DEEP} packets; srtt "
              f"{a['srtt_ms']:.1f} ms (minrtt {a['min_rtt_ms']:.1f} ms); queue drops so far "
              f"{a['pipe']['dropped_queue']}, retransmissions {a['total_retrans']}")
    res.check(f"(a) interactive latency under CUBIC: p99 > 5x the base RTT ({5 * base:.0f} ms)",
              a["p99"] > 5 * base and a["n"] >= 30,
              f"p50 {a['p50']:.0f} ms, p99 {a['p99']:.0f} ms, max {a['max']:.0f} ms over {a['n']} requests")
    bw = b["cc_info"] or {}
    bbr_bw = ((bw.get("bbr_bw_hi", 0) << 32) | bw.get("bbr_bw_lo", 0)) * 8
    bbr_line = b["ss"][-1].strip() if len(b["ss"]) > 2 else ""
    res.check("(b) BBR keeps the queue short and the interactive p99 under 2x the base RTT, "
              "at CUBIC's throughput (within 5%)",
              b["q_max"] <= 50 and b["p99"] < 2 * base and b["goodput"] >= 0.95 * a["goodput"],
              f"queue mean {b['q_mean']:.1f}, max {b['q_max']}; p50 {b['p50']:.1f} ms, p99 "
              f"{b['p99']:.1f} ms; goodput {_mbit(b['goodput'])} vs CUBIC {_mbit(a['goodput'])}")
    m = re.search(r"bbr:\([^)]*\)", bbr_line)
    pr = re.search(r"pacing_rate \S+", bbr_line)
    gain = bw.get("bbr_pacing_gain", 0) / 256
    res.check("(b) ss -ti shows BBR's model: bw ≈ the 20 Mbit/s bottleneck, mrtt ≈ the 20 ms base "
              "RTT, and it paces at pacing_gain x bw (less BBR's 1% margin)",
              m is not None and abs(bbr_bw - RATE) <= 0.1 * RATE
              and base <= bw.get("bbr_min_rtt", 0) / 1000 <= base + 2
              and abs(b["pacing_bps"] - gain * bbr_bw * 0.99) <= 0.02 * gain * bbr_bw,
              f"{m.group(0) if m else '(no bbr:)'} {pr.group(0) if pr else ''}; srtt "
              f"{b['srtt_ms']:.1f} ms")
    bulk_drops = sum(1 for x in e["dropped"] if BULK_PORT in x[1:3] and x[3])
    res.check(f"(c) ECN: the queue CE-marks instead of dropping: >0 CE marks, the sender answers "
              f"with CWR, no bulk data dropped or retransmitted; the queue never holds more than "
              f"K + 1 = {ECN_K + 1} packets (K, and the marked arrival)",
              e["pipe"]["ce_marked"] > 0 and e["cwr"] > 0 and e["delivered_ce"] > 0
              and bulk_drops == 0 and e["total_retrans"] == 0 and e["q_max"] <= ECN_K + 1,
              f"{e['pipe']['ce_marked']} CE marks (server IpExtInCEPkts {e['server_ce']}), "
              f"{e['ece']} ECE ACKs, {e['cwr']} CWR segments, delivered_ce {e['delivered_ce']}, "
              f"retransmissions {e['total_retrans']}; queue mean {e['q_mean']:.1f}, max {e['q_max']}; "
              f"queue drops: {_drop_kinds(e)}")
    res.check("(c) ECN: interactive p99 < 2x the base RTT, goodput within 5% of CUBIC's",
              e["p99"] < 2 * base and e["goodput"] >= 0.95 * a["goodput"],
              f"p50 {e['p50']:.1f} ms, p99 {e['p99']:.1f} ms; goodput {_mbit(e['goodput'])}")
    res.check(f"(d) a shallow {SHALLOW}-packet queue: median latency near the base RTT, but the "
              "queue drops, the bulk flow retransmits and its goodput is >= 8% below (a)'s",
              s["p50"] < 1.5 * base and s["pipe"]["dropped_queue"] > 0 and s["total_retrans"] > 0
              and s["goodput"] <= 0.92 * a["goodput"],
              f"p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms (interactive retransmissions "
              f"{s['rr_retrans']}); {s['pipe']['dropped_queue']} queue drops, {s['total_retrans']} "
              f"bulk retransmissions; goodput {_mbit(s['goodput'])} vs {_mbit(a['goodput'])}")
    return res
