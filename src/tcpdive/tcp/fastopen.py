"""TCP Fast Open, RFC 7413, as Linux 6.x does it (net/ipv4/tcp_fastopen.c and the TFO parts of
tcp.c, tcp_output.c, tcp_input.c, tcp_minisocks.c, tcp_metrics.c, af_inet.c).

Client: ``sendto(MSG_FASTOPEN)`` or ``TCP_FASTOPEN_CONNECT`` + ``connect()``/``write()``
allocate a ``FastopenRequest``; ``tcp_connect`` then sends the SYN through
``tcp_send_syn_data``: with a cached cookie (``tcp_fastopen_cache_get``, per (saddr, daddr)
like tcp_metrics) the SYN carries data (at most the cached MSS minus 40 bytes of option
space) and the cookie, else it carries an empty FO option (a cookie request). The SYN-ACK is
checked by ``tcp_rcv_fastopen_synack``: the cookie and MSS go to the cache, data the server
did not ack is retransmitted at once.

Server: with ``net.ipv4.tcp_fastopen & 2`` and a TFO queue length (``TCP_FASTOPEN`` or the
0x400 bit) ``tcp_try_fastopen`` answers a cookie request with a cookie and, for a SYN with a
valid cookie (or with data when no cookie is required), creates the child at once: it is
accept()able and readable in SYN_RECV, and it retransmits its own SYN-ACK until the final ACK
(``tcp_fastopen_synack_timer``, ``tcp_rcv_synrecv_state_fastopen``).

Cookies are SipHash-2-4 of the SYN's source and destination address under the 128-bit key
(``__tcp_fastopen_cookie_gen_cipher``), written little-endian, exactly as Linux 6.x; the key is
``net.ipv4.tcp_fastopen_key`` or a listener's ``TCP_FASTOPEN_KEY`` (a backup key is accepted
too: TCPFastOpenPassiveAltKey). Knowing difference: Linux picks a random key the first time a
listener needs one (``tcp_fastopen_init_key_once``); tcpdive keeps the sysctl's all-zero
default as the key, so cookies in a simulated world are reproducible.

All TFO state of a socket lives in one lazily created ``TfoSock`` (``sk.tfo``), so sockets
that never use TFO pay one attribute test on the paths that look at it.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..errors import EALREADY, ECONNABORTED, EINPROGRESS, EINVAL, EISCONN, EOPNOTSUPP, oserror
from ..packet.tcp import ACK, FIN, PSH, SYN, TCPOPT_EXP, TCPOPT_FASTOPEN
from ..skb import SKB
from . import sock as S

if TYPE_CHECKING:
    from ..net.netns import Netns
    from .minisocks import RequestSock
    from .sock import TcpSock

# net.ipv4.tcp_fastopen bits (include/net/tcp.h)
TFO_CLIENT_ENABLE = 0x1
TFO_SERVER_ENABLE = 0x2
TFO_CLIENT_NO_COOKIE = 0x4
TFO_SERVER_COOKIE_NOT_REQD = 0x200
TFO_SERVER_WO_SOCKOPT1 = 0x400

TCP_FASTOPEN_COOKIE_MIN = 4
TCP_FASTOPEN_COOKIE_MAX = 16
TCP_FASTOPEN_COOKIE_SIZE = 8
TCP_FASTOPEN_KEY_LENGTH = 16
TCP_FASTOPEN_KEY_BUF_LENGTH = 32
TCPOPT_FASTOPEN_MAGIC = 0xF989
TCPOLEN_FASTOPEN_BASE = 2
TCPOLEN_EXP_FASTOPEN_BASE = 4
MAX_TCP_OPTION_SPACE = 40

# tcpi_fastopen_client_fail (enum tfo_client_fail)
TFO_STATUS_UNSPEC = 0
TFO_COOKIE_UNAVAILABLE = 1
TFO_DATA_NOT_ACKED = 2
TFO_SYN_RETRANSMITTED = 3

TCPI_OPT_SYN_DATA = 32
MSG_FASTOPEN = 0x20000000

# struct socket's state (SS_*): only the TFO paths of __inet_stream_connect look at it
SS_UNCONNECTED = 1
SS_CONNECTING = 2
SS_CONNECTED = 3

TCP_RTO_MAX = S.TCP_RTO_MAX


class FastopenCookie:
    """``struct tcp_fastopen_cookie``: ``len`` -1 none, 0 a request, 4..16 a cookie."""

    __slots__ = ("len", "val", "exp")

    def __init__(self, len_: int = -1, val: bytes = b"", exp: bool = False) -> None:
        self.len = len_
        self.val = val
        self.exp = exp

    def copy(self) -> FastopenCookie:
        return FastopenCookie(self.len, self.val, self.exp)

    def __repr__(self) -> str:
        return f"<FastopenCookie len={self.len} {self.val.hex()}{' exp' if self.exp else ''}>"


class FastopenRequest:
    """``struct tcp_fastopen_request``: the data a connecting sendmsg hands to the SYN."""

    __slots__ = ("cookie", "data", "size", "copied")

    def __init__(self, data: bytes | None, size: int) -> None:
        self.cookie = FastopenCookie(0)
        self.data = data
        self.size = size
        self.copied = 0


class TfoSock:
    """The TFO fields of ``tcp_sock`` / ``inet_sock`` / the listener's ``fastopen_queue``."""

    __slots__ = ("fastopen_req", "fastopen_rsk", "syn_fastopen", "syn_fastopen_exp",
                 "syn_fastopen_ch", "syn_data_acked", "fastopen_connect", "fastopen_no_cookie",
                 "defer_connect", "client_fail", "write_pending", "max_qlen", "qlen",
                 "rst_head", "keys")

    def __init__(self) -> None:
        self.fastopen_req: FastopenRequest | None = None
        self.fastopen_rsk: RequestSock | None = None   # a passive child's request sock
        self.syn_fastopen = False       # the SYN carried a Fast Open option
        self.syn_fastopen_exp = False   # ... in the experimental format
        self.syn_fastopen_ch = False    # active TFO re-enabled after a blackhole pause
        self.syn_data_acked = False
        self.fastopen_connect = False   # TCP_FASTOPEN_CONNECT
        self.fastopen_no_cookie = False  # TCP_FASTOPEN_NO_COOKIE
        self.defer_connect = False      # inet DEFER_CONNECT bit
        self.client_fail = TFO_STATUS_UNSPEC
        self.write_pending = 0          # sk_write_pending from inet_wait_for_connect
        self.max_qlen = 0               # listener: fastopenq.max_qlen
        self.qlen = 0                   # listener: children not yet fully established
        self.rst_head: list | None = None  # listener: reset requests kept for a while
        self.keys: list[tuple[int, int]] | None = None  # listener: TCP_FASTOPEN_KEY


