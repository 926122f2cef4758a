"""Fuzz the newer paths: TCP Fast Open, MD5 signatures, urgent data, ECN, ICMP errors and
PMTU, IP fragments (local and forwarded), and a BBR sender's ACK processing.

Each family throws ``N_PER_FAMILY`` mutated packets (seeded ``random.Random``, so every run
is the same; virtual time advances 1 ms every 1000 packets, so it is bounded too) at the
sockets of one world, straight into ``netif_receive`` as tests/tcp/test_fuzz.py does. No
exception may escape the stack; afterwards the live connection of each world must still carry
data byte-exact both ways and the drop counters (Linux's names) must have moved.

Sockets that are allowed to break are driven from a peer that does not exist (``FAKE``): the
test plays the peer by injecting segments, the victim's replies die at the client host
(IpInAddrErrors). The live connection between the two real hosts is *protected*: a mutated
packet that would reach it with a valid checksum and carry bytes that differ from the stream's
own future bytes, or SYN/RST/FIN, or a timestamp option (a TSval from the future would wedge
it by PAWS), gets its TCP checksum broken (a valid segment may legitimately inject data; that
is not a stack bug). Its ends set SO_OOBINLINE, so a fuzzed urgent pointer cannot take a byte
out of the stream either.
"""

from __future__ import annotations

import random
import struct

from tcpdive.packet.checksum import csum_partial, tcp_v4_check
from tcpdive.packet.ipv4 import int2ip, ip2int, ip_build
from tcpdive.packet.tcp import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, tcp_build
from tcpdive.sim.world import World
from tcpdive.socket import SO_OOBINLINE, SOL_SOCKET
from tcpdive.tcp import sock as S
from tcpdive.tcp.md5 import MD5_OPTION, TCP_MD5SIG, pack_tcp_md5sig, tcp_md5_fill

from .helpers import Net
from .test_fuzz import _fix_ip_csum as fix_ip_csum
from .test_fuzz import _mutate

N_PER_FAMILY = 40_000          # packets per template family (7 families: 280k packets)
SOL_TCP = 6
TCP_CONGESTION = 13
TCP_FASTOPEN = 23
CLIENT, SERVER, FAKE = "10.0.0.1", "10.0.0.2", "10.0.0.3"
TS = struct.pack("!BBBBII", 1, 1, 8, 10, 12345, 0)
SYN_OPTS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", 1, 0) + b"\x01\x03\x03\x07"


# ---- packets ------------------------------------------------------------------------------------

def tcp_pkt(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
            payload: bytes = b"", opts: bytes = b"", urg: int = 0, tos: int = 0, win: int = 502,
            md5key: bytes | None = None) -> bytes:
    s, d = ip2int(src), ip2int(dst)
    if md5key is not None:
        opts = MD5_OPTION + opts
    seg = tcp_build(s, d, sport, dport, seq, ack, flags, win, opts, payload, urg)
    if md5key is not None:
        seg = tcp_md5_fill(seg, md5key, s, d, 24)
    return ip_build(s, d, 6, seg, tos=tos)


def fix_l4_csum(p: bytearray) -> None:
    """Recompute the TCP or ICMP checksum of an unfragmented datagram."""
    ihl = (p[0] & 15) * 4
    if ihl < 20 or len(p) < ihl + 4:
        return
    if p[9] == 6 and len(p) >= ihl + 18:
        seg = bytearray(p[ihl:])
        seg[16:18] = b"\0\0"
        saddr, daddr = struct.unpack_from("!II", p, 12)
        p[ihl + 16:ihl + 18] = tcp_v4_check(saddr, daddr, bytes(seg)).to_bytes(2, "big")
    elif p[9] == 1:
        p[ihl + 2:ihl + 4] = b"\0\0"
        p[ihl + 2:ihl + 4] = (~csum_partial(bytes(p[ihl:])) & 0xFFFF).to_bytes(2, "big")


def feature_mutate(rng: random.Random, base: bytes) -> bytes:
    """Mutations aimed at the new paths: urgent pointer, ECN bits, ECE/CWR/URG flags, option
    bytes of TFO / MD5 / SACK, IP fragment fields. Checksums mostly fixed after."""
    p = bytearray(base)
    if len(p) < 20:
        return base
    ihl = (p[0] & 15) * 4
    t = ihl                                        # TCP header
    k = rng.randrange(7)
    if k == 0 and len(p) >= t + 20:               # URG with a random urgent pointer
        p[t + 13] |= URG
        p[t + 18:t + 20] = rng.choice([0, 1, 2, rng.randrange(2**16), 0xFFFF]).to_bytes(2, "big")
    elif k == 1:                                  # ECN codepoint in TOS, ECE/CWR in flags
        p[1] = (p[1] & ~3) | rng.randrange(4)
        if len(p) >= t + 14:
            p[t + 13] ^= rng.choice([ECE, CWR, ECE | CWR, 0])
    elif k == 2 and len(p) >= t + 20:             # an option byte (TFO cookie, MD5, SACK) changed
        doff = (p[t + 12] >> 4) * 4
        if doff > 20 and len(p) >= t + doff:
            i = t + 20 + rng.randrange(doff - 20)
            p[i] = rng.randrange(256)
    elif k == 3:                                  # IP fragment fields
        p[6:8] = (rng.choice([0, 0x2000, 0x4000, 0x6000]) | rng.choice(
            [0, 1, 2, rng.randrange(0x2000), 0x1FFF])).to_bytes(2, "big")
    elif k == 4 and len(p) >= t + 20:             # SACK block with random edges replacing options
        doff = (p[t + 12] >> 4) * 4
        if doff >= 32 and len(p) >= t + doff:
            blk = struct.pack("!BBBBII", 1, 1, 5, 10, rng.randrange(2**32), rng.randrange(2**32))
            p[t + 20:t + 32] = blk
    elif k == 5 and len(p) >= t + 16:             # window 0 / huge, ack anywhere
        p[t + 14:t + 16] = rng.choice([0, 1, 0xFFFF]).to_bytes(2, "big")
        if rng.random() < 0.5:
            p[t + 8:t + 12] = rng.randrange(2**32).to_bytes(4, "big")
    else:                                         # payload cut at a random length (tot_len kept honest)
        p = p[:rng.randrange(ihl, len(p) + 1)]
        p[2:4] = len(p).to_bytes(2, "big")
    fix_ip_csum(p)
    if rng.random() < 0.9:
        fix_l4_csum(p)
    return bytes(p)


