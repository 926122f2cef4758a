"""TCP MD5 signature option (RFC 2385) as Linux 6.x does it: TCP_MD5SIG / TCP_MD5SIG_EXT keys,
signed segments (SYN, SYN-ACK, data, ACK, FIN, RST, TIME_WAIT ACK), and the drops of
``tcp_inbound_hash`` with their counters. Digests are checked here with hashlib straight from
RFC 2385 section 2.0, not with tcpdive's own signing code."""

from __future__ import annotations

import errno
import hashlib
import struct

import pytest

from tcpdive.packet.checksum import csum_partial, pseudo_sum
from tcpdive.packet.ipv4 import IPPROTO_TCP, int2ip, ip2int, ip_build, ip_parse
from tcpdive.packet.tcp import ACK, PSH, SYN, syn_options, tcp_build
from tcpdive.sim.world import World
from tcpdive.socket import SO_LINGER, SOL_SOCKET
from tcpdive.tcp import sock as S
from tcpdive.tcp.md5 import (
    MD5_OPTION,
    TCP_MD5SIG,
    TCP_MD5SIG_EXT,
    TCP_MD5SIG_FLAG_IFINDEX,
    TCP_MD5SIG_FLAG_PREFIX,
    pack_tcp_md5sig,
    tcp_md5_do_lookup,
    tcp_md5_fill,
    tcp_v4_md5_hash,
)
from tcpdive.tcp.minisocks import TimewaitSock, tcp_v4_timewait_ack

SOL_TCP = 6
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
MD5_HEAD = b"\x01\x01\x13\x12"


def rfc2385_digest(key: bytes, src: str, dst: str, seg: bytes) -> bytes:
    """RFC 2385 2.0, written out: pseudo-header, TCP header without options and with a zero
    checksum, segment data, key."""
    doff = (seg[12] >> 4) * 4
    pseudo = struct.pack("!4s4sBBH", bytes(map(int, src.split("."))),
                         bytes(map(int, dst.split("."))), 0, 6, len(seg))
    header = seg[:16] + b"\x00\x00" + seg[18:20]
    return hashlib.md5(pseudo + header + seg[doff:] + key).digest()


def options_of(seg: bytes) -> bytes:
    return seg[20:(seg[12] >> 4) * 4]


class Wire:
    """Raw TCP segments every host sends: (sender, src, dst, segment)."""

    def __init__(self, *hosts) -> None:
        self.out: list[tuple[str, str, str, bytes]] = []
        for h in hosts:
            h.trace.packet.attach(self._on)

    def _on(self, net, dev, data, direction, now_us) -> None:
        if direction != "out":
            return
        _reason, iph = ip_parse(bytes(data))
        if iph is None or iph.protocol != IPPROTO_TCP:
            return
        off = iph.ihl * 4
        self.out.append((net.name, int2ip(iph.saddr), int2ip(iph.daddr),
                         bytes(data[off:iph.tot_len])))


def world(delay: float = 0.005):
    w = World(seed=1)
    c = w.host("client", CLIENT)
    s = w.host("server", SERVER)
    w.link(c, s, delay=delay)
    return w, c, s


def tcp_delta(host, before) -> dict[str, int]:
    return {k: v for k, v in host.mib.delta(before).items() if k.startswith("Tcp")}


def md5_counters(host) -> dict[str, int]:
    return {k: v for k, v in host.mib.items() if "MD5" in k}


def eth(host):
    return next(d for d in host.devices.values() if d.name.startswith("eth"))


# ---- the digest ----------------------------------------------------------------------------------

def test_digest_of_a_known_segment_is_rfc2385():
    key = b"tcpdive-md5-key"
    payload = b"hello, signed world"
    src, dst = ip2int("192.0.2.1"), ip2int("198.51.100.7")
    hdr = struct.pack("!HHIIBBHHH", 40000, 179, 0x01020304, 0xA0B0C0D0, (10 << 4), ACK | PSH,
                      502, 0, 0)
    digest = tcp_v4_md5_hash(key, src, dst, hdr, payload)
    pseudo = bytes((192, 0, 2, 1, 198, 51, 100, 7, 0, 6)) + (40 + len(payload)).to_bytes(2, "big")
    assert digest == hashlib.md5(pseudo + hdr + payload + key).digest()
    assert digest.hex() == hashlib.md5(pseudo + hdr + payload + key).hexdigest()
    # the checksum field never counts; the options never count
    with_sum = hdr[:16] + b"\xbe\xef" + hdr[18:]
    assert tcp_v4_md5_hash(key, src, dst, with_sum, payload) == digest