def tcp_fastopen_sk(sk: TcpSock) -> TfoSock:
    """The socket's TFO state, created on first use."""
    tfo = sk.tfo
    if tfo is None:
        tfo = sk.tfo = TfoSock()
    return tfo


def tcp_passive_fastopen(sk: TcpSock) -> bool:
    """A passive TFO child before its handshake completed (``tcp_passive_fastopen``)."""
    tfo = sk.tfo
    return tfo is not None and tfo.fastopen_rsk is not None and sk.state == S.TCP_SYN_RECV


# ---- cookies ---------------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 (lib/siphash.c ``siphash``) of ``data`` under the key (k0, k1)."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    tail = n & ~7
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, tail, 8)]
    words.append((n << 56 | int.from_bytes(data[tail:], "little")) & _M64)

    def rounds(v0: int, v1: int, v2: int, v3: int, k: int) -> tuple[int, int, int, int]:
        for _ in range(k):
            v0 = (v0 + v1) & _M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    for m in words:
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    v2 ^= 0xFF
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3


def _parse_key_words(text: str) -> tuple[int, int]:
    """``w0-w1-w2-w3`` (the sysctl's %08x words) -> the siphash key Linux builds from them:
    the words are stored little-endian and read back as two little-endian u64."""
    w = [int(x, 16) for x in text.split("-")]
    return w[0] | (w[1] << 32), w[2] | (w[3] << 32)


def _key_from_bytes(b: bytes) -> tuple[int, int]:
    """``tcp_fastopen_reset_cipher``: get_unaligned_le64 of the two key halves."""
    return int.from_bytes(b[:8], "little"), int.from_bytes(b[8:16], "little")


def tcp_fastopen_net_keys(net: Netns) -> list[tuple[int, int]]:
    """The namespace's key(s) from ``net.ipv4.tcp_fastopen_key`` (primary, then backup)."""
    return [_parse_key_words(part) for part in net.sysctl.tcp_fastopen_key.split(",")]


def tcp_fastopen_get_ctx(sk: TcpSock) -> list[tuple[int, int]]:
    """The listener's own keys (TCP_FASTOPEN_KEY), else the namespace's (``tcp_fastopen_get_ctx``)."""
    tfo = sk.tfo
    if tfo is not None and tfo.keys is not None:
        return tfo.keys
    return tcp_fastopen_net_keys(sk.net)


def __tcp_fastopen_cookie_gen_cipher(saddr: int, daddr: int, key: tuple[int, int]) -> bytes:
    """siphash(saddr || daddr) under ``key``, as cpu_to_le64 bytes."""
    v = siphash24(key[0], key[1], struct.pack("!II", saddr, daddr))
    return v.to_bytes(8, "little")


def tcp_fastopen_cookie_gen(sk: TcpSock, skb: SKB) -> FastopenCookie:
    """A cookie for the SYN's addresses under the primary key (``tcp_fastopen_cookie_gen``)."""
    key = tcp_fastopen_get_ctx(sk)[0]
    return FastopenCookie(TCP_FASTOPEN_COOKIE_SIZE,
                          __tcp_fastopen_cookie_gen_cipher(skb.saddr, skb.daddr, key))


def tcp_fastopen_cookie_gen_check(sk: TcpSock, skb: SKB, orig: FastopenCookie,
                                  valid: FastopenCookie) -> int:
    """1 if ``orig`` matches the primary key's cookie, 2 the backup's, 0 neither; ``valid``
    gets the primary key's cookie (``tcp_fastopen_cookie_gen_check``)."""
    for i, key in enumerate(tcp_fastopen_get_ctx(sk)):
        val = __tcp_fastopen_cookie_gen_cipher(skb.saddr, skb.daddr, key)
        if i == 0:
            valid.len = TCP_FASTOPEN_COOKIE_SIZE
            valid.val = val
        if orig.len == TCP_FASTOPEN_COOKIE_SIZE and orig.val == val:
            return i + 1
    return 0


# ---- options ------------------------------------------------------------------------------

def tcp_fastopen_cookie_of(o) -> FastopenCookie:
    """The cookie ``tcp_parse_options`` read from a SYN's FO option (len -1 when none)."""
    fo = o.fastopen if o is not None else None
    if fo is None:
        return FastopenCookie(-1)
    return FastopenCookie(fo[0], fo[1], fo[2])


def fastopen_option(foc: FastopenCookie) -> bytes:
    """The FO option as ``tcp_options_write`` lays it out, NOP-padded to 32 bits."""
    if foc.exp:
        n = TCPOLEN_EXP_FASTOPEN_BASE + foc.len
        out = struct.pack("!BBH", TCPOPT_EXP, n, TCPOPT_FASTOPEN_MAGIC) + foc.val[:foc.len]
    else:
        n = TCPOLEN_FASTOPEN_BASE + foc.len
        out = bytes((TCPOPT_FASTOPEN, n)) + foc.val[:foc.len]
    if n & 3 == 2:
        out += b"\x01\x01"
    return out


