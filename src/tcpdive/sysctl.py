"""Per-host sysctl table (net.ipv4.* / net.core.*) of Linux 6.18: one ``TABLE`` row per knob.

Values are plain ``__slots__`` attributes in the unit /proc/sys shows; ``set`` parses like the
kernel's proc handlers after procps ``sysctl -w`` (kernel/sysctl.c, net/ipv4/sysctl_net_ipv4.c).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .ktime import HZ

__all__ = ["AVAILABLE_CONGESTION_CONTROL", "Knob", "Sysctl", "TABLE"]

_log = logging.getLogger(__name__)

INT_MAX = (1 << 31) - 1
UINT_MAX = (1 << 32) - 1
ULONG_MAX = (1 << 64) - 1

#: Congestion-control modules registered on this host, in registration order (reno is built in
#: first by tcp_init, then cubic): what tcp_available_congestion_control shows.
AVAILABLE_CONGESTION_CONTROL = ("reno", "cubic")
#: Modules that setting net.ipv4.tcp_congestion_control loads on demand (request_module
#: "tcp_NAME"); once loaded they are listed in tcp_available_congestion_control too.
LOADABLE_CONGESTION_CONTROL = ("bbr",)

# A nominal 8 GiB host: nr_free_buffer_pages() = nr_kernel_pages = 2**21 pages of 4 KiB. Linux
# sizes these defaults from RAM at boot; a fixed host keeps runs reproducible.
_PAGE_SIZE = 4096
_RAM_PAGES = 1 << 21
_TCP_MEM_LIMIT = max(_RAM_PAGES // 16, 128)                   # tcp_init_mem()
_SHARE_LIMIT = _RAM_PAGES * _PAGE_SIZE // 128                 # tcp_init(): 1/128 of memory
_EHASH_ENTRIES = min(_RAM_PAGES >> (17 - 12), 512 * 1024)     # one slot per 128 KiB, capped
# include/net/sock.h: TCP_SKB_MIN_TRUESIZE = 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))
_SOCK_MIN_RCVBUF = 2048 + 256
_SOCK_MIN_SNDBUF = 2 * _SOCK_MIN_RCVBUF


class _WriteError(Exception):
    """A proc handler refused a write; ``partial`` is what it stored before failing, if anything."""

    def __init__(self, code: int = errno.EINVAL, partial: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.partial = partial


# ---------------------------------------------------------------------------------------------
# kernel/sysctl.c number parsing

_WS = " \t\n\v\f\r"            # isspace() in the C locale: what proc_skip_spaces() skips
_SEP = " \t\n"                 # proc_wspace_sep: the characters allowed right after a number
_DEC = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_TMPBUFLEN = 22


def _skip(buf: str, i: int, chars: str = _WS) -> int:
    """proc_skip_spaces / proc_skip_char: index of the first character not in ``chars``."""
    while i < len(buf) and buf[i] in chars:
        i += 1
    return i


def _get_long(buf: str, i: int, trailers: str) -> tuple[bool, int, int]:
    """proc_get_long: ``[-]number`` in base 0 at ``buf[i:]``; returns (negative, value, next index)."""
    size = len(buf) - i
    if size <= 0:
        raise _WriteError()
    tmp = buf[i:i + _TMPBUFLEN - 1]
    neg = tmp[0] == "-" and size > 1
    p = 1 if neg else 0
    if tmp[p:p + 1] == "" or tmp[p] not in _DEC:
        raise _WriteError()
    base = 10                                   # _parse_integer_fixup_radix()
    if tmp[p] == "0":
        x, d = tmp[p + 1:p + 2], tmp[p + 2:p + 3]
        if x in ("x", "X") and d != "" and d in _HEX:
            base, p = 16, p + 2
        else:
            base = 8
    value = 0
    while p < len(tmp) and tmp[p] in _HEX and int(tmp[p], 16) < base:
        value = value * base + int(tmp[p], 16)
        p += 1
    if value > ULONG_MAX or p == _TMPBUFLEN - 1:
        raise _WriteError()
    if p < size and buf[i + p] not in trailers:
        raise _WriteError()
    return neg, value, i + p


def _dostring(text: str, maxlen: int) -> str:
    """_proc_do_string write: up to maxlen - 1 characters, stopping at a newline or NUL."""
    return re.split("[\n\0]", text, maxsplit=1)[0][:maxlen - 1]


# ---------------------------------------------------------------------------------------------
# Proc handlers ("kinds"): parse a write, show a value, and render a Python value as input text


class _Kind:
    """A /proc/sys handler: ``parse`` a write against the current value, ``show`` a value."""

    handler = ""

    def parse(self, text: str, cur: Any) -> Any:
        raise _WriteError(errno.EPERM)

    def show(self, value: Any) -> str:
        return str(value)

    def text(self, value: Any) -> str:
        return str(int(value)) if isinstance(value, bool) else str(value)


class _IntVec(_Kind):
    """proc_dointvec / proc_dointvec_minmax: ``n`` ints, each converted by ``conv``."""

    handler = "proc_dointvec"

    def __init__(self, lo: int | None = None, hi: int | None = None, n: int = 1,
                 atomic: bool = False) -> None:
        self.lo, self.hi, self.n, self.atomic = lo, hi, n, atomic
        if lo is not None or hi is not None:
            self.handler += "_minmax"

    def conv(self, neg: bool, lval: int) -> int:
        """do_proc_dointvec_minmax_conv: fit an int, then [lo, hi]."""
        if lval > INT_MAX + neg:
            raise _WriteError()
        v = -lval if neg else lval
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            raise _WriteError()
        return v

    def parse(self, text: str, cur: Any) -> Any:
        """__do_proc_dointvec write: fields are stored one by one; missing ones keep their value."""
        buf = text + "\n"
        vals = list(cur) if self.n > 1 else [cur]
        i = k = 0
        try:
            while i < len(buf) and k < self.n:
                i = _skip(buf, i)
                if i == len(buf):
                    break
                neg, lval, i = _get_long(buf, i, _SEP)
                vals[k] = self.conv(neg, lval)
                k += 1
        except _WriteError as e:
            if k and not self.atomic:
                e.partial = tuple(vals)
            raise
        if not k:
            raise _WriteError()
        return tuple(vals) if self.n > 1 else vals[0]

    def show(self, value: Any) -> str:
        return "\t".join(map(str, value)) if self.n > 1 else str(value)

    def text(self, value: Any) -> str:
        return " ".join(map(str, value)) if self.n > 1 else super().text(value)


class _Jiffies(_IntVec):
    """proc_dointvec_jiffies: seconds, stored as seconds * HZ (negative values pass)."""

    handler = "proc_dointvec_jiffies"

    def conv(self, neg: bool, lval: int) -> int:
        if lval > INT_MAX // HZ:
            raise _WriteError()
        return -lval if neg else lval


class _MsJiffies(_IntVec):
    """proc_dointvec_ms_jiffies: milliseconds through msecs_to_jiffies (rounded up to a jiffy)."""

    handler = "proc_dointvec_ms_jiffies"

    def conv(self, neg: bool, lval: int) -> int:
        m = (-lval if neg else lval) & UINT_MAX      # msecs_to_jiffies takes an unsigned int
        if m > INT_MAX:
            raise _WriteError()
        jif = -(-m * HZ // 1000)
        if jif > INT_MAX:
            raise _WriteError()
        return jif * 1000 // HZ


class _ULongVec(_IntVec):
    """proc_doulongvec_minmax: unsigned longs, no negatives."""

    handler = "proc_doulongvec_minmax"

    def conv(self, neg: bool, lval: int) -> int:
        if neg:
            raise _WriteError()
        return lval


class _UInt(_Kind):
    """proc_douintvec(_minmax) and proc_dou8vec_minmax: one unsigned value in [lo, hi]."""

    def __init__(self, lo: int = 0, hi: int = UINT_MAX, handler: str = "proc_douintvec") -> None:
        self.lo, self.hi, self.handler = lo, hi, handler

    def parse(self, text: str, cur: Any) -> int:
        """do_proc_douintvec_w: the minmax conv's -ERANGE comes back as -EINVAL."""
        buf = text + "\n"
        i = _skip(buf, 0)
        if i == len(buf):
            raise _WriteError()
        neg, lval, _ = _get_long(buf, i, _SEP)
        if neg or lval > UINT_MAX or not self.lo <= lval <= self.hi:
            raise _WriteError()
        return lval


