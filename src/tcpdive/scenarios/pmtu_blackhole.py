"""Scenario 13 — pmtu-blackhole: path MTU discovery, the classic black hole, and its two fixes.

Article: beyond the article (its STEP 3.4 retransmissions, seen from the path): a client
reaches a web server through a site-to-site VPN whose tunnel carries 1400-byte packets. Both
ends sit on 1500-byte Ethernet, so both advertise MSS 1460 and the server's first full-size
segment (1500 bytes, DF set) cannot enter the tunnel. The VPN gateway drops it and sends ICMP
"fragmentation needed" (type 3 code 4, next-hop MTU 1400: ``ip_forward`` -> ``ip_exceeds_mtu``
-> ``icmp_send``). (a) ICMP reaches the server: ``tcp_v4_err`` -> ``tcp_v4_mtu_reduced`` learns
PMTU 1400 for the client's address (a nexthop exception, ``ip route get`` shows ``cache
expires 599sec mtu 1400``), re-syncs the MSS to 1348 and retransmits at once
(``tcp_simple_retransmit``). (b) The server's firewall drops all ICMP (``iptables -A INPUT -p
icmp -j DROP``): the handshake and a small request work, the first large response never
arrives; the server retransmits full-size segments with RTO backoff (ss's ``timer:(on,...)``)
until tcp_retries2 kills the connection. (c) Fixes: ``tcp_mtu_probing=1`` on the server
(after the RTOs pass tcp_retries1 it suspects a black hole, drops to tcp_base_mss and
completes), or MSS clamping on the client's gateway (``iptables -t mangle -A FORWARD -p tcp
--tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu``), which rewrites the SYNs' MSS option
to 1360 so no segment is ever too big.

What differs: topology client -- gw ==tunnel (MTU 1400)== vpn -- server as two point-to-point
links and two forwarding hosts, the tunnel a plain link with a smaller MTU (no encapsulation);
no TSO (every MSS segment is its own skb, so the retransmission after the ICMP cuts each
1448-byte segment into 1348 + 100 bytes, as Linux does for non-TSO skbs).
"""

from __future__ import annotations

from ..sim.middlebox import Firewall, MssClamp
from ..tools.netstat import ss_tanpoi
from ..tools.tcpdump import format_packet
from . import Options, Result, scenario
from ._common import Recorder, _at, add_ladder, apply_sysctls, finish, make_world, plot

BIG = 64 * 1024
CLIENT, SERVER = "10.0.1.1", "10.0.3.2"


def _build(opts: Options, case: str):
    w = make_world(opts)
    client = w.host("client", CLIENT)
    gw = w.host("gw", "10.0.1.2")
    vpn = w.host("vpn", "10.0.2.2")
    server = w.host("server", SERVER)
    rec = Recorder(w, max_packets=120)
    rec.link(client, gw, delay=0.005, a_addr=CLIENT, b_addr="10.0.1.2")
    rec.link(gw, vpn, delay=0.010, mtu=1400, a_addr="10.0.2.1", b_addr="10.0.2.2")
    rec.link(vpn, server, delay=0.005, a_addr="10.0.3.1", b_addr=SERVER)
    for r in (gw, vpn):
        r.sysctl.set("net.ipv4.ip_forward", "1")
    gw.add_route("10.0.3.0", 24, "eth1", gw="10.0.2.2")
    vpn.replace_route(0, 0, "eth0", gw="10.0.2.1")
    rec.watch(client, gw, vpn, server)
    apply_sysctls(opts, client, gw, vpn, server)
    extra = {}
    if case != "icmp":
        fw = Firewall(server)
        fw.drop("INPUT", proto="icmp")
        extra["fw"] = fw
    if case == "mtu-probing":
        server.sysctl.set("net.ipv4.tcp_mtu_probing", "1")
    if case == "mss-clamp":
        extra["clamp"] = MssClamp(gw)
    return w, client, gw, vpn, server, rec, extra