def _option_need(foc: FastopenCookie) -> int:
    n = foc.len + (TCPOLEN_EXP_FASTOPEN_BASE if foc.exp else TCPOLEN_FASTOPEN_BASE)
    return (n + 3) & ~3


def tcp_fastopen_syn_options(sk: TcpSock, opts: bytes) -> bytes:
    """A SYN's options plus the FO option of the pending request (``tcp_syn_options``)."""
    tfo = sk.tfo
    fo = tfo.fastopen_req if tfo is not None else None
    if fo is None or fo.cookie.len < 0:
        return opts
    if MAX_TCP_OPTION_SPACE - ((len(opts) + 3) & ~3) < _option_need(fo.cookie):
        return opts
    tfo.syn_fastopen = True
    tfo.syn_fastopen_exp = fo.cookie.exp
    return opts + fastopen_option(fo.cookie)


def tcp_fastopen_synack_options(opts: bytes, foc: FastopenCookie | None) -> bytes:
    """A SYN-ACK's options plus the server's cookie when it fits (``tcp_synack_options``)."""
    if foc is None or foc.len < 0:
        return opts
    if MAX_TCP_OPTION_SPACE - ((len(opts) + 3) & ~3) < _option_need(foc):
        return opts
    return opts + fastopen_option(foc)


# ---- the client's cookie cache (tcp_metrics.c) -------------------------------------------------

class _FastopenMetrics:
    """``struct tcp_fastopen_metrics`` of one (saddr, daddr) tcp_metrics entry."""

    __slots__ = ("mss", "syn_loss", "try_exp", "last_syn_loss", "cookie")

    def __init__(self) -> None:
        self.mss = 0
        self.syn_loss = 0
        self.try_exp = 0
        self.last_syn_loss = 0
        self.cookie = FastopenCookie(0)


def _cache(net: Netns) -> dict[tuple[int, int], _FastopenMetrics]:
    tab = net.tcp_fastopen_cache
    if tab is None:
        tab = net.tcp_fastopen_cache = {}
    return tab


def tcp_metrics_flush_all(net: Netns) -> None:
    """``ip tcp_metrics flush all``: forget every cached cookie and MSS."""
    net.tcp_fastopen_cache = None


def tcp_fastopen_cache_get(sk: TcpSock, cookie: FastopenCookie) -> int:
    """Copy the cached cookie into ``cookie``; returns the cached MSS or 0
    (``tcp_fastopen_cache_get``)."""
    tab = sk.net.tcp_fastopen_cache
    tfom = tab.get((sk.saddr, sk.daddr)) if tab is not None else None
    if tfom is None:
        return 0
    c = tfom.cookie
    cookie.len, cookie.val, cookie.exp = c.len, c.val, c.exp
    if cookie.len <= 0 and tfom.try_exp == 1:
        cookie.exp = True
    return tfom.mss


def tcp_fastopen_cache_set(sk: TcpSock, mss: int, cookie: FastopenCookie | None, syn_lost: bool,
                           try_exp: int) -> None:
    """Remember the server's MSS and cookie (``tcp_fastopen_cache_set``)."""
    tab = _cache(sk.net)
    key = (sk.saddr, sk.daddr)
    tfom = tab.get(key)
    if tfom is None:
        tfom = tab[key] = _FastopenMetrics()
    if mss:
        tfom.mss = mss
    if cookie is not None and cookie.len > 0:
        tfom.cookie = cookie.copy()
    elif try_exp > tfom.try_exp and tfom.cookie.len <= 0 and not tfom.cookie.exp:
        tfom.try_exp = try_exp
    if syn_lost:
        tfom.syn_loss += 1
        tfom.last_syn_loss = sk.net.clock.now_us()
    else:
        tfom.syn_loss = 0


# ---- active side ------------------------------------------------------------------------------

def tcp_fastopen_no_cookie(sk: TcpSock, flag: int) -> bool:
    """The sysctl bit, TCP_FASTOPEN_NO_COOKIE (``tcp_fastopen_no_cookie``; no route metric here)."""
    tfo = sk.tfo
    return bool(sk.net.sysctl.tcp_fastopen & flag) or (tfo is not None and tfo.fastopen_no_cookie)


def tcp_fastopen_active_should_disable(sk: TcpSock) -> bool:
    """Active TFO paused after a suspected blackhole (``tcp_fastopen_active_should_disable``)."""
    net = sk.net
    timeout = net.sysctl.tcp_fastopen_blackhole_timeout_sec
    times = net.tfo_active_disable_times
    if not timeout or not times:
        return False
    multiplier = 1 << min(times - 1, 6)
    if net.clock.now_us() < net.tfo_active_disable_stamp + multiplier * timeout * S.USEC:
        return True
    tcp_fastopen_sk(sk).syn_fastopen_ch = True
    return False


def tcp_fastopen_active_disable(sk: TcpSock) -> None:
    """Pause active TFO in this namespace (``tcp_fastopen_active_disable``)."""
    net = sk.net
    if not net.sysctl.tcp_fastopen_blackhole_timeout_sec:
        return
    net.tfo_active_disable_stamp = net.clock.now_us()
    net.tfo_active_disable_times += 1
    net.mib["TcpExtTCPFastOpenBlackhole"] += 1