class _Bitmap(_Kind):
    """proc_do_large_bitmap over ports 0..65535: ``"1,3-4,10"``; a write replaces the set."""

    handler = "proc_do_large_bitmap"
    nbits = 65536

    def parse(self, text: str, cur: Any) -> frozenset[int]:
        buf = text + "\n"
        ports: set[int] = set()
        i = _skip(buf, 0, "\n")
        while i < len(buf):
            neg, a, i = _get_long(buf, i, "-,\n")
            c = buf[i] if i < len(buf) else ""
            if a >= self.nbits or neg:
                raise _WriteError()
            b = a
            i += i < len(buf)
            if c == "-":
                neg, b, i = _get_long(buf, i, ",\n\0")
                if b >= self.nbits or neg or a > b:
                    raise _WriteError()
                i += i < len(buf)
            ports.update(range(a, b + 1))
            i = _skip(buf, i, "\n")
        return frozenset(ports)

    def show(self, value: Any) -> str:
        ports = sorted(value)
        out: list[str] = []
        i = 0
        while i < len(ports):
            j = i
            while j + 1 < len(ports) and ports[j + 1] == ports[j] + 1:
                j += 1
            out.append(str(ports[i]) if i == j else f"{ports[i]}-{ports[j]}")
            i = j + 1
        return ",".join(out)

    def text(self, value: Any) -> str:
        return self.show(value) if not isinstance(value, int) else str(value)


class _CaName(_Kind):
    """proc_tcp_congestion_control: a registered algorithm, else tcp_set_default_... -ENOENT."""

    handler = "proc_tcp_congestion_control"

    def parse(self, text: str, cur: Any) -> str:
        name = _dostring(text, 16)                    # TCP_CA_NAME_MAX
        if name not in AVAILABLE_CONGESTION_CONTROL + LOADABLE_CONGESTION_CONTROL:
            raise _WriteError(errno.ENOENT)
        return name


