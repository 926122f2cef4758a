"""Fuzz: malformed packets at a listening and an established socket (issue #2).

No exception may escape ``netif_receive``; the established stream must still carry data
byte-exact afterwards; the error counters must rise.
"""

from __future__ import annotations

import random
import struct

from tcpdive.packet.checksum import ip_fast_csum, tcp_v4_check
from tcpdive.packet.ipv4 import ip2int

from .helpers import Net

N_PACKETS = 100_000


def _fix_ip_csum(pkt: bytearray) -> None:
    ihl = (pkt[0] & 15) * 4
    if len(pkt) < 20 or ihl < 20 or len(pkt) < ihl:
        return
    pkt[10:12] = b"\0\0"
    pkt[10:12] = ip_fast_csum(bytes(pkt[:ihl])).to_bytes(2, "big")


def _fix_tcp_csum(pkt: bytearray) -> None:
    ihl = (pkt[0] & 15) * 4
    if ihl < 20 or len(pkt) < ihl + 18:
        return
    seg = bytearray(pkt[ihl:])
    seg[16:18] = b"\0\0"
    saddr, daddr = struct.unpack_from("!II", pkt, 12)
    pkt[ihl + 16:ihl + 18] = tcp_v4_check(saddr, daddr, bytes(seg)).to_bytes(2, "big")


def mutate(rng: random.Random, base: bytes, protect=None) -> bytes:
    """Mutate ``base``; a result that ``protect`` says hits the live connection keeps a bad
    TCP checksum (a valid in-window segment would legitimately inject data into the stream)."""
    out = _mutate(rng, base)
    if protect is not None and protect(out) and len(out) >= 40:
        p = bytearray(out)
        p[36] ^= 0x5A                               # TCP checksum now wrong
        return bytes(p)
    return out


def _mutate(rng: random.Random, base: bytes) -> bytes:
    p = bytearray(base)
    kind = rng.randrange(8)
    if kind == 0:                                   # bit flips anywhere, checksums left wrong
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(p))
            p[i] ^= 1 << rng.randrange(8)
        return bytes(p)
    if kind == 1:                                   # truncation (IP tot_len now lies)
        return bytes(p[:rng.randrange(len(p))])
    if kind == 2:                                   # truncation with a consistent IP header
        p = p[:rng.randrange(20, len(p) + 1)]
        p[2:4] = len(p).to_bytes(2, "big")
        _fix_ip_csum(p)
        if rng.random() < 0.5:
            _fix_tcp_csum(p)
        return bytes(p)
    if kind == 3:                                   # bad TCP data offset
        p[32] = (rng.randrange(16) << 4) | (p[32] & 15)
    elif kind == 4:                                 # option lengths running past the header
        doff = (p[32] >> 4) * 4
        if doff > 20:
            i = 40 + rng.randrange(doff - 20)
            p[i] = rng.choice([2, 3, 4, 5, 8, 34, 254, rng.randrange(256)])
            if i + 1 < len(p):
                p[i + 1] = rng.choice([0, 1, 2, 40, 255, rng.randrange(256)])
    elif kind == 5:                                 # random flags / seq / ack / window
        p[33] = rng.randrange(256)
        if rng.random() < 0.5:
            p[24:28] = rng.randrange(2**32).to_bytes(4, "big")
        if rng.random() < 0.5:
            p[28:32] = rng.randrange(2**32).to_bytes(4, "big")
        p[34:36] = rng.randrange(2**16).to_bytes(2, "big")
    elif kind == 6:                                 # bit flips in the TCP header, valid csum
        for _ in range(rng.randint(1, 3)):
            i = 20 + rng.randrange(min(len(p), 60) - 20)
            p[i] ^= 1 << rng.randrange(8)
    else:                                           # IP header damage (version, ihl, len)
        i = rng.choice([0, 2, 3, 6, 9])
        p[i] = rng.randrange(256)
        if rng.random() < 0.5:
            _fix_ip_csum(p)
        return bytes(p)
    _fix_ip_csum(p)
    if rng.random() < 0.8:                          # most reach TCP with a valid checksum
        _fix_tcp_csum(p)
    return bytes(p)