def _run_case(opts: Options, res: Result, case: str, horizon: float) -> dict:
    w, client, gw, vpn, server, rec, extra = _build(opts, case)
    icmp: list[str] = []

    def on_pkt(net, dev, data, d, now):
        if d == "out" and data[9] == 1 and len(icmp) < 12:
            icmp.append(f"{net.name:>8}  {format_packet(data, now)}")
    vpn.trace.packet.attach(on_pkt)
    out: dict = {"case": case, "got": 0, "t_req": None, "t_done": None, "small": None, "err": None}

    async def serve():
        ls = server.socket()
        ls.bind(("0.0.0.0", 80))
        ls.listen(16)
        conn, _ = await ls.aaccept()
        out["ssock"] = conn
        try:
            while True:
                req = await conn.arecv(1000)
                if not req:
                    return
                body = b"ok\n" if b"/health" in req else b"x" * BIG
                await conn.asendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                                    + body)
        except OSError as e:                  # the black hole: tcp_retries2 gives up
            out["server_err"] = e.errno

    async def fetch():
        cs = client.socket()
        out["csock"] = cs
        await cs.aconnect((SERVER, 80))
        await cs.asendall(b"GET /health HTTP/1.1\r\nHost: server\r\n\r\n")
        small = await cs.arecv(1000)
        out["small"] = (w.now(), small)
        out["t_req"] = w.now()
        await cs.asendall(b"GET /big HTTP/1.1\r\nHost: server\r\n\r\n")
        want = BIG + 40
        try:
            while out["got"] < want:
                d = await cs.arecv(65536)
                if not d:
                    break
                out["got"] += len(d)
        except OSError as e:
            out["err"] = e.errno
            return
        out["t_done"] = w.now()

    server.spawn(serve())
    client.spawn(fetch())
    progress: list[tuple[float, float]] = []
    t = 0.0
    while t < horizon:
        w.run_for(0.25 if t < 10 else 5.0)
        t = w.now()
        progress.append((t, out["got"] / 1024))
        if case == "blackhole" and 20.0 <= t < 20.3:
            out["ss20"] = [ln for ln in ss_tanpoi(server) if ":80 " in ln and "ESTAB" in ln]
        if out["t_done"] is not None and case != "blackhole":
            break
    out["progress"] = progress
    sk = out.get("ssock").sk if out.get("ssock") is not None else None
    out["server_mss"] = sk.mss_cache if sk is not None else 0
    out["route_get"] = server.ip_route_get(CLIENT)
    out["icmp"] = icmp
    out["mib"] = {k: server.mib.get(k, 0) for k in (
        "IcmpInDestUnreachs", "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPSlowStartRetrans",
        "TcpExtTCPAbortOnTimeout")}
    out["vpn_mib"] = {k: vpn.mib.get(k, 0) for k in ("IpFragFails", "IcmpOutDestUnreachs",
                                                     "IpForwDatagrams")}
    out["syn_mss"] = [ln for ln in rec.lines if "Flags [S" in ln][:8]
    out.update(extra)
    out["rec"] = rec
    title = {"icmp": "(a) ICMP reaches the server", "blackhole": "(b) ICMP dropped: black hole",
             "mtu-probing": "(c1) black hole + tcp_mtu_probing=1",
             "mss-clamp": "(c2) black hole + TCPMSS --clamp-mss-to-pmtu on gw"}[case]
    add_ladder(res, rec, title, hosts=["client", "gw", "vpn", "server"], limit=40,
               select=lambda a: a["t0"] >= (out["t_req"] or 0) - 0.05)
    if case != "blackhole" and out["t_done"] is None:
        out["ss_end"] = [ln for ln in ss_tanpoi(server) if ":80 " in ln]
    finish(w)
    return out


@scenario("pmtu-blackhole", "Path MTU discovery, the PMTU black hole, tcp_mtu_probing and MSS clamping",
          "beyond the article: STEP 3.4 retransmissions caused by the path (RFC 1191, RFC 4821)")