class _CaList(_Kind):
    """proc_allowed_congestion_control: space-separated names (strsep stops at an empty one)."""

    handler = "proc_allowed_congestion_control"

    def parse(self, text: str, cur: Any) -> str:
        names = []
        for name in _dostring(text, 2048).split(" "):  # TCP_CA_BUF_MAX
            if not name:
                break
            if name not in AVAILABLE_CONGESTION_CONTROL:
                raise _WriteError(errno.ENOENT)
            names.append(name)
        return " ".join(ca for ca in AVAILABLE_CONGESTION_CONTROL if ca in names)

    def text(self, value: Any) -> str:
        return value if isinstance(value, str) else " ".join(value)


class _FastopenKey(_Kind):
    """proc_tcp_fastopen_key: ``primary[,backup]``, each sscanf("%x-%x-%x-%x"), shown as %08x."""

    handler = "proc_tcp_fastopen_key"
    _word = re.compile(r"[ \t\n\v\f\r]*(0[xX][0-9a-fA-F]*|[0-9a-fA-F]+)")

    def _key(self, s: str) -> str:
        words = []
        pos = 0
        for n in range(4):
            if n and s[pos:pos + 1] != "-":
                raise _WriteError()
            m = self._word.match(s, pos + bool(n))
            if not m:
                raise _WriteError()
            digits = m.group(1)
            digits = digits[2:] if digits[:2] in ("0x", "0X") else digits
            words.append(f"{int(digits or '0', 16) & UINT_MAX:08x}")
            pos = m.end()
        return "-".join(words)

    def parse(self, text: str, cur: Any) -> str:
        primary, comma, backup = _dostring(text, 2 * 2 * 16 + 2 * 5).partition(",")
        return self._key(primary) + (("," + self._key(backup)) if comma else "")


_INT = _IntVec()


def _minmax(lo: int | None = None, hi: int | None = None, n: int = 1) -> _IntVec:
    return _IntVec(lo, hi, n)


def _u8(lo: int = 0, hi: int = 255) -> _UInt:
    return _UInt(lo, hi, "proc_dou8vec_minmax")


def _uint(lo: int = 0, hi: int = UINT_MAX) -> _UInt:
    return _UInt(lo, hi, "proc_douintvec_minmax" if (lo, hi) != (0, UINT_MAX) else "proc_douintvec")


_JIFFIES = _Jiffies()
_MS_JIFFIES = _MsJiffies()
_RO = _Kind()


# ---------------------------------------------------------------------------------------------
# Cross-knob rules (custom handlers in net/ipv4/sysctl_net_ipv4.c)


def _check_port_range(s: Sysctl, rng: tuple[int, int]) -> None:
    """ipv4_local_port_range: low <= high and low >= ip_unprivileged_port_start."""
    if rng[1] < rng[0] or rng[0] < s.ip_unprivileged_port_start:
        raise _WriteError()


def _warn_port_parity(s: Sysctl, rng: tuple[int, int]) -> None:
    """set_local_port_range: same parity is accepted with a one-time warning per netns."""
    if not (rng[0] ^ rng[1]) & 1 and not s._parity_warned:
        s._parity_warned = True
        _log.warning("ip_local_port_range: prefer different parity for start/end values.")


def _check_prot_sock(s: Sysctl, pports: int) -> None:
    """ipv4_privileged_ports: the local port range may not start below it."""
    if s.ip_local_port_range[0] < pports:
        raise _WriteError()


def _allow_default_ca(s: Sysctl, name: str) -> None:
    """tcp_set_default_congestion_control: the default algorithm is always allowed."""
    available = s.tcp_available_congestion_control.split()
    if name not in available:                     # the module was loaded for it
        available.append(name)
        s.tcp_available_congestion_control = " ".join(available)
    allowed = s.tcp_allowed_congestion_control.split()
    s.tcp_allowed_congestion_control = " ".join(
        ca for ca in available if ca in allowed or ca == name)


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True, slots=True)
class Knob:
    """One sysctl row: full dotted name, Linux default, handler, unit, one-line doc."""

    name: str
    default: Any
    kind: _Kind
    unit: str
    doc: str
    mode: int = 0o644
    check: Callable[[Sysctl, Any], None] | None = None
    after: Callable[[Sysctl, Any], None] | None = None
    emulated: bool = False
    attr: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attr", self.name.rpartition(".")[2])

    @property
    def path(self) -> str:
        """The file under /proc/sys."""
        return "/proc/sys/" + self.name.replace(".", "/")

    @property
    def handler(self) -> str:
        """The Linux proc handler this row follows."""
        return self.kind.handler


_K = Knob
_NOMINAL = "nominal 8 GiB host"
_TW_RECYCLE_NOTE = "tcpdive emulation of the pre-4.12 knob (removed from Linux in 4.12)"

