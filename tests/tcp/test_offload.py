"""TSO/GSO, GRO and checksum offload on a link (``World.link(..., offload=True)``), as over lo/veth.

A burst ``tcp_write_xmit`` computes leaves as one GSO packet, crosses the link whole, and the
receiver takes it as one skb and ACKs it once; counters still count segments. A link that
impairs per packet cuts GSO packets into their wire segments first. Default links: unchanged.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess

import pytest

from tcpdive.net.netns import NETIF_F_GRO, NETIF_F_OFFLOAD
from tcpdive.packet.checksum import csum_partial, pseudo_sum
from tcpdive.packet.gso import (
    CHECKSUM_PARTIAL,
    OffloadPacket,
    offload_packet,
    skb_checksum_help,
    skb_gso_segment,
)
from tcpdive.packet.ipv4 import ip_build, ip_parse
from tcpdive.packet.tcp import ACK, CWR, FIN, PSH, tcp_build
from tcpdive.sim.link import Pipe
from tcpdive.sim.loop import VirtualTimeLoop
from tcpdive.sim.world import World
from tcpdive.tcp.output import SK_GSO_MAX_SIZE, tcp_tso_segs
from tcpdive.tools.pcap import PcapWriter

_TH = struct.Struct("!HHIIBBHHH")
A, B = 0x0A000001, 0x0A000002


def tcp_fields(data: bytes):
    """(seq, ack, flags, payload length) of an IPv4+TCP datagram."""
    ihl = (data[0] & 15) * 4
    sport, dport, seq, ack, doff, flags, win, check, urg = _TH.unpack_from(data, ihl)
    return seq, ack, flags, len(data) - ihl - (doff >> 4) * 4


def transfer(nbytes: int, *, offload: bool, seed: int = 3, trace: bool = False, pcap=None,
             b_features: int | None = None, **link):
    """Send ``nbytes`` of random data a -> b; returns what b read and a record of the run."""
    w = World(seed=seed)
    a = w.host("a", "10.0.0.1")
    b = w.host("b", "10.0.0.2")
    lk = w.link(a, b, delay=0.0005, offload=offload, **link)
    if b_features is not None:
        b.devices["eth0"].set_features(b_features)
    wire: list[bytes] = []
    deliver = lk.ab.deliver
    lk.ab.deliver = lambda p: (wire.append(p), deliver(p))
    events: list[tuple[str, str, int, bytes, int]] = []
    if trace:
        for h in (a, b):
            h.trace.packet.attach(
                lambda net, dev, data, d, now, h=h: events.append(
                    (h.name, d, now, data, data.gso_segs if type(data) is OffloadPacket
                     and data.gso_size else 1)))
    if pcap is not None:
        pcap.attach([a, b], direction="both" if link.get("loss") else "out")
    ls = b.socket()
    ls.bind(("0.0.0.0", 5001))
    ls.listen(8)
    got = bytearray()
    server = {}

    async def sink():
        conn, _ = await ls.aaccept()
        server["sk"] = conn.sk
        while True:
            d = await conn.arecv(1 << 20)
            if not d:
                break
            got.extend(d)
        conn.close()

    b.spawn(sink())
    cs = a.socket()
    cs.connect(("10.0.0.2", 5001))
    payload = random.Random(seed).randbytes(nbytes)
    cs.sendall(payload)
    csk = cs.sk
    cs.close()
    w.run_for(10)
    return {"payload": payload, "got": bytes(got), "a": a, "b": b, "csk": csk,
            "ssk": server["sk"], "events": events, "link": lk, "wire": wire}


# ---- software GSO and checksum help -------------------------------------------------------

def _gso_packet(nseg: int, mss: int, flags: int = ACK | PSH, last_len: int | None = None):
    payload = bytes(range(256)) * ((nseg * mss) // 256 + 1)
    payload = payload[: (nseg - 1) * mss + (mss if last_len is None else last_len)]
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 7, 9)
    seg = tcp_build(A, B, 1000, 80, 0xFFFFFF00, 5, flags, 500, opts, payload, csum=False)
    return offload_packet(ip_build(A, B, 6, seg, 64, 0, 0xFFFE), mss, nseg, CHECKSUM_PARTIAL), payload


def test_skb_gso_segment_cuts_into_valid_wire_segments():
    pkt, payload = _gso_packet(5, 1000, ACK | PSH | FIN | CWR, last_len=321)
    segs = skb_gso_segment(pkt)
    assert len(segs) == 5 and all(type(s) is bytes for s in segs)
    body = b""
    for i, s in enumerate(segs):
        reason, iph = ip_parse(s)
        assert reason == 0 and iph.tot_len == len(s) and iph.id == (0xFFFE + i) & 0xFFFF
        seq, ack, flags, n = tcp_fields(s)
        assert seq == (0xFFFFFF00 + 1000 * i) & 0xFFFFFFFF and ack == 5
        assert n == (1000 if i < 4 else 321)
        assert bool(flags & (PSH | FIN)) == (i == 4)       # PSH and FIN only on the last
        assert bool(flags & CWR) == (i == 0)               # CWR only on the first
        assert csum_partial(s[20:], pseudo_sum(A, B, 6, len(s) - 20)) == 0xFFFF
        body += s[52:]
    assert body == payload


def test_skb_checksum_help_keeps_one_gso_packet_with_a_real_checksum():
    pkt, _ = _gso_packet(3, 1200)
    done = skb_checksum_help(pkt)
    assert type(done) is OffloadPacket and done.gso_size == 1200 and done.gso_segs == 3
    assert done.ip_summed != CHECKSUM_PARTIAL
    assert csum_partial(done[20:], pseudo_sum(A, B, 6, len(done) - 20)) == 0xFFFF


def test_pipe_carries_gso_packet_whole_as_its_segments_back_to_back():
    loop = VirtualTimeLoop()
    got = []
    p = Pipe(loop, lambda d: got.append((loop.now_us(), d)), delay=0.001, rate_bps=8e6)
    pkt, _ = _gso_packet(4, 1000)
    assert p.send(pkt)
    loop.run_until_idle()
    # 4 wire segments of 1052 bytes at 1 byte/us, then 1 ms of propagation
    assert got == [(4 * 1052 + 1000, pkt)]
    assert (p.sent, p.bytes, p.delivered, p.bytes_delivered) == (4, 4208, 4, 4208)


def test_pipe_queue_limit_counts_segments_and_drops_tail_segments():
    loop = VirtualTimeLoop()
    got = []
    p = Pipe(loop, got.append, rate_bps=8e6, queue_limit=3)
    pkt, payload = _gso_packet(5, 1000)
    assert p.send(pkt)
    loop.run_until_idle()
    assert len(got) == 3 and p.dropped_queue == 2            # cut, and the last two dropped
    assert [tcp_fields(s)[0] - 0xFFFFFF00 & 0xFFFFFFFF for s in got] == [0, 1000, 2000]


# ---- TCP over an offload link -------------------------------------------------------------

def test_bulk_over_offload_link_is_byte_exact_and_sends_bursts():
    r = transfer(3_000_000, offload=True, trace=True)
    assert r["got"] == r["payload"]
    out = [e for e in r["events"] if e[0] == "a" and e[1] == "out" and tcp_fields(e[3])[3]]
    assert sum(e[4] for e in out) == r["csk"].data_segs_out
    multi = [e for e in out if e[4] > 1]
    assert len(multi) > 0.8 * len(out)              # nearly every data packet is a burst
    assert max(len(e[3]) for e in out) <= 65535
    assert max(e[4] for e in out) > 20              # up to ~64 KB at a 1 ms RTT


def test_gso_sizes_follow_tcp_tso_autosize():
    w = World(seed=5)
    a = w.host("a", "10.0.0.1")
    b = w.host("b", "10.0.0.2")
    w.link(a, b, delay=0.0005, offload=True)
    ls = b.socket()
    ls.bind(("0.0.0.0", 5001))
    ls.listen(8)

    async def sink():
        conn, _ = await ls.aaccept()
        while await conn.arecv(1 << 20):
            pass

    b.spawn(sink())
    cs = a.socket()
    cs.connect(("10.0.0.2", 5001))
    sk = cs.sk
    seen = []

    def on_packet(net, dev, data, d, now):
        if d == "out" and type(data) is OffloadPacket and data.gso_size:
            mss = data.gso_size
            seen.append((data.gso_segs, tcp_tso_segs(sk, mss), len(data) - 52, mss))

    a.trace.packet.attach(on_packet)
    cs.sendall(b"z" * 2_000_000)
    cs.close()
    w.run_for(5)
    assert len(seen) > 20
    for segs, autosize, nbytes, mss in seen:
        assert 2 <= segs <= autosize                          # tcp_tso_segs caps the burst
        assert nbytes <= SK_GSO_MAX_SIZE and nbytes <= segs * mss
    # once cwnd is open the bursts reach the autosize goal (1 ms of pacing rate + the small
    # min_rtt bonus: the 64 KB cap here); before, half the cwnd (tcp_cwnd_test) bounds them
    full = [s for s in seen if s[0] == s[1]]
    assert len(full) > 10 and max(s[1] for s in full) == SK_GSO_MAX_SIZE // 1448


def test_receiver_acks_once_per_gro_skb():
    r = transfer(2_000_000, offload=True, trace=True)
    ev = r["events"]
    ins = [e for e in ev if e[0] == "b" and e[1] == "in" and tcp_fields(e[3])[3]]
    acks = [e for e in ev if e[0] == "b" and e[1] == "out" and not tcp_fields(e[3])[3]]
    multi = [e for e in ins if e[4] > 1]
    assert len(multi) > 20
    by_time = {}
    for e in acks:
        by_time.setdefault(e[2], []).append(tcp_fields(e[3])[1])
    for e in multi:
        seq, _, flags, n = tcp_fields(e[3])
        # the ACK goes out at once (more than one full segment unacked) and covers the skb
        assert (seq + n + (flags & FIN)) & 0xFFFFFFFF in by_time.get(e[2], []), e[2]
    # one ACK per GRO skb, not one per two segments: far fewer ACKs than data segments
    assert len(acks) <= len(ins) + 5
    assert len(acks) < r["ssk"].data_segs_in / 10


def test_segment_counters_match_a_run_without_offload():
    on = transfer(1_500_000, offload=True)
    off = transfer(1_500_000, offload=False)
    assert on["got"] == on["payload"] and off["got"] == off["payload"]
    assert on["csk"].data_segs_out == off["csk"].data_segs_out
    assert on["ssk"].data_segs_in == on["csk"].data_segs_out
    assert on["ssk"].data_segs_in == off["ssk"].data_segs_in
    ma, mb = on["a"].mib, on["b"].mib
    # TcpOutSegs counts pcount per TSO packet; IP sends far fewer datagrams
    assert ma["TcpExtTCPOrigDataSent"] == on["csk"].data_segs_out
    assert ma["TcpOutSegs"] >= on["csk"].data_segs_out
    assert ma["IpOutRequests"] < ma["TcpOutSegs"] / 10
    assert on["ssk"].segs_in >= on["ssk"].data_segs_in
    assert mb["TcpInSegs"] < on["ssk"].segs_in / 10       # Linux counts a GRO skb once
    lk = on["link"]
    assert lk.ab.delivered == lk.ab.sent >= on["csk"].data_segs_out   # wire segments


def test_offload_link_with_loss_segments_in_software_and_stays_byte_exact():
    on = transfer(1_000_000, offload=True, trace=True, loss=0.02)
    assert on["got"] == on["payload"]
    assert on["link"].ab.dropped_loss > 5 and on["csk"].total_retrans > 0
    # the link carried only MSS wire segments with real checksums ...
    assert len(on["wire"]) > on["csk"].data_segs_out * 0.9
    for p in on["wire"]:
        assert type(p) is bytes and tcp_fields(p)[3] <= 1448
        assert csum_partial(p[20:], pseudo_sum(A, B, 6, len(p) - 20)) == 0xFFFF
    # ... and GRO merged the in-order runs between the holes again
    ins = [e for e in on["events"] if e[0] == "b" and e[1] == "in" and tcp_fields(e[3])[3]]
    assert sum(e[4] for e in ins) == len([p for p in on["wire"] if tcp_fields(p)[3]])
    assert sum(1 for e in ins if e[4] > 1) > 10


def test_software_gso_gives_the_segments_of_a_stack_without_offload():
    # the receiver without GRO: what reaches it is exactly what the no-offload stack sends
    on = transfer(1_000_000, offload=True, trace=True, loss=0.02,
                  b_features=NETIF_F_OFFLOAD & ~NETIF_F_GRO)
    assert on["got"] == on["payload"]
    off = transfer(1_000_000, offload=False, trace=True, loss=0.02)
    # software GSO gives the very segments the no-offload stack sends, so the runs agree
    rx_on = [e[2:4] for e in on["events"] if e[0] == "b" and e[1] == "in"]
    rx_off = [e[2:4] for e in off["events"] if e[0] == "b" and e[1] == "in"]
    assert rx_on == rx_off


def test_offload_link_with_corruption_still_detects_bad_checksums():
    r = transfer(400_000, offload=True, corrupt=0.02)
    assert r["got"] == r["payload"]
    assert r["b"].mib["TcpInCsumErrors"] > 0


def test_default_link_sends_mss_segments_with_real_checksums():
    r = transfer(300_000, offload=False, trace=True)
    for e in r["events"]:
        assert type(e[3]) is bytes
        assert csum_partial(e[3][20:], pseudo_sum(*struct.unpack_from("!II", e[3], 12), 6,
                                                  len(e[3]) - 20)) == 0xFFFF
        assert tcp_fields(e[3])[3] <= 1448


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark not installed (CI installs it: apt-get install tshark)")
@pytest.mark.parametrize("loss", [0.0, 0.02])
def test_tshark_reads_offload_capture_with_good_checksums(tmp_path, loss):
    path = tmp_path / "gso.pcap"
    pcap = PcapWriter(str(path))
    # without loss the sender's GSO packets, with loss also the receiver's GRO ones
    r = transfer(300_000, offload=True, pcap=pcap, loss=loss)
    pcap.close()
    assert r["got"] == r["payload"]
    res = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
         "-e", "_ws.malformed", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
         "-e", "ip.len"],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert len(rows) > 10
    for num, malformed, ip_ck, tcp_ck, _len in rows:
        assert not malformed, f"frame {num} malformed"
        assert ip_ck == "1" and tcp_ck == "1", f"frame {num}: {ip_ck} {tcp_ck}"
    assert max(int(row[4]) for row in rows) > 10 * 1500        # GSO packets, as on lo


def test_offload_links_through_a_nat_router_stay_byte_exact():
    from tcpdive.sim.middlebox import Nat

    w = World(seed=4)
    srv, nat, c = w.host("srv", "203.0.113.1"), w.host("nat", "198.51.100.1"), w.host("c", "172.16.0.5")
    w.link(nat, srv, delay=0.001, offload=True)
    w.link(c, nat, delay=0.001, b_addr="198.51.100.1", offload=True)
    n = Nat(nat, "198.51.100.1", "172.16.0.0/16")
    seen = []
    srv.trace.packet.attach(lambda net, dev, data, d, now: seen.append(data) if d == "in" else None)
    data = random.Random(1).randbytes(600_000)
    ls = srv.socket()
    ls.bind(("0.0.0.0", 5001))
    ls.listen(4)
    got = bytearray()

    async def echo():
        conn, _ = await ls.aaccept()
        while len(got) < len(data):
            d = await conn.arecv(1 << 20)
            if not d:
                break
            got.extend(d)
        await conn.asendall(bytes(got))
        conn.close()

    srv.spawn(echo())
    cs = c.socket()
    cs.connect(("203.0.113.1", 5001))
    cs.sendall(data)
    back = bytearray()
    while len(back) < len(data):
        d = cs.recv(1 << 20)
        if not d:
            break
        back.extend(d)
    cs.close()
    w.run_for(2)
    assert bytes(got) == data and bytes(back) == data and n.translated > 0
    # the router forwards segments, but the server's offload device gets them as sent
    sa = int.from_bytes(bytes([198, 51, 100, 1]), "big")
    assert all(int.from_bytes(p[12:16], "big") == sa for p in seen)


def test_offload_links_through_a_plain_router_keep_valid_checksums():
    """ip_forward used to turn a CHECKSUM_PARTIAL segment into plain bytes with its TCP
    checksum never filled in: the server counted TcpInCsumErrors and the SYN got no answer."""
    w = World(seed=4)
    c, r, s = w.host("c", "10.0.1.1"), w.host("r", "10.0.1.2"), w.host("s", "10.0.2.2")
    w.link(c, r, delay=0.001, a_addr="10.0.1.1", b_addr="10.0.1.2", offload=True)
    w.link(r, s, delay=0.001, a_addr="10.0.2.1", b_addr="10.0.2.2", offload=True)
    r.sysctl.set("net.ipv4.ip_forward", "1")
    s.replace_route(0, 0, "eth0", gw="10.0.2.1")
    ls = s.socket()
    ls.bind(("0.0.0.0", 5001))
    ls.listen(4)
    data = random.Random(2).randbytes(300_000)
    cs = c.socket()
    cs.connect(("10.0.2.2", 5001))
    conn, _ = ls.accept()
    cs.sendall(data)
    got = bytearray()
    while len(got) < len(data):
        got.extend(conn.recv(1 << 20))
    assert bytes(got) == data
    assert s.mib.get("TcpInCsumErrors", 0) == 0 and c.mib.get("TcpInCsumErrors", 0) == 0
    assert r.mib["IpForwDatagrams"] > 200


@pytest.mark.parametrize("link", [
    {"rate_bps": 50e6, "queue_limit": 60},             # GSO packets whole, drop-tail per segment
    {"rate_bps": 20e6, "queue_limit_bytes": 40_000},
    {"reorder": 0.05, "reorder_delay": 0.002},
    {"duplicate": 0.03},
    {"jitter": 0.0003},
], ids=["rate-queue", "rate-bytes", "reorder", "duplicate", "jitter"])
def test_offload_link_impairments_stay_byte_exact(link):
    r = transfer(800_000, offload=True, **link)
    assert r["got"] == r["payload"]


def test_gro_merges_plain_segments_arriving_together():
    # a sender without TSO, a receiver with GRO: bursts arrive in one instant and go up merged
    r = transfer(1_000_000, offload=False, trace=True, b_features=NETIF_F_GRO)
    assert r["got"] == r["payload"]
    ins = [e for e in r["events"] if e[0] == "b" and e[1] == "in" and tcp_fields(e[3])[3]]
    assert sum(e[4] for e in ins) == r["csk"].data_segs_out == r["ssk"].data_segs_in
    assert sum(1 for e in ins if e[4] > 1) > len(ins) // 2
    assert r["b"].mib["TcpInSegs"] < r["ssk"].segs_in / 4


def test_gro_merges_in_order_holds_until_the_instant_ends_and_keeps_order():
    from tcpdive.ktime import ManualClock
    from tcpdive.net.netns import NetDevice, Netns

    clock = ManualClock(1_000_000)
    net = Netns(clock, "b")
    dev = net.add_device(NetDevice("eth0", xmit=lambda d, nh: None))
    dev.set_features(NETIF_F_OFFLOAD)
    net.add_addr("eth0", "10.0.0.2", 24)
    seen = []
    net.trace.packet.attach(lambda n, d, data, direction, now: seen.append(data)
                            if direction == "in" else None)
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 7, 9)

    def seg(seq, n, flags=ACK, body=b"d"):
        return ip_build(A, B, 6, tcp_build(A, B, 1000, 80, seq, 1, flags, 100, opts, body * n))

    for p in (seg(0, 1000), seg(1000, 1000)):
        net.netif_receive(dev, p)
    assert seen == []                                  # held until the poll ends
    ack = seg(2000, 0)
    net.netif_receive(dev, ack)                        # same flow: flushes the held run first
    bad = bytearray(seg(2000, 1000))
    bad[-1] ^= 1
    for p in (seg(2000, 1000), seg(3000, 1000), bytes(bad), seg(4000, 1000),
              seg(5000, 500, ACK | PSH)):
        net.netif_receive(dev, p)
    clock.run_until(clock.now_us())                    # the instant ends: napi_gro_flush
    kinds = [(tcp_fields(p)[0], tcp_fields(p)[3], p.gso_segs if type(p) is OffloadPacket else 1)
             for p in seen]
    assert kinds == [(0, 2000, 2), (2000, 0, 1), (2000, 2000, 2), (2000, 1000, 1),
                     (4000, 1500, 2)]
    assert tcp_fields(seen[-1])[2] & PSH                # PSH of the last merged segment kept
    for p in seen:                                     # a capture gets real checksums
        assert csum_partial(p[20:], pseudo_sum(A, B, 6, len(p) - 20)) == 0xFFFF or p is seen[3]