def _template(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes, opts: bytes) -> bytes:
    from tcpdive.packet.ipv4 import ip_build
    from tcpdive.packet.tcp import tcp_build

    seg = tcp_build(ip2int(src), ip2int(dst), sport, dport, seq, ack, flags, 502, opts, payload)
    return ip_build(ip2int(src), ip2int(dst), 6, seg)


def test_fuzz_listener_and_established():
    n = Net(delay=0.005, seed=3)
    cs, ss, ls = n.connect_pair(80)
    cs.sendall(b"before")
    assert ss.recv(100) == b"before"
    cport = cs.getsockname()[1]
    sk = cs.sk
    dev = n.dev(n.s)
    ts = struct.pack("!BBBBII", 1, 1, 8, 10, 12345, 0)
    sack_ts = b"\x01\x01\x05\x0a" + struct.pack("!II", sk.snd_nxt, sk.snd_nxt + 10) + ts
    templates = [
        # SYN to the listener with full options
        _template("10.0.0.1", "10.0.0.2", 40000, 80, 1000, 0, 0x02, b"",
                  b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", 1, 0) + b"\x01\x03\x03\x07"),
        # ACK / data / FIN / RST on the established 4-tuple, in window
        _template("10.0.0.1", "10.0.0.2", cport, 80, sk.snd_nxt, sk.rcv_nxt, 0x18, b"x" * 40, ts),
        _template("10.0.0.1", "10.0.0.2", cport, 80, sk.snd_nxt, sk.rcv_nxt, 0x10, b"", sack_ts),
        _template("10.0.0.1", "10.0.0.2", cport, 80, sk.snd_nxt + 5000, sk.rcv_nxt, 0x11, b"y", ts),
        _template("10.0.0.1", "10.0.0.2", cport, 80, sk.snd_nxt + 100, 0, 0x04, b"", b""),
        # ACK to the listener (cookie check path)
        _template("10.0.0.1", "10.0.0.2", 40001, 80, 5, 77, 0x10, b"", ts),
    ]
    before = dict(n.s.mib.nstat())
    rng = random.Random(12345)
    n.cap.segs.clear()
    def hits_conn(pkt: bytes) -> bool:
        if len(pkt) < 24:
            return False
        ihl = (pkt[0] & 15) * 4
        return len(pkt) >= ihl + 4 and struct.unpack_from("!HH", pkt, ihl) == (cport, 80)

    for i in range(N_PACKETS):
        n.s.netif_receive(dev, mutate(rng, rng.choice(templates), hits_conn))
        if i % 5000 == 4999:
            n.run_for(0.001)                         # let replies and timers run now and then
    n.run_for(1)
    after = dict(n.s.mib.nstat())
    for name in ("TcpInCsumErrors", "TcpInErrs", "IpInHdrErrors"):
        assert after.get(name, 0) > before.get(name, 0), name
    # nothing that reached the connection had a valid checksum: it must be untouched
    assert ss.sk.state == 1 and cs.sk.state == 1
    if True:
        data = random.Random(1).randbytes(200_000)
        cs.sendall(data)
        got = bytearray()
        while len(got) < len(data):
            got += ss.recv(65536)
        assert bytes(got) == data
        ss.sendall(data[:50_000])
        got = bytearray()
        while len(got) < 50_000:
            got += cs.recv(65536)
        assert bytes(got) == data[:50_000]
    # a fresh connection to the listener still works
    c2 = n.c.socket()
    c2.connect(("10.0.0.2", 80))
    s2, _ = ls.accept()
    c2.sendall(b"after")
    assert s2.recv(10) == b"after"