def test_signing_a_built_segment_keeps_its_checksum_right():
    key = b"k" * 80                              # TCP_MD5SIG_MAXKEYLEN
    src, dst = ip2int("10.1.2.3"), ip2int("10.3.2.1")
    ts = struct.pack("!BBBBII", 1, 1, 8, 10, 12345, 678)
    seg = tcp_build(src, dst, 5000, 80, 7, 9, ACK, 1000, MD5_OPTION + ts, b"odd length data")
    signed = tcp_md5_fill(seg, key, src, dst, 24)
    assert signed[20:24] == MD5_HEAD and signed[24:40] == rfc2385_digest(
        key, "10.1.2.3", "10.3.2.1", signed)
    assert signed[40:52] == ts
    # the incrementally updated checksum is the one a full computation gives
    assert csum_partial(signed, pseudo_sum(src, dst, IPPROTO_TCP, len(signed))) == 0xFFFF
    rebuilt = tcp_build(src, dst, 5000, 80, 7, 9, ACK, 1000, signed[20:52], b"odd length data")
    assert rebuilt == signed


# ---- a signed connection -------------------------------------------------------------------------

def signed_pair(w, c, s, ckey: bytes | None = b"secret", skey: bytes | None = b"secret",
                port: int = 179):
    ls = s.socket()
    ls.bind(("0.0.0.0", port))
    if skey is not None:
        ls.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(CLIENT, skey))
    ls.listen(5)
    cs = c.socket()
    if ckey is not None:
        cs.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, ckey))
    return ls, cs


def test_keys_on_both_ends_pass_data_with_every_segment_signed():
    w, c, s = world()
    wire = Wire(c, s)
    ls, cs = signed_pair(w, c, s)
    cs.connect((SERVER, 179))
    ss, _ = ls.accept()
    data = bytes(range(256)) * 20
    cs.sendall(data)
    got = b""
    while len(got) < len(data):
        got += ss.recv(65536)
    assert got == data
    ss.sendall(b"reply")
    assert cs.recv(100) == b"reply"
    cs.close()
    assert ss.recv(100) == b""
    ss.close()
    w.run_for(1.0)
    assert md5_counters(c) == {} and md5_counters(s) == {}
    assert len(wire.out) >= 10
    for host, src, dst, seg in wire.out:
        opts = options_of(seg)
        assert opts[:4] == MD5_HEAD, (host, opts)            # nop,nop,md5 first, always
        assert opts[4:20] == rfc2385_digest(b"secret", src, dst, seg)
    syn, synack = wire.out[0][3], wire.out[1][3]
    assert syn[13] == SYN and synack[13] == SYN | ACK
    # tcp_syn_options: MD5 and no timestamps; then mss, sackOK, wscale in Linux's layout
    assert options_of(syn)[20:] == syn_options(1460, True, None, 10)
    assert options_of(synack)[20:] == syn_options(1460, True, None, 10)
    # no timestamps on the connection: established segments carry the signature alone
    data_segs = [seg for h, _s, _d, seg in wire.out
                 if h == "client" and len(seg) > (seg[12] >> 4) * 4]
    sizes = [len(seg) - (seg[12] >> 4) * 4 for seg in data_segs]
    assert sizes[:4] == [1440, 1440, 1440, 800]               # MSS 1460 - 20 option bytes
    assert all(len(options_of(seg)) == 20 for _h, _s, _d, seg in wire.out[2:])
    # no TSO bursts either: one MSS per skb, PSH on the last one only (sk_gso_disable)
    assert [seg[13] for seg in data_segs[:4]] == [ACK, ACK, ACK, ACK | PSH]
    assert cs.sk.md5sig_info is not None and ss.sk.md5sig_info is not None
    child_key = ss.sk.md5sig_info.keys[0]
    assert (child_key.addr, child_key.prefixlen, child_key.key) == (ip2int(CLIENT), 32, b"secret")


def test_mismatched_keys_make_no_connection_and_count_failures():
    w, c, s = world()
    wire = Wire(c, s)
    ls, cs = signed_pair(w, c, s, ckey=b"one key", skey=b"another key")
    cs.setblocking(False)
    assert cs.connect_ex((SERVER, 179)) == errno.EINPROGRESS
    w.run_for(8.0)
    assert cs.sk.state == S.TCP_SYN_SENT
    syns = [seg for h, _s, _d, seg in wire.out if h == "client"]
    assert len(syns) > 3 and all(seg[13] == SYN for seg in syns)
    assert s.mib["TcpExtTCPMD5Failure"] == len(syns)
    assert len(wire.out) == len(syns)               # dropped silently: no SYN-ACK, no RST
    assert ls.sk.syn_queue_len == 0
    assert s.mib["TcpPassiveOpens"] == 0


