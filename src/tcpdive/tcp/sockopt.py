"""setsockopt/getsockopt for SOL_SOCKET, SOL_TCP and SOL_IP (``sock_setsockopt``,
``do_tcp_setsockopt``, ``do_tcp_getsockopt``) and ``tcp_get_info`` (TCP_INFO)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import errors as E
from ..errors import oserror
from . import sock as S
from .fastopen import (
    TFO_SOCKOPTS,
    do_tcp_fastopen_getsockopt,
    do_tcp_fastopen_setsockopt,
    tcp_fastopen_info,
)
from .rate import tcp_compute_delivery_rate

if TYPE_CHECKING:
    from ..socket import Socket

SOL_SOCKET = 1
SOL_IP = 0
SOL_TCP = 6
SOL_UDP = 17

USEC = 1_000_000

TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4
TCPI_OPT_ECN = 8
TCPI_OPT_ECN_SEEN = 16

_TCP_INFO = struct.Struct("=BBBBBBBBIIIIIIIIIIIIIIIIIIIIIIIIQQQQIIIIIIQQQQIIQQIIIIIIHHI")
TCP_INFO_LEN = _TCP_INFO.size
_INT = struct.Struct("i")
_LINGER = struct.Struct("ii")
_TIMEVAL = struct.Struct("ll")


class TcpInfo:
    """``struct tcp_info`` as ``tcp_get_info`` fills it; times in microseconds like Linux."""

    FIELDS = (
        "tcpi_state", "tcpi_ca_state", "tcpi_retransmits", "tcpi_probes", "tcpi_backoff",
        "tcpi_options", "tcpi_wscale", "tcpi_app_limited_flags",
        "tcpi_rto", "tcpi_ato", "tcpi_snd_mss", "tcpi_rcv_mss", "tcpi_unacked", "tcpi_sacked",
        "tcpi_lost", "tcpi_retrans", "tcpi_fackets", "tcpi_last_data_sent", "tcpi_last_ack_sent",
        "tcpi_last_data_recv", "tcpi_last_ack_recv", "tcpi_pmtu", "tcpi_rcv_ssthresh", "tcpi_rtt",
        "tcpi_rttvar", "tcpi_snd_ssthresh", "tcpi_snd_cwnd", "tcpi_advmss", "tcpi_reordering",
        "tcpi_rcv_rtt", "tcpi_rcv_space", "tcpi_total_retrans", "tcpi_pacing_rate",
        "tcpi_max_pacing_rate", "tcpi_bytes_acked", "tcpi_bytes_received", "tcpi_segs_out",
        "tcpi_segs_in", "tcpi_notsent_bytes", "tcpi_min_rtt", "tcpi_data_segs_in",
        "tcpi_data_segs_out", "tcpi_delivery_rate", "tcpi_busy_time", "tcpi_rwnd_limited",
        "tcpi_sndbuf_limited", "tcpi_delivered", "tcpi_delivered_ce", "tcpi_bytes_sent",
        "tcpi_bytes_retrans", "tcpi_dsack_dups", "tcpi_reord_seen", "tcpi_rcv_ooopack",
        "tcpi_snd_wnd", "tcpi_rcv_wnd", "tcpi_rehash", "tcpi_total_rto",
        "tcpi_total_rto_recoveries", "tcpi_total_rto_time",
    )
    __slots__ = FIELDS + ("tcpi_snd_wscale", "tcpi_rcv_wscale")

    def pack(self) -> bytes:
        return _TCP_INFO.pack(*(getattr(self, f) for f in self.FIELDS))

    def as_dict(self) -> dict[str, int]:
        d = {f: getattr(self, f) for f in self.FIELDS}
        d["tcpi_snd_wscale"] = self.tcpi_snd_wscale
        d["tcpi_fastopen_client_fail"] = (self.tcpi_app_limited_flags >> 1) & 3
        d["tcpi_rcv_wscale"] = self.tcpi_rcv_wscale
        return d


def tcp_get_info(sk) -> TcpInfo:
    """Fill ``struct tcp_info`` (``tcp_get_info``)."""
    from .output import tcp_delack_max

    info = TcpInfo()
    for f in TcpInfo.FIELDS:
        setattr(info, f, 0)
    now = sk.net.clock.now_us()
    info.tcpi_state = sk.state
    info.tcpi_snd_wscale = info.tcpi_rcv_wscale = 0
    if sk.state == S.TCP_LISTEN:
        info.tcpi_unacked = len(sk.accept_queue or ())
        info.tcpi_sacked = sk.max_ack_backlog
        return info
    info.tcpi_ca_state = sk.icsk_ca_state
    info.tcpi_retransmits = sk.icsk_retransmits & 0xFF
    info.tcpi_probes = sk.icsk_probes_out & 0xFF
    info.tcpi_backoff = sk.icsk_backoff & 0xFF
    opts = 0
    if sk.tstamp_ok:
        opts |= TCPI_OPT_TIMESTAMPS
    if sk.sack_ok:
        opts |= TCPI_OPT_SACK
    if sk.wscale_ok:
        opts |= TCPI_OPT_WSCALE
        info.tcpi_snd_wscale = sk.snd_wscale
        info.tcpi_rcv_wscale = sk.rcv_wscale
        info.tcpi_wscale = (sk.snd_wscale & 15) | ((sk.rcv_wscale & 15) << 4)
    if sk.ecn_flags:
        if sk.ecn_flags & 1:                     # TCP_ECN_OK (tcp_ecn_mode_any)
            opts |= TCPI_OPT_ECN
        if sk.ecn_flags & 8:                     # TCP_ECN_SEEN
            opts |= TCPI_OPT_ECN_SEEN
    if sk.tfo is not None:
        opts, fail = tcp_fastopen_info(sk, opts)
        info.tcpi_app_limited_flags |= fail << 1       # tcpi_fastopen_client_fail:2
    info.tcpi_options = opts
    info.tcpi_rto = sk.icsk_rto
    info.tcpi_ato = min(sk.ack_ato, tcp_delack_max(sk))      # as Linux 6.7+ reports it
    info.tcpi_snd_mss = sk.mss_cache
    info.tcpi_rcv_mss = sk.ack_rcv_mss
    info.tcpi_unacked = sk.packets_out
    info.tcpi_sacked = sk.sacked_out
    info.tcpi_lost = sk.lost_out
    info.tcpi_retrans = sk.retrans_out
    info.tcpi_last_data_sent = (now - sk.lsndtime) // 1000 if sk.lsndtime else 0
    info.tcpi_last_data_recv = (now - sk.ack_lrcvtime) // 1000 if sk.ack_lrcvtime else 0
    info.tcpi_last_ack_recv = (now - sk.rcv_tstamp) // 1000 if sk.rcv_tstamp else 0
    info.tcpi_pmtu = sk.icsk_pmtu_cookie
    info.tcpi_rcv_ssthresh = sk.rcv_ssthresh
    info.tcpi_rtt = sk.srtt_us >> 3
    info.tcpi_rttvar = sk.mdev_us >> 2
    info.tcpi_snd_ssthresh = min(sk.snd_ssthresh, 0x7FFFFFFF)
    info.tcpi_snd_cwnd = sk.snd_cwnd
    info.tcpi_advmss = sk.advmss
    info.tcpi_reordering = sk.reordering
    info.tcpi_rcv_rtt = sk.rcv_rtt_us >> 3
    info.tcpi_rcv_space = sk.rcvq_space
    info.tcpi_total_retrans = sk.total_retrans
    info.tcpi_bytes_acked = sk.bytes_acked
    info.tcpi_bytes_received = sk.bytes_received
    info.tcpi_segs_out = sk.segs_out
    info.tcpi_segs_in = sk.segs_in
    info.tcpi_notsent_bytes = max(0, sk.write_seq - sk.snd_nxt)
    info.tcpi_min_rtt = sk.min_rtt_us if sk.min_rtt_us else 0xFFFFFFFF
    info.tcpi_data_segs_in = sk.data_segs_in
    info.tcpi_data_segs_out = sk.data_segs_out
    info.tcpi_delivered = sk.delivered
    info.tcpi_delivered_ce = sk.delivered_ce
    info.tcpi_pacing_rate = sk.sk_pacing_rate
    info.tcpi_max_pacing_rate = sk.sk_max_pacing_rate
    if sk.rate_app_limited:
        info.tcpi_app_limited_flags |= 1               # tcpi_delivery_rate_app_limited:1
    info.tcpi_delivery_rate = tcp_compute_delivery_rate(sk)
    info.tcpi_bytes_sent = sk.bytes_sent
    info.tcpi_bytes_retrans = sk.bytes_retrans
    info.tcpi_snd_wnd = sk.snd_wnd
    info.tcpi_rcv_wnd = sk.rcv_wnd
    info.tcpi_total_rto = sk.total_rto & 0xFFFF
    info.tcpi_dsack_dups = sk.dsack_dups
    info.tcpi_reord_seen = sk.reord_seen
    tcp_get_info_chrono_stats(sk, info)
    return info


def tcp_get_cc_info(sk) -> dict[str, int] | None:
    """The congestion-control info INET_DIAG and TCP_CC_INFO report (``ca_ops->get_info``):
    for BBR ``struct tcp_bbr_info`` (bw in bytes/s, min_rtt in us, gains in 1/256)."""
    ca = sk.ca
    get_info = getattr(ca, "get_info", None) if ca is not None else None
    return get_info(sk) if get_info is not None else None


def tcp_get_info_chrono_stats(sk, info: TcpInfo) -> None:
    """Busy / rwnd-limited / sndbuf-limited time in us, the running chronograph included;
    busy time is their sum (``tcp_get_info_chrono_stats``)."""
    run = sk.net.clock.now_us() // 1000 - sk.chrono_start
    stats = [sk.busy_time, sk.rwnd_limited, sk.sndbuf_limited]
    if sk.chrono_type:
        stats[sk.chrono_type - 1] += run
    stats = [v * 1000 for v in stats]                  # jiffies to us (HZ 1000)
    info.tcpi_busy_time = sum(stats)
    info.tcpi_rwnd_limited = stats[1]
    info.tcpi_sndbuf_limited = stats[2]


def _int(value) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        if len(value) < 4:
            raise oserror(E.EINVAL, "optlen < sizeof(int)")
        return _INT.unpack_from(value)[0]
    raise oserror(E.EINVAL, f"bad option value {value!r}")


def do_setsockopt(s: Socket, level: int, optname: int, value) -> None:
    """setsockopt(): Linux names, ranges and errno."""
    sk = s.sk
    tcp = s.is_tcp
    if level == SOL_SOCKET:
        if optname == 13:                                        # SO_LINGER
            if isinstance(value, (bytes, bytearray)):
                if len(value) < _LINGER.size:
                    raise oserror(E.EINVAL)
                onoff, secs = _LINGER.unpack_from(value)
            else:
                onoff, secs = value
            sk.linger = bool(onoff)
            sk.lingertime = max(secs, 0) * USEC
            return
        if optname in (20, 21):                                  # SO_RCVTIMEO / SO_SNDTIMEO
            if isinstance(value, (bytes, bytearray)):
                sec, usec = _TIMEVAL.unpack_from(value)
            else:
                sec, usec = value
            us = sec * USEC + usec
            s.timeout = us / USEC if us else None
            return
        v = _int(value)
        if optname == 2:                                         # SO_REUSEADDR
            sk.reuse = 1 if v else 0
        elif optname == 15:                                      # SO_REUSEPORT
            sk.reuseport = bool(v)
        elif optname == 9:                                       # SO_KEEPALIVE
            if tcp:
                from .timer import tcp_set_keepalive

                tcp_set_keepalive(sk, bool(v))
            sk.keepopen = bool(v)
        elif optname in (7, 8):                                  # SO_SNDBUF / SO_RCVBUF
            sc = s.net.sysctl
            cap = sc.wmem_max if optname == 7 else sc.rmem_max
            val = min(max(v, 0), cap) * 2
            if optname == 7:
                sk.sk_sndbuf = max(val, 4608)
                sk.userlocks |= 1
            else:
                sk.sk_rcvbuf = max(val, 2304)
                sk.userlocks |= 2
        elif optname == 18:                                      # SO_RCVLOWAT
            sk.sk_rcvlowat = max(v, 1)
        elif optname == 47:                                      # SO_MAX_PACING_RATE
            from .pacing import sk_set_max_pacing_rate

            # a 4-byte value: ~0U means unlimited (~0UL); 8 bytes give the whole u64
            if isinstance(value, (bytes, bytearray)) and len(value) >= 8:
                rate = int.from_bytes(value[:8], "little")
            else:
                rate = v & 0xFFFFFFFF
                if rate == 0xFFFFFFFF:
                    rate = S.SK_MAX_PACING_RATE
            sk_set_max_pacing_rate(sk, rate)
        elif optname == 10:                                      # SO_OOBINLINE
            if tcp:
                sk.urginline = bool(v)                           # sock_valbool_flag(URGINLINE)
        elif optname in (1, 5, 6, 16, 29, 37):                   # benign flags we accept
            pass
        else:
            raise oserror(E.ENOPROTOOPT, f"SOL_SOCKET option {optname}")
        return
    if level == SOL_IP:
        v = _int(value)
        if optname == 1:                                         # IP_TOS
            sk.tos = (v & 0xFC) | (sk.tos & 3)   # TCP keeps its own ECN bits (__ip_sock_set_tos)
        elif optname == 2:                                       # IP_TTL
            if v == -1:
                v = 0
            if not 0 <= v <= 255:
                raise oserror(E.EINVAL)
            sk.ttl = v
        elif optname == 10:                                      # IP_MTU_DISCOVER
            # do_ip_setsockopt: IP_PMTUDISC_DONT..IP_PMTUDISC_OMIT (inet->pmtudisc). TCP reads
            # it in tcp_v4_mtu_reduced; its segments keep DF whatever the mode (a difference)
            if not 0 <= v <= 5:
                raise oserror(E.EINVAL)
            sk.pmtudisc = v
        elif optname == 11:                                      # IP_RECVERR
            if not tcp:
                sk.recverr = bool(v)
        elif optname == 15:                                      # IP_FREEBIND
            if tcp:
                sk.freebind = bool(v)        # inet_can_nonlocal_bind lets bind() take any address
        else:
            raise oserror(E.ENOPROTOOPT, f"SOL_IP option {optname}")
        return
    if level == SOL_TCP and tcp:
        if optname == 13:                                        # TCP_CONGESTION
            name = value.decode().rstrip("\0") if isinstance(value, (bytes, bytearray)) else str(value)
            from .cong import tcp_ca_find, tcp_init_congestion_control

            if tcp_ca_find(name) is None:
                raise oserror(E.ENOENT, f"congestion control {name!r}")
            sk.congestion_name = name
            if sk.ca is not None:
                tcp_init_congestion_control(sk)
            return
        if optname in (14, 32):                                  # TCP_MD5SIG / TCP_MD5SIG_EXT
            from .md5 import tcp_v4_parse_md5_keys

            if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) < 4:
                raise oserror(E.EINVAL, "optlen < sizeof(int)")
            tcp_v4_parse_md5_keys(sk, optname, value)
            return
        if optname in TFO_SOCKOPTS:                              # TCP_FASTOPEN*
            do_tcp_fastopen_setsockopt(s, optname, value)
            return
        v = _int(value)
        if optname == 1:                                         # TCP_NODELAY
            if v:
                sk.nonagle |= S.TCP_NAGLE_OFF | S.TCP_NAGLE_PUSH
                from .output import tcp_push_pending_frames

                tcp_push_pending_frames(sk)
            else:
                sk.nonagle &= ~S.TCP_NAGLE_OFF
        elif optname == 2:                                       # TCP_MAXSEG
            if v and (v < S.TCP_MIN_MSS or v > 32767):
                raise oserror(E.EINVAL)
            sk.user_mss = v
        elif optname == 3:                                       # TCP_CORK
            if v:
                sk.nonagle |= S.TCP_NAGLE_CORK
            else:
                sk.nonagle &= ~S.TCP_NAGLE_CORK
                if sk.nonagle & S.TCP_NAGLE_OFF:
                    sk.nonagle |= S.TCP_NAGLE_PUSH
                from .output import tcp_push_pending_frames

                tcp_push_pending_frames(sk)
        elif optname in (4, 5):                                  # TCP_KEEPIDLE / TCP_KEEPINTVL
            if v < 1 or v > S.MAX_TCP_KEEPIDLE:
                raise oserror(E.EINVAL)
            if optname == 4:
                sk.keepalive_time = v * USEC
                if sk.keepopen and sk.state not in (S.TCP_CLOSE, S.TCP_LISTEN):
                    from .timer import inet_csk_reset_keepalive_timer, keepalive_time_elapsed

                    elapsed = keepalive_time_elapsed(sk)
                    left = sk.keepalive_time - elapsed
                    inet_csk_reset_keepalive_timer(sk, max(left, 0))
            else:
                sk.keepalive_intvl = v * USEC
        elif optname == 6:                                       # TCP_KEEPCNT
            if v < 1 or v > S.MAX_TCP_KEEPCNT:
                raise oserror(E.EINVAL)
            sk.keepalive_probes = v
        elif optname == 7:                                       # TCP_SYNCNT
            if v < 1 or v > S.MAX_TCP_SYNCNT:
                raise oserror(E.EINVAL)
            sk.icsk_syn_retries = v
        elif optname == 8:                                       # TCP_LINGER2
            if v < 0:
                sk.linger2 = -1
            elif v > s.net.sysctl.tcp_fin_timeout:
                sk.linger2 = 0
            else:
                sk.linger2 = v * USEC
        elif optname == 9:                                       # TCP_DEFER_ACCEPT
            sk.defer_accept = max(v, 0)
        elif optname == 10:                                      # TCP_WINDOW_CLAMP
            if v and v < 2048 // 2:
                v = 2048 // 2
            sk.window_clamp = v
        elif optname == 12:                                      # TCP_QUICKACK
            if v:
                sk.ack_pingpong = 0
                if sk.ack_pending & S.ICSK_ACK_SCHED and sk.state not in (S.TCP_CLOSE, S.TCP_LISTEN):
                    from .output import tcp_send_ack

                    tcp_send_ack(sk)
            else:
                sk.ack_pingpong = S.TCP_PINGPONG_THRESH
        elif optname == 18:                                      # TCP_USER_TIMEOUT
            if v < 0:
                raise oserror(E.EINVAL)
            sk.icsk_user_timeout = v
        elif optname == 25:                                      # TCP_NOTSENT_LOWAT
            sk.notsent_lowat = v
        elif optname in (16, 35):                                # THIN_LINEAR_TIMEOUTS, etc
            sk.thin_lto = bool(v)
        else:
            raise oserror(E.ENOPROTOOPT, f"SOL_TCP option {optname}")
        return
    if level == SOL_TCP:
        raise oserror(E.ENOPROTOOPT)
    raise oserror(E.ENOPROTOOPT)


def ip_mtu_getsockopt(s: Socket) -> int:
    """IP_MTU (``do_ip_getsockopt``): ``dst_mtu`` of the socket's cached route -- the path MTU
    learned toward the peer included; ENOTCONN without one (not connected)."""
    from ..net.route import dst_mtu

    sk = s.sk
    net = s.net
    if s.is_tcp:
        if sk.dst is None or sk.state in (S.TCP_CLOSE, S.TCP_LISTEN):
            raise oserror(E.ENOTCONN)
    elif sk.state != S.TCP_ESTABLISHED:
        raise oserror(E.ENOTCONN)
    route = net.fib_lookup(sk.daddr)
    if route is None:
        raise oserror(E.ENOTCONN)
    return dst_mtu(route)


def do_getsockopt(s: Socket, level: int, optname: int, buflen: int | None):
    """getsockopt(): ints as ints (bytes if ``buflen`` is given), TCP_INFO as struct bytes."""
    sk = s.sk
    tcp = s.is_tcp

    def ret(v: int):
        return _INT.pack(v)[: buflen] if buflen is not None else v

    if level == SOL_SOCKET:
        if optname == 4:                                         # SO_ERROR
            err = sk.sk_err
            sk.sk_err = 0
            return ret(err)
        if optname == 13:
            v = _LINGER.pack(int(sk.linger), sk.lingertime // USEC)
            return v if buflen is None else v[:buflen]
        if optname == 47:                                        # SO_MAX_PACING_RATE
            rate = sk.sk_max_pacing_rate
            if buflen is not None and buflen >= 8:
                return rate.to_bytes(8, "little")
            return ret(min(rate, 0xFFFFFFFF)) if buflen is None else (
                min(rate, 0xFFFFFFFF).to_bytes(4, "little")[:buflen])
        table = {
            2: lambda: sk.reuse, 15: lambda: int(sk.reuseport), 9: lambda: int(sk.keepopen),
            7: lambda: sk.sk_sndbuf, 8: lambda: sk.sk_rcvbuf, 3: lambda: s.type,
            30: lambda: int(tcp and sk.state == S.TCP_LISTEN), 38: lambda: s.proto,
            39: lambda: s.family, 18: lambda: getattr(sk, "sk_rcvlowat", 1),
            10: lambda: int(getattr(sk, "urginline", False)),
        }
        fn = table.get(optname)
        if fn is None:
            raise oserror(E.ENOPROTOOPT)
        return ret(fn())
    if level == SOL_IP:
        if optname == 1:
            return ret(sk.tos)
        if optname == 2:
            return ret(sk.ttl or s.net.sysctl.ip_default_ttl)
        if optname == 15:                                        # IP_FREEBIND
            return ret(int(getattr(sk, "freebind", False)))
        if optname == 10:                                        # IP_MTU_DISCOVER
            return ret(sk.pmtudisc)
        if optname == 11:                                        # IP_RECVERR
            return ret(int(getattr(sk, "recverr", False)))
        if optname == 14:                                        # IP_MTU
            return ret(ip_mtu_getsockopt(s))
        raise oserror(E.ENOPROTOOPT)
    if level == SOL_TCP and tcp:
        if optname == 11:                                        # TCP_INFO
            data = tcp_get_info(sk).pack()
            return data if buflen is None else data[:buflen]
        if optname == 13:
            name = (sk.ca.name if sk.ca is not None else sk.congestion_name).encode()
            return name if buflen is None else (name + b"\0" * 16)[:buflen]
        if optname in TFO_SOCKOPTS:                              # TCP_FASTOPEN*
            v = do_tcp_fastopen_getsockopt(s, optname)
            if isinstance(v, bytes):
                return v if buflen is None else v[:buflen]
            return ret(v)
        table = {
            1: lambda: int(bool(sk.nonagle & S.TCP_NAGLE_OFF)),
            2: lambda: (sk.mss_cache if sk.state not in (S.TCP_CLOSE, S.TCP_LISTEN) else
                        (sk.user_mss or S.TCP_MSS_DEFAULT)),
            3: lambda: int(bool(sk.nonagle & S.TCP_NAGLE_CORK)),
            4: lambda: sk.keepalive_time_when() // USEC,
            5: lambda: sk.keepalive_intvl_when() // USEC,
            6: lambda: sk.keepalive_probes_n(),
            7: lambda: sk.icsk_syn_retries or s.net.sysctl.tcp_syn_retries,
            8: lambda: (-1 if sk.linger2 < 0 else (sk.linger2 // USEC if sk.linger2 else
                                                   s.net.sysctl.tcp_fin_timeout)),
            9: lambda: sk.defer_accept,
            10: lambda: sk.window_clamp,
            12: lambda: int(not sk.in_pingpong_mode()),
            18: lambda: sk.icsk_user_timeout,
            25: lambda: sk.notsent_lowat,
        }
        fn = table.get(optname)
        if fn is None:
            raise oserror(E.ENOPROTOOPT)
        return ret(fn())
    raise oserror(E.ENOPROTOOPT)