def _generic_ok(p: bytes) -> bool:
    """test_fuzz's mutator wants a 20-byte IP header and the whole TCP header."""
    return len(p) >= 40 and p[0] == 0x45 and len(p) >= 20 + (p[32] >> 4) * 4


def mutate(rng: random.Random, base: bytes) -> bytes:
    """Half the generic mutations of test_fuzz, half the feature ones (both in a row sometimes)."""
    r = rng.random()
    if r < 0.4 and _generic_ok(base):
        return _mutate(rng, base)
    if r < 0.85:
        return feature_mutate(rng, base)
    out = feature_mutate(rng, base)
    return _mutate(rng, out) if _generic_ok(out) else out


class Live:
    """The protected connection: ``future[d]`` is what direction d (0 = client->server) will
    carry from sequence ``base[d]`` on."""

    def __init__(self, cs, ss, future_c: bytes, future_s: bytes) -> None:
        self.cs, self.ss = cs, ss
        (ca, cp), (sa, sp) = cs.getsockname(), cs.getpeername()
        self.tuples = {(ip2int(ca), cp, ip2int(sa), sp): 0, (ip2int(sa), sp, ip2int(ca), cp): 1}
        self.base = (cs.sk.snd_nxt, ss.sk.snd_nxt)
        self.future = (future_c, future_s)

    def protect(self, pkt: bytes) -> bytes:
        """Break the TCP checksum of a packet that would really change the live stream."""
        if len(pkt) < 20:
            return pkt
        ihl = (pkt[0] & 15) * 4
        if pkt[9] != 6 or ihl < 20 or len(pkt) < ihl + 20:
            return pkt
        saddr, daddr = struct.unpack_from("!II", pkt, 12)
        sport, dport, seq = struct.unpack_from("!HHI", pkt, ihl)
        d = self.tuples.get((saddr, sport, daddr, dport))
        if d is None:
            return pkt
        doff = (pkt[ihl + 12] >> 4) * 4
        tot = struct.unpack_from("!H", pkt, 2)[0]
        payload = pkt[ihl + doff:tot]
        fl = pkt[ihl + 13]
        # a timestamp from the future would legitimately wedge it (PAWS), so none gets in
        bad = fl & (SYN | RST | FIN) or b"\x08\x0a" in pkt[ihl + 20:ihl + doff]
        if payload and not bad:
            off = (seq - self.base[d]) & 0xFFFFFFFF
            bad = self.future[d][off:off + len(payload)] != payload
        if not bad:
            return pkt
        p = bytearray(pkt)
        p[ihl + 16] ^= 0x5A
        return bytes(p)

    def check_stream(self, n) -> None:
        """Both directions deliver their future bytes exactly."""
        cs, ss = self.cs, self.ss
        assert cs.sk.state == S.TCP_ESTABLISHED and ss.sk.state == S.TCP_ESTABLISHED
        for snd, rcv, data in ((cs, ss, self.future[0]), (ss, cs, self.future[1])):
            snd.sendall(data)
            got = bytearray()
            while len(got) < len(data):
                chunk = rcv.recv(65536)
                assert chunk, "EOF on the live stream"
                got += chunk
            assert bytes(got) == data


class Victim:
    """A server-side connection with the nonexistent peer FAKE, driven by injected segments."""

    def __init__(self, n, host, dev, ls, sport: int, dport: int = 80, syn_opts: bytes = SYN_OPTS,
                 md5key: bytes | None = None, ecn: bool = False, complete: bool = True) -> None:
        self.host, self.dev, self.sport, self.dport = host, dev, sport, dport
        self.md5key = md5key
        self.synack = None
        self.iss = 7_000_000 + sport * 1000
        host.trace.packet.attach(self._on)
        fl = SYN | (ECE | CWR if ecn else 0)
        host.netif_receive(dev, tcp_pkt(FAKE, int2ip(host.primary_addr()), sport, dport, self.iss, 0,
                                        fl, opts=syn_opts, md5key=md5key))
        host.trace.packet.detach(self._on)
        self.snd_nxt = self.iss + 1
        self.rcv_nxt = (self.synack + 1) if self.synack is not None else 0
        self.sock = None
        if complete and self.synack is not None:
            self.inject(ACK, b"")
            ls.setblocking(False)
            while True:                                  # children of fuzzed SYNs queue too
                try:
                    so, peer = ls.accept()
                except OSError:
                    break
                if peer[1] == sport:
                    self.sock = so
                    break
                so.close()

    def _on(self, net, dev, data, direction, now_us) -> None:
        if direction == "out" and data[9] == 6 and data[16:20] == bytes(map(int, FAKE.split("."))):
            ihl = (data[0] & 15) * 4
            if data[ihl + 13] & SYN:
                self.synack = struct.unpack_from("!I", data, ihl + 4)[0]

    def pkt(self, flags: int, payload: bytes = b"", opts: bytes = TS, urg: int = 0, tos: int = 0,
            seq: int | None = None, ack: int | None = None, win: int = 502) -> bytes:
        return tcp_pkt(FAKE, int2ip(self.host.primary_addr()), self.sport, self.dport,
                       self.snd_nxt if seq is None else seq,
                       self.rcv_nxt if ack is None else ack, flags, payload, opts, urg, tos, win,
                       self.md5key)

    def inject(self, flags: int, payload: bytes = b"") -> None:
        self.host.netif_receive(self.dev, self.pkt(flags, payload))
        self.snd_nxt += len(payload)