TABLE: tuple[Knob, ...] = (
    # net/core/sysctl_net_core.c; defaults net/core/sock.c (6.18: [rw]mem_max 4 MB,
    # [rw]mem_default SK_[RW]MEM_DEFAULT = 212992), net/core/dev.c, include/linux/socket.h.
    _K("net.core.netdev_max_backlog", 1000, _INT, "packets",
       "Per-CPU input queue length for packets received faster than the stack processes them."),
    _K("net.core.optmem_max", 128 * 1024, _minmax(0), "bytes",
       "Max ancillary data / option memory per socket (sk_omem_alloc)."),
    _K("net.core.rmem_default", 212992, _minmax(_SOCK_MIN_RCVBUF), "bytes",
       "Default receive buffer (sk_rcvbuf) of non-TCP sockets."),
    _K("net.core.rmem_max", 4 << 20, _minmax(_SOCK_MIN_RCVBUF), "bytes",
       "Largest SO_RCVBUF an unprivileged setsockopt() may request."),
    _K("net.core.somaxconn", 4096, _minmax(0), "connections",
       "Upper bound for the listen() backlog (SOMAXCONN)."),
    _K("net.core.wmem_default", 212992, _minmax(_SOCK_MIN_SNDBUF), "bytes",
       "Default send buffer (sk_sndbuf) of non-TCP sockets."),
    _K("net.core.wmem_max", 4 << 20, _minmax(_SOCK_MIN_SNDBUF), "bytes",
       "Largest SO_SNDBUF an unprivileged setsockopt() may request."),

    # IP and ICMP: net/ipv4/sysctl_net_ipv4.c (ipv4_net_table), devinet.c (ip_forward);
    # defaults af_inet.c inet_init_net(), icmp.c icmp_sk_init().
    _K("net.ipv4.icmp_echo_ignore_all", 0, _u8(0, 1), "bool",
       "Do not answer ICMP echo requests at all."),
    _K("net.ipv4.icmp_echo_ignore_broadcasts", 1, _u8(0, 1), "bool",
       "Ignore ICMP echo requests sent to broadcast/multicast addresses."),
    _K("net.ipv4.icmp_ratelimit", 1000, _MS_JIFFIES, "ms",
       "Minimum gap between rate-limited ICMP messages to one destination (token bucket)."),
    _K("net.ipv4.icmp_ratemask", 0x1818, _INT, "bitmask",
       "ICMP types subject to icmp_ratelimit (bit n = type n)."),
    _K("net.ipv4.ip_autobind_reuse", 0, _u8(0, 1), "bool",
       "Let bind(port 0) reuse ports in use by SO_REUSEADDR sockets."),
    _K("net.ipv4.ip_default_ttl", 64, _u8(1, 255), "hops",
       "TTL of outgoing IPv4 packets (IPDEFTTL)."),
    _K("net.ipv4.ip_dynaddr", 0, _u8(), "enum",
       "Rewrite the source address of unconnected sockets when a dynamic address changes."),
    _K("net.ipv4.ip_forward", 0, _INT, "bool",
       "Forward IPv4 packets between interfaces (router mode)."),
    _K("net.ipv4.ip_forward_use_pmtu", 0, _u8(0, 1), "bool",
       "Forward with the learned path MTU instead of the route's/device's MTU."),
    _K("net.ipv4.ip_local_port_range", (32768, 60999), _IntVec(1, 65535, n=2, atomic=True), "ports",
       "Ephemeral port range for connect()/bind(0); low <= high, low >= ip_unprivileged_port_start.",
       check=_check_port_range, after=_warn_port_parity),
    _K("net.ipv4.ip_local_reserved_ports", frozenset(), _Bitmap(), "ports",
       "Ports never chosen automatically (explicit bind() still works)."),
    _K("net.ipv4.ip_no_pmtu_disc", 0, _u8(), "enum",
       "Disable Path MTU discovery (1: do not set DF)."),
    _K("net.ipv4.ip_nonlocal_bind", 0, _u8(), "bool",
       "Allow bind() to addresses that are not local."),
    # net/ipv4/route.c ipv4_route_netns_table: the PMTU exception cache
    _K("net.ipv4.route.min_pmtu", 552, _minmax(68), "bytes",
       "Lowest path MTU an ICMP fragmentation-needed may set (smaller: min_pmtu, mtu locked)."),
    _K("net.ipv4.route.mtu_expires", 600, _JIFFIES, "s",
       "Lifetime of a path MTU learned from ICMP (the nexthop exception), in seconds."),
    _K("net.ipv4.ip_unprivileged_port_start", 1024, _minmax(0, 65535), "port",
       "First port an unprivileged process may bind; may not exceed the local port range start.",
       check=_check_prot_sock),

    # TCP: net/ipv4/sysctl_net_ipv4.c (handlers and ranges); defaults net/ipv4/tcp_ipv4.c
    # tcp_sk_init() with include/net/tcp.h constants, net/ipv4/tcp.c tcp_init() (memory-sized).
    _K("net.ipv4.tcp_abort_on_overflow", 0, _u8(), "bool",
       "Reset connections when the accept queue is full instead of dropping the final ACK."),
    _K("net.ipv4.tcp_adv_win_scale", 1, _minmax(-31, 31), "log2",
       "Share of the receive buffer counted as overhead when sizing the window."),
    _K("net.ipv4.tcp_allowed_congestion_control", "reno cubic", _CaList(), "names",
       "Algorithms unprivileged TCP_CONGESTION users may choose; the default is always in it."),
    _K("net.ipv4.tcp_app_win", 31, _u8(0, 31), "log2",
       "Reserve max(window/2^tcp_app_win, mss) of the window for the application buffer."),
    _K("net.ipv4.tcp_autocorking", 1, _u8(0, 1), "bool",
       "Coalesce small writes while earlier packets still sit in the qdisc/device queue."),
    _K("net.ipv4.tcp_available_congestion_control", " ".join(AVAILABLE_CONGESTION_CONTROL), _RO,
       "names", "Registered congestion-control algorithms (read-only).", mode=0o444),
    _K("net.ipv4.tcp_backlog_ack_defer", 1, _u8(0, 1), "bool",
       "Defer ACKs for packets processed from the socket backlog until it is drained."),
    _K("net.ipv4.tcp_base_mss", 1024, _INT, "bytes",
       "Starting search_low MSS for packetization-layer path MTU discovery."),
    _K("net.ipv4.tcp_challenge_ack_limit", INT_MAX, _INT, "ACKs/s",
       "Per-netns limit of RFC 5961 challenge ACKs per second (INT_MAX: unlimited)."),
    _K("net.ipv4.tcp_child_ehash_entries", 0, _uint(0, 16 << 20), "buckets",
       "Size of a private established hash for child netns created afterwards (0: share)."),
    _K("net.ipv4.tcp_comp_sack_delay_ns", 1000000, _ULongVec(), "ns",
       "Max delay of a compressed SACK."),
    _K("net.ipv4.tcp_comp_sack_nr", 44, _u8(), "count",
       "Max SACKs that may be compressed (0 disables SACK compression)."),
    _K("net.ipv4.tcp_comp_sack_slack_ns", 100000, _ULongVec(), "ns",
       "Timer slack of the SACK compression hrtimer."),
    _K("net.ipv4.tcp_congestion_control", "cubic", _CaName(), "name",
       "Default congestion control for new connections; must be a registered algorithm.",
       after=_allow_default_ca),
    _K("net.ipv4.tcp_dsack", 1, _u8(), "bool",
       "Send duplicate SACKs (RFC 2883)."),
    _K("net.ipv4.tcp_early_demux", 1, _u8(), "bool",
       "Look up the established socket early in ip_rcv for TCP."),
    _K("net.ipv4.tcp_early_retrans", 3, _u8(0, 4), "enum",
       "Tail loss probe: 3/4 enable TLP (RACK-TLP), 0 disables."),
    _K("net.ipv4.tcp_ecn", 2, _u8(0, 2), "enum",
       "ECN: 0 off, 1 request and accept, 2 accept when requested (6.18: AccECN modes not yet)."),
    _K("net.ipv4.tcp_ecn_fallback", 1, _u8(0, 1), "bool",
       "Fall back to non-ECN when the ECN handshake looks broken (RFC 3168 6.1.1.1)."),
    _K("net.ipv4.tcp_ecn_option", 2, _u8(0, 2), "enum",
       "AccECN option sending: 0 never, 1 minimum rules, 2 whenever it fits."),
    _K("net.ipv4.tcp_ecn_option_beacon", 3, _u8(0, 3), "per RTT",
       "Min AccECN options per RTT when tcp_ecn_option is 2."),
    _K("net.ipv4.tcp_fack", 0, _u8(), "bool",
       "Legacy option, no effect (FACK was removed in 4.15; the knob stays)."),
    _K("net.ipv4.tcp_fastopen", 1, _INT, "flags",
       "TCP Fast Open bits: 1 client, 2 server, 0x4 no cookie, 0x200/0x400 cookie-less server..."),
    _K("net.ipv4.tcp_fastopen_blackhole_timeout_sec", 0, _minmax(0), "s",
       "Initial disable period of active TFO after a suspected middlebox blackhole (0: never)."),
    _K("net.ipv4.tcp_fastopen_key", "00000000-00000000-00000000-00000000", _FastopenKey(), "hex",
       "TFO cookie key(s): primary[,backup] as four 32-bit hex words each.", mode=0o600),
    _K("net.ipv4.tcp_fin_timeout", 60, _JIFFIES, "s",
       "How long an orphaned connection stays in FIN_WAIT2 (TCP_FIN_TIMEOUT)."),
    _K("net.ipv4.tcp_frto", 2, _u8(), "enum",
       "F-RTO spurious RTO detection (RFC 5682); 0 disables."),
    _K("net.ipv4.tcp_fwmark_accept", 0, _u8(), "bool",
       "Accepted sockets take the fwmark of the incoming SYN."),
    _K("net.ipv4.tcp_invalid_ratelimit", 500, _MS_JIFFIES, "ms",
       "Min gap between duplicate ACKs sent in reply to invalid segments (HZ/2)."),
    _K("net.ipv4.tcp_keepalive_intvl", 75, _JIFFIES, "s",
       "Gap between keepalive probes (TCP_KEEPALIVE_INTVL)."),
    _K("net.ipv4.tcp_keepalive_probes", 9, _u8(), "probes",
       "Unanswered keepalive probes before the connection is dropped (TCP_KEEPALIVE_PROBES)."),
    _K("net.ipv4.tcp_keepalive_time", 7200, _JIFFIES, "s",
       "Idle time before the first keepalive probe (TCP_KEEPALIVE_TIME)."),
    _K("net.ipv4.tcp_l3mdev_accept", 0, _u8(0, 1), "bool",
       "Let a socket not bound to a VRF accept connections arriving through one."),
    _K("net.ipv4.tcp_limit_output_bytes", 4 << 20, _INT, "bytes",
       "TCP small queues: max bytes of one flow in qdisc/device queues."),
    _K("net.ipv4.tcp_low_latency", 0, _INT, "bool",
       "Obsolete since 4.14, no effect."),
    _K("net.ipv4.tcp_max_orphans", _EHASH_ENTRIES // 2, _INT, "sockets",
       f"Max orphaned sockets before they are reset (ehash entries / 2, {_NOMINAL})."),
    _K("net.ipv4.tcp_max_reordering", 300, _INT, "packets",
       "Upper bound of the reordering degree TCP may learn."),
    _K("net.ipv4.tcp_max_syn_backlog", max(128, _EHASH_ENTRIES // 128), _INT, "requests",
       f"Max request socks per listener without syncookies (ehash/128, {_NOMINAL})."),
    _K("net.ipv4.tcp_max_tw_buckets", _EHASH_ENTRIES // 2, _INT, "sockets",
       f"Max TIME_WAIT sockets; beyond it connections close without TIME_WAIT ({_NOMINAL})."),
    _K("net.ipv4.tcp_mem", (_TCP_MEM_LIMIT // 4 * 3, _TCP_MEM_LIMIT, _TCP_MEM_LIMIT // 4 * 6),
       _ULongVec(n=3), "pages",
       f"Global TCP memory: low, pressure, high (tcp_init_mem, {_NOMINAL})."),
    _K("net.ipv4.tcp_migrate_req", 0, _u8(0, 1), "bool",
       "Migrate request/child sockets of a closed SO_REUSEPORT listener to another listener."),
    _K("net.ipv4.tcp_min_rtt_wlen", 300, _minmax(0, 24 * 3600), "s",
       "Window of the windowed-min RTT filter."),
    _K("net.ipv4.tcp_min_snd_mss", 48, _minmax(48, 65535), "bytes",
       "Lowest MSS a peer may force on us (TCP_MIN_SND_MSS)."),
    _K("net.ipv4.tcp_min_tso_segs", 2, _u8(1, 255), "segments",
       "Minimum segments per TSO frame."),
    _K("net.ipv4.tcp_moderate_rcvbuf", 1, _u8(), "bool",
       "Receive buffer auto-tuning (DRS)."),
    _K("net.ipv4.tcp_mtu_probe_floor", 48, _minmax(48, 65535), "bytes",
       "Lowest MSS MTU probing may fall back to."),
    _K("net.ipv4.tcp_mtu_probing", 0, _u8(), "enum",
       "Packetization-layer PMTUD: 0 off, 1 after an ICMP blackhole, 2 always."),
    _K("net.ipv4.tcp_no_metrics_save", 0, _u8(), "bool",
       "Do not cache metrics (RTT, cwnd...) of closed connections."),
    _K("net.ipv4.tcp_no_ssthresh_metrics_save", 1, _u8(0, 1), "bool",
       "Do not cache ssthresh of closed connections."),
    _K("net.ipv4.tcp_notsent_lowat", UINT_MAX, _uint(), "bytes",
       "Unsent bytes in the write queue above which the socket is not writable."),
    _K("net.ipv4.tcp_orphan_retries", 0, _u8(), "retries",
       "Retries for orphaned sockets before they are killed (0 means 8 in tcp_orphan_retries())."),
    _K("net.ipv4.tcp_pacing_ca_ratio", 120, _minmax(0, 1000), "%",
       "Pacing rate as a percentage of cwnd/srtt in congestion avoidance."),
    _K("net.ipv4.tcp_pacing_ss_ratio", 200, _minmax(0, 1000), "%",
       "Pacing rate as a percentage of cwnd/srtt in slow start."),
    _K("net.ipv4.tcp_pingpong_thresh", 1, _u8(1, 255), "count",
       "Request/response exchanges before delayed-ACK pingpong mode starts."),
    _K("net.ipv4.tcp_plb_cong_thresh", 128, _minmax(0, 256), "1/256",
       "PLB: fraction of CE-marked packets that makes a round congested."),
    _K("net.ipv4.tcp_plb_enabled", 0, _u8(0, 1), "bool",
       "Protective Load Balancing (rehash the flow label on congestion)."),
    _K("net.ipv4.tcp_plb_idle_rehash_rounds", 3, _u8(0, 31), "rounds",
       "PLB: congested rounds before rehashing when no packets are in flight."),
    _K("net.ipv4.tcp_plb_rehash_rounds", 12, _u8(0, 31), "rounds",
       "PLB: congested rounds before rehashing."),
    _K("net.ipv4.tcp_plb_suspend_rto_sec", 60, _u8(), "s",
       "PLB: how long rehashing stays suspended after an RTO."),
    _K("net.ipv4.tcp_probe_interval", 600, _uint(0, UINT_MAX // HZ), "s",
       "Interval between MTU re-probes."),
    _K("net.ipv4.tcp_probe_threshold", 8, _INT, "bytes",
       "MTU probing stops when the search range is narrower than this."),
    _K("net.ipv4.tcp_recovery", 1, _u8(), "flags",
       "Loss recovery bits: 0x1 RACK, 0x2 static reordering window, 0x4 no RACK DUPACK threshold."),
    _K("net.ipv4.tcp_reflect_tos", 0, _u8(0, 1), "bool",
       "Reply with the TOS/DSCP of the incoming SYN."),
    _K("net.ipv4.tcp_reordering", 3, _INT, "packets",
       "Initial reordering degree: duplicate ACKs before fast retransmit (TCP_FASTRETRANS_THRESH)."),
    _K("net.ipv4.tcp_retrans_collapse", 1, _u8(), "bool",
       "Merge small segments into one on retransmission."),
    _K("net.ipv4.tcp_retries1", 3, _u8(0, 255), "retries",
       "RTOs before suspecting the route (dst_negative_advice) (TCP_RETR1)."),
    _K("net.ipv4.tcp_retries2", 15, _u8(), "retries",
       "RTO budget before an established connection gives up (TCP_RETR2, about 924.6 s)."),
    _K("net.ipv4.tcp_rfc1337", 0, _u8(), "bool",
       "TIME_WAIT ignores RSTs (RFC 1337 TIME-WAIT assassination fix)."),
    _K("net.ipv4.tcp_rmem", (4096, 131072, max(131072, min(32 << 20, _SHARE_LIMIT))),
       _minmax(1, n=3), "bytes",
       f"Receive buffer min, default, autotuning max (tcp_init, 6.16+ max 32 MB, {_NOMINAL})."),
    _K("net.ipv4.tcp_rto_max_ms", 120000, _minmax(1000, 120000), "ms",
       "Largest retransmission timeout (TCP_RTO_MAX)."),
    _K("net.ipv4.tcp_rto_min_us", 200000, _minmax(1), "us",
       "Smallest retransmission timeout (TCP_RTO_MIN)."),
    _K("net.ipv4.tcp_sack", 1, _u8(), "bool",
       "Selective acknowledgements (RFC 2018)."),
    _K("net.ipv4.tcp_shrink_window", 0, _u8(0, 1), "bool",
       "Allow the advertised window to shrink when memory is short (RFC 7323 2.4)."),
    _K("net.ipv4.tcp_slow_start_after_idle", 1, _u8(), "bool",
       "Restart from the initial window after an idle RTO (RFC 2861)."),
    _K("net.ipv4.tcp_stdurg", 0, _u8(), "bool",
       "RFC 1122 interpretation of the urgent pointer."),
    _K("net.ipv4.tcp_syn_linear_timeouts", 4, _u8(0, 127), "retries",
       "First SYN retransmissions at a constant 1 s RTO before exponential backoff (6.5+)."),
    _K("net.ipv4.tcp_syn_retries", 6, _u8(1, 127), "retries",
       "SYN retransmissions of an active open (TCP_SYN_RETRIES, max MAX_TCP_SYNCNT)."),
    _K("net.ipv4.tcp_synack_retries", 5, _u8(), "retries",
       "SYN-ACK retransmissions of a passive open (TCP_SYNACK_RETRIES)."),
    _K("net.ipv4.tcp_syncookies", 1, _u8(), "enum",
       "SYN cookies: 1 when the SYN queue overflows, 2 always, 0 never."),
    _K("net.ipv4.tcp_thin_linear_timeouts", 0, _u8(), "bool",
       "Linear RTO backoff for thin streams."),
    _K("net.ipv4.tcp_timestamps", 1, _u8(), "enum",
       "RFC 7323 timestamps: 1 with per-connection random offsets, 2 without offsets."),
    _K("net.ipv4.tcp_tso_rtt_log", 9, _u8(), "log2 us",
       "Adjust TSO burst sizes with the min RTT (2^9 us)."),
    _K("net.ipv4.tcp_tso_win_divisor", 3, _u8(), "divisor",
       "Max fraction (1/n) of cwnd one TSO frame may use."),
    _K("net.ipv4.tcp_tw_recycle", 0, _INT, "bool",
       f"{_TW_RECYCLE_NOTE}: fast TIME_WAIT recycling with per-host timestamp checks (breaks NAT).",
       emulated=True),
    _K("net.ipv4.tcp_tw_reuse", 2, _u8(0, 2), "enum",
       "Reuse TIME_WAIT sockets for outgoing connections: 1 on, 2 loopback only, 0 off."),
    _K("net.ipv4.tcp_tw_reuse_delay", 1000, _uint(1, 60 * 1000), "ms",
       "Min age of a TIME_WAIT timestamp before tcp_tw_reuse may take the socket (6.14+)."),
    _K("net.ipv4.tcp_window_scaling", 1, _u8(), "bool",
       "Window scaling (RFC 7323)."),
    _K("net.ipv4.tcp_wmem", (4096, 16384, max(64 * 1024, min(4 << 20, _SHARE_LIMIT))),
       _minmax(1, n=3), "bytes",
       f"Send buffer min, default, autotuning max (tcp_init, {_NOMINAL})."),
    _K("net.ipv4.tcp_workaround_signed_windows", 0, _u8(), "bool",
       "Assume a peer without window scaling treats the window as signed."),
)

_BY_NAME: dict[str, Knob] = {k.name: k for k in TABLE}
_BY_ATTR: dict[str, Knob] = {k.attr: k for k in TABLE}
assert len(_BY_NAME) == len(_BY_ATTR) == len(TABLE), "duplicate sysctl name"
# sysctl -a walks /proc/sys, whose directories list entries by byte-wise name (namecmp).
_SORTED: tuple[Knob, ...] = tuple(sorted(TABLE, key=lambda k: k.name.split(".")))
_ATTRS: tuple[str, ...] = tuple(k.attr for k in TABLE)


def _split_name(name: str) -> tuple[str, str]:
    """procps name handling: (dotted key, /proc/sys path) for dotted, slash or /proc/sys/ input."""
    name = name.strip()
    if "/" in name:
        rel = name.removeprefix("/proc/sys/").strip("/")
        return rel.replace("/", "."), "/proc/sys/" + rel
    return name, "/proc/sys/" + name.replace(".", "/")


def _resolve(name: str) -> Knob:
    """The row for a dotted, slash, /proc/sys or bare last-component name, else ENOENT."""
    dotted, path = _split_name(name)
    knob = _BY_NAME.get(dotted) or (_BY_ATTR.get(dotted) if "." not in dotted else None)
    if knob is None:
        code = errno.ENOENT
        raise OSError(code, f"sysctl: cannot stat {path}: {os.strerror(code)}")
    return knob


class Sysctl:
    """One host's sysctls: a plain attribute per knob (``sysctl.tcp_fin_timeout``), /proc/sys rules on ``set``."""

    __slots__ = (*_ATTRS, "_parity_warned")

    def __init__(self, **values: Any) -> None:
        """Linux 6.18 defaults, then ``values`` (by last component) applied as ``sysctl -w`` would."""
        self.reset()
        for name, value in values.items():
            self.set(name, value)

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> str:
        """The value as ``sysctl -n name`` prints it (vectors tab-separated)."""
        knob = _resolve(name)
        return knob.kind.show(getattr(self, knob.attr))

    def lines(self, pattern: str | None = None, annotate: bool = False) -> list[str]:
        """``sysctl -a | grep pattern`` (a regex searched in each line); ``annotate`` marks emulated knobs."""
        rx = re.compile(pattern) if pattern is not None else None
        out = []
        for k in _SORTED:
            line = f"{k.name} = {k.kind.show(getattr(self, k.attr))}"
            if rx is None or rx.search(line):
                out.append(f"{line}  # {_TW_RECYCLE_NOTE}" if annotate and k.emulated else line)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every knob by full dotted name, in ``sysctl -a`` order."""
        return {k.name: getattr(self, k.attr) for k in _SORTED}

    @staticmethod
    def doc(name: str) -> str:
        """The one-line description of a knob (the emulation marker for tcpdive-only knobs)."""
        return _resolve(name).doc

    @staticmethod
    def knob(name: str) -> Knob:
        """The table row of a knob: default, handler, unit, mode."""
        return _resolve(name)

    @staticmethod
    def names() -> list[str]:
        """All knob names in ``sysctl -a`` order."""
        return [k.name for k in _SORTED]

    # -- writing ---------------------------------------------------------------------------

    def set(self, name: str, value: str | int | Iterable[int]) -> str:
        """``sysctl -w name=value`` through the knob's proc handler; returns the line sysctl prints.

        As in Linux, a vector write updates only the fields given, ignores extra ones and keeps
        fields stored before a bad one (except ip_local_port_range, parsed into a copy)."""
        knob = _resolve(name)
        text = value.strip(_WS) if isinstance(value, str) else knob.kind.text(value)
        try:
            if not knob.mode & 0o200:
                raise _WriteError(errno.EPERM)     # procps refuses files without S_IWUSR
            new = knob.kind.parse(text, getattr(self, knob.attr))
            if knob.check is not None:
                knob.check(self, new)
        except _WriteError as e:
            if e.partial is not None:
                setattr(self, knob.attr, e.partial)
            raise OSError(e.code, f'sysctl: setting key "{knob.name}": {os.strerror(e.code)}') from None
        setattr(self, knob.attr, new)
        if knob.after is not None:
            knob.after(self, new)
        return f"{knob.name} = {text}"

    def reset(self) -> None:
        """Back to the Linux defaults."""
        for k in TABLE:
            setattr(self, k.attr, k.default)
        self._parity_warned = False

    def copy(self) -> Sysctl:
        """A new namespace's table inheriting every current value."""
        new = Sysctl.__new__(Sysctl)
        for attr in _ATTRS:
            setattr(new, attr, getattr(self, attr))
        new._parity_warned = False
        return new

    def __repr__(self) -> str:
        changed = [f"{k.attr}={getattr(self, k.attr)!r}" for k in _SORTED
                   if getattr(self, k.attr) != k.default]
        return f"Sysctl({', '.join(changed)})"