def tcp_fastopen_active_detect_blackhole(sk: TcpSock, expired: bool) -> None:
    """SYN/data timeouts count as TFO failures (``tcp_fastopen_active_detect_blackhole``)."""
    tfo = sk.tfo
    if tfo is None:
        return
    timeouts = sk.icsk_retransmits
    if ((tfo.syn_fastopen or sk.syn_data or tfo.syn_data_acked)
            and (timeouts == 2 or (timeouts < 2 and expired))):
        tcp_fastopen_active_disable(sk)
        sk.net.mib["TcpExtTCPFastOpenActiveFail"] += 1


def tcp_fastopen_cookie_check(sk: TcpSock, cookie: FastopenCookie) -> tuple[bool, int]:
    """May the SYN carry data? And the cached MSS (``tcp_fastopen_cookie_check``)."""
    mss = tcp_fastopen_cache_get(sk, cookie)
    if tcp_fastopen_active_should_disable(sk):
        cookie.len = -1
        return False, mss
    if tcp_fastopen_no_cookie(sk, TFO_CLIENT_NO_COOKIE):
        cookie.len = -1
        return True, mss
    if cookie.len > 0:
        return True, mss
    tcp_fastopen_sk(sk).client_fail = TFO_COOKIE_UNAVAILABLE
    return False, mss


def tcp_fastopen_defer_connect(sk: TcpSock) -> bool:
    """TCP_FASTOPEN_CONNECT: with a usable cookie, connect() sends nothing and the first
    write sends SYN+data; without, the SYN asks for a cookie (``tcp_fastopen_defer_connect``)."""
    tfo = sk.tfo
    if tfo is None or not tfo.fastopen_connect or tfo.fastopen_req is not None:
        return False
    cookie = FastopenCookie(0)
    ok, _mss = tcp_fastopen_cookie_check(sk, cookie)
    if ok:
        tfo.defer_connect = True
        return True
    fo = tfo.fastopen_req = FastopenRequest(None, 0)
    fo.cookie = cookie
    return False


def tcp_send_syn_data(sk: TcpSock, syn: SKB) -> None:
    """Send the SYN with data and/or a Fast Open option (``tcp_send_syn_data``).

    ``syn`` is already on the retransmit queue. With a usable cookie the data (at most the
    MSS from the cache, or advmss, minus MAX_TCP_OPTION_SPACE) goes into the SYN and stays
    queued behind it as its own skb for retransmission; otherwise a plain SYN asks for a cookie.
    """
    from .output import (
        tcp_chrono_start,
        tcp_lskb,
        tcp_rtx_queue_tail_add,
        tcp_sync_mss,
        tcp_transmit_skb,
    )

    tfo = sk.tfo
    fo = tfo.fastopen_req
    net = sk.net
    sk.mss_clamp = sk.advmss
    ok, mss = tcp_fastopen_cookie_check(sk, fo.cookie)
    if ok:
        if mss:
            sk.mss_clamp = mss
        if sk.user_mss and sk.user_mss < sk.mss_clamp:        # tcp_mss_clamp
            sk.mss_clamp = sk.user_mss
        pmtu = sk.icsk_pmtu_cookie or net.route_mtu(sk.daddr)
        tcp_sync_mss(sk, pmtu)
        space = min(pmtu - 40, sk.mss_clamp)                   # __tcp_mtu_to_mss
        space = max(space, net.sysctl.tcp_min_snd_mss) - MAX_TCP_OPTION_SPACE
        space = max(0, min(space, fo.size))
        data = bytes(fo.data[:space]) if space and fo.data is not None else b""
        if space == fo.size:
            fo.data = None                                     # nothing left for the waiter
        fo.copied = space
        # tcp_connect_queue_skb: the data skb follows the SYN in sequence space
        seq = syn.end_seq
        skb = SKB(seq, seq + space, ACK | PSH, data)
        sk.write_seq = seq + space
        sk.packets_out += 1
        if space:
            sk.sk_wmem_queued += space
            tcp_chrono_start(sk, 1)                            # TCP_CHRONO_BUSY
        wire = SKB(syn.seq, seq + space, SYN, data)
        err = tcp_transmit_skb(sk, wire)
        syn.tstamp = wire.tstamp
        syn.tx_seq = wire.tx_seq
        if not err:
            sk.syn_data = space > 0
            skb.tstamp = wire.tstamp
            skb.first_tx = wire.tstamp
            skb.tx_seq = wire.tx_seq
            tcp_rtx_queue_tail_add(sk, skb)
            lskb = tcp_lskb(sk)
            if space and (not lskb or lskb[-1] < seq):
                if not lskb:
                    lskb.append(syn.seq)
                lskb.append(seq)
            net.mib["TcpExtTCPOrigDataSent"] += 1
            fo.cookie.len = -1           # no Fast Open option on SYN retransmissions
            return
        sk.packets_out -= 1
        sk.write_seq = seq
        sk.sk_wmem_queued -= space
        fo.copied = 0
    # fallback: a regular SYN with a cookie request (or without FO at all)
    if fo.cookie.len > 0:
        fo.cookie.len = 0
    if tcp_transmit_skb(sk, syn):
        tfo.syn_fastopen = False
    fo.cookie.len = -1