def barrage(n, host, dev, rng: random.Random, count: int, make, protect=None,
            every=None) -> None:
    """``count`` mutated packets from ``make(rng)`` into ``host``; 1 ms of virtual time every
    1000 packets; ``every(i)`` is called every 1000 packets to refresh victims."""
    for i in range(count):
        pkt = mutate(rng, make(rng))
        if protect is not None:
            pkt = protect(pkt)
        host.netif_receive(dev, pkt)
        if i % 1000 == 999:
            n.run_for(0.001)
            if every is not None:
                every(i)
    n.run_for(0.5)


def moved(before: dict, after: dict, *names: str) -> None:
    for name in names:
        assert after.get(name, 0) > before.get(name, 0), (name, before.get(name, 0))


def live_pair(n, ls, seed: int, client_setup=None, client=None, server: str = SERVER):
    cs = (client or n.c).socket()
    if client_setup is not None:
        client_setup(cs)
    cs.connect((server, 80))
    ss, _ = ls.accept()
    for so in (cs, ss):             # a fuzzed URG pointer must not pull a byte out of the stream
        so.setsockopt(SOL_SOCKET, SO_OOBINLINE, 1)
    cs.sendall(b"before")
    assert ss.recv(100) == b"before"
    r = random.Random(seed)
    return Live(cs, ss, r.randbytes(60_000), r.randbytes(30_000))


# ---- TCP Fast Open --------------------------------------------------------------------------------

def test_fuzz_fastopen_listener():
    from .test_fastopen import expected_cookie

    n = Net(delay=0.005, seed=5)
    n.s.sysctl.set("net.ipv4.tcp_fastopen", 0x603)        # server w/o sockopt, no cookie needed
    ls = n.listener(80, backlog=64)
    ls2 = n.s.socket()
    ls2.bind(("0.0.0.0", 81))
    ls2.setsockopt(SOL_TCP, TCP_FASTOPEN, 16)
    ls2.listen(16)
    live = live_pair(n, ls, 1)
    dev = n.dev(n.s)
    cookie = bytes.fromhex(expected_cookie(FAKE, SERVER, n.s.sysctl.tcp_fastopen_key))
    tfo_opts = [
        b"\x22\x0a" + cookie,                                    # cookie (kind 34)
        b"\x22\x02",                                             # cookie request
        b"\xfe\x0c\xf9\x89" + cookie,                            # experimental, magic 0xF989
        b"\xfe\x04\xf9\x89",                                     # experimental request
        b"\x22\x06" + cookie[:4],                                # short cookie
    ]

    def make(rng):
        sport = rng.randrange(30000, 30400)
        opts = b"\x02\x04\x05\xb4" + rng.choice(tfo_opts)
        if rng.random() < 0.5:
            opts += b"\x01\x01\x04\x02"
        payload = rng.randbytes(rng.choice([0, 1, 100, 1400]))
        return tcp_pkt(FAKE, SERVER, sport, rng.choice([80, 81]), rng.randrange(2**32), 0,
                       SYN | rng.choice([0, 0, FIN, PSH, URG, ECE | CWR]), payload, opts,
                       urg=rng.randrange(4))

    def every(i):
        for lsock in (ls, ls2):                              # accept and close TFO children
            lsock.setblocking(False)
            for _ in range(20):
                try:
                    c, _ = lsock.accept()
                except OSError:
                    break
                c.setblocking(False)
                try:
                    c.recv(65536)
                except OSError:
                    pass
                c.close()

    before = dict(n.s.mib.nstat())
    barrage(n, n.s, dev, random.Random(101), N_PER_FAMILY, make, live.protect, every)
    after = dict(n.s.mib.nstat())
    moved(before, after, "TcpExtTCPFastOpenPassive", "TcpExtTCPFastOpenCookieReqd",
          "TcpInCsumErrors", "TcpInErrs")
    live.check_stream(n)


# ---- MD5 -------------------------------------------------------------------------------------------

