"""``netstat -napo``, ``ss -tanpoi`` and ``nstat`` for one host, read from its socket tables.

Everything here is a reader: rows are computed the way /proc/net/tcp (``get_tcp4_sock``,
``get_openreq4``, ``get_timewait4_sock``) and inet_diag fill them, then printed the way net-tools'
netstat and iproute2's ss print them.

netstat's timer column, ``kind (seconds/retransmits/probes)``:

- ``on``        retransmit timer pending (icsk_pending RETRANS / LOSS_PROBE / REO_TIMEOUT);
  request socks (SYN_RECV) show their SYN-ACK timer and ``num_timeout``;
- ``probe``     zero-window probe timer (icsk_pending PROBE0);
- ``keepalive`` sk_timer pending (keepalive, and FIN_WAIT2 of a non-orphan);
- ``timewait``  TIME_WAIT / orphan FIN_WAIT2 mini sockets;
- ``off``       nothing pending.

Seconds come from ``jiffies_delta_to_clock_t``: clamped at 0, truncated to 1/100 s.
"""

from __future__ import annotations

from typing import Any

from ..packet.ipv4 import int2ip
from ..tcp import sock as S
from ..tcp.minisocks import RequestSock, TimewaitSock
from ..tcp.sock import TcpSock

NETSTAT_TITLE = "Active Internet connections (servers and established)"
NETSTAT_HEADER = ("Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
                  " PID/Program name    " " Timer")
PROGNAME_WIDTH = 20

# net-tools' tcp_state[] names (index = state number)
_NETSTAT_STATES = {
    S.TCP_ESTABLISHED: "ESTABLISHED", S.TCP_SYN_SENT: "SYN_SENT", S.TCP_SYN_RECV: "SYN_RECV",
    S.TCP_FIN_WAIT1: "FIN_WAIT1", S.TCP_FIN_WAIT2: "FIN_WAIT2", S.TCP_TIME_WAIT: "TIME_WAIT",
    S.TCP_CLOSE: "CLOSE", S.TCP_CLOSE_WAIT: "CLOSE_WAIT", S.TCP_LAST_ACK: "LAST_ACK",
    S.TCP_LISTEN: "LISTEN", S.TCP_CLOSING: "CLOSING", S.TCP_NEW_SYN_RECV: "SYN_RECV",
}

# /proc/net/tcp timer_active codes
T_OFF, T_ON, T_KEEPALIVE, T_TIMEWAIT, T_PROBE = 0, 1, 2, 3, 4
_NETSTAT_TIMER = {T_OFF: "off", T_ON: "on", T_KEEPALIVE: "keepalive", T_TIMEWAIT: "timewait",
                  T_PROBE: "probe"}
_SS_TIMER = {T_OFF: "off", T_ON: "on", T_KEEPALIVE: "keepalive", T_TIMEWAIT: "timewait",
             T_PROBE: "persist"}

_RETRANS_LIKE = (S.ICSK_TIME_RETRANS, S.ICSK_TIME_REO_TIMEOUT, S.ICSK_TIME_LOSS_PROBE)


class SockRow:
    """One socket as /proc/net/tcp (netstat) and inet_diag (ss) describe it."""

    __slots__ = ("proto", "state", "saddr", "sport", "daddr", "dport", "rxq", "txq", "timer",
                 "expires_us", "retr", "probes", "owner", "sk")

    def __init__(self, proto: str, state: int, saddr: int, sport: int, daddr: int, dport: int,
                 rxq: int, txq: int, timer: int, expires_us: int, retr: int, probes: int,
                 owner: str | None, sk: Any) -> None:
        self.proto = proto
        self.state = state
        self.saddr = saddr
        self.sport = sport
        self.daddr = daddr
        self.dport = dport
        self.rxq = rxq
        self.txq = txq
        self.timer = timer
        self.expires_us = expires_us
        self.retr = retr
        self.probes = probes
        self.owner = owner
        self.sk = sk


