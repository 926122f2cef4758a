"""pcap sink: a capture of a whole exchange reads back, and Wireshark finds it well formed."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from tcpdive.sim.world import World
from tcpdive.tools.pcap import LINKTYPE_RAW, PcapWriter, read_pcap


def capture(path, direction="out"):
    w = World(seed=1)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=0.005)
    seen = []
    for h in (c, s):
        h.trace.packet.attach(lambda net, dev, data, d, now: seen.append((d, now, data)))
    pcap = PcapWriter(path).attach([c, s], direction=direction)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)

    async def server():
        conn, _ = await ls.aaccept()
        await conn.arecv(100)
        await conn.asendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 5000)
        conn.close()

    s.spawn(server())
    cs = c.socket()
    cs.connect(("10.0.0.2", 80))
    cs.sendall(b"GET / HTTP/1.1\r\n\r\n")
    while cs.recv(4096):
        pass
    cs.close()
    w.run_for(2.0)
    pcap.close()
    return [(now, data) for d, now, data in seen if direction == "both" or d == direction]


def test_roundtrip_count_and_timestamps(tmp_path):
    path = tmp_path / "x.pcap"
    sent = capture(str(path))
    f = read_pcap(str(path))
    assert f.linktype == LINKTYPE_RAW and f.snaplen == 65535 and f.version == (2, 4)
    assert len(f) == len(sent) > 8
    assert [(r.ts_us, r.data) for r in f] == sent
    assert f[0].ts_us == 0 and f[1].ts_us == 5000        # SYN at 0, SYN-ACK 5 ms later
    assert all(r.orig_len == len(r.data) for r in f)


def test_in_direction_and_file_object():
    buf = io.BytesIO()
    sent = capture(buf, direction="in")
    buf.seek(0)
    f = read_pcap(buf)
    assert [(r.ts_us, r.data) for r in f] == sent
    assert f[0].ts_us == 5000                             # the SYN arrives after the delay


def test_snaplen_truncates(tmp_path):
    path = tmp_path / "s.pcap"
    w = PcapWriter(str(path), snaplen=40)
    w.write(b"\x45" + b"\0" * 99, 1_234_567)
    w.close()
    (r,) = read_pcap(str(path)).packets
    assert len(r.data) == 40 and r.orig_len == 100 and r.ts_us == 1_234_567


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark not installed (CI installs it: apt-get install tshark)")
def test_tshark_finds_no_malformed_packets_and_good_checksums(tmp_path):
    path = tmp_path / "w.pcap"
    sent = capture(str(path))
    res = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
         "-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "ip.checksum.status",
         "-e", "tcp.checksum.status", "-e", "frame.time_relative"],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert len(rows) == len(sent)
    for num, malformed, _sev, ip_ck, tcp_ck, _t in rows:
        assert not malformed, f"frame {num} malformed"
        assert ip_ck == "1", f"frame {num}: IP checksum status {ip_ck}"  # 1 = good, 0 = bad
        assert tcp_ck == "1", f"frame {num}: TCP checksum status {tcp_ck}"
    assert [float(r[5]) for r in rows] == pytest.approx([t / 1e6 for t, _ in sent])