def run(opts: Options) -> Result:
    res = Result("pmtu-blackhole", "PMTU black hole", __doc__ or "")
    r = {c: _run_case(opts, res, c, h) for c, h in (("icmp", 30.0), ("blackhole", 1000.0),
                                                    ("mtu-probing", 120.0), ("mss-clamp", 30.0))}
    a, b, p, m = r["icmp"], r["blackhole"], r["mtu-probing"], r["mss-clamp"]
    res.section("(a) vpn: ICMP sent back to the server", a["icmp"][:3])
    res.section("(a) server$ ip route get 10.0.1.1", a["route_get"].splitlines())
    res.section("(a) counters", [f"server: {a['mib']}", f"vpn: {a['vpn_mib']}"])
    res.section("(b) server$ iptables -S", b["fw"].listing())
    res.section("(b) server$ ss -tanpoi | grep :80 (t = 20 s)", b.get("ss20", []))
    res.section("(b) counters", [f"server: {b['mib']}", f"vpn: {b['vpn_mib']}",
                                 "server$ ip route get 10.0.1.1 (no PMTU learnt): "
                                 + " / ".join(ln.strip() for ln in b["route_get"].splitlines())])
    res.section("(c2) gw$ iptables -t mangle -S", [m["clamp"].spec()] +
                [f"{t:.3f} s: {s}" for t, s in m["clamp"].log])
    res.section("(c2) SYNs as they leave", m["syn_mss"])
    ttr = {k: (v["t_done"] - v["t_req"]) if v["t_done"] is not None else None for k, v in r.items()}
    res.section("time from GET /big to the last byte (virtual clock)",
                [f"{k:12s} " + (f"{t:.3f} s" if t is not None else "never") for k, t in ttr.items()])
    plot(res, "Response bytes received by the client", "seconds", "KiB",
         [(k, [pt for pt in v["progress"] if pt[0] <= 60]) for k, v in r.items()], kind="step")

    icmp0 = a["icmp"][0] if a["icmp"] else ""
    res.check("(a) the first full-size segment is dropped at the tunnel and the VPN gateway "
              "answers ICMP frag-needed with the next-hop MTU 1400 (IpFragFails)",
              "need to frag (mtu 1400)" in icmp0 and a["vpn_mib"]["IpFragFails"] >= 1,
              f"{icmp0.strip()}; vpn IpFragFails={a['vpn_mib']['IpFragFails']}")
    res.check("(a) the server learns PMTU 1400 toward the client: ip route get shows the cached "
              "mtu with its 600 s lifetime, the MSS becomes 1348",
              "mtu 1400" in a["route_get"] and "expires 5" in a["route_get"]
              and a["server_mss"] == 1348,
              f"{' / '.join(x.strip() for x in a['route_get'].splitlines())}; mss {a['server_mss']}")
    res.check("(a) the transfer completes right away: retransmitted at once, no RTO",
              a["t_done"] is not None and ttr["icmp"] < 1.0 and a["mib"]["TcpExtTCPTimeouts"] == 0,
              f"{BIG} bytes in {ttr['icmp']:.3f} s, TcpExtTCPTimeouts=0" if a["t_done"] else "never")
    small = b["small"]
    res.check("(b) black hole: the handshake and the small request work",
              small is not None and small[1].startswith(b"HTTP/1.1 200 OK"),
              f"/health answered at {_at(small[0] if small else None)}")
    ss20 = b.get("ss20", [""])
    ss20l = ss20[0] if ss20 else ""
    res.check("(b) the large response stalls: the server retransmits full-size segments with "
              "RTO backoff (ss timer:(on,...) and its retransmission count)",
              "timer:(on," in ss20l and b["got"] < 1000,
              ss20l.strip() or "(no row)")
    res.check("(b) the ICMPs die at the firewall, no PMTU is learnt; after tcp_retries2 the "
              "connection is killed (ETIMEDOUT)",
              b["fw"].rules[0].pkts >= 1 and "mtu" not in b["route_get"]
              and b["mib"]["TcpExtTCPAbortOnTimeout"] == 1 and b["t_done"] is None,
              f"firewall dropped {b['fw'].rules[0].pkts} ICMPs; {b['mib']}; the client, told "
              f"nothing, still waits with {b['got']} bytes")
    res.check("(c1) tcp_mtu_probing=1: after the RTOs pass tcp_retries1 the server suspects a "
              "black hole, lowers its MSS (tcp_base_mss 1024) and the transfer completes",
              p["t_done"] is not None and p["mib"]["TcpExtTCPTimeouts"] >= 3,
              (f"completed {ttr['mtu-probing']:.2f} s after the request, after "
               f"{p['mib']['TcpExtTCPTimeouts']} RTOs; MSS now {p['server_mss']}")
              if p["t_done"] is not None else "never")
    res.check("(c2) MSS clamping on gw: the SYNs carry MSS 1360, no segment is too big, no ICMP, "
              "the transfer is as fast as with working PMTU discovery",
              m["t_done"] is not None and m["clamp"].clamped == 2 and not m["icmp"]
              and m["mib"]["TcpRetransSegs"] == 0 and ttr["mss-clamp"] <= ttr["icmp"],
              (f"{m['clamp'].clamped} SYNs clamped, {len(m['icmp'])} ICMPs, completed in "
               f"{ttr['mss-clamp']:.3f} s") if m["t_done"] is not None else "never")
    res.data["time_to_recover"] = ttr
    return res