def _row_full(sk: TcpSock, now: int) -> SockRow:
    """``get_tcp4_sock``."""
    pending = sk.icsk_pending
    if pending in _RETRANS_LIKE:
        timer, expires = T_ON, sk.retransmit_timer.expires
    elif pending == S.ICSK_TIME_PROBE0:
        timer, expires = T_PROBE, sk.retransmit_timer.expires
    elif sk.keepalive_timer.pending:
        timer, expires = T_KEEPALIVE, sk.keepalive_timer.expires
    else:
        timer, expires = T_OFF, now
    if sk.state == S.TCP_LISTEN:
        rxq = len(sk.accept_queue or ())
        txq = 0
    else:
        rxq = max(sk.rcv_nxt - sk.copied_seq, 0)
        txq = sk.write_seq - sk.snd_una
    owner = sk.owner if (sk.owner and not sk.dead and sk.socket is not None) else None
    return SockRow("tcp", sk.state, sk.rcv_saddr or sk.saddr, sk.sport, sk.daddr, sk.dport,
                   rxq, txq, timer, expires, sk.icsk_retransmits, sk.icsk_probes_out, owner, sk)


def _row_req(req: RequestSock, now: int) -> SockRow:
    """``get_openreq4``: SYN_RECV, the SYN-ACK timer, num_timeout retransmits, no owner."""
    expires = req.timer.expires if req.timer.pending else now
    return SockRow("tcp", S.TCP_SYN_RECV, req.saddr, req.sport, req.daddr, req.dport, 0, 0,
                   T_ON, expires, req.num_timeout, 0, None, req)


def _row_tw(tw: TimewaitSock, now: int) -> SockRow:
    """``get_timewait4_sock``: the substate (TIME_WAIT or FIN_WAIT2) and the tw timer."""
    expires = tw.timer.expires if tw.timer.pending else now
    return SockRow("tcp", tw.substate, tw.rcv_saddr or tw.saddr, tw.sport, tw.daddr, tw.dport,
                   0, 0, T_TIMEWAIT, expires, 0, 0, None, tw)


def tcp_rows(net: Any) -> list[SockRow]:
    """Rows in /proc/net/tcp order: listeners first, then the established hash."""
    now = net.clock.now_us()
    rows: list[SockRow] = []
    listeners = [sk for sk in net.sockets
                 if isinstance(sk, TcpSock) and sk.state == S.TCP_LISTEN]
    listeners.sort(key=lambda sk: (sk.sport, sk.rcv_saddr or sk.saddr))
    seen: set[int] = set()
    for sk in listeners:
        seen.add(id(sk))
        rows.append(_row_full(sk, now))
    for obj in list(net.tcp_hashinfo.ehash.values()):
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, TimewaitSock):
            rows.append(_row_tw(obj, now))
        elif isinstance(obj, RequestSock):
            rows.append(_row_req(obj, now))
        elif isinstance(obj, TcpSock):
            if obj.state != S.TCP_CLOSE:
                rows.append(_row_full(obj, now))
    return rows


def _udp_socks(net: Any) -> list[Any]:
    """UDP sockets, if the host has a UDP table at all (found defensively: it is optional)."""
    table = getattr(net, "_udp_table", None)
    if table is None:
        return []
    found: list[Any] = []
    seen: set[int] = set()

    def add(sk: Any) -> None:
        if id(sk) not in seen and hasattr(sk, "sport"):
            seen.add(id(sk))
            found.append(sk)

    for name in ("socks", "sockets", "all_socks"):
        coll = getattr(table, name, None)
        if coll:
            for sk in (coll.values() if isinstance(coll, dict) else coll):
                if isinstance(sk, (list, tuple, set)):
                    for s2 in sk:
                        add(s2)
                else:
                    add(sk)
    for name in ("hash", "table", "ports"):
        coll = getattr(table, name, None)
        if isinstance(coll, dict):
            for v in coll.values():
                for s2 in (v if isinstance(v, (list, tuple, set)) else (v,)):
                    add(s2)
    for sk in getattr(net, "sockets", ()):
        if not isinstance(sk, TcpSock) and hasattr(sk, "sport") and hasattr(sk, "saddr"):
            add(sk)
    found.sort(key=lambda sk: (sk.sport, getattr(sk, "saddr", 0)))
    return found


def udp_rows(net: Any) -> list[SockRow]:
    """Rows of /proc/net/udp: rx/tx queue, ESTABLISHED if connected, no timer."""
    rows = []
    for sk in _udp_socks(net):
        daddr = getattr(sk, "daddr", 0) or 0
        dport = getattr(sk, "dport", 0) or 0
        state = S.TCP_ESTABLISHED if (daddr and dport) else S.TCP_CLOSE
        inq = getattr(sk, "inq", None)
        try:
            rxq = inq() if callable(inq) else int(getattr(sk, "rcv_queue_bytes", 0) or 0)
        except Exception:
            rxq = 0
        owner = getattr(sk, "owner", None)
        rows.append(SockRow("udp", state, getattr(sk, "rcv_saddr", 0) or getattr(sk, "saddr", 0)
                            or 0, sk.sport, daddr, dport, rxq, 0, T_OFF, 0, 0, 0, owner, sk))
    return rows


