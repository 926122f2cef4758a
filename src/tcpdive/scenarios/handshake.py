"""Scenario 1 — handshake: socket() to close(), with every packet, state and kernel path.

Article: STEP 2.1 (3-way handshake through ip_rcv -> ip_local_deliver -> tcp_v4_rcv ->
tcp_v4_do_rcv -> tcp_rcv_state_process), STEP 2.1.2 (4-way handshake via tcp_fin), STEP 3.1
(the nginx capture: the server closes first and keeps TIME_WAIT).
"""

from __future__ import annotations

from ..packet.tcp import flags_str
from ..sim.world import World
from ..tcp.sock import STATE_NAMES
from . import Options, Result, scenario

ARTICLE = ("STEP 2.1 (3-way handshake through ip_rcv -> ip_local_deliver -> tcp_v4_rcv -> "
           "tcp_v4_do_rcv -> tcp_rcv_state_process), STEP 2.1.2 (4-way handshake, tcp_fin), STEP 3.1 "
           "(the nginx capture: the server closes first and keeps TIME_WAIT). Same behaviour on "
           "Linux 6.18; the article's VM ran 5.15.")


@scenario("handshake", "From socket() to close(): the 3-way and 4-way handshakes", ARTICLE)
def run(opts: Options) -> Result:
    """Client and server do socket/connect/accept, one request/response, and the close."""
    from ..tools.tcpdump import format_packet

    res = Result("handshake", "From socket() to close()", ARTICLE)
    w = World(seed=opts.seed)
    client = w.host("client", "192.168.106.1")
    server = w.host("server", "192.168.106.3")
    w.link(client, server, delay=0.0005)
    for h in (client, server):
        for k, v in opts.sysctls:
            h.sysctl.set(k, v)
    packets: list[tuple[int, str, str, int]] = []
    lines: list[str] = []
    states: list[str] = []
    paths: list[str] = []

    def on_packet(net, dev, data, direction, now):
        if direction != "out":
            return
        line = format_packet(data, now)
        lines.append(f"{net.name:>6}  {line}")
        off = (data[0] & 15) * 4
        packets.append((now, net.name, flags_str(data[off + 13]), len(data) - off - (data[off + 12] >> 4) * 4))

    def on_state(h):
        def cb(sk, old, new, now):
            states.append(f"{now / 1e6:9.6f} {h.name:>6} {STATE_NAMES.get(old, old)} -> "
                          f"{STATE_NAMES.get(new, new)}")
        return cb

    def on_path(net, path, skb):
        paths.append(f"{net.name:>6} [{flags_str(skb.flags)}] " + " -> ".join(path))

    for h in (client, server):
        h.trace.packet.attach(on_packet)
        h.trace.set_state.attach(on_state(h))
        h.trace.path.attach(on_path)
    pcap = None
    if opts.pcap:
        from ..tools.pcap import PcapWriter

        pcap = PcapWriter(opts.pcap)
        pcap.attach([client, server], direction="out")

    ls = server.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(128)

    async def nginx_keepalive_0():
        conn, _ = await ls.aaccept()
        req = await conn.arecv(4096)
        body = b"<html>hello from tcpdive</html>\n"
        await conn.asendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                            % len(body) + body)
        conn.close()                     # keepalive_timeout 0: the server closes first
        return req

    task = server.spawn(nginx_keepalive_0())
    cs = client.socket()
    cs.connect(("192.168.106.3", 80))
    cs.sendall(b"GET / HTTP/1.1\r\nHost: 192.168.106.3\r\n\r\n")
    resp = b""
    while True:
        chunk = cs.recv(4096)
        if not chunk:
            break
        resp += chunk
    cs.close()
    w.run_for(1.0)
    from ..tools.netstat import netstat_napo

    snap = netstat_napo(server)
    w.run_for(60.0)
    snap_after = netstat_napo(server)
    if pcap is not None:
        pcap.close()
    res.section("Packets (tcpdump -n)", lines)
    res.section("State changes (sock:inet_sock_set_state)", states)
    res.section("Kernel receive path of each packet", paths)
    res.section("Server netstat -napo, 1 s after close", snap)
    res.section("Server netstat -napo, 61 s after close", snap_after)
    flags = [p[2] for p in packets]
    res.check("3-way handshake: SYN, SYN-ACK, ACK", flags[:3] == ["S", "S.", "."],
              " ".join(flags[:3]))
    res.check("request and response arrive intact", task.done() and task.result().startswith(b"GET /")
              and resp.startswith(b"HTTP/1.1 200 OK"), resp.split(b"\r\n")[0].decode())
    syn_path = next((p for p in paths if p.startswith("server [S]")), "")
    res.check("a SYN on the server goes ip_rcv -> ip_local_deliver -> tcp_v4_rcv -> tcp_v4_do_rcv",
              "ip_rcv -> ip_local_deliver -> tcp_v4_rcv -> tcp_v4_do_rcv" in syn_path, syn_path)
    fin_path = next((p for p in paths if p.startswith("client [F") or p.startswith("client [FP")), "")
    res.check("the server's FIN reaches tcp_fin on the client", "tcp_fin" in fin_path, fin_path)
    want_client = ["SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]
    got_client = [s.split("-> ")[1] for s in states if " client " in s]
    res.check("client (passive closer): SYN_SENT, ESTABLISHED, CLOSE_WAIT, LAST_ACK, CLOSE",
              got_client == want_client, ", ".join(got_client))
    got_server = [s.split("-> ")[1] for s in states if " server " in s]
    res.check("server (active closer): ... FIN_WAIT1, FIN_WAIT2, TIME_WAIT, then CLOSE after 60 s",
              got_server[-4:] == ["FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE"], ", ".join(got_server))
    tw = [line for line in snap if "TIME_WAIT" in line]
    res.check("netstat shows the server's TIME_WAIT with its timer", bool(tw) and "timewait (" in tw[0],
              tw[0] if tw else "(none)")
    res.check("TIME_WAIT is gone after 60 s", not any("TIME_WAIT" in line for line in snap_after))
    res.data["packets"] = packets
    return res