def tcp_rcv_fastopen_synack(sk: TcpSock, synack: SKB, cookie: FastopenCookie) -> bool:
    """Cache the SYN-ACK's cookie and MSS; retransmit SYN data the server did not ack.
    True when data went out again (the caller sends no ACK) (``tcp_rcv_fastopen_synack``)."""
    from .input import (
        tcp_current_ssthresh,
        tcp_mark_skb_lost,
        tcp_set_ca_state,
        tcp_xmit_retransmit_queue,
    )

    tfo = sk.tfo
    net = sk.net
    q = sk.rtx_queue
    data = q[0] if sk.syn_data and q else None
    mss = sk.mss_clamp
    if sk.user_mss and mss == sk.user_mss:
        o = synack.opts
        mss = o.mss if o is not None and o.mss else S.TCP_MSS_DEFAULT
    try_exp = 0
    syn_drop = False
    if not tfo.syn_fastopen:
        cookie.len = -1                  # an unsolicited cookie
    elif sk.total_retrans:
        syn_drop = cookie.len < 0 and data is not None
    elif cookie.len < 0 and not sk.syn_data:
        try_exp = 2 if tfo.syn_fastopen_exp else 1
    tcp_fastopen_cache_set(sk, mss, cookie, syn_drop, try_exp)
    if data is not None:
        tfo.client_fail = TFO_SYN_RETRANSMITTED if sk.total_retrans else TFO_DATA_NOT_ACKED
        for skb in list(q):
            tcp_mark_skb_lost(sk, skb)
        # tcp_non_congestion_loss_retransmit
        if sk.icsk_ca_state != S.TCP_CA_Loss:
            sk.high_seq = sk.snd_nxt
            sk.snd_ssthresh = tcp_current_ssthresh(sk)
            sk.prior_ssthresh = 0
            sk.undo_marker = 0
            tcp_set_ca_state(sk, S.TCP_CA_Loss)
        tcp_xmit_retransmit_queue(sk)
        net.mib["TcpExtTCPFastOpenActiveFail"] += 1
        return True
    tfo.syn_data_acked = sk.syn_data
    if tfo.syn_data_acked:
        net.mib["TcpExtTCPFastOpenActive"] += 1
        if sk.delivered > 1:
            sk.delivered -= 1            # SYN-data is counted as two packets in tcp_ack()
    if synack.data or synack.flags & FIN:
        tcp_fastopen_add_skb(sk, synack)
    return False


def tcp_synsent_fastopen(sk: TcpSock, skb: SKB) -> int:
    """The end of ``tcp_rcv_synsent_state_process`` for a SYN that carried TFO: check the
    SYN-ACK, then ACK it, or (``sk_write_pending``: a blocked sendmsg has more data) only
    schedule the ACK so that the data carries it. Returns -1 (handled)."""
    from .input import inet_csk_schedule_ack, tcp_enter_quickack_mode
    from .output import tcp_send_ack

    fail = tcp_rcv_fastopen_synack(sk, skb, tcp_fastopen_cookie_of(skb.opts))
    S.sk_wake(sk)
    if fail:
        return -1
    if sk.tfo.write_pending:
        inet_csk_schedule_ack(sk)
        tcp_enter_quickack_mode(sk, S.TCP_MAX_QUICKACKS)
        now = sk.net.clock.now_us()
        sk.ack_pending |= S.ICSK_ACK_TIMER
        sk.ack_timeout = now + S.TCP_DELACK_MAX
        sk.delack_timer.mod(sk.ack_timeout)
        return -1
    tcp_send_ack(sk)
    return -1


def tcp_fastopen_mtu_reduced(sk: TcpSock, mtu: int) -> None:
    """ICMP frag-needed for a SYN with data (``tcp_v4_mtu_reduced`` -> ``tcp_simple_retransmit``
    with its SYN-data case): the route's advmss shrinks, so the next SYN advertises mtu - 40
    (``tcp_advertise_mss``), and every queued skb is marked lost so the SYN goes again now.
    Knowing difference: tcpdive has no PMTU cache on routes; the new MTU lives on the socket."""
    from .input import tcp_current_ssthresh, tcp_mark_skb_lost, tcp_set_ca_state
    from .output import tcp_retransmit_skb

    if mtu - 40 < sk.advmss:
        sk.advmss = mtu - 40
    for skb in list(sk.rtx_queue):
        tcp_mark_skb_lost(sk, skb)
    if not sk.lost_out:
        return
    if sk.icsk_ca_state != S.TCP_CA_Loss:
        sk.high_seq = sk.snd_nxt
        sk.snd_ssthresh = tcp_current_ssthresh(sk)
        sk.prior_ssthresh = 0
        sk.undo_marker = 0
        tcp_set_ca_state(sk, S.TCP_CA_Loss)
    # tcp_xmit_retransmit_queue: in SYN_SENT the send window is empty, so of the lost skbs
    # only the SYN (seq == snd_una) may go (__tcp_retransmit_skb's window check)
    tcp_retransmit_skb(sk, sk.rtx_queue[0])


def tcp_free_fastopen_req(sk: TcpSock) -> None:
    tfo = sk.tfo
    if tfo is not None:
        tfo.fastopen_req = None


# ---- sendmsg / connect (tcp.c, af_inet.c) ---------------------------------------------------

def inet_stream_connect_start(sock: Any, addr: tuple | None, is_sendmsg: bool) -> int:
    """The part of ``__inet_stream_connect`` before it may sleep: returns the errno it would
    return if it did not wait (0, EINPROGRESS, EALREADY, EISCONN...)."""

    sk = sock.sk
    ss = sock.ss_state
    tfo = sk.tfo
    defer = tfo is not None and tfo.defer_connect
    if ss == SS_CONNECTED:
        return EISCONN
    if ss == SS_CONNECTING:
        if defer:
            return EINPROGRESS if is_sendmsg else EISCONN
        return EALREADY
    if sk.state != S.TCP_CLOSE:
        return EISCONN
    if addr is None:
        return EINVAL
    try:
        sock._connect_start(addr)
    except OSError as e:
        return e.errno or EINVAL
    sock.ss_state = SS_CONNECTING
    if tfo is not None and tfo.defer_connect:
        return 0
    return EINPROGRESS


def inet_stream_connect_finish(sock: Any, err: int) -> int:
    """After any wait: a closed socket reports its error and is disconnected, a connected one
    becomes SS_CONNECTED (the tail of ``__inet_stream_connect``)."""
    from .tcp import tcp_disconnect

    sk = sock.sk
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
        return err
    if sk.state == S.TCP_CLOSE:
        e = sk.sk_err or ECONNABORTED
        sk.sk_err = 0
        sock.ss_state = SS_UNCONNECTED
        tcp_disconnect(sk)
        return e
    sock.ss_state = SS_CONNECTED
    return 0