def _addr(addr: int, port: int) -> str:
    """netstat -n's address: a.b.c.d:port, '*' for port 0."""
    return f"{int2ip(addr)}:{port if port else '*'}"


def _centis(expires_us: int, now: int) -> int:
    """``jiffies_delta_to_clock_t``: hundredths of a second, never negative, truncated."""
    d = expires_us - now
    return d // 10_000 if d > 0 else 0


def _secs(centis: int) -> str:
    return f"{centis // 100}.{centis % 100:02d}"


def netstat_timer(row: SockRow, now: int) -> str:
    """The Timer column: ``off (0.00/0/0)``, ``on (0.20/3/0)``, ``timewait (54.04/0/0)``..."""
    c = 0 if row.timer == T_OFF else _centis(row.expires_us, now)
    return f"{_NETSTAT_TIMER[row.timer]} ({_secs(c)}/{row.retr}/{row.probes})"


def netstat_line(row: SockRow, now: int) -> str:
    """One row exactly as net-tools prints it (``tcp_do_one`` / ``udp_do_one`` + ``finish_this_one``)."""
    local = _addr(row.saddr, row.sport)
    remote = _addr(row.daddr, row.dport)
    if row.proto == "udp":
        state = "ESTABLISHED" if row.state == S.TCP_ESTABLISHED else ""
    else:
        state = _NETSTAT_STATES.get(row.state, "UNKNOWN")
    prog = (row.owner or "-")[:PROGNAME_WIDTH - 1]
    return (f"{row.proto:<4}  {row.rxq:6d} {row.txq:6d} {local:<23} {remote:<23} {state:<11}"
            f" {prog:<{PROGNAME_WIDTH}} {netstat_timer(row, now)}")


def netstat_napo(net: Any, grep: str | None = None, *, header: bool = True,
                 ignore_case: bool = False) -> list[str]:
    """``netstat -napo`` of one host: title, header, then TCP (and UDP) rows.

    ``grep`` keeps only lines containing it (like ``| grep``, which also drops the header
    lines unless they match); ``ignore_case`` is ``grep -i``.
    """
    now = net.clock.now_us()
    lines = [NETSTAT_TITLE, NETSTAT_HEADER] if header else []
    for row in tcp_rows(net):
        lines.append(netstat_line(row, now))
    for row in udp_rows(net):
        lines.append(netstat_line(row, now))
    if grep is not None:
        if ignore_case:
            g = grep.lower()
            lines = [ln for ln in lines if g in ln.lower()]
        else:
            lines = [ln for ln in lines if grep in ln]
    return lines


# ---- ss -tanpoi --------------------------------------------------------------------------------

_SS_STATES = dict(S.SS_STATE_NAMES)
_SS_STATES[S.TCP_NEW_SYN_RECV] = "SYN-RECV"


def ss_ms_timer(ms: int) -> str:
    """iproute2's ``print_ms_timer``: 1min59sec, 9.876ms-style, 200ms, 0ms..."""
    if ms < 0:
        ms = 0
    secs = ms // 1000
    minutes = secs // 60
    secs %= 60
    msecs = ms % 1000
    out = ""
    if minutes:
        msecs = 0
        out = f"{minutes}min"
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += f"{secs}{'.' if msecs else 'sec'}"
    if msecs:
        out += f"{msecs:03d}ms"
    return out


def _ss_timer(row: SockRow, now: int) -> str:
    """inet_diag's idiag_timer/expires/retrans as ss -o prints them (nothing when off)."""
    if row.timer == T_OFF:
        return ""
    ms = max(row.expires_us - now, 0) // 1000
    if row.timer == T_ON:
        n = row.retr
    elif row.timer == T_TIMEWAIT:
        n = 0
    else:
        n = row.probes
    return f"timer:({_SS_TIMER[row.timer]},{ss_ms_timer(ms)},{n})"


def _g(x: float) -> str:
    """C's %g for the small ms values ss prints."""
    return f"{x:g}"


_U64_MAX = (1 << 64) - 1


def sprint_bw(bw: float) -> str:
    """ss's ``sprint_bw``: bits per second with a G/M/K suffix (%.1f) or %g."""
    if bw > 1e9:
        return f"{bw / 1e9:.1f}G"
    if bw > 1e6:
        return f"{bw / 1e6:.1f}M"
    if bw > 1e3:
        return f"{bw / 1e3:.1f}K"
    return _g(bw)