def test_fuzz_md5_listener_and_established():
    n = Net(delay=0.005, seed=6)
    ls = n.s.socket()
    ls.bind(("0.0.0.0", 80))
    for peer in (CLIENT, FAKE):
        ls.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(peer, b"secret"))
    ls.listen(64)
    live = live_pair(n, ls, 2, lambda cs: cs.setsockopt(
        SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"secret")))
    dev = n.dev(n.s)
    cport = live.cs.getsockname()[1]
    victims = [Victim(n, n.s, dev, ls, 41000, md5key=b"secret")]
    assert victims[0].sock is not None
    fut = live.future[0]

    def make(rng):
        r = rng.random()
        key = rng.choice([b"secret", b"secret", b"wrong", None])
        if r < 0.3:
            return tcp_pkt(FAKE, SERVER, rng.randrange(42000, 42100), 80, rng.randrange(2**32), 0,
                           SYN, opts=SYN_OPTS[:16], md5key=key)
        if r < 0.6:
            v = victims[-1]
            fl = rng.choice([ACK, ACK | PSH, ACK | FIN, RST, ACK | URG])
            return v.pkt(fl, rng.randbytes(rng.choice([0, 10, 500])), urg=rng.randrange(600))
        seq = live.base[0] + rng.choice([0, 0, 100, 70000])
        off = (seq - live.base[0]) & 0xFFFFFFFF
        pay = fut[off:off + rng.choice([0, 40, 400])]
        return tcp_pkt(CLIENT, SERVER, cport, 80, seq, live.ss.sk.snd_nxt,
                       ACK | PSH, pay, md5key=key)

    def every(i):
        if i % 5000 == 4999:
            victims.append(Victim(n, n.s, dev, ls, 41000 + i // 1000, md5key=b"secret"))

    before = dict(n.s.mib.nstat())
    barrage(n, n.s, dev, random.Random(102), N_PER_FAMILY, make, live.protect, every)
    after = dict(n.s.mib.nstat())
    moved(before, after, "TcpExtTCPMD5Failure", "TcpExtTCPMD5NotFound", "TcpInCsumErrors")
    live.check_stream(n)


# ---- sockets in every state, for urgent data and ECN -----------------------------------------------

class Zoo:
    """Server-side sockets with FAKE in SYN_RECV, ESTABLISHED, CLOSE_WAIT, FIN_WAIT1/2, LAST_ACK,
    TIME_WAIT; ``refresh`` makes a new set (new ports) and closes the old one."""

    def __init__(self, n, ls, ecn: bool = False) -> None:
        self.n, self.ls, self.ecn = n, ls, ecn
        self.dev = n.dev(n.s)
        self.port = 43000
        self.victims: list[Victim] = []
        from tcpdive.epoll import EPOLL_CTL_ADD, EPOLLET, EPOLLIN, EPOLLPRI, EPOLLRDHUP, Eventpoll

        self.ep = Eventpoll(n.s)                           # epoll watches every victim
        self.ep_add = lambda so, et: self.ep.epoll_ctl(
            EPOLL_CTL_ADD, so.fileno(), EPOLLIN | EPOLLPRI | EPOLLRDHUP | (EPOLLET if et else 0))
        self.ep_add(ls, False)
        self.events = 0
        self.refresh()

    def _new(self, complete: bool = True) -> Victim:
        self.port += 1
        v = Victim(self.n, self.n.s, self.dev, self.ls, self.port, ecn=self.ecn, complete=complete)
        self.victims.append(v)
        return v

    def refresh(self, _i: int = 0) -> None:
        from tcpdive.socket import MSG_OOB

        self.events += len(self.ep.epoll_wait(64, 0))
        for v in self.victims:
            if v.sock is not None:
                for flags in (MSG_OOB, 0):                 # read urgent and normal data
                    try:
                        v.sock.recv(65536, flags)
                    except OSError:
                        pass
                v.sock.close()                             # epoll forgets it (eventpoll_release)
        self.victims = []
        self._new(complete=False)                          # SYN_RECV
        est = self._new()
        if est.sock is not None:
            est.sock.setsockopt(SOL_SOCKET, SO_OOBINLINE, self.port & 1)
        self._new().inject(ACK | FIN)                      # CLOSE_WAIT
        fw1 = self._new()                                  # FIN_WAIT1
        if fw1.sock is not None:
            fw1.sock.close()
            fw1.sock = None
        fw2 = self._new()                                  # FIN_WAIT2 (not orphaned)
        if fw2.sock is not None:
            fw2.sock.shutdown(1)
            fw2.rcv_nxt += 1
            fw2.inject(ACK)
        la = self._new()                                   # LAST_ACK
        la.inject(ACK | FIN)
        la.snd_nxt += 1
        if la.sock is not None:
            la.sock.close()
            la.sock = None
        tw = self._new()                                   # TIME_WAIT (a timewait sock)
        if tw.sock is not None:
            tw.sock.close()
            tw.sock = None
            tw.rcv_nxt += 1
            tw.inject(ACK | FIN)
            tw.snd_nxt += 1
        for v in self.victims:
            if v.sock is not None:
                v.sock.setblocking(False)
                self.ep_add(v.sock, v.sport & 1)

    def make(self, rng: random.Random, flag_choices, tos_choices=(0,)) -> bytes:
        v = rng.choice(self.victims)
        fl = rng.choice(flag_choices)
        pay = rng.randbytes(rng.choice([0, 0, 1, 5, 300]))
        seq = v.snd_nxt + rng.choice([0, 0, 0, -1, 1, 3, 70000])
        return v.pkt(fl, pay, TS if rng.random() < 0.7 else b"", seq=seq,
                     urg=rng.choice([0, 1, len(pay), len(pay) + 1, rng.randrange(2**16)]),
                     tos=rng.choice(tos_choices))


def _states(host) -> set[int]:
    return {sk.state for sk in host.tcp_hashinfo.ehash.values() if hasattr(sk, "state")}


def test_fuzz_urgent_in_every_state():
    n = Net(delay=0.005, seed=7)
    ls = n.listener(80, backlog=64)
    live = live_pair(n, ls, 3)                             # OOBINLINE: urgent bytes stay inline
    dev = n.dev(n.s)
    zoo = Zoo(n, ls)
    cport = live.cs.getsockname()[1]
    fut = live.future[0]
    flags = [ACK | URG, ACK | URG | PSH, ACK | URG | FIN, URG, ACK | URG | FIN | PSH, SYN | URG]

    def make(rng):
        r = rng.random()
        if r < 0.15:                                       # at the listener
            return tcp_pkt(FAKE, SERVER, rng.randrange(50000, 50100), 80, rng.randrange(2**32),
                           0, SYN | URG, rng.randbytes(rng.choice([0, 3])), SYN_OPTS,
                           urg=rng.randrange(2**16))
        if r < 0.35:                                       # the live stream, its own bytes
            off = rng.choice([0, 0, 1, 100, 2000])
            pay = fut[off:off + rng.choice([1, 10, 300])]
            return tcp_pkt(CLIENT, SERVER, cport, 80, live.base[0] + off, live.ss.sk.snd_nxt,
                           ACK | URG | PSH, pay, urg=rng.choice([0, 1, len(pay), 5000]))
        return zoo.make(rng, flags)

    assert {S.TCP_NEW_SYN_RECV, S.TCP_ESTABLISHED, S.TCP_CLOSE_WAIT, S.TCP_FIN_WAIT1,
            S.TCP_FIN_WAIT2, S.TCP_LAST_ACK, S.TCP_TIME_WAIT} <= _states(n.s)
    before = dict(n.s.mib.nstat())
    barrage(n, n.s, dev, random.Random(103), N_PER_FAMILY, make, live.protect, zoo.refresh)
    after = dict(n.s.mib.nstat())
    moved(before, after, "TcpInCsumErrors", "TcpInErrs", "TcpExtTCPACKSkippedSeq")
    assert zoo.events > 0
    live.check_stream(n)


def test_fuzz_ecn_in_every_state():
    n = Net(delay=0.005, seed=8)
    n.c.sysctl.set("net.ipv4.tcp_ecn", 1)
    n.s.sysctl.set("net.ipv4.tcp_ecn", 1)
    ls = n.listener(80, backlog=64)
    live = live_pair(n, ls, 4)
    assert live.cs.sk.ecn_flags and live.ss.sk.ecn_flags
    dev = n.dev(n.s)
    zoo = Zoo(n, ls, ecn=True)
    cport = live.cs.getsockname()[1]
    fut = live.future[0]
    flags = [ACK, ACK | ECE, ACK | CWR, ACK | ECE | CWR, ACK | PSH | ECE, ACK | FIN | CWR,
             SYN | ECE | CWR, SYN | ECE, RST | ECE, ACK | FIN | ECE | CWR]

    def make(rng):
        r = rng.random()
        tos = rng.randrange(4)
        if r < 0.15:
            return tcp_pkt(FAKE, SERVER, rng.randrange(50000, 50100), 80, rng.randrange(2**32),
                           0, SYN | rng.choice([0, ECE, CWR, ECE | CWR, ECE | CWR | 0x100 >> 1]),
                           b"", SYN_OPTS, tos=tos)
        if r < 0.35:
            off = rng.choice([0, 0, 1, 100, 2000])
            pay = fut[off:off + rng.choice([0, 10, 300])]
            return tcp_pkt(CLIENT, SERVER, cport, 80, live.base[0] + off, live.ss.sk.snd_nxt,
                           rng.choice(flags[:5]), pay, tos=tos)
        return zoo.make(rng, flags, (0, 1, 2, 3))

    before = dict(n.s.mib.nstat())
    barrage(n, n.s, dev, random.Random(104), N_PER_FAMILY, make, live.protect, zoo.refresh)
    after = dict(n.s.mib.nstat())
    moved(before, after, "TcpInCsumErrors", "TcpInErrs", "IpExtInCEPkts", "IpExtInECT0Pkts",
          "IpExtInECT1Pkts")
    live.check_stream(n)


# ---- ICMP errors quoting our segments -----------------------------------------------------------

def icmp_pkt(src: str, dst: str, icmp_type: int, code: int, un: int, quote: bytes) -> bytes:
    body = struct.pack("!BBHI", icmp_type, code, 0, un & 0xFFFFFFFF) + quote
    body = body[:2] + (~csum_partial(body) & 0xFFFF).to_bytes(2, "big") + body[4:]
    return ip_build(ip2int(src), ip2int(dst), 1, body, df=False)


def quoted_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int = 0,
               flags: int = SYN, tail: int = 20) -> bytes:
    """The start of a datagram we sent: its IP header and ``tail`` bytes of its TCP header."""
    seg = tcp_build(ip2int(src), ip2int(dst), sport, dport, seq, ack, flags, 64240, SYN_OPTS)
    return ip_build(ip2int(src), ip2int(dst), 6, seg)[:20 + tail]


def icmp_mutate(rng: random.Random, pkt: bytes) -> bytes:
    """ICMP-aimed damage: type, code, MTU, quote truncated / foreign / odd inner header."""
    p = bytearray(pkt)
    k = rng.randrange(8)
    if k == 0:
        p[20] = rng.choice([3, 3, 11, 12, 4, 5, rng.randrange(256)])
        p[21] = rng.randrange(256)
    elif k == 1:                                     # quote cut anywhere
        p = p[:rng.randrange(20, len(p) + 1)]
    elif k == 2:                                     # inner ihl / version / protocol
        p[28] = rng.randrange(256)
        if rng.random() < 0.5:
            p[37] = rng.choice([6, 17, 1, rng.randrange(256)])
    elif k == 3:                                     # inner addresses / ports / sequence
        i = rng.choice([40, 44, 48, 49, 50, 52, 53, 54, 55])
        if i < len(p):
            p[i] = rng.randrange(256)
    elif k == 4:                                     # MTU field, rest of header
        p[24:28] = rng.randrange(2**32).to_bytes(4, "big")
    elif k == 5:                                     # bit flips, checksums left wrong
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(p))
            p[i] ^= 1 << rng.randrange(8)
        return bytes(p)
    elif k == 6:                                     # outer IP damage
        p[rng.choice([0, 2, 3, 6, 9])] = rng.randrange(256)
    # k == 7: as built
    if k != 6 or rng.random() < 0.5:
        p[2:4] = len(p).to_bytes(2, "big")
    fix_ip_csum(p)
    if rng.random() < 0.9:
        fix_l4_csum(p)
    return bytes(p)