async def tcp_sendmsg_fastopen(sock: Any, data: bytes, flags: int, addr: tuple | None,
                               blocking: bool) -> tuple[int, int]:
    """``tcp_sendmsg_fastopen``: connect with the data in the SYN; returns (errno, copied_syn).

    A blocking caller sleeps in ``inet_wait_for_connect``; while data is left over for it
    (``fo.data``) the SYN-ACK's ACK is delayed so that the data carries it (sk_write_pending).
    """
    from .output import tcp_connect
    from .tcp import tcp_set_state

    sk = sock.sk
    net = sk.net
    if not net.sysctl.tcp_fastopen & TFO_CLIENT_ENABLE or (addr is not None and addr[0] is None):
        return EOPNOTSUPP, 0
    tfo = tcp_fastopen_sk(sk)
    if tfo.fastopen_req is not None:
        return EALREADY, 0
    fo = tfo.fastopen_req = FastopenRequest(data, len(data))
    if tfo.defer_connect:
        try:
            tcp_connect(sk)
        except OSError:
            tcp_set_state(sk, S.TCP_CLOSE)
            sk.dport = 0
    err = inet_stream_connect_start(sock, addr, True)
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV) and err in (0, EINPROGRESS, EALREADY) \
            and blocking:
        bias = 1 if fo.data is not None else 0
        tfo.write_pending += bias
        try:
            await sock._wait(lambda: sk.state not in (S.TCP_SYN_SENT, S.TCP_SYN_RECV),
                             sock.timeout)
        except TimeoutError:
            pass
        finally:
            tfo.write_pending -= bias
        err = inet_stream_connect_finish(sock, err)
    elif err in (0, EINPROGRESS, EALREADY):
        err = inet_stream_connect_finish(sock, err)
    copied = 0
    if tfo.fastopen_req is fo:
        copied = fo.copied
        tfo.fastopen_req = None
        tfo.defer_connect = False
    return err, copied


async def tcp_sendmsg_with_fastopen(sock: Any, data: bytes, flags: int, addr: tuple | None,
                                    send_rest: Any) -> int:
    """``tcp_sendmsg_locked`` when MSG_FASTOPEN or a deferred connect is involved: the SYN
    takes what it can, the rest is sent normally (``send_rest(view)`` -> bytes taken)."""
    blocking = not sock._would_block(flags)
    err, copied_syn = await tcp_sendmsg_fastopen(sock, data, flags, addr, blocking)
    if err == EINPROGRESS and copied_syn > 0:
        return copied_syn
    if err:
        raise oserror(err)
    rest = memoryview(data)[copied_syn:]
    if not rest and copied_syn:
        return copied_syn
    try:
        return copied_syn + await send_rest(rest)
    except OSError:
        if copied_syn:
            return copied_syn
        raise


def drive(coro: Any) -> Any:
    """Run a coroutine that must not sleep (the non-blocking path) to its result."""
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    coro.close()
    raise RuntimeError("a non-blocking Fast Open call tried to sleep")


# ---- passive side ----------------------------------------------------------------------------

def fastopen_queue_tune(sk: TcpSock, backlog: int) -> None:
    """TFO queue length of a listener: min(backlog, somaxconn) (``fastopen_queue_tune``)."""
    tcp_fastopen_sk(sk).max_qlen = min(max(backlog, 0), sk.net.sysctl.somaxconn)


def tcp_fastopen_listen(sk: TcpSock, backlog: int) -> None:
    """inet_listen: with 0x400|0x2 every listener gets a TFO queue of its backlog."""
    tfo_sysctl = sk.net.sysctl.tcp_fastopen
    if (tfo_sysctl & TFO_SERVER_WO_SOCKOPT1 and tfo_sysctl & TFO_SERVER_ENABLE
            and (sk.tfo is None or not sk.tfo.max_qlen)):
        fastopen_queue_tune(sk, backlog)


def tcp_fastopen_queue_check(sk: TcpSock) -> bool:
    """Room in the TFO queue, reusing a reset request's slot once it expired
    (``tcp_fastopen_queue_check``)."""
    tfo = sk.tfo
    if tfo is None or not tfo.max_qlen:
        return False
    if tfo.qlen >= tfo.max_qlen:
        head = tfo.rst_head
        if not head or head[0] > sk.net.clock.now_us():
            sk.net.mib["TcpExtTCPFastOpenListenOverflow"] += 1
            return False
        head.pop(0)
        tfo.qlen -= 1
    return True


def tcp_try_fastopen(sk: TcpSock, skb: SKB, req: RequestSock,
                     foc: FastopenCookie) -> TcpSock | None:
    """Decide about a SYN on a listener: a child for SYN data with a valid cookie (or none
    needed), else ``foc`` becomes the cookie for the SYN-ACK (``tcp_try_fastopen``)."""
    net = sk.net
    syn_data = len(skb.data) > 0
    sysctl = net.sysctl.tcp_fastopen
    if foc.len == 0:
        net.mib["TcpExtTCPFastOpenCookieReqd"] += 1
    if not (sysctl & TFO_SERVER_ENABLE and (syn_data or foc.len >= 0)
            and tcp_fastopen_queue_check(sk)):
        foc.len = -1
        return None
    valid = FastopenCookie(-1)
    ret = 0
    if tcp_fastopen_no_cookie(sk, TFO_SERVER_COOKIE_NOT_REQD):
        ret = -1
    elif foc.len == 0:
        valid = tcp_fastopen_cookie_gen(sk, skb)
    elif foc.len > 0:
        ret = tcp_fastopen_cookie_gen_check(sk, skb, foc, valid)
        if not ret:
            net.mib["TcpExtTCPFastOpenPassiveFail"] += 1
    if ret:
        child = tcp_fastopen_create_child(sk, skb, req)
        if child is not None:
            if ret == 2:
                valid.exp = foc.exp
                foc.len, foc.val, foc.exp = valid.len, valid.val, valid.exp
                net.mib["TcpExtTCPFastOpenPassiveAltKey"] += 1
            else:
                foc.len = -1
            net.mib["TcpExtTCPFastOpenPassive"] += 1
            return child
        net.mib["TcpExtTCPFastOpenPassiveFail"] += 1
    valid.exp = foc.exp
    foc.len, foc.val, foc.exp = valid.len, valid.val, valid.exp
    return None