def test_key_on_one_end_only_is_not_found_or_unexpected():
    w, c, s = world()
    ls, cs = signed_pair(w, c, s, ckey=None, skey=b"secret")
    cs.setblocking(False)
    cs.connect_ex((SERVER, 179))
    w.run_for(2.0)
    assert s.mib["TcpExtTCPMD5NotFound"] == 2 and cs.sk.state == S.TCP_SYN_SENT
    w, c, s = world()
    ls, cs = signed_pair(w, c, s, ckey=b"secret", skey=None)
    cs.setblocking(False)
    cs.connect_ex((SERVER, 179))
    w.run_for(2.0)
    assert s.mib["TcpExtTCPMD5Unexpected"] == 2 and cs.sk.state == S.TCP_SYN_SENT
    assert md5_counters(c) == {}


def test_segment_with_md5_option_to_an_unkeyed_connection_is_dropped():
    w, c, s = world()
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)
    cs = c.socket()
    cs.connect((SERVER, 80))
    ss, _ = ls.accept()
    w.run_for(0.1)
    csk, ssk = cs.sk, ss.sk
    before = dict(s.mib)
    src, dst = ip2int(CLIENT), ip2int(SERVER)
    seg = tcp_build(src, dst, csk.sport, 80, csk.snd_nxt, csk.rcv_nxt, ACK | PSH, 1000,
                    MD5_OPTION, b"forged")
    s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, seg))
    assert tcp_delta(s, before) == {"TcpInSegs": 1, "TcpExtTCPMD5Unexpected": 1}
    assert ssk.rcv_nxt == csk.snd_nxt and ssk.rcv_queue_bytes == 0
    # a bad option (length 10) is dropped too, with no counter (SKB_DROP_REASON_TCP_AUTH_HDR)
    drops = []
    s.trace.drop.attach(lambda net, what, reason, now: drops.append(reason))
    bad = bytes((19, 10)) + bytes(8) + b"\x01\x01"
    seg = tcp_build(src, dst, csk.sport, 80, csk.snd_nxt, csk.rcv_nxt, ACK | PSH, 1000, bad,
                    b"forged")
    before = dict(s.mib)
    s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, seg))
    assert tcp_delta(s, before) == {"TcpInSegs": 1}
    assert drops == ["TCP_AUTH_HDR"] and ssk.rcv_queue_bytes == 0


def test_forged_unsigned_and_badly_signed_segments_to_a_keyed_connection_are_dropped():
    w, c, s = world()
    ls, cs = signed_pair(w, c, s)
    cs.connect((SERVER, 179))
    ss, _ = ls.accept()
    w.run_for(0.1)
    csk, ssk = cs.sk, ss.sk
    src, dst = ip2int(CLIENT), ip2int(SERVER)
    before = dict(s.mib)
    plain = tcp_build(src, dst, csk.sport, 179, csk.snd_nxt, csk.rcv_nxt, ACK | PSH, 1000, b"",
                      b"forged")
    s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, plain))
    wrong = tcp_md5_fill(tcp_build(src, dst, csk.sport, 179, csk.snd_nxt, csk.rcv_nxt, ACK | PSH,
                                   1000, MD5_OPTION, b"forged"), b"guess", src, dst, 24)
    s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, wrong))
    assert tcp_delta(s, before) == {"TcpInSegs": 2, "TcpExtTCPMD5NotFound": 1,
                                   "TcpExtTCPMD5Failure": 1}
    assert ssk.rcv_queue_bytes == 0
    right = tcp_md5_fill(tcp_build(src, dst, csk.sport, 179, csk.snd_nxt, csk.rcv_nxt, ACK | PSH,
                                   1000, MD5_OPTION, b"genuine"), b"secret", src, dst, 24)
    s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, right))
    assert ss.recv(100) == b"genuine"


def test_abort_sends_a_signed_rst_the_peer_accepts():
    w, c, s = world()
    wire = Wire(s)
    ls, cs = signed_pair(w, c, s)
    cs.connect((SERVER, 179))
    ss, _ = ls.accept()
    w.run_for(0.1)
    ss.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    ss.close()                                      # tcp_send_active_reset
    w.run_for(0.1)
    _h, src, dst, rst = wire.out[-1]
    assert rst[13] & 0x04
    assert options_of(rst)[:4] == MD5_HEAD
    assert options_of(rst)[4:] == rfc2385_digest(b"secret", src, dst, rst)
    assert cs.sk.state == S.TCP_CLOSE
    with pytest.raises(OSError) as e:
        cs.recv(10)
    assert e.value.errno == errno.ECONNRESET