def ss_info(sk: TcpSock) -> str:
    """The ``-i`` line from ``tcp_info`` (``tcp_show_info``), a faithful subset."""
    from ..tcp.sockopt import tcp_get_cc_info, tcp_get_info

    if sk.state == S.TCP_LISTEN:
        return f"{sk.congestion_name or 'cubic'} cwnd:{sk.snd_cwnd}"
    i = tcp_get_info(sk)
    parts: list[str] = []
    if sk.tstamp_ok:
        parts.append("ts")
    if sk.sack_ok:
        parts.append("sack")
    if i.tcpi_options & 8:                       # TCPI_OPT_ECN, TCPI_OPT_ECN_SEEN
        parts.append("ecn")
    if i.tcpi_options & 16:
        parts.append("ecnseen")
    parts.append(str(sk.congestion_name or "cubic"))
    if sk.wscale_ok:
        parts.append(f"wscale:{sk.snd_wscale},{sk.rcv_wscale}")
    parts.append(f"rto:{_g(i.tcpi_rto / 1000)}")
    if i.tcpi_backoff:
        parts.append(f"backoff:{i.tcpi_backoff}")
    if i.tcpi_rtt:
        parts.append(f"rtt:{_g(i.tcpi_rtt / 1000)}/{_g(i.tcpi_rttvar / 1000)}")
    if i.tcpi_ato:
        parts.append(f"ato:{_g(i.tcpi_ato / 1000)}")
    parts.append(f"mss:{i.tcpi_snd_mss}")
    if i.tcpi_pmtu:
        parts.append(f"pmtu:{i.tcpi_pmtu}")
    if i.tcpi_rcv_mss:
        parts.append(f"rcvmss:{i.tcpi_rcv_mss}")
    if i.tcpi_advmss:
        parts.append(f"advmss:{i.tcpi_advmss}")
    parts.append(f"cwnd:{i.tcpi_snd_cwnd}")
    if i.tcpi_snd_ssthresh < 0xFFFF:
        parts.append(f"ssthresh:{i.tcpi_snd_ssthresh}")
    for name, v in (("bytes_sent", i.tcpi_bytes_sent), ("bytes_retrans", i.tcpi_bytes_retrans),
                    ("bytes_acked", i.tcpi_bytes_acked),
                    ("bytes_received", i.tcpi_bytes_received), ("segs_out", i.tcpi_segs_out),
                    ("segs_in", i.tcpi_segs_in), ("data_segs_out", i.tcpi_data_segs_out),
                    ("data_segs_in", i.tcpi_data_segs_in)):
        if v:
            parts.append(f"{name}:{v}")
    cc = tcp_get_cc_info(sk)
    if cc is not None and "bbr_bw_lo" in cc:
        bw = (cc["bbr_bw_hi"] << 32) | cc["bbr_bw_lo"]
        bbr = f"bbr:(bw:{sprint_bw(bw * 8.0)}bps,mrtt:{_g(cc['bbr_min_rtt'] / 1000)}"
        if cc["bbr_pacing_gain"]:
            bbr += f",pacing_gain:{_g(cc['bbr_pacing_gain'] / 256)}"
        if cc["bbr_cwnd_gain"]:
            bbr += f",cwnd_gain:{_g(cc['bbr_cwnd_gain'] / 256)}"
        parts.append(bbr + ")")
    parts.append(f"lastsnd:{i.tcpi_last_data_sent}")
    parts.append(f"lastrcv:{i.tcpi_last_data_recv}")
    parts.append(f"lastack:{i.tcpi_last_ack_recv}")
    if i.tcpi_pacing_rate and i.tcpi_pacing_rate != _U64_MAX:
        pr = f"pacing_rate {sprint_bw(i.tcpi_pacing_rate * 8.0)}bps"
        if i.tcpi_max_pacing_rate and i.tcpi_max_pacing_rate != _U64_MAX:
            pr += f"/{sprint_bw(i.tcpi_max_pacing_rate * 8.0)}bps"
        parts.append(pr)
    if i.tcpi_delivery_rate:
        parts.append(f"delivery_rate {sprint_bw(i.tcpi_delivery_rate * 8.0)}bps")
    if i.tcpi_delivered:
        parts.append(f"delivered:{i.tcpi_delivered}")
    if i.tcpi_delivered_ce:
        parts.append(f"delivered_ce:{i.tcpi_delivered_ce}")
    if i.tcpi_app_limited_flags & 1:
        parts.append("app_limited")
    if i.tcpi_unacked:
        parts.append(f"unacked:{i.tcpi_unacked}")
    if i.tcpi_retrans or i.tcpi_total_retrans:
        parts.append(f"retrans:{i.tcpi_retrans}/{i.tcpi_total_retrans}")
    if i.tcpi_lost:
        parts.append(f"lost:{i.tcpi_lost}")
    if i.tcpi_sacked and sk.state != S.TCP_LISTEN:
        parts.append(f"sacked:{i.tcpi_sacked}")
    if i.tcpi_rcv_rtt:
        parts.append(f"rcv_rtt:{_g(i.tcpi_rcv_rtt / 1000)}")
    if i.tcpi_rcv_space:
        parts.append(f"rcv_space:{i.tcpi_rcv_space}")
    if i.tcpi_rcv_ssthresh:
        parts.append(f"rcv_ssthresh:{i.tcpi_rcv_ssthresh}")
    if i.tcpi_min_rtt and i.tcpi_min_rtt != 0xFFFFFFFF:
        parts.append(f"minrtt:{_g(i.tcpi_min_rtt / 1000)}")
    if i.tcpi_snd_wnd:
        parts.append(f"snd_wnd:{i.tcpi_snd_wnd}")
    if i.tcpi_rcv_wnd:
        parts.append(f"rcv_wnd:{i.tcpi_rcv_wnd}")
    return " ".join(parts)