class TfoReq:
    """What a TFO request sock keeps: its child and the rcv_nxt its SYN-ACK acks."""

    __slots__ = ("child", "rcv_nxt")

    def __init__(self, child: TcpSock, rcv_nxt: int) -> None:
        self.child = child
        self.rcv_nxt = rcv_nxt


def tcp_fastopen_create_child(sk: TcpSock, skb: SKB, req: RequestSock) -> TcpSock | None:
    """The full socket for a Fast Open SYN, in SYN_RECV and already in the accept queue, its
    SYN data queued (``tcp_fastopen_create_child`` + ``tcp_fastopen_add_skb``)."""
    from .input import tcp_init_buffer_space
    from .ipv4 import tcp_v4_syn_recv_sock
    from .output import tcp_reset_xmit_timer

    net = sk.net
    hi = net.tcp_hashinfo
    req.snt_synack = None
    hi.ehash_insert(req, (req.saddr, req.sport, req.daddr, req.dport))
    sk.syn_queue_len += 1
    child = tcp_v4_syn_recv_sock(sk, req, skb)
    if child is None:
        if req.hash_key is not None:
            hi.ehash_remove(req)
            sk.syn_queue_len -= 1
        req.timer.cancel()
        return None
    tcp_fastopen_sk(sk).qlen += 1
    ctfo = tcp_fastopen_sk(child)
    ctfo.fastopen_rsk = req
    child.snd_wnd = skb.window
    child.max_window = child.snd_wnd
    req.timeout = net.tcp_timeout_init()
    tcp_reset_xmit_timer(child, S.ICSK_TIME_RETRANS, req.timeout)
    tcp_init_buffer_space(child)
    child.rcv_nxt = req.rcv_isn + 1
    tcp_fastopen_add_skb(child, skb)
    req.tfo = TfoReq(child, child.rcv_nxt)
    child.rcv_wup = child.rcv_nxt
    return child


def tcp_fastopen_add_skb(sk: TcpSock, skb: SKB) -> None:
    """Queue the data of a SYN (or SYN-ACK) as received data (``tcp_fastopen_add_skb``)."""
    from .input import tcp_fin, tcp_queue_rcv

    data = skb.data
    fin = bool(skb.flags & FIN)
    if not data and not fin:
        return
    sk.segs_in = 1
    if data:
        tcp_queue_rcv(sk, bytes(data))
        sk.data_segs_in = 1
    sk.rcv_nxt += len(data)
    tcp_fastopen_sk(sk).syn_data_acked = True
    sk.bytes_received = len(data)
    if fin:
        sk.rcv_nxt += 1
        tcp_fin(sk)


def tcp_v4_send_synack_child(child: TcpSock, foc: FastopenCookie | None) -> None:
    """The SYN-ACK of a Fast Open child, acking its SYN data (``tcp_v4_send_synack`` from
    ``tcp_conn_request`` / ``inet_rtx_syn_ack`` with the child)."""
    from .minisocks import tcp_v4_send_synack

    req = child.tfo.fastopen_rsk
    tcp_v4_send_synack(req, foc)


def reqsk_fastopen_remove(sk: TcpSock, req: RequestSock, reset: bool) -> None:
    """The child no longer needs its request: free a TFO queue slot, or on a reset keep it
    for TCP_TIMEOUT... 60 s against SYN floods (``reqsk_fastopen_remove``)."""
    tfo = sk.tfo
    tfo.fastopen_rsk = None
    req.timer.cancel()
    listener = req.listener
    ltfo = listener.tfo
    if ltfo is None:
        return
    if not reset:
        ltfo.qlen = max(0, ltfo.qlen - 1)
        return
    if ltfo.rst_head is None:
        ltfo.rst_head = []
    ltfo.rst_head.append(sk.net.clock.now_us() + S.TCP_TIMEWAIT_LEN)


def tcp_fastopen_synack_timer(sk: TcpSock, req: RequestSock) -> None:
    """Retransmit the child's SYN-ACK with backoff, one try more than tcp_synack_retries
    (``tcp_fastopen_synack_timer``)."""
    from .input import tcp_enter_loss
    from .minisocks import tcp_v4_send_synack
    from .output import tcp_reset_xmit_timer
    from .timer import tcp_write_err

    net = sk.net
    max_retries = sk.icsk_syn_retries or net.sysctl.tcp_synack_retries + 1
    if req.num_timeout >= max_retries:
        tcp_write_err(sk)
        return
    if sk.icsk_retransmits == 1:
        tcp_enter_loss(sk)
    tcp_v4_send_synack(req)
    req.num_retrans += 1
    net.mib["TcpRetransSegs"] += 1
    net.mib["TcpExtTCPSynRetrans"] += 1
    req.num_timeout += 1
    sk.icsk_retransmits += 1
    sk.total_rto += 1
    if not sk.retrans_stamp:
        sk.retrans_stamp = net.clock.now_us() // 1000
    tcp_reset_xmit_timer(sk, S.ICSK_TIME_RETRANS, min(req.timeout << req.num_timeout, TCP_RTO_MAX))