def test_fuzz_icmp_errors_at_every_kind_of_socket():
    from tcpdive.socket import MSG_FASTOPEN

    n = Net(delay=0.005, seed=9)
    n.c.sysctl.set("net.ipv4.tcp_fastopen", 0x5)          # client, data in SYN without a cookie
    n.c.sysctl.set("net.ipv4.tcp_mtu_probing", 1)
    ls = n.listener(80, backlog=64)
    live = live_pair(n, ls, 5)
    dev = n.dev(n.c)
    cport = live.cs.getsockname()[1]
    cl = n.c.socket()                                     # a listener on the client host
    cl.bind(("0.0.0.0", 90))
    cl.listen(16)
    targets: list[tuple[int, int, int, int]] = []         # (sport, dport, daddr, seq) of our SYNs
    socks: list = []
    port = [52000]

    def refresh(_i: int = 0) -> None:
        for so in socks:
            so.close()
        socks.clear()
        del targets[:]
        for tfo in (False, True):
            so = n.c.socket()
            so.setblocking(False)
            try:
                if tfo:
                    so.sendto(b"tfo-data" * 20, MSG_FASTOPEN, (FAKE, 80))
                else:
                    so.connect((FAKE, 80))
            except OSError:
                pass
            socks.append(so)
            targets.append((so.getsockname()[1], 80, FAKE, so.sk.snd_una))
        port[0] += 1                                      # a request sock on the client's listener
        grab: list[int] = []

        def on(net, d, data, direction, now):
            if direction == "out" and data[9] == 6 and data[33] & SYN:
                grab.append(struct.unpack_from("!I", data, 24)[0])
        n.c.trace.packet.attach(on)
        n.c.netif_receive(dev, tcp_pkt(FAKE, CLIENT, port[0], 90, 5, 0, SYN, opts=SYN_OPTS))
        n.c.trace.packet.detach(on)
        if grab:
            targets.append((90, port[0], FAKE, grab[0]))

    refresh()
    assert {so.sk.state for so in socks} == {S.TCP_SYN_SENT}

    def make(rng):
        r = rng.random()
        if r < 0.35:
            sport, dport, daddr, seq = rng.choice(targets)
            seq += rng.choice([0, 0, 0, 1, -1, rng.randrange(2**32)])
        elif r < 0.7:                                     # the live connection
            sport, dport, daddr = cport, 80, SERVER
            seq = live.cs.sk.snd_una + rng.choice([0, 0, -1, 1, 100000])
        elif r < 0.8:                                     # the client's listener itself
            sport, dport, daddr, seq = 90, rng.randrange(2**16), FAKE, rng.randrange(2**32)
        else:                                             # foreign
            sport, dport, seq = rng.randrange(2**16), rng.randrange(2**16), rng.randrange(2**32)
            daddr = rng.choice([FAKE, SERVER, "192.0.2.7"])
        quote = quoted_tcp(CLIENT, daddr, sport, dport, seq, tail=rng.choice([8, 8, 20, 40, 4, 0]))
        t = rng.random()
        if t < 0.5:                                       # frag needed with any MTU
            icmp_type, code, un = 3, 4, rng.choice([0, 68, 552, 576, 1280, 1499,
                                                    rng.randrange(70001)]) & 0xFFFF
        elif t < 0.8:
            icmp_type, code, un = 3, rng.randrange(16), rng.randrange(2**16)
        else:
            icmp_type, code, un = 11, rng.randrange(2), 0
        return icmp_mutate(rng, icmp_pkt(rng.choice([SERVER, "10.0.0.9"]), CLIENT, icmp_type,
                                         code, un, quote))

    before = dict(n.c.mib.nstat())
    rng = random.Random(105)
    for i in range(N_PER_FAMILY):
        n.c.netif_receive(dev, make(rng))
        if i % 1000 == 999:
            n.run_for(0.001)
            refresh()
    n.run_for(0.5)
    after = dict(n.c.mib.nstat())
    moved(before, after, "IcmpInCsumErrors", "IcmpInErrors", "TcpExtOutOfWindowIcmps",
          "IcmpInDestUnreachs", "IcmpInTimeExcds", "IpInHdrErrors")
    live.check_stream(n)