def test_time_wait_keeps_the_key_and_signs_its_acks():
    w, c, s = world()
    wire = Wire(c)
    ls, cs = signed_pair(w, c, s)
    cs.connect((SERVER, 179))
    ss, _ = ls.accept()
    port = cs.getsockname()[1]
    cs.close()
    assert ss.recv(10) == b""
    ss.close()
    w.run_for(0.5)
    tw = c.tcp_hashinfo.ehash[(ip2int(CLIENT), port, ip2int(SERVER), 179)]
    assert isinstance(tw, TimewaitSock) and tw.md5_key.key == b"secret"
    n = len(wire.out)
    tcp_v4_timewait_ack(tw)
    _h, src, dst, ack = wire.out[n]
    assert ack[13] == ACK and options_of(ack) == MD5_HEAD + rfc2385_digest(b"secret", src, dst,
                                                                           ack)


def test_synack_gives_up_timestamps_for_sack_but_not_without_it():
    """tcp_synack_options: MD5 + TS (32 bytes) leave no room for a SACK block, so a peer
    asking for both gets SACK and no TS; a peer asking for TS alone keeps TS."""
    for sack, want_ts in ((True, False), (False, True)):
        w, c, s = world()
        wire = Wire(s)
        ls = s.socket()
        ls.bind(("0.0.0.0", 179))
        ls.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(CLIENT, b"secret"))
        ls.listen(5)
        src, dst = ip2int(CLIENT), ip2int(SERVER)
        opts = MD5_OPTION + syn_options(1460, sack, (1000, 0), 7)
        syn = tcp_md5_fill(tcp_build(src, dst, 40000, 179, 1, 0, SYN, 65535, opts), b"secret",
                           src, dst, 24)
        s.netif_receive(eth(s), ip_build(src, dst, IPPROTO_TCP, syn))
        (_h, a, b, synack), = wire.out
        o = options_of(synack)
        assert o[:4] == MD5_HEAD and o[4:20] == rfc2385_digest(b"secret", a, b, synack)
        has_ts = b"\x08\x0a" in o[20:]
        assert has_ts == want_ts and (b"\x04\x02" in o[20:]) == sack


# ---- setsockopt -------------------------------------------------------------------------------

def test_setsockopt_errors_are_linux_errno():
    w, c, s = world()
    k = c.socket()

    def err(optname, value) -> int:
        with pytest.raises(OSError) as e:
            k.setsockopt(SOL_TCP, optname, value)
        return e.value.errno

    good = pack_tcp_md5sig(SERVER, b"x")
    assert err(TCP_MD5SIG, good[:215]) == errno.EINVAL               # optlen < sizeof(cmd)
    assert err(TCP_MD5SIG, 1) == errno.EINVAL
    assert err(TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"x", family=10)) == errno.EINVAL
    assert err(TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"x" * 80, keylen=81)) == errno.EINVAL
    assert err(TCP_MD5SIG_EXT, pack_tcp_md5sig(SERVER, b"x", prefixlen=33,
                                               flags=TCP_MD5SIG_FLAG_PREFIX)) == errno.EINVAL
    assert err(TCP_MD5SIG_EXT, pack_tcp_md5sig(SERVER, b"x", ifindex=1,
                                               flags=TCP_MD5SIG_FLAG_IFINDEX)) == errno.EINVAL
    assert err(TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"")) == errno.ENOENT   # delete: none
    assert k.sk.md5sig_info is None
    k.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"x" * 80))  # the longest key
    k.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"new"))      # replaces it
    assert [kk.key for kk in k.sk.md5sig_info.keys] == [b"new"]
    k.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b""))         # keylen 0 deletes
    assert k.sk.md5sig_info.keys == []
    assert err(TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"")) == errno.ENOENT
    # TCP_MD5SIG ignores the prefix fields: always /32
    k.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig("10.0.0.0", b"p", prefixlen=8,
                                                      flags=TCP_MD5SIG_FLAG_PREFIX))
    assert k.sk.md5sig_info.keys[0].prefixlen == 32