def tcp_fastopen_check_req(sk: TcpSock, skb: SKB) -> bool:
    """``tcp_check_req`` for a passive TFO child: False drops the segment (after answering a
    retransmitted SYN, an out-of-window segment, a SYN or a RST as Linux does)."""
    from .input import tcp_reset
    from .ipv4 import tcp_v4_send_reset
    from .output import tcp_send_ack

    req = sk.tfo.fastopen_rsk
    flags = skb.flags
    rcv_isn = req.rcv_isn
    if skb.seq == rcv_isn and flags & (SYN | ACK | 0x04 | FIN) == SYN:
        from .minisocks import tcp_v4_send_synack

        tcp_v4_send_synack(req)                   # inet_rtx_syn_ack
        req.num_retrans += 1
        return False
    rcv_nxt = req.tfo.rcv_nxt
    win = req.rcv_wnd
    in_window = (skb.seq == rcv_nxt or (skb.end_seq > rcv_nxt and skb.seq < rcv_nxt + win)
                 or (skb.seq == skb.end_seq and rcv_nxt <= skb.seq <= rcv_nxt + win))
    if not in_window:
        if not flags & 0x04:
            tcp_send_ack(sk)
        return False
    if flags & (0x04 | SYN):
        sk.net.mib["TcpAttemptFails"] += 1
        if not flags & 0x04:
            tcp_v4_send_reset(sk.net, skb)
        else:
            reqsk_fastopen_remove(sk, req, True)
            tcp_reset(sk)
        return False
    return bool(flags & ACK)


def tcp_rcv_synrecv_state_fastopen(sk: TcpSock) -> None:
    """The final ACK reached a passive TFO child (``tcp_rcv_synrecv_state_fastopen``)."""
    from .input import tcp_try_undo_recovery
    from .output import tcp_rearm_rto
    from .rtt import tcp_ack_update_rtt

    req = sk.tfo.fastopen_rsk
    if sk.icsk_ca_state == S.TCP_CA_Loss and not sk.packets_out:
        tcp_try_undo_recovery(sk)
    if not sk.srtt_us and not req.num_retrans and req.snt_synack is not None:
        tcp_ack_update_rtt(sk, max(sk.net.clock.now_us() - req.snt_synack, 1))   # tcp_synack_rtt_meas
    sk.icsk_retransmits = 0
    if sk.icsk_ca_state != S.TCP_CA_Recovery:
        sk.retrans_stamp = 0                      # tcp_retrans_stamp_cleanup
    reqsk_fastopen_remove(sk, req, False)
    sk.retransmit_timer.cancel()
    sk.icsk_pending = 0
    tcp_rearm_rto(sk)


def tcp_fastopen_info(sk: TcpSock, opts: int) -> tuple[int, int]:
    """tcpi_options with TCPI_OPT_SYN_DATA, and tcpi_fastopen_client_fail."""
    tfo = sk.tfo
    if tfo is None:
        return opts, 0
    if tfo.syn_data_acked:
        opts |= TCPI_OPT_SYN_DATA
    return opts, tfo.client_fail


def do_tcp_fastopen_setsockopt(sock: Any, optname: int, value: Any) -> None:
    """TCP_FASTOPEN (23), TCP_FASTOPEN_CONNECT (30), TCP_FASTOPEN_KEY (33),
    TCP_FASTOPEN_NO_COOKIE (34) (``do_tcp_setsockopt``)."""
    sk = sock.sk
    net = sk.net
    if optname == 33:
        if isinstance(value, int):
            raise oserror(EINVAL)
        key = bytes(value)
        if len(key) not in (TCP_FASTOPEN_KEY_LENGTH, TCP_FASTOPEN_KEY_BUF_LENGTH):
            raise oserror(EINVAL)
        keys = [_key_from_bytes(key[:16])]
        if len(key) == TCP_FASTOPEN_KEY_BUF_LENGTH:
            keys.append(_key_from_bytes(key[16:]))
        tcp_fastopen_sk(sk).keys = keys
        return
    from .sockopt import _int

    v = _int(value)
    if optname == 23:
        if v >= 0 and sk.state in (S.TCP_CLOSE, S.TCP_LISTEN):
            fastopen_queue_tune(sk, v)
        else:
            raise oserror(EINVAL)
    elif optname == 30:
        if v > 1 or v < 0:
            raise oserror(EINVAL)
        if not net.sysctl.tcp_fastopen & TFO_CLIENT_ENABLE:
            raise oserror(EOPNOTSUPP)
        if sk.state != S.TCP_CLOSE:
            raise oserror(EINVAL)
        tcp_fastopen_sk(sk).fastopen_connect = bool(v)
    elif optname == 34:
        if v > 1 or v < 0 or sk.state not in (S.TCP_CLOSE, S.TCP_LISTEN):
            raise oserror(EINVAL)
        tcp_fastopen_sk(sk).fastopen_no_cookie = bool(v)


def do_tcp_fastopen_getsockopt(sock: Any, optname: int) -> int | bytes:
    """getsockopt of the TFO options: the queue length, the flags, the key(s) as bytes."""
    sk = sock.sk
    tfo = sk.tfo
    if optname == 23:
        return tfo.max_qlen if tfo is not None else 0
    if optname == 30:
        return int(tfo is not None and tfo.fastopen_connect)
    if optname == 34:
        return int(tfo is not None and tfo.fastopen_no_cookie)
    keys = tcp_fastopen_get_ctx(sk)
    return b"".join(k[0].to_bytes(8, "little") + k[1].to_bytes(8, "little") for k in keys)


TFO_SOCKOPTS = frozenset((23, 30, 33, 34))