# ---- IP fragments, to the host and through a forwarding router --------------------------------------

RC, RR, RS, RSRV = "10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"


class RouterNet:
    """client --(1500)-- router --(700)-- server; the router forwards (and fragments)."""

    def __init__(self, seed: int) -> None:
        self.w = World(seed=seed)
        self.c = self.w.host("client", RC)
        self.r = self.w.host("router", RR)
        self.s = self.w.host("server", RSRV)
        self.w.link(self.c, self.r, delay=0.005, a_addr=RC, b_addr=RR)
        self.w.link(self.r, self.s, delay=0.005, a_addr=RS, b_addr=RSRV)
        self.r.devices["eth1"].mtu = 700
        self.r.sysctl.set("net.ipv4.ip_forward", "1")
        self.r.replace_route(0, 0, "eth0")

    def run_for(self, seconds: float) -> None:
        self.w.run_for(seconds)


def ip_datagram(src: str, dst: str, proto: int, payload: bytes, frag: int = 0, ident: int = 0,
                options: bytes = b"", ttl: int = 64) -> bytes:
    """Any IPv4 datagram: fragment field (flags | offset in 8-byte units), IP options."""
    if len(options) & 3:
        options += b"\0" * (4 - (len(options) & 3))
    ihl = 5 + len(options) // 4
    hdr = bytearray(struct.pack("!BBHHHBBHII", 0x40 | ihl, 0, 4 * ihl + len(payload), ident, frag,
                                ttl, proto, 0, ip2int(src), ip2int(dst)) + options)
    fix_ip_csum(hdr)
    return bytes(hdr) + payload


def frag_mutate(rng: random.Random, pkt: bytes) -> bytes:
    p = bytearray(pkt)
    ihl = (p[0] & 15) * 4
    k = rng.randrange(6)
    if k == 0:                                       # flags and offset anywhere
        p[6:8] = (rng.choice([0, 0x2000, 0x4000, 0x6000, 0x8000, 0xE000])
                  | rng.choice([0, 1, 2, 3, 185, rng.randrange(0x2000), 0x1FFF])).to_bytes(2, "big")
    elif k == 1:                                     # cut short, length honest or not
        p = p[:rng.randrange(max(ihl, 20), len(p) + 1)]
        if rng.random() < 0.7:
            p[2:4] = len(p).to_bytes(2, "big")
    elif k == 2:                                     # ihl / tot_len lies
        p[rng.choice([0, 2, 3])] = rng.randrange(256)
    elif k == 3:                                     # TTL 0/1 (forwarding: time exceeded)
        p[8] = rng.choice([0, 1, 2])
    elif k == 4:                                     # option bytes
        if ihl > 20:
            p[20 + rng.randrange(ihl - 20)] = rng.randrange(256)
    else:                                            # bit flips, checksum left wrong
        i = rng.randrange(len(p))
        p[i] ^= 1 << rng.randrange(8)
        return bytes(p)
    if rng.random() < 0.9:
        fix_ip_csum(p)
    return bytes(p)