SS_HEADER = (f"{'State':<10} {'Recv-Q':>6} {'Send-Q':>6} {'Local Address:Port':>20} "
             f"{'Peer Address:Port':<20} Process")


def ss_tanpoi(net: Any, info: bool = True) -> list[str]:
    """``ss -tanpoi`` of one host: one line per TCP socket (+ a tab-indented info line).

    Recv-Q/Send-Q as inet_diag reports them (LISTEN: accept queue / backlog), ``users:`` from
    the socket's owner, ``timer:(...)`` as ``-o`` prints it, and the ``-i`` line for full sockets.
    """
    now = net.clock.now_us()
    lines = [SS_HEADER]
    for row in tcp_rows(net):
        sk = row.sk
        rxq, txq = row.rxq, row.txq
        if row.state == S.TCP_LISTEN:
            txq = sk.max_ack_backlog
        state = _SS_STATES.get(row.state, str(row.state))
        local = _addr(row.saddr, row.sport)
        peer = _addr(row.daddr, row.dport)
        line = f"{state:<10} {rxq:>6} {txq:>6} {local:>20} {peer:<20}"
        extra = []
        if row.owner:
            pid, _, prog = row.owner.partition("/")
            fd = getattr(getattr(sk, "socket", None), "fd", None)
            fdtxt = f",fd={fd}" if isinstance(fd, int) and fd >= 0 else ""
            extra.append(f'users:(("{prog or pid}",pid={pid}{fdtxt}))')
        t = _ss_timer(row, now)
        if t:
            extra.append(t)
        if extra:
            line += " " + " ".join(extra)
        lines.append(line.rstrip())
        if info and isinstance(sk, TcpSock):
            lines.append("\t " + ss_info(sk))
    return lines


# ---- nstat -------------------------------------------------------------------------------------

def nstat(net: Any, all: bool = False, pattern: str | None = None,
          since: dict[str, int] | None = None) -> list[str]:
    """``nstat [-a] [-z]`` of one host: '#kernel' then 'Name  value  rate' lines.

    With ``since`` (a ``dict(net.mib)`` snapshot) values are deltas, as nstat prints between two
    runs; ``all=True`` also prints zero counters (``-az``). The rate column is 0.0: there is no
    nstat daemon averaging over wall time.
    """
    mib = net.mib
    lines = ["#kernel"]
    for name, value in mib.nstat(all_=True, pattern=pattern):
        if since is not None:
            value = value - since.get(name, 0)
        if not value and not all:
            continue
        lines.append(f"{name:<32}{value:<16d}{0.0:6.1f}")
    return lines


__all__ = ["netstat_napo", "ss_tanpoi", "nstat", "tcp_rows", "udp_rows", "netstat_line",
           "netstat_timer", "ss_ms_timer", "NETSTAT_HEADER", "NETSTAT_TITLE", "SockRow"]