def test_ext_prefix_keys_match_the_longest_prefix():
    w, c, s = world()
    k = s.socket()

    def add(addr: str, plen: int, key: bytes) -> None:
        k.setsockopt(SOL_TCP, TCP_MD5SIG_EXT,
                     pack_tcp_md5sig(addr, key, prefixlen=plen, flags=TCP_MD5SIG_FLAG_PREFIX))

    add("0.0.0.0", 0, b"any")
    add("10.0.0.0", 8, b"ten")
    add("10.0.0.0", 24, b"lan")
    assert tcp_md5_do_lookup(k.sk, ip2int("10.0.0.1")).key == b"lan"
    assert tcp_md5_do_lookup(k.sk, ip2int("10.9.9.9")).key == b"ten"
    assert tcp_md5_do_lookup(k.sk, ip2int("192.0.2.1")).key == b"any"
    # deletion must name the same prefix
    k.setsockopt(SOL_TCP, TCP_MD5SIG_EXT,
                 pack_tcp_md5sig("10.0.0.0", b"", prefixlen=24, flags=TCP_MD5SIG_FLAG_PREFIX))
    assert tcp_md5_do_lookup(k.sk, ip2int("10.0.0.1")).key == b"ten"


def test_prefix_key_on_a_listener_signs_the_connection():
    w, c, s = world()
    ls = s.socket()
    ls.bind(("0.0.0.0", 179))
    ls.setsockopt(SOL_TCP, TCP_MD5SIG_EXT, pack_tcp_md5sig(
        "10.0.0.0", b"bgp", prefixlen=24, flags=TCP_MD5SIG_FLAG_PREFIX))
    ls.listen(5)
    cs = c.socket()
    cs.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"bgp"))
    cs.connect((SERVER, 179))
    ss, _ = ls.accept()
    cs.sendall(b"OPEN")
    assert ss.recv(10) == b"OPEN"
    # the child's copy is for exactly its peer (tcp_v4_syn_recv_sock: prefix 32)
    key = ss.sk.md5sig_info.keys[0]
    assert (int2ip(key.addr), key.prefixlen) == (CLIENT, 32)
    assert md5_counters(s) == {}


def test_signed_final_ack_to_an_unkeyed_listener_is_dropped_and_the_request_waits():
    """What md5/md5-only-on-client-ack.pkt checks on Linux: an ACK completing the handshake
    with an MD5 option the listener has no key for is dropped before tcp_check_req
    (TcpExtTCPMD5Unexpected); the request stays, and the plain ACK then completes it."""
    w, c, s = world()
    ls = s.socket()
    ls.bind(("0.0.0.0", 8080))
    ls.listen(1)
    wire = Wire(s)
    src, dst = ip2int("192.0.2.1"), ip2int(SERVER)
    rx = s.netif_receive
    rx(eth(s), ip_build(src, dst, IPPROTO_TCP, tcp_build(
        src, dst, 48000, 8080, 0, 0, SYN, 32792, syn_options(1000, True, None, 10))))
    (_h, _a, _b, synack), = wire.out
    isn = struct.unpack_from("!I", synack, 4)[0]
    digest = bytes(range(16))
    ack = tcp_build(src, dst, 48000, 8080, 1, isn + 1, ACK, 514,
                    bytes((19, 18)) + digest + b"\x01\x01")
    before = dict(s.mib)
    rx(eth(s), ip_build(src, dst, IPPROTO_TCP, ack))
    rx(eth(s), ip_build(src, dst, IPPROTO_TCP, ack))
    assert tcp_delta(s, before) == {"TcpInSegs": 2, "TcpExtTCPMD5Unexpected": 2}
    assert ls.sk.syn_queue_len == 1 and not ls.sk.accept_queue
    assert len(wire.out) == 1                       # no RST, no ACK: silently dropped
    rx(eth(s), ip_build(src, dst, IPPROTO_TCP, tcp_build(src, dst, 48000, 8080, 1, isn + 1, ACK,
                                                         514)))
    assert ls.sk.syn_queue_len == 0 and len(ls.sk.accept_queue) == 1
    assert s.mib["TcpPassiveOpens"] == 1


def test_signed_syn_to_a_closed_port_gets_no_rst():
    """tcp_v4_send_reset with no socket: a signed segment is answered only when a listener on
    its source port has a key that verifies it ("the active side is lost"); otherwise nothing,
    so a signed connect() to a closed port times out instead of being refused."""
    w, c, s = world()
    wire = Wire(s)
    cs = c.socket()
    cs.setsockopt(SOL_TCP, TCP_MD5SIG, pack_tcp_md5sig(SERVER, b"secret"))
    cs.setblocking(False)
    cs.connect_ex((SERVER, 179))
    w.run_for(2.0)
    assert wire.out == [] and cs.sk.state == S.TCP_SYN_SENT
    assert s.mib["TcpOutRsts"] == 0
    plain = c.socket()
    with pytest.raises(OSError) as e:
        plain.connect((SERVER, 179))
    assert e.value.errno == errno.ECONNREFUSED
    (_h, _a, _b, rst), = wire.out
    assert rst[13] & 0x04 and options_of(rst) == b""