def test_fuzz_ip_fragments_local_and_forwarded():
    rn = RouterNet(seed=10)
    rn.c.sysctl.set("net.ipv4.tcp_mtu_probing", 2)         # MTU probing over the narrow hop
    ls = rn.s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(16)
    live = live_pair(rn, ls, 6, client=rn.c, server=RSRV)
    r_in = rn.r.devices["eth0"]
    s_in = next(d for d in rn.s.devices.values() if d.name.startswith("eth"))
    cport = live.cs.getsockname()[1]
    fut = live.future[0]
    opts = [b"", b"\x01\x01\x01\x00", b"\x07\x07\x04\0\0\0\0", b"\x44\x0c\x05\0" + b"\0" * 8,
            b"\x83\x03\x10", b"\x01" * 40, b"\x00\x44"]

    def make(rng):
        dst = rng.choice([RSRV, RSRV, RR, "10.0.2.9", "10.9.9.9"])
        proto = rng.choice([6, 6, 17, 1, 47])
        if proto == 6:
            off = rng.choice([0, 0, 100, 5000])
            pay = fut[off:off + rng.choice([0, 8, 600, 1400, 2000])]
            l4 = tcp_build(ip2int(RC), ip2int(dst), cport if dst == RSRV else 9999, 80,
                           live.base[0] + off, live.ss.sk.snd_nxt, ACK | PSH, 502, b"", pay)
        elif proto == 1:
            l4 = struct.pack("!BBHI", 8, 0, 0, 77) + rng.randbytes(rng.choice([8, 1000, 3000]))
        else:
            l4 = rng.randbytes(rng.choice([8, 16, 1200, 3000]))
        ident = rng.randrange(4)                    # few ids: fragments of "one" datagram meet
        r = rng.random()
        if r < 0.3:                                 # whole datagram, DF or not
            frag = rng.choice([0, 0x4000])
            body = l4
        else:                                       # one fragment of it (possibly overlapping)
            unit = rng.choice([1, 8, 64, 185])
            start = rng.randrange(0, max(1, len(l4) // 8)) if rng.random() < 0.7 else 0
            start = (start // unit) * unit
            size = rng.choice([1, 8, 16, 512, 1480])
            body = l4[start * 8:start * 8 + size]
            mf = 0x2000 if start * 8 + size < len(l4) or rng.random() < 0.2 else 0
            frag = mf | start | rng.choice([0, 0, 0x4000])
        pkt = ip_datagram(RC, dst, proto, body, frag, ident, rng.choice(opts), rng.choice([64, 2, 1]))
        if rng.random() < 0.5:
            pkt = frag_mutate(rng, pkt)
        return pkt

    befores = [dict(h.mib.nstat()) for h in (rn.r, rn.s)]
    rng = random.Random(106)
    for i in range(N_PER_FAMILY):
        pkt = live.protect(make(rng))
        if rng.random() < 0.6:
            rn.r.netif_receive(r_in, pkt)           # to the router: forwarded or its own
        else:
            rn.s.netif_receive(s_in, pkt)           # straight to the server
        if i % 1000 == 999:
            rn.run_for(0.001)
    rn.run_for(0.5)
    ar, as_ = dict(rn.r.mib.nstat()), dict(rn.s.mib.nstat())
    moved(befores[0], ar, "IpFragCreates", "IpFragOKs", "IpFragFails", "IpForwDatagrams",
          "IpInHdrErrors", "IpReasmFails")
    moved(befores[1], as_, "IpReasmFails", "IpInHdrErrors", "TcpInCsumErrors")
    live.check_stream(rn)


# ---- regression tests for the crashes the barrages found --------------------------------------------

def test_regression_syncookie_from_the_minute_before_minute_zero():
    """cookie_v4_check in minute 0 with a cookie whose minute field is 0xFF: ``count - diff``
    was -1 and struct.pack raised; Linux's u32 wraps, the cookie fails its check ->
    TcpExtSyncookiesFailed, answered by RST, nothing raised. (Found by the ECN barrage.)"""
    from tcpdive.tcp.syncookies import COOKIEBITS, _cookie_hash

    n = Net(delay=0.005, seed=11)
    n.s.sysctl.set("net.ipv4.tcp_syncookies", 2)                 # always cookies
    n.listener(80)
    dev = n.dev(n.s)
    n.s.netif_receive(dev, tcp_pkt(FAKE, SERVER, 40000, 80, 999, 0, SYN, opts=SYN_OPTS))
    assert n.s.mib["TcpExtSyncookiesSent"] == 1 and n.now() < 60
    seq = 1000
    h0 = _cookie_hash(n.s, ip2int(FAKE), ip2int(SERVER), 40001, 80, 0, 0)
    ack = (h0 + (seq - 1) + (0xFF << COOKIEBITS) + 1) & 0xFFFFFFFF   # minute field 0xFF
    before = dict(n.s.mib.nstat())
    n.cap.segs.clear()
    n.s.netif_receive(dev, tcp_pkt(FAKE, SERVER, 40001, 80, seq, ack, ACK))
    after = dict(n.s.mib.nstat())
    assert after.get("TcpExtSyncookiesFailed", 0) == before.get("TcpExtSyncookiesFailed", 0) + 1
    assert after.get("TcpExtSyncookiesRecv", 0) == before.get("TcpExtSyncookiesRecv", 0)
    assert [s.flags for s in n.segs] == ["R"]                    # tcp_v4_send_reset


# ---- a BBR sender's ACK processing -----------------------------------------------------------------

def sack_blocks(rng: random.Random, una: int, nxt: int) -> bytes:
    """1-4 SACK blocks: inside the flight, past snd_nxt, below snd_una, reversed, anywhere."""
    blocks = []
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(5)
        if k == 0 and nxt > una:
            a = rng.randrange(una, nxt)
            b = rng.randrange(a, nxt + 1)
        elif k == 1:
            a = nxt + rng.randrange(1, 100000)
            b = a + rng.randrange(1, 3000)
        elif k == 2:
            b = una - rng.randrange(0, 100000)
            a = b - rng.randrange(1, 3000)
        elif k == 3:
            a = rng.randrange(una, nxt + 2)
            b = a - rng.randrange(0, 3000)
        else:
            a, b = rng.randrange(2**32), rng.randrange(2**32)
        blocks.append((a & 0xFFFFFFFF, b & 0xFFFFFFFF))
    return b"\x01\x01\x05" + bytes((2 + 8 * len(blocks),)) + b"".join(
        struct.pack("!II", a, b) for a, b in blocks)


def test_fuzz_bbr_sender_acks():
    n = Net(delay=0.005, seed=12)
    for h in (n.c, n.s):
        h.sysctl.set("net.ipv4.tcp_congestion_control", "bbr")
    ls = n.listener(80, backlog=64)
    live = live_pair(n, ls, 7)
    assert live.cs.sk.ca.name == "bbr"
    dev_c, dev_s = n.dev(n.c), n.dev(n.s)
    vport = [44000]
    victims: list[Victim] = []

    def new_victim(_i: int = 0) -> None:
        for v in victims:
            if v.sock is not None:
                v.sock.close()
        victims.clear()
        vport[0] += 1
        v = Victim(n, n.s, dev_s, ls, vport[0])
        if v.sock is not None:
            v.sock.setblocking(False)
            try:
                v.sock.send(b"b" * 200_000)        # ten segments in flight, the rest queued
            except OSError:
                pass
        victims.append(v)

    new_victim()
    sk0 = victims[0].sock.sk
    assert sk0.ca.name == "bbr" and sk0.packets_out > 0
    # the live stream keeps moving during the barrage: the client (BBR) sends, the server reads
    csk = live.cs.sk
    live.cs.setblocking(False)
    live.ss.setblocking(False)
    stream = live.future[0]
    sent = [0]
    got = bytearray()

    def pump(i: int) -> None:
        if sent[0] < len(stream):
            try:
                sent[0] += live.cs.send(stream[sent[0]:sent[0] + 4000])
            except OSError:
                pass
        try:
            got.extend(live.ss.recv(65536))
        except OSError:
            pass

    def make_victim(rng):
        v = victims[-1]
        sk = v.sock.sk if v.sock is not None else None
        una = sk.snd_una if sk is not None else v.rcv_nxt
        nxt = sk.snd_nxt if sk is not None else v.rcv_nxt
        ack = rng.choice([una, nxt, rng.randrange(una, nxt + 1), una - 1, nxt + 1,
                          una - rng.randrange(2**30), nxt + rng.randrange(2**30), rng.randrange(2**32)])
        opts = (TS if rng.random() < 0.5 else b"") + (sack_blocks(rng, una, nxt)
                                                      if rng.random() < 0.8 else b"")
        return v.pkt(ACK | rng.choice([0, 0, ECE, FIN, PSH]), b"", opts[:40], ack=ack,
                     win=rng.choice([0, 0, 1, 502, 65535]))

    def make_live(rng):
        una, nxt = csk.snd_una, csk.snd_nxt
        ack = rng.choice([una, nxt, rng.randrange(una, nxt + 1), una - 1, nxt + 1, una - 70000,
                          nxt + 70000, rng.randrange(2**32)])
        return tcp_pkt(SERVER, CLIENT, 80, live.cs.getsockname()[1], live.ss.sk.snd_nxt, ack,
                       ACK, b"", sack_blocks(rng, una, nxt), win=rng.choice([0, 1, 502, 65535]))

    bs, bc = dict(n.s.mib.nstat()), dict(n.c.mib.nstat())
    rng = random.Random(107)
    for i in range(N_PER_FAMILY):
        if rng.random() < 0.6:
            n.s.netif_receive(dev_s, mutate(rng, make_victim(rng)))
        else:
            n.c.netif_receive(dev_c, live.protect(mutate(rng, make_live(rng))))
        if i % 1000 == 999:
            n.run_for(0.001)
            pump(i)
        if i % 100 == 99:                            # a reset / closed victim is replaced
            v = victims[-1].sock
            if v is None or v.sk.state != S.TCP_ESTABLISHED:
                new_victim()
    n.run_for(0.5)
    as_, ac = dict(n.s.mib.nstat()), dict(n.c.mib.nstat())
    moved(bs, as_, "TcpExtTCPSACKDiscard", "TcpExtTCPACKSkippedSeq", "TcpInCsumErrors")
    moved(bc, ac, "TcpExtTCPSACKDiscard", "TcpInCsumErrors", "TcpExtTCPACKSkippedSeq")
    # finish the stream that was moving during the barrage, then the usual check
    live.cs.setblocking(True)
    live.ss.setblocking(True)
    live.cs.sendall(stream[sent[0]:])
    while len(got) < len(stream):
        chunk = live.ss.recv(65536)
        assert chunk
        got += chunk
    assert bytes(got) == stream
    live.base = (csk.snd_nxt, live.ss.sk.snd_nxt)
    live.check_stream(n)
